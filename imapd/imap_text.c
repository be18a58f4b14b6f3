/*
 * imap_text - case folding and the RFC 5322 date parser that SEARCH,
 * SORT and THREAD share.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "base/buf.h"
#include "mail/charset.h"
#include "imap_text.h"
#include "imap_text_fold.h"

/*
 * The runs are compact but a binary search per code point is slow for
 * text that is mostly non-ASCII (Cyrillic, Greek): the Basic Multilingual
 * Plane is expanded once per process into deltas by 256-code-point block,
 * only for the blocks that have any mapping (18 in Unicode 15), and the
 * rare code points above it keep the search.
 */
#define IMAP_TEXT_BLOCKS 32	/* room for BMP blocks with mappings */

static pthread_once_t imap_text_once = PTHREAD_ONCE_INIT;
static uint8_t imap_text_block[256];	/* high byte -> block, 0: none */
static int32_t imap_text_delta[IMAP_TEXT_BLOCKS][256];	/* [0]: zeros */
static bool imap_text_bmp_all;	/* every BMP mapping found a block */

/* imap_text_fold_search - the folding of c from the runs */
static unsigned
imap_text_fold_search(unsigned c)
{
	size_t lo = 0, hi = sizeof(imap_text_fold_runs) /
	    sizeof(imap_text_fold_runs[0]);
	const struct imap_text_fold_run *r;

	/* the last run that starts at or below c is the only candidate */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (imap_text_fold_runs[mid].lo <= c)
			lo = mid;
		else
			hi = mid;
	}
	r = &imap_text_fold_runs[lo];
	if (c < r->lo || (c - r->lo) % r->stride != 0 ||
	    (c - r->lo) / r->stride >= r->count)
		return c;
	return (unsigned)((int32_t)c + r->delta);
}

/* imap_text_fold_init - expand the runs of the BMP into blocks (once) */
static void
imap_text_fold_init(void)
{
	size_t nruns = sizeof(imap_text_fold_runs) /
	    sizeof(imap_text_fold_runs[0]);
	int used = 1;

	imap_text_bmp_all = true;
	for (size_t i = 0; i < nruns; i++) {
		const struct imap_text_fold_run *r = &imap_text_fold_runs[i];

		for (uint32_t k = 0; k < r->count; k++) {
			uint32_t c = r->lo + k * r->stride;

			if (c > 0xffff)
				break;
			if (imap_text_block[c >> 8] == 0) {
				if (used == IMAP_TEXT_BLOCKS) {
					imap_text_bmp_all = false;
					continue;
				}
				imap_text_block[c >> 8] = (uint8_t)used++;
			}
			imap_text_delta[imap_text_block[c >> 8]][c & 0xff] =
			    r->delta;
		}
	}
}

/* imap_text_fold_cp - the simple case folding of code point c */
static unsigned
imap_text_fold_cp(unsigned c)
{
	if (c < 0x80)
		return c >= 'A' && c <= 'Z' ? c + 32 : c;
	if (c <= 0xffff && imap_text_bmp_all)
		return (unsigned)((int32_t)c +
		    imap_text_delta[imap_text_block[c >> 8]][c & 0xff]);
	return imap_text_fold_search(c);
}

/* imap_text_putcp - append code point c as UTF-8 */
static void
imap_text_putcp(struct buf *out, unsigned c)
{
	char u[4];
	size_t n = charset_utf8_encode(c, u);

	if (out->limit != 0) {
		buf_append(out, u, n);
		return;
	}
	/* no limit: straight into the room (the caller's hot loop) */
	buf_reserve(out, n);
	memcpy(out->data + out->len, u, n);
	out->len += n;
	out->data[out->len] = '\0';
}

/* imap_text_fold - append s[0..n) case-folded */
void
imap_text_fold(struct buf *out, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	pthread_once(&imap_text_once, imap_text_fold_init);
	while (i < n) {
		unsigned c = p[i];
		size_t len;
		uint32_t cp;

		if (c < 0x80 && out->limit == 0) {
			/*
			 * An ASCII run goes straight into room reserved for
			 * the rest of the input (ASCII folds to ASCII; other
			 * code points may fold to longer UTF-8, U+023A to
			 * U+2C65, so the room is made here, not once).
			 */
			size_t k;

			buf_reserve(out, n - i);
			k = out->len;
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
		if ((len = charset_utf8_decode(p + i, n - i, &cp)) > 0) {
			imap_text_putcp(out, imap_text_fold_cp(cp));
		} else {
			/* ill-formed: the lead byte and its continuation
			 * bytes as they are */
			len = 1;
			while (i + len < n && (p[i + len] & 0xc0) == 0x80)
				len++;
			buf_append(out, p + i, len);
		}
		i += len;
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
