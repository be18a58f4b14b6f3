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
 * change needs no reload. The commands are ctl_map.c's over this table.
 */
#include "base/buf.h"
#include "mail/dir.h"
#include "mail/nexthop.h"
#include "ctl.h"

/* ctl_transport_check - a NEXTHOP operand, in nexthop_text's form, and
 * whether it means MX lookups */
static int
ctl_transport_check(const char *s, struct buf *value, struct buf *note,
    struct buf *why)
{
	char text[NEXTHOP_TEXT_MAX];
	struct nexthop nh;

	if (nexthop_parse(s, &nh, why) < 0) {
		buf_puts(why, " (want [HOST]:PORT, [HOST], HOST:PORT or HOST)");
		return -1;
	}
	nexthop_text(&nh, text, sizeof(text));
	buf_set(value, text);
	buf_puts(note, nh.mx ? " (its MX hosts)" :
	    " (that host, no MX lookup)");
	return 0;
}

static const struct ctl_map ctl_transport_map = {
	.table = DIR_MAP_TRANSPORT,
	.noun = "transport",
	.json_key = "nexthop",
	.column = "NEXTHOP",
	.check = ctl_transport_check,
};

/* ctl_transport_add - set a domain's next hop */
int
ctl_transport_add(struct ctl *ctl, const struct ctl_args *a)
{
	(void)ctl;
	return ctl_map_set(&ctl_transport_map, a);
}

/* ctl_transport_del - remove a domain's next hop */
int
ctl_transport_del(struct ctl *ctl, const struct ctl_args *a)
{
	(void)ctl;
	return ctl_map_del(&ctl_transport_map, a);
}

/* ctl_transport_list - every transport */
int
ctl_transport_list(struct ctl *ctl, const struct ctl_args *a)
{
	(void)a;
	return ctl_map_list(&ctl_transport_map, ctl);
}
