/*
 * master_log - where herald's log lines go when master runs without -f.
 *
 * log_destination decides once, at start: "syslog", "file", or "auto"
 * (the default): syslog when its socket (/dev/log; $HERALD_SYSLOG_SOCKET
 * in tests) accepts a connection, else log_file. Its folder is made if
 * missing (0750); a log file that cannot be opened falls back to syslog
 * with a warning. The choice is printed
 * on stderr before master detaches, so "heraldctl start" shows it:
 *
 *	herald/master: logging to /var/log/herald/herald.log: no syslog at
 *	/dev/log
 *
 * With a file, master appends its own lines to it (msg_file_open), and
 * every service's stderr is the write end of one pipe whose read end
 * master watches: services log to stderr ($HERALD_LOG_DEST=stderr, see
 * log.h), each line in one write of at most PIPE_BUF bytes, so lines
 * never mix; master stamps each line it reads and appends it. Output a
 * service writes before it has read its configuration (a fatal error,
 * a library's complaint) lands there too. The pipe is non-blocking and
 * 1 MB large: when a slow disk holds master up and it fills, services
 * drop lines instead of waiting, and say how many in the next line that
 * gets through.
 *
 * SIGHUP (and so "heraldctl reload", also a refused one) and SIGUSR1
 * (nothing else) reopen the file at the same path, for logrotate. The
 * path and the destination change only at the next start.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/evloop.h"
#include "base/file.h"
#include "base/log.h"
#include "base/mem.h"
#include "mail/params.h"
#include "master.h"

#define MASTER_LOG_PIPE_SIZE (1024 * 1024)	/* lines in flight */
#define MASTER_LOG_READS 16	/* reads per wakeup, then other work */

static int master_log_rfd = -1;		/* the services' stderr, read end */
static int master_log_wfd = -1;		/* write end, for master_detach */
static struct log_relay master_log_relay;

/* master_log_syslog_path - the socket syslog(3) writes to */
static const char *
master_log_syslog_path(void)
{
	const char *env = getenv("HERALD_SYSLOG_SOCKET");

	return env != NULL && *env ? env : "/dev/log";
}

/* master_log_pipe - the services' stderr pipe; -1 with a warning */
static int
master_log_pipe(void)
{
	int fds[2];

	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) {
		msg_warn("log pipe: %m");
		return -1;
	}
	/* a smaller pipe only drops lines sooner */
	(void)fcntl(fds[1], F_SETPIPE_SZ, MASTER_LOG_PIPE_SIZE);
	master_log_rfd = fds[0];
	master_log_wfd = fds[1];
	return 0;
}

/* master_log_folder - make the log file's folder if it is missing (mode
 * 0750: a source install has no postinst); a failure shows at the open */
static void
master_log_folder(const char *path)
{
	struct buf why = BUF_INIT;
	char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');

	if (slash != NULL && slash != dir) {
		*slash = '\0';
		(void)file_mkdirs(dir, 0750, &why);
	}
	x_free(&dir);
	buf_free(&why);
}

/* master_log_say - the choice, on stderr (heraldctl start) and logged */
static void
master_log_say(const char *where, const char *why)
{
	fprintf(stderr, "herald/master: logging to %s%s%s\n", where,
	    *why ? ": " : "", why);
	fflush(stderr);
	msg_info("logging to %s%s%s", where, *why ? ": " : "", why);
}

/*
 * master_log_setup - pick the destination (master without -f, after the
 * configuration is read, before anything else is logged).
 */
void
master_log_setup(void)
{
	const char *sock = master_log_syslog_path();
	char why[512];

	if (master_foreground)
		return;
	if (strcmp(var_log_destination, "syslog") == 0 ||
	    (strcmp(var_log_destination, "auto") == 0 &&
	    msg_syslog_available(sock))) {
		(void)unsetenv(LOG_DEST_ENV);
		master_log_say("syslog", "facility mail");
		return;
	}
	if (strcmp(var_log_destination, "file") == 0)
		snprintf(why, sizeof(why), "log_destination = file");
	else
		snprintf(why, sizeof(why), "no syslog at %s", sock);
	if (*var_log_file == '\0') {
		fprintf(stderr, "herald/master: warning: %s and log_file is "
		    "empty: log lines are lost\n", why);
		(void)unsetenv(LOG_DEST_ENV);
		return;
	}
	master_log_folder(var_log_file);
	if (msg_file_open(var_log_file) < 0) {
		fprintf(stderr, "herald/master: warning: %s, and log_file %s "
		    "cannot be opened: %s; logging to syslog\n", why,
		    var_log_file, strerror(errno));
		(void)unsetenv(LOG_DEST_ENV);
		return;
	}
	msg_init(msg_ident(), LOG_DEST_FILE);
	if (master_log_pipe() == 0 && setenv(LOG_DEST_ENV, "stderr", 1) < 0)
		msg_warn("setenv %s: %m", LOG_DEST_ENV);
	master_log_say(var_log_file, why);
}

/* master_log_stderr - what master's stderr becomes when it detaches: the
 * pipe's write end, or -1 (/dev/null) */
int
master_log_stderr(void)
{
	return master_log_wfd;
}

/* master_log_read - services' lines into the log file */
static void
master_log_read(struct evloop *loop, int fd, unsigned events, void *ctx)
{
	char data[65536];
	ssize_t n;

	(void)events;
	(void)ctx;
	for (int i = 0; i < MASTER_LOG_READS; i++) {
		n = read(fd, data, sizeof(data));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			/* nobody can write any more: cannot happen while
			 * master holds the write end as its stderr */
			if (n < 0)
				msg_warn("read log pipe: %m");
			evloop_del_fd(loop, fd);
			return;
		}
		msg_relay_feed(&master_log_relay, data, (size_t)n);
	}
}

/* master_log_watch - relay the pipe from the event loop */
void
master_log_watch(struct evloop *loop)
{
	if (master_log_rfd < 0)
		return;
	if (evloop_add_fd(loop, master_log_rfd, EV_READ, master_log_read,
	    NULL) < 0)
		msg_warn("watch log pipe: %m");
}

/* master_log_reopen - the same path again (logrotate renamed it) */
void
master_log_reopen(void)
{
	if (msg_file_path() == NULL)
		return;
	/* the path's copy is replaced when the reopen works: ask again */
	if (msg_file_reopen() < 0)
		msg_warn("reopen log file %s: %m; still writing the old one",
		    msg_file_path());
	else
		msg_info("reopened log file %s", msg_file_path());
}

/* master_log_finish - at exit: what the services wrote last */
void
master_log_finish(void)
{
	char data[65536];
	ssize_t n;

	if (master_log_rfd < 0)
		return;
	/* bounded: the pipe holds at most MASTER_LOG_PIPE_SIZE */
	for (int i = 0; i < 64; i++) {
		n = read(master_log_rfd, data, sizeof(data));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		msg_relay_feed(&master_log_relay, data, (size_t)n);
	}
	msg_relay_flush(&master_log_relay);
}
