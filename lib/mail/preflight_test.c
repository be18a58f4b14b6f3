/*
 * preflight_test - the TLS preflight refuses a missing certificate, a key
 * that is not a key and a key of another certificate, and (as root) a
 * key the service user cannot read; unknown users and groups are named.
 */
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "base/buf.h"
#include "base/test.h"
#include "mail/preflight.h"

static char tmpdir[] = "/tmp/herald-preflight-test-XXXXXX";
static char cert[256], key[256], key2[256], junk[256], missing[256];

/* write_pair - a self-signed certificate and its key; key_path2 gets an
 * unrelated key */
static int
write_pair(void)
{
	EVP_PKEY *pk = EVP_EC_gen("P-256"), *pk2 = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name;
	FILE *f;
	int ok = pk != NULL && pk2 != NULL && x != NULL;

	if (ok) {
		ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
		X509_gmtime_adj(X509_getm_notBefore(x), 0);
		X509_gmtime_adj(X509_getm_notAfter(x), 3600);
		X509_set_pubkey(x, pk);
		name = X509_get_subject_name(x);
		X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
		    (const unsigned char *)"mx.example.test", -1, -1, 0);
		X509_set_issuer_name(x, name);
		ok = X509_sign(x, pk, EVP_sha256()) > 0;
	}
	if (ok && (f = fopen(cert, "w")) != NULL) {
		ok = PEM_write_X509(f, x) == 1;
		ok &= fclose(f) == 0;
	} else {
		ok = 0;
	}
	if (ok && (f = fopen(key, "w")) != NULL) {
		ok = PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL);
		ok &= fclose(f) == 0;
	} else {
		ok = 0;
	}
	if (ok && (f = fopen(key2, "w")) != NULL) {
		ok = PEM_write_PrivateKey(f, pk2, NULL, NULL, 0, NULL, NULL);
		ok &= fclose(f) == 0;
	} else {
		ok = 0;
	}
	if (ok && (f = fopen(junk, "w")) != NULL) {
		ok = fputs("this is not a key\n", f) >= 0;
		ok &= fclose(f) == 0;
	} else {
		ok = 0;
	}
	X509_free(x);
	EVP_PKEY_free(pk);
	EVP_PKEY_free(pk2);
	return ok ? 0 : -1;
}

/* refused - preflight_tls as ourselves fails, why contains want */
static int
refused(const char *c, const char *k, const char *want)
{
	struct buf why = BUF_INIT;
	int ok;

	ok = preflight_tls(NULL, NULL, c, k, &why) < 0 &&
	    strstr(buf_cstr(&why), want) != NULL;
	if (!ok)
		fprintf(stderr, "  why: \"%s\", want \"%s\"\n", buf_cstr(&why),
		    want);
	buf_free(&why);
	return ok;
}

static void
test_good_pair(void)
{
	struct buf why = BUF_INIT;

	T_EQ_INT(preflight_tls(NULL, NULL, cert, key, &why), 0);
	T_EQ_INT(why.len, 0);
	buf_free(&why);
}

static void
test_missing_cert(void)
{
	T_ASSERT(refused(missing, key, "No such file"));
	T_ASSERT(refused(missing, key, missing));
}

static void
test_key_not_a_key(void)
{
	T_ASSERT(refused(cert, junk, "private key"));
	T_ASSERT(refused(cert, junk, junk));
	T_ASSERT(refused(cert, missing, "private key"));
}

static void
test_cert_not_a_cert(void)
{
	T_ASSERT(refused(junk, key, "certificate"));
}

static void
test_key_mismatch(void)
{
	T_ASSERT(refused(cert, key2, "mismatch"));
}

/* as root: the check runs as the service user, who cannot read a key
 * only root may read; readable, the same files pass */
static void
test_unreadable_for_service_user(void)
{
	struct buf why = BUF_INIT;

	if (geteuid() != 0 || getpwnam("nobody") == NULL) {
		fprintf(stderr, "  skipped: needs root and user nobody\n");
		return;
	}
	T_EQ_INT(chmod(tmpdir, 0755), 0);
	T_EQ_INT(chmod(cert, 0644), 0);
	T_EQ_INT(chmod(key, 0600), 0);
	/* root itself reads it */
	T_EQ_INT(preflight_tls(NULL, NULL, cert, key, &why), 0);
	T_ASSERT(preflight_tls("nobody", NULL, cert, key, &why) < 0);
	T_ASSERT(strstr(buf_cstr(&why), "Permission denied") != NULL);
	T_ASSERT(strstr(buf_cstr(&why), key) != NULL);
	buf_reset(&why);
	T_EQ_INT(chmod(key, 0644), 0);
	T_EQ_INT(preflight_tls("nobody", NULL, cert, key, &why), 0);
	buf_free(&why);
}

static void
test_unknown_user_and_group(void)
{
	struct buf why = BUF_INIT;

	T_ASSERT(preflight_user("herald_user", "no-such-user-herald", NULL,
	    NULL, &why) < 0);
	T_ASSERT(strstr(buf_cstr(&why), "herald_user: user "
	    "\"no-such-user-herald\" does not exist") != NULL);
	buf_reset(&why);
	T_ASSERT(preflight_group("directory_group", "no-such-group-herald",
	    NULL, &why) < 0);
	T_ASSERT(strstr(buf_cstr(&why), "no-such-group-herald") != NULL);
	buf_reset(&why);
	T_EQ_INT(preflight_user("herald_user", "root", NULL, NULL, &why), 0);
	if (geteuid() == 0) {
		T_ASSERT(preflight_tls("no-such-user-herald", NULL, cert, key,
		    &why) < 0);
		T_ASSERT(strstr(buf_cstr(&why), "does not exist") != NULL);
	}
	buf_free(&why);
}

static const struct test_case cases[] = {
	{"a matching pair loads", test_good_pair},
	{"missing certificate", test_missing_cert},
	{"key that is not a key", test_key_not_a_key},
	{"certificate that is not one", test_cert_not_a_cert},
	{"key of another certificate", test_key_mismatch},
	{"key unreadable for the service user",
	    test_unreadable_for_service_user},
	{"unknown user and group", test_unknown_user_and_group},
	{0},
};

int
main(void)
{
	int rc;

	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(cert, sizeof(cert), "%s/cert.pem", tmpdir);
	snprintf(key, sizeof(key), "%s/key.pem", tmpdir);
	snprintf(key2, sizeof(key2), "%s/other.pem", tmpdir);
	snprintf(junk, sizeof(junk), "%s/junk.pem", tmpdir);
	snprintf(missing, sizeof(missing), "%s/missing.pem", tmpdir);
	if (write_pair() < 0) {
		fprintf(stderr, "cannot write the test certificate\n");
		return 1;
	}
	rc = test_run(cases);
	test_rm_tree(tmpdir);
	return rc;
}
