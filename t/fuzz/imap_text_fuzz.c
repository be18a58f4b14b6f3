/*
 * imap_text_fuzz - the text rules SEARCH and SORT apply to message bytes
 * (imapd/imap_text.c): Unicode case folding of decoded header and body
 * text, and the RFC 5322 Date: parser SENT* and SORT DATE use. Both see
 * whatever a sender put in a message.
 *
 * Properties checked: folding is idempotent (Unicode's stability rule for
 * case folding; a needle folded once must match text folded once);
 * well-formed UTF-8 folds to well-formed UTF-8 and ASCII to the same
 * length; folding two halves cut at a code point boundary gives the
 * folding of the whole (SEARCH folds body text in pieces); an accepted
 * date has a month day that exists and a zone within +-99:59.
 */
#include <string.h>

#include "base/buf.h"
#include "mail/mutf7.h"
#include "imap_text.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct buf a = BUF_INIT, b = BUF_INIT, c = BUF_INIT;
	struct imap_text_date d;
	bool ascii = true;
	size_t cut;

	imap_text_fold(&a, s, size);
	imap_text_fold(&b, a.data, a.len);
	FUZZ_CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
	if (mutf7_utf8_valid(s, size))
		FUZZ_CHECK(mutf7_utf8_valid(a.data, a.len));
	for (size_t i = 0; i < size; i++)
		if (data[i] >= 0x80)
			ascii = false;
	if (ascii)
		FUZZ_CHECK(a.len == size);
	/* the middle, moved back to a code point's first byte */
	cut = size / 2;
	while (cut > 0 && (data[cut] & 0xc0) == 0x80)
		cut--;
	if (mutf7_utf8_valid(s, size)) {
		imap_text_fold(&c, s, cut);
		imap_text_fold(&c, s + cut, size - cut);
		FUZZ_CHECK(a.len == c.len && memcmp(a.data, c.data, a.len) ==
		    0);
	}
	if (imap_text_date_parse(s, size, &d) == 0) {
		int m = d.ymd / 100 % 100, day = d.ymd % 100;

		FUZZ_CHECK(m >= 1 && m <= 12 && day >= 1 && day <= 31);
		FUZZ_CHECK(d.zone > -6000 && d.zone < 6000);
	}
	buf_free(&a);
	buf_free(&b);
	buf_free(&c);
	return 0;
}
