/*
 * ipc - the frame protocol between herald processes (DESIGN.md §5).
 *
 * A frame is a 4-byte big-endian body length followed by the body: pairs
 * "name\0value\0". Names are short identifiers from the IPC_* list below;
 * values are any bytes except NUL. A name may repeat (one IPC_RCPT per
 * recipient); order is kept. Frames are at most IPC_MAX_FRAME bytes.
 *
 * Building: ipc_put_*() append to a struct ipc_msg. Reading: ipc_parse()
 * checks a received body (every pair complete, names well-formed); the
 * ipc_get_*() accessors then find values; ipc_expect_only() is the strict
 * check that nothing unexpected came. A malformed frame from a peer is a
 * protocol error: warn and drop that connection.
 *
 * I/O comes in two forms: blocking with a deadline (single-model services,
 * heraldctl) and incremental (event loops): ipc_frame_take() pulls one
 * complete frame out of a byte buffer. An open descriptor may ride along
 * with a frame (SCM_RIGHTS), e.g. the queue file for a delivery agent.
 */
#ifndef MAIL_IPC_H
#define MAIL_IPC_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"

#define IPC_MAX_FRAME (4 * 1024 * 1024)
#define IPC_MAX_NAME 32

/* attribute names: one list, so peers cannot drift */
#define IPC_REQUEST "request"		/* what the frame asks for */
#define IPC_STATUS "status"		/* reply: "ok", "fail", "defer" ... */
#define IPC_REASON "reason"		/* human text */
#define IPC_QUEUE_ID "queue_id"
#define IPC_SENDER "sender"
#define IPC_RCPT "rcpt"			/* recipient address */
#define IPC_RCPT_INDEX "rcpt_index"	/* recipient's index in the queue file */
#define IPC_NEXTHOP "nexthop"		/* remote: the domain's transport */
#define IPC_TLS_POLICY "tls_policy"	/* remote: the domain's TLS level */
#define IPC_ROUTE_ERROR "route_error"	/* remote: defer, qmgr could not look */
#define IPC_ORCPT "orcpt"		/* original recipient (DSN ORCPT) */
/* per reply "1" (remote): no server took the transaction (connect,
 * greeting, EHLO, TLS or DNS failed), qmgr's negative feedback */
#define IPC_CONN_FAILED "conn_failed"
#define IPC_DSN_CODE "dsn"		/* enhanced status code, "5.1.1" */
/* per recipient "1": delivered to a server without DSN (RFC 3461) */
#define IPC_RELAYED "relayed"
#define IPC_FORWARD "forward"		/* "1": alias targets elsewhere */
#define IPC_RESULT "result"		/* per recipient: delivered|deferred|bounced */
#define IPC_SERVICE "service"
#define IPC_PID "pid"
#define IPC_UNIT "unit"		/* master status: a service's group */
#define IPC_STATE "state"		/* running|restarting|failing|off */
#define IPC_WANTED "wanted"		/* processes a service should run */
#define IPC_COUNT "count"
#define IPC_NAME "name"
#define IPC_VALUE "value"
#define IPC_TIME "time"
#define IPC_SIZE "size"
#define IPC_USER "user"			/* login name; reply: canonical address */
#define IPC_PASSWORD "password"
#define IPC_CLIENT "client"		/* client IP address text */
#define IPC_DELAY "delay"		/* milliseconds to wait before answering */
#define IPC_DOMAIN "domain"		/* signer: the From: domain */
/* qmgr "destinations" reply, per domain after its domain= */
#define IPC_CONCURRENCY "concurrency"	/* requests allowed at once */
#define IPC_BUSY "busy"			/* requests out now */
#define IPC_DEAD_UNTIL "dead_until"	/* time(); 0: alive */
#define IPC_HEADER "header"		/* signer: the header block to sign */
#define IPC_BODY_HASH "body_hash"	/* signer: SHA-256 of the body, hex */
#define IPC_SIGNATURE "signature"	/* signer reply: DKIM-Signature fields */

struct ipc_msg {
	struct buf body;	/* name\0value\0 pairs */
};

/* ipc_msg_init / ipc_msg_free / ipc_msg_reset */
void ipc_msg_init(struct ipc_msg *m);
void ipc_msg_free(struct ipc_msg *m);
void ipc_msg_reset(struct ipc_msg *m);

/* ipc_put_str - append name=value; panics if name is malformed or value
 * holds a NUL (callers check untrusted values first) */
void ipc_put_str(struct ipc_msg *m, const char *name, const char *value);
/* ipc_put_mem - the same with a length */
void ipc_put_mem(struct ipc_msg *m, const char *name, const char *value,
    size_t len);
/* ipc_put_int - append a decimal integer */
void ipc_put_int(struct ipc_msg *m, const char *name, long long value);

/* ipc_parse - check a received body and load it into m; 0, or -1 with why
 * (an empty body is malformed too) */
int ipc_parse(struct ipc_msg *m, const char *body, size_t len,
    struct buf *why);
/* ipc_get_str - first value of name, or NULL */
const char *ipc_get_str(const struct ipc_msg *m, const char *name);
/* ipc_get_int - first value of name as an integer; -1 if absent or bad */
int ipc_get_int(const struct ipc_msg *m, const char *name, long long *r);
/* ipc_next - iterate pairs: *pos starts at 0; 1 with name/value, 0 at end */
int ipc_next(const struct ipc_msg *m, size_t *pos, const char **name,
    const char **value);
/* ipc_expect_only - -1 (why names it) if a pair's name is not in the
 * NULL-terminated list allowed */
int ipc_expect_only(const struct ipc_msg *m, const char *const *allowed,
    struct buf *why);
/* ipc_delivery_request - a qmgr request to a delivery agent: only
 * request=deliver, a valid queue_id and 1..max rcpt_index values, with the
 * queue file attached (qfd); the indexes in a new array *idx_r (the
 * caller frees it), their count in *n_r; -1 with why */
int ipc_delivery_request(const struct ipc_msg *m, int qfd, size_t max,
    long long **idx_r, size_t *n_r, struct buf *why);

/* ipc_frame_encode - append the framed form of m to out; panics if m is
 * empty or over IPC_MAX_FRAME */
void ipc_frame_encode(const struct ipc_msg *m, struct buf *out);
/* ipc_frame_take - if in starts with a complete frame, parse it into m,
 * drop it from in and return 1; 0 if more bytes are needed; -1 (why) if
 * the length is over IPC_MAX_FRAME or the body is malformed */
int ipc_frame_take(struct buf *in, struct ipc_msg *m, struct buf *why);

/* ipc_send - write one frame (and fd when fd >= 0) to a blocking or
 * non-blocking socket, waiting up to timeout_ms (-1: forever); 0, or -1
 * with why ("timeout" when the deadline passed) */
int ipc_send(int sock, const struct ipc_msg *m, int fd, int timeout_ms,
    struct buf *why);
/* ipc_recv - read one frame, waiting up to timeout_ms (-1: forever); an
 * attached descriptor goes to *fd_r (NULL: refuse frames with one);
 * returns 1, 0 on clean EOF before any byte, -1 with why */
int ipc_recv(int sock, struct ipc_msg *m, int *fd_r, int timeout_ms,
    struct buf *why);
/* ipc_call - connect to a UNIX socket path, send, receive the reply, all
 * within timeout_ms; 0, or -1 with why */
int ipc_call(const char *path, const struct ipc_msg *req,
    struct ipc_msg *reply, int timeout_ms, struct buf *why);

#endif
