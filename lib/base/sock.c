/*
 * sock - listening and connecting sockets, address text, and descriptor
 * passing over UNIX sockets (SCM_RIGHTS).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/mem.h"
#include "base/sock.h"

/* sock_set_nonblock - set or clear O_NONBLOCK */
int
sock_set_nonblock(int fd, bool on)
{
	int fl;

	if ((fl = fcntl(fd, F_GETFL)) < 0)
		return -1;
	fl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
	return fcntl(fd, F_SETFL, fl) < 0 ? -1 : 0;
}

/* sock_set_cloexec - set or clear FD_CLOEXEC */
int
sock_set_cloexec(int fd, bool on)
{
	int fl;

	if ((fl = fcntl(fd, F_GETFD)) < 0)
		return -1;
	fl = on ? (fl | FD_CLOEXEC) : (fl & ~FD_CLOEXEC);
	return fcntl(fd, F_SETFD, fl) < 0 ? -1 : 0;
}

/* sock_host_is_name - letters, digits, '-' and '.', in labels of 1..63
 * that neither start nor end with '-' */
static bool
sock_host_is_name(const char *host)
{
	size_t label = 0;
	const char *p;

	if (strlen(host) > 253)
		return false;
	for (p = host; *p; p++) {
		if (*p == '.') {
			if (label == 0 || p[-1] == '-')
				return false;
			label = 0;
		} else if ((*p >= 'a' && *p <= 'z') ||
		    (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    *p == '-') {
			if ((label == 0 && *p == '-') || ++label > 63)
				return false;
		} else
			return false;
	}
	return label > 0 && p[-1] != '-';
}

/* sock_host_is_v6 - a numeric IPv6 address, with an optional %scope */
static bool
sock_host_is_v6(const char *host)
{
	struct in6_addr a6;
	char addr[INET6_ADDRSTRLEN];
	const char *pct = strchr(host, '%');
	size_t n = pct ? (size_t)(pct - host) : strlen(host);

	if (n >= sizeof(addr) || (pct != NULL && pct[1] == '\0'))
		return false;
	memcpy(addr, host, n);
	addr[n] = '\0';
	return inet_pton(AF_INET6, addr, &a6) == 1;
}

/*
 * sock_hostport_parse - split "host:port", "[v6]:port" or "*:port" into
 * host (NULL for the wildcard) and port; host and port point into copy.
 * The host must be a numeric IPv4 address, a numeric IPv6 address in
 * brackets, "*" or a host name; the port 0..65535 in digits.
 */
int
sock_hostport_parse(const char *hostport, char *copy, size_t size,
    const char **host_r, const char **port_r, struct buf *why)
{
	char *host, *port, *colon;
	bool v6 = false;

	if (strlen(hostport) >= size) {
		buf_printf(why, "address too long: %s", hostport);
		return -1;
	}
	strcpy(copy, hostport);
	if (copy[0] == '[') {
		char *end = strchr(copy, ']');

		if (end == NULL || end[1] != ':') {
			buf_printf(why,
			    "bad address \"%s\": expected [v6]:port", hostport);
			return -1;
		}
		*end = '\0';
		host = copy + 1;
		port = end + 2;
		v6 = true;
	} else {
		if ((colon = strrchr(copy, ':')) == NULL) {
			buf_printf(why,
			    "bad address \"%s\": expected host:port", hostport);
			return -1;
		}
		if (strchr(copy, ':') != colon) {
			buf_printf(why, "bad address \"%s\": write IPv6 "
			    "addresses as [v6]:port", hostport);
			return -1;
		}
		*colon = '\0';
		host = copy;
		port = colon + 1;
	}
	if (*host == '\0') {
		buf_printf(why, "bad address \"%s\": empty host", hostport);
		return -1;
	}
	if (v6 ? !sock_host_is_v6(host) : (strcmp(host, "*") != 0 &&
	    !sock_host_is_name(host))) {
		buf_printf(why, "bad address \"%s\": bad host \"%s\" (use a "
		    "numeric IPv4 address, [IPv6], * or a host name)",
		    hostport, host);
		return -1;
	}
	if (!v6 && strspn(host, "0123456789.") == strlen(host)) {
		struct in_addr a4;

		if (inet_pton(AF_INET, host, &a4) != 1) {
			buf_printf(why, "bad address \"%s\": bad IPv4 "
			    "address \"%s\"", hostport, host);
			return -1;
		}
	}
	if (*port == '\0' || strspn(port, "0123456789") != strlen(port) ||
	    strlen(port) > 5 || atoi(port) > 65535) {
		buf_printf(why, "bad address \"%s\": bad port \"%s\" (use "
		    "1..65535)", hostport, port);
		return -1;
	}
	*host_r = strcmp(host, "*") == 0 ? NULL : host;
	*port_r = port;
	return 0;
}

/* sock_listen_check - a configured listen address: the syntax
 * sock_listen_tcp takes, and a port of 1..65535 */
int
sock_listen_check(const char *hostport, struct buf *why)
{
	char copy[SOCK_HOSTPORT_MAX];
	const char *host, *port;

	if (sock_hostport_parse(hostport, copy, sizeof(copy), &host, &port,
	    why) < 0)
		return -1;
	if (atoi(port) == 0) {
		buf_printf(why, "bad address \"%s\": bad port \"%s\" (use "
		    "1..65535)", hostport, port);
		return -1;
	}
	return 0;
}

/* sock_listen_addr - socket, options, bind and listen for one address */
static int
sock_listen_addr(const struct sockaddr *sa, socklen_t len, bool v6only_off,
    int backlog, int *errno_r)
{
	int fd, on = 1, off = 0;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd < 0) {
		*errno_r = errno;
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0 ||
	    (v6only_off && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off,
	    sizeof(off)) < 0) ||
	    bind(fd, sa, len) < 0 || listen(fd, backlog) < 0) {
		*errno_r = errno;
		(void)close(fd);
		return -1;
	}
	return fd;
}

/* sock_listen_tcp - bind and listen on "host:port" */
int
sock_listen_tcp(const char *hostport, int backlog, struct buf *why)
{
	char copy[SOCK_HOSTPORT_MAX];
	const char *host, *port;
	struct addrinfo hints, *res, *ai;
	int fd, err = 0, gai;

	if (sock_hostport_parse(hostport, copy, sizeof(copy), &host, &port,
	    why) < 0)
		return -1;

	if (host == NULL) {
		/* All addresses: one dual-stack socket, else IPv4 only. */
		struct sockaddr_in6 s6;
		struct sockaddr_in s4;

		memset(&s6, 0, sizeof(s6));
		s6.sin6_family = AF_INET6;
		s6.sin6_addr = in6addr_any;
		s6.sin6_port = htons((unsigned short)atoi(port));
		fd = sock_listen_addr((struct sockaddr *)&s6, sizeof(s6), true,
		    backlog, &err);
		if (fd >= 0)
			return fd;
		if (err != EAFNOSUPPORT && err != EPROTONOSUPPORT &&
		    err != EADDRNOTAVAIL) {
			buf_printf(why, "listen on %s: %s", hostport,
			    strerror(err));
			return -1;
		}
		memset(&s4, 0, sizeof(s4));
		s4.sin_family = AF_INET;
		s4.sin_addr.s_addr = htonl(INADDR_ANY);
		s4.sin_port = htons((unsigned short)atoi(port));
		fd = sock_listen_addr((struct sockaddr *)&s4, sizeof(s4), false,
		    backlog, &err);
		if (fd < 0) {
			buf_printf(why, "listen on %s: %s", hostport,
			    strerror(err));
			return -1;
		}
		return fd;
	}

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((gai = getaddrinfo(host, port, &hints, &res)) != 0) {
		buf_printf(why, "listen on %s: %s", hostport,
		    gai == EAI_SYSTEM ? strerror(errno) : gai_strerror(gai));
		return -1;
	}
	fd = -1;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = sock_listen_addr(ai->ai_addr, ai->ai_addrlen, false,
		    backlog, &err);
		if (fd >= 0)
			break;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		buf_printf(why, "listen on %s: %s", hostport,
		    strerror(err ? err : EADDRNOTAVAIL));
		return -1;
	}
	return fd;
}

/* sock_unix_addr - fill a sockaddr_un; -1 if path does not fit */
static int
sock_unix_addr(const char *path, struct sockaddr_un *sun, struct buf *why)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path)) {
		buf_printf(why, "socket path too long: %s", path);
		return -1;
	}
	strcpy(sun->sun_path, path);
	return 0;
}

/* sock_listen_unix - bind a UNIX stream socket, chmod, listen */
int
sock_listen_unix(const char *path, unsigned mode, int backlog,
    struct buf *why)
{
	struct sockaddr_un sun;
	struct stat st;
	int fd;

	if (sock_unix_addr(path, &sun, why) < 0)
		return -1;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			buf_printf(why, "%s exists and is not a socket", path);
			return -1;
		}
		if (unlink(path) < 0 && errno != ENOENT) {
			buf_printf(why, "unlink %s: %m", path);
			return -1;
		}
	} else if (errno != ENOENT) {
		buf_printf(why, "lstat %s: %m", path);
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		buf_printf(why, "socket: %m");
		return -1;
	}
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		buf_printf(why, "bind %s: %m", path);
		(void)close(fd);
		return -1;
	}
	/* never through a link someone swapped in after bind (glibc
	 * 2.32+ does this race-free, through an O_PATH descriptor) */
	if (fchmodat(AT_FDCWD, path, (mode_t)mode, AT_SYMLINK_NOFOLLOW) < 0) {
		buf_printf(why, "chmod %s: %m", path);
		(void)close(fd);
		(void)unlink(path);
		return -1;
	}
	if (listen(fd, backlog) < 0) {
		buf_printf(why, "listen %s: %m", path);
		(void)close(fd);
		(void)unlink(path);
		return -1;
	}
	return fd;
}

/* sock_connect_unix - connect to a UNIX stream socket */
int
sock_connect_unix(const char *path, bool nonblock, struct buf *why)
{
	struct sockaddr_un sun;
	int fd;

	if (sock_unix_addr(path, &sun, why) < 0)
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC |
	    (nonblock ? SOCK_NONBLOCK : 0), 0);
	if (fd < 0) {
		buf_printf(why, "socket: %m");
		return -1;
	}
	/*
	 * A UNIX connect completes at once or fails; a non-blocking one
	 * fails with EAGAIN when the listener's backlog is full, where a
	 * blocking one would wait for the server to accept.
	 */
	while (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		if (errno == EINTR)
			continue;
		buf_printf(why, "connect to %s: %m", path);
		(void)close(fd);
		return -1;
	}
	return fd;
}

/* sock_addr_text - numeric text of an address */
void
sock_addr_text(const struct sockaddr *sa, socklen_t len, char *out,
    size_t size)
{
	if (size == 0)
		return;
	out[0] = '\0';
	if (sa == NULL) {
		snprintf(out, size, "unknown");
		return;
	}
	switch (sa->sa_family) {
	case AF_INET:
		if (len < (socklen_t)sizeof(struct sockaddr_in) ||
		    inet_ntop(AF_INET,
		    &((const struct sockaddr_in *)sa)->sin_addr, out,
		    (socklen_t)size) == NULL)
			snprintf(out, size, "unknown");
		break;
	case AF_INET6: {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		if (len < (socklen_t)sizeof(struct sockaddr_in6)) {
			snprintf(out, size, "unknown");
		} else if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			if (inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], out,
			    (socklen_t)size) == NULL)
				snprintf(out, size, "unknown");
		} else if (inet_ntop(AF_INET6, &s6->sin6_addr, out,
		    (socklen_t)size) == NULL) {
			snprintf(out, size, "unknown");
		}
		break;
	}
	case AF_UNIX:
		snprintf(out, size, "unix");
		break;
	default:
		snprintf(out, size, "unknown");
		break;
	}
}

/* sock_addr_is_loopback - 127/8, ::1, ::ffff:127.x, or AF_UNIX */
bool
sock_addr_is_loopback(const struct sockaddr *sa)
{
	if (sa == NULL)
		return false;
	switch (sa->sa_family) {
	case AF_INET:
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr)
		    >> 24) == 127;
	case AF_INET6: {
		const struct in6_addr *a =
		    &((const struct sockaddr_in6 *)sa)->sin6_addr;

		if (IN6_IS_ADDR_LOOPBACK(a))
			return true;
		return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
	}
	case AF_UNIX:
		return true;
	default:
		return false;
	}
}

/* sock_peer_text - numeric text of the peer of fd */
void
sock_peer_text(int fd, char *out, size_t size)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0) {
		if (size > 0)
			snprintf(out, size, "unknown");
		return;
	}
	sock_addr_text((struct sockaddr *)&ss, len, out, size);
}

/* sock_local_port - local TCP port of fd, or -1 */
int
sock_local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -1;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -1;
}

/* sock_send_fd - one non-blocking sendmsg, fd on the first byte */
long
sock_send_fd(int sock, const void *data, size_t len, int fd)
{
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int))];
	} cm;
	struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	ssize_t n;

	if (fd >= 0) {
		struct cmsghdr *c;

		memset(&cm, 0, sizeof(cm));
		msg.msg_control = cm.buf;
		msg.msg_controllen = sizeof(cm.buf);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	do {
		n = sendmsg(sock, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	return (long)n;
}

/* sock_recv_fd - receive data and at most one attached descriptor */
long
sock_recv_fd(int sock, void *data, size_t size, int *fd_r)
{
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int) * 8)];
	} cm;
	struct msghdr msg;
	struct iovec iov;
	struct cmsghdr *c;
	ssize_t n;

	*fd_r = -1;
	memset(&msg, 0, sizeof(msg));
	iov.iov_base = data;
	iov.iov_len = size;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cm.buf;
	msg.msg_controllen = sizeof(cm.buf);
	do {
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	for (c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
		size_t nfd, i;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < nfd; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int),
			    sizeof(int));
			if (*fd_r < 0)
				*fd_r = fd;
			else
				(void)close(fd);
		}
	}
	return (long)n;
}
