/*
 * imap_sort - SORT and ESORT, the base subject and the header facts SORT
 * and THREAD share. See imap_sort.h.
 */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/mime.h"
#include "imap_sort.h"
#include "imap_text.h"

#define IMAP_SORT_ID_MAX 998		/* bytes of one message id */

/* imap_sort_parse_return - RETURN (MIN MAX ALL COUNT SAVE) */
static int
imap_sort_parse_return(struct imap_cursor *c, struct imap_sort_program *sp,
    const char **why)
{
	static const struct {
		const char *name;
		unsigned bit;
	} opts[] = {
		{"MIN", IMAP_SR_MIN}, {"MAX", IMAP_SR_MAX},
		{"ALL", IMAP_SR_ALL}, {"COUNT", IMAP_SR_COUNT},
		{"SAVE", IMAP_SR_SAVE},
	};
	struct imap_token t;
	size_t i;

	sp->esort = true;
	if (imap_cursor_next(c, &t) != IMAP_TOK_OPEN) {
		*why = "RETURN needs a list of options";
		return -1;
	}
	while (imap_cursor_next(c, &t) == IMAP_TOK_ATOM) {
		for (i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
			if (imap_tok_is(&t, opts[i].name))
				break;
		if (i == sizeof(opts) / sizeof(opts[0])) {
			*why = "Unknown RETURN option";
			return -1;
		}
		sp->ret |= opts[i].bit;
	}
	if (t.type != IMAP_TOK_CLOSE) {
		*why = "Invalid RETURN options";
		return -1;
	}
	if (sp->ret == 0)
		sp->ret = IMAP_SR_ALL;
	return 0;
}

/* imap_sort_parse - RETURN, criteria, charset and the search keys */
int
imap_sort_parse(struct imap_cursor *c, struct imap_sort_program *sp,
    const char **why)
{
	static const struct {
		const char *name;
		enum imap_sort_key key;
	} keys[] = {
		{"ARRIVAL", IMAP_SORT_ARRIVAL}, {"CC", IMAP_SORT_CC},
		{"DATE", IMAP_SORT_DATE}, {"FROM", IMAP_SORT_FROM},
		{"SIZE", IMAP_SORT_SIZE}, {"SUBJECT", IMAP_SORT_SUBJECT},
		{"TO", IMAP_SORT_TO}, {"DISPLAYFROM", IMAP_SORT_DISPLAYFROM},
		{"DISPLAYTO", IMAP_SORT_DISPLAYTO},
	};
	struct imap_token t;
	struct buf cs = BUF_INIT;
	bool reverse = false;
	size_t i;

	memset(sp, 0, sizeof(*sp));
	if (imap_cursor_peek(c, &t) == IMAP_TOK_ATOM &&
	    imap_tok_is(&t, "RETURN")) {
		(void)imap_cursor_next(c, &t);
		if (imap_sort_parse_return(c, sp, why) < 0)
			goto bad;
	}
	if (imap_cursor_next(c, &t) != IMAP_TOK_OPEN) {
		*why = "SORT needs a list of criteria";
		goto bad;
	}
	while (imap_cursor_next(c, &t) == IMAP_TOK_ATOM) {
		if (!reverse && imap_tok_is(&t, "REVERSE")) {
			reverse = true;
			continue;
		}
		for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			if (imap_tok_is(&t, keys[i].name))
				break;
		if (i == sizeof(keys) / sizeof(keys[0])) {
			*why = "Unknown sort criterion";
			goto bad;
		}
		if (sp->ncrit == IMAP_SORT_CRIT_MAX) {
			*why = "Too many sort criteria";
			goto bad;
		}
		sp->crit[sp->ncrit].key = keys[i].key;
		sp->crit[sp->ncrit++].reverse = reverse;
		reverse = false;
	}
	if (t.type != IMAP_TOK_CLOSE || sp->ncrit == 0 || reverse) {
		*why = "Invalid sort criteria";
		goto bad;
	}
	if (imap_cursor_next(c, &t) == IMAP_TOK_ERROR ||
	    !imap_tok_astring(&t)) {
		*why = "SORT needs a charset";
		goto bad;
	}
	imap_tok_string(&t, &cs);
	if (imap_search_parse(c, &sp->search, why) < 0)
		goto bad;
	if (sp->search.esearch || sp->search.charset != NULL) {
		*why = "Invalid search program";
		goto bad;
	}
	sp->search.charset = buf_steal(&cs);
	return 0;
bad:
	buf_free(&cs);
	imap_sort_free(sp);
	return -1;
}

/* imap_sort_free - release a SORT program */
void
imap_sort_free(struct imap_sort_program *sp)
{
	imap_search_free(&sp->search);
	memset(sp, 0, sizeof(*sp));
}

/* imap_sort_blob - the length of a subj-blob ("[" *BLOBCHAR "]" *WSP) at
 * s[0..n), or 0 */
static size_t
imap_sort_blob(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || s[0] != '[')
		return 0;
	for (i = 1; i < n && s[i] != '[' && s[i] != ']'; i++)
		;
	if (i >= n || s[i] != ']')
		return 0;
	for (i++; i < n && s[i] == ' '; i++)
		;
	return i;
}

/* imap_sort_refwd - the length of a subj-refwd ("re" / "fw" ["d"]) *WSP
 * [subj-blob] ":" at s[0..n) (folded), or 0 */
static size_t
imap_sort_refwd(const char *s, size_t n)
{
	size_t i;

	if (n >= 2 && memcmp(s, "re", 2) == 0)
		i = 2;
	else if (n >= 3 && memcmp(s, "fwd", 3) == 0)
		i = 3;
	else if (n >= 2 && memcmp(s, "fw", 2) == 0)
		i = 2;
	else
		return 0;
	while (i < n && s[i] == ' ')
		i++;
	i += imap_sort_blob(s + i, n - i);
	if (i < n && s[i] == ':')
		return i + 1;
	return 0;
}

/* imap_sort_base_subject - RFC 5256 2.1 */
bool
imap_sort_base_subject(const char *raw, size_t n, struct buf *out)
{
	struct buf u = BUF_INIT, d = BUF_INIT, f = BUF_INIT;
	bool reply = false, changed;
	const char *s;
	size_t len, i, k;

	/* (1) words decoded, folding gone, each run of blanks one space */
	buf_set_limit(&u, IMAP_SEARCH_FIELD_MAX);
	mime_header_unfold(&u, raw, n);
	mime_words_decode(&d, u.data, u.len);
	buf_reset(&u);
	for (i = 0; i < d.len; i++) {
		char c = d.data[i];

		/* a NUL too: the key is a C string */
		if (c == '\t' || c == '\r' || c == '\n' || c == '\0')
			c = ' ';
		if (c == ' ' && u.len > 0 && u.data[u.len - 1] == ' ')
			continue;
		buf_putc(&u, c);
	}
	imap_text_fold(&f, u.data, u.len);
	s = f.data;
	len = f.len;
	for (;;) {
		/* (2) subj-trailer: "(fwd)" or blanks at the end */
		for (;;) {
			if (len > 0 && s[len - 1] == ' ')
				len--;
			else if (len >= 5 && memcmp(s + len - 5, "(fwd)",
			    5) == 0) {
				len -= 5;
				reply = true;
			} else
				break;
		}
		/* (3)-(5) subj-leader and subj-blob at the start */
		do {
			changed = false;
			for (;;) {
				if (len > 0 && s[0] == ' ') {
					s++;
					len--;
					continue;
				}
				for (i = 0; (k = imap_sort_blob(s + i,
				    len - i)) > 0; i += k)
					;
				if ((k = imap_sort_refwd(s + i,
				    len - i)) == 0)
					break;
				s += i + k;
				len -= i + k;
				reply = changed = true;
			}
			if ((k = imap_sort_blob(s, len)) > 0) {
				for (i = k; i < len && s[i] == ' '; i++)
					;
				if (i < len) {
					s += k;
					len -= k;
					changed = true;
				}
			}
		} while (changed);
		/* (6) "[fwd:" ... "]" */
		if (len >= 6 && memcmp(s, "[fwd:", 5) == 0 &&
		    s[len - 1] == ']') {
			s += 5;
			len -= 6;
			reply = true;
			continue;
		}
		break;
	}
	buf_append(out, s, len);
	buf_free(&u);
	buf_free(&d);
	buf_free(&f);
	return reply;
}

/* imap_sort_addr - the first address of an address field: addr-mailbox
 * into mbox, the display form (name, else mailbox@host) into disp */
static void
imap_sort_addr(const char *v, size_t n, char **mbox, char **disp)
{
	struct mime_addr *a = mime_addr_parse(v, n), *p;
	struct buf t = BUF_INIT, f = BUF_INIT;

	for (p = a; p != NULL && p->host == NULL; p = p->next)
		;
	if (p != NULL && p->mailbox != NULL) {
		imap_text_fold(&f, p->mailbox, strlen(p->mailbox));
		x_free(mbox);
		*mbox = buf_steal(&f);
		if (p->name != NULL && p->name[0] != '\0')
			mime_words_decode(&t, p->name, strlen(p->name));
		else
			buf_printf(&t, "%s@%s", p->mailbox, p->host);
		imap_text_fold(&f, t.data, t.len);
		x_free(disp);
		*disp = buf_steal(&f);
	}
	buf_free(&t);
	buf_free(&f);
	mime_addr_free(&a);
}

/* imap_sort_ids - up to max "<id>"s of v[0..n) appended to out; their
 * count */
static int
imap_sort_ids(const char *v, size_t n, int max, struct buf *out)
{
	const char *p = v, *end = v + n, *lt, *gt;
	int got = 0;

	while (got < max && (lt = memchr(p, '<', (size_t)(end - p))) !=
	    NULL) {
		if ((gt = memchr(lt, '>', (size_t)(end - lt))) == NULL)
			break;
		p = gt + 1;
		if (gt - lt < 2 || gt - lt > IMAP_SORT_ID_MAX)
			continue;
		for (const char *q = lt; q <= gt; q++)
			if (*q != ' ' && *q != '\t' && *q != '\r' &&
			    *q != '\n')
				buf_putc(out, *q);
		got++;
	}
	return got;
}

/* imap_sort_is - is the field called name (any case)? */
static bool
imap_sort_is(const struct mime_field *f, const char *name)
{
	return f->name_len == strlen(name) &&
	    str_ncasecmp(f->name, name, f->name_len) == 0;
}

/* imap_sort_msg_load - the facts of message i */
void
imap_sort_msg_load(const struct imap_mailbox_src *src, uint32_t i,
    bool threads, struct imap_sort_msg *m)
{
	struct imap_msg_view v;
	struct imap_text_date d;
	struct mime_field f;
	struct buf t = BUF_INIT, irt = BUF_INIT;
	const char *hdr = NULL;
	size_t len = 0, pos = 0;
	bool mapped = false, have_date = false, have_refs = false;
	bool have_subject = false;

	memset(m, 0, sizeof(*m));
	memset(&v, 0, sizeof(v));
	m->seq = i + 1;
	if (src->view(src->ctx, i, &v) == 0) {
		m->uid = v.uid;
		m->arrival = v.internaldate;
		m->size = v.size;
	}
	m->date = m->arrival;
	if (src->header == NULL || src->header(src->ctx, i, &hdr,
	    &len) < 0) {
		if (src->map(src->ctx, i, &hdr, &len) == 0)
			mapped = true;
		else
			hdr = NULL, len = 0;
	}
	while (hdr != NULL && mime_header_next(hdr, len, &pos, &f) > 0) {
		if (imap_sort_is(&f, "Subject") && !have_subject) {
			buf_reset(&t);
			m->reply = imap_sort_base_subject(f.value,
			    f.value_len, &t);
			m->subject = buf_steal(&t);
			have_subject = true;
		} else if (imap_sort_is(&f, "Date") && !have_date) {
			have_date = true;
			if (imap_text_date_parse(f.value, f.value_len,
			    &d) == 0)
				m->date = d.utc;
		} else if (imap_sort_is(&f, "From") && m->from == NULL) {
			imap_sort_addr(f.value, f.value_len, &m->from,
			    &m->dfrom);
		} else if (imap_sort_is(&f, "To") && m->to == NULL) {
			imap_sort_addr(f.value, f.value_len, &m->to, &m->dto);
		} else if (imap_sort_is(&f, "Cc") && m->cc == NULL) {
			char *unused = NULL;

			imap_sort_addr(f.value, f.value_len, &m->cc, &unused);
			x_free(&unused);
		} else if (threads && imap_sort_is(&f, "Message-ID") &&
		    m->msgid == NULL) {
			buf_reset(&t);
			if (imap_sort_ids(f.value, f.value_len, 1, &t) > 0)
				m->msgid = buf_steal(&t);
		} else if (threads && imap_sort_is(&f, "References") &&
		    !have_refs) {
			buf_reset(&t);
			if (imap_sort_ids(f.value, f.value_len,
			    IMAP_SORT_REFS_MAX, &t) > 0) {
				m->refs = buf_steal(&t);
				have_refs = true;
			}
		} else if (threads && imap_sort_is(&f, "In-Reply-To") &&
		    irt.len == 0) {
			(void)imap_sort_ids(f.value, f.value_len, 1, &irt);
		}
	}
	if (threads && m->refs == NULL && irt.len > 0)
		m->refs = buf_steal(&irt);
	if (m->subject == NULL)
		m->subject = xstrdup("");
	if (mapped && src->unmap != NULL)
		src->unmap(src->ctx, i);
	buf_free(&t);
	buf_free(&irt);
}

/* imap_sort_msg_free - release the facts */
void
imap_sort_msg_free(struct imap_sort_msg *m)
{
	x_free(&m->subject);
	x_free(&m->from);
	x_free(&m->to);
	x_free(&m->cc);
	x_free(&m->dfrom);
	x_free(&m->dto);
	x_free(&m->msgid);
	x_free(&m->refs);
}

/* one match being sorted */
struct imap_sort_item {
	const struct imap_sort_program *sp;
	struct imap_sort_msg m;
	unsigned long long modseq;
};

/* imap_sort_strcmp - compare two keys (NULL is "") */
static int
imap_sort_strcmp(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "");
}

/* imap_sort_cmp - qsort's comparison of two items by the criteria */
static int
imap_sort_cmp(const void *pa, const void *pb)
{
	const struct imap_sort_item *a = pa, *b = pb;
	const struct imap_sort_program *sp = a->sp;

	for (size_t i = 0; i < sp->ncrit; i++) {
		int r = 0;

		switch (sp->crit[i].key) {
		case IMAP_SORT_ARRIVAL:
			r = (a->m.arrival > b->m.arrival) -
			    (a->m.arrival < b->m.arrival);
			break;
		case IMAP_SORT_DATE:
			r = (a->m.date > b->m.date) - (a->m.date < b->m.date);
			break;
		case IMAP_SORT_SIZE:
			r = (a->m.size > b->m.size) - (a->m.size < b->m.size);
			break;
		case IMAP_SORT_CC:
			r = imap_sort_strcmp(a->m.cc, b->m.cc);
			break;
		case IMAP_SORT_FROM:
			r = imap_sort_strcmp(a->m.from, b->m.from);
			break;
		case IMAP_SORT_TO:
			r = imap_sort_strcmp(a->m.to, b->m.to);
			break;
		case IMAP_SORT_SUBJECT:
			r = imap_sort_strcmp(a->m.subject, b->m.subject);
			break;
		case IMAP_SORT_DISPLAYFROM:
			r = imap_sort_strcmp(a->m.dfrom, b->m.dfrom);
			break;
		case IMAP_SORT_DISPLAYTO:
			r = imap_sort_strcmp(a->m.dto, b->m.dto);
			break;
		}
		if (r != 0)
			return sp->crit[i].reverse ? -r : r;
	}
	return (a->m.seq > b->m.seq) - (a->m.seq < b->m.seq);
}

/* imap_sort_matches - sort ev's matches */
void
imap_sort_matches(struct imap_search_eval *ev,
    const struct imap_sort_program *sp)
{
	struct imap_sort_item *it;

	if (ev->n == 0)
		return;
	it = xreallocarray(NULL, ev->n, sizeof(*it));
	for (size_t i = 0; i < ev->n; i++) {
		it[i].sp = sp;
		imap_sort_msg_load(ev->src, ev->seq[i] - 1, false, &it[i].m);
		it[i].m.uid = ev->uid[i];
		it[i].modseq = ev->modseq[i];
	}
	qsort(it, ev->n, sizeof(*it), imap_sort_cmp);
	for (size_t i = 0; i < ev->n; i++) {
		ev->seq[i] = it[i].m.seq;
		ev->uid[i] = it[i].m.uid;
		ev->modseq[i] = it[i].modseq;
		imap_sort_msg_free(&it[i].m);
	}
	x_free(&it);
}

/* imap_sort_answer - SORT or ESEARCH for a SORT */
void
imap_sort_answer(const struct imap_search_eval *ev,
    const struct imap_sort_program *sp, const char *tag, bool uid,
    bool condstore, struct buf *out)
{
	const uint32_t *num = uid ? ev->uid : ev->seq;
	uint32_t lo = 0, hi = 0;
	unsigned long long ms = 0, ms_lo = 0, ms_hi = 0;
	bool modseq = condstore && ev->uses_modseq && ev->n > 0;

	for (size_t i = 0; i < ev->n; i++) {
		if (i == 0 || num[i] < lo) {
			lo = num[i];
			ms_lo = ev->modseq[i];
		}
		if (num[i] > hi) {
			hi = num[i];
			ms_hi = ev->modseq[i];
		}
		if (ev->modseq[i] > ms)
			ms = ev->modseq[i];
	}
	if (!sp->esort) {
		buf_puts(out, "* SORT");
		for (size_t i = 0; i < ev->n; i++)
			buf_printf(out, " %u", num[i]);
		if (modseq)
			buf_printf(out, " (MODSEQ %llu)", ms);
		buf_puts(out, "\r\n");
		return;
	}
	if (sp->ret == IMAP_SR_SAVE)
		return;
	/* MIN and/or MAX alone: the MODSEQ of those (RFC 7162 3.1.5) */
	if ((sp->ret & (IMAP_SR_MIN | IMAP_SR_MAX)) &&
	    !(sp->ret & (IMAP_SR_ALL | IMAP_SR_COUNT))) {
		ms = 0;
		if (sp->ret & IMAP_SR_MIN)
			ms = ms_lo;
		if ((sp->ret & IMAP_SR_MAX) && ms_hi > ms)
			ms = ms_hi;
	}
	buf_puts(out, "* ESEARCH (TAG \"");
	for (const char *p = tag; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			buf_putc(out, '\\');
		buf_putc(out, *p);
	}
	buf_puts(out, "\")");
	if (uid)
		buf_puts(out, " UID");
	if ((sp->ret & IMAP_SR_MIN) && ev->n > 0)
		buf_printf(out, " MIN %u", lo);
	if ((sp->ret & IMAP_SR_MAX) && ev->n > 0)
		buf_printf(out, " MAX %u", hi);
	if (sp->ret & IMAP_SR_COUNT)
		buf_printf(out, " COUNT %zu", ev->n);
	if ((sp->ret & IMAP_SR_ALL) && ev->n > 0) {
		buf_puts(out, " ALL ");
		imap_search_set(out, num, ev->n);
	}
	if (modseq)
		buf_printf(out, " MODSEQ %llu", ms);
	buf_puts(out, "\r\n");
}
