/*
 * imapd_select - the selected state: SELECT and EXAMINE (RFC 9051
 * 6.3.2-6.3.3, with CONDSTORE and QRESYNC of RFC 7162), CLOSE, UNSELECT,
 * CHECK and NOOP, and the session's view of its folder.
 *
 * The view is the folder as the client knows it: sequence number i is
 * v.uid[i - 1]. It changes only when the client is told: before a tagged
 * answer, imapd_sel_update syncs the folder (new files get UIDs), lists
 * it, and compares: UIDs gone are sent as EXPUNGE (VANISHED with
 * QRESYNC), then new messages as EXISTS, then changed flags as FETCH
 * (with MODSEQ once CONDSTORE is on). RFC 9051 7.5.1 forbids EXPUNGE
 * during FETCH, STORE and SEARCH: then the update waits for the next
 * command.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "base/stream.h"
#include "mail/mindex.h"
#include "mail/mutf7.h"
#include "imapd.h"
#include "imapd_sel.h"
#include "imapd_store.h"

static const struct {
	uint32_t bit;
	const char *name;
} imapd_sel_sysflags[] = {
	{MINDEX_F_ANSWERED, "\\Answered"},
	{MINDEX_F_FLAGGED, "\\Flagged"},
	{MINDEX_F_DELETED, "\\Deleted"},
	{MINDEX_F_SEEN, "\\Seen"},
	{MINDEX_F_DRAFT, "\\Draft"},
};
#define NSYSFLAGS (sizeof(imapd_sel_sysflags) / sizeof(imapd_sel_sysflags[0]))

/* the last session number given (imapd_sel.id) */
static uint64_t imapd_sel_ids;
/* the worker's records, via all_next */
static struct imapd_sel *imapd_sel_all;

/* imapd_sel_get - the record, made at the first need */
struct imapd_sel *
imapd_sel_get(struct imapd_session *s)
{
	if (s->sel == NULL) {
		s->sel = xcalloc(1, sizeof(*s->sel));
		buf_init(&s->sel->idle_tag);
		s->sel->watch = -1;
		s->sel->owner = s;
		s->sel->id = ++imapd_sel_ids;
		s->sel->all_next = imapd_sel_all;
		if (imapd_sel_all != NULL)
			imapd_sel_all->all_prev = s->sel;
		imapd_sel_all = s->sel;
	}
	return s->sel;
}

/* imapd_sel_find - the record numbered id, or NULL (its session ended);
 * a walk over the worker's sessions: for the rare case only */
static struct imapd_sel *
imapd_sel_find(uint64_t id)
{
	for (struct imapd_sel *sel = imapd_sel_all; sel != NULL;
	    sel = sel->all_next)
		if (sel->id == id)
			return sel;
	return NULL;
}

/*
 * A listing shared by views (struct imapd_view.share): its arrays are
 * read-only while shared; the count is atomic because the worker's
 * listing cache takes and drops references on job threads.
 */
struct imapd_listing {
	atomic_uint refs;
	struct imapd_view v;	/* the arrays (v.share NULL) */
};

/* imapd_sel_arrays_free - free a view's own arrays */
static void
imapd_sel_arrays_free(struct imapd_view *v)
{
	free(v->uid);
	free(v->flags);
	free(v->kw);
	free(v->modseq);
	memset(v, 0, sizeof(*v));
}

/* imapd_sel_view_free - forget a view (drop its shared listing) */
static void
imapd_sel_view_free(struct imapd_view *v)
{
	struct imapd_listing *l = v->share;

	if (l == NULL) {
		imapd_sel_arrays_free(v);
		return;
	}
	memset(v, 0, sizeof(*v));
	if (atomic_fetch_sub(&l->refs, 1) == 1) {
		imapd_sel_arrays_free(&l->v);
		free(l);
	}
}

/* imapd_sel_view_add - append one message (a view being built: own) */
static void
imapd_sel_view_add(struct imapd_view *v, const struct mindex_msg *m)
{
	if (v->share != NULL)
		msg_panic("imapd_sel_view_add: shared view");
	if (v->n == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 64;
		v->uid = xreallocarray(v->uid, v->cap, sizeof(*v->uid));
		v->flags = xreallocarray(v->flags, v->cap, sizeof(*v->flags));
		v->kw = xreallocarray(v->kw, v->cap, sizeof(*v->kw));
		v->modseq = xreallocarray(v->modseq, v->cap,
		    sizeof(*v->modseq));
	}
	v->uid[v->n] = m->uid;
	v->flags[v->n] = m->flags;
	v->kw[v->n] = m->keywords;
	v->modseq[v->n] = m->modseq;
	v->n++;
}

static uint32_t imapd_sel_bsearch(const struct imapd_view *, uint32_t);

/* imapd_sel_view_copy - dst (empty) gets its own copy of src */
static void
imapd_sel_view_copy(struct imapd_view *dst, const struct imapd_view *src)
{
	size_t n = src->n ? src->n : 1;

	memset(dst, 0, sizeof(*dst));
	dst->n = src->n;
	dst->cap = (uint32_t)n;
	dst->uid = xreallocarray(NULL, n, sizeof(*dst->uid));
	dst->flags = xreallocarray(NULL, n, sizeof(*dst->flags));
	dst->kw = xreallocarray(NULL, n, sizeof(*dst->kw));
	dst->modseq = xreallocarray(NULL, n, sizeof(*dst->modseq));
	if (src->n > 0) {
		memcpy(dst->uid, src->uid, src->n * sizeof(*dst->uid));
		memcpy(dst->flags, src->flags, src->n * sizeof(*dst->flags));
		memcpy(dst->kw, src->kw, src->n * sizeof(*dst->kw));
		memcpy(dst->modseq, src->modseq, src->n *
		    sizeof(*dst->modseq));
	}
}

/* imapd_sel_view_ref - dst (empty) shares src's listing (src is made
 * shared first if it owns its arrays): no copy */
static void
imapd_sel_view_ref(struct imapd_view *dst, struct imapd_view *src)
{
	if (src->share == NULL) {
		struct imapd_listing *l = xcalloc(1, sizeof(*l));

		l->v = *src;
		atomic_init(&l->refs, 1);
		src->share = l;
	}
	atomic_fetch_add(&src->share->refs, 1);
	*dst = *src;
}

/* imapd_sel_view_own - copy on write (see imapd_sel.h) */
void
imapd_sel_view_own(struct imapd_view *v)
{
	struct imapd_view mine;

	if (v->share == NULL)
		return;
	imapd_sel_view_copy(&mine, v);
	imapd_sel_view_free(v);
	*v = mine;
}

/* imapd_sel_put_stored - see imapd_sel.h */
void
imapd_sel_put_stored(struct imapd_session *s, const uint32_t *uids,
    const int *rc, const struct mindex_msg *m, uint32_t n, bool tell)
{
	struct imapd_sel *sel = s->sel;

	for (uint32_t j = 0; j < n; j++) {
		long i = imapd_sel_index(sel, uids[j]);

		if (rc[j] != 1 || i < 0)
			continue;
		imapd_sel_view_own(&sel->v);	/* copy on write */
		sel->v.flags[i] = m[j].flags;
		sel->v.kw[i] = m[j].keywords;
		sel->v.modseq[i] = m[j].modseq;
		if (tell)
			imapd_sel_fetch_line(s, (uint32_t)i);
	}
}

/*
 * imapd_sel_recent_add - UIDs [lo, hi) are \Recent for sel (claimed by
 * it, or seen unclaimed by a rev1 EXAMINE), merged into its ranges. Claims
 * can come back out of order (IDLE's folder job and the session's own job
 * run side by side) and another session may claim between two of ours,
 * so there may be more than one range; they stay sorted and apart.
 */
static void
imapd_sel_recent_add(struct imapd_sel *sel, uint32_t lo, uint32_t hi)
{
	uint32_t i, j;

	if (hi <= lo)
		return;
	/* i: the first range that ends at lo or later */
	for (i = sel->nrecent; i > 0 && sel->recent[i - 1].hi >= lo; i--)
		;
	/* [i, j): the ranges that touch [lo, hi), merged into it */
	for (j = i; j < sel->nrecent && sel->recent[j].lo <= hi; j++) {
		if (sel->recent[j].lo < lo)
			lo = sel->recent[j].lo;
		if (sel->recent[j].hi > hi)
			hi = sel->recent[j].hi;
	}
	if (j == i) {
		if (sel->nrecent == sel->recentcap) {
			sel->recentcap = sel->recentcap ? sel->recentcap * 2 :
			    4;
			sel->recent = xreallocarray(sel->recent,
			    sel->recentcap, sizeof(*sel->recent));
		}
		memmove(&sel->recent[i + 1], &sel->recent[i],
		    (sel->nrecent - i) * sizeof(*sel->recent));
		sel->nrecent++;
	} else if (j > i + 1) {
		memmove(&sel->recent[i + 1], &sel->recent[j],
		    (sel->nrecent - j) * sizeof(*sel->recent));
		sel->nrecent -= j - i - 1;
	}
	sel->recent[i].lo = lo;
	sel->recent[i].hi = hi;
}

/* imapd_sel_recent_has - is uid \Recent for sel? */
static bool
imapd_sel_recent_has(const struct imapd_sel *sel, uint32_t uid)
{
	uint32_t a = 0, b = sel->nrecent;

	/* a: past the last range that starts at uid or below */
	while (a < b) {
		uint32_t m = a + (b - a) / 2;

		if (sel->recent[m].lo <= uid)
			a = m + 1;
		else
			b = m;
	}
	return a > 0 && uid < sel->recent[a - 1].hi;
}

/* imapd_sel_vflags - a view message's flags with \Recent */
uint32_t
imapd_sel_vflags(const struct imapd_sel *sel, uint32_t i)
{
	uint32_t f = sel->v.flags[i];

	if (sel->nrecent > 0 && imapd_sel_recent_has(sel, sel->v.uid[i]))
		f |= IMAPD_VF_RECENT;
	return f;
}

/* imapd_sel_recent_count - the messages of v that are \Recent for sel;
 * prune: forget the ranges below UIDNEXT with none of them (expunged) */
static uint32_t
imapd_sel_recent_count(struct imapd_sel *sel, const struct imapd_view *v,
    bool prune)
{
	uint32_t n = 0, k = 0;

	for (uint32_t r = 0; r < sel->nrecent; r++) {
		uint32_t a = imapd_sel_bsearch(v, sel->recent[r].lo);
		uint32_t b = imapd_sel_bsearch(v, sel->recent[r].hi);

		n += b - a;
		if (prune && a == b && sel->recent[r].hi <= sel->uidnext)
			continue;
		sel->recent[k++] = sel->recent[r];
	}
	sel->nrecent = k;
	return n;
}

/* imapd_sel_recent_claimed - s claimed UIDs [lo, hi) after its SELECT:
 * those already in its view are told as FETCH (their flags changed) */
static void
imapd_sel_recent_claimed(struct imapd_session *s, uint32_t lo,
    uint32_t hi)
{
	struct imapd_sel *sel = s->sel;

	if (hi <= lo)
		return;
	imapd_sel_recent_add(sel, lo, hi);
	for (uint32_t i = imapd_sel_bsearch(&sel->v, lo); i < sel->v.n &&
	    sel->v.uid[i] < hi; i++)
		imapd_sel_fetch_line(s, i);
}

/* imapd_sel_kw_free - forget the keyword names */
static void
imapd_sel_kw_free(struct imapd_sel *sel)
{
	for (int i = 0; i < sel->nkw; i++)
		free(sel->kwname[i]);
	sel->nkw = 0;
}

/* imapd_sel_unselect_now - back to the authenticated state */
static void
imapd_sel_unselect_now(struct imapd_session *s)
{
	struct imapd_sel *sel = s->sel;

	if (sel == NULL)
		return;
	imapd_idle_stop(s);
	imapd_sel_view_free(&sel->v);
	imapd_sel_kw_free(sel);
	imapd_search_reset(sel);
	free(sel->folder);
	sel->folder = NULL;
	sel->readonly = false;
	mindex_stamp_spoil(&sel->stamp);
	sel->nrecent = 0;
	if (s->state == IMAPD_S_SELECTED)
		s->state = IMAPD_S_AUTH;
}

/* imapd_sel_free - the session ends */
void
imapd_sel_free(struct imapd_session *s)
{
	if (s->sel == NULL)
		return;
	imapd_fetch_free(s);
	imapd_sel_unselect_now(s);
	if (s->sel->all_prev != NULL)
		s->sel->all_prev->all_next = s->sel->all_next;
	else
		imapd_sel_all = s->sel->all_next;
	if (s->sel->all_next != NULL)
		s->sel->all_next->all_prev = s->sel->all_prev;
	free(s->sel->recent);
	buf_free(&s->sel->idle_tag);
	x_free(&s->sel);
}

/* imapd_sel_write - one response line of any length */
void
imapd_sel_write(struct imapd_session *s, const char *p, size_t n)
{
	if (s->state == IMAPD_S_LOGOUT || s->base.closed)
		return;
	stream_write(s->base.stream, p, n);
	stream_write(s->base.stream, "\r\n", 2);
}

/* imapd_sel_flags - the flag list of a message */
void
imapd_sel_flags(const struct imapd_sel *sel, uint32_t flags, uint32_t kw,
    struct buf *out)
{
	bool first = true;

	buf_putc(out, '(');
	for (size_t i = 0; i < NSYSFLAGS; i++) {
		if (flags & imapd_sel_sysflags[i].bit) {
			if (!first)
				buf_putc(out, ' ');
			buf_puts(out, imapd_sel_sysflags[i].name);
			first = false;
		}
	}
	if (flags & IMAPD_VF_RECENT) {
		buf_puts(out, first ? "\\Recent" : " \\Recent");
		first = false;
	}
	for (int i = 0; i < sel->nkw; i++) {
		if (kw & (1U << i)) {
			if (!first)
				buf_putc(out, ' ');
			buf_puts(out, sel->kwname[i]);
			first = false;
		}
	}
	buf_putc(out, ')');
}

/* imapd_sel_fetch_lines - view-only FETCH answers in bulk (see
 * imapd_sel.h) */
void
imapd_sel_fetch_lines(const struct imapd_sel *sel, const unsigned char *map,
    uint32_t n, uint32_t *next, uint64_t changedsince, const char *items,
    struct buf *out, size_t max)
{
	const struct imapd_view *v = &sel->v;
	struct buf fl = BUF_INIT;
	uint32_t i, f, lastf = 0, lastk = 0;
	bool have = false;

	if (n > v->n)
		n = v->n;
	for (i = *next; i < n && out->len < max; i++) {
		if (!(map[i / 8] & (1U << (i % 8))) ||
		    v->modseq[i] <= changedsince)
			continue;
		buf_puts(out, "* ");
		imap_write_number(out, i + 1);
		buf_puts(out, " FETCH (");
		for (const char *it = items; *it; it++) {
			if (it != items)
				buf_putc(out, ' ');
			switch (*it) {
			case 'U':
				buf_puts(out, "UID ");
				imap_write_number(out, v->uid[i]);
				break;
			case 'F':
				/* most messages share their flags: the list
				 * is made again only when they differ */
				f = imapd_sel_vflags(sel, i);
				if (!have || f != lastf || v->kw[i] != lastk) {
					buf_reset(&fl);
					imapd_sel_flags(sel, f, v->kw[i], &fl);
					lastf = f;
					lastk = v->kw[i];
					have = true;
				}
				buf_puts(out, "FLAGS ");
				buf_append(out, fl.data, fl.len);
				break;
			case 'M':
				buf_puts(out, "MODSEQ (");
				imap_write_number(out, v->modseq[i]);
				buf_putc(out, ')');
				break;
			}
		}
		buf_puts(out, ")\r\n");
	}
	*next = i;
	buf_free(&fl);
}

/* imapd_sel_keyword_ok - may p[0..n) be a keyword (an atom without
 * '\', '[' or ']')? */
static bool
imapd_sel_keyword_ok(const char *p, size_t n)
{
	if (n == 0 || n > MINDEX_KEYWORD_LEN)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)p[i];

		if (ch <= 0x20 || ch >= 0x7f || strchr("(){%*\"\\]", ch))
			return false;
	}
	return true;
}

/* imapd_sel_parse_flags - a flag list after its "(" up to ")" (paren
 * false: flags up to the end of the command); \Recent is none (STORE,
 * APPEND: BAD, as Dovecot answers) */
int
imapd_sel_parse_flags(struct imap_cursor *c, bool paren, uint32_t *flags,
    char **kw, size_t *nkw, const char **why)
{
	struct imap_token t;
	size_t i;

	*flags = 0;
	*nkw = 0;
	while (imap_cursor_next(c, &t) == IMAP_TOK_ATOM) {
		if (t.len > 0 && t.p[0] == '\\') {
			for (i = 0; i < NSYSFLAGS; i++)
				if (imap_tok_is(&t, imapd_sel_sysflags[i].name))
					break;
			if (i < NSYSFLAGS) {
				*flags |= imapd_sel_sysflags[i].bit;
			} else if (imap_tok_is(&t, "\\Recent")) {
				/* RFC 3501's flag excludes it (the server
				 * alone sets it, 2.3.2); RFC 9051 has none */
				*why = "Invalid system flag \\Recent: only "
				    "the server sets it";
				goto fail;
			} else {
				*why = "Unknown system flag";
				goto fail;
			}
			continue;
		}
		if (!imapd_sel_keyword_ok(t.p, t.len)) {
			*why = "Invalid keyword";
			goto fail;
		}
		for (i = 0; i < *nkw; i++)
			if (strlen(kw[i]) == t.len &&
			    str_ncasecmp(kw[i], t.p, t.len) == 0)
				break;
		if (i < *nkw)
			continue;
		if (*nkw >= MINDEX_KEYWORDS_MAX) {
			*why = "Too many keywords";
			goto fail;
		}
		kw[(*nkw)++] = xstrndup(t.p, t.len);
	}
	if (t.type != (paren ? IMAP_TOK_CLOSE : IMAP_TOK_END)) {
		*why = "Flags must be a list of flag atoms";
		goto fail;
	}
	return 0;
fail:
	for (i = 0; i < *nkw; i++)
		free(kw[i]);
	*nkw = 0;
	return -1;
}

/* imapd_sel_bsearch - the first index whose UID is >= uid */
static uint32_t
imapd_sel_bsearch(const struct imapd_view *v, uint32_t uid)
{
	uint32_t lo = 0, hi = v->n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (v->uid[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* imapd_sel_index - see imapd_sel.h */
long
imapd_sel_index(const struct imapd_sel *sel, uint32_t uid)
{
	uint32_t i = imapd_sel_bsearch(&sel->v, uid);

	return i < sel->v.n && sel->v.uid[i] == uid ? (long)i : -1;
}

/* imapd_sel_mark - set bits lo..hi (inclusive) of map, whole bytes at
 * once: a set of 10,000 ranges "1:*" costs 10,000 memsets, not 10,000
 * walks over the folder */
static void
imapd_sel_mark(unsigned char *map, uint32_t lo, uint32_t hi)
{
	while (lo <= hi && lo % 8 != 0) {
		map[lo / 8] |= (unsigned char)(1U << (lo % 8));
		if (lo++ == hi)
			return;
	}
	if (hi - lo + 1 >= 8) {
		uint32_t bytes = (hi - lo + 1) / 8;

		memset(map + lo / 8, 0xff, bytes);
		lo += bytes * 8;
	}
	for (; lo <= hi; lo++)
		map[lo / 8] |= (unsigned char)(1U << (lo % 8));
}

/* imapd_sel_set - a sequence set as a bitmap of view indices */
int
imapd_sel_set(const struct imapd_sel *sel, const char *p, size_t n,
    bool uid, unsigned char **map_r)
{
	const struct imapd_view *v = &sel->v;
	struct imap_seqset set;
	unsigned char *map;
	uint32_t max, lo, hi;

	*map_r = NULL;
	if (imap_seqset_parse(p, n, &set) < 0)
		return -1;
	if (set.saved) {
		/* SEARCHRES: the saved UIDs (imapd_search.c) still there;
		 * none saved is the empty set (RFC 5182 2.1) */
		imap_seqset_free(&set);
		map = xcalloc(v->n / 8 + 1, 1);
		for (size_t i = 0; i < sel->nsaved; i++) {
			uint32_t a = imapd_sel_bsearch(v, sel->saved[i]);

			if (a < v->n && v->uid[a] == sel->saved[i])
				imapd_sel_mark(map, a, a);
		}
		*map_r = map;
		return 0;
	}
	map = xcalloc(v->n / 8 + 1, 1);
	max = uid ? (v->n ? v->uid[v->n - 1] : 0) : v->n;
	for (size_t i = 0; i < set.n; i++) {
		lo = set.r[i].lo ? set.r[i].lo : max;
		hi = set.r[i].hi ? set.r[i].hi : max;
		if (lo > hi) {
			uint32_t t = lo;

			lo = hi;
			hi = t;
		}
		if (!uid) {
			/* RFC 9051 9 (seq-number): out of range is BAD */
			if (lo == 0 || hi > v->n)
				goto bad;
			imapd_sel_mark(map, lo - 1, hi - 1);
			continue;
		}
		/* UIDs out of range are just not there */
		{
			uint32_t a = imapd_sel_bsearch(v, lo);
			uint32_t b = hi == UINT32_MAX ? v->n :
			    imapd_sel_bsearch(v, hi + 1);

			if (a < b)
				imapd_sel_mark(map, a, b - 1);
		}
	}
	imap_seqset_free(&set);
	*map_r = map;
	return 0;
bad:
	imap_seqset_free(&set);
	free(map);
	return -1;
}

/* imapd_sel_load_fn - one message of a listing into the view */
static int
imapd_sel_load_fn(const struct mindex_msg *m, void *ctx)
{
	imapd_sel_view_add(ctx, m);
	return 0;
}

/*
 * imapd_sel_load - sync (if asked) and list the folder; its stamp into
 * *stamp if not NULL: 0. keep (if not NULL): the UIDVALIDITY, UIDNEXT
 * and HIGHESTMODSEQ of a view of the folder; when the sync changed
 * nothing and the folder's record still says the same, that view is
 * the folder as it is: nothing is listed, *st gets only those three,
 * and 1 says so (a NOOP after the doubt of its stamp reads cur/, but
 * not 100,000 records again). -1 with why.
 */
static int
imapd_sel_load(struct mindex *ix, const char *folder, bool sync,
    const struct mindex_status *keep, struct imapd_view *v,
    struct mindex_status *st, struct buf *kw, struct mindex_stamp *stamp,
    struct buf *why)
{
	struct mindex_sync_result r;
	struct mindex_stamp pre, post, now;

	memset(v, 0, sizeof(*v));
	/* before the sync: a change after it moves an mtime */
	if (mindex_stamp(ix, folder, &pre, why) < 0) {
		mindex_stamp_spoil(&pre);
		buf_reset(why);
	}
	if (sync && mindex_sync(ix, folder, &r, why) < 0)
		return -1;
	/* its own moves moved the mtimes: re-read them (untrusted), or
	 * the next command would read cur/ again for nothing */
	if (sync && r.moved > 0) {
		if (mindex_stamp_after(ix, folder, &pre, &post, why) == 0)
			pre = post;
		else
			mindex_stamp_spoil(&pre);
		buf_reset(why);
	}
	/* nothing changed, and every modseq and UID is the view's */
	if (keep != NULL && sync && r.added == 0 && r.expunged == 0 &&
	    r.changed == 0 && r.moved == 0 && mindex_stamp(ix, folder, &now,
	    why) == 0 && now.uidvalidity == keep->uidvalidity &&
	    now.uidnext == keep->uidnext &&
	    now.highestmodseq == keep->highestmodseq) {
		if (mindex_keywords(ix, folder, kw, why) < 0)
			return -1;
		memset(st, 0, sizeof(*st));
		st->uidvalidity = now.uidvalidity;
		st->uidnext = now.uidnext;
		st->highestmodseq = now.highestmodseq;
		mindex_stamp_status(&pre, st);
		if (stamp != NULL)
			*stamp = pre;
		return 1;
	}
	buf_reset(why);
	/* the status and the listing in one walk */
	if (mindex_keywords(ix, folder, kw, why) < 0 ||
	    mindex_snapshot(ix, folder, st, imapd_sel_load_fn, v, why) < 0) {
		imapd_sel_view_free(v);
		return -1;
	}
	mindex_stamp_status(&pre, st);
	if (stamp != NULL)
		*stamp = pre;
	return 0;
}

/* imapd_sel_set_keywords - the keyword names from their '\n' list;
 * true if they changed */
static bool
imapd_sel_set_keywords(struct imapd_sel *sel, const struct buf *kw)
{
	const char *p = buf_cstr(kw), *e;
	char *names[MINDEX_KEYWORDS_MAX];
	int n = 0;
	bool changed;

	while (*p && n < MINDEX_KEYWORDS_MAX && (e = strchr(p, '\n'))) {
		names[n++] = xstrndup(p, (size_t)(e - p));
		p = e + 1;
	}
	changed = n != sel->nkw;
	for (int i = 0; !changed && i < n; i++)
		changed = strcmp(names[i], sel->kwname[i]) != 0;
	imapd_sel_kw_free(sel);
	memcpy(sel->kwname, names, sizeof(names[0]) * (size_t)n);
	sel->nkw = n;
	return changed;
}

/* imapd_sel_flag_lines - the FLAGS and PERMANENTFLAGS responses */
static void
imapd_sel_flag_lines(struct imapd_session *s)
{
	struct imapd_sel *sel = s->sel;
	struct buf b = BUF_INIT;

	buf_puts(&b, "* FLAGS ");
	imapd_sel_flags(sel, MINDEX_F_ALL, sel->nkw >= 32 ? ~0U :
	    (1U << sel->nkw) - 1, &b);
	imapd_sel_write(s, b.data, b.len);
	buf_reset(&b);
	if (sel->readonly) {
		buf_puts(&b, "* OK [PERMANENTFLAGS ()] Read-only mailbox");
	} else {
		buf_puts(&b, "* OK [PERMANENTFLAGS ");
		imapd_sel_flags(sel, MINDEX_F_ALL, sel->nkw >= 32 ? ~0U :
		    (1U << sel->nkw) - 1, &b);
		buf_truncate(&b, b.len - 1);
		buf_puts(&b, sel->nkw < MINDEX_KEYWORDS_MAX ? " \\*)] Flags "
		    "permitted" : ")] Flags permitted");
		/* "( \*)" when no flag precedes */
		if (strncmp(b.data, "* OK [PERMANENTFLAGS ( ", 23) == 0)
			memmove(b.data + 22, b.data + 23, b.len - 22);
	}
	imapd_sel_write(s, b.data, strlen(b.data));
	buf_free(&b);
}

/* imapd_sel_fetch_line - see imapd_sel.h */
void
imapd_sel_fetch_line(struct imapd_session *s, uint32_t i)
{
	struct imapd_sel *sel = s->sel;
	struct buf b = BUF_INIT;

	buf_printf(&b, "* %u FETCH (UID %u FLAGS ", i + 1, sel->v.uid[i]);
	imapd_sel_flags(sel, imapd_sel_vflags(sel, i), sel->v.kw[i], &b);
	if (sel->condstore)
		buf_printf(&b, " MODSEQ (%llu)",
		    (unsigned long long)sel->v.modseq[i]);
	buf_putc(&b, ')');
	imapd_sel_write(s, b.data, b.len);
	buf_free(&b);
}

/* imapd_sel_uidset - append UIDs (sorted) as a compact set */
static void
imapd_sel_uidset(struct buf *out, const uint32_t *u, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t j = i;

		while (j + 1 < n && u[j + 1] == u[j] + 1)
			j++;
		if (out->len > 0 && out->data[out->len - 1] != ' ')
			buf_putc(out, ',');
		if (j > i)
			buf_printf(out, "%u:%u", u[i], u[j]);
		else
			buf_printf(out, "%u", u[i]);
		i = j + 1;
	}
}

/*
 * imapd_sel_apply - tell the client how nv differs from its view, and
 * make nv the view.
 */
static void
imapd_sel_apply(struct imapd_session *s, struct imapd_view *nv,
    const struct mindex_status *st, bool kw_changed)
{
	struct imapd_sel *sel = s->sel;
	struct imapd_view *ov = &sel->v;
	uint32_t i = 0, j = 0, removed = 0, *gone = NULL, ngone = 0;
	uint32_t *changed = NULL, nchanged = 0;
	struct buf b = BUF_INIT;

	if (ov->n > 0) {
		gone = xcalloc(ov->n, sizeof(*gone));
		changed = xcalloc(ov->n, sizeof(*changed));
	}
	for (i = 0; i < ov->n; i++) {
		while (j < nv->n && nv->uid[j] < ov->uid[i])
			j++;
		if (j >= nv->n || nv->uid[j] != ov->uid[i]) {
			gone[ngone++] = ov->uid[i];
			if (!sel->qresync) {
				buf_reset(&b);
				buf_printf(&b, "* %u EXPUNGE", i + 1 - removed);
				imapd_sel_write(s, b.data, b.len);
			}
			removed++;
			continue;
		}
		if (ov->flags[i] != nv->flags[j] || ov->kw[i] != nv->kw[j] ||
		    (sel->condstore && ov->modseq[i] != nv->modseq[j]))
			changed[nchanged++] = j;
	}
	if (sel->qresync && ngone > 0) {
		buf_reset(&b);
		buf_puts(&b, "* VANISHED ");
		imapd_sel_uidset(&b, gone, ngone);
		imapd_sel_write(s, b.data, b.len);
	}
	if (nv->n != ov->n - removed) {
		buf_reset(&b);
		buf_printf(&b, "* %u EXISTS", nv->n);
		imapd_sel_write(s, b.data, b.len);
		if (!s->rev2) {
			buf_reset(&b);
			buf_printf(&b, "* %u RECENT",
			    imapd_sel_recent_count(sel, nv, false));
			imapd_sel_write(s, b.data, b.len);
		}
	}
	imapd_sel_view_free(ov);
	*ov = *nv;
	memset(nv, 0, sizeof(*nv));
	sel->uidnext = st->uidnext;
	sel->highestmodseq = st->highestmodseq;
	if (sel->nrecent > 1)
		(void)imapd_sel_recent_count(sel, ov, true);
	if (kw_changed)
		imapd_sel_flag_lines(s);
	for (i = 0; i < nchanged; i++)
		imapd_sel_fetch_line(s, changed[i]);
	free(gone);
	free(changed);
	buf_free(&b);
}

/* imapd_sel_absorb - a fresh listing: tell what changed and keep it
 * (allow_expunge false and something was expunged: drop it and wait,
 * false) */
static bool
imapd_sel_absorb(struct imapd_session *s, struct imapd_view *nv,
    const struct mindex_status *st, const struct buf *kw,
    bool allow_expunge)
{
	struct imapd_sel *sel = s->sel;
	uint32_t j = 0;
	bool kwc;

	/* keywords only grow: new names are told at once (a STORE's own
	 * answer may carry them) */
	kwc = imapd_sel_set_keywords(sel, kw);
	if (!allow_expunge) {
		/* any UID of the view gone? then wait */
		for (uint32_t i = 0; i < sel->v.n; i++) {
			while (j < nv->n && nv->uid[j] < sel->v.uid[i])
				j++;
			if (j >= nv->n || nv->uid[j] != sel->v.uid[i]) {
				imapd_sel_view_free(nv);
				if (kwc)
					imapd_sel_flag_lines(s);
				return false;
			}
		}
	}
	imapd_sel_apply(s, nv, st, kwc);
	return true;
}

/* imapd_sel_drop - an own EXPUNGE's UIDs leave the view (see
 * imapd_sel.h) */
void
imapd_sel_drop(struct imapd_session *s, const uint32_t *uids, size_t n)
{
	struct imapd_sel *sel = s->sel;
	struct imapd_view nv;
	struct mindex_status st;
	size_t j = 0;

	if (n == 0)
		return;
	memset(&nv, 0, sizeof(nv));
	for (uint32_t i = 0; i < sel->v.n; i++) {
		struct mindex_msg m;

		while (j < n && uids[j] < sel->v.uid[i])
			j++;
		if (j < n && uids[j] == sel->v.uid[i])
			continue;
		m.uid = sel->v.uid[i];
		m.flags = sel->v.flags[i];
		m.keywords = sel->v.kw[i];
		m.modseq = sel->v.modseq[i];
		imapd_sel_view_add(&nv, &m);
	}
	memset(&st, 0, sizeof(st));
	st.uidvalidity = sel->uidvalidity;
	st.uidnext = sel->uidnext;
	st.highestmodseq = sel->highestmodseq;
	imapd_sel_apply(s, &nv, &st, false);
}

/* imapd_sel_add - an own APPEND's or COPY's messages join the view (see
 * imapd_sel.h) */
void
imapd_sel_add(struct imapd_session *s, const struct mindex_msg *m, size_t n)
{
	struct imapd_sel *sel = s->sel;
	struct imapd_view nv;
	struct mindex_status st;

	if (n == 0)
		return;
	imapd_sel_view_copy(&nv, &sel->v);
	for (size_t i = 0; i < n; i++)
		imapd_sel_view_add(&nv, &m[i]);
	memset(&st, 0, sizeof(st));
	st.uidvalidity = sel->uidvalidity;
	st.uidnext = sel->stamp.uidnext;
	st.highestmodseq = sel->highestmodseq;
	imapd_sel_apply(s, &nv, &st, false);
}

/* imapd_sel_added - see imapd_sel.h */
int
imapd_sel_added(struct mindex *ix, const char *folder, const uint32_t *uids,
    size_t n, struct mindex_msg **m_r, size_t *n_r)
{
	struct mindex_msg *m = xcalloc(n ? n : 1, sizeof(*m));
	struct buf why = BUF_INIT;
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		if (uids[i] == 0)
			continue;
		if (mindex_get(ix, folder, uids[i], &m[k], &why) != 1)
			break;
		if (k > 0 && m[k].uid <= m[k - 1].uid)
			break;	/* (never: UIDs are given in order) */
		k++;
	}
	buf_free(&why);
	free(*m_r);
	*m_r = m;
	*n_r = k;
	for (size_t i = 0; i < n; i++)
		if (uids[i] != 0 && k-- == 0)
			return -1;
	return 0;
}

/* imapd_sel_update - sync and tell what changed (on the loop: after a
 * command that changed the folder itself) */
void
imapd_sel_update(struct imapd_session *s, bool allow_expunge)
{
	struct imapd_sel *sel = s->sel;
	struct mindex *ix = imapd_store_index(s);
	struct imapd_view nv;
	struct mindex_status st;
	struct buf kw = BUF_INIT, why = BUF_INIT;

	if (sel == NULL || sel->folder == NULL || ix == NULL ||
	    s->state != IMAPD_S_SELECTED)
		return;
	mindex_stamp_spoil(&sel->stamp);
	if (imapd_sel_load(ix, sel->folder, true, NULL, &nv, &st, &kw, NULL,
	    &why) < 0)
		msg_warn("%s: folder %s: %s", buf_cstr(&s->login),
		    sel->folder, buf_cstr(&why));
	else
		imapd_sel_absorb(s, &nv, &st, &kw, allow_expunge);
	buf_free(&kw);
	buf_free(&why);
}

/* imapd_sel_folder_dir - the folder's directory */
int
imapd_sel_folder_dir(struct imapd_session *s, const char *folder,
    struct buf *out)
{
	struct buf why = BUF_INIT, disk = BUF_INIT;
	int rc;

	buf_reset(out);
	rc = mutf7_folder_disk(folder, &disk, &why);
	buf_puts(out, imapd_store_path(s));
	if (disk.len > 0)
		buf_putc(out, '/');
	buf_append(out, disk.data, disk.len);
	buf_free(&why);
	buf_free(&disk);
	return rc;
}

/* imapd_sel_resolve - a mailbox argument to its UTF-8 name */
int
imapd_sel_resolve(struct imapd_session *s, struct imap_cursor *c,
    struct buf *name)
{
	struct imap_token t;
	struct buf raw = BUF_INIT, why = BUF_INIT;
	int rc = 0;

	if (imap_cursor_next(c, &t) != IMAP_TOK_ATOM &&
	    t.type != IMAP_TOK_STRING) {
		imapd_session_bad(s, "BAD Syntax: mailbox name expected");
		return -1;
	}
	imap_tok_string(&t, &raw);
	buf_reset(name);
	if (mutf7_folder_name(buf_cstr(&raw), imapd_store_utf8(s), name,
	    &why) < 0) {
		imapd_session_tagged(s, "NO [CANNOT] Invalid mailbox name: "
		    "%s", buf_cstr(&why));
		rc = -1;
	}
	buf_free(&raw);
	buf_free(&why);
	return rc;
}

/* imapd_sel_enable - ENABLE CONDSTORE / QRESYNC (RFC 7162 3.1.1, 3.2.3) */
bool
imapd_sel_enable(struct imapd_session *s, const char *name, size_t n,
    struct buf *out)
{
	struct imapd_sel *sel = imapd_sel_get(s);

	if (n == 9 && str_ncasecmp(name, "CONDSTORE", 9) == 0) {
		if (!sel->condstore)
			buf_puts(out, " CONDSTORE");
		sel->condstore = true;
		return true;
	}
	if (n == 7 && str_ncasecmp(name, "QRESYNC", 7) == 0) {
		if (!sel->qresync)
			buf_puts(out, " QRESYNC");
		sel->qresync = true;
		sel->condstore = true;
		return true;
	}
	return false;
}

/* imapd_sel_condstore - a CONDSTORE-enabling command was used */
void
imapd_sel_condstore(struct imapd_session *s)
{
	struct imapd_sel *sel = imapd_sel_get(s);

	if (!sel->condstore && sel->folder != NULL) {
		char line[80];
		int len = snprintf(line, sizeof(line),
		    "* OK [HIGHESTMODSEQ %llu] CONDSTORE enabled",
		    (unsigned long long)sel->highestmodseq);

		imapd_sel_write(s, line, (size_t)len);
	}
	sel->condstore = true;
}

/* imapd_sel_capability - what the selected state adds */
void
imapd_sel_capability(struct buf *out)
{
	buf_printf(out, " IDLE UNSELECT UIDPLUS MOVE CONDSTORE QRESYNC "
	    "MULTIAPPEND BINARY APPENDLIMIT=%llu", imapd_append_limit());
}

/* the QRESYNC parameters of SELECT (RFC 7162 3.2.5) */
struct imapd_qresync {
	bool on;
	uint32_t uidvalidity;
	uint64_t modseq;
	struct imap_seqset known;	/* known-uids; n = 0: none */
	/* seq-match-data (RFC 7162 3.2.5.2): message numbers and the UIDs
	 * the client had for them, ascending, the same count; n = 0: none */
	struct imap_seqset mseq, muid;
};

/* imapd_sel_matchset - a known-sequence-set or known-uid-set: no "$", no
 * "*", ranges ascending and apart (RFC 7162 9: "in ascending order",
 * "* is not allowed"); its ranges made lo <= hi, its count in *count;
 * 0, or -1 */
static int
imapd_sel_matchset(const char *p, size_t n, struct imap_seqset *set,
    uint64_t *count)
{
	*count = 0;
	if (imap_seqset_parse(p, n, set) < 0)
		return -1;
	if (set->saved)
		return -1;
	for (size_t i = 0; i < set->n; i++) {
		struct imap_range *r = &set->r[i];

		if (r->lo == 0 || r->hi == 0)
			return -1;
		if (r->lo > r->hi) {
			uint32_t t = r->lo;

			r->lo = r->hi;
			r->hi = t;
		}
		if (i > 0 && r->lo <= set->r[i - 1].hi)
			return -1;
		*count += (uint64_t)r->hi - r->lo + 1;
	}
	return 0;
}

/* imapd_sel_params - "(CONDSTORE)" or "(QRESYNC (...))" after SELECT;
 * 0, -1 (syntax) or -2 (seq-match-data sets of different sizes) */
static int
imapd_sel_params(struct imapd_session *s, struct imap_cursor *c,
    struct imapd_qresync *q, bool *condstore)
{
	struct imap_token t;
	unsigned long long num;
	uint64_t nseq, nuid;

	if (imap_cursor_next(c, &t) == IMAP_TOK_END)
		return 0;
	if (t.type != IMAP_TOK_OPEN)
		return -1;
	while (imap_cursor_next(c, &t) == IMAP_TOK_ATOM) {
		if (imap_tok_is(&t, "CONDSTORE")) {
			*condstore = true;
			continue;
		}
		if (!imap_tok_is(&t, "QRESYNC") || !s->sel->qresync)
			return -1;
		q->on = true;
		if (imap_cursor_next(c, &t) != IMAP_TOK_OPEN ||
		    imap_cursor_next(c, &t) != IMAP_TOK_ATOM ||
		    imap_number(t.p, t.len, false, &num) < 0 || num == 0)
			return -1;
		q->uidvalidity = (uint32_t)num;
		if (imap_cursor_next(c, &t) != IMAP_TOK_ATOM ||
		    imap_number(t.p, t.len, true, &num) < 0 || num == 0)
			return -1;
		q->modseq = num;
		if (imap_cursor_next(c, &t) == IMAP_TOK_ATOM) {
			/* known-uids: a UID set, parsed once here */
			imap_seqset_free(&q->known);
			if (imap_seqset_parse(t.p, t.len, &q->known) < 0 ||
			    q->known.saved)
				return -1;
			imap_cursor_next(c, &t);
		}
		/* seq-match-data, with or without known-uids before it */
		if (t.type == IMAP_TOK_OPEN && q->mseq.n == 0) {
			if (imap_cursor_next(c, &t) != IMAP_TOK_ATOM ||
			    imapd_sel_matchset(t.p, t.len, &q->mseq,
			    &nseq) < 0 ||
			    imap_cursor_next(c, &t) != IMAP_TOK_ATOM ||
			    imapd_sel_matchset(t.p, t.len, &q->muid,
			    &nuid) < 0 ||
			    imap_cursor_next(c, &t) != IMAP_TOK_CLOSE)
				return -1;
			if (nseq != nuid)
				return -2;
			imap_cursor_next(c, &t);
		}
		if (t.type != IMAP_TOK_CLOSE)
			return -1;
	}
	if (t.type != IMAP_TOK_CLOSE || imap_cursor_next(c, &t) !=
	    IMAP_TOK_END)
		return -1;
	return 0;
}

/* the vanished ranges, for QRESYNC */
struct imapd_vanish {
	struct imap_range *r;	/* expunged UIDs, lo <= hi */
	size_t n, cap;
};

/* imapd_sel_vanish_add - remember the range lo..hi */
static void
imapd_sel_vanish_add(struct imapd_vanish *vn, uint32_t lo, uint32_t hi)
{
	if (vn->n == vn->cap) {
		vn->cap = vn->cap ? 2 * vn->cap : 64;
		vn->r = xreallocarray(vn->r, vn->cap, sizeof(*vn->r));
	}
	vn->r[vn->n].lo = lo;
	vn->r[vn->n++].hi = hi;
}

/* imapd_sel_vanished_fn - one expunged range */
static void
imapd_sel_vanished_fn(uint32_t lo, uint32_t hi, uint64_t modseq, void *ctx)
{
	(void)modseq;
	if (lo <= hi)
		imapd_sel_vanish_add(ctx, lo, hi);
}

/* imapd_sel_vanish_put - lo..hi into line; a full line is sent and a new
 * one begun, so no UID is dropped and no line grows without bound */
static void
imapd_sel_vanish_put(struct imapd_session *s, struct buf *line,
    uint32_t lo, uint32_t hi)
{
	static const char head[] = "* VANISHED (EARLIER) ";

	if (line->len > 8192) {
		imapd_sel_write(s, line->data, line->len);
		buf_reset(line);
	}
	if (line->len == 0)
		buf_puts(line, head);
	else
		buf_putc(line, ',');
	if (hi > lo)
		buf_printf(line, "%u:%u", lo, hi);
	else
		buf_printf(line, "%u", lo);
}

/*
 * imapd_sel_matched - the highest UID of the client's seq-match-data that
 * still has its message number (RFC 7162 3.2.5.2), or 0. Message numbers
 * and UIDs both ascend, and new messages only get higher UIDs, so when
 * message n still has UID u, the n - 1 messages below u are the ones the
 * client knew: none of UID u or lower was expunged, and VANISHED (EARLIER)
 * can leave them out. The pairs are walked from the top, numbers past
 * the view skipped range by range: at most view.n comparisons.
 */
static uint32_t
imapd_sel_matched(const struct imapd_view *v, const struct imapd_qresync *q)
{
	size_t i = q->mseq.n, j = q->muid.n;
	uint32_t sh = 0, uh = 0;	/* the next pair from the top */

	if (i == 0 || j == 0)
		return 0;
	sh = q->mseq.r[--i].hi;
	uh = q->muid.r[--j].hi;
	for (;;) {
		/* pairs left in the current range of each set */
		uint64_t ks = (uint64_t)sh - q->mseq.r[i].lo + 1;
		uint64_t ku = (uint64_t)uh - q->muid.r[j].lo + 1;
		uint64_t k = ks < ku ? ks : ku, step = 1;

		if (sh > v->n)
			step = (uint64_t)sh - v->n < k ? sh - v->n : k;
		else if (v->uid[sh - 1] == uh)
			return uh;
		if (step < ks) {
			sh -= (uint32_t)step;
		} else if (i > 0) {
			sh = q->mseq.r[--i].hi;
		} else {
			return 0;
		}
		if (step < ku) {
			uh -= (uint32_t)step;
		} else if (j > 0) {
			uh = q->muid.r[--j].hi;
		} else {
			return 0;
		}
	}
}

/*
 * imapd_sel_vanished - "* VANISHED (EARLIER)" lines for the UIDs expunged
 * after modseq, within the ranges known[0..nknown) ("*" is the top; none
 * at all: every UID) and above the UID above. When the index's history
 * does not reach back to modseq, every UID below UIDNEXT that is not in
 * the folder counts as expunged (RFC 7162 3.2.5.1 allows UIDs that never
 * existed). Ranges and known UIDs are sorted and merged once, then walked
 * side by side: the work grows with their number, never with UID values.
 * QRESYNC's SELECT and UID FETCH (VANISHED) both use it. The ranges in
 * known are normalised in place.
 */
void
imapd_sel_vanished(struct imapd_session *s, uint64_t modseq,
    struct imap_range *known, size_t nknown, uint32_t above)
{
	struct imapd_sel *sel = s->sel;
	struct imapd_vanish vn, kn;
	struct buf why = BUF_INIT, line = BUF_INIT;
	size_t j = 0;
	int rc;

	memset(&vn, 0, sizeof(vn));
	memset(&kn, 0, sizeof(kn));
	if (nknown > 0) {
		imap_ranges_norm(known, &nknown, UINT32_MAX);
	} else {
		imapd_sel_vanish_add(&kn, 1, UINT32_MAX);
		known = kn.r;
		nknown = kn.n;
	}
	rc = mindex_vanished(imapd_store_index(s), sel->folder, modseq,
	    imapd_sel_vanished_fn, &vn, &why);
	if (rc == 1) {
		/* history too short: the gaps below UIDNEXT */
		uint32_t next = 1;

		vn.n = 0;
		for (uint32_t i = 0; i < sel->v.n; i++) {
			if (sel->v.uid[i] > next)
				imapd_sel_vanish_add(&vn, next,
				    sel->v.uid[i] - 1);
			next = sel->v.uid[i] + 1;
		}
		if (sel->uidnext > next)
			imapd_sel_vanish_add(&vn, next, sel->uidnext - 1);
	} else if (rc < 0) {
		msg_warn("%s: VANISHED of %s: %s", buf_cstr(&s->login),
		    sel->folder, buf_cstr(&why));
		vn.n = 0;
	}
	imap_ranges_norm(vn.r, &vn.n, UINT32_MAX);
	for (size_t i = 0; i < vn.n; i++) {
		uint32_t lo = vn.r[i].lo, hi = vn.r[i].hi;

		if (hi <= above)
			continue;
		if (lo <= above)
			lo = above + 1;
		/* the known ranges that meet lo..hi; both lists ascend */
		while (j < nknown && known[j].hi < lo)
			j++;
		for (size_t k = j; k < nknown && known[k].lo <= hi; k++)
			imapd_sel_vanish_put(s, &line, lo > known[k].lo ? lo :
			    known[k].lo, hi < known[k].hi ? hi : known[k].hi);
	}
	if (line.len > 0)
		imapd_sel_write(s, line.data, line.len);
	free(vn.r);
	free(kn.r);
	buf_free(&why);
	buf_free(&line);
}

/*
 * imapd_sel_qresync - VANISHED (EARLIER) and FETCH of what changed since
 * the client's modseq (RFC 7162 3.2.5.1). The UIDs reported are the
 * expunged ones, within known-uids (all UIDs without it), above what the
 * seq-match-data proves the client knows.
 */
static void
imapd_sel_qresync(struct imapd_session *s, struct imapd_qresync *q)
{
	struct imapd_sel *sel = s->sel;

	if (q->uidvalidity != sel->uidvalidity)
		return;
	/* within known-uids (none: every UID) */
	imapd_sel_vanished(s, q->modseq, q->known.r, q->known.n,
	    imapd_sel_matched(&sel->v, q));
	for (uint32_t i = 0; i < sel->v.n; i++)
		if (sel->v.modseq[i] > q->modseq)
			imapd_sel_fetch_line(s, i);
}

/*
 * Jobs: the sync and listing of a folder grow with it, so SELECT,
 * EXAMINE, NOOP, CHECK and IDLE's pushes do them on a job thread
 * (imapd_store.h); the session's input waits meanwhile.
 */
enum sel_job_kind { SJ_SELECT, SJ_UPDATE, SJ_PUSH, SJ_OP, SJ_FOLDER };

struct sel_job {
	enum sel_job_kind kind;
	struct imapd_sel_op *op;	/* SJ_OP */
	char *folder;
	struct imapd_view nv;
	struct mindex_status st;
	struct buf kw;
	bool ro, condstore;	/* SELECT */
	struct imapd_qresync q;
	const char *tagged;	/* UPDATE: the tagged answer (static) */
	bool no_expunge;	/* UPDATE: after FETCH, STORE, SEARCH */
	struct mindex_stamp stamp;	/* in: the view's; out: the new */
	bool unchanged;		/* nothing changed since stamp: no listing */
	bool has_view;		/* vst: the view's UIDs and modseq */
	struct mindex_status vst;
	bool kept;		/* synced: nothing changed since vst */
	bool own;		/* only the op changed the folder: patch */
	char *path;		/* the Maildir (the listing cache's key) */
	bool claim;		/* claim \Recent (rev1 read-write session) */
	bool peek;		/* show \Recent unclaimed (rev1 EXAMINE) */
	uint32_t rlo, rhi;	/* out: the UIDs claimed as \Recent */
	char *dir;		/* FOLDER: the watch's directory */
	uint64_t gen;		/* FOLDER: the watch's number */
	uint64_t claimer;	/* FOLDER: the session (imapd_sel.id) that
				 * gets rlo..rhi; 0: none */
};

/*
 * The worker's listings: the last SEL_CACHE_MAX folders a job of this
 * worker listed, each with the stamp it was listed under, shared by all
 * its sessions. A SELECT of a folder whose stamp still holds (nothing
 * changed in new/, cur/ or the folder record since) takes a reference to
 * the listing (struct imapd_listing: no copy; a private copy was 2 MB of
 * memcpy for a 100,000-message INBOX) instead of syncing (readdir of
 * cur/) and walking the index; IDLE's folder job does the same, and all
 * sessions of the folder share its listing. Job threads only, under the
 * lock; the stamp is checked outside it (it reads the disk).
 */
#define SEL_CACHE_MAX 4

struct sel_cache {
	char *path, *folder;	/* NULL: a free slot */
	struct imapd_view v;
	struct mindex_status st;
	struct buf kw;
	struct mindex_stamp stamp;
	unsigned long used;
};

static struct sel_cache sel_cache[SEL_CACHE_MAX];
static unsigned long sel_cache_clock;
static pthread_mutex_t sel_cache_lock = PTHREAD_MUTEX_INITIALIZER;

/* sel_cache_find - the slot of path and folder, or NULL (locked) */
static struct sel_cache *
sel_cache_find(const char *path, const char *folder)
{
	for (int i = 0; i < SEL_CACHE_MAX; i++)
		if (sel_cache[i].path != NULL &&
		    strcmp(sel_cache[i].path, path) == 0 &&
		    strcmp(sel_cache[i].folder, folder) == 0)
			return &sel_cache[i];
	return NULL;
}

/* sel_cache_get - the listing of sj's folder into sj, if the cache has
 * it and its stamp still holds */
static bool
sel_cache_get(struct mindex *ix, struct sel_job *sj)
{
	struct sel_cache *c;
	struct mindex_stamp stamp;
	bool hit = false;

	if (sj->path == NULL)
		return false;
	pthread_mutex_lock(&sel_cache_lock);
	c = sel_cache_find(sj->path, sj->folder);
	if (c != NULL)
		stamp = c->stamp;
	pthread_mutex_unlock(&sel_cache_lock);
	/* IDLE's folder job is strict: it must find every delivery */
	if (c == NULL || !mindex_unchanged(ix, sj->folder, &stamp,
	    sj->kind == SJ_SELECT))
		return false;
	pthread_mutex_lock(&sel_cache_lock);
	c = sel_cache_find(sj->path, sj->folder);
	if (c != NULL && mindex_stamp_same(&c->stamp, &stamp)) {
		imapd_sel_view_ref(&sj->nv, &c->v);
		sj->st = c->st;
		buf_set(&sj->kw, buf_cstr(&c->kw));
		sj->stamp = c->stamp;
		c->used = ++sel_cache_clock;
		hit = true;
	}
	pthread_mutex_unlock(&sel_cache_lock);
	return hit;
}

/* sel_cache_put - keep sj's fresh listing (an untrusted stamp serves
 * SELECTs for the doubt: see mindex_unchanged) */
static void
sel_cache_put(struct sel_job *sj)
{
	struct sel_cache *c;

	if (sj->path == NULL)
		return;
	pthread_mutex_lock(&sel_cache_lock);
	if ((c = sel_cache_find(sj->path, sj->folder)) == NULL) {
		c = &sel_cache[0];
		for (int i = 1; i < SEL_CACHE_MAX && c->path != NULL; i++)
			if (sel_cache[i].path == NULL ||
			    sel_cache[i].used < c->used)
				c = &sel_cache[i];
		if (c->path != NULL)	/* the least recently used goes */
			buf_free(&c->kw);
		free(c->path);
		free(c->folder);
		c->path = xstrdup(sj->path);
		c->folder = xstrdup(sj->folder);
		buf_init(&c->kw);
	}
	imapd_sel_view_free(&c->v);
	imapd_sel_view_ref(&c->v, &sj->nv);
	c->st = sj->st;
	buf_set(&c->kw, buf_cstr(&sj->kw));
	c->stamp = sj->stamp;
	c->used = ++sel_cache_clock;
	pthread_mutex_unlock(&sel_cache_lock);
}

/* sel_job_claim - \Recent: what nobody claimed yet below UID upto is
 * the job's session's (rlo..rhi) */
static void
sel_job_claim(struct mindex *ix, struct sel_job *sj, uint32_t upto)
{
	struct buf why = BUF_INIT;

	if (mindex_claim_recent(ix, sj->folder, upto, &sj->rlo, &sj->rhi,
	    &why) < 0)
		msg_warn("\\Recent of %s: %s", sj->folder, buf_cstr(&why));
	buf_free(&why);
}

/* sel_job_run - on a job thread: sync and list */
static void
sel_job_run(struct imapd_job *job, struct mindex *ix)
{
	struct sel_job *sj = job->ctx;
	bool cached = false, held = false;

	if (sj->op != NULL) {
		sj->op->result = ix == NULL ? -1 : 0;
		/* an op that tells its own changes: is the folder as the
		 * view last saw it, before the op changes it? */
		held = ix != NULL && sj->op->own && sj->folder != NULL &&
		    mindex_unchanged(ix, sj->folder, &sj->stamp, true);
		mindex_own_init(&sj->op->done, sj->folder);
		if (ix != NULL)
			sj->op->run(sj->op, ix);
	}
	if (sj->folder == NULL) {
		job->result = -1;
		return;
	}
	/* and nothing but the op changed it since: its changes go into
	 * the view, no sync, no listing (the stamp after it is untrusted:
	 * the first check after its doubt syncs) */
	if (held && sj->op->own && sj->op->result >= 0 &&
	    (sj->op->done.writes > 0 || sj->op->done.added > 0)) {
		struct mindex_stamp post;

		if (mindex_stamp_own(ix, sj->folder, &sj->stamp,
		    &sj->op->done, &post, &job->why) == 1 &&
		    mindex_keywords(ix, sj->folder, &sj->kw, &job->why) == 0) {
			sj->own = true;
			sj->stamp = post;
			job->result = 0;
			/* \Recent: the UIDs it added are the first
			 * SELECT's to claim, as a sync's would be */
			if (sj->claim && sj->op->done.added > 0)
				sel_job_claim(ix, sj, post.uidnext);
			return;
		}
		buf_reset(&job->why);
		buf_reset(&sj->kw);
	}
	/* a NOOP, IDLE wakeup or command that changed nothing: two
	 * lstat()s and a record instead of a sync and a listing */
	if (ix != NULL && sj->kind != SJ_SELECT && sj->kind != SJ_FOLDER &&
	    mindex_unchanged(ix, sj->folder, &sj->stamp,
	    sj->kind == SJ_UPDATE || held)) {
		sj->unchanged = true;
		job->result = 0;
		return;
	}
	if (ix == NULL) {
		job->result = -1;
		return;
	}
	if ((sj->kind == SJ_SELECT || sj->kind == SJ_FOLDER) &&
	    sel_cache_get(ix, sj)) {
		job->result = 0;
		cached = true;
	} else {
		job->result = imapd_sel_load(ix, sj->folder, true,
		    sj->has_view ? &sj->vst : NULL, &sj->nv, &sj->st, &sj->kw,
		    &sj->stamp, &job->why);
		if (job->result == 1) {
			sj->kept = true;
			job->result = 0;
		} else if (job->result == 0) {
			sel_cache_put(sj);
		}
	}
	/* EXAMINE: what nobody claimed yet, now: a cached listing's
	 * status may be older than the last claim (a fresh one read it
	 * in the listing's own transaction) */
	if (job->result == 0 && cached && sj->peek && mindex_recent_from(ix,
	    sj->folder, &sj->st.recent_from, &job->why) < 0)
		buf_reset(&job->why);
	/* \Recent: what nobody claimed yet up to this listing is ours */
	if (job->result == 0 && sj->claim)
		sel_job_claim(ix, sj, sj->st.uidnext);
}

static void imapd_sel_opened(struct imapd_session *, struct sel_job *,
    struct imapd_job *);

static struct sel_job *sel_job_new(enum sel_job_kind, const char *);

/* sel_job_free - a job's state */
static void
sel_job_free(struct sel_job *sj)
{
	imapd_sel_view_free(&sj->nv);
	buf_free(&sj->kw);
	imap_seqset_free(&sj->q.known);
	imap_seqset_free(&sj->q.mseq);
	imap_seqset_free(&sj->q.muid);
	free(sj->folder);
	free(sj->path);
	free(sj->dir);
	free(sj);
}

/*
 * sel_folder_take - IDLE: s takes the folder job's listing (a copy) and
 * is told what changed; false if s has a job of its own out (it is
 * pushed again later). A listing older than the view (a session that
 * synced meanwhile) is passed by: UIDNEXT and HIGHESTMODSEQ only grow.
 */
static bool
sel_folder_take(struct imapd_session *s, struct sel_job *sj)
{
	struct imapd_sel *sel = s->sel;
	struct imapd_view nv;

	if (sj->claimer != 0 && sel->id == sj->claimer)
		imapd_sel_recent_claimed(s, sj->rlo, sj->rhi);
	if (imapd_store_busy(s))
		return false;
	if (sj->st.uidvalidity != sel->uidvalidity ||
	    sj->st.uidnext < sel->uidnext ||
	    sj->st.highestmodseq < sel->highestmodseq)
		return true;
	if (sel->stamp.trusted && sj->stamp.trusted &&
	    mindex_stamp_same(&sel->stamp, &sj->stamp))
		return true;	/* it has this listing already */
	imapd_sel_view_ref(&nv, &sj->nv);
	if (imapd_sel_absorb(s, &nv, &sj->st, &sj->kw, true))
		sel->stamp = sj->stamp;
	else
		mindex_stamp_spoil(&sel->stamp);
	return true;
}

/* sel_folder_member - is sel's session alive and selected on folder (one
 * a folder job is for)? */
static bool
sel_folder_member(const struct imapd_sel *sel, const char *folder)
{
	const struct imapd_session *s = sel->owner;

	return !s->base.closed && s->state == IMAPD_S_SELECTED &&
	    sel->folder != NULL && strcmp(sel->folder, folder) == 0;
}

/* sel_folder_done - in the loop: every session idling on the folder
 * takes the listing */
static void
sel_folder_done(struct imapd_job *job, struct imapd_session *unused)
{
	struct sel_job *sj = job->ctx;
	struct imapd_sel *sel, *next;
	bool retry = false, told = false;

	(void)unused;
	if (job->result < 0)
		msg_warn("folder %s of %s: %s", sj->folder, sj->path,
		    buf_cstr(&job->why));
	for (sel = imapd_idle_sessions(sj->dir); sel != NULL; sel = next) {
		next = sel->watch_next;
		if (job->result < 0 || !sel_folder_member(sel, sj->folder))
			continue;
		if (sel->id == sj->claimer)
			told = true;
		if (!sel_folder_take(sel->owner, sj))
			retry = true;
	}
	/* the claimer ended IDLE meanwhile: the UIDs claimed for it are
	 * still its \Recent (nobody else can claim them now), if it is on
	 * the same folder still */
	if (job->result == 0 && sj->claimer != 0 && !told &&
	    sj->rhi > sj->rlo && (sel = imapd_sel_find(sj->claimer)) != NULL &&
	    sel_folder_member(sel, sj->folder) &&
	    sel->uidvalidity == sj->st.uidvalidity)
		imapd_sel_recent_claimed(sel->owner, sj->rlo, sj->rhi);
	imapd_idle_folder_done(sj->dir, sj->gen, retry);
	sel_job_free(sj);
	imapd_job_free(&job);
}

/* imapd_sel_push_folder - IDLE: one job for the folder of the watch dir
 * whose listing every session idling on it takes (see imapd_sel.h) */
void
imapd_sel_push_folder(struct imapd_session *s, const char *dir,
    uint64_t gen)
{
	struct sel_job *sj = sel_job_new(SJ_FOLDER, s->sel->folder);
	struct imapd_job *job = imapd_job_new();

	sj->dir = xstrdup(dir);
	sj->gen = gen;
	sj->path = xstrdup(imapd_store_path(s));
	/* \Recent (IMAP4rev1): the first read-write rev1 session idling
	 * on the folder is the one told first (RFC 3501 2.3.2); a session
	 * that has closed (its jobs still out) takes no listing, so it
	 * must not take the claim either */
	for (struct imapd_sel *o = imapd_idle_sessions(dir); o != NULL;
	    o = o->watch_next)
		if (!o->owner->rev2 && !o->readonly &&
		    sel_folder_member(o, sj->folder)) {
			sj->claim = true;
			sj->claimer = o->id;
			break;
		}
	job->run = sel_job_run;
	job->done = sel_folder_done;
	job->ctx = sj;
	imapd_store_submit_folder(s, job);
}

/* sel_job_keep - in the loop: the view stands (kept), or takes the op's
 * own changes (own: before put STORE's flags in, patch tells the rest) */
static void
sel_job_keep(struct imapd_session *s, struct sel_job *sj)
{
	struct imapd_sel *sel = s->sel;

	sel->stamp = sj->stamp;
	sel->highestmodseq = sj->stamp.highestmodseq;
	if (imapd_sel_set_keywords(sel, &sj->kw))
		imapd_sel_flag_lines(s);
	if (sj->own && sj->op->patch != NULL)
		sj->op->patch(sj->op, s);
}

/* sel_job_done - in the loop: answer */
static void
sel_job_done(struct imapd_job *job, struct imapd_session *s)
{
	struct sel_job *sj = job->ctx;
	bool live = !s->base.closed && s->state != IMAPD_S_LOGOUT;

	if (live && sj->op != NULL && sj->op->before != NULL)
		sj->op->before(sj->op, s);
	if (live && sj->kind == SJ_SELECT) {
		imapd_sel_opened(s, sj, job);
	} else if (live && sj->folder != NULL && s->state ==
	    IMAPD_S_SELECTED && s->sel->folder &&
	    strcmp(s->sel->folder, sj->folder) == 0) {
		/* \Recent first: an own APPEND's patch counts it */
		if (job->result >= 0)
			imapd_sel_recent_claimed(s, sj->rlo, sj->rhi);
		if (job->result < 0)
			msg_warn("%s: folder %s: %s", buf_cstr(&s->login),
			    sj->folder, buf_cstr(&job->why));
		else if (sj->own || sj->kept)
			sel_job_keep(s, sj);
		else if (!sj->unchanged)
			s->sel->stamp = sj->stamp;
		if (job->result >= 0 && !sj->unchanged && !sj->own &&
		    !sj->kept && !imapd_sel_absorb(s, &sj->nv, &sj->st, &sj->kw,
		    sj->op != NULL ? sj->op->allow_expunge :
		    !sj->no_expunge))
			mindex_stamp_spoil(&s->sel->stamp);	/* told later */
	}
	if (live && sj->kind == SJ_UPDATE)
		imapd_session_tagged(s, "%s", sj->tagged);
	if (sj->op != NULL)
		sj->op->answer(sj->op, live ? s : NULL);
	sel_job_free(sj);
	imapd_job_free(&job);
}

/* sel_job_start - a job of kind for the folder */
static struct sel_job *
sel_job_new(enum sel_job_kind kind, const char *folder)
{
	struct sel_job *sj = xcalloc(1, sizeof(*sj));

	sj->kind = kind;
	sj->folder = folder ? xstrdup(folder) : NULL;
	mindex_stamp_spoil(&sj->stamp);
	buf_init(&sj->kw);
	return sj;
}

/* sel_job_submit - hand sj to a job thread for s */
static void
sel_job_submit(struct imapd_session *s, struct sel_job *sj)
{
	struct imapd_job *job = imapd_job_new();
	struct imapd_sel *sel = s->sel;

	/* the view's stamp: the job may find nothing changed since */
	if (sj->kind != SJ_SELECT && sel != NULL && sel->folder != NULL &&
	    sj->folder != NULL && strcmp(sel->folder, sj->folder) == 0 &&
	    s->state == IMAPD_S_SELECTED) {
		sj->stamp = sel->stamp;
		sj->has_view = true;
		sj->vst.uidvalidity = sel->uidvalidity;
		sj->vst.uidnext = sel->uidnext;
		sj->vst.highestmodseq = sel->highestmodseq;
	}
	if (sj->path == NULL && imapd_store_path(s)[0] != '\0')
		sj->path = xstrdup(imapd_store_path(s));
	/* \Recent is IMAP4rev1's (RFC 9051 dropped it); EXAMINE does not
	 * claim (RFC 3501 6.3.2) */
	if (!s->rev2 && sj->folder != NULL && (sj->kind == SJ_SELECT ?
	    !sj->ro : sel != NULL && sel->folder != NULL &&
	    !sel->readonly && s->state == IMAPD_S_SELECTED &&
	    strcmp(sel->folder, sj->folder) == 0))
		sj->claim = true;
	sj->peek = sj->kind == SJ_SELECT && sj->ro && !s->rev2;
	job->run = sel_job_run;
	job->done = sel_job_done;
	job->ctx = sj;
	imapd_store_submit(s, job);
}

/* imapd_sel_run_op - op->run on a job thread, then the selected
 * folder's changes, then op->answer (see imapd_sel.h) */
void
imapd_sel_run_op(struct imapd_session *s, struct imapd_sel_op *op)
{
	struct imapd_sel *sel = s->sel;
	struct sel_job *sj = sel_job_new(SJ_OP, sel != NULL &&
	    s->state == IMAPD_S_SELECTED && !op->no_sync ? sel->folder :
	    NULL);

	sj->op = op;
	sel_job_submit(s, sj);
}

/* imapd_sel_finish - the changes (synced on a job thread), then the
 * tagged answer text (a static string) */
void
imapd_sel_finish(struct imapd_session *s, bool allow_expunge,
    const char *tagged)
{
	struct imapd_sel *sel = s->sel;
	struct sel_job *sj;

	if (sel == NULL || sel->folder == NULL || s->state !=
	    IMAPD_S_SELECTED || imapd_store_index(s) == NULL ||
	    imapd_store_busy(s)) {
		imapd_sel_update(s, allow_expunge);
		imapd_session_tagged(s, "%s", tagged);
		return;
	}
	sj = sel_job_new(SJ_UPDATE, sel->folder);
	sj->tagged = tagged;
	sj->no_expunge = !allow_expunge;
	sel_job_submit(s, sj);
}

/* imapd_sel_push - IDLE: the folder changed; false if s is busy (try
 * again later) */
bool
imapd_sel_push(struct imapd_session *s)
{
	struct imapd_sel *sel = s->sel;

	if (sel == NULL || sel->folder == NULL || s->state !=
	    IMAPD_S_SELECTED || s->base.closed)
		return true;
	if (imapd_store_busy(s))
		return false;
	sel_job_submit(s, sel_job_new(SJ_PUSH, sel->folder));
	return true;
}

/* imapd_sel_open - SELECT or EXAMINE: checked here, the folder read on
 * a job thread, answered by imapd_sel_opened */
static void
imapd_sel_open(struct imapd_session *s, struct imap_cursor *c, bool ro)
{
	struct imapd_sel *sel = imapd_sel_get(s);
	struct buf name = BUF_INIT;
	struct sel_job *sj = NULL;
	bool condstore = false, was = s->state == IMAPD_S_SELECTED;

	if (imapd_sel_resolve(s, c, &name) < 0)
		goto out;
	sj = sel_job_new(SJ_SELECT, buf_cstr(&name));
	switch (imapd_sel_params(s, c, &sj->q, &condstore)) {
	case 0:
		break;
	case -2:
		imapd_session_bad(s, "BAD QRESYNC: the known-sequence-set and "
		    "the known-uid-set differ in size");
		goto out;
	default:
		imapd_session_bad(s, "BAD Syntax: %s mailbox [(CONDSTORE)] "
		    "or [(QRESYNC (uidvalidity modseq [known-uids] "
		    "[(seqs uids)]))]", s->base.last_cmd);
		goto out;
	}
	/* RFC 9051 6.3.2: a SELECT (even a failing one) closes the
	 * current mailbox first; CLOSED says so (RFC 7162 3.2.11) */
	imapd_sel_unselect_now(s);
	if (was && (s->rev2 || sel->qresync))
		imapd_session_reply(s, "* OK [CLOSED] Previous mailbox "
		    "closed");
	if (imapd_store_index(s) == NULL) {
		imapd_session_tagged(s, "NO [UNAVAILABLE] Mail store not "
		    "available");
		goto out;
	}
	/* a folder whose directories are links is no folder: it would
	 * lead to another user's mail */
	if (!imapd_store_folder_exists(imapd_store_path(s),
	    buf_cstr(&name))) {
		imapd_session_tagged(s, "NO [NONEXISTENT] Mailbox does not "
		    "exist");
		goto out;
	}
	sj->ro = ro;
	sj->condstore = condstore;
	sel_job_submit(s, sj);
	sj = NULL;
out:
	if (sj != NULL)
		sel_job_free(sj);
	buf_free(&name);
}

/* imapd_sel_opened - the folder was read: the SELECT answer */
static void
imapd_sel_opened(struct imapd_session *s, struct sel_job *sj,
    struct imapd_job *job)
{
	struct imapd_sel *sel = imapd_sel_get(s);
	struct buf line = BUF_INIT, enc = BUF_INIT, why = BUF_INIT;
	struct stat st;
	uint32_t unseen = 0, recent;
	bool ro = sj->ro;

	if (job->result < 0) {
		if (imapd_sel_folder_dir(s, sj->folder, &line) < 0 ||
		    (buf_puts(&line, "/cur"), stat(buf_cstr(&line), &st) < 0))
			imapd_session_tagged(s, "NO [NONEXISTENT] Mailbox "
			    "does not exist");
		else {
			msg_warn("%s: SELECT %s: %s", buf_cstr(&s->login),
			    sj->folder, buf_cstr(&job->why));
			imapd_session_tagged(s, "NO [SERVERBUG] Cannot open "
			    "the mailbox");
		}
		goto out;
	}
	if (sj->condstore)
		sel->condstore = true;
	sel->folder = xstrdup(sj->folder);
	sel->readonly = ro;
	sel->v = sj->nv;
	memset(&sj->nv, 0, sizeof(sj->nv));
	sel->uidvalidity = sj->st.uidvalidity;
	sel->uidnext = sj->st.uidnext;
	sel->highestmodseq = sj->st.highestmodseq;
	sel->stamp = sj->stamp;
	(void)imapd_sel_set_keywords(sel, &sj->kw);
	s->state = IMAPD_S_SELECTED;
	/* \Recent: what this SELECT claimed; EXAMINE shows what nobody
	 * has claimed without taking it (RFC 3501 6.3.2) */
	if (ro && !s->rev2) {
		sj->rlo = sj->st.recent_from;
		sj->rhi = sj->st.uidnext;
	}
	imapd_sel_recent_add(sel, sj->rlo, sj->rhi);
	recent = imapd_sel_recent_count(sel, &sel->v, false);

	imapd_sel_flag_lines(s);
	buf_printf(&line, "* %u EXISTS", sel->v.n);
	imapd_sel_write(s, line.data, line.len);
	if (!s->rev2) {
		imapd_session_reply(s, "* %u RECENT", recent);
		for (uint32_t i = 0; i < sel->v.n && unseen == 0; i++)
			if (!(sel->v.flags[i] & MINDEX_F_SEEN))
				unseen = i + 1;
		if (unseen)
			imapd_session_reply(s, "* OK [UNSEEN %u] First unseen",
			    unseen);
	}
	imapd_session_reply(s, "* OK [UIDVALIDITY %u] UIDs valid",
	    sel->uidvalidity);
	imapd_session_reply(s, "* OK [UIDNEXT %u] Predicted next UID",
	    sel->uidnext);
	imapd_session_reply(s, "* OK [HIGHESTMODSEQ %llu] Highest",
	    (unsigned long long)sel->highestmodseq);
	imapd_session_reply(s, "* OK [MAILBOXID (%s)] Ok", sj->st.mailboxid);
	if (s->rev2) {
		buf_reset(&line);
		buf_puts(&line, "* LIST () \".\" ");
		if (imapd_store_utf8(s) || mutf7_encode(sel->folder,
		    strlen(sel->folder), &enc, &why) < 0)
			buf_set(&enc, sel->folder);
		imap_write_astring(&line, enc.data, enc.len);
		imapd_sel_write(s, line.data, line.len);
	}
	if (sj->q.on)
		imapd_sel_qresync(s, &sj->q);
	imapd_session_tagged(s, "OK [%s] %s completed", ro ? "READ-ONLY" :
	    "READ-WRITE", ro ? "EXAMINE" : "SELECT");
out:
	buf_free(&line);
	buf_free(&enc);
	buf_free(&why);
}

/* imapd_sel_select - SELECT mailbox [params] */
void
imapd_sel_select(struct imapd_session *s, struct imap_cursor *c)
{
	imapd_sel_open(s, c, false);
}

/* imapd_sel_examine - EXAMINE mailbox [params]: read-only */
void
imapd_sel_examine(struct imapd_session *s, struct imap_cursor *c)
{
	imapd_sel_open(s, c, true);
}

/* imapd_sel_no_args - true if the command has no arguments, else BAD */
static bool
imapd_sel_no_args(struct imapd_session *s, struct imap_cursor *c)
{
	struct imap_token t;

	if (imap_cursor_next(c, &t) == IMAP_TOK_END)
		return true;
	imapd_session_bad(s, "BAD Syntax: %s takes no arguments",
	    s->base.last_cmd);
	return false;
}

/* close_job - CLOSE's expunge, on a job thread */
static void
close_job(struct imapd_sel_op *op, struct mindex *ix)
{
	struct sel_job *sj = op->ctx;	/* only its folder and kw */

	op->result = mindex_expunge(ix, sj->folder, NULL, 0, NULL, NULL,
	    &sj->kw);
}

/* close_answer - back to the authenticated state */
static void
close_answer(struct imapd_sel_op *op, struct imapd_session *s)
{
	struct sel_job *sj = op->ctx;

	if (s != NULL) {
		if (op->result < 0)
			msg_warn("%s: CLOSE %s: %s", buf_cstr(&s->login),
			    sj->folder, buf_cstr(&sj->kw));
		imapd_sel_unselect_now(s);
		imapd_session_tagged(s, "OK CLOSE completed");
	}
	buf_free(&sj->kw);
	free(sj->folder);
	free(sj);
	free(op);
}

/* imapd_sel_close - CLOSE: expunge \Deleted silently (read-write), then
 * back to the authenticated state */
void
imapd_sel_close(struct imapd_session *s, struct imap_cursor *c)
{
	struct imapd_sel *sel = s->sel;
	struct imapd_sel_op *op;
	struct sel_job *ctx;

	if (!imapd_sel_no_args(s, c))
		return;
	if (sel->readonly || imapd_store_index(s) == NULL) {
		imapd_sel_unselect_now(s);
		imapd_session_tagged(s, "OK CLOSE completed");
		return;
	}
	op = xcalloc(1, sizeof(*op));
	ctx = sel_job_new(SJ_OP, sel->folder);
	op->ctx = ctx;
	op->run = close_job;
	op->answer = close_answer;
	op->no_sync = true;
	imapd_sel_run_op(s, op);
}

/* imapd_sel_unselect - UNSELECT (RFC 3691): no expunge */
void
imapd_sel_unselect(struct imapd_session *s, struct imap_cursor *c)
{
	if (!imapd_sel_no_args(s, c))
		return;
	imapd_sel_unselect_now(s);
	imapd_session_tagged(s, "OK UNSELECT completed");
}

/* imapd_sel_check - CHECK (RFC 3501): a NOOP here */
void
imapd_sel_check(struct imapd_session *s, struct imap_cursor *c)
{
	if (!imapd_sel_no_args(s, c))
		return;
	imapd_sel_finish(s, true, "OK CHECK completed");
}

/* imapd_sel_noop - NOOP: in the selected state, the changes */
void
imapd_sel_noop(struct imapd_session *s, struct imap_cursor *c)
{
	if (!imapd_sel_no_args(s, c))
		return;
	imapd_sel_finish(s, true, "OK NOOP completed");
}
