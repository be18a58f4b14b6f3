/*
 * service - the skeleton every herald daemon's main hands itself to.
 *
 * service_main() does, in order: options (-c config, -f foreground,
 * -v verbose), logging (ident "herald/<name>"), config (params_load),
 * the listeners master passed (LISTEN_FDS / LISTEN_FDNAMES, from fd 3),
 * def->pre_drop (still root if started as root), the privilege drop to
 * *def->user (setgroups with the directory group when reads_directory,
 * setgid, setuid, each checked; skipped when not root), parent-death
 * signal, def->init, then the model's loop:
 *
 *   SERVICE_EVENT   an evloop; each accepted connection goes to
 *                   def->accept (non-blocking, close-on-exec). SIGTERM
 *                   (stop) stops accepting, calls def->stop, and the
 *                   process exits when service_session_end() brought the
 *                   count to zero, or after stop_timeout (then with
 *                   sessions still open). SIGUSR1 (retire) stops
 *                   accepting and exits when the count reaches zero,
 *                   with neither def->stop nor a deadline: sessions end
 *                   at their client's QUIT or their own timeouts, and
 *                   service_stopping() stays false. A SIGTERM after it
 *                   is a stop as above.
 *                   EMFILE/ENFILE pause accepting for 100 ms.
 *   SERVICE_SINGLE  blocking accept; def->serve handles one connection to
 *                   its end (it should return between requests when
 *                   service_stopping() is true). SIGTERM and SIGUSR1 exit
 *                   after the current connection.
 *
 * SIGHUP is ignored in services: master reloads by replacing workers,
 * retiring the old ones with SIGUSR1 (SIGTERM for an exclusive service,
 * qmgr, whose successor waits for it to exit).
 * A service also exits when master goes away (parent-death signal).
 * A usage error returns 2; a bad config or failed drop is msg_fatal.
 */
#ifndef MAIL_SERVICE_H
#define MAIL_SERVICE_H

#include <stdbool.h>

struct evloop;
struct service;

enum service_model { SERVICE_EVENT, SERVICE_SINGLE };

struct service_listener {
	char name[32];		/* LISTEN_FDNAMES entry, e.g. "smtp" */
	int fd;
};

struct service_def {
	const char *name;		/* "smtpd" */
	enum service_model model;
	char **user;			/* &var_herald_user etc. (root only) */
	bool reads_directory;		/* join var_directory_group */
	char **group;			/* join this group instead (signer:
					 * &var_dkim_group) */
	void (*pre_drop)(struct service *svc);	/* optional, may be root */
	void (*init)(struct service *svc);	/* optional, after the drop */
	/* EVENT: one accepted connection (non-blocking); accept owns fd
	 * and closes it when the session ends */
	void (*accept)(struct service *svc, int fd,
	    const struct service_listener *l);
	/* SINGLE: serve one connection (blocking) until it ends; the
	 * skeleton closes fd when serve returns */
	void (*serve)(struct service *svc, int fd,
	    const struct service_listener *l);
	/* EVENT: graceful stop begins (close idle sessions, finish others) */
	void (*stop)(struct service *svc);
};

/* service_main - run the daemon; returns the exit status */
int service_main(int argc, char **argv, const struct service_def *def);

/* service_loop - the event loop (EVENT model; NULL for SINGLE) */
struct evloop *service_loop(struct service *svc);
/* service_session_begin / _end - count live sessions (EVENT model) */
void service_session_begin(struct service *svc);
void service_session_end(struct service *svc);
/* service_sessions - live sessions (EVENT model) */
long service_sessions(const struct service *svc);
/* service_heap_trims - how often the worker gave freed heap back: once
 * the sessions drop to a quarter of a surge (32 or more) and some
 * seconds pass, malloc_trim(0) runs from a timer */
long service_heap_trims(const struct service *svc);
/* service_set_heap_trim - that delay in ms (for tests) */
void service_set_heap_trim(struct service *svc, long long quiet_ms);
/* service_new_detached - an EVENT service object on loop with no
 * listeners, signals or privilege drop, for harnesses that run a
 * daemon's sessions in process (t/fuzz); service_free_detached frees it */
struct service *service_new_detached(const struct service_def *def,
    struct evloop *loop);
void service_free_detached(struct service **svcp);
/* service_stopping - true after SIGTERM (SINGLE: or SIGUSR1) */
bool service_stopping(const struct service *svc);
/* service_wait_request - SINGLE: wait for the next request on sock,
 * checking service_stopping every second; true when input (or EOF or an
 * error, which the read then reports) is there, false when stopping with
 * nothing on its way or poll failed */
bool service_wait_request(const struct service *svc, int sock);
/* service_listeners - the inherited listeners and their count */
const struct service_listener *service_listeners(const struct service *svc,
    int *n_r);
/* service_has_listener - was a listener called name inherited? */
bool service_has_listener(const struct service *svc, const char *name);

/* service_fd_room - may one more session start, when each of sessions
 * (the live ones) holds up to per_session descriptors and a reserve is
 * kept for files, listeners and logging? Checked against RLIMIT_NOFILE
 * at each call, so a session never meets EMFILE halfway through. */
bool service_fd_room(long long sessions, int per_session);
/* service_nofile - raise the soft RLIMIT_NOFILE to the hard one (done
 * for every service at start); warn when it stays below need plus the
 * reserve, naming setting. Returns the soft limit (-1 unknown) */
long long service_nofile(long long need, const char *setting);

/* service_tls_server_ctx - the server TLS context of tls_cert_file and
 * tls_key_file, loaded in pre_drop while the key is still readable; NULL
 * when tls_cert_file is empty; fatal when they cannot be loaded */
struct ssl_ctx_st *service_tls_server_ctx(void);

/* service_drop_privileges - the drop as the skeleton does it, for
 * programs without the skeleton: setgroups (user's group, plus group if
 * not NULL), setgid, setuid, each checked, fatal on failure */
void service_drop_privileges(const char *user, const char *group);

#endif
