/*
 * auth_throttle - authd's record of failed logins in LMDB: per client
 * address, account and (account, prefix), with delays and lockouts.
 * authd checks and counts every attempt here; heraldctl auth
 * lockouts/unlock lists and lifts lockouts, in a child that became
 * auth_user (only that user can open the state).
 */
#ifndef MAIL_AUTH_THROTTLE_H
#define MAIL_AUTH_THROTTLE_H

#include <stdbool.h>
#include <stddef.h>

#include "mail/auth_client.h"

struct buf;


struct auth_throttle;

/* what is known about a client address and an account right now */
struct auth_throttle_state {
	long long client_failures;	/* recent (inside the window) */
	long long client_pending;	/* of them: attempts begun and not
					 * settled yet (this one included) */
	long long client_locked_until;	/* unix time, 0: not locked */
	long long account_failures;	/* the account as a whole */
	long long account_locked_until;
	long long pair_failures;	/* the account from this prefix */
	long long pair_locked_until;
	bool known;		/* the account logged in from this prefix
				 * before: no account lockout applies */
	/* from auth_throttle_begin, for auth_throttle_end: when the last
	 * failure before this attempt was (0: none) */
	long long client_last_before;
	long long account_last_before;
	long long pair_last_before;
};

/* settings, from params (tests fill their own) */
struct auth_throttle_conf {
	long long window;		/* auth_failure_window, seconds */
	long long delay;		/* auth_failure_delay, seconds */
	long long delay_max;		/* auth_failure_delay_max, seconds */
	long long client_lockout;	/* failures that lock an address */
	long long account_lockout;	/* failures that lock an account */
	long long account_window;	/* seconds, for account_lockout */
	long long pair_lockout;		/* failures of an account from one
					 * prefix that lock it there */
	long long lockout_time;		/* seconds */
	long long known_time;		/* seconds a good prefix is known */
	long long known_max;		/* known prefixes per account */
	int prefix_v4, prefix_v6;	/* prefix lengths */
};

#define AUTH_THROTTLE_MAP_SIZE (64ULL << 20)

/* auth_throttle_conf_params - the configured settings */
void auth_throttle_conf_params(struct auth_throttle_conf *conf);

/* auth_throttle_open - open (create: folder 0700, files 0600) the state
 * environment in folder path; map_size 0 means AUTH_THROTTLE_MAP_SIZE */
int auth_throttle_open(const char *path, const struct auth_throttle_conf *conf,
    size_t map_size, struct auth_throttle **t_r, struct buf *why);
void auth_throttle_close(struct auth_throttle **t);

/* auth_throttle_check - the state of client and account at now (account
 * may be NULL), read only; 0, or -1 with why (st then all zero) */
int auth_throttle_check(struct auth_throttle *t, const char *client,
    const char *account, long long now, struct auth_throttle_state *st,
    struct buf *why);
/* auth_throttle_begin - one login attempt of client for account (may be
 * NULL) at now. In one write transaction: if the client address is
 * locked, or (unless the account logged in from the client's prefix
 * before: st->known) the account as a whole or the account for that
 * prefix is, 0 with st saying until when (nothing recorded, the password
 * is not to be checked); else the attempt is counted as a failure of the
 * address and (unless known) of the account and of the account for the
 * prefix (starting lockouts at the thresholds) and 1 with st including
 * it: the caller checks the password, then calls auth_throttle_end. -1
 * with why (st all zero, nothing to settle: fail open). */
int auth_throttle_begin(struct auth_throttle *t, const char *client,
    const char *account, long long now, struct auth_throttle_state *st,
    struct buf *why);
/* auth_throttle_end - settle an attempt begun with 1 (at now, with the
 * state begun that auth_throttle_begin gave): AUTH_FAIL keeps the
 * failure (no longer pending); AUTH_OK takes it back for client only
 * (its other failures stay until their window passes, counted from the
 * last of them), forgets the account's failures (as a whole and from
 * the prefix) and remembers the prefix as known-good for the account
 * (known_time, at most known_max prefixes per account, the oldest go);
 * AUTH_TEMPFAIL takes it back for all */
int auth_throttle_end(struct auth_throttle *t, const char *client,
    const char *account, enum auth_result result, long long now,
    const struct auth_throttle_state *begun, struct buf *why);
/* auth_throttle_prune - delete up to max entries whose window and
 * lockout have passed, continuing where the last call stopped (max 0:
 * the whole database); the number deleted, or -1 with why */
long auth_throttle_prune(struct auth_throttle *t, long long now, long max,
    struct buf *why);
/* auth_throttle_count - entries in the database (tests) */
long auth_throttle_count(struct auth_throttle *t);
/* auth_throttle_delay_ms - delay for n recent failures of a client:
 * delay * 2^(n-1), capped at delay_max; 0 for n <= 0 */
long long auth_throttle_delay_ms(const struct auth_throttle_conf *conf,
    long long n);

/* one lockout in force (heraldctl auth lockouts) */
struct auth_throttle_lock {
	char kind;		/* 'c' a client address, 'a' an account,
				 * 'p' an account from one address prefix */
	const char *name;	/* the address, the account, or
				 * "<account> <prefix>" */
	long long failures;	/* behind the lockout */
	long long until;	/* unix time it ends */
};

typedef void auth_throttle_lock_fn(const struct auth_throttle_lock *l,
    void *ctx);

/* auth_throttle_locks - fn for every lockout in force at now, in key
 * order, in one read transaction; 0, or -1 with why */
int auth_throttle_locks(struct auth_throttle *t, long long now,
    auth_throttle_lock_fn *fn, void *ctx, struct buf *why);
/* auth_throttle_unlock - forget the failures and lockouts of what: an
 * account (local@domain: its own entry and those for every prefix), a
 * client address (its entry, and the accounts' entries for the prefix
 * that holds it) or a prefix "net/len" (the addresses in it and the
 * accounts' entries for prefixes inside it). Known-good prefixes stay.
 * The number of entries removed, or -1 with why. */
long auth_throttle_unlock(struct auth_throttle *t, const char *what,
    struct buf *why);
/* auth_throttle_target - is what an address or a prefix "net/len" that
 * auth_throttle_unlock takes? 0, or -1 with why (accounts are checked by
 * the caller) */
int auth_throttle_target(const char *what, struct buf *why);

#endif
