/*
 * ctl_service - start, stop, reload and status: heraldctl and master.
 *
 * Protocol (heraldctl -> master, <run_directory>/master.sock), one
 * request and one reply per connection (see master/master_ctl.c):
 *   {request=status} -> {status=ok, pid, time, name} then per service
 *       {unit, state, wanted, count[, reason]} and per child of it
 *       {service, pid, time, count}
 *   {request=reload} -> {status=ok} or {status=fail, reason}
 *   {request=stop}   -> {status=ok}
 * Nobody listening at the socket (no file, connection refused) means
 * herald is not running: exit code 3. stop then still looks at
 * master.pid: a master that holds it locked but has lost its socket, or
 * does not answer there, is stopped with SIGTERM.
 *
 * status lists every service with its state (running, reloading,
 * restarting, failing, off) and exits 0 only when all run; 1 (degraded) when one is restarting or failing, with a line
 * saying why for each; 3 when herald is not running (as LSB status).
 *
 * start forks, and the child (in a new session, stdin and stdout on
 * /dev/null, stderr kept so master's startup errors reach the admin)
 * execs master; heraldctl then asks for status until master answers,
 * for up to CTL_START_WAIT_MS. "start --foreground" execs master -f in
 * place, so the pid a caller started is master's pid.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/ipc.h"
#include "mail/params.h"
#include "mail/sendrate.h"
#include "mail/spool.h"
#include "ctl.h"

#define CTL_START_WAIT_MS 15000
#define CTL_POLL_MS 100
#define CTL_STATUS_TIMEOUT_MS 5000
#define CTL_RELOAD_TIMEOUT_MS 60000
#define CTL_STOP_GRACE_S 10

/* one child process in a status reply */
struct ctl_proc {
	const char *service;
	long long pid;
	long long time;
	long long count;
};

/* one service in a status reply */
struct ctl_unit {
	const char *name;
	const char *state;	/* running, restarting, failing, off */
	const char *reason;	/* its last error, or NULL */
	long long wanted;
	long long count;	/* restarts */
	size_t running;		/* its procs */
};

/* a parsed status reply */
struct ctl_status {
	long long pid;
	long long time;
	const char *config;
	struct ctl_proc *procs;
	size_t nprocs;
	struct ctl_unit *units;
	size_t nunits;
};

/* ctl_sleep_ms - sleep a little */
static void
ctl_sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ctl_now_ms - monotonic milliseconds */
static long long
ctl_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ctl_call - one request/reply on a UNIX socket */
int
ctl_call(const char *path, const struct ipc_msg *req, struct ipc_msg *reply,
    int timeout_ms, struct buf *why)
{
	struct sockaddr_un sun;
	int fd, r;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		buf_printf(why, "%s: socket path too long", path);
		return -1;
	}
	strcpy(sun.sun_path, path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		buf_printf(why, "socket: %s", strerror(errno));
		return -1;
	}
	while ((r = connect(fd, (struct sockaddr *)&sun, sizeof(sun))) < 0 &&
	    errno == EINTR)
		;
	if (r < 0) {
		int err = errno;

		(void)close(fd);
		if (err == ENOENT || err == ECONNREFUSED || err == ENOTDIR)
			return CTL_CALL_NOT_RUNNING;
		buf_printf(why, "connect to %s: %s", path, strerror(err));
		return -1;
	}
	r = ipc_send(fd, req, -1, timeout_ms, why);
	if (r == 0) {
		r = ipc_recv(fd, reply, NULL, timeout_ms, why);
		if (r == 0)
			buf_puts(why, "connection closed without a reply");
		r = r == 1 ? 0 : -1;
	}
	(void)close(fd);
	return r;
}

/* ctl_master_path - <run_directory>/master.sock into out */
void
ctl_master_path(struct buf *out)
{
	buf_reset(out);
	buf_printf(out, "%s/master.sock", var_run_directory);
}

/* ctl_master_call - send {request=what} to master */
static int
ctl_master_call(const char *what, struct ipc_msg *reply, int timeout_ms,
    struct buf *why)
{
	struct ipc_msg req;
	struct buf path = BUF_INIT;
	int r;

	ipc_msg_init(&req);
	ipc_put_str(&req, IPC_REQUEST, what);
	ctl_master_path(&path);
	r = ctl_call(buf_cstr(&path), &req, reply, timeout_ms, why);
	ipc_msg_free(&req);
	buf_free(&path);
	return r;
}

/* ctl_reply_ok - status=ok, else the reason into why */
static bool
ctl_reply_ok(const struct ipc_msg *reply, struct buf *why)
{
	const char *st = ipc_get_str(reply, IPC_STATUS);
	const char *reason = ipc_get_str(reply, IPC_REASON);

	if (st != NULL && strcmp(st, "ok") == 0)
		return true;
	buf_puts(why, reason != NULL ? reason : st != NULL ?
	    "request failed" : "reply without a status");
	return false;
}

/*
 * ctl_status_unit_field - a field of a service's group {unit, state,
 * wanted, count, reason}: a "unit" starts one (and ends a child's
 * group); true if the field was taken.
 */
static bool
ctl_status_unit_field(struct ctl_status *st, struct ctl_unit **unit,
    struct ctl_proc **cur, const char *name, const char *value, long long v)
{
	if (strcmp(name, IPC_UNIT) == 0) {
		st->units = xreallocarray(st->units, st->nunits + 1,
		    sizeof(*st->units));
		*unit = &st->units[st->nunits++];
		memset(*unit, 0, sizeof(**unit));
		(*unit)->name = value;
		(*unit)->state = "running";
		*cur = NULL;
		return true;
	}
	if (*unit == NULL || *cur != NULL)
		return false;
	if (strcmp(name, IPC_STATE) == 0)
		(*unit)->state = value;
	else if (strcmp(name, IPC_WANTED) == 0)
		(*unit)->wanted = v;
	else if (strcmp(name, IPC_COUNT) == 0)
		(*unit)->count = v;
	else if (strcmp(name, IPC_REASON) == 0)
		(*unit)->reason = value;
	else
		return false;
	return true;
}

/* ctl_status_free - what ctl_status_parse allocated */
static void
ctl_status_free(struct ctl_status *st)
{
	x_free(&st->procs);
	x_free(&st->units);
}

/* ctl_status_parse - the master fields, then one group per child */
static int
ctl_status_parse(const struct ipc_msg *reply, struct ctl_status *st,
    struct buf *why)
{
	const char *name, *value;
	struct ctl_proc *cur = NULL;
	struct ctl_unit *unit = NULL;
	size_t pos = 0;
	long long v = 0;

	memset(st, 0, sizeof(*st));
	if (!ctl_reply_ok(reply, why))
		return -1;
	while (ipc_next(reply, &pos, &name, &value)) {
		bool num = strcmp(name, IPC_PID) == 0 ||
		    strcmp(name, IPC_TIME) == 0 ||
		    strcmp(name, IPC_COUNT) == 0 ||
		    strcmp(name, IPC_WANTED) == 0;

		if (num && str_to_ll(value, 0, LLONG_MAX, &v) < 0) {
			buf_printf(why, "bad status reply: %s=%.20s", name,
			    value);
			goto fail;
		}
		if (ctl_status_unit_field(st, &unit, &cur, name, value, v))
			continue;

		if (strcmp(name, IPC_SERVICE) == 0) {
			st->procs = xreallocarray(st->procs, st->nprocs + 1,
			    sizeof(*st->procs));
			cur = &st->procs[st->nprocs++];
			memset(cur, 0, sizeof(*cur));
			cur->service = value;
			if (unit != NULL && strcmp(unit->name, value) == 0)
				unit->running++;
		} else if (strcmp(name, IPC_PID) == 0) {
			*(cur ? &cur->pid : &st->pid) = v;
		} else if (strcmp(name, IPC_TIME) == 0) {
			*(cur ? &cur->time : &st->time) = v;
		} else if (strcmp(name, IPC_COUNT) == 0 && cur != NULL) {
			cur->count = v;
		} else if (strcmp(name, IPC_NAME) == 0 && cur == NULL) {
			st->config = value;
		}
	}
	if (st->pid <= 0) {
		buf_puts(why, "bad status reply: no master pid");
		goto fail;
	}
	return 0;
fail:
	x_free(&st->procs);
	x_free(&st->units);
	return -1;
}

/* ctl_pid_alive - true while pid exists and is not a zombie */
static bool
ctl_pid_alive(long long pid)
{
	char path[64], text[512];
	const char *paren;
	ssize_t n;
	int fd;

	if (kill((pid_t)pid, 0) < 0 && errno == ESRCH)
		return false;
	/* a zombie still answers kill(): its parent has not reaped it */
	snprintf(path, sizeof(path), "/proc/%lld/stat", pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return errno != ENOENT;
	n = read(fd, text, sizeof(text) - 1);
	(void)close(fd);
	if (n <= 0)
		return true;
	text[n] = '\0';
	if ((paren = strrchr(text, ')')) != NULL && paren[1] == ' ' &&
	    (paren[2] == 'Z' || paren[2] == 'X'))
		return false;
	return true;
}

/* ctl_start_wait - poll master until it answers or exits */
static int
ctl_start_wait(pid_t child)
{
	long long deadline = ctl_now_ms() + CTL_START_WAIT_MS;
	struct buf why = BUF_INIT;
	struct ipc_msg reply;
	int status, rc = CTL_EXIT_FAIL;

	ipc_msg_init(&reply);
	for (;;) {
		pid_t w = waitpid(child, &status, WNOHANG);

		if (w == child) {
			if (WIFEXITED(status))
				ctl_error("herald did not start: master exited "
				    "with status %d", WEXITSTATUS(status));
			else if (WIFSIGNALED(status))
				ctl_error("herald did not start: master killed "
				    "by signal %d", WTERMSIG(status));
			break;
		}
		buf_reset(&why);
		ipc_msg_reset(&reply);
		if (ctl_master_call("status", &reply, 1000, &why) == 0 &&
		    ctl_reply_ok(&reply, &why)) {
			printf("herald started (pid %ld)\n", (long)child);
			rc = CTL_EXIT_OK;
			break;
		}
		if (ctl_now_ms() >= deadline) {
			ctl_error("herald did not come up within %d seconds%s%s",
			    CTL_START_WAIT_MS / 1000, why.len ? ": " : "",
			    buf_cstr(&why));
			(void)kill(child, SIGTERM);
			break;
		}
		ctl_sleep_ms(CTL_POLL_MS);
	}
	ipc_msg_free(&reply);
	buf_free(&why);
	return rc;
}

/* ctl_start - start master and wait until it answers */
int
ctl_start(struct ctl *ctl, const struct ctl_args *a)
{
	struct buf why = BUF_INIT, prog = BUF_INIT;
	struct ipc_msg reply;
	struct ctl_status st;
	char conf[PATH_MAX];
	char *argv[6];
	int argc = 0, r;
	pid_t pid;

	ipc_msg_init(&reply);
	r = ctl_master_call("status", &reply, CTL_STATUS_TIMEOUT_MS, &why);
	if (r == 0 && ctl_status_parse(&reply, &st, &why) == 0) {
		ctl_error("herald is already running (pid %lld)", st.pid);
		ctl_status_free(&st);
		ipc_msg_free(&reply);
		buf_free(&why);
		return CTL_EXIT_FAIL;
	}
	ipc_msg_free(&reply);
	if (r == -1) {
		/* something holds the socket but does not answer */
		ctl_error("herald seems to be running but does not answer: %s",
		    buf_cstr(&why));
		buf_free(&why);
		return CTL_EXIT_FAIL;
	}
	buf_free(&why);
	if (realpath(ctl->config, conf) == NULL) {
		ctl_error("%s: %s", ctl->config, strerror(errno));
		return CTL_EXIT_FAIL;
	}
	buf_printf(&prog, "%s/master", var_daemon_directory);
	argv[argc++] = (char *)"master";
	if (ctl_args_has(a, "foreground"))
		argv[argc++] = (char *)"-f";
	argv[argc++] = (char *)"-c";
	argv[argc++] = conf;
	argv[argc] = NULL;

	if (ctl_args_has(a, "foreground")) {
		fflush(stdout);
		execv(buf_cstr(&prog), argv);
		ctl_error("cannot run %s: %s", buf_cstr(&prog),
		    strerror(errno));
		buf_free(&prog);
		return CTL_EXIT_FAIL;
	}
	fflush(stdout);
	fflush(stderr);
	if ((pid = fork()) < 0) {
		ctl_error("fork: %s", strerror(errno));
		buf_free(&prog);
		return CTL_EXIT_FAIL;
	}
	if (pid == 0) {
		int fd = open("/dev/null", O_RDWR);

		if (setsid() < 0 || fd < 0 || dup2(fd, 0) < 0 ||
		    dup2(fd, 1) < 0) {
			fprintf(stderr, "heraldctl: detach: %s\n",
			    strerror(errno));
			_exit(127);
		}
		if (fd > 2)
			(void)close(fd);
		execv(buf_cstr(&prog), argv);
		fprintf(stderr, "heraldctl: cannot run %s: %s\n",
		    buf_cstr(&prog), strerror(errno));
		_exit(127);
	}
	buf_free(&prog);
	return ctl_start_wait(pid);
}

/* ctl_stop_wait - wait until master (pid) is gone; exit code */
static int
ctl_stop_wait(long long pid)
{
	long long deadline;

	deadline = ctl_now_ms() + (var_stop_timeout + CTL_STOP_GRACE_S) *
	    1000;
	while (ctl_pid_alive(pid)) {
		if (ctl_now_ms() >= deadline) {
			ctl_error("herald (pid %lld) did not stop within %lld "
			    "seconds", pid, var_stop_timeout +
			    CTL_STOP_GRACE_S);
			return CTL_EXIT_FAIL;
		}
		ctl_sleep_ms(CTL_POLL_MS);
	}
	printf("herald stopped\n");
	return CTL_EXIT_OK;
}

/* ctl_pidfile_master - the pid in <run_dir>/master.pid while a master
 * holds it locked (master.c: master_lock), else 0 */
static long long
ctl_pidfile_master(const char *run_dir)
{
	struct buf path = BUF_INIT;
	long long pid = 0;
	char text[32];
	ssize_t n;
	int fd;

	buf_printf(&path, "%s/master.pid", run_dir);
	fd = open(buf_cstr(&path), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	buf_free(&path);
	if (fd < 0)
		return 0;
	/* a lock we can take means no master holds it: a stale file */
	if (flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK &&
	    (n = pread(fd, text, sizeof(text) - 1, 0)) > 0) {
		text[n] = '\0';
		if (str_to_ll(str_trim(text), 1, INT_MAX, &pid) < 0)
			pid = 0;
	}
	(void)close(fd);
	return pid;
}

/*
 * ctl_stop_pidfile - stop herald without its control socket: the socket
 * is gone, or master does not answer on it. The master that holds
 * master.pid locked (in run_directory, else the built-in one) gets
 * SIGTERM, which is the same graceful stop. Exit code; socket_why says
 * why the socket did not do, or is NULL when nobody listens there.
 */
static int
ctl_stop_pidfile(const char *socket_why)
{
	long long pid = ctl_pidfile_master(var_run_directory);

	if (pid == 0 && strcmp(var_run_directory,
	    ctl_run_directory_default()) != 0)
		pid = ctl_pidfile_master(ctl_run_directory_default());
	if (pid == 0 && socket_why == NULL) {
		ctl_error("herald is not running");
		return CTL_EXIT_NOT_RUNNING;
	}
	if (pid == 0) {
		ctl_error("status: %s", socket_why);
		return CTL_EXIT_FAIL;
	}
	if (kill((pid_t)pid, SIGTERM) < 0) {
		ctl_error("stop: kill %lld: %s", pid, strerror(errno));
		return CTL_EXIT_FAIL;
	}
	return ctl_stop_wait(pid);
}

/* ctl_stop - stop master and wait until it is gone */
int
ctl_stop(struct ctl *ctl, const struct ctl_args *a)
{
	struct buf why = BUF_INIT;
	struct ipc_msg reply;
	struct ctl_status st;
	long long pid;
	int r, rc = CTL_EXIT_FAIL;

	ipc_msg_init(&reply);
	r = ctl_master_call("status", &reply, CTL_STATUS_TIMEOUT_MS, &why);
	if (r == CTL_CALL_NOT_RUNNING || r == -1) {
		rc = ctl_stop_pidfile(r == -1 ? buf_cstr(&why) : NULL);
		goto out;
	}
	if (ctl_status_parse(&reply, &st, &why) < 0) {
		ctl_error("status: %s", buf_cstr(&why));
		goto out;
	}
	pid = st.pid;
	ctl_status_free(&st);
	ipc_msg_reset(&reply);
	r = ctl_master_call("stop", &reply, CTL_STATUS_TIMEOUT_MS, &why);
	if (r == CTL_CALL_NOT_RUNNING) {
		ctl_error("herald is not running");
		rc = CTL_EXIT_NOT_RUNNING;
		goto out;
	}
	if (r < 0 || !ctl_reply_ok(&reply, &why)) {
		ctl_error("stop: %s", buf_cstr(&why));
		goto out;
	}
	rc = ctl_stop_wait(pid);
out:
	ipc_msg_free(&reply);
	buf_free(&why);
	return rc;
}

/* ctl_reload - ask master to reload */
int
ctl_reload(struct ctl *ctl, const struct ctl_args *a)
{
	struct buf why = BUF_INIT;
	struct ipc_msg reply;
	int r, rc = CTL_EXIT_FAIL;

	ipc_msg_init(&reply);
	r = ctl_master_call("reload", &reply, CTL_RELOAD_TIMEOUT_MS, &why);
	if (r == CTL_CALL_NOT_RUNNING) {
		ctl_error("herald is not running");
		rc = CTL_EXIT_NOT_RUNNING;
	} else if (r < 0) {
		ctl_error("reload: %s", buf_cstr(&why));
	} else if (!ctl_reply_ok(&reply, &why)) {
		ctl_error("reload failed: %s; the old configuration stays",
		    buf_cstr(&why));
	} else {
		printf("configuration reloaded\n");
		rc = CTL_EXIT_OK;
	}
	ipc_msg_free(&reply);
	buf_free(&why);
	return rc;
}

/* ctl_status_queue_text - the queue counts as a table */
static void
ctl_status_queue_text(const long long *counts)
{
	struct ctl_table t;
	char num[32];

	ctl_table_init(&t, 2, (const char *const[]){"QUEUE", "MESSAGES"});
	for (int i = 0; i < CTL_QUEUE_NCOUNT; i++) {
		snprintf(num, sizeof(num), "%lld", counts[i]);
		ctl_table_add(&t, (const char *const[]){
		    ctl_queue_count_names[i], num});
	}
	ctl_table_print(&t, stdout);
	ctl_table_free(&t);
}

/* ctl_status_queue_json - the queue counts as an object */
static void
ctl_status_queue_json(struct ctl_json *j, const long long *counts)
{
	ctl_json_key(j, "queue");
	ctl_json_open(j, '{');
	for (int i = 0; i < CTL_QUEUE_NCOUNT; i++)
		ctl_json_kint(j, ctl_queue_count_names[i], counts[i]);
	ctl_json_close(j, '}');
}

/* the users over a sending limit in the last hour (ctl_status_limits) */
struct ctl_limited {
	struct ctl_table *t;	/* text: rows added here */
	struct ctl_json *j;	/* json: objects added here */
	long long now;
	size_t n;
};

/* ctl_status_limited - one user of the count file: listed if refused
 * within the last hour */
static void
ctl_status_limited(const char *user, const struct sendrate_count *c,
    void *ctx)
{
	struct ctl_limited *l = ctx;
	char msgs[32], rcpts[32], ago[32];

	if (c->refused_at == 0 || c->refused_at <= l->now - 3600)
		return;
	l->n++;
	if (l->j != NULL) {
		ctl_json_open(l->j, '{');
		ctl_json_kstr(l->j, "user", user);
		ctl_json_kint(l->j, "messages", c->messages);
		ctl_json_kint(l->j, "recipients", c->recipients);
		ctl_json_kint(l->j, "refused_at", c->refused_at);
		ctl_json_close(l->j, '}');
		return;
	}
	snprintf(msgs, sizeof(msgs), "%lld/%lld", c->messages,
	    var_submission_message_rate_limit);
	snprintf(rcpts, sizeof(rcpts), "%lld/%lld", c->recipients,
	    var_submission_recipient_rate_limit);
	snprintf(ago, sizeof(ago), "%llds ago", l->now - c->refused_at);
	ctl_table_add(l->t, (const char *const[]){user, msgs, rcpts, ago});
}

/*
 * ctl_status_limits - the users whose mail smtpd refused in the last
 * hour for being over a sending limit (lib/mail/sendrate.h), as a table
 * (nothing when there are none) or a JSON array "over_sending_limit"
 */
static void
ctl_status_limits(struct ctl_json *j)
{
	struct sendrate *r = NULL;
	struct buf why = BUF_INIT;
	struct ctl_table t;
	struct ctl_limited l = {.t = &t, .j = j, .now = time(NULL)};

	if (j != NULL) {
		ctl_json_key(j, "over_sending_limit");
		ctl_json_open(j, '[');
	} else {
		ctl_table_init(&t, 4, (const char *const[]){
		    "OVER SENDING LIMIT", "MESSAGES/H", "RECIPIENTS/H",
		    "LAST REFUSED"});
	}
	/* no file: nobody has sent since the spool was made */
	if (sendrate_open(var_spool_directory, false, &r, &why) == 0) {
		if (sendrate_each(r, l.now, ctl_status_limited, &l, &why) < 0)
			ctl_error("sending limits: %s", buf_cstr(&why));
		sendrate_close(&r);
	}
	if (j != NULL) {
		ctl_json_close(j, ']');
	} else {
		if (l.n > 0) {
			printf("\n");
			ctl_table_print(&t, stdout);
		}
		ctl_table_free(&t);
	}
	buf_free(&why);
}

/*
 * ctl_status_dests - the remote domains qmgr reports as dead, busy or
 * off their initial concurrency (qmgr/qmgr_dest.c), as a table (nothing
 * when there are none, or qmgr does not answer) or a JSON array
 * "remote_destinations"
 */
static void
ctl_status_dests(struct ctl_json *j)
{
	struct buf path = BUF_INIT, why = BUF_INIT, state = BUF_INIT;
	struct ipc_msg req, reply;
	struct ctl_table t;
	const char *name, *value, *st;
	const char *dom = NULL, *reason = "";
	long long conc = 0, busy = 0, until = 0, now = (long long)time(NULL);
	size_t pos = 0, n = 0;
	bool ok;

	ipc_msg_init(&req);
	ipc_msg_init(&reply);
	ipc_put_str(&req, IPC_REQUEST, "destinations");
	spool_socket_path(&path, var_spool_directory, "qmgr");
	ok = ctl_call(buf_cstr(&path), &req, &reply, CTL_STATUS_TIMEOUT_MS,
	    &why) == 0 && (st = ipc_get_str(&reply, IPC_STATUS)) != NULL &&
	    strcmp(st, "ok") == 0;
	if (j != NULL) {
		ctl_json_key(j, "remote_destinations");
		ctl_json_open(j, '[');
	} else {
		ctl_table_init(&t, 4, (const char *const[]){
		    "REMOTE DESTINATION", "CONCURRENCY", "OUT", "STATE"});
	}
	/* each domain= starts an entry; the one before is complete then */
	while (ok) {
		bool more = ipc_next(&reply, &pos, &name, &value);

		if (dom != NULL && (!more || strcmp(name, IPC_DOMAIN) == 0)) {
			char c[24], b[24];

			if (j != NULL) {
				ctl_json_open(j, '{');
				ctl_json_kstr(j, "domain", dom);
				ctl_json_kint(j, "concurrency", conc);
				ctl_json_kint(j, "busy", busy);
				ctl_json_kbool(j, "dead", until != 0);
				ctl_json_kint(j, "dead_until", until);
				ctl_json_kstr(j, "reason", reason);
				ctl_json_close(j, '}');
			} else {
				buf_reset(&state);
				if (until != 0)
					buf_printf(&state, "dead for %llds: %s",
					    until > now ? until - now : 0,
					    reason);
				else
					buf_puts(&state, "alive");
				snprintf(c, sizeof(c), "%lld", conc);
				snprintf(b, sizeof(b), "%lld", busy);
				ctl_table_add(&t, (const char *const[]){dom, c,
				    b, buf_cstr(&state)});
			}
			n++;
			dom = NULL;
			reason = "";
			conc = busy = until = 0;
		}
		if (!more)
			break;
		if (strcmp(name, IPC_DOMAIN) == 0)
			dom = value;
		else if (strcmp(name, IPC_CONCURRENCY) == 0)
			(void)str_to_ll(value, 0, LLONG_MAX, &conc);
		else if (strcmp(name, IPC_BUSY) == 0)
			(void)str_to_ll(value, 0, LLONG_MAX, &busy);
		else if (strcmp(name, IPC_DEAD_UNTIL) == 0)
			(void)str_to_ll(value, 0, LLONG_MAX, &until);
		else if (strcmp(name, IPC_REASON) == 0)
			reason = value;
	}
	if (j != NULL) {
		ctl_json_close(j, ']');
	} else {
		if (n > 0) {
			printf("\n");
			ctl_table_print(&t, stdout);
		}
		ctl_table_free(&t);
	}
	ipc_msg_free(&req);
	ipc_msg_free(&reply);
	buf_free(&path);
	buf_free(&why);
	buf_free(&state);
}

/* ctl_status_unit_bad - restarting or failing: status exits 1 */
static bool
ctl_status_unit_bad(const struct ctl_unit *u)
{
	return strcmp(u->state, "restarting") == 0 ||
	    strcmp(u->state, "failing") == 0;
}

/* ctl_status_bad - units restarting or failing */
static size_t
ctl_status_bad(const struct ctl_status *st)
{
	size_t n = 0;

	for (size_t i = 0; i < st->nunits; i++)
		if (ctl_status_unit_bad(&st->units[i]))
			n++;
	return n;
}

/* ctl_status_rows - the table rows of one service: a row per process,
 * a "-" row per missing one, or one row when it is off */
static void
ctl_status_rows(struct ctl_table *t, const struct ctl_status *st,
    const char *name, const char *state, long long missing, time_t now)
{
	struct buf up = BUF_INIT;
	char pid[32], count[32];

	for (size_t i = 0; i < st->nprocs; i++) {
		const struct ctl_proc *p = &st->procs[i];

		if (strcmp(p->service, name) != 0)
			continue;
		buf_reset(&up);
		ctl_fmt_duration(&up, now - p->time);
		snprintf(pid, sizeof(pid), "%lld", p->pid);
		snprintf(count, sizeof(count), "%lld", p->count);
		ctl_table_add(t, (const char *const[]){p->service, state, pid,
		    buf_cstr(&up), count});
	}
	for (long long i = 0; i < missing; i++)
		ctl_table_add(t, (const char *const[]){name, state, "-", "-",
		    "-"});
	buf_free(&up);
}

/* ctl_status_text - the running instance for people */
static void
ctl_status_text(const struct ctl_status *st, const long long *counts)
{
	time_t now = time(NULL);
	struct buf up = BUF_INIT;
	struct ctl_table t;
	size_t bad = ctl_status_bad(st);
	char pid[32];

	ctl_fmt_duration(&up, now - st->time);
	if (bad == 0)
		printf("herald is running (pid %lld, up %s)\n", st->pid,
		    buf_cstr(&up));
	else
		printf("herald is degraded: %zu of %zu services not running "
		    "(pid %lld, up %s)\n", bad, st->nunits, st->pid,
		    buf_cstr(&up));
	if (st->config != NULL)
		printf("configuration: %s\n", st->config);
	printf("\n");
	ctl_table_init(&t, 5, (const char *const[]){"SERVICE", "STATE", "PID",
	    "UPTIME", "RESTARTS"});
	snprintf(pid, sizeof(pid), "%lld", st->pid);
	ctl_table_add(&t, (const char *const[]){"master", "running", pid,
	    buf_cstr(&up), "-"});
	for (size_t i = 0; i < st->nunits; i++) {
		const struct ctl_unit *u = &st->units[i];
		long long missing = u->wanted - (long long)u->running;

		if (strcmp(u->state, "off") == 0)
			ctl_table_add(&t, (const char *const[]){u->name,
			    "off", "-", "-", "-"});
		else
			ctl_status_rows(&t, st, u->name, u->state,
			    missing > 0 ? missing : 0, now);
	}
	if (st->nunits == 0)	/* a master without service states */
		for (size_t i = 0; i < st->nprocs; i++)
			if (i == 0 || strcmp(st->procs[i].service,
			    st->procs[i - 1].service) != 0)
				ctl_status_rows(&t, st, st->procs[i].service,
				    "running", 0, now);
	ctl_table_print(&t, stdout);
	ctl_table_free(&t);
	if (bad > 0)
		printf("\n");
	for (size_t i = 0; i < st->nunits; i++) {
		const struct ctl_unit *u = &st->units[i];

		if (!ctl_status_unit_bad(u))
			continue;
		printf("%s: %s (%zu of %lld running, %lld restart%s)%s%s\n",
		    u->name, u->state, u->running, u->wanted, u->count,
		    u->count == 1 ? "" : "s", u->reason ? ": last error: " :
		    "", u->reason ? u->reason : "");
	}
	printf("\n");
	ctl_status_queue_text(counts);
	ctl_status_limits(NULL);
	ctl_status_dests(NULL);
	buf_free(&up);
}

/* ctl_status_json_procs - the processes of service name */
static void
ctl_status_json_procs(struct ctl_json *j, const struct ctl_status *st,
    const char *name, time_t now)
{
	ctl_json_key(j, "processes");
	ctl_json_open(j, '[');
	for (size_t i = 0; i < st->nprocs; i++) {
		const struct ctl_proc *p = &st->procs[i];

		if (strcmp(p->service, name) != 0)
			continue;
		ctl_json_open(j, '{');
		ctl_json_kstr(j, "service", p->service);
		ctl_json_kint(j, "pid", p->pid);
		ctl_json_kint(j, "started", p->time);
		ctl_json_kint(j, "uptime", now - p->time);
		ctl_json_kint(j, "restarts", p->count);
		ctl_json_close(j, '}');
	}
	ctl_json_close(j, ']');
}

/* ctl_status_json - the running instance as one object */
static void
ctl_status_json(const struct ctl_status *st, const long long *counts)
{
	time_t now = time(NULL);
	struct buf out = BUF_INIT;
	struct ctl_json j;

	ctl_json_init(&j, &out);
	ctl_json_open(&j, '{');
	ctl_json_kbool(&j, "running", true);
	ctl_json_kstr(&j, "state", ctl_status_bad(st) ? "degraded" :
	    "running");
	ctl_json_kint(&j, "pid", st->pid);
	ctl_json_kint(&j, "started", st->time);
	ctl_json_kint(&j, "uptime", now - st->time);
	ctl_json_kstr(&j, "config", st->config ? st->config : "");
	ctl_json_key(&j, "services");
	ctl_json_open(&j, '[');
	for (size_t i = 0; i < st->nunits; i++) {
		const struct ctl_unit *u = &st->units[i];

		ctl_json_open(&j, '{');
		ctl_json_kstr(&j, "name", u->name);
		ctl_json_kstr(&j, "state", u->state);
		ctl_json_kint(&j, "wanted", u->wanted);
		ctl_json_kint(&j, "running", (long long)u->running);
		ctl_json_kint(&j, "restarts", u->count);
		ctl_json_kstr(&j, "last_error", u->reason ? u->reason : "");
		ctl_status_json_procs(&j, st, u->name, now);
		ctl_json_close(&j, '}');
	}
	ctl_json_close(&j, ']');
	ctl_status_queue_json(&j, counts);
	ctl_status_limits(&j);
	ctl_status_dests(&j);
	ctl_json_close(&j, '}');
	ctl_json_print(&out);
	buf_free(&out);
}

/* ctl_status - services and queue counts */
int
ctl_status(struct ctl *ctl, const struct ctl_args *a)
{
	long long counts[CTL_QUEUE_NCOUNT];
	struct buf why = BUF_INIT, out = BUF_INIT;
	struct ipc_msg reply;
	struct ctl_status st;
	struct ctl_json j;
	int r, rc = CTL_EXIT_FAIL;

	ctl_queue_count(var_spool_directory, counts);
	ipc_msg_init(&reply);
	r = ctl_master_call("status", &reply, CTL_STATUS_TIMEOUT_MS, &why);
	if (r == CTL_CALL_NOT_RUNNING) {
		if (ctl->json) {
			ctl_json_init(&j, &out);
			ctl_json_open(&j, '{');
			ctl_json_kbool(&j, "running", false);
			ctl_status_queue_json(&j, counts);
			ctl_json_close(&j, '}');
			ctl_json_print(&out);
		} else {
			printf("herald is not running\n\n");
			ctl_status_queue_text(counts);
		}
		rc = CTL_EXIT_NOT_RUNNING;
	} else if (r < 0 || ctl_status_parse(&reply, &st, &why) < 0) {
		ctl_error("status: %s", buf_cstr(&why));
	} else {
		if (ctl->json)
			ctl_status_json(&st, counts);
		else
			ctl_status_text(&st, counts);
		/* LSB: 0 all running, 1 degraded (3: not running) */
		rc = ctl_status_bad(&st) ? CTL_EXIT_FAIL : CTL_EXIT_OK;
		ctl_status_free(&st);
	}
	ipc_msg_free(&reply);
	buf_free(&why);
	buf_free(&out);
	return rc;
}
