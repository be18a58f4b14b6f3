/*
 * ipc_async - one request and its reply over a UNIX socket, from an
 * event loop: connect (non-blocking), write the frame, read one reply
 * frame, all within a deadline. The blocking form is ipc_call
 * (mail/ipc.h); this is the same exchange for a process that must not
 * wait (smtpd asking the DKIM signer).
 *
 * A call owns its socket, buffers and timer. done() is called once,
 * from a loop callback, after the call is freed, so done() may start
 * another call or free what owned this one; a cancelled call never
 * calls done(). Replies are bounded by IPC_MAX_FRAME.
 */
#ifndef MAIL_IPC_ASYNC_H
#define MAIL_IPC_ASYNC_H

#include "base/buf.h"

struct evloop;
struct ipc_msg;
struct ipc_async;

/* ipc_async_fn - the call ended: r 1 with the reply in m, -1 with why
 * (m NULL) */
typedef void ipc_async_fn(
    void *ctx, int r, const struct ipc_msg *m, const char *why);

/* ipc_async_start - send req to the socket at path and wait up to
 * timeout_ms for one reply frame; peer names the other side in the
 * texts given to done ("the signer"). NULL with why when the call
 * cannot start (connect refused, no such socket): done is not called */
struct ipc_async *ipc_async_start(struct evloop *loop, const char *path,
    const struct ipc_msg *req, int timeout_ms, const char *peer,
    ipc_async_fn *done, void *ctx, struct buf *why);
/* ipc_async_cancel - drop a call (NULL: nothing); done is not called */
void ipc_async_cancel(struct ipc_async **cp);

#endif
