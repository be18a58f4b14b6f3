/*
 * dns - resolver contexts on libunbound: settings, plain and async
 * lookups, and the mapping of unbound's results to dns_status.
 *
 * Each context runs libunbound in its own thread (ub_ctx_async 1): the
 * thread talks to the servers and validates, and hands finished answers
 * back through a pipe, ub_fd(), which an event loop watches; callbacks
 * then run in the loop's thread from ub_process(). A plain dns_lookup
 * uses the same path and waits on that pipe with poll() up to the
 * timeout, so a silent server costs the caller dns_timeout, never more.
 *
 * What the servers are:
 *  - dns_forwarders empty: the nameservers of /etc/resolv.conf;
 *    otherwise only the listed forwarders, with no fallback to the root
 *    servers (unbound's forward zone ".", forward-first off);
 *  - dns_stub_zones: zones asked directly of the given servers (tests,
 *    split DNS), also below names unbound would otherwise answer
 *    itself (test. of RFC 6761, the reverse zones of RFC 6303);
 *  - dns_trust_anchor_file: DS or DNSKEY records in zone-file form that
 *    validation starts from; the default is the root key of
 *    dns-root-data. Empty turns validation off: every answer insecure.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unbound.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/evloop.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/dns.h"
#include "mail/params.h"

#define DNS_ITEM_MAX 512	/* one list item of a setting */

struct dns {
	struct ub_ctx *ub;
	long long timeout_ms;
	struct evloop *loop;	/* dns_attach, or NULL */
	struct dns_query *head;	/* open async queries */
	size_t inflight;
};

struct dns_query {
	struct dns *dns;
	int id;			/* unbound's async id */
	char *name;
	uint16_t type;
	dns_done_fn *fn;	/* NULL: a plain lookup waits for it */
	void *ctx;
	struct dns_query **handle;	/* the caller's, cleared when done */
	struct ev_timer *timer;
	bool done;
	struct dns_result res;
	struct dns_query *prev, *next;
};

/* dns_check_addr - "addr[@port]" with a numeric address; -1 with why */
static int
dns_check_addr(const char *item, struct buf *why)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *at = strchr(item, '@');
	size_t n = at ? (size_t)(at - item) : strlen(item);
	unsigned char bin[16];
	long long port;

	if (n == 0 || n >= sizeof(host)) {
		buf_printf(why, "not an address[@port]: \"%s\"", item);
		return -1;
	}
	memcpy(host, item, n);
	host[n] = '\0';
	if (inet_pton(AF_INET, host, bin) != 1 &&
	    inet_pton(AF_INET6, host, bin) != 1) {
		buf_printf(why, "not a numeric IP address: \"%s\"", host);
		return -1;
	}
	if (at != NULL && str_to_ll(at + 1, 1, 65535, &port) < 0) {
		buf_printf(why, "bad port (1-65535): \"%s\"", at + 1);
		return -1;
	}
	return 0;
}

/* dns_next - the next item of a list setting; 0 at the end, -1 (why)
 * when an item is too long */
static int
dns_next(const char **cursor, char *item, struct buf *why)
{
	if (!cfg_list_next(cursor, item, DNS_ITEM_MAX))
		return 0;
	if (strlen(item) >= DNS_ITEM_MAX - 1) {
		buf_printf(why, "item too long: \"%.40s...\"", item);
		return -1;
	}
	return 1;
}

/* dns_check_forwarders - see dns.h */
int
dns_check_forwarders(const char *value, struct buf *why)
{
	char item[DNS_ITEM_MAX];
	int rc;

	while ((rc = dns_next(&value, item, why)) > 0)
		if (dns_check_addr(item, why) < 0)
			return -1;
	return rc;
}

/* dns_check_zone - a zone name: dot-separated labels of 1..63 bytes,
 * at most 253 in all, no spaces or controls; "." is the root */
static int
dns_check_zone(const char *zone, struct buf *why)
{
	size_t n = strlen(zone), label = 0;

	if (strcmp(zone, ".") == 0)
		return 0;
	if (n == 0 || n > 253 || zone[0] == '.')
		goto bad;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)zone[i];

		if (c <= ' ' || c >= 0x7f || c == '=' || c == '@' ||
		    c == '\\')
			goto bad;
		if (c == '.') {
			if (label == 0)
				goto bad;
			label = 0;
		} else if (++label > 63) {
			goto bad;
		}
	}
	return 0;
bad:
	buf_printf(why, "not a zone name: \"%s\"", zone);
	return -1;
}

/* dns_split_stub - "zone=addr[@port]" into zone (in place) and addr */
static int
dns_split_stub(char *item, char **addr_r, struct buf *why)
{
	char *eq = strchr(item, '=');

	if (eq == NULL) {
		buf_printf(why, "not zone=address[@port]: \"%s\"", item);
		return -1;
	}
	*eq = '\0';
	*addr_r = eq + 1;
	if (dns_check_zone(item, why) < 0 || dns_check_addr(eq + 1, why) < 0)
		return -1;
	return 0;
}

/* dns_check_stub_zones - see dns.h */
int
dns_check_stub_zones(const char *value, struct buf *why)
{
	char item[DNS_ITEM_MAX], *addr;
	int rc;

	while ((rc = dns_next(&value, item, why)) > 0)
		if (dns_split_stub(item, &addr, why) < 0)
			return -1;
	return rc;
}

/* dns_ub_fail - why an unbound call failed */
static int
dns_ub_fail(struct buf *why, const char *what, int err)
{
	buf_printf(why, "%s: %s", what, ub_strerror(err));
	return -1;
}

/* dns_configure - apply conf to a fresh unbound context */
static int
dns_configure(struct ub_ctx *ub, const struct dns_conf *conf,
    struct buf *why)
{
	char item[DNS_ITEM_MAX], *addr;
	const char *cursor;
	int err, rc, nfwd = 0;

	/* test servers and local resolvers (127.0.0.53) live on loopback */
	if ((err = ub_ctx_set_option(ub, "do-not-query-localhost:", "no")))
		return dns_ub_fail(why, "do-not-query-localhost", err);
	if ((err = ub_ctx_async(ub, 1)))
		return dns_ub_fail(why, "threads", err);

	if (dns_check_forwarders(conf->forwarders, why) < 0 ||
	    dns_check_stub_zones(conf->stub_zones, why) < 0)
		return -1;
	cursor = conf->forwarders;
	while ((rc = dns_next(&cursor, item, why)) > 0) {
		if ((err = ub_ctx_set_fwd(ub, item)))
			return dns_ub_fail(why, item, err);
		nfwd++;
	}
	if (rc < 0)
		return -1;
	if (nfwd == 0 && (err = ub_ctx_resolvconf(ub, NULL)))
		return dns_ub_fail(why, "/etc/resolv.conf", err);

	cursor = conf->stub_zones;
	while ((rc = dns_next(&cursor, item, why)) > 0) {
		struct buf lz = BUF_INIT;

		if (dns_split_stub(item, &addr, why) < 0)
			return -1;
		if ((err = ub_ctx_set_stub(ub, item, addr, 0)))
			return dns_ub_fail(why, item, err);
		/*
		 * unbound answers RFC 6761/6303 names (test., reverse
		 * zones of private addresses) itself: a local zone of the
		 * stub's own name, transparent, lets its questions through
		 */
		buf_printf(&lz, "%s transparent", item);
		err = ub_ctx_set_option(ub, "local-zone:", buf_cstr(&lz));
		buf_free(&lz);
		if (err)
			return dns_ub_fail(why, item, err);
	}
	if (rc < 0)
		return -1;

	if (*conf->trust_anchor_file) {
		/* unbound reads it at the first query: check it now */
		int fd = open(conf->trust_anchor_file, O_RDONLY | O_CLOEXEC);

		if (fd < 0) {
			buf_printf(why, "trust anchor file %s: %s",
			    conf->trust_anchor_file, strerror(errno));
			return -1;
		}
		(void)close(fd);
		if ((err = ub_ctx_add_ta_file(ub, conf->trust_anchor_file)))
			return dns_ub_fail(why, conf->trust_anchor_file, err);
	}
	return 0;
}

/* dns_new - see dns.h */
int
dns_new(const struct dns_conf *conf, struct dns **dns_r, struct buf *why)
{
	struct dns *dns;

	dns = xcalloc(1, sizeof(*dns));
	dns->timeout_ms = conf->timeout_ms > 0 ? conf->timeout_ms : 10000;
	if ((dns->ub = ub_ctx_create()) == NULL) {
		buf_printf(why, "cannot create a libunbound context");
		free(dns);
		return -1;
	}
	if (dns_configure(dns->ub, conf, why) < 0) {
		ub_ctx_delete(dns->ub);
		free(dns);
		return -1;
	}
	*dns_r = dns;
	return 0;
}

/* dns_new_params - see dns.h */
int
dns_new_params(struct dns **dns_r, struct buf *why)
{
	struct dns_conf conf = {
		.forwarders = var_dns_forwarders,
		.stub_zones = var_dns_stub_zones,
		.trust_anchor_file = var_dns_trust_anchor_file,
		.timeout_ms = var_dns_timeout * 1000,
	};

	return dns_new(&conf, dns_r, why);
}

/* dns_query_unlink - take q off the open list */
static void
dns_query_unlink(struct dns_query *q)
{
	struct dns *dns = q->dns;

	if (q->prev)
		q->prev->next = q->next;
	else
		dns->head = q->next;
	if (q->next)
		q->next->prev = q->prev;
	q->prev = q->next = NULL;
	dns->inflight--;
}

/* dns_query_free - release an async query */
static void
dns_query_free(struct dns_query *q)
{
	if (q->dns->loop != NULL)
		evloop_cancel_timer(q->dns->loop, &q->timer);
	if (q->handle != NULL)
		*q->handle = NULL;
	dns_result_free(&q->res);
	free(q->name);
	free(q);
}

/* dns_free - see dns.h */
void
dns_free(struct dns **dnsp)
{
	struct dns *dns = *dnsp;

	if (dns == NULL)
		return;
	while (dns->head != NULL) {
		struct dns_query *q = dns->head;

		(void)ub_cancel(dns->ub, q->id);
		dns_query_unlink(q);
		dns_query_free(q);
	}
	if (dns->loop != NULL)
		evloop_del_fd(dns->loop, ub_fd(dns->ub));
	ub_ctx_delete(dns->ub);
	free(dns);
	*dnsp = NULL;
}

static void dns_set_why(struct dns_result *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

/* dns_set_why - res->why = text */
static void
dns_set_why(struct dns_result *res, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	free(res->why);
	res->why = buf_steal(&b);
}

/* dns_rcode_name - a few rcodes by name */
static const char *
dns_rcode_name(int rcode)
{
	switch (rcode) {
	case 1:
		return "FORMERR";
	case 2:
		return "SERVFAIL";
	case 4:
		return "NOTIMP";
	case 5:
		return "REFUSED";
	default:
		return "error";
	}
}

/* dns_convert - unbound's answer to q->res */
static void
dns_convert(struct dns_query *q, int err, struct ub_result *ur)
{
	struct dns_result *res = &q->res;

	dns_result_free(res);
	if (err != 0 || ur == NULL) {
		res->status = DNS_TEMPFAIL;
		dns_set_why(res, "resolver: %s", ub_strerror(err));
		return;
	}
	if (ur->bogus) {
		res->status = DNS_BOGUS;
		dns_set_why(res, "DNSSEC validation failed: %s",
		    ur->why_bogus ? ur->why_bogus : "bogus");
		return;
	}
	res->secure = ur->secure != 0;
	if (ur->rcode == 3) {
		res->status = DNS_NXDOMAIN;
		return;
	}
	if (ur->rcode != 0) {
		res->status = DNS_TEMPFAIL;
		dns_set_why(res, "%s from the DNS servers (rcode %d)",
		    dns_rcode_name(ur->rcode), ur->rcode);
		return;
	}
	if (ur->answer_packet == NULL || ur->answer_len <= 0) {
		res->status = DNS_NODATA;
		return;
	}
	if (dns_parse_answer(ur->answer_packet, (size_t)ur->answer_len,
	    q->name, q->type, res) < 0)
		res->secure = false;
}

/* dns_query_finish - an async query has its result: off the list, the
 * caller's handle cleared (the callback may not cancel it), the
 * callback run, the query freed */
static void
dns_query_finish(struct dns_query *q)
{
	dns_query_unlink(q);
	if (q->handle != NULL)
		*q->handle = NULL;
	q->handle = NULL;
	q->fn(&q->res, q->ctx);
	dns_query_free(q);
}

/* dns_ub_done - libunbound's callback, from ub_process() */
static void
dns_ub_done(void *arg, int err, struct ub_result *ur)
{
	struct dns_query *q = arg;

	dns_convert(q, err, ur);
	if (ur != NULL)
		ub_resolve_free(ur);
	q->done = true;
	if (q->fn == NULL)
		return;		/* a plain lookup: dns_lookup takes over */
	dns_query_finish(q);
}

/* dns_name_check - a name worth asking: 1..253 printable bytes */
static int
dns_name_check(const char *name, struct buf *why)
{
	size_t n = strlen(name);

	if (n == 0 || n > DNS_NAME_MAX) {
		buf_printf(why, "bad DNS name length (%zu)", n);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)name[i] <= ' ' ||
		    (unsigned char)name[i] >= 0x7f) {
			buf_printf(why, "bad byte in a DNS name");
			return -1;
		}
	return 0;
}

/* dns_start - a query object, started in unbound; NULL with why */
static struct dns_query *
dns_start(struct dns *dns, const char *name, uint16_t type,
    dns_done_fn *fn, void *ctx, struct buf *why)
{
	struct dns_query *q;
	int err;

	if (dns_name_check(name, why) < 0)
		return NULL;
	if (dns->inflight >= DNS_INFLIGHT_MAX) {
		buf_printf(why, "too many DNS queries in flight (%d)",
		    DNS_INFLIGHT_MAX);
		return NULL;
	}
	q = xcalloc(1, sizeof(*q));
	q->dns = dns;
	q->name = xstrdup(name);
	q->type = type;
	q->fn = fn;
	q->ctx = ctx;
	q->res = (struct dns_result)DNS_RESULT_INIT;
	err = ub_resolve_async(dns->ub, name, type, 1, q, dns_ub_done,
	    &q->id);
	if (err != 0) {
		buf_printf(why, "resolver: %s", ub_strerror(err));
		free(q->name);
		free(q);
		return NULL;
	}
	q->next = dns->head;
	if (dns->head)
		dns->head->prev = q;
	dns->head = q;
	dns->inflight++;
	return q;
}

/* dns_lookup - see dns.h */
int
dns_lookup(struct dns *dns, const char *name, uint16_t type,
    struct dns_result *res)
{
	struct buf why = BUF_INIT;
	struct dns_query *q;
	long long deadline = evloop_clock() + dns->timeout_ms;
	bool answered;

	if (dns->loop != NULL)
		msg_panic("dns_lookup: the context is attached to a loop");
	dns_result_free(res);
	if ((q = dns_start(dns, name, type, NULL, NULL, &why)) == NULL) {
		res->status = DNS_TEMPFAIL;
		res->why = buf_steal(&why);
		return -1;
	}
	buf_free(&why);
	while (!q->done) {
		struct pollfd pfd = {.fd = ub_fd(dns->ub), .events = POLLIN};
		long long left = deadline - evloop_clock();
		int n;

		if (left <= 0)
			break;
		n = poll(&pfd, 1, (int)(left > 1000 ? 1000 : left));
		if (n < 0 && errno != EINTR) {
			msg_warn("dns: poll: %m");
			break;
		}
		if (n > 0 && ub_process(dns->ub) != 0) {
			msg_warn("dns: ub_process failed");
			break;
		}
	}
	dns_query_unlink(q);
	answered = q->done;
	if (!answered) {
		(void)ub_cancel(dns->ub, q->id);
		dns_result_free(&q->res);
		q->res.status = DNS_TEMPFAIL;
		dns_set_why(&q->res, "no answer within %lld ms",
		    dns->timeout_ms);
	}
	*res = q->res;
	q->res = (struct dns_result)DNS_RESULT_INIT;
	dns_query_free(q);
	return answered ? 0 : -1;
}

/* dns_readable - libunbound has answers: run their callbacks */
static void
dns_readable(struct evloop *loop, int fd, unsigned events, void *ctx)
{
	struct dns *dns = ctx;

	if (ub_process(dns->ub) != 0)
		msg_warn("dns: ub_process failed");
}

/* dns_attach - see dns.h */
int
dns_attach(struct dns *dns, struct evloop *loop, struct buf *why)
{
	if (dns->loop != NULL)
		msg_panic("dns_attach: already attached");
	if (evloop_add_fd(loop, ub_fd(dns->ub), EV_READ, dns_readable,
	    dns) < 0) {
		buf_printf(why, "dns: cannot watch the resolver: %s",
		    strerror(errno));
		return -1;
	}
	dns->loop = loop;
	return 0;
}

/* dns_expired - an async query ran out of time: tempfail */
static long long
dns_expired(struct evloop *loop, void *ctx)
{
	struct dns_query *q = ctx;

	q->timer = NULL;	/* freed by the loop when we return -1 */
	(void)ub_cancel(q->dns->ub, q->id);
	dns_result_free(&q->res);
	q->res.status = DNS_TEMPFAIL;
	dns_set_why(&q->res, "no answer within %lld ms", q->dns->timeout_ms);
	dns_query_finish(q);
	return -1;
}

/* dns_lookup_async - see dns.h */
int
dns_lookup_async(struct dns *dns, const char *name, uint16_t type,
    dns_done_fn *fn, void *ctx, struct dns_query **q_r, struct buf *why)
{
	struct dns_query *q;

	if (dns->loop == NULL || fn == NULL)
		msg_panic("dns_lookup_async: not attached or no callback");
	if ((q = dns_start(dns, name, type, fn, ctx, why)) == NULL)
		return -1;
	q->timer = evloop_add_timer(dns->loop, dns->timeout_ms, dns_expired,
	    q);
	q->handle = q_r;
	if (q_r != NULL)
		*q_r = q;
	return 0;
}

/* dns_cancel - see dns.h */
void
dns_cancel(struct dns *dns, struct dns_query **qp)
{
	struct dns_query *q = *qp;

	if (q == NULL)
		return;
	(void)ub_cancel(dns->ub, q->id);
	dns_query_unlink(q);
	dns_query_free(q);
	*qp = NULL;
}

/* dns_inflight - see dns.h */
size_t
dns_inflight(const struct dns *dns)
{
	return dns->inflight;
}
