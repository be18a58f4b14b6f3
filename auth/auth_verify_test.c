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

/* now_ms - monotonic milliseconds */
static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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

static char data_dir[] = "/tmp/auth_verify_test.XXXXXX";

/* setup_dir - domain example.test; alice (yescrypt), six ($6$), blf
 * ($2b$), bob disabled, carol without a password, dave unusable hash */
static struct dir *
setup_dir(void)
{
	struct buf why = BUF_INIT;
	struct dir *d;
	char *h = make_hash("$y$", "pw-alice");

	if (mkdtemp(data_dir) == NULL)
		msg_fatal("mkdtemp: %m");
	if (dir_open(data_dir, DIR_WRITE, &d, &why) < 0 ||
	    dir_domain_add(d, "example.test", &why) < 0)
		msg_fatal("%s", buf_cstr(&why));
	static const char *const users[] = {"alice", "six", "blf", "bob",
	    "carol", "dave"};
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
	    dir_passwd_set(data_dir, "dave@example.test", "!locked", &why) < 0)
		msg_fatal("%s", buf_cstr(&why));
	dir_close(&d);
	free(h);
	if (dir_open(data_dir, DIR_READ, &d, &why) < 0)
		msg_fatal("%s", buf_cstr(&why));
	buf_free(&why);
	return d;
}

/* verdict - auth_verify_account with the reason in why */
static enum auth_verdict
verdict(struct dir *d, const char *acct, const char *pw, struct buf *why)
{
	buf_reset(why);
	return auth_verify_account(d, data_dir, acct, pw, why);
}

static void
test_account(void)
{
	struct dir *d = setup_dir();
	struct buf why = BUF_INIT;
	long long t0, t_wrong, t_unknown, t_disabled, t_nopw;

	T_EQ_INT(verdict(d, "alice@example.test", "pw-alice", &why),
	    AUTH_VERDICT_OK);
	T_EQ_INT(verdict(d, "six@example.test", "six-pw", &why),
	    AUTH_VERDICT_OK);
	T_EQ_INT(verdict(d, "blf@example.test", "blf-pw", &why),
	    AUTH_VERDICT_OK);

	t0 = now_ms();
	T_EQ_INT(verdict(d, "alice@example.test", "pw-bob", &why),
	    AUTH_VERDICT_FAIL);
	t_wrong = now_ms() - t0;
	T_EQ_STR(buf_cstr(&why), "wrong password");

	t0 = now_ms();
	T_EQ_INT(verdict(d, "nobody@example.test", "pw-alice", &why),
	    AUTH_VERDICT_FAIL);
	t_unknown = now_ms() - t0;
	T_EQ_STR(buf_cstr(&why), "unknown user");

	t0 = now_ms();
	T_EQ_INT(verdict(d, "bob@example.test", "pw-alice", &why),
	    AUTH_VERDICT_FAIL);
	t_disabled = now_ms() - t0;
	T_EQ_STR(buf_cstr(&why), "account disabled");

	t0 = now_ms();
	T_EQ_INT(verdict(d, "carol@example.test", "pw", &why),
	    AUTH_VERDICT_FAIL);
	t_nopw = now_ms() - t0;
	T_EQ_STR(buf_cstr(&why), "no password set");

	T_EQ_INT(verdict(d, "dave@example.test", "!locked", &why),
	    AUTH_VERDICT_FAIL);
	T_EQ_STR(buf_cstr(&why), "unusable password hash");

	/* every failure costs a yescrypt computation (~tens of ms), not a
	 * bare lookup (well under one ms) */
	fprintf(stderr, "  wrong %lld ms, unknown %lld ms, disabled %lld ms, "
	    "no password %lld ms\n", t_wrong, t_unknown, t_disabled, t_nopw);
	T_ASSERT(t_wrong >= 5);
	T_ASSERT(t_unknown * 3 >= t_wrong);
	T_ASSERT(t_disabled * 3 >= t_wrong);
	T_ASSERT(t_nopw * 3 >= t_wrong);

	dir_close(&d);
	buf_free(&why);
	test_rm_tree(data_dir);
}

static const struct test_case cases[] = {
	{"canonical login names", test_canonical},
	{"yescrypt, SHA512-CRYPT, bcrypt", test_schemes},
	{"unusable hashes", test_unusable},
	{"account check and its timing", test_account},
	{0},
};

int
main(void)
{
	msg_init("auth_verify_test", LOG_DEST_STDERR);
	return test_run(cases);
}
