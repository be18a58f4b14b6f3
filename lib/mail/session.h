/*
 * session - what every line-protocol session of a server (smtpd, pop3d,
 * imapd) has in common: a client connection as a stream on the worker's
 * event loop, the worker's list and count of sessions, the reasons input
 * is paused, and the rule for when a session may be freed.
 *
 * A protocol's session struct begins with a struct session (checked with
 * SESSION_BASE_FIRST) and is allocated zeroed by the protocol, which then
 * calls session_open(). From then on the stream's events arrive at the
 * protocol's session_ops; session_open and every event run inside one
 * level of "depth", and code that acts on a session outside an event
 * (a timer, a reply from another process) brackets itself with
 * s->depth++ ... session_leave(s). The outermost session_leave() frees a
 * session whose stream has closed, unless ops->held says something still
 * refers to it (smtpd: the commit thread has its queue file).
 *
 * Limits come before all that: session_admit() checks a new connection
 * against the worker's session limit, the descriptors left and the
 * client's count over all workers (peer.h) before any session, stream or
 * TLS object exists, and a connection over a limit gets the protocol's
 * refusal line in plaintext (session_refuse; on an implicit-TLS port
 * nothing) and is closed at once. So a flood of connections from one
 * client costs an accept and a close each, not a handshake and a session
 * held until a timeout, and every protocol gets the same rule.
 *
 * Freeing runs ops->end first (the protocol logs the end while the stream
 * and peer still exist, and frees its own part), then closes the peer and
 * the stream, ends the service's session count and frees the object.
 *
 * The end of a session, shared by pop3d and imapd (the wording of each
 * protocol's goodbye stays with the protocol): the name of the last
 * command for log lines (session_cmd), the count of client errors with
 * its "too many errors" log line (session_count_error), the flush and
 * close with the reason for the log (session_finish; no reply is queued
 * after it), and the "disconnect from [ip] (reason)" line
 * (session_log_end).
 */
#ifndef MAIL_SESSION_H
#define MAIL_SESSION_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "mail/auth_client.h"
#include "mail/peer.h"

struct evloop;
struct service;
struct stream;
struct stream_limits;
struct session;

/* what a protocol does on its stream's events; all but end optional */
struct session_ops {
	void (*input)(struct session *s);	/* input buffered */
	void (*tls_ready)(struct session *s);	/* handshake done */
	void (*timeout)(struct session *s);	/* idle or total deadline */
	void (*drained)(struct session *s);	/* output pause lifted */
	bool (*held)(const struct session *s);	/* not to be freed yet */
	void (*end)(struct session *s);	/* log the end, free own part */
};

/* the sessions of one worker */
struct session_pool {
	struct service *svc;	/* counts them (NULL: nobody, in tests) */
	struct evloop *loop;
	struct session *head;
	long long n;
};

struct session {
	const struct session_ops *ops;
	struct session_pool *pool;
	struct session *prev, *next;	/* the pool's list */
	struct stream *stream;
	struct peer peer;	/* client address, per-address count */
	unsigned pause;		/* reasons not to read input, bits */
	unsigned drain_bit;	/* the pause STREAM_DRAINED lifts */
	int depth;		/* nesting of callbacks */
	bool closed;		/* STREAM_CLOSED seen */
	bool finishing;		/* session_finish ran: flush, then close */
	int errors;		/* client errors so far (session_count_error) */
	const char *last_cmd;	/* name of the last command, for logs */
	const char *end_reason;	/* why we closed, for the disconnect log */
};

/* what a protocol allows at accept (session_admit) */
struct session_admit {
	long long max_sessions;	/* sessions in this worker */
	int session_fds;	/* descriptors one session may hold */
	long long client_limit;	/* sessions of one client key, all workers */
};

/* session_admit's verdict */
enum session_verdict {
	SESSION_ADMIT,		/* serve it */
	SESSION_BUSY,		/* the worker is full (sessions or fds) */
	SESSION_CLIENT,		/* the client has client_limit sessions */
};

/* the most a client may send without a line feed after its last whole
 * line (a command line beyond the protocol's limit is skipped up to
 * here, then the session ends: see session_runaway) */
#define SESSION_RUNAWAY_MAX (64 * 1024)

/* SESSION_BASE_FIRST - a compile-time check that type starts with its
 * struct session member named base */
#define SESSION_BASE_FIRST(type)                                              \
	_Static_assert(offsetof(type, base) == 0,                             \
	    #type " must begin with its struct session")

/* session_pool_init - an empty pool on loop (the service's), whose
 * sessions svc counts (service_session_begin/_end) */
void session_pool_init(struct session_pool *p, struct service *svc,
    struct evloop *loop);
/* session_admit - check new connection fd against a's limits before
 * anything is made for it; the client is counted in *peer (peer_open)
 * either way. SESSION_ADMIT: pass peer to session_open_peer(); else
 * refuse with session_refuse() */
enum session_verdict session_admit(const struct session_pool *p, int fd,
    const struct session_admit *a, struct peer *peer);
/* session_check - session_admit, and over a limit what pop3d and imapd
 * do about it: the log lines ("connect from [ip] (tls_name)", a warning
 * naming the limits, "disconnect from [ip] (rejected)") and the refusal
 * line busy or client (nothing on implicit TLS: the client could not
 * read it, and a handshake is what a flood must not cost). True: serve
 * the connection with peer (session_open_peer) */
bool session_check(const struct session_pool *p, int fd,
    const struct session_admit *a, bool implicit_tls, const char *tls_name,
    const char *busy, const char *client, struct peer *peer);
/* session_refuse - end a connection session_admit refused: one line
 * (fmt; CRLF added; NULL: none, for implicit TLS) sent without waiting,
 * the peer's count ended, fd closed */
/* session_plaintext_ok - may a password cross this session's connection
 * (TLS, or auth_plaintext allows it for the client: sasl_plaintext_rule)?
 * The one rule of every protocol server. */
bool session_plaintext_ok(const struct session *s);
void session_refuse(int fd, struct peer *peer, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* session_open - start s (zeroed, base first) on connection fd: peer,
 * stream (a TLS handshake on it gets tls_handshake_timeout), pool,
 * service count; returns at depth 1: end with
 * session_leave() */
void session_open(struct session_pool *p, struct session *s,
    const struct session_ops *ops, int fd, const struct stream_limits *lim);
/* session_open_peer - session_open for a connection session_admit
 * admitted: s takes over *peer (which must not be closed after) */
void session_open_peer(struct session_pool *p, struct session *s,
    const struct session_ops *ops, int fd, const struct stream_limits *lim,
    const struct peer *peer);
/* session_runaway - has the client sent more than SESSION_RUNAWAY_MAX
 * bytes without a line feed since its last whole line (the rest of an
 * over-long line included)? The protocol then says so and closes. */
bool session_runaway(const struct session *s);
/* session_leave - end of one level of callbacks; may free s */
void session_leave(struct session *s);
/* session_vreply - queue one reply line unless the stream has closed or
 * the session is finishing */
void session_vreply(struct session *s, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* session_set_pause - set or clear one reason to stop reading */
void session_set_pause(struct session *s, unsigned bit, bool on);
/* session_backlog - more than high bytes of output unsent? then pause
 * input for bit until it is down to low (ops->drained follows) */
bool session_backlog(struct session *s, size_t high, size_t low,
    unsigned bit);
/* session_auth_start - ask authd (auth_client_start; service "smtp",
 * "pop3", "imap") whether password is user's, for this session's client.
 * Input is paused for bit; done clears it. A client that hangs up while
 * the request waits in the queue costs authd nothing. */
struct auth_call *session_auth_start(struct session *s, unsigned bit,
    const char *service, const char *user, const char *password,
    auth_done_fn *done, void *ctx);
/* session_auth_log - the log line of a login authd did not accept
 * (fail, locked, tempfail; nothing for ok), the same for every protocol
 * as fail2ban's filter reads it: user as the client gave it (made
 * printable here), method the SASL mechanism or command */
void session_auth_log(const struct session *s,
    const struct auth_reply *reply, const char *user, const char *method);
/* session_log_tls - "TLS connection established from [ip]: ..." */
void session_log_tls(struct session *s);
/* session_cmd - the last command's name for a log line (s->last_cmd, a
 * static string the protocol sets), "CONNECT" before the first */
const char *session_cmd(const struct session *s);
/* session_count_error - one more client error. True when that makes
 * limit and the session is not ending already: then logged ("too many
 * errors after CMD from [ip]"), and the protocol says its goodbye and
 * finishes the session */
bool session_count_error(struct session *s, long long limit);
/* session_finish - flush the output, then close; reason (a static
 * string) is for the disconnect line, the first one given wins. False,
 * doing nothing, when the session is finishing or closed already */
bool session_finish(struct session *s, const char *reason);
/* session_log_end - "disconnect from [ip] (reason)": the finish reason,
 * else how the stream closed ("connection closed by client" for EOF) */
void session_log_end(const struct session *s);

#endif
