/*
 * evloop_test - unit tests of the event loop: fd readiness, removal of an
 * fd that is ready in the same batch, timer order with reset and cancel,
 * repeating timers, signals, deferred calls, and wakeups from a thread.
 * Every loop run has a guard timer, so a broken loop fails, not hangs.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/evloop.h"
#include "base/test.h"

static int guard_fired;

/* guard - stop a loop that ran too long */
static long long
guard(struct evloop *loop, void *ctx)
{
	guard_fired = 1;
	evloop_stop(loop);
	return -1;
}

/* run_guarded - evloop_run with a guard of ms; 0 if the guard stayed off */
static int
run_guarded(struct evloop *loop, long long ms)
{
	struct ev_timer *g;
	int rc;

	guard_fired = 0;
	g = evloop_add_timer(loop, ms, guard, NULL);
	rc = evloop_run(loop);
	if (!guard_fired)
		evloop_cancel_timer(loop, &g);
	return rc == 0 && !guard_fired ? 0 : -1;
}

struct pipe_ctx {
	int fds[2];
	int calls;
	unsigned events;
	char got[16];
};

/* on_read - read what is there and stop */
static void
on_read(struct evloop *loop, int fd, unsigned events, void *ctx)
{
	struct pipe_ctx *p = ctx;
	ssize_t n;

	p->calls++;
	p->events = events;
	n = read(fd, p->got, sizeof(p->got) - 1);
	p->got[n > 0 ? n : 0] = '\0';
	evloop_stop(loop);
}

/* test_pipe - a readable pipe end gets EV_READ */
static void
test_pipe(void)
{
	struct evloop *loop = evloop_new();
	struct pipe_ctx p = {{-1, -1}, 0, 0, ""};

	T_ASSERT(pipe(p.fds) == 0);
	T_EQ_INT(evloop_add_fd(loop, p.fds[0], EV_READ, on_read, &p), 0);
	T_EQ_INT(evloop_add_fd(loop, p.fds[0], EV_READ, on_read, &p), -1);
	T_EQ_INT(errno, EEXIST);
	T_EQ_INT(write(p.fds[1], "ping", 4), 4);
	T_EQ_INT(run_guarded(loop, 2000), 0);
	T_EQ_INT(p.calls, 1);
	T_EQ_INT(p.events, EV_READ);
	T_EQ_STR(p.got, "ping");
	evloop_del_fd(loop, p.fds[0]);
	evloop_del_fd(loop, p.fds[0]);	/* twice is harmless */
	T_EQ_INT(evloop_mod_fd(loop, p.fds[0], EV_READ), -1);
	close(p.fds[0]);
	close(p.fds[1]);
	evloop_free(&loop);
	T_ASSERT(loop == NULL);
}

/* pair of pipes, both readable, for the same-batch removal test */
struct race {
	int a[2], b[2];
	int calls_a, calls_b, calls_new;
	int newpipe[2];
};

static void on_new(struct evloop *loop, int fd, unsigned ev, void *ctx);

/* on_race - whichever end runs first removes and closes the other one */
static void
on_race(struct evloop *loop, int fd, unsigned events, void *ctx)
{
	struct race *r = ctx;
	int *other;

	if (fd == r->a[0]) {
		r->calls_a++;
		other = r->b;
	} else {
		r->calls_b++;
		other = r->a;
	}
	evloop_del_fd(loop, other[0]);
	close(other[0]);
	/* a new pipe most likely reuses the closed number */
	if (pipe(r->newpipe) == 0) {
		T_ASSERT(write(r->newpipe[1], "n", 1) == 1);
		evloop_add_fd(loop, r->newpipe[0], EV_READ, on_new, r);
	}
	other[0] = -1;
	evloop_stop(loop);
}

/* on_new - the fd added in the batch; must not see the stale event */
static void
on_new(struct evloop *loop, int fd, unsigned events, void *ctx)
{
	struct race *r = ctx;

	r->calls_new++;
}

/* test_del_in_batch - an fd removed by another callback gets nothing */
static void
test_del_in_batch(void)
{
	struct evloop *loop = evloop_new();
	struct race r;

	memset(&r, 0, sizeof(r));
	T_ASSERT(pipe(r.a) == 0 && pipe(r.b) == 0);
	T_EQ_INT(write(r.a[1], "x", 1), 1);
	T_EQ_INT(write(r.b[1], "y", 1), 1);
	T_EQ_INT(evloop_add_fd(loop, r.a[0], EV_READ, on_race, &r), 0);
	T_EQ_INT(evloop_add_fd(loop, r.b[0], EV_READ, on_race, &r), 0);
	/* let both become ready before the loop looks */
	T_EQ_INT(run_guarded(loop, 2000), 0);
	T_EQ_INT(r.calls_a + r.calls_b, 1);
	T_EQ_INT(r.calls_new, 0);	/* new fd: not in this batch */
	/* in the next iteration the new fd is served */
	evloop_del_fd(loop, r.a[0] >= 0 ? r.a[0] : r.b[0]);
	T_EQ_INT(run_guarded(loop, 200), -1);	/* guard ends it */
	T_ASSERT(r.calls_new >= 1);
	evloop_del_fd(loop, r.newpipe[0]);
	for (int i = 0; i < 2; i++) {
		if (r.a[i] >= 0)
			close(r.a[i]);
		if (r.b[i] >= 0)
			close(r.b[i]);
		close(r.newpipe[i]);
	}
	evloop_free(&loop);
}

struct wr_ctx {
	int calls;
};

/* on_write - count write readiness */
static void
on_write(struct evloop *loop, int fd, unsigned events, void *ctx)
{
	struct wr_ctx *w = ctx;

	T_ASSERT(events == EV_WRITE);
	if (++w->calls >= 3)
		evloop_mod_fd(loop, fd, 0);
}

/* test_mod - EV_WRITE is level-triggered; mod to 0 silences it */
static void
test_mod(void)
{
	struct evloop *loop = evloop_new();
	struct wr_ctx w = {0};
	int fds[2];

	T_ASSERT(pipe(fds) == 0);
	T_EQ_INT(evloop_add_fd(loop, fds[1], EV_WRITE, on_write, &w), 0);
	T_EQ_INT(run_guarded(loop, 100), -1);
	T_EQ_INT(w.calls, 3);
	/* a hung-up fd watched for nothing does not spin the loop */
	close(fds[0]);
	T_EQ_INT(run_guarded(loop, 50), -1);
	T_EQ_INT(w.calls, 3);
	T_EQ_INT(evloop_mod_fd(loop, fds[1], EV_WRITE), 0);
	T_EQ_INT(run_guarded(loop, 50), -1);
	T_EQ_INT(w.calls, 4);
	evloop_del_fd(loop, fds[1]);
	close(fds[1]);
	evloop_free(&loop);
}

#define NTIMERS 300

struct tstate {
	long long due[NTIMERS];	/* absolute, -1: cancelled */
	int fired[NTIMERS];
	int order[NTIMERS];
	int nfired;
	int late;		/* fired before its due time */
	struct ev_timer *t[NTIMERS];
	int left;
};

static struct tstate tst;

/* on_timer - record the firing order */
static long long
on_timer(struct evloop *loop, void *ctx)
{
	int i = (int)(intptr_t)ctx;

	if (evloop_now_ms(loop) < tst.due[i])
		tst.late++;
	tst.fired[i]++;
	tst.order[tst.nfired++] = i;
	tst.t[i] = NULL;
	if (--tst.left == 0)
		evloop_stop(loop);
	return -1;
}

/* test_timer_order - a few hundred random timers, some reset or
 * cancelled, fire in due order and never early */
static void
test_timer_order(void)
{
	struct evloop *loop = evloop_new();
	unsigned seed = (unsigned)time(NULL);
	int cancelled = 0;

	memset(&tst, 0, sizeof(tst));
	for (int i = 0; i < NTIMERS; i++) {
		long long ms = rand_r(&seed) % 200, before;

		/* due[] holds absolute due times; the clock is read afresh
		 * outside evloop_run, so redo it if it ticked meanwhile */
		do {
			evloop_cancel_timer(loop, &tst.t[i]);
			before = evloop_now_ms(loop);
			tst.t[i] = evloop_add_timer(loop, ms, on_timer,
			    (void *)(intptr_t)i);
		} while (evloop_now_ms(loop) != before);
		tst.due[i] = before + ms;
	}
	tst.left = NTIMERS;
	for (int i = 0; i < NTIMERS; i++) {
		switch (rand_r(&seed) % 3) {
		case 0:
			evloop_cancel_timer(loop, &tst.t[i]);
			T_ASSERT(tst.t[i] == NULL);
			tst.due[i] = -1;
			cancelled++;
			tst.left--;
			break;
		case 1: {
			long long ms = rand_r(&seed) % 250, before;

			do {
				before = evloop_now_ms(loop);
				evloop_timer_reset(loop, tst.t[i], ms);
			} while (evloop_now_ms(loop) != before);
			tst.due[i] = before + ms;
			break;
		}
		}
	}
	evloop_cancel_timer(loop, &tst.t[0]);	/* NULL or pending: both ok */
	if (tst.due[0] >= 0) {
		tst.due[0] = -1;
		tst.left--;
	}
	T_EQ_INT(run_guarded(loop, 3000), 0);
	T_EQ_INT(tst.late, 0);
	for (int i = 0; i < NTIMERS; i++)
		T_EQ_INT(tst.fired[i], tst.due[i] >= 0 ? 1 : 0);
	for (int k = 1; k < tst.nfired; k++)
		T_ASSERT(tst.due[tst.order[k - 1]] <= tst.due[tst.order[k]]);
	T_ASSERT(cancelled > 0);
	evloop_free(&loop);
}

struct rep {
	int calls;
	long long times[8];
	struct ev_timer *self;
	struct ev_timer *victim;
	int victim_calls;
	int self_cleared;
};

/* on_repeat - fire 4 times 10 ms apart, then end */
static long long
on_repeat(struct evloop *loop, void *ctx)
{
	struct rep *r = ctx;

	r->times[r->calls++] = evloop_now_ms(loop);
	if (r->calls == 4) {
		evloop_stop(loop);
		return -1;
	}
	return 10;
}

/* on_victim - must never run */
static long long
on_victim(struct evloop *loop, void *ctx)
{
	struct rep *r = ctx;

	r->victim_calls++;
	return -1;
}

/* on_killer - cancels another timer and itself */
static long long
on_killer(struct evloop *loop, void *ctx)
{
	struct rep *r = ctx;

	r->calls++;
	evloop_cancel_timer(loop, &r->victim);
	evloop_timer_reset(loop, r->self, 5);	/* no-op while running */
	evloop_cancel_timer(loop, &r->self);
	r->self_cleared = r->self == NULL;
	return 10;		/* ignored: it was cancelled */
}

/* test_timer_repeat - return value reschedules; cancel inside callbacks */
static void
test_timer_repeat(void)
{
	struct evloop *loop = evloop_new();
	struct rep r;

	memset(&r, 0, sizeof(r));
	evloop_add_timer(loop, 10, on_repeat, &r);
	T_EQ_INT(run_guarded(loop, 2000), 0);
	T_EQ_INT(r.calls, 4);
	for (int i = 1; i < 4; i++)
		T_ASSERT(r.times[i] - r.times[i - 1] >= 10);

	memset(&r, 0, sizeof(r));
	r.self = evloop_add_timer(loop, 5, on_killer, &r);
	r.victim = evloop_add_timer(loop, 30, on_victim, &r);
	T_EQ_INT(run_guarded(loop, 100), -1);
	T_EQ_INT(r.calls, 1);
	T_EQ_INT(r.victim_calls, 0);
	T_ASSERT(r.victim == NULL);
	T_EQ_INT(r.self_cleared, 1);
	evloop_free(&loop);
}

static int sig_got;

/* on_signal - note the signal and stop */
static void
on_signal(struct evloop *loop, int signo, void *ctx)
{
	sig_got = signo;
	evloop_stop(loop);
}

/* test_signal - raise(SIGUSR1) reaches the loop through signalfd */
static void
test_signal(void)
{
	struct evloop *loop = evloop_new();

	sig_got = 0;
	T_EQ_INT(evloop_add_signal(loop, SIGUSR1, on_signal, NULL), 0);
	T_EQ_INT(evloop_add_signal(loop, SIGUSR2, on_signal, NULL), 0);
	T_EQ_INT(raise(SIGUSR1), 0);
	T_EQ_INT(run_guarded(loop, 2000), 0);
	T_EQ_INT(sig_got, SIGUSR1);
	sig_got = 0;
	T_EQ_INT(kill(getpid(), SIGUSR2), 0);
	T_EQ_INT(run_guarded(loop, 2000), 0);
	T_EQ_INT(sig_got, SIGUSR2);
	T_EQ_INT(evloop_add_signal(loop, 0, on_signal, NULL), -1);
	evloop_free(&loop);
}

struct dstate {
	char log[32];
	int n;
	int fds1[2], fds2[2];
};

static struct dstate ds;

/* dlog - append one mark */
static void
dlog(char c)
{
	if (ds.n < (int)sizeof(ds.log) - 1)
		ds.log[ds.n++] = c;
}

static void
def_c(struct evloop *loop, void *ctx)
{
	dlog('C');
	evloop_stop(loop);
}

static void
def_a(struct evloop *loop, void *ctx)
{
	dlog('A');
	evloop_defer(loop, def_c, NULL);
}

static void
def_b(struct evloop *loop, void *ctx)
{
	dlog('B');
}

/* on_defer_fd - both fds are ready; the first defers A and B */
static void
on_defer_fd(struct evloop *loop, int fd, unsigned events, void *ctx)
{
	char c;

	T_ASSERT(read(fd, &c, 1) == 1);
	dlog('f');
	if (ds.n == 1) {
		evloop_defer(loop, def_a, NULL);
		evloop_defer(loop, def_b, NULL);
	}
}

/* test_defer - deferred calls run after the whole fd batch, in order */
static void
test_defer(void)
{
	struct evloop *loop = evloop_new();

	memset(&ds, 0, sizeof(ds));
	T_ASSERT(pipe(ds.fds1) == 0 && pipe(ds.fds2) == 0);
	T_EQ_INT(write(ds.fds1[1], "1", 1), 1);
	T_EQ_INT(write(ds.fds2[1], "2", 1), 1);
	evloop_add_fd(loop, ds.fds1[0], EV_READ, on_defer_fd, NULL);
	evloop_add_fd(loop, ds.fds2[0], EV_READ, on_defer_fd, NULL);
	T_EQ_INT(run_guarded(loop, 2000), 0);
	T_EQ_STR(ds.log, "ffABC");
	for (int i = 0; i < 2; i++) {
		evloop_del_fd(loop, ds.fds1[0]);
		evloop_del_fd(loop, ds.fds2[0]);
		close(ds.fds1[i]);
		close(ds.fds2[i]);
	}
	evloop_free(&loop);
}

/* def_forever - always defers itself; must not hang one iteration */
static void
def_forever(struct evloop *loop, void *ctx)
{
	int *n = ctx;

	if (++*n < 1000)
		evloop_defer(loop, def_forever, ctx);
	else
		evloop_stop(loop);
}

/* test_defer_chain - self-deferring calls keep the loop turning */
static void
test_defer_chain(void)
{
	struct evloop *loop = evloop_new();
	int n = 0;

	evloop_defer(loop, def_forever, &n);
	T_EQ_INT(run_guarded(loop, 2000), 0);
	T_EQ_INT(n, 1000);
	evloop_free(&loop);
}

struct wk {
	struct ev_wakeup *w;
	int calls;
	pthread_t tid;
};

/* wk_thread - poke the loop from another thread */
static void *
wk_thread(void *arg)
{
	struct wk *k = arg;
	struct timespec ts = {0, 20 * 1000 * 1000};

	nanosleep(&ts, NULL);
	evloop_wakeup(k->w);
	return NULL;
}

/* on_wakeup - runs in the loop thread */
static void
on_wakeup(struct evloop *loop, void *ctx)
{
	struct wk *k = ctx;

	k->calls++;
	evloop_stop(loop);
}

/* test_wakeup - evloop_wakeup from a pthread runs fn in the loop */
static void
test_wakeup(void)
{
	struct evloop *loop = evloop_new();
	struct wk k;
	int rc;

	memset(&k, 0, sizeof(k));
	k.w = evloop_wakeup_new(loop, on_wakeup, &k);
	T_EQ_INT(pthread_create(&k.tid, NULL, wk_thread, &k), 0);
	rc = run_guarded(loop, 2000);
	pthread_join(k.tid, NULL);
	T_EQ_INT(rc, 0);
	T_EQ_INT(k.calls, 1);
	/* several pokes before the loop looks: at least one call */
	evloop_wakeup(k.w);
	evloop_wakeup(k.w);
	T_EQ_INT(run_guarded(loop, 2000), 0);
	T_EQ_INT(k.calls, 2);
	evloop_wakeup_free(loop, &k.w);
	T_ASSERT(k.w == NULL);
	/* a wakeup not freed by its owner goes with the loop */
	k.w = evloop_wakeup_new(loop, on_wakeup, &k);
	evloop_free(&loop);
}

/* test_now - monotonic, and cached within an iteration */
static void
test_now(void)
{
	struct evloop *loop = evloop_new();
	long long a = evloop_now_ms(loop), b;
	struct timespec ts = {0, 5 * 1000 * 1000};

	nanosleep(&ts, NULL);
	b = evloop_now_ms(loop);
	T_ASSERT(b >= a + 5);
	evloop_stop(loop);
	T_EQ_INT(evloop_run(loop), 0);	/* stop before run: returns */
	evloop_free(&loop);
	evloop_free(&loop);		/* NULL: no-op */
}

static const struct test_case cases[] = {
	{"pipe readiness", test_pipe},
	{"removal in the same batch", test_del_in_batch},
	{"mod_fd and level triggering", test_mod},
	{"timer order, reset, cancel", test_timer_order},
	{"repeating and self-cancelling timers", test_timer_repeat},
	{"signals", test_signal},
	{"defer", test_defer},
	{"defer chain", test_defer_chain},
	{"wakeup from a thread", test_wakeup},
	{"now", test_now},
	{0},
};

int
main(void)
{
	return test_run(cases);
}
