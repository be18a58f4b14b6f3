/*
 * evloop - a small epoll event loop: fds, timers in a binary min-heap,
 * signals through signalfd, deferred calls and cross-thread wakeups.
 *
 * One iteration: wait for fds (up to the nearest timer), dispatch every
 * ready fd, fire the due timers, then run the deferred calls. An fd's
 * table slot carries a generation number that is also stored in the epoll
 * event, so an fd removed (or removed and re-added) by an earlier callback
 * of the same batch gets no stale callback.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "base/evloop.h"
#include "base/log.h"
#include "base/mem.h"

#define EV_BATCH 256
#define EV_DEFER_ROUNDS 16

/* one watched file descriptor */
struct ev_fd {
	ev_io_fn *fn;
	void *ctx;
	unsigned events;	/* EV_READ | EV_WRITE wanted */
	uint32_t gen;		/* bumped on every add and delete */
	bool active;		/* registered with the loop */
	bool in_epoll;		/* registered with the kernel (events != 0) */
};

struct ev_timer {
	long long when;		/* monotonic ms when due */
	unsigned long long seq;	/* tie-break: first set, first fired */
	size_t idx;		/* heap index, EV_NOT_QUEUED when not queued */
	ev_timer_fn *fn;
	void *ctx;
	bool cancelled;		/* cancelled from its own callback */
};

#define EV_NOT_QUEUED ((size_t)-1)

struct ev_defer {
	void (*fn)(struct evloop *, void *);
	void *ctx;
};

struct ev_wakeup {
	struct evloop *loop;
	int fd;			/* eventfd */
	void (*fn)(struct evloop *, void *);
	void *ctx;
	struct ev_wakeup *next;	/* loop's list, freed with the loop */
};

struct ev_signal {
	ev_signal_fn *fn;
	void *ctx;
};

struct evloop {
	int epfd;
	struct ev_fd *fds;	/* indexed by fd */
	size_t nfds;
	struct ev_timer **heap;
	size_t nheap, heapcap;
	unsigned long long timer_seq;
	struct ev_timer *running;	/* timer whose callback runs */
	struct ev_defer *defer;
	size_t ndefer, defercap;
	struct ev_wakeup *wakeups;
	int sigfd;
	sigset_t sigmask;
	struct ev_signal sigs[_NSIG];
	long long now;
	bool in_run;
	bool stop;
};

/* evloop_clock - CLOCK_MONOTONIC in ms, read now */
long long
evloop_clock(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
		msg_panic("clock_gettime(CLOCK_MONOTONIC): %m");
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* evloop_new - create a loop; fatal if epoll is unavailable */
struct evloop *
evloop_new(void)
{
	struct evloop *loop = xcalloc(1, sizeof(*loop));

	if ((loop->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
		msg_fatal("epoll_create1: %m");
	loop->sigfd = -1;
	sigemptyset(&loop->sigmask);
	loop->now = evloop_clock();
	return loop;
}

/* evloop_free - destroy the loop, its timers and wakeups */
void
evloop_free(struct evloop **loopp)
{
	struct evloop *loop = *loopp;
	struct ev_wakeup *w, *next;

	if (loop == NULL)
		return;
	for (size_t i = 0; i < loop->nheap; i++)
		free(loop->heap[i]);
	for (w = loop->wakeups; w != NULL; w = next) {
		next = w->next;
		(void)close(w->fd);
		free(w);
	}
	if (loop->sigfd >= 0)
		(void)close(loop->sigfd);
	(void)close(loop->epfd);
	free(loop->heap);
	free(loop->defer);
	free(loop->fds);
	x_free(loopp);
}

/* evloop_epoll_events - EV_* to EPOLL* */
static uint32_t
evloop_epoll_events(unsigned events)
{
	uint32_t e = 0;

	if (events & EV_READ)
		e |= EPOLLIN | EPOLLRDHUP;
	if (events & EV_WRITE)
		e |= EPOLLOUT;
	return e;
}

/* evloop_sync - make the kernel's view of fd match the table */
static int
evloop_sync(struct evloop *loop, int fd)
{
	struct ev_fd *f = &loop->fds[fd];
	struct epoll_event ev;
	int op;

	memset(&ev, 0, sizeof(ev));
	ev.events = evloop_epoll_events(f->events);
	ev.data.u64 = (uint64_t)(uint32_t)fd | ((uint64_t)f->gen << 32);
	/*
	 * An fd watched for nothing leaves epoll: otherwise a hung-up fd
	 * would report EPOLLHUP forever to an owner that does not listen.
	 */
	if (f->events == 0) {
		if (!f->in_epoll)
			return 0;
		op = EPOLL_CTL_DEL;
	} else {
		op = f->in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	}
	if (epoll_ctl(loop->epfd, op, fd, &ev) < 0)
		return -1;
	f->in_epoll = op != EPOLL_CTL_DEL;
	return 0;
}

/* evloop_add_fd - watch fd for events; -1 on error (errno set) */
int
evloop_add_fd(struct evloop *loop, int fd, unsigned events, ev_io_fn *fn,
    void *ctx)
{
	struct ev_fd *f;

	if (fd < 0 || fn == NULL) {
		errno = EINVAL;
		return -1;
	}
	if ((size_t)fd >= loop->nfds) {
		size_t n = loop->nfds ? loop->nfds : 64;

		while (n <= (size_t)fd)
			n *= 2;
		loop->fds = xreallocarray(loop->fds, n, sizeof(*loop->fds));
		memset(loop->fds + loop->nfds, 0,
		    (n - loop->nfds) * sizeof(*loop->fds));
		loop->nfds = n;
	}
	f = &loop->fds[fd];
	if (f->active) {
		errno = EEXIST;
		return -1;
	}
	f->fn = fn;
	f->ctx = ctx;
	f->events = events & (EV_READ | EV_WRITE);
	f->gen++;
	f->in_epoll = false;
	if (evloop_sync(loop, fd) < 0)
		return -1;
	f->active = true;
	return 0;
}

/* evloop_mod_fd - change the events watched for fd */
int
evloop_mod_fd(struct evloop *loop, int fd, unsigned events)
{
	struct ev_fd *f;
	unsigned old;

	if (fd < 0 || (size_t)fd >= loop->nfds || !loop->fds[fd].active) {
		errno = ENOENT;
		return -1;
	}
	f = &loop->fds[fd];
	old = f->events;
	f->events = events & (EV_READ | EV_WRITE);
	if (f->events == old)
		return 0;
	if (evloop_sync(loop, fd) < 0) {
		f->events = old;
		return -1;
	}
	return 0;
}

/* evloop_del_fd - stop watching fd (call before close) */
void
evloop_del_fd(struct evloop *loop, int fd)
{
	struct ev_fd *f;

	if (fd < 0 || (size_t)fd >= loop->nfds || !loop->fds[fd].active)
		return;
	f = &loop->fds[fd];
	if (f->in_epoll && epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL) < 0)
		msg_warn("epoll_ctl(DEL, %d): %m", fd);
	f->in_epoll = false;
	f->active = false;
	f->gen++;		/* events already fetched for fd are stale */
	f->fn = NULL;
	f->ctx = NULL;
	f->events = 0;
}

/* evloop_timer_less - heap order: due time, then creation order */
static bool
evloop_timer_less(const struct ev_timer *a, const struct ev_timer *b)
{
	return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

/* evloop_heap_set - put t at heap index i */
static void
evloop_heap_set(struct evloop *loop, size_t i, struct ev_timer *t)
{
	loop->heap[i] = t;
	t->idx = i;
}

/* evloop_heap_up - move the timer at i towards the root */
static void
evloop_heap_up(struct evloop *loop, size_t i)
{
	struct ev_timer *t = loop->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (!evloop_timer_less(t, loop->heap[parent]))
			break;
		evloop_heap_set(loop, i, loop->heap[parent]);
		i = parent;
	}
	evloop_heap_set(loop, i, t);
}

/* evloop_heap_down - move the timer at i towards the leaves */
static void
evloop_heap_down(struct evloop *loop, size_t i)
{
	struct ev_timer *t = loop->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= loop->nheap)
			break;
		if (c + 1 < loop->nheap &&
		    evloop_timer_less(loop->heap[c + 1], loop->heap[c]))
			c++;
		if (!evloop_timer_less(loop->heap[c], t))
			break;
		evloop_heap_set(loop, i, loop->heap[c]);
		i = c;
	}
	evloop_heap_set(loop, i, t);
}

/* evloop_heap_push - queue t */
static void
evloop_heap_push(struct evloop *loop, struct ev_timer *t)
{
	if (loop->nheap == loop->heapcap) {
		loop->heapcap = loop->heapcap ? loop->heapcap * 2 : 64;
		loop->heap = xreallocarray(loop->heap, loop->heapcap,
		    sizeof(*loop->heap));
	}
	evloop_heap_set(loop, loop->nheap++, t);
	evloop_heap_up(loop, t->idx);
}

/* evloop_heap_remove - unqueue t */
static void
evloop_heap_remove(struct evloop *loop, struct ev_timer *t)
{
	size_t i = t->idx;
	struct ev_timer *last;

	if (i == EV_NOT_QUEUED || i >= loop->nheap || loop->heap[i] != t)
		msg_panic("evloop: timer %p is not queued", (void *)t);
	last = loop->heap[--loop->nheap];
	t->idx = EV_NOT_QUEUED;
	if (last == t)
		return;
	evloop_heap_set(loop, i, last);
	evloop_heap_up(loop, i);
	evloop_heap_down(loop, last->idx);
}

/* evloop_when - now + ms, saturating, negative delays mean now */
static long long
evloop_when(struct evloop *loop, long long ms)
{
	long long now = evloop_now_ms(loop);

	if (ms < 0)
		ms = 0;
	return ms > LLONG_MAX - now ? LLONG_MAX : now + ms;
}

/* evloop_add_timer - call fn after ms milliseconds */
struct ev_timer *
evloop_add_timer(struct evloop *loop, long long ms, ev_timer_fn *fn,
    void *ctx)
{
	struct ev_timer *t = xcalloc(1, sizeof(*t));

	t->fn = fn;
	t->ctx = ctx;
	t->when = evloop_when(loop, ms);
	t->seq = loop->timer_seq++;
	t->idx = EV_NOT_QUEUED;
	evloop_heap_push(loop, t);
	return t;
}

/* evloop_timer_reset - move a pending timer to ms from now. For the timer
 * whose callback is running, the callback's return value decides. */
void
evloop_timer_reset(struct evloop *loop, struct ev_timer *t, long long ms)
{
	if (t == NULL)
		msg_panic("evloop_timer_reset: NULL timer");
	if (t == loop->running)
		return;
	t->when = evloop_when(loop, ms);
	t->seq = loop->timer_seq++;
	if (t->idx == EV_NOT_QUEUED)
		msg_panic("evloop_timer_reset: timer %p is not queued",
		    (void *)t);
	evloop_heap_up(loop, t->idx);
	evloop_heap_down(loop, t->idx);
}

/* evloop_cancel_timer - cancel and free *t if non-NULL; sets *t = NULL */
void
evloop_cancel_timer(struct evloop *loop, struct ev_timer **tp)
{
	struct ev_timer *t = *tp;

	if (t == NULL)
		return;
	*tp = NULL;
	if (t == loop->running) {
		t->cancelled = true;	/* freed when its callback returns */
		return;
	}
	evloop_heap_remove(loop, t);
	free(t);
}

/* evloop_run_timers - fire every timer that was due when we started */
static void
evloop_run_timers(struct evloop *loop)
{
	unsigned long long first_new = loop->timer_seq;
	long long next;

	while (loop->nheap > 0) {
		struct ev_timer *t = loop->heap[0];

		/*
		 * Timers (re)set by callbacks in this round wait for the next
		 * iteration, so a timer returning 0 cannot starve the fds.
		 */
		if (t->when > loop->now || t->seq >= first_new)
			break;
		evloop_heap_remove(loop, t);
		loop->running = t;
		next = t->fn(loop, t->ctx);
		loop->running = NULL;
		if (t->cancelled || next < 0) {
			free(t);
			continue;
		}
		t->when = evloop_when(loop, next);
		t->seq = loop->timer_seq++;
		evloop_heap_push(loop, t);
	}
}

/* evloop_defer - run fn once at the end of the current iteration */
void
evloop_defer(struct evloop *loop, void (*fn)(struct evloop *, void *),
    void *ctx)
{
	if (loop->ndefer == loop->defercap) {
		loop->defercap = loop->defercap ? loop->defercap * 2 : 16;
		loop->defer = xreallocarray(loop->defer, loop->defercap,
		    sizeof(*loop->defer));
	}
	loop->defer[loop->ndefer].fn = fn;
	loop->defer[loop->ndefer].ctx = ctx;
	loop->ndefer++;
}

/* evloop_run_deferred - run deferred calls in order; calls deferred by
 * them run in a further round, a bounded number of rounds per iteration */
static void
evloop_run_deferred(struct evloop *loop)
{
	for (int round = 0; round < EV_DEFER_ROUNDS && loop->ndefer > 0;
	    round++) {
		struct ev_defer *list = loop->defer;
		size_t n = loop->ndefer;

		loop->defer = NULL;
		loop->ndefer = loop->defercap = 0;
		for (size_t i = 0; i < n; i++)
			list[i].fn(loop, list[i].ctx);
		free(list);
	}
}

/* evloop_signal_read - dispatch every signal queued on the signalfd */
static void
evloop_signal_read(struct evloop *loop, int fd, unsigned events, void *ctx)
{
	struct signalfd_siginfo si[16];
	ssize_t n;

	for (;;) {
		n = read(fd, si, sizeof(si));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			if (errno != EAGAIN)
				msg_warn("read signalfd: %m");
			return;
		}
		if (n == 0 || n % (ssize_t)sizeof(si[0]) != 0) {
			msg_warn("read signalfd: short read");
			return;
		}
		for (size_t i = 0; i < (size_t)n / sizeof(si[0]); i++) {
			int signo = (int)si[i].ssi_signo;

			if (signo > 0 && signo < _NSIG &&
			    loop->sigs[signo].fn != NULL)
				loop->sigs[signo].fn(loop, signo,
				    loop->sigs[signo].ctx);
		}
	}
}

/* evloop_add_signal - handle signo in the loop (blocks it) */
int
evloop_add_signal(struct evloop *loop, int signo, ev_signal_fn *fn,
    void *ctx)
{
	sigset_t one, mask;
	int fd, err;

	if (signo <= 0 || signo >= _NSIG || fn == NULL) {
		errno = EINVAL;
		return -1;
	}
	mask = loop->sigmask;
	if (sigaddset(&mask, signo) < 0)
		return -1;
	sigemptyset(&one);
	sigaddset(&one, signo);
	if ((err = pthread_sigmask(SIG_BLOCK, &one, NULL)) != 0) {
		errno = err;
		return -1;
	}
	fd = signalfd(loop->sigfd, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -1;
	if (loop->sigfd < 0) {
		if (evloop_add_fd(loop, fd, EV_READ, evloop_signal_read,
		    NULL) < 0) {
			err = errno;
			(void)close(fd);
			errno = err;
			return -1;
		}
		loop->sigfd = fd;
	}
	loop->sigmask = mask;
	loop->sigs[signo].fn = fn;
	loop->sigs[signo].ctx = ctx;
	return 0;
}

/* evloop_wakeup_read - drain a wakeup's eventfd and run its callback */
static void
evloop_wakeup_read(struct evloop *loop, int fd, unsigned events, void *ctx)
{
	struct ev_wakeup *w = ctx;
	uint64_t count;

	if (read(fd, &count, sizeof(count)) != (ssize_t)sizeof(count)) {
		if (errno != EAGAIN && errno != EINTR)
			msg_warn("read eventfd: %m");
		return;
	}
	w->fn(loop, w->ctx);
}

/* evloop_wakeup_new - a handle another thread may poke; fn runs in loop */
struct ev_wakeup *
evloop_wakeup_new(struct evloop *loop, void (*fn)(struct evloop *, void *),
    void *ctx)
{
	struct ev_wakeup *w = xcalloc(1, sizeof(*w));

	w->loop = loop;
	w->fn = fn;
	w->ctx = ctx;
	if ((w->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
		msg_fatal("eventfd: %m");
	if (evloop_add_fd(loop, w->fd, EV_READ, evloop_wakeup_read, w) < 0)
		msg_fatal("evloop: watch eventfd: %m");
	w->next = loop->wakeups;
	loop->wakeups = w;
	return w;
}

/* evloop_wakeup - poke from any thread (async-signal-safe) */
void
evloop_wakeup(struct ev_wakeup *w)
{
	uint64_t one = 1;
	int saved_errno = errno;

	/* EAGAIN means the counter is huge: a wakeup is pending anyway */
	while (write(w->fd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
	errno = saved_errno;
}

/* evloop_wakeup_free - stop watching and free *w */
void
evloop_wakeup_free(struct evloop *loop, struct ev_wakeup **wp)
{
	struct ev_wakeup *w = *wp, **pp;

	if (w == NULL)
		return;
	for (pp = &loop->wakeups; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	}
	evloop_del_fd(loop, w->fd);
	(void)close(w->fd);
	x_free(wp);
}

/* evloop_timeout - epoll timeout in ms: nearest timer, 0 if work waits */
static int
evloop_timeout(struct evloop *loop)
{
	long long d;

	if (loop->ndefer > 0 || loop->stop)
		return 0;
	if (loop->nheap == 0)
		return -1;
	d = loop->heap[0]->when - loop->now;
	if (d <= 0)
		return 0;
	return d > INT_MAX ? INT_MAX : (int)d;
}

/* evloop_dispatch - call the owner of each ready fd, skipping stale ones */
static void
evloop_dispatch(struct evloop *loop, struct epoll_event *evs, int n)
{
	for (int i = 0; i < n; i++) {
		int fd = (int)(uint32_t)evs[i].data.u64;
		uint32_t gen = (uint32_t)(evs[i].data.u64 >> 32);
		uint32_t e = evs[i].events;
		unsigned ready = 0;
		struct ev_fd *f;

		if (fd < 0 || (size_t)fd >= loop->nfds)
			continue;
		f = &loop->fds[fd];
		if (!f->active || f->gen != gen)
			continue;	/* removed by an earlier callback */
		if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
			ready |= EV_READ;
		if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR))
			ready |= EV_WRITE;
		ready &= f->events;
		if (ready != 0)
			f->fn(loop, fd, ready, f->ctx);
	}
}

/* evloop_run - dispatch until evloop_stop; 0, or -1 on epoll failure */
int
evloop_run(struct evloop *loop)
{
	struct epoll_event evs[EV_BATCH];
	int n;

	loop->in_run = true;
	while (!loop->stop) {
		loop->now = evloop_clock();
		n = epoll_wait(loop->epfd, evs, EV_BATCH, evloop_timeout(loop));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			msg_warn("epoll_wait: %m");
			loop->in_run = false;
			return -1;
		}
		loop->now = evloop_clock();
		evloop_dispatch(loop, evs, n);
		evloop_run_timers(loop);
		evloop_run_deferred(loop);
	}
	loop->stop = false;
	loop->in_run = false;
	return 0;
}

/* evloop_stop - make evloop_run return after the current iteration */
void
evloop_stop(struct evloop *loop)
{
	loop->stop = true;
}

/* evloop_now_ms - monotonic time in ms, cached per iteration */
long long
evloop_now_ms(struct evloop *loop)
{
	if (!loop->in_run)
		loop->now = evloop_clock();
	return loop->now;
}
