/*
 * ctl_alias - aliases: add, del, list.
 *
 * An alias maps an address of a hosted domain, or "@domain" (catch-all:
 * every address of the domain that no user or alias takes), to one or
 * more target addresses. A target in a hosted domain is resolved again
 * (user, alias, ...); a target in another domain gets a copy forwarded
 * through remote, with the envelope sender rewritten by SRS (issue 15,
 * qmgr/qmgr_forward.c).
 */
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "base/mem.h"
#include "mail/addr.h"
#include "mail/dir.h"
#include "ctl.h"

/* ctl_alias_add - add targets to an alias (creating it) */
int
ctl_alias_add(struct ctl *ctl, const struct ctl_args *a)
{
	struct buf key = BUF_INIT, why = BUF_INIT;
	struct buf *targets = NULL;
	int ntargets = a->npos - 1, rc = CTL_EXIT_FAIL;
	struct dir *d = NULL;
	const char *dom;

	if (ctl_input_arg(ctl_input_alias_key, a->pos[0], &key) < 0 ||
	    (d = ctl_dir_open()) == NULL)
		goto out;
	dom = buf_cstr(&key)[0] == '@' ? buf_cstr(&key) + 1 :
	    addr_domain(buf_cstr(&key));
	if (ctl_dir_hosted(d, dom) != 1)
		goto out;
	/* every target is checked before anything changes */
	targets = xcalloc((size_t)ntargets, sizeof(*targets));
	for (int i = 0; i < ntargets; i++) {
		buf_init(&targets[i]);
		if (ctl_input_arg(ctl_input_address, a->pos[i + 1],
		    &targets[i]) < 0)
			goto out;
		if (strcmp(buf_cstr(&targets[i]), buf_cstr(&key)) == 0) {
			ctl_error("%s: an alias cannot point to itself",
			    a->pos[i + 1]);
			goto out;
		}
	}
	for (int i = 0; i < ntargets; i++) {
		if (dir_alias_add(d, buf_cstr(&key), buf_cstr(&targets[i]),
		    &why) < 0) {
			ctl_error("%s", buf_cstr(&why));
			goto out;
		}
	}
	printf("alias %s: added %d target%s\n", buf_cstr(&key), ntargets,
	    ntargets == 1 ? "" : "s");
	rc = CTL_EXIT_OK;
out:
	for (int i = 0; targets != NULL && i < ntargets; i++)
		buf_free(&targets[i]);
	x_free(&targets);
	dir_close(&d);
	buf_free(&key);
	buf_free(&why);
	return rc;
}

/* ctl_alias_del - remove one target, or the whole alias */
int
ctl_alias_del(struct ctl *ctl, const struct ctl_args *a)
{
	struct buf key = BUF_INIT, target = BUF_INIT, why = BUF_INIT;
	struct dir *d = NULL;
	int rc = CTL_EXIT_FAIL;

	if (ctl_input_arg(ctl_input_alias_key, a->pos[0], &key) < 0)
		goto out;
	if (a->npos == 2 && ctl_input_address(a->pos[1], &target, &why) < 0) {
		ctl_error("%s", buf_cstr(&why));
		goto out;
	}
	if ((d = ctl_dir_open()) == NULL)
		goto out;
	if (dir_alias_del(d, buf_cstr(&key), a->npos == 2 ?
	    buf_cstr(&target) : NULL, &why) < 0) {
		ctl_error("%s", buf_cstr(&why));
		goto out;
	}
	if (a->npos == 2)
		printf("alias %s: removed %s\n", buf_cstr(&key),
		    buf_cstr(&target));
	else
		printf("alias %s deleted\n", buf_cstr(&key));
	rc = CTL_EXIT_OK;
out:
	dir_close(&d);
	buf_free(&key);
	buf_free(&target);
	buf_free(&why);
	return rc;
}

/* ctl_alias_row - one alias into the table and the JSON array */
static void
ctl_alias_row(const char *key, const char *targets, void *ctx)
{
	struct ctl_listing *l = ctx;
	struct buf joined = BUF_INIT, one = BUF_INIT;

	ctl_json_open(&l->j, '{');
	ctl_json_kstr(&l->j, "alias", key);
	ctl_json_key(&l->j, "targets");
	ctl_json_open(&l->j, '[');
	for (const char *p = targets; *p;) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);

		buf_reset(&one);
		buf_append(&one, p, n);
		ctl_json_str(&l->j, buf_cstr(&one));
		if (joined.len > 0)
			buf_puts(&joined, ", ");
		buf_puts(&joined, buf_cstr(&one));
		p += n;
		if (*p == '\n')
			p++;
	}
	ctl_json_close(&l->j, ']');
	ctl_json_close(&l->j, '}');
	ctl_table_add(&l->t, (const char *const[]){key, buf_cstr(&joined)});
	buf_free(&joined);
	buf_free(&one);
}

/* ctl_alias_list - aliases of one domain or of all */
int
ctl_alias_list(struct ctl *ctl, const struct ctl_args *a)
{
	struct buf dom = BUF_INIT, why = BUF_INIT;
	struct ctl_listing l;
	struct dir *d;
	int rc = CTL_EXIT_FAIL;

	if ((d = ctl_dir_open_filter(a, &dom)) == NULL) {
		buf_free(&dom);
		return CTL_EXIT_FAIL;
	}
	ctl_listing_init(&l, 2, (const char *const[]){"ALIAS", "TARGETS"});
	if (dir_alias_list(d, dom.len > 0 ? buf_cstr(&dom) : NULL, ctl_alias_row, &l,
	    &why) < 0) {
		ctl_error("%s", buf_cstr(&why));
	} else {
		ctl_listing_print(ctl, &l);
		rc = CTL_EXIT_OK;
	}
	ctl_listing_free(&l);
	dir_close(&d);
	buf_free(&dom);
	buf_free(&why);
	return rc;
}
