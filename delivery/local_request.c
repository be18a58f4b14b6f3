/*
 * local_request - one delivery request from qmgr: check it, read the
 * queue file and its header section once, resolve and deliver every
 * requested recipient, and send the reply (protocol: see local.c).
 *
 * Mailboxes are delivered at most once per request, however many of the
 * requested recipients reach them. A recipient whose resolution hit a
 * temporary failure gets no copy now: it is deferred whole, so the retry
 * delivers each of its parts once.
 */
#include <limits.h>
#include <string.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/dir.h"
#include "mail/ipc.h"
#include "mail/params.h"
#include "mail/qfile.h"
#include "mail/qid.h"
#include "local.h"

/* one mailbox delivered in this request, and how it went */
struct local_done {
	char *addr;
	struct local_outcome out;
};

/* the state of one request */
struct local_req {
	struct dir *dir;
	const char *qid;
	struct qfile *qf;
	int fd;
	struct local_header hdr;
	struct local_done *done;	/* mailboxes handled so far */
	size_t ndone;
};

/* local_result_name - the protocol word for an outcome */
static const char *
local_result_name(enum local_status st)
{
	switch (st) {
	case LOCAL_OK:
		return "delivered";
	case LOCAL_BOUNCED:
		return "bounced";
	default:
		return "deferred";
	}
}

/* local_box_outcome - deliver to one mailbox, once per request; returns
 * the index of its outcome in rq->done (which may move) */
static size_t
local_box_outcome(struct local_req *rq, const struct local_box *box)
{
	struct local_done *d;

	for (size_t i = 0; i < rq->ndone; i++)
		if (strcmp(rq->done[i].addr, box->addr) == 0)
			return i;
	rq->done = xreallocarray(rq->done, rq->ndone + 1, sizeof(*rq->done));
	d = &rq->done[rq->ndone];
	d->addr = xstrdup(box->addr);
	local_outcome_init(&d->out);
	if (local_header_delivered_to(&rq->hdr, box->addr))
		local_outcome_set(&d->out, LOCAL_BOUNCED, "5.4.6",
		    "mail forwarding loop for <%s>", box->addr);
	else
		local_deliver_box(rq->qf, rq->fd, box, &d->out);
	return rq->ndone++;
}

/* local_rcpt - the combined outcome of one requested recipient */
static void
local_rcpt(struct local_req *rq, const char *addr, char delim,
    struct local_outcome *out)
{
	struct local_resolved r;
	const struct local_outcome *worst = NULL;
	const char *worst_box = NULL;
	size_t *idx;

	if (rq->hdr.hops >= var_hopcount_limit) {
		local_outcome_set(out, LOCAL_BOUNCED, "5.4.6",
		    "mail forwarding loop (too many hops)");
		return;
	}
	local_resolve(rq->dir, addr, delim, (int)var_alias_depth_limit, &r);
	if (r.fail.status == LOCAL_DEFERRED) {
		/* deliver nothing now: the retry delivers every part once */
		local_outcome_set(out, LOCAL_DEFERRED, r.fail.dsn, "%s",
		    buf_cstr(&r.fail.reason));
		local_resolved_free(&r);
		return;
	}
	idx = xcalloc(r.nbox ? r.nbox : 1, sizeof(*idx));
	for (size_t i = 0; i < r.nbox; i++)
		idx[i] = local_box_outcome(rq, &r.box[i]);
	/* rq->done is stable from here on */
	for (size_t i = 0; i < r.nbox; i++) {
		const struct local_outcome *o = &rq->done[idx[i]].out;

		if (o->status != LOCAL_OK && (worst == NULL ||
		    o->status > worst->status)) {
			worst = o;
			worst_box = r.box[i].addr;
		}
	}
	x_free(&idx);
	if (worst != NULL && (worst->status == LOCAL_DEFERRED ||
	    r.fail.status == LOCAL_OK)) {
		if (str_casecmp(worst_box, addr) == 0)
			local_outcome_set(out, worst->status, worst->dsn, "%s",
			    buf_cstr(&worst->reason));
		else
			local_outcome_set(out, worst->status, worst->dsn,
			    "<%s>: %s", worst_box, buf_cstr(&worst->reason));
	} else if (r.fail.status != LOCAL_OK) {
		local_outcome_set(out, r.fail.status, r.fail.dsn, "%s",
		    buf_cstr(&r.fail.reason));
	} else {
		local_outcome_set(out, LOCAL_OK, "2.0.0",
		    "delivered to maildir");
	}
	local_resolved_free(&r);
}

/* local_check_request - the request's shape; -1 with why */
static int
local_check_request(const struct ipc_msg *req, int qfd, size_t *n_r,
    struct buf *why)
{
	static const char *const allowed[] = {IPC_REQUEST, IPC_QUEUE_ID,
	    IPC_RCPT_INDEX, NULL};
	const char *what = ipc_get_str(req, IPC_REQUEST);
	const char *qid = ipc_get_str(req, IPC_QUEUE_ID);
	const char *name, *value;
	size_t pos = 0, n = 0;

	if (ipc_expect_only(req, allowed, why) < 0)
		return -1;
	if (what == NULL || strcmp(what, "deliver") != 0) {
		buf_printf(why, "unknown request \"%.40s\"", what ? what : "");
		return -1;
	}
	if (qid == NULL || !qid_valid(qid)) {
		buf_puts(why, "missing or malformed queue_id");
		return -1;
	}
	if (qfd < 0) {
		buf_puts(why, "no queue file descriptor attached");
		return -1;
	}
	while (ipc_next(req, &pos, &name, &value)) {
		long long v;

		if (strcmp(name, IPC_RCPT_INDEX) != 0)
			continue;
		if (str_to_ll(value, 0, INT_MAX, &v) < 0) {
			buf_printf(why, "bad rcpt_index \"%.20s\"", value);
			return -1;
		}
		n++;
	}
	if (n == 0 || n > LOCAL_RCPT_MAX) {
		buf_printf(why, "%zu recipients in one request", n);
		return -1;
	}
	*n_r = n;
	return 0;
}

/* local_request - handle one delivery request; -1 to drop the connection */
int
local_request(struct dir *d, int sock, const struct ipc_msg *req, int qfd)
{
	struct local_req rq;
	struct ipc_msg reply;
	struct buf why = BUF_INIT, fail = BUF_INIT;
	struct local_outcome out;
	const char *name, *value;
	char delim = var_recipient_delimiter[0];
	size_t pos = 0, n;
	int ret = -1;

	if (local_check_request(req, qfd, &n, &why) < 0) {
		msg_warn("bad request from qmgr: %s: dropping the connection",
		    buf_cstr(&why));
		buf_free(&why);
		return -1;
	}
	memset(&rq, 0, sizeof(rq));
	rq.dir = d;
	rq.qid = ipc_get_str(req, IPC_QUEUE_ID);
	rq.fd = qfd;
	local_header_init(&rq.hdr);
	local_outcome_init(&out);
	ipc_msg_init(&reply);

	/* a queue file qmgr just read should read fine here too */
	if (qfile_read(qfd, &rq.qf, &why) < 0) {
		buf_printf(&fail, "cannot read queue file: %s", buf_cstr(&why));
		rq.qf = NULL;
	} else if (local_header_read(&rq.hdr, qfd, rq.qf->body_off,
	    rq.qf->body_size, &why) < 0) {
		buf_printf(&fail, "%s", buf_cstr(&why));
	}
	if (fail.len > 0)
		msg_warn("%s: %s", rq.qid, buf_cstr(&fail));

	ipc_put_str(&reply, IPC_STATUS, "ok");
	while (ipc_next(req, &pos, &name, &value)) {
		long long idx;

		if (strcmp(name, IPC_RCPT_INDEX) != 0)
			continue;
		(void)str_to_ll(value, 0, INT_MAX, &idx);
		if (fail.len > 0)
			local_outcome_set(&out, LOCAL_DEFERRED, "4.3.0", "%s",
			    buf_cstr(&fail));
		else if ((size_t)idx >= rq.qf->nrcpt)
			local_outcome_set(&out, LOCAL_DEFERRED, "4.3.0",
			    "no recipient %lld in the queue file", idx);
		else
			local_rcpt(&rq, rq.qf->rcpt[idx].addr, delim, &out);
		msg_debug("%s: recipient %lld: %s %s (%s)", rq.qid, idx,
		    local_result_name(out.status), out.dsn,
		    buf_cstr(&out.reason));
		ipc_put_int(&reply, IPC_RCPT_INDEX, idx);
		ipc_put_str(&reply, IPC_RESULT, local_result_name(out.status));
		ipc_put_str(&reply, IPC_DSN_CODE, out.dsn);
		ipc_put_str(&reply, IPC_REASON, buf_cstr(&out.reason));
	}
	buf_reset(&why);
	if (ipc_send(sock, &reply, -1, (int)var_delivery_timeout * 1000,
	    &why) < 0)
		msg_warn("%s: reply to qmgr: %s", rq.qid, buf_cstr(&why));
	else
		ret = 0;

	for (size_t i = 0; i < rq.ndone; i++) {
		x_free(&rq.done[i].addr);
		local_outcome_free(&rq.done[i].out);
	}
	x_free(&rq.done);
	local_header_free(&rq.hdr);
	if (rq.qf != NULL)
		qfile_free(&rq.qf);
	local_outcome_free(&out);
	ipc_msg_free(&reply);
	buf_free(&why);
	buf_free(&fail);
	return ret;
}

