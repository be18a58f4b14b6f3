/*
 * imap_text - case folding and the RFC 5322 date parser that SEARCH,
 * SORT and THREAD share.
 */
#include <string.h>

#include "base/buf.h"
#include "imap_text.h"

/* imap_text_fold_cp - the simple lower-case folding of code point c */
static unsigned
imap_text_fold_cp(unsigned c)
{
	if (c < 0x80)
		return c >= 'A' && c <= 'Z' ? c + 32 : c;
	if (c == 0xb5)
		return 0x3bc;		/* micro sign: Greek mu */
	if (c >= 0xc0 && c <= 0xde && c != 0xd7)
		return c + 32;
	if (c >= 0x100 && c <= 0x17f) {
		if (c == 0x130)
			return 'i';
		if (c == 0x178)
			return 0xff;
		if (c == 0x17f)
			return 's';
		if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e))
			return c % 2 ? c + 1 : c;
		if (c == 0x131 || c == 0x138 || c == 0x149)
			return c;
		return c % 2 ? c : c + 1;
	}
	if (c >= 0x391 && c <= 0x3ab && c != 0x3a2)
		return c + 32;
	if (c == 0x3c2)
		return 0x3c3;		/* final sigma */
	if (c >= 0x410 && c <= 0x42f)
		return c + 32;
	if (c >= 0x400 && c <= 0x40f)
		return c + 80;
	return c;
}

/* imap_text_fold - append s[0..n) case-folded */
void
imap_text_fold(struct buf *out, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	buf_reserve(out, n);
	while (i < n) {
		unsigned c = p[i], f;
		size_t len;

		if (c < 0x80 && out->limit == 0) {
			/* an ASCII run goes straight into the room reserved
			 * (folding never makes text longer) */
			size_t k = out->len;

			while (i < n && p[i] < 0x80) {
				c = p[i++];
				out->data[k++] = (char)(c >= 'A' && c <= 'Z' ?
				    c + 32 : c);
			}
			out->len = k;
			out->data[k] = '\0';
			continue;
		}
		if (c < 0x80) {
			buf_putc(out, c >= 'A' && c <= 'Z' ? (int)c + 32 :
			    (int)c);
			i++;
			continue;
		}
		/* only two-byte sequences (U+0080..U+07FF) fold here */
		if ((c & 0xe0) != 0xc0 || i + 1 >= n ||
		    (p[i + 1] & 0xc0) != 0x80 || c < 0xc2) {
			len = 1;
			while (i + len < n && (p[i + len] & 0xc0) == 0x80)
				len++;
			buf_append(out, p + i, len);
			i += len;
			continue;
		}
		c = ((c & 0x1f) << 6) | (p[i + 1] & 0x3f);
		f = imap_text_fold_cp(c);
		if (f < 0x80) {
			buf_putc(out, (int)f);
		} else {
			buf_putc(out, (int)(0xc0 | (f >> 6)));
			buf_putc(out, (int)(0x80 | (f & 0x3f)));
		}
		i += 2;
	}
}

/* imap_text_days - days from 1970-01-01 to y-m-d (proleptic Gregorian) */
static long long
imap_text_days(long long y, int m, int d)
{
	long long era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* imap_text_ymd - the date of utc in a zone */
int
imap_text_ymd(time_t utc, int zone)
{
	long long z = ((long long)utc + (long long)zone * 60);
	long long days = z >= 0 ? z / 86400 : (z - 86399) / 86400;
	long long era, doe, yoe, y, doy, mp, d, m;

	days += 719468;
	era = (days >= 0 ? days : days - 146096) / 146097;
	doe = days - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	y = yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	d = doy - (153 * mp + 2) / 5 + 1;
	m = mp < 10 ? mp + 3 : mp - 9;
	y += m <= 2;
	if (y < 0)
		return 0;
	if (y > 99999)
		y = 99999;
	return (int)(y * 10000 + m * 100 + d);
}

/* the date scanner: a position in the text, comments skipped */
struct imap_text_scan {
	const char *p, *end;
};

/* imap_text_cfws - skip blanks, line ends and (nested) comments */
static void
imap_text_cfws(struct imap_text_scan *s)
{
	int depth = 0;

	while (s->p < s->end) {
		char c = *s->p;

		if (depth > 0 && c == '\\' && s->p + 1 < s->end) {
			s->p += 2;
			continue;
		}
		if (c == '(')
			depth++;
		else if (c == ')' && depth > 0)
			depth--;
		else if (depth == 0 && c != ' ' && c != '\t' && c != '\r' &&
		    c != '\n')
			return;
		s->p++;
	}
}

/* imap_text_num - up to max digits; the count of digits read */
static int
imap_text_num(struct imap_text_scan *s, int max, int *v)
{
	int n = 0;

	*v = 0;
	while (s->p < s->end && n < max && *s->p >= '0' && *s->p <= '9') {
		*v = *v * 10 + (*s->p - '0');
		s->p++;
		n++;
	}
	return n;
}

/* imap_text_word - letters into w (lower case, at most size-1) */
static size_t
imap_text_word(struct imap_text_scan *s, char *w, size_t size)
{
	size_t n = 0;

	while (s->p < s->end && ((*s->p >= 'a' && *s->p <= 'z') ||
	    (*s->p >= 'A' && *s->p <= 'Z'))) {
		if (n + 1 < size)
			w[n++] = (char)(*s->p | 0x20);
		s->p++;
	}
	w[n] = '\0';
	return n;
}

/* imap_text_date_parse - an RFC 5322 date-time */
int
imap_text_date_parse(const char *str, size_t n, struct imap_text_date *d)
{
	static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";
	static const struct {
		const char *name;
		int off;
	} zones[] = {
		{"ut", 0}, {"gmt", 0}, {"z", 0}, {"est", -300}, {"edt", -240},
		{"cst", -360}, {"cdt", -300}, {"mst", -420}, {"mdt", -360},
		{"pst", -480}, {"pdt", -420},
	};
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31,
	    30, 31};
	struct imap_text_scan s = {str, str + n};
	char w[16];
	int day, mon = -1, year, hh, mm, ss = 0, ny, zone = 0, z;
	long long t;

	imap_text_cfws(&s);
	/* [day-of-week ","] */
	if (imap_text_word(&s, w, sizeof(w)) > 0) {
		imap_text_cfws(&s);
		if (s.p >= s.end || *s.p != ',')
			return -1;
		s.p++;
		imap_text_cfws(&s);
	}
	if (imap_text_num(&s, 2, &day) == 0)
		return -1;
	imap_text_cfws(&s);
	if (imap_text_word(&s, w, sizeof(w)) != 3)
		return -1;
	for (int i = 0; i < 12; i++)
		if (memcmp(months + 3 * i, w, 3) == 0)
			mon = i;
	if (mon < 0 || day < 1 || day > mdays[mon])
		return -1;
	imap_text_cfws(&s);
	if ((ny = imap_text_num(&s, 4, &year)) < 2)
		return -1;
	if (ny == 2)
		year += year < 50 ? 2000 : 1900;
	else if (ny == 3)
		year += 1900;
	imap_text_cfws(&s);
	if (imap_text_num(&s, 2, &hh) == 0)
		return -1;
	imap_text_cfws(&s);
	if (s.p >= s.end || *s.p++ != ':')
		return -1;
	imap_text_cfws(&s);
	if (imap_text_num(&s, 2, &mm) != 2)
		return -1;
	imap_text_cfws(&s);
	if (s.p < s.end && *s.p == ':') {
		s.p++;
		imap_text_cfws(&s);
		if (imap_text_num(&s, 2, &ss) != 2)
			return -1;
		imap_text_cfws(&s);
	}
	if (hh > 23 || mm > 59 || ss > 60)
		return -1;
	/* the zone: +hhmm / -hhmm, a name, or none (then "-0000") */
	if (s.p < s.end && (*s.p == '+' || *s.p == '-')) {
		int neg = *s.p++ == '-';

		if (imap_text_num(&s, 4, &z) != 4 || z % 100 > 59)
			return -1;
		zone = (z / 100) * 60 + z % 100;
		if (neg)
			zone = -zone;
	} else if (imap_text_word(&s, w, sizeof(w)) > 0) {
		for (size_t i = 0; i < sizeof(zones) / sizeof(zones[0]); i++)
			if (strcmp(w, zones[i].name) == 0)
				zone = zones[i].off;
		/* military and unknown zones: RFC 5322 4.3 says -0000 */
	}
	t = imap_text_days(year, mon + 1, day) * 86400LL + hh * 3600 +
	    mm * 60 + ss - zone * 60LL;
	d->utc = (time_t)t;
	d->zone = zone;
	d->ymd = year * 10000 + (mon + 1) * 100 + day;
	return 0;
}
