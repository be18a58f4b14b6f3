/*
 * dir_lmdb - the LMDB helpers that dir.c (the directory) and dir_passwd.c
 * (the password environment) share. Internal to those two files: other
 * code goes through dir.h.
 */
#ifndef MAIL_DIR_LMDB_H
#define MAIL_DIR_LMDB_H

#include <lmdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct buf;

#define DIR_MAP_SIZE (1ULL << 30)	/* sparse: only used pages cost */
#define DIR_KEY_MAX 320			/* below LMDB's 511-byte key limit */
#define DIR_HASH_MAX 511		/* longest password hash kept */

/* dir_mdb_error - "what: LMDB reason" into why; returns -1 */
int dir_mdb_error(struct buf *why, int rc, const char *what);
/* dir_key - key in out, lowercased; kind 'd' domain, 'u' user, 'a' alias
 * key; the domain part of out, or NULL with why */
const char *dir_key(const char *in, int kind, char *out, size_t size,
    struct buf *why);
/* dir_val - MDB_val of a C string (without the NUL) */
MDB_val dir_val(const char *s);
/* dir_env_open - create and open an environment at path; -1 with why
 * and errno set to LMDB's code */
int dir_env_open(const char *path, unsigned flags, mode_t mode,
    MDB_env **env_r, struct buf *why);
/* dir_txn_begin - a transaction, adopting a map grown by another process */
int dir_txn_begin(MDB_env *env, bool write, MDB_txn **txn_r,
    struct buf *why);
/* dir_commit - commit, or abort if rc (an LMDB code) says so; 0 or -1 */
int dir_commit(MDB_txn *txn, int rc, struct buf *why);
/* dir_get - look key up in dbi: 1 found (val set), 0 not, -1 with why */
int dir_get(MDB_txn *txn, MDB_dbi dbi, const char *key, MDB_val *val,
    struct buf *why);
/* dir_reader_check_one - clear stale reader slots of the environment at
 * path (none there: 0) */
int dir_reader_check_one(const char *path, struct buf *why);

#endif
