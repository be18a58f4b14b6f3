/*
 * service_test - run tiny EVENT and SINGLE services in child processes
 * with a listener passed as fd 3 (LISTEN_FDS), talk to them, stop them.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/evloop.h"
#include "base/mem.h"
#include "base/sock.h"
#include "base/test.h"
#include "mail/service.h"

static char tmpdir[] = "/tmp/herald-service-test-XXXXXX";
static char conf[256], sockpath[256];
static char *test_user = "root";
static pid_t child = -1;	/* the running service, killed if left over */

/* now_ms - monotonic milliseconds */
static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* write_conf - a minimal config with paths in the temp dir */
static int
write_conf(const char *extra)
{
	FILE *fp = fopen(conf, "w");

	if (fp == NULL)
		return -1;
	fprintf(fp, "spool_directory = spool\ndata_directory = data\n"
	    "run_directory = run\nmail_location = mail/%%d/%%n\n"
	    "herald_user = %s\nvmail_user = %s\nauth_user = %s\n"
	    "directory_group = %s\n%s", test_user, test_user, test_user,
	    geteuid() == 0 ? "root" : "", extra);
	return fclose(fp);
}

/* wait_exit - wait up to ms for pid; on timeout kill it and return -1 */
static int
wait_exit(pid_t pid, long long ms, int *status)
{
	long long end = now_ms() + ms;

	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);

		if (r == pid)
			return 0;
		if (r < 0 || now_ms() > end)
			break;
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, status, 0);
	return -1;
}

/* alive - true if pid has not exited (does not reap) */
static bool
alive(pid_t pid)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) ==
	    0 && si.si_pid == 0;
}

/* connect_unix - blocking client connection; -1 on failure */
static int
connect_unix(void)
{
	struct buf why = BUF_INIT;
	int fd = sock_connect_unix(sockpath, false, &why);

	buf_free(&why);
	return fd;
}

/* read_line - read up to '\n' within ms; the line without '\n', or "" */
static const char *
read_line(int fd, long long ms)
{
	static char line[256];
	size_t n = 0;
	long long end = now_ms() + ms;

	line[0] = '\0';
	while (n < sizeof(line) - 1) {
		struct pollfd p = {fd, POLLIN, 0};
		long long left = end - now_ms();
		ssize_t r;

		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			break;
		if ((r = read(fd, line + n, 1)) <= 0)
			break;
		if (line[n] == '\n')
			break;
		n++;
	}
	line[n] = '\0';
	return line;
}

/* eof_within - true if fd reaches EOF within ms */
static bool
eof_within(int fd, long long ms)
{
	char c;
	struct pollfd p = {fd, POLLIN, 0};

	if (poll(&p, 1, (int)ms) <= 0)
		return false;
	return read(fd, &c, 1) == 0;
}

/* --- the EVENT service: greets, echoes lines, ends on EOF --- */

struct echo_session {
	struct service *svc;
	int fd;
};

static void
echo_read(struct evloop *loop, int fd, unsigned events, void *ctx)
{
	struct echo_session *s = ctx;
	char data[256];
	ssize_t n = read(fd, data, sizeof(data));

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0 && write(fd, data, (size_t)n) == n)
		return;
	evloop_del_fd(loop, fd);
	close(fd);
	service_session_end(s->svc);
	x_free(&s);
}

static void
echo_accept(struct service *svc, int fd, const struct service_listener *l)
{
	struct echo_session *s = xcalloc(1, sizeof(*s));
	char hello[128];
	int n, fl = fcntl(fd, F_GETFL), fdfl = fcntl(fd, F_GETFD);

	s->svc = svc;
	s->fd = fd;
	/* the greeting proves listener name, env cleanup and fd flags */
	n = snprintf(hello, sizeof(hello), "hello %s env=%s nb=%d ce=%d\n",
	    l->name, getenv("LISTEN_FDS") ? "set" : "clear",
	    (fl & O_NONBLOCK) != 0, (fdfl & FD_CLOEXEC) != 0);
	if (write(fd, hello, (size_t)n) != n) {
		close(fd);
		x_free(&s);
		return;
	}
	service_session_begin(svc);
	if (evloop_add_fd(service_loop(svc), fd, EV_READ, echo_read, s) < 0) {
		close(fd);
		service_session_end(svc);
		x_free(&s);
	}
}

static int stop_calls;

static void
echo_stop(struct service *svc)
{
	stop_calls++;
}

static const struct service_def echo_def = {
	.name = "echo",
	.model = SERVICE_EVENT,
	.user = &test_user,
	.reads_directory = true,
	.accept = echo_accept,
	.stop = echo_stop,
};

/* --- the SINGLE service: one line back per connection --- */

static void
line_serve(struct service *svc, int fd, const struct service_listener *l)
{
	char data[256];
	size_t n = 0;
	int fl = fcntl(fd, F_GETFL);

	/* blocking reads; SIGTERM interrupts them (no SA_RESTART) */
	while (n < sizeof(data) - 1) {
		ssize_t r = read(fd, data + n, 1);

		if (r <= 0)
			return;
		if (data[n++] == '\n')
			break;
	}
	data[n] = '\0';
	dprintf(fd, "%s %s nb=%d stopping=%d\n", l->name, strtok(data, "\n"),
	    (fl & O_NONBLOCK) != 0, service_stopping(svc));
}

static int init_pipe = -1;

static void
line_init(struct service *svc)
{
	int n;
	const struct service_listener *l = service_listeners(svc, &n);

	if (init_pipe >= 0)
		dprintf(init_pipe, "n=%d name=%s\n", n, n ? l[0].name : "-");
}

static const struct service_def line_def = {
	.name = "line",
	.model = SERVICE_SINGLE,
	.user = &test_user,
	.init = line_init,
	.serve = line_serve,
};

/*
 * start - fork a service with the listener as fd 3. listen_pid 0 means
 * "the child's pid"; other values test the LISTEN_PID check.
 */
static pid_t
start(const struct service_def *def, pid_t listen_pid, const char *arg)
{
	struct buf why = BUF_INIT;
	int lfd;
	pid_t pid;

	lfd = sock_listen_unix(sockpath, 0600, 16, &why);
	if (lfd < 0) {
		fprintf(stderr, "listen: %s\n", why.data);
		buf_free(&why);
		return -1;
	}
	buf_free(&why);
	fflush(NULL);
	if ((pid = fork()) < 0) {
		close(lfd);
		return -1;
	}
	if (pid == 0) {
		char pidtext[32];
		char *argv[] = {(char *)def->name, "-c", conf, "-f",
		    (char *)arg, NULL};

		if (lfd != 3 && (dup2(lfd, 3) < 0 || close(lfd) < 0))
			_exit(99);
		snprintf(pidtext, sizeof(pidtext), "%ld",
		    (long)(listen_pid ? listen_pid : getpid()));
		setenv("LISTEN_FDS", "1", 1);
		setenv("LISTEN_FDNAMES", "test:other", 1);
		setenv("LISTEN_PID", pidtext, 1);
		exit(service_main(arg ? 5 : 4, argv, def));
	}
	close(lfd);
	child = pid;
	return pid;
}

/* reap - kill a service a failed case left behind */
static void
reap(void)
{
	int status;

	if (child > 0 && waitpid(child, &status, WNOHANG) == 0) {
		kill(child, SIGKILL);
		waitpid(child, &status, 0);
	}
	child = -1;
}

/* setup - a fresh config; 0 or -1 */
static int
setup(const char *extra)
{
	reap();
	snprintf(conf, sizeof(conf), "%s/herald.conf", tmpdir);
	snprintf(sockpath, sizeof(sockpath), "%s/test.sock", tmpdir);
	unlink(sockpath);
	return write_conf(extra);
}

static void
test_event_echo_and_stop(void)
{
	pid_t pid;
	int fd = -1, fd2, status = 0;
	const char *line;

	T_ASSERT(setup("stop_timeout = 30s\n") == 0);
	T_ASSERT((pid = start(&echo_def, 0, NULL)) > 0);
	fd = connect_unix();
	if (fd < 0)
		kill(pid, SIGKILL);
	T_ASSERT(fd >= 0);
	line = read_line(fd, 5000);
	if (strcmp(line, "hello test env=clear nb=1 ce=1") != 0)
		kill(pid, SIGKILL);
	T_EQ_STR(line, "hello test env=clear nb=1 ce=1");
	T_ASSERT(write(fd, "ping\n", 5) == 5);
	T_EQ_STR(read_line(fd, 5000), "ping");

	/* SIGTERM with a session open: listener closes, session lives */
	T_ASSERT(kill(pid, SIGTERM) == 0);
	for (long long end = now_ms() + 5000; now_ms() < end;) {
		if ((fd2 = connect_unix()) < 0)
			break;
		close(fd2);
		usleep(20000);
	}
	T_ASSERT(alive(pid));
	T_ASSERT(write(fd, "pong\n", 5) == 5);
	T_EQ_STR(read_line(fd, 5000), "pong");
	/* the last session ends: the service exits 0, long before the
	 * stop_timeout of 30 s */
	close(fd);
	T_EQ_INT(wait_exit(pid, 5000, &status), 0);
	T_ASSERT(WIFEXITED(status));
	T_EQ_INT(WEXITSTATUS(status), 0);
}

static void
test_event_idle_stop(void)
{
	pid_t pid;
	int status = 0;
	long long t0;

	T_ASSERT(setup("stop_timeout = 30s\n") == 0);
	T_ASSERT((pid = start(&echo_def, 0, NULL)) > 0);
	usleep(100000);
	t0 = now_ms();
	T_ASSERT(kill(pid, SIGTERM) == 0);
	T_EQ_INT(wait_exit(pid, 5000, &status), 0);
	T_ASSERT(WIFEXITED(status));
	T_EQ_INT(WEXITSTATUS(status), 0);
	/* no sessions: immediately, not after stop_timeout */
	T_ASSERT(now_ms() - t0 < 3000);
}

static void
test_event_stop_timeout(void)
{
	pid_t pid;
	int fd, status = 0;
	long long t0;

	T_ASSERT(setup("stop_timeout = 1s\n") == 0);
	T_ASSERT((pid = start(&echo_def, 0, NULL)) > 0);
	fd = connect_unix();
	if (fd < 0)
		kill(pid, SIGKILL);
	T_ASSERT(fd >= 0);
	T_ASSERT(strncmp(read_line(fd, 5000), "hello", 5) == 0);
	t0 = now_ms();
	T_ASSERT(kill(pid, SIGTERM) == 0);
	/* the session stays open: the timer ends the process */
	T_EQ_INT(wait_exit(pid, 10000, &status), 0);
	close(fd);
	T_ASSERT(WIFEXITED(status));
	T_EQ_INT(WEXITSTATUS(status), 0);
	T_ASSERT(now_ms() - t0 >= 900);
}

static void
test_event_retire(void)
{
	pid_t pid;
	int fd, fd2 = -1, status = 0;

	T_ASSERT(setup("stop_timeout = 1s\n") == 0);
	T_ASSERT((pid = start(&echo_def, 0, NULL)) > 0);
	fd = connect_unix();
	if (fd < 0)
		kill(pid, SIGKILL);
	T_ASSERT(fd >= 0);
	T_ASSERT(strncmp(read_line(fd, 5000), "hello", 5) == 0);

	/* SIGUSR1: the listener closes, the session goes on unhurried */
	T_ASSERT(kill(pid, SIGUSR1) == 0);
	for (long long end = now_ms() + 5000; now_ms() < end;) {
		if ((fd2 = connect_unix()) < 0)
			break;
		close(fd2);
		usleep(20000);
	}
	T_ASSERT(fd2 < 0);
	/* well past stop_timeout: no deadline for a retired service */
	usleep(2500000);
	T_ASSERT(alive(pid));
	T_ASSERT(write(fd, "late\n", 5) == 5);
	T_EQ_STR(read_line(fd, 5000), "late");
	/* its last session ends: it exits 0 */
	close(fd);
	T_EQ_INT(wait_exit(pid, 5000, &status), 0);
	T_ASSERT(WIFEXITED(status));
	T_EQ_INT(WEXITSTATUS(status), 0);
}

static void
test_event_retire_then_stop(void)
{
	pid_t pid;
	int fd, status = 0;
	long long t0;

	T_ASSERT(setup("stop_timeout = 1s\n") == 0);
	T_ASSERT((pid = start(&echo_def, 0, NULL)) > 0);
	fd = connect_unix();
	if (fd < 0)
		kill(pid, SIGKILL);
	T_ASSERT(fd >= 0);
	T_ASSERT(strncmp(read_line(fd, 5000), "hello", 5) == 0);
	T_ASSERT(kill(pid, SIGUSR1) == 0);
	usleep(200000);
	T_ASSERT(alive(pid));
	/* a stop still bounds the retired service by stop_timeout */
	t0 = now_ms();
	T_ASSERT(kill(pid, SIGTERM) == 0);
	T_EQ_INT(wait_exit(pid, 10000, &status), 0);
	close(fd);
	T_ASSERT(WIFEXITED(status));
	T_EQ_INT(WEXITSTATUS(status), 0);
	T_ASSERT(now_ms() - t0 >= 900);
}

static void
test_retire_before_handled(void)
{
	static const struct service_def *const defs[] = {&echo_def,
	    &line_def};
	sigset_t usr1, old;

	/* as master starts a service: SIGUSR1 blocked across exec, sent
	 * at once; it must wait for the skeleton, not kill the process */
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	for (int i = 0; i < 2; i++) {
		pid_t pid;
		int status = 0;

		T_ASSERT(setup("stop_timeout = 30s\n") == 0);
		T_ASSERT(sigprocmask(SIG_BLOCK, &usr1, &old) == 0);
		pid = start(defs[i], 0, NULL);
		T_ASSERT(sigprocmask(SIG_SETMASK, &old, NULL) == 0);
		T_ASSERT(pid > 0);
		T_ASSERT(kill(pid, SIGUSR1) == 0);
		T_EQ_INT(wait_exit(pid, 5000, &status), 0);
		T_ASSERT(WIFEXITED(status));
		T_EQ_INT(WEXITSTATUS(status), 0);
	}
}

static void
test_single_retire(void)
{
	pid_t pid;
	int fd, status = 0;

	T_ASSERT(setup("stop_timeout = 5s\n") == 0);
	T_ASSERT((pid = start(&line_def, 0, NULL)) > 0);
	fd = connect_unix();
	if (fd < 0)
		kill(pid, SIGKILL);
	T_ASSERT(fd >= 0);
	T_ASSERT(write(fd, "ping\n", 5) == 5);
	T_EQ_STR(read_line(fd, 5000), "test ping nb=0 stopping=0");
	close(fd);
	/* SINGLE: a retirement finishes the connection and exits */
	T_ASSERT(kill(pid, SIGUSR1) == 0);
	T_EQ_INT(wait_exit(pid, 5000, &status), 0);
	T_ASSERT(WIFEXITED(status));
	T_EQ_INT(WEXITSTATUS(status), 0);
}

static void
test_single_serve_and_stop(void)
{
	pid_t pid;
	int fd, status = 0;

	T_ASSERT(setup("stop_timeout = 5s\n") == 0);
	T_ASSERT((pid = start(&line_def, 0, NULL)) > 0);
	for (int i = 0; i < 3; i++) {
		fd = connect_unix();
		if (fd < 0)
			kill(pid, SIGKILL);
		T_ASSERT(fd >= 0);
		T_ASSERT(write(fd, "ping\n", 5) == 5);
		T_EQ_STR(read_line(fd, 5000), "test ping nb=0 stopping=0");
		/* the skeleton closed the connection after serve */
		T_ASSERT(eof_within(fd, 5000));
		close(fd);
	}
	T_ASSERT(kill(pid, SIGTERM) == 0);
	T_EQ_INT(wait_exit(pid, 5000, &status), 0);
	T_ASSERT(WIFEXITED(status));
	T_EQ_INT(WEXITSTATUS(status), 0);
}

static void
test_single_stop_interrupts_serve(void)
{
	pid_t pid;
	int fd, status = 0;

	T_ASSERT(setup("stop_timeout = 5s\n") == 0);
	T_ASSERT((pid = start(&line_def, 0, NULL)) > 0);
	fd = connect_unix();
	if (fd < 0)
		kill(pid, SIGKILL);
	T_ASSERT(fd >= 0);
	usleep(200000);		/* serve now blocks in read() */
	T_ASSERT(kill(pid, SIGTERM) == 0);
	T_EQ_INT(wait_exit(pid, 5000, &status), 0);
	close(fd);
	T_ASSERT(WIFEXITED(status));
	T_EQ_INT(WEXITSTATUS(status), 0);
}

static void
test_listen_pid_mismatch(void)
{
	pid_t pid;
	int p[2], status = 0;

	T_ASSERT(setup("stop_timeout = 5s\n") == 0);
	T_ASSERT(pipe(p) == 0);
	init_pipe = p[1];
	pid = start(&line_def, 1, NULL);	/* LISTEN_PID is not the child */
	init_pipe = -1;
	close(p[1]);
	if (pid < 0)
		close(p[0]);
	T_ASSERT(pid > 0);
	T_EQ_STR(read_line(p[0], 5000), "n=0 name=-");
	close(p[0]);
	T_ASSERT(kill(pid, SIGTERM) == 0);
	T_EQ_INT(wait_exit(pid, 5000, &status), 0);
	T_ASSERT(WIFEXITED(status));
	T_EQ_INT(WEXITSTATUS(status), 0);
}

static void
test_listen_names(void)
{
	pid_t pid;
	int p[2], status = 0;

	T_ASSERT(setup("stop_timeout = 5s\n") == 0);
	T_ASSERT(pipe(p) == 0);
	init_pipe = p[1];
	pid = start(&line_def, 0, NULL);
	init_pipe = -1;
	close(p[1]);
	if (pid < 0)
		close(p[0]);
	T_ASSERT(pid > 0);
	T_EQ_STR(read_line(p[0], 5000), "n=1 name=test");
	close(p[0]);
	T_ASSERT(kill(pid, SIGTERM) == 0);
	T_EQ_INT(wait_exit(pid, 5000, &status), 0);
	T_EQ_INT(WEXITSTATUS(status), 0);
}

static void
test_usage_and_bad_config(void)
{
	pid_t pid;
	int status = 0, devnull;

	T_ASSERT(setup("stop_timeout = 5s\n") == 0);
	/* keep the expected error lines out of the test output */
	devnull = open("/dev/null", O_WRONLY);
	T_ASSERT(devnull >= 0);
	fflush(NULL);
	if ((pid = fork()) == 0) {
		char *argv[] = {"line", "-x", NULL};

		dup2(devnull, 2);
		exit(service_main(2, argv, &line_def));
	}
	T_ASSERT(pid > 0);
	T_EQ_INT(wait_exit(pid, 5000, &status), 0);
	T_EQ_INT(WEXITSTATUS(status), 2);

	T_ASSERT(write_conf("no_such_key = 1\n") == 0);
	if ((pid = fork()) == 0) {
		char *argv[] = {"line", "-f", "-c", conf, NULL};

		dup2(devnull, 2);
		exit(service_main(4, argv, &line_def));
	}
	close(devnull);
	T_ASSERT(pid > 0);
	T_EQ_INT(wait_exit(pid, 5000, &status), 0);
	T_ASSERT(WIFEXITED(status));
	T_EQ_INT(WEXITSTATUS(status), 1);
}

static void
test_drop_privileges_self(void)
{
	pid_t pid;
	int status = 0;

	/* dropping to the user we already are must work, also as non-root
	 * (setgroups needs root, so only run the full drop as root) */
	if (geteuid() != 0)
		return;
	if ((pid = fork()) == 0) {
		service_drop_privileges("root", "root");
		_exit(getuid() == 0 && getgid() == 0 ? 0 : 3);
	}
	T_ASSERT(pid > 0);
	T_EQ_INT(wait_exit(pid, 5000, &status), 0);
	T_EQ_INT(WEXITSTATUS(status), 0);

	/* an unknown user is fatal */
	if ((pid = fork()) == 0) {
		int devnull = open("/dev/null", O_WRONLY);

		dup2(devnull, 2);
		service_drop_privileges("no-such-user-herald", NULL);
		_exit(0);
	}
	T_ASSERT(pid > 0);
	T_EQ_INT(wait_exit(pid, 5000, &status), 0);
	T_EQ_INT(WEXITSTATUS(status), 1);

	/* a real drop to nobody: setuid(0) must fail afterwards */
	if ((pid = fork()) == 0) {
		service_drop_privileges("nobody", NULL);
		_exit(geteuid() != 0 && setuid(0) < 0 ? 0 : 3);
	}
	T_ASSERT(pid > 0);
	T_EQ_INT(wait_exit(pid, 5000, &status), 0);
	T_EQ_INT(WEXITSTATUS(status), 0);
}

/* cleanup - remove the temp dir */
static void
cleanup(void)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/test.sock", tmpdir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/herald.conf", tmpdir);
	unlink(path);
	rmdir(tmpdir);
}

static void
test_fd_room(void)
{
	struct rlimit old, low;

	T_ASSERT(getrlimit(RLIMIT_NOFILE, &old) == 0);
	low = old;
	low.rlim_cur = 200;
	T_ASSERT(setrlimit(RLIMIT_NOFILE, &low) == 0);
	/* 200 descriptors less a reserve of 64: 68 sessions of 2 */
	T_ASSERT(service_fd_room(0, 2));
	T_ASSERT(service_fd_room(67, 2));
	T_ASSERT(!service_fd_room(68, 2));
	T_ASSERT(!service_fd_room(45, 3));
	T_ASSERT(setrlimit(RLIMIT_NOFILE, &old) == 0);
	T_ASSERT(service_fd_room(67, 2));
}

/* nofile_run - service_nofile(need) with stderr (the log) in out */
static long long
nofile_run(long long need, struct buf *out)
{
	char path[] = "/tmp/herald-nofile-test.XXXXXX";
	char tmp[512];
	int fd, saved;
	long long r;
	ssize_t n;

	buf_reset(out);
	if ((fd = mkstemp(path)) < 0)
		return -2;
	unlink(path);
	fflush(stderr);
	saved = dup(2);
	if (saved < 0 || dup2(fd, 2) < 0) {
		close(fd);
		return -2;
	}
	r = service_nofile(need, "imapd_max_sessions");
	fflush(stderr);
	if (dup2(saved, 2) < 0)
		r = -2;
	close(saved);
	if (lseek(fd, 0, SEEK_SET) == 0)
		while ((n = read(fd, tmp, sizeof(tmp))) > 0)
			buf_append(out, tmp, (size_t)n);
	close(fd);
	return r;
}

/*
 * service_nofile: the soft limit goes up to the hard one, and a need
 * beyond the hard one is logged (with the setting's name), a need
 * within it is not.
 */
static void
test_nofile(void)
{
	struct rlimit old, low, now;
	struct buf out = BUF_INIT;

	T_ASSERT(getrlimit(RLIMIT_NOFILE, &old) == 0);
	if (old.rlim_max == RLIM_INFINITY || old.rlim_max < 300)
		return;		/* nothing to show here */
	low = old;
	low.rlim_cur = 200;
	T_ASSERT(setrlimit(RLIMIT_NOFILE, &low) == 0);
	T_EQ_INT(nofile_run(100, &out), (long long)old.rlim_max);
	T_ASSERT(getrlimit(RLIMIT_NOFILE, &now) == 0);
	T_EQ_INT((long long)now.rlim_cur, (long long)old.rlim_max);
	T_EQ_STR(buf_cstr(&out), "");
	T_EQ_INT(nofile_run((long long)old.rlim_max, &out),
	    (long long)old.rlim_max);
	T_ASSERT(strstr(buf_cstr(&out), "below the") != NULL);
	T_ASSERT(strstr(buf_cstr(&out), "imapd_max_sessions") != NULL);
	T_ASSERT(setrlimit(RLIMIT_NOFILE, &old) == 0);
	buf_free(&out);
}

/* rss_kb - this process's resident size */
static long long
rss_kb(void)
{
	long long pages = 0, rss = 0;
	FILE *fp = fopen("/proc/self/statm", "r");

	if (fp == NULL)
		return -1;
	if (fscanf(fp, "%lld %lld", &pages, &rss) != 2)
		rss = -1;
	fclose(fp);
	return rss < 0 ? -1 : rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* stop_cb - end a bounded loop run */
static long long
stop_cb(struct evloop *loop, void *ctx)
{
	(void)ctx;
	evloop_stop(loop);
	return -1;
}

/* run_ms - run loop for ms */
static void
run_ms(struct evloop *loop, long long ms)
{
	T_ASSERT(evloop_add_timer(loop, ms, stop_cb, NULL) != NULL);
	T_EQ_INT(evloop_run(loop), 0);
}

/*
 * test_heap_trim - a surge of 64 sessions leaves 32 MB of freed heap
 * behind live chunks (which free() never returns, and the services' trim
 * threshold keeps 8 MB at the top); once the sessions are gone and the
 * delay passed, the worker gives it back. A few sessions never trim.
 */
static void
test_heap_trim(void)
{
	enum { SESSIONS = 64, CHUNK = 512, PER = 1024 };
	struct evloop *loop = evloop_new();
	struct service *svc;
	static char *chunks[SESSIONS * PER];
	bool tuned;
	long long before, after;

	T_ASSERT(loop != NULL);
	svc = service_new_detached(&line_def, loop);
	service_set_heap_trim(svc, 100);
	/* as service_malloc_tune; a sanitizer's allocator says no */
	tuned = mallopt(M_TRIM_THRESHOLD, 8 * 1024 * 1024) == 1 &&
	    mallopt(M_MMAP_THRESHOLD, 1024 * 1024) == 1;

	/* fewer than a surge: no trim */
	for (int i = 0; i < 8; i++)
		service_session_begin(svc);
	for (int i = 0; i < 8; i++)
		service_session_end(svc);
	run_ms(loop, 300);
	T_EQ_INT(service_heap_trims(svc), 0);

	for (int i = 0; i < SESSIONS; i++) {
		service_session_begin(svc);
		for (int j = 0; j < PER; j++) {
			chunks[i * PER + j] = xmalloc(CHUNK);
			memset(chunks[i * PER + j], 'x', CHUNK);
		}
	}
	/* the sessions end; one chunk in 128 stays, as state would */
	for (int i = 0; i < SESSIONS * PER; i++)
		if (i % 128 != 127)
			x_free(&chunks[i]);
	for (int i = 0; i < SESSIONS; i++)
		service_session_end(svc);
	before = rss_kb();
	T_EQ_INT(service_heap_trims(svc), 0);	/* not at once */
	run_ms(loop, 500);
	after = rss_kb();
	T_EQ_INT(service_heap_trims(svc), 1);
	if (tuned) {
		printf("# heap trim: RSS %lld -> %lld kB\n", before, after);
		T_ASSERT(before - after > 16 * 1024);
	}
	for (int i = 0; i < SESSIONS * PER; i++)
		x_free(&chunks[i]);

	/* sessions back above a quarter of the peak: no trim yet */
	for (int i = 0; i < SESSIONS; i++)
		service_session_begin(svc);
	for (int i = 0; i < SESSIONS - 8; i++)
		service_session_end(svc);
	for (int i = 0; i < SESSIONS / 2; i++)
		service_session_begin(svc);
	run_ms(loop, 300);
	T_EQ_INT(service_heap_trims(svc), 1);
	for (int i = 0; i < SESSIONS / 2 + 8; i++)
		service_session_end(svc);
	run_ms(loop, 300);
	T_EQ_INT(service_heap_trims(svc), 2);

	service_free_detached(&svc);
	evloop_free(&loop);
}

static const struct test_case cases[] = {
	{"heap trimmed after a surge of sessions", test_heap_trim},
	{"descriptor room for sessions", test_fd_room},
	{"open file limit raised, shortfall logged", test_nofile},
	{"event: echo, graceful stop with a session", test_event_echo_and_stop},
	{"event: stop without sessions is immediate", test_event_idle_stop},
	{"event: stop_timeout ends open sessions", test_event_stop_timeout},
	{"event: SIGUSR1 retires without a deadline", test_event_retire},
	{"event: a stop after SIGUSR1 keeps stop_timeout",
	    test_event_retire_then_stop},
	{"SIGUSR1 before the skeleton handles it waits",
	    test_retire_before_handled},
	{"single: serve, close, stop", test_single_serve_and_stop},
	{"single: SIGUSR1 exits after the connection", test_single_retire},
	{"single: SIGTERM interrupts a blocked serve",
	    test_single_stop_interrupts_serve},
	{"LISTEN_PID of another process: no listeners",
	    test_listen_pid_mismatch},
	{"LISTEN_FDNAMES names the listener", test_listen_names},
	{"usage error 2, bad config 1", test_usage_and_bad_config},
	{"service_drop_privileges", test_drop_privileges_self},
	{0},
};

int
main(void)
{
	int rc;

	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	if (geteuid() != 0) {
		/* not root: no drop happens, the user name is not used */
		test_user = getenv("USER") ? getenv("USER") : "nobody";
	}
	signal(SIGPIPE, SIG_IGN);
	rc = test_run(cases);
	reap();
	cleanup();
	return rc;
}
