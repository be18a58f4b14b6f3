/*
 * header_fuzz - local's scanner of a message's header section (the loop
 * check: Received: and Delivered-To: fields), fed the untrusted bytes of
 * a message as local reads them from the queue file.
 *
 * Properties checked:
 *  - the same hops, the same Delivered-To: values and the same end of
 *    the header section whether the bytes come at once or cut at the
 *    positions the input's first bytes choose (local reads in chunks);
 *  - memory stays bounded: at most LOCAL_HEADER_VALUES values, each at
 *    most LOCAL_HEADER_VALUE_MAX bytes, non-empty, lowercase, without
 *    CR or LF; every kept value is also a hop;
 *  - the scanner stops at the end of the header section: bytes after the
 *    first empty line change nothing.
 */
#include <string.h>

#include "base/buf.h"
#include "local.h"
#include "fuzz.h"

/* scan - feed p[0..n) in chunks of the sizes cuts[] give (cycled; none:
 * one chunk), then end the input */
static void
scan(const char *p, size_t n, const uint8_t *cuts, size_t ncuts,
    struct local_header *h)
{
	size_t off = 0, k = 0;

	local_header_init(h);
	while (off < n) {
		size_t want = ncuts ? (size_t)cuts[k++ % ncuts] % 23 + 1 :
		    n - off;
		size_t take = want < n - off ? want : n - off;

		local_header_feed(h, p + off, take);
		off += take;
	}
	local_header_end(h);
}

/* same - two scans agree */
static void
same(const struct local_header *a, const struct local_header *b)
{
	FUZZ_CHECK(a->hops == b->hops);
	FUZZ_CHECK(a->ndelivered == b->ndelivered);
	for (size_t i = 0; i < a->ndelivered; i++)
		FUZZ_CHECK(strcmp(a->delivered_to[i], b->delivered_to[i]) == 0);
}

/* bounded - the limits and the shape of kept values */
static void
bounded(const struct local_header *h)
{
	FUZZ_CHECK(h->ndelivered <= LOCAL_HEADER_VALUES);
	FUZZ_CHECK((size_t)h->hops >= h->ndelivered);
	for (size_t i = 0; i < h->ndelivered; i++) {
		const char *v = h->delivered_to[i];
		size_t len = strlen(v);

		FUZZ_CHECK(len > 0 && len <= LOCAL_HEADER_VALUE_MAX);
		FUZZ_CHECK(strpbrk(v, "\r\n") == NULL);
		for (size_t j = 0; j < len; j++)
			FUZZ_CHECK(!(v[j] >= 'A' && v[j] <= 'Z'));
	}
}

/* empty_line - the length up to and including the first empty line
 * (CRs ignored, as the scanner does), or 0 when there is none */
static size_t
empty_line(const char *p, size_t n)
{
	bool bol = true;

	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\r')
			continue;
		if (p[i] == '\n' && bol)
			return i + 1;
		bol = p[i] == '\n';
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct local_header whole, cut, more;
	size_t ncuts = size ? data[0] % 8 : 0;
	const uint8_t *cuts = data + (size ? 1 : 0);
	const char *msg;
	size_t n, end;
	struct buf longer = BUF_INIT;

	if (size < 1 + ncuts)
		return 0;
	msg = (const char *)data + 1 + ncuts;
	n = size - 1 - ncuts;

	scan(msg, n, NULL, 0, &whole);
	bounded(&whole);
	scan(msg, n, cuts, ncuts, &cut);
	same(&whole, &cut);

	/* what follows the empty line is body: it changes nothing */
	if ((end = empty_line(msg, n)) > 0) {
		buf_append(&longer, msg, end);
		buf_puts(&longer, "Received: x\nDelivered-To: <Y@Z>\n\n");
		scan(longer.data, longer.len, NULL, 0, &more);
		same(&whole, &more);
		local_header_free(&more);
	}
	buf_free(&longer);
	local_header_free(&whole);
	local_header_free(&cut);
	return 0;
}
