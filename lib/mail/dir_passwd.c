/*
 * dir_passwd - the password environment <data_dir>/passwd/ (DESIGN.md §6):
 * one unnamed LMDB database addr -> crypt(3) string, files mode 0600,
 * owned by auth_user. heraldctl writes it (as root, through a child that
 * has become auth_user, so it never follows a link authd could plant);
 * authd keeps it open, reads it and replaces weaker hashes at login. The
 * declarations are in dir.h with the rest of the directory's.
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
#include <unistd.h>

#include "base/buf.h"
#include "base/file.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/dir.h"
#include "mail/dir_lmdb.h"
#include "mail/params.h"

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
dir_passwd_write_all(int fd, const void *data, size_t n)
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
	if (dir_passwd_write_all(fd, &r, sizeof(r)) < 0 ||
	    dir_passwd_write_all(fd, out.data, out.len) < 0 ||
	    dir_passwd_write_all(fd, why.data, why.len) < 0)
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
