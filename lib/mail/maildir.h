/*
 * maildir - Maildir++ delivery and sizes (DESIGN.md §7).
 *
 * Delivery follows the durability rule: the whole message is written to an
 * unnamed file in tmp/ (a unique name opened O_CREAT|O_EXCL|O_NOFOLLOW
 * where the file system has no O_TMPFILE) and synced, then linked into
 * new/ (rename if link is not supported) and new/ fsynced. Only then does
 * the caller report success. A batch does this for several copies at once
 * and shares the syncs among them (maildir_batch.c). File names are
 * "<sec>.M<usec>P<pid>Q<n>.<host>,S=<size>,W=<wsize>": S= is the file
 * size (quota sums skip stat()), W= the size with CRLF line ends, i.e.
 * the file with every LF that has no CR before it counted as CRLF (the
 * octets a POP3 RETR sends before dot-stuffing; Dovecot's convention).
 */
#ifndef MAIL_MAILDIR_H
#define MAIL_MAILDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct buf;

/* maildir_create - make path and its cur/ new/ tmp/ (mode 0700) */
int maildir_create(const char *path, struct buf *why);

/* maildir_deliver - write header (hlen bytes, LF line ends) then size
 * bytes of the message at offset off of fd into the Maildir at path,
 * converting CRLF line ends to LF (a lone CR stays); the final file name
 * in new/ (no folder) goes to name_r if not NULL. -1 with why; errno is kept from the failing call so the
 * caller can tell ENOSPC/EDQUOT (defer) from others. */
int maildir_deliver(const char *path, const char *header, size_t hlen,
    int fd, off_t off, off_t size, struct buf *name_r, struct buf *why);
/* maildir_deliver_mem - maildir_deliver of the n bytes at p (a message
 * in memory is written once, into tmp/, with no copy in between) */
int maildir_deliver_mem(const char *path, const char *header, size_t hlen,
    const char *p, size_t n, struct buf *name_r, struct buf *why);

/*
 * A batch of copies, committed together: add each copy (it is written at
 * once), commit, then read each result. Results are valid only after the
 * commit; a batch freed before its commit removes its copies.
 */
struct maildir_batch;

/* maildir_batch_new - an empty batch */
struct maildir_batch *maildir_batch_new(void);
/* maildir_batch_add - write header and the message (as maildir_deliver)
 * into the Maildir at path; returns the copy's index for
 * maildir_batch_result (a failure shows there) */
size_t maildir_batch_add(struct maildir_batch *b, const char *path,
    const char *header, size_t hlen, int fd, off_t off, off_t size);
/* maildir_batch_pending - bytes of the copies for path added so far that
 * did not fail (for quota checks of later copies) */
long long maildir_batch_pending(const struct maildir_batch *b,
    const char *path);
/* maildir_batch_commit - sync every copy, link it into new/, sync each
 * new/ folder once */
void maildir_batch_commit(struct maildir_batch *b);
/* maildir_batch_result - 0 when copy i is durable in new/ (its name to
 * name_r if not NULL), else -1 with why and errno of the failed call */
int maildir_batch_result(const struct maildir_batch *b, size_t i,
    struct buf *name_r, struct buf *why);
/* maildir_batch_free - release the batch (NULL is fine) */
void maildir_batch_free(struct maildir_batch **b);

/* maildir_usage - bytes used by messages in new/ and cur/ of the inbox
 * and of its Maildir++ .folders (from S= where present, else stat): from
 * the usage file when it is fresh (maildir.c), else counted and the file
 * written anew; a missing Maildir uses 0 bytes */
int maildir_usage(const char *path, long long *bytes_r, struct buf *why);
/* the usage file of a Maildir (maildir.c), and when it is counted anew */
#define MAILDIR_USAGE_FILE "herald-usage"
/* the next usage file, written beside it and renamed into place */
#define MAILDIR_USAGE_NEW ".new"
#define MAILDIR_USAGE_MAX 5120		/* bytes */
#define MAILDIR_USAGE_AGE (15 * 60)	/* seconds since its count */
#define MAILDIR_USAGE_TRIES 3		/* walks while lines come */
/* the line a count appends to the usage file it replaced (maildir.c) */
#define MAILDIR_USAGE_MOVED "0 0 moved\n"
/* what a read of the usage file saw (maildir_usage_cached), so that a
 * later read takes only the lines appended since (maildir_usage_since) */
struct maildir_usage_snap {
	bool ok;		/* the rest is set */
	dev_t dev;		/* the file read */
	ino_t ino;
	char head[64];		/* its first line */
	size_t head_len;
	off_t size;		/* its bytes read */
	long long bytes;	/* their sum */
	long long when;		/* the time of its count */
};
/* maildir_usage_cached - the usage from the usage file alone (one small
 * read, never a walk: fit for an event loop): 1, or 0 when it must be
 * counted (maildir_usage does); what was read to snap if not NULL */
int maildir_usage_cached(const char *path, long long *bytes_r,
    struct maildir_usage_snap *snap);
/* maildir_usage_since - maildir_usage, cheaply after a
 * maildir_usage_cached that returned 1 and filled snap: when the usage
 * file is still that one, only the lines appended since are read */
int maildir_usage_since(const char *path,
    const struct maildir_usage_snap *snap, long long *bytes_r,
    struct buf *why);
/* maildir_usage_add - bytes and count messages (negative: removed) were
 * added to the folder at path (a Maildir or its .folder); nothing to do
 * when no usage file is kept yet */
void maildir_usage_add(const char *path, long long bytes, int count);
/* maildir_name_size - the S= value (the file's size) in a Maildir++ file
 * name, or -1 when it has none */
long long maildir_name_size(const char *name);
/* maildir_name_wsize - the W= value (the size with CRLF line ends) in a
 * Maildir++ file name, or -1 when it has none (the same rules) */
long long maildir_name_wsize(const char *name);
/* maildir_usage_forget - the usage of the Maildir that path is or holds
 * changed in a way not added: the next maildir_usage counts again */
void maildir_usage_forget(const char *path);

#endif
