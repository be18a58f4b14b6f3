/*
 * mime_8to7 - 8-bit MIME content to quoted-printable for servers without
 * 8BITMIME (see mime_8to7.h).
 */
#include <string.h>

#include "base/buf.h"
#include "base/str.h"
#include "mail/mime.h"
#include "mail/mime_8to7.h"

#define QP_LINE_MAX 76		/* RFC 2045 6.7 rule 5 */

/* mime_has_8bit - a byte over 127 in p[0..n) */
bool
mime_has_8bit(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] & 0x80)
			return true;
	return false;
}

/* mime_8to7_qp - quoted-printable of p[0..n); line ends stay hard line
 * breaks (CRLF or bare LF both become CRLF) */
static void
mime_8to7_qp(const char *p, size_t n, struct buf *out)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t col = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		bool eol = c == '\n' || (c == '\r' && i + 1 < n &&
		    p[i + 1] == '\n');
		bool last = i + 1 == n || p[i + 1] == '\n' ||
		    (p[i + 1] == '\r' && i + 2 < n && p[i + 2] == '\n');
		char enc[3];
		size_t w;

		if (eol) {
			if (c == '\r')
				i++;
			buf_puts(out, "\r\n");
			col = 0;
			continue;
		}
		/* literal: printable but '='; blanks unless at a line end */
		if ((c >= 33 && c <= 126 && c != '=') ||
		    ((c == ' ' || c == '\t') && !last)) {
			enc[0] = (char)c;
			w = 1;
		} else {
			enc[0] = '=';
			enc[1] = hex[c >> 4];
			enc[2] = hex[c & 15];
			w = 3;
		}
		/* a soft break keeps lines within 76 bytes, its '=' counted */
		if (col + w > QP_LINE_MAX - 1) {
			buf_puts(out, "=\r\n");
			col = 0;
		}
		buf_append(out, enc, w);
		col += w;
	}
}

/* mime_8to7_is_cte - does the field line at p start with the name
 * Content-Transfer-Encoding? */
static bool
mime_8to7_is_cte(const char *p, size_t n)
{
	static const char name[] = "content-transfer-encoding";
	size_t k = sizeof(name) - 1;

	if (n < k || str_ncasecmp(p, name, k) != 0)
		return false;
	while (k < n && (p[k] == ' ' || p[k] == '\t'))
		k++;
	return k < n && p[k] == ':';
}

/* mime_8to7_header - part's header without its Content-Transfer-Encoding
 * fields, with the new one (and MIME-Version for a non-MIME message) */
static void
mime_8to7_header(const struct mime_message *m, const struct mime_part *part,
    struct buf *out)
{
	const char *h = m->data + part->hdr_off;
	size_t len = part->hdr_len, pos = 0;
	bool skipping = false, mime_version = false, ended = false;

	while (pos < len && !ended) {
		const char *nl = memchr(h + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - h) + 1 : len;
		const char *line = h + pos;
		size_t ll = end - pos;

		if (ll <= 2 && (line[0] == '\n' || (line[0] == '\r' &&
		    ll == 2))) {
			ended = true;
			break;
		}
		if (line[0] == ' ' || line[0] == '\t') {
			if (!skipping)
				buf_append(out, line, ll);
		} else {
			skipping = mime_8to7_is_cte(line, ll);
			if (ll >= 13 && str_ncasecmp(line, "MIME-Version:",
			    13) == 0)
				mime_version = true;
			if (!skipping)
				buf_append(out, line, ll);
		}
		pos = end;
	}
	if (out->len > 0 && out->data[out->len - 1] != '\n')
		buf_puts(out, "\r\n");
	if (part->parent == NULL && !mime_version)
		buf_puts(out, "MIME-Version: 1.0\r\n");
	buf_puts(out, "Content-Transfer-Encoding: quoted-printable\r\n");
	buf_puts(out, "\r\n");
}

/* mime_8to7_part - convert part and what it holds; -1 with why */
static int
mime_8to7_part(const struct mime_message *m, const struct mime_part *p,
    size_t *cursor, struct buf *out, struct buf *why)
{
	if (p->is_multipart || p->is_message) {
		for (const struct mime_part *c = p->children; c != NULL;
		    c = c->next)
			if (mime_8to7_part(m, c, cursor, out, why) < 0)
				return -1;
		return 0;
	}
	if (!mime_has_8bit(m->data + p->body_off, p->body_len))
		return 0;
	if (p->opaque || m->limited) {
		buf_puts(why, "8-bit content in a message too deeply nested "
		    "to convert");
		return -1;
	}
	if (p->enc == MIME_ENC_BASE64 || p->enc == MIME_ENC_QP) {
		buf_puts(why, "8-bit bytes in a base64 or quoted-printable "
		    "body");
		return -1;
	}
	if (p->hdr_off < *cursor || !p->has_header_end)
		return 0;	/* no header of its own: left as it is */
	buf_append(out, m->data + *cursor, p->hdr_off - *cursor);
	mime_8to7_header(m, p, out);
	mime_8to7_qp(m->data + p->body_off, p->body_len, out);
	*cursor = p->body_off + p->body_len;
	return 0;
}

/* mime_8to7 - convert data[0..len) into out */
int
mime_8to7(const char *data, size_t len, struct buf *out, struct buf *why)
{
	struct mime_message *m = mime_parse(data, len);
	size_t cursor = 0, start = out->len;
	int rc = mime_8to7_part(m, m->root, &cursor, out, why);

	if (rc == 0) {
		buf_append(out, data + cursor, len - cursor);
		if (mime_has_8bit(out->data + start, out->len - start)) {
			buf_puts(why, "8-bit bytes in a header (the message "
			    "needs SMTPUTF8 or 8BITMIME)");
			rc = -1;
		}
	}
	mime_free(&m);
	return rc;
}
