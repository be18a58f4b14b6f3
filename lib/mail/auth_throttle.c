/*
 * auth_throttle - login failures per client address and per account, in
 * an LMDB environment (<data_directory>/authstate/) so that they survive
 * restarts and are shared by every authd process (LMDB serialises the
 * writers across processes).
 *
 * Keys: "c:<client address>", "a:<account>" (the account as a whole),
 * "p:<account> <prefix>" (the account's failures from one client address
 * prefix, 192.0.2.0/24 or 2001:db8::/64 by default) and "g:<account>
 * <prefix>" (a prefix the account logged in from: known-good). Value
 * (text, so that mdb_dump shows something an admin can read):
 *	"v1 <failures> <first> <last> <locked_until> [<pending>]"
 * (times in unix seconds; pending, only on "c:" entries and only when
 * not 0: how many of the failures are attempts begun and not settled
 * yet, which count for the lockout but not for the delay).
 * For "g:" entries failures is 0, first and last are the first and the
 * latest successful login, and locked_until is when the entry expires.
 * Failures whose last one is older than the window (auth_account_window
 * for "a:", auth_failure_window for the others) are forgotten, and so
 * are the failures behind a lockout that has run out. A client address,
 * account or account-from-prefix is locked from the failure that reaches
 * its threshold for lockout_time seconds; while locked, authd answers
 * without checking the password.
 *
 * So that strangers cannot lock a user out, account failures count per
 * (account, prefix): guesses from elsewhere lock the account only for
 * the prefixes they came from, and the account as a whole only at a
 * high, slow limit (auth_account_lockout within auth_account_window).
 * Neither applies to a prefix the account logged in from before: there
 * only the address's own lockout holds (and failures from it do not
 * count against the account at all).
 *
 * One attempt is two short write transactions around the password check,
 * which itself holds none (it is slow on purpose):
 *	auth_throttle_begin	the lockout check and, unless locked, the
 *				attempt counted as a failure of both, in
 *				the same transaction;
 *	auth_throttle_end	a failure stays counted (no longer pending:
 *				one more write transaction); a success takes it
 *				back for the address (its earlier failures
 *				stay until their window passes, so one good
 *				account of an attacker's own does not reset
 *				the guessing of others) and clears the
 *				account; a tempfail takes it back for both.
 * Because the check and the count are one transaction and LMDB serialises
 * writers across processes, authd processes answering at once cannot
 * together let more attempts through than a threshold allows. The price:
 * while attempts are in flight, a lockout may start (and end again with
 * their success) a little early. An authd that dies between the two
 * leaves its attempt counted as a failure.
 *
 * Bounds: entries whose window and lockout have passed are deleted a few
 * at a time on every attempt recorded (a sweep that goes on where the last
 * one stopped), and all of them when the map is full; if it is still full
 * the attempt is not recorded (fail open, with a warning in the caller).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/file.h"
#include "base/log.h"
#include "base/mem.h"
#include "mail/params.h"
#include "mail/auth_throttle.h"

#define AUTH_THROTTLE_KEY_MAX 400	/* below LMDB's 511-byte limit */
#define AUTH_THROTTLE_SWEEP 16		/* entries looked at per failure */

struct auth_throttle {
	MDB_env *env;
	MDB_dbi dbi;
	struct auth_throttle_conf conf;
	char sweep_key[AUTH_THROTTLE_KEY_MAX + 1];	/* "" = from start */
};

/* one entry */
struct auth_throttle_rec {
	long long failures;
	long long first;
	long long last;
	long long until;
	long long pending;	/* of failures: attempts not settled yet
				 * (client entries only; "v1" text's
				 * optional fifth number) */
};

/* auth_throttle_conf_params - the configured settings */
void
auth_throttle_conf_params(struct auth_throttle_conf *conf)
{
	conf->window = var_auth_failure_window;
	conf->delay = var_auth_failure_delay;
	conf->delay_max = var_auth_failure_delay_max;
	conf->client_lockout = var_auth_client_lockout;
	conf->account_lockout = var_auth_account_lockout;
	conf->account_window = var_auth_account_window;
	conf->pair_lockout = var_auth_account_prefix_lockout;
	conf->lockout_time = var_auth_lockout_time;
	conf->known_time = var_auth_known_prefix_time;
	conf->known_max = var_auth_known_prefix_max;
	conf->prefix_v4 = (int)var_auth_prefix_v4;
	conf->prefix_v6 = (int)var_auth_prefix_v6;
}

/* auth_throttle_window - how long failures of kind are remembered */
static long long
auth_throttle_window(const struct auth_throttle *t, char kind)
{
	return kind == 'a' ? t->conf.account_window : t->conf.window;
}

/* auth_throttle_mdb - "what: LMDB reason" into why */
static int
auth_throttle_mdb(struct buf *why, int rc, const char *what)
{
	buf_printf(why, "%s: %s", what, mdb_strerror(rc));
	return -1;
}

/* auth_throttle_open - open or create the environment */
int
auth_throttle_open(const char *path, const struct auth_throttle_conf *conf,
    size_t map_size, struct auth_throttle **t_r, struct buf *why)
{
	struct auth_throttle *t;
	MDB_txn *txn;
	int rc, stale;

	*t_r = NULL;
	if (file_mkdirs(path, 0700, why) < 0)
		return -1;
	t = xcalloc(1, sizeof(*t));
	t->conf = *conf;
	if ((rc = mdb_env_create(&t->env)) != 0) {
		x_free(&t);
		return auth_throttle_mdb(why, rc, "mdb_env_create");
	}
	if ((rc = mdb_env_set_mapsize(t->env, map_size ? map_size :
	    AUTH_THROTTLE_MAP_SIZE)) != 0 ||
	    (rc = mdb_env_open(t->env, path, MDB_NOTLS, 0600)) != 0) {
		auth_throttle_mdb(why, rc, path);
		goto fail;
	}
	/* an authd killed inside a read transaction left its slot behind */
	(void)mdb_reader_check(t->env, &stale);
	if ((rc = mdb_txn_begin(t->env, NULL, 0, &txn)) != 0) {
		auth_throttle_mdb(why, rc, "begin transaction");
		goto fail;
	}
	if ((rc = mdb_dbi_open(txn, NULL, 0, &t->dbi)) != 0) {
		mdb_txn_abort(txn);
		auth_throttle_mdb(why, rc, "open database");
		goto fail;
	}
	if ((rc = mdb_txn_commit(txn)) != 0) {
		auth_throttle_mdb(why, rc, "open database");
		goto fail;
	}
	*t_r = t;
	return 0;

fail:
	mdb_env_close(t->env);
	x_free(&t);
	return -1;
}

/* auth_throttle_close - close the environment */
void
auth_throttle_close(struct auth_throttle **tp)
{
	if (*tp == NULL)
		return;
	mdb_env_close((*tp)->env);
	x_free(tp);
}

/* auth_throttle_delay_ms - delay * 2^(n-1), capped */
long long
auth_throttle_delay_ms(const struct auth_throttle_conf *conf, long long n)
{
	long long d = conf->delay * 1000, cap = conf->delay_max * 1000;

	if (n <= 0 || d <= 0)
		return 0;
	for (long long i = 1; i < n && d < cap; i++)
		d *= 2;
	return d > cap ? cap : d;
}

/* auth_throttle_key - "c:"/"a:" + name into out; -1 if too long */
static int
auth_throttle_key(char kind, const char *name, char *out, size_t size)
{
	int n = snprintf(out, size, "%c:%s", kind, name);

	return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* auth_throttle_parse - read a value; malformed reads as empty */
static void
auth_throttle_parse(const MDB_val *v, struct auth_throttle_rec *r)
{
	char text[128];
	int used = 0, n = 0;

	memset(r, 0, sizeof(*r));
	if (v->mv_size == 0 || v->mv_size >= sizeof(text))
		return;
	memcpy(text, v->mv_data, v->mv_size);
	text[v->mv_size] = '\0';
	if (sscanf(text, "v1 %lld %lld %lld %lld%n", &r->failures, &r->first,
	    &r->last, &r->until, &used) != 4)
		used = -1;
	else if ((size_t)used < v->mv_size && sscanf(text + used,
	    " %lld%n", &r->pending, &n) == 1)
		used += n;
	if (used < 0 || (size_t)used != v->mv_size || r->failures < 0 ||
	    r->pending < 0 || r->pending > r->failures)
		memset(r, 0, sizeof(*r));
}

/* auth_throttle_expired - neither window nor lockout (nor, for a
 * known-good prefix, its time) holds anything */
static bool
auth_throttle_expired(const struct auth_throttle *t, char kind,
    const struct auth_throttle_rec *r, long long now)
{
	if (kind == 'g')
		return r->until <= now;
	return r->until <= now &&
	    r->last + auth_throttle_window(t, kind) <= now;
}

/* auth_throttle_current - r as it counts at now: failures forgotten once
 * the window has passed (unless a lockout still runs) or a lockout has
 * run out */
static void
auth_throttle_current(const struct auth_throttle *t, char kind,
    struct auth_throttle_rec *r, long long now)
{
	if (r->until > now)
		return;		/* locked: the failures behind it count */
	if (r->last + auth_throttle_window(t, kind) <= now || r->until != 0)
		memset(r, 0, sizeof(*r));
}

/* auth_throttle_get - entry kind:name in txn (zeroed when absent) */
static int
auth_throttle_get(struct auth_throttle *t, MDB_txn *txn, char kind,
    const char *name, struct auth_throttle_rec *r, struct buf *why)
{
	char key[AUTH_THROTTLE_KEY_MAX + 1];
	MDB_val k, v;
	int rc;

	memset(r, 0, sizeof(*r));
	if (name == NULL || auth_throttle_key(kind, name, key,
	    sizeof(key)) < 0)
		return 0;
	k.mv_data = key;
	k.mv_size = strlen(key);
	rc = mdb_get(txn, t->dbi, &k, &v);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return auth_throttle_mdb(why, rc, "read");
	auth_throttle_parse(&v, r);
	return 0;
}

/* auth_throttle_put - store entry kind:name */
static int
auth_throttle_put(struct auth_throttle *t, MDB_txn *txn, char kind,
    const char *name, const struct auth_throttle_rec *r)
{
	char key[AUTH_THROTTLE_KEY_MAX + 1], text[128];
	MDB_val k, v;
	int n;

	if (name == NULL || auth_throttle_key(kind, name, key,
	    sizeof(key)) < 0)
		return 0;
	if (r->pending > 0)
		n = snprintf(text, sizeof(text), "v1 %lld %lld %lld %lld %lld",
		    r->failures, r->first, r->last, r->until, r->pending);
	else
		n = snprintf(text, sizeof(text), "v1 %lld %lld %lld %lld",
		    r->failures, r->first, r->last, r->until);
	k.mv_data = key;
	k.mv_size = strlen(key);
	v.mv_data = text;
	v.mv_size = (size_t)n;
	return mdb_put(txn, t->dbi, &k, &v, 0);
}

/* auth_throttle_pair - "<account> <prefix of client>" into out, or NULL
 * without an account (or when it does not fit) */
static const char *
auth_throttle_pair(const struct auth_throttle *t, const char *client,
    const char *account, char *out, size_t size)
{
	char prefix[128];
	int n;

	if (account == NULL || client == NULL)
		return NULL;
	auth_client_prefix(client, t->conf.prefix_v4, t->conf.prefix_v6,
	    prefix, sizeof(prefix));
	n = snprintf(out, size, "%s %s", account, prefix);
	return n < 0 || (size_t)n >= size ? NULL : out;
}

/* auth_throttle_check - the state of client and account at now */
int
auth_throttle_check(struct auth_throttle *t, const char *client,
    const char *account, long long now, struct auth_throttle_state *st,
    struct buf *why)
{
	struct auth_throttle_rec c, a, p, g;
	char pair[AUTH_THROTTLE_KEY_MAX + 1];
	const char *pn = auth_throttle_pair(t, client, account, pair,
	    sizeof(pair));
	MDB_txn *txn;
	int rc;

	memset(st, 0, sizeof(*st));
	if ((rc = mdb_txn_begin(t->env, NULL, MDB_RDONLY, &txn)) != 0)
		return auth_throttle_mdb(why, rc, "begin read");
	if (auth_throttle_get(t, txn, 'c', client, &c, why) < 0 ||
	    auth_throttle_get(t, txn, 'a', account, &a, why) < 0 ||
	    auth_throttle_get(t, txn, 'p', pn, &p, why) < 0 ||
	    auth_throttle_get(t, txn, 'g', pn, &g, why) < 0) {
		mdb_txn_abort(txn);
		return -1;
	}
	mdb_txn_abort(txn);
	auth_throttle_current(t, 'c', &c, now);
	auth_throttle_current(t, 'a', &a, now);
	auth_throttle_current(t, 'p', &p, now);
	st->client_failures = c.failures;
	st->client_pending = c.pending;
	st->client_locked_until = c.until > now ? c.until : 0;
	st->account_failures = a.failures;
	st->account_locked_until = a.until > now ? a.until : 0;
	st->pair_failures = p.failures;
	st->pair_locked_until = p.until > now ? p.until : 0;
	st->known = g.until > now;
	return 0;
}

/* auth_throttle_count_one - one more failure in r at now */
static void
auth_throttle_count_one(const struct auth_throttle *t, char kind,
    struct auth_throttle_rec *r, long long threshold, long long now)
{
	auth_throttle_current(t, kind, r, now);
	if (r->failures == 0)
		r->first = now;
	r->failures++;
	r->last = now;
	if (r->failures >= threshold && r->until <= now)
		r->until = now + t->conf.lockout_time;
}

/* auth_throttle_sweep - delete up to max expired entries in txn from
 * the saved position; the number deleted, or -1 (rc in *rc_r) */
static long
auth_throttle_sweep(struct auth_throttle *t, MDB_txn *txn, long long now,
    long max, int *rc_r)
{
	MDB_cursor *cur;
	MDB_val k, v;
	struct auth_throttle_rec r;
	long seen = 0, deleted = 0;
	int rc;

	*rc_r = 0;
	if ((rc = mdb_cursor_open(txn, t->dbi, &cur)) != 0) {
		*rc_r = rc;
		return -1;
	}
	if (t->sweep_key[0] != '\0') {
		k.mv_data = t->sweep_key;
		k.mv_size = strlen(t->sweep_key);
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	} else {
		rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	}
	while (rc == 0 && (max == 0 || seen < max)) {
		seen++;
		auth_throttle_parse(&v, &r);
		if (auth_throttle_expired(t, k.mv_size > 0 ?
		    *(const char *)k.mv_data : '?', &r, now)) {
			if ((rc = mdb_cursor_del(cur, 0)) != 0)
				break;
			deleted++;
		}
		/* after a delete, MDB_NEXT gives the entry that followed */
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	if (rc == 0 && k.mv_size <= AUTH_THROTTLE_KEY_MAX) {
		memcpy(t->sweep_key, k.mv_data, k.mv_size);
		t->sweep_key[k.mv_size] = '\0';
	} else {
		t->sweep_key[0] = '\0';		/* at the end: wrap around */
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		*rc_r = rc;
		return -1;
	}
	return deleted;
}

/* auth_throttle_prune - delete expired entries */
long
auth_throttle_prune(struct auth_throttle *t, long long now, long max,
    struct buf *why)
{
	MDB_txn *txn;
	long n;
	int rc;

	if ((rc = mdb_txn_begin(t->env, NULL, 0, &txn)) != 0)
		return auth_throttle_mdb(why, rc, "begin write");
	if (max == 0)
		t->sweep_key[0] = '\0';
	if ((n = auth_throttle_sweep(t, txn, now, max, &rc)) < 0) {
		mdb_txn_abort(txn);
		return auth_throttle_mdb(why, rc, "prune");
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		return auth_throttle_mdb(why, rc, "prune commit");
	return n;
}

/* auth_throttle_state_of - the public view of c, a and p at now */
static void
auth_throttle_state_of(const struct auth_throttle_rec *c,
    const struct auth_throttle_rec *a, const struct auth_throttle_rec *p,
    bool have_account, long long now, struct auth_throttle_state *st)
{
	st->client_failures = c->failures;
	st->client_pending = c->pending;
	st->client_locked_until = c->until > now ? c->until : 0;
	st->account_failures = have_account ? a->failures : 0;
	st->account_locked_until = have_account && a->until > now ?
	    a->until : 0;
	st->pair_failures = have_account ? p->failures : 0;
	st->pair_locked_until = have_account && p->until > now ?
	    p->until : 0;
}

/*
 * auth_throttle_begin_txn - one try at the check and the reservation in
 * one write transaction: 0 (*locked_r says which it was) or an LMDB code
 * (MDB_PANIC: why says it).
 */
static int
auth_throttle_begin_txn(struct auth_throttle *t, const char *client,
    const char *account, long long now, struct auth_throttle_state *st,
    bool *locked_r, struct buf *why)
{
	struct auth_throttle_rec c, a, p, g;
	char pair[AUTH_THROTTLE_KEY_MAX + 1];
	const char *pn = auth_throttle_pair(t, client, account, pair,
	    sizeof(pair));
	MDB_txn *txn;
	int rc, swept;

	*locked_r = false;
	if ((rc = mdb_txn_begin(t->env, NULL, 0, &txn)) != 0)
		return rc;
	if (auth_throttle_get(t, txn, 'c', client, &c, why) < 0 ||
	    auth_throttle_get(t, txn, 'a', account, &a, why) < 0 ||
	    auth_throttle_get(t, txn, 'p', pn, &p, why) < 0 ||
	    auth_throttle_get(t, txn, 'g', pn, &g, why) < 0) {
		mdb_txn_abort(txn);
		return MDB_PANIC;	/* why says it */
	}
	auth_throttle_current(t, 'c', &c, now);
	auth_throttle_current(t, 'a', &a, now);
	auth_throttle_current(t, 'p', &p, now);
	st->known = g.until > now;
	if (st->known) {
		/* the owner's own prefix: the account's counts do not apply,
		 * and are not fed from here */
		memset(&a, 0, sizeof(a));
		memset(&p, 0, sizeof(p));
	}
	st->client_last_before = c.failures > 0 ? c.last : 0;
	st->account_last_before = a.failures > 0 ? a.last : 0;
	st->pair_last_before = p.failures > 0 ? p.last : 0;
	if (c.until > now || a.until > now || p.until > now) {
		/* locked: nothing to record, the password is not checked */
		mdb_txn_abort(txn);
		auth_throttle_state_of(&c, &a, &p, account != NULL, now, st);
		*locked_r = true;
		return 0;
	}
	auth_throttle_count_one(t, 'c', &c, t->conf.client_lockout, now);
	c.pending++;		/* until auth_throttle_end settles it */
	if (!st->known) {
		auth_throttle_count_one(t, 'a', &a, t->conf.account_lockout,
		    now);
		auth_throttle_count_one(t, 'p', &p, t->conf.pair_lockout,
		    now);
	}
	/* keep the database small: a few expired entries go each time */
	(void)auth_throttle_sweep(t, txn, now, AUTH_THROTTLE_SWEEP, &swept);
	if ((rc = auth_throttle_put(t, txn, 'c', client, &c)) != 0 ||
	    (!st->known &&
	    ((rc = auth_throttle_put(t, txn, 'a', account, &a)) != 0 ||
	    (rc = auth_throttle_put(t, txn, 'p', pn, &p)) != 0))) {
		mdb_txn_abort(txn);
		return rc;
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		return rc;
	auth_throttle_state_of(&c, &a, &p, account != NULL, now, st);
	return 0;
}

/* auth_throttle_begin - check and reserve one attempt */
int
auth_throttle_begin(struct auth_throttle *t, const char *client,
    const char *account, long long now, struct auth_throttle_state *st,
    struct buf *why)
{
	size_t why_len = why->len;
	bool locked;
	int rc;

	memset(st, 0, sizeof(*st));
	rc = auth_throttle_begin_txn(t, client, account, now, st, &locked,
	    why);
	if (rc == MDB_MAP_FULL) {
		/* make room from what has expired, then try once more */
		if (auth_throttle_prune(t, now, 0, why) < 0)
			buf_truncate(why, why_len);
		rc = auth_throttle_begin_txn(t, client, account, now, st,
		    &locked, why);
	}
	if (rc == 0)
		return locked ? 0 : 1;
	memset(st, 0, sizeof(*st));
	if (rc == MDB_PANIC && why->len > why_len)
		return -1;
	return auth_throttle_mdb(why, rc, "record attempt");
}

/*
 * auth_throttle_unreserve - take one failure reserved at now back from
 * entry kind:name: a lockout that it started ends with it (the failures
 * left are below the threshold again), the window counts from the last
 * failure before it again (last_before), and an entry left with nothing
 * goes. Should another failure of the same second have come in between,
 * its window counts from last_before too: a little shorter, never more
 * guesses than the threshold within it.
 */
static int
auth_throttle_unreserve(struct auth_throttle *t, MDB_txn *txn, char kind,
    const char *name, long long threshold, long long now,
    long long last_before, struct buf *why)
{
	char key[AUTH_THROTTLE_KEY_MAX + 1];
	struct auth_throttle_rec r;
	MDB_val k;
	int rc;

	if (name == NULL || auth_throttle_key(kind, name, key,
	    sizeof(key)) < 0)
		return 0;
	if (auth_throttle_get(t, txn, kind, name, &r, why) < 0)
		return -1;
	auth_throttle_current(t, kind, &r, now);
	if (r.failures > 0)
		r.failures--;
	if (r.pending > 0)
		r.pending--;
	if (r.pending > r.failures)
		r.pending = r.failures;
	if (r.failures < threshold)
		r.until = 0;
	if (r.last == now && last_before > 0)
		r.last = last_before;
	if (r.failures > 0) {
		rc = auth_throttle_put(t, txn, kind, name, &r);
	} else {
		k.mv_data = key;
		k.mv_size = strlen(key);
		rc = mdb_del(txn, t->dbi, &k, NULL);
		if (rc == MDB_NOTFOUND)
			rc = 0;
	}
	if (rc != 0)
		return auth_throttle_mdb(why, rc, "settle attempt");
	return 0;
}

/* auth_throttle_del - delete entry kind:name (absent is fine) */
static int
auth_throttle_del(struct auth_throttle *t, MDB_txn *txn, char kind,
    const char *name, struct buf *why)
{
	char key[AUTH_THROTTLE_KEY_MAX + 1];
	MDB_val k;
	int rc;

	if (name == NULL || auth_throttle_key(kind, name, key,
	    sizeof(key)) < 0)
		return 0;
	k.mv_data = key;
	k.mv_size = strlen(key);
	rc = mdb_del(txn, t->dbi, &k, NULL);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return auth_throttle_mdb(why, rc, "clear failures");
	return 0;
}

/* auth_throttle_settle - a failure client reserved is settled: one
 * attempt fewer in flight (its failure stays) */
static int
auth_throttle_settle(struct auth_throttle *t, MDB_txn *txn,
    const char *client, long long now, struct buf *why)
{
	struct auth_throttle_rec r;
	int rc;

	if (auth_throttle_get(t, txn, 'c', client, &r, why) < 0)
		return -1;
	auth_throttle_current(t, 'c', &r, now);
	if (r.pending == 0)
		return 0;
	r.pending--;
	if ((rc = auth_throttle_put(t, txn, 'c', client, &r)) != 0)
		return auth_throttle_mdb(why, rc, "settle attempt");
	return 0;
}

/*
 * auth_throttle_known - remember pair ("<account> <prefix>") as a
 * known-good prefix of account until now + known_time; then, if the
 * account has more than known_max of them, the one used least recently
 * goes (one at a time: there is never more than one too many).
 */
static int
auth_throttle_known(struct auth_throttle *t, MDB_txn *txn,
    const char *account, const char *pair, long long now, struct buf *why)
{
	char key[AUTH_THROTTLE_KEY_MAX + 1], oldest[AUTH_THROTTLE_KEY_MAX + 1];
	struct auth_throttle_rec g, r;
	long long oldest_last = 0;
	MDB_cursor *cur;
	MDB_val k, v;
	size_t plen;
	long n = 0;
	int rc;

	if (pair == NULL)
		return 0;
	if (auth_throttle_get(t, txn, 'g', pair, &g, why) < 0)
		return -1;
	if (g.until <= now)
		memset(&g, 0, sizeof(g));
	if (g.first == 0)
		g.first = now;
	g.failures = 0;
	g.last = now;
	g.until = now + t->conf.known_time;
	if ((rc = auth_throttle_put(t, txn, 'g', pair, &g)) != 0)
		return auth_throttle_mdb(why, rc, "remember known prefix");
	/* the account's known prefixes: keys "g:<account> ..." */
	if (snprintf(key, sizeof(key), "g:%s ", account) >= (int)sizeof(key))
		return 0;
	plen = strlen(key);
	oldest[0] = '\0';
	if ((rc = mdb_cursor_open(txn, t->dbi, &cur)) != 0)
		return auth_throttle_mdb(why, rc, "known prefixes");
	k.mv_data = key;
	k.mv_size = plen;
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && k.mv_size >= plen &&
	    memcmp(k.mv_data, key, plen) == 0) {
		auth_throttle_parse(&v, &r);
		n++;
		if ((oldest[0] == '\0' || r.last < oldest_last) &&
		    k.mv_size <= AUTH_THROTTLE_KEY_MAX &&
		    (k.mv_size != plen + strlen(pair + strlen(account) + 1) ||
		    memcmp((const char *)k.mv_data + plen,
		    pair + strlen(account) + 1, k.mv_size - plen) != 0)) {
			memcpy(oldest, k.mv_data, k.mv_size);
			oldest[k.mv_size] = '\0';
			oldest_last = r.last;
		}
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return auth_throttle_mdb(why, rc, "known prefixes");
	if (n > t->conf.known_max && oldest[0] != '\0') {
		k.mv_data = oldest;
		k.mv_size = strlen(oldest);
		if ((rc = mdb_del(txn, t->dbi, &k, NULL)) != 0 &&
		    rc != MDB_NOTFOUND)
			return auth_throttle_mdb(why, rc, "forget known prefix");
	}
	return 0;
}

/* auth_throttle_end - settle an attempt that auth_throttle_begin reserved */
int
auth_throttle_end(struct auth_throttle *t, const char *client,
    const char *account, enum auth_result result, long long now,
    const struct auth_throttle_state *begun, struct buf *why)
{
	char pair[AUTH_THROTTLE_KEY_MAX + 1];
	const char *pn = auth_throttle_pair(t, client, account, pair,
	    sizeof(pair));
	MDB_txn *txn;
	int rc;

	if (result == AUTH_LOCKED)
		return 0;	/* nothing was reserved */
	if ((rc = mdb_txn_begin(t->env, NULL, 0, &txn)) != 0)
		return auth_throttle_mdb(why, rc, "begin write");
	if (result == AUTH_FAIL) {
		/* the failure stays as recorded; it is settled now */
		if (auth_throttle_settle(t, txn, client, now, why) < 0)
			goto fail;
		goto commit;
	}
	if (auth_throttle_unreserve(t, txn, 'c', client,
	    t->conf.client_lockout, now, begun->client_last_before, why) < 0)
		goto fail;
	if (result == AUTH_OK && account != NULL) {
		/* the owner got in: the guesses at the account are over,
		 * and this prefix is the owner's */
		if (auth_throttle_del(t, txn, 'a', account, why) < 0 ||
		    auth_throttle_del(t, txn, 'p', pn, why) < 0 ||
		    auth_throttle_known(t, txn, account, pn, now, why) < 0)
			goto fail;
	} else if (!begun->known &&
	    (auth_throttle_unreserve(t, txn, 'a', account,
	    t->conf.account_lockout, now, begun->account_last_before,
	    why) < 0 ||
	    auth_throttle_unreserve(t, txn, 'p', pn, t->conf.pair_lockout,
	    now, begun->pair_last_before, why) < 0)) {
		goto fail;
	}
commit:
	if ((rc = mdb_txn_commit(txn)) != 0)
		return auth_throttle_mdb(why, rc, "settle attempt");
	return 0;

fail:
	mdb_txn_abort(txn);
	return -1;
}

/* auth_throttle_count - entries in the database */
long
auth_throttle_count(struct auth_throttle *t)
{
	MDB_txn *txn;
	MDB_stat ms;
	long n = -1;

	if (mdb_txn_begin(t->env, NULL, MDB_RDONLY, &txn) != 0)
		return -1;
	if (mdb_stat(txn, t->dbi, &ms) == 0)
		n = (long)ms.ms_entries;
	mdb_txn_abort(txn);
	return n;
}

/*
 * What heraldctl sees: the lockouts in force, and a way to lift them
 * ("heraldctl auth lockouts", "heraldctl auth unlock"). heraldctl calls
 * these in a process that runs as auth_user (ctl/ctl_auth.c), like
 * authd itself.
 */

/* auth_throttle_locks - fn for every entry locked at now */
int
auth_throttle_locks(struct auth_throttle *t, long long now,
    auth_throttle_lock_fn *fn, void *ctx, struct buf *why)
{
	char name[AUTH_THROTTLE_KEY_MAX + 1];
	struct auth_throttle_lock l;
	struct auth_throttle_rec r;
	MDB_cursor *cur;
	MDB_txn *txn;
	MDB_val k, v;
	int rc;

	if ((rc = mdb_txn_begin(t->env, NULL, MDB_RDONLY, &txn)) != 0)
		return auth_throttle_mdb(why, rc, "begin read");
	if ((rc = mdb_cursor_open(txn, t->dbi, &cur)) != 0) {
		mdb_txn_abort(txn);
		return auth_throttle_mdb(why, rc, "read");
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		const char *key = k.mv_data;

		if (k.mv_size < 3 || k.mv_size > AUTH_THROTTLE_KEY_MAX ||
		    key[1] != ':' || strchr("cap", key[0]) == NULL)
			continue;
		auth_throttle_parse(&v, &r);
		if (r.until <= now)
			continue;
		memcpy(name, key + 2, k.mv_size - 2);
		name[k.mv_size - 2] = '\0';
		l.kind = key[0];
		l.name = name;
		l.failures = r.failures;
		l.until = r.until;
		fn(&l, ctx);
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	if (rc != MDB_NOTFOUND)
		return auth_throttle_mdb(why, rc, "read");
	return 0;
}

/* auth_throttle_split - "addr/len" into addr (out) and len, or "addr"
 * with len -1; false when addr is no IP address or len is out of range */
static bool
auth_throttle_split(const char *s, char *out, size_t size, int *len_r)
{
	unsigned char a[16];
	const char *slash = strchr(s, '/');
	size_t n = slash != NULL ? (size_t)(slash - s) : strlen(s);
	bool v6;

	*len_r = -1;
	if (n == 0 || n >= size)
		return false;
	memcpy(out, s, n);
	out[n] = '\0';
	if (inet_pton(AF_INET, out, a) == 1)
		v6 = false;
	else if (inet_pton(AF_INET6, out, a) == 1)
		v6 = true;
	else
		return false;
	if (slash != NULL) {
		char *end;
		long len;

		errno = 0;
		len = strtol(slash + 1, &end, 10);
		if (slash[1] < '0' || slash[1] > '9' || *end != '\0' ||
		    errno != 0 || len < 0 || len > (v6 ? 128 : 32))
			return false;
		*len_r = (int)len;
	}
	return true;
}

/* auth_throttle_target - an address or prefix for auth_throttle_unlock */
int
auth_throttle_target(const char *what, struct buf *why)
{
	char net[INET6_ADDRSTRLEN + 1];
	int len;

	if (auth_throttle_split(what, net, sizeof(net), &len))
		return 0;
	buf_printf(why, "%s: not an account, address or prefix (net/len)",
	    what);
	return -1;
}

/* auth_throttle_within - is entry text e ("addr" or "addr/len") inside
 * the prefix addr/len (net, already split)? */
static bool
auth_throttle_within(const char *e, const char *net, int len)
{
	char addr[INET6_ADDRSTRLEN + 1], a[128], b[128];
	int elen;

	if (!auth_throttle_split(e, addr, sizeof(addr), &elen) ||
	    (elen >= 0 && elen < len))
		return false;
	auth_client_prefix(addr, len, len, a, sizeof(a));
	auth_client_prefix(net, len, len, b, sizeof(b));
	return strcmp(a, b) == 0;
}

/* auth_throttle_matches - does the entry kind:name fall under what
 * (an account, an address, or a prefix: split into net/len)? */
static bool
auth_throttle_matches(char kind, const char *name, const char *what,
    bool account, const char *net, int len)
{
	const char *sp;

	if (kind == 'a')
		return account && strcmp(name, what) == 0;
	if (kind == 'c')
		return !account && auth_throttle_within(name, net,
		    len < 0 ? (strchr(net, ':') ? 128 : 32) : len);
	if (kind != 'p' || (sp = strrchr(name, ' ')) == NULL)
		return false;
	if (account)
		return (size_t)(sp - name) == strlen(what) &&
		    memcmp(name, what, (size_t)(sp - name)) == 0;
	if (len < 0) {
		/* an address: the account's prefix that holds it */
		char addr[INET6_ADDRSTRLEN + 1];
		int plen;

		return auth_throttle_split(sp + 1, addr, sizeof(addr), &plen) &&
		    plen >= 0 && auth_throttle_within(net, addr, plen);
	}
	return auth_throttle_within(sp + 1, net, len);
}

/* auth_throttle_unlock - forget the failures and lockouts what names */
long
auth_throttle_unlock(struct auth_throttle *t, const char *what,
    struct buf *why)
{
	char net[INET6_ADDRSTRLEN + 1], name[AUTH_THROTTLE_KEY_MAX + 1];
	bool account = strchr(what, '@') != NULL;
	MDB_cursor *cur;
	MDB_txn *txn;
	MDB_val k, v;
	long n = 0;
	int len = -1, rc;

	if (!account && (auth_throttle_target(what, why) < 0 ||
	    !auth_throttle_split(what, net, sizeof(net), &len)))
		return -1;
	if ((rc = mdb_txn_begin(t->env, NULL, 0, &txn)) != 0)
		return auth_throttle_mdb(why, rc, "begin write");
	if ((rc = mdb_cursor_open(txn, t->dbi, &cur)) != 0) {
		mdb_txn_abort(txn);
		return auth_throttle_mdb(why, rc, "read");
	}
	rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	while (rc == 0) {
		const char *key = k.mv_data;

		if (k.mv_size >= 3 && k.mv_size <= AUTH_THROTTLE_KEY_MAX &&
		    key[1] == ':') {
			memcpy(name, key + 2, k.mv_size - 2);
			name[k.mv_size - 2] = '\0';
			if (auth_throttle_matches(key[0], name, what, account,
			    net, len)) {
				if ((rc = mdb_cursor_del(cur, 0)) != 0)
					break;
				n++;
			}
		}
		/* after a delete, MDB_NEXT gives the entry that followed */
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (rc != MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		return auth_throttle_mdb(why, rc, "unlock");
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		return auth_throttle_mdb(why, rc, "unlock commit");
	return n;
}
