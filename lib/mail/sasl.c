/*
 * sasl - server side of SASL PLAIN (RFC 4616) and LOGIN, and the strict
 * base64 (RFC 4648) they are carried in.
 *
 * Everything here is fed by an unauthenticated client, so every length
 * is bounded before anything is copied, and decoded bytes that may hold
 * a password live only in buffers reserved once at their final size (no
 * realloc leaves a stray copy) and are wiped before they are freed.
 */
#include <string.h>

#include "base/buf.h"
#include "base/str.h"
#include "mail/sasl.h"

/* PLAIN carries authzid, authcid and password with two NULs between */
#define SASL_PLAIN_MAX (2 * AUTH_USER_MAX + AUTH_PASSWORD_MAX + 2)
/* longest base64 line we look at: the PLAIN maximum, encoded */
#define SASL_LINE_MAX ((SASL_PLAIN_MAX + 2) / 3 * 4)

#define SASL_LOGIN_USER "Username:"
#define SASL_LOGIN_PASS "Password:"

static const char sasl_b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* sasl_mech_parse - "PLAIN"/"LOGIN" (any case) or SASL_NONE */
enum sasl_mech
sasl_mech_parse(const char *name)
{
	if (name == NULL)
		return SASL_NONE;
	if (str_casecmp(name, "PLAIN") == 0)
		return SASL_PLAIN;
	if (str_casecmp(name, "LOGIN") == 0)
		return SASL_LOGIN;
	return SASL_NONE;
}

/* sasl_mech_list - the mechanisms we offer */
const char *
sasl_mech_list(void)
{
	return "PLAIN LOGIN";
}

/* sasl_base64_encode - append the padded base64 form of p[0..n) */
void
sasl_base64_encode(const void *p, size_t n, struct buf *out)
{
	const unsigned char *s = p;
	size_t i;

	for (i = 0; i + 3 <= n; i += 3) {
		unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8 |
		    s[i + 2];
		char q[4] = {sasl_b64[v >> 18], sasl_b64[(v >> 12) & 63],
		    sasl_b64[(v >> 6) & 63], sasl_b64[v & 63]};

		buf_append(out, q, 4);
	}
	if (n - i == 1) {
		unsigned v = (unsigned)s[i] << 16;
		char q[4] = {sasl_b64[v >> 18], sasl_b64[(v >> 12) & 63],
		    '=', '='};

		buf_append(out, q, 4);
	} else if (n - i == 2) {
		unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8;
		char q[4] = {sasl_b64[v >> 18], sasl_b64[(v >> 12) & 63],
		    sasl_b64[(v >> 6) & 63], '='};

		buf_append(out, q, 4);
	}
}

/* sasl_b64_value - the 6-bit value of a base64 letter, or -1 */
static int
sasl_b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * sasl_base64_decode - strict decode: length a multiple of 4, only the
 * alphabet, "=" only as the final one or two characters, and the unused
 * bits before the padding zero (so each byte string has exactly one
 * accepted encoding). Appends to out; -1 (out unchanged) on any error or
 * when the result would be longer than max.
 */
int
sasl_base64_decode(const char *text, size_t len, struct buf *out,
    size_t max)
{
	size_t pad = 0, n, start = out->len;
	unsigned char tmp[3];

	if (len % 4 != 0)
		return -1;
	if (len > 0 && text[len - 1] == '=')
		pad++;
	if (len > 1 && text[len - 2] == '=')
		pad++;
	n = len / 4 * 3 - pad;
	if (n > max)
		return -1;
	buf_reserve(out, n);
	for (size_t i = 0; i < len; i += 4) {
		int v[4];
		bool last = i + 4 == len;

		for (int j = 0; j < 4; j++) {
			unsigned char c = (unsigned char)text[i + j];

			if (c == '=' && last && j >= 4 - (int)pad) {
				v[j] = 0;
				continue;
			}
			if ((v[j] = sasl_b64_value(c)) < 0)
				goto bad;
		}
		tmp[0] = (unsigned char)(v[0] << 2 | v[1] >> 4);
		tmp[1] = (unsigned char)((v[1] & 15) << 4 | v[2] >> 2);
		tmp[2] = (unsigned char)((v[2] & 3) << 6 | v[3]);
		if (last && pad == 2 && (v[1] & 15) != 0)
			goto bad;
		if (last && pad == 1 && (v[2] & 3) != 0)
			goto bad;
		buf_append(out, tmp, last ? 3 - pad : 3);
	}
	explicit_bzero(tmp, sizeof(tmp));
	return 0;

bad:
	explicit_bzero(tmp, sizeof(tmp));
	explicit_bzero(out->data + start, out->len - start);
	buf_truncate(out, start);
	return -1;
}

/* sasl_fail - wipe the state and report why */
static enum sasl_status
sasl_fail(struct sasl_state *s, struct buf *why, const char *text)
{
	enum sasl_mech mech = s->mech;

	sasl_wipe(s);
	s->mech = mech;
	s->step = -1;	/* over: any further line is an error */
	buf_set(why, text);
	return SASL_ERROR;
}

/* sasl_cancel - the client gave up ("*") */
static enum sasl_status
sasl_cancel(struct sasl_state *s)
{
	enum sasl_mech mech = s->mech;

	sasl_wipe(s);
	s->mech = mech;
	s->step = -1;
	return SASL_CANCELLED;
}

/* sasl_text_ok - 1..max bytes without NUL, CR or LF */
static bool
sasl_text_ok(const char *p, size_t n, size_t max)
{
	return n > 0 && n <= max && !str_has_crlfnul(p, n);
}

/* sasl_decode_line - strict base64 of one client line into dec (which
 * the caller wipes); -1 with why */
static int
sasl_decode_line(const char *line, struct buf *dec, size_t max,
    struct buf *why)
{
	size_t len = strlen(line);

	if (len > SASL_LINE_MAX || len / 4 * 3 > max + 2) {
		buf_set(why, "authentication data too long");
		return -1;
	}
	buf_reserve(dec, len / 4 * 3 + 1);
	if (sasl_base64_decode(line, len, dec, max) < 0) {
		buf_set(why, len / 4 * 3 > max ?
		    "authentication data too long" :
		    "malformed base64 in authentication data");
		return -1;
	}
	return 0;
}

/* sasl_wipe_buf - clear and free a buffer that held secrets */
static void
sasl_wipe_buf(struct buf *b)
{
	if (b->cap > 0)
		explicit_bzero(b->data, b->cap);
	buf_free(b);
}

/* sasl_plain - check "[authzid] NUL authcid NUL password" and take it */
static enum sasl_status
sasl_plain(struct sasl_state *s, const char *p, size_t n, struct buf *why)
{
	const char *nul1, *nul2, *authcid, *pw;
	size_t zlen, clen, plen;

	if ((nul1 = memchr(p, '\0', n)) == NULL ||
	    (nul2 = memchr(nul1 + 1, '\0', n - (size_t)(nul1 + 1 - p))) ==
	    NULL)
		return sasl_fail(s, why, "PLAIN response is not "
		    "authzid NUL authcid NUL password");
	zlen = (size_t)(nul1 - p);
	authcid = nul1 + 1;
	clen = (size_t)(nul2 - authcid);
	pw = nul2 + 1;
	plen = n - (size_t)(pw - p);
	if (memchr(pw, '\0', plen) != NULL)
		return sasl_fail(s, why, "PLAIN response holds more than "
		    "two NULs");
	if (clen == 0)
		return sasl_fail(s, why, "empty authentication identity");
	if (plen == 0)
		return sasl_fail(s, why, "empty password");
	if (!sasl_text_ok(authcid, clen, AUTH_USER_MAX) ||
	    (zlen > 0 && !sasl_text_ok(p, zlen, AUTH_USER_MAX)))
		return sasl_fail(s, why, "bad authentication identity "
		    "(too long, or CR or LF in it)");
	if (!sasl_text_ok(pw, plen, AUTH_PASSWORD_MAX))
		return sasl_fail(s, why, "bad password (too long, or CR or "
		    "LF in it)");
	if (zlen > 0 && (zlen != clen || str_ncasecmp(p, authcid, clen) != 0))
		return sasl_fail(s, why, "authorization identity differs "
		    "from authentication identity");
	memcpy(s->authcid, authcid, clen);
	s->authcid[clen] = '\0';
	memcpy(s->password, pw, plen);
	s->password[plen] = '\0';
	s->step = -1;
	return SASL_DONE;
}

/* sasl_login - one LOGIN response: the user name, then the password */
static enum sasl_status
sasl_login(struct sasl_state *s, const char *p, size_t n,
    struct buf *challenge, struct buf *why)
{
	if (s->step <= 1) {
		if (n == 0)
			return sasl_fail(s, why, "empty user name");
		if (!sasl_text_ok(p, n, AUTH_USER_MAX))
			return sasl_fail(s, why, "bad user name (too long, "
			    "or NUL, CR or LF in it)");
		memcpy(s->authcid, p, n);
		s->authcid[n] = '\0';
		s->step = 2;
		sasl_base64_encode(SASL_LOGIN_PASS, strlen(SASL_LOGIN_PASS),
		    challenge);
		return SASL_CONTINUE;
	}
	if (n == 0)
		return sasl_fail(s, why, "empty password");
	if (!sasl_text_ok(p, n, AUTH_PASSWORD_MAX))
		return sasl_fail(s, why, "bad password (too long, or NUL, "
		    "CR or LF in it)");
	memcpy(s->password, p, n);
	s->password[n] = '\0';
	s->step = -1;
	return SASL_DONE;
}

/* sasl_feed - decode one response and hand it to the mechanism */
static enum sasl_status
sasl_feed(struct sasl_state *s, const char *text, bool initial,
    struct buf *challenge, struct buf *why)
{
	struct buf dec = BUF_INIT;
	enum sasl_status st;
	size_t max;

	if (strcmp(text, "*") == 0)
		return sasl_cancel(s);
	if (s->mech == SASL_PLAIN)
		max = SASL_PLAIN_MAX;
	else if (s->step <= 1)
		max = AUTH_USER_MAX;
	else
		max = AUTH_PASSWORD_MAX;
	/* SASL-IR: "=" is an empty initial response */
	if (initial && strcmp(text, "=") == 0)
		text = "";
	if (sasl_decode_line(text, &dec, max, why) < 0) {
		char keep[128];

		str_lcpy(keep, buf_cstr(why), sizeof(keep));
		sasl_wipe_buf(&dec);
		return sasl_fail(s, why, keep);
	}
	if (s->mech == SASL_PLAIN)
		st = sasl_plain(s, dec.data, dec.len, why);
	else
		st = sasl_login(s, dec.data, dec.len, challenge, why);
	sasl_wipe_buf(&dec);
	return st;
}

/* sasl_start - begin an exchange */
enum sasl_status
sasl_start(struct sasl_state *s, enum sasl_mech mech, const char *initial,
    struct buf *challenge, struct buf *why)
{
	sasl_wipe(s);
	buf_reset(challenge);
	s->mech = mech;
	switch (mech) {
	case SASL_PLAIN:
		s->step = 1;
		if (initial != NULL)
			return sasl_feed(s, initial, true, challenge, why);
		return SASL_CONTINUE;	/* empty challenge: "+ " */
	case SASL_LOGIN:
		s->step = 1;
		if (initial != NULL)
			return sasl_feed(s, initial, true, challenge, why);
		sasl_base64_encode(SASL_LOGIN_USER, strlen(SASL_LOGIN_USER),
		    challenge);
		return SASL_CONTINUE;
	default:
		return sasl_fail(s, why, "unsupported authentication "
		    "mechanism");
	}
}

/* sasl_step - feed one client line */
enum sasl_status
sasl_step(struct sasl_state *s, const char *line, struct buf *challenge,
    struct buf *why)
{
	buf_reset(challenge);
	if (s->mech == SASL_NONE || s->step <= 0)
		return sasl_fail(s, why, "no authentication exchange in "
		    "progress");
	return sasl_feed(s, line, false, challenge, why);
}

/* sasl_wipe - clear the state, password first */
void
sasl_wipe(struct sasl_state *s)
{
	explicit_bzero(s->password, sizeof(s->password));
	explicit_bzero(s->authcid, sizeof(s->authcid));
	s->mech = SASL_NONE;
	s->step = 0;
}

/* sasl_plaintext_rule - auth_plaintext = setting: may a password cross
 * a connection with this TLS state and peer? */
bool
sasl_plaintext_rule(const char *setting, bool tls, bool loopback)
{
	if (tls)
		return true;
	if (strcmp(setting, "always") == 0)
		return true;
	return strcmp(setting, "loopback") == 0 && loopback;
}

/* sasl_name_ok - a login name we pass on to authd */
bool
sasl_name_ok(const char *p, size_t n)
{
	if (n == 0 || n > AUTH_USER_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
			return false;
	return true;
}
