/*
 * remote_request - one delivery request from qmgr: check it, read the
 * queue file, find the domain's mail exchangers, try their addresses in
 * order until one takes the transaction, and answer per recipient
 * (protocol: see remote.c).
 *
 * qmgr puts only recipients of one domain into a request. Within one
 * attempt an address that cannot be reached, or whose server fails
 * before the transaction (greeting or EHLO not 2xx, a TLS handshake that
 * failed, TLS required and not offered) passes the request to the next
 * address; when none is left every recipient is deferred with the last
 * reason, and the reply says conn_failed=1 (qmgr's negative feedback
 * for the domain, as is a temporary MX lookup failure). Once a server
 * took MAIL FROM, its replies decide: 2xx delivered, 4xx and network
 * errors deferred, 5xx bounced. The next hop is the domain's transport,
 * else relayhost, else its MX (remote_hop.c); the TLS level is the
 * domain's policy, else smtp_tls_security_level (transport and policy
 * come from qmgr, in the request; remote_tls_level is the one place that
 * picks it), at least verify where credentials are sent, and with dane
 * per host what its TLSA records say (remote_mx.c). A session cached for
 * the same next hop, level and login (remote_cache.c) is tried first; the
 * session that took the transaction is offered to the cache afterwards.
 */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/evloop.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/sock.h"
#include "base/str.h"
#include "mail/addr.h"
#include "mail/ipc.h"
#include "mail/mime_8to7.h"
#include "mail/params.h"
#include "mail/qfile.h"
#include "mail/smtp_client.h"
#include "remote.h"

#define REMOTE_DEADLINE_MARGIN 5000	/* ms kept to answer qmgr */

/* remote_result_name - the protocol word for an outcome */
static const char *
remote_result_name(enum outcome_status st)
{
	switch (st) {
	case OUTCOME_OK:
		return "delivered";
	case OUTCOME_BOUNCED:
		return "bounced";
	default:
		return "deferred";
	}
}

/* remote_connect - a TCP connection to a within the connect timeout,
 * and before deadline (0: none); -1 with why */
static int
remote_connect(const struct remote_addr *a, int port, long long deadline,
    char *text, size_t size, struct buf *why)
{
	struct sockaddr_storage ss;
	socklen_t len;
	struct pollfd pfd;
	int fd, err = 0, n;
	socklen_t elen = sizeof(err);
	long long until = evloop_clock() + var_smtp_connect_timeout *
	    1000;

	if (deadline > 0 && deadline < until)
		until = deadline;

	memset(&ss, 0, sizeof(ss));
	if (a->family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		memcpy(&sin->sin_addr, a->addr, 4);
		len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		memcpy(&sin6->sin6_addr, a->addr, 16);
		len = sizeof(*sin6);
	}
	sock_addr_text((struct sockaddr *)&ss, len, text, size);
	fd = socket(a->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		buf_printf(why, "socket: %m");
		return -1;
	}
	/* commands and the content's last block go out at once: with
	 * Nagle each waited for the ACK of the write before, which the
	 * server delays (about 40 ms a round on Linux) */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1},
	    sizeof(int)) < 0)
		msg_warn("setsockopt TCP_NODELAY: %m");
	if (connect(fd, (struct sockaddr *)&ss, len) == 0)
		return fd;
	if (errno != EINPROGRESS)
		goto fail;
	pfd.fd = fd;
	pfd.events = POLLOUT;
	do {
		long long left = until - evloop_clock();

		if (left <= 0) {
			errno = ETIMEDOUT;
			goto fail;
		}
		n = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		goto fail;
	if (n == 0) {
		errno = ETIMEDOUT;
		goto fail;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
		goto fail;
	if (err != 0) {
		errno = err;
		goto fail;
	}
	return fd;
fail:
	buf_printf(why, "connect to %s[%s]:%d: %m", a->host, text, port);
	(void)close(fd);
	return -1;
}

/* remote_eightbit - 8-bit bytes in the content: *header when in its
 * header section (that needs SMTPUTF8, RFC 6531 3.2), *any anywhere (a
 * read error counts as 8-bit content: sending reads again and fails) */
static void
remote_eightbit(const struct qfile *qf, int fd, bool *header, bool *any)
{
	char chunk[65536];
	off_t off = qf->body_off, end = qf->body_off + qf->body_size;
	size_t col = 0;		/* bytes of the header line so far, no CR */
	bool in_header = true;

	*header = *any = false;
	while (off < end) {
		size_t want = end - off > (off_t)sizeof(chunk) ?
		    sizeof(chunk) : (size_t)(end - off);
		ssize_t n = pread(fd, chunk, want, off);
		size_t i;

		if (n <= 0) {
			*any = true;
			return;
		}
		for (i = 0; in_header && i < (size_t)n; i++) {
			if ((unsigned char)chunk[i] >= 0x80) {
				*header = *any = true;
				return;
			}
			if (chunk[i] == '\n') {
				in_header = col > 0;
				col = 0;
			} else if (chunk[i] != '\r') {
				col++;
			}
		}
		if (mime_has_8bit(chunk + i, (size_t)n - i)) {
			*any = true;
			return;
		}
		off += n;
	}
}

/* remote_tls_level - the TLS level for mail to domain: the one place
 * that chooses it */
enum smtp_tls_level
remote_tls_level(const char *domain, const char *policy, struct buf *why)
{
	static const char *const names[] = {
		[SMTP_TLS_NONE] = "none",
		[SMTP_TLS_MAY] = "may",
		[SMTP_TLS_ENCRYPT] = "encrypt",
		[SMTP_TLS_VERIFY] = "verify",
		[SMTP_TLS_DANE] = "dane",
	};
	const char *w = policy != NULL ? policy : var_smtp_tls_security_level;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(w, names[i]) == 0)
			return (enum smtp_tls_level)i;
	if (policy == NULL)
		return SMTP_TLS_MAY;	/* checked at load: not seen */
	buf_printf(why, "TLS policy of %s: unknown level \"%.40s\"", domain,
	    policy);
	return SMTP_TLS_VERIFY;
}

/* remote_cache_key - what a cached session is good for */
static void
remote_cache_key(const struct remote_hop *hop, enum smtp_tls_level level,
    char *key, size_t size)
{
	snprintf(key, size, "%s tls=%d user=%s", hop->name, (int)level,
	    hop->user != NULL ? hop->user : "");
}

/* remote_tls_text - how a host's TLS was, for its log line */
static void
remote_tls_text(const struct smtp_client_info *info, struct buf *out)
{
	buf_printf(out, "TLS %s, certificate %s, %s TLS connection",
	    buf_cstr(&info->tls), info->verified ? "verified" :
	    "not verified", info->trust);
	if (info->dane[0] != '\0')
		buf_printf(out, " (DANE) by %s", info->dane);
}

/* remote_log_outcomes - one log line per recipient */
static void
remote_log_outcomes(const char *qid, const char *relay,
    const struct smtp_envelope *env, const struct outcome *out)
{
	for (size_t k = 0; k < env->nrcpt; k++)
		msg_info("%s: to=<%s>, relay=%s, dsn=%s, status=%s (%s)", qid,
		    env->rcpt[k], relay, out[k].dsn,
		    remote_result_name(out[k].status),
		    buf_cstr(&out[k].reason));
}

/* remote_deliver_cached - the envelope over a session cached for key;
 * false when there was none or it failed before MAIL FROM was accepted
 * (nothing decided: the caller connects anew, no failure counted) */
static bool
remote_deliver_cached(const char *qid, const char *key,
    const struct smtp_client_conf *conf, const struct smtp_envelope *env,
    struct outcome *out, bool *nodsn_r)
{
	struct smtp_session *s;
	struct buf why = BUF_INIT;
	char relay[REMOTE_RELAY_MAX];
	long long ntx;
	int fd;

	while ((s = remote_cache_take(key, conf, &fd, relay, &ntx)) !=
	    NULL) {
		ntx++;
		msg_info("%s: reusing connection to %s, transaction %lld",
		    qid, relay, ntx);
		buf_reset(&why);
		if (smtp_client_send(s, conf, env, out, &why) == 0) {
			*nodsn_r = !smtp_client_dsn(s);
			remote_log_outcomes(qid, relay, env, out);
			remote_cache_put(key, relay, s, fd, ntx);
			buf_free(&why);
			return true;
		}
		msg_info("%s: %s: cached connection failed (%s); connecting "
		    "anew", qid, relay, buf_cstr(&why));
		smtp_client_close(&s);
		if (close(fd) < 0)
			msg_warn("%s: close: %m", qid);
	}
	buf_free(&why);
	return false;
}

/* remote_deliver - try the route's addresses for the envelope; sets out;
 * the session that took it is kept for key (remote_cache.c);
 * *conn_failed_r when no address took the transaction */
static void
remote_deliver(const char *qid, const char *key,
    const struct remote_route *rt, const struct smtp_client_conf *conf,
    const struct smtp_envelope *env, struct outcome *out, bool *nodsn_r,
    bool *conn_failed_r)
{
	struct buf why = BUF_INIT;
	char dsn[8] = "4.4.1";

	for (size_t i = 0; i < rt->naddr; i++) {
		const struct remote_addr *a = &rt->addr[i];
		const struct remote_tls *t = &rt->tls[a->tls];
		struct smtp_client_info info = {.tls = BUF_INIT};
		struct smtp_client_conf hc = *conf;
		struct smtp_session *s;
		char text[64], relay[REMOTE_RELAY_MAX];
		int fd;

		/* the host's own level: with dane, what its TLSA say; never
		 * below verify where credentials go (remote_run) */
		hc.tls = t->level;
		if (t->level == SMTP_TLS_DANE) {
			hc.tlsa = t->tlsa.rr;
			hc.ntlsa = t->tlsa.nrr;
			hc.tlsa_base = t->base;
		} else if (conf->auth_user != NULL &&
		    hc.tls < SMTP_TLS_VERIFY) {
			hc.tls = SMTP_TLS_VERIFY;
		}

		if (conf->deadline > 0 &&
		    evloop_clock() >= conf->deadline) {
			buf_reset(&why);
			buf_puts(&why, "no time left for another mail "
			    "exchanger (delivery_timeout)");
			break;
		}
		buf_reset(&why);
		if ((fd = remote_connect(a, rt->port, conf->deadline, text,
		    sizeof(text), &why)) < 0) {
			msg_info("%s: %s", qid, buf_cstr(&why));
			continue;
		}
		snprintf(relay, sizeof(relay), "%s[%s]:%d", a->host, text,
		    rt->port);
		s = smtp_client_open(fd, a->host, &hc, &info, &why);
		if (info.tls.len > 0) {
			struct buf line = BUF_INIT;

			remote_tls_text(&info, &line);
			msg_info("%s: %s: %s", qid, relay, buf_cstr(&line));
			buf_free(&line);
		} else if (s != NULL) {
			msg_info("%s: %s: no TLS (plaintext)", qid, relay);
		}
		buf_free(&info.tls);
		if (s != NULL) {
			/* on a fresh session "nothing decided" (-1) still
			 * set out: the deferral is the answer */
			buf_reset(&why);
			(void)smtp_client_send(s, conf, env, out, &why);
			*nodsn_r = !info.dsn;
			remote_log_outcomes(qid, relay, env, out);
			remote_cache_put(key, relay, s, fd, 1);
			buf_free(&why);
			return;
		}
		if (close(fd) < 0)
			msg_warn("%s: close: %m", qid);
		msg_info("%s: %s: %s", qid, relay, buf_cstr(&why));
		/* the last host's failure speaks: a TLS policy one as such */
		str_lcpy(dsn, info.fail_dsn[0] != '\0' ? info.fail_dsn :
		    "4.4.1", sizeof(dsn));
	}
	for (size_t k = 0; k < env->nrcpt; k++)
		outcome_set(&out[k], OUTCOME_DEFERRED, dsn, "%s",
		    why.len ? buf_cstr(&why) : "no mail exchanger to try");
	*conn_failed_r = true;
	buf_free(&why);
}

/* remote_run - route and deliver the recipients idx[0..n) of qf;
 * *conn_failed_r when no server took the transaction */
static void
remote_run(struct dns *dns, struct ssl_ctx_st *tls, const struct ipc_msg *req,
    const char *qid,
    const struct qfile *qf, int qfd, const long long *idx, size_t n,
    struct outcome *out, bool *nodsn_r, bool *conn_failed_r)
{
	const char **rcpt = xcalloc(n, sizeof(*rcpt));
	const char **orcpt = xcalloc(n, sizeof(*orcpt));
	const char **notify = xcalloc(n, sizeof(*notify));
	const char *body = qfile_attr(qf, QFILE_A_BODY);
	const char *utf8 = qfile_attr(qf, QFILE_A_SMTPUTF8);
	struct smtp_client_conf conf = {
		.helo_name = var_myhostname,
		.tls_ctx = tls,
		.helo_ms = var_smtp_helo_timeout * 1000,
		.mail_ms = var_smtp_mail_timeout * 1000,
		.rcpt_ms = var_smtp_rcpt_timeout * 1000,
		.data_init_ms = var_smtp_data_init_timeout * 1000,
		.data_xfer_ms = var_smtp_data_xfer_timeout * 1000,
		.data_done_ms = var_smtp_data_done_timeout * 1000,
		.chunking = var_smtp_use_chunking,
	};
	struct smtp_envelope env = {
		.sender = qf->sender,
		.rcpt = rcpt,
		.orcpt = orcpt,
		.notify = notify,
		.nrcpt = n,
		.envid = qfile_attr(qf, QFILE_A_ENVID),
		.ret = qfile_attr(qf, QFILE_A_RET),
		.fd = qfd,
		.off = qf->body_off,
		.size = qf->body_size,
	};
	struct remote_route rt;
	struct remote_hop hop;
	struct buf why = BUF_INIT;
	char key[REMOTE_KEY_MAX];
	const char *domain;
	bool want4 = strcmp(var_inet_protocols, "ipv6") != 0;
	bool want6 = strcmp(var_inet_protocols, "ipv4") != 0;
	bool utf8_addr = addr_is_utf8(qf->sender);
	bool smtputf8 = false, header8 = false;

	/* what qmgr hands over is one domain's recipients */
	for (size_t i = 0; i < n; i++) {
		rcpt[i] = qf->rcpt[idx[i]].addr;
		orcpt[i] = qf->rcpt[idx[i]].orcpt;
		notify[i] = qf->rcpt[idx[i]].notify;
		if (addr_is_utf8(rcpt[i]))
			utf8_addr = true;
	}
	if (utf8 != NULL && strcmp(utf8, "1") == 0)
		smtputf8 = true;
	if (smtputf8 || (body != NULL && str_casecmp(body, "7BIT") != 0))
		remote_eightbit(qf, qfd, &header8, &env.eightbit);
	/* SMTPUTF8 is needed when an address or the header is not ASCII;
	 * an 8-bit body needs only 8BITMIME (or the conversion) */
	env.smtputf8 = smtputf8 && (utf8_addr || header8);
	/* the margin to answer qmgr is at most half of delivery_timeout,
	 * so a short setting (it may be 1 s) still leaves time to try */
	conf.deadline = evloop_clock() + var_delivery_timeout * 1000 -
	    (var_delivery_timeout * 1000 / 2 < REMOTE_DEADLINE_MARGIN ?
	    var_delivery_timeout * 1000 / 2 : REMOTE_DEADLINE_MARGIN);
	domain = addr_domain(rcpt[0]);
	memset(&hop, 0, sizeof(hop));
	if (ipc_get_str(req, IPC_ROUTE_ERROR) != NULL)
		buf_puts(&why, ipc_get_str(req, IPC_ROUTE_ERROR));
	if (why.len == 0 && remote_hop_find(ipc_get_str(req, IPC_NEXTHOP),
	    domain, &hop, &why) == 0)
		conf.tls = remote_tls_level(domain, ipc_get_str(req,
		    IPC_TLS_POLICY), &why);
	if (why.len > 0) {
		for (size_t i = 0; i < n; i++)
			outcome_set(&out[i], OUTCOME_DEFERRED, "4.3.5", "%s",
			    buf_cstr(&why));
		msg_warn("%s: %s: %s", qid, domain, buf_cstr(&why));
		goto out;
	}
	/* AUTH never goes to a server that is not proven */
	if (hop.user != NULL && conf.tls < SMTP_TLS_VERIFY)
		conf.tls = SMTP_TLS_VERIFY;
	if (hop.via != NULL)
		msg_debug("%s: %s: next hop %s (%s)", qid, domain, hop.name,
		    hop.via);
	conf.auth_user = hop.user;
	conf.auth_pass = hop.pass;
	remote_cache_key(&hop, conf.tls, key, sizeof(key));
	/* a session cached for the next hop first: no DNS, no handshake */
	if (remote_deliver_cached(qid, key, &conf, &env, out, nodsn_r))
		goto out;
	remote_route(dns, &hop.nh, want4, want6, conf.tls, &rt);
	if (rt.naddr == 0 && hop.via != NULL) {
		/* a next hop the admin named that does not resolve is a
		 * setting to fix, not the recipient's fault: defer (a TLS
		 * policy failure, DANE's 4.7.5, says so) */
		for (size_t i = 0; i < n; i++)
			outcome_set(&out[i], OUTCOME_DEFERRED,
			    strncmp(rt.fail.dsn, "4.7.", 4) == 0 ?
			    rt.fail.dsn : "4.4.4", "%s %s: %s", hop.via,
			    hop.name, buf_cstr(&rt.fail.reason));
		msg_info("%s: %s: %s %s: %s", qid, domain, hop.via, hop.name,
		    buf_cstr(&rt.fail.reason));
	} else if (rt.naddr == 0) {
		for (size_t i = 0; i < n; i++)
			outcome_set(&out[i], rt.fail.status, rt.fail.dsn, "%s",
			    buf_cstr(&rt.fail.reason));
		msg_info("%s: %s: %s", qid, domain,
		    buf_cstr(&rt.fail.reason));
		/* a lookup that failed for now: no server reachable */
		*conn_failed_r = rt.fail.status == OUTCOME_DEFERRED;
	} else {
		remote_deliver(qid, key, &rt, &conf, &env, out, nodsn_r,
		    conn_failed_r);
	}
	remote_route_free(&rt);
out:
	remote_hop_free(&hop);
	buf_free(&why);
	x_free(&rcpt);
	x_free(&orcpt);
	x_free(&notify);
}

/* remote_request - serve one request */
int
remote_request(struct dns *dns, struct ssl_ctx_st *tls, int sock,
    const struct ipc_msg *req, int qfd)
{
	struct buf why = BUF_INIT;
	struct ipc_msg reply;
	struct qfile *qf = NULL;
	struct outcome *out = NULL;
	long long *idx = NULL;
	const char *qid, *dom = NULL;
	size_t n;
	bool bad = false, nodsn = false, conn_failed = false;
	int ret = -1;

	if (ipc_delivery_request(req, qfd, REMOTE_RCPT_MAX, &idx, &n,
	    &why) < 0) {
		msg_warn("bad request from qmgr: %s: dropping the connection",
		    buf_cstr(&why));
		buf_free(&why);
		return -1;
	}
	qid = ipc_get_str(req, IPC_QUEUE_ID);
	out = xcalloc(n, sizeof(*out));
	for (size_t i = 0; i < n; i++)
		outcome_init(&out[i]);
	if (qfile_read(qfd, &qf, &why) < 0) {
		msg_warn("%s: cannot read queue file: %s", qid,
		    buf_cstr(&why));
		bad = true;
	}
	for (size_t i = 0; !bad && i < n; i++) {
		if ((size_t)idx[i] >= qf->nrcpt) {
			buf_printf(&why, "no recipient %lld in the queue "
			    "file", idx[i]);
			bad = true;
		} else if (dom == NULL) {
			dom = addr_domain(qf->rcpt[idx[i]].addr);
		} else if (str_casecmp(dom,
		    addr_domain(qf->rcpt[idx[i]].addr)) != 0) {
			buf_puts(&why, "recipients of more than one domain "
			    "in one request");
			bad = true;
		}
	}
	if (bad) {
		for (size_t i = 0; i < n; i++)
			outcome_set(&out[i], OUTCOME_DEFERRED, "4.3.0",
			    "remote delivery: %s", buf_cstr(&why));
	} else {
		remote_run(dns, tls, req, qid, qf, qfd, idx, n, out, &nodsn,
		    &conn_failed);
	}
	ipc_msg_init(&reply);
	ipc_put_str(&reply, IPC_STATUS, "ok");
	if (conn_failed)
		ipc_put_str(&reply, IPC_CONN_FAILED, "1");
	for (size_t i = 0; i < n; i++) {
		ipc_put_int(&reply, IPC_RCPT_INDEX, idx[i]);
		ipc_put_str(&reply, IPC_RESULT,
		    remote_result_name(out[i].status));
		ipc_put_str(&reply, IPC_DSN_CODE, out[i].dsn);
		ipc_put_str(&reply, IPC_REASON, buf_cstr(&out[i].reason));
		/* RFC 3461 5.2: NOTIFY could not go on; qmgr reports it */
		if (nodsn && out[i].status == OUTCOME_OK)
			ipc_put_str(&reply, IPC_RELAYED, "1");
	}
	buf_reset(&why);
	if (ipc_send(sock, &reply, -1, (int)var_delivery_timeout * 1000,
	    &why) < 0)
		msg_warn("%s: reply to qmgr: %s", qid, buf_cstr(&why));
	else
		ret = 0;
	ipc_msg_free(&reply);
	for (size_t i = 0; i < n; i++)
		outcome_free(&out[i]);
	x_free(&out);
	x_free(&idx);
	if (qf != NULL)
		qfile_free(&qf);
	buf_free(&why);
	return ret;
}
