/*
 * stream - a buffered, non-blocking connection on an evloop, plain or TLS.
 *
 * The owner creates a stream on a connected fd and gets events through
 * one callback. Input is read into a bounded buffer; the owner takes it
 * as lines (stream_get_line) or raw bytes (stream_peek/stream_consume).
 * Output is queued (stream_write) and flushed as the socket allows.
 *
 * Events:
 *   STREAM_INPUT      new input is buffered (or EOF arrived with input left)
 *   STREAM_TLS_READY  the TLS handshake finished
 *   STREAM_TIMEOUT    the idle or total deadline passed; the owner usually
 *                     writes a reply and calls stream_finish()
 *   STREAM_CLOSED     the stream is done: EOF, error, finished, or TLS
 *                     failure; stream_close_reason() says which. Exactly
 *                     once; the owner must then call stream_free() (it may
 *                     do so inside the callback).
 * Input is delivered only while not paused (stream_pause): a paused stream
 * stops reading from the socket once its buffer holds max_input bytes, so a
 * client that pipelines without reading replies cannot grow memory. The
 * same holds for output: stream_output_pending() lets the owner stop
 * taking input while replies pile up; an owner that left input unconsumed
 * gets STREAM_INPUT again once the output has drained.
 *
 * STARTTLS: stream_starttls() throws away every byte already buffered, so
 * plaintext pipelined behind STARTTLS is never treated as protected input
 * (CVE-2011-0411 class). Implicit TLS is stream_starttls() right after
 * stream_new().
 *
 * COMPRESS (RFC 4978 COMPRESS=DEFLATE; protocol-neutral): after queueing
 * the reply that accepts compression, the owner calls
 * stream_compress_start(). From then on raw DEFLATE runs between the
 * transport and the buffers, inside TLS when there is TLS: the reply
 * already queued goes out uncompressed, everything written later is
 * compressed, and every input byte still buffered behind the command
 * line counts as compressed (the client may pipeline right after its
 * CRLF). Output is sync-flushed each time it is handed to the transport,
 * so every reply reaches the peer without waiting for more. Inflated
 * input is bounded like any other: the codec inflates only into free
 * room of the max_input buffer and the socket is not read while it holds
 * compressed bytes, so a decompression bomb costs CPU, never memory.
 * Corrupt compressed input ends the input: the owner gets one more
 * STREAM_INPUT (with or without buffered lines) in which
 * stream_input_error() says why and stream_eof() is true; it may write a
 * last reply (IMAP: "* BYE") and stream_finish(); otherwise the stream
 * closes with reason "inflate: ...". A compressed stream cannot be
 * compressed again, nor start TLS (both panic): the protocol refuses
 * them first, which in IMAP is
 *
 *	if (stream_is_compressed(st))
 *		"tag NO [COMPRESSIONACTIVE] ..."	(RFC 4978 section 4)
 *	else {
 *		"tag OK DEFLATE active"; stream_compress_start(st);
 *	}
 * and STARTTLS after COMPRESS gets "tag BAD" (RFC 4978 section 4: TLS
 * must come first). pop3d and smtpd have no standard compression.
 * Memory: see stream_deflate.h: zlib holds about 45 KiB for a compressed
 * session, 77 KiB once the peer's data needed inflate's 32 KiB window;
 * stream_compress_memory() says how much now.
 *
 * Lines: a line ends at LF. stream_get_line() strips "\r\n" or "\n" and
 * reports which through *crlf_r. A line longer than max_line gets -1 once;
 * its remainder is then skipped up to the next LF.
 */
#ifndef BASE_STREAM_H
#define BASE_STREAM_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <openssl/ssl.h>

struct evloop;
struct buf;
struct stream;

enum stream_event {
	STREAM_INPUT,
	STREAM_TLS_READY,
	STREAM_TIMEOUT,
	STREAM_DRAINED,		/* asked for with stream_notify_drained */
	STREAM_CLOSED,
};

typedef void stream_event_fn(struct stream *s, enum stream_event ev,
    void *ctx);

struct stream_limits {
	size_t max_line;	/* longest line incl. CRLF, e.g. 2048 */
	size_t max_input;	/* input buffer bound, >= max_line */
	long long idle_ms;	/* no input for this long: STREAM_TIMEOUT */
	long long total_ms;	/* connection older than this: TIMEOUT */
};

/* stream_new - take ownership of connected fd (made non-blocking) */
struct stream *stream_new(struct evloop *loop, int fd,
    const struct stream_limits *lim, stream_event_fn *fn, void *ctx);
/* stream_free - close the fd (TLS close_notify best effort) and free */
void stream_free(struct stream **s);

/* stream_get_line - 1: *line and *len hold one line without its
 * terminator, NUL-terminated (valid until the next stream call); 0: no
 * complete line yet; -1: the line was longer than max_line (its rest will
 * be skipped) */
int stream_get_line(struct stream *s, const char **line, size_t *len,
    bool *crlf_r);
/* stream_peek - the buffered input bytes, without consuming them */
void stream_peek(struct stream *s, const char **p, size_t *n);
/* stream_consume - drop n bytes from the front of the input */
void stream_consume(struct stream *s, size_t n);
/* stream_eof - true once the peer has closed its side */
bool stream_eof(const struct stream *s);
/* stream_input_bytes - input bytes received so far, buffered ones
 * included (after TLS: decrypted bytes; STARTTLS's discard counts;
 * compressed: inflated bytes) */
unsigned long long stream_input_bytes(const struct stream *s);
/* stream_partial_bytes - input bytes since the owner last took some (a
 * whole line from stream_get_line, or bytes with stream_consume),
 * including those of an over-long line the line reader skipped: what a
 * client sent without ending a line, which an owner bounds (the line
 * reader itself skips an over-long line to its LF, however far away
 * that is) */
unsigned long long stream_partial_bytes(const struct stream *s);

/* stream_write - queue n bytes of output */
void stream_write(struct stream *s, const void *p, size_t n);
void stream_puts(struct stream *s, const char *str);
void stream_printf(struct stream *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* stream_vreply - queue one protocol reply line: fmt formatted, cut to
 * STREAM_REPLY_MAX bytes with its CRLF, which is added; logged as
 * "[peer] > line" when msg_verbose */
#define STREAM_REPLY_MAX 2048
void stream_vreply(struct stream *s, const char *peer, const char *fmt,
    va_list ap) __attribute__((format(printf, 3, 0)));
/* stream_output_pending - bytes queued but not yet written */
size_t stream_output_pending(const struct stream *s);
/* stream_notify_drained - one STREAM_DRAINED event, from the loop, once
 * no more than low bytes of output are unsent (at once if that holds
 * now); for owners that stop producing while a slow peer reads */
void stream_notify_drained(struct stream *s, size_t low);
/* stream_finish - flush what is queued, then close (STREAM_CLOSED) */
void stream_finish(struct stream *s);

/* stream_pause - stop (true) or resume (false) STREAM_INPUT delivery;
 * resuming delivers STREAM_INPUT again from the loop if input is buffered */
void stream_pause(struct stream *s, bool paused);
/* stream_set_idle_timeout / stream_set_total_timeout - change deadlines
 * (ms <= 0: none); the total deadline counts from stream_new */
void stream_set_idle_timeout(struct stream *s, long long ms);
void stream_set_total_timeout(struct stream *s, long long ms);
/* stream_set_handshake_timeout - a TLS handshake (stream_starttls) not
 * done within ms of its start closes the stream, with reason "TLS
 * handshake: timed out ..." and no STREAM_TIMEOUT first (nothing can be
 * said in the middle of a handshake); ms <= 0: only the idle and total
 * deadlines. Set before stream_starttls. */
void stream_set_handshake_timeout(struct stream *s, long long ms);

/* stream_starttls - discard buffered input and start a TLS handshake as
 * server (server=true) or client; STREAM_TLS_READY or STREAM_CLOSED follow */
void stream_starttls(struct stream *s, SSL_CTX *ctx, bool server,
    const char *sni);
/* stream_is_tls - true after a completed handshake */
bool stream_is_tls(const struct stream *s);
/* stream_tls_info - append "TLSv1.3 with cipher NAME (256/256 bits)" */
void stream_tls_info(const struct stream *s, struct buf *out);
/* stream_ssl - the SSL object (peer certificate checks), or NULL */
SSL *stream_ssl(const struct stream *s);

/* stream_compress_start - from now on deflate output (after what is
 * queued) and inflate input (including what is buffered); panics if
 * compressed already or in the middle of STARTTLS */
void stream_compress_start(struct stream *s);
/* stream_is_compressed - true after stream_compress_start */
bool stream_is_compressed(const struct stream *s);
/* stream_input_error - why the compressed input failed (corrupt data),
 * or NULL; once set, stream_eof() is true */
const char *stream_input_error(const struct stream *s);
/* stream_compress_memory - bytes the compression state holds now
 * (zlib's state, the buffers of compressed output and input), 0 if none */
size_t stream_compress_memory(const struct stream *s);

/* stream_buffer_memory - bytes the input and output buffers hold now
 * (their capacity; TLS and compression state not counted). 0 once a
 * stream with nothing buffered has waited for its peer for a second:
 * an idle session keeps no buffer (a busy one keeps small ones between
 * reads). */
size_t stream_buffer_memory(const struct stream *s);

/* stream_close_reason - why STREAM_CLOSED: "eof", "finished", "timeout",
 * or an error text such as "read: Connection reset by peer" or
 * "TLS handshake: ..." ("" while the stream is open) */
const char *stream_close_reason(const struct stream *s);
/* stream_fd - the descriptor (for getpeername and logs) */
int stream_fd(const struct stream *s);

#endif
