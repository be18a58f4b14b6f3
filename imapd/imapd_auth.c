/*
 * imapd_auth - logging in: LOGIN (RFC 9051 6.2.3) and AUTHENTICATE PLAIN
 * and LOGIN with or without an initial response (RFC 9051 6.2.2, RFC
 * 4959 SASL-IR; SASL parsed by lib/mail/sasl.c), and the authd call.
 *
 * Passwords only cross a connection that is TLS-protected or allowed by
 * auth_plaintext (the rule of sasl_plaintext_rule, shared with pop3d);
 * otherwise CAPABILITY says LOGINDISABLED and both commands get NO
 * [PRIVACYREQUIRED]. The check goes to authd through
 * auth_client_start() with service "imap", so authd's failure
 * throttling, lockouts and its "login failed" line for fail2ban cover
 * IMAP as they cover POP3. While it runs the session's input is paused.
 *
 * Answers:
 *   ok        "OK [CAPABILITY ...] Logged in"
 *   fail      "NO [AUTHENTICATIONFAILED] Authentication failed."
 *   locked    "NO [AUTHENTICATIONFAILED] Too many failed logins, try
 *             again later." (caused by failed credentials: a client
 *             must not retry on its own)
 *   tempfail  "NO [UNAVAILABLE] Temporary authentication failure."
 * A client that sends "*" during AUTHENTICATE gets BAD (RFC 9051 6.2.2).
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
#include "imapd.h"
#include "imapd_store.h"

#define IMAPD_PLAINTEXT_REFUSED "NO [PRIVACYREQUIRED] Plaintext " \
	"authentication disallowed on non-secure (SSL/TLS) connections."

/* imapd_auth_log_name - a client-given login name, safe for the log */
static const char *
imapd_auth_log_name(struct imapd_session *s)
{
	buf_reset(&s->scratch);
	str_printable(&s->scratch, s->user.data ? s->user.data : "",
	    s->user.len, 100);
	return buf_cstr(&s->scratch);
}

/* imapd_auth_opened - the store is open (or not): the authenticated
 * state, or NO (loop thread) */
static void
imapd_auth_opened(struct imapd_session *s, bool ok)
{
	const char *user = imapd_store_user(s);

	if (s->state != IMAPD_S_WAIT)	/* stopping: BYE was sent */
		return;
	s->state = IMAPD_S_NOAUTH;
	if (!ok) {
		imapd_store_close(s);
		imapd_session_tagged(s, "NO [UNAVAILABLE] Mailbox "
		    "unavailable.");
		return;
	}
	buf_set(&s->mail_path, imapd_store_path(s));
	buf_set(&s->login, user);
	imapd_session_logged_in(s);
	msg_info("login: user=<%s> client=[%s] method=%s tls=%s", user,
	    s->base.peer.addr, s->method, stream_is_tls(s->base.stream) ?
	    "yes" : "no");
	buf_reset(&s->scratch);
	imapd_cmd_capability(s, &s->scratch);
	imapd_session_tagged(s, "OK [CAPABILITY %s] Logged in",
	    buf_cstr(&s->scratch));
	buf_reset(&s->scratch);
}

/* imapd_auth_ok - authd said yes: a job thread opens the user's store
 * (imapd_store.c) while input stays paused */
static void
imapd_auth_ok(struct imapd_session *s, const char *user)
{
	if (!imapd_store_open(s, user, imapd_auth_opened)) {
		imapd_session_tagged(s, "NO [UNAVAILABLE] Mailbox "
		    "unavailable.");
		return;
	}
	s->state = IMAPD_S_WAIT;
}

/* imapd_auth_done - authd's answer (after its failure delay) */
static void
imapd_auth_done(const struct auth_reply *reply, void *ctx)
{
	struct imapd_session *s = ctx;

	s->auth = NULL;
	s->base.depth++;
	if (s->base.closed || s->state != IMAPD_S_WAIT)
		goto out;
	s->state = IMAPD_S_NOAUTH;
	/* silence counts again (imapd_session_logged_in sets the longer
	 * timeout of a logged-in session) */
	stream_set_idle_timeout(s->base.stream,
	    var_imapd_preauth_timeout * 1000);
	session_auth_log(&s->base, reply, buf_cstr(&s->user), s->method);
	switch (reply->result) {
	case AUTH_OK:
		imapd_auth_ok(s, reply->user);
		break;
	case AUTH_FAIL:
		imapd_session_bad(s, "NO [AUTHENTICATIONFAILED] "
		    "Authentication failed.");
		break;
	case AUTH_LOCKED:
		imapd_session_bad(s, "NO [AUTHENTICATIONFAILED] Too many "
		    "failed logins, try again later.");
		break;
	case AUTH_TEMPFAIL:
	default:
		imapd_session_tagged(s, "NO [UNAVAILABLE] Temporary "
		    "authentication failure.");
		break;
	}
	buf_reset(&s->user);
	/* pipelined commands behind the login may run now */
	session_set_pause(&s->base, IMAPD_PAUSE_AUTH, false);
out:
	session_leave(&s->base);
}

/* imapd_auth_start - ask authd about user and password */
static void
imapd_auth_start(struct imapd_session *s, const char *user,
    const char *password)
{
	if (user != buf_cstr(&s->user))
		buf_set(&s->user, user);
	s->state = IMAPD_S_WAIT;
	/* authd's answer may take its failure delay: that is not the
	 * client's silence (auth_client answers within auth_timeout) */
	stream_set_idle_timeout(s->base.stream, 0);
	s->auth = session_auth_start(&s->base, IMAPD_PAUSE_AUTH, "imap",
	    user, password, imapd_auth_done, s);
	sasl_wipe(&s->sasl);
}

/* imapd_auth_login - LOGIN userid password (astrings) */
void
imapd_auth_login(struct imapd_session *s, struct imap_cursor *c)
{
	struct imap_token u, p, end;
	struct buf pw = BUF_INIT;

	if (imap_cursor_next(c, &u) == IMAP_TOK_ERROR ||
	    !imap_tok_astring(&u) || imap_cursor_next(c, &p) ==
	    IMAP_TOK_ERROR || !imap_tok_astring(&p) ||
	    imap_cursor_next(c, &end) != IMAP_TOK_END) {
		imapd_session_bad(s, "BAD Syntax: LOGIN userid password");
		return;
	}
	if (!session_plaintext_ok(&s->base)) {
		imapd_session_bad(s, "%s", IMAPD_PLAINTEXT_REFUSED);
		return;
	}
	imap_tok_string(&u, &s->user);
	imap_tok_string(&p, &pw);
	s->method = "LOGIN";
	if (!sasl_name_ok(s->user.data, s->user.len) || pw.len == 0 ||
	    pw.len > AUTH_PASSWORD_MAX || str_has_crlfnul(pw.data, pw.len)) {
		msg_info("authentication failed: user=<%s> client=[%s] "
		    "method=LOGIN: invalid name or password",
		    imapd_auth_log_name(s), s->base.peer.addr);
		buf_reset(&s->user);
		imapd_session_bad(s, "NO [AUTHENTICATIONFAILED] "
		    "Authentication failed.");
	} else {
		imapd_auth_start(s, buf_cstr(&s->user), buf_cstr(&pw));
	}
	explicit_bzero(pw.data, pw.cap);
	buf_free(&pw);
}

/* imapd_auth_step - act on a SASL status */
static void
imapd_auth_step(struct imapd_session *s, enum sasl_status st,
    struct buf *challenge)
{
	switch (st) {
	case SASL_CONTINUE:
		s->state = IMAPD_S_SASL;
		imapd_session_reply(s, "+ %s", buf_cstr(challenge));
		return;
	case SASL_DONE:
		if (!sasl_name_ok(s->sasl.authcid, strlen(s->sasl.authcid))) {
			sasl_wipe(&s->sasl);
			s->state = IMAPD_S_NOAUTH;
			imapd_session_bad(s, "NO [AUTHENTICATIONFAILED] "
			    "Authentication failed.");
			return;
		}
		imapd_auth_start(s, s->sasl.authcid, s->sasl.password);
		return;
	case SASL_CANCELLED:
		sasl_wipe(&s->sasl);
		s->state = IMAPD_S_NOAUTH;
		imapd_session_bad(s, "BAD Authentication cancelled.");
		return;
	case SASL_ERROR:
	default:
		sasl_wipe(&s->sasl);
		s->state = IMAPD_S_NOAUTH;
		imapd_session_bad(s, "BAD Invalid authentication data.");
		return;
	}
}

/* imapd_auth_authenticate - AUTHENTICATE mechanism [initial-response] */
void
imapd_auth_authenticate(struct imapd_session *s, struct imap_cursor *c)
{
	struct buf challenge = BUF_INIT, why = BUF_INIT, mechname = BUF_INIT;
	struct buf ir = BUF_INIT;
	struct imap_token m, t;
	enum sasl_mech mech;
	bool have_ir = false;

	if (imap_cursor_next(c, &m) != IMAP_TOK_ATOM)
		goto syntax;
	if (imap_cursor_next(c, &t) == IMAP_TOK_ATOM) {
		have_ir = true;
		imap_tok_string(&t, &ir);
		if (imap_cursor_next(c, &t) != IMAP_TOK_END)
			goto syntax;
	} else if (t.type != IMAP_TOK_END) {
		goto syntax;
	}
	if (!session_plaintext_ok(&s->base)) {
		imapd_session_bad(s, "%s", IMAPD_PLAINTEXT_REFUSED);
		goto out;
	}
	imap_tok_string(&m, &mechname);
	if ((mech = sasl_mech_parse(buf_cstr(&mechname))) == SASL_NONE) {
		imapd_session_bad(s, "NO Unsupported authentication "
		    "mechanism.");
		goto out;
	}
	s->method = mech == SASL_PLAIN ? "AUTH=PLAIN" : "AUTH=LOGIN";
	buf_reset(&s->user);
	imapd_auth_step(s, sasl_start(&s->sasl, mech, have_ir ?
	    buf_cstr(&ir) : NULL, &challenge, &why), &challenge);
	goto out;
syntax:
	imapd_session_bad(s, "BAD Syntax: AUTHENTICATE mechanism "
	    "[initial-response]");
out:
	if (ir.cap > 0)
		explicit_bzero(ir.data, ir.cap);
	buf_free(&ir);
	buf_free(&mechname);
	buf_free(&challenge);
	buf_free(&why);
}

/* imapd_auth_sasl_line - a client response during AUTHENTICATE ("*":
 * cancel) */
void
imapd_auth_sasl_line(struct imapd_session *s, const char *line, size_t len)
{
	struct buf challenge = BUF_INIT, why = BUF_INIT;

	(void)len;
	s->base.last_cmd = "AUTHENTICATE";
	imapd_auth_step(s, sasl_step(&s->sasl, line, &challenge, &why),
	    &challenge);
	buf_free(&challenge);
	buf_free(&why);
}

/* imapd_auth_abort - forget the login in progress */
void
imapd_auth_abort(struct imapd_session *s)
{
	auth_client_cancel(&s->auth);
	sasl_wipe(&s->sasl);
}
