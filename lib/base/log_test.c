/*
 * log_test - unit tests of the stderr log format, %m, line sanitising,
 * the length bound, the exits of msg_fatal and msg_panic, timestamps, the
 * log file (reopened after a rename), the relay that copies several
 * writers' lines into it without mixing them, and lines dropped rather
 * than waited for when a non-blocking stderr pipe is full.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
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
log_ctl(void)
{
	msg_info("a\x1b]0;t\x07" "b\x1b[2Jc\x08" "d\te\x7f");
}

/* test_control_bytes - ESC, BEL, BS, TAB and DEL become spaces: a
 * peer's text (a remote server's reply) cannot drive a terminal */
static void
test_control_bytes(void)
{
	const char *rest;
	size_t n;

	T_EQ_INT(log_capture(log_ctl), 0);
	n = strlen(out);
	T_ASSERT(n > 0 && out[n - 1] == '\n');
	out[n - 1] = '\0';
	rest = log_skip_prefix(out);
	T_ASSERT(rest != NULL);
	T_EQ_STR(rest, "a ]0;t b [2Jc d e ");
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


/* log_slurp - a whole file into out; its length, or -1 */
static ssize_t
log_slurp(const char *path)
{
	ssize_t n;
	int fd;

	out[0] = '\0';
	if ((fd = open(path, O_RDONLY)) < 0)
		return -1;
	n = read(fd, out, sizeof(out) - 1);
	(void)close(fd);
	out[n > 0 ? n : 0] = '\0';
	return n;
}

/* log_is_stamp - "YYYY-MM-DDTHH:MM:SS.mmm+HH:MM " at p */
static bool
log_is_stamp(const char *p)
{
	const char *form = "dddd-dd-ddTdd:dd:dd.ddd+dd:dd ";

	for (; *form; form++, p++) {
		if (*form == 'd' ? (*p < '0' || *p > '9') :
		    *form == '+' ? (*p != '+' && *p != '-') : *p != *form)
			return false;
	}
	return true;
}

/* test_stamp_format - RFC 3339 with milliseconds and the UTC offset */
static void
test_stamp_format(void)
{
	struct timespec ts = {1796562301, 123456789};	/* 2026-12-06 */
	char text[LOG_STAMP_SIZE];
	size_t n;

	T_ASSERT(setenv("TZ", "UTC", 1) == 0);
	tzset();
	n = msg_stamp_format(text, sizeof(text), &ts);
	T_EQ_STR(text, "2026-12-06T13:05:01.123+00:00");
	T_EQ_INT(n, strlen(text));
	T_ASSERT(setenv("TZ", "XYZ-5:30", 1) == 0);
	tzset();
	(void)msg_stamp_format(text, sizeof(text), &ts);
	T_EQ_STR(text, "2026-12-06T18:35:01.123+05:30");
	T_ASSERT(setenv("TZ", "ABC3", 1) == 0);
	tzset();
	(void)msg_stamp_format(text, sizeof(text), &ts);
	T_EQ_STR(text, "2026-12-06T10:05:01.123-03:00");
	T_EQ_INT(msg_stamp_format(text, 10, &ts), 0);
	T_ASSERT(unsetenv("TZ") == 0);
	tzset();
}

static void
log_stamped(void)
{
	msg_stamp(true);
	msg_warn("stamped %d", 1);
}

/* test_stamped_stderr - msg_stamp(true) puts the time first */
static void
test_stamped_stderr(void)
{
	T_EQ_INT(log_capture(log_stamped), 0);
	T_ASSERT(log_is_stamp(out));
	T_ASSERT(log_skip_prefix(out + 30) != NULL);
	T_EQ_STR(log_skip_prefix(out + 30), "warning: stamped 1\n");
}

/* test_journal_stream - no stamps when journald reads stderr */
static void
test_journal_stream(void)
{
	char env[64];
	struct stat st;

	T_ASSERT(fstat(STDERR_FILENO, &st) == 0);
	T_ASSERT(unsetenv("JOURNAL_STREAM") == 0);
	T_ASSERT(msg_stamp_wanted());
	snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
	    (unsigned long long)st.st_ino);
	T_ASSERT(setenv("JOURNAL_STREAM", env, 1) == 0);
	T_ASSERT(!msg_stamp_wanted());
	/* another stream (stderr redirected away from the journal) */
	snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
	    (unsigned long long)st.st_ino + 1);
	T_ASSERT(setenv("JOURNAL_STREAM", env, 1) == 0);
	T_ASSERT(msg_stamp_wanted());
	T_ASSERT(setenv("JOURNAL_STREAM", "junk", 1) == 0);
	T_ASSERT(msg_stamp_wanted());
	T_ASSERT(unsetenv("JOURNAL_STREAM") == 0);
}

/* test_syslog_available - a socket that is there, and one that is not */
static void
test_syslog_available(void)
{
	char dir[] = "/tmp/log_test.XXXXXX";
	char path[128];
	struct sockaddr_un sun;
	int fd;

	T_ASSERT(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/log", dir);
	T_ASSERT(!msg_syslog_available(path));
	fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	T_ASSERT(fd >= 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path));
	T_ASSERT(bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0);
	T_ASSERT(msg_syslog_available(path));
	(void)close(fd);
	(void)unlink(path);
	(void)rmdir(dir);
}

/* test_file_reopen - LOG_DEST_FILE: stamped lines; after a rename and a
 * reopen, new lines go to a new file at the path */
static void
test_file_reopen(void)
{
	char dir[] = "/tmp/log_test.XXXXXX";
	char path[128], old[128];
	const char *rest;
	struct stat st;

	T_ASSERT(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/herald.log", dir);
	snprintf(old, sizeof(old), "%s/herald.log.1", dir);
	(void)umask(022);
	T_ASSERT(msg_file_open(path) == 0);
	T_EQ_STR(msg_file_path(), path);
	T_ASSERT(stat(path, &st) == 0);
	T_EQ_INT(st.st_mode & 0777, 0640);
	msg_init("herald/test", LOG_DEST_FILE);
	msg_warn("first");
	T_ASSERT(rename(path, old) == 0);
	msg_info("second, still the old file");
	T_ASSERT(msg_file_reopen() == 0);
	msg_info("third");
	msg_file_write("herald/smtpd[7]: relayed", 24);
	msg_init("herald", LOG_DEST_STDERR);
	T_ASSERT(log_slurp(old) > 0);
	T_ASSERT(log_is_stamp(out));
	rest = log_skip_prefix(out + 30);
	T_ASSERT(rest != NULL);
	T_ASSERT(strncmp(rest, "warning: first\n", 15) == 0);
	T_ASSERT(strstr(out, "]: second, still the old file\n") != NULL);
	T_ASSERT(strstr(out, "third") == NULL);
	T_ASSERT(log_slurp(path) > 0);
	T_ASSERT(log_is_stamp(out));
	T_ASSERT(strncmp(log_skip_prefix(out + 30), "third\n", 6) == 0);
	T_ASSERT(strstr(out, "\n") != NULL);
	T_ASSERT(log_is_stamp(strchr(out, '\n') + 1));
	T_EQ_STR(strchr(out, '\n') + 31, "herald/smtpd[7]: relayed\n");
	(void)unlink(path);
	(void)unlink(old);
	(void)rmdir(dir);
}

/* test_relay_lines - partial lines across reads, CR, a line too long */
static void
test_relay_lines(void)
{
	static struct log_relay r;
	static char big[LOG_RELAY_LINE + 500];
	char dir[] = "/tmp/log_test.XXXXXX";
	char path[128];
	char *line, *save = NULL;
	int n = 0;

	T_ASSERT(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/relay.log", dir);
	T_ASSERT(msg_file_open(path) == 0);
	msg_relay_feed(&r, "one\ntw", 6);
	msg_relay_feed(&r, "o\r\nthr", 6);
	memset(big, 'x', sizeof(big));
	big[sizeof(big) - 1] = '\n';
	msg_relay_feed(&r, "ee\n", 3);
	msg_relay_feed(&r, big, sizeof(big));
	msg_relay_feed(&r, "tail", 4);
	msg_relay_flush(&r);
	T_ASSERT(log_slurp(path) > 0);
	for (line = strtok_r(out, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save), n++) {
		T_ASSERT(log_is_stamp(line));
		if (n == 0)
			T_EQ_STR(line + 30, "one");
		else if (n == 1)
			T_EQ_STR(line + 30, "two ");
		else if (n == 2)
			T_EQ_STR(line + 30, "three");
		else if (n == 3)
			T_ASSERT(strspn(line + 30, "x") == strlen(line + 30) &&
			    strlen(line) == LOG_WRITE_MAX - 1);
		else if (n == 4)
			T_EQ_STR(line + 30, "tail");
	}
	T_EQ_INT(n, 5);
	(void)unlink(path);
	(void)rmdir(dir);
}

#define LOG_WRITERS 4
#define LOG_WRITER_LINES 300
#define LOG_WRITER_TEXT 3000

/* log_writer - one of several processes logging long lines at once */
static void
log_writer(int i)
{
	static char text[LOG_WRITER_TEXT + 1];

	memset(text, 'a' + i, LOG_WRITER_TEXT);
	for (int j = 0; j < LOG_WRITER_LINES; j++)
		msg_info("%s", text);
}

/* test_writers - several processes on one pipe, relayed into the file:
 * every line whole, none lost (a blocking pipe drops nothing) */
static void
test_writers(void)
{
	static struct log_relay r;
	static char data[65536];
	char dir[] = "/tmp/log_test.XXXXXX";
	char path[128];
	int fds[2], counts[LOG_WRITERS] = {0}, lines = 0, st;
	FILE *f;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	T_ASSERT(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/relay.log", dir);
	T_ASSERT(msg_file_open(path) == 0);
	T_ASSERT(pipe(fds) == 0);
	for (int i = 0; i < LOG_WRITERS; i++) {
		pid_t pid = fork();

		T_ASSERT(pid >= 0);
		if (pid == 0) {
			(void)close(fds[0]);
			if (dup2(fds[1], STDERR_FILENO) < 0)
				_exit(1);
			msg_init("herald/test", LOG_DEST_STDERR);
			log_writer(i);
			_exit(0);
		}
	}
	(void)close(fds[1]);
	while ((n = read(fds[0], data, sizeof(data))) > 0)
		msg_relay_feed(&r, data, (size_t)n);
	msg_relay_flush(&r);
	(void)close(fds[0]);
	for (int i = 0; i < LOG_WRITERS; i++) {
		T_ASSERT(wait(&st) > 0);
		T_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	T_ASSERT((f = fopen(path, "r")) != NULL);
	while ((n = getline(&line, &cap, f)) > 0) {
		const char *rest = log_is_stamp(line) ?
		    log_skip_prefix(line + 30) : NULL;
		int c;

		lines++;
		if (rest == NULL || strlen(rest) != LOG_WRITER_TEXT + 1)
			break;
		c = rest[0] - 'a';
		if (c < 0 || c >= LOG_WRITERS ||
		    strspn(rest, (char[]){rest[0], 0}) != LOG_WRITER_TEXT)
			break;
		counts[c]++;
	}
	free(line);
	(void)fclose(f);
	for (int i = 0; i < LOG_WRITERS; i++)
		T_EQ_INT(counts[i], LOG_WRITER_LINES);
	T_EQ_INT(lines, LOG_WRITERS * LOG_WRITER_LINES);
	(void)unlink(path);
	(void)rmdir(dir);
}

static void
log_full_pipe(void)
{
	int fds[2], drained = 0;
	char sink[65536];
	ssize_t n;

	/* stderr: a small non-blocking pipe nobody reads yet */
	if (pipe2(fds, O_NONBLOCK) < 0 || dup2(fds[1], STDERR_FILENO) < 0)
		_exit(2);
	(void)fcntl(fds[1], F_SETPIPE_SZ, 4096);
	for (int i = 0; i < 100; i++)
		msg_info("line %d of a writer whose reader is slow", i);
	if (msg_dropped() == 0)
		_exit(3);
	while ((n = read(fds[0], sink, sizeof(sink))) > 0)
		drained += (int)n;
	if (drained <= 0)
		_exit(4);
	msg_info("after the drain");
	n = read(fds[0], sink, sizeof(sink) - 1);
	if (n <= 0)
		_exit(5);
	sink[n] = '\0';
	/* the count comes first, then the line */
	if (strstr(sink, "]: warning: ") == NULL ||
	    strstr(sink, " log lines dropped: the log reader was too "
	    "slow\n") == NULL || strstr(sink, "]: after the drain\n") == NULL)
		_exit(6);
	_exit(0);
}

/* test_full_pipe - a full non-blocking stderr never blocks: lines are
 * dropped, counted, and the count told when there is room again */
static void
test_full_pipe(void)
{
	int st = log_capture(log_full_pipe);

	T_ASSERT(WIFEXITED(st));
	T_EQ_INT(WEXITSTATUS(st), 0);
}

static const struct test_case cases[] = {
	{"levels and %m", test_levels},
	{"one line", test_one_line},
	{"control bytes", test_control_bytes},
	{"length bound", test_bound},
	{"fatal and panic", test_fatal_panic},
	{"errno kept", test_errno_kept},
	{"timestamp format", test_stamp_format},
	{"stamped stderr", test_stamped_stderr},
	{"journald stream", test_journal_stream},
	{"syslog socket probe", test_syslog_available},
	{"log file and reopen", test_file_reopen},
	{"relay cuts lines", test_relay_lines},
	{"several writers", test_writers},
	{"full pipe drops", test_full_pipe},
	{0},
};

int
main(void)
{
	return test_run(cases);
}
