/*
 * smtp_data_fuzz - the DATA byte-stream parser of smtpd, and the POP3
 * encoder that sends stored messages back out.
 *
 * Properties checked:
 *  - the parser gives the same content, end and bare-CR/LF verdict
 *    whether the input comes at once or cut at the positions the input's
 *    first bytes choose (chunk borders are where smuggling hides);
 *  - it never consumes past the terminator, and its content is never
 *    longer than what it consumed;
 *  - BDAT's scanner agrees with the DATA parser on bare CR/LF;
 *  - a message encoded by pop3d (dot-stuffing, CRLF, ".CRLF") and parsed
 *    back by the DATA parser ends exactly at its terminator and gives the
 *    message with CRLF line ends, unless it held a bare CR.
 */
#include <string.h>

#include "base/buf.h"
#include "pop3d.h"
#include "smtpd.h"
#include "fuzz.h"

/* append - the content callback: collect into a buf */
static void
append(void *ctx, const char *p, size_t n)
{
	buf_append(ctx, p, n);
}

/* parse - run the parser over p[0..n) in chunks of the sizes cuts[] give
 * (cycled; 0 entries: one chunk); returns bytes consumed */
static size_t
parse(const char *p, size_t n, const uint8_t *cuts, size_t ncuts,
    struct smtpd_data_parser *dp, struct buf *out)
{
	size_t off = 0, k = 0;

	smtpd_data_init(dp);
	while (off < n && !dp->done) {
		size_t want = ncuts ? (size_t)cuts[k++ % ncuts] % 17 + 1 :
		    n - off;
		size_t take = want < n - off ? want : n - off;
		size_t used = smtpd_data_feed(dp, p + off, take, append, out);

		FUZZ_CHECK(used <= take);
		FUZZ_CHECK(used == take || dp->done);
		off += used;
	}
	return off;
}

/* crlf - what the message m looks like with CRLF line ends (pop3d's
 * rules: a lone LF becomes CRLF, an unterminated last line is ended) */
static void
crlf(const char *m, size_t n, struct buf *out)
{
	bool cr = false, bol = true;

	for (size_t i = 0; i < n; i++) {
		if (m[i] == '\n' && !cr)
			buf_putc(out, '\r');
		buf_putc(out, m[i]);
		cr = m[i] == '\r';
		bol = m[i] == '\n';
	}
	if (!bol)
		buf_puts(out, cr ? "\n" : "\r\n");
}

/* round_trip - pop3d encodes, the DATA parser decodes */
static void
round_trip(const char *m, size_t n)
{
	struct buf wire = BUF_INIT, back = BUF_INIT, want = BUF_INIT;
	struct smtpd_data_parser dp;
	struct pop3d_enc e;
	size_t used;

	pop3d_enc_init(&e, -1);
	FUZZ_CHECK(pop3d_enc_feed(&e, m, n, &wire) == n);
	pop3d_enc_end(&e, &wire);
	FUZZ_CHECK(wire.len >= 3 &&
	    memcmp(wire.data + wire.len - 3, ".\r\n", 3) == 0);
	used = parse(wire.data, wire.len, NULL, 0, &dp, &back);
	if (memchr(m, '\r', n) == NULL) {
		FUZZ_CHECK(!dp.bare);
		FUZZ_CHECK(dp.done && used == wire.len);
		crlf(m, n, &want);
		FUZZ_CHECK(back.len == want.len &&
		    memcmp(back.data, want.data, want.len) == 0);
	}
	buf_free(&wire);
	buf_free(&back);
	buf_free(&want);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf whole = BUF_INIT, cut = BUF_INIT;
	struct smtpd_data_parser a, b;
	struct smtpd_bdat_scan bs;
	size_t ncuts, n1, n2;
	const char *p;

	if (size < 1)
		return 0;
	ncuts = data[0] % 8;
	if (size < 1 + ncuts)
		return 0;
	p = (const char *)data + 1 + ncuts;
	size -= 1 + ncuts;

	n1 = parse(p, size, NULL, 0, &a, &whole);
	n2 = parse(p, size, data + 1, ncuts, &b, &cut);
	FUZZ_CHECK(n1 == n2 && a.done == b.done && a.bare == b.bare);
	FUZZ_CHECK(whole.len == cut.len &&
	    memcmp(whole.data, cut.data, whole.len) == 0);
	FUZZ_CHECK(whole.len <= n1);
	if (a.done)
		FUZZ_CHECK(n1 >= 3 && memcmp(p + n1 - 3, ".\r\n", 3) == 0);

	/* BDAT: no dot-stuffing, the same bare CR/LF rule over the content */
	if (a.done) {
		smtpd_data_bdat_init(&bs);
		smtpd_data_bdat_feed(&bs, whole.data, whole.len);
		smtpd_data_bdat_end(&bs);
		FUZZ_CHECK(bs.bare == a.bare);
	}
	round_trip(p, size);
	buf_free(&whole);
	buf_free(&cut);
	return 0;
}
