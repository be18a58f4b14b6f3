/*
 * master_ctl - the control socket: heraldctl asks, master answers.
 *
 * Protocol (heraldctl -> master, <run_directory>/master.sock, mode 0600):
 * one request frame per connection, one reply frame, then master closes.
 * The client has MASTER_CTL_DEADLINE_MS to send its request; requests
 * are at most MASTER_CTL_MAX_INPUT bytes.
 *
 *   {request=status} -> {status=ok, pid=MASTERPID, time=START_UNIX,
 *       name=CONFIGPATH} then, per service in table order, the group
 *       {unit=NAME, state=running|reloading|restarting|failing|off,
 *       wanted=N,
 *       count=RESTARTS[, reason=LAST_ERROR]} (reason when it is not
 *       running: its last fatal line, or how its last process ended),
 *       followed by one group per child process of the current
 *       generation {service=NAME, pid=PID, time=START_UNIX,
 *       count=RESTARTS_OF_THAT_SERVICE}
 *   {request=reload} -> {status=ok} or {status=fail, reason=TEXT}; a bad
 *       configuration keeps the old one in force
 *   {request=stop} -> {status=ok}, then the graceful stop begins
 *   {request=config} -> {status=ok, name=CONFIGPATH, value=TEXT}: the
 *       configuration text master checked and runs with (the one its
 *       services get), so that heraldctl can work from the running
 *       settings when the file on disk has an error
 *   anything else -> {status=fail, reason=TEXT}
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/evloop.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/sock.h"
#include "mail/ipc.h"
#include "master.h"

#define MASTER_CTL_DEADLINE_MS 5000
#define MASTER_CTL_MAX_INPUT 65536
#define MASTER_CTL_MAX_CONNS 16
#define MASTER_CTL_REPLY_MS 2000

struct master_ctl_conn {
	int fd;
	struct buf in;			/* bytes of the request so far */
	struct ev_timer *timer;		/* request deadline */
	struct master_ctl_conn *next;
};

static int master_ctl_fd = -1;
static struct master_ctl_conn *master_ctl_conns;
static int master_ctl_nconns;

/* master_ctl_drop - close a connection and forget it */
static void
master_ctl_drop(struct master_ctl_conn *conn)
{
	struct master_ctl_conn **cp;

	for (cp = &master_ctl_conns; *cp != NULL; cp = &(*cp)->next) {
		if (*cp == conn) {
			*cp = conn->next;
			break;
		}
	}
	evloop_del_fd(master_loop, conn->fd);
	evloop_cancel_timer(master_loop, &conn->timer);
	(void)close(conn->fd);
	buf_free(&conn->in);
	x_free(&conn);
	master_ctl_nconns--;
}

/* master_ctl_status_unit - the state group of one service */
static void
master_ctl_status_unit(struct ipc_msg *reply, struct master_service *svc)
{
	int running;
	const char *state = master_service_state(svc, &running);

	ipc_put_str(reply, IPC_UNIT, svc->def->name);
	ipc_put_str(reply, IPC_STATE, state);
	ipc_put_int(reply, IPC_WANTED, svc->wanted);
	ipc_put_int(reply, IPC_COUNT, svc->restarts);
	if ((strcmp(state, "restarting") == 0 ||
	    strcmp(state, "failing") == 0) && svc->last_error[0] != '\0')
		ipc_put_str(reply, IPC_REASON, svc->last_error);
}

/* master_ctl_status - the status reply */
static void
master_ctl_status(struct ipc_msg *reply)
{
	ipc_put_str(reply, IPC_STATUS, "ok");
	ipc_put_int(reply, IPC_PID, (long long)getpid());
	ipc_put_int(reply, IPC_TIME, (long long)master_started);
	ipc_put_str(reply, IPC_NAME, master_config_path);
	/* by service, in table order, then in start order */
	for (int i = 0; i < master_nservices; i++) {
		struct master_service *svc = &master_services[i];

		master_ctl_status_unit(reply, svc);
		for (struct master_child *c = master_children; c; c = c->next) {
			if (c->svc != svc ||
			    c->generation != master_generation)
				continue;
			ipc_put_str(reply, IPC_SERVICE, svc->def->name);
			ipc_put_int(reply, IPC_PID, (long long)c->pid);
			ipc_put_int(reply, IPC_TIME, (long long)c->started);
			ipc_put_int(reply, IPC_COUNT, svc->restarts);
		}
	}
}

/* master_ctl_config - the running configuration text and its path */
static void
master_ctl_config(struct ipc_msg *reply)
{
	struct buf text = BUF_INIT, why = BUF_INIT;

	if (master_config_fd < 0 ||
	    cfg_read(master_config_fd, "configuration copy", &text, &why) < 0 ||
	    memchr(text.data, '\0', text.len) != NULL) {
		/* cannot happen: master checked this very text */
		if (why.len == 0)
			buf_puts(&why, "no configuration copy");
		msg_warn("control socket: config: %s", buf_cstr(&why));
		ipc_put_str(reply, IPC_STATUS, "fail");
		ipc_put_str(reply, IPC_REASON, buf_cstr(&why));
	} else {
		ipc_put_str(reply, IPC_STATUS, "ok");
		ipc_put_str(reply, IPC_NAME, master_config_path);
		ipc_put_mem(reply, IPC_VALUE, text.data, text.len);
	}
	buf_free(&text);
	buf_free(&why);
}

/* master_ctl_request - answer one request; true if master should stop */
static bool
master_ctl_request(const struct ipc_msg *req, struct ipc_msg *reply)
{
	static const char *const allowed[] = {IPC_REQUEST, NULL};
	struct buf why = BUF_INIT;
	const char *what = ipc_get_str(req, IPC_REQUEST);
	bool stop = false;

	if (what == NULL || ipc_expect_only(req, allowed, &why) < 0) {
		if (what == NULL)
			buf_set(&why, "no request");
		msg_warn("control socket: bad request: %s", buf_cstr(&why));
		ipc_put_str(reply, IPC_STATUS, "fail");
		ipc_put_str(reply, IPC_REASON, buf_cstr(&why));
	} else if (strcmp(what, "status") == 0) {
		master_ctl_status(reply);
	} else if (strcmp(what, "reload") == 0) {
		msg_info("reload requested by heraldctl");
		if (master_reload(&why) < 0) {
			ipc_put_str(reply, IPC_STATUS, "fail");
			ipc_put_str(reply, IPC_REASON, buf_cstr(&why));
		} else {
			ipc_put_str(reply, IPC_STATUS, "ok");
		}
	} else if (strcmp(what, "config") == 0) {
		master_ctl_config(reply);
	} else if (strcmp(what, "stop") == 0) {
		msg_info("stop requested by heraldctl");
		ipc_put_str(reply, IPC_STATUS, "ok");
		stop = true;
	} else {
		ipc_put_str(reply, IPC_STATUS, "fail");
		buf_printf(&why, "unknown request \"%.64s\"", what);
		ipc_put_str(reply, IPC_REASON, buf_cstr(&why));
	}
	buf_free(&why);
	return stop;
}

/* master_ctl_read - input on a connection: answer once a frame is in */
static void
master_ctl_read(struct evloop *loop, int fd, unsigned events, void *ctx)
{
	struct master_ctl_conn *conn = ctx;
	struct ipc_msg req, reply;
	struct buf why = BUF_INIT;
	char chunk[4096];
	ssize_t n;
	int r;
	bool stop;

	n = read(fd, chunk, sizeof(chunk));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		if (n < 0)
			msg_warn("control socket: read: %m");
		master_ctl_drop(conn);
		return;
	}
	if (conn->in.len + (size_t)n > MASTER_CTL_MAX_INPUT) {
		msg_warn("control socket: request too large");
		master_ctl_drop(conn);
		return;
	}
	buf_append(&conn->in, chunk, (size_t)n);
	ipc_msg_init(&req);
	if ((r = ipc_frame_take(&conn->in, &req, &why)) <= 0) {
		if (r < 0) {
			msg_warn("control socket: %s", buf_cstr(&why));
			master_ctl_drop(conn);
		}
		ipc_msg_free(&req);
		buf_free(&why);
		return;
	}
	ipc_msg_init(&reply);
	stop = master_ctl_request(&req, &reply);
	if (ipc_send(fd, &reply, -1, MASTER_CTL_REPLY_MS, &why) < 0)
		msg_warn("control socket: reply: %s", buf_cstr(&why));
	ipc_msg_free(&req);
	ipc_msg_free(&reply);
	buf_free(&why);
	master_ctl_drop(conn);
	if (stop)
		master_stop();
}

/* master_ctl_timeout - the client did not send its request in time */
static long long
master_ctl_timeout(struct evloop *loop, void *ctx)
{
	struct master_ctl_conn *conn = ctx;

	conn->timer = NULL;	/* the loop frees it */
	msg_warn("control socket: no request within %ds",
	    MASTER_CTL_DEADLINE_MS / 1000);
	master_ctl_drop(conn);
	return -1;
}

/* master_ctl_accept - a new control connection */
static void
master_ctl_accept(struct evloop *loop, int fd, unsigned events, void *ctx)
{
	struct master_ctl_conn *conn;
	int cfd;

	if ((cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) < 0) {
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			msg_warn("control socket: accept: %m");
		return;
	}
	if (master_ctl_nconns >= MASTER_CTL_MAX_CONNS) {
		msg_warn("control socket: too many connections");
		(void)close(cfd);
		return;
	}
	conn = xcalloc(1, sizeof(*conn));
	conn->fd = cfd;
	buf_init(&conn->in);
	if (evloop_add_fd(loop, cfd, EV_READ, master_ctl_read, conn) < 0) {
		msg_warn("control socket: watch connection: %m");
		(void)close(cfd);
		buf_free(&conn->in);
		x_free(&conn);
		return;
	}
	conn->timer = evloop_add_timer(loop, MASTER_CTL_DEADLINE_MS,
	    master_ctl_timeout, conn);
	conn->next = master_ctl_conns;
	master_ctl_conns = conn;
	master_ctl_nconns++;
}

/* master_ctl_open - listen on the control socket; -1 with why */
int
master_ctl_open(const char *path, struct buf *why)
{
	if ((master_ctl_fd = sock_listen_unix(path, 0600, 16, why)) < 0)
		return -1;
	if (evloop_add_fd(master_loop, master_ctl_fd, EV_READ,
	    master_ctl_accept, NULL) < 0) {
		buf_printf(why, "watch %s: %s", path, strerror(errno));
		(void)close(master_ctl_fd);
		master_ctl_fd = -1;
		return -1;
	}
	return 0;
}

/* master_ctl_close - stop listening, drop open connections */
void
master_ctl_close(void)
{
	while (master_ctl_conns != NULL)
		master_ctl_drop(master_ctl_conns);
	if (master_ctl_fd >= 0) {
		evloop_del_fd(master_loop, master_ctl_fd);
		(void)close(master_ctl_fd);
		master_ctl_fd = -1;
	}
}
