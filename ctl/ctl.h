/*
 * ctl - heraldctl's shared declarations.
 *
 * heraldctl.c parses the global options, finds the command in its table
 * and calls the command's function with the parsed arguments. Commands
 * live in one file per group (ctl_service.c: start/stop/reload/status,
 * ctl_domain.c, ctl_user.c, ctl_alias.c, ctl_queue.c, ctl_check.c,
 * ctl_config.c, ctl_auth.c, ctl_transport.c and ctl_tls_policy.c over
 * ctl_map.c). ctl_args.c parses a command's options, ctl_input.c
 * checks what the admin typed (domains, addresses, quotas, passwords),
 * ctl_output.c prints aligned tables and JSON.
 *
 * Output: results to stdout; errors to stderr as "heraldctl: text".
 * Every command returns one of the CTL_EXIT_* codes.
 */
#ifndef CTL_CTL_H
#define CTL_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <time.h>

#include "mail/dir.h"

struct buf;
struct ipc_msg;

/* exit codes */
#define CTL_EXIT_OK 0
#define CTL_EXIT_FAIL 1
#define CTL_EXIT_USAGE 2
#define CTL_EXIT_NOT_RUNNING 3

/* global state of one heraldctl run */
struct ctl {
	const char *config_arg;	/* -c FILE, or NULL */
	const char *config;	/* the file in use (params_config_path) */
	bool json;		/* --json */
};

/* the program name ctl_error prints: "heraldctl", or "sendmail" when
 * the sendmail command (mailq, sendmail -q) runs the queue commands */
extern const char *ctl_progname;

/*
 * ctl_conf - how a command uses herald.conf (heraldctl.c's table). When
 * the file has an error, CTL_CONF_WRITES and CTL_CONF_READS commands
 * warn once on stderr and go on with the settings master runs with;
 * when herald is not running either, CTL_CONF_READS go on with the
 * built-in defaults plus the lines that parsed, and CTL_CONF_WRITES
 * refuse: a broken line may name the folder they would write to.
 */
enum ctl_conf {
	CTL_CONF_WRITES = 0,	/* changes state (the default) */
	CTL_CONF_SELF = 1,	/* loads and reports it itself: check */
	CTL_CONF_STRICT,	/* needs a valid file: start, reload */
	CTL_CONF_READS,		/* only reads, or talks to master */
};

/* ctl_error - "heraldctl: text" on stderr */
void ctl_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * ctl_args - the options and operands of one command.
 *
 * Options may come before, between or after the operands: "--quota 10M",
 * "--quota=10M", "--force". "--" ends the options. "--json" is accepted
 * everywhere; "-h", "--help" and a first operand "help" ask for help.
 */
#define CTL_ARGS_MAX 64		/* operands */
#define CTL_OPTS_MAX 8		/* options a command knows */

struct ctl_opt {
	const char *name;	/* without "--" */
	bool has_value;
};

struct ctl_args {
	const struct ctl_opt *opts;	/* what was allowed, {NULL}-ended */
	int npos;
	const char *pos[CTL_ARGS_MAX];	/* operands in order */
	const char *val[CTL_OPTS_MAX];	/* option values by opts index */
	bool set[CTL_OPTS_MAX];		/* option given */
	bool json;			/* --json seen */
};

#define CTL_ARGS_OK 0
#define CTL_ARGS_HELP 1
#define CTL_ARGS_BAD (-1)

/* ctl_args_parse - parse argv[0..argc) for a command taking between min
 * and max operands; CTL_ARGS_OK, CTL_ARGS_HELP, or CTL_ARGS_BAD (why) */
int ctl_args_parse(int argc, char *const *argv, const struct ctl_opt *opts,
    int min, int max, struct ctl_args *a, struct buf *why);
/* ctl_args_has - true if option name was given */
bool ctl_args_has(const struct ctl_args *a, const char *name);
/* ctl_args_value - value of option name, or NULL */
const char *ctl_args_value(const struct ctl_args *a, const char *name);

/* ctl_input.c: checks of what the admin typed; -1 with why */
#define CTL_PASSWORD_MAX 1024

/* a check of one operand: s normalised into out, or -1 with why */
typedef int ctl_input_fn(const char *s, struct buf *out, struct buf *why);
/* ctl_input_arg - operand s through check into out; -1 after the
 * message (printed with ctl_error) */
int ctl_input_arg(ctl_input_fn *check, const char *s, struct buf *out);

/* ctl_input_domain - a hosted domain name: lowercased into out */
int ctl_input_domain(const char *s, struct buf *out, struct buf *why);
/* ctl_input_address - local@domain, internal form, lowercased into out */
int ctl_input_address(const char *s, struct buf *out, struct buf *why);
/* ctl_input_alias_key - an address or "@domain" (catch-all) */
int ctl_input_alias_key(const char *s, struct buf *out, struct buf *why);
/* ctl_input_quota - "default" = -1, "0"/"none" = 0, else a size */
int ctl_input_quota(const char *s, long long *quota, struct buf *why);
/* ctl_input_password_line - the first line of fd, without its newline */
int ctl_input_password_line(int fd, struct buf *out, struct buf *why);

/* ctl_output.c: tables */
struct ctl_table {
	int ncol;
	char **cells;		/* row-major, header row first */
	size_t nrows;		/* including the header */
	size_t cap;
};

/* ctl_table_init - a table with ncol columns named by head */
void ctl_table_init(struct ctl_table *t, int ncol, const char *const *head);
/* ctl_table_add - append a row of ncol strings (copied) */
void ctl_table_add(struct ctl_table *t, const char *const *row);
/* ctl_table_print - aligned columns, two spaces apart; control
 * characters in cells are shown as '?' */
void ctl_table_print(const struct ctl_table *t, FILE *fp);
void ctl_table_free(struct ctl_table *t);

/* ctl_output.c: JSON, written into a buffer */
#define CTL_JSON_DEPTH 16

struct ctl_json {
	struct buf *out;
	int depth;
	bool first[CTL_JSON_DEPTH];	/* nothing in this level yet */
	bool after_key;
};

void ctl_json_init(struct ctl_json *j, struct buf *out);
/* ctl_json_open / close - '{' or '[' */
void ctl_json_open(struct ctl_json *j, char c);
void ctl_json_close(struct ctl_json *j, char c);
void ctl_json_key(struct ctl_json *j, const char *key);
/* ctl_json_str - a string; bytes that are not UTF-8 become U+FFFD */
void ctl_json_str(struct ctl_json *j, const char *s);
void ctl_json_int(struct ctl_json *j, long long v);
void ctl_json_bool(struct ctl_json *j, bool v);
void ctl_json_null(struct ctl_json *j);
/* ctl_json_kstr / kint / kbool - key and value */
void ctl_json_kstr(struct ctl_json *j, const char *key, const char *s);
void ctl_json_kint(struct ctl_json *j, const char *key, long long v);
void ctl_json_kbool(struct ctl_json *j, const char *key, bool v);
/* ctl_json_escape - append s as a JSON string literal */
void ctl_json_escape(struct buf *out, const char *s);
/* ctl_json_print - write out and a newline to stdout */
void ctl_json_print(const struct buf *out);

/* ctl_output.c: a listing, printed as a table or (--json) a JSON array
 * of objects; rows go into both, one is printed */
struct ctl_listing {
	struct ctl_table t;
	struct ctl_json j;
	struct buf out;		/* the JSON text */
};

/* ctl_listing_init - empty listing with ncol columns named by head */
void ctl_listing_init(struct ctl_listing *l, int ncol,
    const char *const *head);
/* ctl_listing_print - print as --json asks */
void ctl_listing_print(const struct ctl *ctl, struct ctl_listing *l);
void ctl_listing_free(struct ctl_listing *l);

/* ctl_output.c: formats */
/* ctl_fmt_duration - "2d 3h", "3h 4m", "4m 5s", "5s" */
void ctl_fmt_duration(struct buf *out, long long secs);
/* ctl_fmt_time - ISO 8601 UTC: "2024-05-01T12:00:00Z" */
void ctl_fmt_time(struct buf *out, time_t t);
/* ctl_fmt_size - bytes as "10M", "512K", "1G" when exact, else bytes */
void ctl_fmt_size(struct buf *out, long long bytes);

/* ctl_config.c */
/* ctl_config_load - read the configuration; -1 with why */
int ctl_config_load(struct ctl *ctl, struct buf *why);
/* ctl_config_load_as - read it as a command of that mode may (enum
 * ctl_conf): maybe with a warning, or master's running settings; -1
 * with why */
int ctl_config_load_as(struct ctl *ctl, enum ctl_conf mode,
    struct buf *why);
/* ctl_config_running - load the settings master runs with; 0, -1 with
 * why, or CTL_CALL_NOT_RUNNING */
int ctl_config_running(struct ctl *ctl, struct buf *why);
/* ctl_config_salvage - of a broken file's text, the entries (a key line
 * with its continuation lines) that are good on their own, the first of
 * each key, appended to out; path names it in cfg_parse's messages */
void ctl_config_salvage(const char *path, const char *text, size_t len,
    struct buf *out);
/* ctl_run_directory_default - the built-in run_directory: where master
 * is looked for too when the file's own run_directory is in doubt */
const char *ctl_run_directory_default(void);
int ctl_config(struct ctl *ctl, const struct ctl_args *a);

/* ctl_service.c */
#define CTL_CALL_NOT_RUNNING (-2)
/* ctl_call - one request/reply on a UNIX socket; -1 with why, or
 * CTL_CALL_NOT_RUNNING when nobody listens at path */
int ctl_call(const char *path, const struct ipc_msg *req,
    struct ipc_msg *reply, int timeout_ms, struct buf *why);
/* ctl_master_path - <run_directory>/master.sock into out */
void ctl_master_path(struct buf *out);
int ctl_start(struct ctl *ctl, const struct ctl_args *a);
int ctl_stop(struct ctl *ctl, const struct ctl_args *a);
int ctl_reload(struct ctl *ctl, const struct ctl_args *a);
int ctl_status(struct ctl *ctl, const struct ctl_args *a);

/* ctl_dns.c */
int ctl_dns_lookup(struct ctl *ctl, const struct ctl_args *a);

/* ctl_dkim.c */
int ctl_dkim_keygen(struct ctl *ctl, const struct ctl_args *a);
int ctl_dkim_show(struct ctl *ctl, const struct ctl_args *a);
int ctl_dkim_rotate(struct ctl *ctl, const struct ctl_args *a);
int ctl_dkim_remove(struct ctl *ctl, const struct ctl_args *a);
int ctl_dkim_sign(struct ctl *ctl, const struct ctl_args *a);
int ctl_dkim_verify(struct ctl *ctl, const struct ctl_args *a);
int ctl_domain_dns(struct ctl *ctl, const struct ctl_args *a);
/* ctl_dkim_check - for check: key modes, and no service user but the
 * signer's in dkim_group; 1 ok (what), 0 no keys, -1 with why */
int ctl_dkim_check(struct buf *what, struct buf *why);

/* ctl_check.c */
int ctl_check(struct ctl *ctl, const struct ctl_args *a);

/* ctl_domain.c */
int ctl_domain_add(struct ctl *ctl, const struct ctl_args *a);
int ctl_domain_del(struct ctl *ctl, const struct ctl_args *a);
int ctl_domain_list(struct ctl *ctl, const struct ctl_args *a);

/* ctl_user.c */
int ctl_user_add(struct ctl *ctl, const struct ctl_args *a);
int ctl_user_del(struct ctl *ctl, const struct ctl_args *a);
int ctl_user_list(struct ctl *ctl, const struct ctl_args *a);
int ctl_user_passwd(struct ctl *ctl, const struct ctl_args *a);
int ctl_user_quota(struct ctl *ctl, const struct ctl_args *a);
int ctl_user_enable(struct ctl *ctl, const struct ctl_args *a);
int ctl_user_disable(struct ctl *ctl, const struct ctl_args *a);
int ctl_user_import(struct ctl *ctl, const struct ctl_args *a);
/* ctl_import_parse_line - one Dovecot passwd-file line: 1 with address,
 * hash and disabled; 0 comment or blank; -1 with why (ctl_user_import.c) */
int ctl_import_parse_line(const char *line, const char *domain,
    struct buf *addr, struct buf *hash, bool *disabled, struct buf *why);

/* ctl_alias.c */
int ctl_alias_add(struct ctl *ctl, const struct ctl_args *a);
int ctl_alias_del(struct ctl *ctl, const struct ctl_args *a);
int ctl_alias_list(struct ctl *ctl, const struct ctl_args *a);

/*
 * ctl_map.c: a directory routing table managed from heraldctl (the
 * transport and tls-policy commands): "set DOMAIN VALUE", "del DOMAIN",
 * "list", printed as "<noun> DOMAIN: VALUE<note>", "<noun> DOMAIN
 * deleted" and a DOMAIN / <column> table or JSON objects {"domain",
 * <json_key>}.
 */
struct ctl_map {
	enum dir_map table;	/* the directory table */
	const char *noun;	/* the command, in messages: "transport" */
	const char *json_key;	/* the value's key in --json: "nexthop" */
	const char *column;	/* the value's column head: "NEXTHOP" */
	/* check - the VALUE operand s into value, and a note to print
	 * after it (may stay empty); -1 with the whole message in why */
	int (*check)(const char *s, struct buf *value, struct buf *note,
	    struct buf *why);
};
int ctl_map_set(const struct ctl_map *map, const struct ctl_args *a);
int ctl_map_del(const struct ctl_map *map, const struct ctl_args *a);
int ctl_map_list(const struct ctl_map *map, struct ctl *ctl);

/* ctl_transport.c */
int ctl_transport_add(struct ctl *ctl, const struct ctl_args *a);
int ctl_transport_del(struct ctl *ctl, const struct ctl_args *a);
int ctl_transport_list(struct ctl *ctl, const struct ctl_args *a);

/* ctl_tls_policy.c */
int ctl_tls_policy_set(struct ctl *ctl, const struct ctl_args *a);
int ctl_tls_policy_del(struct ctl *ctl, const struct ctl_args *a);
int ctl_tls_policy_list(struct ctl *ctl, const struct ctl_args *a);

/* ctl_queue.c */
/* the folders status counts, in order */
#define CTL_QUEUE_NCOUNT 5
extern const char *const ctl_queue_count_names[CTL_QUEUE_NCOUNT];
/* ctl_queue_count - messages per folder (incoming, active, deferred,
 * hold, corrupt); a missing folder counts 0 */
void ctl_queue_count(const char *spool, long long counts[CTL_QUEUE_NCOUNT]);
int ctl_queue_list(struct ctl *ctl, const struct ctl_args *a);
int ctl_queue_show(struct ctl *ctl, const struct ctl_args *a);
int ctl_queue_delete(struct ctl *ctl, const struct ctl_args *a);
int ctl_queue_hold(struct ctl *ctl, const struct ctl_args *a);
int ctl_queue_release(struct ctl *ctl, const struct ctl_args *a);
int ctl_queue_flush(struct ctl *ctl, const struct ctl_args *a);
int ctl_queue_requeue(struct ctl *ctl, const struct ctl_args *a);

/* ctl_auth.c */
int ctl_auth_lockouts(struct ctl *ctl, const struct ctl_args *a);
int ctl_auth_unlock(struct ctl *ctl, const struct ctl_args *a);
/* ctl_mailbox.c */
int ctl_mailbox_list(struct ctl *ctl, const struct ctl_args *a);
int ctl_mailbox_status(struct ctl *ctl, const struct ctl_args *a);
int ctl_mailbox_reindex(struct ctl *ctl, const struct ctl_args *a);
int ctl_mailbox_create(struct ctl *ctl, const struct ctl_args *a);
int ctl_mailbox_delete(struct ctl *ctl, const struct ctl_args *a);

/* ctl_domain.c: shared by the directory commands */
struct dir;
/* ctl_dir_open - open the directory for writing; NULL after an error */
struct dir *ctl_dir_open(void);
/* ctl_dir_hosted - 1 hosted, 0 not (message printed), -1 error */
int ctl_dir_hosted(struct dir *d, const char *domain);
/* ctl_dir_open_filter - for "list [DOMAIN]": the optional DOMAIN operand
 * checked and hosted (into dom; empty when absent) and the directory open;
 * NULL after an error (message printed) */
struct dir *ctl_dir_open_filter(const struct ctl_args *a, struct buf *dom);

#endif
