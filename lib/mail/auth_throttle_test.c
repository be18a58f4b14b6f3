/*
 * auth_throttle_test - failure counts, delays, lockouts, the window,
 * what a success settles, persistence, pruning, a full map, and
 * processes racing for the same address. Time is passed in, so nothing
 * here waits for a window.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/test.h"
#include "mail/auth_throttle.h"

static char test_dir[] = "/tmp/auth_throttle_test.XXXXXX";
static int test_n;

static const struct auth_throttle_conf conf = {
	.window = 900, .delay = 1, .delay_max = 15, .client_lockout = 3,
	.account_lockout = 5, .account_window = 900, .pair_lockout = 1000,
	.lockout_time = 600, .known_time = 30 * 86400, .known_max = 3,
	.prefix_v4 = 24, .prefix_v6 = 64,
};

/* fresh - open a new, empty state folder */
static struct auth_throttle *
fresh_conf(char *path, size_t size, size_t map_size,
    const struct auth_throttle_conf *c)
{
	struct auth_throttle *t;
	struct buf why = BUF_INIT;

	snprintf(path, size, "%s/state%d", test_dir, test_n++);
	if (auth_throttle_open(path, c, map_size, &t, &why) < 0)
		msg_fatal("open %s: %s", path, buf_cstr(&why));
	buf_free(&why);
	return t;
}

/* fresh - the same with the common settings */
static struct auth_throttle *
fresh(char *path, size_t size, size_t map_size)
{
	return fresh_conf(path, size, map_size, &conf);
}

/* fail_at - one attempt that fails (begin, then end with AUTH_FAIL): 0
 * when it was counted, 1 when refused as locked, -1 on error */
static int
fail_at(struct auth_throttle *t, const char *client, const char *account,
    long long now, struct auth_throttle_state *st)
{
	struct buf why = BUF_INIT;
	int r = auth_throttle_begin(t, client, account, now, st, &why);

	if (r > 0 && auth_throttle_end(t, client, account, AUTH_FAIL, now,
	    st, &why) < 0)
		r = -1;
	if (r < 0)
		fprintf(stderr, "  failure(%s, %s): %s\n", client,
		    account ? account : "-", buf_cstr(&why));
	buf_free(&why);
	return r < 0 ? -1 : r == 0 ? 1 : 0;
}

/* settle_at - one attempt settled with result; the begin's answer: 1
 * counted and settled, 0 refused as locked */
static int
settle_at(struct auth_throttle *t, const char *client, const char *account,
    enum auth_result result, long long now)
{
	struct auth_throttle_state st;
	struct buf why = BUF_INIT;
	int r = auth_throttle_begin(t, client, account, now, &st, &why);

	if (r < 0)
		msg_fatal("begin: %s", buf_cstr(&why));
	if (r > 0 && auth_throttle_end(t, client, account, result, now,
	    &st, &why) < 0)
		msg_fatal("end: %s", buf_cstr(&why));
	buf_free(&why);
	return r;
}

/* check_at - the state now */
static void
check_at(struct auth_throttle *t, const char *client, const char *account,
    long long now, struct auth_throttle_state *st)
{
	struct buf why = BUF_INIT;

	if (auth_throttle_check(t, client, account, now, st, &why) < 0)
		msg_fatal("check: %s", buf_cstr(&why));
	buf_free(&why);
}

static void
test_delay(void)
{
	struct auth_throttle_conf c = conf;

	T_EQ_INT(auth_throttle_delay_ms(&c, 0), 0);
	T_EQ_INT(auth_throttle_delay_ms(&c, -1), 0);
	T_EQ_INT(auth_throttle_delay_ms(&c, 1), 1000);
	T_EQ_INT(auth_throttle_delay_ms(&c, 2), 2000);
	T_EQ_INT(auth_throttle_delay_ms(&c, 3), 4000);
	T_EQ_INT(auth_throttle_delay_ms(&c, 4), 8000);
	T_EQ_INT(auth_throttle_delay_ms(&c, 5), 15000);
	T_EQ_INT(auth_throttle_delay_ms(&c, 1000000), 15000);
	c.delay = 0;
	T_EQ_INT(auth_throttle_delay_ms(&c, 5), 0);
	c.delay = 20;
	T_EQ_INT(auth_throttle_delay_ms(&c, 1), 15000);
}

static void
test_client_lockout(void)
{
	char path[256];
	struct auth_throttle *t = fresh(path, sizeof(path), 0);
	struct auth_throttle_state st;
	struct stat sb;

	T_ASSERT(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0700);
	check_at(t, "192.0.2.1", "a@x", 1000, &st);
	T_EQ_INT(st.client_failures, 0);
	T_EQ_INT(fail_at(t, "192.0.2.1", "a@x", 1000, &st), 0);
	T_EQ_INT(st.client_failures, 1);
	T_EQ_INT(st.account_failures, 1);
	T_EQ_INT(st.client_locked_until, 0);
	T_EQ_INT(fail_at(t, "192.0.2.1", "b@x", 1010, &st), 0);
	T_EQ_INT(st.client_failures, 2);
	T_EQ_INT(st.account_failures, 1);
	T_EQ_INT(fail_at(t, "192.0.2.1", "c@x", 1020, &st), 0);
	T_EQ_INT(st.client_failures, 3);
	T_EQ_INT(st.client_locked_until, 1620);
	/* locked for that address only */
	check_at(t, "192.0.2.1", "z@x", 1021, &st);
	T_EQ_INT(st.client_locked_until, 1620);
	T_EQ_INT(st.client_failures, 3);
	check_at(t, "192.0.2.2", "a@x", 1021, &st);
	T_EQ_INT(st.client_locked_until, 0);
	T_EQ_INT(st.client_failures, 0);
	T_EQ_INT(st.account_failures, 1);
	/* the lockout runs out, and its failures with it */
	check_at(t, "192.0.2.1", NULL, 1619, &st);
	T_ASSERT(st.client_locked_until > 0);
	check_at(t, "192.0.2.1", NULL, 1620, &st);
	T_EQ_INT(st.client_locked_until, 0);
	T_EQ_INT(st.client_failures, 0);
	T_EQ_INT(fail_at(t, "192.0.2.1", NULL, 1630, &st), 0);
	T_EQ_INT(st.client_failures, 1);
	T_EQ_INT(st.client_locked_until, 0);
	auth_throttle_close(&t);
}

static void
test_account_lockout(void)
{
	char path[256], client[32];
	struct auth_throttle *t = fresh(path, sizeof(path), 0);
	struct auth_throttle_state st;

	for (int i = 0; i < 5; i++) {
		snprintf(client, sizeof(client), "198.51.100.%d", i);
		T_EQ_INT(fail_at(t, client, "alice@x", 2000 + i, &st), 0);
		T_EQ_INT(st.client_failures, 1);
		T_EQ_INT(st.account_failures, i + 1);
		T_EQ_INT(st.account_locked_until, i == 4 ? 2604 : 0);
	}
	/* from any address */
	check_at(t, "203.0.113.9", "alice@x", 2010, &st);
	T_EQ_INT(st.account_locked_until, 2604);
	T_EQ_INT(st.client_locked_until, 0);
	check_at(t, "203.0.113.9", "bob@x", 2010, &st);
	T_EQ_INT(st.account_locked_until, 0);
	auth_throttle_close(&t);
}

static void
test_window(void)
{
	char path[256];
	struct auth_throttle *t = fresh(path, sizeof(path), 0);
	struct auth_throttle_state st;

	T_EQ_INT(fail_at(t, "::1", "a@x", 1000, &st), 0);
	T_EQ_INT(fail_at(t, "::1", "a@x", 1500, &st), 0);
	/* the window counts from the last failure */
	check_at(t, "::1", "a@x", 2399, &st);
	T_EQ_INT(st.client_failures, 2);
	T_EQ_INT(st.account_failures, 2);
	check_at(t, "::1", "a@x", 2400, &st);
	T_EQ_INT(st.client_failures, 0);
	T_EQ_INT(st.account_failures, 0);
	T_EQ_INT(fail_at(t, "::1", "a@x", 2400, &st), 0);
	T_EQ_INT(st.client_failures, 1);
	auth_throttle_close(&t);
}

static void
test_success_clears_account_only(void)
{
	char path[256];
	struct auth_throttle *t = fresh(path, sizeof(path), 0);
	struct auth_throttle_state st;

	T_EQ_INT(fail_at(t, "192.0.2.5", "a@x", 1000, &st), 0);
	T_EQ_INT(fail_at(t, "192.0.2.5", "a@x", 1001, &st), 0);
	T_EQ_INT(fail_at(t, "192.0.2.6", "b@x", 1001, &st), 0);
	T_EQ_INT(settle_at(t, "192.0.2.5", "a@x", AUTH_OK, 1002), 1);
	/* the account is forgiven, the address keeps its failures */
	check_at(t, "192.0.2.5", "a@x", 1002, &st);
	T_EQ_INT(st.client_failures, 2);
	T_EQ_INT(st.account_failures, 0);
	check_at(t, "192.0.2.6", "b@x", 1002, &st);
	T_EQ_INT(st.client_failures, 1);
	T_EQ_INT(st.account_failures, 1);
	/* c: for both addresses, a: and p: of b@x, g: of a@x (its
	 * prefix is known-good now) */
	T_EQ_INT(auth_throttle_count(t), 5);
	/* a success without earlier failures leaves only its prefix */
	T_EQ_INT(settle_at(t, "192.0.2.7", "c@x", AUTH_OK, 1003), 1);
	T_EQ_INT(auth_throttle_count(t), 6);
	/* a tempfail is no failure either */
	T_EQ_INT(settle_at(t, "192.0.2.6", "b@x", AUTH_TEMPFAIL, 1003), 1);
	check_at(t, "192.0.2.6", "b@x", 1003, &st);
	T_EQ_INT(st.client_failures, 1);
	T_EQ_INT(st.account_failures, 1);
	/* successes do not keep an address's old failure alive: the window
	 * still counts from the failure (1001), however often its users log
	 * in after it (a typo in an office behind one address) */
	for (int i = 0; i < 5; i++)
		T_EQ_INT(settle_at(t, "192.0.2.5", "a@x", AUTH_OK,
		    1500 + 100 * i), 1);
	check_at(t, "192.0.2.5", "a@x", 1900, &st);
	T_EQ_INT(st.client_failures, 2);
	check_at(t, "192.0.2.5", "a@x", 1901, &st);
	T_EQ_INT(st.client_failures, 0);
	auth_throttle_close(&t);
}

/* the attack of issue 11: guesses at other accounts, interleaved with
 * logins to an account of the attacker's own, still lock the address */
static void
test_own_account_no_reset(void)
{
	char path[256], victim[32];
	struct auth_throttle *t = fresh(path, sizeof(path), 0);
	struct auth_throttle_state st;
	int counted = 0, refused = 0;

	for (int round = 0; round < 10 && refused == 0; round++) {
		for (int i = 0; i < 2; i++) {
			snprintf(victim, sizeof(victim), "v%d@x", round * 2 + i);
			if (fail_at(t, "203.0.113.5", victim, 1000 + round,
			    &st) == 0)
				counted++;
			else
				refused++;
		}
		if (settle_at(t, "203.0.113.5", "mine@x", AUTH_OK,
		    1000 + round) == 0)
			refused++;
	}
	/* conf.client_lockout is 3: the third guess locks the address */
	T_EQ_INT(counted, 3);
	T_ASSERT(refused > 0);
	check_at(t, "203.0.113.5", "mine@x", 1010, &st);
	T_EQ_INT(st.client_locked_until, 1001 + 600);
	/* the owner's own login is refused too while the address is locked */
	T_EQ_INT(settle_at(t, "203.0.113.5", "mine@x", AUTH_OK, 1011), 0);
	auth_throttle_close(&t);
}

/* a lockout started by an attempt that then succeeds ends with it */
static void
test_reserved_then_success(void)
{
	char path[256];
	struct auth_throttle *t = fresh(path, sizeof(path), 0);
	struct auth_throttle_state st, st2;
	struct buf why = BUF_INIT;

	T_EQ_INT(fail_at(t, "192.0.2.8", "a@x", 1000, &st), 0);
	T_EQ_INT(fail_at(t, "192.0.2.8", "b@x", 1000, &st), 0);
	/* the third attempt is in flight: counted, the address locked */
	T_EQ_INT(auth_throttle_begin(t, "192.0.2.8", "c@x", 1001, &st, &why),
	    1);
	T_EQ_INT(st.client_failures, 3);
	T_EQ_INT(st.client_locked_until, 1601);
	/* a fourth meanwhile is refused without a check */
	T_EQ_INT(settle_at(t, "192.0.2.8", "d@x", AUTH_FAIL, 1001), 0);
	check_at(t, "192.0.2.8", "d@x", 1001, &st2);
	T_EQ_INT(st2.client_locked_until, 1601);
	/* the third was right after all */
	T_EQ_INT(auth_throttle_end(t, "192.0.2.8", "c@x", AUTH_OK, 1002,
	    &st, &why), 0);
	check_at(t, "192.0.2.8", "c@x", 1002, &st);
	T_EQ_INT(st.client_failures, 2);
	T_EQ_INT(st.client_locked_until, 0);
	buf_free(&why);
	auth_throttle_close(&t);
}

/*
 * Attempts in flight from one address at once (a webmail server's
 * logins, or several authd processes busy for it): each counts as a
 * failure for the lockout until settled, but is marked pending, so that
 * the delay of the others counts only failures that are known.
 */
static void
test_pending_not_a_known_failure(void)
{
	char path[256];
	struct auth_throttle *t = fresh(path, sizeof(path), 0);
	struct auth_throttle_state a, b, c, d;
	struct buf why = BUF_INIT;

	T_EQ_INT(auth_throttle_begin(t, "192.0.2.9", "a@x", 1000, &a, &why),
	    1);
	T_EQ_INT(a.client_failures, 1);
	T_EQ_INT(a.client_pending, 1);
	T_EQ_INT(auth_throttle_begin(t, "192.0.2.9", "b@x", 1000, &b, &why),
	    1);
	/* a is in flight: counted, but not a known failure */
	T_EQ_INT(b.client_failures, 2);
	T_EQ_INT(b.client_pending, 2);
	/* a fails: known now, no longer pending */
	T_EQ_INT(auth_throttle_end(t, "192.0.2.9", "a@x", AUTH_FAIL, 1000,
	    &a, &why), 0);
	T_EQ_INT(auth_throttle_begin(t, "192.0.2.9", "c@x", 1001, &c, &why),
	    1);
	T_EQ_INT(c.client_failures, 3);
	T_EQ_INT(c.client_pending, 2);	/* b and c */
	/* b and c log in; a's failure stays, nothing pending */
	T_EQ_INT(auth_throttle_end(t, "192.0.2.9", "b@x", AUTH_OK, 1001,
	    &b, &why), 0);
	T_EQ_INT(auth_throttle_end(t, "192.0.2.9", "c@x", AUTH_TEMPFAIL, 1001,
	    &c, &why), 0);
	check_at(t, "192.0.2.9", NULL, 1001, &d);
	T_EQ_INT(d.client_failures, 1);
	T_EQ_INT(d.client_pending, 0);
	/* the record survives a reopen with its pending count */
	T_EQ_INT(auth_throttle_begin(t, "192.0.2.9", "e@x", 1002, &d, &why),
	    1);
	auth_throttle_close(&t);
	T_EQ_INT(auth_throttle_open(path, &conf, 0, &t, &why), 0);
	check_at(t, "192.0.2.9", NULL, 1002, &d);
	T_EQ_INT(d.client_failures, 2);
	T_EQ_INT(d.client_pending, 1);
	buf_free(&why);
	auth_throttle_close(&t);
}

static void
test_persistence(void)
{
	char path[256];
	struct auth_throttle *t = fresh(path, sizeof(path), 0);
	struct auth_throttle_state st;
	struct buf why = BUF_INIT;

	for (int i = 0; i < 3; i++)
		T_EQ_INT(fail_at(t, "192.0.2.9", "a@x", 1000 + i, &st), 0);
	auth_throttle_close(&t);
	T_EQ_INT(auth_throttle_open(path, &conf, 0, &t, &why), 0);
	check_at(t, "192.0.2.9", "a@x", 1100, &st);
	T_EQ_INT(st.client_failures, 3);
	T_EQ_INT(st.client_locked_until, 1602);
	T_EQ_INT(st.account_failures, 3);
	buf_free(&why);
	auth_throttle_close(&t);
}

static void
test_prune(void)
{
	struct auth_throttle_conf c = conf;
	char path[256], client[32];
	struct auth_throttle *t;
	struct auth_throttle_state st;
	struct buf why = BUF_INIT;
	long before;

	c.lockout_time = 2000;	/* outlasts the window */
	t = fresh_conf(path, sizeof(path), 0, &c);

	for (int i = 0; i < 40; i++) {
		snprintf(client, sizeof(client), "10.0.0.%d", i);
		T_EQ_INT(fail_at(t, client, NULL, 1000, &st), 0);
	}
	/* a locked one stays while locked, even past the window */
	for (int i = 0; i < 3; i++)
		T_EQ_INT(fail_at(t, "10.9.9.9", NULL, 1000, &st), 0);
	T_EQ_INT(auth_throttle_count(t), 41);
	/* nothing has expired yet */
	T_EQ_INT(auth_throttle_prune(t, 1899, 0, &why), 0);
	/* each recorded failure sweeps a few expired entries on the way */
	before = auth_throttle_count(t);
	T_EQ_INT(fail_at(t, "10.1.1.1", NULL, 1900, &st), 0);
	T_ASSERT(auth_throttle_count(t) < before);
	T_EQ_INT(fail_at(t, "10.1.1.2", NULL, 1900, &st), 0);
	T_EQ_INT(fail_at(t, "10.1.1.3", NULL, 1900, &st), 0);
	T_EQ_INT(fail_at(t, "10.1.1.4", NULL, 1900, &st), 0);
	/* a full prune takes the rest: only the lockout and the new ones */
	T_ASSERT(auth_throttle_prune(t, 1900, 0, &why) >= 0);
	T_EQ_INT(auth_throttle_count(t), 5);
	check_at(t, "10.9.9.9", NULL, 1900, &st);
	T_EQ_INT(st.client_locked_until, 3000);
	buf_free(&why);
	auth_throttle_close(&t);
}

static void
test_map_full(void)
{
	char path[256], client[64];
	struct auth_throttle *t = fresh(path, sizeof(path), 32 * 4096);
	struct auth_throttle_state st;
	struct buf why = BUF_INIT;
	int i, r = 0;

	/* fill the tiny map with live entries until a failure cannot be
	 * recorded (bounded: a 128 KB map holds a few thousand) */
	for (i = 0, r = 1; i < 100000 && r > 0; i++) {
		snprintf(client, sizeof(client), "2001:db8::%d", i);
		buf_reset(&why);
		r = auth_throttle_begin(t, client, NULL, 5000, &st, &why);
	}
	T_EQ_INT(r, -1);
	T_ASSERT(i < 100000);
	T_ASSERT(strstr(buf_cstr(&why), "MDB_MAP_FULL") != NULL);
	/* later everything has expired: the failure makes room and fits */
	T_EQ_INT(fail_at(t, "192.0.2.200", NULL, 50000, &st), 0);
	T_EQ_INT(st.client_failures, 1);
	T_ASSERT(auth_throttle_prune(t, 50000, 0, &why) > 0);
	T_EQ_INT(auth_throttle_count(t), 1);
	buf_free(&why);
	auth_throttle_close(&t);
}

/*
 * racer - a child process: open the state, wait for the start signal on
 * fd go, then make tries attempts for client that fail after a short
 * "hash"; exits with the number of attempts that were let through (or
 * 255 on an error)
 */
static void
racer(const char *path, const struct auth_throttle_conf *c, int go,
    int tries)
{
	struct auth_throttle *t;
	struct auth_throttle_state st;
	struct buf why = BUF_INIT;
	struct timespec hash = {0, 2 * 1000 * 1000};
	char byte;
	int through = 0, r;

	if (auth_throttle_open(path, c, 0, &t, &why) < 0 ||
	    read(go, &byte, 1) != 1)
		_exit(255);
	for (int i = 0; i < tries; i++) {
		if ((r = auth_throttle_begin(t, "192.0.2.99", "a@x", 4000, &st,
		    &why)) < 0)
			_exit(255);
		if (r == 0)
			continue;
		through++;
		nanosleep(&hash, NULL);	/* the password check */
		if (auth_throttle_end(t, "192.0.2.99", "a@x", AUTH_FAIL, 4000,
		    &st, &why) < 0)
			_exit(255);
	}
	auth_throttle_close(&t);
	_exit(through > 254 ? 254 : through);
}

/* race - start n racers at once on a fresh state; the attempts they let
 * through together, or -1 if one of them failed */
static int
race(const struct auth_throttle_conf *c, int n, int tries)
{
	char path[256];
	struct auth_throttle *t = fresh_conf(path, sizeof(path), 0, c);
	pid_t pids[4];
	int go[2], status, sum = 0;

	/* an environment never crosses fork(): each opens its own */
	auth_throttle_close(&t);
	if (n > 4)
		msg_panic("race: at most 4 racers");
	if (pipe(go) < 0)
		msg_fatal("pipe: %m");
	for (int i = 0; i < n; i++) {
		if ((pids[i] = fork()) < 0)
			msg_fatal("fork: %m");
		if (pids[i] == 0) {
			close(go[1]);
			racer(path, c, go[0], tries);
		}
	}
	close(go[0]);
	/* all at once: each reads one byte */
	if (write(go[1], "gggg", (size_t)n) != n)
		msg_fatal("write: %m");
	close(go[1]);
	for (int i = 0; i < n; i++) {
		if (waitpid(pids[i], &status, 0) != pids[i] ||
		    !WIFEXITED(status) || WEXITSTATUS(status) == 255)
			sum = -1;
		else if (sum >= 0)
			sum += WEXITSTATUS(status);
	}
	return sum;
}

static void
test_processes_cannot_overshoot(void)
{
	struct auth_throttle_conf c = conf;

	/* four processes, each trying 25 times against a limit of 20 */
	c.client_lockout = 20;
	c.account_lockout = 100000;
	T_EQ_INT(race(&c, 4, 25), 20);
	/* the same for the account, from one address */
	c.client_lockout = 100000;
	c.account_lockout = 12;
	T_EQ_INT(race(&c, 2, 25), 12);
}

static void
test_two_processes(void)
{
	char path[256];
	struct auth_throttle *t = fresh(path, sizeof(path), 0);
	struct auth_throttle_conf many = conf;
	struct auth_throttle_state st;
	struct buf why = BUF_INIT;
	pid_t pid;
	int status = 0;

	/* an environment never crosses fork(): close, fork, open in both */
	auth_throttle_close(&t);
	many.client_lockout = 100000;
	many.account_lockout = 100000;
	if ((pid = fork()) < 0)
		msg_fatal("fork: %m");
	if (pid == 0) {
		int bad = 0;

		if (auth_throttle_open(path, &many, 0, &t, &why) < 0)
			_exit(2);
		for (int i = 0; i < 200; i++)
			if (fail_at(t, "192.0.2.77", "a@x", 3000, &st) != 0)
				bad++;
		auth_throttle_close(&t);
		_exit(bad ? 1 : 0);
	}
	T_EQ_INT(auth_throttle_open(path, &many, 0, &t, &why), 0);
	for (int i = 0; i < 200; i++)
		T_EQ_INT(fail_at(t, "192.0.2.77", "a@x", 3000, &st), 0);
	T_EQ_INT(waitpid(pid, &status, 0), pid);
	T_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	check_at(t, "192.0.2.77", "a@x", 3001, &st);
	T_EQ_INT(st.client_failures, 400);
	T_EQ_INT(st.account_failures, 400);
	buf_free(&why);
	auth_throttle_close(&t);
}

/* issue 12: account failures count per (account, prefix); strangers
 * from other prefixes lock the account for their own prefixes only */
static void
test_pair_lockout(void)
{
	char path[256], client[64];
	struct auth_throttle_conf c = conf;
	struct auth_throttle *t;
	struct auth_throttle_state st;

	c.client_lockout = 1000;
	c.account_lockout = 1000;
	c.pair_lockout = 3;
	t = fresh_conf(path, sizeof(path), 0, &c);
	for (int i = 0; i < 3; i++) {
		snprintf(client, sizeof(client), "203.0.113.%d", i + 1);
		T_EQ_INT(fail_at(t, client, "bob@x", 1000 + i, &st), 0);
		T_EQ_INT(st.pair_failures, i + 1);
		T_EQ_INT(st.pair_locked_until, i == 2 ? 1602 : 0);
	}
	/* the whole /24 is locked for bob, from a fresh address too */
	T_EQ_INT(fail_at(t, "203.0.113.77", "bob@x", 1010, &st), 1);
	T_EQ_INT(st.pair_locked_until, 1602);
	T_EQ_INT(st.account_locked_until, 0);
	/* another /24 is not; nor is another account from that /24 */
	T_EQ_INT(settle_at(t, "203.0.114.1", "bob@x", AUTH_OK, 1011), 1);
	T_EQ_INT(settle_at(t, "203.0.113.78", "carol@x", AUTH_OK, 1011), 1);
	/* IPv6: one /64 is one prefix */
	for (int i = 0; i < 3; i++) {
		snprintf(client, sizeof(client), "2001:db8:1:2::%x", i + 1);
		T_EQ_INT(fail_at(t, client, "dan@x", 1000 + i, &st), 0);
	}
	T_EQ_INT(fail_at(t, "2001:db8:1:2:ffff::9", "dan@x", 1005, &st), 1);
	T_EQ_INT(settle_at(t, "2001:db8:1:3::1", "dan@x", AUTH_OK, 1005), 1);
	auth_throttle_close(&t);
}

/* issue 12: a prefix the account logged in from is never locked for it,
 * neither by failures from there nor by the global account lockout */
static void
test_known_prefix_not_locked(void)
{
	char path[256], client[64];
	struct auth_throttle_conf c = conf;
	struct auth_throttle *t;
	struct auth_throttle_state st;

	c.client_lockout = 1000;
	c.account_lockout = 5;
	c.pair_lockout = 3;
	t = fresh_conf(path, sizeof(path), 0, &c);
	T_EQ_INT(settle_at(t, "192.0.2.10", "bob@x", AUTH_OK, 1000), 1);
	check_at(t, "192.0.2.200", "bob@x", 1001, &st);
	T_ASSERT(st.known);
	/* strangers from 5 other /24s: the account is locked globally */
	for (int i = 0; i < 5; i++) {
		snprintf(client, sizeof(client), "198.51.%d.9", i);
		T_EQ_INT(fail_at(t, client, "bob@x", 1001 + i, &st), 0);
	}
	T_EQ_INT(st.account_locked_until, 1605);
	T_EQ_INT(fail_at(t, "203.0.113.1", "bob@x", 1010, &st), 1);
	/* ... but not from bob's own prefix */
	T_EQ_INT(settle_at(t, "192.0.2.10", "bob@x", AUTH_OK, 1011), 1);
	/* guesses from his prefix lock the address, never the account */
	for (int i = 0; i < 4; i++)
		T_EQ_INT(fail_at(t, "192.0.2.66", "bob@x", 1020 + i, &st), 0);
	T_EQ_INT(st.pair_locked_until, 0);
	T_EQ_INT(settle_at(t, "192.0.2.10", "bob@x", AUTH_OK, 1030), 1);
	/* known for known_time from the latest success */
	check_at(t, "192.0.2.10", "bob@x", 1030 + 30 * 86400 - 1, &st);
	T_ASSERT(st.known);
	check_at(t, "192.0.2.10", "bob@x", 1030 + 30 * 86400, &st);
	T_ASSERT(!st.known);
	/* at most known_max (3) prefixes per account: the oldest goes */
	for (int i = 0; i < 3; i++) {
		snprintf(client, sizeof(client), "10.0.%d.1", i);
		T_EQ_INT(settle_at(t, client, "bob@x", AUTH_OK, 2000 + i), 1);
	}
	check_at(t, "192.0.2.10", "bob@x", 2010, &st);
	T_ASSERT(!st.known);
	check_at(t, "10.0.0.1", "bob@x", 2010, &st);
	T_ASSERT(st.known);
	check_at(t, "10.0.2.1", "bob@x", 2010, &st);
	T_ASSERT(st.known);
	auth_throttle_close(&t);
}

/* issue 12: the account as a whole has its own, longer window */
static void
test_account_window(void)
{
	char path[256], client[64];
	struct auth_throttle_conf c = conf;
	struct auth_throttle *t;
	struct auth_throttle_state st;

	c.client_lockout = 1000;
	c.account_lockout = 4;
	c.account_window = 3600;
	t = fresh_conf(path, sizeof(path), 0, &c);
	/* one guess every 20 minutes: outside the 15-minute window of the
	 * others, inside the account's hour */
	for (int i = 0; i < 4; i++) {
		snprintf(client, sizeof(client), "198.51.%d.1", i);
		T_EQ_INT(fail_at(t, client, "bob@x", 1000 + 1200 * i, &st),
		    0);
		T_EQ_INT(st.pair_failures, 1);
		T_EQ_INT(st.account_failures, i + 1);
	}
	T_EQ_INT(st.account_locked_until, 1000 + 3600 + 600);
	auth_throttle_close(&t);
}

/* collect - "kind name failures until" lines of the lockouts in force */
static void
collect(const struct auth_throttle_lock *l, void *ctx)
{
	buf_printf(ctx, "%c %s %lld %lld\n", l->kind, l->name, l->failures,
	    l->until);
}

/* locks_at - the lockouts in force at now, as collect writes them */
static void
locks_at(struct auth_throttle *t, long long now, struct buf *out)
{
	struct buf why = BUF_INIT;

	buf_reset(out);
	if (auth_throttle_locks(t, now, collect, out, &why) < 0)
		msg_fatal("locks: %s", buf_cstr(&why));
	buf_free(&why);
}

/* unlock - auth_throttle_unlock, entries removed (-1: refused) */
static long
unlock(struct auth_throttle *t, const char *what)
{
	struct buf why = BUF_INIT;
	long n = auth_throttle_unlock(t, what, &why);

	buf_free(&why);
	return n;
}

/* issue 13: heraldctl auth lockouts / unlock */
static void
test_locks_and_unlock(void)
{
	char path[256], client[64];
	struct auth_throttle_conf c = conf;
	struct auth_throttle *t;
	struct auth_throttle_state st;
	struct buf out = BUF_INIT;

	c.pair_lockout = 3;
	t = fresh_conf(path, sizeof(path), 0, &c);
	locks_at(t, 1000, &out);
	T_EQ_STR(buf_cstr(&out), "");
	/* 192.0.2.1 locked (3 failures); bob locked from 203.0.113.0/24 */
	for (int i = 0; i < 3; i++)
		T_EQ_INT(fail_at(t, "192.0.2.1", "x@y", 1000 + i, &st), 0);
	for (int i = 0; i < 3; i++) {
		snprintf(client, sizeof(client), "203.0.113.%d", i + 1);
		T_EQ_INT(fail_at(t, client, "bob@x", 1000, &st), 0);
	}
	/* 2001:db8::1 locked too */
	for (int i = 0; i < 3; i++)
		T_EQ_INT(fail_at(t, "2001:db8::1", NULL, 1000, &st), 0);
	locks_at(t, 1100, &out);
	T_EQ_STR(buf_cstr(&out),
	    "c 192.0.2.1 3 1602\n"
	    "c 2001:db8::1 3 1600\n"
	    "p bob@x 203.0.113.0/24 3 1600\n"
	    "p x@y 192.0.2.0/24 3 1602\n");
	/* gone when the lockout has run out */
	locks_at(t, 1602, &out);
	T_EQ_STR(buf_cstr(&out), "");
	/* bad input is refused, nothing matching is 0 */
	T_EQ_INT(unlock(t, "not an address"), -1);
	T_EQ_INT(unlock(t, "192.0.2.0/33"), -1);
	T_EQ_INT(unlock(t, "192.0.2.0/"), -1);
	T_EQ_INT(unlock(t, "198.51.100.1"), 0);
	T_EQ_INT(unlock(t, "nobody@x"), 0);
	T_EQ_INT(unlock(t, "192.0.3.2"), 0);
	/* an address: its entry, and the accounts' for its prefix */
	T_EQ_INT(unlock(t, "203.0.113.200"), 1);
	T_EQ_INT(fail_at(t, "203.0.113.9", "bob@x", 1101, &st), 0);
	T_EQ_INT(unlock(t, "192.0.2.1"), 2);	/* and x@y from there */
	T_EQ_INT(fail_at(t, "192.0.2.1", "x@y", 1101, &st), 0);
	T_EQ_INT(st.client_failures, 1);
	/* a prefix: the addresses inside it */
	T_EQ_INT(unlock(t, "2001:db8::/32"), 1);
	T_EQ_INT(fail_at(t, "2001:db8::1", NULL, 1101, &st), 0);
	/* an account: as a whole and from every prefix */
	for (int i = 0; i < 3; i++) {
		snprintf(client, sizeof(client), "198.51.100.%d", i + 1);
		T_EQ_INT(fail_at(t, client, "carol@x", 1200, &st), 0);
	}
	locks_at(t, 1201, &out);
	T_ASSERT(strstr(buf_cstr(&out), "p carol@x 198.51.100.0/24 3 ") !=
	    NULL);
	T_EQ_INT(unlock(t, "carol@x"), 2);	/* "a:" and "p:" */
	locks_at(t, 1201, &out);
	T_ASSERT(strstr(buf_cstr(&out), "carol") == NULL);
	buf_free(&out);
	auth_throttle_close(&t);
}

static const struct test_case cases[] = {
	{"lockouts listed and lifted", test_locks_and_unlock},
	{"account locked per address prefix", test_pair_lockout},
	{"known-good prefix never locked", test_known_prefix_not_locked},
	{"account lockout window", test_account_window},
	{"delay doubles up to the cap", test_delay},
	{"client address lockout", test_client_lockout},
	{"account lockout from any address", test_account_lockout},
	{"failure window", test_window},
	{"success clears the account, not the address",
	    test_success_clears_account_only},
	{"own account does not reset the address", test_own_account_no_reset},
	{"a lockout in flight ends with its success",
	    test_reserved_then_success},
	{"pending attempts are not known failures",
	    test_pending_not_a_known_failure},
	{"state survives reopening", test_persistence},
	{"pruning expired entries", test_prune},
	{"full map: prune, else fail open", test_map_full},
	{"two processes write at once", test_two_processes},
	{"racing processes cannot overshoot a lockout",
	    test_processes_cannot_overshoot},
	{0},
};

int
main(void)
{
	int rc;

	msg_init("auth_throttle_test", LOG_DEST_STDERR);
	if (mkdtemp(test_dir) == NULL)
		msg_fatal("mkdtemp: %m");
	rc = test_run(cases);
	test_rm_tree(test_dir);
	return rc;
}
