/*
 * maildir - Maildir++ delivery (tmp/ -> fsync -> link into new/ -> fsync
 * new/), folder creation, and the size sum used for quotas.
 *
 * A delivered file is the header followed by the message with CRLF line
 * ends turned into LF (a lone CR stays). Its name carries ",S=<bytes>" with
 * the exact file size, so quota sums need no stat() per message, and
 * ",W=<bytes>" with the size the message has with CRLF line ends (every
 * LF not already preceded by a CR counted as two bytes), which is what a
 * POP3 server announces in LIST and sends in RETR (Dovecot's convention).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/file.h"
#include "base/log.h"
#include "base/mem.h"
#include "mail/maildir.h"

#define MAILDIR_CHUNK 65536
#define MAILDIR_TRIES 16	/* tmp/ name collisions before giving up */

static unsigned long maildir_counter;

/* maildir_create - make path and its cur/ new/ tmp/ (mode 0700) */
int
maildir_create(const char *path, struct buf *why)
{
	static const char *const subs[] = {"cur", "new", "tmp"};
	int ret = file_mkdirs(path, 0700, why);

	for (size_t i = 0; ret == 0 && i < sizeof(subs) / sizeof(*subs); i++) {
		char *sub = xasprintf("%s/%s", path, subs[i]);

		ret = file_mkdirs(sub, 0700, why);
		x_free(&sub);
	}
	return ret;
}

/* maildir_host - host name with '/', ':' and ',' escaped (Maildir spec) */
static void
maildir_host(struct buf *out)
{
	char host[256];

	if (gethostname(host, sizeof(host)) < 0)
		strcpy(host, "localhost");
	host[sizeof(host) - 1] = '\0';
	for (const char *p = host; *p; p++) {
		if (*p == '/')
			buf_puts(out, "\\057");
		else if (*p == ':')
			buf_puts(out, "\\072");
		else if (*p == ',')
			buf_puts(out, "\\054");
		else
			buf_putc(out, *p);
	}
}

/* maildir_write - write all of p; -1 with errno */
static int
maildir_write(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * maildir_wire_extra - how many bytes LF -> CRLF adds to p[0..n): one per
 * LF not preceded by a CR (*cr carries "the last byte was CR" across
 * calls, so a CRLF split over two writes counts right)
 */
static long long
maildir_wire_extra(const char *p, size_t n, bool *cr)
{
	long long extra = 0;

	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\n' && !*cr)
			extra++;
		*cr = p[i] == '\r';
	}
	return extra;
}

/*
 * maildir_copy - append size bytes at off of fd to out, CRLF -> LF. A CR
 * at the end of a chunk waits for the next chunk's first byte. Returns the
 * bytes written, or -1 with errno; *extra_r grows by what LF -> CRLF of
 * the written bytes adds (maildir_wire_extra, state in *wcr).
 */
static long long
maildir_copy(int out, int fd, off_t off, off_t size, long long *extra_r,
    bool *wcr)
{
	char *in = xmalloc(MAILDIR_CHUNK), *conv = xmalloc(MAILDIR_CHUNK + 1);
	long long written = 0;
	bool cr = false;	/* a CR is pending from the last chunk */
	off_t done = 0;
	int ret = 0;

	while (done < size) {
		size_t want = size - done > MAILDIR_CHUNK ? MAILDIR_CHUNK :
		    (size_t)(size - done);
		ssize_t r = pread(fd, in, want, off + done);
		size_t n = 0;

		if (r < 0) {
			if (errno == EINTR)
				continue;
			ret = -1;
			break;
		}
		if (r == 0) {
			errno = EIO;	/* the queue file is shorter than said */
			ret = -1;
			break;
		}
		for (ssize_t i = 0; i < r; i++) {
			if (cr && in[i] != '\n')
				conv[n++] = '\r';
			cr = in[i] == '\r';
			if (!cr)
				conv[n++] = in[i];
		}
		if (maildir_write(out, conv, n) < 0) {
			ret = -1;
			break;
		}
		*extra_r += maildir_wire_extra(conv, n, wcr);
		written += (long long)n;
		done += r;
	}
	if (ret == 0 && cr) {
		if (maildir_write(out, "\r", 1) < 0)
			ret = -1;
		else
			written++;
		*wcr = true;
	}
	x_free(&in);
	x_free(&conv);
	return ret < 0 ? -1 : written;
}

/* maildir_fsync_dir - make a folder's entries durable */
static int
maildir_fsync_dir(const char *path)
{
	int fd, saved;

	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -1;
	if (fsync(fd) < 0) {
		saved = errno;
		(void)close(fd);
		errno = saved;
		return -1;
	}
	return close(fd);
}

/* maildir_deliver - write header + converted message into new/ */
int
maildir_deliver(const char *path, const char *header, size_t hlen, int fd,
    off_t off, off_t size, struct buf *name_r, struct buf *why)
{
	struct buf base = BUF_INIT, tmp = BUF_INIT, final = BUF_INIT;
	struct timeval tv;
	const char *step;
	long long body, extra = 0;
	int out = -1, saved, ret = -1;
	bool linked = false, wcr = false;

	if (size < 0 || off < 0) {
		errno = EINVAL;
		buf_printf(why, "maildir delivery: bad message size");
		return -1;
	}
	/* a unique name in tmp/; O_EXCL catches the impossible collision */
	for (int tries = 0; out < 0 && tries < MAILDIR_TRIES; tries++) {
		if (gettimeofday(&tv, NULL) < 0) {
			step = "gettimeofday";
			goto fail;
		}
		buf_reset(&base);
		buf_printf(&base, "%lld.M%06ldP%ldQ%lu.", (long long)tv.tv_sec,
		    (long)tv.tv_usec, (long)getpid(), ++maildir_counter);
		maildir_host(&base);
		buf_reset(&tmp);
		buf_printf(&tmp, "%s/tmp/%s", path, base.data);
		out = open(tmp.data, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW |
		    O_CLOEXEC, 0600);
		if (out < 0 && errno != EEXIST) {
			step = "create";
			goto fail;
		}
	}
	if (out < 0) {
		step = "create";
		goto fail;
	}
	step = "write";
	if (maildir_write(out, header, hlen) < 0)
		goto fail_unlink;
	extra = maildir_wire_extra(header, hlen, &wcr);
	if ((body = maildir_copy(out, fd, off, size, &extra, &wcr)) < 0)
		goto fail_unlink;
	step = "fsync";
	if (fsync(out) < 0)
		goto fail_unlink;
	step = "close";
	ret = close(out);
	out = -1;
	if (ret < 0)
		goto fail_unlink;
	ret = -1;

	buf_printf(&final, "%s/new/%s,S=%lld,W=%lld", path, base.data,
	    (long long)hlen + body, (long long)hlen + body + extra);
	step = "link";
	if (link(tmp.data, final.data) == 0) {
		linked = true;
		if (unlink(tmp.data) < 0)
			msg_warn("unlink %s: %m", tmp.data);
	} else if (errno == EXDEV || errno == EPERM || errno == ENOSYS ||
	    errno == EOPNOTSUPP) {
		step = "rename";
		if (rename(tmp.data, final.data) < 0)
			goto fail_unlink;
		linked = true;
	} else {
		goto fail_unlink;
	}
	buf_reset(&tmp);
	buf_printf(&tmp, "%s/new", path);
	step = "fsync new/";
	if (maildir_fsync_dir(tmp.data) < 0) {
		/* not durable: the caller retries, so do not leave a copy */
		saved = errno;
		(void)unlink(final.data);
		buf_printf(why, "maildir %s: %s: %s", path, step,
		    strerror(saved));
		errno = saved;
		goto out;
	}
	if (name_r != NULL) {
		buf_reset(name_r);
		buf_puts(name_r, strrchr(final.data, '/') + 1);
	}
	ret = 0;
	goto out;

fail_unlink:
	saved = errno;
	if (out >= 0)
		(void)close(out);
	if (!linked)
		(void)unlink(tmp.data);
	errno = saved;
fail:
	saved = errno;
	buf_printf(why, "maildir %s: %s: %s", path, step, strerror(saved));
	errno = saved;
out:
	saved = errno;
	buf_free(&base);
	buf_free(&tmp);
	buf_free(&final);
	errno = saved;
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
