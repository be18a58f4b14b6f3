/*
 * saslpass - read and check the smtp_sasl_password_file (saslpass.h).
 * The file is read whole (bounded) on every lookup, so an edit takes
 * effect at the next delivery (remote holds it open from before its
 * privilege drop, so it may be root's alone; a file replaced since is
 * opened by path again); lines that are not "nexthop user:password"
 * are skipped with a warning that names the line number, never its text.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "mail/nexthop.h"
#include "mail/saslpass.h"

typedef void saslpass_fn(const char *nexthop, char *user, char *pass,
    void *ctx);

/* saslpass_mode_ok - ownership and mode that keep others out */
int
saslpass_mode_ok(const struct stat *st, uid_t uid, gid_t gid,
    struct buf *why)
{
	if (!S_ISREG(st->st_mode)) {
		buf_puts(why, "not a regular file");
		return -1;
	}
	if ((st->st_uid != uid && st->st_uid != 0) ||
	    (st->st_mode & 0027) != 0 || ((st->st_mode & 0070) != 0 &&
	    (st->st_uid != 0 || st->st_gid != gid))) {
		buf_printf(why, "owner %ld, group %ld, mode %04o: others could "
		    "read the passwords (it must be mode 0600, or 0640 "
		    "root:herald_user); not used", (long)st->st_uid,
		    (long)st->st_gid, (unsigned)(st->st_mode & 07777));
		return -1;
	}
	return 0;
}

/* saslpass_open - see saslpass.h */
int
saslpass_open(const char *path, struct buf *why)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		buf_printf(why, "smtp_sasl_password_file %s: %m", path);
	return fd;
}

/* saslpass_read - the file's text into text, checked for uid:gid: from
 * held (a descriptor opened earlier, read from its start) while its file
 * is still linked, else opened by path now */
static int
saslpass_read(const char *path, int held, uid_t uid, gid_t gid,
    struct buf *text, struct buf *why)
{
	struct buf err = BUF_INIT;
	struct stat st;
	char chunk[4096];
	ssize_t n;
	off_t off = 0;
	int fd = -1;

	if (held >= 0 && fstat(held, &st) == 0 && st.st_nlink > 0)
		fd = held;
	else if ((fd = saslpass_open(path, why)) < 0)
		return -1;
	if (fstat(fd, &st) < 0) {
		buf_printf(why, "smtp_sasl_password_file %s: %m", path);
		goto fail;
	}
	if (saslpass_mode_ok(&st, uid, gid, &err) < 0 ||
	    st.st_size > SASLPASS_FILE_MAX) {
		buf_printf(why, "smtp_sasl_password_file %s: %s", path,
		    err.len ? buf_cstr(&err) : "larger than 64 KiB");
		goto fail;
	}
	while ((n = pread(fd, chunk, sizeof(chunk), off)) > 0 &&
	    text->len + (size_t)n <= SASLPASS_FILE_MAX) {
		buf_append(text, chunk, (size_t)n);
		off += n;
	}
	OPENSSL_cleanse(chunk, sizeof(chunk));
	if (n != 0) {
		buf_printf(why, "smtp_sasl_password_file %s: %s", path,
		    n < 0 ? strerror(errno) : "grew too large");
		goto fail;
	}
	if (fd != held)
		(void)close(fd);
	buf_free(&err);
	return 0;
fail:
	if (fd != held)
		(void)close(fd);
	buf_free(&err);
	return -1;
}

/* saslpass_walk - fn per good line (text is cut up in place); the
 * number of bad lines, each warned about by number */
static int
saslpass_walk(const char *path, char *text, saslpass_fn *fn, void *ctx)
{
	char *line, *save = NULL;
	int lineno = 0, bad = 0;

	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		char name[NEXTHOP_TEXT_MAX], *key, *cred, *colon, *end;
		struct buf err = BUF_INIT;
		struct nexthop nh;

		lineno++;
		key = line + strspn(line, " \t");
		if (*key == '#' || *key == '\0' || *key == '\r')
			continue;
		end = key + strcspn(key, " \t");
		cred = end + strspn(end, " \t");
		*end = '\0';
		cred[strcspn(cred, "\r")] = '\0';
		if (nexthop_parse(key, &nh, &err) < 0 ||
		    (colon = strchr(cred, ':')) == NULL || colon == cred) {
			/* the line may hold a password: not quoted */
			msg_warn("smtp_sasl_password_file %s: line %d is not "
			    "\"nexthop user:password\"; skipped", path,
			    lineno);
			buf_free(&err);
			bad++;
			continue;
		}
		*colon = '\0';
		nexthop_text(&nh, name, sizeof(name));
		fn(name, cred, colon + 1, ctx);
	}
	return bad;
}

struct saslpass_find {
	const char *nexthop;
	char *user, *pass;
};

/* saslpass_find_one - keep the first login for the wanted next hop */
static void
saslpass_find_one(const char *nexthop, char *user, char *pass, void *ctx)
{
	struct saslpass_find *f = ctx;

	if (f->user == NULL && strcmp(nexthop, f->nexthop) == 0) {
		f->user = xstrdup(user);
		f->pass = xstrdup(pass);
	}
}

/* saslpass_lookup - the login for nexthop */
int
saslpass_lookup(const char *path, int held, const char *nexthop,
    char **user_r, char **pass_r, struct buf *why)
{
	struct saslpass_find f = {.nexthop = nexthop};
	struct buf text = BUF_INIT;
	int r = -1;

	*user_r = *pass_r = NULL;
	if (saslpass_read(path, held, geteuid(), getegid(), &text,
	    why) == 0) {
		(void)saslpass_walk(path, text.data, saslpass_find_one, &f);
		*user_r = f.user;
		*pass_r = f.pass;
		r = f.user != NULL;
	}
	OPENSSL_cleanse(text.data, text.len);
	buf_free(&text);
	return r;
}

/* saslpass_count_one - count a good line */
static void
saslpass_count_one(const char *nexthop, char *user, char *pass, void *ctx)
{
	(void)nexthop;
	(void)user;
	(void)pass;
	(*(int *)ctx)++;
}

/* saslpass_count - good and bad lines, checked for uid:gid */
int
saslpass_count(const char *path, uid_t uid, gid_t gid, int *bad,
    struct buf *why)
{
	struct buf text = BUF_INIT;
	int good = 0, r = -1;

	if (saslpass_read(path, -1, uid, gid, &text, why) == 0) {
		*bad = saslpass_walk(path, text.data, saslpass_count_one,
		    &good);
		r = good;
	}
	OPENSSL_cleanse(text.data, text.len);
	buf_free(&text);
	return r;
}

/* saslpass_free - wipe and free a password */
void
saslpass_free(char **pass)
{
	if (*pass != NULL)
		OPENSSL_cleanse(*pass, strlen(*pass));
	x_free(pass);
}
