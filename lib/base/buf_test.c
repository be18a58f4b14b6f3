/*
 * buf_test - unit tests of struct buf: growth, limit, overflow, consume,
 * printf, steal.
 */
#include <errno.h>
#include <string.h>

#include "base/buf.h"
#include "base/mem.h"
#include "base/test.h"

/* test_empty - a fresh buffer is "" and owns nothing */
static void
test_empty(void)
{
	struct buf b = BUF_INIT, c;

	T_EQ_INT(b.len, 0);
	T_EQ_INT(b.cap, 0);
	T_EQ_STR(buf_cstr(&b), "");
	buf_init(&c);
	T_ASSERT(c.data != NULL);
	T_EQ_STR(buf_cstr(&c), "");
	buf_free(&b);
	T_ASSERT(b.data != NULL);
	T_EQ_STR(buf_cstr(&b), "");
	buf_reset(&c);
	buf_consume(&c, 5);
	buf_truncate(&c, 0);
	T_EQ_STR(buf_cstr(&c), "");
}

/* test_growth - many appends keep content and the NUL */
static void
test_growth(void)
{
	struct buf b = BUF_INIT;
	char want[10001];

	for (int i = 0; i < 10000; i++) {
		buf_putc(&b, 'a' + i % 26);
		want[i] = (char)('a' + i % 26);
		T_ASSERT(b.cap > b.len);
		T_EQ_INT(b.data[b.len], 0);
	}
	want[10000] = '\0';
	T_EQ_INT(b.len, 10000);
	T_EQ_STR(buf_cstr(&b), want);
	buf_free(&b);
	T_EQ_INT(b.len, 0);
	T_EQ_INT(b.cap, 0);
}

/* test_binary - NUL bytes are data */
static void
test_binary(void)
{
	struct buf b = BUF_INIT;

	buf_append(&b, "a\0b", 3);
	buf_putc(&b, 0);
	T_EQ_INT(b.len, 4);
	T_EQ_MEM(b.data, b.len, "a\0b\0", 4);
	T_EQ_INT(b.data[4], 0);
	buf_free(&b);
}

/* test_limit - appends stop at the limit and set the sticky flag */
static void
test_limit(void)
{
	struct buf b = BUF_INIT;

	buf_set_limit(&b, 5);
	buf_puts(&b, "abc");
	T_ASSERT(!b.overflow);
	buf_puts(&b, "de");
	T_ASSERT(!b.overflow);
	T_EQ_STR(buf_cstr(&b), "abcde");
	buf_putc(&b, 'f');
	T_ASSERT(b.overflow);
	T_EQ_STR(buf_cstr(&b), "abcde");
	buf_consume(&b, 2);
	T_ASSERT(b.overflow);		/* sticky */
	buf_puts(&b, "xyz");
	T_EQ_STR(buf_cstr(&b), "cdexy");
	buf_reset(&b);
	T_ASSERT(!b.overflow);
	T_EQ_INT(b.limit, 5);
	buf_append(&b, "0123456789", 10);
	T_ASSERT(b.overflow);
	T_EQ_STR(buf_cstr(&b), "01234");
	buf_append(&b, "", 0);		/* empty append at the limit is fine */
	buf_free(&b);
	T_ASSERT(!b.overflow);
	T_EQ_INT(b.limit, 5);
	buf_set_limit(&b, 0);
	buf_puts(&b, "0123456789");
	T_ASSERT(!b.overflow);
	buf_set_limit(&b, 3);
	T_ASSERT(b.overflow);
	T_EQ_STR(buf_cstr(&b), "012");
	buf_free(&b);
}

/* test_printf_limit - formatted text is cut at the limit too */
static void
test_printf_limit(void)
{
	struct buf b = BUF_INIT;

	buf_set_limit(&b, 8);
	buf_printf(&b, "%d-%s", 42, "x");
	T_EQ_STR(buf_cstr(&b), "42-x");
	T_ASSERT(!b.overflow);
	buf_printf(&b, "%s", "123456");
	T_EQ_STR(buf_cstr(&b), "42-x1234");
	T_ASSERT(b.overflow);
	T_EQ_INT(b.len, 8);
	buf_printf(&b, "more");
	T_EQ_INT(b.len, 8);
	buf_free(&b);
}

/* test_printf - growth through printf, %m, long output */
static void
test_printf(void)
{
	struct buf b = BUF_INIT;
	char big[3000];

	buf_printf(&b, "%s=%d", "n", 7);
	T_EQ_STR(buf_cstr(&b), "n=7");
	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	buf_printf(&b, "[%s]", big);
	T_EQ_INT(b.len, 3 + 2 + 2999);
	T_EQ_INT(b.data[4], 'z');
	T_EQ_INT(b.data[b.len - 1], ']');
	buf_reset(&b);
	errno = ENOENT;
	buf_printf(&b, "x: %m");
	T_EQ_STR(buf_cstr(&b), "x: No such file or directory");
	/* small, fits in existing capacity */
	buf_reset(&b);
	buf_printf(&b, "%c", 'q');
	T_EQ_STR(buf_cstr(&b), "q");
	buf_free(&b);
}

/* test_consume - drop prefixes, including more than len */
static void
test_consume(void)
{
	struct buf b = BUF_INIT;

	buf_puts(&b, "hello world");
	buf_consume(&b, 6);
	T_EQ_STR(buf_cstr(&b), "world");
	buf_consume(&b, 0);
	T_EQ_STR(buf_cstr(&b), "world");
	buf_consume(&b, 100);
	T_EQ_STR(buf_cstr(&b), "");
	T_EQ_INT(b.len, 0);
	buf_puts(&b, "abc");
	buf_truncate(&b, 10);
	T_EQ_STR(buf_cstr(&b), "abc");
	buf_truncate(&b, 1);
	T_EQ_STR(buf_cstr(&b), "a");
	buf_free(&b);
}

/* test_set_steal - replace and hand over */
static void
test_set_steal(void)
{
	struct buf b = BUF_INIT;
	char *s;

	buf_set(&b, "first");
	buf_set(&b, "second");
	T_EQ_STR(buf_cstr(&b), "second");
	buf_set(&b, b.data + 3);	/* overlapping source */
	T_EQ_STR(buf_cstr(&b), "ond");
	s = buf_steal(&b);
	T_EQ_STR(s, "ond");
	T_EQ_INT(b.len, 0);
	T_EQ_STR(buf_cstr(&b), "");
	x_free(&s);
	T_ASSERT(s == NULL);
	s = buf_steal(&b);		/* empty buffer: still a string */
	T_EQ_STR(s, "");
	x_free(&s);
}

/* test_reserve - reserve gives room without changing len */
static void
test_reserve(void)
{
	struct buf b = BUF_INIT;

	buf_puts(&b, "ab");
	buf_reserve(&b, 1000);
	T_ASSERT(b.cap >= 1003);
	T_EQ_INT(b.len, 2);
	T_EQ_STR(buf_cstr(&b), "ab");
	buf_free(&b);
}

/* test_overflow_panics - a size_t overflow is a bug */
static void
test_overflow_panics(void)
{
	struct buf b = BUF_INIT;

	buf_puts(&b, "x");
	T_EXPECT_DEATH(buf_reserve(&b, (size_t)-1));
	buf_free(&b);
}

static const struct test_case cases[] = {
	{"empty buffer", test_empty},
	{"growth", test_growth},
	{"binary data", test_binary},
	{"limit and overflow", test_limit},
	{"printf at limit", test_printf_limit},
	{"printf", test_printf},
	{"consume and truncate", test_consume},
	{"set and steal", test_set_steal},
	{"reserve", test_reserve},
	{"size overflow panics", test_overflow_panics},
	{0},
};

int
main(void)
{
	return test_run(cases);
}
