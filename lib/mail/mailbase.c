/*
 * mailbase - the mail store's base folder: found in the mail_location
 * template, created for vmail_user, and checked for what that user's
 * processes may do there (permission bits, as the kernel applies them).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/file.h"
#include "base/mem.h"
#include "mail/addr.h"
#include "mail/mailbase.h"

/* mailbase_path - the fixed folder of a mail_location template */
void
mailbase_path(struct buf *out, const char *tmpl)
{
	const char *pct = strchr(tmpl, '%');
	size_t len = pct != NULL ? (size_t)(pct - tmpl) : strlen(tmpl);

	if (pct != NULL) {
		/* back to the '/' before the first templated name */
		while (len > 0 && tmpl[len - 1] != '/')
			len--;
	}
	while (len > 1 && tmpl[len - 1] == '/')
		len--;
	buf_reset(out);
	buf_append(out, tmpl, len);
}

/* mailbase_name_safe - may p[0..n) be one component of a path? */
static bool
mailbase_name_safe(const char *p, size_t n)
{
	if (n == 0 || p[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '/' || c < ' ' || c == 0x7f)
			return false;
	}
	return true;
}

/* mailbase_mailbox_path - expand the mail_location template for addr */
int
mailbase_mailbox_path(const char *tmpl, const char *addr, struct buf *out,
    struct buf *why)
{
	struct buf key = BUF_INIT;
	const char *at, *local, *domain;
	size_t llen;
	int ret = -1;

	addr_lookup_key(&key, addr);
	at = strrchr(key.data, '@');
	if (at == NULL) {
		buf_printf(why, "mailbox name \"%s\" has no domain", addr);
		goto out;
	}
	local = key.data;
	llen = (size_t)(at - local);
	domain = at + 1;
	if (!mailbase_name_safe(local, llen) ||
	    !mailbase_name_safe(domain, strlen(domain)) ||
	    strstr(domain, "..") != NULL) {
		buf_puts(why, "mailbox name is not safe as a folder name");
		goto out;
	}
	buf_reset(out);
	for (const char *p = tmpl; *p; p++) {
		if (*p != '%') {
			buf_putc(out, *p);
			continue;
		}
		switch (p[1]) {
		case 'd':
			buf_puts(out, domain);
			break;
		case 'n':
			buf_append(out, local, llen);
			break;
		case 'u':
			buf_puts(out, key.data);
			break;
		case '%':
			buf_putc(out, '%');
			break;
		default:
			/* unknown: keep it as written */
			buf_putc(out, '%');
			continue;
		}
		p++;
	}
	ret = 0;
out:
	buf_free(&key);
	return ret;
}

/* mailbase_setup - create base if missing, for uid/gid */
int
mailbase_setup(const char *base, uid_t uid, gid_t gid, struct buf *why)
{
	struct stat st;
	char *copy, *slash;

	if (*base == '\0') {
		buf_puts(why, "mail_location has no fixed folder");
		return -1;
	}
	if (stat(base, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			return 0;
		buf_printf(why, "%s: not a directory", base);
		return -1;
	}
	if (errno != ENOENT) {
		buf_printf(why, "%s: %s", base, strerror(errno));
		return -1;
	}
	/* the parents: like mkdir -p, readable by everyone */
	copy = xstrdup(base);
	if ((slash = strrchr(copy, '/')) != NULL && slash != copy) {
		*slash = '\0';
		if (file_mkdirs(copy, 0755, why) < 0) {
			x_free(&copy);
			return -1;
		}
	}
	x_free(&copy);
	if (mkdir(base, 0700) < 0) {
		if (errno == EEXIST)
			return 0;	/* made by someone else meanwhile */
		buf_printf(why, "mkdir %s: %s", base, strerror(errno));
		return -1;
	}
	/* not through a link somebody put there since the mkdir */
	if (uid != (uid_t)-1 && fchownat(AT_FDCWD, base, uid, gid,
	    AT_SYMLINK_NOFOLLOW) < 0) {
		buf_printf(why, "chown %s: %s", base, strerror(errno));
		return -1;
	}
	return 0;
}

/* mailbase_allows - the permission bits the kernel applies to uid/gids */
static bool
mailbase_allows(const struct stat *st, uid_t uid, const gid_t *gids,
    int ngids, mode_t want)
{
	mode_t bits;

	if (uid == 0)
		return true;
	if (st->st_uid == uid) {
		bits = (st->st_mode >> 6) & 7;
	} else {
		bits = st->st_mode & 7;
		for (int i = 0; i < ngids; i++)
			if (gids[i] == st->st_gid)
				bits = (st->st_mode >> 3) & 7;
	}
	return (bits & want) == want;
}

/* mailbase_usable - can uid with gids reach base and create in it? */
int
mailbase_usable(const char *base, uid_t uid, const gid_t *gids, int ngids,
    struct buf *why)
{
	char *copy = xstrdup(base);
	struct stat st;
	int ret = 1;

	/* every folder on the way needs search (x), base also write (w) */
	for (char *p = copy;; p++) {
		bool last = *p == '\0';
		char save = *p;

		if (!last && (*p != '/' || p == copy))
			continue;
		*p = '\0';
		if (stat(copy, &st) < 0) {
			if (errno != ENOENT) {
				buf_printf(why, "%s: %s", copy,
				    strerror(errno));
				ret = -1;
			}
			break;		/* missing: created usable */
		}
		if (!S_ISDIR(st.st_mode)) {
			buf_printf(why, "%s: not a directory", copy);
			ret = 0;
			break;
		}
		if (!mailbase_allows(&st, uid, gids, ngids,
		    last ? 3 : 1)) {
			buf_printf(why, "%s: mode %04o, owner %ld:%ld: uid %ld "
			    "cannot %s it", copy,
			    (unsigned)(st.st_mode & 07777), (long)st.st_uid,
			    (long)st.st_gid, (long)uid, last ?
			    "create folders in" : "pass through");
			ret = 0;
			break;
		}
		if (last)
			break;
		*p = save;
	}
	x_free(&copy);
	return ret;
}
