/*
 * sasl_test - SASL PLAIN/LOGIN and strict base64: good exchanges, every
 * malformed shape we can think of, and the bounds.
 */
#include <string.h>

#include "base/buf.h"
#include "base/test.h"
#include "mail/sasl.h"

/* b64 - base64 of n bytes of p as a malloc'd-by-buf string in out */
static const char *
b64(struct buf *out, const void *p, size_t n)
{
	buf_reset(out);
	sasl_base64_encode(p, n, out);
	return buf_cstr(out);
}

/* plain_ir - PLAIN initial response for authzid, authcid, password */
static const char *
plain_ir(struct buf *out, const char *z, const char *c, const char *p)
{
	struct buf raw = BUF_INIT;
	const char *r;

	buf_puts(&raw, z);
	buf_putc(&raw, '\0');
	buf_puts(&raw, c);
	buf_putc(&raw, '\0');
	buf_puts(&raw, p);
	r = b64(out, raw.data, raw.len);
	buf_free(&raw);
	return r;
}

static void
test_base64_vectors(void)
{
	static const char *const v[][2] = {
		{"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"},
		{"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="},
		{"foobar", "Zm9vYmFy"},
	};
	struct buf out = BUF_INIT, dec = BUF_INIT;

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		T_EQ_STR(b64(&out, v[i][0], strlen(v[i][0])), v[i][1]);
		buf_reset(&dec);
		T_EQ_INT(sasl_base64_decode(v[i][1], strlen(v[i][1]), &dec,
		    100), 0);
		T_EQ_STR(buf_cstr(&dec), v[i][0]);
	}
	buf_free(&out);
	buf_free(&dec);
}

static void
test_base64_roundtrip_binary(void)
{
	unsigned char raw[300];
	struct buf out = BUF_INIT, dec = BUF_INIT;

	for (size_t i = 0; i < sizeof(raw); i++)
		raw[i] = (unsigned char)(i * 7 + 3);
	for (size_t n = 0; n <= sizeof(raw); n++) {
		b64(&out, raw, n);
		T_EQ_INT(out.len, (n + 2) / 3 * 4);
		buf_reset(&dec);
		T_EQ_INT(sasl_base64_decode(out.data, out.len, &dec, n), 0);
		T_EQ_MEM(dec.data, dec.len, raw, n);
		/* one byte less room is refused, and leaves out unchanged */
		if (n > 0) {
			buf_reset(&dec);
			buf_puts(&dec, "keep");
			T_EQ_INT(sasl_base64_decode(out.data, out.len, &dec,
			    n - 1), -1);
			T_EQ_STR(buf_cstr(&dec), "keep");
		}
	}
	buf_free(&out);
	buf_free(&dec);
}

static void
test_base64_every_prefix(void)
{
	const char *text = "QWxhZGRpbjpvcGVuIHNlc2FtZQ==";
	size_t len = strlen(text);
	struct buf dec = BUF_INIT;

	/* every cut: only whole quanta decode; padding only at the end */
	for (size_t k = 0; k <= len; k++) {
		int want = k % 4 == 0 ? 0 : -1;

		buf_reset(&dec);
		T_EQ_INT(sasl_base64_decode(text, k, &dec, 100), want);
	}
	buf_reset(&dec);
	T_EQ_INT(sasl_base64_decode(text, len, &dec, 100), 0);
	T_EQ_STR(buf_cstr(&dec), "Aladdin:open sesame");
	buf_free(&dec);
}

static void
test_base64_malformed(void)
{
	static const char *const bad[] = {
		"Zg",		/* padding missing */
		"Zg=",		/* padding short */
		"Zm9",		/* not a multiple of 4 */
		"Zm9v\n",	/* line end inside */
		"Zm9v\r\n",
		"Zm 9v",	/* blank inside */
		" Zm9v",
		"Zm9v ",
		"Zg==Zg==",	/* padding in the middle */
		"Zg==Zm9v",
		"=Zm9",		/* padding first */
		"====",
		"A===",
		"Z=g=",
		"Zh==",		/* non-zero bits before the padding */
		"Zm9=",
		"Zm9v!A==",	/* outside the alphabet */
		"Zm9v-_==",	/* base64url letters */
		"\xc3\xa9Zm9",
	};
	struct buf dec = BUF_INIT;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		buf_reset(&dec);
		if (sasl_base64_decode(bad[i], strlen(bad[i]), &dec, 100) !=
		    -1) {
			fprintf(stderr, "  accepted \"%s\"\n", bad[i]);
			T_ASSERT(0);
		}
		T_EQ_INT(dec.len, 0);
	}
	/* a NUL inside the text is not a letter either */
	buf_reset(&dec);
	T_EQ_INT(sasl_base64_decode("Zm\0v", 4, &dec, 100), -1);
	buf_free(&dec);
}

static void
test_mech_parse(void)
{
	T_EQ_INT(sasl_mech_parse("PLAIN"), SASL_PLAIN);
	T_EQ_INT(sasl_mech_parse("plain"), SASL_PLAIN);
	T_EQ_INT(sasl_mech_parse("Login"), SASL_LOGIN);
	T_EQ_INT(sasl_mech_parse("CRAM-MD5"), SASL_NONE);
	T_EQ_INT(sasl_mech_parse("PLAIN "), SASL_NONE);
	T_EQ_INT(sasl_mech_parse(""), SASL_NONE);
	T_EQ_STR(sasl_mech_list(), "PLAIN LOGIN");
}

static void
test_plain_ir(void)
{
	struct sasl_state s;
	struct buf ch = BUF_INIT, why = BUF_INIT, enc = BUF_INIT;

	memset(&s, 0, sizeof(s));
	T_EQ_INT(sasl_start(&s, SASL_PLAIN, plain_ir(&enc, "", "alice@x.test",
	    "s3cret pw"), &ch, &why), SASL_DONE);
	T_EQ_STR(s.authcid, "alice@x.test");
	T_EQ_STR(s.password, "s3cret pw");
	/* the exchange is over */
	T_EQ_INT(sasl_step(&s, "Zm9v", &ch, &why), SASL_ERROR);
	T_EQ_STR(s.password, "");
	buf_free(&ch);
	buf_free(&why);
	buf_free(&enc);
}

static void
test_plain_no_ir(void)
{
	struct sasl_state s;
	struct buf ch = BUF_INIT, why = BUF_INIT, enc = BUF_INIT;

	memset(&s, 0, sizeof(s));
	buf_puts(&ch, "stale");
	T_EQ_INT(sasl_start(&s, SASL_PLAIN, NULL, &ch, &why), SASL_CONTINUE);
	T_EQ_STR(buf_cstr(&ch), "");
	T_EQ_INT(sasl_step(&s, plain_ir(&enc, "", "bob", "pw"), &ch, &why),
	    SASL_DONE);
	T_EQ_STR(s.authcid, "bob");
	T_EQ_STR(s.password, "pw");
	sasl_wipe(&s);
	T_EQ_STR(s.password, "");
	T_EQ_STR(s.authcid, "");
	T_EQ_INT(s.mech, SASL_NONE);
	buf_free(&ch);
	buf_free(&why);
	buf_free(&enc);
}

static void
test_plain_authzid(void)
{
	struct sasl_state s;
	struct buf ch = BUF_INIT, why = BUF_INIT, enc = BUF_INIT;

	memset(&s, 0, sizeof(s));
	/* the same identity, in another case: fine */
	T_EQ_INT(sasl_start(&s, SASL_PLAIN, plain_ir(&enc, "Alice@X.test",
	    "alice@x.test", "pw"), &ch, &why), SASL_DONE);
	T_EQ_STR(s.authcid, "alice@x.test");
	/* acting as another user: refused */
	T_EQ_INT(sasl_start(&s, SASL_PLAIN, plain_ir(&enc, "bob@x.test",
	    "alice@x.test", "pw"), &ch, &why), SASL_ERROR);
	T_ASSERT(strstr(buf_cstr(&why), "authorization") != NULL);
	T_EQ_STR(s.password, "");
	/* a prefix is not the same identity */
	T_EQ_INT(sasl_start(&s, SASL_PLAIN, plain_ir(&enc, "alice",
	    "alice@x.test", "pw"), &ch, &why), SASL_ERROR);
	buf_free(&ch);
	buf_free(&why);
	buf_free(&enc);
}

static void
test_plain_malformed(void)
{
	static const struct {
		const char *raw;
		size_t len;
	} bad[] = {
		{"alice\0pw", 8},		/* one NUL */
		{"alicepw", 7},			/* none */
		{"\0alice\0pw\0", 10},		/* three */
		{"\0alice\0p\0w", 10},
		{"\0\0pw", 4},			/* empty authcid */
		{"\0alice\0", 7},		/* empty password */
		{"\0ali\rce\0pw", 10},		/* CR in the name */
		{"\0ali\nce\0pw", 10},		/* LF in the name */
		{"\0alice\0p\r\nw", 11},	/* CRLF in the password */
		{"a\nb\0a\nb\0pw", 10},		/* LF in the authzid */
		{"", 0},
	};
	struct sasl_state s;
	struct buf ch = BUF_INIT, why = BUF_INIT, enc = BUF_INIT;

	memset(&s, 0, sizeof(s));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		b64(&enc, bad[i].raw, bad[i].len);
		buf_reset(&why);
		if (sasl_start(&s, SASL_PLAIN, buf_cstr(&enc), &ch, &why) !=
		    SASL_ERROR) {
			fprintf(stderr, "  case %zu accepted\n", i);
			T_ASSERT(0);
		}
		T_ASSERT(why.len > 0);
		T_EQ_STR(s.password, "");
		T_EQ_STR(s.authcid, "");
	}
	/* malformed base64 */
	T_EQ_INT(sasl_start(&s, SASL_PLAIN, "AGFsaWNlAHB3", &ch, &why),
	    SASL_DONE);
	T_EQ_INT(sasl_start(&s, SASL_PLAIN, "AGFsaWNlAHB3=", &ch, &why),
	    SASL_ERROR);
	T_ASSERT(strstr(buf_cstr(&why), "base64") != NULL);
	T_EQ_INT(sasl_start(&s, SASL_PLAIN, "AGFsaW NlAHB3", &ch, &why),
	    SASL_ERROR);
	/* "=" is an empty initial response: not a valid PLAIN message */
	T_EQ_INT(sasl_start(&s, SASL_PLAIN, "=", &ch, &why), SASL_ERROR);
	/* no mechanism */
	T_EQ_INT(sasl_start(&s, SASL_NONE, NULL, &ch, &why), SASL_ERROR);
	T_EQ_INT(sasl_step(&s, "AGFsaWNlAHB3", &ch, &why), SASL_ERROR);
	buf_free(&ch);
	buf_free(&why);
	buf_free(&enc);
}

static void
test_plain_bounds(void)
{
	char user[AUTH_USER_MAX + 2], pw[AUTH_PASSWORD_MAX + 2];
	struct sasl_state s;
	struct buf ch = BUF_INIT, why = BUF_INIT, enc = BUF_INIT;

	memset(&s, 0, sizeof(s));
	memset(user, 'u', sizeof(user));
	memset(pw, 'p', sizeof(pw));
	user[AUTH_USER_MAX] = '\0';
	pw[AUTH_PASSWORD_MAX] = '\0';
	/* exactly at every bound: accepted */
	T_EQ_INT(sasl_start(&s, SASL_PLAIN, plain_ir(&enc, user, user, pw),
	    &ch, &why), SASL_DONE);
	T_EQ_INT(strlen(s.authcid), AUTH_USER_MAX);
	T_EQ_INT(strlen(s.password), AUTH_PASSWORD_MAX);
	/* one over: refused */
	user[AUTH_USER_MAX] = 'u';
	user[AUTH_USER_MAX + 1] = '\0';
	T_EQ_INT(sasl_start(&s, SASL_PLAIN, plain_ir(&enc, "", user, "pw"),
	    &ch, &why), SASL_ERROR);
	user[AUTH_USER_MAX] = '\0';
	pw[AUTH_PASSWORD_MAX] = 'p';
	pw[AUTH_PASSWORD_MAX + 1] = '\0';
	T_EQ_INT(sasl_start(&s, SASL_PLAIN, plain_ir(&enc, "", user, pw),
	    &ch, &why), SASL_ERROR);
	/* a huge line is refused before decoding */
	buf_reset(&enc);
	for (int i = 0; i < 10000; i++)
		buf_puts(&enc, "QUFB");
	T_EQ_INT(sasl_start(&s, SASL_PLAIN, buf_cstr(&enc), &ch, &why),
	    SASL_ERROR);
	T_ASSERT(strstr(buf_cstr(&why), "too long") != NULL);
	buf_free(&ch);
	buf_free(&why);
	buf_free(&enc);
}

static void
test_login_two_step(void)
{
	struct sasl_state s;
	struct buf ch = BUF_INIT, why = BUF_INIT, enc = BUF_INIT;

	memset(&s, 0, sizeof(s));
	T_EQ_INT(sasl_start(&s, SASL_LOGIN, NULL, &ch, &why), SASL_CONTINUE);
	T_EQ_STR(buf_cstr(&ch), "VXNlcm5hbWU6");	/* "Username:" */
	T_EQ_INT(sasl_step(&s, b64(&enc, "carol@x.test", 12), &ch, &why),
	    SASL_CONTINUE);
	T_EQ_STR(buf_cstr(&ch), "UGFzc3dvcmQ6");	/* "Password:" */
	T_EQ_INT(sasl_step(&s, b64(&enc, "pw of carol", 11), &ch, &why),
	    SASL_DONE);
	T_EQ_STR(s.authcid, "carol@x.test");
	T_EQ_STR(s.password, "pw of carol");
	T_EQ_INT(sasl_step(&s, "Zm9v", &ch, &why), SASL_ERROR);
	buf_free(&ch);
	buf_free(&why);
	buf_free(&enc);
}

static void
test_login_ir(void)
{
	struct sasl_state s;
	struct buf ch = BUF_INIT, why = BUF_INIT, enc = BUF_INIT;

	memset(&s, 0, sizeof(s));
	T_EQ_INT(sasl_start(&s, SASL_LOGIN, b64(&enc, "dave", 4), &ch, &why),
	    SASL_CONTINUE);
	T_EQ_STR(buf_cstr(&ch), "UGFzc3dvcmQ6");
	T_EQ_INT(sasl_step(&s, b64(&enc, "pw", 2), &ch, &why), SASL_DONE);
	T_EQ_STR(s.authcid, "dave");
	T_EQ_STR(s.password, "pw");
	/* "=": empty user name */
	T_EQ_INT(sasl_start(&s, SASL_LOGIN, "=", &ch, &why), SASL_ERROR);
	buf_free(&ch);
	buf_free(&why);
	buf_free(&enc);
}

static void
test_login_malformed(void)
{
	char pw[AUTH_PASSWORD_MAX + 2];
	struct sasl_state s;
	struct buf ch = BUF_INIT, why = BUF_INIT, enc = BUF_INIT;

	memset(&s, 0, sizeof(s));
	T_EQ_INT(sasl_start(&s, SASL_LOGIN, NULL, &ch, &why), SASL_CONTINUE);
	T_EQ_INT(sasl_step(&s, b64(&enc, "da\0ve", 5), &ch, &why),
	    SASL_ERROR);
	T_EQ_INT(sasl_start(&s, SASL_LOGIN, NULL, &ch, &why), SASL_CONTINUE);
	T_EQ_INT(sasl_step(&s, b64(&enc, "dave\r\n", 6), &ch, &why),
	    SASL_ERROR);
	T_EQ_INT(sasl_start(&s, SASL_LOGIN, NULL, &ch, &why), SASL_CONTINUE);
	T_EQ_INT(sasl_step(&s, "", &ch, &why), SASL_ERROR);	/* empty */
	T_EQ_INT(sasl_start(&s, SASL_LOGIN, NULL, &ch, &why), SASL_CONTINUE);
	T_EQ_INT(sasl_step(&s, "ZGF2ZQ", &ch, &why), SASL_ERROR);
	T_EQ_INT(sasl_start(&s, SASL_LOGIN, NULL, &ch, &why), SASL_CONTINUE);
	T_EQ_INT(sasl_step(&s, b64(&enc, "dave", 4), &ch, &why),
	    SASL_CONTINUE);
	T_EQ_INT(sasl_step(&s, b64(&enc, "p\nw", 3), &ch, &why), SASL_ERROR);
	T_EQ_STR(s.authcid, "");
	/* password bound */
	memset(pw, 'p', sizeof(pw));
	T_EQ_INT(sasl_start(&s, SASL_LOGIN, NULL, &ch, &why), SASL_CONTINUE);
	T_EQ_INT(sasl_step(&s, b64(&enc, "dave", 4), &ch, &why),
	    SASL_CONTINUE);
	T_EQ_INT(sasl_step(&s, b64(&enc, pw, AUTH_PASSWORD_MAX + 1), &ch,
	    &why), SASL_ERROR);
	T_EQ_INT(sasl_start(&s, SASL_LOGIN, NULL, &ch, &why), SASL_CONTINUE);
	T_EQ_INT(sasl_step(&s, b64(&enc, "dave", 4), &ch, &why),
	    SASL_CONTINUE);
	T_EQ_INT(sasl_step(&s, b64(&enc, pw, AUTH_PASSWORD_MAX), &ch, &why),
	    SASL_DONE);
	T_EQ_INT(strlen(s.password), AUTH_PASSWORD_MAX);
	buf_free(&ch);
	buf_free(&why);
	buf_free(&enc);
}

static void
test_cancel(void)
{
	struct sasl_state s;
	struct buf ch = BUF_INIT, why = BUF_INIT, enc = BUF_INIT;

	memset(&s, 0, sizeof(s));
	T_EQ_INT(sasl_start(&s, SASL_PLAIN, NULL, &ch, &why), SASL_CONTINUE);
	T_EQ_INT(sasl_step(&s, "*", &ch, &why), SASL_CANCELLED);
	T_EQ_INT(sasl_step(&s, "*", &ch, &why), SASL_ERROR);
	T_EQ_INT(sasl_start(&s, SASL_LOGIN, NULL, &ch, &why), SASL_CONTINUE);
	T_EQ_INT(sasl_step(&s, b64(&enc, "dave", 4), &ch, &why),
	    SASL_CONTINUE);
	T_EQ_INT(sasl_step(&s, "*", &ch, &why), SASL_CANCELLED);
	T_EQ_STR(s.authcid, "");
	T_EQ_INT(sasl_start(&s, SASL_LOGIN, "*", &ch, &why), SASL_CANCELLED);
	/* "*" with anything around it is just bad base64 */
	T_EQ_INT(sasl_start(&s, SASL_PLAIN, NULL, &ch, &why), SASL_CONTINUE);
	T_EQ_INT(sasl_step(&s, "* ", &ch, &why), SASL_ERROR);
	buf_free(&ch);
	buf_free(&why);
	buf_free(&enc);
}

static const struct test_case cases[] = {
	{"base64 RFC 4648 vectors", test_base64_vectors},
	{"base64 binary round trip and max", test_base64_roundtrip_binary},
	{"base64 every prefix", test_base64_every_prefix},
	{"base64 malformed", test_base64_malformed},
	{"mechanism names", test_mech_parse},
	{"PLAIN with SASL-IR", test_plain_ir},
	{"PLAIN without SASL-IR", test_plain_no_ir},
	{"PLAIN authzid rule", test_plain_authzid},
	{"PLAIN malformed", test_plain_malformed},
	{"PLAIN bounds", test_plain_bounds},
	{"LOGIN two steps", test_login_two_step},
	{"LOGIN with initial response", test_login_ir},
	{"LOGIN malformed", test_login_malformed},
	{"cancel with *", test_cancel},
	{0},
};

int
main(void)
{
	return test_run(cases);
}
