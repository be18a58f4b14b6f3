/*
 * imap_write_test - strings in responses: atom, quoted with escapes, or
 * literal when quoting cannot carry the bytes.
 */
#include <string.h>

#include "base/buf.h"
#include "base/test.h"
#include "imapd.h"

/* w - one writer's output for p[0..n) */
static const char *
w(void (*fn)(struct buf *, const char *, size_t), const char *p, size_t n,
    struct buf *out)
{
	buf_reset(out);
	fn(out, p, n);
	return buf_cstr(out);
}

static void
test_strings(void)
{
	struct buf o = BUF_INIT;
	char big[1100];

	T_EQ_STR(w(imap_write_string, "abc", 3, &o), "\"abc\"");
	T_EQ_STR(w(imap_write_string, "", 0, &o), "\"\"");
	T_EQ_STR(w(imap_write_string, "a\"b\\c", 5, &o), "\"a\\\"b\\\\c\"");
	T_EQ_STR(w(imap_write_string, "a\r\nb", 4, &o), "{4}\r\na\r\nb");
	T_EQ_STR(w(imap_write_string, "\xc3\xa9", 2, &o), "{2}\r\n\xc3\xa9");
	w(imap_write_string, "a\0b", 3, &o);
	T_EQ_MEM(o.data, o.len, "{3}\r\na\0b", 8);
	memset(big, 'x', sizeof(big));
	w(imap_write_string, big, sizeof(big), &o);
	T_ASSERT(strncmp(buf_cstr(&o), "{1100}\r\n", 8) == 0);
	buf_free(&o);
}

static void
test_astrings(void)
{
	struct buf o = BUF_INIT;

	T_EQ_STR(w(imap_write_astring, "INBOX", 5, &o), "INBOX");
	T_EQ_STR(w(imap_write_astring, "a]b", 3, &o), "a]b");
	T_EQ_STR(w(imap_write_astring, "nil", 3, &o), "\"nil\"");
	T_EQ_STR(w(imap_write_astring, "", 0, &o), "\"\"");
	T_EQ_STR(w(imap_write_astring, "a b", 3, &o), "\"a b\"");
	T_EQ_STR(w(imap_write_astring, "a*", 2, &o), "\"a*\"");
	T_EQ_STR(w(imap_write_astring, "(x)", 3, &o), "\"(x)\"");
	buf_reset(&o);
	imap_write_nstring(&o, NULL, 0);
	T_EQ_STR(buf_cstr(&o), "NIL");
	buf_free(&o);
}

static void
test_numbers(void)
{
	struct buf o = BUF_INIT;

	imap_write_number(&o, 0);
	buf_putc(&o, ' ');
	imap_write_number(&o, 4294967295U);
	buf_putc(&o, ' ');
	imap_write_number(&o, UINT64_MAX);
	T_EQ_STR(buf_cstr(&o), "0 4294967295 18446744073709551615");
	buf_free(&o);
}

static const struct test_case cases[] = {
	{"strings", test_strings},
	{"numbers", test_numbers},
	{"astrings and nstrings", test_astrings},
	{NULL, NULL},
};

int
main(void)
{
	return test_run(cases);
}
