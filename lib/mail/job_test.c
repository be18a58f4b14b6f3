/*
 * job_test - the job pool: a job runs on another thread and its done
 * comes back in the loop thread, jobs of one owner run one at a time in
 * order, a cancelled owner's queued jobs are skipped (not keep ones),
 * and freeing a pool with jobs in flight runs and reaps every one.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "base/evloop.h"
#include "base/mem.h"
#include "base/test.h"
#include "mail/job.h"

#define NJOBS 64

struct tjob {
	struct job base;
	int seq;		/* order submitted within its owner */
	int sleep_ms;		/* run takes this long */
	pthread_t run_thread;	/* where run ran */
	bool ran;
	bool done_in_loop;	/* done ran in the test's thread */
};

static pthread_t test_main_thread;
static struct evloop *test_loop;
static int test_done_count, test_want_done;
static int test_last_seq[4];	/* per owner: seq of the last done */
static bool test_order_ok;
static atomic_int test_running[4];	/* per owner: jobs in run now */
static atomic_bool test_overlap;	/* two of one owner ran at once */
static int test_owner[4];	/* owners are addresses of these */

/* tjob_owner_index - which test_owner a job belongs to */
static int
tjob_owner_index(const struct tjob *j)
{
	return (int)((const int *)j->base.owner - test_owner);
}

/* tjob_run - on a job thread */
static void
tjob_run(struct job *job)
{
	struct tjob *j = (struct tjob *)job;
	int o = tjob_owner_index(j);
	struct timespec ts = {0, (long)j->sleep_ms * 1000000L};

	if (atomic_fetch_add(&test_running[o], 1) != 0)
		atomic_store(&test_overlap, true);
	j->run_thread = pthread_self();
	if (j->sleep_ms > 0)
		(void)nanosleep(&ts, NULL);
	j->ran = true;
	atomic_fetch_sub(&test_running[o], 1);
}

/* tjob_done - in the loop thread: check order, count, maybe stop */
static void
tjob_done(struct job *job)
{
	struct tjob *j = (struct tjob *)job;
	int o = tjob_owner_index(j);

	j->done_in_loop = pthread_equal(pthread_self(), test_main_thread);
	if (j->seq != test_last_seq[o] + 1)
		test_order_ok = false;
	test_last_seq[o] = j->seq;
	if (++test_done_count == test_want_done && test_loop != NULL)
		evloop_stop(test_loop);
}

/* tjob_timeout - the loop ran too long: stop it (the test then fails) */
static long long
tjob_timeout(struct evloop *loop, void *ctx)
{
	(void)ctx;
	evloop_stop(loop);
	return 0;
}

/* test_reset - fresh counters and a loop */
static void
test_reset(int want)
{
	test_main_thread = pthread_self();
	test_done_count = 0;
	test_want_done = want;
	test_order_ok = true;
	atomic_store(&test_overlap, false);
	for (int i = 0; i < 4; i++) {
		test_last_seq[i] = 0;
		atomic_store(&test_running[i], 0);
	}
	test_loop = evloop_new();
}

/* tjob_fill - n jobs over owners round robin, seq per owner from 1 */
static struct tjob *
tjob_fill(int n, int owners, int sleep_ms)
{
	struct tjob *jobs = xcalloc((size_t)n, sizeof(*jobs));
	int seq[4] = {0, 0, 0, 0};

	for (int i = 0; i < n; i++) {
		int o = i % owners;

		jobs[i].base.run = tjob_run;
		jobs[i].base.done = tjob_done;
		jobs[i].base.owner = &test_owner[o];
		jobs[i].seq = ++seq[o];
		jobs[i].sleep_ms = sleep_ms;
	}
	return jobs;
}

/* run until every done came, at most 10 s */
static void
test_loop_run(void)
{
	struct ev_timer *t;

	t = evloop_add_timer(test_loop, 10000, tjob_timeout, NULL);
	(void)evloop_run(test_loop);
	evloop_cancel_timer(test_loop, &t);
}

static void
test_submit_and_done(void)
{
	struct job_pool *p;
	struct tjob *jobs;

	test_reset(NJOBS);
	p = job_pool_new(test_loop, 3, "test job");
	jobs = tjob_fill(NJOBS, 4, 0);
	for (int i = 0; i < NJOBS; i++)
		job_submit(p, &jobs[i].base);
	test_loop_run();
	T_EQ_INT(test_done_count, NJOBS);
	for (int i = 0; i < NJOBS; i++) {
		T_ASSERT(jobs[i].ran);
		T_ASSERT(jobs[i].done_in_loop);
		T_ASSERT(!pthread_equal(jobs[i].run_thread,
		    test_main_thread));
		T_ASSERT(!jobs[i].base.cancelled);
	}
	job_pool_free(&p);
	T_ASSERT(p == NULL);
	x_free(&jobs);
	evloop_free(&test_loop);
}

static void
test_order_per_owner(void)
{
	struct job_pool *p;
	struct tjob *jobs;

	/* two owners, four threads, slow jobs: without the owner rule two
	 * threads would run one owner's jobs side by side */
	test_reset(24);
	p = job_pool_new(test_loop, 4, "test job");
	jobs = tjob_fill(24, 2, 5);
	for (int i = 0; i < 24; i++)
		job_submit(p, &jobs[i].base);
	test_loop_run();
	T_EQ_INT(test_done_count, 24);
	T_ASSERT(test_order_ok);
	T_ASSERT(!atomic_load(&test_overlap));
	T_EQ_INT(test_last_seq[0], 12);
	T_EQ_INT(test_last_seq[1], 12);
	job_pool_free(&p);
	x_free(&jobs);
	evloop_free(&test_loop);
}

static void
test_cancel_owner(void)
{
	struct job_pool *p;
	struct tjob *jobs;
	size_t n;

	/* one thread, owner 0's first job is slow: its other jobs and
	 * owner 1's are still queued when owner 0 is cancelled */
	test_reset(10);
	p = job_pool_new(test_loop, 1, "test job");
	jobs = tjob_fill(10, 2, 0);
	jobs[0].sleep_ms = 200;
	jobs[4].base.keep = true;	/* owner 0, seq 3: must run */
	for (int i = 0; i < 10; i++)
		job_submit(p, &jobs[i].base);
	/* let the thread take the first job */
	for (int i = 0; i < 100 && atomic_load(&test_running[0]) == 0; i++)
		(void)nanosleep(&(struct timespec){0, 1000000L}, NULL);
	T_EQ_INT(atomic_load(&test_running[0]), 1);
	n = job_cancel(p, &test_owner[0]);
	T_EQ_INT(n, 3);		/* seq 2, 4, 5; not 1 (running), not 3 */
	T_EQ_INT(job_cancel(p, &test_owner[0]), 0);
	T_EQ_INT(job_cancel(p, NULL), 0);
	test_loop_run();
	T_EQ_INT(test_done_count, 10);
	T_ASSERT(test_order_ok);	/* cancelled ones too, in order */
	for (int i = 0; i < 10; i++) {
		bool skipped = i % 2 == 0 && i != 0 && i != 4;

		T_EQ_INT(jobs[i].base.cancelled, skipped);
		T_EQ_INT(jobs[i].ran, !skipped);
	}
	job_pool_free(&p);
	x_free(&jobs);
	evloop_free(&test_loop);
}

static void
test_shutdown_in_flight(void)
{
	struct job_pool *p;
	struct tjob *jobs;

	/* free the pool while jobs run and wait: every job runs and every
	 * done comes, in order, without the loop running */
	test_reset(20);
	p = job_pool_new(test_loop, 2, "test job");
	jobs = tjob_fill(20, 3, 2);
	for (int i = 0; i < 20; i++)
		job_submit(p, &jobs[i].base);
	job_pool_free(&p);
	T_ASSERT(p == NULL);
	T_EQ_INT(test_done_count, 20);
	T_ASSERT(test_order_ok);
	for (int i = 0; i < 20; i++) {
		T_ASSERT(jobs[i].ran);
		T_ASSERT(jobs[i].done_in_loop);
	}
	x_free(&jobs);
	evloop_free(&test_loop);
}

/* test_resubmit_done - done submits the owner's next job */
static struct job_pool *test_chain_pool;

static void
tjob_chain_done(struct job *job)
{
	struct tjob *j = (struct tjob *)job;

	tjob_done(job);
	if (j->seq < 5) {
		j->seq++;
		test_last_seq[tjob_owner_index(j)] = j->seq - 1;
		job_submit(test_chain_pool, job);
	}
}

static void
test_resubmit_from_done(void)
{
	struct tjob j;

	test_reset(5);
	test_chain_pool = job_pool_new(test_loop, 2, "test job");
	memset(&j, 0, sizeof(j));
	j.base.run = tjob_run;
	j.base.done = tjob_chain_done;
	j.base.owner = &test_owner[0];
	j.seq = 1;
	job_submit(test_chain_pool, &j.base);
	test_loop_run();
	T_EQ_INT(test_done_count, 5);
	T_ASSERT(test_order_ok);
	job_pool_free(&test_chain_pool);
	evloop_free(&test_loop);
}

static void
test_misuse_panics(void)
{
	struct tjob j;

	test_reset(1);
	memset(&j, 0, sizeof(j));
	j.base.run = tjob_run;
	j.base.done = tjob_done;
	j.base.owner = &test_owner[0];
	T_EXPECT_DEATH({
		struct job_pool *p = job_pool_new(test_loop, 1, "t");
		j.sleep_ms = 100;
		job_submit(p, &j.base);
		job_submit(p, &j.base);	/* already out */
	});
	T_EXPECT_DEATH(job_pool_new(test_loop, 0, "t"));
	evloop_free(&test_loop);
}

static const struct test_case cases[] = {
	{"submit, run on a thread, done in the loop", test_submit_and_done},
	{"one owner: one at a time, in order", test_order_per_owner},
	{"cancel an owner's queued jobs, keep ones run",
	    test_cancel_owner},
	{"pool freed with jobs in flight", test_shutdown_in_flight},
	{"done submits the next job", test_resubmit_from_done},
	{"misuse panics", test_misuse_panics},
	{0},
};

int
main(void)
{
	return test_run(cases);
}
