/*
 * ipc_test - frames: building, parsing malformed bodies, incremental
 * framing at every chunk size, blocking I/O with deadlines and fd passing.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/sock.h"
#include "base/test.h"
#include "mail/ipc.h"

/* sample - a message with repeated names and an empty value */
static void
sample(struct ipc_msg *m)
{
	ipc_msg_init(m);
	ipc_put_str(m, IPC_REQUEST, "deliver");
	ipc_put_str(m, IPC_QUEUE_ID, "0123456789ABCDEFG");
	ipc_put_int(m, IPC_RCPT_INDEX, 0);
	ipc_put_int(m, IPC_RCPT_INDEX, 7);
	ipc_put_str(m, IPC_REASON, "");
	ipc_put_int(m, IPC_SIZE, -42);
}

static void
test_build_get(void)
{
	struct ipc_msg m;
	long long v = 0;
	size_t pos = 0;
	const char *n, *val;
	const char *idx[2] = {NULL, NULL};
	int k = 0;

	sample(&m);
	T_EQ_STR(ipc_get_str(&m, IPC_REQUEST), "deliver");
	T_EQ_STR(ipc_get_str(&m, IPC_REASON), "");
	T_ASSERT(ipc_get_str(&m, IPC_STATUS) == NULL);
	T_EQ_INT(ipc_get_int(&m, IPC_RCPT_INDEX, &v), 0);
	T_EQ_INT(v, 0);
	T_EQ_INT(ipc_get_int(&m, IPC_SIZE, &v), 0);
	T_EQ_INT(v, -42);
	T_EQ_INT(ipc_get_int(&m, IPC_REQUEST, &v), -1);
	T_EQ_INT(ipc_get_int(&m, IPC_REASON, &v), -1);
	T_EQ_INT(ipc_get_int(&m, IPC_PID, &v), -1);
	while (ipc_next(&m, &pos, &n, &val)) {
		if (strcmp(n, IPC_RCPT_INDEX) == 0 && k < 2)
			idx[k++] = val;
	}
	T_EQ_INT(k, 2);
	T_EQ_STR(idx[0], "0");
	T_EQ_STR(idx[1], "7");
	ipc_msg_reset(&m);
	T_EQ_INT(m.body.len, 0);
	pos = 0;
	T_EQ_INT(ipc_next(&m, &pos, &n, &val), 0);
	ipc_msg_free(&m);
}

static void
test_expect_only(void)
{
	struct ipc_msg m;
	struct buf why = BUF_INIT;
	const char *const ok[] = {IPC_REQUEST, IPC_QUEUE_ID, IPC_RCPT_INDEX,
	    IPC_REASON, IPC_SIZE, NULL};
	const char *const narrow[] = {IPC_REQUEST, IPC_QUEUE_ID, NULL};

	sample(&m);
	T_EQ_INT(ipc_expect_only(&m, ok, &why), 0);
	T_EQ_INT(ipc_expect_only(&m, narrow, &why), -1);
	T_ASSERT(strstr(why.data, "rcpt_index") != NULL);
	ipc_msg_free(&m);
	buf_free(&why);
}

static void
test_put_panics(void)
{
	struct ipc_msg m;

	ipc_msg_init(&m);
	T_EXPECT_DEATH(ipc_put_str(&m, "Bad", "x"));
	T_EXPECT_DEATH(ipc_put_str(&m, "", "x"));
	T_EXPECT_DEATH(ipc_put_str(&m, "a-b", "x"));
	T_EXPECT_DEATH(ipc_put_str(&m,
	    "abcdefghijabcdefghijabcdefghijabc", "x"));
	T_EXPECT_DEATH(ipc_put_mem(&m, "a", "x\0y", 3));
	T_EXPECT_DEATH(ipc_put_str(&m, "a", NULL));
	ipc_put_str(&m, "abcdefghijabcdefghijabcdefghijab", "x");	/* 32 ok */
	T_EQ_STR(ipc_get_str(&m, "abcdefghijabcdefghijabcdefghijab"), "x");
	ipc_msg_free(&m);
	ipc_msg_init(&m);
	{
		struct buf out = BUF_INIT;

		T_EXPECT_DEATH(ipc_frame_encode(&m, &out));
		buf_free(&out);
	}
	ipc_msg_free(&m);
}

/* malformed bodies: each must be refused */
static const struct {
	const char *body;
	size_t len;
} bad_bodies[] = {
	{"", 0},
	{"a", 1},
	{"a\0", 2},
	{"a\0b", 3},
	{"\0b\0", 3},
	{"A\0b\0", 4},
	{"a-b\0c\0", 6},
	{"a b\0c\0", 6},
	{"a\0b\0c", 5},
	{"a\0b\0c\0", 6},
	{"a\0b\0\0", 5},
	{"abcdefghijabcdefghijabcdefghijabc\0x\0", 37},
	{"\xc3\xa9\0x\0", 5},
};

static void
test_parse_malformed(void)
{
	struct ipc_msg m;
	struct buf why = BUF_INIT;

	ipc_msg_init(&m);
	for (size_t i = 0; i < sizeof(bad_bodies) / sizeof(bad_bodies[0]);
	    i++) {
		buf_reset(&why);
		if (ipc_parse(&m, bad_bodies[i].body, bad_bodies[i].len,
		    &why) != -1) {
			fprintf(stderr, "  case %zu accepted\n", i);
			T_ASSERT(0);
		}
		T_ASSERT(why.len > 0);
		T_EQ_INT(m.body.len, 0);
	}
	T_EQ_INT(ipc_parse(&m, "a\0\0", 3, &why), 0);
	T_EQ_STR(ipc_get_str(&m, "a"), "");
	ipc_msg_free(&m);
	buf_free(&why);
}

/* every prefix of a good body is good exactly at pair boundaries; every
 * single-byte change is either refused or parses to something sane */
static void
test_parse_bytewise(void)
{
	struct ipc_msg m, p;
	struct buf why = BUF_INIT, copy = BUF_INIT;
	size_t bound[16], nb = 0, pos = 0;
	const char *n, *v;

	sample(&m);
	ipc_msg_init(&p);
	while (ipc_next(&m, &pos, &n, &v))
		bound[nb++] = pos;
	for (size_t cut = 0; cut <= m.body.len; cut++) {
		bool at_bound = false;
		int r;

		for (size_t i = 0; i < nb; i++)
			if (bound[i] == cut)
				at_bound = true;
		r = ipc_parse(&p, m.body.data, cut, &why);
		if (r != (at_bound ? 0 : -1))
			fprintf(stderr, "  prefix %zu: %d\n", cut, r);
		T_EQ_INT(r, at_bound ? 0 : -1);
	}
	/* flip each byte to each of a few nasty values */
	for (size_t i = 0; i < m.body.len; i++) {
		static const char subst[] = {'\0', 'A', '-', 'x', '\xff'};

		for (size_t s = 0; s < sizeof(subst); s++) {
			buf_reset(&copy);
			buf_append(&copy, m.body.data, m.body.len);
			copy.data[i] = subst[s];
			if (ipc_parse(&p, copy.data, copy.len, &why) == 0) {
				/* accepted: it must be walkable */
				size_t q = 0, cnt = 0;

				while (ipc_next(&p, &q, &n, &v))
					cnt++;
				T_EQ_INT(q, copy.len);
				T_ASSERT(cnt > 0);
			}
		}
	}
	ipc_msg_free(&m);
	ipc_msg_free(&p);
	buf_free(&why);
	buf_free(&copy);
}

/* feed a stream of frames through ipc_frame_take at every chunk size */
static void
test_frame_take_chunks(void)
{
	struct ipc_msg a, b, c, got;
	struct buf stream = BUF_INIT, in = BUF_INIT, why = BUF_INIT;

	sample(&a);
	ipc_msg_init(&b);
	ipc_put_str(&b, IPC_STATUS, "ok");
	ipc_msg_init(&c);
	ipc_put_str(&c, IPC_REQUEST, "trigger");
	ipc_put_str(&c, IPC_QUEUE_ID, "X");
	ipc_msg_init(&got);
	ipc_frame_encode(&a, &stream);
	ipc_frame_encode(&b, &stream);
	ipc_frame_encode(&c, &stream);
	for (size_t chunk = 1; chunk <= stream.len; chunk++) {
		const struct ipc_msg *want[3] = {&a, &b, &c};
		size_t off = 0, nf = 0;

		buf_reset(&in);
		while (off < stream.len) {
			size_t n = stream.len - off < chunk ? stream.len - off
			    : chunk;
			int r;

			buf_append(&in, stream.data + off, n);
			off += n;
			while ((r = ipc_frame_take(&in, &got, &why)) == 1) {
				T_ASSERT(nf < 3);
				T_EQ_MEM(got.body.data, got.body.len,
				    want[nf]->body.data, want[nf]->body.len);
				nf++;
			}
			T_EQ_INT(r, 0);
		}
		T_EQ_INT(nf, 3);
		T_EQ_INT(in.len, 0);
	}
	ipc_msg_free(&a);
	ipc_msg_free(&b);
	ipc_msg_free(&c);
	ipc_msg_free(&got);
	buf_free(&stream);
	buf_free(&in);
	buf_free(&why);
}

static void
test_frame_take_bad(void)
{
	struct ipc_msg m;
	struct buf in = BUF_INIT, why = BUF_INIT;

	ipc_msg_init(&m);
	/* length 0 */
	buf_append(&in, "\0\0\0\0", 4);
	T_EQ_INT(ipc_frame_take(&in, &m, &why), -1);
	/* over the limit: refused from the header alone */
	buf_reset(&in);
	buf_append(&in, "\x00\x40\x00\x01", 4);
	T_EQ_INT(ipc_frame_take(&in, &m, &why), -1);
	T_ASSERT(strstr(why.data, "limit") != NULL);
	buf_reset(&in);
	buf_append(&in, "\xff\xff\xff\xff", 4);
	T_EQ_INT(ipc_frame_take(&in, &m, &why), -1);
	/* exactly the limit is only waiting for more */
	buf_reset(&in);
	buf_append(&in, "\x00\x40\x00\x00", 4);
	T_EQ_INT(ipc_frame_take(&in, &m, &why), 0);
	/* a short header is only waiting */
	buf_reset(&in);
	buf_append(&in, "\x00\x00", 2);
	T_EQ_INT(ipc_frame_take(&in, &m, &why), 0);
	/* a complete frame with a malformed body */
	buf_reset(&in);
	buf_append(&in, "\x00\x00\x00\x03" "a\0b", 7);
	T_EQ_INT(ipc_frame_take(&in, &m, &why), -1);
	buf_reset(&in);
	buf_append(&in, "\x00\x00\x00\x04" "X\0b\0", 8);
	T_EQ_INT(ipc_frame_take(&in, &m, &why), -1);
	ipc_msg_free(&m);
	buf_free(&in);
	buf_free(&why);
}

/* count_fds - open descriptors of this process */
static int
count_fds(void)
{
	int n = 0;

	for (int fd = 0; fd < 1024; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			n++;
	return n;
}

static void
test_send_recv_fd(void)
{
	int sv[2], pp[2], fd = -1;
	struct ipc_msg m, got;
	struct buf why = BUF_INIT;
	char c = 0;

	T_ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	T_ASSERT(pipe(pp) == 0);
	sample(&m);
	ipc_msg_init(&got);
	T_EQ_INT(ipc_send(sv[0], &m, pp[0], 1000, &why), 0);
	T_EQ_INT(ipc_send(sv[0], &m, -1, 1000, &why), 0);
	T_EQ_INT(ipc_recv(sv[1], &got, &fd, 1000, &why), 1);
	T_EQ_MEM(got.body.data, got.body.len, m.body.data, m.body.len);
	T_ASSERT(fd >= 0 && fd != pp[0]);
	T_ASSERT(write(pp[1], "z", 1) == 1);
	T_ASSERT(read(fd, &c, 1) == 1);
	T_EQ_INT(c, 'z');
	T_ASSERT(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	close(fd);
	/* second frame carries none */
	T_EQ_INT(ipc_recv(sv[1], &got, &fd, 1000, &why), 1);
	T_EQ_INT(fd, -1);
	/* fd_r NULL: the frame with a descriptor is refused, fd closed */
	{
		int before = count_fds();

		T_EQ_INT(ipc_send(sv[0], &m, pp[0], 1000, &why), 0);
		T_EQ_INT(ipc_recv(sv[1], &got, NULL, 1000, &why), -1);
		T_ASSERT(strstr(why.data, "descriptor") != NULL);
		T_EQ_INT(count_fds(), before);
	}
	/* clean EOF */
	close(sv[0]);
	T_EQ_INT(ipc_recv(sv[1], &got, &fd, 1000, &why), 0);
	close(sv[1]);
	close(pp[0]);
	close(pp[1]);
	ipc_msg_free(&m);
	ipc_msg_free(&got);
	buf_free(&why);
}

static void
test_recv_bad_stream(void)
{
	static const struct {
		const char *bytes;
		size_t len;
	} cases[] = {
		{"\0\0", 2},			/* EOF in header */
		{"\0\0\0\x05" "ab", 6},		/* EOF in body */
		{"\0\0\0\0", 4},			/* empty frame */
		{"\x01\0\0\0", 4},		/* too long */
		{"\0\0\0\x03" "a\0b", 7},	/* value not terminated */
	};
	struct ipc_msg m;
	struct buf why = BUF_INIT;

	ipc_msg_init(&m);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int sv[2];

		T_ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
		T_ASSERT(write(sv[0], cases[i].bytes, cases[i].len) ==
		    (ssize_t)cases[i].len);
		close(sv[0]);
		buf_reset(&why);
		T_EQ_INT(ipc_recv(sv[1], &m, NULL, 1000, &why), -1);
		T_ASSERT(why.len > 0);
		close(sv[1]);
	}
	ipc_msg_free(&m);
	buf_free(&why);
}

/* the bytes of a frame arriving one at a time with pauses */
static void
test_recv_trickle(void)
{
	int sv[2];
	pid_t pid;
	struct ipc_msg m, got;
	struct buf enc = BUF_INIT, why = BUF_INIT;
	int st;

	sample(&m);
	ipc_msg_init(&got);
	ipc_frame_encode(&m, &enc);
	ipc_frame_encode(&m, &enc);
	T_ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	pid = fork();
	T_ASSERT(pid >= 0);
	if (pid == 0) {
		close(sv[1]);
		for (size_t i = 0; i < enc.len; i++) {
			struct timespec ts = {0, 200000};

			if (write(sv[0], enc.data + i, 1) != 1)
				_exit(1);
			nanosleep(&ts, NULL);
		}
		_exit(0);
	}
	close(sv[0]);
	for (int k = 0; k < 2; k++) {
		T_EQ_INT(ipc_recv(sv[1], &got, NULL, 10000, &why), 1);
		T_EQ_MEM(got.body.data, got.body.len, m.body.data,
		    m.body.len);
	}
	T_EQ_INT(ipc_recv(sv[1], &got, NULL, 10000, &why), 0);
	close(sv[1]);
	T_ASSERT(waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
	    WEXITSTATUS(st) == 0);
	ipc_msg_free(&m);
	ipc_msg_free(&got);
	buf_free(&enc);
	buf_free(&why);
}

/* a frame of the maximum size crosses a socket buffer many times */
static void
test_big_frame(void)
{
	int sv[2];
	pid_t pid;
	struct ipc_msg m, got;
	struct buf why = BUF_INIT;
	char *val;
	size_t vlen = IPC_MAX_FRAME - 10;
	int st, fd = -1;

	val = malloc(vlen);
	T_ASSERT(val != NULL);
	memset(val, 'q', vlen);
	val[vlen - 1] = 'e';
	ipc_msg_init(&m);
	ipc_put_mem(&m, "v", val, vlen);	/* 3 + vlen bytes */
	ipc_put_str(&m, "w", "");
	ipc_put_str(&m, "x", "");
	T_EQ_INT(m.body.len, IPC_MAX_FRAME - 1);
	ipc_msg_init(&got);
	T_ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	pid = fork();
	T_ASSERT(pid >= 0);
	if (pid == 0) {
		close(sv[1]);
		_exit(ipc_send(sv[0], &m, -1, 20000, &why) == 0 ? 0 : 1);
	}
	close(sv[0]);
	T_EQ_INT(ipc_recv(sv[1], &got, NULL, 20000, &why), 1);
	T_EQ_MEM(got.body.data, got.body.len, m.body.data, m.body.len);
	T_ASSERT(waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
	    WEXITSTATUS(st) == 0);
	close(sv[1]);
	/* the same with a descriptor: it comes once, with the first bytes */
	T_ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	pid = fork();
	T_ASSERT(pid >= 0);
	if (pid == 0) {
		close(sv[1]);
		_exit(ipc_send(sv[0], &m, 0, 20000, &why) == 0 ? 0 : 1);
	}
	close(sv[0]);
	T_EQ_INT(ipc_recv(sv[1], &got, &fd, 20000, &why), 1);
	T_ASSERT(fd >= 0);
	close(fd);
	T_EQ_MEM(got.body.data, got.body.len, m.body.data, m.body.len);
	T_ASSERT(waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
	    WEXITSTATUS(st) == 0);
	close(sv[1]);
	/* over the limit: ipc_send refuses before writing */
	ipc_put_mem(&m, "y", "12", 2);
	T_ASSERT(m.body.len > IPC_MAX_FRAME);
	T_EQ_INT(ipc_send(-1, &m, -1, 100, &why), -1);
	free(val);
	ipc_msg_free(&m);
	ipc_msg_free(&got);
	buf_free(&why);
}

/* elapsed_ms - milliseconds since t0 */
static long
elapsed_ms(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) * 1000 +
	    (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

static void
test_deadlines(void)
{
	int sv[2];
	struct ipc_msg m, got;
	struct buf why = BUF_INIT;
	struct timespec t0;
	long ms;
	char *big;
	size_t blen = 2 * 1024 * 1024;

	T_ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	ipc_msg_init(&got);
	/* the peer never answers */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	T_EQ_INT(ipc_recv(sv[1], &got, NULL, 150, &why), -1);
	ms = elapsed_ms(&t0);
	T_EQ_STR(why.data, "timeout");
	T_ASSERT(ms >= 140 && ms < 5000);
	/* half a frame, then silence */
	T_ASSERT(write(sv[0], "\0\0\0\x08" "ab", 6) == 6);
	buf_reset(&why);
	T_EQ_INT(ipc_recv(sv[1], &got, NULL, 100, &why), -1);
	T_EQ_STR(why.data, "timeout");
	/* the peer never reads: the send times out */
	big = malloc(blen);
	T_ASSERT(big != NULL);
	memset(big, 'b', blen);
	ipc_msg_init(&m);
	ipc_put_mem(&m, "big", big, blen);
	buf_reset(&why);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	T_EQ_INT(ipc_send(sv[1], &m, -1, 150, &why), -1);
	ms = elapsed_ms(&t0);
	T_EQ_STR(why.data, "timeout");
	T_ASSERT(ms >= 140 && ms < 5000);
	/* a closed peer: an error, not SIGPIPE */
	close(sv[0]);
	buf_reset(&why);
	T_EQ_INT(ipc_send(sv[1], &m, -1, 150, &why), -1);
	T_ASSERT(strstr(why.data, "send") != NULL);
	close(sv[1]);
	free(big);
	ipc_msg_free(&m);
	ipc_msg_free(&got);
	buf_free(&why);
}

/* serve - child: accept one connection, answer every frame with
 * status=ok and an echo of its request (or never answer) */
static void
serve(int lfd, bool answer)
{
	struct ipc_msg in, out;
	struct buf why = BUF_INIT;
	int c;

	ipc_msg_init(&in);
	ipc_msg_init(&out);
	sock_set_nonblock(lfd, false);
	c = accept(lfd, NULL, NULL);
	if (c < 0)
		_exit(1);
	while (ipc_recv(c, &in, NULL, 5000, &why) == 1) {
		if (!answer) {
			sleep(5);
			_exit(0);
		}
		ipc_msg_reset(&out);
		ipc_put_str(&out, IPC_STATUS, "ok");
		ipc_put_str(&out, IPC_VALUE, ipc_get_str(&in, IPC_REQUEST));
		if (ipc_send(c, &out, -1, 5000, &why) < 0)
			_exit(1);
	}
	_exit(0);
}

static void
test_call(void)
{
	char dir[] = "/tmp/ipc_test.XXXXXX", path[128];
	struct ipc_msg req, rep;
	struct buf why = BUF_INIT;
	int lfd, st;
	pid_t pid;

	T_ASSERT(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/sock", dir);
	ipc_msg_init(&req);
	ipc_msg_init(&rep);
	ipc_put_str(&req, IPC_REQUEST, "status");
	lfd = sock_listen_unix(path, 0600, 8, &why);
	T_ASSERT(lfd >= 0);
	pid = fork();
	T_ASSERT(pid >= 0);
	if (pid == 0)
		serve(lfd, true);
	T_EQ_INT(ipc_call(path, &req, &rep, 5000, &why), 0);
	T_EQ_STR(ipc_get_str(&rep, IPC_STATUS), "ok");
	T_EQ_STR(ipc_get_str(&rep, IPC_VALUE), "status");
	T_ASSERT(waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
	    WEXITSTATUS(st) == 0);
	/* a server that never answers */
	pid = fork();
	T_ASSERT(pid >= 0);
	if (pid == 0)
		serve(lfd, false);
	buf_reset(&why);
	T_EQ_INT(ipc_call(path, &req, &rep, 200, &why), -1);
	T_EQ_STR(why.data, "timeout");
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	close(lfd);
	unlink(path);
	/* nobody listening */
	buf_reset(&why);
	T_EQ_INT(ipc_call(path, &req, &rep, 200, &why), -1);
	T_ASSERT(why.len > 0);
	rmdir(dir);
	ipc_msg_free(&req);
	ipc_msg_free(&rep);
	buf_free(&why);
}

static const struct test_case cases[] = {
	{"build and get", test_build_get},
	{"expect only", test_expect_only},
	{"put panics", test_put_panics},
	{"parse malformed", test_parse_malformed},
	{"parse byte by byte", test_parse_bytewise},
	{"frame take at every chunk size", test_frame_take_chunks},
	{"frame take bad", test_frame_take_bad},
	{"send/recv with fd", test_send_recv_fd},
	{"recv bad stream", test_recv_bad_stream},
	{"recv trickle", test_recv_trickle},
	{"big frame", test_big_frame},
	{"deadlines", test_deadlines},
	{"call", test_call},
	{0},
};

int
main(void)
{
	return test_run(cases);
}
