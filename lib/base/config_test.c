/*
 * config_test - unit tests of the settings table and the herald.conf
 * parser: defaults, types, bounds, checks, continuation lines, CRLF, and
 * malformed files (each must fail with "name:line: reason" and leave the
 * table unchanged).
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/mem.h"
#include "base/test.h"

static char *v_name;
static long long v_count;
static long long v_size;
static long long v_time;
static bool v_flag;
static char *v_list;
static char *v_checked;

/* check_no_x - a cfg_check_fn that refuses values with an 'x' */
static int
check_no_x(const char *value, struct buf *why)
{
	if (strchr(value, 'x') != NULL) {
		buf_printf(why, "no x allowed in \"%s\"", value);
		return -1;
	}
	return 0;
}

static struct cfg_entry table[] = {
	{"name", CFG_STR, "herald", &v_name, 0, 0, NULL, "a name", false, NULL},
	{"count", CFG_INT, "5", &v_count, 1, 100, NULL, "a count", false, NULL},
	{"message_size_limit", CFG_SIZE, "10M", &v_size, 0, 0, NULL, "bytes",
	    false, NULL},
	{"timeout", CFG_TIME, "5m", &v_time, 1, 3600, NULL, "secs", false,
	    NULL},
	{"flag", CFG_BOOL, "no", &v_flag, 0, 0, NULL, "a flag", false, NULL},
	{"list", CFG_LIST, "a, b c", &v_list, 0, 0, NULL, "a list", false,
	    NULL},
	{"checked", CFG_STR, "ok", &v_checked, 0, 0, check_no_x, "checked",
	    false, NULL},
	{0},
};

/* parse - cfg_parse of a C string named "herald.conf" */
static int
parse(const char *text, struct buf *why)
{
	buf_reset(why);
	return cfg_parse(table, "herald.conf", text, strlen(text), why);
}

/* test_defaults - every default lands typed; twice is fine (reload) */
static void
test_defaults(void)
{
	cfg_defaults(table);
	cfg_defaults(table);
	T_EQ_STR(v_name, "herald");
	T_EQ_INT(v_count, 5);
	T_EQ_INT(v_size, 10 << 20);
	T_EQ_INT(v_time, 300);
	T_ASSERT(!v_flag);
	T_EQ_STR(v_list, "a, b c");
	T_EQ_STR(table[2].text, "10M");
	T_ASSERT(!table[0].changed);
	T_EQ_STR(cfg_type_name(CFG_SIZE), "size");
	T_EQ_STR(cfg_type_name(CFG_LIST), "list");
	T_ASSERT(cfg_find(table, "timeout") == &table[3]);
	T_ASSERT(cfg_find(table, "nope") == NULL);
}

/* test_parse_good - a well-formed file with every feature */
static void
test_parse_good(void)
{
	struct buf why = BUF_INIT;
	const char *text =
	    "# comment\n"
	    "\n"
	    "name=mx.example.org\n"
	    "  # indented comment\n"
	    "count = 42\r\n"
	    "message_size_limit =   1k  \n"
	    "timeout = 2m\n"
	    "flag = yes\n"
	    "list = one,\n"
	    "   two\n"
	    "\tthree\n"
	    "checked =\n";

	cfg_defaults(table);
	T_EQ_INT(parse(text, &why), 0);
	T_EQ_STR(buf_cstr(&why), "");
	T_EQ_STR(v_name, "mx.example.org");
	T_EQ_INT(v_count, 42);
	T_EQ_INT(v_size, 1024);
	T_EQ_STR(table[2].text, "1k");
	T_EQ_INT(v_time, 120);
	T_ASSERT(v_flag);
	T_EQ_STR(v_list, "one, two three");
	T_EQ_STR(v_checked, "");
	T_ASSERT(table[0].changed);
	T_ASSERT(table[6].changed);
	/* a later file may set the same key again */
	T_EQ_INT(parse("count = 7", &why), 0);
	T_EQ_INT(v_count, 7);
	T_EQ_STR(v_name, "mx.example.org");
	buf_free(&why);
}

/* one malformed input and the error it must give */
struct bad_case {
	const char *text;
	size_t len;		/* 0: strlen(text) */
	const char *why;
};

/* test_parse_bad - malformed files fail and change nothing */
static void
test_parse_bad(void)
{
	static const struct bad_case bad[] = {
		{"name = a\nnoequals\n", 0, "herald.conf:2: missing '='"},
		{"= value\n", 0, "herald.conf:1: empty key"},
		{"  = value\n", 0,
		    "herald.conf:1: continuation line without a key"},
		{"count = ten\n", 0,
		    "herald.conf:1: count: bad integer \"ten\": use a whole "
		    "number"},
		{"count = 99999999999999999999\n", 0,
		    "herald.conf:1: count: bad integer "
		    "\"99999999999999999999\": use a whole number"},
		{"count = 101\n", 0,
		    "herald.conf:1: count: \"101\" is out of range (1..100)"},
		{"count = 0\n", 0,
		    "herald.conf:1: count: \"0\" is out of range (1..100)"},
		{"count = -3\n", 0,
		    "herald.conf:1: count: \"-3\" is out of range (1..100)"},
		{"\n\nmessage_size_limit = 12Q\n", 0,
		    "herald.conf:3: message_size_limit: bad size \"12Q\": "
		    "use a number of bytes with an optional b, k, M, G or T "
		    "suffix (powers of 1024)"},
		{"message_size_limit = 9999999999T\n", 0,
		    "herald.conf:1: message_size_limit: bad size "
		    "\"9999999999T\": use a number of bytes with an optional "
		    "b, k, M, G or T suffix (powers of 1024)"},
		{"timeout = 2y\n", 0,
		    "herald.conf:1: timeout: bad time \"2y\": use a number of "
		    "seconds with an optional s, m, h, d or w suffix"},
		{"timeout = 2h\n", 0,
		    "herald.conf:1: timeout: \"2h\" is out of range (1..3600)"},
		{"flag = maybe\n", 0, "herald.conf:1: flag: bad boolean "
		    "\"maybe\": use yes or no (also true/false, on/off, 1/0)"},
		{"# x\nfoo = 1\n", 0, "herald.conf:2: unknown key \"foo\""},
		{"name = a\ncount = 2\nname = b\n", 0,
		    "herald.conf:3: name set twice: line 1 and line 3"},
		{"count = 2\n# c\n\nname = a\n\n\nname = b\n", 0,
		    "herald.conf:7: name set twice: line 4 and line 7"},
		{"checked = box\n", 0,
		    "herald.conf:1: checked: no x allowed in \"box\""},
		/* the continuation makes the value bad; reported at its key */
		{"checked = ok\n  x\n", 0,
		    "herald.conf:1: checked: no x allowed in \"ok x\""},
		{"name = a\0b\n", 10, "herald.conf:1: NUL byte in line"},
		{"name = a\rb\n", 0, "herald.conf:1: control character in line"},
	};
	struct buf why = BUF_INIT;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t len = bad[i].len ? bad[i].len : strlen(bad[i].text);
		int rc;

		cfg_defaults(table);
		buf_reset(&why);
		rc = cfg_parse(table, "herald.conf", bad[i].text, len, &why);
		if (rc != -1 || strcmp(buf_cstr(&why), bad[i].why) != 0)
			fprintf(stderr, "  case %zu\n", i);
		T_EQ_INT(rc, -1);
		T_EQ_STR(buf_cstr(&why), bad[i].why);
		/* nothing was applied, not even the good lines before */
		T_EQ_STR(v_name, "herald");
		T_EQ_INT(v_count, 5);
		T_EQ_STR(v_checked, "ok");
		T_ASSERT(!table[0].changed);
	}
	buf_free(&why);
}

/* test_limits - 4096-byte lines pass, longer fail; 1 MiB files */
static void
test_limits(void)
{
	struct buf text = BUF_INIT, why = BUF_INIT;
	size_t pad;

	cfg_defaults(table);
	buf_puts(&text, "name = ");
	pad = 4096 - text.len;
	for (size_t i = 0; i < pad; i++)
		buf_putc(&text, 'n');
	T_EQ_INT(text.len, 4096);
	buf_puts(&text, "\r\n");	/* the line end does not count */
	T_EQ_INT(parse(buf_cstr(&text), &why), 0);
	T_EQ_INT(strlen(v_name), pad);
	buf_truncate(&text, 4096);
	buf_puts(&text, "n\n");
	T_EQ_INT(parse(buf_cstr(&text), &why), -1);
	T_EQ_STR(buf_cstr(&why),
	    "herald.conf:1: line is longer than 4096 bytes");
	/* continuation lines may not make a value that no line can hold
	 * (found by t/fuzz/config_fuzz: heraldctl config printed a line
	 * that could not be read back) */
	buf_truncate(&text, 4096);
	buf_puts(&text, "\n  more\n");
	T_EQ_INT(parse(buf_cstr(&text), &why), -1);
	T_EQ_STR(buf_cstr(&why), "herald.conf:2: value of name is longer "
	    "than 4096 bytes with \"name = \"");

	/* a file of comments just over 1 MiB */
	buf_reset(&text);
	while (text.len <= 1024 * 1024)
		buf_puts(&text, "# just a comment line to fill the file up\n");
	T_EQ_INT(parse(buf_cstr(&text), &why), -1);
	T_ASSERT(strstr(buf_cstr(&why), "larger than") != NULL);
	buf_free(&text);
	buf_free(&why);
}

/* test_load - a real file, and a missing one */
static void
test_load(void)
{
	char path[] = "/tmp/config_test.XXXXXX";
	const char *text = "name = from-file\ncount = 9\n";
	struct buf why = BUF_INIT;
	int fd;

	cfg_defaults(table);
	fd = mkstemp(path);
	T_ASSERT(fd >= 0);
	T_EQ_INT(write(fd, text, strlen(text)), (long long)strlen(text));
	close(fd);
	T_EQ_INT(cfg_load(table, path, &why), 0);
	T_EQ_STR(v_name, "from-file");
	T_EQ_INT(v_count, 9);
	unlink(path);
	buf_reset(&why);
	T_EQ_INT(cfg_load(table, path, &why), -1);
	T_ASSERT(strstr(buf_cstr(&why), "No such file") != NULL);
	T_ASSERT(strncmp(buf_cstr(&why), path, strlen(path)) == 0);
	buf_free(&why);
}

/* test_set - cfg_set by key, including from the stored text itself */
static void
test_set(void)
{
	struct buf why = BUF_INIT;

	cfg_defaults(table);
	T_EQ_INT(cfg_set(table, "flag", "on", &why), 0);
	T_ASSERT(v_flag);
	T_ASSERT(table[4].changed);
	T_EQ_INT(cfg_set(table, "name", v_name, &why), 0);
	T_EQ_STR(v_name, "herald");
	T_EQ_INT(cfg_set(table, "name", table[0].text, &why), 0);
	T_EQ_STR(table[0].text, "herald");
	T_EQ_INT(cfg_set(table, "bogus", "1", &why), -1);
	T_EQ_STR(buf_cstr(&why), "unknown key \"bogus\"");
	buf_reset(&why);
	T_EQ_INT(cfg_set(table, "count", "1000", &why), -1);
	T_EQ_STR(buf_cstr(&why), "count: \"1000\" is out of range (1..100)");
	T_EQ_INT(v_count, 5);
	buf_free(&why);
}

/* test_list - iterate a list value */
static void
test_list(void)
{
	const char *cur = " a, bb ,ccc,,\tdddd ";
	const char *want[] = {"a", "bb", "ccc", "ddd"};
	char item[4];
	int n = 0;

	while (cfg_list_next(&cur, item, sizeof(item))) {
		T_ASSERT(n < 4);
		T_EQ_STR(item, want[n]);
		n++;
	}
	T_EQ_INT(n, 4);
	cur = "";
	T_EQ_INT(cfg_list_next(&cur, item, sizeof(item)), 0);
	cur = NULL;
	T_EQ_INT(cfg_list_next(&cur, item, sizeof(item)), 0);
}

static long long v_bad;
static struct cfg_entry bad_table[] = {
	{"bad", CFG_INT, "x", &v_bad, 0, 0, NULL, "bad default", false, NULL},
	{0},
};

/* test_bad_default - a bad default is a bug */
static void
test_bad_default(void)
{
	T_EXPECT_DEATH(cfg_defaults(bad_table));
}

/* test_free - cfg_free releases and clears */
static void
test_free(void)
{
	cfg_defaults(table);
	cfg_free(table);
	T_ASSERT(v_name == NULL);
	T_ASSERT(v_list == NULL);
	T_ASSERT(table[0].text == NULL);
	cfg_free(table);
}

/* test_read_shared - cfg_read reads a descriptor whole from its start,
 * whatever its offset (master's memfd is shared by every child) */
static void
test_read_shared(void)
{
	struct buf text = BUF_INIT, why = BUF_INIT;
	char big[5000];
	int fd;

	memset(big, 'k', sizeof(big));
	T_ASSERT((fd = memfd_create("t", MFD_CLOEXEC)) >= 0);
	for (int i = 0; i < 3; i++)
		T_ASSERT(write(fd, big, sizeof(big)) == (ssize_t)sizeof(big));
	/* the offset is at the end now, as after a sibling's read */
	T_ASSERT(cfg_read(fd, "memfd", &text, &why) == 0);
	T_ASSERT(text.len == 3 * sizeof(big));
	T_ASSERT(cfg_read(fd, "memfd", &text, &why) == 0);
	T_ASSERT(text.len == 6 * sizeof(big));
	(void)close(fd);
	/* a closed descriptor is an error naming the source */
	T_ASSERT(cfg_read(fd, "memfd", &text, &why) < 0);
	T_ASSERT(strstr(buf_cstr(&why), "memfd: read") != NULL);
	buf_free(&text);
	buf_free(&why);
}

static const struct test_case cases[] = {
	{"defaults", test_defaults},
	{"good file", test_parse_good},
	{"malformed files", test_parse_bad},
	{"line and file limits", test_limits},
	{"cfg_load", test_load},
	{"cfg_read from a shared descriptor", test_read_shared},
	{"cfg_set", test_set},
	{"list iteration", test_list},
	{"bad default panics", test_bad_default},
	{"cfg_free", test_free},
	{0},
};

int
main(void)
{
	return test_run(cases);
}
