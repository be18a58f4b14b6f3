/*
 * inflate_fuzz - the inflate side of the COMPRESS=DEFLATE layer
 * (lib/base/stream_deflate.c): after COMPRESS every byte an IMAP client
 * sends goes through it, so its input is untrusted.
 *
 * The first byte picks the chunk size the compressed bytes arrive in and
 * the size of the array inflate may fill (as the stream gives it only its
 * free input room). Checked: no call writes more than it was allowed; the
 * codec is fed only when it says it has nothing pending and then always
 * makes progress; the chunked run gives the same bytes and the same
 * verdict as the whole input fed in one piece into a large array; zlib's
 * memory stays within a session's bound; and the codec's own deflate of
 * the input round-trips through a fresh codec.
 */
#include <string.h>
#include <sys/types.h>

#include "base/buf.h"
#include "base/stream_deflate.h"
#include "fuzz.h"

#define FUZZ_OUT_MAX (1u << 20)		/* a bomb: stop after this */
#define FUZZ_MEM_MAX (128u * 1024)	/* zlib state of one session */

/* run - inflate data in chunks of step into arrays of room bytes; the
 * inflated bytes in out (at most FUZZ_OUT_MAX), -1 if corrupt */
static int
run(const uint8_t *data, size_t size, size_t step, size_t room,
    struct buf *out)
{
	static char arr[1 << 16];
	struct stream_deflate *z = stream_deflate_new();
	struct buf why = BUF_INIT;
	size_t off = 0;
	int rc = 0;

	while (out->len < FUZZ_OUT_MAX) {
		ssize_t r;

		if (!stream_deflate_pending(z)) {
			size_t n;

			if (off == size)
				break;
			n = size - off < step ? size - off : step;
			stream_deflate_feed(z, data + off, n);
			off += n;
		}
		r = stream_deflate_inflate(z, arr, room, &why);
		if (r < 0) {
			FUZZ_CHECK(why.len > 0);
			FUZZ_CHECK(!stream_deflate_pending(z));
			rc = -1;
			break;
		}
		FUZZ_CHECK((size_t)r <= room);
		buf_append(out, arr, (size_t)r);
		FUZZ_CHECK(stream_deflate_memory(z) <= FUZZ_MEM_MAX);
		/* pending and nothing made: only if the input ran out */
		FUZZ_CHECK(r > 0 || !stream_deflate_pending(z) ||
		    stream_deflate_queued(z) == 0);
	}
	stream_deflate_free(&z);
	buf_free(&why);
	return rc;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf whole = BUF_INIT, chunked = BUF_INIT, z = BUF_INIT;
	struct buf back = BUF_INIT;
	struct stream_deflate *d;
	size_t step, room;
	int rw, rc;

	if (size < 1)
		return 0;
	step = (size_t)(data[0] & 0x0f) * 7 + 1;
	room = (size_t)(data[0] >> 4) * 97 + 1;
	data++;
	size--;
	rw = run(data, size, size ? size : 1, 1 << 16, &whole);
	rc = run(data, size, step, room, &chunked);
	if (whole.len < FUZZ_OUT_MAX && chunked.len < FUZZ_OUT_MAX) {
		FUZZ_CHECK(rw == rc);
		FUZZ_CHECK(whole.len == chunked.len &&
		    memcmp(whole.data, chunked.data, whole.len) == 0);
	}

	/* our deflate of these bytes inflates back to them */
	d = stream_deflate_new();
	stream_deflate_deflate(d, data, size, &z);
	stream_deflate_free(&d);
	FUZZ_CHECK(run((const uint8_t *)z.data, z.len, 4096, 4096,
	    &back) == 0);
	FUZZ_CHECK(back.len == size && memcmp(back.data, data, size) == 0);

	buf_free(&whole);
	buf_free(&chunked);
	buf_free(&z);
	buf_free(&back);
	return 0;
}
