/*
 * ctl_transport - per-domain next hops: transport add, del, list.
 *
 * A transport sends a domain's mail to a named next hop instead of the
 * domain's MX hosts (as a Postfix transport map entry "domain
 * smtp:[host]:port"): "[host]:port" or "[host]" is that host itself, no
 * MX lookup; "host:port" or "host" the MX hosts of host. It overrides
 * relayhost for that domain. A hosted domain's mail is delivered here,
 * so it gets no transport. qmgr reads the table for every remote
 * request (and sends the entry along to the agent): a
 * change needs no reload.
 */
#include <stdio.h>

#include "base/buf.h"
#include "mail/dir.h"
#include "mail/nexthop.h"
#include "ctl.h"

/* ctl_transport_domain - check a DOMAIN operand into out */
int
ctl_transport_domain(const char *s, struct buf *out)
{
	struct buf why = BUF_INIT;
	int r = ctl_input_domain(s, out, &why);

	if (r < 0)
		ctl_error("%s", buf_cstr(&why));
	buf_free(&why);
	return r;
}

/* ctl_transport_add - set a domain's next hop */
int
ctl_transport_add(struct ctl *ctl, const struct ctl_args *a)
{
	struct buf dom = BUF_INIT, why = BUF_INIT;
	char text[NEXTHOP_TEXT_MAX];
	struct nexthop nh;
	struct dir *d = NULL;
	int rc = CTL_EXIT_FAIL;

	(void)ctl;
	if (ctl_transport_domain(a->pos[0], &dom) < 0)
		goto out;
	if (nexthop_parse(a->pos[1], &nh, &why) < 0) {
		ctl_error("%s (want [HOST]:PORT, [HOST], HOST:PORT or HOST)",
		    buf_cstr(&why));
		goto out;
	}
	nexthop_text(&nh, text, sizeof(text));
	if ((d = ctl_dir_open()) == NULL)
		goto out;
	if (dir_map_set(d, DIR_MAP_TRANSPORT, buf_cstr(&dom), text, &why) < 0) {
		ctl_error("%s", buf_cstr(&why));
		goto out;
	}
	printf("transport %s: %s (%s)\n", buf_cstr(&dom), text, nh.mx ?
	    "its MX hosts" : "that host, no MX lookup");
	rc = CTL_EXIT_OK;
out:
	dir_close(&d);
	buf_free(&dom);
	buf_free(&why);
	return rc;
}

/* ctl_transport_del - remove a domain's next hop */
int
ctl_transport_del(struct ctl *ctl, const struct ctl_args *a)
{
	struct buf dom = BUF_INIT, why = BUF_INIT;
	struct dir *d = NULL;
	int rc = CTL_EXIT_FAIL;

	(void)ctl;
	if (ctl_transport_domain(a->pos[0], &dom) < 0 ||
	    (d = ctl_dir_open()) == NULL)
		goto out;
	if (dir_map_del(d, DIR_MAP_TRANSPORT, buf_cstr(&dom), &why) < 0) {
		ctl_error("%s", buf_cstr(&why));
		goto out;
	}
	printf("transport %s deleted\n", buf_cstr(&dom));
	rc = CTL_EXIT_OK;
out:
	dir_close(&d);
	buf_free(&dom);
	buf_free(&why);
	return rc;
}

/* ctl_transport_row - one entry into the table and the JSON array */
static void
ctl_transport_row(const char *domain, const char *value, void *ctx)
{
	struct ctl_listing *l = ctx;

	ctl_json_open(&l->j, '{');
	ctl_json_kstr(&l->j, "domain", domain);
	ctl_json_kstr(&l->j, "nexthop", value);
	ctl_json_close(&l->j, '}');
	ctl_table_add(&l->t, (const char *const[]){domain, value});
}

/* ctl_transport_list - every transport */
int
ctl_transport_list(struct ctl *ctl, const struct ctl_args *a)
{
	struct buf why = BUF_INIT;
	struct ctl_listing l;
	struct dir *d;
	int rc = CTL_EXIT_FAIL;

	(void)a;
	if ((d = ctl_dir_open()) == NULL)
		return CTL_EXIT_FAIL;
	ctl_listing_init(&l, 2, (const char *const[]){"DOMAIN", "NEXTHOP"});
	if (dir_map_list(d, DIR_MAP_TRANSPORT, ctl_transport_row, &l,
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
