/*
 * qmgr_schedule_test - retry backoff, per-destination concurrency (its
 * feedback arithmetic, dead domains and their return), and the scans
 * that fill the active set: what is taken from incoming/, active/ and
 * deferred/ (due files only), what is ignored or cleaned, the memory
 * bound, triggers that would schedule twice, flush, hold and release,
 * and the control requests.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/mem.h"
#include "base/test.h"
#include "mail/ipc.h"
#include "mail/params.h"
#include "mail/qfile.h"
#include "mail/qid.h"
#include "mail/spool.h"
#include "qmgr.h"

static char tmpdir[] = "/tmp/herald-qmgr-sched-XXXXXX";
static char spool[300];
static int case_no;

/* fresh - a new empty spool and state per case */
static struct qmgr *
fresh(void)
{
	struct buf why = BUF_INIT;

	snprintf(spool, sizeof(spool), "%s/spool%d", tmpdir, ++case_no);
	if (spool_setup(spool, (uid_t)-1, (gid_t)-1, &why) < 0) {
		fprintf(stderr, "spool_setup: %s\n", why.data);
		exit(1);
	}
	buf_free(&why);
	x_free(&qmgr.hash);
	qmgr_dest_free_all(&qmgr);
	qmgr_state_init(&qmgr, NULL, NULL, spool);
	return &qmgr;
}

/* forget_all - empty the active set (the run queue holds everything) */
static void
forget_all(struct qmgr *q)
{
	struct qmgr_msg *m;

	while ((m = qmgr_run_pop(q)) != NULL)
		qmgr_msg_forget(q, m);
}

/* put - create an empty file folder/name with mtime (0: now) */
static void
put(const char *folder, const char *name, time_t mtime)
{
	char path[600];
	struct timespec ts[2];
	int fd;

	snprintf(path, sizeof(path), "%s/%s/%s", spool, folder, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0) {
		perror(path);
		exit(1);
	}
	if (mtime != 0) {
		ts[0].tv_sec = ts[1].tv_sec = mtime;
		ts[0].tv_nsec = ts[1].tv_nsec = 0;
		(void)futimens(fd, ts);
	}
	close(fd);
}

/* there - does folder/name exist? */
static bool
there(const char *folder, const char *name)
{
	char path[600];

	snprintf(path, sizeof(path), "%s/%s/%s", spool, folder, name);
	return access(path, F_OK) == 0;
}

/* deferred_folder - "deferred/<h>" for a qid */
static const char *
deferred_folder(const char *qid)
{
	static char f[32];

	snprintf(f, sizeof(f), "%s/%c", SPOOL_DEFERRED, qid[QID_LEN - 1]);
	return f;
}

static void
test_backoff(void)
{
	time_t now = 1700000000;

	var_minimal_backoff_time = 300;
	var_maximal_backoff_time = 4000;
	var_maximal_queue_lifetime = 5 * 86400;
	/* young message: the minimum */
	T_EQ_INT(qmgr_backoff(now, now, false), 300);
	T_EQ_INT(qmgr_backoff(now, now - 10, false), 300);
	/* the delay follows the age */
	T_EQ_INT(qmgr_backoff(now, now - 1000, false), 1000);
	/* capped */
	T_EQ_INT(qmgr_backoff(now, now - 86400, false), 4000);
	/* clock went backwards */
	T_EQ_INT(qmgr_backoff(now, now + 50, false), 300);
	/* agent failures: seconds at first, growing with age */
	T_EQ_INT(qmgr_backoff(now, now, true), QMGR_INFRA_MIN_DELAY);
	T_EQ_INT(qmgr_backoff(now, now - 40, true), 10);
	T_EQ_INT(qmgr_backoff(now, now - 86400, true), 300);
	/* never far past the end of the lifetime */
	T_EQ_INT(qmgr_backoff(now, now - 5 * 86400 + 100, false), 101);
	T_EQ_INT(qmgr_backoff(now, now - 6 * 86400, false), 1);
	var_maximal_queue_lifetime = 60;
	T_EQ_INT(qmgr_backoff(now, now - 30, false), 31);
	var_maximal_queue_lifetime = 5 * 86400;
}

/* the defaults: attempts at 0, 5m, 10m, 20m, .. the gap doubling up to
 * maximal_backoff_time (4h), as Postfix's qmgr spaces them */
static void
test_backoff_doubles(void)
{
	time_t arrival = 1700000000, t = arrival;
	long long gaps[12];

	cfg_defaults(params_table);
	T_EQ_INT(var_minimal_backoff_time, 300);
	T_EQ_INT(var_maximal_backoff_time, 4 * 3600);
	for (int i = 0; i < 12; i++) {
		gaps[i] = qmgr_backoff(t, arrival, false);
		t += gaps[i];
	}
	T_EQ_INT(gaps[0], 300);
	T_EQ_INT(gaps[1], 300);
	T_EQ_INT(gaps[2], 600);
	T_EQ_INT(gaps[3], 1200);
	T_EQ_INT(gaps[4], 2400);
	T_EQ_INT(gaps[5], 4800);
	T_EQ_INT(gaps[6], 9600);
	T_EQ_INT(gaps[7], 4 * 3600);	/* would be 19200: capped */
	T_EQ_INT(gaps[11], 4 * 3600);
}

/* dest_window - the window of domain (0: no state) */
static long long
dest_window(struct qmgr *q, const char *domain)
{
	const struct qmgr_dest *d = qmgr_dest_find(q, domain);

	return d != NULL ? d->window : 0;
}

/* positive feedback 1/concurrency: a window's worth of successes adds
 * one, only while the window is not far ahead of what is used, never
 * past remote_destination_concurrency_limit */
static void
test_dest_positive(void)
{
	struct qmgr *q = fresh();
	time_t now = 1700000000;

	cfg_defaults(params_table);
	var_remote_destination_concurrency_limit = 7;
	/* no state: the initial concurrency */
	T_EQ_INT(qmgr_dest_limit(q, "far.test"), 5);
	for (int i = 0; i < 4; i++)
		qmgr_dest_success(q, "far.test", 5, now);
	T_EQ_INT(dest_window(q, "far.test"), 5);
	qmgr_dest_success(q, "FAR.test", 5, now);	/* 5 x 1/5 */
	T_EQ_INT(dest_window(q, "far.test"), 6);
	for (int i = 0; i < 5; i++)
		qmgr_dest_success(q, "far.test", 6, now);
	T_EQ_INT(dest_window(q, "far.test"), 6);	/* 5 x 1/6 */
	qmgr_dest_success(q, "far.test", 6, now);
	T_EQ_INT(dest_window(q, "far.test"), 7);
	/* the limit */
	for (int i = 0; i < 50; i++)
		qmgr_dest_success(q, "far.test", 7, now);
	T_EQ_INT(dest_window(q, "far.test"), 7);
	T_EQ_INT(qmgr_dest_limit(q, "far.test"), 7);
	/* one request out at a time: the window stays near the use */
	var_remote_destination_concurrency_limit = 20;
	for (int i = 0; i < 100; i++)
		qmgr_dest_success(q, "slow.test", 1, now);
	T_EQ_INT(dest_window(q, "slow.test"), 6);	/* < 1 + 5 */
	/* the limit below the initial concurrency */
	var_remote_destination_concurrency_limit = 2;
	T_EQ_INT(qmgr_dest_limit(q, "new.test"), 2);
	T_EQ_INT(qmgr_dest_limit(q, "slow.test"), 2);
	cfg_defaults(params_table);
	qmgr_dest_free_all(q);
}

/* negative feedback: -1 a connection failure, down to 1; from 5 the
 * fourth failure in a row completes a cohort (1/5 + 1/4 + 1/3 + 1/2) and
 * the domain is dead; a success between starts the count again */
static void
test_dest_negative(void)
{
	struct qmgr *q = fresh();
	time_t now = 1700000000;

	cfg_defaults(params_table);
	T_ASSERT(!qmgr_dest_failure(q, "down.test", "4.4.1", "refused", now));
	T_EQ_INT(dest_window(q, "down.test"), 4);
	T_ASSERT(!qmgr_dest_failure(q, "down.test", "4.4.1", "refused", now));
	T_ASSERT(!qmgr_dest_failure(q, "down.test", "4.4.1", "refused", now));
	T_EQ_INT(dest_window(q, "down.test"), 2);
	T_ASSERT(qmgr_dest_dead(q, "down.test", now) == NULL);
	T_ASSERT(qmgr_dest_failure(q, "down.test", "4.4.1", "refused", now));
	T_ASSERT(qmgr_dest_dead(q, "down.test", now) != NULL);
	T_EQ_INT(q->ndead, 1);
	/* replies of requests that were out meanwhile change nothing */
	T_ASSERT(!qmgr_dest_failure(q, "down.test", "4.4.1", "refused", now));
	T_EQ_INT(q->ndead, 1);

	/* fail, fail, succeed: the cohort count starts over */
	T_ASSERT(!qmgr_dest_failure(q, "flaky.test", "4.4.1", "x", now));
	T_ASSERT(!qmgr_dest_failure(q, "flaky.test", "4.4.1", "x", now));
	T_ASSERT(!qmgr_dest_failure(q, "flaky.test", "4.4.1", "x", now));
	T_EQ_INT(dest_window(q, "flaky.test"), 2);
	qmgr_dest_success(q, "flaky.test", 1, now);	/* +1/2 */
	T_EQ_INT(dest_window(q, "flaky.test"), 2);
	qmgr_dest_success(q, "flaky.test", 1, now);
	T_EQ_INT(dest_window(q, "flaky.test"), 3);
	for (int i = 0; i < 2; i++)
		T_ASSERT(!qmgr_dest_failure(q, "flaky.test", "4.4.1", "x",
		    now));
	T_EQ_INT(dest_window(q, "flaky.test"), 1);
	/* 1/3 + 1/2 so far: one at concurrency 1 more is a cohort */
	T_ASSERT(qmgr_dest_failure(q, "flaky.test", "4.4.1", "x", now));

	/* destination_concurrency_failed_cohort_limit = 0: never dead */
	var_destination_concurrency_failed_cohort_limit = 0;
	for (int i = 0; i < 20; i++)
		T_ASSERT(!qmgr_dest_failure(q, "never.test", "4.4.1", "x",
		    now));
	T_EQ_INT(dest_window(q, "never.test"), 1);
	T_ASSERT(qmgr_dest_dead(q, "never.test", now) == NULL);
	/* a limit of 2: twice the failures at concurrency 1 */
	var_destination_concurrency_failed_cohort_limit = 2;
	var_initial_destination_concurrency = 1;
	T_ASSERT(!qmgr_dest_failure(q, "two.test", "4.4.1", "x", now));
	T_ASSERT(qmgr_dest_failure(q, "two.test", "4.4.1", "x", now));
	cfg_defaults(params_table);
	qmgr_dest_free_all(q);
}

/* a dead domain: its reason kept, back after minimal_backoff_time or a
 * flush, at the initial concurrency; its failed cohort is kept, so one
 * more connection failure makes it dead again, and a success keeps it */
static void
test_dest_dead_and_back(void)
{
	struct qmgr *q = fresh();
	time_t now = 1700000000;
	const struct qmgr_dest *d;
	long long n;
	struct buf why = BUF_INIT;

	cfg_defaults(params_table);
	var_initial_destination_concurrency = 1;
	T_ASSERT(qmgr_dest_failure(q, "down.test", "4.4.1",
	    "connect to mx.down.test[192.0.2.1]:25: Connection refused", now));
	T_ASSERT((d = qmgr_dest_dead(q, "Down.Test", now + 299)) != NULL);
	T_EQ_STR(d->dsn, "4.4.1");
	T_EQ_STR(d->reason,
	    "connect to mx.down.test[192.0.2.1]:25: Connection refused");
	T_EQ_INT(d->dead_until, now + 300);
	/* the time is up: tried again */
	T_ASSERT(qmgr_dest_dead(q, "down.test", now + 300) == NULL);
	T_EQ_INT(q->ndead, 0);
	T_EQ_INT(qmgr_dest_limit(q, "down.test"), 1);
	/* still down: dead again at once */
	T_ASSERT(qmgr_dest_failure(q, "down.test", "4.4.1", "again",
	    now + 301));
	T_ASSERT(qmgr_dest_dead(q, "down.test", now + 302) != NULL);
	/* a flush brings every dead one back */
	T_ASSERT(qmgr_dest_failure(q, "gone.test", "4.4.3", "no DNS", now));
	T_EQ_INT(q->ndead, 2);
	T_EQ_INT(qmgr_flush(q, &n, &why), 0);
	T_EQ_INT(q->ndead, 0);
	T_ASSERT(qmgr_dest_dead(q, "down.test", now + 302) == NULL);
	T_ASSERT(qmgr_dest_dead(q, "gone.test", now + 302) == NULL);
	/* up again: a success clears the failures */
	qmgr_dest_success(q, "down.test", 1, now + 303);
	var_initial_destination_concurrency = 5;
	T_ASSERT(!qmgr_dest_failure(q, "down.test", "4.4.1", "blip",
	    now + 304));
	/* the periodic scan forgets domains that are alive and idle, not
	 * the dead ones */
	T_ASSERT(qmgr_dest_failure(q, "gone.test", "4.4.3", "no DNS", now));
	qmgr_dest_prune(q, now + 10);
	T_ASSERT(qmgr_dest_find(q, "down.test") == NULL);
	T_ASSERT(qmgr_dest_find(q, "gone.test") != NULL);
	T_EQ_INT(q->ndest, 1);
	qmgr_dest_prune(q, now + 300);
	T_EQ_INT(q->ndest, 0);
	T_EQ_INT(q->ndead, 0);
	buf_free(&why);
	cfg_defaults(params_table);
	qmgr_dest_free_all(q);
}

static void
test_scan_incoming(void)
{
	struct qmgr *q = fresh();
	char a[QID_SIZE], b[QID_SIZE];
	time_t now = time(NULL);

	qid_new(a);
	qid_new(b);
	put(SPOOL_INCOMING, a, 0);
	put(SPOOL_INCOMING, b, 0);
	put(SPOOL_INCOMING, "not-a-qid", 0);
	put(SPOOL_INCOMING, ".tmp.old", now - 2 * 86400);
	put(SPOOL_INCOMING, ".tmp.young", now - 60);
	T_EQ_INT(qmgr_scan_folder(q, SPOOL_INCOMING, now), 2);
	T_EQ_INT(q->nactive, 2);
	T_ASSERT(there(SPOOL_ACTIVE, a) && there(SPOOL_ACTIVE, b));
	T_ASSERT(!there(SPOOL_INCOMING, a));
	T_ASSERT(there(SPOOL_INCOMING, "not-a-qid"));
	T_ASSERT(!there(SPOOL_INCOMING, ".tmp.old"));
	T_ASSERT(there(SPOOL_INCOMING, ".tmp.young"));
	T_ASSERT(qmgr_msg_find(q, a) != NULL);
	/* both are waiting, in some order, once */
	T_ASSERT(q->run_head != NULL && q->run_head->run_next != NULL &&
	    q->run_head->run_next->run_next == NULL);
	/* a trigger for a message already active does nothing */
	T_EQ_INT(qmgr_activate(q, SPOOL_INCOMING, a), 0);
	T_EQ_INT(q->nactive, 2);
	/* nor does a scan of active/ */
	T_EQ_INT(qmgr_scan_folder(q, SPOOL_ACTIVE, now), 0);
	forget_all(q);
	T_EQ_INT(q->nactive, 0);
}

static void
test_trigger(void)
{
	struct qmgr *q = fresh();
	char a[QID_SIZE];

	qid_new(a);
	/* not there (yet or any more): nothing happens */
	T_EQ_INT(qmgr_activate(q, SPOOL_INCOMING, a), 0);
	put(SPOOL_INCOMING, a, 0);
	T_EQ_INT(qmgr_activate(q, SPOOL_INCOMING, "../../etc/passwd"), 0);
	T_EQ_INT(qmgr_activate(q, SPOOL_INCOMING, a), 1);
	T_ASSERT(there(SPOOL_ACTIVE, a));
	T_EQ_INT(qmgr_activate(q, SPOOL_INCOMING, a), 0);
	forget_all(q);
}

static void
test_scan_deferred(void)
{
	struct qmgr *q = fresh();
	char due[QID_SIZE], later[QID_SIZE];
	time_t now = time(NULL);

	qid_new(due);
	qid_new(later);
	put(deferred_folder(due), due, now - 5);
	put(deferred_folder(later), later, now + 600);
	T_EQ_INT(qmgr_scan_folder(q, SPOOL_DEFERRED, now), 1);
	T_ASSERT(there(SPOOL_ACTIVE, due));
	T_ASSERT(there(deferred_folder(later), later));
	/* the earliest retry to come is remembered */
	T_EQ_INT(q->next_due, now + 600);
	forget_all(q);
}

static void
test_scan_all_order(void)
{
	struct qmgr *q = fresh();
	char a[QID_SIZE], i[QID_SIZE], d[QID_SIZE];
	time_t now = time(NULL);

	qid_new(a);
	qid_new(i);
	qid_new(d);
	put(SPOOL_ACTIVE, a, 0);	/* left by a crash */
	put(SPOOL_INCOMING, i, 0);
	put(deferred_folder(d), d, now);
	qmgr_scan_all(q, now);
	T_EQ_INT(q->nactive, 3);
	/* crash leftovers first, then new mail, then retries */
	T_ASSERT(q->run_head != NULL);
	T_EQ_STR(q->run_head->qid, a);
	T_EQ_STR(q->run_head->run_next->qid, i);
	T_EQ_STR(q->run_tail->qid, d);
	forget_all(q);
}

static void
test_limit(void)
{
	struct qmgr *q = fresh();
	char ids[5][QID_SIZE];
	time_t now = time(NULL);

	q->active_limit = 3;
	for (int k = 0; k < 5; k++) {
		qid_new(ids[k]);
		put(SPOOL_INCOMING, ids[k], 0);
	}
	T_EQ_INT(qmgr_scan_folder(q, SPOOL_INCOMING, now), 3);
	T_EQ_INT(q->nactive, 3);
	/* a trigger cannot go past the bound either */
	for (int k = 0; k < 5; k++)
		T_EQ_INT(qmgr_activate(q, SPOOL_INCOMING, ids[k]), 0);
	/* room again: the next scan takes the rest */
	forget_all(q);
	T_EQ_INT(qmgr_scan_folder(q, SPOOL_INCOMING, now), 2);
	/* the three forgotten ones sit in active/ for the active scan */
	forget_all(q);
	T_EQ_INT(qmgr_scan_folder(q, SPOOL_ACTIVE, now), 3);
	forget_all(q);
}

static void
test_flush(void)
{
	struct qmgr *q = fresh();
	char d1[QID_SIZE], d2[QID_SIZE];
	time_t now = time(NULL);
	long long n = -1;
	struct buf why = BUF_INIT;

	qid_new(d1);
	qid_new(d2);
	put(deferred_folder(d1), d1, now + 3600);
	put(deferred_folder(d2), d2, now + 7200);
	T_EQ_INT(qmgr_scan_folder(q, SPOOL_DEFERRED, now), 0);
	T_EQ_INT(qmgr_flush(q, &n, &why), 0);
	T_EQ_INT(n, 2);
	T_EQ_INT(qmgr_scan_folder(q, SPOOL_DEFERRED, time(NULL)), 2);
	forget_all(q);
	buf_free(&why);
}

/* ctl - one control request; returns qmgr_ctl_request() and the reply
 * as "name=value;..." */
static int
ctl(struct qmgr *q, struct buf *out, const char *request, const char *qid,
    const char *extra)
{
	struct ipc_msg req, reply;
	struct buf why = BUF_INIT;
	const char *name, *value;
	size_t pos = 0;
	int r;

	ipc_msg_init(&req);
	ipc_msg_init(&reply);
	if (request != NULL)
		ipc_put_str(&req, IPC_REQUEST, request);
	if (qid != NULL)
		ipc_put_str(&req, IPC_QUEUE_ID, qid);
	if (extra != NULL)
		ipc_put_str(&req, extra, "1");
	r = qmgr_ctl_request(q, &req, &reply, &why);
	buf_reset(out);
	while (ipc_next(&reply, &pos, &name, &value))
		buf_printf(out, "%s=%s;", name, value);
	ipc_msg_free(&req);
	ipc_msg_free(&reply);
	buf_free(&why);
	return r;
}

static void
test_ctl(void)
{
	struct qmgr *q = fresh();
	struct buf out = BUF_INIT;
	char a[QID_SIZE], b[QID_SIZE], d[QID_SIZE], e[QID_SIZE];

	qid_new(a);
	qid_new(b);
	qid_new(d);
	put(SPOOL_INCOMING, a, 0);
	put(SPOOL_HOLD, b, 0);
	put(deferred_folder(d), d, time(NULL) + 999);

	/* trigger: no reply, message taken */
	T_EQ_INT(ctl(q, &out, "trigger", a, NULL), 0);
	T_EQ_STR(out.data, "");
	T_ASSERT(qmgr_msg_find(q, a) != NULL);
	/* malformed: drop the connection */
	T_EQ_INT(ctl(q, &out, "trigger", "bad/qid", NULL), -1);
	T_EQ_INT(ctl(q, &out, "trigger", NULL, NULL), -1);
	T_EQ_INT(ctl(q, &out, "trigger", a, "extra"), -1);
	T_EQ_INT(ctl(q, &out, NULL, a, NULL), -1);
	T_EQ_INT(ctl(q, &out, "flush", "bad/qid", NULL), -1);
	T_EQ_INT(ctl(q, &out, "flush", a, "extra"), -1);
	/* delete: waiting in memory, in hold/, unknown */
	T_EQ_INT(ctl(q, &out, "delete", a, NULL), 0);
	T_EQ_STR(out.data, "status=ok;");
	T_ASSERT(qmgr_msg_find(q, a) == NULL && !there(SPOOL_ACTIVE, a));
	T_EQ_INT(q->nactive, 0);
	T_EQ_INT(ctl(q, &out, "delete", b, NULL), 0);
	T_EQ_STR(out.data, "status=ok;");
	T_ASSERT(!there(SPOOL_HOLD, b));
	T_EQ_INT(ctl(q, &out, "delete", b, NULL), 0);
	T_EQ_STR(out.data, "status=fail;reason=no such message;");
	/* flush counts the deferred ones */
	T_EQ_INT(ctl(q, &out, "flush", NULL, NULL), 0);
	T_EQ_STR(out.data, "status=ok;count=1;");
	/* flush of one message: only a deferred one */
	T_EQ_INT(ctl(q, &out, "flush", b, NULL), 0);
	T_EQ_STR(out.data, "status=fail;reason=not deferred;");
	qid_new(e);
	put(deferred_folder(e), e, time(NULL) + 999);
	T_EQ_INT(ctl(q, &out, "flush", e, NULL), 0);
	T_EQ_STR(out.data, "status=ok;");
	{
		struct buf path = BUF_INIT;
		struct stat st;

		buf_printf(&path, "%s/%s/%s", spool, deferred_folder(e), e);
		T_EQ_INT(stat(buf_cstr(&path), &st), 0);
		T_ASSERT(st.st_mtime <= time(NULL));	/* due now */
		buf_free(&path);
	}
	/* a request this qmgr does not know */
	T_EQ_INT(ctl(q, &out, "frobnicate", a, NULL), 0);
	T_EQ_STR(out.data, "status=fail;reason=unknown request;");
	buf_free(&out);
}

/* put_msg - a queue file folder/qid to rcpt (pending) and to
 * done@done.test (delivered), with mtime (0: now) */
static void
put_msg(const char *folder, const char *qid, const char *rcpt, time_t mtime)
{
	static const char body[] = "Subject: x\r\n\r\nbody\r\n";
	struct buf why = BUF_INIT, src = BUF_INIT, dst = BUF_INIT;
	struct qfile_writer *w;
	struct qfile *qf;
	struct timespec ts[2];
	int fd;

	if (qfile_writer_new(spool, &w, &why) < 0) {
		fprintf(stderr, "writer: %s\n", why.data);
		exit(1);
	}
	qfile_writer_start(w, time(NULL) - 7200, "s@remote.test");
	qfile_writer_rcpt(w, rcpt, "", "");
	qfile_writer_rcpt(w, "done@done.test", "", "");
	qfile_writer_begin_body(w);
	qfile_writer_body(w, body, strlen(body));
	if (qfile_writer_finish(w, &why) < 0 ||
	    qfile_writer_sync(w, &why) < 0 ||
	    qfile_writer_link(w, qid, &why) < 0) {
		fprintf(stderr, "writer: %s\n", why.data);
		exit(1);
	}
	qfile_writer_free(&w);
	spool_path(&src, spool, SPOOL_INCOMING, qid);
	if ((fd = open(src.data, O_RDWR)) < 0 || qfile_read(fd, &qf,
	    &why) < 0 || qfile_set_status(qf, 1, QFILE_DELIVERED, &why) < 0) {
		fprintf(stderr, "status: %s\n", why.data);
		exit(1);
	}
	qfile_free(&qf);
	if (mtime != 0) {
		ts[0].tv_sec = ts[1].tv_sec = mtime;
		ts[0].tv_nsec = ts[1].tv_nsec = 0;
		(void)futimens(fd, ts);
	}
	close(fd);
	spool_path(&dst, spool, folder, qid);
	if (strcmp(folder, SPOOL_INCOMING) != 0 &&
	    rename(src.data, dst.data) < 0) {
		perror(dst.data);
		exit(1);
	}
	buf_free(&why);
	buf_free(&src);
	buf_free(&dst);
}

/* mtime_of - the mtime of folder/qid, or 0 */
static time_t
mtime_of(const char *folder, const char *qid)
{
	struct buf path = BUF_INIT;
	struct stat st;
	time_t t = 0;

	spool_path(&path, spool, folder, qid);
	if (stat(path.data, &st) == 0)
		t = st.st_mtime;
	buf_free(&path);
	return t;
}

/* requeue: a deferred message due now, its pending recipients' dead
 * domains alive (not those of recipients done, nor others); a held one
 * stays held; one in incoming/ taken at once; the flush of one message
 * revives its domains as well */
static void
test_requeue(void)
{
	static const char *const dead[] = {"down.test", "done.test",
	    "held.test", "new.test", "flushed.test", "other.test", NULL};
	struct qmgr *q = fresh();
	struct buf out = BUF_INIT;
	char a[QID_SIZE], b[QID_SIZE], c[QID_SIZE], e[QID_SIZE], f[QID_SIZE];
	time_t now = time(NULL);

	cfg_defaults(params_table);
	var_initial_destination_concurrency = 1;
	for (int i = 0; dead[i] != NULL; i++)
		T_ASSERT(qmgr_dest_failure(q, dead[i], "4.4.1", "refused",
		    now));
	qid_new(a);
	qid_new(b);
	qid_new(c);
	qid_new(e);
	qid_new(f);
	put_msg(SPOOL_DEFERRED, a, "x@Down.Test", now + 999);
	put_msg(SPOOL_HOLD, b, "y@held.test", 0);
	put_msg(SPOOL_INCOMING, c, "z@new.test", 0);
	put_msg(SPOOL_DEFERRED, f, "w@flushed.test", now + 999);
	/* deferred: due now, its domain alive; the delivered recipient's
	 * domain and others stay dead, the file is not rewritten */
	T_EQ_INT(ctl(q, &out, "requeue", a, NULL), 0);
	T_EQ_STR(out.data, "status=ok;state=now;");
	T_ASSERT(mtime_of(SPOOL_DEFERRED, a) <= time(NULL));
	T_ASSERT(qmgr_dest_dead(q, "down.test", now) == NULL);
	T_ASSERT(qmgr_dest_dead(q, "done.test", now) != NULL);
	T_ASSERT(qmgr_dest_dead(q, "other.test", now) != NULL);
	/* on hold: stays there, and its domain stays dead */
	T_EQ_INT(ctl(q, &out, "requeue", b, NULL), 0);
	T_EQ_STR(out.data, "status=ok;state=held;");
	T_ASSERT(there(SPOOL_HOLD, b));
	T_ASSERT(qmgr_dest_dead(q, "held.test", now) != NULL);
	/* incoming: taken at once; then waiting in the active set */
	T_EQ_INT(ctl(q, &out, "requeue", c, NULL), 0);
	T_EQ_STR(out.data, "status=ok;state=now;");
	T_ASSERT(qmgr_msg_find(q, c) != NULL && there(SPOOL_ACTIVE, c));
	T_ASSERT(qmgr_dest_dead(q, "new.test", now) == NULL);
	T_EQ_INT(ctl(q, &out, "requeue", c, NULL), 0);
	T_EQ_STR(out.data, "status=ok;state=now;");
	/* unknown; malformed */
	T_EQ_INT(ctl(q, &out, "requeue", e, NULL), 0);
	T_EQ_STR(out.data, "status=fail;reason=no such message;");
	T_EQ_INT(ctl(q, &out, "requeue", "bad/qid", NULL), -1);
	T_EQ_INT(ctl(q, &out, "requeue", NULL, NULL), -1);
	T_EQ_INT(ctl(q, &out, "requeue", a, "extra"), -1);
	/* the flush of one message brings its dead domain back too */
	T_EQ_INT(ctl(q, &out, "flush", f, NULL), 0);
	T_EQ_STR(out.data, "status=ok;");
	T_ASSERT(qmgr_dest_dead(q, "flushed.test", now) == NULL);
	T_ASSERT(qmgr_dest_dead(q, "other.test", now) != NULL);
	forget_all(q);
	qmgr_dest_free_all(q);
	cfg_defaults(params_table);
	buf_free(&out);
}

static void
test_hold_release(void)
{
	struct qmgr *q = fresh();
	struct buf out = BUF_INIT;
	char a[QID_SIZE], d[QID_SIZE], x[QID_SIZE];

	qid_new(a);
	qid_new(d);
	qid_new(x);
	put(SPOOL_INCOMING, a, 0);
	put(deferred_folder(d), d, time(NULL) + 999);
	T_EQ_INT(ctl(q, &out, "trigger", a, NULL), 0);
	T_ASSERT(qmgr_msg_find(q, a) != NULL && there(SPOOL_ACTIVE, a));

	/* waiting in the active set: leaves it, file to hold/ */
	T_EQ_INT(ctl(q, &out, "hold", a, NULL), 0);
	T_EQ_STR(out.data, "status=ok;");
	T_ASSERT(qmgr_msg_find(q, a) == NULL && q->nactive == 0);
	T_ASSERT(there(SPOOL_HOLD, a) && !there(SPOOL_ACTIVE, a));
	/* held again: fine; a deferred one; an unknown one */
	T_EQ_INT(ctl(q, &out, "hold", a, NULL), 0);
	T_EQ_STR(out.data, "status=ok;");
	T_EQ_INT(ctl(q, &out, "hold", d, NULL), 0);
	T_ASSERT(there(SPOOL_HOLD, d) && !there(deferred_folder(d), d));
	T_EQ_INT(ctl(q, &out, "hold", x, NULL), 0);
	T_EQ_STR(out.data, "status=fail;reason=no such message;");
	/* scans and flush do not see hold/ */
	qmgr_scan_all(q, time(NULL) + 99999);
	T_EQ_INT(q->nactive, 0);
	T_EQ_INT(ctl(q, &out, "flush", NULL, NULL), 0);
	T_EQ_STR(out.data, "status=ok;count=0;");
	/* release: back into the active set at once */
	T_EQ_INT(ctl(q, &out, "release", d, NULL), 0);
	T_EQ_STR(out.data, "status=ok;");
	T_ASSERT(qmgr_msg_find(q, d) != NULL && there(SPOOL_ACTIVE, d));
	T_ASSERT(!there(SPOOL_HOLD, d));
	T_EQ_INT(ctl(q, &out, "release", d, NULL), 0);
	T_EQ_STR(out.data, "status=fail;reason=no such message on hold;");
	T_EQ_INT(ctl(q, &out, "release", "bad/qid", NULL), -1);
	forget_all(q);
	buf_free(&out);
}

/* the "destinations" control request lists the domains that are dead
 * or off their initial window, not the fresh ones */
static void
test_dest_list(void)
{
	struct qmgr *q = fresh();
	time_t now = time(NULL);
	struct buf out = BUF_INIT, want = BUF_INIT;

	cfg_defaults(params_table);
	var_initial_destination_concurrency = 1;
	qmgr_dest_success(q, "fine.test", 0, now);	/* initial: not listed */
	T_ASSERT(qmgr_dest_failure(q, "down.test", "4.4.1", "refused", now));
	T_EQ_INT(ctl(q, &out, "destinations", NULL, NULL), 0);
	buf_printf(&want, "status=ok;domain=down.test;concurrency=1;busy=0;"
	    "dead_until=%lld;reason=refused;", (long long)now + 300);
	T_EQ_STR(out.data, want.data);
	T_EQ_INT(ctl(q, &out, "destinations", "x", NULL), -1);
	buf_free(&out);
	buf_free(&want);
	cfg_defaults(params_table);
	qmgr_dest_free_all(q);
}

static const struct test_case cases[] = {
	{"backoff", test_backoff},
	{"backoff: the gap doubles from 5m to 4h", test_backoff_doubles},
	{"destination concurrency: positive feedback", test_dest_positive},
	{"destination concurrency: negative feedback, dead",
	    test_dest_negative},
	{"dead destination: suspended, back after backoff or flush",
	    test_dest_dead_and_back},
	{"destinations: what heraldctl status shows", test_dest_list},
	{"hold and release", test_hold_release},
	{"requeue, and the flush of one message", test_requeue},
	{"scan incoming: qids, junk, stale dot-files", test_scan_incoming},
	{"triggers", test_trigger},
	{"scan deferred: due files only", test_scan_deferred},
	{"start scan order", test_scan_all_order},
	{"memory bound", test_limit},
	{"flush", test_flush},
	{"control requests", test_ctl},
	{0},
};

int
main(void)
{
	int r;

	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	cfg_defaults(params_table);
	r = test_run(cases);
	x_free(&qmgr.hash);
	qmgr_dest_free_all(&qmgr);
	test_rm_tree(tmpdir);
	return r;
}
