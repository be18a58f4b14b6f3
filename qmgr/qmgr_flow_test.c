/*
 * qmgr_flow_test - messages through the real qmgr code and event loop,
 * against a fake local agent (a child process on <spool>/private/local)
 * that answers as told: deliver, bounce, die, hang, or answer for the
 * wrong recipients. Checks what is left in the spool afterwards: files
 * removed, deferred with the right statuses and retry time, notifications
 * created, corrupt files set aside, deletes during delivery.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/evloop.h"
#include "base/mem.h"
#include "base/sock.h"
#include "base/test.h"
#include "mail/dir.h"
#include "mail/ipc.h"
#include "mail/job.h"
#include "mail/params.h"
#include "mail/qfile.h"
#include "mail/qid.h"
#include "mail/spool.h"
#include "qmgr.h"

enum agent_mode {
	AGENT_DELIVER,		/* every recipient delivered */
	AGENT_BOUNCE,		/* every recipient bounced 5.1.1 */
	AGENT_DIE,		/* close the connection instead of a reply */
	AGENT_HANG,		/* never reply */
	AGENT_WRONG,		/* reply for other recipient indexes */
	AGENT_TRICKLE,		/* deliver, reply one byte at a time */
	AGENT_REMOTE_DEFER,	/* defer each: "N recipient(s) for DOMAIN" */
	AGENT_RELAYED,		/* deliver each to a server without DSN */
	AGENT_CONN_FAIL,	/* conn_failed=1, each deferred; counted */
	AGENT_FORWARD,		/* deliver each; fwd@ ones forward=1 too */
};

static char tmpdir[] = "/tmp/herald-qmgr-flow-XXXXXX";
static char spool[300];
static pid_t agent_pid = -1;
static char agent_sock[400];	/* the socket agent_pid listens on */
static pid_t remote_pid = -1;	/* a second one on private/remote */
static char remote_sock[400];
static int case_no;
static char count_path[400];	/* AGENT_CONN_FAIL adds a byte a request */

/* agent_serve - the fake agent's side of one connection */
static void
agent_serve(int conn, enum agent_mode mode)
{
	struct ipc_msg req, reply;
	struct buf why = BUF_INIT;
	const char *name, *value;
	int fd;

	ipc_msg_init(&req);
	ipc_msg_init(&reply);
	while (ipc_recv(conn, &req, &fd, -1, &why) == 1) {
		size_t pos = 0, nrcpt = 0;
		char text[200];
		struct qfile *qf = NULL;

		if (fd < 0)
			_exit(3);	/* qmgr must attach the queue file */
		if ((mode == AGENT_REMOTE_DEFER || mode == AGENT_FORWARD) &&
		    qfile_read(fd, &qf, &why) < 0)
			_exit(4);
		close(fd);
		while (ipc_next(&req, &pos, &name, &value))
			if (strcmp(name, IPC_RCPT_INDEX) == 0)
				nrcpt++;
		pos = 0;
		if (mode == AGENT_DIE)
			break;
		if (mode == AGENT_CONN_FAIL) {
			int cfd = open(count_path, O_WRONLY | O_APPEND |
			    O_CREAT, 0600);

			if (cfd < 0 || write(cfd, "r", 1) != 1)
				_exit(5);
			close(cfd);
		}
		if (mode == AGENT_HANG) {
			pause();
			_exit(0);
		}
		ipc_msg_reset(&reply);
		ipc_put_str(&reply, IPC_STATUS, "ok");
		if (mode == AGENT_CONN_FAIL)
			ipc_put_str(&reply, IPC_CONN_FAILED, "1");
		while (ipc_next(&req, &pos, &name, &value)) {
			if (strcmp(name, IPC_RCPT_INDEX) != 0)
				continue;
			if (mode == AGENT_WRONG)
				ipc_put_str(&reply, IPC_RCPT_INDEX, "7");
			else
				ipc_put_str(&reply, IPC_RCPT_INDEX, value);
			if (mode == AGENT_REMOTE_DEFER) {
				snprintf(text, sizeof(text), "%zu recipient(s) "
				    "for %s", nrcpt, strchr(qf->rcpt[
				    atoi(value)].addr, '@') + 1);
				ipc_put_str(&reply, IPC_RESULT, "deferred");
				ipc_put_str(&reply, IPC_DSN_CODE, "4.4.1");
				ipc_put_str(&reply, IPC_REASON, text);
			} else if (mode == AGENT_CONN_FAIL) {
				ipc_put_str(&reply, IPC_RESULT, "deferred");
				ipc_put_str(&reply, IPC_DSN_CODE, "4.4.1");
				ipc_put_str(&reply, IPC_REASON, "connect to "
				    "mx.down.test[192.0.2.1]:25: Connection "
				    "refused");
			} else if (mode == AGENT_BOUNCE) {
				ipc_put_str(&reply, IPC_RESULT, "bounced");
				ipc_put_str(&reply, IPC_DSN_CODE, "5.1.1");
				ipc_put_str(&reply, IPC_REASON, "unknown user");
			} else {
				ipc_put_str(&reply, IPC_RESULT, "delivered");
				ipc_put_str(&reply, IPC_DSN_CODE, "2.0.0");
				ipc_put_str(&reply, IPC_REASON,
				    "delivered to maildir");
				if (mode == AGENT_RELAYED)
					ipc_put_str(&reply, IPC_RELAYED, "1");
				if (mode == AGENT_FORWARD && strncmp(qf->rcpt[
				    atoi(value)].addr, "fwd@", 4) == 0)
					ipc_put_str(&reply, IPC_FORWARD, "1");
			}
		}
		if (mode == AGENT_TRICKLE) {
			struct buf frame = BUF_INIT;

			ipc_frame_encode(&reply, &frame);
			for (size_t i = 0; i < frame.len; i++) {
				if (send(conn, frame.data + i, 1,
				    MSG_NOSIGNAL) != 1)
					break;
				usleep(500);
			}
			buf_free(&frame);
			continue;
		}
		if (qf != NULL)
			qfile_free(&qf);
		if (ipc_send(conn, &reply, -1, 5000, &why) < 0)
			break;
	}
	close(conn);
}

static void agent_stop(void);
static void agent_kill(pid_t *pid, char *sock);

/* agent_start - a fake agent process on private/local (an agent left by
 * a failed case is stopped first) */
static void
agent_start_on(const char *service, enum agent_mode mode, pid_t *pid_r,
    char *sock, size_t size)
{
	struct buf path = BUF_INIT, why = BUF_INIT;
	int lfd;
	pid_t child;

	spool_socket_path(&path, spool, service);
	snprintf(sock, size, "%s", path.data);
	lfd = sock_listen_unix(path.data, 0600, 16, &why);
	if (lfd < 0) {
		fprintf(stderr, "listen: %s\n", why.data);
		exit(1);
	}
	child = fork();
	if (child < 0) {
		perror("fork");
		exit(1);
	}
	if (child == 0) {
		/* one process per connection, like master's local agents;
		 * one process group, so agent_stop() ends them all */
		(void)setpgid(0, 0);
		(void)signal(SIGCHLD, SIG_IGN);
		(void)sock_set_nonblock(lfd, false);
		for (;;) {
			int conn = accept(lfd, NULL, NULL);
			pid_t pid;

			if (conn < 0 && errno == EINTR)
				continue;
			if (conn < 0)
				_exit(2);
			if ((pid = fork()) == 0) {
				close(lfd);
				agent_serve(conn, mode);
				_exit(0);
			}
			close(conn);
		}
	}
	(void)setpgid(child, child);
	*pid_r = child;
	close(lfd);
	buf_free(&path);
	buf_free(&why);
}

/* agent_start - the fake local agent (every fake agent left by a failed
 * case is stopped first) */
static void
agent_start(enum agent_mode mode)
{
	agent_stop();
	agent_start_on("local", mode, &agent_pid, agent_sock,
	    sizeof(agent_sock));
}

/* remote_start - a fake remote agent beside the local one (one left by
 * a failed case is stopped first) */
static void
remote_start(enum agent_mode mode)
{
	agent_kill(&remote_pid, remote_sock);
	agent_start_on("remote", mode, &remote_pid, remote_sock,
	    sizeof(remote_sock));
}

/* agent_kill - kill one fake agent (its whole process group) and
 * remove its socket */
static void
agent_kill(pid_t *pid, char *sock)
{
	if (*pid > 0) {
		kill(-*pid, SIGKILL);
		(void)waitpid(*pid, NULL, 0);
		*pid = -1;
	}
	if (sock[0] != '\0')
		(void)unlink(sock);
	sock[0] = '\0';
}

/* agent_stop - kill the fake local and remote agents */
static void
agent_stop(void)
{
	agent_kill(&agent_pid, agent_sock);
	agent_kill(&remote_pid, remote_sock);
}

/* fresh - a new spool and qmgr state on a new loop */
static struct qmgr *
fresh(void)
{
	struct buf why = BUF_INIT;
	struct dir *keep;

	snprintf(spool, sizeof(spool), "%s/spool%d", tmpdir, ++case_no);
	if (spool_setup(spool, (uid_t)-1, (gid_t)-1, &why) < 0) {
		fprintf(stderr, "spool_setup: %s\n", why.data);
		exit(1);
	}
	buf_free(&why);
	/* one LMDB environment per process: keep the handle across cases */
	keep = qmgr.dir;
	qmgr_state_init(&qmgr, NULL, evloop_new(), spool);
	qmgr.dir = keep;
	return &qmgr;
}

/* done - tear down the state: agents, timers, loop */
static void
done(struct qmgr *q)
{
	struct qmgr_msg *m;

	q->stopping = true;
	qmgr_deliver_stop(q);
	while (q->agents != NULL) {
		/* busy ones (a hung agent): drop without waiting */
		struct qmgr_agent *a = q->agents;

		q->agents = a->next;
		evloop_cancel_timer(q->loop, &a->timer);
		evloop_del_fd(q->loop, a->fd);
		close(a->fd);
		buf_free(&a->out);
		buf_free(&a->in);
		x_free(&a);
	}
	while ((m = qmgr_run_pop(q)) != NULL)
		qmgr_msg_forget(q, m);
	evloop_cancel_timer(q->loop, &q->pump_timer);
	evloop_cancel_timer(q->loop, &q->due_timer);
	evloop_cancel_timer(q->loop, &q->scan_timer);
	evloop_free(&q->loop);
	x_free(&q->hash);
	qmgr_dest_free_all(q);
	agent_stop();
}

static bool run_timed_out;

static long long
run_watch(struct evloop *loop, void *ctx)
{
	struct qmgr *q = ctx;

	if (q->nactive == 0)
		evloop_stop(loop);
	return 10;
}

static long long
run_deadline(struct evloop *loop, void *ctx)
{
	run_timed_out = true;
	evloop_stop(loop);
	return -1;
}

/* run - the loop until nothing is active, or ms passed (then false) */
static bool
run(struct qmgr *q, long long ms)
{
	struct ev_timer *w, *d;

	run_timed_out = false;
	w = evloop_add_timer(q->loop, 10, run_watch, q);
	d = evloop_add_timer(q->loop, ms, run_deadline, q);
	(void)evloop_run(q->loop);
	evloop_cancel_timer(q->loop, &w);
	if (!run_timed_out)
		evloop_cancel_timer(q->loop, &d);
	return !run_timed_out;
}

/* enqueue_dsn - a queue file in incoming/ with NOTIFY lists (NULL: none)
 * and a bounce attribute (NULL: none), activated like a trigger does */
static void
enqueue_dsn(struct qmgr *q, time_t arrival, const char *sender,
    const char *const *rcpts, const char *const *notify, const char *bounce,
    char qid[QID_SIZE])
{
	struct qfile_writer *w;
	struct buf why = BUF_INIT;
	const char *msg = "Subject: flow\r\nFrom: s@remote.test\r\n\r\n"
	    "body\r\n";

	if (qfile_writer_new(spool, &w, &why) < 0) {
		fprintf(stderr, "writer: %s\n", why.data);
		exit(1);
	}
	qfile_writer_start(w, arrival, sender);
	if (bounce != NULL)
		qfile_writer_attr(w, QFILE_A_BOUNCE, bounce);
	for (size_t i = 0; rcpts[i] != NULL; i++)
		qfile_writer_rcpt(w, rcpts[i], "", notify ? notify[i] : "");
	qfile_writer_begin_body(w);
	qfile_writer_body(w, msg, strlen(msg));
	qid_new(qid);
	if (qfile_writer_finish(w, &why) < 0 ||
	    qfile_writer_sync(w, &why) < 0 ||
	    qfile_writer_link(w, qid, &why) < 0) {
		fprintf(stderr, "writer: %s\n", why.data);
		exit(1);
	}
	qfile_writer_free(&w);
	buf_free(&why);
	(void)qmgr_activate(q, SPOOL_INCOMING, qid);
}

/* enqueue - a queue file in incoming/, activated like a trigger does */
static void
enqueue(struct qmgr *q, time_t arrival, const char *sender,
    const char *const *rcpts, char qid[QID_SIZE])
{
	enqueue_dsn(q, arrival, sender, rcpts, NULL, NULL, qid);
}

/* open_in - read folder/qid back; NULL if it is not there */
static struct qfile *
open_in(const char *folder, const char *qid, struct stat *st)
{
	struct buf path = BUF_INIT, why = BUF_INIT;
	struct qfile *qf = NULL;
	int fd;

	spool_path(&path, spool, folder, qid);
	fd = open(path.data, O_RDONLY);
	buf_free(&path);
	if (fd < 0)
		return NULL;
	if (st != NULL)
		(void)fstat(fd, st);
	if (qfile_read(fd, &qf, &why) < 0)
		qf = NULL;
	close(fd);
	buf_free(&why);
	return qf;
}

/* count_files - queue files in a folder (deferred: all of deferred/ *) */
static int
count_files(const char *folder)
{
	char cmdpath[600];
	int n = 0;

	if (strcmp(folder, SPOOL_DEFERRED) == 0) {
		for (const char *h = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"; *h;
		    h++) {
			char sub[64];

			snprintf(sub, sizeof(sub), "%s/%c", SPOOL_DEFERRED, *h);
			n += count_files(sub);
		}
		return n;
	}
	snprintf(cmdpath, sizeof(cmdpath), "%s/%s", spool, folder);
	{
		DIR *d = opendir(cmdpath);
		struct dirent *de;

		if (d == NULL)
			return 0;
		while ((de = readdir(d)) != NULL)
			if (qid_valid(de->d_name))
				n++;
		closedir(d);
	}
	return n;
}

/* only_deferred - the qid of the one file in deferred/ */
static bool
only_deferred(char qid[QID_SIZE])
{
	for (const char *h = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"; *h; h++) {
		char sub[700];
		DIR *d;
		struct dirent *de;

		snprintf(sub, sizeof(sub), "%s/%s/%c", spool, SPOOL_DEFERRED,
		    *h);
		if ((d = opendir(sub)) == NULL)
			continue;
		while ((de = readdir(d)) != NULL) {
			if (qid_valid(de->d_name)) {
				memcpy(qid, de->d_name, QID_SIZE);
				closedir(d);
				return true;
			}
		}
		closedir(d);
	}
	return false;
}

static void
test_all_delivered(void)
{
	struct qmgr *q = fresh();
	const char *const rcpts[] = {"alice@example.org", "bob@example.org",
	    NULL};
	char qid[QID_SIZE];

	agent_start(AGENT_DELIVER);
	enqueue(q, time(NULL), "s@remote.test", rcpts, qid);
	T_ASSERT(run(q, 5000));
	T_EQ_INT(count_files(SPOOL_ACTIVE), 0);
	T_EQ_INT(count_files(SPOOL_INCOMING), 0);
	T_EQ_INT(count_files(SPOOL_DEFERRED), 0);
	done(q);
}

static void
test_trickle(void)
{
	struct qmgr *q = fresh();
	const char *const rcpts[] = {"alice@example.org", "bob@example.org",
	    NULL};
	char qid[QID_SIZE];

	agent_start(AGENT_TRICKLE);
	enqueue(q, time(NULL), "s@remote.test", rcpts, qid);
	T_ASSERT(run(q, 5000));
	T_EQ_INT(count_files(SPOOL_ACTIVE), 0);
	T_EQ_INT(count_files(SPOOL_DEFERRED), 0);
	done(q);
}

/* remote recipients: one request per domain, whatever the case */
static void
test_remote_per_domain(void)
{
	struct qmgr *q = fresh();
	const char *const rcpts[] = {"x@remote.test", "y@other.test",
	    "z@REMOTE.test", "alice@example.org", NULL};
	char qid[QID_SIZE];
	struct qfile *qf;
	struct qfile_note *notes;
	struct buf why = BUF_INIT, path = BUF_INIT;
	size_t n;

	agent_start(AGENT_DELIVER);
	remote_start(AGENT_REMOTE_DEFER);
	enqueue(q, time(NULL), "s@remote.test", rcpts, qid);
	T_ASSERT(run(q, 5000));
	qf = open_in(SPOOL_DEFERRED, qid, NULL);
	T_ASSERT(qf != NULL);
	T_EQ_INT(qf->rcpt[3].status, QFILE_DELIVERED);
	spool_path(&path, spool, SPOOL_DEFERRED, qid);
	qf->fd = open(path.data, O_RDONLY);
	buf_free(&path);
	T_ASSERT(qf->fd >= 0);
	T_EQ_INT(qfile_notes_read(qf, &notes, &n, &why), 0);
	close(qf->fd);
	T_EQ_INT(n, 3);
	T_EQ_STR(notes[0].text, "2 recipient(s) for remote.test");
	T_EQ_STR(notes[1].text, "1 recipient(s) for other.test");
	T_EQ_STR(notes[2].text, "2 recipient(s) for REMOTE.test");
	qfile_notes_free(&notes, n);
	qfile_free(&qf);
	buf_free(&why);
	done(q);
}

static void
test_partly_deferred(void)
{
	struct qmgr *q = fresh();
	const char *const rcpts[] = {"alice@example.org", "x@remote.test",
	    "bob@Example.ORG", NULL};
	char qid[QID_SIZE];
	struct qfile *qf;
	struct stat st;
	time_t now = time(NULL);

	agent_start(AGENT_DELIVER);
	remote_start(AGENT_REMOTE_DEFER);
	enqueue(q, now, "s@remote.test", rcpts, qid);
	T_ASSERT(run(q, 5000));
	T_EQ_INT(count_files(SPOOL_ACTIVE), 0);
	qf = open_in(SPOOL_DEFERRED, qid, &st);
	T_ASSERT(qf != NULL);
	T_EQ_INT(qf->rcpt[0].status, QFILE_DELIVERED);
	T_EQ_INT(qf->rcpt[1].status, QFILE_QUEUED);
	T_EQ_INT(qf->rcpt[2].status, QFILE_DELIVERED);
	/* next retry: minimal_backoff_time from now */
	T_ASSERT(st.st_mtime >= now + 300 && st.st_mtime <= time(NULL) + 300);
	/* the deferred recipient's reason is kept for heraldctl queue */
	{
		struct qfile_note *notes;
		struct buf why = BUF_INIT;
		size_t n;
		struct buf path = BUF_INIT;

		/* open_in closed its descriptor */
		spool_path(&path, spool, SPOOL_DEFERRED, qid);
		qf->fd = open(path.data, O_RDONLY);
		buf_free(&path);
		T_ASSERT(qf->fd >= 0);
		T_EQ_INT(qfile_notes_read(qf, &notes, &n, &why), 0);
		close(qf->fd);
		T_EQ_INT(n, 1);
		T_EQ_INT(notes[0].idx, 1);
		T_EQ_STR(notes[0].dsn, "4.4.1");
		T_EQ_STR(notes[0].text, "1 recipient(s) for remote.test");
		T_ASSERT(notes[0].when >= now && notes[0].when <= time(NULL));
		qfile_notes_free(&notes, n);
		buf_free(&why);
	}
	qfile_free(&qf);
	/* the retry: only the remote recipient is left; still deferred */
	(void)qmgr_activate(q, SPOOL_DEFERRED, qid);
	T_ASSERT(run(q, 5000));
	qf = open_in(SPOOL_DEFERRED, qid, NULL);
	T_ASSERT(qf != NULL);
	T_EQ_INT(qf->rcpt[1].status, QFILE_QUEUED);
	qfile_free(&qf);
	done(q);
}

static void
test_bounce_notifies(void)
{
	struct qmgr *q = fresh();
	const char *const rcpts[] = {"alice@example.org", NULL};
	char qid[QID_SIZE], dsn_qid[QID_SIZE];
	struct qfile *qf;

	agent_start(AGENT_BOUNCE);
	enqueue(q, time(NULL), "s@remote.test", rcpts, qid);
	T_ASSERT(run(q, 5000));
	T_EQ_INT(count_files(SPOOL_ACTIVE), 0);
	T_EQ_INT(count_files(SPOOL_INCOMING), 0);
	/* the original is gone; the notification waits for "remote" */
	T_EQ_INT(count_files(SPOOL_DEFERRED), 1);
	T_ASSERT(only_deferred(dsn_qid));
	T_ASSERT(strcmp(dsn_qid, qid) != 0);
	qf = open_in(SPOOL_DEFERRED, dsn_qid, NULL);
	T_ASSERT(qf != NULL);
	T_EQ_STR(qf->sender, "");
	T_EQ_STR(qfile_attr(qf, QFILE_A_BOUNCE), "1");
	T_EQ_STR(qf->rcpt[0].addr, "s@remote.test");
	qfile_free(&qf);
	done(q);
}

/* finishing - qid's message is open with no request out: it finishes,
 * and waits for something off the loop (a finish done in one go on the
 * loop is never seen so) */
static bool
finishing(struct qmgr *q, const char *qid)
{
	struct qmgr_msg *msg = qmgr_msg_find(q, qid);

	return msg != NULL && msg->open && msg->jobs == 0;
}

/* run_finishing - the loop until qid's message finishes, at most ms */
static bool
run_finishing(struct qmgr *q, const char *qid, long long ms)
{
	for (long long t = 0; t < ms && !finishing(q, qid); t += 20)
		(void)run(q, 20);
	return finishing(q, qid);
}

/* run_gone - the loop until qid's message has left, at most ms */
static bool
run_gone(struct qmgr *q, const char *qid, long long ms)
{
	for (long long t = 0; t < ms && qmgr_msg_find(q, qid) != NULL;
	    t += 20)
		(void)run(q, 20);
	return qmgr_msg_find(q, qid) == NULL;
}

/* signer_silent - a signer socket that takes connections and never
 * answers; its descriptor (close it to end) */
static int
signer_silent(void)
{
	struct buf path = BUF_INIT, why = BUF_INIT;
	int fd;

	spool_socket_path(&path, spool, "signer");
	fd = sock_listen_unix(path.data, 0600, 16, &why);
	if (fd < 0) {
		fprintf(stderr, "listen: %s\n", why.data);
		exit(1);
	}
	buf_free(&path);
	buf_free(&why);
	return fd;
}

/* deferred_has - does the one file in deferred/ hold text? */
static bool
deferred_has(const char *text)
{
	char qid[QID_SIZE], path[700], chunk[4096];
	struct buf data = BUF_INIT;
	ssize_t n;
	bool r;
	int fd;

	if (!only_deferred(qid))
		return false;
	snprintf(path, sizeof(path), "%s/%s/%c/%s", spool, SPOOL_DEFERRED,
	    qid[QID_LEN - 1], qid);
	if ((fd = open(path, O_RDONLY)) < 0)
		return false;
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		buf_append(&data, chunk, (size_t)n);
	close(fd);
	r = data.len > 0 && memmem(data.data, data.len, text,
	    strlen(text)) != NULL;
	buf_free(&data);
	return r;
}

/* a signer that never answers holds up only the notification: a message
 * finished after it goes first, the bounced one stays in active/ until
 * its notification, unsigned after the deadline, is in the queue */
static void
test_silent_signer(void)
{
	struct qmgr *q = fresh();
	const char *const rcpts[] = {"alice@example.org", NULL};
	char qid[QID_SIZE], other[QID_SIZE];
	struct qmgr_msg *msg;
	long long timeout = var_signer_timeout;
	int sfd = signer_silent();

	var_signer_timeout = 2;
	agent_start(AGENT_BOUNCE);
	enqueue(q, time(NULL), "s@remote.test", rcpts, qid);
	/* waiting for the signer: open, no notification yet */
	T_ASSERT(run_finishing(q, qid, 5000));
	msg = qmgr_msg_find(q, qid);
	T_ASSERT(msg != NULL && msg->open && msg->jobs == 0);
	T_EQ_INT(count_files(SPOOL_INCOMING), 0);
	T_EQ_INT(count_files(SPOOL_DEFERRED), 0);
	/* meanwhile another message goes all the way */
	enqueue(q, time(NULL), "", rcpts, other);
	T_ASSERT(run_gone(q, other, 1500));
	T_ASSERT(qmgr_msg_find(q, qid) != NULL);
	/* the deadline passes: unsigned, queued, the original gone */
	T_ASSERT(run(q, 5000));
	T_EQ_INT(count_files(SPOOL_ACTIVE), 0);
	T_EQ_INT(count_files(SPOOL_DEFERRED), 1);
	T_ASSERT(deferred_has("multipart/report"));
	T_ASSERT(!deferred_has("DKIM-Signature"));
	var_signer_timeout = timeout;
	close(sfd);
	done(q);
}

/* a storm of bounces with a silent signer: their finishing messages do
 * not hold the open slots (qmgr_open_limit: 8 here), so a message behind
 * twelve of them is opened and delivered while they wait */
static void
test_bounce_storm_frees_slots(void)
{
	struct qmgr *q = fresh();
	const char *const rcpts[] = {"alice@example.org", NULL};
	char qid[12][QID_SIZE], other[QID_SIZE];
	long long timeout = var_signer_timeout;
	int sfd = signer_silent(), waiting = 0;

	var_signer_timeout = 2;
	agent_start(AGENT_BOUNCE);
	for (int i = 0; i < 12; i++)
		enqueue(q, time(NULL), "s@remote.test", rcpts, qid[i]);
	enqueue(q, time(NULL), "", rcpts, other);
	T_ASSERT(run_gone(q, other, 1500));
	for (int i = 0; i < 12; i++)
		if (qmgr_msg_find(q, qid[i]) != NULL)
			waiting++;
	T_ASSERT(waiting > 0);
	T_EQ_INT(count_files(SPOOL_DEFERRED), 0);
	T_ASSERT(run(q, 8000));
	T_EQ_INT(count_files(SPOOL_ACTIVE), 0);
	T_EQ_INT(count_files(SPOOL_DEFERRED), 12);
	T_EQ_INT(q->nopen, 0);
	T_EQ_INT(q->nfinishing, 0);
	var_signer_timeout = timeout;
	close(sfd);
	done(q);
}

/* an operator delete while the notification waits for the signer: the
 * notification is queued, then the original removed */
static void
test_delete_while_signing(void)
{
	struct qmgr *q = fresh();
	const char *const rcpts[] = {"alice@example.org", NULL};
	char qid[QID_SIZE];
	long long timeout = var_signer_timeout;
	int sfd = signer_silent();

	var_signer_timeout = 2;
	agent_start(AGENT_BOUNCE);
	enqueue(q, time(NULL), "s@remote.test", rcpts, qid);
	T_ASSERT(run_finishing(q, qid, 5000));
	T_EQ_INT(qmgr_delete(q, qid), 0);
	T_ASSERT(run(q, 5000));
	T_EQ_INT(count_files(SPOOL_ACTIVE), 0);
	T_EQ_INT(count_files(SPOOL_DEFERRED), 1);
	T_ASSERT(deferred_has("multipart/report"));
	var_signer_timeout = timeout;
	close(sfd);
	done(q);
}

static void
test_bounce_null_sender(void)
{
	struct qmgr *q = fresh();
	const char *const rcpts[] = {"alice@example.org", NULL};
	char qid[QID_SIZE];

	agent_start(AGENT_BOUNCE);
	enqueue(q, time(NULL), "", rcpts, qid);
	T_ASSERT(run(q, 5000));
	T_EQ_INT(count_files(SPOOL_ACTIVE), 0);
	T_EQ_INT(count_files(SPOOL_INCOMING), 0);
	T_EQ_INT(count_files(SPOOL_DEFERRED), 0);
	done(q);
}

/* other_deferred - the one deferred file that is not qid, read with its
 * body into *body; NULL if there is none */
static struct qfile *
other_deferred(const char *qid, char other[QID_SIZE], struct buf *body)
{
	struct qfile *qf = NULL;
	struct buf path = BUF_INIT;
	int fd;

	for (const char *h = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"; *h; h++) {
		char sub[700];
		DIR *d;
		struct dirent *de;

		snprintf(sub, sizeof(sub), "%s/%s/%c", spool, SPOOL_DEFERRED,
		    *h);
		if ((d = opendir(sub)) == NULL)
			continue;
		while ((de = readdir(d)) != NULL)
			if (qid_valid(de->d_name) &&
			    strcmp(de->d_name, qid) != 0)
				memcpy(other, de->d_name, QID_SIZE);
		closedir(d);
	}
	if (!qid_valid(other))
		return NULL;
	spool_path(&path, spool, SPOOL_DEFERRED, other);
	fd = open(path.data, O_RDONLY);
	buf_free(&path);
	if (fd < 0 || qfile_read(fd, &qf, body) < 0)
		return NULL;
	buf_reset(body);
	buf_reserve(body, (size_t)qf->body_size);
	if (pread(fd, body->data, (size_t)qf->body_size, qf->body_off) !=
	    qf->body_size)
		abort();
	body->len = (size_t)qf->body_size;
	body->data[body->len] = '\0';
	close(fd);
	return qf;
}

/* a message deferred past delay_warning_time: one warning, once, for the
 * recipients whose NOTIFY asks for DELAY or is absent */
static void
test_delay_warning(void)
{
	struct qmgr *q = fresh();
	const char *const rcpts[] = {"alice@example.org", "x@remote.test",
	    "y@remote.test", "z@remote.test", NULL};
	const char *const notify[] = {"", "", "FAILURE", "DELAY,FAILURE",
	    NULL};
	char qid[QID_SIZE], wqid[QID_SIZE] = "";
	struct buf body = BUF_INIT;
	struct qfile *qf;

	agent_start(AGENT_DELIVER);
	remote_start(AGENT_REMOTE_DEFER);
	enqueue_dsn(q, time(NULL) - 5 * 3600, "s@remote.test", rcpts, notify,
	    NULL, qid);
	T_ASSERT(run(q, 5000));
	qf = open_in(SPOOL_DEFERRED, qid, NULL);
	T_ASSERT(qf != NULL);
	T_EQ_INT(qf->rcpt[0].status, QFILE_DELIVERED);
	T_EQ_INT(qf->rcpt[1].status, QFILE_QUEUED);
	T_ASSERT(qf->rcpt[1].warned);
	T_ASSERT(!qf->rcpt[2].warned);
	T_ASSERT(qf->rcpt[3].warned);
	qfile_free(&qf);
	/* the warning: to the sender, waiting for "remote" too */
	T_EQ_INT(count_files(SPOOL_DEFERRED), 2);
	qf = other_deferred(qid, wqid, &body);
	T_ASSERT(qf != NULL);
	T_EQ_STR(qf->sender, "");
	T_EQ_STR(qfile_attr(qf, QFILE_A_BOUNCE), "1");
	T_EQ_STR(qf->rcpt[0].addr, "s@remote.test");
	T_ASSERT(strstr(body.data, "Subject: Delayed Mail (still being "
	    "retried)\r\n") != NULL);
	T_ASSERT(strstr(body.data, "Final-Recipient: rfc822; x@remote.test\r\n"
	    "Action: delayed\r\nStatus: 4.4.1\r\n") != NULL);
	T_ASSERT(strstr(body.data, "Final-Recipient: rfc822; z@remote.test\r\n"
	    "Action: delayed\r\n") != NULL);
	T_ASSERT(strstr(body.data, "y@remote.test") == NULL);
	T_ASSERT(strstr(body.data, "alice@") == NULL);
	T_ASSERT(strstr(body.data, "Will-Retry-Until: ") != NULL);
	qfile_free(&qf);
	/* the retry defers again: no second warning */
	(void)qmgr_activate(q, SPOOL_DEFERRED, qid);
	T_ASSERT(run(q, 5000));
	T_EQ_INT(count_files(SPOOL_DEFERRED), 2);
	qf = open_in(SPOOL_DEFERRED, qid, NULL);
	T_ASSERT(qf != NULL && qf->rcpt[1].warned);
	qfile_free(&qf);
	buf_free(&body);
	done(q);
}

/* too young for a warning, or warnings off: none */
static void
test_delay_warning_not_yet(void)
{
	struct qmgr *q = fresh();
	const char *const rcpts[] = {"x@remote.test", NULL};
	char qid[QID_SIZE];
	struct qfile *qf;

	remote_start(AGENT_REMOTE_DEFER);
	enqueue(q, time(NULL) - 3 * 3600, "s@remote.test", rcpts, qid);
	T_ASSERT(run(q, 5000));
	T_EQ_INT(count_files(SPOOL_DEFERRED), 1);
	done(q);
	/* old enough, but warnings are off */
	var_delay_warning_time = 0;
	q = fresh();
	remote_start(AGENT_REMOTE_DEFER);
	enqueue(q, time(NULL) - 5 * 3600, "s@remote.test", rcpts, qid);
	T_ASSERT(run(q, 5000));
	T_EQ_INT(count_files(SPOOL_DEFERRED), 1);
	qf = open_in(SPOOL_DEFERRED, qid, NULL);
	T_ASSERT(qf != NULL && !qf->rcpt[0].warned);
	qfile_free(&qf);
	var_delay_warning_time = 4 * 3600;
	done(q);
}

/* NOTIFY=SUCCESS on a local delivery: one report for all such */
static void
test_success_notify(void)
{
	struct qmgr *q = fresh();
	const char *const rcpts[] = {"alice@example.org", "bob@example.org",
	    "carol@example.org", NULL};
	const char *const notify[] = {"SUCCESS", "", "SUCCESS,FAILURE", NULL};
	char qid[QID_SIZE], sqid[QID_SIZE] = "";
	struct buf body = BUF_INIT;
	struct qfile *qf;

	agent_start(AGENT_DELIVER);
	enqueue_dsn(q, time(NULL), "s@remote.test", rcpts, notify, NULL, qid);
	T_ASSERT(run(q, 5000));
	T_EQ_INT(count_files(SPOOL_ACTIVE), 0);
	/* the original is gone; the report waits for "remote" */
	T_EQ_INT(count_files(SPOOL_DEFERRED), 1);
	qf = other_deferred(qid, sqid, &body);
	T_ASSERT(qf != NULL);
	T_EQ_STR(qf->sender, "");
	T_EQ_STR(qfile_attr(qf, QFILE_A_BOUNCE), "1");
	T_EQ_STR(qf->rcpt[0].addr, "s@remote.test");
	T_ASSERT(strstr(body.data, "Final-Recipient: rfc822; "
	    "alice@example.org\r\nAction: delivered\r\nStatus: 2.0.0\r\n")
	    != NULL);
	T_ASSERT(strstr(body.data, "Final-Recipient: rfc822; "
	    "carol@example.org\r\nAction: delivered\r\n") != NULL);
	T_ASSERT(strstr(body.data, "bob@") == NULL);
	qfile_free(&qf);
	buf_free(&body);
	done(q);
}

/* NOTIFY=SUCCESS relayed to a server without DSN: Action: relayed */
static void
test_success_relayed(void)
{
	struct qmgr *q = fresh();
	const char *const rcpts[] = {"x@far.test", "y@far.test", NULL};
	const char *const notify[] = {"SUCCESS", "FAILURE", NULL};
	char qid[QID_SIZE], sqid[QID_SIZE] = "";
	struct buf body = BUF_INIT;
	struct qfile *qf;

	/* the sender is local: the report goes to the local agent */
	agent_start(AGENT_REMOTE_DEFER);
	remote_start(AGENT_RELAYED);
	enqueue_dsn(q, time(NULL), "s@example.org", rcpts, notify, NULL,
	    qid);
	T_ASSERT(run(q, 5000));
	T_EQ_INT(count_files(SPOOL_ACTIVE), 0);
	T_EQ_INT(count_files(SPOOL_DEFERRED), 1);
	qf = other_deferred(qid, sqid, &body);
	T_ASSERT(qf != NULL);
	T_EQ_STR(qf->rcpt[0].addr, "s@example.org");
	T_ASSERT(strstr(body.data, "Final-Recipient: rfc822; x@far.test\r\n"
	    "Action: relayed\r\nStatus: 2.0.0\r\n") != NULL);
	T_ASSERT(strstr(body.data, "y@far.test") == NULL);
	qfile_free(&qf);
	buf_free(&body);
	done(q);
}

/* our own notification bounces: once to the postmaster (bounce=2), whose
 * notice in turn is only dropped */
static void
test_double_bounce(void)
{
	struct qmgr *q = fresh();
	const char *const rcpts[] = {"alice@example.org", NULL};
	char qid[QID_SIZE], pqid[QID_SIZE] = "";
	struct buf body = BUF_INIT;
	struct qfile *qf;
	char *saved = var_postmaster_address;

	var_postmaster_address = "pm@remote.test";
	agent_start(AGENT_BOUNCE);
	enqueue_dsn(q, time(NULL), "", rcpts, NULL, "1", qid);
	T_ASSERT(run(q, 5000));
	T_EQ_INT(count_files(SPOOL_ACTIVE), 0);
	T_EQ_INT(count_files(SPOOL_INCOMING), 0);
	T_EQ_INT(count_files(SPOOL_DEFERRED), 1);
	qf = other_deferred(qid, pqid, &body);
	T_ASSERT(qf != NULL);
	T_EQ_STR(qf->sender, "");
	T_EQ_STR(qfile_attr(qf, QFILE_A_BOUNCE), "2");
	T_EQ_STR(qf->rcpt[0].addr, "pm@remote.test");
	T_ASSERT(strstr(body.data, "To: <pm@remote.test>\r\n") != NULL);
	T_ASSERT(strstr(body.data, "Final-Recipient: rfc822; "
	    "alice@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n")
	    != NULL);
	T_ASSERT(strstr(body.data, "Content-Type: text/rfc822-headers")
	    != NULL);
	qfile_free(&qf);
	done(q);

	/* a postmaster notice that bounces: dropped, nothing new */
	q = fresh();
	agent_start(AGENT_BOUNCE);
	enqueue_dsn(q, time(NULL), "", rcpts, NULL, "2", qid);
	T_ASSERT(run(q, 5000));
	T_EQ_INT(count_files(SPOOL_ACTIVE), 0);
	T_EQ_INT(count_files(SPOOL_INCOMING), 0);
	T_EQ_INT(count_files(SPOOL_DEFERRED), 0);
	var_postmaster_address = saved;
	buf_free(&body);
	done(q);
}

/* agent_failure - a failing agent defers with a retry in seconds */
static void
agent_failure(enum agent_mode mode)
{
	struct qmgr *q = fresh();
	const char *const rcpts[] = {"alice@example.org", NULL};
	char qid[QID_SIZE];
	struct qfile *qf;
	struct stat st;
	time_t now = time(NULL);

	var_delivery_timeout = 1;
	if ((int)mode >= 0)
		agent_start(mode);
	enqueue(q, now, "s@remote.test", rcpts, qid);
	T_ASSERT(run(q, 5000));
	qf = open_in(SPOOL_DEFERRED, qid, &st);
	T_ASSERT(qf != NULL);
	T_EQ_INT(qf->rcpt[0].status, QFILE_QUEUED);
	T_ASSERT(st.st_mtime >= now + QMGR_INFRA_MIN_DELAY &&
	    st.st_mtime <= time(NULL) + QMGR_INFRA_MIN_DELAY + 1);
	/* the due timer brings it back by itself */
	T_EQ_INT(q->next_due, st.st_mtime);
	T_ASSERT(q->due_timer != NULL);
	qfile_free(&qf);
	var_delivery_timeout = 600;
	done(q);
}

static void
test_agent_dies(void)
{
	agent_failure(AGENT_DIE);
}

static void
test_agent_hangs(void)
{
	agent_failure(AGENT_HANG);
}

static void
test_agent_wrong_reply(void)
{
	agent_failure(AGENT_WRONG);
}

static void
test_no_agent(void)
{
	/* nobody listens on private/local */
	agent_failure(-1);
}

static void
test_expired(void)
{
	struct qmgr *q = fresh();
	const char *const rcpts[] = {"x@remote.test", NULL};
	char qid[QID_SIZE], dsn_qid[QID_SIZE];
	struct qfile *qf;

	enqueue(q, time(NULL) - var_maximal_queue_lifetime - 5,
	    "s@remote.test", rcpts, qid);
	T_ASSERT(run(q, 5000));
	T_ASSERT(open_in(SPOOL_DEFERRED, qid, NULL) == NULL);
	T_EQ_INT(count_files(SPOOL_ACTIVE), 0);
	T_ASSERT(only_deferred(dsn_qid));
	qf = open_in(SPOOL_DEFERRED, dsn_qid, NULL);
	T_ASSERT(qf != NULL);
	T_EQ_STR(qf->sender, "");
	qfile_free(&qf);
	done(q);
}

static void
test_corrupt(void)
{
	struct qmgr *q = fresh();
	char qid[QID_SIZE], path[600];
	FILE *fp;

	qid_new(qid);
	snprintf(path, sizeof(path), "%s/%s/%s", spool, SPOOL_INCOMING, qid);
	fp = fopen(path, "w");
	T_ASSERT(fp != NULL);
	fputs("VHERALDQ1\nthis is not a queue file\n", fp);
	fclose(fp);
	T_EQ_INT(qmgr_activate(q, SPOOL_INCOMING, qid), 1);
	T_ASSERT(run(q, 5000));
	T_EQ_INT(count_files(SPOOL_CORRUPT), 1);
	T_EQ_INT(count_files(SPOOL_ACTIVE), 0);
	done(q);
}

static void
test_many_recipients(void)
{
	struct qmgr *q = fresh();
	const char **rcpts = xcalloc(252, sizeof(*rcpts));
	char qid[QID_SIZE];

	for (int i = 0; i < 250; i++)
		rcpts[i] = xasprintf("user%d@example.org", i);
	rcpts[250] = "x@remote.test";
	agent_start(AGENT_DELIVER);
	enqueue(q, time(NULL), "s@remote.test", rcpts, qid);
	T_ASSERT(run(q, 5000));
	{
		struct qfile *qf = open_in(SPOOL_DEFERRED, qid, NULL);
		size_t delivered = 0;

		T_ASSERT(qf != NULL);
		for (size_t i = 0; i < qf->nrcpt; i++)
			if (qf->rcpt[i].status == QFILE_DELIVERED)
				delivered++;
		T_EQ_INT(delivered, 250);
		T_EQ_INT(qf->rcpt[250].status, QFILE_QUEUED);
		qfile_free(&qf);
	}
	/* two agents at most */
	T_ASSERT(q->nagents <= var_local_processes);
	for (int i = 0; i < 250; i++)
		x_free(&rcpts[i]);
	x_free(&rcpts);
	done(q);
}

static long long
delete_now(struct evloop *loop, void *ctx)
{
	const char *qid = ctx;

	if (qmgr_delete(&qmgr, qid) != 0)
		fprintf(stderr, "  delete failed\n");
	return -1;
}

static void
test_delete_in_flight(void)
{
	struct qmgr *q = fresh();
	const char *const rcpts[] = {"alice@example.org", NULL};
	char qid[QID_SIZE];

	var_delivery_timeout = 1;
	agent_start(AGENT_HANG);
	enqueue(q, time(NULL), "s@remote.test", rcpts, qid);
	(void)evloop_add_timer(q->loop, 200, delete_now, qid);
	T_ASSERT(run(q, 5000));
	T_EQ_INT(count_files(SPOOL_ACTIVE), 0);
	T_EQ_INT(count_files(SPOOL_DEFERRED), 0);
	var_delivery_timeout = 600;
	done(q);
}

static long long
hold_now(struct evloop *loop, void *ctx)
{
	struct buf why = BUF_INIT;

	if (qmgr_hold(&qmgr, ctx, &why) != 0)
		fprintf(stderr, "  hold failed: %s\n", buf_cstr(&why));
	buf_free(&why);
	return -1;
}

static void
test_hold_in_flight(void)
{
	struct qmgr *q = fresh();
	const char *const rcpts[] = {"alice@example.org", NULL};
	char qid[QID_SIZE];
	struct qfile *qf;
	struct buf why = BUF_INIT;

	var_delivery_timeout = 1;
	agent_start(AGENT_HANG);
	enqueue(q, time(NULL), "s@remote.test", rcpts, qid);
	(void)evloop_add_timer(q->loop, 200, hold_now, qid);
	T_ASSERT(run(q, 5000));
	/* the delivery that was out came back deferred: into hold/, where
	 * no scan finds it, not into deferred/ */
	T_EQ_INT(count_files(SPOOL_ACTIVE), 0);
	T_EQ_INT(count_files(SPOOL_DEFERRED), 0);
	T_EQ_INT(count_files(SPOOL_HOLD), 1);
	T_ASSERT((qf = open_in(SPOOL_HOLD, qid, NULL)) != NULL);
	T_EQ_INT(qf->rcpt[0].status, QFILE_QUEUED);
	qfile_free(&qf);
	T_EQ_INT(qmgr_msg_find(q, qid) == NULL, 1);
	/* a second hold is no error; release makes it deliverable again */
	T_EQ_INT(qmgr_hold(q, qid, &why), 0);
	agent_start(AGENT_DELIVER);
	T_EQ_INT(qmgr_release(q, qid, &why), 0);
	T_ASSERT(run(q, 5000));
	T_EQ_INT(count_files(SPOOL_HOLD), 0);
	T_EQ_INT(count_files(SPOOL_DEFERRED), 0);
	T_EQ_INT(count_files(SPOOL_ACTIVE), 0);
	T_EQ_INT(qmgr_release(q, qid, &why), -1);
	var_delivery_timeout = 600;
	buf_free(&why);
	done(q);
}

static long long
requeue_now(struct evloop *loop, void *ctx)
{
	enum qmgr_requeue_state st;
	struct buf why = BUF_INIT;

	if (qmgr_requeue(&qmgr, ctx, &st, &why) != 0 ||
	    st != QMGR_REQUEUE_AFTER)
		fprintf(stderr, "  requeue failed: %s\n", buf_cstr(&why));
	/* the server comes back: the hung agent's connection breaks */
	agent_kill(&agent_pid, agent_sock);
	agent_start(AGENT_DELIVER);
	buf_free(&why);
	return -1;
}

/* a requeue while a delivery is out: when it returns (deferred), the
 * message is due at once, not after the backoff, and delivered */
static void
test_requeue_in_flight(void)
{
	struct qmgr *q = fresh();
	const char *const rcpts[] = {"alice@example.org", NULL};
	char qid[QID_SIZE];
	struct timespec t0, t1;
	double secs;

	agent_start(AGENT_HANG);
	enqueue(q, time(NULL), "s@remote.test", rcpts, qid);
	(void)evloop_add_timer(q->loop, 200, requeue_now, qid);
	(void)clock_gettime(CLOCK_MONOTONIC, &t0);
	/*
	 * run() stops when the active set is empty, which it is for a
	 * moment between the deferral and the due scan: run again until
	 * the queue is empty, or as long as the agent failure alone would
	 * make it wait (QMGR_INFRA_MIN_DELAY, 2 s) was nearly over
	 */
	do {
		(void)run(q, 500);
		(void)clock_gettime(CLOCK_MONOTONIC, &t1);
		secs = (double)(t1.tv_sec - t0.tv_sec) +
		    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	} while (count_files(SPOOL_ACTIVE) + count_files(SPOOL_DEFERRED) > 0 &&
	    secs < QMGR_INFRA_MIN_DELAY - 0.3);
	T_EQ_INT(count_files(SPOOL_ACTIVE), 0);
	T_EQ_INT(count_files(SPOOL_DEFERRED), 0);
	done(q);
}

/* jobs_on - the requests outstanding on each agent, as "n,m,..." */
static const char *
jobs_on(struct qmgr *q)
{
	static char out[64];
	size_t len = 0;

	out[0] = '\0';
	for (struct qmgr_agent *a = q->agents; a != NULL; a = a->next)
		len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%zu",
		    len ? "," : "", a->njobs);
	return out;
}

static void
test_jobs_packed(void)
{
	struct qmgr *q = fresh();
	const char *const rcpts[] = {"alice@example.org", NULL};
	char qid[QID_SIZE];
	long long batch = var_local_batch_size;

	/* agents that never answer: the jobs stay where qmgr put them */
	var_local_batch_size = 2;
	var_delivery_timeout = 1;
	agent_start(AGENT_HANG);
	enqueue(q, time(NULL), "s@remote.test", rcpts, qid);
	enqueue(q, time(NULL), "s@remote.test", rcpts, qid);
	T_ASSERT(!run(q, 300));
	/* the second job joins the first on its agent: one commit */
	T_EQ_STR(jobs_on(q), "2");
	enqueue(q, time(NULL), "s@remote.test", rcpts, qid);
	T_ASSERT(!run(q, 300));
	/* that agent is full: the third job opens another */
	T_EQ_STR(jobs_on(q), "1,2");
	/* the timeout defers all three */
	T_ASSERT(run(q, 5000));
	T_EQ_INT(count_files(SPOOL_DEFERRED), 3);
	var_delivery_timeout = 600;
	var_local_batch_size = batch;
	done(q);
}

/* a hung remote agent, busy with one domain, holds up neither local
 * delivery nor the other message's local recipient */
static void
test_remote_busy_local_flows(void)
{
	struct qmgr *q = fresh();
	const char *const far[] = {"x@remote.test", "y@other.test", NULL};
	const char *const near[] = {"alice@example.org", NULL};
	char qid_far[QID_SIZE], qid_near[QID_SIZE];
	long long procs = var_remote_processes;
	struct qfile *qf;

	var_remote_processes = 1;
	var_delivery_timeout = 1;
	agent_start(AGENT_DELIVER);
	remote_start(AGENT_HANG);
	/* two remote jobs first: the second waits for the only agent */
	enqueue(q, time(NULL), "s@remote.test", far, qid_far);
	enqueue(q, time(NULL), "s@remote.test", near, qid_near);
	T_ASSERT(!run(q, 500));
	T_ASSERT((qf = open_in(SPOOL_ACTIVE, qid_far, NULL)) != NULL);
	qfile_free(&qf);
	/* delivered and removed while the remote agent hangs */
	T_ASSERT((qf = open_in(SPOOL_ACTIVE, qid_near, NULL)) == NULL);
	T_EQ_INT(count_files(SPOOL_DEFERRED), 0);
	T_ASSERT(run(q, 5000));
	var_delivery_timeout = 600;
	var_remote_processes = procs;
	done(q);
}

/* domains_of - the latest domain of each agent, as "a,b,..." */
static const char *
domains_of(struct qmgr *q)
{
	static char out[600];
	size_t len = 0;

	out[0] = '\0';
	for (struct qmgr_agent *a = q->agents; a != NULL; a = a->next)
		len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%s",
		    len ? "," : "", a->domain);
	return out;
}

/* a remote job goes to the idle agent that served its domain last (it
 * may hold the connection open), not to the first idle one */
static void
test_remote_same_domain_agent(void)
{
	struct qmgr *q = fresh();
	const char *const both[] = {"x@one.test", "y@two.test", NULL};
	const char *const one[] = {"z@ONE.test", NULL};
	char qid[QID_SIZE];
	long long procs = var_remote_processes;

	var_remote_processes = 2;
	remote_start(AGENT_REMOTE_DEFER);
	/* two requests at once: one agent each, the newest listed first */
	enqueue(q, time(NULL), "s@remote.test", both, qid);
	T_ASSERT(run(q, 5000));
	T_EQ_STR(domains_of(q), "two.test,one.test");
	/* both idle: the one that served one.test takes it */
	enqueue(q, time(NULL), "s@remote.test", one, qid);
	T_ASSERT(run(q, 5000));
	T_EQ_STR(domains_of(q), "two.test,ONE.test");
	var_remote_processes = procs;
	done(q);
}

/* a remote job goes to an idle agent that served its domain among its
 * recent requests (it may still cache that connection), before the
 * first idle one */
static void
test_remote_recent_domain_agent(void)
{
	struct qmgr *q = fresh();
	const char *const first[] = {"x@one.test", "y@two.test", NULL};
	const char *const then[] = {"z@three.test", "w@four.test", NULL};
	const char *const one[] = {"v@one.test", NULL};
	const char *p;
	char qid[QID_SIZE];
	long long procs = var_remote_processes;

	var_remote_processes = 2;
	remote_start(AGENT_REMOTE_DEFER);
	enqueue(q, time(NULL), "s@remote.test", first, qid);
	T_ASSERT(run(q, 5000));
	T_EQ_STR(domains_of(q), "two.test,one.test");
	/* both move on to other domains */
	enqueue(q, time(NULL), "s@remote.test", then, qid);
	T_ASSERT(run(q, 5000));
	p = domains_of(q);
	T_ASSERT(strstr(p, "one.test") == NULL && strstr(p, "two.test") ==
	    NULL);
	/* the second agent (not the first idle one) served one.test */
	enqueue(q, time(NULL), "s@remote.test", one, qid);
	T_ASSERT(run(q, 5000));
	p = domains_of(q);
	T_ASSERT(strchr(p, ',') != NULL);
	T_EQ_STR(strchr(p, ',') + 1, "one.test");
	var_remote_processes = procs;
	done(q);
}

/* a job that holds a pool thread until a byte comes on its pipe */
struct blocker {
	struct job job;
	int fd;
};

static void
blocker_run(struct job *job)
{
	struct blocker *b = (struct blocker *)job;
	char c;

	/* EOF or a byte: either ends the wait */
	if (read(b->fd, &c, 1) < 0)
		return;
}

static void
blocker_done(struct job *job)
{
	(void)job;
}

/* the forward copy is written on a job thread: while that thread is
 * busy the message waits, open, and other mail goes all the way; then
 * the copy is queued for the target in another domain */
static void
test_forward_off_loop(void)
{
	struct qmgr *q = fresh();
	const char *const fwd[] = {"fwd@example.org", NULL};
	const char *const near[] = {"alice@example.org", NULL};
	struct blocker b = {.job = {.run = blocker_run, .done = blocker_done}};
	char qid[QID_SIZE], other[QID_SIZE];
	struct qmgr_msg *msg;
	int p[2];

	T_ASSERT(pipe(p) == 0);
	b.fd = p[0];
	q->jobs = job_pool_new(q->loop, 1, "test job");
	job_submit(q->jobs, &b.job);
	agent_start(AGENT_FORWARD);
	enqueue(q, time(NULL), "", fwd, qid);
	T_ASSERT(run_finishing(q, qid, 5000));
	msg = qmgr_msg_find(q, qid);
	T_ASSERT(msg != NULL && msg->open && msg->jobs == 0);
	T_EQ_INT(count_files(SPOOL_INCOMING), 0);
	enqueue(q, time(NULL), "", near, other);
	T_ASSERT(run_gone(q, other, 5000));
	T_ASSERT(qmgr_msg_find(q, qid) != NULL);
	/* the thread is free: the copy goes to x@far.test (no remote agent
	 * here: it waits in deferred/) and the original is done */
	T_ASSERT(write(p[1], "x", 1) == 1);
	T_ASSERT(run(q, 5000));
	T_EQ_INT(count_files(SPOOL_ACTIVE), 0);
	T_EQ_INT(count_files(SPOOL_DEFERRED), 1);
	T_ASSERT(deferred_has("x@far.test"));
	job_pool_free(&q->jobs);
	close(p[0]);
	close(p[1]);
	done(q);
}

/* a domain at its window with 20,000 jobs waiting: they are parked with
 * it once, and later dispatches do not walk them (3,000 dispatches took
 * 2.5 s when each looked at every waiting job, 0.8 ms per dispatch) */
static void
test_dispatch_passes_parked(void)
{
	struct qmgr *q = fresh();
	const char *const one[] = {"x@slow.test", NULL};
	char qid[QID_SIZE];
	long long procs = var_remote_processes;
	long long limit = var_remote_destination_concurrency_limit;
	struct timespec t0, t1;
	struct qmgr_msg *msg;
	size_t idx = 0;
	double secs;

	var_remote_processes = 2;
	var_remote_destination_concurrency_limit = 1;
	var_delivery_timeout = 1;
	remote_start(AGENT_HANG);
	enqueue(q, time(NULL), "s@remote.test", one, qid);
	for (int i = 0; i < 250 && q->nagents == 0; i++)
		(void)run(q, 20);
	msg = qmgr_msg_find(q, qid);
	T_ASSERT(msg != NULL && msg->open && msg->jobs == 1);
	for (int i = 0; i < 20000; i++)
		qmgr_deliver_submit(q, msg, &idx, 1, QMGR_TR_REMOTE);
	(void)clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 3000; i++)
		qmgr_deliver_dispatch(q);
	(void)clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	fprintf(stderr, "3,000 dispatches took %.3f s\n", secs);
	T_ASSERT(secs < 0.5);
	T_EQ_INT(q->nparked, 20000);
	T_ASSERT(q->job_head[QMGR_TR_REMOTE] == NULL);
	/* dropped unsent; the hung request times out and defers it */
	qmgr_deliver_cancel(q, msg);
	T_EQ_INT(q->nparked, 0);
	T_EQ_INT(msg->jobs, 1);
	T_ASSERT(run(q, 8000));
	T_EQ_INT(count_files(SPOOL_DEFERRED), 1);
	var_delivery_timeout = 600;
	var_remote_processes = procs;
	var_remote_destination_concurrency_limit = limit;
	done(q);
}

/* remote_destination_concurrency_limit: a domain's jobs beyond it wait,
 * and another domain's job behind them goes */
static void
test_remote_destination_limit(void)
{
	struct qmgr *q = fresh();
	const char *const one[] = {"x@one.test", NULL};
	const char *const two[] = {"y@two.test", NULL};
	char qid[QID_SIZE];
	long long procs = var_remote_processes;
	long long limit = var_remote_destination_concurrency_limit;

	var_remote_processes = 3;
	var_remote_destination_concurrency_limit = 1;
	var_delivery_timeout = 1;
	remote_start(AGENT_HANG);
	enqueue(q, time(NULL), "s@remote.test", one, qid);
	enqueue(q, time(NULL), "s@remote.test", one, qid);
	enqueue(q, time(NULL), "s@remote.test", two, qid);
	T_ASSERT(!run(q, 300));
	/* one for one.test, one for two.test; the second one.test waits */
	T_EQ_STR(jobs_on(q), "1,1");
	T_EQ_STR(domains_of(q), "two.test,one.test");
	/* it waits parked with its domain, out of the queue */
	T_ASSERT(q->job_head[QMGR_TR_REMOTE] == NULL);
	T_EQ_INT(q->nparked, 1);
	T_ASSERT(qmgr_dest_find(q, "one.test") != NULL &&
	    qmgr_dest_find(q, "one.test")->nparked == 1);
	/* the timeouts defer them all, the waiting one after its turn */
	T_ASSERT(run(q, 8000));
	T_EQ_INT(count_files(SPOOL_DEFERRED), 3);
	var_delivery_timeout = 600;
	var_remote_processes = procs;
	var_remote_destination_concurrency_limit = limit;
	done(q);
}

/* the notes text of recipient 0 of deferred/qid ("" if none) */
static void
note_of(const char *qid, char *out, size_t size)
{
	struct qfile *qf = open_in(SPOOL_DEFERRED, qid, NULL);
	struct qfile_note *notes;
	struct buf path = BUF_INIT, why = BUF_INIT;
	size_t n;

	out[0] = '\0';
	if (qf == NULL)
		return;
	spool_path(&path, spool, SPOOL_DEFERRED, qid);
	qf->fd = open(path.data, O_RDONLY);
	buf_free(&path);
	if (qf->fd >= 0 && qfile_notes_read(qf, &notes, &n, &why) == 0) {
		if (n > 0)
			snprintf(out, size, "%s %s", notes[0].dsn,
			    notes[0].text);
		qfile_notes_free(&notes, n);
	}
	if (qf->fd >= 0)
		close(qf->fd);
	qfile_free(&qf);
	buf_free(&why);
}

/* requests_counted - requests the AGENT_CONN_FAIL agent got */
static long long
requests_counted(void)
{
	struct stat st;

	return stat(count_path, &st) < 0 ? 0 : (long long)st.st_size;
}

/* a domain whose servers cannot be reached: the window shrinks with
 * each conn_failed=1 reply, the fourth from 5 makes it dead, and the
 * rest of its mail is deferred without a request ("delivery temporarily
 * suspended: <the failure>"); a flush brings it back */
static void
test_remote_dead_destination(void)
{
	struct qmgr *q = fresh();
	const char *const down[] = {"x@down.test", NULL};
	char qid[8][QID_SIZE], note[600];
	long long procs = var_remote_processes, n;
	struct buf why = BUF_INIT;
	int suspended = 0, refused = 0;

	snprintf(count_path, sizeof(count_path), "%s/requests%d", tmpdir,
	    case_no);
	var_remote_processes = 1;	/* each reply before the next request */
	remote_start(AGENT_CONN_FAIL);
	for (int i = 0; i < 8; i++)
		enqueue(q, time(NULL), "s@remote.test", down, qid[i]);
	T_ASSERT(run(q, 8000));
	T_EQ_INT(count_files(SPOOL_DEFERRED), 8);
	T_EQ_INT(requests_counted(), 4);
	T_ASSERT(qmgr_dest_dead(q, "down.test", time(NULL)) != NULL);
	for (int i = 0; i < 8; i++) {
		note_of(qid[i], note, sizeof(note));
		if (strcmp(note, "4.4.1 delivery temporarily suspended: "
		    "connect to mx.down.test[192.0.2.1]:25: Connection "
		    "refused") == 0)
			suspended++;
		else if (strcmp(note, "4.4.1 connect to mx.down.test"
		    "[192.0.2.1]:25: Connection refused") == 0)
			refused++;
		else
			fprintf(stderr, "  unexpected note: \"%s\"\n", note);
	}
	T_EQ_INT(refused, 4);
	T_EQ_INT(suspended, 4);
	/* back up: the flush tries the domain again, and it delivers */
	agent_kill(&remote_pid, remote_sock);
	remote_start(AGENT_DELIVER);
	T_EQ_INT(qmgr_flush(q, &n, &why), 0);
	T_EQ_INT(n, 8);
	T_ASSERT(qmgr_dest_dead(q, "down.test", time(NULL)) == NULL);
	qmgr_scan_all(q, time(NULL));
	T_ASSERT(run(q, 8000));
	T_EQ_INT(count_files(SPOOL_DEFERRED), 0);
	T_EQ_INT(requests_counted(), 4);
	var_remote_processes = procs;
	buf_free(&why);
	done(q);
}

/* a domain starts at initial_destination_concurrency requests at once,
 * though more agents are free */
static void
test_remote_initial_concurrency(void)
{
	struct qmgr *q = fresh();
	const char *const one[] = {"x@one.test", NULL};
	char qid[QID_SIZE];
	long long procs = var_remote_processes;

	var_remote_processes = 5;
	var_initial_destination_concurrency = 2;
	var_delivery_timeout = 1;
	remote_start(AGENT_HANG);
	for (int i = 0; i < 4; i++)
		enqueue(q, time(NULL), "s@remote.test", one, qid);
	T_ASSERT(!run(q, 300));
	T_EQ_STR(jobs_on(q), "1,1");
	T_EQ_INT(qmgr_dest_limit(q, "one.test"), 2);
	T_ASSERT(run(q, 8000));
	T_EQ_INT(count_files(SPOOL_DEFERRED), 4);
	var_delivery_timeout = 600;
	var_initial_destination_concurrency = 5;
	var_remote_processes = procs;
	done(q);
}

static const struct test_case cases[] = {
	{"all delivered: removed", test_all_delivered},
	{"reply arriving byte by byte", test_trickle},
	{"partly delivered: statuses and retry time", test_partly_deferred},
	{"remote recipients: one request per domain", test_remote_per_domain},
	{"bounce: notification to the sender", test_bounce_notifies},
	{"bounce of a null-sender message", test_bounce_null_sender},
	{"delay warning: once, as NOTIFY asks", test_delay_warning},
	{"no delay warning too soon or when off",
	    test_delay_warning_not_yet},
	{"success report for NOTIFY=SUCCESS", test_success_notify},
	{"relayed report for a server without DSN", test_success_relayed},
	{"a bounced notification goes once to postmaster",
	    test_double_bounce},
	{"agent dies: fast retry", test_agent_dies},
	{"agent hangs: timeout, fast retry", test_agent_hangs},
	{"agent answers for other recipients", test_agent_wrong_reply},
	{"no agent listening", test_no_agent},
	{"expired message bounces", test_expired},
	{"corrupt file set aside", test_corrupt},
	{"250 recipients in several requests", test_many_recipients},
	{"delete during delivery", test_delete_in_flight},
	{"hold during delivery", test_hold_in_flight},
	{"requeue during delivery: due at once", test_requeue_in_flight},
	{"jobs packed onto one agent until it is full", test_jobs_packed},
	{"a busy remote agent does not hold up local delivery",
	    test_remote_busy_local_flows},
	{"a remote job goes to the agent that served its domain last",
	    test_remote_same_domain_agent},
	{"a remote job goes to an agent that served its domain recently",
	    test_remote_recent_domain_agent},
	{"remote_destination_concurrency_limit: a domain waits, others go",
	    test_remote_destination_limit},
	{"initial_destination_concurrency: a domain starts low",
	    test_remote_initial_concurrency},
	{"a silent signer holds up only its notification", test_silent_signer},
	{"a bounce storm with a silent signer leaves the open slots free",
	    test_bounce_storm_frees_slots},
	{"delete while the notification waits for the signer",
	    test_delete_while_signing},
	{"a forward copy is written off the loop", test_forward_off_loop},
	{"a domain's waiting jobs are parked, not walked by each dispatch",
	    test_dispatch_passes_parked},
	{"dead destination: its mail deferred without a request",
	    test_remote_dead_destination},
	{0},
};

int
main(void)
{
	struct buf why = BUF_INIT;
	struct dir *d = NULL;
	int r;

	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	cfg_defaults(params_table);
	x_free(&var_data_directory);
	var_data_directory = xstrdup(tmpdir);
	var_local_processes = 2;
	if (dir_open(tmpdir, DIR_WRITE, &d, &why) < 0 ||
	    dir_domain_add(d, "example.org", &why) < 0 ||
	    dir_alias_add(d, "fwd@example.org", "x@far.test", &why) < 0) {
		fprintf(stderr, "directory: %s\n", why.data);
		test_rm_tree(tmpdir);
		return 1;
	}
	dir_close(&d);
	r = test_run(cases);
	agent_stop();
	if (qmgr.dir != NULL)
		dir_close(&qmgr.dir);
	test_rm_tree(tmpdir);
	buf_free(&why);
	return r;
}
