/*
 * signer - structures shared by the DKIM signer's files.
 *
 * signer_req.c decodes and checks one request frame (no I/O, no keys:
 * it is what t/fuzz/signer_req_fuzz.c feeds). signer_keys.c finds the
 * current selector and private keys of a domain under dkim_directory,
 * caches them, and notices a rotation (a new "current" file). signer.c
 * holds main and the service callback.
 */
#ifndef SIGNER_H
#define SIGNER_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct buf;
struct ipc_msg;

#define SIGNER_DOMAIN_MAX 253		/* a DNS name */
#define SIGNER_HEADER_MAX (256 * 1024)	/* header block to sign */

/* one checked request; the pointers are into the message */
struct signer_req {
	const char *domain;	/* lowercase DNS name, safe as a file name */
	const char *header;	/* the header fields, CRLF lines */
	size_t header_len;
	unsigned char bh[32];	/* SHA-256 of the relaxed body */
};

/* signer_req.c */
/* signer_req_parse - check m: request=sign, domain, header, body_hash,
 * each once, nothing else, each bounded; 0, or -1 with why */
int signer_req_parse(const struct ipc_msg *m, struct signer_req *r,
    struct buf *why);
/* signer_domain_ok - a lowercase DNS name of letters, digits, '-' and
 * dots between labels: never "..", "/" or a leading dot */
bool signer_domain_ok(const char *d);

/* signer_keys.c */
/* signer_keys_sign - the DKIM-Signature fields of r (one per key of the
 * domain's current selector) into out: 1 signed, 0 the domain has no
 * key, -1 with why (a key that cannot be read or used) */
int signer_keys_sign(const struct signer_req *r, time_t now,
    struct buf *out, struct buf *why);
/* signer_keys_flush - forget every cached key */
void signer_keys_flush(void);

#endif
