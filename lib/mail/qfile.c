/*
 * qfile - write, read and update queue files (format in qfile.h).
 *
 * The writer is a small state machine (start, attributes, recipients,
 * body, finish) that panics when called out of order or with a value that
 * would break the line format: both are bugs in the caller. Write errors
 * (disk full) are sticky and reported once, by qfile_writer_finish().
 *
 * The reader trusts nothing: a queue file may be truncated by a crash
 * before it was linked (it is not, then), damaged by a disk, or edited by
 * a human. It reads the envelope with bounded, buffered pread() calls
 * (never the whole file, never the shared file offset, because the
 * descriptor may have been passed to us and be shared with qmgr), checks
 * every record, and names the first problem it finds.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/file.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/qfile.h"
#include "mail/qid.h"

#define QFILE_VERSION "VHERALDQ2"
#define QFILE_VERSION_1 "VHERALDQ1"	/* read; no notes */
#define QFILE_VERSION_DIGIT 8		/* offset of the version digit */
#define QFILE_MAX_RECORD 8192		/* bytes of one record, with \n */
#define QFILE_MAX_RCPT 200000
#define QFILE_MAX_ATTR 1000
#define QFILE_SIZE_DIGITS 16
#define QFILE_BUFSIZE (64 * 1024)

/*
 * Tests set this to exercise the named-file fallback on file systems that
 * do have O_TMPFILE. Not in the header: nothing else has a reason to.
 */
bool qfile_test_no_tmpfile;

/* writer states, in the only order they may come */
enum qfile_wstate {
	QW_NEW,		/* nothing written but the version */
	QW_ENVELOPE,	/* T and S written: attributes may follow */
	QW_RCPT,	/* at least one recipient written */
	QW_BODY,	/* M written: message bytes follow */
	QW_DONE,	/* E written and the size patched in */
};

struct qfile_writer {
	int fd;
	char *dir;		/* <spool>/incoming */
	char *tmp_path;		/* named fallback file, or NULL (O_TMPFILE) */
	bool linked;		/* the file has its queue id name */
	enum qfile_wstate state;
	size_t nrcpt;
	off_t off;		/* file offset of the next byte, buffered too */
	off_t size_off;		/* offset of the M record's digits */
	off_t body_start;	/* offset of the first message byte */
	int err;		/* sticky errno of a failed write, or 0 */
	const char *err_what;	/* what failed: "write", "record too long" */
	size_t blen;		/* bytes in buf */
	char buf[QFILE_BUFSIZE];
};

/* qfile_w_flush - write out the buffer; errors become sticky */
static void
qfile_w_flush(struct qfile_writer *w)
{
	size_t done = 0;

	while (w->err == 0 && done < w->blen) {
		ssize_t n = write(w->fd, w->buf + done, w->blen - done);

		if (n > 0) {
			done += (size_t)n;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else {
			w->err = n < 0 ? errno : EIO;
			w->err_what = "write";
		}
	}
	w->blen = 0;
}

/* qfile_w_put - append bytes through the buffer */
static void
qfile_w_put(struct qfile_writer *w, const void *p, size_t n)
{
	const char *s = p;

	w->off += (off_t)n;
	if (w->err != 0)
		return;
	while (n > 0) {
		size_t room = sizeof(w->buf) - w->blen;
		size_t k = n < room ? n : room;

		memcpy(w->buf + w->blen, s, k);
		w->blen += k;
		s += k;
		n -= k;
		if (w->blen == sizeof(w->buf))
			qfile_w_flush(w);
		if (w->err != 0)
			return;
	}
}

/* qfile_w_value - panic if an envelope value would break the format */
static void
qfile_w_value(const char *what, const char *v)
{
	if (v == NULL)
		msg_panic("qfile_writer: %s is NULL", what);
	if (strpbrk(v, "\r\n\t") != NULL)
		msg_panic("qfile_writer: %s holds CR, LF or TAB", what);
}

/* qfile_w_record - write one envelope record: type, parts, newline */
static void
qfile_w_record(struct qfile_writer *w, char type, const char *const *parts,
    size_t nparts)
{
	size_t len = 2;

	for (size_t i = 0; i < nparts; i++)
		len += strlen(parts[i]);
	if (len > QFILE_MAX_RECORD) {
		/* the reader would refuse the file: fail it now instead */
		if (w->err == 0) {
			w->err = E2BIG;
			w->err_what = "envelope record too long";
		}
		return;
	}
	qfile_w_put(w, &type, 1);
	for (size_t i = 0; i < nparts; i++)
		qfile_w_put(w, parts[i], strlen(parts[i]));
	qfile_w_put(w, "\n", 1);
}

/* qfile_w_open - a new unnamed file in dir into *fd_r (*path_r NULL),
 * or a named dot-file (*path_r its path); -1 with errno */
static int
qfile_w_open(const char *dir, int *fd_r, char **path_r)
{
	int fd = -1;

	*path_r = NULL;
	if (!qfile_test_no_tmpfile)
		fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0 && (qfile_test_no_tmpfile || errno == EOPNOTSUPP ||
	    errno == EISDIR || errno == EINVAL)) {
		char tmp[QID_SIZE];

		/*
		 * No O_TMPFILE on this file system: a named dot-file that
		 * qfile_writer_free() removes unless it was linked. A crash
		 * may leave one behind; qmgr removes dot-files in incoming/
		 * older than a day.
		 */
		qid_new(tmp);
		*path_r = xasprintf("%s/.tmp.%s", dir, tmp);
		fd = open(*path_r, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
		    0600);
		if (fd < 0)
			x_free(path_r);
	}
	*fd_r = fd;
	return fd < 0 ? -1 : 0;
}

/* qfile_writer_new - start an unnamed queue file in <spool>/incoming */
int
qfile_writer_new(const char *spool_dir, struct qfile_writer **w_r,
    struct buf *why)
{
	struct qfile_writer *w;

	*w_r = NULL;
	/* the 64 KB buffer is written before it is read: zero the rest only */
	w = xmalloc(sizeof(*w));
	memset(w, 0, offsetof(struct qfile_writer, buf));
	w->dir = xasprintf("%s/incoming", spool_dir);
	if (qfile_w_open(w->dir, &w->fd, &w->tmp_path) < 0) {
		buf_set(why, "");
		buf_printf(why, "create queue file in %s: %m", w->dir);
		x_free(&w->tmp_path);
		x_free(&w->dir);
		x_free(&w);
		return -1;
	}
	w->state = QW_NEW;
	qfile_w_put(w, QFILE_VERSION "\n", sizeof(QFILE_VERSION));
	*w_r = w;
	return 0;
}

/* qfile_writer_start_usec - T and S records */
void
qfile_writer_start_usec(struct qfile_writer *w, time_t arrival, long usec,
    const char *sender)
{
	char num[48];

	if (w->state != QW_NEW)
		msg_panic("qfile_writer_start: called out of order");
	if (arrival < 0 || usec < 0 || usec > 999999)
		msg_panic("qfile_writer_start: bad arrival time");
	qfile_w_value("sender", sender);
	if (usec == 0)
		snprintf(num, sizeof(num), "%lld", (long long)arrival);
	else
		snprintf(num, sizeof(num), "%lld.%06ld", (long long)arrival,
		    usec);
	qfile_w_record(w, 'T', (const char *[]){num}, 1);
	qfile_w_record(w, 'S', (const char *[]){sender}, 1);
	w->state = QW_ENVELOPE;
}

/* qfile_writer_start - T and S records, arrival in whole seconds */
void
qfile_writer_start(struct qfile_writer *w, time_t arrival,
    const char *sender)
{
	qfile_writer_start_usec(w, arrival, 0, sender);
}

/* qfile_attr_name_valid - [a-z0-9_]+ */
static bool
qfile_attr_name_valid(const char *p, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((p[i] >= 'a' && p[i] <= 'z') ||
		    (p[i] >= '0' && p[i] <= '9') || p[i] == '_'))
			return false;
	return true;
}

/* qfile_writer_attr - an A record */
void
qfile_writer_attr(struct qfile_writer *w, const char *name,
    const char *value)
{
	if (w->state != QW_ENVELOPE)
		msg_panic("qfile_writer_attr: called out of order");
	if (name == NULL || !qfile_attr_name_valid(name, strlen(name)))
		msg_panic("qfile_writer_attr: bad attribute name \"%s\"",
		    name ? name : "(null)");
	qfile_w_value(name, value);
	qfile_w_record(w, 'A', (const char *[]){name, "=", value}, 3);
}

/* qfile_writer_rcpt - an R record with status QFILE_QUEUED */
void
qfile_writer_rcpt(struct qfile_writer *w, const char *addr,
    const char *orcpt, const char *notify)
{
	if (w->state != QW_ENVELOPE && w->state != QW_RCPT)
		msg_panic("qfile_writer_rcpt: called out of order");
	qfile_w_value("recipient", addr);
	if (*addr == '\0')
		msg_panic("qfile_writer_rcpt: empty recipient");
	qfile_w_value("orcpt", orcpt);
	qfile_w_value("notify", notify);
	if (++w->nrcpt > QFILE_MAX_RCPT && w->err == 0) {
		w->err = E2BIG;
		w->err_what = "too many recipients";
	}
	qfile_w_record(w, 'R',
	    (const char *[]){"Q", addr, "\t", orcpt, "\t", notify}, 6);
	w->state = QW_RCPT;
}

/* qfile_writer_begin_body - the M record, its size patched in later */
void
qfile_writer_begin_body(struct qfile_writer *w)
{
	char zeros[QFILE_SIZE_DIGITS + 1];

	if (w->state != QW_RCPT)
		msg_panic("qfile_writer_begin_body: called out of order");
	memset(zeros, '0', QFILE_SIZE_DIGITS);
	zeros[QFILE_SIZE_DIGITS] = '\0';
	w->size_off = w->off + 1;
	qfile_w_record(w, 'M', (const char *[]){zeros}, 1);
	w->body_start = w->off;
	w->state = QW_BODY;
}

/* qfile_writer_body - message bytes */
void
qfile_writer_body(struct qfile_writer *w, const void *p, size_t n)
{
	if (w->state != QW_BODY)
		msg_panic("qfile_writer_body: called out of order");
	qfile_w_put(w, p, n);
}

/* qfile_w_write - write all of p[0..n) to fd; -1 with errno */
static int
qfile_w_write(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t k = write(fd, c, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			if (k == 0)
				errno = EIO;
			return -1;
		}
		c += k;
		n -= (size_t)k;
	}
	return 0;
}

/* qfile_w_copy - copy n bytes at offset from of w->fd to the end of
 * fd; -1 with errno */
static int
qfile_w_copy(struct qfile_writer *w, int fd, off_t from, off_t n)
{
	char chunk[16 * 1024];

	while (n > 0) {
		size_t want = n < (off_t)sizeof(chunk) ? (size_t)n :
		    sizeof(chunk);
		ssize_t got = pread(w->fd, chunk, want, from);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			if (got == 0)
				errno = EIO;
			return -1;
		}
		if (qfile_w_write(fd, chunk, (size_t)got) < 0)
			return -1;
		from += got;
		n -= got;
	}
	return 0;
}

/*
 * qfile_writer_insert - put p[0..n) at the start of the message (a
 * DKIM-Signature known only at the end of the body). While the file is
 * all in the buffer (most submitted mail) the bytes are moved there;
 * otherwise the file is copied once into a new unnamed file with p in
 * its place, which replaces it. Errors are sticky, as for writes.
 */
void
qfile_writer_insert(struct qfile_writer *w, const void *p, size_t n)
{
	size_t at;
	char *tmp_path = NULL;
	int fd = -1;

	if (w->state != QW_BODY)
		msg_panic("qfile_writer_insert: called out of order");
	if (w->err != 0 || n == 0)
		return;
	if (w->off == (off_t)w->blen && w->blen + n <= sizeof(w->buf)) {
		at = (size_t)w->body_start;
		memmove(w->buf + at + n, w->buf + at, w->blen - at);
		memcpy(w->buf + at, p, n);
		w->blen += n;
		w->off += (off_t)n;
		return;
	}
	qfile_w_flush(w);
	if (w->err != 0)
		return;
	if (qfile_w_open(w->dir, &fd, &tmp_path) < 0 ||
	    qfile_w_copy(w, fd, 0, w->body_start) < 0 ||
	    qfile_w_write(fd, p, n) < 0 ||
	    qfile_w_copy(w, fd, w->body_start, w->off - w->body_start) < 0) {
		w->err = errno != 0 ? errno : EIO;
		w->err_what = "insert";
		if (fd >= 0)
			(void)close(fd);
		if (tmp_path != NULL)
			(void)unlink(tmp_path);
		x_free(&tmp_path);
		return;
	}
	(void)close(w->fd);
	if (w->tmp_path != NULL)
		(void)unlink(w->tmp_path);
	x_free(&w->tmp_path);
	w->fd = fd;
	w->tmp_path = tmp_path;
	w->off += (off_t)n;
}

/* qfile_writer_body_size - message bytes so far */
off_t
qfile_writer_body_size(const struct qfile_writer *w)
{
	if (w->state != QW_BODY && w->state != QW_DONE)
		return 0;
	return w->off - w->body_start - (w->state == QW_DONE ? 2 : 0);
}

/* qfile_w_error - report the sticky error */
static int
qfile_w_error(struct qfile_writer *w, struct buf *why)
{
	buf_set(why, "");
	if (w->err == E2BIG)
		buf_puts(why, w->err_what);
	else
		buf_printf(why, "%s: %s", w->err_what, strerror(w->err));
	return -1;
}

/* qfile_writer_finish - flush, end record, patch the size in */
int
qfile_writer_finish(struct qfile_writer *w, struct buf *why)
{
	char num[QFILE_SIZE_DIGITS + 1];
	off_t size;
	size_t done = 0;

	if (w->state != QW_BODY)
		msg_panic("qfile_writer_finish: called out of order");
	size = w->off - w->body_start;
	qfile_w_put(w, "E\n", 2);
	qfile_w_flush(w);
	w->state = QW_DONE;
	if (w->err != 0)
		return qfile_w_error(w, why);
	snprintf(num, sizeof(num), "%0*lld", QFILE_SIZE_DIGITS,
	    (long long)size);
	if (strlen(num) != QFILE_SIZE_DIGITS)
		msg_panic("qfile_writer_finish: size %lld", (long long)size);
	while (done < QFILE_SIZE_DIGITS) {
		ssize_t n = pwrite(w->fd, num + done, QFILE_SIZE_DIGITS - done,
		    w->size_off + (off_t)done);

		if (n > 0) {
			done += (size_t)n;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else {
			w->err = n < 0 ? errno : EIO;
			w->err_what = "write";
			return qfile_w_error(w, why);
		}
	}
	return 0;
}

/* qfile_writer_start_sync - start the finished file's writeback */
void
qfile_writer_start_sync(struct qfile_writer *w)
{
	if (w->state != QW_DONE)
		msg_panic("qfile_writer_start_sync: called before finish");
	if (w->err == 0)
		file_start_writeback(w->fd);
}

/* qfile_writer_sync - make the finished file durable */
int
qfile_writer_sync(struct qfile_writer *w, struct buf *why)
{
	if (w->state != QW_DONE)
		msg_panic("qfile_writer_sync: called before finish");
	if (w->err != 0)
		return qfile_w_error(w, why);
	if (fdatasync(w->fd) < 0) {
		w->err = errno;
		w->err_what = "fdatasync";
		return qfile_w_error(w, why);
	}
	return 0;
}

/* qfile_writer_link - name the file <spool>/incoming/<qid> */
int
qfile_writer_link(struct qfile_writer *w, const char *qid, struct buf *why)
{
	char *path;
	int r;

	if (w->state != QW_DONE || w->linked)
		msg_panic("qfile_writer_link: called out of order");
	if (!qid_valid(qid))
		msg_panic("qfile_writer_link: bad queue id \"%s\"", qid);
	if (w->err != 0)
		return qfile_w_error(w, why);
	path = xasprintf("%s/%s", w->dir, qid);
	if (w->tmp_path != NULL)
		r = rename(w->tmp_path, path);
	else
		r = file_link_fd(w->fd, path);
	if (r < 0) {
		buf_set(why, "");
		buf_printf(why, "link %s: %m", path);
		x_free(&path);
		return -1;
	}
	w->linked = true;
	x_free(&path);
	return 0;
}

/* qfile_writer_free - close; an unlinked file disappears */
void
qfile_writer_free(struct qfile_writer **wp)
{
	struct qfile_writer *w = *wp;

	if (w == NULL)
		return;
	if (w->fd >= 0)
		(void)close(w->fd);
	if (w->tmp_path != NULL && !w->linked && unlink(w->tmp_path) < 0)
		msg_warn("unlink %s: %m", w->tmp_path);
	x_free(&w->tmp_path);
	x_free(&w->dir);
	x_free(wp);
}

/*
 * Reader.
 */

struct qfile_rd {
	int fd;
	char *buf;		/* QFILE_BUFSIZE bytes */
	size_t start, end;	/* unread bytes are buf[start..end) */
	off_t buf_off;		/* file offset of buf[0] */
	bool eof;
};

/* qfile_rd_line - next line without its \n; 1, 0 at EOF, -1 with why
 * (too long, read error, truncated) */
static int
qfile_rd_line(struct qfile_rd *rd, size_t recno, const char **line,
    size_t *len, off_t *off, struct buf *why)
{
	for (;;) {
		size_t avail = rd->end - rd->start;
		size_t look = avail < QFILE_MAX_RECORD ? avail :
		    QFILE_MAX_RECORD;
		char *p = rd->buf + rd->start;
		char *nl = memchr(p, '\n', look);
		ssize_t n;

		if (nl != NULL) {
			*line = p;
			*len = (size_t)(nl - p);
			*off = rd->buf_off + (off_t)rd->start;
			rd->start += *len + 1;
			return 1;
		}
		if (avail >= QFILE_MAX_RECORD) {
			buf_set(why, "");
			buf_printf(why, "record %zu: longer than %d bytes",
			    recno, QFILE_MAX_RECORD);
			return -1;
		}
		if (rd->eof) {
			if (avail == 0)
				return 0;
			buf_set(why, "");
			buf_printf(why, "record %zu: truncated", recno);
			return -1;
		}
		/* move the partial line to the front and read more */
		memmove(rd->buf, p, avail);
		rd->buf_off += (off_t)rd->start;
		rd->start = 0;
		rd->end = avail;
		n = pread(rd->fd, rd->buf + rd->end, QFILE_BUFSIZE - rd->end,
		    rd->buf_off + (off_t)rd->end);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			buf_set(why, "");
			buf_printf(why, "read: %m");
			return -1;
		}
		if (n == 0)
			rd->eof = true;
		rd->end += (size_t)n;
	}
}

/* qfile_bad - set why to "record N: <text 'c'>" for a bad byte c */
static int
qfile_bad(struct buf *why, size_t recno, const char *text, int c)
{
	buf_set(why, "");
	if (c > 32 && c < 127 && c != '\'')
		buf_printf(why, "record %zu: %s '%c'", recno, text, c);
	else
		buf_printf(why, "record %zu: %s '\\x%02x'", recno, text,
		    (unsigned char)c);
	return -1;
}

/* qfile_value_ok - no NUL or CR in a value (the line has no LF) */
static bool
qfile_value_ok(const char *p, size_t len)
{
	return memchr(p, '\0', len) == NULL && memchr(p, '\r', len) == NULL;
}

/* qfile_digits - parse exactly len decimal digits (len 1..18) */
static int
qfile_digits(const char *p, size_t len, long long *r)
{
	long long v = 0;

	if (len == 0 || len > 18)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	*r = v;
	return 0;
}

/* qfile_rank - where a record type must come; 0 for unknown types */
static int
qfile_rank(char type)
{
	switch (type) {
	case 'T':
		return 1;
	case 'S':
		return 2;
	case 'A':
		return 3;
	case 'R':
		return 4;
	case 'M':
		return 5;
	default:
		return 0;
	}
}

/* qfile_read_rcpt - one R record (after the 'R') into qf */
static int
qfile_read_rcpt(struct qfile *qf, size_t recno, const char *p, size_t len,
    off_t off, struct buf *why)
{
	struct qfile_rcpt *r;
	const char *t1, *t2;
	size_t ntab = 0;

	if (len == 0) {
		buf_set(why, "");
		buf_printf(why, "record %zu: empty recipient record", recno);
		return -1;
	}
	if (p[0] != QFILE_QUEUED && p[0] != QFILE_DELIVERED &&
	    p[0] != QFILE_BOUNCED && p[0] != QFILE_WARNED)
		return qfile_bad(why, recno, "bad recipient status", p[0]);
	for (size_t i = 1; i < len; i++)
		if (p[i] == '\t')
			ntab++;
	if (ntab != 2) {
		buf_set(why, "");
		buf_printf(why, "record %zu: recipient record has %zu tabs, "
		    "not 2", recno, ntab);
		return -1;
	}
	if (!qfile_value_ok(p, len)) {
		buf_set(why, "");
		buf_printf(why, "record %zu: recipient holds CR or NUL", recno);
		return -1;
	}
	t1 = memchr(p + 1, '\t', len - 1);
	t2 = memchr(t1 + 1, '\t', (size_t)(p + len - t1 - 1));
	if (t1 == p + 1) {
		buf_set(why, "");
		buf_printf(why, "record %zu: empty recipient address", recno);
		return -1;
	}
	if (qf->nrcpt >= QFILE_MAX_RCPT) {
		buf_set(why, "");
		buf_printf(why, "record %zu: more than %d recipients", recno,
		    QFILE_MAX_RCPT);
		return -1;
	}
	if ((qf->nrcpt & (qf->nrcpt - 1)) == 0)	/* 0, 1, 2, 4, 8 ... */
		qf->rcpt = xreallocarray(qf->rcpt,
		    qf->nrcpt ? qf->nrcpt * 2 : 1, sizeof(*qf->rcpt));
	r = &qf->rcpt[qf->nrcpt++];
	r->status = p[0] == QFILE_WARNED ? QFILE_QUEUED : p[0];
	r->warned = p[0] == QFILE_WARNED;
	r->status_off = off + 1;
	r->addr = xmemdup(p + 1, (size_t)(t1 - p - 1));
	r->orcpt = xmemdup(t1 + 1, (size_t)(t2 - t1 - 1));
	r->notify = xmemdup(t2 + 1, (size_t)(p + len - t2 - 1));
	return 0;
}

/* qfile_read_attr - one A record (after the 'A') into qf */
static int
qfile_read_attr(struct qfile *qf, size_t recno, const char *p, size_t len,
    struct buf *why)
{
	const char *eq = memchr(p, '=', len);
	struct qfile_attr *a;

	if (eq == NULL || !qfile_attr_name_valid(p, (size_t)(eq - p))) {
		buf_set(why, "");
		buf_printf(why, "record %zu: bad attribute", recno);
		return -1;
	}
	if (!qfile_value_ok(p, len) || memchr(p, '\t', len) != NULL) {
		buf_set(why, "");
		buf_printf(why, "record %zu: attribute holds CR, TAB or NUL",
		    recno);
		return -1;
	}
	if (qf->nattr >= QFILE_MAX_ATTR) {
		buf_set(why, "");
		buf_printf(why, "record %zu: more than %d attributes", recno,
		    QFILE_MAX_ATTR);
		return -1;
	}
	if ((qf->nattr & (qf->nattr - 1)) == 0)
		qf->attrs = xreallocarray(qf->attrs,
		    qf->nattr ? qf->nattr * 2 : 1, sizeof(*qf->attrs));
	a = &qf->attrs[qf->nattr++];
	a->name = xmemdup(p, (size_t)(eq - p));
	a->value = xmemdup(eq + 1, (size_t)(p + len - eq - 1));
	return 0;
}

/* qfile_read_envelope - every record up to and including M */
static int
qfile_read_envelope(struct qfile_rd *rd, struct qfile *qf, struct buf *why)
{
	static const char *const names[] = {"", "T", "S", "A", "R", "M"};
	const char *line;
	size_t len, recno = 1;
	off_t off;
	int r, rank = 0;
	bool seen_t = false, seen_s = false;

	r = qfile_rd_line(rd, recno, &line, &len, &off, why);
	if (r == 0) {
		buf_set(why, "empty file");
		return -1;
	}
	if (r < 0)
		return -1;
	if (len == sizeof(QFILE_VERSION_1) - 1 &&
	    memcmp(line, QFILE_VERSION_1, len) == 0) {
		qf->version = 1;
	} else if (len != sizeof(QFILE_VERSION) - 1 ||
	    memcmp(line, QFILE_VERSION, len) != 0) {
		buf_set(why, "");
		if (len > 8 && memcmp(line, "VHERALDQ", 8) == 0) {
			buf_puts(why, "unsupported queue file version ");
			str_printable(why, line, len, 40);
		} else {
			buf_puts(why, "not a queue file (bad version record)");
		}
		return -1;
	} else {
		qf->version = 2;
	}
	for (;;) {
		int rk;

		recno++;
		r = qfile_rd_line(rd, recno, &line, &len, &off, why);
		if (r < 0)
			return -1;
		if (r == 0) {
			buf_set(why, "missing M record (envelope truncated)");
			return -1;
		}
		if (len == 0) {
			buf_set(why, "");
			buf_printf(why, "record %zu: empty record", recno);
			return -1;
		}
		rk = qfile_rank(line[0]);
		if (rk == 0) {
			buf_set(why, "");
			if (line[0] == 'V') {
				buf_printf(why, "record %zu: duplicate version "
				    "record", recno);
				return -1;
			}
			if (line[0] == 'E') {
				buf_printf(why, "record %zu: end record before "
				    "the M record", recno);
				return -1;
			}
			return qfile_bad(why, recno, "unknown record type",
			    line[0]);
		}
		if (rk < rank || (rk == rank && (rk == 1 || rk == 2))) {
			buf_set(why, "");
			buf_printf(why, "record %zu: %s record %s", recno,
			    names[rk], rk == rank ? "repeated" :
			    "out of order");
			return -1;
		}
		if (rk > 1 && !seen_t) {
			buf_set(why, "missing T record");
			return -1;
		}
		if (rk > 2 && !seen_s) {
			buf_set(why, "missing S record");
			return -1;
		}
		rank = rk;
		switch (line[0]) {
		case 'T': {
			/* seconds, or seconds "." six digits of usec */
			const char *dot = memchr(line + 1, '.', len - 1);
			size_t slen = dot ? (size_t)(dot - line - 1) : len - 1;
			long long t, us = 0;

			if (qfile_digits(line + 1, slen, &t) < 0 ||
			    (dot != NULL && (len - 2 - slen != 6 ||
			    qfile_digits(dot + 1, 6, &us) < 0))) {
				buf_set(why, "");
				buf_printf(why, "record %zu: bad arrival "
				    "time", recno);
				return -1;
			}
			qf->arrival = (time_t)t;
			qf->arrival_usec = (long)us;
			seen_t = true;
			break;
		}
		case 'S':
			if (!qfile_value_ok(line + 1, len - 1) ||
			    memchr(line + 1, '\t', len - 1) != NULL) {
				buf_set(why, "");
				buf_printf(why, "record %zu: sender holds CR, "
				    "TAB or NUL", recno);
				return -1;
			}
			qf->sender = xmemdup(line + 1, len - 1);
			seen_s = true;
			break;
		case 'A':
			if (qfile_read_attr(qf, recno, line + 1, len - 1,
			    why) < 0)
				return -1;
			break;
		case 'R':
			if (qfile_read_rcpt(qf, recno, line + 1, len - 1, off,
			    why) < 0)
				return -1;
			break;
		case 'M': {
			long long size;

			if (qf->nrcpt == 0) {
				buf_set(why, "missing R record (no "
				    "recipients)");
				return -1;
			}
			if (len - 1 != QFILE_SIZE_DIGITS ||
			    qfile_digits(line + 1, len - 1, &size) < 0) {
				buf_set(why, "");
				buf_printf(why, "record %zu: bad message "
				    "size", recno);
				return -1;
			}
			qf->body_off = off + (off_t)len + 1;
			qf->body_size = (off_t)size;
			return 0;
		}
		}
	}
}

/* qfile_read - parse and validate the queue file open on fd */
int
qfile_read(int fd, struct qfile **qf_r, struct buf *why)
{
	struct qfile_rd rd;
	struct qfile *qf;
	struct stat st;
	char end[2];
	ssize_t n;

	*qf_r = NULL;
	if (fstat(fd, &st) < 0) {
		buf_set(why, "");
		buf_printf(why, "fstat: %m");
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		buf_set(why, "not a regular file");
		return -1;
	}
	memset(&rd, 0, sizeof(rd));
	rd.fd = fd;
	rd.buf = xmalloc(QFILE_BUFSIZE);
	qf = xcalloc(1, sizeof(*qf));
	qf->fd = fd;
	if (qfile_read_envelope(&rd, qf, why) < 0)
		goto bad;
	qf->notes_off = qf->body_off + qf->body_size + 2;
	qf->file_size = st.st_size;
	/* version 2: notes may follow the end record */
	if (qf->version == 1 ? st.st_size != qf->notes_off :
	    st.st_size < qf->notes_off) {
		buf_set(why, "");
		buf_printf(why, "file size %lld does not match the M record "
		    "(expected %lld)", (long long)st.st_size,
		    (long long)qf->notes_off);
		goto bad;
	}
	do {
		n = pread(fd, end, 2, qf->notes_off - 2);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		buf_set(why, "");
		buf_printf(why, "read: %m");
		goto bad;
	}
	if (n != 2 || end[0] != 'E' || end[1] != '\n') {
		buf_set(why, "missing end record");
		goto bad;
	}
	x_free(&rd.buf);
	*qf_r = qf;
	return 0;
bad:
	x_free(&rd.buf);
	qfile_free(&qf);
	return -1;
}

/* qfile_free - free the parsed envelope (the fd stays open) */
void
qfile_free(struct qfile **qfp)
{
	struct qfile *qf = *qfp;

	if (qf == NULL)
		return;
	for (size_t i = 0; i < qf->nattr; i++) {
		x_free(&qf->attrs[i].name);
		x_free(&qf->attrs[i].value);
	}
	for (size_t i = 0; i < qf->nrcpt; i++) {
		x_free(&qf->rcpt[i].addr);
		x_free(&qf->rcpt[i].orcpt);
		x_free(&qf->rcpt[i].notify);
	}
	x_free(&qf->attrs);
	x_free(&qf->rcpt);
	x_free(&qf->sender);
	x_free(qfp);
}

/* qfile_attr - first value of an envelope attribute, or NULL */
const char *
qfile_attr(const struct qfile *qf, const char *name)
{
	for (size_t i = 0; i < qf->nattr; i++)
		if (strcmp(qf->attrs[i].name, name) == 0)
			return qf->attrs[i].value;
	return NULL;
}

/* qfile_status_ok - one of the three status bytes */
static bool
qfile_status_ok(int c)
{
	return c == QFILE_QUEUED || c == QFILE_DELIVERED ||
	    c == QFILE_BOUNCED;
}

/* qfile_put_status - rewrite the status byte of r with c, after checking
 * that a status byte is there */
static int
qfile_put_status(struct qfile *qf, struct qfile_rcpt *r, size_t idx, char c,
    struct buf *why)
{
	char cur;
	ssize_t n;

	do {
		n = pread(qf->fd, &cur, 1, r->status_off);
	} while (n < 0 && errno == EINTR);
	if (n != 1) {
		buf_set(why, "");
		if (n < 0)
			buf_printf(why, "read: %m");
		else
			buf_puts(why, "read: file shrank");
		return -1;
	}
	if (!qfile_status_ok(cur) && cur != QFILE_WARNED) {
		buf_set(why, "");
		buf_printf(why, "recipient %zu: byte at offset %lld is not a "
		    "status (file changed?)", idx, (long long)r->status_off);
		return -1;
	}
	do {
		n = pwrite(qf->fd, &c, 1, r->status_off);
	} while (n < 0 && errno == EINTR);
	if (n != 1) {
		buf_set(why, "");
		if (n < 0)
			buf_printf(why, "write: %m");
		else
			buf_puts(why, "write: wrote nothing");
		return -1;
	}
	return 0;
}

/* qfile_set_status - rewrite one recipient's status byte in place */
int
qfile_set_status(struct qfile *qf, size_t idx, char status, struct buf *why)
{
	struct qfile_rcpt *r;

	if (idx >= qf->nrcpt)
		msg_panic("qfile_set_status: recipient %zu of %zu", idx,
		    qf->nrcpt);
	if (!qfile_status_ok(status))
		msg_panic("qfile_set_status: bad status '%c'", status);
	r = &qf->rcpt[idx];
	if (qfile_put_status(qf, r, idx, status, why) < 0)
		return -1;
	r->status = status;
	r->warned = false;	/* the byte is a plain status again */
	return 0;
}

/* qfile_set_warned - mark a queued recipient as warned, or unmark it */
int
qfile_set_warned(struct qfile *qf, size_t idx, bool warned, struct buf *why)
{
	struct qfile_rcpt *r;

	if (idx >= qf->nrcpt)
		msg_panic("qfile_set_warned: recipient %zu of %zu", idx,
		    qf->nrcpt);
	r = &qf->rcpt[idx];
	if (r->status != QFILE_QUEUED)
		msg_panic("qfile_set_warned: recipient %zu is not queued",
		    idx);
	if (qfile_put_status(qf, r, idx, warned ? QFILE_WARNED :
	    QFILE_QUEUED, why) < 0)
		return -1;
	r->warned = warned;
	return 0;
}

/* qfile_sync - make status changes durable */
int
qfile_sync(struct qfile *qf, struct buf *why)
{
	if (fdatasync(qf->fd) < 0) {
		buf_set(why, "");
		buf_printf(why, "fdatasync: %m");
		return -1;
	}
	return 0;
}

/* qfile_pending - recipients still queued */
size_t
qfile_pending(const struct qfile *qf)
{
	size_t n = 0;

	for (size_t i = 0; i < qf->nrcpt; i++)
		if (qf->rcpt[i].status == QFILE_QUEUED)
			n++;
	return n;
}

/*
 * Notes.
 */

/* qfile_fnv - FNV-1a (32 bits) of p[0..n), continuing from h */
static unsigned long
qfile_fnv(unsigned long h, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = ((h ^ (unsigned char)p[i]) * 16777619UL) & 0xffffffffUL;
	return h;
}

#define QFILE_FNV_INIT 2166136261UL

/* qfile_pwrite_all - write p[0..n) at off; -1 with why */
static int
qfile_pwrite_all(int fd, const char *p, size_t n, off_t off,
    struct buf *why)
{
	size_t done = 0;

	while (done < n) {
		ssize_t k = pwrite(fd, p + done, n - done, off + (off_t)done);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			buf_set(why, "");
			if (k < 0)
				buf_printf(why, "write: %m");
			else
				buf_puts(why, "write: wrote nothing");
			return -1;
		}
		done += (size_t)k;
	}
	return 0;
}

/* qfile_note_text_ok - a note's text: no control bytes, bounded */
static bool
qfile_note_text_ok(const char *p, size_t n)
{
	if (n > QFILE_NOTE_TEXT_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
			return false;
	return true;
}

/* qfile_note_dsn_ok - d.d.d shape, digits and dots only */
static bool
qfile_note_dsn_ok(const char *p, size_t n)
{
	if (n == 0 || n >= sizeof(((struct qfile_note *)0)->dsn))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((p[i] >= '0' && p[i] <= '9') || p[i] == '.'))
			return false;
	return true;
}

/* qfile_notes_write - replace the notes block */
int
qfile_notes_write(struct qfile *qf, const struct qfile_note *notes,
    size_t n, struct buf *why)
{
	struct buf blk = BUF_INIT, line = BUF_INIT;
	unsigned long h = QFILE_FNV_INIT;
	int ret = -1;

	if (qf->version == 1) {
		/*
		 * A version 1 file with bytes after E is corrupt: the
		 * new version must be on the disk before the first note.
		 */
		if (qfile_pwrite_all(qf->fd, "2", 1, QFILE_VERSION_DIGIT,
		    why) < 0 || qfile_sync(qf, why) < 0)
			goto out;
		qf->version = 2;
	}
	for (size_t i = 0; i < n; i++) {
		const struct qfile_note *nt = &notes[i];
		const char *dsn = qfile_note_dsn_ok(nt->dsn, strlen(nt->dsn)) ?
		    nt->dsn : "4.0.0";
		size_t tlen = strlen(nt->text);

		if (nt->idx >= qf->nrcpt)
			msg_panic("qfile_notes_write: recipient %zu of %zu",
			    nt->idx, qf->nrcpt);
		if (tlen > QFILE_NOTE_TEXT_MAX)
			tlen = QFILE_NOTE_TEXT_MAX;
		buf_reset(&line);
		buf_printf(&line, "N%zu %lld %s ", nt->idx,
		    (long long)(nt->when < 0 ? 0 : nt->when), dsn);
		for (size_t k = 0; k < tlen; k++) {
			unsigned char c = (unsigned char)nt->text[k];

			buf_putc(&line, c < 0x20 || c == 0x7f ? '?' : c);
		}
		buf_putc(&line, '\n');
		/* advice only: past the bound the rest is left out */
		if (blk.len + line.len + 16 > QFILE_NOTES_MAX)
			break;
		h = qfile_fnv(h, line.data, line.len);
		buf_append(&blk, line.data, line.len);
	}
	if (n > 0)
		buf_printf(&blk, "Z%08lx\n", h);
	if (qfile_pwrite_all(qf->fd, blk.data ? blk.data : "", blk.len,
	    qf->notes_off, why) < 0)
		goto out;
	if (ftruncate(qf->fd, qf->notes_off + (off_t)blk.len) < 0) {
		buf_set(why, "");
		buf_printf(why, "ftruncate: %m");
		goto out;
	}
	qf->file_size = qf->notes_off + (off_t)blk.len;
	ret = 0;
out:
	buf_free(&blk);
	buf_free(&line);
	return ret;
}

/* qfile_notes_parse - one N line (after the 'N') into nt; -1 if bad */
static int
qfile_notes_parse(const char *p, size_t len, size_t nrcpt,
    struct qfile_note *nt)
{
	const char *end = p + len, *sp1, *sp2, *sp3;
	long long idx, when;

	if ((sp1 = memchr(p, ' ', len)) == NULL ||
	    (sp2 = memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1))) == NULL ||
	    (sp3 = memchr(sp2 + 1, ' ', (size_t)(end - sp2 - 1))) == NULL)
		return -1;
	if (qfile_digits(p, (size_t)(sp1 - p), &idx) < 0 ||
	    (size_t)idx >= nrcpt ||
	    qfile_digits(sp1 + 1, (size_t)(sp2 - sp1 - 1), &when) < 0 ||
	    !qfile_note_dsn_ok(sp2 + 1, (size_t)(sp3 - sp2 - 1)) ||
	    !qfile_note_text_ok(sp3 + 1, (size_t)(end - sp3 - 1)))
		return -1;
	nt->idx = (size_t)idx;
	nt->when = (time_t)when;
	memcpy(nt->dsn, sp2 + 1, (size_t)(sp3 - sp2 - 1));
	nt->dsn[sp3 - sp2 - 1] = '\0';
	nt->text = xmemdup(sp3 + 1, (size_t)(end - sp3 - 1));
	return 0;
}

/* qfile_notes_read - the notes of qf, if the block is whole */
int
qfile_notes_read(const struct qfile *qf, struct qfile_note **notes_r,
    size_t *n_r, struct buf *why)
{
	struct qfile_note *notes = NULL;
	size_t n = 0, size, *where;	/* where[idx]: 1 + its note, or 0 */
	unsigned long h = QFILE_FNV_INIT;
	char *blk, *p, *end;
	struct stat st;
	ssize_t k;
	bool whole = false;

	*notes_r = NULL;
	*n_r = 0;
	if (qf->version < 2)
		return 0;
	if (fstat(qf->fd, &st) < 0) {
		buf_set(why, "");
		buf_printf(why, "fstat: %m");
		return -1;
	}
	if (st.st_size <= qf->notes_off ||
	    st.st_size - qf->notes_off > QFILE_NOTES_MAX)
		return 0;
	size = (size_t)(st.st_size - qf->notes_off);
	blk = xmalloc(size + 1);
	where = xcalloc(qf->nrcpt, sizeof(*where));
	do {
		k = pread(qf->fd, blk, size, qf->notes_off);
	} while (k < 0 && errno == EINTR);
	if (k < 0) {
		buf_set(why, "");
		buf_printf(why, "read: %m");
		x_free(&blk);
		x_free(&where);
		return -1;
	}
	size = (size_t)k;
	end = blk + size;
	for (p = blk; p < end && !whole;) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len;

		if (nl == NULL)
			break;
		len = (size_t)(nl - p);
		if (len == 9 && p[0] == 'Z') {
			char hex[9];

			snprintf(hex, sizeof(hex), "%08lx", h);
			whole = memcmp(p + 1, hex, 8) == 0 && nl + 1 == end;
			break;
		}
		h = qfile_fnv(h, p, len + 1);
		if (len == 0 || p[0] != 'N')
			break;
		if ((n & (n - 1)) == 0)
			notes = xreallocarray(notes, n ? n * 2 : 1,
			    sizeof(*notes));
		if (qfile_notes_parse(p + 1, len - 1, qf->nrcpt,
		    &notes[n]) < 0)
			break;
		/* one note per recipient: a later one replaces it */
		if (where[notes[n].idx] != 0) {
			size_t at = where[notes[n].idx] - 1;

			x_free(&notes[at].text);
			notes[at] = notes[n];
		} else {
			where[notes[n].idx] = n + 1;
			n++;
		}
		p = nl + 1;
	}
	x_free(&blk);
	x_free(&where);
	if (!whole) {
		qfile_notes_free(&notes, n);
		return 0;
	}
	*notes_r = notes;
	*n_r = n;
	return 0;
}

/* qfile_notes_free - free notes[0..n) */
void
qfile_notes_free(struct qfile_note **notes, size_t n)
{
	if (*notes == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		x_free(&(*notes)[i].text);
	x_free(notes);
}
