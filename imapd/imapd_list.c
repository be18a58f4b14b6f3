/*
 * imapd_list - LIST (RFC 9051 6.3.9, LIST-EXTENDED RFC 5258, LIST-STATUS
 * RFC 5819, SPECIAL-USE RFC 6154) and LSUB (RFC 3501 6.3.9).
 *
 * A job thread gathers the names: the folders on disk (links and
 * entries herald would not make are skipped by mindex_folders), the
 * subscriptions, and every superior of either ("a" of "a.b"), which is
 * listed \NonExistent (\Noselect for an IMAP4rev1 client that did not
 * use the extended syntax) when it is no folder itself, with
 * \HasChildren. Each name is matched in the client's form (modified
 * UTF-7, or UTF-8 after ENABLE IMAP4rev2 / UTF8=ACCEPT) against the
 * reference and pattern put together: "*" matches anything, "%"
 * anything but the delimiter. The matcher walks the name once keeping
 * the set of pattern positions it may be at (no backtracking), so a
 * hostile pattern costs at most pattern length times name length.
 *
 * Attributes: \HasChildren or \HasNoChildren always (RFC 9051 implies
 * the CHILDREN return option), the special-use attribute of the folder
 * always, \Subscribed with the SUBSCRIBED selection or return option,
 * and CHILDINFO ("SUBSCRIBED") for a name RECURSIVEMATCH lists only
 * because of a subscribed name below it. At most IMAPD_FOLDERS_MAX
 * names are listed; more end the command with NO [LIMIT].
 */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/mindex.h"
#include "imapd.h"
#include "imapd_mailbox.h"
#include "imapd_store.h"

/* selection options */
#define SEL_SUBSCRIBED 0x01
#define SEL_REMOTE 0x02
#define SEL_RECURSIVE 0x04
#define SEL_SPECIAL 0x08
/* return options */
#define RET_SUBSCRIBED 0x01
#define RET_CHILDREN 0x02
#define RET_SPECIAL 0x04
#define RET_STATUS 0x08

/* what is known of one name */
#define ENT_EXISTS 0x01		/* a folder on disk (or INBOX) */
#define ENT_SUB 0x02		/* subscribed */
#define ENT_CHILD 0x04		/* a folder exists below it */
#define ENT_SUBCHILD 0x08	/* a subscribed name exists below it */

struct imapd_lent {
	char *name;		/* UTF-8 */
	char *cname;		/* as the client writes it */
	unsigned flags;		/* ENT_* */
	unsigned special;	/* MINDEX_SPECIAL_* */
};

/* one LIST or LSUB */
struct imapd_listop {
	bool lsub;
	bool extended;		/* the RFC 5258 syntax was used */
	bool utf8;
	bool rev2;
	char *maildir;
	unsigned sel, ret;	/* SEL_*, RET_* */
	struct imapd_status_req st;
	char *pat[IMAPD_PATTERNS_MAX];	/* reference + pattern, client form */
	int npat;
	struct imapd_lent *e;
	size_t n, cap;
	struct buf out;		/* untagged lines, each ended by '\n' */
	struct buf tagged;
};

/* imapd_list_match - see imapd_mailbox.h */
bool
imapd_list_match(const char *pat, const char *name)
{
	size_t m = strlen(pat);
	unsigned char *cur, *nxt;
	bool ok;

	cur = xcalloc(m + 1, 1);
	nxt = xcalloc(m + 1, 1);
	cur[0] = 1;
	/* a wildcard may match nothing: close over it */
	for (size_t i = 0; i < m; i++)
		if (cur[i] && (pat[i] == '*' || pat[i] == '%'))
			cur[i + 1] = 1;
	for (const char *p = name; *p != '\0'; p++) {
		bool any = false;

		memset(nxt, 0, m + 1);
		for (size_t i = 0; i < m; i++) {
			if (!cur[i])
				continue;
			if (pat[i] == '*' ||
			    (pat[i] == '%' && *p != IMAPD_DELIM))
				nxt[i] = 1;
			else if (pat[i] == *p)
				nxt[i + 1] = 1;
		}
		for (size_t i = 0; i < m; i++)
			if (nxt[i] && (pat[i] == '*' || pat[i] == '%'))
				nxt[i + 1] = 1;
		for (size_t i = 0; i <= m; i++)
			any |= nxt[i] != 0;
		memcpy(cur, nxt, m + 1);
		if (!any)
			break;
	}
	ok = cur[m] != 0;
	free(cur);
	free(nxt);
	return ok;
}

/* imapd_listop_free - free a LIST operation */
static void
imapd_listop_free(struct imapd_listop **opp)
{
	struct imapd_listop *op = *opp;

	if (op == NULL)
		return;
	for (int i = 0; i < op->npat; i++)
		free(op->pat[i]);
	for (size_t i = 0; i < op->n; i++) {
		free(op->e[i].name);
		free(op->e[i].cname);
	}
	free(op->e);
	free(op->maildir);
	buf_free(&op->out);
	buf_free(&op->tagged);
	x_free(opp);
}

/* imapd_listop_add - a name with flags (merged later) */
static void
imapd_listop_add(struct imapd_listop *op, const char *name, unsigned flags,
    unsigned special)
{
	struct buf c = BUF_INIT;

	if (op->n == op->cap) {
		op->cap = op->cap ? 2 * op->cap : 64;
		op->e = xreallocarray(op->e, op->cap, sizeof(*op->e));
	}
	imapd_store_client_name(op->utf8, name, &c);
	op->e[op->n].name = xstrdup(name);
	op->e[op->n].cname = buf_steal(&c);
	op->e[op->n].flags = flags;
	op->e[op->n].special = special;
	op->n++;
}

/* imapd_listop_folder - a folder on disk (mindex_folders callback);
 * one with a link for cur/ or new/ is left out as a link is */
static void
imapd_listop_folder(const char *name, unsigned special, void *ctx)
{
	struct imapd_listop *op = ctx;

	if (imapd_store_folder_exists(op->maildir, name))
		imapd_listop_add(op, name, ENT_EXISTS, special);
}

/* imapd_lent_cmp - by UTF-8 name */
static int
imapd_lent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct imapd_lent *)a)->name,
	    ((const struct imapd_lent *)b)->name);
}

/* imapd_listop_find - the entry of name, or NULL (sorted) */
static struct imapd_lent *
imapd_listop_find(struct imapd_listop *op, const char *name)
{
	struct imapd_lent key = {.name = (char *)name};

	return bsearch(&key, op->e, op->n, sizeof(*op->e), imapd_lent_cmp);
}

/* imapd_listop_gather - every name with its flags (job thread) */
static int
imapd_listop_gather(struct imapd_listop *op, struct mindex *ix,
    struct buf *why)
{
	struct buf subs = BUF_INIT, anc = BUF_INIT;
	size_t n0, w;
	int rc = -1;

	if (mindex_folders(ix, imapd_listop_folder, op, why) < 0 ||
	    mindex_subscriptions(ix, &subs, why) < 0)
		goto out;
	for (char *p = subs.data, *nl; p != NULL && p < subs.data + subs.len;
	    p = nl + 1) {
		if ((nl = memchr(p, '\n', subs.len - (size_t)(p - subs.data)))
		    == NULL)
			break;
		*nl = '\0';
		if (*p != '\0')
			imapd_listop_add(op, p, ENT_SUB, 0);
	}
	/* superiors of every name */
	n0 = op->n;
	for (size_t i = 0; i < n0; i++) {
		const char *name = op->e[i].name;

		for (const char *d = strchr(name, IMAPD_DELIM); d != NULL;
		    d = strchr(d + 1, IMAPD_DELIM)) {
			buf_reset(&anc);
			buf_append(&anc, name, (size_t)(d - name));
			imapd_listop_add(op, buf_cstr(&anc), 0, 0);
		}
	}
	/* sort, merge duplicates */
	qsort(op->e, op->n, sizeof(*op->e), imapd_lent_cmp);
	for (size_t i = w = 0; i < op->n; i++) {
		if (w > 0 && strcmp(op->e[w - 1].name, op->e[i].name) == 0) {
			op->e[w - 1].flags |= op->e[i].flags;
			op->e[w - 1].special |= op->e[i].special;
			free(op->e[i].name);
			free(op->e[i].cname);
			continue;
		}
		op->e[w++] = op->e[i];
	}
	op->n = w;
	/* children */
	for (size_t i = 0; i < op->n; i++) {
		unsigned f = op->e[i].flags;
		const char *name = op->e[i].name;

		if (!(f & (ENT_EXISTS | ENT_SUB)))
			continue;
		for (const char *d = strchr(name, IMAPD_DELIM); d != NULL;
		    d = strchr(d + 1, IMAPD_DELIM)) {
			struct imapd_lent *a;

			buf_reset(&anc);
			buf_append(&anc, name, (size_t)(d - name));
			if ((a = imapd_listop_find(op, buf_cstr(&anc))) ==
			    NULL)
				continue;
			if (f & ENT_EXISTS)
				a->flags |= ENT_CHILD;
			if (f & ENT_SUB)
				a->flags |= ENT_SUBCHILD;
		}
	}
	rc = 0;
out:
	buf_free(&subs);
	buf_free(&anc);
	return rc;
}

/* imapd_listop_matches - does the entry match one of the patterns? */
static bool
imapd_listop_matches(const struct imapd_listop *op,
    const struct imapd_lent *e)
{
	for (int i = 0; i < op->npat; i++)
		if (imapd_list_match(op->pat[i], e->cname))
			return true;
	return false;
}

/* imapd_listop_lsub_parent - LSUB lists a parent of subscribed names
 * as \Noselect when a pattern ends in '%' */
static bool
imapd_listop_pct(const struct imapd_listop *op)
{
	for (int i = 0; i < op->npat; i++) {
		size_t n = strlen(op->pat[i]);

		if (n > 0 && op->pat[i][n - 1] == '%')
			return true;
	}
	return false;
}

/* imapd_listop_attrs - the attributes of e into out */
static void
imapd_listop_attrs(const struct imapd_listop *op,
    const struct imapd_lent *e, bool childinfo, struct buf *out)
{
	static const struct {
		unsigned bit;
		const char *name;
	} sp[] = {
		{MINDEX_SPECIAL_SENT, "\\Sent"},
		{MINDEX_SPECIAL_DRAFTS, "\\Drafts"},
		{MINDEX_SPECIAL_TRASH, "\\Trash"},
		{MINDEX_SPECIAL_JUNK, "\\Junk"},
		{MINDEX_SPECIAL_ARCHIVE, "\\Archive"},
	};
	size_t start = out->len;

#define ATTR(a) do { \
		if (out->len > start) \
			buf_putc(out, ' '); \
		buf_puts(out, (a)); \
	} while (0)
	if (op->lsub) {
		if (!(e->flags & ENT_SUB) || !(e->flags & ENT_EXISTS))
			ATTR("\\Noselect");
		return;
	}
	if (!(e->flags & ENT_EXISTS))
		ATTR(op->rev2 || op->extended ? "\\NonExistent" :
		    "\\Noselect");
	if (e->flags & ENT_CHILD)
		ATTR("\\HasChildren");
	else if (e->flags & ENT_EXISTS)
		ATTR("\\HasNoChildren");
	if ((e->flags & ENT_SUB) && ((op->sel & SEL_SUBSCRIBED) ||
	    (op->ret & RET_SUBSCRIBED)))
		ATTR("\\Subscribed");
	if (e->flags & ENT_EXISTS)
		for (size_t i = 0; i < sizeof(sp) / sizeof(sp[0]); i++)
			if (e->special & sp[i].bit)
				ATTR(sp[i].name);
	(void)childinfo;
#undef ATTR
}

/* imapd_listop_run - LIST / LSUB (job thread) */
static void
imapd_listop_run(struct imapd_job *job, struct mindex *ix)
{
	struct imapd_listop *op = job->ctx;
	bool pct = imapd_listop_pct(op);
	size_t listed = 0;

	if (imapd_listop_gather(op, ix, &job->why) < 0) {
		msg_warn("LIST: %s", buf_cstr(&job->why));
		buf_puts(&op->tagged, "NO [SERVERBUG] LIST failed: internal "
		    "error, see the server log");
		return;
	}
	for (size_t i = 0; i < op->n; i++) {
		struct imapd_lent *e = &op->e[i];
		bool show, childinfo = false;

		if (op->lsub) {
			show = (e->flags & ENT_SUB) || (pct &&
			    (e->flags & ENT_SUBCHILD));
		} else if (op->sel & SEL_SUBSCRIBED) {
			show = e->flags & ENT_SUB;
			if (!show && (op->sel & SEL_RECURSIVE) &&
			    (e->flags & ENT_SUBCHILD))
				show = childinfo = true;
		} else if (op->sel & SEL_SPECIAL) {
			show = (e->flags & ENT_EXISTS) && e->special != 0;
		} else {
			show = e->flags & (ENT_EXISTS | ENT_CHILD);
		}
		if (!show || !imapd_listop_matches(op, e))
			continue;
		if (++listed > IMAPD_FOLDERS_MAX) {
			buf_printf(&op->tagged, "NO [LIMIT] More than %d "
			    "mailboxes match", IMAPD_FOLDERS_MAX);
			return;
		}
		buf_printf(&op->out, "* %s (", op->lsub ? "LSUB" : "LIST");
		imapd_listop_attrs(op, e, childinfo, &op->out);
		buf_printf(&op->out, ") \"%c\" ", IMAPD_DELIM);
		imapd_store_write_name(op->utf8, e->name, &op->out);
		if (childinfo)
			buf_puts(&op->out, " (\"CHILDINFO\" (\"SUBSCRIBED\"))");
		buf_putc(&op->out, '\n');
		if ((op->ret & RET_STATUS) && (e->flags & ENT_EXISTS)) {
			size_t len = op->out.len;

			buf_reset(&job->why);
			if (imapd_status_line(ix, e->name, op->utf8, &op->st,
			    &op->out, &job->why) < 0) {
				/* RFC 5819: the STATUS may be left out */
				op->out.len = len;
				msg_warn("LIST-STATUS %s: %s", e->name,
				    buf_cstr(&job->why));
			}
		}
	}
	buf_printf(&op->tagged, "OK %s completed", op->lsub ? "LSUB" :
	    "LIST");
}

/* imapd_listop_done - send the answers (loop thread) */
static void
imapd_listop_done(struct imapd_job *job, struct imapd_session *s)
{
	struct imapd_listop *op = job->ctx;

	if (!s->base.closed) {
		const char *p = op->out.data, *end = p + op->out.len, *nl;

		for (; p != NULL && p < end; p = nl + 1) {
			if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
				break;
			imapd_session_reply(s, "%.*s", (int)(nl - p), p);
		}
		imapd_session_tagged(s, "%s", buf_cstr(&op->tagged));
	}
	imapd_listop_free(&op);
	imapd_job_free(&job);
}

/* imapd_list_sel - "(" selection options ")"; -1 bad */
static int
imapd_list_sel(struct imap_cursor *c, unsigned *sel)
{
	struct imap_token t;

	while (imap_cursor_next(c, &t) == IMAP_TOK_ATOM) {
		if (imap_tok_is(&t, "SUBSCRIBED"))
			*sel |= SEL_SUBSCRIBED;
		else if (imap_tok_is(&t, "REMOTE"))
			*sel |= SEL_REMOTE;
		else if (imap_tok_is(&t, "RECURSIVEMATCH"))
			*sel |= SEL_RECURSIVE;
		else if (imap_tok_is(&t, "SPECIAL-USE"))
			*sel |= SEL_SPECIAL;
		else
			return -1;
	}
	if (t.type != IMAP_TOK_CLOSE)
		return -1;
	/* RFC 5258 3.1: RECURSIVEMATCH needs another selection option */
	if ((*sel & SEL_RECURSIVE) && !(*sel & (SEL_SUBSCRIBED |
	    SEL_SPECIAL)))
		return -1;
	return 0;
}

/* imapd_list_ret - "RETURN" "(" return options ")"; -1 bad */
static int
imapd_list_ret(struct imapd_session *s, struct imap_cursor *c,
    struct imapd_listop *op)
{
	struct imap_token t;

	if (imap_cursor_next(c, &t) != IMAP_TOK_OPEN)
		return -1;
	while (imap_cursor_next(c, &t) == IMAP_TOK_ATOM) {
		if (imap_tok_is(&t, "SUBSCRIBED"))
			op->ret |= RET_SUBSCRIBED;
		else if (imap_tok_is(&t, "CHILDREN"))
			op->ret |= RET_CHILDREN;
		else if (imap_tok_is(&t, "SPECIAL-USE"))
			op->ret |= RET_SPECIAL;
		else if (imap_tok_is(&t, "STATUS") && !(op->ret &
		    RET_STATUS)) {
			if (imapd_status_parse(s, c, &op->st) < 0)
				return -1;
			op->ret |= RET_STATUS;
		} else
			return -1;
	}
	return t.type == IMAP_TOK_CLOSE ? 0 : -1;
}

/* imapd_list_pattern - reference + pattern, INBOX in upper case */
static int
imapd_list_pattern(struct imapd_listop *op, const struct buf *ref,
    const struct imap_token *t)
{
	struct buf pat = BUF_INIT;

	if (op->npat >= IMAPD_PATTERNS_MAX || (t->type != IMAP_TOK_ATOM &&
	    t->type != IMAP_TOK_STRING))
		return -1;
	buf_append(&pat, ref->data ? ref->data : "", ref->len);
	{
		struct buf p = BUF_INIT;

		imap_tok_string(t, &p);
		buf_append(&pat, p.data ? p.data : "", p.len);
		buf_free(&p);
	}
	if (pat.len > IMAPD_PATTERN_MAX || (pat.len > 0 &&
	    memchr(pat.data, '\0', pat.len) != NULL)) {
		buf_free(&pat);
		return -1;
	}
	buf_cstr(&pat);
	if (pat.len >= 5 && str_ncasecmp(pat.data, "INBOX", 5) == 0 &&
	    (pat.len == 5 || pat.data[5] == IMAPD_DELIM))
		memcpy(pat.data, "INBOX", 5);
	op->pat[op->npat++] = buf_steal(&pat);
	return 0;
}

/* imapd_list_cmd - LIST or LSUB */
static void
imapd_list_cmd(struct imapd_session *s, struct imap_cursor *c, bool lsub)
{
	struct imapd_listop *op = xcalloc(1, sizeof(*op));
	struct buf ref = BUF_INIT;
	struct imap_token t;
	struct imapd_job *job;
	bool empty = false;

	op->lsub = lsub;
	op->utf8 = imapd_store_utf8(s);
	op->rev2 = s->rev2;
	op->maildir = xstrdup(imapd_store_path(s));
	buf_init(&op->out);
	buf_init(&op->tagged);
	if (imap_cursor_next(c, &t) == IMAP_TOK_OPEN && !lsub) {
		op->extended = true;
		if (imapd_list_sel(c, &op->sel) < 0)
			goto bad;
		imap_cursor_next(c, &t);
	}
	if (!imap_tok_astring(&t))
		goto bad;
	imap_tok_string(&t, &ref);
	if (imap_cursor_next(c, &t) == IMAP_TOK_OPEN && !lsub) {
		op->extended = true;
		while (imap_cursor_next(c, &t) != IMAP_TOK_CLOSE)
			if (imapd_list_pattern(op, &ref, &t) < 0)
				goto bad;
		if (op->npat == 0)
			goto bad;
	} else {
		if (imapd_list_pattern(op, &ref, &t) < 0)
			goto bad;
		imap_tok_string(&t, &op->out);	/* the pattern alone */
		empty = op->out.len == 0;
		buf_reset(&op->out);
	}
	if (imap_cursor_next(c, &t) == IMAP_TOK_ATOM && !lsub &&
	    imap_tok_is(&t, "RETURN")) {
		op->extended = true;
		if (imapd_list_ret(s, c, op) < 0)
			goto bad;
		imap_cursor_next(c, &t);
	}
	if (t.type != IMAP_TOK_END)
		goto bad;
	if (empty) {
		/* the delimiter and the root of the reference */
		const char *d = ref.len ? memchr(ref.data, IMAPD_DELIM,
		    ref.len) : NULL;

		buf_reset(&s->scratch);
		buf_printf(&s->scratch, "* %s (\\Noselect) \"%c\" \"",
		    lsub ? "LSUB" : "LIST", IMAPD_DELIM);
		if (d != NULL)
			for (const char *p = ref.data; p <= d; p++) {
				if (*p == '"' || *p == '\\')
					buf_putc(&s->scratch, '\\');
				buf_putc(&s->scratch, *p);
			}
		buf_putc(&s->scratch, '"');
		imapd_session_reply(s, "%s", buf_cstr(&s->scratch));
		buf_reset(&s->scratch);
		imapd_session_tagged(s, "OK %s completed", lsub ? "LSUB" :
		    "LIST");
		imapd_listop_free(&op);
		buf_free(&ref);
		return;
	}
	buf_free(&ref);
	job = imapd_job_new();
	job->run = imapd_listop_run;
	job->done = imapd_listop_done;
	job->ctx = op;
	imapd_store_submit(s, job);
	return;
bad:
	imapd_listop_free(&op);
	buf_free(&ref);
	imapd_session_bad(s, "BAD Syntax: %s", lsub ? "LSUB reference "
	    "pattern" : "LIST [(options)] reference pattern "
	    "[RETURN (options)]");
}

/* imapd_list_list - LIST */
void
imapd_list_list(struct imapd_session *s, struct imap_cursor *c)
{
	imapd_list_cmd(s, c, false);
}

/* imapd_list_lsub - LSUB */
void
imapd_list_lsub(struct imapd_session *s, struct imap_cursor *c)
{
	imapd_list_cmd(s, c, true);
}
