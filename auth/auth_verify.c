/*
 * auth_verify - is this the password of that account?
 *
 * Hashes are crypt(3) strings checked with libxcrypt's crypt_rn():
 * yescrypt ($y$), SHA512-CRYPT ($6$) and bcrypt ($2b$, $2y$, $2a$), or
 * anything else libxcrypt accepts. The computed string is compared with
 * the stored one in constant time. Whatever the outcome (unknown user,
 * disabled, no password, wrong password) exactly one hash is computed, so
 * the answer time does not tell which it was.
 */
#include <crypt.h>
#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "mail/dir.h"
#include "auth.h"

/* a yescrypt hash at libxcrypt's default cost, of a password nobody has:
 * unknown accounts are checked against it */
#define AUTH_VERIFY_DUMMY \
	"$y$j9T$XuOThMbosBhELcLeHyq.J.$FFIY3Xl9iCn1vvdFIwMwXJvD8Y.EkryrAYhdxnQyLN8"

static struct crypt_data *auth_verify_data;	/* ~32 KB scratch, reused */

/* auth_verify_canonical - lowercase, add the default domain */
int
auth_verify_canonical(const char *login, const char *default_domain,
    char *out, size_t size, struct buf *why)
{
	size_t n = strlen(login), dlen;
	const char *at;

	if (n == 0) {
		buf_set(why, "empty login name");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)login[i];

		if (c <= ' ' || c == 0x7f) {
			buf_set(why, "bad character in login name");
			return -1;
		}
	}
	at = strrchr(login, '@');
	if (at == login || (at != NULL && at[1] == '\0')) {
		buf_set(why, "login name is no address");
		return -1;
	}
	if (at == NULL) {
		if (default_domain == NULL || *default_domain == '\0') {
			buf_set(why, "login name without domain and no "
			    "auth_default_domain");
			return -1;
		}
		dlen = strlen(default_domain);
		if (n + 1 + dlen >= size || n + 1 + dlen > AUTH_USER_MAX) {
			buf_set(why, "login name too long");
			return -1;
		}
		memcpy(out, login, n);
		out[n] = '@';
		memcpy(out + n + 1, default_domain, dlen + 1);
	} else {
		if (n >= size || n > AUTH_USER_MAX) {
			buf_set(why, "login name too long");
			return -1;
		}
		memcpy(out, login, n + 1);
	}
	for (char *p = out; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return 0;
}

/* auth_verify_hash - crypt password with hash as setting and compare */
int
auth_verify_hash(const char *password, const char *hash)
{
	const char *got;
	size_t glen, hlen = strlen(hash);
	int match;

	if (auth_verify_data == NULL)
		auth_verify_data = xcalloc(1, sizeof(*auth_verify_data));
	errno = 0;
	got = crypt_rn(password, hash, auth_verify_data,
	    (int)sizeof(*auth_verify_data));
	if (got == NULL || got[0] == '*' || hlen == 0 || hash[0] == '*')
		return -1;
	glen = strlen(got);
	match = glen == hlen && CRYPTO_memcmp(got, hash, hlen) == 0;
	/* the scratch space holds the key schedule: wipe it */
	explicit_bzero(auth_verify_data, sizeof(*auth_verify_data));
	return match ? 1 : 0;
}

/* auth_verify_dummy - one hash computation that cannot match */
void
auth_verify_dummy(const char *password)
{
	(void)auth_verify_hash(password, AUTH_VERIFY_DUMMY);
}

/* auth_verify_account - user exists, is enabled, and password matches */
enum auth_verdict
auth_verify_account(struct dir *d, const char *data_dir, const char *account,
    const char *password, struct buf *reason)
{
	struct dir_user u;
	struct buf hash = BUF_INIT, why = BUF_INIT;
	enum auth_verdict v;
	int found, r;

	if ((found = dir_user_get(d, account, &u, &why)) < 0) {
		buf_printf(reason, "directory lookup: %s", buf_cstr(&why));
		v = AUTH_VERDICT_TEMPFAIL;
		goto out;
	}
	if (found == 0 || !u.enabled) {
		auth_verify_dummy(password);
		buf_puts(reason, found ? "account disabled" : "unknown user");
		v = AUTH_VERDICT_FAIL;
		goto out;
	}
	if ((found = dir_passwd_get(data_dir, account, &hash, &why)) < 0) {
		buf_printf(reason, "password database: %s", buf_cstr(&why));
		v = AUTH_VERDICT_TEMPFAIL;
		goto out;
	}
	if (found == 0) {
		auth_verify_dummy(password);
		buf_puts(reason, "no password set");
		v = AUTH_VERDICT_FAIL;
		goto out;
	}
	r = auth_verify_hash(password, buf_cstr(&hash));
	if (r < 0) {
		buf_puts(reason, "unusable password hash");
		v = AUTH_VERDICT_FAIL;
	} else if (r == 0) {
		buf_puts(reason, "wrong password");
		v = AUTH_VERDICT_FAIL;
	} else {
		v = AUTH_VERDICT_OK;
	}
out:
	if (hash.cap > 0)
		explicit_bzero(hash.data, hash.cap);
	buf_free(&hash);
	buf_free(&why);
	return v;
}
