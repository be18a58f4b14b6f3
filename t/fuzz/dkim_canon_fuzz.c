/*
 * dkim_canon_fuzz - DKIM relaxed canonicalisation (lib/mail/
 * dkim_canon.c) of message bytes, and the verifier's parsing of
 * DKIM-Signature fields and tag lists (lib/mail/dkim.c).
 *
 * Input: one byte choosing the body chunk size, then bytes used as a
 * header field, a body, and a whole message.
 *
 * Properties checked:
 *  - a header field's relaxed form is one line: a lowercase name without
 *    whitespace around the colon, no CR or LF but the final CRLF, no
 *    whitespace run, none before the CRLF;
 *  - the relaxed body is the same at any chunk size, has no bare LF, no
 *    whitespace before a CRLF, no whitespace run, ends in CRLF unless
 *    empty, and never in two CRLFs;
 *  - verifying the message (any DKIM-Signature fields in it) returns,
 *    never more verdicts than asked, and a key callback that refuses
 *    means nothing passes.
 */
#include <string.h>

#include "base/buf.h"
#include "mail/dkim.h"
#include "fuzz.h"

/* out - canonicaliser output into a buf */
static void
out(void *ctx, const void *data, size_t len)
{
	buf_append(ctx, data, len);
}

/* nokey - every key lookup fails */
static int
nokey(const char *d, const char *s, struct buf *txt, struct buf *why,
    void *ctx)
{
	(void)d;
	(void)s;
	(void)txt;
	(void)ctx;
	buf_puts(why, "no key");
	return -1;
}

/* check_header - the properties of a relaxed header field */
static void
check_header(const struct buf *h)
{
	const char *colon = memchr(h->data, ':', h->len);

	FUZZ_CHECK(colon != NULL);
	FUZZ_CHECK(h->len >= 3 && memcmp(h->data + h->len - 2, "\r\n", 2) ==
	    0);
	for (const char *p = h->data; p < colon; p++)
		FUZZ_CHECK(!(*p >= 'A' && *p <= 'Z'));
	FUZZ_CHECK(colon == h->data || (colon[-1] != ' ' && colon[-1] !=
	    '\t'));
	FUZZ_CHECK(colon[1] != ' ' && colon[1] != '\t');
	for (size_t i = (size_t)(colon - h->data); i + 2 < h->len; i++) {
		FUZZ_CHECK(h->data[i] != '\r' && h->data[i] != '\n');
		FUZZ_CHECK(h->data[i] != '\t');
		FUZZ_CHECK(!(h->data[i] == ' ' && h->data[i + 1] == ' '));
	}
	FUZZ_CHECK(h->len < 3 || h->data[h->len - 3] != ' ' ||
	    colon == h->data + h->len - 3);
}

/* check_body - the properties of a relaxed body */
static void
check_body(const struct buf *b)
{
	if (b->len == 0)
		return;
	FUZZ_CHECK(b->len >= 2 && memcmp(b->data + b->len - 2, "\r\n", 2) ==
	    0);
	FUZZ_CHECK(b->len < 4 || memcmp(b->data + b->len - 4, "\r\n\r\n",
	    4) != 0);
	for (size_t i = 0; i < b->len; i++) {
		if (b->data[i] == '\n')
			FUZZ_CHECK(i > 0 && b->data[i - 1] == '\r');
		FUZZ_CHECK(b->data[i] != '\t');
		if (b->data[i] == ' ' && i + 1 < b->len)
			FUZZ_CHECK(b->data[i + 1] != ' ' &&
			    !(b->data[i + 1] == '\r' && i + 2 < b->len &&
			    b->data[i + 2] == '\n'));
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf h = BUF_INIT, whole = BUF_INIT, part = BUF_INIT;
	struct dkim_body b;
	struct dkim_verdict v[4];
	size_t chunk, nv;
	const char *p = (const char *)data + 1;

	if (size < 1)
		return 0;
	chunk = data[0] % 17 + 1;
	size--;
	if (dkim_canon_header(p, size, &h) == 0)
		check_header(&h);
	dkim_body_init(&b, out, &whole);
	dkim_body_update(&b, p, size);
	dkim_body_final(&b);
	check_body(&whole);
	FUZZ_CHECK(b.length == whole.len);
	dkim_body_init(&b, out, &part);
	for (size_t i = 0; i < size; i += chunk)
		dkim_body_update(&b, p + i, size - i < chunk ? size - i :
		    chunk);
	dkim_body_final(&b);
	FUZZ_CHECK(part.len == whole.len && memcmp(part.data, whole.data,
	    whole.len) == 0);
	FUZZ_CHECK(dkim_verify(p, size, nokey, NULL, v, 4, &nv) == 0);
	FUZZ_CHECK(nv <= 4);
	buf_free(&h);
	buf_free(&whole);
	buf_free(&part);
	return 0;
}
