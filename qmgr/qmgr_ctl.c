/*
 * qmgr_ctl - the "qmgr" listener (<spool>/private/qmgr): triggers from
 * smtpd and operator requests from heraldctl.
 *
 * Protocol (IPC frames, lib/mail/ipc.h); a connection may carry many
 * frames, each handled in order:
 *   {request=trigger, queue_id=QID}   no reply; incoming/QID is moved to
 *                                     active/ and scheduled (a lost
 *                                     trigger only delays: qmgr rescans)
 *   {request=delete, queue_id=QID}    {status=ok} or {status=fail,
 *                                     reason="no such message"}; a message
 *                                     in delivery goes when it returns
 *   {request=flush}                   {status=ok, count=N}: every deferred
 *                                     message is due now, every dead
 *                                     destination is tried again
 *   {request=flush, queue_id=QID}     {status=ok} or {status=fail,
 *                                     reason=TEXT}: the deferred message
 *                                     is due now, and the dead
 *                                     destinations of its pending
 *                                     recipients are tried again
 *   {request=destinations}            {status=ok} then per remote domain
 *                                     that is dead, busy or off its
 *                                     initial concurrency (at most
 *                                     QMGR_DEST_LIST): {domain=D,
 *                                     concurrency=N, busy=N,
 *                                     dead_until=T (0: alive)[,
 *                                     reason=TEXT]}
 *   {request=hold, queue_id=QID}      {status=ok} or {status=fail,
 *   {request=release, queue_id=QID}    reason=TEXT}: qmgr_hold.c
 *   {request=requeue, queue_id=QID}   {status=ok, state=now|after|held}
 *                                     or {status=fail, reason=TEXT}: its
 *                                     dead destinations alive, its
 *                                     pending recipients routed anew
 *                                     and tried at once ("after": when
 *                                     the delivery out returns; "held":
 *                                     on hold, it stays so), see
 *                                     qmgr_requeue.c
 * Input is read into a buffer of at most QMGR_CLIENT_INPUT bytes; a frame
 * that does not fit, a malformed frame, or attributes that do not belong
 * to the request are a protocol error: warn and drop the connection.
 * A client that does not read its replies is not read from either.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/evloop.h"
#include "base/log.h"
#include "base/mem.h"
#include "mail/ipc.h"
#include "mail/qid.h"
#include "mail/spool.h"
#include "qmgr.h"

#define QMGR_CLIENT_OUTPUT 65536	/* stop reading above this */

static void qmgr_ctl_event(struct evloop *, int, unsigned, void *);

/* qmgr_ctl_close - drop one client connection */
static void
qmgr_ctl_close(struct qmgr *q, struct qmgr_client *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		q->clients = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	q->nclients--;
	if (q->loop != NULL)
		evloop_del_fd(q->loop, c->fd);
	if (close(c->fd) < 0)
		msg_warn("close qmgr client: %m");
	buf_free(&c->in);
	buf_free(&c->out);
	x_free(&c);
}

/* qmgr_ctl_accept - a new connection on the "qmgr" listener */
void
qmgr_ctl_accept(struct qmgr *q, int fd)
{
	struct qmgr_client *c;

	if (q->stopping || q->nclients >= QMGR_CLIENT_MAX) {
		if (!q->stopping)
			msg_warn("too many qmgr connections (%d): refusing "
			    "one", q->nclients);
		(void)close(fd);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->fd = fd;
	buf_init(&c->in);
	buf_init(&c->out);
	c->events = EV_READ;
	if (evloop_add_fd(q->loop, fd, EV_READ, qmgr_ctl_event, c) < 0) {
		msg_warn("qmgr client: epoll: %m");
		(void)close(fd);
		x_free(&c);
		return;
	}
	c->next = q->clients;
	if (q->clients != NULL)
		q->clients->prev = c;
	q->clients = c;
	q->nclients++;
}

/* qmgr_ctl_queue_id - the request's queue_id, checked */
static const char *
qmgr_ctl_queue_id(const struct ipc_msg *req, struct buf *why)
{
	static const char *const allowed[] = {IPC_REQUEST, IPC_QUEUE_ID, NULL};
	const char *qid;

	if (ipc_expect_only(req, allowed, why) < 0)
		return NULL;
	if ((qid = ipc_get_str(req, IPC_QUEUE_ID)) == NULL) {
		buf_puts(why, "no queue_id");
		return NULL;
	}
	if (!qid_valid(qid)) {
		buf_puts(why, "malformed queue_id");
		return NULL;
	}
	return qid;
}

/* qmgr_ctl_request - handle one frame; reply (if any) goes to reply */
int
qmgr_ctl_request(struct qmgr *q, const struct ipc_msg *req,
    struct ipc_msg *reply, struct buf *why)
{
	static const char *const only_request[] = {IPC_REQUEST, NULL};
	const char *what = ipc_get_str(req, IPC_REQUEST), *qid;

	if (what == NULL) {
		buf_puts(why, "no request attribute");
		return -1;
	}
	if (strcmp(what, "trigger") == 0) {
		if ((qid = qmgr_ctl_queue_id(req, why)) == NULL)
			return -1;
		if (!q->stopping)
			(void)qmgr_activate(q, SPOOL_INCOMING, qid);
		return 0;
	}
	if (strcmp(what, "delete") == 0) {
		if ((qid = qmgr_ctl_queue_id(req, why)) == NULL)
			return -1;
		if (qmgr_delete(q, qid) == 0) {
			ipc_put_str(reply, IPC_STATUS, "ok");
		} else {
			ipc_put_str(reply, IPC_STATUS, "fail");
			ipc_put_str(reply, IPC_REASON, "no such message");
		}
		return 0;
	}
	if (strcmp(what, "hold") == 0 || strcmp(what, "release") == 0) {
		struct buf err = BUF_INIT;
		int r;

		if ((qid = qmgr_ctl_queue_id(req, why)) == NULL)
			return -1;
		r = strcmp(what, "hold") == 0 ? qmgr_hold(q, qid, &err) :
		    qmgr_release(q, qid, &err);
		ipc_put_str(reply, IPC_STATUS, r == 0 ? "ok" : "fail");
		if (r < 0)
			ipc_put_str(reply, IPC_REASON, buf_cstr(&err));
		buf_free(&err);
		return 0;
	}
	if (strcmp(what, "requeue") == 0) {
		static const char *const state[] = {"now", "after", "held"};
		enum qmgr_requeue_state st;
		struct buf err = BUF_INIT;

		if ((qid = qmgr_ctl_queue_id(req, why)) == NULL)
			return -1;
		if (qmgr_requeue(q, qid, &st, &err) == 0) {
			ipc_put_str(reply, IPC_STATUS, "ok");
			ipc_put_str(reply, IPC_STATE, state[st]);
		} else {
			ipc_put_str(reply, IPC_STATUS, "fail");
			ipc_put_str(reply, IPC_REASON, buf_cstr(&err));
		}
		buf_free(&err);
		return 0;
	}
	if (strcmp(what, "flush") == 0 && ipc_get_str(req, IPC_QUEUE_ID)) {
		struct buf err = BUF_INIT;
		int r;

		if ((qid = qmgr_ctl_queue_id(req, why)) == NULL)
			return -1;
		r = qmgr_flush_one(q, qid, &err);
		ipc_put_str(reply, IPC_STATUS, r > 0 ? "ok" : "fail");
		if (r <= 0)
			ipc_put_str(reply, IPC_REASON, r == 0 ?
			    "not deferred" : buf_cstr(&err));
		buf_free(&err);
		return 0;
	}
	if (strcmp(what, "flush") == 0) {
		struct buf err = BUF_INIT;
		long long n;

		if (ipc_expect_only(req, only_request, why) < 0)
			return -1;
		if (qmgr_flush(q, &n, &err) == 0) {
			ipc_put_str(reply, IPC_STATUS, "ok");
			ipc_put_int(reply, IPC_COUNT, n);
		} else {
			ipc_put_str(reply, IPC_STATUS, "fail");
			ipc_put_str(reply, IPC_REASON, buf_cstr(&err));
		}
		buf_free(&err);
		return 0;
	}
	if (strcmp(what, "destinations") == 0) {
		if (ipc_expect_only(req, only_request, why) < 0)
			return -1;
		ipc_put_str(reply, IPC_STATUS, "ok");
		(void)qmgr_dest_list(q, reply, QMGR_DEST_LIST, time(NULL));
		return 0;
	}
	/* a newer heraldctl may know requests this qmgr does not */
	ipc_put_str(reply, IPC_STATUS, "fail");
	ipc_put_str(reply, IPC_REASON, "unknown request");
	return 0;
}

/* qmgr_ctl_watch - watch for what the client needs next */
static int
qmgr_ctl_watch(struct qmgr *q, struct qmgr_client *c)
{
	unsigned ev = 0;

	if (c->out.len < QMGR_CLIENT_OUTPUT)
		ev |= EV_READ;
	if (c->out.len > 0)
		ev |= EV_WRITE;
	if (ev == c->events)
		return 0;
	c->events = ev;
	return evloop_mod_fd(q->loop, c->fd, ev);
}

/* qmgr_ctl_flush - write queued replies; -1 if the connection broke */
static int
qmgr_ctl_flush(struct qmgr_client *c)
{
	while (c->out.len > 0) {
		ssize_t n = send(c->fd, c->out.data, c->out.len,
		    MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0)
			return -1;
		buf_consume(&c->out, (size_t)n);
	}
	return 0;
}

/* qmgr_ctl_event - a client connection is readable or writable */
static void
qmgr_ctl_event(struct evloop *loop, int fd, unsigned events, void *ctx)
{
	struct qmgr_client *c = ctx;
	struct qmgr *q = &qmgr;
	struct buf why = BUF_INIT;
	struct ipc_msg req, reply;
	char chunk[4096];
	ssize_t n;
	int r;

	if ((events & EV_WRITE) && qmgr_ctl_flush(c) < 0) {
		qmgr_ctl_close(q, c);
		return;
	}
	if ((events & EV_READ) == 0 || c->out.len >= QMGR_CLIENT_OUTPUT)
		goto watch;
	do {
		n = recv(fd, chunk, sizeof(chunk), MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		goto watch;
	if (n <= 0) {
		if (c->in.len > 0)
			msg_warn("qmgr client closed in mid-frame");
		qmgr_ctl_close(q, c);
		return;
	}
	buf_append(&c->in, chunk, (size_t)n);
	ipc_msg_init(&req);
	ipc_msg_init(&reply);
	while ((r = ipc_frame_take(&c->in, &req, &why)) > 0) {
		ipc_msg_reset(&reply);
		if (qmgr_ctl_request(q, &req, &reply, &why) < 0) {
			r = -1;
			break;
		}
		if (reply.body.len > 0)
			ipc_frame_encode(&reply, &c->out);
	}
	ipc_msg_free(&req);
	ipc_msg_free(&reply);
	if (r == 0 && c->in.len >= QMGR_CLIENT_INPUT) {
		buf_puts(&why, "frame larger than the input buffer");
		r = -1;
	}
	if (r < 0) {
		msg_warn("qmgr client: %s: dropping the connection",
		    buf_cstr(&why));
		buf_free(&why);
		qmgr_ctl_close(q, c);
		return;
	}
	if (qmgr_ctl_flush(c) < 0) {
		qmgr_ctl_close(q, c);
		return;
	}
watch:
	buf_free(&why);
	if (qmgr_ctl_watch(q, c) < 0) {
		msg_warn("qmgr client: epoll: %m");
		qmgr_ctl_close(q, c);
	}
}

/* qmgr_ctl_stop - close every client connection */
void
qmgr_ctl_stop(struct qmgr *q)
{
	while (q->clients != NULL)
		qmgr_ctl_close(q, q->clients);
}
