/*
 * master_notify_test - the sd_notify datagrams: to a socket path and to
 * an abstract name, $NOTIFY_SOCKET gone from the environment afterwards,
 * nothing sent (and nothing fails) without it.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/test.h"
#include "master.h"

/* bind_dgram - a datagram socket bound to name ("@x": abstract) */
static int
bind_dgram(const char *name)
{
	struct sockaddr_un sa;
	socklen_t len;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		perror("socket");
		exit(1);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	strcpy(sa.sun_path, name);
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
	    strlen(name) + 1);
	if (name[0] == '@') {
		sa.sun_path[0] = '\0';
		len--;
	}
	if (bind(fd, (struct sockaddr *)&sa, len) < 0) {
		perror(name);
		exit(1);
	}
	return fd;
}

/* recv_text - one datagram as text, or "" if none waits */
static const char *
recv_text(int fd)
{
	static char buf[600];
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static void
test_path_and_abstract(void)
{
	char path[] = "/tmp/master_notify_test.XXXXXX", sock[200], abs[64];
	int fd;

	T_ASSERT(mkdtemp(path) != NULL);
	snprintf(sock, sizeof(sock), "%s/notify", path);
	fd = bind_dgram(sock);
	T_ASSERT(setenv("NOTIFY_SOCKET", sock, 1) == 0);
	master_notify_init();
	T_ASSERT(getenv("NOTIFY_SOCKET") == NULL);
	master_notify("READY=1\nMAINPID=%d", 42);
	T_EQ_STR(recv_text(fd), "READY=1\nMAINPID=42");
	master_notify_reloading();
	T_ASSERT(strncmp(recv_text(fd), "RELOADING=1\nMONOTONIC_USEC=", 27) ==
	    0);
	close(fd);
	unlink(sock);
	rmdir(path);

	snprintf(abs, sizeof(abs), "@herald-notify-test-%ld", (long)getpid());
	fd = bind_dgram(abs);
	T_ASSERT(setenv("NOTIFY_SOCKET", abs, 1) == 0);
	master_notify_init();
	master_notify("STOPPING=1");
	T_EQ_STR(recv_text(fd), "STOPPING=1");
	close(fd);
}

static void
test_without_manager(void)
{
	T_ASSERT(unsetenv("NOTIFY_SOCKET") == 0);
	master_notify_init();
	master_notify("READY=1");	/* nothing to send to: no effect */
	T_ASSERT(setenv("NOTIFY_SOCKET", "relative/path", 1) == 0);
	master_notify_init();		/* refused with a warning */
	T_ASSERT(getenv("NOTIFY_SOCKET") == NULL);
	master_notify("READY=1");
}

static const struct test_case cases[] = {
	{"path and abstract sockets", test_path_and_abstract},
	{"no service manager", test_without_manager},
	{0},
};

int
main(void)
{
	return test_run(cases);
}
