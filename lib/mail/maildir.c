/*
 * maildir - Maildir++ folder creation and the size sum used for quotas
 * (delivery itself is maildir_batch.c).
 *
 * Delivered files' names carry ",S=<bytes>" with the exact file size, so
 * quota sums need no stat() per message.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

/* maildir_name_size - the S= value in a Maildir++ file name, or -1 */
static long long
maildir_name_size(const char *name)
{
	const char *p = strstr(name, ",S=");
	long long n = 0;

	if (p == NULL)
		return -1;
	p += 3;
	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (n > (0x7fffffffffffffffLL - 9) / 10)
			return -1;
		n = n * 10 + (*p - '0');
	}
	if (*p != '\0' && *p != ',' && *p != ':')
		return -1;
	return n;
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

/* maildir_usage - bytes in new/ and cur/ of the inbox and its .folders */
int
maildir_usage(const char *path, long long *bytes_r, struct buf *why)
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
