/*
 * job - the job threads of a worker and the hand-off between them and the
 * event loop (see job.h): a queue of jobs to run and a queue of finished
 * jobs under one mutex, a condition variable the threads wait on, and an
 * evloop wakeup that brings finished jobs back to the loop thread.
 *
 * Order per owner: a thread takes the first queued job whose owner has no
 * job running on another thread. The first queued job of an owner is its
 * oldest, so an owner's jobs start in the order submitted, one at a time,
 * and reach the finished queue (a FIFO) in that order too. A cancelled
 * job keeps its place in the queue; the thread that takes it skips run
 * and passes it on, so its done does not overtake the owner's earlier
 * jobs either.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "base/evloop.h"
#include "base/log.h"
#include "base/mem.h"
#include "mail/job.h"

/* one thread of a pool */
struct job_thread {
	struct job_pool *pool;
	pthread_t tid;
	const void *owner;	/* of the job it runs, or NULL */
	bool busy;		/* it runs a job */
};

struct job_pool {
	pthread_mutex_t lock;
	pthread_cond_t cond;		/* work queued, or stopping */
	struct job *todo, **todo_tail;	/* to run, in order */
	struct job *done, **done_tail;	/* finished, in order */
	struct evloop *loop;
	struct ev_wakeup *wakeup;	/* to the loop: jobs finished */
	struct job_thread *threads;
	int nthreads;			/* started */
	bool stopping;			/* job_pool_free: drain and exit */
	char name[32];			/* for messages */
};

/* job_lock / job_unlock - the pool's mutex; failing is a bug */
static void
job_lock(struct job_pool *p)
{
	if (pthread_mutex_lock(&p->lock) != 0)
		msg_panic("%s: mutex lock", p->name);
}

static void
job_unlock(struct job_pool *p)
{
	if (pthread_mutex_unlock(&p->lock) != 0)
		msg_panic("%s: mutex unlock", p->name);
}

/* job_owner_busy - has owner a job running on some thread? (locked) */
static bool
job_owner_busy(const struct job_pool *p, const void *owner)
{
	for (int i = 0; i < p->nthreads; i++)
		if (p->threads[i].busy && p->threads[i].owner == owner)
			return true;
	return false;
}

/* job_take - unlink the first job a thread may run now, or NULL
 * (locked) */
static struct job *
job_take(struct job_pool *p)
{
	struct job **pp, *job;

	for (pp = &p->todo; (job = *pp) != NULL; pp = &job->next) {
		if (job->owner != NULL && job_owner_busy(p, job->owner))
			continue;
		if ((*pp = job->next) == NULL)
			p->todo_tail = pp;
		job->next = NULL;
		return job;
	}
	return NULL;
}

/* job_thread_main - take jobs until the pool stops and the queue is
 * empty */
static void *
job_thread_main(void *arg)
{
	struct job_thread *t = arg;
	struct job_pool *p = t->pool;
	struct job *job;

	job_lock(p);
	for (;;) {
		if ((job = job_take(p)) == NULL) {
			if (p->stopping && p->todo == NULL)
				break;
			if (pthread_cond_wait(&p->cond, &p->lock) != 0)
				msg_panic("%s: condition wait", p->name);
			continue;
		}
		t->busy = true;
		t->owner = job->owner;
		job_unlock(p);

		if (!job->cancelled)
			job->run(job);

		job_lock(p);
		t->busy = false;
		t->owner = NULL;
		*p->done_tail = job;
		p->done_tail = &job->next;
		/* another thread may wait for this owner's next job */
		(void)pthread_cond_broadcast(&p->cond);
		evloop_wakeup(p->wakeup);
	}
	job_unlock(p);
	return NULL;
}

/* job_reap - call done for the finished jobs (loop thread) */
static void
job_reap(struct job_pool *p)
{
	struct job *list, *next;

	job_lock(p);
	list = p->done;
	p->done = NULL;
	p->done_tail = &p->done;
	job_unlock(p);
	for (; list != NULL; list = next) {
		next = list->next;
		list->next = NULL;
		list->queued = false;
		list->done(list);	/* may free it, may submit more */
	}
}

/* job_wakeup - the threads finished jobs: hand them back */
static void
job_wakeup(struct evloop *loop, void *ctx)
{
	(void)loop;
	job_reap(ctx);
}

/* job_pool_new - start the threads, every signal blocked in them */
struct job_pool *
job_pool_new(struct evloop *loop, int threads, const char *name)
{
	struct job_pool *p;
	sigset_t all, old;
	int err;

	if (threads < 1 || threads > JOB_THREADS_MAX)
		msg_panic("job_pool_new: %d threads", threads);
	p = xcalloc(1, sizeof(*p));
	if (pthread_mutex_init(&p->lock, NULL) != 0 ||
	    pthread_cond_init(&p->cond, NULL) != 0)
		msg_fatal("%s: cannot make a mutex", name);
	p->todo_tail = &p->todo;
	p->done_tail = &p->done;
	p->loop = loop;
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->wakeup = evloop_wakeup_new(loop, job_wakeup, p);
	p->threads = xcalloc((size_t)threads, sizeof(*p->threads));
	/* the threads inherit a mask with every signal blocked */
	sigfillset(&all);
	if ((err = pthread_sigmask(SIG_SETMASK, &all, &old)) != 0)
		msg_fatal("pthread_sigmask: %s", strerror(err));
	for (int i = 0; i < threads; i++) {
		p->threads[i].pool = p;
		err = pthread_create(&p->threads[i].tid, NULL,
		    job_thread_main, &p->threads[i]);
		if (err != 0) {
			(void)pthread_sigmask(SIG_SETMASK, &old, NULL);
			msg_fatal("cannot start a %s thread: %s", name,
			    strerror(err));
		}
		job_lock(p);
		p->nthreads++;
		job_unlock(p);
	}
	if ((err = pthread_sigmask(SIG_SETMASK, &old, NULL)) != 0)
		msg_fatal("pthread_sigmask: %s", strerror(err));
	return p;
}

/* job_submit - queue job for a thread */
void
job_submit(struct job_pool *p, struct job *job)
{
	if (job->queued || job->run == NULL || job->done == NULL)
		msg_panic("%s: job_submit: job already out or incomplete",
		    p->name);
	job->queued = true;
	job->cancelled = false;
	job->next = NULL;
	job_lock(p);
	if (p->stopping)
		msg_panic("%s: job_submit while stopping", p->name);
	*p->todo_tail = job;
	p->todo_tail = &job->next;
	(void)pthread_cond_signal(&p->cond);
	job_unlock(p);
}

/* job_cancel - mark owner's queued jobs so that their run is skipped */
size_t
job_cancel(struct job_pool *p, const void *owner)
{
	struct job *job;
	size_t n = 0;

	if (owner == NULL)
		return 0;
	job_lock(p);
	for (job = p->todo; job != NULL; job = job->next) {
		if (job->owner == owner && !job->keep && !job->cancelled) {
			job->cancelled = true;
			n++;
		}
	}
	job_unlock(p);
	return n;
}

/* job_pool_free - drain, join, reap, free */
void
job_pool_free(struct job_pool **pp)
{
	struct job_pool *p = *pp;
	int err;

	if (p == NULL)
		return;
	job_lock(p);
	p->stopping = true;
	(void)pthread_cond_broadcast(&p->cond);
	job_unlock(p);
	for (int i = 0; i < p->nthreads; i++)
		if ((err = pthread_join(p->threads[i].tid, NULL)) != 0)
			msg_panic("%s: join: %s", p->name, strerror(err));
	job_reap(p);
	evloop_wakeup_free(p->loop, &p->wakeup);
	(void)pthread_cond_destroy(&p->cond);
	(void)pthread_mutex_destroy(&p->lock);
	x_free(&p->threads);
	x_free(pp);
}
