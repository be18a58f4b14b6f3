/*
 * spool - the queue's folders (DESIGN.md §4) and operations on them.
 *
 *   incoming/ active/ deferred/<h>/ hold/ corrupt/ private/
 *
 * There is no maildrop/: local submission (sendmail) goes through smtpd's
 * "submit" socket, so every message enters through smtpd's checks and
 * commit. A maildrop/ left by an older version is not touched.
 *
 * deferred/ is hashed by the last character of the queue id, so no folder
 * grows past a fraction of the queue.
 */
#ifndef MAIL_SPOOL_H
#define MAIL_SPOOL_H

#include <stdbool.h>
#include <sys/types.h>

struct buf;

#define SPOOL_INCOMING "incoming"
#define SPOOL_ACTIVE "active"
#define SPOOL_DEFERRED "deferred"
#define SPOOL_HOLD "hold"
#define SPOOL_CORRUPT "corrupt"
#define SPOOL_PRIVATE "private"

/* spool_folders - the folders above, NULL-terminated */
extern const char *const spool_folders[];

/* spool_setup - create the spool and its folders (mode 0700, private/ too),
 * owned by uid/gid when uid != (uid_t)-1; existing ones are kept, with
 * their mode set to 0700 and owner corrected; deferred/<h>/ for all 32
 * queue id digits. A folder that is a symlink is refused (the spool
 * itself may be one). The parent of spool_dir must exist. */
int spool_setup(const char *spool_dir, uid_t uid, gid_t gid,
    struct buf *why);
/* spool_path - set out to "<spool>/<folder>/<qid>" (deferred:
 * "<spool>/deferred/<h>/<qid>", h the last character of qid); panics if
 * qid fails qid_valid() (callers check ids from users and readdir first) */
void spool_path(struct buf *out, const char *spool_dir, const char *folder,
    const char *qid);
/* spool_sync_dir - fsync a folder: "<spool>/<folder>" (folder may be
 * "deferred/X") */
int spool_sync_dir(const char *spool_dir, const char *folder,
    struct buf *why);
/* spool_free_bytes - bytes available to unprivileged users on the spool */
int spool_free_bytes(const char *spool_dir, long long *bytes_r,
    struct buf *why);
/* spool_socket_path - set out to "<spool>/private/<service>" */
void spool_socket_path(struct buf *out, const char *spool_dir,
    const char *service);

#endif
