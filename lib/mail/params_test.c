/*
 * params_test - herald.conf loading: relative paths, cross-key checks, and
 * a failed reload keeping the running configuration.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/test.h"
#include "mail/params.h"

static char dir[] = "/tmp/params_test.XXXXXX";
static char conf[256];

/* write_conf - replace the test configuration file */
static void
write_conf(const char *text)
{
	FILE *fp = fopen(conf, "w");

	if (fp == NULL || fputs(text, fp) < 0 || fclose(fp) != 0)
		abort();
}

static void
test_relative_paths(void)
{
	struct buf why = BUF_INIT;
	char want[512];

	write_conf("spool_directory = spool\nmyhostname = mx.example.test\n");
	T_EQ_INT(params_load(conf, &why), 0);
	snprintf(want, sizeof(want), "%s/spool", dir);
	T_EQ_STR(var_spool_directory, want);
	T_EQ_STR(var_myhostname, "mx.example.test");
	T_EQ_STR(var_data_directory, "/var/lib/herald");
	buf_free(&why);
}

static void
test_bad_reload_keeps_old(void)
{
	struct buf why = BUF_INIT;

	write_conf("smtpd_banner = first\nmessage_size_limit = 10M\n");
	T_EQ_INT(params_load(conf, &why), 0);
	write_conf("smtpd_banner = second\nno_such_key = 1\n");
	T_EQ_INT(params_load(conf, &why), -1);
	T_ASSERT(strstr(buf_cstr(&why), ":2: unknown key") != NULL);
	T_EQ_STR(var_smtpd_banner, "first");
	T_EQ_INT(var_message_size_limit, 10 * 1024 * 1024);

	buf_reset(&why);
	write_conf("smtpd_banner = third\ntls_cert_file = c.pem\n");
	T_EQ_INT(params_load(conf, &why), -1);
	T_ASSERT(strstr(buf_cstr(&why), "go together") != NULL);
	T_EQ_STR(var_smtpd_banner, "first");
	T_EQ_STR(var_tls_cert_file, "");
	buf_free(&why);
}

static void
test_cross_checks(void)
{
	struct buf why = BUF_INIT;

	write_conf("minimal_backoff_time = 1h\nmaximal_backoff_time = 10m\n");
	T_EQ_INT(params_load(conf, &why), -1);
	T_ASSERT(strstr(buf_cstr(&why), "minimal_backoff_time") != NULL);
	buf_reset(&why);
	write_conf("recipient_delimiter = @\n");
	T_EQ_INT(params_load(conf, &why), -1);
	buf_reset(&why);
	write_conf("myhostname = bad host\n");
	T_EQ_INT(params_load(conf, &why), -1);
	buf_reset(&why);
	/* a message's local recipients must fit one local request (1000) */
	write_conf("smtpd_recipient_limit = 1001\n");
	T_EQ_INT(params_load(conf, &why), -1);
	T_ASSERT(strstr(buf_cstr(&why), "smtpd_recipient_limit") != NULL);
	buf_reset(&why);
	write_conf("smtpd_recipient_limit = 1000\n");
	T_EQ_INT(params_load(conf, &why), 0);
	buf_free(&why);
}

static const struct test_case cases[] = {
	{"relative paths are taken from the config folder", test_relative_paths},
	{"a bad reload keeps the running settings", test_bad_reload_keeps_old},
	{"cross-key and value checks", test_cross_checks},
	{0},
};

int
main(void)
{
	int rc;

	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(conf, sizeof(conf), "%s/herald.conf", dir);
	rc = test_run(cases);
	unlink(conf);
	rmdir(dir);
	return rc;
}
