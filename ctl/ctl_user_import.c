/*
 * ctl_user_import - "heraldctl user import FILE": accounts from a Dovecot
 * passwd-file, so a Dovecot installation moves over without new passwords.
 *
 * A passwd-file line is "user:password:uid:gid:gecos:home:shell:extra";
 * only the first two fields matter here. The password is "{SCHEME}value"
 * or a bare crypt(3) string. Hashes herald can verify are kept as they
 * are: SHA512-CRYPT ($6$), BLF-CRYPT ($2a$/$2b$/$2y$) and yescrypt ($y$),
 * under those scheme names or {CRYPT}. {PLAIN} (also {CLEAR},
 * {CLEARTEXT}) is hashed with yescrypt on the way in. Weak or foreign
 * schemes (MD5-CRYPT, DES, SSHA, ...) are refused: those users need a new
 * password. An extra field "nologin" (or "userdb_nologin") imports the
 * user disabled.
 *
 * The whole file is checked first; if any line is bad, every bad line is
 * reported with its number and nothing is imported. Users that already
 * exist are skipped, or get the file's password with --update. A user
 * without "@" gets --domain; the domain must be hosted already.
 */
#include <crypt.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/addr.h"
#include "mail/dir.h"
#include "mail/params.h"
#include "ctl.h"

#define CTL_IMPORT_LINE_MAX 8192	/* longest passwd-file line */
#define CTL_IMPORT_USERS_MAX 1000000	/* lines a file may hold */

/* one user to import */
struct ctl_import_user {
	char *addr;
	char *hash;
	bool disabled;
	int line;
};

/* ctl_import_scheme - the "{SCHEME}" prefix of pw: its length in *n, and
 * whether herald keeps such hashes (1), hashes them (2) or refuses (0) */
static int
ctl_import_scheme(const char *pw, size_t *n)
{
	static const char *const keep[] = {"CRYPT", "SHA512-CRYPT",
	    "BLF-CRYPT", "YESCRYPT", NULL};
	static const char *const plain[] = {"PLAIN", "CLEAR", "CLEARTEXT",
	    NULL};
	const char *end;
	size_t len;

	*n = 0;
	if (*pw != '{')
		return 1;
	if ((end = strchr(pw, '}')) == NULL)
		return 0;
	len = (size_t)(end - pw - 1);
	*n = len + 2;
	for (int i = 0; keep[i] != NULL; i++)
		if (strlen(keep[i]) == len && strncasecmp(pw + 1, keep[i],
		    len) == 0)
			return 1;
	for (int i = 0; plain[i] != NULL; i++)
		if (strlen(plain[i]) == len && strncasecmp(pw + 1, plain[i],
		    len) == 0)
			return 2;
	return 0;
}

/* ctl_import_hash_ok - a hash herald verifies: yescrypt, SHA512-CRYPT or
 * bcrypt, complete: hashing anything with it as setting gives a string of
 * its length with the same setting (a bare "$6$salt" would not) */
static bool
ctl_import_hash_ok(const char *hash)
{
	static const char *const prefixes[] = {"$y$", "$6$", "$2a$", "$2b$",
	    "$2y$", NULL};
	struct crypt_data data;
	const char *out;
	ptrdiff_t setting;
	bool known = false;

	for (int i = 0; prefixes[i] != NULL; i++)
		known |= strncmp(hash, prefixes[i], strlen(prefixes[i])) == 0;
	if (!known)
		return false;
	memset(&data, 0, sizeof(data));
	out = crypt_rn("import-probe", hash, &data, (int)sizeof(data));
	if (out == NULL || out[0] == '*' || strlen(out) != strlen(hash))
		return false;
	setting = strrchr(hash, '$') - hash;
	return strncmp(out, hash, (size_t)setting) == 0;
}

/* ctl_import_nologin - extra fields (blank separated) say "nologin" */
static bool
ctl_import_nologin(const char *extra)
{
	const char *p = extra;

	while (*p) {
		size_t n;

		p += strspn(p, " \t");
		n = strcspn(p, " \t");
		if ((n == 7 && strncmp(p, "nologin", 7) == 0) ||
		    (n >= 8 && strncmp(p, "nologin=", 8) == 0) ||
		    (n == 14 && strncmp(p, "userdb_nologin", 14) == 0) ||
		    (n >= 15 && strncmp(p, "userdb_nologin=", 15) == 0))
			return true;
		p += n;
	}
	return false;
}

/*
 * ctl_import_parse_line - one passwd-file line: 1 with the user's address
 * (lowercased), its hash (password fields of scheme PLAIN come back
 * hashed) and whether it is disabled; 0 for a comment or blank line; -1
 * with why.
 */
int
ctl_import_parse_line(const char *line, const char *domain, struct buf *addr,
    struct buf *hash, bool *disabled, struct buf *why)
{
	struct buf user = BUF_INIT, pw = BUF_INIT;
	const char *colon, *pwend, *extra;
	size_t skip;
	int kind, rc = -1;

	buf_reset(addr);
	buf_reset(hash);
	*disabled = false;
	line += strspn(line, " \t");
	if (*line == '\0' || *line == '#')
		return 0;
	if ((colon = strchr(line, ':')) == NULL) {
		buf_puts(why, "no ':' after the user name");
		return -1;
	}
	buf_append(&user, line, (size_t)(colon - line));
	if (strchr(buf_cstr(&user), '@') == NULL) {
		if (domain == NULL) {
			buf_printf(why, "user \"%s\" has no domain (use "
			    "--domain)", buf_cstr(&user));
			goto out;
		}
		buf_printf(&user, "@%s", domain);
	}
	if (ctl_input_address(buf_cstr(&user), addr, why) < 0)
		goto out;
	pwend = strchr(colon + 1, ':');
	buf_append(&pw, colon + 1, pwend != NULL ? (size_t)(pwend - colon - 1) :
	    strlen(colon + 1));
	if (pw.len == 0) {
		buf_puts(why, "empty password field");
		goto out;
	}
	if ((kind = ctl_import_scheme(buf_cstr(&pw), &skip)) == 0) {
		buf_printf(why, "password scheme %.*s is not supported (use "
		    "SHA512-CRYPT, BLF-CRYPT, yescrypt or PLAIN)",
		    (int)(strchr(pw.data, '}') ? strchr(pw.data, '}') -
		    pw.data + 1 : 1), pw.data);
		goto out;
	}
	if (kind == 2) {
		if (pw.data[skip] == '\0' ||
		    dir_passwd_hash(pw.data + skip, hash, why) < 0) {
			if (why->len == 0)
				buf_puts(why, "empty password");
			goto out;
		}
	} else if (!ctl_import_hash_ok(pw.data + skip)) {
		buf_puts(why, "not a SHA512-CRYPT, bcrypt or yescrypt hash");
		goto out;
	} else {
		buf_puts(hash, pw.data + skip);
	}
	/* extra fields: everything after the seventh ':' */
	extra = colon;
	for (int i = 0; i < 6 && extra != NULL; i++)
		extra = strchr(extra + 1, ':');
	*disabled = extra != NULL && ctl_import_nologin(extra + 1);
	rc = 1;
out:
	if (pw.cap > 0)
		explicit_bzero(pw.data, pw.cap);
	buf_free(&pw);
	buf_free(&user);
	return rc;
}

/* ctl_import_read - parse every line of fp into users; bad lines are
 * reported; -1 if any was bad or the file could not be read */
static int
ctl_import_read(FILE *fp, const char *name, const char *domain,
    struct ctl_import_user **users_r, size_t *n_r)
{
	struct buf line = BUF_INIT, addr = BUF_INIT, hash = BUF_INIT;
	struct buf why = BUF_INIT;
	struct ctl_import_user *users = NULL;
	size_t n = 0;
	int c, lineno = 0, bad = 0;
	bool disabled, eof = false;

	while (!eof) {
		buf_reset(&line);
		lineno++;
		while ((c = getc(fp)) != EOF && c != '\n')
			if (line.len <= CTL_IMPORT_LINE_MAX)
				buf_putc(&line, c);
		eof = c == EOF;
		if (eof && line.len == 0)
			break;
		if (line.len > 0 && line.data[line.len - 1] == '\r')
			buf_truncate(&line, line.len - 1);
		buf_reset(&why);
		if (line.len > CTL_IMPORT_LINE_MAX) {
			ctl_error("%s:%d: line longer than %d bytes", name,
			    lineno, CTL_IMPORT_LINE_MAX);
			bad++;
			continue;
		}
		switch (ctl_import_parse_line(buf_cstr(&line), domain, &addr,
		    &hash, &disabled, &why)) {
		case 0:
			continue;
		case -1:
			ctl_error("%s:%d: %s", name, lineno, buf_cstr(&why));
			bad++;
			continue;
		}
		for (size_t i = 0; i < n; i++) {
			if (strcmp(users[i].addr, buf_cstr(&addr)) == 0) {
				ctl_error("%s:%d: %s also on line %d", name,
				    lineno, buf_cstr(&addr), users[i].line);
				bad++;
				goto next;
			}
		}
		if (n == CTL_IMPORT_USERS_MAX) {
			ctl_error("%s: more than %d users", name,
			    CTL_IMPORT_USERS_MAX);
			bad++;
			break;
		}
		users = xreallocarray(users, n + 1, sizeof(*users));
		users[n].addr = xstrdup(buf_cstr(&addr));
		users[n].hash = xstrdup(buf_cstr(&hash));
		users[n].disabled = disabled;
		users[n].line = lineno;
		n++;
next:		;
	}
	if (ferror(fp)) {
		ctl_error("%s: read error", name);
		bad++;
	}
	if (line.cap > 0)
		explicit_bzero(line.data, line.cap);
	buf_free(&line);
	buf_free(&addr);
	buf_free(&hash);
	buf_free(&why);
	*users_r = users;
	*n_r = n;
	return bad > 0 ? -1 : 0;
}

/* ctl_import_domains - every user's domain is hosted; -1 if not */
static int
ctl_import_domains(struct dir *d, const struct ctl_import_user *users,
    size_t n, const char *name)
{
	int bad = 0;

	for (size_t i = 0; i < n; i++) {
		struct buf why = BUF_INIT;
		int r = dir_domain_exists(d, addr_domain(users[i].addr), &why);

		if (r < 0)
			ctl_error("%s", buf_cstr(&why));
		else if (r == 0)
			ctl_error("%s:%d: domain %s is not hosted (heraldctl "
			    "domain add %s)", name, users[i].line,
			    addr_domain(users[i].addr),
			    addr_domain(users[i].addr));
		bad += r != 1;
		buf_free(&why);
	}
	return bad > 0 ? -1 : 0;
}

/* ctl_import_one - add or update one user; 1 added, 2 updated,
 * 0 skipped, -1 failed */
static int
ctl_import_one(struct dir *d, const struct ctl_import_user *u, bool update)
{
	struct buf why = BUF_INIT;
	struct dir_user cur;
	int r, rc = -1;

	if ((r = dir_user_get(d, u->addr, &cur, &why)) < 0)
		goto out;
	if (r == 1 && !update) {
		rc = 0;
		goto out;
	}
	if (r == 0 && dir_user_add(d, u->addr, -1, &why) < 0)
		goto out;
	if (dir_passwd_set(var_data_directory, u->addr, u->hash, &why) < 0 ||
	    dir_user_set_enabled(d, u->addr, !u->disabled, &why) < 0)
		goto out;
	rc = r == 0 ? 1 : 2;
out:
	if (rc < 0)
		ctl_error("%s: %s", u->addr, buf_cstr(&why));
	buf_free(&why);
	return rc;
}

/* ctl_user_import - "user import FILE [--domain D] [--update]" */
int
ctl_user_import(struct ctl *ctl, const struct ctl_args *a)
{
	const char *name = a->pos[0], *dtext = ctl_args_value(a, "domain");
	struct buf domain = BUF_INIT, why = BUF_INIT;
	struct ctl_import_user *users = NULL;
	size_t n = 0, counts[3] = {0, 0, 0};
	struct dir *d = NULL;
	FILE *fp;
	int r, rc = CTL_EXIT_FAIL;

	if (dtext != NULL && ctl_input_domain(dtext, &domain, &why) < 0) {
		ctl_error("%s", buf_cstr(&why));
		goto out;
	}
	if (strcmp(name, "-") == 0) {
		fp = stdin;
	} else if ((fp = fopen(name, "re")) == NULL) {
		ctl_error("%s: %s", name, strerror(errno));
		goto out;
	}
	r = ctl_import_read(fp, name, dtext != NULL ? buf_cstr(&domain) :
	    NULL, &users, &n);
	if (fp != stdin)
		(void)fclose(fp);
	if (r < 0) {
		ctl_error("%s: nothing imported", name);
		goto out;
	}
	if ((d = ctl_dir_open()) == NULL ||
	    ctl_import_domains(d, users, n, name) < 0)
		goto out;
	rc = CTL_EXIT_OK;
	for (size_t i = 0; i < n; i++) {
		int one = ctl_import_one(d, &users[i], ctl_args_has(a,
		    "update"));

		if (one < 0)
			rc = CTL_EXIT_FAIL;
		else
			counts[one]++;
	}
	printf("%zu users imported, %zu updated, %zu skipped (already "
	    "there)\n", counts[1], counts[2], counts[0]);
out:
	for (size_t i = 0; i < n; i++) {
		x_free(&users[i].addr);
		explicit_bzero(users[i].hash, strlen(users[i].hash));
		x_free(&users[i].hash);
	}
	x_free(&users);
	dir_close(&d);
	buf_free(&domain);
	buf_free(&why);
	return rc;
}
