/*
 * session_test - unit tests for the shared session base: input reaches
 * the protocol, a closed session is freed at the outermost leave (its end
 * callback first), a held one only once it is no longer held, and output
 * backlog pauses input until the client has read, and the end shared by
 * pop3d and imapd: the error count, the last command for the log, and
 * finish (the last reply flushed, nothing after it, the first reason
 * kept).
 *
 * Each test runs a session on one end of a socketpair in its own loop,
 * bounded by a deadline timer; the test plays the client on the other.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/evloop.h"
#include "base/mem.h"
#include "base/stream.h"
#include "base/test.h"
#include "mail/session.h"

/* a protocol session for the tests */
struct t_session {
	struct session base;
	int inputs;		/* lines seen */
	int drained;		/* ops->drained calls */
	bool hold;		/* ops->held answer */
};
SESSION_BASE_FIRST(struct t_session);

static int t_ended;		/* ops->end calls */
static bool t_expired;

static void t_reply(struct session *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

/* t_reply - a reply through the session base, as a protocol sends one */
static void
t_reply(struct session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	session_vreply(s, fmt, ap);
	va_end(ap);
}

/* t_input - answer each line with "ok <line>" and stop the loop */
static void
t_input(struct session *base)
{
	struct t_session *s = (struct t_session *)base;
	const char *line;
	size_t len;
	bool crlf;

	while (stream_get_line(base->stream, &line, &len, &crlf) == 1) {
		s->inputs++;
		t_reply(base, "ok %.*s", (int)len, line);
	}
	evloop_stop(base->pool->loop);
}

static void
t_drained(struct session *base)
{
	((struct t_session *)base)->drained++;
	evloop_stop(base->pool->loop);
}

static bool
t_held(const struct session *base)
{
	return ((const struct t_session *)base)->hold;
}

static void
t_end(struct session *base)
{
	t_ended++;
	/* the stream and the peer are still there for the log line */
	T_ASSERT(base->stream != NULL);
	evloop_stop(base->pool->loop);
}

static const struct session_ops t_ops = {
	.input = t_input,
	.drained = t_drained,
	.held = t_held,
	.end = t_end,
};

static long long
t_deadline(struct evloop *loop, void *ctx)
{
	t_expired = true;
	evloop_stop(loop);
	return -1;
}

/* t_run - the loop until stopped; false if 5 s passed */
static bool
t_run(struct evloop *loop)
{
	struct ev_timer *t = evloop_add_timer(loop, 5000, t_deadline, NULL);

	t_expired = false;
	(void)evloop_run(loop);
	if (!t_expired)
		evloop_cancel_timer(loop, &t);
	return !t_expired;
}

static long long
t_tick(struct evloop *loop, void *ctx)
{
	*(struct ev_timer **)ctx = NULL;	/* fired: gone */
	evloop_stop(loop);
	return -1;
}

/* t_spin - let the loop work for ms (or until a callback stops it) */
static void
t_spin(struct evloop *loop, long long ms)
{
	struct ev_timer *t = NULL;

	t = evloop_add_timer(loop, ms, t_tick, &t);
	(void)evloop_run(loop);
	if (t != NULL)
		evloop_cancel_timer(loop, &t);
}

/* t_start - a pool on a new loop and a session *sr on sp[0] */
static void
t_start(struct session_pool *p, int sp[2], size_t max_input,
    struct t_session **sr)
{
	struct stream_limits lim = {256, max_input, 0, 0};
	struct t_session *s;

	T_ASSERT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0);
	session_pool_init(p, NULL, evloop_new());
	s = xcalloc(1, sizeof(*s));
	session_open(p, &s->base, &t_ops, sp[0], &lim);
	T_EQ_INT(s->base.depth, 1);
	T_EQ_INT(p->n, 1);
	T_ASSERT(p->head == &s->base);
	session_leave(&s->base);
	t_ended = 0;
	*sr = s;
}

/* t_read - what the client end has now */
static void
t_read(int fd, struct buf *out)
{
	char tmp[4096];
	ssize_t n;

	while ((n = recv(fd, tmp, sizeof(tmp), MSG_DONTWAIT)) > 0)
		buf_append(out, tmp, (size_t)n);
}

static void
test_input_and_close(void)
{
	struct session_pool p;
	struct buf got = BUF_INIT;
	struct t_session *s;
	int sp[2];

	t_start(&p, sp, 1024, &s);
	T_ASSERT(write(sp[1], "hello\r\n", 7) == 7);
	T_ASSERT(t_run(p.loop));
	T_EQ_INT(s->inputs, 1);
	for (int i = 0; i < 100 && got.len < 10; i++) {
		t_spin(p.loop, 10);
		t_read(sp[1], &got);
	}
	T_EQ_STR(buf_cstr(&got), "ok hello\r\n");
	/* the client goes: end runs, the session leaves the pool */
	(void)close(sp[1]);
	T_ASSERT(t_run(p.loop));
	T_EQ_INT(t_ended, 1);
	T_EQ_INT(p.n, 0);
	T_ASSERT(p.head == NULL);
	buf_free(&got);
	evloop_free(&p.loop);
}

static void
test_held(void)
{
	struct session_pool p;
	struct t_session *s;
	int sp[2];

	t_start(&p, sp, 1024, &s);
	s->hold = true;
	(void)close(sp[1]);
	/* closed, but held: the stream is done, the session stays */
	for (int i = 0; i < 500 && !s->base.closed; i++)
		t_spin(p.loop, 10);
	T_ASSERT(s->base.closed);
	T_EQ_INT(t_ended, 0);
	T_EQ_INT(p.n, 1);
	/* replies to a closed session go nowhere */
	t_reply(&s->base, "lost");
	/* the holder lets go at its outermost leave */
	s->base.depth++;
	s->hold = false;
	s->base.depth++;
	session_leave(&s->base);	/* not the outermost: stays */
	T_EQ_INT(t_ended, 0);
	session_leave(&s->base);
	T_EQ_INT(t_ended, 1);
	T_EQ_INT(p.n, 0);
	evloop_free(&p.loop);
}

static void
test_backlog(void)
{
	struct session_pool p;
	struct buf got = BUF_INIT;
	struct t_session *s;
	char big[1000];
	int sp[2];

	t_start(&p, sp, 1024, &s);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	/* below the mark: no pause */
	T_ASSERT(!session_backlog(&s->base, 1 << 20, 0, 4));
	T_EQ_INT(s->base.pause, 0);
	/* more than the socket takes: paused until the client reads */
	for (int i = 0; i < 2000; i++)
		t_reply(&s->base, "%s", big);
	T_ASSERT(session_backlog(&s->base, 1000, 0, 4));
	T_EQ_INT(s->base.pause, 4);
	session_set_pause(&s->base, 1, true);
	T_EQ_INT(s->base.pause, 5);
	session_set_pause(&s->base, 1, false);
	for (int i = 0; i < 500 && s->drained == 0; i++) {
		t_read(sp[1], &got);
		t_spin(p.loop, 10);
	}
	T_EQ_INT(s->drained, 1);
	T_EQ_INT(s->base.pause, 0);
	t_read(sp[1], &got);
	T_ASSERT(got.len > 1000 * 1000);
	(void)close(sp[1]);
	while (t_ended == 0 && t_run(p.loop))
		;
	T_EQ_INT(t_ended, 1);
	buf_free(&got);
	evloop_free(&p.loop);
}

/*
 * test_admit - the limits at accept: over the client limit or the worker's
 * session limit the connection gets the refusal line and EOF, before any
 * session exists; under them it is admitted
 */
static void
test_admit(void)
{
	struct session_pool p;
	struct session_admit a = {10, 1, 1};
	struct t_session *s;
	struct peer peer;
	struct buf got = BUF_INIT;
	char tmp[64];
	int sp[2], cp[2];

	t_start(&p, sp, 1024, &s);	/* one session of our uid */
	T_ASSERT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, cp) == 0);
	T_EQ_INT(session_admit(&p, cp[0], &a, &peer), SESSION_CLIENT);
	session_refuse(cp[0], &peer, "421 too many from %s", "you");
	t_read(cp[1], &got);
	T_EQ_STR(buf_cstr(&got), "421 too many from you\r\n");
	T_EQ_INT(recv(cp[1], tmp, sizeof(tmp), MSG_DONTWAIT), 0);	/* EOF */
	(void)close(cp[1]);

	/* the worker is full: busy, whatever the client */
	a.client_limit = 5;
	a.max_sessions = 1;
	T_ASSERT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, cp) == 0);
	T_EQ_INT(session_admit(&p, cp[0], &a, &peer), SESSION_BUSY);
	session_refuse(cp[0], &peer, NULL);	/* implicit TLS: nothing */
	T_EQ_INT(recv(cp[1], tmp, sizeof(tmp), MSG_DONTWAIT), 0);
	(void)close(cp[1]);

	/* room and a free slot: admitted, counted until closed */
	a.max_sessions = 10;
	T_ASSERT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, cp) == 0);
	T_EQ_INT(session_admit(&p, cp[0], &a, &peer), SESSION_ADMIT);
	T_EQ_INT(peer_sessions(&peer), 2);
	peer_close(&peer);
	(void)close(cp[0]);
	(void)close(cp[1]);

	(void)close(sp[1]);
	T_ASSERT(t_run(p.loop));
	T_EQ_INT(p.n, 0);
	buf_free(&got);
	evloop_free(&p.loop);
}

/* test_runaway - a line that never ends is noticed past the bound, though
 * the line reader skips it */
static void
test_runaway(void)
{
	struct session_pool p;
	struct t_session *s;
	char chunk[8192];
	int sp[2];

	memset(chunk, 'A', sizeof(chunk));
	t_start(&p, sp, 1024, &s);
	T_ASSERT(write(sp[1], "hello\r\n", 7) == 7);
	T_ASSERT(t_run(p.loop));
	for (int i = 0; i < 9; i++) {
		T_ASSERT(!session_runaway(&s->base));
		T_ASSERT(write(sp[1], chunk, sizeof(chunk)) ==
		    (ssize_t)sizeof(chunk));
		for (int j = 0; j < 20 &&
		    stream_partial_bytes(s->base.stream) <
		    (unsigned long long)(i + 1) * sizeof(chunk); j++)
			t_spin(p.loop, 5);
	}
	/* 72 KB without a line feed, all read and skipped */
	T_EQ_INT(stream_partial_bytes(s->base.stream), 9 * sizeof(chunk));
	T_ASSERT(session_runaway(&s->base));
	T_EQ_INT(s->inputs, 1);
	(void)close(sp[1]);
	T_ASSERT(t_run(p.loop));
	evloop_free(&p.loop);
}

static void
test_errors_and_finish(void)
{
	struct session_pool p;
	struct buf got = BUF_INIT;
	struct t_session *s;
	int sp[2];

	t_start(&p, sp, 1024, &s);
	T_EQ_STR(session_cmd(&s->base), "CONNECT");
	s->base.last_cmd = "NOOP";
	T_EQ_STR(session_cmd(&s->base), "NOOP");
	/* the limit is reached at the third error, once */
	T_ASSERT(!session_count_error(&s->base, 3));
	T_ASSERT(!session_count_error(&s->base, 3));
	T_ASSERT(session_count_error(&s->base, 3));
	t_reply(&s->base, "bye");
	T_ASSERT(session_finish(&s->base, "too many errors"));
	T_ASSERT(s->base.finishing);
	/* finishing: no second finish, no more errors, no more replies */
	T_ASSERT(!session_finish(&s->base, "later reason"));
	T_EQ_STR(s->base.end_reason, "too many errors");
	T_ASSERT(!session_count_error(&s->base, 3));
	t_reply(&s->base, "lost");
	/* the reply before the finish goes out, then the close */
	T_ASSERT(t_run(p.loop));
	T_EQ_INT(t_ended, 1);
	T_EQ_INT(p.n, 0);
	t_read(sp[1], &got);
	T_EQ_STR(buf_cstr(&got), "bye\r\n");
	(void)close(sp[1]);
	buf_free(&got);
	evloop_free(&p.loop);
}

static const struct test_case cases[] = {
	{"limits at accept: refused before a session", test_admit},
	{"input without a line feed is bounded", test_runaway},
	{"input reaches the protocol; a close frees", test_input_and_close},
	{"a held session is freed when let go", test_held},
	{"output backlog pauses input until drained", test_backlog},
	{"errors, finish, nothing after it", test_errors_and_finish},
	{0},
};

int
main(void)
{
	return test_run(cases);
}
