/*
 * file - small file-system helpers: the one mkdir -p that the spool, the
 * directory, the mail store and master all use, the writeback hint that
 * batched fsyncs (smtpd's group commit, local's batches) start with, and
 * the naming of O_TMPFILE files (queue files, Maildir copies).
 */
#include <errno.h>
#include <fcntl.h>
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
