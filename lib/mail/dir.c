/*
 * dir - the directory of domains, users and aliases in LMDB, and the
 * separate password environment (DESIGN.md §6).
 *
 * Layout: <data_dir>/directory/ is one environment with the named
 * databases "domain" (key: domain, value: "v1"), "user" (key: local@domain,
 * value: "v1 quota=N enabled=0|1 created=T") and "alias" (key: local@domain
 * or @domain, value: targets joined by "\n"). <data_dir>/passwd/ holds one
 * unnamed database addr -> crypt(3) string, files mode 0600.
 *
 * Every call is one short transaction, so a reader sees each commit of
 * the writer at its next call. Readers open the environment read-only; the
 * named databases may not exist yet (the writer never ran), which reads
 * as "nothing hosted" until they appear.
 */
#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <lmdb.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/file.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/dir.h"
#include "mail/params.h"

#define DIR_MAP_SIZE (1ULL << 30)	/* sparse: only used pages cost */
#define DIR_KEY_MAX 320			/* below LMDB's 511-byte key limit */
#define DIR_TARGET_MAX 998
#define DIR_HASH_MAX 511
#define DIR_VALUE_MAX 65536		/* alias targets of one key */

enum { DIR_DB_DOMAIN, DIR_DB_USER, DIR_DB_ALIAS, DIR_DB_COUNT };

static const char *const dir_db_names[DIR_DB_COUNT] = {
	"domain", "user", "alias",
};

struct dir {
	MDB_env *env;
	MDB_dbi dbi[DIR_DB_COUNT];
	bool dbis_open;		/* false while the writer never created them */
	bool rdonly;
	char *path;		/* <data_dir>/directory, for messages */
};

/* dir_mdb_error - "what: LMDB reason" into why */
static int
dir_mdb_error(struct buf *why, int rc, const char *what)
{
	buf_printf(why, "%s: %s", what, mdb_strerror(rc));
	return -1;
}

/*
 * dir_key - copy a key into out, lowercased. kind 'd' is a domain, 'u' a
 * user address (local@domain), 'a' an alias key (local@domain or @domain).
 * Returns a pointer to the domain part of out, or NULL with why.
 */
static const char *
dir_key(const char *in, int kind, char *out, size_t size, struct buf *why)
{
	size_t n = strlen(in);
	const char *at;

	if (n == 0 || n >= size || n > DIR_KEY_MAX) {
		buf_printf(why, "%s \"%.64s\" is %s",
		    kind == 'd' ? "domain" : "address", in,
		    n == 0 ? "empty" : "too long");
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c <= ' ' || c == 0x7f) {
			buf_printf(why, "bad character in \"%.64s\"", in);
			return NULL;
		}
		out[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 'a' - 'A') :
		    (char)c;
	}
	out[n] = '\0';
	if (kind == 'd') {
		if (strchr(out, '@') != NULL) {
			buf_printf(why, "not a domain: \"%s\"", in);
			return NULL;
		}
		return out;
	}
	at = strrchr(out, '@');
	if (at == NULL || at[1] == '\0' || (kind == 'u' && at == out)) {
		buf_printf(why, "not an address%s: \"%s\"",
		    kind == 'a' ? " or @domain" : "", in);
		return NULL;
	}
	return at + 1;
}

/* dir_val - MDB_val of a C string (without the NUL) */
static MDB_val
dir_val(const char *s)
{
	return (MDB_val){strlen(s), (void *)s};
}

/* dir_env_open - create and open an environment at path */
static int
dir_env_open(const char *path, unsigned flags, mode_t mode, MDB_env **env_r,
    struct buf *why)
{
	MDB_env *env;
	int rc;

	*env_r = NULL;
	if ((rc = mdb_env_create(&env)) != 0)
		return dir_mdb_error(why, rc, "mdb_env_create");
	if ((rc = mdb_env_set_maxdbs(env, DIR_DB_COUNT)) != 0 ||
	    (rc = mdb_env_set_mapsize(env, DIR_MAP_SIZE)) != 0 ||
	    (rc = mdb_env_open(env, path, flags | MDB_NOTLS, mode)) != 0) {
		mdb_env_close(env);
		dir_mdb_error(why, rc, path);
		errno = rc;	/* system errors are errno values */
		return -1;
	}
	*env_r = env;
	return 0;
}

/* dir_txn_begin - a transaction, adopting a map grown by another process */
static int
dir_txn_begin(MDB_env *env, bool write, MDB_txn **txn_r, struct buf *why)
{
	int rc;

	rc = mdb_txn_begin(env, NULL, write ? 0 : MDB_RDONLY, txn_r);
	if (rc == MDB_MAP_RESIZED) {
		if ((rc = mdb_env_set_mapsize(env, 0)) == 0)
			rc = mdb_txn_begin(env, NULL, write ? 0 : MDB_RDONLY,
			    txn_r);
	}
	if (rc != 0)
		return dir_mdb_error(why, rc, "begin transaction");
	return 0;
}

/* dir_dbis_open - open (writer: create) the named databases */
static int
dir_dbis_open(struct dir *d, struct buf *why)
{
	MDB_txn *txn;
	int rc = 0;

	if (d->dbis_open)
		return 0;
	if (dir_txn_begin(d->env, !d->rdonly, &txn, why) < 0)
		return -1;
	for (int i = 0; i < DIR_DB_COUNT && rc == 0; i++)
		rc = mdb_dbi_open(txn, dir_db_names[i],
		    d->rdonly ? 0 : MDB_CREATE, &d->dbi[i]);
	if (rc == MDB_NOTFOUND && d->rdonly) {
		/* the writer never ran: empty until it does */
		mdb_txn_abort(txn);
		return 0;
	}
	if (rc != 0) {
		mdb_txn_abort(txn);
		return dir_mdb_error(why, rc, "open databases");
	}
	/* committing keeps the handles for the whole environment */
	if ((rc = mdb_txn_commit(txn)) != 0)
		return dir_mdb_error(why, rc, "open databases");
	d->dbis_open = true;
	return 0;
}

/* dir_open - open (DIR_WRITE: create if missing) the directory */
int
dir_open(const char *data_dir, int mode, struct dir **d_r, struct buf *why)
{
	struct dir *d;

	*d_r = NULL;
	d = xcalloc(1, sizeof(*d));
	d->rdonly = mode != DIR_WRITE;
	d->path = xasprintf("%s/directory", data_dir);
	if (!d->rdonly && (file_mkdirs(data_dir, 0750, why) < 0 ||
	    file_mkdirs(d->path, 0750, why) < 0))
		goto fail;
	if (dir_env_open(d->path, d->rdonly ? MDB_RDONLY : 0, 0660, &d->env,
	    why) < 0)
		goto fail;
	if (!d->rdonly) {
		/* readers in the directory group write the lock file */
		for (int i = 0; i < 2; i++) {
			char *f = xasprintf("%s/%s", d->path,
			    i ? "lock.mdb" : "data.mdb");

			if (chmod(f, 0660) < 0)
				msg_warn("chmod %s: %m", f);
			x_free(&f);
		}
	}
	if (dir_dbis_open(d, why) < 0)
		goto fail;
	*d_r = d;
	return 0;

fail:
	dir_close(&d);
	return -1;
}

/* dir_close - close the environment and free the handle */
void
dir_close(struct dir **dp)
{
	struct dir *d = *dp;

	if (d == NULL)
		return;
	if (d->env != NULL)
		mdb_env_close(d->env);
	x_free(&d->path);
	x_free(dp);
}

/* dir_reader_check_one - clear stale readers of one environment */
static int
dir_reader_check_one(const char *path, struct buf *why)
{
	size_t why_len = why->len;
	MDB_env *env;
	int rc, dead = 0;

	if (access(path, F_OK) < 0 && errno == ENOENT)
		return 0;
	if (dir_env_open(path, MDB_RDONLY, 0, &env, why) < 0) {
		if (errno != ENOENT)
			return -1;
		buf_truncate(why, why_len);	/* no data.mdb: no readers */
		return 0;
	}
	rc = mdb_reader_check(env, &dead);
	mdb_env_close(env);
	if (rc != 0)
		return dir_mdb_error(why, rc, path);
	if (dead > 0)
		msg_info("%s: cleared %d stale reader slot(s)", path, dead);
	return 0;
}

/* dir_reader_check - clear stale reader slots of directory/ (master) */
int
dir_reader_check(const char *data_dir, struct buf *why)
{
	char *path;
	int rc;

	path = xasprintf("%s/directory", data_dir);
	rc = dir_reader_check_one(path, why);
	x_free(&path);
	return rc;
}

/* dir_passwd_reader_check - the same for passwd/ (authd, as auth_user) */
int
dir_passwd_reader_check(const char *data_dir, struct buf *why)
{
	char *path;
	int rc;

	path = xasprintf("%s/passwd", data_dir);
	rc = dir_reader_check_one(path, why);
	x_free(&path);
	return rc;
}

/* dir_read_begin - a read transaction; 0 with *txn_r NULL if empty */
static int
dir_read_begin(struct dir *d, MDB_txn **txn_r, struct buf *why)
{
	*txn_r = NULL;
	if (dir_dbis_open(d, why) < 0)
		return -1;
	if (!d->dbis_open)
		return 0;
	return dir_txn_begin(d->env, false, txn_r, why);
}

/* dir_write_begin - the writer's transaction */
static int
dir_write_begin(struct dir *d, MDB_txn **txn_r, struct buf *why)
{
	*txn_r = NULL;
	if (d->rdonly) {
		buf_printf(why, "%s: opened read-only", d->path);
		return -1;
	}
	return dir_txn_begin(d->env, true, txn_r, why);
}

/* dir_commit - commit, or abort if rc (an LMDB code) says so; 0 or -1 */
static int
dir_commit(MDB_txn *txn, int rc, struct buf *why)
{
	if (rc != 0) {
		mdb_txn_abort(txn);
		return dir_mdb_error(why, rc, "write");
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		return dir_mdb_error(why, rc, "commit");
	return 0;
}

/* dir_get - look key up in db: 1 found (val set), 0 not, -1 error */
static int
dir_get(MDB_txn *txn, MDB_dbi dbi, const char *key, MDB_val *val,
    struct buf *why)
{
	MDB_val k = dir_val(key);
	int rc;

	if ((rc = mdb_get(txn, dbi, &k, val)) == 0)
		return 1;
	if (rc == MDB_NOTFOUND)
		return 0;
	return dir_mdb_error(why, rc, key);
}

/* dir_user_parse - decode a user record; unknown fields are skipped */
static int
dir_user_parse(const MDB_val *v, struct dir_user *u)
{
	char text[256], *tok, *save = NULL;
	bool seen_version = false;

	if (v->mv_size >= sizeof(text))
		return -1;
	memcpy(text, v->mv_data, v->mv_size);
	text[v->mv_size] = '\0';
	u->quota = -1;
	u->enabled = true;
	u->created = 0;
	for (tok = strtok_r(text, " ", &save); tok != NULL;
	    tok = strtok_r(NULL, " ", &save)) {
		char *end;

		if (!seen_version) {
			if (strcmp(tok, "v1") != 0)
				return -1;
			seen_version = true;
			continue;
		}
		errno = 0;
		if (strncmp(tok, "quota=", 6) == 0) {
			u->quota = strtoll(tok + 6, &end, 10);
		} else if (strncmp(tok, "enabled=", 8) == 0) {
			u->enabled = strtoll(tok + 8, &end, 10) != 0;
		} else if (strncmp(tok, "created=", 8) == 0) {
			u->created = strtoll(tok + 8, &end, 10);
		} else {
			continue;
		}
		if (errno != 0 || *end != '\0')
			return -1;
	}
	return seen_version ? 0 : -1;
}

/* dir_user_format - encode a user record */
static void
dir_user_format(const struct dir_user *u, struct buf *out)
{
	buf_printf(out, "v1 quota=%lld enabled=%d created=%lld", u->quota,
	    u->enabled ? 1 : 0, u->created);
}

/* dir_user_lookup - get and decode one user in txn */
static int
dir_user_lookup(struct dir *d, MDB_txn *txn, const char *key,
    struct dir_user *u, struct buf *why)
{
	MDB_val v;
	int found;

	if ((found = dir_get(txn, d->dbi[DIR_DB_USER], key, &v, why)) <= 0)
		return found;
	if (dir_user_parse(&v, u) < 0) {
		buf_printf(why, "user %s: malformed record", key);
		return -1;
	}
	return 1;
}

/* dir_domain_exists - 1 if the domain is hosted */
int
dir_domain_exists(struct dir *d, const char *domain, struct buf *why)
{
	char key[DIR_KEY_MAX + 1];
	MDB_txn *txn;
	MDB_val v;
	int found;

	if (dir_key(domain, 'd', key, sizeof(key), why) == NULL)
		return -1;
	if (dir_read_begin(d, &txn, why) < 0)
		return -1;
	if (txn == NULL)
		return 0;
	found = dir_get(txn, d->dbi[DIR_DB_DOMAIN], key, &v, why);
	mdb_txn_abort(txn);
	return found;
}

/* dir_user_get - 1 with *u filled in if the user exists */
int
dir_user_get(struct dir *d, const char *addr, struct dir_user *u,
    struct buf *why)
{
	char key[DIR_KEY_MAX + 1];
	MDB_txn *txn;
	int found;

	if (dir_key(addr, 'u', key, sizeof(key), why) == NULL)
		return -1;
	if (dir_read_begin(d, &txn, why) < 0)
		return -1;
	if (txn == NULL)
		return 0;
	found = dir_user_lookup(d, txn, key, u, why);
	mdb_txn_abort(txn);
	return found;
}

/* dir_alias_get - targets appended to out, separated by "\n" */
int
dir_alias_get(struct dir *d, const char *key, struct buf *out,
    struct buf *why)
{
	char k[DIR_KEY_MAX + 1];
	MDB_txn *txn;
	MDB_val v;
	int found;

	if (dir_key(key, 'a', k, sizeof(k), why) == NULL)
		return -1;
	if (dir_read_begin(d, &txn, why) < 0)
		return -1;
	if (txn == NULL)
		return 0;
	if ((found = dir_get(txn, d->dbi[DIR_DB_ALIAS], k, &v, why)) > 0)
		buf_append(out, v.mv_data, v.mv_size);
	mdb_txn_abort(txn);
	return found;
}

/*
 * dir_rcpt_try - the user, then the alias, of one local part in txn.
 * Returns DIR_RCPT_OK/DISABLED, DIR_RCPT_UNKNOWN if neither exists.
 */
static enum dir_rcpt
dir_rcpt_try(struct dir *d, MDB_txn *txn, const char *key, bool user,
    struct buf *why)
{
	struct dir_user u;
	MDB_val v;
	int found;

	if (user) {
		found = dir_user_lookup(d, txn, key, &u, why);
		if (found > 0)
			return u.enabled ? DIR_RCPT_OK : DIR_RCPT_DISABLED;
	} else {
		found = dir_get(txn, d->dbi[DIR_DB_ALIAS], key, &v, why);
		if (found > 0)
			return DIR_RCPT_OK;
	}
	return found < 0 ? DIR_RCPT_ERROR : DIR_RCPT_UNKNOWN;
}

/* dir_rcpt_check - can addr be delivered here? */
enum dir_rcpt
dir_rcpt_check(struct dir *d, const char *addr, char delim, struct buf *why)
{
	char key[DIR_KEY_MAX + 1], bare[DIR_KEY_MAX + 1], *at, *ext;
	const char *domain;
	enum dir_rcpt r = DIR_RCPT_UNKNOWN;
	bool has_bare = false;
	MDB_txn *txn;
	MDB_val v;
	int found;

	if (dir_key(addr, 'a', key, sizeof(key), why) == NULL)
		return DIR_RCPT_UNKNOWN;	/* no address: nobody takes it */
	domain = strrchr(key, '@') + 1;
	if (dir_read_begin(d, &txn, why) < 0)
		return DIR_RCPT_ERROR;
	if (txn == NULL)
		return DIR_RCPT_REMOTE;
	found = dir_get(txn, d->dbi[DIR_DB_DOMAIN], domain, &v, why);
	if (found <= 0) {
		mdb_txn_abort(txn);
		return found < 0 ? DIR_RCPT_ERROR : DIR_RCPT_REMOTE;
	}
	if (key[0] == '@') {
		/* "@domain" names the catch-all, not a mailbox */
		mdb_txn_abort(txn);
		return DIR_RCPT_UNKNOWN;
	}
	/* alice+tag@d -> alice@d; no stripping that leaves nothing */
	at = strrchr(key, '@');
	if (delim != '\0' && delim != '@' &&
	    (ext = memchr(key, delim, (size_t)(at - key))) != NULL &&
	    ext != key) {
		size_t n = (size_t)(ext - key);

		memcpy(bare, key, n);
		strcpy(bare + n, at);
		has_bare = true;
	}
	r = dir_rcpt_try(d, txn, key, true, why);
	if (r == DIR_RCPT_UNKNOWN && has_bare)
		r = dir_rcpt_try(d, txn, bare, true, why);
	if (r == DIR_RCPT_UNKNOWN)
		r = dir_rcpt_try(d, txn, key, false, why);
	if (r == DIR_RCPT_UNKNOWN && has_bare)
		r = dir_rcpt_try(d, txn, bare, false, why);
	if (r == DIR_RCPT_UNKNOWN)
		r = dir_rcpt_try(d, txn, at, false, why);
	mdb_txn_abort(txn);
	return r;
}

/* dir_domain_add - host a new domain */
int
dir_domain_add(struct dir *d, const char *domain, struct buf *why)
{
	char key[DIR_KEY_MAX + 1];
	MDB_txn *txn;
	MDB_val k, v = dir_val("v1");
	int rc;

	if (dir_key(domain, 'd', key, sizeof(key), why) == NULL)
		return -1;
	if (dir_write_begin(d, &txn, why) < 0)
		return -1;
	k = dir_val(key);
	rc = mdb_put(txn, d->dbi[DIR_DB_DOMAIN], &k, &v, MDB_NOOVERWRITE);
	if (rc == MDB_KEYEXIST) {
		mdb_txn_abort(txn);
		buf_printf(why, "domain %s exists", key);
		return -1;
	}
	return dir_commit(txn, rc, why);
}

/* dir_collect - keys of db whose domain part is domain, NUL-separated */
static int
dir_collect(MDB_txn *txn, MDB_dbi dbi, const char *domain, struct buf *keys,
    int *count, struct buf *why)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	if ((rc = mdb_cursor_open(txn, dbi, &cur)) != 0)
		return dir_mdb_error(why, rc, "cursor");
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		const char *p = k.mv_data;
		const char *at = memrchr(p, '@', k.mv_size);
		size_t dlen = strlen(domain);

		if (at == NULL || (size_t)(p + k.mv_size - at - 1) != dlen ||
		    memcmp(at + 1, domain, dlen) != 0)
			continue;
		buf_append(keys, p, k.mv_size);
		buf_putc(keys, '\0');
		(*count)++;
	}
	mdb_cursor_close(cur);
	if (rc != MDB_NOTFOUND)
		return dir_mdb_error(why, rc, "cursor");
	return 0;
}

/* dir_del_keys - delete every NUL-separated key of keys from db */
static int
dir_del_keys(MDB_txn *txn, MDB_dbi dbi, const struct buf *keys)
{
	for (size_t off = 0; off < keys->len;) {
		const char *key = keys->data + off;
		MDB_val k = dir_val(key);
		int rc;

		if ((rc = mdb_del(txn, dbi, &k, NULL)) != 0)
			return rc;
		off += k.mv_size + 1;
	}
	return 0;
}

/* dir_domain_del - refuses while users or aliases of it exist, unless force */
int
dir_domain_del(struct dir *d, const char *domain, bool force,
    struct buf *why)
{
	char key[DIR_KEY_MAX + 1];
	struct buf users = BUF_INIT, aliases = BUF_INIT;
	int nusers = 0, naliases = 0, rc;
	MDB_txn *txn;
	MDB_val k, v;

	if (dir_key(domain, 'd', key, sizeof(key), why) == NULL)
		return -1;
	if (dir_write_begin(d, &txn, why) < 0)
		return -1;
	k = dir_val(key);
	if ((rc = dir_get(txn, d->dbi[DIR_DB_DOMAIN], key, &v, why)) <= 0) {
		mdb_txn_abort(txn);
		if (rc == 0)
			buf_printf(why, "domain %s does not exist", key);
		return -1;
	}
	if (dir_collect(txn, d->dbi[DIR_DB_USER], key, &users, &nusers,
	    why) < 0 || dir_collect(txn, d->dbi[DIR_DB_ALIAS], key, &aliases,
	    &naliases, why) < 0) {
		rc = -1;
		goto out;
	}
	if ((nusers || naliases) && !force) {
		buf_printf(why, "domain %s still has %d user(s) and %d "
		    "alias(es)", key, nusers, naliases);
		rc = -1;
		goto out;
	}
	if ((rc = dir_del_keys(txn, d->dbi[DIR_DB_USER], &users)) == 0 &&
	    (rc = dir_del_keys(txn, d->dbi[DIR_DB_ALIAS], &aliases)) == 0)
		rc = mdb_del(txn, d->dbi[DIR_DB_DOMAIN], &k, NULL);
	buf_free(&users);
	buf_free(&aliases);
	return dir_commit(txn, rc, why);

out:
	mdb_txn_abort(txn);
	buf_free(&users);
	buf_free(&aliases);
	return rc;
}

/* dir_hosted - check in a write txn that domain is hosted; -1 with why */
static int
dir_hosted(struct dir *d, MDB_txn *txn, const char *domain, struct buf *why)
{
	MDB_val v;
	int found;

	if ((found = dir_get(txn, d->dbi[DIR_DB_DOMAIN], domain, &v,
	    why)) == 0)
		buf_printf(why, "domain %s is not hosted here", domain);
	return found > 0 ? 0 : -1;
}

/* dir_user_put - store a user record */
static int
dir_user_put(struct dir *d, MDB_txn *txn, const char *key,
    const struct dir_user *u, unsigned flags)
{
	struct buf text = BUF_INIT;
	MDB_val k = dir_val(key), v;
	int rc;

	dir_user_format(u, &text);
	v = (MDB_val){text.len, text.data};
	rc = mdb_put(txn, d->dbi[DIR_DB_USER], &k, &v, flags);
	buf_free(&text);
	return rc;
}

/* dir_user_add - add a mailbox user to a hosted domain */
int
dir_user_add(struct dir *d, const char *addr, long long quota,
    struct buf *why)
{
	char key[DIR_KEY_MAX + 1];
	const char *domain;
	struct dir_user u = {quota, true, (long long)time(NULL)};
	MDB_txn *txn;
	int rc;

	if ((domain = dir_key(addr, 'u', key, sizeof(key), why)) == NULL)
		return -1;
	if (quota < -1) {
		buf_printf(why, "bad quota %lld", quota);
		return -1;
	}
	if (dir_write_begin(d, &txn, why) < 0)
		return -1;
	if (dir_hosted(d, txn, domain, why) < 0) {
		mdb_txn_abort(txn);
		return -1;
	}
	rc = dir_user_put(d, txn, key, &u, MDB_NOOVERWRITE);
	if (rc == MDB_KEYEXIST) {
		mdb_txn_abort(txn);
		buf_printf(why, "user %s exists", key);
		return -1;
	}
	return dir_commit(txn, rc, why);
}

/* dir_user_del - remove a user (its password and mail stay) */
int
dir_user_del(struct dir *d, const char *addr, struct buf *why)
{
	char key[DIR_KEY_MAX + 1];
	MDB_txn *txn;
	MDB_val k;
	int rc;

	if (dir_key(addr, 'u', key, sizeof(key), why) == NULL)
		return -1;
	if (dir_write_begin(d, &txn, why) < 0)
		return -1;
	k = dir_val(key);
	rc = mdb_del(txn, d->dbi[DIR_DB_USER], &k, NULL);
	if (rc == MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		buf_printf(why, "user %s does not exist", key);
		return -1;
	}
	return dir_commit(txn, rc, why);
}

/* dir_user_update - change one field of an existing user */
static int
dir_user_update(struct dir *d, const char *addr, const long long *quota,
    const bool *enabled, struct buf *why)
{
	char key[DIR_KEY_MAX + 1];
	struct dir_user u;
	MDB_txn *txn;
	int found;

	if (dir_key(addr, 'u', key, sizeof(key), why) == NULL)
		return -1;
	if (dir_write_begin(d, &txn, why) < 0)
		return -1;
	if ((found = dir_user_lookup(d, txn, key, &u, why)) <= 0) {
		mdb_txn_abort(txn);
		if (found == 0)
			buf_printf(why, "user %s does not exist", key);
		return -1;
	}
	if (quota != NULL)
		u.quota = *quota;
	if (enabled != NULL)
		u.enabled = *enabled;
	return dir_commit(txn, dir_user_put(d, txn, key, &u, 0), why);
}

/* dir_user_set_quota - bytes; -1 default_quota; 0 none */
int
dir_user_set_quota(struct dir *d, const char *addr, long long quota,
    struct buf *why)
{
	if (quota < -1) {
		buf_printf(why, "bad quota %lld", quota);
		return -1;
	}
	return dir_user_update(d, addr, &quota, NULL, why);
}

/* dir_user_set_enabled - enable or disable a user */
int
dir_user_set_enabled(struct dir *d, const char *addr, bool enabled,
    struct buf *why)
{
	return dir_user_update(d, addr, NULL, &enabled, why);
}

/* dir_target_check - an alias target: one address, no blanks */
static int
dir_target_check(const char *target, struct buf *why)
{
	size_t n = strlen(target);
	const char *at = strrchr(target, '@');

	if (n == 0 || n > DIR_TARGET_MAX || at == NULL || at == target ||
	    at[1] == '\0') {
		buf_printf(why, "not an address: \"%.64s\"", target);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)target[i] <= ' ' || target[i] == 0x7f) {
			buf_printf(why, "bad character in \"%.64s\"", target);
			return -1;
		}
	}
	return 0;
}

/* dir_target_find - offset of target in a "\n"-joined list, or -1 */
static long
dir_target_find(const char *list, size_t len, const char *target)
{
	size_t tlen = strlen(target);

	for (size_t off = 0; off < len;) {
		const char *p = list + off;
		const char *nl = memchr(p, '\n', len - off);
		size_t n = nl ? (size_t)(nl - p) : len - off;

		if (n == tlen && str_ncasecmp(p, target, n) == 0)
			return (long)off;
		off += n + 1;
	}
	return -1;
}

/* dir_alias_add - add one target to key (creating the alias) */
int
dir_alias_add(struct dir *d, const char *key, const char *target,
    struct buf *why)
{
	char k[DIR_KEY_MAX + 1];
	const char *domain;
	struct buf list = BUF_INIT;
	MDB_txn *txn;
	MDB_val kv, v;
	int found, rc;

	if ((domain = dir_key(key, 'a', k, sizeof(k), why)) == NULL ||
	    dir_target_check(target, why) < 0)
		return -1;
	if (dir_write_begin(d, &txn, why) < 0)
		return -1;
	if (dir_hosted(d, txn, domain, why) < 0 ||
	    (found = dir_get(txn, d->dbi[DIR_DB_ALIAS], k, &v, why)) < 0) {
		mdb_txn_abort(txn);
		return -1;
	}
	if (found) {
		if (dir_target_find(v.mv_data, v.mv_size, target) >= 0) {
			mdb_txn_abort(txn);
			return 0;	/* already there */
		}
		if (v.mv_size + strlen(target) + 1 > DIR_VALUE_MAX) {
			mdb_txn_abort(txn);
			buf_printf(why, "alias %s has too many targets", k);
			return -1;
		}
		buf_append(&list, v.mv_data, v.mv_size);
		buf_putc(&list, '\n');
	}
	buf_puts(&list, target);
	kv = dir_val(k);
	v = (MDB_val){list.len, list.data};
	rc = mdb_put(txn, d->dbi[DIR_DB_ALIAS], &kv, &v, 0);
	buf_free(&list);
	return dir_commit(txn, rc, why);
}

/* dir_alias_del - remove one target, or the whole alias if target NULL */
int
dir_alias_del(struct dir *d, const char *key, const char *target,
    struct buf *why)
{
	char k[DIR_KEY_MAX + 1];
	struct buf list = BUF_INIT;
	MDB_txn *txn;
	MDB_val kv, v;
	long off;
	int found, rc;

	if (dir_key(key, 'a', k, sizeof(k), why) == NULL)
		return -1;
	if (dir_write_begin(d, &txn, why) < 0)
		return -1;
	if ((found = dir_get(txn, d->dbi[DIR_DB_ALIAS], k, &v, why)) <= 0) {
		mdb_txn_abort(txn);
		if (found == 0)
			buf_printf(why, "alias %s does not exist", k);
		return -1;
	}
	kv = dir_val(k);
	if (target == NULL)
		return dir_commit(txn, mdb_del(txn, d->dbi[DIR_DB_ALIAS], &kv,
		    NULL), why);
	if ((off = dir_target_find(v.mv_data, v.mv_size, target)) < 0) {
		mdb_txn_abort(txn);
		buf_printf(why, "%s is not a target of alias %s", target, k);
		return -1;
	}
	/* rebuild the list without the target */
	buf_append(&list, v.mv_data, (size_t)off);
	if ((size_t)off + strlen(target) < v.mv_size)
		buf_append(&list, (char *)v.mv_data + off + strlen(target) + 1,
		    v.mv_size - (size_t)off - strlen(target) - 1);
	else if (list.len > 0)
		buf_truncate(&list, list.len - 1);	/* the last one: "\n" */
	if (list.len == 0) {
		rc = mdb_del(txn, d->dbi[DIR_DB_ALIAS], &kv, NULL);
	} else {
		v = (MDB_val){list.len, list.data};
		rc = mdb_put(txn, d->dbi[DIR_DB_ALIAS], &kv, &v, 0);
	}
	buf_free(&list);
	return dir_commit(txn, rc, why);
}

/*
 * dir_list - walk one database in key order; entries whose domain part
 * differs from domain (when not NULL) are skipped. Calls fn with the key
 * and value as C strings.
 */
static int
dir_list(struct dir *d, int db, const char *domain,
    int (*fn)(const char *key, const char *value, void *ctx), void *ctx,
    struct buf *why)
{
	char dom[DIR_KEY_MAX + 1];
	struct buf key = BUF_INIT, value = BUF_INIT;
	MDB_cursor *cur;
	MDB_txn *txn;
	MDB_val k, v;
	int rc, ret = 0;

	if (domain != NULL && dir_key(domain, 'd', dom, sizeof(dom), why) ==
	    NULL)
		return -1;
	if (dir_read_begin(d, &txn, why) < 0)
		return -1;
	if (txn == NULL)
		return 0;
	if ((rc = mdb_cursor_open(txn, d->dbi[db], &cur)) != 0) {
		mdb_txn_abort(txn);
		return dir_mdb_error(why, rc, "cursor");
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		buf_reset(&key);
		buf_append(&key, k.mv_data, k.mv_size);
		if (domain != NULL) {
			const char *at = strrchr(key.data, '@');

			if (at == NULL || strcmp(at + 1, dom) != 0)
				continue;
		}
		buf_reset(&value);
		buf_append(&value, v.mv_data, v.mv_size);
		if (fn(key.data, value.data, ctx) < 0) {
			buf_printf(why, "malformed record %s", key.data);
			ret = -1;
			break;
		}
	}
	if (ret == 0 && rc != MDB_NOTFOUND)
		ret = dir_mdb_error(why, rc, "cursor");
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	buf_free(&key);
	buf_free(&value);
	return ret;
}

struct dir_list_ctx {
	dir_domain_fn *domain_fn;
	dir_user_fn *user_fn;
	dir_alias_fn *alias_fn;
	void *ctx;
};

/* dir_list_domain - one domain entry */
static int
dir_list_domain(const char *key, const char *value, void *ctx)
{
	struct dir_list_ctx *lc = ctx;

	lc->domain_fn(key, lc->ctx);
	return 0;
}

/* dir_list_user - one user entry */
static int
dir_list_user(const char *key, const char *value, void *ctx)
{
	struct dir_list_ctx *lc = ctx;
	MDB_val v = dir_val(value);
	struct dir_user u;

	if (dir_user_parse(&v, &u) < 0)
		return -1;
	lc->user_fn(key, &u, lc->ctx);
	return 0;
}

/* dir_list_alias - one alias entry */
static int
dir_list_alias(const char *key, const char *value, void *ctx)
{
	struct dir_list_ctx *lc = ctx;

	lc->alias_fn(key, value, lc->ctx);
	return 0;
}

/* dir_domain_list - every hosted domain in order */
int
dir_domain_list(struct dir *d, dir_domain_fn *fn, void *ctx, struct buf *why)
{
	struct dir_list_ctx lc = {.domain_fn = fn, .ctx = ctx};

	return dir_list(d, DIR_DB_DOMAIN, NULL, dir_list_domain, &lc, why);
}

/* dir_user_list - users (of domain, or all) in key order */
int
dir_user_list(struct dir *d, const char *domain, dir_user_fn *fn, void *ctx,
    struct buf *why)
{
	struct dir_list_ctx lc = {.user_fn = fn, .ctx = ctx};

	return dir_list(d, DIR_DB_USER, domain, dir_list_user, &lc, why);
}

/* dir_alias_list - aliases (of domain, or all) in key order */
int
dir_alias_list(struct dir *d, const char *domain, dir_alias_fn *fn,
    void *ctx, struct buf *why)
{
	struct dir_list_ctx lc = {.alias_fn = fn, .ctx = ctx};

	return dir_list(d, DIR_DB_ALIAS, domain, dir_list_alias, &lc, why);
}

/*
 * dir_passwd_owner - root (heraldctl) made or changed the password
 * database: give it to auth_user, so that authd, which runs as that user,
 * can read passwords added while herald runs. Without a configured or
 * existing auth_user (unit tests, tools) nothing changes. auth_user can
 * write the folder, so the files are changed through descriptors opened
 * without following links: a link planted there is refused, not chowned.
 */
static void
dir_passwd_owner(const char *data_dir)
{
	static const char *const names[] = {"data.mdb", "lock.mdb", NULL};
	struct file_owner want = {(uid_t)-1, (gid_t)-1, 0, 0};
	struct buf why = BUF_INIT;
	struct passwd *pw;
	int data, fd;

	if (var_auth_user == NULL || *var_auth_user == '\0' ||
	    (pw = getpwnam(var_auth_user)) == NULL)
		return;
	want.uid = pw->pw_uid;
	want.gid = pw->pw_gid;
	if ((data = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		msg_warn("open %s: %m", data_dir);
		return;
	}
	if (file_fix_at(data, "passwd", S_IFDIR, &want, &fd, &why) > 0) {
		for (int i = 0; names[i] != NULL; i++) {
			buf_reset(&why);
			if (file_fix_at(fd, names[i], S_IFREG, &want, NULL,
			    &why) < 0)
				msg_warn("%s/passwd/%s", data_dir,
				    buf_cstr(&why));
		}
		(void)close(fd);
	} else if (why.len > 0) {
		msg_warn("%s/%s", data_dir, buf_cstr(&why));
	}
	(void)close(data);
	buf_free(&why);
}

/*
 * dir_passwd_env - open the password database in the folder path. With
 * data_dir (not NULL) and write, the folders are made if missing first.
 * Returns 1 when open, 0 when it does not exist (readers only), -1 with
 * why.
 */
static int
dir_passwd_env(const char *data_dir, const char *pwdir, bool write,
    MDB_env **env_r, MDB_dbi *dbi_r, struct buf *why)
{
	char *path = xstrdup(pwdir);
	size_t why_len = why->len;
	MDB_txn *txn;
	int rc;

	*env_r = NULL;
	if (write && data_dir != NULL && (file_mkdirs(data_dir, 0750,
	    why) < 0 || file_mkdirs(path, 0700, why) < 0)) {
		x_free(&path);
		return -1;
	}
	if (dir_env_open(path, write ? 0 : MDB_RDONLY, 0600, env_r,
	    why) < 0) {
		bool missing = !write && errno == ENOENT;

		x_free(&path);
		if (missing) {
			buf_truncate(why, why_len);
			return 0;
		}
		return -1;
	}
	if (write && data_dir != NULL && geteuid() == 0)
		dir_passwd_owner(data_dir);
	x_free(&path);
	if (dir_txn_begin(*env_r, false, &txn, why) < 0)
		goto fail;
	rc = mdb_dbi_open(txn, NULL, 0, dbi_r);
	if (rc != 0) {
		mdb_txn_abort(txn);
		dir_mdb_error(why, rc, "open password database");
		goto fail;
	}
	if ((rc = mdb_txn_commit(txn)) != 0) {
		dir_mdb_error(why, rc, "open password database");
		goto fail;
	}
	return 1;

fail:
	mdb_env_close(*env_r);
	*env_r = NULL;
	return -1;
}

/* dir_passwd_check - a hash fit to store: 1..DIR_HASH_MAX printable */
static int
dir_passwd_check(const char *hash, struct buf *why)
{
	size_t n = strlen(hash);

	if (n == 0 || n > DIR_HASH_MAX) {
		buf_printf(why, "bad password hash length %zu", n);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)hash[i] <= ' ' || hash[i] == 0x7f) {
			buf_printf(why, "bad character in password hash");
			return -1;
		}
	}
	return 0;
}

/* dir_passwd_set_in - store the crypt(3) hash of addr in pwdir */
static int
dir_passwd_set_in(const char *data_dir, const char *pwdir, const char *addr,
    const char *hash, struct buf *why)
{
	char key[DIR_KEY_MAX + 1];
	MDB_env *env;
	MDB_dbi dbi;
	MDB_txn *txn;
	MDB_val k, v;
	int rc;

	if (dir_key(addr, 'u', key, sizeof(key), why) == NULL ||
	    dir_passwd_check(hash, why) < 0)
		return -1;
	if (dir_passwd_env(data_dir, pwdir, true, &env, &dbi, why) < 0)
		return -1;
	if (dir_txn_begin(env, true, &txn, why) < 0) {
		mdb_env_close(env);
		return -1;
	}
	k = dir_val(key);
	v = dir_val(hash);
	rc = mdb_put(txn, dbi, &k, &v, 0);
	rc = dir_commit(txn, rc, why);
	mdb_env_close(env);
	return rc;
}

/* dir_passwd_get_in - 1 with the hash in out, 0 none, -1 error */
static int
dir_passwd_get_in(const char *pwdir, const char *addr, struct buf *out,
    struct buf *why)
{
	char key[DIR_KEY_MAX + 1];
	MDB_env *env;
	MDB_dbi dbi;
	MDB_txn *txn;
	MDB_val v;
	int found;

	if (dir_key(addr, 'u', key, sizeof(key), why) == NULL)
		return -1;
	if ((found = dir_passwd_env(NULL, pwdir, false, &env, &dbi,
	    why)) <= 0)
		return found;
	if (dir_txn_begin(env, false, &txn, why) < 0) {
		mdb_env_close(env);
		return -1;
	}
	if ((found = dir_get(txn, dbi, key, &v, why)) > 0)
		buf_append(out, v.mv_data, v.mv_size);
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return found;
}

/* dir_passwd_del_in - forget the hash of addr; 0 also if there was none */
static int
dir_passwd_del_in(const char *data_dir, const char *pwdir, const char *addr,
    struct buf *why)
{
	char key[DIR_KEY_MAX + 1];
	MDB_env *env;
	MDB_dbi dbi;
	MDB_txn *txn;
	MDB_val k;
	int rc;

	if (dir_key(addr, 'u', key, sizeof(key), why) == NULL)
		return -1;
	if (access(pwdir, F_OK) < 0 && errno == ENOENT)
		return 0;
	if (dir_passwd_env(data_dir, pwdir, true, &env, &dbi, why) < 0)
		return -1;
	if (dir_txn_begin(env, true, &txn, why) < 0) {
		mdb_env_close(env);
		return -1;
	}
	k = dir_val(key);
	rc = mdb_del(txn, dbi, &k, NULL);
	if (rc == MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		rc = 0;
	} else {
		rc = dir_commit(txn, rc, why);
	}
	mdb_env_close(env);
	return rc;
}

/*
 * The password database as root (heraldctl). auth_user can write the
 * passwd/ folder, and LMDB opens, creates, truncates and writes
 * data.mdb and lock.mdb by name, following links: root working there
 * would write wherever a link authd planted points (lock.mdb ->
 * /etc/shadow would be overwritten). So root only makes the folder and
 * gives it to auth_user, through descriptors (dir_passwd_owner), and a
 * child that has become auth_user, started in the folder by fchdir, does
 * the LMDB work; it can reach nothing authd could not reach already.
 */
enum dir_passwd_op { DIR_PASSWD_SET, DIR_PASSWD_GET, DIR_PASSWD_DEL };

#define DIR_HELPER_WHY_MAX 4096	/* longest reason the child returns */

/* what the child writes to the pipe, followed by out and why */
struct dir_helper_reply {
	int rc;
	uint32_t out_len;
	uint32_t why_len;
};

/* dir_passwd_helper_user - root, with an auth_user that is not root:
 * its uid and gid, and true (the helper child must do the work) */
static bool
dir_passwd_helper_user(uid_t *uid_r, gid_t *gid_r)
{
	struct passwd *pw;

	if (geteuid() != 0 || var_auth_user == NULL ||
	    *var_auth_user == '\0' || (pw = getpwnam(var_auth_user)) == NULL ||
	    pw->pw_uid == 0)
		return false;
	*uid_r = pw->pw_uid;
	*gid_r = pw->pw_gid;
	return true;
}

/* dir_write_all - write n bytes to fd; -1 on error */
static int
dir_write_all(int fd, const void *data, size_t n)
{
	const char *p = data;

	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* dir_passwd_child - the helper: become uid/gid in the folder pfd, do
 * op, write the reply to fd; never returns */
static void __attribute__((noreturn))
dir_passwd_child(enum dir_passwd_op op, int pfd, uid_t uid, gid_t gid,
    const char *addr, const char *hash, int fd)
{
	struct dir_helper_reply r;
	struct buf out = BUF_INIT, why = BUF_INIT;

	if (fchdir(pfd) < 0 || setgroups(1, &gid) < 0 || setgid(gid) < 0 ||
	    setuid(uid) < 0 || getuid() != uid || geteuid() != uid ||
	    setuid(0) == 0)
		_exit(2);
	(void)close(pfd);
	switch (op) {
	case DIR_PASSWD_SET:
		r.rc = dir_passwd_set_in(NULL, ".", addr, hash, &why);
		break;
	case DIR_PASSWD_GET:
		r.rc = dir_passwd_get_in(".", addr, &out, &why);
		break;
	default:
		r.rc = dir_passwd_del_in(NULL, ".", addr, &why);
		break;
	}
	if (why.len > DIR_HELPER_WHY_MAX)
		buf_truncate(&why, DIR_HELPER_WHY_MAX);
	r.out_len = (uint32_t)out.len;
	r.why_len = (uint32_t)why.len;
	if (dir_write_all(fd, &r, sizeof(r)) < 0 ||
	    dir_write_all(fd, out.data, out.len) < 0 ||
	    dir_write_all(fd, why.data, why.len) < 0)
		_exit(3);
	_exit(0);
}

/* dir_passwd_wait - the child's reply and exit; rc, or -1 with why */
static int
dir_passwd_wait(pid_t pid, int fd, struct buf *out, struct buf *why)
{
	char data[sizeof(struct dir_helper_reply) + DIR_HASH_MAX +
	    DIR_HELPER_WHY_MAX];
	struct dir_helper_reply r;
	size_t got = 0;
	int status = 0;
	ssize_t n;

	while (got < sizeof(data)) {
		n = read(fd, data + got, sizeof(data) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			buf_printf(why, "password database helper: waitpid: "
			    "%s", strerror(errno));
			return -1;
		}
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
	    got < sizeof(r)) {
		buf_printf(why, "password database helper (as auth_user %s) "
		    "failed (wait status 0x%x)", var_auth_user,
		    (unsigned)status);
		return -1;
	}
	memcpy(&r, data, sizeof(r));
	if (r.out_len > DIR_HASH_MAX || r.why_len > DIR_HELPER_WHY_MAX ||
	    got != sizeof(r) + r.out_len + r.why_len) {
		buf_puts(why, "password database helper: bad reply");
		return -1;
	}
	if (out != NULL)
		buf_append(out, data + sizeof(r), r.out_len);
	buf_append(why, data + sizeof(r) + r.out_len, r.why_len);
	return r.rc;
}

/* dir_passwd_helper - op on the password database, done by a child
 * running as uid/gid (auth_user); as dir_passwd_set/get/del return */
static int
dir_passwd_helper(enum dir_passwd_op op, const char *data_dir, uid_t uid,
    gid_t gid, const char *addr, const char *hash, struct buf *out,
    struct buf *why)
{
	struct file_owner keep = {(uid_t)-1, (gid_t)-1, 0, 0};
	struct buf reason = BUF_INIT;
	char *path = xasprintf("%s/passwd", data_dir);
	int data, pfd = -1, fds[2], rc;
	pid_t pid;

	if (op == DIR_PASSWD_SET && (file_mkdirs(data_dir, 0750, why) < 0 ||
	    file_mkdirs(path, 0700, why) < 0)) {
		x_free(&path);
		return -1;
	}
	x_free(&path);
	/* the folder, and files an older heraldctl made as root, to
	 * auth_user; links authd put there are refused, not followed */
	if (op != DIR_PASSWD_GET)
		dir_passwd_owner(data_dir);
	if ((data = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		if (errno == ENOENT && op != DIR_PASSWD_SET)
			return 0;
		buf_printf(why, "open %s: %s", data_dir, strerror(errno));
		return -1;
	}
	rc = file_fix_at(data, "passwd", S_IFDIR, &keep, &pfd, &reason);
	(void)close(data);
	if (rc <= 0) {
		if (rc < 0)
			buf_printf(why, "%s/%s", data_dir, buf_cstr(&reason));
		else if (op == DIR_PASSWD_SET)
			buf_printf(why, "%s/passwd vanished", data_dir);
		buf_free(&reason);
		return rc < 0 || op == DIR_PASSWD_SET ? -1 : 0;
	}
	buf_free(&reason);
	if (pipe2(fds, O_CLOEXEC) < 0) {
		buf_printf(why, "pipe: %s", strerror(errno));
		(void)close(pfd);
		return -1;
	}
	if ((pid = fork()) < 0) {
		buf_printf(why, "fork: %s", strerror(errno));
		(void)close(fds[0]);
		(void)close(fds[1]);
		(void)close(pfd);
		return -1;
	}
	if (pid == 0) {
		(void)close(fds[0]);
		dir_passwd_child(op, pfd, uid, gid, addr, hash, fds[1]);
	}
	(void)close(fds[1]);
	(void)close(pfd);
	rc = dir_passwd_wait(pid, fds[0], out, why);
	(void)close(fds[0]);
	return rc;
}

/* dir_passwd_set - store the crypt(3) hash of addr */
int
dir_passwd_set(const char *data_dir, const char *addr, const char *hash,
    struct buf *why)
{
	char *path;
	uid_t uid;
	gid_t gid;
	int rc;

	if (dir_passwd_helper_user(&uid, &gid))
		return dir_passwd_helper(DIR_PASSWD_SET, data_dir, uid, gid,
		    addr, hash, NULL, why);
	path = xasprintf("%s/passwd", data_dir);
	rc = dir_passwd_set_in(data_dir, path, addr, hash, why);
	x_free(&path);
	return rc;
}

/* dir_passwd_get - 1 with the hash in out, 0 none, -1 error */
int
dir_passwd_get(const char *data_dir, const char *addr, struct buf *out,
    struct buf *why)
{
	char *path;
	uid_t uid;
	gid_t gid;
	int rc;

	if (dir_passwd_helper_user(&uid, &gid))
		return dir_passwd_helper(DIR_PASSWD_GET, data_dir, uid, gid,
		    addr, NULL, out, why);
	path = xasprintf("%s/passwd", data_dir);
	rc = dir_passwd_get_in(path, addr, out, why);
	x_free(&path);
	return rc;
}

/* dir_passwd_del - forget the hash of addr; 0 also if there was none */
int
dir_passwd_del(const char *data_dir, const char *addr, struct buf *why)
{
	char *path;
	uid_t uid;
	gid_t gid;
	int rc;

	if (dir_passwd_helper_user(&uid, &gid))
		return dir_passwd_helper(DIR_PASSWD_DEL, data_dir, uid, gid,
		    addr, NULL, NULL, why);
	path = xasprintf("%s/passwd", data_dir);
	rc = dir_passwd_del_in(data_dir, path, addr, why);
	x_free(&path);
	return rc;
}

/* dir_passwd_hash - yescrypt hash of a password (fresh salt) */
int
dir_passwd_hash(const char *password, struct buf *out, struct buf *why)
{
	char *salt, *hash;
	void *data = NULL;
	int size = 0;

	errno = 0;
	if ((salt = crypt_gensalt_ra("$y$", 0, NULL, 0)) == NULL) {
		buf_printf(why, "crypt_gensalt: %s",
		    errno ? strerror(errno) : "yescrypt not supported");
		return -1;
	}
	errno = 0;
	hash = crypt_ra(password, salt, &data, &size);
	free(salt);
	if (hash == NULL || hash[0] == '*') {
		buf_printf(why, "crypt: %s",
		    errno ? strerror(errno) : "hashing failed");
		if (data != NULL)
			explicit_bzero(data, (size_t)size);
		free(data);
		return -1;
	}
	buf_puts(out, hash);
	explicit_bzero(data, (size_t)size);
	free(data);
	return 0;
}

/*
 * The handle authd keeps: the password environment opened once per
 * process (after the privilege drop) and kept open. Each lookup is its
 * own read transaction, so a password heraldctl sets is seen at the next
 * one; a rehash is a write transaction that LMDB serialises with
 * heraldctl's.
 */
struct dir_passwd {
	MDB_env *env;
	MDB_dbi dbi;
};

/* dir_passwd_open - open <data_dir>/passwd to keep; never creates it */
int
dir_passwd_open(const char *data_dir, struct dir_passwd **p_r,
    struct buf *why)
{
	char *path = xasprintf("%s/passwd", data_dir);
	struct dir_passwd *p;
	size_t why_len = why->len;
	MDB_txn *txn;
	int rc;

	*p_r = NULL;
	p = xcalloc(1, sizeof(*p));
	/* read-write, for rehashing; the folder must exist already, made
	 * by heraldctl (its files 0600, given to auth_user by master) */
	if (dir_env_open(path, 0, 0600, &p->env, why) < 0) {
		bool missing = errno == ENOENT;

		x_free(&path);
		x_free(&p);
		if (missing) {
			buf_truncate(why, why_len);
			return 0;
		}
		return -1;
	}
	x_free(&path);
	if (dir_txn_begin(p->env, false, &txn, why) < 0)
		goto fail;
	if ((rc = mdb_dbi_open(txn, NULL, 0, &p->dbi)) != 0) {
		mdb_txn_abort(txn);
		dir_mdb_error(why, rc, "open password database");
		goto fail;
	}
	if ((rc = mdb_txn_commit(txn)) != 0) {
		dir_mdb_error(why, rc, "open password database");
		goto fail;
	}
	*p_r = p;
	return 1;

fail:
	dir_passwd_close(&p);
	return -1;
}

/* dir_passwd_close - close the environment and free the handle */
void
dir_passwd_close(struct dir_passwd **pp)
{
	if (*pp == NULL)
		return;
	mdb_env_close((*pp)->env);
	x_free(pp);
}

/* dir_passwd_lookup - 1 with the hash of addr in out, 0 none, -1 */
int
dir_passwd_lookup(struct dir_passwd *p, const char *addr, struct buf *out,
    struct buf *why)
{
	char key[DIR_KEY_MAX + 1];
	MDB_txn *txn;
	MDB_val v;
	int found;

	if (dir_key(addr, 'u', key, sizeof(key), why) == NULL)
		return -1;
	if (dir_txn_begin(p->env, false, &txn, why) < 0)
		return -1;
	if ((found = dir_get(txn, p->dbi, key, &v, why)) > 0)
		buf_append(out, v.mv_data, v.mv_size);
	mdb_txn_abort(txn);
	return found;
}

/* dir_passwd_replace - old -> new for addr, unless changed meanwhile */
int
dir_passwd_replace(struct dir_passwd *p, const char *addr, const char *old,
    const char *new, struct buf *why)
{
	char key[DIR_KEY_MAX + 1];
	MDB_txn *txn;
	MDB_val k, v;
	int found;

	if (dir_key(addr, 'u', key, sizeof(key), why) == NULL ||
	    dir_passwd_check(new, why) < 0)
		return -1;
	if (dir_txn_begin(p->env, true, &txn, why) < 0)
		return -1;
	/* in the same transaction: a password set meanwhile is kept */
	if ((found = dir_get(txn, p->dbi, key, &v, why)) <= 0 ||
	    v.mv_size != strlen(old) || memcmp(v.mv_data, old,
	    v.mv_size) != 0) {
		mdb_txn_abort(txn);
		return found < 0 ? -1 : 0;
	}
	k = dir_val(key);
	v = dir_val(new);
	if (dir_commit(txn, mdb_put(txn, p->dbi, &k, &v, 0), why) < 0)
		return -1;
	return 1;
}
