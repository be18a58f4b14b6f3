/*
 * dkim - DKIM signing and verifying (RFC 6376) with rsa-sha256 and
 * ed25519-sha256 (RFC 8463), relaxed/relaxed; see dkim.h.
 *
 * Ed25519 (RFC 8463 section 3): the hash of the header data is computed
 * with SHA-256 exactly as for RSA, and that 32-byte hash is what
 * PureEdDSA signs (a one-shot EVP_DigestSign with no digest). RSA signs
 * the header data with EVP's sha256 (which hashes it once itself).
 *
 * Who signs: the private keys live under dkim_directory, mode 0640,
 * owner root, group dkim_group. The signer service (signer/signer.c,
 * DESIGN.md section 3: SERVICE_SINGLE, a pool like authd) runs as
 * dkim_user and joins dkim_group: smtpd, which faces the internet,
 * never holds a key. For a message from a hosted domain that came by
 * submission, sendmail or mynetworks, smtpd hashes the body as it
 * arrives (dkim_hasher, streaming, so the body never crosses IPC), and
 * before the commit sends the signer one frame: the From domain, the
 * header block (at most 256 KB) and the body hash; the signer answers
 * with the DKIM-Signature fields (dkim_sign_header with the domain's
 * current selector and keys), which smtpd writes above the header in
 * the queue file before its fsync (smtpd/smtpd_sign.c), so local and
 * remote recipients get the same signed message (one path). A signer
 * that does not answer in time means 451 (never unsigned mail).
 * `heraldctl dkim sign` (root) signs a message given on stdin by hand.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "base/buf.h"
#include "base/mem.h"
#include "mail/dkim.h"

/* RFC 6376 5.4.1's recommended fields that herald signs when present */
static const char *const dkim_sign_names[] = {"From", "Reply-To",
    "Subject", "Date", "To", "Cc", "Resent-Date", "Resent-From",
    "Resent-To", "Resent-Cc", "In-Reply-To", "References", "List-Id",
    "List-Help", "List-Unsubscribe", "List-Subscribe", "List-Post",
    "List-Owner", "List-Archive", "Message-ID", "MIME-Version",
    "Content-Type", "Content-Transfer-Encoding", "Content-ID",
    "Content-Description", NULL};

/* one header field of a message, as it is in the message */
struct dkim_field {
	const char *p;		/* name, colon, value with folding */
	size_t len;		/* without the final line end */
	size_t nlen;		/* of the name (up to the colon, trimmed) */
	bool used;		/* picked for the current signature */
};

struct dkim_msg {
	struct dkim_field *f;
	size_t nf;
	const char *body;
	size_t blen;
};

/* dkim_alg_name - "rsa-sha256", "ed25519-sha256" */
const char *
dkim_alg_name(enum dkim_alg alg)
{
	return alg == DKIM_ED25519_SHA256 ? "ed25519-sha256" : "rsa-sha256";
}

/* dkim_parse - split msg into header fields and body; -1 with why */
static int
dkim_parse(const char *msg, size_t len, struct dkim_msg *m, struct buf *why)
{
	size_t i = 0;

	memset(m, 0, sizeof(*m));
	m->f = xcalloc(DKIM_FIELDS_MAX, sizeof(*m->f));
	m->body = msg + len;
	while (i < len) {
		size_t start = i, end, nlen;
		const char *colon;

		/* the empty line ends the header */
		if (msg[i] == '\n' || (msg[i] == '\r' && i + 1 < len &&
		    msg[i + 1] == '\n')) {
			i += msg[i] == '\r' ? 2 : 1;
			m->body = msg + i;
			break;
		}
		/* a field: this line and the ones that begin with WSP */
		for (;;) {
			const char *nl = memchr(msg + i, '\n', len - i);

			i = nl == NULL ? len : (size_t)(nl - msg) + 1;
			if (i >= len || (msg[i] != ' ' && msg[i] != '\t'))
				break;
		}
		end = i;
		if (end > start && msg[end - 1] == '\n')
			end--;
		if (end > start && msg[end - 1] == '\r')
			end--;
		colon = memchr(msg + start, ':', end - start);
		if (colon == NULL)
			continue;	/* not a field: never signed */
		if (m->nf == DKIM_FIELDS_MAX) {
			buf_printf(why, "more than %d header fields",
			    DKIM_FIELDS_MAX);
			x_free(&m->f);
			return -1;
		}
		nlen = (size_t)(colon - (msg + start));
		while (nlen > 0 && (msg[start + nlen - 1] == ' ' ||
		    msg[start + nlen - 1] == '\t'))
			nlen--;
		m->f[m->nf].p = msg + start;
		m->f[m->nf].len = end - start;
		m->f[m->nf].nlen = nlen;
		m->nf++;
	}
	m->blen = (size_t)(msg + len - m->body);
	return 0;
}

/* dkim_field_is - true if field f is named name (case-insensitive) */
static bool
dkim_field_is(const struct dkim_field *f, const char *name, size_t nlen)
{
	return f->nlen == nlen && strncasecmp(f->p, name, nlen) == 0;
}

/* dkim_pick - the last field named name not picked yet, or NULL
 * (RFC 6376 5.4.2: instances are signed from the bottom up) */
static struct dkim_field *
dkim_pick(struct dkim_msg *m, const char *name, size_t nlen)
{
	for (size_t i = m->nf; i-- > 0;)
		if (!m->f[i].used && dkim_field_is(&m->f[i], name, nlen)) {
			m->f[i].used = true;
			return &m->f[i];
		}
	return NULL;
}

/* dkim_hasher_out - the body canonicaliser's output into a hasher, up
 * to its limit */
static void
dkim_hasher_out(void *ctx, const void *data, size_t len)
{
	struct dkim_hasher *h = ctx;

	if (h->left >= 0) {
		if ((unsigned long long)h->left < len)
			len = (size_t)h->left;
		h->left -= (long long)len;
	}
	if (len > 0 && EVP_DigestUpdate(h->md, data, len) != 1)
		h->failed = true;
}

/* dkim_sha256 - one-shot SHA-256; -1 if OpenSSL fails */
static int
dkim_sha256(const void *data, size_t len, unsigned char hash[32])
{
	unsigned hlen = 0;

	if (EVP_Digest(data, len, hash, &hlen, EVP_sha256(), NULL) != 1 ||
	    hlen != 32)
		return -1;
	return 0;
}

/* dkim_body_hash - sha256 of the relaxed body, of at most limit bytes
 * of it when limit >= 0 (l=), hashed as it is canonicalised (no copy
 * of the body); -1 if OpenSSL fails */
static int
dkim_body_hash(const struct dkim_msg *m, long long limit,
    unsigned char hash[32], struct buf *why)
{
	struct dkim_hasher h;

	if (dkim_hasher_init(&h) < 0) {
		buf_puts(why, "sha256 failed");
		return -1;
	}
	h.left = limit;
	dkim_hasher_update(&h, m->body, m->blen);
	if (dkim_hasher_final(&h, hash) < 0) {
		buf_puts(why, "sha256 failed");
		return -1;
	}
	return 0;
}

/* dkim_b64 - base64 of data[0..len) appended to out */
static void
dkim_b64(const unsigned char *data, size_t len, struct buf *out)
{
	size_t need = 4 * ((len + 2) / 3) + 1, old = out->len;

	buf_reserve(out, need);
	EVP_EncodeBlock((unsigned char *)out->data + old, data, (int)len);
	out->len = old + need - 1;
	out->data[out->len] = '\0';
}

/* dkim_unb64 - decode base64 text (FWS inside ignored) into out; -1 if
 * it is not base64 */
static int
dkim_unb64(const char *s, size_t len, struct buf *out)
{
	struct buf clean = BUF_INIT;
	size_t pad = 0;
	int n;

	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
			buf_putc(&clean, s[i]);
	if (clean.len % 4 != 0 || clean.len > 8192) {
		buf_free(&clean);
		return -1;
	}
	if (clean.len > 0 && clean.data[clean.len - 1] == '=')
		pad++;
	if (clean.len > 1 && clean.data[clean.len - 2] == '=')
		pad++;
	buf_reset(out);
	buf_reserve(out, clean.len);
	n = EVP_DecodeBlock((unsigned char *)out->data,
	    (unsigned char *)clean.data, (int)clean.len);
	buf_free(&clean);
	if (n < 0 || (size_t)n < pad)
		return -1;
	out->len = (size_t)n - pad;
	out->data[out->len] = '\0';
	return 0;
}

/* dkim_fold - append word to the field being built in out, folding
 * before it when the line would pass DKIM_WIDTH; *col is the column */
static void
dkim_fold(struct buf *out, size_t *col, const char *sep, const char *word)
{
	size_t n = strlen(sep) + strlen(word);

	if (*col + n > DKIM_WIDTH && *col > 1) {
		/* a fold is CRLF and a space; the separator's own
		 * space, if any, is not needed after it */
		buf_puts(out, "\r\n ");
		*col = 1;
		while (*sep == ' ')
			sep++;
	}
	buf_puts(out, sep);
	buf_puts(out, word);
	*col += strlen(sep) + strlen(word);
}

/* dkim_key_alg - the algorithm of a key; -1 if neither */
int
dkim_key_alg(EVP_PKEY *key)
{
	switch (EVP_PKEY_get_base_id(key)) {
	case EVP_PKEY_RSA:
		return DKIM_RSA_SHA256;
	case EVP_PKEY_ED25519:
		return DKIM_ED25519_SHA256;
	default:
		return -1;
	}
}

/* dkim_do_sign - the signature of the header data; -1 with why */
static int
dkim_do_sign(EVP_PKEY *key, const struct buf *data, struct buf *sig,
    struct buf *why)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char hash[32];
	const unsigned char *in = (const unsigned char *)data->data;
	size_t inlen = data->len, siglen = 0;
	const EVP_MD *alg = EVP_sha256();
	int rc = -1;

	if (dkim_key_alg(key) == DKIM_ED25519_SHA256) {
		/* RFC 8463: PureEdDSA over the SHA-256 hash */
		if (dkim_sha256(data->data, data->len, hash) < 0)
			goto out;
		in = hash;
		inlen = sizeof(hash);
		alg = NULL;
	}
	if (md == NULL || EVP_DigestSignInit(md, NULL, alg, NULL, key) != 1 ||
	    EVP_DigestSign(md, NULL, &siglen, in, inlen) != 1)
		goto out;
	buf_reset(sig);
	buf_reserve(sig, siglen);
	if (EVP_DigestSign(md, (unsigned char *)sig->data, &siglen, in,
	    inlen) != 1)
		goto out;
	sig->len = siglen;
	rc = 0;
out:
	if (rc < 0) {
		const char *e = ERR_reason_error_string(ERR_get_error());

		buf_printf(why, "signing failed: %s", e ? e : "OpenSSL error");
	}
	ERR_clear_error();
	EVP_MD_CTX_free(md);
	return rc;
}

/* dkim_sign_one - one DKIM-Signature field appended to out */
static int
dkim_sign_one(struct dkim_msg *m, const char *bh,
    const struct dkim_signer *s, time_t now, struct buf *out,
    struct buf *why)
{
	struct buf f = BUF_INIT, data = BUF_INIT, sig = BUF_INIT;
	struct buf word = BUF_INIT, b64 = BUF_INIT;
	size_t col, i;
	int alg = dkim_key_alg(s->key), rc = -1;

	if (alg < 0) {
		buf_puts(why, "the key is neither RSA nor Ed25519");
		return -1;
	}
	for (i = 0; i < m->nf; i++)
		m->f[i].used = false;
	buf_puts(&f, "DKIM-Signature:");
	col = f.len;
	dkim_fold(&f, &col, " ", "v=1;");
	buf_printf(&word, "a=%s;", dkim_alg_name(alg));
	dkim_fold(&f, &col, " ", buf_cstr(&word));
	dkim_fold(&f, &col, " ", "c=relaxed/relaxed;");
	buf_reset(&word);
	buf_printf(&word, "d=%s;", s->domain);
	dkim_fold(&f, &col, " ", buf_cstr(&word));
	buf_reset(&word);
	buf_printf(&word, "s=%s;", s->selector);
	dkim_fold(&f, &col, " ", buf_cstr(&word));
	buf_reset(&word);
	buf_printf(&word, "t=%lld;", (long long)now);
	dkim_fold(&f, &col, " ", buf_cstr(&word));
	/* h=: each present field once per instance, From once more */
	for (int k = 0; dkim_sign_names[k] != NULL; k++) {
		const char *name = dkim_sign_names[k];
		size_t nlen = strlen(name);
		int count = 0;

		while (dkim_pick(m, name, nlen) != NULL)
			count++;
		if (k == 0)
			count++;	/* From, oversigned */
		for (int c = 0; c < count; c++) {
			buf_reset(&word);
			buf_puts(&word, name);
			for (char *p = word.data; *p; p++)
				if (*p >= 'A' && *p <= 'Z')
					*p += 32;
			if (k == 0 && c == 0) {
				buf_reset(&b64);
				buf_printf(&b64, "h=%s", buf_cstr(&word));
				dkim_fold(&f, &col, " ", buf_cstr(&b64));
			} else
				dkim_fold(&f, &col, ":", buf_cstr(&word));
		}
	}
	buf_putc(&f, ';');
	col++;
	buf_reset(&word);
	buf_printf(&word, "bh=%s;", bh);
	dkim_fold(&f, &col, " ", buf_cstr(&word));
	dkim_fold(&f, &col, " ", "b=");

	/* the header data: the fields named in h=, then this one */
	for (i = 0; i < m->nf; i++)
		m->f[i].used = false;
	for (int k = 0; dkim_sign_names[k] != NULL; k++) {
		const char *name = dkim_sign_names[k];
		struct dkim_field *fd;

		while ((fd = dkim_pick(m, name, strlen(name))) != NULL)
			if (dkim_canon_header(fd->p, fd->len, &data) < 0)
				goto out;
	}
	if (dkim_canon_header(f.data, f.len, &data) < 0)
		goto out;
	buf_truncate(&data, data.len - 2);	/* no CRLF after it */
	if (dkim_do_sign(s->key, &data, &sig, why) < 0)
		goto out;

	/* b= folded: as much of the base64 as fits on each line */
	buf_reset(&b64);
	dkim_b64((unsigned char *)sig.data, sig.len, &b64);
	for (i = 0; i < b64.len;) {
		size_t room = col < DKIM_WIDTH ? DKIM_WIDTH - col : 0;

		if (room < 8) {
			buf_puts(&f, "\r\n ");
			col = 1;
			continue;
		}
		if (room > b64.len - i)
			room = b64.len - i;
		buf_append(&f, b64.data + i, room);
		col += room;
		i += room;
	}
	buf_append(out, f.data, f.len);
	buf_append(out, "\r\n", 2);
	rc = 0;
out:
	if (rc < 0 && why->len == 0)
		buf_puts(why, "cannot canonicalise a header field");
	buf_free(&f);
	buf_free(&data);
	buf_free(&sig);
	buf_free(&word);
	buf_free(&b64);
	return rc;
}

/* dkim_sign_text - the fields for the message or header in text and
 * its body hash (hash_in NULL: computed from the text's body) */
static int
dkim_sign_text(const char *text, size_t len, const unsigned char *hash_in,
    const struct dkim_signer *s, size_t ns, time_t now, struct buf *out,
    struct buf *why)
{
	struct dkim_msg m;
	unsigned char hash[32];
	struct buf bh = BUF_INIT;
	int rc = -1;

	if (dkim_parse(text, len, &m, why) < 0)
		return -1;
	if (hash_in != NULL)
		memcpy(hash, hash_in, sizeof(hash));
	else if (dkim_body_hash(&m, -1, hash, why) < 0)
		goto out;
	dkim_b64(hash, sizeof(hash), &bh);
	for (size_t i = 0; i < ns; i++)
		if (dkim_sign_one(&m, buf_cstr(&bh), &s[i], now, out,
		    why) < 0)
			goto out;
	rc = 0;
out:
	buf_free(&bh);
	x_free(&m.f);
	return rc;
}

/* dkim_sign - DKIM-Signature fields for a message, one per signer */
int
dkim_sign(const char *msg, size_t len, const struct dkim_signer *s,
    size_t ns, time_t now, struct buf *out, struct buf *why)
{
	return dkim_sign_text(msg, len, NULL, s, ns, now, out, why);
}

/* dkim_sign_header - dkim_sign from the header and the body's hash */
int
dkim_sign_header(const char *header, size_t len,
    const unsigned char bh[32], const struct dkim_signer *s, size_t ns,
    time_t now, struct buf *out, struct buf *why)
{
	return dkim_sign_text(header, len, bh, s, ns, now, out, why);
}

/* dkim_hasher_init - start a body hash; -1 if OpenSSL fails */
int
dkim_hasher_init(struct dkim_hasher *h)
{
	h->md = EVP_MD_CTX_new();
	if (h->md == NULL || EVP_DigestInit_ex(h->md, EVP_sha256(),
	    NULL) != 1) {
		EVP_MD_CTX_free(h->md);
		h->md = NULL;
		return -1;
	}
	h->left = -1;
	h->failed = false;
	dkim_body_init(&h->body, dkim_hasher_out, h);
	return 0;
}

/* dkim_hasher_update - the next bytes of the body */
void
dkim_hasher_update(struct dkim_hasher *h, const void *data, size_t len)
{
	dkim_body_update(&h->body, data, len);
}

/* dkim_hasher_final - the hash; -1 if OpenSSL failed on the way */
int
dkim_hasher_final(struct dkim_hasher *h, unsigned char bh[32])
{
	unsigned n = 0;
	int rc;

	dkim_body_final(&h->body);
	rc = !h->failed && EVP_DigestFinal_ex(h->md, bh, &n) == 1 &&
	    n == 32 ? 0 : -1;
	EVP_MD_CTX_free(h->md);
	h->md = NULL;
	return rc;
}

/* a tag=value list (RFC 6376 3.2) */
#define DKIM_TAGS_MAX 32
struct dkim_tags {
	size_t n;
	char name[DKIM_TAGS_MAX][16];
	struct buf val[DKIM_TAGS_MAX];	/* FWS at either end removed */
};

/* dkim_tags_free - release a tag list */
static void
dkim_tags_free(struct dkim_tags *t)
{
	for (size_t i = 0; i < t->n; i++)
		buf_free(&t->val[i]);
	t->n = 0;
}

/* dkim_fws - whitespace or a line end */
static int
dkim_fws(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* dkim_tags_parse - parse s[0..len); -1 with why (bad syntax, a tag
 * twice, too many tags) */
static int
dkim_tags_parse(const char *s, size_t len, struct dkim_tags *t,
    struct buf *why)
{
	size_t i = 0;

	t->n = 0;
	while (i < len) {
		size_t ns, ne, vs, ve;

		while (i < len && dkim_fws(s[i]))
			i++;
		if (i == len)
			break;		/* a final ';' */
		ns = i;
		while (i < len && s[i] != '=' && s[i] != ';' && !dkim_fws(s[i]))
			i++;
		ne = i;
		while (i < len && dkim_fws(s[i]))
			i++;
		if (i == len || s[i] != '=' || ne == ns || ne - ns >= 16) {
			buf_puts(why, "bad tag list");
			return -1;
		}
		i++;
		vs = i;
		while (i < len && s[i] != ';')
			i++;
		ve = i;
		if (i < len)
			i++;
		while (vs < ve && dkim_fws(s[vs]))
			vs++;
		while (ve > vs && dkim_fws(s[ve - 1]))
			ve--;
		for (size_t k = 0; k < t->n; k++)
			if (strlen(t->name[k]) == ne - ns &&
			    memcmp(t->name[k], s + ns, ne - ns) == 0) {
				buf_puts(why, "a tag appears twice");
				return -1;
			}
		if (t->n == DKIM_TAGS_MAX) {
			buf_puts(why, "too many tags");
			return -1;
		}
		memcpy(t->name[t->n], s + ns, ne - ns);
		t->name[t->n][ne - ns] = '\0';
		buf_init(&t->val[t->n]);
		buf_append(&t->val[t->n], s + vs, ve - vs);
		t->n++;
	}
	return 0;
}

/* dkim_tag - the value of tag name, or NULL */
static const char *
dkim_tag(const struct dkim_tags *t, const char *name)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->name[i], name) == 0)
			return buf_cstr(&t->val[i]);
	return NULL;
}

/* dkim_label_ok - a domain or selector as DNS labels: letters, digits,
 * '-', '_', '.' */
static bool
dkim_label_ok(const char *s)
{
	if (*s == '\0' || strlen(s) > 253)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' ||
		    *s == '.'))
			return false;
	return true;
}

/* dkim_pubkey - the key of a TXT record for algorithm alg; -1 with why */
static int
dkim_pubkey(const char *txt, int alg, EVP_PKEY **key_r, struct buf *why)
{
	struct dkim_tags t;
	struct buf raw = BUF_INIT;
	const char *k, *p, *v;
	const unsigned char *der;
	int rc = -1;

	*key_r = NULL;
	if (dkim_tags_parse(txt, strlen(txt), &t, why) < 0) {
		dkim_tags_free(&t);
		return -1;
	}
	v = dkim_tag(&t, "v");
	k = dkim_tag(&t, "k");
	p = dkim_tag(&t, "p");
	if (v != NULL && strcmp(v, "DKIM1") != 0)
		buf_puts(why, "key record: v= is not DKIM1");
	else if (p == NULL)
		buf_puts(why, "key record without p=");
	else if (*p == '\0')
		buf_puts(why, "key revoked (empty p=)");
	else if ((k == NULL || strcmp(k, "rsa") == 0) !=
	    (alg == DKIM_RSA_SHA256) && !(k != NULL && strcmp(k,
	    "ed25519") == 0 && alg == DKIM_ED25519_SHA256))
		buf_printf(why, "key type %s does not match a=",
		    k ? k : "rsa");
	else if (dkim_unb64(p, strlen(p), &raw) < 0)
		buf_puts(why, "key record: p= is not base64");
	else if (alg == DKIM_ED25519_SHA256) {
		*key_r = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL,
		    (unsigned char *)raw.data, raw.len);
		if (*key_r == NULL)
			buf_puts(why, "key record: not an Ed25519 key");
	} else {
		der = (const unsigned char *)raw.data;
		*key_r = d2i_PUBKEY(NULL, &der, (long)raw.len);
		if (*key_r == NULL || EVP_PKEY_get_base_id(*key_r) !=
		    EVP_PKEY_RSA) {
			EVP_PKEY_free(*key_r);
			*key_r = NULL;
			buf_puts(why, "key record: not an RSA key");
		} else if (EVP_PKEY_get_bits(*key_r) < 1024) {
			EVP_PKEY_free(*key_r);
			*key_r = NULL;
			buf_puts(why, "RSA key shorter than 1024 bits");
		}
	}
	if (*key_r != NULL)
		rc = 0;
	ERR_clear_error();
	buf_free(&raw);
	dkim_tags_free(&t);
	return rc;
}

/* dkim_strip_b - the value of tag b removed from a DKIM-Signature field
 * (RFC 6376 3.7), into out */
static void
dkim_strip_b(const char *f, size_t len, struct buf *out)
{
	const char *colon = memchr(f, ':', len);
	size_t i = colon ? (size_t)(colon - f) + 1 : len;

	buf_append(out, f, i);
	while (i < len) {
		size_t s = i, n;

		while (i < len && dkim_fws(f[i]))
			i++;
		n = i;
		while (i < len && f[i] != '=' && f[i] != ';')
			i++;
		buf_append(out, f + s, i - s);
		if (i < len && f[i] == '=') {
			bool is_b = i - n >= 1 && f[n] == 'b' &&
			    (i - n == 1 || dkim_fws(f[n + 1]));

			buf_putc(out, '=');
			i++;
			s = i;
			while (i < len && f[i] != ';')
				i++;
			if (!is_b)
				buf_append(out, f + s, i - s);
		}
		if (i < len) {
			buf_putc(out, ';');
			i++;
		}
	}
}

/* dkim_verify_one - check one DKIM-Signature field; 1 pass, 0 not */
static int
dkim_verify_one(struct dkim_msg *m, const struct dkim_field *sf,
    dkim_key_fn *keyfn, void *ctx, struct dkim_verdict *v)
{
	struct dkim_tags t;
	struct buf why = BUF_INIT, txt = BUF_INIT, raw = BUF_INIT;
	struct buf data = BUF_INIT, self = BUF_INIT;
	const char *colon = memchr(sf->p, ':', sf->len);
	const char *a, *b, *bh, *c, *d, *h, *s, *l, *q;
	unsigned char hash[32];
	EVP_PKEY *key = NULL;
	EVP_MD_CTX *md = NULL;
	long long limit = -1;
	int alg, ok = 0;
	bool from = false;

	memset(v, 0, sizeof(*v));
	if (dkim_tags_parse(colon + 1, sf->len - (size_t)(colon + 1 - sf->p),
	    &t, &why) < 0)
		goto out;
	a = dkim_tag(&t, "a");
	b = dkim_tag(&t, "b");
	bh = dkim_tag(&t, "bh");
	c = dkim_tag(&t, "c");
	d = dkim_tag(&t, "d");
	h = dkim_tag(&t, "h");
	s = dkim_tag(&t, "s");
	l = dkim_tag(&t, "l");
	if (d != NULL)
		snprintf(v->domain, sizeof(v->domain), "%s", d);
	if (s != NULL)
		snprintf(v->selector, sizeof(v->selector), "%s", s);
	if (a != NULL)
		snprintf(v->alg, sizeof(v->alg), "%s", a);
	if ((q = dkim_tag(&t, "v")) == NULL || strcmp(q, "1") != 0) {
		buf_puts(&why, "v= is not 1");
		goto out;
	}
	if (a == NULL || b == NULL || bh == NULL || d == NULL || h == NULL ||
	    s == NULL) {
		buf_puts(&why, "a required tag (a b bh d h s) is missing");
		goto out;
	}
	if (strcmp(a, "rsa-sha256") == 0)
		alg = DKIM_RSA_SHA256;
	else if (strcmp(a, "ed25519-sha256") == 0)
		alg = DKIM_ED25519_SHA256;
	else {
		buf_puts(&why, "algorithm not supported");
		goto out;
	}
	if (c == NULL || strcmp(c, "relaxed/relaxed") != 0) {
		buf_puts(&why, "canonicalisation other than relaxed/relaxed "
		    "not supported");
		goto out;
	}
	if (!dkim_label_ok(d) || !dkim_label_ok(s)) {
		buf_puts(&why, "bad d= or s=");
		goto out;
	}
	if ((q = dkim_tag(&t, "i")) != NULL) {
		/* the identity's domain is d= or below it (RFC 6376 3.5) */
		const char *at = strrchr(q, '@');
		size_t il, dl = strlen(d);

		at = at != NULL ? at + 1 : "";
		il = strlen(at);
		if (!(strcasecmp(at, d) == 0 || (il > dl && at[il - dl - 1] ==
		    '.' && strcasecmp(at + il - dl, d) == 0))) {
			buf_puts(&why, "i= is not in d=");
			goto out;
		}
	}
	if ((q = dkim_tag(&t, "x")) != NULL) {
		char *end;
		long long x = strtoll(q, &end, 10);

		if (*q < '0' || *q > '9' || *end != '\0') {
			buf_puts(&why, "bad x=");
			goto out;
		}
		if (x < (long long)time(NULL)) {
			buf_puts(&why, "signature expired (x=)");
			goto out;
		}
	}
	if (l != NULL) {
		char *end;

		limit = strtoll(l, &end, 10);
		if (*l < '0' || *l > '9' || *end != '\0' || limit < 0) {
			buf_puts(&why, "bad l=");
			goto out;
		}
	}

	/* the body */
	if (dkim_body_hash(m, limit, hash, &why) < 0)
		goto out;
	if (dkim_unb64(bh, strlen(bh), &raw) < 0 || raw.len != 32 ||
	    memcmp(raw.data, hash, 32) != 0) {
		buf_puts(&why, "body hash does not match (body changed)");
		goto out;
	}

	/* the header data: each h= name picks the next instance up */
	for (size_t i = 0; i < m->nf; i++)
		m->f[i].used = false;
	for (const char *p = h; *p;) {
		const char *e;
		size_t n;
		struct dkim_field *fd;

		while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			p++;
		e = p;
		while (*e && *e != ':')
			e++;
		n = (size_t)(e - p);
		while (n > 0 && dkim_fws(p[n - 1]))
			n--;
		if (n == 4 && strncasecmp(p, "from", 4) == 0)
			from = true;
		if (n > 0 && (fd = dkim_pick(m, p, n)) != NULL)
			(void)dkim_canon_header(fd->p, fd->len, &data);
		p = *e ? e + 1 : e;
	}
	if (!from) {
		buf_puts(&why, "h= does not name From");
		goto out;
	}
	dkim_strip_b(sf->p, sf->len, &self);
	(void)dkim_canon_header(self.data, self.len, &data);
	buf_truncate(&data, data.len - 2);

	/* the key, and the signature */
	if (keyfn(d, s, &txt, &why, ctx) < 0)
		goto out;
	if (txt.len > DKIM_TXT_MAX) {
		buf_puts(&why, "key record too long");
		goto out;
	}
	if (dkim_pubkey(buf_cstr(&txt), alg, &key, &why) < 0)
		goto out;
	if (dkim_unb64(b, strlen(b), &raw) < 0) {
		buf_puts(&why, "b= is not base64");
		goto out;
	}
	md = EVP_MD_CTX_new();
	if (md == NULL)
		goto out;
	if (alg == DKIM_ED25519_SHA256) {
		if (dkim_sha256(data.data, data.len, hash) < 0)
			goto out;
		ok = EVP_DigestVerifyInit(md, NULL, NULL, NULL, key) == 1 &&
		    EVP_DigestVerify(md, (unsigned char *)raw.data, raw.len,
		    hash, sizeof(hash)) == 1;
	} else
		ok = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL,
		    key) == 1 && EVP_DigestVerify(md,
		    (unsigned char *)raw.data, raw.len,
		    (unsigned char *)data.data, data.len) == 1;
	if (!ok)
		buf_puts(&why, "signature does not verify (header changed "
		    "or wrong key)");
out:
	ERR_clear_error();
	v->pass = ok;
	if (!ok)
		snprintf(v->why, sizeof(v->why), "%s", why.len ?
		    buf_cstr(&why) : "internal error");
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(key);
	dkim_tags_free(&t);
	buf_free(&why);
	buf_free(&txt);
	buf_free(&raw);
	buf_free(&data);
	buf_free(&self);
	return ok;
}

/* dkim_verify - check each DKIM-Signature field of msg */
int
dkim_verify(const char *msg, size_t len, dkim_key_fn *key, void *ctx,
    struct dkim_verdict *v, size_t max, size_t *nv)
{
	struct dkim_msg m;
	struct buf why = BUF_INIT;
	int pass = 0;

	*nv = 0;
	if (dkim_parse(msg, len, &m, &why) < 0) {
		buf_free(&why);
		return 0;
	}
	for (size_t i = 0; i < m.nf && *nv < max && *nv < DKIM_SIGS_MAX; i++)
		if (dkim_field_is(&m.f[i], "DKIM-Signature", 14))
			pass += dkim_verify_one(&m, &m.f[i], key, ctx,
			    &v[(*nv)++]);
	x_free(&m.f);
	buf_free(&why);
	return pass;
}

/* dkim_key_generate - a new private key */
int
dkim_key_generate(enum dkim_alg alg, EVP_PKEY **key_r, struct buf *why)
{
	if (alg == DKIM_ED25519_SHA256)
		*key_r = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	else
		*key_r = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	ERR_clear_error();
	if (*key_r == NULL) {
		buf_printf(why, "cannot generate a %s key",
		    dkim_alg_name(alg));
		return -1;
	}
	return 0;
}

/* dkim_key_load - a PEM private key file */
int
dkim_key_load(const char *path, EVP_PKEY **key_r, struct buf *why)
{
	BIO *bio = BIO_new_file(path, "r");

	*key_r = NULL;
	if (bio == NULL) {
		buf_printf(why, "%s: %m", path);
		ERR_clear_error();
		return -1;
	}
	*key_r = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	ERR_clear_error();
	if (*key_r == NULL || dkim_key_alg(*key_r) < 0) {
		EVP_PKEY_free(*key_r);
		*key_r = NULL;
		buf_printf(why, "%s: not an RSA or Ed25519 private key", path);
		return -1;
	}
	return 0;
}

/* dkim_key_pem - the private key as PEM PKCS#8 */
int
dkim_key_pem(EVP_PKEY *key, struct buf *out, struct buf *why)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *p;
	long n;

	if (bio == NULL || PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0,
	    NULL, NULL) != 1) {
		BIO_free(bio);
		ERR_clear_error();
		buf_puts(why, "cannot write the key as PEM");
		return -1;
	}
	n = BIO_get_mem_data(bio, &p);
	buf_append(out, p, (size_t)n);
	BIO_free(bio);
	return 0;
}

/* dkim_txt_record - "v=DKIM1; k=...; p=..." for the public half */
int
dkim_txt_record(EVP_PKEY *key, struct buf *out, struct buf *why)
{
	unsigned char raw[64], *der = NULL;
	size_t rlen = sizeof(raw);
	int n;

	if (dkim_key_alg(key) == DKIM_ED25519_SHA256) {
		if (EVP_PKEY_get_raw_public_key(key, raw, &rlen) != 1) {
			ERR_clear_error();
			buf_puts(why, "cannot get the public key");
			return -1;
		}
		buf_puts(out, "v=DKIM1; k=ed25519; p=");
		dkim_b64(raw, rlen, out);
		return 0;
	}
	n = i2d_PUBKEY(key, &der);
	if (n <= 0) {
		ERR_clear_error();
		buf_puts(why, "cannot get the public key");
		return -1;
	}
	buf_puts(out, "v=DKIM1; k=rsa; p=");
	dkim_b64(der, (size_t)n, out);
	OPENSSL_free(der);
	return 0;
}

/* dkim_selector_ok - see dkim.h */
bool
dkim_selector_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > DKIM_SELECTOR_MAX || s[0] == '-' || s[n - 1] == '-')
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}
