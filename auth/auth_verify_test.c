/*
 * auth_verify_test - login names, crypt(3) schemes, and the whole account
 * check against a real directory in a temporary folder.
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

/* made by other programs than libxcrypt's crypt(): openssl passwd -6,
 * Python's crypt with a bcrypt salt */
#define SIX_HASH "$6$abcdefgh$KGQr80PEg7VKVUwREyRvtdTzqzY5i481LeAc0VY." \
	"uV/yJXmH2TRVVbeS04JJT/AUl9JeVLb0KOaLgfgizr0.x/"
#define BLF_HASH "$2b$04$abcdefghijklmnopqrstuuZ9gw00I7Q50qJrAVlGaxqRNWY6bauze"

/* make_hash - a fresh hash of pw with the scheme prefix (cost 0: the
 * default; bcrypt gets 4 to be quick) */
static char *
make_hash(const char *prefix, const char *pw)
{
	char *salt = crypt_gensalt_ra(prefix, strncmp(prefix, "$2", 2) == 0 ?
	    4 : 0, NULL, 0);
	char *h;

	if (salt == NULL)
		msg_fatal("crypt_gensalt %s: %m", prefix);
	h = strdup(crypt(pw, salt));
	free(salt);
	return h;
}

static void
test_canonical(void)
{
	char out[AUTH_USER_MAX + 1], big[AUTH_USER_MAX + 10];
	struct buf why = BUF_INIT;

	T_EQ_INT(auth_verify_canonical("Alice@Example.Test", "", out,
	    sizeof(out), &why), 0);
	T_EQ_STR(out, "alice@example.test");
	T_EQ_INT(auth_verify_canonical("Bob", "example.test", out,
	    sizeof(out), &why), 0);
	T_EQ_STR(out, "bob@example.test");
	T_EQ_INT(auth_verify_canonical("bob", "", out, sizeof(out), &why),
	    -1);
	T_ASSERT(strstr(buf_cstr(&why), "auth_default_domain") != NULL);
	T_EQ_INT(auth_verify_canonical("bob", NULL, out, sizeof(out), &why),
	    -1);
	T_EQ_INT(auth_verify_canonical("@example.test", "x.test", out,
	    sizeof(out), &why), -1);
	T_EQ_INT(auth_verify_canonical("bob@", "x.test", out, sizeof(out),
	    &why), -1);
	T_EQ_INT(auth_verify_canonical("bo b@x.test", "", out, sizeof(out),
	    &why), -1);
	T_EQ_INT(auth_verify_canonical("bob\t@x.test", "", out, sizeof(out),
	    &why), -1);
	T_EQ_INT(auth_verify_canonical("", "x.test", out, sizeof(out), &why),
	    -1);
	memset(big, 'b', sizeof(big));
	big[AUTH_USER_MAX - 7] = '\0';	/* + "@x.test" = the bound */
	T_EQ_INT(auth_verify_canonical(big, "x.test", out, sizeof(out),
	    &why), 0);
	T_EQ_INT(strlen(out), AUTH_USER_MAX);
	big[AUTH_USER_MAX - 7] = 'b';
	big[AUTH_USER_MAX - 6] = '\0';
	T_EQ_INT(auth_verify_canonical(big, "x.test", out, sizeof(out),
	    &why), -1);
	buf_free(&why);
}

static void
test_schemes(void)
{
	static const char *const prefixes[] = {"$y$", "$6$", "$2b$", "$2y$",
	    "$2a$"};

	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		char *h = make_hash(prefixes[i], "correct horse");

		T_ASSERT(strncmp(h, prefixes[i], strlen(prefixes[i])) == 0);
		T_EQ_INT(auth_verify_hash("correct horse", h), 1);
		T_EQ_INT(auth_verify_hash("correct horsE", h), 0);
		T_EQ_INT(auth_verify_hash("correct horse ", h), 0);
		free(h);
	}
	/* hashes from elsewhere */
	T_EQ_INT(auth_verify_hash("six-pw", SIX_HASH), 1);
	T_EQ_INT(auth_verify_hash("six-pW", SIX_HASH), 0);
	T_EQ_INT(auth_verify_hash("blf-pw", BLF_HASH), 1);
	T_EQ_INT(auth_verify_hash("blf-px", BLF_HASH), 0);
	/* a hash cut short does not match its password */
	T_EQ_INT(auth_verify_hash("blf-pw", "$2b$04$abcdefghijklmnopqrstuu"
	    "Z9gw00I7Q50qJrAVlGaxqRNWY6bauz") == 1, 0);
}

static void
test_unusable(void)
{
	T_EQ_INT(auth_verify_hash("pw", "*"), -1);
	T_EQ_INT(auth_verify_hash("pw", "!"), -1);
	T_EQ_INT(auth_verify_hash("pw", "!$6$abc$def"), -1);
	T_EQ_INT(auth_verify_hash("pw", ""), -1);
	T_EQ_INT(auth_verify_hash("pw", "$unknown$abc$def"), -1);
}

static char data_dir[64];

/* setup_dir - domain example.test; alice (yescrypt), six ($6$), blf
 * ($2b$), bob disabled, carol without a password, dave unusable hash,
 * star "*" (no password, as in /etc/shadow); *pw_r the kept handle */
static struct dir *
setup_dir(struct dir_passwd **pw_r)
{
	struct buf why = BUF_INIT;
	struct dir *d;
	char *h = make_hash("$y$", "pw-alice");

	snprintf(data_dir, sizeof(data_dir), "/tmp/auth_verify_test.XXXXXX");
	if (mkdtemp(data_dir) == NULL)
		msg_fatal("mkdtemp: %m");
	/* no password database yet: nothing to keep open, and no error */
	if (dir_passwd_open(data_dir, pw_r, &why) != 0 || why.len > 0)
		msg_fatal("dir_passwd_open without a database: %s",
		    buf_cstr(&why));
	if (dir_open(data_dir, DIR_WRITE, &d, &why) < 0 ||
	    dir_domain_add(d, "example.test", &why) < 0)
		msg_fatal("%s", buf_cstr(&why));
	static const char *const users[] = {"alice", "six", "blf", "bob",
	    "carol", "dave", "star"};
	for (size_t i = 0; i < sizeof(users) / sizeof(users[0]); i++) {
		char addr[64];

		snprintf(addr, sizeof(addr), "%s@example.test", users[i]);
		if (dir_user_add(d, addr, -1, &why) < 0)
			msg_fatal("%s", buf_cstr(&why));
	}
	if (dir_user_set_enabled(d, "bob@example.test", false, &why) < 0 ||
	    dir_passwd_set(data_dir, "alice@example.test", h, &why) < 0 ||
	    dir_passwd_set(data_dir, "bob@example.test", h, &why) < 0 ||
	    dir_passwd_set(data_dir, "six@example.test", SIX_HASH, &why) < 0 ||
	    dir_passwd_set(data_dir, "blf@example.test", BLF_HASH, &why) < 0 ||
	    dir_passwd_set(data_dir, "dave@example.test", "!locked",
	    &why) < 0 ||
	    dir_passwd_set(data_dir, "star@example.test", "*", &why) < 0)
		msg_fatal("%s", buf_cstr(&why));
	dir_close(&d);
	free(h);
	if (dir_open(data_dir, DIR_READ, &d, &why) < 0 ||
	    dir_passwd_open(data_dir, pw_r, &why) != 1)
		msg_fatal("%s", buf_cstr(&why));
	buf_free(&why);
	return d;
}

/* verdict - auth_verify_account with the reason in why, the stale hash
 * of a successful login in stale (may be NULL) */
static enum auth_verdict
verdict(struct dir *d, struct dir_passwd *pw, const char *acct,
    const char *password, struct buf *why, struct buf *stale)
{
	struct buf ignored = BUF_INIT;
	enum auth_verdict v;

	buf_reset(why);
	if (stale != NULL)
		buf_reset(stale);
	v = auth_verify_account(d, pw, NULL, acct, password,
	    stale ? stale : &ignored, why);
	buf_free(&ignored);
	return v;
}

/* cpu_us - this thread's CPU time in microseconds: what the check costs,
 * hardly touched by other processes on a busy machine */
static long long
cpu_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* cmp_ll - for qsort */
static int
cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return x < y ? -1 : x > y;
}

static void
test_account(void)
{
	struct dir_passwd *pw;
	struct dir *d = setup_dir(&pw);
	struct buf why = BUF_INIT, stale = BUF_INIT;

	T_EQ_INT(verdict(d, pw, "alice@example.test", "pw-alice", &why,
	    &stale), AUTH_VERDICT_OK);
	T_EQ_INT(stale.len, 0);		/* current: nothing to replace */
	T_EQ_INT(verdict(d, pw, "six@example.test", "six-pw", &why, &stale),
	    AUTH_VERDICT_OK);
	T_EQ_STR(buf_cstr(&stale), SIX_HASH);
	T_EQ_INT(verdict(d, pw, "blf@example.test", "blf-pw", &why, &stale),
	    AUTH_VERDICT_OK);
	T_EQ_STR(buf_cstr(&stale), BLF_HASH);

	T_EQ_INT(verdict(d, pw, "alice@example.test", "pw-bob", &why, &stale),
	    AUTH_VERDICT_FAIL);
	T_EQ_STR(buf_cstr(&why), "wrong password");
	T_EQ_INT(stale.len, 0);
	T_EQ_INT(verdict(d, pw, "six@example.test", "six-pW", &why, &stale),
	    AUTH_VERDICT_FAIL);
	T_EQ_STR(buf_cstr(&why), "wrong password");
	T_EQ_INT(stale.len, 0);
	T_EQ_INT(verdict(d, pw, "nobody@example.test", "pw-alice", &why,
	    NULL), AUTH_VERDICT_FAIL);
	T_EQ_STR(buf_cstr(&why), "unknown user");
	T_EQ_INT(verdict(d, pw, "bob@example.test", "pw-alice", &why, NULL),
	    AUTH_VERDICT_FAIL);
	T_EQ_STR(buf_cstr(&why), "account disabled");
	T_EQ_INT(verdict(d, pw, "carol@example.test", "pw", &why, NULL),
	    AUTH_VERDICT_FAIL);
	T_EQ_STR(buf_cstr(&why), "no password set");
	T_EQ_INT(verdict(d, pw, "dave@example.test", "!locked", &why, NULL),
	    AUTH_VERDICT_FAIL);
	T_EQ_STR(buf_cstr(&why), "unusable password hash");
	T_EQ_INT(verdict(d, pw, "star@example.test", "*", &why, NULL),
	    AUTH_VERDICT_FAIL);
	T_EQ_STR(buf_cstr(&why), "unusable password hash");
	/* no password database at all: every account has no password */
	T_EQ_INT(verdict(d, NULL, "alice@example.test", "pw-alice", &why,
	    NULL), AUTH_VERDICT_FAIL);
	T_EQ_STR(buf_cstr(&why), "no password set");

	dir_passwd_close(&pw);
	dir_close(&d);
	buf_free(&why);
	buf_free(&stale);
	test_rm_tree(data_dir);
}

/*
 * The equal-work rule: every failing check costs one default-cost
 * yescrypt, whatever the account, its state and its hash scheme. Checked
 * on CPU time (medians of interleaved rounds): a check that skipped the
 * computation would cost a few percent of one.
 */
static void
test_equal_work(void)
{
	static const struct {
		const char *acct, *pw;
	} cases[] = {
		{"alice@example.test", "wrong"},	/* yescrypt: the unit */
		{"nobody@example.test", "wrong"},
		{"bob@example.test", "wrong"},		/* disabled */
		{"carol@example.test", "wrong"},	/* no password */
		{"dave@example.test", "wrong"},		/* "!locked" */
		{"star@example.test", "wrong"},		/* "*" */
		{"six@example.test", "wrong"},		/* SHA512-CRYPT */
		{"blf@example.test", "wrong"},	/* bcrypt cost 4 */
	};
	enum { N = sizeof(cases) / sizeof(cases[0]), ROUNDS = 7 };
	long long t[N][ROUNDS], med[N], t0;
	struct dir_passwd *pw;
	struct dir *d = setup_dir(&pw);
	struct buf why = BUF_INIT;

	for (int r = 0; r < ROUNDS; r++) {
		for (int i = 0; i < N; i++) {
			t0 = cpu_us();
			T_EQ_INT(verdict(d, pw, cases[i].acct, cases[i].pw,
			    &why, NULL), AUTH_VERDICT_FAIL);
			t[i][r] = cpu_us() - t0;
		}
	}
	for (int i = 0; i < N; i++) {
		qsort(t[i], ROUNDS, sizeof(t[i][0]), cmp_ll);
		med[i] = t[i][ROUNDS / 2];
		fprintf(stderr, "  %-22s %6lld us CPU (median of %d)\n",
		    cases[i].acct, med[i], ROUNDS);
	}
	T_ASSERT(med[0] >= 1000);	/* a real yescrypt, not a lookup */
	for (int i = 1; i < N; i++) {
		T_ASSERT(med[i] * 100 >= med[0] * 80);
		T_ASSERT(med[i] * 100 <= med[0] * 125);
	}
	dir_passwd_close(&pw);
	dir_close(&d);
	buf_free(&why);
	test_rm_tree(data_dir);
}

/* a successful login with a weaker hash gets it replaced, unless the
 * password changed meanwhile */
static void
test_upgrade(void)
{
	struct dir_passwd *pw;
	struct dir *d = setup_dir(&pw);
	struct buf why = BUF_INIT, stale = BUF_INIT, now = BUF_INIT;

	T_EQ_STR(auth_verify_scheme(SIX_HASH), "SHA512-CRYPT");
	T_EQ_STR(auth_verify_scheme(BLF_HASH), "bcrypt");
	T_ASSERT(!auth_verify_current(SIX_HASH));
	T_ASSERT(!auth_verify_current("$y$j7T$abc$def"));	/* cheaper */

	T_EQ_INT(verdict(d, pw, "six@example.test", "six-pw", &why, &stale),
	    AUTH_VERDICT_OK);
	T_EQ_INT(auth_verify_upgrade(pw, "six@example.test", "six-pw",
	    buf_cstr(&stale), &why), 1);
	T_EQ_INT(dir_passwd_lookup(pw, "six@example.test", &now, &why), 1);
	T_ASSERT(strncmp(buf_cstr(&now), "$y$", 3) == 0);
	T_ASSERT(auth_verify_current(buf_cstr(&now)));
	/* the same password still works, now without anything stale */
	T_EQ_INT(verdict(d, pw, "six@example.test", "six-pw", &why, &stale),
	    AUTH_VERDICT_OK);
	T_EQ_INT(stale.len, 0);
	T_EQ_INT(verdict(d, pw, "six@example.test", "six-pW", &why, NULL),
	    AUTH_VERDICT_FAIL);

	/* heraldctl set another hash between the check and the rehash */
	T_EQ_INT(verdict(d, pw, "blf@example.test", "blf-pw", &why, &stale),
	    AUTH_VERDICT_OK);
	T_EQ_INT(auth_verify_upgrade(pw, "blf@example.test", "blf-pw",
	    SIX_HASH, &why), 0);
	buf_reset(&now);
	T_EQ_INT(dir_passwd_lookup(pw, "blf@example.test", &now, &why), 1);
	T_EQ_STR(buf_cstr(&now), BLF_HASH);
	/* or deleted the user's password */
	T_EQ_INT(auth_verify_upgrade(pw, "carol@example.test", "x",
	    SIX_HASH, &why), 0);

	dir_passwd_close(&pw);
	dir_close(&d);
	buf_free(&why);
	buf_free(&stale);
	buf_free(&now);
	test_rm_tree(data_dir);
}

static const struct test_case cases[] = {
	{"canonical login names", test_canonical},
	{"yescrypt, SHA512-CRYPT, bcrypt", test_schemes},
	{"unusable hashes", test_unusable},
	{"account check", test_account},
	{"equal work whatever the account", test_equal_work},
	{"weaker hashes replaced at login", test_upgrade},
	{0},
};

int
main(void)
{
	msg_init("auth_verify_test", LOG_DEST_STDERR);
	return test_run(cases);
}
