/*
 * pop3d_maildrop - the maildrop of a logged-in POP3 session: the
 * exclusive lock, the snapshot of the INBOX taken at login, opening
 * messages, and UPDATE (removing what was deleted) at QUIT.
 *
 * Lock (RFC 1939 8: exclusive access): flock(LOCK_EX | LOCK_NB) on
 * <maildir>/herald-pop3.lock. flock locks belong to the open file, so two
 * sessions in one worker exclude each other as well as two workers, and
 * the kernel drops the lock when a process dies.
 *
 * Snapshot: as Dovecot does, every file in new/ is moved to cur/ ("name"
 * -> "name:2,") at login; then cur/ is read. Messages are ordered by the
 * seconds at the start of the name (delivery time), then by name. The
 * .folders of Maildir++ are not part of the POP3 maildrop.
 *
 * UIDL: the file's base name (up to the ':' of the info part), which stays
 * the same when the file moves from new/ to cur/ and when IMAP changes its
 * flags. Names that are not 1..70 characters of 0x21..0x7E (RFC 1939 7)
 * become "~" and the hex SHA-256 of the base name: deterministic, so the
 * same across sessions.
 *
 * Size: the W= value in the name (lib/mail/maildir_batch.c writes it:
 * the size with CRLF line ends), else the size cache (pop3d_sizes.c:
 * <maildir>/herald-sizes, checked against the file's inode, size and
 * mtime), else counted from the file at login and remembered there.
 *
 * Opening and UPDATE grow with the maildrop (readdir, a rename per new
 * message, an unlink per deleted one): they run as jobs on the worker's
 * maildrop threads (lib/mail/job.c, pop3d_maildrop_threads of them),
 * never on the event loop; logging from there is fine (msg_* formats on
 * the stack and writes one line at a time). The session is held while
 * its job is out. A login's OPEN job that no thread has started when the
 * client goes away is dropped (pop3d_maildrop_cancel); UPDATE always
 * runs: the client said QUIT.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "mail/job.h"
#include "mail/maildir.h"
#include "mail/params.h"
#include "pop3d.h"

#define POP3D_LOCK_NAME "herald-pop3.lock"
#define POP3D_COUNT_CHUNK 65536

/* pop3d_maildrop_base_len - length of the base name (up to ':') */
static size_t
pop3d_maildrop_base_len(const char *name)
{
	const char *colon = strchr(name, ':');

	return colon != NULL ? (size_t)(colon - name) : strlen(name);
}

/* pop3d_maildrop_uidl - the UIDL of a file name */
void
pop3d_maildrop_uidl(const char *name, char out[POP3D_UIDL_MAX + 1])
{
	size_t len = pop3d_maildrop_base_len(name);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	bool ok = len >= 1 && len <= POP3D_UIDL_MAX;

	for (size_t i = 0; ok && i < len; i++)
		if ((unsigned char)name[i] < 0x21 ||
		    (unsigned char)name[i] > 0x7e)
			ok = false;
	if (ok) {
		memcpy(out, name, len);
		out[len] = '\0';
		return;
	}
	if (EVP_Digest(name, len, md, &mdlen, EVP_sha256(), NULL) != 1)
		msg_panic("pop3d_maildrop_uidl: SHA-256 failed");
	out[0] = '~';
	for (unsigned int i = 0; i < mdlen && 2 * i + 2 < POP3D_UIDL_MAX; i++)
		snprintf(out + 1 + 2 * i, 3, "%02x", md[i]);
}

/* pop3d_maildrop_count_wsize - the CRLF size of an open file */
long long
pop3d_maildrop_count_wsize(int fd)
{
	char *chunk = xmalloc(POP3D_COUNT_CHUNK);
	long long size = 0;
	off_t off = 0;
	bool cr = false;
	ssize_t r;

	for (;;) {
		r = pread(fd, chunk, POP3D_COUNT_CHUNK, off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		off += r;
		size += r;
		for (ssize_t i = 0; i < r; i++) {
			if (chunk[i] == '\n' && !cr)
				size++;
			cr = chunk[i] == '\r';
		}
	}
	x_free(&chunk);
	return r < 0 ? -1 : size;
}

/* pop3d_maildrop_cmp - delivery order: leading seconds, then name */
static int
pop3d_maildrop_cmp(const void *a, const void *b)
{
	const struct pop3d_msg *x = a, *y = b;

	if (x->sec != y->sec)
		return x->sec < y->sec ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* pop3d_maildrop_uidl_cmp - by UIDL, then delivery order (duplicates) */
static int
pop3d_maildrop_uidl_cmp(const void *a, const void *b)
{
	const struct pop3d_msg *x = *(struct pop3d_msg *const *)a;
	const struct pop3d_msg *y = *(struct pop3d_msg *const *)b;
	int c = strcmp(x->uidl, y->uidl);

	if (c != 0)
		return c;
	return x < y ? -1 : x > y;
}

/* pop3d_maildrop_regular - is name in dir a regular file (no stat when
 * readdir knows)? */
static bool
pop3d_maildrop_regular(int dfd, const struct dirent *de)
{
	struct stat st;

	if (de->d_type == DT_REG)
		return true;
	if (de->d_type != DT_UNKNOWN)
		return false;
	return fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(st.st_mode);
}

/* pop3d_maildrop_open_dir - open path/sub as a folder */
static int
pop3d_maildrop_open_dir(const char *path, const char *sub)
{
	char *p = xasprintf("%s/%s", path, sub);
	int fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int saved = errno;

	x_free(&p);
	errno = saved;
	return fd;
}

/*
 * pop3d_maildrop_move_new - new/ to cur/: "name" becomes "name:2," (a
 * name that has an info part already keeps it). A file another process
 * moved first is simply not there any more.
 */
static int
pop3d_maildrop_move_new(const char *path, int curfd, struct buf *why)
{
	struct buf to = BUF_INIT;
	struct dirent *de;
	int newfd, ret = 0;
	DIR *dp;

	if ((newfd = pop3d_maildrop_open_dir(path, "new")) < 0) {
		buf_printf(why, "open %s/new: %s", path, strerror(errno));
		return -1;
	}
	if ((dp = fdopendir(newfd)) == NULL) {
		buf_printf(why, "opendir %s/new: %s", path, strerror(errno));
		(void)close(newfd);
		return -1;
	}
	while ((errno = 0, de = readdir(dp)) != NULL) {
		if (de->d_name[0] == '.' || !pop3d_maildrop_regular(newfd, de))
			continue;
		buf_set(&to, de->d_name);
		if (strchr(de->d_name, ':') == NULL)
			buf_puts(&to, ":2,");
		if (renameat(newfd, de->d_name, curfd, buf_cstr(&to)) < 0 &&
		    errno != ENOENT)
			msg_warn("rename %s/new/%s to cur/: %m", path,
			    de->d_name);
	}
	if (errno != 0) {
		buf_printf(why, "readdir %s/new: %s", path, strerror(errno));
		ret = -1;
	}
	closedir(dp);
	buf_free(&to);
	return ret;
}

/* what a scan of cur/ knows about sizes */
struct pop3d_scan {
	struct pop3d_sizes old;	/* the cache as loaded */
	struct pop3d_sizes new;	/* what the cache should say now */
	size_t counted;		/* files read to count them */
};

/* pop3d_maildrop_remember - put name's size and identity in the new cache */
static void
pop3d_maildrop_remember(struct pop3d_scan *sc, const char *name, size_t blen,
    long long size, const struct stat *st)
{
	struct pop3d_size_ent e;

	memset(&e, 0, sizeof(e));
	e.wsize = size;
	e.fsize = (long long)st->st_size;
	e.ino = (unsigned long long)st->st_ino;
	e.mtime_sec = (long long)st->st_mtim.tv_sec;
	e.mtime_nsec = (long long)st->st_mtim.tv_nsec;
	pop3d_sizes_add(&sc->new, name, blen, &e);
}

/* pop3d_maildrop_wsize - the CRLF size of cur/name, which has no W=:
 * from the cache when it still matches, else counted (and remembered
 * in the new cache); -1 if it vanished or cannot be read */
static long long
pop3d_maildrop_wsize(struct pop3d_maildrop *md, struct pop3d_scan *sc,
    int curfd, const char *name)
{
	size_t blen = pop3d_maildrop_base_len(name);
	bool cacheable = pop3d_sizes_name_ok(name, blen);
	struct stat st;
	long long size;
	int fd;

	if (cacheable && fstatat(curfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    (size = pop3d_sizes_lookup(&sc->old, name, blen, &st)) >= 0) {
		pop3d_maildrop_remember(sc, name, blen, size, &st);
		return size;
	}
	fd = openat(curfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT)
			msg_warn("open %s/cur/%s: %m", md->path, name);
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		msg_warn("fstat %s/cur/%s: %m", md->path, name);
		(void)close(fd);
		return -1;
	}
	size = pop3d_maildrop_count_wsize(fd);
	(void)close(fd);
	if (size < 0) {
		msg_warn("read %s/cur/%s: %m", md->path, name);
		return -1;
	}
	sc->counted++;
	if (cacheable) {
		pop3d_maildrop_remember(sc, name, blen, size, &st);
	}
	return size;
}

/* pop3d_maildrop_add - one file of cur/ into the snapshot; -1 if it
 * vanished meanwhile or cannot be read (it is left out) */
static int
pop3d_maildrop_add(struct pop3d_maildrop *md, size_t *cap,
    struct pop3d_scan *sc, int curfd, const char *name)
{
	struct pop3d_msg m;
	char *end;

	memset(&m, 0, sizeof(m));
	m.size = maildir_name_wsize(name);
	if (m.size < 0 &&
	    (m.size = pop3d_maildrop_wsize(md, sc, curfd, name)) < 0)
		return -1;
	m.sec = strtoll(name, &end, 10);
	if (end == name || *end != '.')
		m.sec = 0;	/* not a Maildir time stamp: first */
	pop3d_maildrop_uidl(name, m.uidl);
	m.name = xstrdup(name);
	if (md->n == *cap) {
		*cap = *cap ? 2 * *cap : 64;
		md->msgs = xreallocarray(md->msgs, *cap, sizeof(*md->msgs));
	}
	md->msgs[md->n++] = m;
	return 0;
}

/* pop3d_maildrop_dedup - drop later messages with a UIDL seen before
 * (two files with one base name: RFC 1939 needs unique ids) */
static void
pop3d_maildrop_dedup(struct pop3d_maildrop *md)
{
	struct pop3d_msg **by;
	size_t out = 0;

	if (md->n < 2)
		return;
	by = xcalloc(md->n, sizeof(*by));
	for (size_t i = 0; i < md->n; i++)
		by[i] = &md->msgs[i];
	qsort(by, md->n, sizeof(*by), pop3d_maildrop_uidl_cmp);
	for (size_t i = 1; i < md->n; i++) {
		if (strcmp(by[i]->uidl, by[i - 1]->uidl) == 0) {
			msg_warn("%s/cur: %s has the same unique id as %s: "
			    "left out", md->path, by[i]->name,
			    by[i - 1]->name);
			by[i]->deleted = true;	/* marker, removed below */
		}
	}
	x_free(&by);
	for (size_t i = 0; i < md->n; i++) {
		if (md->msgs[i].deleted) {
			x_free(&md->msgs[i].name);
			continue;
		}
		md->msgs[out++] = md->msgs[i];
	}
	md->n = out;
}

/* pop3d_maildrop_save_sizes - after a scan: write the size cache if it
 * should say something else now (a file counted, an entry gone) */
static void
pop3d_maildrop_save_sizes(struct pop3d_maildrop *md, struct pop3d_scan *sc)
{
	struct buf why = BUF_INIT;
	size_t used = 0;

	for (size_t i = 0; i < sc->old.n; i++)
		if (sc->old.ent[i].used)
			used++;
	if (sc->counted == 0 && used == sc->old.n &&
	    sc->new.n == sc->old.n)
		return;
	if (pop3d_sizes_save(md->path, &sc->new, &why) < 0)
		msg_warn("cannot save the size cache: %s", buf_cstr(&why));
	buf_free(&why);
}

/* pop3d_maildrop_scan - read cur/ into the snapshot */
static int
pop3d_maildrop_scan(struct pop3d_maildrop *md, int curfd, struct buf *why)
{
	struct pop3d_scan sc;
	struct dirent *de;
	size_t cap = 0;
	int dfd;
	DIR *dp;

	/* readdir needs its own descriptor: curfd stays ours */
	if ((dfd = dup(curfd)) < 0 || (dp = fdopendir(dfd)) == NULL) {
		buf_printf(why, "opendir %s/cur: %s", md->path,
		    strerror(errno));
		if (dfd >= 0)
			(void)close(dfd);
		return -1;
	}
	memset(&sc, 0, sizeof(sc));
	pop3d_sizes_init(&sc.new);
	if (pop3d_sizes_load(md->path, &sc.old) < 0)
		msg_warn("read %s/%s: %m", md->path, POP3D_SIZES_NAME);
	rewinddir(dp);
	while ((errno = 0, de = readdir(dp)) != NULL) {
		if (de->d_name[0] == '.' || !pop3d_maildrop_regular(curfd, de))
			continue;
		(void)pop3d_maildrop_add(md, &cap, &sc, curfd, de->d_name);
	}
	if (errno != 0) {
		buf_printf(why, "readdir %s/cur: %s", md->path,
		    strerror(errno));
		closedir(dp);
		pop3d_sizes_free(&sc.old);
		pop3d_sizes_free(&sc.new);
		return -1;
	}
	closedir(dp);
	pop3d_maildrop_save_sizes(md, &sc);
	pop3d_sizes_free(&sc.old);
	pop3d_sizes_free(&sc.new);
	if (md->n > 1) {
		qsort(md->msgs, md->n, sizeof(*md->msgs), pop3d_maildrop_cmp);
		pop3d_maildrop_dedup(md);
	}
	for (size_t i = 0; i < md->n; i++)
		md->total += md->msgs[i].size;
	return 0;
}

/* pop3d_maildrop_open - lock, move new/ to cur/, take the snapshot */
enum pop3d_md_result
pop3d_maildrop_open(const char *path, struct pop3d_maildrop **md_r,
    struct buf *why)
{
	struct pop3d_maildrop *md;
	char *lock;
	int curfd = -1;

	*md_r = NULL;
	/* a user who never got mail has an empty maildrop */
	if (maildir_create(path, why) < 0)
		return POP3D_MD_ERROR;
	md = xcalloc(1, sizeof(*md));
	md->path = xstrdup(path);
	lock = xasprintf("%s/%s", path, POP3D_LOCK_NAME);
	md->lock_fd = open(lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (md->lock_fd < 0) {
		buf_printf(why, "open %s: %s", lock, strerror(errno));
		x_free(&lock);
		goto fail;
	}
	if (flock(md->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK || errno == EINTR) {
			x_free(&lock);
			pop3d_maildrop_close(&md);
			return POP3D_MD_LOCKED;
		}
		buf_printf(why, "flock %s: %s", lock, strerror(errno));
		x_free(&lock);
		goto fail;
	}
	x_free(&lock);
	if ((curfd = pop3d_maildrop_open_dir(path, "cur")) < 0) {
		buf_printf(why, "open %s/cur: %s", path, strerror(errno));
		goto fail;
	}
	if (pop3d_maildrop_move_new(path, curfd, why) < 0 ||
	    pop3d_maildrop_scan(md, curfd, why) < 0)
		goto fail;
	(void)close(curfd);
	*md_r = md;
	return POP3D_MD_OK;
fail:
	if (curfd >= 0)
		(void)close(curfd);
	pop3d_maildrop_close(&md);
	return POP3D_MD_ERROR;
}

/* pop3d_maildrop_close - release the lock and free */
void
pop3d_maildrop_close(struct pop3d_maildrop **mdp)
{
	struct pop3d_maildrop *md = *mdp;

	if (md == NULL)
		return;
	if (md->lock_fd >= 0)
		(void)close(md->lock_fd);	/* releases the flock */
	for (size_t i = 0; i < md->n; i++)
		x_free(&md->msgs[i].name);
	x_free(&md->msgs);
	x_free(&md->path);
	x_free(mdp);
}

/* pop3d_maildrop_find - the current name in cur/ of message i, looked up
 * by its base name after a rename (flags changed); 0, or -1 ENOENT */
static int
pop3d_maildrop_find(struct pop3d_maildrop *md, size_t i)
{
	struct pop3d_msg *m = &md->msgs[i];
	size_t blen = pop3d_maildrop_base_len(m->name);
	struct dirent *de;
	char *dir = xasprintf("%s/cur", md->path);
	DIR *dp = opendir(dir);
	int ret = -1;

	x_free(&dir);
	if (dp == NULL)
		return -1;
	while ((de = readdir(dp)) != NULL) {
		if (strncmp(de->d_name, m->name, blen) == 0 &&
		    (de->d_name[blen] == ':' || de->d_name[blen] == '\0') &&
		    strcmp(de->d_name, m->name) != 0) {
			x_free(&m->name);
			m->name = xstrdup(de->d_name);
			ret = 0;
			break;
		}
	}
	closedir(dp);
	errno = ENOENT;
	return ret;
}

/* pop3d_maildrop_openat - open cur/name read-only */
static int
pop3d_maildrop_open_file(struct pop3d_maildrop *md, const char *name)
{
	char *p = xasprintf("%s/cur/%s", md->path, name);
	int fd = open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), saved = errno;

	x_free(&p);
	errno = saved;
	return fd;
}

/* pop3d_maildrop_open_msg - open message i for reading */
int
pop3d_maildrop_open_msg(struct pop3d_maildrop *md, size_t i)
{
	int fd = pop3d_maildrop_open_file(md, md->msgs[i].name);

	if (fd >= 0 || errno != ENOENT)
		return fd;
	if (pop3d_maildrop_find(md, i) < 0)
		return -1;
	return pop3d_maildrop_open_file(md, md->msgs[i].name);
}

/* pop3d_maildrop_update - unlink what was deleted, fsync cur/ once,
 * and take their S= bytes off the Maildir's quota usage */
size_t
pop3d_maildrop_update(struct pop3d_maildrop *md, size_t *removed_r)
{
	size_t failed = 0, removed = 0;
	long long bytes = 0;
	bool sized = true;	/* every removed name carried S= */
	int curfd = pop3d_maildrop_open_dir(md->path, "cur");

	*removed_r = 0;
	if (curfd < 0) {
		msg_warn("open %s/cur: %m", md->path);
		return md->ndel;
	}
	for (size_t i = 0; i < md->n; i++) {
		struct pop3d_msg *m = &md->msgs[i];
		int r;

		if (!m->deleted)
			continue;
		r = unlinkat(curfd, m->name, 0);
		if (r < 0 && errno == ENOENT && pop3d_maildrop_find(md, i) == 0)
			r = unlinkat(curfd, m->name, 0);
		if (r == 0) {
			long long size = maildir_name_size(m->name);

			removed++;
			if (size >= 0 && size <= LLONG_MAX - bytes)
				bytes += size;
			else
				sized = false;	/* none, or absurd */
		} else if (errno != ENOENT) {
			msg_warn("unlink %s/cur/%s: %m", md->path, m->name);
			failed++;
		}
	}
	if (removed > 0 && fsync(curfd) < 0)
		msg_warn("fsync %s/cur: %m", md->path);
	/* (md->msgs[].size counts CRLF line ends: S= is what the usage
	 * file sums; a name without it makes the next check count) */
	if (removed > 0 && sized)
		maildir_usage_add(md->path, -bytes, -(int)removed);
	else if (removed > 0)
		maildir_usage_forget(md->path);
	(void)close(curfd);
	*removed_r = removed;
	return failed;
}

static struct job_pool *pop3d_maildrop_jobs;	/* the maildrop threads */

/* pop3d_maildrop_init - start the maildrop threads */
void
pop3d_maildrop_init(struct evloop *loop)
{
	if (pop3d_maildrop_jobs == NULL)
		pop3d_maildrop_jobs = job_pool_new(loop,
		    (int)var_pop3d_maildrop_threads, "pop3d maildrop");
}

/* pop3d_maildrop_job_run - do one job (maildrop thread) */
static void
pop3d_maildrop_job_run(struct job *base)
{
	struct pop3d_job *job = (struct pop3d_job *)base;

	switch (job->kind) {
	case POP3D_JOB_OPEN:
		job->result = pop3d_maildrop_open(job->path, &job->md,
		    &job->why);
		break;
	case POP3D_JOB_UPDATE:
		job->failed = pop3d_maildrop_update(job->md, &job->removed);
		break;
	}
}

/* pop3d_maildrop_job_done - the job is back (loop thread) */
static void
pop3d_maildrop_job_done(struct job *base)
{
	struct pop3d_job *job = (struct pop3d_job *)base;

	job->done(job, job->ctx);	/* frees the job */
}

/* pop3d_maildrop_submit - run job on a maildrop thread for owner */
void
pop3d_maildrop_submit(struct pop3d_job *job, const void *owner)
{
	job->base.run = pop3d_maildrop_job_run;
	job->base.done = pop3d_maildrop_job_done;
	job->base.owner = owner;
	job->base.keep = job->kind == POP3D_JOB_UPDATE;
	job_submit(pop3d_maildrop_jobs, &job->base);
}

/* pop3d_maildrop_cancel - owner is gone: drop its OPEN job if no thread
 * has started it (its done still comes, with base.cancelled) */
void
pop3d_maildrop_cancel(const void *owner)
{
	(void)job_cancel(pop3d_maildrop_jobs, owner);
}

/* pop3d_maildrop_job_free - free a job and close the maildrop it still
 * holds */
void
pop3d_maildrop_job_free(struct pop3d_job **jobp)
{
	struct pop3d_job *job = *jobp;

	if (job == NULL)
		return;
	pop3d_maildrop_close(&job->md);
	x_free(&job->path);
	buf_free(&job->why);
	x_free(jobp);
}
