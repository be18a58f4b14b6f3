/*
 * mailbase_test - the base folder of mail_location: found, created, and
 * judged by permission bits for another user.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/test.h"
#include "mail/mailbase.h"

/* base_of - mailbase_path of tmpl, in a static buffer */
static const char *
base_of(const char *tmpl)
{
	static struct buf out = BUF_INIT;

	mailbase_path(&out, tmpl);
	return buf_cstr(&out);
}

/* box_of - mailbase_mailbox_path of tmpl and addr, or "ERR" */
static const char *
box_of(const char *tmpl, const char *addr)
{
	static struct buf out = BUF_INIT;
	struct buf why = BUF_INIT;
	int r = mailbase_mailbox_path(tmpl, addr, &out, &why);

	if (r < 0 && why.len == 0)
		buf_set(&out, "ERR without a reason");
	else if (r < 0)
		buf_set(&out, "ERR");
	buf_free(&why);
	return buf_cstr(&out);
}

static void
test_mailbox_path(void)
{
	T_EQ_STR(box_of("/var/mail/%d/%n", "Alice@Example.ORG"),
	    "/var/mail/example.org/alice");
	T_EQ_STR(box_of("/m/%u/Maildir", "a@b.c"), "/m/a@b.c/Maildir");
	T_EQ_STR(box_of("/m/100%%/%n%x", "a@b.c"), "/m/100%/a%x");
	T_EQ_STR(box_of("/m/%d/%n", "a/b@b.c"), "ERR");
	T_EQ_STR(box_of("/m/%d/%n", ".a@b.c"), "ERR");
	T_EQ_STR(box_of("/m/%d/%n", "a@.b.c"), "ERR");
	T_EQ_STR(box_of("/m/%d/%n", "a@b..c"), "ERR");
	T_EQ_STR(box_of("/m/%d/%n", "a\tb@b.c"), "ERR");
	T_EQ_STR(box_of("/m/%d/%n", "@b.c"), "ERR");
	T_EQ_STR(box_of("/m/%d/%n", "nodomain"), "ERR");
}

static void
test_path(void)
{
	T_EQ_STR(base_of("/var/mail/%d/%n"), "/var/mail");
	T_EQ_STR(base_of("/var/mail/%d/%n/"), "/var/mail");
	T_EQ_STR(base_of("/srv/mail/%u"), "/srv/mail");
	T_EQ_STR(base_of("/srv/mail//%u"), "/srv/mail");
	T_EQ_STR(base_of("/srv/vmail/d-%d/%n"), "/srv/vmail");
	T_EQ_STR(base_of("/%d/%n"), "/");
	T_EQ_STR(base_of("/srv/box"), "/srv/box");
	T_EQ_STR(base_of("/srv/box/"), "/srv/box");
	T_EQ_STR(base_of("%d/%n"), "");
	T_EQ_STR(base_of("mail/%d"), "mail");
	T_EQ_STR(base_of(""), "");
}

static void
test_setup(void)
{
	char tmp[] = "/tmp/mailbase_test.XXXXXX", base[256], f[300];
	struct buf why = BUF_INIT;
	struct stat st;

	T_ASSERT(mkdtemp(tmp) != NULL);
	snprintf(base, sizeof(base), "%s/a/b/mail", tmp);
	T_EQ_INT(mailbase_setup(base, (uid_t)-1, (gid_t)-1, &why), 0);
	T_ASSERT(stat(base, &st) == 0 && S_ISDIR(st.st_mode));
	T_EQ_INT(st.st_mode & 07777, 0700);
	snprintf(f, sizeof(f), "%s/a/b", tmp);
	T_ASSERT(stat(f, &st) == 0 && S_ISDIR(st.st_mode));
	T_EQ_INT(st.st_mode & 0055, 0055);	/* umask may drop w */

	/* an existing base is left alone */
	T_ASSERT(chmod(base, 0750) == 0);
	T_EQ_INT(mailbase_setup(base, (uid_t)-1, (gid_t)-1, &why), 0);
	T_ASSERT(stat(base, &st) == 0);
	T_EQ_INT(st.st_mode & 07777, 0750);

	/* a file is refused */
	snprintf(f, sizeof(f), "%s/file", tmp);
	T_ASSERT(fclose(fopen(f, "w")) == 0);
	T_EQ_INT(mailbase_setup(f, (uid_t)-1, (gid_t)-1, &why), -1);
	T_ASSERT(strstr(buf_cstr(&why), "not a directory") != NULL);
	buf_reset(&why);
	T_EQ_INT(mailbase_setup("", (uid_t)-1, (gid_t)-1, &why), -1);

	unlink(f);
	rmdir(base);
	snprintf(f, sizeof(f), "%s/a/b", tmp);
	rmdir(f);
	snprintf(f, sizeof(f), "%s/a", tmp);
	rmdir(f);
	rmdir(tmp);
	buf_free(&why);
}

static void
test_usable(void)
{
	char tmp[] = "/tmp/mailbase_test.XXXXXX", base[256], f[300];
	struct buf why = BUF_INIT;
	struct stat st;
	uid_t other;
	gid_t g, gids[2];

	T_ASSERT(mkdtemp(tmp) != NULL);
	T_ASSERT(chmod(tmp, 0755) == 0);
	snprintf(base, sizeof(base), "%s/mail", tmp);
	T_ASSERT(mkdir(base, 0700) == 0);
	T_ASSERT(stat(base, &st) == 0);
	/* a uid and gids that own nothing here */
	other = st.st_uid + 12345;
	g = st.st_gid;
	gids[0] = st.st_gid + 12345;
	gids[1] = g;

	/* the owner may; another user may not, with or without the group */
	T_EQ_INT(mailbase_usable(base, st.st_uid, gids, 1, &why),
	    1);
	T_EQ_INT(mailbase_usable(base, other, gids, 2, &why), 0);
	T_ASSERT(strstr(buf_cstr(&why), base) != NULL);
	buf_reset(&why);
	/* group rwx: only with the group in the list */
	T_ASSERT(chmod(base, 0770) == 0);
	T_EQ_INT(mailbase_usable(base, other, gids, 1, &why), 0);
	buf_reset(&why);
	T_EQ_INT(mailbase_usable(base, other, gids, 2, &why), 1);
	/* group r-x is not enough to create */
	T_ASSERT(chmod(base, 0750) == 0);
	T_EQ_INT(mailbase_usable(base, other, gids, 2, &why), 0);
	buf_reset(&why);
	/* the owner's bits win over the group's, as in the kernel */
	T_ASSERT(chmod(base, 0070) == 0);
	T_EQ_INT(mailbase_usable(base, st.st_uid == 0 ? other : st.st_uid,
	    gids, 2, &why), st.st_uid == 0 ? 1 : 0);
	buf_reset(&why);
	/* others' bits, and a parent that cannot be crossed */
	T_ASSERT(chmod(base, 0703) == 0);
	T_EQ_INT(mailbase_usable(base, other, gids, 1, &why), 1);
	T_ASSERT(chmod(tmp, 0700) == 0);
	T_EQ_INT(mailbase_usable(base, other, gids, 1, &why), 0);
	T_ASSERT(strstr(buf_cstr(&why), "pass through") != NULL);
	buf_reset(&why);
	/* root may do anything; a missing base counts as usable */
	T_EQ_INT(mailbase_usable(base, 0, gids, 0, &why), 1);
	T_ASSERT(chmod(tmp, 0755) == 0);
	snprintf(f, sizeof(f), "%s/missing/mail", tmp);
	T_EQ_INT(mailbase_usable(f, other, gids, 1, &why), 1);

	rmdir(base);
	rmdir(tmp);
	buf_free(&why);
}

static const struct test_case cases[] = {
	{"base folder of a template", test_path},
	{"mailbox folder of an address", test_mailbox_path},
	{"setup creates a missing base only", test_setup},
	{"usable by permission bits", test_usable},
	{0},
};

int
main(void)
{
	return test_run(cases);
}
