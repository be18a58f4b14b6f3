/*
 * imapd - structures shared by the IMAP server's files.
 *
 * One worker process runs one event loop and many sessions. A session is
 * a struct imapd_session: the stream to the client, the command parser
 * (imap_parse.h) that assembles commands with their literals, the
 * protocol state, and the login in progress (SASL state, the authd call).
 * Commands come from the table in imapd_cmd.c (name, allowed states,
 * handler, as Dovecot's imap-commands.c); logins are imapd_auth.c;
 * strings in responses are written by imap_write.c.
 *
 * Ownership: a session owns its stream, its parser (whose command text
 * may hold a password and is wiped after each command) and its authd
 * call (cancelled when the session ends).
 */
#ifndef IMAPD_H
#define IMAPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "base/buf.h"
#include "mail/peer.h"
#include "mail/sasl.h"
#include "mail/session.h"
#include "imap_parse.h"

struct service;
struct auth_call;
struct imapd_sel;
struct imapd_store;
struct imapd_spool;

/*
 * Session states, one bit each so that a command's allowed states are a
 * mask. NOAUTH, AUTH and SELECTED are RFC 9051 section 3's; the others
 * take a SASL line or no input at all.
 */
#define IMAPD_S_NOAUTH	0x01	/* not authenticated */
#define IMAPD_S_AUTH	0x02	/* authenticated */
#define IMAPD_S_SELECTED 0x04	/* a mailbox is selected (next session) */
#define IMAPD_S_SASL	0x08	/* AUTHENTICATE: next line is a response */
#define IMAPD_S_WAIT	0x10	/* waiting for authd (input paused) */
#define IMAPD_S_TLS	0x20	/* TLS handshake (STARTTLS or imaps) */
#define IMAPD_S_LOGOUT	0x40	/* closing: input is ignored */

#define IMAPD_S_ANY (IMAPD_S_NOAUTH | IMAPD_S_AUTH | IMAPD_S_SELECTED)
#define IMAPD_S_LOGGED (IMAPD_S_AUTH | IMAPD_S_SELECTED)

/* reasons why a session's input is paused (bits of session.pause) */
#define IMAPD_PAUSE_AUTH	0x1	/* a login is with authd */
#define IMAPD_PAUSE_OUTPUT	0x2	/* too much output not yet sent */

/* output above this stops input; below LOW resumes */
#define IMAPD_OUTPUT_HIGH (64 * 1024)
#define IMAPD_OUTPUT_LOW (16 * 1024)

/*
 * Command bounds. Before login: lines of 8 KB (an AUTHENTICATE PLAIN
 * initial response of the longest name and password fits), commands of
 * 16 KB, literals of 8 KB, and a LITERAL+ over that ends the session
 * (nothing before login is worth reading megabytes for). After login:
 * lines of 64 KB (long UID sets), a command's literals held in memory
 * up to IMAPD_CMD_MAX and imapd_literal_limit each (APPEND's messages
 * go to a file instead: imapd_append.c), and a LITERAL+ over
 * the bound up to IMAPD_DISCARD_MAX read and thrown away.
 */
#define IMAPD_PRE_LINE_MAX (8 * 1024)
#define IMAPD_PRE_CMD_MAX (16 * 1024)
#define IMAPD_PRE_LITERAL_MAX (8 * 1024)
#define IMAPD_LINE_MAX (64 * 1024)
#define IMAPD_CMD_MAX (1024 * 1024)
#define IMAPD_DISCARD_MAX (64ULL * 1024 * 1024)

/* ID (RFC 2971 3.3): at most 30 pairs, fields of 30 and values of 1024
 * octets */
#define IMAPD_ID_PAIRS_MAX 30
#define IMAPD_ID_FIELD_MAX 30
#define IMAPD_ID_VALUE_MAX 1024

/* one IMAP session */
struct imapd_session {
	struct session base;	/* stream, peer, pauses, errors, last
				 * command, end reason */
	bool implicit_tls;	/* came in on an imaps listener */
	unsigned state;		/* IMAPD_S_* */
	struct imap_parser parser;	/* the command being assembled */
	int commands;		/* commands before login */
	bool rev2;		/* ENABLE IMAP4rev2 was given */
	struct buf tag;		/* tag of the command being run */

	/* login */
	const char *method;	/* "LOGIN", "AUTH=PLAIN", "AUTH=LOGIN" */
	struct buf user;	/* the name given, for logs */
	struct sasl_state sasl;	/* AUTHENTICATE exchange in progress */
	struct auth_call *auth;	/* authd call in flight */
	struct buf login;	/* canonical address once logged in */
	struct buf mail_path;	/* its Maildir */
	struct imapd_store *store;	/* its mail store (imapd_store.h) */
	struct imapd_sel *sel;	/* the selected state (imapd_sel.h) */
	struct imapd_spool *spool;	/* APPEND literals in files
					 * (imapd_append.c) */

	struct buf scratch;	/* reply and log text */
};

/* the server TLS context (imapd_session.c), loaded by imapd.c before the
 * privilege drop; NULL: no STARTTLS and imaps connections are closed */
extern SSL_CTX *imapd_tls_ctx;

/* imapd_session.c */
/* imapd_session_init - remember the service (after the privilege drop) */
void imapd_session_init(struct service *svc);
/* imapd_session_accept - a new client: limits, TLS, greeting */
void imapd_session_accept(struct service *svc, int fd, bool implicit_tls);
/* imapd_session_stop - SIGTERM: BYE to every session */
void imapd_session_stop(struct service *svc);
/* imapd_session_reply - queue one response line (CRLF added) */
void imapd_session_reply(struct imapd_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* imapd_session_tagged - "<tag> <text>" for the command being run */
void imapd_session_tagged(struct imapd_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* imapd_session_bad - a tagged answer that counts toward
 * imapd_error_limit (BAD, a failed login); at the limit BYE follows */
void imapd_session_bad(struct imapd_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* imapd_session_finish - flush the responses, then close; reason is for
 * the disconnect log line (a static string) */
void imapd_session_finish(struct imapd_session *s, const char *reason);
/* imapd_session_starttls - STARTTLS accepted: start the handshake */
void imapd_session_starttls(struct imapd_session *s);
/* imapd_session_logged_in - switch to the authenticated state: bounds
 * and idle timeout of a logged-in session */
void imapd_session_logged_in(struct imapd_session *s);

/* imapd_cmd.c */
struct imapd_cmd {
	const char *name;	/* upper case */
	unsigned states;	/* IMAPD_S_* where it runs */
	/* fn - run it; c is at the first argument (NULL: the command is
	 * known but not available in this build, see imapd_cmd.c) */
	void (*fn)(struct imapd_session *s, struct imap_cursor *c);
};
extern const struct imapd_cmd imapd_cmd_table[];
/* imapd_cmd_find - the entry of name[0..len) (any case), or NULL */
const struct imapd_cmd *imapd_cmd_find(const char *name, size_t len);
/* imapd_cmd_dispatch - run the command in s->parser.cmd */
void imapd_cmd_dispatch(struct imapd_session *s);
/* imapd_cmd_capability - the capability list for s (without
 * "CAPABILITY") into out */
void imapd_cmd_capability(const struct imapd_session *s, struct buf *out);

/* imapd_auth.c */
/* imapd_auth_login - LOGIN userid password */
void imapd_auth_login(struct imapd_session *s, struct imap_cursor *c);
/* imapd_auth_authenticate - AUTHENTICATE mechanism [initial-response] */
void imapd_auth_authenticate(struct imapd_session *s, struct imap_cursor *c);
/* imapd_auth_sasl_line - a client line during AUTHENTICATE */
void imapd_auth_sasl_line(struct imapd_session *s, const char *line,
    size_t len);
/* imapd_auth_abort - forget the login in progress (session closing) */
void imapd_auth_abort(struct imapd_session *s);

/* imapd_compress.c */
/* imapd_compress_cmd - COMPRESS DEFLATE (RFC 4978) */
void imapd_compress_cmd(struct imapd_session *s, struct imap_cursor *c);
/* imapd_compress_input_failed - corrupt compressed input: "* BYE" with
 * the reason and close; true if that happened */
bool imapd_compress_input_failed(struct imapd_session *s);

/* imap_write.c */
/* imap_write_string - p[0..n) as a quoted string, or as a literal when
 * it cannot be quoted (CR, LF, NUL, 8-bit, long) */
void imap_write_string(struct buf *out, const char *p, size_t n);
/* imap_write_astring - as an atom when it is one (and not NIL), else
 * imap_write_string */
void imap_write_astring(struct buf *out, const char *p, size_t n);
/* imap_write_nstring - NIL for p == NULL, else imap_write_string */
void imap_write_nstring(struct buf *out, const char *p, size_t n);
/* imap_write_number - v in decimal (no printf: per-line FETCH answers) */
void imap_write_number(struct buf *out, uint64_t v);

#endif
