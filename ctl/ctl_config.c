/*
 * ctl_config - reading the configuration, and "heraldctl config".
 *
 *   heraldctl config             every setting as "key = value"
 *   heraldctl config --changed   only those the file sets
 *   heraldctl config KEY         just the value of KEY
 *
 * Values are printed as written (cfg_entry.text): a relative path is
 * shown relative, as in the file, even though herald resolves it against
 * the file's folder.
 */
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "base/config.h"
#include "mail/params.h"
#include "ctl.h"

/* ctl_config_load - read the configuration; -1 with why */
int
ctl_config_load(struct ctl *ctl, struct buf *why)
{
	ctl->config = params_config_path(ctl->config_arg);
	return params_load(ctl->config, why);
}

/* ctl_config - print settings */
int
ctl_config(struct ctl *ctl, const struct ctl_args *a)
{
	bool changed = ctl_args_has(a, "changed");
	struct buf out = BUF_INIT;
	struct ctl_json j;

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
