/*
 * netlist - match client addresses against a list of IP networks
 * (mynetworks). See netlist.h.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/config.h"
#include "mail/netlist.h"

#define NETLIST_ITEM_MAX 64	/* "ffff:...:ffff/128" fits easily */

/* one parsed network: 4 or 16 address bytes and a prefix length */
struct netlist_net {
	int family;		/* AF_INET or AF_INET6 */
	unsigned char a[16];
	int bits;
};

/* netlist_addr - parse IP text; an IPv4-mapped IPv6 address becomes
 * IPv4. 0 or -1 */
static int
netlist_addr(const char *text, struct netlist_net *n)
{
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0,
	    0, 0xff, 0xff};

	memset(n, 0, sizeof(*n));
	if (inet_pton(AF_INET, text, n->a) == 1) {
		n->family = AF_INET;
		n->bits = 32;
		return 0;
	}
	if (inet_pton(AF_INET6, text, n->a) == 1) {
		n->family = AF_INET6;
		n->bits = 128;
		if (memcmp(n->a, mapped, sizeof(mapped)) == 0) {
			memmove(n->a, n->a + 12, 4);
			memset(n->a + 4, 0, 12);
			n->family = AF_INET;
			n->bits = 32;
		}
		return 0;
	}
	return -1;
}

/* netlist_net - parse "addr" or "addr/len" (host bits must be zero) */
static int
netlist_net(const char *item, struct netlist_net *n)
{
	char copy[NETLIST_ITEM_MAX];
	char *slash, *end;
	long bits;
	int max;

	if (strlen(item) >= sizeof(copy))
		return -1;
	memcpy(copy, item, strlen(item) + 1);
	if ((slash = strchr(copy, '/')) != NULL)
		*slash++ = '\0';
	/* a mapped address names one IPv4 host: no IPv6 prefix on it */
	if (netlist_addr(copy, n) < 0 ||
	    (slash != NULL && strchr(copy, ':') != NULL &&
	    n->family == AF_INET))
		return -1;
	max = n->family == AF_INET ? 32 : 128;
	if (slash == NULL)
		return 0;
	if (*slash < '0' || *slash > '9')
		return -1;
	bits = strtol(slash, &end, 10);
	if (*end != '\0' || bits < 0 || bits > max)
		return -1;
	n->bits = (int)bits;
	for (int i = n->bits; i < max; i++)
		if (n->a[i / 8] & (0x80 >> (i % 8)))
			return -1;
	return 0;
}

/* netlist_in - is address a inside network n? */
static bool
netlist_in(const struct netlist_net *n, const struct netlist_net *a)
{
	int full = n->bits / 8, rest = n->bits % 8;

	if (n->family != a->family)
		return false;
	if (memcmp(n->a, a->a, (size_t)full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((n->a[full] ^ a->a[full]) & (0xff00 >> rest) & 0xff) == 0;
}

/* netlist_check - every item an address or network */
int
netlist_check(const char *list, struct buf *why)
{
	const char *cursor = list;
	char item[NETLIST_ITEM_MAX];
	struct netlist_net n;

	while (cfg_list_next(&cursor, item, sizeof(item))) {
		if (netlist_net(item, &n) < 0) {
			buf_printf(why, "not an IP address or network "
			    "(address/length, host bits zero): \"%s\"", item);
			return -1;
		}
	}
	return 0;
}

/* netlist_match - addr inside one of list's networks */
bool
netlist_match(const char *list, const char *addr)
{
	const char *cursor = list;
	char item[NETLIST_ITEM_MAX];
	struct netlist_net n, a;

	if (netlist_addr(addr, &a) < 0)
		return false;
	while (cfg_list_next(&cursor, item, sizeof(item)))
		if (netlist_net(item, &n) == 0 && netlist_in(&n, &a))
			return true;
	return false;
}
