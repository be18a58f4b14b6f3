/*
 * dir - the directory of domains, users and aliases in LMDB (DESIGN.md
 * §6); the separate password environment is dir_passwd.c, and the LMDB
 * helpers both share are declared in dir_lmdb.h.
 *
 * Layout: <data_dir>/directory/ is one environment with the named
 * databases "domain" (key: domain, value: "v1"), "user" (key: local@domain,
 * value: "v1 quota=N enabled=0|1 created=T") and "alias" (key: local@domain
 * or @domain, value: targets joined by "\n"), "transport" (key: a domain
 * of elsewhere, value: its next hop, "[host]:port" or "host[:port]") and
 * "tls_policy" (key: domain, value: none|may|encrypt|verify|dane); the
 * writer checks what it stores, a reader checks it again. <data_dir>/passwd/ holds one
 * unnamed database addr -> crypt(3) string, files mode 0600.
 *
 * Every call is one short transaction, so a reader sees each commit of
 * the writer at its next call. Readers open the environment read-only; the
 * named databases may not exist yet (the writer never ran), which reads
 * as "nothing hosted" until they appear.
 */
#include <errno.h>
#include <lmdb.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/file.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/dir.h"
#include "mail/dir_lmdb.h"

#define DIR_TARGET_MAX 998
#define DIR_VALUE_MAX 65536		/* alias targets of one key */

enum {
	DIR_DB_DOMAIN, DIR_DB_USER, DIR_DB_ALIAS, DIR_DB_TRANSPORT,
	DIR_DB_TLS_POLICY, DIR_DB_COUNT
};

static const char *const dir_db_names[DIR_DB_COUNT] = {
	"domain", "user", "alias", "transport", "tls_policy",
};

struct dir {
	MDB_env *env;
	MDB_dbi dbi[DIR_DB_COUNT];
	bool dbis_open;		/* false while the writer never created them */
	bool rdonly;
	char *path;		/* <data_dir>/directory, for messages */
};

/* dir_mdb_error - "what: LMDB reason" into why */
int
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
const char *
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
MDB_val
dir_val(const char *s)
{
	return (MDB_val){strlen(s), (void *)s};
}

/* dir_env_open - create and open an environment at path */
int
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
int
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
int
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
int
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
int
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

/*
 * The domain's admin: the user who receives postmaster@domain when no
 * user or alias of that name exists (resolve.c). It is the user of the
 * domain created first, kept in the domain record ("v1 postmaster=KEY")
 * by dir_user_add and dir_user_del, so that smtpd finds it with one
 * lookup instead of scanning the users.
 */

/* dir_domain_admin_parse - the admin in a domain record into out: 1, 0
 * none (older records have none) */
static int
dir_domain_admin_parse(const MDB_val *v, struct buf *out)
{
	const char *p = v->mv_data, *end = p + v->mv_size;
	static const char tag[] = " postmaster=";

	for (; p + sizeof(tag) - 1 < end; p++) {
		if (memcmp(p, tag, sizeof(tag) - 1) == 0) {
			const char *a = p + sizeof(tag) - 1, *e = a;

			while (e < end && *e != ' ')
				e++;
			if (e == a)
				return 0;
			buf_reset(out);
			buf_append(out, a, (size_t)(e - a));
			return 1;
		}
	}
	return 0;
}

/* dir_domain_admin_find - in txn, the user of domain created first (ties:
 * key order), other than skip: 1 with its key in out, 0 none, -1 */
static int
dir_domain_admin_find(struct dir *d, MDB_txn *txn, const char *domain,
    const char *skip, struct buf *out, struct buf *why)
{
	MDB_cursor *cur;
	MDB_val k, v;
	long long best = 0;
	int rc, found = 0;

	if ((rc = mdb_cursor_open(txn, d->dbi[DIR_DB_USER], &cur)) != 0)
		return dir_mdb_error(why, rc, "cursor");
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		const char *key = k.mv_data, *at;
		size_t dlen = strlen(domain);
		struct dir_user u;

		at = memrchr(key, '@', k.mv_size);
		if (at == NULL || (size_t)(key + k.mv_size - at - 1) != dlen ||
		    memcmp(at + 1, domain, dlen) != 0)
			continue;
		if (skip != NULL && strlen(skip) == k.mv_size &&
		    memcmp(key, skip, k.mv_size) == 0)
			continue;
		if (dir_user_parse(&v, &u) < 0)
			continue;
		if (found && u.created >= best)
			continue;
		best = u.created;
		found = 1;
		buf_reset(out);
		buf_append(out, key, k.mv_size);
	}
	mdb_cursor_close(cur);
	if (rc != MDB_NOTFOUND)
		return dir_mdb_error(why, rc, "cursor");
	return found;
}

/* dir_domain_admin_update - after a user of domain was added or removed
 * (removed: its key), keep the domain's admin right; an MDB error code */
static int
dir_domain_admin_update(struct dir *d, MDB_txn *txn, const char *domain,
    const char *removed, struct buf *why)
{
	struct buf cur = BUF_INIT, next = BUF_INIT, text = BUF_INIT;
	MDB_val k = dir_val(domain), v;
	int rc = 0, has, found;

	if ((found = dir_get(txn, d->dbi[DIR_DB_DOMAIN], domain, &v,
	    why)) <= 0)
		return found == 0 ? MDB_NOTFOUND : MDB_PANIC;
	has = dir_domain_admin_parse(&v, &cur);
	if (has && (removed == NULL || strcmp(buf_cstr(&cur), removed) != 0))
		goto out;	/* still right */
	if ((found = dir_domain_admin_find(d, txn, domain, removed, &next,
	    why)) < 0) {
		rc = MDB_PANIC;
		goto out;
	}
	buf_puts(&text, "v1");
	if (found)
		buf_printf(&text, " postmaster=%s", buf_cstr(&next));
	v = (MDB_val){text.len, text.data};
	rc = mdb_put(txn, d->dbi[DIR_DB_DOMAIN], &k, &v, 0);
out:
	buf_free(&cur);
	buf_free(&next);
	buf_free(&text);
	return rc;
}

/* dir_domain_postmaster - the domain's admin */
int
dir_domain_postmaster(struct dir *d, const char *domain, struct buf *out,
    struct buf *why)
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
	if (found > 0)
		found = dir_domain_admin_parse(&v, out);
	mdb_txn_abort(txn);
	return found;
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
	if (rc == 0 && (rc = dir_domain_admin_update(d, txn, domain, NULL,
	    why)) == MDB_PANIC) {
		mdb_txn_abort(txn);
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
	/* the domain may be gone already (domain del --force keeps none) */
	if (rc == 0 && (rc = dir_domain_admin_update(d, txn,
	    strrchr(key, '@') + 1, key, why)) == MDB_NOTFOUND)
		rc = 0;
	if (rc == MDB_PANIC) {
		mdb_txn_abort(txn);
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
	dir_map_fn *map_fn;
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
 * The routing tables: the LMDB database of each enum dir_map, and what
 * its entry is called in messages ("no transport for example.org").
 */
static const struct {
	int db;
	const char *what;
} dir_maps[] = {
	[DIR_MAP_TRANSPORT] = {DIR_DB_TRANSPORT, "transport"},
	[DIR_MAP_TLS_POLICY] = {DIR_DB_TLS_POLICY, "TLS policy"},
};

/* dir_map_db - the database of routing table m; a bad m is a bug */
static int
dir_map_db(enum dir_map m)
{
	if ((unsigned)m >= sizeof(dir_maps) / sizeof(dir_maps[0]))
		msg_panic("dir_map_db: bad table %d", (int)m);
	return dir_maps[m].db;
}

/* dir_map_get - the value of domain in table m into out: 1, 0 none, -1 */
int
dir_map_get(struct dir *d, enum dir_map m, const char *domain,
    struct buf *out, struct buf *why)
{
	char key[DIR_KEY_MAX + 1];
	int db = dir_map_db(m);
	MDB_txn *txn;
	MDB_val v;
	int found;

	if (dir_key(domain, 'd', key, sizeof(key), why) == NULL)
		return -1;
	if (dir_read_begin(d, &txn, why) < 0)
		return -1;
	if (txn == NULL)
		return 0;
	if ((found = dir_get(txn, d->dbi[db], key, &v, why)) == 1) {
		buf_reset(out);
		buf_append(out, v.mv_data, v.mv_size);
	}
	mdb_txn_abort(txn);
	return found;
}

/* dir_map_set - store value for domain in table m; a hosted domain
 * refused */
int
dir_map_set(struct dir *d, enum dir_map m, const char *domain,
    const char *value, struct buf *why)
{
	char key[DIR_KEY_MAX + 1];
	int db = dir_map_db(m);
	MDB_txn *txn;
	MDB_val k, v = dir_val(value), dv;
	int found;

	if (dir_key(domain, 'd', key, sizeof(key), why) == NULL)
		return -1;
	if (*value == '\0' || strlen(value) > DIR_KEY_MAX) {
		buf_printf(why, "%s: bad value", key);
		return -1;
	}
	if (dir_write_begin(d, &txn, why) < 0)
		return -1;
	found = dir_get(txn, d->dbi[DIR_DB_DOMAIN], key, &dv, why);
	if (found != 0) {
		mdb_txn_abort(txn);
		if (found > 0)
			buf_printf(why, "%s is a hosted domain: its mail is "
			    "delivered here, not sent on", key);
		return -1;
	}
	k = dir_val(key);
	return dir_commit(txn, mdb_put(txn, d->dbi[db], &k, &v, 0), why);
}

/* dir_map_del - remove domain's entry from table m; none there is an
 * error */
int
dir_map_del(struct dir *d, enum dir_map m, const char *domain,
    struct buf *why)
{
	char key[DIR_KEY_MAX + 1];
	int db = dir_map_db(m);
	MDB_txn *txn;
	MDB_val k;
	int rc;

	if (dir_key(domain, 'd', key, sizeof(key), why) == NULL)
		return -1;
	if (dir_write_begin(d, &txn, why) < 0)
		return -1;
	k = dir_val(key);
	rc = mdb_del(txn, d->dbi[db], &k, NULL);
	if (rc == MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		buf_printf(why, "no %s for %s", dir_maps[m].what, key);
		return -1;
	}
	return dir_commit(txn, rc, why);
}

/* dir_list_map - one entry of a routing table */
static int
dir_list_map(const char *key, const char *value, void *ctx)
{
	struct dir_list_ctx *lc = ctx;

	lc->map_fn(key, value, lc->ctx);
	return 0;
}

/* dir_map_list - every entry of table m in domain order */
int
dir_map_list(struct dir *d, enum dir_map m, dir_map_fn *fn, void *ctx,
    struct buf *why)
{
	struct dir_list_ctx lc = {.map_fn = fn, .ctx = ctx};

	return dir_list(d, dir_map_db(m), NULL, dir_list_map, &lc, why);
}
