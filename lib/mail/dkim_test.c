/*
 * dkim_test - relaxed canonicalisation (RFC 6376 3.4.5's example, the
 * body fed at every chunk size), RFC 8463's signed example verified
 * with its public key, and herald's own signatures (ed25519 and rsa)
 * verified, folded at 78 columns, and broken by changes to the body, a
 * signed field, or an added From.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "base/buf.h"
#include "base/test.h"
#include "mail/dkim.h"

/* RFC 6376 3.4.5 */
static const char ex_header[] = "A: X\r\nB : Y\t\r\n\tZ  \r\n";
static const char ex_body[] = " C \r\nD \t E\r\n\r\n\r\n";

/* dkim_test_out - body canonicaliser output into a buf */
static void
dkim_test_out(void *ctx, const void *data, size_t len)
{
	buf_append(ctx, data, len);
}

static void
test_canon_header(void)
{
	struct buf out = BUF_INIT;

	T_EQ_INT(dkim_canon_header(ex_header, 6, &out), 0);
	T_EQ_INT(dkim_canon_header(ex_header + 6, strlen(ex_header) - 8,
	    &out), 0);
	T_EQ_STR(buf_cstr(&out), "a:X\r\nb:Y Z\r\n");
	buf_reset(&out);
	T_EQ_INT(dkim_canon_header("no colon", 8, &out), -1);
	T_EQ_INT(dkim_canon_header("Subject:", 8, &out), 0);
	T_EQ_STR(buf_cstr(&out), "subject:\r\n");
	buf_free(&out);
}

/* canon_body - the relaxed form of body fed in chunks of n bytes */
static void
canon_body(const char *body, size_t len, size_t n, struct buf *out)
{
	struct dkim_body b;

	buf_reset(out);
	dkim_body_init(&b, dkim_test_out, out);
	for (size_t i = 0; i < len; i += n)
		dkim_body_update(&b, body + i, len - i < n ? len - i : n);
	dkim_body_final(&b);
}

static void
test_canon_body(void)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ex_body, " C\r\nD E\r\n"},
		{"", ""},
		{"\r\n\r\n", ""},
		{"x", "x\r\n"},
		{"a  \t\nb\n\n", "a\r\nb\r\n"},
		{"a\r\n \r\n\t\r\nb\r\n \r\n", "a\r\n\r\n\r\nb\r\n"},
		{"a\rb\r", "a\rb\r\r\n"},
		{"\t lead", " lead\r\n"},
	};
	struct buf out = BUF_INIT;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = strlen(cases[i].in);

		for (size_t n = 1; n <= len + 1; n++) {
			canon_body(cases[i].in, len, n, &out);
			T_EQ_STR(buf_cstr(&out), cases[i].want);
		}
	}
	buf_free(&out);
}

/* RFC 8463 Appendix A: the message and its key record */
#define RFC8463_KEY "v=DKIM1; k=ed25519; " \
	"p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
static const char rfc8463_msg[] =
    "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;\r\n"
    " d=football.example.com; i=@football.example.com;\r\n"
    " q=dns/txt; s=brisbane; t=1528637909; h=from : to :\r\n"
    " subject : date : message-id : from : subject : date;\r\n"
    " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
    " b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus\r\n"
    " Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==\r\n"
    "From: Joe SixPack <joe@football.example.com>\r\n"
    "To: Suzie Q <suzie@shopping.example.net>\r\n"
    "Subject: Is dinner ready?\r\n"
    "Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"
    "Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n"
    "\r\n"
    "Hi.\r\n"
    "\r\n"
    "We lost the game.  Are you hungry yet?\r\n"
    "\r\n"
    "Joe.\r\n";

/* key_txt - a key callback answering with the record text in ctx */
static int
key_txt(const char *domain, const char *selector, struct buf *txt,
    struct buf *why, void *ctx)
{
	(void)domain;
	(void)selector;
	if (ctx == NULL) {
		buf_puts(why, "no key");
		return -1;
	}
	buf_puts(txt, ctx);
	return 0;
}

static void
test_rfc8463(void)
{
	struct dkim_verdict v[4];
	size_t nv;
	char *bad = strdup(rfc8463_msg);

	T_EQ_INT(dkim_verify(rfc8463_msg, strlen(rfc8463_msg), key_txt,
	    RFC8463_KEY,
	    v, 4, &nv), 1);
	T_EQ_INT(nv, 1);
	T_EQ_STR(v[0].domain, "football.example.com");
	T_EQ_STR(v[0].selector, "brisbane");
	/* another key */
	T_EQ_INT(dkim_verify(rfc8463_msg, strlen(rfc8463_msg), key_txt,
	    "v=DKIM1; k=ed25519; "
	    "p=AAAAYAKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
	    v, 4, &nv), 0);
	/* a changed Subject */
	*strstr(bad, "dinner") = 'D';
	T_EQ_INT(dkim_verify(bad, strlen(bad), key_txt,
	    RFC8463_KEY,
	    v, 4, &nv), 0);
	T_ASSERT(strstr(v[0].why, "signature does not verify") != NULL);
	free(bad);
	/* an identity outside d=, and an expired signature */
	bad = strdup(rfc8463_msg);
	memcpy(strstr(bad, "i=@football"), "i=@footbalx", 11);
	T_EQ_INT(dkim_verify(bad, strlen(bad), key_txt, RFC8463_KEY, v, 4,
	    &nv), 0);
	T_EQ_STR(v[0].why, "i= is not in d=");
	memcpy(strstr(bad, "i=@footbalx.example.com"),
	    "x=152863790            ", 23);
	T_EQ_INT(dkim_verify(bad, strlen(bad), key_txt, RFC8463_KEY, v, 4,
	    &nv), 0);
	T_EQ_STR(v[0].why, "signature expired (x=)");
	free(bad);
}

/* the RFC 8463 private key (its seed) */
static const unsigned char rfc8463_seed[32] = {
	0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a,
	0xf4, 0x92, 0xec, 0x2c, 0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32,
	0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60,
};

static void
test_rfc8463_key(void)
{
	EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL,
	    rfc8463_seed, sizeof(rfc8463_seed));
	struct buf txt = BUF_INIT, why = BUF_INIT;

	T_ASSERT(k != NULL);
	T_EQ_INT(dkim_txt_record(k, &txt, &why), 0);
	T_EQ_STR(buf_cstr(&txt), "v=DKIM1; k=ed25519; "
	    "p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
	EVP_PKEY_free(k);
	buf_free(&txt);
	buf_free(&why);
}

static const char plain[] =
    "Received: from x by y; Sun, 6 Dec 2026 10:00:00 +0000\n"
    "From: Ann <ann@example.test>\n"
    "To: bob@example.org,\n"
    "  carol@example.org\n"
    "Subject: Lunch\n"
    "Date: Sun, 6 Dec 2026 10:00:00 +0000\n"
    "Message-ID: <1@example.test>\n"
    "MIME-Version: 1.0\n"
    "Content-Type: text/plain; charset=us-ascii\n"
    "X-Other: not signed\n"
    "\n"
    "Noon?  \n"
    "\n"
    "\n";

/* sign_both - plain signed with a new ed25519 and rsa key: the signed
 * message into msg, the two TXT records into txt[] */
static int
sign_both(const char *in, struct buf *msg, struct buf txt[2])
{
	EVP_PKEY *k[2] = {NULL, NULL};
	struct dkim_signer s[2];
	struct buf why = BUF_INIT;
	int rc = -1;

	if (dkim_key_generate(DKIM_ED25519_SHA256, &k[0], &why) < 0 ||
	    dkim_key_generate(DKIM_RSA_SHA256, &k[1], &why) < 0 ||
	    dkim_txt_record(k[0], &txt[0], &why) < 0 ||
	    dkim_txt_record(k[1], &txt[1], &why) < 0)
		goto out;
	s[0] = (struct dkim_signer){"example.test", "sel-ed25519", k[0]};
	s[1] = (struct dkim_signer){"example.test", "sel-rsa", k[1]};
	if (dkim_sign(in, strlen(in), s, 2, 1765000000, msg, &why) < 0)
		goto out;
	buf_puts(msg, in);
	rc = 0;
out:
	if (rc < 0)
		fprintf(stderr, "  sign: %s\n", buf_cstr(&why));
	EVP_PKEY_free(k[0]);
	EVP_PKEY_free(k[1]);
	buf_free(&why);
	return rc;
}

/* key_two - the record for the selector asked for */
static int
key_two(const char *domain, const char *selector, struct buf *txt,
    struct buf *why, void *ctx)
{
	struct buf *t = ctx;

	if (strcmp(domain, "example.test") != 0) {
		buf_puts(why, "no such domain");
		return -1;
	}
	buf_append(txt, t[strcmp(selector, "sel-rsa") == 0].data,
	    t[strcmp(selector, "sel-rsa") == 0].len);
	return 0;
}

/* verify_count - passing signatures of msg */
static int
verify_count(const char *msg, struct buf txt[2], struct dkim_verdict *v,
    size_t *nv)
{
	return dkim_verify(msg, strlen(msg), key_two, txt, v, 4, nv);
}

static void
test_sign_verify(void)
{
	struct buf msg = BUF_INIT, txt[2] = {BUF_INIT, BUF_INIT};
	struct buf bad = BUF_INIT;
	struct dkim_verdict v[4];
	size_t nv;
	const char *p;

	T_EQ_INT(sign_both(plain, &msg, txt), 0);
	T_EQ_INT(verify_count(buf_cstr(&msg), txt, v, &nv), 2);
	T_EQ_INT(nv, 2);
	T_EQ_STR(v[0].alg, "ed25519-sha256");
	T_EQ_STR(v[1].alg, "rsa-sha256");
	/* h= as promised: From oversigned, X-Other and Received not */
	T_ASSERT(strstr(msg.data, "h=from:from:subject:date:to:message-id:"
	    "mime-version:content-type;") != NULL ||
	    strstr(msg.data, "h=from:from:") != NULL);
	T_ASSERT(strstr(msg.data, "x-other") == NULL);
	/* every line at most 78 columns */
	for (p = msg.data; *p;) {
		const char *e = strchr(p, '\n');
		size_t n = e ? (size_t)(e - p) : strlen(p);

		if (n > 0 && p[n - 1] == '\r')
			n--;
		T_ASSERT(n <= 78);
		p = e ? e + 1 : p + n;
	}
	/* a changed body */
	buf_set(&bad, msg.data);
	buf_puts(&bad, "P.S.\n");
	T_EQ_INT(verify_count(buf_cstr(&bad), txt, v, &nv), 0);
	T_ASSERT(strstr(v[0].why, "body hash") != NULL);
	/* more whitespace and empty lines at the end: relaxed keeps it */
	buf_set(&bad, msg.data);
	buf_puts(&bad, "\n \n");
	T_EQ_INT(verify_count(buf_cstr(&bad), txt, v, &nv), 2);
	/* a changed signed field */
	buf_set(&bad, msg.data);
	memcpy(strstr(bad.data, "Lunch"), "Lurch", 5);
	T_EQ_INT(verify_count(buf_cstr(&bad), txt, v, &nv), 0);
	/* an added From (oversigning) */
	buf_set(&bad, msg.data);
	p = strstr(bad.data, "\nTo:");
	T_ASSERT(p != NULL);
	{
		struct buf tmp = BUF_INIT;

		buf_append(&tmp, bad.data, (size_t)(p - bad.data) + 1);
		buf_puts(&tmp, "From: Mallory <m@evil.example>\n");
		buf_puts(&tmp, p + 1);
		T_EQ_INT(verify_count(buf_cstr(&tmp), txt, v, &nv), 0);
		buf_free(&tmp);
	}
	/* an unsigned field added: still fine */
	buf_set(&bad, "X-Spam: no\r\n");
	buf_puts(&bad, msg.data);
	T_EQ_INT(verify_count(buf_cstr(&bad), txt, v, &nv), 2);
	/* the wrong key (records swapped between selectors) */
	{
		struct buf sw[2] = {BUF_INIT, BUF_INIT};

		buf_set(&sw[0], txt[1].data);
		buf_set(&sw[1], txt[0].data);
		T_EQ_INT(verify_count(buf_cstr(&msg), sw, v, &nv), 0);
		T_ASSERT(strstr(v[0].why, "does not match") != NULL);
		buf_free(&sw[0]);
		buf_free(&sw[1]);
	}
	buf_free(&msg);
	buf_free(&bad);
	buf_free(&txt[0]);
	buf_free(&txt[1]);
}

static void
test_no_header_end(void)
{
	struct buf msg = BUF_INIT, txt[2] = {BUF_INIT, BUF_INIT};
	struct dkim_verdict v[4];
	size_t nv;

	/* all header, no body; and an empty message */
	T_EQ_INT(sign_both("From: a@example.test\r\nSubject: x", &msg, txt),
	    0);
	T_EQ_INT(verify_count(buf_cstr(&msg), txt, v, &nv), 2);
	buf_free(&msg);
	T_EQ_INT(dkim_verify("", 0, key_txt, NULL, v, 4, &nv), 0);
	T_EQ_INT(nv, 0);
	buf_free(&txt[0]);
	buf_free(&txt[1]);
}

static void
test_key_pem(void)
{
	EVP_PKEY *k = NULL, *k2 = NULL;
	struct buf pem = BUF_INIT, why = BUF_INIT, t1 = BUF_INIT,
	    t2 = BUF_INIT;
	char path[] = "/tmp/dkim_test.XXXXXX";
	int fd;

	T_EQ_INT(dkim_key_generate(DKIM_ED25519_SHA256, &k, &why), 0);
	T_EQ_INT(dkim_key_pem(k, &pem, &why), 0);
	T_ASSERT(strstr(pem.data, "BEGIN PRIVATE KEY") != NULL);
	fd = mkstemp(path);
	T_ASSERT(fd >= 0);
	T_EQ_INT(write(fd, pem.data, pem.len), (long long)pem.len);
	close(fd);
	T_EQ_INT(dkim_key_load(path, &k2, &why), 0);
	T_EQ_INT(dkim_txt_record(k, &t1, &why), 0);
	T_EQ_INT(dkim_txt_record(k2, &t2, &why), 0);
	T_EQ_STR(buf_cstr(&t1), buf_cstr(&t2));
	unlink(path);
	EVP_PKEY_free(k2);
	T_EQ_INT(dkim_key_load(path, &k2, &why), -1);
	EVP_PKEY_free(k);
	EVP_PKEY_free(k2);
	buf_free(&pem);
	buf_free(&why);
	buf_free(&t1);
	buf_free(&t2);
}

static void
test_sign_header(void)
{
	const char *body = strstr(plain, "\n\n") + 2;
	size_t hlen = (size_t)(body - plain);
	struct buf whole = BUF_INIT, split = BUF_INIT, why = BUF_INIT;
	struct dkim_hasher h;
	unsigned char bh[32];
	EVP_PKEY *k = NULL;
	struct dkim_signer s;

	T_EQ_INT(dkim_key_generate(DKIM_ED25519_SHA256, &k, &why), 0);
	s = (struct dkim_signer){"example.test", "sel-ed25519", k};
	T_EQ_INT(dkim_sign(plain, strlen(plain), &s, 1, 1765000000, &whole,
	    &why), 0);
	/* the body hashed one byte at a time, then the header signed:
	 * Ed25519 is deterministic, so the field is the very same */
	T_EQ_INT(dkim_hasher_init(&h), 0);
	for (const char *p = body; *p; p++)
		dkim_hasher_update(&h, p, 1);
	T_EQ_INT(dkim_hasher_final(&h, bh), 0);
	T_EQ_INT(dkim_sign_header(plain, hlen, bh, &s, 1, 1765000000, &split,
	    &why), 0);
	T_EQ_STR(buf_cstr(&split), buf_cstr(&whole));
	EVP_PKEY_free(k);
	buf_free(&whole);
	buf_free(&split);
	buf_free(&why);
}

/* test_body_length - l= covers the first bytes of the body only: text
 * added after them keeps the signature, a change inside breaks it (the
 * field is made here, since herald's signer never writes l=) */
static void
test_body_length(void)
{
	static const char body[] = "Hello\r\nworld\r\n";
	struct buf field = BUF_INIT, data = BUF_INIT, txt = BUF_INIT;
	struct buf msg = BUF_INIT, why = BUF_INIT;
	unsigned char bh[32], hash[32], sig[64];
	char bh64[48], sig64[96];
	size_t siglen = sizeof(sig), nv = 0;
	struct dkim_verdict v[2];
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_PKEY *k = NULL;

	T_EQ_INT(dkim_key_generate(DKIM_ED25519_SHA256, &k, &why), 0);
	T_EQ_INT(dkim_txt_record(k, &txt, &why), 0);
	/* the body is in relaxed form already: bh= of its 14 bytes */
	T_EQ_INT(EVP_Digest(body, strlen(body), bh, NULL, EVP_sha256(),
	    NULL), 1);
	EVP_EncodeBlock((unsigned char *)bh64, bh, sizeof(bh));
	buf_printf(&field, "DKIM-Signature: v=1; a=ed25519-sha256; "
	    "c=relaxed/relaxed; d=example.test; s=s; h=from; l=%zu; "
	    "bh=%s; b=", strlen(body), bh64);
	/* RFC 8463: Ed25519 over the SHA-256 of the header data */
	T_EQ_INT(dkim_canon_header("From: a@example.test", 20, &data), 0);
	T_EQ_INT(dkim_canon_header(field.data, field.len, &data), 0);
	buf_truncate(&data, data.len - 2);
	T_EQ_INT(EVP_Digest(data.data, data.len, hash, NULL, EVP_sha256(),
	    NULL), 1);
	T_ASSERT(md != NULL);
	T_EQ_INT(EVP_DigestSignInit(md, NULL, NULL, NULL, k), 1);
	T_EQ_INT(EVP_DigestSign(md, sig, &siglen, hash, sizeof(hash)), 1);
	EVP_EncodeBlock((unsigned char *)sig64, sig, (int)siglen);
	buf_printf(&msg, "%s%s\r\nFrom: a@example.test\r\n\r\n%s"
	    "P.S. added on the way\r\n", buf_cstr(&field), sig64, body);
	T_EQ_INT(dkim_verify(msg.data, msg.len, key_txt, txt.data, v, 2,
	    &nv), 1);
	T_EQ_INT((int)nv, 1);
	/* a change inside the signed length */
	*strstr(msg.data, "Hello") = 'J';
	T_EQ_INT(dkim_verify(msg.data, msg.len, key_txt, txt.data, v, 2,
	    &nv), 0);
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(k);
	buf_free(&field);
	buf_free(&data);
	buf_free(&txt);
	buf_free(&msg);
	buf_free(&why);
}

/* test_selector - what heraldctl makes and the signer reads */
static void
test_selector(void)
{
	char long_sel[DKIM_SELECTOR_MAX + 2];

	T_ASSERT(dkim_selector_ok("herald-202612"));
	T_ASSERT(dkim_selector_ok("a"));
	T_ASSERT(!dkim_selector_ok(""));
	T_ASSERT(!dkim_selector_ok("-a"));
	T_ASSERT(!dkim_selector_ok("a-"));
	T_ASSERT(!dkim_selector_ok("A"));
	T_ASSERT(!dkim_selector_ok("a.b"));
	T_ASSERT(!dkim_selector_ok("../x"));
	memset(long_sel, 'a', sizeof(long_sel) - 1);
	long_sel[DKIM_SELECTOR_MAX] = '\0';
	T_ASSERT(dkim_selector_ok(long_sel));
	long_sel[DKIM_SELECTOR_MAX] = 'a';
	long_sel[DKIM_SELECTOR_MAX + 1] = '\0';
	T_ASSERT(!dkim_selector_ok(long_sel));
}

static const struct test_case cases[] = {
	{"selectors as heraldctl makes them", test_selector},
	{"RFC 6376 3.4.5 relaxed header", test_canon_header},
	{"relaxed body at every chunk size", test_canon_body},
	{"RFC 8463 example verifies", test_rfc8463},
	{"RFC 8463 key gives its record", test_rfc8463_key},
	{"sign and verify, tampering breaks", test_sign_verify},
	{"messages without body", test_no_header_end},
	{"key to PEM and back", test_key_pem},
	{"header and streamed body hash sign the same", test_sign_header},
	{"l= signs the first bytes of the body only", test_body_length},
	{0},
};

int
main(void)
{
	return test_run(cases);
}
