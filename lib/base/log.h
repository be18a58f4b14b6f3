/*
 * log - one line per event, to syslog (facility mail) or stderr.
 *
 * msg_init() names the program ("herald/smtpd"). In the foreground
 * (LOG_STDERR) lines go to stderr as "herald/smtpd[pid]: warning: text";
 * otherwise to syslog with the same text. Formats accept %m (errno).
 *
 * The three kinds of failure (STYLE.md): msg_panic for broken invariants
 * (abort, core dump), msg_fatal for "cannot run" (exit 1, master restarts
 * with backoff), msg_warn/msg_error for everything a peer caused.
 */
#ifndef BASE_LOG_H
#define BASE_LOG_H

#include <stdbool.h>

enum log_dest {
	LOG_DEST_STDERR,	/* foreground, tests, make demo */
	LOG_DEST_SYSLOG,	/* daemons under master without -f */
};

/* msg_verbose - debug level; msg_debug prints only when > 0 */
extern int msg_verbose;

/* msg_init - set the ident (copied) and destination; call first in main */
void msg_init(const char *ident, enum log_dest dest);
/*
 * msg_report_attach - take the descriptor named by $HERALD_REPORT_FD, if
 * set (a supervisor's pipe): from then on msg_fatal and msg_panic also
 * write their text there, one line, so master can show a service's last
 * fatal error in "heraldctl status" whatever the log goes to. The
 * variable is removed and the descriptor made close-on-exec.
 */
#define LOG_REPORT_FD_ENV "HERALD_REPORT_FD"
void msg_report_attach(void);
/* msg_ident - the ident given to msg_init ("herald" before) */
const char *msg_ident(void);

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
