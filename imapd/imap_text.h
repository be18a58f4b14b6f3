/*
 * imap_text - the text rules SEARCH, SORT and THREAD share: case folding
 * for comparisons (i;unicode-casemap as far as simple one-to-one folding
 * goes: ASCII, Latin-1, Latin Extended-A, Greek, Cyrillic; other code
 * points compare as they are) and the RFC 5322 Date: header parser.
 *
 * Pure functions without global state: safe in a worker thread.
 */
#ifndef IMAPD_IMAP_TEXT_H
#define IMAPD_IMAP_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct buf;

/* imap_text_fold - append s[0..n) (UTF-8) case-folded; ill-formed bytes
 * are copied as they are */
void imap_text_fold(struct buf *out, const char *s, size_t n);

/* a date as written in a Date: header */
struct imap_text_date {
	time_t utc;		/* the moment, seconds since the epoch */
	int zone;		/* its zone, minutes east of UTC */
	int ymd;		/* the date as written: yyyymmdd */
};

/* imap_text_date_parse - an RFC 5322 date-time (obsolete forms: two- and
 * three-digit years, named zones, comments, no seconds) in s[0..n); 0,
 * or -1 if it is not one */
int imap_text_date_parse(const char *s, size_t n, struct imap_text_date *d);
/* imap_text_ymd - the date (yyyymmdd) of utc seen in the zone (minutes
 * east of UTC) */
int imap_text_ymd(time_t utc, int zone);

#endif
