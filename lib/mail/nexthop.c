/*
 * nexthop - parse and print a next hop: "[host]:port", "[host]",
 * "host:port" or "host" (see nexthop.h). Admin input (herald.conf, the
 * directory): bounded, and every character checked.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/str.h"
#include "mail/nexthop.h"

/* nexthop_host_ok - letters, digits, '-', '.' (and ':' when bracketed,
 * for IPv6), no empty label, no leading or trailing dot */
static bool
nexthop_host_ok(const char *h, size_t n, bool bracketed)
{
	if (n == 0 || n > DNS_NAME_MAX || h[0] == '.' || h[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)h[i];

		if (c == '.' && i > 0 && h[i - 1] == '.')
			return false;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    (bracketed && c == ':'))
			continue;
		return false;
	}
	return true;
}

/* nexthop_parse - check and split s */
int
nexthop_parse(const char *s, struct nexthop *nh, struct buf *why)
{
	const char *h = s, *end, *port = NULL;
	size_t n;

	memset(nh, 0, sizeof(*nh));
	if (*s == '\0') {
		buf_puts(why, "empty next hop");
		return -1;
	}
	if (*s == '[') {
		h = s + 1;
		if ((end = strchr(h, ']')) == NULL) {
			buf_printf(why, "%.80s: no closing ']'", s);
			return -1;
		}
		if (end[1] == ':')
			port = end + 2;
		else if (end[1] != '\0') {
			buf_printf(why, "%.80s: only \":port\" may follow "
			    "\"]\"", s);
			return -1;
		}
	} else {
		end = strchr(h, ':');
		if (end != NULL)
			port = end + 1;
		else
			end = h + strlen(h);
		nh->mx = true;
	}
	n = (size_t)(end - h);
	if (!nexthop_host_ok(h, n, !nh->mx)) {
		buf_printf(why, "%.80s: not a host name%s", s, nh->mx ? "" :
		    " or address");
		return -1;
	}
	memcpy(nh->host, h, n);
	nh->host[n] = '\0';
	str_lower(nh->host);
	if (port != NULL) {
		char *stop;
		long p;

		if (*port < '0' || *port > '9') {
			buf_printf(why, "%.80s: bad port", s);
			return -1;
		}
		p = strtol(port, &stop, 10);
		if (*stop != '\0' || p < 1 || p > 65535) {
			buf_printf(why, "%.80s: bad port (1 to 65535)", s);
			return -1;
		}
		nh->port = (int)p;
	}
	return 0;
}

/* nexthop_text - canonical text of nh */
void
nexthop_text(const struct nexthop *nh, char *out, size_t size)
{
	if (nh->port > 0)
		snprintf(out, size, nh->mx ? "%s:%d" : "[%s]:%d", nh->host,
		    nh->port);
	else
		snprintf(out, size, nh->mx ? "%s" : "[%s]", nh->host);
}
