/*
 * mindex_subs_fuzz - the Maildir's subscriptions file as the mail index
 * reads it for LSUB, LIST (SUBSCRIBED) and every SUBSCRIBE/UNSUBSCRIBE
 * (lib/mail/mindex_folder.c): one name a line, modified UTF-7 or UTF-8,
 * or Dovecot 2's "V\t2" form with tabs between levels. Any tool may have
 * written it.
 *
 * Properties checked: the output is names each ended by '\n', none
 * empty, each well-formed UTF-8 without control bytes, each accepted again
 * as a UTF-8 folder name with the same result, and each encodable as
 * modified UTF-7 (SUBSCRIBE rewrites the file from this list: a name
 * that cannot be written back would make every later SUBSCRIBE fail).
 */
#include <string.h>

#include "base/buf.h"
#include "mail/mindex.h"
#include "mail/mindex_int.h"
#include "mail/mutf7.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf out = BUF_INIT, name = BUF_INIT, enc = BUF_INIT;
	struct buf why = BUF_INIT;
	const char *p, *end, *nl;

	mindex_subs_parse((const char *)data, size, &out);
	FUZZ_CHECK(out.len == 0 || out.data[out.len - 1] == '\n');
	for (p = out.data, end = out.data + out.len; p < end; p = nl + 1) {
		size_t n;

		nl = memchr(p, '\n', (size_t)(end - p));
		FUZZ_CHECK(nl != NULL);
		n = (size_t)(nl - p);
		FUZZ_CHECK(n > 0);
		FUZZ_CHECK(memchr(p, '\0', n) == NULL);
		FUZZ_CHECK(mutf7_utf8_valid(p, n));
		for (size_t i = 0; i < n; i++)
			FUZZ_CHECK((unsigned char)p[i] >= ' ' &&
			    p[i] != 0x7f);
		buf_reset(&name);
		buf_reset(&enc);
		buf_append(&enc, p, n);
		FUZZ_CHECK(mutf7_folder_name(buf_cstr(&enc), true, &name,
		    &why) == 0);
		FUZZ_CHECK(name.len == n && memcmp(name.data, p, n) == 0);
		buf_reset(&enc);
		FUZZ_CHECK(mutf7_encode(p, n, &enc, &why) == 0);
	}
	buf_free(&out);
	buf_free(&name);
	buf_free(&enc);
	buf_free(&why);
	return 0;
}
