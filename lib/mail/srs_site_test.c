/*
 * srs_site_test - the SRS secret file (made 0600 once, kept, read back,
 * a short one refused, a crash's leftover link removed), the SRS domain
 * default, and which senders are rewritten: not the null sender, not a
 * hosted domain; others are, and come back through srs_site_reverse
 * only at our SRS domain.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/mem.h"
#include "base/test.h"
#include "mail/dir.h"
#include "mail/params.h"
#include "mail/srs.h"
#include "mail/srs_site.h"

static char tmpdir[] = "/tmp/herald-srs-site-test-XXXXXX";
static char secret[300], secret2[300];
static struct dir *dir;

/* must - a setup step that has to work */
static void
must(int r, struct buf *why, const char *what)
{
	if (r < 0) {
		fprintf(stderr, "setup: %s: %s\n", what, buf_cstr(why));
		test_rm_tree(tmpdir);
		exit(1);
	}
}

static void
setup(void)
{
	struct buf why = BUF_INIT;
	struct dir *w = NULL;

	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
	must(dir_open(tmpdir, DIR_WRITE, &w, &why), &why, "dir_open");
	must(dir_domain_add(w, "b.test", &why), &why, "domain");
	must(dir_domain_add(w, "a.test", &why), &why, "domain");
	dir_close(&w);
	must(dir_open(tmpdir, DIR_READ, &dir, &why), &why, "dir_open read");
	buf_free(&why);
	cfg_defaults(params_table);
	snprintf(secret, sizeof(secret), "%s/srs.secret", tmpdir);
	snprintf(secret2, sizeof(secret2), "%s/other.secret", tmpdir);
	x_free(&var_srs_secret_file);
	var_srs_secret_file = xstrdup(secret);
	x_free(&var_myhostname);
	var_myhostname = xstrdup("mx.a.test");
}

/* slurp - the text of path, "" if unreadable */
static const char *
slurp(const char *path)
{
	static char text[256];
	int fd = open(path, O_RDONLY);
	ssize_t n = fd < 0 ? 0 : read(fd, text, sizeof(text) - 1);

	if (fd >= 0)
		close(fd);
	text[n > 0 ? n : 0] = '\0';
	return text;
}

static void
test_setup_makes_and_keeps(void)
{
	struct buf why = BUF_INIT;
	struct stat st;
	char first[256], tmp[320];

	T_EQ_INT(srs_site_setup(secret, (uid_t)-1, (gid_t)-1, &why), 0);
	T_EQ_INT(stat(secret, &st), 0);
	T_EQ_INT((int)(st.st_mode & 07777), 0600);
	snprintf(first, sizeof(first), "%s", slurp(secret));
	T_EQ_INT((int)strlen(first), 65);	/* 64 hex digits and \n */
	/* a second start keeps it, fixes its mode */
	T_EQ_INT(chmod(secret, 0644), 0);
	T_EQ_INT(srs_site_setup(secret, (uid_t)-1, (gid_t)-1, &why), 0);
	T_EQ_STR(slurp(secret), first);
	T_EQ_INT(stat(secret, &st), 0);
	T_EQ_INT((int)(st.st_mode & 07777), 0600);
	/* a crash between link and unlink left a second link */
	snprintf(tmp, sizeof(tmp), "%s.new", secret);
	T_EQ_INT(link(secret, tmp), 0);
	T_EQ_INT(srs_site_setup(secret, (uid_t)-1, (gid_t)-1, &why), 0);
	T_ASSERT(access(tmp, F_OK) < 0);
	/* another file, another secret */
	T_EQ_INT(srs_site_setup(secret2, (uid_t)-1, (gid_t)-1, &why), 0);
	T_ASSERT(strcmp(slurp(secret2), first) != 0);
	buf_free(&why);
}

static void
test_domain(void)
{
	struct buf d = BUF_INIT;

	/* mx.a.test is not hosted: the first hosted domain */
	srs_site_domain(dir, &d);
	T_EQ_STR(d.data, "a.test");
	x_free(&var_mydomain);
	var_mydomain = xstrdup("B.test");
	srs_site_domain(dir, &d);
	T_EQ_STR(d.data, "b.test");
	x_free(&var_srs_domain);
	var_srs_domain = xstrdup("srs.a.test");
	srs_site_domain(dir, &d);
	T_EQ_STR(d.data, "srs.a.test");
	x_free(&var_srs_domain);
	var_srs_domain = xstrdup("");
	x_free(&var_mydomain);
	var_mydomain = xstrdup("");
	buf_free(&d);
}

static void
test_which_senders(void)
{
	struct buf out = BUF_INIT, back = BUF_INIT, why = BUF_INIT;
	time_t now = 1700000000;
	int temp;

	T_EQ_INT(srs_site_setup(secret, (uid_t)-1, (gid_t)-1, &why), 0);
	T_EQ_INT(srs_site_forward(dir, now, "", &out, &why), 0);
	T_EQ_INT(srs_site_forward(dir, now, "alice@a.test", &out, &why), 0);
	T_EQ_INT(srs_site_forward(dir, now, "bob@B.TEST", &out, &why), 0);
	T_EQ_INT(out.len, 0);
	T_EQ_INT(srs_site_forward(dir, now, "x@c.test", &out, &why), 1);
	T_ASSERT(strncmp(out.data, "SRS0=", 5) == 0);
	T_ASSERT(strstr(out.data, "=c.test=x@a.test") != NULL);
	T_EQ_INT(srs_site_reverse(dir, now, out.data, &back, &temp, &why), 1);
	T_EQ_STR(back.data, "x@c.test");
	/* the same local part at another domain is not ours to take */
	*strrchr(out.data, '@') = '\0';
	buf_printf(&back, "%s@b.test", out.data);
	T_EQ_INT(srs_site_reverse(dir, now, back.data, &out, &temp, &why), 0);
	T_EQ_INT(srs_site_reverse(dir, now, "carol@a.test", &out, &temp,
	    &why), 0);
	buf_free(&out);
	buf_free(&back);
	buf_free(&why);
}

/* test_bad_secret - first, while this process has loaded no key (a
 * loaded key is kept) */
static void
test_bad_secret(void)
{
	struct buf out = BUF_INIT, why = BUF_INIT;
	char shortf[320];
	int fd, temp;

	snprintf(shortf, sizeof(shortf), "%s/short.secret", tmpdir);
	fd = open(shortf, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	T_ASSERT(fd >= 0);
	T_EQ_INT((int)write(fd, "tooshort\n", 9), 9);
	close(fd);
	x_free(&var_srs_secret_file);
	var_srs_secret_file = xstrdup(shortf);
	T_EQ_INT(srs_site_forward(dir, 0, "x@c.test", &out, &why), -1);
	T_ASSERT(strstr(why.data, "shorter") != NULL);
	buf_reset(&why);
	T_EQ_INT(srs_site_reverse(dir, 0, "SRS0=abcd=AA=c.test=x@a.test",
	    &out, &temp, &why), -1);
	T_EQ_INT(temp, 1);
	/* missing */
	x_free(&var_srs_secret_file);
	var_srs_secret_file = xstrdup(secret);
	buf_reset(&why);
	T_EQ_INT(srs_site_forward(dir, 0, "x@c.test", &out, &why), -1);
	T_ASSERT(strstr(why.data, "No such file") != NULL);
	buf_free(&out);
	buf_free(&why);
}

static const struct test_case cases[] = {
	{"a short or missing secret is refused", test_bad_secret},
	{"setup makes the secret once, 0600", test_setup_makes_and_keeps},
	{"SRS domain default", test_domain},
	{"which senders are rewritten", test_which_senders},
	{0},
};

int
main(void)
{
	int r;

	setup();
	r = test_run(cases);
	dir_close(&dir);
	test_rm_tree(tmpdir);
	return r;
}
