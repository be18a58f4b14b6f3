/*
 * mindex_uidlist_fuzz - Dovecot's dovecot-uidlist as the mail index reads
 * it when it builds a folder's index (lib/mail/mindex_sync.c). The file
 * sits in a user's Maildir, where any tool may have written anything.
 *
 * Properties checked, for an accepted file:
 *  - UIDVALIDITY is not 0 and UIDNEXT is above every UID it gives;
 *  - every UID is in 1..2^32-2 and every base name is non-empty, has no
 *    '/', ' ' or ':' and does not start with '.';
 *  - the seed is sorted by base name (lookups are binary searches).
 */
#include <string.h>

#include "base/buf.h"
#include "mail/mindex.h"
#include "mail/mindex_int.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mindex_seed seed;

	memset(&seed, 0, sizeof(seed));
	if (mindex_uidlist_parse((const char *)data, size, &seed) == 1) {
		FUZZ_CHECK(seed.uidvalidity != 0);
		for (size_t i = 0; i < seed.n; i++) {
			const char *b = seed.v[i].base;

			FUZZ_CHECK(seed.v[i].uid != 0 &&
			    seed.v[i].uid < UINT32_MAX);
			FUZZ_CHECK(seed.v[i].uid < seed.uidnext);
			FUZZ_CHECK(*b != '\0' && *b != '.');
			FUZZ_CHECK(strpbrk(b, "/ :") == NULL);
			if (i > 0)
				FUZZ_CHECK(strcmp(seed.v[i - 1].base, b) <= 0);
		}
	}
	mindex_seed_free(&seed);
	return 0;
}
