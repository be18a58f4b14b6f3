/*
 * smtpd_auth - SMTP AUTH (RFC 4954) on the submission roles: PLAIN and
 * LOGIN, parsed by lib/mail/sasl.c and checked by authd through
 * auth_client (service "smtp"), as pop3d and imapd do it.
 *
 * AUTH exists only on the submission (587) and submissions (465)
 * listeners; port 25 neither lists nor accepts it. On 587 it is listed
 * and accepted only after STARTTLS (unless auth_plaintext = always):
 * before, AUTH gets 530 5.7.0 "Must issue a STARTTLS command first".
 * While authd checks the password the session's input is paused, so
 * pipelined commands wait for the answer; authd's failure delay is
 * waited out by auth_client before the callback.
 *
 * Replies:
 *   235 2.7.0  logged in
 *   334 ...    a SASL challenge
 *   501 5.0.0  the client cancelled ("*")
 *   501 5.5.2  the response is not valid base64 / SASL
 *   503 5.5.1  AUTH twice, or during a mail transaction
 *   504 5.5.4  unknown mechanism
 *   535 5.7.8  wrong credentials, or locked out after too many
 *   454 4.7.0  authd could not decide
 * Every failure counts toward smtpd_error_limit; authd counts failed
 * logins per client address and account (its throttle, and the
 * "login failed" line fail2ban reads). Passwords and SASL responses are
 * never logged, not even with -v.
 */
#include <string.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "base/stream.h"
#include "mail/auth_client.h"
#include "mail/params.h"
#include "mail/sasl.h"
#include "smtpd.h"

/* smtpd_auth_offered - AUTH listed and allowed in this session now */
bool
smtpd_auth_offered(const struct smtpd_session *s)
{
	switch (s->role) {
	case SMTPD_ROLE_SUBMISSIONS:
		return true;
	case SMTPD_ROLE_SUBMISSION:
		/* pop3d's and imapd's rule, but never for loopback alone:
		 * RFC 6409 wants STARTTLS before AUTH */
		return sasl_plaintext_rule(var_auth_plaintext,
		    stream_is_tls(s->base.stream), false);
	default:
		return false;
	}
}

/* smtpd_auth_end - the exchange is over: wipe it, commands again */
static void
smtpd_auth_end(struct smtpd_session *s)
{
	if (s->sasl != NULL) {
		sasl_wipe(s->sasl);
		x_free(&s->sasl);
	}
	smtpd_session_set_state(s, SMTPD_S_READY);
}

/* smtpd_auth_done - authd's answer (after its failure delay) */
static void
smtpd_auth_done(const struct auth_reply *reply, void *ctx)
{
	struct smtpd_session *s = ctx;
	char user[AUTH_USER_MAX + 1];

	s->auth = NULL;
	s->base.depth++;
	if (s->base.closed || s->state != SMTPD_S_SASL)
		goto out;
	str_lcpy(user, s->sasl != NULL ? s->sasl->authcid : "", sizeof(user));
	smtpd_auth_end(s);
	session_auth_log(&s->base, reply, user, s->auth_method);
	switch (reply->result) {
	case AUTH_OK:
		buf_set(&s->login, reply->user);
		msg_info("login: user=<%s> client=[%s] method=%s tls=%s",
		    reply->user, s->base.peer.addr, s->auth_method,
		    stream_is_tls(s->base.stream) ? "yes" : "no");
		smtpd_session_reply(s, "235 2.7.0 Authentication successful");
		break;
	case AUTH_FAIL:
		smtpd_session_error(s, "535 5.7.8 Error: authentication "
		    "credentials invalid");
		break;
	case AUTH_LOCKED:
		smtpd_session_error(s, "535 5.7.8 Error: too many failed "
		    "logins, try again later");
		break;
	case AUTH_TEMPFAIL:
	default:
		smtpd_session_reply(s, "454 4.7.0 Temporary authentication "
		    "failure");
		break;
	}
	explicit_bzero(user, sizeof(user));
	/* pipelined commands behind AUTH may run now */
	session_set_pause(&s->base, SMTPD_PAUSE_AUTH, false);
out:
	session_leave(&s->base);
}

/* smtpd_auth_verify - the exchange is complete: ask authd */
static void
smtpd_auth_verify(struct smtpd_session *s)
{
	s->auth = session_auth_start(&s->base, SMTPD_PAUSE_AUTH, "smtp",
	    s->sasl->authcid, s->sasl->password, smtpd_auth_done, s);
	/* the password is copied by auth_client: wipe ours now; the
	 * name stays for the log line of the answer */
	explicit_bzero(s->sasl->password, sizeof(s->sasl->password));
}

/* smtpd_auth_step - act on a SASL status */
static void
smtpd_auth_step(struct smtpd_session *s, enum sasl_status st,
    struct buf *challenge)
{
	switch (st) {
	case SASL_CONTINUE:
		smtpd_session_set_state(s, SMTPD_S_SASL);
		smtpd_session_reply(s, "334 %s", buf_cstr(challenge));
		return;
	case SASL_DONE:
		if (!sasl_name_ok(s->sasl->authcid,
		    strlen(s->sasl->authcid))) {
			smtpd_auth_end(s);
			smtpd_session_error(s, "535 5.7.8 Error: "
			    "authentication credentials invalid");
			return;
		}
		smtpd_session_set_state(s, SMTPD_S_SASL);
		smtpd_auth_verify(s);
		return;
	case SASL_CANCELLED:
		smtpd_auth_end(s);
		smtpd_session_error(s, "501 5.0.0 Authentication cancelled");
		return;
	case SASL_ERROR:
	default:
		smtpd_auth_end(s);
		smtpd_session_error(s, "501 5.5.2 Error: cannot decode "
		    "response");
		return;
	}
}

/* smtpd_auth_cmd - AUTH mechanism [initial-response] */
int
smtpd_auth_cmd(struct smtpd_session *s, const char *args, size_t len)
{
	struct buf challenge = BUF_INIT, why = BUF_INIT;
	char mech_name[32];
	const char *sp, *ir = NULL;
	enum sasl_mech mech;
	size_t mlen;

	if (s->role != SMTPD_ROLE_SUBMISSION &&
	    s->role != SMTPD_ROLE_SUBMISSIONS) {
		smtpd_session_error(s, "503 5.5.1 Error: authentication not "
		    "enabled");
		return -1;
	}
	if (!smtpd_auth_offered(s)) {
		smtpd_session_error(s, "530 5.7.0 Must issue a STARTTLS "
		    "command first");
		return -1;
	}
	if (s->login.len > 0) {
		smtpd_session_error(s, "503 5.5.1 Error: already "
		    "authenticated");
		return -1;
	}
	if (!s->esmtp) {
		smtpd_session_error(s, "503 5.5.1 Error: send EHLO first");
		return -1;
	}
	sp = memchr(args, ' ', len);
	mlen = sp != NULL ? (size_t)(sp - args) : len;
	if (sp != NULL) {
		ir = sp + 1;
		while (*ir == ' ')
			ir++;
		if (strchr(ir, ' ') != NULL || *ir == '\0') {
			smtpd_session_error(s, "501 5.5.4 Syntax: AUTH "
			    "mechanism [initial-response]");
			return -1;
		}
	}
	if (mlen == 0) {
		smtpd_session_error(s, "501 5.5.4 Syntax: AUTH mechanism "
		    "[initial-response]");
		return -1;
	}
	if (mlen >= sizeof(mech_name) ||
	    (memcpy(mech_name, args, mlen), mech_name[mlen] = '\0',
	    (mech = sasl_mech_parse(mech_name)) == SASL_NONE)) {
		smtpd_session_error(s, "504 5.5.4 Unrecognized authentication "
		    "type");
		return -1;
	}
	s->auth_method = mech == SASL_PLAIN ? "PLAIN" : "LOGIN";
	s->sasl = xcalloc(1, sizeof(*s->sasl));
	smtpd_auth_step(s, sasl_start(s->sasl, mech, ir, &challenge, &why),
	    &challenge);
	buf_free(&challenge);
	buf_free(&why);
	return 0;
}

/* smtpd_auth_line - a client response line during AUTH ("*": cancel);
 * line is NUL-terminated (the caller's copy, which it wipes) */
void
smtpd_auth_line(struct smtpd_session *s, const char *line, size_t len)
{
	struct buf challenge = BUF_INIT, why = BUF_INIT;

	s->base.last_cmd = "AUTH";
	if (s->sasl == NULL || s->auth != NULL)
		return;		/* cannot happen: input is paused */
	if (memchr(line, '\0', len) != NULL)
		smtpd_auth_step(s, SASL_ERROR, &challenge);
	else
		smtpd_auth_step(s, sasl_step(s->sasl, line, &challenge,
		    &why), &challenge);
	buf_free(&challenge);
	buf_free(&why);
}

/* smtpd_auth_abort - forget an exchange or authd call in progress */
void
smtpd_auth_abort(struct smtpd_session *s)
{
	auth_client_cancel(&s->auth);
	if (s->sasl != NULL) {
		sasl_wipe(s->sasl);
		x_free(&s->sasl);
	}
}
