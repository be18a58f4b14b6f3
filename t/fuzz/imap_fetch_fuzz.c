/*
 * imap_fetch_fuzz - the selected state's parsers of untrusted bytes
 * (imapd/imapd_fetch.c, imapd_append.c, imapd_select.c): FETCH items
 * (sections, HEADER.FIELDS lists, partials, macros), flag lists, APPEND
 * date-times, the CRLF conversion that FETCH streams message bytes
 * through, and sequence sets resolved against a folder's view.
 *
 * The first byte picks what is fed (0xf0 and up: a sequence set). Checked: parsing never reads outside
 * the command; the CRLF form made in chunks of any size is the same as
 * made byte by byte from the whole, has no bare LF, and a <skip.take>
 * range of it is exactly that slice of the whole conversion; a resolved
 * sequence or UID set marks exactly the messages a naive walk does.
 */
#include <string.h>

#include "base/buf.h"
#include "imap_parse.h"
#include "imapd.h"
#include "imapd_sel.h"
#include "fuzz.h"

/* command - data as the arguments of a command "t X <data>" */
static void
command(const uint8_t *data, size_t size, int what)
{
	struct imap_parser p;
	struct imap_cursor c;
	struct imap_token t;
	size_t used;
	const char *why;
	int n;

	imap_parser_init(&p, 8192, 65536, 8192, 0);
	if (imap_parser_feed(&p, (const char *)data, size, &used) ==
	    IMAP_FEED_COMMAND) {
		imap_cursor_init(&c, &p, 0);
		if (what == 0) {
			FUZZ_CHECK(imapd_fetch_parse_items(&c, &n, &why) !=
			    -2);
		} else {
			uint32_t flags;
			char *kw[MINDEX_KEYWORDS_MAX];
			size_t nkw;

			if (imap_cursor_next(&c, &t) == IMAP_TOK_OPEN &&
			    imapd_sel_parse_flags(&c, true, &flags, kw, &nkw,
			    &why) == 0) {
				FUZZ_CHECK(nkw <= MINDEX_KEYWORDS_MAX);
				for (size_t i = 0; i < nkw; i++) {
					FUZZ_CHECK(strlen(kw[i]) <=
					    MINDEX_KEYWORD_LEN);
					free(kw[i]);
				}
			}
		}
	}
	imap_parser_free(&p);
}

/* crlf - the conversion in chunks against a byte-by-byte reference */
static void
crlf(const uint8_t *data, size_t size)
{
	struct buf whole = BUF_INIT, part = BUF_INIT, ref = BUF_INIT;
	size_t chunk, skip, take;

	if (size < 3)
		return;
	chunk = data[0] % 17 + 1;
	skip = data[1] % 64;
	take = data[2] % 128 + 1;
	data += 3;
	size -= 3;
	for (size_t i = 0; i < size; i++) {
		if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r'))
			buf_putc(&ref, '\r');
		buf_putc(&ref, data[i]);
	}
	imapd_fetch_crlf((const char *)data, size, 0, (uint64_t)-1, chunk,
	    &whole);
	FUZZ_CHECK(whole.len == ref.len && memcmp(whole.data ? whole.data :
	    "", ref.data ? ref.data : "", ref.len) == 0);
	imapd_fetch_crlf((const char *)data, size, skip, take, chunk, &part);
	if (skip > ref.len)
		skip = ref.len;
	if (take > ref.len - skip)
		take = ref.len - skip;
	FUZZ_CHECK(part.len == take && memcmp(part.data ? part.data : "",
	    (ref.data ? ref.data : "") + skip, take) == 0);
	buf_free(&whole);
	buf_free(&part);
	buf_free(&ref);
}

/* seqset - imapd_sel_set against a naive walk of the ranges */
static void
seqset(const uint8_t *data, size_t size)
{
	struct imapd_sel sel;
	struct imap_seqset set;
	unsigned char *map;
	uint32_t uids[300], n;
	bool uid;
	int rc;

	if (size < 2)
		return;
	memset(&sel, 0, sizeof(sel));
	n = data[0] % 300;
	uid = data[1] & 1;
	for (uint32_t i = 0; i < n; i++)
		uids[i] = i * (data[1] / 2 % 5 + 1) + 1;
	sel.v.n = n;
	sel.v.uid = uids;
	rc = imapd_sel_set(&sel, (const char *)data + 2, size - 2, uid, &map);
	if (imap_seqset_parse((const char *)data + 2, size - 2, &set) < 0) {
		FUZZ_CHECK(rc < 0);
		return;
	}
	if (rc == 0 && !set.saved) {
		uint32_t max = uid ? (n ? uids[n - 1] : 0) : n;

		for (uint32_t i = 0; i < n; i++) {
			bool in = false;
			uint32_t key = uid ? uids[i] : i + 1;

			for (size_t k = 0; k < set.n && !in; k++) {
				uint32_t lo = set.r[k].lo ? set.r[k].lo : max;
				uint32_t hi = set.r[k].hi ? set.r[k].hi : max;

				if (lo > hi) {
					uint32_t t = lo;

					lo = hi;
					hi = t;
				}
				in = key >= lo && key <= hi;
			}
			FUZZ_CHECK(in == ((map[i / 8] >> (i % 8)) & 1));
		}
	}
	imap_seqset_free(&set);
	free(map);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int64_t t;

	if (size < 1)
		return 0;
	if (data[0] >= 0xf0) {
		seqset(data + 1, size - 1);
		return 0;
	}
	switch (data[0] % 4) {
	case 0:
		command(data + 1, size - 1, 0);
		break;
	case 1:
		command(data + 1, size - 1, 1);
		break;
	case 2:
		(void)imapd_append_date((const char *)data + 1, size - 1, &t);
		break;
	default:
		crlf(data + 1, size - 1);
		break;
	}
	return 0;
}
