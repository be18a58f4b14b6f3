/*
 * spool_test - spool folders, path names, directory sync, free space.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/test.h"
#include "mail/qid.h"
#include "mail/spool.h"

static const char digits[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/* is_dir_0700 - path is a real folder with mode 0700 */
static bool
is_dir_0700(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 && S_ISDIR(st.st_mode) &&
	    (st.st_mode & 07777) == 0700;
}

/* rm_spool - remove what spool_setup made under base */
static void
rm_spool(const char *base)
{
	char p[512];

	for (const char *d = digits; *d; d++) {
		snprintf(p, sizeof(p), "%s/deferred/%c", base, *d);
		rmdir(p);
	}
	for (const char *const *f = spool_folders; *f; f++) {
		snprintf(p, sizeof(p), "%s/%s", base, *f);
		rmdir(p);
	}
	rmdir(base);
}

static void
test_setup(void)
{
	char tmp[] = "/tmp/spool_test.XXXXXX", spool[128], p[256];
	struct buf why = BUF_INIT;
	int n = 0;

	T_ASSERT(mkdtemp(tmp) != NULL);
	snprintf(spool, sizeof(spool), "%s/spool", tmp);
	T_EQ_INT(spool_setup(spool, (uid_t)-1, (gid_t)-1, &why), 0);
	T_ASSERT(is_dir_0700(spool));
	for (const char *const *f = spool_folders; *f; f++, n++) {
		snprintf(p, sizeof(p), "%s/%s", spool, *f);
		if (!is_dir_0700(p))
			fprintf(stderr, "  %s\n", p);
		T_ASSERT(is_dir_0700(p));
	}
	T_EQ_INT(n, 6);
	/* no maildrop/: sendmail submits through smtpd */
	snprintf(p, sizeof(p), "%s/maildrop", spool);
	T_ASSERT(access(p, F_OK) < 0);
	for (const char *d = digits; *d; d++) {
		snprintf(p, sizeof(p), "%s/deferred/%c", spool, *d);
		T_ASSERT(is_dir_0700(p));
	}
	/* again: existing folders are kept, a loose mode is fixed */
	snprintf(p, sizeof(p), "%s/private", spool);
	T_ASSERT(chmod(p, 0755) == 0);
	snprintf(p, sizeof(p), "%s/incoming/keep", spool);
	T_ASSERT(mkdir(p, 0700) == 0);
	T_EQ_INT(spool_setup(spool, getuid(), getgid(), &why), 0);
	T_ASSERT(is_dir_0700(p));
	rmdir(p);
	snprintf(p, sizeof(p), "%s/private", spool);
	T_ASSERT(is_dir_0700(p));
	/* a folder that is a file or a symlink is refused */
	snprintf(p, sizeof(p), "%s/hold", spool);
	T_ASSERT(rmdir(p) == 0);
	T_ASSERT(symlink("/tmp", p) == 0);
	buf_reset(&why);
	T_EQ_INT(spool_setup(spool, (uid_t)-1, (gid_t)-1, &why), -1);
	T_ASSERT(strstr(why.data, "not a folder") != NULL);
	T_ASSERT(unlink(p) == 0);
	T_EQ_INT(spool_setup(spool, (uid_t)-1, (gid_t)-1, &why), 0);
	/* no parent */
	buf_reset(&why);
	snprintf(p, sizeof(p), "%s/no/such", tmp);
	T_EQ_INT(spool_setup(p, (uid_t)-1, (gid_t)-1, &why), -1);
	T_ASSERT(strstr(why.data, "mkdir") != NULL);
	rm_spool(spool);
	T_EQ_INT(rmdir(tmp), 0);	/* everything made was removed */
	buf_free(&why);
}

static void
test_paths(void)
{
	struct buf out = BUF_INIT;
	char qid[QID_SIZE], want[128];

	buf_set(&out, "junk");
	spool_path(&out, "/var/spool/herald", SPOOL_INCOMING,
	    "0123456789ABCDEFG");
	T_EQ_STR(out.data, "/var/spool/herald/incoming/0123456789ABCDEFG");
	spool_path(&out, "/s", SPOOL_DEFERRED, "0123456789ABCDEFG");
	T_EQ_STR(out.data, "/s/deferred/G/0123456789ABCDEFG");
	spool_path(&out, "/s", SPOOL_CORRUPT, "0123456789ABCDEFZ");
	T_EQ_STR(out.data, "/s/corrupt/0123456789ABCDEFZ");
	qid_new(qid);
	spool_path(&out, "/s", SPOOL_DEFERRED, qid);
	snprintf(want, sizeof(want), "/s/deferred/%c/%s", qid[QID_LEN - 1],
	    qid);
	T_EQ_STR(out.data, want);
	spool_socket_path(&out, "/s", "qmgr");
	T_EQ_STR(out.data, "/s/private/qmgr");
	T_EXPECT_DEATH(spool_path(&out, "/s", SPOOL_ACTIVE, "../../etc/pass"));
	T_EXPECT_DEATH(spool_path(&out, "/s", SPOOL_ACTIVE, ""));
	T_EXPECT_DEATH(spool_path(&out, "/s", SPOOL_DEFERRED,
	    "0123456789ABCDEF/"));
	buf_free(&out);
}

static void
test_sync_and_space(void)
{
	char tmp[] = "/tmp/spool_test.XXXXXX", p[128];
	struct buf why = BUF_INIT;
	long long bytes = -1;

	T_ASSERT(mkdtemp(tmp) != NULL);
	T_EQ_INT(spool_setup(tmp, (uid_t)-1, (gid_t)-1, &why), 0);
	T_EQ_INT(spool_sync_dir(tmp, SPOOL_INCOMING, &why), 0);
	T_EQ_INT(spool_sync_dir(tmp, "deferred/Z", &why), 0);
	T_EQ_INT(spool_sync_dir(tmp, "nonexistent", &why), -1);
	T_ASSERT(strstr(why.data, "nonexistent") != NULL);
	snprintf(p, sizeof(p), "%s/incoming/file", tmp);
	{
		int fd = open(p, O_CREAT | O_WRONLY, 0600);

		T_ASSERT(fd >= 0);
		close(fd);
	}
	T_EQ_INT(spool_sync_dir(tmp, "incoming/file", &why), -1);
	unlink(p);
	T_EQ_INT(spool_free_bytes(tmp, &bytes, &why), 0);
	T_ASSERT(bytes > 0);
	T_EQ_INT(spool_free_bytes("/nonexistent/x", &bytes, &why), -1);
	rm_spool(tmp);
	buf_free(&why);
}

static const struct test_case cases[] = {
	{"setup", test_setup},
	{"paths", test_paths},
	{"sync and free space", test_sync_and_space},
	{0},
};

int
main(void)
{
	return test_run(cases);
}
