/*
 * maildir_test - delivery into a temp Maildir: content and CRLF handling
 * (also across the 64 KiB read boundary), unique names, size sums, and
 * failures that leave nothing behind in tmp/.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/mem.h"
#include "base/test.h"
#include "mail/maildir.h"

static char tmpdir[] = "/tmp/herald-maildir-test-XXXXXX";
static char md[256];
static int case_no;

/* fresh_maildir - a new Maildir path per case (created by the test) */
static const char *
fresh_maildir(void)
{
	snprintf(md, sizeof(md), "%s/m%d/a/b", tmpdir, ++case_no);
	return md;
}

/* source - a file holding prefix + text; its fd, offset after prefix */
static int
source(const char *prefix, const void *text, size_t n)
{
	char path[300];
	int fd;

	snprintf(path, sizeof(path), "%s/src", tmpdir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return -1;
	unlink(path);
	if (write(fd, prefix, strlen(prefix)) != (ssize_t)strlen(prefix) ||
	    write(fd, text, n) != (ssize_t)n) {
		close(fd);
		return -1;
	}
	return fd;
}

/* slurp - the whole file at dir/name into out; -1 on error */
static int
slurp(const char *dir, const char *name, struct buf *out)
{
	char path[1024], data[4096];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((fd = open(path, O_RDONLY)) < 0)
		return -1;
	while ((n = read(fd, data, sizeof(data))) > 0)
		buf_append(out, data, (size_t)n);
	close(fd);
	return n < 0 ? -1 : 0;
}

/*
 * wire_size - the reference for W=: the bytes of p[0..n) as sent with
 * CRLF line ends, computed the slow and obvious way (build the CRLF form)
 */
static size_t
wire_size(const char *p, size_t n)
{
	struct buf w = BUF_INIT;
	size_t len;

	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
			buf_putc(&w, '\r');
		buf_putc(&w, p[i]);
	}
	len = w.len;
	buf_free(&w);
	return len;
}

/* name_sizes - the ",S=..,W=.." suffix a file of content p[0..n) gets */
static void
name_sizes(char *out, size_t size, const char *p, size_t n)
{
	snprintf(out, size, ",S=%zu,W=%zu", n, wire_size(p, n));
}

/* count_entries - files in dir (not . and ..), -1 if unreadable */
static int
count_entries(const char *dir)
{
	struct dirent *de;
	DIR *dp = opendir(dir);
	int n = 0;

	if (dp == NULL)
		return -1;
	while ((de = readdir(dp)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, ".."))
			n++;
	closedir(dp);
	return n;
}

/* sub - path/<s> in a static buffer */
static const char *
sub(const char *s)
{
	static char path[512];

	snprintf(path, sizeof(path), "%s/%s", md, s);
	return path;
}

static void
test_create(void)
{
	struct buf why = BUF_INIT;
	struct stat st;

	fresh_maildir();
	T_EQ_INT(maildir_create(md, &why), 0);
	T_EQ_INT(maildir_create(md, &why), 0);	/* again: fine */
	T_EQ_INT(stat(sub("new"), &st), 0);
	T_ASSERT(S_ISDIR(st.st_mode));
	T_EQ_INT(st.st_mode & 0777, 0700);
	T_EQ_INT(stat(sub("cur"), &st), 0);
	T_EQ_INT(stat(sub("tmp"), &st), 0);
	T_EQ_INT(stat(md, &st), 0);
	T_EQ_INT(st.st_mode & 0777, 0700);
	/* a file in the way */
	{
		char path[512];
		int fd;

		snprintf(path, sizeof(path), "%s/m%d/file", tmpdir, case_no);
		fd = open(path, O_CREAT | O_WRONLY, 0600);
		T_ASSERT(fd >= 0);
		close(fd);
		snprintf(path, sizeof(path), "%s/m%d/file/x", tmpdir, case_no);
		T_EQ_INT(maildir_create(path, &why), -1);
		T_ASSERT(why.len > 0);
	}
	buf_free(&why);
}

static void
test_deliver_content(void)
{
	static const char msg[] = "Subject: hi\r\n\r\nline one\r\nbare\rcr\r\n"
	    "lf only\n\r\r\nend\r";
	static const char want[] = "Delivered-To: a@b\nSubject: hi\n\n"
	    "line one\nbare\rcr\nlf only\n\r\nend\r";
	struct buf why = BUF_INIT, name = BUF_INIT, got = BUF_INIT;
	char expect_suffix[64];
	int fd;

	fresh_maildir();
	T_EQ_INT(maildir_create(md, &why), 0);
	fd = source("ENVELOPE", msg, strlen(msg));
	T_ASSERT(fd >= 0);
	T_EQ_INT(maildir_deliver(md, "Delivered-To: a@b\n", 18, fd, 8,
	    (off_t)strlen(msg), &name, &why), 0);
	close(fd);
	T_EQ_INT(slurp(sub("new"), name.data, &got), 0);
	T_EQ_MEM(got.data, got.len, want, strlen(want));
	name_sizes(expect_suffix, sizeof(expect_suffix), want, strlen(want));
	/* 6 LFs without a CR before them: the W= arithmetic by hand */
	T_EQ_INT(wire_size(want, strlen(want)), strlen(want) + 6);
	T_ASSERT(name.len > strlen(expect_suffix));
	T_EQ_STR(name.data + name.len - strlen(expect_suffix), expect_suffix);
	T_ASSERT(strchr(name.data, '/') == NULL);
	T_ASSERT(strchr(name.data, ':') == NULL);
	T_EQ_INT(count_entries(sub("tmp")), 0);
	T_EQ_INT(count_entries(sub("new")), 1);
	buf_free(&why);
	buf_free(&name);
	buf_free(&got);
}

static void
test_deliver_chunk_boundary(void)
{
	struct buf why = BUF_INIT, name = BUF_INIT, got = BUF_INIT;
	struct buf msg = BUF_INIT, want = BUF_INIT;
	int fd;

	/*
	 * The reader's chunks are 64 KiB counted from off: put a "\r\n"
	 * across the first and second boundaries, and a lone "\r" right
	 * before the third one.
	 */
	fresh_maildir();
	T_EQ_INT(maildir_create(md, &why), 0);
	for (size_t i = 0; i < 65535; i++)
		buf_putc(&msg, 'a' + (int)(i % 26));
	buf_puts(&msg, "\r\n");		/* CR at 65535, LF at 65536 */
	while (msg.len < 2 * 65536 - 1)
		buf_putc(&msg, 'b');
	buf_puts(&msg, "\r\n");		/* CR at 131071, LF at 131072 */
	while (msg.len < 3 * 65536 - 1)
		buf_putc(&msg, 'c');
	buf_puts(&msg, "\rX\r\n");	/* lone CR at 196607 */
	for (size_t i = 0; i < msg.len; i++) {
		if (msg.data[i] == '\r' && i + 1 < msg.len &&
		    msg.data[i + 1] == '\n')
			continue;
		buf_putc(&want, msg.data[i]);
	}
	T_EQ_INT(want.len, msg.len - 3);
	fd = source("", msg.data, msg.len);
	T_ASSERT(fd >= 0);
	T_EQ_INT(maildir_deliver(md, "", 0, fd, 0, (off_t)msg.len, &name,
	    &why), 0);
	close(fd);
	T_EQ_INT(slurp(sub("new"), name.data, &got), 0);
	T_EQ_INT(got.len, want.len);
	T_ASSERT(memcmp(got.data, want.data, want.len) == 0);
	{
		char suffix[64];

		name_sizes(suffix, sizeof(suffix), want.data, want.len);
		T_EQ_STR(name.data + name.len - strlen(suffix), suffix);
	}
	buf_free(&why);
	buf_free(&name);
	buf_free(&got);
	buf_free(&msg);
	buf_free(&want);
}

/*
 * test_deliver_wire_size - W= counts a CRLF that the LF conversion leaves
 * in the file ("\r\r\n" is stored as "\r\n") once, also when that CR
 * and LF are written by different chunks, and counts the header's LFs
 */
static void
test_deliver_wire_size(void)
{
	struct buf why = BUF_INIT, name = BUF_INIT, got = BUF_INIT;
	struct buf msg = BUF_INIT;
	char suffix[64];
	const char *w;
	int fd;

	fresh_maildir();
	T_EQ_INT(maildir_create(md, &why), 0);
	buf_puts(&msg, "A: b\r\n\r\nx\r\r\ny\n");
	while (msg.len < 65535)
		buf_putc(&msg, 'z');
	buf_puts(&msg, "\r\r\n");	/* stored "\r\n" spans the 1st read */
	buf_puts(&msg, "end\r\n");
	fd = source("", msg.data, msg.len);
	T_ASSERT(fd >= 0);
	T_EQ_INT(maildir_deliver(md, "H: 1\n", 5, fd, 0, (off_t)msg.len,
	    &name, &why), 0);
	close(fd);
	T_EQ_INT(slurp(sub("new"), name.data, &got), 0);
	name_sizes(suffix, sizeof(suffix), got.data, got.len);
	T_EQ_STR(name.data + name.len - strlen(suffix), suffix);
	/* header LF, "A: b", blank, "y", "end": 5 LFs gain a CR; the two
	 * stored "\r\n" do not */
	w = strstr(name.data, ",W=");
	T_ASSERT(w != NULL);
	T_EQ_INT(atoll(w + 3), (long long)got.len + 5);
	buf_free(&why);
	buf_free(&name);
	buf_free(&got);
	buf_free(&msg);
}

static void
test_deliver_partial_range(void)
{
	struct buf why = BUF_INIT, name = BUF_INIT, got = BUF_INIT;
	int fd;

	/* only size bytes at off are copied; a short source is an error */
	fresh_maildir();
	T_EQ_INT(maildir_create(md, &why), 0);
	fd = source("HEAD", "abc\r\ndef\r\nTRAILER", 18);
	T_ASSERT(fd >= 0);
	T_EQ_INT(maildir_deliver(md, "H: 1\n", 5, fd, 4, 10, &name, &why), 0);
	T_EQ_INT(slurp(sub("new"), name.data, &got), 0);
	T_EQ_STR(got.data, "H: 1\nabc\ndef\n");
	errno = 0;
	T_EQ_INT(maildir_deliver(md, "", 0, fd, 4, 100, &name, &why), -1);
	T_EQ_INT(errno, EIO);
	close(fd);
	T_EQ_INT(count_entries(sub("tmp")), 0);
	T_EQ_INT(count_entries(sub("new")), 1);
	buf_free(&why);
	buf_free(&name);
	buf_free(&got);
}

static void
test_unique_names(void)
{
	struct buf why = BUF_INIT, name = BUF_INIT, names = BUF_INIT;
	int fd, failed = 0;

	fresh_maildir();
	T_EQ_INT(maildir_create(md, &why), 0);
	fd = source("", "x\r\n", 3);
	T_ASSERT(fd >= 0);
	for (int i = 0; i < 1000 && !failed; i++) {
		if (maildir_deliver(md, "", 0, fd, 0, 3, &name, &why) < 0)
			failed = 1;
	}
	close(fd);
	T_EQ_INT(failed, 0);
	/* 1,000 different names in new/ means no delivery replaced another */
	T_EQ_INT(count_entries(sub("new")), 1000);
	T_EQ_INT(count_entries(sub("tmp")), 0);
	buf_free(&why);
	buf_free(&name);
	buf_free(&names);
}

/* test_deliver_mem - a message in memory is stored as the same message
 * from a file is (CRLF at chunk edges, a lone CR, a CR at the end) */
static void
test_deliver_mem(void)
{
	static const size_t sizes[] = {0, 1, 2, 65535, 65536, 65537, 200001};
	struct buf why = BUF_INIT, n1 = BUF_INIT, n2 = BUF_INIT;
	struct buf f1 = BUF_INIT, f2 = BUF_INIT;
	char *text = xmalloc(200001);

	fresh_maildir();
	T_EQ_INT(maildir_create(md, &why), 0);
	for (size_t i = 0; i < 200001; i++)
		text[i] = i % 7 == 5 ? '\r' : i % 7 == 6 ? '\n' :
		    i % 131 == 0 ? '\r' : 'a';
	text[65535] = '\r';	/* CRLF split across the first chunk */
	text[65536] = '\n';
	for (size_t k = 0; k < sizeof(sizes) / sizeof(*sizes); k++) {
		size_t n = sizes[k];
		int fd = source("", text, n);
		const char *b1, *b2;

		T_ASSERT(fd >= 0);
		buf_reset(&f1);
		buf_reset(&f2);
		T_EQ_INT(maildir_deliver(md, "H\n", 2, fd, 0, (off_t)n, &n1,
		    &why), 0);
		close(fd);
		T_EQ_INT(maildir_deliver_mem(md, "H\n", 2, text, n, &n2, &why),
		    0);
		T_EQ_INT(slurp(sub("new"), buf_cstr(&n1), &f1), 0);
		T_EQ_INT(slurp(sub("new"), buf_cstr(&n2), &f2), 0);
		T_EQ_MEM(f2.data, f2.len, f1.data, f1.len);
		b1 = strstr(buf_cstr(&n1), ",S=");
		b2 = strstr(buf_cstr(&n2), ",S=");
		T_ASSERT(b1 != NULL && b2 != NULL);
		T_EQ_STR(b2, b1);
	}
	T_EQ_INT(count_entries(sub("tmp")), 0);
	free(text);
	buf_free(&why);
	buf_free(&n1);
	buf_free(&n2);
	buf_free(&f1);
	buf_free(&f2);
}

/* test_name_size - the S= and W= parser (maildir_name_size/wsize) */
static void
test_name_size(void)
{
	static const struct {
		const char *name;
		long long s, w;
	} cases[] = {
		{"1.M1P1.h,S=10,W=12:2,S", 10, 12},
		{"1.M1P1.h,W=12,S=10", 10, 12},
		{"1.M1P1.h,S=0,W=0", 0, 0},
		{"1.M1P1.h:2,S", -1, -1},
		{"1.M1P1.h,S=12abc,W=1a", -1, -1},
		{"1.M1P1.h,S=,W=:2,", -1, -1},
		{"1.M1P1.h,S=-1,W=+1", -1, -1},
		{"1.M1P1.h,S= 1,W=\t1", -1, -1},
		{"1.M1P1.h,S=9223372036854775807,W=9223372036854775808",
		    9223372036854775807LL, -1},
		{"1.M1P1.h,S=99999999999999999999999", -1, -1},
		{"1.M1P1.h,W=7,S=5", 5, 7},
		{"1.M1P1.h:2,W=5", -1, -1},	/* the info part holds flags */
		{"1.M1P1.h:2,S=5", -1, -1},
		{"1.M1P1.hW=5,S5", -1, -1},
		{"1.M1P1.h,W=", -1, -1},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		T_EQ_INT(maildir_name_size(cases[i].name), cases[i].s);
		T_EQ_INT(maildir_name_wsize(cases[i].name), cases[i].w);
	}
}

static void
test_usage(void)
{
	struct buf why = BUF_INIT, name = BUF_INIT;
	long long bytes = -1;
	char path[600];
	int fd;

	fresh_maildir();
	T_EQ_INT(maildir_usage(md, &bytes, &why), 0);	/* none yet */
	T_EQ_INT(bytes, 0);
	T_EQ_INT(maildir_create(md, &why), 0);
	fd = source("", "12345\r\n", 7);
	T_ASSERT(fd >= 0);
	T_EQ_INT(maildir_deliver(md, "H\n", 2, fd, 0, 7, &name, &why), 0);
	T_EQ_INT(maildir_deliver(md, "", 0, fd, 0, 7, &name, &why), 0);
	close(fd);
	T_EQ_INT(maildir_usage(md, &bytes, &why), 0);
	T_EQ_INT(bytes, 8 + 6);

	/* a seen message in cur/ with flags */
	snprintf(path, sizeof(path), "%s/cur/1.M1P1.h,S=1000:2,S", md);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	T_ASSERT(fd >= 0);
	close(fd);
	/* no S=: stat says 11 bytes */
	snprintf(path, sizeof(path), "%s/cur/2.M2P2.h:2,", md);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	T_ASSERT(fd >= 0);
	T_EQ_INT(write(fd, "hello world", 11), 11);
	close(fd);
	/* Maildir++ folder, and tmp/ which does not count */
	snprintf(path, sizeof(path), "%s/.Sent", md);
	T_EQ_INT(maildir_create(path, &why), 0);
	snprintf(path, sizeof(path), "%s/.Sent/cur/3.M3P3.h,S=500,W=510:2,S",
	    md);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	T_ASSERT(fd >= 0);
	close(fd);
	snprintf(path, sizeof(path), "%s/tmp/4.M4P4.h,S=7000", md);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	T_ASSERT(fd >= 0);
	close(fd);
	/* files written behind the usage file's back: counted again */
	maildir_usage_forget(md);
	T_EQ_INT(maildir_usage(md, &bytes, &why), 0);
	T_EQ_INT(bytes, 8 + 6 + 1000 + 11 + 500);
	unlink(path);
	buf_free(&why);
	buf_free(&name);
}

/* usage_append - raw text onto md's usage file; 0 or -1 */
static int
usage_append(const char *text)
{
	int fd = open(sub(MAILDIR_USAGE_FILE), O_WRONLY | O_APPEND);
	ssize_t n = (ssize_t)strlen(text);
	int ok;

	if (fd < 0)
		return -1;
	ok = write(fd, text, (size_t)n) == n;
	close(fd);
	return ok ? 0 : -1;
}

/* usage_plant - a file of size bytes (by its S=) in md's cur/ */
static void
usage_plant(const char *base, long long size)
{
	char path[600];
	int fd;

	snprintf(path, sizeof(path), "%s/cur/%s,S=%lld:2,", md, base, size);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	T_ASSERT(fd >= 0);
	close(fd);
}

static void
test_usage_file(void)
{
	struct buf why = BUF_INIT, name = BUF_INIT;
	long long bytes = -1;
	char line[128], path[600];
	int fd;

	fresh_maildir();
	T_EQ_INT(maildir_create(md, &why), 0);
	T_EQ_INT(maildir_usage(md, &bytes, &why), 0);
	T_EQ_INT(bytes, 0);
	T_EQ_INT(access(sub(MAILDIR_USAGE_FILE), F_OK), 0);
	/* deliveries add their lines: no walk needed, so a file planted
	 * behind the file's back is not seen */
	fd = source("", "12345\r\n", 7);
	T_ASSERT(fd >= 0);
	T_EQ_INT(maildir_deliver(md, "H\n", 2, fd, 0, 7, &name, &why), 0);
	T_EQ_INT(maildir_deliver(md, "", 0, fd, 0, 7, &name, &why), 0);
	close(fd);
	usage_plant("9.M9P9.h", 100000);
	T_EQ_INT(maildir_usage(md, &bytes, &why), 0);
	T_EQ_INT(bytes, 8 + 6);
	/* removals, and a .folder counting in its parent */
	maildir_usage_add(md, -6, -1);
	snprintf(path, sizeof(path), "%s/.Sent/", md);
	maildir_usage_add(path, 500, 1);
	T_EQ_INT(maildir_usage(md, &bytes, &why), 0);
	T_EQ_INT(bytes, 8 + 500);
	/* a torn line (a crash mid-append) is never believed: counted */
	T_EQ_INT(usage_append("12"), 0);
	T_EQ_INT(maildir_usage(md, &bytes, &why), 0);
	T_EQ_INT(bytes, 8 + 6 + 100000);
	/* an old count is made again */
	usage_plant("10.M10P10.h", 1);
	T_EQ_INT(maildir_usage(md, &bytes, &why), 0);
	T_EQ_INT(bytes, 8 + 6 + 100000);
	fd = open(sub(MAILDIR_USAGE_FILE), O_WRONLY | O_TRUNC);
	T_ASSERT(fd >= 0);
	snprintf(line, sizeof(line), "5 0 %lld\n",
	    (long long)time(NULL) - MAILDIR_USAGE_AGE - 5);
	T_EQ_INT(write(fd, line, strlen(line)), (ssize_t)strlen(line));
	close(fd);
	T_EQ_INT(maildir_usage(md, &bytes, &why), 0);
	T_EQ_INT(bytes, 8 + 6 + 100000 + 1);
	/* a file grown past its bound is counted again */
	usage_plant("11.M11P11.h", 2);
	for (int i = 0; i < MAILDIR_USAGE_MAX / 4; i++)
		maildir_usage_add(md, 0, 0);
	T_EQ_INT(maildir_usage(md, &bytes, &why), 0);
	T_EQ_INT(bytes, 8 + 6 + 100000 + 1 + 2);
	/* forget: gone, counted at the next read */
	maildir_usage_forget(md);
	T_ASSERT(access(sub(MAILDIR_USAGE_FILE), F_OK) < 0);
	maildir_usage_add(md, 1, 1);	/* no file: nothing to add to */
	T_ASSERT(access(sub(MAILDIR_USAGE_FILE), F_OK) < 0);
	T_EQ_INT(maildir_usage(md, &bytes, &why), 0);
	T_EQ_INT(bytes, 8 + 6 + 100000 + 1 + 2);
	/* what a count killed before its rename left is not believed, and
	 * the next count removes it: no file piles up per crash */
	maildir_usage_forget(md);
	fd = open(sub(MAILDIR_USAGE_FILE MAILDIR_USAGE_NEW),
	    O_WRONLY | O_CREAT | O_EXCL, 0600);
	T_ASSERT(fd >= 0);
	T_EQ_INT(write(fd, "7 0 1\n", 6), 6);
	close(fd);
	T_EQ_INT(maildir_usage(md, &bytes, &why), 0);
	T_EQ_INT(bytes, 8 + 6 + 100000 + 1 + 2);
	T_ASSERT(access(sub(MAILDIR_USAGE_FILE MAILDIR_USAGE_NEW), F_OK) < 0);
	T_EQ_INT(access(sub(MAILDIR_USAGE_FILE), F_OK), 0);
	buf_free(&why);
	buf_free(&name);
}

extern void (*maildir_usage_test_hook)(const char *step);

static const char *hook_step;	/* the step of a count to act at, once */
static void (*hook_act)(void);

/* usage_hook - maildir.c's steps: hook_act at hook_step */
static void
usage_hook(const char *step)
{
	if (hook_step != NULL && strcmp(step, hook_step) == 0) {
		hook_step = NULL;
		hook_act();
	}
}

/* usage_stale - md's usage file grown past its bound, its sum kept: the
 * next maildir_usage counts */
static void
usage_stale(void)
{
	static char pad[MAILDIR_USAGE_MAX + 4];

	for (size_t i = 0; i + 4 < sizeof(pad); i += 4)
		memcpy(pad + i, "0 0\n", 4);
	pad[sizeof(pad) - 4] = '\0';
	T_EQ_INT(usage_append(pad), 0);
}

/* act_deliver_100 - a delivery: its file, then its line */
static void
act_deliver_100(void)
{
	usage_plant("2.M2P2.h", 100);
	maildir_usage_add(md, 100, 1);
}

/* act_deliver_50 - another */
static void
act_deliver_50(void)
{
	usage_plant("3.M3P3.h", 50);
	maildir_usage_add(md, 50, 1);
}

/* act_count - a count, in the middle of someone's add */
static void
act_count(void)
{
	struct buf why = BUF_INIT;
	long long bytes = -1;

	usage_stale();
	T_EQ_INT(maildir_usage(md, &bytes, &why), 0);
	T_EQ_INT(bytes, 160);
	buf_free(&why);
}

/* act_forget - a message planted and the usage forgotten */
static void
act_forget(void)
{
	static int n;
	char base[32];

	n++;
	snprintf(base, sizeof(base), "%d.M4P4.h", n);
	usage_plant(base, 5);
	maildir_usage_forget(md);
}

/* test_usage_count_race - lines appended while a count walks or swaps
 * its file in are not lost; a forget meanwhile is not undone; a count
 * that does not get the lock writes nothing */
static void
test_usage_count_race(void)
{
	struct buf why = BUF_INIT;
	long long bytes = -1;
	int fd;

	fresh_maildir();
	T_EQ_INT(maildir_create(md, &why), 0);
	T_EQ_INT(maildir_usage(md, &bytes, &why), 0);
	usage_plant("1.M1P1.h", 10);
	maildir_usage_add(md, 10, 1);
	T_EQ_INT(maildir_usage_cached(md, &bytes, NULL), 1);
	T_EQ_INT(bytes, 10);
	maildir_usage_test_hook = usage_hook;
	/* a delivery while the count walks: walked again */
	usage_stale();
	hook_step = "walked";
	hook_act = act_deliver_100;
	T_EQ_INT(maildir_usage(md, &bytes, &why), 0);
	T_EQ_INT(bytes, 110);
	T_EQ_INT(maildir_usage_cached(md, &bytes, NULL), 1);
	T_EQ_INT(bytes, 110);
	/* one after the walk, before the new file is in place: carried */
	usage_stale();
	hook_step = "written";
	hook_act = act_deliver_50;
	T_EQ_INT(maildir_usage(md, &bytes, &why), 0);
	T_EQ_INT(bytes, 110);		/* the walk did not see it */
	T_EQ_INT(maildir_usage_cached(md, &bytes, NULL), 1);
	T_EQ_INT(bytes, 160);
	T_ASSERT(hook_step == NULL);
	/* a line written to the old file after the count's mark: the
	 * writer adds it to the new one */
	hook_step = "opened";
	hook_act = act_count;
	maildir_usage_add(md, 7, 1);
	T_ASSERT(hook_step == NULL);
	T_EQ_INT(maildir_usage_cached(md, &bytes, NULL), 1);
	T_EQ_INT(bytes, 167);
	/* another count holds the lock: this one counts, writes nothing */
	usage_stale();
	fd = open(md, O_RDONLY | O_DIRECTORY);
	T_ASSERT(fd >= 0);
	T_EQ_INT(flock(fd, LOCK_EX), 0);
	T_EQ_INT(maildir_usage(md, &bytes, &why), 0);
	T_EQ_INT(bytes, 160);
	T_EQ_INT(maildir_usage_cached(md, &bytes, NULL), 0);
	close(fd);
	/* forgotten while the count walks: walked again */
	hook_step = "walked";
	hook_act = act_forget;
	T_EQ_INT(maildir_usage(md, &bytes, &why), 0);
	T_EQ_INT(bytes, 165);
	T_EQ_INT(maildir_usage_cached(md, &bytes, NULL), 1);
	T_EQ_INT(bytes, 165);
	/* forgotten after the walk: the count is not put in its place */
	usage_stale();
	hook_step = "written";
	hook_act = act_forget;
	T_EQ_INT(maildir_usage(md, &bytes, &why), 0);
	T_EQ_INT(bytes, 165);
	T_ASSERT(access(sub(MAILDIR_USAGE_FILE), F_OK) < 0);
	T_EQ_INT(maildir_usage(md, &bytes, &why), 0);
	T_EQ_INT(bytes, 170);
	maildir_usage_test_hook = NULL;
	buf_free(&why);
}

/* test_usage_since - a read after maildir_usage_cached takes only the
 * lines appended since; a file replaced or forgotten is read anew */
static void
test_usage_since(void)
{
	struct maildir_usage_snap snap;
	struct buf why = BUF_INIT;
	long long bytes = -1;
	int fd;

	fresh_maildir();
	T_EQ_INT(maildir_create(md, &why), 0);
	usage_plant("1.M1P1.h", 10);
	T_EQ_INT(maildir_usage(md, &bytes, &why), 0);
	maildir_usage_add(md, 20, 1);
	T_EQ_INT(maildir_usage_cached(md, &bytes, &snap), 1);
	T_EQ_INT(bytes, 30);
	T_ASSERT(snap.ok);
	/* a delivery meanwhile is seen */
	maildir_usage_add(md, 300, 1);
	T_EQ_INT(maildir_usage_since(md, &snap, &bytes, &why), 0);
	T_EQ_INT(bytes, 330);
	/* what snap read is not read again: a line before its end changed
	 * in place does not show (a full read would see 90) */
	fd = open(sub(MAILDIR_USAGE_FILE), O_WRONLY);
	T_ASSERT(fd >= 0);
	T_EQ_INT(pwrite(fd, "80", 2, (off_t)snap.head_len), 2);
	close(fd);
	T_EQ_INT(maildir_usage_since(md, &snap, &bytes, &why), 0);
	T_EQ_INT(bytes, 330);
	T_EQ_INT(maildir_usage_cached(md, &bytes, NULL), 1);
	T_EQ_INT(bytes, 390);
	/* a count replaced the file: read anew */
	usage_stale();
	T_EQ_INT(maildir_usage(md, &bytes, &why), 0);
	T_EQ_INT(bytes, 10);
	T_EQ_INT(maildir_usage_since(md, &snap, &bytes, &why), 0);
	T_EQ_INT(bytes, 10);
	/* forgotten: counted */
	T_EQ_INT(maildir_usage_cached(md, &bytes, &snap), 1);
	maildir_usage_forget(md);
	usage_plant("2.M2P2.h", 5);
	T_EQ_INT(maildir_usage_since(md, &snap, &bytes, &why), 0);
	T_EQ_INT(bytes, 15);
	/* no snapshot (the file had to be counted): a plain usage */
	memset(&snap, 0, sizeof(snap));
	T_EQ_INT(maildir_usage_since(md, &snap, &bytes, &why), 0);
	T_EQ_INT(bytes, 15);
	buf_free(&why);
}

/* readonly_checks - deliveries into read-only tmp/ and new/ fail
 * cleanly; 0 or the number of the failed check */
static int
readonly_checks(int fd)
{
	struct buf why = BUF_INIT, name = BUF_INIT;
	int ret = 0;

	if (chmod(sub("tmp"), 0500) < 0)
		return 1;
	errno = 0;
	if (maildir_deliver(md, "", 0, fd, 0, 3, &name, &why) != -1)
		ret = 2;
	else if (errno != EACCES)
		ret = 3;
	else if (count_entries(sub("new")) != 0)
		ret = 4;
	if (chmod(sub("tmp"), 0700) < 0 && ret == 0)
		ret = 5;
	if (ret == 0 && chmod(sub("new"), 0500) < 0)
		ret = 6;
	errno = 0;
	if (ret == 0 && maildir_deliver(md, "", 0, fd, 0, 3, &name, &why) != -1)
		ret = 7;
	else if (ret == 0 && errno != EACCES)
		ret = 8;
	else if (ret == 0 && count_entries(sub("tmp")) != 0)
		ret = 9;
	else if (ret == 0 && count_entries(sub("new")) != 0)
		ret = 10;
	if (chmod(sub("new"), 0700) < 0 && ret == 0)
		ret = 11;
	if (ret != 0)
		fprintf(stderr, "  readonly check %d failed: %s\n", ret,
		    why.data);
	buf_free(&why);
	buf_free(&name);
	return ret;
}

static void
test_failures(void)
{
	struct buf why = BUF_INIT, name = BUF_INIT;
	int fd;

	fresh_maildir();
	fd = source("", "x\r\n", 3);
	T_ASSERT(fd >= 0);
	/* missing Maildir */
	errno = 0;
	T_EQ_INT(maildir_deliver(md, "", 0, fd, 0, 3, &name, &why), -1);
	T_EQ_INT(errno, ENOENT);
	T_ASSERT(strstr(why.data, "No such file") != NULL);

	/* new/ missing: the tmp file must go again */
	T_EQ_INT(maildir_create(md, &why), 0);
	T_EQ_INT(rmdir(sub("new")), 0);
	errno = 0;
	T_EQ_INT(maildir_deliver(md, "", 0, fd, 0, 3, &name, &why), -1);
	T_EQ_INT(errno, ENOENT);
	T_EQ_INT(count_entries(sub("tmp")), 0);

	/* unreadable source */
	T_EQ_INT(mkdir(sub("new"), 0700), 0);
	errno = 0;
	T_EQ_INT(maildir_deliver(md, "", 0, -1, 0, 3, &name, &why), -1);
	T_EQ_INT(errno, EBADF);
	T_EQ_INT(count_entries(sub("tmp")), 0);
	T_EQ_INT(count_entries(sub("new")), 0);

	/* read-only tmp/ and new/: root ignores modes, so run as nobody */
	if (geteuid() != 0) {
		T_EQ_INT(readonly_checks(fd), 0);
	} else {
		struct passwd *pw = getpwnam("nobody");
		char path[512];
		pid_t pid;
		int status = -1;

		T_ASSERT(pw != NULL);
		T_EQ_INT(chmod(tmpdir, 0711), 0);
		snprintf(path, sizeof(path), "%s/m%d", tmpdir, case_no);
		T_EQ_INT(chown(path, pw->pw_uid, pw->pw_gid), 0);
		snprintf(path, sizeof(path), "%s/m%d/a", tmpdir, case_no);
		T_EQ_INT(chown(path, pw->pw_uid, pw->pw_gid), 0);
		T_EQ_INT(chown(md, pw->pw_uid, pw->pw_gid), 0);
		T_EQ_INT(chown(sub("tmp"), pw->pw_uid, pw->pw_gid), 0);
		T_EQ_INT(chown(sub("new"), pw->pw_uid, pw->pw_gid), 0);
		fflush(NULL);
		if ((pid = fork()) == 0) {
			if (setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
				_exit(90);
			_exit(readonly_checks(fd));
		}
		T_ASSERT(pid > 0);
		T_EQ_INT(waitpid(pid, &status, 0), pid);
		T_ASSERT(WIFEXITED(status));
		T_EQ_INT(WEXITSTATUS(status), 0);
		T_EQ_INT(chmod(tmpdir, 0700), 0);
	}
	close(fd);
	buf_free(&why);
	buf_free(&name);
}

extern bool maildir_test_no_tmpfile;

/* batch_two_boxes - one batch, copies into two Maildirs (named tmp/ files
 * when no_tmpfile): all durable in new/, tmp/ empty, right content */
static void
batch_two_boxes(bool no_tmpfile)
{
	struct buf why = BUF_INIT, name = BUF_INIT, got = BUF_INIT;
	struct maildir_batch *b = maildir_batch_new();
	char box[2][300], sizes[64], sub_new[620];
	size_t idx[6];
	int fd;

	maildir_test_no_tmpfile = no_tmpfile;
	for (int k = 0; k < 2; k++) {
		snprintf(box[k], sizeof(box[k]), "%s", fresh_maildir());
		T_EQ_INT(maildir_create(box[k], &why), 0);
	}
	fd = source("", "x\r\n", 3);
	T_ASSERT(fd >= 0);
	for (int i = 0; i < 6; i++)
		idx[i] = maildir_batch_add(b, box[i % 2], "H: 1\n", 5, fd, 0,
		    3);
	T_EQ_INT(maildir_batch_pending(b, box[0]), 3 * 7);
	/* nothing is in new/ before the commit */
	snprintf(sub_new, sizeof(sub_new), "%s/new", box[0]);
	T_EQ_INT(count_entries(sub_new), 0);
	maildir_batch_commit(b);
	for (int i = 0; i < 6; i++) {
		T_EQ_INT(maildir_batch_result(b, idx[i], &name, &why), 0);
		name_sizes(sizes, sizeof(sizes), "H: 1\nx\n", 7);
		T_ASSERT(strstr(name.data, sizes) != NULL);
		snprintf(sub_new, sizeof(sub_new), "%s/new", box[i % 2]);
		buf_reset(&got);
		T_EQ_INT(slurp(sub_new, name.data, &got), 0);
		T_EQ_INT(got.len, 7);
		T_ASSERT(memcmp(got.data, "H: 1\nx\n", 7) == 0);
	}
	for (int k = 0; k < 2; k++) {
		snprintf(sub_new, sizeof(sub_new), "%s/new", box[k]);
		T_EQ_INT(count_entries(sub_new), 3);
		snprintf(sub_new, sizeof(sub_new), "%s/tmp", box[k]);
		T_EQ_INT(count_entries(sub_new), 0);
	}
	maildir_batch_free(&b);
	T_ASSERT(b == NULL);
	maildir_test_no_tmpfile = false;
	close(fd);
	buf_free(&why);
	buf_free(&name);
	buf_free(&got);
}

static void
test_batch(void)
{
	batch_two_boxes(false);
}

static void
test_batch_named(void)
{
	batch_two_boxes(true);
}

/* one Maildir of a batch fails: only its copies fail, and a batch freed
 * without a commit leaves nothing behind */
static void
test_batch_partial_failure(void)
{
	struct buf why = BUF_INIT, name = BUF_INIT;
	struct maildir_batch *b = maildir_batch_new();
	char good[300], bad[300], sub_dir[320];
	size_t g, x;
	int fd;

	snprintf(good, sizeof(good), "%s", fresh_maildir());
	T_EQ_INT(maildir_create(good, &why), 0);
	snprintf(bad, sizeof(bad), "%s", fresh_maildir());
	T_EQ_INT(maildir_create(bad, &why), 0);
	snprintf(sub_dir, sizeof(sub_dir), "%s/new", bad);
	T_EQ_INT(rmdir(sub_dir), 0);
	fd = source("", "x\r\n", 3);
	T_ASSERT(fd >= 0);
	g = maildir_batch_add(b, good, "", 0, fd, 0, 3);
	x = maildir_batch_add(b, bad, "", 0, fd, 0, 3);
	T_EQ_INT(maildir_batch_pending(b, bad), 2);
	maildir_batch_commit(b);
	T_EQ_INT(maildir_batch_result(b, g, &name, &why), 0);
	errno = 0;
	T_EQ_INT(maildir_batch_result(b, x, &name, &why), -1);
	T_EQ_INT(errno, ENOENT);
	T_ASSERT(strstr(why.data, "link") != NULL);
	snprintf(sub_dir, sizeof(sub_dir), "%s/tmp", bad);
	T_EQ_INT(count_entries(sub_dir), 0);
	maildir_batch_free(&b);

	/* never committed: the written copies go away */
	maildir_test_no_tmpfile = true;
	b = maildir_batch_new();
	(void)maildir_batch_add(b, good, "", 0, fd, 0, 3);
	snprintf(sub_dir, sizeof(sub_dir), "%s/tmp", good);
	T_EQ_INT(count_entries(sub_dir), 1);
	maildir_batch_free(&b);
	T_EQ_INT(count_entries(sub_dir), 0);
	snprintf(sub_dir, sizeof(sub_dir), "%s/new", good);
	T_EQ_INT(count_entries(sub_dir), 1);
	maildir_test_no_tmpfile = false;
	close(fd);
	buf_free(&why);
	buf_free(&name);
}

static const struct test_case cases[] = {
	{"create folders", test_create},
	{"deliver: header, CRLF to LF, lone CR", test_deliver_content},
	{"deliver: CRLF across 64 KiB reads", test_deliver_chunk_boundary},
	{"deliver: W= is the CRLF size", test_deliver_wire_size},
	{"deliver: offset and size; short source", test_deliver_partial_range},
	{"1,000 unique names", test_unique_names},
	{"S= and W= in names", test_name_size},
	{"a message from memory is stored as from a file", test_deliver_mem},
	{"usage sums S= and stat", test_usage},
	{"usage file: added, torn, old, big, forgotten", test_usage_file},
	{"usage count: no line lost to a count", test_usage_count_race},
	{"usage since a read: only the new lines", test_usage_since},
	{"failures leave tmp/ empty", test_failures},
	{"batch: copies into two Maildirs", test_batch},
	{"batch: named tmp/ files without O_TMPFILE", test_batch_named},
	{"batch: one Maildir fails, uncommitted batch", test_batch_partial_failure},
	{0},
};

int
main(void)
{
	return test_run_in(cases, tmpdir);
}
