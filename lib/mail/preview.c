/*
 * preview - the RFC 8970 preview text of a message, made from its first
 * text part (see preview.h for what is chosen and what comes out).
 *
 * The steps are separate passes over bounded buffers: transfer decoding
 * of at most PREVIEW_PART_MAX raw bytes, conversion to UTF-8, then HTML
 * to text or the plain-text line filter, then whitespace folding and the
 * cut. Each pass is linear, so a hostile part costs a few hundred
 * kilobytes of memory and time linear in PREVIEW_PART_MAX.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "base/buf.h"
#include "base/str.h"
#include "mail/charset.h"
#include "mail/mime.h"
#include "mail/preview.h"

#define PREVIEW_UTF8_MAX (4 * PREVIEW_PART_MAX)	/* converted text */
#define PREVIEW_ENTITY_MAX 10	/* letters of a named reference */

/* preview_is - is part p of type/subtype (any case)? */
static bool
preview_is(const struct mime_part *p, const char *type, const char *sub)
{
	return str_casecmp(p->type, type) == 0 &&
	    (sub == NULL || str_casecmp(p->subtype, sub) == 0);
}

/* preview_attachment - is p marked as an attachment? */
static bool
preview_attachment(const struct mime_part *p)
{
	return p->disposition != NULL &&
	    str_casecmp(p->disposition, "attachment") == 0;
}

/* preview_leaf - is p a text part a preview can be made of? */
static bool
preview_leaf(const struct mime_part *p, const char *sub)
{
	return !p->is_multipart && !p->is_message && !p->opaque &&
	    !preview_attachment(p) && preview_is(p, "text", sub);
}

/* preview_find - the part below p the preview comes from, or NULL */
static const struct mime_part *
preview_find(const struct mime_part *p)
{
	const struct mime_part *k, *r;

	if (preview_attachment(p) || p->opaque)
		return NULL;
	if (p->is_message)
		return p->children ? preview_find(p->children) : NULL;
	if (!p->is_multipart)
		return preview_leaf(p, "plain") || preview_leaf(p, "html") ?
		    p : NULL;
	if (str_casecmp(p->subtype, "alternative") == 0) {
		/* the plain version says it without markup */
		for (k = p->children; k != NULL; k = k->next)
			if (preview_leaf(k, "plain"))
				return k;
		for (k = p->children; k != NULL; k = k->next)
			if (preview_leaf(k, "html"))
				return k;
	}
	for (k = p->children; k != NULL; k = k->next)
		if ((r = preview_find(k)) != NULL)
			return r;
	return NULL;
}

/* preview_put_cp - append code point cp as UTF-8 (bad ones: U+FFFD) */
static void
preview_put_cp(struct buf *out, uint32_t cp)
{
	char b[4];

	if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		cp = 0xfffd;
	buf_append(out, b, charset_utf8_encode(cp, b));
}

/* preview_entity - decode the character reference at p[0..n) (p[0] is
 * '&') into out; the bytes it took, 0 if it is none */
static size_t
preview_entity(const char *p, size_t n, struct buf *out)
{
	static const struct {
		const char *name;
		uint32_t cp;
	} names[] = {
		{"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'},
		{"apos", '\''}, {"nbsp", 0xa0}, {"copy", 0xa9},
		{"reg", 0xae}, {"euro", 0x20ac}, {"ndash", 0x2013},
		{"mdash", 0x2014}, {"hellip", 0x2026}, {"lsquo", 0x2018},
		{"rsquo", 0x2019}, {"ldquo", 0x201c}, {"rdquo", 0x201d},
		{"laquo", 0xab}, {"raquo", 0xbb}, {"bull", 0x2022},
		{"middot", 0xb7}, {"trade", 0x2122}, {"zwnj", 0x200c},
		{"shy", 0xad},
	};
	size_t i = 1;
	uint32_t cp = 0;

	if (n > 2 && p[1] == '#') {
		bool hex = p[2] == 'x' || p[2] == 'X';
		size_t digits = 0;

		for (i = hex ? 3 : 2; i < n && digits < 8; i++, digits++) {
			int c = (unsigned char)p[i], v;

			if (c >= '0' && c <= '9')
				v = c - '0';
			else if (hex && c >= 'a' && c <= 'f')
				v = c - 'a' + 10;
			else if (hex && c >= 'A' && c <= 'F')
				v = c - 'A' + 10;
			else
				break;
			cp = cp * (hex ? 16 : 10) + (uint32_t)v;
		}
		if (digits == 0)
			return 0;
		if (i < n && p[i] == ';')
			i++;
		preview_put_cp(out, cp);
		return i;
	}
	while (i < n && i <= PREVIEW_ENTITY_MAX &&
	    ((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z')))
		i++;
	for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
		if (strlen(names[k].name) != i - 1 ||
		    strncmp(p + 1, names[k].name, i - 1) != 0)
			continue;
		preview_put_cp(out, names[k].cp);
		return i < n && p[i] == ';' ? i + 1 : i;
	}
	return 0;
}

/* preview_skip_to - the offset just past the first "</name" ... ">"
 * at or after i in p[0..n) (any case), or n */
static size_t
preview_skip_to(const char *p, size_t n, size_t i, const char *name)
{
	size_t len = strlen(name);

	for (; i + 2 + len <= n; i++) {
		const char *e;

		if (p[i] != '<' || p[i + 1] != '/' ||
		    str_ncasecmp(p + i + 2, name, len) != 0)
			continue;
		e = memchr(p + i, '>', n - i);
		return e ? (size_t)(e - p) + 1 : n;
	}
	return n;
}

/* preview_html - the text of HTML p[0..n) into out */
static void
preview_html(const char *p, size_t n, struct buf *out)
{
	static const char *const skipped[] = {"style", "script", "title",
	    NULL};
	static const char *const blocks[] = {"p", "br", "div", "tr", "td",
	    "th", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6",
	    "table", "blockquote", "hr", "pre", "section", "article",
	    "header", "footer", "body", "dd", "dt", NULL};
	size_t i = 0;

	while (i < n) {
		char name[16];
		size_t k, nl = 0;
		char q = 0;
		bool closing;

		if (p[i] == '&') {
			size_t used = preview_entity(p + i, n - i, out);

			if (used == 0)
				buf_putc(out, '&');
			i += used ? used : 1;
			continue;
		}
		if (p[i] != '<') {
			buf_putc(out, p[i++]);
			continue;
		}
		if (n - i >= 4 && memcmp(p + i, "<!--", 4) == 0) {
			const char *e = NULL;

			for (k = i + 4; k + 3 <= n; k++)
				if (memcmp(p + k, "-->", 3) == 0) {
					e = p + k;
					break;
				}
			i = e ? (size_t)(e - p) + 3 : n;
			continue;
		}
		/* a tag: its name, then up to its '>' outside quotes */
		k = i + 1;
		closing = k < n && p[k] == '/';
		if (closing)
			k++;
		while (k < n && nl < sizeof(name) - 1 &&
		    ((p[k] >= 'a' && p[k] <= 'z') || (p[k] >= 'A' &&
		    p[k] <= 'Z') || (p[k] >= '0' && p[k] <= '9')))
			name[nl++] = p[k++];
		name[nl] = '\0';
		if (nl == 0 && k < n && p[k] != '!' && p[k] != '?') {
			/* "a < b" is text */
			buf_putc(out, p[i++]);
			continue;
		}
		for (; k < n; k++) {
			if (q != 0) {
				if (p[k] == q)
					q = 0;
			} else if (p[k] == '"' || p[k] == '\'') {
				q = p[k];
			} else if (p[k] == '>') {
				break;
			}
		}
		i = k < n ? k + 1 : n;
		for (int s = 0; !closing && skipped[s] != NULL; s++)
			if (str_casecmp(name, skipped[s]) == 0)
				i = preview_skip_to(p, n, i, skipped[s]);
		for (int b = 0; blocks[b] != NULL; b++)
			if (str_casecmp(name, blocks[b]) == 0) {
				buf_putc(out, ' ');
				break;
			}
	}
}

/* preview_plain - p[0..n) without quoted lines and signature */
static void
preview_plain(const char *p, size_t n, struct buf *out)
{
	size_t i = 0;

	while (i < n) {
		const char *lf = memchr(p + i, '\n', n - i);
		size_t len = lf ? (size_t)(lf - (p + i)) : n - i;

		if (len > 0 && p[i + len - 1] == '\r')
			len--;
		if (len == 3 && memcmp(p + i, "-- ", 3) == 0)
			break;
		if (len == 0 || p[i] != '>') {
			buf_append(out, p + i, len);
			buf_putc(out, '\n');
		}
		i = lf ? (size_t)(lf - p) + 1 : n;
	}
}

/* preview_fold - fold whitespace of UTF-8 p[0..n), cut, into out */
static void
preview_fold(const char *p, size_t n, struct buf *out)
{
	size_t i = 0, chars = 0;
	bool space = false;

	while (i < n && chars < PREVIEW_CHARS) {
		unsigned char c = (unsigned char)p[i];
		size_t len = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 :
		    c >= 0xc0 ? 2 : 1;
		bool blank = false, drop = false;

		if (len > n - i)
			break;	/* a cut sequence: (cleaned input has none) */
		if (c < 0x20 || c == 0x7f || c == ' ')
			blank = true;
		else if (c >= 0x80 && c < 0xc0)
			drop = true;	/* a stray continuation byte */
		else if (len == 2 && c == 0xc2 && (unsigned char)p[i + 1] <
		    0xa1)
			blank = true;	/* C1 controls, U+00A0 */
		else if (len == 2 && c == 0xc2 && (unsigned char)p[i + 1] ==
		    0xad)
			drop = true;	/* soft hyphen */
		else if (len == 3 && c == 0xe2 && (unsigned char)p[i + 1] ==
		    0x80 && (((unsigned char)p[i + 2] >= 0x80 &&
		    (unsigned char)p[i + 2] <= 0x8a) ||
		    (unsigned char)p[i + 2] == 0xa8 ||
		    (unsigned char)p[i + 2] == 0xa9 ||
		    (unsigned char)p[i + 2] == 0xaf))
			blank = true;	/* U+2000-200A, 2028, 2029, 202F */
		else if (len == 3 && ((c == 0xe2 && (unsigned char)p[i + 1] ==
		    0x80 && (unsigned char)p[i + 2] >= 0x8b &&
		    (unsigned char)p[i + 2] <= 0x8f) || (c == 0xef &&
		    (unsigned char)p[i + 1] == 0xbb &&
		    (unsigned char)p[i + 2] == 0xbf)))
			drop = true;	/* zero-width ones, BOM */
		else if (len == 3 && c == 0xe3 && (unsigned char)p[i + 1] ==
		    0x80 && (unsigned char)p[i + 2] == 0x80)
			blank = true;	/* U+3000 */
		if (blank) {
			space = chars > 0;
		} else if (!drop) {
			if (space) {
				/* never a space as the last character */
				if (chars + 1 >= PREVIEW_CHARS)
					break;
				buf_putc(out, ' ');
				space = false;
				chars++;
			}
			buf_append(out, p + i, len);
			chars++;
		}
		i += len;
	}
}

/* preview_text - the preview of one decoded body */
void
preview_text(const char *p, size_t n, const char *charset, int html,
    struct buf *out)
{
	struct buf u = BUF_INIT, t = BUF_INIT;

	if (n > PREVIEW_PART_MAX)
		n = PREVIEW_PART_MAX;
	buf_set_limit(&u, PREVIEW_UTF8_MAX);
	buf_set_limit(&t, PREVIEW_UTF8_MAX);
	if (charset == NULL || charset_is_utf8(charset) ||
	    charset_to_utf8(charset, p, n, &u) < 0)
		(void)charset_utf8_clean(&u, p, n);
	else if (!charset_utf8_valid(u.data ? u.data : "", u.len)) {
		/* a converter let ill-formed bytes through (a charset name
		 * with junk after "utf-8", found by preview_fuzz): clean
		 * what it made, so the preview stays UTF-8 */
		buf_set_limit(&t, 0);
		(void)charset_utf8_clean(&t, u.data, u.len);
		buf_reset(&u);
		(void)charset_utf8_clean(&u, t.data ? t.data : "", t.len);
		buf_reset(&t);
		buf_set_limit(&t, PREVIEW_UTF8_MAX);
	}
	if (html)
		preview_html(u.data, u.len, &t);
	else
		preview_plain(u.data, u.len, &t);
	preview_fold(t.data, t.len, out);
	buf_free(&u);
	buf_free(&t);
}

/* preview_make - the preview of a parsed message */
void
preview_make(const struct mime_message *m, struct buf *out)
{
	const struct mime_part *p = preview_find(m->root);
	struct mime_decoder d;
	struct buf dec = BUF_INIT;
	size_t n;

	if (p == NULL || p->enc == MIME_ENC_UNKNOWN)
		return;
	n = p->body_len < PREVIEW_PART_MAX ? p->body_len : PREVIEW_PART_MAX;
	buf_set_limit(&dec, PREVIEW_PART_MAX);
	mime_decoder_init(&d, p->enc);
	mime_decoder_feed(&d, m->data + p->body_off, n, &dec);
	mime_decoder_end(&d, &dec);
	preview_text(dec.data, dec.len, mime_param_get(p->params, p->nparams,
	    "charset"), str_casecmp(p->subtype, "html") == 0, out);
	buf_free(&dec);
}
