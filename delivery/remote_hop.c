/*
 * remote_hop - where one request's mail goes: the recipient domain's
 * transport (heraldctl transport add; qmgr sends it), else relayhost,
 * else the domain's own MX hosts; and the credentials for that next hop
 * from smtp_sasl_password_file.
 *
 * The password file (lib/mail/saslpass.c) is read anew for each
 * request, so an edit takes effect at once: through remote_pass_fd,
 * opened before the privilege drop (remote.c), so the file may be
 * root's alone and the smtpd processes, which share herald_user, cannot
 * read it; a file replaced since is opened by path. A file that others could
 * read defers the mail with the reason, rather than send it on without
 * the login the admin meant. Passwords are wiped from memory when the
 * request is done and appear in no log line.
 */
#include <string.h>

#include "base/buf.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/params.h"
#include "mail/saslpass.h"
#include "remote.h"

int remote_pass_fd = -1;

/* remote_hop_creds - user and password for hop->name from the password
 * file, if any; -1 with why (the file is unusable) */
static int
remote_hop_creds(struct remote_hop *hop, struct buf *why)
{
	if (*var_smtp_sasl_password_file == '\0')
		return 0;
	if (saslpass_lookup(var_smtp_sasl_password_file, remote_pass_fd,
	    hop->name, &hop->user, &hop->pass, why) < 0)
		return -1;
	return 0;
}

/* remote_hop_find - the next hop of domain; -1 with why (defer) */
int
remote_hop_find(const char *transport, const char *domain,
    struct remote_hop *hop, struct buf *why)
{
	struct buf err = BUF_INIT;

	memset(hop, 0, sizeof(*hop));
	if (transport != NULL) {
		if (nexthop_parse(transport, &hop->nh, &err) < 0) {
			buf_printf(why, "transport of %s: %s", domain,
			    buf_cstr(&err));
			goto fail;
		}
		hop->via = "transport";
	} else if (*var_relayhost != '\0') {
		if (nexthop_parse(var_relayhost, &hop->nh, &err) < 0) {
			buf_printf(why, "relayhost: %s", buf_cstr(&err));
			goto fail;
		}
		hop->via = "relayhost";
	} else {
		/* by MX: the domain (or address literal) as it is */
		str_lcpy(hop->nh.host, domain, sizeof(hop->nh.host));
		hop->nh.mx = true;
		hop->via = NULL;
	}
	nexthop_text(&hop->nh, hop->name, sizeof(hop->name));
	if (remote_hop_creds(hop, why) < 0)
		goto fail;
	buf_free(&err);
	return 0;
fail:
	buf_free(&err);
	remote_hop_free(hop);
	return -1;
}

/* remote_hop_free - wipe and free the credentials */
void
remote_hop_free(struct remote_hop *hop)
{
	x_free(&hop->user);
	saslpass_free(&hop->pass);
}
