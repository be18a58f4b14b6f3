/*
 * pop3_cmd_fuzz - what pop3d does with a client's command line before a
 * handler runs: splitting verb and arguments, the verb lookup, the
 * other-protocol check and message numbers; and the multi-line encoder
 * for TOP with a line count (RETR's round trip is in smtp_data_fuzz).
 *
 * Checked: the split stays inside the line; a number parses only from
 * digits and within its bound; TOP's output, less its ".CRLF", is a
 * prefix of RETR's.
 */
#include <string.h>

#include "base/buf.h"
#include "pop3d.h"
#include "fuzz.h"

/* encode - pop3d's encoding of m with body_lines (-1: all), with its
 * terminator, as pop3d_send_msg produces it */
static void
encode(const char *m, size_t n, long long body_lines, struct buf *out)
{
	struct pop3d_enc e;
	size_t off = 0;

	pop3d_enc_init(&e, body_lines);
	while (off < n && !e.done)
		off += pop3d_enc_feed(&e, m + off, n - off, out);
	pop3d_enc_end(&e, out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf retr = BUF_INIT, top = BUF_INIT;
	const char *args;
	size_t vlen;
	long long n;
	char *s;

	if (size < 1)
		return 0;
	s = fuzz_cstr(data + 1, size - 1);
	size -= 1;
	pop3d_cmd_split(s, size, &vlen, &args);
	FUZZ_CHECK(vlen <= size && args >= s && args <= s + size);
	(void)pop3d_cmd_find(s, vlen);
	(void)pop3d_cmd_forbidden(s, vlen);
	if (pop3d_cmd_number(args, (size_t)(s + size - args), 1000000,
	    &n) == 0) {
		FUZZ_CHECK(n >= 0 && n <= 1000000);
		for (const char *p = args; p < s + size; p++)
			FUZZ_CHECK(*p >= '0' && *p <= '9');
	}

	encode(s, size, -1, &retr);
	encode(s, size, data[0] % 4, &top);
	FUZZ_CHECK(top.len >= 3 &&
	    memcmp(top.data + top.len - 3, ".\r\n", 3) == 0);
	FUZZ_CHECK(top.len <= retr.len);
	FUZZ_CHECK(memcmp(top.data, retr.data, top.len - 3) == 0);
	buf_free(&retr);
	buf_free(&top);
	free(s);
	return 0;
}
