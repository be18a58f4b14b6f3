/*
 * imapd_store - the session's mail store: the Maildir resolved at login,
 * the per-user index opened on a job thread and shared by the sessions
 * of one user in this worker, and the job hand-off to the worker's job
 * threads (lib/mail/job.c; see imapd_store.h).
 *
 * Shared handles: LMDB allows one environment per path per process, so
 * the worker keeps a list of open indexes with a count of the sessions
 * using each. Lookup and open happen on a job thread under the list's
 * mutex; the last session to end closes the handle (loop thread, under
 * the same mutex, so a concurrent open of the same path waits).
 *
 * First login: the special-use folders (Sent, Drafts, Trash, Junk,
 * Archive) are created and subscribed with INBOX when the Maildir has no
 * IMAPD_STORE_INIT_MARK file yet, which is written once they exist; a
 * user who deletes one later does not get it back at every login.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "mail/job.h"
#include "mail/mailbase.h"
#include "mail/maildir.h"
#include "mail/mindex.h"
#include "mail/mutf7.h"
#include "mail/params.h"
#include "mail/session.h"
#include "imapd.h"
#include "imapd_store.h"

#define IMAPD_STORE_INIT_MARK "herald-imap-init"

/* an open index shared by the sessions of one Maildir */
struct imapd_ixref {
	char *path;
	struct mindex *ix;
	int refs;
	struct imapd_ixref *next;
};

/* the store of one session */
struct imapd_store {
	char *path;		/* the Maildir */
	char *user;		/* canonical address */
	struct imapd_ixref *ref;	/* NULL until opened */
	struct imapd_job *job;	/* out with a job thread */
	void (*open_done)(struct imapd_session *s, bool ok);
	bool utf8;		/* ENABLE UTF8=ACCEPT */
};

static pthread_mutex_t imapd_ixref_lock = PTHREAD_MUTEX_INITIALIZER;
static struct imapd_ixref *imapd_ixrefs;
static struct job_pool *imapd_store_jobs;	/* imapd_job_threads */

/* imapd_store_init - start the job threads */
void
imapd_store_init(struct evloop *loop)
{
	if (imapd_store_jobs == NULL)
		imapd_store_jobs = job_pool_new(loop,
		    (int)var_imapd_job_threads, "imapd job");
}

/* imapd_job_new - a zeroed job */
struct imapd_job *
imapd_job_new(void)
{
	struct imapd_job *job = xcalloc(1, sizeof(*job));

	buf_init(&job->why);
	return job;
}

/* imapd_job_free - free a job (not its ctx) */
void
imapd_job_free(struct imapd_job **jobp)
{
	if (*jobp == NULL)
		return;
	buf_free(&(*jobp)->why);
	x_free(jobp);
}

/* imapd_store_first_login - create the special-use folders once and
 * subscribe them with INBOX (clients that show subscribed folders only
 * see them at once) */
static int
imapd_store_first_login(const char *path, struct mindex *ix,
    struct buf *why)
{
	static const char *const subs[] = {"INBOX", "Drafts", "Sent", "Trash",
	    "Junk", "Archive"};
	char *mark = xasprintf("%s/%s", path, IMAPD_STORE_INIT_MARK);
	int fd, ret = 0;

	if (access(mark, F_OK) == 0)
		goto out;
	if (mindex_create_special(ix, why) < 0) {
		ret = -1;
		goto out;
	}
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		if (mindex_subscribe(ix, subs[i], true, why) < 0) {
			ret = -1;
			goto out;
		}
	}
	fd = open(mark, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		buf_printf(why, "create %s: %s", mark, strerror(errno));
		ret = -1;
		goto out;
	}
	(void)close(fd);
out:
	x_free(&mark);
	return ret;
}

/* imapd_store_run_open - find or open the index (job thread) */
static void
imapd_store_run_open(struct imapd_job *job, struct mindex *unused)
{
	struct imapd_store *st = job->ctx;
	struct imapd_ixref *r;
	struct mindex *ix;

	(void)unused;
	job->result = -1;
	pthread_mutex_lock(&imapd_ixref_lock);
	for (r = imapd_ixrefs; r != NULL; r = r->next)
		if (strcmp(r->path, st->path) == 0)
			break;
	if (r == NULL) {
		/* a user who never got mail has no Maildir yet */
		if (maildir_create(st->path, &job->why) < 0)
			goto out;
		if (mindex_open(st->path, &ix, &job->why) < 0)
			goto out;
		r = xcalloc(1, sizeof(*r));
		r->path = xstrdup(st->path);
		r->ix = ix;
		r->next = imapd_ixrefs;
		imapd_ixrefs = r;
	}
	r->refs++;
	st->ref = r;
	job->result = imapd_store_first_login(st->path, r->ix, &job->why);
out:
	pthread_mutex_unlock(&imapd_ixref_lock);
}

/* imapd_store_release - drop a reference (loop thread) */
static void
imapd_store_release(struct imapd_ixref **refp)
{
	struct imapd_ixref *r = *refp, **pp;

	if (r == NULL)
		return;
	*refp = NULL;
	pthread_mutex_lock(&imapd_ixref_lock);
	if (--r->refs == 0) {
		for (pp = &imapd_ixrefs; *pp != NULL; pp = &(*pp)->next)
			if (*pp == r) {
				*pp = r->next;
				break;
			}
		mindex_close(&r->ix);
		x_free(&r->path);
		/*
		 * free(), not x_free(&r): r dies here anyway, and passing
		 * the address of this local to an outside function let
		 * GCC 12 at -O3 assume it escaped and warn
		 * (-Wdangling-pointer) on every later use once inlined.
		 */
		free(r);
	}
	pthread_mutex_unlock(&imapd_ixref_lock);
}

/* imapd_store_opened - the open job is back (loop thread) */
static void
imapd_store_opened(struct imapd_job *job, struct imapd_session *s)
{
	struct imapd_store *st = s->store;
	bool ok = job->result == 0 && st->ref != NULL;

	if (!ok && !s->base.closed)
		msg_warn("%s: cannot open the mail index of %s: %s", st->user,
		    st->path, buf_cstr(&job->why));
	imapd_job_free(&job);
	if (s->base.closed)
		return;
	if (!ok)
		imapd_store_release(&st->ref);
	st->open_done(s, ok);
}

/* imapd_store_open - resolve the Maildir and open the index */
bool
imapd_store_open(struct imapd_session *s, const char *user,
    void (*done)(struct imapd_session *s, bool ok))
{
	struct buf path = BUF_INIT, why = BUF_INIT;
	struct imapd_store *st;
	struct imapd_job *job;

	if (mailbase_mailbox_path(var_mail_location, user, &path, &why) < 0) {
		msg_warn("%s: no mailbox folder: %s", user, buf_cstr(&why));
		buf_free(&path);
		buf_free(&why);
		return false;
	}
	buf_free(&why);
	imapd_store_close(s);
	st = xcalloc(1, sizeof(*st));
	st->path = buf_steal(&path);
	st->user = xstrdup(user);
	st->open_done = done;
	s->store = st;
	job = imapd_job_new();
	job->run = imapd_store_run_open;
	job->done = imapd_store_opened;
	job->ctx = st;
	job->skippable = true;	/* nobody to log in any more */
	imapd_store_submit(s, job);
	return true;
}

/* imapd_store_close - the session ends (or logs in again) */
void
imapd_store_close(struct imapd_session *s)
{
	struct imapd_store *st = s->store;

	if (st == NULL)
		return;
	if (st->job != NULL)
		msg_panic("imapd_store_close: a job is still out");
	imapd_store_release(&st->ref);
	x_free(&st->path);
	x_free(&st->user);
	x_free(&s->store);
}

static void imapd_store_job_done(struct job *);

/* imapd_store_job_run - a job on its thread, with the session's index */
static void
imapd_store_job_run(struct job *base)
{
	struct imapd_job *job = (struct imapd_job *)base;

	job->run(job, job->ix);
}

/* imapd_store_submit - run job for s on a job thread */
void
imapd_store_submit(struct imapd_session *s, struct imapd_job *job)
{
	struct imapd_store *st = s->store;

	if (st == NULL || st->job != NULL)
		msg_panic("imapd_store_submit: no store or a job is out");
	job->s = s;
	job->ix = st->ref != NULL ? st->ref->ix : NULL;
	job->base.run = imapd_store_job_run;
	job->base.done = imapd_store_job_done;
	job->base.owner = s;
	job->base.keep = !job->skippable;
	st->job = job;
	session_set_pause(&s->base, IMAPD_PAUSE_JOB, true);
	job_submit(imapd_store_jobs, &job->base);
}

/* imapd_store_submit_folder - run job on the index of s for no one
 * session; the index is held until done */
void
imapd_store_submit_folder(struct imapd_session *s, struct imapd_job *job)
{
	struct imapd_store *st = s->store;

	if (st == NULL || st->ref == NULL)
		msg_panic("imapd_store_submit_folder: no index");
	pthread_mutex_lock(&imapd_ixref_lock);
	st->ref->refs++;
	pthread_mutex_unlock(&imapd_ixref_lock);
	job->held = st->ref;
	job->s = NULL;
	job->ix = st->ref->ix;
	job->base.run = imapd_store_job_run;
	job->base.done = imapd_store_job_done;
	job->base.owner = NULL;
	job->base.keep = true;
	job_submit(imapd_store_jobs, &job->base);
}

/* imapd_store_job_done - a job is back (loop thread) */
static void
imapd_store_job_done(struct job *base)
{
	struct imapd_job *job = (struct imapd_job *)base;
	struct imapd_session *s = job->s;

	if (s == NULL) {	/* a folder job: done frees the job */
		struct imapd_ixref *held = job->held;

		job->done(job, NULL);
		imapd_store_release(&held);
		return;
	}
	s->base.depth++;
	s->store->job = NULL;
	job->done(job, s);
	/* done may have handed out the command's next job */
	if (!s->base.closed && s->store->job == NULL)
		session_set_pause(&s->base, IMAPD_PAUSE_JOB, false);
	session_leave(&s->base);
}

/* imapd_store_cancel - s has closed: skip its queued skippable jobs */
void
imapd_store_cancel(const struct imapd_session *s)
{
	if (imapd_store_busy(s))
		(void)job_cancel(imapd_store_jobs, s);
}

/* imapd_store_busy - is a job of s out? */
bool
imapd_store_busy(const struct imapd_session *s)
{
	return s->store != NULL && s->store->job != NULL;
}

/* imapd_store_index - the session's index */
struct mindex *
imapd_store_index(struct imapd_session *s)
{
	return s->store != NULL && s->store->ref != NULL ?
	    s->store->ref->ix : NULL;
}

/* imapd_store_path - the session's Maildir */
const char *
imapd_store_path(const struct imapd_session *s)
{
	return s->store != NULL ? s->store->path : "";
}

/* imapd_store_user - the logged-in address */
const char *
imapd_store_user(const struct imapd_session *s)
{
	return s->store != NULL ? s->store->user : "";
}

/* imapd_store_set_utf8 - ENABLE UTF8=ACCEPT */
void
imapd_store_set_utf8(struct imapd_session *s)
{
	if (s->store != NULL)
		s->store->utf8 = true;
}

/* imapd_store_utf8 - UTF-8 mailbox names? */
bool
imapd_store_utf8(const struct imapd_session *s)
{
	return s->rev2 || (s->store != NULL && s->store->utf8);
}

/* imapd_store_name - a client's mailbox name, checked, in UTF-8 */
int
imapd_store_name(const struct imapd_session *s, const char *raw, size_t n,
    struct buf *out, struct buf *why)
{
	struct buf tmp = BUF_INIT;
	int rc;

	if (n > MUTF7_INPUT_MAX || memchr(raw, '\0', n) != NULL) {
		buf_set(why, "mailbox name too long or holds NUL");
		return -1;
	}
	buf_append(&tmp, raw, n);
	buf_reset(out);
	rc = mutf7_folder_name(buf_cstr(&tmp), imapd_store_utf8(s), out, why);
	buf_free(&tmp);
	return rc;
}

/* imapd_store_client_name - name as the client sees it */
void
imapd_store_client_name(bool utf8, const char *name, struct buf *out)
{
	struct buf why = BUF_INIT;
	size_t len = out->len;

	if (utf8 || mutf7_encode(name, strlen(name), out, &why) < 0) {
		out->len = len;
		buf_puts(out, name);
	}
	buf_free(&why);
}

/* imapd_store_write_name - the name as a quoted string */
void
imapd_store_write_name(bool utf8, const char *name, struct buf *out)
{
	struct buf n = BUF_INIT;

	imapd_store_client_name(utf8, name, &n);
	buf_putc(out, '"');
	for (size_t i = 0; i < n.len; i++) {
		if (n.data[i] == '"' || n.data[i] == '\\')
			buf_putc(out, '\\');
		buf_putc(out, n.data[i]);
	}
	buf_putc(out, '"');
	buf_free(&n);
}

/* imapd_store_folder_exists - a real folder directory whose cur/ and
 * new/ are real directories too (a link planted there would lead to
 * another user's mail) */
bool
imapd_store_folder_exists(const char *maildir, const char *name)
{
	static const char *const subs[] = {"", "/cur", "/new"};
	struct buf disk = BUF_INIT, why = BUF_INIT, path = BUF_INIT;
	struct stat st;
	bool ok = false;

	if (mutf7_folder_disk(name, &disk, &why) == 0) {
		ok = true;
		/* the Maildir itself may be a link an admin made */
		for (size_t i = disk.len == 0; ok && i < 3; i++) {
			buf_reset(&path);
			buf_printf(&path, "%s/%s%s", maildir, buf_cstr(&disk),
			    subs[i]);
			ok = lstat(buf_cstr(&path), &st) == 0 &&
			    S_ISDIR(st.st_mode);
		}
	}
	buf_free(&disk);
	buf_free(&why);
	buf_free(&path);
	return ok;
}
