/*
 * ctl_user - mailbox users: add, del, list, passwd, quota, enable,
 * disable.
 *
 * A password never comes from the command line (other users could read
 * it in ps): on a terminal it is asked twice without echo, otherwise the
 * first line of stdin is the password ("printf '%s\n' "$pw" | heraldctl
 * user add a@b"). It is hashed with yescrypt here and only the hash is
 * stored, in the password database that only authd reads.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/mem.h"
#include "mail/addr.h"
#include "mail/dir.h"
#include "mail/params.h"
#include "ctl.h"

/* the terminal as it was, restored on every way out */
static struct termios ctl_user_tty;
static volatile sig_atomic_t ctl_user_tty_saved;

/* ctl_user_tty_restore - echo back on */
static void
ctl_user_tty_restore(void)
{
	if (ctl_user_tty_saved) {
		(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &ctl_user_tty);
		ctl_user_tty_saved = 0;
	}
}

/* ctl_user_tty_signal - ^C at the prompt: restore, then die of it */
static void
ctl_user_tty_signal(int signo)
{
	ctl_user_tty_restore();
	(void)signal(signo, SIG_DFL);
	(void)raise(signo);
}

/* ctl_user_prompt - one line from the terminal without echo */
static int
ctl_user_prompt(const char *prompt, struct buf *out, struct buf *why)
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
	struct sigaction sa, old[4];
	struct termios raw;
	int r;

	if (tcgetattr(STDIN_FILENO, &ctl_user_tty) < 0) {
		buf_puts(why, "cannot read the terminal settings");
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = ctl_user_tty_signal;
	sigemptyset(&sa.sa_mask);
	for (int i = 0; i < 4; i++)
		(void)sigaction(sigs[i], &sa, &old[i]);
	raw = ctl_user_tty;
	raw.c_lflag &= ~(tcflag_t)ECHO;
	raw.c_lflag |= ECHONL;
	fputs(prompt, stderr);
	fflush(stderr);
	ctl_user_tty_saved = 1;
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) < 0) {
		ctl_user_tty_saved = 0;
		buf_puts(why, "cannot turn off echo");
		r = -1;
	} else {
		r = ctl_input_password_line(STDIN_FILENO, out, why);
		ctl_user_tty_restore();
	}
	for (int i = 0; i < 4; i++)
		(void)sigaction(sigs[i], &old[i], NULL);
	return r;
}

/* ctl_user_wipe - forget a password */
static void
ctl_user_wipe(struct buf *pw)
{
	if (pw->cap > 0)
		explicit_bzero(pw->data, pw->cap);
	buf_free(pw);
}

/* ctl_user_password - read the new password and hash it into hash */
static int
ctl_user_password(struct buf *hash)
{
	struct buf pw = BUF_INIT, again = BUF_INIT, why = BUF_INIT;
	int rc = -1;

	if (isatty(STDIN_FILENO)) {
		if (ctl_user_prompt("Password: ", &pw, &why) < 0 ||
		    ctl_user_prompt("Retype password: ", &again, &why) < 0)
			goto out;
		if (strcmp(buf_cstr(&pw), buf_cstr(&again)) != 0) {
			buf_puts(&why, "passwords do not match");
			goto out;
		}
	} else if (ctl_input_password_line(STDIN_FILENO, &pw, &why) < 0) {
		goto out;
	}
	if (dir_passwd_hash(buf_cstr(&pw), hash, &why) < 0)
		goto out;
	rc = 0;
out:
	if (rc < 0)
		ctl_error("%s", buf_cstr(&why));
	ctl_user_wipe(&pw);
	ctl_user_wipe(&again);
	buf_free(&why);
	return rc;
}

/* ctl_user_exists - 1 exists, 0 not (message printed if must), -1 error */
static int
ctl_user_exists(struct dir *d, const char *addr, bool must)
{
	struct buf why = BUF_INIT;
	struct dir_user u;
	int r = dir_user_get(d, addr, &u, &why);

	if (r < 0)
		ctl_error("%s: %s", addr, buf_cstr(&why));
	else if (r == 0 && must)
		ctl_error("user %s does not exist", addr);
	else if (r == 1 && !must)
		ctl_error("user %s exists", addr);
	buf_free(&why);
	return r;
}

/* ctl_user_add - a new user with a password */
int
ctl_user_add(struct ctl *ctl, const struct ctl_args *a)
{
	struct buf addr = BUF_INIT, hash = BUF_INIT, why = BUF_INIT;
	const char *qtext = ctl_args_value(a, "quota");
	long long quota = -1;
	struct dir *d = NULL;
	int rc = CTL_EXIT_FAIL;

	if (ctl_input_arg(ctl_input_address, a->pos[0], &addr) < 0)
		goto out;
	if (qtext != NULL && ctl_input_quota(qtext, &quota, &why) < 0) {
		ctl_error("%s", buf_cstr(&why));
		goto out;
	}
	if ((d = ctl_dir_open()) == NULL)
		goto out;
	if (ctl_dir_hosted(d, addr_domain(buf_cstr(&addr))) != 1 ||
	    ctl_user_exists(d, buf_cstr(&addr), false) != 0)
		goto out;
	if (ctl_user_password(&hash) < 0)
		goto out;
	if (dir_user_add(d, buf_cstr(&addr), quota, &why) < 0) {
		ctl_error("%s", buf_cstr(&why));
		goto out;
	}
	if (dir_passwd_set(var_data_directory, buf_cstr(&addr),
	    buf_cstr(&hash), &why) < 0) {
		ctl_error("%s: password: %s", buf_cstr(&addr), buf_cstr(&why));
		buf_reset(&why);
		/* no user without a password */
		if (dir_user_del(d, buf_cstr(&addr), &why) < 0)
			ctl_error("%s", buf_cstr(&why));
		goto out;
	}
	printf("user %s added\n", buf_cstr(&addr));
	rc = CTL_EXIT_OK;
out:
	dir_close(&d);
	buf_free(&addr);
	buf_free(&hash);
	buf_free(&why);
	return rc;
}

/* ctl_user_del - remove a user and its password (mail stays) */
int
ctl_user_del(struct ctl *ctl, const struct ctl_args *a)
{
	struct buf addr = BUF_INIT, why = BUF_INIT;
	struct dir *d = NULL;
	int rc = CTL_EXIT_FAIL;

	if (ctl_input_arg(ctl_input_address, a->pos[0], &addr) < 0 ||
	    (d = ctl_dir_open()) == NULL)
		goto out;
	if (dir_user_del(d, buf_cstr(&addr), &why) < 0) {
		ctl_error("%s", buf_cstr(&why));
		goto out;
	}
	if (dir_passwd_del(var_data_directory, buf_cstr(&addr), &why) < 0) {
		ctl_error("%s: password: %s", buf_cstr(&addr), buf_cstr(&why));
		goto out;
	}
	printf("user %s deleted\n", buf_cstr(&addr));
	rc = CTL_EXIT_OK;
out:
	dir_close(&d);
	buf_free(&addr);
	buf_free(&why);
	return rc;
}

/* ctl_user_quota_text - "default", "none" or a size */
static void
ctl_user_quota_text(struct buf *out, long long quota)
{
	if (quota < 0)
		buf_puts(out, "default");
	else if (quota == 0)
		buf_puts(out, "none");
	else
		ctl_fmt_size(out, quota);
}

/* ctl_user_row - one user into the table and the JSON array */
static void
ctl_user_row(const char *addr, const struct dir_user *u, void *ctx)
{
	struct ctl_listing *l = ctx;
	struct buf quota = BUF_INIT, created = BUF_INIT;

	ctl_user_quota_text(&quota, u->quota);
	ctl_fmt_time(&created, (time_t)u->created);
	ctl_table_add(&l->t, (const char *const[]){addr, buf_cstr(&quota),
	    u->enabled ? "yes" : "no", buf_cstr(&created)});
	ctl_json_open(&l->j, '{');
	ctl_json_kstr(&l->j, "address", addr);
	ctl_json_kint(&l->j, "quota", u->quota);
	ctl_json_kbool(&l->j, "enabled", u->enabled);
	ctl_json_kstr(&l->j, "created", buf_cstr(&created));
	ctl_json_close(&l->j, '}');
	buf_free(&quota);
	buf_free(&created);
}

/* ctl_user_list - users of one domain or of all */
int
ctl_user_list(struct ctl *ctl, const struct ctl_args *a)
{
	struct buf dom = BUF_INIT, why = BUF_INIT;
	struct ctl_listing l;
	struct dir *d;
	int rc = CTL_EXIT_FAIL;

	if ((d = ctl_dir_open_filter(a, &dom)) == NULL) {
		buf_free(&dom);
		return CTL_EXIT_FAIL;
	}
	ctl_listing_init(&l, 4, (const char *const[]){"ADDRESS", "QUOTA",
	    "ENABLED", "CREATED"});
	if (dir_user_list(d, dom.len > 0 ? buf_cstr(&dom) : NULL, ctl_user_row, &l,
	    &why) < 0) {
		ctl_error("%s", buf_cstr(&why));
	} else {
		ctl_listing_print(ctl, &l);
		rc = CTL_EXIT_OK;
	}
	ctl_listing_free(&l);
	dir_close(&d);
	buf_free(&dom);
	buf_free(&why);
	return rc;
}

/* ctl_user_passwd - a new password for an existing user */
int
ctl_user_passwd(struct ctl *ctl, const struct ctl_args *a)
{
	struct buf addr = BUF_INIT, hash = BUF_INIT, why = BUF_INIT;
	struct dir *d = NULL;
	int rc = CTL_EXIT_FAIL;

	if (ctl_input_arg(ctl_input_address, a->pos[0], &addr) < 0 ||
	    (d = ctl_dir_open()) == NULL ||
	    ctl_user_exists(d, buf_cstr(&addr), true) != 1 ||
	    ctl_user_password(&hash) < 0)
		goto out;
	if (dir_passwd_set(var_data_directory, buf_cstr(&addr),
	    buf_cstr(&hash), &why) < 0) {
		ctl_error("%s: password: %s", buf_cstr(&addr), buf_cstr(&why));
		goto out;
	}
	printf("password of %s changed\n", buf_cstr(&addr));
	rc = CTL_EXIT_OK;
out:
	dir_close(&d);
	buf_free(&addr);
	buf_free(&hash);
	buf_free(&why);
	return rc;
}

/* ctl_user_quota - set a user's quota */
int
ctl_user_quota(struct ctl *ctl, const struct ctl_args *a)
{
	struct buf addr = BUF_INIT, why = BUF_INIT, text = BUF_INIT;
	long long quota;
	struct dir *d = NULL;
	int rc = CTL_EXIT_FAIL;

	if (ctl_input_arg(ctl_input_address, a->pos[0], &addr) < 0)
		goto out;
	if (ctl_input_quota(a->pos[1], &quota, &why) < 0) {
		ctl_error("%s", buf_cstr(&why));
		goto out;
	}
	if ((d = ctl_dir_open()) == NULL)
		goto out;
	if (dir_user_set_quota(d, buf_cstr(&addr), quota, &why) < 0) {
		ctl_error("%s", buf_cstr(&why));
		goto out;
	}
	ctl_user_quota_text(&text, quota);
	printf("quota of %s set to %s\n", buf_cstr(&addr), buf_cstr(&text));
	rc = CTL_EXIT_OK;
out:
	dir_close(&d);
	buf_free(&addr);
	buf_free(&why);
	buf_free(&text);
	return rc;
}

/* ctl_user_enabled - enable or disable a user */
static int
ctl_user_enabled(const struct ctl_args *a, bool enabled)
{
	struct buf addr = BUF_INIT, why = BUF_INIT;
	struct dir *d = NULL;
	int rc = CTL_EXIT_FAIL;

	if (ctl_input_arg(ctl_input_address, a->pos[0], &addr) < 0 ||
	    (d = ctl_dir_open()) == NULL)
		goto out;
	if (dir_user_set_enabled(d, buf_cstr(&addr), enabled, &why) < 0) {
		ctl_error("%s", buf_cstr(&why));
		goto out;
	}
	printf("user %s %s\n", buf_cstr(&addr), enabled ? "enabled" :
	    "disabled");
	rc = CTL_EXIT_OK;
out:
	dir_close(&d);
	buf_free(&addr);
	buf_free(&why);
	return rc;
}

/* ctl_user_enable - let a user receive mail and log in again */
int
ctl_user_enable(struct ctl *ctl, const struct ctl_args *a)
{
	return ctl_user_enabled(a, true);
}

/* ctl_user_disable - refuse mail (550 5.2.1) and logins for a user */
int
ctl_user_disable(struct ctl *ctl, const struct ctl_args *a)
{
	return ctl_user_enabled(a, false);
}
