/*
 * mutf7_fuzz - modified UTF-7 (lib/mail/mutf7.c) and folder names.
 *
 * Properties checked:
 *  - what decodes is well-formed UTF-8 and encodes back to the very
 *    bytes it came from (the decoder accepts only the canonical form);
 *  - what encodes decodes back to the UTF-8 it came from;
 *  - a folder name that is accepted maps to a Maildir++ folder of at
 *    most MUTF7_NAME_MAX bytes without '/', and that folder reads back
 *    to the same name.
 */
#include <string.h>

#include "base/buf.h"
#include "mail/mutf7.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf out = BUF_INIT, back = BUF_INIT, why = BUF_INIT;
	struct buf disk = BUF_INIT;
	char *s;

	if (size > 2 * MUTF7_INPUT_MAX)
		return 0;
	s = fuzz_cstr(data, size);
	if (mutf7_decode(s, size, &out, &why) == 0) {
		FUZZ_CHECK(mutf7_utf8_valid(out.data, out.len));
		FUZZ_CHECK(mutf7_encode(out.data, out.len, &back, &why) == 0);
		FUZZ_CHECK(back.len == size && memcmp(back.data, s, size) == 0);
	} else {
		FUZZ_CHECK(why.len > 0);
	}
	buf_reset(&out);
	buf_reset(&back);
	if (mutf7_encode(s, size, &out, &why) == 0) {
		FUZZ_CHECK(mutf7_utf8_valid(s, size));
		FUZZ_CHECK(mutf7_decode(out.data, out.len, &back, &why) == 0);
		FUZZ_CHECK(back.len == size && memcmp(back.data, s, size) == 0);
	}
	for (int utf8 = 0; utf8 < 2; utf8++) {
		buf_reset(&out);
		buf_reset(&back);
		if (mutf7_folder_name(s, utf8, &out, &why) < 0)
			continue;
		FUZZ_CHECK(mutf7_folder_disk(buf_cstr(&out), &disk,
		    &why) == 0);
		FUZZ_CHECK(disk.len <= MUTF7_NAME_MAX);
		FUZZ_CHECK(strchr(buf_cstr(&disk), '/') == NULL);
		if (disk.len > 0) {
			FUZZ_CHECK(mutf7_folder_from_disk(buf_cstr(&disk),
			    &back, &why) == 0);
			FUZZ_CHECK(strcmp(buf_cstr(&back),
			    buf_cstr(&out)) == 0);
		}
	}
	buf_free(&out);
	buf_free(&back);
	buf_free(&why);
	buf_free(&disk);
	free(s);
	return 0;
}
