/*
 * auth_log_test - the login log lines: exact shapes, escaping of what a
 * client typed, and no way to plant a second "client=[...]" before the
 * real one.
 */
#include <string.h>

#include "base/buf.h"
#include "base/test.h"
#include "auth.h"

static void
test_shapes(void)
{
	struct buf b = BUF_INIT;

	auth_log_line(&b, AUTH_OK, "pop3", "192.0.2.7", "alice@example.test",
	    0, 0, "ignored");
	T_EQ_STR(buf_cstr(&b), "login: service=pop3 client=[192.0.2.7] "
	    "user=<alice@example.test>");
	buf_reset(&b);
	auth_log_line(&b, AUTH_FAIL, "pop3", "192.0.2.7", "alice@example.test",
	    3, 4000, "wrong password");
	T_EQ_STR(buf_cstr(&b), "login failed: service=pop3 client=[192.0.2.7] "
	    "user=<alice@example.test> failures=3 delay=4s: wrong password");
	buf_reset(&b);
	auth_log_line(&b, AUTH_FAIL, "smtp", "2001:db8::1", "bob", 1, 1500,
	    "login name without domain");
	T_EQ_STR(buf_cstr(&b), "login failed: service=smtp "
	    "client=[2001:db8::1] user=<bob> failures=1 delay=1.500s: login "
	    "name without domain");
	buf_reset(&b);
	auth_log_line(&b, AUTH_LOCKED, "imap", "192.0.2.7", "a@b", 10, 15000,
	    "client address locked out until 2026-11-23 23:10:00 UTC");
	T_EQ_STR(buf_cstr(&b), "login locked: service=imap "
	    "client=[192.0.2.7] user=<a@b>: client address locked out until "
	    "2026-11-23 23:10:00 UTC");
	buf_reset(&b);
	auth_log_line(&b, AUTH_TEMPFAIL, "imap", "::1", "a@b", 0, 0,
	    "directory: gone");
	T_EQ_STR(buf_cstr(&b), "login tempfail: service=imap client=[::1] "
	    "user=<a@b>: directory: gone");
	buf_free(&b);
}

static void
test_user_escaped(void)
{
	struct buf b = BUF_INIT;
	char big[300];
	const char *first;

	auth_log_line(&b, AUTH_FAIL, "pop3", "192.0.2.7",
	    "x\r\nherald/authd[1]: login failed: client=[6.6.6.6]", 1, 1000,
	    "unknown user");
	/* one line; the planted address is not in client=[...] form */
	T_ASSERT(strchr(buf_cstr(&b), '\n') == NULL);
	T_ASSERT(strchr(buf_cstr(&b), '\r') == NULL);
	T_ASSERT(strstr(buf_cstr(&b), "[6.6.6.6]") == NULL);
	first = strstr(buf_cstr(&b), "client=[");
	T_ASSERT(first != NULL);
	T_ASSERT(strncmp(first, "client=[192.0.2.7]", 18) == 0);
	T_ASSERT(strstr(first + 1, "client=[") == NULL);
	T_ASSERT(strstr(buf_cstr(&b), "x\\x0d\\x0aherald") != NULL);
	buf_reset(&b);
	/* ">" cannot end the user field early, non-ASCII is escaped */
	auth_log_line(&b, AUTH_OK, "pop3", "192.0.2.7", "a> b\xc3\xa9", 0, 0,
	    NULL);
	T_EQ_STR(buf_cstr(&b), "login: service=pop3 client=[192.0.2.7] "
	    "user=<a\\x3e b\\xc3\\xa9>");
	buf_reset(&b);
	memset(big, 'u', sizeof(big));
	big[sizeof(big) - 1] = '\0';
	auth_log_user(&b, big);
	T_EQ_INT(b.len, 100 + 3);
	T_ASSERT(strcmp(b.data + 100, "...") == 0);
	buf_free(&b);
}

static void
test_time(void)
{
	struct buf b = BUF_INIT;

	auth_log_time(&b, 0);
	T_EQ_STR(buf_cstr(&b), "1970-01-01 00:00:00 UTC");
	buf_reset(&b);
	auth_log_time(&b, 1700000000);
	T_EQ_STR(buf_cstr(&b), "2023-11-14 22:13:20 UTC");
	buf_free(&b);
}

static void
test_tokens(void)
{
	T_ASSERT(auth_log_token_ok("192.0.2.7", 64));
	T_ASSERT(auth_log_token_ok("2001:db8::1", 64));
	T_ASSERT(auth_log_token_ok("fe80::1%eth0", 64));
	T_ASSERT(auth_log_token_ok("pop3", 32));
	T_ASSERT(!auth_log_token_ok("", 64));
	T_ASSERT(!auth_log_token_ok(NULL, 64));
	T_ASSERT(!auth_log_token_ok("1.2.3.4]", 64));
	T_ASSERT(!auth_log_token_ok("1.2.3.4 x", 64));
	T_ASSERT(!auth_log_token_ok("pop3\n", 32));
	T_ASSERT(!auth_log_token_ok("abcdef", 5));
}

static const struct test_case cases[] = {
	{"line shapes", test_shapes},
	{"user text escaped and bounded", test_user_escaped},
	{"UTC time", test_time},
	{"service and client tokens", test_tokens},
	{0},
};

int
main(void)
{
	return test_run(cases);
}
