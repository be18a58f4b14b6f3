/*
 * peer - the client at the other end of a server's connection: its
 * address text, whether it is loopback, and how many sessions this
 * process has open from that address (for the *_client_limit settings).
 *
 * Every network server (smtpd, pop3d, imapd) opens a peer when it accepts
 * a connection and closes it when the session is freed. The counts are per
 * process, kept in a hash table that forgets an address when its last
 * session ends, so memory stays bounded by the open sessions.
 */
#ifndef MAIL_PEER_H
#define MAIL_PEER_H

#include <stdbool.h>

#define PEER_ADDR_SIZE 64

struct peer_count;

struct peer {
	char addr[PEER_ADDR_SIZE];	/* numeric text, or "unknown" */
	bool loopback;			/* 127/8, ::1, or a UNIX socket */
	struct peer_count *count;	/* sessions from addr */
};

/* peer_open - fill in p for the connected socket fd and count it */
void peer_open(struct peer *p, int fd);
/* peer_sessions - open sessions from p's address, p's own included */
unsigned peer_sessions(const struct peer *p);
/* peer_close - count p's session as ended (safe to call twice) */
void peer_close(struct peer *p);

#endif
