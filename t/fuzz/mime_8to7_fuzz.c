/*
 * mime_8to7_fuzz - 8-bit messages to quoted-printable for servers
 * without 8BITMIME (lib/mail/mime_8to7.c), on message bytes a remote
 * client sent.
 *
 * Properties checked:
 *  - a conversion that succeeds leaves no byte over 127;
 *  - the output is at most three times the input and a little;
 *  - a refusal says why;
 *  - 7-bit input comes out byte for byte;
 *  - input whose CR and LF come only as CRLF pairs (what smtpd queues)
 *    comes out so too: remote sends the output to another server, where
 *    a bare CR or LF could end the data early (SMTP smuggling).
 */
#include <string.h>

#include "base/buf.h"
#include "mail/mime_8to7.h"
#include "fuzz.h"

/* fuzz_crlf_only - every CR and LF of p[0..n) is part of a CRLF pair */
static bool
fuzz_crlf_only(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\r' && (i + 1 == n || p[i + 1] != '\n'))
			return false;
		if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
			return false;
	}
	return true;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf out = BUF_INIT, why = BUF_INIT;
	const char *p = (const char *)data;

	if (mime_8to7(p, size, &out, &why) == 0) {
		FUZZ_CHECK(!mime_has_8bit(out.data, out.len));
		FUZZ_CHECK(out.len <= 3 * size + 64 * 1001);
		if (fuzz_crlf_only(p, size))
			FUZZ_CHECK(fuzz_crlf_only(out.data, out.len));
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
