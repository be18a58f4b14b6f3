/*
 * local_deliver - one copy of a message into one user's Maildir.
 *
 * The mailbox folder comes from the mail_location template; names that
 * could escape it ('/', a leading '.', control characters) are refused
 * (5.1.3). The Maildir is created on first delivery. The quota check adds
 * the message size to the Maildir's usage (maildir_usage). Delivery itself
 * is maildir_deliver(): "delivered" is reported only when it returned 0,
 * i.e. the file is synced and linked into new/ (DESIGN.md §4).
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/addr.h"
#include "mail/maildir.h"
#include "mail/params.h"
#include "mail/qfile.h"
#include "local.h"

/* local_mailbox_safe - may this name be one component of a path? */
static bool
local_mailbox_safe(const char *p, size_t n)
{
	if (n == 0 || p[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '/' || c < ' ' || c == 0x7f)
			return false;
	}
	return true;
}

/* local_mailbox_path - expand the mail_location template */
int
local_mailbox_path(const char *tmpl, const char *mailbox, struct buf *out,
    struct buf *why)
{
	struct buf addr = BUF_INIT;
	const char *at, *local, *domain;
	size_t llen;
	int ret = -1;

	addr_lookup_key(&addr, mailbox);
	at = strrchr(addr.data, '@');
	if (at == NULL) {
		buf_printf(why, "mailbox name \"%s\" has no domain", mailbox);
		goto out;
	}
	local = addr.data;
	llen = (size_t)(at - local);
	domain = at + 1;
	if (!local_mailbox_safe(local, llen) ||
	    !local_mailbox_safe(domain, strlen(domain)) ||
	    strstr(domain, "..") != NULL) {
		buf_puts(why, "mailbox name is not safe as a folder name");
		goto out;
	}
	buf_reset(out);
	for (const char *p = tmpl; *p; p++) {
		if (*p != '%') {
			buf_putc(out, *p);
			continue;
		}
		switch (p[1]) {
		case 'd':
			buf_puts(out, domain);
			break;
		case 'n':
			buf_append(out, local, llen);
			break;
		case 'u':
			buf_puts(out, addr.data);
			break;
		case '%':
			buf_putc(out, '%');
			break;
		default:
			/* unknown: keep it as written */
			buf_putc(out, '%');
			continue;
		}
		p++;
	}
	ret = 0;
out:
	buf_free(&addr);
	return ret;
}

/* local_deliver_error - the outcome of a failed maildir operation */
static void
local_deliver_error(struct local_outcome *out, int err, const char *why)
{
	if (err == ENOSPC || err == EDQUOT)
		local_outcome_set(out, LOCAL_DEFERRED, "4.3.1", "%s", why);
	else
		local_outcome_set(out, LOCAL_DEFERRED, "4.3.0", "%s", why);
}

/* local_deliver_box - deliver the message into box's Maildir */
void
local_deliver_box(const struct qfile *qf, int fd,
    const struct local_box *box, struct local_outcome *out)
{
	struct buf path = BUF_INIT, hdr = BUF_INIT, why = BUF_INIT;
	struct buf name = BUF_INIT, sub = BUF_INIT;
	struct stat st;

	if (local_mailbox_path(var_mail_location, box->addr, &path,
	    &why) < 0) {
		local_outcome_set(out, LOCAL_BOUNCED, "5.1.3", "%s",
		    buf_cstr(&why));
		goto out;
	}
	buf_printf(&sub, "%s/new", buf_cstr(&path));
	if (stat(buf_cstr(&sub), &st) < 0) {
		if (maildir_create(buf_cstr(&path), &why) < 0) {
			local_deliver_error(out, errno, buf_cstr(&why));
			msg_warn("create maildir for %s: %s", box->addr,
			    buf_cstr(&why));
			goto out;
		}
	}
	if (box->quota > 0) {
		long long used;

		if (maildir_usage(buf_cstr(&path), &used, &why) < 0) {
			local_deliver_error(out, errno, buf_cstr(&why));
			goto out;
		}
		if (used + (long long)qf->body_size > box->quota) {
			if (var_quota_exceeded_bounce)
				local_outcome_set(out, LOCAL_BOUNCED, "5.2.2",
				    "mailbox full");
			else
				local_outcome_set(out, LOCAL_DEFERRED, "4.2.2",
				    "mailbox full");
			goto out;
		}
	}
	buf_puts(&hdr, "Return-Path: <");
	addr_externalize(&hdr, qf->sender);
	buf_puts(&hdr, ">\nDelivered-To: ");
	buf_puts(&hdr, box->addr);
	buf_puts(&hdr, "\n");
	if (maildir_deliver(buf_cstr(&path), hdr.data, hdr.len, fd,
	    qf->body_off, qf->body_size, &name, &why) != 0) {
		int err = errno;

		msg_warn("delivery to %s: %s", box->addr, buf_cstr(&why));
		local_deliver_error(out, err, buf_cstr(&why));
		goto out;
	}
	msg_debug("delivered to %s: %s/new/%s", box->addr, buf_cstr(&path),
	    buf_cstr(&name));
	local_outcome_set(out, LOCAL_OK, "2.0.0", "delivered to maildir");
out:
	buf_free(&path);
	buf_free(&hdr);
	buf_free(&why);
	buf_free(&name);
	buf_free(&sub);
}
