/*
 * ctl_check - "heraldctl check": is this installation able to run?
 *
 * One line per check, "ok WHAT", "WARN WHAT: why" or "FAIL WHAT: why",
 * and exit 1 if any failed (warnings do not). The checks: the
 * configuration parses; myhostname is a fully qualified name (else a
 * warning); the service users exist (as root); every spool folder exists
 * with mode 0700 and, as root, is owned by herald_user; the directory
 * database opens. A spool or directory that does not exist yet is fine
 * when master can create it at start (its parent is a folder we can
 * write): right after installation they are not there. The TLS
 * certificate and key load and belong together; the service programs are
 * there and executable; the fixed part of mail_location exists or can be
 * created (as root: vmail_user can reach it and create mailboxes in it);
 * the DKIM keys, if any, are closed to others and no service user but
 * the signer's is in dkim_group; the smtp_sasl_password_file, if set, is
 * one remote (herald_user) may use: closed to everybody else, and every
 * line "nexthop user:password". Nothing is changed.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/mem.h"
#include "base/tls.h"
#include "mail/dir.h"
#include "mail/mailbase.h"
#include "mail/params.h"
#include "mail/saslpass.h"
#include "mail/spool.h"
#include "ctl.h"

/* the programs master runs, and master itself */
static const char *const ctl_check_programs[] = {
	"master", "authd", "smtpd", "qmgr", "local", "remote",
	"pop3d", "imapd", NULL,
};

/* ctl_check_line - print one result; counts failures in *failed */
static void __attribute__((format(printf, 3, 4)))
ctl_check_line(int *failed, bool ok, const char *fmt, ...)
{
	va_list ap;

	fputs(ok ? "ok " : "FAIL ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	if (!ok)
		(*failed)++;
}

/* ctl_check_warn - print one warning; it does not fail the check */
static void __attribute__((format(printf, 1, 2)))
ctl_check_warn(const char *fmt, ...)
{
	va_list ap;

	fputs("WARN ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
}

/*
 * ctl_check_creatable - can master create path at start? Its nearest
 * existing parent (the immediate parent only, unless any_parent) is a
 * folder we can write.
 */
static bool
ctl_check_creatable(const char *path, bool any_parent)
{
	char *up = xstrdup(path), *slash;
	struct stat st;
	bool ok = false;

	for (;;) {
		if (up[0] != '/' || (slash = strrchr(up, '/')) == NULL)
			break;
		if (slash == up)
			up[1] = '\0';
		else
			*slash = '\0';
		if (stat(up, &st) == 0) {
			ok = S_ISDIR(st.st_mode) &&
			    access(up, W_OK | X_OK) == 0;
			break;
		}
		if (errno != ENOENT || !any_parent || strcmp(up, "/") == 0)
			break;
	}
	x_free(&up);
	return ok;
}

/* ctl_check_hostname - myhostname should be a fully qualified name */
static void
ctl_check_hostname(int *failed)
{
	if (strchr(var_myhostname, '.') == NULL)
		ctl_check_warn("myhostname: \"%s\" is not a fully qualified "
		    "name (other servers may refuse its HELO); set myhostname "
		    "in the configuration file", var_myhostname);
	else
		ctl_check_line(failed, true, "myhostname: %s", var_myhostname);
}

/* ctl_check_users - herald_user and vmail_user exist (root only) */
static void
ctl_check_users(int *failed, uid_t *herald_uid)
{
	struct passwd *pw;

	if ((pw = getpwnam(var_herald_user)) == NULL) {
		ctl_check_line(failed, false, "users: herald_user \"%s\" does "
		    "not exist", var_herald_user);
	} else {
		*herald_uid = pw->pw_uid;
		if (getpwnam(var_vmail_user) == NULL)
			ctl_check_line(failed, false, "users: vmail_user "
			    "\"%s\" does not exist", var_vmail_user);
		else
			ctl_check_line(failed, true, "users: %s, %s",
			    var_herald_user, var_vmail_user);
	}
}

/* ctl_check_spool - every folder there, 0700, owned right */
static void
ctl_check_spool(int *failed, bool root, uid_t uid)
{
	struct buf path = BUF_INIT, bad = BUF_INIT;
	struct stat top;
	int missing = 0;

	if (stat(var_spool_directory, &top) < 0) {
		if (errno == ENOENT &&
		    ctl_check_creatable(var_spool_directory, false))
			ctl_check_line(failed, true, "spool: %s (will be "
			    "created at start)", var_spool_directory);
		else
			ctl_check_line(failed, false, "spool: %s: %s",
			    var_spool_directory, strerror(errno));
		return;
	}
	if (!S_ISDIR(top.st_mode)) {
		ctl_check_line(failed, false, "spool: %s: not a directory",
		    var_spool_directory);
		return;
	}
	for (const char *const *f = spool_folders; *f != NULL; f++) {
		struct stat st;

		buf_set(&path, var_spool_directory);
		buf_printf(&path, "/%s", *f);
		if (stat(buf_cstr(&path), &st) < 0) {
			if (errno == ENOENT)
				missing++;	/* master creates it at start */
			else
				buf_printf(&bad, "%s%s: %s",
				    bad.len ? "; " : "", buf_cstr(&path),
				    strerror(errno));
		} else if (!S_ISDIR(st.st_mode)) {
			buf_printf(&bad, "%s%s: not a directory",
			    bad.len ? "; " : "", buf_cstr(&path));
		} else if ((st.st_mode & 07777) != 0700) {
			buf_printf(&bad, "%s%s: mode %04o, want 0700",
			    bad.len ? "; " : "", buf_cstr(&path),
			    (unsigned)(st.st_mode & 07777));
		} else if (root && uid != (uid_t)-1 && st.st_uid != uid) {
			buf_printf(&bad, "%s%s: owned by uid %ld, want %s",
			    bad.len ? "; " : "", buf_cstr(&path),
			    (long)st.st_uid, var_herald_user);
		}
	}
	if (bad.len > 0)
		ctl_check_line(failed, false, "spool: %s", buf_cstr(&bad));
	else if (missing > 0)
		ctl_check_line(failed, true, "spool: %s (%d missing folders "
		    "will be created at start)", var_spool_directory,
		    missing);
	else
		ctl_check_line(failed, true, "spool: %s", var_spool_directory);
	buf_free(&path);
	buf_free(&bad);
}

/* ctl_check_directory - the directory database opens */
static void
ctl_check_directory(int *failed)
{
	struct buf why = BUF_INIT;
	struct dir *d = NULL;
	struct stat st;
	char *path;

	path = xasprintf("%s/directory", var_data_directory);
	if (stat(path, &st) < 0 && errno == ENOENT &&
	    ctl_check_creatable(path, true)) {
		ctl_check_line(failed, true, "directory: %s (will be created "
		    "at start)", path);
		x_free(&path);
		return;
	}
	x_free(&path);
	if (dir_open(var_data_directory, DIR_READ, &d, &why) < 0) {
		ctl_check_line(failed, false, "directory: %s",
		    buf_cstr(&why));
	} else {
		ctl_check_line(failed, true, "directory: %s/directory",
		    var_data_directory);
		dir_close(&d);
	}
	buf_free(&why);
}

/* ctl_check_tls - certificate and key load and match */
static void
ctl_check_tls(int *failed)
{
	struct buf why = BUF_INIT;
	SSL_CTX *ctx;

	if (*var_tls_cert_file == '\0') {
		ctl_check_line(failed, true, "tls: not configured (no "
		    "STARTTLS)");
		return;
	}
	if ((ctx = tls_server_ctx_new(var_tls_cert_file, var_tls_key_file,
	    &why)) == NULL) {
		ctl_check_line(failed, false, "tls: %s", buf_cstr(&why));
	} else {
		ctl_check_line(failed, true, "tls: %s", var_tls_cert_file);
		SSL_CTX_free(ctx);
	}
	buf_free(&why);
}

/* ctl_check_programs - every program exists and is executable */
static void
ctl_check_programs_run(int *failed)
{
	struct buf path = BUF_INIT, bad = BUF_INIT;

	for (int i = 0; ctl_check_programs[i] != NULL; i++) {
		struct stat st;

		buf_set(&path, var_daemon_directory);
		buf_printf(&path, "/%s", ctl_check_programs[i]);
		if (stat(buf_cstr(&path), &st) < 0)
			buf_printf(&bad, "%s%s: %s", bad.len ? "; " : "",
			    buf_cstr(&path), strerror(errno));
		else if (!S_ISREG(st.st_mode) ||
		    access(buf_cstr(&path), X_OK) < 0)
			buf_printf(&bad, "%s%s: not an executable file",
			    bad.len ? "; " : "", buf_cstr(&path));
	}
	if (bad.len > 0)
		ctl_check_line(failed, false, "programs: %s", buf_cstr(&bad));
	else
		ctl_check_line(failed, true, "programs: %s",
		    var_daemon_directory);
	buf_free(&path);
	buf_free(&bad);
}

/*
 * ctl_check_mail_root - as root: vmail_user, with the groups local runs
 * with, can reach prefix and create mailboxes in it (master creates a
 * missing prefix for it)
 */
static void
ctl_check_mail_root(int *failed, const char *prefix)
{
	struct buf why = BUF_INIT;
	struct passwd *pw;
	struct group *gr;
	struct stat st;
	gid_t gids[2];
	int rc;

	if ((pw = getpwnam(var_vmail_user)) == NULL) {
		ctl_check_line(failed, false, "mail_location: vmail_user "
		    "\"%s\" does not exist", var_vmail_user);
		return;
	}
	gids[0] = gids[1] = pw->pw_gid;
	if ((gr = getgrnam(var_directory_group)) != NULL)
		gids[1] = gr->gr_gid;
	rc = mailbase_usable(prefix, pw->pw_uid, gids, 2, &why);
	if (rc < 0)
		ctl_check_line(failed, false, "mail_location: %s",
		    buf_cstr(&why));
	else if (rc == 0)
		ctl_check_line(failed, false, "mail_location: %s: vmail_user "
		    "%s cannot create mailboxes there", buf_cstr(&why),
		    var_vmail_user);
	else if (stat(prefix, &st) < 0)
		ctl_check_line(failed, true, "mail_location: %s (\"heraldctl "
		    "start\" creates it for %s)", prefix, var_vmail_user);
	else
		ctl_check_line(failed, true, "mail_location: %s", prefix);
	buf_free(&why);
}

/*
 * ctl_check_mail_location - the part before the first '%' names a
 * folder that exists, or whose nearest existing parent is a folder we
 * can write (the delivery agent creates the rest). As root, the folder
 * must work for vmail_user.
 */
static void
ctl_check_mail_location(int *failed, bool root)
{
	struct buf base = BUF_INIT;
	char *prefix, *slash;
	struct stat st;

	mailbase_path(&base, var_mail_location);
	prefix = buf_steal(&base);
	if (*prefix == '\0') {
		ctl_check_line(failed, false, "mail_location: \"%s\" has no "
		    "fixed folder", var_mail_location);
		x_free(&prefix);
		return;
	}
	if (root) {
		ctl_check_mail_root(failed, prefix);
		x_free(&prefix);
		return;
	}
	if (stat(prefix, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			ctl_check_line(failed, true, "mail_location: %s",
			    prefix);
		else
			ctl_check_line(failed, false, "mail_location: %s: not "
			    "a directory", prefix);
		x_free(&prefix);
		return;
	}
	/* walk up to the nearest folder that exists */
	for (char *up = xstrdup(prefix);;) {
		if ((slash = strrchr(up, '/')) == NULL || slash == up)
			up[1] = '\0';
		else
			*slash = '\0';
		if (stat(up, &st) == 0) {
			if (S_ISDIR(st.st_mode) && access(up, W_OK | X_OK) == 0)
				ctl_check_line(failed, true, "mail_location: "
				    "%s (will be created)", prefix);
			else
				ctl_check_line(failed, false, "mail_location: "
				    "%s cannot be created in %s", prefix, up);
			x_free(&up);
			break;
		}
		if (strcmp(up, "/") == 0 || up[0] != '/') {
			ctl_check_line(failed, false, "mail_location: %s "
			    "cannot be created", prefix);
			x_free(&up);
			break;
		}
	}
	x_free(&prefix);
}

/* ctl_check - run every check */
/* ctl_check_dkim - the DKIM keys, when there are any (ctl_dkim.c) */
static void
ctl_check_dkim(int *failed)
{
	struct buf what = BUF_INIT, why = BUF_INIT;
	int r = ctl_dkim_check(&what, &why);

	if (r != 0)
		ctl_check_line(failed, r > 0, "dkim: %s", r > 0 ?
		    buf_cstr(&what) : buf_cstr(&why));
	buf_free(&what);
	buf_free(&why);
}

/* ctl_check_relay - relayhost, and a password file remote can use
 * (as herald_user, when root) and nobody else can read */
static void
ctl_check_relay(int *failed, bool root)
{
	struct buf why = BUF_INIT;
	uid_t uid = geteuid();
	gid_t gid = getegid();
	int n, bad = 0;

	if (*var_relayhost != '\0')
		ctl_check_line(failed, true, "relayhost: %s", var_relayhost);
	if (*var_smtp_sasl_password_file == '\0')
		return;
	if (root) {
		struct passwd *pw = getpwnam(var_herald_user);

		if (pw == NULL)
			return;		/* ctl_check_users said so */
		uid = pw->pw_uid;
		gid = pw->pw_gid;
	}
	n = saslpass_count(var_smtp_sasl_password_file, uid, gid, &bad,
	    &why);
	if (n < 0)
		ctl_check_line(failed, false, "%s", buf_cstr(&why));
	else
		ctl_check_line(failed, bad == 0, "smtp_sasl_password_file: "
		    "%s: %d login%s%s", var_smtp_sasl_password_file, n,
		    n == 1 ? "" : "s", bad ? ", and lines that are not "
		    "\"nexthop user:password\"" : "");
	buf_free(&why);
}

int
ctl_check(struct ctl *ctl, const struct ctl_args *a)
{
	struct buf why = BUF_INIT;
	bool root = geteuid() == 0;
	uid_t uid = (uid_t)-1;
	int failed = 0;

	if (ctl_config_load(ctl, &why) < 0) {
		ctl_check_line(&failed, false, "config: %s", buf_cstr(&why));
		buf_free(&why);
		return CTL_EXIT_FAIL;
	}
	ctl_check_line(&failed, true, "config: %s", ctl->config);
	ctl_check_hostname(&failed);
	if (root)
		ctl_check_users(&failed, &uid);
	ctl_check_spool(&failed, root, uid);
	ctl_check_directory(&failed);
	ctl_check_tls(&failed);
	ctl_check_relay(&failed, root);
	ctl_check_programs_run(&failed);
	ctl_check_mail_location(&failed, root);
	ctl_check_dkim(&failed);
	buf_free(&why);
	return failed ? CTL_EXIT_FAIL : CTL_EXIT_OK;
}
