/*
 * mem - allocation that cannot fail.
 *
 * xmalloc() and friends return memory or end the process with msg_fatal():
 * herald treats memory exhaustion as "cannot run" (master restarts the
 * service). x_free() frees and clears the pointer, so a second free or a
 * use after free hits NULL instead of freed memory.
 */
#ifndef BASE_MEM_H
#define BASE_MEM_H

#include <stddef.h>

/* xmalloc - malloc or die; xmalloc(0) returns a unique pointer */
void *xmalloc(size_t n);
/* xcalloc - zeroed array of nmemb * size, overflow-checked, or die */
void *xcalloc(size_t nmemb, size_t size);
/* xrealloc - realloc or die */
void *xrealloc(void *p, size_t n);
/* xreallocarray - realloc to nmemb * size, overflow-checked, or die */
void *xreallocarray(void *p, size_t nmemb, size_t size);
/* xstrdup - copy of a string or die */
char *xstrdup(const char *s);
/* xstrndup - copy of at most n bytes of s, NUL-terminated, or die */
char *xstrndup(const char *s, size_t n);
/* xmemdup - copy of n bytes plus a NUL, or die */
char *xmemdup(const void *p, size_t n);
/* xasprintf - formatted allocation or die */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* x_free - free *(void **)pp and set it to NULL; pp is the pointer's address */
void x_free(void *pp);

#endif
