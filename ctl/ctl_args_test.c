/*
 * ctl_args_test - heraldctl's argument parsing, input checks and output
 * formats: what an admin types and what scripts read.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/test.h"
#include "ctl.h"

static const struct ctl_opt opts_quota[] = {{"quota", true},
    {"force", false}, {NULL, false}};

/* parse - split a command line held in one string at blanks */
static int
parse(const char *line, const struct ctl_opt *opts, int min, int max,
    struct ctl_args *a, struct buf *why)
{
	static char copy[512];
	static char *argv[32];
	int argc = 0;

	snprintf(copy, sizeof(copy), "%s", line);
	for (char *tok = strtok(copy, " "); tok && argc < 31;
	    tok = strtok(NULL, " "))
		argv[argc++] = tok;
	argv[argc] = NULL;
	buf_reset(why);
	return ctl_args_parse(argc, argv, opts, min, max, a, why);
}

static void
test_args_operands(void)
{
	struct buf why = BUF_INIT;
	struct ctl_args a;

	T_EQ_INT(parse("a@b.c", opts_quota, 1, 1, &a, &why), CTL_ARGS_OK);
	T_EQ_INT(a.npos, 1);
	T_EQ_STR(a.pos[0], "a@b.c");
	T_EQ_INT(ctl_args_has(&a, "quota"), 0);
	T_ASSERT(ctl_args_value(&a, "quota") == NULL);
	T_EQ_INT(parse("", opts_quota, 1, 1, &a, &why), CTL_ARGS_BAD);
	T_EQ_STR(buf_cstr(&why), "missing argument");
	T_EQ_INT(parse("x", NULL, 2, 3, &a, &why), CTL_ARGS_BAD);
	T_EQ_STR(buf_cstr(&why), "missing argument");
	T_EQ_INT(parse("", NULL, 2, 3, &a, &why), CTL_ARGS_BAD);
	T_EQ_STR(buf_cstr(&why), "missing arguments");
	T_EQ_INT(parse("a b", NULL, 0, 1, &a, &why), CTL_ARGS_BAD);
	T_EQ_STR(buf_cstr(&why), "unexpected argument \"b\"");
	T_EQ_INT(parse("a b c d", NULL, 1, CTL_ARGS_MAX, &a, &why),
	    CTL_ARGS_OK);
	T_EQ_INT(a.npos, 4);
	T_EQ_STR(a.pos[3], "d");
	buf_free(&why);
}

static void
test_args_options(void)
{
	struct buf why = BUF_INIT;
	struct ctl_args a;

	/* value as the next word, after the operand */
	T_EQ_INT(parse("a@b.c --quota 10M", opts_quota, 1, 1, &a, &why),
	    CTL_ARGS_OK);
	T_EQ_STR(ctl_args_value(&a, "quota"), "10M");
	T_EQ_STR(a.pos[0], "a@b.c");
	/* "=" form, before the operand */
	T_EQ_INT(parse("--quota=1G a@b.c --force", opts_quota, 1, 1, &a,
	    &why), CTL_ARGS_OK);
	T_EQ_STR(ctl_args_value(&a, "quota"), "1G");
	T_EQ_INT(ctl_args_has(&a, "force"), 1);
	T_EQ_INT(a.npos, 1);
	/* an empty value is a value */
	T_EQ_INT(parse("x --quota=", opts_quota, 1, 1, &a, &why),
	    CTL_ARGS_OK);
	T_EQ_STR(ctl_args_value(&a, "quota"), "");
	T_EQ_INT(parse("x --quota", opts_quota, 1, 1, &a, &why),
	    CTL_ARGS_BAD);
	T_EQ_STR(buf_cstr(&why), "option --quota needs a value");
	T_EQ_INT(parse("x --force=yes", opts_quota, 1, 1, &a, &why),
	    CTL_ARGS_BAD);
	T_EQ_STR(buf_cstr(&why), "option --force takes no value");
	T_EQ_INT(parse("x --force --force", opts_quota, 1, 1, &a, &why),
	    CTL_ARGS_BAD);
	T_EQ_STR(buf_cstr(&why), "option --force given twice");
	T_EQ_INT(parse("x --frob", opts_quota, 1, 1, &a, &why),
	    CTL_ARGS_BAD);
	T_EQ_STR(buf_cstr(&why), "unknown option --frob");
	T_EQ_INT(parse("x -f", opts_quota, 1, 1, &a, &why), CTL_ARGS_BAD);
	T_EQ_STR(buf_cstr(&why), "unknown option -f");
	/* options of another command are unknown here */
	T_EQ_INT(parse("--quota 1", NULL, 0, 0, &a, &why), CTL_ARGS_BAD);
	/* --json everywhere; "--" ends options; "-" is an operand */
	T_EQ_INT(parse("--json", NULL, 0, 0, &a, &why), CTL_ARGS_OK);
	T_EQ_INT(a.json, 1);
	T_EQ_INT(parse("-- --force -", opts_quota, 2, 2, &a, &why),
	    CTL_ARGS_OK);
	T_EQ_STR(a.pos[0], "--force");
	T_EQ_STR(a.pos[1], "-");
	T_EQ_INT(ctl_args_has(&a, "force"), 0);
	buf_free(&why);
}

static void
test_args_help(void)
{
	struct buf why = BUF_INIT;
	struct ctl_args a;

	T_EQ_INT(parse("--help", NULL, 1, 1, &a, &why), CTL_ARGS_HELP);
	T_EQ_INT(parse("x -h", NULL, 1, 1, &a, &why), CTL_ARGS_HELP);
	T_EQ_INT(parse("help", NULL, 0, 0, &a, &why), CTL_ARGS_HELP);
	/* help wins over a missing operand */
	T_EQ_INT(parse("help", NULL, 2, 2, &a, &why), CTL_ARGS_HELP);
	/* after "--" it is just a word */
	T_EQ_INT(parse("-- --help", NULL, 1, 1, &a, &why), CTL_ARGS_OK);
	buf_free(&why);
}

static void
test_input_domain(void)
{
	static const char *const bad[] = {"", ".", "a..b", ".a", "a.",
	    "-a.b", "a-.b", "a_b.c", "a b", "[1.2.3.4]", "ex/ample.org",
	    "b\xc3\xa4r.de", NULL};
	struct buf out = BUF_INIT, why = BUF_INIT;
	char label[80], longname[300];

	T_EQ_INT(ctl_input_domain("Example.ORG", &out, &why), 0);
	T_EQ_STR(buf_cstr(&out), "example.org");
	T_EQ_INT(ctl_input_domain("localhost", &out, &why), 0);
	T_EQ_INT(ctl_input_domain("xn--br-via.de", &out, &why), 0);
	T_EQ_INT(ctl_input_domain("a-b.c0", &out, &why), 0);
	for (int i = 0; bad[i] != NULL; i++) {
		buf_reset(&why);
		if (ctl_input_domain(bad[i], &out, &why) != -1)
			T_FAIL_("domain \"%s\" accepted", bad[i]);
		T_ASSERT(why.len > 0);
	}
	memset(label, 'a', 64);
	label[64] = '\0';
	T_EQ_INT(ctl_input_domain(label, &out, &why), -1);
	label[63] = '\0';
	T_EQ_INT(ctl_input_domain(label, &out, &why), 0);
	memset(longname, 'a', sizeof(longname));
	for (int i = 50; i < 290; i += 50)
		longname[i] = '.';
	longname[254] = '\0';
	T_EQ_INT(ctl_input_domain(longname, &out, &why), -1);
	buf_free(&out);
	buf_free(&why);
}

static void
test_input_address(void)
{
	static const char *const bad[] = {"alice", "@example.org", "alice@",
	    "al ice@example.org", "alice@exa_mple.org", "\"../x\"@example.org",
	    "\"a/b\"@example.org", "\".x\"@example.org", "alice@[127.0.0.1]",
	    "<alice@example.org>", NULL};
	struct buf out = BUF_INIT, why = BUF_INIT;

	T_EQ_INT(ctl_input_address("Alice@Example.ORG", &out, &why), 0);
	T_EQ_STR(buf_cstr(&out), "alice@example.org");
	T_EQ_INT(ctl_input_address("first.last+tag@example.org", &out, &why),
	    0);
	T_EQ_STR(buf_cstr(&out), "first.last+tag@example.org");
	for (int i = 0; bad[i] != NULL; i++) {
		buf_reset(&why);
		if (ctl_input_address(bad[i], &out, &why) != -1)
			T_FAIL_("address \"%s\" accepted as \"%s\"", bad[i],
			    buf_cstr(&out));
		T_ASSERT(why.len > 0);
	}
	/* catch-all keys */
	T_EQ_INT(ctl_input_alias_key("@Example.org", &out, &why), 0);
	T_EQ_STR(buf_cstr(&out), "@example.org");
	T_EQ_INT(ctl_input_alias_key("Post@example.org", &out, &why), 0);
	T_EQ_STR(buf_cstr(&out), "post@example.org");
	T_EQ_INT(ctl_input_alias_key("@", &out, &why), -1);
	T_EQ_INT(ctl_input_alias_key("@@x.org", &out, &why), -1);
	buf_free(&out);
	buf_free(&why);
}

static void
test_input_quota(void)
{
	struct buf why = BUF_INIT;
	long long q = 99;

	T_EQ_INT(ctl_input_quota("default", &q, &why), 0);
	T_EQ_INT(q, -1);
	T_EQ_INT(ctl_input_quota("0", &q, &why), 0);
	T_EQ_INT(q, 0);
	T_EQ_INT(ctl_input_quota("none", &q, &why), 0);
	T_EQ_INT(q, 0);
	T_EQ_INT(ctl_input_quota("10M", &q, &why), 0);
	T_EQ_INT(q, 10LL << 20);
	T_EQ_INT(ctl_input_quota("2G", &q, &why), 0);
	T_EQ_INT(q, 2LL << 30);
	T_EQ_INT(ctl_input_quota("-1", &q, &why), -1);
	T_EQ_INT(ctl_input_quota("10X", &q, &why), -1);
	T_EQ_INT(ctl_input_quota("", &q, &why), -1);
	T_EQ_INT(ctl_input_quota("99999999999999999999", &q, &why), -1);
	buf_free(&why);
}

/* read_password - feed text into a pipe, read the first line back; the
 * rest of the pipe goes to rest */
static int
read_password(const char *text, size_t len, struct buf *pw, struct buf *why,
    struct buf *rest)
{
	int fds[2], r;
	char c;

	if (pipe(fds) < 0)
		return -2;
	if (write(fds[1], text, len) != (ssize_t)len)
		return -2;
	(void)close(fds[1]);
	buf_reset(pw);
	buf_reset(why);
	r = ctl_input_password_line(fds[0], pw, why);
	buf_reset(rest);
	while (read(fds[0], &c, 1) == 1)
		buf_putc(rest, c);
	(void)close(fds[0]);
	return r;
}

static void
test_input_password(void)
{
	struct buf pw = BUF_INIT, why = BUF_INIT, rest = BUF_INIT;
	char big[CTL_PASSWORD_MAX + 2];

	T_EQ_INT(read_password("s3cret\n", 7, &pw, &why, &rest), 0);
	T_EQ_STR(buf_cstr(&pw), "s3cret");
	T_EQ_INT(read_password("s3cret\r\n", 8, &pw, &why, &rest), 0);
	T_EQ_STR(buf_cstr(&pw), "s3cret");
	T_EQ_INT(read_password("no newline", 10, &pw, &why, &rest), 0);
	T_EQ_STR(buf_cstr(&pw), "no newline");
	/* blanks are part of a password */
	T_EQ_INT(read_password(" a b \n", 6, &pw, &why, &rest), 0);
	T_EQ_STR(buf_cstr(&pw), " a b ");
	/* only the first line is consumed */
	T_EQ_INT(read_password("one\ntwo\n", 8, &pw, &why, &rest), 0);
	T_EQ_STR(buf_cstr(&pw), "one");
	T_EQ_STR(buf_cstr(&rest), "two\n");
	T_EQ_INT(read_password("\n", 1, &pw, &why, &rest), -1);
	T_EQ_STR(buf_cstr(&why), "empty password");
	T_EQ_INT(read_password("", 0, &pw, &why, &rest), -1);
	T_EQ_STR(buf_cstr(&why), "empty password");
	T_EQ_INT(read_password("\r\n", 2, &pw, &why, &rest), -1);
	T_EQ_INT(read_password("a\0b\n", 4, &pw, &why, &rest), -1);
	T_EQ_STR(buf_cstr(&why), "password contains a NUL byte");
	memset(big, 'x', sizeof(big));
	big[CTL_PASSWORD_MAX] = '\n';
	T_EQ_INT(read_password(big, CTL_PASSWORD_MAX + 1, &pw, &why, &rest),
	    0);
	T_EQ_INT(pw.len, CTL_PASSWORD_MAX);
	big[CTL_PASSWORD_MAX] = 'x';
	big[CTL_PASSWORD_MAX + 1] = '\n';
	T_EQ_INT(read_password(big, CTL_PASSWORD_MAX + 2, &pw, &why, &rest),
	    -1);
	buf_free(&pw);
	buf_free(&why);
	buf_free(&rest);
}

static void
test_json(void)
{
	struct buf out = BUF_INIT;
	struct ctl_json j;

	ctl_json_init(&j, &out);
	ctl_json_open(&j, '{');
	ctl_json_kbool(&j, "running", true);
	ctl_json_key(&j, "list");
	ctl_json_open(&j, '[');
	ctl_json_int(&j, 1);
	ctl_json_open(&j, '{');
	ctl_json_close(&j, '}');
	ctl_json_str(&j, "x");
	ctl_json_null(&j);
	ctl_json_close(&j, ']');
	ctl_json_kint(&j, "n", -5);
	ctl_json_key(&j, "empty");
	ctl_json_open(&j, '[');
	ctl_json_close(&j, ']');
	ctl_json_close(&j, '}');
	T_EQ_STR(buf_cstr(&out), "{\"running\":true,\"list\":[1,{},\"x\","
	    "null],\"n\":-5,\"empty\":[]}");

	buf_reset(&out);
	ctl_json_escape(&out, "a\"b\\c\nd\te\x01\x7f");
	T_EQ_STR(buf_cstr(&out), "\"a\\\"b\\\\c\\nd\\te\\u0001\\u007f\"");
	/* valid UTF-8 passes, anything else becomes U+FFFD */
	buf_reset(&out);
	ctl_json_escape(&out, "b\xc3\xa4r \xe2\x82\xac \xf0\x9f\x98\x80");
	T_EQ_STR(buf_cstr(&out), "\"b\xc3\xa4r \xe2\x82\xac "
	    "\xf0\x9f\x98\x80\"");
	buf_reset(&out);
	ctl_json_escape(&out, "\xff\xc3(\xc0\xaf\xed\xa0\x80\xe2\x82");
	T_EQ_STR(buf_cstr(&out), "\"\\ufffd\\ufffd(\\ufffd\\ufffd\\ufffd"
	    "\\ufffd\\ufffd\\ufffd\\ufffd\"");
	buf_free(&out);
}

static void
test_formats(void)
{
	struct buf out = BUF_INIT;

	ctl_fmt_duration(&out, 5);
	T_EQ_STR(buf_cstr(&out), "5s");
	buf_reset(&out);
	ctl_fmt_duration(&out, 65);
	T_EQ_STR(buf_cstr(&out), "1m 5s");
	buf_reset(&out);
	ctl_fmt_duration(&out, 3600 * 3 + 120 + 7);
	T_EQ_STR(buf_cstr(&out), "3h 2m");
	buf_reset(&out);
	ctl_fmt_duration(&out, 86400 * 2 + 3600 * 5 + 9);
	T_EQ_STR(buf_cstr(&out), "2d 5h");
	buf_reset(&out);
	ctl_fmt_duration(&out, -3);
	T_EQ_STR(buf_cstr(&out), "0s");
	buf_reset(&out);
	ctl_fmt_time(&out, 0);
	T_EQ_STR(buf_cstr(&out), "1970-01-01T00:00:00Z");
	buf_reset(&out);
	ctl_fmt_time(&out, 1714564800);
	T_EQ_STR(buf_cstr(&out), "2024-05-01T12:00:00Z");
	buf_reset(&out);
	ctl_fmt_size(&out, 10LL << 20);
	T_EQ_STR(buf_cstr(&out), "10M");
	buf_reset(&out);
	ctl_fmt_size(&out, 1536);
	T_EQ_STR(buf_cstr(&out), "1536");
	buf_reset(&out);
	ctl_fmt_size(&out, 1LL << 30);
	T_EQ_STR(buf_cstr(&out), "1G");
	buf_reset(&out);
	ctl_fmt_size(&out, 1000);
	T_EQ_STR(buf_cstr(&out), "1000");
	buf_free(&out);
}

static void
test_table(void)
{
	struct ctl_table t;
	char text[256];
	size_t n;
	FILE *fp;

	if ((fp = tmpfile()) == NULL)
		T_FAIL_("%s", "tmpfile failed");
	ctl_table_init(&t, 3, (const char *const[]){"NAME", "PID", "X"});
	ctl_table_add(&t, (const char *const[]){"smtpd", "12345", "a"});
	ctl_table_add(&t, (const char *const[]){"q\x1b[2J", "1", ""});
	ctl_table_print(&t, fp);
	ctl_table_free(&t);
	rewind(fp);
	n = fread(text, 1, sizeof(text) - 1, fp);
	text[n] = '\0';
	fclose(fp);
	T_EQ_STR(text,
	    "NAME   PID    X\n"
	    "smtpd  12345  a\n"
	    "q?[2J  1      \n");
}

static const struct test_case cases[] = {
	{"operands are counted", test_args_operands},
	{"options anywhere, with or without =", test_args_options},
	{"help at the command level", test_args_help},
	{"domain names", test_input_domain},
	{"addresses and alias keys", test_input_address},
	{"quotas", test_input_quota},
	{"password from the first line of a file", test_input_password},
	{"JSON writer and escaping", test_json},
	{"durations, times, sizes", test_formats},
	{"aligned tables", test_table},
	{NULL, NULL},
};

int
main(void)
{
	return test_run(cases);
}
