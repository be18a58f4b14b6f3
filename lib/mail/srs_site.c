/*
 * srs_site - the SRS secret, domain and sender policy of this
 * installation (srs_site.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/file.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/addr.h"
#include "mail/dir.h"
#include "mail/params.h"
#include "mail/resolve.h"
#include "mail/srs.h"
#include "mail/srs_site.h"

#define SRS_SITE_FILE_MAX 4096	/* bytes read of the secret file */
#define SRS_SITE_RANDOM 32	/* random bytes of a new secret */

static struct buf srs_site_secret = BUF_INIT;	/* loaded, or empty */

/* srs_site_create - write a new secret to path (via path.new and a link,
 * so a crash leaves no half-written secret); -1 with why */
static int
srs_site_create(const char *path, uid_t uid, gid_t gid, struct buf *why)
{
	unsigned char rnd[SRS_SITE_RANDOM];
	char text[SRS_SITE_RANDOM * 2 + 2];
	char *tmp = xasprintf("%s.new", path);
	int fd = -1, ret = -1;
	size_t len;

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		buf_printf(why, "getrandom: %s", strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(text + 2 * i, 3, "%02x", rnd[i]);
	len = strlen(text);
	text[len++] = '\n';
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd < 0) {
		buf_printf(why, "create %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (write(fd, text, len) != (ssize_t)len || fsync(fd) < 0) {
		buf_printf(why, "write %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (uid != (uid_t)-1 && fchown(fd, uid, gid) < 0) {
		buf_printf(why, "chown %s: %s", tmp, strerror(errno));
		goto out;
	}
	/* link, not rename: a secret made meanwhile is never replaced */
	if (link(tmp, path) < 0 && errno != EEXIST) {
		buf_printf(why, "link %s: %s", path, strerror(errno));
		goto out;
	}
	msg_info("made a new SRS secret in %s", path);
	ret = 0;
out:
	if (fd >= 0) {
		(void)close(fd);
		(void)unlink(tmp);
	}
	explicit_bzero(rnd, sizeof(rnd));
	explicit_bzero(text, sizeof(text));
	x_free(&tmp);
	return ret;
}

/* srs_site_setup - make or fix the secret file */
int
srs_site_setup(const char *path, uid_t uid, gid_t gid, struct buf *why)
{
	struct file_owner want = {uid, gid, 07777, 0600};
	char *tmp = xasprintf("%s.new", path);
	int fd, r;

	/* left by a crash between link and unlink: a second link that
	 * file_fix_at would refuse */
	if (unlink(tmp) < 0 && errno != ENOENT)
		msg_warn("unlink %s: %m", tmp);
	x_free(&tmp);
	if (access(path, F_OK) < 0 && errno == ENOENT &&
	    srs_site_create(path, uid, gid, why) < 0)
		return -1;
	r = file_fix_at(AT_FDCWD, path, S_IFREG, &want, &fd, why);
	if (r == 0) {
		buf_printf(why, "%s: vanished", path);
		return -1;
	}
	if (r < 0)
		return -1;
	(void)close(fd);
	return 0;
}

/* srs_site_key - the secret, read at the first use; -1 with why */
static int
srs_site_key(struct srs_key *key, struct buf *why)
{
	char text[SRS_SITE_FILE_MAX];
	ssize_t n;
	size_t len;
	int fd;

	if (srs_site_secret.len == 0) {
		fd = open(var_srs_secret_file, O_RDONLY | O_NOFOLLOW |
		    O_NONBLOCK | O_CLOEXEC);
		if (fd < 0) {
			buf_printf(why, "SRS secret %s: %s",
			    var_srs_secret_file, strerror(errno));
			return -1;
		}
		n = read(fd, text, sizeof(text) - 1);
		(void)close(fd);
		if (n < 0) {
			buf_printf(why, "SRS secret %s: %s",
			    var_srs_secret_file, strerror(errno));
			return -1;
		}
		text[n] = '\0';
		len = strcspn(text, "\r\n");
		if (len < SRS_SECRET_MIN) {
			explicit_bzero(text, sizeof(text));
			buf_printf(why, "SRS secret %s: shorter than %d bytes",
			    var_srs_secret_file, SRS_SECRET_MIN);
			return -1;
		}
		buf_append(&srs_site_secret, text, len);
		explicit_bzero(text, sizeof(text));
	}
	key->secret = (const unsigned char *)srs_site_secret.data;
	key->len = srs_site_secret.len;
	return 0;
}

/* srs_site_domain - srs_domain, or the domain a bare postmaster has */
void
srs_site_domain(struct dir *d, struct buf *out)
{
	if (*var_srs_domain != '\0')
		buf_set(out, var_srs_domain);
	else
		resolve_postmaster_domain(d, out);
	str_lower(out->data);
}

/* srs_site_forward - the sender for a forwarded copy */
int
srs_site_forward(struct dir *d, time_t now, const char *sender,
    struct buf *out, struct buf *why)
{
	struct buf dom = BUF_INIT;
	struct srs_key key;
	int r;

	if (*sender == '\0' || strchr(sender, '@') == NULL)
		return 0;
	r = dir_domain_exists(d, addr_domain(sender), why);
	if (r != 0)
		return r > 0 ? 0 : -1;
	if (srs_site_key(&key, why) < 0)
		return -1;
	srs_site_domain(d, &dom);
	r = srs_forward(&key, now, sender, buf_cstr(&dom), out);
	buf_free(&dom);
	return r;
}

/* srs_site_reverse - an SRS address at our SRS domain, reversed */
int
srs_site_reverse(struct dir *d, time_t now, const char *addr,
    struct buf *out, int *temp, struct buf *why)
{
	struct buf dom = BUF_INIT;
	struct srs_key key;
	const char *at = strrchr(addr, '@');
	int ours;

	*temp = 0;
	if (at == NULL || !srs_is_srs(addr))
		return 0;
	srs_site_domain(d, &dom);
	ours = str_casecmp(at + 1, buf_cstr(&dom)) == 0;
	buf_free(&dom);
	if (!ours)
		return 0;
	if (srs_site_key(&key, why) < 0) {
		*temp = 1;
		return -1;
	}
	return srs_reverse(&key, now, addr, out, why);
}
