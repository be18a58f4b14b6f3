/*
 * ctl_tls_policy - per-destination TLS policy: tls-policy set, del, list
 * (Postfix's smtp_tls_policy_maps entries "domain level").
 *
 * A domain's policy replaces smtp_tls_security_level for mail to it:
 * none (never STARTTLS), may (STARTTLS when offered), encrypt (STARTTLS
 * required: else defer, never plaintext), verify (encrypt, and the
 * certificate chains to a trusted CA and names the host), dane (DANE,
 * RFC 7672: the certificate matches the host's DNSSEC-secure TLSA
 * records; delivery/remote_mx.c). Keyed by
 * the recipient domain, whatever its next hop. Read by qmgr for every
 * request: no reload.
 */
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "mail/dir.h"
#include "ctl.h"

static const char *const ctl_tls_policy_levels[] = {"none", "may",
    "encrypt", "verify", "dane", NULL};

/* ctl_tls_policy_set - set a domain's TLS level */
int
ctl_tls_policy_set(struct ctl *ctl, const struct ctl_args *a)
{
	struct buf dom = BUF_INIT, why = BUF_INIT;
	struct dir *d = NULL;
	const char *level = NULL;
	int rc = CTL_EXIT_FAIL;

	(void)ctl;
	if (ctl_transport_domain(a->pos[0], &dom) < 0)
		goto out;
	for (int i = 0; ctl_tls_policy_levels[i] != NULL; i++)
		if (strcmp(a->pos[1], ctl_tls_policy_levels[i]) == 0)
			level = ctl_tls_policy_levels[i];
	if (level == NULL) {
		ctl_error("%s: not a TLS level (none, may, encrypt, verify or "
		    "dane)", a->pos[1]);
		goto out;
	}
	if ((d = ctl_dir_open()) == NULL)
		goto out;
	if (dir_map_set(d, DIR_MAP_TLS_POLICY, buf_cstr(&dom), level,
	    &why) < 0) {
		ctl_error("%s", buf_cstr(&why));
		goto out;
	}
	printf("tls-policy %s: %s\n", buf_cstr(&dom), level);
	rc = CTL_EXIT_OK;
out:
	dir_close(&d);
	buf_free(&dom);
	buf_free(&why);
	return rc;
}

/* ctl_tls_policy_del - remove a domain's TLS level */
int
ctl_tls_policy_del(struct ctl *ctl, const struct ctl_args *a)
{
	struct buf dom = BUF_INIT, why = BUF_INIT;
	struct dir *d = NULL;
	int rc = CTL_EXIT_FAIL;

	(void)ctl;
	if (ctl_transport_domain(a->pos[0], &dom) < 0 ||
	    (d = ctl_dir_open()) == NULL)
		goto out;
	if (dir_map_del(d, DIR_MAP_TLS_POLICY, buf_cstr(&dom), &why) < 0) {
		ctl_error("%s", buf_cstr(&why));
		goto out;
	}
	printf("tls-policy %s deleted\n", buf_cstr(&dom));
	rc = CTL_EXIT_OK;
out:
	dir_close(&d);
	buf_free(&dom);
	buf_free(&why);
	return rc;
}

/* ctl_tls_policy_row - one entry into the table and the JSON array */
static void
ctl_tls_policy_row(const char *domain, const char *value, void *ctx)
{
	struct ctl_listing *l = ctx;

	ctl_json_open(&l->j, '{');
	ctl_json_kstr(&l->j, "domain", domain);
	ctl_json_kstr(&l->j, "level", value);
	ctl_json_close(&l->j, '}');
	ctl_table_add(&l->t, (const char *const[]){domain, value});
}

/* ctl_tls_policy_list - every TLS policy */
int
ctl_tls_policy_list(struct ctl *ctl, const struct ctl_args *a)
{
	struct buf why = BUF_INIT;
	struct ctl_listing l;
	struct dir *d;
	int rc = CTL_EXIT_FAIL;

	(void)a;
	if ((d = ctl_dir_open()) == NULL)
		return CTL_EXIT_FAIL;
	ctl_listing_init(&l, 2, (const char *const[]){"DOMAIN", "LEVEL"});
	if (dir_map_list(d, DIR_MAP_TLS_POLICY, ctl_tls_policy_row, &l,
	    &why) < 0) {
		ctl_error("%s", buf_cstr(&why));
	} else {
		ctl_listing_print(ctl, &l);
		rc = CTL_EXIT_OK;
	}
	ctl_listing_free(&l);
	dir_close(&d);
	buf_free(&why);
	return rc;
}
