/*
 * ctl_auth - "heraldctl auth lockouts" and "heraldctl auth unlock": the
 * login lockouts authd keeps in its throttle database
 * (<data_directory>/authstate/, auth/auth_throttle.c), listed with their
 * expiry, and lifted one account, address or prefix at a time.
 *
 * SECURITY
 *	The throttle database belongs to auth_user (folder 0700, files
 *	0600); only root and that user may read or change it. auth_user can
 *	write the folder and LMDB opens its files by name, following links,
 *	so root never works there: root opens the folder without following
 *	a link, and a child that has become auth_user (setgroups, setgid,
 *	setuid, checked) starts in it by fchdir and does the LMDB work. It
 *	prints its result itself (stdout is inherited) and its exit status
 *	is the command's. Anybody else is refused by the folder's mode; a
 *	user who runs herald unprivileged (development, tests) owns the
 *	folder and works on it in the same way, without a change of user.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "mail/params.h"
#include "mail/auth_throttle.h"
#include "ctl.h"

#define CTL_AUTH_STATE "authstate"

/* what the child does */
enum ctl_auth_op { CTL_AUTH_LIST, CTL_AUTH_UNLOCK };

/* ctl_auth_kind - the TYPE column of a lockout */
static const char *
ctl_auth_kind(char kind)
{
	switch (kind) {
	case 'c':
		return "address";
	case 'a':
		return "account";
	default:
		return "account-prefix";
	}
}

/* one listing being filled, and the time it is for */
struct ctl_auth_list {
	struct ctl_listing l;
	long long now;
	size_t n;
};

/* ctl_auth_list_one - one lockout into the listing */
static void
ctl_auth_list_one(const struct auth_throttle_lock *lk, void *ctx)
{
	struct ctl_auth_list *al = ctx;
	struct buf who = BUF_INIT, until = BUF_INIT, left = BUF_INIT,
	    account = BUF_INIT;
	const char *prefix = NULL, *sp;
	char failures[32];

	if (lk->kind == 'p' && (sp = strrchr(lk->name, ' ')) != NULL) {
		buf_append(&account, lk->name, (size_t)(sp - lk->name));
		prefix = sp + 1;
		buf_printf(&who, "%s from %s", buf_cstr(&account), prefix);
	} else {
		buf_puts(&who, lk->name);
		if (lk->kind == 'a')
			buf_puts(&account, lk->name);
	}
	ctl_fmt_time(&until, (time_t)lk->until);
	ctl_fmt_duration(&left, lk->until - al->now);
	snprintf(failures, sizeof(failures), "%lld", lk->failures);
	ctl_table_add(&al->l.t, (const char *const[]){ctl_auth_kind(lk->kind),
	    buf_cstr(&who), failures, buf_cstr(&until), buf_cstr(&left)});
	ctl_json_open(&al->l.j, '{');
	ctl_json_kstr(&al->l.j, "type", ctl_auth_kind(lk->kind));
	if (lk->kind == 'c')
		ctl_json_kstr(&al->l.j, "address", lk->name);
	else
		ctl_json_kstr(&al->l.j, "account", buf_cstr(&account));
	if (prefix != NULL)
		ctl_json_kstr(&al->l.j, "prefix", prefix);
	ctl_json_kint(&al->l.j, "failures", lk->failures);
	ctl_json_kstr(&al->l.j, "until", buf_cstr(&until));
	ctl_json_kint(&al->l.j, "remaining", lk->until - al->now);
	ctl_json_close(&al->l.j, '}');
	al->n++;
	buf_free(&who);
	buf_free(&until);
	buf_free(&left);
	buf_free(&account);
}

/* ctl_auth_list - print the lockouts in force; an exit code */
static int
ctl_auth_list(const struct ctl *ctl, struct auth_throttle *t)
{
	struct ctl_auth_list al;
	struct buf why = BUF_INIT;
	int rc = CTL_EXIT_OK;

	memset(&al, 0, sizeof(al));
	al.now = (long long)time(NULL);
	ctl_listing_init(&al.l, 5, (const char *const[]){"TYPE", "WHO",
	    "FAILURES", "LOCKED_UNTIL", "REMAINING"});
	if (auth_throttle_locks(t, al.now, ctl_auth_list_one, &al,
	    &why) < 0) {
		ctl_error("lockouts: %s", buf_cstr(&why));
		rc = CTL_EXIT_FAIL;
	} else if (al.n == 0 && !ctl->json) {
		printf("no lockouts\n");
	} else {
		ctl_listing_print(ctl, &al.l);
	}
	ctl_listing_free(&al.l);
	buf_free(&why);
	return rc;
}

/* ctl_auth_unlock_in - lift what in t; an exit code */
static int
ctl_auth_unlock_in(struct auth_throttle *t, const char *what)
{
	struct buf why = BUF_INIT;
	long n;

	if ((n = auth_throttle_unlock(t, what, &why)) < 0) {
		ctl_error("unlock: %s", buf_cstr(&why));
		buf_free(&why);
		return CTL_EXIT_FAIL;
	}
	buf_free(&why);
	if (n == 0) {
		ctl_error("%s: no failures or lockouts recorded", what);
		return CTL_EXIT_FAIL;
	}
	printf("%s: unlocked (%ld entr%s cleared)\n", what, n,
	    n == 1 ? "y" : "ies");
	return CTL_EXIT_OK;
}

/* ctl_auth_child - in the state folder sfd, as auth_user when uid is not
 * (uid_t)-1: do op, print, exit with the code; never returns */
static void __attribute__((noreturn))
ctl_auth_child(const struct ctl *ctl, enum ctl_auth_op op, const char *what,
    int sfd, uid_t uid, gid_t gid)
{
	struct auth_throttle_conf conf;
	struct auth_throttle *t;
	struct buf why = BUF_INIT;
	int rc;

	if (fchdir(sfd) < 0) {
		ctl_error("%s: %s", CTL_AUTH_STATE, strerror(errno));
		_exit(CTL_EXIT_FAIL);
	}
	(void)close(sfd);
	if (uid != (uid_t)-1 && (setgroups(1, &gid) < 0 || setgid(gid) < 0 ||
	    setuid(uid) < 0 || getuid() != uid || geteuid() != uid ||
	    getgid() != gid || getegid() != gid || setuid(0) == 0)) {
		ctl_error("cannot become auth_user %s: %s", var_auth_user,
		    strerror(errno));
		_exit(CTL_EXIT_FAIL);
	}
	auth_throttle_conf_params(&conf);
	if (auth_throttle_open(".", &conf, 0, &t, &why) < 0) {
		ctl_error("%s/%s: %s", var_data_directory, CTL_AUTH_STATE,
		    buf_cstr(&why));
		_exit(CTL_EXIT_FAIL);
	}
	if (op == CTL_AUTH_LIST)
		rc = ctl_auth_list(ctl, t);
	else
		rc = ctl_auth_unlock_in(t, what);
	auth_throttle_close(&t);
	buf_free(&why);
	if (fflush(stdout) == EOF && rc == CTL_EXIT_OK)
		rc = CTL_EXIT_FAIL;
	_exit(rc);
}

/*
 * ctl_auth_run - op on the throttle database: open its folder without
 * following links, then a child works in it (as auth_user when we are
 * root). No folder yet: nothing was ever recorded.
 */
static int
ctl_auth_run(const struct ctl *ctl, enum ctl_auth_op op, const char *what)
{
	struct passwd *pw;
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;
	int data, sfd, status;
	pid_t pid;

	if (geteuid() == 0) {
		if (var_auth_user == NULL || *var_auth_user == '\0' ||
		    (pw = getpwnam(var_auth_user)) == NULL) {
			ctl_error("auth_user %s: no such user", var_auth_user ?
			    var_auth_user : "");
			return CTL_EXIT_FAIL;
		}
		if (pw->pw_uid != 0) {
			uid = pw->pw_uid;
			gid = pw->pw_gid;
		}
	}
	if ((data = open(var_data_directory, O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) < 0 || (sfd = openat(data, CTL_AUTH_STATE,
	    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		int e = errno;

		if (data >= 0)
			(void)close(data);
		if (e == ENOENT) {
			if (op == CTL_AUTH_UNLOCK) {
				ctl_error("%s: no failures or lockouts "
				    "recorded", what);
				return CTL_EXIT_FAIL;
			}
			if (ctl->json)
				printf("[]\n");
			else
				printf("no lockouts\n");
			return CTL_EXIT_OK;
		}
		ctl_error("%s/%s: %s%s", var_data_directory, CTL_AUTH_STATE,
		    strerror(e), e == EACCES ? " (only root and auth_user may "
		    "see or change lockouts)" : "");
		return CTL_EXIT_FAIL;
	}
	(void)close(data);
	if (fflush(stdout) == EOF) {
		(void)close(sfd);
		return CTL_EXIT_FAIL;
	}
	if ((pid = fork()) < 0) {
		ctl_error("fork: %s", strerror(errno));
		(void)close(sfd);
		return CTL_EXIT_FAIL;
	}
	if (pid == 0)
		ctl_auth_child(ctl, op, what, sfd, uid, gid);
	(void)close(sfd);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			ctl_error("waitpid: %s", strerror(errno));
			return CTL_EXIT_FAIL;
		}
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	ctl_error("lockout helper failed (wait status 0x%x)",
	    (unsigned)status);
	return CTL_EXIT_FAIL;
}

/* ctl_auth_lockouts - the lockouts in force, with their expiry */
int
ctl_auth_lockouts(struct ctl *ctl, const struct ctl_args *a)
{
	return ctl_auth_run(ctl, CTL_AUTH_LIST, NULL);
}

/* ctl_auth_unlock - lift the lockouts of an account, address or prefix */
int
ctl_auth_unlock(struct ctl *ctl, const struct ctl_args *a)
{
	struct buf what = BUF_INIT, why = BUF_INIT;
	int rc;

	if (strchr(a->pos[0], '@') != NULL ?
	    ctl_input_address(a->pos[0], &what, &why) < 0 :
	    auth_throttle_target(a->pos[0], &why) < 0) {
		ctl_error("%s", buf_cstr(&why));
		buf_free(&what);
		buf_free(&why);
		return CTL_EXIT_USAGE;
	}
	if (what.len == 0)
		buf_set(&what, a->pos[0]);
	rc = ctl_auth_run(ctl, CTL_AUTH_UNLOCK, buf_cstr(&what));
	buf_free(&what);
	buf_free(&why);
	return rc;
}
