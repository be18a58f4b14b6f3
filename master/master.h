/*
 * master - the supervisor's shared state: listeners, services, children.
 *
 * master.c owns the process (options, startup, the event loop, stop and
 * reload); master_listen.c keeps the listening sockets, shared by every
 * process of a service and kept open across reloads when their address
 * did not change; master_service.c holds the fixed table of services and
 * the children that run them; master_spawn.c forks and execs one child;
 * master_ctl.c answers heraldctl on the control socket.
 *
 * Everything runs in one thread on one evloop, so no locking is needed.
 */
#ifndef MASTER_MASTER_H
#define MASTER_MASTER_H

#include <stdbool.h>
#include <sys/types.h>
#include <time.h>

struct buf;
struct evloop;
struct peertab;
struct ev_timer;

/* control socket and pid file, inside run_directory */
#define MASTER_SOCK_NAME "master.sock"
#define MASTER_PID_NAME "master.pid"

/* supervision timing */
#define MASTER_SHORT_LIFE_MS 10000	/* died sooner: back off */
#define MASTER_BACKOFF_MIN_MS 1000	/* first delay after a quick death */
#define MASTER_BACKOFF_MAX_MS 60000	/* longest delay */
#define MASTER_BACKOFF_FORGET_MS 120000	/* quiet this long: start over */
#define MASTER_KILL_GRACE_S 5		/* after stop_timeout: SIGKILL */

/* one listening socket; shared by every service process that uses it */
struct master_listener {
	char *addr;		/* "host:port" or the UNIX socket path */
	bool is_unix;
	int fd;
	bool used;		/* mark for the reload sweep */
	bool fresh;		/* opened by the reload in progress */
	struct master_listener *next;
};

#define MASTER_SERVICE_MAX_LISTENERS 32
#define MASTER_ERROR_MAX 512	/* a service's last error, as shown */
#define MASTER_FAILING_DEATHS 2	/* quick deaths in a row: "failing" */

/* a service: one row of the fixed table plus its running state */
struct master_service {
	const struct master_service_def *def;
	int wanted;		/* processes to run; 0: disabled */
	struct master_listener *listeners[MASTER_SERVICE_MAX_LISTENERS];
	const char *fdnames[MASTER_SERVICE_MAX_LISTENERS];
	int nlisteners;
	long long restarts;	/* replacements of dead children */
	long long backoff_ms;	/* current restart delay, 0: none */
	long long last_death_ms;	/* monotonic time of the last quick death */
	int quick_deaths;	/* current children that died young, in a
				   row; reset by a reload or by every
				   wanted child living MASTER_SHORT_LIFE_MS */
	char last_error[MASTER_ERROR_MAX];	/* why the last current child
				   died: its fatal line, else its exit */
	struct ev_timer *timer;	/* pending delayed restart */
	struct peertab *peers;	/* the workers' client table, or NULL */
	int peers_fd;		/* its memfd, passed to every worker */
	unsigned peers_id;	/* bumped when the table is replaced */
};

/* how master_listen_get opens a UNIX socket */
enum master_socket_access {
	MASTER_SOCKET_HERALD,	/* 0600, owner herald_user (qmgr, local) */
	MASTER_SOCKET_SERVICES,	/* 0660, group directory_group: every
				   service may connect (authd) */
	MASTER_SOCKET_PUBLIC,	/* 0666: every local user (sendmail) */
};

#define MASTER_LISTEN_SETS 4	/* smtpd: smtp, submit, submission(s) */

/*
 * master_listen_set - one kind of listener of a service: its addresses
 * for the current configuration are the entries of the host:port list
 * setting *list, or what listen() appends (0, or -1 with why) when list
 * is NULL, and each gets fdname in LISTEN_FDNAMES ("pop3" and "pop3s"
 * for pop3d; "smtp", "submission", "submissions", and the UNIX socket
 * "submit" for sendmail, for smtpd).
 */
struct master_listen_set {
	const char *fdname;
	int (*listen)(char ***addrs_r, int *n_r, struct buf *why);
	bool is_unix;		/* listen() gives socket paths */
	enum master_socket_access access;	/* of those sockets */
	char *const *list;	/* a *_listen setting, instead of listen() */
};

/*
 * master_service_def - a row of the service table: its listener sets
 * (unused ones have fdname NULL) and count(), how many processes to run
 * (0: none).
 */
struct master_service_def {
	const char *name;	/* in logs and status: "smtpd" */
	const char *program;	/* file in daemon_directory */
	bool exclusive;		/* never two generations at once: a reload
				   starts the new process only after the old
				   one exited (qmgr owns the queue) */
	struct master_listen_set listen[MASTER_LISTEN_SETS];
	int (*count)(void);
	/* a service with per-client limits: its workers share a client
	 * table (mail/peertab.h) of regions of this many sessions (the
	 * per-worker maximum); NULL: none */
	const long long *client_table;
};

/* one child process */
struct master_child {
	struct master_service *svc;
	pid_t pid;
	time_t started;		/* unix time, for status */
	long long started_ms;	/* monotonic, for the backoff */
	unsigned generation;	/* reload generation it belongs to */
	int slot;		/* its region of svc->peers, -1: none */
	unsigned peers_id;	/* of the table the slot is in */
	int report_fd;		/* read end of its fatal-report pipe, -1 */
	struct master_child *next;
};

/* master.c: process-wide state */
extern struct evloop *master_loop;
extern const char *master_config_path;	/* absolute */
extern int master_config_fd;		/* memfd: the text services get */
extern bool master_foreground;
extern bool master_verbose;
extern bool master_stopping;
extern time_t master_started;
extern unsigned master_generation;	/* bumped by every reload */

/* master_reload - re-read the configuration and replace every child;
 * -1 with why (the old configuration stays in force) */
int master_reload(struct buf *why);
/* master_stop - begin the graceful stop (idempotent) */
void master_stop(void);

/* master_listen.c */
/* master_listen_get - the listener for addr, opened if not open yet */
struct master_listener *master_listen_get(const char *addr, bool is_unix,
    enum master_socket_access access, struct buf *why);
/* master_listen_begin - start a listener round: mark every one unused */
void master_listen_begin(void);
/* master_listen_abort - close the ones the failed round opened */
void master_listen_abort(void);
/* master_listen_commit - close the ones the round did not use */
void master_listen_commit(void);
/* master_listen_close_all - close every listener, unlink UNIX paths */
void master_listen_close_all(void);

/* master_service.c */
extern struct master_service master_services[];
extern int master_nservices;
extern struct master_child *master_children;
/* master_service_init - bind the table rows to their state */
void master_service_init(void);
/* master_service_configure - listeners and process counts from the
 * current configuration; -1 with why (the previous listeners stay) */
int master_service_configure(struct buf *why);
/* master_service_start_all - start a new generation of every service */
void master_service_start_all(void);
/* master_service_reap - collect exited children, restart as needed */
void master_service_reap(void);
/* master_service_retire_old - SIGUSR1 to children of older generations,
 * SIGTERM to those of exclusive services */
void master_service_retire_old(unsigned before);
/* master_service_signal_all - signo to every child */
void master_service_signal_all(int signo);
/* master_service_cancel_timers - no more delayed restarts */
void master_service_cancel_timers(void);
/* master_service_nchildren - live children */
int master_service_nchildren(void);
/* master_service_state - "off", "running", "reloading" (qmgr waits for
 * its predecessor), "restarting" (fewer than wanted, a restart is due)
 * or "failing" (MASTER_FAILING_DEATHS quick deaths in a row: see
 * last_error); the current children in *running_r */
const char *master_service_state(struct master_service *svc, int *running_r);

/* master_spawn.c */
/* master_spawn - fork and exec the service's program, which writes slot
 * of the service's client table (-1: no table); pid, or -1. *report_r:
 * the read end of the pipe where it writes its fatal error, or -1 */
pid_t master_spawn(const struct master_service *svc, int slot,
    int *report_r);

/* master_notify.c: sd_notify(3) for Type=notify units */
/* master_notify_init - remember $NOTIFY_SOCKET and remove it from the
 * environment (services must not inherit it) */
void master_notify_init(void);
/* master_notify - one state message to the service manager, if any */
void master_notify(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
/* master_notify_reloading - "RELOADING=1" with MONOTONIC_USEC */
void master_notify_reloading(void);

/* master_preflight.c */
/* master_preflight_service - can service name start with the settings in
 * force now (its user, its TLS files as that user)? -1 with why */
int master_preflight_service(const char *name, struct buf *why);
/* master_log.c: log_destination, log_file and the services' stderr */
/* master_log_setup - pick where lines go (without -f), say it on stderr */
void master_log_setup(void);
/* master_log_stderr - master's stderr once detached: the services' log
 * pipe, or -1 for /dev/null */
int master_log_stderr(void);
/* master_log_watch - relay the services' lines from the loop */
void master_log_watch(struct evloop *loop);
/* master_log_reopen - reopen the log file (SIGHUP, SIGUSR1, reload) */
void master_log_reopen(void);
/* master_log_finish - relay what is left in the pipe (at exit) */
void master_log_finish(void);

/* master_ctl.c */
/* master_ctl_open - listen on the control socket; -1 with why */
int master_ctl_open(const char *path, struct buf *why);
/* master_ctl_close - stop listening, drop open connections */
void master_ctl_close(void);

#endif
