/*
 * master_spawn - fork and exec one service process.
 *
 * The child starts clean: default signal dispositions (SIGINT ignored, so
 * a ^C in a foreground terminal reaches only master, which turns it into
 * a graceful stop), a signal mask with only SIGUSR1 blocked (master blocks
 * the signals its event loop reads through signalfd, and a mask survives
 * exec; a retirement sent before the service handles SIGUSR1 waits), the
 * service's listeners at fds 3, 4, ... announced the systemd way
 * (LISTEN_FDS, LISTEN_FDNAMES, LISTEN_PID), the configuration text master
 * checked on the next descriptor (named by $HERALD_CONFIG_FD, see
 * params.h), for a service with per-client limits the client table its
 * workers share on the one after (named by $HERALD_PEER_FD, with the slot
 * the child writes in $HERALD_PEER_SLOT, see peer.h), then the write end
 * of its report pipe (named by $HERALD_REPORT_FD, see base/log.h), and no
 * other descriptor above stderr: neither master's pid
 * file lock, nor its control socket, nor another service's listeners leak
 * into a service.
 *
 * The service drops its privileges itself (service_main), so the child
 * execs as whatever master runs as.
 *
 * The report pipe is how master learns why a service died, whatever its
 * log goes to (syslog without -f): msg_fatal and msg_panic write their
 * line to it, and master reads it, without blocking (its read end is
 * non-blocking and one line fits any pipe buffer), when it reaps the
 * child. "heraldctl status" shows it for a failing service.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/log.h"
#include "base/mem.h"
#include "mail/params.h"
#include "mail/peer.h"
#include "master.h"

#define MASTER_SPAWN_FD0 3	/* first inherited listener */

/* master_spawn_close_from - close every descriptor >= low */
static void
master_spawn_close_from(int low)
{
	long max;

	if (close_range((unsigned)low, ~0U, 0) == 0)
		return;
	/* kernels before 5.9: the slow way */
	if ((max = sysconf(_SC_OPEN_MAX)) < 0 || max > 65536)
		max = 65536;
	for (int fd = low; fd < max; fd++)
		(void)close(fd);
}

/* master_spawn_signals - default dispositions, SIGINT ignored, only
 * SIGUSR1 blocked */
static void
master_spawn_signals(void)
{
	sigset_t mask;

	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			(void)signal(sig, SIG_DFL);	/* some are reserved */
	(void)signal(SIGINT, SIG_IGN);
	/* SIGUSR1 (retire) stays blocked until the service handles it */
	sigemptyset(&mask);
	sigaddset(&mask, SIGUSR1);
	(void)sigprocmask(SIG_SETMASK, &mask, NULL);
}

/*
 * master_spawn_fds - the listeners to 3, 4, ..., the configuration after
 * them, then the client table (slot >= 0); close the rest. A descriptor
 * may already sit where another one must go, so each is first copied
 * above the target range and only then moved down.
 */
static int
master_spawn_fds(const struct master_service *svc, int slot, int report)
{
	int n = svc->nlisteners;
	int from[MASTER_SERVICE_MAX_LISTENERS + 3];
	int tmp[MASTER_SERVICE_MAX_LISTENERS + 3];

	for (int i = 0; i < n; i++)
		from[i] = svc->listeners[i]->fd;
	from[n++] = master_config_fd;
	if (slot >= 0)
		from[n++] = svc->peers_fd;
	if (report >= 0)
		from[n++] = report;
	for (int i = 0; i < n; i++) {
		if ((tmp[i] = fcntl(from[i], F_DUPFD,
		    MASTER_SPAWN_FD0 + n)) < 0)
			return -1;
	}
	for (int i = 0; i < n; i++) {
		/* dup2 leaves FD_CLOEXEC off: the program inherits it */
		if (dup2(tmp[i], MASTER_SPAWN_FD0 + i) < 0)
			return -1;
	}
	master_spawn_close_from(MASTER_SPAWN_FD0 + n);
	return 0;
}

/* master_spawn_env - LISTEN_FDS, LISTEN_FDNAMES, LISTEN_PID,
 * HERALD_CONFIG_FD, HERALD_PEER_FD/_SLOT (slot >= 0) and
 * HERALD_REPORT_FD (report >= 0) */
static int
master_spawn_env(const struct master_service *svc, int slot, bool report)
{
	struct buf names = BUF_INIT, num = BUF_INIT;
	int rc = 0;

	if (report) {
		buf_printf(&num, "%d", MASTER_SPAWN_FD0 + svc->nlisteners + 1 +
		    (slot >= 0));
		if (setenv(LOG_REPORT_FD_ENV, buf_cstr(&num), 1) < 0)
			rc = -1;
		buf_reset(&num);
	} else {
		(void)unsetenv(LOG_REPORT_FD_ENV);
	}

	buf_printf(&num, "%d", MASTER_SPAWN_FD0 + svc->nlisteners);
	if (setenv(PARAMS_CONFIG_FD_ENV, buf_cstr(&num), 1) < 0)
		rc = -1;
	buf_reset(&num);
	if (slot >= 0) {
		buf_printf(&num, "%d", MASTER_SPAWN_FD0 + svc->nlisteners + 1);
		if (setenv(PEER_TABLE_FD_ENV, buf_cstr(&num), 1) < 0)
			rc = -1;
		buf_reset(&num);
		buf_printf(&num, "%d", slot);
		if (setenv(PEER_TABLE_SLOT_ENV, buf_cstr(&num), 1) < 0)
			rc = -1;
		buf_reset(&num);
	} else {
		(void)unsetenv(PEER_TABLE_FD_ENV);
		(void)unsetenv(PEER_TABLE_SLOT_ENV);
	}
	if (svc->nlisteners == 0) {
		(void)unsetenv("LISTEN_FDS");
		(void)unsetenv("LISTEN_FDNAMES");
		(void)unsetenv("LISTEN_PID");
		buf_free(&num);
		return rc;
	}
	for (int i = 0; i < svc->nlisteners; i++) {
		if (i > 0)
			buf_putc(&names, ':');
		buf_puts(&names, svc->fdnames[i]);
	}
	buf_printf(&num, "%d", svc->nlisteners);
	if (setenv("LISTEN_FDS", buf_cstr(&num), 1) < 0 ||
	    setenv("LISTEN_FDNAMES", buf_cstr(&names), 1) < 0)
		rc = -1;
	buf_reset(&num);
	buf_printf(&num, "%ld", (long)getpid());
	if (rc == 0 && setenv("LISTEN_PID", buf_cstr(&num), 1) < 0)
		rc = -1;
	buf_free(&names);
	buf_free(&num);
	return rc;
}

/*
 * master_spawn_child - the child side; never returns. Nothing here may
 * call exit() (master's atexit handler would remove its pid file).
 */
static void __attribute__((noreturn))
master_spawn_child(const struct master_service *svc, int slot, int report,
    const char *path, char **argv)
{
	master_spawn_signals();
	if (master_spawn_fds(svc, slot, report) < 0) {
		msg_warn("service %s: cannot pass listeners: %m",
		    svc->def->name);
		_exit(127);
	}
	if (master_spawn_env(svc, slot, report >= 0) < 0) {
		msg_warn("service %s: environment: %m", svc->def->name);
		_exit(127);
	}
	execv(path, argv);
	msg_warn("service %s: cannot run %s: %m", svc->def->name, path);
	_exit(127);
}

/* master_spawn - fork and exec the service's program; pid, or -1 */
pid_t
master_spawn(const struct master_service *svc, int slot, int *report_r)
{
	struct buf path = BUF_INIT;
	char *argv[8];
	int argc = 0, report[2] = {-1, -1};
	pid_t pid;

	*report_r = -1;
	/* without it the service runs all the same, only less visibly */
	if (pipe2(report, O_CLOEXEC | O_NONBLOCK) < 0) {
		msg_warn("service %s: report pipe: %m", svc->def->name);
		report[0] = report[1] = -1;
	}

	buf_printf(&path, "%s/%s", var_daemon_directory, svc->def->program);
	argv[argc++] = (char *)svc->def->program;
	argv[argc++] = (char *)"-c";
	argv[argc++] = (char *)master_config_path;
	if (master_foreground)
		argv[argc++] = (char *)"-f";
	if (master_verbose)
		argv[argc++] = (char *)"-v";
	argv[argc] = NULL;

	if ((pid = fork()) < 0) {
		msg_warn("service %s: fork: %m", svc->def->name);
		buf_free(&path);
		if (report[0] >= 0) {
			(void)close(report[0]);
			(void)close(report[1]);
		}
		return -1;
	}
	if (pid == 0)
		master_spawn_child(svc, slot, report[1], buf_cstr(&path),
		    argv);
	buf_free(&path);
	if (report[1] >= 0)
		(void)close(report[1]);
	*report_r = report[0];
	return pid;
}
