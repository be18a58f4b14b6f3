/*
 * authd - the herald password checker
 *
 * SYNOPSIS
 *	authd [-c config] [-f] [-v]		(started by master)
 *
 * DESCRIPTION
 *	authd answers one question for smtpd, pop3d and imapd: is this the
 *	password of that account? Password hashing is slow on purpose, so
 *	it runs here, in a small pool of single-model processes
 *	(auth_processes), and never in an event loop.
 *
 *	The login name is lowercased; a name without "@" gets
 *	"@auth_default_domain" (or fails when that is empty). The account
 *	must exist in the directory, be enabled, and have a crypt(3) hash in
 *	the password database (yescrypt, SHA512-CRYPT or bcrypt) that the
 *	password matches. Unknown, disabled and password-less accounts cost
 *	one hash computation too (against a dummy hash) and get the same
 *	answer as a wrong password, so neither the answer nor its timing
 *	tells which accounts exist.
 *
 *	Failure throttling (auth_throttle.c) lives in the LMDB environment
 *	<data_directory>/authstate/, shared by all authd processes and kept
 *	across restarts. Each failure counts for the client address and for
 *	the account; the count forgets failures after auth_failure_window
 *	without one. While an address has recent failures every answer to
 *	it, success included, carries a delay of auth_failure_delay doubling
 *	per failure up to auth_failure_delay_max, which the server waits out
 *	before it answers its client. auth_client_lockout failures lock the
 *	address, auth_account_lockout failures lock the account (from any
 * *	address), for auth_lockout_time: authd then answers "locked" without
 *	checking the password. A successful login clears the account's
 *	count only: the address keeps its failures until the window passes,
 *	so logging in to an account of one's own does not reset guessing at
 *	others. The lockout check and the count of the attempt are one
 *	transaction made before the password check, so several authd
 *	processes cannot together let more guesses through than the limits.
 *	Loopback addresses get no exemption.
 *
 * PROTOCOL
 *	Servers connect to <run_directory>/auth (made by master, mode 0660,
 *	group directory_group) and send one frame (lib/mail/ipc.h):
 *	  {request=verify, user=LOGIN, password=PW, client=IP, service=NAME}
 *	authd answers one frame and closes:
 *	  {status=ok|fail|locked|tempfail, [user=ADDRESS], [delay=MS],
 *	   [reason=TEXT]}
 *	The request must arrive within auth_timeout. A malformed request
 *	(bad frame, unknown attribute, a value with control characters or
 *	over its bound) is logged and the connection dropped unanswered.
 *
 * LOGGING
 *	One line per request, client=[IP] always before the user name (see
 *	etc/fail2ban/filter.d/herald.conf):
 *	  login: service=pop3 client=[192.0.2.7] user=<alice@example.test>
 *	  login failed: service=pop3 client=[192.0.2.7]
 *	      user=<alice@example.test> failures=3 delay=4s: wrong password
 *	  login locked: service=pop3 client=[192.0.2.7]
 *	      user=<alice@example.test>: client address locked out until
 *	      2026-11-23 23:10:00 UTC
 *
 * SECURITY
 *	authd runs as auth_user, the only user that can read the password
 *	database (<data_directory>/passwd, which master gives to auth_user
 *	at start) and write authstate. It reads the directory through
 *	directory_group. It trusts its peers (herald's own servers) no more
 *	than to send well-formed frames; every value is checked and bounded,
 *	passwords are wiped from memory after use, and user text is escaped
 *	before it is logged.
 *
 * SETTINGS (herald.conf)
 *	auth_user, directory_group, data_directory, run_directory,
 *	auth_processes, auth_timeout, auth_default_domain,
 *	auth_failure_window, auth_failure_delay, auth_failure_delay_max,
 *	auth_client_lockout, auth_account_lockout, auth_lockout_time.
 */
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/auth_client.h"
#include "mail/dir.h"
#include "mail/ipc.h"
#include "mail/params.h"
#include "mail/service.h"
#include "auth.h"

#define AUTHD_CLIENT_MAX 64	/* "ffff:...%zone" fits */
#define AUTHD_SERVICE_MAX 32

static struct dir *authd_dir;		/* opened on first use */
static struct auth_throttle *authd_throttle;
static struct auth_throttle_conf authd_conf;

/* authd_init - after the drop: open the throttle state */
static void
authd_init(struct service *svc)
{
	struct buf why = BUF_INIT;
	char *path = xasprintf("%s/authstate", var_data_directory);
	long n;

	auth_throttle_conf_params(&authd_conf);
	if (auth_throttle_open(path, &authd_conf, 0, &authd_throttle,
	    &why) < 0)
		msg_fatal("authstate %s: %s", path, buf_cstr(&why));
	if ((n = auth_throttle_prune(authd_throttle, (long long)time(NULL), 0,
	    &why)) < 0)
		msg_warn("authstate %s: %s", path, buf_cstr(&why));
	else if (n > 0)
		msg_debug("authstate: %ld expired entries removed", n);
	x_free(&path);
	buf_free(&why);
}

/* authd_directory - the directory, opened read-only when first needed */
static struct dir *
authd_directory(struct buf *why)
{
	if (authd_dir == NULL && dir_open(var_data_directory, DIR_READ,
	    &authd_dir, why) < 0)
		return NULL;
	return authd_dir;
}

/* authd_request_check - every attribute there, known and bounded */
static int
authd_request_check(const struct ipc_msg *m, struct buf *why)
{
	static const char *const allowed[] = {IPC_REQUEST, IPC_USER,
	    IPC_PASSWORD, IPC_CLIENT, IPC_SERVICE, NULL};
	static const char *const once[] = {IPC_REQUEST, IPC_USER,
	    IPC_PASSWORD, IPC_CLIENT, IPC_SERVICE};
	const char *request, *user, *pw;
	size_t pos = 0, n;
	const char *name, *value;
	int seen[5] = {0};

	if (ipc_expect_only(m, allowed, why) < 0)
		return -1;
	while (ipc_next(m, &pos, &name, &value))
		for (int i = 0; i < 5; i++)
			if (strcmp(name, once[i]) == 0 && seen[i]++ > 0) {
				buf_printf(why, "attribute \"%s\" repeated",
				    name);
				return -1;
			}
	request = ipc_get_str(m, IPC_REQUEST);
	if (request == NULL || strcmp(request, "verify") != 0) {
		buf_puts(why, "request is not \"verify\"");
		return -1;
	}
	user = ipc_get_str(m, IPC_USER);
	if (user == NULL || (n = strlen(user)) == 0 || n > AUTH_USER_MAX ||
	    str_has_crlfnul(user, n)) {
		buf_puts(why, "missing, empty, long or multi-line user");
		return -1;
	}
	pw = ipc_get_str(m, IPC_PASSWORD);
	if (pw == NULL || (n = strlen(pw)) == 0 || n > AUTH_PASSWORD_MAX ||
	    str_has_crlfnul(pw, n)) {
		buf_puts(why, "missing, empty, long or multi-line password");
		return -1;
	}
	if (!auth_log_token_ok(ipc_get_str(m, IPC_CLIENT), AUTHD_CLIENT_MAX)) {
		buf_puts(why, "missing or bad client address");
		return -1;
	}
	if (!auth_log_token_ok(ipc_get_str(m, IPC_SERVICE),
	    AUTHD_SERVICE_MAX)) {
		buf_puts(why, "missing or bad service name");
		return -1;
	}
	return 0;
}

/* authd_lock_reason - "client address locked out until ..." */
static void
authd_lock_reason(struct buf *out, const char *what, long long until)
{
	buf_printf(out, "%s locked out until ", what);
	auth_log_time(out, until);
}

/*
 * authd_decide - the answer to one checked request: fills reply (with
 * the log line's facts) and logs it. The throttle check and the count of
 * the attempt come first, in one transaction (auth_throttle_begin); the
 * password check holds no transaction; auth_throttle_end settles after.
 */
static void
authd_decide(const char *login, const char *password, const char *client,
    const char *service, struct ipc_msg *reply)
{
	char account[AUTH_USER_MAX + 1];
	struct auth_throttle_state st;
	struct buf reason = BUF_INIT, why = BUF_INIT, line = BUF_INIT;
	enum auth_verdict v;
	enum auth_result result;
	const char *acct = NULL, *shown = login;
	long long now = (long long)time(NULL), delay, failures;
	struct dir *d;
	int begun;

	if (auth_verify_canonical(login, var_auth_default_domain, account,
	    sizeof(account), &reason) == 0)
		acct = shown = account;
	if ((begun = auth_throttle_begin(authd_throttle, client, acct, now,
	    &st, &why)) < 0) {
		msg_warn("authstate: %s: not throttling this request",
		    buf_cstr(&why));
		buf_reset(&why);
	}
	/* st counts this attempt (begun 1) as a failure until it is settled */
	failures = st.client_failures;

	if (begun == 0) {
		/* locked: no password check at all */
		result = AUTH_LOCKED;
		buf_reset(&reason);
		if (st.client_locked_until > 0)
			authd_lock_reason(&reason, "client address",
			    st.client_locked_until);
		else
			authd_lock_reason(&reason, "account",
			    st.account_locked_until);
	} else {
		if (acct == NULL) {
			auth_verify_dummy(password);
			v = AUTH_VERDICT_FAIL;
		} else if ((d = authd_directory(&why)) == NULL) {
			buf_printf(&reason, "directory: %s", buf_cstr(&why));
			v = AUTH_VERDICT_TEMPFAIL;
		} else {
			v = auth_verify_account(d, var_data_directory, acct,
			    password, &reason);
		}
		result = v == AUTH_VERDICT_OK ? AUTH_OK :
		    v == AUTH_VERDICT_FAIL ? AUTH_FAIL : AUTH_TEMPFAIL;
		if (begun > 0) {
			buf_reset(&why);
			if (auth_throttle_end(authd_throttle, client, acct,
			    result, now, &why) < 0)
				msg_warn("authstate: %s", buf_cstr(&why));
			if (result != AUTH_FAIL)
				failures--;	/* not counted after all */
		} else if (result == AUTH_FAIL) {
			failures = 1;	/* not recorded: fail open */
		}
	}
	if (result == AUTH_FAIL && begun > 0) {
		/* did this failure start a lockout? */
		if (st.client_locked_until > 0) {
			buf_puts(&reason, "; ");
			authd_lock_reason(&reason, "client address now",
			    st.client_locked_until);
		} else if (st.account_locked_until > 0) {
			buf_puts(&reason, "; ");
			authd_lock_reason(&reason, "account now",
			    st.account_locked_until);
		}
	}
	delay = auth_throttle_delay_ms(&authd_conf, failures);

	auth_log_line(&line, result, service, client, shown, failures, delay,
	    buf_cstr(&reason));
	if (result == AUTH_TEMPFAIL)
		msg_warn("%s", buf_cstr(&line));
	else
		msg_info("%s", buf_cstr(&line));

	ipc_put_str(reply, IPC_STATUS, result == AUTH_OK ? "ok" :
	    result == AUTH_FAIL ? "fail" : result == AUTH_LOCKED ? "locked" :
	    "tempfail");
	if (result == AUTH_OK)
		ipc_put_str(reply, IPC_USER, acct);
	if (delay > 0)
		ipc_put_int(reply, IPC_DELAY, delay);
	if (result != AUTH_OK && reason.len > 0) {
		buf_reset(&line);
		str_printable(&line, reason.data, reason.len, 200);
		ipc_put_str(reply, IPC_REASON, buf_cstr(&line));
	}
	buf_free(&reason);
	buf_free(&why);
	buf_free(&line);
}

/* authd_serve - one connection: one request, one answer */
static void
authd_serve(struct service *svc, int fd, const struct service_listener *l)
{
	struct ipc_msg req, reply;
	struct buf why = BUF_INIT;
	int r;

	ipc_msg_init(&req);
	ipc_msg_init(&reply);
	r = ipc_recv(fd, &req, NULL, (int)(var_auth_timeout * 1000), &why);
	if (r <= 0) {
		if (r < 0)
			msg_warn("%s: request dropped: %s", l->name,
			    buf_cstr(&why));
		goto out;
	}
	if (authd_request_check(&req, &why) < 0) {
		msg_warn("%s: malformed request dropped: %s", l->name,
		    buf_cstr(&why));
		goto out;
	}
	authd_decide(ipc_get_str(&req, IPC_USER),
	    ipc_get_str(&req, IPC_PASSWORD), ipc_get_str(&req, IPC_CLIENT),
	    ipc_get_str(&req, IPC_SERVICE), &reply);
	/* the password is no longer needed */
	if (req.body.cap > 0)
		explicit_bzero(req.body.data, req.body.cap);
	buf_reset(&why);
	if (ipc_send(fd, &reply, -1, (int)(var_auth_timeout * 1000),
	    &why) < 0)
		msg_warn("%s: reply not sent: %s", l->name, buf_cstr(&why));
out:
	if (req.body.cap > 0)
		explicit_bzero(req.body.data, req.body.cap);
	ipc_msg_free(&req);
	ipc_msg_free(&reply);
	buf_free(&why);
}

int
main(int argc, char **argv)
{
	return service_main(argc, argv, &(const struct service_def){
		.name = "authd",
		.model = SERVICE_SINGLE,	/* one request at a time */
		.user = &var_auth_user,
		.reads_directory = true,
		.init = authd_init,
		.serve = authd_serve,
	});
}
