/*
 * dane - TLSA records for SMTP (RFC 7672) into OpenSSL's DANE verifier
 * (see dane.h).
 */
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/tls.h"
#include "mail/dane.h"
#include "mail/dns.h"

#define DANE_TA 2 /* usage DANE-TA */
#define DANE_EE 3 /* usage DANE-EE */

/* dane_usable - usage 2/3, selector 0/1, matching 0/1/2 of right size */
bool
dane_usable(const struct dns_rr *rr)
{
	if (rr->type != DNS_T_TLSA || rr->data == NULL || rr->len == 0)
		return false;
	if (rr->usage != DANE_TA && rr->usage != DANE_EE)
		return false;
	if (rr->selector > 1)
		return false;
	switch (rr->mtype) {
	case 0:
		return true;
	case 1:
		return rr->len == 32;
	case 2:
		return rr->len == 64;
	default:
		return false;
	}
}

/* dane_count_usable - the usable records of rr[0..n) */
size_t
dane_count_usable(const struct dns_rr *rr, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		if (dane_usable(&rr[i]))
			k++;
	return k;
}

/* dane_arm - DANE on ssl with the usable records */
int
dane_arm(SSL *ssl, const char *base, const char *host, const struct dns_rr *rr,
    size_t n, struct buf *why)
{
	size_t added = 0;

	ERR_clear_error();
	/* idempotent: a context enabled once stays so */
	if (SSL_CTX_dane_enable(SSL_get_SSL_CTX(ssl)) <= 0 ||
	    SSL_dane_enable(ssl, base) <= 0) {
		buf_puts(why, "cannot enable DANE: ");
		tls_error_text(why);
		return -1;
	}
	/* RFC 7672 3.1.1: a DANE-EE match stands for the name too */
	(void)SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
	SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	/* RFC 7672 3.2.2: the MX host name before CNAME expansion is a
	 * reference name as well */
	if (host != NULL && *host != '\0' && SSL_add1_host(ssl, host) != 1) {
		buf_printf(why, "cannot add reference name %s: ", host);
		tls_error_text(why);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		int rc;

		if (!dane_usable(&rr[i]))
			continue;
		rc = SSL_dane_tlsa_add(ssl, rr[i].usage, rr[i].selector,
		    rr[i].mtype, rr[i].data, rr[i].len);
		if (rc > 0) {
			added++;
		} else {
			struct buf err = BUF_INIT;

			tls_error_text(&err);
			msg_warn("%s: TLSA %u %u %u left out: %s", base,
			    rr[i].usage, rr[i].selector, rr[i].mtype,
			    rc == 0 ? "not supported" : buf_cstr(&err));
			buf_free(&err);
		}
	}
	ERR_clear_error();
	if (added == 0) {
		buf_printf(why, "no usable TLSA record for %s", base);
		return -1;
	}
	return 0;
}

/* dane_matched - "TLSA u s m" of the record that authenticated ssl */
bool
dane_matched(SSL *ssl, struct buf *out)
{
	uint8_t usage, selector, mtype;

	if (SSL_get_verify_result(ssl) != X509_V_OK ||
	    SSL_get0_dane_authority(ssl, NULL, NULL) < 0 ||
	    SSL_get0_dane_tlsa(ssl, &usage, &selector, &mtype, NULL, NULL) < 0)
		return false;
	buf_printf(out, "TLSA %u %u %u", usage, selector, mtype);
	return true;
}
