/*
 * imapd_search - SEARCH, SORT and THREAD over the selected mailbox and
 * their UID forms (RFC 9051 6.4.4, RFC 4731 ESEARCH, RFC 5182 SEARCHRES,
 * RFC 5256 SORT / THREAD, RFC 5267 ESORT, RFC 5957 SORT=DISPLAY, RFC
 * 7162 CONDSTORE's MODSEQ key).
 *
 * The command is parsed in the loop; the evaluation (imap_search_eval.h,
 * imap_sort.h, imap_thread.h) runs on job threads over a copy of the
 * session's view, a slice of at most SEARCH_STEP_BYTES of message bytes
 * per job, so a huge mailbox does not hold a job thread from the other
 * sessions: between slices the job goes back to the loop and is queued
 * again. Flags, MODSEQ, INTERNALDATE and size come from the index, the
 * message bytes from the Maildir file (mmapped, O_NOFOLLOW, as FETCH
 * does). The untagged answer is written in the loop, then the folder's
 * changes are told and the tagged answer given (imapd_sel_finish).
 *
 * SEARCHRES: the saved result lives in the session's struct imapd_sel
 * as UIDs; imapd_sel_set resolves "$" from it for FETCH, STORE, COPY,
 * MOVE and their UID forms, and imapd_sel_unselect_now forgets it
 * (SELECT, EXAMINE, CLOSE, UNSELECT: RFC 5182 2.1).
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "imap_parse.h"
#include "imap_search_eval.h"
#include "imap_sort.h"
#include "imap_thread.h"
#include "imapd.h"
#include "imapd_sel.h"
#include "imapd_store.h"
#include "mail/mindex.h"

#define SEARCH_STEP_BYTES (4ULL << 20)	/* message bytes per job */

enum search_kind { K_SEARCH, K_SORT, K_THREAD };

/* one SEARCH / SORT / THREAD in progress */
struct search {
	enum search_kind kind;
	bool uid, condstore;
	struct imap_search_program prog;	/* K_SEARCH */
	struct imap_sort_program sp;		/* K_SORT */
	struct imap_thread_program tp;		/* K_THREAD */
	char *tag, *folder;
	struct buf dir;		/* the folder's directory */

	/* the session's view, copied */
	uint32_t n;
	uint32_t *uids, *flags, *kw;
	uint64_t *modseq;
	char *kwname[MINDEX_KEYWORDS_MAX];
	int nkw;
	uint32_t *saved;
	size_t nsaved;

	/* on the job thread */
	struct mindex *ix;
	struct mindex_msg cur;	/* the message last read of the index */
	char emailid[MINDEX_OBJID_LEN + 1];	/* cur's (RFC 8474) */
	uint32_t cur_i;
	bool have_cur;
	bool need_rec;		/* a key reads the index record */
	bool need_emailid;	/* an EMAILID key: hash the base name */
	const char *kwp[MINDEX_KEYWORDS_MAX];
	char *mm;
	size_t mmlen;
	bool mapped;

	struct imap_mailbox_src src;
	struct imap_search_eval ev;
	bool begun, done;
	struct buf out;		/* the untagged answer */
	uint32_t *save;		/* what SAVE keeps */
	size_t nsave;
	bool saves;
};

/* search_msg - message i's index record in se->cur; -1 if gone */
static int
search_msg(struct search *se, uint32_t i)
{
	struct buf why = BUF_INIT;
	int rc;

	if (se->have_cur && se->cur_i == i)
		return 0;
	se->have_cur = false;
	if (se->ix == NULL || i >= se->n)
		return -1;
	rc = mindex_get(se->ix, se->folder, se->uids[i], &se->cur, &why);
	buf_free(&why);
	if (rc != 1)
		return -1;
	se->have_cur = true;
	se->cur_i = i;
	return 0;
}

/* search_view - the imap_mailbox_src view of message i */
static int
search_view(void *ctx, uint32_t i, struct imap_msg_view *v)
{
	struct search *se = ctx;
	uint32_t f, k;
	size_t nk = 0;

	memset(v, 0, sizeof(*v));
	if (se->need_rec && search_msg(se, i) < 0)
		return -1;
	v->uid = se->uids[i];
	/* the session's view (what the client was told), not the index */
	f = se->flags[i];
	v->flags = (f & MINDEX_F_SEEN ? IMAP_MF_SEEN : 0) |
	    (f & MINDEX_F_ANSWERED ? IMAP_MF_ANSWERED : 0) |
	    (f & MINDEX_F_FLAGGED ? IMAP_MF_FLAGGED : 0) |
	    (f & MINDEX_F_DELETED ? IMAP_MF_DELETED : 0) |
	    (f & MINDEX_F_DRAFT ? IMAP_MF_DRAFT : 0) |
	    (f & IMAPD_VF_RECENT ? IMAP_MF_RECENT : 0);
	k = se->kw[i];
	for (int b = 0; b < se->nkw && b < 32; b++)
		if (k & (1U << b) && se->kwname[b] != NULL)
			se->kwp[nk++] = se->kwname[b];
	v->keywords = se->kwp;
	v->nkeywords = nk;
	v->modseq = se->modseq[i];
	if (!se->need_rec)
		return 0;
	v->internaldate = (time_t)se->cur.internaldate;
	v->internal_zone = 0;
	v->size = se->cur.wsize;
	if (se->need_emailid) {
		mindex_emailid(se->cur.name, se->emailid);
		v->emailid = se->emailid;
	}
	return 0;
}

/*
 * search_needs - what of the index record the keys under n look at:
 * INTERNALDATE, RFC822.SIZE and EMAILID come from it (flags, keywords,
 * MODSEQ and UIDs from the session's view, the content keys map the file
 * and read the record themselves); a key not listed here is taken to
 * need it. A program of flag keys, the common
 * SEARCH UNSEEN, so reads no record at all, and EMAILID's hash of the
 * base name is made only for an EMAILID key.
 */
static void
search_needs(const struct imap_search *n, bool *rec, bool *emailid)
{
	for (; n != NULL; n = n->next) {
		switch (n->key) {
		case IMAP_SK_AND: case IMAP_SK_OR: case IMAP_SK_NOT:
		case IMAP_SK_SEQSET: case IMAP_SK_UID: case IMAP_SK_ALL:
		case IMAP_SK_ANSWERED: case IMAP_SK_DELETED: case IMAP_SK_DRAFT:
		case IMAP_SK_FLAGGED: case IMAP_SK_SEEN:
		case IMAP_SK_UNANSWERED: case IMAP_SK_UNDELETED:
		case IMAP_SK_UNDRAFT: case IMAP_SK_UNFLAGGED:
		case IMAP_SK_UNSEEN: case IMAP_SK_NEW: case IMAP_SK_OLD:
		case IMAP_SK_RECENT: case IMAP_SK_KEYWORD:
		case IMAP_SK_UNKEYWORD: case IMAP_SK_BCC: case IMAP_SK_BODY:
		case IMAP_SK_CC: case IMAP_SK_FROM: case IMAP_SK_SUBJECT:
		case IMAP_SK_TEXT: case IMAP_SK_TO: case IMAP_SK_HEADER:
		case IMAP_SK_SENTBEFORE: case IMAP_SK_SENTON:
		case IMAP_SK_SENTSINCE: case IMAP_SK_MODSEQ:
		case IMAP_SK_THREADID:
			break;
		case IMAP_SK_EMAILID:
			*rec = *emailid = true;
			break;
		default:	/* dates, sizes, and keys added later */
			*rec = true;
			break;
		}
		search_needs(n->child, rec, emailid);
	}
}

/*
 * search_in_view - true when every key of the program is answered by the
 * session's view alone (flags, keywords, sequence and UID sets, MODSEQ):
 * such a SEARCH (the common UNSEEN, DELETED, UID n:*) runs on the loop,
 * without waiting behind other sessions' index work in the job pool.
 */
static bool
search_in_view(const struct imap_search *n)
{
	for (; n != NULL; n = n->next) {
		switch (n->key) {
		case IMAP_SK_AND: case IMAP_SK_OR: case IMAP_SK_NOT:
		case IMAP_SK_SEQSET: case IMAP_SK_UID: case IMAP_SK_ALL:
		case IMAP_SK_ANSWERED: case IMAP_SK_DELETED: case IMAP_SK_DRAFT:
		case IMAP_SK_FLAGGED: case IMAP_SK_SEEN:
		case IMAP_SK_UNANSWERED: case IMAP_SK_UNDELETED:
		case IMAP_SK_UNDRAFT: case IMAP_SK_UNFLAGGED:
		case IMAP_SK_UNSEEN: case IMAP_SK_NEW: case IMAP_SK_OLD:
		case IMAP_SK_RECENT: case IMAP_SK_KEYWORD:
		case IMAP_SK_UNKEYWORD: case IMAP_SK_MODSEQ:
			break;
		default:
			return false;
		}
		if (!search_in_view(n->child))
			return false;
	}
	return true;
}

/* search_map - the imap_mailbox_src file of message i */
static int
search_map(void *ctx, uint32_t i, const char **p, size_t *n)
{
	struct search *se = ctx;
	struct stat st;
	int fd, rc = -1;

	if (se->mapped || search_msg(se, i) < 0)
		return -1;
	/* new/ or cur/; a message file is never a link (it could lead
	 * anywhere) */
	fd = mindex_msg_open(buf_cstr(&se->dir), &se->cur);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		se->mmlen = (size_t)st.st_size;
		se->mm = NULL;
		if (se->mmlen == 0) {
			rc = 0;
		} else {
			void *m = mmap(NULL, se->mmlen, PROT_READ,
			    MAP_PRIVATE, fd, 0);

			if (m != MAP_FAILED) {
				se->mm = m;
				(void)madvise(m, se->mmlen, MADV_SEQUENTIAL);
				rc = 0;
			}
		}
	}
	(void)close(fd);
	if (rc == 0) {
		se->mapped = true;
		*p = se->mm != NULL ? se->mm : "";
		*n = se->mmlen;
	}
	return rc;
}

/* search_unmap - the imap_mailbox_src end of a mapping */
static void
search_unmap(void *ctx, uint32_t i)
{
	struct search *se = ctx;

	(void)i;
	if (se->mm != NULL)
		(void)munmap(se->mm, se->mmlen);
	se->mm = NULL;
	se->mmlen = 0;
	se->mapped = false;
}

/* search_free - release se */
static void
search_free(struct search *se)
{
	if (se == NULL)
		return;
	if (se->mapped)
		search_unmap(se, 0);
	if (se->begun)
		imap_search_end(&se->ev);
	if (se->kind == K_SEARCH)
		imap_search_free(&se->prog);
	else if (se->kind == K_SORT)
		imap_sort_free(&se->sp);
	else
		imap_thread_free(&se->tp);
	free(se->tag);
	free(se->folder);
	buf_free(&se->dir);
	free(se->uids);
	free(se->flags);
	free(se->kw);
	free(se->modseq);
	for (int i = 0; i < se->nkw; i++)
		free(se->kwname[i]);
	free(se->saved);
	free(se->save);
	buf_free(&se->out);
	free(se);
}

/* search_program - the search program of se */
static const struct imap_search_program *
search_program(struct search *se)
{
	return se->kind == K_SEARCH ? &se->prog : se->kind == K_SORT ?
	    &se->sp.search : &se->tp.search;
}

/* search_step - a slice of the evaluation (on a job thread, or on the
 * loop for a program search_in_view answers); when all is looked at, the
 * order, the answer and what SAVE keeps */
static void
search_step(struct search *se, struct mindex *ix)
{
	se->ix = ix;
	se->have_cur = false;
	if (imap_search_step(&se->ev, SEARCH_STEP_BYTES) == IMAP_SEARCH_MORE)
		goto out;
	se->done = true;
	buf_reset(&se->out);
	if (se->kind == K_SEARCH) {
		imap_search_answer(&se->ev, se->tag, se->uid, se->condstore,
		    &se->out);
		se->saves = imap_search_saves(&se->ev);
		if (se->saves)
			se->nsave = imap_search_save(&se->ev, &se->save);
	} else if (se->kind == K_SORT) {
		imap_sort_matches(&se->ev, &se->sp);
		imap_sort_answer(&se->ev, &se->sp, se->tag, se->uid,
		    se->condstore, &se->out);
	} else {
		imap_thread_answer(&se->ev, se->tp.alg, se->uid, &se->out);
	}
out:
	se->have_cur = false;
	se->ix = NULL;
}

/* search_run - the job: a slice of se */
static void
search_run(struct imapd_job *job, struct mindex *ix)
{
	search_step(job->ctx, ix);
}

static void search_submit(struct imapd_session *s, struct search *se);
static void search_answer(struct imapd_session *s, struct search *se);

/* search_done - in the loop: the next slice, or the answer */
static void
search_done(struct imapd_job *job, struct imapd_session *s)
{
	struct search *se = job->ctx;

	imapd_job_free(&job);
	if (s->base.closed || s->sel == NULL || s->sel->folder == NULL) {
		search_free(se);
		return;
	}
	if (!se->done) {
		search_submit(s, se);
		return;
	}
	search_answer(s, se);
}

/* search_answer - in the loop: se is done; write its answer, keep what
 * SAVE keeps, and finish the command */
static void
search_answer(struct imapd_session *s, struct search *se)
{
	static const char *const tagged[3][2] = {
		{"OK SEARCH completed",
		    "OK [EXPUNGEISSUED] SEARCH completed"},
		{"OK SORT completed", "OK [EXPUNGEISSUED] SORT completed"},
		{"OK THREAD completed",
		    "OK [EXPUNGEISSUED] THREAD completed"},
	};
	struct imapd_sel *sel = s->sel;
	const char *p, *e;
	bool uid = se->uid;

	/* the answer, a line at a time (it ends in CRLF) */
	p = se->out.data;
	e = p + se->out.len;
	while (p != NULL && p < e) {
		const char *nl = memchr(p, '\n', (size_t)(e - p));
		size_t len = nl != NULL ? (size_t)(nl - p) : (size_t)(e - p);

		if (len > 0 && p[len - 1] == '\r')
			len--;
		if (len > 0)
			imapd_sel_write(s, p, len);
		p = nl != NULL ? nl + 1 : e;
	}
	if (se->saves) {
		free(sel->saved);
		sel->saved = se->save;
		sel->nsaved = se->nsave;
		se->save = NULL;
	}
	p = tagged[se->kind][se->ev.gone > 0];
	search_free(se);
	imapd_sel_finish(s, uid, p);
}

/* search_submit - the next slice of se on a job thread */
static void
search_submit(struct imapd_session *s, struct search *se)
{
	struct imapd_job *job = imapd_job_new();

	job->run = search_run;
	job->done = search_done;
	job->ctx = se;
	job->skippable = true;	/* search_done frees it when s closed */
	imapd_store_submit(s, job);
}

/* search_start - se is parsed: copy the view, begin, run */
static void
search_start(struct imapd_session *s, struct search *se)
{
	struct imapd_sel *sel = s->sel;
	const struct imapd_view *v = &sel->v;
	struct imap_search_opts opts;
	const struct imap_search_program *prog = search_program(se);
	const char *why = NULL;
	size_t n = v->n ? v->n : 1;

	se->tag = xstrdup(buf_cstr(&s->tag));
	se->folder = xstrdup(sel->folder);
	buf_init(&se->dir);
	buf_init(&se->out);
	se->condstore = sel->condstore;
	se->n = v->n;
	se->uids = xmalloc(n * sizeof(*se->uids));
	se->flags = xmalloc(n * sizeof(*se->flags));
	se->kw = xmalloc(n * sizeof(*se->kw));
	se->modseq = xmalloc(n * sizeof(*se->modseq));
	if (v->n > 0) {
		memcpy(se->uids, v->uid, v->n * sizeof(*se->uids));
		memcpy(se->flags, v->flags, v->n * sizeof(*se->flags));
		/* with this session's \Recent */
		for (uint32_t i = 0; sel->nrecent > 0 && i < v->n; i++)
			se->flags[i] = imapd_sel_vflags(sel, i);
		memcpy(se->kw, v->kw, v->n * sizeof(*se->kw));
		memcpy(se->modseq, v->modseq, v->n * sizeof(*se->modseq));
	}
	for (int i = 0; i < sel->nkw && i < MINDEX_KEYWORDS_MAX; i++)
		se->kwname[se->nkw++] = xstrdup(sel->kwname[i] ?
		    sel->kwname[i] : "");
	if (sel->nsaved > 0) {
		se->saved = xmalloc(sel->nsaved * sizeof(*se->saved));
		memcpy(se->saved, sel->saved,
		    sel->nsaved * sizeof(*se->saved));
		se->nsaved = sel->nsaved;
	}
	if (imapd_sel_folder_dir(s, sel->folder, &se->dir) < 0 ||
	    imapd_store_index(s) == NULL) {
		imapd_session_tagged(s, "NO [UNAVAILABLE] Mail store not "
		    "available");
		search_free(se);
		return;
	}
	/* SORT and THREAD order by dates and sizes of the record */
	se->need_rec = se->kind != K_SEARCH;
	search_needs(prog->root, &se->need_rec, &se->need_emailid);
	se->src.ctx = se;
	se->src.count = se->n;
	se->src.view = search_view;
	se->src.header = NULL;
	se->src.map = search_map;
	se->src.unmap = search_unmap;
	memset(&opts, 0, sizeof(opts));
	opts.saved = se->saved;
	opts.nsaved = se->nsaved;
	if (imap_search_begin(&se->ev, prog, &se->src, &opts, &why) < 0) {
		/* RFC 5182 2.1: a failed SAVE empties the saved result */
		if (prog->ret & IMAP_SR_SAVE)
			imapd_search_reset(sel);
		imapd_session_tagged(s, "NO [BADCHARSET (UTF-8 US-ASCII)] %s",
		    why != NULL ? why : "Unknown charset");
		search_free(se);
		return;
	}
	se->begun = true;
	/* RFC 7162 3.1: the MODSEQ key enables CONDSTORE */
	if (se->ev.uses_modseq) {
		imapd_sel_condstore(s);
		se->condstore = true;
	}
	if (se->kind == K_SEARCH && !se->need_rec &&
	    search_in_view(prog->root)) {
		while (!se->done)
			search_step(se, NULL);
		search_answer(s, se);
		return;
	}
	search_submit(s, se);
}

/* search_bad - a command that did not parse */
static void
search_bad(struct imapd_session *s, struct search *se, const char *why)
{
	imapd_session_bad(s, "BAD Syntax: %s", why != NULL ? why :
	    "bad arguments");
	free(se);
}

/* search_cmd - SEARCH or UID SEARCH */
static void
search_cmd(struct imapd_session *s, struct imap_cursor *c, bool uid)
{
	struct search *se = xcalloc(1, sizeof(*se));
	const char *why = NULL;

	se->kind = K_SEARCH;
	se->uid = uid;
	if (imap_search_parse(c, &se->prog, &why) < 0) {
		search_bad(s, se, why);
		return;
	}
	/* RFC 9051 6.4.4: an IMAP4rev2 client gets ESEARCH (RETURN ()
	 * is ALL) */
	if (s->rev2 && !se->prog.esearch) {
		se->prog.esearch = true;
		se->prog.ret = IMAP_SR_ALL;
	}
	search_start(s, se);
}

/* sort_cmd - SORT or UID SORT */
static void
sort_cmd(struct imapd_session *s, struct imap_cursor *c, bool uid)
{
	struct search *se = xcalloc(1, sizeof(*se));
	const char *why = NULL;

	se->kind = K_SORT;
	se->uid = uid;
	if (imap_sort_parse(c, &se->sp, &why) < 0) {
		search_bad(s, se, why);
		return;
	}
	search_start(s, se);
}

/* thread_cmd - THREAD or UID THREAD */
static void
thread_cmd(struct imapd_session *s, struct imap_cursor *c, bool uid)
{
	struct search *se = xcalloc(1, sizeof(*se));
	const char *why = NULL;

	se->kind = K_THREAD;
	se->uid = uid;
	if (imap_thread_parse(c, &se->tp, &why) < 0) {
		search_bad(s, se, why);
		return;
	}
	search_start(s, se);
}

/* imapd_search_cmd - SEARCH */
void
imapd_search_cmd(struct imapd_session *s, struct imap_cursor *c)
{
	search_cmd(s, c, false);
}

/* imapd_sort_cmd - SORT */
void
imapd_sort_cmd(struct imapd_session *s, struct imap_cursor *c)
{
	sort_cmd(s, c, false);
}

/* imapd_thread_cmd - THREAD */
void
imapd_thread_cmd(struct imapd_session *s, struct imap_cursor *c)
{
	thread_cmd(s, c, false);
}

/* imapd_search_uid - UID SEARCH, UID SORT, UID THREAD */
bool
imapd_search_uid(struct imapd_session *s, const char *t, size_t n,
    struct imap_cursor *c)
{
	if (n == 6 && str_ncasecmp(t, "SEARCH", 6) == 0)
		search_cmd(s, c, true);
	else if (n == 4 && str_ncasecmp(t, "SORT", 4) == 0)
		sort_cmd(s, c, true);
	else if (n == 6 && str_ncasecmp(t, "THREAD", 6) == 0)
		thread_cmd(s, c, true);
	else
		return false;
	return true;
}

/* imapd_search_reset - forget the saved result */
void
imapd_search_reset(struct imapd_sel *sel)
{
	free(sel->saved);
	sel->saved = NULL;
	sel->nsaved = 0;
}

/* imapd_search_capability - what this file adds */
void
imapd_search_capability(struct buf *out)
{
	buf_puts(out, " ESEARCH SEARCHRES SORT SORT=DISPLAY "
	    "THREAD=REFERENCES THREAD=ORDEREDSUBJECT ESORT");
}
