/*
 * qmgr_protocol_test - the strict check of local agent replies (good and
 * malformed replies, nothing recorded on error), the request frame, and
 * the "qmgr" listener fed its frames at every chunk size from 1 byte,
 * plus oversized and malformed frames that must drop the connection.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/evloop.h"
#include "base/mem.h"
#include "base/test.h"
#include "mail/ipc.h"
#include "mail/params.h"
#include "mail/qfile.h"
#include "mail/spool.h"
#include "qmgr.h"

static char tmpdir[] = "/tmp/herald-qmgr-proto-XXXXXX";

/* a message with three recipients, open, as the parser needs it */
static struct qfile fake_qf;
static struct qfile_rcpt fake_rcpt[3];
static struct qmgr_msg fake_msg;

static void
fake_reset(void)
{
	if (fake_msg.res != NULL) {
		for (size_t i = 0; i < 3; i++)
			x_free(&fake_msg.res[i].reason);
		x_free(&fake_msg.res);
	}
	memset(&fake_msg, 0, sizeof(fake_msg));
	memset(&fake_qf, 0, sizeof(fake_qf));
	fake_qf.rcpt = fake_rcpt;
	fake_qf.nrcpt = 3;
	fake_msg.qf = &fake_qf;
	fake_msg.open = true;
	fake_msg.res = xcalloc(3, sizeof(*fake_msg.res));
	strcpy(fake_msg.qid, "0123456789ABCDEFG");
}

static bool remote_reply;	/* parse as remote's (conn_failed allowed) */
static bool conn_failed;	/* what the last remote reply said */

/* reply - parse a reply given as "name=value" strings (NULL ends) for
 * the request idx[0..n) */
static int
reply(const size_t *idx, size_t n, const char *const *pairs)
{
	struct ipc_msg m;
	struct buf why = BUF_INIT;
	int r;

	fake_reset();
	ipc_msg_init(&m);
	for (const char *const *p = pairs; *p != NULL; p++) {
		const char *eq = strchr(*p, '=');
		char *name = xstrndup(*p, (size_t)(eq - *p));

		ipc_put_str(&m, name, eq + 1);
		x_free(&name);
	}
	conn_failed = false;
	if (remote_reply)
		r = qmgr_deliver_parse_remote(&m, &fake_msg, idx, n,
		    &conn_failed, &why);
	else
		r = qmgr_deliver_parse_reply(&m, &fake_msg, idx, n, &why);
	ipc_msg_free(&m);
	buf_free(&why);
	return r;
}

static void
test_reply_good(void)
{
	const size_t idx[] = {2, 0};
	const char *const ok[] = {"status=ok",
	    "rcpt_index=2", "result=delivered", "dsn=2.0.0",
	    "reason=delivered to maildir",
	    "rcpt_index=0", "reason=over\tquota\nnow\033[31m", "dsn=5.2.2",
	    "result=bounced", NULL};
	const char *const noreason[] = {"status=ok", "rcpt_index=2",
	    "result=deferred", "dsn=4.3.0", "rcpt_index=0",
	    "result=delivered", "dsn=2.1.5", NULL};

	T_EQ_INT(reply(idx, 2, ok), 0);
	T_EQ_INT(fake_msg.res[2].status, QFILE_DELIVERED);
	T_EQ_STR(fake_msg.res[2].dsn, "2.0.0");
	T_EQ_STR(fake_msg.res[2].relay, "local");
	T_EQ_INT(fake_msg.res[0].status, QFILE_BOUNCED);
	/* control characters do not reach logs or DSN headers */
	T_EQ_STR(fake_msg.res[0].reason, "over quota now\\x1b[31m");
	T_EQ_INT(fake_msg.res[1].status, 0);
	T_EQ_INT(reply(idx, 2, noreason), 0);
	T_EQ_INT(fake_msg.res[2].status, QFILE_QUEUED);
	T_EQ_STR(fake_msg.res[2].reason, "");
	T_ASSERT(!fake_msg.res[2].infra);
	T_ASSERT(!fake_msg.res[0].relayed);
	/* delivered to a server without DSN: remote says relayed=1 */
	{
		const char *const relayed[] = {"status=ok", "rcpt_index=2",
		    "result=delivered", "dsn=2.0.0", "relayed=1",
		    "rcpt_index=0", "result=delivered", "dsn=2.0.0", NULL};

		T_EQ_INT(reply(idx, 2, relayed), 0);
		T_ASSERT(fake_msg.res[2].relayed);
		T_ASSERT(!fake_msg.res[0].relayed);
	}
	/* an alias with targets elsewhere too: local says forward=1 */
	{
		const char *const fwd[] = {"status=ok", "rcpt_index=2",
		    "result=delivered", "dsn=2.0.0", "forward=1",
		    "rcpt_index=0", "result=bounced", "dsn=5.1.1",
		    "forward=1", NULL};
		const char *const nofwd[] = {"status=ok", "rcpt_index=2",
		    "result=delivered", "dsn=2.0.0", "rcpt_index=0",
		    "result=delivered", "dsn=2.0.0", NULL};

		T_EQ_INT(reply(idx, 2, fwd), 0);
		T_ASSERT(fake_msg.res[2].forward);
		T_ASSERT(fake_msg.res[0].forward);
		T_EQ_INT(reply(idx, 2, nofwd), 0);
		T_ASSERT(!fake_msg.res[2].forward);
	}
}

/* remote's reply for the request {1, 2} when no server took it */
static const char *const conn_failed_reply[] = {"status=ok",
    "conn_failed=1", "rcpt_index=1", "result=deferred", "dsn=4.4.1",
    "reason=connect to mx[192.0.2.1]:25: Connection refused",
    "rcpt_index=2", "result=deferred", "dsn=4.4.1", NULL};

/*
 * Replies the strict check must refuse whole, recording nothing, for the
 * request {1, 2}: as local's reply, or (remote) as remote's.
 */
static const struct {
	const char *what;
	bool remote;
	const char *const *pairs;
} bad_replies[] = {
	{"no status", false, (const char *const[]){"rcpt_index=1", NULL}},
	{"status fail", false,
	    (const char *const[]){"status=fail", "reason=x", NULL}},
	{"status not first", false,
	    (const char *const[]){"result=delivered", "status=ok", NULL}},
	{"a recipient missing", false, (const char *const[]){"status=ok",
	    "rcpt_index=1", "result=delivered", "dsn=2.0.0", NULL}},
	{"a recipient extra", false, (const char *const[]){"status=ok",
	    "rcpt_index=1", "result=delivered", "dsn=2.0.0", "rcpt_index=2",
	    "result=delivered", "dsn=2.0.0", "rcpt_index=0",
	    "result=delivered", "dsn=2.0.0", NULL}},
	{"recipients out of order", false, (const char *const[]){"status=ok",
	    "rcpt_index=2", "result=delivered", "dsn=2.0.0", "rcpt_index=1",
	    "result=delivered", "dsn=2.0.0", NULL}},
	{"index out of the file", false, (const char *const[]){"status=ok",
	    "rcpt_index=1", "result=delivered", "dsn=2.0.0", "rcpt_index=9",
	    "result=delivered", "dsn=2.0.0", NULL}},
	{"index not a number", false, (const char *const[]){"status=ok",
	    "rcpt_index=1x", "result=delivered", "dsn=2.0.0", NULL}},
	{"result missing", false, (const char *const[]){"status=ok",
	    "rcpt_index=1", "dsn=2.0.0", "rcpt_index=2", "result=delivered",
	    "dsn=2.0.0", NULL}},
	{"dsn missing", false, (const char *const[]){"status=ok",
	    "rcpt_index=1", "result=delivered", "rcpt_index=2",
	    "result=delivered", "dsn=2.0.0", NULL}},
	{"result twice", false, (const char *const[]){"status=ok",
	    "rcpt_index=1", "result=delivered", "result=bounced", "dsn=2.0.0",
	    "rcpt_index=2", "result=delivered", "dsn=2.0.0", NULL}},
	{"dsn twice", false, (const char *const[]){"status=ok",
	    "rcpt_index=1", "result=delivered", "dsn=2.0.0", "dsn=2.0.0",
	    "rcpt_index=2", "result=delivered", "dsn=2.0.0", NULL}},
	{"reason twice", false, (const char *const[]){"status=ok",
	    "rcpt_index=1", "result=delivered", "dsn=2.0.0", "reason=a",
	    "reason=b", "rcpt_index=2", "result=delivered", "dsn=2.0.0",
	    NULL}},
	{"result unknown", false, (const char *const[]){"status=ok",
	    "rcpt_index=1", "result=lost", "dsn=2.0.0", "rcpt_index=2",
	    "result=delivered", "dsn=2.0.0", NULL}},
	{"dsn class not the result's", false, (const char *const[]){
	    "status=ok", "rcpt_index=1", "result=delivered", "dsn=5.0.0",
	    "rcpt_index=2", "result=delivered", "dsn=2.0.0", NULL}},
	{"dsn of two parts", false, (const char *const[]){"status=ok",
	    "rcpt_index=1", "result=bounced", "dsn=5.1", "rcpt_index=2",
	    "result=delivered", "dsn=2.0.0", NULL}},
	{"dsn subject too long", false, (const char *const[]){"status=ok",
	    "rcpt_index=1", "result=deferred", "dsn=4.1234.1", "rcpt_index=2",
	    "result=delivered", "dsn=2.0.0", NULL}},
	{"dsn with a blank", false, (const char *const[]){"status=ok",
	    "rcpt_index=1", "result=deferred", "dsn=4.1.1 ", "rcpt_index=2",
	    "result=delivered", "dsn=2.0.0", NULL}},
	/* relayed: only "1", once, and only when delivered */
	{"relayed not 1", false, (const char *const[]){"status=ok",
	    "rcpt_index=1", "result=delivered", "dsn=2.0.0", "relayed=yes",
	    "rcpt_index=2", "result=delivered", "dsn=2.0.0", NULL}},
	{"relayed twice", false, (const char *const[]){"status=ok",
	    "rcpt_index=1", "result=delivered", "dsn=2.0.0", "relayed=1",
	    "relayed=1", "rcpt_index=2", "result=delivered", "dsn=2.0.0",
	    NULL}},
	{"relayed and bounced", false, (const char *const[]){"status=ok",
	    "rcpt_index=1", "result=bounced", "dsn=5.0.0", "relayed=1",
	    "rcpt_index=2", "result=delivered", "dsn=2.0.0", NULL}},
	/* forward: only "1", once, never with deferred */
	{"forward not 1", false, (const char *const[]){"status=ok",
	    "rcpt_index=1", "result=delivered", "dsn=2.0.0", "forward=yes",
	    "rcpt_index=2", "result=delivered", "dsn=2.0.0", NULL}},
	{"forward twice", false, (const char *const[]){"status=ok",
	    "rcpt_index=1", "result=delivered", "dsn=2.0.0", "forward=1",
	    "forward=1", "rcpt_index=2", "result=delivered", "dsn=2.0.0",
	    NULL}},
	{"forward and deferred", false, (const char *const[]){"status=ok",
	    "rcpt_index=1", "result=deferred", "dsn=4.3.0", "forward=1",
	    "rcpt_index=2", "result=delivered", "dsn=2.0.0", NULL}},
	{"unknown attribute", false, (const char *const[]){"status=ok",
	    "rcpt_index=1", "result=delivered", "dsn=2.0.0", "rcpt_index=2",
	    "result=delivered", "dsn=2.0.0", "extra=1", NULL}},
	{"recipient field before rcpt_index", false, (const char *const[]){
	    "status=ok", "result=delivered", "rcpt_index=1",
	    "result=delivered", "dsn=2.0.0", "rcpt_index=2",
	    "result=delivered", "dsn=2.0.0", NULL}},
	/* conn_failed=1: remote's word that no server took the request;
	 * right after the status, once, "1" only, every recipient
	 * deferred; never from local */
	{"conn_failed not 1", true, (const char *const[]){"status=ok",
	    "conn_failed=yes", "rcpt_index=1", "result=deferred", "dsn=4.4.1",
	    "rcpt_index=2", "result=deferred", "dsn=4.4.1", NULL}},
	{"conn_failed twice", true, (const char *const[]){"status=ok",
	    "conn_failed=1", "conn_failed=1", "rcpt_index=1",
	    "result=deferred", "dsn=4.4.1", "rcpt_index=2", "result=deferred",
	    "dsn=4.4.1", NULL}},
	{"conn_failed after a recipient", true, (const char *const[]){
	    "status=ok", "rcpt_index=1", "conn_failed=1", "result=deferred",
	    "dsn=4.4.1", "rcpt_index=2", "result=deferred", "dsn=4.4.1",
	    NULL}},
	{"conn_failed with one delivered", true, (const char *const[]){
	    "status=ok", "conn_failed=1", "rcpt_index=1", "result=deferred",
	    "dsn=4.4.1", "rcpt_index=2", "result=delivered", "dsn=2.0.0",
	    NULL}},
	{"conn_failed before the status", true, (const char *const[]){
	    "conn_failed=1", "status=ok", "rcpt_index=1", "result=deferred",
	    "dsn=4.4.1", "rcpt_index=2", "result=deferred", "dsn=4.4.1",
	    NULL}},
	{"conn_failed from local", false, conn_failed_reply},
};

/* test_reply_bad - every bad reply refused, nothing recorded */
static void
test_reply_bad(void)
{
	static const size_t idx[] = {1, 2};

	for (size_t i = 0; i < sizeof(bad_replies) / sizeof(*bad_replies);
	    i++) {
		int r;

		remote_reply = bad_replies[i].remote;
		r = reply(idx, 2, bad_replies[i].pairs);
		remote_reply = false;
		if (r != -1)
			fprintf(stderr, "  bad reply accepted: %s\n",
			    bad_replies[i].what);
		T_EQ_INT(r, -1);
		T_EQ_INT(fake_msg.res[1].status, 0);
		T_EQ_INT(fake_msg.res[2].status, 0);
	}
}

/* test_reply_conn_failed - remote's conn_failed=1 (the refusals are in
 * bad_replies) */
static void
test_reply_conn_failed(void)
{
	const size_t idx[] = {1, 2};
	const char *const plain[] = {"status=ok", "rcpt_index=1",
	    "result=deferred", "dsn=4.4.1", "rcpt_index=2",
	    "result=delivered", "dsn=2.0.0", NULL};

	remote_reply = true;
	T_EQ_INT(reply(idx, 2, conn_failed_reply), 0);
	T_ASSERT(conn_failed);
	T_EQ_INT(fake_msg.res[1].status, QFILE_QUEUED);
	T_EQ_STR(fake_msg.res[1].relay, "remote");
	T_EQ_INT(reply(idx, 2, plain), 0);
	T_ASSERT(!conn_failed);
	remote_reply = false;
}

static void
test_request(void)
{
	struct ipc_msg m;
	const size_t idx[] = {0, 7, 3};
	struct buf out = BUF_INIT;
	const char *name, *value;
	size_t pos = 0;

	ipc_msg_init(&m);
	qmgr_deliver_request(&m, "0123456789ABCDEFG", idx, 3);
	while (ipc_next(&m, &pos, &name, &value))
		buf_printf(&out, "%s=%s;", name, value);
	T_EQ_STR(out.data, "request=deliver;queue_id=0123456789ABCDEFG;"
	    "rcpt_index=0;rcpt_index=7;rcpt_index=3;");
	ipc_msg_free(&m);
	buf_free(&out);
}

/* spin - run the loop briefly */
static long long
spin_stop(struct evloop *loop, void *ctx)
{
	evloop_stop(loop);
	return -1;
}

static void
spin(struct evloop *loop)
{
	(void)evloop_add_timer(loop, 1, spin_stop, NULL);
	(void)evloop_run(loop);
}

/* ctl_setup - a fresh state on a loop and a client connection to it */
static struct qmgr *
ctl_setup(int *client)
{
	static int n;
	char spool[300];
	struct buf why = BUF_INIT;
	int sv[2];

	snprintf(spool, sizeof(spool), "%s/spool%d", tmpdir, ++n);
	if (spool_setup(spool, (uid_t)-1, (gid_t)-1, &why) < 0) {
		fprintf(stderr, "spool_setup: %s\n", why.data);
		exit(1);
	}
	buf_free(&why);
	qmgr_state_init(&qmgr, NULL, evloop_new(), xstrdup(spool));
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0) {
		perror("socketpair");
		exit(1);
	}
	qmgr_ctl_accept(&qmgr, sv[0]);
	*client = sv[1];
	return &qmgr;
}

static void
ctl_teardown(struct qmgr *q, int client)
{
	qmgr_ctl_stop(q);
	close(client);
	evloop_cancel_timer(q->loop, &q->pump_timer);
	evloop_cancel_timer(q->loop, &q->due_timer);
	evloop_free(&q->loop);
	x_free(&q->hash);
	qmgr_dest_free_all(q);
	x_free(&q->spool);
}

/* drain - every byte the client can read now */
static void
drain(int fd, struct buf *out)
{
	char chunk[4096];
	ssize_t n;

	while ((n = recv(fd, chunk, sizeof(chunk), MSG_DONTWAIT)) > 0)
		buf_append(out, chunk, (size_t)n);
}

/* replies - the replies in raw as "name=value;...|" */
static void
replies(struct buf *raw, struct buf *out)
{
	struct ipc_msg m;
	struct buf why = BUF_INIT;

	ipc_msg_init(&m);
	buf_reset(out);
	while (ipc_frame_take(raw, &m, &why) == 1) {
		size_t pos = 0;
		const char *name, *value;

		while (ipc_next(&m, &pos, &name, &value))
			buf_printf(out, "%s=%s;", name, value);
		buf_puts(out, "|");
	}
	ipc_msg_free(&m);
	buf_free(&why);
}

static void
test_ctl_chunks(void)
{
	struct ipc_msg m;
	struct buf frames = BUF_INIT, raw = BUF_INIT, got = BUF_INIT;

	ipc_msg_init(&m);
	ipc_put_str(&m, IPC_REQUEST, "delete");
	ipc_put_str(&m, IPC_QUEUE_ID, "0123456789ABCDEFG");
	ipc_frame_encode(&m, &frames);
	ipc_msg_reset(&m);
	ipc_put_str(&m, IPC_REQUEST, "trigger");
	ipc_put_str(&m, IPC_QUEUE_ID, "0123456789ABCDEFH");
	ipc_frame_encode(&m, &frames);
	ipc_msg_reset(&m);
	ipc_put_str(&m, IPC_REQUEST, "flush");
	ipc_frame_encode(&m, &frames);
	ipc_msg_free(&m);

	for (size_t size = 1; size <= frames.len; size++) {
		int client;
		struct qmgr *q = ctl_setup(&client);

		buf_reset(&raw);
		for (size_t off = 0; off < frames.len; off += size) {
			size_t n = frames.len - off < size ? frames.len - off :
			    size;

			T_ASSERT(send(client, frames.data + off, n, 0) ==
			    (ssize_t)n);
			spin(q->loop);
			drain(client, &raw);
		}
		spin(q->loop);
		drain(client, &raw);
		replies(&raw, &got);
		if (strcmp(got.data, "status=fail;reason=no such message;|"
		    "status=ok;count=0;|") != 0)
			fprintf(stderr, "  chunk size %zu\n", size);
		T_EQ_STR(got.data, "status=fail;reason=no such message;|"
		    "status=ok;count=0;|");
		T_EQ_INT(q->nclients, 1);
		ctl_teardown(q, client);
	}
	buf_free(&frames);
	buf_free(&raw);
	buf_free(&got);
}

/* dropped - does this input make qmgr close the connection? */
static bool
dropped(const void *p, size_t n)
{
	int client;
	struct qmgr *q = ctl_setup(&client);
	bool gone;
	size_t off = 0;

	while (off < n) {
		ssize_t w = send(client, (const char *)p + off, n - off,
		    MSG_NOSIGNAL);

		if (w < 0 && errno == EAGAIN) {
			spin(q->loop);
			continue;
		}
		if (w <= 0)
			break;
		off += (size_t)w;
		spin(q->loop);
	}
	spin(q->loop);
	gone = q->nclients == 0;
	ctl_teardown(q, client);
	return gone;
}

static void
test_ctl_malformed(void)
{
	static const unsigned char empty[] = {0, 0, 0, 0};
	static const unsigned char huge[] = {0x7f, 0, 0, 0};
	static const unsigned char unterminated[] = {0, 0, 0, 3, 'a', 0, 'b'};
	static const unsigned char badname[] = {0, 0, 0, 4, 'A', 0, 'b', 0};
	struct ipc_msg m;
	struct buf frame = BUF_INIT, big = BUF_INIT;

	T_ASSERT(dropped(empty, sizeof(empty)));
	T_ASSERT(dropped(huge, sizeof(huge)));
	T_ASSERT(dropped(unterminated, sizeof(unterminated)));
	T_ASSERT(dropped(badname, sizeof(badname)));

	ipc_msg_init(&m);
	ipc_put_str(&m, IPC_QUEUE_ID, "0123456789ABCDEFG");
	ipc_frame_encode(&m, &frame);	/* no request */
	T_ASSERT(dropped(frame.data, frame.len));
	buf_reset(&frame);
	ipc_msg_reset(&m);
	ipc_put_str(&m, IPC_REQUEST, "trigger");
	ipc_put_str(&m, IPC_QUEUE_ID, "../../../etc/passwd");
	ipc_frame_encode(&m, &frame);
	T_ASSERT(dropped(frame.data, frame.len));

	/* a frame within IPC_MAX_FRAME but over the input bound */
	buf_reset(&frame);
	ipc_msg_reset(&m);
	for (int i = 0; i < QMGR_CLIENT_INPUT; i++)
		buf_putc(&big, 'x');
	ipc_put_str(&m, IPC_REQUEST, "flush");
	ipc_put_str(&m, IPC_REASON, big.data);
	ipc_frame_encode(&m, &frame);
	T_ASSERT(dropped(frame.data, frame.len));

	/* and a good frame is not dropped */
	buf_reset(&frame);
	ipc_msg_reset(&m);
	ipc_put_str(&m, IPC_REQUEST, "flush");
	ipc_frame_encode(&m, &frame);
	T_ASSERT(!dropped(frame.data, frame.len));
	ipc_msg_free(&m);
	buf_free(&frame);
	buf_free(&big);
}

static const struct test_case cases[] = {
	{"good replies are recorded", test_reply_good},
	{"malformed replies are refused whole", test_reply_bad},
	{"remote: conn_failed=1", test_reply_conn_failed},
	{"request frame", test_request},
	{"control frames at every chunk size", test_ctl_chunks},
	{"malformed control frames drop the connection", test_ctl_malformed},
	{0},
};

int
main(void)
{
	int r;

	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	cfg_defaults(params_table);
	r = test_run(cases);
	fake_reset();
	x_free(&fake_msg.res);
	test_rm_tree(tmpdir);
	return r;
}
