/*
 * dns_answer_fuzz - DNS wire answers to typed records (lib/mail/
 * dns_parse.c), the bytes libunbound got from the network.
 *
 * Input: one byte choosing the type asked for (A, AAAA, MX, TXT, TLSA,
 * PTR, CNAME), then the DNS message; the name asked for is the
 * message's own question.
 *
 * Properties checked:
 *  - an answer parses to ok with records or nodata without, never more
 *    than DNS_RECORDS_MAX records, all of the type asked for;
 *  - names (canonical name, MX and PTR hosts) are printable ASCII
 *    without spaces, and bounded;
 *  - A and AAAA records have the family of their type; MX records come
 *    sorted by preference; a null MX is the one record "0 .";
 *  - a refused message says why and has status tempfail;
 *  - every record can be printed (dns_rr_format).
 */
#include <string.h>

#include "base/buf.h"
#include "mail/dns.h"
#include "fuzz.h"

static const uint16_t types[] = {DNS_T_A, DNS_T_AAAA, DNS_T_MX, DNS_T_TXT,
    DNS_T_TLSA, DNS_T_PTR, DNS_T_CNAME};

/* name_ok - printable, no spaces, bounded (escapes may quadruple) */
static int
name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n > 4 * DNS_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
			return 0;
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dns_result res = DNS_RESULT_INIT;
	struct buf out = BUF_INIT;
	uint16_t qtype;

	if (size < 1)
		return 0;
	qtype = types[data[0] % (sizeof(types) / sizeof(types[0]))];
	if (dns_parse_answer(data + 1, size - 1, NULL, qtype, &res) < 0) {
		FUZZ_CHECK(res.status == DNS_TEMPFAIL);
		FUZZ_CHECK(res.why != NULL && *res.why);
		dns_result_free(&res);
		return 0;
	}
	FUZZ_CHECK(res.status == (res.nrr > 0 ? DNS_OK : DNS_NODATA));
	FUZZ_CHECK(res.nrr <= DNS_RECORDS_MAX);
	FUZZ_CHECK(res.canon != NULL && name_ok(res.canon));
	for (size_t i = 0; i < res.nrr; i++) {
		const struct dns_rr *rr = &res.rr[i];

		FUZZ_CHECK(rr->type == qtype);
		if (rr->host != NULL)
			FUZZ_CHECK(name_ok(rr->host));
		if (qtype == DNS_T_MX || qtype == DNS_T_PTR ||
		    qtype == DNS_T_CNAME)
			FUZZ_CHECK(rr->host != NULL);
		if (qtype == DNS_T_MX && i > 0)
			FUZZ_CHECK(res.rr[i - 1].pref <= rr->pref);
		if (qtype == DNS_T_A || qtype == DNS_T_AAAA)
			FUZZ_CHECK(rr->family != 0);
		buf_reset(&out);
		dns_rr_format(rr, &out);
		FUZZ_CHECK(out.len > 0);
	}
	if (res.null_mx)
		FUZZ_CHECK(res.nrr == 1 && res.rr[0].pref == 0 &&
		    res.rr[0].host[0] == '\0');
	buf_free(&out);
	dns_result_free(&res);
	return 0;
}
