/*
 * dir_test - the LMDB directory in a temp dir: domains, users, aliases,
 * recipient checks, a second process seeing commits, passwords (also
 * through the handle authd keeps).
 */
#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/test.h"
#include "mail/dir.h"

static char tmpdir[] = "/tmp/herald-dir-test-XXXXXX";
static char data_dir[256];
static int case_no;

/* fresh - a new empty data dir per case */
static const char *
fresh(void)
{
	snprintf(data_dir, sizeof(data_dir), "%s/data%d", tmpdir, ++case_no);
	return data_dir;
}

/* open_w - open the directory for writing or die */
static struct dir *
open_w(void)
{
	struct buf why = BUF_INIT;
	struct dir *d = NULL;

	if (dir_open(data_dir, DIR_WRITE, &d, &why) < 0) {
		fprintf(stderr, "dir_open: %s\n", why.data);
		exit(1);
	}
	buf_free(&why);
	return d;
}

/* collect - listing callbacks append "key;" or "key=value;" */
static void
list_domain(const char *domain, void *ctx)
{
	buf_printf(ctx, "%s;", domain);
}

static void
list_user(const char *addr, const struct dir_user *u, void *ctx)
{
	buf_printf(ctx, "%s=%lld,%d;", addr, u->quota, u->enabled);
}

static void
list_alias(const char *key, const char *targets, void *ctx)
{
	buf_printf(ctx, "%s=%s;", key, targets);
}

static void
test_domains(void)
{
	struct buf why = BUF_INIT, out = BUF_INIT;
	struct dir *d;
	struct stat st;
	char path[512];

	fresh();
	d = open_w();
	T_EQ_INT(dir_domain_exists(d, "example.org", &why), 0);
	T_EQ_INT(dir_domain_add(d, "Example.ORG", &why), 0);
	T_EQ_INT(dir_domain_add(d, "b.example", &why), 0);
	T_EQ_INT(dir_domain_exists(d, "example.org", &why), 1);
	T_EQ_INT(dir_domain_exists(d, "EXAMPLE.org", &why), 1);
	T_EQ_INT(dir_domain_add(d, "example.org", &why), -1);
	T_EQ_STR(why.data, "domain example.org exists");
	buf_reset(&why);
	T_EQ_INT(dir_domain_add(d, "", &why), -1);
	T_EQ_INT(dir_domain_add(d, "a b", &why), -1);
	T_EQ_INT(dir_domain_add(d, "x@y", &why), -1);
	T_EQ_INT(dir_domain_list(d, list_domain, &out, &why), 0);
	T_EQ_STR(out.data, "b.example;example.org;");
	T_EQ_INT(dir_domain_del(d, "b.example", false, &why), 0);
	T_EQ_INT(dir_domain_exists(d, "b.example", &why), 0);
	buf_reset(&why);
	T_EQ_INT(dir_domain_del(d, "b.example", false, &why), -1);
	T_EQ_STR(why.data, "domain b.example does not exist");
	buf_reset(&out);
	T_EQ_INT(dir_domain_list(d, list_domain, &out, &why), 0);
	T_EQ_STR(out.data, "example.org;");
	dir_close(&d);
	T_ASSERT(d == NULL);

	snprintf(path, sizeof(path), "%s/directory", data_dir);
	T_EQ_INT(stat(path, &st), 0);
	T_EQ_INT(st.st_mode & 0777, 0750);
	snprintf(path, sizeof(path), "%s/directory/lock.mdb", data_dir);
	T_EQ_INT(stat(path, &st), 0);
	T_EQ_INT(st.st_mode & 0777, 0660);
	buf_free(&why);
	buf_free(&out);
}

static void
test_users(void)
{
	struct buf why = BUF_INIT, out = BUF_INIT;
	struct dir_user u;
	struct dir *d;
	long long before = (long long)time(NULL);

	fresh();
	d = open_w();
	T_EQ_INT(dir_user_add(d, "alice@example.org", -1, &why), -1);
	T_EQ_STR(why.data, "domain example.org is not hosted here");
	T_EQ_INT(dir_domain_add(d, "example.org", &why), 0);
	T_EQ_INT(dir_domain_add(d, "other.test", &why), 0);
	buf_reset(&why);
	T_EQ_INT(dir_user_add(d, "Alice@Example.org", -1, &why), 0);
	T_EQ_INT(dir_user_add(d, "bob@example.org", 1000, &why), 0);
	T_EQ_INT(dir_user_add(d, "carol@other.test", 0, &why), 0);
	T_EQ_INT(dir_user_add(d, "alice@example.org", 5, &why), -1);
	T_EQ_STR(why.data, "user alice@example.org exists");
	T_EQ_INT(dir_user_add(d, "@example.org", 5, &why), -1);
	T_EQ_INT(dir_user_add(d, "noat", 5, &why), -1);
	T_EQ_INT(dir_user_add(d, "x@example.org", -2, &why), -1);

	T_EQ_INT(dir_user_get(d, "ALICE@example.org", &u, &why), 1);
	T_EQ_INT(u.quota, -1);
	T_EQ_INT(u.enabled, 1);
	T_ASSERT(u.created >= before && u.created <= (long long)time(NULL));
	T_EQ_INT(dir_user_get(d, "nobody@example.org", &u, &why), 0);

	T_EQ_INT(dir_user_set_quota(d, "alice@example.org", 4096, &why), 0);
	T_EQ_INT(dir_user_set_enabled(d, "alice@example.org", false, &why), 0);
	T_EQ_INT(dir_user_get(d, "alice@example.org", &u, &why), 1);
	T_EQ_INT(u.quota, 4096);
	T_EQ_INT(u.enabled, 0);
	T_EQ_INT(dir_user_set_quota(d, "zed@example.org", 1, &why), -1);
	T_EQ_INT(dir_user_set_enabled(d, "zed@example.org", true, &why), -1);

	T_EQ_INT(dir_user_list(d, NULL, list_user, &out, &why), 0);
	T_EQ_STR(out.data, "alice@example.org=4096,0;bob@example.org=1000,1;"
	    "carol@other.test=0,1;");
	buf_reset(&out);
	T_EQ_INT(dir_user_list(d, "Other.Test", list_user, &out, &why), 0);
	T_EQ_STR(out.data, "carol@other.test=0,1;");

	T_EQ_INT(dir_user_del(d, "bob@example.org", &why), 0);
	T_EQ_INT(dir_user_get(d, "bob@example.org", &u, &why), 0);
	buf_reset(&why);
	T_EQ_INT(dir_user_del(d, "bob@example.org", &why), -1);
	T_EQ_STR(why.data, "user bob@example.org does not exist");
	dir_close(&d);
	buf_free(&why);
	buf_free(&out);
}

static void
test_aliases(void)
{
	struct buf why = BUF_INIT, out = BUF_INIT;
	struct dir *d;

	fresh();
	d = open_w();
	T_EQ_INT(dir_alias_add(d, "info@example.org", "a@x.test", &why), -1);
	T_EQ_STR(why.data, "domain example.org is not hosted here");
	T_EQ_INT(dir_domain_add(d, "example.org", &why), 0);
	T_EQ_INT(dir_domain_add(d, "z.test", &why), 0);
	T_EQ_INT(dir_alias_add(d, "Info@example.org", "a@x.test", &why), 0);
	T_EQ_INT(dir_alias_add(d, "info@example.org", "b@x.test", &why), 0);
	T_EQ_INT(dir_alias_add(d, "info@example.org", "a@x.test", &why), 0);
	T_EQ_INT(dir_alias_add(d, "info@example.org", "c@x.test", &why), 0);
	T_EQ_INT(dir_alias_add(d, "@example.org", "catch@x.test", &why), 0);
	T_EQ_INT(dir_alias_add(d, "p@z.test", "q@z.test", &why), 0);
	T_EQ_INT(dir_alias_add(d, "info@example.org", "bad target", &why), -1);
	T_EQ_INT(dir_alias_add(d, "info@example.org", "", &why), -1);
	T_EQ_INT(dir_alias_add(d, "info@example.org", "nodomain", &why), -1);

	T_EQ_INT(dir_alias_get(d, "INFO@example.org", &out, &why), 1);
	T_EQ_STR(out.data, "a@x.test\nb@x.test\nc@x.test");
	buf_reset(&out);
	T_EQ_INT(dir_alias_get(d, "none@example.org", &out, &why), 0);
	T_EQ_STR(out.data, "");

	T_EQ_INT(dir_alias_list(d, "example.org", list_alias, &out, &why), 0);
	T_EQ_STR(out.data, "@example.org=catch@x.test;"
	    "info@example.org=a@x.test\nb@x.test\nc@x.test;");

	/* remove from the middle, the end, the start */
	T_EQ_INT(dir_alias_del(d, "info@example.org", "b@x.test", &why), 0);
	buf_reset(&out);
	T_EQ_INT(dir_alias_get(d, "info@example.org", &out, &why), 1);
	T_EQ_STR(out.data, "a@x.test\nc@x.test");
	T_EQ_INT(dir_alias_del(d, "info@example.org", "c@x.test", &why), 0);
	buf_reset(&out);
	T_EQ_INT(dir_alias_get(d, "info@example.org", &out, &why), 1);
	T_EQ_STR(out.data, "a@x.test");
	T_EQ_INT(dir_alias_add(d, "info@example.org", "d@x.test", &why), 0);
	T_EQ_INT(dir_alias_del(d, "info@example.org", "A@x.test", &why), 0);
	buf_reset(&out);
	T_EQ_INT(dir_alias_get(d, "info@example.org", &out, &why), 1);
	T_EQ_STR(out.data, "d@x.test");
	buf_reset(&why);
	T_EQ_INT(dir_alias_del(d, "info@example.org", "zz@x.test", &why), -1);
	T_EQ_STR(why.data, "zz@x.test is not a target of alias "
	    "info@example.org");
	/* the last target removed: the alias is gone */
	T_EQ_INT(dir_alias_del(d, "info@example.org", "d@x.test", &why), 0);
	T_EQ_INT(dir_alias_get(d, "info@example.org", &out, &why), 0);
	T_EQ_INT(dir_alias_del(d, "@example.org", NULL, &why), 0);
	T_EQ_INT(dir_alias_del(d, "@example.org", NULL, &why), -1);
	buf_reset(&out);
	T_EQ_INT(dir_alias_list(d, NULL, list_alias, &out, &why), 0);
	T_EQ_STR(out.data, "p@z.test=q@z.test;");
	dir_close(&d);
	buf_free(&why);
	buf_free(&out);
}

static void
test_domain_del_force(void)
{
	struct buf why = BUF_INIT, out = BUF_INIT;
	struct dir_user u;
	struct dir *d;

	fresh();
	d = open_w();
	T_EQ_INT(dir_domain_add(d, "example.org", &why), 0);
	T_EQ_INT(dir_domain_add(d, "sub.example.org", &why), 0);
	T_EQ_INT(dir_user_add(d, "a@example.org", -1, &why), 0);
	T_EQ_INT(dir_user_add(d, "b@example.org", -1, &why), 0);
	T_EQ_INT(dir_user_add(d, "a@sub.example.org", -1, &why), 0);
	T_EQ_INT(dir_alias_add(d, "@example.org", "a@example.org", &why), 0);
	T_EQ_INT(dir_alias_add(d, "x@sub.example.org", "a@example.org",
	    &why), 0);
	buf_reset(&why);
	T_EQ_INT(dir_domain_del(d, "example.org", false, &why), -1);
	T_EQ_STR(why.data, "domain example.org still has 2 user(s) and 1 "
	    "alias(es)");
	T_EQ_INT(dir_domain_exists(d, "example.org", &why), 1);
	T_EQ_INT(dir_user_get(d, "a@example.org", &u, &why), 1);

	T_EQ_INT(dir_domain_del(d, "example.org", true, &why), 0);
	T_EQ_INT(dir_domain_exists(d, "example.org", &why), 0);
	T_EQ_INT(dir_user_list(d, NULL, list_user, &out, &why), 0);
	T_EQ_STR(out.data, "a@sub.example.org=-1,1;");
	buf_reset(&out);
	T_EQ_INT(dir_alias_list(d, NULL, list_alias, &out, &why), 0);
	T_EQ_STR(out.data, "x@sub.example.org=a@example.org;");
	dir_close(&d);
	buf_free(&why);
	buf_free(&out);
}

static void
test_rcpt_check(void)
{
	struct buf why = BUF_INIT;
	struct dir *d;

	fresh();
	d = open_w();
	T_EQ_INT(dir_domain_add(d, "example.org", &why), 0);
	T_EQ_INT(dir_domain_add(d, "catch.test", &why), 0);
	T_EQ_INT(dir_user_add(d, "alice@example.org", -1, &why), 0);
	T_EQ_INT(dir_user_add(d, "off@example.org", -1, &why), 0);
	T_EQ_INT(dir_user_set_enabled(d, "off@example.org", false, &why), 0);
	T_EQ_INT(dir_alias_add(d, "info@example.org", "alice@example.org",
	    &why), 0);
	T_EQ_INT(dir_alias_add(d, "@catch.test", "alice@example.org", &why),
	    0);

	T_EQ_INT(dir_rcpt_check(d, "alice@example.org", '+', &why),
	    DIR_RCPT_OK);
	T_EQ_INT(dir_rcpt_check(d, "ALICE@Example.Org", '+', &why),
	    DIR_RCPT_OK);
	T_EQ_INT(dir_rcpt_check(d, "alice+tag@example.org", '+', &why),
	    DIR_RCPT_OK);
	T_EQ_INT(dir_rcpt_check(d, "alice+tag@example.org", 0, &why),
	    DIR_RCPT_UNKNOWN);
	T_EQ_INT(dir_rcpt_check(d, "alice-tag@example.org", '-', &why),
	    DIR_RCPT_OK);
	T_EQ_INT(dir_rcpt_check(d, "+alice@example.org", '+', &why),
	    DIR_RCPT_UNKNOWN);
	T_EQ_INT(dir_rcpt_check(d, "info@example.org", '+', &why),
	    DIR_RCPT_OK);
	T_EQ_INT(dir_rcpt_check(d, "info+x@example.org", '+', &why),
	    DIR_RCPT_OK);
	T_EQ_INT(dir_rcpt_check(d, "off@example.org", '+', &why),
	    DIR_RCPT_DISABLED);
	T_EQ_INT(dir_rcpt_check(d, "off+x@example.org", '+', &why),
	    DIR_RCPT_DISABLED);
	T_EQ_INT(dir_rcpt_check(d, "nobody@example.org", '+', &why),
	    DIR_RCPT_UNKNOWN);
	T_EQ_INT(dir_rcpt_check(d, "anyone@catch.test", '+', &why),
	    DIR_RCPT_OK);
	T_EQ_INT(dir_rcpt_check(d, "x@remote.test", '+', &why),
	    DIR_RCPT_REMOTE);
	T_EQ_INT(dir_rcpt_check(d, "x@sub.example.org", '+', &why),
	    DIR_RCPT_REMOTE);
	T_EQ_INT(dir_rcpt_check(d, "@example.org", '+', &why),
	    DIR_RCPT_UNKNOWN);
	T_EQ_INT(dir_rcpt_check(d, "no-at-sign", '+', &why),
	    DIR_RCPT_UNKNOWN);
	/* a user beats the catch-all and the alias */
	T_EQ_INT(dir_alias_add(d, "@example.org", "alice@example.org", &why),
	    0);
	T_EQ_INT(dir_rcpt_check(d, "off@example.org", '+', &why),
	    DIR_RCPT_DISABLED);
	T_EQ_INT(dir_rcpt_check(d, "nobody@example.org", '+', &why),
	    DIR_RCPT_OK);
	dir_close(&d);
	buf_free(&why);
}

static void
test_readonly(void)
{
	struct buf why = BUF_INIT;
	struct dir *d = NULL, *r = NULL;

	fresh();
	/* nothing there yet: a reader cannot open */
	T_EQ_INT(dir_open(data_dir, DIR_READ, &r, &why), -1);
	T_ASSERT(r == NULL);
	T_ASSERT(strstr(why.data, "No such file") != NULL);
	d = open_w();
	T_EQ_INT(dir_domain_add(d, "example.org", &why), 0);
	dir_close(&d);
	buf_reset(&why);
	T_EQ_INT(dir_open(data_dir, DIR_READ, &r, &why), 0);
	T_EQ_INT(dir_domain_exists(r, "example.org", &why), 1);
	T_EQ_INT(dir_domain_add(r, "other.test", &why), -1);
	T_ASSERT(strstr(why.data, "read-only") != NULL);
	dir_close(&r);
	T_EQ_INT(dir_reader_check(data_dir, &why), 0);
	buf_free(&why);
}

/* reader_child - open once, wait for the writer's commit, look again */
static int
reader_child(int go_fd, int ready_fd)
{
	struct buf why = BUF_INIT;
	struct dir *r;
	char c;

	if (dir_open(data_dir, DIR_READ, &r, &why) < 0)
		return 10;
	if (dir_domain_exists(r, "first.test", &why) != 1)
		return 11;
	if (dir_rcpt_check(r, "u@second.test", 0, &why) != DIR_RCPT_REMOTE)
		return 12;
	if (write(ready_fd, "r", 1) != 1)
		return 13;
	if (read(go_fd, &c, 1) != 1)
		return 14;
	/* the same handle sees the new commit */
	if (dir_domain_exists(r, "second.test", &why) != 1)
		return 15;
	if (dir_rcpt_check(r, "u@second.test", 0, &why) != DIR_RCPT_OK)
		return 16;
	if (dir_domain_exists(r, "first.test", &why) != 0)
		return 17;
	dir_close(&r);
	buf_free(&why);
	return 0;
}

static void
test_reader_process(void)
{
	struct buf why = BUF_INIT;
	struct dir *d;
	int go[2], ready[2], status = 0;
	pid_t pid;
	char c = 0;

	fresh();
	d = open_w();
	T_EQ_INT(dir_domain_add(d, "first.test", &why), 0);
	dir_close(&d);
	T_ASSERT(pipe(go) == 0 && pipe(ready) == 0);
	fflush(NULL);
	if ((pid = fork()) == 0) {
		close(go[1]);
		close(ready[0]);
		alarm(20);
		_exit(reader_child(go[0], ready[1]));
	}
	close(go[0]);
	close(ready[1]);
	T_ASSERT(pid > 0);
	if (read(ready[0], &c, 1) != 1)
		c = 0;
	if (c == 'r') {
		d = open_w();
		if (dir_domain_add(d, "second.test", &why) < 0 ||
		    dir_user_add(d, "u@second.test", -1, &why) < 0 ||
		    dir_domain_del(d, "first.test", false, &why) < 0)
			c = 'x';
		dir_close(&d);
	}
	(void)!write(go[1], "g", 1);
	close(go[1]);
	close(ready[0]);
	T_EQ_INT(waitpid(pid, &status, 0), pid);
	T_EQ_INT(c, 'r');
	T_ASSERT(WIFEXITED(status));
	T_EQ_INT(WEXITSTATUS(status), 0);
	buf_free(&why);
}

static void
test_passwd(void)
{
	struct buf why = BUF_INIT, out = BUF_INIT, hash = BUF_INIT;
	struct stat st;
	char path[512];
	struct crypt_data cd;
	const char *again;

	fresh();
	T_EQ_INT(dir_passwd_get(data_dir, "a@example.org", &out, &why), 0);
	T_EQ_INT(dir_passwd_del(data_dir, "a@example.org", &why), 0);
	T_EQ_INT(dir_passwd_hash("s3cret pass", &hash, &why), 0);
	T_ASSERT(strncmp(hash.data, "$y$", 3) == 0);
	memset(&cd, 0, sizeof(cd));
	again = crypt_r("s3cret pass", hash.data, &cd);
	T_ASSERT(again != NULL);
	T_EQ_STR(again, hash.data);
	memset(&cd, 0, sizeof(cd));
	again = crypt_r("wrong", hash.data, &cd);
	T_ASSERT(again == NULL || strcmp(again, hash.data) != 0);
	{
		struct buf h2 = BUF_INIT;

		/* a fresh salt every time */
		T_EQ_INT(dir_passwd_hash("s3cret pass", &h2, &why), 0);
		T_ASSERT(strcmp(h2.data, hash.data) != 0);
		buf_free(&h2);
	}

	T_EQ_INT(dir_passwd_set(data_dir, "A@Example.org", hash.data, &why),
	    0);
	T_EQ_INT(dir_passwd_get(data_dir, "a@example.org", &out, &why), 1);
	T_EQ_STR(out.data, hash.data);
	T_EQ_INT(dir_passwd_set(data_dir, "a@example.org", "$6$x$y", &why),
	    0);
	buf_reset(&out);
	T_EQ_INT(dir_passwd_get(data_dir, "a@example.org", &out, &why), 1);
	T_EQ_STR(out.data, "$6$x$y");
	T_EQ_INT(dir_passwd_set(data_dir, "a@example.org", "bad\nhash", &why),
	    -1);
	T_EQ_INT(dir_passwd_set(data_dir, "a@example.org", "", &why), -1);
	T_EQ_INT(dir_passwd_get(data_dir, "b@example.org", &out, &why), 0);
	T_EQ_INT(dir_passwd_del(data_dir, "a@example.org", &why), 0);
	T_EQ_INT(dir_passwd_get(data_dir, "a@example.org", &out, &why), 0);

	snprintf(path, sizeof(path), "%s/passwd", data_dir);
	T_EQ_INT(stat(path, &st), 0);
	T_EQ_INT(st.st_mode & 0777, 0700);
	snprintf(path, sizeof(path), "%s/passwd/data.mdb", data_dir);
	T_EQ_INT(stat(path, &st), 0);
	T_EQ_INT(st.st_mode & 0777, 0600);
	T_EQ_INT(dir_reader_check(data_dir, &why), 0);
	T_EQ_INT(dir_passwd_reader_check(data_dir, &why), 0);
	buf_free(&why);
	buf_free(&out);
	buf_free(&hash);
}

static void
test_passwd_kept(void)
{
	struct buf why = BUF_INIT, out = BUF_INIT;
	struct dir_passwd *p = NULL;
	pid_t pid;
	int status = 0;

	fresh();
	/* nothing yet: no handle, no error, and nothing made */
	T_EQ_INT(dir_passwd_open(data_dir, &p, &why), 0);
	T_EQ_INT(why.len, 0);
	T_ASSERT(p == NULL);
	T_EQ_INT(dir_passwd_set(data_dir, "a@example.org", "$6$a$old", &why),
	    0);
	T_EQ_INT(dir_passwd_open(data_dir, &p, &why), 1);
	T_EQ_INT(dir_passwd_lookup(p, "A@example.org", &out, &why), 1);
	T_EQ_STR(buf_cstr(&out), "$6$a$old");
	T_EQ_INT(dir_passwd_lookup(p, "b@example.org", &out, &why), 0);

	/* another process (heraldctl) sets one: seen without reopening */
	pid = fork();
	T_ASSERT(pid >= 0);
	if (pid == 0)
		_exit(dir_passwd_set(data_dir, "b@example.org", "$6$b$c",
		    &why) < 0 ? 1 : 0);
	T_EQ_INT(waitpid(pid, &status, 0), pid);
	T_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	buf_reset(&out);
	T_EQ_INT(dir_passwd_lookup(p, "b@example.org", &out, &why), 1);
	T_EQ_STR(buf_cstr(&out), "$6$b$c");

	/* replaced only while it is still the old one */
	T_EQ_INT(dir_passwd_replace(p, "a@example.org", "$6$a$other",
	    "$y$j9T$new$x", &why), 0);
	T_EQ_INT(dir_passwd_replace(p, "a@example.org", "$6$a$old",
	    "$y$j9T$new$x", &why), 1);
	buf_reset(&out);
	T_EQ_INT(dir_passwd_lookup(p, "a@example.org", &out, &why), 1);
	T_EQ_STR(buf_cstr(&out), "$y$j9T$new$x");
	T_EQ_INT(dir_passwd_replace(p, "c@example.org", "$6$a$old",
	    "$y$j9T$new$x", &why), 0);
	T_EQ_INT(dir_passwd_replace(p, "b@example.org", "$6$b$c", "bad\nhash",
	    &why), -1);
	dir_passwd_close(&p);
	T_ASSERT(p == NULL);
	T_EQ_INT(dir_passwd_get(data_dir, "a@example.org", &out, &why), 1);
	buf_free(&why);
	buf_free(&out);
}

/* rm_rf - remove the temp tree (LMDB files and folders only) */
static void
rm_rf(const char *path)
{
	char cmd_path[512];
	static const char *const subs[] = {"directory", "passwd"};
	static const char *const files[] = {"data.mdb", "lock.mdb"};

	for (int i = 1; i <= case_no; i++) {
		for (int s = 0; s < 2; s++) {
			for (int f = 0; f < 2; f++) {
				snprintf(cmd_path, sizeof(cmd_path),
				    "%s/data%d/%s/%s", path, i, subs[s],
				    files[f]);
				unlink(cmd_path);
			}
			snprintf(cmd_path, sizeof(cmd_path), "%s/data%d/%s",
			    path, i, subs[s]);
			rmdir(cmd_path);
		}
		snprintf(cmd_path, sizeof(cmd_path), "%s/data%d", path, i);
		rmdir(cmd_path);
	}
	rmdir(path);
}

/* the domain's admin (who gets postmaster@): its first user, the next
 * one when that one goes, nobody without users */
static void
test_domain_admin(void)
{
	struct buf why = BUF_INIT, out = BUF_INIT;
	struct dir *d;

	fresh();
	d = open_w();
	T_EQ_INT(dir_domain_add(d, "a.test", &why), 0);
	T_EQ_INT(dir_domain_add(d, "ba.test", &why), 0);
	T_EQ_INT(dir_user_add(d, "old@ba.test", -1, &why), 0);
	T_EQ_INT(dir_domain_postmaster(d, "a.test", &out, &why), 0);
	T_EQ_INT(dir_domain_postmaster(d, "ba.test", &out, &why), 1);
	T_EQ_STR(buf_cstr(&out), "old@ba.test");
	T_EQ_INT(dir_domain_postmaster(d, "none.test", &out, &why), 0);
	T_EQ_INT(dir_user_add(d, "Zed@A.test", -1, &why), 0);
	T_EQ_INT(dir_user_add(d, "amy@a.test", -1, &why), 0);
	T_EQ_INT(dir_domain_postmaster(d, "A.TEST", &out, &why), 1);
	T_EQ_STR(buf_cstr(&out), "zed@a.test");
	T_EQ_INT(dir_user_del(d, "amy@a.test", &why), 0);
	T_EQ_INT(dir_domain_postmaster(d, "a.test", &out, &why), 1);
	T_EQ_STR(buf_cstr(&out), "zed@a.test");
	T_EQ_INT(dir_user_add(d, "bea@a.test", -1, &why), 0);
	T_EQ_INT(dir_user_del(d, "zed@a.test", &why), 0);
	T_EQ_INT(dir_domain_postmaster(d, "a.test", &out, &why), 1);
	T_EQ_STR(buf_cstr(&out), "bea@a.test");
	T_EQ_INT(dir_user_del(d, "bea@a.test", &why), 0);
	T_EQ_INT(dir_domain_postmaster(d, "a.test", &out, &why), 0);
	/* the domain record still works for everything else */
	T_EQ_INT(dir_domain_exists(d, "a.test", &why), 1);
	T_EQ_INT(dir_domain_del(d, "a.test", false, &why), 0);
	T_EQ_INT(dir_domain_del(d, "ba.test", true, &why), 0);
	dir_close(&d);
	buf_free(&why);
	buf_free(&out);
}

/* list_map - a transport or TLS policy entry as "domain=value;" */
static void
list_map(const char *domain, const char *value, void *ctx)
{
	buf_printf(ctx, "%s=%s;", domain, value);
}

/* test_routes - transports and TLS policies: set, get, list, del, and
 * refused for a hosted domain */
static void
test_routes(void)
{
	const enum dir_map tr = DIR_MAP_TRANSPORT, tls = DIR_MAP_TLS_POLICY;
	struct buf why = BUF_INIT, out = BUF_INIT;
	struct dir *d;

	fresh();
	d = open_w();
	T_EQ_INT(dir_domain_add(d, "hosted.test", &why), 0);
	T_EQ_INT(dir_map_set(d, tr, "hosted.test", "[relay]:25", &why), -1);
	T_ASSERT(strstr(buf_cstr(&why), "hosted domain") != NULL);
	buf_reset(&why);
	T_EQ_INT(dir_map_set(d, tls, "Hosted.Test", "verify", &why), -1);
	buf_reset(&why);
	T_EQ_INT(dir_map_set(d, tr, "Far.Test", "[relay]:25", &why), 0);
	T_EQ_INT(dir_map_set(d, tr, "b.test", "mx.b", &why), 0);
	T_EQ_INT(dir_map_set(d, tr, "b.test", "[mx.b]:26", &why), 0);
	T_EQ_INT(dir_map_set(d, tls, "far.test", "encrypt", &why), 0);
	T_EQ_INT(dir_map_get(d, tr, "FAR.test", &out, &why), 1);
	T_EQ_STR(buf_cstr(&out), "[relay]:25");
	T_EQ_INT(dir_map_get(d, tls, "far.test", &out, &why), 1);
	T_EQ_STR(buf_cstr(&out), "encrypt");
	T_EQ_INT(dir_map_get(d, tls, "b.test", &out, &why), 0);
	T_EQ_INT(dir_map_get(d, tr, "hosted.test", &out, &why), 0);
	buf_reset(&out);
	T_EQ_INT(dir_map_list(d, tr, list_map, &out, &why), 0);
	T_EQ_STR(buf_cstr(&out), "b.test=[mx.b]:26;far.test=[relay]:25;");
	T_EQ_INT(dir_map_del(d, tr, "far.test", &why), 0);
	T_EQ_INT(dir_map_get(d, tr, "far.test", &out, &why), 0);
	T_EQ_INT(dir_map_del(d, tr, "far.test", &why), -1);
	T_ASSERT(strstr(buf_cstr(&why), "no transport for far.test") != NULL);
	buf_reset(&why);
	T_EQ_INT(dir_map_del(d, tls, "far.test", &why), 0);
	T_EQ_INT(dir_map_del(d, tls, "far.test", &why), -1);
	T_ASSERT(strstr(buf_cstr(&why), "no TLS policy for far.test") !=
	    NULL);
	buf_reset(&why);
	buf_reset(&out);
	T_EQ_INT(dir_map_list(d, tls, list_map, &out, &why), 0);
	T_EQ_STR(buf_cstr(&out), "");
	dir_close(&d);
	buf_free(&why);
	buf_free(&out);
}

static const struct test_case cases[] = {
	{"transports and TLS policies", test_routes},
	{"domains: add, exists, list, del", test_domains},
	{"users: add, get, quota, enable, list, del", test_users},
	{"aliases: add, dedupe, get, list, del", test_aliases},
	{"domain del refuses, force removes users and aliases",
	    test_domain_del_force},
	{"rcpt check: every outcome", test_rcpt_check},
	{"domain admin: first user, next one, none", test_domain_admin},
	{"read-only open", test_readonly},
	{"another process sees commits without reopening",
	    test_reader_process},
	{"passwords: hash, set, get, del, modes", test_passwd},
	{"passwords: a kept handle sees commits, replaces if unchanged",
	    test_passwd_kept},
	{0},
};

int
main(void)
{
	int rc;

	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	rc = test_run(cases);
	rm_rf(tmpdir);
	return rc;
}
