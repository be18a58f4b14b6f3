/*
 * file_test - mkdir -p: new trees, existing trees, a file in the way;
 * file_fix_at: fixes regular files and folders, never through a symbolic
 * link, a hard link, or into a FIFO.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/file.h"
#include "base/test.h"

static char dir[] = "/tmp/file_test.XXXXXX";

static void
test_new_tree(void)
{
	struct buf why = BUF_INIT, path = BUF_INIT;
	struct stat st;

	buf_printf(&path, "%s/a//b/c/", dir);
	T_EQ_INT(file_mkdirs(buf_cstr(&path), 0750, &why), 0);
	buf_reset(&path);
	buf_printf(&path, "%s/a/b/c", dir);
	T_EQ_INT(stat(buf_cstr(&path), &st), 0);
	T_ASSERT(S_ISDIR(st.st_mode));
	T_EQ_INT(file_mkdirs(buf_cstr(&path), 0750, &why), 0);
	buf_free(&path);
	buf_free(&why);
}

static void
test_file_in_the_way(void)
{
	struct buf why = BUF_INIT, path = BUF_INIT;
	int fd;

	buf_printf(&path, "%s/file", dir);
	fd = open(buf_cstr(&path), O_CREAT | O_WRONLY, 0600);
	T_ASSERT(fd >= 0);
	close(fd);
	T_EQ_INT(file_mkdirs(buf_cstr(&path), 0700, &why), -1);
	buf_puts(&path, "/below");
	T_EQ_INT(file_mkdirs(buf_cstr(&path), 0700, &why), -1);
	T_ASSERT(why.len > 0);
	buf_free(&path);
	buf_free(&why);
}


/* mode_of - permission bits of path (lstat), -1 if it is missing */
static int
mode_of(const char *path)
{
	struct stat st;

	return lstat(path, &st) < 0 ? -1 : (int)(st.st_mode & 07777);
}

/* fix_dir - a fresh folder "fix" with a 0644 file "target" in it */
static int
fix_dir(char *path, size_t size)
{
	int fd;

	snprintf(path, size, "%s/fix", dir);
	if (mkdir(path, 0755) < 0)
		return -1;
	snprintf(path, size, "%s/fix/target", dir);
	if ((fd = open(path, O_CREAT | O_WRONLY, 0644)) < 0)
		return -1;
	(void)close(fd);
	(void)chmod(path, 0644);
	snprintf(path, size, "%s/fix", dir);
	return open(path, O_RDONLY | O_DIRECTORY);
}

/* unfix_dir - remove what fix_dir and the cases made */
static void
unfix_dir(int dfd)
{
	static const char *const names[] = {"target", "link", "hard", "fifo",
	    "sub", NULL};
	char path[256];

	for (int i = 0; names[i] != NULL; i++) {
		if (unlinkat(dfd, names[i], 0) < 0)
			(void)unlinkat(dfd, names[i], AT_REMOVEDIR);
	}
	(void)close(dfd);
	snprintf(path, sizeof(path), "%s/fix", dir);
	(void)rmdir(path);
}

static void
test_fix_regular(void)
{
	struct file_owner want = {(uid_t)-1, (gid_t)-1, 07777, 0600};
	struct buf why = BUF_INIT;
	char path[256];
	int dfd = fix_dir(path, sizeof(path)), fd = -1;

	T_ASSERT(dfd >= 0);
	T_EQ_INT(file_fix_at(dfd, "target", S_IFREG, &want, &fd, &why), 1);
	T_ASSERT(fd >= 0);
	close(fd);
	snprintf(path, sizeof(path), "%s/fix/target", dir);
	T_EQ_INT(mode_of(path), 0600);
	/* adding bits keeps the others */
	want.clear = 0;
	want.set = 0040;
	T_EQ_INT(file_fix_at(dfd, "target", S_IFREG, &want, NULL, &why), 1);
	T_EQ_INT(mode_of(path), 0640);
	/* missing: 0, nothing said */
	T_EQ_INT(file_fix_at(dfd, "nothing", S_IFREG, &want, NULL, &why), 0);
	T_EQ_INT(why.len, 0);
	/* a folder */
	T_EQ_INT(mkdirat(dfd, "sub", 0755), 0);
	want.clear = 07777;
	want.set = 0700;
	T_EQ_INT(file_fix_at(dfd, "sub", S_IFDIR, &want, NULL, &why), 1);
	snprintf(path, sizeof(path), "%s/fix/sub", dir);
	T_EQ_INT(mode_of(path), 0700);
	/* the wrong type */
	T_EQ_INT(file_fix_at(dfd, "sub", S_IFREG, &want, NULL, &why), -1);
	T_ASSERT(strstr(why.data, "not a regular file") != NULL);
	unfix_dir(dfd);
	buf_free(&why);
}

static void
test_fix_refuses_links(void)
{
	struct file_owner want = {(uid_t)-1, (gid_t)-1, 07777, 0600};
	struct buf why = BUF_INIT;
	char path[256], target[256];
	int dfd = fix_dir(path, sizeof(path)), fd = 7;

	T_ASSERT(dfd >= 0);
	snprintf(target, sizeof(target), "%s/fix/target", dir);
	/* a symbolic link to a file, and to a folder */
	T_EQ_INT(symlinkat(target, dfd, "link"), 0);
	T_EQ_INT(file_fix_at(dfd, "link", S_IFREG, &want, &fd, &why), -1);
	T_EQ_INT(fd, -1);
	T_ASSERT(strstr(why.data, "symbolic link") != NULL);
	T_EQ_INT(mode_of(target), 0644);
	T_EQ_INT(unlinkat(dfd, "link", 0), 0);
	T_EQ_INT(symlinkat(dir, dfd, "link"), 0);
	want.set = 0711;
	buf_reset(&why);
	T_EQ_INT(file_fix_at(dfd, "link", S_IFDIR, &want, &fd, &why), -1);
	T_ASSERT(why.len > 0);
	T_EQ_INT(mode_of(dir), 0700);
	want.set = 0600;
	/* a hard link: the file has another name somewhere */
	T_EQ_INT(linkat(AT_FDCWD, target, dfd, "hard", 0), 0);
	buf_reset(&why);
	T_EQ_INT(file_fix_at(dfd, "hard", S_IFREG, &want, NULL, &why), -1);
	T_ASSERT(strstr(why.data, "2 links") != NULL);
	T_EQ_INT(mode_of(target), 0644);
	/* a FIFO is neither opened for long nor changed */
	T_EQ_INT(mkfifoat(dfd, "fifo", 0644), 0);
	buf_reset(&why);
	T_EQ_INT(file_fix_at(dfd, "fifo", S_IFREG, &want, NULL, &why), -1);
	snprintf(path, sizeof(path), "%s/fix/fifo", dir);
	T_EQ_INT(mode_of(path), 0644);
	unfix_dir(dfd);
	buf_free(&why);
}

static const struct test_case cases[] = {
	{"a new tree is made, an existing one is fine", test_new_tree},
	{"a file in the way fails", test_file_in_the_way},
	{"file_fix_at fixes files and folders", test_fix_regular},
	{"file_fix_at refuses links and FIFOs", test_fix_refuses_links},
	{0},
};

int
main(void)
{
	char cmd[128];
	int rc;

	if (mkdtemp(dir) == NULL)
		abort();
	rc = test_run(cases);
	snprintf(cmd, sizeof(cmd), "%s/file", dir);
	unlink(cmd);
	snprintf(cmd, sizeof(cmd), "%s/a/b/c", dir);
	rmdir(cmd);
	snprintf(cmd, sizeof(cmd), "%s/a/b", dir);
	rmdir(cmd);
	snprintf(cmd, sizeof(cmd), "%s/a", dir);
	rmdir(cmd);
	rmdir(dir);
	return rc;
}
