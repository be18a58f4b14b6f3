/*
 * srs - Sender Rewriting Scheme addresses: make, check, reverse (srs.h).
 *
 * Parsing takes the local part (up to the last '@') apart from the left:
 * "SRS0" and '=', the hash up to the next '=', two stamp characters and
 * '=', the original domain up to the next '=' (a domain holds none), and
 * the rest as the original local part, which may hold '=' itself. SRS1:
 * "SRS1=", the hash, '=', the forwarder's domain up to the next '=', and
 * the rest, which starts with the '=' of the SRS0 rest ("==").
 */
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "base/buf.h"
#include "base/str.h"
#include "mail/srs.h"

#define SRS_DAY 86400
#define SRS_STAMP_MOD 1024	/* two base32 characters */

static const char srs_b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
static const char srs_b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* srs_lower_add - append n bytes of s to b, ASCII-lowercased */
static void
srs_lower_add(struct buf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		buf_putc(b, c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c);
	}
}

/* srs_hash - the SRS_HASH_LEN base64 characters of the HMAC over the
 * lowercased, concatenated fields (a, b[, c]) into h (NUL-terminated) */
static void
srs_hash(const struct srs_key *key, const char *a, size_t alen,
    const char *b, size_t blen, const char *c, size_t clen,
    char h[SRS_HASH_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	struct buf in = BUF_INIT;

	srs_lower_add(&in, a, alen);
	srs_lower_add(&in, b, blen);
	if (c != NULL)
		srs_lower_add(&in, c, clen);
	if (HMAC(EVP_sha1(), key->secret, (int)key->len,
	    (const unsigned char *)in.data, in.len, md, &mdlen) == NULL ||
	    mdlen < 3)
		memset(md, 0, 3);	/* cannot happen with SHA-1 */
	buf_free(&in);
	/* four base64 characters are the first three bytes */
	h[0] = srs_b64[md[0] >> 2];
	h[1] = srs_b64[((md[0] & 3) << 4) | (md[1] >> 4)];
	h[2] = srs_b64[((md[1] & 15) << 2) | (md[2] >> 6)];
	h[3] = srs_b64[md[2] & 63];
	h[SRS_HASH_LEN] = '\0';
}

/* srs_stamp - today's stamp: day mod 1024 in two base32 characters */
static void
srs_stamp(time_t now, char tt[3])
{
	unsigned day = (unsigned)((now < 0 ? 0 : now) / SRS_DAY) %
	    SRS_STAMP_MOD;

	tt[0] = srs_b32[day >> 5];
	tt[1] = srs_b32[day & 31];
	tt[2] = '\0';
}

/* srs_b32_value - value of one base32 character (any case), -1 if none */
static int
srs_b32_value(char c)
{
	if (c >= 'a' && c <= 'z')
		c = (char)(c - 'a' + 'A');
	for (int i = 0; i < 32; i++)
		if (srs_b32[i] == c)
			return i;
	return -1;
}

/* srs_tag - does local start with tag ("SRS0"/"SRS1", any case) and
 * '=' */
static bool
srs_tag(const char *local, size_t len, const char *tag)
{
	return len > 5 && str_ncasecmp(local, tag, 4) == 0 && local[4] == '=';
}

/* srs_is_srs - local part starts SRS0= or SRS1= */
bool
srs_is_srs(const char *addr)
{
	const char *at = strrchr(addr, '@');
	size_t len = at != NULL ? (size_t)(at - addr) : strlen(addr);

	return srs_tag(addr, len, "SRS0") || srs_tag(addr, len, "SRS1");
}

/* srs_field - the field of s[0..len) before the next '=': its length, or
 * -1 when there is no '=' */
static long
srs_field(const char *s, size_t len)
{
	const char *eq = memchr(s, '=', len);

	return eq == NULL ? -1 : (long)(eq - s);
}

/* srs_forward - rewrite sender as forwarded by srs_domain */
int
srs_forward(const struct srs_key *key, time_t now, const char *sender,
    const char *srs_domain, struct buf *out)
{
	const char *at = strrchr(sender, '@');
	const char *local = sender, *dom;
	size_t llen;
	char h[SRS_HASH_LEN + 1], tt[3];

	/* a domain with '=' (no domain has one) could not be parsed back */
	if (at == NULL || at == sender || at[1] == '\0' ||
	    strchr(at + 1, '=') != NULL)
		return 0;
	llen = (size_t)(at - sender);
	dom = at + 1;
	if (srs_tag(local, llen, "SRS0")) {
		/* SRS1=H=dom==<SRS0 rest from its '='>@ours */
		const char *rest = local + 4;
		size_t rlen = llen - 4;

		srs_hash(key, dom, strlen(dom), rest, rlen, NULL, 0, h);
		buf_reset(out);
		buf_printf(out, "SRS1=%s=%s=", h, dom);
		buf_append(out, rest, rlen);
		buf_printf(out, "@%s", srs_domain);
		return 1;
	}
	if (srs_tag(local, llen, "SRS1")) {
		/* keep the first forwarder and the rest, under our hash */
		const char *p = local + 5;
		size_t plen = llen - 5;
		long hl = srs_field(p, plen), fl;

		if (hl >= 0) {
			const char *fwd = p + hl + 1;
			size_t fwdmax = plen - (size_t)hl - 1;

			/* as srs_reverse1 reads it: a rest of '=' and
			 * at least one more byte */
			fl = srs_field(fwd, fwdmax);
			if (fl > 0 && (size_t)fl + 2 < fwdmax &&
			    fwd[fl + 1] == '=') {
				const char *rest = fwd + fl + 1;
				size_t rlen = fwdmax - (size_t)fl - 1;

				srs_hash(key, fwd, (size_t)fl, rest, rlen,
				    NULL, 0, h);
				buf_reset(out);
				buf_printf(out, "SRS1=%s=", h);
				buf_append(out, fwd, (size_t)fl + 1);
				buf_append(out, rest, rlen);
				buf_printf(out, "@%s", srs_domain);
				return 1;
			}
		}
		/* a broken SRS1 is an ordinary local part: SRS0 below */
	}
	srs_stamp(now, tt);
	srs_hash(key, tt, 2, dom, strlen(dom), local, llen, h);
	buf_reset(out);
	buf_printf(out, "SRS0=%s=%s=%s=", h, tt, dom);
	buf_append(out, local, llen);
	buf_printf(out, "@%s", srs_domain);
	return 1;
}

/* srs_hash_ok - does the given hash match (any case)? */
static bool
srs_hash_ok(const char *given, size_t glen, const char want[])
{
	return glen == SRS_HASH_LEN && str_ncasecmp(given, want,
	    SRS_HASH_LEN) == 0;
}

/* srs_reverse0 - SRS0 local part p[0..len) (after "SRS0=") */
static int
srs_reverse0(const struct srs_key *key, time_t now, const char *p,
    size_t len, struct buf *out, struct buf *why)
{
	long hl = srs_field(p, len), dl;
	const char *tt, *dom, *local;
	size_t dmax, llen;
	char h[SRS_HASH_LEN + 1], today[3];
	int hi, lo;
	unsigned then, age;

	if (hl < 0 || (size_t)hl + 4 > len || p[hl + 3] != '=') {
		buf_set(why, "malformed SRS0 address");
		return -1;
	}
	tt = p + hl + 1;
	dom = tt + 3;
	dmax = len - (size_t)hl - 4;
	dl = srs_field(dom, dmax);
	if (dl <= 0 || (size_t)dl + 1 >= dmax) {
		buf_set(why, "malformed SRS0 address");
		return -1;
	}
	local = dom + dl + 1;
	llen = dmax - (size_t)dl - 1;
	if ((hi = srs_b32_value(tt[0])) < 0 || (lo = srs_b32_value(tt[1])) <
	    0) {
		buf_set(why, "malformed SRS0 timestamp");
		return -1;
	}
	srs_hash(key, tt, 2, dom, (size_t)dl, local, llen, h);
	if (!srs_hash_ok(p, (size_t)hl, h)) {
		buf_set(why, "SRS address with a bad hash");
		return -1;
	}
	srs_stamp(now, today);
	then = (unsigned)(hi << 5 | lo);
	age = ((unsigned)(srs_b32_value(today[0]) << 5 |
	    srs_b32_value(today[1])) + SRS_STAMP_MOD - then) % SRS_STAMP_MOD;
	if (age > SRS_MAX_AGE) {
		buf_set(why, "SRS address has expired");
		return -1;
	}
	buf_reset(out);
	buf_append(out, local, llen);
	buf_putc(out, '@');
	buf_append(out, dom, (size_t)dl);
	return 1;
}

/* srs_reverse1 - SRS1 local part p[0..len) (after "SRS1=") */
static int
srs_reverse1(const struct srs_key *key, const char *p, size_t len,
    struct buf *out, struct buf *why)
{
	long hl = srs_field(p, len), fl;
	const char *fwd, *rest;
	size_t fmax, rlen;
	char h[SRS_HASH_LEN + 1];

	if (hl < 0) {
		buf_set(why, "malformed SRS1 address");
		return -1;
	}
	fwd = p + hl + 1;
	fmax = len - (size_t)hl - 1;
	fl = srs_field(fwd, fmax);
	if (fl <= 0 || (size_t)fl + 2 >= fmax || fwd[fl + 1] != '=') {
		buf_set(why, "malformed SRS1 address");
		return -1;
	}
	rest = fwd + fl + 1;
	rlen = fmax - (size_t)fl - 1;
	srs_hash(key, fwd, (size_t)fl, rest, rlen, NULL, 0, h);
	if (!srs_hash_ok(p, (size_t)hl, h)) {
		buf_set(why, "SRS address with a bad hash");
		return -1;
	}
	buf_reset(out);
	buf_set(out, "SRS0");
	buf_append(out, rest, rlen);
	buf_putc(out, '@');
	buf_append(out, fwd, (size_t)fl);
	return 1;
}

/* srs_reverse - the original address of an SRS address */
int
srs_reverse(const struct srs_key *key, time_t now, const char *addr,
    struct buf *out, struct buf *why)
{
	const char *at = strrchr(addr, '@');
	size_t len = at != NULL ? (size_t)(at - addr) : strlen(addr);

	if (srs_tag(addr, len, "SRS0"))
		return srs_reverse0(key, now, addr + 5, len - 5, out, why);
	if (srs_tag(addr, len, "SRS1"))
		return srs_reverse1(key, addr + 5, len - 5, out, why);
	return 0;
}
