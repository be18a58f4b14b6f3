/*
 * dane - DANE for SMTP (RFC 7672) on OpenSSL's own DANE verifier: which
 * TLSA records SMTP can use, and arming one TLS connection with them.
 *
 * Only DANE-TA(2) and DANE-EE(3) are usable for SMTP (RFC 7672 3.1.3:
 * PKIX-TA(0) and PKIX-EE(1) are not), with selector Cert(0) or SPKI(1)
 * and matching type Full(0), SHA2-256(1) or SHA2-512(2) whose data has
 * the digest's length. A DANE-EE match needs no name check (RFC 7672
 * 3.1.1); a DANE-TA match checks the reference names: the TLSA base
 * domain and the MX host name it was expanded from (RFC 7672 3.2.2).
 *
 * dane_arm only prepares the SSL object: the handshake verifies, and
 * fails on a mismatch when the caller asked for SSL_VERIFY_PEER. It
 * panics on nothing; a record OpenSSL refuses is left out.
 */
#ifndef MAIL_DANE_H
#define MAIL_DANE_H

#include <stdbool.h>
#include <stddef.h>

struct buf;
struct dns_rr;
struct ssl_st;

/* dane_usable - rr is a TLSA record SMTP can use (see above) */
bool dane_usable(const struct dns_rr *rr);
/* dane_count_usable - how many of rr[0..n) are usable */
size_t dane_count_usable(const struct dns_rr *rr, size_t n);
/* dane_arm - enable DANE on ssl (its context gets DANE support too):
 * base is the TLSA base domain (SNI and the first reference name), host
 * another reference name when it differs (NULL: none), the usable ones
 * of rr[0..n) the records. -1 with why when none could be added */
int dane_arm(struct ssl_st *ssl, const char *base, const char *host,
    const struct dns_rr *rr, size_t n, struct buf *why);
/* dane_matched - after a verified handshake: "TLSA 3 1 1" of the record
 * that matched into out; false when DANE did not authenticate ssl */
bool dane_matched(struct ssl_st *ssl, struct buf *out);

#endif
