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
#include "base/file.h"
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

/* spool_mkdir - make name in the folder dirfd a 0700 folder owned as
 * want says, never through a link (the spool belongs to herald_user,
 * and root must not chown what it put there); an existing folder is
 * kept, its mode and owner corrected. The folder's descriptor in *fd_r
 * if not NULL; -1 with why */
static int
spool_mkdir(int dirfd, const char *path, const char *name,
    const struct file_owner *want, int *fd_r, struct buf *why)
{
	struct buf reason = BUF_INIT;
	int rc;

	if (mkdirat(dirfd, name, 0700) < 0 && errno != EEXIST) {
		buf_set(why, "");
		buf_printf(why, "mkdir %s: %m", path);
		return -1;
	}
	if ((rc = file_fix_at(dirfd, name, S_IFDIR, want, fd_r,
	    &reason)) <= 0) {
		buf_set(why, "");
		if (rc == 0)
			buf_printf(why, "%s: gone while being made", path);
		else
			buf_printf(why, "%s: %s", path, buf_cstr(&reason));
		buf_free(&reason);
		return -1;
	}
	buf_free(&reason);
	return 0;
}

/* spool_setup - create the spool, its folders and deferred/<h>/ */
int
spool_setup(const char *spool_dir, uid_t uid, gid_t gid, struct buf *why)
{
	struct file_owner want = {uid, uid == (uid_t)-1 ? (gid_t)-1 : gid,
	    07777, 0700};
	struct buf path = BUF_INIT;
	int ret = -1, top = -1, fd = -1;

	if (spool_dir[0] == '\0') {
		buf_set(why, "empty spool folder name");
		return -1;
	}
	/* the spool itself may be a symlink (to a bigger disk) */
	if (mkdir(spool_dir, 0700) < 0 && errno != EEXIST) {
		buf_set(why, "");
		buf_printf(why, "mkdir %s: %m", spool_dir);
		return -1;
	}
	if ((top = open(spool_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		buf_set(why, "");
		buf_printf(why, "%s: %s", spool_dir, errno == ENOTDIR ?
		    "exists and is not a folder" : strerror(errno));
		return -1;
	}
	if (file_fix_fd(top, spool_dir, &want, why) < 0)
		goto out;
	for (const char *const *f = spool_folders; *f != NULL; f++) {
		bool deferred = strcmp(*f, SPOOL_DEFERRED) == 0;

		buf_set(&path, spool_dir);
		buf_printf(&path, "/%s", *f);
		if (spool_mkdir(top, path.data, *f, &want,
		    deferred ? &fd : NULL, why) < 0)
			goto out;
	}
	for (const char *h = spool_hash_digits; *h != '\0'; h++) {
		char name[2] = {*h, '\0'};

		buf_set(&path, spool_dir);
		buf_printf(&path, "/%s/%c", SPOOL_DEFERRED, *h);
		if (spool_mkdir(fd, path.data, name, &want, NULL, why) < 0)
			goto out;
	}
	ret = 0;
out:
	if (fd >= 0)
		(void)close(fd);
	(void)close(top);
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
