/*
 * auth_client - how servers ask authd whether a password is right.
 *
 * authd (auth/) listens on <run_directory>/auth, outside the spool, so
 * that smtpd (herald_user) and pop3d/imapd (vmail_user) can all reach it
 * through directory_group. One connection carries one request frame and
 * one reply frame (lib/mail/ipc.h):
 *
 *   request: request=verify user=LOGIN password=PW client=IP service=NAME
 *   reply:   status=ok|fail|locked|tempfail [user=ADDRESS] [delay=MS]
 *            [reason=TEXT]
 *
 * ok carries the canonical address (lowercased, auth_default_domain
 * added). fail covers a wrong password, an unknown user and a disabled
 * account alike, so clients cannot tell them apart; locked means the
 * client address or the account is locked out for now; tempfail means
 * authd could not decide (database error). reason is for the server's
 * log, never for the client. delay is the time the server must wait
 * before it answers the client (failure throttling); auth_client waits it
 * out itself, so servers get the throttling for free.
 *
 * Event-loop servers use auth_client_start(); the answer arrives through
 * the callback, never from inside auth_client_start() itself. If authd
 * cannot be reached or does not answer within auth_timeout, the result is
 * AUTH_TEMPFAIL. Blocking callers (tests, tools) use auth_client_verify().
 */
#ifndef MAIL_AUTH_CLIENT_H
#define MAIL_AUTH_CLIENT_H

#include <stddef.h>

struct buf;
struct evloop;
struct auth_call;

#define AUTH_USER_MAX 320	/* longest login name / canonical address */
#define AUTH_PASSWORD_MAX 1024	/* longest password accepted */

enum auth_result {
	AUTH_OK,
	AUTH_FAIL,	/* wrong password, unknown or disabled user */
	AUTH_LOCKED,	/* too many recent failures: locked out for now */
	AUTH_TEMPFAIL,	/* authd unreachable, timed out, or undecided */
};

struct auth_request {
	const char *user;	/* login name as the client gave it */
	const char *password;
	const char *client;	/* client IP address text, "127.0.0.1" */
	const char *service;	/* "pop3", "imap", "smtp" (for logs) */
};

struct auth_reply {
	enum auth_result result;
	char user[AUTH_USER_MAX + 1];	/* canonical address when AUTH_OK */
	long long delay_ms;		/* what authd asked to wait */
	char reason[256];		/* for the log */
};

typedef void auth_done_fn(const struct auth_reply *reply, void *ctx);

/* auth_client_prefix - the address prefix addr (IP text) belongs to,
 * "192.0.2.0/24" or "2001:db8::/64" for lengths v4 and v6 (an IPv4-mapped
 * IPv6 address counts as IPv4), into out; text that is not an address
 * is copied as it is (cut at size). */
void auth_client_prefix(const char *addr, int v4, int v6, char *out,
    size_t size);

/* auth_client_socket_path - <run_directory>/auth into out (reset first) */
void auth_client_socket_path(struct buf *out);

/* auth_client_start - send req to authd; done(reply, ctx) is called
 * exactly once from the loop after the reply and its delay (or with
 * AUTH_TEMPFAIL), unless the call is cancelled first. The request
 * strings are copied. */
struct auth_call *auth_client_start(struct evloop *loop,
    const struct auth_request *req, auth_done_fn *done, void *ctx);
/* auth_client_watch - the client's connection: should the client hang
 * up while c waits in the queue, c is dropped (AUTH_TEMPFAIL) instead of
 * going to authd; NULL c is fine */
void auth_client_watch(struct auth_call *c, int fd);
/* auth_client_counts - calls queued and at authd in this process */
void auth_client_counts(int *queued, int *sent);
/* auth_client_cancel - forget the call (session closed): done is never
 * called; *c becomes NULL; NULL is fine */
void auth_client_cancel(struct auth_call **c);

/* auth_client_verify - the blocking form (waits out the delay too);
 * 0 with reply filled (any result), -1 with why only for bad arguments */
int auth_client_verify(const struct auth_request *req, int timeout_ms,
    struct auth_reply *reply, struct buf *why);

#endif
