/*
 * dns_text - DNS names and records as people read them: type and status
 * names, reverse names of addresses, records in presentation form (for
 * heraldctl dns lookup and log lines).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "base/buf.h"
#include "base/str.h"
#include "mail/dns.h"

static const struct {
	uint16_t code;
	const char *name;
} dns_types[] = {
	{DNS_T_A, "A"}, {DNS_T_AAAA, "AAAA"}, {DNS_T_MX, "MX"},
	{DNS_T_TXT, "TXT"}, {DNS_T_TLSA, "TLSA"}, {DNS_T_PTR, "PTR"},
	{DNS_T_CNAME, "CNAME"},
};

/* dns_type_code - see dns.h */
uint16_t
dns_type_code(const char *name)
{
	for (size_t i = 0; i < sizeof(dns_types) / sizeof(dns_types[0]); i++)
		if (str_casecmp(name, dns_types[i].name) == 0)
			return dns_types[i].code;
	return 0;
}

/* dns_type_name - see dns.h */
const char *
dns_type_name(uint16_t type)
{
	for (size_t i = 0; i < sizeof(dns_types) / sizeof(dns_types[0]); i++)
		if (dns_types[i].code == type)
			return dns_types[i].name;
	return "?";
}

/* dns_status_name - see dns.h */
const char *
dns_status_name(enum dns_status status)
{
	switch (status) {
	case DNS_OK:
		return "ok";
	case DNS_NXDOMAIN:
		return "nxdomain";
	case DNS_NODATA:
		return "nodata";
	case DNS_TEMPFAIL:
		return "tempfail";
	case DNS_BOGUS:
		return "bogus";
	}
	return "?";
}

/* dns_reverse_name - see dns.h */
int
dns_reverse_name(const char *s, struct buf *out)
{
	unsigned char a[16];

	if (inet_pton(AF_INET, s, a) == 1) {
		buf_printf(out, "%u.%u.%u.%u.in-addr.arpa", a[3], a[2], a[1],
		    a[0]);
		return 0;
	}
	if (inet_pton(AF_INET6, s, a) == 1) {
		for (int i = 15; i >= 0; i--)
			buf_printf(out, "%x.%x.", a[i] & 0xf, a[i] >> 4);
		buf_puts(out, "ip6.arpa");
		return 0;
	}
	return -1;
}

/* dns_rr_format - see dns.h */
void
dns_rr_format(const struct dns_rr *rr, struct buf *out)
{
	char addr[INET6_ADDRSTRLEN];

	switch (rr->type) {
	case DNS_T_A:
	case DNS_T_AAAA:
		if (inet_ntop(rr->family, rr->addr, addr, sizeof(addr)))
			buf_puts(out, addr);
		break;
	case DNS_T_MX:
		buf_printf(out, "%u %s.", rr->pref, rr->host);
		break;
	case DNS_T_PTR:
	case DNS_T_CNAME:
		buf_printf(out, "%s.", rr->host);
		break;
	case DNS_T_TLSA:
		buf_printf(out, "%u %u %u ", rr->usage, rr->selector,
		    rr->mtype);
		for (size_t i = 0; i < rr->len; i++)
			buf_printf(out, "%02x", rr->data[i]);
		if (rr->len == 0)
			buf_putc(out, '-');
		break;
	case DNS_T_TXT:
		/* quoted; quotes, backslashes and non-ASCII escaped */
		buf_putc(out, '"');
		for (size_t i = 0; i < rr->len; i++) {
			unsigned c = rr->data[i];

			if (c == '"' || c == '\\')
				buf_printf(out, "\\%c", c);
			else if (c < ' ' || c >= 0x7f)
				buf_printf(out, "\\%03u", c);
			else
				buf_putc(out, (int)c);
		}
		buf_putc(out, '"');
		break;
	default:
		buf_puts(out, "?");
	}
}
