/*
 * imapd_append - APPEND (RFC 9051 6.3.12) with flags, date-time and
 * MULTIAPPEND (RFC 3502), literal8 of BINARY (RFC 3516), APPENDUID of
 * UIDPLUS (RFC 4315), APPENDLIMIT (RFC 7889) and the UTF8 data item of
 * UTF8=ACCEPT (RFC 6855 section 4: "UTF8 (~{n}...)", a literal8; BAD
 * unless the client enabled UTF8=ACCEPT or IMAP4rev2).
 *
 * Message literals are not held in memory. At the "{n}" header of a
 * literal of APPEND_SPOOL_MIN bytes or more in an APPEND command (the
 * parser asks imapd_append_spool) a spool file is opened in the
 * Maildir's tmp/ with O_TMPFILE (it has no name, so a client that
 * disconnects mid-literal leaves nothing behind; where O_TMPFILE is not
 * supported, a mkstemp file unlinked at once) and the literal's bytes
 * are written to it as they arrive, a stream buffer (16 KB) at a time,
 * so an APPEND costs a chunk of memory whatever its size. These writes
 * run on the event loop: each is bounded by the stream buffer and goes
 * to the page cache of a local file, the same order of work as reading
 * the socket; nothing that grows with the mailbox or the message
 * (fsync, copy into the Maildir, the index) runs there. Smaller
 * literals stay in the command and are copied out of it into memory
 * (the command's text is wiped when its handler returns); the job
 * writes them once, straight into the Maildir's tmp/
 * (mindex_append_mem), with no file in between.
 * Bounds: each literal imapd_literal_limit (APPENDLIMIT), the spooled
 * bytes of one command APPEND_SPOOL_TOTAL.
 * The whole command is then checked, and the messages go to
 * mindex_append on a job thread, with the user's quota (the directory's
 * or default_quota) checked there first: NO [OVERQUOTA] if the messages
 * would not fit.
 * MULTIAPPEND is all or nothing: when a message fails, the ones already
 * appended by the command are expunged again.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/maildir.h"
#include "mail/mindex.h"
#include "mail/params.h"
#include "imapd.h"
#include "imapd_sel.h"
#include "imapd_store.h"

#define APPEND_MAX 100		/* messages of one MULTIAPPEND */
#define APPEND_SPOOL_MIN (64 * 1024)	/* literals this big go to a file */
#define APPEND_SPOOL_TOTAL (4ULL * 1024 * 1024 * 1024)	/* per command */

/* the spooled literals of the command being read (imapd.h) */
struct imapd_spool {
	int fd[IMAP_LITERALS_MAX];	/* by literal index; -1 none */
	bool nul[IMAP_LITERALS_MAX];	/* a NUL came in a non-literal8 */
	bool lit8;		/* the one being written is literal8 */
	size_t cur;		/* its index */
	unsigned long long total;	/* bytes spooled by the command */
	unsigned long long asked;	/* bytes of all its literals */
	int err_no;		/* why the spool failed */
	bool quota_read;	/* quota is the user's (first literal) */
	long long quota;	/* bytes, 0 none, -1 the directory failed */
	struct maildir_usage_snap usage;	/* the last usage read */
};

/* one message of an APPEND */
struct append_msg {
	uint32_t flags;
	char *kw[MINDEX_KEYWORDS_MAX];
	size_t nkw;
	int64_t date;		/* 0: now */
	const char *p;		/* the literal in the command, while parsed */
	char *mem;		/* not spooled: its bytes, copied */
	size_t len;
	size_t lit_index;	/* spooled: its literal */
};

/* imapd_append_limit - the largest message APPEND takes */
unsigned long long
imapd_append_limit(void)
{
	unsigned long long lim = (unsigned long long)var_imapd_literal_limit;

	return lim;
}

/* append_is_append - is the command in p an APPEND (tag SP "APPEND"
 * SP)? */
static bool
append_is_append(const struct imap_parser *p)
{
	const char *d = p->cmd.data, *sp;
	size_t n = p->cmd.len;

	if (n == 0 || (sp = memchr(d, ' ', n)) == NULL)
		return false;
	n -= (size_t)(sp + 1 - d);
	return n > 7 && strncasecmp(sp + 1, "APPEND ", 7) == 0;
}

/* append_spool_open - an unnamed file in the Maildir's tmp/; -1 */
static int
append_spool_open(const char *maildir)
{
	char path[4096];
	int fd;

	if (snprintf(path, sizeof(path), "%s/tmp", maildir) >=
	    (int)sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = open(path, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR &&
	    errno != EINVAL))
		return fd;
	/* no O_TMPFILE here: a named file, unlinked at once */
	if (snprintf(path, sizeof(path), "%s/tmp/imapd-append.XXXXXX",
	    maildir) >= (int)sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = mkostemp(path, O_CLOEXEC)) < 0)
		return -1;
	if (unlink(path) < 0) {
		int e = errno;

		(void)close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/*
 * append_over_quota - would bytes more put the user over quota? Asked
 * at each literal's header of an APPEND (RFC 9051 7.1: NO [OVERQUOTA],
 * for a synchronizing literal before the "+"), from the Maildir's usage
 * file only (maildir_usage_cached: one small read, fit for the loop).
 * When that file must be counted again, or the directory cannot say,
 * the literal is taken, and the job's check before the store decides.
 * The quota is looked up once a command, and what the usage read saw is
 * kept in sp for the job's check (imapd_append_cmd).
 */
static bool
append_over_quota(struct imapd_session *s, struct imapd_spool *sp,
    unsigned long long bytes)
{
	long long used;

	if (!sp->quota_read) {
		sp->quota = imapd_mailbox_quota_of(imapd_store_user(s));
		sp->quota_read = true;
	}
	if (sp->quota <= 0 || maildir_usage_cached(imapd_store_path(s),
	    &used, &sp->usage) != 1)
		return false;
	return bytes > (unsigned long long)sp->quota ||
	    used > sp->quota - (long long)bytes;
}

/* imapd_append_spool - the parser's question at a literal's header:
 * does a file take it? (imap_parse.h: 1 yes, 0 no, -1 refuse) */
int
imapd_append_spool(void *ctx, const struct imap_parser *p,
    unsigned long long n, bool literal8)
{
	struct imapd_session *s = ctx;
	struct imapd_spool *sp;
	int fd;

	if (!(s->state & IMAPD_S_LOGGED) || *imapd_store_path(s) == '\0' ||
	    !append_is_append(p))
		return 0;
	if (s->spool == NULL) {
		sp = s->spool = xcalloc(1, sizeof(*sp));
		for (size_t i = 0; i < IMAP_LITERALS_MAX; i++)
			sp->fd[i] = -1;
	}
	sp = s->spool;
	sp->err_no = 0;
	sp->asked += n;
	if (append_over_quota(s, sp, sp->asked)) {
		/* before the "+": the client never sends the bytes */
		sp->err_no = EDQUOT;
		return -1;
	}
	if (n < APPEND_SPOOL_MIN)
		return 0;
	if (n > APPEND_SPOOL_TOTAL - sp->total) {
		sp->err_no = EFBIG;
		return -1;
	}
	if ((fd = append_spool_open(imapd_store_path(s))) < 0) {
		sp->err_no = errno;
		msg_warn("%s: APPEND: cannot open a spool file in %s/tmp: %s",
		    buf_cstr(&s->login), imapd_store_path(s),
		    strerror(errno));
		return -1;
	}
	sp->cur = p->nlit;
	sp->fd[sp->cur] = fd;
	sp->lit8 = literal8;
	sp->total += n;
	return 1;
}

/* imapd_append_spool_write - bytes of the spooled literal */
int
imapd_append_spool_write(void *ctx, const char *data, size_t n)
{
	struct imapd_session *s = ctx;
	struct imapd_spool *sp = s->spool;
	size_t done = 0;

	if (!sp->lit8 && memchr(data, '\0', n) != NULL)
		sp->nul[sp->cur] = true;
	while (done < n) {
		ssize_t w = write(sp->fd[sp->cur], data + done, n - done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			sp->err_no = errno;
			msg_warn("%s: APPEND: spool write: %s",
			    buf_cstr(&s->login), strerror(errno));
			return -1;
		}
		done += (size_t)w;
	}
	return 0;
}

/* imapd_append_spool_error - why the spool failed: the tagged text */
const char *
imapd_append_spool_error(const struct imapd_session *s)
{
	int e = s->spool != NULL ? s->spool->err_no : 0;

	if (e == ENOSPC || e == EDQUOT)
		return "NO [OVERQUOTA] Not enough space for the message";
	if (e == EFBIG)
		return "NO [TOOBIG] Messages of this command too big";
	return "NO [SERVERBUG] Cannot store the message";
}

/* imapd_append_spool_release - the command is over: files it did not
 * take go (they have no name: closing frees them) */
void
imapd_append_spool_release(struct imapd_session *s)
{
	if (s->spool == NULL)
		return;
	for (size_t i = 0; i < IMAP_LITERALS_MAX; i++)
		if (s->spool->fd[i] >= 0)
			(void)close(s->spool->fd[i]);
	x_free(&s->spool);
}

/* imapd_append_date - "dd-Mon-yyyy hh:mm:ss +zzzz" (RFC 9051
 * date-time; the day may be " d") into unix seconds; -1 if it is not
 * one */
int
imapd_append_date(const char *p, size_t n, int64_t *t_r)
{
	static const char mon[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	char s[32];
	struct tm tm;
	int d, y, hh, mm, ss, z, consumed = 0;
	char m[4], sign;
	const char *f;

	if (n == 0 || n >= sizeof(s))
		return -1;
	memcpy(s, p, n);
	s[n] = '\0';
	if (sscanf(s, "%2d-%3c-%4d %2d:%2d:%2d %c%4d%n", &d, m, &y, &hh, &mm,
	    &ss, &sign, &z, &consumed) != 8 || (size_t)consumed != n ||
	    (sign != '+' && sign != '-'))
		return -1;
	m[3] = '\0';
	if ((f = strstr(mon, m)) == NULL || (f - mon) % 3 != 0 ||
	    d < 1 || d > 31 || y < 1900 || hh > 23 || mm > 59 || ss > 60 ||
	    z % 100 > 59 || z > 2359)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_mday = d;
	tm.tm_mon = (int)((f - mon) / 3);
	tm.tm_year = y - 1900;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	*t_r = (int64_t)timegm(&tm) - (sign == '-' ? -1 : 1) *
	    (int64_t)((z / 100) * 3600 + (z % 100) * 60);
	return 0;
}

/* append_utf8 - the "UTF8 (" literal8 ")" of RFC 6855 section 4 whose
 * UTF8 atom is t: the literal8 into t; -1 with why */
static int
append_utf8(struct imap_cursor *c, struct imap_token *t, bool utf8,
    const char **why)
{
	struct imap_token cl;

	if (!utf8) {
		*why = "APPEND UTF8 needs ENABLE UTF8=ACCEPT (RFC 6855)";
		return -1;
	}
	*why = "Syntax: UTF8 (~{n}literal8)";
	if (imap_cursor_next(c, t) != IMAP_TOK_OPEN)
		return -1;
	if (imap_cursor_next(c, t) != IMAP_TOK_STRING || !t->literal ||
	    !t->literal8)
		return -1;
	return imap_cursor_next(c, &cl) == IMAP_TOK_CLOSE ? 0 : -1;
}

/* append_parse - the messages after the mailbox name (utf8: the client
 * enabled UTF8=ACCEPT, so the UTF8 form of the message is allowed) */
static int
append_parse(struct imap_cursor *c, bool utf8, struct append_msg *msgs,
    int *n_r, const char **why)
{
	struct imap_token t;
	int n = 0;

	*why = "Syntax: APPEND mailbox [(flags)] [date-time] literal ...";
	for (;;) {
		struct append_msg *a;

		if (imap_cursor_next(c, &t) == IMAP_TOK_END && n > 0)
			break;
		if (n >= APPEND_MAX) {
			*why = "Too many messages in one APPEND";
			return -1;
		}
		a = &msgs[n++];
		if (t.type == IMAP_TOK_OPEN) {
			if (imapd_sel_parse_flags(c, true, &a->flags, a->kw,
			    &a->nkw, why) < 0)
				return -1;
			imap_cursor_next(c, &t);
		}
		if (t.type == IMAP_TOK_STRING && !t.literal) {
			if (imapd_append_date(t.p, t.len, &a->date) < 0) {
				*why = "Invalid date-time";
				return -1;
			}
			imap_cursor_next(c, &t);
		}
		if (imap_tok_is(&t, "UTF8") && append_utf8(c, &t, utf8,
		    why) < 0)
			return -1;
		if (t.type != IMAP_TOK_STRING || !t.literal)
			return -1;
		a->p = t.spooled ? NULL : t.p;
		a->len = t.spooled ? (size_t)t.spool_len : t.len;
		a->lit_index = t.lit_index;
	}
	*n_r = n;
	return 0;
}

/* imapd_append_parse_args - see imapd_sel.h */
int
imapd_append_parse_args(struct imap_cursor *c, bool utf8, const char **why)
{
	struct append_msg *msgs = xcalloc(APPEND_MAX, sizeof(*msgs));
	int n = 0;

	if (append_parse(c, utf8, msgs, &n, why) < 0)
		n = -1;
	for (int i = 0; i < APPEND_MAX; i++)
		for (size_t k = 0; k < msgs[i].nkw; k++)
			free(msgs[i].kw[k]);
	free(msgs);
	return n;
}

/* the messages of an APPEND, on a job thread */
struct append_op {
	struct imapd_sel_op op;	/* first */
	struct append_msg *msgs;
	int n;
	char *folder;
	int fd[APPEND_MAX];	/* each spooled message's file */
	uint32_t uids[APPEND_MAX], uidv;
	struct mindex_msg *added;	/* into the selected folder */
	size_t nadded;
	int err_no;
	long long quota;	/* bytes; 0: none */
	char *maildir;		/* for the quota's usage */
	struct maildir_usage_snap usage;	/* the literals' usage read */
	struct buf why;
};

/* append_op_free - forget op */
static void
append_op_free(struct append_op *o)
{
	for (int i = 0; i < APPEND_MAX; i++) {
		for (size_t k = 0; k < o->msgs[i].nkw; k++)
			free(o->msgs[i].kw[k]);
		free(o->msgs[i].mem);
		if (o->fd[i] >= 0)
			(void)close(o->fd[i]);
	}
	free(o->msgs);
	free(o->added);
	free(o->folder);
	free(o->maildir);
	buf_free(&o->why);
	free(o);
}

/* append_job - on a job thread: all of them, or none */
static void
append_job(struct imapd_sel_op *op, struct mindex *ix)
{
	struct append_op *o = op->ctx;
	struct buf undo = BUF_INIT;
	long long used = 0, add = 0;

	if (o->quota > 0) {
		for (int i = 0; i < o->n; i++)
			add += (long long)o->msgs[i].len;
		/* the literals' read and the lines since: what
		 * maildir_usage would say, deliveries meanwhile included */
		if (maildir_usage_since(o->maildir, &o->usage, &used,
		    &o->why) < 0) {
			o->err_no = errno;
			op->result = -1;
			return;
		}
		if (used + add > o->quota) {
			buf_printf(&o->why, "over quota (%lld + %lld > %lld)",
			    used, add, o->quota);
			o->err_no = EDQUOT;
			op->result = -1;
			return;
		}
	}
	for (int i = 0; i < o->n; i++) {
		const struct append_msg *a = &o->msgs[i];

		int rc;

		if (a->mem != NULL)
			rc = mindex_append_mem(ix, o->folder, a->mem, a->len,
			    a->flags, (const char *const *)a->kw, a->nkw,
			    a->date, &o->uids[i], &o->uidv, &op->done,
			    &o->why);
		else
			rc = mindex_append(ix, o->folder, o->fd[i],
			    (off_t)a->len, a->flags,
			    (const char *const *)a->kw, a->nkw, a->date,
			    &o->uids[i], &o->uidv, &op->done, &o->why);
		if (rc < 0) {
			o->err_no = errno;
			op->result = -1;
			if (i > 0 && mindex_expunge(ix, o->folder, o->uids,
			    (size_t)i, NULL, NULL, &undo) < 0)
				msg_warn("APPEND undo in %s: %s", o->folder,
				    buf_cstr(&undo));
			break;
		}
	}
	buf_free(&undo);
	/* into the selected folder: the messages join the view
	 * (append_patch), their records read here */
	if (op->result >= 0 && op->done.added > 0 && imapd_sel_added(ix,
	    op->done.folder, o->uids, (size_t)o->n, &o->added,
	    &o->nadded) < 0)
		op->own = false;
}

/* append_patch - APPEND into the selected folder: the messages join the
 * view (EXISTS, RECENT) */
static void
append_patch(struct imapd_sel_op *op, struct imapd_session *s)
{
	struct append_op *o = op->ctx;

	imapd_sel_add(s, o->added, o->nadded);
}

/* append_answer - APPENDUID, or why not */
static void
append_answer(struct imapd_sel_op *op, struct imapd_session *s)
{
	struct append_op *o = op->ctx;
	struct buf set = BUF_INIT;

	if (s != NULL && op->result < 0) {
		msg_warn("%s: APPEND %s: %s", buf_cstr(&s->login), o->folder,
		    buf_cstr(&o->why));
		if (o->err_no == ENOSPC || o->err_no == EDQUOT)
			imapd_session_tagged(s, "NO [OVERQUOTA] APPEND failed: "
			    "quota exceeded");
		else
			imapd_session_tagged(s, "NO [SERVERBUG] APPEND failed");
	} else if (s != NULL) {
		for (int i = 0; i < o->n; i++) {
			int j = i;

			while (j + 1 < o->n && o->uids[j + 1] ==
			    o->uids[j] + 1)
				j++;
			if (set.len > 0)
				buf_putc(&set, ',');
			if (j > i)
				buf_printf(&set, "%u:%u", o->uids[i],
				    o->uids[j]);
			else
				buf_printf(&set, "%u", o->uids[i]);
			i = j;
		}
		imapd_session_tagged(s, "OK [APPENDUID %u %s] APPEND "
		    "completed", o->uidv, buf_cstr(&set));
	}
	buf_free(&set);
	append_op_free(o);
}

/* imapd_append_cmd - APPEND mailbox [flags] [date] literal ... */
void
imapd_append_cmd(struct imapd_session *s, struct imap_cursor *c)
{
	struct append_op *o = xcalloc(1, sizeof(*o));
	struct buf name = BUF_INIT;
	const char *err;
	int i;

	o->msgs = xcalloc(APPEND_MAX, sizeof(*o->msgs));
	buf_init(&o->why);
	for (i = 0; i < APPEND_MAX; i++)
		o->fd[i] = -1;
	if (imapd_sel_resolve(s, c, &name) < 0)
		goto fail;
	if (append_parse(c, imapd_store_utf8(s), o->msgs, &o->n, &err) < 0) {
		imapd_session_bad(s, "BAD %s", err);
		goto fail;
	}
	for (i = 0; i < o->n; i++)
		if (o->msgs[i].len > imapd_append_limit()) {
			imapd_session_tagged(s, "NO [TOOBIG] Message too big "
			    "(APPENDLIMIT %llu)", imapd_append_limit());
			goto fail;
		}
	if (imapd_store_index(s) == NULL) {
		imapd_session_tagged(s, "NO [UNAVAILABLE] Mail store not "
		    "available");
		goto fail;
	}
	if (!imapd_store_folder_exists(imapd_store_path(s),
	    buf_cstr(&name))) {
		imapd_session_tagged(s, "NO [TRYCREATE] Mailbox does not "
		    "exist");
		goto fail;
	}
	/* the quota the literals were checked against (looked up once);
	 * a directory that cannot say (warned) does not stop APPEND */
	if (s->spool != NULL && s->spool->quota_read &&
	    s->spool->quota >= 0) {
		o->quota = s->spool->quota;
		o->usage = s->spool->usage;
	} else if ((o->quota = imapd_mailbox_quota_of(
	    imapd_store_user(s))) < 0) {
		o->quota = 0;
	}
	for (i = 0; i < o->n; i++) {
		if (o->msgs[i].p == NULL) {
			/* spooled: the file is ours now */
			size_t k = o->msgs[i].lit_index;

			if (s->spool == NULL || s->spool->fd[k] < 0)
				msg_panic("APPEND: spooled literal %zu "
				    "without a file", k);
			if (s->spool->nul[k]) {
				imapd_session_bad(s, "BAD NUL in a literal");
				goto fail;
			}
			o->fd[i] = s->spool->fd[k];
			s->spool->fd[k] = -1;
			continue;
		}
		/* the command text goes: a copy (under APPEND_SPOOL_MIN) */
		o->msgs[i].mem = xmalloc(o->msgs[i].len + 1);
		memcpy(o->msgs[i].mem, o->msgs[i].p, o->msgs[i].len);
		o->msgs[i].p = NULL;
	}
	o->folder = xstrdup(buf_cstr(&name));
	o->maildir = xstrdup(imapd_store_path(s));
	o->op.ctx = o;
	o->op.run = append_job;
	o->op.answer = append_answer;
	o->op.patch = append_patch;
	o->op.allow_expunge = true;
	o->op.own = true;
	buf_free(&name);
	imapd_sel_run_op(s, &o->op);
	return;
fail:
	buf_free(&name);
	append_op_free(o);
}
