/*
 * sendrate - per-user sending counts over the last hour, shared by every
 * smtpd worker and read by heraldctl status.
 *
 * Why a file: the counts must hold across smtpd workers (a user's
 * sessions land on any of them) and across worker restarts and reloads,
 * and heraldctl must see who is over the limit. A small file in the
 * spool's private folder, <spool>/private/sendrate, read and written
 * with pread/pwrite under flock, does that with no new process and no
 * new protocol; each update touches a few hundred bytes in the page
 * cache, so the event loop does not notice it. (authd or qmgr as the
 * owner of the counts would mean a new request and round trip per MAIL
 * and per accepted message.)
 *
 * Layout: a header, then SENDRATE_SLOTS fixed records, a hash table on
 * the lowercased login with SENDRATE_PROBES linear probes. A record
 * keeps the counts of the current and the previous clock hour; the count
 * "in the last hour" is the previous hour's, weighted by the part of it
 * still inside the last 60 minutes, plus the current hour's (the sliding
 * window estimate). A record whose hours are past is free. When every
 * probe holds a live record of another user the user is not counted
 * (a warning says so): limits fail open rather than refusing mail for
 * an accounting reason.
 *
 * Counts are checked at MAIL and RCPT and added when a message is
 * queued, so concurrent transactions of one user may pass a limit by
 * what they hold open (bounded by smtpd_client_transaction_limit per
 * address).
 */
#ifndef MAIL_SENDRATE_H
#define MAIL_SENDRATE_H

#include <stdbool.h>

struct buf;
struct sendrate;

#define SENDRATE_FILE "sendrate"	/* in <spool>/private/ */
#define SENDRATE_SLOTS 4096
#define SENDRATE_PROBES 16

/* what is known of one user */
struct sendrate_count {
	long long messages;	/* in the last hour (estimate) */
	long long recipients;	/* in the last hour (estimate) */
	long long refused_at;	/* last refusal (unix time), 0: none */
};

/* sendrate_open - open (create: mode 0600) <spool>/private/sendrate */
int sendrate_open(const char *spool_dir, bool create, struct sendrate **r_r,
    struct buf *why);
/* sendrate_close - close it; *r becomes NULL; NULL is fine */
void sendrate_close(struct sendrate **r);
/* sendrate_get - user's counts at now (unix time); 0 (zeros if the user
 * has none), -1 on an I/O error (why) */
int sendrate_get(struct sendrate *r, const char *user, long long now,
    struct sendrate_count *c, struct buf *why);
/* sendrate_add - count messages and recipients for user at now; with
 * refused, note a refusal instead (the counts stay). 0, or -1 (why) */
int sendrate_add(struct sendrate *r, const char *user, long long now,
    long long messages, long long recipients, bool refused,
    struct buf *why);
/* sendrate_each_fn - one user with counts in the last hour */
typedef void sendrate_each_fn(const char *user,
    const struct sendrate_count *c, void *ctx);
/* sendrate_each - every user with counts or a refusal in the last hour */
int sendrate_each(struct sendrate *r, long long now, sendrate_each_fn *fn,
    void *ctx, struct buf *why);

#endif
