/*
 * sendmail_test - the sendmail command's option parsing, its reading of
 * standard input (line ends normalised at every chunk size, the "."
 * line, the size bound), the address check of the envelope (SMTP
 * command injection through -f and recipients), recipients from the
 * header with -t (Bcc removed) and the fields it adds; the modes
 * (argv[0], -bp, -q, -bs, -bv, -bi), the -bs relay (both ways at once,
 * bounded buffers, either side ending it) and the -bv verdicts.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/test.h"
#include "mail/dir.h"
#include "mail/params.h"
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
	T_ASSERT(o.refuse == NULL && o.mode == SENDMAIL_LIST);
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
	/* cron output with a progress bar: never refused */
	T_EQ_INT(read_text("Subject: x\n\n10%\r 50%\r100%\n", true, 1000,
	    &out), 0);
	T_EQ_STR(out.data, "Subject: x\r\n\r\n10%\r\n 50%\r\n100%\r\n");
	buf_free(&out);
}

/* line-end cases: input, dot_ends, the normalised output */
static const struct {
	const char *in, *want;
	bool dot_ends;
} eol_cases[] = {
	{"", "", true},
	{"a", "a\r\n", true},
	{"a\r\nb\r\n", "a\r\nb\r\n", true},
	{"a\nb\n", "a\r\nb\r\n", true},
	{"a\rb\r", "a\r\nb\r\n", true},
	{"10%\r 50%\r100%\n", "10%\r\n 50%\r\n100%\r\n", true},
	{"a\r\r\nb", "a\r\n\r\nb\r\n", true},	/* bare CR, then CRLF */
	{"a\n\rb", "a\r\n\r\nb\r\n", true},	/* LF, then a bare CR */
	{"a\r\n\r\n", "a\r\n\r\n", true},
	{"\r\r\r", "\r\n\r\n\r\n", true},
	{"\n\n", "\r\n\r\n", true},
	{"\r\n\n\r", "\r\n\r\n\r\n", true},
	/* the "." line, ended by any line end */
	{"a\r\n.\r\nb\r\n", "a\r\n", true},
	{"a\n.\nb\n", "a\r\n", true},
	{"a\r.\rb\r", "a\r\n", true},
	{".\n", "", true},
	{"a\n.\nb\n", "a\r\n.\r\nb\r\n", false},
	{"a\r.\r", "a\r\n.\r\n", false},
	{"a\n.", "a\r\n.\r\n", true},		/* no line end: data */
	{"a\n..\n.b\n", "a\r\n..\r\n.b\r\n", true},
	{"x.\n", "x.\r\n", true},
	{"a\r\n.\r\n", "a\r\n", true},
	{NULL, NULL, false},
};

/* bare_line_end - does s[0..n) hold a CR or LF outside a CRLF pair? */
static bool
bare_line_end(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\r' && (i + 1 == n || s[i + 1] != '\n'))
			return true;
		if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
			return true;
	}
	return false;
}

/* normalise - feed in at chunk size step (0: first cut only at split,
 * then the rest at once) */
static void
normalise(const char *in, bool dot_ends, size_t step, size_t split,
    struct buf *out)
{
	struct sendmail_eol e;
	size_t n = strlen(in), off = 0;

	buf_reset(out);
	sendmail_eol_init(&e, dot_ends);
	for (size_t k = 0; (off < n || k == 0) && !e.done && k <= n + 1; k++) {
		size_t take = step ? step : (k == 0 ? split : n - off);

		if (take > n - off)
			take = n - off;
		(void)sendmail_eol_feed(&e, in + off, take, out);
		off += take;
	}
	sendmail_eol_end(&e, out);
}

static void
test_line_ends_every_chunk_size(void)
{
	struct buf out = BUF_INIT;

	for (int c = 0; eol_cases[c].in != NULL; c++) {
		const char *in = eol_cases[c].in;
		size_t n = strlen(in);

		/* every chunk size from one byte up */
		for (size_t step = 1; step <= n + 1; step++) {
			normalise(in, eol_cases[c].dot_ends, step, 0, &out);
			T_EQ_STR(buf_cstr(&out), eol_cases[c].want);
			T_ASSERT(!bare_line_end(out.data, out.len));
		}
		/* two chunks cut at every place: each CR meets a border */
		for (size_t split = 0; split <= n; split++) {
			normalise(in, eol_cases[c].dot_ends, 0, split, &out);
			T_EQ_STR(buf_cstr(&out), eol_cases[c].want);
		}
	}
	buf_free(&out);
}

static void
test_cr_at_the_read_buffer_border(void)
{
	struct buf in = BUF_INIT, out = BUF_INIT, want = BUF_INIT;

	/* sendmail_read takes at most 8192 bytes, and ends a chunk after a
	 * CR: put a CRLF across the 8192 border, then a bare CR on it, as a
	 * long cron line would */
	for (int i = 0; i < 8191; i++)
		buf_putc(&in, 'x');
	buf_puts(&in, "\r\nnext\r");
	for (int i = 0; i < 8192 - 6; i++)
		buf_putc(&in, 'y');
	buf_puts(&in, "\rlast\n");
	T_EQ_INT(read_text(buf_cstr(&in), true, 1 << 20, &out), 0);
	for (int i = 0; i < 8191; i++)
		buf_putc(&want, 'x');
	buf_puts(&want, "\r\nnext\r\n");
	for (int i = 0; i < 8192 - 6; i++)
		buf_putc(&want, 'y');
	buf_puts(&want, "\r\nlast\r\n");
	T_EQ_INT(out.len, want.len);
	T_ASSERT(strcmp(buf_cstr(&out), buf_cstr(&want)) == 0);
	T_ASSERT(strstr(buf_cstr(&out), "\r\r") == NULL);
	buf_free(&in);
	buf_free(&out);
	buf_free(&want);
}

static void
test_dot_line_ends_reading(void)
{
	struct buf out = BUF_INIT, why = BUF_INIT;
	int p[2];
	FILE *f;

	/* the writer keeps the pipe open after "." and waits for us: the
	 * read must end at the "." line, not wait for more (alarm: a hang
	 * kills the test instead of blocking ctest) */
	T_ASSERT(pipe(p) == 0);
	T_ASSERT(write(p[1], "a\r\n.\r\n", 6) == 6);
	T_ASSERT((f = fdopen(p[0], "r")) != NULL);
	alarm(10);
	T_EQ_INT(sendmail_read(f, true, 1000, &out, &why), 0);
	alarm(0);
	T_EQ_STR(buf_cstr(&out), "a\r\n");
	fclose(f);
	(void)close(p[1]);
	buf_free(&out);
	buf_free(&why);
}

/* address cases: as given, flags, the internal form (NULL: refused) */
static const struct {
	const char *in;
	unsigned flags;
	const char *want;
} addr_cases[] = {
	{"alice@example.test", 0, "alice@example.test"},
	{"<alice@example.test>", 0, "alice@example.test"},
	{"root", 0, "root@h.test"},
	{"<root>", 0, "root@h.test"},
	{"postmaster", 0, "postmaster@h.test"},
	{"\"john doe\"@example.test", 0, "john doe@example.test"},
	{"j\xc3\xb6rg@ex\xc3\xa4mple.test", 0,
	    "j\xc3\xb6rg@ex\xc3\xa4mple.test"},
	{"<@relay.test:alice@example.test>", 0, "alice@example.test"},
	{"a@[192.0.2.1]", 0, "a@[192.0.2.1]"},
	{"<>", SENDMAIL_ADDR_SENDER, ""},
	{"", SENDMAIL_ADDR_SENDER, ""},
	{"<>", 0, NULL},
	{"", 0, NULL},
	/* injection: CR/LF ends the command early */
	{"x@example.test>\r\nRSET\r\nMAIL FROM:<ceo@example.test",
	    SENDMAIL_ADDR_SENDER, NULL},
	{"x@example.test>\nRSET\nMAIL FROM:<ceo@example.test", 0, NULL},
	{"x@example.test\r\n", 0, NULL},
	{"x@example.test\n", SENDMAIL_ADDR_SENDER, NULL},
	{"\"x\r\ny\"@example.test", 0, NULL},
	{"x\t@example.test", 0, NULL},
	{"x\x7f@example.test", 0, NULL},
	{"x\x01@example.test", 0, NULL},
	/* plain bad syntax */
	{"a b@example.test", 0, NULL},
	{"alice@@example.test", 0, NULL},
	{"alice@example.test>", 0, NULL},
	{"<alice@example.test", 0, NULL},
	{"<<alice@example.test>>", 0, NULL},
	{"alice@example.test> SIZE=1", 0, NULL},
	{"alice@", 0, NULL},
	{"@example.test", 0, NULL},
	{"a..b@example.test", 0, NULL},
	{"a@-bad.test", 0, NULL},
	{"a@b\xff.test", 0, NULL},
	{NULL, 0, NULL},
};

static void
test_address_check(void)
{
	struct buf out = BUF_INIT, why = BUF_INIT;

	for (int i = 0; addr_cases[i].in != NULL; i++) {
		int r;

		buf_reset(&why);
		r = sendmail_env_address(addr_cases[i].in, addr_cases[i].flags,
		    "h.test", &out, &why);
		if (addr_cases[i].want == NULL) {
			if (r != -1)
				fprintf(stderr, "  accepted: \"%s\"\n",
				    addr_cases[i].in);
			T_EQ_INT(r, -1);
			T_ASSERT(strstr(buf_cstr(&why), "bad address") != NULL);
			/* the message never echoes a line end */
			T_ASSERT(strpbrk(buf_cstr(&why), "\r\n") == NULL);
			T_EQ_INT(out.len, 0);
		} else {
			if (r != 0)
				fprintf(stderr, "  refused: \"%s\": %s\n",
				    addr_cases[i].in, buf_cstr(&why));
			T_EQ_INT(r, 0);
			T_EQ_STR(buf_cstr(&out), addr_cases[i].want);
		}
	}
	buf_free(&out);
	buf_free(&why);
}

/* envelope - sendmail_env_build over argv (NULL-ended) and header
 * recipients hdr (NUL-separated, nhdr of them) */
static int
envelope(const char **args, const char *hdr, size_t hdrlen, size_t nhdr,
    struct sendmail_env *e, struct buf *why)
{
	struct sendmail_opts o;
	struct buf h = BUF_INIT;
	int r;

	if (opts(&o, why, args) < 0)
		return -2;
	buf_append(&h, hdr, hdrlen);
	buf_reset(why);
	r = sendmail_env_build(&o, "me", &h, nhdr, "h.test", e, why);
	buf_free(&h);
	return r;
}

static void
test_envelope(void)
{
	static const char evil[] = "x@example.test>\r\nRSET\r\n"
	    "MAIL FROM:<ceo@example.test>\r\nRCPT TO:<bob@example.test>\r\n"
	    "DATA\r\nSubject: forged\r\n\r\nhi\r\n.\r\n"
	    "MAIL FROM:<x@example.test";
	struct sendmail_env e;
	struct buf why = BUF_INIT;

	/* good: -f, arguments, header recipients, qualified */
	T_EQ_INT(envelope((const char *[]){"-t", "-f", "<bounce@x.test>", "a",
	    "<b@y.test>", NULL}, "c@z.test\0root\0", 14, 2, &e, &why), 0);
	T_EQ_STR(buf_cstr(&e.sender), "bounce@x.test");
	T_EQ_INT(e.nrcpt, 4);
	T_EQ_STR(e.rcpt[0], "a@h.test");
	T_EQ_STR(e.rcpt[1], "b@y.test");
	T_EQ_STR(e.rcpt[2], "c@z.test");
	T_EQ_STR(e.rcpt[3], "root@h.test");
	sendmail_env_free(&e);
	/* no -f: the login name */
	T_EQ_INT(envelope((const char *[]){"a@b.test", NULL}, "", 0, 0, &e,
	    &why), 0);
	T_EQ_STR(buf_cstr(&e.sender), "me@h.test");
	sendmail_env_free(&e);
	T_EQ_INT(envelope((const char *[]){"-f", "<>", "a@b.test", NULL}, "",
	    0, 0, &e, &why), 0);
	T_EQ_STR(buf_cstr(&e.sender), "");
	sendmail_env_free(&e);

	/* injection through -f, -r, -fX, a recipient: usage errors */
	T_EQ_INT(envelope((const char *[]){"-f", evil, "a@b.test", NULL}, "",
	    0, 0, &e, &why), EX_USAGE);
	T_ASSERT(strstr(buf_cstr(&why), "sender") != NULL);
	T_ASSERT(strpbrk(buf_cstr(&why), "\r\n") == NULL);
	T_EQ_INT(e.nrcpt, 0);
	sendmail_env_free(&e);
	T_EQ_INT(envelope((const char *[]){"-r", evil, "a@b.test", NULL}, "",
	    0, 0, &e, &why), EX_USAGE);
	sendmail_env_free(&e);
	T_EQ_INT(envelope((const char *[]){"-fx@example.test>\nRSET",
	    "a@b.test", NULL}, "", 0, 0, &e, &why), EX_USAGE);
	sendmail_env_free(&e);
	T_EQ_INT(envelope((const char *[]){"a@b.test", evil, NULL}, "", 0, 0,
	    &e, &why), EX_USAGE);
	T_ASSERT(strstr(buf_cstr(&why), "recipient") != NULL);
	sendmail_env_free(&e);
	/* a bad address in the header (-t): a data error */
	T_EQ_INT(envelope((const char *[]){"-t", NULL}, "a@b.test\0x y@z\0",
	    15, 2, &e, &why), EX_DATAERR);
	T_ASSERT(strstr(buf_cstr(&why), "header") != NULL);
	sendmail_env_free(&e);
	T_EQ_INT(envelope((const char *[]){"-t", NULL}, "", 0, 0, &e, &why),
	    EX_USAGE);
	T_ASSERT(strstr(buf_cstr(&why), "no recipients") != NULL);
	sendmail_env_free(&e);
	buf_free(&why);
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

	/* folded inside <>: unfolded, so the check sees no line end; a
	 * '<' in a quoted display name is not the address */
	buf_set(&msg, "To: <bob@x.test\r\n RSET>, \"a<b\" <c@d.test>\r\n"
	    "\r\n");
	buf_reset(&r);
	n = 0;
	sendmail_header_rcpts(&msg, &r, &n);
	T_EQ_INT(n, 2);
	T_EQ_STR(r.data, "bob@x.test RSET");
	T_EQ_STR(r.data + strlen(r.data) + 1, "c@d.test");
	/* a NUL cannot split one address into two */
	buf_reset(&msg);
	buf_append(&msg, "To: a@b.test\0c@d.test\r\n\r\n", 26);
	buf_reset(&r);
	n = 0;
	sendmail_header_rcpts(&msg, &r, &n);
	T_EQ_INT(n, 1);
	T_EQ_INT(r.len, 18);
	T_EQ_MEM(r.data, r.len, "a@b.test\x7f" "c@d.test\0", 18);
	buf_free(&msg);
	buf_free(&r);
}

static void
test_complete(void)
{
	struct buf msg = BUF_INIT;

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
	buf_free(&msg);
}

/* opts0 - parse args as the program argv0 */
static int
opts0(const char *argv0, struct sendmail_opts *o, struct buf *why,
    const char **args)
{
	static char *argv[32];
	int argc = 0;

	argv[argc++] = (char *)argv0;
	while (*args != NULL && argc < 31)
		argv[argc++] = (char *)*args++;
	argv[argc] = NULL;
	buf_reset(why);
	return sendmail_parse_opts(argc, argv, o, why);
}

/* issue 13: the modes and the names sendmail is called by */
static void
test_modes(void)
{
	static const struct {
		const char *argv0;
		const char *args[4];
		int rc;
		int mode;	/* -1: refused */
	} cases[] = {
		{"sendmail", {"a@b", NULL}, 0, SENDMAIL_DELIVER},
		{"sendmail", {"-bm", "a@b", NULL}, 0, SENDMAIL_DELIVER},
		{"/usr/bin/mailq", {NULL}, 0, SENDMAIL_LIST},
		{"mailq", {"-Cx", NULL}, 0, SENDMAIL_LIST},
		{"sendmail", {"-bp", NULL}, 0, SENDMAIL_LIST},
		{"/usr/sbin/newaliases", {NULL}, 0, SENDMAIL_ALIASES},
		{"newaliases", {"-oA/etc/aliases", "x", NULL}, 0,
		    SENDMAIL_ALIASES},
		{"sendmail", {"-bi", NULL}, 0, SENDMAIL_ALIASES},
		{"sendmail", {"-I", NULL}, 0, SENDMAIL_ALIASES},
		{"sendmail", {"-q", NULL}, 0, SENDMAIL_FLUSH},
		{"sendmail", {"-bs", NULL}, 0, SENDMAIL_SMTP},
		{"sendmail", {"-bv", "a@b", "c", NULL}, 0, SENDMAIL_VERIFY},
		{"sendmail", {"-bv", NULL}, -1, 0},
		{"sendmail", {"-bp", "a@b", NULL}, -1, 0},
		{"sendmail", {"-q", "a@b", NULL}, -1, 0},
		{"sendmail", {"-bs", "a@b", NULL}, -1, 0},
		{"sendmail", {"-bd", NULL}, 0, -1},
		{"sendmail", {"-bD", NULL}, 0, -1},
		{"sendmail", {"-bh", NULL}, 0, -1},
		{"sendmail", {"-bt", NULL}, 0, -1},
		{"sendmail", {"-q30m", NULL}, 0, -1},
		{"sendmail", {"-qRx", NULL}, 0, -1},
		{"mailq", {"-bd", NULL}, 0, -1},
	};
	struct sendmail_opts o;
	struct buf why = BUF_INIT;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = opts0(cases[i].argv0, &o, &why, (const char **)
		    cases[i].args);

		if (rc != cases[i].rc || (rc == 0 && (cases[i].mode < 0 ?
		    o.refuse == NULL : o.refuse != NULL ||
		    (int)o.mode != cases[i].mode)))
			fprintf(stderr, "  case %zu (%s %s): rc %d mode %d "
			    "refuse %s why %s\n", i, cases[i].argv0,
			    cases[i].args[0] ? cases[i].args[0] : "", rc,
			    (int)o.mode, o.refuse ? o.refuse : "-",
			    buf_cstr(&why));
		T_EQ_INT(rc, cases[i].rc);
		if (rc == 0 && cases[i].mode < 0)
			T_ASSERT(o.refuse != NULL);
		else if (rc == 0)
			T_ASSERT(o.refuse == NULL &&
			    (int)o.mode == cases[i].mode);
	}
	buf_free(&why);
}

/* now_ms - a monotonic clock */
static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* pattern - byte i of a stream that says where it is */
static char
pattern(size_t i, int salt)
{
	return (char)((i * 7 + (size_t)salt + i / 251) & 0xff);
}

/*
 * relay_run - sendmail_relay in a child between pipes (its stdin and
 * stdout) and a socket whose other end plays smtpd here: the caller
 * sends up bytes, "smtpd" sends down bytes and then closes (close_after:
 * once it has the caller's end; else at once when it has sent). Every
 * fd of ours is non-blocking and the loop is bounded in time. Returns
 * the child's exit status; *got_up/_down are the byte counts that came
 * through in order (-1 at the first wrong byte).
 */
static int
relay_run(size_t up, size_t down, bool wait_for_end, bool read_late,
    long long *got_up, long long *got_down)
{
	int in[2], out[2], sv[2], status = -1;
	size_t sent_up = 0, sent_down = 0;
	bool up_end = false, down_closed = false, out_end = false;
	long long start = now_ms();
	char buf[8192];
	pid_t pid;

	*got_up = *got_down = 0;
	if (pipe(in) < 0 || pipe(out) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return -1;
	if ((pid = fork()) == 0) {
		struct buf why = BUF_INIT;
		int r;

		close(in[1]);
		close(out[0]);
		close(sv[1]);
		r = sendmail_relay(in[0], out[1], sv[0], 5000, &why);
		if (r != 0)
			fprintf(stderr, "  relay: %d %s\n", r, buf_cstr(&why));
		_exit(r == 0 ? 0 : r == -2 ? 2 : 1);
	}
	close(in[0]);
	close(out[1]);
	close(sv[0]);
	for (int fd = 0; fd < 3; fd++) {
		int f = fd == 0 ? in[1] : fd == 1 ? out[0] : sv[1];

		if (fcntl(f, F_SETFL, fcntl(f, F_GETFL) | O_NONBLOCK) < 0)
			return -1;
	}
	while (now_ms() - start < 10000 && !(out_end && down_closed &&
	    (in[1] < 0))) {
		struct pollfd p[3] = {{in[1], POLLOUT, 0},
		    {out[0], POLLIN, 0}, {sv[1], POLLIN, 0}};
		ssize_t n;

		if (!down_closed && sent_down < down)
			p[2].events |= POLLOUT;
		if (read_late && now_ms() - start < 300)
			p[1].fd = -1;	/* the caller does not read yet */
		if (in[1] < 0)
			p[0].fd = -1;
		if (down_closed)
			p[2].fd = -1;
		if (out_end)
			p[1].fd = -1;
		(void)poll(p, 3, 50);
		if (in[1] >= 0 && (p[0].revents & POLLOUT)) {
			size_t k = up - sent_up < sizeof(buf) ? up - sent_up :
			    sizeof(buf);

			for (size_t i = 0; i < k; i++)
				buf[i] = pattern(sent_up + i, 1);
			n = k > 0 ? write(in[1], buf, k) : 0;
			if (n > 0)
				sent_up += (size_t)n;
			if (sent_up == up) {
				close(in[1]);	/* the caller's input ends */
				in[1] = -1;
			}
		}
		if (p[1].revents != 0) {
			n = read(out[0], buf, sizeof(buf));
			if (n == 0)
				out_end = true;
			for (ssize_t i = 0; i < n && *got_down >= 0; i++)
				if (buf[i] != pattern((size_t)*got_down, 2))
					*got_down = -1;
				else
					(*got_down)++;
		}
		if (!down_closed && (p[2].revents & POLLOUT) &&
		    sent_down < down) {
			size_t k = down - sent_down < sizeof(buf) ?
			    down - sent_down : sizeof(buf);

			for (size_t i = 0; i < k; i++)
				buf[i] = pattern(sent_down + i, 2);
			n = send(sv[1], buf, k, MSG_NOSIGNAL);
			if (n > 0)
				sent_down += (size_t)n;
		}
		if (!down_closed && (p[2].revents & (POLLIN | POLLHUP))) {
			n = read(sv[1], buf, sizeof(buf));
			if (n == 0)
				up_end = true;
			for (ssize_t i = 0; i < n && *got_up >= 0; i++)
				if (buf[i] != pattern((size_t)*got_up, 1))
					*got_up = -1;
				else
					(*got_up)++;
		}
		/* "smtpd" closes: after the caller's end, or at once */
		if (!down_closed && sent_down == down &&
		    (up_end || !wait_for_end)) {
			close(sv[1]);
			down_closed = true;
		}
	}
	if (in[1] >= 0)
		close(in[1]);
	close(out[0]);
	if (!down_closed)
		close(sv[1]);
	if (waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 99;
}

/* issue 13: sendmail -bs carries the bytes both ways */
static void
test_relay(void)
{
	long long up, down;

	/* a plain session: bytes both ways, the caller's end closes it */
	T_EQ_INT(relay_run(1000, 300, true, false, &up, &down), 0);
	T_EQ_INT(up, 1000);
	T_EQ_INT(down, 300);
	/* megabytes each way at once, more than any buffer holds */
	T_EQ_INT(relay_run(3 << 20, 2 << 20, true, false, &up, &down), 0);
	T_EQ_INT(up, 3 << 20);
	T_EQ_INT(down, 2 << 20);
	/* the caller reads late: the way up goes on meanwhile */
	T_EQ_INT(relay_run(1 << 20, 1 << 20, true, true, &up, &down), 0);
	T_EQ_INT(up, 1 << 20);
	T_EQ_INT(down, 1 << 20);
	/* smtpd closes first: what it sent still comes out, and the relay
	 * ends though the caller's input is still open */
	T_EQ_INT(relay_run(0, 5000, false, false, &up, &down), 0);
	T_EQ_INT(down, 5000);
}

/* issue 13: sendmail -bv, read only */
static void
test_verify(void)
{
	static const struct {
		const char *addr;
		enum sendmail_verdict v;
		const char *line;
	} cases[] = {
		{"ann@v.test", SENDMAIL_VERIFY_OK,
		    "ann@v.test: deliverable to mailbox ann@v.test"},
		{"Ann+tag@V.test", SENDMAIL_VERIFY_OK,
		    "Ann+tag@V.test: deliverable to mailbox ann@v.test"},
		{"list@v.test", SENDMAIL_VERIFY_OK, "list@v.test: deliverable "
		    "to mailboxes ann@v.test, ben@v.test (alias list@v.test)"},
		{"x@w.test", SENDMAIL_VERIFY_OK, "x@w.test: deliverable to "
		    "mailbox ben@v.test (alias @w.test)"},
		{"fwd@v.test", SENDMAIL_VERIFY_OK, "fwd@v.test: deliverable "
		    "to mailbox ann@v.test, forwarded to z@far.test (alias "
		    "fwd@v.test)"},
		{"away@v.test", SENDMAIL_VERIFY_OK, "away@v.test: deliverable: "
		    "forwarded to z@far.test (alias away@v.test)"},
		{"off@v.test", SENDMAIL_VERIFY_UNDELIVERABLE, NULL},
		{"none@v.test", SENDMAIL_VERIFY_UNDELIVERABLE,
		    "none@v.test: undeliverable: 5.1.1 "},
		{"a@remote.test", SENDMAIL_VERIFY_UNDELIVERABLE,
		    "a@remote.test: undeliverable: remote.test is not hosted "
		    "here and remote delivery is not available"},
	};
	char tmp[] = "/tmp/sendmail_test.XXXXXX";
	struct buf why = BUF_INIT, line = BUF_INIT;
	struct dir *d = NULL;

	T_ASSERT(mkdtemp(tmp) != NULL);
	cfg_defaults(params_table);
	T_EQ_INT(dir_open(tmp, DIR_WRITE, &d, &why), 0);
	T_EQ_INT(dir_domain_add(d, "v.test", &why), 0);
	T_EQ_INT(dir_domain_add(d, "w.test", &why), 0);
	T_EQ_INT(dir_user_add(d, "ann@v.test", -1, &why), 0);
	T_EQ_INT(dir_user_add(d, "ben@v.test", -1, &why), 0);
	T_EQ_INT(dir_user_add(d, "off@v.test", -1, &why), 0);
	T_EQ_INT(dir_user_set_enabled(d, "off@v.test", false, &why), 0);
	T_EQ_INT(dir_alias_add(d, "list@v.test", "ann@v.test", &why), 0);
	T_EQ_INT(dir_alias_add(d, "list@v.test", "ben@v.test", &why), 0);
	T_EQ_INT(dir_alias_add(d, "@w.test", "ben@v.test", &why), 0);
	T_EQ_INT(dir_alias_add(d, "fwd@v.test", "ann@v.test", &why), 0);
	T_EQ_INT(dir_alias_add(d, "fwd@v.test", "z@far.test", &why), 0);
	T_EQ_INT(dir_alias_add(d, "away@v.test", "z@far.test", &why), 0);
	dir_close(&d);
	T_EQ_INT(dir_open(tmp, DIR_READ, &d, &why), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum sendmail_verdict v;

		buf_reset(&line);
		v = sendmail_verify_addr(d, cases[i].addr, &line);
		if (v != cases[i].v || (cases[i].line != NULL &&
		    strncmp(line.data, cases[i].line, strlen(cases[i].line))))
			fprintf(stderr, "  %s: %d \"%s\"\n", cases[i].addr,
			    (int)v, buf_cstr(&line));
		T_EQ_INT(v, cases[i].v);
		if (cases[i].line != NULL)
			T_ASSERT(strncmp(line.data, cases[i].line,
			    strlen(cases[i].line)) == 0);
		T_ASSERT(strchr(line.data, '\n') == NULL);
	}
	/* control characters never reach the terminal */
	buf_reset(&line);
	(void)sendmail_verify_addr(d, "a\x1b[2J@remote.test", &line);
	T_ASSERT(strchr(line.data, '\x1b') == NULL);
	dir_close(&d);
	test_rm_tree(tmp);
	buf_free(&why);
	buf_free(&line);
}

static const struct test_case cases[] = {
	{"modes and program names", test_modes},
	{"-bs relay", test_relay},
	{"-bv verdicts", test_verify},
	{"options", test_options},
	{"reading the message", test_read},
	{"line ends at every chunk size", test_line_ends_every_chunk_size},
	{"CR at the read buffer border", test_cr_at_the_read_buffer_border},
	{"a \".\" line ends the reading", test_dot_line_ends_reading},
	{"address check", test_address_check},
	{"envelope: injection refused", test_envelope},
	{"recipients from the header", test_header_rcpts},
	{"added header fields", test_complete},
	{0},
};

int
main(void)
{
	return test_run(cases);
}
