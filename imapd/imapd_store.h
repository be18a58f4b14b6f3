/*
 * imapd_store - the mail store of a logged-in IMAP session, and the job
 * threads that do the store's work off the event loop.
 *
 * At login (authd said yes) the session's Maildir is resolved through
 * mail_location (as pop3d does) and a job thread opens the per-user
 * index (lib/mail/mindex.h; opening may build it and create folders),
 * creates the special-use folders on the user's first login, and hands
 * the handle back. A worker opens one Maildir's index once and shares
 * it between the sessions of that user (LMDB's rule): the handles are
 * counted and the last session to end closes it.
 *
 * Jobs (DESIGN.md 9: work that grows with a mailbox never runs on the
 * event loop): a command that needs the index fills a struct imapd_job
 * with run (called on a job thread: touch only the job, the index and
 * the file system) and done (called in the loop thread afterwards) and
 * gives it to imapd_store_submit. The session's input is paused and the
 * session is held (never freed) while its job is out; done runs also
 * when the session has closed meanwhile (s->base.closed: then it only
 * frees what the job holds). One job per session at a time.
 */
#ifndef IMAPD_STORE_H
#define IMAPD_STORE_H

#include <stdbool.h>

#include "base/buf.h"
#include "mail/job.h"

struct evloop;
struct mindex;
struct imapd_session;
struct imapd_ixref;

/* the session's input is paused while a job is out (session.pause) */
#define IMAPD_PAUSE_JOB 0x4

/* one piece of work for a job thread (a lib/mail/job.h job) */
struct imapd_job {
	struct job base;	/* owner: the session */
	/* run - on a job thread; ix is the session's index */
	void (*run)(struct imapd_job *job, struct mindex *ix);
	/* done - in the loop thread; must free the job (and its ctx);
	 * may submit the session's next job (input then stays paused) */
	void (*done)(struct imapd_job *job, struct imapd_session *s);
	void *ctx;		/* the command's own state */
	int result;		/* for run to fill in */
	struct buf why;		/* for run to fill in (initialised) */
	/* skippable - when the session ends before a thread took the job,
	 * run is skipped (job_cancel) and done sees s->base.closed; only
	 * for jobs that change nothing a client could be told about (the
	 * rest run: an EXPUNGE the client sent is done) */
	bool skippable;
	/* private */
	struct imapd_session *s;	/* NULL: a folder job */
	struct mindex *ix;
	struct imapd_ixref *held;	/* a folder job's index reference */
};

/* imapd_store_init - start the job threads (worker, after the drop) */
void imapd_store_init(struct evloop *loop);

/* imapd_job_new - a zeroed job with why initialised */
struct imapd_job *imapd_job_new(void);
/* imapd_job_free - free a job (not its ctx) */
void imapd_job_free(struct imapd_job **job);

/* imapd_store_submit - run job for logged-in s (see above) */
void imapd_store_submit(struct imapd_session *s, struct imapd_job *job);
/* imapd_store_submit_folder - run job on the index of s, for no one
 * session: s's input is not paused and s may end meanwhile (the job
 * holds a reference to the index); done is called with s NULL. For work
 * whose result several sessions of one folder take (IDLE's push) */
void imapd_store_submit_folder(struct imapd_session *s,
    struct imapd_job *job);
/* imapd_store_busy - has s a job out (the session is held)? */
bool imapd_store_busy(const struct imapd_session *s);
/* imapd_store_cancel - s has closed: drop its skippable jobs that no
 * thread has started (their done still comes) */
void imapd_store_cancel(const struct imapd_session *s);

/* imapd_store_open - authd said yes to user: resolve the Maildir, open
 * the store on a job thread, then call done(s, ok) in the loop thread
 * (ok false: already logged; the client gets NO from done). False if
 * nothing was started (no Maildir: logged, caller answers NO) */
bool imapd_store_open(struct imapd_session *s, const char *user,
    void (*done)(struct imapd_session *s, bool ok));
/* imapd_store_close - the session ends: drop its index reference */
void imapd_store_close(struct imapd_session *s);

/* imapd_store_index - the session's index (NULL before login) */
struct mindex *imapd_store_index(struct imapd_session *s);
/* imapd_store_path - the session's Maildir ("" before login) */
const char *imapd_store_path(const struct imapd_session *s);
/* imapd_store_user - the logged-in address ("" before login) */
const char *imapd_store_user(const struct imapd_session *s);

/*
 * Mailbox names. A client names mailboxes in modified UTF-7 (IMAP4rev1)
 * or in UTF-8 once it has enabled IMAP4rev2 or UTF8=ACCEPT (RFC 9051
 * 5.1, RFC 6855 3); inside herald they are the UTF-8 names of
 * lib/mail/mutf7.h ("INBOX", "Work.2024"), hierarchy delimiter ".".
 */
#define IMAPD_DELIM '.'

/* imapd_store_set_utf8 - the client enabled UTF8=ACCEPT */
void imapd_store_set_utf8(struct imapd_session *s);
/* imapd_store_utf8 - does s use UTF-8 mailbox names? */
bool imapd_store_utf8(const struct imapd_session *s);
/* imapd_store_name - the checked UTF-8 name of a client's mailbox
 * argument raw[0..n) into out; -1 with why (answer NO [CANNOT]) */
int imapd_store_name(const struct imapd_session *s, const char *raw,
    size_t n, struct buf *out, struct buf *why);
/* imapd_store_client_name - a UTF-8 name as the client sees it
 * (modified UTF-7 unless utf8), appended to out unquoted */
void imapd_store_client_name(bool utf8, const char *name, struct buf *out);
/* imapd_store_write_name - the same as a quoted string (every name
 * herald keeps can be quoted: no CR, LF or NUL) */
void imapd_store_write_name(bool utf8, const char *name, struct buf *out);
/* imapd_store_folder_exists - is the folder there on disk, a real
 * directory and not a link, and so are its cur/ and new/ (job thread:
 * it stats). INBOX exists once the Maildir has cur/ and new/ */
bool imapd_store_folder_exists(const char *maildir, const char *name);

#endif
