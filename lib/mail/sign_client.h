/*
 * sign_client - the client side of the DKIM signer's protocol
 * (signer/signer.c documents it): the request frame, the checks on the
 * reply, and a blocking call for a caller without an event loop (qmgr's
 * notifications in its unit tests). smtpd and qmgr send the same frame
 * and read the reply from their event loops (mail/ipc_async.h); all
 * judge the reply here, so what may go above a header is decided in one
 * place.
 *
 * Nothing here holds a key or trusts the signer: a signature that is
 * not only DKIM-Signature fields is refused.
 */
#ifndef MAIL_SIGN_CLIENT_H
#define MAIL_SIGN_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"

struct ipc_msg;

/* sign_client_request - the request for domain's signature of header
 * (the header block with its empty line) and bh (SHA-256 of the relaxed
 * body, dkim_hasher) */
void sign_client_request(struct ipc_msg *m, const char *domain,
    const char *header, size_t len, const unsigned char bh[32]);
/* sign_client_reply - what a reply says: 1 signed (*sig_r: the fields,
 * pointing into m), 0 the domain has no key, -1 with why (a failure or
 * a malformed reply) */
int sign_client_reply(
    const struct ipc_msg *m, const char **sig_r, struct buf *why);
/* sign_client_fields_ok - is sig nothing but DKIM-Signature fields: CRLF
 * lines of printable ASCII and tabs, each a field start or a folded
 * continuation, no empty line? */
bool sign_client_fields_ok(const char *sig);
/* sign_client_call - ask the signer at <spool>/private/signer and wait
 * up to timeout_ms: 1 with the fields appended to sig, 0 no key, -1
 * with why (unreachable, timeout, failure) */
int sign_client_call(const char *spool, const char *domain, const char *header,
    size_t len, const unsigned char bh[32], int timeout_ms, struct buf *sig,
    struct buf *why);

#endif
