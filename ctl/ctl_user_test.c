/*
 * ctl_user_test - what "heraldctl user add" and "user passwd" store in
 * the password database: a crypt(3) yescrypt hash ("$y$...") of the
 * password read from standard input, which verifies it, and never the
 * password itself. Read back through dir.h, as authd reads it, so a
 * plaintext store is caught here and not only when a login fails.
 */
#include <crypt.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/test.h"
#include "mail/dir.h"
#include "mail/params.h"
#include "ctl.h"

static char test_dir[] = "/tmp/ctl_user_test.XXXXXX";

static const struct ctl_opt user_opts[] = {
	{"quota", true},
	{NULL, false},
};

/* with_stdin - run fn with text as standard input (a pipe, as when a
 * script pipes the password in); -1 if the pipe cannot be set up */
static int
with_stdin(const char *text, int (*fn)(struct ctl *, const struct ctl_args *),
    const struct ctl_args *a)
{
	struct ctl ctl = {NULL, NULL, false};
	int p[2], saved, rc;
	size_t n = strlen(text);

	if (pipe(p) < 0)
		return -1;
	if (write(p[1], text, n) != (ssize_t)n) {
		(void)close(p[0]);
		(void)close(p[1]);
		return -1;
	}
	(void)close(p[1]);
	fflush(stdout);
	if ((saved = dup(STDIN_FILENO)) < 0 || dup2(p[0], STDIN_FILENO) < 0) {
		(void)close(p[0]);
		return -1;
	}
	(void)close(p[0]);
	rc = fn(&ctl, a);
	fflush(stdout);
	(void)dup2(saved, STDIN_FILENO);
	(void)close(saved);
	return rc;
}

/* verifies - crypt(3) of password with hash's salt gives hash */
static bool
verifies(const char *password, const char *hash)
{
	struct crypt_data data;
	const char *out;

	memset(&data, 0, sizeof(data));
	out = crypt_rn(password, hash, &data, (int)sizeof(data));
	return out != NULL && strcmp(out, hash) == 0;
}

/* stored - the hash the password database holds for addr */
static int
stored(const char *addr, struct buf *hash)
{
	struct buf why = BUF_INIT;
	int r;

	buf_reset(hash);
	r = dir_passwd_get(var_data_directory, addr, hash, &why);
	if (r < 0)
		fprintf(stderr, "  dir_passwd_get: %s\n", buf_cstr(&why));
	buf_free(&why);
	return r;
}

/* check_hash - hash is yescrypt of password, and not password */
static void
check_hash(const char *hash, const char *password)
{
	T_ASSERT(strncmp(hash, "$y$", 3) == 0);
	T_ASSERT(strcmp(hash, password) != 0);
	T_ASSERT(strstr(hash, password) == NULL);
	T_ASSERT(verifies(password, hash));
	T_ASSERT(!verifies("not-the-password", hash));
}

static void
test_user_add_stores_a_hash(void)
{
	static const char pw[] = "Plain-Text-Secret-42";
	struct ctl_args a;
	struct buf hash = BUF_INIT;

	memset(&a, 0, sizeof(a));
	a.opts = user_opts;
	a.npos = 1;
	a.pos[0] = "Alice@Example.Test";
	T_EQ_INT(with_stdin("Plain-Text-Secret-42\n", ctl_user_add, &a),
	    CTL_EXIT_OK);
	T_EQ_INT(stored("alice@example.test", &hash), 1);
	check_hash(buf_cstr(&hash), pw);
	/* the same password again gets a fresh salt */
	a.pos[0] = "bob@example.test";
	T_EQ_INT(with_stdin("Plain-Text-Secret-42\r\n", ctl_user_add, &a),
	    CTL_EXIT_OK);
	{
		struct buf bob = BUF_INIT;

		T_EQ_INT(stored("bob@example.test", &bob), 1);
		check_hash(buf_cstr(&bob), pw);
		T_ASSERT(strcmp(buf_cstr(&bob), buf_cstr(&hash)) != 0);
		buf_free(&bob);
	}
	buf_free(&hash);
}

static void
test_user_passwd_stores_a_hash(void)
{
	static const char pw[] = "another plain secret";
	struct ctl_args a;
	struct buf before = BUF_INIT, after = BUF_INIT;

	memset(&a, 0, sizeof(a));
	a.opts = user_opts;
	a.npos = 1;
	a.pos[0] = "carol@example.test";
	T_EQ_INT(with_stdin("first-password\n", ctl_user_add, &a),
	    CTL_EXIT_OK);
	T_EQ_INT(stored("carol@example.test", &before), 1);
	check_hash(buf_cstr(&before), "first-password");
	T_EQ_INT(with_stdin("another plain secret\n", ctl_user_passwd, &a),
	    CTL_EXIT_OK);
	T_EQ_INT(stored("carol@example.test", &after), 1);
	check_hash(buf_cstr(&after), pw);
	T_ASSERT(!verifies("first-password", buf_cstr(&after)));
	buf_free(&before);
	buf_free(&after);
}

static void
test_refused_password_stores_nothing(void)
{
	struct ctl_args a;
	struct buf hash = BUF_INIT;

	memset(&a, 0, sizeof(a));
	a.opts = user_opts;
	a.npos = 1;
	a.pos[0] = "dave@example.test";
	T_EQ_INT(with_stdin("\n", ctl_user_add, &a), CTL_EXIT_FAIL);
	T_EQ_INT(stored("dave@example.test", &hash), 0);
	buf_free(&hash);
}

static const struct test_case cases[] = {
	{"user add stores a yescrypt hash", test_user_add_stores_a_hash},
	{"user passwd stores a yescrypt hash", test_user_passwd_stores_a_hash},
	{"an empty password stores nothing",
	    test_refused_password_stores_nothing},
	{0},
};

/* setup - settings pointing at a fresh data folder with example.test */
static int
setup(void)
{
	struct buf why = BUF_INIT, conf = BUF_INIT, path = BUF_INIT;
	struct dir *d = NULL;
	int rc = -1;

	buf_printf(&path, "%s/herald.conf", test_dir);
	buf_printf(&conf, "data_directory = %s/data\n", test_dir);
	if (params_load_text(buf_cstr(&path), conf.data, conf.len, &why) < 0)
		goto out;
	if (mkdir(var_data_directory, 0700) < 0) {
		buf_set(&why, "mkdir data");
		goto out;
	}
	/* closed again before the commands open it: LMDB forbids opening
	 * one environment twice in a process */
	if (dir_open(var_data_directory, DIR_WRITE, &d, &why) < 0 ||
	    dir_domain_add(d, "example.test", &why) < 0)
		goto out;
	rc = 0;
out:
	if (rc < 0)
		fprintf(stderr, "setup: %s\n", buf_cstr(&why));
	dir_close(&d);
	buf_free(&why);
	buf_free(&conf);
	buf_free(&path);
	return rc;
}

int
main(void)
{
	int rc = 1;

	if (mkdtemp(test_dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	if (setup() == 0)
		rc = test_run(cases);
	test_rm_tree(test_dir);
	return rc;
}
