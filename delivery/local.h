/*
 * local - the local delivery agent's structures and the functions its
 * files share.
 *
 * local_request.c resolves each recipient into the mailboxes it stands
 * for with lib/mail/resolve.c (shared with smtpd's RCPT check) and
 * combines the outcomes (lib/mail/outcome.h) of their copies;
 * local_header.c scans the message header section for mail loops;
 * local_deliver.c writes one copy into one Maildir; local.c speaks the
 * protocol with qmgr.
 */
#ifndef DELIVERY_LOCAL_H
#define DELIVERY_LOCAL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "base/buf.h"
#include "mail/outcome.h"
#include "mail/resolve.h"

struct dir;
struct qfile;

#define LOCAL_HEADER_MAX (1024 * 1024)	/* header bytes scanned */
#define LOCAL_HEADER_VALUES 1000	/* Delivered-To: values kept */
#define LOCAL_HEADER_VALUE_MAX 1024	/* bytes of one value kept */
#define LOCAL_RCPT_MAX 1000		/* recipients in one request */

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
    const struct resolve_box *box, struct maildir_batch *mb, size_t *copy_r,
    struct outcome *out);
/* local_deliver_result - after the commit of mb: copy's outcome to out */
void local_deliver_result(const struct maildir_batch *mb, size_t copy,
    const struct resolve_box *box, struct outcome *out);

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
