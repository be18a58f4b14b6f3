/*
 * auth_client_test - the authd client against a fake authd: a forked
 * child serving a temporary UNIX socket, answering by the user name
 * (ok, fail with a delay, silence, hang-up, garbage, odd replies).
 */
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/evloop.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/sock.h"
#include "base/str.h"
#include "base/test.h"
#include "mail/auth_client.h"
#include "mail/ipc.h"
#include "mail/params.h"

static char test_dir[] = "/tmp/auth_client_test.XXXXXX";
static pid_t fake_pid = -1;

/* now_ms - monotonic milliseconds */
static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* fake_reply - answer one request the way its user name asks */
static void
fake_reply(int fd, const struct ipc_msg *req)
{
	static const char *const allowed[] = {IPC_REQUEST, IPC_USER,
	    IPC_PASSWORD, IPC_CLIENT, IPC_SERVICE, NULL};
	const char *user = ipc_get_str(req, IPC_USER);
	const char *pw = ipc_get_str(req, IPC_PASSWORD);
	const char *client = ipc_get_str(req, IPC_CLIENT);
	const char *service = ipc_get_str(req, IPC_SERVICE);
	const char *request = ipc_get_str(req, IPC_REQUEST);
	struct ipc_msg m;
	struct buf why = BUF_INIT, text = BUF_INIT;
	char lower[AUTH_USER_MAX + 1];
	struct pollfd pfd = {.fd = fd, .events = POLLIN};

	ipc_msg_init(&m);
	if (ipc_expect_only(req, allowed, &why) < 0 || user == NULL ||
	    pw == NULL || client == NULL || service == NULL ||
	    request == NULL || strcmp(request, "verify") != 0) {
		ipc_put_str(&m, IPC_STATUS, "fail");
		ipc_put_str(&m, IPC_REASON, "fake: bad request");
	} else if (strncmp(user, "ok", 2) == 0) {
		str_lcpy(lower, user, sizeof(lower));
		ipc_put_str(&m, IPC_STATUS, "ok");
		ipc_put_str(&m, IPC_USER, str_lower(lower));
		if (strcmp(user, "okdelay@x.test") == 0)
			ipc_put_int(&m, IPC_DELAY, 250);
		buf_printf(&text, "client=%s service=%s password=%s", client,
		    service, pw);
		ipc_put_str(&m, IPC_REASON, buf_cstr(&text));
	} else if (strcmp(user, "fail") == 0) {
		ipc_put_str(&m, IPC_STATUS, "fail");
		ipc_put_int(&m, IPC_DELAY, 300);
		ipc_put_str(&m, IPC_REASON, "wrong\npassword");
	} else if (strcmp(user, "slowdelay") == 0) {
		ipc_put_str(&m, IPC_STATUS, "fail");
		ipc_put_int(&m, IPC_DELAY, 400);
	} else if (strcmp(user, "locked") == 0) {
		ipc_put_str(&m, IPC_STATUS, "locked");
	} else if (strcmp(user, "tempfail") == 0) {
		ipc_put_str(&m, IPC_STATUS, "tempfail");
	} else if (strcmp(user, "unknown") == 0) {
		ipc_put_str(&m, IPC_STATUS, "maybe");
	} else if (strcmp(user, "extra") == 0) {
		ipc_put_str(&m, IPC_STATUS, "ok");
		ipc_put_str(&m, IPC_USER, "extra@x.test");
		ipc_put_str(&m, "bogus", "1");
	} else if (strcmp(user, "nostatus") == 0) {
		ipc_put_str(&m, IPC_USER, "x@x.test");
	} else if (strcmp(user, "noaddr") == 0) {
		ipc_put_str(&m, IPC_STATUS, "ok");
	} else if (strcmp(user, "baddelay") == 0) {
		ipc_put_str(&m, IPC_STATUS, "fail");
		ipc_put_str(&m, IPC_DELAY, "soon");
	} else if (strcmp(user, "negdelay") == 0) {
		ipc_put_str(&m, IPC_STATUS, "fail");
		ipc_put_str(&m, IPC_DELAY, "-5");
	} else if (strcmp(user, "garbage") == 0) {
		(void)!write(fd, "\0\0\0\5abcde", 9);
	} else if (strcmp(user, "twoframes") == 0) {
		ipc_put_str(&m, IPC_STATUS, "fail");
		buf_reset(&text);
		ipc_frame_encode(&m, &text);
		ipc_frame_encode(&m, &text);
		(void)!write(fd, text.data, text.len);
		ipc_msg_reset(&m);
	} else if (strcmp(user, "partial") == 0) {
		(void)!write(fd, "\0\0\0\x64status\0", 11);
	} else if (strcmp(user, "silent") == 0) {
		/* wait until the client gives up and closes */
		(void)poll(&pfd, 1, 10000);
	}
	/* "close" and anything else: hang up without a word */
	if (m.body.len > 0)
		(void)ipc_send(fd, &m, -1, 5000, &why);
	ipc_msg_free(&m);
	buf_free(&why);
	buf_free(&text);
}

/* fake_serve - the fake authd: one request per connection, forever */
static void
fake_serve(int lfd)
{
	struct buf why = BUF_INIT;
	struct ipc_msg req;

	ipc_msg_init(&req);
	for (;;) {
		int fd = accept(lfd, NULL, NULL);

		if (fd < 0)
			continue;
		if (ipc_recv(fd, &req, NULL, 5000, &why) == 1)
			fake_reply(fd, &req);
		(void)close(fd);
	}
}

/* test_limits - the fairness settings for the next calls */
static void
test_limits(long long process, long long queue, long long prefix)
{
	var_auth_process_inflight = process;
	var_auth_queue_limit = queue;
	var_auth_prefix_inflight = prefix;
	var_auth_prefix_v4 = 24;
	var_auth_prefix_v6 = 64;
	var_auth_failure_window = 900;
}

/* fake_start - the fake authd at <test_dir>/auth */
static void
fake_start(void)
{
	struct buf path = BUF_INIT, why = BUF_INIT;
	pid_t parent = getpid();
	int lfd;

	if (mkdtemp(test_dir) == NULL)
		msg_fatal("mkdtemp: %m");
	var_run_directory = test_dir;
	var_auth_timeout = 5;
	test_limits(4, 64, 100);
	auth_client_socket_path(&path);
	if ((lfd = sock_listen_unix(buf_cstr(&path), 0600, 16, &why)) < 0)
		msg_fatal("%s", buf_cstr(&why));
	if (sock_set_nonblock(lfd, false) < 0)
		msg_fatal("blocking: %m");
	if ((fake_pid = fork()) < 0)
		msg_fatal("fork: %m");
	if (fake_pid == 0) {
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(0);
		fake_serve(lfd);
		_exit(0);
	}
	(void)close(lfd);
	buf_free(&path);
	buf_free(&why);
}

/* fake_stop - end the fake authd and clean up */
static void
fake_stop(void)
{
	if (fake_pid > 0) {
		(void)kill(fake_pid, SIGKILL);
		(void)waitpid(fake_pid, NULL, 0);
	}
	test_rm_tree(test_dir);
}

/* ---------------------------------------------------------- async */

struct got {
	int called;
	struct auth_reply reply;
	long long at;		/* ms after start */
	long long t0;
	struct auth_call *call;	/* for cancel timers */
	struct evloop *loop;
};

/* got_done - the callback: record and stop the loop */
static void
got_done(const struct auth_reply *reply, void *ctx)
{
	struct got *g = ctx;

	g->called++;
	g->reply = *reply;
	g->at = now_ms() - g->t0;
	g->call = NULL;
	evloop_stop(g->loop);
}

/* stop_fire - guard timer */
static long long
stop_fire(struct evloop *loop, void *ctx)
{
	evloop_stop(loop);
	return -1;
}

/* cancel_fire - cancel the call in flight */
static long long
cancel_fire(struct evloop *loop, void *ctx)
{
	struct got *g = ctx;

	auth_client_cancel(&g->call);
	return -1;
}

/*
 * run_async - one call through a fresh loop; cancel_ms >= 0 cancels it
 * then (0: at once, before the loop runs). Runs until done or max_ms.
 */
static void
run_async(const char *user, const char *pw, struct got *g, long long cancel_ms,
    long long max_ms)
{
	struct auth_request req = {.user = user, .password = pw,
	    .client = "192.0.2.7", .service = "pop3"};

	memset(g, 0, sizeof(*g));
	g->loop = evloop_new();
	g->t0 = now_ms();
	g->call = auth_client_start(g->loop, &req, got_done, g);
	if (g->called != 0)
		msg_panic("done called from inside auth_client_start");
	if (cancel_ms == 0)
		auth_client_cancel(&g->call);
	else if (cancel_ms > 0)
		(void)evloop_add_timer(g->loop, cancel_ms, cancel_fire, g);
	(void)evloop_add_timer(g->loop, max_ms, stop_fire, g);
	if (evloop_run(g->loop) < 0)
		msg_panic("evloop_run: %m");
	auth_client_cancel(&g->call);	/* if still running */
	evloop_free(&g->loop);
}

static void
test_async_ok(void)
{
	struct got g;

	run_async("ok@Example.Test", "pa ss=word", &g, -1, 3000);
	T_EQ_INT(g.called, 1);
	T_EQ_INT(g.reply.result, AUTH_OK);
	T_EQ_STR(g.reply.user, "ok@example.test");
	T_EQ_INT(g.reply.delay_ms, 0);
	T_EQ_STR(g.reply.reason, "client=192.0.2.7 service=pop3 "
	    "password=pa ss=word");
	T_ASSERT(g.at < 1000);
}

static void
test_async_fail_delay(void)
{
	struct got g;

	run_async("fail", "pw", &g, -1, 3000);
	T_EQ_INT(g.called, 1);
	T_EQ_INT(g.reply.result, AUTH_FAIL);
	T_EQ_INT(g.reply.delay_ms, 300);
	T_EQ_STR(g.reply.user, "");
	/* the control character of the reason is not passed on */
	T_EQ_STR(g.reply.reason, "wrong?password");
	T_ASSERT(g.at >= 300);
	T_ASSERT(g.at < 2000);
	run_async("okdelay@x.test", "pw", &g, -1, 3000);
	T_EQ_INT(g.reply.result, AUTH_OK);
	T_ASSERT(g.at >= 250);
}

static void
test_async_other_statuses(void)
{
	static const struct {
		const char *user;
		enum auth_result want;
	} cases[] = {
		{"locked", AUTH_LOCKED},
		{"tempfail", AUTH_TEMPFAIL},
		{"unknown", AUTH_TEMPFAIL},
		{"extra", AUTH_TEMPFAIL},
		{"nostatus", AUTH_TEMPFAIL},
		{"noaddr", AUTH_TEMPFAIL},
		{"baddelay", AUTH_TEMPFAIL},
		{"negdelay", AUTH_TEMPFAIL},
		{"garbage", AUTH_TEMPFAIL},
		{"twoframes", AUTH_TEMPFAIL},
		{"partial", AUTH_TEMPFAIL},
		{"close", AUTH_TEMPFAIL},
	};
	struct got g;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		run_async(cases[i].user, "pw", &g, -1, 3000);
		if (g.called != 1 || g.reply.result != cases[i].want)
			fprintf(stderr, "  user %s: called %d result %d (%s)\n",
			    cases[i].user, g.called, (int)g.reply.result,
			    g.reply.reason);
		T_EQ_INT(g.called, 1);
		T_EQ_INT(g.reply.result, cases[i].want);
		T_ASSERT(g.at < 2000);
	}
	run_async("close", "pw", &g, -1, 3000);
	T_ASSERT(strstr(g.reply.reason, "without a reply") != NULL);
}

static void
test_async_timeout(void)
{
	struct got g;

	var_auth_timeout = 1;
	run_async("silent", "pw", &g, -1, 5000);
	var_auth_timeout = 5;
	T_EQ_INT(g.called, 1);
	T_EQ_INT(g.reply.result, AUTH_TEMPFAIL);
	T_ASSERT(g.at >= 1000);
	T_ASSERT(g.at < 3000);
	T_ASSERT(strstr(g.reply.reason, "in time") != NULL);
}

static void
test_async_unreachable(void)
{
	char *saved = var_run_directory;
	struct got g;

	var_run_directory = (char *)"/nonexistent/herald-test";
	run_async("ok@x.test", "pw", &g, -1, 3000);
	var_run_directory = saved;
	T_EQ_INT(g.called, 1);
	T_EQ_INT(g.reply.result, AUTH_TEMPFAIL);
}

static void
test_async_bad_input(void)
{
	char *saved = var_run_directory;
	char big[AUTH_PASSWORD_MAX + 2];
	struct got g;

	/* nothing may go out: with authd unreachable, asking would give
	 * TEMPFAIL, so FAIL proves the request was never sent */
	var_run_directory = (char *)"/nonexistent/herald-test";
	memset(big, 'x', sizeof(big));
	big[AUTH_PASSWORD_MAX + 1] = '\0';
	run_async("ok\r\n@x.test", "pw", &g, -1, 3000);
	T_EQ_INT(g.called, 1);
	T_EQ_INT(g.reply.result, AUTH_FAIL);
	run_async("ok@x.test", "p\nw", &g, -1, 3000);
	T_EQ_INT(g.reply.result, AUTH_FAIL);
	run_async("ok@x.test", big, &g, -1, 3000);
	T_EQ_INT(g.reply.result, AUTH_FAIL);
	run_async("", "pw", &g, -1, 3000);
	T_EQ_INT(g.reply.result, AUTH_FAIL);
	big[AUTH_USER_MAX + 1] = '\0';
	run_async(big, "pw", &g, -1, 3000);
	T_EQ_INT(g.reply.result, AUTH_FAIL);
	var_run_directory = saved;
	/* at the bound it goes out */
	big[0] = 'o';
	big[1] = 'k';
	big[AUTH_USER_MAX - 2] = '@';
	big[AUTH_USER_MAX] = '\0';
	run_async(big, "pw", &g, -1, 3000);
	T_EQ_INT(g.reply.result, AUTH_OK);
	T_EQ_INT(strlen(g.reply.user), AUTH_USER_MAX);
}

static void
test_async_cancel(void)
{
	struct got g;
	long long t0;

	/* at once: before the loop ran (also for a result known at start) */
	run_async("ok@x.test", "pw", &g, 0, 500);
	T_EQ_INT(g.called, 0);
	run_async("", "pw", &g, 0, 300);
	T_EQ_INT(g.called, 0);
	/* while authd has not answered yet */
	t0 = now_ms();
	run_async("silent", "pw", &g, 100, 600);
	T_EQ_INT(g.called, 0);
	T_ASSERT(now_ms() - t0 >= 550);
	/* during the delay (the fake answers at once, delay 400 ms) */
	run_async("slowdelay", "pw", &g, 150, 800);
	T_EQ_INT(g.called, 0);
	/* the fake is still fine afterwards */
	run_async("ok@x.test", "pw", &g, -1, 3000);
	T_EQ_INT(g.reply.result, AUTH_OK);
}

/* ---------------------------------------------------------- fairness */

#define MULTI_MAX 8

/* several calls on one loop, the order in which they finished */
struct multi {
	struct evloop *loop;
	struct auth_call *call[MULTI_MAX];
	struct auth_reply reply[MULTI_MAX];
	int called[MULTI_MAX];
	int order[MULTI_MAX];
	int ndone;
	int want;		/* stop the loop when this many are done */
	int slot[MULTI_MAX];	/* ctx for each call: its index */
};

static struct multi multi;

/* multi_done - record one call's end */
static void
multi_done(const struct auth_reply *reply, void *ctx)
{
	int i = *(int *)ctx;

	multi.called[i]++;
	multi.reply[i] = *reply;
	multi.call[i] = NULL;
	if (multi.ndone < MULTI_MAX)
		multi.order[multi.ndone] = i;
	if (++multi.ndone >= multi.want)
		evloop_stop(multi.loop);
}

/* multi_start - call i: user from client */
static void
multi_start(int i, const char *user, const char *client)
{
	struct auth_request req = {.user = user, .password = "pw",
	    .client = client, .service = "pop3"};

	multi.slot[i] = i;
	multi.call[i] = auth_client_start(multi.loop, &req, multi_done,
	    &multi.slot[i]);
}

static struct ev_timer *multi_guard;

/* multi_guard_fire - time is up */
static long long
multi_guard_fire(struct evloop *loop, void *ctx)
{
	multi_guard = NULL;
	evloop_stop(loop);
	return -1;
}

/* multi_run - run the loop until want calls are done or max_ms */
static void
multi_run(int want, long long max_ms)
{
	multi.want = want;
	if (multi.ndone >= want)
		return;
	multi_guard = evloop_add_timer(multi.loop, max_ms, multi_guard_fire,
	    NULL);
	if (evloop_run(multi.loop) < 0)
		msg_panic("evloop_run: %m");
	evloop_cancel_timer(multi.loop, &multi_guard);
}

/* multi_init, multi_end - a fresh set; cancel what is left */
static void
multi_init(void)
{
	memset(&multi, 0, sizeof(multi));
	multi.loop = evloop_new();
}

static void
multi_end(void)
{
	for (int i = 0; i < MULTI_MAX; i++)
		auth_client_cancel(&multi.call[i]);
	evloop_free(&multi.loop);
	test_limits(4, 64, 100);
}

/* fake_sync - wait until the fake authd has served every connection
 * made so far (it serves one at a time, in order) */
static void
fake_sync(void)
{
	struct auth_request req = {.user = "ok@x.test", .password = "pw",
	    .client = "192.0.2.250", .service = "pop3"};
	struct auth_reply reply;
	struct buf why = BUF_INIT;

	if (auth_client_verify(&req, 5000, &reply, &why) < 0 ||
	    reply.result != AUTH_OK)
		msg_fatal("fake authd not in sync: %s", reply.reason);
	buf_free(&why);
}

/* cancel0_fire - cancel call 0 (the one holding authd) */
static long long
cancel0_fire(struct evloop *loop, void *ctx)
{
	auth_client_cancel(&multi.call[0]);
	return -1;
}

/* at most auth_process_inflight at authd, auth_queue_limit waiting, the
 * rest a temporary failure at once */
static void
test_queue_bound(void)
{
	int q, sent;

	fake_sync();
	test_limits(1, 2, 100);
	multi_init();
	multi_start(0, "silent", "192.0.2.1");		/* holds authd */
	multi_start(1, "ok1@x.test", "198.51.100.1");
	multi_start(2, "ok2@x.test", "203.0.113.1");
	auth_client_counts(&q, &sent);
	T_EQ_INT(q, 2);
	T_EQ_INT(sent, 1);
	multi_start(3, "ok3@x.test", "10.1.1.1");	/* over the bound */
	multi_run(1, 2000);
	T_EQ_INT(multi.ndone, 1);
	T_EQ_INT(multi.order[0], 3);
	T_EQ_INT(multi.reply[3].result, AUTH_TEMPFAIL);
	T_EQ_STR(multi.reply[3].reason, "authd queue full");
	/* authd free again: the queued ones go, in order */
	auth_client_cancel(&multi.call[0]);
	multi_run(3, 3000);
	T_EQ_INT(multi.ndone, 3);
	T_EQ_INT(multi.reply[1].result, AUTH_OK);
	T_EQ_INT(multi.reply[2].result, AUTH_OK);
	auth_client_counts(&q, &sent);
	T_EQ_INT(q, 0);
	T_EQ_INT(sent, 0);
	multi_end();
}

/* fail_from - one failing call from client, to the end (makes its
 * prefix hot) */
static void
fail_from(const char *client)
{
	struct got g;
	struct auth_request req = {.user = "fail", .password = "pw",
	    .client = client, .service = "pop3"};

	memset(&g, 0, sizeof(g));
	g.loop = evloop_new();
	g.t0 = now_ms();
	g.call = auth_client_start(g.loop, &req, got_done, &g);
	(void)evloop_add_timer(g.loop, 3000, stop_fire, &g);
	(void)evloop_run(g.loop);
	auth_client_cancel(&g.call);
	evloop_free(&g.loop);
	if (g.reply.result != AUTH_FAIL)
		msg_fatal("fail_from %s: result %d", client, g.reply.result);
}

/* a prefix with recent failures (a webmail server, an office NAT with
 * one typo behind it) is not limited while nothing else waits: all its
 * calls go through, as many at authd as there is room for */
static void
test_prefix_alone(void)
{
	fake_sync();
	test_limits(4, 10, 2);
	fail_from("192.0.2.99");
	fail_from("2001:db8:0:1::99");
	multi_init();
	multi_start(0, "ok1@x.test", "192.0.2.1");
	multi_start(1, "ok2@x.test", "192.0.2.2");
	multi_start(2, "ok3@x.test", "192.0.2.3");	/* third of the /24 */
	multi_start(3, "ok4@x.test", "192.0.2.4");
	multi_start(4, "ok5@x.test", "192.0.2.5");	/* queued */
	multi_start(5, "ok6@x.test", "2001:db8:0:1::1");
	multi_start(6, "ok7@x.test", "2001:db8:0:1:ffff::3");
	multi_start(7, "ok8@x.test", "2001:db8:0:1::2");
	multi_run(8, 3000);
	T_EQ_INT(multi.ndone, 8);
	for (int i = 0; i < 8; i++)
		T_EQ_INT(multi.reply[i].result, AUTH_OK);
	multi_end();

	/* three at once from a prefix without failures: all go */
	fake_sync();
	test_limits(4, 10, 2);
	multi_init();
	multi_start(0, "ok1@x.test", "203.0.113.1");
	multi_start(1, "ok2@x.test", "203.0.113.2");
	multi_start(2, "ok3@x.test", "203.0.113.3");
	multi_run(3, 3000);
	T_EQ_INT(multi.ndone, 3);
	for (int i = 0; i < 3; i++)
		T_EQ_INT(multi.reply[i].result, AUTH_OK);
	multi_end();
}

/* when others wait, a hot prefix gets its share (auth_prefix_inflight)
 * at authd and no more; when the queue is full, others take the places
 * of its calls over the share, and its own calls over it are refused */
static void
test_prefix_share(void)
{
	int q, sent;

	fake_sync();
	test_limits(2, 3, 1);
	fail_from("192.0.2.99");			/* hot */
	multi_init();
	multi_start(0, "silent", "192.0.2.1");	/* authd: its share */
	multi_start(1, "silent", "192.0.2.2");	/* authd: nobody waits */
	multi_start(2, "ok2@x.test", "192.0.2.3");	/* queued */
	multi_start(3, "ok3@x.test", "192.0.2.4");
	multi_start(4, "ok4@x.test", "192.0.2.5");	/* the queue full */
	auth_client_counts(&q, &sent);
	T_EQ_INT(q, 3);
	T_EQ_INT(sent, 2);
	/* another prefix: takes the place of the newest hot call */
	multi_start(5, "ok5@x.test", "198.51.100.5");
	/* the hot prefix again, over its share: refused */
	multi_start(6, "ok6@x.test", "192.0.2.6");
	multi_run(2, 2000);
	T_EQ_INT(multi.ndone, 2);
	T_EQ_INT(multi.reply[4].result, AUTH_TEMPFAIL);
	T_EQ_STR(multi.reply[4].reason, "too many authentication requests "
	    "from 192.0.2.0/24 at authd");
	T_EQ_INT(multi.reply[6].result, AUTH_TEMPFAIL);
	T_EQ_STR(multi.reply[6].reason, "too many authentication requests "
	    "from 192.0.2.0/24 at authd");
	auth_client_counts(&q, &sent);
	T_EQ_INT(q, 3);
	/* another call of another prefix: the next hot one makes room */
	multi_start(7, "ok7@x.test", "198.51.100.7");
	multi_run(3, 2000);
	T_EQ_INT(multi.ndone, 3);
	T_EQ_INT(multi.order[2], 3);
	T_EQ_INT(multi.reply[3].result, AUTH_TEMPFAIL);
	/* authd frees its slots: the other prefix goes first, though its
	 * calls came later; then the hot prefix's last one */
	auth_client_cancel(&multi.call[0]);
	auth_client_cancel(&multi.call[1]);
	multi_run(6, 3000);
	T_EQ_INT(multi.ndone, 6);
	T_EQ_INT(multi.order[3], 5);
	T_EQ_INT(multi.order[4], 7);
	T_EQ_INT(multi.order[5], 2);
	T_EQ_INT(multi.reply[2].result, AUTH_OK);
	T_EQ_INT(multi.reply[5].result, AUTH_OK);
	T_EQ_INT(multi.reply[7].result, AUTH_OK);
	auth_client_counts(&q, &sent);
	T_EQ_INT(q, 0);
	T_EQ_INT(sent, 0);
	multi_end();
}

/* a prefix that failed lately waits behind prefixes that did not */
static void
test_priority(void)
{
	int q, sent;

	test_limits(1, 10, 100);
	/* 192.0.2.0/24 gets a failure: hot */
	fail_from("192.0.2.9");

	fake_sync();
	multi_init();
	multi_start(0, "silent", "10.9.9.9");		/* holds authd */
	multi_start(1, "ok-hot@x.test", "192.0.2.10");
	multi_start(2, "ok-cold@x.test", "198.51.100.10");
	auth_client_counts(&q, &sent);
	T_EQ_INT(q, 2);
	T_EQ_INT(sent, 1);
	(void)evloop_add_timer(multi.loop, 100, cancel0_fire, NULL);
	multi_run(2, 3000);
	T_EQ_INT(multi.ndone, 2);
	T_EQ_INT(multi.order[0], 2);	/* the later one, but cold */
	T_EQ_INT(multi.order[1], 1);
	T_EQ_INT(multi.reply[1].result, AUTH_OK);
	T_EQ_INT(multi.reply[2].result, AUTH_OK);
	multi_end();
}

/* a session that closes takes its queued call with it: out of the queue
 * and out of its prefix's count at once; a watched client that hung up
 * is dropped before its call goes to authd */
static void
test_cancel_queued(void)
{
	int q, sent, sv[2];

	fake_sync();
	test_limits(1, 10, 1);
	fail_from("198.51.100.99");	/* one place for its /24 */
	multi_init();
	multi_start(0, "silent", "192.0.2.1");		/* holds authd */
	multi_start(1, "ok1@x.test", "198.51.100.1");
	auth_client_counts(&q, &sent);
	T_EQ_INT(q, 1);
	T_EQ_INT(sent, 1);
	auth_client_cancel(&multi.call[1]);
	auth_client_counts(&q, &sent);
	T_EQ_INT(q, 0);
	T_EQ_INT(sent, 1);
	/* the /24's one place is free again */
	multi_start(2, "ok2@x.test", "198.51.100.2");
	auth_client_counts(&q, &sent);
	T_EQ_INT(q, 1);
	/* a watched call whose client hangs up while it waits */
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		msg_fatal("socketpair: %m");
	multi_start(3, "ok3@x.test", "203.0.113.1");
	auth_client_watch(multi.call[3], sv[0]);
	(void)close(sv[1]);
	multi_run(1, 200);
	T_EQ_INT(multi.ndone, 0);
	auth_client_cancel(&multi.call[0]);
	multi_run(2, 3000);
	T_EQ_INT(multi.ndone, 2);
	T_EQ_INT(multi.called[1], 0);
	T_EQ_INT(multi.reply[2].result, AUTH_OK);
	T_EQ_INT(multi.reply[3].result, AUTH_TEMPFAIL);
	T_EQ_STR(multi.reply[3].reason, "client hung up before authd was "
	    "asked");
	(void)close(sv[0]);
	auth_client_counts(&q, &sent);
	T_EQ_INT(q, 0);
	T_EQ_INT(sent, 0);
	multi_end();
}

/* ---------------------------------------------------------- blocking */

static void
test_blocking(void)
{
	struct auth_request req = {.user = "ok@X.test", .password = "pw",
	    .client = "::1", .service = "smtp"};
	struct auth_reply reply;
	struct buf why = BUF_INIT;
	long long t0;

	T_EQ_INT(auth_client_verify(&req, 3000, &reply, &why), 0);
	T_EQ_INT(reply.result, AUTH_OK);
	T_EQ_STR(reply.user, "ok@x.test");
	T_EQ_STR(reply.reason, "client=::1 service=smtp password=pw");

	req.user = "fail";
	t0 = now_ms();
	T_EQ_INT(auth_client_verify(&req, 3000, &reply, &why), 0);
	T_EQ_INT(reply.result, AUTH_FAIL);
	T_EQ_INT(reply.delay_ms, 300);
	T_ASSERT(now_ms() - t0 >= 300);

	req.user = "close";
	T_EQ_INT(auth_client_verify(&req, 3000, &reply, &why), 0);
	T_EQ_INT(reply.result, AUTH_TEMPFAIL);
	req.user = "garbage";
	T_EQ_INT(auth_client_verify(&req, 3000, &reply, &why), 0);
	T_EQ_INT(reply.result, AUTH_TEMPFAIL);
	req.user = "unknown";
	T_EQ_INT(auth_client_verify(&req, 3000, &reply, &why), 0);
	T_EQ_INT(reply.result, AUTH_TEMPFAIL);
	req.user = "locked";
	T_EQ_INT(auth_client_verify(&req, 3000, &reply, &why), 0);
	T_EQ_INT(reply.result, AUTH_LOCKED);

	req.user = "silent";
	t0 = now_ms();
	T_EQ_INT(auth_client_verify(&req, 500, &reply, &why), 0);
	T_EQ_INT(reply.result, AUTH_TEMPFAIL);
	T_ASSERT(now_ms() - t0 >= 500);
	T_ASSERT(now_ms() - t0 < 2500);

	/* bad input: AUTH_FAIL without asking; bad arguments: -1 */
	req.user = "ok@x.test";
	req.password = "p\rw";
	T_EQ_INT(auth_client_verify(&req, 3000, &reply, &why), 0);
	T_EQ_INT(reply.result, AUTH_FAIL);
	req.password = "pw";
	req.client = "1.2.3.4\n";
	buf_reset(&why);
	T_EQ_INT(auth_client_verify(&req, 3000, &reply, &why), -1);
	T_ASSERT(why.len > 0);
	req.client = NULL;
	T_EQ_INT(auth_client_verify(&req, 3000, &reply, &why), -1);
	buf_free(&why);
}

static const struct test_case cases[] = {
	{"async ok", test_async_ok},
	{"async fail with delay", test_async_fail_delay},
	{"async locked, tempfail, malformed replies", test_async_other_statuses},
	{"async timeout", test_async_timeout},
	{"async authd unreachable", test_async_unreachable},
	{"async bad input never goes out", test_async_bad_input},
	{"async cancel at every stage", test_async_cancel},
	{"blocking verify", test_blocking},
	{"queue bound", test_queue_bound},
	{"a hot prefix alone is not limited", test_prefix_alone},
	{"a hot prefix's share when others wait", test_prefix_share},
	{"cold prefixes first", test_priority},
	{"cancel and hang-up while queued", test_cancel_queued},
	{0},
};

int
main(void)
{
	int rc;

	msg_init("auth_client_test", LOG_DEST_STDERR);
	(void)signal(SIGPIPE, SIG_IGN);
	fake_start();
	rc = test_run(cases);
	fake_stop();
	return rc;
}
