/*
 * qmgr_hold - the operator's hold and release (heraldctl queue hold /
 * release, like Postfix's postsuper -h / -H).
 *
 * A held message sits in hold/, where no scan looks: it is neither
 * delivered nor expired while it stays there. Holding a message that is
 * waiting (in incoming/, deferred/, or in the active set without a
 * delivery out) moves its file at once; one whose delivery is in flight
 * is marked, its unsent requests are dropped, and qmgr_message_finish
 * moves it to hold/ instead of deferred/ when the requests in flight
 * have returned (recipients delivered meanwhile stay delivered).
 * Releasing moves hold/QID to incoming/ and activates it, so it is tried
 * at once and counts its lifetime from its arrival, as before.
 */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "mail/spool.h"
#include "qmgr.h"

/* qmgr_hold_move - rename folder/qid to dst_folder/qid; 1 moved, 0 not
 * there, -1 error (logged) */
static int
qmgr_hold_move(struct qmgr *q, const char *folder, const char *dst_folder,
    const char *qid)
{
	struct buf src = BUF_INIT, dst = BUF_INIT;
	int r;

	spool_path(&src, q->spool, folder, qid);
	spool_path(&dst, q->spool, dst_folder, qid);
	r = rename(buf_cstr(&src), buf_cstr(&dst));
	if (r < 0 && errno != ENOENT)
		msg_warn("%s: rename %s to %s: %m", qid, buf_cstr(&src),
		    buf_cstr(&dst));
	buf_free(&src);
	buf_free(&dst);
	if (r == 0)
		return 1;
	return errno == ENOENT ? 0 : -1;
}

/* qmgr_hold - put qid on hold; 0 done (or when its delivery returns),
 * -1 with why */
int
qmgr_hold(struct qmgr *q, const char *qid, struct buf *why)
{
	static const char *const folders[] = {SPOOL_INCOMING, SPOOL_ACTIVE,
	    SPOOL_DEFERRED, NULL};
	struct qmgr_msg *msg = qmgr_msg_find(q, qid);
	struct buf path = BUF_INIT;
	int r;

	if (msg != NULL && msg->open) {
		msg->held = true;
		msg_info("%s: hold requested; moving it to %s/ when its "
		    "delivery returns", qid, SPOOL_HOLD);
		qmgr_deliver_cancel(q, msg);
		return 0;
	}
	if (msg != NULL)
		qmgr_msg_forget(q, msg);	/* its file is in active/ */
	for (const char *const *f = folders; *f != NULL; f++) {
		if ((r = qmgr_hold_move(q, *f, SPOOL_HOLD, qid)) < 0) {
			buf_puts(why, "cannot move it to hold/ (see the log)");
			return -1;
		}
		if (r > 0) {
			msg_info("%s: held by operator request", qid);
			return 0;
		}
	}
	spool_path(&path, q->spool, SPOOL_HOLD, qid);
	r = access(buf_cstr(&path), F_OK);
	buf_free(&path);
	if (r == 0)
		return 0;	/* on hold already */
	buf_puts(why, "no such message");
	return -1;
}

/* qmgr_release - take qid off hold and try it now; 0, or -1 with why */
int
qmgr_release(struct qmgr *q, const char *qid, struct buf *why)
{
	int r = qmgr_hold_move(q, SPOOL_HOLD, SPOOL_INCOMING, qid);

	if (r < 0) {
		buf_puts(why, "cannot move it out of hold/ (see the log)");
		return -1;
	}
	if (r == 0) {
		buf_puts(why, "no such message on hold");
		return -1;
	}
	msg_info("%s: released by operator request", qid);
	if (!q->stopping)
		(void)qmgr_activate(q, SPOOL_INCOMING, qid);
	return 0;
}
