/*
 * mime_imap - ENVELOPE, BODY and BODYSTRUCTURE of a parsed message, and
 * IMAP string quoting (see mime_imap.h for the contract).
 */
#include <string.h>

#include "base/buf.h"
#include "base/str.h"
#include "mail/charset.h"
#include "mail/mime.h"
#include "mail/mime_imap.h"

#define MIME_IMAP_ESCAPES 4	/* more '"' and '\' than this: a literal */

/* mime_imap_string - append s[0..n) as a quoted string or a literal */
void
mime_imap_string(struct buf *out, const char *s, size_t n, unsigned flags)
{
	size_t escapes = 0, nuls = 0;
	bool literal = false, high = false;

	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '"' || ch == '\\') {
			if (++escapes > MIME_IMAP_ESCAPES)
				literal = true;
		} else if (ch == '\r' || ch == '\n') {
			literal = true;
		} else if (ch == '\0') {
			nuls++;
			literal = true;
		} else if (ch >= 0x80) {
			high = true;
		}
	}
	if (high && !((flags & MIME_IMAP_UTF8) && charset_utf8_valid(s, n)))
		literal = true;
	if (!literal) {
		buf_putc(out, '"');
		for (size_t i = 0; i < n; i++) {
			if (s[i] == '"' || s[i] == '\\')
				buf_putc(out, '\\');
			buf_putc(out, s[i]);
		}
		buf_putc(out, '"');
		return;
	}
	/* a NUL becomes U+FFFD: 2 bytes more each */
	buf_printf(out, "{%zu}\r\n", n + nuls * 2);
	for (size_t i = 0, start = 0; i <= n; i++) {
		if (i == n || s[i] == '\0') {
			buf_append(out, s + start, i - start);
			if (i < n)
				buf_puts(out, "\xef\xbf\xbd");
			start = i + 1;
		}
	}
}

/* mime_imap_nstring - a C string or NIL */
void
mime_imap_nstring(struct buf *out, const char *s, unsigned flags)
{
	if (s == NULL)
		buf_puts(out, "NIL");
	else
		mime_imap_string(out, s, strlen(s), flags);
}

/* mime_imap_addrs - an address list, or NIL when it holds none */
static void
mime_imap_addrs(struct buf *out, const struct mime_addr *a, unsigned flags)
{
	if (a == NULL) {
		buf_puts(out, "NIL");
		return;
	}
	buf_putc(out, '(');
	for (; a != NULL; a = a->next) {
		buf_putc(out, '(');
		mime_imap_nstring(out, a->name, flags);
		buf_putc(out, ' ');
		mime_imap_nstring(out, a->route, flags);
		buf_putc(out, ' ');
		mime_imap_nstring(out, a->mailbox, flags);
		buf_putc(out, ' ');
		mime_imap_nstring(out, a->host, flags);
		buf_putc(out, ')');
	}
	buf_putc(out, ')');
}

/* the ENVELOPE fields in RFC 9051's order */
enum {
	ENV_DATE, ENV_SUBJECT, ENV_FROM, ENV_SENDER, ENV_REPLY_TO, ENV_TO,
	ENV_CC, ENV_BCC, ENV_IN_REPLY_TO, ENV_MESSAGE_ID, ENV_COUNT,
};

/*
 * mime_imap_field_len - how much of a field value of len bytes the
 * ENVELOPE takes: all of it, or MIME_IMAP_FIELD_MAX bytes cut back to the
 * start of a UTF-8 character (an 8-bit header stays valid UTF-8)
 */
static size_t
mime_imap_field_len(const char *value, size_t len)
{
	size_t n = len;

	if (n <= MIME_IMAP_FIELD_MAX)
		return n;
	n = MIME_IMAP_FIELD_MAX;
	for (int i = 0; i < 3 && n > 0 &&
	    ((unsigned char)value[n] & 0xc0) == 0x80; i++)
		n--;
	return n;
}

/* mime_imap_envelope - append the ENVELOPE of message part p */
void
mime_imap_envelope(struct buf *out, const struct mime_message *m,
    const struct mime_part *p, unsigned flags)
{
	static const char *const names[ENV_COUNT] = {
		"date", "subject", "from", "sender", "reply-to", "to", "cc",
		"bcc", "in-reply-to", "message-id",
	};
	struct buf val[ENV_COUNT];
	bool have[ENV_COUNT] = {false};
	struct mime_addr *from = NULL;
	struct mime_field f;
	size_t pos = 0;

	for (int i = 0; i < ENV_COUNT; i++)
		buf_init(&val[i]);
	while (mime_header_next(m->data + p->hdr_off, p->hdr_len, &pos,
	    &f) > 0) {
		for (int i = 0; i < ENV_COUNT; i++) {
			if (have[i] || f.name_len != strlen(names[i]) ||
			    str_ncasecmp(f.name, names[i], f.name_len) != 0)
				continue;
			have[i] = true;
			mime_header_unfold(&val[i], f.value,
			    mime_imap_field_len(f.value, f.value_len));
		}
	}
	buf_putc(out, '(');
	for (int i = 0; i < ENV_COUNT; i++) {
		struct mime_addr *a;

		if (i > 0)
			buf_putc(out, ' ');
		switch (i) {
		case ENV_FROM:
		case ENV_SENDER:
		case ENV_REPLY_TO:
		case ENV_TO:
		case ENV_CC:
		case ENV_BCC:
			a = have[i] ? mime_addr_parse(val[i].data, val[i].len) :
			    NULL;
			if (a == NULL && (i == ENV_SENDER ||
			    i == ENV_REPLY_TO)) {
				/* absent or empty: the From value */
				mime_imap_addrs(out, from, flags);
				break;
			}
			mime_imap_addrs(out, a, flags);
			if (i == ENV_FROM)
				from = a;
			else
				mime_addr_free(&a);
			break;
		default:
			if (have[i])
				mime_imap_string(out, val[i].data, val[i].len,
				    flags);
			else
				buf_puts(out, "NIL");
			break;
		}
	}
	buf_putc(out, ')');
	mime_addr_free(&from);
	for (int i = 0; i < ENV_COUNT; i++)
		buf_free(&val[i]);
}

/* mime_imap_params - a body-fld-param: NIL or ("name" "value" ...) */
static void
mime_imap_params(struct buf *out, const struct mime_param *ps, unsigned n,
    unsigned flags)
{
	if (n == 0) {
		buf_puts(out, "NIL");
		return;
	}
	buf_putc(out, '(');
	for (unsigned i = 0; i < n; i++) {
		if (i > 0)
			buf_putc(out, ' ');
		if (ps[i].extended) {
			/* RFC 2231 form kept, as Dovecot sends it */
			struct buf name = BUF_INIT;

			buf_printf(&name, "%s*", ps[i].name);
			mime_imap_string(out, name.data, name.len, flags);
			buf_free(&name);
		} else {
			mime_imap_nstring(out, ps[i].name, flags);
		}
		buf_putc(out, ' ');
		mime_imap_nstring(out, ps[i].raw, flags);
	}
	buf_putc(out, ')');
}

/* mime_imap_ext - the extension data after md5 (single part) or
 * parameters (multipart): disposition, language, location */
static void
mime_imap_ext(struct buf *out, const struct mime_part *p, unsigned flags)
{
	buf_putc(out, ' ');
	if (p->disposition == NULL) {
		buf_puts(out, "NIL");
	} else {
		buf_putc(out, '(');
		mime_imap_nstring(out, p->disposition, flags);
		buf_putc(out, ' ');
		mime_imap_params(out, p->disp_params, p->ndisp_params, flags);
		buf_putc(out, ')');
	}
	buf_putc(out, ' ');
	if (p->nlanguages == 0) {
		buf_puts(out, "NIL");
	} else {
		buf_putc(out, '(');
		for (unsigned i = 0; i < p->nlanguages; i++) {
			if (i > 0)
				buf_putc(out, ' ');
			mime_imap_nstring(out, p->languages[i], flags);
		}
		buf_putc(out, ')');
	}
	buf_putc(out, ' ');
	mime_imap_nstring(out, p->location, flags);
}

/* mime_imap_bodystructure - append the BODYSTRUCTURE or BODY of p */
void
mime_imap_bodystructure(struct buf *out, const struct mime_message *m,
    const struct mime_part *p, bool extended, unsigned flags)
{
	buf_putc(out, '(');
	if (p->is_multipart) {
		for (const struct mime_part *k = p->children; k != NULL;
		    k = k->next)
			mime_imap_bodystructure(out, m, k, extended, flags);
		if (p->children == NULL) {
			/* IMAP needs a part: an empty one, as Dovecot sends */
			buf_puts(out, "(\"text\" \"plain\" (\"charset\" "
			    "\"us-ascii\") NIL NIL \"7bit\" 0 0");
			buf_puts(out, extended ? " NIL NIL NIL NIL)" : ")");
		}
		buf_putc(out, ' ');
		mime_imap_nstring(out, p->subtype, flags);
		if (extended) {
			buf_putc(out, ' ');
			mime_imap_params(out, p->params, p->nparams, flags);
			mime_imap_ext(out, p, flags);
		}
		buf_putc(out, ')');
		return;
	}
	mime_imap_nstring(out, p->type, flags);
	buf_putc(out, ' ');
	mime_imap_nstring(out, p->subtype, flags);
	buf_putc(out, ' ');
	mime_imap_params(out, p->params, p->nparams, flags);
	buf_putc(out, ' ');
	mime_imap_nstring(out, p->id, flags);
	buf_putc(out, ' ');
	mime_imap_nstring(out, p->description, flags);
	buf_putc(out, ' ');
	mime_imap_nstring(out, p->encoding != NULL ? p->encoding : "7bit",
	    flags);
	buf_printf(out, " %zu", p->body_vsize);
	if (p->is_message && p->children != NULL) {
		buf_putc(out, ' ');
		mime_imap_envelope(out, m, p->children, flags);
		buf_putc(out, ' ');
		mime_imap_bodystructure(out, m, p->children, extended, flags);
		buf_printf(out, " %zu", p->body_lines);
	} else if (p->is_text) {
		buf_printf(out, " %zu", p->body_lines);
	}
	if (extended) {
		buf_putc(out, ' ');
		mime_imap_nstring(out, p->md5, flags);
		mime_imap_ext(out, p, flags);
	}
	buf_putc(out, ')');
}
