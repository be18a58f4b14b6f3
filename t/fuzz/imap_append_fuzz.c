/*
 * imap_append_fuzz - APPEND's arguments after the mailbox name
 * (imapd/imapd_append.c): flag lists, date-times, plain literals,
 * literal8 and the UTF8 (~{n}...) item of RFC 6855, up to MULTIAPPEND's
 * bound, assembled by the command parser from untrusted bytes.
 *
 * The first byte says whether UTF8=ACCEPT is enabled (its low bit); the
 * rest is the command's arguments, CRLF-ended lines with literals.
 * Checked: parsing never reads outside the command, never panics, and
 * counts at most the messages the command holds literals for.
 */
#include <string.h>

#include "base/buf.h"
#include "imap_parse.h"
#include "imapd.h"
#include "imapd_sel.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_parser p;
	struct imap_cursor c;
	enum imap_feed ev;
	size_t used, off = 1;
	const char *why;
	int n;

	if (size < 1)
		return 0;
	imap_parser_init(&p, 8192, 65536, 8192, 0);
	/* a synchronizing literal stops the feed at its "+": feed on */
	do {
		ev = imap_parser_feed(&p, (const char *)data + off,
		    size - off, &used);
		off += used;
	} while (ev == IMAP_FEED_CONTINUE && used > 0 && off < size);
	if (ev == IMAP_FEED_COMMAND) {
		imap_cursor_init(&c, &p, 0);
		n = imapd_append_parse_args(&c, data[0] & 1, &why);
		FUZZ_CHECK(n == -1 || (n >= 1 && (size_t)n <= p.nlit));
		FUZZ_CHECK(why != NULL);
	}
	imap_parser_free(&p);
	return 0;
}
