/*
 * signer_keys - the keys a domain signs with, as heraldctl dkim keeps
 * them: <dkim_directory>/DOMAIN/current names the selector SEL, whose
 * keys are SEL.ed25519.key and SEL.rsa.key; their DNS records are
 * SEL-ed25519._domainkey and SEL-rsa._domainkey (ctl/ctl_dkim.c).
 *
 * Keys are loaded once and kept per domain with the identity of the
 * "current" file they came from (device, inode, change time, size).
 * Each request stats that file again: "heraldctl dkim rotate" replaces
 * it by rename, so the next message signs with the new selector without
 * a reload. A reload replaces the signer processes, and with them every
 * cached key. The cache holds at most SIGNER_KEYS_MAX domains; when it
 * is full it is emptied (a domain then costs one load again).
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "mail/dkim.h"
#include "mail/params.h"
#include "signer.h"

#define SIGNER_KEYS_MAX 1024		/* domains cached */

/* the keys of one domain's current selector */
struct signer_keyset {
	char *domain;
	char selector[DKIM_SELECTOR_MAX + 1];
	struct stat id;			/* of DOMAIN/current */
	EVP_PKEY *key[2];		/* ed25519, rsa; NULL: none */
	char sel[2][DKIM_SELECTOR_MAX + 16];	/* s= of each */
};

static struct signer_keyset *signer_keys;
static size_t signer_nkeys;

/* signer_keys_drop - free one set's contents */
static void
signer_keys_drop(struct signer_keyset *k)
{
	x_free(&k->domain);
	for (int i = 0; i < 2; i++) {
		EVP_PKEY_free(k->key[i]);
		k->key[i] = NULL;
	}
}

/* signer_keys_flush - forget every cached key */
void
signer_keys_flush(void)
{
	for (size_t i = 0; i < signer_nkeys; i++)
		signer_keys_drop(&signer_keys[i]);
	x_free(&signer_keys);
	signer_nkeys = 0;
}

/* signer_keys_same - the same file as when the keys were loaded? */
static bool
signer_keys_same(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
	    a->st_size == b->st_size &&
	    a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
	    a->st_ctim.tv_nsec == b->st_ctim.tv_nsec &&
	    a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	    a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/*
 * signer_keys_load - read DOMAIN/current (open on fd, identity st) and
 * its selector's keys into k; -1 with why. A selector needs at least
 * one of its two keys; a key file that exists but cannot be read is an
 * error, never a reason to sign with less.
 */
static int
signer_keys_load(const char *domain, int fd, const struct stat *st,
    struct signer_keyset *k, struct buf *why)
{
	static const char *const ext[2] = {"ed25519", "rsa"};
	char line[DKIM_SELECTOR_MAX + 2];
	struct buf path = BUF_INIT;
	ssize_t n;
	int rc = -1, loaded = 0;

	memset(k, 0, sizeof(*k));
	do
		n = read(fd, line, sizeof(line) - 1);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		buf_printf(why, "%s/%s/current: %m", var_dkim_directory,
		    domain);
		return -1;
	}
	line[n] = '\0';
	line[strcspn(line, "\n")] = '\0';
	if (!dkim_selector_ok(line)) {
		buf_printf(why, "%s/%s/current: not a selector",
		    var_dkim_directory, domain);
		return -1;
	}
	memcpy(k->selector, line, strlen(line) + 1);
	k->id = *st;
	for (int i = 0; i < 2; i++) {
		buf_reset(&path);
		buf_printf(&path, "%s/%s/%s.%s.key", var_dkim_directory,
		    domain, k->selector, ext[i]);
		if (access(buf_cstr(&path), F_OK) < 0 && errno == ENOENT)
			continue;
		if (dkim_key_load(buf_cstr(&path), &k->key[i], why) < 0)
			goto out;
		if (dkim_key_alg(k->key[i]) != (i == 0 ?
		    DKIM_ED25519_SHA256 : DKIM_RSA_SHA256)) {
			buf_printf(why, "%s: not an %s key", buf_cstr(&path),
			    ext[i]);
			goto out;
		}
		snprintf(k->sel[i], sizeof(k->sel[i]), "%s-%s", k->selector,
		    ext[i]);
		loaded++;
	}
	if (loaded == 0) {
		buf_printf(why, "%s/%s: selector %s has no key file",
		    var_dkim_directory, domain, k->selector);
		goto out;
	}
	k->domain = xstrdup(domain);
	rc = 0;
out:
	if (rc < 0)
		signer_keys_drop(k);
	buf_free(&path);
	return rc;
}

/*
 * signer_keys_find - the cached or freshly loaded keys of domain: 1 with
 * *k_r, 0 when the domain has no "current" file (no key: unsigned), -1
 * with why.
 */
static int
signer_keys_find(const char *domain, struct signer_keyset **k_r,
    struct buf *why)
{
	struct buf path = BUF_INIT;
	struct signer_keyset fresh, *k = NULL;
	struct stat st;
	size_t i;
	int fd, rc;

	buf_printf(&path, "%s/%s/current", var_dkim_directory, domain);
	fd = open(buf_cstr(&path), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		rc = errno == ENOENT ? 0 : -1;
		if (rc < 0)
			buf_printf(why, "%s: %m", buf_cstr(&path));
		buf_free(&path);
		return rc;
	}
	if (fstat(fd, &st) < 0) {
		buf_printf(why, "%s: %m", buf_cstr(&path));
		(void)close(fd);
		buf_free(&path);
		return -1;
	}
	buf_free(&path);
	for (i = 0; i < signer_nkeys; i++)
		if (strcmp(signer_keys[i].domain, domain) == 0) {
			k = &signer_keys[i];
			break;
		}
	if (k != NULL && signer_keys_same(&k->id, &st)) {
		(void)close(fd);
		*k_r = k;
		return 1;
	}
	rc = signer_keys_load(domain, fd, &st, &fresh, why);
	(void)close(fd);
	if (rc < 0)
		return -1;
	if (k != NULL) {
		msg_info("domain %s: signing with selector %s (was %s)",
		    domain, fresh.selector, k->selector);
		signer_keys_drop(k);
	} else {
		if (signer_nkeys == SIGNER_KEYS_MAX)
			signer_keys_flush();
		signer_keys = xreallocarray(signer_keys, signer_nkeys + 1,
		    sizeof(*signer_keys));
		k = &signer_keys[signer_nkeys++];
		msg_info("domain %s: signing with selector %s", domain,
		    fresh.selector);
	}
	*k = fresh;
	*k_r = k;
	return 1;
}

/* signer_keys_sign - the DKIM-Signature fields of r into out */
int
signer_keys_sign(const struct signer_req *r, time_t now, struct buf *out,
    struct buf *why)
{
	struct signer_keyset *k;
	struct dkim_signer s[2];
	size_t ns = 0;
	int found;

	if ((found = signer_keys_find(r->domain, &k, why)) <= 0)
		return found;
	for (int i = 0; i < 2; i++)
		if (k->key[i] != NULL)
			s[ns++] = (struct dkim_signer){k->domain, k->sel[i],
			    k->key[i]};
	if (dkim_sign_header(r->header, r->header_len, r->bh, s, ns, now,
	    out, why) < 0)
		return -1;
	return 1;
}
