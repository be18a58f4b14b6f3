/*
 * smtp_reply_fuzz - the SMTP client's reply parser (lib/mail/
 * smtp_reply.c), fed what a remote server sends.
 *
 * Input: one byte choosing the chunk size (1..64), then the bytes.
 *
 * Properties checked:
 *  - the same replies, codes and errors whole and in chunks;
 *  - a complete reply has a code 200..559, at most SMTP_REPLY_LINES_MAX
 *    lines, an enhanced code of its class or none, and text no longer
 *    than its lines allow;
 *  - an unfinished line never grows past SMTP_REPLY_LINE_MAX bytes.
 */
#include <string.h>

#include "base/buf.h"
#include "mail/smtp_reply.h"
#include "fuzz.h"

/* run - parse data in chunks of n; a digest of what was parsed */
static void
run(const uint8_t *data, size_t size, size_t n, struct buf *digest)
{
	struct smtp_reply r;
	struct buf in = BUF_INIT, why = BUF_INIT;
	size_t off = 0;

	smtp_reply_init(&r);
	while (off < size) {
		size_t k = size - off < n ? size - off : n;
		int rc;

		buf_append(&in, data + off, k);
		off += k;
		while ((rc = smtp_reply_take(&r, &in, &why)) == 1) {
			FUZZ_CHECK(r.code >= 200 && r.code <= 559);
			FUZZ_CHECK(r.nlines >= 1 &&
			    r.nlines <= SMTP_REPLY_LINES_MAX);
			FUZZ_CHECK(r.text.len <= r.nlines * SMTP_REPLY_LINE_MAX);
			FUZZ_CHECK(r.dsn[0] == '\0' ||
			    r.dsn[0] == '0' + r.code / 100);
			(void)smtp_reply_ehlo(&r, "SIZE", NULL);
			smtp_reply_format(&r, digest, 600);
			buf_putc(digest, '|');
			smtp_reply_reset(&r);
		}
		if (rc < 0) {
			buf_printf(digest, "error: %s", buf_cstr(&why));
			goto out;
		}
		FUZZ_CHECK(in.len < SMTP_REPLY_LINE_MAX);
	}
out:
	smtp_reply_free(&r);
	buf_free(&in);
	buf_free(&why);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf whole = BUF_INIT, chunked = BUF_INIT;
	size_t n;

	if (size < 1)
		return 0;
	n = (size_t)(data[0] % 64) + 1;
	run(data + 1, size - 1, size, &whole);
	run(data + 1, size - 1, n, &chunked);
	FUZZ_CHECK(whole.len == chunked.len &&
	    memcmp(whole.data, chunked.data, whole.len) == 0);
	buf_free(&whole);
	buf_free(&chunked);
	return 0;
}
