/*
 * remote - the remote delivery agent's structures and the functions its
 * files share.
 *
 * remote_hop.c picks a domain's next hop (its transport, relayhost, or
 * its own MX) and the credentials for it; remote_mx.c turns a next hop
 * into the ordered list of addresses to try (RFC 5321 5.1, RFC 7505)
 * with lib/mail/dns.c; remote_request.c takes a request from qmgr, picks
 * the TLS level, tries those addresses with lib/mail/smtp_client.c and
 * answers per recipient; remote_cache.c keeps sessions open for the next
 * request to the same next hop; remote.c speaks the protocol with qmgr.
 */
#ifndef DELIVERY_REMOTE_H
#define DELIVERY_REMOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "mail/dns.h"
#include "mail/nexthop.h"
#include "mail/outcome.h"
#include "mail/smtp_client.h"

struct ipc_msg;
struct smtp_session;
struct ssl_ctx_st;

#define REMOTE_RCPT_MAX 1000	/* recipients in one request (qmgr's) */
#define REMOTE_HOSTS_MAX 10	/* MX hosts looked at in one attempt */
#define REMOTE_ADDRS_MAX 20	/* addresses tried in one attempt */
#define REMOTE_RELAY_MAX (DNS_NAME_MAX + 80)	/* "host[addr]:port" */
#define REMOTE_KEY_MAX (NEXTHOP_TEXT_MAX + 2 * DNS_NAME_MAX)	/* cache */

/* a request's next hop */
struct remote_hop {
	struct nexthop nh;		/* by MX: host is the domain */
	char name[NEXTHOP_TEXT_MAX];	/* its text, the password file key */
	const char *via;		/* "transport", "relayhost", NULL */
	char *user;			/* AUTH as; NULL: no credentials */
	char *pass;			/* wiped by remote_hop_free */
};

/* one address to try */
struct remote_addr {
	char host[DNS_NAME_MAX + 1];	/* MX host name, or the domain */
	int family;			/* AF_INET or AF_INET6 */
	uint8_t addr[16];
	size_t tls;			/* its host's TLS: route->tls[tls] */
};

/* the TLS one host gets: the destination's level, or with dane what
 * its TLSA records say (RFC 7672 2.2) */
struct remote_tls {
	enum smtp_tls_level level;
	char base[DNS_NAME_MAX + 1];	/* SMTP_TLS_DANE: TLSA base domain */
	struct dns_result tlsa;		/* SMTP_TLS_DANE: the records */
};

/* where a domain's mail goes, or why it cannot go anywhere */
struct remote_route {
	struct remote_addr *addr;	/* in the order to try */
	size_t naddr;
	int port;			/* of every address */
	struct remote_tls *tls;		/* per host with addresses */
	size_t ntls;
	struct outcome fail;		/* naddr == 0: defer or bounce */
};

/* remote_mx_order - sort MX records by preference and shuffle the hosts
 * of equal preference (RFC 5321 5.1), with rnd(n) in [0, n) */
void remote_mx_order(struct dns_rr *rr, size_t n, size_t (*rnd)(size_t));
/* remote_route - the addresses of the next hop: of nh->host's mail
 * exchangers (nh->mx), else of nh->host itself; families as
 * inet_protocols says (want4, want6); with the TLS each host gets at the
 * destination's level (dane: the hosts' TLSA records are looked up, for
 * MX hosts and for the host of a bracketed next hop; a host whose TLSA
 * lookup fails or is bogus is left out); rt->fail set when there are
 * none */
void remote_route(struct dns *dns, const struct nexthop *nh, bool want4,
    bool want6, enum smtp_tls_level level, struct remote_route *rt);
/* remote_route_free - release rt */
void remote_route_free(struct remote_route *rt);

/* remote_pass_fd - smtp_sasl_password_file opened before the privilege
 * drop, or -1 (remote_hop.c) */
extern int remote_pass_fd;
/* remote_hop_find - the next hop of domain (transport, the text qmgr
 * sent or NULL; else relayhost, else by MX) with its credentials; -1
 * with why: defer (a bad transport, an unusable password file) */
int remote_hop_find(const char *transport, const char *domain,
    struct remote_hop *hop, struct buf *why);
/* remote_hop_free - wipe and free hop's credentials */
void remote_hop_free(struct remote_hop *hop);

/* remote_tls_level - the TLS level for mail to domain: its policy
 * (heraldctl tls-policy: the word qmgr sent, NULL: none), else
 * smtp_tls_security_level; the one place that chooses it. A policy
 * word this agent does not know sets why (the caller defers) and gives
 * verify, so that even a caller that did not look would not downgrade */
enum smtp_tls_level remote_tls_level(const char *domain, const char *policy,
    struct buf *why);

/* remote_request - serve one request (req with the queue file qfd) and
 * send the reply on sock; -1 if it was malformed or the reply could not
 * be sent (drop the connection) */
int remote_request(struct dns *dns, struct ssl_ctx_st *tls, int sock,
    const struct ipc_msg *req, int qfd);

/* The cache key says what a session is good for: the next hop, the TLS
 * level and the login (remote_request.c makes it), so mail for several
 * domains through one relay shares a session and a changed transport or
 * policy never reuses one made under the old. */
/* remote_cache_take - the session cached for key, taken out of the
 * cache after a good RSET (conf: its deadlines), with its socket, relay
 * text (REMOTE_RELAY_MAX) and transactions so far; NULL: none (a cached
 * one that is gone or refused RSET is closed) */
struct smtp_session *remote_cache_take(const char *key,
    const struct smtp_client_conf *conf, int *fd, char *relay,
    long long *ntx);
/* remote_cache_put - keep s (on fd, to relay) for key after its ntx-th
 * transaction, or close both: the cache is off, the reuse count is
 * reached, or s is not usable */
void remote_cache_put(const char *key, const char *relay,
    struct smtp_session *s, int fd, long long ntx);
/* remote_cache_expire - close sessions idle past the time limit; the ms
 * until the next one expires, -1: none cached */
long long remote_cache_expire(void);
/* remote_cache_close - QUIT and close every cached session */
void remote_cache_close(void);

#endif
