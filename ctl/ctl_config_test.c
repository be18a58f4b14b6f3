/*
 * ctl_config_test - what heraldctl keeps of a herald.conf with an error:
 * the entries that are good on their own, so that it can find master.
 */
#include <string.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/test.h"
#include "mail/params.h"
#include "ctl.h"

/* salvage - ctl_config_salvage of text, as a C string in out */
static const char *
salvage(const char *text, struct buf *out)
{
	buf_reset(out);
	ctl_config_salvage("test.conf", text, strlen(text), out);
	return buf_cstr(out);
}

static void
test_salvage_drops_bad_entries(void)
{
	struct buf out = BUF_INIT;

	/* an unknown key, its continuation line with it */
	T_EQ_STR(salvage("run_directory = /srv/run\nsmtpd_tyop = 1\n"
	    "  more\nstop_timeout = 5s\n", &out),
	    "run_directory = /srv/run\nstop_timeout = 5s\n");
	/* a bad value, a line without '=', a continuation without a key */
	T_EQ_STR(salvage("  orphan\nstop_timeout = soon\nno equals\n"
	    "spool_directory = spool\n", &out), "spool_directory = spool\n");
	/* the first of a repeated key */
	T_EQ_STR(salvage("smtpd_banner = one\nsmtpd_banner = two\n", &out),
	    "smtpd_banner = one\n");
	/* a repeat that was bad does not hide the good one after it */
	T_EQ_STR(salvage("stop_timeout = x\nstop_timeout = 9s\n", &out),
	    "stop_timeout = 9s\n");
	/* no key, or a key too long to be one */
	T_EQ_STR(salvage("= 1\n  = 2\nrun_directory = r\n", &out),
	    "run_directory = r\n");
	T_EQ_STR(salvage("run_directory = a\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    " = 1\n", &out), "run_directory = a\n");
	/* a control character spoils only its entry */
	T_EQ_STR(salvage("smtpd_banner = a\001b\nrun_directory = r\n", &out),
	    "run_directory = r\n");
	buf_free(&out);
}

static void
test_salvage_keeps_shape(void)
{
	struct buf out = BUF_INIT;

	/* continuation lines, past comments and blank lines */
	T_EQ_STR(salvage("# c\n\nsmtpd_listen = 127.0.0.1:25,\n# x\n\n"
	    "  127.0.0.2:25\n", &out),
	    "smtpd_listen = 127.0.0.1:25,\n  127.0.0.2:25\n");
	/* no newline at the end; CRLF */
	T_EQ_STR(salvage("run_directory = r", &out), "run_directory = r\n");
	T_EQ_STR(salvage("run_directory = r\r\nbad key = 1\r\n", &out),
	    "run_directory = r\r\n");
	T_EQ_STR(salvage("", &out), "");
	T_EQ_STR(salvage("\n\n# only comments\n", &out), "");
	buf_free(&out);
}

static void
test_salvage_loads(void)
{
	struct buf out = BUF_INIT, why = BUF_INIT;

	/* what comes out is a file params_load_text takes */
	salvage("run_directory = /srv/r\nbad = 1\nstop_timeout = 7s\n"
	    "stop_timeout = 8s\n", &out);
	T_EQ_INT(params_load_text("/nonexistent/herald.conf", out.data,
	    out.len, &why), 0);
	T_EQ_STR(var_run_directory, "/srv/r");
	T_EQ_INT(var_stop_timeout, 7);
	buf_free(&out);
	buf_free(&why);
}

static const struct test_case cases[] = {
	{"bad entries are left out", test_salvage_drops_bad_entries},
	{"good entries keep their lines", test_salvage_keeps_shape},
	{"what is kept loads", test_salvage_loads},
	{NULL, NULL},
};

int
main(void)
{
	return test_run(cases);
}
