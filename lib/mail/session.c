/*
 * session - the life of a line-protocol session, shared by the protocol
 * servers (see session.h): open, the stream's events, input pauses,
 * output backlog, and the one place that frees a session.
 */
#include <stdarg.h>
#include <string.h>

#include "base/buf.h"
#include "base/evloop.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/stream.h"
#include "mail/service.h"
#include "mail/session.h"

/* session_pool_init - an empty pool on loop, counted in svc */
void
session_pool_init(struct session_pool *p, struct service *svc,
    struct evloop *loop)
{
	memset(p, 0, sizeof(*p));
	p->svc = svc;
	p->loop = loop;
}

/* session_free - the end: the protocol's part, then ours */
static void
session_free(struct session *s)
{
	struct session_pool *p = s->pool;

	s->ops->end(s);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		p->head = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	p->n--;
	peer_close(&s->peer);
	stream_free(&s->stream);
	if (p->svc != NULL)
		service_session_end(p->svc);
	x_free(&s);		/* the protocol's struct: s is its start */
}

/* session_leave - end of one level of callbacks; may free s */
void
session_leave(struct session *s)
{
	if (--s->depth > 0)
		return;
	if (s->closed && (s->ops->held == NULL || !s->ops->held(s)))
		session_free(s);
}

/* session_event - the stream's callback */
static void
session_event(struct stream *st, enum stream_event ev, void *ctx)
{
	struct session *s = ctx;
	const struct session_ops *ops = s->ops;

	(void)st;
	s->depth++;
	switch (ev) {
	case STREAM_INPUT:
		if (ops->input != NULL)
			ops->input(s);
		break;
	case STREAM_TLS_READY:
		if (ops->tls_ready != NULL)
			ops->tls_ready(s);
		break;
	case STREAM_TIMEOUT:
		if (ops->timeout != NULL)
			ops->timeout(s);
		break;
	case STREAM_DRAINED:
		session_set_pause(s, s->drain_bit, false);
		if (ops->drained != NULL)
			ops->drained(s);
		break;
	case STREAM_CLOSED:
		s->closed = true;
		break;
	}
	session_leave(s);
}

/* session_open - start s on connection fd; returns at depth 1 */
void
session_open(struct session_pool *p, struct session *s,
    const struct session_ops *ops, int fd, const struct stream_limits *lim)
{
	s->ops = ops;
	s->pool = p;
	peer_open(&s->peer, fd);
	s->stream = stream_new(p->loop, fd, lim, session_event, s);
	s->next = p->head;
	if (p->head != NULL)
		p->head->prev = s;
	p->head = s;
	p->n++;
	if (p->svc != NULL)
		service_session_begin(p->svc);
	s->depth = 1;
}

/* session_vreply - queue one reply line unless the stream has closed */
void
session_vreply(struct session *s, const char *fmt, va_list ap)
{
	if (!s->closed)
		stream_vreply(s->stream, s->peer.addr, fmt, ap);
}

/* session_set_pause - set or clear one reason to stop reading */
void
session_set_pause(struct session *s, unsigned bit, bool on)
{
	unsigned old = s->pause;

	if (on)
		s->pause |= bit;
	else
		s->pause &= ~bit;
	if ((old != 0) != (s->pause != 0) && !s->closed)
		stream_pause(s->stream, s->pause != 0);
}

/* session_backlog - pause input for bit while output piles up */
bool
session_backlog(struct session *s, size_t high, size_t low, unsigned bit)
{
	if (s->closed || stream_output_pending(s->stream) <= high)
		return false;
	s->drain_bit = bit;
	session_set_pause(s, bit, true);
	stream_notify_drained(s->stream, low);
	return true;
}

/* session_log_tls - "TLS connection established from [ip]: ..." */
void
session_log_tls(struct session *s)
{
	struct buf info = BUF_INIT;

	stream_tls_info(s->stream, &info);
	msg_info("TLS connection established from [%s]: %s", s->peer.addr,
	    buf_cstr(&info));
	buf_free(&info);
}
