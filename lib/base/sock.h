/*
 * sock - sockets: listen, connect, addresses, descriptor passing.
 *
 * Addresses in config are "host:port", "[v6]:port" or "*:port" (all
 * addresses); listeners get SO_REUSEADDR, close-on-exec, and are
 * non-blocking. Functions return -1 with a reason in why on failure.
 */
#ifndef BASE_SOCK_H
#define BASE_SOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct buf;

/* longest "host:port" text, NUL included */
#define SOCK_HOSTPORT_MAX 300

/* sock_hostport_parse - split "host:port", "[v6]:port" or "*:port" into
 * host (NULL for "*") and port, both pointing into copy (size bytes);
 * the host must be numeric IPv4, [numeric IPv6], * or a host name, the
 * port 0..65535. The one parser of listen addresses: sock_listen_tcp and
 * the configuration check both use it. -1 with why */
int sock_hostport_parse(const char *hostport, char *copy, size_t size,
    const char **host_r, const char **port_r, struct buf *why);
/* sock_listen_check - an address as a *_listen setting may name it:
 * sock_hostport_parse, and the port 1..65535 (0 is for tests only) */
int sock_listen_check(const char *hostport, struct buf *why);
/* sock_listen_tcp - bind and listen on "host:port" (port 0: any free) */
int sock_listen_tcp(const char *hostport, int backlog, struct buf *why);
/* sock_listen_unix - bind a UNIX stream socket at path (an old socket file
 * there is replaced), chmod to mode (never through a symbolic link),
 * listen */
int sock_listen_unix(const char *path, unsigned mode, int backlog,
    struct buf *why);
/* sock_connect_unix - connect to a UNIX stream socket; non-blocking if asked */
int sock_connect_unix(const char *path, bool nonblock, struct buf *why);
/* sock_set_nonblock - set or clear O_NONBLOCK; -1 on error */
int sock_set_nonblock(int fd, bool on);
/* sock_set_cloexec - set FD_CLOEXEC */
int sock_set_cloexec(int fd, bool on);
/* sock_addr_text - numeric text of an address ("192.0.2.1", "2001:db8::1",
 * "unix"); IPv4-mapped IPv6 is shown as IPv4 */
void sock_addr_text(const struct sockaddr *sa, socklen_t len, char *out,
    size_t size);
/* sock_addr_is_loopback - 127.0.0.0/8, ::1, ::ffff:127.x, or AF_UNIX */
bool sock_addr_is_loopback(const struct sockaddr *sa);
/* sock_peer_text / sock_local_port - for logs and Received: headers */
void sock_peer_text(int fd, char *out, size_t size);
int sock_local_port(int fd);

/* sock_send_fd - one non-blocking send of up to len (> 0) bytes, with fd
 * attached (SCM_RIGHTS) when fd >= 0; the descriptor travels with the
 * first byte, so once this returned > 0 the caller sends the rest plainly.
 * Returns bytes sent, or -1 with errno (EAGAIN: try again when writable) */
long sock_send_fd(int sock, const void *data, size_t len, int fd);
/* sock_recv_fd - receive up to size bytes; an attached fd goes to *fd_r
 * (else -1); returns bytes read, 0 on EOF, -1 on error */
long sock_recv_fd(int sock, void *data, size_t size, int *fd_r);

#endif
