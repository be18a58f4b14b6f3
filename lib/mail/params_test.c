/*
 * params_test - herald.conf loading: relative paths, cross-key checks, and
 * a failed reload keeping the running configuration.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/config.h"
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

/* load_fails - write text, load it: -1 and why contains want */
static void
load_fails(const char *text, const char *want)
{
	struct buf why = BUF_INIT;

	write_conf(text);
	T_EQ_INT(params_load(conf, &why), -1);
	if (strstr(buf_cstr(&why), want) == NULL)
		fprintf(stderr, "  \"%s\": got \"%s\", want \"%s\"\n", text,
		    buf_cstr(&why), want);
	T_ASSERT(strstr(buf_cstr(&why), want) != NULL);
	buf_free(&why);
}

/*
 * test_listen_values - every *_listen key is checked as master will open
 * it, at load time with file:line: what passes heraldctl check must not
 * fail at the reload.
 */
static void
test_listen_values(void)
{
	static const char *bad[] = {
		"127.0.0.1:99999", "127.0.0.1:0", "127.0.0.1:", "127.0.0.1",
		"127.0.0.1:25x", "bad_host!:25", "-mx.example.test:25",
		"300.1.2.3:25", "[127.0.0.1]:25", "[::1]25", "::1:25",
		":25", "*:25, 127.0.0.1:99999", NULL,
	};
	static const char *good[] = {
		"127.0.0.1:25", "*:25", "[::1]:2525", "mx.example.test:25",
		"localhost:1, 127.0.0.1:65535 [::]:110", "", NULL,
	};
	struct buf why = BUF_INIT;
	char text[512], want[512];
	int keys = 0, rc;

	for (struct cfg_entry *e = params_table; e->name != NULL; e++) {
		size_t n = strlen(e->name);

		if (n < 7 || strcmp(e->name + n - 7, "_listen") != 0)
			continue;
		keys++;
		for (int i = 0; bad[i] != NULL; i++) {
			snprintf(text, sizeof(text), "# x\n%s = %s\n", e->name,
			    bad[i]);
			snprintf(want, sizeof(want), "%s:2: %s: bad address",
			    conf, e->name);
			load_fails(text, want);
		}
		for (int i = 0; good[i] != NULL; i++) {
			snprintf(text, sizeof(text), "%s = %s\n", e->name,
			    good[i]);
			write_conf(text);
			buf_reset(&why);
			rc = params_load(conf, &why);
			if (rc < 0)
				fprintf(stderr, "  %s\n", buf_cstr(&why));
			T_EQ_INT(rc, 0);
		}
	}
	/* smtpd, submission, submissions, pop3d, pop3s, imap, imaps */
	T_EQ_INT(keys, 7);
	load_fails("smtpd_listen = 127.0.0.1:99999\n",
	    "smtpd_listen: bad address \"127.0.0.1:99999\": bad port "
	    "\"99999\" (use 1..65535)");
	load_fails("smtpd_listen = 127.0.0.1:0\n", "bad port \"0\"");
	load_fails("smtpd_listen = bad_host:25\n",
	    "bad host \"bad_host\"");
	buf_free(&why);
}

/* test_one_of - a setting of a few named choices lists them all */
static void
test_one_of(void)
{
	struct buf why = BUF_INIT;

	load_fails("smtpd_sender_login = loose\n", "smtpd_sender_login: "
	    "must be strict, envelope or any, not \"loose\"");
	load_fails("inet_protocols = ipv5\n", "inet_protocols: must be all, "
	    "ipv4 or ipv6, not \"ipv5\"");
	load_fails("auth_plaintext = sometimes\n", "auth_plaintext: must be "
	    "never, loopback or always, not \"sometimes\"");
	write_conf("smtp_tls_security_level = encrypt\n");
	T_EQ_INT(params_load(conf, &why), 0);
	write_conf("smtp_tls_security_level = verify\n");
	T_EQ_INT(params_load(conf, &why), 0);
	write_conf("smtp_tls_security_level = dane\n");
	T_EQ_INT(params_load(conf, &why), 0);
	T_EQ_STR(var_smtp_tls_security_level, "dane");
	load_fails("smtp_tls_security_level = secure\n",
	    "smtp_tls_security_level: must be none, may, encrypt, verify or "
	    "dane, not \"secure\"");
	buf_free(&why);
}

/* test_messages - a duplicate names both lines; a bad size its forms */
static void
test_messages(void)
{
	char want[512];

	snprintf(want, sizeof(want), "%s:7: smtpd_banner set twice: line 3 "
	    "and line 7", conf);
	load_fails("# a\n\nsmtpd_banner = one\n# b\nmyhostname = mx\n\n"
	    "smtpd_banner = two\n", want);
	snprintf(want, sizeof(want), "%s:1: message_size_limit: bad size "
	    "\"10Q\": use a number of bytes with an optional b, k, M, G or "
	    "T suffix", conf);
	load_fails("message_size_limit = 10Q\n", want);
}

static const struct test_case cases[] = {
	{"relative paths are taken from the config folder", test_relative_paths},
	{"a bad reload keeps the running settings", test_bad_reload_keeps_old},
	{"cross-key and value checks", test_cross_checks},
	{"every *_listen key is checked at load", test_listen_values},
	{"duplicate keys and bad sizes say enough", test_messages},
	{"a choice setting names its choices", test_one_of},
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
