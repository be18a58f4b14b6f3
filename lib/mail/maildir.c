/*
 * maildir - Maildir++ folder creation and the size sum used for quotas
 * (delivery itself is maildir_batch.c).
 *
 * Delivered files' names carry ",S=<bytes>" with the exact file size, so
 * quota sums need no stat() per message. The sum is kept in the
 * Maildir's MAILDIR_USAGE_FILE the way Maildir++ keeps its maildirsize:
 * a first line "<bytes> 0 <time of the count>" written when the folders
 * are counted, then one line "<bytes> <messages>" (signed) appended by
 * every writer that adds or removes a message (maildir_usage_add:
 * delivery and IMAP APPEND through maildir_batch.c, EXPUNGE through the
 * index, POP3's deletions at UPDATE), with O_APPEND, so that any
 * number of processes can add to it without a lock. A quota check reads the file instead of walking every
 * folder. It is a cache and never the truth: whatever changes the
 * Maildir without adding a line (a crash between the link and the line,
 * another Maildir tool, COPY) is corrected by the next count, which
 * happens when the file is MAILDIR_USAGE_AGE old, has grown past
 * MAILDIR_USAGE_MAX bytes, is missing or does not parse; a folder
 * deleted or rebuilt removes it (maildir_usage_forget).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/file.h"
#include "base/log.h"
#include "base/mem.h"
#include "mail/maildir.h"

/* maildir_exists - are path's cur/ new/ tmp/ there, as folders? */
static bool
maildir_exists(const char *path, const char *const *subs, size_t n)
{
	struct stat st;
	bool ok = true;

	for (size_t i = 0; ok && i < n; i++) {
		char *sub = xasprintf("%s/%s", path, subs[i]);

		ok = stat(sub, &st) == 0 && S_ISDIR(st.st_mode);
		x_free(&sub);
	}
	return ok;
}

/* maildir_create - make path and its cur/ new/ tmp/ (mode 0700); every
 * IMAP login asks, so a Maildir that is there costs three stat()s, not a
 * mkdir() and a stat() per level of each path */
int
maildir_create(const char *path, struct buf *why)
{
	static const char *const subs[] = {"cur", "new", "tmp"};
	int ret;

	if (maildir_exists(path, subs, sizeof(subs) / sizeof(*subs)))
		return 0;
	ret = file_mkdirs(path, 0700, why);

	for (size_t i = 0; ret == 0 && i < sizeof(subs) / sizeof(*subs); i++) {
		char *sub = xasprintf("%s/%s", path, subs[i]);

		ret = file_mkdirs(sub, 0700, why);
		x_free(&sub);
	}
	return ret;
}

/* maildir_name_num - the number after the first tag (",S=", ",W=") in a
 * Maildir++ file name, or -1 when there is none, it is empty, does not
 * end at ',', ':' or the name's end, or overflows */
static long long
maildir_name_num(const char *name, const char *tag)
{
	const char *p = strstr(name, tag);
	long long n = 0;

	if (p == NULL)
		return -1;
	p += strlen(tag);
	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (n > (0x7fffffffffffffffLL - (*p - '0')) / 10)
			return -1;
		n = n * 10 + (*p - '0');
	}
	if (*p != '\0' && *p != ',' && *p != ':')
		return -1;
	return n;
}

/* maildir_name_size - see maildir.h */
long long
maildir_name_size(const char *name)
{
	return maildir_name_num(name, ",S=");
}

/* maildir_name_wsize - see maildir.h */
long long
maildir_name_wsize(const char *name)
{
	return maildir_name_num(name, ",W=");
}

/* maildir_sum - add up one new/ or cur/ folder; a missing one is empty */
static int
maildir_sum(const char *dir, long long *bytes, struct buf *why)
{
	struct dirent *de;
	struct stat st;
	DIR *dp;

	if ((dp = opendir(dir)) == NULL) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;	/* no such folder, or a plain file */
		buf_printf(why, "opendir %s: %s", dir, strerror(errno));
		return -1;
	}
	while ((errno = 0, de = readdir(dp)) != NULL) {
		long long n;

		if (de->d_name[0] == '.')
			continue;
		if ((n = maildir_name_size(de->d_name)) < 0) {
			if (fstatat(dirfd(dp), de->d_name, &st,
			    AT_SYMLINK_NOFOLLOW) < 0) {
				if (errno == ENOENT)
					continue;	/* moved meanwhile */
				buf_printf(why, "stat %s/%s: %s", dir,
				    de->d_name, strerror(errno));
				closedir(dp);
				return -1;
			}
			if (!S_ISREG(st.st_mode))
				continue;
			n = (long long)st.st_size;
		}
		*bytes += n;
	}
	if (errno != 0) {
		buf_printf(why, "readdir %s: %s", dir, strerror(errno));
		closedir(dp);
		return -1;
	}
	closedir(dp);
	return 0;
}

/* maildir_usage_folder - new/ and cur/ of one folder */
static int
maildir_usage_folder(const char *folder, long long *bytes, struct buf *why)
{
	char *p;
	int ret;

	p = xasprintf("%s/new", folder);
	ret = maildir_sum(p, bytes, why);
	x_free(&p);
	if (ret < 0)
		return -1;
	p = xasprintf("%s/cur", folder);
	ret = maildir_sum(p, bytes, why);
	x_free(&p);
	return ret;
}

/* maildir_usage_walk - bytes in new/ and cur/ of the inbox and its
 * .folders, counted from the directories */
static int
maildir_usage_walk(const char *path, long long *bytes_r, struct buf *why)
{
	long long bytes = 0;
	struct dirent *de;
	DIR *dp;

	*bytes_r = 0;
	if (maildir_usage_folder(path, &bytes, why) < 0)
		return -1;
	/* Maildir++ folders (.Sent, .Trash) count toward the quota */
	if ((dp = opendir(path)) == NULL) {
		if (errno == ENOENT)
			return 0;	/* never delivered to: empty */
		buf_printf(why, "opendir %s: %s", path, strerror(errno));
		return -1;
	}
	while ((errno = 0, de = readdir(dp)) != NULL) {
		char *sub;
		int ret;

		if (de->d_name[0] != '.' || strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
			continue;
		sub = xasprintf("%s/%s", path, de->d_name);
		ret = maildir_usage_folder(sub, &bytes, why);
		x_free(&sub);
		if (ret < 0) {
			closedir(dp);
			return -1;
		}
	}
	if (errno != 0) {
		buf_printf(why, "readdir %s: %s", path, strerror(errno));
		closedir(dp);
		return -1;
	}
	closedir(dp);
	*bytes_r = bytes;
	return 0;
}

/* maildir_usage_root - the Maildir whose usage file counts the folder
 * at path: a Maildir++ folder (".Sent") counts in its parent's */
static char *
maildir_usage_root(const char *path)
{
	const char *end = path + strlen(path), *slash;

	while (end > path + 1 && end[-1] == '/')
		end--;
	for (slash = end; slash > path && slash[-1] != '/'; slash--)
		;
	if (slash > path + 1 && *slash == '.' && slash < end)
		return xasprintf("%.*s%s", (int)(slash - 1 - path), path,
		    "/" MAILDIR_USAGE_FILE);
	return xasprintf("%.*s/%s", (int)(end - path), path,
	    MAILDIR_USAGE_FILE);
}

/*
 * maildir_usage_read - the usage file's sum into *bytes_r: 1; 0 when
 * there is none or it must be counted again (older than
 * MAILDIR_USAGE_AGE since its count, over MAILDIR_USAGE_MAX bytes, or
 * not well formed: a torn line from a crash is never believed)
 */
static int
maildir_usage_read(const char *file, long long *bytes_r)
{
	char data[MAILDIR_USAGE_MAX + 1], *p, *nl;
	long long sum = 0, b, c, when = 0;
	ssize_t n;
	size_t got = 0;
	int fd, first = 1;

	if ((fd = open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return 0;
	while (got < sizeof(data) && (n = read(fd, data + got,
	    sizeof(data) - got)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			(void)close(fd);
			return 0;
		}
		got += (size_t)n;
	}
	(void)close(fd);
	if (got == 0 || got > MAILDIR_USAGE_MAX || data[got - 1] != '\n')
		return 0;
	data[got] = '\0';
	for (p = data; *p != '\0'; p = nl + 1) {
		nl = strchr(p, '\n');
		*nl = '\0';
		if (first ? sscanf(p, "%lld %lld %lld", &b, &c, &when) != 3 :
		    sscanf(p, "%lld %lld", &b, &c) != 2)
			return 0;
		first = 0;
		if ((b > 0 && sum > 0x7fffffffffffffffLL - b) ||
		    (b < 0 && sum < -0x7fffffffffffffffLL - b))
			return 0;
		sum += b;
	}
	if (sum < 0 || when > (long long)time(NULL) ||
	    (long long)time(NULL) - when > MAILDIR_USAGE_AGE)
		return 0;
	*bytes_r = sum;
	return 1;
}

/* maildir_usage_write - a fresh usage file with bytes as its count (a
 * cache: written to a new name and renamed over, not synced; a failure
 * only means the next reader counts again) */
static void
maildir_usage_write(const char *path, const char *file, long long bytes)
{
	char line[64], *tmp;
	int fd, len;
	bool ok;

	len = snprintf(line, sizeof(line), "%lld 0 %lld\n", bytes,
	    (long long)time(NULL));
	tmp = xasprintf("%s.XXXXXX", file);
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
		if (errno != ENOENT)
			msg_warn("%s: cannot write its usage file: %m", path);
		x_free(&tmp);
		return;
	}
	ok = write(fd, line, (size_t)len) == len;
	if (close(fd) < 0)
		ok = false;
	if (!ok || rename(tmp, file) < 0) {
		msg_warn("%s: cannot write its usage file: %m", path);
		(void)unlink(tmp);
	}
	x_free(&tmp);
}

/* maildir_usage - see maildir.h */
int
maildir_usage(const char *path, long long *bytes_r, struct buf *why)
{
	char *file = maildir_usage_root(path);
	struct stat st;
	int ret = 0;

	if (maildir_usage_read(file, bytes_r) == 1)
		goto out;
	if ((ret = maildir_usage_walk(path, bytes_r, why)) == 0 &&
	    stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		maildir_usage_write(path, file, *bytes_r);
out:
	x_free(&file);
	return ret;
}

/* maildir_usage_cached - see maildir.h */
int
maildir_usage_cached(const char *path, long long *bytes_r)
{
	char *file = maildir_usage_root(path);
	int ret = maildir_usage_read(file, bytes_r);

	x_free(&file);
	return ret;
}

/* maildir_usage_add - see maildir.h */
void
maildir_usage_add(const char *folder, long long bytes, int count)
{
	char *file = maildir_usage_root(folder), line[64];
	int fd, len;

	/* none: the next maildir_usage counts the directories */
	if ((fd = open(file, O_WRONLY | O_APPEND | O_NOFOLLOW |
	    O_CLOEXEC)) < 0) {
		x_free(&file);
		return;
	}
	/* one write of one short line: appends of several processes
	 * never interleave within a line */
	len = snprintf(line, sizeof(line), "%lld %d\n", bytes, count);
	if (write(fd, line, (size_t)len) != len) {
		msg_warn("%s: cannot add to it: %m", file);
		(void)unlink(file);
	}
	(void)close(fd);
	x_free(&file);
}

/* maildir_usage_forget - see maildir.h */
void
maildir_usage_forget(const char *path)
{
	char *file = maildir_usage_root(path);

	if (unlink(file) < 0 && errno != ENOENT)
		msg_warn("unlink %s: %m", file);
	x_free(&file);
}
