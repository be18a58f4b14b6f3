/*
 * mindex_int - what mindex.c and mindex_folder.c share; internal to the
 * two (everyone else uses mindex.h).
 */
#ifndef MAIL_MINDEX_INT_H
#define MAIL_MINDEX_INT_H

#include <dirent.h>
#include <limits.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "mail/mindex.h"
#include "mail/mutf7.h"

#ifndef MINDEX_MAP_START		/* a test build may start small */
#define MINDEX_MAP_START (64ULL << 20)	/* sparse: only used pages cost */
#endif
#define MINDEX_MAP_MAX (64ULL << 30)
#define MINDEX_TRIES 10			/* map growths a sync may need */

struct mindex {
	char *path;		/* the Maildir */
	MDB_env *env;
	MDB_dbi folders, msgs, names, expunged, cache, meta;
	pthread_mutex_t lock;	/* one operation at a time */
	bool writing;		/* the open transaction is a write one */
};

/* a checked folder: its key, Maildir path and name */
struct mindex_fk {
	char key[MUTF7_NAME_MAX + 1];	/* "." for INBOX, else ".A.B" */
	size_t klen;
	char dir[PATH_MAX];
	char name[MUTF7_INPUT_MAX + 1];
};

/* MINDEX_FK_INBOX - the folder is INBOX, the Maildir itself */
#define MINDEX_FK_INBOX(fk) (strcmp((fk)->key, ".") == 0)

/* UIDs that a rebuild keeps: base name -> uid, sorted by base */
struct mindex_seed_ent {
	char *base;
	uint32_t uid;
};

struct mindex_seed {
	struct mindex_seed_ent *v;
	size_t n, cap;
	uint32_t uidvalidity;	/* 0: none known */
	uint32_t uidnext;
};

void mindex_put32(unsigned char *p, uint32_t v);
uint32_t mindex_get32(const unsigned char *p);
void mindex_point(const char *point);
void mindex_put64(unsigned char *p, uint64_t v);
uint64_t mindex_get64(const unsigned char *p);
/* mindex_damaged - " (folder F; run reindex)" after why; -1 */
int mindex_damaged(struct buf *why, const char *folder);
/* mindex_is_damaged - why tells of a damaged record */
bool mindex_is_damaged(const struct buf *why);
/* mindex_msg_del - remove a message's records (message, name, cache) */
int mindex_msg_del(struct mindex *ix, MDB_txn *txn,
    const struct mindex_fk *fk, const struct mindex_msg *m, struct buf *why);
/* mindex_vanish - record uids[0..n) (sorted) as expunged at modseq */
int mindex_vanish(struct mindex *ix, MDB_txn *txn, const struct mindex_fk *fk,
    const uint32_t *uids, size_t n, uint64_t modseq,
    struct mindex_folder_rec *f, struct buf *why);
int mindex_cmp_uid(const void *a, const void *b);
struct stat;
/* mindex_file_sizes - size and CRLF size of a message file */
int mindex_file_sizes(const char *path, const char *name,
    const struct stat *st, uint64_t *size, uint64_t *wsize);
int mindex_mdb_error(struct buf *why, int rc, const char *what);
/* mindex_map_full - why tells of a full map (which has grown since) */
bool mindex_map_full(const struct buf *why);
int mindex_name_with_flags(const char *base, size_t blen, uint32_t flags,
    uint32_t keywords, char *out, size_t size);
int mindex_begin(struct mindex *ix, bool write, MDB_txn **txn_r,
    struct buf *why);
int mindex_end(struct mindex *ix, MDB_txn *txn, bool ok, struct buf *why);
int mindex_fkey(struct mindex *ix, const char *folder, struct mindex_fk *fk,
    struct buf *why);
void mindex_key(const struct mindex_fk *fk, const void *tail, size_t n,
    struct buf *key);
void mindex_uid_key(const struct mindex_fk *fk, uint32_t uid,
    struct buf *key);
MDB_val mindex_val(const struct buf *b);
int mindex_folder_get(struct mindex *ix, MDB_txn *txn,
    const struct mindex_fk *fk, struct mindex_folder_rec *f, struct buf *why);
int mindex_folder_put(struct mindex *ix, MDB_txn *txn,
    const struct mindex_fk *fk, const struct mindex_folder_rec *f,
    struct buf *why);
int mindex_msg_put(struct mindex *ix, MDB_txn *txn, const struct mindex_fk *fk,
    const struct mindex_msg *m, struct buf *why);
int mindex_msg_get(struct mindex *ix, MDB_txn *txn, const struct mindex_fk *fk,
    uint32_t uid, struct mindex_msg *m, struct buf *why);
int mindex_del_prefix(MDB_txn *txn, MDB_dbi dbi, const void *prefix,
    size_t plen, struct buf *why);
int mindex_new_uidvalidity(struct mindex *ix, MDB_txn *txn, uint32_t floor,
    uint32_t *uv_r, struct buf *why);
int mindex_fsync_dir(const char *path, struct buf *why);
/* mindex_own_of - own when it is about fk's folder, else NULL */
struct mindex_own *mindex_own_of(struct mindex *ix, struct mindex_own *own,
    const struct mindex_fk *fk);
/* mindex_own_new - fk's new/ is about to change (before: its mtime is
 * kept if this is the first change) or has changed (its mtime now is
 * the last); own may be NULL */
void mindex_own_new(struct mindex_own *own, const struct mindex_fk *fk,
    bool before);
/* mindex_opendir - dir/sub, no links followed (dir too when folder) */
DIR *mindex_opendir(const char *dir, bool folder, const char *sub);
/* mindex_opendir_fd - the same as a descriptor; -1 with errno */
int mindex_opendir_fd(const char *dir, bool folder, const char *sub);
int mindex_folder_ready(const struct mindex_fk *fk, struct buf *why);
int mindex_sync_txn(struct mindex *ix, MDB_txn *txn,
    const struct mindex_fk *fk, const struct mindex_seed *seed,
    struct mindex_sync_result *r, struct buf *why);
int mindex_rebuild_folder(struct mindex *ix, MDB_txn *txn, const char *folder,
    struct buf *why);
int mindex_uidlist(const char *dir, struct mindex_seed *seed);
#define MINDEX_UIDLIST_MAX (256 << 20)	/* bytes of a dovecot-uidlist */
#define MINDEX_UIDLIST_LINE 4096	/* longer lines are skipped */
/* mindex_keyword_parse - a dovecot-keywords file's text ("<index> <name>"
 * lines; others, bad indexes and names that are no IMAP keyword skipped)
 * into names[], which it clears first */
void mindex_keyword_parse(const char *text, size_t n,
    char names[MINDEX_KEYWORDS_MAX][MINDEX_KEYWORD_LEN + 1]);
/* mindex_subs_parse - a subscriptions file's text (one name a line,
 * modified UTF-7 or UTF-8; Dovecot 2's "V\t2" header and '\t' between
 * levels) appended to out as UTF-8 names each ended by '\n'; names that
 * are no folder name skipped */
void mindex_subs_parse(const char *text, size_t n, struct buf *out);
/* mindex_uidlist_parse - a dovecot-uidlist's text into seed: header "3
 * V<uidvalidity> N<uidnext> ..." (or version 1: "1 <uidvalidity>
 * <uidnext>"), then "<uid> [<ext>...] :<file name>" lines (version 1:
 * "<uid> <file name>"); lines that are not are skipped. 1 read (seed
 * sorted), 0 unusable (no header) */
int mindex_uidlist_parse(const char *data, size_t n,
    struct mindex_seed *seed);
void mindex_seed_add(struct mindex_seed *seed, const char *base, size_t blen,
    uint32_t uid);
void mindex_seed_sort(struct mindex_seed *seed);
void mindex_seed_free(struct mindex_seed *seed);

/* mindex_folder.c */
/* mindex_keyword_names - the folder's dovecot-keywords: name i at the
 * i-th NUL-ended string of out (empty where unused) */
int mindex_keyword_names(const struct mindex_fk *fk, struct buf *out,
    struct buf *why);
/* mindex_keyword_bits - bits of the keywords kw[0..n) (add: new ones get
 * letters and the file is rewritten; else unknown ones are no bit) */
int mindex_keyword_bits(const struct mindex_fk *fk, const char *const *kw,
    size_t n, bool add, uint32_t *bits_r, struct buf *why);
/* mindex_keyword_map - the bits of src's keywords (names in snames) in
 * dst's keyword file */
int mindex_keyword_map(const struct mindex_fk *src, const struct buf *snames,
    const struct mindex_fk *dst, uint32_t bits, uint32_t *out_r,
    struct buf *why);
/* mindex_folder_names - INBOX and the folders on disk, NUL-separated */
int mindex_folder_names(struct mindex *ix, struct buf *out, struct buf *why);
/* where a deleted folder goes before it is removed (".." names are
 * never folders) */
#define MINDEX_DELETED "..herald-deleted."
/* mindex_clean_leftovers - remove what a delete that died left */
void mindex_clean_leftovers(struct mindex *ix);
/* mindex_drop_stale - remove index data of folders not in names */
int mindex_drop_stale(struct mindex *ix, MDB_txn *txn,
    const struct buf *names, struct buf *why);

#endif
