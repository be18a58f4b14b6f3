/*
 * auth_verify - is this the password of that account?
 *
 * Hashes are crypt(3) strings checked with libxcrypt's crypt_rn():
 * yescrypt ($y$), SHA512-CRYPT ($6$) and bcrypt ($2b$, $2y$, $2a$), or
 * anything else libxcrypt accepts. The computed string is compared with
 * the stored one in constant time.
 *
 * Equal work: whatever the outcome (unknown user, disabled, no password,
 * unusable hash, wrong password) and whatever the scheme, every check
 * makes exactly one yescrypt computation at libxcrypt's default cost: the
 * real one for a user whose hash is yescrypt at that cost, a dummy one
 * for everybody else, followed for an enabled user with another hash by
 * the real check. What that check adds (about a millisecond for a default
 * SHA512-CRYPT, more for costly bcrypt) is hidden by authd's answer floor,
 * and goes away when the hash is replaced at the next login
 * (auth_verify_upgrade).
 *
 * The one exception is a hit in authd's cache of recent successful
 * logins (auth_cache.c): the right password of an account whose current
 * hash has not changed since it last checked out costs no yescrypt. It
 * tells nothing a success would not: only the right password hits, and
 * every wrong one still pays the full check.
 */
#include <crypt.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "base/buf.h"
#include "base/evloop.h"
#include "base/log.h"
#include "base/mem.h"
#include "mail/dir.h"
#include "auth.h"

/* used when libxcrypt cannot make a setting: a yescrypt hash at its
 * default cost, of a password nobody has */
#define AUTH_VERIFY_DUMMY \
	"$y$j9T$XuOThMbosBhELcLeHyq.J.$FFIY3Xl9iCn1vvdFIwMwXJvD8Y.EkryrAYhdxnQyLN8"

static char auth_verify_dummy_setting[CRYPT_GENSALT_OUTPUT_SIZE];
static size_t auth_verify_prefix_len;	/* "$y$j9T$": the default cost */
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
	if (got == NULL || got[0] == '*' || hlen == 0 || hash[0] == '*') {
		match = -1;
	} else {
		glen = strlen(got);
		match = glen == hlen && CRYPTO_memcmp(got, hash, hlen) == 0;
	}
	/* the scratch space holds the key schedule: wipe it */
	explicit_bzero(auth_verify_data, sizeof(*auth_verify_data));
	return match;
}

/* auth_verify_setup - learn libxcrypt's default yescrypt setting once */
static void
auth_verify_setup(void)
{
	const char *src = AUTH_VERIFY_DUMMY, *p;
	int dollars = 0;

	if (auth_verify_prefix_len > 0)
		return;
	if (crypt_gensalt_rn("$y$", 0, NULL, 0, auth_verify_dummy_setting,
	    (int)sizeof(auth_verify_dummy_setting)) != NULL &&
	    auth_verify_dummy_setting[0] == '$')
		src = auth_verify_dummy_setting;
	else
		msg_warn("crypt_gensalt: no yescrypt setting (%m): using a "
		    "built-in one");
	if (src != auth_verify_dummy_setting)
		snprintf(auth_verify_dummy_setting,
		    sizeof(auth_verify_dummy_setting), "%s", src);
	/* "$y$" params "$": through the third '$' */
	for (p = auth_verify_dummy_setting; *p != '\0' && dollars < 3; p++)
		if (*p == '$')
			dollars++;
	auth_verify_prefix_len = (size_t)(p - auth_verify_dummy_setting);
}

/* auth_verify_dummy - one default-cost yescrypt that cannot match */
void
auth_verify_dummy(const char *password)
{
	auth_verify_setup();
	/* a setting without a hash part: the result never equals it */
	(void)auth_verify_hash(password, auth_verify_dummy_setting);
}

/* auth_verify_current - yescrypt at the default cost? */
bool
auth_verify_current(const char *hash)
{
	auth_verify_setup();
	return strncmp(hash, auth_verify_dummy_setting,
	    auth_verify_prefix_len) == 0;
}

/* auth_verify_scheme - a name for the log */
const char *
auth_verify_scheme(const char *hash)
{
	static const struct {
		const char *prefix;
		const char *name;
	} schemes[] = {
		{"$y$", "yescrypt"}, {"$6$", "SHA512-CRYPT"},
		{"$5$", "SHA256-CRYPT"}, {"$2b$", "bcrypt"}, {"$2y$", "bcrypt"},
		{"$2a$", "bcrypt"}, {"$7$", "scrypt"},
		{"$gy$", "gost-yescrypt"}, {"$1$", "MD5-CRYPT"},
	};

	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
		if (strncmp(hash, schemes[i].prefix,
		    strlen(schemes[i].prefix)) == 0)
			return schemes[i].name;
	return "another scheme";
}

/* auth_verify_account - user exists, is enabled, and password matches */
enum auth_verdict
auth_verify_account(struct dir *d, struct dir_passwd *pw,
    struct auth_cache *cache, const char *account, const char *password,
    struct buf *stale, struct buf *reason)
{
	struct dir_user u;
	struct buf hash = BUF_INIT, why = BUF_INIT;
	enum auth_verdict v;
	int found, have = 0, r = 0;
	/* monotonic seconds: setting the clock back keeps no entry of
	 * the cache longer than auth_cache_ttl */
	long long now = evloop_clock() / 1000;
	bool usable, cached = false;

	if ((found = dir_user_get(d, account, &u, &why)) < 0) {
		buf_printf(reason, "directory lookup: %s", buf_cstr(&why));
		v = AUTH_VERDICT_TEMPFAIL;
		goto out;
	}
	/* the hash is looked up for everybody, known or not */
	if (pw != NULL && (have = dir_passwd_lookup(pw, account, &hash,
	    &why)) < 0) {
		buf_printf(reason, "password database: %s", buf_cstr(&why));
		v = AUTH_VERDICT_TEMPFAIL;
		goto out;
	}
	usable = found > 0 && u.enabled && have > 0;
	/* exactly one default-cost yescrypt, real or dummy, unless this
	 * password of this hash checked out lately (auth_cache.c) */
	if (usable && auth_cache_hit(cache, account, buf_cstr(&hash),
	    password, now)) {
		r = 1;
		cached = true;
	} else if (usable && auth_verify_current(buf_cstr(&hash))) {
		r = auth_verify_hash(password, buf_cstr(&hash));
	} else {
		auth_verify_dummy(password);
		if (usable)
			r = auth_verify_hash(password, buf_cstr(&hash));
	}
	v = AUTH_VERDICT_FAIL;
	if (found == 0)
		buf_puts(reason, "unknown user");
	else if (!u.enabled)
		buf_puts(reason, "account disabled");
	else if (have == 0)
		buf_puts(reason, "no password set");
	else if (r < 0)
		buf_puts(reason, "unusable password hash");
	else if (r == 0)
		buf_puts(reason, "wrong password");
	else {
		v = AUTH_VERDICT_OK;
		if (!auth_verify_current(buf_cstr(&hash)))
			buf_puts(stale, buf_cstr(&hash));
		else if (!cached)
			auth_cache_store(cache, account, buf_cstr(&hash),
			    password, now);
	}
out:
	if (hash.cap > 0)
		explicit_bzero(hash.data, hash.cap);
	buf_free(&hash);
	buf_free(&why);
	return v;
}

/* auth_verify_upgrade - replace hash old of account by a default one */
int
auth_verify_upgrade(struct dir_passwd *pw, const char *account,
    const char *password, const char *old, struct buf *why)
{
	struct buf hash = BUF_INIT;
	int r;

	if (dir_passwd_hash(password, &hash, why) < 0)
		return -1;
	r = dir_passwd_replace(pw, account, old, buf_cstr(&hash), why);
	explicit_bzero(hash.data, hash.cap);
	buf_free(&hash);
	return r;
}
