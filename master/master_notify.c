/*
 * master_notify - readiness and state for systemd (sd_notify(3)'s
 * protocol, spoken directly): when $NOTIFY_SOCKET names a datagram
 * socket (a path, or "@name" in the abstract namespace), master sends it
 * "READY=1" once the services are started, "RELOADING=1" and "READY=1"
 * around a reload, and "STOPPING=1" when it stops, so a Type=notify unit
 * knows when herald serves. The variable is removed from the environment
 * so that no service inherits it. Without it nothing is sent.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "master.h"

#define MASTER_NOTIFY_MAX 512	/* one message */

static struct sockaddr_un master_notify_addr;
static socklen_t master_notify_len;	/* 0: not under a notify manager */

/* master_notify_init - take $NOTIFY_SOCKET out of the environment */
void
master_notify_init(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	size_t n;

	master_notify_len = 0;
	if (path == NULL)
		return;
	n = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || n < 2 ||
	    n >= sizeof(master_notify_addr.sun_path)) {
		msg_warn("NOTIFY_SOCKET \"%s\" is not a socket path: ignored",
		    path);
	} else {
		memset(&master_notify_addr, 0, sizeof(master_notify_addr));
		master_notify_addr.sun_family = AF_UNIX;
		memcpy(master_notify_addr.sun_path, path, n);
		if (path[0] == '@')
			master_notify_addr.sun_path[0] = '\0';	/* abstract */
		master_notify_len = (socklen_t)(offsetof(struct sockaddr_un,
		    sun_path) + n + (path[0] == '@' ? 0 : 1));
	}
	if (unsetenv("NOTIFY_SOCKET") < 0)
		msg_warn("unsetenv NOTIFY_SOCKET: %m");
}

/* master_notify - send one state message ("READY=1\nSTATUS=...") */
void
master_notify(const char *fmt, ...)
{
	char text[MASTER_NOTIFY_MAX];
	va_list ap;
	int fd, n;

	if (master_notify_len == 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(text)) {
		msg_warn("notify message too long: not sent");
		return;
	}
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		msg_warn("notify socket: %m");
		return;
	}
	if (sendto(fd, text, (size_t)n, MSG_NOSIGNAL,
	    (struct sockaddr *)&master_notify_addr, master_notify_len) < 0)
		msg_warn("notify %s: %m", master_notify_addr.sun_path[0] ?
		    master_notify_addr.sun_path : "(abstract socket)");
	(void)close(fd);
}

/* master_notify_reloading - RELOADING=1 with the time systemd wants */
void
master_notify_reloading(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0) {
		master_notify("RELOADING=1");
		return;
	}
	master_notify("RELOADING=1\nMONOTONIC_USEC=%llu",
	    (unsigned long long)ts.tv_sec * 1000000ULL +
	    (unsigned long long)ts.tv_nsec / 1000ULL);
}
