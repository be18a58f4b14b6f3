/*
 * ctl_map - a directory routing table managed from heraldctl: set, del
 * and list of "domain -> value" entries (lib/mail/dir.h's enum dir_map).
 *
 * A struct ctl_map names the table, the noun of the messages, the JSON
 * key and column head of the value, and the check of the value operand;
 * ctl_transport.c and ctl_tls_policy.c describe their table with one and
 * hand their commands to the functions here, so both print, refuse and
 * list the same way. The DOMAIN operand is a domain of elsewhere
 * (checked as ctl_input_domain does); the directory refuses a hosted one.
 */
#include <stdio.h>

#include "base/buf.h"
#include "mail/dir.h"
#include "ctl.h"

/* ctl_map_set - check DOMAIN and VALUE, store them, say what was set */
int
ctl_map_set(const struct ctl_map *map, const struct ctl_args *a)
{
	struct buf dom = BUF_INIT, value = BUF_INIT, note = BUF_INIT;
	struct buf why = BUF_INIT;
	struct dir *d = NULL;
	int rc = CTL_EXIT_FAIL;

	if (ctl_input_arg(ctl_input_domain, a->pos[0], &dom) < 0)
		goto out;
	if (map->check(a->pos[1], &value, &note, &why) < 0) {
		ctl_error("%s", buf_cstr(&why));
		goto out;
	}
	if ((d = ctl_dir_open()) == NULL)
		goto out;
	if (dir_map_set(d, map->table, buf_cstr(&dom), buf_cstr(&value),
	    &why) < 0) {
		ctl_error("%s", buf_cstr(&why));
		goto out;
	}
	printf("%s %s: %s%s\n", map->noun, buf_cstr(&dom), buf_cstr(&value),
	    buf_cstr(&note));
	rc = CTL_EXIT_OK;
out:
	dir_close(&d);
	buf_free(&dom);
	buf_free(&value);
	buf_free(&note);
	buf_free(&why);
	return rc;
}

/* ctl_map_del - remove DOMAIN's entry */
int
ctl_map_del(const struct ctl_map *map, const struct ctl_args *a)
{
	struct buf dom = BUF_INIT, why = BUF_INIT;
	struct dir *d = NULL;
	int rc = CTL_EXIT_FAIL;

	if (ctl_input_arg(ctl_input_domain, a->pos[0], &dom) < 0 ||
	    (d = ctl_dir_open()) == NULL)
		goto out;
	if (dir_map_del(d, map->table, buf_cstr(&dom), &why) < 0) {
		ctl_error("%s", buf_cstr(&why));
		goto out;
	}
	printf("%s %s deleted\n", map->noun, buf_cstr(&dom));
	rc = CTL_EXIT_OK;
out:
	dir_close(&d);
	buf_free(&dom);
	buf_free(&why);
	return rc;
}

/* the listing and the table it lists, for ctl_map_row */
struct ctl_map_listing {
	struct ctl_listing l;
	const struct ctl_map *map;
};

/* ctl_map_row - one entry into the table and the JSON array */
static void
ctl_map_row(const char *domain, const char *value, void *ctx)
{
	struct ctl_map_listing *ml = ctx;

	ctl_json_open(&ml->l.j, '{');
	ctl_json_kstr(&ml->l.j, "domain", domain);
	ctl_json_kstr(&ml->l.j, ml->map->json_key, value);
	ctl_json_close(&ml->l.j, '}');
	ctl_table_add(&ml->l.t, (const char *const[]){domain, value});
}

/* ctl_map_list - every entry, as a table or (--json) an array */
int
ctl_map_list(const struct ctl_map *map, struct ctl *ctl)
{
	struct ctl_map_listing ml = {.map = map};
	struct buf why = BUF_INIT;
	struct dir *d;
	int rc = CTL_EXIT_FAIL;

	if ((d = ctl_dir_open()) == NULL)
		return CTL_EXIT_FAIL;
	ctl_listing_init(&ml.l, 2, (const char *const[]){"DOMAIN",
	    map->column});
	if (dir_map_list(d, map->table, ctl_map_row, &ml, &why) < 0) {
		ctl_error("%s", buf_cstr(&why));
	} else {
		ctl_listing_print(ctl, &ml.l);
		rc = CTL_EXIT_OK;
	}
	ctl_listing_free(&ml.l);
	dir_close(&d);
	buf_free(&why);
	return rc;
}
