/*
 * remote_hop - where one request's mail goes: the recipient domain's
 * transport (heraldctl transport add, in the directory), else relayhost,
 * else the domain's own MX hosts; and the credentials for that next hop
 * from smtp_sasl_password_file.
 *
 * The password file ("nexthop user:password" lines, '#' comments) is
 * read anew for each request, so an edit takes effect at once. It holds
 * secrets, so it must be a regular file of herald_user or root that
 * nobody else can read: not world-accessible, and group-readable only
 * when root owns it and the group is remote's own (0640 root:herald).
 * Anything else defers the mail with the reason, rather than send it on
 * without the login the admin meant. Passwords are wiped from memory
 * when the request is done and appear in no log line.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/dir.h"
#include "mail/params.h"
#include "remote.h"

#define REMOTE_HOP_FILE_MAX 65536	/* bytes of the password file */

/* remote_hop_file - the password file's text into text; -1 with why */
static int
remote_hop_file(const char *path, struct buf *text, struct buf *why)
{
	struct stat st;
	char chunk[4096];
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		buf_printf(why, "smtp_sasl_password_file %s: %m", path);
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		buf_printf(why, "smtp_sasl_password_file %s: %m", path);
		goto fail;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > REMOTE_HOP_FILE_MAX) {
		buf_printf(why, "smtp_sasl_password_file %s: not a regular "
		    "file of at most %d bytes", path, REMOTE_HOP_FILE_MAX);
		goto fail;
	}
	if ((st.st_uid != geteuid() && st.st_uid != 0) ||
	    (st.st_mode & 0027) != 0 || ((st.st_mode & 0070) != 0 &&
	    (st.st_uid != 0 || st.st_gid != getegid()))) {
		buf_printf(why, "smtp_sasl_password_file %s: owner %ld, group "
		    "%ld, mode %04o: others could read the passwords (it must "
		    "be mode 0600, or 0640 root:herald_user); not used",
		    path, (long)st.st_uid, (long)st.st_gid,
		    (unsigned)(st.st_mode & 07777));
		goto fail;
	}
	while ((n = read(fd, chunk, sizeof(chunk))) > 0 &&
	    text->len + (size_t)n <= REMOTE_HOP_FILE_MAX)
		buf_append(text, chunk, (size_t)n);
	OPENSSL_cleanse(chunk, sizeof(chunk));
	if (n != 0) {
		buf_printf(why, "smtp_sasl_password_file %s: %s", path,
		    n < 0 ? strerror(errno) : "grew too large");
		goto fail;
	}
	(void)close(fd);
	return 0;
fail:
	(void)close(fd);
	return -1;
}

/* remote_hop_creds - user and password for hop->name from the password
 * file, if any; -1 with why (the file is unusable) */
static int
remote_hop_creds(struct remote_hop *hop, struct buf *why)
{
	struct buf text = BUF_INIT;
	char *line, *save = NULL;
	int lineno = 0;

	if (*var_smtp_sasl_password_file == '\0')
		return 0;
	if (remote_hop_file(var_smtp_sasl_password_file, &text, why) < 0) {
		OPENSSL_cleanse(text.data, text.len);
		buf_free(&text);
		return -1;
	}
	for (line = strtok_r(text.data, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		char name[NEXTHOP_TEXT_MAX], *key, *cred, *colon, *end;
		struct nexthop nh;
		struct buf bad = BUF_INIT;

		lineno++;
		key = line + strspn(line, " \t");
		if (*key == '#' || *key == '\0' || *key == '\r')
			continue;
		end = key + strcspn(key, " \t");
		cred = end + strspn(end, " \t");
		*end = '\0';
		cred[strcspn(cred, "\r")] = '\0';
		if (nexthop_parse(key, &nh, &bad) < 0 ||
		    (colon = strchr(cred, ':')) == NULL || colon == cred) {
			/* the line may hold a password: not quoted */
			msg_warn("smtp_sasl_password_file %s: line %d is not "
			    "\"nexthop user:password\"; skipped",
			    var_smtp_sasl_password_file, lineno);
			buf_free(&bad);
			continue;
		}
		nexthop_text(&nh, name, sizeof(name));
		if (strcmp(name, hop->name) == 0) {
			*colon = '\0';
			hop->user = xstrdup(cred);
			hop->pass = xstrdup(colon + 1);
			break;
		}
	}
	OPENSSL_cleanse(text.data, text.len);
	buf_free(&text);
	return 0;
}

/* remote_hop_find - the next hop of domain; -1 with why (defer) */
int
remote_hop_find(struct dir *dir, const char *domain, struct remote_hop *hop,
    struct buf *why)
{
	struct buf value = BUF_INIT, err = BUF_INIT;
	int r = 0;

	memset(hop, 0, sizeof(*hop));
	if (dir != NULL)
		r = dir_transport_get(dir, domain, &value, &err);
	if (r < 0) {
		buf_printf(why, "cannot look up the transport of %s: %s",
		    domain, buf_cstr(&err));
		goto fail;
	}
	if (r == 1) {
		if (nexthop_parse(buf_cstr(&value), &hop->nh, &err) < 0) {
			buf_printf(why, "transport of %s: %s", domain,
			    buf_cstr(&err));
			goto fail;
		}
		hop->via = "transport";
	} else if (*var_relayhost != '\0') {
		if (nexthop_parse(var_relayhost, &hop->nh, &err) < 0) {
			buf_printf(why, "relayhost: %s", buf_cstr(&err));
			goto fail;
		}
		hop->via = "relayhost";
	} else {
		/* by MX: the domain (or address literal) as it is */
		str_lcpy(hop->nh.host, domain, sizeof(hop->nh.host));
		hop->nh.mx = true;
		hop->via = NULL;
	}
	nexthop_text(&hop->nh, hop->name, sizeof(hop->name));
	if (remote_hop_creds(hop, why) < 0)
		goto fail;
	buf_free(&value);
	buf_free(&err);
	return 0;
fail:
	buf_free(&value);
	buf_free(&err);
	remote_hop_free(hop);
	return -1;
}

/* remote_hop_free - wipe and free the credentials */
void
remote_hop_free(struct remote_hop *hop)
{
	if (hop->pass != NULL)
		OPENSSL_cleanse(hop->pass, strlen(hop->pass));
	x_free(&hop->user);
	x_free(&hop->pass);
}
