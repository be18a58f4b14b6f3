/*
 * ctl_dns - heraldctl dns lookup TYPE NAME: what herald's resolver
 * (lib/mail/dns.c, with the dns_* settings) answers, for an admin.
 *
 * Prints one line "NAME TYPE: status, security" and the records, one a
 * line; --json gives the same as an object. PTR takes an address too
 * (192.0.2.1 asks 1.2.0.192.in-addr.arpa). Exit 0 when records came,
 * 1 otherwise (nxdomain, nodata, tempfail, bogus), 2 for a bad type.
 */
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "mail/dns.h"
#include "ctl.h"

/* ctl_dns_security - "secure", "insecure" or "bogus" */
static const char *
ctl_dns_security(const struct dns_result *res)
{
	if (res->status == DNS_BOGUS)
		return "bogus";
	return res->secure ? "secure" : "insecure";
}

/* ctl_dns_print - the result as text or JSON */
static void
ctl_dns_print(const struct ctl *ctl, const char *name, uint16_t type,
    const struct dns_result *res)
{
	struct buf out = BUF_INIT, rr = BUF_INIT;
	struct ctl_json j;

	if (ctl->json) {
		ctl_json_init(&j, &out);
		ctl_json_open(&j, '{');
		ctl_json_kstr(&j, "name", name);
		ctl_json_kstr(&j, "type", dns_type_name(type));
		ctl_json_kstr(&j, "status", dns_status_name(res->status));
		ctl_json_kstr(&j, "security", ctl_dns_security(res));
		if (res->canon != NULL)
			ctl_json_kstr(&j, "canonical_name", res->canon);
		if (type == DNS_T_MX)
			ctl_json_kbool(&j, "null_mx", res->null_mx);
		if (res->why != NULL)
			ctl_json_kstr(&j, "reason", res->why);
		ctl_json_key(&j, "records");
		ctl_json_open(&j, '[');
		for (size_t i = 0; i < res->nrr; i++) {
			buf_reset(&rr);
			dns_rr_format(&res->rr[i], &rr);
			ctl_json_str(&j, buf_cstr(&rr));
		}
		ctl_json_close(&j, ']');
		ctl_json_close(&j, '}');
		ctl_json_print(&out);
	} else {
		/* security means something only for an answer */
		printf("%s %s: %s", name, dns_type_name(type),
		    dns_status_name(res->status));
		if (res->status != DNS_TEMPFAIL && res->status != DNS_BOGUS)
			printf(", %s", ctl_dns_security(res));
		if (res->null_mx)
			printf(", null MX (RFC 7505: the domain accepts no "
			    "mail)");
		if (res->why != NULL)
			printf(" (%s)", res->why);
		printf("\n");
		if (res->canon != NULL && strcmp(res->canon, name) != 0)
			printf("  canonical name: %s\n", res->canon);
		for (size_t i = 0; i < res->nrr; i++) {
			buf_reset(&rr);
			dns_rr_format(&res->rr[i], &rr);
			printf("  %s\n", buf_cstr(&rr));
		}
	}
	buf_free(&out);
	buf_free(&rr);
}

/* ctl_dns_lookup - heraldctl dns lookup TYPE NAME */
int
ctl_dns_lookup(struct ctl *ctl, const struct ctl_args *a)
{
	struct dns_result res = DNS_RESULT_INIT;
	struct buf why = BUF_INIT, name = BUF_INIT;
	struct dns *dns;
	uint16_t type = dns_type_code(a->pos[0]);
	int rc;

	if (type == 0 || type == DNS_T_CNAME) {
		ctl_error("unknown type \"%s\": A, AAAA, MX, TXT, TLSA or PTR",
		    a->pos[0]);
		return CTL_EXIT_USAGE;
	}
	if (type != DNS_T_PTR || dns_reverse_name(a->pos[1], &name) < 0)
		buf_set(&name, a->pos[1]);
	if (name.len > 1 && name.data[name.len - 1] == '.')
		buf_truncate(&name, name.len - 1);
	if (dns_new_params(&dns, &why) < 0) {
		ctl_error("dns: %s", buf_cstr(&why));
		buf_free(&why);
		buf_free(&name);
		return CTL_EXIT_FAIL;
	}
	(void)dns_lookup(dns, buf_cstr(&name), type, &res);
	ctl_dns_print(ctl, buf_cstr(&name), type, &res);
	rc = res.status == DNS_OK ? CTL_EXIT_OK : CTL_EXIT_FAIL;
	dns_result_free(&res);
	dns_free(&dns);
	buf_free(&why);
	buf_free(&name);
	return rc;
}
