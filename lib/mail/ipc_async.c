/*
 * ipc_async - one request/reply exchange on a UNIX socket from an event
 * loop (see ipc_async.h).
 */
#include <errno.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/evloop.h"
#include "base/mem.h"
#include "base/sock.h"
#include "mail/ipc.h"
#include "mail/ipc_async.h"

/* one call in flight */
struct ipc_async {
	struct evloop *loop;
	int fd;
	struct buf out; /* the framed request not yet written */
	struct buf in;  /* reply bytes (bounded) */
	struct ev_timer *deadline;
	const char *peer; /* "the signer" */
	ipc_async_fn *done;
	void *ctx;
};

/* ipc_async_free - close and free a call */
static void
ipc_async_free(struct ipc_async **cp)
{
	struct ipc_async *c = *cp;

	if (c == NULL)
		return;
	if (c->deadline != NULL)
		evloop_cancel_timer(c->loop, &c->deadline);
	if (c->fd >= 0) {
		evloop_del_fd(c->loop, c->fd);
		(void)close(c->fd);
	}
	buf_free(&c->out);
	buf_free(&c->in);
	x_free(cp);
}

/* ipc_async_cancel - drop a call without calling done */
void
ipc_async_cancel(struct ipc_async **cp)
{
	ipc_async_free(cp);
}

/* ipc_async_end - free the call, then tell its owner */
static void
ipc_async_end(
    struct ipc_async *c, int r, const struct ipc_msg *m, const char *why)
{
	ipc_async_fn *done = c->done;
	void *ctx = c->ctx;

	ipc_async_free(&c);
	done(ctx, r, m, why);
}

/* ipc_async_fail - end with a text about the peer */
static void
ipc_async_fail(struct ipc_async *c, const struct buf *why)
{
	struct buf text = BUF_INIT;

	buf_append(&text, why->data, why->len);
	ipc_async_end(c, -1, NULL, buf_cstr(&text));
	buf_free(&text);
}

/* ipc_async_io - write the request, then read the reply */
static void
ipc_async_io(struct evloop *loop, int fd, unsigned events, void *ctx)
{
	struct ipc_async *c = ctx;
	struct buf why = BUF_INIT, err = BUF_INIT;
	struct ipc_msg m;
	char chunk[4096];
	ssize_t n;
	int r;

	(void)events;
	if (c->out.len > 0) {
		n = write(fd, c->out.data, c->out.len);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n < 0) {
			buf_printf(&why, "write to %s: %m", c->peer);
			ipc_async_fail(c, &why);
			buf_free(&why);
			return;
		}
		buf_consume(&c->out, (size_t)n);
		if (c->out.len == 0 && evloop_mod_fd(loop, fd, EV_READ) < 0) {
			buf_printf(&why, "cannot watch %s", c->peer);
			ipc_async_fail(c, &why);
			buf_free(&why);
		}
		return;
	}
	n = read(fd, chunk, sizeof(chunk));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		if (n < 0)
			buf_printf(&why, "read from %s: %m", c->peer);
		else
			buf_printf(&why,
			    "%s closed the connection without "
			    "a reply",
			    c->peer);
		ipc_async_fail(c, &why);
		buf_free(&why);
		return;
	}
	buf_append(&c->in, chunk, (size_t)n);
	ipc_msg_init(&m);
	r = ipc_frame_take(&c->in, &m, &err);
	if (r < 0) {
		buf_printf(
		    &why, "bad reply from %s: %s", c->peer, buf_cstr(&err));
		ipc_async_fail(c, &why);
	} else if (r == 1) {
		ipc_async_end(c, 1, &m, "");
	} else if (c->in.len > IPC_MAX_FRAME + 4) {
		buf_printf(&why, "bad reply from %s: too long", c->peer);
		ipc_async_fail(c, &why);
	}
	ipc_msg_free(&m);
	buf_free(&why);
	buf_free(&err);
}

/* ipc_async_timeout - no reply in time */
static long long
ipc_async_timeout(struct evloop *loop, void *ctx)
{
	struct ipc_async *c = ctx;
	struct buf why = BUF_INIT;

	(void)loop;
	c->deadline = NULL; /* freed by the loop when we return */
	buf_printf(&why, "%s did not answer in time", c->peer);
	ipc_async_fail(c, &why);
	buf_free(&why);
	return -1;
}

/* ipc_async_start - connect, then send and read from the loop */
struct ipc_async *
ipc_async_start(struct evloop *loop, const char *path,
    const struct ipc_msg *req, int timeout_ms, const char *peer,
    ipc_async_fn *done, void *ctx, struct buf *why)
{
	struct ipc_async *c = xcalloc(1, sizeof(*c));

	c->loop = loop;
	c->peer = peer;
	c->done = done;
	c->ctx = ctx;
	buf_init(&c->out);
	buf_init(&c->in);
	c->fd = sock_connect_unix(path, true, why);
	if (c->fd < 0 ||
	    evloop_add_fd(loop, c->fd, EV_WRITE, ipc_async_io, c) < 0) {
		if (c->fd >= 0) {
			buf_printf(
			    why, "cannot watch the connection to %s", peer);
			(void)close(c->fd);
		}
		c->fd = -1;
		ipc_async_free(&c);
		return NULL;
	}
	ipc_frame_encode(req, &c->out);
	c->deadline = evloop_add_timer(loop, timeout_ms, ipc_async_timeout, c);
	return c;
}
