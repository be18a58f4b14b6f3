/*
 * pop3d_sizes - the size cache of a maildrop: the CRLF size of each
 * message whose file name carries no ",W=", so that a login counts such
 * a file once instead of reading it whole every time.
 *
 * herald's own delivery writes ",S=" and ",W=" into every name; only
 * files put there by something else (a migration, another MDA) lack it.
 * Their names cannot be changed to add W=: the base name is the POP3
 * UIDL and must stay the same. So the sizes live beside the Maildir in
 * <maildir>/herald-sizes, written after a scan that counted something
 * (tmp file + rename, under the maildrop lock):
 *
 *	herald-sizes 1
 *	<wsize> <file size> <inode> <mtime sec>.<nsec> <base name>
 *	...
 *
 * An entry is used only when the file's inode, size and mtime still
 * match (the base name is looked up, so a flag change in the info part
 * does not lose it). Only base names of 0x21..0x7E bytes are cached;
 * others are counted at every login, as before.
 *
 * The file is written by the vmail user and read as untrusted bytes: a
 * bad header, a line over POP3D_SIZES_LINE_MAX, a bad field or a last
 * line without its newline make the whole cache ignored (it is rebuilt
 * by the scan); a file over POP3D_SIZES_FILE_MAX is not read. The parser
 * takes any chunking of its input.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/mem.h"
#include "pop3d.h"

#define POP3D_SIZES_MAGIC "herald-sizes 1"
#define POP3D_SIZES_NUM_MAX 0x3fffffffffffffffLL

/* pop3d_sizes_init - an empty cache, ready to parse */
void
pop3d_sizes_init(struct pop3d_sizes *c)
{
	memset(c, 0, sizeof(*c));
}

/* pop3d_sizes_free - forget everything */
void
pop3d_sizes_free(struct pop3d_sizes *c)
{
	for (size_t i = 0; i < c->n; i++)
		x_free(&c->ent[i].base);
	x_free(&c->ent);
	pop3d_sizes_init(c);
}

/* pop3d_sizes_name_ok - a base name the cache can hold */
bool
pop3d_sizes_name_ok(const char *p, size_t n)
{
	if (n == 0 || n > POP3D_SIZES_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] < 0x21 || (unsigned char)p[i] > 0x7e ||
		    p[i] == ':' || p[i] == '/')
			return false;
	return true;
}

/* pop3d_sizes_add - one entry (base[0..blen) must be name_ok) */
void
pop3d_sizes_add(struct pop3d_sizes *c, const char *base, size_t blen,
    const struct pop3d_size_ent *e)
{
	struct pop3d_size_ent *n;

	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 64;
		c->ent = xreallocarray(c->ent, c->cap, sizeof(*c->ent));
	}
	n = &c->ent[c->n++];
	*n = *e;
	n->base = xmalloc(blen + 1);
	memcpy(n->base, base, blen);
	n->base[blen] = '\0';
	c->sorted = false;
}

/* pop3d_sizes_num - a decimal field 0..POP3D_SIZES_NUM_MAX ending at
 * stop; advances *pp past stop. -1 if it is not one */
static int
pop3d_sizes_num(const char **pp, const char *end, char stop, long long *r)
{
	const char *p = *pp;
	long long n = 0;

	if (p == end || *p < '0' || *p > '9')
		return -1;
	for (; p < end && *p >= '0' && *p <= '9'; p++) {
		if (n > (POP3D_SIZES_NUM_MAX - (*p - '0')) / 10)
			return -1;
		n = n * 10 + (*p - '0');
	}
	if (p == end || *p != stop)
		return -1;
	*pp = p + 1;
	*r = n;
	return 0;
}

/* pop3d_sizes_line - one entry line without its newline; -1 if bad */
static int
pop3d_sizes_line(struct pop3d_sizes *c, const char *p, size_t len)
{
	const char *end = p + len;
	struct pop3d_size_ent e;
	long long ino, nsec;

	memset(&e, 0, sizeof(e));
	if (pop3d_sizes_num(&p, end, ' ', &e.wsize) < 0 ||
	    pop3d_sizes_num(&p, end, ' ', &e.fsize) < 0 ||
	    pop3d_sizes_num(&p, end, ' ', &ino) < 0 ||
	    pop3d_sizes_num(&p, end, '.', &e.mtime_sec) < 0 ||
	    pop3d_sizes_num(&p, end, ' ', &nsec) < 0 ||
	    nsec > 999999999 || !pop3d_sizes_name_ok(p, (size_t)(end - p)))
		return -1;
	/* LF -> CRLF at most doubles a file */
	if (e.wsize < e.fsize || e.wsize > 2 * e.fsize)
		return -1;
	e.ino = (unsigned long long)ino;
	e.mtime_nsec = nsec;
	pop3d_sizes_add(c, p, (size_t)(end - p), &e);
	return 0;
}

/* pop3d_sizes_feed - parse the next chunk of a cache file */
void
pop3d_sizes_feed(struct pop3d_sizes *c, const char *p, size_t n)
{
	while (n > 0 && !c->bad) {
		const char *nl = memchr(p, '\n', n);
		size_t take = nl != NULL ? (size_t)(nl - p) : n;

		if (c->line_len + take > POP3D_SIZES_LINE_MAX) {
			c->bad = true;
			break;
		}
		memcpy(c->line + c->line_len, p, take);
		c->line_len += take;
		p += take;
		n -= take;
		if (nl == NULL)
			break;
		p++;		/* the newline */
		n--;
		if (!c->header_seen) {
			c->header_seen = c->line_len ==
			    sizeof(POP3D_SIZES_MAGIC) - 1 &&
			    memcmp(c->line, POP3D_SIZES_MAGIC,
			    c->line_len) == 0;
			c->bad = !c->header_seen;
		} else if (pop3d_sizes_line(c, c->line, c->line_len) < 0) {
			c->bad = true;
		}
		c->line_len = 0;
	}
}

/* pop3d_sizes_end - end of the file: 0, or -1 (cache emptied) if it was
 * not a complete, well-formed cache */
int
pop3d_sizes_end(struct pop3d_sizes *c)
{
	if (!c->bad && c->header_seen && c->line_len == 0)
		return 0;
	for (size_t i = 0; i < c->n; i++)
		x_free(&c->ent[i].base);
	c->n = 0;
	c->line_len = 0;
	return -1;
}

/* pop3d_sizes_cmp - by base name */
static int
pop3d_sizes_cmp(const void *a, const void *b)
{
	const struct pop3d_size_ent *x = a, *y = b;

	return strcmp(x->base, y->base);
}

/* pop3d_sizes_lookup - the cached wsize of base[0..blen) if the entry
 * still describes st, else -1; marks the entry used */
long long
pop3d_sizes_lookup(struct pop3d_sizes *c, const char *base, size_t blen,
    const struct stat *st)
{
	size_t lo = 0, hi = c->n;
	char key[POP3D_SIZES_NAME_MAX + 1];

	if (blen > POP3D_SIZES_NAME_MAX || c->n == 0)
		return -1;
	memcpy(key, base, blen);
	key[blen] = '\0';
	if (!c->sorted) {
		qsort(c->ent, c->n, sizeof(*c->ent), pop3d_sizes_cmp);
		c->sorted = true;
	}
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int r = strcmp(key, c->ent[mid].base);
		struct pop3d_size_ent *e = &c->ent[mid];

		if (r < 0) {
			hi = mid;
		} else if (r > 0) {
			lo = mid + 1;
		} else {
			if (e->ino != (unsigned long long)st->st_ino ||
			    e->fsize != (long long)st->st_size ||
			    e->mtime_sec != (long long)st->st_mtim.tv_sec ||
			    e->mtime_nsec != (long long)st->st_mtim.tv_nsec)
				return -1;
			e->used = true;
			return e->wsize;
		}
	}
	return -1;
}

/* pop3d_sizes_format - the cache file's text */
void
pop3d_sizes_format(const struct pop3d_sizes *c, struct buf *out)
{
	buf_puts(out, POP3D_SIZES_MAGIC "\n");
	for (size_t i = 0; i < c->n; i++) {
		const struct pop3d_size_ent *e = &c->ent[i];

		buf_printf(out, "%lld %lld %llu %lld.%09lld %s\n", e->wsize,
		    e->fsize, e->ino, e->mtime_sec, e->mtime_nsec, e->base);
	}
}

/* pop3d_sizes_load - read <dir>/herald-sizes; a missing, oversized,
 * unreadable or corrupt file gives an empty cache (-1, errno set for a
 * read error, 0 for "ignored") */
int
pop3d_sizes_load(const char *dir, struct pop3d_sizes *c)
{
	char *path = xasprintf("%s/%s", dir, POP3D_SIZES_NAME);
	char *chunk;
	struct stat st;
	ssize_t r = 0;
	int fd, saved;

	pop3d_sizes_init(c);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	saved = errno;
	x_free(&path);
	if (fd < 0) {
		errno = saved;
		return errno == ENOENT ? 0 : -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > POP3D_SIZES_FILE_MAX) {
		(void)close(fd);
		return 0;
	}
	chunk = xmalloc(65536);
	for (;;) {
		r = read(fd, chunk, 65536);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		pop3d_sizes_feed(c, chunk, (size_t)r);
	}
	saved = errno;
	x_free(&chunk);
	(void)close(fd);
	if (r < 0) {
		(void)pop3d_sizes_end(c);
		errno = saved;
		return -1;
	}
	(void)pop3d_sizes_end(c);
	return 0;
}

/* pop3d_sizes_save - write c as <dir>/herald-sizes (tmp + rename; no
 * fsync: a lost cache is only counted again) */
int
pop3d_sizes_save(const char *dir, const struct pop3d_sizes *c,
    struct buf *why)
{
	char *tmp = xasprintf("%s/%s.tmp", dir, POP3D_SIZES_NAME);
	char *path = xasprintf("%s/%s", dir, POP3D_SIZES_NAME);
	struct buf text = BUF_INIT;
	const char *p;
	size_t left;
	int fd, ret = -1;

	pop3d_sizes_format(c, &text);
	/* whatever is there (a leftover, a FIFO) goes: never open it */
	if (unlink(tmp) < 0 && errno != ENOENT) {
		buf_printf(why, "unlink %s: %s", tmp, strerror(errno));
		goto out;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd < 0) {
		buf_printf(why, "open %s: %s", tmp, strerror(errno));
		goto out;
	}
	for (p = text.data, left = text.len; left > 0;) {
		ssize_t w = write(fd, p, left);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			buf_printf(why, "write %s: %s", tmp,
			    w < 0 ? strerror(errno) : "short write");
			(void)close(fd);
			(void)unlink(tmp);
			goto out;
		}
		p += w;
		left -= (size_t)w;
	}
	if (close(fd) < 0) {
		buf_printf(why, "close %s: %s", tmp, strerror(errno));
		(void)unlink(tmp);
		goto out;
	}
	if (rename(tmp, path) < 0) {
		buf_printf(why, "rename %s: %s", tmp, strerror(errno));
		(void)unlink(tmp);
		goto out;
	}
	ret = 0;
out:
	buf_free(&text);
	x_free(&tmp);
	x_free(&path);
	return ret;
}
