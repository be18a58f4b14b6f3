/*
 * remote - the herald remote delivery agent (SMTP client)
 *
 * SYNOPSIS
 *	remote [-c config] [-f] [-v]		(started by master)
 *
 * DESCRIPTION
 *	remote delivers messages to other domains' mail exchangers over
 *	SMTP (RFC 5321). It is a single-model service: master runs
 *	remote_processes of them on the shared listener
 *	<spool>/private/remote; each process accepts one connection from
 *	qmgr and serves its requests one at a time until qmgr closes it.
 *
 *	A request names a queue file and recipients of one domain, with the
 *	domain's transport and TLS policy that qmgr found in the directory
 *	(heraldctl transport add, tls-policy set). Its next hop is that
 *	transport, else relayhost, else the domain's own MX
 *	(remote_hop.c); a next hop "[host]:port" is that host, no MX
 *	lookup. For the MX, remote
 *	looks up the domain's MX records with lib/mail/dns.c (preference
 *	order, random among equals; no MX: the domain's own A/AAAA; a null
 *	MX bounces at once with 5.1.10), the hosts' addresses as
 *	inet_protocols allows, and tries them in order: an address that
 *	does not answer, or whose server greets or answers EHLO with an
 *	error, or whose TLS handshake fails, hands the attempt to the next
 *	one. The first server that takes the transaction decides every
 *	recipient: 2xx delivered, 4xx deferred, 5xx bounced, with its reply
 *	as the reason that `heraldctl queue show` and the DSN show. When no
 *	address took it, every recipient is deferred with the last error,
 *	and qmgr retries with its backoff.
 *
 *	The TLS level is the domain's policy (heraldctl tls-policy), else
 *	smtp_tls_security_level, chosen in remote_tls_level(); at least
 *	verify for a next hop with credentials in smtp_sasl_password_file,
 *	which get AUTH PLAIN or LOGIN only over verified TLS. The client
 *	(lib/mail/smtp_client.c) uses STARTTLS whenever the server offers
 *	it (may; encrypt requires it, verify also a certificate from
 *	smtp_tls_ca_file or the system CA store naming the host) and logs
 *	the protocol, cipher and how far the certificate was trusted. With
 *	dane, a host whose MX and address records are DNSSEC-secure (or the
 *	host of a "[host]" next hop whose address records are) and that
 *	has usable TLSA records (remote_mx.c, lib/mail/dane.c) gets DANE
 *	(RFC 7672): STARTTLS and a certificate matching them, else the host
 *	fails with 4.7.5, never plaintext. It sends
 *	MAIL and RCPTs in one write with PIPELINING, passes DSN parameters
 *	on to servers with DSN, sends 8-bit content to a server without
 *	8BITMIME as quoted-printable (lib/mail/mime_8to7.c), and bounces at
 *	once a message over the server's SIZE (5.3.4), 8-bit content it
 *	cannot convert (5.6.3) or one needing SMTPUTF8 that the server
 *	lacks (5.6.7).
 *
 *	Connections are cached (remote_cache.c): after a transaction the
 *	session stays open, keyed by next hop, TLS level and login, for
 *	smtp_connection_cache_time_limit idle and at most
 *	smtp_connection_reuse_count_limit transactions; the next request
 *	for that next hop sends RSET and its transaction over it ("QID:
 *	reusing connection to host[addr]:port, transaction N"), with no
 *	DNS lookup and no handshake. A cached session that is gone, or
 *	fails before MAIL FROM was accepted, is closed and the request
 *	goes to a fresh connection, with no failure counted. While it
 *	waits for qmgr, remote closes idle sessions on time, and all of
 *	them when it stops. qmgr gives a domain's request to the idle
 *	agent that served the domain last.
 *
 * PROTOCOL
 *	qmgr -> remote, on a persistent connection, one request at a time:
 *	  {request=deliver, queue_id=QID, rcpt_index=I, rcpt_index=J, ...
 *	   [, nexthop=[host]:port][, tls_policy=LEVEL][, route_error=TEXT]}
 *	  with the queue file attached (SCM_RIGHTS, opened read-only); the
 *	  recipients are of one domain; nexthop and tls_policy are the
 *	  domain's entries in the directory, route_error says qmgr could not
 *	  look them up (every recipient is deferred with it)
 *	remote -> qmgr:
 *	  {status=ok[, conn_failed=1]} then per requested recipient, in
 *	  request order, {rcpt_index=I, result=delivered|deferred|bounced,
 *	   dsn=X.Y.Z, reason=TEXT[, relayed=1]}
 *	conn_failed=1: no server took the transaction (every address
 *	refused or timed out, or failed at the greeting, EHLO or TLS, or
 *	the MX lookup failed for now); every recipient is deferred. qmgr
 *	lowers the domain's concurrency on it (qmgr/qmgr_dest.c); a 4xx
 *	or 5xx to MAIL, RCPT or DATA is no connection failure.
 *	relayed=1: delivered to a server that did not announce DSN, so the
 *	NOTIFY could not be passed on; qmgr sends the sender an
 *	"Action: relayed" report when NOTIFY asked for SUCCESS (RFC 3461).
 *	A malformed request is logged and the connection dropped. A
 *	request is answered within delivery_timeout: remote stops trying
 *	further addresses a few seconds before it.
 *
 * SECURITY
 *	remote runs as herald_user, dropped by the service skeleton before
 *	the first accept; it reads the queue file qmgr hands it (read-only
 *	descriptor) and smtp_sasl_password_file, which it opens before
 *	the drop (so it may be mode 0600 root, closed to smtpd, which shares
 *	herald_user) and refuses to use when anybody but herald_user and
 *	root could read it (a file replaced later is opened again as
 *	herald_user, so keep it in place or heraldctl reload); it never logs
 *	a password. It has no access to the directory: qmgr sends it the
 *	domain's transport and TLS policy, which it checks again.
 *	It talks to the network. Everything a
 *	remote server sends is bounded (smtp_reply.c: 512-byte lines, 100
 *	lines a reply; per-stage deadlines) and reaches qmgr only as reason
 *	text, which qmgr escapes.
 *
 * SETTINGS (herald.conf)
 *	myhostname, herald_user, remote_processes,
 *	remote_destination_concurrency_limit (read by qmgr), delivery_timeout,
 *	inet_protocols, smtp_tls_security_level, relayhost,
 *	smtp_sasl_password_file, smtp_tls_ca_file, smtp_port,
 *	smtp_connect_timeout, smtp_helo_timeout, smtp_mail_timeout,
 *	smtp_rcpt_timeout, smtp_data_init_timeout, smtp_data_xfer_timeout,
 *	smtp_data_done_timeout, smtp_connection_cache_time_limit,
 *	smtp_connection_reuse_count_limit, smtp_use_chunking, dns_forwarders,
 *	dns_stub_zones, dns_trust_anchor_file, dns_timeout.
 */
#include <errno.h>
#include <poll.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/tls.h"
#include "mail/dns.h"
#include "mail/ipc.h"
#include "mail/params.h"
#include "mail/saslpass.h"
#include "mail/service.h"
#include "remote.h"

static struct dns *remote_dns;		/* made after the drop */
static SSL_CTX *remote_tls;		/* client context, NULL: no TLS */

/* remote_pre_drop - the password file, opened while still root (if
 * started as root): it can then be root's alone, closed to the smtpd
 * processes that share herald_user; the kernel makes a process that
 * changed its user undumpable, so they cannot reach the descriptor
 * either */
static void
remote_pre_drop(struct service *svc)
{
	struct buf why = BUF_INIT;

	(void)svc;
	if (*var_smtp_sasl_password_file != '\0' &&
	    (remote_pass_fd = saslpass_open(var_smtp_sasl_password_file,
	    &why)) < 0 && errno != ENOENT)
		msg_warn("%s", buf_cstr(&why));
	buf_free(&why);
}

/* remote_init - resolver and TLS context, after the privilege drop */
static void
remote_init(struct service *svc)
{
	struct buf why = BUF_INIT;

	(void)svc;
	if (dns_new_params(&remote_dns, &why) < 0)
		msg_fatal("dns: %s", buf_cstr(&why));
	buf_reset(&why);
	if ((remote_tls = tls_client_ctx_new(var_smtp_tls_ca_file,
	    &why)) == NULL)
		msg_warn("no TLS for remote delivery: %s", buf_cstr(&why));
	buf_free(&why);
}

/* remote_wait_cached - while connections are cached: wait for input on
 * sock until the next one expires (at most a second, to see a stop);
 * false when it is time to expire again, true to go on waiting as usual */
static bool
remote_wait_cached(struct service *svc, int sock)
{
	struct pollfd pfd = {.fd = sock, .events = POLLIN};
	long long ms = remote_cache_expire();
	int n;

	if (ms < 0 || service_stopping(svc))
		return true;
	n = poll(&pfd, 1, ms > 1000 ? 1000 : (int)ms + 1);
	if (n < 0 && errno != EINTR) {
		msg_warn("poll: %m");
		return true;
	}
	return n > 0;
}

/* remote_serve - serve one qmgr connection until it closes */
static void
remote_serve(struct service *svc, int sock, const struct service_listener *l)
{
	struct ipc_msg req;
	struct buf why = BUF_INIT;

	(void)l;
	ipc_msg_init(&req);
	/* stopping (a reload): a request already on its way is still
	 * served (service_wait_request), as local does, not deferred */
	for (;;) {
		int qfd = -1, r;

		/* cached connections idle too long close on time, while
		 * the next request is awaited */
		if (!remote_wait_cached(svc, sock))
			continue;
		if (!service_wait_request(svc, sock))
			break;

		buf_reset(&why);
		r = ipc_recv(sock, &req, &qfd, (int)var_delivery_timeout * 1000,
		    &why);
		if (r <= 0) {
			if (r < 0)
				msg_warn("receive from qmgr: %s",
				    buf_cstr(&why));
			break;
		}
		r = remote_request(remote_dns, remote_tls, sock, &req, qfd);
		if (qfd >= 0 && close(qfd) < 0)
			msg_warn("close queue file: %m");
		if (r < 0)
			break;
	}
	remote_cache_close();
	ipc_msg_free(&req);
	buf_free(&why);
}

int
main(int argc, char **argv)
{
	return service_main(argc, argv, &(const struct service_def){
		.name = "remote",
		.model = SERVICE_SINGLE,	/* one request at a time */
		.user = &var_herald_user,
		.pre_drop = remote_pre_drop,
		.init = remote_init,
		.serve = remote_serve,
	});
}
