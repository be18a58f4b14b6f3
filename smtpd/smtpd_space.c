/*
 * smtpd_space - the spool space that open mail transactions hold, and the
 * time they may hold it.
 *
 * Reservation: at MAIL a transaction reserves the size it declared (SIZE=,
 * else message_size_limit). What it still reserves is that size less the
 * content it has written, since written bytes already show in the file
 * system's free space (the queue file is unlinked until the commit, so du
 * does not see it, but statvfs does). MAIL is accepted only when the free
 * space, less what the worker's open transactions still reserve, is at
 * least 1.5 times the new reservation plus queue_minfree: a sender that
 * stalls cannot make others' free space look larger than it is. The
 * reservation ends at the commit, RSET, a reject or the end of the
 * session. The accounting is per worker: with N workers each counts only
 * its own transactions, so the spool can be promised up to N times over
 * (the written part is always real); queue_minfree is the margin for that.
 *
 * Data rate: while a message's content is open, a client must keep up
 * smtpd_min_data_rate. It starts with smtpd_data_rate_window seconds of
 * credit; every content byte adds 1/rate seconds, and the credit never
 * exceeds the window (Postfix's smtpd_min_data_rate works the same way
 * with smtpd_timeout). A client that sends fast and then stalls, or
 * trickles, runs out within about a window and is cut.
 *
 * The functions here are pure accounting (unit-tested in
 * smtpd_space_test.c); the worker's one struct smtpd_space is
 * smtpd_space_worker.
 */
#include <limits.h>

#include "base/log.h"
#include "smtpd.h"

struct smtpd_space smtpd_space_worker;

/* smtpd_space_set - tx now reserves held bytes; keep the total */
static void
smtpd_space_set(struct smtpd_space *sp, struct smtpd_space_tx *r,
    long long held)
{
	sp->held += held - r->held;
	r->held = held;
	if (sp->held < 0)
		msg_panic("smtpd_space: %lld bytes held", sp->held);
}

/* smtpd_space_open - a transaction reserves want bytes */
void
smtpd_space_open(struct smtpd_space *sp, struct smtpd_space_tx *r,
    long long want)
{
	if (r->open)
		smtpd_space_close(sp, r);
	r->open = true;
	r->want = want < 0 ? 0 : want;
	r->held = 0;
	sp->open++;
	smtpd_space_set(sp, r, r->want);
}

/* smtpd_space_wrote - the transaction's content is written bytes long */
void
smtpd_space_wrote(struct smtpd_space *sp, struct smtpd_space_tx *r,
    long long written)
{
	if (!r->open)
		return;
	smtpd_space_set(sp, r, written >= r->want ? 0 : r->want -
	    (written < 0 ? 0 : written));
}

/* smtpd_space_close - the transaction ended (safe to call twice) */
void
smtpd_space_close(struct smtpd_space *sp, struct smtpd_space_tx *r)
{
	if (!r->open)
		return;
	smtpd_space_set(sp, r, 0);
	r->open = false;
	r->want = 0;
	if (--sp->open < 0)
		msg_panic("smtpd_space: more closes than opens");
}

/*
 * smtpd_space_room - may a transaction that wants want bytes start, with
 * free bytes free in the spool? free - held >= 1.5 x want + minfree,
 * without overflow.
 */
bool
smtpd_space_room(const struct smtpd_space *sp, long long free,
    long long want, long long minfree)
{
	long long need, avail;

	if (want < 0)
		want = 0;
	if (minfree < 0)
		minfree = 0;
	if (want > (LLONG_MAX - minfree) / 2)
		return false;
	need = want + want / 2 + minfree;
	avail = free - sp->held;	/* both >= 0: no overflow */
	return avail >= need;
}

/*
 * smtpd_space_credit - the data-rate deadline after n more content bytes
 * at now (all in ms): deadline + n / rate seconds, but never more than
 * window_ms from now. rate <= 0: no minimum, the deadline stays.
 */
long long
smtpd_space_credit(long long deadline, long long now, long long n,
    long long rate, long long window_ms)
{
	long long cap = now + window_ms, gain;

	if (rate <= 0 || n <= 0)
		return deadline;
	gain = n > LLONG_MAX / 1000 ? LLONG_MAX / rate : n * 1000 / rate;
	if (deadline >= cap || gain >= cap - deadline)
		return cap;
	return deadline + gain;
}
