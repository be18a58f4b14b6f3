/*
 * mindex_record_fuzz - the mail index's record decoders
 * (lib/mail/mindex.c): a damaged index must be refused, never read past
 * its end or turned into a file name that leaves the folder.
 *
 * Input: one byte choosing the decoder (even: message, odd: folder),
 * then the record.
 * Properties checked:
 *  - an accepted message record has a name without '/' or NUL that does
 *    not start with '.', a nonzero UID and modseq, only known flag bits;
 *    a version 2 record (with the place of its file, new/ or cur/)
 *    encodes back to the very same bytes, a version 1 record (always
 *    cur/) is written as version 2 with the same fields;
 *  - an accepted folder record (version 2) encodes back to the same
 *    bytes; a version 1 record is written as version 2 with the same
 *    fields;
 *  - a refused record always says why.
 */
#include <string.h>

#include "base/buf.h"
#include "mail/mindex.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf why = BUF_INIT, again = BUF_INIT;

	if (size < 1)
		return 0;
	if ((data[0] & 1) == 0) {
		struct mindex_msg m;

		if (mindex_msg_decode(data + 1, size - 1, &m, &why) == 0) {
			FUZZ_CHECK(m.uid != 0 && m.modseq != 0);
			FUZZ_CHECK((m.flags & ~MINDEX_F_ALL) == 0);
			FUZZ_CHECK(m.name[0] != '\0' && m.name[0] != '.');
			FUZZ_CHECK(strchr(m.name, '/') == NULL);
			FUZZ_CHECK(strlen(m.name) <= MINDEX_NAME_MAX);
			struct mindex_msg g;

			mindex_msg_encode(&m, &again);
			if (data[1] == 2) {
				FUZZ_CHECK(again.len == size - 1 &&
				    memcmp(again.data, data + 1,
				    size - 1) == 0);
			} else {
				FUZZ_CHECK(!m.in_new);
				FUZZ_CHECK(again.len == size &&
				    memcmp(again.data + 1, data + 2, 44) ==
				    0);
			}
			FUZZ_CHECK(mindex_msg_decode(again.data, again.len,
			    &g, &why) == 0);
			FUZZ_CHECK(g.uid == m.uid && g.flags == m.flags &&
			    g.keywords == m.keywords &&
			    g.modseq == m.modseq && g.size == m.size &&
			    g.wsize == m.wsize &&
			    g.internaldate == m.internaldate &&
			    g.in_new == m.in_new &&
			    strcmp(g.name, m.name) == 0);
		} else {
			FUZZ_CHECK(why.len > 0);
		}
	} else {
		struct mindex_folder_rec f;

		if (mindex_folder_decode(data + 1, size - 1, &f, &why) == 0) {
			struct mindex_folder_rec g;

			FUZZ_CHECK(f.vanished_floor <= f.highestmodseq);
			mindex_folder_encode(&f, &again);
			/* version 4 round-trips; versions 1 to 3 are read,
			 * then written as 4 with the same fields */
			if (data[1] == 4)
				FUZZ_CHECK(again.len == size - 1 &&
				    memcmp(again.data, data + 1,
				    size - 1) == 0);
			FUZZ_CHECK(mindex_folder_decode(again.data, again.len,
			    &g, &why) == 0);
			/* field by field: the struct has padding */
			FUZZ_CHECK(f.uidvalidity == g.uidvalidity &&
			    f.uidnext == g.uidnext &&
			    f.highestmodseq == g.highestmodseq &&
			    f.vanished == g.vanished &&
			    f.vanished_floor == g.vanished_floor &&
			    memcmp(f.id, g.id, sizeof(f.id)) == 0 &&
			    f.recent == g.recent);
		} else {
			FUZZ_CHECK(why.len > 0);
		}
	}
	buf_free(&why);
	buf_free(&again);
	return 0;
}
