/*
 * nexthop - where mail for another domain is sent instead of its MX, in
 * Postfix's notation: "[host]:port" or "[host]" (that host itself, no MX
 * lookup), "host:port" or "host" (the MX records of host). The same text
 * is the relayhost setting, a transport's value (heraldctl transport add)
 * and a key of the smtp_sasl_password_file.
 *
 * nexthop_parse checks and lowercases; host is a domain name (letters,
 * digits, '-', '.'), or inside brackets also an IPv4 or IPv6 address.
 * A port of 0 means smtp_port.
 */
#ifndef MAIL_NEXTHOP_H
#define MAIL_NEXTHOP_H

#include <stdbool.h>
#include <stddef.h>

#include "mail/dns.h"

struct buf;

#define NEXTHOP_TEXT_MAX (DNS_NAME_MAX + 10)	/* "[host]:65535" */

struct nexthop {
	char host[DNS_NAME_MAX + 1];	/* lowercased, without brackets */
	int port;			/* 1..65535, 0: smtp_port */
	bool mx;			/* look up host's MX records */
};

/* nexthop_parse - s into *nh; -1 with why ("[x]:99999: bad port") */
int nexthop_parse(const char *s, struct nexthop *nh, struct buf *why);
/* nexthop_text - the canonical text of nh ("[host]:port", "host") into
 * out of size (at least NEXTHOP_TEXT_MAX) */
void nexthop_text(const struct nexthop *nh, char *out, size_t size);

#endif
