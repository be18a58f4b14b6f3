/*
 * pop3d_maildrop_test - the maildrop in a temporary Maildir: the lock
 * (two opens exclude each other, closing releases), new/ -> cur/ at
 * login, delivery order, .folders left out, sizes from W= and counted,
 * UIDLs (kept across renames, mapped when unusable), opening a message
 * renamed meanwhile, and UPDATE; the size cache (its parser at every
 * chunk size, corrupt files ignored, lookups checked against the file,
 * a scan that writes, uses and rebuilds it).
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


/* parse_all - parse text fed in chunks of step bytes; pop3d_sizes_end */
static int
parse_all(struct pop3d_sizes *c, const char *text, size_t len, size_t step)
{
	pop3d_sizes_init(c);
	for (size_t off = 0; off < len; off += step)
		pop3d_sizes_feed(c, text + off,
		    len - off < step ? len - off : step);
	return pop3d_sizes_end(c);
}

static const char good_cache[] =
    "herald-sizes 1\n"
    "19 16 1234 1700000000.000000001 1700000000.M1P2.host\n"
    "0 0 7 0.999999999 b\n"
    "4611686018427387903 4611686018427387903 4611686018427387903 "
    "4611686018427387903.000000000 ~!x,S=3\n";

static void
test_sizes_parse(void)
{
	size_t len = sizeof(good_cache) - 1;
	struct buf out = BUF_INIT;
	struct pop3d_sizes c;
	struct stat st;

	/* every chunk size gives the same entries, and formats back */
	for (size_t step = 1; step <= len; step++) {
		T_EQ_INT(parse_all(&c, good_cache, len, step), 0);
		T_EQ_INT(c.n, 3);
		T_EQ_STR(c.ent[0].base, "1700000000.M1P2.host");
		T_EQ_INT(c.ent[0].wsize, 19);
		T_EQ_INT(c.ent[0].fsize, 16);
		T_EQ_INT(c.ent[0].ino, 1234);
		T_EQ_INT(c.ent[0].mtime_sec, 1700000000);
		T_EQ_INT(c.ent[0].mtime_nsec, 1);
		T_EQ_INT(c.ent[1].mtime_nsec, 999999999);
		T_EQ_STR(c.ent[2].base, "~!x,S=3");
		buf_reset(&out);
		pop3d_sizes_format(&c, &out);
		T_EQ_MEM(out.data, out.len, good_cache, len);
		pop3d_sizes_free(&c);
	}
	/* an empty cache is only its header */
	T_EQ_INT(parse_all(&c, "herald-sizes 1\n", 15, 1), 0);
	T_EQ_INT(c.n, 0);

	/* lookup: by base name, checked against inode, size, mtime */
	T_EQ_INT(parse_all(&c, good_cache, len, len), 0);
	memset(&st, 0, sizeof(st));
	st.st_ino = 1234;
	st.st_size = 16;
	st.st_mtim.tv_sec = 1700000000;
	st.st_mtim.tv_nsec = 1;
	T_EQ_INT(pop3d_sizes_lookup(&c, "1700000000.M1P2.host:2,S", 20, &st),
	    19);
	T_EQ_INT(pop3d_sizes_lookup(&c, "1700000000.M1P2.hos", 19, &st), -1);
	T_EQ_INT(pop3d_sizes_lookup(&c, "1700000000.M1P2.hostx", 21, &st),
	    -1);
	st.st_ino = 1235;
	T_EQ_INT(pop3d_sizes_lookup(&c, "1700000000.M1P2.host", 20, &st), -1);
	st.st_ino = 1234;
	st.st_size = 17;
	T_EQ_INT(pop3d_sizes_lookup(&c, "1700000000.M1P2.host", 20, &st), -1);
	st.st_size = 16;
	st.st_mtim.tv_nsec = 2;
	T_EQ_INT(pop3d_sizes_lookup(&c, "1700000000.M1P2.host", 20, &st), -1);
	st.st_mtim.tv_nsec = 1;
	T_EQ_INT(pop3d_sizes_lookup(&c, "1700000000.M1P2.host", 20, &st), 19);
	T_ASSERT(c.ent[0].used || c.ent[1].used || c.ent[2].used);
	pop3d_sizes_free(&c);
	buf_free(&out);
}

static void
test_sizes_corrupt(void)
{
	static const char *const bad[] = {
		"",
		"herald-sizes 1",			/* no newline */
		"herald-sizes 2\n",
		"herald-sizes 1 \n",
		"\nherald-sizes 1\n",
		"herald-sizes 1\n19 16 1 2.3 a",	/* last line cut */
		"herald-sizes 1\n19 16 1 2.3 a\n\n",
		"herald-sizes 1\n19 16 1 2.3\n",
		"herald-sizes 1\n19 16 1 2.3 \n",
		"herald-sizes 1\n19 16 1 2 a\n",
		"herald-sizes 1\n19 16 1 2.1000000000 a\n",
		"herald-sizes 1\n-19 16 1 2.3 a\n",
		"herald-sizes 1\n19  16 1 2.3 a\n",
		"herald-sizes 1\n19 16 1 2.3 a b\n",
		"herald-sizes 1\n19 16 1 2.3 a:2,\n",
		"herald-sizes 1\n19 16 1 2.3 a/b\n",
		"herald-sizes 1\n19 16 1 2.3 a\x7f\n",
		"herald-sizes 1\n19 16 1 2.3 a\r\n",
		"herald-sizes 1\n15 16 1 2.3 a\n",	/* wsize < size */
		"herald-sizes 1\n33 16 1 2.3 a\n",	/* over double */
		"herald-sizes 1\n4611686018427387904 16 1 2.3 a\n",
		"herald-sizes 1\n99999999999999999999 16 1 2.3 a\n",
		"herald-sizes 1\n19 16 18446744073709551616 2.3 a\n",
		"herald-sizes 1\n19 16 1 2.3 a\n19 16 1 2.3 a\0\n",
	};
	char longline[POP3D_SIZES_LINE_MAX + 40];
	struct pop3d_sizes c;
	size_t len;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		len = strlen(bad[i]);
		if (i == sizeof(bad) / sizeof(bad[0]) - 1)
			len += 2;	/* the NUL and its newline */
		for (size_t step = 1; step <= (len ? len : 1); step++) {
			if (parse_all(&c, bad[i], len, step) != -1 ||
			    c.n != 0)
				T_FAIL_("bad cache %zu accepted (step %zu)",
				    i, step);
			pop3d_sizes_free(&c);
		}
	}
	/* a name of 256 bytes, and a line over the bound */
	len = (size_t)snprintf(longline, sizeof(longline),
	    "herald-sizes 1\n1 1 1 1.1 %0256d\n", 0);
	T_EQ_INT(parse_all(&c, longline, len, 7), -1);
	T_EQ_INT(c.n, 0);
	pop3d_sizes_free(&c);
	len = (size_t)snprintf(longline, sizeof(longline),
	    "herald-sizes 1\n1 1 1 1.1 %0255d\n", 0);
	T_EQ_INT(parse_all(&c, longline, len, 7), 0);
	T_EQ_INT(c.n, 1);
	pop3d_sizes_free(&c);
}

/* rewrite - same length, inode and mtime, other bytes: md_path/cur/name */
static void
rewrite(const char *name, const char *text)
{
	char path[1024];
	struct timespec ts[2];
	struct stat st;
	int fd;

	snprintf(path, sizeof(path), "%s/cur/%s", md_path, name);
	T_EQ_INT(stat(path, &st), 0);
	fd = open(path, O_WRONLY);
	T_ASSERT(fd >= 0);
	T_EQ_INT(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	T_EQ_INT(close(fd), 0);
	ts[0] = st.st_atim;
	ts[1] = st.st_mtim;
	T_EQ_INT(utimensat(AT_FDCWD, path, ts, 0), 0);
}

/* cache_text - md_path/herald-sizes, or "" */
static void
cache_text(struct buf *out)
{
	char path[1024], chunk[4096];
	ssize_t r;
	int fd;

	buf_reset(out);
	snprintf(path, sizeof(path), "%s/herald-sizes", md_path);
	if ((fd = open(path, O_RDONLY)) < 0)
		return;
	while ((r = read(fd, chunk, sizeof(chunk))) > 0)
		buf_append(out, chunk, (size_t)r);
	(void)close(fd);
}

static void
test_sizes_scan(void)
{
	struct pop3d_maildrop *md;
	struct buf text = BUF_INIT;
	struct pop3d_sizes c;

	fresh();
	md = open_md(POP3D_MD_OK);
	pop3d_maildrop_close(&md);
	/* 4 bytes, 1 LF: 5 on the wire; W= in the name: never cached */
	T_EQ_INT(put("new", "1000.a.h", "abc\n"), 0);
	T_EQ_INT(put("cur", "1001.b.h:2,S", "abc\n"), 0);
	T_EQ_INT(put("cur", "1002.c.h,S=4,W=5:2,", "abc\n"), 0);
	T_EQ_INT(put("cur", "1003.d h:2,", "abc\n"), 0);	/* a space */
	md = open_md(POP3D_MD_OK);
	T_ASSERT(md != NULL);
	T_EQ_INT(md->n, 4);
	T_EQ_INT(md->total, 20);
	pop3d_maildrop_close(&md);
	cache_text(&text);
	T_EQ_INT(parse_all(&c, text.data, text.len, 1), 0);
	T_EQ_INT(c.n, 2);	/* a and b; not c (W=), not "d h" */
	pop3d_sizes_free(&c);

	/* the cache is believed while inode, size and mtime match */
	rewrite("1000.a.h:2,", "\n\n\n\n");
	rewrite("1001.b.h:2,S", "\n\n\n\n");
	rewrite("1002.c.h,S=4,W=5:2,", "\n\n\n\n");
	rewrite("1003.d h:2,", "\n\n\n\n");
	md = open_md(POP3D_MD_OK);
	T_ASSERT(md != NULL);
	T_EQ_INT(md->n, 4);
	T_EQ_INT(md->total, 5 + 5 + 5 + 8);
	pop3d_maildrop_close(&md);

	/* a corrupt cache is ignored and written anew */
	T_EQ_INT(put(".", "herald-sizes", "herald-sizes 1\n5 4 1 1.1 x"), 0);
	md = open_md(POP3D_MD_OK);
	T_ASSERT(md != NULL);
	T_EQ_INT(md->total, 8 + 8 + 5 + 8);
	pop3d_maildrop_close(&md);
	cache_text(&text);
	T_EQ_INT(parse_all(&c, text.data, text.len, 3), 0);
	T_EQ_INT(c.n, 2);
	T_EQ_INT(c.ent[0].wsize, 8);
	pop3d_sizes_free(&c);
	buf_free(&text);
}

static void
test_sizes_oversized(void)
{
	char path[1024];
	struct pop3d_sizes c;
	int fd;

	fresh();
	snprintf(path, sizeof(path), "%s/m%d", tmpdir, case_no);
	T_EQ_INT(mkdir(path, 0700), 0);
	T_EQ_INT(mkdir(md_path, 0700), 0);
	/* no cache: empty, no error */
	T_EQ_INT(pop3d_sizes_load(md_path, &c), 0);
	T_EQ_INT(c.n, 0);
	/* a good header, then more than POP3D_SIZES_FILE_MAX (sparse) */
	T_EQ_INT(put(".", "herald-sizes", "herald-sizes 1\n"), 0);
	snprintf(path, sizeof(path), "%s/herald-sizes", md_path);
	fd = open(path, O_WRONLY);
	T_ASSERT(fd >= 0);
	T_EQ_INT(ftruncate(fd, POP3D_SIZES_FILE_MAX + 1), 0);
	T_EQ_INT(close(fd), 0);
	T_EQ_INT(pop3d_sizes_load(md_path, &c), 0);
	T_EQ_INT(c.n, 0);
	/* not a regular file */
	T_EQ_INT(unlink(path), 0);
	T_EQ_INT(mkdir(path, 0700), 0);
	T_EQ_INT(pop3d_sizes_load(md_path, &c), 0);
	T_EQ_INT(c.n, 0);
	pop3d_sizes_free(&c);
}

static const struct test_case cases[] = {
	{"a new user has an empty maildrop", test_empty_created},
	{"exclusive lock", test_lock},
	{"snapshot: new to cur, order, sizes, folders", test_snapshot},
	{"UIDL from names, mapped when unusable", test_uidl_map},
	{"renamed and expunged messages, UPDATE", test_renamed_and_update},
	{"duplicate base names", test_duplicate_uidl},
	{"maildrop that cannot be opened", test_open_error},
	{"size cache: parse at every chunk size, lookup", test_sizes_parse},
	{"size cache: corrupt files are ignored", test_sizes_corrupt},
	{"size cache: written by a scan, used, rebuilt", test_sizes_scan},
	{"size cache: oversized or not a file", test_sizes_oversized},
	{0},
};

int
main(void)
{
	return test_run_in(cases, tmpdir);
}
