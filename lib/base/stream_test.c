/*
 * stream_test - unit tests for stream.c and tls.c: the line reader at
 * every chunk size, pause and memory bounds, EOF with pipelined input,
 * deadlines, freeing from callbacks, write errors, STARTTLS (with
 * plaintext injection), TLS failures and bulk transfers over TLS.
 *
 * Every test runs its own evloop over a socketpair, bounded by a deadline
 * timer. The TLS certificate is made at start with the OpenSSL API.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "base/buf.h"
#include "base/evloop.h"
#include "base/stream.h"
#include "base/test.h"
#include "base/tls.h"

static char st_dir[] = "/tmp/herald-stream-test.XXXXXX";
static char st_cert[256], st_key[256], st_key2[256];

/* ---- loop helpers ---- */

struct st_deadline {
	struct ev_timer *t;
	bool expired;
};

/* st_deadline_cb - the test ran too long: stop the loop */
static long long
st_deadline_cb(struct evloop *loop, void *ctx)
{
	struct st_deadline *d = ctx;

	d->t = NULL;
	d->expired = true;
	evloop_stop(loop);
	return -1;
}

/* st_run - run loop until evloop_stop or ms pass; false on the deadline */
static bool
st_run(struct evloop *loop, long long ms)
{
	struct st_deadline d = {NULL, false};

	d.t = evloop_add_timer(loop, ms, st_deadline_cb, &d);
	evloop_run(loop);
	evloop_cancel_timer(loop, &d.t);
	return !d.expired;
}

/* st_pair - a socketpair, both ends close-on-exec */
static int
st_pair(int sp[2])
{
	return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp);
}

/* st_drain - read everything fd has now (non-blocking) into out */
static void
st_drain(int fd, struct buf *out)
{
	char tmp[8192];
	ssize_t n;

	(void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	while ((n = read(fd, tmp, sizeof(tmp))) > 0)
		buf_append(out, tmp, (size_t)n);
}

/* ---- a recording owner ---- */

struct st_rec {
	struct evloop *loop;
	struct stream *s;
	struct buf log;		/* "line|crlf" per line, events */
	int one_per_call;	/* take at most one line per INPUT */
	int inputs;		/* STREAM_INPUT count */
	int closed;		/* STREAM_CLOSED count */
	int timeouts;
	int after_free;		/* callbacks after the owner freed */
	bool freed;
	bool free_on_line;	/* stream_free on the first line */
	bool free_on_timeout;
	bool finish_on_timeout;
	bool reply;		/* write "ok LINE\r\n" per line */
	bool pause_after_first;	/* pause after the first line */
	bool pause_before;	/* pause at the first input, take nothing */
	bool log_eof;		/* log what is left at the first EOF */
	bool eof_seen;
	bool paused_close;	/* CLOSED came while paused */
	char reason[256];
	long long t_timeout;	/* when STREAM_TIMEOUT came */
	struct ev_timer *resume;	/* st_resume_cb */
};

/* st_rec_fn - record events and lines */
static void
st_rec_fn(struct stream *s, enum stream_event ev, void *ctx)
{
	struct st_rec *r = ctx;
	const char *line;
	size_t len;
	bool crlf;
	int got;

	if (r->freed) {
		r->after_free++;
		return;
	}
	switch (ev) {
	case STREAM_INPUT:
		r->inputs++;
		if (r->pause_before) {
			r->pause_before = false;
			stream_pause(s, true);
			break;
		}
		while ((got = stream_get_line(s, &line, &len, &crlf)) != 0) {
			if (got < 0) {
				buf_puts(&r->log, "-1\n");
			} else {
				/* Lines are NUL-terminated in place. */
				if (line[len] != '\0')
					buf_puts(&r->log, "(no NUL)");
				buf_append(&r->log, line, len);
				buf_puts(&r->log, crlf ? "|crlf\n" : "|lf\n");
				if (r->reply)
					stream_printf(s, "ok %.*s\r\n",
					    (int)len, line);
			}
			if (r->free_on_line) {
				r->freed = true;
				stream_free(&r->s);
				return;
			}
			if (r->pause_after_first) {
				r->pause_after_first = false;
				stream_pause(s, true);
				break;
			}
			if (r->one_per_call)
				break;
		}
		if (r->log_eof && stream_eof(s) && !r->eof_seen) {
			const char *p;
			size_t n;

			r->eof_seen = true;
			stream_peek(s, &p, &n);
			buf_printf(&r->log, "eof rest=%.*s\n", (int)n, p);
		}
		break;
	case STREAM_DRAINED:
		break;
	case STREAM_TIMEOUT:
		r->timeouts++;
		r->t_timeout = evloop_now_ms(r->loop);
		buf_puts(&r->log, "timeout\n");
		if (r->free_on_timeout) {
			r->freed = true;
			stream_free(&r->s);
			evloop_stop(r->loop);
			return;
		}
		if (r->finish_on_timeout) {
			stream_puts(s, "421 timeout\r\n");
			stream_finish(s);
		}
		break;
	case STREAM_CLOSED: {
		const char *p;
		size_t n;

		r->closed++;
		snprintf(r->reason, sizeof(r->reason), "%s",
		    stream_close_reason(s));
		stream_peek(s, &p, &n);
		buf_printf(&r->log, "closed %s", r->reason);
		if (n > 0)
			buf_printf(&r->log, " rest=%.*s", (int)n, p);
		buf_puts(&r->log, "\n");
		r->freed = true;
		stream_free(&r->s);
		evloop_stop(r->loop);
		break;
	}
	case STREAM_TLS_READY:
		buf_puts(&r->log, "tls\n");
		break;
	}
}

/* ---- a writer feeding a peer fd in chunks, one chunk per iteration ---- */

struct st_writer {
	int fd;
	const char *data;
	size_t len, off, chunk;
	bool shut;		/* shutdown(SHUT_WR) at the end */
	struct ev_timer *t;
};

/* st_writer_cb - write the next chunk */
static long long
st_writer_cb(struct evloop *loop, void *ctx)
{
	struct st_writer *w = ctx;
	size_t n = w->len - w->off;
	ssize_t r;

	if (n > w->chunk)
		n = w->chunk;
	if (n > 0) {
		r = send(w->fd, w->data + w->off, n, MSG_NOSIGNAL);
		if (r > 0)
			w->off += (size_t)r;
	}
	if (w->off < w->len)
		return 0;
	if (w->shut)
		(void)shutdown(w->fd, SHUT_WR);
	w->t = NULL;
	return -1;
}

/* ---- line reader at every chunk size ---- */

static void
test_lines_every_chunk(void)
{
	struct buf input = BUF_INIT, want = BUF_INIT, x = BUF_INIT;
	const struct stream_limits lim = {32, 64, 0, 0};

	buf_puts(&input, "HELO a\r\nbare\n\r\n");
	for (int i = 0; i < 100; i++)
		buf_putc(&input, 'X');
	buf_puts(&input, "\r\nNEXT\r\n");
	for (int i = 0; i < 31; i++)
		buf_putc(&x, 'Y');
	buf_printf(&input, "%s\n", buf_cstr(&x));	/* 32 bytes: fits */
	buf_printf(&want, "HELO a|crlf\nbare|lf\n|crlf\n-1\nNEXT|crlf\n"
	    "%s|lf\n", buf_cstr(&x));
	buf_reset(&x);
	for (int i = 0; i < 31; i++)
		buf_putc(&x, 'Z');
	buf_printf(&input, "%s\r\n", buf_cstr(&x));	/* 33 bytes: long */
	buf_puts(&input, "a\rb\r\nlast\r\npartial");
	buf_puts(&want, "-1\na\rb|crlf\nlast|crlf\neof rest=partial\n"
	    "closed eof rest=partial\n");

	for (size_t chunk = 1; chunk <= input.len; chunk++) {
		struct evloop *loop = evloop_new();
		struct st_rec r;
		struct st_writer w;
		int sp[2];

		memset(&r, 0, sizeof(r));
		buf_init(&r.log);
		r.loop = loop;
		r.one_per_call = chunk % 2;
		r.log_eof = true;
		T_ASSERT(st_pair(sp) == 0);
		r.s = stream_new(loop, sp[0], &lim, st_rec_fn, &r);
		memset(&w, 0, sizeof(w));
		w.fd = sp[1];
		w.data = input.data;
		w.len = input.len;
		w.chunk = chunk;
		w.shut = true;
		w.t = evloop_add_timer(loop, 0, st_writer_cb, &w);
		T_ASSERT(st_run(loop, 5000));
		evloop_cancel_timer(loop, &w.t);
		if (strcmp(buf_cstr(&r.log), buf_cstr(&want)) != 0)
			fprintf(stderr, "  chunk size %zu\n", chunk);
		T_EQ_STR(buf_cstr(&r.log), buf_cstr(&want));
		T_EQ_INT(r.closed, 1);
		T_EQ_INT(r.after_free, 0);
		stream_free(&r.s);
		close(sp[1]);
		buf_free(&r.log);
		evloop_free(&loop);
	}
	buf_free(&input);
	buf_free(&want);
	buf_free(&x);
}

/* ---- pause bounds memory ---- */

#define ST_BIG (10 * 1024 * 1024)

struct st_bulk {
	struct evloop *loop;
	struct stream *s;
	size_t max_input;
	size_t got, max_avail;
	size_t sent;
	int inputs;
	bool bad_data;
	bool closed;
	char reason[128];
	struct ev_timer *resume;
	int fd;			/* the peer */
	struct ev_timer *writer;
};

/* st_bulk_resume_cb - resume after a pause */
static long long
st_bulk_resume_cb(struct evloop *loop, void *ctx)
{
	struct st_bulk *b = ctx;
	const char *p;
	size_t n;

	b->resume = NULL;
	stream_peek(b->s, &p, &n);
	if (n > b->max_avail)
		b->max_avail = n;
	stream_pause(b->s, false);
	return -1;
}

/* st_bulk_fn - check and drop input, pausing now and then */
static void
st_bulk_fn(struct stream *s, enum stream_event ev, void *ctx)
{
	struct st_bulk *b = ctx;
	const char *p;
	size_t n;

	if (ev == STREAM_CLOSED) {
		b->closed = true;
		snprintf(b->reason, sizeof(b->reason), "%s",
		    stream_close_reason(s));
		stream_free(&b->s);
		evloop_stop(b->loop);
		return;
	}
	if (ev != STREAM_INPUT)
		return;
	b->inputs++;
	stream_peek(s, &p, &n);
	if (n > b->max_avail)
		b->max_avail = n;
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)p[i] != (b->got + i) % 251) {
			b->bad_data = true;
			break;
		}
	}
	b->got += n;
	stream_consume(s, n);
	if (b->inputs == 1 || b->inputs % 64 == 0) {
		stream_pause(s, true);
		b->resume = evloop_add_timer(b->loop, b->inputs == 1 ? 100 : 1,
		    st_bulk_resume_cb, b);
	}
}

/* st_bulk_writer_cb - write the pattern as fast as the socket takes it */
static long long
st_bulk_writer_cb(struct evloop *loop, void *ctx)
{
	struct st_bulk *b = ctx;
	char tmp[65536];

	while (b->sent < ST_BIG) {
		size_t n = ST_BIG - b->sent;
		ssize_t r;

		if (n > sizeof(tmp))
			n = sizeof(tmp);
		for (size_t i = 0; i < n; i++)
			tmp[i] = (char)((b->sent + i) % 251);
		r = send(b->fd, tmp, n, MSG_NOSIGNAL);
		if (r <= 0)
			return 1;	/* full: try again in 1 ms */
		b->sent += (size_t)r;
	}
	(void)shutdown(b->fd, SHUT_WR);
	b->writer = NULL;
	return -1;
}

static void
test_pause_bounds_memory(void)
{
	struct evloop *loop = evloop_new();
	const struct stream_limits lim = {1024, 8192, 0, 0};
	struct st_bulk b;
	int sp[2];

	memset(&b, 0, sizeof(b));
	b.loop = loop;
	b.max_input = lim.max_input;
	T_ASSERT(st_pair(sp) == 0);
	b.fd = sp[1];
	(void)fcntl(sp[1], F_SETFL, O_NONBLOCK);
	b.s = stream_new(loop, sp[0], &lim, st_bulk_fn, &b);
	b.writer = evloop_add_timer(loop, 0, st_bulk_writer_cb, &b);
	T_ASSERT(st_run(loop, 20000));
	evloop_cancel_timer(loop, &b.writer);
	evloop_cancel_timer(loop, &b.resume);
	stream_free(&b.s);
	close(sp[1]);
	evloop_free(&loop);
	T_ASSERT(b.closed);
	T_EQ_STR(b.reason, "eof");
	T_EQ_INT(b.got, ST_BIG);
	T_ASSERT(!b.bad_data);
	T_ASSERT(b.max_avail <= lim.max_input);
	/* The pause let the buffer fill to the bound, no further. */
	T_ASSERT(b.max_avail >= lim.max_line);
}

/* ---- EOF with pipelined input ---- */

/* st_resume_cb - resume a paused st_rec stream */
static long long
st_resume_cb(struct evloop *loop, void *ctx)
{
	struct st_rec *r = ctx;

	r->resume = NULL;
	if (r->closed)
		r->paused_close = true;
	if (r->s != NULL)
		stream_pause(r->s, false);
	return -1;
}

static void
test_eof_pipelined(void)
{
	const struct stream_limits lim = {256, 1024, 0, 0};

	for (int variant = 0; variant < 4; variant++) {
		struct evloop *loop = evloop_new();
		struct buf peer = BUF_INIT;
		struct st_rec r;
		int sp[2];

		memset(&r, 0, sizeof(r));
		buf_init(&r.log);
		r.loop = loop;
		r.reply = true;
		r.one_per_call = variant == 1;
		r.pause_after_first = variant == 2;
		r.pause_before = variant == 3;
		T_ASSERT(st_pair(sp) == 0);
		T_EQ_INT(write(sp[1], "A\r\nB\r\nC\r\n", 9), 9);
		T_ASSERT(shutdown(sp[1], SHUT_WR) == 0);
		r.s = stream_new(loop, sp[0], &lim, st_rec_fn, &r);
		if (variant >= 2)
			r.resume = evloop_add_timer(loop, 50, st_resume_cb, &r);
		T_ASSERT(st_run(loop, 5000));
		evloop_cancel_timer(loop, &r.resume);
		stream_free(&r.s);
		st_drain(sp[1], &peer);
		close(sp[1]);
		evloop_free(&loop);
		T_EQ_STR(buf_cstr(&r.log),
		    "A|crlf\nB|crlf\nC|crlf\nclosed eof\n");
		T_EQ_STR(buf_cstr(&peer), "ok A\r\nok B\r\nok C\r\n");
		T_ASSERT(!r.paused_close);
		buf_free(&peer);
		buf_free(&r.log);
	}
}

/* ---- deadlines ---- */

static void
test_idle_timeout(void)
{
	const struct stream_limits lim = {256, 1024, 60, 0};

	for (int variant = 0; variant < 4; variant++) {
		struct evloop *loop = evloop_new();
		struct buf peer = BUF_INIT;
		struct st_rec r;
		long long t0;
		int sp[2];

		memset(&r, 0, sizeof(r));
		buf_init(&r.log);
		r.loop = loop;
		r.finish_on_timeout = variant == 1;
		r.free_on_timeout = variant == 2;
		T_ASSERT(st_pair(sp) == 0);
		t0 = evloop_now_ms(loop);
		r.s = stream_new(loop, sp[0], &lim, st_rec_fn, &r);
		T_ASSERT(st_run(loop, 5000));
		stream_free(&r.s);
		st_drain(sp[1], &peer);
		close(sp[1]);
		evloop_free(&loop);
		T_EQ_INT(r.timeouts, 1);
		T_ASSERT(r.t_timeout - t0 >= 60);
		T_EQ_INT(r.after_free, 0);
		switch (variant) {
		case 0:
			T_EQ_STR(buf_cstr(&r.log), "timeout\nclosed timeout\n");
			T_EQ_STR(buf_cstr(&peer), "");
			break;
		case 1:
			T_EQ_STR(buf_cstr(&r.log),
			    "timeout\nclosed finished\n");
			T_EQ_STR(buf_cstr(&peer), "421 timeout\r\n");
			break;
		case 2:
			T_EQ_STR(buf_cstr(&r.log), "timeout\n");
			break;
		}
		buf_free(&peer);
		buf_free(&r.log);
	}
}

struct st_ticker {
	int fd;
	int left;
	long long last;
	struct evloop *loop;
	struct ev_timer *t;
};

/* st_ticker_cb - send one line every 25 ms */
static long long
st_ticker_cb(struct evloop *loop, void *ctx)
{
	struct st_ticker *k = ctx;

	/* the stream may have closed its end (the total deadline) in this
	 * loop pass: the loop frees the timer when we return -1, so the
	 * test must not cancel it afterwards */
	if (send(k->fd, "x\r\n", 3, MSG_NOSIGNAL) != 3) {
		k->t = NULL;
		return -1;
	}
	k->last = evloop_now_ms(loop);
	if (--k->left == 0) {
		k->t = NULL;
		return -1;
	}
	return 25;
}

static void
test_idle_reset_and_total(void)
{
	/* Input every 25 ms keeps a 200 ms idle deadline away. */
	for (int variant = 0; variant < 2; variant++) {
		struct stream_limits lim = {256, 1024, 200, 0};
		struct evloop *loop = evloop_new();
		struct st_ticker k;
		struct st_rec r;
		long long t0;
		int sp[2];

		if (variant == 1) {
			lim.idle_ms = 0;
			lim.total_ms = 120;
		}
		memset(&r, 0, sizeof(r));
		buf_init(&r.log);
		r.loop = loop;
		T_ASSERT(st_pair(sp) == 0);
		memset(&k, 0, sizeof(k));
		k.fd = sp[1];
		k.left = variant == 0 ? 8 : 1000;
		k.t = evloop_add_timer(loop, 0, st_ticker_cb, &k);
		t0 = evloop_now_ms(loop);
		r.s = stream_new(loop, sp[0], &lim, st_rec_fn, &r);
		T_ASSERT(st_run(loop, 5000));
		evloop_cancel_timer(loop, &k.t);
		stream_free(&r.s);
		close(sp[1]);
		evloop_free(&loop);
		T_EQ_INT(r.timeouts, 1);
		T_EQ_STR(r.reason, "timeout");
		if (variant == 0) {
			/* Not before 200 ms after the last line. */
			T_ASSERT(k.left == 0);
			T_ASSERT(r.t_timeout - k.last >= 200);
		} else {
			/* The total deadline ignores the input. */
			T_ASSERT(r.t_timeout - t0 >= 120);
			T_ASSERT(r.t_timeout - t0 < 1000);
			T_ASSERT(k.left > 0);
		}
		buf_free(&r.log);
	}
}

/* ---- stream_free inside a callback ---- */

static void
test_free_in_callback(void)
{
	const struct stream_limits lim = {256, 1024, 0, 0};
	struct evloop *loop = evloop_new();
	struct st_rec r;
	int sp[2];

	memset(&r, 0, sizeof(r));
	buf_init(&r.log);
	r.loop = loop;
	r.free_on_line = true;
	r.reply = true;
	T_ASSERT(st_pair(sp) == 0);
	T_EQ_INT(write(sp[1], "ONE\r\nTWO\r\nTHREE\r\n", 17), 17);
	T_ASSERT(shutdown(sp[1], SHUT_WR) == 0);
	r.s = stream_new(loop, sp[0], &lim, st_rec_fn, &r);
	/* Nothing stops the loop but the deadline: run it briefly. */
	(void)st_run(loop, 100);
	T_ASSERT(r.s == NULL);
	T_EQ_STR(buf_cstr(&r.log), "ONE|crlf\n");
	T_EQ_INT(r.after_free, 0);
	T_EQ_INT(r.closed, 0);
	{
		char c;

		/* The stream closed its fd: the peer sees EOF. */
		T_EQ_INT(read(sp[1], &c, 1), 0);
	}
	close(sp[1]);
	evloop_free(&loop);
	buf_free(&r.log);
}

/* ---- write errors and finish ---- */

static void
test_write_error(void)
{
	const struct stream_limits lim = {256, 1024, 0, 0};
	struct evloop *loop = evloop_new();
	struct st_rec r;
	char big[100000];
	int sp[2];

	memset(&r, 0, sizeof(r));
	buf_init(&r.log);
	memset(big, 'x', sizeof(big));
	r.loop = loop;
	T_ASSERT(st_pair(sp) == 0);
	r.s = stream_new(loop, sp[0], &lim, st_rec_fn, &r);
	close(sp[1]);
	/* SIGPIPE is not ignored here: a plain write() would kill us. */
	stream_write(r.s, big, sizeof(big));
	T_ASSERT(st_run(loop, 5000));
	evloop_free(&loop);
	T_EQ_INT(r.closed, 1);
	if (strcmp(r.reason, "write: Broken pipe") != 0 &&
	    strcmp(r.reason, "write: Connection reset by peer") != 0)
		T_EQ_STR(r.reason, "write: Broken pipe");
	buf_free(&r.log);
}

struct st_sink {
	int fd;
	struct buf got;
	bool eof;
	struct ev_timer *t;
};

/* st_sink_cb - read what the peer sends, slowly */
static long long
st_sink_cb(struct evloop *loop, void *ctx)
{
	struct st_sink *k = ctx;
	char tmp[4096];
	ssize_t n = read(k->fd, tmp, sizeof(tmp));

	if (n > 0)
		buf_append(&k->got, tmp, (size_t)n);
	if (n == 0) {
		k->eof = true;
		k->t = NULL;
		return -1;
	}
	return 0;
}

/* st_finish_fn - on the first input, queue 1 MB and finish */
static void
st_finish_fn(struct stream *s, enum stream_event ev, void *ctx)
{
	struct st_rec *r = ctx;

	if (ev == STREAM_INPUT && r->inputs++ == 0) {
		for (int i = 0; i < 1024; i++)
			stream_printf(s, "%04d%01020d\r\n", i, 0);
		stream_finish(s);
		stream_puts(s, "late\r\n");	/* still part of the flush */
		return;
	}
	if (ev == STREAM_CLOSED) {
		r->closed++;
		snprintf(r->reason, sizeof(r->reason), "%s",
		    stream_close_reason(s));
		stream_free(&r->s);
	}
}

static void
test_finish_flushes(void)
{
	const struct stream_limits lim = {256, 1024, 0, 0};
	struct evloop *loop = evloop_new();
	struct st_sink k;
	struct st_rec r;
	int sp[2];

	memset(&r, 0, sizeof(r));
	buf_init(&r.log);
	memset(&k, 0, sizeof(k));
	r.loop = loop;
	buf_init(&k.got);
	T_ASSERT(st_pair(sp) == 0);
	k.fd = sp[1];
	(void)fcntl(sp[1], F_SETFL, O_NONBLOCK);
	T_EQ_INT(write(sp[1], "QUIT\r\n", 6), 6);
	r.s = stream_new(loop, sp[0], &lim, st_finish_fn, &r);
	k.t = evloop_add_timer(loop, 0, st_sink_cb, &k);
	for (int i = 0; i < 500 && !k.eof; i++)
		(void)st_run(loop, 10);
	evloop_cancel_timer(loop, &k.t);
	stream_free(&r.s);
	close(sp[1]);
	evloop_free(&loop);
	T_ASSERT(k.eof);
	T_EQ_INT(r.closed, 1);
	T_EQ_STR(r.reason, "finished");
	T_EQ_INT(k.got.len, 1024 * 1026 + 6);
	T_ASSERT(memcmp(k.got.data + 1023 * 1026, "1023000", 7) == 0);
	T_ASSERT(memcmp(k.got.data + 1024 * 1026, "late\r\n", 6) == 0);
	buf_free(&k.got);
}

/* ---- STREAM_DRAINED: once, when the output is down to the mark ---- */

struct st_dr {
	struct stream *s;
	int drained;		/* STREAM_DRAINED count */
	size_t pending_at;	/* output pending when it came */
	int fd;			/* the slow peer */
	struct buf got;
	struct ev_timer *reader;
};

static void
st_dr_fn(struct stream *s, enum stream_event ev, void *ctx)
{
	struct st_dr *d = ctx;

	if (ev == STREAM_DRAINED) {
		d->drained++;
		d->pending_at = stream_output_pending(s);
	}
}

/* st_dr_read - the peer reads 8 KB per millisecond */
static long long
st_dr_read(struct evloop *loop, void *ctx)
{
	struct st_dr *d = ctx;
	char tmp[8192];
	ssize_t n = read(d->fd, tmp, sizeof(tmp));

	if (n > 0)
		buf_append(&d->got, tmp, (size_t)n);
	return 1;
}

static void
test_drained(void)
{
	const struct stream_limits lim = {256, 1024, 0, 0};
	struct evloop *loop = evloop_new();
	char *block = malloc(1024 * 1024);
	struct st_dr d;
	int sp[2];

	memset(&d, 0, sizeof(d));
	buf_init(&d.got);
	T_ASSERT(block != NULL && st_pair(sp) == 0);
	memset(block, 'z', 1024 * 1024);
	(void)fcntl(sp[1], F_SETFL, O_NONBLOCK);
	d.fd = sp[1];
	d.s = stream_new(loop, sp[0], &lim, st_dr_fn, &d);
	stream_write(d.s, block, 1024 * 1024);
	stream_notify_drained(d.s, 4096);
	T_EQ_INT(d.drained, 0);
	d.reader = evloop_add_timer(loop, 1, st_dr_read, &d);
	for (int i = 0; i < 1000 && d.drained == 0; i++)
		(void)st_run(loop, 10);
	T_EQ_INT(d.drained, 1);
	T_ASSERT(d.pending_at <= 4096);
	/* asked when already drained: once, from the loop, not at once */
	for (int i = 0; i < 1000 && d.got.len < 1024 * 1024; i++)
		(void)st_run(loop, 10);
	T_EQ_INT(d.got.len, 1024 * 1024);
	stream_notify_drained(d.s, 0);
	T_EQ_INT(d.drained, 1);
	(void)st_run(loop, 20);
	T_EQ_INT(d.drained, 2);
	(void)st_run(loop, 20);
	T_EQ_INT(d.drained, 2);
	evloop_cancel_timer(loop, &d.reader);
	stream_free(&d.s);
	close(sp[1]);
	evloop_free(&loop);
	buf_free(&d.got);
	free(block);
}

/* ---- stream_vreply: one CRLF line, cut at STREAM_REPLY_MAX ---- */

static void
st_ignore_fn(struct stream *s, enum stream_event ev, void *ctx)
{
	(void)s;
	(void)ev;
	(void)ctx;
}

static void st_reply(struct stream *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
st_reply(struct stream *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	stream_vreply(s, "peer", fmt, ap);
	va_end(ap);
}

static void
test_reply_lines(void)
{
	const struct stream_limits lim = {256, 1024, 0, 0};
	struct evloop *loop = evloop_new();
	struct buf got = BUF_INIT;
	char *big = malloc(5000);
	struct stream *s;
	int sp[2];

	T_ASSERT(big != NULL && st_pair(sp) == 0);
	memset(big, 'x', 4999);
	big[4999] = '\0';
	s = stream_new(loop, sp[0], &lim, st_ignore_fn, NULL);
	st_reply(s, "+OK %d messages", 5);
	st_reply(s, "%s", big);
	st_reply(s, "%s", "");
	for (int i = 0; i < 20 && stream_output_pending(s) > 0; i++)
		(void)st_run(loop, 10);
	st_drain(sp[1], &got);
	stream_free(&s);
	close(sp[1]);
	evloop_free(&loop);
	T_EQ_INT(got.len, 16 + STREAM_REPLY_MAX + 2);
	T_ASSERT(memcmp(got.data, "+OK 5 messages\r\n", 16) == 0);
	/* the long one is cut so that it ends in CRLF within the bound */
	T_ASSERT(memcmp(got.data + 16 + STREAM_REPLY_MAX - 3, "x\r\n", 3) ==
	    0);
	T_ASSERT(got.data[16 + STREAM_REPLY_MAX - 4] == 'x');
	T_ASSERT(memcmp(got.data + 16 + STREAM_REPLY_MAX, "\r\n", 2) == 0);
	free(big);
	buf_free(&got);
}

/* ---- output back-pressure: input held back until output drains ---- */

#define ST_BP_LINES 40
#define ST_BP_REPLY 50000
#define ST_BP_HOLD 65536

struct st_bp {
	struct evloop *loop;
	struct stream *s;
	int lines;
	size_t max_pending;
	int fd;			/* the slow peer */
	struct buf got;
	struct ev_timer *reader;
	char reason[128];
};

/* st_bp_fn - a big reply per line, no input while replies pile up */
static void
st_bp_fn(struct stream *s, enum stream_event ev, void *ctx)
{
	struct st_bp *b = ctx;
	const char *line;
	size_t len;
	char reply[ST_BP_REPLY];

	if (ev == STREAM_CLOSED) {
		snprintf(b->reason, sizeof(b->reason), "%s",
		    stream_close_reason(s));
		stream_free(&b->s);
		return;
	}
	if (ev != STREAM_INPUT)
		return;
	while (stream_output_pending(s) < ST_BP_HOLD &&
	    stream_get_line(s, &line, &len, NULL) > 0) {
		memset(reply, 'r', sizeof(reply));
		memcpy(reply, line, len < 8 ? len : 8);
		reply[sizeof(reply) - 1] = '\n';
		stream_write(s, reply, sizeof(reply));
		b->lines++;
		if (stream_output_pending(s) > b->max_pending)
			b->max_pending = stream_output_pending(s);
	}
}

/* st_bp_reader_cb - the peer reads 8 KiB per millisecond */
static long long
st_bp_reader_cb(struct evloop *loop, void *ctx)
{
	struct st_bp *b = ctx;
	char tmp[8192];
	ssize_t n = read(b->fd, tmp, sizeof(tmp));

	if (n > 0)
		buf_append(&b->got, tmp, (size_t)n);
	if (b->got.len >= (size_t)ST_BP_LINES * ST_BP_REPLY) {
		b->reader = NULL;
		evloop_stop(loop);
		return -1;
	}
	return 1;
}

static void
test_output_backpressure(void)
{
	const struct stream_limits lim = {256, 1024, 0, 0};
	struct evloop *loop = evloop_new();
	struct st_bp b;
	int sp[2];

	memset(&b, 0, sizeof(b));
	buf_init(&b.got);
	b.loop = loop;
	T_ASSERT(st_pair(sp) == 0);
	b.fd = sp[1];
	(void)fcntl(sp[1], F_SETFL, O_NONBLOCK);
	for (int i = 0; i < ST_BP_LINES; i++) {
		char line[16];

		snprintf(line, sizeof(line), "L%05d\r\n", i);
		T_EQ_INT(write(sp[1], line, 8), 8);
	}
	b.s = stream_new(loop, sp[0], &lim, st_bp_fn, &b);
	b.reader = evloop_add_timer(loop, 0, st_bp_reader_cb, &b);
	T_ASSERT(st_run(loop, 20000));
	evloop_cancel_timer(loop, &b.reader);
	stream_free(&b.s);
	close(sp[1]);
	evloop_free(&loop);
	T_EQ_INT(b.lines, ST_BP_LINES);
	T_EQ_INT(b.got.len, (size_t)ST_BP_LINES * ST_BP_REPLY);
	T_ASSERT(b.max_pending < ST_BP_HOLD + ST_BP_REPLY);
	T_ASSERT(memcmp(b.got.data + (ST_BP_LINES - 1) * ST_BP_REPLY,
	    "L00039rr", 8) == 0);
	T_EQ_STR(b.reason, "");
	buf_free(&b.got);
}

/* ---- TLS: certificates and contexts ---- */

/* st_write_pem - write a key or certificate file */
static int
st_write_pem(const char *path, EVP_PKEY *key, X509 *x)
{
	FILE *f = fopen(path, "w");
	int ok;

	if (f == NULL)
		return -1;
	ok = key != NULL ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL,
	    NULL) : PEM_write_X509(f, x);
	if (fclose(f) != 0 || ok != 1)
		return -1;
	return 0;
}

/* st_add_ext - add one v3 extension in config syntax */
static int
st_add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value)) == NULL)
		return -1;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1 ? 0 : -1;
}

/* st_make_cert - self-signed EC certificate for "localhost" */
static int
st_make_cert(void)
{
	EVP_PKEY *key, *key2;
	X509 *x;
	X509_NAME *name;
	int rc = -1;

	snprintf(st_cert, sizeof(st_cert), "%s/cert.pem", st_dir);
	snprintf(st_key, sizeof(st_key), "%s/key.pem", st_dir);
	snprintf(st_key2, sizeof(st_key2), "%s/key2.pem", st_dir);
	key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	key2 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (key == NULL || key2 == NULL || (x = X509_new()) == NULL) {
		EVP_PKEY_free(key);
		EVP_PKEY_free(key2);
		return -1;
	}
	name = X509_get_subject_name(x);
	if (X509_set_version(x, 2) == 1 &&
	    ASN1_INTEGER_set(X509_get_serialNumber(x), 1) == 1 &&
	    X509_gmtime_adj(X509_getm_notBefore(x), -3600) != NULL &&
	    X509_gmtime_adj(X509_getm_notAfter(x), 86400) != NULL &&
	    X509_set_pubkey(x, key) == 1 &&
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)"localhost", -1, -1, 0) == 1 &&
	    X509_set_issuer_name(x, name) == 1 &&
	    st_add_ext(x, NID_basic_constraints, "critical,CA:TRUE") == 0 &&
	    st_add_ext(x, NID_subject_alt_name, "DNS:localhost") == 0 &&
	    X509_sign(x, key, EVP_sha256()) > 0 &&
	    st_write_pem(st_key, key, NULL) == 0 &&
	    st_write_pem(st_key2, key2, NULL) == 0 &&
	    st_write_pem(st_cert, NULL, x) == 0)
		rc = 0;
	X509_free(x);
	EVP_PKEY_free(key);
	EVP_PKEY_free(key2);
	return rc;
}

static void
test_tls_contexts(void)
{
	struct buf why = BUF_INIT;
	SSL_CTX *ctx;

	ctx = tls_server_ctx_new(st_cert, st_key, &why);
	T_EQ_STR(buf_cstr(&why), "");
	T_ASSERT(ctx != NULL);
	T_EQ_INT(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
	T_ASSERT(SSL_CTX_get_options(ctx) & SSL_OP_NO_COMPRESSION);
	T_ASSERT(SSL_CTX_get_options(ctx) & SSL_OP_NO_RENEGOTIATION);
	T_ASSERT(SSL_CTX_get_options(ctx) & SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_free(ctx);

	ctx = tls_server_ctx_new(st_cert, st_key2, &why);
	T_ASSERT(ctx == NULL);
	T_ASSERT(strstr(buf_cstr(&why), "mismatch") != NULL ||
	    strstr(buf_cstr(&why), "does not match") != NULL);
	T_ASSERT(strstr(buf_cstr(&why), st_key2) != NULL);
	buf_reset(&why);

	ctx = tls_server_ctx_new("/nonexistent/cert.pem", st_key, &why);
	T_ASSERT(ctx == NULL);
	T_ASSERT(strstr(buf_cstr(&why), "/nonexistent/cert.pem") != NULL);
	T_ASSERT(strstr(buf_cstr(&why), "No such file") != NULL);
	buf_reset(&why);

	ctx = tls_server_ctx_new(st_cert, "/nonexistent/key.pem", &why);
	T_ASSERT(ctx == NULL);
	T_ASSERT(strstr(buf_cstr(&why), "/nonexistent/key.pem") != NULL);
	buf_reset(&why);

	ctx = tls_client_ctx_new(st_cert, &why);
	T_EQ_STR(buf_cstr(&why), "");
	T_ASSERT(ctx != NULL);
	SSL_CTX_free(ctx);

	ctx = tls_client_ctx_new("/nonexistent/ca.pem", &why);
	T_ASSERT(ctx == NULL);
	T_ASSERT(strstr(buf_cstr(&why), "/nonexistent/ca.pem") != NULL);
	buf_reset(&why);

	ctx = tls_client_ctx_new(NULL, &why);
	T_EQ_STR(buf_cstr(&why), "");
	T_ASSERT(ctx != NULL);
	SSL_CTX_free(ctx);
	T_EQ_INT(ERR_peek_error(), 0);
	buf_free(&why);
}

/* ---- STARTTLS ---- */

struct st_tls {
	struct evloop *loop;
	SSL_CTX *sctx, *cctx;
	struct stream *srv, *cli;
	struct buf slog, clog;	/* what each side saw */
	struct buf info;	/* stream_tls_info of the server */
	bool garbage;		/* client answers 220 with plaintext */
	bool silent;		/* client answers 220 with nothing */
	bool free_on_ready;	/* server frees itself on TLS_READY */
	int closed;
	long verify;
};

/* st_tls_done - one side closed; stop when both did */
static void
st_tls_done(struct st_tls *t)
{
	if (++t->closed == 2)
		evloop_stop(t->loop);
}

/* st_tls_srv_fn - a tiny STARTTLS server */
static void
st_tls_srv_fn(struct stream *s, enum stream_event ev, void *ctx)
{
	struct st_tls *t = ctx;
	const char *line;
	size_t len;
	int got;

	switch (ev) {
	case STREAM_INPUT:
		while ((got = stream_get_line(s, &line, &len, NULL)) > 0) {
			buf_printf(&t->slog, "%s:%s\n",
			    stream_is_tls(s) ? "tls" : "plain", line);
			if (strcmp(line, "STARTTLS") == 0) {
				stream_puts(s, "220 go ahead\r\n");
				stream_starttls(s, t->sctx, true, NULL);
			} else if (strcmp(line, "QUIT") == 0) {
				stream_puts(s, "221 bye\r\n");
				stream_finish(s);
				return;
			} else {
				stream_printf(s, "250 %s\r\n", line);
			}
		}
		break;
	case STREAM_TLS_READY:
		buf_puts(&t->slog, "ready\n");
		stream_tls_info(s, &t->info);
		if (t->free_on_ready) {
			stream_free(&t->srv);
			st_tls_done(t);
		}
		break;
	case STREAM_DRAINED:
	case STREAM_TIMEOUT:
		break;
	case STREAM_CLOSED:
		buf_printf(&t->slog, "closed %s\n", stream_close_reason(s));
		stream_free(&t->srv);
		st_tls_done(t);
		break;
	}
}

/* st_tls_cli_fn - a STARTTLS client that tries to inject a command */
static void
st_tls_cli_fn(struct stream *s, enum stream_event ev, void *ctx)
{
	struct st_tls *t = ctx;
	const char *line;
	size_t len;
	int got;

	switch (ev) {
	case STREAM_INPUT:
		while ((got = stream_get_line(s, &line, &len, NULL)) > 0) {
			buf_printf(&t->clog, "%s\n", line);
			if (strncmp(line, "220 ", 4) == 0) {
				if (t->silent)
					return;	/* never a ClientHello */
				if (t->garbage) {
					/* Not a ClientHello at all. */
					stream_puts(s, "EHLO plain\r\n"
					    "EHLO plain\r\nEHLO plain\r\n");
					return;
				}
				stream_starttls(s, t->cctx, false, "localhost");
				return;
			}
		}
		break;
	case STREAM_TLS_READY:
		buf_puts(&t->clog, "ready\n");
		t->verify = SSL_get_verify_result(stream_ssl(s));
		stream_puts(s, "HELLO over tls\r\nQUIT\r\n");
		break;
	case STREAM_DRAINED:
	case STREAM_TIMEOUT:
		break;
	case STREAM_CLOSED:
		buf_printf(&t->clog, "closed %s\n", stream_close_reason(s));
		stream_free(&t->cli);
		st_tls_done(t);
		break;
	}
}

/* st_tls_setup - contexts, streams over a socketpair */
static int
st_tls_setup(struct st_tls *t, stream_event_fn *sfn, stream_event_fn *cfn,
    const struct stream_limits *slim, const struct stream_limits *clim)
{
	struct buf why = BUF_INIT;
	int sp[2];

	memset(t, 0, sizeof(*t));
	buf_init(&t->slog);
	buf_init(&t->clog);
	buf_init(&t->info);
	t->loop = evloop_new();
	t->sctx = tls_server_ctx_new(st_cert, st_key, &why);
	t->cctx = tls_client_ctx_new(st_cert, &why);
	if (why.len > 0)
		fprintf(stderr, "  %s\n", buf_cstr(&why));
	buf_free(&why);
	if (t->sctx == NULL || t->cctx == NULL || st_pair(sp) < 0)
		return -1;
	t->srv = stream_new(t->loop, sp[0], slim, sfn, t);
	t->cli = stream_new(t->loop, sp[1], clim, cfn, t);
	return 0;
}

/* st_tls_teardown - free what is left */
static void
st_tls_teardown(struct st_tls *t)
{
	stream_free(&t->srv);
	stream_free(&t->cli);
	SSL_CTX_free(t->sctx);
	SSL_CTX_free(t->cctx);
	evloop_free(&t->loop);
	buf_free(&t->slog);
	buf_free(&t->clog);
	buf_free(&t->info);
	ERR_clear_error();
}

static void
test_starttls_injection(void)
{
	const struct stream_limits lim = {512, 4096, 0, 0};
	struct st_tls t;
	const char *info;

	T_ASSERT(st_tls_setup(&t, st_tls_srv_fn, st_tls_cli_fn, &lim,
	    &lim) == 0);
	/* One write: the command and a command injected behind it. */
	stream_puts(t.cli, "STARTTLS\r\nINJECTED\r\n");
	T_ASSERT(st_run(t.loop, 5000));
	T_EQ_STR(buf_cstr(&t.slog), "plain:STARTTLS\nready\n"
	    "tls:HELLO over tls\ntls:QUIT\nclosed finished\n");
	T_EQ_STR(buf_cstr(&t.clog), "220 go ahead\nready\n"
	    "250 HELLO over tls\n221 bye\nclosed eof\n");
	T_EQ_INT(t.verify, X509_V_OK);
	info = buf_cstr(&t.info);
	T_ASSERT(strncmp(info, "TLSv1.3 with cipher TLS_", 24) == 0);
	T_ASSERT(strstr(info, " bits)") != NULL);
	{
		int a = 0, b = 0;
		const char *p = strrchr(info, '(');

		T_ASSERT(p != NULL && sscanf(p, "(%d/%d bits)", &a, &b) == 2);
		T_ASSERT(a >= 128 && b >= 128);
	}
	st_tls_teardown(&t);
}

static void
test_starttls_handshake_failure(void)
{
	const struct stream_limits lim = {512, 4096, 0, 0};
	struct st_tls t;

	T_ASSERT(st_tls_setup(&t, st_tls_srv_fn, st_tls_cli_fn, &lim,
	    &lim) == 0);
	t.garbage = true;
	stream_puts(t.cli, "STARTTLS\r\n");
	T_ASSERT(st_run(t.loop, 5000));
	/* The server never treats the plaintext as input. */
	T_ASSERT(strncmp(buf_cstr(&t.slog),
	    "plain:STARTTLS\nclosed TLS handshake: ", 37) == 0);
	T_ASSERT(strstr(buf_cstr(&t.slog), "EHLO") == NULL);
	T_ASSERT(strncmp(buf_cstr(&t.clog), "220 go ahead\nclosed ", 20) == 0);
	st_tls_teardown(&t);
}

/* test_handshake_deadline - a client that never sends its ClientHello is
 * closed at the handshake deadline (no idle timeout is set); a handshake
 * that completes is not cut by the deadline later */
static void
test_handshake_deadline(void)
{
	const struct stream_limits lim = {512, 4096, 0, 0};
	struct st_tls t;
	struct timespec a, b;
	long long ms;

	T_ASSERT(st_tls_setup(&t, st_tls_srv_fn, st_tls_cli_fn, &lim,
	    &lim) == 0);
	t.silent = true;
	stream_set_handshake_timeout(t.srv, 200);
	clock_gettime(CLOCK_MONOTONIC, &a);
	stream_puts(t.cli, "STARTTLS\r\n");
	T_ASSERT(st_run(t.loop, 5000));
	clock_gettime(CLOCK_MONOTONIC, &b);
	ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
	T_ASSERT(ms >= 190 && ms < 3000);
	T_EQ_STR(buf_cstr(&t.slog), "plain:STARTTLS\nclosed TLS handshake: "
	    "timed out after 200 ms\n");
	st_tls_teardown(&t);

	T_ASSERT(st_tls_setup(&t, st_tls_srv_fn, st_tls_cli_fn, &lim,
	    &lim) == 0);
	stream_set_handshake_timeout(t.srv, 300);
	stream_puts(t.cli, "STARTTLS\r\n");
	T_ASSERT(st_run(t.loop, 5000));
	T_EQ_STR(buf_cstr(&t.slog), "plain:STARTTLS\nready\n"
	    "tls:HELLO over tls\ntls:QUIT\nclosed finished\n");
	st_tls_teardown(&t);
}

static void
test_free_on_tls_ready(void)
{
	const struct stream_limits lim = {512, 4096, 0, 0};
	struct st_tls t;

	T_ASSERT(st_tls_setup(&t, st_tls_srv_fn, st_tls_cli_fn, &lim,
	    &lim) == 0);
	t.free_on_ready = true;
	stream_puts(t.cli, "STARTTLS\r\n");
	T_ASSERT(st_run(t.loop, 5000));
	T_EQ_STR(buf_cstr(&t.slog), "plain:STARTTLS\nready\n");
	T_ASSERT(t.srv == NULL);
	/* The client sees the connection end one way or another. */
	T_ASSERT(strstr(buf_cstr(&t.clog), "closed ") != NULL);
	st_tls_teardown(&t);
}

/* ---- TLS bytes that OpenSSL holds are read without an fd event ---- */

#define ST_SINK_BYTES 12000

struct st_sinkt {
	struct st_tls t;
	size_t got;
	bool bad;
};

/* st_sinkt_srv_fn - take every byte, write nothing */
static void
st_sinkt_srv_fn(struct stream *s, enum stream_event ev, void *ctx)
{
	struct st_sinkt *k = ctx;
	const char *p;
	size_t n;

	if (ev == STREAM_INPUT) {
		stream_peek(s, &p, &n);
		for (size_t i = 0; i < n; i++)
			if (p[i] != (char)('a' + (k->got + i) % 26))
				k->bad = true;
		k->got += n;
		stream_consume(s, n);
		if (k->got >= ST_SINK_BYTES)
			evloop_stop(k->t.loop);
	} else if (ev == STREAM_CLOSED) {
		stream_free(&k->t.srv);
		evloop_stop(k->t.loop);
	}
}

/* st_sinkt_cli_fn - one write of ST_SINK_BYTES once TLS is up */
static void
st_sinkt_cli_fn(struct stream *s, enum stream_event ev, void *ctx)
{
	struct st_sinkt *k = ctx;
	char data[ST_SINK_BYTES];

	if (ev == STREAM_TLS_READY) {
		for (size_t i = 0; i < sizeof(data); i++)
			data[i] = (char)('a' + i % 26);
		stream_write(s, data, sizeof(data));
	} else if (ev == STREAM_CLOSED) {
		stream_free(&k->t.cli);
	}
}

static void
test_tls_pending(void)
{
	/* 1000 bytes of room: one 12000-byte record takes 12 reads. */
	const struct stream_limits slim = {512, 1000, 0, 0};
	const struct stream_limits clim = {512, 4096, 0, 0};
	struct st_sinkt k;

	memset(&k, 0, sizeof(k));
	T_ASSERT(st_tls_setup(&k.t, st_sinkt_srv_fn, st_sinkt_cli_fn, &slim,
	    &clim) == 0);
	stream_starttls(k.t.srv, k.t.sctx, true, NULL);
	stream_starttls(k.t.cli, k.t.cctx, false, NULL);
	T_ASSERT(st_run(k.t.loop, 5000));
	T_EQ_INT(k.got, ST_SINK_BYTES);
	T_ASSERT(!k.bad);
	st_tls_teardown(&k.t);
}

/* ---- an idle session holds no buffers ---- */

/*
 * OpenSSL's allocations are counted (st_ossl_*, installed first thing in
 * main), so a test can see what the SSL objects of a connection hold.
 */
static long long st_ossl_bytes;

static void *
st_ossl_malloc(size_t n, const char *file, int line)
{
	void *p = malloc(n);

	(void)file;
	(void)line;
	if (p != NULL)
		st_ossl_bytes += (long long)malloc_usable_size(p);
	return p;
}

static void *
st_ossl_realloc(void *old, size_t n, const char *file, int line)
{
	long long was = old != NULL ? (long long)malloc_usable_size(old) : 0;
	void *p = realloc(old, n);

	(void)file;
	(void)line;
	if (p != NULL)
		st_ossl_bytes += (long long)malloc_usable_size(p) - was;
	else if (n == 0)
		st_ossl_bytes -= was;
	return p;
}

static void
st_ossl_free(void *p, const char *file, int line)
{
	(void)file;
	(void)line;
	if (p != NULL)
		st_ossl_bytes -= (long long)malloc_usable_size(p);
	free(p);
}

struct st_idle {
	struct st_tls t;
	int replies;		/* lines the client got */
	int want;		/* then stop */
};

/* st_idle_srv_fn - answer each line with a 20 KB reply (a FETCH) */
static void
st_idle_srv_fn(struct stream *s, enum stream_event ev, void *ctx)
{
	struct st_idle *k = ctx;
	const char *line;
	size_t len;
	static char big[20000];

	if (ev == STREAM_INPUT) {
		while (stream_get_line(s, &line, &len, NULL) > 0) {
			memset(big, 'x', sizeof(big));
			stream_write(s, big, sizeof(big));
			stream_puts(s, "\r\nok\r\n");
		}
	} else if (ev == STREAM_CLOSED) {
		stream_free(&k->t.srv);
	}
}

/* st_idle_cli_fn - send a command, count the answers */
static void
st_idle_cli_fn(struct stream *s, enum stream_event ev, void *ctx)
{
	struct st_idle *k = ctx;
	const char *line;
	size_t len;
	int got;

	if (ev == STREAM_TLS_READY) {
		stream_puts(s, "a FETCH 1:* (BODY[])\r\n");
	} else if (ev == STREAM_INPUT) {
		while ((got = stream_get_line(s, &line, &len, NULL)) != 0) {
			if (got <= 0 || strcmp(line, "ok") != 0)
				continue;
			if (++k->replies == k->want)
				evloop_stop(k->t.loop);
			else
				stream_puts(s, "b FETCH 1:* (BODY[])\r\n");
		}
	} else if (ev == STREAM_CLOSED) {
		stream_free(&k->t.cli);
	}
}

/*
 * A session that has been served and waits (IMAP IDLE) holds no input or
 * output buffer, and over TLS no record buffers either: with thousands
 * of such sessions per worker these are most of the memory. One that was
 * served a moment ago keeps them for its next command.
 */
static void
st_idle_run(bool tls)
{
	const struct stream_limits lim = {2048, 16384, 0, 0};
	struct st_idle k;
	long long base = 0, held;

	memset(&k, 0, sizeof(k));
	k.want = 2;
	T_ASSERT(st_tls_setup(&k.t, st_idle_srv_fn, st_idle_cli_fn, &lim,
	    &lim) == 0);
	base = st_ossl_bytes;
	if (tls) {
		stream_starttls(k.t.srv, k.t.sctx, true, NULL);
		stream_starttls(k.t.cli, k.t.cctx, false, NULL);
	} else {
		stream_puts(k.t.cli, "a FETCH 1:* (BODY[])\r\n");
	}
	/* a second command once the first is answered */
	T_ASSERT(st_run(k.t.loop, 5000));
	T_EQ_INT(k.replies, 0 + k.want);
	/* just served, the next command may come at once: a busy session
	 * keeps its buffers rather than allocate them per command */
	T_ASSERT(k.t.srv != NULL && stream_buffer_memory(k.t.srv) > 0);
	/* quiet for longer than STREAM_RELEASE_MS (1 s): now it is idle */
	(void)st_run(k.t.loop, 1300);
	T_ASSERT(k.t.srv != NULL && k.t.cli != NULL);
	if (k.t.srv == NULL || k.t.cli == NULL)
		return;
	T_EQ_INT((long long)stream_buffer_memory(k.t.srv), 0);
	T_EQ_INT((long long)stream_buffer_memory(k.t.cli), 0);
	if (tls) {
		/* both ends' SSL objects together, after the handshake;
		 * without SSL_MODE_RELEASE_BUFFERS each end keeps a read
		 * and a write buffer of 16 KB and more */
		held = st_ossl_bytes - base;
		fprintf(stderr, "  OpenSSL holds %lld bytes for the two "
		    "idle ends\n", held);
		T_ASSERT(held < 2 * 16384);
	}
	st_tls_teardown(&k.t);
}

static void
test_idle_no_buffers_plain(void)
{
	st_idle_run(false);
}

static void
test_idle_no_buffers_tls(void)
{
	st_idle_run(true);
}

/* ---- bulk echo, plain and TLS ---- */

#define ST_ECHO_BYTES (1024 * 1024)
#define ST_ECHO_HOLD 16384

struct st_echo {
	struct st_tls t;
	bool tls;
	int sent_lines, got_lines, nlines;
	size_t sent_bytes;
	size_t srv_max_pending, srv_max_input;
	bool mismatch;
	char reason_s[128], reason_c[128];
	struct ev_timer *sender;
};

/* st_echo_line - the text of line i */
static void
st_echo_line(struct buf *b, int i)
{
	int n = 1 + (i * 7919) % 1000;

	buf_reset(b);
	buf_printf(b, "%06d ", i);
	for (int j = 0; j < n; j++)
		buf_putc(b, 'a' + (i + j) % 26);
}

/* st_echo_srv_fn - echo lines, holding back while output piles up */
static void
st_echo_srv_fn(struct stream *s, enum stream_event ev, void *ctx)
{
	struct st_echo *e = ctx;
	const char *line, *p;
	size_t len, n;
	int got;

	switch (ev) {
	case STREAM_INPUT:
		stream_peek(s, &p, &n);
		if (n > e->srv_max_input)
			e->srv_max_input = n;
		while (stream_output_pending(s) < ST_ECHO_HOLD &&
		    (got = stream_get_line(s, &line, &len, NULL)) != 0) {
			if (got < 0) {
				e->mismatch = true;
				continue;
			}
			stream_write(s, line, len);
			stream_write(s, "\n", 1);
			if (stream_output_pending(s) > e->srv_max_pending)
				e->srv_max_pending = stream_output_pending(s);
		}
		break;
	case STREAM_TLS_READY:
	case STREAM_DRAINED:
	case STREAM_TIMEOUT:
		break;
	case STREAM_CLOSED:
		snprintf(e->reason_s, sizeof(e->reason_s), "%s",
		    stream_close_reason(s));
		stream_free(&e->t.srv);
		st_tls_done(&e->t);
		break;
	}
}

/* st_echo_send_cb - the client writes a few lines per iteration */
static long long
st_echo_send_cb(struct evloop *loop, void *ctx)
{
	struct st_echo *e = ctx;
	struct buf b = BUF_INIT;

	if (e->t.cli == NULL) {
		e->sender = NULL;
		return -1;
	}
	for (int k = 0; k < 8 && e->sent_bytes < ST_ECHO_BYTES &&
	    stream_output_pending(e->t.cli) < 65536; k++) {
		st_echo_line(&b, e->sent_lines++);
		/* Small writes: the line in three pieces. */
		stream_write(e->t.cli, b.data, 3);
		stream_write(e->t.cli, b.data + 3, b.len - 3);
		stream_write(e->t.cli, "\r\n", 2);
		e->sent_bytes += b.len + 2;
		if (e->tls && e->sent_lines % 97 == 0 &&
		    SSL_version(stream_ssl(e->t.cli)) == TLS1_3_VERSION &&
		    SSL_key_update(stream_ssl(e->t.cli),
		    SSL_KEY_UPDATE_REQUESTED) != 1)
			ERR_clear_error();
	}
	buf_free(&b);
	if (e->sent_bytes >= ST_ECHO_BYTES) {
		e->nlines = e->sent_lines;
		e->sender = NULL;
		return -1;
	}
	return 1;
}

/* st_echo_cli_fn - check the echoed lines, finish after the last */
static void
st_echo_cli_fn(struct stream *s, enum stream_event ev, void *ctx)
{
	struct st_echo *e = ctx;
	struct buf want = BUF_INIT;
	const char *line;
	size_t len;
	bool crlf;
	int got;

	switch (ev) {
	case STREAM_INPUT:
		while ((got = stream_get_line(s, &line, &len, &crlf)) != 0) {
			st_echo_line(&want, e->got_lines++);
			if (got < 0 || crlf || len != want.len ||
			    memcmp(line, want.data, len) != 0)
				e->mismatch = true;
			if (e->nlines > 0 && e->got_lines == e->nlines) {
				stream_finish(s);
				break;
			}
		}
		break;
	case STREAM_TLS_READY:
		e->sender = evloop_add_timer(e->t.loop, 0, st_echo_send_cb, e);
		break;
	case STREAM_DRAINED:
	case STREAM_TIMEOUT:
		break;
	case STREAM_CLOSED:
		snprintf(e->reason_c, sizeof(e->reason_c), "%s",
		    stream_close_reason(s));
		stream_free(&e->t.cli);
		st_tls_done(&e->t);
		break;
	}
	buf_free(&want);
}

/* st_echo_run - 1 MB each way through an echo server */
static void
st_echo_run(bool tls)
{
	const struct stream_limits slim = {2048, 4096, 0, 0};
	const struct stream_limits clim = {2048, 65536, 0, 0};
	struct st_echo e;

	memset(&e, 0, sizeof(e));
	e.tls = tls;
	T_ASSERT(st_tls_setup(&e.t, st_echo_srv_fn, st_echo_cli_fn, &slim,
	    &clim) == 0);
	if (tls) {
		/* Implicit TLS on both ends. */
		stream_starttls(e.t.srv, e.t.sctx, true, NULL);
		stream_starttls(e.t.cli, e.t.cctx, false, "localhost");
	} else {
		e.sender = evloop_add_timer(e.t.loop, 0, st_echo_send_cb, &e);
	}
	T_ASSERT(st_run(e.t.loop, 60000));
	evloop_cancel_timer(e.t.loop, &e.sender);
	st_tls_teardown(&e.t);
	T_ASSERT(e.nlines > 0);
	T_EQ_INT(e.got_lines, e.nlines);
	T_ASSERT(!e.mismatch);
	T_EQ_STR(e.reason_c, "finished");
	T_EQ_STR(e.reason_s, "eof");
	T_ASSERT(e.srv_max_input <= slim.max_input);
	T_ASSERT(e.srv_max_pending < ST_ECHO_HOLD + slim.max_line);
}

static void
test_echo_plain(void)
{
	st_echo_run(false);
}

static void
test_echo_tls(void)
{
	st_echo_run(true);
}

static const struct test_case cases[] = {
	{"a TLS handshake has its own deadline", test_handshake_deadline},
	{"lines at every chunk size", test_lines_every_chunk},
	{"pause bounds memory", test_pause_bounds_memory},
	{"EOF after pipelined input", test_eof_pipelined},
	{"idle timeout", test_idle_timeout},
	{"idle reset by input, total deadline", test_idle_reset_and_total},
	{"stream_free inside a callback", test_free_in_callback},
	{"write error closes", test_write_error},
	{"finish flushes everything", test_finish_flushes},
	{"output back-pressure", test_output_backpressure},
	{"reply lines", test_reply_lines},
	{"drained event", test_drained},
	{"TLS contexts", test_tls_contexts},
	{"STARTTLS discards injected plaintext", test_starttls_injection},
	{"STARTTLS handshake failure", test_starttls_handshake_failure},
	{"stream_free on TLS ready", test_free_on_tls_ready},
	{"TLS data held by OpenSSL", test_tls_pending},
	{"an idle plain session holds no buffers",
	    test_idle_no_buffers_plain},
	{"an idle TLS session holds no buffers", test_idle_no_buffers_tls},
	{"1 MB echo, plain", test_echo_plain},
	{"1 MB echo, TLS", test_echo_tls},
	{0},
};

int
main(void)
{
	int rc;

	/* before OpenSSL allocates anything */
	if (CRYPTO_set_mem_functions(st_ossl_malloc, st_ossl_realloc,
	    st_ossl_free) != 1) {
		fprintf(stderr, "CRYPTO_set_mem_functions failed\n");
		return 1;
	}
	if (mkdtemp(st_dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	if (st_make_cert() < 0) {
		fprintf(stderr, "cannot make a test certificate\n");
		ERR_print_errors_fp(stderr);
		rc = 1;
	} else {
		rc = test_run(cases);
	}
	unlink(st_cert);
	unlink(st_key);
	unlink(st_key2);
	rmdir(st_dir);
	return rc;
}
