/*
 * foreign_test - other protocols' first words are recognised, mail
 * commands are not.
 */
#include "base/test.h"
#include "mail/foreign.h"

static void
test_verbs(void)
{
	static const char *const extra[] = {"EHLO", NULL};

	T_ASSERT(foreign_verb("GET", 3, NULL));
	T_ASSERT(foreign_verb("connect", 7, NULL));
	T_ASSERT(foreign_verb("Host:", 5, NULL));
	T_ASSERT(!foreign_verb("GETX", 4, NULL));
	T_ASSERT(!foreign_verb("MAIL", 4, NULL));
	T_ASSERT(!foreign_verb("", 0, NULL));
	T_ASSERT(!foreign_verb("EHLO", 4, NULL));
	T_ASSERT(foreign_verb("ehlo", 4, extra));
	T_ASSERT(!foreign_verb("USER", 4, extra));
}

static const struct test_case cases[] = {
	{"first words of other protocols", test_verbs},
	{0},
};

int
main(void)
{
	return test_run(cases);
}
