/*
 * pop3d_session - one POP3 session: its life from accept to close, the
 * input loop, replies, error and resource limits, STLS and implicit TLS,
 * timeouts, graceful stop, and the connect/logout/disconnect log lines.
 *
 * A session is fed by its stream's events and takes its input as lines
 * (stream_get_line, bounded by POP3D_LINE_MAX; ordinary commands are held
 * to POP3D_CMD_MAX by the dispatcher). Input is paused while a login is
 * with authd (pipelined commands wait for its answer), while a maildrop
 * thread opens or updates the maildrop (pop3d_maildrop.c), while a multi-line
 * reply is being produced, and while more than POP3D_OUTPUT_HIGH bytes of
 * replies are unsent, so a client that pipelines without reading cannot
 * grow our memory.
 *
 * Input is bounded in bytes too: before login in total
 * (pop3d_preauth_input_limit), and everywhere between two line feeds
 * (SESSION_RUNAWAY_MAX: the line reader skips an over-long line to its
 * LF, which a client may never send); over either the session ends.
 *
 * The connection, the worker's list of sessions, the rule for freeing
 * and the limits at accept (checked before a TLS handshake starts) are
 * the shared session base (lib/mail/session.c).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "base/evloop.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/stream.h"
#include "mail/auth_client.h"
#include "mail/params.h"
#include "mail/sasl.h"
#include "mail/service.h"
#include "pop3d.h"

#define POP3D_MAX_INPUT (16 * 1024)	/* stream input buffer bound */
#define POP3D_SESSION_FDS 3	/* connection, maildrop lock, a message */


SSL_CTX *pop3d_tls_ctx;		/* set by pop3d.c before the drop */

static struct session_pool pop3d_sessions;

SESSION_BASE_FIRST(struct pop3d_session);

/* pop3d_session_init - remember the service and its loop */
void
pop3d_session_init(struct service *svc)
{
	session_pool_init(&pop3d_sessions, svc, service_loop(svc));
	pop3d_maildrop_init(service_loop(svc));
}

/* pop3d_session_reply - queue one reply line (CRLF is added; none once
 * the session is finishing) */
void
pop3d_session_reply(struct pop3d_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	session_vreply(&s->base, fmt, ap);
	va_end(ap);
}

/*
 * pop3d_session_error - a reply that counts as a client error; when
 * pop3d_error_limit is reached the session ends right after this reply
 * (the client is broken or probing us).
 */
void
pop3d_session_error(struct pop3d_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	session_vreply(&s->base, fmt, ap);
	va_end(ap);
	if (session_count_error(&s->base, var_pop3d_error_limit))
		pop3d_session_finish(s, "too many errors");
}

/* pop3d_session_finish - flush the replies, then close */
void
pop3d_session_finish(struct pop3d_session *s, const char *reason)
{
	if (s->state == POP3D_S_QUIT || s->base.closed)
		return;
	pop3d_auth_abort(s);
	pop3d_send_abort(s);
	s->state = POP3D_S_QUIT;
	(void)session_finish(&s->base, reason);
}

/* pop3d_session_starttls - STLS: forget the USER name, start TLS */
void
pop3d_session_starttls(struct pop3d_session *s)
{
	buf_reset(&s->user);
	s->state = POP3D_S_TLS;
	/* Plaintext pipelined behind STLS is thrown away here. */
	stream_starttls(s->base.stream, pop3d_tls_ctx, true, NULL);
}

/* pop3d_session_drained - the client read our replies: go on */
static void
pop3d_session_drained(struct session *base)
{
	struct pop3d_session *s = (struct pop3d_session *)base;

	if (!s->base.closed && s->state == POP3D_S_SEND)
		pop3d_send_pump(s);
}

/* pop3d_session_backlog - too much output queued? then pause until the
 * stream says it went out (STREAM_DRAINED) */
bool
pop3d_session_backlog(struct pop3d_session *s)
{
	return s->state != POP3D_S_QUIT && session_backlog(&s->base,
	    POP3D_OUTPUT_HIGH, POP3D_OUTPUT_LOW, POP3D_PAUSE_OUTPUT);
}

/* pop3d_session_flood - has the client sent more than we take without a
 * login, or without a line feed? Then say so and end the session. */
static bool
pop3d_session_flood(struct pop3d_session *s)
{
	const char *what;

	if (s->md == NULL && stream_input_bytes(s->base.stream) >
	    (unsigned long long)var_pop3d_preauth_input_limit)
		what = "too much input before login";
	else if (session_runaway(&s->base))
		what = "too much input without a line end";
	else
		return false;
	msg_warn("%s from [%s] (%llu bytes): disconnecting", what,
	    s->base.peer.addr, stream_input_bytes(s->base.stream));
	if (s->state == POP3D_S_SASL)
		sasl_wipe(&s->sasl);
	s->base.last_cmd = session_cmd(&s->base);
	pop3d_session_reply(s, "-ERR Too much input");
	pop3d_session_finish(s, what);
	return true;
}

/* pop3d_session_input - run buffered command lines, in order */
static void
pop3d_session_input(struct session *base)
{
	struct pop3d_session *s = (struct pop3d_session *)base;
	const char *line;
	size_t len;
	bool crlf;
	int r;

	while (!s->base.closed && s->base.pause == 0 &&
	    (s->state & (POP3D_S_CMD | POP3D_S_SASL))) {
		if (pop3d_session_flood(s))
			break;
		r = stream_get_line(s->base.stream, &line, &len, &crlf);
		if (r == 0) {
			/* a part line, maybe the skipped rest of a long one */
			(void)pop3d_session_flood(s);
			break;
		}
		if (r < 0) {
			if (s->state == POP3D_S_SASL) {
				sasl_wipe(&s->sasl);
				s->state = POP3D_S_AUTH;
			}
			s->base.last_cmd = "UNKNOWN";
			pop3d_session_error(s, "-ERR Line too long");
		} else {
			/* The line is valid only until the next stream
			 * call: run a copy. */
			buf_reset(&s->line);
			buf_append(&s->line, line, len);
			if (s->state == POP3D_S_SASL)
				pop3d_auth_sasl_line(s, s->line.data,
				    s->line.len);
			else
				pop3d_cmd_dispatch(s, s->line.data,
				    s->line.len);
			/* it may have held a password */
			explicit_bzero(s->line.data, s->line.cap ?
			    s->line.cap : 0);
			buf_reset(&s->line);
		}
		if (pop3d_session_backlog(s))
			break;
	}
}

/* pop3d_session_greet - the greeting */
static void
pop3d_session_greet(struct pop3d_session *s)
{
	s->state = POP3D_S_AUTH;
	/* no APOP: no timestamp in the greeting (RFC 1939 7) */
	pop3d_session_reply(s, "+OK herald POP3 ready");
}

/* pop3d_session_tls_ready - the handshake finished */
static void
pop3d_session_tls_ready(struct session *base)
{
	struct pop3d_session *s = (struct pop3d_session *)base;

	session_log_tls(base);
	if (s->implicit_tls) {
		pop3d_session_greet(s);
	} else {
		/* RFC 2595 4: start over in AUTHORIZATION, knowing nothing */
		buf_reset(&s->user);
		s->state = POP3D_S_AUTH;
	}
	pop3d_session_input(base);
}

/*
 * pop3d_session_timeout - idle or session deadline passed. POP3 has no
 * standard unsolicited reply; like IMAP's BYE we send one -ERR line
 * ("-ERR Disconnected for inactivity.") before closing, which a client
 * reads as the answer to its next command. In the middle of a
 * multi-line reply or a TLS handshake nothing can be said: just close.
 */
static void
pop3d_session_timeout(struct session *base)
{
	struct pop3d_session *s = (struct pop3d_session *)base;
	bool total;

	if (s->base.closed || s->state == POP3D_S_QUIT)
		return;
	total = var_pop3d_session_timeout * 1000 <=
	    evloop_now_ms(pop3d_sessions.loop) - s->start_ms;
	msg_info("%s after %s from [%s]",
	    total ? "session time limit" : "idle timeout",
	    session_cmd(&s->base), s->base.peer.addr);
	if (s->state != POP3D_S_TLS && s->state != POP3D_S_SEND)
		pop3d_session_reply(s, total ?
		    "-ERR Session time limit reached." :
		    "-ERR Disconnected for inactivity.");
	pop3d_session_finish(s, total ? "session time limit" : "idle timeout");
}

/* pop3d_session_log_end - the logout (if logged in) and disconnect lines */
static void
pop3d_session_log_end(struct pop3d_session *s)
{
	if (s->md != NULL) {
		/* no QUIT: the connection went away, UPDATE did not run */
		msg_info("logout: user=<%s> top=%u retr=%u del=0/%zu "
		    "size=%lld (no QUIT: nothing deleted)",
		    buf_cstr(&s->login), s->n_top, s->n_retr, s->md->n,
		    s->md->total);
	}
	session_log_end(&s->base);
}

/* pop3d_session_end - the end of a session: its log lines, its memory */
static void
pop3d_session_end(struct session *base)
{
	struct pop3d_session *s = (struct pop3d_session *)base;

	pop3d_session_log_end(s);
	pop3d_auth_abort(s);
	pop3d_send_abort(s);
	pop3d_maildrop_close(&s->md);
	buf_free(&s->user);
	buf_free(&s->login);
	buf_free(&s->scratch);
	buf_free(&s->line);
}

/* pop3d_session_held - a maildrop thread still has work of ours (the
 * session has closed: a login's job no thread has started is dropped,
 * its done comes soon) */
static bool
pop3d_session_held(const struct session *base)
{
	const struct pop3d_session *s = (const struct pop3d_session *)base;

	if (s->job != NULL)
		pop3d_maildrop_cancel(s);
	return s->job != NULL;
}

static const struct session_ops pop3d_session_ops = {
	.input = pop3d_session_input,
	.tls_ready = pop3d_session_tls_ready,
	.timeout = pop3d_session_timeout,
	.drained = pop3d_session_drained,
	.held = pop3d_session_held,
	.end = pop3d_session_end,
};

/*
 * pop3d_session_admit - the limits, before anything is made for fd: over
 * one, the connection gets its -ERR in plaintext (on pop3s nothing) and
 * is closed (session_check). True: serve it with peer.
 */
static bool
pop3d_session_admit(int fd, bool implicit_tls, struct peer *peer)
{
	struct session_admit a;

	a.max_sessions = var_pop3d_max_sessions;
	a.session_fds = POP3D_SESSION_FDS;
	a.client_limit = var_pop3d_client_limit;
	return session_check(&pop3d_sessions, fd, &a, implicit_tls, "pop3s",
	    "-ERR [SYS/TEMP] Server busy: too many sessions",
	    "-ERR [SYS/TEMP] Too many connections from your address", peer);
}

/* pop3d_session_accept - a new connection: limits, TLS, greeting */
void
pop3d_session_accept(struct service *svc, int fd, bool implicit_tls)
{
	struct pop3d_session *s;
	struct stream_limits lim;
	struct peer peer;

	(void)svc;
	if (!pop3d_session_admit(fd, implicit_tls, &peer))
		return;
	memset(&lim, 0, sizeof(lim));
	lim.max_line = POP3D_LINE_MAX;
	lim.max_input = POP3D_MAX_INPUT;
	lim.idle_ms = var_pop3d_idle_timeout * 1000;
	lim.total_ms = var_pop3d_session_timeout * 1000;
	s = xcalloc(1, sizeof(*s));
	session_open_peer(&pop3d_sessions, &s->base, &pop3d_session_ops, fd,
	    &lim, &peer);
	s->implicit_tls = implicit_tls;
	s->send.fd = -1;
	buf_init(&s->user);
	buf_init(&s->login);
	buf_init(&s->scratch);
	buf_init(&s->line);
	s->start_ms = evloop_now_ms(pop3d_sessions.loop);
	msg_info("connect from [%s]%s", s->base.peer.addr, implicit_tls ?
	    " (pop3s)" : "");

	if (implicit_tls && pop3d_tls_ctx == NULL) {
		/* warned at start; nothing can be said on a TLS port */
		pop3d_session_finish(s, "no TLS certificate for pop3s");
	} else if (implicit_tls) {
		s->state = POP3D_S_TLS;
		stream_starttls(s->base.stream, pop3d_tls_ctx, true, NULL);
	} else {
		pop3d_session_greet(s);
	}
	session_leave(&s->base);
}

/*
 * pop3d_session_stop - graceful stop (SIGTERM; a reload retires the
 * worker with SIGUSR1 instead, which leaves the sessions alone). A
 * session that is sending a message finishes that reply first; every
 * other one gets "-ERR [SYS/TEMP] Server shutting down" and is closed.
 * Nothing is deleted: there is no UPDATE state without the client's QUIT.
 */
void
pop3d_session_stop(struct service *svc)
{
	struct session *b, *next;

	for (b = pop3d_sessions.head; b != NULL; b = next) {
		struct pop3d_session *s = (struct pop3d_session *)b;

		next = b->next;
		if (s->base.closed || s->state == POP3D_S_QUIT)
			continue;
		s->base.depth++;
		if (s->job != NULL) {
			/* the job's end says goodbye (pop3d_auth_opened,
			 * pop3d_cmd_updated) */
			s->stop_after_job = true;
		} else if (s->state == POP3D_S_SEND) {
			s->stop_after_send = true;
		} else if (s->state == POP3D_S_TLS) {
			pop3d_session_finish(s, "shutdown");
		} else {
			pop3d_auth_abort(s);
			pop3d_session_reply(s,
			    "-ERR [SYS/TEMP] Server shutting down");
			pop3d_session_finish(s, "shutdown");
		}
		session_leave(&s->base);
	}
}
