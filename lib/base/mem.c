/*
 * mem - allocation that cannot fail: every function here returns memory
 * or ends the process with msg_fatal().
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/mem.h"

/* mem_die - report exhaustion of n bytes and exit */
static void __attribute__((noreturn))
mem_die(const char *what, size_t n)
{
	msg_fatal("%s: out of memory allocating %zu bytes", what, n);
}

/* xmalloc - malloc or die; xmalloc(0) returns a unique pointer */
void *
xmalloc(size_t n)
{
	void *p;

	if ((p = malloc(n ? n : 1)) == NULL)
		mem_die("xmalloc", n);
	return p;
}

/* xcalloc - zeroed array, overflow-checked, or die */
void *
xcalloc(size_t nmemb, size_t size)
{
	void *p;

	if (nmemb == 0 || size == 0)
		nmemb = size = 1;
	if (size != 0 && nmemb > (size_t)-1 / size)
		msg_fatal("xcalloc: %zu * %zu overflows", nmemb, size);
	if ((p = calloc(nmemb, size)) == NULL)
		mem_die("xcalloc", nmemb * size);
	return p;
}

/* xrealloc - realloc or die */
void *
xrealloc(void *p, size_t n)
{
	void *q;

	if ((q = realloc(p, n ? n : 1)) == NULL)
		mem_die("xrealloc", n);
	return q;
}

/* xreallocarray - realloc to nmemb * size, overflow-checked, or die */
void *
xreallocarray(void *p, size_t nmemb, size_t size)
{
	if (size != 0 && nmemb > (size_t)-1 / size)
		msg_fatal("xreallocarray: %zu * %zu overflows", nmemb, size);
	return xrealloc(p, nmemb * size);
}

/* xstrdup - copy of a string or die */
char *
xstrdup(const char *s)
{
	return xmemdup(s, strlen(s));
}

/* xstrndup - copy of at most n bytes of s, NUL-terminated, or die */
char *
xstrndup(const char *s, size_t n)
{
	return xmemdup(s, strnlen(s, n));
}

/* xmemdup - copy of n bytes plus a NUL, or die */
char *
xmemdup(const void *p, size_t n)
{
	char *q;

	if (n == (size_t)-1)
		msg_fatal("xmemdup: size overflows");
	q = xmalloc(n + 1);
	if (n > 0)
		memcpy(q, p, n);
	q[n] = '\0';
	return q;
}

/* xasprintf - formatted allocation or die; %m sees the caller's errno */
char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		mem_die("xasprintf", 0);
	return s;
}

/* x_free - free *(void **)pp and set it to NULL */
void
x_free(void *pp)
{
	void **p = pp;

	if (p != NULL) {
		free(*p);
		*p = NULL;
	}
}
