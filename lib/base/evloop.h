/*
 * evloop - a small epoll event loop: file descriptors, timers, signals.
 *
 * One loop per process, single-threaded. Callbacks run from evloop_run()
 * and may add or remove any fd or timer, including their own.
 *
 * fds: level-triggered; events are EV_READ | EV_WRITE. A removed fd gets no
 * further callbacks, even if it was ready in the same epoll batch.
 * timers: one-shot or repeating; the callback returns the next delay in
 * milliseconds, or -1 to end (the timer is then freed by the loop). Timers
 * live in a binary heap, so tens of thousands of session deadlines cost
 * O(log n) each to set, move or cancel.
 * signals: delivered through signalfd; the loop blocks the signal.
 * Wakeups from other threads: evloop_wakeup_new() gives an eventfd-backed
 * handle whose callback runs in the loop thread.
 */
#ifndef BASE_EVLOOP_H
#define BASE_EVLOOP_H

#include <stdint.h>

struct evloop;
struct ev_timer;

#define EV_READ 0x1
#define EV_WRITE 0x2

typedef void ev_io_fn(struct evloop *loop, int fd, unsigned events, void *ctx);
/* returns the next delay in ms, or -1 to stop and free the timer */
typedef long long ev_timer_fn(struct evloop *loop, void *ctx);
typedef void ev_signal_fn(struct evloop *loop, int signo, void *ctx);

/* evloop_new - create a loop; fatal if epoll is unavailable */
struct evloop *evloop_new(void);
/* evloop_free - destroy the loop and its timers (fds are not closed) */
void evloop_free(struct evloop **loop);

/* evloop_add_fd - watch fd for events; -1 on error (errno set) */
int evloop_add_fd(struct evloop *loop, int fd, unsigned events, ev_io_fn *fn,
    void *ctx);
/* evloop_mod_fd - change the events watched for fd */
int evloop_mod_fd(struct evloop *loop, int fd, unsigned events);
/* evloop_del_fd - stop watching fd (call before close) */
void evloop_del_fd(struct evloop *loop, int fd);

/* evloop_add_timer - call fn after ms milliseconds */
struct ev_timer *evloop_add_timer(struct evloop *loop, long long ms,
    ev_timer_fn *fn, void *ctx);
/* evloop_timer_reset - move a pending timer to ms from now; inside the
 * timer's own callback it does nothing (the return value decides) */
void evloop_timer_reset(struct evloop *loop, struct ev_timer *t, long long ms);
/* evloop_cancel_timer - cancel and free *t if non-NULL; sets *t = NULL.
 * Safe inside the timer's own callback (freed when it returns). */
void evloop_cancel_timer(struct evloop *loop, struct ev_timer **t);

/* evloop_add_signal - handle signo in the loop (blocks it in the calling
 * thread; threads and children created later inherit the block: a child
 * that execs should unblock with sigprocmask) */
int evloop_add_signal(struct evloop *loop, int signo, ev_signal_fn *fn,
    void *ctx);

/* evloop_defer - run fn once at the end of the current iteration, after
 * all ready fds and due timers were handled (used for group commit of
 * fsyncs); in order; calls deferred by a deferred call run in a later
 * round of the same iteration (bounded) or the next iteration */
void evloop_defer(struct evloop *loop, void (*fn)(struct evloop *, void *),
    void *ctx);

struct ev_wakeup;
/* evloop_wakeup_new - a handle another thread may poke; fn runs in loop */
struct ev_wakeup *evloop_wakeup_new(struct evloop *loop,
    void (*fn)(struct evloop *, void *), void *ctx);
/* evloop_wakeup - poke from any thread (async-signal-safe) */
void evloop_wakeup(struct ev_wakeup *w);
/* evloop_wakeup_free - stop and free *w (evloop_free frees the rest) */
void evloop_wakeup_free(struct evloop *loop, struct ev_wakeup **w);

/* evloop_run - dispatch until evloop_stop; 0, or -1 on epoll failure */
int evloop_run(struct evloop *loop);
/* evloop_stop - make evloop_run return after the current iteration */
void evloop_stop(struct evloop *loop);
/* evloop_clock - monotonic time in ms, read now (no loop needed) */
long long evloop_clock(void);
/* evloop_now_ms - monotonic time in ms, cached per iteration */
long long evloop_now_ms(struct evloop *loop);

#endif
