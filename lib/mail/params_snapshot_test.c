/*
 * params_snapshot_test - a failed reload must leave the running
 * configuration exactly as it was: values, texts and changed flags.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/test.h"
#include "mail/params.h"

static char dir[] = "/tmp/params_snapshot_test.XXXXXX";

/* write_conf - a configuration file in dir; its path */
static const char *
write_conf(const char *name, const char *text)
{
	static char path[256];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((fp = fopen(path, "w")) == NULL)
		return NULL;
	fputs(text, fp);
	fclose(fp);
	return path;
}

static const char conf_a[] =
    "spool_directory = spool-a\n"
    "smtpd_listen = 127.0.0.1:2525, 127.0.0.1:2526\n"
    "smtpd_workers = 3\n"
    "quota_exceeded_bounce = no\n"
    "stop_timeout = 1m\n";

static const char conf_b[] =
    "spool_directory = /elsewhere\n"
    "smtpd_listen =\n"
    "local_processes = 9\n"
    "quota_exceeded_bounce = yes\n";

/* check_a - the settings of conf_a are in force */
static void
check_a(void)
{
	struct cfg_entry *e;

	T_ASSERT(strstr(var_spool_directory, "/spool-a") != NULL);
	T_ASSERT(var_spool_directory[0] == '/');
	T_EQ_STR(var_smtpd_listen, "127.0.0.1:2525, 127.0.0.1:2526");
	T_EQ_INT(var_smtpd_workers, 3);
	T_EQ_INT(var_local_processes, 4);
	T_EQ_INT(var_quota_exceeded_bounce, 0);
	T_EQ_INT(var_stop_timeout, 60);
	T_ASSERT((e = cfg_find(params_table, "spool_directory")) != NULL);
	T_EQ_STR(e->text, "spool-a");
	T_EQ_INT(e->changed, 1);
	T_ASSERT((e = cfg_find(params_table, "local_processes")) != NULL);
	T_EQ_STR(e->text, "4");
	T_EQ_INT(e->changed, 0);
}

static void
test_restore_after_good_load(void)
{
	struct buf why = BUF_INIT;
	struct cfg_snapshot *snap;
	const char *a, *b;

	T_ASSERT((a = write_conf("a.conf", conf_a)) != NULL);
	T_EQ_INT(params_load(a, &why), 0);
	check_a();
	snap = cfg_save(params_table);
	T_ASSERT((b = write_conf("b.conf", conf_b)) != NULL);
	T_EQ_INT(params_load(b, &why), 0);
	/* b really is different */
	T_EQ_STR(var_smtpd_listen, "");
	T_EQ_INT(var_local_processes, 9);
	cfg_restore(params_table, snap);
	cfg_snapshot_free(&snap);
	T_ASSERT(snap == NULL);
	check_a();
	buf_free(&why);
}

static void
test_restore_after_bad_load(void)
{
	struct buf why = BUF_INIT;
	struct cfg_snapshot *snap;
	const char *a, *bad;

	T_ASSERT((a = write_conf("a.conf", conf_a)) != NULL);
	T_EQ_INT(params_load(a, &why), 0);
	snap = cfg_save(params_table);
	/* params_load resets to defaults before it fails */
	T_ASSERT((bad = write_conf("bad.conf", "smtpd_workers = many\n")) !=
	    NULL);
	T_EQ_INT(params_load(bad, &why), -1);
	T_ASSERT(why.len > 0);
	cfg_restore(params_table, snap);
	cfg_snapshot_free(&snap);
	check_a();
	/* a snapshot can be taken and restored twice */
	snap = cfg_save(params_table);
	cfg_restore(params_table, snap);
	cfg_restore(params_table, snap);
	cfg_snapshot_free(&snap);
	check_a();
	buf_free(&why);
}

static const struct test_case cases[] = {
	{"restore after a good load", test_restore_after_good_load},
	{"restore after a failed load", test_restore_after_bad_load},
	{NULL, NULL},
};

int
main(void)
{
	char cmd[128];
	int rc;

	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	rc = test_run(cases);
	snprintf(cmd, sizeof(cmd), "%s/a.conf", dir);
	(void)unlink(cmd);
	snprintf(cmd, sizeof(cmd), "%s/b.conf", dir);
	(void)unlink(cmd);
	snprintf(cmd, sizeof(cmd), "%s/bad.conf", dir);
	(void)unlink(cmd);
	(void)rmdir(dir);
	return rc;
}
