/*
 * mime_8to7_test - 8-bit content to quoted-printable for servers without
 * 8BITMIME: plain messages, one part of a multipart, line lengths, and
 * what is refused.
 */
#include <string.h>

#include "base/buf.h"
#include "base/test.h"
#include "mail/mime_8to7.h"

/* conv - mime_8to7 of a string */
static int
conv(const char *in, struct buf *out, struct buf *why)
{
	buf_reset(out);
	buf_reset(why);
	return mime_8to7(in, strlen(in), out, why);
}

static void
test_plain(void)
{
	struct buf out = BUF_INIT, why = BUF_INIT;

	T_EQ_INT(conv("Subject: x\r\nContent-Transfer-Encoding: 8bit\r\n"
	    "\r\ncaf\xc3\xa9 = ok \r\nend", &out, &why), 0);
	T_EQ_STR(buf_cstr(&out), "Subject: x\r\nMIME-Version: 1.0\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
	    "caf=C3=A9 =3D ok=20\r\nend");
	/* 7-bit stays as it is, byte for byte */
	T_EQ_INT(conv("Subject: x\n\nhello\n", &out, &why), 0);
	T_EQ_STR(buf_cstr(&out), "Subject: x\n\nhello\n");
	buf_free(&out);
	buf_free(&why);
}

static void
test_multipart(void)
{
	static const char in[] = "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
	    "--b\r\nContent-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding:\r\n 8bit\r\n\r\n\xc3\xa9t\xc3\xa9\r\n"
	    "--b\r\nContent-Type: text/plain\r\n\r\nascii\r\n--b--\r\n";
	static const char want[] = "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
	    "--b\r\nContent-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
	    "=C3=A9t=C3=A9\r\n"
	    "--b\r\nContent-Type: text/plain\r\n\r\nascii\r\n--b--\r\n";
	struct buf out = BUF_INIT, why = BUF_INIT;

	T_EQ_INT(conv(in, &out, &why), 0);
	T_EQ_STR(buf_cstr(&out), want);
	buf_free(&out);
	buf_free(&why);
}

static void
test_line_length(void)
{
	struct buf in = BUF_INIT, out = BUF_INIT, why = BUF_INIT;
	const char *p;

	buf_puts(&in, "Subject: long\r\n\r\n");
	for (int i = 0; i < 500; i++)
		buf_puts(&in, i % 7 ? "x" : "\xc3\xa9");
	buf_puts(&in, "\r\n");
	T_EQ_INT(mime_8to7(in.data, in.len, &out, &why), 0);
	for (p = buf_cstr(&out); *p; ) {
		const char *nl = strchr(p, '\n');
		size_t ll = nl ? (size_t)(nl - p) + 1 : strlen(p);

		T_ASSERT(ll <= 78);	/* 76 and CRLF */
		p += ll;
	}
	T_ASSERT(!mime_has_8bit(out.data, out.len));
	buf_free(&in);
	buf_free(&out);
	buf_free(&why);
}

static void
test_refused(void)
{
	struct buf out = BUF_INIT, why = BUF_INIT;

	T_EQ_INT(conv("Subject: caf\xc3\xa9\r\n\r\nbody \xc3\xa9\r\n", &out,
	    &why), -1);
	T_ASSERT(strstr(buf_cstr(&why), "header") != NULL);
	T_EQ_INT(conv("MIME-Version: 1.0\r\nContent-Transfer-Encoding: "
	    "base64\r\n\r\n\xc3\xa9\r\n", &out, &why), -1);
	buf_free(&out);
	buf_free(&why);
}

static const struct test_case cases[] = {
	{"plain message and 7-bit untouched", test_plain},
	{"one part of a multipart", test_multipart},
	{"soft line breaks", test_line_length},
	{"8-bit header and encoded bodies refused", test_refused},
	{0},
};

int
main(void)
{
	return test_run(cases);
}
