/*
 * service - the daemon skeleton: options, logging, config, inherited
 * listeners, privilege drop, and the two service models (event loop or
 * one connection at a time). A daemon's main is one service_main() call.
 *
 * Two ways to end: SIGTERM is a stop (master stops herald): no new
 * sessions, the daemon's stop callback hurries the open ones, and the
 * process exits after stop_timeout whatever is left. SIGUSR1 is a
 * retirement (master replaced this process after a reload): no new
 * sessions, and the open ones go on under their own rules, to their
 * QUIT or their normal timeouts, however long that is; a SIGTERM after
 * it still turns it into a stop.
 *
 * SECURITY: the privilege drop happens before the first accept(), so no
 * byte from the network is read with root rights. When the target user is
 * not root, the drop is verified by checking that setuid(0) fails.
 */
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/config.h"	/* params.h needs struct cfg_entry */
#include "base/evloop.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/sock.h"
#include "base/str.h"
#include "base/tls.h"
#include "mail/params.h"
#include "mail/peer.h"
#include "mail/service.h"

#define SERVICE_LISTEN_FDS_START 3
#define SERVICE_LISTENERS_MAX 64
#define SERVICE_ACCEPT_BURST 64		/* accepts per wakeup, for fairness */
#define SERVICE_ACCEPT_PAUSE_MS 100	/* after EMFILE/ENFILE */
#define SERVICE_FD_RESERVE 64		/* kept free of sessions */
#define SERVICE_TRIM_PEAK 32		/* sessions that make a surge */
#define SERVICE_TRIM_QUIET_MS 5000	/* after a surge, then trim */
#define SERVICE_IDLE_POLL_MS 1000	/* SINGLE: stop check while idle */

struct service {
	const struct service_def *def;
	struct service_listener *listeners;	/* fd -1 once closed */
	int n_listeners;
	struct evloop *loop;		/* EVENT model only */
	struct ev_timer *pause_timer;	/* accepts paused after EMFILE */
	struct ev_timer *stop_timer;	/* forced exit after stop_timeout */
	long sessions;			/* live sessions (EVENT) */
	long peak;			/* most since the last heap trim */
	struct ev_timer *trim_timer;	/* a heap trim is due */
	long long trim_quiet_ms;	/* its delay */
	long trims;			/* heap trims done */
	bool stopping;			/* SIGTERM seen */
	bool retiring;			/* SIGUSR1 seen (EVENT) */
	bool watching;			/* listeners are in the loop */
};

/* set by the SINGLE model's SIGTERM and SIGUSR1 handler */
static volatile sig_atomic_t service_sigterm;

/* service_usage - the command line, for a usage error */
static void
service_usage(const struct service_def *def)
{
	msg_error("usage: %s [-c config] [-f] [-v]", def->name);
}

/* service_listen_fds - take over the listeners that master passed */
static void
service_listen_fds(struct service *svc)
{
	const char *fds = getenv("LISTEN_FDS");
	const char *names = getenv("LISTEN_FDNAMES");
	const char *pid = getenv("LISTEN_PID");
	long long n = 0, want_pid;

	if (fds != NULL && *fds != '\0') {
		if (str_to_ll(fds, 0, SERVICE_LISTENERS_MAX, &n) < 0)
			msg_fatal("bad LISTEN_FDS value \"%s\"", fds);
		if (pid != NULL && *pid != '\0') {
			if (str_to_ll(pid, 1, 0x7fffffff, &want_pid) < 0)
				msg_fatal("bad LISTEN_PID value \"%s\"", pid);
			if (want_pid != (long long)getpid()) {
				msg_warn("LISTEN_PID %lld is not this process: "
				    "ignoring LISTEN_FDS", want_pid);
				n = 0;
			}
		}
	}
	svc->n_listeners = (int)n;
	svc->listeners = xcalloc(n ? (size_t)n : 1, sizeof(*svc->listeners));
	for (int i = 0; i < svc->n_listeners; i++) {
		struct service_listener *l = &svc->listeners[i];
		size_t len = 0;

		l->fd = SERVICE_LISTEN_FDS_START + i;
		if (names != NULL) {
			len = strcspn(names, ":");
			if (len >= sizeof(l->name))
				len = sizeof(l->name) - 1;
			memcpy(l->name, names, len);
			names = strchr(names, ':');
			if (names != NULL)
				names++;
		}
		l->name[len] = '\0';
		if (len == 0)
			str_lcpy(l->name, "unknown", sizeof(l->name));
		if (sock_set_cloexec(l->fd, true) < 0)
			msg_fatal("listener %s (fd %d): %m", l->name, l->fd);
		msg_debug("listener %s on fd %d", l->name, l->fd);
	}
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	unsetenv("LISTEN_PID");
}

/* service_fd_room - descriptors left for one more session? */
bool
service_fd_room(long long sessions, int per_session)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
		return true;
	return (sessions + 1) * per_session + SERVICE_FD_RESERVE <=
	    (long long)rl.rlim_cur;
}

/*
 * service_nofile - raise the soft RLIMIT_NOFILE to the hard limit (the
 * soft one is often 1,024 while a worker's sessions want thousands) and
 * say so in the log when even the hard limit is below need descriptors,
 * which setting asks for; need <= 0: just raise. The soft limit after.
 */
long long
service_nofile(long long need, const char *setting)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		msg_warn("getrlimit RLIMIT_NOFILE: %m");
		return -1;
	}
	if (rl.rlim_cur != rl.rlim_max) {
		rlim_t old = rl.rlim_cur;

		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
			msg_warn("setrlimit RLIMIT_NOFILE %llu: %m",
			    (unsigned long long)rl.rlim_max);
			rl.rlim_cur = old;
		}
	}
	if (rl.rlim_cur == RLIM_INFINITY)
		return LLONG_MAX;
	if (need > 0 && (long long)rl.rlim_cur < need + SERVICE_FD_RESERVE)
		msg_warn("open file limit (RLIMIT_NOFILE) is %llu, below the "
		    "%lld descriptors %s needs: sessions past %lld are "
		    "refused as busy; raise LimitNOFILE (systemd) or "
		    "ulimit -Hn", (unsigned long long)rl.rlim_cur,
		    need + SERVICE_FD_RESERVE, setting,
		    (long long)rl.rlim_cur > SERVICE_FD_RESERVE ?
		    (long long)rl.rlim_cur - SERVICE_FD_RESERVE : 0);
	return (long long)rl.rlim_cur;
}

/* service_tls_server_ctx - load tls_cert_file and tls_key_file, if set */
SSL_CTX *
service_tls_server_ctx(void)
{
	struct buf why = BUF_INIT;
	SSL_CTX *ctx;

	if (*var_tls_cert_file == '\0')
		return NULL;
	ctx = tls_server_ctx_new(var_tls_cert_file, var_tls_key_file, &why);
	if (ctx == NULL)
		msg_fatal("cannot load TLS certificate %s and key %s: %s",
		    var_tls_cert_file, var_tls_key_file, buf_cstr(&why));
	buf_free(&why);
	return ctx;
}

/* service_drop_privileges - setgroups, setgid, setuid, each checked */
void
service_drop_privileges(const char *user, const char *group)
{
	struct passwd *pw;
	struct group *gr;
	gid_t groups[2];
	size_t ngroups = 1;
	uid_t uid;
	gid_t gid;

	errno = 0;
	if ((pw = getpwnam(user)) == NULL)
		msg_fatal("user %s: %s", user,
		    errno ? strerror(errno) : "no such user");
	uid = pw->pw_uid;
	gid = pw->pw_gid;
	groups[0] = gid;
	if (group != NULL && *group != '\0') {
		errno = 0;
		if ((gr = getgrnam(group)) == NULL)
			msg_fatal("group %s: %s", group,
			    errno ? strerror(errno) : "no such group");
		if (gr->gr_gid != gid)
			groups[ngroups++] = gr->gr_gid;
	}
	if (setgroups(ngroups, groups) < 0)
		msg_fatal("setgroups for user %s: %m", user);
	if (setgid(gid) < 0)
		msg_fatal("setgid(%ld): %m", (long)gid);
	if (setuid(uid) < 0)
		msg_fatal("setuid(%ld): %m", (long)uid);
	if (getuid() != uid || geteuid() != uid || getgid() != gid ||
	    getegid() != gid)
		msg_fatal("privilege drop to %s did not take effect", user);
	if (uid != 0 && setuid(0) == 0)
		msg_fatal("privilege drop to %s can be undone", user);
	msg_debug("running as user %s (uid %ld, gid %ld)", user, (long)uid,
	    (long)gid);
}

/* service_signals - the dispositions every service starts with */
static void
service_signals(void)
{
	sigset_t mask;

	/*
	 * master blocks signals for its own signalfd; exec keeps the mask.
	 * SIGUSR1 stays blocked (master_spawn.c blocks it already) until
	 * the model handles it: its default action would end the process,
	 * and a retirement that comes this early must wait, not kill.
	 */
	sigemptyset(&mask);
	sigaddset(&mask, SIGUSR1);
	if (sigprocmask(SIG_SETMASK, &mask, NULL) < 0)
		msg_fatal("sigprocmask: %m");
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR ||
	    signal(SIGINT, SIG_IGN) == SIG_ERR ||	/* master handles ^C */
	    signal(SIGHUP, SIG_IGN) == SIG_ERR ||	/* reload = new workers */
	    signal(SIGTERM, SIG_DFL) == SIG_ERR)
		msg_fatal("signal: %m");
}

/* service_parent_watch - die with master; pid is master's at our start */
static void
service_parent_watch(pid_t parent)
{
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0)
		msg_fatal("prctl(PR_SET_PDEATHSIG): %m");
	/* the parent may have gone before prctl took effect */
	if (getppid() != parent) {
		msg_info("parent process went away: exiting");
		exit(0);
	}
}

/* service_loop - the event loop (EVENT model; NULL for SINGLE) */
struct evloop *
service_loop(struct service *svc)
{
	return svc->loop;
}

/* service_new_detached - an EVENT service object on loop, without
 * listeners, signals or a privilege drop: for harnesses that run a
 * daemon's sessions in process (the fuzz targets of t/fuzz) */
struct service *
service_new_detached(const struct service_def *def, struct evloop *loop)
{
	struct service *svc = xcalloc(1, sizeof(*svc));

	svc->def = def;
	svc->loop = loop;
	svc->trim_quiet_ms = SERVICE_TRIM_QUIET_MS;
	return svc;
}

/* service_free_detached - free what service_new_detached made */
void
service_free_detached(struct service **svcp)
{
	if (*svcp != NULL && (*svcp)->loop != NULL)
		evloop_cancel_timer((*svcp)->loop, &(*svcp)->trim_timer);
	x_free(svcp);
}

/*
 * service_trim_cb - a surge of sessions ended a while ago: give the heap
 * it left free back to the kernel. service_malloc_tune keeps up to 8 MB
 * at the top of the heap, and freed chunks below live ones are never
 * returned by free() at all, so after thousands of sessions a worker
 * would stay at its peak size for good. malloc_trim(0) also releases
 * whole free pages in the middle of the heap. It walks the free lists
 * once, so it runs only after a surge, never per session.
 */
static long long
service_trim_cb(struct evloop *loop, void *ctx)
{
	struct service *svc = ctx;

	(void)loop;
	svc->trim_timer = NULL;		/* we return -1: the loop frees it */
	if (svc->sessions * 4 > svc->peak)
		return -1;		/* busy again: the next drop trims */
	(void)malloc_trim(0);
	svc->trims++;
	svc->peak = svc->sessions;
	return -1;
}

/* service_set_heap_trim - the delay of the trim after a surge (tests) */
void
service_set_heap_trim(struct service *svc, long long quiet_ms)
{
	svc->trim_quiet_ms = quiet_ms;
}

/* service_heap_trims - heap trims so far */
long
service_heap_trims(const struct service *svc)
{
	return svc->trims;
}

/* service_sessions - live sessions (EVENT model) */
long
service_sessions(const struct service *svc)
{
	return svc->sessions;
}

/* service_session_begin - one more live session */
void
service_session_begin(struct service *svc)
{
	if (++svc->sessions > svc->peak)
		svc->peak = svc->sessions;
}

/* service_session_end - one session less; the last one ends a stop */
void
service_session_end(struct service *svc)
{
	if (svc->sessions <= 0)
		msg_panic("service_session_end: no session is open");
	svc->sessions--;
	/* down to a quarter of a surge: trim the heap once it stays quiet */
	if (svc->peak >= SERVICE_TRIM_PEAK && svc->sessions * 4 <= svc->peak &&
	    svc->trim_timer == NULL && svc->loop != NULL)
		svc->trim_timer = evloop_add_timer(svc->loop,
		    svc->trim_quiet_ms, service_trim_cb, svc);
	if ((svc->stopping || svc->retiring) && svc->sessions == 0 &&
	    svc->loop != NULL)
		evloop_stop(svc->loop);
}

/* service_stopping - true after SIGTERM */
bool
service_stopping(const struct service *svc)
{
	return svc->stopping || service_sigterm != 0;
}

/* service_wait_request - wait for the next request of a SINGLE service */
bool
service_wait_request(const struct service *svc, int sock)
{
	struct pollfd pfd = {.fd = sock, .events = POLLIN};

	for (;;) {
		/* stopping: still take a request that is already on its way,
		 * so a reload does not turn it into a deferral */
		bool stopping = service_stopping(svc);
		int n = poll(&pfd, 1, stopping ? 0 : SERVICE_IDLE_POLL_MS);

		if (n > 0)
			return true;	/* data, EOF or error: recv says */
		if (n < 0 && errno != EINTR) {
			msg_warn("poll: %m");
			return false;
		}
		if (stopping && n == 0)
			return false;
	}
}

/* service_listeners - the inherited listeners and their count */
const struct service_listener *
service_listeners(const struct service *svc, int *n_r)
{
	*n_r = svc->n_listeners;
	return svc->listeners;
}

/* service_has_listener - was a listener called name inherited? */
bool
service_has_listener(const struct service *svc, const char *name)
{
	for (int i = 0; i < svc->n_listeners; i++)
		if (strcmp(svc->listeners[i].name, name) == 0)
			return true;
	return false;
}

/* service_close_listeners - stop accepting for good */
static void
service_close_listeners(struct service *svc)
{
	for (int i = 0; i < svc->n_listeners; i++) {
		struct service_listener *l = &svc->listeners[i];

		if (l->fd < 0)
			continue;
		if (svc->loop != NULL && svc->watching)
			evloop_del_fd(svc->loop, l->fd);
		if (close(l->fd) < 0)
			msg_warn("close listener %s: %m", l->name);
		l->fd = -1;
	}
	svc->watching = false;
}

static void service_event_accept(struct evloop *, int, unsigned, void *);

/* service_event_watch - add or remove the listeners in the loop */
static void
service_event_watch(struct service *svc, bool on)
{
	if (svc->watching == on)
		return;
	for (int i = 0; i < svc->n_listeners; i++) {
		struct service_listener *l = &svc->listeners[i];

		if (l->fd < 0)
			continue;
		if (on) {
			if (evloop_add_fd(svc->loop, l->fd, EV_READ,
			    service_event_accept, svc) < 0)
				msg_fatal("watch listener %s: %m", l->name);
		} else {
			evloop_del_fd(svc->loop, l->fd);
		}
	}
	svc->watching = on;
}

/* service_event_resume - the pause after EMFILE is over */
static long long
service_event_resume(struct evloop *loop, void *ctx)
{
	struct service *svc = ctx;

	svc->pause_timer = NULL;
	if (!svc->stopping && !svc->retiring)
		service_event_watch(svc, true);
	return -1;
}

/* service_event_accept - a listener is readable: take what is waiting */
static void
service_event_accept(struct evloop *loop, int fd, unsigned events, void *ctx)
{
	struct service *svc = ctx;
	const struct service_listener *l = NULL;

	for (int i = 0; i < svc->n_listeners; i++)
		if (svc->listeners[i].fd == fd)
			l = &svc->listeners[i];
	if (l == NULL)
		msg_panic("service_event_accept: fd %d is no listener", fd);

	for (int n = 0; n < SERVICE_ACCEPT_BURST && !svc->stopping &&
	    !svc->retiring; n++) {
		int conn = accept4(fd, NULL, NULL, SOCK_NONBLOCK |
		    SOCK_CLOEXEC);

		if (conn >= 0) {
			svc->def->accept(svc, conn, l);
			continue;
		}
		switch (errno) {
		case EAGAIN:
#if EAGAIN != EWOULDBLOCK
		case EWOULDBLOCK:
#endif
			return;
		case EINTR:
		case ECONNABORTED:
		case EPROTO:
			continue;
		case EMFILE:
		case ENFILE:
		case ENOBUFS:
		case ENOMEM:
			/* level-triggered: pause, or we would spin */
			msg_warn("accept on %s: %m: pausing for %d ms",
			    l->name, SERVICE_ACCEPT_PAUSE_MS);
			service_event_watch(svc, false);
			if (svc->pause_timer == NULL)
				svc->pause_timer = evloop_add_timer(loop,
				    SERVICE_ACCEPT_PAUSE_MS,
				    service_event_resume, svc);
			return;
		default:
			msg_warn("accept on %s: %m", l->name);
			return;
		}
	}
}

/* service_event_force_exit - sessions did not end within stop_timeout */
static long long
service_event_force_exit(struct evloop *loop, void *ctx)
{
	struct service *svc = ctx;

	svc->stop_timer = NULL;
	msg_info("stop timeout: exiting with %ld session(s) open",
	    svc->sessions);
	/* the sessions' state is abandoned, not torn down */
	_exit(0);
}

/* service_event_sigterm - graceful stop: no new sessions, finish others */
static void
service_event_sigterm(struct evloop *loop, int signo, void *ctx)
{
	struct service *svc = ctx;

	if (svc->stopping)
		return;
	msg_debug("stopping: %ld session(s) open", svc->sessions);
	svc->stopping = true;
	evloop_cancel_timer(loop, &svc->pause_timer);
	service_close_listeners(svc);
	if (svc->def->stop != NULL)
		svc->def->stop(svc);
	if (svc->sessions == 0) {
		evloop_stop(loop);
		return;
	}
	svc->stop_timer = evloop_add_timer(loop, var_stop_timeout * 1000,
	    service_event_force_exit, svc);
}

/*
 * service_event_retire - SIGUSR1, master replaced us after a reload: no
 * new sessions; the open ones end by their own rules (a client's QUIT,
 * the idle and session timeouts), not hurried and with no deadline of
 * ours, and the process exits with the last one. A SIGTERM later still
 * makes it a stop bounded by stop_timeout.
 */
static void
service_event_retire(struct evloop *loop, int signo, void *ctx)
{
	struct service *svc = ctx;

	if (svc->stopping || svc->retiring)
		return;
	msg_info("replaced: no new sessions, %ld session(s) go on",
	    svc->sessions);
	svc->retiring = true;
	evloop_cancel_timer(loop, &svc->pause_timer);
	service_close_listeners(svc);
	if (svc->sessions == 0)
		evloop_stop(loop);
}

/* service_event_run - the EVENT model's main loop */
static void
service_event_run(struct service *svc)
{
	/* accept4 runs until EAGAIN: the listeners must not block */
	for (int i = 0; i < svc->n_listeners; i++)
		if (svc->listeners[i].fd >= 0 &&
		    sock_set_nonblock(svc->listeners[i].fd, true) < 0)
			msg_fatal("listener %s: %m", svc->listeners[i].name);
	if (!svc->stopping && !svc->retiring)
		service_event_watch(svc, true);
	if (evloop_run(svc->loop) < 0)
		msg_fatal("event loop: %m");
	svc->stopping = true;
}

/* service_single_sigterm - SINGLE model, SIGTERM or SIGUSR1: finish the
 * current connection, then exit (a retirement needs nothing more) */
static void
service_single_sigterm(int signo)
{
	service_sigterm = 1;
}

/* service_single_run - the SINGLE model: one connection at a time */
static void
service_single_run(struct service *svc)
{
	struct pollfd *pfd;
	sigset_t term, open_mask;
	int n = svc->n_listeners;

	pfd = xcalloc(n ? (size_t)n : 1, sizeof(*pfd));
	for (int i = 0; i < n; i++) {
		pfd[i].fd = svc->listeners[i].fd;
		pfd[i].events = POLLIN;
		/* several processes share it: accept must not block */
		if (sock_set_nonblock(pfd[i].fd, true) < 0)
			msg_fatal("listener %s: %m", svc->listeners[i].name);
	}
	/*
	 * SIGTERM and SIGUSR1 stay blocked except inside ppoll() and serve,
	 * so they cannot slip in between the flag check and the wait.
	 */
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigaddset(&term, SIGUSR1);
	if (sigprocmask(SIG_BLOCK, &term, &open_mask) < 0)
		msg_fatal("sigprocmask: %m");
	sigdelset(&open_mask, SIGTERM);
	sigdelset(&open_mask, SIGUSR1);
	while (!service_stopping(svc)) {
		if (ppoll(pfd, (nfds_t)n, NULL, &open_mask) < 0) {
			if (errno == EINTR)
				continue;
			msg_fatal("poll: %m");
		}
		for (int i = 0; i < n && !service_stopping(svc); i++) {
			const struct service_listener *l = &svc->listeners[i];
			int conn;

			if ((pfd[i].revents & (POLLIN | POLLERR | POLLHUP)) == 0)
				continue;
			/* other processes share the listener: EAGAIN is normal */
			if ((conn = accept4(l->fd, NULL, NULL,
			    SOCK_CLOEXEC)) < 0) {
				if (errno == EMFILE || errno == ENFILE) {
					msg_warn("accept on %s: %m", l->name);
					nanosleep(&(struct timespec){0,
					    SERVICE_ACCEPT_PAUSE_MS * 1000000L},
					    NULL);
				} else if (errno != EAGAIN &&
				    errno != EWOULDBLOCK && errno != EINTR &&
				    errno != ECONNABORTED && errno != EPROTO) {
					msg_warn("accept on %s: %m", l->name);
				}
				continue;
			}
			/* master's listeners are non-blocking; serve blocks */
			if (sock_set_nonblock(conn, false) < 0)
				msg_warn("accept on %s: blocking mode: %m",
				    l->name);
			if (sigprocmask(SIG_SETMASK, &open_mask, NULL) < 0)
				msg_fatal("sigprocmask: %m");
			svc->def->serve(svc, conn, l);
			if (sigprocmask(SIG_BLOCK, &term, NULL) < 0)
				msg_fatal("sigprocmask: %m");
			if (close(conn) < 0 && errno != EBADF)
				msg_warn("close connection on %s: %m",
				    l->name);
		}
	}
	x_free(&pfd);
	svc->stopping = true;
}

/*
 * service_malloc_tune - keep freed memory for the next message. glibc
 * gives the top of the heap back to the kernel once 128 KB are free there;
 * a daemon that allocates and frees a 64 KB queue-file buffer per message
 * then pays a brk() pair and fresh zeroed pages for every message (a sixth
 * of smtpd's CPU under load). Fixed thresholds also stop glibc's dynamic
 * mmap threshold from moving. Memory stays bounded by the peak in use.
 */
static void
service_malloc_tune(void)
{
	if (mallopt(M_TRIM_THRESHOLD, 8 * 1024 * 1024) != 1 ||
	    mallopt(M_MMAP_THRESHOLD, 1024 * 1024) != 1)
		msg_debug("mallopt: heap thresholds not set (another "
		    "allocator, e.g. a sanitizer's)");
}

/*
 * service_config - load the configuration: the text master checked, on
 * the descriptor named by $HERALD_CONFIG_FD, else the file itself (a
 * service started by hand). The descriptor and the variable go before
 * anything else runs.
 */
static void
service_config(const char *path)
{
	const char *env = getenv(PARAMS_CONFIG_FD_ENV);
	struct buf text = BUF_INIT, why = BUF_INIT;
	long long fd;
	int rc;

	if (env == NULL) {
		rc = params_load(path, &why);
	} else {
		if (str_to_ll(env, SERVICE_LISTEN_FDS_START, INT_MAX,
		    &fd) < 0)
			msg_fatal("bad %s value \"%s\"", PARAMS_CONFIG_FD_ENV,
			    env);
		if ((rc = cfg_read((int)fd, path, &text, &why)) == 0)
			rc = params_load_text(path, text.data, text.len,
			    &why);
		(void)close((int)fd);
		(void)unsetenv(PARAMS_CONFIG_FD_ENV);
	}
	if (rc < 0)
		msg_fatal("%s", buf_cstr(&why));
	buf_free(&text);
	buf_free(&why);
}

/*
 * service_log_init - stderr in the foreground (stamped unless journald
 * reads it) and under a master that relays stderr to its log file
 * ($HERALD_LOG_DEST), else syslog.
 */
static void
service_log_init(const char *ident, bool foreground)
{
	const char *env = getenv(LOG_DEST_ENV);

	if (foreground) {
		msg_init(ident, LOG_DEST_STDERR);
		msg_stamp(msg_stamp_wanted());
	} else if (env != NULL && strcmp(env, "stderr") == 0) {
		msg_init(ident, LOG_DEST_STDERR);
	} else {
		msg_init(ident, LOG_DEST_SYSLOG);
	}
}

/* service_main - run the daemon; returns the exit status */
int
service_main(int argc, char **argv, const struct service_def *def)
{
	struct service *svc;
	const char *conf = NULL;
	char ident[64];
	bool foreground = false, usage = false;
	pid_t parent = getppid();
	int ch;

	if (def->model == SERVICE_EVENT && def->accept == NULL)
		msg_panic("service %s: EVENT model without accept", def->name);
	if (def->model == SERVICE_SINGLE && def->serve == NULL)
		msg_panic("service %s: SINGLE model without serve", def->name);

	optind = 1;
	while ((ch = getopt(argc, argv, "c:fv")) != -1) {
		switch (ch) {
		case 'c':
			conf = optarg;
			break;
		case 'f':
			foreground = true;
			break;
		case 'v':
			msg_verbose++;
			break;
		default:
			usage = true;
			break;
		}
	}
	snprintf(ident, sizeof(ident), "herald/%s", def->name);
	service_log_init(ident, foreground);
	msg_report_attach();	/* master's pipe for our last words */
	if (usage || optind != argc) {
		service_usage(def);
		return 2;
	}
	service_config(params_config_path(conf));
	peer_attach_env();	/* the service's client table, if passed */
	service_signals();

	service_malloc_tune();
	(void)service_nofile(0, NULL);	/* a daemon says what it needs */

	svc = xcalloc(1, sizeof(*svc));
	svc->def = def;
	svc->trim_quiet_ms = SERVICE_TRIM_QUIET_MS;
	service_listen_fds(svc);

	if (def->pre_drop != NULL)
		def->pre_drop(svc);
	if (geteuid() == 0 && def->user != NULL && *def->user != NULL)
		service_drop_privileges(*def->user, def->group != NULL ?
		    *def->group : def->reads_directory ?
		    var_directory_group : NULL);
	service_parent_watch(parent);

	/* SIGTERM is handled from here on, also while init runs; both
	 * are blocked before init can start a thread */
	if (def->model == SERVICE_EVENT) {
		svc->loop = evloop_new();
		if (evloop_add_signal(svc->loop, SIGTERM,
		    service_event_sigterm, svc) < 0)
			msg_fatal("watch SIGTERM: %m");
		if (evloop_add_signal(svc->loop, SIGUSR1,
		    service_event_retire, svc) < 0)
			msg_fatal("watch SIGUSR1: %m");
	} else {
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = service_single_sigterm;
		sigemptyset(&sa.sa_mask);
		sa.sa_flags = 0;	/* no SA_RESTART: blocking calls see EINTR */
		if (sigaction(SIGTERM, &sa, NULL) < 0 ||
		    sigaction(SIGUSR1, &sa, NULL) < 0)
			msg_fatal("sigaction: %m");
	}
	if (def->init != NULL)
		def->init(svc);
	msg_debug("started");

	if (def->model == SERVICE_EVENT)
		service_event_run(svc);
	else
		service_single_run(svc);

	service_close_listeners(svc);
	if (svc->loop != NULL) {
		evloop_cancel_timer(svc->loop, &svc->pause_timer);
		evloop_cancel_timer(svc->loop, &svc->stop_timer);
		evloop_free(&svc->loop);
	}
	x_free(&svc->listeners);
	x_free(&svc);
	return 0;
}
