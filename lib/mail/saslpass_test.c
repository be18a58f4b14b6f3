/*
 * saslpass_test - the smtp_sasl_password_file: lookups by canonical next
 * hop, comments and bad lines, and the modes and owners that are
 * refused (a file others could read is never used).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/mem.h"
#include "base/test.h"
#include "mail/saslpass.h"

static char path[] = "/tmp/herald-saslpass-test-XXXXXX";

/* put - write text to path with mode */
static void
put(const char *text, mode_t mode)
{
	FILE *fp = fopen(path, "w");

	if (fp == NULL || fputs(text, fp) < 0 || fclose(fp) != 0 ||
	    chmod(path, mode) < 0)
		abort();
}

/* test_lookup - the login of a next hop, whatever its spelling there */
static void
test_lookup(void)
{
	struct buf why = BUF_INIT;
	char *user, *pass;

	put("# logins\n\n[Relay.Example]:587 me@x:pa:ss\r\n"
	    "mx.other   other:pw\nbroken-line\n[a]:1 :nouser\n", 0600);
	T_EQ_INT(saslpass_lookup(path, -1, "[relay.example]:587", &user, &pass,
	    &why), 1);
	T_EQ_STR(user, "me@x");
	T_EQ_STR(pass, "pa:ss");
	x_free(&user);
	saslpass_free(&pass);
	T_ASSERT(pass == NULL);
	T_EQ_INT(saslpass_lookup(path, -1, "mx.other", &user, &pass, &why), 1);
	T_EQ_STR(pass, "pw");
	x_free(&user);
	saslpass_free(&pass);
	T_EQ_INT(saslpass_lookup(path, -1, "[relay.example]", &user, &pass,
	    &why), 0);
	T_ASSERT(user == NULL && pass == NULL);
	T_EQ_INT(saslpass_lookup(path, -1, "[a]:1", &user, &pass, &why), 0);
	buf_free(&why);
}

/* test_modes - others could read it: refused, with no password quoted */
static void
test_modes(void)
{
	static const struct {
		mode_t mode;
		bool ok;
	} modes[] = {
		{0600, true}, {0400, true}, {0640, false}, {0604, false},
		{0644, false}, {0660, false}, {0620, false}, {0601, false},
	};
	struct buf why = BUF_INIT;
	struct stat st;
	char *user, *pass;
	int bad = 0;

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		put("[r]:25 u:secret-pw\n", modes[i].mode);
		buf_reset(&why);
		/* 0640 is fine only for root's file in our group; this
		 * file is ours (or, as root, root's in root's group) */
		if (geteuid() == 0 && modes[i].mode == 0640)
			continue;
		T_EQ_INT(saslpass_lookup(path, -1, "[r]:25", &user, &pass, &why),
		    modes[i].ok ? 1 : -1);
		if (modes[i].ok) {
			x_free(&user);
			saslpass_free(&pass);
		} else {
			T_ASSERT(strstr(buf_cstr(&why), "others could read")
			    != NULL);
			T_ASSERT(strstr(buf_cstr(&why), "secret-pw") == NULL);
		}
	}
	/* root's file, group readable: fine for that group only */
	memset(&st, 0, sizeof(st));
	st.st_mode = S_IFREG | 0640;
	st.st_uid = 0;
	st.st_gid = 118;
	T_EQ_INT(saslpass_mode_ok(&st, 110, 118, &why), 0);
	T_EQ_INT(saslpass_mode_ok(&st, 110, 119, &why), -1);
	st.st_uid = 999;	/* somebody else's file */
	st.st_mode = S_IFREG | 0600;
	T_EQ_INT(saslpass_mode_ok(&st, 110, 118, &why), -1);
	st.st_mode = S_IFDIR | 0700;
	st.st_uid = 110;
	T_EQ_INT(saslpass_mode_ok(&st, 110, 118, &why), -1);
	put("[r]:25 u:p\nbad\n# c\n", 0600);
	T_EQ_INT(saslpass_count(path, geteuid(), getegid(), &bad, &why), 1);
	T_EQ_INT(bad, 1);
	buf_free(&why);
}

static const struct test_case cases[] = {
	{"lookup by canonical next hop", test_lookup},
	{"modes and owners", test_modes},
	{0},
};

int
main(void)
{
	int fd = mkstemp(path), rc;

	if (fd < 0)
		return 1;
	(void)close(fd);
	rc = test_run(cases);
	(void)unlink(path);
	return rc;
}
