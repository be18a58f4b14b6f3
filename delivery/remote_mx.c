/*
 * remote_mx - from a recipient domain to the addresses remote delivery
 * tries, in order (RFC 5321 5.1): MX records by preference, hosts of
 * equal preference in random order, each host's addresses (AAAA then A,
 * as inet_protocols allows); no MX record: the domain's own addresses;
 * a null MX (RFC 7505): a permanent failure at once. A host that is this
 * host (myhostname) is skipped, so mail cannot loop back to us.
 *
 * A next hop in brackets (a transport or relayhost "[host]:port") is that
 * host alone: its address, or its AAAA and A records, no MX lookup; that
 * it has none defers (the admin named it: a typo or an outage, not the
 * recipient's fault).
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/dns.h"
#include "mail/params.h"
#include "remote.h"

/* remote_mx_cmp - by preference */
static int
remote_mx_cmp(const void *a, const void *b)
{
	const struct dns_rr *x = a, *y = b;

	return x->pref < y->pref ? -1 : x->pref > y->pref;
}

/* remote_mx_order - sort, then shuffle each run of equal preference */
void
remote_mx_order(struct dns_rr *rr, size_t n, size_t (*rnd)(size_t))
{
	size_t i = 0;

	qsort(rr, n, sizeof(*rr), remote_mx_cmp);
	while (i < n) {
		size_t j = i + 1;

		while (j < n && rr[j].pref == rr[i].pref)
			j++;
		/* Fisher-Yates over rr[i..j) */
		for (size_t k = j - 1; k > i; k--) {
			size_t r = i + rnd(k - i + 1);
			struct dns_rr t = rr[k];

			rr[k] = rr[r];
			rr[r] = t;
		}
		i = j;
	}
}

/* remote_mx_rnd - random in [0, n) for the shuffle */
static size_t
remote_mx_rnd(size_t n)
{
	uint32_t r;

	arc4random_buf(&r, sizeof(r));
	return n ? r % n : 0;
}

/* remote_route_add - one address */
static void
remote_route_add(struct remote_route *rt, const char *host, int family,
    const uint8_t *addr)
{
	struct remote_addr *a;

	if (rt->naddr >= REMOTE_ADDRS_MAX)
		return;
	rt->addr = xreallocarray(rt->addr, rt->naddr + 1, sizeof(*rt->addr));
	a = &rt->addr[rt->naddr++];
	memset(a, 0, sizeof(*a));
	str_lcpy(a->host, host, sizeof(a->host));
	a->family = family;
	memcpy(a->addr, addr, family == AF_INET ? 4 : 16);
}

/* remote_route_host - the addresses of one host; the DNS status of the
 * last lookup that failed (DNS_OK if none did) */
static enum dns_status
remote_route_host(struct dns *dns, const char *host, bool want4,
    bool want6, struct remote_route *rt, struct buf *why)
{
	static const uint16_t types[] = {DNS_T_AAAA, DNS_T_A};
	enum dns_status worst = DNS_OK;

	for (size_t t = 0; t < 2; t++) {
		struct dns_result res = DNS_RESULT_INIT;

		if ((types[t] == DNS_T_A && !want4) ||
		    (types[t] == DNS_T_AAAA && !want6))
			continue;
		if (dns_lookup(dns, host, types[t], &res) < 0 ||
		    res.status == DNS_TEMPFAIL || res.status == DNS_BOGUS) {
			buf_reset(why);
			buf_printf(why, "cannot look up %s %s: %s", host,
			    dns_type_name(types[t]), res.why ? res.why :
			    dns_status_name(res.status));
			worst = DNS_TEMPFAIL;
		} else if (res.status == DNS_OK) {
			for (size_t i = 0; i < res.nrr; i++)
				if (res.rr[i].type == types[t])
					remote_route_add(rt, host,
					    res.rr[i].family, res.rr[i].addr);
		} else if (worst == DNS_OK) {
			worst = res.status;
		}
		dns_result_free(&res);
	}
	return worst;
}

/* remote_route_literal - "[192.0.2.1]" or "[IPv6:2001:db8::1]"; false
 * if domain is no address literal */
static bool
remote_route_literal(const char *domain, bool want4, bool want6,
    struct remote_route *rt)
{
	char text[64];
	uint8_t addr[16];
	size_t len = strlen(domain);
	const char *p = domain + 1;

	if (len < 3 || domain[0] != '[' || domain[len - 1] != ']')
		return false;
	if (len - 2 >= sizeof(text)) {
		outcome_set(&rt->fail, OUTCOME_BOUNCED, "5.1.2",
		    "bad address literal %s", domain);
		return true;
	}
	if (str_ncasecmp(p, "IPv6:", 5) == 0) {
		memcpy(text, p + 5, len - 7);
		text[len - 7] = '\0';
		if (inet_pton(AF_INET6, text, addr) == 1 && want6)
			remote_route_add(rt, domain, AF_INET6, addr);
	} else {
		memcpy(text, p, len - 2);
		text[len - 2] = '\0';
		if (inet_pton(AF_INET, text, addr) == 1 && want4)
			remote_route_add(rt, domain, AF_INET, addr);
	}
	if (rt->naddr == 0)
		outcome_set(&rt->fail, OUTCOME_BOUNCED, "5.1.2",
		    "cannot deliver to address literal %s (bad address, or "
		    "its family is not in inet_protocols)", domain);
	return true;
}

/* remote_route_direct - the host of a bracketed next hop itself */
static void
remote_route_direct(struct dns *dns, const char *host, bool want4,
    bool want6, struct remote_route *rt)
{
	struct buf why = BUF_INIT;
	uint8_t addr[16];

	if (inet_pton(AF_INET, host, addr) == 1) {
		if (want4)
			remote_route_add(rt, host, AF_INET, addr);
	} else if (inet_pton(AF_INET6, host, addr) == 1) {
		if (want6)
			remote_route_add(rt, host, AF_INET6, addr);
	} else {
		(void)remote_route_host(dns, host, want4, want6, rt, &why);
	}
	if (rt->naddr == 0)
		outcome_set(&rt->fail, OUTCOME_DEFERRED, "4.4.3",
		    "next hop %s: %s", host, why.len > 0 ? buf_cstr(&why) :
		    "no address (of the families in inet_protocols)");
	buf_free(&why);
}

/* remote_route - MX, then addresses */
void
remote_route(struct dns *dns, const struct nexthop *nh, bool want4,
    bool want6, struct remote_route *rt)
{
	struct dns_result mx = DNS_RESULT_INIT;
	struct buf why = BUF_INIT;
	bool tempfail = false, self = false;
	const char *domain = nh->host;

	memset(rt, 0, sizeof(*rt));
	outcome_init(&rt->fail);
	rt->port = nh->port > 0 ? nh->port : (int)var_smtp_port;
	if (!nh->mx) {
		remote_route_direct(dns, nh->host, want4, want6, rt);
		return;
	}
	if (remote_route_literal(domain, want4, want6, rt))
		return;
	if (dns_lookup(dns, domain, DNS_T_MX, &mx) < 0 ||
	    mx.status == DNS_TEMPFAIL || mx.status == DNS_BOGUS) {
		outcome_set(&rt->fail, OUTCOME_DEFERRED, "4.4.3",
		    "cannot look up the MX records of %s: %s", domain,
		    mx.why ? mx.why : dns_status_name(mx.status));
		goto out;
	}
	if (mx.status == DNS_NXDOMAIN) {
		outcome_set(&rt->fail, OUTCOME_BOUNCED, "5.1.2",
		    "domain %s does not exist (DNS: NXDOMAIN)", domain);
		goto out;
	}
	if (mx.status == DNS_OK && mx.null_mx) {
		outcome_set(&rt->fail, OUTCOME_BOUNCED, "5.1.10",
		    "domain %s does not accept mail (null MX, RFC 7505)",
		    domain);
		goto out;
	}
	if (mx.status != DNS_OK || mx.nrr == 0) {
		/* no MX: the domain itself is the one host (implicit MX) */
		enum dns_status st = remote_route_host(dns, domain, want4,
		    want6, rt, &why);

		if (rt->naddr == 0 && st == DNS_TEMPFAIL)
			outcome_set(&rt->fail, OUTCOME_DEFERRED, "4.4.3",
			    "%s", buf_cstr(&why));
		else if (rt->naddr == 0)
			outcome_set(&rt->fail, OUTCOME_BOUNCED, "5.1.2",
			    "domain %s has no MX and no address record%s",
			    domain, want4 && want6 ? "" :
			    " of the families in inet_protocols");
		goto out;
	}
	remote_mx_order(mx.rr, mx.nrr, remote_mx_rnd);
	for (size_t i = 0; i < mx.nrr && i < REMOTE_HOSTS_MAX; i++) {
		const char *host = mx.rr[i].host;

		if (host == NULL || *host == '\0')
			continue;
		if (str_casecmp(host, var_myhostname) == 0) {
			/* RFC 5321 5.1: drop us and every worse host */
			self = true;
			break;
		}
		if (remote_route_host(dns, host, want4, want6, rt, &why) ==
		    DNS_TEMPFAIL)
			tempfail = true;
	}
	if (rt->naddr > 0)
		goto out;
	if (tempfail)
		outcome_set(&rt->fail, OUTCOME_DEFERRED, "4.4.3", "%s",
		    buf_cstr(&why));
	else if (self)
		outcome_set(&rt->fail, OUTCOME_BOUNCED, "5.4.6",
		    "mail for %s loops back to myself (%s is its best MX "
		    "host)", domain, var_myhostname);
	else
		outcome_set(&rt->fail, OUTCOME_BOUNCED, "5.4.4",
		    "no address found for the mail exchangers of %s", domain);
out:
	dns_result_free(&mx);
	buf_free(&why);
}

/* remote_route_free - release rt */
void
remote_route_free(struct remote_route *rt)
{
	x_free(&rt->addr);
	rt->naddr = 0;
	outcome_free(&rt->fail);
}
