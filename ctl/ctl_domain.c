/*
 * ctl_domain - hosted domains: add, del, list; and opening the directory
 * for every directory command.
 *
 * heraldctl is the only writer of the directory (DESIGN.md §6); each
 * change is one LMDB transaction that readers (smtpd, local) see at their
 * next lookup, so nothing needs a reload.
 */
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/mem.h"
#include "mail/dir.h"
#include "mail/outcome.h"
#include "mail/params.h"
#include "mail/resolve.h"
#include "ctl.h"

/* ctl_dir_open - open the directory for writing; NULL after an error */
struct dir *
ctl_dir_open(void)
{
	struct buf why = BUF_INIT;
	struct dir *d = NULL;

	if (dir_open(var_data_directory, DIR_WRITE, &d, &why) < 0) {
		ctl_error("directory: %s", buf_cstr(&why));
		d = NULL;
	}
	buf_free(&why);
	return d;
}

/* ctl_dir_hosted - 1 hosted, 0 not (message printed), -1 error */
int
ctl_dir_hosted(struct dir *d, const char *domain)
{
	struct buf why = BUF_INIT;
	int r = dir_domain_exists(d, domain, &why);

	if (r < 0)
		ctl_error("%s: %s", domain, buf_cstr(&why));
	else if (r == 0)
		ctl_error("%s: not a hosted domain (add it with \"heraldctl "
		    "domain add %s\")", domain, domain);
	buf_free(&why);
	return r;
}

/* ctl_dir_open_filter - optional DOMAIN operand checked, directory open */
struct dir *
ctl_dir_open_filter(const struct ctl_args *a, struct buf *dom)
{
	struct dir *d = NULL;

	if (a->npos == 1 && ctl_input_arg(ctl_input_domain, a->pos[0],
	    dom) < 0)
		return NULL;
	if ((d = ctl_dir_open()) != NULL && a->npos == 1 &&
	    ctl_dir_hosted(d, buf_cstr(dom)) != 1)
		dir_close(&d);
	return d;
}

/*
 * ctl_domain_add_warn - a transport or TLS policy left for a domain that
 * is hosted now: qmgr routes a hosted domain's recipients to the local
 * agent (qmgr_route) and looks up the transport and TLS policy only for
 * remote requests, so such an entry is never used while the domain is
 * hosted. (transport add and tls-policy set refuse a hosted domain.)
 */
static void
ctl_domain_add_warn(struct dir *d, const char *domain)
{
	struct buf val = BUF_INIT, why = BUF_INIT;

	if (dir_map_get(d, DIR_MAP_TRANSPORT, domain, &val, &why) == 1)
		ctl_error("warning: %s has a transport (%s), which is ignored "
		    "from now on: mail to %s is delivered to mailboxes here, "
		    "never sent to %s; \"heraldctl transport del %s\" removes "
		    "it", domain, buf_cstr(&val), domain, buf_cstr(&val),
		    domain);
	buf_reset(&val);
	buf_reset(&why);
	if (dir_map_get(d, DIR_MAP_TLS_POLICY, domain, &val, &why) == 1)
		ctl_error("warning: %s has a TLS policy (%s), which is "
		    "ignored from now on: mail to %s is delivered to "
		    "mailboxes here; \"heraldctl tls-policy del %s\" removes "
		    "it", domain, buf_cstr(&val), domain, domain);
	buf_free(&val);
	buf_free(&why);
}

/* ctl_domain_add - host a new domain */
int
ctl_domain_add(struct ctl *ctl, const struct ctl_args *a)
{
	struct buf dom = BUF_INIT, why = BUF_INIT;
	struct dir *d;
	int rc = CTL_EXIT_FAIL;

	if (ctl_input_arg(ctl_input_domain, a->pos[0], &dom) < 0)
		goto out;
	if ((d = ctl_dir_open()) == NULL)
		goto out;
	if (dir_domain_add(d, buf_cstr(&dom), &why) < 0) {
		ctl_error("%s", buf_cstr(&why));
	} else {
		printf("domain %s added\n", buf_cstr(&dom));
		ctl_domain_add_warn(d, buf_cstr(&dom));
		rc = CTL_EXIT_OK;
	}
	dir_close(&d);
out:
	buf_free(&dom);
	buf_free(&why);
	return rc;
}

/* ctl_domain_user_names - collect user addresses, one per line */
static void
ctl_domain_user_names(const char *addr, const struct dir_user *u, void *ctx)
{
	buf_puts(ctx, addr);
	buf_putc(ctx, '\n');
}

/*
 * ctl_domain_del - stop hosting a domain. With --force its users and
 * aliases go too, and so do the users' passwords (the directory keeps
 * those in a separate database); mail in the store stays.
 */
int
ctl_domain_del(struct ctl *ctl, const struct ctl_args *a)
{
	struct buf dom = BUF_INIT, why = BUF_INIT, users = BUF_INIT;
	bool force = ctl_args_has(a, "force");
	struct dir *d;
	int rc = CTL_EXIT_FAIL;

	if (ctl_input_arg(ctl_input_domain, a->pos[0], &dom) < 0)
		goto out;
	if ((d = ctl_dir_open()) == NULL)
		goto out;
	if (force && dir_user_list(d, buf_cstr(&dom), ctl_domain_user_names,
	    &users, &why) < 0) {
		ctl_error("%s", buf_cstr(&why));
	} else if (dir_domain_del(d, buf_cstr(&dom), force, &why) < 0) {
		/* "domain X still has N user(s) ...": say what helps */
		ctl_error("%s%s", buf_cstr(&why), !force &&
		    strstr(buf_cstr(&why), "still has") != NULL ?
		    " (--force deletes them with the domain)" : "");
	} else {
		rc = CTL_EXIT_OK;
		for (char *p = users.data, *nl; *p; p = nl + 1) {
			nl = strchr(p, '\n');
			*nl = '\0';
			buf_reset(&why);
			if (dir_passwd_del(var_data_directory, p, &why) < 0) {
				ctl_error("%s: password: %s", p,
				    buf_cstr(&why));
				rc = CTL_EXIT_FAIL;
			}
		}
		printf("domain %s deleted\n", buf_cstr(&dom));
	}
	dir_close(&d);
out:
	buf_free(&dom);
	buf_free(&why);
	buf_free(&users);
	return rc;
}

struct ctl_domain_row {
	char *name;
	long long users, aliases;
};

struct ctl_domain_rows {
	struct ctl_domain_row *r;
	size_t n;
};

/* ctl_domain_collect - remember one domain */
static void
ctl_domain_collect(const char *domain, void *ctx)
{
	struct ctl_domain_rows *rows = ctx;

	rows->r = xreallocarray(rows->r, rows->n + 1, sizeof(*rows->r));
	rows->r[rows->n].name = xstrdup(domain);
	rows->r[rows->n].users = 0;
	rows->r[rows->n].aliases = 0;
	rows->n++;
}

/* ctl_domain_count_user - one user of a domain */
static void
ctl_domain_count_user(const char *addr, const struct dir_user *u, void *ctx)
{
	(*(long long *)ctx)++;
}

/* ctl_domain_count_alias - one alias of a domain */
static void
ctl_domain_count_alias(const char *key, const char *targets, void *ctx)
{
	(*(long long *)ctx)++;
}

/* ctl_domain_postmaster - where postmaster@domain goes, as local would
 * deliver it: its mailboxes, or what keeps it from them */
static void
ctl_domain_postmaster(struct dir *d, const char *domain, struct buf *out)
{
	struct buf addr = BUF_INIT;
	struct resolved r;

	buf_printf(&addr, "postmaster@%s", domain);
	resolve_addr(d, buf_cstr(&addr), *var_recipient_delimiter,
	    (int)var_alias_depth_limit, &r);
	buf_reset(out);
	for (size_t i = 0; i < r.nbox; i++)
		buf_printf(out, "%s%s", i ? "," : "", r.box[i].addr);
	for (size_t i = 0; i < r.nremote; i++)
		buf_printf(out, "%s%s", i || r.nbox ? "," : "", r.remote[i]);
	if (r.nbox == 0 && r.nremote == 0)
		buf_printf(out, "none (%s %s)", r.fail.dsn,
		    buf_cstr(&r.fail.reason));
	resolve_free(&r);
	buf_free(&addr);
}

/* ctl_domain_list - hosted domains with their user and alias counts and
 * where their postmaster@ goes */
int
ctl_domain_list(struct ctl *ctl, const struct ctl_args *a)
{
	struct ctl_domain_rows rows = {NULL, 0};
	struct buf why = BUF_INIT, pm = BUF_INIT;
	struct ctl_listing lst;
	struct dir *d;
	int rc = CTL_EXIT_FAIL;

	if ((d = ctl_dir_open()) == NULL)
		return CTL_EXIT_FAIL;
	if (dir_domain_list(d, ctl_domain_collect, &rows, &why) < 0) {
		ctl_error("%s", buf_cstr(&why));
		goto out;
	}
	for (size_t i = 0; i < rows.n; i++) {
		if (dir_user_list(d, rows.r[i].name, ctl_domain_count_user,
		    &rows.r[i].users, &why) < 0 ||
		    dir_alias_list(d, rows.r[i].name, ctl_domain_count_alias,
		    &rows.r[i].aliases, &why) < 0) {
			ctl_error("%s", buf_cstr(&why));
			goto out;
		}
	}
	ctl_listing_init(&lst, 4, (const char *const[]){"DOMAIN", "USERS",
	    "ALIASES", "POSTMASTER"});
	for (size_t i = 0; i < rows.n; i++) {
		char users[32], aliases[32];

		snprintf(users, sizeof(users), "%lld", rows.r[i].users);
		snprintf(aliases, sizeof(aliases), "%lld", rows.r[i].aliases);
		ctl_domain_postmaster(d, rows.r[i].name, &pm);
		ctl_table_add(&lst.t, (const char *const[]){rows.r[i].name, users,
		    aliases, buf_cstr(&pm)});
		ctl_json_open(&lst.j, '{');
		ctl_json_kstr(&lst.j, "domain", rows.r[i].name);
		ctl_json_kint(&lst.j, "users", rows.r[i].users);
		ctl_json_kint(&lst.j, "aliases", rows.r[i].aliases);
		ctl_json_kstr(&lst.j, "postmaster", buf_cstr(&pm));
		ctl_json_close(&lst.j, '}');
	}
	ctl_listing_print(ctl, &lst);
	ctl_listing_free(&lst);
	rc = CTL_EXIT_OK;
out:
	for (size_t i = 0; i < rows.n; i++)
		x_free(&rows.r[i].name);
	x_free(&rows.r);
	dir_close(&d);
	buf_free(&why);
	buf_free(&pm);
	return rc;
}
