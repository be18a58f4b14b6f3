/*
 * maildir - Maildir++ delivery and sizes (DESIGN.md §7).
 *
 * Delivery follows the durability rule: a unique name in tmp/ opened with
 * O_CREAT|O_EXCL|O_NOFOLLOW, the whole message written and fsynced, then
 * linked into new/ (rename if link is not supported) and new/ fsynced.
 * Only then does the caller report success. File names are
 * "<sec>.M<usec>P<pid>Q<n>.<host>,S=<size>,W=<wsize>": S= is the file
 * size (quota sums skip stat()), W= the size with CRLF line ends, i.e.
 * the file with every LF that has no CR before it counted as CRLF (the
 * octets a POP3 RETR sends before dot-stuffing; Dovecot's convention).
 */
#ifndef MAIL_MAILDIR_H
#define MAIL_MAILDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct buf;

/* maildir_create - make path and its cur/ new/ tmp/ (mode 0700) */
int maildir_create(const char *path, struct buf *why);

/* maildir_deliver - write header (hlen bytes, LF line ends) then size
 * bytes of the message at offset off of fd into the Maildir at path,
 * converting CRLF line ends to LF (a lone CR stays); the final file name
 * in new/ (no folder) goes to name_r if not NULL. -1 with why; errno is kept from the failing call so the
 * caller can tell ENOSPC/EDQUOT (defer) from others. */
int maildir_deliver(const char *path, const char *header, size_t hlen,
    int fd, off_t off, off_t size, struct buf *name_r, struct buf *why);

/* maildir_usage - bytes used by messages in new/ and cur/ of the inbox
 * and of its Maildir++ .folders (from S= where present, else stat); a
 * missing Maildir uses 0 bytes */
int maildir_usage(const char *path, long long *bytes_r, struct buf *why);

#endif
