/*
 * dir - the directory: domains, users, aliases (DESIGN.md §6), in LMDB.
 *
 * <data_directory>/directory/ holds one LMDB environment with the named
 * databases "domain", "user", "alias", "transport" and "tls_policy";
 * <data_directory>/passwd/ holds
 * password hashes in a second environment that only heraldctl and authd
 * open. heraldctl is the only writer of the directory; authd also writes
 * the password database when it replaces a weaker hash at login. Readers
 * see each committed change at their next lookup (every lookup is its own
 * short read transaction).
 *
 * Keys are lowercased: domains "example.org", users and aliases
 * "local@example.org", catch-all aliases "@example.org". An alias maps to
 * one or more targets (addresses, kept in order, no duplicates).
 *
 * A dir handle belongs to the process that opened it: never use it across
 * fork() (LMDB forbids it). Open it after dropping privileges.
 */
#ifndef MAIL_DIR_H
#define MAIL_DIR_H

#include <stdbool.h>
#include <stddef.h>

struct buf;
struct dir;

#define DIR_READ 0
#define DIR_WRITE 1

struct dir_user {
	long long quota;	/* bytes; -1: default_quota; 0: none */
	bool enabled;
	long long created;	/* unix seconds */
};

/* dir_open - open (DIR_WRITE: create if missing) the directory */
int dir_open(const char *data_dir, int mode, struct dir **d_r,
    struct buf *why);
void dir_close(struct dir **d);
/* dir_reader_check - clear stale reader slots of directory/ (master at
 * start); call it while this process has not opened it, since LMDB
 * forbids opening one environment twice in a process */
int dir_reader_check(const char *data_dir, struct buf *why);
/* dir_passwd_reader_check - the same for passwd/: authd at its start, as
 * auth_user. Never as root: auth_user can write that folder, and LMDB
 * opens (and writes) its files by name, links included */
int dir_passwd_reader_check(const char *data_dir, struct buf *why);

/* lookups: 1 found, 0 not found, -1 error (why) */
int dir_domain_exists(struct dir *d, const char *domain, struct buf *why);
int dir_user_get(struct dir *d, const char *addr, struct dir_user *u,
    struct buf *why);
/* dir_domain_postmaster - the domain's admin (the user of it created
 * first; kept up to date by dir_user_add/_del) into out: 1, 0 none
 * (no users, or a record from before admins were kept), -1 (why) */
int dir_domain_postmaster(struct dir *d, const char *domain, struct buf *out,
    struct buf *why);
/* dir_alias_get - targets appended to out, separated by "\n" */
int dir_alias_get(struct dir *d, const char *key, struct buf *out,
    struct buf *why);

enum dir_rcpt {
	DIR_RCPT_ERROR = -1,
	DIR_RCPT_OK = 0,	/* a user, an alias or a catch-all takes it */
	DIR_RCPT_UNKNOWN = 1,	/* hosted domain, nobody takes it: 550 5.1.1 */
	DIR_RCPT_DISABLED = 2,	/* user exists but disabled: 550 5.2.1 */
	DIR_RCPT_REMOTE = 3,	/* not a hosted domain: relay rules apply */
};
/* dir_rcpt_check - can addr be delivered here? Order: user, user without
 * extension (delim; 0: none), alias, alias without extension, catch-all
 * "@domain". A string that is no address (no '@', "@domain") is UNKNOWN */
enum dir_rcpt dir_rcpt_check(struct dir *d, const char *addr, char delim,
    struct buf *why);

/* writers (heraldctl): 0 ok, -1 with why ("domain example.org exists") */
int dir_domain_add(struct dir *d, const char *domain, struct buf *why);
/* dir_domain_del - refuses while users or aliases of it exist, unless force */
int dir_domain_del(struct dir *d, const char *domain, bool force,
    struct buf *why);
int dir_user_add(struct dir *d, const char *addr, long long quota,
    struct buf *why);
int dir_user_del(struct dir *d, const char *addr, struct buf *why);
int dir_user_set_quota(struct dir *d, const char *addr, long long quota,
    struct buf *why);
int dir_user_set_enabled(struct dir *d, const char *addr, bool enabled,
    struct buf *why);
/* dir_alias_add - add one target to key (creating the alias); a target
 * already there (compared case-insensitively) is a successful no-op */
int dir_alias_add(struct dir *d, const char *key, const char *target,
    struct buf *why);
/* dir_alias_del - remove one target, or the whole alias if target NULL */
int dir_alias_del(struct dir *d, const char *key, const char *target,
    struct buf *why);

/* listing: fn is called per entry in key order; domain NULL means all */
typedef void dir_domain_fn(const char *domain, void *ctx);
typedef void dir_user_fn(const char *addr, const struct dir_user *u,
    void *ctx);
typedef void dir_alias_fn(const char *key, const char *targets, void *ctx);
int dir_domain_list(struct dir *d, dir_domain_fn *fn, void *ctx,
    struct buf *why);
int dir_user_list(struct dir *d, const char *domain, dir_user_fn *fn,
    void *ctx, struct buf *why);
int dir_alias_list(struct dir *d, const char *domain, dir_alias_fn *fn,
    void *ctx, struct buf *why);

/*
 * Routing tables of other domains (heraldctl writes; qmgr reads them
 * for each remote request and sends them along):
 * transports (a domain's next hop, "[host]:port" or "host[:port]",
 * instead of its MX) and TLS policies (none|may|encrypt|verify|dane,
 * over smtp_tls_security_level). The values are stored as given; the
 * caller checks them. A hosted domain gets neither: set refuses it.
 * get: 1 with the value in out, 0 none, -1 (why); del of a domain that
 * has none is an error ("no transport for example.org").
 */
enum dir_map {
	DIR_MAP_TRANSPORT,	/* a domain's next hop */
	DIR_MAP_TLS_POLICY,	/* a domain's TLS level */
};
typedef void dir_map_fn(const char *domain, const char *value, void *ctx);
int dir_map_get(struct dir *d, enum dir_map m, const char *domain,
    struct buf *out, struct buf *why);
int dir_map_set(struct dir *d, enum dir_map m, const char *domain,
    const char *value, struct buf *why);
int dir_map_del(struct dir *d, enum dir_map m, const char *domain,
    struct buf *why);
int dir_map_list(struct dir *d, enum dir_map m, dir_map_fn *fn, void *ctx,
    struct buf *why);

/* passwords: <data_dir>/passwd, crypt(3) strings. As root, with an
 * auth_user other than root, the folder is made and given to auth_user
 * and the database is worked on by a child that became auth_user (it
 * can write the folder, and LMDB follows links), so root never opens a
 * file authd could have swapped */
int dir_passwd_set(const char *data_dir, const char *addr, const char *hash,
    struct buf *why);
/* dir_passwd_get - 1 with the hash in out, 0 none, -1 error */
int dir_passwd_get(const char *data_dir, const char *addr, struct buf *out,
    struct buf *why);
int dir_passwd_del(const char *data_dir, const char *addr, struct buf *why);
/* dir_passwd_hash - yescrypt hash of a password (fresh salt) */
int dir_passwd_hash(const char *password, struct buf *out, struct buf *why);

/*
 * A kept handle on the password database, for authd: opened once per
 * process (after the privilege drop, never across fork()), read-write so
 * that weaker hashes can be replaced at login, and never created by it.
 * Each lookup is its own read transaction, so changes heraldctl commits
 * are seen at the next one. Do not open the database another way (the
 * dir_passwd_* calls above) in the same process while it is open: LMDB
 * forbids one environment twice in a process.
 */
struct dir_passwd;

/* dir_passwd_open - 1 open, 0 the database does not exist (yet), -1 */
int dir_passwd_open(const char *data_dir, struct dir_passwd **p_r,
    struct buf *why);
void dir_passwd_close(struct dir_passwd **p);
/* dir_passwd_lookup - 1 with the hash of addr in out, 0 none, -1 */
int dir_passwd_lookup(struct dir_passwd *p, const char *addr,
    struct buf *out, struct buf *why);
/* dir_passwd_replace - store hash new for addr if its hash is still old,
 * in one write transaction (a password heraldctl set meanwhile wins):
 * 1 replaced, 0 changed or gone meanwhile, -1 with why */
int dir_passwd_replace(struct dir_passwd *p, const char *addr,
    const char *old, const char *new, struct buf *why);

#endif
