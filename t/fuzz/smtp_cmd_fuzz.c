/*
 * smtp_cmd_fuzz - the SMTP command argument parsers of smtpd: MAIL FROM
 * (path and ESMTP parameters), RCPT TO, BDAT, HELO/EHLO, and the verb
 * lookups. The first byte picks the parser, the rest is the argument
 * text as smtpd hands it over (after "MAIL FROM:" and so on). A refused
 * argument must come with a complete reply line ("5xy x.y.z text").
 */
#include <string.h>

#include "base/buf.h"
#include "smtpd.h"
#include "fuzz.h"

/* check_reply - a refusal is a whole reply: 3 digits, a space, text */
static void
check_reply(const struct buf *reply)
{
	FUZZ_CHECK(reply->len >= 4);
	FUZZ_CHECK(reply->data[0] >= '4' && reply->data[0] <= '5');
	FUZZ_CHECK(reply->data[3] == ' ');
	FUZZ_CHECK(memchr(reply->data, '\n', reply->len) == NULL);
	FUZZ_CHECK(memchr(reply->data, '\r', reply->len) == NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf reply = BUF_INIT;
	char *args;
	size_t len;

	if (size < 1)
		return 0;
	args = fuzz_cstr(data + 1, size - 1);
	len = size - 1;
	switch (data[0] % 5) {
	case 0: {
		struct smtpd_mail_req r;

		smtpd_cmd_mail_req_init(&r);
		if (smtpd_cmd_parse_mail(args, len, &r, &reply) < 0)
			check_reply(&reply);
		else
			FUZZ_CHECK(r.addr.len < 1024);
		smtpd_cmd_mail_req_free(&r);
		break;
	}
	case 1:
	case 2: {
		struct smtpd_rcpt_req r;

		smtpd_cmd_rcpt_req_init(&r);
		if (smtpd_cmd_parse_rcpt(args, len, data[0] % 5 == 2, &r,
		    &reply) < 0)
			check_reply(&reply);
		smtpd_cmd_rcpt_req_free(&r);
		break;
	}
	case 3: {
		long long n = -1;
		bool last = false;

		if (smtpd_cmd_parse_bdat(args, len, &n, &last) == 0)
			FUZZ_CHECK(n >= 0);
		break;
	}
	default:
		if (smtpd_cmd_check_helo(args, len, &reply) < 0)
			check_reply(&reply);
		(void)smtpd_cmd_find(args, len);
		(void)smtpd_cmd_forbidden(args, len);
		break;
	}
	buf_free(&reply);
	free(args);
	return 0;
}
