/*
 * preflight - check that a service can load its users and TLS files as
 * the user it runs as, before master accepts a configuration.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "base/buf.h"
#include "base/tls.h"
#include "mail/preflight.h"

#define PREFLIGHT_REASON_MAX 1024

/* preflight_user - user name exists; -1 with why */
int
preflight_user(const char *setting, const char *name, uid_t *uid_r,
    gid_t *gid_r, struct buf *why)
{
	struct passwd *pw;

	errno = 0;
	if ((pw = getpwnam(name)) == NULL) {
		buf_printf(why, "%s: user \"%s\" does not exist%s%s", setting,
		    name, errno ? ": " : "", errno ? strerror(errno) : "");
		return -1;
	}
	if (uid_r != NULL)
		*uid_r = pw->pw_uid;
	if (gid_r != NULL)
		*gid_r = pw->pw_gid;
	return 0;
}

/* preflight_group - group name exists; -1 with why */
int
preflight_group(const char *setting, const char *name, gid_t *gid_r,
    struct buf *why)
{
	struct group *gr;

	errno = 0;
	if ((gr = getgrnam(name)) == NULL) {
		buf_printf(why, "%s: group \"%s\" does not exist%s%s", setting,
		    name, errno ? ": " : "", errno ? strerror(errno) : "");
		return -1;
	}
	if (gid_r != NULL)
		*gid_r = gr->gr_gid;
	return 0;
}

/* preflight_now_ms - monotonic milliseconds */
static long long
preflight_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* preflight_write_all - the whole text to fd; child side, best effort */
static void
preflight_write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

/*
 * preflight_tls_child - the child: become the service's user and load
 * the files; the reason (empty: fine) goes to fd. Never returns, and
 * never runs the parent's atexit handlers.
 */
static void __attribute__((noreturn))
preflight_tls_child(int fd, uid_t uid, const gid_t *gids, size_t ngids,
    const char *cert_file, const char *key_file)
{
	struct buf why = BUF_INIT;
	SSL_CTX *ctx;

	if (uid != (uid_t)-1) {
		if (setgroups(ngids, gids) < 0)
			buf_printf(&why, "setgroups: %s", strerror(errno));
		else if (setgid(gids[0]) < 0)
			buf_printf(&why, "setgid: %s", strerror(errno));
		else if (setuid(uid) < 0)
			buf_printf(&why, "setuid: %s", strerror(errno));
		else if (uid != 0 && (getuid() != uid || geteuid() != uid ||
		    setuid(0) == 0))
			buf_puts(&why, "privilege drop did not take effect");
		if (why.len > 0) {
			preflight_write_all(fd, why.data, why.len);
			_exit(1);
		}
	}
	if ((ctx = tls_server_ctx_new(cert_file, key_file, &why)) == NULL) {
		preflight_write_all(fd, why.data, why.len);
		_exit(1);
	}
	SSL_CTX_free(ctx);
	_exit(0);
}

/* preflight_tls_wait - read the child's reason and reap it; -1 with why */
static int
preflight_tls_wait(pid_t pid, int fd, struct buf *why)
{
	long long deadline = preflight_now_ms() + PREFLIGHT_TIMEOUT_MS;
	char reason[PREFLIGHT_REASON_MAX];
	size_t len = 0;
	bool timed_out = false;
	int status, r;

	for (;;) {
		struct pollfd pfd = {fd, POLLIN, 0};
		long long left = deadline - preflight_now_ms();
		ssize_t n;

		if (left <= 0) {
			timed_out = true;
			break;
		}
		if ((r = poll(&pfd, 1, (int)left)) < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		if (r == 0)
			continue;
		n = read(fd, reason + len, sizeof(reason) - 1 - len);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == sizeof(reason) - 1)
			break;
	}
	reason[len] = '\0';
	if (timed_out)
		(void)kill(pid, SIGKILL);
	while ((r = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
		;
	if (timed_out) {
		buf_printf(why, "no answer within %ds",
		    PREFLIGHT_TIMEOUT_MS / 1000);
		return -1;
	}
	if (r < 0) {
		buf_printf(why, "waitpid: %s", strerror(errno));
		return -1;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (len > 0)
		buf_puts(why, reason);
	else if (WIFSIGNALED(status))
		buf_printf(why, "check killed by signal %d", WTERMSIG(status));
	else
		buf_puts(why, "check failed without a reason");
	return -1;
}

/* preflight_tls - cert and key load and match as user; -1 with why */
int
preflight_tls(const char *user, const char *group, const char *cert_file,
    const char *key_file, struct buf *why)
{
	uid_t uid = (uid_t)-1;
	gid_t gids[2];
	size_t ngids = 1;
	int fds[2], rc;
	pid_t pid;

	if (user != NULL && geteuid() == 0) {
		if (preflight_user("user", user, &uid, &gids[0], why) < 0)
			return -1;
		if (group != NULL && *group != '\0') {
			if (preflight_group("group", group, &gids[1],
			    why) < 0)
				return -1;
			if (gids[1] != gids[0])
				ngids = 2;
		}
	}
	if (pipe2(fds, O_CLOEXEC) < 0) {
		buf_printf(why, "pipe: %s", strerror(errno));
		return -1;
	}
	if ((pid = fork()) < 0) {
		buf_printf(why, "fork: %s", strerror(errno));
		(void)close(fds[0]);
		(void)close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		(void)close(fds[0]);
		preflight_tls_child(fds[1], uid, gids, ngids, cert_file,
		    key_file);
	}
	(void)close(fds[1]);
	rc = preflight_tls_wait(pid, fds[0], why);
	(void)close(fds[0]);
	return rc;
}
