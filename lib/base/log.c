/*
 * log - one line per event to stderr ("ident[pid]: warning: text") or to
 * syslog (facility mail). Lines are bounded and never contain CR or LF,
 * so a peer's text cannot forge or split a log line.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "base/log.h"

#define LOG_LINE_MAX 4096

int msg_verbose;

static char log_ident[128] = "herald";
static enum log_dest log_dest = LOG_DEST_STDERR;
static int log_report_fd = -1;		/* msg_report_attach */

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

static void msg_vlog(int, const char *, int, const char *, va_list)
    __attribute__((format(printf, 4, 0)));

/* msg_vlog - format one line and send it; errno is the caller's */
static void
msg_vlog(int prio, const char *level, int saved_errno, const char *fmt,
    va_list ap)
{
	char text[LOG_LINE_MAX];
	char line[LOG_LINE_MAX + 200];
	int n;

	errno = saved_errno;
	n = vsnprintf(text, sizeof(text), fmt, ap);
	if (n < 0)
		snprintf(text, sizeof(text), "(bad log format \"%s\")", fmt);
	for (char *p = text; *p; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	if (log_dest == LOG_DEST_SYSLOG) {
		syslog(prio, "%s%s%s", level ? level : "", level ? ": " : "",
		    text);
	} else {
		n = snprintf(line, sizeof(line), "%s[%ld]: %s%s%s\n", log_ident,
		    (long)getpid(), level ? level : "", level ? ": " : "", text);
		if (n < 0)
			return;
		if ((size_t)n >= sizeof(line)) {
			n = sizeof(line) - 1;
			line[n - 1] = '\n';
		}
		/* one write per line, so concurrent processes do not mix */
		for (char *p = line; n > 0;) {
			ssize_t w = write(STDERR_FILENO, p, (size_t)n);

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				break;
			p += w;
			n -= (int)w;
		}
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
