/*
 * preflight - can a service load what it needs, as the user it runs as?
 *
 * master runs these before it accepts a configuration (at start and at
 * every reload), and heraldctl check runs them to report, so that a
 * certificate the services cannot load is refused with its reason
 * instead of leaving them crash-looping. Nothing is changed.
 *
 * The TLS check forks: the child drops to the service's user (setgroups,
 * setgid, setuid, each checked; only when root) and loads the certificate
 * chain and key exactly as the service will (tls_server_ctx_new), so a
 * key only root can read fails here as it would in the service. The
 * child's reason comes back over a pipe; the child is waited for, and
 * killed after PREFLIGHT_TIMEOUT_MS.
 */
#ifndef MAIL_PREFLIGHT_H
#define MAIL_PREFLIGHT_H

#include <sys/types.h>

struct buf;

#define PREFLIGHT_TIMEOUT_MS 10000

/* preflight_user - user name exists; its uid and gid (either may be
 * NULL); -1 with why naming setting */
int preflight_user(const char *setting, const char *name, uid_t *uid_r,
    gid_t *gid_r, struct buf *why);
/* preflight_group - group name exists; -1 with why naming setting */
int preflight_group(const char *setting, const char *name, gid_t *gid_r,
    struct buf *why);
/*
 * preflight_tls - cert_file (PEM chain) and key_file (PEM private key)
 * load and match, checked as user with its group and group (may be NULL)
 * when we are root, else as ourselves (user NULL: always as ourselves).
 * 0, or -1 with why.
 */
int preflight_tls(const char *user, const char *group, const char *cert_file,
    const char *key_file, struct buf *why);

#endif
