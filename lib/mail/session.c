/*
 * session - the life of a line-protocol session, shared by the protocol
 * servers (see session.h): open, the stream's events, input pauses,
 * output backlog, error count, finish and its log line, and the one place
 * that frees a session.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/evloop.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "base/stream.h"
#include "mail/params.h"
#include "mail/sasl.h"
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

/* session_admit - check a new connection before anything is made */
enum session_verdict
session_admit(const struct session_pool *p, int fd,
    const struct session_admit *a, struct peer *peer)
{
	peer_open(peer, fd);
	if (p->n >= a->max_sessions || !service_fd_room(p->n,
	    a->session_fds))
		return SESSION_BUSY;
	if ((long long)peer_sessions(peer) > a->client_limit)
		return SESSION_CLIENT;
	return SESSION_ADMIT;
}

/* session_refuse - one plaintext line (or none), then close */
void
session_refuse(int fd, struct peer *peer, const char *fmt, ...)
{
	char line[STREAM_REPLY_MAX];
	va_list ap;
	int n;

	if (fmt != NULL) {
		va_start(ap, fmt);
		n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
		va_end(ap);
		if (n < 0)
			n = 0;
		if ((size_t)n > sizeof(line) - 3)
			n = (int)sizeof(line) - 3;
		memcpy(line + n, "\r\n", 2);
		/* Best effort: a new socket's buffer takes one line. */
		if (send(fd, line, (size_t)n + 2, MSG_DONTWAIT |
		    MSG_NOSIGNAL) < 0 && errno != EAGAIN &&
		    errno != EWOULDBLOCK)
			msg_debug("refusal to [%s]: %m", peer->addr);
		(void)shutdown(fd, SHUT_WR);
	}
	peer_close(peer);
	if (close(fd) < 0)
		msg_warn("close refused connection: %m");
}

/* session_check - session_admit; over a limit, log and refuse */
bool
session_check(const struct session_pool *p, int fd,
    const struct session_admit *a, bool implicit_tls, const char *tls_name,
    const char *busy, const char *client, struct peer *peer)
{
	const char *reject;

	switch (session_admit(p, fd, a, peer)) {
	case SESSION_ADMIT:
		return true;
	case SESSION_BUSY:
		reject = busy;
		break;
	default:
		reject = client;
		break;
	}
	msg_info("connect from [%s]%s%s%s", peer->addr, implicit_tls ?
	    " (" : "", implicit_tls ? tls_name : "", implicit_tls ? ")" : "");
	msg_warn("rejecting [%s]: %s (limits: %lld sessions per worker, "
	    "%lld per client)", peer->addr, reject, a->max_sessions,
	    a->client_limit);
	msg_info("disconnect from [%s] (rejected)", peer->addr);
	if (implicit_tls)
		session_refuse(fd, peer, NULL);
	else
		session_refuse(fd, peer, "%s", reject);
	return false;
}

/* session_open - start s on connection fd; returns at depth 1 */
void
session_open(struct session_pool *p, struct session *s,
    const struct session_ops *ops, int fd, const struct stream_limits *lim)
{
	struct peer peer;

	peer_open(&peer, fd);
	session_open_peer(p, s, ops, fd, lim, &peer);
}

/* session_open_peer - start s on an admitted connection; depth 1 */
void
session_open_peer(struct session_pool *p, struct session *s,
    const struct session_ops *ops, int fd, const struct stream_limits *lim,
    const struct peer *peer)
{
	s->ops = ops;
	s->pool = p;
	s->peer = *peer;
	s->stream = stream_new(p->loop, fd, lim, session_event, s);
	/* STARTTLS or implicit TLS: a handshake gets seconds, not the
	 * idle timeout (0 before the settings are read: none) */
	stream_set_handshake_timeout(s->stream,
	    var_tls_handshake_timeout * 1000);
	s->next = p->head;
	if (p->head != NULL)
		p->head->prev = s;
	p->head = s;
	p->n++;
	if (p->svc != NULL)
		service_session_begin(p->svc);
	s->depth = 1;
}

/* session_runaway - too much input without a line feed? */
bool
session_runaway(const struct session *s)
{
	return !s->closed &&
	    stream_partial_bytes(s->stream) > SESSION_RUNAWAY_MAX;
}

/* session_vreply - queue one reply line unless closed or finishing */
void
session_vreply(struct session *s, const char *fmt, va_list ap)
{
	if (!s->closed && !s->finishing)
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

/* session_plaintext_ok - may a password cross this connection? */
bool
session_plaintext_ok(const struct session *s)
{
	return sasl_plaintext_rule(var_auth_plaintext,
	    stream_is_tls(s->stream), s->peer.loopback);
}

/* session_auth_start - ask authd about user and password; input paused */
struct auth_call *
session_auth_start(struct session *s, unsigned bit, const char *service,
    const char *user, const char *password, auth_done_fn *done, void *ctx)
{
	struct auth_request req = {
		.user = user,
		.password = password,
		.client = s->peer.addr,
		.service = service,
	};
	struct auth_call *c;

	session_set_pause(s, bit, true);
	c = auth_client_start(s->pool->loop, &req, done, ctx);
	/* its input is paused, so only auth_client can tell a hang-up */
	auth_client_watch(c, stream_fd(s->stream));
	return c;
}

/* session_auth_log - the log line of a login authd did not accept */
void
session_auth_log(const struct session *s, const struct auth_reply *reply,
    const char *user, const char *method)
{
	struct buf name = BUF_INIT;

	if (reply->result == AUTH_OK)
		return;
	str_printable(&name, user, strlen(user), 100);
	switch (reply->result) {
	case AUTH_FAIL:
		msg_info("authentication failed: user=<%s> client=[%s] "
		    "method=%s", buf_cstr(&name), s->peer.addr, method);
		break;
	case AUTH_LOCKED:
		msg_info("authentication refused: user=<%s> client=[%s] "
		    "method=%s: locked out", buf_cstr(&name), s->peer.addr,
		    method);
		break;
	case AUTH_TEMPFAIL:
	default:
		msg_warn("authentication temporarily failed: user=<%s> "
		    "client=[%s]: %s", buf_cstr(&name), s->peer.addr,
		    reply->reason[0] ? reply->reason :
		    "authd did not answer");
		break;
	}
	buf_free(&name);
}

/* session_cmd - the last command's name, "CONNECT" before one */
const char *
session_cmd(const struct session *s)
{
	return s->last_cmd != NULL ? s->last_cmd : "CONNECT";
}

/* session_count_error - count a client error; true at the limit */
bool
session_count_error(struct session *s, long long limit)
{
	if (++s->errors < limit || s->finishing || s->closed)
		return false;
	msg_info("too many errors after %s from [%s]", session_cmd(s),
	    s->peer.addr);
	return true;
}

/* session_finish - flush, then close; the first reason is logged */
bool
session_finish(struct session *s, const char *reason)
{
	if (s->finishing || s->closed)
		return false;
	if (s->end_reason == NULL)
		s->end_reason = reason;
	s->finishing = true;
	stream_finish(s->stream);
	return true;
}

/* session_log_end - "disconnect from [ip] (reason)" */
void
session_log_end(const struct session *s)
{
	const char *reason = s->end_reason;

	if (reason == NULL) {
		reason = stream_close_reason(s->stream);
		if (reason == NULL || *reason == '\0' ||
		    strcmp(reason, "eof") == 0)
			reason = "connection closed by client";
	}
	msg_info("disconnect from [%s] (%s)", s->peer.addr, reason);
}
