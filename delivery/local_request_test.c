/*
 * local_request_test - the local agent's request handling end to end
 * over a socketpair: real queue files, a real directory and Maildirs in a
 * temp folder. Checks the reply shape, the delivered file, one copy per
 * mailbox per request, local_copy_limit, an over-large alias expansion,
 * loop detection, quota, write errors and malformed requests.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/mem.h"
#include "base/test.h"
#include "mail/dir.h"
#include "mail/ipc.h"
#include "mail/maildir.h"
#include "mail/params.h"
#include "mail/qfile.h"
#include "mail/qid.h"
#include "mail/spool.h"
#include "local.h"

static char tmpdir[] = "/tmp/herald-local-test-XXXXXX";
static char spool[300], mail[300];
static struct dir *dir;

static void
must(int r, struct buf *why, const char *what)
{
	if (r < 0) {
		fprintf(stderr, "setup: %s: %s\n", what, buf_cstr(why));
		test_rm_tree(tmpdir);
		exit(1);
	}
}

static void
setup(void)
{
	struct buf why = BUF_INIT;
	struct dir *w = NULL;

	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
	snprintf(spool, sizeof(spool), "%s/spool", tmpdir);
	snprintf(mail, sizeof(mail), "%s/mail", tmpdir);
	must(spool_setup(spool, (uid_t)-1, (gid_t)-1, &why), &why, "spool");
	must(dir_open(tmpdir, DIR_WRITE, &w, &why), &why, "dir_open");
	must(dir_domain_add(w, "example.org", &why), &why, "domain");
	must(dir_user_add(w, "alice@example.org", -1, &why), &why, "alice");
	must(dir_user_add(w, "carol@example.org", -1, &why), &why, "carol");
	must(dir_user_add(w, "small@example.org", 10, &why), &why, "small");
	/* room for one copy of msg_plain (49 bytes, 99 delivered), not two */
	must(dir_user_add(w, "pair@example.org", 120, &why), &why, "pair");
	must(dir_alias_add(w, "team@example.org", "alice@example.org", &why),
	    &why, "team");
	must(dir_alias_add(w, "team@example.org", "carol@example.org", &why),
	    &why, "team");
	must(dir_alias_add(w, "mixed@example.org", "alice@example.org", &why),
	    &why, "mixed");
	must(dir_alias_add(w, "mixed@example.org", "small@example.org", &why),
	    &why, "mixed");
	/* targets in another domain: qmgr forwards, local says so */
	must(dir_alias_add(w, "away@example.org", "dave@elsewhere.test",
	    &why), &why, "away");
	must(dir_alias_add(w, "both@example.org", "alice@example.org", &why),
	    &why, "both");
	must(dir_alias_add(w, "both@example.org", "dave@elsewhere.test",
	    &why), &why, "both");
	dir_close(&w);
	must(dir_open(tmpdir, DIR_READ, &dir, &why), &why, "dir_open read");
	buf_free(&why);
	cfg_defaults(params_table);
	x_free(&var_mail_location);
	var_mail_location = xasprintf("%s/%%d/%%n", mail);
	var_default_quota = 0;
}

/* starts - does s begin with prefix? */
static bool
starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* queue_file - write a queue file with rcpts (NULL-terminated) and the
 * message text; returns a read-only descriptor */
static int
queue_file(const char *sender, const char *const *rcpts, const char *msg)
{
	struct qfile_writer *w;
	struct buf why = BUF_INIT, path = BUF_INIT;
	char qid[QID_SIZE];
	int fd;

	must(qfile_writer_new(spool, &w, &why), &why, "writer");
	qfile_writer_start(w, time(NULL), sender);
	for (const char *const *r = rcpts; *r != NULL; r++)
		qfile_writer_rcpt(w, *r, "", "");
	qfile_writer_begin_body(w);
	qfile_writer_body(w, msg, strlen(msg));
	must(qfile_writer_finish(w, &why), &why, "finish");
	qid_new(qid);
	must(qfile_writer_link(w, qid, &why), &why, "link");
	qfile_writer_free(&w);
	spool_path(&path, spool, SPOOL_INCOMING, qid);
	fd = open(path.data, O_RDONLY);
	if (fd < 0) {
		perror(path.data);
		exit(1);
	}
	buf_free(&path);
	buf_free(&why);
	return fd;
}

/* make_request - a deliver request for indexes idx (-1 ends), plus the
 * attribute extra (a malformed request) unless NULL */
static void
make_request(struct ipc_msg *req, const int *idx, const char *extra)
{
	ipc_msg_init(req);
	ipc_put_str(req, IPC_REQUEST, "deliver");
	ipc_put_str(req, IPC_QUEUE_ID, "0123456789ABCDEFG");
	for (const int *i = idx; *i >= 0; i++)
		ipc_put_int(req, IPC_RCPT_INDEX, *i);
	if (extra != NULL)
		ipc_put_str(req, extra, "x");
}

/* read_reply - the next reply on sock into out as "I result dsn
 * reason|" groups; 0, or -2 if none came */
static int
read_reply(int sock, struct buf *out)
{
	struct ipc_msg reply;
	struct buf why = BUF_INIT;
	const char *name, *value;
	size_t pos = 0;
	int r = 0;

	buf_reset(out);
	ipc_msg_init(&reply);
	if (ipc_recv(sock, &reply, NULL, 1000, &why) != 1) {
		fprintf(stderr, "  no reply: %s\n", why.data);
		r = -2;
	}
	while (ipc_next(&reply, &pos, &name, &value)) {
		if (strcmp(name, IPC_STATUS) == 0)
			buf_printf(out, "%s|", value);
		else if (strcmp(name, IPC_REASON) == 0)
			buf_printf(out, "%s|", value);
		else if (strcmp(name, IPC_FORWARD) == 0)
			buf_printf(out, "forward=%s|", value);
		else
			buf_printf(out, "%s ", value);
	}
	ipc_msg_free(&reply);
	buf_free(&why);
	return r;
}

/* pair - a connected socketpair, or exit */
static void
pair(int sv[2])
{
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
		perror("socketpair");
		exit(1);
	}
}

/* deliver - run one request for indexes (-1 ends) and put the reply's
 * groups into out as "I result dsn reason|"; returns local_request() */
static int
deliver(int qfd, const int *idx, struct buf *out, const char *extra)
{
	struct ipc_msg req;
	int sv[2], r;

	buf_reset(out);
	pair(sv);
	make_request(&req, idx, extra);
	r = local_request(dir, sv[0], &req, qfd);
	if (r == 0)
		r = read_reply(sv[1], out);
	close(sv[0]);
	close(sv[1]);
	ipc_msg_free(&req);
	return r;
}

/* maildir_files - how many files are in <mail>/example.org/<user>/new,
 * and the text of the newest one read into text */
static int
maildir_files(const char *user, struct buf *text)
{
	char path[600], file[1200], newest[1200] = "";
	struct timespec best = {0, 0};
	struct dirent *de;
	struct stat st;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/example.org/%s/new", mail, user);
	if ((d = opendir(path)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		n++;
		snprintf(file, sizeof(file), "%s/%s", path, de->d_name);
		if (stat(file, &st) == 0 && (st.st_mtim.tv_sec > best.tv_sec ||
		    (st.st_mtim.tv_sec == best.tv_sec &&
		    st.st_mtim.tv_nsec > best.tv_nsec))) {
			best = st.st_mtim;
			snprintf(newest, sizeof(newest), "%s", file);
		}
	}
	closedir(d);
	if (text != NULL && newest[0] != '\0') {
		FILE *fp = fopen(newest, "r");
		char chunk[4096];
		size_t got;

		buf_reset(text);
		while (fp != NULL && (got = fread(chunk, 1, sizeof(chunk),
		    fp)) > 0)
			buf_append(text, chunk, got);
		if (fp != NULL)
			fclose(fp);
	}
	return n;
}

/* clear_maildir - remove the files in <mail>/example.org/<user>/new */
static void
clear_maildir(const char *user)
{
	char path[600], file[1200];
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "%s/example.org/%s/new", mail, user);
	if ((d = opendir(path)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(file, sizeof(file), "%s/%s", path, de->d_name);
		(void)unlink(file);
	}
	closedir(d);
}

static const char *const msg_plain = "From: a@x.test\r\nSubject: hi\r\n"
    "\r\nhello\r\n.dot line\r\n";

static void
test_deliver(void)
{
	const char *const rcpts[] = {"alice@example.org", NULL};
	const int idx[] = {0, -1};
	struct buf out = BUF_INIT, text = BUF_INIT;
	int fd = queue_file("sender@x.test", rcpts, msg_plain);
	int before;

	clear_maildir("alice");
	before = maildir_files("alice", NULL);

	T_EQ_INT(deliver(fd, idx, &out, NULL), 0);
	T_EQ_STR(out.data, "ok|0 delivered 2.0.0 delivered to maildir|");
	T_EQ_INT(maildir_files("alice", &text), before + 1);
	T_EQ_STR(text.data, "Return-Path: <sender@x.test>\n"
	    "Delivered-To: alice@example.org\n"
	    "From: a@x.test\nSubject: hi\n\nhello\n.dot line\n");
	close(fd);
	buf_free(&out);
	buf_free(&text);
}

static void
test_once_per_request(void)
{
	const char *const rcpts[] = {"alice@example.org",
	    "Alice+tag@example.org", "team@example.org", "nobody@example.org",
	    NULL};
	const int idx[] = {0, 1, 2, 3, -1};
	struct buf out = BUF_INIT;
	int fd = queue_file("", rcpts, msg_plain);
	int a = maildir_files("alice", NULL), c = maildir_files("carol", NULL);

	T_EQ_INT(deliver(fd, idx, &out, NULL), 0);
	T_EQ_STR(out.data, "ok|"
	    "0 delivered 2.0.0 delivered to maildir|"
	    "1 delivered 2.0.0 delivered to maildir|"
	    "2 delivered 2.0.0 delivered to maildir|"
	    "3 bounced 5.1.1 unknown user|");
	T_EQ_INT(maildir_files("alice", NULL), a + 1);
	T_EQ_INT(maildir_files("carol", NULL), c + 1);
	/* a second request delivers again */
	T_EQ_INT(deliver(fd, idx, &out, NULL), 0);
	T_EQ_INT(maildir_files("alice", NULL), a + 2);
	close(fd);
	buf_free(&out);
}

/* test_forward_marked - an alias with targets in other domains: its
 * mailboxes here get their copy, and the reply says forward=1 */
static void
test_forward_marked(void)
{
	const char *const rcpts[] = {"away@example.org", "both@example.org",
	    "alice@example.org", NULL};
	const int idx[] = {0, 1, 2, -1};
	struct buf out = BUF_INIT;
	int fd = queue_file("x@c.test", rcpts, msg_plain);
	int a = maildir_files("alice", NULL);

	T_EQ_INT(deliver(fd, idx, &out, NULL), 0);
	T_EQ_STR(out.data, "ok|"
	    "0 delivered 2.0.0 forwarded to other domains|forward=1|"
	    "1 delivered 2.0.0 delivered to maildir|forward=1|"
	    "2 delivered 2.0.0 delivered to maildir|");
	T_EQ_INT(maildir_files("alice", NULL), a + 1);
	close(fd);
	buf_free(&out);
}

/* test_copy_limit - local_copy_limit counts the copies of one request
 * (after duplicates are removed); further mailboxes bounce with 5.5.3 */
static void
test_copy_limit(void)
{
	const char *const rcpts[] = {"team@example.org", "alice+x@example.org",
	    "carol@example.org", "pair@example.org", NULL};
	const int idx[] = {0, 1, 2, 3, -1};
	struct buf out = BUF_INIT;
	int fd = queue_file("s@x.test", rcpts, msg_plain);
	int a = maildir_files("alice", NULL), c = maildir_files("carol", NULL);
	int p;

	clear_maildir("pair");
	p = maildir_files("pair", NULL);
	var_local_copy_limit = 2;
	T_EQ_INT(deliver(fd, idx, &out, NULL), 0);
	var_local_copy_limit = 1000;
	T_EQ_STR(out.data, "ok|"
	    "0 delivered 2.0.0 delivered to maildir|"
	    "1 delivered 2.0.0 delivered to maildir|"
	    "2 delivered 2.0.0 delivered to maildir|"
	    "3 bounced 5.5.3 message reaches more than 2 mailboxes "
	    "(local_copy_limit)|");
	T_EQ_INT(maildir_files("alice", NULL), a + 1);
	T_EQ_INT(maildir_files("carol", NULL), c + 1);
	T_EQ_INT(maildir_files("pair", NULL), p);
	close(fd);
	buf_free(&out);
}

/* test_expansion_whole - an expansion over alias_expansion_limit (an
 * alias that grew after smtpd took it) bounces whole: no member gets a
 * copy, not even those met before the limit */
static void
test_expansion_whole(void)
{
	const char *const rcpts[] = {"team@example.org", NULL};
	const int idx[] = {0, -1};
	struct buf out = BUF_INIT;
	int fd = queue_file("s@x.test", rcpts, msg_plain);
	int a = maildir_files("alice", NULL), c = maildir_files("carol", NULL);

	var_alias_expansion_limit = 1;
	T_EQ_INT(deliver(fd, idx, &out, NULL), 0);
	var_alias_expansion_limit = 1000;
	T_EQ_STR(out.data, "ok|0 bounced 5.5.3 alias expansion is too large "
	    "(over 1 addresses: alias_expansion_limit)|");
	T_EQ_INT(maildir_files("alice", NULL), a);
	T_EQ_INT(maildir_files("carol", NULL), c);
	close(fd);
	buf_free(&out);
}

static void
test_delivered_to_loop(void)
{
	const char *const rcpts[] = {"team@example.org", "carol@example.org",
	    NULL};
	const int idx[] = {0, 1, -1};
	struct buf out = BUF_INIT, text = BUF_INIT;
	int fd = queue_file("s@x.test", rcpts, "Delivered-To: "
	    "ALICE@example.org\r\nSubject: loop\r\n\r\nbody\r\n");
	int a, c;

	clear_maildir("carol");
	a = maildir_files("alice", NULL);
	c = maildir_files("carol", NULL);

	T_EQ_INT(deliver(fd, idx, &out, NULL), 0);
	T_EQ_STR(out.data, "ok|0 bounced 5.4.6 <alice@example.org>: mail "
	    "forwarding loop for <alice@example.org>|"
	    "1 delivered 2.0.0 delivered to maildir|");
	T_EQ_INT(maildir_files("alice", NULL), a);
	T_EQ_INT(maildir_files("carol", &text), c + 1);
	T_ASSERT(starts(text.data, "Return-Path: <s@x.test>\n"
	    "Delivered-To: carol@example.org\nDelivered-To: ALICE"));
	close(fd);
	buf_free(&out);
	buf_free(&text);
}

static void
test_hop_limit(void)
{
	const char *const rcpts[] = {"alice@example.org", NULL};
	const int idx[] = {0, -1};
	struct buf out = BUF_INIT;
	int fd = queue_file("s@x.test", rcpts, "Received: a\r\nReceived: b\r\n"
	    "Delivered-To: x@y\r\n\r\nbody\r\n");

	var_hopcount_limit = 4;
	T_EQ_INT(deliver(fd, idx, &out, NULL), 0);
	T_EQ_STR(out.data, "ok|0 delivered 2.0.0 delivered to maildir|");
	var_hopcount_limit = 3;
	T_EQ_INT(deliver(fd, idx, &out, NULL), 0);
	var_hopcount_limit = 50;
	T_EQ_STR(out.data, "ok|0 bounced 5.4.6 mail forwarding loop (too "
	    "many hops)|");
	close(fd);
	buf_free(&out);
}

static void
test_quota(void)
{
	const char *const rcpts[] = {"small@example.org", "mixed@example.org",
	    NULL};
	const int idx[] = {0, 1, -1};
	struct buf out = BUF_INIT;
	int fd = queue_file("s@x.test", rcpts, msg_plain);

	/* the default: a full mailbox is a temporary failure */
	T_EQ_INT(var_quota_exceeded_bounce, 0);
	T_EQ_INT(deliver(fd, idx, &out, NULL), 0);
	T_EQ_STR(out.data, "ok|0 deferred 4.2.2 mailbox full|"
	    "1 deferred 4.2.2 <small@example.org>: mailbox full|");
	var_quota_exceeded_bounce = true;
	T_EQ_INT(deliver(fd, idx, &out, NULL), 0);
	var_quota_exceeded_bounce = false;
	T_EQ_STR(out.data, "ok|0 bounced 5.2.2 mailbox full|"
	    "1 bounced 5.2.2 <small@example.org>: mailbox full|");
	T_EQ_INT(maildir_files("small", NULL), 0);
	close(fd);
	buf_free(&out);
}

/* test_batch - two requests whose copies share one maildir batch: replies
 * in request order, and the quota counts the copy the batch already holds */
static void
test_batch(void)
{
	const char *const rcpts[] = {"pair@example.org", NULL};
	const int idx[] = {0, -1};
	struct buf out = BUF_INIT;
	struct maildir_batch *mb = maildir_batch_new();
	struct local_req *rq[2];
	struct ipc_msg req;
	int fd[2], sv[2];

	pair(sv);
	make_request(&req, idx, NULL);
	for (int i = 0; i < 2; i++) {
		fd[i] = queue_file("s@x.test", rcpts, msg_plain);
		rq[i] = local_request_start(dir, &req, fd[i], mb);
		T_ASSERT(rq[i] != NULL);
	}
	/* nothing is in new/ before the commit */
	T_EQ_INT(maildir_files("pair", NULL), 0);
	maildir_batch_commit(mb);
	for (int i = 0; i < 2; i++)
		T_EQ_INT(local_request_finish(rq[i], mb, sv[0]), 0);
	T_EQ_INT(read_reply(sv[1], &out), 0);
	T_EQ_STR(out.data, "ok|0 delivered 2.0.0 delivered to maildir|");
	T_EQ_INT(read_reply(sv[1], &out), 0);
	T_EQ_STR(out.data, "ok|0 deferred 4.2.2 mailbox full|");
	T_EQ_INT(maildir_files("pair", NULL), 1);
	maildir_batch_free(&mb);
	ipc_msg_free(&req);
	for (int i = 0; i < 2; i++)
		close(fd[i]);
	close(sv[0]);
	close(sv[1]);
	buf_free(&out);
}

static void
test_write_error(void)
{
	const char *const rcpts[] = {"alice@example.org", NULL};
	const int idx[] = {0, -1};
	struct buf out = BUF_INIT;
	char *saved = var_mail_location, file[400];
	int fd = queue_file("s@x.test", rcpts, msg_plain);
	FILE *fp;

	/* a regular file where a folder should be */
	snprintf(file, sizeof(file), "%s/blocker", tmpdir);
	fp = fopen(file, "w");
	T_ASSERT(fp != NULL);
	fclose(fp);
	var_mail_location = xasprintf("%s/%%d/%%n", file);
	T_EQ_INT(deliver(fd, idx, &out, NULL), 0);
	x_free(&var_mail_location);
	var_mail_location = saved;
	T_ASSERT(starts(out.data, "ok|0 deferred 4.3.0 mkdir "));
	close(fd);
	buf_free(&out);
}

static void
test_bad_index(void)
{
	const char *const rcpts[] = {"alice@example.org", NULL};
	const int idx[] = {0, 5, -1};
	struct buf out = BUF_INIT;
	int fd = queue_file("s@x.test", rcpts, msg_plain);

	T_EQ_INT(deliver(fd, idx, &out, NULL), 0);
	T_EQ_STR(out.data, "ok|0 delivered 2.0.0 delivered to maildir|"
	    "5 deferred 4.3.0 no recipient 5 in the queue file|");
	close(fd);
	buf_free(&out);
}

static void
test_malformed(void)
{
	const char *const rcpts[] = {"alice@example.org", NULL};
	const int idx[] = {0, -1}, none[] = {-1};
	struct buf out = BUF_INIT;
	int fd = queue_file("s@x.test", rcpts, msg_plain);
	int garbage = open("/dev/null", O_RDONLY);

	T_EQ_INT(deliver(-1, idx, &out, NULL), -1);	/* no descriptor */
	T_EQ_INT(deliver(fd, none, &out, NULL), -1);	/* no recipients */
	/* unknown attribute */
	T_EQ_INT(deliver(fd, idx, &out, "bogus"), -1);
	T_EQ_INT(deliver(fd, idx, &out, IPC_SENDER), -1);
	/* not a queue file: every recipient deferred */
	T_EQ_INT(deliver(garbage, idx, &out, NULL), 0);
	T_ASSERT(starts(out.data, "ok|0 deferred 4.3.0 cannot read queue "
	    "file: "));
	close(garbage);
	close(fd);
	buf_free(&out);
}

static const struct test_case cases[] = {
	{"deliver one copy with Return-Path and Delivered-To", test_deliver},
	{"one copy per mailbox per request", test_once_per_request},
	{"targets in other domains are marked forward", test_forward_marked},
	{"local_copy_limit per request", test_copy_limit},
	{"over-large expansion bounces whole", test_expansion_whole},
	{"Delivered-To loop", test_delivered_to_loop},
	{"hop count limit", test_hop_limit},
	{"quota defer and bounce", test_quota},
	{"two requests in one batch", test_batch},
	{"maildir write error defers", test_write_error},
	{"recipient index outside the file", test_bad_index},
	{"malformed requests", test_malformed},
	{0},
};

int
main(void)
{
	int r;

	setup();
	r = test_run(cases);
	dir_close(&dir);
	test_rm_tree(tmpdir);
	return r;
}
