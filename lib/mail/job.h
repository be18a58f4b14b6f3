/*
 * job - a pool of job threads beside a worker's event loop: the work that
 * grows with a mailbox (opening and syncing an index, scanning a
 * maildrop, searching, expunging) runs on a thread, never on the loop, so
 * one user with 50,000 messages does not stall the other sessions of the
 * worker (DESIGN.md 9). pop3d and imapd use it.
 *
 * The loop thread fills a struct job (usually the first member of the
 * daemon's own job struct) and hands it to job_submit(). A thread calls
 * job->run; the finished job goes back through an evloop wakeup (an
 * eventfd) and job->done runs in the loop thread, which owns the job
 * again and frees it. Guarantees:
 *
 *  - done runs exactly once for every submitted job, in the loop thread;
 *  - jobs of one owner (a session; NULL: no owner) run one at a time and
 *    in the order submitted, and their done calls come in that order;
 *    jobs of different owners run side by side on the pool's threads;
 *  - job_cancel(owner) (the session has ended) drops the owner's jobs
 *    that no thread has started, except those marked keep: their run is
 *    skipped and their done comes with job->cancelled set, so the owner
 *    only frees what they hold. A job already running finishes;
 *  - job_pool_free() (shutdown) lets the threads finish every job still
 *    queued, joins them, then calls the done of every finished job that
 *    the loop has not reaped, in the caller's thread.
 *
 * A thread touches only its job and what the job hands it (an index, a
 * maildrop, the file system); it runs with every signal blocked and may
 * log (msg_* is one write per line). Panics: submitting a job that is
 * already out, or to a pool being freed.
 */
#ifndef MAIL_JOB_H
#define MAIL_JOB_H

#include <stdbool.h>
#include <stddef.h>

struct evloop;
struct job_pool;

/* one piece of work; zero it, set run, done and owner, then submit */
struct job {
	void (*run)(struct job *job);	/* on a job thread */
	void (*done)(struct job *job);	/* in the loop thread; frees it */
	const void *owner;	/* one at a time, in order (NULL: none) */
	bool keep;		/* job_cancel passes it by: it must run */
	bool cancelled;		/* run was skipped (job_cancel): for done */
	/* private */
	bool queued;		/* submitted, done not yet called */
	struct job *next;
};

/* job_pool_new - start threads (1..JOB_THREADS_MAX) for loop; name is
 * for error messages ("imapd job") */
#define JOB_THREADS_MAX 64
struct job_pool *job_pool_new(struct evloop *loop, int threads,
    const char *name);
/* job_submit - queue job; its done follows in the loop thread */
void job_submit(struct job_pool *p, struct job *job);
/* job_cancel - the owner is gone: skip its queued jobs (not keep ones);
 * how many were dropped */
size_t job_cancel(struct job_pool *p, const void *owner);
/* job_pool_free - finish every queued job, stop the threads, call the
 * done of every finished job here, free the pool. NULL is fine */
void job_pool_free(struct job_pool **p);

#endif
