/*
 * local_request - one delivery request from qmgr: check it, read the
 * queue file and its header section once, resolve every requested
 * recipient and write its copies into the batch (local_request_start);
 * once the batch is committed, combine the results and send the reply
 * (local_request_finish). Protocol: see local.c.
 *
 * Mailboxes are delivered at most once per request, however many of the
 * requested recipients reach them (by the resolved mailbox, so "all+1@"
 * and "all+2@" expanding to the same members give each one copy). qmgr
 * puts every local recipient of a message into one request (up to
 * LOCAL_RCPT_MAX, which smtpd_recipient_limit's default matches), so this
 * is per message; only a retry of deferred recipients, or a message with
 * more recipients than that, can give a mailbox a second copy (a
 * duplicate, never a loss: crash safety is unchanged, nothing is
 * recorded between attempts). A request writes at most local_copy_limit
 * copies; the mailboxes past it bounce with 5.5.3, so one message cannot
 * fill the store however its recipients expand.
 *
 * A recipient whose resolution hit a temporary failure gets no copy now:
 * it is deferred whole, so the retry delivers each of its parts once. One
 * whose alias expansion is over alias_expansion_limit gets no copy either
 * and bounces whole (smtpd refuses it at RCPT unless the alias grew since).
 */
#include <string.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/dir.h"
#include "mail/ipc.h"
#include "mail/maildir.h"
#include "mail/params.h"
#include "mail/qfile.h"
#include "local.h"

/* one mailbox this request writes a copy to, and how it went */
struct local_done {
	char *addr;
	bool staged;		/* a copy is in the batch */
	size_t copy;		/* its index there */
	struct outcome out;
};

/* one requested recipient */
struct local_rcpt_state {
	long long idx;		/* rcpt_index */
	bool decided;		/* out is final before the commit */
	struct resolved r;	/* the mailboxes it reaches */
	size_t *done;		/* their entries in local_req.done */
	struct outcome out;
};

/* the state of one request, from start to finish */
struct local_req {
	struct dir *dir;
	char *qid;
	struct qfile *qf;
	struct local_header hdr;
	struct local_done *done;	/* mailboxes handled so far */
	size_t ndone;
	size_t ncopies;		/* of them staged: local_copy_limit */
	struct local_rcpt_state *rcpt;	/* in request order */
	size_t nrcpt;
};

/* local_result_name - the protocol word for an outcome */
static const char *
local_result_name(enum outcome_status st)
{
	switch (st) {
	case OUTCOME_OK:
		return "delivered";
	case OUTCOME_BOUNCED:
		return "bounced";
	default:
		return "deferred";
	}
}

/* local_box_copy - write box's copy, once per request; returns the index
 * of its entry in rq->done (which may move) */
static size_t
local_box_copy(struct local_req *rq, const struct resolve_box *box, int fd,
    struct maildir_batch *mb)
{
	struct local_done *d;

	for (size_t i = 0; i < rq->ndone; i++)
		if (strcmp(rq->done[i].addr, box->addr) == 0)
			return i;
	rq->done = xreallocarray(rq->done, rq->ndone + 1, sizeof(*rq->done));
	d = &rq->done[rq->ndone];
	memset(d, 0, sizeof(*d));
	d->addr = xstrdup(box->addr);
	outcome_init(&d->out);
	if (local_header_delivered_to(&rq->hdr, box->addr))
		outcome_set(&d->out, OUTCOME_BOUNCED, "5.4.6",
		    "mail forwarding loop for <%s>", box->addr);
	else if (rq->ncopies >= (size_t)var_local_copy_limit)
		outcome_set(&d->out, OUTCOME_BOUNCED, "5.5.3",
		    "message reaches more than %lld mailboxes "
		    "(local_copy_limit)", var_local_copy_limit);
	else if ((d->staged = local_deliver_box(rq->qf, fd, box, mb,
	    &d->copy, &d->out)))
		rq->ncopies++;
	return rq->ndone++;
}

/* local_rcpt_stage - resolve one recipient and write its copies */
static void
local_rcpt_stage(struct local_req *rq, struct local_rcpt_state *st,
    const char *addr, char delim, int fd, struct maildir_batch *mb)
{
	if (rq->hdr.hops >= var_hopcount_limit) {
		outcome_set(&st->out, OUTCOME_BOUNCED, "5.4.6",
		    "mail forwarding loop (too many hops)");
		st->decided = true;
		return;
	}
	resolve_addr(rq->dir, addr, delim, (int)var_alias_depth_limit, &st->r);
	if (st->r.fail.status == OUTCOME_DEFERRED) {
		/* deliver nothing now: the retry delivers every part once */
		outcome_set(&st->out, OUTCOME_DEFERRED, st->r.fail.dsn,
		    "%s", buf_cstr(&st->r.fail.reason));
		st->decided = true;
		return;
	}
	if (st->r.too_large) {
		/* all or nothing: no partial delivery of a huge alias */
		outcome_set(&st->out, OUTCOME_BOUNCED, "5.5.3",
		    "alias expansion is too large (over %lld addresses: "
		    "alias_expansion_limit)", var_alias_expansion_limit);
		st->decided = true;
		return;
	}
	st->done = xcalloc(st->r.nbox ? st->r.nbox : 1, sizeof(*st->done));
	for (size_t i = 0; i < st->r.nbox; i++)
		st->done[i] = local_box_copy(rq, &st->r.box[i], fd, mb);
}

/* local_rcpt_outcome - the combined outcome of one recipient, from the
 * outcomes of its mailboxes after the commit */
static void
local_rcpt_outcome(struct local_req *rq, struct local_rcpt_state *st,
    const char *addr)
{
	const struct outcome *worst = NULL;
	const char *worst_box = NULL;
	struct resolved *r = &st->r;

	for (size_t i = 0; i < r->nbox; i++) {
		const struct outcome *o = &rq->done[st->done[i]].out;

		if (o->status != OUTCOME_OK && (worst == NULL ||
		    o->status > worst->status)) {
			worst = o;
			worst_box = r->box[i].addr;
		}
	}
	if (worst != NULL && (worst->status == OUTCOME_DEFERRED ||
	    r->fail.status == OUTCOME_OK)) {
		if (str_casecmp(worst_box, addr) == 0)
			outcome_set(&st->out, worst->status, worst->dsn,
			    "%s", buf_cstr(&worst->reason));
		else
			outcome_set(&st->out, worst->status, worst->dsn,
			    "<%s>: %s", worst_box, buf_cstr(&worst->reason));
	} else if (r->fail.status != OUTCOME_OK) {
		outcome_set(&st->out, r->fail.status, r->fail.dsn, "%s",
		    buf_cstr(&r->fail.reason));
	} else if (r->nbox == 0) {
		/* qmgr sends the copies to the other domains */
		outcome_set(&st->out, OUTCOME_OK, "2.0.0",
		    "forwarded to other domains");
	} else {
		outcome_set(&st->out, OUTCOME_OK, "2.0.0",
		    "delivered to maildir");
	}
}

/* local_req_free - release a request's state */
static void
local_req_free(struct local_req **rqp)
{
	struct local_req *rq = *rqp;

	for (size_t i = 0; i < rq->ndone; i++) {
		x_free(&rq->done[i].addr);
		outcome_free(&rq->done[i].out);
	}
	x_free(&rq->done);
	for (size_t i = 0; i < rq->nrcpt; i++) {
		resolve_free(&rq->rcpt[i].r);
		x_free(&rq->rcpt[i].done);
		outcome_free(&rq->rcpt[i].out);
	}
	x_free(&rq->rcpt);
	local_header_free(&rq->hdr);
	if (rq->qf != NULL)
		qfile_free(&rq->qf);
	x_free(&rq->qid);
	x_free(rqp);
}

/* local_request_start - check, resolve, write the copies into mb */
struct local_req *
local_request_start(struct dir *d, const struct ipc_msg *req, int qfd,
    struct maildir_batch *mb)
{
	struct local_req *rq;
	struct buf why = BUF_INIT, fail = BUF_INIT;
	char delim = var_recipient_delimiter[0];
	long long *idxs;
	size_t n;

	if (ipc_delivery_request(req, qfd, LOCAL_RCPT_MAX, &idxs, &n,
	    &why) < 0) {
		msg_warn("bad request from qmgr: %s: dropping the connection",
		    buf_cstr(&why));
		buf_free(&why);
		return NULL;
	}
	rq = xcalloc(1, sizeof(*rq));
	rq->dir = d;
	rq->qid = xstrdup(ipc_get_str(req, IPC_QUEUE_ID));
	rq->rcpt = xcalloc(n, sizeof(*rq->rcpt));
	local_header_init(&rq->hdr);

	/* a queue file qmgr just read should read fine here too */
	if (qfile_read(qfd, &rq->qf, &why) < 0) {
		buf_printf(&fail, "cannot read queue file: %s", buf_cstr(&why));
		rq->qf = NULL;
	} else if (local_header_read(&rq->hdr, qfd, rq->qf->body_off,
	    rq->qf->body_size, &why) < 0) {
		buf_printf(&fail, "%s", buf_cstr(&why));
	}
	if (fail.len > 0)
		msg_warn("%s: %s", rq->qid, buf_cstr(&fail));

	for (size_t i = 0; i < n; i++) {
		struct local_rcpt_state *st;
		long long idx = idxs[i];

		st = &rq->rcpt[rq->nrcpt++];
		st->idx = idx;
		outcome_init(&st->out);
		if (fail.len > 0) {
			outcome_set(&st->out, OUTCOME_DEFERRED, "4.3.0",
			    "%s", buf_cstr(&fail));
			st->decided = true;
		} else if ((size_t)idx >= rq->qf->nrcpt) {
			outcome_set(&st->out, OUTCOME_DEFERRED, "4.3.0",
			    "no recipient %lld in the queue file", idx);
			st->decided = true;
		} else {
			local_rcpt_stage(rq, st, rq->qf->rcpt[idx].addr, delim,
			    qfd, mb);
		}
	}
	x_free(&idxs);
	buf_free(&why);
	buf_free(&fail);
	return rq;
}

/* local_request_finish - results after the commit; the reply */
int
local_request_finish(struct local_req *rq, const struct maildir_batch *mb,
    int sock)
{
	struct ipc_msg reply;
	struct buf why = BUF_INIT;
	int ret = -1;

	for (size_t i = 0; i < rq->ndone; i++) {
		struct local_done *d = &rq->done[i];

		if (d->staged)
			local_deliver_result(mb, d->copy,
			    &(struct resolve_box){.addr = d->addr}, &d->out);
	}
	ipc_msg_init(&reply);
	ipc_put_str(&reply, IPC_STATUS, "ok");
	for (size_t i = 0; i < rq->nrcpt; i++) {
		struct local_rcpt_state *st = &rq->rcpt[i];

		if (!st->decided)
			local_rcpt_outcome(rq, st,
			    rq->qf->rcpt[st->idx].addr);
		msg_debug("%s: recipient %lld: %s %s (%s)", rq->qid, st->idx,
		    local_result_name(st->out.status), st->out.dsn,
		    buf_cstr(&st->out.reason));
		ipc_put_int(&reply, IPC_RCPT_INDEX, st->idx);
		ipc_put_str(&reply, IPC_RESULT,
		    local_result_name(st->out.status));
		ipc_put_str(&reply, IPC_DSN_CODE, st->out.dsn);
		ipc_put_str(&reply, IPC_REASON, buf_cstr(&st->out.reason));
		/* qmgr sends the copies to the targets elsewhere */
		if (st->r.nremote > 0 && !st->r.too_large &&
		    st->out.status != OUTCOME_DEFERRED)
			ipc_put_str(&reply, IPC_FORWARD, "1");
	}
	if (ipc_send(sock, &reply, -1, (int)var_delivery_timeout * 1000,
	    &why) < 0)
		msg_warn("%s: reply to qmgr: %s", rq->qid, buf_cstr(&why));
	else
		ret = 0;
	ipc_msg_free(&reply);
	buf_free(&why);
	local_req_free(&rq);
	return ret;
}

/* local_request - one request alone */
int
local_request(struct dir *d, int sock, const struct ipc_msg *req, int qfd)
{
	struct maildir_batch *mb = maildir_batch_new();
	struct local_req *rq = local_request_start(d, req, qfd, mb);
	int ret = -1;

	if (rq != NULL) {
		maildir_batch_commit(mb);
		ret = local_request_finish(rq, mb, sock);
	}
	maildir_batch_free(&mb);
	return ret;
}
