/*
 * pop3d_cmd_test - the command parser: verb/argument split, the command
 * table (any case, allowed states), message numbers, and what counts as
 * another protocol's garbage.
 */
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "base/test.h"
#include "pop3d.h"

/* split - "verb|args" of line */
static const char *
split(const char *line)
{
	static char out[300];
	size_t vlen;
	const char *args;

	pop3d_cmd_split(line, strlen(line), &vlen, &args);
	snprintf(out, sizeof(out), "%.*s|%s", (int)vlen, line, args);
	return out;
}

static void
test_split(void)
{
	T_EQ_STR(split("STAT"), "STAT|");
	T_EQ_STR(split("RETR 1"), "RETR|1");
	T_EQ_STR(split("TOP  1 10"), "TOP|1 10");
	T_EQ_STR(split("PASS  secret with spaces "), "PASS|secret with spaces ");
	T_EQ_STR(split(""), "|");
	T_EQ_STR(split(" x"), "|x");
}

static void
test_find(void)
{
	const struct pop3d_cmd *c;
	static const char *const all[] = {"USER", "PASS", "STAT", "LIST",
	    "RETR", "DELE", "NOOP", "RSET", "QUIT", "TOP", "UIDL", "CAPA",
	    "STLS", "AUTH", NULL};

	for (const char *const *n = all; *n; n++) {
		c = pop3d_cmd_find(*n, strlen(*n));
		T_ASSERT(c != NULL);
		T_EQ_STR(c->name, *n);
	}
	c = pop3d_cmd_find("retr", 4);
	T_ASSERT(c != NULL && strcmp(c->name, "RETR") == 0);
	c = pop3d_cmd_find("uIdL", 4);
	T_ASSERT(c != NULL && strcmp(c->name, "UIDL") == 0);
	T_ASSERT(pop3d_cmd_find("APOP", 4) == NULL);	/* not offered */
	T_ASSERT(pop3d_cmd_find("RET", 3) == NULL);
	T_ASSERT(pop3d_cmd_find("RETRX", 5) == NULL);
	T_ASSERT(pop3d_cmd_find("", 0) == NULL);
	/* RETR with a length cut from a longer buffer */
	T_ASSERT(pop3d_cmd_find("RETR 1", 4) != NULL);
}

static void
test_states(void)
{
	/* RFC 1939: which commands are valid before and after login */
	static const char *const auth_only[] = {"USER", "PASS", "AUTH",
	    "STLS", NULL};
	static const char *const trans_only[] = {"STAT", "LIST", "RETR",
	    "DELE", "NOOP", "RSET", "TOP", "UIDL", NULL};
	static const char *const both[] = {"QUIT", "CAPA", NULL};
	const struct pop3d_cmd *c;

	for (const char *const *n = auth_only; *n; n++) {
		c = pop3d_cmd_find(*n, strlen(*n));
		T_ASSERT(c != NULL);
		T_EQ_INT(c->states, POP3D_S_AUTH);
	}
	for (const char *const *n = trans_only; *n; n++) {
		c = pop3d_cmd_find(*n, strlen(*n));
		T_ASSERT(c != NULL);
		T_EQ_INT(c->states, POP3D_S_TRANS);
	}
	for (const char *const *n = both; *n; n++) {
		c = pop3d_cmd_find(*n, strlen(*n));
		T_ASSERT(c != NULL);
		T_EQ_INT(c->states, POP3D_S_AUTH | POP3D_S_TRANS);
	}
	/* only the password carriers may be long */
	for (c = pop3d_cmd_table; c->name; c++)
		T_EQ_INT(c->long_line, strcmp(c->name, "PASS") == 0 ||
		    strcmp(c->name, "AUTH") == 0);
}

/* number - pop3d_cmd_number of s, or -1 */
static long long
number(const char *s, long long max)
{
	long long n;

	if (pop3d_cmd_number(s, strlen(s), max, &n) < 0)
		return -1;
	return n;
}

static void
test_number(void)
{
	T_EQ_INT(number("1", 10), 1);
	T_EQ_INT(number("10", 10), 10);
	T_EQ_INT(number("0", 10), 0);
	T_EQ_INT(number("007", 10), 7);
	T_EQ_INT(number("11", 10), -1);
	T_EQ_INT(number("", 10), -1);
	T_EQ_INT(number("-1", 10), -1);
	T_EQ_INT(number("+1", 10), -1);
	T_EQ_INT(number("1a", 10), -1);
	T_EQ_INT(number(" 1", 10), -1);
	T_EQ_INT(number("0x10", 100), -1);
	T_EQ_INT(number("999999999999999999", 1LL << 62), 999999999999999999);
	T_EQ_INT(number("9999999999999999999", 1LL << 62), -1);
}

static void
test_forbidden(void)
{
	T_ASSERT(pop3d_cmd_forbidden("GET", 3));
	T_ASSERT(pop3d_cmd_forbidden("post", 4));
	T_ASSERT(pop3d_cmd_forbidden("CONNECT", 7));
	T_ASSERT(pop3d_cmd_forbidden("Host:", 5));
	T_ASSERT(pop3d_cmd_forbidden("EHLO", 4));
	T_ASSERT(pop3d_cmd_forbidden("\x16\x03\x01", 3));	/* TLS hello */
	T_ASSERT(pop3d_cmd_forbidden("US\x80R", 4));
	T_ASSERT(pop3d_cmd_forbidden("A\tB", 3));
	T_ASSERT(!pop3d_cmd_forbidden("XYZZY", 5));
	T_ASSERT(!pop3d_cmd_forbidden("RETR", 4));
	T_ASSERT(!pop3d_cmd_forbidden("GETX", 4));
}

static const struct test_case cases[] = {
	{"verb and arguments", test_split},
	{"command table lookup", test_find},
	{"allowed states", test_states},
	{"message numbers", test_number},
	{"other protocols and junk", test_forbidden},
	{0},
};

int
main(void)
{
	return test_run(cases);
}
