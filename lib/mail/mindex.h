/*
 * mindex - the per-user mail index over a Maildir++ store (DESIGN.md §7):
 * what imapd (and heraldctl, and later pop3d) stand on.
 *
 * The Maildir is the truth. The index is an LMDB environment in
 * <maildir>/herald-index/ (mode 0600, the mail user's) that holds, per
 * folder: UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, uid -> {file name, flags,
 * keywords, modseq, sizes, internal date}, base name -> uid, the UID
 * ranges expunged at each modseq (QRESYNC VANISHED), and cache blobs per
 * message (ENVELOPE, BODYSTRUCTURE, header fields: opaque bytes with a
 * kind tag that lib/mail/mime_imap.c produces).
 *
 * Files: new mail (local writes new/ without a lock) gets its UID at the
 * next sync, in arrival order, and STAYS in new/: the record says so
 * (in_new), and mindex_msg_path is the one place that turns a record
 * into new/name or cur/name. A file in new/ has no flags (the Maildir
 * rule); it moves to cur/ as "base:2,<flags>", keeping its base name (so
 * POP3 UIDLs stay the same), when its flags or keywords change (STORE),
 * when APPEND gives it flags, and COPY/MOVE write their copies into cur/.
 * Not renaming 100,000 files is what makes the first SELECT of a big
 * folder cheap. Another Maildir tool (pop3d, mutt) may move a file from
 * new/ to cur/ under us: the base name is the key, so the next sync finds
 * it there with its UID, and mindex_msg_open and the changes below try
 * cur/"name:2," (what such a tool makes of it) when new/name is gone.
 * Flags are the standard ":2," suffix: D F P R S T, then keywords as
 * letters a-z through the folder's dovecot-keywords file, as Dovecot
 * does, so any Maildir tool still works.
 *
 * Records: version 1 (herald before this change) always meant cur/ and
 * is still read; version 2 adds the place byte and is what is written.
 *
 * UIDs are never reused within a UIDVALIDITY, also after a crash between
 * any two steps: a UID exists only once the LMDB transaction that raised
 * UIDNEXT past it has committed (synchronously), and no UID is given to a
 * caller before that. A file left in new/ or cur/ without a UID by a
 * crash gets a new one at the next sync; a UID committed for a file in
 * new/ is the normal state, not a repair. A rename or unlink done before
 * a crash but not committed is seen by the next sync as a flag change
 * (also a move from new/ to cur/) or an expunge. Every rename into or
 * inside cur/ is done while holding the LMDB write transaction, and a
 * sync reads new/ before cur/ inside it too, so a concurrent herald
 * process (or a tool moving new/ to cur/) can never make a message look
 * expunged.
 *
 * A missing index is built from the Maildir, keeping UIDVALIDITY and UIDs
 * that Dovecot's dovecot-uidlist of the folder gives. An index that LMDB
 * cannot open is moved aside (herald-index.damaged.<time>) and rebuilt the
 * same way. A record that does not decode makes the sync that meets it
 * rebuild that folder (UIDs of sound records stay; a damaged folder
 * record means a new UIDVALIDITY). mindex_reindex rebuilds every folder
 * of a readable index, keeping the UIDs it holds for files still there.
 * A full LMDB map grows (doubling, up to 64 GiB, sparse) and the
 * operation is tried again.
 *
 * Threads and processes: any number of processes may use one Maildir's
 * index at once (LMDB serializes writers). Within a process, open a
 * Maildir's index once (LMDB's rule) and share the handle: its operations
 * are serialized by a mutex inside, so worker threads may call it; never
 * carry a handle across fork(). Everything here blocks on the disk and
 * grows with the folder: imapd calls it from worker threads only.
 *
 * Folder names are the UTF-8 names mutf7_folder_name() returns ("INBOX",
 * "Sent", "Work.2024"); bad names get -1 with why.
 */
#ifndef MAIL_MINDEX_H
#define MAIL_MINDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

struct buf;
struct mindex;

#define MINDEX_DIR "herald-index"	/* beside cur/ new/ tmp/ */
#define MINDEX_NAME_MAX 255		/* file name in new/ or cur/ */
#define MINDEX_CACHE_MAX (256 * 1024)	/* largest cache blob */
#define MINDEX_KEYWORDS_MAX 26		/* a-z, as Dovecot's Maildir */
#define MINDEX_KEYWORD_LEN 64		/* longest keyword name */
#define MINDEX_VANISHED_MAX 10000	/* expunged-range records a folder */
#define MINDEX_OBJID_LEN 33		/* RFC 8474 ids: letter, 32 hex */
#define MINDEX_FOLDER_ID 16		/* random bytes of a MAILBOXID */

/* message flags (the Maildir letter each is stored as) */
#define MINDEX_F_DRAFT 0x01	/* D \Draft */
#define MINDEX_F_FLAGGED 0x02	/* F \Flagged */
#define MINDEX_F_PASSED 0x04	/* P (forwarded; no IMAP system flag) */
#define MINDEX_F_ANSWERED 0x08	/* R \Answered */
#define MINDEX_F_SEEN 0x10	/* S \Seen */
#define MINDEX_F_DELETED 0x20	/* T \Deleted */
#define MINDEX_F_ALL 0x3f

/* special-use of a folder (RFC 6154) */
#define MINDEX_SPECIAL_SENT 0x01
#define MINDEX_SPECIAL_DRAFTS 0x02
#define MINDEX_SPECIAL_TRASH 0x04
#define MINDEX_SPECIAL_JUNK 0x08
#define MINDEX_SPECIAL_ARCHIVE 0x10

/* one message as the index knows it */
struct mindex_msg {
	uint32_t uid;
	uint32_t flags;		/* MINDEX_F_* */
	uint32_t keywords;	/* bit i: keyword i of the folder ('a' + i) */
	uint64_t modseq;	/* last change (RFC 7162) */
	uint64_t size;		/* bytes of the file (LF line ends) */
	uint64_t wsize;		/* with CRLF line ends (RFC822.SIZE) */
	int64_t internaldate;	/* unix seconds */
	char name[MINDEX_NAME_MAX + 1];	/* file name in cur/ or new/ */
	bool in_new;		/* the file is in new/ (no flags, no ":2,") */
};

/* a folder's state */
struct mindex_status {
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
	uint32_t messages;
	uint32_t unseen;	/* without \Seen */
	uint32_t deleted;	/* with \Deleted */
	uint64_t size;		/* sum of wsize */
	uint32_t recent;	/* not yet claimed by a SELECT (\Recent) */
	uint32_t recent_from;	/* the first UID not yet claimed */
	char mailboxid[MINDEX_OBJID_LEN + 1];	/* RFC 8474 MAILBOXID */
};

/* what a sync found */
struct mindex_sync_result {
	uint32_t added;		/* new messages given UIDs */
	uint32_t expunged;	/* files gone */
	uint32_t changed;	/* flags changed by another tool */
	uint32_t moved;		/* files it moved from new/ to cur/ (only
				 * those whose names carry flags) */
};

/* mindex_fault_fn - test hook called at named points of every operation
 * that changes the disk (see mindex.c); NULL outside tests */
typedef void mindex_fault_fn(const char *point);
extern mindex_fault_fn *mindex_fault;
/* mindex_write_commits - write transactions committed by this process
 * (for tests that bound them) */
extern unsigned long mindex_write_commits;

/* mindex_open - open (create if missing) the index of the Maildir at
 * path; a damaged one is moved aside and rebuilt. -1 with why */
int mindex_open(const char *path, struct mindex **ix_r, struct buf *why);
/* mindex_close - close and free (NULL is fine) */
void mindex_close(struct mindex **ix);

/* mindex_sync - bring folder's index in line with its files (see above);
 * the folder must exist. Also removes its tmp/ files older than 36 hours
 * (at most once an hour per folder and process). -1 with why */
int mindex_sync(struct mindex *ix, const char *folder,
    struct mindex_sync_result *r, struct buf *why);
/*
 * A folder's stamp: what tells cheaply (two lstat()s and one record)
 * that a folder has not changed since it was last synced and listed, so
 * that a NOOP or IDLE wakeup need not sync and list it again. Take it
 * with mindex_stamp BEFORE the sync (a change after it moves an mtime),
 * then put the listing's status in with mindex_stamp_status. Directory
 * mtimes have a coarse tick (and a change within the tick of the last
 * one leaves them as they were), so a stamp whose mtimes were less than
 * MINDEX_STAMP_DOUBT old when taken is not trusted: the next check
 * syncs in full. A file system that keeps sub-second mtimes (ext4, xfs,
 * btrfs, tmpfs: stamped from the kernel's clock tick, 1-10 ms) shows it
 * in their nanoseconds; then MINDEX_STAMP_DOUBT_FINE is doubt enough.
 *
 * A sync that moved files itself (new/ to cur/) moved the mtimes of the
 * stamp taken before it: mindex_stamp_after re-reads them, untrusted
 * (another writer's change during the sync is in them too). What is
 * hidden in an untrusted stamp is a change made during the sync or in
 * the clock tick of its mtimes; Dovecot's rule ("delayed refresh") is
 * that such a stamp may still stand for the doubt after it was taken,
 * and the first check after that syncs in full and finds any such
 * change. mindex_unchanged's lenient checks follow it: a client's next
 * command right after a SELECT that moved 100,000 files does not read
 * cur/ again; IDLE's wakeups are strict (a delivery is never hidden).
 */
#define MINDEX_STAMP_DOUBT 2	/* seconds */
#define MINDEX_STAMP_DOUBT_FINE 100000000LL	/* nanoseconds */
struct mindex_stamp {
	struct timespec newt, curt;	/* mtimes of new/ and cur/ */
	struct timespec at;		/* when they were read (real time) */
	uint32_t uidvalidity, uidnext;
	uint64_t highestmodseq;
	bool trusted;
};
/* mindex_stamp - the folder's stamp now into *s; -1 with why */
int mindex_stamp(struct mindex *ix, const char *folder,
    struct mindex_stamp *s, struct buf *why);
/* mindex_stamp_after - after a sync that began with the stamp pre and
 * moved files: the mtimes now into *s (trusted only if pre was and they
 * did not move); -1 with why */
int mindex_stamp_after(struct mindex *ix, const char *folder,
    const struct mindex_stamp *pre, struct mindex_stamp *s,
    struct buf *why);
/* mindex_stamp_spoil - make s hold for no check, lenient or not (the
 * holder has changes still to tell) */
void mindex_stamp_spoil(struct mindex_stamp *s);
/* mindex_stamp_status - the status of the listing made after s was
 * taken into s; a lenient check's doubt runs from now */
void mindex_stamp_status(struct mindex_stamp *s,
    const struct mindex_status *st);
/*
 * What operations through the index did to one folder, for
 * mindex_stamp_own: mindex_own_init names the folder, and each operation
 * given the record adds what it committed there (nothing for another
 * folder). new/ is where others write without the index (local's
 * deliveries, other Maildir tools): an operation that changes it (a
 * file in through APPEND, out by a first flag, an EXPUNGE or a MOVE)
 * reads new/'s mtime right before its first change there and right
 * after its last, so that mindex_stamp_own tells another's change
 * before or after them from the operation's own; one in between hides
 * behind them (for the doubt only: see there).
 */
struct mindex_own {
	const char *folder;	/* the folder (the caller's string) */
	uint64_t writes;	/* modseqs committed there */
	uint32_t added;		/* UIDs committed there (UIDNEXT moved) */
	uint32_t newdir;	/* files put into or taken out of new/ */
	bool lost;		/* new/'s mtime could not be read */
	struct timespec new_before;	/* new/'s mtime before the first */
	struct timespec new_after;	/* and after the last */
};
/* mindex_own_init - an empty record about folder */
void mindex_own_init(struct mindex_own *own, const char *folder);
/*
 * mindex_stamp_own - operations that changed the folder through the
 * index (own: what they did) for the holder of the stamp s, which held
 * when they began (mindex_unchanged): 1 when nothing else changed the
 * folder meanwhile that the stamp can show: UIDVALIDITY the same,
 * UIDNEXT s's plus own's added, HIGHESTMODSEQ s's plus own's writes
 * (another herald process's change always moves one of them), and new/
 * as s saw it when the operations began and as they left it (or as s
 * saw it, when they did not change it); the stamp now is in *post, and
 * the holder may put the changes into its view instead of a sync and a
 * listing. *post is untrusted (another tool's change in cur/ during the
 * operations or in the tick of its mtime, or in new/ between their
 * first and last change there, is hidden) and stands for a lenient
 * check for the doubt from when it was read, or from s's if s was
 * untrusted already; the first check after that syncs. 0: sync (also
 * when own holds no change); -1 with why.
 */
int mindex_stamp_own(struct mindex *ix, const char *folder,
    const struct mindex_stamp *s, const struct mindex_own *own,
    struct mindex_stamp *post, struct buf *why);
/* mindex_stamp_same - do a and b record the same folder state (mtimes,
 * UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ; their trust is not compared)? */
bool mindex_stamp_same(const struct mindex_stamp *a,
    const struct mindex_stamp *b);
/* mindex_unchanged - true when the folder's stamp now is the same as s
 * and s is trusted, or (lenient) was taken less than the doubt ago;
 * false when in doubt: sync and list */
bool mindex_unchanged(struct mindex *ix, const char *folder,
    const struct mindex_stamp *s, bool lenient);

/* mindex_status - the folder's state as last synced; -1 with why */
int mindex_status(struct mindex *ix, const char *folder,
    struct mindex_status *st, struct buf *why);

/* mindex_msg_fn - one message of a listing; nonzero stops it */
typedef int mindex_msg_fn(const struct mindex_msg *m, void *ctx);
/* mindex_list - messages with lo <= uid <= hi in UID order; -1 with why
 * (also for a damaged record: "reindex") */
int mindex_list(struct mindex *ix, const char *folder, uint32_t lo,
    uint32_t hi, mindex_msg_fn *fn, void *ctx, struct buf *why);
/*
 * mindex_snapshot - mindex_status and mindex_list of the whole folder in
 * one read transaction and one walk (what SELECT needs); -1 with why
 */
int mindex_snapshot(struct mindex *ix, const char *folder,
    struct mindex_status *st, mindex_msg_fn *fn, void *ctx, struct buf *why);
/*
 * mindex_claim_recent - \Recent (RFC 3501 2.3.2): a SELECT that listed
 * the folder up to (not including) UID upto claims the messages nobody
 * has claimed yet: [*lo_r, *hi_r) are this session's \Recent ones (an
 * empty range when another session was first), and no later claim gets
 * them. Atomic between processes (one write transaction, only when
 * there is something to claim). -1 with why.
 */
int mindex_claim_recent(struct mindex *ix, const char *folder, uint32_t upto,
    uint32_t *lo_r, uint32_t *hi_r, struct buf *why);
/* mindex_recent_from - the first UID no SELECT has claimed yet (what
 * EXAMINE shows as \Recent), from the folder record alone; -1 with why */
int mindex_recent_from(struct mindex *ix, const char *folder,
    uint32_t *from_r, struct buf *why);
/* mindex_get - one message: 1 found, 0 not, -1 with why */
int mindex_get(struct mindex *ix, const char *folder, uint32_t uid,
    struct mindex_msg *m, struct buf *why);

enum mindex_store_mode { MINDEX_SET, MINDEX_ADD, MINDEX_REMOVE };

/*
 * mindex_store - change the flags and keywords (names, nkw of them;
 * unknown ones are added to the folder, at most MINDEX_KEYWORDS_MAX) of
 * message uid: the file's ":2," suffix is renamed, then the index gets a
 * new modseq. unchangedsince (RFC 7162; 0: none): a message changed later
 * is left alone. 1 changed (*m_r the new state if m_r), 0 nothing to
 * change or gone, 2 refused by unchangedsince, -1 with why.
 */
int mindex_store(struct mindex *ix, const char *folder, uint32_t uid,
    enum mindex_store_mode mode, uint32_t flags, const char *const *kw,
    size_t nkw, uint64_t unchangedsince, struct mindex_msg *m_r,
    struct buf *why);

/*
 * mindex_store_uids - mindex_store on each of uids[0..n) in ONE index
 * transaction (one commit, one fsync): each file is renamed, then its
 * record written, and the commit comes after the last rename, so a crash
 * in between leaves renames that the next sync takes as flag changes.
 * rc_r[i] gets what mindex_store would return for uids[i] (1, 0, 2) and
 * m_r[i] (if m_r) its new state when 1; own (if not NULL) gets what
 * was committed (mindex_own). -1 with why: nothing of the batch is
 * committed.
 */
int mindex_store_uids(struct mindex *ix, const char *folder,
    const uint32_t *uids, size_t n, enum mindex_store_mode mode,
    uint32_t flags, const char *const *kw, size_t nkw,
    uint64_t unchangedsince, int *rc_r, struct mindex_msg *m_r,
    struct mindex_own *own, struct buf *why);

/* mindex_keywords - the folder's keyword names, in letter order, each
 * followed by '\n', into out (from dovecot-keywords); -1 with why */
int mindex_keywords(struct mindex *ix, const char *folder, struct buf *out,
    struct buf *why);

/* mindex_expunge - remove the messages uids[0..n) (uids NULL: every one
 * with \Deleted), files first; *count_r expunged if not NULL, own as
 * for mindex_store_uids. -1 with why */
int mindex_expunge(struct mindex *ix, const char *folder,
    const uint32_t *uids, size_t n, uint32_t *count_r,
    struct mindex_own *own, struct buf *why);

/* mindex_vanished_fn - UIDs lo..hi expunged at modseq */
typedef void mindex_vanished_fn(uint32_t lo, uint32_t hi, uint64_t modseq,
    void *ctx);
/*
 * mindex_vanished - the ranges expunged after modseq since (QRESYNC).
 * The history is bounded (MINDEX_VANISHED_MAX records a folder, the
 * oldest half pruned when it fills): 1 when since is older than what is
 * kept, and the caller must take every UID below UIDNEXT that is not in
 * the folder as vanished (RFC 7162 allows that); 0 when complete; -1
 * with why.
 */
int mindex_vanished(struct mindex *ix, const char *folder, uint64_t since,
    mindex_vanished_fn *fn, void *ctx, struct buf *why);

/*
 * mindex_append - store size bytes from offset 0 of fd (CRLF becomes LF
 * as local does) in folder with flags and keywords and internal date
 * (0: now): written to tmp/ and synced, linked into new/, then moved to
 * cur/ with its flags when its UID is committed. *uid_r and
 * *uidvalidity_r for APPENDUID; own as for mindex_store_uids. -1 with
 * why (errno kept: ENOSPC, EDQUOT).
 */
int mindex_append(struct mindex *ix, const char *folder, int fd, off_t size,
    uint32_t flags, const char *const *kw, size_t nkw, int64_t internaldate,
    uint32_t *uid_r, uint32_t *uidvalidity_r, struct mindex_own *own,
    struct buf *why);
/* mindex_append_mem - mindex_append of the n bytes at p: written once,
 * straight into tmp/ */
int mindex_append_mem(struct mindex *ix, const char *folder, const char *p,
    size_t n, uint32_t flags, const char *const *kw, size_t nkw,
    int64_t internaldate, uint32_t *uid_r, uint32_t *uidvalidity_r,
    struct mindex_own *own, struct buf *why);

/*
 * mindex_copy - copy (move: then expunge from src) the messages
 * uids[0..n) of src into dst, hard-linked under new base names (copied
 * where links fail), with their flags and keywords. dst_uids[i] gets the
 * new UID of uids[i] (0: that message was gone); *uidvalidity_r dst's
 * UIDVALIDITY (COPYUID); own as for mindex_store_uids (dst's UIDs, or
 * src's expunges). -1 with why.
 */
int mindex_copy(struct mindex *ix, const char *src, const char *dst,
    const uint32_t *uids, size_t n, bool move, uint32_t *dst_uids,
    uint32_t *uidvalidity_r, struct mindex_own *own, struct buf *why);

/* cache kinds (the blobs' producers are in lib/mail/mime_imap.c; other
 * kinds may be added, 0 is never used) */
#define MINDEX_CACHE_ENVELOPE 1		/* FETCH ENVELOPE text */
#define MINDEX_CACHE_BODYSTRUCTURE 2	/* FETCH BODYSTRUCTURE text */
#define MINDEX_CACHE_HEADERS 3		/* header fields clients ask for */

/* mindex_cache_put - keep data[0..len) (at most MINDEX_CACHE_MAX) as the
 * blob of kind for message uid; -1 with why */
int mindex_cache_put(struct mindex *ix, const char *folder, uint32_t uid,
    uint8_t kind, const void *data, size_t len, struct buf *why);
/* one blob for mindex_cache_put_many */
struct mindex_cache_ent {
	uint32_t uid;
	uint8_t kind;
	const void *data;
	size_t len;
};
/* mindex_cache_put_many - mindex_cache_put of ents[0..n) in one
 * transaction; -1 with why (then none is kept) */
int mindex_cache_put_many(struct mindex *ix, const char *folder,
    const struct mindex_cache_ent *ents, size_t n, struct buf *why);
/* mindex_cache_get - the blob into out: 1, 0 none, -1 with why */
int mindex_cache_get(struct mindex *ix, const char *folder, uint32_t uid,
    uint8_t kind, struct buf *out, struct buf *why);

/* folders */
/* mindex_folder_fn - a folder (UTF-8 name) and its MINDEX_SPECIAL_* */
typedef void mindex_folder_fn(const char *name, unsigned special, void *ctx);
/* mindex_folders - INBOX first, then every Maildir++ folder on disk in
 * name order (entries herald would not make are skipped) */
int mindex_folders(struct mindex *ix, mindex_folder_fn *fn, void *ctx,
    struct buf *why);
/* mindex_special_use - the MINDEX_SPECIAL_* of a folder name */
unsigned mindex_special_use(const char *folder);
/* mindex_create_special - create the special-use folders that are
 * missing (at a user's first login); -1 with why */
int mindex_create_special(struct mindex *ix, struct buf *why);
/* mindex_folder_create - a new folder (0 created, -1 with why; errno
 * EEXIST when it exists) */
int mindex_folder_create(struct mindex *ix, const char *folder,
    struct buf *why);
/* mindex_folder_delete - remove a folder with its mail (refuses INBOX,
 * and a folder holding messages unless force); -1 with why */
int mindex_folder_delete(struct mindex *ix, const char *folder, bool force,
    struct buf *why);
/* mindex_folder_rename - rename a folder and the folders below it,
 * keeping UIDs; renaming INBOX moves its messages into a new folder
 * and leaves INBOX empty (RFC 3501). -1 with why */
int mindex_folder_rename(struct mindex *ix, const char *from, const char *to,
    struct buf *why);

/* subscriptions: the Maildir++ subscriptions file, Dovecot's format */
/* mindex_subscribe - add (on) or remove a name; -1 with why */
int mindex_subscribe(struct mindex *ix, const char *folder, bool on,
    struct buf *why);
/* mindex_subscriptions - the subscribed names, each followed by '\n' */
int mindex_subscriptions(struct mindex *ix, struct buf *out, struct buf *why);

/* mindex_reindex - rebuild the index of the Maildir at path from its
 * files, keeping the UIDs the old index (or dovecot-uidlist) gives for
 * files still there; -1 with why */
int mindex_reindex(const char *path, struct buf *why);

/* mindex_msg_path - the path of m's file in the folder at dir into out
 * (replacing what it held): dir/new/name when m->in_new, else
 * dir/cur/name. Every path of a message's file is made here. */
void mindex_msg_path(const char *dir, const struct mindex_msg *m,
    struct buf *out);
/* mindex_msg_moved - m as another Maildir tool leaves it when it moves
 * m's file from new/ to cur/ without flags (cur/"name:2,"), into *out;
 * -1 when m is not in new/ or the name would be too long */
int mindex_msg_moved(const struct mindex_msg *m, struct mindex_msg *out);
/* mindex_msg_open - open m's file in the folder at dir read-only (never
 * through a link); a file in new/ that is gone is looked for where
 * mindex_msg_moved says (the next sync records that). -1 with errno */
int mindex_msg_open(const char *dir, const struct mindex_msg *m);

/* the record codec (exposed for the fuzz target and tests) */
/* mindex_msg_encode - the versioned record of m into out (version 2) */
void mindex_msg_encode(const struct mindex_msg *m, struct buf *out);
/* mindex_msg_decode - a record into m (version 1: in cur/; version 2:
 * with the place byte); -1 with why for anything damaged */
int mindex_msg_decode(const void *p, size_t n, struct mindex_msg *m,
    struct buf *why);

/* a folder's record */
struct mindex_folder_rec {
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
	uint32_t vanished;	/* expunged-range records kept */
	uint64_t vanished_floor; /* ranges up to this modseq were pruned */
	/* random at the record's creation; all zero in a record from before
	 * version 3 (the MAILBOXID is then derived from uidvalidity) */
	unsigned char id[MINDEX_FOLDER_ID];
	/* \Recent (RFC 3501 2.3.2): UIDs from here on are not yet claimed
	 * by a SELECT (version 4; older records: uidnext, nothing recent) */
	uint32_t recent;
};

/* mindex_mailboxid - the RFC 8474 MAILBOXID of a folder record into
 * out[MINDEX_OBJID_LEN + 1]: "F" and the id in hex. It moves with the
 * record (RENAME), survives a reindex that finds the record, and a
 * folder created anew gets a new one. */
void mindex_mailboxid(const struct mindex_folder_rec *f, char *out);
/* mindex_emailid - the RFC 8474 EMAILID of a message by its file name
 * into out[MINDEX_OBJID_LEN + 1]: the ",E=" field of the base name when
 * the file is a COPY/MOVE made by the index (which writes the source's
 * id there), else "M" and the first 128 bits of the SHA-256 of the base
 * name in hex. So it survives flag changes, reindexing and COPY. */
void mindex_emailid(const char *name, char *out);

void mindex_folder_encode(const struct mindex_folder_rec *f,
    struct buf *out);
int mindex_folder_decode(const void *p, size_t n,
    struct mindex_folder_rec *f, struct buf *why);

/* mindex_flags_from_name - flags and keyword bits of a Maildir file name
 * (after its ":2,") */
void mindex_flags_from_name(const char *name, uint32_t *flags,
    uint32_t *keywords);
/* mindex_base_len - length of the base name (up to ':') of a file name */
size_t mindex_base_len(const char *name);

#endif
