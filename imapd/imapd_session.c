/*
 * imapd_session - one IMAP session: its life from accept to close, the
 * input loop that feeds the command parser, responses, error and
 * resource limits, STARTTLS and implicit TLS, timeouts, graceful stop,
 * and the connect/login/disconnect log lines.
 *
 * Input is taken as raw bytes (stream_peek) and fed to the session's
 * imap_parser, which says when a command is complete, when a
 * synchronizing literal wants its "+" continuation, and when a command
 * went over a bound (imap_parse.h); the bytes it took are consumed, so a
 * command split anywhere, or a literal in pieces, is scanned once. Input
 * is paused while a login is with authd (pipelined commands wait for its
 * answer) and while more than IMAPD_OUTPUT_HIGH bytes of responses are
 * unsent, so a client that pipelines without reading cannot grow our
 * memory and stops only its own session (when the output has drained,
 * the session base lifts that pause and the stream delivers the input
 * that waited).
 *
 * Bytes before login are bounded in total (imapd_preauth_input_limit),
 * commands before login in number (imapd_command_limit), errors in
 * number (imapd_error_limit); over any of them the session gets BYE.
 * Before login a silent client has imapd_preauth_timeout, after it
 * imapd_idle_timeout (RFC 9051 5.4: at least 30 minutes).
 *
 * The connection, the worker's list of sessions, the rule for freeing
 * and the limits at accept (checked before a TLS handshake starts) are
 * the shared session base (lib/mail/session.c).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "base/buf.h"
#include "base/evloop.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/stream.h"
#include "mail/auth_client.h"
#include "mail/params.h"
#include "mail/sasl.h"
#include "mail/service.h"
#include "imapd.h"
#include "imapd_sel.h"
#include "imapd_store.h"

#define IMAPD_MAX_INPUT (16 * 1024)	/* stream input buffer bound */
#define IMAPD_SESSION_FDS 1	/* the connection */

SSL_CTX *imapd_tls_ctx;		/* set by imapd.c before the drop */

static struct session_pool imapd_sessions;

SESSION_BASE_FIRST(struct imapd_session);

/* imapd_session_init - remember the service and its loop */
void
imapd_session_init(struct service *svc)
{
	session_pool_init(&imapd_sessions, svc, service_loop(svc));
	/* imapd_max_sessions (10,000 by default) sessions of one worker
	 * need that many descriptors: warn at start if they cannot */
	(void)service_nofile(var_imapd_max_sessions * IMAPD_SESSION_FDS,
	    "imapd_max_sessions");
}

/* imapd_session_reply - queue one response line (CRLF is added; none
 * once the session is finishing) */
void
imapd_session_reply(struct imapd_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	session_vreply(&s->base, fmt, ap);
	va_end(ap);
}

/* imapd_session_vtagged - "<tag> " and the text */
static void imapd_session_vtagged(struct imapd_session *, const char *,
    va_list) __attribute__((format(printf, 2, 0)));

static void
imapd_session_vtagged(struct imapd_session *s, const char *fmt, va_list ap)
{
	struct buf line = BUF_INIT;
	size_t text;

	buf_printf(&line, "%s ", s->tag.len ? buf_cstr(&s->tag) : "*");
	text = line.len;
	buf_vprintf(&line, fmt, ap);
	imapd_session_reply(s, "%s", buf_cstr(&line));
	/*
	 * After login the limit is on errors in a row, as Dovecot's: a
	 * client (or a conformance suite) that mixes failing and good
	 * commands keeps its session, one that only fails does not. Before
	 * login every error counts. The answer as sent decides, not fmt:
	 * answers made by a job come as "%s".
	 */
	if ((s->state & IMAPD_S_LOGGED) != 0 &&
	    strncmp(line.data + text, "OK", 2) == 0)
		s->base.errors = 0;
	buf_free(&line);
}

/* imapd_session_tagged - the tagged answer of the current command */
void
imapd_session_tagged(struct imapd_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	imapd_session_vtagged(s, fmt, ap);
	va_end(ap);
}

/*
 * imapd_session_bad - a tagged answer that counts as a client error;
 * when imapd_error_limit is reached the session gets BYE right after it
 * (the client is broken or probing us).
 */
void
imapd_session_bad(struct imapd_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	imapd_session_vtagged(s, fmt, ap);
	va_end(ap);
	if (session_count_error(&s->base, var_imapd_error_limit)) {
		imapd_session_reply(s, "* BYE Too many errors");
		imapd_session_finish(s, "too many errors");
	}
}

/* imapd_session_finish - flush the responses, then close */
void
imapd_session_finish(struct imapd_session *s, const char *reason)
{
	if (s->state == IMAPD_S_LOGOUT || s->base.closed)
		return;
	imapd_auth_abort(s);
	s->state = IMAPD_S_LOGOUT;
	(void)session_finish(&s->base, reason);
}

/* imapd_session_bounds - the parser's bounds for the session's state */
static void
imapd_session_bounds(struct imapd_session *s)
{
	struct imap_parser *p = &s->parser;

	if (s->state & IMAPD_S_LOGGED) {
		p->line_max = IMAPD_LINE_MAX;
		p->cmd_max = IMAPD_CMD_MAX;
		p->literal_max = (unsigned long long)var_imapd_literal_limit;
		p->discard_max = IMAPD_DISCARD_MAX;
	} else {
		p->line_max = IMAPD_PRE_LINE_MAX;
		p->cmd_max = IMAPD_PRE_CMD_MAX;
		p->literal_max = IMAPD_PRE_LITERAL_MAX;
		p->discard_max = 0;
	}
}

/* imapd_session_logged_in - the authenticated state begins */
void
imapd_session_logged_in(struct imapd_session *s)
{
	s->state = IMAPD_S_AUTH;
	s->base.errors = 0;
	imapd_session_bounds(s);
	stream_set_idle_timeout(s->base.stream, var_imapd_idle_timeout * 1000);
}

/* imapd_session_starttls - STARTTLS: start the handshake */
void
imapd_session_starttls(struct imapd_session *s)
{
	s->state = IMAPD_S_TLS;
	/* Plaintext pipelined behind STARTTLS is thrown away: the parser's
	 * partial command here, the stream's buffer there. */
	imap_parser_reset(&s->parser);
	stream_starttls(s->base.stream, imapd_tls_ctx, true, NULL);
}

/* imapd_session_backlog - too much output queued? then pause until the
 * stream says it went out */
static bool
imapd_session_backlog(struct imapd_session *s)
{
	return s->state != IMAPD_S_LOGOUT && session_backlog(&s->base,
	    IMAPD_OUTPUT_HIGH, IMAPD_OUTPUT_LOW, IMAPD_PAUSE_OUTPUT);
}

/* imapd_session_flood - more bytes before login than we take? Then say
 * so and end the session. */
static bool
imapd_session_flood(struct imapd_session *s)
{
	if ((s->state & IMAPD_S_LOGGED) || stream_input_bytes(s->base.stream)
	    <= (unsigned long long)var_imapd_preauth_input_limit)
		return false;
	msg_warn("too much input before login from [%s] (%llu bytes): "
	    "disconnecting", s->base.peer.addr,
	    stream_input_bytes(s->base.stream));
	if (s->state == IMAPD_S_SASL)
		sasl_wipe(&s->sasl);
	imapd_session_reply(s, "* BYE Too much input before login");
	imapd_session_finish(s, "too much input before login");
	return true;
}

/* imapd_session_refused - a command the parser refused (IMAP_FEED_ERROR) */
static void
imapd_session_refused(struct imapd_session *s)
{
	unsigned long long limit;

	if (s->state == IMAPD_S_SASL) {
		/* a SASL response line over the bound cancels the exchange */
		sasl_wipe(&s->sasl);
		s->state = IMAPD_S_NOAUTH;
		s->parser.lines_only = false;
		imapd_session_bad(s, "BAD Authentication data too long");
		return;
	}
	imap_parser_tag(&s->parser, &s->tag);
	s->base.last_cmd = "UNKNOWN";
	if (s->state == IMAPD_S_NOAUTH &&
	    ++s->commands > var_imapd_command_limit) {
		imapd_session_reply(s, "* BYE Too many commands before login");
		imapd_session_finish(s, "too many commands before login");
		return;
	}
	switch (s->parser.err) {
	case IMAP_ERR_TOOBIG:
		/* the literal's bound, or the command's when the literal
		 * would be held in memory (APPEND's messages go to files) */
		limit = s->parser.toobig_limit;
		if (s->parser.discarded)
			imapd_session_bad(s, "BAD [TOOBIG] Literal too big "
			    "(limit %llu octets)", limit);
		else
			imapd_session_bad(s, "NO [TOOBIG] Literal too big "
			    "(limit %llu octets)", limit);
		break;
	case IMAP_ERR_SPOOL:
		imapd_session_tagged(s, "%s", imapd_append_spool_error(s));
		break;
	case IMAP_ERR_LITERALS:
		imapd_session_bad(s, "BAD Too many literals in one command");
		break;
	case IMAP_ERR_NUMBER:
		imapd_session_bad(s, "BAD Invalid literal size");
		break;
	case IMAP_ERR_LINE:
	default:
		imapd_session_bad(s, "BAD [TOOBIG] Command line too long");
		break;
	}
}

/* imapd_session_fatal - the parser gave up (IMAP_FEED_FATAL) */
static void
imapd_session_fatal(struct imapd_session *s)
{
	const char *what = s->parser.err == IMAP_ERR_RUNAWAY ?
	    "too much input without a line end" : "literal too big";

	msg_warn("%s from [%s]: disconnecting", what, s->base.peer.addr);
	if (s->parser.err == IMAP_ERR_RUNAWAY)
		imapd_session_reply(s, "* BYE Too much input without a "
		    "line end");
	else
		imapd_session_reply(s, "* BYE [TOOBIG] Literal too big");
	imapd_session_finish(s, what);
}

/* imapd_session_event - act on one parser event; false: stop reading */
static bool
imapd_session_event(struct imapd_session *s, enum imap_feed ev)
{
	switch (ev) {
	case IMAP_FEED_MORE:
		return true;
	case IMAP_FEED_CONTINUE:
		imapd_session_reply(s, "+ OK");
		return true;
	case IMAP_FEED_COMMAND:
		if (s->state == IMAPD_S_SASL)
			imapd_auth_sasl_line(s, s->parser.cmd.data,
			    s->parser.cmd.len);
		else
			imapd_cmd_dispatch(s);
		/* it may have held a password */
		imap_parser_wipe(&s->parser);
		imapd_append_spool_release(s);
		return true;
	case IMAP_FEED_ERROR:
		imapd_session_refused(s);
		imap_parser_wipe(&s->parser);
		imapd_append_spool_release(s);
		return true;
	case IMAP_FEED_FATAL:
	default:
		imapd_session_fatal(s);
		imapd_append_spool_release(s);
		return false;
	}
}

/* imapd_session_input - feed buffered input to the parser, in order */
static void
imapd_session_input(struct session *base)
{
	struct imapd_session *s = (struct imapd_session *)base;
	enum imap_feed ev;
	const char *p;
	size_t n, used;

	while (!s->base.closed && s->base.pause == 0 &&
	    (s->state & (IMAPD_S_ANY | IMAPD_S_SASL))) {
		if (imapd_session_flood(s))
			break;
		stream_peek(s->base.stream, &p, &n);
		if (n == 0) {
			/* every line before it was served (RFC 4978) */
			(void)imapd_compress_input_failed(s);
			break;
		}
		/* bounds may change with the state (login) */
		imapd_session_bounds(s);
		s->parser.lines_only = s->state == IMAPD_S_SASL;
		ev = imap_parser_feed(&s->parser, p, n, &used);
		stream_consume(s->base.stream, used);
		if (!imapd_session_event(s, ev))
			break;
		if (imapd_session_backlog(s))
			break;
	}
}

/* imapd_session_greet - the greeting, with the capabilities */
static void
imapd_session_greet(struct imapd_session *s)
{
	s->state = IMAPD_S_NOAUTH;
	buf_reset(&s->scratch);
	imapd_cmd_capability(s, &s->scratch);
	imapd_session_reply(s, "* OK [CAPABILITY %s] herald IMAP4rev2 ready",
	    buf_cstr(&s->scratch));
	buf_reset(&s->scratch);
}

/* imapd_session_tls_ready - the handshake finished */
static void
imapd_session_tls_ready(struct session *base)
{
	struct imapd_session *s = (struct imapd_session *)base;

	session_log_tls(base);
	if (s->implicit_tls) {
		imapd_session_greet(s);
	} else {
		/* RFC 9051 6.2.1: start over, knowing nothing; capabilities
		 * are sent again only when the client asks */
		imap_parser_reset(&s->parser);
		s->state = IMAPD_S_NOAUTH;
	}
	imapd_session_input(base);
}

/*
 * imapd_session_timeout - the idle deadline passed: "* BYE" (RFC 9051
 * 5.4 autologout), except in a TLS handshake, where nothing can be said.
 */
static void
imapd_session_timeout(struct session *base)
{
	struct imapd_session *s = (struct imapd_session *)base;

	if (s->base.closed || s->state == IMAPD_S_LOGOUT)
		return;
	msg_info("idle timeout after %s from [%s]", session_cmd(&s->base),
	    s->base.peer.addr);
	if (s->state != IMAPD_S_TLS)
		imapd_session_reply(s, "* BYE Disconnected for inactivity.");
	imapd_session_finish(s, "idle timeout");
}

/* imapd_session_log_end - the logout (if logged in) and disconnect
 * lines */
static void
imapd_session_log_end(struct imapd_session *s)
{
	if (s->login.len > 0)
		msg_info("logout: user=<%s> client=[%s]", buf_cstr(&s->login),
		    s->base.peer.addr);
	session_log_end(&s->base);
}

/* imapd_session_end - the end of a session: its log lines, its memory */
static void
imapd_session_end(struct session *base)
{
	struct imapd_session *s = (struct imapd_session *)base;

	imapd_session_log_end(s);
	imapd_auth_abort(s);
	imapd_sel_free(s);
	imapd_store_close(s);
	imap_parser_free(&s->parser);
	imapd_append_spool_release(s);
	buf_free(&s->tag);
	buf_free(&s->user);
	buf_free(&s->login);
	buf_free(&s->mail_path);
	buf_free(&s->scratch);
}

/* imapd_session_drained - the client read our responses: a FETCH
 * that waited for it goes on (imapd_fetch.c) */
static void
imapd_session_drained(struct session *base)
{
	imapd_fetch_drained((struct imapd_session *)base);
}

/* imapd_session_held - a job thread still has work of ours (the
 * session has closed: a skippable job no thread has started is dropped,
 * its done comes soon) */
static bool
imapd_session_held(const struct session *base)
{
	imapd_store_cancel((const struct imapd_session *)base);
	return imapd_store_busy((const struct imapd_session *)base);
}

static const struct session_ops imapd_session_ops = {
	.input = imapd_session_input,
	.tls_ready = imapd_session_tls_ready,
	.timeout = imapd_session_timeout,
	.drained = imapd_session_drained,
	.held = imapd_session_held,
	.end = imapd_session_end,
};

/*
 * imapd_session_admit - the limits, before anything is made for fd: over
 * one, the connection gets "* BYE" in plaintext (on imaps nothing) and
 * is closed (session_check). True: serve it with peer.
 */
static bool
imapd_session_admit(int fd, bool implicit_tls, struct peer *peer)
{
	struct session_admit a;

	a.max_sessions = var_imapd_max_sessions;
	a.session_fds = IMAPD_SESSION_FDS;
	a.client_limit = var_imapd_client_limit;
	return session_check(&imapd_sessions, fd, &a, implicit_tls, "imaps",
	    "* BYE [UNAVAILABLE] Server busy: too many sessions",
	    "* BYE [UNAVAILABLE] Too many connections from your address",
	    peer);
}

/*
 * imapd_session_nodelay - no Nagle on the connection. An answer can
 * leave in more than one write (a FETCH's data, then the tagged line once
 * its cache writes are done on a job thread); with Nagle the last small
 * segment waits for the ACK of the one before, which a client reading a
 * literal delays by 40 ms: 40 ms per UID FETCH, a 1,000-message
 * offlineimap sync 45 s longer. Output is buffered per loop pass, so
 * segments stay full-sized. A failure (not TCP: a test's socketpair)
 * only costs latency.
 */
static void
imapd_session_nodelay(int fd)
{
	int on = 1;

	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) < 0 &&
	    errno != EOPNOTSUPP && errno != ENOPROTOOPT && errno != ENOTSOCK)
		msg_warn("setsockopt TCP_NODELAY: %m");
}

/* imapd_session_accept - a new connection: limits, TLS, greeting */
void
imapd_session_accept(struct service *svc, int fd, bool implicit_tls)
{
	struct imapd_session *s;
	struct stream_limits lim;
	struct peer peer;

	(void)svc;
	if (!imapd_session_admit(fd, implicit_tls, &peer))
		return;
	imapd_session_nodelay(fd);
	memset(&lim, 0, sizeof(lim));
	/* lines are the parser's business; the stream only buffers */
	lim.max_line = IMAPD_MAX_INPUT;
	lim.max_input = IMAPD_MAX_INPUT;
	lim.idle_ms = var_imapd_preauth_timeout * 1000;
	s = xcalloc(1, sizeof(*s));
	session_open_peer(&imapd_sessions, &s->base, &imapd_session_ops, fd,
	    &lim, &peer);
	s->implicit_tls = implicit_tls;
	imap_parser_init(&s->parser, IMAPD_PRE_LINE_MAX, IMAPD_PRE_CMD_MAX,
	    IMAPD_PRE_LITERAL_MAX, 0);
	s->parser.spool = imapd_append_spool;
	s->parser.spool_write = imapd_append_spool_write;
	s->parser.spool_ctx = s;
	buf_init(&s->tag);
	buf_init(&s->user);
	buf_init(&s->login);
	buf_init(&s->mail_path);
	buf_init(&s->scratch);
	msg_info("connect from [%s]%s", s->base.peer.addr, implicit_tls ?
	    " (imaps)" : "");

	if (implicit_tls && imapd_tls_ctx == NULL) {
		/* warned at start; nothing can be said on a TLS port */
		imapd_session_finish(s, "no TLS certificate for imaps");
	} else if (implicit_tls) {
		s->state = IMAPD_S_TLS;
		stream_starttls(s->base.stream, imapd_tls_ctx, true, NULL);
	} else {
		imapd_session_greet(s);
	}
	session_leave(&s->base);
}

/*
 * imapd_session_stop - graceful stop (SIGTERM; a reload retires the
 * worker with SIGUSR1 instead, which leaves the sessions alone): every
 * session gets "* BYE Server shutting down" and is closed. Nothing is
 * lost: a session whose job is with a job thread (imapd_store.h) is held
 * until the job has ended; only its answer is not sent.
 */
void
imapd_session_stop(struct service *svc)
{
	struct session *b, *next;

	(void)svc;
	for (b = imapd_sessions.head; b != NULL; b = next) {
		struct imapd_session *s = (struct imapd_session *)b;

		next = b->next;
		if (s->base.closed || s->state == IMAPD_S_LOGOUT)
			continue;
		s->base.depth++;
		if (s->state != IMAPD_S_TLS)
			imapd_session_reply(s, "* BYE [UNAVAILABLE] Server "
			    "shutting down");
		imapd_session_finish(s, "shutdown");
		session_leave(&s->base);
	}
}
