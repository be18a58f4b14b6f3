/*
 * smtpd_session - one SMTP session: its life from accept to close, the
 * input loop, replies, error and resource limits, STARTTLS, graceful stop.
 *
 * A session is fed by its stream's events. Input is taken as command
 * lines (stream_get_line, bounded by smtpd_line_limit) or, during DATA and
 * BDAT, as raw bytes (smtpd_data.c). Input is paused while the session
 * waits for the commit thread, so pipelined commands wait for the reply
 * they depend on, and while more than SMTPD_OUTPUT_HIGH bytes of replies
 * are unsent, so a client that pipelines without reading cannot grow our
 * memory.
 *
 * Between commands a client may send at most SESSION_RUNAWAY_MAX bytes
 * without a line feed (an over-long line is skipped to its LF, which may
 * never come); more gets 421 and the session ends.
 *
 * The connection, the worker's list of sessions, the rule for freeing
 * and the limits at accept (checked before anything is made for the
 * connection) are the shared session base (lib/mail/session.c); smtpd
 * adds that a
 * session whose queue file is with the commit thread is held (not freed)
 * until the thread is done with it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "base/buf.h"
#include "base/evloop.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "base/stream.h"
#include "mail/netlist.h"
#include "mail/params.h"
#include "mail/service.h"
#include "smtpd.h"

#define SMTPD_MAX_INPUT (64 * 1024)	/* stream input buffer bound */
#define SMTPD_STOP_IDLE_MS 5000		/* idle timeout while stopping */
#define SMTPD_SESSION_FDS 2		/* the connection and a queue file */


SSL_CTX *smtpd_tls_ctx;		/* set by smtpd.c before the drop */

static struct session_pool smtpd_sessions;

SESSION_BASE_FIRST(struct smtpd_session);

/* smtpd_session_init - remember the service (NULL in unit tests) and
 * the loop the sessions run on */
void
smtpd_session_init(struct service *svc, struct evloop *loop)
{
	session_pool_init(&smtpd_sessions, svc, loop);
}

/* smtpd_session_stopping - the worker is stopping (SIGTERM) */
static bool
smtpd_session_stopping(void)
{
	return smtpd_sessions.svc != NULL &&
	    service_stopping(smtpd_sessions.svc);
}

/* smtpd_session_vreply - format and queue one reply line */
static void smtpd_session_vreply(struct smtpd_session *, const char *, va_list)
    __attribute__((format(printf, 2, 0)));

static void
smtpd_session_vreply(struct smtpd_session *s, const char *fmt, va_list ap)
{
	if (s->state != SMTPD_S_QUIT)
		session_vreply(&s->base, fmt, ap);
}

/* smtpd_session_reply - queue one reply line (CRLF is added) */
void
smtpd_session_reply(struct smtpd_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	smtpd_session_vreply(s, fmt, ap);
	va_end(ap);
}

/*
 * smtpd_session_error - a reply that counts as a client error; past
 * smtpd_error_limit the session ends with 421 (the client is broken or
 * probing us).
 */
void
smtpd_session_error(struct smtpd_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	smtpd_session_vreply(s, fmt, ap);
	va_end(ap);
	if (s->state != SMTPD_S_QUIT &&
	    session_count_error(&s->base, var_smtpd_error_limit)) {
		smtpd_session_reply(s, "421 4.7.0 %s Error: too many errors",
		    var_myhostname);
		smtpd_session_finish(s);
	}
}

/*
 * smtpd_session_set_state - move the session to state next, unless it is
 * closing. QUIT is final: after a 421 (error limit, timeout, shutdown) or
 * 221, nothing more is read or answered, so no later path (the end of a
 * rejected message, the commit thread's answer, RSET, a TLS handshake)
 * may bring the session back to a state that serves commands; pipelined
 * input behind the 421 would otherwise run, and a message the client
 * never saw accepted would be queued.
 */
void
smtpd_session_set_state(struct smtpd_session *s, unsigned next)
{
	if (s->state != SMTPD_S_QUIT)
		s->state = next;
}

/* smtpd_session_finish - flush the replies, then close */
void
smtpd_session_finish(struct smtpd_session *s)
{
	if (s->state == SMTPD_S_QUIT || s->base.closed)
		return;
	s->state = SMTPD_S_QUIT;
	stream_finish(s->base.stream);
}

/* smtpd_session_reset_tx - forget the transaction (RSET, EHLO, end) */
void
smtpd_session_reset_tx(struct smtpd_session *s)
{
	struct smtpd_tx *tx = &s->tx;

	smtpd_data_abort(s);
	smtpd_space_close(&smtpd_space_worker, &tx->space);
	peer_tally_del(&tx->tally);
	if (tx->expected) {
		tx->expected = false;
		smtpd_commit_expect(false);
	}
	tx->qid[0] = '\0';
	buf_reset(&tx->sender);
	tx->size_decl = -1;
	tx->body = SMTPD_BODY_NONE;
	tx->smtputf8 = false;
	tx->ret = SMTPD_RET_NONE;
	x_free(&tx->envid);
	smtpd_check_clear_rcpts(tx);
	tx->content = 0;
	tx->header_len = 0;
	tx->too_big = false;
	tx->failed = false;
	tx->bdat = false;
	tx->hdr_on = false;
	tx->chunk_left = 0;
	tx->chunk_size = 0;
	tx->chunk_last = false;
	tx->chunk_discard = false;
	smtpd_data_init(&tx->dp);
	smtpd_data_bdat_init(&tx->bs);
}

/* smtpd_session_proto - protocol name for Received: and logs (RFC 3848,
 * RFC 6531 3.7.4) */
const char *
smtpd_session_proto(const struct smtpd_session *s)
{
	bool tls = s->base.stream != NULL && stream_is_tls(s->base.stream);
	bool a = s->login.len > 0;	/* RFC 3848: "A" for AUTH */

	if (!s->esmtp)
		return "SMTP";
	if (s->tx.smtputf8)
		return tls ? (a ? "UTF8SMTPSA" : "UTF8SMTPS") :
		    (a ? "UTF8SMTPA" : "UTF8SMTP");
	if (tls)
		return a ? "ESMTPSA" : "ESMTPS";
	return a ? "ESMTPA" : "ESMTP";
}

/*
 * smtpd_session_log_reject - the Postfix-style reject line admins grep:
 * "NOQUEUE: reject: RCPT from [ip]: 550 5.1.1 ...; from=<a> to=<b>
 * proto=ESMTP helo=<h>"
 */
void
smtpd_session_log_reject(struct smtpd_session *s, const char *cmd,
    const char *to, const char *reply)
{
	struct buf line = BUF_INIT;

	buf_printf(&line, "%s: reject: %s from [%s]: %s;",
	    s->tx.qid[0] ? s->tx.qid : "NOQUEUE", cmd, s->base.peer.addr,
	    reply);
	if ((s->state & (SMTPD_S_TX | SMTPD_S_DATA | SMTPD_S_BDAT)) ||
	    strcmp(cmd, "MAIL") == 0)
		buf_printf(&line, " from=<%s>", buf_cstr(&s->tx.sender));
	if (to != NULL)
		buf_printf(&line, " to=<%s>", to);
	buf_printf(&line, " proto=%s helo=<%s>", smtpd_session_proto(s),
	    buf_cstr(&s->helo));
	msg_info("%s", buf_cstr(&line));
	buf_free(&line);
}

/* smtpd_session_submission - a session of the 587 or 465 role */
bool
smtpd_session_submission(const struct smtpd_session *s)
{
	return s->role == SMTPD_ROLE_SUBMISSION ||
	    s->role == SMTPD_ROLE_SUBMISSIONS;
}

/* smtpd_session_may_relay - may send to any domain: a local user
 * (sendmail), a logged-in user, or a client in mynetworks */
bool
smtpd_session_may_relay(const struct smtpd_session *s)
{
	return s->local || s->login.len > 0 || s->trusted;
}

/* smtpd_session_starttls - forget everything and start the handshake */
void
smtpd_session_starttls(struct smtpd_session *s)
{
	smtpd_session_reset_tx(s);
	buf_reset(&s->helo);
	buf_reset(&s->login);
	s->esmtp = false;
	smtpd_session_set_state(s, SMTPD_S_TLS);
	/* Plaintext pipelined behind STARTTLS is thrown away here. */
	stream_starttls(s->base.stream, smtpd_tls_ctx, true, NULL);
}

/* smtpd_session_runaway - a part line past SESSION_RUNAWAY_MAX: 421 */
static void
smtpd_session_runaway(struct smtpd_session *s)
{
	msg_warn("too much input without a line end after %s from [%s]: "
	    "disconnecting", session_cmd(&s->base),
	    s->base.peer.addr);
	smtpd_session_reply(s, "421 4.7.0 %s Error: line too long",
	    var_myhostname);
	smtpd_session_finish(s);
}

/* smtpd_session_input - run buffered commands and content */
static void
smtpd_session_input(struct session *base)
{
	struct smtpd_session *s = (struct smtpd_session *)base;
	const char *line;
	size_t len;
	bool crlf;
	int r;

	while (!s->base.closed && s->base.pause == 0) {
		if (s->state == SMTPD_S_SASL) {
			r = stream_get_line(s->base.stream, &line, &len, &crlf);
			if (r == 0) {
				if (session_runaway(&s->base))
					smtpd_session_runaway(s);
				break;
			}
			/* a response never reaches the log, not even -v */
			buf_reset(&s->line);
			if (r > 0)
				buf_append(&s->line, line, len);
			else
				buf_puts(&s->line, "-");	/* too long */
			smtpd_auth_line(s, s->line.data, s->line.len);
			explicit_bzero(s->line.data, s->line.len);
			buf_reset(&s->line);
		} else if (s->state & (SMTPD_S_DATA | SMTPD_S_BDAT)) {
			smtpd_data_input(s);
			if (s->state & (SMTPD_S_DATA | SMTPD_S_BDAT))
				break;	/* need more bytes */
		} else if (s->state & SMTPD_S_CMD) {
			r = stream_get_line(s->base.stream, &line, &len, &crlf);
			if (r == 0) {
				if (session_runaway(&s->base))
					smtpd_session_runaway(s);
				break;
			}
			if (r < 0) {
				s->cmd_total[smtpd_cmd_count() - 1]++;
				smtpd_session_error(s,
				    "500 5.5.6 Line too long");
			} else {
				/* The line is valid only until the next
				 * stream call: run a copy. */
				buf_reset(&s->line);
				buf_append(&s->line, line, len);
				if (msg_verbose)
					msg_debug("[%s] < %.*s",
					    s->base.peer.addr,
					    len >= 5 && str_ncasecmp(line,
					    "AUTH ", 5) == 0 ? 4 : (int)len,
					    line);
				smtpd_cmd_dispatch(s, s->line.data,
				    s->line.len);
				/* AUTH PLAIN's initial response */
				explicit_bzero(s->line.data, s->line.len);
			}
		} else {
			break;	/* COMMIT, TLS, QUIT: nothing to read */
		}
		/* read on when the client has read our replies */
		if (s->state != SMTPD_S_QUIT)
			(void)session_backlog(&s->base, SMTPD_OUTPUT_HIGH,
			    SMTPD_OUTPUT_LOW, SMTPD_PAUSE_OUTPUT);
	}
}

/* smtpd_session_tls_ready - RFC 3207 4.2: start over, knowing nothing */
static void
smtpd_session_tls_ready(struct session *base)
{
	struct smtpd_session *s = (struct smtpd_session *)base;

	session_log_tls(base);
	smtpd_session_reset_tx(s);
	buf_reset(&s->helo);
	buf_reset(&s->login);
	s->esmtp = false;
	smtpd_session_set_state(s, SMTPD_S_INIT);
	if (s->role == SMTPD_ROLE_SUBMISSIONS && !s->greeted) {
		/* implicit TLS: the greeting is the first thing in TLS */
		s->greeted = true;
		smtpd_session_reply(s, "220 %s %s", var_myhostname,
		    var_smtpd_banner);
	}
	smtpd_session_input(base);
}

/* smtpd_session_timeout - idle or session deadline passed */
static void
smtpd_session_timeout(struct session *base)
{
	struct smtpd_session *s = (struct smtpd_session *)base;

	if (s->base.closed || s->state == SMTPD_S_QUIT)
		return;
	if (!smtpd_session_stopping())
		msg_info("timeout after %s from [%s]",
		    session_cmd(&s->base), s->base.peer.addr);
	if (s->state == SMTPD_S_TLS) {
		/* No reply in plaintext in the middle of a handshake. */
		s->state = SMTPD_S_QUIT;
		stream_finish(s->base.stream);
		return;
	}
	if (smtpd_session_stopping())
		smtpd_session_reply(s, "421 4.3.2 %s Service shutting down",
		    var_myhostname);
	else
		smtpd_session_reply(s, "421 4.4.2 %s Error: timeout exceeded",
		    var_myhostname);
	smtpd_session_finish(s);
}

/* smtpd_session_log_end - "disconnect from [ip] ehlo=1 ... commands=N" */
static void
smtpd_session_log_end(struct smtpd_session *s)
{
	struct buf line = BUF_INIT;
	size_t n = smtpd_cmd_count();
	unsigned ok = 0, total = 0;
	const char *reason = stream_close_reason(s->base.stream);

	if (s->state != SMTPD_S_QUIT) {
		if (reason != NULL && strcmp(reason, "eof") != 0 &&
		    strcmp(reason, "finished") != 0)
			msg_info("lost connection after %s from [%s]: %s",
			    session_cmd(&s->base),
			    s->base.peer.addr, reason);
		else
			msg_info("lost connection after %s from [%s]",
			    session_cmd(&s->base),
			    s->base.peer.addr);
	}
	buf_printf(&line, "disconnect from [%s]", s->base.peer.addr);
	for (size_t i = 0; i < n; i++) {
		const char *name = i < n - 1 ? smtpd_cmd_table[i].name :
		    "unknown";
		char lower[16];

		if (s->cmd_total[i] == 0)
			continue;
		str_lcpy(lower, name, sizeof(lower));
		str_lower(lower);
		if (s->cmd_ok[i] == s->cmd_total[i])
			buf_printf(&line, " %s=%u", lower, s->cmd_total[i]);
		else
			buf_printf(&line, " %s=%u/%u", lower, s->cmd_ok[i],
			    s->cmd_total[i]);
		ok += s->cmd_ok[i];
		total += s->cmd_total[i];
	}
	if (ok == total)
		buf_printf(&line, " commands=%u", total);
	else
		buf_printf(&line, " commands=%u/%u", ok, total);
	msg_info("%s", buf_cstr(&line));
	buf_free(&line);
}

/* smtpd_session_end - the end of a session: its log line, its memory */
static void
smtpd_session_end(struct session *base)
{
	struct smtpd_session *s = (struct smtpd_session *)base;

	smtpd_session_log_end(s);
	smtpd_auth_abort(s);
	smtpd_session_reset_tx(s);
	x_free(&s->tx.rcpt);
	x_free(&s->tx.rcpt_set);
	smtpd_hdr_free(&s->tx.hdr);
	buf_free(&s->tx.sender);
	buf_free(&s->helo);
	buf_free(&s->login);
	buf_free(&s->scratch);
	buf_free(&s->line);
	buf_free(&s->job.why);
	x_free(&s->cmd_ok);
	x_free(&s->cmd_total);
}

/* smtpd_session_held - the commit thread still has its queue file */
static bool
smtpd_session_held(const struct session *base)
{
	return ((const struct smtpd_session *)base)->commit_pending;
}

static const struct session_ops smtpd_session_ops = {
	.input = smtpd_session_input,
	.tls_ready = smtpd_session_tls_ready,
	.timeout = smtpd_session_timeout,
	.held = smtpd_session_held,
	.end = smtpd_session_end,
};

/* smtpd_session_admit - the limits, before anything is made for fd: over
 * one, the connection gets its 421 and is closed. True: serve it. */
static bool
smtpd_session_admit(int fd, enum smtpd_role role, struct peer *peer)
{
	bool local = role == SMTPD_ROLE_LOCAL;
	bool tls = role == SMTPD_ROLE_SUBMISSIONS;	/* nothing to say */

	struct session_admit a;
	long long uid;

	a.max_sessions = var_smtpd_max_sessions;
	a.session_fds = SMTPD_SESSION_FDS;
	a.client_limit = local ? var_smtpd_submit_uid_limit :
	    var_smtpd_client_limit;
	switch (session_admit(&smtpd_sessions, fd, &a, peer)) {
	case SESSION_ADMIT:
		return true;
	case SESSION_BUSY:
		msg_info("connect from [%s]", local ? "local" : peer->addr);
		msg_warn("too many sessions in this worker (limit %lld, or "
		    "the open-file limit): rejecting [%s]",
		    var_smtpd_max_sessions, local ? "local" : peer->addr);
		if (tls)
			session_refuse(fd, peer, NULL);
		else
			session_refuse(fd, peer, "421 4.3.2 %s Service not "
			    "available: too many sessions", var_myhostname);
		return false;
	case SESSION_CLIENT:
		break;
	}
	if (local)
		msg_info("connect from local (uid %lld)", peer->uid);
	else
		msg_info("connect from [%s]", peer->addr);
	if (local) {
		uid = peer->uid;
		msg_warn("too many local submissions from uid %lld (limit "
		    "%lld): rejecting", uid, var_smtpd_submit_uid_limit);
		session_refuse(fd, peer, "421 4.7.0 %s Error: too many "
		    "connections from uid %lld", var_myhostname, uid);
	} else {
		msg_warn("too many sessions from [%s] (limit %lld): "
		    "rejecting", peer->addr, var_smtpd_client_limit);
		if (tls)
			session_refuse(fd, peer, NULL);
		else
			session_refuse(fd, peer, "421 4.7.0 %s Error: too "
			    "many connections from %s", var_myhostname,
			    peer->addr);
	}
	return false;
}

/* smtpd_session_accept - a new connection: limits, then the greeting */
void
smtpd_session_accept(struct service *svc, int fd, enum smtpd_role role)
{
	struct smtpd_session *s;
	struct stream_limits lim;
	struct peer peer;
	bool local = role == SMTPD_ROLE_LOCAL;

	(void)svc;
	if (!smtpd_session_admit(fd, role, &peer))
		return;
	memset(&lim, 0, sizeof(lim));
	lim.max_line = (size_t)var_smtpd_line_limit;
	lim.max_input = SMTPD_MAX_INPUT;
	if (lim.max_input < 2 * lim.max_line)
		lim.max_input = 2 * lim.max_line;
	lim.idle_ms = var_smtpd_idle_timeout * 1000;
	lim.total_ms = var_smtpd_session_timeout * 1000;
	s = xcalloc(1, sizeof(*s));
	session_open_peer(&smtpd_sessions, &s->base, &smtpd_session_ops, fd,
	    &lim, &peer);
	s->ipv6 = strchr(s->base.peer.addr, ':') != NULL;
	if (local) {
		s->local = true;
		s->local_uid = s->base.peer.uid;	/* SO_PEERCRED */
		/* what logs show; the count keeps its key, "uid:N" */
		str_lcpy(s->base.peer.addr, "local", sizeof(s->base.peer.addr));
	}
	s->role = role;
	s->trusted = !local && netlist_match(var_mynetworks, s->base.peer.addr);
	buf_init(&s->helo);
	buf_init(&s->login);
	buf_init(&s->scratch);
	buf_init(&s->line);
	buf_init(&s->tx.sender);
	buf_init(&s->tx.sign.header);
	buf_init(&s->job.why);
	s->tx.size_decl = -1;
	s->cmd_ok = xcalloc(smtpd_cmd_count(), sizeof(*s->cmd_ok));
	s->cmd_total = xcalloc(smtpd_cmd_count(), sizeof(*s->cmd_total));
	s->state = SMTPD_S_INIT;
	if (s->local)
		msg_info("connect from local (uid %lld)", s->local_uid);
	else
		msg_info("connect from [%s]%s", s->base.peer.addr,
		    role == SMTPD_ROLE_SUBMISSION ? " (submission)" :
		    role == SMTPD_ROLE_SUBMISSIONS ? " (submissions)" : "");

	if (role == SMTPD_ROLE_SUBMISSIONS && smtpd_tls_ctx == NULL) {
		/* warned at start; nothing can be said on a TLS port */
		s->state = SMTPD_S_QUIT;
		stream_finish(s->base.stream);
	} else if (role == SMTPD_ROLE_SUBMISSIONS) {
		s->state = SMTPD_S_TLS;
		stream_starttls(s->base.stream, smtpd_tls_ctx, true, NULL);
	} else {
		s->greeted = true;
		smtpd_session_reply(s, "220 %s %s", var_myhostname,
		    var_smtpd_banner);
	}
	session_leave(&s->base);
}

/*
 * smtpd_session_stop - graceful stop (SIGTERM; a reload retires the
 * worker with SIGUSR1 instead, which leaves the sessions alone).
 * Sessions are not cut: a client in the middle of a transaction, or one
 * that goes on sending commands, is served on (the worker exits after
 * stop_timeout). What changes is the idle timeout:
 * a session that stays quiet for SMTPD_STOP_IDLE_MS gets "421 4.3.2
 * Service shutting down" and is closed.
 */
void
smtpd_session_stop(struct service *svc)
{
	struct session *b, *next;
	long long ms = SMTPD_STOP_IDLE_MS;

	if (var_smtpd_idle_timeout * 1000 < ms)
		ms = var_smtpd_idle_timeout * 1000;
	for (b = smtpd_sessions.head; b != NULL; b = next) {
		struct smtpd_session *s = (struct smtpd_session *)b;

		next = b->next;
		if (!s->base.closed && s->state != SMTPD_S_QUIT)
			stream_set_idle_timeout(s->base.stream, ms);
	}
}
