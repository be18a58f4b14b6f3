/*
 * ctl_config - reading the configuration, and "heraldctl config".
 *
 *   heraldctl config             every setting as "key = value"
 *   heraldctl config --changed   only those the file sets
 *   heraldctl config KEY         just the value of KEY
 *   heraldctl config --running   the same, of the settings master runs
 *                                with (asked on master.sock)
 *
 * Values are printed as written (cfg_entry.text): a relative path is
 * shown relative, as in the file, even though herald resolves it against
 * the file's folder.
 *
 * Protocol (heraldctl -> master, <run_directory>/master.sock; see
 * master/master_ctl.c): {request=config} -> {status=ok, name=PATH,
 * value=TEXT}, the text master checked at its start or last reload;
 * heraldctl loads it as if it were the file PATH.
 *
 * A file with an error locks nobody out (enum ctl_conf in ctl.h): only
 * check, start and reload need a valid file. Every other command warns
 * once and works from the settings master runs with: master is looked
 * for at the run_directory of the lines of the file that are good on
 * their own, then at the built-in run_directory. When herald does not
 * run, commands that only read go on with the built-in defaults plus
 * those good lines; commands that write refuse, since the broken line
 * may be the one that says where their data lives.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/mem.h"
#include "mail/ipc.h"
#include "mail/params.h"
#include "ctl.h"

#define CTL_CONFIG_TIMEOUT_MS 5000

static bool ctl_config_is_running;	/* the settings are master's */

/* ctl_run_directory_default - the built-in run_directory */
const char *
ctl_run_directory_default(void)
{
	const struct cfg_entry *e = cfg_find(params_table, "run_directory");

	return e != NULL && e->defval != NULL ? e->defval : "/run/herald";
}

/* ctl_config_entry_ok - one key line and its continuation lines, alone:
 * true if they parse; *idx_r is the key's row */
static bool
ctl_config_entry_ok(const char *path, const struct buf *entry, int *idx_r)
{
	struct buf why = BUF_INIT;
	const struct cfg_entry *e = NULL;
	char name[128];
	size_t n;
	bool ok;

	/* the key: what comes before '=', blanks around it dropped */
	n = strcspn(buf_cstr(entry), "=\n");
	while (n > 0 && strchr(" \t\r", entry->data[n - 1]) != NULL)
		n--;
	if (n > 0 && n < sizeof(name)) {
		memcpy(name, entry->data, n);
		name[n] = '\0';
		e = cfg_find(params_table, name);
	}
	*idx_r = e != NULL ? (int)(e - params_table) : -1;
	ok = e != NULL && cfg_parse(params_table, path, entry->data,
	    entry->len, &why) == 0;
	buf_free(&why);
	return ok;
}

/*
 * ctl_config_salvage - the lines of a broken file that are good on their
 * own: each key line is tried with its continuation lines; bad entries
 * and repeats of a key are left out. Appended to out.
 */
void
ctl_config_salvage(const char *path, const char *text, size_t len,
    struct buf *out)
{
	size_t count = 0, pos = 0;
	struct buf entry = BUF_INIT;
	bool *seen;
	int idx;

	while (params_table[count].name != NULL)
		count++;
	seen = xcalloc(count + 1, sizeof(*seen));
	while (pos <= len) {
		const char *start = text + pos, *nl;
		size_t n, skip;

		nl = pos < len ? memchr(start, '\n', len - pos) : NULL;
		n = nl != NULL ? (size_t)(nl - start) : len - pos;
		for (skip = 0; skip < n && (start[skip] == ' ' ||
		    start[skip] == '\t'); skip++)
			;
		if (pos < len && (skip >= n || start[skip] == '#')) {
			/* blank or comment: continuation goes on past it */
		} else if (pos < len && skip > 0) {
			if (entry.len > 0)
				buf_append(&entry, start, n + (nl != NULL));
		} else {
			/* a key line, or the end: the entry so far is done */
			if (entry.len > 0 &&
			    ctl_config_entry_ok(path, &entry, &idx) &&
			    !seen[idx]) {
				seen[idx] = true;
				buf_append(out, entry.data, entry.len);
				if (entry.data[entry.len - 1] != '\n')
					buf_putc(out, '\n');
			}
			buf_reset(&entry);
			if (pos < len)
				buf_append(&entry, start, n + (nl != NULL));
		}
		if (pos == len)
			break;
		pos += n + (nl != NULL);
	}
	buf_free(&entry);
	free(seen);
}

/* ctl_config_fallback - the built-in defaults plus the good lines */
static void
ctl_config_fallback(const char *path)
{
	struct buf text = BUF_INIT, good = BUF_INIT, why = BUF_INIT;

	if (cfg_read_file(path, &text, &why) == 0)
		ctl_config_salvage(path, text.data, text.len, &good);
	buf_reset(&why);
	if (params_load_text(path, good.data, good.len, &why) < 0) {
		/* a rule across keys (tls_cert_file and tls_key_file) */
		buf_reset(&why);
		if (params_load_text(path, "", 0, &why) < 0)
			cfg_defaults(params_table);
	}
	buf_free(&text);
	buf_free(&good);
	buf_free(&why);
}

/* ctl_config_ask - {request=config} to the master at run_dir */
static int
ctl_config_ask(const char *run_dir, struct ipc_msg *reply, struct buf *why)
{
	struct ipc_msg req;
	struct buf path = BUF_INIT;
	int r;

	ipc_msg_init(&req);
	ipc_put_str(&req, IPC_REQUEST, "config");
	buf_printf(&path, "%s/master.sock", run_dir);
	r = ctl_call(buf_cstr(&path), &req, reply, CTL_CONFIG_TIMEOUT_MS, why);
	ipc_msg_free(&req);
	buf_free(&path);
	return r;
}

/* ctl_config_running - load the settings master runs with */
int
ctl_config_running(struct ctl *ctl, struct buf *why)
{
	const char *dirs[2] = {var_run_directory, ctl_run_directory_default()};
	const char *st, *name, *text;
	struct ipc_msg reply;
	char *dir;
	int r = CTL_CALL_NOT_RUNNING;

	ipc_msg_init(&reply);
	for (int i = 0; i < 2 && r == CTL_CALL_NOT_RUNNING; i++) {
		if (i == 1 && strcmp(dirs[0], dirs[1]) == 0)
			break;
		dir = xstrdup(dirs[i]);
		ipc_msg_reset(&reply);
		r = ctl_config_ask(dir, &reply, why);
		x_free(&dir);
	}
	if (r != 0)
		goto out;
	st = ipc_get_str(&reply, IPC_STATUS);
	name = ipc_get_str(&reply, IPC_NAME);
	text = ipc_get_str(&reply, IPC_VALUE);
	if (st == NULL || strcmp(st, "ok") != 0 || name == NULL ||
	    *name != '/' || text == NULL) {
		const char *reason = ipc_get_str(&reply, IPC_REASON);

		buf_printf(why, "the running configuration: %s", reason ?
		    reason : "bad reply from master");
		r = -1;
	} else if (params_load_text(name, text, strlen(text), why) < 0) {
		r = -1;
	} else {
		ctl_config_is_running = true;
	}
out:
	ipc_msg_free(&reply);
	return r;
}

/* ctl_config_load - read the configuration; -1 with why */
int
ctl_config_load(struct ctl *ctl, struct buf *why)
{
	ctl->config = params_config_path(ctl->config_arg);
	return params_load(ctl->config, why);
}

/* ctl_config_load_as - read the configuration as mode allows */
int
ctl_config_load_as(struct ctl *ctl, enum ctl_conf mode, struct buf *why)
{
	struct buf err = BUF_INIT, state = BUF_INIT;
	int r;

	if (ctl_config_load(ctl, why) == 0)
		return 0;
	if (mode == CTL_CONF_STRICT || mode == CTL_CONF_SELF)
		return -1;
	buf_set(&err, buf_cstr(why));
	buf_reset(why);
	ctl_config_fallback(ctl->config);
	if ((r = ctl_config_running(ctl, why)) == 0) {
		fprintf(stderr, "%s: warning: %s; using the settings "
		    "herald is running with\n", ctl_progname, buf_cstr(&err));
		goto out;
	}
	/* e.g. "Permission denied" for a user who may not ask master */
	if (r == CTL_CALL_NOT_RUNNING)
		buf_set(&state, "herald is not running");
	else
		buf_printf(&state, "herald's settings are not known (%s)",
		    buf_cstr(why));
	if (mode == CTL_CONF_READS) {
		fprintf(stderr, "%s: warning: %s; %s: using the "
		    "built-in defaults and the lines that are good\n",
		    ctl_progname, buf_cstr(&err), buf_cstr(&state));
		r = 0;
	} else {
		buf_set(why, buf_cstr(&err));
		buf_printf(why, "; %s, so where this command would write is "
		    "not known for sure: fix the file first (heraldctl check)",
		    buf_cstr(&state));
		r = -1;
	}
out:
	buf_free(&err);
	buf_free(&state);
	return r;
}
/* ctl_config_use_running - for --running: master's settings; exit code */
static int
ctl_config_use_running(struct ctl *ctl)
{
	struct buf why = BUF_INIT;
	int r;

	if (ctl_config_is_running)
		return CTL_EXIT_OK;	/* loaded already: the file is bad */
	if ((r = ctl_config_running(ctl, &why)) == CTL_CALL_NOT_RUNNING)
		ctl_error("herald is not running");
	else if (r < 0)
		ctl_error("%s", buf_cstr(&why));
	buf_free(&why);
	return r == 0 ? CTL_EXIT_OK : r == CTL_CALL_NOT_RUNNING ?
	    CTL_EXIT_NOT_RUNNING : CTL_EXIT_FAIL;
}

/* ctl_config - print settings */
int
ctl_config(struct ctl *ctl, const struct ctl_args *a)
{
	bool changed = ctl_args_has(a, "changed");
	struct buf out = BUF_INIT;
	struct ctl_json j;
	int rc;

	if (ctl_args_has(a, "running") &&
	    (rc = ctl_config_use_running(ctl)) != CTL_EXIT_OK)
		return rc;

	if (a->npos == 1) {
		const struct cfg_entry *e = cfg_find(params_table, a->pos[0]);

		if (e == NULL) {
			ctl_error("%s: unknown setting", a->pos[0]);
			return CTL_EXIT_FAIL;
		}
		if (ctl->json) {
			ctl_json_init(&j, &out);
			ctl_json_open(&j, '{');
			ctl_json_kstr(&j, e->name, e->text ? e->text : "");
			ctl_json_close(&j, '}');
			ctl_json_print(&out);
			buf_free(&out);
		} else {
			printf("%s\n", e->text ? e->text : "");
		}
		return CTL_EXIT_OK;
	}
	ctl_json_init(&j, &out);
	ctl_json_open(&j, '{');
	for (const struct cfg_entry *e = params_table; e->name; e++) {
		if (changed && !e->changed)
			continue;
		if (ctl->json)
			ctl_json_kstr(&j, e->name, e->text ? e->text : "");
		else if (e->text != NULL && *e->text != '\0')
			printf("%s = %s\n", e->name, e->text);
		else
			printf("%s =\n", e->name);
	}
	ctl_json_close(&j, '}');
	if (ctl->json)
		ctl_json_print(&out);
	buf_free(&out);
	return CTL_EXIT_OK;
}
