/*
 * smtp_client - the SMTP client of the remote delivery agent: one mail
 * transaction on one connected socket (RFC 5321), blocking, with a
 * deadline per stage (RFC 5321 4.5.3.2) and a total deadline.
 *
 * It speaks EHLO (HELO when EHLO is refused), STARTTLS whenever the
 * server offers it and the policy is not "none" (a handshake that
 * started and failed is a host failure: the caller tries the next host,
 * never the same one in plaintext; so is a server without STARTTLS when
 * the level is encrypt or above, and a certificate that does not
 * authenticate the host at verify or dane: nothing is sent in the
 * session then), PIPELINING (MAIL and every RCPT in
 * one write), SIZE (a message over the server's limit bounces with 5.3.4
 * before MAIL), 8BITMIME (8-bit content to a server without it is sent
 * as quoted-printable, mime_8to7.c; what cannot be converted, such as an
 * 8-bit header, bounces with 5.6.3), SMTPUTF8 (needed and missing: bounce
 * with 5.6.7), DSN
 * (NOTIFY, ORCPT, ENVID, RET passed on when the server has it) and
 * CHUNKING (conf->chunking: the content in BDAT chunks of exact byte
 * counts, no dot-stuffing, "BDAT n LAST" at the end, pipelined with
 * PIPELINING; the reason of the outcome says "in reply to BDAT LAST"
 * or "BDAT", where DATA's says "end of DATA").
 *
 * TLS level verify: a certificate that does not chain to the context's
 * CAs (smtp_tls_ca_file or the system store) or does not name the host
 * (DNS name, or the address when the host is one) fails the handshake
 * (SSL_VERIFY_PEER), as at dane one that matches none of conf->tlsa.
 * AUTH (conf->auth_user
 * set): after STARTTLS only, and only with a verified certificate, PLAIN
 * or else LOGIN as the server offers; a server without AUTH, or one that
 * refuses the credentials, is a host failure (the reply is the reason).
 * The password is never logged, not even in debug output.
 *
 * Sessions (for connection caching, delivery/remote_cache.c):
 * smtp_client_open does the greeting, EHLO and STARTTLS and keeps the
 * TLS state and the server's EHLO reply; smtp_client_send runs one
 * transaction on it; smtp_client_reset sends RSET (2xx required) so the
 * session can take another; smtp_client_close says QUIT and frees it.
 * smtp_client_deliver is all of that for one transaction.
 *
 * Results: smtp_client_deliver returns -1 when the host failed before the
 * transaction started (connection lost, greeting or EHLO not 2xx, TLS
 * failure, TLS required and not offered): nothing was decided and the
 * caller tries the next host. Otherwise it returns 0 and every
 * recipient's outcome is set: 2xx delivered, 4xx and network errors
 * deferred, 5xx bounced, with the server's reply as the reason; a 3xx
 * where none belongs (to MAIL, RCPT, BDAT, the end of data) bounces with
 * 5.5.0, as Postfix does, and the session is not reused after it.
 */
#ifndef MAIL_SMTP_CLIENT_H
#define MAIL_SMTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "base/buf.h"
#include "mail/outcome.h"

struct ssl_ctx_st;

/* TLS policy levels (smtp_tls_security_level, heraldctl tls-policy;
 * Postfix's semantics), weakest first: from encrypt on, STARTTLS is
 * required; each level is stricter than the one before */
enum smtp_tls_level {
	SMTP_TLS_NONE,		/* never STARTTLS */
	SMTP_TLS_MAY,		/* STARTTLS when offered (opportunistic) */
	SMTP_TLS_ENCRYPT,	/* STARTTLS required, certificate unchecked */
	SMTP_TLS_VERIFY,	/* STARTTLS required, certificate chains to
				 * the CA store and names the host */
	SMTP_TLS_DANE,		/* STARTTLS required, certificate matches
				 * the host's TLSA records (RFC 7672) */
};

struct dns_rr;

/* deadlines per stage in milliseconds (RFC 5321 4.5.3.2) */
struct smtp_client_conf {
	const char *helo_name;		/* our name in EHLO/HELO */
	enum smtp_tls_level tls;
	struct ssl_ctx_st *tls_ctx;	/* client context (NULL: no TLS) */
	/* SMTP_TLS_DANE: the host's TLSA records (DNSSEC-secure, at least
	 * one usable, dane.h) and their base domain (the MX host name, or
	 * its secure CNAME target; NULL: host) */
	const struct dns_rr *tlsa;
	size_t ntlsa;
	const char *tlsa_base;
	long long helo_ms;		/* greeting, EHLO, STARTTLS, QUIT */
	long long mail_ms;		/* MAIL */
	long long rcpt_ms;		/* each RCPT */
	long long data_init_ms;		/* DATA to 354 */
	long long data_xfer_ms;		/* each block of content */
	long long data_done_ms;		/* final dot to the reply */
	long long deadline;		/* evloop_clock() ms; 0: none */
	const char *auth_user;		/* AUTH as this user; NULL: no AUTH */
	const char *auth_pass;		/* its password (never logged) */
	bool chunking;			/* BDAT when the server offers
					 * CHUNKING (smtp_use_chunking) */
};

/* the message to send */
struct smtp_envelope {
	const char *sender;		/* internal form, "" for <> */
	const char *const *rcpt;	/* internal form */
	const char *const *orcpt;	/* "rfc822;a@b" or "" (may be NULL) */
	const char *const *notify;	/* "SUCCESS,FAILURE" or "" (NULL) */
	size_t nrcpt;
	const char *envid;		/* decoded, or NULL */
	const char *ret;		/* "FULL", "HDRS" or NULL */
	bool smtputf8;			/* needs SMTPUTF8 */
	bool eightbit;			/* content has 8-bit bytes */
	int fd;			/* content: CRLF lines, unstuffed */
	off_t off;
	off_t size;
};

/* what the session learnt, for the log */
struct smtp_client_info {
	struct buf tls;		/* "TLSv1.3 with cipher .." or "" */
	bool verified;		/* certificate verified for host */
	/* as Postfix logs it: "Verified" (authenticated as the level
	 * asked: verify, or dane with the TLSA record that matched),
	 * "Trusted" (the chain is good, the level did not ask),
	 * "Untrusted" (the chain is not) */
	const char *trust;
	char dane[16];		/* "TLSA 3 1 1" that matched, or "" */
	/* smtp_client_open failed over TLS policy: "4.7.4" (STARTTLS
	 * required, not offered) or "4.7.5" (certificate or TLSA did not
	 * authenticate the host); "" otherwise */
	char fail_dsn[8];
	bool esmtp;			/* EHLO was accepted */
	bool dsn;			/* the server announced DSN */
};

struct smtp_session;

/* smtp_client_open - greeting, EHLO (HELO), STARTTLS and EHLO again on
 * the connected socket fd (made non-blocking; the caller closes it after
 * smtp_client_close) to host; NULL with why: try the next host */
/* smtp_client_dsn - did the server of the session announce DSN? */
bool smtp_client_dsn(const struct smtp_session *s);
struct smtp_session *smtp_client_open(int fd, const char *host,
    const struct smtp_client_conf *conf, struct smtp_client_info *info,
    struct buf *why);
/* smtp_client_send - one transaction (MAIL, RCPT, DATA) on s with conf
 * (its deadline); out[0..env->nrcpt) always set. 0: decided. -1 with
 * why: the session failed before MAIL FROM was accepted (connection
 * lost, or 421): nothing was decided, so a reused session may try again
 * on a fresh one; on a fresh session out (deferred) is the answer */
int smtp_client_send(struct smtp_session *s,
    const struct smtp_client_conf *conf, const struct smtp_envelope *env,
    struct outcome *out, struct buf *why);
/* smtp_client_usable - s may take another transaction: no network
 * error, no 421, and nothing arrived unasked (EOF, an idle 421) */
bool smtp_client_usable(struct smtp_session *s);
/* smtp_client_reset - RSET after a transaction; 0 when the server
 * answered 2xx, -1: do not reuse s (close it) */
int smtp_client_reset(struct smtp_session *s,
    const struct smtp_client_conf *conf);
/* smtp_client_fd - the socket s runs on */
int smtp_client_fd(const struct smtp_session *s);
/* smtp_client_close - QUIT (unless the connection broke or the server
 * said 421), then free *s and set it NULL; the socket stays open */
void smtp_client_close(struct smtp_session **s);

/* smtp_client_deliver - one transaction on the connected socket fd (the
 * caller closes it) to host (for SNI and the log); out[0..env->nrcpt)
 * set when 0 is returned; -1 with why: try the next host */
int smtp_client_deliver(int fd, const char *host,
    const struct smtp_client_conf *conf, const struct smtp_envelope *env,
    struct outcome *out, struct smtp_client_info *info, struct buf *why);

#endif
