/*
 * qmgr_message - one message's way through an attempt: open, route,
 * collect results, then write them back.
 *
 * A waiting message is opened (active/QID read-only, qfile_read) only
 * when there is room (qmgr_open_limit), so descriptors stay bounded. Its
 * queued recipients are routed: a hosted domain goes to the local agent
 * in requests of up to QMGR_JOB_RCPT recipients, anything else to the
 * remote agent in one request per recipient domain. QMGR_JOB_RCPT
 * is as large as a request may be (local's LOCAL_RCPT_MAX, and the
 * most smtpd_recipient_limit allows), so a message's local recipients
 * form one request, in which local delivers each mailbox once and counts the
 * copies against local_copy_limit: splitting them would let "all+1@" ..
 * "all+999@" write one copy of the alias per request (issue 12). When
 * the last request has answered, qmgr_message_finish() applies the
 * durability rule: bounce notifications are written before any B status;
 * a message whose every recipient is final is unlinked (a crash before
 * that only duplicates); otherwise the final statuses are written in
 * place, synced, and the file moves to deferred/ with its next retry time
 * as mtime, after the deferred recipients' reasons were written to the
 * file's notes (qfile_notes_write) for heraldctl queue list/show.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/evloop.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/addr.h"
#include "mail/dir.h"
#include "mail/params.h"
#include "mail/qfile.h"
#include "mail/service.h"
#include "mail/spool.h"
#include "qmgr.h"

#define QMGR_EXPIRED_REASON "message expired"

/* qmgr_open_limit - how many messages may be open at once */
size_t
qmgr_open_limit(void)
{
	return (size_t)var_local_processes * 2 + 4;
}

/* qmgr_pump_timer - open waiting messages from the loop */
static long long
qmgr_pump_timer(struct evloop *loop, void *ctx)
{
	struct qmgr *q = ctx;

	q->pump_timer = NULL;
	qmgr_pump(q);
	return -1;
}

/* qmgr_pump_request - open waiting messages soon (from the loop) */
void
qmgr_pump_request(struct qmgr *q)
{
	if (q->loop == NULL || q->pump_timer != NULL || q->stopping)
		return;
	q->pump_timer = evloop_add_timer(q->loop, 0, qmgr_pump_timer, q);
}

/* qmgr_now - wall clock with fractions, for delay= */
static double
qmgr_now(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
		return (double)time(NULL);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* qmgr_message_result - record one recipient's result */
void
qmgr_message_result(struct qmgr_msg *msg, size_t idx, char status,
    bool infra, const char *relay, const char *dsn, const char *reason)
{
	struct buf esc = BUF_INIT;
	struct qmgr_result *r;
	char *p;

	if (!msg->open || idx >= msg->qf->nrcpt)
		msg_panic("qmgr_message_result: %s: bad recipient %zu",
		    msg->qid, idx);
	r = &msg->res[idx];
	r->status = status;
	r->infra = infra;
	r->relay = relay;
	str_lcpy(r->dsn, dsn, sizeof(r->dsn));
	x_free(&r->reason);
	r->reason = xstrndup(reason, QMGR_REASON_MAX);
	/*
	 * Logs, DSN headers and the queue file's notes take one line of
	 * printable text: line breaks and tabs become spaces, and other
	 * bytes (a remote server's escape sequences, and anything not
	 * ASCII) are shown as \xNN, so an admin sees them without a
	 * terminal acting on them.
	 */
	for (p = r->reason; *p; p++)
		if (*p == '\r' || *p == '\n' || *p == '\t')
			*p = ' ';
	str_printable(&esc, r->reason, strlen(r->reason), QMGR_REASON_MAX);
	x_free(&r->reason);
	r->reason = buf_steal(&esc);
}

/* qmgr_route - transport for a recipient */
int
qmgr_route(struct qmgr *q, const char *addr, struct buf *why)
{
	struct buf dom = BUF_INIT;
	int r;

	if (q->dir == NULL && dir_open(var_data_directory, DIR_READ, &q->dir,
	    why) < 0) {
		q->dir = NULL;
		return -1;
	}
	buf_set(&dom, addr_domain(addr));
	str_lower(dom.data);
	/* no directory key can hold these: not a hosted domain */
	for (size_t i = 0; i < dom.len; i++)
		if ((unsigned char)dom.data[i] <= ' ' || dom.data[i] == 0x7f)
			buf_truncate(&dom, 0);
	if (dom.len == 0) {
		buf_free(&dom);
		return QMGR_TR_REMOTE;
	}
	r = dir_domain_exists(q->dir, buf_cstr(&dom), why);
	buf_free(&dom);
	if (r < 0)
		return -1;
	return r > 0 ? QMGR_TR_LOCAL : QMGR_TR_REMOTE;
}

/* qmgr_message_close - release what an open message holds */
static void
qmgr_message_close(struct qmgr *q, struct qmgr_msg *msg)
{
	if (!msg->open)
		return;
	for (size_t i = 0; i < msg->qf->nrcpt; i++)
		x_free(&msg->res[i].reason);
	x_free(&msg->res);
	qfile_free(&msg->qf);
	if (msg->fd >= 0 && close(msg->fd) < 0)
		msg_warn("%s: close: %m", msg->qid);
	msg->fd = -1;
	msg->open = false;
	if (msg->fin_counted) {
		msg->fin_counted = false;
		q->nfinishing--;
	} else {
		q->nopen--;
	}
	if (q->svc != NULL)
		service_session_end(q->svc);
	qmgr_pump_request(q);
}

/* qmgr_message_corrupt - move an unreadable file to corrupt/ */
static void
qmgr_message_corrupt(struct qmgr *q, struct qmgr_msg *msg, const char *why)
{
	struct buf src = BUF_INIT, dst = BUF_INIT;

	spool_path(&src, q->spool, SPOOL_ACTIVE, msg->qid);
	spool_path(&dst, q->spool, SPOOL_CORRUPT, msg->qid);
	if (rename(buf_cstr(&src), buf_cstr(&dst)) < 0)
		msg_warn("%s: corrupt queue file: rename to corrupt/: %m: %s",
		    msg->qid, why);
	else
		msg_warn("%s: corrupt queue file moved to corrupt/: %s",
		    msg->qid, why);
	buf_free(&src);
	buf_free(&dst);
	qmgr_msg_forget(q, msg);
}

/* qmgr_message_remote - one remote request per recipient domain (up to
 * QMGR_JOB_RCPT recipients each) for msg's recipients idx[0..n); idx is
 * used up */
static void
qmgr_message_remote(struct qmgr *q, struct qmgr_msg *msg, size_t *idx,
    size_t n)
{
	const struct qfile *qf = msg->qf;
	size_t *group = xcalloc(n ? n : 1, sizeof(*group));

	/* take the first left, then every other of its domain */
	for (size_t i = 0; i < n; i++) {
		const char *dom;
		size_t ng = 0;

		if (idx[i] == SIZE_MAX)
			continue;
		dom = addr_domain(qf->rcpt[idx[i]].addr);
		for (size_t k = i; k < n; k++) {
			if (idx[k] == SIZE_MAX || str_casecmp(dom,
			    addr_domain(qf->rcpt[idx[k]].addr)) != 0)
				continue;
			group[ng++] = idx[k];
			idx[k] = SIZE_MAX;
			if (ng == QMGR_JOB_RCPT) {
				qmgr_deliver_submit(q, msg, group, ng,
				    QMGR_TR_REMOTE);
				ng = 0;
			}
		}
		if (ng > 0)
			qmgr_deliver_submit(q, msg, group, ng, QMGR_TR_REMOTE);
	}
	x_free(&group);
}

/* qmgr_message_open - open, parse and route one message */
static void
qmgr_message_open(struct qmgr *q, struct qmgr_msg *msg)
{
	struct buf path = BUF_INIT, why = BUF_INIT;
	size_t *local, nlocal = 0, *remote, nremote = 0;
	struct qfile *qf;
	int fd;

	spool_path(&path, q->spool, SPOOL_ACTIVE, msg->qid);
	fd = open(buf_cstr(&path), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno != ENOENT)
			msg_warn("%s: open %s: %m", msg->qid, buf_cstr(&path));
		buf_free(&path);
		qmgr_msg_forget(q, msg);
		return;
	}
	buf_free(&path);
	if (qfile_read(fd, &qf, &why) < 0) {
		(void)close(fd);
		qmgr_message_corrupt(q, msg, buf_cstr(&why));
		buf_free(&why);
		return;
	}
	msg->fd = fd;
	msg->qf = qf;
	msg->res = xcalloc(qf->nrcpt ? qf->nrcpt : 1, sizeof(*msg->res));
	msg->open = true;
	q->nopen++;
	if (q->svc != NULL)
		service_session_begin(q->svc);

	local = xcalloc(qf->nrcpt ? qf->nrcpt : 1, sizeof(*local));
	remote = xcalloc(qf->nrcpt ? qf->nrcpt : 1, sizeof(*remote));
	for (size_t i = 0; i < qf->nrcpt; i++) {
		int tr;

		if (qf->rcpt[i].status != QFILE_QUEUED)
			continue;
		buf_reset(&why);
		tr = qmgr_route(q, qf->rcpt[i].addr, &why);
		if (tr < 0) {
			struct buf r = BUF_INIT;

			buf_printf(&r, "directory lookup failed: %s",
			    buf_cstr(&why));
			qmgr_message_result(msg, i, QFILE_QUEUED, true, "none",
			    "4.3.0", buf_cstr(&r));
			buf_free(&r);
		} else if (tr == QMGR_TR_REMOTE) {
			remote[nremote++] = i;
		} else {
			local[nlocal++] = i;
		}
	}
	buf_free(&why);
	for (size_t off = 0; off < nlocal; off += QMGR_JOB_RCPT)
		qmgr_deliver_submit(q, msg, local + off,
		    nlocal - off > QMGR_JOB_RCPT ? QMGR_JOB_RCPT :
		    nlocal - off, QMGR_TR_LOCAL);
	qmgr_message_remote(q, msg, remote, nremote);
	x_free(&local);
	x_free(&remote);
	if (msg->jobs == 0)
		qmgr_message_finish(q, msg);
}

/* qmgr_pump - open up to a batch of waiting messages now */
void
qmgr_pump(struct qmgr *q)
{
	struct qmgr_msg *msg;
	int n = 0;

	while (!q->stopping && q->nopen < qmgr_open_limit() &&
	    n < QMGR_PUMP_BATCH && (msg = qmgr_run_pop(q)) != NULL) {
		qmgr_message_open(q, msg);
		n++;
	}
	if (q->run_head != NULL && q->nopen < qmgr_open_limit())
		qmgr_pump_request(q);
	qmgr_deliver_dispatch(q);
}

/* qmgr_message_job_done - a request finished; the last one finishes msg */
void
qmgr_message_job_done(struct qmgr *q, struct qmgr_msg *msg)
{
	if (msg->jobs <= 0)
		msg_panic("qmgr_message_job_done: %s has no request out",
		    msg->qid);
	if (--msg->jobs == 0)
		qmgr_message_finish(q, msg);
}

/* qmgr_backoff - seconds until the next attempt */
long long
qmgr_backoff(time_t now, time_t arrival, bool infra)
{
	long long age = (long long)(now - arrival), delay, hi;

	if (age < 0)
		age = 0;
	if (infra) {
		/*
		 * The agent died or timed out: master restarts it at once,
		 * so retry soon, but back off as the message ages, so a
		 * message that kills its agent cannot make it spin.
		 */
		hi = var_minimal_backoff_time > QMGR_INFRA_MIN_DELAY ?
		    var_minimal_backoff_time : QMGR_INFRA_MIN_DELAY;
		delay = age / 4;
		if (delay < QMGR_INFRA_MIN_DELAY)
			delay = QMGR_INFRA_MIN_DELAY;
		if (delay > hi)
			delay = hi;
	} else {
		delay = age;
		if (delay < var_minimal_backoff_time)
			delay = var_minimal_backoff_time;
		if (delay > var_maximal_backoff_time)
			delay = var_maximal_backoff_time;
	}
	/* do not sleep far past the end of the message's lifetime */
	if (age + delay > var_maximal_queue_lifetime + 1) {
		long long left = var_maximal_queue_lifetime + 1 - age;

		delay = left < 1 ? 1 : left;
	}
	return delay;
}

/* qmgr_message_log - the log line of one recipient's attempt */
static void
qmgr_message_log(const struct qmgr_msg *msg, size_t i, double now)
{
	const struct qmgr_result *r = &msg->res[i];
	const char *what;
	double delay = now - (double)msg->qf->arrival -
	    (double)msg->qf->arrival_usec / 1e6;

	switch (r->status) {
	case QFILE_DELIVERED:
		what = "sent";
		break;
	case QFILE_BOUNCED:
		what = "bounced";
		break;
	default:
		what = "deferred";
		break;
	}
	msg_info("%s: to=<%s>, relay=%s, delay=%.2f, dsn=%s, status=%s (%s)",
	    msg->qid, msg->qf->rcpt[i].addr, r->relay ? r->relay : "none",
	    delay < 0 ? 0.0 : delay, r->dsn, what,
	    r->reason ? r->reason : "");
}

/* qmgr_message_bounced - does recipient i's bounce go into the report
 * of kind (a failure report only where NOTIFY asks for it)? */
static bool
qmgr_message_bounced(const struct qmgr_msg *msg, size_t i,
    enum qmgr_dsn_kind kind)
{
	return msg->res[i].status == QFILE_BOUNCED &&
	    (kind != QMGR_DSN_FAILED ||
	    qmgr_bounce_notify(msg->qf->rcpt[i].notify));
}

/* the steps of finishing a message (msg->fin_step), in order */
enum qmgr_fin_step {
	QMGR_FIN_NONE,		/* not finishing */
	QMGR_FIN_FORWARD,	/* the forward copy (qmgr_forward.c) */
	QMGR_FIN_BOUNCE,	/* the non-delivery notification */
	QMGR_FIN_SUCCESS,	/* the success notification */
	QMGR_FIN_WARN,		/* statuses written; the delay warning */
};

/* a notification out for a finishing message */
struct qmgr_fin_ctx {
	struct qmgr *q;
	struct qmgr_msg *msg;
	enum qmgr_dsn_kind kind;
};

/* qmgr_message_dsn - start a notification of kind about br[0..n) to the
 * sender (the original address when the sender is one of our SRS
 * addresses: a copy qmgr_forward sent came back); done follows with a
 * struct qmgr_fin_ctx, maybe before this returns */
static void
qmgr_message_dsn(struct qmgr *q, struct qmgr_msg *msg,
    enum qmgr_dsn_kind kind, const struct qmgr_bounce_rcpt *br, size_t n,
    qmgr_bounce_fn *done)
{
	struct qmgr_fin_ctx *fc = xcalloc(1, sizeof(*fc));
	struct buf to = BUF_INIT;

	fc->q = q;
	fc->msg = msg;
	fc->kind = kind;
	qmgr_forward_return(q, msg->qf->sender, &to);
	qmgr_bounce_start(q->loop, q->spool, msg->qf, buf_cstr(&to),
	    msg->qid, kind, br, n, msg->fin_now, done, fc);
	buf_free(&to);
}

/* qmgr_message_bounce_done - the non-delivery notification is queued (or
 * not: then the bounced recipients stay queued, retried later) */
static void
qmgr_message_bounce_done(void *ctx, int r, const char *newqid,
    const char *why)
{
	struct qmgr_fin_ctx *fc = ctx;
	struct qmgr *q = fc->q;
	struct qmgr_msg *msg = fc->msg;
	enum qmgr_dsn_kind kind = fc->kind;

	x_free(&fc);
	if (r == 0) {
		if (kind == QMGR_DSN_POSTMASTER)
			msg_info("%s: undeliverable notification; "
			    "postmaster notice: %s (the notification "
			    "is dropped)", msg->qid, newqid);
		else
			msg_info("%s: sender non-delivery "
			    "notification: %s", msg->qid, newqid);
		(void)qmgr_activate(q, SPOOL_INCOMING, newqid);
	} else {
		msg_warn("%s: cannot create the %s: %s", msg->qid,
		    kind == QMGR_DSN_POSTMASTER ? "postmaster notice" :
		    "non-delivery notification", why);
		/* no B status without a notification: retry later */
		for (size_t i = 0; i < msg->qf->nrcpt; i++) {
			struct qmgr_result *res = &msg->res[i];
			struct buf t = BUF_INIT;

			if (!qmgr_message_bounced(msg, i, kind))
				continue;
			buf_printf(&t, "%s; the non-delivery "
			    "notification failed: %s", res->reason, why);
			qmgr_message_result(msg, i, QFILE_QUEUED,
			    false, res->relay, "4.3.0", buf_cstr(&t));
			buf_free(&t);
		}
	}
	qmgr_message_step(q, msg);
}

/* qmgr_message_bounce - notify the sender of this attempt's bounces (the
 * postmaster when msg is our own notification); the next step follows */
static void
qmgr_message_bounce(struct qmgr *q, struct qmgr_msg *msg)
{
	struct qfile *qf = msg->qf;
	struct qmgr_bounce_rcpt *br;
	enum qmgr_dsn_kind kind = QMGR_DSN_FAILED;
	size_t n = 0;

	if (!qmgr_bounce_wanted(qf)) {
		if (!qmgr_bounce_double(qf)) {
			for (size_t i = 0; i < qf->nrcpt; i++)
				if (msg->res[i].status == QFILE_BOUNCED)
					msg_info("%s: to=<%s>: undeliverable "
					    "%s dropped, nobody is notified",
					    msg->qid, qf->rcpt[i].addr,
					    qfile_attr(qf, QFILE_A_BOUNCE) ?
					    "postmaster notice" :
					    "null-sender message");
			qmgr_message_step(q, msg);
			return;
		}
		kind = QMGR_DSN_POSTMASTER;
	}
	br = xcalloc(qf->nrcpt ? qf->nrcpt : 1, sizeof(*br));
	for (size_t i = 0; i < qf->nrcpt; i++) {
		if (!qmgr_message_bounced(msg, i, kind))
			continue;
		br[n].addr = qf->rcpt[i].addr;
		br[n].orcpt = qf->rcpt[i].orcpt;
		br[n].dsn = msg->res[i].dsn;
		br[n].reason = msg->res[i].reason ? msg->res[i].reason : "";
		n++;
	}
	if (n > 0)
		qmgr_message_dsn(q, msg, kind, br, n,
		    qmgr_message_bounce_done);
	x_free(&br);
	if (n == 0)
		qmgr_message_step(q, msg);
}

/* qmgr_message_success_done - the success report is queued; the
 * deliveries are done, so one that could not be written is only logged */
static void
qmgr_message_success_done(void *ctx, int r, const char *newqid,
    const char *why)
{
	struct qmgr_fin_ctx *fc = ctx;
	struct qmgr *q = fc->q;
	struct qmgr_msg *msg = fc->msg;

	x_free(&fc);
	if (r == 0) {
		msg_info("%s: sender delivery status notification: "
		    "%s", msg->qid, newqid);
		(void)qmgr_activate(q, SPOOL_INCOMING, newqid);
	} else {
		msg_warn("%s: cannot create the success "
		    "notification: %s", msg->qid, why);
	}
	qmgr_message_step(q, msg);
}

/* qmgr_message_success - tell the sender of this attempt's deliveries to
 * recipients with NOTIFY=SUCCESS (one report for all of them); the next
 * step follows */
static void
qmgr_message_success(struct qmgr *q, struct qmgr_msg *msg)
{
	struct qfile *qf = msg->qf;
	struct qmgr_bounce_rcpt *br;
	size_t n = 0;

	if (!qmgr_bounce_wanted(qf)) {
		qmgr_message_step(q, msg);
		return;
	}
	br = xcalloc(qf->nrcpt ? qf->nrcpt : 1, sizeof(*br));
	for (size_t i = 0; i < qf->nrcpt; i++) {
		const struct qmgr_result *r = &msg->res[i];

		bool local = r->relay != NULL &&
		    strcmp(r->relay, "local") == 0;

		/*
		 * A server that speaks DSN got the NOTIFY from remote and
		 * reports itself; herald reports local deliveries, and
		 * relays to a server without DSN (RFC 3461 5.2.2).
		 */
		if (r->status != QFILE_DELIVERED || (!local && !r->relayed) ||
		    !qmgr_bounce_notify_success(qf->rcpt[i].notify))
			continue;
		br[n].addr = qf->rcpt[i].addr;
		br[n].orcpt = qf->rcpt[i].orcpt;
		br[n].dsn = "2.0.0";
		br[n].reason = local ? "delivered to mailbox" :
		    r->reason ? r->reason : "";
		br[n].action = local ? "delivered" : "relayed";
		n++;
	}
	if (n > 0)
		qmgr_message_dsn(q, msg, QMGR_DSN_SUCCESS, br, n,
		    qmgr_message_success_done);
	x_free(&br);
	if (n == 0)
		qmgr_message_step(q, msg);
}

/* qmgr_message_unwarn - a delay warning was not written: unmark its
 * recipients, to be tried after the next attempt */
static void
qmgr_message_unwarn(struct qmgr_msg *msg, size_t marked)
{
	struct buf why = BUF_INIT;

	for (size_t k = 0; k < marked; k++) {
		buf_reset(&why);
		if (qfile_set_warned(msg->qf, msg->fin_idx[k], false,
		    &why) < 0)
			msg_warn("%s: unmark the delay warning: %s",
			    msg->qid, buf_cstr(&why));
	}
	buf_reset(&why);
	if (marked > 0 && qfile_sync(msg->qf, &why) < 0)
		msg_warn("%s: unmark the delay warning: %s", msg->qid,
		    buf_cstr(&why));
	buf_free(&why);
}

/* qmgr_message_warn_done - the delay warning is queued, or not */
static void
qmgr_message_warn_done(void *ctx, int r, const char *newqid,
    const char *why)
{
	struct qmgr_fin_ctx *fc = ctx;
	struct qmgr *q = fc->q;
	struct qmgr_msg *msg = fc->msg;

	x_free(&fc);
	if (r == 0) {
		msg_info("%s: sender delay notification: %s", msg->qid,
		    newqid);
		(void)qmgr_activate(q, SPOOL_INCOMING, newqid);
	} else {
		msg_warn("%s: cannot create the delay notification: %s",
		    msg->qid, why);
		qmgr_message_unwarn(msg, msg->fin_nidx);
	}
	x_free(&msg->fin_idx);
	msg->fin_nidx = 0;
	qmgr_message_step(q, msg);
}

/* qmgr_message_warn - once a message has been deferred delay_warning_time,
 * warn its sender about the recipients deferred now that want to hear of
 * delays and were not warned yet (qf->fd is writable). The recipients are
 * marked warned and synced first, so a crash never sends two warnings; a
 * warning that cannot be written is unmarked and tried after the next
 * attempt. The next step follows */
static void
qmgr_message_warn(struct qmgr *q, struct qmgr_msg *msg, time_t now)
{
	struct qfile *qf = msg->qf;
	struct qmgr_bounce_rcpt *br;
	struct buf why = BUF_INIT;
	size_t *idx, n = 0, marked = 0;

	if (var_delay_warning_time <= 0 || now - qf->arrival <
	    var_delay_warning_time || !qmgr_bounce_wanted(qf)) {
		qmgr_message_step(q, msg);
		return;
	}
	br = xcalloc(qf->nrcpt ? qf->nrcpt : 1, sizeof(*br));
	idx = xcalloc(qf->nrcpt ? qf->nrcpt : 1, sizeof(*idx));
	for (size_t i = 0; i < qf->nrcpt; i++) {
		const struct qmgr_result *r = &msg->res[i];

		if (r->status != QFILE_QUEUED || qf->rcpt[i].status !=
		    QFILE_QUEUED || qf->rcpt[i].warned ||
		    !qmgr_bounce_notify_delay(qf->rcpt[i].notify))
			continue;
		br[n].addr = qf->rcpt[i].addr;
		br[n].orcpt = qf->rcpt[i].orcpt;
		br[n].dsn = r->dsn;
		br[n].reason = r->reason ? r->reason : "";
		idx[n++] = i;
	}
	for (marked = 0; marked < n; marked++)
		if (qfile_set_warned(qf, idx[marked], true, &why) < 0)
			break;
	msg->fin_idx = idx;
	msg->fin_nidx = n;
	if (n > 0 && (marked < n || qfile_sync(qf, &why) < 0)) {
		msg_warn("%s: cannot mark the delay warning: %s", msg->qid,
		    buf_cstr(&why));
		qmgr_message_unwarn(msg, marked);
		n = 0;
	}
	buf_free(&why);
	if (n > 0) {
		qmgr_message_dsn(q, msg, QMGR_DSN_DELAYED, br, n,
		    qmgr_message_warn_done);
		x_free(&br);
		return;
	}
	x_free(&br);
	x_free(&msg->fin_idx);
	msg->fin_nidx = 0;
	qmgr_message_step(q, msg);
}

/* qmgr_message_notes - keep each deferred recipient's reason in the
 * queue file for heraldctl queue list/show (qf->fd is writable); an
 * attempt that tried nobody (stopping) keeps the notes there are */
static void
qmgr_message_notes(struct qmgr_msg *msg, time_t now)
{
	struct qfile *qf = msg->qf;
	struct qfile_note *notes;
	struct buf why = BUF_INIT;
	size_t n = 0;
	bool attempted = false;

	notes = xcalloc(qf->nrcpt ? qf->nrcpt : 1, sizeof(*notes));
	for (size_t i = 0; i < qf->nrcpt; i++) {
		const struct qmgr_result *r = &msg->res[i];

		if (r->status != 0)
			attempted = true;
		if (r->status != QFILE_QUEUED)
			continue;
		notes[n].idx = i;
		notes[n].when = now;
		str_lcpy(notes[n].dsn, r->dsn, sizeof(notes[n].dsn));
		/* the const text is only read */
		notes[n].text = r->reason ? r->reason : "";
		n++;
	}
	if (attempted && qfile_notes_write(qf, notes, n, &why) < 0)
		msg_warn("%s: keep the deferral reasons: %s", msg->qid,
		    buf_cstr(&why));
	x_free(&notes);
	buf_free(&why);
}

/* qmgr_message_defer - write final statuses, then the delay warning
 * (qmgr_message_warn); false when the file cannot be opened for writing
 * (it stays in active/ for the next scan) */
static bool
qmgr_message_defer(struct qmgr *q, struct qmgr_msg *msg)
{
	struct qfile *qf = msg->qf;
	struct buf src = BUF_INIT, why = BUF_INIT;
	bool dirty = false;
	int rw;

	spool_path(&src, q->spool, SPOOL_ACTIVE, msg->qid);
	/* agents got a read-only descriptor; statuses need a writable one */
	rw = open(buf_cstr(&src), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (rw < 0) {
		msg_warn("%s: open %s for status update: %m", msg->qid,
		    buf_cstr(&src));
		buf_free(&src);
		return false;
	}
	buf_free(&src);
	msg->fin_rw = rw;
	qf->fd = rw;
	for (size_t i = 0; i < qf->nrcpt; i++) {
		char st = msg->res[i].status;

		if (qf->rcpt[i].status != QFILE_QUEUED ||
		    (st != QFILE_DELIVERED && st != QFILE_BOUNCED))
			continue;
		buf_reset(&why);
		if (qfile_set_status(qf, i, st, &why) < 0) {
			msg_warn("%s: status update: %s", msg->qid,
			    buf_cstr(&why));
			continue;
		}
		dirty = true;
	}
	buf_reset(&why);
	if (dirty && qfile_sync(qf, &why) < 0)
		msg_warn("%s: status update: %s", msg->qid, buf_cstr(&why));
	buf_free(&why);
	return true;
}

/* qmgr_message_defer_end - after the delay warning: notes, the retry
 * time, and the move to deferred/ (hold/ when the operator held it
 * meanwhile); failures leave it in active/ for the next scan */
static void
qmgr_message_defer_end(struct qmgr *q, struct qmgr_msg *msg, time_t now,
    long long delay)
{
	struct buf src = BUF_INIT, dst = BUF_INIT;
	struct timespec ts[2];
	int rw = msg->fin_rw;
	char *slash;

	qmgr_message_notes(msg, now);
	ts[0].tv_sec = now;
	ts[0].tv_nsec = 0;
	ts[1].tv_sec = now + delay;
	ts[1].tv_nsec = 0;
	if (futimens(rw, ts) < 0)
		msg_warn("%s: set retry time: %m", msg->qid);
	msg->qf->fd = msg->fd;
	msg->fin_rw = -1;
	if (close(rw) < 0)
		msg_warn("%s: close: %m", msg->qid);
	spool_path(&src, q->spool, SPOOL_ACTIVE, msg->qid);
	spool_path(&dst, q->spool, msg->held ? SPOOL_HOLD : SPOOL_DEFERRED,
	    msg->qid);
	if (rename(buf_cstr(&src), buf_cstr(&dst)) < 0 && errno == ENOENT &&
	    (slash = strrchr(dst.data, '/')) != NULL) {
		/* deferred/<h>/ is made on first use */
		*slash = '\0';
		if (mkdir(buf_cstr(&dst), 0700) < 0 && errno != EEXIST)
			msg_warn("%s: mkdir %s: %m", msg->qid, buf_cstr(&dst));
		*slash = '/';
		if (access(buf_cstr(&src), F_OK) == 0 &&
		    rename(buf_cstr(&src), buf_cstr(&dst)) < 0)
			msg_warn("%s: rename to %s: %m", msg->qid,
			    buf_cstr(&dst));
	} else if (access(buf_cstr(&src), F_OK) == 0) {
		msg_warn("%s: rename to %s: %m", msg->qid, buf_cstr(&dst));
	}
	qmgr_scan_due(q, now + delay);
	buf_free(&src);
	buf_free(&dst);
}

/* qmgr_message_remove - unlink active/QID; log why */
static void
qmgr_message_remove(struct qmgr *q, const char *qid, const char *how)
{
	struct buf path = BUF_INIT;

	spool_path(&path, q->spool, SPOOL_ACTIVE, qid);
	if (unlink(buf_cstr(&path)) < 0 && errno != ENOENT)
		msg_warn("%s: remove %s: %m", qid, buf_cstr(&path));
	else
		msg_info("%s: removed%s", qid, how);
	buf_free(&path);
}

/* qmgr_message_pending - recipients left queued after this attempt;
 * *attempted_r: any was tried, *infra_r: only agent failures deferred */
static size_t
qmgr_message_pending(const struct qmgr_msg *msg, bool *attempted_r,
    bool *infra_r)
{
	size_t pending = 0;

	*attempted_r = false;
	*infra_r = true;
	for (size_t i = 0; i < msg->qf->nrcpt; i++) {
		const struct qmgr_result *r = &msg->res[i];

		if (r->status != 0)
			*attempted_r = true;
		if (r->status == QFILE_QUEUED && !r->infra)
			*infra_r = false;
		if (r->status == QFILE_QUEUED || (r->status == 0 &&
		    msg->qf->rcpt[i].status == QFILE_QUEUED))
			pending++;
	}
	return pending;
}

/* qmgr_message_delay - seconds until msg's next attempt */
static long long
qmgr_message_delay(const struct qmgr_msg *msg)
{
	bool attempted, infra_only;

	(void)qmgr_message_pending(msg, &attempted, &infra_only);
	/* not attempted at all (stopping), or requeued meanwhile: due
	 * again right away */
	return attempted && !msg->requeue ? qmgr_backoff(msg->fin_now,
	    msg->qf->arrival, infra_only) : 0;
}

/* qmgr_message_end - the last step: forget msg */
static void
qmgr_message_end(struct qmgr *q, struct qmgr_msg *msg)
{
	msg->fin_step = QMGR_FIN_NONE;
	qmgr_message_close(q, msg);
	qmgr_msg_forget(q, msg);
}

/* qmgr_message_settle - the forward copy and notifications are queued:
 * log, then unlink the file or write its statuses and defer it */
static void
qmgr_message_settle(struct qmgr *q, struct qmgr_msg *msg)
{
	double nowf = qmgr_now();
	bool attempted, infra_only;

	if (msg->deleted) {
		/* deleted while its notifications were written */
		qmgr_message_close(q, msg);
		qmgr_message_remove(q, msg->qid, " by operator request");
		msg->fin_step = QMGR_FIN_NONE;
		qmgr_msg_forget(q, msg);
		return;
	}
	for (size_t i = 0; i < msg->qf->nrcpt; i++)
		if (msg->res[i].status != 0)
			qmgr_message_log(msg, i, nowf);
	if (qmgr_message_pending(msg, &attempted, &infra_only) == 0) {
		qmgr_message_close(q, msg);
		qmgr_message_remove(q, msg->qid, "");
		msg->fin_step = QMGR_FIN_NONE;
		qmgr_msg_forget(q, msg);
		return;
	}
	msg->fin_step = QMGR_FIN_WARN;
	if (!qmgr_message_defer(q, msg)) {
		qmgr_message_end(q, msg);
		return;
	}
	qmgr_message_warn(q, msg, msg->fin_now);
}

/*
 * qmgr_message_step - the step of a finishing message that was out is
 * done: take the next. Each step that writes a file (the forward copy on
 * a job thread, each notification after the signer answered from the
 * loop) calls back here when it is in the queue, so the loop serves other
 * messages meanwhile, and the durability order stays that of one call:
 * the copy and the notifications are in incoming/ before any status of
 * the original is written. A crash in between leaves the original in
 * active/ unchanged: retried, it can only send a copy twice.
 */
void
qmgr_message_step(struct qmgr *q, struct qmgr_msg *msg)
{
	switch (msg->fin_step) {
	case QMGR_FIN_FORWARD:
		msg->fin_step = QMGR_FIN_BOUNCE;
		qmgr_message_bounce(q, msg);
		break;
	case QMGR_FIN_BOUNCE:
		msg->fin_step = QMGR_FIN_SUCCESS;
		qmgr_message_success(q, msg);
		break;
	case QMGR_FIN_SUCCESS:
		qmgr_message_settle(q, msg);
		break;
	case QMGR_FIN_WARN:
		if (msg->deleted) {
			/* deleted while its delay warning was written */
			msg->qf->fd = msg->fd;
			if (close(msg->fin_rw) < 0)
				msg_warn("%s: close: %m", msg->qid);
			msg->fin_rw = -1;
			qmgr_message_close(q, msg);
			qmgr_message_remove(q, msg->qid,
			    " by operator request");
			msg->fin_step = QMGR_FIN_NONE;
			qmgr_msg_forget(q, msg);
			break;
		}
		qmgr_message_defer_end(q, msg, msg->fin_now,
		    qmgr_message_delay(msg));
		qmgr_message_end(q, msg);
		break;
	default:
		msg_panic("qmgr_message_step: %s: bad step %d", msg->qid,
		    msg->fin_step);
	}
}

/* qmgr_message_finish - write results, bounce, unlink or defer msg */
void
qmgr_message_finish(struct qmgr *q, struct qmgr_msg *msg)
{
	struct qfile *qf = msg->qf;
	time_t now = time(NULL);
	bool expired;

	if (msg->jobs != 0 || !msg->open || msg->fin_step != QMGR_FIN_NONE)
		msg_panic("qmgr_message_finish: %s is busy", msg->qid);
	if (msg->deleted) {
		qmgr_message_close(q, msg);
		qmgr_message_remove(q, msg->qid, " by operator request");
		qmgr_msg_forget(q, msg);
		return;
	}
	expired = now - qf->arrival > var_maximal_queue_lifetime;
	for (size_t i = 0; i < qf->nrcpt; i++) {
		struct qmgr_result *r = &msg->res[i];

		if (r->status == QFILE_QUEUED && expired)
			qmgr_message_result(msg, i, QFILE_BOUNCED, false,
			    r->relay, "4.4.7", QMGR_EXPIRED_REASON);
	}
	msg->fin_now = now;
	msg->fin_step = QMGR_FIN_FORWARD;
	/*
	 * A finishing message may wait (a silent signer: 2 s); its slot
	 * goes to the next message, so that a storm of bounces does not
	 * hold every slot qmgr_open_limit gives and with them new mail. A
	 * bound of its own keeps the descriptors they hold in check.
	 */
	if (q->nfinishing < QMGR_FINISH_MAX) {
		msg->fin_counted = true;
		q->nfinishing++;
		q->nopen--;
		qmgr_pump_request(q);
	}
	qmgr_forward(q, msg, now);
}

/* qmgr_delete - operator delete */
int
qmgr_delete(struct qmgr *q, const char *qid)
{
	static const char *const folders[] = {SPOOL_INCOMING, SPOOL_ACTIVE,
	    SPOOL_DEFERRED, SPOOL_HOLD, NULL};
	struct qmgr_msg *msg = qmgr_msg_find(q, qid);
	struct buf path = BUF_INIT;
	int found = 0;

	if (msg != NULL && msg->open) {
		/* removed when the requests in flight have returned */
		msg->deleted = true;
		msg_info("%s: delete requested; removing it when its "
		    "delivery returns", qid);
		qmgr_deliver_cancel(q, msg);
		return 0;
	}
	if (msg != NULL)
		qmgr_msg_forget(q, msg);
	for (const char *const *f = folders; *f != NULL; f++) {
		buf_reset(&path);
		spool_path(&path, q->spool, *f, qid);
		if (unlink(buf_cstr(&path)) == 0)
			found = 1;
		else if (errno != ENOENT)
			msg_warn("%s: remove %s: %m", qid, buf_cstr(&path));
	}
	buf_free(&path);
	if (!found)
		return -1;
	msg_info("%s: removed by operator request", qid);
	return 0;
}
