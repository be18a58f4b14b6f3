/*
 * srs_site - SRS as this installation uses it: its secret file, its SRS
 * domain, and which senders are rewritten (lib/mail/srs.c does the
 * addresses themselves).
 *
 * The secret: srs_secret_file, one line of text (at least SRS_SECRET_MIN
 * bytes; a postsrsd secret file works as it is). master makes it at start
 * when it is missing (64 hex digits of getrandom) and gives it to
 * herald_user, mode 0600, so that only the services running as
 * herald_user (smtpd, which checks bounces to SRS addresses, and qmgr,
 * which rewrites the sender of forwarded mail and addresses their
 * notifications) can read it; local, imapd and pop3d (vmail_user), authd
 * and the signer cannot.
 *
 * The SRS domain: srs_domain, else mydomain, else myhostname if hosted,
 * else the first hosted domain (as for a bare "postmaster").
 *
 * Which senders: never the null sender, never a sender of a hosted domain
 * (postsrsd's SRS_EXCLUDE_DOMAINS with our own domains in it); others are
 * rewritten, an SRS0 of another domain to SRS1.
 *
 * The key is read once per process at its first use (after the privilege
 * drop) and kept; a failed read is tried again at the next use.
 */
#ifndef MAIL_SRS_SITE_H
#define MAIL_SRS_SITE_H

#include <sys/types.h>
#include <time.h>

struct buf;
struct dir;

/* srs_site_setup - master (at start and reload): make the secret file at
 * path if missing, give it to uid/gid ((uid_t)-1: leave the owner) with
 * mode 0600; -1 with why */
int srs_site_setup(const char *path, uid_t uid, gid_t gid, struct buf *why);
/* srs_site_domain - the SRS domain (see above) into out */
void srs_site_domain(struct dir *d, struct buf *out);
/* srs_site_forward - the envelope sender for mail forwarded to another
 * domain: 1 rewritten into out; 0 kept as it is (null sender, a hosted
 * domain, not rewritable); -1 with why (secret or directory unreadable:
 * the caller defers) */
int srs_site_forward(struct dir *d, time_t now, const char *sender,
    struct buf *out, struct buf *why);
/* srs_site_reverse - an SRS address at the SRS domain: 1 the original
 * address in out; 0 not one (out untouched); -1 forged, expired or
 * malformed (why), or the secret unreadable (why, *temp set) */
int srs_site_reverse(struct dir *d, time_t now, const char *addr,
    struct buf *out, int *temp, struct buf *why);

#endif
