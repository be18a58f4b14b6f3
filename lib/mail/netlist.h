/*
 * netlist - lists of IP networks, as the mynetworks setting names them:
 * "192.0.2.0/24, 2001:db8::/32, 127.0.0.1" (an address without "/len"
 * is one host). smtpd lets a client whose address is in mynetworks relay
 * without AUTH.
 *
 * The list is the comma/blank separated text of a CFG_LIST setting and
 * is parsed at each match (lists are short; nothing to keep). An IPv4
 * client seen as an IPv4-mapped IPv6 address (::ffff:192.0.2.1) matches
 * IPv4 networks. Host bits set under the prefix are refused by
 * netlist_check, so "10.0.0.1/8" is a clear error, not a surprise.
 */
#ifndef MAIL_NETLIST_H
#define MAIL_NETLIST_H

#include <stdbool.h>

struct buf;

/* netlist_check - 0 if every item of list is an address or network,
 * else -1 with the bad item in why */
int netlist_check(const char *list, struct buf *why);
/* netlist_match - is addr (IP text) inside one of list's networks?
 * Text that is no address (a UNIX socket peer) matches nothing. */
bool netlist_match(const char *list, const char *addr);

#endif
