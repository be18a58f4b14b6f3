/*
 * local_deliver - one copy of a message into one user's Maildir, as part
 * of the batch local is delivering.
 *
 * The mailbox folder comes from the mail_location template
 * (mailbase_mailbox_path); names that could escape it are refused
 * (5.1.3). The Maildir is created on first delivery. The quota check adds
 * the message size to the Maildir's usage (maildir_usage) and to what the
 * batch holds for it already. The copy is written into the batch
 * (maildir_batch_add); "delivered" is reported only after the batch's
 * commit said the file is synced and linked into new/ (DESIGN.md §4).
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/log.h"
#include "mail/addr.h"
#include "mail/mailbase.h"
#include "mail/maildir.h"
#include "mail/params.h"
#include "mail/qfile.h"
#include "local.h"

/* local_deliver_error - the outcome of a failed maildir operation */
static void
local_deliver_error(struct outcome *out, int err, const char *why)
{
	if (err == ENOSPC || err == EDQUOT)
		outcome_set(out, OUTCOME_DEFERRED, "4.3.1", "%s", why);
	else
		outcome_set(out, OUTCOME_DEFERRED, "4.3.0", "%s", why);
}

/* local_deliver_box - write the copy for box into the batch mb: true
 * with *copy_r set, or false with out set (refused before writing) */
bool
local_deliver_box(const struct qfile *qf, int fd, const struct resolve_box *box,
    struct maildir_batch *mb, size_t *copy_r, struct outcome *out)
{
	struct buf path = BUF_INIT, hdr = BUF_INIT, why = BUF_INIT;
	struct buf sub = BUF_INIT;
	struct stat st;
	bool staged = false;

	if (mailbase_mailbox_path(var_mail_location, box->addr, &path,
	    &why) < 0) {
		outcome_set(out, OUTCOME_BOUNCED, "5.1.3", "%s",
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
		used += maildir_batch_pending(mb, buf_cstr(&path));
		if (used + (long long)qf->body_size > box->quota) {
			if (var_quota_exceeded_bounce)
				outcome_set(out, OUTCOME_BOUNCED, "5.2.2",
				    "mailbox full");
			else
				outcome_set(out, OUTCOME_DEFERRED, "4.2.2",
				    "mailbox full");
			goto out;
		}
	}
	buf_puts(&hdr, "Return-Path: <");
	addr_externalize(&hdr, qf->sender);
	buf_puts(&hdr, ">\nDelivered-To: ");
	buf_puts(&hdr, box->addr);
	buf_puts(&hdr, "\n");
	*copy_r = maildir_batch_add(mb, buf_cstr(&path), hdr.data, hdr.len, fd,
	    qf->body_off, qf->body_size);
	staged = true;
out:
	buf_free(&path);
	buf_free(&hdr);
	buf_free(&why);
	buf_free(&sub);
	return staged;
}

/* local_deliver_result - the outcome of box's copy after the commit */
void
local_deliver_result(const struct maildir_batch *mb, size_t copy,
    const struct resolve_box *box, struct outcome *out)
{
	struct buf name = BUF_INIT, why = BUF_INIT;

	if (maildir_batch_result(mb, copy, &name, &why) != 0) {
		int err = errno;

		msg_warn("delivery to %s: %s", box->addr, buf_cstr(&why));
		local_deliver_error(out, err, buf_cstr(&why));
	} else {
		msg_debug("delivered to %s: %s", box->addr, buf_cstr(&name));
		outcome_set(out, OUTCOME_OK, "2.0.0",
		    "delivered to maildir");
	}
	buf_free(&name);
	buf_free(&why);
}
