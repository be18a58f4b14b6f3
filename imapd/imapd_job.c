/*
 * imapd_job - the job threads of an imapd worker: the work that grows
 * with a mailbox (opening and building an index, syncing a folder,
 * listing folders, expunging) runs here, never on the event loop, so one
 * user with 50,000 messages does not stall the other sessions of the
 * worker (DESIGN.md 9). Modelled on pop3d_job.c.
 *
 * The loop thread queues a job (imapd_store.c pauses the session's
 * input and holds the session while it is out); imapd_job_threads
 * threads take jobs in order; a finished job goes back through an
 * evloop wakeup (eventfd) and is handed to its session in the loop
 * thread. A thread touches only its job, the job's index and the file
 * system; it blocks every signal. It may log (msg_* is one write per
 * line).
 */
#include <pthread.h>
#include <signal.h>
#include <string.h>

#include "base/buf.h"
#include "base/evloop.h"
#include "base/log.h"
#include "base/mem.h"
#include "mail/params.h"
#include "imapd.h"
#include "imapd_store.h"

static pthread_mutex_t imapd_job_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t imapd_job_cond = PTHREAD_COND_INITIALIZER;
/* jobs waiting for a thread, and jobs done, in order */
static struct imapd_job *imapd_job_todo, **imapd_job_todo_tail =
    &imapd_job_todo;
static struct imapd_job *imapd_job_done, **imapd_job_done_tail =
    &imapd_job_done;
static struct ev_wakeup *imapd_job_wakeup;
static bool imapd_job_started;

/* imapd_job_thread - take jobs one at a time */
static void *
imapd_job_thread(void *arg)
{
	struct imapd_job *job;

	(void)arg;
	for (;;) {
		if (pthread_mutex_lock(&imapd_job_lock) != 0)
			msg_panic("imapd_job_thread: mutex lock");
		while (imapd_job_todo == NULL)
			pthread_cond_wait(&imapd_job_cond, &imapd_job_lock);
		job = imapd_job_todo;
		if ((imapd_job_todo = job->next) == NULL)
			imapd_job_todo_tail = &imapd_job_todo;
		job->next = NULL;
		pthread_mutex_unlock(&imapd_job_lock);

		job->run(job, job->ix);

		pthread_mutex_lock(&imapd_job_lock);
		*imapd_job_done_tail = job;
		imapd_job_done_tail = &job->next;
		pthread_mutex_unlock(&imapd_job_lock);
		evloop_wakeup(imapd_job_wakeup);
	}
	return NULL;
}

/* imapd_job_reap - hand finished jobs to their sessions (loop thread) */
static void
imapd_job_reap(struct evloop *loop, void *ctx)
{
	struct imapd_job *list, *next;

	(void)loop;
	(void)ctx;
	pthread_mutex_lock(&imapd_job_lock);
	list = imapd_job_done;
	imapd_job_done = NULL;
	imapd_job_done_tail = &imapd_job_done;
	pthread_mutex_unlock(&imapd_job_lock);
	for (; list != NULL; list = next) {
		next = list->next;
		list->next = NULL;
		imapd_store_job_done(list);
	}
}

/* imapd_job_init - start the job threads */
void
imapd_job_init(struct evloop *loop)
{
	sigset_t all, old;
	pthread_t tid;
	int err;

	if (imapd_job_started)
		return;
	imapd_job_wakeup = evloop_wakeup_new(loop, imapd_job_reap, NULL);
	/* the threads inherit a mask with every signal blocked */
	sigfillset(&all);
	if ((err = pthread_sigmask(SIG_SETMASK, &all, &old)) != 0)
		msg_fatal("pthread_sigmask: %s", strerror(err));
	for (long long i = 0; i < var_imapd_job_threads; i++) {
		err = pthread_create(&tid, NULL, imapd_job_thread, NULL);
		if (err != 0) {
			(void)pthread_sigmask(SIG_SETMASK, &old, NULL);
			msg_fatal("cannot start an imapd job thread: %s",
			    strerror(err));
		}
		(void)pthread_detach(tid);
	}
	(void)pthread_sigmask(SIG_SETMASK, &old, NULL);
	imapd_job_started = true;
}

/* imapd_job_queue - queue job for a job thread (imapd_store.c) */
void
imapd_job_queue(struct imapd_job *job)
{
	if (!imapd_job_started)
		msg_panic("imapd_job_queue: no job thread");
	job->next = NULL;
	pthread_mutex_lock(&imapd_job_lock);
	*imapd_job_todo_tail = job;
	imapd_job_todo_tail = &job->next;
	pthread_cond_signal(&imapd_job_cond);
	pthread_mutex_unlock(&imapd_job_lock);
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
