/*
 * dns - the one DNS resolver of herald: libunbound, DNSSEC-validating,
 * typed answers (MX, A, AAAA, TLSA, TXT, PTR).
 *
 * A struct dns is made from settings (dns_new_params: dns_forwarders,
 * dns_stub_zones, dns_trust_anchor_file, dns_timeout) or an explicit
 * struct dns_conf. Two ways to ask:
 *  - dns_lookup: a plain call for one-request-at-a-time agents and
 *    heraldctl; it returns within the timeout, whatever the servers do;
 *  - dns_lookup_async: for event-loop services after dns_attach put
 *    libunbound's descriptor into the loop; the callback runs from the
 *    loop, exactly once unless the query is cancelled first. At most
 *    DNS_INFLIGHT_MAX queries are open per context; more fail at once.
 *
 * Every answer has a status (ok, nxdomain, nodata, tempfail for SERVFAIL,
 * refusals and timeouts, bogus when DNSSEC validation failed) and says
 * whether it was secure (validated from a trust anchor). The wire answer
 * is parsed by dns_parse.c, which bounds every length and pointer; a
 * malformed answer is a tempfail, never a crash.
 *
 * A context is used by one thread, either plainly or attached to a
 * loop, not both (dns_lookup panics on an attached context), and never
 * carried across fork(): libunbound's thread does not follow.
 *
 * The caller owns a struct dns_result: zeroed (DNS_RESULT_INIT) before
 * use, dns_result_free after; a lookup fills it completely.
 */
#ifndef MAIL_DNS_H
#define MAIL_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;
struct evloop;

/* record types herald asks for (RFC 1035, 3596, 6698) */
#define DNS_T_A 1
#define DNS_T_CNAME 5
#define DNS_T_PTR 12
#define DNS_T_MX 15
#define DNS_T_TXT 16
#define DNS_T_AAAA 28
#define DNS_T_TLSA 52

#define DNS_NAME_MAX 255	/* presentation form, without the last dot */
#define DNS_INFLIGHT_MAX 512	/* open async queries per context */
#define DNS_RECORDS_MAX 256	/* records kept of one answer */
#define DNS_CNAME_MAX 8		/* CNAME links followed in one answer */

enum dns_status {
	DNS_OK = 0,		/* records of the type asked for */
	DNS_NXDOMAIN,		/* the name does not exist */
	DNS_NODATA,		/* the name exists, no record of that type */
	DNS_TEMPFAIL,		/* SERVFAIL, refused, timeout, garbage */
	DNS_BOGUS,		/* DNSSEC validation failed */
};

/* one record of an answer; which members are set depends on type */
struct dns_rr {
	uint16_t type;
	uint32_t ttl;
	unsigned pref;		/* MX preference */
	char *host;		/* MX exchange, PTR target: no final dot;
				 * "" is the root (a null MX) */
	int family;		/* A: AF_INET, AAAA: AF_INET6 */
	uint8_t addr[16];	/* A (4 bytes), AAAA (16) */
	uint8_t usage, selector, mtype;	/* TLSA */
	uint8_t *data;		/* TLSA association data; TXT strings joined */
	size_t len;		/* of data */
};

struct dns_result {
	enum dns_status status;
	bool secure;		/* validated from a trust anchor */
	bool null_mx;		/* MX: the one record "0 ." (RFC 7505) */
	char *canon;		/* the name after CNAMEs, no final dot */
	struct dns_rr *rr;	/* records of the type asked for */
	size_t nrr;
	char *why;		/* tempfail or bogus: what went wrong */
};

#define DNS_RESULT_INIT {DNS_TEMPFAIL, false, false, NULL, NULL, 0, NULL}

/* dns_result_free - release what a lookup put in res, and zero it */
void dns_result_free(struct dns_result *res);

/* how a context is made */
struct dns_conf {
	const char *forwarders;		/* "addr[@port],...", "": resolv.conf */
	const char *stub_zones;		/* "zone=addr[@port],..." or "" */
	const char *trust_anchor_file;	/* DS/DNSKEY lines; "": no DNSSEC */
	long long timeout_ms;		/* per lookup */
};

struct dns;

/* dns_new - a resolver context; -1 with why (bad setting, unreadable
 * trust anchor file) */
int dns_new(const struct dns_conf *conf, struct dns **dns_r,
    struct buf *why);
/* dns_new_params - dns_new from the dns_* settings of herald.conf */
int dns_new_params(struct dns **dns_r, struct buf *why);
/* dns_free - cancel open queries (no callbacks) and free *dns */
void dns_free(struct dns **dns);

/* dns_check_forwarders - a dns_forwarders value; -1 with why */
int dns_check_forwarders(const char *value, struct buf *why);
/* dns_check_stub_zones - a dns_stub_zones value; -1 with why */
int dns_check_stub_zones(const char *value, struct buf *why);

/* dns_lookup - ask and wait (at most the timeout); fills res. 0 when
 * an answer came (whatever its status), -1 with res->why otherwise */
int dns_lookup(struct dns *dns, const char *name, uint16_t type,
    struct dns_result *res);

/* called once per async query with its result, which is freed when
 * the callback returns; to keep it, copy *res and set *res to
 * DNS_RESULT_INIT */
typedef void dns_done_fn(struct dns_result *res, void *ctx);
struct dns_query;

/* dns_attach - serve async queries from loop (once per context) */
int dns_attach(struct dns *dns, struct evloop *loop, struct buf *why);
/* dns_lookup_async - start a query; its handle in *q_r until done.
 * -1 with why (too many in flight, bad name): no callback then */
int dns_lookup_async(struct dns *dns, const char *name, uint16_t type,
    dns_done_fn *fn, void *ctx, struct dns_query **q_r, struct buf *why);
/* dns_cancel - cancel *q if non-NULL (no callback); sets *q = NULL */
void dns_cancel(struct dns *dns, struct dns_query **q);
/* dns_inflight - open async queries */
size_t dns_inflight(const struct dns *dns);

/* dns_parse_answer - the answer section of a wire message to qname's
 * records of qtype (following CNAMEs), into res: status ok or nodata,
 * canon, rr, null_mx; MX sorted by preference. -1 with res->why when
 * the message is malformed. rcode and security are the caller's. */
int dns_parse_answer(const uint8_t *pkt, size_t len, const char *qname,
    uint16_t qtype, struct dns_result *res);

/* dns_type_code - "MX" -> DNS_T_MX (case-insensitive), 0 if unknown */
uint16_t dns_type_code(const char *name);
/* dns_type_name - DNS_T_MX -> "MX" */
const char *dns_type_name(uint16_t type);
/* dns_status_name - "ok", "nxdomain", "nodata", "tempfail", "bogus" */
const char *dns_status_name(enum dns_status status);
/* dns_reverse_name - an IPv4/IPv6 address's in-addr.arpa/ip6.arpa name
 * into out; -1 if s is not an address */
int dns_reverse_name(const char *s, struct buf *out);
/* dns_rr_format - one record in presentation form ("10 mx.example.") */
void dns_rr_format(const struct dns_rr *rr, struct buf *out);

#endif
