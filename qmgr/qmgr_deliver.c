/*
 * qmgr_deliver - the pool of connections to delivery agents and the
 * delivery protocol (DESIGN.md §5, herald brief protocol 3).
 *
 * qmgr connects to <spool>/private/local (master's listener, shared by
 * every local process; each process serves one connection to its end) and
 * keeps up to var_local_processes connections open. Requests are
 * pipelined: up to var_local_batch_size of them wait on one connection,
 * and the agent commits all that it finds waiting as one batch, sharing
 * the syncs (see delivery/local.c). Jobs are packed onto the first agent
 * with room, and another agent is used only when that one is full:
 * measured at 10 sessions, batches of 7-9 instead of 1.5-2 cut local's
 * CPU per message by a third at the same throughput. Replies come in
 * request order:
 *
 *   request: {request=deliver, queue_id=QID, rcpt_index=I, rcpt_index=J..}
 *            with active/QID (O_RDONLY) attached by SCM_RIGHTS to the
 *            first byte of the frame
 *   reply:   {status=ok[, conn_failed=1]} then, per requested recipient
 *            in request order, {rcpt_index=I,
 *             result=delivered|deferred|bounced, dsn=X.Y.Z,
 *             reason=TEXT[, relayed=1][, forward=1]}
 *            (relayed=1, remote only: delivered to a server without
 *            DSN, which qmgr reports as Action: relayed for
 *            NOTIFY=SUCCESS; forward=1, local only: the recipient is
 *            an alias with targets in other domains too, which qmgr
 *            forwards a copy to, qmgr_forward.c; conn_failed=1, remote
 *            only: no server took the transaction, every recipient
 *            deferred)
 *
 * The reply is checked strictly: exactly the requested indexes in order,
 * each with one result and a dsn of the matching class. Anything else, a
 * broken connection, or no reply within var_delivery_timeout (counted
 * from the previous reply) defers every recipient of every request on the
 * connection ("local delivery agent died or timed out", or "remote ...")
 * and closes it; such deferrals retry within seconds (master restarts the
 * agent). A crash can duplicate a delivery, never lose one.
 *
 * Remote delivery (<spool>/private/remote, delivery/remote.c) speaks the
 * same protocol; a request holds recipients of one domain, and a remote
 * agent gets one request at a time (it may spend minutes on it), up to
 * var_remote_processes connections. Jobs wait in a queue per transport,
 * each served in order while its agents take more, so a slow remote
 * domain never holds up local delivery. At most the domain's
 * concurrency window (qmgr_dest.c: from initial_destination_concurrency,
 * up with success, down with connection failures, never past
 * var_remote_destination_concurrency_limit) requests for one domain are
 * out at once; the jobs of other domains pass those that wait. Each
 * remote reply is feedback for its domain; the jobs of a dead domain
 * are deferred without being sent. A remote job goes
 * preferably to the idle agent that served its domain last, else to one
 * that served it among its recent requests, which may hold a connection
 * to it open (delivery/remote_cache.c); such a job may pass others when
 * that agent is the one free. qmgr adds the
 * domain's transport (nexthop=) and TLS policy (tls_policy=) from the
 * directory to a remote request, so that the agent, which talks to the
 * internet, needs no access to the directory; a failed lookup goes as
 * route_error=TEXT and the agent defers every recipient with it.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/evloop.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/sock.h"
#include "base/str.h"
#include "mail/addr.h"
#include "mail/dir.h"
#include "mail/ipc.h"
#include "mail/params.h"
#include "mail/qfile.h"
#include "mail/spool.h"
#include "qmgr.h"

#define QMGR_AGENT_INPUT (IPC_MAX_FRAME + 64)	/* one reply, partly read */

/* per transport: service socket, reason when its agent fails */
static const char *const qmgr_tr_service[QMGR_NTR] = {"local", "remote"};
static const char *const qmgr_tr_died[QMGR_NTR] = {
	"local delivery agent died or timed out",
	"remote delivery agent died or timed out",
};

/* qmgr_tr_batch - requests one agent of tr may have outstanding */
static size_t
qmgr_tr_batch(enum qmgr_transport tr)
{
	return tr == QMGR_TR_REMOTE ? 1 : (size_t)var_local_batch_size;
}

/* qmgr_tr_processes - connections to the agents of tr */
static int
qmgr_tr_processes(enum qmgr_transport tr)
{
	return (int)(tr == QMGR_TR_REMOTE ? var_remote_processes :
	    var_local_processes);
}

static void qmgr_deliver_event(struct evloop *, int, unsigned, void *);
static void qmgr_deliver_unpark(struct qmgr *, const char *, bool);

/* qmgr_jobs_push - append job to the list head..tail */
static void
qmgr_jobs_push(struct qmgr_job **head, struct qmgr_job **tail,
    struct qmgr_job *job)
{
	job->next = NULL;
	if (*tail != NULL)
		(*tail)->next = job;
	else
		*head = job;
	*tail = job;
}

/* qmgr_jobs_pop - take the first job of head..tail (NULL: empty) */
static struct qmgr_job *
qmgr_jobs_pop(struct qmgr_job **head, struct qmgr_job **tail)
{
	struct qmgr_job *job = *head;

	if (job == NULL)
		return NULL;
	*head = job->next;
	if (*head == NULL)
		*tail = NULL;
	job->next = NULL;
	return job;
}

/* qmgr_deliver_job_domain - the recipient domain of a job */
static const char *
qmgr_deliver_job_domain(const struct qmgr_job *job)
{
	if (job->nidx == 0 || job->msg->qf == NULL ||
	    job->idx[0] >= job->msg->qf->nrcpt)
		return "";
	return addr_domain(job->msg->qf->rcpt[job->idx[0]].addr);
}

/* qmgr_jobs_insert - put job into head..tail at its place in submission
 * order (a parked job going back: its place is near the head) */
static void
qmgr_jobs_insert(struct qmgr_job **head, struct qmgr_job **tail,
    struct qmgr_job *job)
{
	struct qmgr_job **pp = head;

	while (*pp != NULL && (*pp)->seq < job->seq)
		pp = &(*pp)->next;
	job->next = *pp;
	*pp = job;
	if (job->next == NULL)
		*tail = job;
}

/* qmgr_jobs_unlink - take job, which follows prev (NULL: the first), out
 * of head..tail */
static void
qmgr_jobs_unlink(struct qmgr_job **head, struct qmgr_job **tail,
    struct qmgr_job *prev, struct qmgr_job *job)
{
	if (prev == NULL)
		*head = job->next;
	else
		prev->next = job->next;
	if (*tail == job)
		*tail = prev;
	job->next = NULL;
}

/* qmgr_deliver_submit - queue a request for msg's recipients idx[] */
void
qmgr_deliver_submit(struct qmgr *q, struct qmgr_msg *msg, const size_t *idx,
    size_t n, enum qmgr_transport tr)
{
	struct qmgr_job *job = xcalloc(1, sizeof(*job));

	job->msg = msg;
	job->tr = tr;
	job->idx = xcalloc(n ? n : 1, sizeof(*job->idx));
	memcpy(job->idx, idx, n * sizeof(*idx));
	job->nidx = n;
	job->seq = ++q->job_seq;
	qmgr_jobs_push(&q->job_head[tr], &q->job_tail[tr], job);
	msg->jobs++;
	/* a job of a dead domain: the next dispatch defers it */
	if (tr == QMGR_TR_REMOTE && q->ndead > 0 && qmgr_dest_dead(q,
	    qmgr_deliver_job_domain(job), time(NULL)) != NULL)
		q->suspend_dirty = true;
}

/* qmgr_deliver_job_free - free a finished or cancelled job */
static void
qmgr_deliver_job_free(struct qmgr_job **job)
{
	x_free(&(*job)->idx);
	x_free(job);
}

/* qmgr_deliver_job_fail - defer every recipient of a job (infra) */
static void
qmgr_deliver_job_fail(struct qmgr *q, struct qmgr_job *job,
    const char *reason)
{
	struct qmgr_msg *msg = job->msg;

	for (size_t i = 0; i < job->nidx; i++)
		qmgr_message_result(msg, job->idx[i], QFILE_QUEUED, true,
		    qmgr_tr_service[job->tr], "4.3.0", reason);
	qmgr_deliver_job_free(&job);
	qmgr_message_job_done(q, msg);
}

/* qmgr_deliver_request - the request frame body for a job */
void
qmgr_deliver_request(struct ipc_msg *m, const char *qid, const size_t *idx,
    size_t n)
{
	ipc_put_str(m, IPC_REQUEST, "deliver");
	ipc_put_str(m, IPC_QUEUE_ID, qid);
	for (size_t i = 0; i < n; i++)
		ipc_put_int(m, IPC_RCPT_INDEX, (long long)idx[i]);
}

/* qmgr_deliver_dsn_ok - "C.S.D" with the class a result needs */
static bool
qmgr_deliver_dsn_ok(const char *dsn, char class)
{
	const char *p = dsn;
	int digits;

	if (*p++ != class || *p++ != '.')
		return false;
	for (digits = 0; *p >= '0' && *p <= '9'; p++)
		digits++;
	if (digits < 1 || digits > 3 || *p++ != '.')
		return false;
	for (digits = 0; *p >= '0' && *p <= '9'; p++)
		digits++;
	return digits >= 1 && digits <= 3 && *p == '\0';
}

/* qmgr_deliver_parse_relay - check a reply against the request strictly;
 * the results are recorded with relay (the transport's name);
 * conn_failed=1 is allowed where conn_failed_r is not NULL (remote) */
static int
qmgr_deliver_parse_relay(const struct ipc_msg *m, struct qmgr_msg *msg,
    const size_t *idx, size_t n, const char *relay, bool *conn_failed_r,
    struct buf *why)
{
	bool conn_failed = false;
	struct got {
		char status;
		const char *dsn;
		const char *reason;
		bool relayed;
		bool forward;
	} *got;
	const char *name, *value;
	size_t pos = 0, k = 0;
	int ret = -1;

	got = xcalloc(n ? n : 1, sizeof(*got));
	if (!ipc_next(m, &pos, &name, &value) ||
	    strcmp(name, IPC_STATUS) != 0) {
		buf_puts(why, "reply does not start with a status");
		goto out;
	}
	if (strcmp(value, "ok") != 0) {
		const char *r = ipc_get_str(m, IPC_REASON);

		buf_printf(why, "agent refused the request: status "
		    "%.40s%s%.200s", value, r ? ": " : "", r ? r : "");
		goto out;
	}
	while (ipc_next(m, &pos, &name, &value)) {
		if (strcmp(name, IPC_CONN_FAILED) == 0 && k == 0 &&
		    conn_failed_r != NULL) {
			if (conn_failed || strcmp(value, "1") != 0) {
				buf_puts(why, "bad conn_failed");
				goto out;
			}
			conn_failed = true;
			continue;
		}
		if (strcmp(name, IPC_RCPT_INDEX) == 0) {
			long long v;

			if (k > 0 && (got[k - 1].status == 0 ||
			    got[k - 1].dsn == NULL)) {
				buf_printf(why, "recipient %zu: no result or "
				    "dsn", idx[k - 1]);
				goto out;
			}
			if (k >= n) {
				buf_puts(why, "more recipients than requested");
				goto out;
			}
			if (str_to_ll(value, 0, (long long)msg->qf->nrcpt - 1,
			    &v) < 0 || (size_t)v != idx[k]) {
				buf_printf(why, "recipient %zu: got rcpt_index "
				    "\"%.20s\"", idx[k], value);
				goto out;
			}
			k++;
			continue;
		}
		if (k == 0) {
			buf_printf(why, "attribute \"%s\" before any "
			    "rcpt_index", name);
			goto out;
		}
		if (strcmp(name, IPC_RESULT) == 0) {
			char st;

			if (strcmp(value, "delivered") == 0)
				st = QFILE_DELIVERED;
			else if (strcmp(value, "deferred") == 0)
				st = QFILE_QUEUED;
			else if (strcmp(value, "bounced") == 0)
				st = QFILE_BOUNCED;
			else {
				buf_printf(why, "recipient %zu: bad result "
				    "\"%.20s\"", idx[k - 1], value);
				goto out;
			}
			if (got[k - 1].status != 0) {
				buf_printf(why, "recipient %zu: two results",
				    idx[k - 1]);
				goto out;
			}
			got[k - 1].status = st;
		} else if (strcmp(name, IPC_DSN_CODE) == 0) {
			if (got[k - 1].dsn != NULL) {
				buf_printf(why, "recipient %zu: two dsn codes",
				    idx[k - 1]);
				goto out;
			}
			got[k - 1].dsn = value;
		} else if (strcmp(name, IPC_RELAYED) == 0) {
			if (got[k - 1].relayed || strcmp(value, "1") != 0) {
				buf_printf(why, "recipient %zu: bad relayed",
				    idx[k - 1]);
				goto out;
			}
			got[k - 1].relayed = true;
		} else if (strcmp(name, IPC_FORWARD) == 0) {
			if (got[k - 1].forward || strcmp(value, "1") != 0) {
				buf_printf(why, "recipient %zu: bad forward",
				    idx[k - 1]);
				goto out;
			}
			got[k - 1].forward = true;
		} else if (strcmp(name, IPC_REASON) == 0) {
			if (got[k - 1].reason != NULL) {
				buf_printf(why, "recipient %zu: two reasons",
				    idx[k - 1]);
				goto out;
			}
			got[k - 1].reason = value;
		} else {
			buf_printf(why, "unexpected attribute \"%s\"", name);
			goto out;
		}
	}
	if (k != n) {
		buf_printf(why, "%zu of %zu recipients answered", k, n);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		char class;

		if (got[i].status == 0 || got[i].dsn == NULL) {
			buf_printf(why, "recipient %zu: no result or dsn",
			    idx[i]);
			goto out;
		}
		class = got[i].status == QFILE_DELIVERED ? '2' :
		    got[i].status == QFILE_QUEUED ? '4' : '5';
		if (!qmgr_deliver_dsn_ok(got[i].dsn, class)) {
			buf_printf(why, "recipient %zu: dsn \"%.20s\" does not "
			    "fit the result", idx[i], got[i].dsn);
			goto out;
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (got[i].relayed && got[i].status != QFILE_DELIVERED) {
			buf_printf(why, "recipient %zu: relayed but not "
			    "delivered", idx[i]);
			goto out;
		}
		if (got[i].forward && got[i].status == QFILE_QUEUED) {
			buf_printf(why, "recipient %zu: forward but deferred",
			    idx[i]);
			goto out;
		}
		if (conn_failed && got[i].status != QFILE_QUEUED) {
			buf_printf(why, "recipient %zu: conn_failed but not "
			    "deferred", idx[i]);
			goto out;
		}
	}
	for (size_t i = 0; i < n; i++) {
		qmgr_message_result(msg, idx[i], got[i].status, false,
		    relay, got[i].dsn,
		    got[i].reason ? got[i].reason : "");
		msg->res[idx[i]].relayed = got[i].relayed;
		msg->res[idx[i]].forward = got[i].forward;
	}
	if (conn_failed_r != NULL)
		*conn_failed_r = conn_failed;
	ret = 0;
out:
	x_free(&got);
	return ret;
}

/* qmgr_deliver_parse_reply - a local agent's reply, checked strictly */
int
qmgr_deliver_parse_reply(const struct ipc_msg *m, struct qmgr_msg *msg,
    const size_t *idx, size_t n, struct buf *why)
{
	return qmgr_deliver_parse_relay(m, msg, idx, n, "local", NULL, why);
}

/* qmgr_deliver_parse_remote - a remote agent's reply, checked strictly;
 * *conn_failed_r: it said conn_failed=1 */
int
qmgr_deliver_parse_remote(const struct ipc_msg *m, struct qmgr_msg *msg,
    const size_t *idx, size_t n, bool *conn_failed_r, struct buf *why)
{
	return qmgr_deliver_parse_relay(m, msg, idx, n, "remote",
	    conn_failed_r, why);
}

/* qmgr_deliver_agent_close - close and free one connection; its requests
 * (if any) are deferred with reason */
static void
qmgr_deliver_agent_close(struct qmgr *q, struct qmgr_agent *a,
    const char *reason)
{
	struct qmgr_agent **pp;
	struct qmgr_job *job = a->jobs, *next;
	bool remote_busy = a->tr == QMGR_TR_REMOTE && a->jobs != NULL;

	for (pp = &q->agents; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == a) {
			*pp = a->next;
			break;
		}
	}
	q->nagents--;
	q->ntr_agents[a->tr]--;
	if (q->loop != NULL) {
		evloop_cancel_timer(q->loop, &a->timer);
		evloop_del_fd(q->loop, a->fd);
	}
	if (close(a->fd) < 0)
		msg_warn("close %s agent connection: %m",
		    qmgr_tr_service[a->tr]);
	buf_free(&a->out);
	buf_free(&a->in);
	for (; job != NULL; job = next) {
		next = job->next;
		msg_warn("%s: %s (%s)", job->msg->qid, qmgr_tr_died[a->tr],
		    reason);
		qmgr_deliver_job_fail(q, job, qmgr_tr_died[a->tr]);
	}
	/* its request's slot is free */
	if (remote_busy)
		qmgr_deliver_unpark(q, a->domain, false);
	x_free(&a);
}

/* qmgr_deliver_timeout - no reply within var_delivery_timeout */
static long long
qmgr_deliver_timeout(struct evloop *loop, void *ctx)
{
	struct qmgr_agent *a = ctx;

	a->timer = NULL;	/* the loop frees it when we return -1 */
	qmgr_deliver_agent_close(&qmgr, a, "no reply within "
	    "delivery_timeout");
	qmgr_deliver_dispatch(&qmgr);
	return -1;
}

/* qmgr_deliver_write - send what is left of the request; -1 if broken */
static int
qmgr_deliver_write(struct qmgr *q, struct qmgr_agent *a, struct buf *why)
{
	while (a->out.len > 0) {
		ssize_t n;

		if (!a->fd_passed) {
			n = sock_send_fd(a->fd, a->out.data, a->out.len,
			    a->last->msg->fd);
			if (n > 0)
				a->fd_passed = true;
		} else {
			do {
				n = send(a->fd, a->out.data, a->out.len,
				    MSG_DONTWAIT | MSG_NOSIGNAL);
			} while (n < 0 && errno == EINTR);
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (q->loop != NULL &&
			    evloop_mod_fd(q->loop, a->fd,
			    EV_READ | EV_WRITE) < 0) {
				buf_printf(why, "epoll: %m");
				return -1;
			}
			return 0;
		}
		if (n <= 0) {
			buf_printf(why, "send: %s", n < 0 ? strerror(errno) :
			    "wrote nothing");
			return -1;
		}
		buf_consume(&a->out, (size_t)n);
	}
	if (q->loop != NULL && evloop_mod_fd(q->loop, a->fd, EV_READ) < 0) {
		buf_printf(why, "epoll: %m");
		return -1;
	}
	return 0;
}

/* qmgr_deliver_connect - a new connection to the agents of tr */
static struct qmgr_agent *
qmgr_deliver_connect(struct qmgr *q, enum qmgr_transport tr, struct buf *why)
{
	struct buf path = BUF_INIT;
	struct qmgr_agent *a;
	int fd;

	spool_socket_path(&path, q->spool, qmgr_tr_service[tr]);
	fd = sock_connect_unix(buf_cstr(&path), true, why);
	buf_free(&path);
	if (fd < 0)
		return NULL;
	if (q->loop != NULL && evloop_add_fd(q->loop, fd, EV_READ,
	    qmgr_deliver_event, q) < 0) {
		buf_printf(why, "epoll: %m");
		(void)close(fd);
		return NULL;
	}
	a = xcalloc(1, sizeof(*a));
	a->fd = fd;
	a->tr = tr;
	q->ntr_agents[tr]++;
	buf_init(&a->out);
	buf_init(&a->in);
	a->next = q->agents;
	q->agents = a;
	q->nagents++;
	return a;
}

/* qmgr_deliver_nexthop - a remote job's transport and TLS policy from
 * the directory into req (the remote agent has no access to it); a
 * failed lookup goes as route_error, and the agent defers with it */
static void
qmgr_deliver_nexthop(struct qmgr *q, const char *domain, struct ipc_msg *req)
{
	struct buf val = BUF_INIT, why = BUF_INIT;
	int r;

	if (q->dir == NULL && dir_open(var_data_directory, DIR_READ, &q->dir,
	    &why) < 0) {
		q->dir = NULL;
		r = -1;
	} else if ((r = dir_map_get(q->dir, DIR_MAP_TRANSPORT, domain, &val,
	    &why)) == 1) {
		ipc_put_str(req, IPC_NEXTHOP, buf_cstr(&val));
	}
	if (r >= 0 && (r = dir_map_get(q->dir, DIR_MAP_TLS_POLICY, domain,
	    &val, &why)) == 1)
		ipc_put_str(req, IPC_TLS_POLICY, buf_cstr(&val));
	if (r < 0) {
		struct buf text = BUF_INIT;

		buf_printf(&text, "cannot look up the transport and TLS "
		    "policy of %s: %s", domain, buf_cstr(&why));
		ipc_put_str(req, IPC_ROUTE_ERROR, buf_cstr(&text));
		msg_warn("%s", buf_cstr(&text));
		buf_free(&text);
	}
	buf_free(&val);
	buf_free(&why);
}

/* qmgr_deliver_remember - domain goes first in a's recent list (moved up
 * when it is there, else the oldest drops out) */
static void
qmgr_deliver_remember(struct qmgr_agent *a, const char *domain)
{
	size_t i;

	for (i = 0; i < QMGR_AGENT_RECENT - 1; i++)
		if (str_casecmp(a->recent[i], domain) == 0)
			break;
	memmove(a->recent[1], a->recent[0], i * sizeof(a->recent[0]));
	str_lcpy(a->recent[0], domain, sizeof(a->recent[0]));
}

/* qmgr_deliver_served - a served domain recently (it may hold a cached
 * connection to it) */
static bool
qmgr_deliver_served(const struct qmgr_agent *a, const char *domain)
{
	for (size_t i = 0; i < QMGR_AGENT_RECENT; i++)
		if (str_casecmp(a->recent[i], domain) == 0)
			return true;
	return false;
}

/* qmgr_deliver_start - send job on a connection whose last request went
 * out whole */
static void
qmgr_deliver_start(struct qmgr *q, struct qmgr_agent *a, struct qmgr_job *job)
{
	struct ipc_msg req;
	struct buf why = BUF_INIT;

	ipc_msg_init(&req);
	qmgr_deliver_request(&req, job->msg->qid, job->idx, job->nidx);
	if (a->tr == QMGR_TR_REMOTE)
		qmgr_deliver_nexthop(q, qmgr_deliver_job_domain(job), &req);
	buf_reset(&a->out);
	ipc_frame_encode(&req, &a->out);
	ipc_msg_free(&req);
	if (a->tr == QMGR_TR_REMOTE) {
		str_lcpy(a->domain, qmgr_deliver_job_domain(job),
		    sizeof(a->domain));
		qmgr_deliver_remember(a, a->domain);
	}
	qmgr_jobs_push(&a->jobs, &a->last, job);
	a->fd_passed = false;
	if (a->njobs++ == 0 && q->loop != NULL)
		a->timer = evloop_add_timer(q->loop,
		    var_delivery_timeout * 1000, qmgr_deliver_timeout, a);
	msg_debug("%s: delivery request for %zu recipient(s)", job->msg->qid,
	    job->nidx);
	if (qmgr_deliver_write(q, a, &why) < 0)
		qmgr_deliver_agent_close(q, a, buf_cstr(&why));
	buf_free(&why);
}

/*
 * qmgr_deliver_pick - the connection for job. Jobs are packed: the first
 * open agent with fewer than local_batch_size requests outstanding (and
 * nothing unsent) takes it, because an agent commits every request
 * waiting on it with one set of syncs; spreading a light load over idle
 * agents would make batches of one. A remote job goes preferably to an
 * idle agent whose latest request was for the same domain, else to one
 * that served the domain among its last QMGR_AGENT_RECENT requests: that
 * agent may hold the domain's connection open (delivery/remote_cache.c
 * keeps one per domain, several domains per process). Without the
 * second choice, mail to 20 domains over 10 agents opened a connection
 * for every other message (bench/relay.py, relay20). A new agent is
 * opened (NULL with *connect_r) only when every open one is full; NULL
 * when none can be.
 */
static struct qmgr_agent *
qmgr_deliver_pick(struct qmgr *q, enum qmgr_transport tr,
    const struct qmgr_job *job, bool *connect_r)
{
	struct qmgr_agent *a, *first = NULL, *served = NULL;
	const char *domain = tr == QMGR_TR_REMOTE ?
	    qmgr_deliver_job_domain(job) : "";

	*connect_r = false;
	for (a = q->agents; a != NULL; a = a->next) {
		if (a->tr != tr || a->out.len != 0 ||
		    a->njobs >= qmgr_tr_batch(tr))
			continue;
		if (*domain == '\0' || str_casecmp(a->domain, domain) == 0)
			return a;
		if (served == NULL && qmgr_deliver_served(a, domain))
			served = a;
		if (first == NULL)
			first = a;
	}
	if (served != NULL)
		return served;
	if (first != NULL)
		return first;
	*connect_r = q->ntr_agents[tr] < qmgr_tr_processes(tr);
	return NULL;
}

/* qmgr_deliver_busy - remote requests for domain out at agents */
long long
qmgr_deliver_busy(const struct qmgr *q, const char *domain)
{
	long long n = 0;

	for (const struct qmgr_agent *a = q->agents; a != NULL; a = a->next)
		if (a->tr == QMGR_TR_REMOTE && a->njobs > 0 &&
		    str_casecmp(a->domain, domain) == 0)
			n += (long long)a->njobs;
	return n;
}

/* qmgr_deliver_idle_served - an idle remote agent served domain
 * recently */
static bool
qmgr_deliver_idle_served(const struct qmgr *q, const char *domain)
{
	for (const struct qmgr_agent *a = q->agents; a != NULL; a = a->next)
		if (a->tr == QMGR_TR_REMOTE && a->njobs == 0 &&
		    a->out.len == 0 && qmgr_deliver_served(a, domain))
			return true;
	return false;
}

/* jobs qmgr_deliver_next looks at for one an idle agent has a connection
 * for: a bound on the work per dispatch and on how far a job is passed */
#define QMGR_AFFINITY_SCAN 32

/*
 * qmgr_deliver_park - job's domain has its window's worth of requests
 * out: keep job with the domain (qmgr_dest's parked list) until one of
 * them returns, so that dispatches pass the domain's waiting jobs without
 * looking at each again; a slow domain with 10,000 queued messages would
 * otherwise cost every dispatch a walk over all of them. false (job
 * stays queued) when there is no room for the domain's state.
 */
static bool
qmgr_deliver_park(struct qmgr *q, struct qmgr_job *prev,
    struct qmgr_job *job, const char *domain)
{
	struct qmgr_dest *d = qmgr_dest_get(q, domain, time(NULL));

	if (d == NULL)
		return false;
	qmgr_jobs_unlink(&q->job_head[QMGR_TR_REMOTE],
	    &q->job_tail[QMGR_TR_REMOTE], prev, job);
	qmgr_jobs_push(&d->park_head, &d->park_tail, job);
	d->nparked++;
	q->nparked++;
	return true;
}

/* qmgr_deliver_unpark - domain may have room again: as many of its
 * parked jobs as may go now (all: every one) back into the queue, each
 * at its place in submission order, so the order of dispatch is the one
 * a walk over every waiting job would give */
static void
qmgr_deliver_unpark(struct qmgr *q, const char *domain, bool all)
{
	struct qmgr_dest *d = qmgr_dest_find(q, domain);
	long long room;

	if (d == NULL || d->park_head == NULL)
		return;
	room = all ? (long long)d->nparked : qmgr_dest_limit(q, domain) -
	    qmgr_deliver_busy(q, domain);
	while (room-- > 0 && d->park_head != NULL) {
		struct qmgr_job *job = qmgr_jobs_pop(&d->park_head,
		    &d->park_tail);

		d->nparked--;
		q->nparked--;
		qmgr_jobs_insert(&q->job_head[QMGR_TR_REMOTE],
		    &q->job_tail[QMGR_TR_REMOTE], job);
	}
}

/* jobs qmgr_deliver_next looks at for one an idle agent has a connection
 * for: a bound on the work per dispatch and on how far a job is passed */
#define QMGR_AFFINITY_SCAN 32

/*
 * qmgr_deliver_next - the first job of tr's queue that may go now: a
 * remote job waits while its domain has its concurrency window's worth
 * of requests out (qmgr_dest_limit), parked with its domain
 * (qmgr_deliver_park), and the jobs of other domains behind it go first.
 * Among the first QMGR_AFFINITY_SCAN remote jobs that may go, one whose
 * domain an idle agent served recently goes first, over that agent's
 * cached connection: when every agent is busy, the one that frees up
 * would otherwise take the head job, whatever its domain, and open a new
 * connection (bench/relay.py, relay20). The work is bounded by
 * QMGR_AFFINITY_SCAN and the jobs parked now, each once, whatever the
 * queue's length. NULL: none.
 */
static struct qmgr_job *
qmgr_deliver_next(struct qmgr *q, enum qmgr_transport tr)
{
	struct qmgr_job *job, *next, *prev = NULL, *first = NULL;
	const struct qmgr_agent *a;
	int n = 0;

	if (tr != QMGR_TR_REMOTE)
		return q->job_head[tr];
	/* no idle agent: no job can pass for its connection (the usual case
	 * under load, when every agent is busy); the first that may go */
	for (a = q->agents; a != NULL; a = a->next)
		if (a->tr == QMGR_TR_REMOTE && a->njobs == 0 &&
		    a->out.len == 0)
			break;
	if (a == NULL)
		n = QMGR_AFFINITY_SCAN - 1;
	for (job = q->job_head[tr]; job != NULL; job = next) {
		const char *domain = qmgr_deliver_job_domain(job);

		next = job->next;
		if (qmgr_deliver_busy(q, domain) >= qmgr_dest_limit(q,
		    domain)) {
			if (!qmgr_deliver_park(q, prev, job, domain))
				prev = job;
			continue;
		}
		if (first == NULL)
			first = job;
		if (qmgr_deliver_idle_served(q, domain))
			return job;
		if (++n >= QMGR_AFFINITY_SCAN)
			break;
		prev = job;
	}
	return first;
}

/* qmgr_jobs_remove - take job out of the list head..tail */
static void
qmgr_jobs_remove(struct qmgr_job **head, struct qmgr_job **tail,
    struct qmgr_job *job)
{
	struct qmgr_job **pp, *prev = NULL;

	for (pp = head; *pp != NULL; prev = *pp, pp = &(*pp)->next) {
		if (*pp == job) {
			*pp = job->next;
			if (*tail == job)
				*tail = prev;
			job->next = NULL;
			return;
		}
	}
	msg_panic("qmgr_jobs_remove: job not queued");
}

/* qmgr_deliver_suspended - defer the queued remote jobs of dead
 * domains, without a connection (Postfix: "delivery temporarily
 * suspended") */
static void
qmgr_deliver_suspended(struct qmgr *q)
{
	struct qmgr_job *job, *next, *prev = NULL;
	time_t now;

	/*
	 * Only when a job of a dead domain may be queued: one was submitted,
	 * or a domain died (its parked jobs went back into the queue). Once
	 * they are deferred no queued job is of a dead domain, so other
	 * dispatches do not walk the queue.
	 */
	if (q->ndead == 0 || !q->suspend_dirty)
		return;
	q->suspend_dirty = false;
	now = time(NULL);
	for (job = q->job_head[QMGR_TR_REMOTE]; job != NULL; job = next) {
		const struct qmgr_dest *d;
		struct qmgr_msg *msg = job->msg;
		struct buf r = BUF_INIT;

		next = job->next;
		d = qmgr_dest_dead(q, qmgr_deliver_job_domain(job), now);
		if (d == NULL) {
			prev = job;
			continue;
		}
		qmgr_jobs_unlink(&q->job_head[QMGR_TR_REMOTE],
		    &q->job_tail[QMGR_TR_REMOTE], prev, job);
		buf_printf(&r, "delivery temporarily suspended: %s",
		    d->reason);
		for (size_t i = 0; i < job->nidx; i++)
			qmgr_message_result(msg, job->idx[i], QFILE_QUEUED,
			    false, "none", d->dsn, buf_cstr(&r));
		buf_free(&r);
		qmgr_deliver_job_free(&job);
		/* finishing msg frees no other queued job: it had none */
		qmgr_message_job_done(q, msg);
	}
}

/* qmgr_deliver_dispatch - hand queued jobs to agents: each transport's
 * queue in order while its agents take more, so a slow remote domain
 * never holds up local delivery (nor, at its concurrency limit, the
 * other remote domains) */
void
qmgr_deliver_dispatch(struct qmgr *q)
{
	struct buf why = BUF_INIT;

	qmgr_deliver_suspended(q);

	for (enum qmgr_transport tr = 0; tr < QMGR_NTR; tr++) {
		struct qmgr_job *job;

		while ((job = qmgr_deliver_next(q, tr)) != NULL) {
			struct qmgr_agent *a;
			bool connect;

			a = qmgr_deliver_pick(q, tr, job, &connect);
			if (a == NULL && !connect)
				break;
			qmgr_jobs_remove(&q->job_head[tr], &q->job_tail[tr],
			    job);
			if (a == NULL && (a = qmgr_deliver_connect(q, tr,
			    &why)) == NULL) {
				msg_warn("%s: %s delivery agent unavailable: "
				    "%s", job->msg->qid, qmgr_tr_service[tr],
				    buf_cstr(&why));
				buf_reset(&why);
				qmgr_deliver_job_fail(q, job,
				    qmgr_tr_died[tr]);
			} else {
				qmgr_deliver_start(q, a, job);
			}
		}
	}
	buf_free(&why);
}

/* qmgr_deliver_reply - a complete reply frame arrived on a: it answers
 * the oldest request; false if the connection was closed */
static bool
qmgr_deliver_reply(struct qmgr *q, struct qmgr_agent *a,
    const struct ipc_msg *m)
{
	struct qmgr_job *job = a->jobs;
	struct qmgr_msg *msg = job->msg;
	struct buf why = BUF_INIT;
	char domain_copy[256] = "";
	bool conn_failed = false, died = false;

	if (qmgr_deliver_parse_relay(m, msg, job->idx, job->nidx,
	    qmgr_tr_service[a->tr], a->tr == QMGR_TR_REMOTE ? &conn_failed :
	    NULL, &why) < 0) {
		msg_warn("%s: bad reply from %s delivery agent: %s",
		    msg->qid, qmgr_tr_service[a->tr], buf_cstr(&why));
		qmgr_deliver_agent_close(q, a, "protocol error");
		buf_free(&why);
		return false;
	}
	buf_free(&why);
	if (a->tr == QMGR_TR_REMOTE && job->nidx > 0) {
		/* feedback for the domain, while this request counts as out */
		const char *domain = qmgr_deliver_job_domain(job);
		const struct qmgr_result *r = &msg->res[job->idx[0]];

		str_lcpy(domain_copy, domain, sizeof(domain_copy));
		if (conn_failed)
			died = qmgr_dest_failure(q, domain, r->dsn,
			    r->reason ? r->reason : "", time(NULL));
		else
			qmgr_dest_success(q, domain,
			    qmgr_deliver_busy(q, domain), time(NULL));
	}
	(void)qmgr_jobs_pop(&a->jobs, &a->last);
	a->njobs--;
	if (domain_copy[0] != '\0') {
		/* a slot is free (a wider window, or a dead domain: its
		 * parked jobs go to qmgr_deliver_suspended) */
		qmgr_deliver_unpark(q, domain_copy, died);
		if (died)
			q->suspend_dirty = true;
	}
	if (q->loop != NULL) {
		evloop_cancel_timer(q->loop, &a->timer);
		if (a->njobs > 0)
			a->timer = evloop_add_timer(q->loop,
			    var_delivery_timeout * 1000, qmgr_deliver_timeout,
			    a);
	}
	qmgr_deliver_job_free(&job);
	qmgr_message_job_done(q, msg);	/* msg may be gone after this */
	if (q->stopping && a->njobs == 0) {
		qmgr_deliver_agent_close(q, a, "stopping");
		return false;
	}
	return true;
}

/* qmgr_deliver_event - a connection is readable or writable */
static void
qmgr_deliver_event(struct evloop *loop, int fd, unsigned events, void *ctx)
{
	struct qmgr *q = ctx;
	struct qmgr_agent *a;
	struct buf why = BUF_INIT;
	struct ipc_msg m;
	char chunk[4096];
	ssize_t n;
	int r;

	for (a = q->agents; a != NULL; a = a->next)
		if (a->fd == fd)
			break;
	if (a == NULL)
		msg_panic("qmgr_deliver_event: fd %d is no agent", fd);

	if ((events & EV_WRITE) && a->out.len > 0) {
		if (qmgr_deliver_write(q, a, &why) < 0) {
			qmgr_deliver_agent_close(q, a, buf_cstr(&why));
			goto out;
		}
	}
	if ((events & EV_READ) == 0)
		goto out;
	do {
		n = recv(fd, chunk, sizeof(chunk), MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		goto out;
	if (n <= 0) {
		/* an idle agent may go away (master stop, reload) */
		if (n < 0)
			buf_printf(&why, "recv: %m");
		else
			buf_puts(&why, "connection closed");
		qmgr_deliver_agent_close(q, a, buf_cstr(&why));
		goto out;
	}
	buf_append(&a->in, chunk, (size_t)n);
	/* every complete reply, each for the oldest request left */
	for (;;) {
		if (a->njobs == 0 || (a->njobs == 1 && a->out.len > 0)) {
			msg_warn("%s delivery agent sent %zu byte(s) "
			    "without a request", qmgr_tr_service[a->tr],
			    a->in.len);
			qmgr_deliver_agent_close(q, a, "unexpected data");
			break;
		}
		ipc_msg_init(&m);
		r = ipc_frame_take(&a->in, &m, &why);
		if (r > 0) {
			bool open = qmgr_deliver_reply(q, a, &m);

			ipc_msg_free(&m);
			if (open && a->in.len > 0)
				continue;
			break;
		}
		ipc_msg_free(&m);
		if (r < 0) {
			msg_warn("%s: bad reply from %s delivery agent: %s",
			    a->jobs->msg->qid, qmgr_tr_service[a->tr],
			    buf_cstr(&why));
			qmgr_deliver_agent_close(q, a, "protocol error");
		} else if (a->in.len > QMGR_AGENT_INPUT) {
			msg_warn("%s: reply from %s delivery agent is over "
			    "%d bytes", a->jobs->msg->qid,
			    qmgr_tr_service[a->tr], QMGR_AGENT_INPUT);
			qmgr_deliver_agent_close(q, a, "reply too large");
		}
		break;
	}
out:
	buf_free(&why);
	qmgr_deliver_dispatch(q);
}

/* qmgr_jobs_drop - free msg's jobs in head..tail; how many */
static int
qmgr_jobs_drop(struct qmgr_job **head, struct qmgr_job **tail,
    const struct qmgr_msg *msg)
{
	struct qmgr_job **pp = head, *job;
	int dropped = 0;

	*tail = NULL;
	while ((job = *pp) != NULL) {
		if (job->msg == msg) {
			*pp = job->next;
			qmgr_deliver_job_free(&job);
			dropped++;
			continue;
		}
		*tail = job;
		pp = &job->next;
	}
	return dropped;
}

/* qmgr_deliver_cancel - drop msg's requests that were not sent yet */
void
qmgr_deliver_cancel(struct qmgr *q, struct qmgr_msg *msg)
{
	int dropped = 0;

	for (enum qmgr_transport tr = 0; tr < QMGR_NTR; tr++)
		dropped += qmgr_jobs_drop(&q->job_head[tr], &q->job_tail[tr],
		    msg);
	for (size_t i = 0; q->nparked > 0 && i < q->dest_size; i++) {
		for (struct qmgr_dest *d = q->dest_hash[i]; d != NULL;
		    d = d->next) {
			int n;

			if (d->park_head == NULL)
				continue;
			n = qmgr_jobs_drop(&d->park_head, &d->park_tail, msg);
			d->nparked -= (size_t)n;
			q->nparked -= (size_t)n;
			dropped += n;
		}
	}
	if (dropped == 0)
		return;
	msg->jobs -= dropped - 1;
	/* finishes msg if nothing is out */
	qmgr_message_job_done(q, msg);
}

/* qmgr_deliver_stop - graceful stop: drop idle agents and unsent jobs */
void
qmgr_deliver_stop(struct qmgr *q)
{
	struct qmgr_agent *a, *next;
	struct qmgr_job *job;

	/* unsent requests: their recipients stay queued, not attempted */
	for (size_t i = 0; q->nparked > 0 && i < q->dest_size; i++)
		for (struct qmgr_dest *d = q->dest_hash[i]; d != NULL;
		    d = d->next)
			qmgr_deliver_unpark(q, d->domain, true);
	for (enum qmgr_transport tr = 0; tr < QMGR_NTR; tr++) {
		while ((job = qmgr_jobs_pop(&q->job_head[tr],
		    &q->job_tail[tr])) != NULL) {
			struct qmgr_msg *msg = job->msg;

			qmgr_deliver_job_free(&job);
			qmgr_message_job_done(q, msg);
		}
	}
	for (a = q->agents; a != NULL; a = next) {
		next = a->next;
		if (a->njobs == 0)
			qmgr_deliver_agent_close(q, a, "stopping");
	}
}
