/*
 * log - one line per event, to syslog (facility mail), stderr or a file.
 *
 * msg_init() names the program ("herald/smtpd"). With LOG_DEST_STDERR
 * lines go to stderr as "herald/smtpd[pid]: warning: text", preceded by
 * an RFC 3339 timestamp with milliseconds after msg_stamp(true) (a
 * foreground terminal; not when journald reads stderr, which stamps
 * lines itself: msg_stamp_wanted). With LOG_DEST_SYSLOG they go to
 * syslog with the same text; with LOG_DEST_FILE, stamped, to the file
 * msg_file_open() opened (master's own lines when there is no syslog).
 * Formats accept %m (errno).
 *
 * Every line leaves in one write() of at most LOG_WRITE_MAX (PIPE_BUF)
 * bytes, so lines of several processes sharing a pipe or an O_APPEND file
 * never mix. When stderr is a non-blocking pipe that is full, the line is
 * dropped rather than waited for, and counted; the next line that gets
 * through is preceded by "warning: N log lines dropped". So a slow log
 * reader never stops an event loop.
 *
 * The log relay (msg_relay_*) is the reading side of such a pipe: it cuts
 * what services write into lines (bounded) and appends each, stamped, to
 * the log file.
 *
 * The three kinds of failure (STYLE.md): msg_panic for broken invariants
 * (abort, core dump), msg_fatal for "cannot run" (exit 1, master restarts
 * with backoff), msg_warn/msg_error for everything a peer caused.
 */
#ifndef BASE_LOG_H
#define BASE_LOG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

enum log_dest {
	LOG_DEST_STDERR,	/* foreground, tests, master's pipe */
	LOG_DEST_SYSLOG,	/* daemons under master without -f */
	LOG_DEST_FILE,		/* master without syslog: msg_file_open */
};

/* "stderr" here: a service's stderr is a pipe to a master that appends
 * its lines to the log file (master_log.c), so it logs to stderr */
#define LOG_DEST_ENV "HERALD_LOG_DEST"

/* longest line written at once: atomic on a pipe */
#define LOG_WRITE_MAX PIPE_BUF
/* "2026-12-06T13:05:01.123+01:00" and a NUL */
#define LOG_STAMP_SIZE 32

/* msg_verbose - debug level; msg_debug prints only when > 0 */
extern int msg_verbose;

/* msg_init - set the ident (copied) and destination; call first in main */
void msg_init(const char *ident, enum log_dest dest);
/*
 * msg_report_attach - take the descriptor named by $HERALD_REPORT_FD, if
 * set (a supervisor's pipe): from then on msg_fatal and msg_panic also
 * write their text there, one line, so master can show a service's last
 * fatal error in "heraldctl status" whatever the log goes to (log.c says
 * why the stderr relay to master cannot carry it). The variable is
 * removed and the descriptor made close-on-exec.
 */
#define LOG_REPORT_FD_ENV "HERALD_REPORT_FD"
void msg_report_attach(void);
/* msg_ident - the ident given to msg_init ("herald" before) */
const char *msg_ident(void);

/* msg_stamp - on: LOG_DEST_STDERR lines begin with a timestamp */
void msg_stamp(bool on);
/* msg_stamp_wanted - false when stderr is journald's stream (its device
 * and inode are in $JOURNAL_STREAM): journald stamps lines itself */
bool msg_stamp_wanted(void);
/* msg_stamp_format - ts as RFC 3339 local time with milliseconds into
 * out (LOG_STAMP_SIZE bytes); the length */
size_t msg_stamp_format(char *out, size_t size, const struct timespec *ts);

/* msg_syslog_available - true when the syslog socket (/dev/log, or path)
 * accepts a connection: something reads what syslog() sends */
bool msg_syslog_available(const char *path);

/* msg_file_open - open path (append, created 0640) as the log file of
 * LOG_DEST_FILE and msg_file_write; replaces an open one. -1 (errno) */
int msg_file_open(const char *path);
/* msg_file_reopen - open the same path again (after logrotate renamed
 * the file); on failure the old file stays. -1 (errno) */
int msg_file_reopen(void);
/* msg_file_path - the open log file, or NULL */
const char *msg_file_path(void);
/* msg_file_write - append one line that another process wrote (no LF,
 * cut to a line's bound), stamped; lost when no file is open */
void msg_file_write(const char *line, size_t len);

/* msg_dropped - lines dropped so far because stderr was full */
unsigned long long msg_dropped(void);

/* a log relay: bytes from a pipe, cut into lines for msg_file_write */
#define LOG_RELAY_LINE 4096
struct log_relay {
	char part[LOG_RELAY_LINE];	/* an unfinished line */
	size_t len;
	bool cut;		/* part overflowed: drop the rest of the line */
};

/* msg_relay_feed - cut data into lines, each to msg_file_write; a line
 * longer than LOG_RELAY_LINE is written cut, the rest dropped */
void msg_relay_feed(struct log_relay *r, const char *data, size_t len);
/* msg_relay_flush - write an unfinished last line (at exit) */
void msg_relay_flush(struct log_relay *r);

void msg_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void msg_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void msg_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void msg_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* msg_fatal - log and exit(1): the process cannot run */
void msg_fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
/* msg_panic - log and abort(): a bug */
void msg_panic(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

#endif
