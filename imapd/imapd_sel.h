/*
 * imapd_sel - the selected state of an IMAP session (RFC 9051 6.3.2,
 * 6.4): the session's view of its folder (sequence number -> UID, flags,
 * keywords, modseq), kept in step with the index and told to the client
 * as untagged EXISTS / EXPUNGE (VANISHED) / FETCH before tagged answers,
 * and the commands that use it: SELECT, EXAMINE, CLOSE, UNSELECT, CHECK,
 * NOOP, IDLE (imapd_select.c, imapd_idle.c), FETCH (imapd_fetch.c),
 * STORE, EXPUNGE, COPY, MOVE, UID (imapd_store_cmd.c), APPEND
 * (imapd_append.c), and CONDSTORE / QRESYNC (RFC 7162).
 *
 * A session owns its struct imapd_sel (s->sel, made at the first need,
 * freed with the session).
 */
#ifndef IMAPD_SEL_H
#define IMAPD_SEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "mail/mindex.h"

struct imapd_session;
struct imap_cursor;
struct imapd_fetch;
struct evloop;

/* input is paused while a FETCH streams its answer (session.pause) */
#define IMAPD_PAUSE_FETCH 0x8

/* a flag beside the MINDEX_F_* ones, in no view and never stored:
 * \Recent (RFC 3501 2.3.2) for this session, from its claimed UID ranges
 * (imapd_sel.recent, imapd_sel_vflags); only IMAP4rev1 sessions that
 * SELECT claim messages as recent (mindex_claim_recent) */
#define IMAPD_VF_RECENT 0x100

/* UIDs lo..hi-1 */
struct imapd_urange {
	uint32_t lo, hi;
};

struct imapd_listing;

/*
 * The messages of the selected folder, in sequence order. The arrays are
 * either the view's own or, when share is set, those of a listing shared
 * (refcounted) by the sessions of the folder in this worker and by the
 * worker's listing cache: read-only then. Whatever changes them calls
 * imapd_sel_view_own first (copy on write): a session's view diverges
 * only when it must (its own STORE, FETCH setting \Seen); \Recent is
 * kept beside it (imapd_sel.recent) so that it stays shared.
 */
struct imapd_view {
	uint32_t n, cap;
	uint32_t *uid;
	uint32_t *flags;	/* MINDEX_F_* */
	uint32_t *kw;		/* keyword bits */
	uint64_t *modseq;
	struct imapd_listing *share;	/* NULL: the arrays are the view's */
};

struct imapd_sel {
	char *folder;		/* UTF-8 name; NULL: nothing selected */
	bool readonly;		/* EXAMINE */
	bool condstore;		/* CONDSTORE enabled (RFC 7162 3.1) */
	bool qresync;		/* QRESYNC enabled */
	uint32_t uidvalidity, uidnext;
	uint64_t highestmodseq;
	struct imapd_view v;
	struct mindex_stamp stamp;	/* of the view: see mindex_unchanged */
	/* \Recent: the UIDs this session claimed (or, rev1 EXAMINE, saw
	 * unclaimed), ascending, apart, whether in the view yet or not: a
	 * SELECT's claim and those of later syncs and pushes, usually one
	 * range; kept here, not in the view's flags, so that the view
	 * stays shared with the folder's other sessions */
	struct imapd_urange *recent;
	uint32_t nrecent, recentcap;
	char *kwname[MINDEX_KEYWORDS_MAX];	/* the folder's keywords */
	int nkw;

	/* IDLE */
	bool idling;
	struct buf idle_tag;
	int watch;		/* the worker's watch of the folder, or -1 */
	struct imapd_sel *watch_next;	/* sessions on the same watch */
	struct imapd_session *owner;
	/* the session's number in this worker, never reused (an address
	 * can be: a folder job names its \Recent claimer by this) */
	uint64_t id;
	/* every session's record in this worker (imapd_sel_find) */
	struct imapd_sel *all_next, *all_prev;

	struct imapd_fetch *fetch;	/* a FETCH being streamed */

	/* SEARCHRES (RFC 5182): the saved result "$", UIDs ascending */
	uint32_t *saved;
	size_t nsaved;
};

/* imapd_select.c */
/* imapd_sel_get - the session's selected-state record (made if none) */
struct imapd_sel *imapd_sel_get(struct imapd_session *s);
/* imapd_sel_free - the session ends */
void imapd_sel_free(struct imapd_session *s);
/* imapd_sel_view_own - make the view's arrays its own (copied if they
 * are shared) before changing them */
void imapd_sel_view_own(struct imapd_view *v);
/* imapd_sel_write - one response line (CRLF added), any length */
void imapd_sel_write(struct imapd_session *s, const char *p, size_t n);

/* imapd_sel_vanished - VANISHED (EARLIER) lines of UIDs expunged after
 * modseq within known[0..nknown) (none: all), above UID above */
void imapd_sel_vanished(struct imapd_session *s, uint64_t modseq,
    struct imap_range *known, size_t nknown, uint32_t above);
/* imapd_sel_vflags - the flags of view index i as the session sees
 * them: the view's, with IMAPD_VF_RECENT if it claimed the UID */
uint32_t imapd_sel_vflags(const struct imapd_sel *sel, uint32_t i);
/* imapd_sel_flags - "(\Seen kw ...)" of flags (with \Recent for
 * IMAPD_VF_RECENT) and keyword bits */
void imapd_sel_flags(const struct imapd_sel *sel, uint32_t flags,
    uint32_t kw, struct buf *out);
/* imapd_sel_parse_flags - a flag list (cursor after its "(", or paren
 * false: flags up to the end) into flags and keyword names (allocated);
 * -1 with why */
int imapd_sel_parse_flags(struct imap_cursor *c, bool paren,
    uint32_t *flags, char **kw, size_t *nkw, const char **why);
/*
 * imapd_sel_fetch_lines - FETCH answers that need nothing but the view:
 * items names their parts in answer order ('U' "UID u", 'F' "FLAGS
 * (...)", 'M' "MODSEQ (m)"); the CRLF-ended lines of the indices below
 * n (and the view's size) marked in map with a modseq above
 * changedsince, from *next on, are appended to out until it holds max
 * bytes or more, and *next moves past them. No allocation per line: a
 * UID FETCH 1:* (FLAGS) of 100,000 messages is a few dozen calls.
 */
void imapd_sel_fetch_lines(const struct imapd_sel *sel,
    const unsigned char *map, uint32_t n, uint32_t *next,
    uint64_t changedsince, const char *items, struct buf *out, size_t max);
/* imapd_sel_put_stored - the states an own flag change committed
 * (m[j] for uids[j] where rc[j] is 1: mindex_store's results) into the
 * view, copied on write; tell: a FETCH line for each as well */
void imapd_sel_put_stored(struct imapd_session *s, const uint32_t *uids,
    const int *rc, const struct mindex_msg *m, uint32_t n, bool tell);
/* imapd_sel_index - the view index of uid, or -1 */
long imapd_sel_index(const struct imapd_sel *sel, uint32_t uid);
/* imapd_sel_fetch_line - "* n FETCH (UID u FLAGS (...) [MODSEQ (m)])"
 * of view index i: a change told unasked */
void imapd_sel_fetch_line(struct imapd_session *s, uint32_t i);
/* imapd_sel_set - the view indices a sequence set (uid: a UID set)
 * names, as a bitmap of v.n bits; -1 (BAD) for a sequence number out of
 * range */
int imapd_sel_set(const struct imapd_sel *sel, const char *p, size_t n,
    bool uid, unsigned char **map_r);
/* imapd_sel_drop - an own EXPUNGE: the UIDs uids[0..n) (ascending) leave
 * the view and the client is told (EXPUNGE or VANISHED) */
void imapd_sel_drop(struct imapd_session *s, const uint32_t *uids, size_t n);
/* imapd_sel_add - an own APPEND or COPY: the messages m[0..n) (UIDs
 * ascending, above the view's) join the view and the client is told
 * (EXISTS, RECENT); UIDNEXT from the view's stamp */
void imapd_sel_add(struct imapd_session *s, const struct mindex_msg *m,
    size_t n);
/* imapd_sel_added - on a job thread, for imapd_sel_add: the records of
 * the UIDs uids[0..n) (0s skipped) of folder, which the op added, into
 * *m_r (allocated), *n_r of them; -1 if one is missing (another change
 * came: sync) */
int imapd_sel_added(struct mindex *ix, const char *folder,
    const uint32_t *uids, size_t n, struct mindex_msg **m_r, size_t *n_r);
/* imapd_sel_update - sync the folder and tell the client what changed
 * (allow_expunge false: FETCH, STORE, SEARCH, where EXPUNGE must not be
 * sent: then nothing is told if something was expunged) */
void imapd_sel_update(struct imapd_session *s, bool allow_expunge);
/*
 * A command's disk work on a job thread (DESIGN.md 9): run is called
 * there (touch only op and ix), then the selected folder is synced and
 * listed there too; in the loop, before (if set) may say untagged
 * things, then the changes are told (allow_expunge as for
 * imapd_sel_update), then answer gives the tagged answer and frees op
 * (s is NULL when the session is gone: only free).
 *
 * An op that knows its own changes to the selected folder (own: STORE,
 * EXPUNGE, COPY, MOVE, APPEND, FETCH's implicit \Seen) saves the sync
 * and the listing: the view's stamp is checked before run
 * (mindex_unchanged, lenient), run passes done (made for the selected
 * folder) to the index operations, which add what they committed there
 * (nothing: it changed nothing there), or clears own when it cannot
 * tell its changes, and when nothing else changed the folder meanwhile
 * (mindex_stamp_own) before puts them into the view (STORE's flags) and
 * patch (if set) tells the rest (the expunges of EXPUNGE and MOVE, the
 * messages APPEND and COPY added) instead; otherwise the folder is
 * synced and listed as for any op.
 */
struct imapd_sel_op {
	void (*run)(struct imapd_sel_op *op, struct mindex *ix);
	void (*before)(struct imapd_sel_op *op, struct imapd_session *s);
	void (*patch)(struct imapd_sel_op *op, struct imapd_session *s);
	void (*answer)(struct imapd_sel_op *op, struct imapd_session *s);
	bool allow_expunge;
	bool no_sync;		/* nothing to tell (CLOSE is silent) */
	bool own;		/* run tells its changes (above) */
	struct mindex_own done;	/* run: what it committed in the folder */
	int result;		/* for run */
	void *ctx;
};
/* imapd_sel_run_op - run op for s (input waits meanwhile) */
void imapd_sel_run_op(struct imapd_session *s, struct imapd_sel_op *op);
/* imapd_sel_finish - the folder's changes (synced on a job thread,
 * allow_expunge as for imapd_sel_update), then the tagged answer
 * tagged (a static string) */
void imapd_sel_finish(struct imapd_session *s, bool allow_expunge,
    const char *tagged);
/* imapd_sel_push - IDLE: the folder changed: sync on a job thread and
 * tell; false if s has a job out (try again later) */
bool imapd_sel_push(struct imapd_session *s);
/* imapd_sel_push_folder - IDLE: the folder of s (watched as dir, watch
 * number gen) changed: one job on a job thread syncs and lists it (or
 * takes the worker's cached listing), then every session idling on dir
 * takes that listing and is told what changed (imapd_idle_sessions); the
 * job ends with imapd_idle_folder_done(dir, gen). s is one of them,
 * logged in, selected */
void imapd_sel_push_folder(struct imapd_session *s, const char *dir,
    uint64_t gen);
/* imapd_sel_enable - ENABLE of CONDSTORE / QRESYNC: true if name is
 * one of them (newly enabled ones are appended to out) */
bool imapd_sel_enable(struct imapd_session *s, const char *name, size_t n,
    struct buf *out);
/* imapd_sel_capability - capabilities of the selected state */
void imapd_sel_capability(struct buf *out);
/* imapd_sel_condstore - a command used CONDSTORE: enable it */
void imapd_sel_condstore(struct imapd_session *s);
/* imapd_sel_resolve - a mailbox argument to its UTF-8 name; -1 with a
 * BAD/NO already answered */
int imapd_sel_resolve(struct imapd_session *s, struct imap_cursor *c,
    struct buf *name);
/* imapd_sel_folder_dir - the folder's directory in the Maildir */
int imapd_sel_folder_dir(struct imapd_session *s, const char *folder,
    struct buf *out);

/* the commands */
void imapd_sel_select(struct imapd_session *s, struct imap_cursor *c);
void imapd_sel_examine(struct imapd_session *s, struct imap_cursor *c);
void imapd_sel_close(struct imapd_session *s, struct imap_cursor *c);
void imapd_sel_unselect(struct imapd_session *s, struct imap_cursor *c);
void imapd_sel_check(struct imapd_session *s, struct imap_cursor *c);
void imapd_sel_noop(struct imapd_session *s, struct imap_cursor *c);

/* imapd_idle.c */
/* imapd_idle_init - the worker's inotify registry on its loop */
void imapd_idle_init(struct evloop *loop);
void imapd_idle_cmd(struct imapd_session *s, struct imap_cursor *c);
/* imapd_idle_line - a line while idling: true if it was taken (DONE or
 * anything else ends IDLE) */
bool imapd_idle_line(struct imapd_session *s);
/* imapd_idle_stop - forget the session's watch */
void imapd_idle_stop(struct imapd_session *s);
/* imapd_idle_sessions - the sessions idling on the watch of dir (via
 * watch_next), NULL if none */
struct imapd_sel *imapd_idle_sessions(const char *dir);
/* imapd_idle_folder_done - the folder job of dir for the watch
 * numbered gen is back (only that watch's job flag is cleared: the watch
 * may have been removed and made again meanwhile); retry: some sessions
 * were busy and must be pushed again */
void imapd_idle_folder_done(const char *dir, uint64_t gen, bool retry);

/* imapd_fetch.c */
void imapd_fetch_cmd(struct imapd_session *s, struct imap_cursor *c);
void imapd_fetch_uid(struct imapd_session *s, struct imap_cursor *c);
/* imapd_fetch_drained - output went out: stream on */
void imapd_fetch_drained(struct imapd_session *s);
/* imapd_fetch_free - the session ends with a FETCH in progress */
void imapd_fetch_free(struct imapd_session *s);
/* imapd_fetch_parse_items - the FETCH items at c (fuzz target): 0, or
 * -1 with why; the number of items in *n_r */
int imapd_fetch_parse_items(struct imap_cursor *c, int *n_r,
    const char **why);
/* imapd_fetch_crlf - raw p[0..n) with bare LFs as CRLF, skip bytes
 * skipped and at most take kept, made in steps of chunk (fuzz target) */
void imapd_fetch_crlf(const char *p, size_t n, uint64_t skip,
    uint64_t take, size_t chunk, struct buf *out);

/* imapd_store_cmd.c */
void imapd_store_cmd(struct imapd_session *s, struct imap_cursor *c);
void imapd_expunge_cmd(struct imapd_session *s, struct imap_cursor *c);
void imapd_copy_cmd(struct imapd_session *s, struct imap_cursor *c);
void imapd_move_cmd(struct imapd_session *s, struct imap_cursor *c);
void imapd_uid_cmd(struct imapd_session *s, struct imap_cursor *c);

/* imapd_search.c */
void imapd_search_cmd(struct imapd_session *s, struct imap_cursor *c);
void imapd_sort_cmd(struct imapd_session *s, struct imap_cursor *c);
void imapd_thread_cmd(struct imapd_session *s, struct imap_cursor *c);
/* imapd_search_uid - UID SEARCH / SORT / THREAD (t: the word): true if
 * it was one of them */
bool imapd_search_uid(struct imapd_session *s, const char *t, size_t n,
    struct imap_cursor *c);
/* imapd_search_reset - forget the saved result (SELECT, CLOSE, ...) */
void imapd_search_reset(struct imapd_sel *sel);
/* imapd_search_capability - ESEARCH, SEARCHRES, SORT, THREAD, ... */
void imapd_search_capability(struct buf *out);

/* imapd_append.c */
void imapd_append_cmd(struct imapd_session *s, struct imap_cursor *c);
/* imapd_append_limit - APPENDLIMIT: the largest message APPEND takes */
unsigned long long imapd_append_limit(void);
/* imapd_append_spool, _spool_write - the parser's spool hooks for
 * APPEND's message literals (imap_parse.h; ctx is the session) */
int imapd_append_spool(void *ctx, const struct imap_parser *p,
    unsigned long long n, bool literal8);
int imapd_append_spool_write(void *ctx, const char *data, size_t n);
/* imapd_append_spool_error - the tagged answer when the spool failed */
const char *imapd_append_spool_error(const struct imapd_session *s);
/* imapd_append_spool_release - close the command's unused spool files */
void imapd_append_spool_release(struct imapd_session *s);
/* imapd_mailbox_quota_of - the user's quota in bytes (0: none), -1 when
 * the directory cannot say (imapd_mailbox.c; loop thread) */
long long imapd_mailbox_quota_of(const char *user);
/* imapd_append_date - an RFC 9051 date-time into unix seconds; -1 */
int imapd_append_date(const char *p, size_t n, int64_t *t_r);
/* imapd_append_parse_args - the messages of an APPEND after its mailbox
 * name at c (utf8: UTF8=ACCEPT enabled) (fuzz target): how many, or -1
 * with why */
int imapd_append_parse_args(struct imap_cursor *c, bool utf8,
    const char **why);

#endif
