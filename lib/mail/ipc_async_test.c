/*
 * ipc_async_test - one request/reply from an event loop against a fake
 * server (a child process) that answers, closes without a reply, sends
 * a bad frame, or never answers; a call that cannot start; a cancelled
 * call, whose done() never runs.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/evloop.h"
#include "base/sock.h"
#include "base/test.h"
#include "mail/ipc.h"
#include "mail/ipc_async.h"

enum fake {
	FAKE_ECHO,  /* status=ok, got=<the request's "x"> */
	FAKE_CLOSE, /* close without a reply */
	FAKE_BAD,   /* a frame that is no frame */
	FAKE_HANG,  /* never answer */
};

static char tmpdir[] = "/tmp/herald-ipc-async-XXXXXX";
static char path[300];

/* result of the call */
static int got_r;
static int calls;
static struct buf got_text;

/* fake_start - a server on path answering every connection as mode
 * says; its pid */
static pid_t
fake_start(enum fake mode)
{
	struct buf why = BUF_INIT;
	int lfd;
	pid_t pid;

	(void)unlink(path);
	if ((lfd = sock_listen_unix(path, 0600, 4, &why)) < 0) {
		fprintf(stderr, "listen: %s\n", why.data);
		exit(1);
	}
	if ((pid = fork()) < 0)
		exit(1);
	if (pid == 0) {
		(void)sock_set_nonblock(lfd, false);
		for (;;) {
			struct ipc_msg req, reply;
			int conn = accept(lfd, NULL, NULL);

			if (conn < 0)
				_exit(2);
			ipc_msg_init(&req);
			ipc_msg_init(&reply);
			if (ipc_recv(conn, &req, NULL, 5000, &why) != 1)
				_exit(3);
			if (mode == FAKE_HANG) {
				pause();
				_exit(0);
			}
			if (mode == FAKE_BAD &&
			    write(conn, "\xff\xff\xff\xffxx", 6) != 6)
				_exit(4);
			if (mode == FAKE_ECHO) {
				ipc_put_str(&reply, IPC_STATUS, "ok");
				ipc_put_str(
				    &reply, "got", ipc_get_str(&req, "x"));
				(void)ipc_send(conn, &reply, -1, 5000, &why);
			}
			close(conn);
			ipc_msg_free(&req);
			ipc_msg_free(&reply);
		}
	}
	close(lfd);
	buf_free(&why);
	return pid;
}

/* fake_stop - end the server */
static void
fake_stop(pid_t pid)
{
	kill(pid, SIGKILL);
	(void)waitpid(pid, NULL, 0);
	(void)unlink(path);
}

/* done - record the result and stop the loop */
static void
done(void *ctx, int r, const struct ipc_msg *m, const char *why)
{
	struct evloop *loop = ctx;

	calls++;
	got_r = r;
	buf_reset(&got_text);
	if (r == 1)
		buf_puts(&got_text,
		    ipc_get_str(m, "got") ? ipc_get_str(m, "got") : "(none)");
	else
		buf_puts(&got_text, why);
	evloop_stop(loop);
}

static bool guard_fired;

/* stop_soon - a guard timer: stop the loop */
static long long
stop_soon(struct evloop *loop, void *ctx)
{
	(void)ctx;
	guard_fired = true;
	evloop_stop(loop);
	return -1;
}

/* call - one call against a fake in mode; the loop runs until done or
 * 3 s; returns whether the call started */
static bool
call(enum fake mode, int timeout_ms, bool cancel)
{
	struct evloop *loop = evloop_new();
	struct ipc_msg req;
	struct buf why = BUF_INIT;
	struct ipc_async *c;
	struct ev_timer *guard;
	pid_t pid = fake_start(mode);

	calls = 0;
	got_r = 0;
	buf_reset(&got_text);
	ipc_msg_init(&req);
	ipc_put_str(&req, "x", "hello");
	c = ipc_async_start(
	    loop, path, &req, timeout_ms, "the fake", done, loop, &why);
	ipc_msg_free(&req);
	if (c != NULL && cancel)
		ipc_async_cancel(&c);
	guard_fired = false;
	guard = evloop_add_timer(loop, cancel ? 300 : 3000, stop_soon, NULL);
	if (c != NULL || cancel)
		(void)evloop_run(loop);
	if (!guard_fired)
		evloop_cancel_timer(loop, &guard);
	fake_stop(pid);
	evloop_free(&loop);
	if (c == NULL && !cancel)
		buf_set(&got_text, buf_cstr(&why));
	buf_free(&why);
	return c != NULL || cancel;
}

static void
test_reply(void)
{
	T_ASSERT(call(FAKE_ECHO, 2000, false));
	T_EQ_INT(calls, 1);
	T_EQ_INT(got_r, 1);
	T_EQ_STR(got_text.data, "hello");
}

static void
test_failures(void)
{
	T_ASSERT(call(FAKE_CLOSE, 2000, false));
	T_EQ_INT(calls, 1);
	T_EQ_INT(got_r, -1);
	T_EQ_STR(
	    got_text.data, "the fake closed the connection without a reply");
	T_ASSERT(call(FAKE_BAD, 2000, false));
	T_EQ_INT(got_r, -1);
	T_ASSERT(strncmp(got_text.data, "bad reply from the fake: ", 25) == 0);
	T_ASSERT(call(FAKE_HANG, 200, false));
	T_EQ_INT(got_r, -1);
	T_EQ_STR(got_text.data, "the fake did not answer in time");
}

static void
test_no_server(void)
{
	struct evloop *loop = evloop_new();
	struct ipc_msg req;
	struct buf why = BUF_INIT;

	ipc_msg_init(&req);
	(void)unlink(path);
	T_ASSERT(ipc_async_start(loop, path, &req, 1000, "the fake", done, loop,
	             &why) == NULL);
	T_ASSERT(why.len > 0);
	ipc_msg_free(&req);
	evloop_free(&loop);
	buf_free(&why);
}

static void
test_cancel(void)
{
	T_ASSERT(call(FAKE_ECHO, 2000, true));
	T_EQ_INT(calls, 0);
}

static const struct test_case cases[] = {
    {"a reply reaches done", test_reply},
    {"closed, bad frame, timeout", test_failures},
    {"nobody listening: no call", test_no_server},
    {"cancelled: done never runs", test_cancel},
    {0},
};

int
main(void)
{
	int r;

	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	snprintf(path, sizeof(path), "%s/sock", tmpdir);
	buf_init(&got_text);
	r = test_run(cases);
	buf_free(&got_text);
	test_rm_tree(tmpdir);
	return r;
}
