/*
 * master_config - a saved copy of the configuration, for reload.
 *
 * params_load() writes straight into the var_* globals, so a reload that
 * fails half-way (a bad line, a listener that cannot open) would leave a
 * mix of old and new settings. master saves every entry of params_table
 * first (typed value, text as written, changed flag) and puts the copy
 * back when the reload fails, so the running configuration never changes
 * unless the whole new one is good.
 */
#include <stdbool.h>
#include <string.h>

#include "base/config.h"
#include "base/mem.h"
#include "mail/params.h"
#include "master.h"

struct master_config_value {
	char *str;		/* CFG_STR, CFG_LIST */
	long long num;		/* CFG_INT, CFG_SIZE, CFG_TIME */
	bool flag;		/* CFG_BOOL */
	char *text;
	bool changed;
};

struct master_config_snap {
	size_t n;
	struct master_config_value *v;
};

/* master_config_dup - copy of a string that may be NULL */
static char *
master_config_dup(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

/* master_config_save - copy every setting's value and text */
struct master_config_snap *
master_config_save(void)
{
	struct master_config_snap *snap = xcalloc(1, sizeof(*snap));
	size_t n = 0;

	while (params_table[n].name != NULL)
		n++;
	snap->n = n;
	snap->v = xcalloc(n ? n : 1, sizeof(*snap->v));
	for (size_t i = 0; i < n; i++) {
		const struct cfg_entry *e = &params_table[i];
		struct master_config_value *v = &snap->v[i];

		switch (e->type) {
		case CFG_STR:
		case CFG_LIST:
			v->str = master_config_dup(*(char **)e->ptr);
			break;
		case CFG_INT:
		case CFG_SIZE:
		case CFG_TIME:
			v->num = *(long long *)e->ptr;
			break;
		case CFG_BOOL:
			v->flag = *(bool *)e->ptr;
			break;
		}
		v->text = master_config_dup(e->text);
		v->changed = e->changed;
	}
	return snap;
}

/* master_config_restore - put the saved settings back in force */
void
master_config_restore(const struct master_config_snap *snap)
{
	for (size_t i = 0; i < snap->n && params_table[i].name; i++) {
		struct cfg_entry *e = &params_table[i];
		const struct master_config_value *v = &snap->v[i];

		switch (e->type) {
		case CFG_STR:
		case CFG_LIST:
			x_free(e->ptr);
			*(char **)e->ptr = master_config_dup(v->str);
			break;
		case CFG_INT:
		case CFG_SIZE:
		case CFG_TIME:
			*(long long *)e->ptr = v->num;
			break;
		case CFG_BOOL:
			*(bool *)e->ptr = v->flag;
			break;
		}
		x_free(&e->text);
		e->text = master_config_dup(v->text);
		e->changed = v->changed;
	}
}

/* master_config_free - release a snapshot */
void
master_config_free(struct master_config_snap **snapp)
{
	struct master_config_snap *snap = *snapp;

	if (snap == NULL)
		return;
	for (size_t i = 0; i < snap->n; i++) {
		x_free(&snap->v[i].str);
		x_free(&snap->v[i].text);
	}
	x_free(&snap->v);
	x_free(snapp);
}
