/*
 * preview_fuzz - the RFC 8970 preview extractor (lib/mail/preview.c),
 * fed an untrusted message as it lies in a Maildir file, and the same
 * bytes as a decoded body, plain and HTML.
 *
 * Properties checked, for every result:
 *  - well-formed UTF-8 without CR, LF, NUL, other C0 controls or DEL;
 *  - at most PREVIEW_CHARS characters and PREVIEW_MAX_BYTES bytes;
 *  - no space at either end, never two spaces in a row.
 */
#include <string.h>

#include "base/buf.h"
#include "mail/charset.h"
#include "mail/mime.h"
#include "mail/preview.h"
#include "fuzz.h"

/* check - the properties of one preview */
static void
check(const struct buf *out)
{
	size_t chars = 0;

	FUZZ_CHECK(charset_utf8_valid(out->data, out->len));
	FUZZ_CHECK(out->len <= PREVIEW_MAX_BYTES);
	for (size_t i = 0; i < out->len; i++) {
		unsigned char c = (unsigned char)out->data[i];

		FUZZ_CHECK(c >= 0x20 && c != 0x7f);
		if ((c & 0xc0) != 0x80)
			chars++;
		if (c == ' ')
			FUZZ_CHECK(i > 0 && i + 1 < out->len &&
			    out->data[i + 1] != ' ');
	}
	FUZZ_CHECK(chars <= PREVIEW_CHARS);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mime_message *m = mime_parse((const char *)data, size);
	struct buf out = BUF_INIT;

	preview_make(m, &out);
	check(&out);
	mime_free(&m);
	buf_reset(&out);
	preview_text((const char *)data, size, NULL, 1, &out);
	check(&out);
	buf_reset(&out);
	preview_text((const char *)data, size, "iso-8859-1", 0, &out);
	check(&out);
	buf_free(&out);
	return 0;
}
