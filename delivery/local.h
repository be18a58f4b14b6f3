/*
 * local - the local delivery agent's structures and the functions its
 * files share.
 *
 * local_resolve.c turns one recipient address into the mailboxes it
 * stands for (users, through aliases, "+ext" and the catch-all) and the
 * parts that fail; local_header.c scans the message header section for
 * mail loops; local_deliver.c writes one copy into one Maildir; local.c
 * speaks the protocol with qmgr and combines the results.
 */
#ifndef DELIVERY_LOCAL_H
#define DELIVERY_LOCAL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "base/buf.h"

struct dir;
struct qfile;

#define LOCAL_HEADER_MAX (1024 * 1024)	/* header bytes scanned */
#define LOCAL_HEADER_VALUES 1000	/* Delivered-To: values kept */
#define LOCAL_HEADER_VALUE_MAX 1024	/* bytes of one value kept */
#define LOCAL_RCPT_MAX 1000		/* recipients in one request */

/* outcome of one delivery or one resolution, worst last */
enum local_status {
	LOCAL_OK = 0,		/* delivered / nothing failed */
	LOCAL_BOUNCED = 1,	/* permanent failure */
	LOCAL_DEFERRED = 2,	/* temporary failure: wins over bounced */
};

/* an outcome with its enhanced status code and text */
struct local_outcome {
	enum local_status status;
	char dsn[16];
	struct buf reason;
};

/* one mailbox an address resolves to */
struct local_box {
	char *addr;		/* the user: lowercased local@domain */
	long long quota;	/* bytes; 0: none (default applied) */
};

/* the result of resolving one recipient */
struct local_resolved {
	struct local_box *box;	/* mailboxes, no duplicates */
	size_t nbox;
	size_t cap;
	struct local_outcome fail;	/* worst failing part, or LOCAL_OK */
	char **seen;		/* lookup keys met in this expansion */
	size_t nseen;
	size_t nmember;		/* alias members met (not the recipient) */
	size_t expand_limit;	/* most members allowed */
	bool too_large;		/* stopped: more than expand_limit */
	char *top_alias;	/* the alias the recipient hit, or NULL */
	bool top_known;		/* top_alias was known: not expanded */
	char *const *known;	/* aliases not to expand (_check) */
	size_t nknown;
};

/* local_header.c: loop detection state, fed incrementally */
struct local_header {
	int hops;		/* Received: plus Delivered-To: fields */
	char **delivered_to;	/* Delivered-To: values, lowercase, no <> */
	size_t ndelivered;
	bool done;		/* the empty line or a non-header seen */
	/* parser state */
	bool line_start;	/* next byte starts a line */
	bool in_name;		/* reading a field name */
	int kind;		/* of the current field */
	char name[32];		/* field name so far (longer: not ours) */
	size_t name_len;
	struct buf value;	/* Delivered-To: value so far */
};

/* local_outcome_init / _free / _set */
void local_outcome_init(struct local_outcome *o);
void local_outcome_free(struct local_outcome *o);
void local_outcome_set(struct local_outcome *o, enum local_status st,
    const char *dsn, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* local_resolve - resolve addr (a recipient) against the directory:
 * users, user without extension (delim, 0: none), alias, alias without
 * extension, catch-all; alias targets recursively up to depth_limit.
 * r must be zeroed or freed before; always fills r (failures in r->fail) */
void local_resolve(struct dir *d, const char *addr, char delim,
    int depth_limit, struct local_resolved *r);
/* local_resolve_check - local_resolve with expand_limit members at most
 * (r->too_large when there are more), where a top-level alias whose key is
 * one of known[0..nknown) is taken as it is, not expanded (r->top_known):
 * smtpd's RCPT check, which remembers the aliases it expanded already */
void local_resolve_check(struct dir *d, const char *addr, char delim,
    int depth_limit, size_t expand_limit, char *const *known, size_t nknown,
    struct local_resolved *r);
/* local_resolved_free - release r (reusable afterwards) */
void local_resolved_free(struct local_resolved *r);

/* local_header_init / _free */
void local_header_init(struct local_header *h);
void local_header_free(struct local_header *h);
/* local_header_feed - scan n more bytes of the message */
void local_header_feed(struct local_header *h, const char *p, size_t n);
/* local_header_end - no more input: finish the last field */
void local_header_end(struct local_header *h);
/* local_header_read - feed the header section of size bytes at off of fd
 * (at most LOCAL_HEADER_MAX bytes); -1 with why on a read error */
int local_header_read(struct local_header *h, int fd, off_t off,
    off_t size, struct buf *why);
/* local_header_delivered_to - true if a Delivered-To: names addr */
bool local_header_delivered_to(const struct local_header *h,
    const char *addr);

/* local_deliver.c */
struct maildir_batch;
/* local_deliver_box - write the copy of qf's message (on fd) for box, with
 * Return-Path: and Delivered-To: prepended, into the batch mb: true with
 * *copy_r its index, or false with out set (refused: path, quota, ...) */
bool local_deliver_box(const struct qfile *qf, int fd,
    const struct local_box *box, struct maildir_batch *mb, size_t *copy_r,
    struct local_outcome *out);
/* local_deliver_result - after the commit of mb: copy's outcome to out */
void local_deliver_result(const struct maildir_batch *mb, size_t copy,
    const struct local_box *box, struct local_outcome *out);

/* local_request.c: a request is taken in two steps so that the copies of
 * several requests share one maildir batch (see local.c) */
struct ipc_msg;
struct local_req;
/* local_request_start - check req (with the queue file qfd, -1: none;
 * the caller closes it after this), resolve its recipients and write
 * their copies into mb; NULL if the request is malformed (drop the
 * connection) */
struct local_req *local_request_start(struct dir *d,
    const struct ipc_msg *req, int qfd, struct maildir_batch *mb);
/* local_request_finish - after mb's commit: the results, sent on sock as
 * the reply; frees rq. -1 if the reply could not be sent */
int local_request_finish(struct local_req *rq, const struct maildir_batch *mb,
    int sock);
/* local_request - one request alone: start, commit, finish; -1 if it was
 * malformed or the reply could not be sent (drop the connection) */
int local_request(struct dir *d, int sock, const struct ipc_msg *req,
    int qfd);

#endif
