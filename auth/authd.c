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
 *	(auth_processes; 0: one per core, at least 2), and never in an
 *	event loop. Each server bounds what it asks at once (auth_client.c:
 *	per process, per client address prefix, cold prefixes first), so
 *	that a flood from many addresses cannot fill this pool or the
 *	listen backlog.
 *
 *	The login name is lowercased; a name without "@" gets
 *	"@auth_default_domain" (or fails when that is empty). The account
 *	must exist in the directory, be enabled, and have a crypt(3) hash in
 *	the password database (yescrypt, SHA512-CRYPT or bcrypt) that the
 *	password matches. Unknown, disabled and password-less accounts get
 *	the same answer as a wrong password.
 *
 *	Neither does the time of an answer tell which accounts exist or how
 *	their passwords are hashed. Every check makes exactly one yescrypt
 *	computation at libxcrypt's default cost (auth_verify.c): the real
 *	one for a hash at that cost, a dummy one for every other account,
 *	known or not, followed by the real check for an enabled account
 *	with another hash. On top of that equal work, every answer other
 *	than ok carries, in its delay, what is left of auth_answer_floor
 *	milliseconds since authd took the request: the server waits it out
 *	before it answers its client, so a failed login takes the floor (or
 *	the work, when that is longer) whatever the account, and the authd
 *	process is free for the next request meanwhile. Successful logins
 *	do not wait (their answer tells anyway).
 *
 *	After a successful full check against a current hash, authd
 *	remembers it (auth_cache.c: keyed HMAC-SHA256 digests of the
 *	password and of the hash, under a key made at start and kept in this
 *	process's memory only, for auth_cache_ttl, at most auth_cache_size
 *	accounts). A later login of that account whose password and current
 *	hash match the entry, the account still enabled, makes no yescrypt;
 *	the throttle checks come first as always, and anything else (a
 *	wrong password above all) gets the full equal-work check. A reload
 *	replaces the processes and so empties the caches; at exit one line
 *	tells what the cache did and its entries and key are wiped.
 *
 *	A hash that is not yescrypt at the default cost (an imported
 *	SHA512-CRYPT or bcrypt, an older yescrypt) is replaced by a fresh
 *	default yescrypt hash of the password at its owner's next successful
 *	login, after the answer is sent, and logged in one line. The
 *	replacement is one write transaction that keeps a hash heraldctl
 *	changed meanwhile. The password database is opened once per process
 *	(when it exists) and kept open; each lookup is a new read
 *	transaction, so heraldctl's changes are seen at the next login.
 *
 *	Failure throttling (auth_throttle.c) lives in the LMDB environment
 *	<data_directory>/authstate/, shared by all authd processes and kept
 *	across restarts. Each failure counts for the client address and for
 *	the account; the count forgets failures after auth_failure_window
 *	without one. While an address has recent failures every answer to
 *	it, success included, carries a delay of auth_failure_delay doubling
 *	per failure up to auth_failure_delay_max, which the server waits out
 *	before it answers its client. An attempt counts as a failure from
 *	its start until it is settled (so that guesses in flight at once
 *	cannot overshoot a lockout), but only settled failures make the
 *	delay: logins in flight at once from one address (a webmail server)
 *	do not delay each other. auth_client_lockout failures lock the
 *	address for auth_lockout_time: authd then answers "locked" without
 *	checking the password. Account failures count per (account, client
 *	address prefix: auth_prefix_v4, auth_prefix_v6):
 *	auth_account_prefix_lockout of them lock the account for that prefix
 *	only, so that strangers elsewhere cannot lock its owner out; the
 *	account as a whole is locked only at auth_account_lockout failures
 *	within auth_account_window (a high, slow limit). A prefix the
 *	account logged in from within auth_known_prefix_time (at most
 *	auth_known_prefix_max per account) is never locked for it: there
 *	only the address lockout applies. A successful login clears the
 *	account's counts only: the address keeps its failures until the
 *	window passes,
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
 *	delay is the failure throttling's delay plus, on any answer but ok,
 *	the rest of auth_answer_floor. The request must arrive within
 *	auth_timeout. A request whose connection the server has closed
 *	by the time authd takes it (its client went away while it waited)
 *	is dropped before the check, and not counted. A malformed request
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
 * *	  password rehashed: user=<alice@example.test> from=SHA512-CRYPT
 *	      to=yescrypt
 *	  auth cache: 40 hits, 3 misses, 3 stored, 0 dropped, 0 evicted,
 *	      3 entries wiped at exit
 *	(the last at exit; with -v also "auth cache hit" per hit, without
 *	the user)
 *
 * SECURITY
 *	authd runs as auth_user, the only user that can read the password
 *	database (<data_directory>/passwd, which master gives to auth_user
 *	at start, folder 0700 and files 0600) and write it (rehashing) and
 *	authstate. heraldctl writes the password database too; LMDB
 *	serialises the writers. It reads the directory through
 *	directory_group. It trusts its peers (herald's own servers) no more
 *	than to send well-formed frames; every value is checked and bounded,
 *	passwords are wiped from memory after use, and user text is escaped
 *	before it is logged.
 *
 * SETTINGS (herald.conf)
 *	auth_user, directory_group, data_directory, run_directory,
 *	auth_processes, auth_timeout, auth_default_domain,
 *	auth_failure_window, auth_failure_delay, auth_failure_delay_max,
 *	auth_client_lockout, auth_account_lockout, auth_account_window,
 *	auth_account_prefix_lockout, auth_known_prefix_time,
 *	auth_known_prefix_max, auth_prefix_v4, auth_prefix_v6,
 *	auth_lockout_time, auth_answer_floor, auth_cache_ttl,
 *	auth_cache_size.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include "base/buf.h"
#include "base/evloop.h"
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
#define AUTHD_DELAY_MAX (600 * 1000LL)	/* what auth_client accepts */

static struct dir *authd_dir;		/* opened on first use */
static struct dir_passwd *authd_passwd;	/* kept open once it exists */
static struct auth_throttle *authd_throttle;
static struct auth_throttle_conf authd_conf;
static struct auth_cache *authd_cache;	/* NULL: off (auth_cache.c) */

/* a successful login whose hash is to be replaced after the answer */
struct authd_upgrade {
	char account[AUTH_USER_MAX + 1];
	struct buf old;		/* the hash it logged in with; "" none */
};

/* authd_passwords - the password database, opened once when it exists;
 * NULL with why empty: there is none yet (no user has a password) */
static struct dir_passwd *
authd_passwords(struct buf *why)
{
	if (authd_passwd == NULL &&
	    dir_passwd_open(var_data_directory, &authd_passwd, why) < 0)
		return NULL;
	return authd_passwd;
}

/* authd_exit - at exit: one line of what the cache did, then wipe its
 * entries and key */
static void
authd_exit(void)
{
	struct auth_cache_stats st;

	if (authd_cache == NULL)
		return;
	auth_cache_stats(authd_cache, &st);
	msg_info("auth cache: %lld hits, %lld misses, %lld stored, "
	    "%lld dropped, %lld evicted, %lld entries wiped at exit",
	    st.hits, st.misses, st.stored, st.dropped, st.evicted,
	    st.entries);
	auth_cache_free(&authd_cache);
}

/* authd_init - after the drop: open the throttle state */
static void
authd_init(struct service *svc)
{
	struct buf why = BUF_INIT;
	char *path = xasprintf("%s/authstate", var_data_directory);
	long n;

	/* stale reader slots of killed authd processes: cleared here, as
	 * auth_user, not by master as root in a folder authd can write */
	if (dir_passwd_reader_check(var_data_directory, &why) < 0) {
		msg_warn("%s", buf_cstr(&why));
		buf_reset(&why);
	}
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
	/* the password database, kept open (it may not exist yet) */
	if (authd_passwords(&why) == NULL && why.len > 0)
		msg_warn("%s", buf_cstr(&why));
	/* learn the default yescrypt setting now, not in the first answer */
	auth_verify_dummy("warm up");
	/* recent successful logins, in this process's memory only: no
	 * core dump, and no other process of auth_user (heraldctl's child
	 * for lockouts) may read or trace it (the kernel did so already
	 * if the drop changed the uid) */
	authd_cache = auth_cache_new(var_auth_cache_size, var_auth_cache_ttl);
	if (authd_cache != NULL && prctl(PR_SET_DUMPABLE, 0) < 0)
		msg_fatal("prctl(PR_SET_DUMPABLE): %m");
	if (atexit(authd_exit) != 0)
		msg_fatal("atexit: cannot register the cache wipe");
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
 * authd_floor_ms - what is left of auth_answer_floor since started: the
 * server waits it out (with the throttle delay) before it answers its
 * client, so a failed login takes the same time whatever the account and
 * its hash, while this process goes on to the next request. Rounded up:
 * the answer is never early.
 */
static long long
authd_floor_ms(long long started)
{
	long long spent = evloop_clock() - started + 1;

	return spent < var_auth_answer_floor ?
	    var_auth_answer_floor - spent : 0;
}

/*
 * authd_decide - the answer to one checked request: fills reply (with
 * the log line's facts) and logs it. The throttle check and the count of
 * the attempt come first, in one transaction (auth_throttle_begin); the
 * password check holds no transaction; auth_throttle_end settles after.
 */
static void
authd_decide(const char *login, const char *password, const char *client,
    const char *service, struct ipc_msg *reply, struct authd_upgrade *up)
{
	char account[AUTH_USER_MAX + 1];
	struct auth_throttle_state st;
	struct buf reason = BUF_INIT, why = BUF_INIT, line = BUF_INIT;
	enum auth_verdict v;
	enum auth_result result;
	const char *acct = NULL, *shown = login;
	long long now = (long long)time(NULL), delay, failures;
	long long started = evloop_clock();
	struct dir_passwd *pw;
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
	/*
	 * st counts this attempt (begun 1) as a failure until it is settled,
	 * and so it does the attempts other authd processes have begun for
	 * this address and not settled yet: they lock the address at its
	 * threshold, but the delay counts only the failures that are known
	 * (so that a webmail server's burst of good logins from one address
	 * is not delayed as if each one had failed) and this attempt.
	 */
	failures = st.client_failures;
	if (begun > 0)
		failures = st.client_failures - st.client_pending + 1;

	if (begun == 0) {
		/* locked: no password check at all */
		result = AUTH_LOCKED;
		buf_reset(&reason);
		if (st.client_locked_until > 0)
			authd_lock_reason(&reason, "client address",
			    st.client_locked_until);
		else if (st.account_locked_until > 0)
			authd_lock_reason(&reason, "account",
			    st.account_locked_until);
		else
			authd_lock_reason(&reason, "account from this "
			    "address prefix", st.pair_locked_until);
	} else {
		if (acct == NULL) {
			auth_verify_dummy(password);
			v = AUTH_VERDICT_FAIL;
		} else if ((d = authd_directory(&why)) == NULL) {
			buf_printf(&reason, "directory: %s", buf_cstr(&why));
			v = AUTH_VERDICT_TEMPFAIL;
		} else if ((pw = authd_passwords(&why)) == NULL &&
		    why.len > 0) {
			buf_printf(&reason, "password database: %s",
			    buf_cstr(&why));
			v = AUTH_VERDICT_TEMPFAIL;
		} else {
			v = auth_verify_account(d, pw, authd_cache, acct,
			    password, &up->old, &reason);
			if (v == AUTH_VERDICT_OK && up->old.len > 0)
				snprintf(up->account, sizeof(up->account),
				    "%s", acct);
			else
				buf_reset(&up->old);
		}
		result = v == AUTH_VERDICT_OK ? AUTH_OK :
		    v == AUTH_VERDICT_FAIL ? AUTH_FAIL : AUTH_TEMPFAIL;
		if (begun > 0) {
			buf_reset(&why);
			if (auth_throttle_end(authd_throttle, client, acct,
			    result, now, &st, &why) < 0)
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
		} else if (st.pair_locked_until > 0) {
			buf_puts(&reason, "; ");
			authd_lock_reason(&reason, "account from this "
			    "address prefix now", st.pair_locked_until);
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
	if (result != AUTH_OK)
		delay += authd_floor_ms(started);
	if (delay > AUTHD_DELAY_MAX)
		delay = AUTHD_DELAY_MAX;
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

/* authd_upgrade - replace the weaker hash a user just logged in with by
 * a default yescrypt one; one log line, without the password */
static void
authd_upgrade(struct authd_upgrade *up, const char *password)
{
	struct buf why = BUF_INIT, name = BUF_INIT;
	const char *scheme = auth_verify_scheme(buf_cstr(&up->old));
	int r;

	r = auth_verify_upgrade(authd_passwd, up->account, password,
	    buf_cstr(&up->old), &why);
	auth_log_user(&name, up->account);
	if (r > 0)
		msg_info("password rehashed: user=<%s> from=%s to=yescrypt",
		    buf_cstr(&name), scheme);
	else if (r == 0)
		msg_info("password not rehashed: user=<%s>: changed "
		    "meanwhile", buf_cstr(&name));
	else
		msg_warn("password not rehashed: user=<%s> from=%s: %s",
		    buf_cstr(&name), scheme, buf_cstr(&why));
	explicit_bzero(up->old.data, up->old.cap);
	buf_free(&name);
	buf_free(&why);
}

/* authd_peer_gone - has the server closed the connection (fully: a
 * half-close still wants the answer)? */
static bool
authd_peer_gone(int fd)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};

	return poll(&pfd, 1, 0) > 0 &&
	    (pfd.revents & (POLLHUP | POLLERR)) != 0;
}

/* authd_serve - one connection: one request, one answer */
static void
authd_serve(struct service *svc, int fd, const struct service_listener *l)
{
	struct ipc_msg req, reply;
	struct authd_upgrade up = {.old = BUF_INIT};
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
	if (authd_peer_gone(fd)) {
		/* the server gave up on it (its client left, it timed out)
		 * while it waited in the backlog: no check, no count */
		msg_info("request dropped: service=%s client=[%s]: the server "
		    "closed the connection before the check",
		    ipc_get_str(&req, IPC_SERVICE),
		    ipc_get_str(&req, IPC_CLIENT));
		goto out;
	}
	authd_decide(ipc_get_str(&req, IPC_USER),
	    ipc_get_str(&req, IPC_PASSWORD), ipc_get_str(&req, IPC_CLIENT),
	    ipc_get_str(&req, IPC_SERVICE), &reply, &up);
	buf_reset(&why);
	if (ipc_send(fd, &reply, -1, (int)(var_auth_timeout * 1000),
	    &why) < 0)
		msg_warn("%s: reply not sent: %s", l->name, buf_cstr(&why));
	/* after the answer: the client need not wait for a second hash */
	if (up.old.len > 0)
		authd_upgrade(&up, ipc_get_str(&req, IPC_PASSWORD));
out:
	if (req.body.cap > 0)
		explicit_bzero(req.body.data, req.body.cap);
	ipc_msg_free(&req);
	ipc_msg_free(&reply);
	buf_free(&up.old);
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
