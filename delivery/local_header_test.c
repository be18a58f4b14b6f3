/*
 * local_header_test - the loop-detection header scan: hop counting,
 * Delivered-To: values, folding, case, the end of the header section,
 * bounds, and every chunk size from 1 byte.
 */
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "base/test.h"
#include "local.h"

/* scan - feed text in chunks of size (0: all at once) */
static void
scan(struct local_header *h, const char *text, size_t len, size_t size)
{
	local_header_init(h);
	if (size == 0)
		size = len ? len : 1;
	for (size_t off = 0; off < len; off += size)
		local_header_feed(h, text + off,
		    len - off < size ? len - off : size);
	local_header_end(h);
}

/* check_all_sizes - hops and Delivered-To values must not depend on the
 * chunking; values is "a,b," */
static int
check_all_sizes(const char *text, int hops, const char *values)
{
	size_t len = strlen(text);

	for (size_t size = 1; size <= len + 1; size++) {
		struct local_header h;
		struct buf got = BUF_INIT;
		int bad;

		scan(&h, text, len, size);
		for (size_t i = 0; i < h.ndelivered; i++)
			buf_printf(&got, "%s,", h.delivered_to[i]);
		bad = h.hops != hops || strcmp(got.data, values) != 0;
		if (bad)
			fprintf(stderr, "  chunk %zu: hops %d want %d, values "
			    "\"%s\" want \"%s\"\n", size, h.hops, hops,
			    got.data, values);
		buf_free(&got);
		local_header_free(&h);
		if (bad)
			return 1;
	}
	return 0;
}

static void
test_counts(void)
{
	T_ASSERT(!check_all_sizes(
	    "Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
	    "received: from c\r\n"
	    "X-Received: not a hop\r\n"
	    "Delivered-To: alice@example.org\r\n"
	    "Subject: hi\r\n"
	    "\r\n"
	    "Received: in the body does not count\r\n"
	    "Delivered-To: body@example.org\r\n", 3, "alice@example.org,"));
}

static void
test_folding(void)
{
	T_ASSERT(!check_all_sizes(
	    "Received: from a\r\n"
	    "\tby b\r\n"
	    "  with c\r\n"
	    "Delivered-To:\r\n"
	    " <Bob@Example.ORG> \r\n"
	    "Subject: x\r\n\r\nbody\r\n", 2, "bob@example.org,"));
}

static void
test_lf_and_blanks(void)
{
	/* LF-only lines, blanks before the colon (obsolete syntax) */
	T_ASSERT(!check_all_sizes(
	    "DELIVERED-TO : <carol@example.org>\n"
	    "Received : x\n"
	    "\n"
	    "Received: body\n", 2, "carol@example.org,"));
}

static void
test_no_body(void)
{
	/* a header section without the empty line still counts fully */
	T_ASSERT(!check_all_sizes("Received: a\r\nDelivered-To: x@y", 2,
	    "x@y,"));
	T_ASSERT(!check_all_sizes("", 0, ""));
	T_ASSERT(!check_all_sizes("\r\nReceived: body\r\n", 0, ""));
}

static void
test_not_a_header(void)
{
	/* a line without a colon ends the header section */
	T_ASSERT(!check_all_sizes(
	    "Received: a\r\nthis is body text\r\nReceived: b\r\n", 1, ""));
	/* a continuation before any field is no field */
	T_ASSERT(!check_all_sizes(" Received: a\r\nReceived: b\r\n\r\n", 1,
	    ""));
}

static void
test_long_name(void)
{
	char text[200];

	snprintf(text, sizeof(text), "%s: x\r\nReceived: y\r\n\r\n",
	    "Received-But-With-A-Very-Long-Field-Name-Indeed");
	T_ASSERT(!check_all_sizes(text, 1, ""));
}

static void
test_bounds(void)
{
	struct buf text = BUF_INIT;
	struct local_header h;

	/* many fields: all count, the kept values are bounded */
	for (int i = 0; i < LOCAL_HEADER_VALUES + 50; i++)
		buf_printf(&text, "Delivered-To: u%d@example.org\r\n", i);
	buf_puts(&text, "\r\n");
	scan(&h, text.data, text.len, 4096);
	T_EQ_INT(h.hops, LOCAL_HEADER_VALUES + 50);
	T_EQ_INT(h.ndelivered, LOCAL_HEADER_VALUES);
	T_ASSERT(local_header_delivered_to(&h, "U7@EXAMPLE.ORG"));
	T_ASSERT(!local_header_delivered_to(&h, "u7@example.or"));
	local_header_free(&h);

	/* a huge value is cut, not grown without bound */
	buf_reset(&text);
	buf_puts(&text, "Delivered-To: ");
	for (int i = 0; i < 100000; i++)
		buf_putc(&text, 'a');
	buf_puts(&text, "\r\n\r\n");
	scan(&h, text.data, text.len, 999);
	T_EQ_INT(h.hops, 1);
	T_EQ_INT(h.ndelivered, 1);
	T_ASSERT(strlen(h.delivered_to[0]) <= LOCAL_HEADER_VALUE_MAX);
	local_header_free(&h);
	buf_free(&text);
}

static void
test_delivered_to_match(void)
{
	struct local_header h;
	const char *text = "Delivered-To: <Alice@Example.org>\r\n"
	    "Delivered-To: bob@example.org\r\n\r\n";

	scan(&h, text, strlen(text), 0);
	T_ASSERT(local_header_delivered_to(&h, "alice@example.org"));
	T_ASSERT(local_header_delivered_to(&h, "BOB@example.org"));
	T_ASSERT(!local_header_delivered_to(&h, "carol@example.org"));
	local_header_free(&h);
}

static const struct test_case cases[] = {
	{"Received and Delivered-To count, body does not", test_counts},
	{"folded fields", test_folding},
	{"LF lines and blanks before the colon", test_lf_and_blanks},
	{"header without body", test_no_body},
	{"non-header line ends the header", test_not_a_header},
	{"long field names match nothing", test_long_name},
	{"memory bounds", test_bounds},
	{"Delivered-To matching", test_delivered_to_match},
	{0},
};

int
main(void)
{
	return test_run(cases);
}
