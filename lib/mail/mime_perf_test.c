/*
 * mime_perf_test - the MIME parser is linear: it parses a 20 MB message
 * of 1,000 parts and worst-case shapes (every line a near-boundary under
 * 30 open multiparts, a huge header, an encoded-word bomb) at twice the
 * size in about twice the time, and prints the MB/s it reached.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/test.h"
#include "mail/mime.h"
#include "mail/mime_imap.h"

/* now - this thread's CPU seconds (t_cpu_ms: a busy machine does not
 * make a linear parse look quadratic) */
static double
now(void)
{
	return t_cpu_ms() / 1e3;
}

/* parse_time - best of three parses of b, BODYSTRUCTURE included */
static double
parse_time(const struct buf *b)
{
	double best = 1e9;

	for (int i = 0; i < 3; i++) {
		double t = now();
		struct mime_message *m = mime_parse(b->data, b->len);
		struct buf out = BUF_INIT;

		mime_imap_bodystructure(&out, m, m->root, true, 0);
		mime_free(&m);
		buf_free(&out);
		t = now() - t;
		if (t < best)
			best = t;
	}
	return best;
}

/* big - a message of nparts base64 parts, size bytes in all */
static void
big(struct buf *b, size_t size, int nparts)
{
	size_t per = size / (size_t)nparts;

	buf_puts(b, "From: a@b\r\nContent-Type: multipart/mixed; "
	    "boundary=\"=_0123456789abcdef\"\r\n\r\n");
	for (int i = 0; i < nparts; i++) {
		size_t start = b->len;

		buf_printf(b, "--=_0123456789abcdef\r\nContent-Type: "
		    "application/octet-stream; name=\"f%d.bin\"\r\n"
		    "Content-Transfer-Encoding: base64\r\n\r\n", i);
		while (b->len - start < per)
			buf_puts(b, "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVph"
			    "YmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3"
			    "\r\n");
	}
	buf_puts(b, "--=_0123456789abcdef--\r\n");
}

#define DEEP_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

/* deep - 30 open multiparts, then lines that nearly match them all */
static void
deep(struct buf *b, size_t size)
{
	for (int i = 0; i < 30; i++)
		buf_printf(b, "Content-Type: multipart/mixed; boundary="
		    DEEP_B "%02d\n\n--" DEEP_B "%02d\n", i, i);
	buf_puts(b, "\n");
	while (b->len < size)
		buf_puts(b, "--" DEEP_B "x\n");
}

/* header - one huge header of short fields */
static void
header(struct buf *b, size_t size)
{
	while (b->len < size)
		buf_puts(b, "Content-Type: a/b; x=y\n continued\n");
	buf_puts(b, "\nbody\n");
}

/* check_linear - time at n and 2n; prints MB/s, fails when doubling the
 * input more than quadruples the time */
static void
check_linear(const char *what, void (*make)(struct buf *, size_t),
    size_t n)
{
	struct buf a = BUF_INIT, b = BUF_INIT;
	double ta, tb;

	make(&a, n);
	make(&b, 2 * n);
	ta = parse_time(&a);
	tb = parse_time(&b);
	printf("perf: %s: %.1f MB in %.3f s = %.0f MB/s; %.1f MB in %.3f s\n",
	    what, (double)a.len / 1e6, ta, (double)a.len / 1e6 / ta,
	    (double)b.len / 1e6, tb);
	T_ASSERT(tb < 4 * ta + 0.05);
	buf_free(&a);
	buf_free(&b);
}

/* make_big - big() at 1,000 parts */
static void
make_big(struct buf *b, size_t size)
{
	big(b, size, 1000);
}

static void
test_big_message(void)
{
	check_linear("20 MB, 1,000 base64 parts", make_big, 20 << 20);
}

static void
test_deep_near_boundaries(void)
{
	check_linear("near-boundary lines under 30 multiparts", deep, 4 << 20);
}

static void
test_huge_header(void)
{
	check_linear("one huge header", header, 4 << 20);
}

static void
test_words_bomb(void)
{
	struct buf a = BUF_INIT, b = BUF_INIT, out = BUF_INIT;
	double ta, tb;

	while (a.len < (1 << 20))
		buf_puts(&a, "=?=?utf-8?q?=?");
	buf_append(&b, a.data, a.len);
	buf_append(&b, a.data, a.len);
	ta = now();
	mime_words_decode(&out, a.data, a.len);
	ta = now() - ta;
	buf_reset(&out);
	tb = now();
	mime_words_decode(&out, b.data, b.len);
	tb = now() - tb;
	printf("perf: encoded-word bomb: 1 MB in %.3f s, 2 MB in %.3f s\n",
	    ta, tb);
	T_ASSERT(tb < 4 * ta + 0.05);
	buf_free(&a);
	buf_free(&b);
	buf_free(&out);
}

static const struct test_case cases[] = {
	{"20 MB message of 1,000 parts", test_big_message},
	{"near-boundary lines under 30 open multiparts",
	    test_deep_near_boundaries},
	{"one huge header", test_huge_header},
	{"encoded-word bomb", test_words_bomb},
	{0},
};

int
main(void)
{
	return test_run(cases);
}
