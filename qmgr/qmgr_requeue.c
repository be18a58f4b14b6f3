/*
 * qmgr_requeue - the operator's requeue (heraldctl queue requeue, like
 * Postfix's postsuper -r), and the revival of a message's dead
 * destinations that it shares with the flush of one message.
 *
 * Postfix's requeue sends a message through cleanup again because
 * cleanup's decisions (rewriting, virtual aliases) are written into the
 * queue file. herald writes none: the queue file holds the recipients as
 * they were received, and every routing decision is made again at each
 * attempt from the directory and the configuration of the moment:
 *   - hosted domain (local) or not (remote): qmgr_route, when the
 *     message is opened;
 *   - transport and TLS policy: qmgr_deliver_nexthop, when a remote
 *     request goes out;
 *   - relayhost, MX: the remote agent, per request (relayhost follows a
 *     reload); its cached connections are keyed by next hop, TLS level
 *     and login, so none to an old next hop is reused;
 *   - aliases: the local agent, per delivery.
 * What a requeue has to undo is what qmgr holds between attempts: the
 * retry time (a deferred file's mtime; the gap itself follows the
 * message's age, as Postfix's does, so there is no counter to reset),
 * the dead state of the recipients' domains (qmgr_dest.c), and, for a
 * message open right now, the requests routed but not yet sent.
 *
 * So a requeue makes the message's dead destinations alive and its
 * pending recipients due now: a deferred file gets the mtime now, a
 * message in incoming/ is taken at once, one waiting in the active set
 * is routed when it is opened. An open message has its unsent requests
 * dropped, and when the requests out return it goes to deferred/ due at
 * once instead of after a backoff (QMGR_REQUEUE_AFTER). Recipients
 * delivered or bounced stay so (their status bytes are never touched);
 * arrival time, lifetime and delay warnings stay as they are, the file
 * is not rewritten. A held message stays on hold (QMGR_REQUEUE_HELD):
 * release routes it anew anyway.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/str.h"
#include "mail/addr.h"
#include "mail/qfile.h"
#include "mail/spool.h"
#include "qmgr.h"

/* qmgr_requeue_revive - the dead destinations of qf's pending recipients
 * alive again */
size_t
qmgr_requeue_revive(struct qmgr *q, const struct qfile *qf, const char *why)
{
	size_t n = 0;

	for (size_t i = 0; q->ndead > 0 && i < qf->nrcpt; i++)
		if (qf->rcpt[i].status == QFILE_QUEUED &&
		    qmgr_dest_revive_one(q, addr_domain(qf->rcpt[i].addr),
		    why))
			n++;
	return n;
}

/* qmgr_requeue_revive_file - the same for folder/qid */
size_t
qmgr_requeue_revive_file(struct qmgr *q, const char *folder,
    const char *qid, const char *why)
{
	struct buf path = BUF_INIT, err = BUF_INIT;
	struct qfile *qf;
	size_t n = 0;
	int fd;

	if (q->ndead == 0)
		return 0;	/* nothing to revive: no need to read */
	spool_path(&path, q->spool, folder, qid);
	fd = open(buf_cstr(&path), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno != ENOENT)
			msg_warn("%s: open %s: %m", qid, buf_cstr(&path));
	} else if (qfile_read(fd, &qf, &err) == 0) {
		n = qmgr_requeue_revive(q, qf, why);
		qfile_free(&qf);
	}
	/* a file that does not parse goes to corrupt/ when it is opened */
	if (fd >= 0 && close(fd) < 0)
		msg_warn("%s: close: %m", qid);
	buf_free(&path);
	buf_free(&err);
	return n;
}

/* qmgr_requeue_there - does folder/qid exist? */
static bool
qmgr_requeue_there(struct qmgr *q, const char *folder, const char *qid)
{
	struct buf path = BUF_INIT;
	struct stat st;
	bool r;

	spool_path(&path, q->spool, folder, qid);
	r = lstat(buf_cstr(&path), &st) == 0 && S_ISREG(st.st_mode);
	buf_free(&path);
	return r;
}

/* qmgr_requeue - operator requeue of qid */
int
qmgr_requeue(struct qmgr *q, const char *qid,
    enum qmgr_requeue_state *state_r, struct buf *why)
{
	struct qmgr_msg *msg = qmgr_msg_find(q, qid);
	struct buf how = BUF_INIT;
	const char *folder = NULL;
	size_t revived = 0;
	int r;

	buf_printf(&how, "requeue of %s", qid);
	*state_r = QMGR_REQUEUE_NOW;
	if (msg != NULL && msg->open) {
		if (msg->deleted) {
			buf_puts(why, "no such message");
			buf_free(&how);
			return -1;
		}
		if (msg->held) {
			*state_r = QMGR_REQUEUE_HELD;
			goto held;
		}
		revived = qmgr_requeue_revive(q, msg->qf, buf_cstr(&how));
		*state_r = QMGR_REQUEUE_AFTER;
		msg->requeue = true;
		msg_info("%s: requeued by operator request (%zu dead "
		    "destination(s) revived); retried at once when its "
		    "delivery returns", qid, revived);
		/* routed but unsent requests go; may finish msg (freed) */
		qmgr_deliver_cancel(q, msg);
		buf_free(&how);
		return 0;
	}
	if (msg != NULL) {
		/* waiting in the active set: routed when it is opened */
		folder = SPOOL_ACTIVE;
	} else if (qmgr_requeue_there(q, SPOOL_HOLD, qid)) {
		*state_r = QMGR_REQUEUE_HELD;
		goto held;
	} else if ((r = qmgr_make_due(q, qid, "requeue", why)) != 0) {
		if (r < 0) {
			buf_free(&how);
			return -1;
		}
		folder = SPOOL_DEFERRED;
	} else if (qmgr_requeue_there(q, SPOOL_INCOMING, qid)) {
		folder = SPOOL_INCOMING;
	} else if (qmgr_requeue_there(q, SPOOL_ACTIVE, qid)) {
		folder = SPOOL_ACTIVE;	/* the active set was full */
	} else {
		buf_puts(why, "no such message");
		buf_free(&how);
		return -1;
	}
	revived = qmgr_requeue_revive_file(q, folder, qid, buf_cstr(&how));
	if (strcmp(folder, SPOOL_INCOMING) == 0 && !q->stopping)
		(void)qmgr_activate(q, SPOOL_INCOMING, qid);
	msg_info("%s: requeued by operator request (%zu dead destination(s) "
	    "revived); tried at once", qid, revived);
	buf_free(&how);
	return 0;
held:
	msg_info("%s: requeue: on hold, it stays held (release routes it "
	    "anew)", qid);
	buf_free(&how);
	return 0;
}
