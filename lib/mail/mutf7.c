/*
 * mutf7 - modified UTF-7 (RFC 3501 §5.1.3) both ways, strict, and the
 * IMAP folder name <-> Maildir++ folder mapping. See mutf7.h.
 */
#include <stdint.h>
#include <string.h>

#include "base/buf.h"
#include "base/str.h"
#include "mail/charset.h"
#include "mail/mutf7.h"

static const char mutf7_b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/* mutf7_b64_value - the 6-bit value of a modified base64 letter, or -1 */
static int
mutf7_b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == ',')
		return 63;
	return -1;
}

/* mutf7_error - set why; returns -1 */
static int
mutf7_error(struct buf *why, const char *text)
{
	buf_set(why, text);
	return -1;
}

/* mutf7_put_utf8 - append code point cp as UTF-8 */
static void
mutf7_put_utf8(struct buf *out, uint32_t cp)
{
	char b[4];

	buf_append(out, b, charset_utf8_encode(cp, b));
}

/* mutf7_utf8_next - the code point at p[0..n) into *cp: its length, or 0
 * for a malformed, overlong, surrogate or out-of-range sequence */
static size_t
mutf7_utf8_next(const unsigned char *p, size_t n, uint32_t *cp)
{
	uint32_t c;
	size_t len;

	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	}
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		len = 2;
		c = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		len = 3;
		c = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		len = 4;
		c = p[0] & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (p[i] & 0x3f);
	}
	if ((len == 3 && c < 0x800) || (len == 4 && c < 0x10000) ||
	    c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

/* mutf7_utf8_valid - see mutf7.h */
bool
mutf7_utf8_valid(const char *in, size_t n)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t i = 0, len;
	uint32_t cp;

	while (i < n) {
		if (p[i] == 0 || (len = mutf7_utf8_next(p + i, n - i,
		    &cp)) == 0)
			return false;
		i += len;
	}
	return true;
}

/* mutf7_decode - see mutf7.h */
int
mutf7_decode(const char *in, size_t n, struct buf *out, struct buf *why)
{
	const unsigned char *p = (const unsigned char *)in;
	bool after_run = false;
	size_t i = 0;

	if (n > MUTF7_INPUT_MAX)
		return mutf7_error(why, "name too long");
	while (i < n) {
		uint32_t acc = 0, high = 0;
		unsigned nbits = 0;
		size_t units = 0;

		if (p[i] < 0x20 || p[i] > 0x7e)
			return mutf7_error(why, "byte outside printable "
			    "US-ASCII in modified UTF-7");
		if (p[i] != '&') {
			buf_putc(out, p[i++]);
			after_run = false;
			continue;
		}
		i++;
		if (i < n && p[i] == '-') {
			buf_putc(out, '&');
			i++;
			after_run = false;
			continue;
		}
		if (after_run)
			return mutf7_error(why, "two modified base64 runs "
			    "side by side");
		for (;;) {
			int v;

			if (i >= n)
				return mutf7_error(why, "modified base64 "
				    "without its closing '-'");
			if (p[i] == '-')
				break;
			if ((v = mutf7_b64_value(p[i])) < 0)
				return mutf7_error(why, "bad character in "
				    "modified base64");
			i++;
			acc = (acc << 6) | (uint32_t)v;
			nbits += 6;
			if (nbits < 16)
				continue;
			nbits -= 16;
			uint32_t u = (acc >> nbits) & 0xffff;

			acc &= (1u << nbits) - 1;
			units++;
			if (high != 0) {
				if (u < 0xdc00 || u > 0xdfff)
					return mutf7_error(why, "unpaired "
					    "surrogate");
				mutf7_put_utf8(out, 0x10000 +
				    ((high - 0xd800) << 10) + (u - 0xdc00));
				high = 0;
			} else if (u >= 0xd800 && u <= 0xdbff) {
				high = u;
			} else if (u >= 0xdc00 && u <= 0xdfff) {
				return mutf7_error(why, "unpaired surrogate");
			} else if (u == 0) {
				return mutf7_error(why, "NUL in name");
			} else if (u >= 0x20 && u <= 0x7e) {
				return mutf7_error(why, "printable US-ASCII "
				    "in modified base64");
			} else {
				mutf7_put_utf8(out, u);
			}
		}
		i++;	/* the '-' */
		if (high != 0)
			return mutf7_error(why, "unpaired surrogate");
		if (units == 0 || nbits >= 6 || acc != 0)
			return mutf7_error(why, "modified base64 that is not "
			    "whole UTF-16 characters");
		after_run = true;
	}
	return 0;
}

/* mutf7_flush - close the base64 run of units[0..nu) into out */
static void
mutf7_flush(struct buf *out, const uint16_t *units, size_t nu)
{
	uint32_t acc = 0;
	unsigned nbits = 0;

	if (nu == 0)
		return;
	buf_putc(out, '&');
	for (size_t i = 0; i < nu; i++) {
		acc = (acc << 16) | units[i];
		nbits += 16;
		while (nbits >= 6) {
			nbits -= 6;
			buf_putc(out, mutf7_b64[(acc >> nbits) & 0x3f]);
		}
		acc &= (1u << nbits) - 1;
	}
	if (nbits > 0)
		buf_putc(out, mutf7_b64[(acc << (6 - nbits)) & 0x3f]);
	buf_putc(out, '-');
}

/* mutf7_encode - see mutf7.h */
int
mutf7_encode(const char *in, size_t n, struct buf *out, struct buf *why)
{
	const unsigned char *p = (const unsigned char *)in;
	uint16_t units[2 * MUTF7_INPUT_MAX];
	size_t i = 0, nu = 0, start = out->len;

	if (n > MUTF7_INPUT_MAX)
		return mutf7_error(why, "name too long");
	while (i < n) {
		uint32_t cp;
		size_t len;

		if (p[i] == 0 || (len = mutf7_utf8_next(p + i, n - i,
		    &cp)) == 0)
			return mutf7_error(why, "name is not UTF-8");
		i += len;
		if (cp >= 0x20 && cp <= 0x7e) {
			mutf7_flush(out, units, nu);
			nu = 0;
			if (cp == '&')
				buf_puts(out, "&-");
			else
				buf_putc(out, (int)cp);
		} else if (cp >= 0x10000) {
			cp -= 0x10000;
			units[nu++] = (uint16_t)(0xd800 + (cp >> 10));
			units[nu++] = (uint16_t)(0xdc00 + (cp & 0x3ff));
		} else {
			units[nu++] = (uint16_t)cp;
		}
	}
	mutf7_flush(out, units, nu);
	/* the encoded form is longer (up to 8/3 times): it must still be
	 * something mutf7_decode takes, so the two stay inverses */
	if (out->len - start > MUTF7_INPUT_MAX) {
		buf_truncate(out, start);
		return mutf7_error(why, "name too long");
	}
	return 0;
}

/* mutf7_is_inbox - the level p[0..n) is "INBOX" in any case */
static bool
mutf7_is_inbox(const char *p, size_t n)
{
	return n == 5 && str_ncasecmp(p, "INBOX", 5) == 0;
}

/* mutf7_folder_name - see mutf7.h */
int
mutf7_folder_name(const char *s, bool utf8, struct buf *out, struct buf *why)
{
	struct buf name = BUF_INIT, disk = BUF_INIT;
	const char *p, *dot;
	int rc = -1;

	buf_reset(out);
	if (strlen(s) > MUTF7_INPUT_MAX) {
		buf_set(why, "folder name too long");
		goto out;
	}
	if (utf8) {
		if (!mutf7_utf8_valid(s, strlen(s))) {
			buf_set(why, "folder name is not UTF-8");
			goto out;
		}
		buf_puts(&name, s);
	} else if (mutf7_decode(s, strlen(s), &name, why) < 0) {
		goto out;
	}
	p = buf_cstr(&name);
	if (*p == '\0') {
		buf_set(why, "empty folder name");
		goto out;
	}
	for (const unsigned char *c = (const unsigned char *)p; *c; c++) {
		if (*c < 0x20 || *c == 0x7f || *c == '/' || *c == '*' ||
		    *c == '%') {
			buf_set(why, "folder name holds '/', '*', '%' or a "
			    "control character");
			goto out;
		}
	}
	for (const char *lvl = p;; lvl = dot + 1) {
		size_t len;

		dot = strchr(lvl, '.');
		len = dot ? (size_t)(dot - lvl) : strlen(lvl);
		if (len == 0) {
			buf_set(why, "folder name with an empty level "
			    "(leading, trailing or doubled '.')");
			goto out;
		}
		if (dot == NULL)
			break;
	}
	dot = strchr(p, '.');
	if (mutf7_is_inbox(p, dot ? (size_t)(dot - p) : strlen(p))) {
		buf_puts(out, "INBOX");
		if (dot != NULL)
			buf_puts(out, dot);
	} else {
		buf_puts(out, p);
	}
	if (mutf7_folder_disk(buf_cstr(out), &disk, why) < 0)
		goto out;
	rc = 0;
out:
	if (rc < 0)
		buf_reset(out);
	buf_free(&name);
	buf_free(&disk);
	return rc;
}

/* mutf7_folder_disk - see mutf7.h */
int
mutf7_folder_disk(const char *name, struct buf *out, struct buf *why)
{
	buf_reset(out);
	if (strcmp(name, "INBOX") == 0)
		return 0;
	buf_putc(out, '.');
	if (mutf7_encode(name, strlen(name), out, why) < 0) {
		buf_reset(out);
		return -1;
	}
	if (out->len > MUTF7_NAME_MAX) {
		buf_reset(out);
		buf_set(why, "folder name too long");
		return -1;
	}
	return 0;
}

/* mutf7_folder_from_disk - see mutf7.h */
int
mutf7_folder_from_disk(const char *d, struct buf *out, struct buf *why)
{
	struct buf name = BUF_INIT, disk = BUF_INIT;
	int rc = -1;

	buf_reset(out);
	if (d[0] != '.' || d[1] == '\0' || strlen(d) > MUTF7_NAME_MAX) {
		buf_set(why, "not a Maildir++ folder name");
		goto out;
	}
	if (mutf7_decode(d + 1, strlen(d + 1), &name, why) < 0 ||
	    mutf7_folder_name(buf_cstr(&name), true, out, why) < 0 ||
	    mutf7_folder_disk(buf_cstr(out), &disk, why) < 0)
		goto out;
	if (strcmp(buf_cstr(&disk), d) != 0) {
		buf_set(why, "folder name on disk is not in canonical form");
		goto out;
	}
	rc = 0;
out:
	if (rc < 0)
		buf_reset(out);
	buf_free(&name);
	buf_free(&disk);
	return rc;
}
