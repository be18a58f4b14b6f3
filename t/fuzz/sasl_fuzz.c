/*
 * sasl_fuzz - SASL PLAIN and LOGIN exchanges (lib/mail/sasl.c) and its
 * base64, as smtpd, pop3d and imapd feed them client lines.
 *
 * The input is split at '\n' into client lines: the first picks the
 * mechanism and, if it starts with '=', is the initial response. Checked:
 * the exchange ends within a few steps, a finished one has a user name
 * and password without CR or LF, and base64 is strict: what decodes
 * encodes back to the very same text.
 */
#include <string.h>

#include "base/buf.h"
#include "mail/sasl.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf ch = BUF_INIT, why = BUF_INIT, dec = BUF_INIT,
	    enc = BUF_INIT, again = BUF_INIT;
	struct sasl_state st;
	enum sasl_status r;
	char *s, *line, *next;
	int steps = 0;

	if (size < 1)
		return 0;
	s = fuzz_cstr(data + 1, size - 1);
	memset(&st, 0, sizeof(st));
	line = s;
	next = strchr(line, '\n');
	if (next != NULL)
		*next++ = '\0';
	r = sasl_start(&st, data[0] & 1 ? SASL_LOGIN : SASL_PLAIN,
	    line[0] == '=' ? line + 1 : NULL, &ch, &why);
	while (r == SASL_CONTINUE && next != NULL) {
		FUZZ_CHECK(++steps <= 3);
		line = next;
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		buf_reset(&ch);
		r = sasl_step(&st, line, &ch, &why);
	}
	if (r == SASL_DONE) {
		FUZZ_CHECK(strlen(st.authcid) > 0);
		FUZZ_CHECK(strpbrk(st.authcid, "\r\n") == NULL);
		FUZZ_CHECK(strpbrk(st.password, "\r\n") == NULL);
	} else if (r == SASL_ERROR) {
		FUZZ_CHECK(why.len > 0);
	}
	sasl_wipe(&st);

	/* base64 both ways, on the raw input */
	if (sasl_base64_decode((const char *)data + 1, size - 1, &dec,
	    4096) == 0) {
		sasl_base64_encode(dec.data, dec.len, &enc);
		/* strict: each byte string has exactly one encoding */
		FUZZ_CHECK(enc.len == size - 1 &&
		    memcmp(enc.data, data + 1, size - 1) == 0);
		FUZZ_CHECK(sasl_base64_decode(enc.data, enc.len, &again,
		    4096) == 0);
		FUZZ_CHECK(again.len == dec.len &&
		    memcmp(again.data, dec.data, dec.len) == 0);
	}
	buf_free(&ch);
	buf_free(&why);
	buf_free(&dec);
	buf_free(&enc);
	buf_free(&again);
	free(s);
	return 0;
}
