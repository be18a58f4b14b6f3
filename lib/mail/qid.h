/*
 * qid - queue ids: unique, sortable by arrival time, safe as file names.
 *
 * A queue id is QID_LEN characters from [0-9A-Z] less I, L, O, U (Crockford
 * base32, uppercase only): 11 for the time in microseconds since the epoch
 * (sorts by time until the year 3111), then 5 for the process id and 1 for
 * a per-process counter, so two processes never make the same id and one
 * process makes strictly increasing ids, even within one microsecond.
 * The counter advances with every id, so the last character (the
 * deferred/ hash, spool.h) is spread evenly over the 32 digits.
 */
#ifndef MAIL_QID_H
#define MAIL_QID_H

#include <stdbool.h>
#include <stddef.h>

#define QID_LEN 17
#define QID_SIZE (QID_LEN + 1)

/* qid_new - a fresh id into out[QID_SIZE] */
void qid_new(char out[QID_SIZE]);
/* qid_valid - true if s is a well-formed queue id (no path tricks) */
bool qid_valid(const char *s);

#endif
