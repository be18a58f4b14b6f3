/*
 * peer - the client at the other end of a server's connection: its
 * address text, whether it is loopback, the key its sessions are counted
 * by, and how many sessions that key has open (for the *_client_limit
 * settings and smtpd_submit_uid_limit).
 *
 * Every network server (smtpd, pop3d, imapd) opens a peer when it accepts
 * a connection and closes it when the session is freed. A TCP client is
 * counted by its address text; a client on a UNIX socket (sendmail on
 * smtpd's "submit") by its uid, which the kernel tells (SO_PEERCRED), as
 * "uid:N", so that one local user cannot take the slots of the others.
 *
 * Counts are across all workers of the service when master passed the
 * service's shared table (peertab.h): $HERALD_PEER_FD names the inherited
 * descriptor and $HERALD_PEER_SLOT the slot this worker writes;
 * peer_attach_env() takes both (and clears them) at start. A service
 * started by hand has no table and counts the sessions of its own process
 * only, in a hash table that forgets a key when its last session ends, so
 * memory stays bounded by the open sessions.
 */
#ifndef MAIL_PEER_H
#define MAIL_PEER_H

#include <stdbool.h>

#include "mail/peertab.h"

#define PEER_ADDR_SIZE 64
#define PEER_KEY_SIZE PEERTAB_KEY_SIZE

/* what master sets for a worker of a service with a client table */
#define PEER_TABLE_FD_ENV "HERALD_PEER_FD"
#define PEER_TABLE_SLOT_ENV "HERALD_PEER_SLOT"

struct buf;
struct peer_count;

struct peer {
	char addr[PEER_ADDR_SIZE];	/* numeric text, "unix", "unknown" */
	char key[PEER_KEY_SIZE];	/* what is counted: addr, or "uid:N" */
	bool loopback;			/* 127/8, ::1, or a UNIX socket */
	long long uid;			/* of a UNIX client, else -1 */
	struct peer_count *count;	/* this process's sessions of key */
	int entry;			/* in the shared table, -1: none */
};

/*
 * Something else a client holds, counted like its sessions (smtpd: open
 * mail transactions) under a key of its own ("tx:" and the peer's key):
 * in the shared table when there is one, else in this process. When the
 * worker's region of the table is full, the item is counted in this
 * worker only.
 */
struct peer_tally {
	struct peer_count *count;	/* NULL: not counted */
	int entry;			/* in the shared table, -1: none */
};

/* peer_attach_env - use the table master passed, if any (at start,
 * before the first peer_open); a bad table is warned about and ignored */
void peer_attach_env(void);
/* peer_attach - use the table on fd (mapped; fd may be closed after) as
 * the writer of slot, whose region is cleared; -1 with why */
int peer_attach(int fd, unsigned slot, struct buf *why);
/* peer_detach - back to per-process counts (sessions must be closed) */
void peer_detach(void);
/* peer_open - fill in p for the connected socket fd and count it */
void peer_open(struct peer *p, int fd);
/* peer_sessions - open sessions with p's key, p's own included: in every
 * worker of the service with a table (one or two more may be open when
 * workers accept at the same moment), else in this process */
unsigned peer_sessions(const struct peer *p);
/* peer_close - count p's session as ended (safe to call twice) */
void peer_close(struct peer *p);
/* peer_tally_add - count one item of p's under prefix ("tx:"); returns
 * how many p's key now holds, this one included (see peer_sessions) */
unsigned peer_tally_add(struct peer_tally *t, const struct peer *p,
    const char *prefix);
/* peer_tally_del - the item ended (safe to call twice, or never added) */
void peer_tally_del(struct peer_tally *t);

#endif
