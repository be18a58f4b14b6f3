/*
 * addr_fuzz - RFC 5321 path and mailbox syntax (lib/mail/addr.c) and
 * xtext (RFC 3461).
 *
 * Properties checked:
 *  - an accepted path, written out again in external form, parses back
 *    to the same internal address (what herald writes into a DSN or an
 *    SMTP command it can read itself), and is no longer than the text it
 *    came from plus the brackets a lenient client left out;
 *  - an internal address stays within the RFC 5321 length bounds;
 *  - xtext: decoding what was encoded gives the original bytes.
 */
#include <string.h>

#include "base/buf.h"
#include "mail/addr.h"
#include "fuzz.h"

/* round_trip - external form of addr parses back to addr */
static void
round_trip(const char *addr, unsigned flags, size_t consumed)
{
	struct buf ext = BUF_INIT, again = BUF_INIT, why = BUF_INIT;
	size_t used = 0;

	buf_putc(&ext, '<');
	addr_externalize(&ext, addr);
	buf_putc(&ext, '>');
	FUZZ_CHECK(ext.len <= consumed + 2);
	FUZZ_CHECK(addr_parse_path(ext.data, ext.len,
	    flags & ~ADDR_LENIENT, &again, &used, &why) == 0);
	FUZZ_CHECK(used == ext.len);
	FUZZ_CHECK(strcmp(buf_cstr(&again), addr) == 0);
	buf_free(&ext);
	buf_free(&again);
	buf_free(&why);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf out = BUF_INIT, why = BUF_INIT, x = BUF_INIT;
	unsigned flags;
	size_t used = 0;
	char *s;

	if (size < 1)
		return 0;
	flags = data[0] & (ADDR_ALLOW_NULL | ADDR_ALLOW_UTF8 | ADDR_LENIENT);
	s = fuzz_cstr(data + 1, size - 1);
	size -= 1;

	if (addr_parse_path(s, size, flags, &out, &used, &why) == 0) {
		const char *addr = buf_cstr(&out);
		const char *at = strrchr(addr, '@');

		FUZZ_CHECK(used <= size);
		FUZZ_CHECK(strlen(addr) == out.len);
		FUZZ_CHECK(out.len <= ADDR_MAX_PATH);
		if (at != NULL)
			FUZZ_CHECK(strlen(at + 1) <= ADDR_MAX_DOMAIN);
		if (!(flags & ADDR_ALLOW_UTF8))
			FUZZ_CHECK(!addr_is_utf8(addr));
		if (out.len > 0)
			round_trip(addr, flags, used);
	} else {
		FUZZ_CHECK(why.len > 0);
	}
	buf_reset(&out);
	buf_reset(&why);
	if (addr_parse_mailbox(s, size, flags, &out, &why) == 0)
		FUZZ_CHECK(out.len <= ADDR_MAX_PATH);

	/* xtext both ways */
	buf_reset(&out);
	if (xtext_decode(s, size, &out) == 0) {
		xtext_encode(buf_cstr(&out), &x);
		buf_reset(&why);
		FUZZ_CHECK(xtext_decode(x.data, x.len, &why) == 0);
		FUZZ_CHECK(strcmp(buf_cstr(&why), buf_cstr(&out)) == 0);
	}
	buf_free(&out);
	buf_free(&why);
	buf_free(&x);
	free(s);
	return 0;
}
