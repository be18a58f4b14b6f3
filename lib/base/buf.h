/*
 * buf - growing, binary-safe byte buffer that is always NUL-terminated.
 *
 * A struct buf lives wherever its owner puts it (stack, struct member).
 * BUF_INIT or buf_init() makes an empty buffer that owns no memory; the
 * first append allocates. data is never NULL after buf_init (it points at
 * a static "" until something is appended), so buf_cstr() is always safe.
 * Growth is amortised doubling; allocation failure is fatal (mem.h).
 * A buffer may have a hard limit (buf_set_limit): appends past it are
 * truncated and set the sticky overflow flag, so network input can never
 * grow a buffer without bound.
 */
#ifndef BASE_BUF_H
#define BASE_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

struct buf {
	char *data;	/* bytes, data[len] == '\0' always */
	size_t len;	/* bytes in use, not counting the NUL */
	size_t cap;	/* bytes allocated; 0 while data is the static "" */
	size_t limit;	/* 0 = none; otherwise len never exceeds it */
	bool overflow;	/* sticky: an append was cut at limit */
};

#define BUF_INIT {(char *)"", 0, 0, 0, false}

/* buf_init - make b an empty buffer that owns no memory */
void buf_init(struct buf *b);
/* buf_free - release b's memory; b is empty and reusable afterwards (the
 * limit stays, the overflow flag is cleared) */
void buf_free(struct buf *b);
/* buf_reset - empty b, keep its memory, clear the overflow flag */
void buf_reset(struct buf *b);
/* buf_set_limit - cap len at limit bytes (0: no cap); longer contents are
 * cut and set the overflow flag */
void buf_set_limit(struct buf *b, size_t limit);
/* buf_reserve - make room for n more bytes without changing len (the
 * limit is the caller's business here) */
void buf_reserve(struct buf *b, size_t n);
/* buf_append - append n bytes (binary-safe) */
void buf_append(struct buf *b, const void *p, size_t n);
/* buf_puts - append a C string */
void buf_puts(struct buf *b, const char *s);
/* buf_putc - append one byte */
void buf_putc(struct buf *b, int c);
/* buf_set - replace the contents with a C string */
void buf_set(struct buf *b, const char *s);
/* buf_printf - append formatted text */
void buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* buf_vprintf - append formatted text from a va_list */
void buf_vprintf(struct buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* buf_consume - drop the first n bytes (n > len drops everything) */
void buf_consume(struct buf *b, size_t n);
/* buf_truncate - shorten to len bytes (no-op if already shorter) */
void buf_truncate(struct buf *b, size_t len);
/* buf_steal - hand the bytes to the caller as a malloc'd string; b empties
 * (the limit stays) */
char *buf_steal(struct buf *b);

/* buf_cstr - contents as a C string (valid until the next change) */
static inline const char *
buf_cstr(const struct buf *b)
{
	return b->data;
}

#endif
