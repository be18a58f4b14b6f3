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
		imapd_sel_flags(sel, sel->v.flags[i], sel->v.kw[i], &b);
	}
	if (sel->condstore)
		buf_printf(&b, "%sMODSEQ (%llu)", uid || flags ? " " : "",
		    (unsigned long long)sel->v.modseq[i]);
	buf_putc(&b, ')');
	imapd_sel_write(s, b.data, b.len);
	buf_free(&b);
}

/* store_run - STORE / UID STORE */
static void
store_run(struct imapd_session *s, struct imap_cursor *c, bool uid)
{
	struct imapd_sel *sel = s->sel;
	struct mindex *ix = imapd_store_index(s);
	struct imap_token set, t;
	unsigned long long unchanged = 0;
	enum mindex_store_mode mode;
	char *kw[MINDEX_KEYWORDS_MAX];
	size_t nkw = 0;
	uint32_t flags = 0, *changed = NULL, nchanged = 0, *mod = NULL;
	uint32_t nmod = 0;
	unsigned char *map = NULL;
	bool silent, has_unchanged = false;
	const char *why = "Syntax: STORE set [(UNCHANGEDSINCE n)] "
	    "[+|-]FLAGS[.SILENT] (flags)";
	struct buf err = BUF_INIT, b = BUF_INIT;

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
	if (sel->v.n > 0) {
		changed = xcalloc(sel->v.n, sizeof(*changed));
		mod = xcalloc(sel->v.n, sizeof(*mod));
	}
	for (uint32_t i = 0; i < sel->v.n; i++) {
		struct mindex_msg nm;
		int rc;

		if (!MAP_HAS(map, i))
			continue;
		rc = mindex_store(ix, sel->folder, sel->v.uid[i], mode, flags,
		    (const char *const *)kw, nkw, has_unchanged ?
		    (unchanged ? unchanged : 1) : 0, &nm, &err);
		if (has_unchanged && unchanged == 0)
			rc = 2;	/* RFC 7162 3.1.3: 0 fails always */
		if (rc < 0) {
			msg_warn("%s: STORE %s: %s", buf_cstr(&s->login),
			    sel->folder, buf_cstr(&err));
			continue;
		}
		if (rc == 2) {
			mod[nmod++] = uid ? sel->v.uid[i] : i + 1;
			continue;
		}
		if (rc == 1) {
			sel->v.flags[i] = nm.flags;
			sel->v.kw[i] = nm.keywords;
			sel->v.modseq[i] = nm.modseq;
		}
		changed[nchanged++] = i;
	}
	/* new keywords: FLAGS first (the sync tells it and nothing more
	 * for messages whose view already agrees) */
	if (nkw > 0)
		imapd_sel_update(s, false);
	for (uint32_t k = 0; k < nchanged; k++) {
		if (!silent)
			store_fetch_line(s, changed[k], uid, true);
		else if (sel->condstore)
			store_fetch_line(s, changed[k], uid, false);
	}
	if (nmod > 0) {
		buf_puts(&b, "OK [MODIFIED ");
		store_set_append(&b, mod, nmod);
		buf_puts(&b, "] Conditional STORE failed");
	}
	imapd_sel_update(s, uid);
	if (nmod > 0)
		imapd_session_tagged(s, "%s", buf_cstr(&b));
	else
		imapd_session_tagged(s, "OK %sSTORE completed",
		    uid ? "UID " : "");
	goto out;
bad:
	imapd_session_bad(s, "BAD %s", why);
out:
	for (size_t i = 0; i < nkw; i++)
		free(kw[i]);
	free(map);
	free(changed);
	free(mod);
	buf_free(&err);
	buf_free(&b);
}

/* imapd_store_cmd - STORE */
void
imapd_store_cmd(struct imapd_session *s, struct imap_cursor *c)
{
	store_run(s, c, false);
}

/* expunge_run - EXPUNGE, or UID EXPUNGE set (RFC 4315 2.1) */
static void
expunge_run(struct imapd_session *s, struct imap_cursor *c, bool uid)
{
	struct imapd_sel *sel = s->sel;
	struct imap_token t;
	struct buf why = BUF_INIT;
	unsigned char *map = NULL;
	uint32_t *uids = NULL, n = 0;
	int rc;

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
	if (uid) {
		uids = xcalloc(sel->v.n + 1, sizeof(*uids));
		for (uint32_t i = 0; i < sel->v.n; i++)
			if (MAP_HAS(map, i) &&
			    (sel->v.flags[i] & MINDEX_F_DELETED))
				uids[n++] = sel->v.uid[i];
		rc = n ? mindex_expunge(imapd_store_index(s), sel->folder,
		    uids, n, NULL, &why) : 0;
	} else {
		rc = mindex_expunge(imapd_store_index(s), sel->folder, NULL,
		    0, NULL, &why);
	}
	if (rc < 0) {
		msg_warn("%s: EXPUNGE %s: %s", buf_cstr(&s->login),
		    sel->folder, buf_cstr(&why));
		imapd_sel_update(s, true);
		imapd_session_tagged(s, "NO [SERVERBUG] Expunge failed");
		goto out;
	}
	imapd_sel_update(s, true);
	imapd_session_tagged(s, "OK %sEXPUNGE completed", uid ? "UID " : "");
out:
	free(map);
	free(uids);
	buf_free(&why);
}

/* imapd_expunge_cmd - EXPUNGE */
void
imapd_expunge_cmd(struct imapd_session *s, struct imap_cursor *c)
{
	expunge_run(s, c, false);
}

/* copy_run - COPY / MOVE, UID or not */
static void
copy_run(struct imapd_session *s, struct imap_cursor *c, bool uid,
    bool move)
{
	struct imapd_sel *sel = s->sel;
	struct imap_token set;
	struct buf dst = BUF_INIT, why = BUF_INIT;
	struct buf line = BUF_INIT;
	unsigned char *map = NULL;
	uint32_t *uids = NULL, *dst_uids = NULL, *su = NULL, *du = NULL;
	uint32_t n = 0, m = 0, uidvalidity = 0;
	struct imap_token t;
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
	uids = xcalloc(sel->v.n + 1, sizeof(*uids));
	for (uint32_t i = 0; i < sel->v.n; i++)
		if (MAP_HAS(map, i))
			uids[n++] = sel->v.uid[i];
	if (n == 0) {
		imapd_session_tagged(s, "OK %s%s completed (no messages)",
		    uid ? "UID " : "", verb);
		goto out;
	}
	dst_uids = xcalloc(n, sizeof(*dst_uids));
	if (mindex_copy(imapd_store_index(s), sel->folder, buf_cstr(&dst),
	    uids, n, move, dst_uids, &uidvalidity, &why) < 0) {
		msg_warn("%s: %s %s to %s: %s", buf_cstr(&s->login), verb,
		    sel->folder, buf_cstr(&dst), buf_cstr(&why));
		imapd_sel_update(s, move);
		imapd_session_tagged(s, "NO [SERVERBUG] %s failed", verb);
		goto out;
	}
	su = xcalloc(n, sizeof(*su));
	du = xcalloc(n, sizeof(*du));
	for (uint32_t i = 0; i < n; i++)
		if (dst_uids[i] != 0) {
			su[m] = uids[i];
			du[m++] = dst_uids[i];
		}
	if (m > 0) {
		buf_printf(&line, "[COPYUID %u ", uidvalidity);
		store_set_append(&line, su, m);
		buf_putc(&line, ' ');
		store_set_append(&line, du, m);
		buf_putc(&line, ']');
	}
	if (move) {
		/* RFC 6851 4.3: COPYUID in an untagged OK, then the
		 * expunges */
		if (m > 0) {
			struct buf u = BUF_INIT;

			buf_printf(&u, "* OK %s Moved", buf_cstr(&line));
			imapd_sel_write(s, u.data, u.len);
			buf_free(&u);
		}
		imapd_sel_update(s, true);
		imapd_session_tagged(s, "OK %sMOVE completed", uid ? "UID " :
		    "");
	} else {
		imapd_sel_update(s, uid);
		imapd_session_tagged(s, "OK %s%s%sCOPY completed",
		    buf_cstr(&line), m > 0 ? " " : "", uid ? "UID " : "");
	}
out:
	free(map);
	free(uids);
	free(dst_uids);
	free(su);
	free(du);
	buf_free(&dst);
	buf_free(&why);
	buf_free(&line);
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
	else if (imap_tok_is(&t, "SEARCH") || imap_tok_is(&t, "SORT") ||
	    imap_tok_is(&t, "THREAD"))
		imapd_session_tagged(s, "NO [UNAVAILABLE] UID %.*s is not "
		    "available in this version of herald", (int)t.len, t.p);
	else
		imapd_session_bad(s, "BAD Unknown UID command");
}
