/*
 * str - small locale-free string helpers and strict number parsers.
 */
#include <limits.h>
#include <stdbool.h>
#include <string.h>

#include "base/buf.h"
#include "base/str.h"

/* str_tolower_c - ASCII lowercase of one byte */
static int
str_tolower_c(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* str_is_blank - space, tab, CR, LF, VT, FF */
static bool
str_is_blank(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' ||
	    c == '\f';
}

/* str_lower - ASCII-lowercase s in place; returns s */
char *
str_lower(char *s)
{
	for (char *p = s; *p; p++)
		*p = (char)str_tolower_c((unsigned char)*p);
	return s;
}

/* str_casecmp - ASCII case-insensitive compare */
int
str_casecmp(const char *a, const char *b)
{
	return str_ncasecmp(a, b, (size_t)-1);
}

/* str_ncasecmp - ASCII case-insensitive compare of at most n bytes */
int
str_ncasecmp(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int ca = str_tolower_c((unsigned char)a[i]);
		int cb = str_tolower_c((unsigned char)b[i]);

		if (ca != cb)
			return ca - cb;
		if (ca == 0)
			break;
	}
	return 0;
}

/* str_has_crlfnul - true if p[0..n) holds CR, LF or NUL */
bool
str_has_crlfnul(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] == '\r' || p[i] == '\n' || p[i] == '\0')
			return true;
	return false;
}

/* str_trim - strip leading and trailing blanks in place */
char *
str_trim(char *s)
{
	char *end;

	while (str_is_blank((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && str_is_blank((unsigned char)end[-1]))
		end--;
	*end = '\0';
	return s;
}

/* str_digits - parse unsigned decimal digits at *sp; -1 if none/overflow */
static int
str_digits(const char **sp, unsigned long long *r)
{
	const char *s = *sp;
	unsigned long long v = 0;

	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned d = (unsigned)(*s - '0');

		if (v > (ULLONG_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*sp = s;
	*r = v;
	return 0;
}

/* str_to_ll - parse a decimal long long within [min, max] */
int
str_to_ll(const char *s, long long min, long long max, long long *r)
{
	unsigned long long u;
	bool neg = false;
	long long v;

	if (s == NULL)
		return -1;
	if (*s == '-') {
		if (min >= 0)
			return -1;
		neg = true;
		s++;
	}
	if (str_digits(&s, &u) < 0 || *s != '\0')
		return -1;
	if (neg) {
		if (u > (unsigned long long)LLONG_MAX + 1)
			return -1;
		v = u == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN :
		    -(long long)u;
	} else {
		if (u > (unsigned long long)LLONG_MAX)
			return -1;
		v = (long long)u;
	}
	if (v < min || v > max)
		return -1;
	*r = v;
	return 0;
}

/* str_scaled - digits, then one optional suffix from units[] */
static int
str_scaled(const char *s, const char *suffixes,
    const unsigned long long *mult, long long *r)
{
	unsigned long long u, m = 1;
	const char *p;

	if (s == NULL || str_digits(&s, &u) < 0)
		return -1;
	if (*s != '\0') {
		if (s[1] != '\0' || (p = strchr(suffixes, *s)) == NULL)
			return -1;
		m = mult[p - suffixes];
	}
	if (u > (unsigned long long)LLONG_MAX / m)
		return -1;
	*r = (long long)(u * m);
	return 0;
}

/* str_to_size - parse "10", "10k", "10M", "1G", "1T" (powers of 1024) */
int
str_to_size(const char *s, long long *r)
{
	static const unsigned long long mult[] = {
		1, 1, 1ULL << 10, 1ULL << 10, 1ULL << 20, 1ULL << 20,
		1ULL << 30, 1ULL << 30, 1ULL << 40, 1ULL << 40,
	};

	return str_scaled(s, "bBkKmMgGtT", mult, r);
}

/* str_to_seconds - parse "30", "30s", "5m", "2h", "5d", "1w" */
int
str_to_seconds(const char *s, long long *r)
{
	static const unsigned long long mult[] = {
		1, 60, 3600, 86400, 604800,
	};

	return str_scaled(s, "smhdw", mult, r);
}

/* str_to_bool - parse yes/no, true/false, on/off, 1/0 */
int
str_to_bool(const char *s, bool *r)
{
	static const char *const yes[] = {"yes", "true", "on", "1"};
	static const char *const no[] = {"no", "false", "off", "0"};

	if (s == NULL)
		return -1;
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (str_casecmp(s, yes[i]) == 0) {
			*r = true;
			return 0;
		}
		if (str_casecmp(s, no[i]) == 0) {
			*r = false;
			return 0;
		}
	}
	return -1;
}

/* str_lcpy - strlcpy: copy with truncation, returns strlen(src) */
size_t
str_lcpy(char *dst, const char *src, size_t size)
{
	size_t n = strlen(src);

	if (size > 0) {
		size_t c = n < size ? n : size - 1;

		memcpy(dst, src, c);
		dst[c] = '\0';
	}
	return n;
}

/* str_printable - escape control and non-ASCII bytes as \xNN; at most
 * max input bytes are copied, "..." marks a cut */
void
str_printable(struct buf *out, const char *p, size_t n, size_t max)
{
	static const char hex[] = "0123456789abcdef";
	size_t take = n < max ? n : max;

	for (size_t i = 0; i < take; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c < 0x20 || c >= 0x7f) {
			char esc[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};

			buf_append(out, esc, sizeof(esc));
		} else {
			buf_putc(out, c);
		}
	}
	if (take < n)
		buf_puts(out, "...");
}
