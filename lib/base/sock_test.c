/*
 * sock_test - unit tests for sock.c: address parsing, TCP and UNIX
 * listeners, address text, descriptor passing.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/sock.h"
#include "base/test.h"

static char sock_test_dir[] = "/tmp/herald-sock-test.XXXXXX";

/* sock_test_connect_tcp - blocking connect to family/addr/port, fd or -1 */
static int
sock_test_connect_tcp(int family, const char *addr, int port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd;

	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((unsigned short)port);
		if (inet_pton(AF_INET, addr, &s4->sin_addr) != 1)
			return -1;
		len = sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((unsigned short)port);
		if (inet_pton(AF_INET6, addr, &s6->sin6_addr) != 1)
			return -1;
		len = sizeof(*s6);
	}
	if ((fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* sock_test_accept - accept one connection on a non-blocking listener */
static int
sock_test_accept(int lfd)
{
	for (int i = 0; i < 200; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
			return fd;
		usleep(10000);
	}
	return -1;
}

/* sock_test_ipv6_ok - is IPv6 loopback usable here */
static bool
sock_test_ipv6_ok(void)
{
	struct sockaddr_in6 s6;
	int fd = socket(AF_INET6, SOCK_STREAM, 0);
	bool ok;

	if (fd < 0)
		return false;
	memset(&s6, 0, sizeof(s6));
	s6.sin6_family = AF_INET6;
	s6.sin6_addr = in6addr_loopback;
	ok = bind(fd, (struct sockaddr *)&s6, sizeof(s6)) == 0;
	close(fd);
	return ok;
}

static void
test_bad_addresses(void)
{
	static const char *bad[] = {
		"nope", "127.0.0.1", "127.0.0.1:", ":25", "127.0.0.1:99999",
		"127.0.0.1:25x", "127.0.0.1:-1", "::1:25", "[::1]25", "[::1",
		"[]:25", "127.0.0.1:1234567", "300.1.2.3:25", "bad_host:25",
		"[127.0.0.1]:25", "-mx.example:25", "mx..example:25", NULL,
	};

	for (int i = 0; bad[i] != NULL; i++) {
		struct buf why = BUF_INIT;
		int fd = sock_listen_tcp(bad[i], 5, &why);

		if (fd >= 0)
			close(fd);
		if (fd >= 0 || why.len == 0)
			fprintf(stderr, "  address \"%s\" accepted\n", bad[i]);
		buf_free(&why);
		T_ASSERT(fd < 0);
	}
}

/* test_listen_check - what a *_listen setting may name: no port 0 */
static void
test_listen_check(void)
{
	static const char *good[] = {
		"127.0.0.1:25", "*:1", "[::1]:65535", "[fe80::1%lo]:25",
		"mx.example.test:25", "localhost:2525", NULL,
	};
	static const char *bad[] = {
		"127.0.0.1:0", "*:0", "127.0.0.1:99999", "300.1.2.3:25",
		"bad_host:25", "[mx]:25", NULL,
	};
	struct buf why = BUF_INIT;

	for (int i = 0; good[i] != NULL; i++) {
		buf_reset(&why);
		if (sock_listen_check(good[i], &why) < 0)
			fprintf(stderr, "  %s\n", buf_cstr(&why));
		T_EQ_INT(sock_listen_check(good[i], &why), 0);
	}
	for (int i = 0; bad[i] != NULL; i++) {
		buf_reset(&why);
		T_EQ_INT(sock_listen_check(bad[i], &why), -1);
		T_ASSERT(strstr(buf_cstr(&why), bad[i]) != NULL);
	}
	buf_free(&why);
}

static void
test_listen_v4(void)
{
	struct buf why = BUF_INIT;
	int lfd, cfd, afd, port, fl;
	char text[64];

	lfd = sock_listen_tcp("127.0.0.1:0", 16, &why);
	T_EQ_STR(buf_cstr(&why), "");
	T_ASSERT(lfd >= 0);
	fl = fcntl(lfd, F_GETFL);
	T_ASSERT(fl & O_NONBLOCK);
	T_ASSERT(fcntl(lfd, F_GETFD) & FD_CLOEXEC);
	port = sock_local_port(lfd);
	T_ASSERT(port > 0);
	cfd = sock_test_connect_tcp(AF_INET, "127.0.0.1", port);
	T_ASSERT(cfd >= 0);
	afd = sock_test_accept(lfd);
	T_ASSERT(afd >= 0);
	sock_peer_text(afd, text, sizeof(text));
	T_EQ_STR(text, "127.0.0.1");
	T_EQ_INT(sock_local_port(afd), port);
	close(afd);
	close(cfd);
	close(lfd);
	buf_free(&why);
}

static void
test_listen_wildcard(void)
{
	struct buf why = BUF_INIT;
	int lfd, cfd, afd, port;
	char text[64];

	lfd = sock_listen_tcp("*:0", 16, &why);
	T_EQ_STR(buf_cstr(&why), "");
	T_ASSERT(lfd >= 0);
	port = sock_local_port(lfd);
	T_ASSERT(port > 0);
	/* IPv4 clients reach the wildcard listener, shown as IPv4. */
	cfd = sock_test_connect_tcp(AF_INET, "127.0.0.1", port);
	T_ASSERT(cfd >= 0);
	afd = sock_test_accept(lfd);
	T_ASSERT(afd >= 0);
	sock_peer_text(afd, text, sizeof(text));
	T_EQ_STR(text, "127.0.0.1");
	close(afd);
	close(cfd);
	if (sock_test_ipv6_ok()) {
		cfd = sock_test_connect_tcp(AF_INET6, "::1", port);
		T_ASSERT(cfd >= 0);
		afd = sock_test_accept(lfd);
		T_ASSERT(afd >= 0);
		sock_peer_text(afd, text, sizeof(text));
		T_EQ_STR(text, "::1");
		close(afd);
		close(cfd);
	}
	close(lfd);
	buf_free(&why);
}

static void
test_listen_v6(void)
{
	struct buf why = BUF_INIT;
	int lfd, cfd, afd, port;
	char text[64];

	if (!sock_test_ipv6_ok())
		return;
	lfd = sock_listen_tcp("[::1]:0", 16, &why);
	T_EQ_STR(buf_cstr(&why), "");
	T_ASSERT(lfd >= 0);
	port = sock_local_port(lfd);
	cfd = sock_test_connect_tcp(AF_INET6, "::1", port);
	T_ASSERT(cfd >= 0);
	afd = sock_test_accept(lfd);
	T_ASSERT(afd >= 0);
	sock_peer_text(afd, text, sizeof(text));
	T_EQ_STR(text, "::1");
	close(afd);
	close(cfd);
	close(lfd);
	buf_free(&why);
}

static void
test_listen_in_use(void)
{
	struct buf why = BUF_INIT;
	char addr[64];
	int lfd, lfd2;

	lfd = sock_listen_tcp("127.0.0.1:0", 16, &why);
	T_ASSERT(lfd >= 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", sock_local_port(lfd));
	lfd2 = sock_listen_tcp(addr, 16, &why);
	if (lfd2 >= 0)
		close(lfd2);
	close(lfd);
	T_ASSERT(lfd2 < 0);
	T_ASSERT(strstr(buf_cstr(&why), "in use") != NULL);
	buf_free(&why);
}

static void
test_unix(void)
{
	struct buf why = BUF_INIT;
	char path[256], file[256];
	struct stat st;
	int lfd, lfd2, cfd, afd, fd;

	snprintf(path, sizeof(path), "%s/sock", sock_test_dir);
	snprintf(file, sizeof(file), "%s/file", sock_test_dir);
	lfd = sock_listen_unix(path, 0660, 8, &why);
	T_EQ_STR(buf_cstr(&why), "");
	T_ASSERT(lfd >= 0);
	T_ASSERT(stat(path, &st) == 0);
	T_EQ_INT(st.st_mode & 07777, 0660);
	T_ASSERT(fcntl(lfd, F_GETFL) & O_NONBLOCK);
	/* An old socket file is replaced. */
	lfd2 = sock_listen_unix(path, 0600, 8, &why);
	T_EQ_STR(buf_cstr(&why), "");
	T_ASSERT(lfd2 >= 0);
	T_ASSERT(stat(path, &st) == 0);
	T_EQ_INT(st.st_mode & 07777, 0600);
	cfd = sock_connect_unix(path, true, &why);
	T_ASSERT(cfd >= 0);
	T_ASSERT(fcntl(cfd, F_GETFL) & O_NONBLOCK);
	afd = sock_test_accept(lfd2);
	T_ASSERT(afd >= 0);
	{
		char text[32];

		sock_peer_text(afd, text, sizeof(text));
		T_EQ_STR(text, "unix");
		T_EQ_INT(sock_local_port(afd), -1);
	}
	close(afd);
	close(cfd);
	close(lfd);
	close(lfd2);
	/* A file that is not a socket is left alone. */
	fd = open(file, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	T_ASSERT(fd >= 0);
	close(fd);
	lfd = sock_listen_unix(file, 0600, 8, &why);
	T_ASSERT(lfd < 0);
	T_ASSERT(strstr(buf_cstr(&why), "not a socket") != NULL);
	T_ASSERT(stat(file, &st) == 0 && S_ISREG(st.st_mode));
	buf_reset(&why);
	/* Nobody listening. */
	unlink(path);
	cfd = sock_connect_unix(path, false, &why);
	T_ASSERT(cfd < 0);
	T_ASSERT(why.len > 0);
	unlink(file);
	buf_free(&why);
}

static void
test_addr_text(void)
{
	struct sockaddr_in s4;
	struct sockaddr_in6 s6;
	struct sockaddr_un sun;
	char out[64];

	memset(&s4, 0, sizeof(s4));
	s4.sin_family = AF_INET;
	inet_pton(AF_INET, "192.0.2.1", &s4.sin_addr);
	sock_addr_text((struct sockaddr *)&s4, sizeof(s4), out, sizeof(out));
	T_EQ_STR(out, "192.0.2.1");
	T_ASSERT(!sock_addr_is_loopback((struct sockaddr *)&s4));
	inet_pton(AF_INET, "127.1.2.3", &s4.sin_addr);
	T_ASSERT(sock_addr_is_loopback((struct sockaddr *)&s4));

	memset(&s6, 0, sizeof(s6));
	s6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8::1", &s6.sin6_addr);
	sock_addr_text((struct sockaddr *)&s6, sizeof(s6), out, sizeof(out));
	T_EQ_STR(out, "2001:db8::1");
	T_ASSERT(!sock_addr_is_loopback((struct sockaddr *)&s6));
	inet_pton(AF_INET6, "::ffff:198.51.100.7", &s6.sin6_addr);
	sock_addr_text((struct sockaddr *)&s6, sizeof(s6), out, sizeof(out));
	T_EQ_STR(out, "198.51.100.7");
	T_ASSERT(!sock_addr_is_loopback((struct sockaddr *)&s6));
	inet_pton(AF_INET6, "::ffff:127.0.0.1", &s6.sin6_addr);
	T_ASSERT(sock_addr_is_loopback((struct sockaddr *)&s6));
	inet_pton(AF_INET6, "::1", &s6.sin6_addr);
	T_ASSERT(sock_addr_is_loopback((struct sockaddr *)&s6));
	sock_addr_text((struct sockaddr *)&s6, sizeof(s6), out, sizeof(out));
	T_EQ_STR(out, "::1");

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	sock_addr_text((struct sockaddr *)&sun, sizeof(sun), out, sizeof(out));
	T_EQ_STR(out, "unix");
	T_ASSERT(sock_addr_is_loopback((struct sockaddr *)&sun));
	/* Truncated output stays a C string. */
	inet_pton(AF_INET, "192.0.2.1", &s4.sin_addr);
	sock_addr_text((struct sockaddr *)&s4, sizeof(s4), out, 4);
	T_ASSERT(strlen(out) < 4);
}

static void
test_pass_fd(void)
{
	int sp[2], pfd[2], got = -1;
	char data[16], rd[8];
	long n;

	T_ASSERT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0);
	T_ASSERT(pipe(pfd) == 0);
	T_EQ_INT(sock_send_fd(sp[0], "hello", 5, pfd[1]), 5);
	close(pfd[1]);
	n = sock_recv_fd(sp[1], data, sizeof(data), &got);
	T_EQ_INT(n, 5);
	T_EQ_MEM(data, 5, "hello", 5);
	T_ASSERT(got >= 0);
	T_ASSERT(fcntl(got, F_GETFD) & FD_CLOEXEC);
	/* The received descriptor is the pipe's write end. */
	T_EQ_INT(write(got, "xyz", 3), 3);
	close(got);
	T_EQ_INT(read(pfd[0], rd, sizeof(rd)), 3);
	T_EQ_MEM(rd, 3, "xyz", 3);
	close(pfd[0]);

	/* No descriptor attached. */
	T_EQ_INT(sock_send_fd(sp[0], "abc", 3, -1), 3);
	n = sock_recv_fd(sp[1], data, sizeof(data), &got);
	T_EQ_INT(n, 3);
	T_EQ_INT(got, -1);

	/* EOF */
	close(sp[0]);
	n = sock_recv_fd(sp[1], data, sizeof(data), &got);
	T_EQ_INT(n, 0);
	T_EQ_INT(got, -1);
	close(sp[1]);
}

static void
test_recv_extra_fds(void)
{
	int sp[2], p1[2], p2[2], got = -1, fds[2];
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int) * 2)];
	} cm;
	struct msghdr msg;
	struct iovec iov;
	struct cmsghdr *c;
	char data[4];
	long n;

	T_ASSERT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0);
	T_ASSERT(pipe(p1) == 0 && pipe(p2) == 0);
	memset(&msg, 0, sizeof(msg));
	memset(&cm, 0, sizeof(cm));
	iov.iov_base = (void *)"x";
	iov.iov_len = 1;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cm.buf;
	msg.msg_controllen = sizeof(cm.buf);
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * 2);
	fds[0] = p1[1];
	fds[1] = p2[1];
	memcpy(CMSG_DATA(c), fds, sizeof(fds));
	T_EQ_INT(sendmsg(sp[0], &msg, 0), 1);
	close(p1[1]);
	close(p2[1]);
	n = sock_recv_fd(sp[1], data, sizeof(data), &got);
	T_EQ_INT(n, 1);
	T_ASSERT(got >= 0);
	close(got);
	/* Both write ends are closed now: the extra one was not leaked. */
	T_EQ_INT(read(p1[0], data, 1), 0);
	T_EQ_INT(read(p2[0], data, 1), 0);
	close(p1[0]);
	close(p2[0]);
	close(sp[0]);
	close(sp[1]);
}

static void
test_nonblock_cloexec(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	T_ASSERT(fd >= 0);
	T_EQ_INT(sock_set_nonblock(fd, true), 0);
	T_ASSERT(fcntl(fd, F_GETFL) & O_NONBLOCK);
	T_EQ_INT(sock_set_nonblock(fd, false), 0);
	T_ASSERT(!(fcntl(fd, F_GETFL) & O_NONBLOCK));
	T_EQ_INT(sock_set_cloexec(fd, true), 0);
	T_ASSERT(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	T_EQ_INT(sock_set_cloexec(fd, false), 0);
	T_ASSERT(!(fcntl(fd, F_GETFD) & FD_CLOEXEC));
	close(fd);
	T_EQ_INT(sock_set_nonblock(fd, true), -1);
}

static const struct test_case cases[] = {
	{"bad addresses are refused", test_bad_addresses},
	{"listen addresses as configured", test_listen_check},
	{"listen on 127.0.0.1", test_listen_v4},
	{"listen on *", test_listen_wildcard},
	{"listen on [::1]", test_listen_v6},
	{"address in use", test_listen_in_use},
	{"unix listener and connect", test_unix},
	{"address text and loopback", test_addr_text},
	{"pass a descriptor", test_pass_fd},
	{"extra descriptors are closed", test_recv_extra_fds},
	{"nonblock and cloexec", test_nonblock_cloexec},
	{0},
};

int
main(void)
{
	int rc;

	if (mkdtemp(sock_test_dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	rc = test_run(cases);
	rmdir(sock_test_dir);
	return rc;
}
