/*
 * pop3d_job - the maildrop threads of a pop3d worker: the work that grows
 * with a maildrop (the scan at login: readdir of new/ and cur/, moving
 * new/ to cur/, sizes; UPDATE at QUIT: an unlink per deleted message) runs
 * here, never on the event loop, so one user with 50,000 messages does
 * not stall the other sessions of the worker (DESIGN.md 9).
 *
 * The loop thread queues a job and pauses the session's input; the
 * session is "held" (lib/mail/session.c) while its job is out, so it is
 * never freed under a thread. pop3d_maildrop_threads threads take jobs in
 * order; a finished job goes back through an evloop wakeup (eventfd) and
 * its done callback runs in the loop thread.
 *
 * A thread touches only its job, the job's maildrop and the file system;
 * it blocks every signal. It may log (msg_* is one write per line).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>

#include "base/buf.h"
#include "base/evloop.h"
#include "base/log.h"
#include "base/mem.h"
#include "mail/params.h"
#include "pop3d.h"

static pthread_mutex_t pop3d_job_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pop3d_job_cond = PTHREAD_COND_INITIALIZER;
/* jobs waiting for a thread, and jobs done, in order */
static struct pop3d_job *pop3d_job_todo, **pop3d_job_todo_tail =
    &pop3d_job_todo;
static struct pop3d_job *pop3d_job_done, **pop3d_job_done_tail =
    &pop3d_job_done;
static struct ev_wakeup *pop3d_job_wakeup;
static bool pop3d_job_started;

/* pop3d_job_run - do one job (maildrop thread) */
static void
pop3d_job_run(struct pop3d_job *job)
{
	switch (job->kind) {
	case POP3D_JOB_OPEN:
		job->result = pop3d_maildrop_open(job->path, &job->md,
		    &job->why);
		break;
	case POP3D_JOB_UPDATE:
		job->failed = pop3d_maildrop_update(job->md, &job->removed);
		break;
	}
}

/* pop3d_job_thread - take jobs one at a time */
static void *
pop3d_job_thread(void *arg)
{
	struct pop3d_job *job;

	(void)arg;
	for (;;) {
		if (pthread_mutex_lock(&pop3d_job_lock) != 0)
			msg_panic("pop3d_job_thread: mutex lock");
		while (pop3d_job_todo == NULL)
			pthread_cond_wait(&pop3d_job_cond, &pop3d_job_lock);
		job = pop3d_job_todo;
		if ((pop3d_job_todo = job->next) == NULL)
			pop3d_job_todo_tail = &pop3d_job_todo;
		job->next = NULL;
		pthread_mutex_unlock(&pop3d_job_lock);

		pop3d_job_run(job);

		pthread_mutex_lock(&pop3d_job_lock);
		*pop3d_job_done_tail = job;
		pop3d_job_done_tail = &job->next;
		pthread_mutex_unlock(&pop3d_job_lock);
		evloop_wakeup(pop3d_job_wakeup);
	}
	return NULL;
}

/* pop3d_job_reap - hand finished jobs to their sessions (loop thread) */
static void
pop3d_job_reap(struct evloop *loop, void *ctx)
{
	struct pop3d_job *list, *next;

	(void)loop;
	(void)ctx;
	pthread_mutex_lock(&pop3d_job_lock);
	list = pop3d_job_done;
	pop3d_job_done = NULL;
	pop3d_job_done_tail = &pop3d_job_done;
	pthread_mutex_unlock(&pop3d_job_lock);
	for (; list != NULL; list = next) {
		next = list->next;
		list->next = NULL;
		list->done(list, list->ctx);	/* frees the job */
	}
}

/* pop3d_job_init - start the maildrop threads */
void
pop3d_job_init(struct evloop *loop)
{
	sigset_t all, old;
	pthread_t tid;
	int err;

	if (pop3d_job_started)
		return;
	pop3d_job_wakeup = evloop_wakeup_new(loop, pop3d_job_reap, NULL);
	/* the threads inherit a mask with every signal blocked */
	sigfillset(&all);
	if ((err = pthread_sigmask(SIG_SETMASK, &all, &old)) != 0)
		msg_fatal("pthread_sigmask: %s", strerror(err));
	for (long long i = 0; i < var_pop3d_maildrop_threads; i++) {
		err = pthread_create(&tid, NULL, pop3d_job_thread, NULL);
		if (err != 0) {
			(void)pthread_sigmask(SIG_SETMASK, &old, NULL);
			msg_fatal("cannot start a maildrop thread: %s",
			    strerror(err));
		}
		(void)pthread_detach(tid);
	}
	(void)pthread_sigmask(SIG_SETMASK, &old, NULL);
	pop3d_job_started = true;
}

/* pop3d_job_submit - queue job for a maildrop thread */
void
pop3d_job_submit(struct pop3d_job *job)
{
	if (!pop3d_job_started)
		msg_panic("pop3d_job_submit: no maildrop thread");
	job->next = NULL;
	pthread_mutex_lock(&pop3d_job_lock);
	*pop3d_job_todo_tail = job;
	pop3d_job_todo_tail = &job->next;
	pthread_cond_signal(&pop3d_job_cond);
	pthread_mutex_unlock(&pop3d_job_lock);
}

/* pop3d_job_free - free a job and close the maildrop it still holds */
void
pop3d_job_free(struct pop3d_job **jobp)
{
	struct pop3d_job *job = *jobp;

	if (job == NULL)
		return;
	pop3d_maildrop_close(&job->md);
	x_free(&job->path);
	buf_free(&job->why);
	x_free(jobp);
}
