/*
 * ipc - frames of name\0value\0 pairs between herald processes.
 *
 * Everything a peer sends is checked here before anyone looks at it: the
 * length is bounded by IPC_MAX_FRAME, every pair must be complete (both
 * halves NUL-terminated), and names must match [a-z0-9_]{1,IPC_MAX_NAME}.
 * Blocking I/O never blocks in the kernel: every send/recv is made with
 * MSG_DONTWAIT and waits in poll() up to the caller's deadline, so a
 * silent peer costs a timeout, never a hung process.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/evloop.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/sock.h"
#include "base/str.h"
#include "mail/ipc.h"
#include "mail/qid.h"

/* ipc_name_valid - true if name[0..len) is [a-z0-9_]{1,IPC_MAX_NAME} */
static bool
ipc_name_valid(const char *name, size_t len)
{
	if (len == 0 || len > IPC_MAX_NAME)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '_'))
			return false;
	}
	return true;
}

/* ipc_msg_init - make an empty message */
void
ipc_msg_init(struct ipc_msg *m)
{
	buf_init(&m->body);
}

/* ipc_msg_free - release a message's memory */
void
ipc_msg_free(struct ipc_msg *m)
{
	buf_free(&m->body);
}

/* ipc_msg_reset - empty a message, keep its memory */
void
ipc_msg_reset(struct ipc_msg *m)
{
	buf_reset(&m->body);
}

/* ipc_put_mem - append name=value (value of len bytes) */
void
ipc_put_mem(struct ipc_msg *m, const char *name, const char *value,
    size_t len)
{
	if (name == NULL || !ipc_name_valid(name, strlen(name)))
		msg_panic("ipc_put_mem: bad attribute name \"%s\"",
		    name ? name : "(null)");
	if (value == NULL || memchr(value, '\0', len) != NULL)
		msg_panic("ipc_put_mem: %s: value holds a NUL", name);
	buf_append(&m->body, name, strlen(name) + 1);
	buf_append(&m->body, value, len);
	buf_putc(&m->body, '\0');
}

/* ipc_put_str - append name=value */
void
ipc_put_str(struct ipc_msg *m, const char *name, const char *value)
{
	if (value == NULL)
		msg_panic("ipc_put_str: %s: NULL value", name ? name : "(null)");
	ipc_put_mem(m, name, value, strlen(value));
}

/* ipc_put_int - append name=decimal value */
void
ipc_put_int(struct ipc_msg *m, const char *name, long long value)
{
	char num[32];

	snprintf(num, sizeof(num), "%lld", value);
	ipc_put_str(m, name, num);
}

/* ipc_check - validate a frame body in place; -1 with why */
static int
ipc_check(const char *body, size_t len, struct buf *why)
{
	size_t pos = 0, npair = 0;

	if (len == 0) {
		buf_set(why, "malformed frame: empty");
		return -1;
	}
	if (len > IPC_MAX_FRAME) {
		buf_set(why, "");
		buf_printf(why, "malformed frame: %zu bytes is over the limit "
		    "of %d", len, IPC_MAX_FRAME);
		return -1;
	}
	while (pos < len) {
		const char *name = body + pos, *end, *vend;

		npair++;
		end = memchr(name, '\0', len - pos);
		if (end == NULL) {
			buf_set(why, "");
			buf_printf(why, "malformed frame: pair %zu: name not "
			    "terminated", npair);
			return -1;
		}
		if (!ipc_name_valid(name, (size_t)(end - name))) {
			buf_set(why, "");
			buf_printf(why, "malformed frame: pair %zu: bad "
			    "attribute name", npair);
			return -1;
		}
		pos = (size_t)(end - body) + 1;
		vend = pos < len ? memchr(body + pos, '\0', len - pos) : NULL;
		if (vend == NULL) {
			buf_set(why, "");
			buf_printf(why, "malformed frame: pair %zu (%.*s): "
			    "value not terminated", npair, (int)(end - name),
			    name);
			return -1;
		}
		pos = (size_t)(vend - body) + 1;
	}
	return 0;
}

/* ipc_parse - check a received body and load it into m */
int
ipc_parse(struct ipc_msg *m, const char *body, size_t len, struct buf *why)
{
	buf_reset(&m->body);
	if (ipc_check(body, len, why) < 0)
		return -1;
	buf_append(&m->body, body, len);
	return 0;
}

/* ipc_next - iterate over the pairs of m */
int
ipc_next(const struct ipc_msg *m, size_t *pos, const char **name,
    const char **value)
{
	const char *n, *v;

	if (*pos >= m->body.len)
		return 0;
	n = m->body.data + *pos;
	v = n + strlen(n) + 1;
	*pos = (size_t)(v - m->body.data) + strlen(v) + 1;
	if (*pos > m->body.len)
		msg_panic("ipc_next: message body is not a list of pairs");
	*name = n;
	*value = v;
	return 1;
}

/* ipc_get_str - first value of name, or NULL */
const char *
ipc_get_str(const struct ipc_msg *m, const char *name)
{
	size_t pos = 0;
	const char *n, *v;

	while (ipc_next(m, &pos, &n, &v))
		if (strcmp(n, name) == 0)
			return v;
	return NULL;
}

/* ipc_get_int - first value of name as a decimal integer */
int
ipc_get_int(const struct ipc_msg *m, const char *name, long long *r)
{
	const char *v = ipc_get_str(m, name);

	if (v == NULL)
		return -1;
	return str_to_ll(v, LLONG_MIN, LLONG_MAX, r);
}

/* ipc_expect_only - every name of m must be in allowed */
int
ipc_expect_only(const struct ipc_msg *m, const char *const *allowed,
    struct buf *why)
{
	size_t pos = 0;
	const char *n, *v;

	while (ipc_next(m, &pos, &n, &v)) {
		const char *const *a;

		for (a = allowed; *a != NULL; a++)
			if (strcmp(*a, n) == 0)
				break;
		if (*a == NULL) {
			buf_set(why, "");
			buf_printf(why, "unexpected attribute \"%s\"", n);
			return -1;
		}
	}
	return 0;
}

/* ipc_delivery_request - check and decode a "deliver" request */
int
ipc_delivery_request(const struct ipc_msg *m, int qfd, size_t max,
    long long **idx_r, size_t *n_r, struct buf *why)
{
	static const char *const allowed[] = {IPC_REQUEST, IPC_QUEUE_ID,
	    IPC_RCPT_INDEX, IPC_NEXTHOP, IPC_TLS_POLICY, IPC_ROUTE_ERROR,
	    NULL};
	const char *what = ipc_get_str(m, IPC_REQUEST);
	const char *qid = ipc_get_str(m, IPC_QUEUE_ID);
	const char *name, *value;
	long long *idx = NULL;
	size_t pos = 0, n = 0;

	if (ipc_expect_only(m, allowed, why) < 0)
		return -1;
	if (what == NULL || strcmp(what, "deliver") != 0) {
		buf_printf(why, "unknown request \"%.40s\"", what ? what : "");
		return -1;
	}
	if (qid == NULL || !qid_valid(qid)) {
		buf_puts(why, "missing or malformed queue_id");
		return -1;
	}
	if (qfd < 0) {
		buf_puts(why, "no queue file descriptor attached");
		return -1;
	}
	while (ipc_next(m, &pos, &name, &value))
		if (strcmp(name, IPC_RCPT_INDEX) == 0)
			n++;
	if (n == 0 || n > max) {
		buf_printf(why, "%zu recipients in one request", n);
		return -1;
	}
	idx = xcalloc(n, sizeof(*idx));
	for (pos = 0, n = 0; ipc_next(m, &pos, &name, &value);) {
		if (strcmp(name, IPC_RCPT_INDEX) != 0)
			continue;
		if (str_to_ll(value, 0, INT_MAX, &idx[n]) < 0) {
			buf_printf(why, "bad rcpt_index \"%.20s\"", value);
			x_free(&idx);
			return -1;
		}
		n++;
	}
	*idx_r = idx;
	*n_r = n;
	return 0;
}

/* ipc_frame_encode - append the length-framed form of m to out */
void
ipc_frame_encode(const struct ipc_msg *m, struct buf *out)
{
	unsigned char hdr[4];
	size_t len = m->body.len;

	if (len == 0 || len > IPC_MAX_FRAME)
		msg_panic("ipc_frame_encode: frame body of %zu bytes", len);
	hdr[0] = (unsigned char)(len >> 24);
	hdr[1] = (unsigned char)(len >> 16);
	hdr[2] = (unsigned char)(len >> 8);
	hdr[3] = (unsigned char)len;
	buf_append(out, hdr, sizeof(hdr));
	buf_append(out, m->body.data, len);
}

/* ipc_frame_len - the body length announced by a 4-byte header */
static uint32_t
ipc_frame_len(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* ipc_len_check - refuse a header announcing 0 or too many bytes */
static int
ipc_len_check(uint32_t len, struct buf *why)
{
	if (len == 0) {
		buf_set(why, "malformed frame: empty");
		return -1;
	}
	if (len > IPC_MAX_FRAME) {
		buf_set(why, "");
		buf_printf(why, "malformed frame: length %lu is over the "
		    "limit of %d", (unsigned long)len, IPC_MAX_FRAME);
		return -1;
	}
	return 0;
}

/* ipc_frame_take - pull one complete frame out of in */
int
ipc_frame_take(struct buf *in, struct ipc_msg *m, struct buf *why)
{
	uint32_t len;

	if (in->len < 4)
		return 0;
	len = ipc_frame_len((const unsigned char *)in->data);
	if (ipc_len_check(len, why) < 0)
		return -1;
	if (in->len - 4 < len)
		return 0;
	if (ipc_parse(m, in->data + 4, len, why) < 0)
		return -1;
	buf_consume(in, 4 + (size_t)len);
	return 1;
}

/* ipc_deadline - absolute deadline for timeout_ms (-1: none) */
static long long
ipc_deadline(int timeout_ms)
{
	return timeout_ms < 0 ? -1 : evloop_clock() + timeout_ms;
}

/* ipc_wait - poll sock for events until deadline; -1 with why on timeout */
static int
ipc_wait(int sock, short events, long long deadline, struct buf *why)
{
	struct pollfd pfd;
	int left, n;

	for (;;) {
		if (deadline < 0) {
			left = -1;
		} else {
			long long d = deadline - evloop_clock();

			if (d <= 0) {
				buf_set(why, "timeout");
				return -1;
			}
			left = d > INT_MAX ? INT_MAX : (int)d;
		}
		pfd.fd = sock;
		pfd.events = events;
		pfd.revents = 0;
		n = poll(&pfd, 1, left);
		if (n > 0)
			return 0;	/* ready, hung up or in error: I/O says */
		if (n == 0)
			continue;	/* the deadline check above ends it */
		if (errno != EINTR) {
			buf_set(why, "");
			buf_printf(why, "poll: %m");
			return -1;
		}
	}
}

/* ipc_send - write one frame, fd attached to its first byte */
int
ipc_send(int sock, const struct ipc_msg *m, int fd, int timeout_ms,
    struct buf *why)
{
	struct buf out = BUF_INIT;
	long long deadline = ipc_deadline(timeout_ms);
	size_t off = 0;
	int ret = -1;

	if (m->body.len == 0 || m->body.len > IPC_MAX_FRAME) {
		buf_set(why, "");
		buf_printf(why, "cannot send a frame of %zu bytes",
		    m->body.len);
		return -1;
	}
	ipc_frame_encode(m, &out);
	while (off < out.len) {
		ssize_t n = sock_send_fd(sock, out.data + off,
		    out.len - off, fd);

		if (n > 0) {
			off += (size_t)n;
			fd = -1;	/* the descriptor went with the bytes */
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (ipc_wait(sock, POLLOUT, deadline, why) < 0)
				goto out;
			continue;
		}
		buf_set(why, "");
		if (n < 0)
			buf_printf(why, "send: %m");
		else
			buf_puts(why, "send: wrote nothing");
		goto out;
	}
	ret = 0;
out:
	buf_free(&out);
	return ret;
}

/* ipc_recv_chunk - one recvmsg; an attached descriptor goes to *fd_r.
 * Returns bytes, 0 on EOF, -1 with errno; -2 with why on a bad control
 * message (several descriptors, truncated control data). */
static ssize_t
ipc_recv_chunk(int sock, char *p, size_t n, int *fd_r, struct buf *why)
{
	struct iovec iov = {.iov_base = p, .iov_len = n};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	union {
		char buf[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} cm;
	struct cmsghdr *c;
	ssize_t got;
	int bad = 0;

	mh.msg_control = cm.buf;
	mh.msg_controllen = sizeof(cm.buf);
	got = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (got < 0)
		return -1;
	for (c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
		size_t nfd;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < nfd; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int),
			    sizeof(int));
			if (*fd_r < 0 && !bad) {
				*fd_r = fd;
			} else {
				/* one descriptor per frame, never more */
				(void)close(fd);
				bad = 1;
			}
		}
	}
	if (mh.msg_flags & MSG_CTRUNC) {
		buf_set(why, "malformed frame: control data truncated");
		return -2;
	}
	if (bad) {
		buf_set(why, "malformed frame: more than one descriptor");
		return -2;
	}
	return got;
}

/* ipc_recv_exact - read exactly n bytes into p; 1, 0 on EOF before the
 * first byte (when eof_ok), -1 with why */
static int
ipc_recv_exact(int sock, char *p, size_t n, int *fd, long long deadline,
    bool eof_ok, struct buf *why)
{
	size_t off = 0;

	while (off < n) {
		ssize_t got = ipc_recv_chunk(sock, p + off, n - off, fd, why);

		if (got > 0) {
			off += (size_t)got;
			continue;
		}
		if (got == 0) {
			if (off == 0 && eof_ok)
				return 0;
			buf_set(why, "connection closed in mid-frame");
			return -1;
		}
		if (got == -2)
			return -1;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			if (ipc_wait(sock, POLLIN, deadline, why) < 0)
				return -1;
			continue;
		}
		buf_set(why, "");
		buf_printf(why, "recv: %m");
		return -1;
	}
	return 1;
}

/* ipc_recv - read one frame (and maybe a descriptor) */
int
ipc_recv(int sock, struct ipc_msg *m, int *fd_r, int timeout_ms,
    struct buf *why)
{
	long long deadline = ipc_deadline(timeout_ms);
	unsigned char hdr[4];
	uint32_t len;
	int fd = -1, r;

	if (fd_r != NULL)
		*fd_r = -1;
	buf_reset(&m->body);
	r = ipc_recv_exact(sock, (char *)hdr, sizeof(hdr), &fd, deadline,
	    true, why);
	if (r <= 0)
		goto fail;
	len = ipc_frame_len(hdr);
	if (ipc_len_check(len, why) < 0) {
		r = -1;
		goto fail;
	}
	buf_reserve(&m->body, len);
	r = ipc_recv_exact(sock, m->body.data, len, &fd, deadline, false,
	    why);
	if (r <= 0)
		goto fail;
	m->body.len = len;
	m->body.data[len] = '\0';
	if (ipc_check(m->body.data, len, why) < 0) {
		r = -1;
		goto fail;
	}
	if (fd >= 0 && fd_r == NULL) {
		buf_set(why, "malformed frame: unexpected descriptor");
		r = -1;
		goto fail;
	}
	if (fd_r != NULL)
		*fd_r = fd;
	return 1;
fail:
	buf_reset(&m->body);
	if (fd >= 0)
		(void)close(fd);
	return r;
}

/* ipc_call - connect to a UNIX socket, send req, receive the reply */
int
ipc_call(const char *path, const struct ipc_msg *req, struct ipc_msg *reply,
    int timeout_ms, struct buf *why)
{
	long long deadline = ipc_deadline(timeout_ms);
	int sock, r, left;

	sock = sock_connect_unix(path, false, why);
	if (sock < 0)
		return -1;
	r = ipc_send(sock, req, -1, timeout_ms, why);
	if (r == 0) {
		if (deadline < 0) {
			left = -1;
		} else {
			long long d = deadline - evloop_clock();

			left = d <= 0 ? 0 : d > INT_MAX ? INT_MAX : (int)d;
		}
		r = ipc_recv(sock, reply, NULL, left, why);
		if (r == 0) {
			buf_set(why, "connection closed without a reply");
			r = -1;
		} else if (r == 1) {
			r = 0;
		}
	}
	(void)close(sock);
	return r;
}
