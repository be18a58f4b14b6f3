/*
 * auth - the parts of authd: password verification (auth_verify.c),
 * the memory of recent successful logins (auth_cache.c),
 * failure throttling (lib/mail/auth_throttle.c, shared with heraldctl
 * auth lockouts/unlock) and the log lines
 * (auth_log.c). authd.c ties them to the service skeleton.
 *
 * Nothing here keeps a password: callers own the buffers that held one
 * and wipe them.
 */
#ifndef AUTH_AUTH_H
#define AUTH_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "mail/auth_client.h"
#include "mail/auth_throttle.h"

struct auth_cache;
struct buf;
struct dir;
struct dir_passwd;

/* ------------------------------------------------------------ cache */

struct auth_cache_stats {
	long long hits;		/* logins taken as checked */
	long long misses;	/* lookups of usable accounts that did not */
	long long stored;	/* successful full checks remembered */
	long long dropped;	/* entries expired or outdated */
	long long evicted;	/* least recently used, to make room */
	long long entries;	/* held now */
};

/* auth_cache_new - keyed memory of up to size successful logins, each
 * for ttl seconds, under a fresh random key; NULL (off) when either is 0 */
struct auth_cache *auth_cache_new(long long size, long long ttl);
/* auth_cache_free - wipe entries and key; NULL is fine */
void auth_cache_free(struct auth_cache **cp);
/* auth_cache_flush - wipe every entry */
void auth_cache_flush(struct auth_cache *c);
/* auth_cache_hit - an unexpired entry for account whose hash is still
 * hash and whose password is password (constant-time compare)? An
 * expired or outdated entry is dropped. NULL c: false */
bool auth_cache_hit(struct auth_cache *c, const char *account,
    const char *hash, const char *password, long long now);
/* auth_cache_store - remember a successful full check */
void auth_cache_store(struct auth_cache *c, const char *account,
    const char *hash, const char *password, long long now);
/* auth_cache_stats - counts so far */
void auth_cache_stats(const struct auth_cache *c,
    struct auth_cache_stats *st);

/* ------------------------------------------------------------ verify */

enum auth_verdict {
	AUTH_VERDICT_OK,
	AUTH_VERDICT_FAIL,	/* wrong password, unknown, disabled, ... */
	AUTH_VERDICT_TEMPFAIL,	/* could not check (database error) */
};

/* auth_verify_canonical - the account a login name means: lowercased,
 * "@" default_domain added when it has no "@" (default_domain "" or NULL:
 * refused). 0 with out filled, or -1 with why. */
int auth_verify_canonical(const char *login, const char *default_domain,
    char *out, size_t size, struct buf *why);

/* auth_verify_hash - does password match the crypt(3) string hash?
 * 1 yes, 0 no, -1 the hash is unusable (crypt refused it) */
int auth_verify_hash(const char *password, const char *hash);

/* auth_verify_dummy - spend one default-cost yescrypt computation, like
 * the check of a current hash, that matches nothing */
void auth_verify_dummy(const char *password);

/* auth_verify_current - is hash yescrypt at libxcrypt's default cost
 * (what dir_passwd_hash makes)? */
bool auth_verify_current(const char *hash);

/* auth_verify_scheme - "SHA512-CRYPT", "bcrypt", "yescrypt", ... (log) */
const char *auth_verify_scheme(const char *hash);

/* auth_verify_account - the whole check for account (canonical): the
 * user must exist in d and be enabled and have a hash in pw (NULL: no
 * password database yet) that password matches. Equal work: exactly one
 * default-cost yescrypt computation is made whatever the outcome (unless
 * a database fails, or cache, which may be NULL, knows this account's
 * current hash with this password: auth_cache.c), plus the real check
 * of an enabled user whose hash is another scheme or cost. A successful
 * full check against a current hash is stored in cache. reason gets
 * what happened, for the log; on success with another hash, stale gets
 * it (for auth_verify_upgrade). */
enum auth_verdict auth_verify_account(struct dir *d, struct dir_passwd *pw,
    struct auth_cache *cache, const char *account, const char *password,
    struct buf *stale, struct buf *reason);

/* auth_verify_upgrade - after a successful login with hash old, store a
 * fresh default yescrypt hash of password for account, unless the hash
 * changed meanwhile: 1 replaced, 0 changed meanwhile, -1 with why */
int auth_verify_upgrade(struct dir_passwd *pw, const char *account,
    const char *password, const char *old, struct buf *why);

/* ------------------------------------------------------------ log */

/* auth_log_user - printable, bounded copy of untrusted user text */
void auth_log_user(struct buf *out, const char *user);
/* auth_log_time - "2026-11-23 23:10:00 UTC" */
void auth_log_time(struct buf *out, long long t);
/* auth_log_line - the one line about a request, without the ident:
 *   login: service=S client=[IP] user=<U>
 *   login failed: service=S client=[IP] user=<U> failures=N delay=Ds: R
 *   login locked: service=S client=[IP] user=<U>: R
 *   login tempfail: service=S client=[IP] user=<U>: R
 * service and client must be checked already (auth_log_token_ok) */
void auth_log_line(struct buf *out, enum auth_result result,
    const char *service, const char *client, const char *user,
    long long failures, long long delay_ms, const char *reason);
/* auth_log_token_ok - text fit for service= / client=[...]: 1..max of
 * [A-Za-z0-9._:%-] */
bool auth_log_token_ok(const char *s, size_t max);

#endif
