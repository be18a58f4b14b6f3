/*
 * smtp_hdr_fuzz - the header scan smtpd runs over submitted mail
 * (smtpd_hdr.c), and the From: address parse that follows it.
 *
 * Properties checked:
 *  - every input byte comes out, in order, with at most one insertion
 *    (at_end called once, and not at all when the section ended inside
 *    an over-long name);
 *  - the result is the same whether the input comes at once or cut at
 *    the positions the first bytes choose;
 *  - the From: text stays within SMTPD_HDR_FROM_MAX.
 */
#include <string.h>

#include "base/buf.h"
#include "mail/mime.h"
#include "smtpd.h"
#include "fuzz.h"

static int ends;
static size_t end_at;	/* where at_end put its marker */

/* append - collect what the scan passes on */
static void
append(void *ctx, const char *p, size_t n)
{
	buf_append(ctx, p, n);
}

/* at_end - mark the insertion, and note where it is: the input may
 * hold the marker byte too (corpus/smtp_hdr/ff-before-marker, where a
 * search for it took an input byte for the marker) */
static void
at_end(struct smtpd_hdr *h, void *ctx)
{
	(void)h;
	ends++;
	end_at = ((struct buf *)ctx)->len;
	buf_append(ctx, "\xff", 1);
}

/* scan - p[0..n) in chunks that cuts[] choose; 0 cuts: one chunk */
static void
scan(const char *p, size_t n, const uint8_t *cuts, size_t ncuts,
    struct smtpd_hdr *h, struct buf *out)
{
	size_t off = 0, k = 0;

	ends = 0;
	smtpd_hdr_init(h, at_end);
	while (off < n) {
		size_t want = ncuts ? (size_t)cuts[k++ % ncuts] % 23 + 1 :
		    n - off;
		size_t take = want < n - off ? want : n - off;

		smtpd_hdr_feed(h, p + off, take, append, out);
		off += take;
	}
	smtpd_hdr_end(h, append, out);
	FUZZ_CHECK(ends == (h->lost ? 0 : 1));
	FUZZ_CHECK(h->done);
	FUZZ_CHECK(h->from.len <= SMTPD_HDR_FROM_MAX + 1);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtpd_hdr a, b;
	struct buf whole = BUF_INIT, cut = BUF_INIT;
	struct mime_addr *list;
	size_t ncuts = size > 0 ? data[0] % 8 : 0;
	const char *p;
	size_t n, at;

	if (size < 1 + ncuts)
		return 0;
	p = (const char *)data + 1 + ncuts;
	n = size - 1 - ncuts;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	scan(p, n, NULL, 0, &a, &whole);
	at = end_at;
	scan(p, n, data + 1, ncuts, &b, &cut);
	FUZZ_CHECK(whole.len == cut.len &&
	    memcmp(whole.data, cut.data, whole.len) == 0);
	FUZZ_CHECK(a.from.len == b.from.len && a.nfrom == b.nfrom &&
	    a.has_msgid == b.has_msgid && a.has_date == b.has_date);
	FUZZ_CHECK(a.separated == b.separated && !(a.lost && a.separated));
	FUZZ_CHECK(whole.len == n + (a.lost ? 0 : 1) + (a.separated ? 2 : 0));
	/* the input, with the one marker taken out */
	if (!a.lost) {
		FUZZ_CHECK(at < whole.len && at <= n &&
		    whole.data[at] == '\xff');
		FUZZ_CHECK(memcmp(whole.data, p, at) == 0);
		/* after it the empty line added before a line that is no
		 * field, then the rest of the input */
		if (a.separated)
			FUZZ_CHECK(whole.data[at + 1] == '\r' &&
			    whole.data[at + 2] == '\n');
		FUZZ_CHECK(memcmp(whole.data + at + 1 + (a.separated ? 2 : 0),
		    p + at, n - at) == 0);
	} else {
		FUZZ_CHECK(memcmp(whole.data, p, n) == 0);
	}
	list = mime_addr_parse(a.from.data, a.from.len);
	mime_addr_free(&list);
	smtpd_hdr_free(&a);
	smtpd_hdr_free(&b);
	buf_free(&whole);
	buf_free(&cut);
	return 0;
}
