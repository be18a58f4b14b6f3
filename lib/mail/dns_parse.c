/*
 * dns_parse - DNS wire answers (RFC 1035 4.1) to typed records.
 *
 * The bytes come from libunbound, which got them from the network: every
 * count, length and compression pointer is checked against the message.
 * A compression pointer must point before the label that holds it, so a
 * name cannot loop, and a name is at most 255 bytes on the wire. Names
 * come out in lowercase presentation form without the final dot; bytes
 * other than letters, digits, '-', '_' and '*' are written \DDD, so a
 * name never carries a control character or a dot that was not a label
 * boundary.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "base/buf.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/dns.h"

#define DNS_HEADER_LEN 12
#define DNS_TEXT_MAX (4 * DNS_NAME_MAX + 1)	/* names with escapes */
#define DNS_PARSE_RR_MAX 1024	/* answer records looked at */
#define DNS_PTR_HOPS_MAX 128	/* compression pointers in one name */

/* one answer record, before its data is parsed */
struct dns_raw {
	char owner[DNS_TEXT_MAX + 1];
	uint16_t type;
	uint32_t ttl;
	size_t rdata;		/* offset of the data */
	size_t rdlen;
};

/* dns_result_free - see dns.h */
void
dns_result_free(struct dns_result *res)
{
	for (size_t i = 0; i < res->nrr; i++) {
		free(res->rr[i].host);
		free(res->rr[i].data);
	}
	free(res->rr);
	free(res->canon);
	free(res->why);
	*res = (struct dns_result)DNS_RESULT_INIT;
}

/* dns_get16 - big-endian 16 bits at p */
static uint16_t
dns_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* dns_get32 - big-endian 32 bits at p */
static uint32_t
dns_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/* dns_label_out - append one label in presentation form */
static int
dns_label_out(const uint8_t *p, size_t n, char *out, size_t *olen)
{
	for (size_t i = 0; i < n; i++) {
		unsigned c = p[i];

		if (c >= 'A' && c <= 'Z')
			c += 'a' - 'A';
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '*') {
			if (*olen + 1 > DNS_TEXT_MAX)
				return -1;
			out[(*olen)++] = (char)c;
		} else {
			if (*olen + 4 > DNS_TEXT_MAX)
				return -1;
			out[(*olen)++] = '\\';
			out[(*olen)++] = (char)('0' + c / 100);
			out[(*olen)++] = (char)('0' + c / 10 % 10);
			out[(*olen)++] = (char)('0' + c % 10);
		}
	}
	return 0;
}

/*
 * dns_name_read - the name at *off into out (DNS_TEXT_MAX + 1 bytes);
 * *off moves past it (past the first pointer, if any). -1 if malformed.
 */
static int
dns_name_read(const uint8_t *pkt, size_t len, size_t *off, char *out)
{
	size_t pos = *off, olen = 0, wire = 0, end = 0;
	int hops = 0;

	for (;;) {
		unsigned n;

		if (pos >= len)
			return -1;
		n = pkt[pos];
		if ((n & 0xC0) == 0xC0) {
			size_t to;

			if (pos + 1 >= len || ++hops > DNS_PTR_HOPS_MAX)
				return -1;
			to = (size_t)(n & 0x3F) << 8 | pkt[pos + 1];
			/* strictly backwards: no loops */
			if (to >= pos)
				return -1;
			if (end == 0)
				end = pos + 2;
			pos = to;
			continue;
		}
		if ((n & 0xC0) != 0)
			return -1;	/* 0x40, 0x80: obsolete/unknown */
		wire += n + 1;
		if (wire > DNS_NAME_MAX)
			return -1;
		if (n == 0) {
			if (end == 0)
				end = pos + 1;
			break;
		}
		if (pos + 1 + n > len)
			return -1;
		if (olen > 0) {
			if (olen + 1 > DNS_TEXT_MAX)
				return -1;
			out[olen++] = '.';
		}
		if (dns_label_out(pkt + pos + 1, n, out, &olen) < 0)
			return -1;
		pos += 1 + n;
	}
	out[olen] = '\0';
	*off = end;
	return 0;
}

/* dns_name_norm - a caller's name: lowercase, no final dot */
static void
dns_name_norm(const char *name, char *out)
{
	size_t n = str_lcpy(out, name, DNS_TEXT_MAX + 1);

	if (n > DNS_TEXT_MAX)
		n = DNS_TEXT_MAX;
	if (n > 0 && out[n - 1] == '.')
		out[n - 1] = '\0';
	str_lower(out);
}

/* dns_parse_fail - set the reason of a malformed answer */
static int
dns_parse_fail(struct dns_result *res, const char *what)
{
	struct buf b = BUF_INIT;

	buf_printf(&b, "malformed DNS answer: %s", what);
	x_free(&res->why);
	res->why = buf_steal(&b);
	res->status = DNS_TEMPFAIL;
	return -1;
}

/* dns_rdata - parse one record's data into rr; -1 if malformed */
static int
dns_rdata(const uint8_t *pkt, size_t len, const struct dns_raw *raw,
    struct dns_rr *rr)
{
	const uint8_t *p = pkt + raw->rdata;
	size_t n = raw->rdlen, off;
	char name[DNS_TEXT_MAX + 1];
	struct buf txt = BUF_INIT;

	memset(rr, 0, sizeof(*rr));
	rr->type = raw->type;
	rr->ttl = raw->ttl;
	switch (raw->type) {
	case DNS_T_A:
	case DNS_T_AAAA:
		if (n != (raw->type == DNS_T_A ? 4u : 16u))
			return -1;
		rr->family = raw->type == DNS_T_A ? AF_INET : AF_INET6;
		memcpy(rr->addr, p, n);
		return 0;
	case DNS_T_MX:
	case DNS_T_PTR:
	case DNS_T_CNAME:
		off = raw->rdata;
		if (raw->type == DNS_T_MX) {
			if (n < 3)
				return -1;
			rr->pref = dns_get16(p);
			off += 2;
		}
		/* a name may point anywhere before, but ends in the data */
		if (dns_name_read(pkt, raw->rdata + n, &off, name) < 0 ||
		    off != raw->rdata + n)
			return -1;
		rr->host = xstrdup(name);
		return 0;
	case DNS_T_TXT:
		if (n == 0)
			return -1;
		for (size_t i = 0; i < n;) {
			size_t sl = p[i];

			if (i + 1 + sl > n) {
				buf_free(&txt);
				return -1;
			}
			buf_append(&txt, p + i + 1, sl);
			i += 1 + sl;
		}
		rr->len = txt.len;
		rr->data = (uint8_t *)buf_steal(&txt);
		return 0;
	case DNS_T_TLSA:
		if (n < 3)
			return -1;
		rr->usage = p[0];
		rr->selector = p[1];
		rr->mtype = p[2];
		rr->len = n - 3;
		rr->data = xmalloc(rr->len + 1);
		memcpy(rr->data, p + 3, rr->len);
		return 0;
	default:
		return -1;
	}
	(void)len;
}

/* dns_mx_sort - stable sort by preference (insertion: n is small) */
static void
dns_mx_sort(struct dns_rr *rr, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		struct dns_rr t = rr[i];
		size_t j = i;

		while (j > 0 && rr[j - 1].pref > t.pref) {
			rr[j] = rr[j - 1];
			j--;
		}
		rr[j] = t;
	}
}

/* dns_parse_answer - see dns.h; qname NULL: the question's name */
int
dns_parse_answer(const uint8_t *pkt, size_t len, const char *qname,
    uint16_t qtype, struct dns_result *res)
{
	unsigned qd, an;
	size_t off = DNS_HEADER_LEN, nraw = 0;
	struct dns_raw *raw;
	char cur[DNS_TEXT_MAX + 1], qn[DNS_TEXT_MAX + 1];
	int rc = 0;

	if (len < DNS_HEADER_LEN)
		return dns_parse_fail(res, "shorter than a header");
	if ((pkt[2] & 0x80) == 0)
		return dns_parse_fail(res, "not a response");
	qd = dns_get16(pkt + 4);
	an = dns_get16(pkt + 6);
	if (qd != 1)
		return dns_parse_fail(res, "not one question");
	if (dns_name_read(pkt, len, &off, qn) < 0 || off + 4 > len)
		return dns_parse_fail(res, "bad question");
	off += 4;
	if (qname != NULL)
		dns_name_norm(qname, cur);
	else
		memcpy(cur, qn, sizeof(cur));

	/* the answer section, bounded by count and by the message */
	if (an > DNS_PARSE_RR_MAX)
		an = DNS_PARSE_RR_MAX;
	raw = xcalloc(an ? an : 1, sizeof(*raw));
	for (unsigned i = 0; i < an; i++) {
		struct dns_raw *r = &raw[nraw];
		uint16_t class;

		if (dns_name_read(pkt, len, &off, r->owner) < 0 ||
		    off + 10 > len) {
			rc = dns_parse_fail(res, "bad answer record");
			goto out;
		}
		r->type = dns_get16(pkt + off);
		class = dns_get16(pkt + off + 2);
		r->ttl = dns_get32(pkt + off + 4);
		r->rdlen = dns_get16(pkt + off + 8);
		r->rdata = off + 10;
		if (r->rdata + r->rdlen > len) {
			rc = dns_parse_fail(res, "record data past the end");
			goto out;
		}
		off = r->rdata + r->rdlen;
		if (class != 1)
			continue;	/* class IN only */
		nraw++;
	}

	/* follow CNAMEs from the name asked for, a bounded number */
	for (int hop = 0; qtype != DNS_T_CNAME; hop++) {
		struct dns_rr link;
		size_t i;

		for (i = 0; i < nraw; i++)
			if (raw[i].type == DNS_T_CNAME &&
			    strcmp(raw[i].owner, cur) == 0)
				break;
		if (i == nraw)
			break;
		if (hop >= DNS_CNAME_MAX) {
			rc = dns_parse_fail(res, "CNAME chain too long");
			goto out;
		}
		if (dns_rdata(pkt, len, &raw[i], &link) < 0) {
			rc = dns_parse_fail(res, "bad CNAME");
			goto out;
		}
		str_lcpy(cur, link.host, sizeof(cur));
		free(link.host);
	}

	/* the records of the type asked for at the end of the chain */
	for (size_t i = 0; i < nraw; i++) {
		struct dns_rr rr;

		if (raw[i].type != qtype || strcmp(raw[i].owner, cur) != 0)
			continue;
		if (res->nrr >= DNS_RECORDS_MAX)
			break;
		if (dns_rdata(pkt, len, &raw[i], &rr) < 0) {
			rc = dns_parse_fail(res, "bad record data");
			goto out;
		}
		res->rr = xrealloc(res->rr, (res->nrr + 1) * sizeof(*res->rr));
		res->rr[res->nrr++] = rr;
	}
	if (qtype == DNS_T_MX) {
		dns_mx_sort(res->rr, res->nrr);
		res->null_mx = res->nrr == 1 && res->rr[0].pref == 0 &&
		    res->rr[0].host[0] == '\0';
	}
	x_free(&res->canon);
	res->canon = xstrdup(cur);
	res->status = res->nrr > 0 ? DNS_OK : DNS_NODATA;
out:
	free(raw);
	return rc;
}
