/*
 * heraldctl - the one command an admin uses to run herald.
 *
 * SYNOPSIS
 *	heraldctl [-c FILE] [--json] COMMAND [ARGS]
 *
 * DESCRIPTION
 *	Service: start [--foreground], stop, reload, status, check,
 *	config [--changed] [--running] [KEY]. Directory: domain, user,
 *	alias, transport and tls-policy commands edit the LMDB directory
 *	directly (heraldctl is its only writer; services see changes at
 *	their next lookup). Queue: list
 *	and show read the spool; delete, hold, release, flush and requeue
 *	ask qmgr, or change the files when it does not run. Mailbox: list,
 *	status, reindex, create and delete work on a user's mail store as
 *	vmail_user (ctl_mailbox.c). Auth: lockouts and unlock read and
 *	change authd's failure throttling state (ctl_auth.c). DNS:
 *	lookup asks herald's resolver with the dns_* settings (ctl_dns.c).
 *	"heraldctl help" and "--help" at any level print the usage.
 *
 *	Exit status: 0 ok, 1 failed, 2 usage error, 3 herald is not
 *	running.
 *
 *	A herald.conf with an error stops only check, start and reload;
 *	the other commands warn and use the settings master runs with
 *	(ctl_config.c says how, and what happens when it does not run).
 *
 * SECURITY
 *	heraldctl runs as whoever calls it; it needs write access to the
 *	directory and password databases and the control socket (root, or
 *	the user herald runs as in a development instance). Passwords are
 *	read from a terminal without echo or from stdin, never from argv.
 *
 * PROTOCOLS
 *	heraldctl -> master (master.sock): see ctl_service.c.
 *	heraldctl -> qmgr (private/qmgr): see ctl_queue.c.
 *
 * SETTINGS
 *	run_directory, spool_directory, data_directory, daemon_directory,
 *	stop_timeout, tls_cert_file, tls_key_file, mail_location,
 *	herald_user, vmail_user, dns_forwarders, dns_stub_zones,
 *	dns_trust_anchor_file, dns_timeout; "config" prints them all.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/log.h"
#include "ctl.h"

#define CTL_HELP_INDENT 32	/* where summaries start */
#define CTL_HELP_WIDTH 79	/* and where they wrap */

typedef int ctl_run_fn(struct ctl *ctl, const struct ctl_args *a);

/* one command: "GROUP NAME" or just "NAME" */
struct ctl_cmd {
	const char *group;	/* "user", or NULL for a top-level command */
	const char *name;
	const char *args;	/* operands and options, for the usage */
	const char *summary;	/* one line */
	int min, max;		/* operands */
	const struct ctl_opt *opts;
	ctl_run_fn *run;
	enum ctl_conf conf;	/* how it uses herald.conf (ctl.h) */
};

static const struct ctl_opt ctl_opts_start[] = {{"foreground", false},
    {NULL, false}};
static const struct ctl_opt ctl_opts_config[] = {{"changed", false},
    {"running", false}, {NULL, false}};
static const struct ctl_opt ctl_opts_force[] = {{"force", false},
    {NULL, false}};
static const struct ctl_opt ctl_opts_quota[] = {{"quota", true},
    {NULL, false}};
static const struct ctl_opt ctl_opts_import[] = {{"domain", true},
    {"update", false}, {NULL, false}};
static const struct ctl_opt ctl_opts_selector[] = {{"selector", true},
    {NULL, false}};
static const struct ctl_opt ctl_opts_qfilter[] = {{"sender", true},
    {"domain", true}, {NULL, false}};
static const struct ctl_opt ctl_opts_qsel[] = {{"all", false},
    {"sender", true}, {"domain", true}, {NULL, false}};
static const struct ctl_opt ctl_opts_check[] = {{"check", false},
    {NULL, false}};

static const struct ctl_cmd ctl_cmds[] = {
	{NULL, "start", "[--foreground]", "start herald and wait until it "
	    "answers (--foreground: run master in this terminal)", 0, 0,
	    ctl_opts_start, ctl_start, CTL_CONF_STRICT},
	{NULL, "stop", "", "stop herald; sessions get stop_timeout to "
	    "finish", 0, 0, NULL, ctl_stop, CTL_CONF_READS},
	{NULL, "reload", "", "re-read the configuration and replace the "
	    "services (a bad file, or TLS files a service cannot load, keeps "
	    "the old one); empties authd's cache of recent logins", 0, 0,
	    NULL, ctl_reload,
	    CTL_CONF_STRICT},
	{NULL, "status", "", "every service's state, queue counts, users "
	    "over a sending limit and dead or busy remote domains (exit 1 "
	    "if a service is restarting or failing)", 0, 0, NULL, ctl_status,
	    CTL_CONF_READS},
	{NULL, "check", "", "check the configuration and the installation",
	    0, 0, NULL, ctl_check, CTL_CONF_SELF},
	{NULL, "config", "[--changed] [--running] [KEY]", "print the "
	    "effective settings (--changed: only those the file sets; "
	    "--running: those herald runs with)", 0, 1, ctl_opts_config,
	    ctl_config, CTL_CONF_READS},
	{"domain", "add", "DOMAIN", "host a domain", 1, 1, NULL,
	    ctl_domain_add, CTL_CONF_WRITES},
	{"domain", "del", "DOMAIN [--force]", "stop hosting a domain "
	    "(--force: also its users and aliases)", 1, 1, ctl_opts_force,
	    ctl_domain_del, CTL_CONF_WRITES},
	{"domain", "list", "", "hosted domains", 0, 0, NULL, ctl_domain_list,
	    CTL_CONF_READS},
	{"domain", "dns", "DOMAIN [--check]", "every DNS record the domain "
	    "needs (MX, SPF, DKIM, DMARC) in zone-file form; --check: compare "
	    "with what DNS answers (exit 1 if one differs)", 1, 1,
	    ctl_opts_check, ctl_domain_dns, CTL_CONF_READS},
	{"user", "add", "ADDR [--quota SIZE]", "add a user; the password is "
	    "asked on a terminal, else read from the first line of stdin", 1,
	    1, ctl_opts_quota, ctl_user_add, CTL_CONF_WRITES},
	{"user", "del", "ADDR", "delete a user and its password (mail stays)",
	    1, 1, NULL, ctl_user_del, CTL_CONF_WRITES},
	{"user", "list", "[DOMAIN]", "users, of one domain or all", 0, 1,
	    NULL, ctl_user_list, CTL_CONF_READS},
	{"user", "passwd", "ADDR", "set a new password (terminal or stdin)",
	    1, 1, NULL, ctl_user_passwd, CTL_CONF_WRITES},
	{"user", "quota", "ADDR SIZE", "set the quota: 500M, 2G, 0 (none) or "
	    "default", 2, 2, NULL, ctl_user_quota, CTL_CONF_WRITES},
	{"user", "enable", "ADDR", "let a disabled user receive mail and log "
	    "in again", 1, 1, NULL, ctl_user_enable, CTL_CONF_WRITES},
	{"user", "disable", "ADDR", "refuse mail and logins for a user", 1, 1,
	    NULL, ctl_user_disable, CTL_CONF_WRITES},
	{"user", "import", "FILE [--domain D] [--update]", "add the users of a "
	    "Dovecot passwd-file (\"-\": stdin) with their SHA512-CRYPT, "
	    "bcrypt or yescrypt hashes; --update: also replace passwords of "
	    "existing users", 1, 1, ctl_opts_import, ctl_user_import, CTL_CONF_WRITES},
	{"alias", "add", "ADDR TARGET...", "forward ADDR (\"@domain\": "
	    "catch-all) to one or more addresses; a target in another domain "
	    "gets a copy sent from an SRS address of srs_domain", 2,
	    CTL_ARGS_MAX, NULL,
	    ctl_alias_add, CTL_CONF_WRITES},
	{"alias", "del", "ADDR [TARGET]", "remove one target, or the whole "
	    "alias", 1, 2, NULL, ctl_alias_del, CTL_CONF_WRITES},
	{"alias", "list", "[DOMAIN]", "aliases, of one domain or all", 0, 1,
	    NULL, ctl_alias_list, CTL_CONF_READS},
	{"transport", "add", "DOMAIN NEXTHOP", "send DOMAIN's mail to NEXTHOP "
	    "instead of its MX hosts: [HOST]:PORT or [HOST] (that host, no MX "
	    "lookup), HOST:PORT or HOST (HOST's MX hosts); overrides "
	    "relayhost; not for hosted domains", 2, 2, NULL,
	    ctl_transport_add, CTL_CONF_WRITES},
	{"transport", "del", "DOMAIN", "DOMAIN's mail goes by relayhost or "
	    "MX again", 1, 1, NULL, ctl_transport_del, CTL_CONF_WRITES},
	{"transport", "list", "", "every transport", 0, 0, NULL,
	    ctl_transport_list, CTL_CONF_READS},
	{"tls-policy", "set", "DOMAIN LEVEL", "TLS for mail to DOMAIN, over "
	    "smtp_tls_security_level: none, may, encrypt (TLS or defer), "
	    "verify (and a certificate that chains to a trusted CA and names "
	    "the host), dane (DANE, RFC 7672: a certificate matching the "
	    "host's DNSSEC-secure TLSA records)", 2, 2,
	    NULL, ctl_tls_policy_set, CTL_CONF_WRITES},
	{"tls-policy", "del", "DOMAIN", "DOMAIN follows "
	    "smtp_tls_security_level again", 1, 1, NULL, ctl_tls_policy_del,
	    CTL_CONF_WRITES},
	{"tls-policy", "list", "", "every TLS policy", 0, 0, NULL,
	    ctl_tls_policy_list, CTL_CONF_READS},
	{"queue", "list", "[--sender ADDR] [--domain DOMAIN]", "messages in "
	    "the queue (or those from ADDR, \"<>\" for bounces, and with a "
	    "recipient in DOMAIN); deferred recipients with their last error "
	    "and next attempt", 0, 0, ctl_opts_qfilter, ctl_queue_list,
	    CTL_CONF_READS},
	{"queue", "show", "QID", "envelope, recipients and header of a "
	    "message", 1, 1, NULL, ctl_queue_show, CTL_CONF_READS},
	{"queue", "delete", "QID... | SELECTION", "remove messages from the "
	    "queue; SELECTION is --all, or --sender ADDR and/or --domain "
	    "DOMAIN as for queue list", 0, CTL_ARGS_MAX, ctl_opts_qsel,
	    ctl_queue_delete, CTL_CONF_WRITES},
	{"queue", "hold", "QID... | SELECTION", "keep messages from delivery "
	    "until released", 0, CTL_ARGS_MAX, ctl_opts_qsel, ctl_queue_hold,
	    CTL_CONF_WRITES},
	{"queue", "release", "QID... | SELECTION", "deliver held messages now",
	    0, CTL_ARGS_MAX, ctl_opts_qsel, ctl_queue_release,
	    CTL_CONF_WRITES},
	{"queue", "flush", "[QID... | SELECTION]", "retry deferred messages "
	    "now: every one (and every dead remote domain), or those named "
	    "or selected (and their dead remote domains)", 0, CTL_ARGS_MAX,
	    ctl_opts_qsel, ctl_queue_flush, CTL_CONF_WRITES},
	{"queue", "requeue", "QID... | SELECTION", "route messages anew from "
	    "the current domains, transports, TLS policies and relayhost "
	    "and try their pending recipients now, their dead remote "
	    "domains too (as postsuper -r); delivered and bounced "
	    "recipients, arrival time and delay warnings stay; held "
	    "messages stay held", 0, CTL_ARGS_MAX, ctl_opts_qsel,
	    ctl_queue_requeue, CTL_CONF_WRITES},
	{"auth", "lockouts", "", "client addresses and accounts locked out "
	    "after failed logins, with when each lockout ends", 0, 0, NULL,
	    ctl_auth_lockouts, CTL_CONF_READS},
	{"auth", "unlock", "ADDR|IP|PREFIX", "forget the failed logins and "
	    "lift the lockouts of an account, a client address or a prefix "
	    "(192.0.2.0/24)", 1, 1, NULL, ctl_auth_unlock, CTL_CONF_WRITES},
	{"mailbox", "list", "ADDR", "a user's folders: messages, unseen, size, "
	    "special-use", 1, 1, NULL, ctl_mailbox_list, CTL_CONF_WRITES},
	{"mailbox", "status", "ADDR [FOLDER]", "UIDVALIDITY, UIDNEXT, "
	    "HIGHESTMODSEQ and counts of a folder (default INBOX)", 1, 2,
	    NULL, ctl_mailbox_status, CTL_CONF_WRITES},
	{"mailbox", "reindex", "ADDR", "rebuild the mail index from the "
	    "Maildir, keeping UIDs", 1, 1, NULL, ctl_mailbox_reindex,
	    CTL_CONF_WRITES},
	{"mailbox", "create", "ADDR FOLDER", "create a folder", 2, 2, NULL,
	    ctl_mailbox_create, CTL_CONF_WRITES},
	{"mailbox", "delete", "ADDR FOLDER [--force]", "delete a folder "
	    "(--force: also when it holds messages; never INBOX)", 2, 2,
	    ctl_opts_force, ctl_mailbox_delete, CTL_CONF_WRITES},
	{"dns", "lookup", "TYPE NAME", "what herald's resolver answers "
	    "(A, AAAA, MX, TXT, TLSA, PTR; PTR takes an address) and "
	    "whether DNSSEC made it secure, insecure or bogus", 2, 2, NULL,
	    ctl_dns_lookup, CTL_CONF_READS},
	{"dkim", "keygen", "DOMAIN [--selector S]", "make a domain's DKIM "
	    "keys (Ed25519 and RSA-2048; selector default heraldYYYYMM) and "
	    "print the TXT records to publish", 1, 1, ctl_opts_selector,
	    ctl_dkim_keygen, CTL_CONF_WRITES},
	{"dkim", "show", "DOMAIN", "the DKIM TXT records of every selector "
	    "of a domain", 1, 1, NULL, ctl_dkim_show, CTL_CONF_READS},
	{"dkim", "rotate", "DOMAIN [--selector S]", "new keys under a new "
	    "selector that signs from now on; the old selector stays until "
	    "removed", 1, 1, ctl_opts_selector, ctl_dkim_rotate,
	    CTL_CONF_WRITES},
	{"dkim", "remove", "DOMAIN SELECTOR", "delete an old selector's "
	    "keys (never the one that signs)", 2, 2, NULL, ctl_dkim_remove,
	    CTL_CONF_WRITES},
	{"dkim", "sign", "DOMAIN", "sign the message on stdin with the "
	    "domain's keys; the signed message to stdout", 1, 1, NULL,
	    ctl_dkim_sign, CTL_CONF_READS},
	{"dkim", "verify", "", "check the DKIM signatures of the message on "
	    "stdin with the keys DNS gives (exit 0 if one passes)", 0, 0,
	    NULL, ctl_dkim_verify, CTL_CONF_READS},
	{NULL, NULL, NULL, NULL, 0, 0, NULL, NULL, CTL_CONF_WRITES},
};

static const char *const ctl_groups[] = {"domain", "user", "alias",
    "transport", "tls-policy", "queue", "mailbox", "auth", "dns", "dkim",
    NULL};
/* their headings in the usage, in the same order */
static const char *const ctl_group_titles[] = {"Domain", "User", "Alias",
    "Transport (other domains' next hop)", "TLS policy (per destination)",
    "Queue", "Mailbox", "Auth", "DNS", "DKIM", NULL};
_Static_assert(sizeof(ctl_groups) == sizeof(ctl_group_titles),
    "a heading for every command group");

/* ctl_is_group - true if word names a command group */
static bool
ctl_is_group(const char *word)
{
	for (int i = 0; ctl_groups[i] != NULL; i++)
		if (strcmp(word, ctl_groups[i]) == 0)
			return true;
	return false;
}

/* ctl_is_help - "help", "-h" or "--help" */
static bool
ctl_is_help(const char *word)
{
	return strcmp(word, "help") == 0 || strcmp(word, "-h") == 0 ||
	    strcmp(word, "--help") == 0;
}

/* ctl_cmd_line - "  user add ADDR [--quota SIZE]" padded, and summary */
static void
ctl_cmd_line(FILE *fp, const struct ctl_cmd *c)
{
	struct buf line = BUF_INIT;

	size_t col;

	buf_printf(&line, "  %s%s%s%s%s", c->group ? c->group : "",
	    c->group ? " " : "", c->name, *c->args ? " " : "", c->args);
	if (line.len < CTL_HELP_INDENT) {
		fprintf(fp, "%-*s", CTL_HELP_INDENT, buf_cstr(&line));
	} else {
		fprintf(fp, "%s\n%-*s", buf_cstr(&line), CTL_HELP_INDENT, "");
	}
	/* the summary, wrapped at CTL_HELP_WIDTH columns */
	col = CTL_HELP_INDENT;
	for (const char *p = c->summary; *p;) {
		size_t n = strcspn(p, " ");

		if (col > CTL_HELP_INDENT && col + 1 + n > CTL_HELP_WIDTH) {
			fprintf(fp, "\n%-*s", CTL_HELP_INDENT, "");
			col = CTL_HELP_INDENT;
		} else if (col > CTL_HELP_INDENT) {
			fputc(' ', fp);
			col++;
		}
		fprintf(fp, "%.*s", (int)n, p);
		col += n;
		p += n;
		while (*p == ' ')
			p++;
	}
	fputc('\n', fp);
	buf_free(&line);
}

/* ctl_usage - the whole usage (group NULL) or one group's */
static void
ctl_usage(FILE *fp, const char *group)
{
	if (group == NULL) {
		fprintf(fp, "usage: heraldctl [-c FILE] [--json] COMMAND "
		    "[ARGS]\n\nService:\n");
		for (const struct ctl_cmd *c = ctl_cmds; c->name; c++)
			if (c->group == NULL)
				ctl_cmd_line(fp, c);
	}
	for (int g = 0; ctl_groups[g] != NULL; g++) {
		if (group != NULL && strcmp(group, ctl_groups[g]) != 0)
			continue;
		if (group == NULL)
			fprintf(fp, "\n%s:\n", ctl_group_titles[g]);
		else
			fprintf(fp, "usage: heraldctl [-c FILE] [--json] %s "
			    "COMMAND [ARGS]\n\n", group);
		for (const struct ctl_cmd *c = ctl_cmds; c->name; c++)
			if (c->group && strcmp(c->group, ctl_groups[g]) == 0)
				ctl_cmd_line(fp, c);
	}
	if (group != NULL)
		return;
	fprintf(fp,
	    "\nOptions (before the command):\n"
	    "  -c FILE      configuration file (default $HERALD_CONF,\n"
	    "               else %s)\n"
	    "  --json       machine-readable output\n"
	    "  -h, --help   this text; \"heraldctl COMMAND --help\" for one "
	    "command\n"
	    "  --version    the version\n"
	    "\nAn address is local@domain; \"@domain\" is a domain's "
	    "catch-all alias.\n"
	    "Sizes take K, M, G suffixes (powers of 1024).\n"
	    "\nWhen the file has an error, only check, start and reload "
	    "stop at it; the\nother commands warn and use the settings herald "
	    "is running with, else the\nbuilt-in defaults and the good lines "
	    "(then commands that change things\nrefuse). stop also works from "
	    "master.pid when the control socket does not.\n"
	    "\nExit status: 0 ok, 1 failed, 2 usage error, 3 herald is not "
	    "running.\n", HERALD_CONFIG_FILE);
}

/* ctl_cmd_usage - the usage of one command */
static void
ctl_cmd_usage(FILE *fp, const struct ctl_cmd *c, bool full)
{
	fprintf(fp, "usage: heraldctl [-c FILE] [--json] %s%s%s%s%s\n",
	    c->group ? c->group : "", c->group ? " " : "", c->name,
	    *c->args ? " " : "", c->args);
	if (full)
		fprintf(fp, "\n%s\n", c->summary);
}

/* ctl_bad_usage - a short usage on stderr; exit 2 */
static int
ctl_bad_usage(const char *what, const char *group)
{
	if (what != NULL)
		ctl_error("%s", what);
	if (group != NULL)
		fprintf(stderr, "usage: heraldctl [-c FILE] [--json] %s COMMAND "
		    "[ARGS]\nTry \"heraldctl %s --help\".\n", group, group);
	else
		fprintf(stderr, "usage: heraldctl [-c FILE] [--json] COMMAND "
		    "[ARGS]\nTry \"heraldctl --help\".\n");
	return CTL_EXIT_USAGE;
}

/* ctl_find - the command group/name, or NULL */
static const struct ctl_cmd *
ctl_find(const char *group, const char *name)
{
	for (const struct ctl_cmd *c = ctl_cmds; c->name; c++) {
		if ((c->group == NULL) != (group == NULL))
			continue;
		if (group != NULL && strcmp(c->group, group) != 0)
			continue;
		if (strcmp(c->name, name) == 0)
			return c;
	}
	return NULL;
}

/* ctl_global_options - -c FILE, --json, --help, --version; the index of
 * the command word, or -1 with the exit code in *exit_r */
static int
ctl_global_options(int argc, char **argv, struct ctl *ctl, int *exit_r)
{
	int i;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *arg = argv[i];

		if (strcmp(arg, "--") == 0)
			return i + 1;
		if (strcmp(arg, "-c") == 0 || strcmp(arg, "--config") == 0) {
			if (i + 1 >= argc) {
				*exit_r = ctl_bad_usage("option -c needs a "
				    "file", NULL);
				return -1;
			}
			ctl->config_arg = argv[++i];
		} else if (strncmp(arg, "-c", 2) == 0) {
			ctl->config_arg = arg + 2;
		} else if (strncmp(arg, "--config=", 9) == 0) {
			ctl->config_arg = arg + 9;
		} else if (strcmp(arg, "--json") == 0) {
			ctl->json = true;
		} else if (strcmp(arg, "-h") == 0 ||
		    strcmp(arg, "--help") == 0) {
			ctl_usage(stdout, NULL);
			*exit_r = CTL_EXIT_OK;
			return -1;
		} else if (strcmp(arg, "--version") == 0) {
			printf("heraldctl (herald) %s\n", HERALD_VERSION);
			*exit_r = CTL_EXIT_OK;
			return -1;
		} else {
			struct buf why = BUF_INIT;

			buf_printf(&why, "unknown option %s", arg);
			*exit_r = ctl_bad_usage(buf_cstr(&why), NULL);
			buf_free(&why);
			return -1;
		}
	}
	return i;
}

/* ctl_help - "heraldctl help [GROUP [COMMAND]]" */
static int
ctl_help(int argc, char **argv)
{
	const struct ctl_cmd *c;

	if (argc == 0) {
		ctl_usage(stdout, NULL);
		return CTL_EXIT_OK;
	}
	if (ctl_is_group(argv[0])) {
		if (argc > 1 && (c = ctl_find(argv[0], argv[1])) != NULL)
			ctl_cmd_usage(stdout, c, true);
		else
			ctl_usage(stdout, argv[0]);
		return CTL_EXIT_OK;
	}
	if ((c = ctl_find(NULL, argv[0])) != NULL) {
		ctl_cmd_usage(stdout, c, true);
		return CTL_EXIT_OK;
	}
	return ctl_bad_usage("no such command", NULL);
}

int
main(int argc, char **argv)
{
	struct ctl ctl = {NULL, NULL, false};
	struct buf why = BUF_INIT;
	const struct ctl_cmd *c;
	const char *group = NULL;
	struct ctl_args a;
	int i, rc = CTL_EXIT_OK;

	msg_init("heraldctl", LOG_DEST_STDERR);
	if ((i = ctl_global_options(argc, argv, &ctl, &rc)) < 0)
		return rc;
	if (i >= argc)
		return ctl_bad_usage("no command", NULL);
	if (strcmp(argv[i], "help") == 0)
		return ctl_help(argc - i - 1, argv + i + 1);
	if (ctl_is_group(argv[i])) {
		group = argv[i++];
		if (i >= argc)
			return ctl_bad_usage("missing command", group);
		if (ctl_is_help(argv[i])) {
			ctl_usage(stdout, group);
			return CTL_EXIT_OK;
		}
	}
	if ((c = ctl_find(group, argv[i])) == NULL) {
		buf_printf(&why, "unknown command \"%s%s%s\"", group ?
		    group : "", group ? " " : "", argv[i]);
		rc = ctl_bad_usage(buf_cstr(&why), group);
		buf_free(&why);
		return rc;
	}
	i++;
	switch (ctl_args_parse(argc - i, argv + i, c->opts, c->min, c->max,
	    &a, &why)) {
	case CTL_ARGS_HELP:
		ctl_cmd_usage(stdout, c, true);
		buf_free(&why);
		return CTL_EXIT_OK;
	case CTL_ARGS_BAD:
		ctl_error("%s", buf_cstr(&why));
		ctl_cmd_usage(stderr, c, false);
		buf_free(&why);
		return CTL_EXIT_USAGE;
	}
	ctl.json |= a.json;
	if (c->conf != CTL_CONF_SELF && ctl_config_load_as(&ctl, c->conf,
	    &why) < 0) {
		/* master was not asked, so its configuration stays */
		ctl_error("%s%s%s", c->run == ctl_reload ? "reload failed: " :
		    "", buf_cstr(&why), c->run == ctl_reload ?
		    "; the running configuration stays" : "");
		buf_free(&why);
		return CTL_EXIT_FAIL;
	}
	buf_free(&why);
	rc = c->run(&ctl, &a);
	if (fflush(stdout) == EOF && rc == CTL_EXIT_OK)
		rc = CTL_EXIT_FAIL;
	return rc;
}
