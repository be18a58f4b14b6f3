/*
 * str - small string helpers with no allocation unless named so.
 *
 * Number parsers reject empty input, signs where not allowed, trailing
 * garbage and overflow; they return 0 on success and -1 otherwise.
 */
#ifndef BASE_STR_H
#define BASE_STR_H

#include <stdbool.h>
#include <stddef.h>

/* str_lower - ASCII-lowercase s in place; returns s */
char *str_lower(char *s);
/* str_casecmp - ASCII case-insensitive compare (locale-free strcasecmp) */
int str_casecmp(const char *a, const char *b);
/* str_ncasecmp - the same over at most n bytes */
int str_ncasecmp(const char *a, const char *b, size_t n);
/* str_has_crlfnul - true if p[0..n) holds CR, LF or NUL */
bool str_has_crlfnul(const char *p, size_t n);
/* str_trim - strip leading and trailing blanks in place; returns the start */
char *str_trim(char *s);
/* str_to_ll - parse a decimal long long within [min, max] */
int str_to_ll(const char *s, long long min, long long max, long long *r);
/* str_to_size - parse "10", "10k", "10M", "1G", "1T" (powers of 1024, one
 * suffix letter, any case; "b" means bytes) into bytes */
int str_to_size(const char *s, long long *r);
/* str_to_seconds - parse "30", "30s", "5m", "2h", "5d", "1w" into seconds */
int str_to_seconds(const char *s, long long *r);
/* str_to_bool - parse yes/no, true/false, on/off, 1/0 */
int str_to_bool(const char *s, bool *r);
/* str_lcpy - strlcpy: copy with truncation, returns strlen(src) */
size_t str_lcpy(char *dst, const char *src, size_t size);
/* str_printable - copy at most max bytes of p into out with control and
 * non-ASCII bytes escaped as \xNN, for logging untrusted input; "..."
 * marks a cut */
struct buf;
void str_printable(struct buf *out, const char *p, size_t n, size_t max);

#endif
