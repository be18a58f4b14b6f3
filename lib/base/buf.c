/*
 * buf - growing, binary-safe, always NUL-terminated byte buffer with an
 * optional hard limit (see buf.h for the contract).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"

static char buf_empty[1] = "";

/* buf_init - make b an empty buffer that owns no memory */
void
buf_init(struct buf *b)
{
	b->data = buf_empty;
	b->len = 0;
	b->cap = 0;
	b->limit = 0;
	b->overflow = false;
}

/* buf_free - release b's memory; b is empty and reusable (limit kept) */
void
buf_free(struct buf *b)
{
	size_t limit = b->limit;

	if (b->cap > 0)
		free(b->data);
	buf_init(b);
	b->limit = limit;
}

/* buf_reset - empty b, keep its memory, clear the overflow flag */
void
buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->cap > 0)
		b->data[0] = '\0';
	b->overflow = false;
}

/* buf_set_limit - cap len at limit bytes; shorter contents are cut */
void
buf_set_limit(struct buf *b, size_t limit)
{
	b->limit = limit;
	if (limit > 0 && b->len > limit) {
		buf_truncate(b, limit);
		b->overflow = true;
	}
}

/* buf_reserve - make room for n more bytes (plus the NUL) */
void
buf_reserve(struct buf *b, size_t n)
{
	size_t need, cap;
	char *p;

	if (n > (size_t)-1 - b->len - 1)
		msg_panic("buf_reserve: size overflow (%zu + %zu)", b->len, n);
	need = b->len + n + 1;
	if (need <= b->cap)
		return;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > (size_t)-1 / 2 ? need : cap * 2;
	if (b->cap == 0) {
		p = xmalloc(cap);
		memcpy(p, b->data, b->len + 1);
	} else {
		p = xrealloc(b->data, cap);
	}
	b->data = p;
	b->cap = cap;
}

/* buf_room - how many of n bytes the limit lets in; sets overflow */
static size_t
buf_room(struct buf *b, size_t n)
{
	if (b->limit == 0)
		return n;
	if (b->len >= b->limit) {
		if (n > 0)
			b->overflow = true;
		return 0;
	}
	if (n > b->limit - b->len) {
		b->overflow = true;
		return b->limit - b->len;
	}
	return n;
}

/* buf_append - append n bytes (binary-safe), cut at the limit */
void
buf_append(struct buf *b, const void *p, size_t n)
{
	n = buf_room(b, n);
	if (n == 0)
		return;
	buf_reserve(b, n);
	memmove(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

/* buf_puts - append a C string */
void
buf_puts(struct buf *b, const char *s)
{
	buf_append(b, s, strlen(s));
}

/* buf_putc - append one byte */
void
buf_putc(struct buf *b, int c)
{
	char ch = (char)c;

	buf_append(b, &ch, 1);
}

/* buf_set - replace the contents with a C string */
void
buf_set(struct buf *b, const char *s)
{
	size_t n = strlen(s);

	/* s may point into b itself */
	if (b->cap > 0 && s >= b->data && s <= b->data + b->len) {
		memmove(b->data, s, n + 1);
		b->len = n;
		b->overflow = false;
		return;
	}
	buf_reset(b);
	buf_append(b, s, n);
}

/* buf_printf - append formatted text */
void
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	buf_vprintf(b, fmt, ap);
	va_end(ap);
}

/* buf_vprintf - append formatted text from a va_list, cut at the limit */
void
buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	int saved_errno = errno;
	va_list ap2;
	size_t want, room;
	int n;

	/* First try in the space we already have. */
	va_copy(ap2, ap);
	errno = saved_errno;
	room = b->cap > b->len ? b->cap - b->len : 0;
	if (room > 0)
		n = vsnprintf(b->data + b->len, room, fmt, ap2);
	else
		n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		msg_panic("buf_vprintf: bad format \"%s\"", fmt);
	want = (size_t)n;
	if (room > 0 && want < room && buf_room(b, want) == want) {
		b->len += want;
		return;
	}
	/* Did not fit (or is over the limit): format again, bounded. */
	if (room > 0)
		b->data[b->len] = '\0';
	want = buf_room(b, want);
	if (want == 0)
		return;
	buf_reserve(b, want);
	errno = saved_errno;
	n = vsnprintf(b->data + b->len, want + 1, fmt, ap);
	if (n < 0)
		msg_panic("buf_vprintf: bad format \"%s\"", fmt);
	b->len += want;
	b->data[b->len] = '\0';
}

/* buf_consume - drop the first n bytes (n > len drops everything) */
void
buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		if (b->cap > 0)
			b->data[0] = '\0';
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	b->data[b->len] = '\0';
}

/* buf_truncate - shorten to len bytes (no-op if already shorter) */
void
buf_truncate(struct buf *b, size_t len)
{
	if (len >= b->len)
		return;
	b->len = len;
	b->data[len] = '\0';
}

/* buf_steal - hand the bytes to the caller as a malloc'd string */
char *
buf_steal(struct buf *b)
{
	char *p;
	size_t limit = b->limit;

	if (b->cap == 0)
		p = xstrdup("");
	else
		p = b->data;
	buf_init(b);
	b->limit = limit;
	return p;
}
