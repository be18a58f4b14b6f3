/*
 * charset - conversion of text in a named charset to UTF-8 on top of
 * glibc's iconv (see charset.h for the contract).
 */
#include <errno.h>
#include <iconv.h>
#include <string.h>

#include "base/buf.h"
#include "base/str.h"
#include "mail/charset.h"

#define CHARSET_REPLACEMENT "\xef\xbf\xbd"	/* U+FFFD */
#define CHARSET_NAME_MAX 64

/* charset_is_utf8 - true for the names of UTF-8 and its subset US-ASCII */
bool
charset_is_utf8(const char *charset)
{
	static const char *const names[] = {
		"utf-8", "utf8", "us-ascii", "ascii", "ansi_x3.4-1968",
		"iso-646-us", "us", NULL,
	};

	for (size_t i = 0; names[i] != NULL; i++)
		if (str_casecmp(charset, names[i]) == 0)
			return true;
	return false;
}

/* charset_utf8_decode - see charset.h */
size_t
charset_utf8_decode(const unsigned char *p, size_t n, uint32_t *cp_r)
{
	unsigned c = p[0];
	size_t len;
	unsigned min, cp;

	if (c < 0x80) {
		*cp_r = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		min = 0x80;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		min = 0x800;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		min = 0x10000;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	*cp_r = cp;
	return len;
}

/* charset_utf8_valid - true if p[0..n) is well-formed UTF-8 */
bool
charset_utf8_valid(const char *p, size_t n)
{
	const unsigned char *u = (const unsigned char *)p;

	for (size_t i = 0; i < n;) {
		uint32_t cp;
		size_t k = charset_utf8_decode(u + i, n - i, &cp);

		if (k == 0)
			return false;
		i += k;
	}
	return true;
}

/* charset_utf8_clean - append p[0..n), ill-formed sequences as U+FFFD */
size_t
charset_utf8_clean(struct buf *out, const char *p, size_t n)
{
	const unsigned char *u = (const unsigned char *)p;
	size_t bad = 0, start = 0, i = 0;

	while (i < n) {
		uint32_t cp;
		size_t k = charset_utf8_decode(u + i, n - i, &cp);

		if (k > 0) {
			i += k;
			continue;
		}
		buf_append(out, p + start, i - start);
		buf_puts(out, CHARSET_REPLACEMENT);
		bad++;
		start = ++i;
	}
	buf_append(out, p + start, n - start);
	return bad;
}

/* charset_utf8_encode - see charset.h */
size_t
charset_utf8_encode(uint32_t cp, char b[4])
{
	if (cp < 0x80) {
		b[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		b[0] = (char)(0xc0 | (cp >> 6));
		b[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		b[0] = (char)(0xe0 | (cp >> 12));
		b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	b[0] = (char)(0xf0 | (cp >> 18));
	b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	b[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* charset_alias - the name iconv knows for some names mail uses */
static const char *
charset_alias(const char *charset)
{
	static const char *const aliases[][2] = {
		{"latin1", "ISO-8859-1"},
		{"ks_c_5601-1987", "CP949"},
		{"x-unknown", "ISO-8859-1"},
		{"x-user-defined", "ISO-8859-1"},
		{"gb2312", "GB18030"},	/* a superset; mailers mislabel */
		{"gbk", "GB18030"},
		{NULL, NULL},
	};

	for (size_t i = 0; aliases[i][0] != NULL; i++)
		if (str_casecmp(charset, aliases[i][0]) == 0)
			return aliases[i][1];
	return charset;
}

/* charset_to_utf8 - append in[0..n) converted from charset to UTF-8 */
int
charset_to_utf8(const char *charset, const char *in, size_t n,
    struct buf *out)
{
	char name[CHARSET_NAME_MAX];
	iconv_t cd;
	char *src = (char *)in;
	size_t left = n, bad = 0;
	char tmp[4096];

	if (charset_is_utf8(charset))
		return (int)charset_utf8_clean(out, in, n);
	/* iconv would read "//" suffixes as options: none from mail */
	if (strlen(charset) >= sizeof(name) || strchr(charset, '/') != NULL)
		return -1;
	str_lcpy(name, charset_alias(charset), sizeof(name));
	if ((cd = iconv_open("UTF-8", name)) == (iconv_t)-1)
		return -1;
	while (left > 0) {
		char *dst = tmp;
		size_t room = sizeof(tmp);
		size_t r = iconv(cd, &src, &left, &dst, &room);
		int err = errno;

		buf_append(out, tmp, (size_t)(dst - tmp));
		if (r != (size_t)-1 || out->overflow)
			break;
		if (err == E2BIG)
			continue;
		/* EILSEQ, or EINVAL (a sequence cut at the end) */
		buf_puts(out, CHARSET_REPLACEMENT);
		bad++;
		src++;
		left--;
		/* a stateful decoder may be mid-shift: start it afresh */
		(void)iconv(cd, NULL, NULL, NULL, NULL);
	}
	if (!out->overflow) {
		char *dst = tmp;
		size_t room = sizeof(tmp);

		if (iconv(cd, NULL, NULL, &dst, &room) != (size_t)-1)
			buf_append(out, tmp, (size_t)(dst - tmp));
	}
	(void)iconv_close(cd);
	return bad > 0x7fffffff ? 0x7fffffff : (int)bad;
}
