/*
 * smtpd_sign_test - the parts of DKIM signing in smtpd that need no
 * signer: which domain a header's From: names, and which signer answers
 * may go above a message's header.
 */
#include <string.h>

#include "base/buf.h"
#include "base/test.h"
#include "mail/sign_client.h"
#include "smtpd.h"

static const struct {
	const char *header;
	const char *domain;	/* NULL: none */
} from_cases[] = {
	{"From: a@example.test\r\n\r\n", "example.test"},
	{"Received: x\r\n\tby y\r\nFROM : Ann <ann@Example.TEST>\r\n",
	    "example.test"},
	{"From: \"B, C\" <b@one.test>, d@two.test\r\nFrom: e@three.test\r\n",
	    "one.test"},
	{"From:\r\n Ann\r\n <ann@folded.test>\r\n\r\n", "folded.test"},
	{"From: group:;\r\n", NULL},
	{"To: a@example.test\r\nX-From: b@example.test\r\n", NULL},
	{"Fromage: a@cheese.test\r\n", NULL},
	{"", NULL},
};

static void
test_from_domain(void)
{
	struct buf out = BUF_INIT;

	for (size_t i = 0; i < sizeof(from_cases) / sizeof(from_cases[0]);
	    i++) {
		const char *h = from_cases[i].header;
		bool got = smtpd_sign_from_domain(h, strlen(h), &out);

		if (from_cases[i].domain == NULL) {
			if (got)
				T_FAIL_("case %zu: got \"%s\", want none", i,
				    buf_cstr(&out));
		} else if (!got ||
		    strcmp(buf_cstr(&out), from_cases[i].domain) != 0)
			T_FAIL_("case %zu: got \"%s\", want \"%s\"", i,
			    got ? buf_cstr(&out) : "(none)",
			    from_cases[i].domain);
	}
	buf_free(&out);
}

static const struct {
	const char *sig;
	bool ok;
} sig_cases[] = {
	{"DKIM-Signature: v=1; a=rsa-sha256;\r\n\tb=abc\r\n", true},
	{"DKIM-Signature: v=1;\r\n b=x\r\nDKIM-Signature: v=1;\r\n b=y\r\n",
	    true},
	{"dkim-signature: v=1\r\n", true},
	{"DKIM-Signature: v=1\r\n\r\nbody\r\n", false},	/* ends the header */
	{"DKIM-Signature: v=1\r\nX-Evil: 1\r\n", false},	/* another field */
	{"DKIM-Signature: v=1\n b=x\r\n", false},	/* bare LF */
	{"DKIM-Signature: v=1\r b=x\r\n", false},	/* bare CR */
	{"DKIM-Signature: v=1", false},			/* no line end */
	{"DKIM-Signature: v=\x80\r\n", false},		/* 8-bit */
	{"Received: x\r\n", false},
	{"", false},
};

static void
test_fields_ok(void)
{
	for (size_t i = 0; i < sizeof(sig_cases) / sizeof(sig_cases[0]); i++)
		if (sign_client_fields_ok(sig_cases[i].sig) != sig_cases[i].ok)
			T_FAIL_("case %zu: want %s", i,
			    sig_cases[i].ok ? "ok" : "refused");
}

static const struct test_case cases[] = {
	{"From: domain", test_from_domain},
	{"signature fields", test_fields_ok},
	{NULL, NULL},
};

int
main(void)
{
	return test_run(cases);
}
