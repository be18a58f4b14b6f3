/*
 * auth_cache_test - authd's memory of recent successful logins: hits,
 * expiry, the size bound, and through auth_verify_account against a real
 * directory that a changed password, a disabled account or a wrong
 * password never hit, and that a wrong password still costs a yescrypt.
 */
#include <crypt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/test.h"
#include "mail/dir.h"
#include "auth.h"

#define HASH_A "$y$j9T$abc$def"		/* digests only: any text */
#define HASH_B "$y$j9T$abc$xyz"

static void
test_hit(void)
{
	struct auth_cache *c = auth_cache_new(10, 60);
	struct auth_cache_stats st;

	T_ASSERT(c != NULL);
	T_ASSERT(!auth_cache_hit(c, "a@x.test", HASH_A, "pw", 1000));
	auth_cache_store(c, "a@x.test", HASH_A, "pw", 1000);
	T_ASSERT(auth_cache_hit(c, "a@x.test", HASH_A, "pw", 1001));
	/* another password, another account, another hash: no */
	T_ASSERT(!auth_cache_hit(c, "a@x.test", HASH_A, "pW", 1001));
	T_ASSERT(!auth_cache_hit(c, "a@x.test", HASH_A, "pw ", 1001));
	T_ASSERT(!auth_cache_hit(c, "b@x.test", HASH_A, "pw", 1001));
	/* a wrong password leaves the owner's entry */
	T_ASSERT(auth_cache_hit(c, "a@x.test", HASH_A, "pw", 1002));
	/* the hash changed (heraldctl passwd): dropped, even with the
	 * hash back as it was */
	T_ASSERT(!auth_cache_hit(c, "a@x.test", HASH_B, "pw", 1002));
	T_ASSERT(!auth_cache_hit(c, "a@x.test", HASH_A, "pw", 1002));
	auth_cache_stats(c, &st);
	T_EQ_INT(st.hits, 2);
	T_EQ_INT(st.stored, 1);
	T_EQ_INT(st.dropped, 1);
	T_EQ_INT(st.entries, 0);
	auth_cache_free(&c);
	T_ASSERT(c == NULL);
	auth_cache_free(&c);	/* NULL is fine */
}

static void
test_expiry(void)
{
	struct auth_cache *c = auth_cache_new(10, 60);
	struct auth_cache_stats st;

	auth_cache_store(c, "a@x.test", HASH_A, "pw", 1000);
	T_ASSERT(auth_cache_hit(c, "a@x.test", HASH_A, "pw", 1059));
	/* a hit does not extend the life of the entry */
	T_ASSERT(!auth_cache_hit(c, "a@x.test", HASH_A, "pw", 1060));
	auth_cache_stats(c, &st);
	T_EQ_INT(st.entries, 0);
	/* a new successful check starts it again */
	auth_cache_store(c, "a@x.test", HASH_A, "pw", 1060);
	T_ASSERT(auth_cache_hit(c, "a@x.test", HASH_A, "pw", 1100));
	auth_cache_flush(c);
	T_ASSERT(!auth_cache_hit(c, "a@x.test", HASH_A, "pw", 1100));
	/* an entry nobody asks for again is wiped once expired, at the
	 * next lookup or store of any account, whatever the LRU order */
	auth_cache_store(c, "a@x.test", HASH_A, "pw", 2000);
	auth_cache_store(c, "b@x.test", HASH_A, "pw", 2030);
	T_ASSERT(auth_cache_hit(c, "a@x.test", HASH_A, "pw", 2031));
	T_ASSERT(!auth_cache_hit(c, "c@x.test", HASH_A, "pw", 2060));
	auth_cache_stats(c, &st);
	T_EQ_INT(st.entries, 1);
	auth_cache_store(c, "c@x.test", HASH_A, "pw", 2090);
	auth_cache_stats(c, &st);
	T_EQ_INT(st.entries, 1);
	T_ASSERT(auth_cache_hit(c, "c@x.test", HASH_A, "pw", 2091));
	auth_cache_free(&c);
}

static void
test_size(void)
{
	struct auth_cache *c = auth_cache_new(3, 60);
	struct auth_cache_stats st;
	char acct[32];

	auth_cache_store(c, "a@x.test", HASH_A, "pa", 1000);
	auth_cache_store(c, "b@x.test", HASH_A, "pb", 1000);
	auth_cache_store(c, "c@x.test", HASH_A, "pc", 1000);
	/* a used lately: b is the least recently used */
	T_ASSERT(auth_cache_hit(c, "a@x.test", HASH_A, "pa", 1001));
	auth_cache_store(c, "d@x.test", HASH_A, "pd", 1001);
	T_ASSERT(!auth_cache_hit(c, "b@x.test", HASH_A, "pb", 1002));
	T_ASSERT(auth_cache_hit(c, "a@x.test", HASH_A, "pa", 1002));
	T_ASSERT(auth_cache_hit(c, "c@x.test", HASH_A, "pc", 1002));
	T_ASSERT(auth_cache_hit(c, "d@x.test", HASH_A, "pd", 1002));
	/* storing an account again replaces its entry */
	auth_cache_store(c, "d@x.test", HASH_A, "pd2", 1003);
	T_ASSERT(!auth_cache_hit(c, "d@x.test", HASH_A, "pd", 1003));
	T_ASSERT(auth_cache_hit(c, "d@x.test", HASH_A, "pd2", 1003));
	auth_cache_stats(c, &st);
	T_EQ_INT(st.entries, 3);
	T_EQ_INT(st.evicted, 1);
	/* many more accounts: never more than the bound */
	for (int i = 0; i < 1000; i++) {
		snprintf(acct, sizeof(acct), "u%d@x.test", i);
		auth_cache_store(c, acct, HASH_A, "p", 1004);
	}
	auth_cache_stats(c, &st);
	T_EQ_INT(st.entries, 3);
	T_ASSERT(auth_cache_hit(c, "u999@x.test", HASH_A, "p", 1004));
	T_ASSERT(auth_cache_hit(c, "u997@x.test", HASH_A, "p", 1004));
	T_ASSERT(!auth_cache_hit(c, "u996@x.test", HASH_A, "p", 1004));
	auth_cache_free(&c);
}

static void
test_off(void)
{
	T_ASSERT(auth_cache_new(10, 0) == NULL);
	T_ASSERT(auth_cache_new(0, 60) == NULL);
	/* NULL is a cache that never hits */
	auth_cache_store(NULL, "a@x.test", HASH_A, "pw", 1000);
	T_ASSERT(!auth_cache_hit(NULL, "a@x.test", HASH_A, "pw", 1000));
	auth_cache_flush(NULL);
}

/* two caches (two authd processes, or one before and after a restart)
 * have different keys: same inputs, and still each knows only its own */
static void
test_own_key(void)
{
	struct auth_cache *c1 = auth_cache_new(10, 60);
	struct auth_cache *c2 = auth_cache_new(10, 60);

	auth_cache_store(c1, "a@x.test", HASH_A, "pw", 1000);
	T_ASSERT(auth_cache_hit(c1, "a@x.test", HASH_A, "pw", 1000));
	T_ASSERT(!auth_cache_hit(c2, "a@x.test", HASH_A, "pw", 1000));
	auth_cache_free(&c1);
	auth_cache_free(&c2);
}

/* ------------------------------------------- through the account check */

static char data_dir[64];

/* cpu_us - this thread's CPU time in microseconds */
static long long
cpu_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* hash_of - a fresh default yescrypt hash of pw (free it) */
static char *
hash_of(const char *pw)
{
	char *salt = crypt_gensalt_ra("$y$", 0, NULL, 0);
	char *h;

	if (salt == NULL)
		msg_fatal("crypt_gensalt: %m");
	h = strdup(crypt(pw, salt));
	free(salt);
	return h;
}

/* change - with the readers closed: set addr's password (NULL: delete)
 * and enabled state, then open the readers again */
static void
change(struct dir **d, struct dir_passwd **pw, const char *addr,
    const char *password, bool enabled)
{
	struct buf why = BUF_INIT;
	struct dir *w;
	char *h = password != NULL ? hash_of(password) : NULL;

	dir_passwd_close(pw);
	dir_close(d);
	if (dir_open(data_dir, DIR_WRITE, &w, &why) < 0 ||
	    dir_user_set_enabled(w, addr, enabled, &why) < 0 ||
	    (h != NULL ? dir_passwd_set(data_dir, addr, h, &why) :
	    dir_passwd_del(data_dir, addr, &why)) < 0)
		msg_fatal("%s", buf_cstr(&why));
	dir_close(&w);
	if (dir_open(data_dir, DIR_READ, d, &why) < 0 ||
	    dir_passwd_open(data_dir, pw, &why) != 1)
		msg_fatal("%s", buf_cstr(&why));
	free(h);
	buf_free(&why);
}

/* check - one auth_verify_account with the cache; *cpu the CPU it took */
static enum auth_verdict
check(struct dir *d, struct dir_passwd *pw, struct auth_cache *c,
    const char *acct, const char *password, long long *cpu,
    struct buf *reason)
{
	struct buf stale = BUF_INIT;
	enum auth_verdict v;
	long long t0 = cpu_us();

	buf_reset(reason);
	v = auth_verify_account(d, pw, c, acct, password, &stale, reason);
	*cpu = cpu_us() - t0;
	buf_free(&stale);
	return v;
}

static void
test_account(void)
{
	struct buf why = BUF_INIT;
	struct auth_cache *c = auth_cache_new(100, 3600), *off;
	struct auth_cache_stats st;
	struct dir *d;
	struct dir_passwd *pw = NULL;
	long long full, cpu;

	snprintf(data_dir, sizeof(data_dir), "/tmp/auth_cache_test.XXXXXX");
	if (mkdtemp(data_dir) == NULL)
		msg_fatal("mkdtemp: %m");
	if (dir_open(data_dir, DIR_WRITE, &d, &why) < 0 ||
	    dir_domain_add(d, "example.test", &why) < 0 ||
	    dir_user_add(d, "alice@example.test", -1, &why) < 0 ||
	    dir_user_add(d, "bob@example.test", -1, &why) < 0)
		msg_fatal("%s", buf_cstr(&why));
	change(&d, &pw, "alice@example.test", "pw-alice", true);
	change(&d, &pw, "bob@example.test", "pw-bob", true);

	/* the first login pays a yescrypt; the second does not */
	T_EQ_INT(check(d, pw, c, "alice@example.test", "pw-alice", &full,
	    &why), AUTH_VERDICT_OK);
	T_ASSERT(full >= 1000);
	T_EQ_INT(check(d, pw, c, "alice@example.test", "pw-alice", &cpu,
	    &why), AUTH_VERDICT_OK);
	fprintf(stderr, "  full check %lld us CPU, cached %lld us CPU\n",
	    full, cpu);
	T_ASSERT(cpu * 4 < full);
	auth_cache_stats(c, &st);
	T_EQ_INT(st.hits, 1);

	/* a wrong password after a hit: the full check, and it fails */
	T_EQ_INT(check(d, pw, c, "alice@example.test", "pw-alicE", &cpu,
	    &why), AUTH_VERDICT_FAIL);
	T_EQ_STR(buf_cstr(&why), "wrong password");
	T_ASSERT(cpu * 2 >= full);
	/* and left the owner's entry alone */
	T_EQ_INT(check(d, pw, c, "alice@example.test", "pw-alice", &cpu,
	    &why), AUTH_VERDICT_OK);
	T_ASSERT(cpu * 4 < full);

	/* heraldctl passwd: the old password fails at once, fully checked */
	change(&d, &pw, "alice@example.test", "pw-new", true);
	T_EQ_INT(check(d, pw, c, "alice@example.test", "pw-alice", &cpu,
	    &why), AUTH_VERDICT_FAIL);
	T_EQ_STR(buf_cstr(&why), "wrong password");
	T_ASSERT(cpu * 2 >= full);
	T_EQ_INT(check(d, pw, c, "alice@example.test", "pw-new", &cpu, &why),
	    AUTH_VERDICT_OK);
	T_ASSERT(cpu * 2 >= full);		/* a miss: full check */
	T_EQ_INT(check(d, pw, c, "alice@example.test", "pw-new", &cpu, &why),
	    AUTH_VERDICT_OK);
	T_ASSERT(cpu * 4 < full);		/* then a hit */

	/* disabled: fails with the right password, despite the entry */
	T_EQ_INT(check(d, pw, c, "bob@example.test", "pw-bob", &cpu, &why),
	    AUTH_VERDICT_OK);
	change(&d, &pw, "bob@example.test", "pw-bob", false);
	T_EQ_INT(check(d, pw, c, "bob@example.test", "pw-bob", &cpu, &why),
	    AUTH_VERDICT_FAIL);
	T_EQ_STR(buf_cstr(&why), "account disabled");
	T_ASSERT(cpu * 2 >= full);
	/* enabled again with a new hash of the same password: a miss */
	change(&d, &pw, "bob@example.test", "pw-bob", true);
	T_EQ_INT(check(d, pw, c, "bob@example.test", "pw-bob", &cpu, &why),
	    AUTH_VERDICT_OK);
	T_ASSERT(cpu * 2 >= full);
	/* password deleted: fails */
	change(&d, &pw, "bob@example.test", NULL, true);
	T_EQ_INT(check(d, pw, c, "bob@example.test", "pw-bob", &cpu, &why),
	    AUTH_VERDICT_FAIL);
	T_EQ_STR(buf_cstr(&why), "no password set");

	/* failures are never stored */
	auth_cache_stats(c, &st);
	T_EQ_INT(st.stored, 4);

	/* off (auth_cache_ttl 0): never a hit */
	off = auth_cache_new(100, 0);
	for (int i = 0; i < 2; i++) {
		T_EQ_INT(check(d, pw, off, "alice@example.test", "pw-new",
		    &cpu, &why), AUTH_VERDICT_OK);
		T_ASSERT(cpu * 2 >= full);
	}

	auth_cache_free(&c);
	dir_passwd_close(&pw);
	dir_close(&d);
	buf_free(&why);
	test_rm_tree(data_dir);
}

static const struct test_case cases[] = {
	{"a stored login hits", test_hit},
	{"entries expire", test_expiry},
	{"bounded, least recently used out", test_size},
	{"ttl or size 0: off", test_off},
	{"a key per cache", test_own_key},
	{"through the account check", test_account},
	{0},
};

int
main(void)
{
	msg_init("auth_cache_test", LOG_DEST_STDERR);
	return test_run(cases);
}
