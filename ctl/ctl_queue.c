/*
 * ctl_queue - the queue commands: list, show, delete, hold, release,
 * flush, requeue, and the counts "heraldctl status" prints. list,
 * delete, hold, release, flush and requeue take queue ids or a selection
 * (--all, --sender, --domain: see struct ctl_queue_sel), which is made
 * here from the files and then asked of qmgr one message at a time.
 *
 * list, show and the counts read the spool directly (qfile_read), so
 * they work while herald is stopped. delete, hold, release, flush and
 * requeue go through qmgr, which owns the queue while it runs:
 *
 *   heraldctl -> qmgr (<spool>/private/qmgr), one request per connection,
 *   CTL_QUEUE_TIMEOUT_MS for the reply:
 *     {request=delete, queue_id=QID} -> {status=ok} or
 *         {status=fail, reason=TEXT}
 *     {request=hold, queue_id=QID} / {request=release, queue_id=QID}
 *         -> {status=ok} or {status=fail, reason=TEXT}
 *     {request=flush} -> {status=ok, count=N}
 *     {request=flush, queue_id=QID} -> {status=ok} or
 *         {status=fail, reason=TEXT}; the message's dead destinations
 *         are tried again too
 *     {request=requeue, queue_id=QID} -> {status=ok, state=now|after|
 *         held} or {status=fail, reason=TEXT}: routed anew from the
 *         directory and configuration and tried at once ("after": when
 *         the delivery under way returns; "held": on hold, stays so);
 *         qmgr/qmgr_requeue.c says what that undoes
 *
 * When nobody listens at private/qmgr, delete, hold, release, the flush
 * of named or selected messages and requeue work on the files themselves
 * (nothing else can be working on them, and qmgr keeps no routing or
 * dead destination across a restart); the flush of the whole queue
 * needs a running qmgr.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/ipc.h"
#include "mail/params.h"
#include "mail/qfile.h"
#include "mail/qid.h"
#include "mail/spool.h"
#include "ctl.h"

#define CTL_QUEUE_TIMEOUT_MS 30000
#define CTL_QUEUE_HEADER_MAX 65536

const char *const ctl_queue_count_names[CTL_QUEUE_NCOUNT] = {
	SPOOL_INCOMING, SPOOL_ACTIVE, SPOOL_DEFERRED, SPOOL_HOLD,
	SPOOL_CORRUPT,
};

/* where queue list and show look, in the order a message moves */
static const char *const ctl_queue_folders[] = {
	SPOOL_INCOMING, SPOOL_ACTIVE, SPOOL_DEFERRED, SPOOL_HOLD,
	SPOOL_CORRUPT, NULL,
};

typedef void ctl_queue_fn(const char *folder, const char *path,
    const char *qid, void *ctx);

/* ctl_queue_scan_dir - fn for every queue file in one directory */
static void
ctl_queue_scan_dir(const char *folder, const char *dirpath, ctl_queue_fn *fn,
    void *ctx)
{
	struct buf path = BUF_INIT;
	struct dirent *de;
	DIR *dp;

	if ((dp = opendir(dirpath)) == NULL) {
		if (errno != ENOENT)
			ctl_error("%s: %s", dirpath, strerror(errno));
		return;
	}
	while ((de = readdir(dp)) != NULL) {
		if (!qid_valid(de->d_name))
			continue;
		buf_set(&path, dirpath);
		buf_printf(&path, "/%s", de->d_name);
		fn(folder, buf_cstr(&path), de->d_name, ctx);
	}
	(void)closedir(dp);
	buf_free(&path);
}

/* ctl_queue_scan - fn for every queue file of folder (deferred: hashed) */
static void
ctl_queue_scan(const char *spool, const char *folder, ctl_queue_fn *fn,
    void *ctx)
{
	struct buf dirpath = BUF_INIT, sub = BUF_INIT;
	struct dirent *de;
	DIR *dp;

	buf_printf(&dirpath, "%s/%s", spool, folder);
	if (strcmp(folder, SPOOL_DEFERRED) != 0) {
		ctl_queue_scan_dir(folder, buf_cstr(&dirpath), fn, ctx);
		buf_free(&dirpath);
		return;
	}
	if ((dp = opendir(buf_cstr(&dirpath))) == NULL) {
		if (errno != ENOENT)
			ctl_error("%s: %s", buf_cstr(&dirpath),
			    strerror(errno));
		buf_free(&dirpath);
		return;
	}
	while ((de = readdir(dp)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		buf_set(&sub, buf_cstr(&dirpath));
		buf_printf(&sub, "/%s", de->d_name);
		ctl_queue_scan_dir(folder, buf_cstr(&sub), fn, ctx);
	}
	(void)closedir(dp);
	buf_free(&sub);
	buf_free(&dirpath);
}

/* ctl_queue_count_one - count a file */
static void
ctl_queue_count_one(const char *folder, const char *path, const char *qid,
    void *ctx)
{
	(*(long long *)ctx)++;
}

/* ctl_queue_count - messages per folder */
void
ctl_queue_count(const char *spool, long long counts[CTL_QUEUE_NCOUNT])
{
	for (int i = 0; i < CTL_QUEUE_NCOUNT; i++) {
		counts[i] = 0;
		ctl_queue_scan(spool, ctl_queue_count_names[i],
		    ctl_queue_count_one, &counts[i]);
	}
}

/* one recipient still to be delivered, as queue list shows it */
struct ctl_queue_rcpt {
	char *addr;
	char dsn[16];		/* of the last deferral, or "" */
	char *reason;		/* of the last deferral, or NULL */
	time_t tried;		/* when it was deferred, or 0 */
};

/* one message in queue list */
struct ctl_queue_entry {
	char qid[QID_SIZE];
	const char *folder;
	time_t arrival;
	time_t next;		/* deferred/: next attempt (mtime) */
	long long size;
	char *sender;
	size_t pending, total;
	struct ctl_queue_rcpt *rcpt;	/* the pending ones */
};

struct ctl_queue_listing {
	struct ctl_queue_entry *e;
	size_t n;
	const struct ctl_queue_sel *sel;	/* which ones */
};

/* ctl_queue_open - open and parse one queue file; -1 with why, or -2 if
 * it is gone (qmgr moved it meanwhile) */
static int
ctl_queue_open(const char *path, int *fd_r, struct qfile **qf_r,
    struct buf *why)
{
	int fd;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		if (errno == ENOENT)
			return -2;
		buf_printf(why, "open %s: %s", path, strerror(errno));
		return -1;
	}
	if (qfile_read(fd, qf_r, why) < 0) {
		(void)close(fd);
		return -1;
	}
	*fd_r = fd;
	return 0;
}

/* ctl_queue_notes - the notes of qf (none when they cannot be read) */
static void
ctl_queue_notes(const char *qid, const struct qfile *qf,
    struct qfile_note **notes_r, size_t *n_r)
{
	struct buf why = BUF_INIT;

	if (qfile_notes_read(qf, notes_r, n_r, &why) < 0)
		ctl_error("%s: deferral reasons: %s", qid, buf_cstr(&why));
	buf_free(&why);
}

/* ctl_queue_note_of - recipient idx's note, or NULL */
static const struct qfile_note *
ctl_queue_note_of(const struct qfile_note *notes, size_t n, size_t idx)
{
	for (size_t i = 0; i < n; i++)
		if (notes[i].idx == idx)
			return &notes[i];
	return NULL;
}

/* ctl_queue_safe - s for a terminal: control bytes, DEL and bytes past
 * ASCII as \xNN (queue files hold what remote servers said) */
static const char *
ctl_queue_safe(struct buf *out, const char *s)
{
	buf_reset(out);
	str_printable(out, s, strlen(s), strlen(s));
	return buf_cstr(out);
}

/* ctl_queue_next - when a message in folder is tried next, in words */
static void
ctl_queue_next(struct buf *out, const char *folder, time_t next)
{
	buf_reset(out);
	if (strcmp(folder, SPOOL_DEFERRED) == 0)
		ctl_fmt_time(out, next);
	else if (strcmp(folder, SPOOL_HOLD) == 0)
		buf_puts(out, "on hold");
	else
		buf_puts(out, "now");
}

/* ctl_queue_sender - "<>" for the null sender, else the address */
static const char *
ctl_queue_sender(const char *sender)
{
	return *sender ? sender : "<>";
}

/*
 * What a queue command acts on when no queue ids are named: every message
 * (--all), or those whose sender is --sender ("<>": the null sender) and
 * that have a pending recipient in --domain, both compared without case.
 */
struct ctl_queue_sel {
	bool all;
	const char *sender;
	const char *domain;
};

/* ctl_queue_sel_get - the selection of a's options; -1 (reported) when
 * they make none or do not go together */
static int
ctl_queue_sel_get(const struct ctl_args *a, struct ctl_queue_sel *sel)
{
	sel->all = ctl_args_has(a, "all");
	sel->sender = ctl_args_value(a, "sender");
	sel->domain = ctl_args_value(a, "domain");
	if (sel->all && (sel->sender != NULL || sel->domain != NULL)) {
		ctl_error("--all selects every message: not with --sender "
		    "or --domain");
		return -1;
	}
	if (sel->domain != NULL && (*sel->domain == '\0' ||
	    strchr(sel->domain, '@') != NULL)) {
		ctl_error("--domain %s: a domain name, without '@'",
		    sel->domain);
		return -1;
	}
	return 0;
}

/* ctl_queue_sel_any - does sel select anything by itself? */
static bool
ctl_queue_sel_any(const struct ctl_queue_sel *sel)
{
	return sel->all || sel->sender != NULL || sel->domain != NULL;
}

/* ctl_queue_sel_match - does the message qf belong to sel? */
static bool
ctl_queue_sel_match(const struct ctl_queue_sel *sel, const struct qfile *qf)
{
	if (sel->sender != NULL && strcasecmp(sel->sender,
	    ctl_queue_sender(qf->sender)) != 0)
		return false;
	if (sel->domain == NULL)
		return true;
	for (size_t i = 0; i < qf->nrcpt; i++) {
		const char *at = strrchr(qf->rcpt[i].addr, '@');

		if (qf->rcpt[i].status == QFILE_QUEUED && at != NULL &&
		    strcasecmp(at + 1, sel->domain) == 0)
			return true;
	}
	return false;
}

/* ctl_queue_list_one - read a file for queue list */
static void
ctl_queue_list_one(const char *folder, const char *path, const char *qid,
    void *ctx)
{
	struct ctl_queue_listing *l = ctx;
	struct buf why = BUF_INIT;
	struct ctl_queue_entry *e;
	struct qfile_note *notes;
	struct qfile *qf;
	struct stat st;
	size_t nnotes;
	int fd, r;

	if ((r = ctl_queue_open(path, &fd, &qf, &why)) < 0) {
		if (r == -1)
			ctl_error("%s: %s", qid, buf_cstr(&why));
		buf_free(&why);
		return;
	}
	if (!ctl_queue_sel_match(l->sel, qf)) {
		qfile_free(&qf);
		(void)close(fd);
		buf_free(&why);
		return;
	}
	l->e = xreallocarray(l->e, l->n + 1, sizeof(*l->e));
	e = &l->e[l->n++];
	memset(e, 0, sizeof(*e));
	snprintf(e->qid, sizeof(e->qid), "%s", qid);
	e->folder = folder;
	e->arrival = qf->arrival;
	if (fstat(fd, &st) == 0)
		e->next = st.st_mtime;
	e->size = (long long)qf->body_size;
	e->sender = xstrdup(qf->sender);
	e->pending = qfile_pending(qf);
	e->total = qf->nrcpt;
	e->rcpt = xcalloc(e->pending ? e->pending : 1, sizeof(*e->rcpt));
	ctl_queue_notes(qid, qf, &notes, &nnotes);
	for (size_t i = 0, k = 0; i < qf->nrcpt; i++) {
		const struct qfile_note *nt;

		if (qf->rcpt[i].status != QFILE_QUEUED)
			continue;
		e->rcpt[k].addr = xstrdup(qf->rcpt[i].addr);
		if ((nt = ctl_queue_note_of(notes, nnotes, i)) != NULL) {
			snprintf(e->rcpt[k].dsn, sizeof(e->rcpt[k].dsn), "%s",
			    nt->dsn);
			e->rcpt[k].reason = xstrdup(nt->text);
			e->rcpt[k].tried = nt->when;
		}
		k++;
	}
	qfile_notes_free(&notes, nnotes);
	qfile_free(&qf);
	(void)close(fd);
	buf_free(&why);
}

/* ctl_queue_cmp - by queue id, which sorts by arrival */
static int
ctl_queue_cmp(const void *a, const void *b)
{
	return strcmp(((const struct ctl_queue_entry *)a)->qid,
	    ((const struct ctl_queue_entry *)b)->qid);
}

/* ctl_queue_rcpt_json - one pending recipient */
static void
ctl_queue_rcpt_json(struct ctl_json *j, const struct ctl_queue_rcpt *r)
{
	struct buf when = BUF_INIT;

	ctl_json_open(j, '{');
	ctl_json_kstr(j, "address", r->addr);
	if (r->reason != NULL) {
		ctl_fmt_time(&when, r->tried);
		ctl_json_kstr(j, "deferred_at", buf_cstr(&when));
		ctl_json_kstr(j, "dsn", r->dsn);
		ctl_json_kstr(j, "last_error", r->reason);
	}
	ctl_json_close(j, '}');
	buf_free(&when);
}

/* ctl_queue_list_text - Postfix mailq style: a line per message, then
 * its pending recipients, each deferred one with its last error and
 * next attempt */
static void
ctl_queue_list_text(const struct ctl_queue_listing *l)
{
	struct buf when = BUF_INIT, next = BUF_INIT, safe = BUF_INIT;

	printf("%-*s  %10s  %-20s  %-8s  %s\n", QID_SIZE - 1, "QUEUE_ID",
	    "SIZE", "ARRIVAL", "FOLDER", "SENDER/RECIPIENTS");
	for (size_t i = 0; i < l->n; i++) {
		const struct ctl_queue_entry *e = &l->e[i];

		buf_reset(&when);
		ctl_fmt_time(&when, e->arrival);
		ctl_queue_next(&next, e->folder, e->next);
		printf("%-*s  %10lld  %-20s  %-8s  %s\n", QID_SIZE - 1, e->qid,
		    e->size, buf_cstr(&when), e->folder,
		    ctl_queue_safe(&safe, ctl_queue_sender(e->sender)));
		for (size_t k = 0; k < e->pending; k++) {
			const struct ctl_queue_rcpt *r = &e->rcpt[k];

			printf("    %s: ", ctl_queue_safe(&safe, r->addr));
			if (r->reason == NULL) {
				printf("queued, next attempt %s\n",
				    buf_cstr(&next));
				continue;
			}
			buf_reset(&when);
			ctl_fmt_time(&when, r->tried);
			printf("deferred at %s, next attempt %s\n",
			    buf_cstr(&when), buf_cstr(&next));
			printf("        (%s %s)\n", r->dsn,
			    ctl_queue_safe(&safe, r->reason));
		}
	}
	if (l->n == 0)
		printf("-- queue is empty\n");
	else
		printf("-- %zu message%s\n", l->n, l->n == 1 ? "" : "s");
	buf_free(&when);
	buf_free(&next);
	buf_free(&safe);
}

/* ctl_queue_list_json - the same as an array of objects */
static void
ctl_queue_list_json(const struct ctl_queue_listing *l)
{
	struct buf out = BUF_INIT, when = BUF_INIT;
	struct ctl_json j;

	ctl_json_init(&j, &out);
	ctl_json_open(&j, '[');
	for (size_t i = 0; i < l->n; i++) {
		const struct ctl_queue_entry *e = &l->e[i];

		buf_reset(&when);
		ctl_fmt_time(&when, e->arrival);
		ctl_json_open(&j, '{');
		ctl_json_kstr(&j, "queue_id", e->qid);
		ctl_json_kstr(&j, "folder", e->folder);
		ctl_json_kstr(&j, "arrival", buf_cstr(&when));
		ctl_json_kint(&j, "size", e->size);
		ctl_json_kstr(&j, "sender", e->sender);
		ctl_json_kint(&j, "pending", (long long)e->pending);
		ctl_json_kint(&j, "recipients", (long long)e->total);
		ctl_queue_next(&when, e->folder, e->next);
		ctl_json_kstr(&j, "next_attempt", buf_cstr(&when));
		ctl_json_key(&j, "queued");
		ctl_json_open(&j, '[');
		for (size_t k = 0; k < e->pending; k++)
			ctl_queue_rcpt_json(&j, &e->rcpt[k]);
		ctl_json_close(&j, ']');
		ctl_json_close(&j, '}');
	}
	ctl_json_close(&j, ']');
	ctl_json_print(&out);
	buf_free(&out);
	buf_free(&when);
}

/* ctl_queue_list - every message in the queue, or those selected */
int
ctl_queue_list(struct ctl *ctl, const struct ctl_args *a)
{
	static const char *const folders[] = {SPOOL_INCOMING, SPOOL_ACTIVE,
	    SPOOL_DEFERRED, SPOOL_HOLD, NULL};
	struct ctl_queue_sel sel;
	struct ctl_queue_listing l = {NULL, 0, &sel};

	if (ctl_queue_sel_get(a, &sel) < 0)
		return CTL_EXIT_FAIL;
	for (int i = 0; folders[i] != NULL; i++)
		ctl_queue_scan(var_spool_directory, folders[i],
		    ctl_queue_list_one, &l);
	if (l.n > 0)
		qsort(l.e, l.n, sizeof(*l.e), ctl_queue_cmp);
	if (ctl->json)
		ctl_queue_list_json(&l);
	else
		ctl_queue_list_text(&l);
	for (size_t i = 0; i < l.n; i++) {
		for (size_t k = 0; k < l.e[i].pending; k++) {
			x_free(&l.e[i].rcpt[k].addr);
			x_free(&l.e[i].rcpt[k].reason);
		}
		x_free(&l.e[i].rcpt);
		x_free(&l.e[i].sender);
	}
	x_free(&l.e);
	return CTL_EXIT_OK;
}

/* ctl_queue_find - open the file of qid in whichever folder holds it */
static int
ctl_queue_find(const char *qid, const char **folder_r, struct buf *path)
{
	for (int i = 0; ctl_queue_folders[i] != NULL; i++) {
		struct stat st;

		spool_path(path, var_spool_directory, ctl_queue_folders[i],
		    qid);
		if (lstat(buf_cstr(path), &st) == 0 && S_ISREG(st.st_mode)) {
			*folder_r = ctl_queue_folders[i];
			return 0;
		}
	}
	return -1;
}

/* ctl_queue_headers - the message header (up to the empty line), LF
 * line ends, at most CTL_QUEUE_HEADER_MAX bytes */
static void
ctl_queue_headers(const struct qfile *qf, struct buf *out)
{
	struct buf raw = BUF_INIT;
	off_t size = qf->body_size;
	const char *end;
	ssize_t n;

	if (size > CTL_QUEUE_HEADER_MAX)
		size = CTL_QUEUE_HEADER_MAX;
	buf_reserve(&raw, (size_t)size);
	n = pread(qf->fd, raw.data, (size_t)size, qf->body_off);
	if (n <= 0) {
		buf_free(&raw);
		return;
	}
	raw.len = (size_t)n;
	raw.data[raw.len] = '\0';
	for (const char *p = raw.data; p < raw.data + raw.len; p = end + 1) {
		size_t len;

		if ((end = memchr(p, '\n', raw.len - (size_t)(p - raw.data)))
		    == NULL)
			end = raw.data + raw.len;
		len = (size_t)(end - p);
		if (len > 0 && p[len - 1] == '\r')
			len--;
		if (len == 0)
			break;		/* the empty line: header ends */
		for (size_t i = 0; i < len; i++) {
			unsigned char c = (unsigned char)p[i];

			/* mail is untrusted: no escape sequences */
			buf_putc(out, (c < 0x20 && c != '\t') || c == 0x7f ?
			    '?' : c);
		}
		buf_putc(out, '\n');
	}
	buf_free(&raw);
}

/* ctl_queue_status_name - a recipient's status byte in words */
static const char *
ctl_queue_status_name(char st)
{
	switch (st) {
	case QFILE_QUEUED:
		return "queued";
	case QFILE_DELIVERED:
		return "delivered";
	case QFILE_BOUNCED:
		return "bounced";
	default:
		return "unknown";
	}
}

/* ctl_queue_show_text - the envelope and header for people */
static void
ctl_queue_show_text(const char *qid, const char *folder,
    const struct qfile *qf, const struct stat *st, const char *headers,
    const struct qfile_note *notes, size_t nnotes)
{
	struct buf when = BUF_INIT, safe = BUF_INIT;

	ctl_fmt_time(&when, qf->arrival);
	printf("queue_id: %s\n", qid);
	printf("folder: %s\n", folder);
	printf("arrival: %s\n", buf_cstr(&when));
	ctl_queue_next(&when, folder, st->st_mtime);
	printf("next_attempt: %s\n", buf_cstr(&when));
	printf("size: %lld\n", (long long)qf->body_size);
	printf("sender: %s\n", ctl_queue_safe(&safe,
	    ctl_queue_sender(qf->sender)));
	for (size_t i = 0; i < qf->nattr; i++) {
		printf("%s: ", qf->attrs[i].name);
		printf("%s\n", ctl_queue_safe(&safe, qf->attrs[i].value));
	}
	printf("recipients:\n");
	for (size_t i = 0; i < qf->nrcpt; i++) {
		const struct qfile_note *nt = qf->rcpt[i].status ==
		    QFILE_QUEUED ? ctl_queue_note_of(notes, nnotes, i) : NULL;

		printf("  %s  ", ctl_queue_safe(&safe, qf->rcpt[i].addr));
		if (nt == NULL) {
			printf("%s\n",
			    ctl_queue_status_name(qf->rcpt[i].status));
			continue;
		}
		buf_reset(&when);
		ctl_fmt_time(&when, nt->when);
		printf("deferred at %s%s\n", buf_cstr(&when),
		    qf->rcpt[i].warned ? ", sender warned of the delay" : "");
		printf("    (%s %s)\n", nt->dsn, ctl_queue_safe(&safe,
		    nt->text));
	}
	printf("\n%s", headers);
	buf_free(&when);
	buf_free(&safe);
}

/* ctl_queue_show_json - the same as one object */
static void
ctl_queue_show_json(const char *qid, const char *folder,
    const struct qfile *qf, const struct stat *st, const char *headers,
    const struct qfile_note *notes, size_t nnotes)
{
	struct buf out = BUF_INIT, when = BUF_INIT;
	struct ctl_json j;

	ctl_json_init(&j, &out);
	ctl_json_open(&j, '{');
	ctl_json_kstr(&j, "queue_id", qid);
	ctl_json_kstr(&j, "folder", folder);
	ctl_fmt_time(&when, qf->arrival);
	ctl_json_kstr(&j, "arrival", buf_cstr(&when));
	if (strcmp(folder, SPOOL_DEFERRED) == 0) {
		buf_reset(&when);
		ctl_fmt_time(&when, st->st_mtime);
		ctl_json_kstr(&j, "next_retry", buf_cstr(&when));
	}
	ctl_queue_next(&when, folder, st->st_mtime);
	ctl_json_kstr(&j, "next_attempt", buf_cstr(&when));
	ctl_json_kint(&j, "size", (long long)qf->body_size);
	ctl_json_kstr(&j, "sender", qf->sender);
	ctl_json_key(&j, "attributes");
	ctl_json_open(&j, '{');
	for (size_t i = 0; i < qf->nattr; i++)
		ctl_json_kstr(&j, qf->attrs[i].name, qf->attrs[i].value);
	ctl_json_close(&j, '}');
	ctl_json_key(&j, "recipients");
	ctl_json_open(&j, '[');
	for (size_t i = 0; i < qf->nrcpt; i++) {
		const struct qfile_note *nt = qf->rcpt[i].status ==
		    QFILE_QUEUED ? ctl_queue_note_of(notes, nnotes, i) : NULL;

		ctl_json_open(&j, '{');
		ctl_json_kstr(&j, "address", qf->rcpt[i].addr);
		ctl_json_kstr(&j, "status", nt != NULL ? "deferred" :
		    ctl_queue_status_name(qf->rcpt[i].status));
		ctl_json_kstr(&j, "orcpt", qf->rcpt[i].orcpt);
		ctl_json_kstr(&j, "notify", qf->rcpt[i].notify);
		if (nt != NULL) {
			buf_reset(&when);
			ctl_fmt_time(&when, nt->when);
			ctl_json_kstr(&j, "deferred_at", buf_cstr(&when));
			ctl_json_kstr(&j, "dsn", nt->dsn);
			ctl_json_kstr(&j, "last_error", nt->text);
		}
		if (qf->rcpt[i].status == QFILE_QUEUED)
			ctl_json_kbool(&j, "delay_warned",
			    qf->rcpt[i].warned);
		ctl_json_close(&j, '}');
	}
	ctl_json_close(&j, ']');
	ctl_json_kstr(&j, "headers", headers);
	ctl_json_close(&j, '}');
	ctl_json_print(&out);
	buf_free(&out);
	buf_free(&when);
}

/* ctl_queue_qid - check a queue id operand */
static int
ctl_queue_qid(const char *qid)
{
	if (qid_valid(qid))
		return 0;
	ctl_error("%s: not a queue id", qid);
	return -1;
}

/* ctl_queue_show - one message: envelope, recipients, header */
int
ctl_queue_show(struct ctl *ctl, const struct ctl_args *a)
{
	const char *qid = a->pos[0], *folder = NULL;
	struct buf path = BUF_INIT, why = BUF_INIT, headers = BUF_INIT;
	struct qfile_note *notes = NULL;
	struct qfile *qf = NULL;
	struct stat st;
	size_t nnotes = 0;
	int fd = -1, rc = CTL_EXIT_FAIL, r;

	if (ctl_queue_qid(qid) < 0)
		return CTL_EXIT_FAIL;
	if (ctl_queue_find(qid, &folder, &path) < 0 ||
	    (r = ctl_queue_open(buf_cstr(&path), &fd, &qf, &why)) == -2) {
		ctl_error("%s: no such message in the queue", qid);
		goto out;
	}
	if (r < 0) {
		ctl_error("%s: %s", qid, buf_cstr(&why));
		goto out;
	}
	if (fstat(fd, &st) < 0)
		memset(&st, 0, sizeof(st));
	ctl_queue_headers(qf, &headers);
	ctl_queue_notes(qid, qf, &notes, &nnotes);
	if (ctl->json)
		ctl_queue_show_json(qid, folder, qf, &st, buf_cstr(&headers),
		    notes, nnotes);
	else
		ctl_queue_show_text(qid, folder, qf, &st, buf_cstr(&headers),
		    notes, nnotes);
	qfile_notes_free(&notes, nnotes);
	rc = CTL_EXIT_OK;
out:
	qfile_free(&qf);
	if (fd >= 0)
		(void)close(fd);
	buf_free(&path);
	buf_free(&why);
	buf_free(&headers);
	return rc;
}

/* ctl_queue_qmgr - one request to qmgr */
static int
ctl_queue_qmgr(const struct ipc_msg *req, struct ipc_msg *reply,
    struct buf *why)
{
	struct buf path = BUF_INIT;
	int r;

	spool_socket_path(&path, var_spool_directory, "qmgr");
	r = ctl_call(buf_cstr(&path), req, reply, CTL_QUEUE_TIMEOUT_MS, why);
	buf_free(&path);
	return r;
}

/* ctl_queue_unlink - remove qid from whichever folder holds it */
static int
ctl_queue_unlink(const char *qid)
{
	struct buf path = BUF_INIT;
	int found = 0;

	for (int i = 0; ctl_queue_folders[i] != NULL; i++) {
		spool_path(&path, var_spool_directory, ctl_queue_folders[i],
		    qid);
		if (unlink(buf_cstr(&path)) == 0) {
			found = 1;
		} else if (errno != ENOENT) {
			ctl_error("remove %s: %s", buf_cstr(&path),
			    strerror(errno));
			buf_free(&path);
			return -1;
		}
	}
	buf_free(&path);
	return found;
}

/* ctl_queue_rename - move qid from the first of folders that has it to
 * dst: 1 moved, 0 in none of them, -1 error (reported) */
static int
ctl_queue_rename(const char *qid, const char *const *folders, const char *dst)
{
	struct buf from = BUF_INIT, to = BUF_INIT;
	int ret = 0;

	spool_path(&to, var_spool_directory, dst, qid);
	for (int i = 0; folders[i] != NULL && ret == 0; i++) {
		spool_path(&from, var_spool_directory, folders[i], qid);
		if (rename(buf_cstr(&from), buf_cstr(&to)) == 0) {
			ret = 1;
		} else if (errno != ENOENT) {
			ctl_error("rename %s to %s: %s", buf_cstr(&from),
			    buf_cstr(&to), strerror(errno));
			ret = -1;
		}
	}
	buf_free(&from);
	buf_free(&to);
	return ret;
}

/* ctl_queue_hold_file - hold without qmgr: to hold/ from where it waits */
static int
ctl_queue_hold_file(const char *qid)
{
	static const char *const from[] = {SPOOL_INCOMING, SPOOL_ACTIVE,
	    SPOOL_DEFERRED, SPOOL_HOLD, NULL};

	return ctl_queue_rename(qid, from, SPOOL_HOLD);
}

/* ctl_queue_release_file - release without qmgr: hold/ to incoming/,
 * which qmgr takes first when it starts */
static int
ctl_queue_release_file(const char *qid)
{
	static const char *const from[] = {SPOOL_HOLD, NULL};

	return ctl_queue_rename(qid, from, SPOOL_INCOMING);
}

/* ctl_queue_flush_file - flush without qmgr: the deferred file due now
 * (qmgr takes it when it starts) */
static int
ctl_queue_flush_file(const char *qid)
{
	const time_t t = time(NULL);
	const struct timespec due[2] = {{t, 0}, {t, 0}};
	struct buf path = BUF_INIT;
	int ret = 1;

	spool_path(&path, var_spool_directory, SPOOL_DEFERRED, qid);
	if (utimensat(AT_FDCWD, buf_cstr(&path), due,
	    AT_SYMLINK_NOFOLLOW) < 0) {
		ret = errno == ENOENT ? 0 : -1;
		if (ret < 0)
			ctl_error("%s: %s", buf_cstr(&path), strerror(errno));
	}
	buf_free(&path);
	return ret;
}

/* ctl_queue_requeue_file - requeue without qmgr: a deferred file due
 * now, one in incoming/ or active/ is taken first when qmgr starts and
 * routed then; 2 when it is on hold (it stays) */
static int
ctl_queue_requeue_file(const char *qid)
{
	static const char *const waiting[] = {SPOOL_INCOMING, SPOOL_ACTIVE,
	    NULL};
	struct buf path = BUF_INIT;
	struct stat st;
	int r;

	if ((r = ctl_queue_flush_file(qid)) != 0)
		return r;
	for (int i = 0; waiting[i] != NULL && r == 0; i++) {
		spool_path(&path, var_spool_directory, waiting[i], qid);
		if (lstat(buf_cstr(&path), &st) == 0 && S_ISREG(st.st_mode))
			r = 1;
	}
	spool_path(&path, var_spool_directory, SPOOL_HOLD, qid);
	if (r == 0 && lstat(buf_cstr(&path), &st) == 0 &&
	    S_ISREG(st.st_mode))
		r = 2;
	buf_free(&path);
	return r;
}

/* one request about one message */
struct ctl_queue_op {
	const char *request;		/* to qmgr */
	int (*offline)(const char *);	/* on the files: 1, 0 none, -1;
					   2: held, and it stays so */
	const char *done;		/* printed after "QID: " */
	const char *missing;		/* "no such message ..." */
	const char *const *folders;	/* where a selection looks */
	const char *held;		/* instead of done: qmgr said
					   state=held (or offline 2) */
	const char *after;		/* ... state=after */
};

/*
 * ctl_queue_one - run op on qid: through qmgr while it runs (it owns the
 * queue), else op->offline does it on the files.
 */
static int
ctl_queue_one(const struct ctl_queue_op *op, const char *qid)
{
	const char *done = op->done;
	struct buf why = BUF_INIT;
	struct ipc_msg req, reply;
	int r, rc = CTL_EXIT_FAIL;

	if (ctl_queue_qid(qid) < 0)
		return CTL_EXIT_FAIL;
	ipc_msg_init(&req);
	ipc_msg_init(&reply);
	ipc_put_str(&req, IPC_REQUEST, op->request);
	ipc_put_str(&req, IPC_QUEUE_ID, qid);
	r = ctl_queue_qmgr(&req, &reply, &why);
	if (r == CTL_CALL_NOT_RUNNING) {
		/* nobody owns the queue: do it on the files ourselves */
		if ((r = op->offline(qid)) == 0)
			ctl_error("%s: no such message %s", qid, op->missing);
		else if (r > 0)
			rc = CTL_EXIT_OK;
		if (r == 2 && op->held != NULL)
			done = op->held;
	} else if (r < 0) {
		ctl_error("%s: qmgr: %s", qid, buf_cstr(&why));
	} else {
		const char *st = ipc_get_str(&reply, IPC_STATUS);
		const char *reason = ipc_get_str(&reply, IPC_REASON);
		const char *state = ipc_get_str(&reply, IPC_STATE);

		if (st != NULL && strcmp(st, "ok") == 0)
			rc = CTL_EXIT_OK;
		else
			ctl_error("%s: %s", qid, reason ? reason :
			    "qmgr refused");
		if (state != NULL && strcmp(state, "held") == 0 &&
		    op->held != NULL)
			done = op->held;
		else if (state != NULL && strcmp(state, "after") == 0 &&
		    op->after != NULL)
			done = op->after;
	}
	if (rc == CTL_EXIT_OK)
		printf("%s: %s\n", qid, done);
	ipc_msg_free(&req);
	ipc_msg_free(&reply);
	buf_free(&why);
	return rc;
}

/* the queue ids a selection found */
struct ctl_queue_ids {
	const struct ctl_queue_sel *sel;
	char (*qid)[QID_SIZE];
	size_t n, cap;
};

/* ctl_queue_pick_one - keep qid if its message is selected */
static void
ctl_queue_pick_one(const char *folder, const char *path, const char *qid,
    void *ctx)
{
	struct ctl_queue_ids *ids = ctx;
	struct buf why = BUF_INIT;
	struct qfile *qf;
	int fd, r;

	(void)folder;
	if ((r = ctl_queue_open(path, &fd, &qf, &why)) < 0) {
		if (r == -1)
			ctl_error("%s: %s", qid, buf_cstr(&why));
		buf_free(&why);
		return;
	}
	if (ctl_queue_sel_match(ids->sel, qf)) {
		if (ids->n == ids->cap) {
			/* a queue of 100,000: doubling, not a copy each */
			ids->cap = ids->cap ? 2 * ids->cap : 64;
			ids->qid = xreallocarray(ids->qid, ids->cap,
			    sizeof(*ids->qid));
		}
		snprintf(ids->qid[ids->n++], QID_SIZE, "%s", qid);
	}
	qfile_free(&qf);
	(void)close(fd);
	buf_free(&why);
}

/* ctl_queue_run - op on the messages a names: its queue ids, or what its
 * --all, --sender and --domain select in op's folders */
static int
ctl_queue_run(const struct ctl_queue_op *op, const struct ctl_args *a)
{
	struct ctl_queue_sel sel;
	struct ctl_queue_ids ids = {&sel, NULL, 0, 0};
	size_t done = 0;
	int rc = CTL_EXIT_OK;

	if (ctl_queue_sel_get(a, &sel) < 0)
		return CTL_EXIT_FAIL;
	if (a->npos > 0 && ctl_queue_sel_any(&sel)) {
		ctl_error("name queue ids or select with --all, --sender, "
		    "--domain: not both");
		return CTL_EXIT_FAIL;
	}
	if (a->npos == 0 && !ctl_queue_sel_any(&sel)) {
		ctl_error("which messages? QID..., --all, --sender ADDR or "
		    "--domain DOMAIN");
		return CTL_EXIT_FAIL;
	}
	for (int i = 0; i < a->npos; i++)
		if (ctl_queue_one(op, a->pos[i]) != CTL_EXIT_OK)
			rc = CTL_EXIT_FAIL;
	if (a->npos > 0)
		return rc;
	for (int i = 0; op->folders[i] != NULL; i++)
		ctl_queue_scan(var_spool_directory, op->folders[i],
		    ctl_queue_pick_one, &ids);
	for (size_t i = 0; i < ids.n; i++) {
		if (ctl_queue_one(op, ids.qid[i]) == CTL_EXIT_OK)
			done++;
		else
			rc = CTL_EXIT_FAIL;
	}
	printf("%zu message%s %s\n", done, done == 1 ? "" : "s", op->done);
	x_free(&ids.qid);
	return rc;
}

/* ctl_queue_delete - remove messages */
int
ctl_queue_delete(struct ctl *ctl, const struct ctl_args *a)
{
	static const char *const folders[] = {SPOOL_INCOMING, SPOOL_ACTIVE,
	    SPOOL_DEFERRED, SPOOL_HOLD, NULL};
	static const struct ctl_queue_op op = {"delete", ctl_queue_unlink,
	    "deleted", "in the queue", folders, NULL, NULL};

	return ctl_queue_run(&op, a);
}

/* ctl_queue_hold - keep messages from delivery until released */
int
ctl_queue_hold(struct ctl *ctl, const struct ctl_args *a)
{
	static const char *const folders[] = {SPOOL_INCOMING, SPOOL_ACTIVE,
	    SPOOL_DEFERRED, NULL};
	static const struct ctl_queue_op op = {"hold", ctl_queue_hold_file,
	    "held", "in the queue", folders, NULL, NULL};

	return ctl_queue_run(&op, a);
}

/* ctl_queue_release - deliver held messages now */
int
ctl_queue_release(struct ctl *ctl, const struct ctl_args *a)
{
	static const char *const folders[] = {SPOOL_HOLD, NULL};
	static const struct ctl_queue_op op = {"release",
	    ctl_queue_release_file, "released", "on hold", folders, NULL,
	    NULL};

	return ctl_queue_run(&op, a);
}

/* ctl_queue_requeue - route messages anew and try them now */
int
ctl_queue_requeue(struct ctl *ctl, const struct ctl_args *a)
{
	static const char *const folders[] = {SPOOL_INCOMING, SPOOL_ACTIVE,
	    SPOOL_DEFERRED, SPOOL_HOLD, NULL};
	static const struct ctl_queue_op op = {"requeue",
	    ctl_queue_requeue_file, "requeued", "in the queue", folders,
	    "on hold, stays held (routed anew when released)",
	    "requeued; tried again when the delivery under way returns"};

	return ctl_queue_run(&op, a);
}

/* ctl_queue_flush_all - retry every deferred message now (qmgr's one
 * request) */
static int
ctl_queue_flush_all(void)
{
	struct buf why = BUF_INIT;
	struct ipc_msg req, reply;
	long long count = 0;
	int r, rc = CTL_EXIT_FAIL;

	ipc_msg_init(&req);
	ipc_msg_init(&reply);
	ipc_put_str(&req, IPC_REQUEST, "flush");
	r = ctl_queue_qmgr(&req, &reply, &why);
	if (r == CTL_CALL_NOT_RUNNING) {
		ctl_error("herald is not running");
		rc = CTL_EXIT_NOT_RUNNING;
	} else if (r < 0) {
		ctl_error("flush: qmgr: %s", buf_cstr(&why));
	} else {
		const char *st = ipc_get_str(&reply, IPC_STATUS);
		const char *reason = ipc_get_str(&reply, IPC_REASON);

		if (st != NULL && strcmp(st, "ok") == 0) {
			(void)ipc_get_int(&reply, IPC_COUNT, &count);
			printf("%lld deferred message%s scheduled for delivery\n",
			    count, count == 1 ? "" : "s");
			rc = CTL_EXIT_OK;
		} else {
			ctl_error("flush: %s", reason ? reason :
			    "qmgr refused");
		}
	}
	ipc_msg_free(&req);
	ipc_msg_free(&reply);
	buf_free(&why);
	return rc;
}

/* ctl_queue_flush - retry deferred messages now: every one, or those
 * named or selected */
int
ctl_queue_flush(struct ctl *ctl, const struct ctl_args *a)
{
	static const char *const folders[] = {SPOOL_DEFERRED, NULL};
	static const struct ctl_queue_op op = {"flush", ctl_queue_flush_file,
	    "scheduled for delivery", "deferred", folders, NULL, NULL};

	/* every one (also --all): qmgr's one request */
	if (a->npos == 0 && !ctl_args_has(a, "sender") &&
	    !ctl_args_has(a, "domain"))
		return ctl_queue_flush_all();
	return ctl_queue_run(&op, a);
}
