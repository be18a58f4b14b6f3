/*
 * saslpass - the smtp_sasl_password_file: "nexthop user:password" lines
 * ('#' comments, blank lines), nexthop as in relayhost (nexthop.h), the
 * logins remote uses for AUTH to a next hop.
 *
 * The file holds secrets: it is used only when it is a regular file of
 * the reading service's user or root that nobody else can read (no
 * world access, no group write, group read only when root owns it and
 * the group is the service's own: 0600, or 0640 root:herald). Passwords
 * are wiped from every buffer this module fills or frees; no message it
 * writes quotes a line of the file.
 */
#ifndef MAIL_SASLPASS_H
#define MAIL_SASLPASS_H

#include <stdbool.h>
#include <sys/stat.h>
#include <sys/types.h>

struct buf;

#define SASLPASS_FILE_MAX 65536		/* bytes of the file */

/* saslpass_mode_ok - may a service running as uid:gid use a file with
 * st? 0, or -1 with why ("owner 0, group 0, mode 0644: others could
 * read the passwords ...") */
int saslpass_mode_ok(const struct stat *st, uid_t uid, gid_t gid,
    struct buf *why);
/* saslpass_open - the file at path opened for saslpass_lookup's held
 * (remote opens it as root, before its privilege drop, so the file may
 * be root's alone); -1 with why */
int saslpass_open(const char *path, struct buf *why);
/* saslpass_lookup - the login for nexthop (canonical text) in the file
 * at path (read through held, a saslpass_open descriptor or -1, while
 * that file is still linked), checked for this process's euid and egid:
 * 1 with *user_r and *pass_r (free the password with saslpass_free), 0
 * none, -1 with why (the file is unusable) */
int saslpass_lookup(const char *path, int held, const char *nexthop,
    char **user_r, char **pass_r, struct buf *why);
/* saslpass_count - the number of good lines, for heraldctl check; bad
 * lines counted in *bad; -1 with why */
int saslpass_count(const char *path, uid_t uid, gid_t gid, int *bad,
    struct buf *why);
/* saslpass_free - wipe and free a password */
void saslpass_free(char **pass);

#endif
