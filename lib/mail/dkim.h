/*
 * dkim - DKIM signatures (RFC 6376) with rsa-sha256 and ed25519-sha256
 * (RFC 8463): relaxed/relaxed canonicalisation, signing, verifying.
 *
 * dkim_canon.c holds the canonicalisation alone (no crypto, no
 * allocation beyond the caller's buffers), so that it can be fuzzed:
 * a header field to its relaxed form, and a body, fed in chunks of any
 * size, to its relaxed form through a callback. Bare LF is taken as a
 * line end as well as CRLF, so a message read from a local file signs
 * as it will look on the wire.
 *
 * dkim.c signs and verifies whole messages held in memory. A message is
 * header fields, an empty line, a body; a message without the empty
 * line is all header. Signing makes one DKIM-Signature field per key
 * (ed25519 and rsa, each with its own selector), folded at 78 columns,
 * to be put above the message; h= is RFC 6376 5.4.1's recommended set
 * as present in the message, with From named once more than it occurs
 * so that an added From breaks the signature. Verifying checks every
 * DKIM-Signature field (at most DKIM_SIGS_MAX) against the key that a
 * callback finds for its d= and s= (a TXT record's text).
 *
 * Keys: a private key is an EVP_PKEY (PEM PKCS#8 on disk, see
 * dkim_key_load); the public key's TXT record text comes from
 * dkim_txt_record. Which process may hold private keys: the signer
 * service only (DESIGN.md section 3), never smtpd.
 *
 * Nothing here panics on message or record content: bad input is a
 * failed verification or -1 with why.
 */
#ifndef MAIL_DKIM_H
#define MAIL_DKIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct buf;
typedef struct evp_pkey_st EVP_PKEY;

#define DKIM_SIGS_MAX 8		/* DKIM-Signature fields verified */
#define DKIM_FIELDS_MAX 1000	/* header fields of a message looked at */
#define DKIM_TXT_MAX 4096	/* key record text */
#define DKIM_WIDTH 78		/* folding column of DKIM-Signature */
#define DKIM_SELECTOR_MAX 40	/* selectors herald makes (before "-ed25519") */

/* dkim_canon.c */

/* dkim_canon_header - relaxed form (RFC 6376 3.4.2) of one raw header
 * field (name, colon, value with its folding, no final line end),
 * appended to out with a final CRLF; -1 if it has no colon */
int dkim_canon_header(const char *field, size_t len, struct buf *out);

/* relaxed body canonicalisation (RFC 6376 3.4.4), streaming */
typedef void dkim_out_fn(void *ctx, const void *data, size_t len);

struct dkim_body {
	dkim_out_fn *out;
	void *ctx;
	size_t blank;		/* empty lines held back */
	bool wsp;		/* whitespace seen, not written yet */
	bool content;		/* the current line has content */
	bool cr;		/* a CR seen, the next byte decides */
	uint64_t length;	/* bytes written to out */
};

/* dkim_body_init - a canonicaliser writing to out(ctx, ...) */
void dkim_body_init(struct dkim_body *b, dkim_out_fn *out, void *ctx);
/* dkim_body_update - feed the next len bytes of the body */
void dkim_body_update(struct dkim_body *b, const void *data, size_t len);
/* dkim_body_final - the end of the body */
void dkim_body_final(struct dkim_body *b);

/* dkim.c */

enum dkim_alg {
	DKIM_RSA_SHA256,
	DKIM_ED25519_SHA256,
};

/* one key that signs */
struct dkim_signer {
	const char *domain;	/* d= */
	const char *selector;	/* s= */
	EVP_PKEY *key;		/* RSA or Ed25519: gives the algorithm */
};

/* dkim_sign - DKIM-Signature fields for msg[0..len), one per signer,
 * with t=now, appended to out (each ends in CRLF); -1 with why */
int dkim_sign(const char *msg, size_t len, const struct dkim_signer *s,
    size_t ns, time_t now, struct buf *out, struct buf *why);

/* dkim_sign_header - as dkim_sign, from the header only (header[0..len),
 * the fields, an empty line after them allowed) and the SHA-256 of the
 * relaxed body (dkim_hasher): what a signer process needs, so that the
 * body stays with whoever received it */
int dkim_sign_header(const char *header, size_t len,
    const unsigned char bh[32], const struct dkim_signer *s, size_t ns,
    time_t now, struct buf *out, struct buf *why);

/* a body hash computed as the body arrives, in chunks of any size */
struct dkim_hasher {
	struct dkim_body body;
	void *md;		/* EVP_MD_CTX */
	long long left;		/* bytes still hashed (l=); < 0: all */
	bool failed;
};

/* dkim_hasher_init - start; -1 if OpenSSL fails */
int dkim_hasher_init(struct dkim_hasher *h);
/* dkim_hasher_update - the next len bytes of the body */
void dkim_hasher_update(struct dkim_hasher *h, const void *data,
    size_t len);
/* dkim_hasher_final - the SHA-256 of the relaxed body into bh, and the
 * hasher freed; -1 if OpenSSL failed */
int dkim_hasher_final(struct dkim_hasher *h, unsigned char bh[32]);

/* dkim_key_fn - the TXT record text for selector._domainkey.domain
 * into txt: 0, or -1 with why (no record, DNS failure) */
typedef int dkim_key_fn(const char *domain, const char *selector,
    struct buf *txt, struct buf *why, void *ctx);

/* what verifying one DKIM-Signature field found */
struct dkim_verdict {
	bool pass;
	char domain[256];	/* d= as given (may be cut) */
	char selector[64];	/* s= (may be cut) */
	char alg[32];		/* a= */
	char why[160];		/* why not pass */
};

/* dkim_verify - check each DKIM-Signature field of msg; the verdicts
 * into v[0..*nv) (at most max); returns how many passed */
int dkim_verify(const char *msg, size_t len, dkim_key_fn *key, void *ctx,
    struct dkim_verdict *v, size_t max, size_t *nv);

/* dkim_key_generate - a new private key; -1 with why */
int dkim_key_generate(enum dkim_alg alg, EVP_PKEY **key_r, struct buf *why);
/* dkim_key_load - a PEM private key file; -1 with why */
int dkim_key_load(const char *path, EVP_PKEY **key_r, struct buf *why);
/* dkim_key_pem - the private key as PEM PKCS#8 into out */
int dkim_key_pem(EVP_PKEY *key, struct buf *out, struct buf *why);
/* dkim_key_alg - the algorithm of a key; -1 if neither */
int dkim_key_alg(EVP_PKEY *key);
/* dkim_txt_record - "v=DKIM1; k=ed25519; p=..." for the public half */
int dkim_txt_record(EVP_PKEY *key, struct buf *out, struct buf *why);
/* dkim_alg_name - "rsa-sha256", "ed25519-sha256" */
const char *dkim_alg_name(enum dkim_alg alg);

/* dkim_selector_ok - a selector as heraldctl makes them and the signer
 * reads them: letters a-z, digits and '-', not at either end, at most
 * DKIM_SELECTOR_MAX bytes */
bool dkim_selector_ok(const char *s);

#endif
