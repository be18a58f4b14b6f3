/*
 * smtp_reply_test - the SMTP client's reply parser: single and multiline
 * replies, enhanced codes, EHLO keywords, and every kind of bad input,
 * fed at every chunk size.
 */
#include <string.h>

#include "base/buf.h"
#include "base/test.h"
#include "mail/smtp_reply.h"

/* feed - text to a reply in chunks of n bytes; the last take's result */
static int
feed(struct smtp_reply *r, const char *text, size_t n, struct buf *why)
{
	struct buf in = BUF_INIT;
	size_t len = strlen(text);
	int rc = 0;

	for (size_t off = 0; off < len && rc == 0; off += n) {
		buf_append(&in, text + off, len - off < n ? len - off : n);
		rc = smtp_reply_take(r, &in, why);
	}
	buf_free(&in);
	return rc;
}

static void
test_single(void)
{
	for (size_t n = 1; n < 40; n++) {
		struct smtp_reply r;
		struct buf why = BUF_INIT;

		smtp_reply_init(&r);
		T_EQ_INT(feed(&r, "250 2.1.5 Ok go ahead\r\n", n, &why), 1);
		T_EQ_INT(r.code, 250);
		T_EQ_STR(r.dsn, "2.1.5");
		T_EQ_STR(buf_cstr(&r.text), "2.1.5 Ok go ahead");
		smtp_reply_free(&r);
		buf_free(&why);
	}
}

static void
test_multiline_ehlo(void)
{
	static const char ehlo[] = "250-mx.b.test hello\r\n"
	    "250-PIPELINING\r\n250-SIZE 1000\r\n250-8bitmime\r\n"
	    "250-STARTTLS\r\n250 DSN\r\n";

	for (size_t n = 1; n < sizeof(ehlo); n++) {
		struct smtp_reply r;
		struct buf why = BUF_INIT;
		const char *p;

		smtp_reply_init(&r);
		T_EQ_INT(feed(&r, ehlo, n, &why), 1);
		T_EQ_INT(r.nlines, 6);
		T_EQ_STR(r.dsn, "");
		T_ASSERT(smtp_reply_ehlo(&r, "PIPELINING", NULL));
		T_ASSERT(smtp_reply_ehlo(&r, "8BITMIME", NULL));
		T_ASSERT(smtp_reply_ehlo(&r, "DSN", NULL));
		T_ASSERT(!smtp_reply_ehlo(&r, "SMTPUTF8", NULL));
		T_ASSERT(!smtp_reply_ehlo(&r, "mx.b.test", NULL));
		T_ASSERT(!smtp_reply_ehlo(&r, "SIZ", NULL));
		T_ASSERT(smtp_reply_ehlo(&r, "SIZE", &p));
		T_ASSERT(p != NULL && strncmp(p, "1000\n", 5) == 0);
		smtp_reply_free(&r);
		buf_free(&why);
	}
}

static void
test_bare_code_and_lf(void)
{
	struct smtp_reply r;
	struct buf why = BUF_INIT, in = BUF_INIT;

	smtp_reply_init(&r);
	buf_puts(&in, "354\n250 next");
	T_EQ_INT(smtp_reply_take(&r, &in, &why), 1);
	T_EQ_INT(r.code, 354);
	/* left for the next reply */
	T_EQ_STR(buf_cstr(&in), "250 next");
	smtp_reply_reset(&r);
	T_EQ_INT(smtp_reply_take(&r, &in, &why), 0);
	smtp_reply_free(&r);
	buf_free(&why);
	buf_free(&in);
}

static void
test_enhanced_mismatch(void)
{
	struct smtp_reply r;
	struct buf why = BUF_INIT, out = BUF_INIT;

	smtp_reply_init(&r);
	/* a 4.x.x code on a 5xx reply is not taken */
	T_EQ_INT(feed(&r, "550 4.1.1 no\r\n", 100, &why), 1);
	T_EQ_STR(r.dsn, "");
	smtp_reply_reset(&r);
	T_EQ_INT(feed(&r, "550-5.1.1 no such\r\n550 5.1.1 user\r\n", 3,
	    &why), 1);
	T_EQ_STR(r.dsn, "5.1.1");
	smtp_reply_format(&r, &out, 100);
	T_EQ_STR(buf_cstr(&out), "550 5.1.1 no such 5.1.1 user");
	buf_reset(&out);
	smtp_reply_format(&r, &out, 7);
	T_EQ_STR(buf_cstr(&out), "550 5.1");
	smtp_reply_free(&r);
	buf_free(&why);
	buf_free(&out);
}

static void
test_bad(void)
{
	static const char *const bad[] = {
		"hello\r\n", "25\r\n", "250x\r\n", "199 no\r\n", "600 no\r\n",
		"260 no\r\n", "250-a\r\n251 b\r\n", "2a0 x\r\n",
		NULL,
	};

	for (size_t i = 0; bad[i] != NULL; i++) {
		struct smtp_reply r;
		struct buf why = BUF_INIT;

		smtp_reply_init(&r);
		T_EQ_INT(feed(&r, bad[i], 100, &why), -1);
		T_ASSERT(why.len > 0);
		smtp_reply_free(&r);
		buf_free(&why);
	}
}

static void
test_bounds(void)
{
	struct smtp_reply r;
	struct buf why = BUF_INIT, in = BUF_INIT;

	smtp_reply_init(&r);
	/* 511 bytes + CRLF is one over */
	buf_puts(&in, "250 ");
	for (int i = 0; i < 507; i++)
		buf_putc(&in, 'x');
	buf_puts(&in, "\r\n");
	T_EQ_INT(smtp_reply_take(&r, &in, &why), -1);
	/* 510 with CRLF is fine (here with LF alone) */
	smtp_reply_reset(&r);
	buf_reset(&in);
	buf_puts(&in, "250 ");
	for (int i = 0; i < 506; i++)
		buf_putc(&in, 'x');
	buf_puts(&in, "\n");
	T_EQ_INT(smtp_reply_take(&r, &in, &why), 1);
	/* an endless line without LF is refused at 512 bytes */
	smtp_reply_reset(&r);
	buf_reset(&in);
	for (int i = 0; i < 600; i++)
		buf_putc(&in, '2');
	T_EQ_INT(smtp_reply_take(&r, &in, &why), -1);
	/* a NUL byte */
	smtp_reply_reset(&r);
	buf_reset(&in);
	buf_append(&in, "250 a\0b\r\n", 9);
	T_EQ_INT(smtp_reply_take(&r, &in, &why), -1);
	/* too many lines */
	smtp_reply_reset(&r);
	buf_reset(&in);
	for (int i = 0; i < SMTP_REPLY_LINES_MAX + 1; i++)
		buf_puts(&in, "250-x\r\n");
	T_EQ_INT(smtp_reply_take(&r, &in, &why), -1);
	smtp_reply_free(&r);
	buf_free(&why);
	buf_free(&in);
}

static const struct test_case cases[] = {
	{"single line at every chunk size", test_single},
	{"multiline EHLO and keywords", test_multiline_ehlo},
	{"bare code, LF only, input kept", test_bare_code_and_lf},
	{"enhanced codes", test_enhanced_mismatch},
	{"malformed replies", test_bad},
	{"line and reply bounds", test_bounds},
	{0},
};

int
main(void)
{
	return test_run(cases);
}
