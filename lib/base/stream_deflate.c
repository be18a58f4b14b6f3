/*
 * stream_deflate - raw DEFLATE in both directions for compressed streams
 * (RFC 4978), on zlib, with bounded inflate output and counted memory.
 *
 * zlib allocates through our own functions, which add a small header to
 * each block so that stream_deflate_memory() can say exactly what one
 * session costs.
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/stream_deflate.h"

/*
 * The compressor's window and hash size. zlib's defaults (15, 8) cost
 * 262 KiB per session, held for the whole session; 12 and 5 cost 38 KiB
 * (stream_deflate_test prints the figures). A smaller window finds fewer
 * repeats far back (text with long-range repeats: 34% instead of 25% of
 * its size), but IMAP replies repeat mostly within a few KiB, and ten
 * thousand idle sessions cost 0.4 GB instead of 2.6 GB. The decompressor
 * must accept any window a client uses, so it has the full 32 KiB one
 * (zlib allocates that window only once output is first produced).
 */
#define STREAM_DEFLATE_WBITS 12
#define STREAM_DEFLATE_MEMLEVEL 5
#define STREAM_DEFLATE_LEVEL 6
#define STREAM_DEFLATE_OUT 16384	/* output grows by this much */
#define STREAM_DEFLATE_KEEP 4096	/* largest empty input buffer kept */

struct stream_deflate {
	z_stream in;		/* inflate */
	z_stream out;		/* deflate */
	struct buf zin;		/* queued compressed input */
	size_t zin_off;		/* bytes of zin already inflated */
	bool full;		/* the last inflate filled its array */
	bool ended;		/* the peer's stream ended (final block) */
	bool failed;		/* corrupt input: every call fails */
	bool told;		/* an inflate call returned -1 */
	struct buf error;	/* why, once failed */
	size_t mem;		/* bytes zlib holds */
};

/* zlib block header: room for the size, aligned for any type */
union stream_deflate_hdr {
	size_t size;
	max_align_t align;
};

/* stream_deflate_alloc - zlib allocator that counts what it hands out */
static voidpf
stream_deflate_alloc(voidpf opaque, uInt items, uInt size)
{
	struct stream_deflate *z = opaque;
	union stream_deflate_hdr *h;
	size_t n;

	if (size != 0 && items > (SIZE_MAX - sizeof(*h)) / size)
		return Z_NULL;
	n = (size_t)items * size;
	h = xmalloc(sizeof(*h) + n);
	h->size = n;
	z->mem += n;
	return h + 1;
}

/* stream_deflate_release - zlib free, uncounting the block */
static void
stream_deflate_release(voidpf opaque, voidpf p)
{
	struct stream_deflate *z = opaque;
	union stream_deflate_hdr *h;

	if (p == Z_NULL)
		return;
	h = (union stream_deflate_hdr *)p - 1;
	z->mem -= h->size;
	free(h);
}

/* stream_deflate_new - a codec ready for both directions */
struct stream_deflate *
stream_deflate_new(void)
{
	struct stream_deflate *z = xcalloc(1, sizeof(*z));
	int r;

	buf_init(&z->zin);
	buf_init(&z->error);
	z->in.zalloc = z->out.zalloc = stream_deflate_alloc;
	z->in.zfree = z->out.zfree = stream_deflate_release;
	z->in.opaque = z->out.opaque = z;
	/* -15: raw deflate, any window the peer may have used */
	if ((r = inflateInit2(&z->in, -15)) != Z_OK)
		msg_fatal("inflateInit2: %s", zError(r));
	if ((r = deflateInit2(&z->out, STREAM_DEFLATE_LEVEL, Z_DEFLATED,
	    -STREAM_DEFLATE_WBITS, STREAM_DEFLATE_MEMLEVEL,
	    Z_DEFAULT_STRATEGY)) != Z_OK)
		msg_fatal("deflateInit2: %s", zError(r));
	return z;
}

/* stream_deflate_free - release the codec and its zlib state */
void
stream_deflate_free(struct stream_deflate **zp)
{
	struct stream_deflate *z = *zp;

	if (z == NULL)
		return;
	*zp = NULL;
	(void)inflateEnd(&z->in);
	(void)deflateEnd(&z->out);
	if (z->mem != 0)
		msg_warn("stream_deflate_free: zlib kept %zu bytes", z->mem);
	buf_free(&z->zin);
	buf_free(&z->error);
	free(z);
}

/* stream_deflate_feed - queue compressed input */
void
stream_deflate_feed(struct stream_deflate *z, const void *p, size_t n)
{
	if (z->zin_off > 0) {
		buf_consume(&z->zin, z->zin_off);
		z->zin_off = 0;
	}
	buf_append(&z->zin, p, n);
}

/* stream_deflate_queued - compressed bytes not inflated yet */
size_t
stream_deflate_queued(const struct stream_deflate *z)
{
	return z->zin.len - z->zin_off;
}

/* stream_deflate_pending - more output may come without more input */
bool
stream_deflate_pending(const struct stream_deflate *z)
{
	if (z->failed)
		return !z->told;	/* the error is still to be said */
	return stream_deflate_queued(z) > 0 || z->full;
}

/* stream_deflate_fail - remember why the input is bad; -1, or made if
 * bytes inflated before the bad ones are still to be returned (the
 * error comes with the next call) */
static ssize_t
stream_deflate_fail(struct stream_deflate *z, struct buf *why,
    const char *text, size_t made)
{
	if (!z->failed) {
		z->failed = true;
		buf_set(&z->error, text);
	}
	if (made > 0)
		return (ssize_t)made;
	z->told = true;
	buf_puts(why, buf_cstr(&z->error));
	return -1;
}

/* stream_deflate_inflate - inflate queued input into at most size bytes */
ssize_t
stream_deflate_inflate(struct stream_deflate *z, void *out, size_t size,
    struct buf *why)
{
	size_t avail = stream_deflate_queued(z), took, made;
	int r;

	if (z->failed)
		return stream_deflate_fail(z, why, "", 0);
	if (z->ended && avail > 0)
		return stream_deflate_fail(z, why,
		    "data after the end of the compressed stream", 0);
	if (size == 0 || (avail == 0 && !z->full) || z->ended)
		return 0;
	/* uInt counts: one call takes at most what fits */
	if (size > UINT_MAX)
		size = UINT_MAX;
	if (avail > UINT_MAX)
		avail = UINT_MAX;
	z->in.next_in = (Bytef *)z->zin.data + z->zin_off;
	z->in.avail_in = (uInt)avail;
	z->in.next_out = out;
	z->in.avail_out = (uInt)size;
	r = inflate(&z->in, Z_SYNC_FLUSH);
	took = avail - z->in.avail_in;
	made = size - z->in.avail_out;
	z->zin_off += took;
	if (z->zin_off == z->zin.len) {
		/* an idle session keeps no more than a small buffer */
		if (z->zin.cap > STREAM_DEFLATE_KEEP)
			buf_free(&z->zin);
		else
			buf_reset(&z->zin);
		z->zin_off = 0;
	}
	z->full = z->in.avail_out == 0;
	switch (r) {
	case Z_OK:
		break;
	case Z_BUF_ERROR:
		/* no progress possible: needs more input (or room) */
		z->full = false;
		break;
	case Z_STREAM_END:
		/*
		 * The peer ended its compressed stream (a final block):
		 * nothing may follow, as RFC 4978 has no way to start
		 * another one.
		 */
		z->full = false;
		z->ended = true;
		if (stream_deflate_queued(z) > 0)
			return stream_deflate_fail(z, why,
			    "data after the end of the compressed stream",
			    made);
		break;
	case Z_DATA_ERROR:
		{
			struct buf t = BUF_INIT;
			ssize_t ret;

			buf_printf(&t, "corrupt compressed data: %s",
			    z->in.msg != NULL ? z->in.msg : "invalid");
			ret = stream_deflate_fail(z, why, buf_cstr(&t), made);
			buf_free(&t);
			return ret;
		}
	default:
		msg_panic("inflate: %s", zError(r));
	}
	return (ssize_t)made;
}

/* stream_deflate_deflate - compress n bytes with a sync flush */
void
stream_deflate_deflate(struct stream_deflate *z, const void *p, size_t n,
    struct buf *out)
{
	const Bytef *next = p;
	size_t left = n;

	/* uInt counts: feed a large batch in slices */
	do {
		uInt slice = left > UINT_MAX / 2 ? UINT_MAX / 2 : (uInt)left;
		int flush = slice == left ? Z_SYNC_FLUSH : Z_NO_FLUSH;
		int r;

		z->out.next_in = (Bytef *)next;
		z->out.avail_in = slice;
		do {
			size_t room;

			buf_reserve(out, STREAM_DEFLATE_OUT);
			room = out->cap - out->len - 1;
			if (room > UINT_MAX)
				room = UINT_MAX;
			z->out.next_out = (Bytef *)out->data + out->len;
			z->out.avail_out = (uInt)room;
			r = deflate(&z->out, flush);
			if (r != Z_OK && r != Z_BUF_ERROR)
				msg_panic("deflate: %s", zError(r));
			out->len += room - z->out.avail_out;
			out->data[out->len] = '\0';
		} while (z->out.avail_out == 0 || z->out.avail_in > 0);
		next += slice;
		left -= slice;
	} while (left > 0);
}

/* stream_deflate_memory - bytes zlib and the input queue hold */
size_t
stream_deflate_memory(const struct stream_deflate *z)
{
	return z->mem + z->zin.cap;
}
