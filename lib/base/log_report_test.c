/*
 * log_report_test - msg_report_attach: msg_fatal and msg_panic write
 * their line (and nothing else does) to the descriptor named by
 * $HERALD_REPORT_FD, which master reads to show a service's last error;
 * bad values are ignored; the variable is removed and the descriptor
 * made close-on-exec.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "base/test.h"

static char got[8192];

/* child_quiet - stderr to /dev/null in a child */
static void
child_quiet(void)
{
	int fd = open("/dev/null", O_WRONLY);

	if (fd < 0 || dup2(fd, 2) < 0)
		_exit(90);
	(void)close(fd);
}

/* run_child - fn in a child with $HERALD_REPORT_FD set to env (NULL: the
 * pipe's write end); what came through the pipe into got; wait status */
static int
run_child(void (*fn)(void), const char *env)
{
	int fds[2], st = -1;
	size_t len = 0;
	ssize_t n;
	pid_t pid;
	char num[32];

	got[0] = '\0';
	if (pipe(fds) < 0)
		return -1;
	if ((pid = fork()) < 0)
		return -1;
	if (pid == 0) {
		(void)close(fds[0]);
		child_quiet();
		snprintf(num, sizeof(num), "%d", fds[1]);
		if (setenv(LOG_REPORT_FD_ENV, env ? env : num, 1) < 0)
			_exit(91);
		msg_init("herald/test", LOG_DEST_STDERR);
		msg_report_attach();
		if (getenv(LOG_REPORT_FD_ENV) != NULL)
			_exit(92);
		if (env == NULL && (fcntl(fds[1], F_GETFD) & FD_CLOEXEC) == 0)
			_exit(93);
		fn();
		_exit(0);
	}
	(void)close(fds[1]);
	while (len < sizeof(got) - 1 &&
	    (n = read(fds[0], got + len, sizeof(got) - 1 - len)) > 0)
		len += (size_t)n;
	got[len] = '\0';
	(void)close(fds[0]);
	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return st;
}

static void
say_fatal(void)
{
	msg_info("not reported");
	msg_warn("not reported either");
	errno = ENOENT;
	msg_fatal("cannot load %s: %m\nforged line", "cert.pem");
}

static void
say_panic(void)
{
	msg_panic("broken invariant %d", 7);
}

static void
say_nothing(void)
{
	msg_warn("only a warning");
}

static void
test_fatal_reported(void)
{
	int st = run_child(say_fatal, NULL);

	T_ASSERT(WIFEXITED(st));
	T_EQ_INT(WEXITSTATUS(st), 1);
	T_EQ_STR(got, "fatal: cannot load cert.pem: No such file or "
	    "directory forged line\n");
}

static void
test_panic_reported(void)
{
	int st = run_child(say_panic, NULL);

	T_ASSERT(WIFSIGNALED(st));
	T_EQ_INT(WTERMSIG(st), SIGABRT);
	T_EQ_STR(got, "panic: broken invariant 7\n");
}

static void
test_warning_not_reported(void)
{
	int st = run_child(say_nothing, NULL);

	T_ASSERT(WIFEXITED(st));
	T_EQ_INT(WEXITSTATUS(st), 0);
	T_EQ_STR(got, "");
}

static void
test_bad_values_ignored(void)
{
	static const char *const bad[] = {"", "abc", "2", "-1", "99999",
	    "4x", NULL};

	for (int i = 0; bad[i] != NULL; i++) {
		int st = run_child(say_fatal, bad[i]);

		T_ASSERT(WIFEXITED(st));
		T_EQ_INT(WEXITSTATUS(st), 1);
		T_EQ_STR(got, "");
	}
}

static const struct test_case cases[] = {
	{"fatal line reported", test_fatal_reported},
	{"panic line reported", test_panic_reported},
	{"warnings are not", test_warning_not_reported},
	{"bad descriptor values ignored", test_bad_values_ignored},
	{0},
};

int
main(void)
{
	return test_run(cases);
}
