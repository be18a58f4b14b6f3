/*
 * master - the herald supervisor.
 *
 * SYNOPSIS
 *	master [-c FILE] [-f] [-v]
 *
 * DESCRIPTION
 *	master starts every herald service, keeps it running and stops it.
 *	It opens every listening socket itself (so ports below 1024 need no
 *	privileges in the services), then forks and execs each service
 *	program from daemon_directory with its listeners as inherited
 *	descriptors from fd 3, announced in LISTEN_FDS / LISTEN_FDNAMES /
 *	LISTEN_PID the systemd way:
 *
 *	  smtpd	 smtpd_workers processes (0: one per core), listeners from
 *		 smtpd_listen, named "smtp", <run_directory>/submit (mode
 *		 0666, for sendmail), named "submit", submission_listen
 *		 ("submission") and submissions_listen ("submissions")
 *	  qmgr	 one process, UNIX socket <spool>/private/qmgr, "qmgr"
 *	  local	 local_processes processes sharing <spool>/private/local,
 *		 named "local"
 *	  remote remote_processes processes sharing <spool>/private/remote,
 *		 named "remote"
 *
 *	At start master also creates run_directory, the spool folders, the
 *	directory database and the fixed folder of mail_location (owned by
 *	vmail_user when run as root) if they are missing, and clears stale
 *	LMDB reader slots that killed processes left behind in the
 *	directory (authd clears those of the password database itself).
 *	It gives the password database and authd's throttle state to
 *	auth_user through descriptors opened without following links, so
 *	a link authd puts in its folders is refused with a warning.
 *
 *	master reads the configuration file once and hands every service
 *	that text in a sealed memfd (HERALD_CONFIG_FD, params.h), so all
 *	processes run the settings master checked, however the file changes.
 *
 *	Before it accepts a configuration, at start and at every reload,
 *	master checks what each enabled service will load when it starts
 *	(master_preflight.c): as root its user and directory_group exist,
 *	and the TLS certificate and key of smtpd and pop3d load and match,
 *	read as those services read them (before their privilege drop);
 *	every new listen address must bind. A failure stops the start, or refuses the reload with the
 *	reason (heraldctl reload prints it and exits 1), and the old
 *	configuration goes on serving.
 *
 *	A child that dies is logged ("service smtpd pid 123 exited with
 *	status 1", "... killed by signal 9") and restarted: at once if it had
 *	run for 10 seconds, else after a delay that doubles from 1 second up
 *	to 60 seconds while it keeps dying young. Each child gets a report
 *	pipe for its last words (master_spawn.c): a service whose processes
 *	die young twice in a row is "failing" in heraldctl status, with the
 *	fatal line it wrote, until every wanted process has lived 10 seconds.
 *
 *	-c FILE	configuration (default $HERALD_CONF, else the built-in path)
 *	-f	foreground: log to stderr, and so do the services; each
 *		line starts with a timestamp (RFC 3339, milliseconds)
 *		unless journald reads stderr ($JOURNAL_STREAM), which
 *		stamps lines itself
 *	-v	verbose logging, passed on to the services
 *
 *	Without -f master logs to syslog (facility mail, ident herald/master)
 *	or, when there is no syslog (log_destination, log_file), to a log
 *	file, and says which on stderr (master_log.c). Once started, it
 *	detaches its stdin, stdout and stderr; errors that stop it from
 *	starting also go to stderr. It does not fork itself into
 *	the background: "heraldctl start" does that, or systemd runs it as a
 *	Type=notify service: with $NOTIFY_SOCKET set master reports READY=1
 *	once the services are started, RELOADING=1 / READY=1 around a
 *	reload and STOPPING=1 (master_notify.c).
 *
 * SIGNALS
 *	SIGHUP	reload: read the configuration again; if it is good, open
 *		new listeners, close removed ones (unchanged ones stay open),
 *		start a new set of every service and retire the old
 *		processes with SIGUSR1: they stop accepting, their open
 *		sessions go on to the client's QUIT or their own idle and
 *		session timeouts, with no deadline from master, and they
 *		exit when the last one ends; they are not replaced. qmgr,
 *		of which only one may run, gets SIGTERM instead, and its
 *		successor starts when it has exited (killed after
 *		stop_timeout + 5 seconds).
 *		A bad configuration is logged and the old one stays, also
 *		for services master restarts later: they get the text
 *		master last accepted, never the file as it is now.
 *		Either way a log file (log_destination) is reopened.
 *	SIGUSR1	reopen the log file, nothing else (logrotate).
 *	SIGTERM, SIGINT
 *		stop: SIGTERM to every service, retired ones included,
 *		wait up to stop_timeout + 5 seconds, SIGKILL what is left,
 *		remove master.sock and master.pid, exit 0. Services ignore
 *		SIGINT, so ^C in a foreground terminal is a graceful stop.
 *
 * SECURITY
 *	master runs as the user that started it. As root it stays root (it
 *	must fork services that drop to their own users: herald_user,
 *	vmail_user, auth_user) and touches nothing but the configuration,
 *	run_directory, the spool folders' existence and ownership, the
 *	directory database's existence and group, the existence of
 *	mail_location's fixed folder, and its sockets. It reads nothing
 *	from the network; the control socket is mode 0600 and takes one
 *	bounded request per connection.
 *
 * FILES
 *	<run_directory>/master.pid	pid, locked while master runs: a
 *					second master refuses to start
 *	<run_directory>/master.sock	control socket (heraldctl)
 *
 * PROTOCOLS
 *	heraldctl -> master: see master_ctl.c.
 *
 * SETTINGS
 *	spool_directory, data_directory, run_directory, daemon_directory,
 *	mail_location, herald_user, vmail_user, directory_group,
 *	smtpd_listen, smtpd_workers, local_processes, stop_timeout,
 *	log_destination, log_file.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/file.h"
#include "base/config.h"
#include "base/evloop.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/dir.h"
#include "mail/mailbase.h"
#include "mail/params.h"
#include "mail/service.h"
#include "mail/spool.h"
#include "mail/srs_site.h"
#include "master.h"

struct evloop *master_loop;
const char *master_config_path;
int master_config_fd = -1;

#ifdef MFD_NOEXEC_SEAL
#define MASTER_MFD_NOEXEC_SEAL MFD_NOEXEC_SEAL
#else
#define MASTER_MFD_NOEXEC_SEAL 0x0008U	/* linux/memfd.h, Linux 6.3 */
#endif
bool master_foreground;
bool master_verbose;
bool master_stopping;
time_t master_started;
unsigned master_generation = 1;

static pid_t master_pid;		/* to tell master from a fork child */
static bool master_detached;		/* stderr is /dev/null now */
static char *master_run_dir;		/* as at start: reload keeps it */
static char *master_pid_path;
static char *master_sock_path;
static int master_pid_fd = -1;
static bool master_own_files;		/* we hold the pid file lock */

/* master_usage - bad command line */
static void __attribute__((noreturn))
master_usage(void)
{
	fprintf(stderr, "usage: master [-c FILE] [-f] [-v]\n");
	exit(2);
}

/*
 * master_die - cannot start: log, and until master has detached also
 * tell whoever started it on stderr (heraldctl start shows it).
 */
static void __attribute__((noreturn, format(printf, 1, 2)))
master_die(const char *fmt, ...)
{
	struct buf text = BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	buf_vprintf(&text, fmt, ap);
	va_end(ap);
	if (!master_foreground && !master_detached)
		fprintf(stderr, "herald/master: fatal: %s\n", buf_cstr(&text));
	msg_fatal("%s", buf_cstr(&text));
}

/* master_cleanup - remove the pid file and socket (atexit) */
static void
master_cleanup(void)
{
	if (getpid() != master_pid || !master_own_files)
		return;
	if (master_sock_path != NULL && unlink(master_sock_path) < 0 &&
	    errno != ENOENT)
		msg_warn("remove %s: %m", master_sock_path);
	if (unlink(master_pid_path) < 0 && errno != ENOENT)
		msg_warn("remove %s: %m", master_pid_path);
	master_own_files = false;
}

/* master_user - look up a service user (root only); -1 with why */
static int
master_user(const char *setting, const char *name, uid_t *uid, gid_t *gid,
    struct buf *why)
{
	struct passwd *pw;

	errno = 0;
	if ((pw = getpwnam(name)) == NULL) {
		buf_printf(why, "%s: user \"%s\" does not exist%s%s", setting,
		    name, errno ? ": " : "", errno ? strerror(errno) : "");
		return -1;
	}
	if (uid != NULL)
		*uid = pw->pw_uid;
	if (gid != NULL)
		*gid = pw->pw_gid;
	return 0;
}

/* master_data_open - the data_directory folder, for openat (followed:
 * the setting is root's, and may name a link to another disk); -1 when
 * it does not exist yet, or with a warning */
static int
master_data_open(void)
{
	int fd;

	fd = open(var_data_directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 && errno != ENOENT)
		msg_warn("open %s: %m", var_data_directory);
	return fd;
}

/* master_fix_at - file_fix_at with a warning naming the whole path;
 * 1, 0 (missing) or -1 as file_fix_at */
static int
master_fix_at(int dirfd, const char *folder, const char *name, mode_t type,
    const struct file_owner *want, int *fd_r)
{
	struct buf why = BUF_INIT;
	int rc;

	if ((rc = file_fix_at(dirfd, name, type, want, fd_r, &why)) < 0)
		msg_warn("%s/%s", folder, buf_cstr(&why));
	buf_free(&why);
	return rc;
}

/* master_directory_group - give the directory to directory_group (root):
 * every reading service needs write access to LMDB's lock file, and the
 * group bits it needs, which heraldctl's umask may have left out. All
 * through descriptors, never following a link inside data_directory. */
static void
master_directory_group(void)
{
	static const char *const files[] = {"data.mdb", "lock.mdb", NULL};
	struct file_owner want = {(uid_t)-1, (gid_t)-1, 0, 0};
	struct buf why = BUF_INIT;
	struct group *gr;
	char *folder;
	int data, dfd;

	if ((gr = getgrnam(var_directory_group)) == NULL) {
		msg_warn("directory_group: group \"%s\" does not exist; "
		    "services may not read the directory",
		    var_directory_group);
		return;
	}
	want.gid = gr->gr_gid;
	if ((data = master_data_open()) < 0)
		return;
	want.set = S_IRGRP | S_IXGRP;
	if (file_fix_fd(data, var_data_directory, &want, &why) < 0)
		msg_warn("%s", buf_cstr(&why));
	if (master_fix_at(data, var_data_directory, "directory", S_IFDIR,
	    &want, &dfd) > 0) {
		folder = xasprintf("%s/directory", var_data_directory);
		want.set = S_IRGRP | S_IWGRP;
		for (int i = 0; files[i] != NULL; i++)
			(void)master_fix_at(dfd, folder, files[i], S_IFREG,
			    &want, NULL);
		x_free(&folder);
		(void)close(dfd);
	}
	(void)close(data);
	buf_free(&why);
}

/* master_auth_files - give authd (auth_user) the password database and
 * its throttle state <data_directory>/authstate (root, at start and
 * reload): folders 0700, files 0600, nobody else can read them. authd
 * can write these folders, so nothing is changed by name: a link it put
 * there (to /etc/shadow, say) is refused with a warning, not followed */
static void
master_auth_files(void)
{
	static const char *const folders[] = {"passwd", "authstate", NULL};
	static const char *const files[] = {"data.mdb", "lock.mdb", NULL};
	struct file_owner want = {(uid_t)-1, (gid_t)-1, 07777, 0};
	struct buf why = BUF_INIT;
	char *path;
	int data, fd;

	if (master_user("auth_user", var_auth_user, &want.uid, &want.gid,
	    &why) < 0) {
		msg_warn("%s; authd cannot run", buf_cstr(&why));
		buf_free(&why);
		return;
	}
	path = xasprintf("%s/authstate", var_data_directory);
	if (file_mkdirs(path, 0700, &why) < 0)
		msg_warn("%s", buf_cstr(&why));
	x_free(&path);
	if ((data = master_data_open()) < 0) {
		buf_free(&why);
		return;
	}
	for (int i = 0; folders[i] != NULL; i++) {
		want.set = 0700;
		if (master_fix_at(data, var_data_directory, folders[i], S_IFDIR,
		    &want, &fd) <= 0)
			continue;
		path = xasprintf("%s/%s", var_data_directory, folders[i]);
		want.set = 0600;
		for (int j = 0; files[j] != NULL; j++)
			(void)master_fix_at(fd, path, files[j], S_IFREG, &want,
			    NULL);
		x_free(&path);
		(void)close(fd);
	}
	(void)close(data);
	buf_free(&why);
}

/*
 * master_mail_base - the folder local creates mailboxes in: made for
 * vmail_user if missing (as root the services cannot make it); a problem
 * is only a warning, since local defers the mail until it is fixed.
 */
static void
master_mail_base(uid_t vuid, gid_t vgid)
{
	struct buf base = BUF_INIT, why = BUF_INIT;
	struct group *gr;
	gid_t gids[2] = {vgid, vgid};

	mailbase_path(&base, var_mail_location);
	if (mailbase_setup(buf_cstr(&base), vuid, vgid, &why) < 0) {
		msg_warn("mail_location: %s", buf_cstr(&why));
	} else if (vuid != (uid_t)-1) {
		/* local runs with its own group and directory_group */
		if ((gr = getgrnam(var_directory_group)) != NULL)
			gids[1] = gr->gr_gid;
		if (mailbase_usable(buf_cstr(&base), vuid, gids, 2, &why) == 0)
			msg_warn("mail_location: %s: vmail_user %s cannot "
			    "create mailboxes there, local delivery will "
			    "defer", buf_cstr(&why), var_vmail_user);
		else if (why.len > 0)
			msg_warn("mail_location: %s", buf_cstr(&why));
	}
	buf_free(&base);
	buf_free(&why);
}

/*
 * master_srs_secret - the SRS secret for smtpd and qmgr (herald_user,
 * mode 0600; made when missing): a problem is only a warning, since
 * forwarding to other domains defers and SRS bounces get 451 until it is
 * fixed.
 */
static void
master_srs_secret(uid_t uid, gid_t gid)
{
	struct buf why = BUF_INIT;

	if (srs_site_setup(var_srs_secret_file, uid, gid, &why) < 0)
		msg_warn("srs_secret_file: %s; forwarding to other domains "
		    "will defer", buf_cstr(&why));
	buf_free(&why);
}

/*
 * master_prepare - check users and create what the services need; at
 * start and at every reload. -1 with why.
 */
static int
master_prepare(bool at_start, struct buf *why)
{
	uid_t uid = (uid_t)-1, vuid = (uid_t)-1;
	gid_t gid = (gid_t)-1, vgid = (gid_t)-1;
	struct dir *d = NULL;

	if (geteuid() == 0) {
		if (master_user("herald_user", var_herald_user, &uid, &gid,
		    why) < 0 || master_user("vmail_user", var_vmail_user,
		    &vuid, &vgid, why) < 0)
			return -1;
	}
	if (spool_setup(var_spool_directory, uid, gid, why) < 0)
		return -1;
	master_mail_base(vuid, vgid);
	/* before any fork: LMDB environments never cross fork() */
	if (dir_open(var_data_directory, DIR_WRITE, &d, why) < 0)
		return -1;
	dir_close(&d);
	master_srs_secret(uid, gid);
	if (geteuid() == 0) {
		master_directory_group();
		master_auth_files();
	}
	if (at_start && dir_reader_check(var_data_directory, why) < 0)
		return -1;
	return 0;
}

/* master_read_pid - the pid in an existing pid file, or 0 */
static long
master_read_pid(int fd)
{
	char text[32];
	long long pid;
	ssize_t n;

	if ((n = pread(fd, text, sizeof(text) - 1, 0)) <= 0)
		return 0;
	text[n] = '\0';
	if (str_to_ll(str_trim(text), 1, INT_MAX, &pid) < 0)
		return 0;
	return (long)pid;
}

/* master_lock - take the pid file: one master per run_directory */
static void
master_lock(void)
{
	char text[32];
	int n;

	master_pid_path = xasprintf("%s/%s", master_run_dir, MASTER_PID_NAME);
	if ((master_pid_fd = open(master_pid_path,
	    O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644)) < 0)
		master_die("open %s: %m", master_pid_path);
	if (flock(master_pid_fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK)
			master_die("herald is already running, pid %ld",
			    master_read_pid(master_pid_fd));
		master_die("lock %s: %m", master_pid_path);
	}
	master_own_files = true;
	n = snprintf(text, sizeof(text), "%ld\n", (long)getpid());
	if (ftruncate(master_pid_fd, 0) < 0 ||
	    pwrite(master_pid_fd, text, (size_t)n, 0) != n)
		master_die("write %s: %m", master_pid_path);
}

/* master_detach - stdin and stdout to /dev/null, stderr too or to the
 * services' log pipe (master_log.c) (daemon mode) */
static void
master_detach(void)
{
	int fd, log = master_log_stderr();

	if ((fd = open("/dev/null", O_RDWR)) < 0)
		master_die("open /dev/null: %m");
	for (int i = 0; i <= 2; i++)
		if (fd != i && dup2(i == 2 && log >= 0 ? log : fd, i) < 0)
			master_die("dup2 /dev/null: %m");
	if (fd > 2)
		(void)close(fd);
	if (log > 2)
		(void)close(log);
	master_detached = true;
}

/*
 * master_config_check - read the configuration file once and load that
 * text into the settings; text keeps it for master_config_publish.
 */
static int
master_config_check(struct buf *text, struct buf *why)
{
	if (cfg_read_file(master_config_path, text, why) < 0)
		return -1;
	return params_load_text(master_config_path, text->data, text->len,
	    why);
}

/*
 * master_config_copy - the checked text in a sealed memfd; once it is
 * master_config_fd, every service started from then on reads it
 * (master_spawn.c), so none reads a file that changed after master
 * checked it. The descriptor, or -1 with why.
 */
static int
master_config_copy(const struct buf *text, struct buf *why)
{
	size_t done = 0;
	ssize_t n;
	int fd;

	/* never executable where the kernel knows the flag (Linux 6.3):
	 * vm.memfd_noexec = 2 refuses memfds without it */
	fd = memfd_create("herald.conf", MFD_CLOEXEC | MFD_ALLOW_SEALING |
	    MASTER_MFD_NOEXEC_SEAL);
	if (fd < 0 && errno == EINVAL)
		fd = memfd_create("herald.conf", MFD_CLOEXEC |
		    MFD_ALLOW_SEALING);
	if (fd < 0) {
		buf_printf(why, "memfd_create: %m");
		return -1;
	}
	while (done < text->len) {
		n = write(fd, text->data + done, text->len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			buf_printf(why, "write configuration copy: %m");
			(void)close(fd);
			return -1;
		}
		done += (size_t)n;
	}
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW |
	    F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
		buf_printf(why, "seal configuration copy: %m");
		(void)close(fd);
		return -1;
	}
	return fd;
}

/* master_config_use - services started from now on get this copy */
static void
master_config_use(int fd)
{
	if (master_config_fd >= 0)
		(void)close(master_config_fd);
	master_config_fd = fd;
}

/*
 * master_reload_kill - old processes of exclusive services (qmgr) that
 * outlived their grace period: their successor waits for them. Retired
 * workers are left alone: their sessions end by their own timeouts, and
 * a stop still bounds them by stop_timeout.
 */
static long long
master_reload_kill(struct evloop *loop, void *ctx)
{
	unsigned before = (unsigned)(uintptr_t)ctx;
	int n = 0;

	for (struct master_child *c = master_children; c; c = c->next) {
		if (c->generation < before && c->svc->def->exclusive) {
			n++;
			if (kill(c->pid, SIGKILL) < 0 && errno != ESRCH)
				msg_warn("kill %ld: %m", (long)c->pid);
		}
	}
	if (n > 0)
		msg_warn("%d replaced process%s did not finish in time; "
		    "killed", n, n == 1 ? "" : "es");
	return -1;
}

/* master_reload - re-read the configuration and replace every child */
int
master_reload(struct buf *why)
{
	struct cfg_snapshot *snap;
	struct buf text = BUF_INIT;
	int copy = -1;

	master_log_reopen();	/* logrotate's reload: also when refused */
	if (master_stopping) {
		buf_puts(why, "herald is stopping");
		return -1;
	}
	master_notify_reloading();
	snap = cfg_save(params_table);
	if (master_config_check(&text, why) < 0 ||
	    (copy = master_config_copy(&text, why)) < 0 ||
	    master_prepare(false, why) < 0 ||
	    master_service_configure(why) < 0) {
		if (copy >= 0)
			(void)close(copy);
		cfg_restore(params_table, snap);
		cfg_snapshot_free(&snap);
		buf_free(&text);
		msg_warn("reload failed: %s; keeping the old configuration",
		    buf_cstr(why));
		master_notify("READY=1\nSTATUS=reload failed: kept the old "
		    "configuration");
		return -1;
	}
	cfg_snapshot_free(&snap);
	buf_free(&text);
	master_config_use(copy);
	if (strcmp(var_run_directory, master_run_dir) != 0)
		msg_warn("run_directory changes at the next start; "
		    "still using %s", master_run_dir);
	master_generation++;
	master_service_start_all();
	master_service_retire_old(master_generation);
	(void)evloop_add_timer(master_loop,
	    (var_stop_timeout + MASTER_KILL_GRACE_S) * 1000,
	    master_reload_kill, (void *)(uintptr_t)master_generation);
	msg_info("reloaded configuration");
	master_notify("READY=1\nSTATUS=herald running");
	return 0;
}

/* master_stop_kill - the services had their time: SIGKILL, then give up */
static long long
master_stop_kill(struct evloop *loop, void *ctx)
{
	static bool killed;
	int n = master_service_nchildren();

	if (killed) {
		msg_warn("%d process%s still there after SIGKILL; exiting "
		    "anyway", n, n == 1 ? "" : "es");
		evloop_stop(loop);
		return -1;
	}
	killed = true;
	msg_warn("%d process%s did not stop in time; killing", n,
	    n == 1 ? "" : "es");
	master_service_signal_all(SIGKILL);
	return MASTER_KILL_GRACE_S * 1000;
}

/* master_stop - begin the graceful stop (idempotent) */
void
master_stop(void)
{
	if (master_stopping)
		return;
	master_stopping = true;
	msg_info("stopping herald");
	master_notify("STOPPING=1\nSTATUS=stopping");
	master_service_cancel_timers();
	master_service_signal_all(SIGTERM);
	if (master_children == NULL) {
		evloop_stop(master_loop);
		return;
	}
	(void)evloop_add_timer(master_loop,
	    (var_stop_timeout + MASTER_KILL_GRACE_S) * 1000, master_stop_kill,
	    NULL);
}

/* master_sig - SIGCHLD, SIGHUP, SIGUSR1, SIGTERM and SIGINT from the
 * loop */
static void
master_sig(struct evloop *loop, int signo, void *ctx)
{
	struct buf why = BUF_INIT;

	switch (signo) {
	case SIGCHLD:
		master_service_reap();
		break;
	case SIGHUP:
		msg_info("SIGHUP: reloading configuration");
		(void)master_reload(&why);
		break;
	case SIGUSR1:
		master_log_reopen();
		break;
	case SIGTERM:
	case SIGINT:
		if (!master_stopping)
			msg_info("%s received", signo == SIGINT ? "SIGINT" :
			    "SIGTERM");
		master_stop();
		break;
	}
	buf_free(&why);
}

/* master_options - parse the command line */
static void
master_options(int argc, char **argv, const char **conf_r)
{
	int ch;

	opterr = 0;
	while ((ch = getopt(argc, argv, "c:fv")) != -1) {
		switch (ch) {
		case 'c':
			*conf_r = optarg;
			break;
		case 'f':
			master_foreground = true;
			break;
		case 'v':
			master_verbose = true;
			msg_verbose++;
			break;
		default:
			master_usage();
		}
	}
	if (optind != argc)
		master_usage();
}

int
main(int argc, char **argv)
{
	static const int sigs[] = {SIGCHLD, SIGHUP, SIGUSR1, SIGTERM, SIGINT};
	struct buf why = BUF_INIT, text = BUF_INIT;
	const char *conf = NULL;
	char real[PATH_MAX];

	master_options(argc, argv, &conf);
	msg_init("herald/master", master_foreground ? LOG_DEST_STDERR :
	    LOG_DEST_SYSLOG);
	if (master_foreground)
		msg_stamp(msg_stamp_wanted());
	master_notify_init();
	master_pid = getpid();
	master_started = time(NULL);
	umask(022);
	/* the soft descriptor limit up to the hard one, for master and,
	 * inherited, for every service (each says if it needs more) */
	(void)service_nofile(0, NULL);

	/* configuration; the services get its absolute path */
	conf = params_config_path(conf);
	if (realpath(conf, real) == NULL)
		master_die("configuration %s: %m", conf);
	master_config_path = xstrdup(real);
	if (master_config_check(&text, &why) < 0 ||
	    (master_config_fd = master_config_copy(&text, &why)) < 0)
		master_die("%s", buf_cstr(&why));
	buf_free(&text);
	master_run_dir = xstrdup(var_run_directory);

	/* one master per run_directory, before anything else changes */
	if (file_mkdirs(master_run_dir, 0755, &why) < 0)
		master_die("run_directory: %s", buf_cstr(&why));
	if (atexit(master_cleanup) != 0)
		master_die("atexit failed");
	master_lock();
	master_log_setup();	/* a refused second master says nothing */

	if (master_prepare(true, &why) < 0)
		master_die("%s", buf_cstr(&why));

	/* the loop first: the control socket and signals live on it */
	master_loop = evloop_new();
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		master_die("signal SIGPIPE: %m");
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (evloop_add_signal(master_loop, sigs[i], master_sig,
		    NULL) < 0)
			master_die("watch signal %d: %m", sigs[i]);
	master_log_watch(master_loop);
	master_service_init();
	if (master_service_configure(&why) < 0)
		master_die("%s", buf_cstr(&why));
	master_sock_path = xasprintf("%s/%s", master_run_dir,
	    MASTER_SOCK_NAME);
	if (master_ctl_open(master_sock_path, &why) < 0)
		master_die("control socket: %s", buf_cstr(&why));

	/* from here on, errors go to the log only */
	if (!master_foreground)
		master_detach();
	master_service_start_all();
	msg_info("herald started (pid %ld, config %s)", (long)master_pid,
	    master_config_path);
	master_notify("READY=1\nMAINPID=%ld\nSTATUS=herald running",
	    (long)master_pid);

	if (evloop_run(master_loop) < 0)
		msg_fatal("event loop: %m");

	master_ctl_close();
	master_listen_close_all();
	master_cleanup();
	master_log_finish();
	msg_info("herald stopped");
	buf_free(&why);
	return 0;
}
