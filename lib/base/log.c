/*
 * log - one line per event to stderr ("ident[pid]: warning: text", with a
 * timestamp in front in a foreground terminal), to syslog (facility mail)
 * or to a log file, and the relay that copies services' stderr lines into
 * that file. Lines are bounded, leave in one write() and never contain CR,
 * LF or another control byte (each becomes a space), so a peer's text
 * cannot forge or split a log line, nor drive a terminal that shows it.
 *
 * Why a service's fatal line goes to master twice, once in the log (for
 * whatever the log goes to) and once on the report pipe
 * ($HERALD_REPORT_FD, msg_report_attach, read by master_service.c when
 * it reaps the child, shown by "heraldctl status" as "last error"): the
 * stderr relay cannot carry the report, for four reasons.
 *  1. The relay exists only when master logs to a file (log_destination
 *     = file, or auto without a syslog socket: master_log.c). With
 *     syslog (auto picks it whenever /dev/log answers, the usual case on
 *     a Debian host) a service writes its lines to /dev/log and master
 *     never sees them; under -f (tests,
 *     make demo, a systemd unit with journald) stderr is the terminal or
 *     the journal, not master. Making the relay carry every line in those
 *     modes too would route all logging of all services through master.
 *  2. It is one pipe shared by every service, read as a byte stream:
 *     nothing in it says which child wrote a line except the text, which
 *     a service writes itself. A pipe per child is what lets master know,
 *     without trusting the text, that the line is that child's.
 *  3. It is lossy by design: non-blocking, and a service whose write
 *     finds it full drops the line (so a slow disk never stalls the
 *     mail). The fatal line of a dying service is exactly the one that
 *     must not be dropped when another service floods the log.
 *  4. Timing: master reads the relay whenever its loop gets to it, and
 *     the child's death may be reaped first; the report pipe is read to
 *     its end at the reaping, when the dead child can write no more.
 * The report pipe costs one descriptor per child and one write at exit;
 * what master keeps of it is bounded and cleaned of control characters
 * (test_reload.py: test_hostile_report_is_bounded).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"

#define LOG_LINE_MAX 4096
#define LOG_SYSLOG_PATH "/dev/log"

int msg_verbose;

static char log_ident[128] = "herald";
static enum log_dest log_dest = LOG_DEST_STDERR;
static int log_report_fd = -1;		/* msg_report_attach */
static bool log_stamped;		/* stderr lines get a timestamp */
static int log_file_fd = -1;		/* LOG_DEST_FILE and the relay */
static char *log_file_name;		/* its path, for reopening */
static unsigned long long log_dropped;	/* lines stderr had no room for */
static unsigned long long log_dropped_told;	/* of those, reported */

/* msg_init - set the ident (copied) and destination */
void
msg_init(const char *ident, enum log_dest dest)
{
	size_t n = strlen(ident);

	if (log_dest == LOG_DEST_SYSLOG)
		closelog();
	if (n >= sizeof(log_ident))
		n = sizeof(log_ident) - 1;
	memcpy(log_ident, ident, n);
	log_ident[n] = '\0';
	log_dest = dest;
	if (dest == LOG_DEST_SYSLOG)
		openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

/* msg_ident - the ident given to msg_init ("herald" before) */
const char *
msg_ident(void)
{
	return log_ident;
}

/* msg_report_attach - take the report descriptor from the environment */
void
msg_report_attach(void)
{
	const char *env = getenv(LOG_REPORT_FD_ENV);
	char *end;
	long fd;

	if (env == NULL)
		return;
	errno = 0;
	fd = strtol(env, &end, 10);
	if (errno == 0 && end != env && *end == '\0' && fd > 2 &&
	    fd < INT_MAX && fcntl((int)fd, F_SETFD, FD_CLOEXEC) == 0)
		log_report_fd = (int)fd;
	(void)unsetenv(LOG_REPORT_FD_ENV);
}

static void msg_report(const char *, int, const char *, va_list)
    __attribute__((format(printf, 3, 0)));

/* msg_report - a fatal or panic line to the report descriptor, if any */
static void
msg_report(const char *level, int saved_errno, const char *fmt, va_list ap)
{
	char text[LOG_LINE_MAX];
	size_t len;
	int n;

	if (log_report_fd < 0)
		return;
	errno = saved_errno;
	n = snprintf(text, sizeof(text), "%s: ", level);
	if (n < 0 || vsnprintf(text + n, sizeof(text) - (size_t)n - 1, fmt,
	    ap) < 0)
		return;
	for (char *p = text; *p; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	len = strlen(text);
	text[len++] = '\n';
	/* one short write to a pipe: whatever happens, we are exiting */
	if (write(log_report_fd, text, len) < 0)
		log_report_fd = -1;
}

/* msg_stamp - on: stderr lines begin with a timestamp */
void
msg_stamp(bool on)
{
	log_stamped = on;
}

/* msg_stamp_wanted - false when journald reads stderr */
bool
msg_stamp_wanted(void)
{
	const char *env = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	char end;

	if (env == NULL || sscanf(env, "%llu:%llu%c", &dev, &ino, &end) != 2)
		return true;
	if (fstat(STDERR_FILENO, &st) < 0)
		return true;
	return !((unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino);
}

/* msg_stamp_format - RFC 3339 local time with milliseconds */
size_t
msg_stamp_format(char *out, size_t size, const struct timespec *ts)
{
	struct tm tm;
	long off;
	size_t n;
	int m;

	if (size < LOG_STAMP_SIZE || localtime_r(&ts->tv_sec, &tm) == NULL) {
		if (size > 0)
			out[0] = '\0';
		return 0;
	}
	n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
	off = tm.tm_gmtoff / 60;
	m = snprintf(out + n, size - n, ".%03ld%c%02ld:%02ld",
	    (long)(ts->tv_nsec / 1000000), off < 0 ? '-' : '+',
	    (off < 0 ? -off : off) / 60, (off < 0 ? -off : off) % 60);
	if (m < 0 || (size_t)m >= size - n) {
		out[n] = '\0';
		return n;
	}
	return n + (size_t)m;
}

/* log_stamp_now - the current time, stamped, with a space after */
static size_t
log_stamp_now(char *out, size_t size)
{
	struct timespec ts;
	size_t n;

	if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
		return 0;
	n = msg_stamp_format(out, size, &ts);
	if (n > 0 && n + 1 < size) {
		out[n++] = ' ';
		out[n] = '\0';
	}
	return n;
}

/* msg_syslog_available - does the syslog socket accept a connection */
bool
msg_syslog_available(const char *path)
{
	struct sockaddr_un sun;
	int fd, ok;

	if (path == NULL)
		path = LOG_SYSLOG_PATH;
	if (strlen(path) >= sizeof(sun.sun_path))
		return false;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path));
	/* syslog(3) tries a datagram socket, then a stream one */
	for (int i = 0; i < 2; i++) {
		fd = socket(AF_UNIX, (i == 0 ? SOCK_DGRAM : SOCK_STREAM) |
		    SOCK_CLOEXEC, 0);
		if (fd < 0)
			return false;
		ok = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
		(void)close(fd);
		if (ok)
			return true;
		if (errno != EPROTOTYPE)
			return false;
	}
	return false;
}

/*
 * log_write - one line in one write(); false when it did not go out. A
 * full non-blocking pipe (EAGAIN) drops the line: a log reader must
 * never hold up the writer.
 */
static bool
log_write(int fd, const char *line, size_t n)
{
	ssize_t w;

	for (;;) {
		w = write(fd, line, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		if ((size_t)w == n)
			return true;
		/* a short write (a regular file, disk full): finish it */
		line += w;
		n -= (size_t)w;
	}
}

/* msg_file_open - open path as the log file */
int
msg_file_open(const char *path)
{
	char *copy;
	int fd;

	if ((fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC |
	    O_NOCTTY, 0640)) < 0)
		return -1;
	if ((copy = strdup(path)) == NULL) {
		(void)close(fd);
		errno = ENOMEM;
		return -1;
	}
	if (log_file_fd >= 0)
		(void)close(log_file_fd);
	free(log_file_name);
	log_file_fd = fd;
	log_file_name = copy;
	return 0;
}

/* msg_file_reopen - open the same path again; the old file on failure */
int
msg_file_reopen(void)
{
	char *path;
	int rc;

	if (log_file_name == NULL) {
		errno = ENOENT;
		return -1;
	}
	if ((path = strdup(log_file_name)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	rc = msg_file_open(path);
	free(path);
	return rc;
}

/* msg_file_path - the open log file, or NULL */
const char *
msg_file_path(void)
{
	return log_file_fd >= 0 ? log_file_name : NULL;
}

/* msg_file_write - append another process's line, stamped */
void
msg_file_write(const char *text, size_t len)
{
	char line[LOG_WRITE_MAX];
	size_t n;

	if (log_file_fd < 0)
		return;
	n = log_stamp_now(line, sizeof(line));
	if (len > sizeof(line) - n - 1)
		len = sizeof(line) - n - 1;
	memcpy(line + n, text, len);
	n += len;
	/* the bytes come from a less privileged process: one line, and no
	 * control bytes (NUL, terminal escapes) in a root-owned log */
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)line[i] < ' ' || line[i] == 0x7f)
			line[i] = ' ';
	line[n++] = '\n';
	(void)log_write(log_file_fd, line, n);
}

/* msg_dropped - lines dropped so far because stderr was full */
unsigned long long
msg_dropped(void)
{
	return log_dropped;
}

/* msg_relay_feed - cut data into lines for msg_file_write */
void
msg_relay_feed(struct log_relay *r, const char *data, size_t len)
{
	const char *nl;
	size_t take;

	while (len > 0) {
		nl = memchr(data, '\n', len);
		take = nl != NULL ? (size_t)(nl - data) : len;
		if (!r->cut) {
			size_t room = sizeof(r->part) - r->len;

			if (take > room) {
				/* too long: write what fits, drop the rest */
				memcpy(r->part + r->len, data, room);
				r->len += room;
				msg_file_write(r->part, r->len);
				r->len = 0;
				r->cut = true;
			} else {
				memcpy(r->part + r->len, data, take);
				r->len += take;
			}
		}
		if (nl == NULL)
			return;
		if (!r->cut)
			msg_file_write(r->part, r->len);
		r->len = 0;
		r->cut = false;
		data = nl + 1;
		len -= take + 1;
	}
}

/* msg_relay_flush - write an unfinished last line */
void
msg_relay_flush(struct log_relay *r)
{
	if (r->len > 0 && !r->cut)
		msg_file_write(r->part, r->len);
	r->len = 0;
	r->cut = false;
}

/*
 * log_format - "[stamp ]ident[pid]: [level: ]text\n" into line, cut to
 * size; the length.
 */
static size_t
log_format(char *line, size_t size, bool stamp, const char *level,
    const char *text)
{
	size_t n = 0;
	int m;

	if (stamp)
		n = log_stamp_now(line, size);
	m = snprintf(line + n, size - n, "%s[%ld]: %s%s%s\n", log_ident,
	    (long)getpid(), level ? level : "", level ? ": " : "", text);
	if (m < 0)
		return 0;
	if ((size_t)m >= size - n) {
		line[size - 2] = '\n';
		return size - 1;
	}
	return n + (size_t)m;
}

/* log_emit - one formatted line to fd; a dropped line is counted, and
 * the count is told before the next line that gets through. false when
 * the line did not go out for another reason (errno) */
static bool
log_emit(int fd, bool stamp, const char *level, const char *text)
{
	char line[LOG_WRITE_MAX + 1];
	char note[128];
	size_t n;

	if (log_dropped > log_dropped_told) {
		snprintf(note, sizeof(note), "%llu log line%s dropped: the log "
		    "reader was too slow", log_dropped - log_dropped_told,
		    log_dropped - log_dropped_told == 1 ? "" : "s");
		n = log_format(line, sizeof(line), stamp, "warning", note);
		if (n > 0 && !log_write(fd, line, n)) {
			if (errno == EAGAIN)
				log_dropped++;
			return errno == EAGAIN;
		}
		log_dropped_told = log_dropped;
	}
	n = log_format(line, sizeof(line), stamp, level, text);
	if (n > 0 && !log_write(fd, line, n)) {
		if (errno == EAGAIN)
			log_dropped++;
		return errno == EAGAIN;
	}
	return true;
}

static void msg_vlog(int, const char *, int, const char *, va_list)
    __attribute__((format(printf, 4, 0)));

/* msg_vlog - format one line and send it; errno is the caller's */
static void
msg_vlog(int prio, const char *level, int saved_errno, const char *fmt,
    va_list ap)
{
	char text[LOG_LINE_MAX];
	int n;

	errno = saved_errno;
	n = vsnprintf(text, sizeof(text), fmt, ap);
	if (n < 0)
		snprintf(text, sizeof(text), "(bad log format \"%s\")", fmt);
	/* one line, and none of a peer's control bytes (a remote server's
	 * reply, a client's text): CR and LF would split it, ESC and BEL
	 * drive the terminal or log viewer of whoever reads it */
	for (char *p = text; *p; p++)
		if ((unsigned char)*p < ' ' || *p == 0x7f)
			*p = ' ';
	if (log_dest == LOG_DEST_SYSLOG)
		syslog(prio, "%s%s%s", level ? level : "", level ? ": " : "",
		    text);
	else if (log_dest == LOG_DEST_FILE && log_file_fd >= 0) {
		/* a fork child of master that closed its descriptors before
		 * exec: its stderr is master's pipe */
		if (!log_emit(log_file_fd, true, level, text) &&
		    errno == EBADF)
			(void)log_emit(STDERR_FILENO, log_stamped, level, text);
	} else {
		(void)log_emit(STDERR_FILENO, log_stamped, level, text);
	}
	errno = saved_errno;
}

/* msg_debug - verbose-only detail */
void
msg_debug(const char *fmt, ...)
{
	int saved_errno = errno;
	va_list ap;

	if (msg_verbose <= 0)
		return;
	va_start(ap, fmt);
	msg_vlog(LOG_DEBUG, NULL, saved_errno, fmt, ap);
	va_end(ap);
}

/* msg_info - an ordinary event */
void
msg_info(const char *fmt, ...)
{
	int saved_errno = errno;
	va_list ap;

	va_start(ap, fmt);
	msg_vlog(LOG_INFO, NULL, saved_errno, fmt, ap);
	va_end(ap);
}

/* msg_warn - something went wrong, we carry on */
void
msg_warn(const char *fmt, ...)
{
	int saved_errno = errno;
	va_list ap;

	va_start(ap, fmt);
	msg_vlog(LOG_WARNING, "warning", saved_errno, fmt, ap);
	va_end(ap);
}

/* msg_error - an error, we carry on */
void
msg_error(const char *fmt, ...)
{
	int saved_errno = errno;
	va_list ap;

	va_start(ap, fmt);
	msg_vlog(LOG_ERR, "error", saved_errno, fmt, ap);
	va_end(ap);
}

/* msg_fatal - log and exit(1): the process cannot run */
void
msg_fatal(const char *fmt, ...)
{
	int saved_errno = errno;
	va_list ap;

	va_start(ap, fmt);
	msg_report("fatal", saved_errno, fmt, ap);
	va_end(ap);
	va_start(ap, fmt);
	msg_vlog(LOG_CRIT, "fatal", saved_errno, fmt, ap);
	va_end(ap);
	exit(1);
}

/* msg_panic - log and abort(): a bug */
void
msg_panic(const char *fmt, ...)
{
	int saved_errno = errno;
	va_list ap;

	va_start(ap, fmt);
	msg_report("panic", saved_errno, fmt, ap);
	va_end(ap);
	va_start(ap, fmt);
	msg_vlog(LOG_CRIT, "panic", saved_errno, fmt, ap);
	va_end(ap);
	abort();
}
