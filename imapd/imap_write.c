/*
 * imap_write - strings in IMAP responses (RFC 9051 4.3): an atom when
 * the text is one, a quoted string when it can be (no CR, LF, NUL or
 * 8-bit, escapes for '"' and '\'), else a literal "{n}" CRLF and the
 * bytes (a server never sends "{n+}").
 */
#include <string.h>

#include "base/buf.h"
#include "base/str.h"
#include "imapd.h"

#define IMAP_WRITE_QUOTED_MAX 1024	/* longer text goes as a literal */

/* imap_write_quotable - may p[0..n) go as a quoted string? */
static bool
imap_write_quotable(const char *p, size_t n)
{
	if (n > IMAP_WRITE_QUOTED_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '\0' || c == '\r' || c == '\n' || c >= 0x80)
			return false;
	}
	return true;
}

/* imap_write_string - quoted or literal */
void
imap_write_string(struct buf *out, const char *p, size_t n)
{
	if (!imap_write_quotable(p, n)) {
		buf_printf(out, "{%zu}\r\n", n);
		buf_append(out, p, n);
		return;
	}
	buf_putc(out, '"');
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '"' || p[i] == '\\')
			buf_putc(out, '\\');
		buf_putc(out, p[i]);
	}
	buf_putc(out, '"');
}

/* imap_write_astring - an atom when it is one */
void
imap_write_astring(struct buf *out, const char *p, size_t n)
{
	bool atom = n > 0 && !(n == 3 && str_ncasecmp(p, "NIL", 3) == 0);

	for (size_t i = 0; atom && i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		atom = c > 0x20 && c < 0x7f && strchr("(){%*\"\\", c) == NULL;
	}
	if (atom)
		buf_append(out, p, n);
	else
		imap_write_string(out, p, n);
}

/* imap_write_nstring - NIL or a string */
void
imap_write_nstring(struct buf *out, const char *p, size_t n)
{
	if (p == NULL)
		buf_puts(out, "NIL");
	else
		imap_write_string(out, p, n);
}

/* imap_write_number - v in decimal */
void
imap_write_number(struct buf *out, uint64_t v)
{
	char d[20];
	size_t i = sizeof(d);

	do {
		d[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	buf_append(out, d + i, sizeof(d) - i);
}
