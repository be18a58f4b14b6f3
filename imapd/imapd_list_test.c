/*
 * imapd_list_test - the LIST pattern matcher ("*", "%", the delimiter)
 * and the quoting of mailbox names in modified UTF-7 and UTF-8.
 */
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/test.h"
#include "imapd.h"
#include "imapd_mailbox.h"
#include "imapd_store.h"

static void
test_match(void)
{
	T_ASSERT(imapd_list_match("*", "a.b.c"));
	T_ASSERT(imapd_list_match("*", ""));
	T_ASSERT(imapd_list_match("%", "abc"));
	T_ASSERT(!imapd_list_match("%", "a.b"));
	T_ASSERT(imapd_list_match("a.%", "a.b"));
	T_ASSERT(!imapd_list_match("a.%", "a.b.c"));
	T_ASSERT(imapd_list_match("a.*", "a.b.c"));
	T_ASSERT(!imapd_list_match("a.*", "a"));
	T_ASSERT(imapd_list_match("%.%.c", "a.b.c"));
	T_ASSERT(imapd_list_match("*c", "a.b.c"));
	T_ASSERT(imapd_list_match("*b*", "a.b.c"));
	T_ASSERT(!imapd_list_match("*x*", "a.b.c"));
	T_ASSERT(imapd_list_match("%%", "ab"));
	T_ASSERT(imapd_list_match("a%b%c", "aXbYc"));
	T_ASSERT(!imapd_list_match("a%b%c", "aX.bYc"));
	T_ASSERT(imapd_list_match("INBOX", "INBOX"));
	T_ASSERT(!imapd_list_match("INBOX", "INBOX.x"));
	T_ASSERT(!imapd_list_match("", "a"));
	T_ASSERT(imapd_list_match("", ""));
	T_ASSERT(!imapd_list_match("abc", "ab"));
	T_ASSERT(!imapd_list_match("ab", "abc"));
}

/* a pattern that makes a backtracking matcher exponential costs us the
 * product of the lengths */
static void
test_match_bounded(void)
{
	char pat[IMAPD_PATTERN_MAX + 1], name[256];
	clock_t t0 = clock();

	for (size_t i = 0; i < IMAPD_PATTERN_MAX - 1; i += 2) {
		pat[i] = '*';
		pat[i + 1] = '%';
	}
	pat[IMAPD_PATTERN_MAX - 1] = 'b';
	pat[IMAPD_PATTERN_MAX] = '\0';
	memset(name, 'a', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	for (int i = 0; i < 100; i++)
		T_ASSERT(!imapd_list_match(pat, name));
	T_ASSERT((double)(clock() - t0) / CLOCKS_PER_SEC < 5.0);
}

static void
test_names(void)
{
	struct buf o = BUF_INIT;

	imapd_store_write_name(false, "Entw\xc3\xbcrfe", &o);
	T_EQ_STR(buf_cstr(&o), "\"Entw&APw-rfe\"");
	buf_reset(&o);
	imapd_store_write_name(true, "Entw\xc3\xbcrfe", &o);
	T_EQ_STR(buf_cstr(&o), "\"Entw\xc3\xbcrfe\"");
	buf_reset(&o);
	imapd_store_write_name(false, "R&D", &o);
	T_EQ_STR(buf_cstr(&o), "\"R&-D\"");
	buf_reset(&o);
	imapd_store_write_name(true, "a\"b\\c", &o);
	T_EQ_STR(buf_cstr(&o), "\"a\\\"b\\\\c\"");
	buf_free(&o);
}

static const struct test_case cases[] = {
	{"pattern matching", test_match},
	{"hostile patterns are bounded", test_match_bounded},
	{"names in responses", test_names},
	{NULL, NULL},
};

int
main(void)
{
	return test_run(cases);
}
