/*
 * sendmail_verify - sendmail -bv: where herald would deliver an address,
 * found as qmgr and local find it (a hosted domain goes to local, which
 * resolves users, "+ext", aliases and the catch-all with
 * lib/mail/resolve.c; any other domain to the remote transport). Reads
 * the directory only; no mail is sent (sendmail.h).
 */
#include <string.h>

#include "base/buf.h"
#include "base/str.h"
#include "mail/addr.h"
#include "mail/dir.h"
#include "mail/outcome.h"
#include "mail/params.h"
#include "mail/resolve.h"
#include "sendmail.h"

/* sendmail_verify_addr - one line about addr (internal form) into line */
enum sendmail_verdict
sendmail_verify_addr(struct dir *d, const char *addr, struct buf *line)
{
	struct buf dom = BUF_INIT, why = BUF_INIT, ext = BUF_INIT;
	struct resolved r;
	enum sendmail_verdict v;
	int hosted;

	addr_externalize(&ext, addr);
	buf_printf(line, "%s: ", buf_cstr(&ext));
	buf_set(&dom, addr_domain(addr));
	str_lower(dom.data);
	hosted = dom.len == 0 ? 0 : dir_domain_exists(d, buf_cstr(&dom),
	    &why);
	if (hosted < 0) {
		buf_printf(line, "deferred: directory: %s", buf_cstr(&why));
		v = SENDMAIL_VERIFY_DEFERRED;
	} else if (hosted == 0) {
		/* what qmgr does with it: the remote transport */
		buf_printf(line, "undeliverable: %s is not hosted here and "
		    "remote delivery is not available",
		    dom.len > 0 ? buf_cstr(&dom) : "the domain");
		v = SENDMAIL_VERIFY_UNDELIVERABLE;
	} else {
		memset(&r, 0, sizeof(r));
		resolve_addr(d, addr, var_recipient_delimiter[0],
		    (int)var_alias_depth_limit, &r);
		if (r.fail.status == OUTCOME_DEFERRED) {
			buf_printf(line, "deferred: %s %s", r.fail.dsn,
			    buf_cstr(&r.fail.reason));
			v = SENDMAIL_VERIFY_DEFERRED;
		} else if (r.fail.status == OUTCOME_BOUNCED || (r.nbox == 0 &&
		    r.nremote == 0)) {
			buf_printf(line, "undeliverable: %s %s",
			    r.fail.status == OUTCOME_BOUNCED ? r.fail.dsn :
			    "5.1.1", r.fail.status == OUTCOME_BOUNCED ?
			    buf_cstr(&r.fail.reason) : "no such mailbox");
			v = SENDMAIL_VERIFY_UNDELIVERABLE;
		} else {
			if (r.nbox > 0)
				buf_printf(line, "deliverable to mailbox%s ",
				    r.nbox > 1 ? "es" : "");
			for (size_t i = 0; i < r.nbox; i++)
				buf_printf(line, "%s%s", i > 0 ? ", " : "",
				    r.box[i].addr);
			if (r.nremote > 0)
				buf_printf(line, "%sforwarded to ",
				    r.nbox > 0 ? ", " : "deliverable: ");
			for (size_t i = 0; i < r.nremote; i++)
				buf_printf(line, "%s%s", i > 0 ? ", " : "",
				    r.remote[i]);
			if (r.top_alias != NULL)
				buf_printf(line, " (alias %s)", r.top_alias);
			v = SENDMAIL_VERIFY_OK;
		}
		resolve_free(&r);
	}
	/* the line goes to a terminal: no escape sequences from the
	 * directory or the caller */
	for (size_t i = 0; i < line->len; i++)
		if ((unsigned char)line->data[i] < 0x20 ||
		    line->data[i] == 0x7f)
			line->data[i] = '?';
	buf_free(&dom);
	buf_free(&why);
	buf_free(&ext);
	return v;
}
