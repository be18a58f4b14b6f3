/*
 * qmgr - the queue manager's structures and the functions its files share.
 *
 * One qmgr process owns the whole spool. Its memory holds:
 *   - the active set: every queue id whose file sits in active/ under our
 *     control (a hash table, so nothing is scheduled twice), at most
 *     QMGR_ACTIVE_LIMIT of them;
 *   - the run queue: active messages waiting to be opened (no descriptor
 *     is held while a message waits, so 20,000 waiting messages cost a
 *     few MB and no file descriptors);
 *   - open messages: a parsed queue file and one result slot per
 *     recipient, while delivery requests for it are in flight and then
 *     while it finishes: its forward copy is written on a job thread and
 *     its notifications wait for the DKIM signer, off the loop (bounded
 *     by qmgr_open_limit());
 *   - the job queue: delivery requests (one message, up to QMGR_JOB_RCPT
 *     recipients) waiting for a free local agent connection; remote
 *     requests of a domain at its concurrency window wait parked with
 *     the domain (struct qmgr_dest) instead;
 *   - the agent pool: up to var_local_processes persistent connections to
 *     <spool>/private/local, each carrying up to var_local_batch_size
 *     requests, and up to var_remote_processes to <spool>/private/remote,
 *     each carrying one request at a time;
 *   - client connections on the "qmgr" listener (triggers, operator
 *     requests: delete, hold, flush, requeue ...).
 *
 * Files: qmgr.c (main, service callbacks), qmgr_scan.c (queue scans,
 * active set, run queue), qmgr_message.c (open, route, finish a message,
 * backoff), qmgr_deliver.c (agent pool and the delivery protocol),
 * qmgr_bounce.c (RFC 3464 delivery status notifications), qmgr_ctl.c
 * (the "qmgr" listener's protocol), qmgr_dest.c (per-destination
 * concurrency of remote delivery, dead destinations), qmgr_hold.c and
 * qmgr_requeue.c (operator hold, release and requeue).
 */
#ifndef QMGR_QMGR_H
#define QMGR_QMGR_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "base/buf.h"
#include "mail/qid.h"

struct evloop;
struct ev_timer;
struct service;
struct dir;
struct qfile;
struct ipc_msg;
struct job_pool;

#define QMGR_ACTIVE_LIMIT 20000		/* messages in memory at once */
#define QMGR_JOB_RCPT 1000	/* recipients per delivery request: local's
				 * LOCAL_RCPT_MAX, so that a message's local
				 * recipients are one request and local
				 * removes duplicates per message */
#define QMGR_PUMP_BATCH 200		/* messages opened per loop turn */
#define QMGR_REASON_MAX 500		/* bytes of a reason we keep */
#define QMGR_CLIENT_MAX 1024		/* concurrent "qmgr" connections */
#define QMGR_CLIENT_INPUT 65536		/* input bound per client */
#define QMGR_INFRA_MIN_DELAY 2		/* retry after an agent crash */
#define QMGR_DOTFILE_AGE 86400		/* stale incoming/.* files */
#define QMGR_DEST_LIMIT 50000		/* remote domains with state */
#define QMGR_DEST_LIST 100		/* of them in heraldctl status */
#define QMGR_JOB_THREADS 2		/* threads writing forward copies */
#define QMGR_FINISH_MAX 128		/* finishing messages not counted in
					 * nopen (each holds up to 3 fds) */

/* transports a recipient can be routed to */
enum qmgr_transport {
	QMGR_TR_LOCAL,		/* hosted domain: private/local */
	QMGR_TR_REMOTE,		/* the rest: private/remote */
};
#define QMGR_NTR 2		/* transports */

/* what happened to one recipient in this delivery attempt */
struct qmgr_result {
	char status;		/* 0 not attempted, QFILE_QUEUED (deferred),
				   QFILE_DELIVERED, QFILE_BOUNCED */
	bool infra;		/* deferred because the agent failed */
	bool relayed;		/* delivered to a server without DSN */
	bool forward;		/* local: also has alias targets elsewhere */
	const char *relay;	/* "local" or "none", for the log line */
	char dsn[16];		/* enhanced status code "4.3.0" */
	char *reason;		/* text for logs and DSNs (owned) */
};

/* one message in the active set */
struct qmgr_msg {
	char qid[QID_SIZE];
	struct qmgr_msg *hash_next;	/* active set chain */
	struct qmgr_msg *run_prev;	/* run queue links while waiting */
	struct qmgr_msg *run_next;
	bool waiting;		/* on the run queue */
	bool open;		/* fd and qf valid, counted in nopen */
	bool deleted;		/* deleted while a request is out */
	bool held;		/* put on hold while a request is out */
	bool requeue;		/* requeued while a request was out: due
				   again at once when it finishes */
	int fd;			/* active/QID, O_RDONLY, or -1 */
	struct qfile *qf;	/* parsed envelope while open */
	struct qmgr_result *res;	/* one per qf->rcpt while open */
	int jobs;		/* delivery requests not yet answered */
	/* after the last answer (qmgr_message_finish): its forward copy and
	 * notifications are written off the loop's critical path, one
	 * step at a time, before any status is */
	int fin_step;		/* enum qmgr_fin_step; 0: not finishing */
	time_t fin_now;		/* when finishing started */
	int fin_rw;		/* writable fd while deferring, or -1 */
	bool fin_counted;	/* counted in nfinishing, not in nopen */
	size_t *fin_idx;	/* delay warning: recipients marked warned */
	size_t fin_nidx;
};

/* one delivery request: a message and some of its recipients */
struct qmgr_job {
	struct qmgr_msg *msg;
	size_t *idx;		/* recipient indexes, in request order */
	size_t nidx;
	enum qmgr_transport tr;	/* which agents take it */
	unsigned long long seq;	/* submission order */
	struct qmgr_job *next;	/* job queue, or its domain's parked list */
};

/* domains a remote agent may still hold a connection to: the sessions
 * one remote process caches (REMOTE_CACHE_MAX in remote_cache.c) */
#define QMGR_AGENT_RECENT 8

/* one persistent connection to a local delivery agent, carrying up to
 * var_local_batch_size requests at once (answered in order) */
struct qmgr_agent {
	int fd;
	enum qmgr_transport tr;	/* local or remote */
	struct qmgr_job *jobs;	/* requests in flight, oldest first */
	struct qmgr_job *last;	/* the newest: its frame is in out */
	size_t njobs;
	struct buf out;		/* unsent part of the newest request */
	bool fd_passed;		/* its queue file descriptor went out */
	struct buf in;		/* reply bytes (bounded) */
	struct ev_timer *timer;	/* deadline of the oldest request */
	char domain[256];	/* remote: the latest request's domain */
	/* remote: the domains of its latest requests, newest first, as many
	 * as the agent caches connections for (remote_cache.c) */
	char recent[QMGR_AGENT_RECENT][256];
	struct qmgr_agent *next;
};

/* the concurrency state of one remote destination (qmgr_dest.c) */
struct qmgr_dest {
	char domain[256];	/* lowercase */
	int window;		/* requests that may be out at once, >= 1 */
	int success;		/* successes since the window last changed */
	double fail_cohorts;	/* failed cohorts since the last success */
	time_t dead_until;	/* dead: not tried before this; 0: alive */
	char dsn[16];		/* dead: the code of the failure */
	char *reason;		/* dead: the failure's text (owned) */
	/* remote jobs that waited while the domain had its window's worth
	 * of requests out, in submission order (qmgr_deliver.c) */
	struct qmgr_job *park_head;
	struct qmgr_job *park_tail;
	size_t nparked;
	struct qmgr_dest *next;	/* hash chain */
};

/* one connection on the "qmgr" listener */
struct qmgr_client {
	int fd;
	struct buf in;		/* bounded by QMGR_CLIENT_INPUT */
	struct buf out;		/* replies not yet written */
	unsigned events;	/* what the loop watches */
	struct qmgr_client *prev;
	struct qmgr_client *next;
};

/* the queue manager's state (one per process) */
struct qmgr {
	struct service *svc;	/* NULL in unit tests */
	struct evloop *loop;	/* NULL in unit tests */
	const char *spool;	/* var_spool_directory */
	struct dir *dir;	/* opened read-only, lazily */
	/* active set */
	struct qmgr_msg **hash;
	size_t hash_size;	/* power of two */
	size_t nactive;
	size_t active_limit;	/* QMGR_ACTIVE_LIMIT, smaller in tests */
	/* run queue */
	struct qmgr_msg *run_head;
	struct qmgr_msg *run_tail;
	size_t nopen;		/* open messages */
	size_t nfinishing;	/* of the open ones, finishing and not
				 * counted in nopen (QMGR_FINISH_MAX) */
	/* job queue and agent pool */
	struct qmgr_job *job_head[QMGR_NTR];	/* a queue per transport */
	struct qmgr_job *job_tail[QMGR_NTR];
	unsigned long long job_seq;	/* the last job's seq */
	size_t nparked;		/* jobs parked with their domains */
	bool suspend_dirty;	/* a queued remote job may be of a dead
				 * domain: qmgr_deliver_suspended must look */
	struct qmgr_agent *agents;
	int nagents;		/* of every transport */
	int ntr_agents[QMGR_NTR];	/* per transport */
	/* remote destinations' concurrency (qmgr_dest.c) */
	struct qmgr_dest **dest_hash;
	size_t dest_size;	/* power of two, 0 until the first */
	size_t ndest;
	size_t ndead;		/* of them dead now */
	/* clients */
	struct qmgr_client *clients;
	int nclients;
	/* timers */
	struct ev_timer *pump_timer;
	struct ev_timer *scan_timer;	/* every var_queue_scan_interval */
	struct ev_timer *due_timer;	/* the earliest deferred retry */
	time_t next_due;	/* earliest deferred mtime known, 0: none */
	time_t last_due_scan;	/* when deferred/ was last scanned */
	struct job_pool *jobs;	/* forward copies; NULL: on the loop */
	bool stopping;
};

extern struct qmgr qmgr;

/* qmgr_scan.c */
/* qmgr_state_init - empty state for the spool (loop may be NULL) */
void qmgr_state_init(struct qmgr *q, struct service *svc,
    struct evloop *loop, const char *spool);
/* qmgr_msg_find - the active message qid, or NULL */
struct qmgr_msg *qmgr_msg_find(struct qmgr *q, const char *qid);
/* qmgr_activate - move folder/qid (NULL folder: already in active/) into
 * the active set and the run queue; 1 taken, 0 not (gone, already
 * active, set full), -1 error (logged) */
int qmgr_activate(struct qmgr *q, const char *folder, const char *qid);
/* qmgr_msg_forget - drop msg from the active set and free it */
void qmgr_msg_forget(struct qmgr *q, struct qmgr_msg *msg);
/* qmgr_run_pop - the next waiting message, or NULL */
struct qmgr_msg *qmgr_run_pop(struct qmgr *q);
/* qmgr_run_remove - take msg off the run queue */
void qmgr_run_remove(struct qmgr *q, struct qmgr_msg *msg);
/* qmgr_scan_folder - activate the queue files of one folder: incoming/
 * (also cleans stale dot-files), active/, or deferred/ (due ones only);
 * returns how many were taken */
size_t qmgr_scan_folder(struct qmgr *q, const char *folder, time_t now);
/* qmgr_scan_all - active/ (when not full), incoming/, due deferred/ */
void qmgr_scan_all(struct qmgr *q, time_t now);
/* qmgr_flush - make every deferred message due now and every dead
 * destination alive; count to *n_r */
int qmgr_flush(struct qmgr *q, long long *n_r, struct buf *why);
/* qmgr_make_due - deferred/qid due now (its mtime), a scan of deferred/
 * asked for: 1, 0 if it is not in deferred/, -1 with why (what: the
 * operation, for why) */
int qmgr_make_due(struct qmgr *q, const char *qid, const char *what,
    struct buf *why);
/* qmgr_flush_one - the deferred message qid due now and the dead
 * destinations of its pending recipients alive; 1, 0 if it is not
 * deferred, -1 with why */
int qmgr_flush_one(struct qmgr *q, const char *qid, struct buf *why);
/* qmgr_scan_start - periodic scans on the loop */
void qmgr_scan_start(struct qmgr *q);
/* qmgr_scan_due - a deferred file becomes due at t: scan deferred/ then */
void qmgr_scan_due(struct qmgr *q, time_t t);

/* qmgr_message.c */
/* qmgr_pump_request - open waiting messages soon (from the loop) */
void qmgr_pump_request(struct qmgr *q);
/* qmgr_pump - open up to a batch of waiting messages now */
void qmgr_pump(struct qmgr *q);
/* qmgr_open_limit - how many messages may be open at once */
size_t qmgr_open_limit(void);
/* qmgr_message_result - record one recipient's result */
void qmgr_message_result(struct qmgr_msg *msg, size_t idx, char status,
    bool infra, const char *relay, const char *dsn, const char *reason);
/* qmgr_message_job_done - a request finished; the last one finishes msg */
void qmgr_message_job_done(struct qmgr *q, struct qmgr_msg *msg);
/* qmgr_message_finish - write results, bounce, unlink or defer msg (in
 * steps: it may be in the active set, open, a while longer) */
void qmgr_message_finish(struct qmgr *q, struct qmgr_msg *msg);
/* qmgr_message_step - the finishing step of msg that was out is done:
 * take the next */
void qmgr_message_step(struct qmgr *q, struct qmgr_msg *msg);
/* qmgr_backoff - seconds until the next attempt of a message that
 * arrived at arrival; infra: only agent failures deferred it */
long long qmgr_backoff(time_t now, time_t arrival, bool infra);
/* qmgr_delete - operator delete; 0 done (or after the request returns),
 * -1 no such message */
int qmgr_delete(struct qmgr *q, const char *qid);
/* qmgr_route - transport for a recipient; -1 with why (directory) */
int qmgr_route(struct qmgr *q, const char *addr, struct buf *why);

/* qmgr_hold.c */
/* qmgr_hold - operator hold: move qid to hold/ (now, or when its delivery
 * returns); 0, or -1 with why */
int qmgr_hold(struct qmgr *q, const char *qid, struct buf *why);
/* qmgr_release - move hold/qid to incoming/ and activate it; 0, or -1
 * with why */
int qmgr_release(struct qmgr *q, const char *qid, struct buf *why);

/* qmgr_requeue.c */
/* what a requeue did with a message */
enum qmgr_requeue_state {
	QMGR_REQUEUE_NOW,	/* tried at once, routed from scratch */
	QMGR_REQUEUE_AFTER,	/* a delivery is out: when it returns */
	QMGR_REQUEUE_HELD,	/* on hold: stays there */
};
/* qmgr_requeue_revive - every dead destination of qf's pending
 * recipients alive again; how many were dead */
size_t qmgr_requeue_revive(struct qmgr *q, const struct qfile *qf,
    const char *why);
/* qmgr_requeue_revive_file - the same for the file folder/qid (one that
 * cannot be read revives nothing) */
size_t qmgr_requeue_revive_file(struct qmgr *q, const char *folder,
    const char *qid, const char *why);
/* qmgr_requeue - operator requeue of qid (heraldctl queue requeue): its
 * destinations alive, its pending recipients tried at once and routed
 * anew, what it did to *state_r; -1 with why ("no such message") */
int qmgr_requeue(struct qmgr *q, const char *qid,
    enum qmgr_requeue_state *state_r, struct buf *why);

/* qmgr_deliver.c */
/* qmgr_deliver_submit - queue a request for msg's recipients idx[] to
 * the agents of transport tr (remote: all of one domain) */
void qmgr_deliver_submit(struct qmgr *q, struct qmgr_msg *msg,
    const size_t *idx, size_t n, enum qmgr_transport tr);
/* qmgr_deliver_dispatch - hand queued jobs to free agents */
void qmgr_deliver_dispatch(struct qmgr *q);
/* qmgr_deliver_cancel - drop msg's requests that were not sent yet; the
 * message finishes if none is left in flight */
void qmgr_deliver_cancel(struct qmgr *q, struct qmgr_msg *msg);
/* qmgr_deliver_stop - graceful stop: drop idle agents and unsent jobs */
void qmgr_deliver_stop(struct qmgr *q);
/* qmgr_deliver_busy - remote requests for domain out at the agents */
long long qmgr_deliver_busy(const struct qmgr *q, const char *domain);
/* qmgr_deliver_parse_reply - check a reply frame against the request
 * (idx[0..n)) strictly and record every recipient's result in msg;
 * -1 with why on any protocol violation (nothing recorded) */
int qmgr_deliver_parse_reply(const struct ipc_msg *m, struct qmgr_msg *msg,
    const size_t *idx, size_t n, struct buf *why);
/* qmgr_deliver_parse_remote - the same for a remote agent's reply, which
 * may say conn_failed=1 (to *conn_failed_r) before the first recipient,
 * when every recipient is deferred */
int qmgr_deliver_parse_remote(const struct ipc_msg *m, struct qmgr_msg *msg,
    const size_t *idx, size_t n, bool *conn_failed_r, struct buf *why);
/* qmgr_deliver_request - the request frame body for a job */
void qmgr_deliver_request(struct ipc_msg *m, const char *qid,
    const size_t *idx, size_t n);

/* qmgr_forward.c */
/* qmgr_forward - after an attempt: one new queue file, sender rewritten
 * by SRS, for the alias targets in other domains of msg's recipients that
 * local marked forward=1 and that have a final status; recipients whose
 * copy cannot be made are deferred. The copy is written on a job thread
 * (the loop's meanwhile); qmgr_message_step(q, msg) follows, maybe before
 * this returns */
void qmgr_forward(struct qmgr *q, struct qmgr_msg *msg, time_t now);
/* qmgr_forward_return - the address a notification to sender goes to:
 * sender reversed when it is one of our SRS addresses, else sender */
void qmgr_forward_return(struct qmgr *q, const char *sender,
    struct buf *out);

/* qmgr_bounce.c */
/* what a notification reports */
enum qmgr_dsn_kind {
	QMGR_DSN_FAILED,	/* bounced recipients, to the sender */
	QMGR_DSN_DELAYED,	/* a delay warning, to the sender */
	QMGR_DSN_SUCCESS,	/* NOTIFY=SUCCESS deliveries, to the sender */
	QMGR_DSN_POSTMASTER,	/* a failed notification, to postmaster */
};
/* one recipient in a delivery status notification */
struct qmgr_bounce_rcpt {
	const char *addr;
	const char *orcpt;	/* "rfc822;a@b" or "" */
	const char *dsn;	/* "5.1.1" */
	const char *reason;
	const char *action;	/* RFC 3464 Action; NULL: the kind's own */
};
/* qmgr_bounce_wanted - does the sender get a DSN for this message? */
bool qmgr_bounce_wanted(const struct qfile *qf);
/* qmgr_bounce_double - is qf our own notification (null sender, bounce=1),
 * whose failure goes once to the postmaster? */
bool qmgr_bounce_double(const struct qfile *qf);
/* qmgr_bounce_notify - does recipient r's NOTIFY ask for failures? */
bool qmgr_bounce_notify(const char *notify);
/* qmgr_bounce_notify_delay - ... for delay warnings (absent: yes)? */
bool qmgr_bounce_notify_delay(const char *notify);
/* qmgr_bounce_notify_success - ... for success reports? */
bool qmgr_bounce_notify_success(const char *notify);
/* qmgr_bounce_postmaster - the address postmaster notices go to */
void qmgr_bounce_postmaster(struct buf *out);
/* qmgr_bounce_create - write a DSN of kind for qf (the original, open on
 * qf->fd) about rcpt[0..n), to the address to (NULL: qf->sender), as a
 * new file incoming/<qid>, synced and
 * linked, with incoming/ synced; its queue id goes to qid_r. -1 with
 * why. */
int qmgr_bounce_create(const char *spool, const struct qfile *qf,
    const char *to, const char *orig_qid, enum qmgr_dsn_kind kind,
    const struct qmgr_bounce_rcpt *rcpt, size_t n, time_t now,
    char qid_r[QID_SIZE], struct buf *why);
/* qmgr_bounce_fn - a notification from qmgr_bounce_start ended: r 0 with
 * its queue id (incoming/qid, synced and linked, incoming/ synced), -1
 * with why (nothing was queued) */
typedef void qmgr_bounce_fn(void *ctx, int r, const char *qid,
    const char *why);
/* qmgr_bounce_start - qmgr_bounce_create without waiting on loop for the
 * signer (NULL loop: it waits); done is called exactly once, maybe
 * before this returns; qf and rcpt are read only before it returns */
void qmgr_bounce_start(struct evloop *loop, const char *spool,
    const struct qfile *qf, const char *to, const char *orig_qid,
    enum qmgr_dsn_kind kind, const struct qmgr_bounce_rcpt *rcpt, size_t n,
    time_t now, qmgr_bounce_fn *done, void *ctx);
/* qmgr_bounce_date - RFC 5322 date-time of t in local time */
void qmgr_bounce_date(struct buf *out, time_t t);

/* qmgr_dest.c */
/* qmgr_dest_find - the state of domain (any case), or NULL */
struct qmgr_dest *qmgr_dest_find(struct qmgr *q, const char *domain);
/* qmgr_dest_get - the state of domain, made when missing; NULL when the
 * table is full of domains with requests out */
struct qmgr_dest *qmgr_dest_get(struct qmgr *q, const char *domain,
    time_t now);
/* qmgr_dest_limit - remote requests for domain that may be out at once */
long long qmgr_dest_limit(struct qmgr *q, const char *domain);
/* qmgr_dest_dead - domain's state if it is dead at now, else NULL (one
 * whose time is up comes back) */
const struct qmgr_dest *qmgr_dest_dead(struct qmgr *q, const char *domain,
    time_t now);
/* qmgr_dest_success - positive feedback: a request reached a server;
 * busy: requests for domain out, that one included */
void qmgr_dest_success(struct qmgr *q, const char *domain, long long busy,
    time_t now);
/* qmgr_dest_failure - negative feedback: no server took a request; true
 * when that made domain dead */
bool qmgr_dest_failure(struct qmgr *q, const char *domain, const char *dsn,
    const char *reason, time_t now);
/* qmgr_dest_revive_all - every dead domain alive again; how many */
size_t qmgr_dest_revive_all(struct qmgr *q);
/* qmgr_dest_revive_one - domain alive again if it is dead (an operator
 * flush or requeue of a message to it, why in the log); true if it was */
bool qmgr_dest_revive_one(struct qmgr *q, const char *domain,
    const char *why);
/* qmgr_dest_prune - forget the alive domains with nothing out */
void qmgr_dest_prune(struct qmgr *q, time_t now);
/* qmgr_dest_list - up to max domains that are dead, busy or off their
 * initial window, appended to reply (heraldctl status); how many */
size_t qmgr_dest_list(struct qmgr *q, struct ipc_msg *reply, size_t max,
    time_t now);
/* qmgr_dest_free_all - forget every domain */
void qmgr_dest_free_all(struct qmgr *q);

/* qmgr_ctl.c */
/* qmgr_ctl_accept - a new connection on the "qmgr" listener */
void qmgr_ctl_accept(struct qmgr *q, int fd);
/* qmgr_ctl_request - handle one frame; reply (if any) appended to
 * reply; -1 with why if the frame is malformed (drop the connection) */
int qmgr_ctl_request(struct qmgr *q, const struct ipc_msg *req,
    struct ipc_msg *reply, struct buf *why);
/* qmgr_ctl_stop - close every client connection */
void qmgr_ctl_stop(struct qmgr *q);

#endif
