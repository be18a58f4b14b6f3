/*
 * stream_deflate - the DEFLATE codec under a compressed stream (IMAP
 * COMPRESS=DEFLATE, RFC 4978): raw deflate (no zlib or gzip header, a
 * 32 KiB window accepted from the peer) in both directions.
 *
 * The stream (stream.c, stream_compress_start) owns one of these per
 * connection; this file knows nothing of sockets, so the fuzz target and
 * the tests drive it directly.
 *
 * Input: the peer's compressed bytes are queued with stream_deflate_feed()
 * and inflated with stream_deflate_inflate() into a caller's array of a
 * size the caller picks: the caller's free input room. Output never
 * exceeds that size, so a decompression bomb (a few bytes that inflate to
 * gigabytes) can only make the caller inflate again after it has taken
 * what came before: memory stays bounded by the caller's buffer, the
 * 32 KiB inflate window and the queued compressed bytes (which the
 * caller bounds by feeding only when stream_deflate_pending() is false).
 * Corrupt data, or data after the end of the compressed stream, is an
 * error that sticks: every later call fails with the same text.
 *
 * Output: stream_deflate_deflate() compresses and ends with a sync flush,
 * so the peer can inflate everything handed to it so far at once; one
 * call per batch of replies going to the transport.
 *
 * Memory: the compressor uses a smaller window and hash than zlib's
 * defaults (see STREAM_DEFLATE_WBITS/MEMLEVEL in the .c): that is what an
 * idle compressed session costs, every session, all the time.
 * stream_deflate_memory() reports the bytes zlib holds. Allocation failure
 * is fatal (mem.h); zlib state errors are bugs and panic.
 */
#ifndef BASE_STREAM_DEFLATE_H
#define BASE_STREAM_DEFLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct buf;
struct stream_deflate;

/* stream_deflate_new - a codec ready for both directions */
struct stream_deflate *stream_deflate_new(void);
/* stream_deflate_free - release it and its zlib state; *z = NULL */
void stream_deflate_free(struct stream_deflate **z);

/* stream_deflate_feed - queue n compressed input bytes (copied) */
void stream_deflate_feed(struct stream_deflate *z, const void *p, size_t n);
/* stream_deflate_pending - true while queued input is left or the last
 * inflate filled its array (zlib may hold more output) */
bool stream_deflate_pending(const struct stream_deflate *z);
/* stream_deflate_queued - compressed input bytes queued, not inflated */
size_t stream_deflate_queued(const struct stream_deflate *z);
/* stream_deflate_inflate - inflate queued input into out, at most size
 * bytes: the count written (0: nothing yet), or -1 with the reason in
 * why (corrupt data; sticky) */
ssize_t stream_deflate_inflate(struct stream_deflate *z, void *out,
    size_t size, struct buf *why);

/* stream_deflate_deflate - compress n bytes and sync-flush, appending
 * the compressed bytes to out */
void stream_deflate_deflate(struct stream_deflate *z, const void *p,
    size_t n, struct buf *out);

/* stream_deflate_memory - bytes zlib and the queue of compressed input
 * hold for this codec now */
size_t stream_deflate_memory(const struct stream_deflate *z);

#endif
