/*
 * auth_client - servers' side of the authd protocol (see auth_client.h).
 *
 * PROTOCOL
 *	The server connects to <run_directory>/auth, sends one frame
 *	{request=verify, user, password, client, service} and reads one
 *	frame {status=ok|fail|locked|tempfail, [user], [delay], [reason]};
 *	authd then closes. The whole exchange must finish within
 *	auth_timeout; after the reply the client waits delay milliseconds
 *	before it reports the result, so that failure throttling (and the
 *	same delay on success while an address has recent failures) needs
 *	nothing from the servers.
 *
 *	A reply is checked strictly: unknown attributes, a missing or
 *	unknown status, a bad delay or an ok without a sane address all
 *	read as AUTH_TEMPFAIL, as do a refused connect, a timeout and a
 *	connection closed without a whole frame.
 *
 *	The request never carries a value with NUL, CR or LF or over its
 *	bound: such a user name or password is AUTH_FAIL without asking.
 *
 * Event form: a call object owns the socket, the frame buffers, a
 * deadline timer and later the delay timer; done() is always called
 * from a loop callback (a 0 ms timer when the result is known at start)
 * and the call is freed before done() runs, so done() may start a new
 * call or free the session that owned this one.
 *
 * FAIRNESS
 *	authd is a small pool of slow checks, so every server process
 *	bounds what it asks of it (DESIGN.md 9). At most
 *	auth_process_inflight calls are at authd at once; more wait in a
 *	queue of at most auth_queue_limit, and a call over that gets
 *	AUTH_TEMPFAIL at once, without authd. A client address prefix
 *	(auth_prefix_v4, auth_prefix_v6: a /24, a /64) that had a recent
 *	failure is "hot"; its share is auth_prefix_inflight calls. The
 *	share limits it only when others wait, so that a webmail server or
 *	an office NAT with one typo behind it is not throttled for everybody
 *	while authd has room:
 *	  - when a slot at authd frees, the first queued call from a prefix
 *	    that is not hot goes; if there is none, the first from a hot
 *	    prefix with fewer than its share at authd; if there is none
 *	    either, the oldest;
 *	  - when the queue is full, a call from a prefix within its share
 *	    (not hot, or hot with fewer than its share queued or at authd)
 *	    takes the place of the newest queued call of a hot prefix over
 *	    its share, which gets AUTH_TEMPFAIL at once; a call of a hot
 *	    prefix over its share gets AUTH_TEMPFAIL itself, and any other
 *	    "authd queue full".
 *	So a flood from one prefix, hot after its first failure, can fill
 *	what others leave idle but never keeps them out: they pass it in
 *	the queue and take its places. This process
 *	remembers, per prefix, when authd last answered fail or locked
 *	for it (for auth_failure_window; a bounded table, idle prefixes
 *	with the oldest failures make room). The memory is local rather
 *	than a hint in authd's reply so that the protocol stays as it is
 *	and a queued call can be ordered without asking authd anything;
 *	authd's own counts per address and per (account, prefix) do the
 *	rest. The queue lives in the process (one event loop each).
 *
 *	A cancelled call leaves the queue at once; one at authd closes
 *	its connection, and authd drops a request whose connection has
 *	closed before it starts the check. A call watching its client's
 *	connection (auth_client_watch) is dropped when it leaves the
 *	queue if that client has hung up meanwhile.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
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
#include "mail/auth_client.h"
#include "mail/ipc.h"
#include "mail/params.h"

#define AUTH_CLIENT_TEXT_MAX 255	/* client address, service name */
#define AUTH_CLIENT_REPLY_MAX 4096	/* a reply frame is much smaller */
#define AUTH_CLIENT_DELAY_MAX (600 * 1000LL)	/* auth_failure_delay_max */

#define AUTH_CLIENT_PREFIX_MAX 64	/* "ffff:...:ffff/128", any text */

/* one client address prefix: calls it has here, its latest failure */
struct auth_prefix {
	char name[AUTH_CLIENT_PREFIX_MAX];	/* "" unused */
	int active;			/* queued or at authd */
	int sent;			/* at authd */
	long long failed_at;		/* monotonic ms, 0 none */
};

enum auth_call_state {
	AUTH_CALL_NEW,		/* not counted anywhere */
	AUTH_CALL_QUEUED,
	AUTH_CALL_SENT,		/* connected to authd */
	AUTH_CALL_DONE,
};

struct auth_call {
	struct evloop *loop;
	enum auth_call_state state;
	struct auth_call *qprev, *qnext;	/* in the queue */
	struct auth_prefix *prefix;	/* counted there while active */
	int watch_fd;			/* the client's connection, or -1 */
	int fd;				/* -1 when closed */
	unsigned events;		/* watched on fd */
	struct buf out;			/* the framed request (wiped) */
	size_t out_off;			/* bytes of out already sent */
	struct buf in;			/* reply bytes, bounded */
	struct ev_timer *deadline;	/* auth_timeout */
	struct ev_timer *later;		/* the delay, or 0 ms for results
					 * known at start */
	struct auth_reply reply;
	auth_done_fn *done;
	void *ctx;
};

/* the process's queue and prefix table (one event loop per process) */
static struct {
	struct auth_call *head, *tail;
	int queued;
	int sent;
	bool pumping;
	struct auth_prefix *tab;	/* allocated at first use */
	size_t ntab;
} auth_q;

/* auth_client_hot - has authd refused this prefix lately? */
static bool
auth_client_hot(const struct auth_prefix *p, long long now)
{
	return p->failed_at > 0 &&
	    now - p->failed_at < var_auth_failure_window * 1000;
}

/* auth_client_over - would one more call of hot prefix p (count calls
 * queued or at authd, or at authd only) be over its share? */
static bool
auth_client_over(const struct auth_prefix *p, int count, long long now)
{
	return count >= var_auth_prefix_inflight && auth_client_hot(p, now);
}

/*
 * auth_client_prefix_get - the table entry of prefix name, made when
 * absent in a free slot or in place of the idle one whose failure is
 * oldest; NULL when every slot is busy. The table has room for every
 * call the bounds let in, plus idle memory.
 */
static struct auth_prefix *
auth_client_prefix_get(const char *name)
{
	struct auth_prefix *free_slot = NULL, *idle = NULL, *victim;

	if (auth_q.tab == NULL) {
		auth_q.ntab = (size_t)(var_auth_queue_limit +
		    var_auth_process_inflight) + 256;
		auth_q.tab = xcalloc(auth_q.ntab, sizeof(*auth_q.tab));
	}
	for (size_t i = 0; i < auth_q.ntab; i++) {
		struct auth_prefix *p = &auth_q.tab[i];

		if (p->name[0] == '\0') {
			if (free_slot == NULL)
				free_slot = p;
		} else if (strcmp(p->name, name) == 0) {
			return p;
		} else if (p->active == 0 && (idle == NULL ||
		    p->failed_at < idle->failed_at)) {
			idle = p;
		}
	}
	if ((victim = free_slot != NULL ? free_slot : idle) != NULL) {
		memset(victim, 0, sizeof(*victim));
		str_lcpy(victim->name, name, sizeof(victim->name));
	}
	return victim;
}

/* auth_client_counts - calls queued and at authd in this process */
void
auth_client_counts(int *queued, int *sent)
{
	*queued = auth_q.queued;
	*sent = auth_q.sent;
}

/* auth_client_socket_path - <run_directory>/auth */
void
auth_client_socket_path(struct buf *out)
{
	buf_reset(out);
	buf_printf(out, "%s/auth", var_run_directory);
}

/* auth_client_mask - keep the first bits of n bytes at p */
static void
auth_client_mask(unsigned char *p, size_t n, int bits)
{
	for (size_t i = 0; i < n; i++) {
		int keep = bits - (int)i * 8;

		if (keep >= 8)
			continue;
		p[i] &= keep <= 0 ? 0 : (unsigned char)(0xff << (8 - keep));
	}
}

/* auth_client_prefix - "net/len" of addr, or addr itself */
void
auth_client_prefix(const char *addr, int v4, int v6, char *out,
    size_t size)
{
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0,
	    0, 0xff, 0xff};
	unsigned char a[16];
	char text[INET6_ADDRSTRLEN];

	if (size == 0)
		return;
	if (inet_pton(AF_INET6, addr, a) == 1 &&
	    memcmp(a, mapped, sizeof(mapped)) != 0) {
		auth_client_mask(a, 16, v6);
		if (inet_ntop(AF_INET6, a, text, sizeof(text)) != NULL) {
			snprintf(out, size, "%s/%d", text, v6);
			return;
		}
	} else if (inet_pton(AF_INET6, addr, a) == 1 ||
	    inet_pton(AF_INET, addr, a + 12) == 1) {
		auth_client_mask(a + 12, 4, v4);
		if (inet_ntop(AF_INET, a + 12, text, sizeof(text)) != NULL) {
			snprintf(out, size, "%s/%d", text, v4);
			return;
		}
	}
	str_lcpy(out, addr, size);
}

/* auth_client_text_ok - 1..max bytes without CR or LF (no NUL in C) */
static bool
auth_client_text_ok(const char *s, size_t max)
{
	size_t n;

	if (s == NULL)
		return false;
	n = strlen(s);
	return n > 0 && n <= max && !str_has_crlfnul(s, n);
}

/* auth_client_set - fill reply with result and a reason */
static void
auth_client_set(struct auth_reply *reply, enum auth_result result,
    const char *reason)
{
	memset(reply, 0, sizeof(*reply));
	reply->result = result;
	str_lcpy(reply->reason, reason, sizeof(reply->reason));
}

/*
 * auth_client_check - are req's values fit to go out? 0 if so; else -1
 * with the reply set: AUTH_FAIL for a user name or password no account
 * can have, AUTH_TEMPFAIL for a bad client address or service name (a
 * server bug, not the client's doing).
 */
static int
auth_client_check(const struct auth_request *req, struct auth_reply *reply)
{
	if (!auth_client_text_ok(req->user, AUTH_USER_MAX)) {
		auth_client_set(reply, AUTH_FAIL, "unusable user name (empty, "
		    "too long, or CR or LF in it)");
		return -1;
	}
	if (!auth_client_text_ok(req->password, AUTH_PASSWORD_MAX)) {
		auth_client_set(reply, AUTH_FAIL, "unusable password (empty, "
		    "too long, or CR or LF in it)");
		return -1;
	}
	if (!auth_client_text_ok(req->client, AUTH_CLIENT_TEXT_MAX) ||
	    !auth_client_text_ok(req->service, AUTH_CLIENT_TEXT_MAX)) {
		auth_client_set(reply, AUTH_TEMPFAIL, "bad client address or "
		    "service name in authentication request");
		return -1;
	}
	return 0;
}

/* auth_client_request - the request frame */
static void
auth_client_request(const struct auth_request *req, struct ipc_msg *m)
{
	ipc_put_str(m, IPC_REQUEST, "verify");
	ipc_put_str(m, IPC_USER, req->user);
	ipc_put_str(m, IPC_PASSWORD, req->password);
	ipc_put_str(m, IPC_CLIENT, req->client);
	ipc_put_str(m, IPC_SERVICE, req->service);
}

/* auth_client_wipe_msg - free a message that held a password */
static void
auth_client_wipe_msg(struct ipc_msg *m)
{
	if (m->body.cap > 0)
		explicit_bzero(m->body.data, m->body.cap);
	ipc_msg_free(m);
}

/* auth_client_copy_reason - printable copy of authd's reason */
static void
auth_client_copy_reason(struct auth_reply *reply, const char *text)
{
	size_t i;

	for (i = 0; text[i] != '\0' && i < sizeof(reply->reason) - 1; i++) {
		unsigned char c = (unsigned char)text[i];

		reply->reason[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	reply->reason[i] = '\0';
}

/* auth_client_parse - check a reply frame strictly and fill reply */
static void
auth_client_parse(const struct ipc_msg *m, struct auth_reply *reply)
{
	static const char *const allowed[] = {IPC_STATUS, IPC_USER,
	    IPC_DELAY, IPC_REASON, NULL};
	struct buf why = BUF_INIT;
	const char *status, *user, *reason;
	long long delay = 0;

	if (ipc_expect_only(m, allowed, &why) < 0) {
		buf_printf(&why, " in authd reply");
		auth_client_set(reply, AUTH_TEMPFAIL, buf_cstr(&why));
		buf_free(&why);
		return;
	}
	buf_free(&why);
	status = ipc_get_str(m, IPC_STATUS);
	user = ipc_get_str(m, IPC_USER);
	reason = ipc_get_str(m, IPC_REASON);
	if (ipc_get_str(m, IPC_DELAY) != NULL &&
	    (ipc_get_int(m, IPC_DELAY, &delay) < 0 || delay < 0 ||
	    delay > AUTH_CLIENT_DELAY_MAX)) {
		auth_client_set(reply, AUTH_TEMPFAIL, "bad delay in authd "
		    "reply");
		return;
	}
	memset(reply, 0, sizeof(*reply));
	if (status == NULL) {
		auth_client_set(reply, AUTH_TEMPFAIL, "authd reply without "
		    "status");
		return;
	} else if (strcmp(status, "ok") == 0) {
		if (user == NULL || !auth_client_text_ok(user, AUTH_USER_MAX) ||
		    strchr(user, '@') == NULL) {
			auth_client_set(reply, AUTH_TEMPFAIL, "authd said ok "
			    "without a usable address");
			return;
		}
		reply->result = AUTH_OK;
		str_lcpy(reply->user, user, sizeof(reply->user));
	} else if (strcmp(status, "fail") == 0) {
		reply->result = AUTH_FAIL;
	} else if (strcmp(status, "locked") == 0) {
		reply->result = AUTH_LOCKED;
	} else if (strcmp(status, "tempfail") == 0) {
		reply->result = AUTH_TEMPFAIL;
	} else {
		auth_client_set(reply, AUTH_TEMPFAIL, "unknown status in "
		    "authd reply");
		return;
	}
	reply->delay_ms = delay;
	if (reason != NULL)
		auth_client_copy_reason(reply, reason);
}

static void auth_client_pump(void);

/* auth_client_unqueue - take c off the queue (its prefix still counts) */
static void
auth_client_unqueue(struct auth_call *c)
{
	if (c->qprev != NULL)
		c->qprev->qnext = c->qnext;
	else
		auth_q.head = c->qnext;
	if (c->qnext != NULL)
		c->qnext->qprev = c->qprev;
	else
		auth_q.tail = c->qprev;
	c->qprev = c->qnext = NULL;
	auth_q.queued--;
}

/* auth_client_release - the call leaves the queue or authd: uncount it
 * and let the next queued call go */
static void
auth_client_release(struct auth_call *c)
{
	if (c->state == AUTH_CALL_QUEUED) {
		auth_client_unqueue(c);
	} else if (c->state == AUTH_CALL_SENT) {
		auth_q.sent--;
		if (c->prefix != NULL)
			c->prefix->sent--;
	}
	if (c->prefix != NULL) {
		c->prefix->active--;
		c->prefix = NULL;
	}
	if (c->state == AUTH_CALL_SENT)
		auth_client_pump();
	c->state = AUTH_CALL_DONE;
}

/* auth_client_close - drop the socket and the buffers */
static void
auth_client_close(struct auth_call *c)
{
	auth_client_release(c);
	if (c->fd >= 0) {
		evloop_del_fd(c->loop, c->fd);
		(void)close(c->fd);
		c->fd = -1;
	}
	if (c->out.cap > 0)
		explicit_bzero(c->out.data, c->out.cap);
	buf_free(&c->out);
	buf_free(&c->in);
	evloop_cancel_timer(c->loop, &c->deadline);
}

/* auth_client_free - release everything of a call */
static void
auth_client_free(struct auth_call *c)
{
	auth_client_close(c);
	evloop_cancel_timer(c->loop, &c->later);
	x_free(&c);
}

/* auth_client_finish - free the call, then tell the owner (in the loop) */
static void
auth_client_finish(struct auth_call *c)
{
	struct auth_reply reply = c->reply;
	auth_done_fn *done = c->done;
	void *ctx = c->ctx;

	auth_client_free(c);
	done(&reply, ctx);
}

/* auth_client_later_fire - the delay is over, or a known result is due */
static long long
auth_client_later_fire(struct evloop *loop, void *ctx)
{
	struct auth_call *c = ctx;

	c->later = NULL;	/* freed by the loop when we return -1 */
	auth_client_finish(c);
	return -1;
}

/* auth_client_result - the answer is known: wait its delay, then report */
static void
auth_client_result(struct auth_call *c)
{
	auth_client_close(c);
	c->later = evloop_add_timer(c->loop, c->reply.delay_ms,
	    auth_client_later_fire, c);
}

/* auth_client_tempfail - give up with a reason */
static void
auth_client_tempfail(struct auth_call *c, const char *reason)
{
	auth_client_set(&c->reply, AUTH_TEMPFAIL, reason);
	auth_client_result(c);
}

/* auth_client_deadline - authd did not answer within auth_timeout */
static long long
auth_client_deadline(struct evloop *loop, void *ctx)
{
	struct auth_call *c = ctx;

	c->deadline = NULL;
	auth_client_tempfail(c, "authd did not answer in time");
	return -1;
}

/* auth_client_io - the socket is ready: send the rest, or read the reply */
static void
auth_client_io(struct evloop *loop, int fd, unsigned events, void *ctx)
{
	struct auth_call *c = ctx;
	struct ipc_msg m;
	struct buf why = BUF_INIT;
	char chunk[1024];
	ssize_t n;
	int r;

	if (c->out_off < c->out.len) {
		n = send(fd, c->out.data + c->out_off,
		    c->out.len - c->out_off, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK ||
			    errno == EINTR)
				return;
			auth_client_tempfail(c, "send to authd failed");
			return;
		}
		c->out_off += (size_t)n;
		if (c->out_off < c->out.len)
			return;
		/* the password is out: forget it now */
		explicit_bzero(c->out.data, c->out.cap);
		buf_free(&c->out);
		c->out_off = 0;
		c->events = EV_READ;
		if (evloop_mod_fd(loop, fd, EV_READ) < 0) {
			auth_client_tempfail(c, "cannot watch the authd "
			    "connection");
			return;
		}
		return;
	}
	n = recv(fd, chunk, sizeof(chunk), MSG_DONTWAIT);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		auth_client_tempfail(c, "receive from authd failed");
		return;
	}
	if (n == 0) {
		auth_client_tempfail(c, c->in.len == 0 ?
		    "authd closed the connection without a reply" :
		    "authd closed the connection in mid-reply");
		return;
	}
	buf_append(&c->in, chunk, (size_t)n);
	if (c->in.overflow) {
		auth_client_tempfail(c, "authd reply too long");
		return;
	}
	ipc_msg_init(&m);
	r = ipc_frame_take(&c->in, &m, &why);
	if (r == 0) {
		ipc_msg_free(&m);
		buf_free(&why);
		return;
	}
	if (r < 0 || c->in.len > 0) {
		ipc_msg_free(&m);
		buf_free(&why);
		auth_client_tempfail(c, "malformed authd reply");
		return;
	}
	auth_client_parse(&m, &c->reply);
	ipc_msg_free(&m);
	buf_free(&why);
	if (c->prefix != NULL && (c->reply.result == AUTH_FAIL ||
	    c->reply.result == AUTH_LOCKED))
		c->prefix->failed_at = evloop_clock();
	auth_client_result(c);
}

/* auth_client_evict - the queue is full: the newest queued call of a
 * hot prefix over its share (counting itself) gets AUTH_TEMPFAIL, to
 * make room for a call within its share. 0, or -1 when there is none */
static int
auth_client_evict(void)
{
	struct auth_call *c;
	struct buf why = BUF_INIT;
	long long now = evloop_clock();

	for (c = auth_q.tail; c != NULL; c = c->qprev)
		if (c->prefix != NULL &&
		    auth_client_over(c->prefix, c->prefix->active - 1, now))
			break;
	if (c == NULL)
		return -1;
	buf_printf(&why, "too many authentication requests from %s at authd",
	    c->prefix->name);
	auth_client_tempfail(c, buf_cstr(&why));
	buf_free(&why);
	return 0;
}

/* auth_client_start - send req to authd, report through done */
struct auth_call *
auth_client_start(struct evloop *loop, const struct auth_request *req,
    auth_done_fn *done, void *ctx)
{
	struct auth_call *c = xcalloc(1, sizeof(*c));
	struct buf why = BUF_INIT;
	char prefix[AUTH_CLIENT_PREFIX_MAX];
	struct ipc_msg m;
	bool over;

	if (loop == NULL || req == NULL || done == NULL)
		msg_panic("auth_client_start: NULL argument");
	c->loop = loop;
	c->fd = -1;
	c->watch_fd = -1;
	c->done = done;
	c->ctx = ctx;
	buf_init(&c->out);
	buf_init(&c->in);
	buf_set_limit(&c->in, AUTH_CLIENT_REPLY_MAX);

	if (auth_client_check(req, &c->reply) < 0) {
		auth_client_result(c);	/* reported from the loop */
		return c;
	}
	auth_client_prefix(req->client, (int)var_auth_prefix_v4,
	    (int)var_auth_prefix_v6, prefix, sizeof(prefix));
	if ((c->prefix = auth_client_prefix_get(prefix)) == NULL) {
		auth_client_tempfail(c, "too many authentication requests "
		    "waiting for authd");
		return c;
	}
	if (auth_q.sent >= var_auth_process_inflight &&
	    auth_q.queued >= var_auth_queue_limit) {
		/* full: a call within its share takes the place of one
		 * over it, or is refused */
		over = auth_client_over(c->prefix, c->prefix->active,
		    evloop_clock());
		if (over || auth_client_evict() < 0) {
			c->prefix = NULL;
			if (over) {
				buf_printf(&why, "too many authentication "
				    "requests from %s at authd", prefix);
				auth_client_tempfail(c, buf_cstr(&why));
				buf_free(&why);
			} else {
				auth_client_tempfail(c, "authd queue full");
			}
			return c;
		}
	}
	c->prefix->active++;
	ipc_msg_init(&m);
	auth_client_request(req, &m);
	ipc_frame_encode(&m, &c->out);
	auth_client_wipe_msg(&m);
	c->deadline = evloop_add_timer(loop, var_auth_timeout * 1000,
	    auth_client_deadline, c);
	/* in the queue, even when authd has room: auth_client_pump sends */
	c->state = AUTH_CALL_QUEUED;
	c->qprev = auth_q.tail;
	if (auth_q.tail != NULL)
		auth_q.tail->qnext = c;
	else
		auth_q.head = c;
	auth_q.tail = c;
	auth_q.queued++;
	auth_client_pump();
	return c;
}

/* auth_client_watch - drop call c, when it leaves the queue, if the
 * client connection fd has hung up by then */
void
auth_client_watch(struct auth_call *c, int fd)
{
	if (c != NULL)
		c->watch_fd = fd;
}

/* auth_client_gone - has the client on fd hung up (or half-closed)? */
static bool
auth_client_gone(int fd)
{
	struct pollfd pfd = {.fd = fd, .events = POLLRDHUP};

	if (fd < 0)
		return false;
	return poll(&pfd, 1, 0) > 0 &&
	    (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

/* auth_client_send - connect to authd for c (just taken off the queue) */
static void
auth_client_send(struct auth_call *c)
{
	struct buf path = BUF_INIT, why = BUF_INIT;

	if (auth_client_gone(c->watch_fd)) {
		auth_client_tempfail(c, "client hung up before authd was "
		    "asked");
		return;
	}
	c->state = AUTH_CALL_SENT;
	auth_q.sent++;
	if (c->prefix != NULL)
		c->prefix->sent++;
	auth_client_socket_path(&path);
	c->fd = sock_connect_unix(buf_cstr(&path), true, &why);
	buf_free(&path);
	if (c->fd < 0) {
		msg_warn("authd: %s", buf_cstr(&why));
		buf_free(&why);
		auth_client_tempfail(c, "cannot connect to authd");
		return;
	}
	buf_free(&why);
	c->events = EV_WRITE;
	if (evloop_add_fd(c->loop, c->fd, EV_WRITE, auth_client_io, c) < 0)
		auth_client_tempfail(c, "cannot watch the authd connection");
}

/*
 * auth_client_pump - send queued calls while authd has room here: the
 * first from a prefix without recent failures, else the first from a hot
 * prefix with fewer than its share at authd, else the oldest. Calls that
 * finish at once release their slot inside; the guard keeps that from
 * nesting.
 */
static void
auth_client_pump(void)
{
	struct auth_call *c;
	long long now;

	if (auth_q.pumping)
		return;
	auth_q.pumping = true;
	while (auth_q.head != NULL &&
	    auth_q.sent < var_auth_process_inflight) {
		now = evloop_clock();
		for (c = auth_q.head; c != NULL; c = c->qnext)
			if (c->prefix == NULL || !auth_client_hot(c->prefix,
			    now))
				break;
		if (c == NULL)
			for (c = auth_q.head; c != NULL; c = c->qnext)
				if (c->prefix == NULL ||
				    !auth_client_over(c->prefix,
				    c->prefix->sent, now))
					break;
		if (c == NULL)
			c = auth_q.head;
		/* off the queue, still counted for its prefix */
		auth_client_unqueue(c);
		c->state = AUTH_CALL_NEW;
		auth_client_send(c);
	}
	auth_q.pumping = false;
}

/* auth_client_cancel - forget the call: done is never called */
void
auth_client_cancel(struct auth_call **cp)
{
	if (*cp == NULL)
		return;
	auth_client_free(*cp);
	*cp = NULL;
}

/* auth_client_sleep - wait ms milliseconds, whatever signals come */
static void
auth_client_sleep(long long ms)
{
	struct timespec ts, left;

	if (ms <= 0)
		return;
	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &left) < 0 && errno == EINTR)
		ts = left;
}

/* auth_client_verify - the blocking form (waits out the delay too) */
int
auth_client_verify(const struct auth_request *req, int timeout_ms,
    struct auth_reply *reply, struct buf *why)
{
	struct buf path = BUF_INIT, err = BUF_INIT;
	struct ipc_msg m, r;

	if (req == NULL || reply == NULL || req->user == NULL ||
	    req->password == NULL || req->client == NULL ||
	    req->service == NULL) {
		buf_set(why, "auth_client_verify: missing argument");
		return -1;
	}
	if (auth_client_check(req, reply) < 0) {
		if (reply->result == AUTH_TEMPFAIL) {
			buf_set(why, reply->reason);
			return -1;
		}
		return 0;
	}
	if (timeout_ms <= 0)
		timeout_ms = (int)(var_auth_timeout * 1000);
	auth_client_socket_path(&path);
	ipc_msg_init(&m);
	ipc_msg_init(&r);
	auth_client_request(req, &m);
	if (ipc_call(buf_cstr(&path), &m, &r, timeout_ms, &err) < 0) {
		auth_client_set(reply, AUTH_TEMPFAIL, "");
		snprintf(reply->reason, sizeof(reply->reason), "authd: %s",
		    buf_cstr(&err));
	} else {
		auth_client_parse(&r, reply);
	}
	auth_client_wipe_msg(&m);
	ipc_msg_free(&r);
	buf_free(&path);
	buf_free(&err);
	auth_client_sleep(reply->delay_ms);
	return 0;
}
