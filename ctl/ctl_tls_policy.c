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
 * request: no reload. The commands are ctl_map.c's over this table.
 */
#include <string.h>

#include "base/buf.h"
#include "mail/dir.h"
#include "ctl.h"

static const char *const ctl_tls_policy_levels[] = {"none", "may",
    "encrypt", "verify", "dane", NULL};

/* ctl_tls_policy_check - a LEVEL operand: one of the levels */
static int
ctl_tls_policy_check(const char *s, struct buf *value, struct buf *note,
    struct buf *why)
{
	(void)note;
	for (int i = 0; ctl_tls_policy_levels[i] != NULL; i++)
		if (strcmp(s, ctl_tls_policy_levels[i]) == 0) {
			buf_set(value, s);
			return 0;
		}
	buf_printf(why, "%s: not a TLS level (none, may, encrypt, verify or "
	    "dane)", s);
	return -1;
}

static const struct ctl_map ctl_tls_policy_map = {
	.table = DIR_MAP_TLS_POLICY,
	.noun = "tls-policy",
	.json_key = "level",
	.column = "LEVEL",
	.check = ctl_tls_policy_check,
};

/* ctl_tls_policy_set - set a domain's TLS level */
int
ctl_tls_policy_set(struct ctl *ctl, const struct ctl_args *a)
{
	(void)ctl;
	return ctl_map_set(&ctl_tls_policy_map, a);
}

/* ctl_tls_policy_del - remove a domain's TLS level */
int
ctl_tls_policy_del(struct ctl *ctl, const struct ctl_args *a)
{
	(void)ctl;
	return ctl_map_del(&ctl_tls_policy_map, a);
}

/* ctl_tls_policy_list - every TLS policy */
int
ctl_tls_policy_list(struct ctl *ctl, const struct ctl_args *a)
{
	(void)a;
	return ctl_map_list(&ctl_tls_policy_map, ctl);
}
