/*
 * mindex_keywords_fuzz - a folder's dovecot-keywords file as the mail
 * index reads it (lib/mail/mindex_folder.c) before every flag change and
 * listing of keywords. The file sits in a user's Maildir, where Dovecot,
 * mbsync or any other tool may have written anything.
 *
 * Properties checked: every slot the parser fills holds an IMAP
 * flag-keyword atom of 1..MINDEX_KEYWORD_LEN bytes (no space, control,
 * 8-bit or atom-special byte, no leading backslash), so what FLAGS and
 * PERMANENTFLAGS print from it is always valid IMAP; and a second parse
 * of the file herald would write from the result gives the same slots.
 */
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "mail/mindex.h"
#include "mail/mindex_int.h"
#include "fuzz.h"

static char names[MINDEX_KEYWORDS_MAX][MINDEX_KEYWORD_LEN + 1];
static char again[MINDEX_KEYWORDS_MAX][MINDEX_KEYWORD_LEN + 1];

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf out = BUF_INIT;

	mindex_keyword_parse((const char *)data, size, names);
	for (int i = 0; i < MINDEX_KEYWORDS_MAX; i++) {
		const unsigned char *k = (const unsigned char *)names[i];
		size_t n = strlen(names[i]);

		if (n == 0)
			continue;
		FUZZ_CHECK(n <= MINDEX_KEYWORD_LEN && k[0] != '\\');
		for (size_t j = 0; j < n; j++)
			FUZZ_CHECK(k[j] > ' ' && k[j] < 0x7f &&
			    strchr("(){%*\"\\]", k[j]) == NULL);
		buf_printf(&out, "%d %s\n", i, names[i]);
	}
	/* what mindex_keyword_save would write reads back the same */
	mindex_keyword_parse(out.data, out.len, again);
	for (int i = 0; i < MINDEX_KEYWORDS_MAX; i++)
		FUZZ_CHECK(strcmp(names[i], again[i]) == 0);
	buf_free(&out);
	return 0;
}
