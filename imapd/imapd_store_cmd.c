/*
 * imapd_store_cmd - the commands of the selected state that change
 * messages: STORE (RFC 9051 6.4.6, UNCHANGEDSINCE of RFC 7162 3.1.3),
 * EXPUNGE and UID EXPUNGE (RFC 4315), COPY with COPYUID (RFC 4315), MOVE
 * (RFC 6851), and the UID prefix. Refused (NO [READ-ONLY]) in a mailbox
 * opened with EXAMINE.
 */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/mindex.h"
#include "imapd.h"
#include "imapd_sel.h"
#include "imapd_store.h"

#define MAP_HAS(map, i) ((map)[(i) / 8] & (1U << ((i) % 8)))

/* store_set_append - UIDs or numbers as a compact set */
static void
store_set_append(struct buf *out, const uint32_t *u, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t j = i;

		while (j + 1 < n && u[j + 1] == u[j] + 1)
			j++;
		if (i > 0)
			buf_putc(out, ',');
		if (j > i)
			buf_printf(out, "%u:%u", u[i], u[j]);
		else
			buf_printf(out, "%u", u[i]);
		i = j + 1;
	}
}

/* store_fetch_line - the answer to a STORE for view index i */
static void
store_fetch_line(struct imapd_session *s, uint32_t i, bool uid, bool flags)
{
	struct imapd_sel *sel = s->sel;
	struct buf b = BUF_INIT;

	buf_printf(&b, "* %u FETCH (", i + 1);
	if (uid)
		buf_printf(&b, "UID %u", sel->v.uid[i]);
	if (flags) {
		buf_puts(&b, uid ? " FLAGS " : "FLAGS ");
		imapd_sel_flags(sel, imapd_sel_vflags(sel, i), sel->v.kw[i],
		    &b);
	}
	if (sel->condstore)
		buf_printf(&b, "%sMODSEQ (%llu)", uid || flags ? " " : "",
		    (unsigned long long)sel->v.modseq[i]);
	buf_putc(&b, ')');
	imapd_sel_write(s, b.data, b.len);
	buf_free(&b);
}

/* a STORE on a job thread */
struct flag_op {
	struct imapd_sel_op op;	/* first */
	char *folder;
	bool uid, silent, has_unchanged, failed;
	unsigned long long unchanged;
	enum mindex_store_mode mode;
	uint32_t flags;
	char *kw[MINDEX_KEYWORDS_MAX];
	size_t nkw;
	uint32_t n, *uids;
	int *rc;
	struct mindex_msg *m;
	struct buf err;
};

/* flag_op_free - forget op */
static void
flag_op_free(struct flag_op *o)
{
	for (size_t i = 0; i < o->nkw; i++)
		free(o->kw[i]);
	free(o->folder);
	free(o->uids);
	free(o->rc);
	free(o->m);
	buf_free(&o->err);
	free(o);
}

/* flag_job - on a job thread: the messages' flags, in one index
 * transaction (one commit however many messages) */
static void
flag_job(struct imapd_sel_op *op, struct mindex *ix)
{
	struct flag_op *o = op->ctx;

	if (o->has_unchanged && o->unchanged == 0) {
		for (uint32_t j = 0; j < o->n; j++)
			o->rc[j] = 2;	/* RFC 7162 3.1.3: 0 fails always */
		return;
	}
	if (mindex_store_uids(ix, o->folder, o->uids, o->n, o->mode,
	    o->flags, (const char *const *)o->kw, o->nkw,
	    o->has_unchanged ? o->unchanged : 0, o->rc, o->m, &op->done,
	    &o->err) < 0) {
		msg_warn("STORE %s: %s", o->folder, buf_cstr(&o->err));
		o->failed = true;
		op->own = false;
		for (uint32_t j = 0; j < o->n; j++)
			o->rc[j] = -1;
		return;
	}
	/* (op->done has a modseq for each message changed: flag_before
	 * puts them into the view) */
}

/* flag_before - our own changes into the view (before the sync's
 * changes are compared with it) */
static void
flag_before(struct imapd_sel_op *op, struct imapd_session *s)
{
	struct flag_op *o = op->ctx;
	struct imapd_sel *sel = s->sel;

	if (s->state != IMAPD_S_SELECTED || strcmp(sel->folder, o->folder))
		return;
	imapd_sel_put_stored(s, o->uids, o->rc, o->m, o->n, false);
}

/* flag_answer - the FETCH answers, [MODIFIED], the tagged line */
static void
flag_answer(struct imapd_sel_op *op, struct imapd_session *s)
{
	struct flag_op *o = op->ctx;
	struct buf b = BUF_INIT;
	uint32_t *mod, nmod = 0;

	if (s == NULL || s->state != IMAPD_S_SELECTED) {
		flag_op_free(o);
		return;
	}
	mod = xcalloc(o->n + 1, sizeof(*mod));
	for (uint32_t j = 0; j < o->n; j++) {
		long i = imapd_sel_index(s->sel, o->uids[j]);

		if (o->rc[j] == 2) {
			if (o->uid)
				mod[nmod++] = o->uids[j];
			else if (i >= 0)
				mod[nmod++] = (uint32_t)i + 1;
			continue;
		}
		if (o->rc[j] < 0 || i < 0)
			continue;
		if (!o->silent)
			store_fetch_line(s, (uint32_t)i, o->uid, true);
		else if (s->sel->condstore)
			store_fetch_line(s, (uint32_t)i, o->uid, false);
	}
	if (o->failed) {
		imapd_session_tagged(s, "NO [SERVERBUG] STORE failed");
	} else if (nmod > 0) {
		buf_puts(&b, "OK [MODIFIED ");
		store_set_append(&b, mod, nmod);
		buf_puts(&b, "] Conditional STORE failed");
		imapd_session_tagged(s, "%s", buf_cstr(&b));
	} else {
		imapd_session_tagged(s, "OK %sSTORE completed", o->uid ?
		    "UID " : "");
	}
	free(mod);
	buf_free(&b);
	flag_op_free(o);
}

/* store_run - STORE / UID STORE */
static void
store_run(struct imapd_session *s, struct imap_cursor *c, bool uid)
{
	struct imapd_sel *sel = s->sel;
	struct flag_op *o;
	struct imap_token set, t;
	unsigned long long unchanged = 0;
	enum mindex_store_mode mode;
	char *kw[MINDEX_KEYWORDS_MAX];
	size_t nkw = 0;
	uint32_t flags = 0;
	unsigned char *map = NULL;
	bool silent, has_unchanged = false;
	const char *why = "Syntax: STORE set [(UNCHANGEDSINCE n)] "
	    "[+|-]FLAGS[.SILENT] (flags)";

	if (imap_cursor_next(c, &set) != IMAP_TOK_ATOM)
		goto bad;
	if (imap_cursor_next(c, &t) == IMAP_TOK_OPEN) {
		if (imap_cursor_next(c, &t) != IMAP_TOK_ATOM ||
		    !imap_tok_is(&t, "UNCHANGEDSINCE") ||
		    imap_cursor_next(c, &t) != IMAP_TOK_ATOM ||
		    imap_number(t.p, t.len, true, &unchanged) < 0 ||
		    imap_cursor_next(c, &t) != IMAP_TOK_CLOSE)
			goto bad;
		has_unchanged = true;
		imap_cursor_next(c, &t);
	}
	if (t.type != IMAP_TOK_ATOM)
		goto bad;
	if (t.len > 0 && (t.p[0] == '+' || t.p[0] == '-')) {
		mode = t.p[0] == '+' ? MINDEX_ADD : MINDEX_REMOVE;
		t.p++;
		t.len--;
	} else {
		mode = MINDEX_SET;
	}
	silent = t.len == 12 && str_ncasecmp(t.p, "FLAGS.SILENT", 12) == 0;
	if (!silent && !(t.len == 5 && str_ncasecmp(t.p, "FLAGS", 5) == 0))
		goto bad;
	if (imap_cursor_peek(c, &t) == IMAP_TOK_OPEN) {
		imap_cursor_next(c, &t);
		if (imapd_sel_parse_flags(c, true, &flags, kw, &nkw,
		    &why) < 0)
			goto bad;
		if (imap_cursor_next(c, &t) != IMAP_TOK_END) {
			why = "Syntax: junk after the flags";
			goto bad;
		}
	} else if (imapd_sel_parse_flags(c, false, &flags, kw, &nkw,
	    &why) < 0) {
		goto bad;
	}
	if (sel->readonly) {
		imapd_session_tagged(s, "NO [READ-ONLY] Mailbox is read-only");
		goto out;
	}
	if (has_unchanged)
		imapd_sel_condstore(s);
	if (imapd_sel_set(sel, set.p, set.len, uid, &map) < 0) {
		why = "Invalid sequence set (a number beyond the messages?)";
		goto bad;
	}
	o = xcalloc(1, sizeof(*o));
	buf_init(&o->err);
	o->folder = xstrdup(sel->folder);
	o->uid = uid;
	o->silent = silent;
	o->has_unchanged = has_unchanged;
	o->unchanged = unchanged;
	o->mode = mode;
	o->flags = flags;
	memcpy(o->kw, kw, sizeof(kw[0]) * nkw);
	o->nkw = nkw;
	nkw = 0;
	o->uids = xcalloc(sel->v.n + 1, sizeof(*o->uids));
	for (uint32_t i = 0; i < sel->v.n; i++)
		if (MAP_HAS(map, i))
			o->uids[o->n++] = sel->v.uid[i];
	o->rc = xcalloc(o->n + 1, sizeof(*o->rc));
	o->m = xcalloc(o->n + 1, sizeof(*o->m));
	o->op.ctx = o;
	o->op.run = flag_job;
	o->op.before = flag_before;
	o->op.answer = flag_answer;
	o->op.allow_expunge = uid;
	o->op.own = true;
	imapd_sel_run_op(s, &o->op);
	goto out;
bad:
	imapd_session_bad(s, "BAD %s", why);
out:
	for (size_t i = 0; i < nkw; i++)
		free(kw[i]);
	free(map);
}

/* imapd_store_cmd - STORE */
void
imapd_store_cmd(struct imapd_session *s, struct imap_cursor *c)
{
	store_run(s, c, false);
}

/* an EXPUNGE or a COPY / MOVE on a job thread */
struct store_op {
	struct imapd_sel_op op;	/* first */
	bool uid, move, copy;
	char *src, *dst;
	uint32_t *uids, n;	/* NULL for EXPUNGE: every \Deleted */
	uint32_t *drop, ndrop;	/* EXPUNGE: the view's \Deleted ones */
	uint32_t *dst_uids, uidvalidity;
	struct mindex_msg *added;	/* COPY into itself: the copies */
	size_t nadded;
	struct buf why, code;	/* COPYUID */
};

/* store_op_free - forget op */
static void
store_op_free(struct store_op *o)
{
	free(o->src);
	free(o->dst);
	free(o->uids);
	free(o->drop);
	free(o->dst_uids);
	free(o->added);
	buf_free(&o->why);
	buf_free(&o->code);
	free(o);
}

/* store_op_new - an op for the selected folder */
static struct store_op *
store_op_new(struct imapd_session *s, bool uid)
{
	struct store_op *o = xcalloc(1, sizeof(*o));

	buf_init(&o->why);
	buf_init(&o->code);
	o->uid = uid;
	o->src = xstrdup(s->sel->folder);
	o->op.ctx = o;
	return o;
}

/* expunge_job - on a job thread */
static void
expunge_job(struct imapd_sel_op *op, struct mindex *ix)
{
	struct store_op *o = op->ctx;
	uint32_t count = 0;

	if (o->uids != NULL && o->n == 0)
		return;
	op->result = mindex_expunge(ix, o->src, o->uids, o->n, &count,
	    &op->done, &o->why);
	/* when the folder was as the view saw it, what went is the view's
	 * \Deleted messages: a count that differs says otherwise, and the
	 * folder is listed */
	if (op->result < 0 || count != o->ndrop)
		op->own = false;
}

/* expunge_patch - our own expunges leave the view (a sync would have
 * found them) */
static void
expunge_patch(struct imapd_sel_op *op, struct imapd_session *s)
{
	struct store_op *o = op->ctx;

	imapd_sel_drop(s, o->drop, o->ndrop);
}

/* expunge_answer - the tagged answer */
static void
expunge_answer(struct imapd_sel_op *op, struct imapd_session *s)
{
	struct store_op *o = op->ctx;

	if (s != NULL && op->result < 0) {
		msg_warn("%s: EXPUNGE %s: %s", buf_cstr(&s->login), o->src,
		    buf_cstr(&o->why));
		imapd_session_tagged(s, "NO [SERVERBUG] Expunge failed");
	} else if (s != NULL) {
		imapd_session_tagged(s, "OK %sEXPUNGE completed", o->uid ?
		    "UID " : "");
	}
	store_op_free(o);
}

/* expunge_run - EXPUNGE, or UID EXPUNGE set (RFC 4315 2.1) */
static void
expunge_run(struct imapd_session *s, struct imap_cursor *c, bool uid)
{
	struct imapd_sel *sel = s->sel;
	struct imap_token t;
	unsigned char *map = NULL;
	struct store_op *o;

	if (uid) {
		if (imap_cursor_next(c, &t) != IMAP_TOK_ATOM ||
		    imapd_sel_set(sel, t.p, t.len, true, &map) < 0 ||
		    imap_cursor_next(c, &t) != IMAP_TOK_END) {
			imapd_session_bad(s, "BAD Syntax: UID EXPUNGE uid-set");
			goto out;
		}
	} else if (imap_cursor_next(c, &t) != IMAP_TOK_END) {
		imapd_session_bad(s, "BAD Syntax: EXPUNGE takes no arguments");
		goto out;
	}
	if (sel->readonly) {
		imapd_session_tagged(s, "NO [READ-ONLY] Mailbox is read-only");
		goto out;
	}
	o = store_op_new(s, uid);
	o->drop = xcalloc(sel->v.n + 1, sizeof(*o->drop));
	for (uint32_t i = 0; i < sel->v.n; i++)
		if ((!uid || MAP_HAS(map, i)) &&
		    (sel->v.flags[i] & MINDEX_F_DELETED))
			o->drop[o->ndrop++] = sel->v.uid[i];
	if (uid) {
		o->uids = xcalloc(o->ndrop + 1, sizeof(*o->uids));
		memcpy(o->uids, o->drop, o->ndrop * sizeof(*o->uids));
		o->n = o->ndrop;
	}
	o->op.run = expunge_job;
	o->op.patch = expunge_patch;
	o->op.answer = expunge_answer;
	o->op.allow_expunge = true;
	o->op.own = true;
	imapd_sel_run_op(s, &o->op);
out:
	free(map);
}

/* imapd_expunge_cmd - EXPUNGE */
void
imapd_expunge_cmd(struct imapd_session *s, struct imap_cursor *c)
{
	expunge_run(s, c, false);
}

/* copy_job - on a job thread */
static void
copy_job(struct imapd_sel_op *op, struct mindex *ix)
{
	struct store_op *o = op->ctx;

	op->result = mindex_copy(ix, o->src, o->dst, o->uids, o->n, o->move,
	    o->dst_uids, &o->uidvalidity, &op->done, &o->why);
	if (op->result < 0) {
		op->own = false;
		return;
	}
	/* MOVE: the sources went at one modseq (move_patch tells them);
	 * COPY into the selected folder itself: its copies join the view
	 * (copy_patch), their records read here; COPY elsewhere leaves
	 * the selected folder as it was */
	if (op->done.added > 0 && imapd_sel_added(ix, op->done.folder,
	    o->dst_uids, o->n, &o->added, &o->nadded) < 0)
		op->own = false;
}

/* copy_patch - COPY into the selected folder: the copies join the view
 * (EXISTS) */
static void
copy_patch(struct imapd_sel_op *op, struct imapd_session *s)
{
	struct store_op *o = op->ctx;

	imapd_sel_add(s, o->added, o->nadded);
}

/* move_patch - the messages we moved leave the view (after the COPYUID
 * of copy_before, RFC 6851 4.3) */
static void
move_patch(struct imapd_sel_op *op, struct imapd_session *s)
{
	struct store_op *o = op->ctx;
	uint32_t *gone = xcalloc(o->n + 1, sizeof(*gone)), n = 0;

	for (uint32_t i = 0; i < o->n; i++)
		if (o->dst_uids[i] != 0)
			gone[n++] = o->uids[i];
	imapd_sel_drop(s, gone, n);
	free(gone);
}

/* copy_code - "[COPYUID v src dst]" of what was copied */
static void
copy_code(struct store_op *o)
{
	uint32_t *su = xcalloc(o->n, sizeof(*su));
	uint32_t *du = xcalloc(o->n, sizeof(*du)), m = 0;

	for (uint32_t i = 0; i < o->n; i++)
		if (o->dst_uids[i] != 0) {
			su[m] = o->uids[i];
			du[m++] = o->dst_uids[i];
		}
	if (m > 0) {
		buf_printf(&o->code, "[COPYUID %u ", o->uidvalidity);
		store_set_append(&o->code, su, m);
		buf_putc(&o->code, ' ');
		store_set_append(&o->code, du, m);
		buf_putc(&o->code, ']');
	}
	free(su);
	free(du);
}

/* copy_before - MOVE: COPYUID in an untagged OK, before the expunges
 * (RFC 6851 4.3) */
static void
copy_before(struct imapd_sel_op *op, struct imapd_session *s)
{
	struct store_op *o = op->ctx;

	if (op->result < 0)
		return;
	copy_code(o);
	if (o->move && o->code.len > 0) {
		struct buf u = BUF_INIT;

		buf_printf(&u, "* OK %s Moved", buf_cstr(&o->code));
		imapd_sel_write(s, u.data, u.len);
		buf_free(&u);
	}
}

/* copy_answer - the tagged answer */
static void
copy_answer(struct imapd_sel_op *op, struct imapd_session *s)
{
	struct store_op *o = op->ctx;
	const char *verb = o->move ? "MOVE" : "COPY";
	uint32_t copied = 0;

	for (uint32_t i = 0; op->result >= 0 && i < o->n; i++)
		copied += o->dst_uids[i] != 0;
	if (s != NULL && op->result < 0) {
		msg_warn("%s: %s %s to %s: %s", buf_cstr(&s->login), verb,
		    o->src, o->dst, buf_cstr(&o->why));
		imapd_session_tagged(s, "NO [SERVERBUG] %s failed", verb);
	} else if (s != NULL && copied == 0) {
		/* every message was expunged by another session first:
		 * nothing was copied, so no OK (RFC 2180 4.4.1, RFC 5530);
		 * some copied gets OK with the COPYUID of those */
		imapd_session_tagged(s, "NO [EXPUNGEISSUED] Some messages "
		    "were expunged meanwhile: nothing %s", o->move ? "moved" :
		    "copied");
	} else if (s != NULL && o->move) {
		imapd_session_tagged(s, "OK %sMOVE completed", o->uid ?
		    "UID " : "");
	} else if (s != NULL) {
		imapd_session_tagged(s, "OK %s%s%sCOPY completed",
		    buf_cstr(&o->code), o->code.len > 0 ? " " : "", o->uid ?
		    "UID " : "");
	}
	store_op_free(o);
}

/* copy_run - COPY / MOVE, UID or not */
static void
copy_run(struct imapd_session *s, struct imap_cursor *c, bool uid,
    bool move)
{
	struct imapd_sel *sel = s->sel;
	struct imap_token set, t;
	struct buf dst = BUF_INIT;
	unsigned char *map = NULL;
	struct store_op *o;
	const char *verb = move ? "MOVE" : "COPY";

	if (imap_cursor_next(c, &set) != IMAP_TOK_ATOM) {
		imapd_session_bad(s, "BAD Syntax: %s set mailbox", verb);
		goto out;
	}
	if (imapd_sel_resolve(s, c, &dst) < 0)
		goto out;
	if (imap_cursor_next(c, &t) != IMAP_TOK_END) {
		imapd_session_bad(s, "BAD Syntax: %s set mailbox", verb);
		goto out;
	}
	if (imapd_sel_set(sel, set.p, set.len, uid, &map) < 0) {
		imapd_session_bad(s, "BAD Invalid sequence set (a number "
		    "beyond the messages?)");
		goto out;
	}
	if (move && sel->readonly) {
		imapd_session_tagged(s, "NO [READ-ONLY] Mailbox is read-only");
		goto out;
	}
	if (!imapd_store_folder_exists(imapd_store_path(s),
	    buf_cstr(&dst))) {
		imapd_session_tagged(s, "NO [TRYCREATE] Mailbox does not "
		    "exist");
		goto out;
	}
	o = store_op_new(s, uid);
	o->move = move;
	o->dst = xstrdup(buf_cstr(&dst));
	o->uids = xcalloc(sel->v.n + 1, sizeof(*o->uids));
	for (uint32_t i = 0; i < sel->v.n; i++)
		if (MAP_HAS(map, i))
			o->uids[o->n++] = sel->v.uid[i];
	if (o->n == 0) {
		imapd_session_tagged(s, "OK %s%s completed (no messages)",
		    uid ? "UID " : "", verb);
		store_op_free(o);
		goto out;
	}
	o->dst_uids = xcalloc(o->n, sizeof(*o->dst_uids));
	o->op.run = copy_job;
	o->op.before = copy_before;
	o->op.patch = move ? move_patch : copy_patch;
	o->op.answer = copy_answer;
	o->op.allow_expunge = move || uid;
	o->op.own = true;
	imapd_sel_run_op(s, &o->op);
out:
	free(map);
	buf_free(&dst);
}

/* imapd_copy_cmd - COPY */
void
imapd_copy_cmd(struct imapd_session *s, struct imap_cursor *c)
{
	copy_run(s, c, false, false);
}

/* imapd_move_cmd - MOVE */
void
imapd_move_cmd(struct imapd_session *s, struct imap_cursor *c)
{
	copy_run(s, c, false, true);
}

/* imapd_uid_cmd - UID FETCH|STORE|COPY|MOVE|EXPUNGE|SEARCH ... */
void
imapd_uid_cmd(struct imapd_session *s, struct imap_cursor *c)
{
	struct imap_token t;

	if (imap_cursor_next(c, &t) != IMAP_TOK_ATOM) {
		imapd_session_bad(s, "BAD Syntax: UID command ...");
		return;
	}
	if (imap_tok_is(&t, "FETCH"))
		imapd_fetch_uid(s, c);
	else if (imap_tok_is(&t, "STORE"))
		store_run(s, c, true);
	else if (imap_tok_is(&t, "COPY"))
		copy_run(s, c, true, false);
	else if (imap_tok_is(&t, "MOVE"))
		copy_run(s, c, true, true);
	else if (imap_tok_is(&t, "EXPUNGE"))
		expunge_run(s, c, true);
	else if (imapd_search_uid(s, t.p, t.len, c))
		;
	else
		imapd_session_bad(s, "BAD Unknown UID command");
}
