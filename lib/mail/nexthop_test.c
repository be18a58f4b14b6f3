/*
 * nexthop_test - next hop notation: a table of good and bad texts, each
 * good one printed back in its canonical form.
 */
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "base/test.h"
#include "mail/nexthop.h"

static const struct {
	const char *in;
	const char *want;	/* canonical text; NULL: must fail */
	const char *why;	/* for failures: substring of the reason */
} cases_tab[] = {
	{"[relay.example.org]:587", "[relay.example.org]:587", NULL},
	{"[Relay.Example.ORG]", "[relay.example.org]", NULL},
	{"[127.0.0.1]:2525", "[127.0.0.1]:2525", NULL},
	{"[::1]:25", "[::1]:25", NULL},
	{"mx.example.org", "mx.example.org", NULL},
	{"mx.example.org:26", "mx.example.org:26", NULL},
	{"", NULL, "empty"},
	{"[relay.example.org", NULL, "closing"},
	{"[relay]x", NULL, "only"},
	{"[]:25", NULL, "not a host"},
	{"[relay]:", NULL, "bad port"},
	{"[relay]:0", NULL, "bad port"},
	{"[relay]:65536", NULL, "bad port"},
	{"[relay]:25x", NULL, "bad port"},
	{"relay:-1", NULL, "bad port"},
	{"a::1", NULL, "bad port"},
	{"re lay", NULL, "not a host"},
	{"relay..example", NULL, "not a host"},
	{".relay", NULL, "not a host"},
	{"user@relay", NULL, "not a host"},
	{"relay/x", NULL, "not a host"},
	{NULL, NULL, NULL},
};

/* test_table - every case, and its canonical text parses to itself */
static void
test_table(void)
{
	for (size_t i = 0; cases_tab[i].in != NULL; i++) {
		struct buf why = BUF_INIT;
		struct nexthop nh, again;
		char text[NEXTHOP_TEXT_MAX];
		int r = nexthop_parse(cases_tab[i].in, &nh, &why);

		if (cases_tab[i].want == NULL) {
			T_EQ_INT(r, -1);
			T_ASSERT(strstr(buf_cstr(&why), cases_tab[i].why) !=
			    NULL);
		} else {
			T_EQ_INT(r, 0);
			nexthop_text(&nh, text, sizeof(text));
			T_EQ_STR(text, cases_tab[i].want);
			T_EQ_INT(nexthop_parse(text, &again, &why), 0);
			T_EQ_INT(again.mx, nh.mx);
			T_EQ_INT(again.port, nh.port);
		}
		buf_free(&why);
	}
}

/* test_fields - brackets turn the MX lookup off */
static void
test_fields(void)
{
	struct buf why = BUF_INIT;
	struct nexthop nh;

	T_EQ_INT(nexthop_parse("[smart.example]:587", &nh, &why), 0);
	T_EQ_STR(nh.host, "smart.example");
	T_EQ_INT(nh.port, 587);
	T_EQ_INT(nh.mx, 0);
	T_EQ_INT(nexthop_parse("smart.example", &nh, &why), 0);
	T_EQ_INT(nh.port, 0);
	T_EQ_INT(nh.mx, 1);
	buf_free(&why);
}

static const struct test_case cases[] = {
	{"table", test_table},
	{"fields", test_fields},
	{0},
};

int
main(void)
{
	return test_run(cases);
}
