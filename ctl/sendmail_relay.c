/*
 * sendmail_relay - sendmail -bs: the bytes of an SMTP session carried
 * between the caller (standard input and output) and smtpd's local
 * submission socket, unchanged, both ways at once (sendmail.h).
 *
 * Each way has one fixed buffer: a read is made only when that buffer
 * is empty, so memory stays bounded whatever either side sends, and a
 * side that does not read stops the other way only. Standard input and
 * output are shared with the caller, so they stay blocking: they are
 * read only when poll says so, and at most PIPE_BUF bytes are written to
 * them at a time, which a pipe that polled writable always takes.
 * When the caller's input ends, the socket's write side is shut down
 * (smtpd sees the end and closes); when smtpd closes, what it sent is
 * written out and the relay ends, whatever the caller still sends.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/buf.h"
#include "sendmail.h"

#define SENDMAIL_RELAY_BUF 16384

/* one way: bytes read from `from`, not yet written to `to` */
struct sendmail_way {
	int from, to;
	bool to_socket;		/* `to` is the socket (non-blocking) */
	bool eof;		/* `from` ended */
	size_t off, len;
	char buf[SENDMAIL_RELAY_BUF];
};

/* sendmail_way_read - fill the empty buffer: 1 data, 0 end, -1 error */
static int
sendmail_way_read(struct sendmail_way *w)
{
	ssize_t n;

	do {
		n = read(w->from, w->buf, sizeof(w->buf));
	} while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 1;
	if (n < 0 && errno == ECONNRESET)
		n = 0;
	if (n < 0)
		return -1;
	if (n == 0) {
		w->eof = true;
		return 0;
	}
	w->off = 0;
	w->len = (size_t)n;
	return 1;
}

/* sendmail_way_write - write what the buffer holds, as much as the fd
 * takes now; 0, or -1 on an error */
static int
sendmail_way_write(struct sendmail_way *w)
{
	size_t n = w->len - w->off;
	ssize_t r;

	if (!w->to_socket && n > PIPE_BUF)
		n = PIPE_BUF;
	do {
		r = w->to_socket ? send(w->to, w->buf + w->off, n,
		    MSG_NOSIGNAL) : write(w->to, w->buf + w->off, n);
	} while (r < 0 && errno == EINTR);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	if (r <= 0)
		return -1;
	w->off += (size_t)r;
	if (w->off == w->len)
		w->off = w->len = 0;
	return 0;
}

/* sendmail_relay - carry bytes between in/out and the socket sock */
int
sendmail_relay(int in, int out, int sock, int idle_ms, struct buf *why)
{
	struct sendmail_way up, down;	/* caller->smtpd, and back */
	int fl;

	if ((fl = fcntl(sock, F_GETFL)) < 0 ||
	    fcntl(sock, F_SETFL, fl | O_NONBLOCK) < 0) {
		buf_printf(why, "socket: %s", strerror(errno));
		return -1;
	}
	memset(&up, 0, sizeof(up));
	memset(&down, 0, sizeof(down));
	up.from = in;
	up.to = sock;
	up.to_socket = true;
	down.from = sock;
	down.to = out;
	for (;;) {
		struct pollfd p[4];
		int np = 0, iu = -1, ou = -1, id = -1, od = -1, r;

		/* smtpd closed and all it sent is out: done */
		if (down.eof && down.len == 0)
			return 0;
		if (up.eof && up.len == 0 && up.to >= 0) {
			(void)shutdown(sock, SHUT_WR);
			up.to = -1;
		}
		if (!up.eof && up.len == 0) {
			p[np] = (struct pollfd){in, POLLIN, 0};
			iu = np++;
		}
		if (up.len > 0) {
			p[np] = (struct pollfd){sock, POLLOUT, 0};
			ou = np++;
		}
		if (!down.eof && down.len == 0) {
			p[np] = (struct pollfd){sock, POLLIN, 0};
			id = np++;
		}
		if (down.len > 0) {
			p[np] = (struct pollfd){out, POLLOUT, 0};
			od = np++;
		}
		if ((r = poll(p, (nfds_t)np, idle_ms)) < 0) {
			if (errno == EINTR)
				continue;
			buf_printf(why, "poll: %s", strerror(errno));
			return -1;
		}
		if (r == 0) {
			buf_printf(why, "no data either way for %d seconds",
			    idle_ms / 1000);
			return -2;
		}
		if (iu >= 0 && p[iu].revents != 0 &&
		    sendmail_way_read(&up) < 0) {
			buf_printf(why, "standard input: %s", strerror(errno));
			return -1;
		}
		if (ou >= 0 && p[ou].revents != 0 &&
		    sendmail_way_write(&up) < 0) {
			/* smtpd is gone: what it said last is still to come */
			up.eof = true;
			up.len = up.off = 0;
		}
		if (id >= 0 && p[id].revents != 0 &&
		    sendmail_way_read(&down) < 0) {
			buf_printf(why, "herald: %s", strerror(errno));
			return -1;
		}
		if (od >= 0 && p[od].revents != 0 &&
		    sendmail_way_write(&down) < 0) {
			buf_printf(why, "standard output: %s", strerror(errno));
			return -1;
		}
	}
}
