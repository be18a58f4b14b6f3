/*
 * auth_cache - authd's memory of recent successful logins, so that a
 * mail client that logs in again and again with the same password does
 * not cost a yescrypt computation each time (Dovecot's auth_cache, done
 * with keyed digests).
 *
 * After a successful full check authd stores, per account: HMAC-SHA256
 * of the password and HMAC-SHA256 of the stored hash string it was
 * checked against, both under a random 256-bit key made when the
 * process starts (getrandom; never written anywhere, never logged,
 * wiped at exit), and an expiry auth_cache_ttl ahead. At most
 * auth_cache_size entries; the least recently used one makes room. An
 * expired entry is wiped at the next lookup or store of any account
 * (entries are also kept in the order they expire), so none outlives its
 * TTL by more than the time to the next login.
 *
 * A later check hits only when all of these hold, in this order:
 *   - the throttle checks passed as always (authd_decide: a locked
 *     address or account never reaches the cache);
 *   - the directory lookup and password database lookup that authd does
 *     anyway find the account, enabled, with a hash whose digest is the
 *     stored one (so heraldctl passwd, disable and delete take effect at
 *     the next login; a changed or expired entry is dropped);
 *   - the entry has not expired;
 *   - the HMAC of the offered password equals the stored one, compared
 *     in constant time.
 * Anything else is a miss, and the full equal-work check runs exactly as
 * without a cache (auth_verify.c). Failures are never stored, and a wrong
 * password never gets cheaper: each guess still pays one yescrypt.
 *
 * Why this is safe: what authd keeps is useless outside this process.
 * Without the key, which exists only in this process's memory, an entry
 * cannot be tested against a guessed password at all; with the key (a
 * core dump, a debugger as auth_user or root) it is a fast test of
 * guesses for the accounts logged in within the TTL, which is the trade:
 * authd's memory holds keyed digests of recently used passwords for up
 * to auth_cache_ttl. The password database already lives in this
 * process's reach, so nobody who can read authd's memory gains another
 * way in. Each authd process has its own key and entries; a reload
 * replaces the processes, which empties every cache (heraldctl reload is
 * the flush). auth_cache_ttl 0 or auth_cache_size 0 turns it off.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "base/log.h"
#include "base/mem.h"
#include "auth.h"

#define AUTH_CACHE_KEY 32	/* bytes of HMAC key */
#define AUTH_CACHE_MAC 32	/* bytes of HMAC-SHA256 */

/* one account's last successful login */
struct auth_cache_entry {
	struct auth_cache_entry *next;		/* in its bucket */
	struct auth_cache_entry *newer, *older;	/* the LRU list */
	struct auth_cache_entry *later, *sooner;	/* by expiry */
	long long expires;			/* monotonic s it goes stale */
	unsigned char pw_mac[AUTH_CACHE_MAC];	/* of the password */
	unsigned char hash_mac[AUTH_CACHE_MAC];	/* of the stored hash */
	char account[];				/* canonical address */
};

struct auth_cache {
	unsigned char key[AUTH_CACHE_KEY];	/* random, this process */
	uint64_t seed;			/* bucket hash, random too */
	EVP_MAC *mac;				/* HMAC */
	struct auth_cache_entry **bucket;
	size_t nbucket;				/* power of two */
	struct auth_cache_entry *newest, *oldest;
	struct auth_cache_entry *first_due, *last_due;	/* by expiry */
	size_t count, max;
	long long ttl;				/* seconds */
	struct auth_cache_stats stats;
};

/* auth_cache_random - fill p with len random bytes; fatal on failure */
static void
auth_cache_random(void *p, size_t len)
{
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		n = getrandom((char *)p + got, len - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			msg_fatal("auth cache: getrandom: %m");
		got += (size_t)n;
	}
}

/* auth_cache_new - a cache of size entries living ttl seconds; NULL when
 * either is 0 (off) */
struct auth_cache *
auth_cache_new(long long size, long long ttl)
{
	struct auth_cache *c;

	if (size <= 0 || ttl <= 0)
		return NULL;
	c = xcalloc(1, sizeof(*c));
	auth_cache_random(c->key, sizeof(c->key));
	/* not from the key: bucket timing must tell nothing of it */
	auth_cache_random(&c->seed, sizeof(c->seed));
	if ((c->mac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL)) == NULL)
		msg_fatal("auth cache: OpenSSL has no HMAC");
	c->max = (size_t)size;
	c->ttl = ttl;
	for (c->nbucket = 16; c->nbucket < c->max && c->nbucket < (1u << 24);
	    c->nbucket <<= 1)
		;
	c->bucket = xcalloc(c->nbucket, sizeof(*c->bucket));
	return c;
}

/* auth_cache_wipe_entry - forget one entry's digests and free it */
static void
auth_cache_wipe_entry(struct auth_cache_entry *e)
{
	explicit_bzero(e, sizeof(*e) + strlen(e->account) + 1);
	free(e);
}

/* auth_cache_flush - drop every entry (the key stays) */
void
auth_cache_flush(struct auth_cache *c)
{
	struct auth_cache_entry *e, *next;

	if (c == NULL)
		return;
	for (e = c->newest; e != NULL; e = next) {
		next = e->older;
		auth_cache_wipe_entry(e);
	}
	memset(c->bucket, 0, c->nbucket * sizeof(*c->bucket));
	c->newest = c->oldest = NULL;
	c->first_due = c->last_due = NULL;
	c->count = 0;
}

/* auth_cache_free - wipe the entries and the key; *cp becomes NULL */
void
auth_cache_free(struct auth_cache **cp)
{
	struct auth_cache *c = *cp;

	if (c == NULL)
		return;
	auth_cache_flush(c);
	EVP_MAC_free(c->mac);
	free(c->bucket);
	explicit_bzero(c, sizeof(*c));
	free(c);
	*cp = NULL;
}

/* auth_cache_stats - what the cache did so far (zeros when off) */
void
auth_cache_stats(const struct auth_cache *c, struct auth_cache_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (c != NULL) {
		*st = c->stats;
		st->entries = (long long)c->count;
	}
}

/* auth_cache_slot - the bucket of account (FNV-1a, seeded per process) */
static struct auth_cache_entry **
auth_cache_slot(struct auth_cache *c, const char *account)
{
	uint64_t h = 1469598103934665603ULL ^ c->seed;

	for (const unsigned char *p = (const unsigned char *)account;
	    *p != '\0'; p++) {
		h ^= *p;
		h *= 1099511628211ULL;
	}
	h ^= h >> 29;
	return &c->bucket[h & (c->nbucket - 1)];
}

/* auth_cache_digest - HMAC(key, tag account NUL text) into out: 0, or -1
 * when OpenSSL fails (then nothing is stored and nothing hits) */
static int
auth_cache_digest(struct auth_cache *c, char tag, const char *account,
    const char *text, unsigned char out[AUTH_CACHE_MAC])
{
	char digest[] = "SHA256";
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
		    digest, 0),
		OSSL_PARAM_construct_end(),
	};
	EVP_MAC_CTX *ctx;
	size_t len = 0;
	int ok;

	if ((ctx = EVP_MAC_CTX_new(c->mac)) == NULL)
		return -1;
	ok = EVP_MAC_init(ctx, c->key, sizeof(c->key), params) == 1 &&
	    EVP_MAC_update(ctx, (const unsigned char *)&tag, 1) == 1 &&
	    EVP_MAC_update(ctx, (const unsigned char *)account,
	    strlen(account) + 1) == 1 &&
	    EVP_MAC_update(ctx, (const unsigned char *)text,
	    strlen(text)) == 1 &&
	    EVP_MAC_final(ctx, out, &len, AUTH_CACHE_MAC) == 1 &&
	    len == AUTH_CACHE_MAC;
	EVP_MAC_CTX_free(ctx);	/* cleanses the key schedule */
	return ok ? 0 : -1;
}

/* auth_cache_unlink - take e out of the LRU list */
static void
auth_cache_unlink(struct auth_cache *c, struct auth_cache_entry *e)
{
	if (e->newer != NULL)
		e->newer->older = e->older;
	else
		c->newest = e->older;
	if (e->older != NULL)
		e->older->newer = e->newer;
	else
		c->oldest = e->newer;
	e->newer = e->older = NULL;
}

/* auth_cache_front - make e the most recently used */
static void
auth_cache_front(struct auth_cache *c, struct auth_cache_entry *e)
{
	e->older = c->newest;
	e->newer = NULL;
	if (c->newest != NULL)
		c->newest->newer = e;
	c->newest = e;
	if (c->oldest == NULL)
		c->oldest = e;
}

/* auth_cache_find - the entry of account and the link that points to it
 * (for removal); NULL when there is none */
static struct auth_cache_entry *
auth_cache_find(struct auth_cache *c, const char *account,
    struct auth_cache_entry ***link_r)
{
	struct auth_cache_entry **link = auth_cache_slot(c, account), *e;

	for (; (e = *link) != NULL; link = &e->next)
		if (strcmp(e->account, account) == 0)
			break;
	*link_r = link;
	return e;
}

/* auth_cache_remove - drop the entry *link points to */
static void
auth_cache_remove(struct auth_cache *c, struct auth_cache_entry **link)
{
	struct auth_cache_entry *e = *link;

	*link = e->next;
	auth_cache_unlink(c, e);
	if (e->sooner != NULL)
		e->sooner->later = e->later;
	else
		c->first_due = e->later;
	if (e->later != NULL)
		e->later->sooner = e->sooner;
	else
		c->last_due = e->sooner;
	auth_cache_wipe_entry(e);
	c->count--;
}

/* auth_cache_expire - wipe the entries that expired by now (stored in
 * time order with one ttl, they expire in store order) */
static void
auth_cache_expire(struct auth_cache *c, long long now)
{
	struct auth_cache_entry **link;

	while (c->first_due != NULL && now >= c->first_due->expires) {
		(void)auth_cache_find(c, c->first_due->account, &link);
		auth_cache_remove(c, link);
		c->stats.dropped++;
	}
}

/* auth_cache_hit - may the login of account with password, whose stored
 * hash is hash, be taken as checked? Only the password and the hash of
 * a stored, unexpired entry; a stale or outdated entry is dropped */
bool
auth_cache_hit(struct auth_cache *c, const char *account, const char *hash,
    const char *password, long long now)
{
	struct auth_cache_entry *e, **link;
	unsigned char mac[AUTH_CACHE_MAC];
	bool same;

	if (c == NULL)
		return false;
	auth_cache_expire(c, now);
	if ((e = auth_cache_find(c, account, &link)) == NULL) {
		c->stats.misses++;
		return false;
	}
	if (now >= e->expires || auth_cache_digest(c, 'h', account, hash,
	    mac) < 0 || CRYPTO_memcmp(mac, e->hash_mac, sizeof(mac)) != 0) {
		/* expired, or heraldctl changed the password meanwhile */
		auth_cache_remove(c, link);
		c->stats.misses++;
		c->stats.dropped++;
		explicit_bzero(mac, sizeof(mac));
		return false;
	}
	same = auth_cache_digest(c, 'p', account, password, mac) == 0 &&
	    CRYPTO_memcmp(mac, e->pw_mac, sizeof(mac)) == 0;
	explicit_bzero(mac, sizeof(mac));
	if (!same) {
		/* another password: the full check decides; the entry of
		 * the owner's password stays */
		c->stats.misses++;
		return false;
	}
	auth_cache_unlink(c, e);
	auth_cache_front(c, e);
	c->stats.hits++;
	msg_debug("auth cache hit: %lld hits, %lld misses", c->stats.hits,
	    c->stats.misses);
	return true;
}

/* auth_cache_store - remember a successful full check of account with
 * password against hash, for ttl from now */
void
auth_cache_store(struct auth_cache *c, const char *account,
    const char *hash, const char *password, long long now)
{
	struct auth_cache_entry *e, **link;
	size_t alen = strlen(account);

	if (c == NULL)
		return;
	auth_cache_expire(c, now);
	if ((e = auth_cache_find(c, account, &link)) != NULL)
		auth_cache_remove(c, link);
	while (c->count >= c->max && c->oldest != NULL) {
		(void)auth_cache_find(c, c->oldest->account, &link);
		auth_cache_remove(c, link);
		c->stats.evicted++;
	}
	e = xcalloc(1, sizeof(*e) + alen + 1);
	memcpy(e->account, account, alen + 1);
	if (auth_cache_digest(c, 'p', account, password, e->pw_mac) < 0 ||
	    auth_cache_digest(c, 'h', account, hash, e->hash_mac) < 0) {
		msg_warn("auth cache: HMAC failed: login not remembered");
		auth_cache_wipe_entry(e);
		return;
	}
	e->expires = now + c->ttl;
	link = auth_cache_slot(c, account);
	e->next = *link;
	*link = e;
	auth_cache_front(c, e);
	/* the latest expiry, unless the clock went back: then this entry
	 * waits behind the ones before it (their TTL at most) */
	e->sooner = c->last_due;
	if (c->last_due != NULL)
		c->last_due->later = e;
	else
		c->first_due = e;
	c->last_due = e;
	c->count++;
	c->stats.stored++;
}
