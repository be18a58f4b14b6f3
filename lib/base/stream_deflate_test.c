/*
 * stream_deflate_test - unit tests for COMPRESS=DEFLATE (RFC 4978) in
 * stream.c and stream_deflate.c: the codec at every chunk size and its
 * memory, then a server stream on a socketpair talking to a client thread
 * that deflates and inflates with zlib directly: lines both ways, a line
 * split across deflate blocks, commands pipelined behind COMPRESS,
 * COMPRESSIONACTIVE, 10 MB each way with back-pressure, a decompression
 * bomb (1 GiB of zeros), corrupt data; and two streams compressed inside
 * TLS.
 *
 * The client thread does blocking I/O with a receive timeout, records
 * what went wrong in a string instead of asserting, and is always joined.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <zlib.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "base/buf.h"
#include "base/evloop.h"
#include "base/stream.h"
#include "base/stream_deflate.h"
#include "base/test.h"
#include "base/tls.h"

#define SZ_BULK (10 * 1024 * 1024)	/* the 10 MB transfers */
#define SZ_BOMB (1024ULL * 1024 * 1024)	/* what the bomb inflates to */
#define SZ_MAX_INPUT 4096		/* the server's input bound */

static char sz_dir[] = "/tmp/herald-deflate-test.XXXXXX";
static char *sz_data;		/* SZ_BULK bytes of mail-like text */

/* sz_make_data - deterministic text that compresses about 3:1 */
static void
sz_make_data(void)
{
	unsigned seed = 12345;
	size_t off = 0;

	sz_data = malloc(SZ_BULK);
	if (sz_data == NULL)
		abort();
	while (off < SZ_BULK) {
		char line[96];
		int n;

		seed = seed * 1103515245 + 12345;
		n = snprintf(line, sizeof(line), "%08x Subject: message %u "
		    "from someone at example.org\r\n", seed, seed >> 20);
		if ((size_t)n > SZ_BULK - off)
			n = (int)(SZ_BULK - off);
		memcpy(sz_data + off, line, (size_t)n);
		off += (size_t)n;
	}
}

/* ---- the codec alone ---- */

/* test_codec_every_chunk - inflate what deflate made, fed 1..N bytes at
 * a time into arrays of 1..N bytes */
static void
test_codec_every_chunk(void)
{
	static const char text[] = "* 1 FETCH (FLAGS (\\Seen))\r\n"
	    "* 2 FETCH (FLAGS (\\Seen \\Answered))\r\na OK FETCH done\r\n";
	struct stream_deflate *a = stream_deflate_new(), *b;
	struct buf z = BUF_INIT, plain = BUF_INIT, why = BUF_INIT;

	stream_deflate_deflate(a, text, 27, &z);
	stream_deflate_deflate(a, text + 27, sizeof(text) - 1 - 27, &z);
	/* each batch ends in a sync flush: 00 00 ff ff */
	T_ASSERT(z.len > 4);
	T_EQ_MEM(z.data + z.len - 4, 4, "\0\0\377\377", 4);
	for (size_t chunk = 1; chunk <= z.len; chunk++) {
		b = stream_deflate_new();
		buf_reset(&plain);
		for (size_t off = 0; off < z.len ||
		    stream_deflate_pending(b);) {
			char out[64];
			size_t n = z.len - off < chunk ? z.len - off : chunk;
			ssize_t r;

			if (!stream_deflate_pending(b) && n > 0) {
				stream_deflate_feed(b, z.data + off, n);
				off += n;
			}
			r = stream_deflate_inflate(b, out, 1 + chunk % 7,
			    &why);
			T_EQ_STR(buf_cstr(&why), "");
			T_ASSERT(r >= 0);
			buf_append(&plain, out, (size_t)r);
		}
		T_EQ_STR(buf_cstr(&plain), text);
		stream_deflate_free(&b);
		T_ASSERT(b == NULL);
	}
	stream_deflate_free(&a);
	buf_free(&z);
	buf_free(&plain);
	buf_free(&why);
}

/* test_codec_corrupt - bad data, data after the end: sticky errors */
static void
test_codec_corrupt(void)
{
	struct stream_deflate *b = stream_deflate_new();
	struct buf why = BUF_INIT;
	char out[64];
	/* a final stored block "hi", then one more byte */
	static const unsigned char end[] = {0x01, 0x02, 0x00, 0xfd, 0xff,
	    'h', 'i', 'x'};

	stream_deflate_feed(b, "\xff\xff\xff\xff", 4);
	T_EQ_INT(stream_deflate_inflate(b, out, sizeof(out), &why), -1);
	T_ASSERT(strncmp(buf_cstr(&why), "corrupt compressed data: ",
	    25) == 0);
	buf_reset(&why);
	T_ASSERT(!stream_deflate_pending(b));
	T_EQ_INT(stream_deflate_inflate(b, out, sizeof(out), &why), -1);
	T_ASSERT(strncmp(buf_cstr(&why), "corrupt", 7) == 0);
	stream_deflate_free(&b);

	b = stream_deflate_new();
	buf_reset(&why);
	stream_deflate_feed(b, end, sizeof(end));
	/* what came before the bad byte first, then the error */
	T_EQ_INT(stream_deflate_inflate(b, out, sizeof(out), &why), 2);
	T_EQ_MEM(out, 2, "hi", 2);
	T_ASSERT(stream_deflate_pending(b));
	T_EQ_INT(stream_deflate_inflate(b, out, sizeof(out), &why), -1);
	T_EQ_STR(buf_cstr(&why), "data after the end of the compressed "
	    "stream");
	stream_deflate_free(&b);
	buf_free(&why);
}

/* sz_deflate_mem - bytes a zlib deflate state with these parameters
 * holds, counted through a custom allocator */
static size_t sz_counted;

static voidpf
sz_alloc(voidpf o, uInt items, uInt size)
{
	(void)o;
	sz_counted += (size_t)items * size;
	return calloc(items, size);
}

static void
sz_free(voidpf o, voidpf p)
{
	(void)o;
	free(p);
}

static size_t
sz_deflate_mem(int wbits, int memlevel, size_t *zlen)
{
	z_stream d;
	unsigned char out[1 << 16];
	size_t total = 0;

	memset(&d, 0, sizeof(d));
	d.zalloc = sz_alloc;
	d.zfree = sz_free;
	sz_counted = 0;
	if (deflateInit2(&d, 6, Z_DEFLATED, -wbits, memlevel,
	    Z_DEFAULT_STRATEGY) != Z_OK)
		return 0;
	/* 1 MB of the test text in 4 KiB replies, each sync-flushed */
	for (size_t off = 0; off < 1024 * 1024; off += 4096) {
		d.next_in = (Bytef *)sz_data + off;
		d.avail_in = 4096;
		do {
			d.next_out = out;
			d.avail_out = sizeof(out);
			(void)deflate(&d, Z_SYNC_FLUSH);
			total += sizeof(out) - d.avail_out;
		} while (d.avail_out == 0);
	}
	(void)deflateEnd(&d);
	*zlen = total;
	return sz_counted;
}

/* test_codec_memory - what one compressed session costs, and the
 * figures that chose the parameters */
static void
test_codec_memory(void)
{
	struct stream_deflate *a = stream_deflate_new(), *b;
	struct buf z = BUF_INIT, why = BUF_INIT;
	static const int params[][2] = {{15, 8}, {15, 5}, {13, 6}, {12, 5},
	    {11, 4}, {10, 3}};
	char out[4096];
	size_t idle, busy, zlen;

	/* b is the session: it deflates replies and inflates commands */
	b = stream_deflate_new();
	idle = stream_deflate_memory(b);
	stream_deflate_deflate(a, sz_data, 1 << 16, &z);
	stream_deflate_feed(b, z.data, z.len);
	while (stream_deflate_pending(b))
		T_ASSERT(stream_deflate_inflate(b, out, sizeof(out),
		    &why) >= 0);
	buf_reset(&z);
	stream_deflate_deflate(b, sz_data, 1 << 16, &z);
	busy = stream_deflate_memory(b);
	printf("  one session: %zu bytes idle (deflate + inflate state), "
	    "%zu bytes once inflate has its window\n", idle, busy);
	for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++) {
		size_t m = sz_deflate_mem(params[i][0], params[i][1], &zlen);

		printf("  deflate windowBits %d memLevel %d: %zu bytes, "
		    "1 MB of replies -> %zu bytes\n", params[i][0],
		    params[i][1], m, zlen);
	}
	/* the bound the header promises, with room for zlib versions */
	T_ASSERT(busy < 96 * 1024);
	stream_deflate_free(&a);
	stream_deflate_free(&b);
	buf_free(&z);
	buf_free(&why);
}

/* ---- a server stream ---- */

struct sz_srv {
	struct evloop *loop;
	struct stream *s;
	unsigned long long sink_left;	/* SINK: bytes still to take */
	unsigned long long sink_total;
	unsigned long long sink_off;	/* compared against sz_data */
	bool sink_bad;
	size_t bulk_left;		/* BULK: bytes still to write */
	size_t bulk_off;
	size_t max_avail;		/* most input ever buffered */
	size_t max_zmem;		/* most compression memory */
	size_t max_pending;		/* most output queued */
	size_t logout_zmem;		/* compression memory at LOGOUT */
	char reason[256];
	bool closed;
};

/* sz_srv_bulk - queue BULK output while the queue is short */
static void
sz_srv_bulk(struct sz_srv *v)
{
	size_t m;

	while (v->bulk_left > 0 && stream_output_pending(v->s) < 65536) {
		size_t n = v->bulk_left < 16384 ? v->bulk_left : 16384;

		stream_write(v->s, sz_data + v->bulk_off, n);
		v->bulk_off += n;
		v->bulk_left -= n;
	}
	if ((m = stream_output_pending(v->s)) > v->max_pending)
		v->max_pending = m;
	if ((m = stream_compress_memory(v->s)) > v->max_zmem)
		v->max_zmem = m;
	if (v->bulk_left > 0)
		stream_notify_drained(v->s, 16384);
	else if (v->bulk_off > 0) {
		stream_puts(v->s, "f OK bulk done\r\n");
		v->bulk_off = 0;
	}
}

/* sz_srv_sink - take SINK bytes, comparing what fits in sz_data */
static void
sz_srv_sink(struct sz_srv *v)
{
	const char *p;
	size_t n;

	stream_peek(v->s, &p, &n);
	if (n > v->sink_left)
		n = (size_t)v->sink_left;
	if (v->sink_total <= SZ_BULK) {
		if (memcmp(p, sz_data + v->sink_off, n) != 0)
			v->sink_bad = true;
		v->sink_off += n;
	}
	stream_consume(v->s, n);
	v->sink_left -= n;
	if (v->sink_left == 0)
		stream_printf(v->s, "e OK sunk %llu %s\r\n", v->sink_total,
		    v->sink_bad ? "mismatch" : "match");
}

/* sz_srv_line - one command */
static void
sz_srv_line(struct sz_srv *v, const char *line)
{
	const char *sp = strchr(line, ' ');
	const char *cmd = sp != NULL ? sp + 1 : line;
	int tag = (int)(sp != NULL ? sp - line : 0);

	if (strncmp(cmd, "COMPRESS", 8) == 0) {
		if (stream_is_compressed(v->s)) {
			stream_printf(v->s, "%.*s NO [COMPRESSIONACTIVE] "
			    "DEFLATE active already\r\n", tag, line);
		} else {
			stream_printf(v->s, "%.*s OK DEFLATE active\r\n", tag,
			    line);
			stream_compress_start(v->s);
		}
	} else if (strncmp(cmd, "SINK ", 5) == 0) {
		v->sink_total = v->sink_left = strtoull(cmd + 5, NULL, 10);
		v->sink_off = 0;
		v->sink_bad = false;
	} else if (strncmp(cmd, "BULK ", 5) == 0) {
		v->bulk_left = strtoul(cmd + 5, NULL, 10);
		v->bulk_off = 0;
		sz_srv_bulk(v);
	} else if (strcmp(cmd, "LOGOUT") == 0) {
		v->logout_zmem = stream_compress_memory(v->s);
		stream_puts(v->s, "* BYE\r\n");
		stream_finish(v->s);
	} else {
		stream_printf(v->s, "ok %s\r\n", line);
	}
}

/* sz_srv_fn - the server's stream callback */
static void
sz_srv_fn(struct stream *s, enum stream_event ev, void *ctx)
{
	struct sz_srv *v = ctx;
	const char *line, *p;
	size_t len, n;

	switch (ev) {
	case STREAM_INPUT:
		stream_peek(s, &p, &n);
		if (n > v->max_avail)
			v->max_avail = n;
		for (;;) {
			if (v->sink_left > 0) {
				sz_srv_sink(v);
				if (v->sink_left > 0)
					break;
				continue;
			}
			if (v->bulk_left > 0)
				break;	/* DRAINED brings us back */
			if (stream_get_line(s, &line, &len, NULL) <= 0)
				break;
			sz_srv_line(v, line);
		}
		if (stream_input_error(s) != NULL) {
			stream_printf(s, "* BYE %s\r\n", stream_input_error(s));
			stream_finish(s);
		}
		break;
	case STREAM_DRAINED:
		sz_srv_bulk(v);
		if (v->bulk_left == 0)
			stream_pause(s, false);
		break;
	case STREAM_TLS_READY:
	case STREAM_TIMEOUT:
		break;
	case STREAM_CLOSED:
		snprintf(v->reason, sizeof(v->reason), "%s",
		    stream_close_reason(s));
		v->closed = true;
		stream_free(&v->s);
		evloop_stop(v->loop);
		break;
	}
}

/* ---- the zlib client thread ---- */

struct sz_cli {
	int fd;
	z_stream inf, def;
	struct buf got;		/* inflated, not yet checked */
	char err[512];		/* what went wrong, "" if nothing */
	void (*script)(struct sz_cli *);
	bool inflating;		/* COMPRESS accepted */
};

/* sz_fail - record the first failure */
static void
sz_fail(struct sz_cli *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
sz_fail(struct sz_cli *c, const char *fmt, ...)
{
	va_list ap;

	if (c->err[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
}

/* sz_write_all - write n bytes (blocking) */
static int
sz_write_all(struct sz_cli *c, const void *p, size_t n)
{
	const char *q = p;

	while (n > 0) {
		ssize_t r = write(c->fd, q, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			sz_fail(c, "write: %s", strerror(errno));
			return -1;
		}
		q += r;
		n -= (size_t)r;
	}
	return 0;
}

/* sz_zsend - deflate n bytes and write them, flushing with flush */
static int
sz_zsend(struct sz_cli *c, const void *p, size_t n, int flush)
{
	unsigned char out[16384];

	c->def.next_in = (Bytef *)p;
	c->def.avail_in = (uInt)n;
	do {
		c->def.next_out = out;
		c->def.avail_out = sizeof(out);
		if (deflate(&c->def, flush) == Z_STREAM_ERROR) {
			sz_fail(c, "deflate failed");
			return -1;
		}
		if (sz_write_all(c, out, sizeof(out) - c->def.avail_out) < 0)
			return -1;
	} while (c->def.avail_out == 0 || c->def.avail_in > 0);
	return 0;
}

/* sz_plain_line - read one uncompressed line byte by byte (what follows
 * it is compressed) */
static int
sz_plain_line(struct sz_cli *c, char *line, size_t size)
{
	size_t n = 0;

	while (n + 1 < size) {
		ssize_t r = read(c->fd, line + n, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			sz_fail(c, "read plain line: %s", r == 0 ? "EOF" :
			    strerror(errno));
			return -1;
		}
		if (line[n++] == '\n')
			break;
	}
	line[n] = '\0';
	return 0;
}

/* sz_fill - read and inflate until got holds n bytes; -1 at EOF */
static int
sz_fill(struct sz_cli *c, size_t n)
{
	unsigned char in[16384], out[65536];

	while (c->got.len < n) {
		ssize_t r = read(c->fd, in, sizeof(in));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			sz_fail(c, "read: %s (have %zu of %zu: \"%.60s\")",
			    r == 0 ? "EOF" : strerror(errno), c->got.len, n,
			    c->got.data);
			return -1;
		}
		c->inf.next_in = in;
		c->inf.avail_in = (uInt)r;
		do {
			int e;

			c->inf.next_out = out;
			c->inf.avail_out = sizeof(out);
			e = inflate(&c->inf, Z_SYNC_FLUSH);
			if (e != Z_OK && e != Z_BUF_ERROR) {
				sz_fail(c, "inflate: %d", e);
				return -1;
			}
			buf_append(&c->got, out, sizeof(out) -
			    c->inf.avail_out);
		} while (c->inf.avail_in > 0 || c->inf.avail_out == 0);
	}
	return 0;
}

/* sz_expect - the next inflated bytes must be want */
static int
sz_expect(struct sz_cli *c, const char *want)
{
	size_t n = strlen(want);

	if (sz_fill(c, n) < 0)
		return -1;
	if (memcmp(c->got.data, want, n) != 0) {
		sz_fail(c, "got \"%.*s\", want \"%s\"", (int)n, c->got.data,
		    want);
		return -1;
	}
	buf_consume(&c->got, n);
	return 0;
}

/* sz_expect_eof - the server closed, with nothing more to say */
static void
sz_expect_eof(struct sz_cli *c)
{
	char b;
	ssize_t r;

	do {
		r = read(c->fd, &b, 1);
	} while (r < 0 && errno == EINTR);
	if (r != 0)
		sz_fail(c, "expected EOF, read %zd", r);
}

/* sz_cli_main - the client thread */
static void *
sz_cli_main(void *arg)
{
	struct sz_cli *c = arg;

	c->script(c);
	/* whatever happened, let the server see the end */
	(void)shutdown(c->fd, SHUT_WR);
	return NULL;
}

/* sz_compress - "a COMPRESS DEFLATE" plus pipelined data, then the OK */
static int
sz_compress(struct sz_cli *c, const char *pipelined)
{
	unsigned char out[1024];
	char buf[1200], line[256];
	size_t n = 0;

	/* the command and what follows it in one write (RFC 4978 §3) */
	memcpy(buf, "a COMPRESS DEFLATE\r\n", 20);
	n = 20;
	if (pipelined != NULL) {
		c->def.next_in = (Bytef *)pipelined;
		c->def.avail_in = (uInt)strlen(pipelined);
		c->def.next_out = out;
		c->def.avail_out = sizeof(out);
		if (deflate(&c->def, Z_SYNC_FLUSH) != Z_OK ||
		    c->def.avail_in != 0) {
			sz_fail(c, "deflate the pipelined line");
			return -1;
		}
		memcpy(buf + n, out, sizeof(out) - c->def.avail_out);
		n += sizeof(out) - c->def.avail_out;
	}
	if (sz_write_all(c, buf, n) < 0 ||
	    sz_plain_line(c, line, sizeof(line)) < 0)
		return -1;
	if (strcmp(line, "a OK DEFLATE active\r\n") != 0) {
		sz_fail(c, "COMPRESS answered \"%s\"", line);
		return -1;
	}
	return 0;
}

/* sz_script_lines - lines both ways, pipelining, split lines, twice */
static void
sz_script_lines(struct sz_cli *c)
{
	if (sz_compress(c, "b NOOP\r\n") < 0 ||
	    sz_expect(c, "ok b NOOP\r\n") < 0)
		return;
	/* every reply must come without more input: we wait for each */
	if (sz_zsend(c, "c COMPRESS DEFLATE\r\n", 20, Z_SYNC_FLUSH) < 0 ||
	    sz_expect(c, "c NO [COMPRESSIONACTIVE] DEFLATE active "
	    "already\r\n") < 0)
		return;
	/* one line across two deflate blocks, sent apart */
	if (sz_zsend(c, "d hel", 5, Z_SYNC_FLUSH) < 0)
		return;
	usleep(50 * 1000);
	if (sz_zsend(c, "lo\r\ne NO", 8, Z_FULL_FLUSH) < 0 ||
	    sz_expect(c, "ok d hello\r\n") < 0)
		return;
	usleep(20 * 1000);
	if (sz_zsend(c, "OP\r\nf LOGOUT\r\n", 14, Z_SYNC_FLUSH) < 0 ||
	    sz_expect(c, "ok e NOOP\r\n* BYE\r\n") < 0)
		return;
	sz_expect_eof(c);
}

/* sz_plain_bytes - read exactly n uncompressed bytes; they must be want */
static int
sz_plain_bytes(struct sz_cli *c, const char *want, size_t n)
{
	char b[16384];

	for (size_t off = 0; off < n;) {
		size_t m = n - off < sizeof(b) ? n - off : sizeof(b);
		ssize_t r = read(c->fd, b, m);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			sz_fail(c, "read plain: %s at %zu of %zu", r == 0 ?
			    "EOF" : strerror(errno), off, n);
			return -1;
		}
		if (memcmp(b, want + off, (size_t)r) != 0) {
			sz_fail(c, "plain bytes differ at %zu", off);
			return -1;
		}
		off += (size_t)r;
	}
	return 0;
}

/* sz_script_backlog - COMPRESS behind a large reply the server cannot
 * send at once: that reply and the OK stay plain, what follows is
 * compressed */
static void
sz_script_backlog(struct sz_cli *c)
{
	static const char cmds[] = "x BULK 300000\r\na COMPRESS DEFLATE\r\n";
	static const char tail[] = "f OK bulk done\r\na OK DEFLATE active\r\n";

	if (sz_write_all(c, cmds, sizeof(cmds) - 1) < 0)
		return;
	usleep(100 * 1000);	/* the server's socket buffer fills */
	if (sz_plain_bytes(c, sz_data, 300000) < 0 ||
	    sz_plain_bytes(c, tail, sizeof(tail) - 1) < 0)
		return;
	if (sz_zsend(c, "b NOOP\r\ng LOGOUT\r\n", 18, Z_SYNC_FLUSH) < 0 ||
	    sz_expect(c, "ok b NOOP\r\n* BYE\r\n") < 0)
		return;
	sz_expect_eof(c);
}

/* sz_script_bulk - 10 MB up, 10 MB down, each with back-pressure */
static void
sz_script_bulk(struct sz_cli *c)
{
	char cmd[64];
	int n;

	if (sz_compress(c, NULL) < 0)
		return;
	n = snprintf(cmd, sizeof(cmd), "e SINK %d\r\n", SZ_BULK);
	if (sz_zsend(c, cmd, (size_t)n, Z_NO_FLUSH) < 0)
		return;
	for (size_t off = 0; off < SZ_BULK; off += 65536)
		if (sz_zsend(c, sz_data + off, 65536, off + 65536 < SZ_BULK ?
		    Z_NO_FLUSH : Z_SYNC_FLUSH) < 0)
			return;
	n = snprintf(cmd, sizeof(cmd), "e OK sunk %d match\r\n", SZ_BULK);
	if (sz_expect(c, cmd) < 0)
		return;
	n = snprintf(cmd, sizeof(cmd), "f BULK %d\r\n", SZ_BULK);
	if (sz_zsend(c, cmd, (size_t)n, Z_SYNC_FLUSH) < 0)
		return;
	for (size_t off = 0; off < SZ_BULK; off += 65536) {
		if (sz_fill(c, 65536) < 0)
			return;
		if (memcmp(c->got.data, sz_data + off, 65536) != 0) {
			sz_fail(c, "BULK differs at %zu", off);
			return;
		}
		buf_consume(&c->got, 65536);
		if (off % (1024 * 1024) == 0)
			usleep(20 * 1000);	/* a slow reader */
	}
	if (sz_expect(c, "f OK bulk done\r\n") < 0 ||
	    sz_zsend(c, "g LOGOUT\r\n", 10, Z_SYNC_FLUSH) < 0 ||
	    sz_expect(c, "* BYE\r\n") < 0)
		return;
	sz_expect_eof(c);
}

/* sz_script_bomb - 1 GiB of zeros in about 1 MB */
static void
sz_script_bomb(struct sz_cli *c)
{
	static unsigned char zeros[1 << 20];
	unsigned char *blob;
	size_t blen = 0;
	char cmd[64];
	int n;
	z_stream d;

	if (sz_compress(c, NULL) < 0)
		return;
	n = snprintf(cmd, sizeof(cmd), "e SINK %llu\r\n", SZ_BOMB);
	if (sz_zsend(c, cmd, (size_t)n, Z_FULL_FLUSH) < 0)
		return;
	/*
	 * 1 MiB of zeros after a full flush, with nothing before it to
	 * refer to: the same bytes each time, so 1024 copies of it are a
	 * valid stream of 1 GiB of zeros.
	 */
	memset(&d, 0, sizeof(d));
	if ((blob = malloc(8192)) == NULL ||
	    deflateInit2(&d, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY) !=
	    Z_OK) {
		free(blob);
		sz_fail(c, "deflateInit2");
		return;
	}
	d.next_in = zeros;
	d.avail_in = sizeof(zeros);
	d.next_out = blob;
	d.avail_out = 8192;
	if (deflate(&d, Z_FULL_FLUSH) != Z_OK || d.avail_in != 0 ||
	    d.avail_out == 0) {
		sz_fail(c, "deflate zeros");
	} else {
		blen = 8192 - d.avail_out;
		for (int i = 0; i < 1024 && c->err[0] == '\0'; i++)
			(void)sz_write_all(c, blob, blen);
	}
	(void)deflateEnd(&d);
	free(blob);
	if (c->err[0] != '\0')
		return;
	/* our own deflate state knows nothing of it: start afresh */
	n = snprintf(cmd, sizeof(cmd), "e OK sunk %llu match\r\n", SZ_BOMB);
	if (sz_expect(c, cmd) < 0 ||
	    sz_zsend(c, "g LOGOUT\r\n", 10, Z_SYNC_FLUSH) < 0 ||
	    sz_expect(c, "* BYE\r\n") < 0)
		return;
	sz_expect_eof(c);
}

/* sz_script_corrupt - good lines, then garbage: BYE with the reason */
static void
sz_script_corrupt(struct sz_cli *c)
{
	static const unsigned char junk[] = {0xff, 0xff, 0xff, 0xff, 0x00,
	    0x13, 0x37};

	if (sz_compress(c, "b NOOP\r\n") < 0 ||
	    sz_expect(c, "ok b NOOP\r\n") < 0)
		return;
	if (sz_zsend(c, "c NOOP\r\n", 8, Z_SYNC_FLUSH) < 0 ||
	    sz_write_all(c, junk, sizeof(junk)) < 0 ||
	    sz_expect(c, "ok c NOOP\r\n* BYE corrupt compressed data: "
	    "invalid block type\r\n") < 0)
		return;
	sz_expect_eof(c);
}

/* sz_deadline_cb - the test ran too long: stop the loop */
static long long
sz_deadline_cb(struct evloop *loop, void *ctx)
{
	bool *hit = ctx;

	*hit = true;
	evloop_stop(loop);
	return -1;
}

/* sz_talk - run a server stream against a client script for at most ms;
 * the client's failure text, or "" */
static void
sz_talk(void (*script)(struct sz_cli *), struct sz_srv *v, char *err,
    size_t errsize, long long ms)
{
	struct stream_limits lim = {
		.max_line = 1024, .max_input = SZ_MAX_INPUT,
		.idle_ms = 30000,
	};
	struct sz_cli c;
	struct ev_timer *t;
	bool hit = false;
	pthread_t th;
	struct timeval tv = {30, 0};
	int sp[2];

	memset(&c, 0, sizeof(c));
	memset(v, 0, sizeof(*v));
	err[0] = '\0';
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) {
		snprintf(err, errsize, "socketpair: %s", strerror(errno));
		return;
	}
	c.fd = sp[1];
	c.script = script;
	buf_init(&c.got);
	(void)setsockopt(c.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(c.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (inflateInit2(&c.inf, -15) != Z_OK ||
	    deflateInit2(&c.def, 6, Z_DEFLATED, -15, 8,
	    Z_DEFAULT_STRATEGY) != Z_OK)
		abort();
	v->loop = evloop_new();
	v->s = stream_new(v->loop, sp[0], &lim, sz_srv_fn, v);
	if (pthread_create(&th, NULL, sz_cli_main, &c) != 0)
		abort();
	t = evloop_add_timer(v->loop, ms, sz_deadline_cb, &hit);
	evloop_run(v->loop);
	if (!hit)
		evloop_cancel_timer(v->loop, &t);
	/* the server is done (closed): the client sees EOF, or fails */
	if (v->s != NULL)
		stream_free(&v->s);
	(void)shutdown(c.fd, SHUT_RDWR);
	pthread_join(th, NULL);
	(void)close(c.fd);
	if (hit)
		snprintf(err, errsize, "deadline passed (client: %s)", c.err);
	else
		snprintf(err, errsize, "%s", c.err);
	(void)inflateEnd(&c.inf);
	(void)deflateEnd(&c.def);
	buf_free(&c.got);
	evloop_free(&v->loop);
}

/* test_lines - replies without waiting, pipelining behind COMPRESS,
 * COMPRESSIONACTIVE, a line across deflate blocks */
static void
test_lines(void)
{
	struct sz_srv v;
	char err[600];

	sz_talk(sz_script_lines, &v, err, sizeof(err), 20000);
	T_EQ_STR(err, "");
	T_EQ_STR(v.reason, "finished");
	/* what an idle compressed session holds, besides the stream's own
	 * buffers */
	printf("  idle session after a few commands: %zu bytes\n",
	    v.logout_zmem);
	T_ASSERT(v.logout_zmem > 0 && v.logout_zmem < 96 * 1024);
}

/* test_backlog - plain output queued before COMPRESS goes out plain */
static void
test_backlog(void)
{
	struct sz_srv v;
	char err[600];

	sz_talk(sz_script_backlog, &v, err, sizeof(err), 20000);
	T_EQ_STR(err, "");
	T_EQ_STR(v.reason, "finished");
}

/* test_bulk - 10 MB each way, bounded buffers on the server */
static void
test_bulk(void)
{
	struct sz_srv v;
	char err[600];

	sz_talk(sz_script_bulk, &v, err, sizeof(err), 60000);
	T_EQ_STR(err, "");
	T_EQ_STR(v.reason, "finished");
	printf("  bulk: most input buffered %zu, most output queued %zu, "
	    "most compression memory %zu\n", v.max_avail, v.max_pending,
	    v.max_zmem);
	T_ASSERT(v.max_avail <= SZ_MAX_INPUT);
	/* zlib state + one compressed batch of at most 64 KiB + 16 KiB */
	T_ASSERT(v.max_zmem < 256 * 1024);
}

/* sz_maxrss_kb - the process's peak resident size */
static long
sz_maxrss_kb(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return -1;
	return ru.ru_maxrss;
}

/* test_bomb - 1 GiB of zeros arrives, memory stays put */
static void
test_bomb(void)
{
	struct sz_srv v;
	char err[600];
	long before = sz_maxrss_kb(), after;

	sz_talk(sz_script_bomb, &v, err, sizeof(err), 100000);
	after = sz_maxrss_kb();
	T_EQ_STR(err, "");
	T_EQ_STR(v.reason, "finished");
	printf("  bomb: peak RSS %ld KiB before, %ld KiB after; most input "
	    "buffered %zu\n", before, after, v.max_avail);
	T_ASSERT(v.max_avail <= SZ_MAX_INPUT);
	T_ASSERT(after - before < 64 * 1024);
}

/* test_corrupt - the owner gets the reason and says BYE */
static void
test_corrupt(void)
{
	struct sz_srv v;
	char err[600];

	sz_talk(sz_script_corrupt, &v, err, sizeof(err), 20000);
	T_EQ_STR(err, "");
	T_EQ_STR(v.reason, "finished");
}

/* ---- inside TLS, both ends herald streams ---- */

struct sz_tls {
	struct evloop *loop;
	struct stream *srv, *cli;
	struct sz_srv v;	/* the server's owner state */
	struct buf clog;	/* lines the client saw */
	size_t bulk_n;		/* BULK size: whole lines of sz_data */
	size_t bulk_got;
	bool bulk_on;		/* taking BULK lines */
	bool bulk_ok;
	int closed;
};

/* sz_tls_srv_fn - the server owner, noting when both ends closed */
static void
sz_tls_srv_fn(struct stream *s, enum stream_event ev, void *ctx)
{
	struct sz_tls *t = ctx;

	if (ev == STREAM_CLOSED) {
		snprintf(t->v.reason, sizeof(t->v.reason), "%s",
		    stream_close_reason(s));
		stream_free(&t->v.s);
		if (++t->closed == 2)
			evloop_stop(t->loop);
		return;
	}
	sz_srv_fn(s, ev, &t->v);
}

/* sz_tls_cli_fn - COMPRESS after TLS, NOOP, 1 MB BULK, LOGOUT */
static void
sz_tls_cli_fn(struct stream *s, enum stream_event ev, void *ctx)
{
	struct sz_tls *t = ctx;
	const char *line;
	size_t len;

	switch (ev) {
	case STREAM_TLS_READY:
		stream_puts(s, "a COMPRESS DEFLATE\r\n");
		break;
	case STREAM_INPUT:
		while (stream_get_line(s, &line, &len, NULL) > 0) {
			if (t->bulk_on) {
				if (len == 0 || memcmp(line, sz_data +
				    t->bulk_got, len) != 0)
					t->bulk_ok = false;
				t->bulk_got += len + 2;
				t->bulk_on = t->bulk_got < t->bulk_n;
				continue;
			}
			buf_printf(&t->clog, "%s%s\n",
			    stream_is_compressed(s) ? "z:" : "", line);
			if (strcmp(line, "a OK DEFLATE active") == 0) {
				stream_compress_start(s);
				stream_printf(s, "b NOOP\r\nc BULK %zu\r\n",
				    t->bulk_n);
			} else if (strcmp(line, "ok b NOOP") == 0) {
				t->bulk_on = t->bulk_ok = true;
			} else if (strncmp(line, "f OK", 4) == 0) {
				stream_puts(s, "g LOGOUT\r\n");
			}
		}
		break;
	case STREAM_DRAINED:
	case STREAM_TIMEOUT:
		break;
	case STREAM_CLOSED:
		buf_printf(&t->clog, "closed %s\n", stream_close_reason(s));
		stream_free(&t->cli);
		if (++t->closed == 2)
			evloop_stop(t->loop);
		break;
	}
}

/* sz_make_cert - a self-signed EC key and certificate in sz_dir */
static int
sz_make_cert(char *cert, char *key, size_t size)
{
	EVP_PKEY *k;
	X509 *x;
	FILE *f;
	int ok = 0;

	snprintf(cert, size, "%s/cert.pem", sz_dir);
	snprintf(key, size, "%s/key.pem", sz_dir);
	if ((k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")) == NULL)
		return -1;
	if ((x = X509_new()) != NULL &&
	    X509_set_version(x, 2) == 1 &&
	    ASN1_INTEGER_set(X509_get_serialNumber(x), 1) == 1 &&
	    X509_gmtime_adj(X509_getm_notBefore(x), -3600) != NULL &&
	    X509_gmtime_adj(X509_getm_notAfter(x), 86400) != NULL &&
	    X509_set_pubkey(x, k) == 1 &&
	    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN",
	    MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0) == 1 &&
	    X509_set_issuer_name(x, X509_get_subject_name(x)) == 1 &&
	    X509_sign(x, k, EVP_sha256()) > 0) {
		ok = 1;
		if ((f = fopen(cert, "w")) == NULL ||
		    PEM_write_X509(f, x) != 1)
			ok = 0;
		if (f != NULL && fclose(f) != 0)
			ok = 0;
		if ((f = fopen(key, "w")) == NULL ||
		    PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) != 1)
			ok = 0;
		if (f != NULL && fclose(f) != 0)
			ok = 0;
	}
	X509_free(x);
	EVP_PKEY_free(k);
	return ok ? 0 : -1;
}

/* test_tls - COMPRESS inside TLS between two streams */
static void
test_tls(void)
{
	struct stream_limits lim = {
		.max_line = 1024, .max_input = SZ_MAX_INPUT,
		.idle_ms = 20000,
	};
	char cert[256], key[256];
	struct buf why = BUF_INIT;
	SSL_CTX *sctx, *cctx;
	struct sz_tls t;
	struct ev_timer *tm;
	bool hit = false;
	int sp[2];

	memset(&t, 0, sizeof(t));
	buf_init(&t.clog);
	for (t.bulk_n = 1024 * 1024; sz_data[t.bulk_n - 1] != '\n';)
		t.bulk_n++;
	T_ASSERT(sz_make_cert(cert, key, sizeof(cert)) == 0);
	sctx = tls_server_ctx_new(cert, key, &why);
	cctx = tls_client_ctx_new(NULL, &why);
	T_EQ_STR(buf_cstr(&why), "");
	T_ASSERT(sctx != NULL && cctx != NULL);
	T_ASSERT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0);
	t.loop = t.v.loop = evloop_new();
	t.srv = t.v.s = stream_new(t.loop, sp[0], &lim, sz_tls_srv_fn, &t);
	t.cli = stream_new(t.loop, sp[1], &lim, sz_tls_cli_fn, &t);
	stream_starttls(t.v.s, sctx, true, NULL);
	stream_starttls(t.cli, cctx, false, NULL);
	tm = evloop_add_timer(t.loop, 30000, sz_deadline_cb, &hit);
	evloop_run(t.loop);
	if (!hit)
		evloop_cancel_timer(t.loop, &tm);
	if (t.v.s != NULL)
		stream_free(&t.v.s);
	if (t.cli != NULL)
		stream_free(&t.cli);
	evloop_free(&t.loop);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
	T_ASSERT(!hit);
	T_EQ_STR(buf_cstr(&t.clog), "a OK DEFLATE active\n"
	    "z:ok b NOOP\nz:f OK bulk done\nz:* BYE\nclosed eof\n");
	T_ASSERT(t.bulk_ok);
	T_EQ_INT(t.bulk_got, t.bulk_n);
	T_EQ_STR(t.v.reason, "finished");
	buf_free(&t.clog);
	buf_free(&why);
}

/* sz_panic_twice / sz_panic_starttls - what the protocol must refuse */
static void
sz_panic(bool tls)
{
	struct evloop *loop = evloop_new();
	int sp[2];
	struct stream *s;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) < 0)
		_exit(0);	/* "did not die": the test fails */
	s = stream_new(loop, sp[0], NULL, sz_srv_fn, NULL);
	stream_compress_start(s);
	if (tls)
		stream_starttls(s, NULL, true, NULL);
	else
		stream_compress_start(s);
}

/* test_refused - compressing twice and STARTTLS after COMPRESS panic */
static void
test_refused(void)
{
	T_EXPECT_DEATH(sz_panic(false));
	T_EXPECT_DEATH(sz_panic(true));
}

static const struct test_case cases[] = {
	{"codec at every chunk size", test_codec_every_chunk},
	{"codec corrupt input", test_codec_corrupt},
	{"codec memory per session", test_codec_memory},
	{"lines, pipelining, COMPRESSIONACTIVE", test_lines},
	{"backlog before COMPRESS stays plain", test_backlog},
	{"10 MB each way with back-pressure", test_bulk},
	{"decompression bomb", test_bomb},
	{"corrupt input gets BYE", test_corrupt},
	{"COMPRESS inside TLS", test_tls},
	{"compress twice, STARTTLS after COMPRESS", test_refused},
	{0},
};

int
main(void)
{
	sz_make_data();
	return test_run_in(cases, sz_dir);
}
