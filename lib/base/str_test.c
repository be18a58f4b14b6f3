/*
 * str_test - unit tests of the str helpers and number parsers.
 */
#include <limits.h>
#include <string.h>

#include "base/buf.h"
#include "base/str.h"
#include "base/test.h"

/* test_ll - decimal parser bounds, signs and garbage */
static void
test_ll(void)
{
	long long v = 0;

	T_EQ_INT(str_to_ll("0", 0, 10, &v), 0);
	T_EQ_INT(v, 0);
	T_EQ_INT(str_to_ll("10", 0, 10, &v), 0);
	T_EQ_INT(v, 10);
	T_EQ_INT(str_to_ll("11", 0, 10, &v), -1);
	T_EQ_INT(str_to_ll("-1", 0, 10, &v), -1);
	T_EQ_INT(str_to_ll("-5", -10, 10, &v), 0);
	T_EQ_INT(v, -5);
	T_EQ_INT(str_to_ll("-11", -10, 10, &v), -1);
	T_EQ_INT(str_to_ll("+1", 0, 10, &v), -1);
	T_EQ_INT(str_to_ll("", 0, 10, &v), -1);
	T_EQ_INT(str_to_ll("-", -10, 10, &v), -1);
	T_EQ_INT(str_to_ll(" 1", 0, 10, &v), -1);
	T_EQ_INT(str_to_ll("1 ", 0, 10, &v), -1);
	T_EQ_INT(str_to_ll("1x", 0, 10, &v), -1);
	T_EQ_INT(str_to_ll("0x10", 0, 100, &v), -1);
	T_EQ_INT(str_to_ll("9223372036854775807", 0, LLONG_MAX, &v), 0);
	T_EQ_INT(v, LLONG_MAX);
	T_EQ_INT(str_to_ll("9223372036854775808", 0, LLONG_MAX, &v), -1);
	T_EQ_INT(str_to_ll("-9223372036854775808", LLONG_MIN, 0, &v), 0);
	T_EQ_INT(v, LLONG_MIN);
	T_EQ_INT(str_to_ll("-9223372036854775809", LLONG_MIN, 0, &v), -1);
	T_EQ_INT(str_to_ll("99999999999999999999999", 0, LLONG_MAX, &v), -1);
	v = 77;
	T_EQ_INT(str_to_ll("bad", 0, 10, &v), -1);
	T_EQ_INT(v, 77);		/* untouched on error */
}

/* test_size - byte sizes with 1024-based suffixes */
static void
test_size(void)
{
	long long v = 0;

	T_EQ_INT(str_to_size("10", &v), 0);
	T_EQ_INT(v, 10);
	T_EQ_INT(str_to_size("10k", &v), 0);
	T_EQ_INT(v, 10240);
	T_EQ_INT(str_to_size("10K", &v), 0);
	T_EQ_INT(v, 10240);
	T_EQ_INT(str_to_size("10M", &v), 0);
	T_EQ_INT(v, 10LL << 20);
	T_EQ_INT(str_to_size("1G", &v), 0);
	T_EQ_INT(v, 1LL << 30);
	T_EQ_INT(str_to_size("2t", &v), 0);
	T_EQ_INT(v, 2LL << 40);
	T_EQ_INT(str_to_size("0", &v), 0);
	T_EQ_INT(v, 0);
	T_EQ_INT(str_to_size("12Q", &v), -1);
	T_EQ_INT(str_to_size("M", &v), -1);
	T_EQ_INT(str_to_size("", &v), -1);
	T_EQ_INT(str_to_size("-1", &v), -1);
	T_EQ_INT(str_to_size("+1", &v), -1);
	T_EQ_INT(str_to_size("1MM", &v), -1);
	T_EQ_INT(str_to_size("1 M", &v), -1);
	T_EQ_INT(str_to_size("8388608T", &v), -1);	/* 2^63: overflow */
	T_EQ_INT(str_to_size("8388607T", &v), 0);
	T_EQ_INT(str_to_size("9223372036854775807", &v), 0);
	T_EQ_INT(v, LLONG_MAX);
	T_EQ_INT(str_to_size("9223372036854775808", &v), -1);
}

/* test_seconds - durations with s/m/h/d/w */
static void
test_seconds(void)
{
	long long v = 0;

	T_EQ_INT(str_to_seconds("30", &v), 0);
	T_EQ_INT(v, 30);
	T_EQ_INT(str_to_seconds("30s", &v), 0);
	T_EQ_INT(v, 30);
	T_EQ_INT(str_to_seconds("5m", &v), 0);
	T_EQ_INT(v, 300);
	T_EQ_INT(str_to_seconds("2h", &v), 0);
	T_EQ_INT(v, 7200);
	T_EQ_INT(str_to_seconds("5d", &v), 0);
	T_EQ_INT(v, 5 * 86400);
	T_EQ_INT(str_to_seconds("1w", &v), 0);
	T_EQ_INT(v, 604800);
	T_EQ_INT(str_to_seconds("1y", &v), -1);
	T_EQ_INT(str_to_seconds("5M", &v), -1);
	T_EQ_INT(str_to_seconds("-5s", &v), -1);
	T_EQ_INT(str_to_seconds("s", &v), -1);
	T_EQ_INT(str_to_seconds("", &v), -1);
	T_EQ_INT(str_to_seconds("99999999999999999w", &v), -1);
}

/* test_bool - the accepted spellings */
static void
test_bool(void)
{
	bool b = false;

	T_EQ_INT(str_to_bool("yes", &b), 0);
	T_ASSERT(b);
	T_EQ_INT(str_to_bool("No", &b), 0);
	T_ASSERT(!b);
	T_EQ_INT(str_to_bool("TRUE", &b), 0);
	T_ASSERT(b);
	T_EQ_INT(str_to_bool("off", &b), 0);
	T_ASSERT(!b);
	T_EQ_INT(str_to_bool("1", &b), 0);
	T_ASSERT(b);
	T_EQ_INT(str_to_bool("0", &b), 0);
	T_ASSERT(!b);
	T_EQ_INT(str_to_bool("", &b), -1);
	T_EQ_INT(str_to_bool("y", &b), -1);
	T_EQ_INT(str_to_bool("yess", &b), -1);
	T_EQ_INT(str_to_bool("2", &b), -1);
}

/* test_case_trim - lower, case compare, trim */
static void
test_case_trim(void)
{
	char s[] = "HeLLo.EXAMPLE";
	char t[] = " \t padded \r\n";
	char u[] = "   ";

	T_EQ_STR(str_lower(s), "hello.example");
	T_EQ_INT(str_casecmp("ABC", "abc"), 0);
	T_ASSERT(str_casecmp("abc", "abd") < 0);
	T_ASSERT(str_casecmp("abd", "ABC") > 0);
	T_ASSERT(str_casecmp("ab", "abc") < 0);
	T_EQ_INT(str_ncasecmp("MAIL FROM:", "mail from:<x>", 10), 0);
	T_ASSERT(str_ncasecmp("MAIL", "mai", 4) != 0);
	T_EQ_INT(str_ncasecmp("x", "y", 0), 0);
	T_EQ_STR(str_trim(t), "padded");
	T_EQ_STR(str_trim(u), "");
}

/* test_crlfnul - detection of line breaks and NUL */
static void
test_crlfnul(void)
{
	T_ASSERT(!str_has_crlfnul("abc", 3));
	T_ASSERT(str_has_crlfnul("a\rc", 3));
	T_ASSERT(str_has_crlfnul("a\nc", 3));
	T_ASSERT(str_has_crlfnul("a\0c", 3));
	T_ASSERT(!str_has_crlfnul("a\nc", 1));
	T_ASSERT(!str_has_crlfnul("", 0));
}

/* test_lcpy - strlcpy semantics */
static void
test_lcpy(void)
{
	char d[4];

	T_EQ_INT(str_lcpy(d, "ab", sizeof(d)), 2);
	T_EQ_STR(d, "ab");
	T_EQ_INT(str_lcpy(d, "abcdef", sizeof(d)), 6);
	T_EQ_STR(d, "abc");
	d[0] = 'x';
	T_EQ_INT(str_lcpy(d, "abc", 0), 3);
	T_EQ_INT(d[0], 'x');
	T_EQ_INT(str_lcpy(d, "", sizeof(d)), 0);
	T_EQ_STR(d, "");
}

/* test_printable - escaping and the length cap */
static void
test_printable(void)
{
	struct buf b = BUF_INIT;

	str_printable(&b, "a\r\nb\x7f\xff", 6, 100);
	T_EQ_STR(buf_cstr(&b), "a\\x0d\\x0ab\\x7f\\xff");
	buf_reset(&b);
	str_printable(&b, "abcdef", 6, 3);
	T_EQ_STR(buf_cstr(&b), "abc...");
	buf_reset(&b);
	str_printable(&b, "a\0b", 3, 3);
	T_EQ_STR(buf_cstr(&b), "a\\x00b");
	buf_free(&b);
}

static const struct test_case cases[] = {
	{"str_to_ll", test_ll},
	{"str_to_size", test_size},
	{"str_to_seconds", test_seconds},
	{"str_to_bool", test_bool},
	{"case and trim", test_case_trim},
	{"crlfnul", test_crlfnul},
	{"lcpy", test_lcpy},
	{"printable", test_printable},
	{0},
};

int
main(void)
{
	return test_run(cases);
}
