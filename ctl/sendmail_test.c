/*
 * sendmail_test - the sendmail command's option parsing, its reading of
 * standard input (line ends, the "." line, the size bound), recipients
 * from the header with -t (Bcc removed) and the fields it adds.
 */
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "base/test.h"
#include "sendmail.h"

/* opts - parse a NULL-terminated argument list (o->rcpts points into
 * argv, so it outlives the call) */
static int
opts(struct sendmail_opts *o, struct buf *why, const char **args)
{
	static char *argv[32];
	int argc = 0;

	argv[argc++] = (char *)"sendmail";
	while (*args != NULL && argc < 31)
		argv[argc++] = (char *)*args++;
	argv[argc] = NULL;
	buf_reset(why);
	return sendmail_parse_opts(argc, argv, o, why);
}

static void
test_options(void)
{
	struct sendmail_opts o;
	struct buf why = BUF_INIT;

	T_EQ_INT(opts(&o, &why, (const char *[]){"-oi", "-f", "me@x.test",
	    "-odi", "-oem", "-F", "Me Myself", "a@x.test", "b", NULL}), 0);
	T_ASSERT(!o.dot_ends && !o.header_rcpts);
	T_EQ_STR(o.sender, "me@x.test");
	T_EQ_STR(o.fullname, "Me Myself");
	T_EQ_INT(o.nrcpt, 2);
	T_EQ_STR(o.rcpts[1], "b");
	T_EQ_INT(opts(&o, &why, (const char *[]){"-t", "-i", "-rbounce@x",
	    "-N", "never", "-Cconf", NULL}), 0);
	T_ASSERT(o.header_rcpts && !o.dot_ends);
	T_EQ_STR(o.sender, "bounce@x");
	T_EQ_STR(o.config, "conf");
	T_EQ_INT(o.nrcpt, 0);
	T_EQ_INT(opts(&o, &why, (const char *[]){"-bp", NULL}), 0);
	T_ASSERT(o.refuse != NULL && strstr(o.refuse, "queue list"));
	T_EQ_INT(opts(&o, &why, (const char *[]){"-f", NULL}), -1);
	T_EQ_INT(opts(&o, &why, (const char *[]){"-k", "a@b", NULL}), -1);
	T_EQ_INT(opts(&o, &why, (const char *[]){"-i", NULL}), -1);
	T_ASSERT(strstr(why.data, "no recipients") != NULL);
	T_EQ_INT(opts(&o, &why, (const char *[]){"--", "-odd@x", NULL}), 0);
	T_EQ_STR(o.rcpts[0], "-odd@x");
	buf_free(&why);
}

/* read_text - sendmail_read over text */
static int
read_text(const char *text, bool dot_ends, size_t max, struct buf *out)
{
	struct buf why = BUF_INIT;
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	int r;

	if (f == NULL)
		return -2;
	buf_reset(out);
	r = sendmail_read(f, dot_ends, max, out, &why);
	fclose(f);
	buf_free(&why);
	return r;
}

static void
test_read(void)
{
	struct buf out = BUF_INIT;

	T_EQ_INT(read_text("a\nb\r\n.\nnot this\n", true, 1000, &out), 0);
	T_EQ_STR(out.data, "a\r\nb\r\n");
	T_EQ_INT(read_text("a\n.\nc", false, 1000, &out), 0);
	T_EQ_STR(out.data, "a\r\n.\r\nc\r\n");
	T_EQ_INT(read_text("..x\n", true, 1000, &out), 0);
	T_EQ_STR(out.data, "..x\r\n");	/* stuffing is the client's job */
	T_EQ_INT(read_text("0123456789\n0123456789\n", true, 15, &out), -1);
	buf_free(&out);
}

static void
test_header_rcpts(void)
{
	struct buf msg = BUF_INIT, r = BUF_INIT;
	size_t n = 0;
	const char *p;

	buf_set(&msg, "To: \"Doe, John\" <john@x.test>, jane@y.test (Jane)\r\n"
	    "Subject: hi\r\n"
	    "Bcc: hidden@z.test,\r\n\tother@z.test\r\n"
	    "cc: team: a@t.test, b@t.test;\r\n"
	    "\r\n"
	    "To: not@body.test\r\n");
	sendmail_header_rcpts(&msg, &r, &n);
	T_EQ_INT(n, 6);
	p = r.data;
	T_EQ_STR(p, "john@x.test");
	p += strlen(p) + 1;
	T_EQ_STR(p, "jane@y.test");
	p += strlen(p) + 1;
	T_EQ_STR(p, "hidden@z.test");
	p += strlen(p) + 1;
	T_EQ_STR(p, "other@z.test");
	p += strlen(p) + 1;
	T_EQ_STR(p, "a@t.test");
	T_ASSERT(strstr(msg.data, "Bcc") == NULL);
	T_ASSERT(strstr(msg.data, "hidden") == NULL);
	T_ASSERT(strstr(msg.data, "Subject: hi\r\ncc: team") != NULL);
	buf_free(&msg);
	buf_free(&r);
}

static void
test_complete(void)
{
	struct buf msg = BUF_INIT, q = BUF_INIT;

	buf_set(&msg, "Subject: x\r\n\r\nbody\r\n");
	sendmail_complete(&msg, "u@h.test", "A \"B\" C", "h.test");
	T_ASSERT(strncmp(msg.data, "From: \"A \\\"B\\\" C\" <u@h.test>\r\n",
	    30) == 0);
	T_ASSERT(strstr(msg.data, "\r\nDate: ") != NULL);
	T_ASSERT(strstr(msg.data, "\r\nMessage-ID: <") != NULL);
	T_ASSERT(strstr(msg.data, "@h.test>\r\nSubject: x\r\n\r\nbody") !=
	    NULL);
	/* complete already: unchanged */
	buf_set(&msg, "From: a@b\r\nDate: x\r\nMessage-ID: <m@b>\r\n\r\nz\r\n");
	sendmail_complete(&msg, "u@h.test", NULL, "h.test");
	T_EQ_STR(msg.data, "From: a@b\r\nDate: x\r\nMessage-ID: <m@b>\r\n\r\n"
	    "z\r\n");
	/* no header at all: the text becomes the body */
	buf_set(&msg, "just text\r\n");
	sendmail_complete(&msg, "u@h.test", NULL, "h.test");
	T_ASSERT(strstr(msg.data, ">\r\n\r\njust text\r\n") != NULL);
	sendmail_qualify("root", "h.test", &q);
	T_EQ_STR(q.data, "root@h.test");
	sendmail_qualify("a@b", "h.test", &q);
	T_EQ_STR(q.data, "a@b");
	buf_free(&msg);
	buf_free(&q);
}

static const struct test_case cases[] = {
	{"options", test_options},
	{"reading the message", test_read},
	{"recipients from the header", test_header_rcpts},
	{"added header fields", test_complete},
	{0},
};

int
main(void)
{
	return test_run(cases);
}
