/*
 * pop3_sizes_fuzz - pop3d's size cache parser (pop3d_sizes.c): the file
 * <maildir>/herald-sizes is written by the vmail user, so its bytes are
 * untrusted.
 *
 * Checked: the first byte picks a chunk size, and feeding the rest in
 * chunks of it gives the same verdict and the same entries as feeding it
 * whole; an accepted cache holds only entries within their bounds, and
 * its formatted text parses back to the same text (a round trip).
 */
#include <string.h>

#include "base/buf.h"
#include "pop3d.h"
#include "fuzz.h"

/* parse - feed data[0..size) in chunks of step; the verdict */
static int
parse(struct pop3d_sizes *c, const uint8_t *data, size_t size, size_t step)
{
	pop3d_sizes_init(c);
	for (size_t off = 0; off < size; off += step)
		pop3d_sizes_feed(c, (const char *)data + off,
		    size - off < step ? size - off : step);
	return pop3d_sizes_end(c);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf a = BUF_INIT, b = BUF_INIT, again = BUF_INIT;
	struct pop3d_sizes whole, chunked, back;
	size_t step;
	int r;

	if (size < 1)
		return 0;
	step = (size_t)data[0] % 64 + 1;
	data++;
	size--;
	r = parse(&whole, data, size, size ? size : 1);
	FUZZ_CHECK(parse(&chunked, data, size, step) == r);
	FUZZ_CHECK(whole.n == chunked.n);
	pop3d_sizes_format(&whole, &a);
	pop3d_sizes_format(&chunked, &b);
	FUZZ_CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
	if (r < 0) {
		FUZZ_CHECK(whole.n == 0);
	} else {
		for (size_t i = 0; i < whole.n; i++) {
			const struct pop3d_size_ent *e = &whole.ent[i];

			FUZZ_CHECK(e->fsize >= 0 && e->wsize >= e->fsize &&
			    e->wsize <= 2 * e->fsize);
			FUZZ_CHECK(e->mtime_sec >= 0 && e->mtime_nsec >= 0 &&
			    e->mtime_nsec <= 999999999);
			FUZZ_CHECK(pop3d_sizes_name_ok(e->base,
			    strlen(e->base)));
		}
		FUZZ_CHECK(parse(&back, (const uint8_t *)a.data, a.len,
		    a.len) == 0);
		pop3d_sizes_format(&back, &again);
		FUZZ_CHECK(again.len == a.len &&
		    memcmp(again.data, a.data, a.len) == 0);
		pop3d_sizes_free(&back);
	}
	pop3d_sizes_free(&whole);
	pop3d_sizes_free(&chunked);
	buf_free(&a);
	buf_free(&b);
	buf_free(&again);
	return 0;
}
