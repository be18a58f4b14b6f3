/*
 * ctl_mailbox - a user's mail store: list, status, reindex, create,
 * delete (the mail index of lib/mail/mindex.c over the Maildir++ folders
 * that mail_location names).
 *
 * SECURITY: a Maildir belongs to vmail_user, and its user's mail clients
 * (through imapd) can make files and links in it. heraldctl runs as root,
 * so the work is done by a child that has become vmail_user (setgroups,
 * setgid, setuid, checked) before it opens anything in the store: a link
 * planted there can lead it nowhere vmail_user could not write anyway.
 * The child prints the results itself; the parent only waits for it.
 * Not root (a development instance): the child keeps the caller's user.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/buf.h"
#include "mail/dir.h"
#include "mail/mailbase.h"
#include "mail/maildir.h"
#include "mail/mindex.h"
#include "mail/mutf7.h"
#include "mail/params.h"
#include "ctl.h"

/* what one run of a mailbox command works on */
struct ctl_mailbox {
	struct ctl *ctl;
	const struct ctl_args *a;
	const char *addr;	/* checked address */
	const char *path;	/* its Maildir */
	struct mindex *ix;
};

typedef int ctl_mailbox_fn(struct ctl_mailbox *mb);

/* ctl_mailbox_drop - become vmail_user when root; -1 (message printed) */
static int
ctl_mailbox_drop(void)
{
	struct passwd *pw;
	uid_t uid;
	gid_t gid;

	if (geteuid() != 0)
		return 0;
	if ((pw = getpwnam(var_vmail_user)) == NULL) {
		ctl_error("vmail_user \"%s\" does not exist", var_vmail_user);
		return -1;
	}
	uid = pw->pw_uid;
	gid = pw->pw_gid;
	if (uid == 0) {
		/* a store owned by root: nobody less trusted writes it */
		return 0;
	}
	if (setgroups(1, &gid) < 0 || setgid(gid) < 0 || setuid(uid) < 0 ||
	    getuid() != uid || geteuid() != uid || getgid() != gid ||
	    getegid() != gid || setuid(0) == 0) {
		ctl_error("cannot become vmail_user \"%s\": %s",
		    var_vmail_user, strerror(errno));
		return -1;
	}
	return 0;
}

/* ctl_mailbox_folder - the FOLDER operand checked into out (UTF-8) */
static int
ctl_mailbox_folder(const char *s, struct buf *out)
{
	struct buf why = BUF_INIT;
	int rc = mutf7_folder_name(s, true, out, &why);

	if (rc < 0)
		ctl_error("folder \"%s\": %s", s, buf_cstr(&why));
	buf_free(&why);
	return rc;
}

/* ctl_mailbox_user - 1 when addr is a user of the directory, else 0
 * (message printed; also for errors) */
static int
ctl_mailbox_user(const char *addr)
{
	struct buf why = BUF_INIT;
	struct dir_user u;
	struct dir *d = NULL;
	int r = -1;

	if (dir_open(var_data_directory, DIR_READ, &d, &why) < 0 ||
	    (r = dir_user_get(d, addr, &u, &why)) < 0)
		ctl_error("directory: %s", buf_cstr(&why));
	else if (r == 0)
		ctl_error("user %s does not exist", addr);
	dir_close(&d);
	buf_free(&why);
	return r == 1;
}

/* ctl_mailbox_run - check ADDR, fork the child that drops privileges,
 * opens the index (create: makes the Maildir if missing) and runs fn */
static int
ctl_mailbox_run(struct ctl *ctl, const struct ctl_args *a, bool create,
    ctl_mailbox_fn *fn)
{
	struct buf addr = BUF_INIT, path = BUF_INIT, why = BUF_INIT;
	struct ctl_mailbox mb = {ctl, a, NULL, NULL, NULL};
	int rc = CTL_EXIT_FAIL, status;
	pid_t pid;

	if (ctl_input_address(a->pos[0], &addr, &why) < 0 ||
	    mailbase_mailbox_path(var_mail_location, buf_cstr(&addr), &path,
	    &why) < 0) {
		ctl_error("%s", buf_cstr(&why));
		goto out;
	}
	/* a mailbox is made only for a user (a typo must not make one) */
	if (create && !ctl_mailbox_user(buf_cstr(&addr)))
		goto out;
	fflush(stdout);
	if ((pid = fork()) < 0) {
		ctl_error("fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0) {
		struct stat st;

		if (ctl_mailbox_drop() < 0)
			_exit(CTL_EXIT_FAIL);
		mb.addr = buf_cstr(&addr);
		mb.path = buf_cstr(&path);
		if (stat(mb.path, &st) < 0) {
			if (!create || errno != ENOENT) {
				ctl_error("%s has no mailbox (%s: %s)",
				    mb.addr, mb.path, strerror(errno));
				_exit(CTL_EXIT_FAIL);
			}
		}
		if (create && maildir_create(mb.path, &why) < 0) {
			ctl_error("%s: %s", mb.addr, buf_cstr(&why));
			_exit(CTL_EXIT_FAIL);
		}
		if (mindex_open(mb.path, &mb.ix, &why) < 0) {
			ctl_error("%s: %s", mb.addr, buf_cstr(&why));
			_exit(CTL_EXIT_FAIL);
		}
		rc = fn(&mb);
		mindex_close(&mb.ix);
		if (fflush(stdout) == EOF && rc == CTL_EXIT_OK)
			rc = CTL_EXIT_FAIL;
		_exit(rc);
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			ctl_error("waitpid: %s", strerror(errno));
			goto out;
		}
	}
	if (WIFEXITED(status)) {
		rc = WEXITSTATUS(status);
	} else {
		ctl_error("the mailbox helper died of signal %d; what it did "
		    "is safe to do again", WTERMSIG(status));
		rc = CTL_EXIT_FAIL;
	}
out:
	buf_free(&addr);
	buf_free(&path);
	buf_free(&why);
	return rc;
}

/* ctl_mailbox_special - the RFC 6154 name of a MINDEX_SPECIAL_* set */
static const char *
ctl_mailbox_special(unsigned use)
{
	switch (use) {
	case MINDEX_SPECIAL_SENT: return "\\Sent";
	case MINDEX_SPECIAL_DRAFTS: return "\\Drafts";
	case MINDEX_SPECIAL_TRASH: return "\\Trash";
	case MINDEX_SPECIAL_JUNK: return "\\Junk";
	case MINDEX_SPECIAL_ARCHIVE: return "\\Archive";
	default: return "";
	}
}

/* what ctl_mailbox_list_one gathers */
struct ctl_mailbox_rows {
	struct ctl_mailbox *mb;
	struct ctl_listing l;
	bool failed;
};

/* ctl_mailbox_list_one - sync one folder and add its row */
static void
ctl_mailbox_list_one(const char *name, unsigned special, void *ctx)
{
	struct ctl_mailbox_rows *r = ctx;
	struct buf why = BUF_INIT, n = BUF_INIT, u = BUF_INIT, s = BUF_INIT;
	struct mindex_status st;

	if (mindex_sync(r->mb->ix, name, NULL, &why) < 0 ||
	    mindex_status(r->mb->ix, name, &st, &why) < 0) {
		ctl_error("%s: folder \"%s\": %s", r->mb->addr, name,
		    buf_cstr(&why));
		r->failed = true;
		goto out;
	}
	buf_printf(&n, "%u", st.messages);
	buf_printf(&u, "%u", st.unseen);
	ctl_fmt_size(&s, (long long)st.size);
	ctl_table_add(&r->l.t, (const char *const[]){name, buf_cstr(&n),
	    buf_cstr(&u), buf_cstr(&s), ctl_mailbox_special(special)});
	ctl_json_open(&r->l.j, '{');
	ctl_json_kstr(&r->l.j, "folder", name);
	ctl_json_kint(&r->l.j, "messages", st.messages);
	ctl_json_kint(&r->l.j, "unseen", st.unseen);
	ctl_json_kint(&r->l.j, "size", (long long)st.size);
	ctl_json_kstr(&r->l.j, "special_use", ctl_mailbox_special(special));
	ctl_json_close(&r->l.j, '}');
out:
	buf_free(&why);
	buf_free(&n);
	buf_free(&u);
	buf_free(&s);
}

/* ctl_mailbox_do_list - the folders with counts */
static int
ctl_mailbox_do_list(struct ctl_mailbox *mb)
{
	struct ctl_mailbox_rows r;
	struct buf why = BUF_INIT;
	int rc = CTL_EXIT_OK;

	memset(&r, 0, sizeof(r));
	r.mb = mb;

	ctl_listing_init(&r.l, 5, (const char *const[]){"FOLDER", "MESSAGES",
	    "UNSEEN", "SIZE", "SPECIAL-USE"});
	if (mindex_folders(mb->ix, ctl_mailbox_list_one, &r, &why) < 0) {
		ctl_error("%s: %s", mb->addr, buf_cstr(&why));
		rc = CTL_EXIT_FAIL;
	} else {
		ctl_listing_print(mb->ctl, &r.l);
		if (r.failed)
			rc = CTL_EXIT_FAIL;
	}
	ctl_listing_free(&r.l);
	buf_free(&why);
	return rc;
}

/* ctl_mailbox_do_status - one folder's UIDVALIDITY, UIDNEXT, ... */
static int
ctl_mailbox_do_status(struct ctl_mailbox *mb)
{
	struct buf name = BUF_INIT, why = BUF_INIT, out = BUF_INIT;
	struct mindex_sync_result sr;
	struct mindex_status st;
	int rc = CTL_EXIT_FAIL;

	if (ctl_mailbox_folder(mb->a->npos > 1 ? mb->a->pos[1] : "INBOX",
	    &name) < 0)
		goto out;
	if (mindex_sync(mb->ix, buf_cstr(&name), &sr, &why) < 0 ||
	    mindex_status(mb->ix, buf_cstr(&name), &st, &why) < 0) {
		ctl_error("%s: %s", mb->addr, buf_cstr(&why));
		goto out;
	}
	if (mb->ctl->json) {
		struct ctl_json j;

		ctl_json_init(&j, &out);
		ctl_json_open(&j, '{');
		ctl_json_kstr(&j, "address", mb->addr);
		ctl_json_kstr(&j, "folder", buf_cstr(&name));
		ctl_json_kint(&j, "uidvalidity", st.uidvalidity);
		ctl_json_kint(&j, "uidnext", st.uidnext);
		ctl_json_kint(&j, "highestmodseq",
		    (long long)st.highestmodseq);
		ctl_json_kint(&j, "messages", st.messages);
		ctl_json_kint(&j, "unseen", st.unseen);
		ctl_json_kint(&j, "deleted", st.deleted);
		ctl_json_kint(&j, "size", (long long)st.size);
		ctl_json_close(&j, '}');
		ctl_json_print(&out);
	} else {
		printf("address: %s\nfolder: %s\nuidvalidity: %u\n"
		    "uidnext: %u\nhighestmodseq: %llu\nmessages: %u\n"
		    "unseen: %u\ndeleted: %u\nsize: %llu\n", mb->addr,
		    buf_cstr(&name), st.uidvalidity, st.uidnext,
		    (unsigned long long)st.highestmodseq, st.messages,
		    st.unseen, st.deleted, (unsigned long long)st.size);
	}
	rc = CTL_EXIT_OK;
out:
	buf_free(&name);
	buf_free(&why);
	buf_free(&out);
	return rc;
}

/* ctl_mailbox_do_reindex - rebuild the index from the Maildir */
static int
ctl_mailbox_do_reindex(struct ctl_mailbox *mb)
{
	struct buf why = BUF_INIT;
	int rc = CTL_EXIT_OK;

	/* mindex_reindex opens the index itself: one open per process */
	mindex_close(&mb->ix);
	if (mindex_reindex(mb->path, &why) < 0) {
		ctl_error("%s: reindex: %s", mb->addr, buf_cstr(&why));
		rc = CTL_EXIT_FAIL;
	} else if (!mb->ctl->json) {
		printf("%s: index rebuilt from %s\n", mb->addr, mb->path);
	}
	buf_free(&why);
	return rc;
}

/* ctl_mailbox_do_create - a new folder */
static int
ctl_mailbox_do_create(struct ctl_mailbox *mb)
{
	struct buf name = BUF_INIT, why = BUF_INIT;
	int rc = CTL_EXIT_FAIL;

	if (ctl_mailbox_folder(mb->a->pos[1], &name) < 0)
		goto out;
	if (mindex_folder_create(mb->ix, buf_cstr(&name), &why) < 0) {
		ctl_error("%s: %s", mb->addr, buf_cstr(&why));
		goto out;
	}
	if (!mb->ctl->json)
		printf("%s: folder \"%s\" created\n", mb->addr,
		    buf_cstr(&name));
	rc = CTL_EXIT_OK;
out:
	buf_free(&name);
	buf_free(&why);
	return rc;
}

/* ctl_mailbox_do_delete - remove a folder (with --force: and its mail) */
static int
ctl_mailbox_do_delete(struct ctl_mailbox *mb)
{
	struct buf name = BUF_INIT, why = BUF_INIT;
	int rc = CTL_EXIT_FAIL;

	if (ctl_mailbox_folder(mb->a->pos[1], &name) < 0)
		goto out;
	if (mindex_folder_delete(mb->ix, buf_cstr(&name),
	    ctl_args_has(mb->a, "force"), &why) < 0) {
		ctl_error("%s: %s%s", mb->addr, buf_cstr(&why),
		    errno == ENOTEMPTY ? " (--force deletes it with its "
		    "messages)" : "");
		goto out;
	}
	if (!mb->ctl->json)
		printf("%s: folder \"%s\" deleted\n", mb->addr,
		    buf_cstr(&name));
	rc = CTL_EXIT_OK;
out:
	buf_free(&name);
	buf_free(&why);
	return rc;
}

/* ctl_mailbox_list - "mailbox list": the folders of ADDR */
int
ctl_mailbox_list(struct ctl *ctl, const struct ctl_args *a)
{
	return ctl_mailbox_run(ctl, a, false, ctl_mailbox_do_list);
}

/* ctl_mailbox_status - "mailbox status": one folder's state */
int
ctl_mailbox_status(struct ctl *ctl, const struct ctl_args *a)
{
	return ctl_mailbox_run(ctl, a, false, ctl_mailbox_do_status);
}

/* ctl_mailbox_reindex - "mailbox reindex": rebuild the index */
int
ctl_mailbox_reindex(struct ctl *ctl, const struct ctl_args *a)
{
	return ctl_mailbox_run(ctl, a, false, ctl_mailbox_do_reindex);
}

/* ctl_mailbox_create - "mailbox create": a new folder */
int
ctl_mailbox_create(struct ctl *ctl, const struct ctl_args *a)
{
	return ctl_mailbox_run(ctl, a, true, ctl_mailbox_do_create);
}

/* ctl_mailbox_delete - "mailbox delete": remove a folder */
int
ctl_mailbox_delete(struct ctl *ctl, const struct ctl_args *a)
{
	return ctl_mailbox_run(ctl, a, false, ctl_mailbox_do_delete);
}
