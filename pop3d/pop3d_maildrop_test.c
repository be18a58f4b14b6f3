/*
 * pop3d_maildrop_test - the maildrop in a temporary Maildir: the lock
 * (two opens exclude each other, closing releases), new/ -> cur/ at
 * login, delivery order, .folders left out, sizes from W= and counted,
 * UIDLs (kept across renames, mapped when unusable), opening a message
 * renamed meanwhile, and UPDATE.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/test.h"
#include "mail/maildir.h"
#include "pop3d.h"

static char tmpdir[] = "/tmp/herald-pop3d-md-test-XXXXXX";
static char md_path[300];
static int case_no;

/* fresh - a new Maildir path per case (not created) */
static const char *
fresh(void)
{
	snprintf(md_path, sizeof(md_path), "%s/m%d/box", tmpdir, ++case_no);
	return md_path;
}

/* put - write text as md_path/sub/name */
static int
put(const char *sub, const char *name, const char *text)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s/%s", md_path, sub, name);
	if ((f = fopen(path, "w")) == NULL)
		return -1;
	fputs(text, f);
	return fclose(f);
}

/* exists - md_path/sub/name is there */
static bool
exists(const char *sub, const char *name)
{
	char path[1024];

	snprintf(path, sizeof(path), "%s/%s/%s", md_path, sub, name);
	return access(path, F_OK) == 0;
}

/* entries - files in md_path/sub */
static int
entries(const char *sub)
{
	char path[1024];
	struct dirent *de;
	DIR *dp;
	int n = 0;

	snprintf(path, sizeof(path), "%s/%s", md_path, sub);
	if ((dp = opendir(path)) == NULL)
		return -1;
	while ((de = readdir(dp)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(dp);
	return n;
}

/* open_md - pop3d_maildrop_open of md_path, expecting result want */
static struct pop3d_maildrop *
open_md(enum pop3d_md_result want)
{
	struct pop3d_maildrop *md = NULL;
	struct buf why = BUF_INIT;
	enum pop3d_md_result r = pop3d_maildrop_open(md_path, &md, &why);

	if (r != want)
		fprintf(stderr, "  open %s: %d, want %d (%s)\n", md_path, r,
		    want, buf_cstr(&why));
	buf_free(&why);
	return md;
}

static void
test_empty_created(void)
{
	struct pop3d_maildrop *md;

	fresh();
	md = open_md(POP3D_MD_OK);
	T_ASSERT(md != NULL);
	T_EQ_INT(md->n, 0);
	T_EQ_INT(md->total, 0);
	T_EQ_INT(entries("cur"), 0);
	T_EQ_INT(entries("new"), 0);
	T_EQ_INT(entries("tmp"), 0);
	pop3d_maildrop_close(&md);
	T_ASSERT(md == NULL);
}

static void
test_lock(void)
{
	struct pop3d_maildrop *a, *b;
	struct buf why = BUF_INIT;
	long long used = -1;

	fresh();
	a = open_md(POP3D_MD_OK);
	T_ASSERT(a != NULL);
	/* the same process, another open: flock conflicts */
	b = open_md(POP3D_MD_LOCKED);
	T_ASSERT(b == NULL);
	pop3d_maildrop_close(&a);
	b = open_md(POP3D_MD_OK);
	T_ASSERT(b != NULL);
	pop3d_maildrop_close(&b);
	/* the lock file does not count toward the quota */
	T_EQ_INT(maildir_usage(md_path, &used, &why), 0);
	T_EQ_INT(used, 0);
	buf_free(&why);
}

static void
test_snapshot(void)
{
	struct pop3d_maildrop *md;
	struct buf why = BUF_INIT;

	fresh();
	T_EQ_INT(maildir_create(md_path, &why), 0);
	/* delivered later, but listed first by name: order is by time */
	T_EQ_INT(put("new", "200.M1P1.h,S=4,W=6", "a\nb\n"), 0);
	T_EQ_INT(put("cur", "100.M9P9.h,S=3,W=4:2,S", "ab\n"), 0);
	T_EQ_INT(put("cur", "150.M1P1.h:2,", "x\r\ny\nz"), 0);	/* no W= */
	T_EQ_INT(put("new", "150.M0P1.h", "q\n"), 0);
	T_EQ_INT(put("new", "300.M1P1.h:2,F", "f\n"), 0);	/* has info */
	T_EQ_INT(put("tmp", "400.M1P1.h", "tmp is not mail\n"), 0);
	T_EQ_INT(maildir_create("/dev/null/x", &why) < 0, 1);
	{
		char sub[400];

		snprintf(sub, sizeof(sub), "%s/.Sent", md_path);
		T_EQ_INT(maildir_create(sub, &why), 0);
		T_EQ_INT(put(".Sent/cur", "50.M1P1.h:2,S", "sent\n"), 0);
	}
	md = open_md(POP3D_MD_OK);
	T_ASSERT(md != NULL);
	T_EQ_INT(md->n, 5);
	T_EQ_STR(md->msgs[0].name, "100.M9P9.h,S=3,W=4:2,S");
	T_EQ_STR(md->msgs[1].name, "150.M0P1.h:2,");
	T_EQ_STR(md->msgs[2].name, "150.M1P1.h:2,");
	T_EQ_STR(md->msgs[3].name, "200.M1P1.h,S=4,W=6:2,");
	T_EQ_STR(md->msgs[4].name, "300.M1P1.h:2,F");
	/* sizes: W=, counted ("q\n" is 3; "x\r\ny\nz" is 6 + 1: the
	 * stored CRLF gains nothing), W=, counted */
	T_EQ_INT(md->msgs[0].size, 4);
	T_EQ_INT(md->msgs[1].size, 3);
	T_EQ_INT(md->msgs[2].size, 7);
	T_EQ_INT(md->msgs[3].size, 6);
	T_EQ_INT(md->msgs[4].size, 3);
	T_EQ_INT(md->total, 4 + 3 + 7 + 6 + 3);
	/* UIDL: the base name */
	T_EQ_STR(md->msgs[0].uidl, "100.M9P9.h,S=3,W=4");
	T_EQ_STR(md->msgs[3].uidl, "200.M1P1.h,S=4,W=6");
	T_EQ_STR(md->msgs[4].uidl, "300.M1P1.h");
	/* new/ was moved to cur/ */
	T_EQ_INT(entries("new"), 0);
	T_EQ_INT(entries("cur"), 5);
	T_ASSERT(exists("cur", "200.M1P1.h,S=4,W=6:2,"));
	pop3d_maildrop_close(&md);
	buf_free(&why);
}

static void
test_uidl_map(void)
{
	char a[POP3D_UIDL_MAX + 1], b[POP3D_UIDL_MAX + 1];
	char longname[200];

	pop3d_maildrop_uidl("1.M1P1.host,S=1,W=2:2,RS", a);
	T_EQ_STR(a, "1.M1P1.host,S=1,W=2");
	pop3d_maildrop_uidl("1.M1P1.host,S=1,W=2", b);
	T_EQ_STR(a, b);
	/* 70 characters are fine, 71 are mapped */
	memset(longname, 'x', 70);
	longname[70] = '\0';
	pop3d_maildrop_uidl(longname, a);
	T_EQ_STR(a, longname);
	strcat(longname, "y:2,S");
	pop3d_maildrop_uidl(longname, a);
	T_EQ_INT(strlen(a), 65);
	T_EQ_INT(a[0], '~');
	for (size_t i = 0; a[i]; i++)
		T_ASSERT(a[i] >= 0x21 && a[i] <= 0x7e);
	/* deterministic, and the flags do not matter */
	longname[71] = '\0';
	pop3d_maildrop_uidl(longname, b);
	T_EQ_STR(a, b);
	/* a space or 8-bit byte is mapped, differently per name */
	pop3d_maildrop_uidl("a b", a);
	pop3d_maildrop_uidl("a\xe9" "b", b);
	T_EQ_INT(a[0], '~');
	T_EQ_INT(b[0], '~');
	T_ASSERT(strcmp(a, b) != 0);
	/* empty base name */
	pop3d_maildrop_uidl(":2,", a);
	T_EQ_INT(a[0], '~');
}

static void
test_wsize_name(void)
{
	T_EQ_INT(pop3d_maildrop_name_wsize("1.M1.h,S=10,W=12"), 12);
	T_EQ_INT(pop3d_maildrop_name_wsize("1.M1.h,S=10,W=12:2,S"), 12);
	T_EQ_INT(pop3d_maildrop_name_wsize("1.M1.h,W=7,S=5"), 7);
	T_EQ_INT(pop3d_maildrop_name_wsize("1.M1.h,S=10"), -1);
	T_EQ_INT(pop3d_maildrop_name_wsize("1.M1.h,W="), -1);
	T_EQ_INT(pop3d_maildrop_name_wsize("1.M1.h,W=1x"), -1);
	T_EQ_INT(pop3d_maildrop_name_wsize("1.M1.h:2,W=5"), -1);
	T_EQ_INT(pop3d_maildrop_name_wsize("1.M1.hW=5"), -1);
	T_EQ_INT(pop3d_maildrop_name_wsize(
	    "1.M1.h,W=99999999999999999999"), -1);
}

static void
test_renamed_and_update(void)
{
	struct pop3d_maildrop *md;
	struct buf why = BUF_INIT;
	char data[16];
	ssize_t n;
	size_t removed = 99;
	int fd;

	fresh();
	T_EQ_INT(maildir_create(md_path, &why), 0);
	T_EQ_INT(put("new", "1.M1P1.h,S=2,W=3", "1\n"), 0);
	T_EQ_INT(put("new", "2.M1P1.h,S=2,W=3", "2\n"), 0);
	T_EQ_INT(put("new", "3.M1P1.h,S=2,W=3", "3\n"), 0);
	md = open_md(POP3D_MD_OK);
	T_ASSERT(md != NULL);
	T_EQ_INT(md->n, 3);
	/* IMAP sets a flag on message 2: a rename within cur/ */
	{
		char from[600], to[600];

		snprintf(from, sizeof(from), "%s/cur/2.M1P1.h,S=2,W=3:2,",
		    md_path);
		snprintf(to, sizeof(to), "%s/cur/2.M1P1.h,S=2,W=3:2,S",
		    md_path);
		T_EQ_INT(rename(from, to), 0);
	}
	fd = pop3d_maildrop_open_msg(md, 1);
	T_ASSERT(fd >= 0);
	n = read(fd, data, sizeof(data));
	close(fd);
	T_EQ_INT(n, 2);
	T_EQ_INT(data[0], '2');
	T_EQ_STR(md->msgs[1].name, "2.M1P1.h,S=2,W=3:2,S");
	T_EQ_STR(md->msgs[1].uidl, "2.M1P1.h,S=2,W=3");
	/* message 3 expunged by IMAP meanwhile */
	{
		char p[600];

		snprintf(p, sizeof(p), "%s/cur/3.M1P1.h,S=2,W=3:2,", md_path);
		T_EQ_INT(unlink(p), 0);
	}
	errno = 0;
	T_EQ_INT(pop3d_maildrop_open_msg(md, 2), -1);
	T_EQ_INT(errno, ENOENT);
	/* UPDATE: 2 (renamed again) and 3 (gone) deleted, 1 kept */
	{
		char from[600], to[600];

		snprintf(from, sizeof(from), "%s/cur/2.M1P1.h,S=2,W=3:2,S",
		    md_path);
		snprintf(to, sizeof(to), "%s/cur/2.M1P1.h,S=2,W=3:2,RS",
		    md_path);
		T_EQ_INT(rename(from, to), 0);
	}
	md->msgs[1].deleted = md->msgs[2].deleted = true;
	md->ndel = 2;
	T_EQ_INT(pop3d_maildrop_update(md, &removed), 0);
	T_EQ_INT(removed, 1);
	T_EQ_INT(entries("cur"), 1);
	T_ASSERT(exists("cur", "1.M1P1.h,S=2,W=3:2,"));
	pop3d_maildrop_close(&md);
	/* the next session sees one message with the same UIDL */
	md = open_md(POP3D_MD_OK);
	T_ASSERT(md != NULL);
	T_EQ_INT(md->n, 1);
	T_EQ_STR(md->msgs[0].uidl, "1.M1P1.h,S=2,W=3");
	pop3d_maildrop_close(&md);
	buf_free(&why);
}

static void
test_duplicate_uidl(void)
{
	struct pop3d_maildrop *md;
	struct buf why = BUF_INIT;

	fresh();
	T_EQ_INT(maildir_create(md_path, &why), 0);
	/* one base name twice (a broken copy): listed once */
	T_EQ_INT(put("cur", "5.M1P1.h:2,", "a\n"), 0);
	T_EQ_INT(put("cur", "5.M1P1.h:2,S", "a\n"), 0);
	T_EQ_INT(put("cur", "6.M1P1.h:2,", "b\n"), 0);
	md = open_md(POP3D_MD_OK);
	T_ASSERT(md != NULL);
	T_EQ_INT(md->n, 2);
	T_EQ_STR(md->msgs[0].uidl, "5.M1P1.h");
	T_EQ_STR(md->msgs[1].uidl, "6.M1P1.h");
	T_EQ_INT(md->total, 6);
	pop3d_maildrop_close(&md);
	buf_free(&why);
}

static void
test_open_error(void)
{
	struct pop3d_maildrop *md = NULL;
	struct buf why = BUF_INIT;
	char path[400];
	FILE *f;

	/* a plain file where the Maildir should be */
	fresh();
	snprintf(path, sizeof(path), "%s/m%d", tmpdir, case_no);
	T_EQ_INT(mkdir(path, 0700), 0);
	f = fopen(md_path, "w");
	T_ASSERT(f != NULL);
	fclose(f);
	T_EQ_INT(pop3d_maildrop_open(md_path, &md, &why), POP3D_MD_ERROR);
	T_ASSERT(md == NULL);
	T_ASSERT(why.len > 0);
	buf_free(&why);
}

static const struct test_case cases[] = {
	{"a new user has an empty maildrop", test_empty_created},
	{"exclusive lock", test_lock},
	{"snapshot: new to cur, order, sizes, folders", test_snapshot},
	{"UIDL from names, mapped when unusable", test_uidl_map},
	{"W= in names", test_wsize_name},
	{"renamed and expunged messages, UPDATE", test_renamed_and_update},
	{"duplicate base names", test_duplicate_uidl},
	{"maildrop that cannot be opened", test_open_error},
	{0},
};

int
main(void)
{
	return test_run_in(cases, tmpdir);
}
