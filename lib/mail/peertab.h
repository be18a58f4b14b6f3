/*
 * peertab - the table of client sessions that all workers of one service
 * share, so that a per-client limit (smtpd_client_limit, pop3d_client_limit,
 * smtpd_submit_uid_limit) counts the client's sessions in every worker, not
 * only in the one that accepted it.
 *
 * The table is a memfd that master creates per service (sealed against
 * growing and shrinking) and passes to each worker as an inherited
 * descriptor, with the number of the slot that worker owns (see peer.h for
 * the environment). The table holds one region per slot; a region holds up
 * to per_slot entries, one per open session: a tag (a hash of the key, 0
 * when the entry is free) and the key text (the client's address, or
 * "uid:N" for a local UNIX-socket client).
 *
 * Concurrency: lock-free, with C11 atomics. Each region has exactly one
 * writer, the worker that owns the slot (master only clears the region of
 * a child it reaped, when no writer is left). Readers sum the entries with
 * the key over every region. A writer stores the key text, then the
 * region's high-water mark and the tag (sequentially consistent, as are
 * the readers' loads), so a reader that sees the tag sees the text, and
 * of two workers that add a session and then count at the same moment at
 * least one sees the other's: racing accepts do not pass a limit, though
 * both may be refused where one had room, and an entry being reused for
 * another key can be counted once too often for a moment. Callers should
 * still take a limit as exact to within one or two sessions (the table is
 * advisory: a worker that writes garbage into it only skews the counts).
 * The count never drifts: every entry is removed by its own session's
 * end, or with the whole region when its worker dies.
 *
 * Memory is fixed at creation: slots x per_slot entries of 64 bytes
 * (pages a worker never touches are never allocated). A reader's work is
 * bounded by the regions' high-water marks, i.e. by the open sessions.
 *
 * Nothing here trusts the table for memory safety: indexes and lengths
 * come from the mapping's own size, checked when it is mapped; a worker
 * that scribbles over the table can only skew the counts. master only
 * clears regions, reading nothing but a region's high-water mark, which
 * it bounds by the size it made.
 */
#ifndef MAIL_PEERTAB_H
#define MAIL_PEERTAB_H

#include <stdbool.h>

struct buf;
struct peertab;

/* longest key kept, with its NUL (an IPv6 address text is 46) */
#define PEERTAB_KEY_SIZE 56
/* bounds of a table */
#define PEERTAB_MAX_SLOTS 4096
#define PEERTAB_MAX_PER_SLOT (4 * 1024 * 1024)

/* peertab_create - a new zeroed table as a sealed memfd (close-on-exec):
 * its descriptor in *fd_r; -1 with why */
int peertab_create(unsigned slots, unsigned per_slot, int *fd_r,
    struct buf *why);
/* peertab_map - map the table on fd (fd may be closed afterwards); -1
 * with why when fd is not a table of a sane size */
int peertab_map(int fd, struct peertab **t_r, struct buf *why);
/* peertab_unmap - forget a mapping (NULL is fine) */
void peertab_unmap(struct peertab **t);
/* peertab_slots / peertab_per_slot - its geometry */
unsigned peertab_slots(const struct peertab *t);
unsigned peertab_per_slot(const struct peertab *t);
/* peertab_clear - empty the region of slot (its writer is gone, or it is
 * the caller, about to start) */
void peertab_clear(struct peertab *t, unsigned slot);
/* peertab_add - one session with key in slot's region (caller: the one
 * writer of slot); the entry's index, or -1 when the region is full */
int peertab_add(struct peertab *t, unsigned slot, const char *key);
/* peertab_del - the session of entry idx in slot's region has ended */
void peertab_del(struct peertab *t, unsigned slot, int idx);
/* peertab_count - sessions with key in every region */
unsigned peertab_count(const struct peertab *t, const char *key);

#endif
