/*
 * faultfs - an LD_PRELOAD shim for the durability tests: it makes chosen
 * file-system calls fail and writes a trace of the calls that order a
 * message's way to disk (t/integration/test_durability.py).
 *
 * Killing a process never loses the page cache, so a missing fsync is
 * invisible to every test that only kills daemons. This shim sits at the
 * syscall boundary instead: a test can make the sync of a queue file fail
 * and see that the client is not told 250, and it can read from the trace
 * that each sync came before the reply or the link it must precede.
 *
 * Intercepted: fsync, fdatasync, sync_file_range, syncfs, link, linkat,
 * rename, renameat, renameat2, write, pwrite, writev, send, sendmsg.
 *
 * Environment (read once per program image; per-process counters):
 *   FAULTFS_FAIL   comma list of calls to fail: a name above, or "link"
 *                  (link, linkat), "rename" (rename*), "write" (every
 *                  write-like call), "sync" (fsync, fdatasync, syncfs)
 *   FAULTFS_PATH   only calls on this path prefix fail (the descriptor's
 *                  path from /proc/self/fd, or either path argument); a
 *                  trailing '$' asks for the exact path. Unset: any path
 *   FAULTFS_ERRNO  the errno of a failure: EIO (default), ENOSPC, EDQUOT,
 *                  EROFS, or a number
 *   FAULTFS_AFTER  let this many matching calls through first (default 0)
 *   FAULTFS_COUNT  fail at most this many calls (default: no limit)
 *   FAULTFS_WHILE  fail only while this file exists (lift a fault by
 *                  removing it, without restarting anything)
 *   FAULTFS_TRACE  append one line per traced call to this file: every
 *                  sync, link and rename; writes to sockets (their first
 *                  bytes, recorded BEFORE the write is made, so a reply
 *                  never appears ahead of something it was sent after);
 *                  writes to files only under FAULTFS_TRACE_PATH. Syncs,
 *                  links and renames are recorded once they have returned.
 *
 * A trace line is tab-separated name=value fields: t (CLOCK_MONOTONIC ns),
 * pid, comm, call, ret, errno, injected (0/1), ino (dev:ino of the file,
 * for links and renames the one that got the new name), path, to, data.
 * Values are escaped (\\, \t, \n and non-printing bytes as \xNN). Lines
 * are appended with one O_APPEND write each, so lines of concurrent
 * processes and threads never mix and the file order is the time order.
 *
 * The trace file is opened for each line: a daemon that closes every
 * descriptor (master before exec) can never have the trace written into a
 * descriptor that meanwhile became something else.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define FAULTFS_DATA 160	/* bytes of a socket write kept in the trace */
#define FAULTFS_LINE 4096

/* the configuration of this program image */
static struct {
	bool loaded;
	char fail[256];		/* ",name,name," */
	char path[1024];	/* prefix, or exact path */
	bool exact;
	int err;
	long after;
	long count;		/* -1: no limit */
	char while_file[1024];
	char trace[1024];
	char trace_path[1024];
} faultfs;

static long faultfs_matched;	/* matching calls seen (atomic) */
static long faultfs_failed;	/* calls failed (atomic) */

/* faultfs_env - copy an environment variable into dst ("" if unset) */
static void
faultfs_env(const char *name, char *dst, size_t size)
{
	const char *v = getenv(name);

	if (v == NULL || strlen(v) >= size)
		v = "";
	memcpy(dst, v, strlen(v) + 1);
}

/* faultfs_errno - FAULTFS_ERRNO by name or number */
static int
faultfs_errno(const char *v)
{
	static const struct {
		const char *name;
		int err;
	} names[] = {{"EIO", EIO}, {"ENOSPC", ENOSPC}, {"EDQUOT", EDQUOT},
	    {"EROFS", EROFS}, {"EPERM", EPERM}};

	if (v == NULL || *v == '\0')
		return EIO;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(v, names[i].name) == 0)
			return names[i].err;
	return atoi(v) > 0 ? atoi(v) : EIO;
}

/* faultfs_load - read the environment (once per image) */
static void
faultfs_load(void)
{
	const char *v;
	size_t n;

	if (__atomic_load_n(&faultfs.loaded, __ATOMIC_ACQUIRE))
		return;
	v = getenv("FAULTFS_FAIL");
	snprintf(faultfs.fail, sizeof(faultfs.fail), ",%s,", v ? v : "");
	faultfs_env("FAULTFS_PATH", faultfs.path, sizeof(faultfs.path));
	n = strlen(faultfs.path);
	if (n > 0 && faultfs.path[n - 1] == '$') {
		faultfs.path[n - 1] = '\0';
		faultfs.exact = true;
	}
	faultfs.err = faultfs_errno(getenv("FAULTFS_ERRNO"));
	v = getenv("FAULTFS_AFTER");
	faultfs.after = v ? atol(v) : 0;
	v = getenv("FAULTFS_COUNT");
	faultfs.count = v && *v ? atol(v) : -1;
	faultfs_env("FAULTFS_WHILE", faultfs.while_file,
	    sizeof(faultfs.while_file));
	faultfs_env("FAULTFS_TRACE", faultfs.trace, sizeof(faultfs.trace));
	faultfs_env("FAULTFS_TRACE_PATH", faultfs.trace_path,
	    sizeof(faultfs.trace_path));
	__atomic_store_n(&faultfs.loaded, true, __ATOMIC_RELEASE);
}

/* faultfs_real - the next definition of name (libc's) */
static void *
faultfs_real(const char *name)
{
	void *p = dlsym(RTLD_NEXT, name);

	if (p == NULL) {
		static const char msg[] = "faultfs: a call is missing\n";

		(void)syscall(SYS_write, 2, msg, sizeof(msg) - 1);
		abort();
	}
	return p;
}

/* REAL(fn) - real_ is libc's fn, looked up on the first call */
#define REAL(fn)                                                              \
	static __typeof__(&fn) real_;                                         \
	if (real_ == NULL)                                                    \
		real_ = (__typeof__(&fn))faultfs_real(#fn)

/* faultfs_fd_path - the path of fd ("" when unknown) */
static void
faultfs_fd_path(int fd, char *out, size_t size)
{
	char proc[64];
	ssize_t n;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	n = readlink(proc, out, size - 1);
	out[n < 0 ? 0 : n] = '\0';
}

/* faultfs_at_path - the path an *at() call names, as an absolute path
 * where it can; linkat through /proc/self/fd/N gives the file's path */
static void
faultfs_at_path(int dirfd, const char *p, int flags, char *out, size_t size)
{
	char dir[FAULTFS_LINE];
	int n;

	if (p == NULL) {
		out[0] = '\0';
		return;
	}
	if ((flags & AT_EMPTY_PATH) && *p == '\0') {
		faultfs_fd_path(dirfd, out, size);
		return;
	}
	if (strncmp(p, "/proc/self/fd/", 14) == 0) {
		faultfs_fd_path(atoi(p + 14), out, size);
		return;
	}
	if (p[0] == '/' || dirfd == AT_FDCWD) {
		if (p[0] != '/' && getcwd(dir, sizeof(dir)) != NULL)
			n = snprintf(out, size, "%s/%s", dir, p);
		else
			n = snprintf(out, size, "%s", p);
	} else {
		faultfs_fd_path(dirfd, dir, sizeof(dir));
		n = snprintf(out, size, "%s/%s", dir, p);
	}
	if (n < 0 || (size_t)n >= size)
		out[0] = '\0';		/* too long to match anything */
}

/* faultfs_in_list - is call (or a group holding it) in FAULTFS_FAIL? */
static bool
faultfs_in_list(const char *call)
{
	static const struct {
		const char *group, *calls;
	} groups[] = {
		{"link", ",link,linkat,"},
		{"rename", ",rename,renameat,renameat2,"},
		{"write", ",write,pwrite,writev,send,sendmsg,"},
		{"sync", ",fsync,fdatasync,syncfs,"},
	};
	char key[64], group[64];

	snprintf(key, sizeof(key), ",%s,", call);
	if (strstr(faultfs.fail, key) != NULL)
		return true;
	for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
		snprintf(group, sizeof(group), ",%s,", groups[i].group);
		if (strstr(faultfs.fail, group) != NULL &&
		    strstr(groups[i].calls, key) != NULL)
			return true;
	}
	return false;
}

/* faultfs_path_matches - p under FAULTFS_PATH (or the exact path)? */
static bool
faultfs_path_matches(const char *p)
{
	if (faultfs.path[0] == '\0')
		return true;
	if (p == NULL || *p == '\0')
		return false;
	if (faultfs.exact)
		return strcmp(p, faultfs.path) == 0;
	return strncmp(p, faultfs.path, strlen(faultfs.path)) == 0;
}

/* faultfs_inject - should this call fail? (counts it if it matches) */
static bool
faultfs_inject(const char *call, const char *p1, const char *p2)
{
	faultfs_load();
	if (faultfs.fail[1] == '\0' || !faultfs_in_list(call))
		return false;
	if (!faultfs_path_matches(p1) && !faultfs_path_matches(p2))
		return false;
	if (faultfs.while_file[0] != '\0' &&
	    access(faultfs.while_file, F_OK) < 0)
		return false;
	if (__atomic_fetch_add(&faultfs_matched, 1, __ATOMIC_RELAXED) <
	    faultfs.after)
		return false;
	if (faultfs.count >= 0 && __atomic_fetch_add(&faultfs_failed, 1,
	    __ATOMIC_RELAXED) >= faultfs.count)
		return false;
	return true;
}

/* faultfs_esc - append an escaped value */
static size_t
faultfs_esc(char *out, size_t off, size_t size, const void *data, size_t n)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < n && off + 5 < size; i++) {
		unsigned char c = p[i];

		if (c == '\\' || c == '\t' || c == '\n' || c < 0x20 ||
		    c >= 0x7f)
			off += (size_t)snprintf(out + off, size - off,
			    c == '\\' ? "\\\\" : c == '\t' ? "\\t" :
			    c == '\n' ? "\\n" : "\\x%02x", c);
		else
			out[off++] = (char)c;
	}
	out[off] = '\0';
	return off;
}

/* faultfs_comm - the program's name (/proc/self/comm) */
static void
faultfs_comm(char *out, size_t size)
{
	ssize_t n;
	int fd = open("/proc/self/comm", O_RDONLY | O_CLOEXEC);

	out[0] = '\0';
	if (fd < 0)
		return;
	n = read(fd, out, size - 1);
	(void)close(fd);
	if (n <= 0)
		n = 0;
	out[n] = '\0';
	if (n > 0 && out[n - 1] == '\n')
		out[n - 1] = '\0';
}

/* faultfs_trace - append one line to the trace */
static void
faultfs_trace(const char *call, long ret, int err, bool injected,
    const char *ino, const char *path, const char *to, const void *data,
    size_t dlen)
{
	char line[FAULTFS_LINE * 3], comm[32];
	struct timespec ts;
	size_t off;
	int fd, saved = errno;

	if (faultfs.trace[0] == '\0')
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	faultfs_comm(comm, sizeof(comm));
	off = (size_t)snprintf(line, sizeof(line),
	    "t=%lld\tpid=%ld\tcomm=%s\tcall=%s\tret=%ld\terrno=%d\t"
	    "injected=%d\tino=%s\tpath=",
	    (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec, (long)getpid(),
	    comm, call, ret, err, injected ? 1 : 0, ino ? ino : "-");
	off = faultfs_esc(line, off, sizeof(line) - 64, path ? path : "",
	    path ? strlen(path) : 0);
	off += (size_t)snprintf(line + off, sizeof(line) - off, "\tto=");
	off = faultfs_esc(line, off, sizeof(line) - 64, to ? to : "",
	    to ? strlen(to) : 0);
	off += (size_t)snprintf(line + off, sizeof(line) - off, "\tdata=");
	off = faultfs_esc(line, off, sizeof(line) - 2, data,
	    data ? (dlen < FAULTFS_DATA ? dlen : FAULTFS_DATA) : 0);
	line[off++] = '\n';
	fd = open(faultfs.trace, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
	    0666);
	if (fd >= 0) {
		(void)syscall(SYS_write, fd, line, off);
		(void)close(fd);
	}
	errno = saved;
}

/* faultfs_ino_fd / faultfs_ino_path - "dev:ino" of a file */
static void
faultfs_ino_fd(int fd, char *out, size_t size)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		snprintf(out, size, "-");
	else
		snprintf(out, size, "%llu:%llu",
		    (unsigned long long)st.st_dev,
		    (unsigned long long)st.st_ino);
}

static void
faultfs_ino_path(const char *p, char *out, size_t size)
{
	struct stat st;

	if (lstat(p, &st) < 0)
		snprintf(out, size, "-");
	else
		snprintf(out, size, "%llu:%llu",
		    (unsigned long long)st.st_dev,
		    (unsigned long long)st.st_ino);
}

/*
 * Syncs: the descriptor's path decides; traced after they return.
 */

/* faultfs_sync - the common body of the fd syncs */
static int
faultfs_sync(const char *call, int fd, int (*real)(int))
{
	char path[FAULTFS_LINE], ino[64];
	int r, err, saved = errno;
	bool inj;

	faultfs_load();
	faultfs_fd_path(fd, path, sizeof(path));
	faultfs_ino_fd(fd, ino, sizeof(ino));
	inj = faultfs_inject(call, path, NULL);
	errno = saved;
	if (inj) {
		r = -1;
		err = faultfs.err;
	} else {
		r = real(fd);
		err = r < 0 ? errno : 0;
	}
	faultfs_trace(call, r, err, inj, ino, path, NULL, NULL, 0);
	errno = r < 0 ? err : saved;
	return r;
}

int
fsync(int fd)
{
	REAL(fsync);
	return faultfs_sync("fsync", fd, real_);
}

int
fdatasync(int fd)
{
	REAL(fdatasync);
	return faultfs_sync("fdatasync", fd, real_);
}

int
syncfs(int fd)
{
	REAL(syncfs);
	return faultfs_sync("syncfs", fd, real_);
}

/* the real sync_file_range, for faultfs_sync */
static int
faultfs_real_sfr(int fd, off_t off, off_t n, unsigned flags)
{
	REAL(sync_file_range);
	return real_(fd, off, n, flags);
}

int
sync_file_range(int fd, off_t off, off_t nbytes, unsigned int flags)
{
	char path[FAULTFS_LINE], ino[64];
	bool inj;
	int r, err;

	faultfs_load();
	faultfs_fd_path(fd, path, sizeof(path));
	faultfs_ino_fd(fd, ino, sizeof(ino));
	inj = faultfs_inject("sync_file_range", path, NULL);
	if (inj) {
		r = -1;
		err = faultfs.err;
	} else {
		r = faultfs_real_sfr(fd, off, nbytes, flags);
		err = r < 0 ? errno : 0;
	}
	faultfs_trace("sync_file_range", r, err, inj, ino, path, NULL, NULL,
	    0);
	if (r < 0)
		errno = err;
	return r;
}

/*
 * Names: link and rename; traced after they return, with the inode that
 * got the new name.
 */

/* faultfs_name_done - trace a link or rename and set errno */
static int
faultfs_name_done(const char *call, int r, int err, bool inj,
    const char *from, const char *to)
{
	char ino[64];

	if (r == 0)
		faultfs_ino_path(to, ino, sizeof(ino));
	else
		snprintf(ino, sizeof(ino), "-");
	faultfs_trace(call, r, err, inj, ino, from, to, NULL, 0);
	if (r < 0)
		errno = err;
	return r;
}

int
linkat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
    int flags)
{
	char from[FAULTFS_LINE], to[FAULTFS_LINE];
	bool inj;
	int r, err = 0;

	REAL(linkat);
	faultfs_load();
	faultfs_at_path(olddirfd, oldpath, flags, from, sizeof(from));
	faultfs_at_path(newdirfd, newpath, 0, to, sizeof(to));
	if ((inj = faultfs_inject("linkat", from, to))) {
		r = -1;
		err = faultfs.err;
	} else if ((r = real_(olddirfd, oldpath, newdirfd, newpath,
	    flags)) < 0) {
		err = errno;
	}
	return faultfs_name_done("linkat", r, err, inj, from, to);
}

int
link(const char *oldpath, const char *newpath)
{
	char from[FAULTFS_LINE], to[FAULTFS_LINE];
	bool inj;
	int r, err = 0;

	REAL(link);
	faultfs_load();
	faultfs_at_path(AT_FDCWD, oldpath, 0, from, sizeof(from));
	faultfs_at_path(AT_FDCWD, newpath, 0, to, sizeof(to));
	if ((inj = faultfs_inject("link", from, to))) {
		r = -1;
		err = faultfs.err;
	} else if ((r = real_(oldpath, newpath)) < 0) {
		err = errno;
	}
	return faultfs_name_done("link", r, err, inj, from, to);
}

int
rename(const char *oldpath, const char *newpath)
{
	char from[FAULTFS_LINE], to[FAULTFS_LINE];
	bool inj;
	int r, err = 0;

	REAL(rename);
	faultfs_load();
	faultfs_at_path(AT_FDCWD, oldpath, 0, from, sizeof(from));
	faultfs_at_path(AT_FDCWD, newpath, 0, to, sizeof(to));
	if ((inj = faultfs_inject("rename", from, to))) {
		r = -1;
		err = faultfs.err;
	} else if ((r = real_(oldpath, newpath)) < 0) {
		err = errno;
	}
	return faultfs_name_done("rename", r, err, inj, from, to);
}

int
renameat(int olddirfd, const char *oldpath, int newdirfd,
    const char *newpath)
{
	char from[FAULTFS_LINE], to[FAULTFS_LINE];
	bool inj;
	int r, err = 0;

	REAL(renameat);
	faultfs_load();
	faultfs_at_path(olddirfd, oldpath, 0, from, sizeof(from));
	faultfs_at_path(newdirfd, newpath, 0, to, sizeof(to));
	if ((inj = faultfs_inject("renameat", from, to))) {
		r = -1;
		err = faultfs.err;
	} else if ((r = real_(olddirfd, oldpath, newdirfd, newpath)) < 0) {
		err = errno;
	}
	return faultfs_name_done("renameat", r, err, inj, from, to);
}

int
renameat2(int olddirfd, const char *oldpath, int newdirfd,
    const char *newpath, unsigned int flags)
{
	char from[FAULTFS_LINE], to[FAULTFS_LINE];
	bool inj;
	int r, err = 0;

	REAL(renameat2);
	faultfs_load();
	faultfs_at_path(olddirfd, oldpath, 0, from, sizeof(from));
	faultfs_at_path(newdirfd, newpath, 0, to, sizeof(to));
	if ((inj = faultfs_inject("renameat2", from, to))) {
		r = -1;
		err = faultfs.err;
	} else if ((r = real_(olddirfd, oldpath, newdirfd, newpath,
	    flags)) < 0) {
		err = errno;
	}
	return faultfs_name_done("renameat2", r, err, inj, from, to);
}

/*
 * Writes: sockets are traced before the write (their first bytes), files
 * only under FAULTFS_TRACE_PATH, after it.
 */

/* faultfs_write_pre - trace/inject for a write of data[0..n) to fd;
 * true: fail it with *err_r */
static bool
faultfs_write_pre(const char *call, int fd, const void *data, size_t n,
    bool *file_r, char *path, size_t psize, int *err_r)
{
	struct stat st;
	int saved = errno;
	bool inj = false;

	faultfs_load();
	*file_r = false;
	path[0] = '\0';
	if (faultfs.trace[0] == '\0' && faultfs.fail[1] == '\0')
		return false;
	if (fstat(fd, &st) < 0) {
		errno = saved;
		return false;
	}
	faultfs_fd_path(fd, path, psize);
	if (S_ISSOCK(st.st_mode)) {
		faultfs_trace(call, 0, 0, false, "-", path, NULL, data, n);
	} else {
		*file_r = faultfs.trace_path[0] != '\0' && strncmp(path,
		    faultfs.trace_path, strlen(faultfs.trace_path)) == 0;
		if (S_ISREG(st.st_mode) && faultfs_inject(call, path, NULL)) {
			*err_r = faultfs.err;
			inj = true;
		}
	}
	errno = saved;
	return inj;
}

/* faultfs_write_post - trace a file write and pass its result on */
static ssize_t
faultfs_write_post(const char *call, bool file, const char *path,
    ssize_t r, int err, bool inj)
{
	if (file)
		faultfs_trace(call, (long)r, err, inj, "-", path, NULL, NULL,
		    0);
	if (r < 0)
		errno = err;
	return r;
}

ssize_t
write(int fd, const void *buf, size_t count)
{
	char path[FAULTFS_LINE];
	bool file;
	int err = 0;
	ssize_t r;

	REAL(write);
	if (faultfs_write_pre("write", fd, buf, count, &file, path,
	    sizeof(path), &err))
		return faultfs_write_post("write", file, path, -1, err, true);
	r = real_(fd, buf, count);
	return faultfs_write_post("write", file, path, r, r < 0 ? errno : 0,
	    false);
}

ssize_t
pwrite(int fd, const void *buf, size_t count, off_t offset)
{
	char path[FAULTFS_LINE];
	bool file;
	int err = 0;
	ssize_t r;

	REAL(pwrite);
	if (faultfs_write_pre("pwrite", fd, buf, count, &file, path,
	    sizeof(path), &err))
		return faultfs_write_post("pwrite", file, path, -1, err, true);
	r = real_(fd, buf, count, offset);
	return faultfs_write_post("pwrite", file, path, r, r < 0 ? errno : 0,
	    false);
}

ssize_t
writev(int fd, const struct iovec *iov, int iovcnt)
{
	char path[FAULTFS_LINE];
	bool file;
	int err = 0;
	ssize_t r;

	REAL(writev);
	if (faultfs_write_pre("writev", fd, iovcnt > 0 ? iov[0].iov_base :
	    NULL, iovcnt > 0 ? iov[0].iov_len : 0, &file, path, sizeof(path),
	    &err))
		return faultfs_write_post("writev", file, path, -1, err, true);
	r = real_(fd, iov, iovcnt);
	return faultfs_write_post("writev", file, path, r, r < 0 ? errno : 0,
	    false);
}

ssize_t
send(int fd, const void *buf, size_t len, int flags)
{
	char path[FAULTFS_LINE];
	bool file;
	int err = 0;

	REAL(send);
	(void)faultfs_write_pre("send", fd, buf, len, &file, path,
	    sizeof(path), &err);
	return real_(fd, buf, len, flags);
}

ssize_t
sendmsg(int fd, const struct msghdr *msg, int flags)
{
	char path[FAULTFS_LINE];
	bool file;
	int err = 0;

	REAL(sendmsg);
	(void)faultfs_write_pre("sendmsg", fd, msg->msg_iovlen > 0 ?
	    msg->msg_iov[0].iov_base : NULL, msg->msg_iovlen > 0 ?
	    msg->msg_iov[0].iov_len : 0, &file, path, sizeof(path), &err);
	return real_(fd, msg, flags);
}
