/*
 * file - small file-system helpers: the one mkdir -p that the spool, the
 * directory, the mail store and master all use, the writeback hint that
 * batched fsyncs (smtpd's group commit, local's batches) start with, and
 * the naming of O_TMPFILE files (queue files, Maildir copies), and the
 * owner and mode changes master and heraldctl make as root in folders a
 * service user can write, through descriptors so no link can redirect
 * them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/file.h"
#include "base/mem.h"

/* file_mkdir_one - mkdir that accepts an existing folder */
static int
file_mkdir_one(const char *path, mode_t mode, struct buf *why)
{
	struct stat st;

	if (mkdir(path, mode) == 0)
		return 0;
	if (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	if (errno == EEXIST)
		errno = ENOTDIR;
	buf_printf(why, "mkdir %s: %s", path, strerror(errno));
	return -1;
}

/* file_mkdirs - mkdir -p with mode for the folders it makes */
int
file_mkdirs(const char *path, mode_t mode, struct buf *why)
{
	char *copy = xstrdup(path);
	int ret = 0;

	for (char *p = copy + 1; ret == 0 && *p != '\0'; p++) {
		if (*p != '/' || p[-1] == '/')
			continue;
		*p = '\0';
		ret = file_mkdir_one(copy, mode, why);
		*p = '/';
	}
	if (ret == 0)
		ret = file_mkdir_one(copy, mode, why);
	x_free(&copy);
	return ret;
}

/* file_start_writeback - start writeback of fd's dirty pages (a hint) */
void
file_start_writeback(int fd)
{
	int saved = errno;

	(void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	errno = saved;
}

/* file_link_fd - name an O_TMPFILE file */
int
file_link_fd(int fd, const char *path)
{
	char proc[64];
	int r;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	r = linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW);
	if (r < 0 && errno == ENOENT && access("/proc/self/fd", X_OK) < 0)
		r = linkat(fd, "", AT_FDCWD, path, AT_EMPTY_PATH);
	return r;
}

#define FILE_TYPE_NAME(t) ((t) == S_IFDIR ? "folder" : "regular file")

/* file_fix_fd - fchown and fchmod where owner or mode differ */
int
file_fix_fd(int fd, const char *name, const struct file_owner *want,
    struct buf *why)
{
	struct stat st;
	mode_t mode;

	if (fstat(fd, &st) < 0) {
		buf_printf(why, "stat %s: %s", name, strerror(errno));
		return -1;
	}
	if ((want->uid != (uid_t)-1 && st.st_uid != want->uid) ||
	    (want->gid != (gid_t)-1 && st.st_gid != want->gid)) {
		if (fchown(fd, want->uid, want->gid) < 0) {
			buf_printf(why, "chown %s: %s", name, strerror(errno));
			return -1;
		}
	}
	mode = ((st.st_mode & 07777) & ~want->clear) | want->set;
	if (mode != (st.st_mode & 07777) && fchmod(fd, mode) < 0) {
		buf_printf(why, "chmod %s: %s", name, strerror(errno));
		return -1;
	}
	return 0;
}

/* file_fix_at - file_fix_fd on an entry, never through a link */
int
file_fix_at(int dirfd, const char *name, mode_t type,
    const struct file_owner *want, int *fd_r, struct buf *why)
{
	struct stat st;
	int fd, flags;

	if (fd_r != NULL)
		*fd_r = -1;
	/* O_NONBLOCK: a FIFO planted in the folder must not hang us */
	flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
	if (type == S_IFDIR)
		flags |= O_DIRECTORY;
	if ((fd = openat(dirfd, name, flags)) < 0) {
		if (errno == ENOENT)
			return 0;
		if (errno == ELOOP)
			buf_printf(why, "%s is a symbolic link, not a %s: not "
			    "changed", name, FILE_TYPE_NAME(type));
		else if (errno == ENOTDIR && type == S_IFDIR)
			buf_printf(why, "%s is not a folder: not changed",
			    name);
		else
			buf_printf(why, "open %s: %s", name, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		buf_printf(why, "stat %s: %s", name, strerror(errno));
		(void)close(fd);
		return -1;
	}
	if ((st.st_mode & S_IFMT) != type) {
		buf_printf(why, "%s is not a %s: not changed", name,
		    FILE_TYPE_NAME(type));
		(void)close(fd);
		return -1;
	}
	if (type == S_IFREG && st.st_nlink > 1) {
		buf_printf(why, "%s has %ju links: not changed", name,
		    (uintmax_t)st.st_nlink);
		(void)close(fd);
		return -1;
	}
	if (file_fix_fd(fd, name, want, why) < 0) {
		(void)close(fd);
		return -1;
	}
	if (fd_r != NULL)
		*fd_r = fd;
	else
		(void)close(fd);
	return 1;
}
