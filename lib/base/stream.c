/*
 * stream - buffered, non-blocking connections on an evloop, plain or TLS:
 * bounded input with a line reader, queued output, STARTTLS, deadlines.
 *
 * Everything that can call the owner back (input, TLS ready, timeout,
 * closed) happens from the loop: an fd event, a deadline timer, or the
 * "kick" timer (a 0 ms timer) that API calls schedule when they need work
 * done outside a callback. API calls never call the owner back, so an
 * owner can never be re-entered from its own call. The owner may free the
 * stream inside any callback: the depth counter keeps the memory alive
 * until the outermost callback frame has unwound.
 *
 * TLS goes through a tiny BIO of our own so that writes use
 * send(MSG_NOSIGNAL): a peer that resets never raises SIGPIPE.
 *
 * Compression (stream_compress_start) sits between the transport (the
 * socket or TLS) and the buffers: raw bytes read go to the codec
 * (stream_deflate.c), which inflates only as much as the input buffer has
 * room for and is fed again only once it has nothing left; output is
 * deflated in batches into zout when zout has drained, so each of in,
 * out and zout stays bounded as without compression.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "base/buf.h"
#include "base/evloop.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/sock.h"
#include "base/stream.h"
#include "base/stream_deflate.h"
#include "base/tls.h"

#define STREAM_CHUNK 16384		/* one read */
#define STREAM_READ_ROUNDS 4		/* reads per event, for fairness */
#define STREAM_WRITE_MAX (256 * 1024)	/* one plain send */
#define STREAM_KEEP_IN 16384		/* largest empty input buf kept */
#define STREAM_KEEP_OUT 65536		/* largest empty output buf kept */
#define STREAM_GRACE_MS 30000		/* longest flush after a timeout */
#define STREAM_RELEASE_MS 1000		/* quiet time before idle buffers go */

enum stream_phase {
	STREAM_PLAIN,		/* no TLS */
	STREAM_TLS_FLUSH,	/* STARTTLS: flushing plaintext output first */
	STREAM_HANDSHAKE,	/* TLS handshake running */
	STREAM_TLS,		/* TLS established */
};

struct stream {
	struct evloop *loop;
	int fd;
	struct stream_limits lim;
	stream_event_fn *fn;
	void *ctx;

	struct buf in;		/* input; bytes before in_off are taken */
	size_t in_off;
	unsigned long long consumed;	/* input bytes consumed, ever */
	unsigned long long line_end;	/* consumed when the owner last
					 * took input (not a skipped line) */
	bool in_dirty;		/* input the owner was not told about */
	bool skipping;		/* dropping the rest of a long line */
	bool paused;
	bool eof;		/* the peer closed its side */
	bool waiting;		/* the last read found nothing more: the
				 * stream waits for its peer */

	struct buf out;		/* output; bytes before out_off sent */
	size_t out_off;
	size_t plain_left;	/* TLS_FLUSH: plaintext bytes still to send */
	bool write_blocked;	/* the last write hit EAGAIN */
	bool drain_wanted;	/* STREAM_DRAINED once out <= drain_low */
	size_t drain_low;

	enum stream_phase phase;
	SSL *ssl;
	BIO *bio;
	unsigned hs_want;	/* HANDSHAKE: EV_READ or EV_WRITE */
	bool read_wants_write;	/* SSL_read said WANT_WRITE */
	bool write_wants_read;	/* SSL_write said WANT_READ */
	int tls_wlen;		/* length of an SSL_write to retry, or 0 */
	bool bio_eof;		/* our BIO read EOF */
	int bio_errno;		/* errno of the BIO's last failure */

	struct stream_deflate *z;	/* compression, or NULL */
	size_t z_plain_left;	/* output queued before compression */
	struct buf zout;	/* compressed output; before zout_off sent */
	size_t zout_off;
	char *in_error;		/* why the (compressed) input failed */
	bool in_error_told;	/* the owner had its STREAM_INPUT for it */

	bool finishing;		/* stream_finish: flush, then close */
	bool broken;		/* close with reason at the next chance */
	bool closed;		/* STREAM_CLOSED emitted (or about to be) */
	struct buf reason;

	struct ev_timer *idle_timer;
	struct ev_timer *total_timer;
	struct ev_timer *kick_timer;
	struct ev_timer *hs_timer;	/* TLS handshake deadline */
	struct ev_timer *release_timer;	/* frees the buffers of a quiet
					 * stream (stream_release_idle) */
	long long busy_ms;		/* evloop_now_ms of the last pass */
	long long hs_ms;		/* its length, 0: none */
	long long started_ms;
	bool timeout_fired;

	unsigned watched;	/* events registered with the loop */
	bool registered;
	int depth;		/* callback frames on the stack */
	bool freed;		/* stream_free ran; free at depth 0 */
};

static char stream_chunk[STREAM_CHUNK];
static BIO_METHOD *stream_bio_method;

static void stream_process(struct stream *, bool, bool);
static void stream_drop(struct stream *, size_t);
static void stream_update(struct stream *);

/* stream_bio_write - BIO write: send() without SIGPIPE */
static int
stream_bio_write(BIO *b, const char *p, int n)
{
	struct stream *s = BIO_get_data(b);
	ssize_t r;

	BIO_clear_retry_flags(b);
	do {
		r = send(s->fd, p, (size_t)n, MSG_NOSIGNAL);
	} while (r < 0 && errno == EINTR);
	if (r < 0) {
		s->bio_errno = errno;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			BIO_set_retry_write(b);
		return -1;
	}
	return (int)r;
}

/* stream_bio_read - BIO read from the fd, remembering EOF */
static int
stream_bio_read(BIO *b, char *p, int n)
{
	struct stream *s = BIO_get_data(b);
	ssize_t r;

	BIO_clear_retry_flags(b);
	do {
		r = read(s->fd, p, (size_t)n);
	} while (r < 0 && errno == EINTR);
	if (r == 0) {
		s->bio_eof = true;
		return 0;
	}
	if (r < 0) {
		s->bio_errno = errno;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			BIO_set_retry_read(b);
		return -1;
	}
	return (int)r;
}

/* stream_bio_ctrl - BIO control: flush is a no-op, EOF is ours */
static long
stream_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct stream *s = BIO_get_data(b);

	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1;
	case BIO_CTRL_EOF:
		return s != NULL && s->bio_eof;
	default:
		return 0;
	}
}

/* stream_bio_new - a BIO of our method bound to s */
static BIO *
stream_bio_new(struct stream *s)
{
	BIO *b;

	if (stream_bio_method == NULL) {
		stream_bio_method = BIO_meth_new(BIO_get_new_index() |
		    BIO_TYPE_SOURCE_SINK, "herald stream");
		if (stream_bio_method == NULL ||
		    BIO_meth_set_write(stream_bio_method,
		    stream_bio_write) != 1 ||
		    BIO_meth_set_read(stream_bio_method,
		    stream_bio_read) != 1 ||
		    BIO_meth_set_ctrl(stream_bio_method,
		    stream_bio_ctrl) != 1)
			msg_fatal("cannot create the TLS BIO method");
	}
	if ((b = BIO_new(stream_bio_method)) == NULL)
		return NULL;
	BIO_set_data(b, s);
	BIO_set_init(b, 1);
	return b;
}

/* stream_in_avail - unconsumed input bytes */
static size_t
stream_in_avail(const struct stream *s)
{
	return s->in.len - s->in_off;
}

/* stream_plain_avail - output bytes not yet sent or compressed */
static size_t
stream_plain_avail(const struct stream *s)
{
	return s->out.len - s->out_off;
}

/* stream_out_avail - unsent output bytes, compressed ones included */
static size_t
stream_out_avail(const struct stream *s)
{
	return s->out.len - s->out_off + s->zout.len - s->zout_off;
}

/* stream_z_more - compressed input may inflate into the input buffer
 * now, without reading the transport */
static bool
stream_z_more(const struct stream *s)
{
	return s->z != NULL && stream_deflate_pending(s->z) &&
	    stream_in_avail(s) < s->lim.max_input && !s->finishing &&
	    !s->read_wants_write &&
	    (s->phase == STREAM_PLAIN || s->phase == STREAM_TLS);
}

/* stream_kick_cb - the 0 ms timer: do pending work from the loop */
static long long
stream_kick_cb(struct evloop *loop, void *ctx)
{
	struct stream *s = ctx;
	bool rd;

	s->kick_timer = NULL;	/* the loop frees it: we return -1 */
	s->depth++;
	rd = (s->phase == STREAM_TLS && SSL_pending(s->ssl) > 0) ||
	    stream_z_more(s);
	stream_process(s, rd || s->phase == STREAM_HANDSHAKE, true);
	s->depth--;
	if (s->freed && s->depth == 0)
		free(s);
	return -1;
}

/* stream_kick - make the loop call stream_process soon */
static void
stream_kick(struct stream *s)
{
	if (s->kick_timer == NULL && !s->freed && !s->closed)
		s->kick_timer = evloop_add_timer(s->loop, 0, stream_kick_cb, s);
}

/* stream_emit - call the owner; false if the stream was freed meanwhile */
static bool
stream_emit(struct stream *s, enum stream_event ev)
{
	s->depth++;
	s->fn(s, ev, s->ctx);
	s->depth--;
	return !s->freed;
}

/* stream_release - drop fd, timers and TLS (the memory stays) */
static void
stream_release(struct stream *s)
{
	if (s->registered) {
		evloop_del_fd(s->loop, s->fd);
		s->registered = false;
		s->watched = 0;
	}
	evloop_cancel_timer(s->loop, &s->idle_timer);
	evloop_cancel_timer(s->loop, &s->total_timer);
	evloop_cancel_timer(s->loop, &s->kick_timer);
	evloop_cancel_timer(s->loop, &s->hs_timer);
	evloop_cancel_timer(s->loop, &s->release_timer);
}

/* stream_close - stop all I/O and emit STREAM_CLOSED with reason */
static void
stream_close(struct stream *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
stream_close(struct stream *s, const char *fmt, ...)
{
	va_list ap;

	if (s->closed || s->freed)
		return;
	s->closed = true;
	buf_reset(&s->reason);
	va_start(ap, fmt);
	buf_vprintf(&s->reason, fmt, ap);
	va_end(ap);
	stream_release(s);
	(void)stream_emit(s, STREAM_CLOSED);
}

/* stream_close_tls - close with "prefix: " and the TLS error for code e */
static void
stream_close_tls(struct stream *s, const char *prefix, int e)
{
	struct buf why = BUF_INIT;

	if (e == SSL_ERROR_SYSCALL) {
		ERR_clear_error();
		if (s->bio_errno != 0 && !s->bio_eof)
			buf_printf(&why, "%s", strerror(s->bio_errno));
		else
			buf_puts(&why, "connection closed");
	} else if (e == SSL_ERROR_ZERO_RETURN) {
		buf_puts(&why, "connection closed");
	} else {
		tls_error_text(&why);
	}
	stream_close(s, "%s: %s", prefix, buf_cstr(&why));
	buf_free(&why);
}

/* stream_break - remember a failure found outside a callback; the loop
 * closes the stream with it */
static void
stream_break(struct stream *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
stream_break(struct stream *s, const char *fmt, ...)
{
	va_list ap;

	if (s->broken || s->closed)
		return;
	s->broken = true;
	buf_reset(&s->reason);
	va_start(ap, fmt);
	buf_vprintf(&s->reason, fmt, ap);
	va_end(ap);
	stream_kick(s);
}

/* stream_new - take ownership of connected fd (made non-blocking) */
struct stream *
stream_new(struct evloop *loop, int fd, const struct stream_limits *lim,
    stream_event_fn *fn, void *ctx)
{
	struct stream *s = xcalloc(1, sizeof(*s));

	s->loop = loop;
	s->fd = fd;
	s->fn = fn;
	s->ctx = ctx;
	if (lim != NULL)
		s->lim = *lim;
	if (s->lim.max_line == 0)
		s->lim.max_line = 2048;
	if (s->lim.max_input < s->lim.max_line)
		s->lim.max_input = s->lim.max_line;
	buf_init(&s->in);
	buf_init(&s->out);
	buf_init(&s->zout);
	buf_init(&s->reason);
	s->phase = STREAM_PLAIN;
	s->started_ms = evloop_now_ms(loop);
	stream_set_idle_timeout(s, s->lim.idle_ms);
	stream_set_total_timeout(s, s->lim.total_ms);
	if (sock_set_nonblock(fd, true) < 0)
		stream_break(s, "fcntl: %s", strerror(errno));
	else
		stream_update(s);
	return s;
}

/* stream_free - close the fd (TLS close_notify best effort) and free */
void
stream_free(struct stream **sp)
{
	struct stream *s = *sp;

	if (s == NULL)
		return;
	*sp = NULL;
	if (s->freed)
		msg_panic("stream_free: stream %p freed twice", (void *)s);
	stream_release(s);
	if (s->ssl != NULL) {
		if (s->phase == STREAM_TLS && !s->closed) {
			ERR_clear_error();
			(void)SSL_shutdown(s->ssl);
		}
		SSL_free(s->ssl);	/* frees the BIO too */
		s->ssl = NULL;
		ERR_clear_error();
	}
	if (s->fd >= 0)
		(void)close(s->fd);
	s->fd = -1;
	buf_free(&s->in);
	buf_free(&s->out);
	buf_free(&s->zout);
	buf_free(&s->reason);
	stream_deflate_free(&s->z);
	x_free(&s->in_error);
	s->freed = true;
	if (s->depth == 0)
		free(s);
}

/* stream_want_read - should the loop tell us when fd is readable */
static bool
stream_want_read(const struct stream *s)
{
	switch (s->phase) {
	case STREAM_TLS_FLUSH:
		/* Bytes now on the socket are the peer's TLS handshake. */
		return false;
	case STREAM_HANDSHAKE:
		return s->hs_want == EV_READ;
	case STREAM_PLAIN:
	case STREAM_TLS:
		break;
	}
	if (s->write_wants_read && stream_out_avail(s) > 0 && !s->eof)
		return true;
	if (s->eof || s->finishing || s->read_wants_write)
		return false;
	/* The codec is fed again only once it has inflated everything. */
	if (s->z != NULL && stream_deflate_pending(s->z))
		return false;
	return stream_in_avail(s) < s->lim.max_input;
}

/* stream_want_write - should the loop tell us when fd is writable */
static bool
stream_want_write(const struct stream *s)
{
	switch (s->phase) {
	case STREAM_TLS_FLUSH:
		return s->plain_left > 0;
	case STREAM_HANDSHAKE:
		return s->hs_want == EV_WRITE;
	case STREAM_PLAIN:
	case STREAM_TLS:
		break;
	}
	if (s->read_wants_write && !s->eof && !s->finishing)
		return true;
	return stream_out_avail(s) > 0 && !s->write_wants_read;
}

/* stream_io_cb - the loop says fd is ready */
static void
stream_io_cb(struct evloop *loop, int fd, unsigned events, void *ctx)
{
	struct stream *s = ctx;

	s->depth++;
	if (events & EV_WRITE)
		s->write_blocked = false;
	stream_process(s, (events & EV_READ) != 0, (events & EV_WRITE) != 0);
	s->depth--;
	if (s->freed && s->depth == 0)
		free(s);
}

/* stream_update - register the events we wait for; kick for TLS leftovers */
static void
stream_update(struct stream *s)
{
	unsigned ev = 0;

	if (s->closed || s->freed)
		return;
	if (stream_want_read(s))
		ev |= EV_READ;
	if (stream_want_write(s))
		ev |= EV_WRITE;
	if (ev != s->watched || !s->registered) {
		int r;

		if (!s->registered)
			r = evloop_add_fd(s->loop, s->fd, ev, stream_io_cb, s);
		else
			r = evloop_mod_fd(s->loop, s->fd, ev);
		if (r < 0) {
			/* Only resource exhaustion gets here: close soon. */
			msg_warn("stream: cannot watch fd %d: %m", s->fd);
			stream_break(s, "evloop: %s", strerror(errno));
			return;
		}
		s->registered = true;
		s->watched = ev;
	}
	/*
	 * Decrypted bytes that OpenSSL holds do not make the fd readable:
	 * fetch them from the loop when there is room for them.
	 */
	if (s->phase == STREAM_TLS && (ev & EV_READ) && !s->write_wants_read &&
	    SSL_pending(s->ssl) > 0)
		stream_kick(s);
	/* Nor do compressed bytes the codec holds. */
	if (stream_z_more(s))
		stream_kick(s);
}

/* stream_send - hand n bytes to the transport: the count taken, 0 if
 * it would block (write_blocked or write_wants_read say which), or -1
 * after closing */
static ssize_t
stream_send(struct stream *s, const char *p, size_t n)
{
	ssize_t r;

	if (s->phase == STREAM_TLS) {
		int len, e;

		/* A retried SSL_write must repeat its length. */
		len = s->tls_wlen ? s->tls_wlen :
		    (int)(n > STREAM_CHUNK ? STREAM_CHUNK : n);
		ERR_clear_error();
		s->bio_errno = 0;
		r = SSL_write(s->ssl, p, len);
		if (r <= 0) {
			e = SSL_get_error(s->ssl, (int)r);
			s->tls_wlen = len;
			if (e == SSL_ERROR_WANT_WRITE) {
				s->write_blocked = true;
				return 0;
			}
			if (e == SSL_ERROR_WANT_READ) {
				s->write_wants_read = true;
				return 0;
			}
			if (e == SSL_ERROR_SYSCALL && s->bio_errno != 0) {
				ERR_clear_error();
				stream_close(s, "write: %s",
				    strerror(s->bio_errno));
			} else {
				stream_close_tls(s, "TLS write", e);
			}
			return -1;
		}
		s->tls_wlen = 0;
		return r;
	}
	if (n > STREAM_WRITE_MAX)
		n = STREAM_WRITE_MAX;
	for (;;) {
		r = send(s->fd, p, n, MSG_NOSIGNAL);
		if (r < 0 && errno == ENOTSOCK)
			r = write(s->fd, p, n);
		if (r >= 0)
			return r;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			s->write_blocked = true;
			return 0;
		}
		stream_close(s, "write: %m");
		return -1;
	}
}

/* stream_deflate_batch - compress the next batch of queued output into
 * the (drained) zout */
static void
stream_deflate_batch(struct stream *s)
{
	size_t n = stream_plain_avail(s);

	if (n > STREAM_WRITE_MAX)
		n = STREAM_WRITE_MAX;
	if (s->zout.cap > STREAM_KEEP_OUT)
		buf_free(&s->zout);
	else
		buf_reset(&s->zout);
	s->zout_off = 0;
	stream_deflate_deflate(s->z, s->out.data + s->out_off, n, &s->zout);
	s->out_off += n;
}

/* stream_flush - write queued output; 0, or -1 after closing */
static int
stream_flush(struct stream *s)
{
	bool had = stream_out_avail(s) > 0;
	ssize_t r;

	s->write_wants_read = false;
	while (s->phase != STREAM_HANDSHAKE) {
		const char *p;
		size_t n;
		bool zsrc = s->z != NULL && s->z_plain_left == 0;

		if (zsrc) {
			/* Compressed: what the peer inflates, a batch at a
			 * time, each ending in a sync flush. */
			if (s->zout_off == s->zout.len &&
			    stream_plain_avail(s) > 0)
				stream_deflate_batch(s);
			p = s->zout.data + s->zout_off;
			n = s->zout.len - s->zout_off;
		} else {
			p = s->out.data + s->out_off;
			n = stream_plain_avail(s);
			if (s->phase == STREAM_TLS_FLUSH && n > s->plain_left)
				n = s->plain_left;
			/* the reply that started compression goes as is */
			if (s->z != NULL && n > s->z_plain_left)
				n = s->z_plain_left;
		}
		if (n == 0)
			break;
		if ((r = stream_send(s, p, n)) < 0)
			return -1;
		if (r == 0)
			break;
		if (zsrc) {
			s->zout_off += (size_t)r;
			continue;
		}
		if (s->phase == STREAM_TLS_FLUSH)
			s->plain_left -= (size_t)r;
		if (s->z != NULL)
			s->z_plain_left -= (size_t)r;
		s->out_off += (size_t)r;
	}
	/* Drained: an owner that stopped taking input may go on. */
	if (had && stream_out_avail(s) == 0 && stream_in_avail(s) > 0)
		s->in_dirty = true;
	if (s->out_off == s->out.len) {
		/* a busy stream reuses it; stream_release_cb frees it
		 * once the stream has waited for its peer a while */
		if (s->out.cap > STREAM_KEEP_OUT)
			buf_free(&s->out);
		else
			buf_reset(&s->out);
		s->out_off = 0;
	} else if (s->out_off > STREAM_KEEP_OUT &&
	    s->out_off > s->out.len / 2) {
		buf_consume(&s->out, s->out_off);
		s->out_off = 0;
	}
	if (s->zout_off == s->zout.len) {
		if (s->zout.cap > STREAM_KEEP_IN)
			buf_free(&s->zout);
		else
			buf_reset(&s->zout);
		s->zout_off = 0;
	}
	return 0;
}

/* stream_inflate - inflate what the codec holds into the input, at most
 * room bytes; 0, or -1 when the compressed input is corrupt (the input
 * then ends: see stream_input_error) */
static int
stream_inflate(struct stream *s, size_t room, bool *got)
{
	struct buf why = BUF_INIT;
	ssize_t r;

	if (room > sizeof(stream_chunk))
		room = sizeof(stream_chunk);
	if ((r = stream_deflate_inflate(s->z, stream_chunk, room, &why)) < 0) {
		s->in_error = xstrdup(buf_cstr(&why));
		s->eof = true;
		buf_free(&why);
		return -1;
	}
	buf_free(&why);
	if (r > 0) {
		if (s->in_off > 0) {
			buf_consume(&s->in, s->in_off);
			s->in_off = 0;
		}
		buf_append(&s->in, stream_chunk, (size_t)r);
		*got = true;
	}
	return 0;
}

/* stream_read - read what the socket has into the input buffer; 0, or
 * -1 after closing */
static int
stream_read(struct stream *s)
{
	bool got = false, raw = false;
	ssize_t r;

	s->read_wants_write = false;
	s->waiting = false;
	for (int round = 0; round < STREAM_READ_ROUNDS; round++) {
		size_t avail = stream_in_avail(s), room, want;
		bool drained;

		if (avail >= s->lim.max_input)
			break;
		room = s->lim.max_input - avail;
		if (room > sizeof(stream_chunk))
			room = sizeof(stream_chunk);
		/* Compressed input the codec holds comes first. */
		if (s->z != NULL && stream_deflate_pending(s->z)) {
			if (stream_inflate(s, room, &got) < 0)
				break;
			continue;
		}
		if (s->eof)
			break;
		/* Compressed, the codec takes what comes: it is bounded
		 * by one chunk, as it is fed only when empty. */
		want = s->z != NULL ? sizeof(stream_chunk) : room;
		if (s->phase == STREAM_TLS) {
			int e;

			ERR_clear_error();
			s->bio_errno = 0;
			r = SSL_read(s->ssl, stream_chunk, (int)want);
			if (r <= 0) {
				e = SSL_get_error(s->ssl, (int)r);
				if (e == SSL_ERROR_WANT_READ) {
					s->waiting = true;
					break;
				}
				if (e == SSL_ERROR_WANT_WRITE) {
					s->read_wants_write = true;
					break;
				}
				if (e == SSL_ERROR_ZERO_RETURN ||
				    (e == SSL_ERROR_SYSCALL &&
				    s->bio_errno == 0)) {
					ERR_clear_error();
					s->eof = true;
					break;
				}
				if (e == SSL_ERROR_SYSCALL) {
					ERR_clear_error();
					stream_close(s, "read: %s",
					    strerror(s->bio_errno));
				} else {
					stream_close_tls(s, "TLS read", e);
				}
				return -1;
			}
		} else {
			r = read(s->fd, stream_chunk, want);
			if (r < 0) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN || errno == EWOULDBLOCK) {
					s->waiting = true;
					break;
				}
				stream_close(s, "read: %m");
				return -1;
			}
			if (r == 0) {
				s->eof = true;
				break;
			}
		}
		raw = true;
		/* A short plain read drained the socket. */
		drained = s->phase != STREAM_TLS && (size_t)r < want;
		if (s->z != NULL) {
			stream_deflate_feed(s->z, stream_chunk, (size_t)r);
			if (stream_inflate(s, room, &got) < 0)
				break;
		} else {
			if (s->in_off > 0) {
				buf_consume(&s->in, s->in_off);
				s->in_off = 0;
			}
			buf_append(&s->in, stream_chunk, (size_t)r);
			got = true;
		}
		if (drained) {
			s->waiting = s->z == NULL ||
			    !stream_deflate_pending(s->z);
			break;
		}
	}
	if (got)
		s->in_dirty = true;
	/* inflated bytes are input too: a bomb is not idle */
	if ((raw || got) && s->idle_timer != NULL)
		evloop_timer_reset(s->loop, s->idle_timer, s->lim.idle_ms);
	if (s->eof && stream_in_avail(s) > 0)
		s->in_dirty = true;	/* a last look at the leftovers */
	if (s->in_error != NULL && !s->in_error_told)
		s->in_dirty = true;	/* the owner may say why it ends */
	return 0;
}

/* stream_handshake - drive the TLS handshake; -1 after closing */
static int
stream_handshake(struct stream *s)
{
	int r, e;

	ERR_clear_error();
	s->bio_errno = 0;
	r = SSL_do_handshake(s->ssl);
	if (r == 1) {
		s->phase = STREAM_TLS;
		s->hs_want = 0;
		evloop_cancel_timer(s->loop, &s->hs_timer);
		return 0;
	}
	e = SSL_get_error(s->ssl, r);
	if (e == SSL_ERROR_WANT_READ) {
		s->hs_want = EV_READ;
		return 0;
	}
	if (e == SSL_ERROR_WANT_WRITE) {
		s->hs_want = EV_WRITE;
		return 0;
	}
	stream_close_tls(s, "TLS handshake", e);
	return -1;
}

/* stream_deliver - tell the owner about new input while it takes some */
static void
stream_deliver(struct stream *s)
{
	while (s->in_dirty && !s->paused && !s->closed && !s->finishing &&
	    (s->phase == STREAM_PLAIN || s->phase == STREAM_TLS)) {
		unsigned long long before = s->consumed;

		s->in_dirty = false;
		if (stream_in_avail(s) == 0) {
			/* once, with nothing buffered: the input failed */
			if (s->in_error == NULL || s->in_error_told)
				break;
		}
		if (s->in_error != NULL)
			s->in_error_told = true;
		if (!stream_emit(s, STREAM_INPUT))
			return;
		/* The owner took something: it may take more. */
		if (s->consumed != before && stream_in_avail(s) > 0)
			s->in_dirty = true;
	}
}

/* stream_release_cb - the stream has been quiet for STREAM_RELEASE_MS:
 * if it still waits for its peer, give back every empty buffer; the next
 * read or write allocates again (OpenSSL's record buffers go at once:
 * SSL_MODE_RELEASE_BUFFERS) */
static long long
stream_release_cb(struct evloop *loop, void *ctx)
{
	struct stream *s = ctx;
	long long quiet = evloop_now_ms(loop) - s->busy_ms;

	if (quiet < STREAM_RELEASE_MS)
		return STREAM_RELEASE_MS - quiet;
	s->release_timer = NULL;	/* the loop frees it: we return -1 */
	if (!s->waiting)
		return -1;
	if (stream_in_avail(s) == 0) {
		buf_free(&s->in);
		s->in_off = 0;
	}
	if (s->out_off == s->out.len) {
		buf_free(&s->out);
		s->out_off = 0;
	}
	if (s->zout_off == s->zout.len) {
		buf_free(&s->zout);
		s->zout_off = 0;
	}
	return -1;
}

/*
 * stream_release_idle - at the end of a pass. Idle sessions are many
 * (IMAP IDLE: thousands per worker), so a stream that has waited for its
 * peer for STREAM_RELEASE_MS holds no buffer at all (stream_release_cb).
 * A busy one, whose next command comes sooner, keeps buffers of up to
 * STREAM_KEEP_IN / STREAM_KEEP_OUT between passes rather than allocate
 * per read; the timer is armed once and only moves on (busy_ms), so a
 * pass costs no timer update.
 */
static void
stream_release_idle(struct stream *s)
{
	if (stream_in_avail(s) == 0) {
		if (s->in.cap > STREAM_KEEP_IN)
			buf_free(&s->in);
		else
			buf_reset(&s->in);
		s->in_off = 0;
	}
	s->busy_ms = evloop_now_ms(s->loop);
	if (s->waiting && s->release_timer == NULL && !s->closed &&
	    !s->freed)
		s->release_timer = evloop_add_timer(s->loop,
		    STREAM_RELEASE_MS, stream_release_cb, s);
}

/* stream_process - do whatever the stream can do now; rd/wr: the fd is
 * (or may be) readable/writable */
static void
stream_process(struct stream *s, bool rd, bool wr)
{
	if (s->closed || s->freed)
		return;
	if (s->broken) {
		char *why = xstrdup(buf_cstr(&s->reason));

		stream_close(s, "%s", why);
		free(why);
		return;
	}

	/* STARTTLS: first the plaintext reply, then the handshake. */
	if (s->phase == STREAM_TLS_FLUSH) {
		if (stream_flush(s) < 0)
			return;
		if (s->plain_left == 0) {
			if (s->finishing) {
				stream_close(s, "finished");
				return;
			}
			s->phase = STREAM_HANDSHAKE;
			rd = wr = true;
		}
	}
	if (s->phase == STREAM_HANDSHAKE) {
		if (s->finishing) {
			stream_close(s, "finished");
			return;
		}
		if (stream_handshake(s) < 0)
			return;
		if (s->phase == STREAM_TLS) {
			if (!stream_emit(s, STREAM_TLS_READY) || s->closed)
				return;
			rd = wr = true;
		}
	}

	if (s->phase == STREAM_PLAIN || s->phase == STREAM_TLS) {
		if (stream_out_avail(s) > 0 && (wr || (rd &&
		    s->write_wants_read)) && stream_flush(s) < 0)
			return;
		if (s->drain_wanted && stream_out_avail(s) <= s->drain_low) {
			s->drain_wanted = false;
			if (!stream_emit(s, STREAM_DRAINED) || s->closed)
				return;
		}
		if ((rd || (wr && s->read_wants_write)) && !s->finishing &&
		    stream_read(s) < 0)
			return;
		stream_deliver(s);
		if (s->freed || s->closed)
			return;
		/* Send what the owner wrote in its callbacks. */
		if (stream_out_avail(s) > 0 && !s->write_blocked &&
		    !s->write_wants_read && stream_flush(s) < 0)
			return;
	}
	if (s->finishing && stream_out_avail(s) == 0 &&
	    (s->phase == STREAM_PLAIN || s->phase == STREAM_TLS)) {
		if (s->phase == STREAM_TLS) {
			ERR_clear_error();
			(void)SSL_shutdown(s->ssl);
			ERR_clear_error();
		}
		(void)shutdown(s->fd, SHUT_WR);
		stream_close(s, "finished");
		return;
	}
	if (s->eof && !s->paused && !s->finishing && !s->in_dirty &&
	    stream_out_avail(s) == 0 && !stream_z_more(s)) {
		if (s->in_error != NULL)
			stream_close(s, "inflate: %s", s->in_error);
		else
			stream_close(s, "eof");
		return;
	}
	/* The output drained after the owner held input back: go on. */
	if (s->in_dirty && !s->paused && !s->finishing &&
	    (s->phase == STREAM_PLAIN || s->phase == STREAM_TLS))
		stream_kick(s);
	/* A flush after the owner's writes may have drained it as well. */
	if (s->drain_wanted && stream_out_avail(s) <= s->drain_low &&
	    (s->phase == STREAM_PLAIN || s->phase == STREAM_TLS))
		stream_kick(s);
	stream_release_idle(s);
	stream_update(s);
}

/* stream_get_line - take one line from the input */
int
stream_get_line(struct stream *s, const char **line, size_t *len,
    bool *crlf_r)
{
	for (;;) {
		char *p = s->in.data + s->in_off, *lf;
		size_t avail = stream_in_avail(s), scan, n;
		bool crlf;

		if (avail == 0)
			return 0;
		if (s->skipping) {
			if ((lf = memchr(p, '\n', avail)) == NULL) {
				stream_drop(s, avail);
				return 0;
			}
			stream_drop(s, (size_t)(lf - p) + 1);
			s->skipping = false;
			continue;
		}
		scan = avail < s->lim.max_line ? avail : s->lim.max_line;
		if ((lf = memchr(p, '\n', scan)) == NULL) {
			if (avail < s->lim.max_line)
				return 0;
			/* Over-long: report once, drop up to the next LF. */
			if ((lf = memchr(p, '\n', avail)) != NULL) {
				stream_drop(s, (size_t)(lf - p) + 1);
			} else {
				stream_drop(s, avail);
				s->skipping = true;
			}
			return -1;
		}
		n = (size_t)(lf - p);
		crlf = n > 0 && p[n - 1] == '\r';
		if (crlf)
			n--;
		/* The terminator is consumed: NUL-terminate in its place. */
		p[n] = '\0';
		stream_consume(s, (size_t)(lf - p) + 1);
		*line = p;
		*len = n;
		if (crlf_r != NULL)
			*crlf_r = crlf;
		return 1;
	}
}

/* stream_peek - the buffered input bytes */
void
stream_peek(struct stream *s, const char **p, size_t *n)
{
	*p = s->in.data + s->in_off;
	*n = stream_in_avail(s);
}

/* stream_drop - drop n bytes from the front of the input */
static void
stream_drop(struct stream *s, size_t n)
{
	bool was_full;

	if (n > stream_in_avail(s))
		msg_panic("stream_consume: %zu bytes, only %zu buffered", n,
		    stream_in_avail(s));
	was_full = stream_in_avail(s) >= s->lim.max_input;
	s->in_off += n;
	s->consumed += n;
	/* Outside our callbacks, room again means reading again. */
	if (was_full && n > 0 && s->depth == 0)
		stream_update(s);
}

/* stream_consume - the owner takes n bytes from the front of the input */
void
stream_consume(struct stream *s, size_t n)
{
	stream_drop(s, n);
	s->line_end = s->consumed;
}

/* stream_eof - true once the peer has closed its side */
bool
stream_eof(const struct stream *s)
{
	return s->eof;
}

/* stream_input_bytes - input bytes received (after TLS: decrypted) */
unsigned long long
stream_input_bytes(const struct stream *s)
{
	return s->consumed + stream_in_avail(s);
}

/* stream_partial_bytes - input bytes since the owner last took some,
 * skipped ones included */
unsigned long long
stream_partial_bytes(const struct stream *s)
{
	return s->consumed + stream_in_avail(s) - s->line_end;
}

/* stream_write - queue n bytes of output */
void
stream_write(struct stream *s, const void *p, size_t n)
{
	if (s->closed || s->freed || n == 0)
		return;
	buf_append(&s->out, p, n);
	if (s->depth == 0 && !(s->write_blocked && (s->watched & EV_WRITE)))
		stream_kick(s);
}

/* stream_puts - queue a C string */
void
stream_puts(struct stream *s, const char *str)
{
	stream_write(s, str, strlen(str));
}

/* stream_printf - queue formatted output */
void
stream_printf(struct stream *s, const char *fmt, ...)
{
	va_list ap;

	if (s->closed || s->freed)
		return;
	va_start(ap, fmt);
	buf_vprintf(&s->out, fmt, ap);
	va_end(ap);
	if (s->depth == 0 && !(s->write_blocked && (s->watched & EV_WRITE)))
		stream_kick(s);
}

/* stream_vreply - format, cut and queue one reply line with CRLF */
void
stream_vreply(struct stream *s, const char *peer, const char *fmt,
    va_list ap)
{
	char text[STREAM_REPLY_MAX];
	int n;

	/* room for the text and its NUL, which CR LF then overwrite */
	n = vsnprintf(text, sizeof(text) - 1, fmt, ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(text) - 2)
		n = (int)sizeof(text) - 2;
	if (msg_verbose)
		msg_debug("[%s] > %.*s", peer, n, text);
	text[n++] = '\r';
	text[n++] = '\n';
	stream_write(s, text, (size_t)n);
}

/* stream_output_pending - bytes queued but not yet written */
size_t
stream_output_pending(const struct stream *s)
{
	return stream_out_avail(s);
}

/* stream_notify_drained - STREAM_DRAINED once output is down to low */
void
stream_notify_drained(struct stream *s, size_t low)
{
	if (s->closed || s->freed)
		return;
	s->drain_wanted = true;
	s->drain_low = low;
	if (stream_out_avail(s) <= low &&
	    (s->phase == STREAM_PLAIN || s->phase == STREAM_TLS))
		stream_kick(s);
}

/* stream_finish - flush what is queued, then close (STREAM_CLOSED) */
void
stream_finish(struct stream *s)
{
	if (s->closed || s->freed || s->finishing)
		return;
	s->finishing = true;
	stream_kick(s);
}

/* stream_pause - stop or resume STREAM_INPUT delivery */
void
stream_pause(struct stream *s, bool paused)
{
	if (s->paused == paused || s->closed || s->freed)
		return;
	s->paused = paused;
	if (!paused) {
		if (stream_in_avail(s) > 0)
			s->in_dirty = true;
		if (s->in_dirty || s->eof)
			stream_kick(s);
	}
}

/* stream_idle_cb / stream_total_cb - a deadline passed */
static long long
stream_deadline(struct stream *s, struct ev_timer **tp)
{
	struct ev_timer *t = *tp;
	long long grace;

	*tp = NULL;	/* if we return -1, the loop frees it */
	if (s->closed || s->freed)
		return -1;
	s->depth++;
	if (s->timeout_fired) {
		/* The owner had its chance: the second deadline closes. */
		stream_close(s, "timeout");
	} else {
		s->timeout_fired = true;
		if (stream_emit(s, STREAM_TIMEOUT) && !s->closed) {
			if (!s->finishing)
				stream_close(s, "timeout");
			else
				stream_process(s, false, true);
		}
	}
	s->depth--;
	if (s->freed) {
		if (s->depth == 0)
			free(s);
		return -1;
	}
	if (s->closed || *tp != NULL)
		return -1;	/* *tp: the owner set a new deadline */
	/* Still flushing after stream_finish: allow a grace period. */
	grace = s->lim.idle_ms > 0 && s->lim.idle_ms < STREAM_GRACE_MS ?
	    s->lim.idle_ms : STREAM_GRACE_MS;
	*tp = t;
	return grace;
}

static long long
stream_idle_cb(struct evloop *loop, void *ctx)
{
	struct stream *s = ctx;

	return stream_deadline(s, &s->idle_timer);
}

static long long
stream_total_cb(struct evloop *loop, void *ctx)
{
	struct stream *s = ctx;

	return stream_deadline(s, &s->total_timer);
}

/* stream_set_idle_timeout - change the idle deadline (0: none) */
void
stream_set_idle_timeout(struct stream *s, long long ms)
{
	if (s->freed)
		return;
	s->lim.idle_ms = ms;
	if (ms <= 0 || s->closed) {
		evloop_cancel_timer(s->loop, &s->idle_timer);
		return;
	}
	if (s->idle_timer != NULL)
		evloop_timer_reset(s->loop, s->idle_timer, ms);
	else
		s->idle_timer = evloop_add_timer(s->loop, ms, stream_idle_cb,
		    s);
}

/* stream_set_total_timeout - change the total deadline (0: none),
 * counted from stream_new */
void
stream_set_total_timeout(struct stream *s, long long ms)
{
	long long left;

	if (s->freed)
		return;
	s->lim.total_ms = ms;
	if (ms <= 0 || s->closed) {
		evloop_cancel_timer(s->loop, &s->total_timer);
		return;
	}
	left = s->started_ms + ms - evloop_now_ms(s->loop);
	if (left < 0)
		left = 0;
	if (s->total_timer != NULL)
		evloop_timer_reset(s->loop, s->total_timer, left);
	else
		s->total_timer = evloop_add_timer(s->loop, left,
		    stream_total_cb, s);
}

/* stream_set_handshake_timeout - the deadline of a later handshake */
void
stream_set_handshake_timeout(struct stream *s, long long ms)
{
	s->hs_ms = ms > 0 ? ms : 0;
}

/* stream_handshake_cb - the TLS handshake took too long: close (there
 * is nothing the owner could say in the middle of it) */
static long long
stream_handshake_cb(struct evloop *loop, void *ctx)
{
	struct stream *s = ctx;

	(void)loop;
	s->hs_timer = NULL;	/* we return -1: the loop frees it */
	if (s->closed || s->freed)
		return -1;
	s->depth++;
	stream_close(s, "TLS handshake: timed out after %lld ms", s->hs_ms);
	s->depth--;
	if (s->freed && s->depth == 0)
		free(s);
	return -1;
}

/* stream_starttls - discard buffered input and start TLS */
void
stream_starttls(struct stream *s, SSL_CTX *ctx, bool server,
    const char *sni)
{
	if (s->closed || s->freed)
		return;
	if (s->phase != STREAM_PLAIN)
		msg_panic("stream_starttls: TLS already started");
	if (s->z != NULL)
		msg_panic("stream_starttls: the stream is compressed");
	/* Plaintext that came behind STARTTLS must never count as input. */
	s->consumed += stream_in_avail(s);
	s->line_end = s->consumed;
	buf_reset(&s->in);
	s->in_off = 0;
	s->in_dirty = false;
	s->skipping = false;

	ERR_clear_error();
	if ((s->ssl = SSL_new(ctx)) == NULL ||
	    (s->bio = stream_bio_new(s)) == NULL) {
		struct buf why = BUF_INIT;

		tls_error_text(&why);
		stream_break(s, "TLS handshake: %s", buf_cstr(&why));
		buf_free(&why);
		return;
	}
	SSL_set_bio(s->ssl, s->bio, s->bio);
	SSL_set_mode(s->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	/* A peer that closes without close_notify is just EOF for us. */
	SSL_set_options(s->ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
	if (server) {
		SSL_set_accept_state(s->ssl);
	} else {
		SSL_set_connect_state(s->ssl);
		if (sni != NULL && *sni != '\0') {
			(void)SSL_set_tlsext_host_name(s->ssl, sni);
			(void)SSL_set1_host(s->ssl, sni);
		}
	}
	s->phase = STREAM_TLS_FLUSH;
	s->plain_left = stream_out_avail(s);
	if (s->hs_ms > 0)
		s->hs_timer = evloop_add_timer(s->loop, s->hs_ms,
		    stream_handshake_cb, s);
	stream_kick(s);
}

/* stream_is_tls - true after a completed handshake */
bool
stream_is_tls(const struct stream *s)
{
	return s->phase == STREAM_TLS;
}

/* stream_tls_info - append protocol, cipher and bits */
void
stream_tls_info(const struct stream *s, struct buf *out)
{
	const SSL_CIPHER *c;
	int alg_bits = 0, bits;

	if (s->ssl == NULL || s->phase != STREAM_TLS)
		return;
	c = SSL_get_current_cipher(s->ssl);
	bits = c != NULL ? SSL_CIPHER_get_bits(c, &alg_bits) : 0;
	buf_printf(out, "%s with cipher %s (%d/%d bits)",
	    SSL_get_version(s->ssl), c != NULL ? SSL_CIPHER_get_name(c) :
	    "unknown", bits, alg_bits);
}

/* stream_ssl - the SSL object, or NULL */
SSL *
stream_ssl(const struct stream *s)
{
	return s->ssl;
}

/* stream_buffer_memory - capacity of the input and output buffers */
size_t
stream_buffer_memory(const struct stream *s)
{
	return s->in.cap + s->out.cap + s->zout.cap;
}

/* stream_close_reason - why STREAM_CLOSED ("" while open) */
const char *
stream_close_reason(const struct stream *s)
{
	return s->closed ? buf_cstr(&s->reason) : "";
}

/* stream_fd - the descriptor */
int
stream_fd(const struct stream *s)
{
	return s->fd;
}

/* stream_compress_start - compress both directions from here on */
void
stream_compress_start(struct stream *s)
{
	if (s->closed || s->freed)
		return;
	if (s->z != NULL)
		msg_panic("stream_compress_start: already compressed");
	if (s->phase != STREAM_PLAIN && s->phase != STREAM_TLS)
		msg_panic("stream_compress_start: in a TLS handshake");
	s->z = stream_deflate_new();
	/* The reply that accepted compression still goes uncompressed. */
	s->z_plain_left = stream_plain_avail(s);
	/* What the peer sent behind the command is compressed already. */
	stream_deflate_feed(s->z, s->in.data + s->in_off, stream_in_avail(s));
	buf_free(&s->in);
	s->in_off = 0;
	s->in_dirty = false;
	s->skipping = false;
	stream_kick(s);
}

/* stream_is_compressed - true after stream_compress_start */
bool
stream_is_compressed(const struct stream *s)
{
	return s->z != NULL;
}

/* stream_input_error - why the compressed input failed, or NULL */
const char *
stream_input_error(const struct stream *s)
{
	return s->in_error;
}

/* stream_compress_memory - bytes the compression state holds */
size_t
stream_compress_memory(const struct stream *s)
{
	if (s->z == NULL)
		return 0;
	return stream_deflate_memory(s->z) + s->zout.cap;
}
