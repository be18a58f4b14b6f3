/*
 * smtpd_commit - group commit of queue files, on one thread per worker.
 *
 * The durability rule (DESIGN.md §4) costs an fdatasync per file plus an
 * fsync of incoming/ before each 250. Doing that on the event loop would
 * stall every session of the worker for the length of a disk flush; doing
 * it per message would cost one directory fsync per message. So the loop
 * thread queues finished writers here, and one commit thread takes the
 * whole pending batch at once: start every file's writeback (so their
 * blocks and the metadata they share go out together), fdatasync each
 * file, link each as
 * incoming/<QID>, then fsync incoming/ ONCE for the batch. Messages that
 * arrive during a flush form the next batch, so the cost of a directory
 * fsync is shared by everything that is waiting.
 *
 * On a fast disk the flush ends before the other sessions have finished
 * their next message, and batches stay near one. So the thread waits, up
 * to smtpd_commit_delay microseconds, while other sessions of the worker
 * are between MAIL and the end of their data (smtpd_commit_expect): they
 * are about to commit too. A lone session never waits.
 *
 * Results go back to the loop thread through an evloop wakeup; only there
 * does the session answer 250 (or 451). A file that was linked but whose
 * directory fsync failed is unlinked again, so a 451 never leaves a
 * message behind that we might deliver as well.
 *
 * The thread touches only the jobs it was given and the spool; it never
 * logs (the loop thread logs the results) and blocks every signal.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/evloop.h"
#include "base/log.h"
#include "mail/params.h"
#include "mail/qfile.h"
#include "mail/spool.h"
#include "smtpd.h"

static pthread_mutex_t smtpd_commit_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t smtpd_commit_cond;	/* on CLOCK_MONOTONIC */
/* jobs waiting for the thread, in arrival order */
static struct smtpd_commit_job *smtpd_commit_todo;
static struct smtpd_commit_job **smtpd_commit_todo_tail = &smtpd_commit_todo;
/* jobs the thread finished, for the loop thread */
static struct smtpd_commit_job *smtpd_commit_done;
static struct smtpd_commit_job **smtpd_commit_done_tail = &smtpd_commit_done;
static struct ev_wakeup *smtpd_commit_wakeup;
/* transactions begun and not yet submitted (loop thread, under the lock) */
static long smtpd_commit_expected;
static bool smtpd_commit_started;

/* smtpd_commit_batch - make one batch durable (commit thread) */
static void
smtpd_commit_batch(struct smtpd_commit_job *batch)
{
	struct smtpd_commit_job *j;
	struct buf why = BUF_INIT;
	struct buf path = BUF_INIT;
	int linked = 0;

	for (j = batch; j != NULL; j = j->next)
		qfile_writer_start_sync(j->w);
	for (j = batch; j != NULL; j = j->next)
		j->result = qfile_writer_sync(j->w, &j->why);
	for (j = batch; j != NULL; j = j->next) {
		if (j->result < 0)
			continue;
		j->result = qfile_writer_link(j->w, j->qid, &j->why);
		if (j->result == 0)
			linked++;
	}
	if (linked == 0 ||
	    spool_sync_dir(var_spool_directory, SPOOL_INCOMING, &why) == 0) {
		buf_free(&why);
		return;
	}
	/* The names may not be durable: take the files back, answer 451. */
	for (j = batch; j != NULL; j = j->next) {
		if (j->result < 0)
			continue;
		j->result = -1;
		buf_printf(&j->why, "%s", buf_cstr(&why));
		buf_reset(&path);
		spool_path(&path, var_spool_directory, SPOOL_INCOMING, j->qid);
		if (unlink(buf_cstr(&path)) < 0 && errno != ENOENT)
			buf_printf(&j->why, "; unlink %s: %s", buf_cstr(&path),
			    strerror(errno));
	}
	buf_free(&why);
	buf_free(&path);
}

/* smtpd_commit_wait_expected - with the lock held, give transactions in
 * progress up to smtpd_commit_delay to join the batch (commit thread) */
static void
smtpd_commit_wait_expected(void)
{
	struct timespec until;

	if (var_smtpd_commit_delay <= 0 || smtpd_commit_expected <= 0)
		return;
	if (clock_gettime(CLOCK_MONOTONIC, &until) < 0)
		return;
	until.tv_nsec += (long)var_smtpd_commit_delay * 1000;
	until.tv_sec += until.tv_nsec / 1000000000;
	until.tv_nsec %= 1000000000;
	while (smtpd_commit_expected > 0)
		if (pthread_cond_timedwait(&smtpd_commit_cond,
		    &smtpd_commit_lock, &until) == ETIMEDOUT)
			break;
}

/* smtpd_commit_thread - take whole batches and commit them */
static void *
smtpd_commit_thread(void *arg)
{
	struct smtpd_commit_job *batch, *last;

	for (;;) {
		if (pthread_mutex_lock(&smtpd_commit_lock) != 0)
			msg_panic("smtpd_commit_thread: mutex lock");
		while (smtpd_commit_todo == NULL)
			pthread_cond_wait(&smtpd_commit_cond,
			    &smtpd_commit_lock);
		smtpd_commit_wait_expected();
		batch = smtpd_commit_todo;
		smtpd_commit_todo = NULL;
		smtpd_commit_todo_tail = &smtpd_commit_todo;
		pthread_mutex_unlock(&smtpd_commit_lock);

		smtpd_commit_batch(batch);

		for (last = batch; last->next != NULL; last = last->next)
			;
		pthread_mutex_lock(&smtpd_commit_lock);
		*smtpd_commit_done_tail = batch;
		smtpd_commit_done_tail = &last->next;
		pthread_mutex_unlock(&smtpd_commit_lock);
		evloop_wakeup(smtpd_commit_wakeup);
	}
	return NULL;
}

/* smtpd_commit_reap - hand finished jobs to their owners (loop thread) */
static void
smtpd_commit_reap(struct evloop *loop, void *ctx)
{
	struct smtpd_commit_job *list, *next;

	pthread_mutex_lock(&smtpd_commit_lock);
	list = smtpd_commit_done;
	smtpd_commit_done = NULL;
	smtpd_commit_done_tail = &smtpd_commit_done;
	pthread_mutex_unlock(&smtpd_commit_lock);
	for (; list != NULL; list = next) {
		next = list->next;	/* done() may free the job's owner */
		list->next = NULL;
		list->done(list, list->ctx);
	}
}

/* smtpd_commit_init - start the commit thread (after the privilege drop) */
void
smtpd_commit_init(struct evloop *loop)
{
	pthread_t tid;
	pthread_condattr_t attr;
	sigset_t all, old;
	int err;

	if (smtpd_commit_started)
		return;
	smtpd_commit_wakeup = evloop_wakeup_new(loop, smtpd_commit_reap, NULL);
	/* the commit delay is measured on the monotonic clock */
	if ((err = pthread_condattr_init(&attr)) != 0 ||
	    (err = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)) != 0 ||
	    (err = pthread_cond_init(&smtpd_commit_cond, &attr)) != 0)
		msg_fatal("commit thread condition: %s", strerror(err));
	(void)pthread_condattr_destroy(&attr);
	/* The thread inherits a mask with every signal blocked. */
	sigfillset(&all);
	if ((err = pthread_sigmask(SIG_SETMASK, &all, &old)) != 0)
		msg_fatal("pthread_sigmask: %s", strerror(err));
	err = pthread_create(&tid, NULL, smtpd_commit_thread, NULL);
	(void)pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err != 0)
		msg_fatal("cannot start the commit thread: %s", strerror(err));
	(void)pthread_detach(tid);
	smtpd_commit_started = true;
}

/* smtpd_commit_submit - queue a finished writer; job->done runs later in
 * the loop thread with job->result set */
void
smtpd_commit_submit(struct smtpd_commit_job *job, bool expected)
{
	if (!smtpd_commit_started)
		msg_panic("smtpd_commit_submit: no commit thread");
	job->next = NULL;
	buf_reset(&job->why);
	pthread_mutex_lock(&smtpd_commit_lock);
	*smtpd_commit_todo_tail = job;
	smtpd_commit_todo_tail = &job->next;
	if (expected && --smtpd_commit_expected < 0)
		msg_panic("smtpd_commit_submit: more ends than beginnings");
	pthread_cond_signal(&smtpd_commit_cond);
	pthread_mutex_unlock(&smtpd_commit_lock);
}

/* smtpd_commit_expect - count transactions that will probably commit soon;
 * when the last one ends without a commit, a waiting batch goes at once */
void
smtpd_commit_expect(bool begun)
{
	pthread_mutex_lock(&smtpd_commit_lock);
	smtpd_commit_expected += begun ? 1 : -1;
	if (smtpd_commit_expected < 0)
		msg_panic("smtpd_commit_expect: more ends than beginnings");
	if (smtpd_commit_expected == 0)
		pthread_cond_signal(&smtpd_commit_cond);
	pthread_mutex_unlock(&smtpd_commit_lock);
}
