/*
 * imap_search_eval - SEARCH programs evaluated over a mailbox given as
 * callbacks, and the SEARCH / ESEARCH answers. See imap_search_eval.h.
 *
 * The program is first compiled into a tree of its own (needles folded
 * and converted to UTF-8 once, the children of AND and OR ordered cheap
 * first: flags and numbers, then header keys, then body keys), then each
 * message is evaluated with what it needs fetched lazily: the view
 * always, the header section for header keys, the mapped bytes and the
 * MIME tree for body keys.
 */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/charset.h"
#include "mail/mime.h"
#include "imap_search_eval.h"
#include "imap_text.h"

/* what a key needs fetched */
enum imap_search_cost {
	IMAP_SC_VIEW,		/* flags, numbers, dates */
	IMAP_SC_HEADER,		/* the header section */
	IMAP_SC_BODY,		/* the whole message */
};

/* a compiled key */
struct imap_search_node {
	enum imap_sk key;
	struct imap_search_node *child;
	struct imap_search_node *next;
	const struct imap_search *src;	/* numbers, dates, sets */
	char *needle;		/* folded UTF-8 */
	size_t nlen;
	const char *field;	/* the header field the key looks at */
	struct imap_range *set;	/* a sequence set: sorted, merged, "*" */
	size_t nset;		/* resolved, lo <= hi */
	enum imap_search_cost cost;
};

/* the state of the message being looked at */
struct imap_search_msg {
	uint32_t i;
	struct imap_msg_view v;
	int hdr_state;		/* 0 not asked, 1 have it, -1 failed */
	const char *hdr;
	size_t hdr_len;
	int map_state;
	const char *data;
	size_t len;
	struct mime_message *mime;
	int sent_state;		/* 0 not parsed, 1 parsed, -1 none */
	unsigned bodies;	/* body scans so far (BODY, TEXT keys) */
	int sent_ymd;
	struct buf raw, dec, fold, pend, conv;
};

/* imap_search_node_free - a compiled tree */
static void
imap_search_node_free(struct imap_search_node *n)
{
	struct imap_search_node *next;

	for (; n != NULL; n = next) {
		next = n->next;
		imap_search_node_free(n->child);
		x_free(&n->needle);
		x_free(&n->set);
		x_free(&n);
	}
}

/* imap_search_set_compile - s's ranges with "*" as max, each lo <= hi,
 * sorted and merged, so that a number is looked up in log time */
static void
imap_search_set_compile(struct imap_search_node *n,
    const struct imap_seqset *s, uint32_t max)
{
	if (s->saved || s->n == 0)
		return;
	n->set = xreallocarray(NULL, s->n, sizeof(*n->set));
	memcpy(n->set, s->r, s->n * sizeof(*n->set));
	n->nset = s->n;
	imap_ranges_norm(n->set, &n->nset, max);
}

/* imap_search_compile - the compiled form of s; -1 if a needle is not
 * in the charset (unknown charset) */
static struct imap_search_node *
imap_search_compile(struct imap_search_eval *ev, const struct imap_search *s,
    int *err)
{
	struct imap_search_node *n = xcalloc(1, sizeof(*n));
	const char *charset = ev->prog->charset;
	const struct imap_search *k;
	const char *text = NULL;

	n->key = s->key;
	n->src = s;
	n->cost = IMAP_SC_VIEW;
	switch (s->key) {
	case IMAP_SK_AND:
	case IMAP_SK_OR:
	case IMAP_SK_NOT:
		for (k = s->child; k != NULL; k = k->next) {
			struct imap_search_node *c, **at;

			c = imap_search_compile(ev, k, err);
			if (c->cost > n->cost)
				n->cost = c->cost;
			/* keep the children ordered by cost, stable */
			for (at = &n->child; *at != NULL &&
			    (*at)->cost <= c->cost; at = &(*at)->next)
				;
			c->next = *at;
			*at = c;
		}
		return n;
	case IMAP_SK_BCC: n->field = "Bcc"; break;
	case IMAP_SK_CC: n->field = "Cc"; break;
	case IMAP_SK_FROM: n->field = "From"; break;
	case IMAP_SK_TO: n->field = "To"; break;
	case IMAP_SK_SUBJECT: n->field = "Subject"; break;
	case IMAP_SK_HEADER: n->field = s->str1; break;
	case IMAP_SK_BODY:
	case IMAP_SK_TEXT:
		break;
	case IMAP_SK_SENTBEFORE:
	case IMAP_SK_SENTON:
	case IMAP_SK_SENTSINCE:
		n->cost = IMAP_SC_HEADER;
		return n;
	case IMAP_SK_MODSEQ:
		ev->uses_modseq = true;
		return n;
	case IMAP_SK_SEQSET:
		imap_search_set_compile(n, &s->set, ev->src->count);
		return n;
	case IMAP_SK_UID:
		imap_search_set_compile(n, &s->set, ev->last_uid);
		return n;
	default:
		return n;
	}
	text = s->key == IMAP_SK_HEADER ? s->str2 : s->str1;
	n->cost = s->key == IMAP_SK_BODY || s->key == IMAP_SK_TEXT ?
	    IMAP_SC_BODY : IMAP_SC_HEADER;
	{
		struct buf u = BUF_INIT, f = BUF_INIT;

		if (charset != NULL) {
			if (charset_to_utf8(charset, text, strlen(text),
			    &u) < 0)
				*err = -1;
		} else {
			(void)charset_utf8_clean(&u, text, strlen(text));
		}
		imap_text_fold(&f, u.data, u.len);
		n->nlen = f.len;
		n->needle = buf_steal(&f);
		buf_free(&u);
	}
	return n;
}

/* imap_search_begin - prepare an evaluation */
int
imap_search_begin(struct imap_search_eval *ev,
    const struct imap_search_program *prog,
    const struct imap_mailbox_src *src, const struct imap_search_opts *opts,
    const char **why)
{
	struct imap_msg_view v;
	int err = 0;

	memset(ev, 0, sizeof(*ev));
	ev->prog = prog;
	ev->src = src;
	if (opts != NULL)
		ev->opts = *opts;
	if (prog->charset != NULL && !charset_is_utf8(prog->charset)) {
		struct buf t = BUF_INIT;

		if (charset_to_utf8(prog->charset, "", 0, &t) < 0) {
			*why = "Unknown charset";
			return -1;
		}
		buf_free(&t);
	}
	if (src->count > 0 && src->view(src->ctx, src->count - 1, &v) == 0)
		ev->last_uid = v.uid;
	ev->root = imap_search_compile(ev, prog->root, &err);
	if (err < 0) {
		imap_search_node_free(ev->root);
		ev->root = NULL;
		*why = "Unknown charset";
		return -1;
	}
	ev->m = xcalloc(1, sizeof(*ev->m));
	buf_init(&ev->m->raw);
	buf_init(&ev->m->dec);
	buf_init(&ev->m->fold);
	buf_init(&ev->m->pend);
	buf_init(&ev->m->conv);
	buf_set_limit(&ev->m->raw, IMAP_SEARCH_FIELD_MAX);
	buf_set_limit(&ev->m->dec, IMAP_SEARCH_FIELD_MAX);
	return 0;
}

/* imap_search_end - release an evaluation */
void
imap_search_end(struct imap_search_eval *ev)
{
	imap_search_node_free(ev->root);
	if (ev->m != NULL) {
		buf_free(&ev->m->raw);
		buf_free(&ev->m->dec);
		buf_free(&ev->m->fold);
		buf_free(&ev->m->pend);
		buf_free(&ev->m->conv);
		x_free(&ev->m);
	}
	x_free(&ev->seq);
	x_free(&ev->uid);
	x_free(&ev->modseq);
	memset(ev, 0, sizeof(*ev));
}

/* imap_search_map - the message's bytes; false if it cannot be read */
static bool
imap_search_map(struct imap_search_eval *ev, struct imap_search_msg *m)
{
	if (m->map_state == 0) {
		m->map_state = ev->src->map(ev->src->ctx, m->i, &m->data,
		    &m->len) == 0 ? 1 : -1;
		if (m->map_state > 0)
			ev->scanned += m->len;
		else
			ev->gone++;
	}
	return m->map_state > 0;
}

/* imap_search_header - the header section; false if it cannot be read */
static bool
imap_search_header(struct imap_search_eval *ev, struct imap_search_msg *m)
{
	if (m->hdr_state == 0) {
		if (ev->src->header != NULL && ev->src->header(ev->src->ctx,
		    m->i, &m->hdr, &m->hdr_len) == 0) {
			m->hdr_state = 1;
			ev->scanned += m->hdr_len;
		} else if (imap_search_map(ev, m)) {
			/* mime_header_next stops at the empty line */
			m->hdr = m->data;
			m->hdr_len = m->len;
			m->hdr_state = 1;
		} else {
			m->hdr_state = -1;
		}
	}
	if (m->hdr_state > 0 && m->hdr_len > IMAP_SEARCH_HEADER_MAX)
		m->hdr_len = IMAP_SEARCH_HEADER_MAX;
	return m->hdr_state > 0;
}

/* imap_search_find - does the folded text hold the needle? */
static bool
imap_search_find(const struct buf *hay, const char *needle, size_t nlen)
{
	return nlen == 0 || memmem(hay->data, hay->len, needle, nlen) != NULL;
}

/* imap_search_fields - does a field called name (any field when NULL;
 * then "Name: value" is searched) of the header hdr[0..len) hold the
 * needle (an empty needle: is there such a field)? */
static bool
imap_search_fields(struct imap_search_msg *m, const char *hdr, size_t len,
    const char *name, const char *needle, size_t nlen)
{
	struct mime_field f;
	size_t pos = 0;

	while (mime_header_next(hdr, len, &pos, &f) > 0) {
		if (name != NULL && (strlen(name) != f.name_len ||
		    str_ncasecmp(f.name, name, f.name_len) != 0))
			continue;
		if (nlen == 0)
			return true;
		buf_reset(&m->raw);
		buf_reset(&m->dec);
		buf_reset(&m->fold);
		/* raw keeps IMAP_SEARCH_FIELD_MAX bytes: unfold no more
		 * than can give that many (a fold is a CRLF and a blank) */
		mime_header_unfold(&m->raw, f.value, f.value_len <
		    3 * IMAP_SEARCH_FIELD_MAX ? f.value_len :
		    3 * IMAP_SEARCH_FIELD_MAX);
		if (name == NULL) {
			buf_append(&m->dec, f.name, f.name_len);
			buf_puts(&m->dec, ": ");
		}
		mime_words_decode(&m->dec, m->raw.data, m->raw.len);
		imap_text_fold(&m->fold, m->dec.data, m->dec.len);
		if (imap_search_find(&m->fold, needle, nlen))
			return true;
	}
	return false;
}

/* imap_search_text - convert pend[0..cut) to UTF-8, fold it after the
 * overlap kept in m->fold and look for the needle */
static bool
imap_search_text(struct imap_search_msg *m, const char *charset,
    size_t cut, const char *needle, size_t nlen)
{
	buf_reset(&m->conv);
	if (charset == NULL || charset_to_utf8(charset, m->pend.data, cut,
	    &m->conv) < 0)
		(void)charset_utf8_clean(&m->conv, m->pend.data, cut);
	buf_consume(&m->pend, cut);
	imap_text_fold(&m->fold, m->conv.data, m->conv.len);
	if (imap_search_find(&m->fold, needle, nlen))
		return true;
	/* keep what may start a match that the next slice completes */
	if (m->fold.len >= nlen)
		buf_consume(&m->fold, m->fold.len - nlen + 1);
	return false;
}

/* imap_search_utf8_cut - n, or less so that p[0..n) does not end in the
 * middle of a UTF-8 sequence */
static size_t
imap_search_utf8_cut(const char *p, size_t n)
{
	size_t j = n, k = 0, need;
	unsigned char c;

	while (j > 0 && k < 3 && ((unsigned char)p[j - 1] & 0xc0) == 0x80) {
		j--;
		k++;
	}
	if (j == 0)
		return n;
	c = (unsigned char)p[j - 1];
	need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
	return n - (j - 1) < need ? j - 1 : n;
}

/* imap_search_leaf - stream a text part's body through the decoders */
static bool
imap_search_leaf(struct imap_search_msg *m, const struct mime_part *p,
    const char *needle, size_t nlen)
{
	const char *body = m->data + p->body_off;
	const char *charset;
	struct mime_decoder d;
	size_t off = 0;

	if (!p->default_type && p->type != NULL &&
	    str_casecmp(p->type, "text") != 0)
		return false;
	charset = mime_param_get(p->params, p->nparams, "charset");
	mime_decoder_init(&d, p->enc);
	buf_reset(&m->fold);
	buf_reset(&m->pend);
	do {
		size_t n = p->body_len - off, cut;
		const char *nl;
		bool last;

		if (n > IMAP_SEARCH_SLICE)
			n = IMAP_SEARCH_SLICE;
		mime_decoder_feed(&d, body + off, n, &m->pend);
		off += n;
		last = off >= p->body_len;
		if (last)
			mime_decoder_end(&d, &m->pend);
		/* whole lines, so that no character is cut in two (a line
		 * over a slice long is cut, at a UTF-8 boundary) */
		cut = m->pend.len;
		if (!last && (nl = memrchr(m->pend.data, '\n',
		    m->pend.len)) != NULL)
			cut = (size_t)(nl - m->pend.data) + 1;
		else if (!last && m->pend.len < IMAP_SEARCH_SLICE)
			cut = 0;
		else if (!last)
			cut = imap_search_utf8_cut(m->pend.data, cut);
		if (cut > 0 && imap_search_text(m, charset, cut, needle,
		    nlen))
			return true;
	} while (off < p->body_len);
	return false;
}

/* imap_search_part - search the text of part p and below it */
static bool
imap_search_part(struct imap_search_msg *m, const struct mime_part *p,
    const char *needle, size_t nlen)
{
	const struct mime_part *c;

	if (p->is_multipart) {
		for (c = p->children; c != NULL; c = c->next)
			if (imap_search_part(m, c, needle, nlen))
				return true;
		return false;
	}
	if (p->is_message && p->children != NULL) {
		c = p->children;
		return imap_search_fields(m, m->data + c->hdr_off,
		    c->hdr_len, NULL, needle, nlen) ||
		    imap_search_part(m, c, needle, nlen);
	}
	return imap_search_leaf(m, p, needle, nlen);
}

/* imap_search_body - BODY (and TEXT's body half) */
static bool
imap_search_body(struct imap_search_eval *ev, struct imap_search_msg *m,
    const struct imap_search_node *n)
{
	if (!imap_search_map(ev, m))
		return false;
	/* the map counted one reading; every further key reads it again,
	 * and that counts against the step's budget too */
	if (m->bodies++ > 0)
		ev->scanned += m->len;
	if (m->mime == NULL)
		m->mime = mime_parse(m->data, m->len);
	return imap_search_part(m, m->mime->root, n->needle, n->nlen);
}

/* imap_search_in_set - is v (a message number or UID) in n's set? "$"
 * looks up the message's UID in the saved result */
static bool
imap_search_in_set(const struct imap_search_eval *ev,
    const struct imap_search_node *n, uint32_t v, uint32_t uid)
{
	const uint32_t *sv = ev->opts.saved;
	size_t lo = 0, hi;

	if (n->src->set.saved) {
		hi = ev->opts.nsaved;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (sv[mid] == uid)
				return true;
			if (sv[mid] < uid)
				lo = mid + 1;
			else
				hi = mid;
		}
		return false;
	}
	/* the last range that starts at or before v */
	hi = n->nset;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (n->set[mid].lo <= v)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo > 0 && v <= n->set[lo - 1].hi;
}

/* imap_search_sent - the Date: header's date as written (yyyymmdd), or
 * the INTERNALDATE's without a usable one */
static int
imap_search_sent(struct imap_search_eval *ev, struct imap_search_msg *m)
{
	struct imap_text_date d;
	struct mime_field f;
	size_t pos = 0;

	if (m->sent_state != 0)
		return m->sent_ymd;
	m->sent_state = 1;
	m->sent_ymd = imap_text_ymd(m->v.internaldate, m->v.internal_zone);
	if (!imap_search_header(ev, m))
		return m->sent_ymd;
	while (mime_header_next(m->hdr, m->hdr_len, &pos, &f) > 0)
		if (f.name_len == 4 && str_ncasecmp(f.name, "Date", 4) == 0) {
			if (imap_text_date_parse(f.value, f.value_len,
			    &d) == 0)
				m->sent_ymd = d.ymd;
			break;
		}
	return m->sent_ymd;
}

/* imap_search_match - does the message match key n? */
static bool
imap_search_match(struct imap_search_eval *ev, struct imap_search_msg *m,
    const struct imap_search_node *n)
{
	const struct imap_search_node *c;
	const struct imap_msg_view *v = &m->v;
	unsigned f = v->flags;
	int ymd;

	switch (n->key) {
	case IMAP_SK_AND:
		for (c = n->child; c != NULL; c = c->next)
			if (!imap_search_match(ev, m, c))
				return false;
		return true;
	case IMAP_SK_OR:
		for (c = n->child; c != NULL; c = c->next)
			if (imap_search_match(ev, m, c))
				return true;
		return false;
	case IMAP_SK_NOT:
		return !imap_search_match(ev, m, n->child);
	case IMAP_SK_SEQSET:
		return imap_search_in_set(ev, n, m->i + 1, v->uid);
	case IMAP_SK_UID:
		return imap_search_in_set(ev, n, v->uid, v->uid);
	case IMAP_SK_ALL: return true;
	case IMAP_SK_ANSWERED: return f & IMAP_MF_ANSWERED;
	case IMAP_SK_DELETED: return f & IMAP_MF_DELETED;
	case IMAP_SK_DRAFT: return f & IMAP_MF_DRAFT;
	case IMAP_SK_FLAGGED: return f & IMAP_MF_FLAGGED;
	case IMAP_SK_SEEN: return f & IMAP_MF_SEEN;
	case IMAP_SK_UNANSWERED: return !(f & IMAP_MF_ANSWERED);
	case IMAP_SK_UNDELETED: return !(f & IMAP_MF_DELETED);
	case IMAP_SK_UNDRAFT: return !(f & IMAP_MF_DRAFT);
	case IMAP_SK_UNFLAGGED: return !(f & IMAP_MF_FLAGGED);
	case IMAP_SK_UNSEEN: return !(f & IMAP_MF_SEEN);
	case IMAP_SK_RECENT: return f & IMAP_MF_RECENT;
	case IMAP_SK_OLD: return !(f & IMAP_MF_RECENT);
	case IMAP_SK_NEW:
		return (f & IMAP_MF_RECENT) && !(f & IMAP_MF_SEEN);
	case IMAP_SK_KEYWORD:
	case IMAP_SK_UNKEYWORD:
		for (size_t i = 0; i < v->nkeywords; i++)
			if (str_casecmp(v->keywords[i], n->src->str1) == 0)
				return n->key == IMAP_SK_KEYWORD;
		return n->key == IMAP_SK_UNKEYWORD;
	case IMAP_SK_LARGER: return v->size > n->src->num;
	case IMAP_SK_SMALLER: return v->size < n->src->num;
	case IMAP_SK_MODSEQ:
		/*
		 * herald keeps one mod-sequence per message, not one per
		 * flag: the entry name and type ("/flags/\\Seen" all) are
		 * checked by the parser and then compare against that one
		 * value, which RFC 7162 3.1.5 lets a server without
		 * per-metadata mod-sequences do (the message's modseq is
		 * the highest of its items', so nothing changed is missed).
		 */
		return v->modseq >= n->src->num;
	case IMAP_SK_EMAILID:	/* RFC 8474 6: ids compare exactly */
		return v->emailid != NULL &&
		    strcmp(v->emailid, n->src->str1) == 0;
	case IMAP_SK_THREADID: return false;	/* every THREADID is NIL */
	case IMAP_SK_BEFORE:
	case IMAP_SK_ON:
	case IMAP_SK_SINCE:
		ymd = imap_text_ymd(v->internaldate, v->internal_zone);
		goto date;
	case IMAP_SK_SENTBEFORE:
	case IMAP_SK_SENTON:
	case IMAP_SK_SENTSINCE:
		ymd = imap_search_sent(ev, m);
date:
		if (n->key == IMAP_SK_BEFORE || n->key == IMAP_SK_SENTBEFORE)
			return ymd < n->src->date;
		if (n->key == IMAP_SK_ON || n->key == IMAP_SK_SENTON)
			return ymd == n->src->date;
		return ymd >= n->src->date;
	case IMAP_SK_BCC:
	case IMAP_SK_CC:
	case IMAP_SK_FROM:
	case IMAP_SK_TO:
	case IMAP_SK_SUBJECT:
	case IMAP_SK_HEADER:
		return imap_search_header(ev, m) &&
		    imap_search_fields(m, m->hdr, m->hdr_len, n->field,
		    n->needle, n->nlen);
	case IMAP_SK_TEXT:
		if (imap_search_header(ev, m) && imap_search_fields(m,
		    m->hdr, m->hdr_len, NULL, n->needle, n->nlen))
			return true;
		/* FALLTHROUGH */
	case IMAP_SK_BODY:
		return imap_search_body(ev, m, n);
	}
	return false;
}

/* imap_search_add - record a match */
static void
imap_search_add(struct imap_search_eval *ev, uint32_t seq,
    const struct imap_msg_view *v)
{
	if (ev->n == ev->cap) {
		ev->cap = ev->cap ? 2 * ev->cap : 64;
		ev->seq = xreallocarray(ev->seq, ev->cap, sizeof(*ev->seq));
		ev->uid = xreallocarray(ev->uid, ev->cap, sizeof(*ev->uid));
		ev->modseq = xreallocarray(ev->modseq, ev->cap,
		    sizeof(*ev->modseq));
	}
	ev->seq[ev->n] = seq;
	ev->uid[ev->n] = v->uid;
	ev->modseq[ev->n] = v->modseq;
	ev->n++;
}

/* imap_search_step - look at messages until done or over budget */
enum imap_search_step
imap_search_step(struct imap_search_eval *ev, unsigned long long budget)
{
	struct imap_search_msg *m = ev->m;
	unsigned long long start = ev->scanned;

	while (ev->next < ev->src->count) {
		if (budget > 0 && ev->scanned - start >= budget)
			return IMAP_SEARCH_MORE;
		m->i = ev->next++;
		m->hdr_state = m->map_state = m->sent_state = 0;
		m->bodies = 0;
		memset(&m->v, 0, sizeof(m->v));
		if (ev->src->view(ev->src->ctx, m->i, &m->v) < 0) {
			ev->gone++;
			continue;
		}
		if (imap_search_match(ev, m, ev->root))
			imap_search_add(ev, m->i + 1, &m->v);
		mime_free(&m->mime);
		if (m->map_state > 0 && ev->src->unmap != NULL)
			ev->src->unmap(ev->src->ctx, m->i);
	}
	return IMAP_SEARCH_DONE;
}

/* imap_search_set - numbers as a compact sequence set */
void
imap_search_set(struct buf *out, const uint32_t *v, size_t n)
{
	size_t i = 0, j;

	while (i < n) {
		for (j = i; j + 1 < n && v[j + 1] == v[j] + 1; j++)
			;
		if (i > 0)
			buf_putc(out, ',');
		if (j == i)
			buf_printf(out, "%u", v[i]);
		else
			buf_printf(out, "%u:%u", v[i], v[j]);
		i = j + 1;
	}
}

/* imap_search_saves - did the program ask for SAVE? */
bool
imap_search_saves(const struct imap_search_eval *ev)
{
	return ev->prog->esearch && (ev->prog->ret & IMAP_SR_SAVE);
}

/* imap_search_minmax_only - MIN and/or MAX without ALL or COUNT? */
static bool
imap_search_minmax_only(unsigned ret)
{
	return (ret & (IMAP_SR_MIN | IMAP_SR_MAX)) &&
	    !(ret & (IMAP_SR_ALL | IMAP_SR_COUNT));
}

/* imap_search_save - the UIDs SAVE keeps */
size_t
imap_search_save(const struct imap_search_eval *ev, uint32_t **uids_r)
{
	unsigned ret = ev->prog->ret;
	size_t k = 0;

	*uids_r = NULL;
	if (ev->n == 0)
		return 0;
	if (!imap_search_minmax_only(ret)) {
		*uids_r = xreallocarray(NULL, ev->n, sizeof(**uids_r));
		memcpy(*uids_r, ev->uid, ev->n * sizeof(**uids_r));
		return ev->n;
	}
	*uids_r = xreallocarray(NULL, 2, sizeof(**uids_r));
	if (ret & IMAP_SR_MIN)
		(*uids_r)[k++] = ev->uid[0];
	if ((ret & IMAP_SR_MAX) && (k == 0 || ev->n > 1))
		(*uids_r)[k++] = ev->uid[ev->n - 1];
	return k;
}

/* imap_search_answer - the untagged SEARCH or ESEARCH answer */
void
imap_search_answer(const struct imap_search_eval *ev, const char *tag,
    bool uid, bool condstore, struct buf *out)
{
	const uint32_t *num = uid ? ev->uid : ev->seq;
	unsigned ret = ev->prog->ret;
	unsigned long long ms = 0;
	bool modseq = condstore && ev->uses_modseq && ev->n > 0;

	if (!ev->prog->esearch) {
		buf_puts(out, "* SEARCH");
		for (size_t i = 0; i < ev->n; i++) {
			buf_printf(out, " %u", num[i]);
			if (ev->modseq[i] > ms)
				ms = ev->modseq[i];
		}
		if (modseq)
			buf_printf(out, " (MODSEQ %llu)", ms);
		buf_puts(out, "\r\n");
		return;
	}
	if (ret == IMAP_SR_SAVE)
		return;
	buf_puts(out, "* ESEARCH (TAG \"");
	for (const char *p = tag; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			buf_putc(out, '\\');
		buf_putc(out, *p);
	}
	buf_putc(out, '"');
	buf_putc(out, ')');
	if (uid)
		buf_puts(out, " UID");
	if ((ret & IMAP_SR_MIN) && ev->n > 0)
		buf_printf(out, " MIN %u", num[0]);
	if ((ret & IMAP_SR_MAX) && ev->n > 0)
		buf_printf(out, " MAX %u", num[ev->n - 1]);
	if (ret & IMAP_SR_COUNT)
		buf_printf(out, " COUNT %zu", ev->n);
	if ((ret & IMAP_SR_ALL) && ev->n > 0) {
		buf_puts(out, " ALL ");
		imap_search_set(out, num, ev->n);
	}
	if (modseq) {
		/* RFC 7162 3.1.5: of the messages the answer names */
		if (imap_search_minmax_only(ret)) {
			if (ret & IMAP_SR_MIN)
				ms = ev->modseq[0];
			if ((ret & IMAP_SR_MAX) && ev->modseq[ev->n - 1] > ms)
				ms = ev->modseq[ev->n - 1];
		} else {
			for (size_t i = 0; i < ev->n; i++)
				if (ev->modseq[i] > ms)
					ms = ev->modseq[i];
		}
		buf_printf(out, " MODSEQ %llu", ms);
	}
	buf_puts(out, "\r\n");
}
