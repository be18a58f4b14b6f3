/*
 * qmgr_scan - queue scans, the active set and the run queue.
 *
 * A message enters the active set by one rename() into active/ (from
 * incoming/ on a trigger or scan, from deferred/ when its retry time,
 * the file's mtime, has come) or, after a crash, by being found in
 * active/ at start. The set is a hash table of queue ids, so a trigger
 * and a scan that see the same file cannot schedule it twice, and it is
 * bounded by active_limit: what does not fit stays where it is until the
 * next scan. Nothing here holds a descriptor: waiting messages are only
 * queue ids on the run queue.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/evloop.h"
#include "base/log.h"
#include "base/mem.h"
#include "mail/params.h"
#include "mail/qid.h"
#include "mail/spool.h"
#include "qmgr.h"

#define QMGR_HASH_INIT 1024

struct qmgr qmgr;

/* qmgr_state_init - empty state for the spool */
void
qmgr_state_init(struct qmgr *q, struct service *svc, struct evloop *loop,
    const char *spool)
{
	memset(q, 0, sizeof(*q));
	q->svc = svc;
	q->loop = loop;
	q->spool = spool;
	q->hash_size = QMGR_HASH_INIT;
	q->hash = xcalloc(q->hash_size, sizeof(*q->hash));
	q->active_limit = QMGR_ACTIVE_LIMIT;
}

/* qmgr_hash - FNV-1a of a queue id */
static size_t
qmgr_hash(const char *qid)
{
	uint32_t h = 2166136261u;

	for (; *qid; qid++) {
		h ^= (unsigned char)*qid;
		h *= 16777619u;
	}
	return h;
}

/* qmgr_hash_grow - double the table when it gets crowded */
static void
qmgr_hash_grow(struct qmgr *q)
{
	size_t nsize = q->hash_size * 2;
	struct qmgr_msg **nh = xcalloc(nsize, sizeof(*nh));

	for (size_t i = 0; i < q->hash_size; i++) {
		struct qmgr_msg *m, *next;

		for (m = q->hash[i]; m != NULL; m = next) {
			size_t b = qmgr_hash(m->qid) & (nsize - 1);

			next = m->hash_next;
			m->hash_next = nh[b];
			nh[b] = m;
		}
	}
	x_free(&q->hash);
	q->hash = nh;
	q->hash_size = nsize;
}

/* qmgr_msg_find - the active message qid, or NULL */
struct qmgr_msg *
qmgr_msg_find(struct qmgr *q, const char *qid)
{
	struct qmgr_msg *m;

	for (m = q->hash[qmgr_hash(qid) & (q->hash_size - 1)]; m != NULL;
	    m = m->hash_next)
		if (strcmp(m->qid, qid) == 0)
			return m;
	return NULL;
}

/* qmgr_run_append - put msg at the end of the run queue */
static void
qmgr_run_append(struct qmgr *q, struct qmgr_msg *msg)
{
	if (msg->waiting)
		msg_panic("qmgr_run_append: %s is already waiting", msg->qid);
	msg->run_next = NULL;
	msg->run_prev = q->run_tail;
	if (q->run_tail != NULL)
		q->run_tail->run_next = msg;
	else
		q->run_head = msg;
	q->run_tail = msg;
	msg->waiting = true;
}

/* qmgr_run_remove - take msg off the run queue */
void
qmgr_run_remove(struct qmgr *q, struct qmgr_msg *msg)
{
	if (!msg->waiting)
		return;
	if (msg->run_prev != NULL)
		msg->run_prev->run_next = msg->run_next;
	else
		q->run_head = msg->run_next;
	if (msg->run_next != NULL)
		msg->run_next->run_prev = msg->run_prev;
	else
		q->run_tail = msg->run_prev;
	msg->run_prev = msg->run_next = NULL;
	msg->waiting = false;
}

/* qmgr_run_pop - the next waiting message, or NULL */
struct qmgr_msg *
qmgr_run_pop(struct qmgr *q)
{
	struct qmgr_msg *msg = q->run_head;

	if (msg != NULL)
		qmgr_run_remove(q, msg);
	return msg;
}

/* qmgr_msg_forget - drop msg from the active set and free it */
void
qmgr_msg_forget(struct qmgr *q, struct qmgr_msg *msg)
{
	struct qmgr_msg **pp;

	if (msg->open || msg->jobs != 0)
		msg_panic("qmgr_msg_forget: %s is still open", msg->qid);
	qmgr_run_remove(q, msg);
	for (pp = &q->hash[qmgr_hash(msg->qid) & (q->hash_size - 1)];
	    *pp != NULL; pp = &(*pp)->hash_next) {
		if (*pp == msg) {
			*pp = msg->hash_next;
			q->nactive--;
			x_free(&msg);
			return;
		}
	}
	msg_panic("qmgr_msg_forget: %s is not in the active set", msg->qid);
}

/* qmgr_activate_path - rename path (NULL: already in active/) into
 * active/qid and add it to the active set and the run queue */
static int
qmgr_activate_path(struct qmgr *q, const char *path, const char *qid)
{
	struct qmgr_msg *msg;
	size_t b;

	if (!qid_valid(qid) || qmgr_msg_find(q, qid) != NULL ||
	    q->nactive >= q->active_limit)
		return 0;
	if (path != NULL) {
		struct buf dst = BUF_INIT;
		int r;

		spool_path(&dst, q->spool, SPOOL_ACTIVE, qid);
		r = rename(path, buf_cstr(&dst));
		if (r < 0 && errno != ENOENT)
			msg_warn("%s: rename %s to %s: %m", qid, path,
			    buf_cstr(&dst));
		buf_free(&dst);
		if (r < 0)
			return errno == ENOENT ? 0 : -1;
	}
	msg = xcalloc(1, sizeof(*msg));
	memcpy(msg->qid, qid, QID_SIZE);
	msg->qid[QID_LEN] = '\0';
	msg->fd = -1;
	msg->fin_rw = -1;
	if (q->nactive + 1 > q->hash_size / 2)
		qmgr_hash_grow(q);
	b = qmgr_hash(msg->qid) & (q->hash_size - 1);
	msg->hash_next = q->hash[b];
	q->hash[b] = msg;
	q->nactive++;
	qmgr_run_append(q, msg);
	qmgr_pump_request(q);
	return 1;
}

/* qmgr_activate - move folder/qid into the active set */
int
qmgr_activate(struct qmgr *q, const char *folder, const char *qid)
{
	struct buf src = BUF_INIT;
	int r;

	if (!qid_valid(qid))
		return 0;
	if (folder == NULL)
		return qmgr_activate_path(q, NULL, qid);
	spool_path(&src, q->spool, folder, qid);
	r = qmgr_activate_path(q, buf_cstr(&src), qid);
	buf_free(&src);
	return r;
}

/* qmgr_scan_dotfile - remove a stale temporary file in incoming/ */
static void
qmgr_scan_dotfile(int dfd, const char *dir, const char *name, time_t now)
{
	struct stat st;

	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISREG(st.st_mode) || st.st_mtime > now - QMGR_DOTFILE_AGE)
		return;
	if (unlinkat(dfd, name, 0) < 0)
		msg_warn("remove stale file %s/%s: %m", dir, name);
	else
		msg_info("removed stale file %s/%s", dir, name);
}

/* qmgr_scan_dir - activate the queue files in one folder: every one, or
 * (due) those whose mtime has come; the earliest later mtime is noted */
static size_t
qmgr_scan_dir(struct qmgr *q, const char *dir, bool incoming, bool active,
    bool due, time_t now)
{
	struct buf path = BUF_INIT;
	struct dirent *de;
	size_t taken = 0;
	DIR *d;

	if ((d = opendir(dir)) == NULL) {
		if (errno != ENOENT)
			msg_warn("scan %s: %m", dir);
		return 0;
	}
	while (q->nactive < q->active_limit && (errno = 0,
	    de = readdir(d)) != NULL) {
		const char *name = de->d_name;

		if (name[0] == '.') {
			if (incoming)
				qmgr_scan_dotfile(dirfd(d), dir, name, now);
			continue;
		}
		if (!qid_valid(name) || qmgr_msg_find(q, name) != NULL)
			continue;
		if (due) {
			struct stat st;

			if (fstatat(dirfd(d), name, &st,
			    AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
				continue;
			if (st.st_mtime > now) {
				if (q->next_due == 0 ||
				    st.st_mtime < q->next_due)
					q->next_due = st.st_mtime;
				continue;
			}
		}
		buf_reset(&path);
		buf_printf(&path, "%s/%s", dir, name);
		if (qmgr_activate_path(q, active ? NULL : buf_cstr(&path),
		    name) > 0)
			taken++;
	}
	if (errno != 0)
		msg_warn("scan %s: %m", dir);
	(void)closedir(d);
	buf_free(&path);
	return taken;
}

/* qmgr_scan_deferred - activate due files in every deferred/<h>/ */
static size_t
qmgr_scan_deferred(struct qmgr *q, time_t now)
{
	struct buf top = BUF_INIT, sub = BUF_INIT;
	struct dirent *de;
	size_t taken = 0;
	DIR *d;

	q->next_due = 0;
	q->last_due_scan = now;
	buf_printf(&top, "%s/%s", q->spool, SPOOL_DEFERRED);
	if ((d = opendir(buf_cstr(&top))) == NULL) {
		if (errno != ENOENT)
			msg_warn("scan %s: %m", buf_cstr(&top));
		buf_free(&top);
		return 0;
	}
	while ((errno = 0, de = readdir(d)) != NULL) {
		struct stat st;

		if (de->d_name[0] == '.')
			continue;
		if (fstatat(dirfd(d), de->d_name, &st,
		    AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
			continue;
		buf_reset(&sub);
		buf_printf(&sub, "%s/%s", buf_cstr(&top), de->d_name);
		taken += qmgr_scan_dir(q, buf_cstr(&sub), false, false, true,
		    now);
	}
	if (errno != 0)
		msg_warn("scan %s: %m", buf_cstr(&top));
	(void)closedir(d);
	buf_free(&top);
	buf_free(&sub);
	return taken;
}

/* qmgr_scan_folder - activate the queue files of one folder */
size_t
qmgr_scan_folder(struct qmgr *q, const char *folder, time_t now)
{
	struct buf dir = BUF_INIT;
	size_t taken;

	if (strcmp(folder, SPOOL_DEFERRED) == 0)
		return qmgr_scan_deferred(q, now);
	buf_printf(&dir, "%s/%s", q->spool, folder);
	taken = qmgr_scan_dir(q, buf_cstr(&dir),
	    strcmp(folder, SPOOL_INCOMING) == 0,
	    strcmp(folder, SPOOL_ACTIVE) == 0, false, now);
	buf_free(&dir);
	return taken;
}

/* qmgr_scan_all - active/, incoming/, due deferred/ */
void
qmgr_scan_all(struct qmgr *q, time_t now)
{
	size_t a, i, d;

	a = qmgr_scan_folder(q, SPOOL_ACTIVE, now);
	i = qmgr_scan_folder(q, SPOOL_INCOMING, now);
	d = qmgr_scan_folder(q, SPOOL_DEFERRED, now);
	if (a + i + d > 0)
		msg_debug("scan: %zu active, %zu incoming, %zu deferred "
		    "taken; %zu in memory", a, i, d, q->nactive);
	if (q->next_due != 0)
		qmgr_scan_due(q, q->next_due);
	qmgr_dest_prune(q, now);
}

/* qmgr_flush - make every deferred message due now, and every dead
 * destination alive */
int
qmgr_flush(struct qmgr *q, long long *n_r, struct buf *why)
{
	struct buf top = BUF_INIT, sub = BUF_INIT;
	struct dirent *de, *fe;
	long long n = 0;
	DIR *d, *s;
	/*
	 * Due "now" by the clock the scans compare with (time()), not the
	 * kernel's file time: with fine-grained file stamps a file touched
	 * with UTIME_NOW can carry a second that time() has not reached
	 * yet, and the scan right after would find it not due.
	 */
	const time_t t = time(NULL);
	const struct timespec due[2] = {{t, 0}, {t, 0}};

	*n_r = 0;
	/* the operator says the far end is back: dead domains are tried */
	(void)qmgr_dest_revive_all(q);
	buf_printf(&top, "%s/%s", q->spool, SPOOL_DEFERRED);
	if ((d = opendir(buf_cstr(&top))) == NULL) {
		buf_printf(why, "open %s: %m", buf_cstr(&top));
		buf_free(&top);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		buf_reset(&sub);
		buf_printf(&sub, "%s/%s", buf_cstr(&top), de->d_name);
		if ((s = opendir(buf_cstr(&sub))) == NULL)
			continue;
		while ((fe = readdir(s)) != NULL) {
			if (!qid_valid(fe->d_name))
				continue;
			if (utimensat(dirfd(s), fe->d_name, due,
			    AT_SYMLINK_NOFOLLOW) < 0) {
				if (errno != ENOENT)
					msg_warn("flush %s/%s: %m",
					    buf_cstr(&sub), fe->d_name);
				continue;
			}
			n++;
		}
		(void)closedir(s);
	}
	(void)closedir(d);
	buf_free(&top);
	buf_free(&sub);
	*n_r = n;
	if (n > 0) {
		msg_info("flush: %lld deferred message(s) due now", n);
		qmgr_scan_due(q, 1);
	}
	return 0;
}

/* qmgr_make_due - see qmgr.h */
int
qmgr_make_due(struct qmgr *q, const char *qid, const char *what,
    struct buf *why)
{
	/* time(), not UTIME_NOW: see qmgr_flush */
	const time_t t = time(NULL);
	const struct timespec due[2] = {{t, 0}, {t, 0}};
	struct buf path = BUF_INIT;
	int rc = 1;

	spool_path(&path, q->spool, SPOOL_DEFERRED, qid);
	if (utimensat(AT_FDCWD, buf_cstr(&path), due,
	    AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			rc = 0;
		else {
			buf_printf(why, "%s %s: %m", what, buf_cstr(&path));
			rc = -1;
		}
	}
	buf_free(&path);
	if (rc == 1)
		qmgr_scan_due(q, 1);
	return rc;
}

/* qmgr_flush_one - the deferred message qid due now, and its dead
 * destinations alive; 0 if it is not deferred, 1 if it is, -1 with why */
int
qmgr_flush_one(struct qmgr *q, const char *qid, struct buf *why)
{
	int rc = qmgr_make_due(q, qid, "flush", why);

	if (rc == 1) {
		struct buf how = BUF_INIT;

		/*
		 * The operator says: try this one now. A dead destination of
		 * its would defer it again without a connection, so it is
		 * alive again, as a flush of the whole queue makes them all.
		 */
		buf_printf(&how, "queue flush of %s", qid);
		(void)qmgr_requeue_revive_file(q, SPOOL_DEFERRED, qid,
		    buf_cstr(&how));
		buf_free(&how);
		msg_info("%s: flush: due now", qid);
	}
	return rc;
}

/* qmgr_scan_timer - the periodic scan */
static long long
qmgr_scan_timer(struct evloop *loop, void *ctx)
{
	struct qmgr *q = ctx;

	if (q->stopping) {
		q->scan_timer = NULL;
		return -1;
	}
	qmgr_scan_all(q, time(NULL));
	return var_queue_scan_interval * 1000;
}

/* qmgr_due_timer - the earliest deferred message is due */
static long long
qmgr_due_timer(struct evloop *loop, void *ctx)
{
	struct qmgr *q = ctx;

	q->due_timer = NULL;
	if (q->stopping)
		return -1;
	(void)qmgr_scan_folder(q, SPOOL_DEFERRED, time(NULL));
	if (q->next_due != 0)
		qmgr_scan_due(q, q->next_due);
	return -1;
}

/* qmgr_scan_due - a deferred file becomes due at t: scan deferred/ then */
void
qmgr_scan_due(struct qmgr *q, time_t t)
{
	time_t now = time(NULL);
	long long ms;

	if (q->next_due == 0 || t < q->next_due)
		q->next_due = t;
	if (q->loop == NULL || q->stopping)
		return;
	/*
	 * Wake up when the earliest retry is due, but scan deferred/ at
	 * most once a second: a large queue with spread-out retry times
	 * would otherwise be scanned over and over.
	 */
	t = q->next_due;
	if (t < q->last_due_scan + 1)
		t = q->last_due_scan + 1;
	ms = t > now ? (long long)(t - now) * 1000 : 0;
	if (q->due_timer == NULL)
		q->due_timer = evloop_add_timer(q->loop, ms, qmgr_due_timer,
		    q);
	else
		evloop_timer_reset(q->loop, q->due_timer, ms);
}

/* qmgr_scan_start - periodic scans on the loop */
void
qmgr_scan_start(struct qmgr *q)
{
	q->scan_timer = evloop_add_timer(q->loop,
	    var_queue_scan_interval * 1000, qmgr_scan_timer, q);
}
