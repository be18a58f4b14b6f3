/*
 * maildir_batch - Maildir++ delivery, several copies at once.
 *
 * The durability rule (DESIGN.md §4) asks that a copy is on disk and
 * named in new/, with new/ itself synced, before "delivered" is said.
 * Done one copy at a time that is a file sync and a folder sync per copy,
 * each its own trip to the disk. A batch shares them: every copy is
 * written first (maildir_batch_add), then maildir_batch_commit starts the
 * writeback of all of them together (file_start_writeback), fdatasyncs
 * each (the blocks, bitmaps and inode table blocks they share are written
 * once), links each into new/, and fsyncs each distinct new/ folder ONCE
 * for all the copies in it. A copy whose folder sync failed is unlinked
 * again, so a "deferred" never leaves a copy behind to be delivered twice.
 *
 * Copies are unnamed O_TMPFILE files in tmp/ until they are linked, so a
 * crash leaves nothing behind in tmp/; where the file system has no
 * O_TMPFILE a named file in tmp/ (O_CREAT|O_EXCL|O_NOFOLLOW) is used and
 * removed after the link. A copy is the header followed by the message
 * with CRLF line ends turned into LF (a lone CR stays); its name carries
 * ",S=<bytes>" with the exact file size and ",W=<bytes>" with the size
 * with CRLF line ends (every LF not preceded by a CR counted as two
 * bytes), which is what a POP3 server announces in LIST and sends in RETR
 * (Dovecot's convention).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/file.h"
#include "base/log.h"
#include "base/mem.h"
#include "mail/maildir.h"

#define MAILDIR_CHUNK 65536
#define MAILDIR_TRIES 16	/* name collisions before giving up */

/* Tests set this to exercise the named tmp/ file path on file systems
 * that do have O_TMPFILE. Not in the header. */
bool maildir_test_no_tmpfile;

static unsigned long maildir_counter;

/* one copy in a batch */
struct maildir_entry {
	char *path;		/* the Maildir */
	char *tmp;		/* named file in tmp/, or NULL: unnamed */
	char *final;		/* its name in new/, once linked */
	int fd;			/* the copy, until committed */
	int err;		/* errno of the step that failed, or 0 */
	const char *step;	/* what failed */
	long long size;		/* file bytes */
	long long wsize;	/* bytes with CRLF line ends */
	bool linked;
};

struct maildir_batch {
	struct maildir_entry *e;
	size_t n, cap;
	bool committed;
};

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
	const char *end = p + n, *lf;

	if (n == 0)
		return 0;
	for (const char *q = p; (lf = memchr(q, '\n', (size_t)(end - q)));
	    q = lf + 1)
		if (lf == p ? !*cr : lf[-1] != '\r')
			extra++;
	*cr = end[-1] == '\r';
	return extra;
}

/* maildir_unfold_crlf - copy in[0..n) to out without the CR of each CRLF;
 * *cr is a CR held back from the previous chunk (and, on return, a CR at
 * the end of this one). Returns the bytes put in out (at most n + 1). */
static size_t
maildir_unfold_crlf(const char *in, size_t n, char *out, bool *cr)
{
	const char *p = in, *end = in + n;
	size_t o = 0;

	if (*cr && n > 0) {
		if (*p != '\n')
			out[o++] = '\r';
		*cr = false;
	}
	while (p < end) {
		const char *c = memchr(p, '\r', (size_t)(end - p));
		size_t run = (size_t)((c ? c : end) - p);

		memcpy(out + o, p, run);
		o += run;
		if (c == NULL)
			break;
		if (c + 1 == end) {
			*cr = true;	/* decided by the next chunk */
			break;
		}
		if (c[1] != '\n')
			out[o++] = '\r';
		p = c + 1;
	}
	return o;
}

/*
 * maildir_copy - append size bytes at off of fd (of mem, when not NULL:
 * no read) to out, CRLF -> LF. A CR at the end of a chunk waits for the
 * next chunk's first byte. Returns the bytes written, or -1 with errno;
 * *extra_r grows by what LF -> CRLF of the written bytes adds
 * (maildir_wire_extra, state in *wcr).
 */
static long long
maildir_copy(int out, int fd, const char *mem, off_t off, off_t size,
    long long *extra_r, bool *wcr)
{
	char *buf = mem == NULL ? xmalloc(MAILDIR_CHUNK) : NULL;
	char *conv = xmalloc(MAILDIR_CHUNK + 1);
	long long written = 0;
	bool cr = false;	/* a CR is pending from the last chunk */
	off_t done = 0;
	int ret = 0;

	while (done < size) {
		size_t want = size - done > MAILDIR_CHUNK ? MAILDIR_CHUNK :
		    (size_t)(size - done);
		const char *in = mem != NULL ? mem + off + done : buf;
		ssize_t r = mem != NULL ? (ssize_t)want :
		    pread(fd, buf, want, off + done);
		size_t n;

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
		n = maildir_unfold_crlf(in, (size_t)r, conv, &cr);
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
	x_free(&buf);
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

/* maildir_base - a new unique base name "<sec>.M<usec>P<pid>Q<n>.<host>" */
static int
maildir_base(struct buf *base)
{
	static struct buf host = BUF_INIT;	/* looked up once */
	struct timeval tv;

	if (host.len == 0)
		maildir_host(&host);
	if (gettimeofday(&tv, NULL) < 0)
		return -1;
	buf_reset(base);
	buf_printf(base, "%lld.M%06ldP%ldQ%lu.%s", (long long)tv.tv_sec,
	    (long)tv.tv_usec, (long)getpid(), ++maildir_counter, buf_cstr(&host));
	return 0;
}

/* maildir_entry_fail - record the failed step (errno) of e */
static void
maildir_entry_fail(struct maildir_entry *e, const char *step)
{
	if (e->err == 0) {
		e->err = errno != 0 ? errno : EIO;
		e->step = step;
	}
}

/* maildir_entry_drop - close e's file and remove what it left */
static void
maildir_entry_drop(struct maildir_entry *e)
{
	if (e->fd >= 0) {
		(void)close(e->fd);
		e->fd = -1;
	}
	if (e->tmp != NULL && !e->linked)
		(void)unlink(e->tmp);
	if (e->linked && e->err != 0) {
		(void)unlink(e->final);
		e->linked = false;
	}
}

/* maildir_entry_open - the copy's file in tmp/ */
static int
maildir_entry_open(struct maildir_entry *e)
{
	struct buf base = BUF_INIT;
	char *dir = xasprintf("%s/tmp", e->path);

	if (!maildir_test_no_tmpfile)
		e->fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
	if (e->fd < 0 && (maildir_test_no_tmpfile || errno == EOPNOTSUPP ||
	    errno == EISDIR || errno == EINVAL)) {
		/* no O_TMPFILE here: a unique name; O_EXCL catches the
		 * impossible collision */
		for (int tries = 0; e->fd < 0 && tries < MAILDIR_TRIES;
		    tries++) {
			if (maildir_base(&base) < 0)
				break;
			x_free(&e->tmp);
			e->tmp = xasprintf("%s/%s", dir, buf_cstr(&base));
			e->fd = open(e->tmp, O_CREAT | O_EXCL | O_WRONLY |
			    O_NOFOLLOW | O_CLOEXEC, 0600);
			if (e->fd < 0 && errno != EEXIST)
				break;
		}
		if (e->fd < 0)
			x_free(&e->tmp);
	}
	if (e->fd < 0)
		maildir_entry_fail(e, "create");
	x_free(&dir);
	buf_free(&base);
	return e->fd < 0 ? -1 : 0;
}

/* maildir_batch_new - an empty batch */
struct maildir_batch *
maildir_batch_new(void)
{
	return xcalloc(1, sizeof(struct maildir_batch));
}

/* maildir_batch_add_src - write one copy, from fd or mem, into path/tmp */
static size_t
maildir_batch_add_src(struct maildir_batch *b, const char *path,
    const char *header, size_t hlen, int fd, const char *mem, off_t off,
    off_t size)
{
	struct maildir_entry *e;
	long long body, extra = 0;
	bool wcr = false;

	if (b->committed)
		msg_panic("maildir_batch_add: batch already committed");
	if (b->n == b->cap) {
		b->cap = b->cap ? 2 * b->cap : 8;
		b->e = xreallocarray(b->e, b->cap, sizeof(*b->e));
	}
	e = &b->e[b->n];
	memset(e, 0, sizeof(*e));
	e->path = xstrdup(path);
	e->fd = -1;
	errno = 0;
	if (size < 0 || off < 0) {
		errno = EINVAL;
		maildir_entry_fail(e, "bad message size");
		return b->n++;
	}
	if (maildir_entry_open(e) < 0)
		return b->n++;
	if (maildir_write(e->fd, header, hlen) < 0) {
		maildir_entry_fail(e, "write");
	} else {
		extra = maildir_wire_extra(header, hlen, &wcr);
		if ((body = maildir_copy(e->fd, fd, mem, off, size, &extra,
		    &wcr)) < 0) {
			maildir_entry_fail(e, "write");
		} else {
			e->size = (long long)hlen + body;
			e->wsize = e->size + extra;
		}
	}
	if (e->err != 0)
		maildir_entry_drop(e);
	return b->n++;
}

/* maildir_batch_add - write one copy into path/tmp */
size_t
maildir_batch_add(struct maildir_batch *b, const char *path,
    const char *header, size_t hlen, int fd, off_t off, off_t size)
{
	return maildir_batch_add_src(b, path, header, hlen, fd, NULL, off,
	    size);
}

/* maildir_batch_pending - bytes of the good copies for path so far */
long long
maildir_batch_pending(const struct maildir_batch *b, const char *path)
{
	long long sum = 0;

	for (size_t i = 0; i < b->n; i++)
		if (b->e[i].err == 0 && strcmp(b->e[i].path, path) == 0)
			sum += b->e[i].size;
	return sum;
}

/* maildir_entry_link - name the synced copy in new/ */
static void
maildir_entry_link(struct maildir_entry *e)
{
	struct buf base = BUF_INIT;
	int r = -1;

	for (int tries = 0; r < 0 && tries < MAILDIR_TRIES; tries++) {
		if (maildir_base(&base) < 0) {
			maildir_entry_fail(e, "gettimeofday");
			goto out;
		}
		x_free(&e->final);
		e->final = xasprintf("%s/new/%s,S=%lld,W=%lld", e->path,
		    buf_cstr(&base), e->size, e->wsize);
		if (e->tmp == NULL)
			r = file_link_fd(e->fd, e->final);
		else
			r = link(e->tmp, e->final);
		if (r < 0 && errno != EEXIST)
			break;
	}
	if (r < 0 && e->tmp != NULL && (errno == EXDEV || errno == EPERM ||
	    errno == ENOSYS || errno == EOPNOTSUPP)) {
		/* no hard links here */
		if (rename(e->tmp, e->final) < 0) {
			maildir_entry_fail(e, "rename");
			goto out;
		}
		x_free(&e->tmp);
		r = 0;
	}
	if (r < 0) {
		maildir_entry_fail(e, "link");
		goto out;
	}
	e->linked = true;
	if (e->tmp != NULL && unlink(e->tmp) < 0)
		msg_warn("unlink %s: %m", e->tmp);
	x_free(&e->tmp);
out:
	buf_free(&base);
}

/* maildir_entry_cmp - qsort: linked copies by Maildir */
static int
maildir_entry_cmp(const void *a, const void *b)
{
	const struct maildir_entry *x = *(const struct maildir_entry *const *)a;
	const struct maildir_entry *y = *(const struct maildir_entry *const *)b;

	return strcmp(x->path, y->path);
}

/*
 * maildir_batch_sync_folders - fsync each distinct new/ once, for every
 * copy linked into it; the copies are sorted by Maildir, so a batch fanned
 * out to thousands of mailboxes costs n log n compares, not n squared.
 * Where a folder sync fails, its copies are not durable: each fails and is
 * unlinked, and the caller retries.
 */
static void
maildir_batch_sync_folders(struct maildir_batch *b)
{
	struct maildir_entry **by_path;
	size_t n = 0, i, j;

	by_path = xcalloc(b->n ? b->n : 1, sizeof(*by_path));
	for (i = 0; i < b->n; i++)
		if (b->e[i].err == 0)
			by_path[n++] = &b->e[i];
	qsort(by_path, n, sizeof(*by_path), maildir_entry_cmp);
	for (i = 0; i < n; i = j) {
		char *dir = xasprintf("%s/new", by_path[i]->path);
		int rc, saved;

		for (j = i + 1; j < n && strcmp(by_path[j]->path,
		    by_path[i]->path) == 0; j++)
			;
		errno = 0;
		rc = maildir_fsync_dir(dir);
		saved = errno;
		for (size_t k = i; rc < 0 && k < j; k++) {
			errno = saved;
			maildir_entry_fail(by_path[k], "fsync new/");
			maildir_entry_drop(by_path[k]);
		}
		x_free(&dir);
	}
	x_free(&by_path);
}

/* maildir_batch_commit - sync, link and sync the folders of every copy */
void
maildir_batch_commit(struct maildir_batch *b)
{
	struct maildir_entry *e, *end;

	if (b->committed)
		msg_panic("maildir_batch_commit: committed twice");
	b->committed = true;
	if (b->n == 0)
		return;		/* b->e may be NULL: no pointer sums on it */
	end = b->e + b->n;
	for (e = b->e; e < end; e++)
		if (e->err == 0)
			file_start_writeback(e->fd);
	for (e = b->e; e < end; e++) {
		if (e->err == 0 && fdatasync(e->fd) < 0)
			maildir_entry_fail(e, "fsync");
		if (e->err == 0)
			maildir_entry_link(e);
		if (e->err == 0 && close(e->fd) < 0)
			maildir_entry_fail(e, "close");
		e->fd = -1;
		if (e->err != 0)
			maildir_entry_drop(e);
	}
	maildir_batch_sync_folders(b);
	/* each durable copy counts toward its Maildir's quota usage */
	for (e = b->e; e < end; e++)
		if (e->err == 0 && e->linked)
			maildir_usage_add(e->path, e->size, 1);
}

/* maildir_batch_result - how copy i went; -1 with errno and why */
int
maildir_batch_result(const struct maildir_batch *b, size_t i,
    struct buf *name_r, struct buf *why)
{
	const struct maildir_entry *e;

	if (!b->committed || i >= b->n)
		msg_panic("maildir_batch_result: no result %zu", i);
	e = &b->e[i];
	if (e->err != 0) {
		buf_printf(why, "maildir %s: %s: %s", e->path, e->step,
		    strerror(e->err));
		errno = e->err;
		return -1;
	}
	if (name_r != NULL) {
		buf_reset(name_r);
		buf_puts(name_r, strrchr(e->final, '/') + 1);
	}
	return 0;
}

/* maildir_batch_free - release b; copies never committed are removed */
void
maildir_batch_free(struct maildir_batch **bp)
{
	struct maildir_batch *b = *bp;

	if (b == NULL)
		return;
	for (struct maildir_entry *e = b->e; e < b->e + b->n; e++) {
		if (e->fd >= 0 || (e->tmp != NULL && !e->linked))
			maildir_entry_drop(e);
		x_free(&e->path);
		x_free(&e->tmp);
		x_free(&e->final);
	}
	x_free(&b->e);
	x_free(bp);
}

/* maildir_deliver_src - one copy, from fd or mem: a batch of one */
static int
maildir_deliver_src(const char *path, const char *header, size_t hlen,
    int fd, const char *mem, off_t off, off_t size, struct buf *name_r,
    struct buf *why)
{
	struct maildir_batch *b = maildir_batch_new();
	int ret, saved;

	(void)maildir_batch_add_src(b, path, header, hlen, fd, mem, off,
	    size);
	maildir_batch_commit(b);
	ret = maildir_batch_result(b, 0, name_r, why);
	saved = errno;
	maildir_batch_free(&b);
	errno = saved;
	return ret;
}

/* maildir_deliver - one copy from fd */
int
maildir_deliver(const char *path, const char *header, size_t hlen, int fd,
    off_t off, off_t size, struct buf *name_r, struct buf *why)
{
	return maildir_deliver_src(path, header, hlen, fd, NULL, off, size,
	    name_r, why);
}

/* maildir_deliver_mem - one copy from memory */
int
maildir_deliver_mem(const char *path, const char *header, size_t hlen,
    const char *p, size_t n, struct buf *name_r, struct buf *why)
{
	return maildir_deliver_src(path, header, hlen, -1, p, 0, (off_t)n,
	    name_r, why);
}
