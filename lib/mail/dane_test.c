/*
 * dane_test - TLSA records into OpenSSL's DANE verifier (dane.c): which
 * records SMTP can use, and real handshakes (client and server in this
 * process over a BIO pair, a CA and certificates made here) that pass
 * with a matching DANE-EE or DANE-TA record and fail on a mismatch, with
 * no name check for DANE-EE and the reference names checked for DANE-TA.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "base/buf.h"
#include "base/test.h"
#include "base/tls.h"
#include "mail/dane.h"
#include "mail/dns.h"

/* the test PKI: a CA, and a leaf for mx.example.test signed by it */
static EVP_PKEY *ca_key, *leaf_key;
static X509 *ca_cert, *leaf_cert;
static SSL_CTX *server_ctx, *client_ctx;

/* ext - add extension nid = value to x (issuer: signer's cert) */
static bool
ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *e;
	bool ok;

	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
	if ((e = X509V3_EXT_conf_nid(NULL, &v3, nid, value)) == NULL)
		return false;
	ok = X509_add_ext(x, e, -1) == 1;
	X509_EXTENSION_free(e);
	return ok;
}

/* cert_new - a certificate for key named cn (and san), signed by
 * issuer/ikey (NULL: self-signed CA) */
static X509 *
cert_new(EVP_PKEY *key, const char *cn, const char *san, X509 *issuer,
    EVP_PKEY *ikey)
{
	static long serial = 1;
	X509 *x = X509_new();
	X509_NAME *n = X509_get_subject_name(x);
	bool ca = issuer == NULL;

	if (X509_set_version(x, 2) != 1 ||
	    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), 86400) == NULL ||
	    X509_set_pubkey(x, key) != 1 ||
	    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
	        (const unsigned char *)cn, -1, -1, 0) != 1 ||
	    X509_set_issuer_name(x, ca ? n : X509_get_subject_name(issuer)) !=
	        1)
		abort();
	if (!ext(x, ca ? x : issuer, NID_basic_constraints,
	        ca ? "critical,CA:TRUE" : "CA:FALSE") ||
	    !ext(x, ca ? x : issuer, NID_subject_key_identifier, "hash") ||
	    (ca && !ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign")) ||
	    (!ca && !ext(x, issuer, NID_subject_alt_name, san)) ||
	    (!ca && !ext(x, issuer, NID_ext_key_usage, "serverAuth")))
		abort();
	if (X509_sign(x, ca ? key : ikey, EVP_sha256()) == 0)
		abort();
	return x;
}

/* setup - the PKI and both contexts, once, before the cases run */
static void
setup(void)
{
	struct buf why = BUF_INIT;

	ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	leaf_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (ca_key == NULL || leaf_key == NULL)
		abort();
	ca_cert = cert_new(ca_key, "dane test CA", NULL, NULL, NULL);
	leaf_cert = cert_new(leaf_key, "mx.example.test", "DNS:mx.example.test",
	    ca_cert, ca_key);
	if ((server_ctx = SSL_CTX_new(TLS_server_method())) == NULL ||
	    SSL_CTX_use_certificate(server_ctx, leaf_cert) != 1 ||
	    SSL_CTX_use_PrivateKey(server_ctx, leaf_key) != 1 ||
	    SSL_CTX_add1_chain_cert(server_ctx, ca_cert) != 1)
		abort();
	/* the remote agent's context: the system store, verify none */
	if ((client_ctx = tls_client_ctx_new(NULL, &why)) == NULL) {
		fprintf(stderr, "client context: %s\n", buf_cstr(&why));
		abort();
	}
	buf_free(&why);
}

/* spki_hash - SHA2-256 (or -512) of the key's SubjectPublicKeyInfo */
static size_t
spki_hash(EVP_PKEY *key, const EVP_MD *md, uint8_t *out)
{
	unsigned char *der = NULL;
	int len = i2d_PUBKEY(key, &der);
	unsigned n = 0;

	if (len <= 0 || EVP_Digest(der, (size_t)len, out, &n, md, NULL) != 1)
		abort();
	OPENSSL_free(der);
	return n;
}

/* cert_hash - SHA2-256 (or -512) of the whole certificate */
static size_t
cert_hash(X509 *x, const EVP_MD *md, uint8_t *out)
{
	unsigned n = 0;

	if (X509_digest(x, md, out, &n) != 1)
		abort();
	return n;
}

/* tlsa - a TLSA record over data[0..len) */
static struct dns_rr
tlsa(uint8_t usage, uint8_t selector, uint8_t mtype, uint8_t *data, size_t len)
{
	struct dns_rr rr;

	memset(&rr, 0, sizeof(rr));
	rr.type = DNS_T_TLSA;
	rr.usage = usage;
	rr.selector = selector;
	rr.mtype = mtype;
	rr.data = data;
	rr.len = len;
	return rr;
}

/* tlsa_of - TLSA usage selector mtype of certificate x, the digest in
 * h (selector 0: the whole certificate, 1: its key; mtype 1: SHA2-256,
 * 2: SHA2-512) */
static struct dns_rr
tlsa_of(uint8_t usage, uint8_t selector, uint8_t mtype, X509 *x, uint8_t *h)
{
	const EVP_MD *md = mtype == 2 ? EVP_sha512() : EVP_sha256();
	size_t n = selector == 0 ? cert_hash(x, md, h) :
	    spki_hash(X509_get0_pubkey(x), md, h);

	return tlsa(usage, selector, mtype, h, n);
}

/* handshake - the client armed with rr (base, host) against the test
 * server; 1 verified (matched in *m), 0 handshake failed (the verify
 * result in *vr), -1 dane_arm refused */
static int
handshake(const char *base, const char *host, const struct dns_rr *rr, size_t n,
    struct buf *m, long *vr)
{
	SSL *c, *s;
	BIO *bc, *bs;
	struct buf why = BUF_INIT;
	int rc = 0;
	bool cdone = false, sdone = false;

	c = SSL_new(client_ctx);
	s = SSL_new(server_ctx);
	if (c == NULL || s == NULL || BIO_new_bio_pair(&bc, 0, &bs, 0) != 1)
		abort();
	SSL_set_bio(c, bc, bc);
	SSL_set_bio(s, bs, bs);
	if (dane_arm(c, base, host, rr, n, &why) < 0) {
		rc = -1;
		goto out;
	}
	SSL_set_verify(c, SSL_VERIFY_PEER, NULL); /* as smtp_client */
	for (int round = 0; round < 100 && !(cdone && sdone); round++) {
		int r;

		if (!cdone) {
			if ((r = SSL_connect(c)) == 1)
				cdone = true;
			else if (SSL_get_error(c, r) != SSL_ERROR_WANT_READ)
				break;
		}
		if (!sdone) {
			if ((r = SSL_accept(s)) == 1)
				sdone = true;
			else if (SSL_get_error(s, r) != SSL_ERROR_WANT_READ)
				break;
		}
	}
	*vr = SSL_get_verify_result(c);
	if (cdone && dane_matched(c, m))
		rc = 1;
out:
	SSL_free(c);
	SSL_free(s);
	buf_free(&why);
	return rc;
}

/* expect - a handshake armed with rr[0..n) for (base, host) ends as
 * want says (1 verified by the record named match, 0 failed, -1 refused
 * by dane_arm), with verify result vr unless refused */
static void
expect(const char *base, const char *host, const struct dns_rr *rr, size_t n,
    int want, const char *match, long vr)
{
	struct buf m = BUF_INIT;
	char matched[32];
	long got_vr = -1;
	int got = handshake(base, host, rr, n, &m, &got_vr);

	snprintf(matched, sizeof(matched), "%s", buf_cstr(&m));
	buf_free(&m);
	if (got != want || (want == 1 && strcmp(matched, match) != 0) ||
	    (want >= 0 && got_vr != vr))
		fprintf(stderr, "  handshake for %s%s%s\n", base,
		    host != NULL ? " via " : "", host != NULL ? host : "");
	T_EQ_INT(got, want);
	if (want == 1)
		T_EQ_STR(matched, match);
	if (want >= 0)
		T_EQ_INT(got_vr, vr);
}

static void
test_usable(void)
{
	static uint8_t d[64];
	static const struct {
		uint8_t u, s, m;
		size_t len;
		bool want;
	} cases[] = {
	    {3, 1, 1, 32, true},
	    {2, 0, 1, 32, true},
	    {3, 1, 2, 64, true},
	    {3, 0, 0, 64, true},
	    {2, 1, 0, 10, true},
	    {0, 0, 1, 32, false}, /* PKIX-TA: unusable for SMTP */
	    {1, 1, 1, 32, false}, /* PKIX-EE: unusable for SMTP */
	    {4, 1, 1, 32, false},
	    {3, 2, 1, 32, false},
	    {3, 1, 3, 32, false},
	    {3, 1, 1, 31, false},
	    {3, 1, 1, 64, false},
	    {3, 1, 2, 32, false},
	    {3, 0, 0, 0, false},
	};
	struct dns_rr rr[sizeof(cases) / sizeof(cases[0])];
	size_t want = 0;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rr[i] =
		    tlsa(cases[i].u, cases[i].s, cases[i].m, d, cases[i].len);
		if (dane_usable(&rr[i]) != cases[i].want)
			T_FAIL_("TLSA %u %u %u (%zu bytes): usable %d, want %d",
			    cases[i].u, cases[i].s, cases[i].m, cases[i].len,
			    !cases[i].want, cases[i].want);
		want += cases[i].want;
	}
	T_EQ_INT(dane_count_usable(rr, sizeof(rr) / sizeof(rr[0])), want);
	rr[0].type = DNS_T_A;
	T_ASSERT(!dane_usable(&rr[0]));
}

static void
test_ee_match_no_name_check(void)
{
	uint8_t h[EVP_MAX_MD_SIZE];
	struct dns_rr rr = tlsa_of(3, 1, 1, leaf_cert, h);

	/* the certificate names mx.example.test, not this host: DANE-EE
	 * authenticates the key, not the name (RFC 7672 3.1.1) */
	expect("mx.other.test", NULL, &rr, 1, 1, "TLSA 3 1 1", X509_V_OK);
}

static void
test_ee_full_cert_sha512(void)
{
	uint8_t h[EVP_MAX_MD_SIZE], bad[32];
	struct dns_rr rr[2];

	memset(bad, 0xaa, sizeof(bad));
	rr[0] = tlsa(3, 1, 1, bad, sizeof(bad)); /* a stale key */
	rr[1] = tlsa_of(3, 0, 2, leaf_cert, h);
	expect("mx.example.test", NULL, rr, 2, 1, "TLSA 3 0 2", X509_V_OK);
}

static void
test_ee_mismatch_fails(void)
{
	uint8_t h[EVP_MAX_MD_SIZE];
	struct dns_rr rr = tlsa_of(3, 1, 1, leaf_cert, h);

	h[0] ^= 1;
	expect("mx.example.test", NULL, &rr, 1, 0, NULL,
	    X509_V_ERR_DANE_NO_MATCH);
}

static void
test_ta_match_checks_name(void)
{
	uint8_t h[EVP_MAX_MD_SIZE];
	struct dns_rr rr = tlsa_of(2, 0, 1, ca_cert, h);

	expect("mx.example.test", NULL, &rr, 1, 1, "TLSA 2 0 1", X509_V_OK);
	/* the trust anchor signed it, but not for this name */
	expect("mx.other.test", NULL, &rr, 1, 0, NULL,
	    X509_V_ERR_HOSTNAME_MISMATCH);
	/* the MX host name before CNAME expansion is a reference name
	 * too (RFC 7672 3.2.2): base is the target, host the MX name */
	expect("target.other.test", "mx.example.test", &rr, 1, 1,
	    "TLSA 2 0 1", X509_V_OK);
}

static void
test_ta_spki(void)
{
	uint8_t h[EVP_MAX_MD_SIZE];
	struct dns_rr rr = tlsa_of(2, 1, 1, ca_cert, h);

	expect("mx.example.test", NULL, &rr, 1, 1, "TLSA 2 1 1", X509_V_OK);
}

static void
test_pkix_usages_refused(void)
{
	uint8_t h[EVP_MAX_MD_SIZE];
	struct dns_rr rr[2];

	/* records that would match, but with usages SMTP may not use */
	rr[0] = tlsa_of(0, 0, 1, ca_cert, h);
	rr[1] = tlsa(1, 1, 1, h, rr[0].len);
	expect("mx.example.test", NULL, rr, 2, -1, NULL, 0);
}

static const struct test_case cases[] = {
    {"usable records (RFC 7672 3.1.3)", test_usable},
    {"DANE-EE SPKI match, no name check", test_ee_match_no_name_check},
    {"DANE-EE full cert SHA2-512 among a stale one", test_ee_full_cert_sha512},
    {"DANE-EE mismatch fails the handshake", test_ee_mismatch_fails},
    {"DANE-TA match checks the reference names", test_ta_match_checks_name},
    {"DANE-TA by the CA's key", test_ta_spki},
    {"PKIX-TA and PKIX-EE are not used", test_pkix_usages_refused},
    {0},
};

int
main(void)
{
	int rc;

	setup();
	rc = test_run(cases);
	SSL_CTX_free(server_ctx);
	SSL_CTX_free(client_ctx);
	X509_free(ca_cert);
	X509_free(leaf_cert);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(leaf_key);
	return rc;
}
