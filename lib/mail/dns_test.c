/*
 * dns_test - the DNS answer parser on fixed packets (sorting, null MX,
 * CNAME chains, TXT, TLSA, compression loops, every truncation), the
 * checks of the dns_* settings, reverse names, and the async API against
 * a small UDP server in this process (answers, timeouts, the in-flight
 * bound, cancel).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/evloop.h"
#include "base/test.h"
#include "mail/dns.h"

/* a packet being built */
struct pkt {
	uint8_t b[4096];
	size_t n;
	size_t rdlen_at;	/* where the open record's length goes */
};

static void
put8(struct pkt *p, unsigned v)
{
	p->b[p->n++] = (uint8_t)v;
}

static void
put16(struct pkt *p, unsigned v)
{
	put8(p, v >> 8);
	put8(p, v & 0xff);
}

static void
put32(struct pkt *p, uint32_t v)
{
	put16(p, v >> 16);
	put16(p, v & 0xffff);
}

/* putname - "a.b" as labels; "" the root; ptr >= 0: end in a pointer */
static void
putname(struct pkt *p, const char *name, int ptr)
{
	while (*name) {
		const char *dot = strchr(name, '.');
		size_t n = dot ? (size_t)(dot - name) : strlen(name);

		put8(p, n);
		memcpy(p->b + p->n, name, n);
		p->n += n;
		name += n + (dot != NULL);
	}
	if (ptr >= 0)
		put16(p, 0xC000 | (unsigned)ptr);
	else
		put8(p, 0);
}

/* start - header with an answers, question qname/qtype at offset 12 */
static void
start(struct pkt *p, const char *qname, unsigned qtype, unsigned an)
{
	memset(p, 0, sizeof(*p));
	put16(p, 0x1234);
	put16(p, 0x8180);	/* QR, RD, RA, NOERROR */
	put16(p, 1);
	put16(p, an);
	put16(p, 0);
	put16(p, 0);
	putname(p, qname, -1);
	put16(p, qtype);
	put16(p, 1);
}

/* rr - a record header; owner by pointer (>= 0) or name */
static void
rr(struct pkt *p, const char *owner, int ptr, unsigned type)
{
	putname(p, owner, ptr);
	put16(p, type);
	put16(p, 1);
	put32(p, 300);
	p->rdlen_at = p->n;
	put16(p, 0);
}

/* rr_end - fill in the open record's length */
static void
rr_end(struct pkt *p)
{
	size_t len = p->n - p->rdlen_at - 2;

	p->b[p->rdlen_at] = (uint8_t)(len >> 8);
	p->b[p->rdlen_at + 1] = (uint8_t)len;
}

static void
test_mx_sorted(void)
{
	struct dns_result res = DNS_RESULT_INIT;
	struct pkt p;

	start(&p, "example.org", DNS_T_MX, 3);
	rr(&p, "", 12, DNS_T_MX);
	put16(&p, 20);
	putname(&p, "mx2", 12);
	rr_end(&p);
	rr(&p, "", 12, DNS_T_MX);
	put16(&p, 10);
	putname(&p, "MX1", 12);		/* uppercase comes out lower */
	rr_end(&p);
	rr(&p, "other.org", -1, DNS_T_MX);	/* not ours: ignored */
	put16(&p, 5);
	putname(&p, "mx.other.org", -1);
	rr_end(&p);
	T_EQ_INT(dns_parse_answer(p.b, p.n, "Example.ORG.", DNS_T_MX, &res),
	    0);
	T_EQ_INT(res.status, DNS_OK);
	T_EQ_INT(res.nrr, 2);
	T_EQ_INT(res.rr[0].pref, 10);
	T_EQ_STR(res.rr[0].host, "mx1.example.org");
	T_EQ_INT(res.rr[1].pref, 20);
	T_EQ_STR(res.rr[1].host, "mx2.example.org");
	T_ASSERT(!res.null_mx);
	T_EQ_STR(res.canon, "example.org");
	dns_result_free(&res);
}

static void
test_null_mx(void)
{
	struct dns_result res = DNS_RESULT_INIT;
	struct buf b = BUF_INIT;
	struct pkt p;

	start(&p, "nomail.example", DNS_T_MX, 1);
	rr(&p, "", 12, DNS_T_MX);
	put16(&p, 0);
	put8(&p, 0);
	rr_end(&p);
	T_EQ_INT(dns_parse_answer(p.b, p.n, "nomail.example", DNS_T_MX,
	    &res), 0);
	T_EQ_INT(res.nrr, 1);
	T_ASSERT(res.null_mx);
	T_EQ_STR(res.rr[0].host, "");
	dns_rr_format(&res.rr[0], &b);
	T_EQ_STR(buf_cstr(&b), "0 .");
	buf_free(&b);
	dns_result_free(&res);
}

static void
test_cname_chain(void)
{
	struct dns_result res = DNS_RESULT_INIT;
	struct pkt p;

	start(&p, "a.example", DNS_T_A, 3);
	rr(&p, "c.example", -1, DNS_T_A);	/* out of order on purpose */
	put32(&p, 0xC0000201);
	rr_end(&p);
	rr(&p, "", 12, DNS_T_CNAME);
	putname(&p, "b.example", -1);
	rr_end(&p);
	rr(&p, "b.example", -1, DNS_T_CNAME);
	putname(&p, "c.example", -1);
	rr_end(&p);
	T_EQ_INT(dns_parse_answer(p.b, p.n, "a.example", DNS_T_A, &res), 0);
	T_EQ_INT(res.status, DNS_OK);
	T_EQ_STR(res.canon, "c.example");
	T_EQ_INT(res.nrr, 1);
	T_EQ_INT(res.rr[0].family, AF_INET);
	T_EQ_INT(res.rr[0].addr[3], 1);
	dns_result_free(&res);
}

static void
test_cname_loop(void)
{
	struct dns_result res = DNS_RESULT_INIT;
	struct pkt p;

	start(&p, "a.example", DNS_T_A, 2);
	rr(&p, "a.example", -1, DNS_T_CNAME);
	putname(&p, "b.example", -1);
	rr_end(&p);
	rr(&p, "b.example", -1, DNS_T_CNAME);
	putname(&p, "a.example", -1);
	rr_end(&p);
	T_EQ_INT(dns_parse_answer(p.b, p.n, "a.example", DNS_T_A, &res), -1);
	T_EQ_INT(res.status, DNS_TEMPFAIL);
	T_ASSERT(res.why != NULL && strstr(res.why, "CNAME") != NULL);
	dns_result_free(&res);
}

static void
test_nodata(void)
{
	struct dns_result res = DNS_RESULT_INIT;
	struct pkt p;

	start(&p, "example.org", DNS_T_AAAA, 0);
	T_EQ_INT(dns_parse_answer(p.b, p.n, "example.org", DNS_T_AAAA,
	    &res), 0);
	T_EQ_INT(res.status, DNS_NODATA);
	T_EQ_INT(res.nrr, 0);
	dns_result_free(&res);
}

static void
test_txt_tlsa(void)
{
	struct dns_result res = DNS_RESULT_INIT;
	struct buf b = BUF_INIT;
	struct pkt p;

	start(&p, "example.org", DNS_T_TXT, 1);
	rr(&p, "", 12, DNS_T_TXT);
	put8(&p, 3);
	memcpy(p.b + p.n, "v=s", 3);
	p.n += 3;
	put8(&p, 6);
	memcpy(p.b + p.n, "pf1 \"x", 6);
	p.n += 6;
	rr_end(&p);
	T_EQ_INT(dns_parse_answer(p.b, p.n, NULL, DNS_T_TXT, &res), 0);
	T_EQ_INT(res.nrr, 1);
	T_EQ_MEM(res.rr[0].data, res.rr[0].len, "v=spf1 \"x", 9);
	dns_rr_format(&res.rr[0], &b);
	T_EQ_STR(buf_cstr(&b), "\"v=spf1 \\\"x\"");
	dns_result_free(&res);

	start(&p, "_25._tcp.mx.example.org", DNS_T_TLSA, 1);
	rr(&p, "", 12, DNS_T_TLSA);
	put8(&p, 3);
	put8(&p, 1);
	put8(&p, 1);
	put16(&p, 0xabcd);
	rr_end(&p);
	T_EQ_INT(dns_parse_answer(p.b, p.n, "_25._tcp.mx.example.org",
	    DNS_T_TLSA, &res), 0);
	T_EQ_INT(res.nrr, 1);
	buf_reset(&b);
	dns_rr_format(&res.rr[0], &b);
	T_EQ_STR(buf_cstr(&b), "3 1 1 abcd");
	buf_free(&b);
	dns_result_free(&res);
}

static void
test_bad_names(void)
{
	struct dns_result res = DNS_RESULT_INIT;
	struct pkt p;
	size_t at;

	/* a pointer to itself */
	start(&p, "example.org", DNS_T_A, 1);
	at = p.n;
	put16(&p, 0xC000 | (unsigned)at);
	put16(&p, DNS_T_A);
	put16(&p, 1);
	put32(&p, 1);
	put16(&p, 4);
	put32(&p, 1);
	T_EQ_INT(dns_parse_answer(p.b, p.n, NULL, DNS_T_A, &res), -1);
	dns_result_free(&res);

	/* a pointer forwards (could loop with one back): the owner points
	 * into the record's own data, which would parse otherwise */
	start(&p, "example.org", DNS_T_MX, 1);
	at = p.n;
	put16(&p, 0xC000 | (unsigned)(at + 2 + 10 + 2));
	put16(&p, DNS_T_MX);
	put16(&p, 1);
	put32(&p, 1);
	put16(&p, 2 + 13);
	put16(&p, 10);
	putname(&p, "example.org", -1);
	T_EQ_INT(dns_parse_answer(p.b, p.n, NULL, DNS_T_MX, &res), -1);
	dns_result_free(&res);

	/* an MX name running past its record */
	start(&p, "example.org", DNS_T_MX, 1);
	rr(&p, "", 12, DNS_T_MX);
	put16(&p, 1);
	putname(&p, "mx", 12);
	p.b[p.rdlen_at + 1] = 3;	/* says 3, has 2 + 5 */
	T_EQ_INT(dns_parse_answer(p.b, p.n, NULL, DNS_T_MX, &res), -1);
	dns_result_free(&res);

	/* a name longer than 255 bytes */
	start(&p, "example.org", DNS_T_A, 1);
	for (int i = 0; i < 5; i++) {
		put8(&p, 63);
		memset(p.b + p.n, 'a', 63);
		p.n += 63;
	}
	put8(&p, 0);
	put16(&p, DNS_T_A);
	put16(&p, 1);
	put32(&p, 1);
	put16(&p, 4);
	put32(&p, 1);
	T_EQ_INT(dns_parse_answer(p.b, p.n, NULL, DNS_T_A, &res), -1);
	dns_result_free(&res);
}

/* every prefix of a good answer fails cleanly */
static void
test_truncated(void)
{
	struct dns_result res = DNS_RESULT_INIT;
	struct pkt p;

	start(&p, "example.org", DNS_T_MX, 2);
	rr(&p, "", 12, DNS_T_MX);
	put16(&p, 10);
	putname(&p, "mx1", 12);
	rr_end(&p);
	rr(&p, "", 12, DNS_T_MX);
	put16(&p, 20);
	putname(&p, "mx2", 12);
	rr_end(&p);
	for (size_t n = 0; n < p.n; n++) {
		uint8_t *copy = malloc(n + 1);

		T_ASSERT(copy != NULL);
		memcpy(copy, p.b, n);
		if (dns_parse_answer(copy, n, NULL, DNS_T_MX, &res) != -1) {
			free(copy);
			T_FAIL_("prefix of %zu bytes parsed", n);
		}
		free(copy);
		dns_result_free(&res);
	}
	T_EQ_INT(dns_parse_answer(p.b, p.n, NULL, DNS_T_MX, &res), 0);
	T_EQ_INT(res.nrr, 2);
	dns_result_free(&res);
}

static void
test_settings(void)
{
	struct buf why = BUF_INIT;

	T_EQ_INT(dns_check_forwarders("", &why), 0);
	T_EQ_INT(dns_check_forwarders("127.0.0.1, ::1@5353", &why), 0);
	T_EQ_INT(dns_check_forwarders("ns.example.org", &why), -1);
	T_ASSERT(strstr(buf_cstr(&why), "numeric") != NULL);
	buf_reset(&why);
	T_EQ_INT(dns_check_forwarders("127.0.0.1@0", &why), -1);
	T_EQ_INT(dns_check_forwarders("127.0.0.1@65536", &why), -1);
	T_EQ_INT(dns_check_stub_zones("test=127.0.0.1@5353, "
	    "2.0.192.in-addr.arpa.=::1", &why), 0);
	T_EQ_INT(dns_check_stub_zones("test", &why), -1);
	T_EQ_INT(dns_check_stub_zones("=127.0.0.1", &why), -1);
	T_EQ_INT(dns_check_stub_zones("a..b=127.0.0.1", &why), -1);
	T_EQ_INT(dns_check_stub_zones("a b=127.0.0.1", &why), -1);
	T_EQ_INT(dns_check_stub_zones("test=x", &why), -1);
	buf_free(&why);
}

static void
test_new_errors(void)
{
	struct dns_conf conf = {"127.0.0.1@1", "", "/nonexistent/root.key",
	    1000};
	struct buf why = BUF_INIT;
	struct dns *dns = NULL;

	T_EQ_INT(dns_new(&conf, &dns, &why), -1);
	T_ASSERT(strstr(buf_cstr(&why), "/nonexistent/root.key") != NULL);
	T_ASSERT(dns == NULL);
	buf_reset(&why);
	conf.trust_anchor_file = "";
	conf.forwarders = "bad";
	T_EQ_INT(dns_new(&conf, &dns, &why), -1);
	buf_free(&why);
}

static void
test_reverse_and_names(void)
{
	struct buf b = BUF_INIT;

	T_EQ_INT(dns_reverse_name("192.0.2.1", &b), 0);
	T_EQ_STR(buf_cstr(&b), "1.2.0.192.in-addr.arpa");
	buf_reset(&b);
	T_EQ_INT(dns_reverse_name("2001:db8::1", &b), 0);
	T_EQ_STR(buf_cstr(&b), "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
	    "0.0.8.b.d.0.1.0.0.2.ip6.arpa");
	T_EQ_INT(dns_reverse_name("mx.example.org", &b), -1);
	T_EQ_INT(dns_type_code("mx"), DNS_T_MX);
	T_EQ_INT(dns_type_code("SOA"), 0);
	T_EQ_STR(dns_type_name(DNS_T_TLSA), "TLSA");
	T_EQ_STR(dns_status_name(DNS_BOGUS), "bogus");
	buf_free(&b);
}

/*
 * The async API against a UDP server in this process: names starting
 * with "drop" get no answer, everything else one A record 192.0.2.7.
 */
struct async_state {
	struct evloop *loop;
	struct dns *dns;
	int srv;
	int done, ok, tempfail, pending;
};

/* srv_read - answer a query as the comment above says */
static void
srv_read(struct evloop *loop, int fd, unsigned events, void *ctx)
{
	struct sockaddr_storage from;
	socklen_t flen = sizeof(from);
	uint8_t q[512];
	ssize_t n = recvfrom(fd, q, sizeof(q), 0, (struct sockaddr *)&from,
	    &flen);
	struct pkt p;
	size_t qend = 12;

	if (n < 17)
		return;
	while (qend < (size_t)n && q[qend] != 0)
		qend += q[qend] + 1;
	qend += 5;
	if (qend > (size_t)n || memcmp(q + 13, "drop", 4) == 0)
		return;
	memset(&p, 0, sizeof(p));
	memcpy(p.b, q, qend);
	p.n = qend;
	p.b[2] = 0x81;
	p.b[3] = 0x80;
	p.b[6] = 0;
	p.b[7] = (q[qend - 3] == DNS_T_A) ? 1 : 0;
	p.b[10] = p.b[11] = 0;	/* drop the client's EDNS */
	if (p.b[7]) {
		rr(&p, "", 12, DNS_T_A);
		put32(&p, 0xC0000207);
		rr_end(&p);
	}
	if (sendto(fd, p.b, p.n, 0, (struct sockaddr *)&from, flen) < 0)
		fprintf(stderr, "sendto: %s\n", strerror(errno));
}

static void
async_done(struct dns_result *res, void *ctx)
{
	struct async_state *st = ctx;

	st->done++;
	if (res->status == DNS_OK && res->nrr == 1 && res->rr[0].addr[3] == 7)
		st->ok++;
	if (res->status == DNS_TEMPFAIL)
		st->tempfail++;
	if (--st->pending == 0)
		evloop_stop(st->loop);
}

static long long
async_guard(struct evloop *loop, void *ctx)
{
	evloop_stop(loop);
	return -1;
}

static void
test_async(void)
{
	struct async_state st = {0};
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t slen = sizeof(sin);
	char fwd[64];
	struct dns_conf conf = {fwd, "", "", 700};
	struct buf why = BUF_INIT;
	struct dns_query *q1 = NULL, *q2 = NULL, *qc = NULL;
	struct ev_timer *guard;
	long long t0;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	st.srv = socket(AF_INET, SOCK_DGRAM, 0);
	T_ASSERT(st.srv >= 0);
	T_ASSERT(bind(st.srv, (struct sockaddr *)&sin, sizeof(sin)) == 0);
	T_ASSERT(getsockname(st.srv, (struct sockaddr *)&sin, &slen) == 0);
	snprintf(fwd, sizeof(fwd), "127.0.0.1@%u", ntohs(sin.sin_port));
	st.loop = evloop_new();
	T_ASSERT(evloop_add_fd(st.loop, st.srv, EV_READ, srv_read, &st) == 0);
	T_EQ_INT(dns_new(&conf, &st.dns, &why), 0);
	T_EQ_INT(dns_attach(st.dns, st.loop, &why), 0);
	{
		struct dns_result r0 = DNS_RESULT_INIT;

		/* plain and async calls do not mix on one context */
		T_EXPECT_DEATH(dns_lookup(st.dns, "x.example", DNS_T_A, &r0));
	}

	T_EQ_INT(dns_lookup_async(st.dns, "a.example.org", DNS_T_A,
	    async_done, &st, &q1, &why), 0);
	T_EQ_INT(dns_lookup_async(st.dns, "drop.example.org", DNS_T_A,
	    async_done, &st, &q2, &why), 0);
	T_EQ_INT(dns_lookup_async(st.dns, "c.example.org", DNS_T_A,
	    async_done, &st, &qc, &why), 0);
	T_ASSERT(q1 != NULL && q2 != NULL && qc != NULL);
	dns_cancel(st.dns, &qc);	/* no callback for it */
	T_ASSERT(qc == NULL);
	T_EQ_INT(dns_inflight(st.dns), 2);
	st.pending = 2;
	guard = evloop_add_timer(st.loop, 10000, async_guard, NULL);
	t0 = evloop_clock();
	evloop_run(st.loop);
	evloop_cancel_timer(st.loop, &guard);
	T_EQ_INT(st.done, 2);
	T_EQ_INT(st.ok, 1);
	T_EQ_INT(st.tempfail, 1);	/* drop.: after the 700 ms timeout */
	T_ASSERT(evloop_clock() - t0 >= 600 && evloop_clock() - t0 < 5000);
	T_ASSERT(q1 == NULL && q2 == NULL);	/* handles cleared */
	T_EQ_INT(dns_inflight(st.dns), 0);

	/* the bound: DNS_INFLIGHT_MAX open, the next one refused */
	for (int i = 0; i < DNS_INFLIGHT_MAX; i++) {
		char name[64];

		snprintf(name, sizeof(name), "drop%d.example.org", i);
		T_EQ_INT(dns_lookup_async(st.dns, name, DNS_T_A, async_done,
		    &st, NULL, &why), 0);
	}
	T_EQ_INT(dns_lookup_async(st.dns, "one.more.example", DNS_T_A,
	    async_done, &st, NULL, &why), -1);
	T_ASSERT(strstr(buf_cstr(&why), "in flight") != NULL);
	/* a plain lookup after dns_free of a busy context */
	{
		struct dns_result res = DNS_RESULT_INIT;

		T_EQ_INT(dns_inflight(st.dns), DNS_INFLIGHT_MAX);
		dns_free(&st.dns);	/* cancels: no callbacks */
		T_EQ_INT(dns_new(&conf, &st.dns, &why), 0);
		t0 = evloop_clock();
		/* no loop runs the server here: a timeout, bounded */
		T_EQ_INT(dns_lookup(st.dns, "b.example.org", DNS_T_A, &res),
		    -1);
		T_EQ_INT(res.status, DNS_TEMPFAIL);
		T_ASSERT(strstr(res.why, "no answer within 700 ms") != NULL);
		T_ASSERT(evloop_clock() - t0 < 3000);
		dns_result_free(&res);
	}
	T_EQ_INT(st.done, 2);
	dns_free(&st.dns);
	evloop_del_fd(st.loop, st.srv);
	close(st.srv);
	evloop_free(&st.loop);
	buf_free(&why);
}

static const struct test_case cases[] = {
	{"MX sorted by preference", test_mx_sorted},
	{"null MX (RFC 7505)", test_null_mx},
	{"CNAME chain followed", test_cname_chain},
	{"CNAME loop bounded", test_cname_loop},
	{"nodata", test_nodata},
	{"TXT joined, TLSA", test_txt_tlsa},
	{"bad names: loops, overruns, length", test_bad_names},
	{"every truncation fails cleanly", test_truncated},
	{"settings checked", test_settings},
	{"dns_new errors", test_new_errors},
	{"reverse names, type names", test_reverse_and_names},
	{"async: answers, timeout, cancel, bound", test_async},
	{0},
};

int
main(void)
{
	return test_run(cases);
}
