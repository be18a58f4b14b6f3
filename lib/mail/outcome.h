/*
 * outcome - the result of delivering to, or resolving, one recipient: a
 * status, an enhanced status code (RFC 3463) and a text for the DSN or
 * the log.
 *
 * The statuses are ordered worst last, so that "st > o->status" says a
 * new failure is worse than the one kept: deferred wins over bounced,
 * because a temporary failure may yet succeed. An outcome owns its
 * reason; outcome_init before use, outcome_free after.
 */
#ifndef MAIL_OUTCOME_H
#define MAIL_OUTCOME_H

#include "base/buf.h"

/* outcome of one delivery or one resolution, worst last */
enum outcome_status {
	OUTCOME_OK = 0,		/* delivered / nothing failed */
	OUTCOME_BOUNCED = 1,	/* permanent failure */
	OUTCOME_DEFERRED = 2,	/* temporary failure: wins over bounced */
};

/* an outcome with its enhanced status code and text */
struct outcome {
	enum outcome_status status;
	char dsn[16];		/* enhanced status code: "5.1.1" */
	struct buf reason;
};

/* outcome_init - no failure yet */
void outcome_init(struct outcome *o);
/* outcome_free - release the reason; o is OUTCOME_OK and reusable */
void outcome_free(struct outcome *o);
/* outcome_set - replace o's status, code (truncated to fit) and reason */
void outcome_set(struct outcome *o, enum outcome_status st, const char *dsn,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
