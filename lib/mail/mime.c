/*
 * mime - a MIME message parsed into a tree of parts without copying its
 * bodies (see mime.h for the contract).
 *
 * One pass over the bytes: a part's header is scanned line by line, then
 * its body, and every line that starts with "--" is checked against the
 * boundaries of the multiparts that are open (innermost first, as
 * Dovecot does), so a missing close delimiter of an inner multipart is
 * ended by an outer boundary and a boundary never needs a second scan.
 * The work per line is bounded by the depth limit, so the parse is
 * linear. The strings the tree keeps come from one arena freed at once.
 */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/charset.h"
#include "mail/mime.h"

#define MIME_ARENA_CHUNK 16384

/* an arena chunk: strings and parts of one message */
struct mime_arena {
	struct mime_arena *next;
	size_t used;
	size_t size;
	char data[];
};

/* a boundary line found while scanning */
struct mime_hit {
	size_t line;	/* where the line starts (len at the end of data) */
	size_t next;	/* where the next line starts */
	int level;	/* index in the boundary stack, -1: end of data */
	bool close;	/* "--boundary--" */
};

/* the parser's state */
struct mime_ctx {
	struct mime_message *m;
	const char *p;
	size_t len;
	struct {
		const char *s;
		size_t n;
	} bnd[MIME_MAX_DEPTH + 1];
	int nbnd;
	struct buf tmp;		/* one unfolded header value */
};

/* a parameter as written, before RFC 2231 merging */
struct mime_rawparam {
	const char *name;
	size_t name_len;
	const char *value;	/* unquoted (in ctx-owned scratch) */
	size_t value_len;
};

/* mime_alloc - n bytes from m's arena (zeroed, aligned) */
static void *
mime_alloc(struct mime_message *m, size_t n)
{
	struct mime_arena *a = m->arena;
	void *r;

	n = (n + 15) & ~(size_t)15;
	if (a == NULL || a->size - a->used < n) {
		size_t size = n > MIME_ARENA_CHUNK ? n : MIME_ARENA_CHUNK;

		a = xmalloc(sizeof(*a) + size);
		a->next = m->arena;
		a->used = 0;
		a->size = size;
		m->arena = a;
	}
	r = a->data + a->used;
	a->used += n;
	memset(r, 0, n);
	return r;
}

/* mime_strndup - a NUL-terminated arena copy of p[0..n) */
static char *
mime_strndup(struct mime_message *m, const char *p, size_t n)
{
	char *s = mime_alloc(m, n + 1);

	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

/* mime_free - release the tree */
void
mime_free(struct mime_message **mp)
{
	struct mime_message *m = *mp;

	if (m == NULL)
		return;
	while (m->arena != NULL) {
		struct mime_arena *a = m->arena;

		m->arena = a->next;
		free(a);
	}
	x_free(mp);
}

/* mime_enc_parse - the encoding named by s[0..n) */
enum mime_enc
mime_enc_parse(const char *s, size_t n)
{
	static const struct {
		const char *name;
		enum mime_enc enc;
	} encs[] = {
		{"7bit", MIME_ENC_7BIT}, {"8bit", MIME_ENC_8BIT},
		{"binary", MIME_ENC_BINARY}, {"base64", MIME_ENC_BASE64},
		{"quoted-printable", MIME_ENC_QP},
	};

	for (size_t i = 0; i < sizeof(encs) / sizeof(encs[0]); i++)
		if (strlen(encs[i].name) == n &&
		    str_ncasecmp(s, encs[i].name, n) == 0)
			return encs[i].enc;
	return MIME_ENC_UNKNOWN;
}

/* mime_line_end - offset just past the LF ending the line at off (len
 * if the data ends first) */
static size_t
mime_line_end(const struct mime_ctx *c, size_t off)
{
	const char *nl = memchr(c->p + off, '\n', c->len - off);

	return nl == NULL ? c->len : (size_t)(nl - c->p) + 1;
}

/* mime_boundary_line - is the line p[off..end) a boundary of the open
 * multiparts? Innermost first; level and close set when it is */
static bool
mime_boundary_line(const struct mime_ctx *c, size_t off, size_t end,
    int *level, bool *close)
{
	const char *l = c->p + off;
	size_t n = end - off;

	if (n < 3 || l[0] != '-' || l[1] != '-')
		return false;
	for (int i = c->nbnd - 1; i >= 0; i--) {
		size_t bn = c->bnd[i].n, k;

		if (n < 2 + bn || memcmp(l + 2, c->bnd[i].s, bn) != 0)
			continue;
		k = 2 + bn;
		if (n - k >= 2 && l[k] == '-' && l[k + 1] == '-') {
			*level = i;
			*close = true;
			return true;
		}
		while (k < n && (l[k] == ' ' || l[k] == '\t' || l[k] == '\r'))
			k++;
		if (k == n || l[k] == '\n') {
			*level = i;
			*close = false;
			return true;
		}
	}
	return false;
}

/* mime_scan - the first boundary line at or after the line start pos;
 * open (non-close) boundaries of level skip do not count */
static void
mime_scan(const struct mime_ctx *c, size_t pos, int skip,
    struct mime_hit *h)
{
	while (c->nbnd > 0 && pos < c->len) {
		size_t end = mime_line_end(c, pos);
		int level;
		bool close;

		if (c->p[pos] == '-' &&
		    mime_boundary_line(c, pos, end, &level, &close) &&
		    !(level == skip && !close)) {
			h->line = pos;
			h->next = end;
			h->level = level;
			h->close = close;
			return;
		}
		pos = end;
	}
	h->line = h->next = c->len;
	h->level = -1;
	h->close = false;
}

/* mime_count - LF count and size with bare LFs as CRLF of p[off..end) */
static void
mime_count(const struct mime_ctx *c, size_t off, size_t end,
    size_t *lines, size_t *vsize)
{
	size_t nl = 0, bare = 0;
	const char *s = c->p + off, *e = c->p + end;

	while (s < e && (s = memchr(s, '\n', (size_t)(e - s))) != NULL) {
		if (s == c->p || s[-1] != '\r')
			bare++;
		nl++;
		s++;
	}
	*lines = nl;
	*vsize = end - off + bare;
}

/* mime_body_end - where the body that h ended stops: before the line
 * break that belongs to the boundary line */
static size_t
mime_body_end(const struct mime_ctx *c, size_t body_off,
    const struct mime_hit *h)
{
	size_t end = h->line;

	if (h->level < 0)
		return end;
	if (end > body_off && c->p[end - 1] == '\n')
		end--;
	if (end > body_off && c->p[end - 1] == '\r')
		end--;
	return end;
}

/* mime_cfws - skip blanks and (nested) comments in s[*i..n) */
static void
mime_cfws(const char *s, size_t n, size_t *i)
{
	while (*i < n) {
		if (s[*i] == ' ' || s[*i] == '\t' || s[*i] == '\r' ||
		    s[*i] == '\n') {
			(*i)++;
		} else if (s[*i] == '(') {
			int depth = 0;

			for (; *i < n; (*i)++) {
				if (s[*i] == '\\' && *i + 1 < n)
					(*i)++;
				else if (s[*i] == '(')
					depth++;
				else if (s[*i] == ')' && --depth == 0)
					break;
			}
			if (*i < n)
				(*i)++;
		} else {
			break;
		}
	}
}

/* mime_token - length of the RFC 2045 token at s[i..n) (8-bit bytes are
 * let in, as mailers send them) */
static size_t
mime_token(const char *s, size_t n, size_t i)
{
	size_t k = i;

	while (k < n) {
		unsigned char ch = (unsigned char)s[k];

		if (ch <= ' ' || ch == 0x7f || strchr("()<>@,;:\\\"/[]?=",
		    ch) != NULL)
			break;
		k++;
	}
	return k - i;
}

/* mime_quoted - unquote the quoted string at s[*i] (a '"') into out;
 * an unclosed one runs to the end */
static void
mime_quoted(const char *s, size_t n, size_t *i, struct buf *out)
{
	for ((*i)++; *i < n && s[*i] != '"'; (*i)++) {
		if (s[*i] == '\\' && *i + 1 < n)
			(*i)++;
		buf_putc(out, s[*i]);
	}
	if (*i < n)
		(*i)++;
}

/* mime_hex - the value of hex digit ch, or -1 */
static int
mime_hex(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* mime_pct - RFC 2231 %-decode s[0..n) onto out */
static void
mime_pct(struct buf *out, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int h1, h2;

		if (s[i] == '%' && i + 2 < n &&
		    (h1 = mime_hex(s[i + 1])) >= 0 &&
		    (h2 = mime_hex(s[i + 2])) >= 0) {
			buf_putc(out, h1 << 4 | h2);
			i += 2;
		} else {
			buf_putc(out, s[i]);
		}
	}
}

/* mime_pct_encode - append s[0..n) in RFC 2231 %-encoding */
static void
mime_pct_encode(struct buf *out, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch <= ' ' || ch >= 0x7f || strchr("*'%()<>@,;:\\\"/[]?=",
		    ch) != NULL)
			buf_printf(out, "%%%02X", ch);
		else
			buf_putc(out, ch);
	}
}

/* mime_param_section - split a parameter name "name*N*": base length,
 * section number (-1 none) and whether it is extended; -1 if the stars
 * are not in that form (then the name is taken as it is) */
static int
mime_param_section(const char *s, size_t n, size_t *base, long *section,
    bool *extended)
{
	const char *star = memchr(s, '*', n);
	size_t k;

	*base = n;
	*section = -1;
	*extended = false;
	if (star == NULL)
		return 0;
	*base = (size_t)(star - s);
	k = *base + 1;
	if (k < n && s[k] >= '0' && s[k] <= '9') {
		long v = 0;

		if (s[k] == '0' && k + 1 < n && s[k + 1] != '*')
			return -1;	/* "*01": not a section number */
		for (; k < n && s[k] >= '0' && s[k] <= '9'; k++) {
			if (v > 9999)
				return -1;
			v = v * 10 + (s[k] - '0');
		}
		*section = v;
		if (k < n && s[k] == '*') {
			*extended = true;
			k++;
		}
	} else {
		*extended = true;
	}
	return k == n && *base > 0 ? 0 : -1;
}

/* mime_params_merge - turn raw parameters into m's merged list (RFC 2231
 * continuations joined, extended values decoded) */
static void
mime_params_merge(struct mime_ctx *c, const struct mime_rawparam *raw,
    unsigned nraw, struct mime_param **out, unsigned *nout)
{
	struct mime_param *ps = mime_alloc(c->m, sizeof(*ps) * (nraw + 1));
	bool done[MIME_MAX_PARAMS] = {false};
	unsigned n = 0;
	struct buf val = BUF_INIT, enc = BUF_INIT, conv = BUF_INIT;

	buf_set_limit(&val, MIME_MAX_VALUE);
	buf_set_limit(&enc, MIME_MAX_VALUE * 3);
	buf_set_limit(&conv, MIME_MAX_VALUE);
	for (unsigned i = 0; i < nraw; i++) {
		size_t base;
		long sec;
		bool ext, first_ext = false;
		const char *charset = NULL, *lang = NULL;
		struct mime_param *p = &ps[n];

		if (done[i])
			continue;
		done[i] = true;
		if (mime_param_section(raw[i].name, raw[i].name_len, &base,
		    &sec, &ext) == 0 && sec > 0) {
			done[i] = false;	/* a continuation: see below */
			continue;
		}
		if (mime_param_section(raw[i].name, raw[i].name_len, &base,
		    &sec, &ext) < 0) {
			/* no RFC 2231 form: the name as it is */
			p->name = mime_strndup(c->m, raw[i].name,
			    raw[i].name_len);
			p->value = p->raw = mime_strndup(c->m, raw[i].value,
			    raw[i].value_len);
			n++;
			continue;
		}
		if (sec < 0 && !ext) {
			p->name = mime_strndup(c->m, raw[i].name, base);
			p->value = p->raw = mime_strndup(c->m, raw[i].value,
			    raw[i].value_len);
			n++;
			continue;
		}
		/* section 0 or an unnumbered extended value: collect the
		 * continuations 1, 2, ... of the same base name in order */
		buf_reset(&val);
		buf_reset(&enc);
		for (long want = 0, cur = i;;) {
			const char *v = raw[cur].value;
			size_t vn = raw[cur].value_len;
			size_t b2;
			long s2;
			bool e2;

			(void)mime_param_section(raw[cur].name,
			    raw[cur].name_len, &b2, &s2, &e2);
			if (e2 && want == 0) {
				/* charset'language'value */
				const char *q1 = memchr(v, '\'', vn), *q2;

				if (q1 != NULL && (q2 = memchr(q1 + 1, '\'',
				    vn - (size_t)(q1 + 1 - v))) != NULL) {
					charset = mime_strndup(c->m, v,
					    (size_t)(q1 - v));
					lang = mime_strndup(c->m, q1 + 1,
					    (size_t)(q2 - q1 - 1));
					buf_append(&enc, v,
					    (size_t)(q2 + 1 - v));
					vn -= (size_t)(q2 + 1 - v);
					v = q2 + 1;
					first_ext = true;
				}
			}
			if (e2) {
				mime_pct(&val, v, vn);
				buf_append(&enc, v, vn);
			} else {
				buf_append(&val, v, vn);
				mime_pct_encode(&enc, v, vn);
			}
			if (sec < 0)
				break;
			/* the next section, wherever it stands */
			want++;
			cur = -1;
			for (unsigned j = 0; j < nraw; j++) {
				if (done[j] || mime_param_section(raw[j].name,
				    raw[j].name_len, &b2, &s2, &e2) < 0 ||
				    b2 != base || s2 != want ||
				    str_ncasecmp(raw[j].name, raw[i].name,
				    base) != 0)
					continue;
				cur = j;
				done[j] = true;
				break;
			}
			if (cur < 0)
				break;
		}
		p->name = mime_strndup(c->m, raw[i].name, base);
		p->extended = first_ext;
		p->charset = charset;
		p->language = lang;
		if (first_ext) {
			p->raw = mime_strndup(c->m, enc.data, enc.len);
			buf_reset(&conv);
			if (charset_to_utf8(charset, val.data, val.len,
			    &conv) >= 0)
				p->value = mime_strndup(c->m, conv.data,
				    conv.len);
			else
				p->value = mime_strndup(c->m, val.data,
				    val.len);
		} else {
			/* continuations only: a plain value */
			p->raw = p->value = mime_strndup(c->m, val.data,
			    val.len);
		}
		n++;
	}
	/* continuations without their section 0: as they are */
	for (unsigned i = 0; i < nraw; i++) {
		if (done[i])
			continue;
		ps[n].name = mime_strndup(c->m, raw[i].name, raw[i].name_len);
		ps[n].value = ps[n].raw = mime_strndup(c->m, raw[i].value,
		    raw[i].value_len);
		n++;
	}
	buf_free(&val);
	buf_free(&enc);
	buf_free(&conv);
	*out = ps;
	*nout = n;
}

/* mime_params_parse - the ";name=value" list at s[*i..n) */
static void
mime_params_parse(struct mime_ctx *c, const char *s, size_t n, size_t i,
    struct mime_param **out, unsigned *nout)
{
	struct mime_rawparam raw[MIME_MAX_PARAMS];
	unsigned nraw = 0;
	struct buf scratch = BUF_INIT;
	size_t offs[MIME_MAX_PARAMS];

	/* values are unquoted into scratch; its data may move, so offsets
	 * are kept and turned into pointers at the end */
	while (i < n && nraw < MIME_MAX_PARAMS) {
		size_t tn, start;

		mime_cfws(s, n, &i);
		if (i < n && s[i] != ';') {
			/* junk: skip to the next ';' */
			const char *semi = memchr(s + i, ';', n - i);

			if (semi == NULL)
				break;
			i = (size_t)(semi - s);
		}
		if (i >= n)
			break;
		i++;
		mime_cfws(s, n, &i);
		if ((tn = mime_token(s, n, i)) == 0)
			continue;
		raw[nraw].name = s + i;
		raw[nraw].name_len = tn;
		i += tn;
		mime_cfws(s, n, &i);
		if (i >= n || s[i] != '=')
			continue;
		i++;
		mime_cfws(s, n, &i);
		start = scratch.len;
		if (i < n && s[i] == '"') {
			mime_quoted(s, n, &i, &scratch);
		} else {
			/* a token, leniently: up to a ';' or blank */
			while (i < n && s[i] != ';' && s[i] != ' ' &&
			    s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
				buf_putc(&scratch, s[i++]);
		}
		offs[nraw] = start;
		raw[nraw].value_len = scratch.len - start;
		nraw++;
	}
	for (unsigned k = 0; k < nraw; k++)
		raw[k].value = scratch.data + offs[k];
	mime_params_merge(c, raw, nraw, out, nout);
	buf_free(&scratch);
}

/* mime_content_type - parse a Content-Type value into p; false if it is
 * not "type/subtype" */
static bool
mime_content_type(struct mime_ctx *c, struct mime_part *p, const char *s,
    size_t n)
{
	size_t i = 0, tn, sn, ti, si;

	mime_cfws(s, n, &i);
	ti = i;
	if ((tn = mime_token(s, n, i)) == 0)
		return false;
	i += tn;
	mime_cfws(s, n, &i);
	if (i >= n || s[i] != '/')
		return false;
	i++;
	mime_cfws(s, n, &i);
	si = i;
	if ((sn = mime_token(s, n, i)) == 0)
		return false;
	i += sn;
	p->type = mime_strndup(c->m, s + ti, tn);
	p->subtype = mime_strndup(c->m, s + si, sn);
	mime_params_parse(c, s, n, i, &p->params, &p->nparams);
	return true;
}

/* mime_disposition - parse a Content-Disposition value into p */
static void
mime_disposition(struct mime_ctx *c, struct mime_part *p, const char *s,
    size_t n)
{
	size_t i = 0, tn;

	mime_cfws(s, n, &i);
	if ((tn = mime_token(s, n, i)) == 0)
		return;
	p->disposition = mime_strndup(c->m, s + i, tn);
	mime_params_parse(c, s, n, i + tn, &p->disp_params,
	    &p->ndisp_params);
}

/* mime_languages - parse a Content-Language list into p */
static void
mime_languages(struct mime_ctx *c, struct mime_part *p, const char *s,
    size_t n)
{
	const char *tags[MIME_MAX_PARAMS];
	size_t lens[MIME_MAX_PARAMS];
	unsigned nt = 0;

	for (size_t i = 0; i < n && nt < MIME_MAX_PARAMS;) {
		size_t tn;

		mime_cfws(s, n, &i);
		if (i < n && s[i] == ',') {
			i++;
			continue;
		}
		if ((tn = mime_token(s, n, i)) == 0) {
			if (i < n)
				i++;
			continue;
		}
		tags[nt] = s + i;
		lens[nt++] = tn;
		i += tn;
	}
	if (nt == 0)
		return;
	p->languages = mime_alloc(c->m, sizeof(*p->languages) * nt);
	for (unsigned k = 0; k < nt; k++)
		p->languages[k] = mime_strndup(c->m, tags[k], lens[k]);
	p->nlanguages = nt;
}

/* mime_string_field - an unfolded, trimmed field value in the arena, or
 * NULL when it is empty */
static const char *
mime_string_field(struct mime_ctx *c, const char *s, size_t n)
{
	return n == 0 ? NULL : mime_strndup(c->m, s, n);
}

/* mime_header_next - the field at *pos of hdr[0..len) */
int
mime_header_next(const char *hdr, size_t len, size_t *pos,
    struct mime_field *f)
{
	while (*pos < len) {
		size_t start = *pos, end, colon, vend;
		const char *nl;

		/* the field runs to the first line end not followed by
		 * a blank (a continuation) */
		end = start;
		for (;;) {
			nl = memchr(hdr + end, '\n', len - end);
			if (nl == NULL) {
				end = len;
				break;
			}
			end = (size_t)(nl - hdr) + 1;
			if (end >= len || (hdr[end] != ' ' && hdr[end] != '\t'))
				break;
		}
		*pos = end;
		if (hdr[start] == '\n' || (hdr[start] == '\r' &&
		    start + 1 < len && hdr[start + 1] == '\n'))
			return 0;	/* the empty line: header ends */
		nl = memchr(hdr + start, ':', end - start);
		if (nl == NULL || hdr[start] == ' ' || hdr[start] == '\t')
			continue;	/* no field: skip the line */
		colon = (size_t)(nl - hdr);
		f->name = hdr + start;
		f->name_len = colon - start;
		while (f->name_len > 0 && (f->name[f->name_len - 1] == ' ' ||
		    f->name[f->name_len - 1] == '\t'))
			f->name_len--;
		vend = end;
		if (vend > colon + 1 && hdr[vend - 1] == '\n')
			vend--;
		if (vend > colon + 1 && hdr[vend - 1] == '\r')
			vend--;
		f->value = hdr + colon + 1;
		f->value_len = vend - colon - 1;
		return 1;
	}
	return 0;
}

/* mime_header_unfold - append value without CR/LF, trimmed */
void
mime_header_unfold(struct buf *out, const char *value, size_t len)
{
	size_t i = 0, start = out->len;

	while (i < len && (value[i] == ' ' || value[i] == '\t'))
		i++;
	for (; i < len; i++)
		if (value[i] != '\r' && value[i] != '\n')
			buf_putc(out, value[i]);
	while (out->len > start && (out->data[out->len - 1] == ' ' ||
	    out->data[out->len - 1] == '\t'))
		buf_truncate(out, out->len - 1);
}

/* mime_header_get - the first field called name in p's header */
int
mime_header_get(const struct mime_message *m, const struct mime_part *p,
    const char *name, struct buf *out)
{
	const char *hdr = m->data + p->hdr_off;
	size_t pos = 0, nlen = strlen(name);
	struct mime_field f;

	buf_reset(out);
	while (mime_header_next(hdr, p->hdr_len, &pos, &f) > 0) {
		if (f.name_len == nlen &&
		    str_ncasecmp(f.name, name, nlen) == 0) {
			mime_header_unfold(out, f.value, f.value_len);
			return 0;
		}
	}
	return -1;
}

/* mime_param_get - the parameter called name, extended preferred */
const char *
mime_param_get(const struct mime_param *params, unsigned n,
    const char *name)
{
	const char *r = NULL;

	for (unsigned i = 0; i < n; i++) {
		if (str_casecmp(params[i].name, name) != 0)
			continue;
		if (params[i].extended)
			return params[i].value;
		if (r == NULL)
			r = params[i].value;
	}
	return r;
}

/* mime_default_type - text/plain; charset=us-ascii (RFC 2045 5.2), or
 * message/rfc822 in a multipart/digest (RFC 2046 5.1.5) */
static void
mime_default_type(struct mime_ctx *c, struct mime_part *p)
{
	const struct mime_part *up = p->parent;

	p->default_type = true;
	p->nparams = 0;
	p->params = NULL;
	if (up != NULL && up->is_multipart &&
	    str_casecmp(up->subtype, "digest") == 0) {
		p->type = "message";
		p->subtype = "rfc822";
		return;
	}
	p->type = "text";
	p->subtype = "plain";
	p->params = mime_alloc(c->m, sizeof(*p->params));
	p->params[0].name = "charset";
	p->params[0].value = p->params[0].raw = "us-ascii";
	p->nparams = 1;
}

/* mime_header_fields - read p's Content-* fields (first of each wins) */
static void
mime_header_fields(struct mime_ctx *c, struct mime_part *p)
{
	size_t hlen = p->hdr_len < MIME_MAX_HEADER ? p->hdr_len :
	    MIME_MAX_HEADER;
	const char *hdr = c->p + p->hdr_off;
	size_t pos = 0;
	struct mime_field f;
	bool have_type = false, have_enc = false;

	while (mime_header_next(hdr, hlen, &pos, &f) > 0) {
		const char *v;
		size_t vn;

		if (f.name_len < 8 || str_ncasecmp(f.name, "content-", 8) != 0)
			continue;
		buf_reset(&c->tmp);
		mime_header_unfold(&c->tmp, f.value, f.value_len);
		v = c->tmp.data;
		vn = c->tmp.len;
#define IS(s) (f.name_len == sizeof(s) - 1 && \
    str_ncasecmp(f.name, s, sizeof(s) - 1) == 0)
		if (IS("content-type") && !have_type) {
			have_type = true;
			if (!mime_content_type(c, p, v, vn))
				p->type = NULL;
		} else if (IS("content-transfer-encoding") && !have_enc) {
			size_t i = 0, tn;

			have_enc = true;
			mime_cfws(v, vn, &i);
			if ((tn = mime_token(v, vn, i)) > 0) {
				p->encoding = mime_strndup(c->m, v + i, tn);
				p->enc = mime_enc_parse(v + i, tn);
			}
		} else if (IS("content-id") && p->id == NULL) {
			p->id = mime_string_field(c, v, vn);
		} else if (IS("content-description") &&
		    p->description == NULL) {
			p->description = mime_string_field(c, v, vn);
		} else if (IS("content-md5") && p->md5 == NULL) {
			p->md5 = mime_string_field(c, v, vn);
		} else if (IS("content-disposition") &&
		    p->disposition == NULL) {
			mime_disposition(c, p, v, vn);
		} else if (IS("content-language") && p->languages == NULL) {
			mime_languages(c, p, v, vn);
		} else if (IS("content-location") && p->location == NULL) {
			p->location = mime_string_field(c, v, vn);
		}
#undef IS
	}
	if (p->type == NULL)
		mime_default_type(c, p);
	p->is_text = str_casecmp(p->type, "text") == 0;
}

/* mime_new_part - a zeroed part under parent (NULL: the root) */
static struct mime_part *
mime_new_part(struct mime_ctx *c, struct mime_part *parent)
{
	struct mime_part *p = mime_alloc(c->m, sizeof(*p));

	p->parent = parent;
	p->depth = parent != NULL ? parent->depth + 1 : 0;
	c->m->nparts++;
	if (parent != NULL) {
		if (parent->last_child == NULL)
			parent->children = p;
		else
			parent->last_child->next = p;
		parent->last_child = p;
		parent->nchildren++;
	}
	return p;
}

/* mime_opaque - make p a leaf the client sees as application/octet-stream
 * (limit: because a depth or part limit was reached) */
static void
mime_opaque(struct mime_ctx *c, struct mime_part *p, bool limit)
{
	p->type = "application";
	p->subtype = "octet-stream";
	p->params = NULL;
	p->nparams = 0;
	p->is_text = false;
	p->opaque = limit;
	if (limit)
		c->m->limited = true;
}

/* mime_finish - set p's body end at h and count its sizes */
static void
mime_finish(struct mime_ctx *c, struct mime_part *p, const struct mime_hit *h)
{
	size_t end = mime_body_end(c, p->body_off, h);

	if (end < p->body_off)
		end = p->body_off;
	/* a child that is empty and starts right at the boundary line ends
	 * after the line break its parent leaves to the boundary: the
	 * parent stretches to hold it */
	if (p->last_child != NULL && end < p->last_child->body_off +
	    p->last_child->body_len)
		end = p->last_child->body_off + p->last_child->body_len;
	p->body_len = end - p->body_off;
	mime_count(c, p->body_off, end, &p->body_lines, &p->body_vsize);
}

static void mime_parse_part(struct mime_ctx *, struct mime_part *, size_t,
    struct mime_hit *);

/* mime_multipart - the body of multipart p: preamble, parts, epilogue */
static void
mime_multipart(struct mime_ctx *c, struct mime_part *p, const char *bnd,
    struct mime_hit *h)
{
	int level = c->nbnd;

	c->bnd[level].s = bnd;
	c->bnd[level].n = strlen(bnd);
	c->nbnd++;
	mime_scan(c, p->body_off, -1, h);
	while (h->level == level && !h->close) {
		struct mime_part *child;

		if (c->m->nparts >= MIME_MAX_PARTS - 1) {
			/* the rest up to the close delimiter: one part */
			child = mime_new_part(c, p);
			child->hdr_off = child->body_off = h->next;
			mime_opaque(c, child, true);
			mime_scan(c, h->next, level, h);
			mime_finish(c, child, h);
			break;
		}
		child = mime_new_part(c, p);
		mime_parse_part(c, child, h->next, h);
	}
	c->nbnd--;
	if (h->level == level)	/* the close delimiter: the epilogue */
		mime_scan(c, h->next, -1, h);
}

/* mime_parse_part - parse the part whose header starts at pos; h gets
 * the boundary line (or the end of data) that ended it */
static void
mime_parse_part(struct mime_ctx *c, struct mime_part *p, size_t pos,
    struct mime_hit *h)
{
	size_t line = pos;
	bool at_boundary = false;
	const char *bnd = NULL;
	bool composite_ok, enc_ok;

	/* the header: up to the empty line, a boundary line or the end */
	p->hdr_off = pos;
	while (line < c->len) {
		size_t end = mime_line_end(c, line);
		int level;
		bool close;

		if (c->p[line] == '\n' || (c->p[line] == '\r' &&
		    end == line + 2)) {
			p->has_header_end = true;
			line = end;
			break;
		}
		if (c->p[line] == '-' && c->nbnd > 0 &&
		    mime_boundary_line(c, line, end, &level, &close)) {
			h->line = line;
			h->next = end;
			h->level = level;
			h->close = close;
			at_boundary = true;
			break;
		}
		line = end;
	}
	/* a boundary ends the header as it ends a body: the line break
	 * before it belongs to the boundary */
	if (at_boundary)
		line = mime_body_end(c, pos, h);
	p->hdr_len = line - pos;
	mime_count(c, pos, line, &p->hdr_lines, &p->hdr_vsize);
	p->body_off = line;
	mime_header_fields(c, p);

	/* RFC 2045 6.4: a composite type is never encoded; one that is
	 * cannot be looked into */
	enc_ok = p->enc == MIME_ENC_7BIT || p->enc == MIME_ENC_8BIT ||
	    p->enc == MIME_ENC_BINARY;
	composite_ok = p->depth < MIME_MAX_DEPTH - 1 &&
	    c->m->nparts < MIME_MAX_PARTS - 1;
	if (str_casecmp(p->type, "multipart") == 0) {
		bnd = mime_param_get(p->params, p->nparams, "boundary");
		if (bnd != NULL && (bnd[0] == '\0' ||
		    strlen(bnd) > MIME_MAX_BOUNDARY))
			bnd = NULL;
		if (bnd == NULL) {
			/* no usable boundary: RFC 2045's default */
			p->type = NULL;
			mime_default_type(c, p);
			p->is_text = true;
		} else if (!composite_ok || !enc_ok) {
			mime_opaque(c, p, enc_ok);
		} else {
			p->is_multipart = true;
		}
	} else if (str_casecmp(p->type, "message") == 0 &&
	    (str_casecmp(p->subtype, "rfc822") == 0 ||
	    str_casecmp(p->subtype, "global") == 0)) {
		if (!composite_ok || !enc_ok)
			mime_opaque(c, p, enc_ok);
		else
			p->is_message = true;
	}

	if (at_boundary) {
		/* no body at all; a composite part still gets its child
		 * so that IMAP's grammar holds */
		if (p->is_message) {
			struct mime_part *msg = mime_new_part(c, p);

			msg->hdr_off = msg->body_off = line;
			mime_header_fields(c, msg);
		}
		mime_finish(c, p, h);
		return;
	}
	if (p->is_multipart) {
		mime_multipart(c, p, bnd, h);
	} else if (p->is_message) {
		struct mime_part *msg = mime_new_part(c, p);

		mime_parse_part(c, msg, p->body_off, h);
	} else {
		mime_scan(c, p->body_off, -1, h);
	}
	mime_finish(c, p, h);
}

/* mime_parse - parse data[0..len) into a new tree */
struct mime_message *
mime_parse(const char *data, size_t len)
{
	struct mime_message *m = xcalloc(1, sizeof(*m));
	struct mime_ctx c;
	struct mime_hit h;

	memset(&c, 0, sizeof(c));
	c.m = m;
	c.p = data;
	c.len = len;
	buf_init(&c.tmp);
	buf_set_limit(&c.tmp, MIME_MAX_HEADER);
	m->data = data;
	m->len = len;
	m->root = mime_new_part(&c, NULL);
	mime_parse_part(&c, m->root, 0, &h);
	buf_free(&c.tmp);
	return m;
}

/* mime_child - the n-th (1-based) child of p, or NULL */
static const struct mime_part *
mime_child(const struct mime_part *p, unsigned long n)
{
	const struct mime_part *k = p->children;

	for (unsigned long i = 1; k != NULL && i < n; i++)
		k = k->next;
	return n == 0 ? NULL : k;
}

/* mime_keyword - does s start with keyword kw (any case), followed by
 * the end, '.', ' ' or '(' as end_ok allows? */
static bool
mime_keyword(const char *s, const char *kw, const char *end_ok)
{
	size_t n = strlen(kw);

	return str_ncasecmp(s, kw, n) == 0 && strchr(end_ok, s[n]) != NULL;
}

/* mime_section_find - resolve an IMAP section specifier */
int
mime_section_find(const struct mime_message *m, const char *spec,
    struct mime_section *r)
{
	const struct mime_part *p = m->root;
	const char *s = spec;
	bool numbered = false, in_message = true;

	memset(r, 0, sizeof(*r));
	r->rest = "";
	while (*s >= '0' && *s <= '9') {
		unsigned long n = 0;

		if (*s == '0')
			return -1;
		for (; *s >= '0' && *s <= '9'; s++) {
			if (n > MIME_MAX_PARTS)
				return -1;
			n = n * 10 + (unsigned long)(*s - '0');
		}
		if (*s != '\0' && *s != '.')
			return -1;
		numbered = true;
		in_message = false;
		if (p->is_multipart) {
			if ((p = mime_child(p, n)) == NULL)
				return -1;
		} else if (n != 1) {
			return -1;
		}
		if (*s == '.') {
			s++;
			/* going on into an enclosed message (not for MIME,
			 * which is the message/rfc822 part's own header) */
			if (p->is_message && !mime_keyword(s, "MIME", "")) {
				p = p->children;
				in_message = true;
			}
			if (*s == '\0')
				return -1;
		}
	}
	r->part = p;
	if (*s == '\0') {
		r->kind = MIME_SECTION_BODY;
		if (!numbered) {
			r->off = 0;
			r->len = m->len;
		} else {
			r->off = p->body_off;
			r->len = p->body_len;
		}
		return 0;
	}
	if (mime_keyword(s, "MIME", "")) {
		if (!numbered)
			return -1;
		r->kind = MIME_SECTION_MIME;
		r->off = p->hdr_off;
		r->len = p->hdr_len;
		return 0;
	}
	if (!in_message)
		return -1;
	if (mime_keyword(s, "HEADER.FIELDS.NOT", " (")) {
		r->kind = MIME_SECTION_HEADER_FIELDS_NOT;
		r->rest = s + strlen("HEADER.FIELDS.NOT");
	} else if (mime_keyword(s, "HEADER.FIELDS", " (")) {
		r->kind = MIME_SECTION_HEADER_FIELDS;
		r->rest = s + strlen("HEADER.FIELDS");
	} else if (mime_keyword(s, "HEADER", "")) {
		r->kind = MIME_SECTION_HEADER;
	} else if (mime_keyword(s, "TEXT", "")) {
		r->kind = MIME_SECTION_TEXT;
		r->off = p->body_off;
		r->len = p->body_len;
		return 0;
	} else {
		return -1;
	}
	r->off = p->hdr_off;
	r->len = p->hdr_len;
	return 0;
}

/* mime_section_name - append the IMAP section number of p */
void
mime_section_name(struct buf *out, const struct mime_part *p)
{
	const struct mime_part *up = p->parent;
	unsigned long i = 1;

	if (up == NULL) {
		/* a message that is not multipart: its body is part 1 */
		if (!p->is_multipart)
			buf_putc(out, '1');
		return;
	}
	if (up->is_message) {
		/* an enclosed message: numbered as its message/rfc822
		 * part; a leaf's body is that part's ".1" */
		mime_section_name(out, up);
		if (!p->is_multipart)
			buf_puts(out, ".1");
		return;
	}
	/* a part of a multipart: the multipart's prefix, then its index */
	if (up->parent != NULL && !up->parent->is_message) {
		mime_section_name(out, up);
		buf_putc(out, '.');
	} else if (up->parent != NULL) {
		mime_section_name(out, up->parent);
		buf_putc(out, '.');
	}
	for (const struct mime_part *k = up->children; k != p; k = k->next)
		i++;
	buf_printf(out, "%lu", i);
}
