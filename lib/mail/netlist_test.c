/*
 * netlist_test - mynetworks lists: syntax checks and matching, IPv4,
 * IPv6, mapped addresses, prefix edges.
 */
#include "base/buf.h"
#include "base/test.h"
#include "mail/netlist.h"

static void
test_check(void)
{
	static const char *good[] = {"", "127.0.0.1", "10.0.0.0/8",
	    "192.0.2.0/24, 2001:db8::/32", "::1", "0.0.0.0/0", "::/0",
	    "198.51.100.128/25", NULL};
	static const char *bad[] = {"10.0.0.1/8", "host.example", "1.2.3.4/33",
	    "::1/129", "10.0.0.0/", "10.0.0.0/x", "1.2.3", "::ffff:1.2.3.4/96",
	    "10.0.0.0/8 junk", NULL};
	struct buf why = BUF_INIT;

	for (int i = 0; good[i] != NULL; i++) {
		buf_reset(&why);
		T_EQ_INT(netlist_check(good[i], &why), 0);
	}
	for (int i = 0; bad[i] != NULL; i++) {
		buf_reset(&why);
		T_EQ_INT(netlist_check(bad[i], &why), -1);
		T_ASSERT(why.len > 0);
	}
	buf_free(&why);
}

static void
test_match(void)
{
	const char *l = "192.0.2.0/24, 198.51.100.128/25, 2001:db8::/32, "
	    "127.0.0.7";

	T_ASSERT(netlist_match(l, "192.0.2.1"));
	T_ASSERT(netlist_match(l, "192.0.2.255"));
	T_ASSERT(!netlist_match(l, "192.0.3.0"));
	T_ASSERT(netlist_match(l, "198.51.100.128"));
	T_ASSERT(netlist_match(l, "198.51.100.255"));
	T_ASSERT(!netlist_match(l, "198.51.100.127"));
	T_ASSERT(netlist_match(l, "2001:db8::1"));
	T_ASSERT(netlist_match(l, "2001:db8:ffff::1"));
	T_ASSERT(!netlist_match(l, "2001:db9::1"));
	T_ASSERT(netlist_match(l, "127.0.0.7"));
	T_ASSERT(!netlist_match(l, "127.0.0.1"));
	T_ASSERT(netlist_match(l, "::ffff:192.0.2.9"));
	T_ASSERT(!netlist_match(l, "local"));
	T_ASSERT(!netlist_match(l, ""));
	T_ASSERT(!netlist_match("", "127.0.0.1"));
	T_ASSERT(netlist_match("0.0.0.0/0", "203.0.113.5"));
	T_ASSERT(!netlist_match("0.0.0.0/0", "2001:db8::5"));
}

static const struct test_case cases[] = {
	{"check", test_check},
	{"match", test_match},
	{0},
};

int
main(void)
{
	return test_run(cases);
}
