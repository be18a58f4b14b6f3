/*
 * preview_test - RFC 8970 preview text: which part is chosen (plain,
 * HTML, multipart/alternative, attachments skipped, forwarded message,
 * no text at all), the decoding (quoted-printable, base64, charsets, a
 * charset nobody knows), HTML to text, whitespace folding, and the
 * bounds (200 characters, cut on a UTF-8 boundary, a fixed prefix of a
 * huge part read).
 */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/test.h"
#include "mail/charset.h"
#include "mail/mime.h"
#include "mail/preview.h"

/* preview_of - the preview of message text s[0..n) */
static char *
preview_of(const char *s, size_t n)
{
	struct mime_message *m = mime_parse(s, n);
	struct buf out = BUF_INIT;

	preview_make(m, &out);
	mime_free(&m);
	return buf_steal(&out);
}

/* is - the preview of s is want */
static int
is(const char *s, const char *want)
{
	char *got = preview_of(s, strlen(s));
	int ok = strcmp(got, want) == 0;

	if (!ok)
		fprintf(stderr, "  got \"%s\"\n want \"%s\"\n", got, want);
	free(got);
	return ok;
}

/* utf8_chars - code points in well-formed p */
static size_t
utf8_chars(const char *p)
{
	size_t n = 0;

	for (; *p; p++)
		if (((unsigned char)*p & 0xc0) != 0x80)
			n++;
	return n;
}

static void
test_plain(void)
{
	T_ASSERT(is("Subject: x\r\n\r\n  Hello   world\r\n\r\n"
	    "second\tline \r\n", "Hello world second line"));
	T_ASSERT(is("Subject: no body\r\n\r\n", ""));
	T_ASSERT(is("Subject: bare LF\n\nHi\nthere\n", "Hi there"));
	/* controls and NULs are blanks */
	T_ASSERT(is("\r\na\x01" "b\x7f" "c", "a b c"));
}

static void
test_quoted_and_signature(void)
{
	T_ASSERT(is("Subject: re\r\n\r\nOn Monday Bob wrote:\r\n> old "
	    "text\r\n>> older\r\nMy answer.\r\n-- \r\nBob's sig\r\n",
	    "On Monday Bob wrote: My answer."));
}

static void
test_qp_charset(void)
{
	T_ASSERT(is("Content-Type: text/plain; charset=iso-8859-1\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
	    "Gr=FC=DFe aus K=F6ln, das ist ein lange=\r\nr Satz=3D\r\n",
	    "Gr\xc3\xbc\xc3\x9f" "e aus K\xc3\xb6ln, das ist ein langer "
	    "Satz="));
}

static void
test_base64(void)
{
	/* "Caf\xc3\xa9 au lait\r\n" */
	T_ASSERT(is("Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\n"
	    "Q2Fmw6kgYXUg\r\nbGFpdA0K\r\n", "Caf\xc3\xa9 au lait"));
}

static void
test_html(void)
{
	T_ASSERT(is("Content-Type: text/html; charset=utf-8\r\n\r\n"
	    "<!DOCTYPE html><html><head><title>Title</title>"
	    "<style>p { color: red }</style></head><body>"
	    "<p class=\"a>b\">Hi&nbsp;there &amp; &#x263A; &#65;&lt;3"
	    "</p><!-- <p>hidden</p> --><script>var a = '<p>x</p>';"
	    "</script><div>B<b>y</b>e &bogus; 1 < 2</div></body></html>",
	    "Hi there & \xe2\x98\xba A<3 Bye &bogus; 1 < 2"));
	/* an unterminated tag or comment ends the text */
	T_ASSERT(is("Content-Type: text/html\r\n\r\nok<!-- never", "ok"));
	T_ASSERT(is("Content-Type: text/html\r\n\r\nok<a href=\"x", "ok"));
}

static void
test_alternative(void)
{
	/* text/plain wins over text/html, wherever it is */
	T_ASSERT(is("Content-Type: multipart/alternative; boundary=b\r\n"
	    "\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n"
	    "--b\r\nContent-Type: text/plain\r\n\r\nplain\r\n--b--\r\n",
	    "plain"));
	/* only HTML */
	T_ASSERT(is("Content-Type: multipart/alternative; boundary=b\r\n"
	    "\r\n--b\r\nContent-Type: text/enriched\r\n\r\n<b>x</b>\r\n"
	    "--b\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n"
	    "--b--\r\n", "html"));
}

static void
test_mixed_attachments(void)
{
	/* a text attachment is not the message's text */
	T_ASSERT(is("Content-Type: multipart/mixed; boundary=m\r\n\r\n"
	    "--m\r\nContent-Type: text/plain\r\n"
	    "Content-Disposition: attachment; filename=a.txt\r\n\r\n"
	    "attached\r\n--m\r\nContent-Type: multipart/alternative; "
	    "boundary=a\r\n\r\n--a\r\nContent-Type: text/plain\r\n\r\n"
	    "the body\r\n--a\r\nContent-Type: text/html\r\n\r\n<p>h</p>"
	    "\r\n--a--\r\n--m--\r\n", "the body"));
	/* nothing but attachments and images */
	T_ASSERT(is("Content-Type: multipart/mixed; boundary=m\r\n\r\n"
	    "--m\r\nContent-Type: image/png\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\niVBORw0K\r\n--m\r\n"
	    "Content-Type: text/plain\r\nContent-Disposition: attachment"
	    "\r\n\r\nx\r\n--m--\r\n", ""));
	T_ASSERT(is("Content-Type: application/pdf\r\n\r\n%PDF-1.4", ""));
}

static void
test_rfc822(void)
{
	/* a forwarded message, inline: its text */
	T_ASSERT(is("Content-Type: multipart/mixed; boundary=m\r\n\r\n"
	    "--m\r\nContent-Type: message/rfc822\r\n\r\n"
	    "Subject: inner\r\nContent-Type: text/plain\r\n\r\n"
	    "inner text\r\n--m--\r\n", "inner text"));
	/* the outer text comes first */
	T_ASSERT(is("Content-Type: multipart/mixed; boundary=m\r\n\r\n"
	    "--m\r\n\r\nouter\r\n--m\r\nContent-Type: message/rfc822\r\n"
	    "\r\nSubject: inner\r\n\r\ninner\r\n--m--\r\n", "outer"));
	/* an attached one is not */
	T_ASSERT(is("Content-Type: multipart/mixed; boundary=m\r\n\r\n"
	    "--m\r\nContent-Type: message/rfc822\r\n"
	    "Content-Disposition: attachment\r\n\r\n"
	    "Subject: inner\r\n\r\ninner\r\n--m--\r\n", ""));
}

static void
test_bad_charset_and_cte(void)
{
	/* an unknown charset: the bytes as UTF-8, bad ones replaced */
	T_ASSERT(is("Content-Type: text/plain; charset=x-no-such-set\r\n"
	    "\r\ncaf\xc3\xa9 \xff!", "caf\xc3\xa9 \xef\xbf\xbd!"));
	/* undeclared 8-bit in us-ascii */
	T_ASSERT(is("\r\nna\xefve", "na\xef\xbf\xbdve"));
	/* an encoding nobody knows: no text */
	T_ASSERT(is("Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin",
	    ""));
}

static void
test_bounds(void)
{
	struct buf msg = BUF_INIT;
	char *got;

	/* ASCII: exactly PREVIEW_CHARS characters */
	buf_puts(&msg, "Subject: long\r\n\r\n");
	for (int i = 0; i < 100; i++)
		buf_puts(&msg, "word ");
	got = preview_of(msg.data, msg.len);
	/* 40 words and the spaces between: the 200th would be a space */
	T_EQ_INT(strlen(got), PREVIEW_CHARS - 1);
	T_ASSERT(got[strlen(got) - 1] != ' ');
	free(got);
	buf_reset(&msg);
	buf_puts(&msg, "Subject: long\r\n\r\n");
	for (int i = 0; i < 300; i++)
		buf_puts(&msg, "ab ");
	got = preview_of(msg.data, msg.len);
	T_EQ_INT(strlen(got), PREVIEW_CHARS);
	free(got);

	/* two-byte characters: cut between characters, never inside */
	buf_reset(&msg);
	buf_puts(&msg, "Content-Type: text/plain; charset=utf-8\r\n\r\n");
	for (int i = 0; i < 300; i++)
		buf_puts(&msg, "\xc3\xa9");
	got = preview_of(msg.data, msg.len);
	T_EQ_INT(strlen(got), 2 * PREVIEW_CHARS);
	T_EQ_INT(utf8_chars(got), PREVIEW_CHARS);
	T_ASSERT(charset_utf8_valid(got, strlen(got)));
	free(got);

	/* four-byte characters: the most bytes a preview can have */
	buf_reset(&msg);
	buf_puts(&msg, "Content-Type: text/plain; charset=utf-8\r\n\r\n");
	for (int i = 0; i < 300; i++)
		buf_puts(&msg, "\xf0\x9f\x98\x80");
	got = preview_of(msg.data, msg.len);
	T_EQ_INT(utf8_chars(got), PREVIEW_CHARS);
	T_EQ_INT(strlen(got), PREVIEW_MAX_BYTES);
	T_ASSERT(charset_utf8_valid(got, strlen(got)));
	free(got);

	/* only a prefix of a huge part is read: text past it is not seen */
	buf_reset(&msg);
	buf_puts(&msg, "Subject: huge\r\n\r\n");
	for (int i = 0; i < PREVIEW_PART_MAX / 32; i++)
		buf_puts(&msg, "                                              "
		    "             \r\n");
	buf_puts(&msg, "late text\r\n");
	got = preview_of(msg.data, msg.len);
	T_EQ_STR(got, "");
	free(got);
	buf_free(&msg);
}

static void
test_text_direct(void)
{
	struct buf out = BUF_INIT;

	preview_text("\xe9t\xe9", 3, "iso-8859-1", 0, &out);
	T_EQ_STR(buf_cstr(&out), "\xc3\xa9t\xc3\xa9");
	buf_reset(&out);
	preview_text("<p>a</p><p>b</p>", 16, NULL, 1, &out);
	T_EQ_STR(buf_cstr(&out), "a b");
	buf_free(&out);
}

/* test_bad_charset_name - a charset name with junk after "utf-8" once
 * let ill-formed UTF-8 (F4 A2 A2 A2, above U+10FFFF) into the preview
 * (found by preview_fuzz) */
static void
test_bad_charset_name(void)
{
	static const char in[] = "\x43\x6f\x6e\x74\x65\x6e\x74\x2d\x54\x79\x70\x65\x3a\x20\x74\x65\x78\x74\x2f\x68\x74\x6d\x6c\x3b\x20\x63\x68\x61\x72\x73\x65\x74\x3d\x75\x74\x66\x2d\x38\xff\xff\xff\xff\xff\xff\xff\x0d\x0a\x0d\x0a\x3c\x21\x44\x4f\x43\x54\x59\x50\x45\x20\x68\x74\x6d\x6c\x3e\x3c\x68\x74\x6d\x00\x00\x61\x10\x00\x4a\xef\x86\x3e\x3c\x70\x20\x63\x6c\x61\x73\x73\x3d\x22\x61\x3e\x62\x22\x3e\x48\x69\x26\x6e\x62\x73\xe9\x3b\x74\x68\x65\x62\x65\x20\x26\x61\x6d\x70\x3b\x20\x26\x23\x46\x46\x46\x46\x46\x46\x46\xb3\xb9\xb9\x46\xb9\x46\x3e\x62\x22\x3e\x48\x69\x26\x6e\x62\x73\xe9\x3b\x74\x68\x65\x72\x65\x20\x26\x61\x6d\x70\x3b\x20\x26\x22\x3e\x48\x69\x26\x6e\x62\x73\xe9\x3b\x74\x68\x65\x62\x65\x20\x26\x61\x6d\x70\x3b\x20\x26\x23\x46\x46\x46\x46\x46\x46\x46\xb3\xb9\x43\x67\x75\x73\x3b\x20\xff\xd7\xf4\xa2\xa2\xa2\x73\x74\x79\x61\x3e\x3c\xf4\xa2\xa2\xa2\xa2\xb9\x46\xb9\x46\x2d\x62\x22\x3e\x48\x69\x26\x6e\x62\x73\xe9\x3b\x74\x68\xa2\xa2\xa2\xa2";
	struct buf out = BUF_INIT;
	struct mime_message *m = mime_parse(in, sizeof(in) - 1);

	preview_make(m, &out);
	T_ASSERT(out.len > 0);
	T_ASSERT(charset_utf8_valid(out.data, out.len));
	mime_free(&m);
	buf_free(&out);
}

static const struct test_case cases[] = {
	{"ill-formed UTF-8 from a converter is cleaned",
	    test_bad_charset_name},
	{"plain text, whitespace folded", test_plain},
	{"quoted lines and signature left out", test_quoted_and_signature},
	{"quoted-printable in iso-8859-1", test_qp_charset},
	{"base64 in utf-8", test_base64},
	{"HTML to text", test_html},
	{"multipart/alternative prefers text/plain", test_alternative},
	{"attachments are skipped", test_mixed_attachments},
	{"message/rfc822", test_rfc822},
	{"unknown charset and encoding", test_bad_charset_and_cte},
	{"200 characters, UTF-8 cut, bounded read", test_bounds},
	{"preview_text alone", test_text_direct},
	{NULL, NULL},
};

int
main(void)
{
	return test_run(cases);
}
