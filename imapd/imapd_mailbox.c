/*
 * imapd_mailbox - CREATE, DELETE, RENAME (RFC 9051 6.3.4-6.3.6, RFC 6154
 * CREATE-SPECIAL-USE), SUBSCRIBE and UNSUBSCRIBE (6.3.7-8), STATUS
 * (6.3.11) and the QUOTA commands (RFC 9208).
 *
 * Each command checks its arguments in the loop thread (bad syntax: BAD;
 * a name that is no valid mailbox name: NO [CANNOT]), then a job thread
 * does the disk work (imapd_store.h) and builds the untagged lines and
 * the tagged answer, which the loop thread sends.
 *
 * Semantics, Maildir++ style:
 *   CREATE    "a.b." creates "a.b" (a trailing delimiter only declares
 *             the intent to create names below); missing superiors
 *             ("a") are created too; INBOX or an existing name: NO
 *             [ALREADYEXISTS]; more than IMAPD_FOLDERS_MAX folders: NO
 *             [LIMIT]. USE (attr): special use is the folder's name
 *             ("Sent" is \Sent), so only the matching attribute is
 *             accepted; any other: NO [USEATTR], nothing created.
 *   DELETE    removes the folder and its messages; names below it stay
 *             (they are folders of their own) and the deleted name is
 *             then listed \NonExistent (\Noselect in IMAP4rev1). INBOX:
 *             NO [CANNOT]; a name that is no folder: NO [NONEXISTENT].
 *   RENAME    moves the folder and every folder below it, keeping UIDs;
 *             RENAME INBOX moves its messages into the new folder and
 *             leaves INBOX empty.
 *   STATUS    syncs the folder first, so mail delivered since counts.
 *   QUOTA     one quota root "" with STORAGE (KB): the user's quota in
 *             the directory (default_quota when it has none), usage as
 *             local delivery counts it. SETQUOTA: NO (heraldctl user
 *             quota sets it).
 */
#include <errno.h>
#include <string.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "mail/dir.h"
#include "mail/maildir.h"
#include "mail/mindex.h"
#include "mail/params.h"
#include "imapd.h"
#include "imapd_mailbox.h"
#include "imapd_store.h"

enum imapd_mbop_kind {
	MBOP_CREATE, MBOP_DELETE, MBOP_RENAME, MBOP_SUBSCRIBE,
	MBOP_UNSUBSCRIBE, MBOP_STATUS, MBOP_QUOTA, MBOP_QUOTAROOT,
};

/* one mailbox command for a job thread */
struct imapd_mbop {
	enum imapd_mbop_kind kind;
	char *a, *b;		/* UTF-8 names */
	char *maildir;
	char *cmd;		/* the command name, for the answers */
	bool utf8;		/* names as the client writes them */
	unsigned use;		/* CREATE ... USE: MINDEX_SPECIAL_* */
	long long quota;	/* bytes; 0: none */
	struct imapd_status_req st;
	struct buf out;		/* untagged lines, each ended by '\n' */
	struct buf tagged;	/* the tagged answer */
};

static struct dir *imapd_mailbox_dir;	/* the directory, for quotas */

/* imapd_mbop_free - free an operation */
static void
imapd_mbop_free(struct imapd_mbop **opp)
{
	struct imapd_mbop *op = *opp;

	if (op == NULL)
		return;
	x_free(&op->a);
	x_free(&op->b);
	x_free(&op->maildir);
	x_free(&op->cmd);
	buf_free(&op->out);
	buf_free(&op->tagged);
	x_free(opp);
}

/* imapd_mbop_fail - the tagged NO for an index error (logged) */
static void
imapd_mbop_fail(struct imapd_mbop *op, const char *what, struct buf *why)
{
	if (errno == ENOSPC || errno == EDQUOT) {
		buf_printf(&op->tagged, "NO [OVERQUOTA] %s failed: out of "
		    "disk space", op->cmd);
		return;
	}
	msg_warn("%s: %s %s: %s", op->maildir, op->cmd, what,
	    buf_cstr(why));
	buf_printf(&op->tagged, "NO [SERVERBUG] %s failed: internal "
	    "error, see the server log", op->cmd);
}

/* imapd_mbop_count - count folders (mindex_folders callback) */
static void
imapd_mbop_count(const char *name, unsigned special, void *ctx)
{
	(void)name;
	(void)special;
	(*(size_t *)ctx)++;
}

/* imapd_mbop_create - CREATE (job thread) */
static void
imapd_mbop_create(struct imapd_mbop *op, struct mindex *ix,
    struct buf *why)
{
	struct mindex_sync_result sr;
	struct mindex_status st;
	size_t n = 0;

	if (strcmp(op->a, "INBOX") == 0 ||
	    imapd_store_folder_exists(op->maildir, op->a)) {
		buf_printf(&op->tagged, "NO [ALREADYEXISTS] Mailbox exists");
		return;
	}
	if (op->use != 0 && mindex_special_use(op->a) != op->use) {
		buf_printf(&op->tagged, "NO [USEATTR] herald gives that "
		    "special use only to the folder of its name");
		return;
	}
	if (mindex_folders(ix, imapd_mbop_count, &n, why) < 0) {
		imapd_mbop_fail(op, "list", why);
		return;
	}
	if (n >= IMAPD_FOLDERS_MAX) {
		buf_printf(&op->tagged, "NO [LIMIT] Too many mailboxes "
		    "(at most %d)", IMAPD_FOLDERS_MAX);
		return;
	}
	/* superiors first: "a" and "a.b" for "a.b.c" */
	for (char *p = strchr(op->a, IMAPD_DELIM); p != NULL;
	    p = strchr(p + 1, IMAPD_DELIM)) {
		*p = '\0';
		if (strcmp(op->a, "INBOX") != 0 &&
		    !imapd_store_folder_exists(op->maildir, op->a) &&
		    mindex_folder_create(ix, op->a, why) < 0 &&
		    errno != EEXIST) {
			*p = IMAPD_DELIM;
			imapd_mbop_fail(op, "create", why);
			return;
		}
		*p = IMAPD_DELIM;
		buf_reset(why);
	}
	if (mindex_folder_create(ix, op->a, why) < 0) {
		if (errno == EEXIST)
			buf_printf(&op->tagged, "NO [ALREADYEXISTS] Mailbox "
			    "exists");
		else
			imapd_mbop_fail(op, "create", why);
		return;
	}
	/* RFC 8474 4.1: the new folder's MAILBOXID in the tagged OK (the
	 * folder is made; if it cannot be indexed now, the OK goes without) */
	if (mindex_sync(ix, op->a, &sr, why) == 0 &&
	    mindex_status(ix, op->a, &st, why) == 0)
		buf_printf(&op->tagged, "OK [MAILBOXID (%s)] CREATE completed",
		    st.mailboxid);
	else
		buf_puts(&op->tagged, "OK CREATE completed");
	buf_reset(why);
}

/* imapd_mbop_delete - DELETE (job thread) */
static void
imapd_mbop_delete(struct imapd_mbop *op, struct mindex *ix,
    struct buf *why)
{
	if (strcmp(op->a, "INBOX") == 0) {
		buf_puts(&op->tagged, "NO [CANNOT] INBOX cannot be deleted");
		return;
	}
	if (!imapd_store_folder_exists(op->maildir, op->a)) {
		buf_puts(&op->tagged, "NO [NONEXISTENT] No such mailbox");
		return;
	}
	if (mindex_folder_delete(ix, op->a, true, why) < 0) {
		if (errno == ENOENT)
			buf_puts(&op->tagged, "NO [NONEXISTENT] No such "
			    "mailbox");
		else
			imapd_mbop_fail(op, "delete", why);
		return;
	}
	buf_puts(&op->tagged, "OK DELETE completed");
}

/* imapd_mbop_rename - RENAME (job thread) */
static void
imapd_mbop_rename(struct imapd_mbop *op, struct mindex *ix,
    struct buf *why)
{
	size_t n = strlen(op->a);

	if (!imapd_store_folder_exists(op->maildir, op->a)) {
		buf_puts(&op->tagged, "NO [NONEXISTENT] No such mailbox");
		return;
	}
	if (strcmp(op->b, "INBOX") == 0 ||
	    imapd_store_folder_exists(op->maildir, op->b)) {
		buf_puts(&op->tagged, "NO [ALREADYEXISTS] The new name "
		    "exists");
		return;
	}
	if (strcmp(op->a, "INBOX") != 0 && strncmp(op->b, op->a, n) == 0 &&
	    op->b[n] == IMAPD_DELIM) {
		buf_puts(&op->tagged, "NO [CANNOT] Cannot move a mailbox "
		    "below itself");
		return;
	}
	if (mindex_folder_rename(ix, op->a, op->b, why) < 0) {
		if (errno == EEXIST)
			buf_puts(&op->tagged, "NO [ALREADYEXISTS] The new "
			    "name exists");
		else if (errno == ENOENT)
			buf_puts(&op->tagged, "NO [NONEXISTENT] No such "
			    "mailbox");
		else
			imapd_mbop_fail(op, "rename", why);
		return;
	}
	buf_puts(&op->tagged, "OK RENAME completed");
}

/* imapd_mbop_subscribe - SUBSCRIBE / UNSUBSCRIBE (job thread) */
static void
imapd_mbop_subscribe(struct imapd_mbop *op, struct mindex *ix,
    struct buf *why)
{
	bool on = op->kind == MBOP_SUBSCRIBE;
	struct buf subs = BUF_INIT;
	size_t n = 0;

	if (mindex_subscriptions(ix, &subs, why) < 0) {
		imapd_mbop_fail(op, "subscriptions", why);
		goto out;
	}
	for (size_t i = 0; i < subs.len; i++)
		n += subs.data[i] == '\n';
	if (on && n >= IMAPD_FOLDERS_MAX) {
		buf_printf(&op->tagged, "NO [LIMIT] Too many subscriptions "
		    "(at most %d)", IMAPD_FOLDERS_MAX);
		goto out;
	}
	if (mindex_subscribe(ix, op->a, on, why) < 0) {
		imapd_mbop_fail(op, on ? "subscribe" : "unsubscribe", why);
		goto out;
	}
	buf_printf(&op->tagged, "OK %s completed", op->cmd);
out:
	buf_free(&subs);
}

/* the STATUS item names, by enum imapd_status_item */
static const char *const imapd_status_names[IMAPD_ST_COUNT] = {
	"MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "DELETED", "SIZE",
	"HIGHESTMODSEQ", "RECENT", "APPENDLIMIT", "DELETED-STORAGE",
	"MAILBOXID",
};

/* imapd_status_parse - "(" item... ")" */
int
imapd_status_parse(struct imapd_session *s, struct imap_cursor *c,
    struct imapd_status_req *req)
{
	struct imap_token t;
	unsigned seen = 0;

	(void)s;
	req->n = 0;
	if (imap_cursor_next(c, &t) != IMAP_TOK_OPEN)
		return -1;
	while (imap_cursor_next(c, &t) == IMAP_TOK_ATOM) {
		int i;

		for (i = 0; i < IMAPD_ST_COUNT; i++)
			if (imap_tok_is(&t, imapd_status_names[i]))
				break;
		if (i == IMAPD_ST_COUNT)
			return -1;
		if (!(seen & (1u << i))) {
			seen |= 1u << i;
			req->item[req->n++] = (enum imapd_status_item)i;
		}
	}
	if (t.type != IMAP_TOK_CLOSE || req->n == 0)
		return -1;
	return 0;
}

/* imapd_status_deleted - sum the size of \Deleted messages */
static int
imapd_status_deleted(const struct mindex_msg *m, void *ctx)
{
	if (m->flags & MINDEX_F_DELETED)
		*(uint64_t *)ctx += m->wsize;
	return 0;
}

/* imapd_status_line - "* STATUS name (...)\n" */
int
imapd_status_line(struct mindex *ix, const char *folder, bool utf8,
    const struct imapd_status_req *req, struct buf *out, struct buf *why)
{
	struct mindex_sync_result sr;
	struct mindex_status st;
	uint64_t dsize = 0;

	if (mindex_sync(ix, folder, &sr, why) < 0 ||
	    mindex_status(ix, folder, &st, why) < 0)
		return -1;
	for (int i = 0; i < req->n; i++)
		if (req->item[i] == IMAPD_ST_DELETED_STORAGE &&
		    mindex_list(ix, folder, 1, UINT32_MAX,
		    imapd_status_deleted, &dsize, why) < 0)
			return -1;
	buf_puts(out, "* STATUS ");
	imapd_store_write_name(utf8, folder, out);
	buf_puts(out, " (");
	for (int i = 0; i < req->n; i++) {
		unsigned long long v = 0;

		switch (req->item[i]) {
		case IMAPD_ST_MESSAGES: v = st.messages; break;
		case IMAPD_ST_UIDNEXT: v = st.uidnext; break;
		case IMAPD_ST_UIDVALIDITY: v = st.uidvalidity; break;
		case IMAPD_ST_UNSEEN: v = st.unseen; break;
		case IMAPD_ST_DELETED: v = st.deleted; break;
		case IMAPD_ST_SIZE: v = st.size; break;
		case IMAPD_ST_HIGHESTMODSEQ: v = st.highestmodseq; break;
		case IMAPD_ST_RECENT: v = st.recent; break;
		case IMAPD_ST_APPENDLIMIT:
			v = (unsigned long long)var_imapd_literal_limit;
			break;
		case IMAPD_ST_DELETED_STORAGE: v = (dsize + 1023) / 1024;
			break;
		case IMAPD_ST_MAILBOXID:	/* RFC 8474 4.2 */
			buf_printf(out, "%sMAILBOXID (%s)", i ? " " : "",
			    st.mailboxid);
			continue;
		case IMAPD_ST_COUNT: break;
		}
		buf_printf(out, "%s%s %llu", i ? " " : "",
		    imapd_status_names[req->item[i]], v);
	}
	buf_puts(out, ")\n");
	return 0;
}

/* imapd_mbop_status - STATUS (job thread) */
static void
imapd_mbop_status(struct imapd_mbop *op, struct mindex *ix,
    struct buf *why)
{
	if (!imapd_store_folder_exists(op->maildir, op->a)) {
		buf_puts(&op->tagged, "NO [NONEXISTENT] No such mailbox");
		return;
	}
	if (imapd_status_line(ix, op->a, op->utf8, &op->st, &op->out,
	    why) < 0) {
		buf_reset(&op->out);
		imapd_mbop_fail(op, "status", why);
		return;
	}
	buf_puts(&op->tagged, "OK STATUS completed");
}

/* imapd_mbop_quota - GETQUOTA / GETQUOTAROOT (job thread) */
static void
imapd_mbop_quota(struct imapd_mbop *op, struct buf *why)
{
	long long used = 0;

	if (op->kind == MBOP_QUOTAROOT) {
		if (!imapd_store_folder_exists(op->maildir, op->a)) {
			buf_puts(&op->tagged, "NO [NONEXISTENT] No such "
			    "mailbox");
			return;
		}
		buf_puts(&op->out, "* QUOTAROOT ");
		imapd_store_write_name(op->utf8, op->a, &op->out);
		buf_puts(&op->out, op->quota > 0 ? " \"\"\n" : "\n");
	} else if (op->quota <= 0) {
		buf_puts(&op->tagged, "NO [NONEXISTENT] No such quota root");
		return;
	}
	if (op->quota > 0) {
		if (maildir_usage(op->maildir, &used, why) < 0) {
			buf_reset(&op->out);
			imapd_mbop_fail(op, "quota usage", why);
			return;
		}
		buf_printf(&op->out, "* QUOTA \"\" (STORAGE %lld %lld)\n",
		    (used + 1023) / 1024, op->quota / 1024);
	}
	buf_printf(&op->tagged, "OK %s completed", op->cmd);
}

/* imapd_mbop_run - do the operation (job thread) */
static void
imapd_mbop_run(struct imapd_job *job, struct mindex *ix)
{
	struct imapd_mbop *op = job->ctx;

	switch (op->kind) {
	case MBOP_CREATE:
		imapd_mbop_create(op, ix, &job->why);
		break;
	case MBOP_DELETE:
		imapd_mbop_delete(op, ix, &job->why);
		break;
	case MBOP_RENAME:
		imapd_mbop_rename(op, ix, &job->why);
		break;
	case MBOP_SUBSCRIBE:
	case MBOP_UNSUBSCRIBE:
		imapd_mbop_subscribe(op, ix, &job->why);
		break;
	case MBOP_STATUS:
		imapd_mbop_status(op, ix, &job->why);
		break;
	case MBOP_QUOTA:
	case MBOP_QUOTAROOT:
		imapd_mbop_quota(op, &job->why);
		break;
	}
}

/* imapd_mbop_done - send the answers (loop thread) */
static void
imapd_mbop_done(struct imapd_job *job, struct imapd_session *s)
{
	struct imapd_mbop *op = job->ctx;

	if (!s->base.closed) {
		const char *p = op->out.data, *end = p + op->out.len, *nl;

		for (; p != NULL && p < end; p = nl + 1) {
			nl = memchr(p, '\n', (size_t)(end - p));
			if (nl == NULL)
				break;
			imapd_session_reply(s, "%.*s", (int)(nl - p), p);
		}
		imapd_session_tagged(s, "%s", buf_cstr(&op->tagged));
	}
	imapd_mbop_free(&op);
	imapd_job_free(&job);
}

/* imapd_mbop_new - an operation for s */
static struct imapd_mbop *
imapd_mbop_new(struct imapd_session *s, enum imapd_mbop_kind kind)
{
	struct imapd_mbop *op = xcalloc(1, sizeof(*op));

	op->kind = kind;
	op->maildir = xstrdup(imapd_store_path(s));
	op->cmd = xstrdup(s->base.last_cmd);
	op->utf8 = imapd_store_utf8(s);
	buf_init(&op->out);
	buf_init(&op->tagged);
	return op;
}

/* imapd_mbop_submit - hand op to a job thread */
static void
imapd_mbop_submit(struct imapd_session *s, struct imapd_mbop *op)
{
	struct imapd_job *job = imapd_job_new();

	job->run = imapd_mbop_run;
	job->done = imapd_mbop_done;
	job->ctx = op;
	imapd_store_submit(s, job);
}

/* imapd_mailbox_arg - a mailbox argument: the token must be an
 * astring; its checked UTF-8 name into out. -1: answered (BAD for the
 * syntax, NO [CANNOT] for the name) */
static int
imapd_mailbox_arg(struct imapd_session *s, const struct imap_token *t,
    bool strip_delim, struct buf *out)
{
	struct buf raw = BUF_INIT, why = BUF_INIT;
	int rc = -1;

	if (!imap_tok_astring(t)) {
		imapd_session_bad(s, "BAD Syntax: mailbox name expected");
		goto out;
	}
	imap_tok_string(t, &raw);
	if (strip_delim && raw.len > 1 && raw.data[raw.len - 1] ==
	    IMAPD_DELIM)
		raw.len--;
	if (imapd_store_name(s, raw.data ? raw.data : "", raw.len, out,
	    &why) < 0) {
		imapd_session_tagged(s, "NO [CANNOT] Invalid mailbox name: %s",
		    buf_cstr(&why));
		goto out;
	}
	rc = 0;
out:
	buf_free(&raw);
	buf_free(&why);
	return rc;
}

/* imapd_mailbox_one - a command whose one argument is a mailbox */
static void
imapd_mailbox_one(struct imapd_session *s, struct imap_cursor *c,
    enum imapd_mbop_kind kind)
{
	struct imap_token t, end;
	struct buf name = BUF_INIT;
	struct imapd_mbop *op;

	if (imap_cursor_next(c, &t) == IMAP_TOK_ERROR ||
	    imap_cursor_next(c, &end) != IMAP_TOK_END) {
		imapd_session_bad(s, "BAD Syntax: %s mailbox",
		    s->base.last_cmd);
		goto out;
	}
	if (imapd_mailbox_arg(s, &t, false, &name) < 0)
		goto out;
	op = imapd_mbop_new(s, kind);
	op->a = buf_steal(&name);
	imapd_mbop_submit(s, op);
out:
	buf_free(&name);
}

/* imapd_mailbox_use - RFC 6154 "(USE (\attr ...))": 0 with *use, -1 */
static int
imapd_mailbox_use(struct imap_cursor *c, unsigned *use)
{
	static const struct {
		const char *name;
		unsigned bit;
	} attrs[] = {
		{"\\Sent", MINDEX_SPECIAL_SENT},
		{"\\Drafts", MINDEX_SPECIAL_DRAFTS},
		{"\\Trash", MINDEX_SPECIAL_TRASH},
		{"\\Junk", MINDEX_SPECIAL_JUNK},
		{"\\Archive", MINDEX_SPECIAL_ARCHIVE},
		{"\\All", 0x100},
		{"\\Flagged", 0x200},
	};
	struct imap_token t;

	*use = 0;
	if (imap_cursor_next(c, &t) != IMAP_TOK_ATOM || !imap_tok_is(&t,
	    "USE") || imap_cursor_next(c, &t) != IMAP_TOK_OPEN)
		return -1;
	while (imap_cursor_next(c, &t) == IMAP_TOK_ATOM) {
		size_t i;

		for (i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++)
			if (imap_tok_is(&t, attrs[i].name))
				break;
		/* an attribute herald does not know cannot be given */
		*use |= i < sizeof(attrs) / sizeof(attrs[0]) ? attrs[i].bit :
		    0x400;
	}
	if (t.type != IMAP_TOK_CLOSE || imap_cursor_next(c, &t) !=
	    IMAP_TOK_CLOSE)
		return -1;
	return 0;
}

/* imapd_mailbox_create - CREATE mailbox [(USE (\attr...))] */
void
imapd_mailbox_create(struct imapd_session *s, struct imap_cursor *c)
{
	struct imap_token t, x;
	struct buf name = BUF_INIT;
	struct imapd_mbop *op;
	unsigned use = 0;

	if (imap_cursor_next(c, &t) == IMAP_TOK_ERROR)
		goto bad;
	if (imap_cursor_next(c, &x) == IMAP_TOK_OPEN) {
		if (imapd_mailbox_use(c, &use) < 0 || use == 0 ||
		    imap_cursor_next(c, &x) != IMAP_TOK_END)
			goto bad;
	} else if (x.type != IMAP_TOK_END) {
		goto bad;
	}
	if (imapd_mailbox_arg(s, &t, true, &name) < 0)
		goto out;
	op = imapd_mbop_new(s, MBOP_CREATE);
	op->a = buf_steal(&name);
	op->use = use;
	imapd_mbop_submit(s, op);
	goto out;
bad:
	imapd_session_bad(s, "BAD Syntax: CREATE mailbox [(USE (\\attr))]");
out:
	buf_free(&name);
}

/* imapd_mailbox_delete - DELETE mailbox */
void
imapd_mailbox_delete(struct imapd_session *s, struct imap_cursor *c)
{
	imapd_mailbox_one(s, c, MBOP_DELETE);
}

/* imapd_mailbox_rename - RENAME existing new */
void
imapd_mailbox_rename(struct imapd_session *s, struct imap_cursor *c)
{
	struct imap_token t, u, end;
	struct buf from = BUF_INIT, to = BUF_INIT;
	struct imapd_mbop *op;

	if (imap_cursor_next(c, &t) == IMAP_TOK_ERROR ||
	    imap_cursor_next(c, &u) == IMAP_TOK_ERROR ||
	    imap_cursor_next(c, &end) != IMAP_TOK_END) {
		imapd_session_bad(s, "BAD Syntax: RENAME existing new");
		goto out;
	}
	if (imapd_mailbox_arg(s, &t, false, &from) < 0 ||
	    imapd_mailbox_arg(s, &u, false, &to) < 0)
		goto out;
	op = imapd_mbop_new(s, MBOP_RENAME);
	op->a = buf_steal(&from);
	op->b = buf_steal(&to);
	imapd_mbop_submit(s, op);
out:
	buf_free(&from);
	buf_free(&to);
}

/* imapd_mailbox_subscribe - SUBSCRIBE mailbox */
void
imapd_mailbox_subscribe(struct imapd_session *s, struct imap_cursor *c)
{
	imapd_mailbox_one(s, c, MBOP_SUBSCRIBE);
}

/* imapd_mailbox_unsubscribe - UNSUBSCRIBE mailbox */
void
imapd_mailbox_unsubscribe(struct imapd_session *s, struct imap_cursor *c)
{
	imapd_mailbox_one(s, c, MBOP_UNSUBSCRIBE);
}

/* imapd_mailbox_status - STATUS mailbox (item...) */
void
imapd_mailbox_status(struct imapd_session *s, struct imap_cursor *c)
{
	struct imap_token t, end;
	struct imapd_status_req req;
	struct buf name = BUF_INIT;
	struct imapd_mbop *op;

	if (imap_cursor_next(c, &t) == IMAP_TOK_ERROR ||
	    imapd_status_parse(s, c, &req) < 0 ||
	    imap_cursor_next(c, &end) != IMAP_TOK_END) {
		imapd_session_bad(s, "BAD Syntax: STATUS mailbox (MESSAGES "
		    "UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE ...)");
		goto out;
	}
	if (imapd_mailbox_arg(s, &t, false, &name) < 0)
		goto out;
	op = imapd_mbop_new(s, MBOP_STATUS);
	op->a = buf_steal(&name);
	op->st = req;
	imapd_mbop_submit(s, op);
out:
	buf_free(&name);
}

/* imapd_mailbox_quota_of - the user's quota in bytes (0: none), or -1
 * when the directory cannot say (a single LMDB read: loop thread) */
long long
imapd_mailbox_quota_of(const char *user)
{
	struct buf why = BUF_INIT;
	struct dir_user u;
	long long q = -1;
	int rc;

	if (imapd_mailbox_dir == NULL && dir_open(var_data_directory,
	    DIR_READ, &imapd_mailbox_dir, &why) < 0) {
		msg_warn("quota: cannot open the directory: %s",
		    buf_cstr(&why));
		goto out;
	}
	rc = dir_user_get(imapd_mailbox_dir, user, &u, &why);
	if (rc < 0)
		msg_warn("quota: %s: %s", user, buf_cstr(&why));
	else if (rc == 0)
		q = 0;
	else
		q = u.quota < 0 ? var_default_quota : u.quota;
out:
	buf_free(&why);
	return q;
}

/* imapd_mailbox_quota_cmd - GETQUOTA root / GETQUOTAROOT mailbox */
static void
imapd_mailbox_quota_cmd(struct imapd_session *s, struct imap_cursor *c,
    enum imapd_mbop_kind kind)
{
	struct imap_token t, end;
	struct buf name = BUF_INIT;
	struct imapd_mbop *op;
	long long q;

	if (imap_cursor_next(c, &t) == IMAP_TOK_ERROR ||
	    !imap_tok_astring(&t) ||
	    imap_cursor_next(c, &end) != IMAP_TOK_END) {
		imapd_session_bad(s, "BAD Syntax: %s %s", s->base.last_cmd,
		    kind == MBOP_QUOTA ? "quota-root" : "mailbox");
		goto out;
	}
	if (kind == MBOP_QUOTAROOT) {
		if (imapd_mailbox_arg(s, &t, false, &name) < 0)
			goto out;
	} else {
		imap_tok_string(&t, &name);
		if (name.len != 0) {
			imapd_session_tagged(s, "NO [NONEXISTENT] No such "
			    "quota root");
			goto out;
		}
	}
	if ((q = imapd_mailbox_quota_of(imapd_store_user(s))) < 0) {
		imapd_session_tagged(s, "NO [UNAVAILABLE] Quota unavailable");
		goto out;
	}
	op = imapd_mbop_new(s, kind);
	op->a = buf_steal(&name);
	op->quota = q;
	imapd_mbop_submit(s, op);
out:
	buf_free(&name);
}

/* imapd_mailbox_getquota - GETQUOTA root */
void
imapd_mailbox_getquota(struct imapd_session *s, struct imap_cursor *c)
{
	imapd_mailbox_quota_cmd(s, c, MBOP_QUOTA);
}

/* imapd_mailbox_getquotaroot - GETQUOTAROOT mailbox */
void
imapd_mailbox_getquotaroot(struct imapd_session *s, struct imap_cursor *c)
{
	imapd_mailbox_quota_cmd(s, c, MBOP_QUOTAROOT);
}

/* imapd_mailbox_setquota - SETQUOTA: the administrator's business */
void
imapd_mailbox_setquota(struct imapd_session *s, struct imap_cursor *c)
{
	(void)c;
	imapd_session_tagged(s, "NO [NOPERM] Quotas are set by the "
	    "administrator (heraldctl user quota)");
}
