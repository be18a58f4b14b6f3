/*
 * sasl - the server side of SASL PLAIN (RFC 4616) and LOGIN, parsed once
 * for every protocol server (smtpd AUTH, pop3d AUTH, imapd AUTHENTICATE).
 *
 * The protocol wrapper is the server's: it reads the mechanism name and
 * an optional initial response (SASL-IR, "=" meaning empty), and each
 * further client line, and hands the base64 text here. sasl_step()
 * answers with a challenge to send (base64, without the "+ " prefix), or
 * says the exchange is complete (authcid and password are then filled and
 * go to authd), cancelled (the client sent "*"), or malformed.
 *
 * PLAIN: "[authzid] NUL authcid NUL password". An authzid other than
 * empty or equal to authcid (case-insensitively) is refused: herald does
 * not let one user act as another. LOGIN: challenges "Username:" and
 * "Password:". Names and passwords must not contain NUL, CR or LF; sizes
 * are bounded by AUTH_USER_MAX and AUTH_PASSWORD_MAX (auth_client.h).
 *
 * A sasl_state holds a password: sasl_wipe() clears it; call it when done.
 */
#ifndef MAIL_SASL_H
#define MAIL_SASL_H

#include <stdbool.h>
#include <stddef.h>

#include "mail/auth_client.h"

struct buf;

enum sasl_mech { SASL_NONE, SASL_PLAIN, SASL_LOGIN };

enum sasl_status {
	SASL_CONTINUE,	/* send the challenge, feed the next client line */
	SASL_DONE,	/* authcid and password are ready */
	SASL_CANCELLED,	/* the client sent "*" */
	SASL_ERROR,	/* malformed (why says how) */
};

struct sasl_state {
	enum sasl_mech mech;
	int step;
	char authcid[AUTH_USER_MAX + 1];
	char password[AUTH_PASSWORD_MAX + 1];
};

/* sasl_mech_parse - "PLAIN"/"LOGIN" (any case) or SASL_NONE */
enum sasl_mech sasl_mech_parse(const char *name);
/* sasl_mech_list - "PLAIN LOGIN", for CAPA / EHLO / CAPABILITY */
const char *sasl_mech_list(void);

/* sasl_start - begin mech; initial is the SASL-IR text or NULL when the
 * client sent none; same results as sasl_step */
enum sasl_status sasl_start(struct sasl_state *s, enum sasl_mech mech,
    const char *initial, struct buf *challenge, struct buf *why);
/* sasl_step - feed one client line (base64, or "*") */
enum sasl_status sasl_step(struct sasl_state *s, const char *line,
    struct buf *challenge, struct buf *why);
/* sasl_wipe - clear the state, password first */
void sasl_wipe(struct sasl_state *s);

/* sasl_plaintext_rule - may a password cross a connection with this TLS
 * state and peer, with auth_plaintext = setting? With TLS always;
 * without, if setting is "always", or is "loopback" and the peer is
 * loopback (127/8, ::1, ::ffff:127.x, a UNIX socket). One rule for
 * pop3d and imapd. */
bool sasl_plaintext_rule(const char *setting, bool tls, bool loopback);
/* sasl_name_ok - a login name a server passes on to authd: 1 to
 * AUTH_USER_MAX bytes, no control characters */
bool sasl_name_ok(const char *p, size_t n);

/* base64 (RFC 4648, with padding) used by SASL: decode returns -1 on any
 * malformed input or when the result would exceed max bytes */
void sasl_base64_encode(const void *p, size_t n, struct buf *out);
int sasl_base64_decode(const char *text, size_t len, struct buf *out,
    size_t max);

#endif
