/*
 * smtp_client - one SMTP transaction on a connected socket, blocking with
 * poll deadlines (see smtp_client.h). The reply parser is smtp_reply.c.
 *
 * The socket is made non-blocking and every read and write waits with
 * poll() for at most the stage's time, cut to the total deadline, so a
 * server that stalls anywhere (in a reply, in the TLS handshake, while
 * taking the content) costs at most that.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "base/buf.h"
#include "base/evloop.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/sock.h"
#include "base/str.h"
#include "base/tls.h"
#include "mail/addr.h"
#include "mail/dane.h"
#include "mail/mime_8to7.h"
#include "mail/smtp_client.h"
#include "mail/smtp_reply.h"

#define SMTP_CLIENT_CHUNK 65536		/* content bytes per write */
#define SMTP_CLIENT_BDAT_CHUNK 262144	/* content bytes per BDAT */
#define SMTP_CLIENT_BDAT_HDR 40		/* room for "BDAT n LAST\r\n" */
#define SMTP_CLIENT_BDAT_WINDOW 8	/* PIPELINING: BDATs left unanswered
					 * before a reply is read */
#define SMTP_CLIENT_REASON_MAX 400	/* bytes of a reply we quote */
#define SMTP_CLIENT_RSET_MS 20000	/* RSET: a cached session is idle */

/* one connection */
struct smtp_conn {
	int fd;
	SSL *ssl;			/* after STARTTLS */
	const char *host;
	const struct smtp_client_conf *conf;
	struct buf in;			/* unparsed reply bytes */
	struct smtp_reply reply;	/* the last reply */
	bool broken;			/* network or protocol error */
	bool closing;			/* the server said 421 */
	struct buf why;			/* a transaction's -1: why */
};

/* an open session: a connection after the greeting, EHLO and STARTTLS */
struct smtp_session {
	struct smtp_conn c;
	struct smtp_client_conf conf;	/* of the latest call */
	struct smtp_reply ehlo;		/* the server's EHLO reply */
	char *host;
};

/* smtp_conn_until - the absolute deadline of a stage of ms */
static long long
smtp_conn_until(const struct smtp_conn *c, long long ms)
{
	long long t = evloop_clock() + ms;

	if (c->conf->deadline > 0 && c->conf->deadline < t)
		t = c->conf->deadline;
	return t;
}

/* smtp_conn_wait - poll for events until the deadline; -1 on timeout */
static int
smtp_conn_wait(struct smtp_conn *c, short events, long long until,
    struct buf *why)
{
	for (;;) {
		struct pollfd pfd = {.fd = c->fd, .events = events};
		long long left = until - evloop_clock();
		int n;

		if (left <= 0) {
			buf_puts(why, "timed out");
			return -1;
		}
		n = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR) {
			buf_printf(why, "poll: %m");
			return -1;
		}
	}
}

/* smtp_conn_ssl_wait - wait as SSL_get_error says; -1 if fatal */
static int
smtp_conn_ssl_wait(struct smtp_conn *c, int rc, long long until,
    const char *what, struct buf *why)
{
	int err = SSL_get_error(c->ssl, rc);

	if (err == SSL_ERROR_WANT_READ)
		return smtp_conn_wait(c, POLLIN, until, why);
	if (err == SSL_ERROR_WANT_WRITE)
		return smtp_conn_wait(c, POLLOUT, until, why);
	if (err == SSL_ERROR_ZERO_RETURN ||
	    (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 && errno == 0))
		buf_printf(why, "%s: connection closed", what);
	else if (err == SSL_ERROR_SYSCALL)
		buf_printf(why, "%s: %m", what);
	else {
		buf_printf(why, "%s: ", what);
		tls_error_text(why);
	}
	return -1;
}

/* smtp_conn_write - write all of p[0..n) before until */
static int
smtp_conn_write(struct smtp_conn *c, const char *p, size_t n,
    long long until, struct buf *why)
{
	while (n > 0) {
		ssize_t w;

		if (c->ssl != NULL) {
			int chunk = n > INT_MAX ? INT_MAX : (int)n;
			int rc;

			ERR_clear_error();
			errno = 0;
			rc = SSL_write(c->ssl, p, chunk);
			if (rc <= 0) {
				if (smtp_conn_ssl_wait(c, rc, until, "write",
				    why) < 0)
					goto broken;
				continue;
			}
			w = rc;
		} else {
			w = send(c->fd, p, n, MSG_NOSIGNAL);
			if (w < 0) {
				if (errno == EINTR)
					continue;
				if (errno != EAGAIN && errno != EWOULDBLOCK) {
					buf_printf(why, "write: %m");
					goto broken;
				}
				if (smtp_conn_wait(c, POLLOUT, until, why) < 0)
					goto broken;
				continue;
			}
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
broken:
	c->broken = true;
	return -1;
}

/* smtp_conn_fill - read more reply bytes before until */
static int
smtp_conn_fill(struct smtp_conn *c, long long until, struct buf *why)
{
	char chunk[4096];

	for (;;) {
		ssize_t n;

		if (c->ssl != NULL) {
			int rc;

			ERR_clear_error();
			errno = 0;
			rc = SSL_read(c->ssl, chunk, sizeof(chunk));
			if (rc <= 0) {
				if (smtp_conn_ssl_wait(c, rc, until, "read",
				    why) < 0)
					return -1;
				continue;
			}
			n = rc;
		} else {
			n = recv(c->fd, chunk, sizeof(chunk), 0);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				if (errno != EAGAIN && errno != EWOULDBLOCK) {
					buf_printf(why, "read: %m");
					return -1;
				}
				if (smtp_conn_wait(c, POLLIN, until, why) < 0)
					return -1;
				continue;
			}
			if (n == 0) {
				buf_puts(why, "connection closed");
				return -1;
			}
		}
		buf_append(&c->in, chunk, (size_t)n);
		return 0;
	}
}

/* smtp_conn_reply - read one whole reply into c->reply within ms */
static int
smtp_conn_reply(struct smtp_conn *c, long long ms, const char *stage,
    struct buf *why)
{
	long long until = smtp_conn_until(c, ms);
	struct buf err = BUF_INIT;
	int rc;

	smtp_reply_reset(&c->reply);
	while ((rc = smtp_reply_take(&c->reply, &c->in, &err)) == 0)
		if (smtp_conn_fill(c, until, &err) < 0)
			break;
	if (rc != 1) {
		buf_printf(why, "lost connection with %s while %s: %s",
		    c->host, stage, buf_cstr(&err));
		c->broken = true;
	}
	buf_free(&err);
	return rc == 1 ? 0 : -1;
}

/* smtp_conn_command - send one command line (CRLF added) */
static int
smtp_conn_command(struct smtp_conn *c, long long ms, const char *stage,
    struct buf *line, struct buf *why)
{
	struct buf err = BUF_INIT;
	int rc;

	buf_puts(line, "\r\n");
	msg_debug("%s > %.*s", c->host, (int)line->len - 2, line->data);
	rc = smtp_conn_write(c, line->data, line->len,
	    smtp_conn_until(c, ms), &err);
	if (rc < 0)
		buf_printf(why, "lost connection with %s while %s: %s",
		    c->host, stage, buf_cstr(&err));
	buf_free(&err);
	return rc;
}

/* smtp_conn_secret - send a line that carries credentials: as
 * smtp_conn_command, but the debug log shows only what (the line is
 * wiped after) */
static int
smtp_conn_secret(struct smtp_conn *c, const char *what, struct buf *line,
    struct buf *why)
{
	struct buf err = BUF_INIT;
	int rc;

	buf_puts(line, "\r\n");
	msg_debug("%s > %s (credentials not shown)", c->host, what);
	rc = smtp_conn_write(c, line->data, line->len,
	    smtp_conn_until(c, c->conf->helo_ms), &err);
	OPENSSL_cleanse(line->data, line->len);
	buf_reset(line);
	if (rc < 0)
		buf_printf(why, "lost connection with %s while sending %s: %s",
		    c->host, what, buf_cstr(&err));
	buf_free(&err);
	return rc;
}

/* smtp_conn_said - "host said: 550 5.1.1 ... (in reply to X)" */
static void
smtp_conn_said(const struct smtp_conn *c, const char *stage, struct buf *out)
{
	buf_printf(out, "%s said: ", c->host);
	smtp_reply_format(&c->reply, out, SMTP_CLIENT_REASON_MAX);
	buf_printf(out, " (in reply to %s)", stage);
}

/*
 * smtp_conn_outcome - the outcome a reply gives one recipient. A 3xx
 * where none belongs (to MAIL, RCPT, BDAT, the end of data) is the
 * server's protocol error; Postfix bounces it with 5.5.0 (smtp_chat.c
 * gives such a reply that status, smtp_trouble.c defers only 4.x.x),
 * and so do we. The server's state is unknown after it: the session
 * is not reused (nor sent QUIT, which it might take as content).
 */
static void
smtp_conn_outcome(struct smtp_conn *c, const char *stage,
    struct outcome *o)
{
	int class = smtp_reply_class(&c->reply);
	struct buf text = BUF_INIT;
	char dsn[16];

	if (c->reply.dsn[0] != '\0' && class != 3)
		str_lcpy(dsn, c->reply.dsn, sizeof(dsn));
	else if (class == 3)
		str_lcpy(dsn, "5.5.0", sizeof(dsn));	/* out of order */
	else
		snprintf(dsn, sizeof(dsn), "%d.0.0", class);
	if (class == 3)
		c->broken = true;
	smtp_conn_said(c, stage, &text);
	if (class == 2)
		outcome_set(o, OUTCOME_OK, dsn, "%s", buf_cstr(&text));
	else if (class == 5 || class == 3)
		outcome_set(o, OUTCOME_BOUNCED, dsn, "%s", buf_cstr(&text));
	else
		outcome_set(o, OUTCOME_DEFERRED, dsn, "%s", buf_cstr(&text));
	buf_free(&text);
}

/* smtp_conn_tls_names - SNI and reference names before the handshake:
 * the TLSA base domain and the MX host with DANE, the host (a name, or
 * an address for a next hop "[192.0.2.1]") otherwise */
static int
smtp_conn_tls_names(struct smtp_conn *c, struct buf *err)
{
	const struct smtp_client_conf *conf = c->conf;
	unsigned char ip[16];

	if (conf->tls == SMTP_TLS_DANE) {
		const char *base = conf->tlsa_base != NULL &&
		    *conf->tlsa_base != '\0' ? conf->tlsa_base : c->host;

		/* RFC 7672 8.1: SNI is the TLSA base domain */
		(void)SSL_set_tlsext_host_name(c->ssl, base);
		return dane_arm(c->ssl, base, str_casecmp(base, c->host) != 0 ?
		    c->host : NULL, conf->tlsa, conf->ntlsa, err);
	}
	/* SNI is a courtesy (never an address, RFC 6066 3); the host
	 * name (or address) check is what "verified" rests on, so without
	 * it the handshake does not start */
	if (inet_pton(AF_INET, c->host, ip) == 1 ||
	    inet_pton(AF_INET6, c->host, ip) == 1) {
		if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl),
		    c->host) != 1) {
			buf_puts(err, "X509_VERIFY_PARAM_set1_ip_asc: ");
			tls_error_text(err);
			return -1;
		}
		return 0;
	}
	(void)SSL_set_tlsext_host_name(c->ssl, c->host);
	if (SSL_set1_host(c->ssl, c->host) != 1) {
		buf_puts(err, "SSL_set1_host: ");
		tls_error_text(err);
		return -1;
	}
	return 0;
}

/* smtp_conn_trust - how far the peer's certificate was checked */
static void
smtp_conn_trust(struct smtp_conn *c, struct smtp_client_info *info)
{
	long vr = SSL_get_verify_result(c->ssl);
	bool cert = SSL_get0_peer_certificate(c->ssl) != NULL;

	info->verified = cert && vr == X509_V_OK;
	info->dane[0] = '\0';
	if (c->conf->tls == SMTP_TLS_DANE && info->verified) {
		struct buf m = BUF_INIT;

		if (dane_matched(c->ssl, &m)) {
			str_lcpy(info->dane, buf_cstr(&m), sizeof(info->dane));
			info->trust = "Verified";
		} else {
			info->verified = false;
			info->trust = "Untrusted";
		}
		buf_free(&m);
	} else if (info->verified && c->conf->tls == SMTP_TLS_VERIFY) {
		info->trust = "Verified";
	} else if (cert && (vr == X509_V_OK ||
	    vr == X509_V_ERR_HOSTNAME_MISMATCH ||
	    vr == X509_V_ERR_IP_ADDRESS_MISMATCH)) {
		info->trust = "Trusted";
	} else {
		info->trust = "Untrusted";
	}
}

/* smtp_conn_starttls - the handshake after "220" to STARTTLS; at verify
 * and dane a certificate that does not authenticate the host fails it */
static int
smtp_conn_starttls(struct smtp_conn *c, struct smtp_client_info *info,
    struct buf *why)
{
	long long until = smtp_conn_until(c, c->conf->helo_ms);
	bool authenticate = c->conf->tls >= SMTP_TLS_VERIFY;
	struct buf err = BUF_INIT;
	const SSL_CIPHER *cipher;
	int rc, bits = 0, alg = 0;

	/* a server's bytes sent before the handshake are not trusted */
	buf_reset(&c->in);
	if ((c->ssl = SSL_new(c->conf->tls_ctx)) == NULL ||
	    SSL_set_fd(c->ssl, c->fd) != 1) {
		buf_puts(&err, "SSL_new: ");
		tls_error_text(&err);
		goto fail;
	}
	if (smtp_conn_tls_names(c, &err) < 0) {
		str_lcpy(info->fail_dsn, "4.7.5", sizeof(info->fail_dsn));
		goto fail;
	}
	/* the handshake itself stops at a certificate that does not
	 * authenticate the host: not a byte of the session goes out */
	if (authenticate)
		SSL_set_verify(c->ssl, SSL_VERIFY_PEER, NULL);
	for (;;) {
		ERR_clear_error();
		errno = 0;
		if ((rc = SSL_connect(c->ssl)) == 1)
			break;
		if (smtp_conn_ssl_wait(c, rc, until, "handshake", &err) < 0) {
			long vr = SSL_get_verify_result(c->ssl);

			if (authenticate && vr != X509_V_OK) {
				buf_printf(&err, " (%s%s)", c->conf->tls ==
				    SMTP_TLS_DANE ? "DANE: " : "",
				    X509_verify_cert_error_string(vr));
				str_lcpy(info->fail_dsn, "4.7.5",
				    sizeof(info->fail_dsn));
			}
			goto fail;
		}
	}
	cipher = SSL_get_current_cipher(c->ssl);
	bits = SSL_CIPHER_get_bits(cipher, &alg);
	buf_reset(&info->tls);
	buf_printf(&info->tls, "%s with cipher %s (%d/%d bits)",
	    SSL_get_version(c->ssl), SSL_CIPHER_get_name(cipher), bits, alg);
	smtp_conn_trust(c, info);
	if (authenticate && strcmp(info->trust, "Verified") != 0) {
		/* SSL_VERIFY_PEER makes this unreachable; kept as the rule */
		buf_printf(&err, "server certificate not verified (%s)",
		    X509_verify_cert_error_string(SSL_get_verify_result(
		    c->ssl)));
		str_lcpy(info->fail_dsn, "4.7.5", sizeof(info->fail_dsn));
		goto fail;
	}
	buf_free(&err);
	return 0;
fail:
	buf_printf(why, "TLS handshake with %s failed: %s", c->host,
	    buf_cstr(&err));
	buf_free(&err);
	c->broken = true;
	return -1;
}

/* smtp_conn_ehlo - EHLO, or HELO when EHLO is refused; the reply kept in
 * ehlo (no extensions after HELO); -1 with why */
static int
smtp_conn_ehlo(struct smtp_conn *c, struct smtp_client_info *info,
    struct smtp_reply *ehlo, struct buf *why)
{
	struct buf line = BUF_INIT;
	int rc = -1;

	buf_printf(&line, "EHLO %s", c->conf->helo_name);
	if (smtp_conn_command(c, c->conf->helo_ms, "EHLO", &line, why) < 0 ||
	    smtp_conn_reply(c, c->conf->helo_ms, "receiving the EHLO reply",
	    why) < 0)
		goto out;
	info->esmtp = smtp_reply_class(&c->reply) == 2;
	if (!info->esmtp) {
		if (smtp_reply_class(&c->reply) == 4)
			goto refused;
		buf_reset(&line);
		buf_printf(&line, "HELO %s", c->conf->helo_name);
		if (smtp_conn_command(c, c->conf->helo_ms, "HELO", &line,
		    why) < 0 || smtp_conn_reply(c, c->conf->helo_ms,
		    "receiving the HELO reply", why) < 0)
			goto out;
		if (smtp_reply_class(&c->reply) != 2)
			goto refused;
	}
	/* kept: the next reply overwrites c->reply */
	smtp_reply_reset(ehlo);
	ehlo->code = c->reply.code;
	ehlo->done = true;
	if (info->esmtp) {
		buf_set(&ehlo->text, buf_cstr(&c->reply.text));
		ehlo->nlines = c->reply.nlines;
	}
	rc = 0;
	goto out;
refused:
	buf_puts(why, "host ");
	smtp_conn_said(c, info->esmtp ? "HELO" : "EHLO/HELO", why);
out:
	buf_free(&line);
	return rc;
}

/* smtp_conn_size - the SIZE limit an EHLO reply gives; 0: none */
static long long
smtp_conn_size(const struct smtp_reply *ehlo)
{
	const char *p;
	char *end;
	long long v;

	if (!smtp_reply_ehlo(ehlo, "SIZE", &p) || p == NULL ||
	    !isdigit((unsigned char)*p))
		return 0;
	errno = 0;
	v = strtoll(p, &end, 10);
	if (errno != 0 || v < 0 || end == p)
		return 0;
	return v;
}

/* smtp_conn_mail - the MAIL command line */
static void
smtp_conn_mail(const struct smtp_envelope *env, off_t msize, bool size,
    bool dsn, bool eightbit, bool utf8, struct buf *line)
{
	buf_puts(line, "MAIL FROM:<");
	if (*env->sender)
		addr_externalize(line, env->sender);
	buf_putc(line, '>');
	if (size)
		buf_printf(line, " SIZE=%lld", (long long)msize);
	if (eightbit)
		buf_puts(line, " BODY=8BITMIME");
	if (utf8)
		buf_puts(line, " SMTPUTF8");
	if (dsn && env->ret != NULL && *env->ret)
		buf_printf(line, " RET=%s", env->ret);
	if (dsn && env->envid != NULL && *env->envid) {
		buf_puts(line, " ENVID=");
		xtext_encode(env->envid, line);
	}
}

/* smtp_conn_rcpt - the RCPT command line of recipient i */
static void
smtp_conn_rcpt(const struct smtp_envelope *env, size_t i, bool dsn,
    struct buf *line)
{
	buf_puts(line, "RCPT TO:<");
	addr_externalize(line, env->rcpt[i]);
	buf_putc(line, '>');
	if (!dsn)
		return;
	if (env->notify != NULL && env->notify[i] != NULL &&
	    *env->notify[i])
		buf_printf(line, " NOTIFY=%s", env->notify[i]);
	if (env->orcpt != NULL && env->orcpt[i] != NULL &&
	    strchr(env->orcpt[i], ';') != NULL) {
		const char *semi = strchr(env->orcpt[i], ';');

		buf_printf(line, " ORCPT=%.*s;", (int)(semi - env->orcpt[i]),
		    env->orcpt[i]);
		xtext_encode(semi + 1, line);
	}
}

/* smtp_conn_read - up to want content bytes from position pos (0: the
 * first byte of the message): read from the queue file into dst, or
 * with converted content (mem) a pointer into it, copied to dst only
 * when copy; the bytes at *p_r; their count, -1 with why */
static ssize_t
smtp_conn_read(const struct smtp_envelope *env, const struct buf *mem,
    off_t pos, size_t want, char *dst, bool copy, const char **p_r,
    struct buf *why)
{
	ssize_t n;

	if (mem != NULL) {
		*p_r = mem->data + pos;
		if (copy) {
			memcpy(dst, *p_r, want);
			*p_r = dst;
		}
		return (ssize_t)want;
	}
	do {
		n = pread(env->fd, dst, want, env->off + pos);
	} while (n < 0 && errno == EINTR);
	if (n <= 0) {
		buf_printf(why, "cannot read the queue file: %s",
		    n < 0 ? strerror(errno) : "short file");
		return -1;
	}
	*p_r = dst;
	return n;
}

/* smtp_conn_stuff - p[0..n) dot-stuffed (RFC 5321 4.5.2) into out, when
 * a line in it starts with a dot (bol: p starts a line); out stays empty
 * when none does, and p[0..n) goes out as it is. The spans between the
 * dots are copied whole: memmem finds each "\n." */
static void
smtp_conn_stuff(const char *p, size_t n, bool bol, struct buf *out)
{
	const char *end = p + n, *start = p, *q = p, *d;

	buf_reset(out);
	if (bol && n > 0 && *p == '.')
		buf_putc(out, '.');
	while (q < end && (d = memmem(q, (size_t)(end - q), "\n.", 2)) !=
	    NULL) {
		buf_append(out, start, (size_t)(d + 1 - start));
		buf_putc(out, '.');
		start = d + 1;		/* the dot goes with the next span */
		q = d + 2;
	}
	if (out->len > 0)
		buf_append(out, start, (size_t)(end - start));
}

/* smtp_conn_content - DATA's content: dot-stuffed, then "." */
static int
smtp_conn_content(struct smtp_conn *c, const struct smtp_envelope *env,
    const struct buf *mem, struct buf *why)
{
	struct buf out = BUF_INIT, err = BUF_INIT;
	char *chunk = xmalloc(SMTP_CLIENT_CHUNK);
	off_t pos = 0, total = mem != NULL ? (off_t)mem->len : env->size;
	char last = '\n';
	int rc = -1;

	while (pos < total) {
		size_t want = total - pos > SMTP_CLIENT_CHUNK ?
		    SMTP_CLIENT_CHUNK : (size_t)(total - pos);
		const char *p;
		ssize_t n = smtp_conn_read(env, mem, pos, want, chunk, false,
		    &p, why);

		if (n < 0)
			goto out;
		smtp_conn_stuff(p, (size_t)n, last == '\n', &out);
		last = p[n - 1];
		pos += n;
		if (smtp_conn_write(c, out.len > 0 ? out.data : p,
		    out.len > 0 ? out.len : (size_t)n,
		    smtp_conn_until(c, c->conf->data_xfer_ms), &err) < 0) {
			buf_printf(why, "lost connection with %s while "
			    "sending the message: %s", c->host,
			    buf_cstr(&err));
			goto out;
		}
	}
	buf_set(&out, last != '\n' ? "\r\n.\r\n" : ".\r\n");
	if (smtp_conn_write(c, out.data, out.len,
	    smtp_conn_until(c, c->conf->data_xfer_ms), &err) < 0) {
		buf_printf(why, "lost connection with %s while sending the "
		    "end of data: %s", c->host, buf_cstr(&err));
		goto out;
	}
	rc = 0;
out:
	if (rc < 0)
		c->broken = true;
	x_free(&chunk);
	buf_free(&out);
	buf_free(&err);
	return rc;
}

/*
 * smtp_conn_bdat - the content in BDAT chunks (RFC 3030): exact byte
 * counts, no dot-stuffing, the last one "BDAT n LAST". Each chunk is
 * read from the queue file right behind room for its command, so one
 * write sends both and the content is copied once. With PIPELINING up to
 * SMTP_CLIENT_BDAT_WINDOW chunks go out before their replies are read
 * (RFC 3030 4.2: the window keeps the server's replies from filling our
 * socket while we write); without it each reply is read before the next
 * chunk. Every reply is read. The first one that is not 2xx decides the
 * open recipients and no chunk follows it (RFC 3030: the server discards
 * what is still on its way; a reused session gets RSET first,
 * smtp_client_reset); a 2xx to the LAST chunk decides them too. 0:
 * decided; -1 with why: the connection broke before a decision.
 */
static int
smtp_conn_bdat(struct smtp_conn *c, const struct smtp_envelope *env,
    const struct buf *mem, bool pipelining, const bool *open,
    struct outcome *out, struct buf *why)
{
	char *chunk = xmalloc(SMTP_CLIENT_BDAT_HDR + SMTP_CLIENT_BDAT_CHUNK +
	    2);
	char *data = chunk + SMTP_CLIENT_BDAT_HDR;
	off_t pos = 0, total = mem != NULL ? (off_t)mem->len : env->size;
	size_t window = pipelining ? SMTP_CLIENT_BDAT_WINDOW : 0;
	size_t sent = 0, got = 0;
	bool last = false, decided = false;
	struct buf err = BUF_INIT;
	int rc = -1;

	while (!last && !decided) {
		size_t want = total - pos > SMTP_CLIENT_BDAT_CHUNK ?
		    SMTP_CLIENT_BDAT_CHUNK : (size_t)(total - pos), n = 0;
		char cmd[SMTP_CLIENT_BDAT_HDR];
		const char *p;
		int hlen;

		if (want > 0) {
			ssize_t r = smtp_conn_read(env, mem, pos, want, data,
			    true, &p, why);

			if (r < 0) {
				c->broken = true;
				goto out;
			}
			n = (size_t)r;
			pos += r;
		}
		last = pos >= total;
		/* queue files hold CRLF lines: a last line without its end
		 * gets one, as over DATA */
		if (last && n > 0 && data[n - 1] != '\n') {
			memcpy(data + n, "\r\n", 2);
			n += 2;
		}
		hlen = snprintf(cmd, sizeof(cmd), "BDAT %zu%s\r\n", n,
		    last ? " LAST" : "");
		memcpy(data - hlen, cmd, (size_t)hlen);
		msg_debug("%s > %.*s", c->host, hlen - 2, cmd);
		if (smtp_conn_write(c, data - hlen, (size_t)hlen + n,
		    smtp_conn_until(c, c->conf->data_xfer_ms), &err) < 0) {
			buf_printf(why, "lost connection with %s while sending "
			    "the message: %s", c->host, buf_cstr(&err));
			goto out;
		}
		sent++;
		while (!decided && sent - got > (last ? 0 : window)) {
			bool final = last && got + 1 == sent;

			if (smtp_conn_reply(c, final ? c->conf->data_done_ms :
			    c->conf->data_xfer_ms, final ? "receiving the "
			    "reply to BDAT LAST" : "receiving a BDAT reply",
			    why) < 0)
				goto out;
			got++;
			if (smtp_reply_class(&c->reply) != 2 || final) {
				for (size_t i = 0; i < env->nrcpt; i++)
					if (open[i])
						smtp_conn_outcome(c, final ?
						    "BDAT LAST" : "BDAT",
						    &out[i]);
				decided = true;
			}
		}
	}
	/* after a failure: the replies to the chunks already sent, so
	 * that none is taken for the answer to a later command */
	while (got < sent && !c->broken && c->reply.code != 421) {
		buf_reset(&err);
		if (smtp_conn_reply(c, c->conf->data_xfer_ms, "receiving a "
		    "BDAT reply", &err) < 0)
			break;
		got++;
	}
	rc = 0;
out:
	x_free(&chunk);
	buf_free(&err);
	return rc;
}

/* smtp_conn_convert - the content as quoted-printable for a server
 * without 8BITMIME (RFC 6152 3), into out; -1 with why */
static int
smtp_conn_convert(const struct smtp_envelope *env, struct buf *out,
    struct buf *why)
{
	size_t len = (size_t)(env->off + env->size);
	void *map;
	int rc;

	if (env->size == 0)
		return 0;
	map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, env->fd, 0);
	if (map == MAP_FAILED) {
		buf_printf(why, "cannot map the queue file: %m");
		return -1;
	}
	rc = mime_8to7((const char *)map + env->off, (size_t)env->size, out,
	    why);
	if (munmap(map, len) < 0)
		msg_warn("munmap: %m");
	return rc;
}

/* smtp_conn_all - the same outcome for every recipient still open */
static void
smtp_conn_all(struct outcome *out, const bool *open, size_t n,
    enum outcome_status st, const char *dsn, const char *text)
{
	for (size_t i = 0; i < n; i++)
		if (open == NULL || open[i])
			outcome_set(&out[i], st, dsn, "%s", text);
}

/* smtp_conn_transaction - MAIL, RCPT, DATA or BDAT after the EHLO; sets
 * out; -1 when the connection was lost, or the server closing (421),
 * before MAIL FROM was accepted: nothing decided (out holds the
 * deferral) */
static int
smtp_conn_transaction(struct smtp_conn *c, const struct smtp_reply *ehlo,
    const struct smtp_envelope *env, struct outcome *out)
{
	bool pipelining = smtp_reply_ehlo(ehlo, "PIPELINING", NULL);
	bool dsn = smtp_reply_ehlo(ehlo, "DSN", NULL);
	bool has_size = smtp_reply_ehlo(ehlo, "SIZE", NULL);
	bool has_8bit = smtp_reply_ehlo(ehlo, "8BITMIME", NULL);
	bool has_utf8 = smtp_reply_ehlo(ehlo, "SMTPUTF8", NULL);
	bool chunking = c->conf->chunking &&
	    smtp_reply_ehlo(ehlo, "CHUNKING", NULL);
	long long limit = smtp_conn_size(ehlo);
	bool *open = xcalloc(env->nrcpt ? env->nrcpt : 1, sizeof(*open));
	struct buf line = BUF_INIT, why = BUF_INIT, text = BUF_INIT;
	struct buf conv = BUF_INIT, *mem = NULL;
	off_t msize = env->size;
	size_t accepted = 0, sent;
	int rc = 0;

	if (env->eightbit && !has_8bit) {
		/* RFC 6152 3: convert to 7 bits, or bounce if we cannot */
		if (smtp_conn_convert(env, &conv, &why) < 0) {
			buf_printf(&text, "%s does not support 8BITMIME, and "
			    "the message cannot be converted to 7 bits: %s",
			    c->host, buf_cstr(&why));
			smtp_conn_all(out, NULL, env->nrcpt, OUTCOME_BOUNCED,
			    "5.6.3", buf_cstr(&text));
			goto out;
		}
		mem = &conv;
		msize = (off_t)conv.len;
	}
	if (limit > 0 && msize > limit) {
		buf_printf(&text, "message size %lld exceeds the limit of "
		    "%lld bytes of %s", (long long)msize, limit, c->host);
		smtp_conn_all(out, NULL, env->nrcpt, OUTCOME_BOUNCED,
		    "5.3.4", buf_cstr(&text));
		goto out;
	}
	if (env->smtputf8 && !has_utf8) {
		buf_printf(&text, "%s does not support SMTPUTF8, which the "
		    "message needs", c->host);
		smtp_conn_all(out, NULL, env->nrcpt, OUTCOME_BOUNCED,
		    "5.6.7", buf_cstr(&text));
		goto out;
	}

	/* MAIL and the RCPTs: one write with PIPELINING (RFC 2920) */
	smtp_conn_mail(env, msize, has_size, dsn, env->eightbit && has_8bit,
	    env->smtputf8, &line);
	buf_puts(&line, "\r\n");
	for (size_t i = 0; pipelining && i < env->nrcpt; i++) {
		smtp_conn_rcpt(env, i, dsn, &line);
		buf_puts(&line, "\r\n");
	}
	buf_truncate(&line, line.len - 2);
	if (smtp_conn_command(c, c->conf->mail_ms, "MAIL FROM", &line,
	    &why) < 0)
		goto broken_mail;
	sent = pipelining ? env->nrcpt : 0;
	if (smtp_conn_reply(c, c->conf->mail_ms, "receiving the MAIL FROM "
	    "reply", &why) < 0)
		goto broken_mail;
	if (smtp_reply_class(&c->reply) != 2) {
		if (c->reply.code == 421) {
			c->closing = true;
			rc = -1;
		}
		for (size_t i = 0; i < env->nrcpt; i++)
			smtp_conn_outcome(c, "MAIL FROM", &out[i]);
		/* the pipelined RCPT replies are read and ignored (not
		 * after a protocol error: the session is given up) */
		for (size_t i = 0; i < sent && !c->broken; i++)
			if (smtp_conn_reply(c, c->conf->rcpt_ms, "receiving "
			    "an RCPT TO reply", &why) < 0)
				break;
		goto out;
	}
	for (size_t i = 0; i < env->nrcpt; i++) {
		if (!pipelining) {
			buf_reset(&line);
			smtp_conn_rcpt(env, i, dsn, &line);
			if (smtp_conn_command(c, c->conf->rcpt_ms, "RCPT TO",
			    &line, &why) < 0)
				goto broken_rcpt;
		}
		if (smtp_conn_reply(c, c->conf->rcpt_ms, "receiving the "
		    "RCPT TO reply", &why) < 0)
			goto broken_rcpt;
		if (smtp_reply_class(&c->reply) == 2) {
			open[i] = true;
			accepted++;
		} else {
			smtp_conn_outcome(c, "RCPT TO", &out[i]);
		}
		continue;
broken_rcpt:
		for (size_t k = i; k < env->nrcpt; k++)
			open[k] = true;
		goto broken;
	}
	if (accepted == 0)
		goto out;

	if (chunking) {
		if (smtp_conn_bdat(c, env, mem, pipelining, open, out,
		    &why) < 0)
			goto broken;
		goto out;
	}
	buf_set(&line, "DATA");
	if (smtp_conn_command(c, c->conf->data_init_ms, "DATA", &line,
	    &why) < 0 || smtp_conn_reply(c, c->conf->data_init_ms,
	    "receiving the DATA reply", &why) < 0)
		goto broken;
	if (smtp_reply_class(&c->reply) == 2) {
		/* out of order: the content was not sent, nothing decided */
		smtp_conn_said(c, "DATA", &text);
		smtp_conn_all(out, open, env->nrcpt, OUTCOME_DEFERRED, "4.5.0",
		    buf_cstr(&text));
		goto out;
	}
	if (smtp_reply_class(&c->reply) != 3) {
		for (size_t i = 0; i < env->nrcpt; i++)
			if (open[i])
				smtp_conn_outcome(c, "DATA", &out[i]);
		goto out;
	}
	if (smtp_conn_content(c, env, mem, &why) < 0 ||
	    smtp_conn_reply(c, c->conf->data_done_ms, "receiving the reply "
	    "to the end of data", &why) < 0)
		goto broken;
	for (size_t i = 0; i < env->nrcpt; i++)
		if (open[i])
			smtp_conn_outcome(c, "end of DATA", &out[i]);
	goto out;
broken_mail:
	rc = -1;
broken:
	/* a network error: whatever is not decided waits for a retry */
	for (size_t i = 0; i < env->nrcpt; i++)
		if (open[i] || out[i].dsn[0] == '\0')
			outcome_set(&out[i], OUTCOME_DEFERRED, "4.4.2", "%s",
			    buf_cstr(&why));
out:
	/* the server is going away (RFC 5321 3.8): not to be reused */
	if (c->reply.code == 421)
		c->closing = true;
	if (rc < 0 && why.len > 0)
		buf_set(&c->why, buf_cstr(&why));
	else if (rc < 0)
		smtp_conn_said(c, "MAIL FROM", &c->why);
	x_free(&open);
	buf_free(&conv);
	buf_free(&line);
	buf_free(&why);
	buf_free(&text);
	return rc;
}

/* smtp_client_use_conf - take conf for the next steps of s */
static void
smtp_client_use_conf(struct smtp_session *s,
    const struct smtp_client_conf *conf)
{
	s->conf = *conf;
	s->c.conf = &s->conf;
}

/* smtp_client_free - free s, its TLS state and buffers, not the fd */
static void
smtp_client_free(struct smtp_session **sp)
{
	struct smtp_session *s = *sp;

	if (s == NULL)
		return;
	if (s->c.ssl != NULL) {
		if (!s->c.broken)
			(void)SSL_shutdown(s->c.ssl);
		SSL_free(s->c.ssl);
	}
	buf_free(&s->c.in);
	buf_free(&s->c.why);
	smtp_reply_free(&s->c.reply);
	smtp_reply_free(&s->ehlo);
	x_free(&s->host);
	x_free(sp);
}

/* smtp_conn_mech - does the EHLO AUTH parameter list mechanism name? */
static bool
smtp_conn_mech(const char *param, const char *name)
{
	size_t n = strlen(name);

	while (param != NULL && *param != '\0' && *param != '\n') {
		size_t w = strcspn(param, " \n");

		if (w == n && str_ncasecmp(param, name, n) == 0)
			return true;
		param += w;
		while (*param == ' ')
			param++;
	}
	return false;
}

/* smtp_conn_b64 - base64 of p[0..n) appended to out */
static void
smtp_conn_b64(const char *p, size_t n, struct buf *out)
{
	size_t old = out->len, need = 4 * ((n + 2) / 3);

	buf_reserve(out, need + 1);
	EVP_EncodeBlock((unsigned char *)out->data + old,
	    (const unsigned char *)p, (int)n);
	out->len = old + need;
	out->data[out->len] = '\0';
}

/* smtp_conn_auth - AUTH PLAIN (or LOGIN) with conf's credentials, only
 * on verified TLS; -1 with why (the host failed: try the next) */
static int
smtp_conn_auth(struct smtp_conn *c, const struct smtp_reply *ehlo,
    const struct smtp_client_info *info, struct buf *why)
{
	const char *user = c->conf->auth_user, *pass = c->conf->auth_pass;
	const char *mechs = NULL;
	size_t rawlen = strlen(user) + strlen(pass) + 2;
	struct buf line = BUF_INIT, raw = BUF_INIT;
	int rc = -1;

	if (c->ssl == NULL || !info->verified) {
		buf_printf(why, "not logging in to %s without TLS and a "
		    "verified certificate", c->host);
		return -1;
	}
	if (!smtp_reply_ehlo(ehlo, "AUTH", &mechs)) {
		buf_printf(why, "%s offers no AUTH, but credentials are set "
		    "for it (smtp_sasl_password_file)", c->host);
		return -1;
	}
	/* room for everything at once: a buffer that grew would leave a
	 * copy of the password behind in freed memory */
	buf_reserve(&raw, rawlen + 1);
	buf_reserve(&line, 16 + 4 * ((rawlen + 2) / 3) + 3);
	if (smtp_conn_mech(mechs, "PLAIN")) {
		/* RFC 4616: authzid NUL authcid NUL passwd */
		buf_putc(&raw, '\0');
		buf_puts(&raw, user);
		buf_putc(&raw, '\0');
		buf_puts(&raw, pass);
		buf_puts(&line, "AUTH PLAIN ");
		smtp_conn_b64(raw.data, raw.len, &line);
		if (smtp_conn_secret(c, "AUTH PLAIN", &line, why) < 0 ||
		    smtp_conn_reply(c, c->conf->helo_ms, "receiving the AUTH "
		    "reply", why) < 0)
			goto out;
	} else if (smtp_conn_mech(mechs, "LOGIN")) {
		buf_puts(&line, "AUTH LOGIN ");
		smtp_conn_b64(user, strlen(user), &line);
		if (smtp_conn_secret(c, "AUTH LOGIN", &line, why) < 0 ||
		    smtp_conn_reply(c, c->conf->helo_ms, "receiving the AUTH "
		    "reply", why) < 0)
			goto out;
		if (c->reply.code == 334) {
			smtp_conn_b64(pass, strlen(pass), &line);
			if (smtp_conn_secret(c, "the password", &line,
			    why) < 0 || smtp_conn_reply(c, c->conf->helo_ms,
			    "receiving the AUTH reply", why) < 0)
				goto out;
		}
	} else {
		buf_printf(why, "%s offers neither AUTH PLAIN nor LOGIN",
		    c->host);
		goto out;
	}
	if (smtp_reply_class(&c->reply) != 2) {
		buf_puts(why, "authentication failed: ");
		smtp_conn_said(c, "AUTH", why);
		goto out;
	}
	rc = 0;
out:
	OPENSSL_cleanse(raw.data, raw.len);
	OPENSSL_cleanse(line.data, line.len);
	buf_free(&raw);
	buf_free(&line);
	return rc;
}

/* smtp_client_open - greeting, EHLO, STARTTLS, EHLO on fd */
struct smtp_session *
smtp_client_open(int fd, const char *host,
    const struct smtp_client_conf *conf, struct smtp_client_info *info,
    struct buf *why)
{
	struct smtp_session *s = xcalloc(1, sizeof(*s));
	struct smtp_conn *c = &s->c;
	struct buf line = BUF_INIT;

	s->host = xstrdup(host);
	c->fd = fd;
	c->host = s->host;
	buf_init(&c->in);
	buf_init(&c->why);
	smtp_reply_init(&c->reply);
	smtp_reply_init(&s->ehlo);
	smtp_client_use_conf(s, conf);
	info->fail_dsn[0] = '\0';
	info->trust = "";
	if (conf->tls >= SMTP_TLS_ENCRYPT && conf->tls_ctx == NULL) {
		/* never downgrade: no context, no session at this level */
		buf_printf(why, "TLS is required for %s but this host has no "
		    "TLS client context", host);
		str_lcpy(info->fail_dsn, "4.7.4", sizeof(info->fail_dsn));
		goto fail;
	}
	if (sock_set_nonblock(fd, true) < 0) {
		buf_printf(why, "fcntl: %m");
		goto fail;
	}
	if (smtp_conn_reply(c, conf->helo_ms, "receiving the initial "
	    "greeting", why) < 0)
		goto fail;
	if (smtp_reply_class(&c->reply) != 2) {
		buf_puts(why, "host ");
		smtp_conn_said(c, "the initial greeting", why);
		goto fail;
	}
	if (smtp_conn_ehlo(c, info, &s->ehlo, why) < 0)
		goto fail;
	if (info->esmtp && conf->tls != SMTP_TLS_NONE &&
	    conf->tls_ctx != NULL && smtp_reply_ehlo(&s->ehlo, "STARTTLS",
	    NULL)) {
		buf_set(&line, "STARTTLS");
		if (smtp_conn_command(c, conf->helo_ms, "STARTTLS", &line,
		    why) < 0 || smtp_conn_reply(c, conf->helo_ms,
		    "receiving the STARTTLS reply", why) < 0)
			goto fail;
		if (smtp_reply_class(&c->reply) == 2) {
			if (smtp_conn_starttls(c, info, why) < 0 ||
			    smtp_conn_ehlo(c, info, &s->ehlo, why) < 0)
				goto fail;
		} else if (conf->tls >= SMTP_TLS_ENCRYPT) {
			buf_puts(why, "TLS is required but host ");
			smtp_conn_said(c, "STARTTLS", why);
			str_lcpy(info->fail_dsn, "4.7.4",
			    sizeof(info->fail_dsn));
			goto fail;
		}
	} else if (conf->tls >= SMTP_TLS_ENCRYPT) {
		buf_printf(why, "TLS is required but %s does not offer "
		    "STARTTLS", host);
		str_lcpy(info->fail_dsn, "4.7.4", sizeof(info->fail_dsn));
		goto fail;
	}
	if (conf->auth_user != NULL && smtp_conn_auth(c, &s->ehlo, info,
	    why) < 0)
		goto fail;
	info->dsn = smtp_reply_ehlo(&s->ehlo, "DSN", NULL);
	buf_free(&line);
	return s;
fail:
	buf_free(&line);
	smtp_client_free(&s);
	return NULL;
}

/* smtp_client_dsn - did the server of s announce DSN (RFC 3461)? */
bool
smtp_client_dsn(const struct smtp_session *s)
{
	return smtp_reply_ehlo(&s->ehlo, "DSN", NULL);
}

/* smtp_client_send - one transaction on s */
int
smtp_client_send(struct smtp_session *s, const struct smtp_client_conf *conf,
    const struct smtp_envelope *env, struct outcome *out, struct buf *why)
{
	int rc;

	smtp_client_use_conf(s, conf);
	for (size_t i = 0; i < env->nrcpt; i++)
		outcome_free(&out[i]);	/* dsn "" marks "not decided" */
	buf_reset(&s->c.why);
	rc = smtp_conn_transaction(&s->c, &s->ehlo, env, out);
	if (rc < 0)
		buf_puts(why, buf_cstr(&s->c.why));
	return rc;
}

/* smtp_client_usable - not broken, no 421, nothing unasked waiting */
bool
smtp_client_usable(struct smtp_session *s)
{
	struct pollfd pfd = {.fd = s->c.fd, .events = POLLIN};
	int n;

	if (s->c.broken || s->c.closing || s->c.in.len > 0)
		return false;
	if (s->c.ssl != NULL && SSL_pending(s->c.ssl) > 0)
		return false;
	/* readable while idle: EOF, a reset, or an unasked 421 */
	do {
		n = poll(&pfd, 1, 0);
	} while (n < 0 && errno == EINTR);
	return n == 0;
}

/* smtp_client_reset - RSET, for the next transaction */
int
smtp_client_reset(struct smtp_session *s, const struct smtp_client_conf *conf)
{
	struct buf line = BUF_INIT, why = BUF_INIT;
	long long ms = conf->helo_ms < SMTP_CLIENT_RSET_MS ? conf->helo_ms :
	    SMTP_CLIENT_RSET_MS;
	int rc = -1;

	smtp_client_use_conf(s, conf);
	if (!smtp_client_usable(s))
		goto out;
	buf_set(&line, "RSET");
	if (smtp_conn_command(&s->c, ms, "RSET", &line, &why) < 0 ||
	    smtp_conn_reply(&s->c, ms, "receiving the RSET reply", &why) < 0)
		goto out;
	if (s->c.reply.code == 421)
		s->c.closing = true;
	if (smtp_reply_class(&s->c.reply) == 2)
		rc = 0;
	else
		msg_debug("%s: RSET refused: %d", s->host, s->c.reply.code);
out:
	buf_free(&line);
	buf_free(&why);
	return rc;
}

/* smtp_client_fd - the socket of s */
int
smtp_client_fd(const struct smtp_session *s)
{
	return s->c.fd;
}

/* smtp_client_close - QUIT unless broken, and free */
void
smtp_client_close(struct smtp_session **sp)
{
	struct smtp_session *s = *sp;

	if (s == NULL)
		return;
	/* QUIT, politely and briefly, unless the connection broke; the
	 * request's deadline may be past when an idle session closes */
	s->conf.deadline = 0;
	if (s->conf.helo_ms > 5000 || s->conf.helo_ms <= 0)
		s->conf.helo_ms = 5000;
	if (!s->c.broken && !s->c.closing) {
		struct buf line = BUF_INIT, ignored = BUF_INIT;

		buf_set(&line, "QUIT");
		if (smtp_conn_command(&s->c, s->conf.helo_ms, "QUIT", &line,
		    &ignored) == 0)
			(void)smtp_conn_reply(&s->c, s->conf.helo_ms, "QUIT",
			    &ignored);
		buf_free(&line);
		buf_free(&ignored);
	}
	smtp_client_free(sp);
}

/* smtp_client_deliver - one transaction on fd: open, send, close */
int
smtp_client_deliver(int fd, const char *host,
    const struct smtp_client_conf *conf, const struct smtp_envelope *env,
    struct outcome *out, struct smtp_client_info *info, struct buf *why)
{
	struct smtp_session *s;
	struct buf ignored = BUF_INIT;

	if ((s = smtp_client_open(fd, host, conf, info, why)) == NULL)
		return -1;
	/* on a fresh session -1 (nothing decided) still set out: the
	 * deferral, or the 421, is the answer */
	(void)smtp_client_send(s, conf, env, out, &ignored);
	buf_free(&ignored);
	smtp_client_close(&s);
	return 0;
}
