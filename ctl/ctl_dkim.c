/*
 * ctl_dkim - heraldctl dkim keygen, rotate, show, remove, sign, verify,
 * and domain dns: DKIM keys of the hosted domains and the DNS records a
 * domain needs.
 *
 * Keys (lib/mail/dkim.h): <dkim_directory>/DOMAIN/SELECTOR.ed25519.key
 * and SELECTOR.rsa.key (PEM PKCS#8), and DOMAIN/current naming the
 * selector that signs. A selector SEL publishes two records, one per
 * algorithm, because a DNS name holds one key: SEL-ed25519._domainkey
 * and SEL-rsa._domainkey.
 *
 * SECURITY: the files are created mode 0640 (folders 0750), and when
 * heraldctl runs as root they belong to root and dkim_group, so only the
 * signer (a member of dkim_group) can read them; smtpd, imapd, pop3d,
 * which face the network, run as users outside it (DESIGN.md section 3).
 * Files are made with O_EXCL and O_NOFOLLOW, fsynced, and "current" is
 * replaced by rename, so a crash leaves the old selector or the new one.
 *
 * rotate makes a new selector and makes it current; the old one stays
 * (still published, still verifying mail in flight) until "dkim remove
 * DOMAIN SELECTOR" after its records have been in DNS beside the new
 * ones for a few days.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "base/buf.h"
#include "base/file.h"
#include "base/mem.h"
#include "mail/dir.h"
#include "mail/dkim.h"
#include "mail/dns.h"
#include "mail/params.h"
#include "ctl.h"

#define CTL_DKIM_SELECTORS_MAX 64	/* per domain, listed */

/* ctl_dkim_domain - the DOMAIN operand, checked and hosted; -1 after
 * an error (printed) */
static int
ctl_dkim_domain(const char *s, struct buf *dom)
{
	struct dir *d;
	int r = -1;

	if (ctl_input_arg(ctl_input_domain, s, dom) == 0 &&
	    (d = ctl_dir_open()) != NULL) {
		if (ctl_dir_hosted(d, buf_cstr(dom)) == 1)
			r = 0;
		dir_close(&d);
	}
	return r;
}

/* ctl_dkim_gid - the group the key files get as root: dkim_group, or
 * root's when it does not exist (said once); -1 when not root */
static gid_t
ctl_dkim_gid(void)
{
	static bool warned;
	struct group *gr;

	if (geteuid() != 0)
		return (gid_t)-1;
	if ((gr = getgrnam(var_dkim_group)) != NULL)
		return gr->gr_gid;
	if (!warned)
		ctl_error("warning: dkim_group \"%s\" does not exist: keys "
		    "are readable by root only until it does", var_dkim_group);
	warned = true;
	return 0;
}

/* ctl_dkim_own - give fd root:gid (as root) and mode; -1 with why */
static int
ctl_dkim_own(int fd, const char *path, mode_t mode, struct buf *why)
{
	gid_t gid = ctl_dkim_gid();

	return file_fix_fd(fd, path, &(const struct file_owner){
	    gid == (gid_t)-1 ? (uid_t)-1 : 0, gid, 07777, mode}, why);
}

/* ctl_dkim_mkdir - path as a folder of mode 0750 (made if missing, its
 * owner and mode set when made); -1 with why */
static int
ctl_dkim_mkdir(const char *path, struct buf *why)
{
	int fd, rc;

	if (mkdir(path, 0700) < 0) {
		if (errno == EEXIST)
			return 0;
		buf_printf(why, "%s: %m", path);
		return -1;
	}
	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) < 0) {
		buf_printf(why, "%s: %m", path);
		return -1;
	}
	rc = ctl_dkim_own(fd, path, 0750, why);
	(void)close(fd);
	return rc;
}

/* ctl_dkim_write - a new file (O_EXCL) of mode 0640 holding data,
 * fsynced; -1 with why (and no file left) */
static int
ctl_dkim_write(const char *path, const struct buf *data, struct buf *why)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600);
	size_t off = 0;

	if (fd < 0) {
		buf_printf(why, "%s: %m", path);
		return -1;
	}
	if (ctl_dkim_own(fd, path, 0640, why) < 0)
		goto fail;
	while (off < data->len) {
		ssize_t n = write(fd, data->data + off, data->len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			buf_printf(why, "%s: write: %m", path);
			goto fail;
		}
		off += (size_t)n;
	}
	if (fsync(fd) < 0) {
		buf_printf(why, "%s: fsync: %m", path);
		goto fail;
	}
	if (close(fd) < 0) {
		fd = -1;
		buf_printf(why, "%s: close: %m", path);
		goto fail;
	}
	return 0;
fail:
	if (fd >= 0)
		(void)close(fd);
	(void)unlink(path);
	return -1;
}

/* ctl_dkim_path - <dkim_directory>/DOMAIN[/NAME] into out */
static void
ctl_dkim_path(struct buf *out, const char *dom, const char *name)
{
	buf_reset(out);
	buf_printf(out, "%s/%s", var_dkim_directory, dom);
	if (name != NULL)
		buf_printf(out, "/%s", name);
}

/* ctl_dkim_current - the selector that signs for dom; -1 with why */
static int
ctl_dkim_current(const char *dom, struct buf *sel, struct buf *why)
{
	struct buf path = BUF_INIT;
	char line[DKIM_SELECTOR_MAX + 2];
	FILE *fp;
	int rc = -1;

	ctl_dkim_path(&path, dom, "current");
	buf_reset(sel);
	if ((fp = fopen(buf_cstr(&path), "re")) == NULL) {
		if (errno == ENOENT)
			buf_printf(why, "%s has no DKIM keys (make them with "
			    "\"heraldctl dkim keygen %s\")", dom, dom);
		else
			buf_printf(why, "%s: %m", buf_cstr(&path));
	} else {
		if (fgets(line, sizeof(line), fp) != NULL) {
			line[strcspn(line, "\n")] = '\0';
			if (dkim_selector_ok(line)) {
				buf_puts(sel, line);
				rc = 0;
			}
		}
		if (rc < 0)
			buf_printf(why, "%s: not a selector", buf_cstr(&path));
		(void)fclose(fp);
	}
	buf_free(&path);
	return rc;
}

/* ctl_dkim_set_current - make sel the selector that signs (written to
 * a temporary file, renamed over "current") */
static int
ctl_dkim_set_current(const char *dom, const char *sel, struct buf *why)
{
	struct buf tmp = BUF_INIT, path = BUF_INIT, data = BUF_INIT;
	int rc = -1;

	ctl_dkim_path(&tmp, dom, "current.tmp");
	ctl_dkim_path(&path, dom, "current");
	buf_printf(&data, "%s\n", sel);
	(void)unlink(buf_cstr(&tmp));
	if (ctl_dkim_write(buf_cstr(&tmp), &data, why) == 0) {
		if (rename(buf_cstr(&tmp), buf_cstr(&path)) < 0) {
			buf_printf(why, "%s: %m", buf_cstr(&path));
			(void)unlink(buf_cstr(&tmp));
		} else
			rc = 0;
	}
	buf_free(&tmp);
	buf_free(&path);
	buf_free(&data);
	return rc;
}

/* ctl_dkim_key_path - DOMAIN/SEL.ed25519.key or .rsa.key */
static void
ctl_dkim_key_path(struct buf *out, const char *dom, const char *sel,
    enum dkim_alg alg)
{
	ctl_dkim_path(out, dom, NULL);
	buf_printf(out, "/%s.%s.key", sel, alg == DKIM_ED25519_SHA256 ?
	    "ed25519" : "rsa");
}

/* ctl_dkim_make - both keys of a new selector; -1 with why */
static int
ctl_dkim_make(const char *dom, const char *sel, struct buf *why)
{
	static const enum dkim_alg algs[] = {DKIM_ED25519_SHA256,
	    DKIM_RSA_SHA256};
	struct buf path = BUF_INIT, pem = BUF_INIT;
	struct stat st;
	int rc = -1, made = 0;

	if (ctl_dkim_mkdir(var_dkim_directory, why) < 0)
		goto out;
	ctl_dkim_path(&path, dom, NULL);
	if (ctl_dkim_mkdir(buf_cstr(&path), why) < 0)
		goto out;
	for (int i = 0; i < 2; i++) {
		ctl_dkim_key_path(&path, dom, sel, algs[i]);
		if (lstat(buf_cstr(&path), &st) == 0) {
			buf_printf(why, "selector %s of %s exists already", sel,
			    dom);
			goto out;
		}
	}
	for (int i = 0; i < 2; i++) {
		EVP_PKEY *key = NULL;

		buf_reset(&pem);
		if (dkim_key_generate(algs[i], &key, why) < 0)
			goto out;
		rc = dkim_key_pem(key, &pem, why);
		EVP_PKEY_free(key);
		if (rc < 0)
			goto out;
		rc = -1;
		ctl_dkim_key_path(&path, dom, sel, algs[i]);
		if (ctl_dkim_write(buf_cstr(&path), &pem, why) < 0)
			goto out;
		made++;
	}
	rc = 0;
out:
	/* never half a selector */
	for (int i = 0; rc < 0 && i < made; i++) {
		ctl_dkim_key_path(&path, dom, sel, algs[i]);
		(void)unlink(buf_cstr(&path));
	}
	OPENSSL_cleanse(pem.data, pem.len);
	buf_free(&path);
	buf_free(&pem);
	return rc;
}

/* ctl_dkim_exists - true if selector sel of dom has a key file */
static bool
ctl_dkim_exists(const char *dom, const char *sel)
{
	struct buf path = BUF_INIT;
	struct stat st;
	bool r;

	ctl_dkim_key_path(&path, dom, sel, DKIM_ED25519_SHA256);
	r = lstat(buf_cstr(&path), &st) == 0;
	ctl_dkim_key_path(&path, dom, sel, DKIM_RSA_SHA256);
	r = r || lstat(buf_cstr(&path), &st) == 0;
	buf_free(&path);
	return r;
}

/* ctl_dkim_new_selector - --selector, else "herald" + yyyymm, with a
 * letter after it when that one exists ("herald202612b"); -1 after an
 * error (printed) */
static int
ctl_dkim_new_selector(const struct ctl_args *a, const char *dom,
    struct buf *sel)
{
	const char *s = ctl_args_value(a, "selector");
	time_t now = time(NULL);
	struct tm tm;
	char base[32];

	buf_reset(sel);
	if (s != NULL) {
		if (!dkim_selector_ok(s)) {
			ctl_error("bad selector \"%s\": lowercase letters, "
			    "digits and '-', at most %d", s,
			    DKIM_SELECTOR_MAX);
			return -1;
		}
		buf_puts(sel, s);
		return 0;
	}
	if (gmtime_r(&now, &tm) == NULL)
		return -1;
	snprintf(base, sizeof(base), "herald%04d%02d", tm.tm_year + 1900,
	    tm.tm_mon + 1);
	buf_puts(sel, base);
	for (char c = 'b'; ctl_dkim_exists(dom, buf_cstr(sel)); c++) {
		if (c > 'z') {
			ctl_error("%s: every selector %s[b-z] is taken; give "
			    "one with --selector", dom, base);
			return -1;
		}
		buf_reset(sel);
		buf_printf(sel, "%s%c", base, c);
	}
	return 0;
}

/* ctl_dkim_txt_line - one zone-file line for a key record; strings of
 * at most 255 bytes (RFC 1035 character-strings) */
static void
ctl_dkim_txt_line(struct buf *out, const char *name, const char *txt)
{
	size_t n = strlen(txt);

	buf_printf(out, "%s. IN TXT", name);
	for (size_t i = 0; i < n; i += 255)
		buf_printf(out, " \"%.*s\"", (int)(n - i < 255 ? n - i : 255),
		    txt + i);
	buf_putc(out, '\n');
}

/* ctl_dkim_record - the TXT record text of one key file; -1 with why */
static int
ctl_dkim_record(const char *dom, const char *sel, enum dkim_alg alg,
    struct buf *txt, struct buf *why)
{
	struct buf path = BUF_INIT;
	EVP_PKEY *key = NULL;
	int rc = -1;

	ctl_dkim_key_path(&path, dom, sel, alg);
	if (dkim_key_load(buf_cstr(&path), &key, why) == 0) {
		if (dkim_key_alg(key) != (int)alg)
			buf_printf(why, "%s: not an %s key", buf_cstr(&path),
			    dkim_alg_name(alg));
		else
			rc = dkim_txt_record(key, txt, why);
	}
	EVP_PKEY_free(key);
	buf_free(&path);
	return rc;
}

/* ctl_dkim_selectors - the selectors of dom (sorted, current first),
 * one a line into out; -1 with why, also when there are more than
 * CTL_DKIM_SELECTORS_MAX (their records would not fit the tables of
 * the callers, and leaving some out would hide keys from the admin) */
static int
ctl_dkim_selectors(const char *dom, const char *current, struct buf *out,
    struct buf *why)
{
	struct buf path = BUF_INIT;
	char *names[CTL_DKIM_SELECTORS_MAX];
	size_t n = 0;
	bool full = false;
	struct dirent *de;
	DIR *dp;

	ctl_dkim_path(&path, dom, NULL);
	if ((dp = opendir(buf_cstr(&path))) == NULL) {
		buf_printf(why, "%s: %m", buf_cstr(&path));
		buf_free(&path);
		return -1;
	}
	while (!full && (de = readdir(dp)) != NULL) {
		size_t len = strlen(de->d_name);
		const char *suf = ".ed25519.key";
		char *name;

		if (len <= strlen(suf) || strcmp(de->d_name + len -
		    strlen(suf), suf) != 0)
			continue;
		name = xstrndup(de->d_name, len - strlen(suf));
		if (!dkim_selector_ok(name) || strcmp(name,
		    current) == 0) {
			x_free(&name);
			continue;
		}
		if (n == CTL_DKIM_SELECTORS_MAX - 1) {
			/* the current one makes it one more */
			x_free(&name);
			buf_printf(why, "%s has more than %d selectors: "
			    "remove old ones with \"heraldctl dkim remove\"",
			    dom, CTL_DKIM_SELECTORS_MAX);
			full = true;
			continue;
		}
		names[n++] = name;
	}
	(void)closedir(dp);
	if (full) {
		for (size_t i = 0; i < n; i++)
			x_free(&names[i]);
		buf_free(&path);
		return -1;
	}
	buf_printf(out, "%s\n", current);
	/* a few names: insertion sort */
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0;
		    j--) {
			char *t = names[j];

			names[j] = names[j - 1];
			names[j - 1] = t;
		}
	for (size_t i = 0; i < n; i++) {
		buf_printf(out, "%s\n", names[i]);
		x_free(&names[i]);
	}
	buf_free(&path);
	return 0;
}

/* one DNS record a domain needs */
struct ctl_dkim_rec {
	const char *what;	/* MX, SPF, DKIM, DMARC */
	char *name;		/* owner name, no final dot */
	uint16_t type;
	char *value;		/* MX: the host; TXT: the text */
	char *note;		/* a zone comment, or NULL */
};

/* ctl_dkim_rec_add - append a record (strings copied) */
static void
ctl_dkim_rec_add(struct ctl_dkim_rec *r, size_t *n, const char *what,
    const char *name, uint16_t type, const char *value, const char *note)
{
	r[*n].what = what;
	r[*n].name = xstrdup(name);
	r[*n].type = type;
	r[*n].value = xstrdup(value);
	r[*n].note = note ? xstrdup(note) : NULL;
	(*n)++;
}

/* ctl_dkim_rec_free - free n records */
static void
ctl_dkim_rec_free(struct ctl_dkim_rec *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		x_free(&r[i].name);
		x_free(&r[i].value);
		x_free(&r[i].note);
	}
}

#define CTL_DKIM_RECS_MAX (4 + 2 * CTL_DKIM_SELECTORS_MAX)

/* ctl_dkim_key_recs - the key records of every selector of dom (none
 * when it has no keys); -1 with why */
static int
ctl_dkim_key_recs(const char *dom, struct ctl_dkim_rec *r, size_t *n,
    struct buf *why)
{
	struct buf cur = BUF_INIT, sels = BUF_INIT, txt = BUF_INIT;
	struct buf name = BUF_INIT, note = BUF_INIT;
	int rc = -1;

	if (ctl_dkim_current(dom, &cur, why) < 0 ||
	    ctl_dkim_selectors(dom, buf_cstr(&cur), &sels, why) < 0)
		goto out;
	for (char *s = sels.data, *e; *s; s = e + 1) {
		bool current;

		e = strchr(s, '\n');
		*e = '\0';
		current = strcmp(s, buf_cstr(&cur)) == 0;
		for (int alg = 0; alg < 2; alg++) {
			enum dkim_alg a = alg == 0 ? DKIM_ED25519_SHA256 :
			    DKIM_RSA_SHA256;

			buf_reset(&txt);
			if (ctl_dkim_record(dom, s, a, &txt, why) < 0)
				goto out;
			buf_reset(&name);
			buf_printf(&name, "%s-%s._domainkey.%s", s,
			    a == DKIM_ED25519_SHA256 ? "ed25519" : "rsa",
			    dom);
			buf_reset(&note);
			buf_printf(&note, "selector %s (%s)", s, current ?
			    "signs" : "old: keep until \"heraldctl dkim "
			    "remove\"");
			ctl_dkim_rec_add(r, n, "DKIM", buf_cstr(&name),
			    DNS_T_TXT, buf_cstr(&txt), buf_cstr(&note));
		}
	}
	rc = 0;
out:
	buf_free(&cur);
	buf_free(&sels);
	buf_free(&txt);
	buf_free(&name);
	buf_free(&note);
	return rc;
}

/* ctl_dkim_print_recs - zone-file lines, or JSON */
static void
ctl_dkim_print_recs(const struct ctl *ctl, const struct ctl_dkim_rec *r,
    size_t n, const char *const *status)
{
	struct buf out = BUF_INIT;
	struct ctl_json j;

	if (ctl->json) {
		ctl_json_init(&j, &out);
		ctl_json_open(&j, '[');
		for (size_t i = 0; i < n; i++) {
			ctl_json_open(&j, '{');
			ctl_json_kstr(&j, "record", r[i].what);
			ctl_json_kstr(&j, "name", r[i].name);
			ctl_json_kstr(&j, "type", dns_type_name(r[i].type));
			ctl_json_kstr(&j, "value", r[i].value);
			if (status != NULL)
				ctl_json_kstr(&j, "check", status[i]);
			ctl_json_close(&j, '}');
		}
		ctl_json_close(&j, ']');
		ctl_json_print(&out);
		buf_free(&out);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (r[i].note != NULL)
			buf_printf(&out, "; %s: %s\n", r[i].what, r[i].note);
		if (r[i].type == DNS_T_MX)
			buf_printf(&out, "%s. IN MX 10 %s.\n", r[i].name,
			    r[i].value);
		else
			ctl_dkim_txt_line(&out, r[i].name, r[i].value);
		if (status != NULL)
			buf_printf(&out, ";   check: %s\n", status[i]);
	}
	fputs(buf_cstr(&out), stdout);
	buf_free(&out);
}

/* ctl_dkim_keygen - the first keys of a domain */
int
ctl_dkim_keygen(struct ctl *ctl, const struct ctl_args *a)
{
	struct buf dom = BUF_INIT, sel = BUF_INIT, why = BUF_INIT;
	struct ctl_dkim_rec r[CTL_DKIM_RECS_MAX];
	size_t n = 0;
	int rc = CTL_EXIT_FAIL;

	if (ctl_dkim_domain(a->pos[0], &dom) < 0)
		goto out;
	if (ctl_dkim_current(buf_cstr(&dom), &sel, &why) == 0) {
		ctl_error("%s has DKIM keys already (selector %s); \"heraldctl "
		    "dkim rotate %s\" makes new ones", buf_cstr(&dom),
		    buf_cstr(&sel), buf_cstr(&dom));
		goto out;
	}
	buf_reset(&why);
	if (ctl_dkim_new_selector(a, buf_cstr(&dom), &sel) < 0)
		goto out;
	if (ctl_dkim_make(buf_cstr(&dom), buf_cstr(&sel), &why) < 0 ||
	    ctl_dkim_set_current(buf_cstr(&dom), buf_cstr(&sel), &why) < 0 ||
	    ctl_dkim_key_recs(buf_cstr(&dom), r, &n, &why) < 0) {
		ctl_error("%s", buf_cstr(&why));
		goto out;
	}
	if (!ctl->json)
		printf("; DKIM keys of %s made, selector %s; publish:\n",
		    buf_cstr(&dom), buf_cstr(&sel));
	ctl_dkim_print_recs(ctl, r, n, NULL);
	rc = CTL_EXIT_OK;
out:
	ctl_dkim_rec_free(r, n);
	buf_free(&dom);
	buf_free(&sel);
	buf_free(&why);
	return rc;
}

/* ctl_dkim_count_lines - how many lines b holds */
static int
ctl_dkim_count_lines(const struct buf *b)
{
	int n = 0;

	for (size_t i = 0; i < b->len; i++)
		n += b->data[i] == '\n';
	return n;
}

/* ctl_dkim_rotate - a new selector that signs from now on */
int
ctl_dkim_rotate(struct ctl *ctl, const struct ctl_args *a)
{
	struct buf dom = BUF_INIT, sel = BUF_INIT, old = BUF_INIT;
	struct buf why = BUF_INIT, sels = BUF_INIT;
	struct ctl_dkim_rec r[CTL_DKIM_RECS_MAX];
	size_t n = 0;
	int rc = CTL_EXIT_FAIL;

	if (ctl_dkim_domain(a->pos[0], &dom) < 0)
		goto out;
	if (ctl_dkim_current(buf_cstr(&dom), &old, &why) < 0 ||
	    ctl_dkim_selectors(buf_cstr(&dom), buf_cstr(&old), &sels,
	    &why) < 0) {
		ctl_error("%s", buf_cstr(&why));
		goto out;
	}
	/* one a line: a new one must still fit, or rotate would make it
	 * and switch to it, then fail to list the records */
	if (ctl_dkim_count_lines(&sels) >= CTL_DKIM_SELECTORS_MAX) {
		ctl_error("%s has %d selectors, the most it may have: remove "
		    "old ones with \"heraldctl dkim remove\" first",
		    buf_cstr(&dom), CTL_DKIM_SELECTORS_MAX);
		goto out;
	}
	if (ctl_dkim_new_selector(a, buf_cstr(&dom), &sel) < 0)
		goto out;
	if (ctl_dkim_make(buf_cstr(&dom), buf_cstr(&sel), &why) < 0 ||
	    ctl_dkim_set_current(buf_cstr(&dom), buf_cstr(&sel), &why) < 0 ||
	    ctl_dkim_key_recs(buf_cstr(&dom), r, &n, &why) < 0) {
		ctl_error("%s", buf_cstr(&why));
		goto out;
	}
	if (!ctl->json)
		printf("; %s signs with selector %s from now on; %s stays "
		    "until \"heraldctl dkim remove %s %s\"\n; (publish the "
		    "new records first, remove the old after a few days)\n",
		    buf_cstr(&dom), buf_cstr(&sel), buf_cstr(&old),
		    buf_cstr(&dom), buf_cstr(&old));
	ctl_dkim_print_recs(ctl, r, n, NULL);
	rc = CTL_EXIT_OK;
out:
	ctl_dkim_rec_free(r, n);
	buf_free(&dom);
	buf_free(&sel);
	buf_free(&old);
	buf_free(&sels);
	buf_free(&why);
	return rc;
}

/* ctl_dkim_show - the key records of a domain */
int
ctl_dkim_show(struct ctl *ctl, const struct ctl_args *a)
{
	struct buf dom = BUF_INIT, why = BUF_INIT;
	struct ctl_dkim_rec r[CTL_DKIM_RECS_MAX];
	size_t n = 0;
	int rc = CTL_EXIT_FAIL;

	if (ctl_dkim_domain(a->pos[0], &dom) < 0)
		goto out;
	if (ctl_dkim_key_recs(buf_cstr(&dom), r, &n, &why) < 0) {
		ctl_error("%s", buf_cstr(&why));
		goto out;
	}
	ctl_dkim_print_recs(ctl, r, n, NULL);
	rc = CTL_EXIT_OK;
out:
	ctl_dkim_rec_free(r, n);
	buf_free(&dom);
	buf_free(&why);
	return rc;
}

/* ctl_dkim_remove - delete an old selector's keys */
int
ctl_dkim_remove(struct ctl *ctl, const struct ctl_args *a)
{
	struct buf dom = BUF_INIT, cur = BUF_INIT, why = BUF_INIT;
	struct buf path = BUF_INIT;
	const char *sel = a->pos[1];
	int rc = CTL_EXIT_FAIL;

	(void)ctl;
	if (ctl_dkim_domain(a->pos[0], &dom) < 0)
		goto out;
	if (!dkim_selector_ok(sel) || !ctl_dkim_exists(buf_cstr(&dom),
	    sel)) {
		ctl_error("%s has no selector \"%s\"", buf_cstr(&dom), sel);
		goto out;
	}
	if (ctl_dkim_current(buf_cstr(&dom), &cur, &why) == 0 &&
	    strcmp(buf_cstr(&cur), sel) == 0) {
		ctl_error("%s is the selector that signs; \"heraldctl dkim "
		    "rotate %s\" first", sel, buf_cstr(&dom));
		goto out;
	}
	rc = CTL_EXIT_OK;
	for (int i = 0; i < 2; i++) {
		ctl_dkim_key_path(&path, buf_cstr(&dom), sel, i == 0 ?
		    DKIM_ED25519_SHA256 : DKIM_RSA_SHA256);
		if (unlink(buf_cstr(&path)) < 0 && errno != ENOENT) {
			ctl_error("%s: %m", buf_cstr(&path));
			rc = CTL_EXIT_FAIL;
		}
	}
	if (rc == CTL_EXIT_OK)
		printf("selector %s of %s removed; delete its records "
		    "%s-ed25519._domainkey and %s-rsa._domainkey from DNS\n",
		    sel, buf_cstr(&dom), sel, sel);
out:
	buf_free(&dom);
	buf_free(&cur);
	buf_free(&why);
	buf_free(&path);
	return rc;
}

/* ctl_dkim_read_stdin - the message on stdin, at most
 * message_size_limit bytes; -1 after an error (printed) */
static int
ctl_dkim_read_stdin(struct buf *msg)
{
	char chunk[65536];
	size_t limit = var_message_size_limit > 0 ?
	    (size_t)var_message_size_limit : (size_t)1 << 30;

	for (;;) {
		ssize_t n = read(STDIN_FILENO, chunk, sizeof(chunk));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ctl_error("stdin: %m");
			return -1;
		}
		if (n == 0)
			return 0;
		if (msg->len + (size_t)n > limit) {
			ctl_error("the message is larger than "
			    "message_size_limit (%zu bytes)", limit);
			return -1;
		}
		buf_append(msg, chunk, (size_t)n);
	}
}

/* ctl_dkim_sign - sign the message on stdin with the domain's current
 * keys; the DKIM-Signature fields and the message go to stdout */
int
ctl_dkim_sign(struct ctl *ctl, const struct ctl_args *a)
{
	struct buf dom = BUF_INIT, sel[2] = {BUF_INIT, BUF_INIT};
	struct buf why = BUF_INIT, msg = BUF_INIT, out = BUF_INIT;
	struct buf cur = BUF_INIT, path = BUF_INIT;
	EVP_PKEY *key[2] = {NULL, NULL};
	struct dkim_signer s[2];
	const char *nl;
	int rc = CTL_EXIT_FAIL;

	(void)ctl;
	if (ctl_dkim_domain(a->pos[0], &dom) < 0)
		goto out;
	if (ctl_dkim_current(buf_cstr(&dom), &cur, &why) < 0) {
		ctl_error("%s", buf_cstr(&why));
		goto out;
	}
	for (int i = 0; i < 2; i++) {
		enum dkim_alg alg = i == 0 ? DKIM_ED25519_SHA256 :
		    DKIM_RSA_SHA256;

		ctl_dkim_key_path(&path, buf_cstr(&dom), buf_cstr(&cur), alg);
		if (dkim_key_load(buf_cstr(&path), &key[i], &why) < 0) {
			ctl_error("%s", buf_cstr(&why));
			goto out;
		}
		buf_printf(&sel[i], "%s-%s", buf_cstr(&cur), i == 0 ?
		    "ed25519" : "rsa");
		s[i] = (struct dkim_signer){buf_cstr(&dom), buf_cstr(&sel[i]),
		    key[i]};
	}
	if (ctl_dkim_read_stdin(&msg) < 0)
		goto out;
	if (dkim_sign(msg.data, msg.len, s, 2, time(NULL), &out, &why) < 0) {
		ctl_error("%s", buf_cstr(&why));
		goto out;
	}
	/* the fields end lines as the message does */
	if ((nl = memchr(msg.data, '\n', msg.len)) != NULL &&
	    (nl == msg.data || nl[-1] != '\r')) {
		size_t k = 0;

		for (size_t i = 0; i < out.len; i++)
			if (!(out.data[i] == '\r' && i + 1 < out.len &&
			    out.data[i + 1] == '\n'))
				out.data[k++] = out.data[i];
		buf_truncate(&out, k);
	}
	if (fwrite(out.data, 1, out.len, stdout) != out.len ||
	    fwrite(msg.data, 1, msg.len, stdout) != msg.len ||
	    fflush(stdout) != 0) {
		ctl_error("stdout: %m");
		goto out;
	}
	rc = CTL_EXIT_OK;
out:
	EVP_PKEY_free(key[0]);
	EVP_PKEY_free(key[1]);
	buf_free(&dom);
	buf_free(&sel[0]);
	buf_free(&sel[1]);
	buf_free(&why);
	buf_free(&msg);
	buf_free(&out);
	buf_free(&cur);
	buf_free(&path);
	return rc;
}

/* ctl_dkim_lookup - dns_lookup that has an answer (records, nxdomain
 * or nodata) in res; -1 with why when it has none (res still to free) */
static int
ctl_dkim_lookup(struct dns *dns, const char *name, uint16_t type,
    struct dns_result *res, struct buf *why)
{
	if (dns_lookup(dns, name, type, res) == 0 &&
	    res->status != DNS_TEMPFAIL && res->status != DNS_BOGUS)
		return 0;
	buf_printf(why, "%s %s: %s%s%s", name, dns_type_name(type),
	    dns_status_name(res->status), res->why ? ": " : "",
	    res->why ? res->why : "");
	return -1;
}

/* ctl_dkim_txt - the first TXT record of name starting with prefix
 * (all strings joined) into out: 1 found, 0 not, -1 lookup failed
 * (why); secure_r says whether DNSSEC validated it */
static int
ctl_dkim_txt(struct dns *dns, const char *name, const char *prefix,
    struct buf *out, bool *secure_r, struct buf *why)
{
	struct dns_result res = DNS_RESULT_INIT;
	int r = 0;

	if (ctl_dkim_lookup(dns, name, DNS_T_TXT, &res, why) < 0) {
		dns_result_free(&res);
		return -1;
	}
	for (size_t i = 0; i < res.nrr && r == 0; i++)
		if (res.rr[i].len >= strlen(prefix) && strncasecmp(
		    (char *)res.rr[i].data, prefix, strlen(prefix)) == 0 &&
		    res.rr[i].len <= DKIM_TXT_MAX) {
			buf_append(out, res.rr[i].data, res.rr[i].len);
			r = 1;
		}
	if (secure_r != NULL)
		*secure_r = res.secure;
	dns_result_free(&res);
	return r;
}

/* ctl_dkim_dns_key - dkim_key_fn through herald's resolver */
static int
ctl_dkim_dns_key(const char *domain, const char *selector, struct buf *txt,
    struct buf *why, void *ctx)
{
	struct buf name = BUF_INIT;
	int r;

	buf_printf(&name, "%s._domainkey.%s", selector, domain);
	r = ctl_dkim_txt(ctx, buf_cstr(&name), "", txt, NULL, why);
	if (r == 0)
		buf_printf(why, "no key record %s", buf_cstr(&name));
	buf_free(&name);
	return r == 1 ? 0 : -1;
}

/* ctl_dkim_verify - check the signatures of the message on stdin with
 * the keys DNS gives; exit 0 when one passes */
int
ctl_dkim_verify(struct ctl *ctl, const struct ctl_args *a)
{
	struct buf msg = BUF_INIT, why = BUF_INIT, out = BUF_INIT;
	struct dkim_verdict v[DKIM_SIGS_MAX];
	struct dns *dns = NULL;
	struct ctl_json j;
	size_t nv = 0;
	int pass;

	(void)a;
	if (dns_new_params(&dns, &why) < 0) {
		ctl_error("%s", buf_cstr(&why));
		buf_free(&why);
		return CTL_EXIT_FAIL;
	}
	if (ctl_dkim_read_stdin(&msg) < 0) {
		dns_free(&dns);
		buf_free(&msg);
		return CTL_EXIT_FAIL;
	}
	pass = dkim_verify(msg.data, msg.len, ctl_dkim_dns_key, dns, v,
	    DKIM_SIGS_MAX, &nv);
	if (ctl->json) {
		ctl_json_init(&j, &out);
		ctl_json_open(&j, '[');
		for (size_t i = 0; i < nv; i++) {
			ctl_json_open(&j, '{');
			ctl_json_kstr(&j, "domain", v[i].domain);
			ctl_json_kstr(&j, "selector", v[i].selector);
			ctl_json_kstr(&j, "algorithm", v[i].alg);
			ctl_json_kstr(&j, "result", v[i].pass ? "pass" :
			    "fail");
			if (!v[i].pass)
				ctl_json_kstr(&j, "reason", v[i].why);
			ctl_json_close(&j, '}');
		}
		ctl_json_close(&j, ']');
		ctl_json_print(&out);
	} else {
		if (nv == 0)
			printf("no DKIM-Signature\n");
		for (size_t i = 0; i < nv; i++)
			printf("d=%s s=%s a=%s: %s%s%s\n", v[i].domain,
			    v[i].selector, v[i].alg, v[i].pass ? "pass" :
			    "fail", v[i].pass ? "" : ": ", v[i].pass ? "" :
			    v[i].why);
	}
	dns_free(&dns);
	buf_free(&msg);
	buf_free(&why);
	buf_free(&out);
	return pass > 0 ? CTL_EXIT_OK : CTL_EXIT_FAIL;
}

/* ctl_dkim_squeeze - s without whitespace, for comparing records */
static void
ctl_dkim_squeeze(const char *s, struct buf *out)
{
	buf_reset(out);
	for (; *s; s++)
		if (*s != ' ' && *s != '\t')
			buf_putc(out, *s);
}

/* ctl_dkim_check_mx - "ok" when host is one of dom's MX hosts */
static const char *
ctl_dkim_check_mx(struct dns *dns, const struct ctl_dkim_rec *r,
    struct buf *detail)
{
	struct dns_result res = DNS_RESULT_INIT;
	const char *st = "missing";

	if (ctl_dkim_lookup(dns, r->name, DNS_T_MX, &res, detail) < 0) {
		st = "tempfail";
	} else {
		for (size_t i = 0; i < res.nrr; i++) {
			if (strcasecmp(res.rr[i].host, r->value) == 0)
				st = "ok";
			buf_printf(detail, "%s%s", i ? " " : "found ",
			    res.rr[i].host);
		}
		if (res.nrr > 0 && strcmp(st, "ok") != 0)
			st = "differs";
	}
	dns_result_free(&res);
	return st;
}

/* ctl_domain_dns - every record a domain needs; --check compares with
 * what DNS says (exit 1 if one is not as printed) */
int
ctl_domain_dns(struct ctl *ctl, const struct ctl_args *a)
{
	struct buf dom = BUF_INIT, why = BUF_INIT, name = BUF_INIT;
	struct buf val = BUF_INIT, got = BUF_INIT, s1 = BUF_INIT,
	    s2 = BUF_INIT, detail = BUF_INIT;
	struct ctl_dkim_rec r[CTL_DKIM_RECS_MAX];
	char *status[CTL_DKIM_RECS_MAX] = {NULL};
	bool check = ctl_args_has(a, "check");
	struct dns *dns = NULL;
	size_t n = 0;
	int rc = CTL_EXIT_FAIL;

	if (ctl_dkim_domain(a->pos[0], &dom) < 0)
		goto out;
	ctl_dkim_rec_add(r, &n, "MX", buf_cstr(&dom), DNS_T_MX,
	    var_myhostname, "mail for the domain goes to this host");
	ctl_dkim_rec_add(r, &n, "SPF", buf_cstr(&dom), DNS_T_TXT,
	    "v=spf1 mx -all", "only the MX hosts send its mail");
	if (ctl_dkim_key_recs(buf_cstr(&dom), r, &n, &why) < 0) {
		/* without keys the rest is still worth printing */
		ctl_error("warning: %s", buf_cstr(&why));
		buf_reset(&why);
	}
	buf_printf(&name, "_dmarc.%s", buf_cstr(&dom));
	buf_printf(&val, "v=DMARC1; p=quarantine; rua=mailto:postmaster@%s",
	    buf_cstr(&dom));
	ctl_dkim_rec_add(r, &n, "DMARC", buf_cstr(&name), DNS_T_TXT,
	    buf_cstr(&val), "receivers quarantine mail that fails SPF and "
	    "DKIM; reports to postmaster");
	if (!check) {
		ctl_dkim_print_recs(ctl, r, n, NULL);
		rc = CTL_EXIT_OK;
		goto out;
	}
	if (dns_new_params(&dns, &why) < 0) {
		ctl_error("%s", buf_cstr(&why));
		goto out;
	}
	rc = CTL_EXIT_OK;
	for (size_t i = 0; i < n; i++) {
		const char *st;
		const char *prefix = strcmp(r[i].what, "SPF") == 0 ?
		    "v=spf1" : strcmp(r[i].what, "DMARC") == 0 ? "v=DMARC1" :
		    "";
		bool secure = false;
		int f;

		buf_reset(&detail);
		if (r[i].type == DNS_T_MX) {
			st = ctl_dkim_check_mx(dns, &r[i], &detail);
		} else {
			buf_reset(&got);
			buf_reset(&why);
			f = ctl_dkim_txt(dns, r[i].name, prefix, &got, &secure,
			    &why);
			ctl_dkim_squeeze(r[i].value, &s1);
			ctl_dkim_squeeze(buf_cstr(&got), &s2);
			if (f < 0) {
				st = "tempfail";
				buf_puts(&detail, buf_cstr(&why));
			} else if (f == 0)
				st = "missing";
			else if (strcmp(buf_cstr(&s1), buf_cstr(&s2)) == 0)
				st = secure ? "ok, DNSSEC" : "ok";
			else {
				st = "differs";
				buf_printf(&detail, "found \"%.200s\"",
				    buf_cstr(&got));
			}
		}
		if (strncmp(st, "ok", 2) != 0)
			rc = CTL_EXIT_FAIL;
		status[i] = detail.len ? xasprintf("%s (%s)", st,
		    buf_cstr(&detail)) : xstrdup(st);
	}
	ctl_dkim_print_recs(ctl, r, n, (const char *const *)status);
out:
	for (size_t i = 0; i < n; i++)
		x_free(&status[i]);
	buf_free(&detail);
	dns_free(&dns);
	ctl_dkim_rec_free(r, n);
	buf_free(&dom);
	buf_free(&why);
	buf_free(&name);
	buf_free(&val);
	buf_free(&got);
	buf_free(&s1);
	buf_free(&s2);
	return rc;
}

/* ctl_dkim_user_in - true if user name is in group gr (primary or
 * member); unknown users are not */
static bool
ctl_dkim_user_in(const char *name, const struct group *gr)
{
	struct passwd *pw = getpwnam(name);

	if (pw == NULL)
		return false;
	if (pw->pw_gid == gr->gr_gid)
		return true;
	for (char **m = gr->gr_mem; *m != NULL; m++)
		if (strcmp(*m, name) == 0)
			return true;
	return false;
}

/* ctl_dkim_check_mode - one folder or key file: nothing for others,
 * no group write, root's when run as root; -1 with why */
static int
ctl_dkim_check_mode(const char *path, bool dir, bool root, struct buf *why)
{
	struct stat st;

	if (lstat(path, &st) < 0) {
		buf_printf(why, "%s: %m", path);
		return -1;
	}
	if (dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) {
		buf_printf(why, "%s: not a %s", path, dir ? "folder" : "file");
		return -1;
	}
	if ((st.st_mode & 0027) != 0) {
		buf_printf(why, "%s has mode %04o: others or the group could "
		    "change or read keys (want %s)", path,
		    (unsigned)(st.st_mode & 07777), dir ? "0750" : "0640");
		return -1;
	}
	if (root && st.st_uid != 0) {
		buf_printf(why, "%s belongs to uid %ld, not root", path,
		    (long)st.st_uid);
		return -1;
	}
	return 0;
}

/* ctl_dkim_check - for heraldctl check: the key folders and files are
 * closed to others, no service user but the signer's is in dkim_group,
 * and the signer's user is none of theirs. 1 ok (what says what), 0 no
 * keys, -1 with why */
int
ctl_dkim_check(struct buf *what, struct buf *why)
{
	static const char *const *users[] = {(const char *const *)
	    &var_herald_user, (const char *const *)&var_vmail_user,
	    (const char *const *)&var_auth_user};
	struct buf path = BUF_INIT;
	bool root = geteuid() == 0;
	struct dirent *de, *ke;
	struct group *gr;
	struct stat st;
	DIR *dp, *kp;
	int ndom = 0, nkey = 0, rc = -1;

	if (lstat(var_dkim_directory, &st) < 0 && errno == ENOENT)
		return 0;
	if (ctl_dkim_check_mode(var_dkim_directory, true, root, why) < 0)
		return -1;
	/* the signer joins dkim_group: a service sharing its user would
	 * share its files and processes */
	for (size_t i = 0; root && i < sizeof(users) / sizeof(users[0]); i++)
		if (strcmp(var_dkim_user, *users[i]) == 0) {
			buf_printf(why, "dkim_user %s is also a network "
			    "service's user: give the signer a user of its "
			    "own", var_dkim_user);
			return -1;
		}
	if (root && (gr = getgrnam(var_dkim_group)) != NULL) {
		for (size_t i = 0; i < sizeof(users) / sizeof(users[0]); i++)
			if (ctl_dkim_user_in(*users[i], gr)) {
				buf_printf(why, "%s is in dkim_group %s: it "
				    "could read the keys", *users[i],
				    var_dkim_group);
				return -1;
			}
		if (strcmp(var_directory_group, var_dkim_group) == 0) {
			buf_printf(why, "directory_group is dkim_group (%s): "
			    "every service could read the keys",
			    var_dkim_group);
			return -1;
		}
	}
	if ((dp = opendir(var_dkim_directory)) == NULL) {
		buf_printf(why, "%s: %m", var_dkim_directory);
		return -1;
	}
	while ((de = readdir(dp)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		ctl_dkim_path(&path, de->d_name, NULL);
		if (ctl_dkim_check_mode(buf_cstr(&path), true, root, why) < 0)
			goto out;
		ndom++;
		if ((kp = opendir(buf_cstr(&path))) == NULL) {
			buf_printf(why, "%s: %m", buf_cstr(&path));
			goto out;
		}
		while ((ke = readdir(kp)) != NULL) {
			size_t n = strlen(ke->d_name);

			if (n < 4 || strcmp(ke->d_name + n - 4, ".key") != 0)
				continue;
			ctl_dkim_path(&path, de->d_name, ke->d_name);
			if (ctl_dkim_check_mode(buf_cstr(&path), false, root,
			    why) < 0) {
				(void)closedir(kp);
				goto out;
			}
			nkey++;
		}
		(void)closedir(kp);
	}
	buf_printf(what, "%s: %d domain%s, %d key%s", var_dkim_directory,
	    ndom, ndom == 1 ? "" : "s", nkey, nkey == 1 ? "" : "s");
	rc = 1;
out:
	(void)closedir(dp);
	buf_free(&path);
	return rc;
}
