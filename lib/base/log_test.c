/*
 * log_test - unit tests of the stderr log format, %m, line sanitising,
 * the length bound, and the exits of msg_fatal and msg_panic.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/test.h"

static char out[16384];

/* log_capture - run fn in a child with stderr in a file; returns status */
static int
log_capture(void (*fn)(void))
{
	char path[] = "/tmp/log_test.XXXXXX";
	int fd, st = 0;
	ssize_t n;
	pid_t pid;

	out[0] = '\0';
	if ((fd = mkstemp(path)) < 0)
		return -1;
	(void)unlink(path);
	if ((pid = fork()) < 0) {
		close(fd);
		return -1;
	}
	if (pid == 0) {
		dup2(fd, STDERR_FILENO);
		msg_init("herald/test", LOG_DEST_STDERR);
		fn();
		_exit(0);
	}
	if (waitpid(pid, &st, 0) != pid)
		st = -1;
	n = pread(fd, out, sizeof(out) - 1, 0);
	out[n > 0 ? n : 0] = '\0';
	close(fd);
	return st;
}

/* log_expect_prefix - "herald/test[PID]: " prefix and the rest */
static const char *
log_skip_prefix(const char *line)
{
	const char *p;

	if (strncmp(line, "herald/test[", 12) != 0)
		return NULL;
	if ((p = strstr(line, "]: ")) == NULL)
		return NULL;
	return p + 3;
}

static void
log_levels(void)
{
	msg_info("hello %d", 1);
	msg_warn("careful");
	msg_error("bad");
	errno = ENOENT;
	msg_warn("open x: %m");
	msg_debug("not shown");
}

/* test_levels - level words and %m */
static void
test_levels(void)
{
	const char *rest;
	char *line, *save = NULL;
	const char *want[] = {"hello 1", "warning: careful", "error: bad",
	    "warning: open x: No such file or directory"};
	int i = 0;

	T_EQ_INT(log_capture(log_levels), 0);
	for (line = strtok_r(out, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save), i++) {
		T_ASSERT(i < 4);
		rest = log_skip_prefix(line);
		T_ASSERT(rest != NULL);
		T_EQ_STR(rest, want[i]);
	}
	T_EQ_INT(i, 4);
}

static void
log_crlf(void)
{
	msg_warn("a\r\nb\nc");
}

/* test_one_line - CR and LF become spaces */
static void
test_one_line(void)
{
	const char *rest;
	size_t n;

	T_EQ_INT(log_capture(log_crlf), 0);
	n = strlen(out);
	T_ASSERT(n > 0 && out[n - 1] == '\n');
	out[n - 1] = '\0';
	T_ASSERT(strchr(out, '\n') == NULL);
	rest = log_skip_prefix(out);
	T_ASSERT(rest != NULL);
	T_EQ_STR(rest, "warning: a  b c");
}

static void
log_long(void)
{
	static char big[10000];

	memset(big, 'x', sizeof(big) - 1);
	msg_info("%s", big);
}

/* test_bound - a line is cut near 4096 bytes and still ends in LF */
static void
test_bound(void)
{
	size_t n;

	T_EQ_INT(log_capture(log_long), 0);
	n = strlen(out);
	T_ASSERT(n > 4000 && n < 4096 + 200);
	T_EQ_INT(out[n - 1], '\n');
	T_ASSERT(strchr(out, '\n') == out + n - 1);
}

static void
log_fatal(void)
{
	msg_fatal("cannot run: %s", "why");
}

static void
log_panic(void)
{
	msg_panic("bug");
}

/* test_fatal_panic - exit 1 vs abort */
static void
test_fatal_panic(void)
{
	int st;

	st = log_capture(log_fatal);
	T_ASSERT(WIFEXITED(st));
	T_EQ_INT(WEXITSTATUS(st), 1);
	T_ASSERT(strstr(out, "]: fatal: cannot run: why\n") != NULL);
	st = log_capture(log_panic);
	T_ASSERT(WIFSIGNALED(st));
	T_EQ_INT(WTERMSIG(st), SIGABRT);
	T_ASSERT(strstr(out, "]: panic: bug\n") != NULL);
}

/* test_errno_kept - logging does not change errno */
static void
test_errno_kept(void)
{
	int saved = dup(STDERR_FILENO), null = open("/dev/null", O_WRONLY);

	T_ASSERT(saved >= 0 && null >= 0);
	dup2(null, STDERR_FILENO);
	errno = EPERM;
	msg_info("x %m");
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(null);
	T_EQ_INT(errno, EPERM);
	T_EQ_STR(msg_ident(), "herald");
}

static const struct test_case cases[] = {
	{"levels and %m", test_levels},
	{"one line", test_one_line},
	{"length bound", test_bound},
	{"fatal and panic", test_fatal_panic},
	{"errno kept", test_errno_kept},
	{0},
};

int
main(void)
{
	return test_run(cases);
}
