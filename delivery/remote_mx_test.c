/*
 * remote_mx_test - the order remote delivery tries mail exchangers in
 * (RFC 5321 5.1): by preference, and every order of equal-preference
 * hosts reachable through the shuffle.
 */
#include <string.h>

#include "base/test.h"
#include "remote.h"

static size_t pick;		/* what the fake random source returns */

/* fixed - a "random" source the test controls */
static size_t
fixed(size_t n)
{
	return pick % n;
}

static void
set(struct dns_rr *rr, unsigned pref, const char *host)
{
	memset(rr, 0, sizeof(*rr));
	rr->type = DNS_T_MX;
	rr->pref = pref;
	rr->host = (char *)host;
}

static void
test_preference_order(void)
{
	struct dns_rr rr[4];

	set(&rr[0], 30, "c");
	set(&rr[1], 10, "a");
	set(&rr[2], 20, "b");
	set(&rr[3], 5, "z");
	pick = 0;
	remote_mx_order(rr, 4, fixed);
	T_EQ_STR(rr[0].host, "z");
	T_EQ_STR(rr[1].host, "a");
	T_EQ_STR(rr[2].host, "b");
	T_EQ_STR(rr[3].host, "c");
}

static void
test_equal_shuffled(void)
{
	bool first_a = false, first_b = false;

	for (pick = 0; pick < 4; pick++) {
		struct dns_rr rr[3];

		set(&rr[0], 10, "a");
		set(&rr[1], 10, "b");
		set(&rr[2], 5, "best");
		remote_mx_order(rr, 3, fixed);
		T_EQ_STR(rr[0].host, "best");	/* never moves */
		T_ASSERT(rr[1].pref == 10 && rr[2].pref == 10);
		if (strcmp(rr[1].host, "a") == 0)
			first_a = true;
		else
			first_b = true;
	}
	/* either equal host may come first */
	T_ASSERT(first_a && first_b);
}

static const struct test_case cases[] = {
	{"preference order", test_preference_order},
	{"equal preferences in random order", test_equal_shuffled},
	{0},
};

int
main(void)
{
	return test_run(cases);
}
