/*
 * smtpd_trigger - tell qmgr about new mail, without ever waiting for it.
 *
 * Protocol (DESIGN.md §5, brief protocol 1): smtpd connects to the UNIX
 * socket <spool>/private/qmgr and writes IPC frames
 *	{request=trigger, queue_id=QID}
 * one per queued message, on one long-lived connection per worker. qmgr
 * sends nothing back. A lost trigger only delays delivery until qmgr's
 * next queue scan, so on any trouble we drop the connection and the
 * triggers pending on it, and connect again at the next trigger (at most
 * one attempt a second). The connect is non-blocking (a full backlog
 * fails at once instead of stalling the event loop), and at most
 * SMTPD_TRIGGER_MAX bytes wait for a slow qmgr; beyond that, triggers are
 * dropped.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/evloop.h"
#include "base/log.h"
#include "mail/ipc.h"
#include "mail/params.h"
#include "mail/spool.h"
#include "smtpd.h"

#define SMTPD_TRIGGER_MAX (64 * 1024)	/* output bound */
#define SMTPD_TRIGGER_RETRY_MS 1000	/* at most one connect a second */

static struct evloop *smtpd_trigger_loop;
static int smtpd_trigger_fd = -1;
static unsigned smtpd_trigger_events;
static struct buf smtpd_trigger_out = BUF_INIT;
static long long smtpd_trigger_tried = -SMTPD_TRIGGER_RETRY_MS;
static bool smtpd_trigger_warned;	/* said that qmgr is unreachable */
static unsigned long smtpd_trigger_dropped;
static struct ipc_msg smtpd_trigger_msg;	/* reused for every frame */

static void smtpd_trigger_io(struct evloop *, int, unsigned, void *);

/* smtpd_trigger_drop - close the connection and forget pending triggers */
static void
smtpd_trigger_drop(const char *why)
{
	if (smtpd_trigger_fd >= 0) {
		/* qmgr restarting (reload) closes it: not worth a warning */
		msg_info("connection to qmgr closed: %s", why);
		evloop_del_fd(smtpd_trigger_loop, smtpd_trigger_fd);
		(void)close(smtpd_trigger_fd);
		smtpd_trigger_fd = -1;
	}
	buf_reset(&smtpd_trigger_out);
}

/* smtpd_trigger_watch - watch for EOF always, for writability if needed */
static void
smtpd_trigger_watch(unsigned events)
{
	if (events == smtpd_trigger_events)
		return;
	if (evloop_mod_fd(smtpd_trigger_loop, smtpd_trigger_fd, events) < 0)
		msg_warn("evloop_mod_fd qmgr socket: %m");
	smtpd_trigger_events = events;
}

/* smtpd_trigger_connect - non-blocking connect to private/qmgr */
static int
smtpd_trigger_connect(void)
{
	struct buf path = BUF_INIT;
	struct sockaddr_un sun;
	int fd;

	spool_socket_path(&path, var_spool_directory, "qmgr");
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (path.len >= sizeof(sun.sun_path)) {
		if (!smtpd_trigger_warned)
			msg_warn("qmgr socket path too long: %s",
			    buf_cstr(&path));
		smtpd_trigger_warned = true;
		buf_free(&path);
		return -1;
	}
	memcpy(sun.sun_path, path.data, path.len);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		msg_warn("socket: %m");
		buf_free(&path);
		return -1;
	}
	/* A UNIX connect completes at once; EAGAIN means a full backlog. */
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		if (!smtpd_trigger_warned)
			msg_warn("cannot connect to qmgr at %s: %m (qmgr will "
			    "find new mail at its next queue scan)",
			    buf_cstr(&path));
		smtpd_trigger_warned = true;
		(void)close(fd);
		buf_free(&path);
		return -1;
	}
	buf_free(&path);
	if (evloop_add_fd(smtpd_trigger_loop, fd, EV_READ, smtpd_trigger_io,
	    NULL) < 0) {
		msg_warn("evloop_add_fd qmgr socket: %m");
		(void)close(fd);
		return -1;
	}
	if (smtpd_trigger_warned)
		msg_info("connected to qmgr again");
	smtpd_trigger_warned = false;
	smtpd_trigger_fd = fd;
	smtpd_trigger_events = EV_READ;
	return 0;
}

/* smtpd_trigger_flush - write what the socket takes now */
static void
smtpd_trigger_flush(void)
{
	ssize_t n;

	while (smtpd_trigger_out.len > 0) {
		n = send(smtpd_trigger_fd, smtpd_trigger_out.data,
		    smtpd_trigger_out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			buf_consume(&smtpd_trigger_out, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			smtpd_trigger_watch(EV_READ | EV_WRITE);
			return;
		}
		smtpd_trigger_drop(n < 0 ? strerror(errno) : "short write");
		return;
	}
	smtpd_trigger_watch(EV_READ);
}

/* smtpd_trigger_io - qmgr socket events: EOF, errors, room to write */
static void
smtpd_trigger_io(struct evloop *loop, int fd, unsigned events, void *ctx)
{
	char junk[256];
	ssize_t n;

	if (events & EV_READ) {
		/* qmgr never speaks on this connection: EOF or an error. */
		n = recv(fd, junk, sizeof(junk), MSG_DONTWAIT);
		if (n == 0) {
			smtpd_trigger_drop("qmgr closed the connection");
			return;
		}
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
		    errno != EINTR) {
			smtpd_trigger_drop(strerror(errno));
			return;
		}
	}
	if ((events & EV_WRITE) && smtpd_trigger_fd >= 0)
		smtpd_trigger_flush();
}

/* smtpd_trigger_init - remember the loop; connect lazily */
void
smtpd_trigger_init(struct evloop *loop)
{
	smtpd_trigger_loop = loop;
	ipc_msg_init(&smtpd_trigger_msg);
}

/* smtpd_trigger - ask qmgr to look at queue file qid (fire and forget) */
void
smtpd_trigger(const char *qid)
{
	long long now;

	if (smtpd_trigger_loop == NULL)
		return;
	if (smtpd_trigger_fd < 0) {
		now = evloop_now_ms(smtpd_trigger_loop);
		if (now - smtpd_trigger_tried < SMTPD_TRIGGER_RETRY_MS)
			return;
		smtpd_trigger_tried = now;
		if (smtpd_trigger_connect() < 0)
			return;
	}
	if (smtpd_trigger_out.len >= SMTPD_TRIGGER_MAX) {
		if (smtpd_trigger_dropped++ % 1000 == 0)
			msg_warn("qmgr is not reading its triggers: %lu "
			    "dropped", smtpd_trigger_dropped);
		return;
	}
	ipc_msg_reset(&smtpd_trigger_msg);
	ipc_put_str(&smtpd_trigger_msg, IPC_REQUEST, "trigger");
	ipc_put_str(&smtpd_trigger_msg, IPC_QUEUE_ID, qid);
	ipc_frame_encode(&smtpd_trigger_msg, &smtpd_trigger_out);
	if (smtpd_trigger_events & EV_WRITE)
		return;		/* the loop flushes when there is room */
	smtpd_trigger_flush();
}
