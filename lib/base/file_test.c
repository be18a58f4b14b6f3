/*
 * file_test - mkdir -p: new trees, existing trees, a file in the way.
 */
#include <fcntl.h>
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

static const struct test_case cases[] = {
	{"a new tree is made, an existing one is fine", test_new_tree},
	{"a file in the way fails", test_file_in_the_way},
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
