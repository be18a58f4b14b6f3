/*
 * pop3d_auth - logging in: USER/PASS (RFC 1939), AUTH PLAIN and LOGIN
 * with or without an initial response (RFC 5034, SASL parsed by
 * lib/mail/sasl.c), the authd call, and opening the maildrop.
 *
 * Passwords only cross a connection that is TLS-protected or allowed by
 * auth_plaintext (always; loopback: from a loopback address). The check
 * goes to authd through auth_client_start(); while it runs the session's
 * input is paused, so pipelined commands wait for the answer. authd's
 * failure delay is waited out by auth_client before the callback.
 *
 * Answers (RFC 2449 / RFC 3206 response codes):
 *   ok        lock and open the maildrop (on a maildrop thread,
 *             pop3d_maildrop.c; input stays paused): "+OK Logged in.";
 *             another session holds it: "-ERR [IN-USE] ..."
 *   fail      "-ERR [AUTH] Authentication failed." (counts as an error)
 *   locked    "-ERR [AUTH] Too many failed logins, try again later." The
 *             lockout is caused by failed credentials, so [AUTH] rather
 *             than [SYS/TEMP]: a client must not retry on its own, which
 *             would only keep the lockout going.
 *   tempfail  "-ERR [SYS/TEMP] Temporary authentication failure."
 */
#include <string.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "base/stream.h"
#include "mail/auth_client.h"
#include "mail/mailbase.h"
#include "mail/params.h"
#include "mail/sasl.h"
#include "pop3d.h"

#define POP3D_PLAINTEXT_REFUSED "-ERR [AUTH] Plaintext authentication " \
	"disallowed on non-secure (SSL/TLS) connections."

/* pop3d_auth_opened - the maildrop thread opened (or could not open)
 * the maildrop of s->login (loop thread) */
static void
pop3d_auth_opened(struct pop3d_job *job, void *ctx)
{
	struct pop3d_session *s = ctx;
	const char *user = buf_cstr(&s->login);

	s->job = NULL;
	s->base.depth++;
	if (s->base.closed || s->state != POP3D_S_WAIT)
		goto out;
	s->state = POP3D_S_AUTH;
	if (s->stop_after_job) {
		pop3d_session_reply(s, "-ERR [SYS/TEMP] Server shutting down");
		pop3d_session_finish(s, "shutdown");
		goto out;
	}
	if (job->result == POP3D_MD_LOCKED) {
		msg_info("login refused: user=<%s> client=[%s]: mailbox is "
		    "locked by another session", user, s->base.peer.addr);
		pop3d_session_reply(s, "-ERR [IN-USE] Mailbox is locked by "
		    "another session.");
	} else if (job->result == POP3D_MD_ERROR) {
		msg_warn("%s: cannot open maildrop: %s", user,
		    buf_cstr(&job->why));
		pop3d_session_reply(s, "-ERR [SYS/TEMP] Unable to open "
		    "mailbox.");
	} else {
		s->md = job->md;
		job->md = NULL;
		s->state = POP3D_S_TRANS;
		msg_info("login: user=<%s> client=[%s] method=%s tls=%s "
		         "messages=%zu size=%lld",
		    user, s->base.peer.addr, s->method,
		    stream_is_tls(s->base.stream) ? "yes" : "no", s->md->n,
		    s->md->total);
		pop3d_session_reply(s, "+OK Logged in.");
	}
	/* pipelined commands behind the login may run now */
	session_set_pause(&s->base, POP3D_PAUSE_AUTH, false);
out:
	if (s->state != POP3D_S_TRANS)
		buf_reset(&s->login);
	pop3d_maildrop_job_free(&job);	/* closes a maildrop nobody took */
	session_leave(&s->base);
}

/* pop3d_auth_login - authd said ok: a maildrop thread locks and opens
 * the maildrop while input stays paused; true if it was started */
static bool
pop3d_auth_login(struct pop3d_session *s, const char *user)
{
	struct buf path = BUF_INIT, why = BUF_INIT;
	struct pop3d_job *job;

	buf_set(&s->login, user);
	if (mailbase_mailbox_path(var_mail_location, user, &path, &why) < 0) {
		msg_warn("%s: no mailbox folder: %s", user, buf_cstr(&why));
		pop3d_session_reply(s, "-ERR [SYS/PERM] Mailbox unavailable.");
		buf_reset(&s->login);
		buf_free(&path);
		buf_free(&why);
		return false;
	}
	job = xcalloc(1, sizeof(*job));
	job->kind = POP3D_JOB_OPEN;
	job->path = buf_steal(&path);
	buf_init(&job->why);
	job->done = pop3d_auth_opened;
	job->ctx = s;
	s->job = job;
	s->state = POP3D_S_WAIT;
	pop3d_maildrop_submit(job, s);
	buf_free(&why);
	return true;
}

/* pop3d_auth_done - authd's answer (after its failure delay) */
static void
pop3d_auth_done(const struct auth_reply *reply, void *ctx)
{
	struct pop3d_session *s = ctx;

	s->auth = NULL;
	s->base.depth++;
	if (s->base.closed || s->state != POP3D_S_WAIT)
		goto out;
	s->state = POP3D_S_AUTH;
	session_auth_log(&s->base, reply, buf_cstr(&s->user), s->method);
	switch (reply->result) {
	case AUTH_OK:
		buf_reset(&s->user);
		if (pop3d_auth_login(s, reply->user))
			goto out;	/* input stays paused until opened */
		break;
	case AUTH_FAIL:
		pop3d_session_error(s, "-ERR [AUTH] Authentication failed.");
		break;
	case AUTH_LOCKED:
		pop3d_session_error(s, "-ERR [AUTH] Too many failed logins, "
		    "try again later.");
		break;
	case AUTH_TEMPFAIL:
	default:
		pop3d_session_reply(s, "-ERR [SYS/TEMP] Temporary "
		    "authentication failure.");
		break;
	}
	buf_reset(&s->user);
	/* pipelined commands behind the login may run now */
	session_set_pause(&s->base, POP3D_PAUSE_AUTH, false);
out:
	session_leave(&s->base);
}

/* pop3d_auth_start - ask authd about user and password */
static void
pop3d_auth_start(struct pop3d_session *s, const char *user,
    const char *password)
{
	if (user != buf_cstr(&s->user))
		buf_set(&s->user, user);
	s->state = POP3D_S_WAIT;
	s->auth = session_auth_start(&s->base, POP3D_PAUSE_AUTH, "pop3",
	    user, password, pop3d_auth_done, s);
	sasl_wipe(&s->sasl);
}

/* pop3d_auth_user - USER name */
void
pop3d_auth_user(struct pop3d_session *s, char *args, size_t len)
{
	buf_reset(&s->user);
	if (!session_plaintext_ok(&s->base)) {
		pop3d_session_error(s, "%s", POP3D_PLAINTEXT_REFUSED);
		return;
	}
	if (len == 0) {
		pop3d_session_error(s, "-ERR Syntax: USER name");
		return;
	}
	if (!sasl_name_ok(args, len)) {
		pop3d_session_error(s, "-ERR [AUTH] Invalid user name.");
		return;
	}
	buf_append(&s->user, args, len);
	pop3d_session_reply(s, "+OK");
}

/* pop3d_auth_pass - PASS password (the rest of the line, as sent) */
void
pop3d_auth_pass(struct pop3d_session *s, char *args, size_t len)
{
	if (!session_plaintext_ok(&s->base)) {
		pop3d_session_error(s, "%s", POP3D_PLAINTEXT_REFUSED);
		return;
	}
	if (s->user.len == 0) {
		pop3d_session_error(s, "-ERR No user name given: USER first");
		return;
	}
	if (len == 0 || len > AUTH_PASSWORD_MAX ||
	    str_has_crlfnul(args, len)) {
		buf_reset(&s->user);
		pop3d_session_error(s, "-ERR [AUTH] Authentication failed.");
		return;
	}
	s->method = "USER";
	pop3d_auth_start(s, buf_cstr(&s->user), args);
}

/* pop3d_auth_step - act on a SASL status */
static void
pop3d_auth_step(struct pop3d_session *s, enum sasl_status st,
    struct buf *challenge)
{
	switch (st) {
	case SASL_CONTINUE:
		s->state = POP3D_S_SASL;
		pop3d_session_reply(s, "+ %s", buf_cstr(challenge));
		return;
	case SASL_DONE:
		if (!sasl_name_ok(s->sasl.authcid,
		    strlen(s->sasl.authcid))) {
			sasl_wipe(&s->sasl);
			s->state = POP3D_S_AUTH;
			pop3d_session_error(s,
			    "-ERR [AUTH] Authentication failed.");
			return;
		}
		pop3d_auth_start(s, s->sasl.authcid, s->sasl.password);
		return;
	case SASL_CANCELLED:
		sasl_wipe(&s->sasl);
		s->state = POP3D_S_AUTH;
		pop3d_session_error(s, "-ERR Authentication cancelled.");
		return;
	case SASL_ERROR:
	default:
		sasl_wipe(&s->sasl);
		s->state = POP3D_S_AUTH;
		pop3d_session_error(s, "-ERR Invalid authentication data.");
		return;
	}
}

/* pop3d_auth_auth - AUTH [mechanism [initial-response]] */
void
pop3d_auth_auth(struct pop3d_session *s, char *args, size_t len)
{
	struct buf challenge = BUF_INIT, why = BUF_INIT;
	enum sasl_mech mech;
	char *sp, *ir = NULL;

	buf_reset(&s->user);
	if (len == 0) {
		/* the mechanism list (common practice; RFC 5034 uses CAPA) */
		pop3d_session_reply(s, "+OK");
		if (session_plaintext_ok(&s->base)) {
			const char *m = sasl_mech_list(), *e;

			while (*m) {
				e = strchr(m, ' ');
				if (e == NULL)
					e = m + strlen(m);
				pop3d_session_reply(s, "%.*s", (int)(e - m),
				    m);
				m = *e ? e + 1 : e;
			}
		}
		pop3d_session_reply(s, ".");
		return;
	}
	if ((sp = memchr(args, ' ', len)) != NULL) {
		*sp = '\0';
		ir = sp + 1;
		while (*ir == ' ')
			ir++;
		if (strchr(ir, ' ') != NULL || *ir == '\0') {
			pop3d_session_error(s,
			    "-ERR Syntax: AUTH mechanism [initial-response]");
			return;
		}
	}
	if (!session_plaintext_ok(&s->base)) {
		pop3d_session_error(s, "%s", POP3D_PLAINTEXT_REFUSED);
		return;
	}
	if ((mech = sasl_mech_parse(args)) == SASL_NONE) {
		pop3d_session_error(s,
		    "-ERR Unsupported authentication mechanism.");
		return;
	}
	s->method = mech == SASL_PLAIN ? "PLAIN" : "LOGIN";
	pop3d_auth_step(s, sasl_start(&s->sasl, mech, ir, &challenge, &why),
	    &challenge);
	buf_free(&challenge);
	buf_free(&why);
}

/* pop3d_auth_sasl_line - a client response during AUTH ("*": cancel) */
void
pop3d_auth_sasl_line(struct pop3d_session *s, char *line, size_t len)
{
	struct buf challenge = BUF_INIT, why = BUF_INIT;

	s->base.last_cmd = "AUTH";
	pop3d_auth_step(s, sasl_step(&s->sasl, line, &challenge, &why),
	    &challenge);
	buf_free(&challenge);
	buf_free(&why);
}

/* pop3d_auth_abort - forget the login in progress */
void
pop3d_auth_abort(struct pop3d_session *s)
{
	auth_client_cancel(&s->auth);
	sasl_wipe(&s->sasl);
}
