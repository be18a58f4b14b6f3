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
 * number of processes can add to it without a lock. A quota check reads
 * the file instead of walking every folder.
 *
 * A count (maildir_usage_count) must not lose the lines appended while
 * it walks, nor those appended to the file it replaces: it opens the
 * file before the walk and walks again while lines come meanwhile (their
 * messages may or may not have been seen); then it swaps its new file in
 * (RENAME_EXCHANGE: a file removed meanwhile stays removed), appends
 * MAILDIR_USAGE_MOVED to the old one and carries every line before that
 * mark since the walk began into the new file. A writer whose file was
 * replaced under it (no link left after its write) and whose line came
 * after the mark adds the line again to the new file. Writers never
 * lock; counts take a flock on the Maildir, not waited for (a count that
 * does not get it only returns what it walked).
 *
 * It is a cache and never the truth: whatever changes the Maildir
 * without adding a line (a crash between the link and the line,
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
#include <sys/file.h>
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

/* maildir_name_num - the number after the first tag (",S=", ",W=") in
 * the base part of a Maildir++ file name (before ':'; the info part holds
 * flags), or -1 when there is none, it is empty, does not end at ',',
 * ':' or the name's end, or overflows */
static long long
maildir_name_num(const char *name, const char *tag)
{
	size_t tlen = strlen(tag), blen = strcspn(name, ":");
	const char *p = name, *end = name + blen;
	long long n = 0;

	for (;; p++) {
		if ((size_t)(end - p) < tlen)
			return -1;
		if (memcmp(p, tag, tlen) == 0)
			break;
	}
	p += tlen;
	if (p == end || *p < '0' || *p > '9')
		return -1;
	for (; p < end && *p >= '0' && *p <= '9'; p++) {
		if (n > (0x7fffffffffffffffLL - (*p - '0')) / 10)
			return -1;
		n = n * 10 + (*p - '0');
	}
	if (p != end && *p != ',')
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
 * maildir_usage_parse - add the "<bytes> <messages>" lines of data[0..n)
 * (ending in a newline; the first "<bytes> 0 <time>" when when_r is not
 * NULL, its time there) to *bytes and *msgs; -1 when a line is not one
 * or a sum overflows (a torn line from a crash is never believed)
 */
static int
maildir_usage_parse(char *data, size_t n, long long *bytes,
    long long *msgs, long long *when_r)
{
	long long b, c, when;
	char *p, *nl;
	bool first = when_r != NULL;

	if (n == 0 || data[n - 1] != '\n')
		return -1;
	for (p = data; p < data + n; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(data + n - p));
		*nl = '\0';
		if (first ? sscanf(p, "%lld %lld %lld", &b, &c, &when) != 3 :
		    sscanf(p, "%lld %lld", &b, &c) != 2)
			return -1;
		if (first)
			*when_r = when;
		first = false;
		if ((b > 0 && *bytes > 0x7fffffffffffffffLL - b) ||
		    (b < 0 && *bytes < -0x7fffffffffffffffLL - b) ||
		    c > 0x7fffffffLL || c < -0x7fffffffLL)
			return -1;
		*bytes += b;
		*msgs += c;
	}
	return 0;
}

/* maildir_usage_pread - n bytes at off of fd into buf; -1 when it
 * cannot (read error, or the file is shorter) */
static int
maildir_usage_pread(int fd, char *buf, size_t n, off_t off)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = pread(fd, buf + got, n - got, off + (off_t)got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

/* maildir_usage_fresh - is a count made at when still believed? */
static bool
maildir_usage_fresh(long long when)
{
	long long now = (long long)time(NULL);

	return when <= now && now - when <= MAILDIR_USAGE_AGE;
}

/*
 * maildir_usage_read - the usage file's sum into *bytes_r: 1; 0 when
 * there is none or it must be counted again (older than
 * MAILDIR_USAGE_AGE since its count, over MAILDIR_USAGE_MAX bytes, or
 * not well formed). What was read goes to snap, if not NULL.
 */
static int
maildir_usage_read(const char *file, long long *bytes_r,
    struct maildir_usage_snap *snap)
{
	char data[MAILDIR_USAGE_MAX + 1], *nl;
	long long sum = 0, msgs = 0, when = 0;
	struct stat st;
	ssize_t n;
	size_t got = 0;
	int fd;

	if ((fd = open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return 0;
	if (fstat(fd, &st) < 0) {
		(void)close(fd);
		return 0;
	}
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
	if (got > MAILDIR_USAGE_MAX || got == 0 ||
	    (nl = memchr(data, '\n', got)) == NULL)
		return 0;
	if (snap != NULL && (size_t)(nl + 1 - data) < sizeof(snap->head)) {
		memcpy(snap->head, data, (size_t)(nl + 1 - data));
		snap->head_len = (size_t)(nl + 1 - data);
	}
	if (maildir_usage_parse(data, got, &sum, &msgs, &when) < 0 ||
	    sum < 0 || !maildir_usage_fresh(when))
		return 0;
	*bytes_r = sum;
	if (snap != NULL && snap->head_len > 0) {
		snap->dev = st.st_dev;
		snap->ino = st.st_ino;
		snap->size = (off_t)got;
		snap->bytes = sum;
		snap->when = when;
		snap->ok = true;
	}
	return 1;
}

/*
 * maildir_usage_tail - the usage at snap brought up to date with the
 * lines appended since: 1; 0 when that cannot be (the file is not the
 * one snap read: a count replaced it, or it was forgotten; it grew past
 * its bound, or its count is no longer fresh)
 */
static int
maildir_usage_tail(const char *file, const struct maildir_usage_snap *snap,
    long long *bytes_r)
{
	char head[sizeof(snap->head)], data[MAILDIR_USAGE_MAX];
	long long sum = snap->bytes, msgs = 0;
	struct stat st;
	size_t n;
	int fd, ret = 0;

	if (!snap->ok || !maildir_usage_fresh(snap->when) ||
	    (fd = open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return 0;
	/* the same file: its inode, and its first line (an inode number
	 * may be used again by a new file) */
	if (fstat(fd, &st) < 0 || st.st_dev != snap->dev ||
	    st.st_ino != snap->ino || st.st_size < snap->size ||
	    st.st_size > MAILDIR_USAGE_MAX ||
	    maildir_usage_pread(fd, head, snap->head_len, 0) < 0 ||
	    memcmp(head, snap->head, snap->head_len) != 0)
		goto out;
	n = (size_t)(st.st_size - snap->size);
	if (n > 0 && (maildir_usage_pread(fd, data, n, snap->size) < 0 ||
	    maildir_usage_parse(data, n, &sum, &msgs, NULL) < 0))
		goto out;
	if (sum >= 0) {
		*bytes_r = sum;
		ret = 1;
	}
out:
	(void)close(fd);
	return ret;
}

/* Tests set this to act at the steps of a count and of an add
 * (maildir_test.c). Not in the header. */
void (*maildir_usage_test_hook)(const char *step);

/* maildir_usage_step - a test's hook, if any, at step */
static void
maildir_usage_step(const char *step)
{
	if (maildir_usage_test_hook != NULL)
		maildir_usage_test_hook(step);
}

/* maildir_usage_moved_in - is there a MAILDIR_USAGE_MOVED line in
 * [0, end) of the usage file fd (a replaced one)? */
static bool
maildir_usage_moved_in(int fd, off_t end)
{
	static const char mark[] = "\n" MAILDIR_USAGE_MOVED;
	const size_t mlen = sizeof(mark) - 1;
	char chunk[4096 + sizeof(mark)];
	size_t keep = 0;
	off_t off = 0;

	/* the mark follows a newline: it is never the first line */
	while (off < end) {
		size_t want = end - off > 4096 ? 4096 : (size_t)(end - off);
		ssize_t r = pread(fd, chunk + keep, want, off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		keep += (size_t)r;
		off += r;
		if (memmem(chunk, keep, mark, mlen) != NULL)
			return true;
		if (keep >= mlen) {
			memmove(chunk, chunk + keep - (mlen - 1), mlen - 1);
			keep = mlen - 1;
		}
	}
	return false;
}

/*
 * maildir_usage_carry - after a count replaced the usage file whose
 * old copy is open as old (O_APPEND), put the lines writers appended to
 * it since offset off (while the count walked and until it was
 * replaced) into the new one, fd, as a single line. The mark appended
 * to old first splits them from the writers still to come on old: those
 * see it and add their line to the new file themselves
 * (maildir_usage_add). -1 when they cannot be carried over.
 */
static int
maildir_usage_carry(int old, off_t off, int fd)
{
	static const char mark[] = MAILDIR_USAGE_MOVED;
	long long bytes = 0, msgs = 0;
	char line[64], *data;
	off_t end;
	size_t n;
	int len, ret = 0;

	if (write(old, mark, sizeof(mark) - 1) != (ssize_t)sizeof(mark) - 1 ||
	    (end = lseek(old, 0, SEEK_CUR)) < 0)
		return -1;
	end -= (off_t)sizeof(mark) - 1;
	if (end < off || end - off > 16 * MAILDIR_USAGE_MAX)
		return -1;
	if ((n = (size_t)(end - off)) == 0)
		return 0;
	data = xmalloc(n + 1);
	if (maildir_usage_pread(old, data, n, off) < 0 ||
	    maildir_usage_parse(data, n, &bytes, &msgs, NULL) < 0)
		ret = -1;
	x_free(&data);
	if (ret < 0 || (bytes == 0 && msgs == 0))
		return ret;
	len = snprintf(line, sizeof(line), "%lld %lld\n", bytes, msgs);
	return write(fd, line, (size_t)len) == len ? 0 : -1;
}

/*
 * maildir_usage_write - a fresh usage file with bytes as its count (a
 * cache: written to a new name and put in place, not synced; a failure
 * only means the next reader counts again). old is the file as it was
 * (O_APPEND; -1: there was none) when the walk that counted bytes began,
 * off its size then: the lines appended since are carried over.
 */
static void
maildir_usage_write(const char *path, const char *file, long long bytes,
    int old, off_t off)
{
	char line[64], *tmp;
	int fd, len, r = -1;
	bool ok;

	len = snprintf(line, sizeof(line), "%lld 0 %lld\n", bytes,
	    (long long)time(NULL));
	/* one fixed name: only the holder of maildir_usage_lock writes, and
	 * what a writer killed before its rename left is removed here, not
	 * left behind under a new random name each time */
	tmp = xasprintf("%s" MAILDIR_USAGE_NEW, file);
	if (unlink(tmp) < 0 && errno != ENOENT) {
		msg_warn("%s: cannot remove %s: %m", path, tmp);
		x_free(&tmp);
		return;
	}
	/* O_APPEND: writers add to it once it has the name */
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_APPEND | O_CLOEXEC, 0600)) < 0) {
		if (errno != ENOENT)
			msg_warn("%s: cannot write its usage file: %m", path);
		x_free(&tmp);
		return;
	}
	ok = write(fd, line, (size_t)len) == len;
	maildir_usage_step("written");
	if (ok && old >= 0) {
		/* swapped, not renamed over: the old file gone meanwhile
		 * (maildir_usage_forget) must stay gone, and its name
		 * then unlinked is the old file */
		r = renameat2(AT_FDCWD, tmp, AT_FDCWD, file, RENAME_EXCHANGE);
		if (r < 0 && (errno == EINVAL || errno == ENOSYS))
			r = rename(tmp, file);
		if (r < 0 && errno == ENOENT) {
			(void)unlink(tmp);
			goto out;	/* forgotten: the next read counts */
		}
	} else if (ok) {
		r = rename(tmp, file);
	}
	if (!ok || r < 0) {
		msg_warn("%s: cannot write its usage file: %m", path);
		(void)unlink(tmp);
		goto out;
	}
	(void)unlink(tmp);	/* the old file, swapped; or nothing */
	if (old >= 0 && maildir_usage_carry(old, off, fd) < 0) {
		msg_warn("%s: cannot carry its usage lines over: %m", path);
		(void)unlink(file);
	}
out:
	(void)close(fd);
	x_free(&tmp);
}

/* maildir_usage_lock - a count writes the usage file of the Maildir at
 * path only while it holds this lock (flock on its folder, not waited
 * for): the fd, or -1 when another count holds it */
static int
maildir_usage_lock(const char *file)
{
	char *dir = xstrdup(file), *slash = strrchr(dir, '/');
	int fd;

	*slash = '\0';
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	x_free(&dir);
	if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0) {
		(void)close(fd);
		fd = -1;
	}
	return fd;
}

/*
 * maildir_usage_count - walk the Maildir at path and write the count
 * to its usage file (when no other count is writing it). Writers append
 * without a lock while it walks, so the file is opened before the walk:
 * when lines came meanwhile the walk may or may not have seen their
 * messages, and it is made again (MAILDIR_USAGE_TRIES times at most,
 * then the lines are taken as not seen); lines that come after it are
 * carried over into the new file (maildir_usage_write).
 */
static int
maildir_usage_count(const char *path, const char *file, long long *bytes_r,
    struct buf *why)
{
	struct stat before, after, st;
	int old = -1, lock, ret = -1;
	bool gone = false;

	lock = maildir_usage_lock(file);
	for (int tries = 0; tries < MAILDIR_USAGE_TRIES; tries++) {
		gone = false;
		if (old >= 0)
			(void)close(old);
		old = open(file, O_RDWR | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
		if (old >= 0 && fstat(old, &before) < 0) {
			(void)close(old);
			old = -1;
		}
		if (maildir_usage_walk(path, bytes_r, why) < 0)
			goto out;
		maildir_usage_step("walked");
		if (old < 0)
			break;		/* none: nobody adds to it */
		if (fstat(old, &after) < 0)
			goto out_ok;
		/* forgotten meanwhile: what changed may not be seen */
		gone = after.st_nlink == 0;
		if (!gone && after.st_size == before.st_size)
			break;
	}
	if (lock >= 0 && !gone && stat(path, &st) == 0 &&
	    S_ISDIR(st.st_mode))
		maildir_usage_write(path, file, *bytes_r, old,
		    old >= 0 ? before.st_size : 0);
out_ok:
	ret = 0;
out:
	if (old >= 0)
		(void)close(old);
	if (lock >= 0)
		(void)close(lock);
	return ret;
}

/* maildir_usage - see maildir.h */
int
maildir_usage(const char *path, long long *bytes_r, struct buf *why)
{
	char *file = maildir_usage_root(path);
	int ret = 0;

	if (maildir_usage_read(file, bytes_r, NULL) != 1)
		ret = maildir_usage_count(path, file, bytes_r, why);
	x_free(&file);
	return ret;
}

/* maildir_usage_cached - see maildir.h */
int
maildir_usage_cached(const char *path, long long *bytes_r,
    struct maildir_usage_snap *snap)
{
	char *file = maildir_usage_root(path);
	int ret;

	if (snap != NULL)
		memset(snap, 0, sizeof(*snap));
	ret = maildir_usage_read(file, bytes_r, snap);
	x_free(&file);
	return ret;
}

/* maildir_usage_since - see maildir.h */
int
maildir_usage_since(const char *path, const struct maildir_usage_snap *snap,
    long long *bytes_r, struct buf *why)
{
	char *file = maildir_usage_root(path);
	int ret = 0;

	if (maildir_usage_tail(file, snap, bytes_r) != 1 &&
	    maildir_usage_read(file, bytes_r, NULL) != 1)
		ret = maildir_usage_count(path, file, bytes_r, why);
	x_free(&file);
	return ret;
}

/* maildir_usage_append - one line onto the usage file, or none when
 * there is no file; again onto its new file when a count replaced it
 * after the open but before the line could be carried over */
static void
maildir_usage_append(const char *file, const char *line, int len,
    bool again)
{
	struct stat st;
	off_t end;
	int fd;

	/* none: the next maildir_usage counts the directories */
	if ((fd = open(file, O_RDWR | O_APPEND | O_NOFOLLOW |
	    O_CLOEXEC)) < 0)
		return;
	maildir_usage_step("opened");
	/* one write of one short line: appends of several processes
	 * never interleave within a line */
	if (write(fd, line, (size_t)len) != len) {
		msg_warn("%s: cannot add to it: %m", file);
		(void)unlink(file);
		(void)close(fd);
		return;
	}
	/* still linked after the write: any count replaces the file
	 * later, and carries the line (maildir_usage_write) */
	if (again && fstat(fd, &st) == 0 && st.st_nlink == 0 &&
	    (end = lseek(fd, 0, SEEK_CUR)) >= len &&
	    maildir_usage_moved_in(fd, end - len)) {
		(void)close(fd);
		maildir_usage_append(file, line, len, false);
		return;
	}
	(void)close(fd);
}

/* maildir_usage_add - see maildir.h */
void
maildir_usage_add(const char *folder, long long bytes, int count)
{
	char *file = maildir_usage_root(folder), line[64];
	int len;

	len = snprintf(line, sizeof(line), "%lld %d\n", bytes, count);
	maildir_usage_append(file, line, len, true);
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
