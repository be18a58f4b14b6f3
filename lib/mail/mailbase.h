/*
 * mailbase - the mail store's base folder: the fixed part of the
 * mail_location template, in which the delivery agent (as vmail_user)
 * creates every mailbox.
 *
 * Started as root, master creates a missing base for vmail_user (the
 * services cannot: they run as their own users) and warns when an
 * existing one cannot be used; "heraldctl check" reports the same. An
 * existing base is never changed: it may be a system folder.
 */
#ifndef MAIL_MAILBASE_H
#define MAIL_MAILBASE_H

#include <sys/types.h>

struct buf;

/* mailbase_path - set out to the fixed folder of a mail_location
 * template: the part before the first '%' up to its last '/', or the
 * whole template if it has no '%' (trailing '/' removed); "" if none */
void mailbase_path(struct buf *out, const char *tmpl);

/* mailbase_mailbox_path - the Maildir folder of address addr: the
 * mail_location template tmpl with %d = domain, %n = local part, %u =
 * local@domain (all lowercased), %% = '%' (another %x stays as written).
 * A local part or domain that is empty, starts with '.', holds '/' or a
 * control character (or a domain holding "..") could leave the template's
 * folder: -1 with why. 0 with out set otherwise. */
int mailbase_mailbox_path(const char *tmpl, const char *addr, struct buf *out,
    struct buf *why);

/* mailbase_setup - create base if missing: missing parents mode 0755,
 * base itself 0700, owned by uid/gid when uid != (uid_t)-1. An existing
 * base is left as it is. 0, or -1 with why. */
int mailbase_setup(const char *base, uid_t uid, gid_t gid, struct buf *why);

/* mailbase_usable - can a process with uid and exactly the groups
 * gids[0..ngids) reach base and create folders in it? A missing part
 * counts as usable (mailbase_setup makes it so). 1 yes, 0 no (why names
 * the folder in the way), -1 error (why). */
int mailbase_usable(const char *base, uid_t uid, const gid_t *gids,
    int ngids, struct buf *why);

#endif
