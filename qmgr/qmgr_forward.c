/*
 * qmgr_forward - copies of a message for alias targets in other domains
 * (issue 15), with the envelope sender rewritten by SRS so that SPF still
 * passes where they arrive; and the way back for notifications to such a
 * sender.
 *
 * local delivers the mailboxes an alias reaches here and marks, in its
 * reply, a recipient that also has targets elsewhere (forward=1). When
 * the attempt is over and such a recipient has a final status (delivered
 * or bounced), qmgr resolves it again, gathers its targets in other
 * domains (lib/mail/resolve.c keeps them in r.remote) and writes one new
 * queue file for all of them: sender srs_site_forward(original sender)
 * (unchanged for the null sender and our own domains), the original's
 * attributes, each target with the ORCPT and NOTIFY of the recipient it
 * came from (so a DSN names the address the sender used), and the same
 * message bytes. It is written like a notification (unnamed, synced,
 * linked, incoming/ synced) before any status of the original is written:
 * a crash in between can only send the copy twice. Local recipients keep
 * the original sender; only the copy has the SRS one.
 *
 * The copy is written on a job thread (lib/mail/job.c), so a big message
 * never holds up the loop; the message waits, open, meanwhile.
 *
 * A recipient whose copy cannot be made (no secret, disk full, a
 * directory error) is deferred instead: the retry delivers its mailboxes
 * again (a duplicate, never a loss) and forwards then.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/dir.h"
#include "mail/job.h"
#include "mail/params.h"
#include "mail/qfile.h"
#include "mail/qid.h"
#include "mail/resolve.h"
#include "mail/spool.h"
#include "mail/srs.h"
#include "mail/srs_site.h"
#include "qmgr.h"

#define QMGR_FORWARD_CHUNK 65536	/* bytes copied at a time */

/* one target of the copy */
struct qmgr_fwd_target {
	char *addr;
	size_t from;		/* the original recipient it came from */
};

/* qmgr_forward_wanted - should recipient i of msg be forwarded now? */
static bool
qmgr_forward_wanted(const struct qmgr_msg *msg, size_t i)
{
	const struct qmgr_result *r = &msg->res[i];

	return r->forward && (r->status == QFILE_DELIVERED ||
	    r->status == QFILE_BOUNCED);
}

/* qmgr_forward_body - copy the message bytes of qf into w; -1 with why */
static int
qmgr_forward_body(const struct qfile *qf, int fd, struct qfile_writer *w,
    struct buf *why)
{
	char *chunk = xmalloc(QMGR_FORWARD_CHUNK);
	off_t off = qf->body_off, end = qf->body_off + qf->body_size;
	int ret = 0;

	while (off < end) {
		size_t want = end - off > QMGR_FORWARD_CHUNK ?
		    QMGR_FORWARD_CHUNK : (size_t)(end - off);
		ssize_t n = pread(fd, chunk, want, off);

		if (n <= 0) {
			buf_printf(why, "read the queue file: %s",
			    n < 0 ? strerror(errno) : "short file");
			ret = -1;
			break;
		}
		qfile_writer_body(w, chunk, (size_t)n);
		off += n;
	}
	x_free(&chunk);
	return ret;
}

/* qmgr_forward_write - the copy as incoming/<qid>; -1 with why */
static int
qmgr_forward_write(const char *spool, const struct qfile *qf, int fd,
    const char *sender, const struct qmgr_fwd_target *t, size_t n,
    time_t now, char qid[QID_SIZE], struct buf *why)
{
	struct qfile_writer *w = NULL;
	int ret = -1;

	qid_new(qid);
	if (qfile_writer_new(spool, &w, why) < 0)
		return -1;
	qfile_writer_start(w, now, sender);
	for (size_t i = 0; i < qf->nattr; i++)
		qfile_writer_attr(w, qf->attrs[i].name, qf->attrs[i].value);
	for (size_t i = 0; i < n; i++) {
		const struct qfile_rcpt *from = &qf->rcpt[t[i].from];
		struct buf orcpt = BUF_INIT;

		/* the address the sender used, unless it gave one itself */
		if (*from->orcpt != '\0')
			buf_set(&orcpt, from->orcpt);
		else
			buf_printf(&orcpt, "rfc822;%s", from->addr);
		qfile_writer_rcpt(w, t[i].addr, buf_cstr(&orcpt),
		    from->notify);
		buf_free(&orcpt);
	}
	qfile_writer_begin_body(w);
	if (qmgr_forward_body(qf, fd, w, why) == 0 &&
	    qfile_writer_finish(w, why) == 0 &&
	    qfile_writer_sync(w, why) == 0 &&
	    qfile_writer_link(w, qid, why) == 0 &&
	    spool_sync_dir(spool, SPOOL_INCOMING, why) == 0)
		ret = 0;
	qfile_writer_free(&w);
	return ret;
}

/* qmgr_forward_targets - add recipient i's targets elsewhere to *t (once
 * each); -1 with why when its resolution failed for now */
static int
qmgr_forward_targets(struct qmgr *q, const struct qmgr_msg *msg, size_t i,
    struct qmgr_fwd_target **t, size_t *n, struct buf *why)
{
	struct resolved r;

	resolve_addr(q->dir, msg->qf->rcpt[i].addr, *var_recipient_delimiter,
	    (int)var_alias_depth_limit, &r);
	if (r.fail.status == OUTCOME_DEFERRED) {
		buf_printf(why, "%s", buf_cstr(&r.fail.reason));
		resolve_free(&r);
		return -1;
	}
	for (size_t k = 0; k < r.nremote; k++) {
		bool dup = false;

		for (size_t j = 0; j < *n && !dup; j++)
			dup = str_casecmp((*t)[j].addr, r.remote[k]) == 0;
		if (dup)
			continue;
		*t = xreallocarray(*t, *n + 1, sizeof(**t));
		(*t)[*n].addr = xstrdup(r.remote[k]);
		(*t)[*n].from = i;
		(*n)++;
	}
	resolve_free(&r);
	return 0;
}

/* qmgr_forward_fail - defer the forwarded recipients: no copy was made */
static void
qmgr_forward_fail(struct qmgr_msg *msg, const char *why)
{
	for (size_t i = 0; i < msg->qf->nrcpt; i++) {
		struct buf t = BUF_INIT;

		if (!qmgr_forward_wanted(msg, i))
			continue;
		buf_printf(&t, "forwarding to other domains failed: %s", why);
		qmgr_message_result(msg, i, QFILE_QUEUED, false, "local",
		    "4.3.0", buf_cstr(&t));
		buf_free(&t);
	}
}

/* the copy on its way: written on a job thread */
struct qmgr_fwd_job {
	struct job job;		/* first: the pool hands this back */
	struct qmgr *q;
	struct qmgr_msg *msg;	/* open and finishing until done */
	struct qmgr_fwd_target *t;
	size_t n;
	struct buf sender;
	time_t now;
	char qid[QID_SIZE];	/* the copy's */
	int r;			/* qmgr_forward_write's */
	struct buf why;
};

/* qmgr_forward_run - write the copy (a job thread: it touches only the
 * job, the original's parsed envelope and descriptor, which nobody
 * changes while the message finishes, and the spool) */
static void
qmgr_forward_run(struct job *job)
{
	struct qmgr_fwd_job *fj = (struct qmgr_fwd_job *)job;

	fj->r = qmgr_forward_write(fj->q->spool, fj->msg->qf, fj->msg->fd,
	    buf_cstr(&fj->sender), fj->t, fj->n, fj->now, fj->qid, &fj->why);
}

/* qmgr_forward_done - the copy is queued (or not: its recipients are
 * deferred); the message's next step follows */
static void
qmgr_forward_done(struct job *job)
{
	struct qmgr_fwd_job *fj = (struct qmgr_fwd_job *)job;
	struct qmgr *q = fj->q;
	struct qmgr_msg *msg = fj->msg;

	if (fj->r == 0) {
		msg_info("%s: forwarded to %zu address%s in other domains: "
		    "%s, from=<%s>", msg->qid, fj->n, fj->n == 1 ? "" : "es",
		    fj->qid, buf_cstr(&fj->sender));
		(void)qmgr_activate(q, SPOOL_INCOMING, fj->qid);
	} else {
		msg_warn("%s: cannot forward to other domains: %s", msg->qid,
		    buf_cstr(&fj->why));
		qmgr_forward_fail(msg, buf_cstr(&fj->why));
	}
	for (size_t i = 0; i < fj->n; i++)
		x_free(&fj->t[i].addr);
	x_free(&fj->t);
	buf_free(&fj->sender);
	buf_free(&fj->why);
	x_free(&fj);
	qmgr_message_step(q, msg);
}

/*
 * qmgr_forward - write the copy for msg's targets in other domains, then
 * take msg's next finishing step. The targets and the SRS sender are
 * found here (directory lookups); the copy, which is as large as the
 * message, is written and synced on a job thread of q->jobs, so a big
 * forwarded message does not hold up the loop (without a pool, in unit
 * tests, right here).
 */
void
qmgr_forward(struct qmgr *q, struct qmgr_msg *msg, time_t now)
{
	struct qmgr_fwd_job *fj;
	struct qmgr_fwd_target *t = NULL;
	struct buf why = BUF_INIT, sender = BUF_INIT;
	size_t n = 0;
	int r;

	for (size_t i = 0; i < msg->qf->nrcpt; i++) {
		if (!qmgr_forward_wanted(msg, i))
			continue;
		if (q->dir == NULL && dir_open(var_data_directory, DIR_READ,
		    &q->dir, &why) < 0) {
			q->dir = NULL;
			goto fail;
		}
		if (qmgr_forward_targets(q, msg, i, &t, &n, &why) < 0)
			goto fail;
	}
	if (n == 0)
		goto out;
	r = srs_site_forward(q->dir, now, msg->qf->sender, &sender, &why);
	if (r < 0)
		goto fail;
	if (r == 0)
		buf_set(&sender, msg->qf->sender);
	fj = xcalloc(1, sizeof(*fj));
	fj->job.run = qmgr_forward_run;
	fj->job.done = qmgr_forward_done;
	fj->job.owner = msg;
	fj->job.keep = true;
	fj->q = q;
	fj->msg = msg;
	fj->t = t;
	fj->n = n;
	fj->sender = sender;
	fj->now = now;
	buf_init(&fj->why);
	buf_free(&why);
	if (q->jobs != NULL) {
		job_submit(q->jobs, &fj->job);
	} else {
		qmgr_forward_run(&fj->job);
		qmgr_forward_done(&fj->job);
	}
	return;
fail:
	msg_warn("%s: cannot forward to other domains: %s", msg->qid,
	    buf_cstr(&why));
	qmgr_forward_fail(msg, buf_cstr(&why));
out:
	for (size_t i = 0; i < n; i++)
		x_free(&t[i].addr);
	x_free(&t);
	buf_free(&why);
	buf_free(&sender);
	qmgr_message_step(q, msg);
}

/* qmgr_forward_return - where a notification to sender goes: the
 * original address when sender is one of our SRS addresses (a copy we
 * forwarded came back), else sender itself, into out */
void
qmgr_forward_return(struct qmgr *q, const char *sender, struct buf *out)
{
	struct buf why = BUF_INIT;
	int temp;

	buf_set(out, sender);
	if (!srs_is_srs(sender))
		return;
	if (q->dir == NULL && dir_open(var_data_directory, DIR_READ,
	    &q->dir, &why) < 0)
		q->dir = NULL;
	buf_reset(&why);
	if (srs_site_reverse(q->dir, time(NULL), sender, out, &temp,
	    &why) < 0) {
		msg_warn("notification to <%s> stays there: %s", sender,
		    buf_cstr(&why));
		buf_set(out, sender);
	}
	buf_free(&why);
}
