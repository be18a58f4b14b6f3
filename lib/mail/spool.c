/*
 * spool - the queue's folders: creation, path names, directory syncs.
 *
 * Every path into the queue is made here, from a queue id that must pass
 * qid_valid(), so no caller can be talked into a path outside the spool.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "mail/qid.h"
#include "mail/spool.h"

const char *const spool_folders[] = {
	SPOOL_INCOMING, SPOOL_ACTIVE, SPOOL_DEFERRED, SPOOL_HOLD,
	SPOOL_CORRUPT, SPOOL_PRIVATE, NULL,
};

/* the deferred/ hash folders: one per queue id digit */
static const char spool_hash_digits[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/* spool_mkdir - make path a 0700 folder owned by uid/gid; an existing
 * folder is kept (its mode and owner are corrected) */
static int
spool_mkdir(const char *path, bool follow, uid_t uid, gid_t gid,
    struct buf *why)
{
	struct stat st;

	if (mkdir(path, 0700) < 0 && errno != EEXIST) {
		buf_set(why, "");
		buf_printf(why, "mkdir %s: %m", path);
		return -1;
	}
	if ((follow ? stat(path, &st) : lstat(path, &st)) < 0) {
		buf_set(why, "");
		buf_printf(why, "stat %s: %m", path);
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		buf_set(why, "");
		buf_printf(why, "%s exists and is not a folder", path);
		return -1;
	}
	if (uid != (uid_t)-1 && (st.st_uid != uid || st.st_gid != gid) &&
	    chown(path, uid, gid) < 0) {
		buf_set(why, "");
		buf_printf(why, "chown %s: %m", path);
		return -1;
	}
	if ((st.st_mode & 07777) != 0700 && chmod(path, 0700) < 0) {
		buf_set(why, "");
		buf_printf(why, "chmod %s: %m", path);
		return -1;
	}
	return 0;
}

/* spool_setup - create the spool, its folders and deferred/<h>/ */
int
spool_setup(const char *spool_dir, uid_t uid, gid_t gid, struct buf *why)
{
	struct buf path = BUF_INIT;
	int ret = -1;

	if (spool_dir[0] == '\0') {
		buf_set(why, "empty spool folder name");
		return -1;
	}
	/* the spool itself may be a symlink (to a bigger disk) */
	if (spool_mkdir(spool_dir, true, uid, gid, why) < 0)
		goto out;
	for (const char *const *f = spool_folders; *f != NULL; f++) {
		buf_set(&path, spool_dir);
		buf_printf(&path, "/%s", *f);
		if (spool_mkdir(path.data, false, uid, gid, why) < 0)
			goto out;
	}
	for (const char *h = spool_hash_digits; *h != '\0'; h++) {
		buf_set(&path, spool_dir);
		buf_printf(&path, "/%s/%c", SPOOL_DEFERRED, *h);
		if (spool_mkdir(path.data, false, uid, gid, why) < 0)
			goto out;
	}
	ret = 0;
out:
	buf_free(&path);
	return ret;
}

/* spool_path - the path of a queue file in a folder */
void
spool_path(struct buf *out, const char *spool_dir, const char *folder,
    const char *qid)
{
	if (!qid_valid(qid))
		msg_panic("spool_path: bad queue id \"%.40s\"", qid);
	buf_set(out, spool_dir);
	if (strcmp(folder, SPOOL_DEFERRED) == 0)
		buf_printf(out, "/%s/%c/%s", folder, qid[QID_LEN - 1], qid);
	else
		buf_printf(out, "/%s/%s", folder, qid);
}

/* spool_sync_dir - fsync <spool>/<folder> */
int
spool_sync_dir(const char *spool_dir, const char *folder, struct buf *why)
{
	char *path = xasprintf("%s/%s", spool_dir, folder);
	int fd, ret = 0;

	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		buf_set(why, "");
		buf_printf(why, "open %s: %m", path);
		ret = -1;
	} else {
		if (fsync(fd) < 0) {
			buf_set(why, "");
			buf_printf(why, "fsync %s: %m", path);
			ret = -1;
		}
		(void)close(fd);
	}
	x_free(&path);
	return ret;
}

/* spool_free_bytes - space left for unprivileged users */
int
spool_free_bytes(const char *spool_dir, long long *bytes_r, struct buf *why)
{
	struct statvfs sv;
	unsigned long long b;

	if (statvfs(spool_dir, &sv) < 0) {
		buf_set(why, "");
		buf_printf(why, "statvfs %s: %m", spool_dir);
		return -1;
	}
	if (sv.f_frsize != 0 &&
	    (unsigned long long)sv.f_bavail > ULLONG_MAX / sv.f_frsize)
		b = (unsigned long long)LLONG_MAX;
	else
		b = (unsigned long long)sv.f_bavail * sv.f_frsize;
	*bytes_r = b > (unsigned long long)LLONG_MAX ? LLONG_MAX :
	    (long long)b;
	return 0;
}

/* spool_socket_path - "<spool>/private/<service>" */
void
spool_socket_path(struct buf *out, const char *spool_dir,
    const char *service)
{
	buf_set(out, spool_dir);
	buf_printf(out, "/%s/%s", SPOOL_PRIVATE, service);
}
