/*
 * srs_fuzz - SRS addresses (lib/mail/srs.c): smtpd reverses the RCPT TO
 * of a bounce, which anyone can send.
 *
 * The first byte moves the clock by up to 255 days; the rest is an
 * address. Properties checked:
 *  - reversing gives 1 (with a result no longer than the input plus
 *    "SRS0"), 0 (nothing written) or -1 with a reason;
 *  - forwarding the input as a sender and reversing it gives the input
 *    back for an ordinary address, and reverses at all for an SRS one;
 *    a domain holding '=' is never rewritten.
 */
#include <string.h>

#include "base/buf.h"
#include "mail/srs.h"
#include "fuzz.h"

static const struct srs_key fuzz_key = {
	(const unsigned char *)"fuzz-secret-fuzz-secret-32-bytes", 32,
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf out = BUF_INIT, why = BUF_INIT, back = BUF_INIT;
	time_t now;
	char *s;
	int r;

	if (size < 1)
		return 0;
	now = (time_t)1700000000 + (time_t)data[0] * 86400;
	s = fuzz_cstr(data + 1, size - 1);

	r = srs_reverse(&fuzz_key, now, s, &out, &why);
	FUZZ_CHECK(r >= -1 && r <= 1);
	if (r == 1)
		FUZZ_CHECK(out.len <= strlen(s) + 4);
	else if (r == 0)
		FUZZ_CHECK(out.len == 0);
	else
		FUZZ_CHECK(why.len > 0);

	buf_reset(&out);
	buf_reset(&why);
	if (srs_forward(&fuzz_key, now, s, "srs.test", &out) == 1) {
		const char *at = strrchr(s, '@');

		FUZZ_CHECK(srs_is_srs(buf_cstr(&out)));
		r = srs_reverse(&fuzz_key, now, buf_cstr(&out), &back, &why);
		FUZZ_CHECK(r == 1);
		FUZZ_CHECK(at != NULL && strchr(at + 1, '=') == NULL);
		if (!srs_is_srs(s))
			FUZZ_CHECK(strcmp(buf_cstr(&back), s) == 0);
	}
	buf_free(&out);
	buf_free(&why);
	buf_free(&back);
	free(s);
	return 0;
}
