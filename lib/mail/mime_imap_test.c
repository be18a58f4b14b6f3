/*
 * mime_imap_test - ENVELOPE, BODY and BODYSTRUCTURE checked byte for byte
 * against a fixed corpus of real-world-shaped messages and RFC 3501's
 * example, in LF and CRLF form; and the IMAP string quoting rules.
 */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/test.h"
#include "mail/mime.h"
#include "mail/mime_imap.h"

/* multipart/alternative inside multipart/mixed, with an inline image */
static const char alt[] =
    "Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\n"
    "From: Fred Foobar <foobar@Blurdybloop.example>\n"
    "Subject: afternoon meeting\n"
    "To: mooch@owatagu.siam.edu.example\n"
    "Cc: \"Team, All\" <team@example.org>, (nobody) bob@example.org\n"
    "Message-Id: <B27397-0100000@Blurdybloop.example>\n"
    "In-Reply-To: <a@b>\n"
    "MIME-Version: 1.0\n"
    "Content-Type: multipart/mixed; boundary=\"outer\"\n"
    "\n"
    "--outer\n"
    "Content-Type: multipart/alternative; boundary=inner\n"
    "\n"
    "--inner\n"
    "Content-Type: text/plain; charset=utf-8; format=flowed\n"
    "Content-Transfer-Encoding: quoted-printable\n"
    "\n"
    "Hello =E2=82=AC\n"
    "--inner\n"
    "Content-Type: text/html; charset=utf-8\n"
    "\n"
    "<p>Hello &euro;</p>\n"
    "--inner--\n"
    "\n"
    "--outer\n"
    "Content-Type: image/png; name=\"a b.png\"\n"
    "Content-Transfer-Encoding: base64\n"
    "Content-ID: <img1@x>\n"
    "Content-Disposition: inline; filename=\"a b.png\"\n"
    "Content-Language: en-GB\n"
    "Content-Location: http://example.org/a.png\n"
    "\n"
    "iVBORw0KGgo=\n"
    "--outer--\n";

static const char alt_bodystructure[] =
    "((("
    "\"text\" \"plain\" (\"charset\" \"utf-8\" \"format\" \"flowed\") NIL NIL "
    "\"quoted-printable\" 15 0 NIL NIL NIL NIL)"
    "(\"text\" \"html\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 19 0 "
    "NIL NIL NIL NIL) \"alternative\" (\"boundary\" \"inner\") NIL NIL NIL)"
    "(\"image\" \"png\" (\"name\" \"a b.png\") \"<img1@x>\" NIL \"base64\" "
    "12 NIL (\"inline\" (\"filename\" \"a b.png\")) (\"en-GB\") "
    "\"http://example.org/a.png\") "
    "\"mixed\" (\"boundary\" \"outer\") NIL NIL NIL)";

static const char alt_body[] =
    "(((\"text\" \"plain\" (\"charset\" \"utf-8\" \"format\" \"flowed\") "
    "NIL NIL \"quoted-printable\" 15 0)"
    "(\"text\" \"html\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 19 0) "
    "\"alternative\")"
    "(\"image\" \"png\" (\"name\" \"a b.png\") \"<img1@x>\" NIL \"base64\" "
    "12) \"mixed\")";

static const char alt_envelope[] =
    "(\"Mon, 7 Feb 1994 21:52:25 -0800 (PST)\" \"afternoon meeting\" "
    "((\"Fred Foobar\" NIL \"foobar\" \"Blurdybloop.example\")) "
    "((\"Fred Foobar\" NIL \"foobar\" \"Blurdybloop.example\")) "
    "((\"Fred Foobar\" NIL \"foobar\" \"Blurdybloop.example\")) "
    "((NIL NIL \"mooch\" \"owatagu.siam.edu.example\")) "
    "((\"Team, All\" NIL \"team\" \"example.org\")"
    "(\"nobody\" NIL \"bob\" \"example.org\")) NIL \"<a@b>\" "
    "\"<B27397-0100000@Blurdybloop.example>\")";

/* a forward: message/rfc822, encoded words, groups */
static const char fwd[] =
    "From: =?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>\n"
    "To: undisclosed-recipients:;\n"
    "Reply-To: Team: a@x, \"B \\\"q\\\"\" <b@y>;\n"
    "Subject: =?utf-8?B?4oKs?= =?utf-8?Q?_price?=\n"
    "Content-Type: multipart/mixed; boundary=f\n"
    "\n"
    "--f\n"
    "\n"
    "See the forwarded message.\n"
    "--f\n"
    "Content-Type: message/rfc822\n"
    "Content-Description: forwarded\n"
    "\n"
    "Date: Tue, 1 Jan 2030 00:00:00 +0000\n"
    "From: x@example.com\n"
    "Sender: sec@example.com\n"
    "Subject: original\n"
    "Message-ID: <orig@example.com>\n"
    "\n"
    "original body\n"
    "line two\n"
    "--f--\n";

static const char fwd_bodystructure[] =
    "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 26 0 "
    "NIL NIL NIL NIL)"
    "(\"message\" \"rfc822\" NIL NIL \"forwarded\" \"7bit\" 160 "
    "(\"Tue, 1 Jan 2030 00:00:00 +0000\" \"original\" "
    "((NIL NIL \"x\" \"example.com\")) ((NIL NIL \"sec\" \"example.com\")) "
    "((NIL NIL \"x\" \"example.com\")) NIL NIL NIL NIL "
    "\"<orig@example.com>\") "
    "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 23 1 "
    "NIL NIL NIL NIL) 7 NIL NIL NIL NIL) "
    "\"mixed\" (\"boundary\" \"f\") NIL NIL NIL)";

static const char fwd_envelope[] =
    "(NIL \"=?utf-8?B?4oKs?= =?utf-8?Q?_price?=\" "
    "((\"=?ISO-8859-1?Q?Andr=E9?= Pirard\" NIL \"PIRARD\" \"vm1.ulg.ac.be\")) "
    "((\"=?ISO-8859-1?Q?Andr=E9?= Pirard\" NIL \"PIRARD\" \"vm1.ulg.ac.be\")) "
    "((NIL NIL \"Team\" NIL)(NIL NIL \"a\" \"x\")(\"B \\\"q\\\"\" NIL \"b\" "
    "\"y\")(NIL NIL NIL NIL)) "
    "((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) "
    "NIL NIL NIL NIL)";

/* crlf - s with every LF as CRLF (malloc'd) */
static char *
crlf(const char *s, size_t *n)
{
	struct buf b = BUF_INIT;

	for (; *s != '\0'; s++) {
		if (*s == '\n')
			buf_putc(&b, '\r');
		buf_putc(&b, *s);
	}
	*n = b.len;
	return buf_steal(&b);
}

/* check_message - BODYSTRUCTURE, BODY (if body) and ENVELOPE of msg, in
 * its LF and its CRLF form */
static void
check_message(const char *msg, const char *bs, const char *body,
    const char *env)
{
	for (int form = 0; form < 2; form++) {
		size_t n = strlen(msg);
		char *c = form ? crlf(msg, &n) : NULL;
		struct mime_message *m = mime_parse(c ? c : msg, n);
		struct buf out = BUF_INIT;

		mime_imap_bodystructure(&out, m, m->root, true, 0);
		T_EQ_STR(out.data, bs);
		if (body != NULL) {
			buf_reset(&out);
			mime_imap_bodystructure(&out, m, m->root, false, 0);
			T_EQ_STR(out.data, body);
		}
		buf_reset(&out);
		mime_imap_envelope(&out, m, m->root, 0);
		T_EQ_STR(out.data, env);
		buf_free(&out);
		mime_free(&m);
		free(c);
	}
}

static void
test_alternative_in_mixed(void)
{
	check_message(alt, alt_bodystructure, alt_body, alt_envelope);
}

static void
test_forward(void)
{
	check_message(fwd, fwd_bodystructure, NULL, fwd_envelope);
}

/* lines - append k lines of width bytes each (CRLF included) */
static void
lines(struct buf *b, int k, int width)
{
	for (int i = 0; i < k; i++) {
		for (int j = 0; j < width - 2; j++)
			buf_putc(b, 'a' + (i + j) % 26);
		buf_puts(b, "\r\n");
	}
}

static void
test_rfc3501_example(void)
{
	/* RFC 3501 7.4.2's BODY example, rebuilt: the sizes are those of
	 * the bodies, the strings those of the headers */
	struct buf b = BUF_INIT, out = BUF_INIT;
	struct mime_message *m;

	buf_puts(&b, "Content-Type: MULTIPART/MIXED; BOUNDARY=x\r\n\r\n"
	    "--x\r\nContent-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n"
	    "Content-Transfer-Encoding: 7BIT\r\n\r\n");
	lines(&b, 22, 50);
	lines(&b, 1, 52);
	buf_puts(&b, "\r\n--x\r\n"
	    "Content-Type: TEXT/PLAIN; CHARSET=US-ASCII; NAME=cc.diff\r\n"
	    "Content-ID: <960723163407.20117h@cac.washington.edu>\r\n"
	    "Content-Description: Compiler diff\r\n"
	    "Content-Transfer-Encoding: BASE64\r\n\r\n");
	lines(&b, 72, 62);
	lines(&b, 1, 90);
	buf_puts(&b, "\r\n--x--\r\n");
	m = mime_parse(b.data, b.len);
	mime_imap_bodystructure(&out, m, m->root, false, 0);
	T_EQ_STR(out.data, "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") "
	    "NIL NIL \"7BIT\" 1152 23)(\"TEXT\" \"PLAIN\" (\"CHARSET\" "
	    "\"US-ASCII\" \"NAME\" \"cc.diff\") "
	    "\"<960723163407.20117h@cac.washington.edu>\" \"Compiler diff\" "
	    "\"BASE64\" 4554 73) \"MIXED\")");
	mime_free(&m);
	buf_free(&b);
	buf_free(&out);
}

/* structure - the BODYSTRUCTURE of s */
static const char *
structure(const char *s, size_t n)
{
	static struct buf out = BUF_INIT;
	struct mime_message *m = mime_parse(s, n);

	buf_reset(&out);
	mime_imap_bodystructure(&out, m, m->root, true, 0);
	mime_free(&m);
	return out.data;
}

static void
test_degraded(void)
{
	static const char empty_mp[] =
	    "Content-Type: multipart/mixed; boundary=q\n\nno parts here\n";
	static const char enc_2231[] =
	    "Content-Type: application/pdf;\n"
	    " name*0*=utf-8''%E2%82%AC; name*1=\" x.pdf\"\n\n%PDF";

	/* a multipart without parts gets an empty text/plain one */
	T_EQ_STR(structure(empty_mp, sizeof(empty_mp) - 1),
	    "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" "
	    "0 0 NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"q\") NIL NIL NIL)");
	/* RFC 2231: the joined, still-encoded value under "name*" */
	T_EQ_STR(structure(enc_2231, sizeof(enc_2231) - 1),
	    "(\"application\" \"pdf\" (\"name*\" \"utf-8''%E2%82%AC%20x.pdf\") "
	    "NIL NIL \"7bit\" 4 NIL NIL NIL NIL)");
	T_EQ_STR(structure("", 0), "(\"text\" \"plain\" (\"charset\" "
	    "\"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)");
}

static void
test_nul_subject(void)
{
	static const char msg[] = "Subject: a\0b\nFrom: <x@y>\n\n";
	struct mime_message *m = mime_parse(msg, sizeof(msg) - 1);
	struct buf out = BUF_INIT;

	mime_imap_envelope(&out, m, m->root, 0);
	T_EQ_STR(out.data, "(NIL {5}\r\na\xef\xbf\xbd" "b ((NIL NIL \"x\" "
	    "\"y\")) ((NIL NIL \"x\" \"y\")) ((NIL NIL \"x\" \"y\")) "
	    "NIL NIL NIL NIL NIL)");
	mime_free(&m);
	buf_free(&out);
}

static void
test_envelope_empty(void)
{
	static const char msg[] = "Subject:\nSender:\nReply-To: ,\n"
	    "From: a@b\nTo:\n\n";
	struct mime_message *m = mime_parse(msg, sizeof(msg) - 1);
	struct buf out = BUF_INIT;

	/* present but empty Sender/Reply-To: From's value; empty To: NIL */
	mime_imap_envelope(&out, m, m->root, 0);
	T_EQ_STR(out.data, "(NIL \"\" ((NIL NIL \"a\" \"b\")) "
	    "((NIL NIL \"a\" \"b\")) ((NIL NIL \"a\" \"b\")) NIL NIL NIL NIL "
	    "NIL)");
	mime_free(&m);
	buf_free(&out);
}

/*
 * test_envelope_huge_field - a 4 MB Subject and a To: with a 4 MB display
 * name: the ENVELOPE takes MIME_IMAP_FIELD_MAX bytes of each, cut at a
 * UTF-8 character boundary, so it stays small whatever the header holds
 */
static void
test_envelope_huge_field(void)
{
	const size_t big = 4 * 1024 * 1024;
	struct buf msg = BUF_INIT, out = BUF_INIT, want = BUF_INIT;
	struct mime_message *m;

	/* the value is " " and the 'S's, then e-acutes: byte
	 * MIME_IMAP_FIELD_MAX of it is the second byte of one */
	buf_puts(&msg, "Subject: ");
	for (size_t i = 0; i < MIME_IMAP_FIELD_MAX - 2; i++)
		buf_putc(&msg, 'S');
	while (msg.len < big)
		buf_puts(&msg, "\xc3\xa9");
	buf_puts(&msg, "\nTo: ");
	for (size_t i = 0; i < big; i++)
		buf_putc(&msg, 'N');
	buf_puts(&msg, " <a@b>\nMessage-ID: <m@x>\n\nbody\n");
	m = mime_parse(msg.data, msg.len);
	for (unsigned flags = 0; flags <= MIME_IMAP_UTF8; flags++) {
		buf_reset(&out);
		mime_imap_envelope(&out, m, m->root, flags);
		T_ASSERT(out.len < 3 * MIME_IMAP_FIELD_MAX);
		/* the partial character is left out: ASCII, quoted */
		buf_set(&want, "(NIL \"");
		for (size_t i = 0; i < MIME_IMAP_FIELD_MAX - 2; i++)
			buf_putc(&want, 'S');
		buf_puts(&want, "\" NIL ");
		T_ASSERT(out.len > want.len);
		T_EQ_MEM(out.data, want.len, want.data, want.len);
		T_ASSERT(strstr(out.data, " \"<m@x>\")") != NULL);
	}
	mime_free(&m);
	buf_free(&msg);
	buf_free(&out);
	buf_free(&want);
}

/* quote - s as an IMAP string */
static const char *
quote(const char *s, unsigned flags)
{
	static struct buf out = BUF_INIT;

	buf_reset(&out);
	mime_imap_string(&out, s, strlen(s), flags);
	return out.data;
}

static void
test_quoting(void)
{
	struct buf out = BUF_INIT;

	T_EQ_STR(quote("plain", 0), "\"plain\"");
	T_EQ_STR(quote("", 0), "\"\"");
	T_EQ_STR(quote("a \"b\" \\c", 0), "\"a \\\"b\\\" \\\\c\"");
	T_EQ_STR(quote("\"\"\"\"\"", 0), "{5}\r\n\"\"\"\"\"");
	T_EQ_STR(quote("two\r\nlines", 0), "{10}\r\ntwo\r\nlines");
	T_EQ_STR(quote("caf\xc3\xa9", 0), "{5}\r\ncaf\xc3\xa9");
	T_EQ_STR(quote("caf\xc3\xa9", MIME_IMAP_UTF8), "\"caf\xc3\xa9\"");
	T_EQ_STR(quote("bad\xff", MIME_IMAP_UTF8), "{4}\r\nbad\xff");
	mime_imap_nstring(&out, NULL, 0);
	T_EQ_STR(out.data, "NIL");
	buf_free(&out);
}

static const struct test_case cases[] = {
	{"multipart/alternative in mixed, byte for byte",
	    test_alternative_in_mixed},
	{"message/rfc822 forward, encoded words, groups", test_forward},
	{"RFC 3501 BODY example", test_rfc3501_example},
	{"degraded structures", test_degraded},
	{"NUL in a header value", test_nul_subject},
	{"empty ENVELOPE fields", test_envelope_empty},
	{"ENVELOPE of a huge header field", test_envelope_huge_field},
	{"IMAP string quoting", test_quoting},
	{0},
};

int
main(void)
{
	return test_run(cases);
}
