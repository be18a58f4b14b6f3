/*
 * qmgr_dest - per-destination concurrency of remote delivery: how many
 * requests for one domain may be out at the remote agents at once, and
 * whether the domain is dead.
 *
 * The model is Postfix's (SCHEDULER_README, "concurrency scheduling"):
 *   - a domain starts at initial_destination_concurrency (5);
 *   - each reply from a remote agent that reached a server (whatever the
 *     server answered to MAIL, RCPT or DATA) is positive feedback: the
 *     window grows by 1/window, so by one after a window's worth of
 *     successes, and only while the window is not far ahead of what is
 *     used (window < requests out + initial), never past
 *     remote_destination_concurrency_limit;
 *   - a reply with conn_failed=1 (no server took the transaction:
 *     connect refused or timed out, 4xx greeting, EHLO or TLS failure,
 *     MX lookup failed for now) is negative feedback: the window shrinks
 *     by one, down to 1, and the failure counts 1/window of a "cohort";
 *   - when destination_concurrency_failed_cohort_limit (1) cohorts have
 *     failed with no success between, the domain is dead: its queued
 *     requests, and new ones, are deferred without a connection
 *     ("delivery temporarily suspended: <the last failure>") for
 *     minimal_backoff_time, or until heraldctl queue flush (of the whole
 *     queue, or of a message to the domain) or queue requeue. A success
 *     clears the count. A domain that comes back from dead starts at the
 *     requests still out, or at the initial concurrency, and keeps its
 *     failed cohorts: one more connection failure makes it dead again.
 *
 * From initial concurrency 5, four connection failures in a row make a
 * domain dead (1/5 + 1/4 + 1/3 + 1/2 >= 1). The state lives in a hash
 * table of lowercase domain names; an entry that is alive and has no
 * request out is dropped at the periodic scan (qmgr_dest_prune), as
 * Postfix drops an empty queue, so the table stays as small as the set
 * of domains being delivered to, and at most QMGR_DEST_LIMIT entries.
 */
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/ipc.h"
#include "mail/params.h"
#include "qmgr.h"

#define QMGR_DEST_HASH 256 /* buckets at first */

/* qmgr_dest_key - the lowercase table key of domain (at most 255 bytes) */
static void
qmgr_dest_key(const char *domain, char key[256])
{
	str_lcpy(key, domain, 256);
	str_lower(key);
}

/* qmgr_dest_hash - FNV-1a of a key */
static size_t
qmgr_dest_hash(const char *key)
{
	uint32_t h = 2166136261u;

	for (; *key; key++) {
		h ^= (unsigned char)*key;
		h *= 16777619u;
	}
	return h;
}

/* qmgr_dest_initial - the window of a fresh domain */
static int
qmgr_dest_initial(void)
{
	return (int)(var_initial_destination_concurrency <
	                     var_remote_destination_concurrency_limit
	                 ? var_initial_destination_concurrency
	                 : var_remote_destination_concurrency_limit);
}

/* qmgr_dest_find - the state of domain, or NULL */
struct qmgr_dest *
qmgr_dest_find(struct qmgr *q, const char *domain)
{
	char key[256];
	struct qmgr_dest *d;

	if (q->dest_size == 0)
		return NULL;
	qmgr_dest_key(domain, key);
	for (d = q->dest_hash[qmgr_dest_hash(key) & (q->dest_size - 1)];
	     d != NULL; d = d->next)
		if (strcmp(d->domain, key) == 0)
			return d;
	return NULL;
}

/* qmgr_dest_unlink - take d out of the table and free it */
static void
qmgr_dest_unlink(struct qmgr *q, struct qmgr_dest *d)
{
	struct qmgr_dest **pp;

	pp = &q->dest_hash[qmgr_dest_hash(d->domain) & (q->dest_size - 1)];
	for (; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == d) {
			*pp = d->next;
			break;
		}
	}
	if (d->dead_until != 0)
		q->ndead--;
	q->ndest--;
	x_free(&d->reason);
	x_free(&d);
}

/* qmgr_dest_grow - double the table when it gets crowded */
static void
qmgr_dest_grow(struct qmgr *q)
{
	size_t nsize = q->dest_size * 2;
	struct qmgr_dest **nh = xcalloc(nsize, sizeof(*nh));

	for (size_t i = 0; i < q->dest_size; i++) {
		struct qmgr_dest *d, *next;

		for (d = q->dest_hash[i]; d != NULL; d = next) {
			size_t b = qmgr_dest_hash(d->domain) & (nsize - 1);

			next = d->next;
			d->next = nh[b];
			nh[b] = d;
		}
	}
	x_free(&q->dest_hash);
	q->dest_hash = nh;
	q->dest_size = nsize;
}

/* qmgr_dest_get - the state of domain, made when missing; NULL when the
 * table is full of domains with requests out (no feedback kept then) */
struct qmgr_dest *
qmgr_dest_get(struct qmgr *q, const char *domain, time_t now)
{
	struct qmgr_dest *d = qmgr_dest_find(q, domain);
	size_t b;

	if (d != NULL)
		return d;
	if (q->ndest >= QMGR_DEST_LIMIT)
		qmgr_dest_prune(q, now);
	if (q->ndest >= QMGR_DEST_LIMIT)
		return NULL;
	if (q->dest_size == 0) {
		q->dest_size = QMGR_DEST_HASH;
		q->dest_hash = xcalloc(q->dest_size, sizeof(*q->dest_hash));
	} else if (q->ndest >= q->dest_size) {
		qmgr_dest_grow(q);
	}
	d = xcalloc(1, sizeof(*d));
	qmgr_dest_key(domain, d->domain);
	d->window = qmgr_dest_initial();
	b = qmgr_dest_hash(d->domain) & (q->dest_size - 1);
	d->next = q->dest_hash[b];
	q->dest_hash[b] = d;
	q->ndest++;
	return d;
}

/* qmgr_dest_revive - d is alive again (its time is up, a request out
 * succeeded, or an operator flush) */
static void
qmgr_dest_revive(
    struct qmgr *q, struct qmgr_dest *d, long long busy, const char *why)
{
	if (d->dead_until == 0)
		return;
	d->dead_until = 0;
	q->ndead--;
	x_free(&d->reason);
	/* back from the almost grave: best concurrency is anyone's guess */
	d->window = busy > 0 ? (int)busy : qmgr_dest_initial();
	if (d->window > var_remote_destination_concurrency_limit)
		d->window = (int)var_remote_destination_concurrency_limit;
	d->success = 0;
	msg_info("destination %s: delivery resumed (%s)", d->domain, why);
}

/* qmgr_dest_dead - the dead state of domain now, or NULL if it may be
 * tried (one whose time is up comes back) */
const struct qmgr_dest *
qmgr_dest_dead(struct qmgr *q, const char *domain, time_t now)
{
	struct qmgr_dest *d;

	if (q->ndead == 0 || (d = qmgr_dest_find(q, domain)) == NULL ||
	    d->dead_until == 0)
		return NULL;
	if (now >= d->dead_until) {
		qmgr_dest_revive(q, d, qmgr_deliver_busy(q, domain),
		    "minimal_backoff_time passed");
		return NULL;
	}
	return d;
}

/* qmgr_dest_limit - requests for domain that may be out at once */
long long
qmgr_dest_limit(struct qmgr *q, const char *domain)
{
	const struct qmgr_dest *d = qmgr_dest_find(q, domain);
	long long w = d != NULL ? d->window : qmgr_dest_initial();

	return w < var_remote_destination_concurrency_limit
	           ? w
	           : var_remote_destination_concurrency_limit;
}

/* qmgr_dest_success - a request reached a server; busy: requests for the
 * domain out, this one included */
void
qmgr_dest_success(
    struct qmgr *q, const char *domain, long long busy, time_t now)
{
	struct qmgr_dest *d = qmgr_dest_get(q, domain, now);

	if (d == NULL)
		return;
	qmgr_dest_revive(q, d, busy, "a delivery reached a server");
	/*
	 * 1/window a success, counted whole: the window grows by one after
	 * window successes since it last changed (no rounding drift)
	 */
	if (d->window < var_remote_destination_concurrency_limit &&
	    d->window < busy + qmgr_dest_initial() &&
	    ++d->success >= d->window) {
		d->window++;
		d->success = 0;
	}
	if (d->window > var_remote_destination_concurrency_limit)
		d->window = (int)var_remote_destination_concurrency_limit;
	d->fail_cohorts = 0;
}

/* qmgr_dest_failure - no server of domain took a request (dsn, reason:
 * its answer); true when that made the domain dead */
bool
qmgr_dest_failure(struct qmgr *q, const char *domain, const char *dsn,
    const char *reason, time_t now)
{
	struct qmgr_dest *d = qmgr_dest_get(q, domain, now);

	if (d == NULL || d->dead_until != 0)
		return false; /* a request out when it died: nothing new */
	d->fail_cohorts += 1.0 / d->window;
	/* 3 x 1/3 may add up to a hair below 1 */
	if (var_destination_concurrency_failed_cohort_limit > 0 &&
	    d->fail_cohorts + 1e-9 >=
	        (double)var_destination_concurrency_failed_cohort_limit) {
		d->dead_until = now + (time_t)var_minimal_backoff_time;
		q->ndead++;
		str_lcpy(d->dsn, dsn, sizeof(d->dsn));
		d->reason = xstrndup(reason, QMGR_REASON_MAX);
		msg_warn("destination %s: delivery temporarily suspended for "
		         "%llds: %s",
		    d->domain, var_minimal_backoff_time, d->reason);
		return true;
	}
	/* negative feedback 1: one less at once, down to 1 */
	if (d->window > 1)
		d->window--;
	d->success = 0;
	return false;
}

/* qmgr_dest_revive_all - an operator flush: every dead domain is tried
 * again; how many were dead */
size_t
qmgr_dest_revive_all(struct qmgr *q)
{
	size_t n = 0;

	for (size_t i = 0; q->ndead > 0 && i < q->dest_size; i++)
		for (struct qmgr_dest *d = q->dest_hash[i]; d != NULL;
		     d = d->next)
			if (d->dead_until != 0) {
				qmgr_dest_revive(q, d,
				    qmgr_deliver_busy(q, d->domain),
				    "queue flush");
				n++;
			}
	return n;
}

/* qmgr_dest_revive_one - an operator flush or requeue of a message to
 * domain: alive again if it was dead (true then) */
bool
qmgr_dest_revive_one(struct qmgr *q, const char *domain, const char *why)
{
	struct qmgr_dest *d;

	if (q->ndead == 0 || (d = qmgr_dest_find(q, domain)) == NULL ||
	    d->dead_until == 0)
		return false;
	qmgr_dest_revive(q, d, qmgr_deliver_busy(q, d->domain), why);
	return true;
}

/* qmgr_dest_prune - drop the domains with nothing out that are alive
 * (or whose dead time is up) */
void
qmgr_dest_prune(struct qmgr *q, time_t now)
{
	for (size_t i = 0; i < q->dest_size; i++) {
		struct qmgr_dest *d, *next;

		for (d = q->dest_hash[i]; d != NULL; d = next) {
			next = d->next;
			if ((d->dead_until == 0 || now >= d->dead_until) &&
			    d->nparked == 0 &&
			    qmgr_deliver_busy(q, d->domain) == 0)
				qmgr_dest_unlink(q, d);
		}
	}
}

/* qmgr_dest_free_all - drop every domain's state */
void
qmgr_dest_free_all(struct qmgr *q)
{
	for (size_t i = 0; i < q->dest_size; i++)
		while (q->dest_hash[i] != NULL)
			qmgr_dest_unlink(q, q->dest_hash[i]);
	x_free(&q->dest_hash);
	q->dest_size = 0;
}

/* qmgr_dest_list - the domains whose state is not a fresh one's (dead,
 * requests out, or a window other than the initial), at most max, for
 * heraldctl status: domain=, concurrency=, busy=, dead_until= (0: alive)
 * and, when dead, reason= each */
size_t
qmgr_dest_list(struct qmgr *q, struct ipc_msg *reply, size_t max,
    time_t now)
{
	size_t n = 0;

	for (size_t i = 0; i < q->dest_size && n < max; i++) {
		for (struct qmgr_dest *d = q->dest_hash[i];
		     d != NULL && n < max; d = d->next) {
			long long busy = qmgr_deliver_busy(q, d->domain);
			bool dead = d->dead_until != 0 && now < d->dead_until;

			if (!dead && busy == 0 &&
			    d->window == qmgr_dest_initial())
				continue;
			ipc_put_str(reply, IPC_DOMAIN, d->domain);
			ipc_put_int(reply, IPC_CONCURRENCY, d->window);
			ipc_put_int(reply, IPC_BUSY, busy);
			ipc_put_int(reply, IPC_DEAD_UNTIL,
			    dead ? (long long)d->dead_until : 0);
			if (dead)
				ipc_put_str(reply, IPC_REASON, d->reason);
			n++;
		}
	}
	return n;
}
