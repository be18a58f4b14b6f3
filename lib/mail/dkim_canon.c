/*
 * dkim_canon - DKIM's relaxed canonicalisation (RFC 6376 3.4.2, 3.4.4)
 * of header fields and bodies, without crypto, so it can be fuzzed.
 */
#include <string.h>

#include "base/buf.h"
#include "mail/dkim.h"

/* dkim_wsp - space or tab */
static int
dkim_wsp(int c)
{
	return c == ' ' || c == '\t';
}

/* dkim_canon_header - relaxed form of one header field */
int
dkim_canon_header(const char *field, size_t len, struct buf *out)
{
	const char *colon = memchr(field, ':', len);
	size_t nlen, i;
	int space = 0, any = 0;

	if (colon == NULL)
		return -1;
	/* the name lowercased, whitespace before the colon dropped */
	nlen = (size_t)(colon - field);
	while (nlen > 0 && (dkim_wsp(field[nlen - 1]) || field[nlen - 1] ==
	    '\r' || field[nlen - 1] == '\n'))
		nlen--;
	for (i = 0; i < nlen; i++) {
		int c = (unsigned char)field[i];

		buf_putc(out, c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	buf_putc(out, ':');
	/* the value unfolded, runs of whitespace one space, none at
	 * either end */
	for (i = (size_t)(colon - field) + 1; i < len; i++) {
		int c = (unsigned char)field[i];

		if (c == '\r' || c == '\n')
			continue;
		if (dkim_wsp(c)) {
			space = 1;
			continue;
		}
		if (space && any)
			buf_putc(out, ' ');
		space = 0;
		any = 1;
		buf_putc(out, c);
	}
	buf_append(out, "\r\n", 2);
	return 0;
}

/* dkim_body_init - a canonicaliser writing to out(ctx, ...) */
void
dkim_body_init(struct dkim_body *b, dkim_out_fn *out, void *ctx)
{
	memset(b, 0, sizeof(*b));
	b->out = out;
	b->ctx = ctx;
}

/* dkim_body_emit - write to the output and count */
static void
dkim_body_emit(struct dkim_body *b, const void *p, size_t n)
{
	b->out(b->ctx, p, n);
	b->length += n;
}

/* dkim_body_eol - a line ends: kept if it has content, else held back
 * (empty lines at the end of the body are dropped) */
static void
dkim_body_eol(struct dkim_body *b)
{
	if (b->content)
		dkim_body_emit(b, "\r\n", 2);
	else
		b->blank++;
	b->content = false;
	b->wsp = false;
}

/* dkim_body_text - n >= 1 bytes of line content (a bare CR, or a run
 * without CR, LF or WSP) */
static void
dkim_body_text(struct dkim_body *b, const char *p, size_t n)
{
	if (!b->content) {
		/* empty lines before this one are not at the end */
		for (; b->blank > 0; b->blank--)
			dkim_body_emit(b, "\r\n", 2);
	}
	if (b->wsp)
		dkim_body_emit(b, " ", 1);
	b->wsp = false;
	b->content = true;
	dkim_body_emit(b, p, n);
}

/* dkim_body_plain - not CR, LF or WSP: copied as it is */
static bool
dkim_body_plain(char c)
{
	return c != '\r' && c != '\n' && !dkim_wsp((unsigned char)c);
}

/* dkim_body_update - feed the next len bytes of the body; runs of plain
 * bytes go out in one piece, not byte by byte (the output is a hash
 * update on the signing path) */
void
dkim_body_update(struct dkim_body *b, const void *data, size_t len)
{
	const char *p = data;

	for (size_t i = 0; i < len; i++) {
		char c = p[i];
		size_t j;

		if (b->cr) {
			b->cr = false;
			if (c == '\n') {
				dkim_body_eol(b);
				continue;
			}
			dkim_body_text(b, "\r", 1);	/* a bare CR */
		}
		if (c == '\r')
			b->cr = true;
		else if (c == '\n')
			dkim_body_eol(b);
		else if (dkim_wsp((unsigned char)c))
			b->wsp = true;
		else {
			for (j = i + 1; j < len && dkim_body_plain(p[j]); j++)
				;
			dkim_body_text(b, p + i, j - i);
			i = j - 1;
		}
	}
}

/* dkim_body_final - the end of the body: a last line without its line
 * end gets one; trailing empty lines are gone */
void
dkim_body_final(struct dkim_body *b)
{
	if (b->cr) {
		b->cr = false;
		dkim_body_text(b, "\r", 1);
	}
	if (b->content)
		dkim_body_eol(b);
}
