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
 * recipient's fault). A next hop "host" or "host:port" goes by host's MX
 * records as a recipient domain does.
 *
 * DANE (RFC 7672 2.2), when the destination's level is dane: for a host
 * whose MX records (or their secure absence) and address records are
 * DNSSEC-secure, _25._tcp.<host> TLSA is looked up, at the secure CNAME
 * target of the host first when it has one. Secure and usable records
 * make DANE mandatory for that host; secure records none of which is
 * usable make TLS mandatory but unauthenticated (encrypt); a TLSA lookup
 * that fails or is bogus leaves the host out (its addresses are not
 * tried: a downgrade could hide there); no TLSA, or anything insecure
 * on the way: opportunistic TLS (may). The host of a bracketed next hop
 * was named by the admin, not found by an MX lookup, so it stands where
 * a secure MX record would (as Postfix does): its TLSA records count
 * when its address records are secure. A next hop or a recipient domain
 * that is an address has no name to look up TLSA for: may.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/dane.h"
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

/* remote_route_tls - a new host's TLS slot at level; its index */
static size_t
remote_route_tls(struct remote_route *rt, enum smtp_tls_level level)
{
	struct remote_tls *t;

	rt->tls = xreallocarray(rt->tls, rt->ntls + 1, sizeof(*rt->tls));
	t = &rt->tls[rt->ntls];
	memset(t, 0, sizeof(*t));
	t->level = level;
	t->tlsa = (struct dns_result)DNS_RESULT_INIT;
	return rt->ntls++;
}

/* remote_route_add - one address of the host with TLS slot tls */
static void
remote_route_add(struct remote_route *rt, const char *host, int family,
    const uint8_t *addr, size_t tls)
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
	a->tls = tls;
}

/* remote_route_host - the addresses of one host (its TLS slot tls);
 * the DNS status of the last lookup that failed (DNS_OK if none did);
 * *secure_r: every address answer was DNSSEC-secure; canon (of size
 * DNS_NAME_MAX + 1) the host's secure CNAME target, or "" */
static enum dns_status
remote_route_host(struct dns *dns, const char *host, bool want4,
    bool want6, struct remote_route *rt, size_t tls, bool *secure_r,
    char *canon, struct buf *why)
{
	static const uint16_t types[] = {DNS_T_AAAA, DNS_T_A};
	enum dns_status worst = DNS_OK;

	*secure_r = true;
	canon[0] = '\0';
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
			*secure_r = false;
		} else if (res.status == DNS_OK) {
			for (size_t i = 0; i < res.nrr; i++)
				if (res.rr[i].type == types[t])
					remote_route_add(rt, host,
					    res.rr[i].family, res.rr[i].addr,
					    tls);
			if (!res.secure)
				*secure_r = false;
			else if (canon[0] == '\0' && res.canon != NULL &&
			    str_casecmp(res.canon, host) != 0)
				str_lcpy(canon, res.canon, DNS_NAME_MAX + 1);
		} else {
			if (!res.secure)
				*secure_r = false;
			if (worst == DNS_OK)
				worst = res.status;
		}
		dns_result_free(&res);
	}
	return worst;
}

/* remote_route_dane - the TLS of a host whose MX and address records
 * are secure, by its TLSA records (RFC 7672 2.2): at the secure CNAME
 * target first, then at the host; -1 with why: leave the host out */
static int
remote_route_dane(struct dns *dns, const char *host, const char *canon,
    struct remote_tls *t, struct buf *why)
{
	const char *names[] = {canon, host};

	t->level = SMTP_TLS_MAY;
	for (size_t k = 0; k < 2; k++) {
		struct dns_result res = DNS_RESULT_INIT;
		char q[DNS_NAME_MAX + 1];
		int len;

		if (names[k] == NULL || names[k][0] == '\0')
			continue;
		len = snprintf(q, sizeof(q), "_25._tcp.%s", names[k]);
		if (len < 0 || (size_t)len >= sizeof(q))
			continue;	/* no such name can exist */
		if (dns_lookup(dns, q, DNS_T_TLSA, &res) < 0 ||
		    res.status == DNS_TEMPFAIL || res.status == DNS_BOGUS) {
			buf_reset(why);
			buf_printf(why, "DANE: cannot look up %s TLSA: %s", q,
			    res.why ? res.why : dns_status_name(res.status));
			dns_result_free(&res);
			return -1;
		}
		if (res.status == DNS_OK && !res.secure) {
			dns_result_free(&res);
			return 0;	/* insecure TLSA: may */
		}
		if (res.status == DNS_OK) {
			if (dane_count_usable(res.rr, res.nrr) > 0) {
				t->level = SMTP_TLS_DANE;
				str_lcpy(t->base, names[k], sizeof(t->base));
				t->tlsa = res;
				return 0;
			}
			/* RFC 7672 3.1.3: TLS, unauthenticated */
			t->level = SMTP_TLS_ENCRYPT;
			dns_result_free(&res);
			return 0;
		}
		dns_result_free(&res);
	}
	return 0;
}

/* remote_route_one - one host: its addresses, and its TLS at level
 * (dane: by its TLSA records when mx_secure); DNS_TEMPFAIL also when
 * the host was left out for DANE (*dane_r set then) */
static enum dns_status
remote_route_one(struct dns *dns, const char *host, bool want4, bool want6,
    enum smtp_tls_level level, bool mx_secure, struct remote_route *rt,
    bool *dane_r, struct buf *why)
{
	size_t before = rt->naddr;
	size_t tls = remote_route_tls(rt, level == SMTP_TLS_DANE ?
	    SMTP_TLS_MAY : level);
	char canon[DNS_NAME_MAX + 1];
	bool secure;
	enum dns_status st = remote_route_host(dns, host, want4, want6, rt,
	    tls, &secure, canon, why);

	if (level != SMTP_TLS_DANE || rt->naddr == before || !mx_secure ||
	    !secure)
		return st;
	if (remote_route_dane(dns, host, canon, &rt->tls[tls], why) < 0) {
		rt->naddr = before;
		*dane_r = true;
		return DNS_TEMPFAIL;
	}
	return st;
}

/* remote_route_literal - "[192.0.2.1]" or "[IPv6:2001:db8::1]"; false
 * if domain is no address literal */
static bool
remote_route_literal(const char *domain, bool want4, bool want6,
    enum smtp_tls_level level, struct remote_route *rt)
{
	char text[64];
	uint8_t addr[16];
	size_t len = strlen(domain);
	const char *p = domain + 1;

	/* no DNS, no TLSA: dane means may here (as Postfix) */
	if (level == SMTP_TLS_DANE)
		level = SMTP_TLS_MAY;
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
			remote_route_add(rt, domain, AF_INET6, addr,
			    remote_route_tls(rt, level));
	} else {
		memcpy(text, p, len - 2);
		text[len - 2] = '\0';
		if (inet_pton(AF_INET, text, addr) == 1 && want4)
			remote_route_add(rt, domain, AF_INET, addr,
			    remote_route_tls(rt, level));
	}
	if (rt->naddr == 0)
		outcome_set(&rt->fail, OUTCOME_BOUNCED, "5.1.2",
		    "cannot deliver to address literal %s (bad address, or "
		    "its family is not in inet_protocols)", domain);
	return true;
}

/* remote_route_direct - the host of a bracketed next hop itself, at
 * level (dane: by its TLSA records when its addresses are secure) */
static void
remote_route_direct(struct dns *dns, const char *host, bool want4,
    bool want6, enum smtp_tls_level level, struct remote_route *rt)
{
	struct buf why = BUF_INIT;
	uint8_t addr[16];
	bool dane = false;

	/* an address: no name, no TLSA; dane means may (as a literal) */
	if (inet_pton(AF_INET, host, addr) == 1) {
		if (want4)
			remote_route_add(rt, host, AF_INET, addr,
			    remote_route_tls(rt, level == SMTP_TLS_DANE ?
			    SMTP_TLS_MAY : level));
	} else if (inet_pton(AF_INET6, host, addr) == 1) {
		if (want6)
			remote_route_add(rt, host, AF_INET6, addr,
			    remote_route_tls(rt, level == SMTP_TLS_DANE ?
			    SMTP_TLS_MAY : level));
	} else {
		/* the admin named the host: it stands for a secure MX */
		(void)remote_route_one(dns, host, want4, want6, level, true,
		    rt, &dane, &why);
	}
	if (rt->naddr == 0)
		outcome_set(&rt->fail, OUTCOME_DEFERRED, dane ? "4.7.5" :
		    "4.4.3", "next hop %s: %s", host, why.len > 0 ?
		    buf_cstr(&why) :
		    "no address (of the families in inet_protocols)");
	buf_free(&why);
}

/* remote_route - MX, then addresses */
void
remote_route(struct dns *dns, const struct nexthop *nh, bool want4,
    bool want6, enum smtp_tls_level level, struct remote_route *rt)
{
	struct dns_result mx = DNS_RESULT_INIT;
	struct buf why = BUF_INIT;
	bool tempfail = false, self = false, dane = false;
	const char *domain = nh->host;

	memset(rt, 0, sizeof(*rt));
	outcome_init(&rt->fail);
	rt->port = nh->port > 0 ? nh->port : (int)var_smtp_port;
	if (!nh->mx) {
		remote_route_direct(dns, nh->host, want4, want6, level, rt);
		return;
	}
	if (remote_route_literal(domain, want4, want6, level, rt))
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
		/* no MX: the domain itself is the one host (implicit MX),
		 * secure when the MX's absence is (RFC 7672 2.2.1) */
		enum dns_status st = remote_route_one(dns, domain, want4,
		    want6, level, mx.secure, rt, &dane, &why);

		if (rt->naddr == 0 && st == DNS_TEMPFAIL)
			outcome_set(&rt->fail, OUTCOME_DEFERRED, dane ?
			    "4.7.5" : "4.4.3", "%s", buf_cstr(&why));
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
		dane = false;
		if (remote_route_one(dns, host, want4, want6, level,
		    mx.secure, rt, &dane, &why) == DNS_TEMPFAIL)
			tempfail = true;
	}
	if (rt->naddr > 0)
		goto out;
	if (tempfail)
		outcome_set(&rt->fail, OUTCOME_DEFERRED, dane ? "4.7.5" :
		    "4.4.3", "%s", buf_cstr(&why));
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
	for (size_t i = 0; i < rt->ntls; i++)
		dns_result_free(&rt->tls[i].tlsa);
	x_free(&rt->tls);
	rt->ntls = 0;
	outcome_free(&rt->fail);
}
