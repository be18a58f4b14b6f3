/*
 * addr - RFC 5321 mailbox and path syntax.
 *
 * Internal form (queue files, directory keys, logs): local@domain with the
 * local part unquoted (quoted-pairs resolved) and no source route; "" is
 * the null path <>. External form (SMTP wire, headers): the local part
 * quoted when it is not a dot-string. Lengths are bounded as RFC 5321
 * 4.5.3.1 says: local part 64, domain 255, path 256 octets.
 */
#ifndef MAIL_ADDR_H
#define MAIL_ADDR_H

#include <stdbool.h>
#include <stddef.h>

struct buf;

#define ADDR_MAX_LOCAL 64
#define ADDR_MAX_DOMAIN 255
#define ADDR_MAX_PATH 256

#define ADDR_ALLOW_NULL 0x1	/* <> accepted (MAIL FROM) */
#define ADDR_ALLOW_UTF8 0x2	/* RFC 6531 UTF-8 in local part and domain */
#define ADDR_LENIENT 0x4	/* accept a path without <> and a space
				   before it, as many clients send */

/* addr_parse_path - parse "<path>" at the start of s[0..len); the internal
 * form goes to out, *consumed says how many bytes the path took (the
 * caller parses the ESMTP parameters that follow). -1 with why (text fit
 * for a 501 reply) on a syntax error. */
int addr_parse_path(const char *s, size_t len, unsigned flags,
    struct buf *out, size_t *consumed, struct buf *why);
/* addr_parse_mailbox - parse a bare local@domain (no <>) in full */
int addr_parse_mailbox(const char *s, size_t len, unsigned flags,
    struct buf *out, struct buf *why);
/* addr_domain - the domain of an internal address (after the last '@'),
 * or "" */
const char *addr_domain(const char *addr);
/* addr_lookup_key - lowercased copy for directory lookups */
void addr_lookup_key(struct buf *out, const char *addr);
/* addr_strip_extension - if the local part holds delim (delim != 0),
 * out gets the address without "+ext" and 1 is returned; else 0 */
int addr_strip_extension(const char *addr, char delim, struct buf *out);
/* addr_externalize - append the external (quoted if needed) form */
void addr_externalize(struct buf *out, const char *addr);
/* addr_is_utf8 - true if the address holds non-ASCII bytes */
bool addr_is_utf8(const char *addr);

/* xtext (RFC 3461 4): decode into out; -1 on bad encoding */
int xtext_decode(const char *s, size_t len, struct buf *out);
void xtext_encode(const char *s, struct buf *out);

#endif
