/*
 * ctl_user_import_test - Dovecot passwd-file lines as "heraldctl user
 * import" reads them: schemes kept, hashed or refused, domains, nologin.
 */
#include <crypt.h>
#include <string.h>

#include "base/buf.h"
#include "base/test.h"
#include "ctl.h"

/* make_hash - a real crypt(3) hash of "pw" with a fresh salt of prefix */
static void
make_hash(const char *prefix, struct buf *out)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data data;

	T_ASSERT(crypt_gensalt_rn(prefix, 0, NULL, 0, salt,
	    (int)sizeof(salt)) != NULL);
	memset(&data, 0, sizeof(data));
	T_ASSERT(crypt_rn("pw", salt, &data, (int)sizeof(data)) != NULL);
	buf_set(out, data.output);
}

/* parse - run one line; returns the result, fills the outputs */
static int
parse(const char *line, const char *domain, struct buf *addr,
    struct buf *hash, bool *disabled, struct buf *why)
{
	buf_reset(why);
	return ctl_import_parse_line(line, domain, addr, hash, disabled, why);
}

/* verifies - hash checks "pw" */
static bool
verifies(const char *hash)
{
	struct crypt_data data;
	const char *out;

	memset(&data, 0, sizeof(data));
	out = crypt_rn("pw", hash, &data, (int)sizeof(data));
	return out != NULL && strcmp(out, hash) == 0;
}

static void
test_import_schemes_kept(void)
{
	static const char *const prefixes[] = {"$6$", "$2b$", "$y$", NULL};
	static const char *const schemes[] = {"{SHA512-CRYPT}", "{BLF-CRYPT}",
	    "{CRYPT}", NULL};
	struct buf addr = BUF_INIT, hash = BUF_INIT, why = BUF_INIT;
	struct buf h = BUF_INIT, line = BUF_INIT;
	bool off;

	for (int i = 0; prefixes[i] != NULL; i++) {
		make_hash(prefixes[i], &h);
		/* with its scheme name, and bare */
		buf_reset(&line);
		buf_printf(&line, "Alice@Example.Test:%s%s::::::", schemes[i],
		    buf_cstr(&h));
		T_EQ_INT(parse(buf_cstr(&line), NULL, &addr, &hash, &off,
		    &why), 1);
		T_EQ_STR(buf_cstr(&addr), "alice@example.test");
		T_EQ_STR(buf_cstr(&hash), buf_cstr(&h));
		T_EQ_INT(off, 0);
		buf_reset(&line);
		buf_printf(&line, "bob:%s", buf_cstr(&h));
		T_EQ_INT(parse(buf_cstr(&line), "example.test", &addr, &hash,
		    &off, &why), 1);
		T_EQ_STR(buf_cstr(&addr), "bob@example.test");
		T_ASSERT(verifies(buf_cstr(&hash)));
	}
	buf_free(&addr);
	buf_free(&hash);
	buf_free(&why);
	buf_free(&h);
	buf_free(&line);
}

static void
test_import_plain_is_hashed(void)
{
	struct buf addr = BUF_INIT, hash = BUF_INIT, why = BUF_INIT;
	bool off;

	T_EQ_INT(parse("carol@example.test:{PLAIN}pw:1000:1000::/home/c::",
	    NULL, &addr, &hash, &off, &why), 1);
	T_ASSERT(strncmp(buf_cstr(&hash), "$y$", 3) == 0);
	T_ASSERT(verifies(buf_cstr(&hash)));
	T_EQ_INT(parse("carol@example.test:{plain}", NULL, &addr, &hash, &off,
	    &why), -1);
	buf_free(&addr);
	buf_free(&hash);
	buf_free(&why);
}

static void
test_import_refused(void)
{
	static const char *const bad[] = {
		"dave@example.test:{MD5-CRYPT}$1$abcdefgh$0123456789012345678901",
		"dave@example.test:$1$abcdefgh$0123456789012345678901",
		"dave@example.test:{SSHA}c2FsdHNhbHQ=",
		"dave@example.test:abDEs1t9Yxq7g",	/* DES */
		"dave@example.test:{SHA512-CRYPT}$6$broken",
		"dave@example.test:{SHA512-CRYPT",
		"dave@example.test:",
		"dave@example.test",
		"dave:{PLAIN}pw",			/* no domain */
		"da/ve@example.test:{PLAIN}pw",		/* unsafe local part */
		"@example.test:{PLAIN}pw",
		NULL,
	};
	struct buf addr = BUF_INIT, hash = BUF_INIT, why = BUF_INIT;
	bool off;

	for (int i = 0; bad[i] != NULL; i++) {
		T_EQ_INT(parse(bad[i], NULL, &addr, &hash, &off, &why), -1);
		T_ASSERT(why.len > 0);
	}
	buf_free(&addr);
	buf_free(&hash);
	buf_free(&why);
}

static void
test_import_comments_and_nologin(void)
{
	struct buf addr = BUF_INIT, hash = BUF_INIT, why = BUF_INIT;
	bool off;

	T_EQ_INT(parse("", NULL, &addr, &hash, &off, &why), 0);
	T_EQ_INT(parse("   # a comment: with colons", NULL, &addr, &hash,
	    &off, &why), 0);
	T_EQ_INT(parse("erin@example.test:{PLAIN}pw::::::nologin", NULL,
	    &addr, &hash, &off, &why), 1);
	T_EQ_INT(off, 1);
	T_EQ_INT(parse("erin@example.test:{PLAIN}pw::::::userdb_quota_rule="
	    "*:storage=1G userdb_nologin=y", NULL, &addr, &hash, &off, &why),
	    1);
	T_EQ_INT(off, 1);
	T_EQ_INT(parse("erin@example.test:{PLAIN}pw::::::allow_nets=local",
	    NULL, &addr, &hash, &off, &why), 1);
	T_EQ_INT(off, 0);
	/* "nologin" in the gecos field is no flag */
	T_EQ_INT(parse("erin@example.test:{PLAIN}pw:::nologin:::", NULL,
	    &addr, &hash, &off, &why), 1);
	T_EQ_INT(off, 0);
	buf_free(&addr);
	buf_free(&hash);
	buf_free(&why);
}

static const struct test_case cases[] = {
	{"SHA512-CRYPT, bcrypt and yescrypt kept", test_import_schemes_kept},
	{"PLAIN is hashed with yescrypt", test_import_plain_is_hashed},
	{"weak schemes and bad lines refused", test_import_refused},
	{"comments, blank lines and nologin", test_import_comments_and_nologin},
	{NULL, NULL},
};

int
main(void)
{
	return test_run(cases);
}
