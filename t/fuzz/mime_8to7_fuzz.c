/*
 * mime_8to7_fuzz - 8-bit messages to quoted-printable for servers
 * without 8BITMIME (lib/mail/mime_8to7.c), on message bytes a remote
 * client sent.
 *
 * Properties checked:
 *  - a conversion that succeeds leaves no byte over 127;
 *  - the output is at most three times the input and a little;
 *  - a refusal says why;
 *  - 7-bit input comes out byte for byte.
 */
#include <string.h>

#include "base/buf.h"
#include "mail/mime_8to7.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf out = BUF_INIT, why = BUF_INIT;
	const char *p = (const char *)data;

	if (mime_8to7(p, size, &out, &why) == 0) {
		FUZZ_CHECK(!mime_has_8bit(out.data, out.len));
		FUZZ_CHECK(out.len <= 3 * size + 64 * 1001);
		if (!mime_has_8bit(p, size))
			FUZZ_CHECK(out.len == size &&
			    memcmp(out.data, p, size) == 0);
	} else {
		FUZZ_CHECK(why.len > 0);
	}
	buf_free(&out);
	buf_free(&why);
	return 0;
}
