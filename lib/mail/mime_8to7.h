/*
 * mime_8to7 - make a message with 8-bit content fit for a server without
 * 8BITMIME (RFC 6152 3): every leaf part whose body holds 8-bit bytes is
 * re-encoded as quoted-printable (RFC 2045 6.7) and its
 * Content-Transfer-Encoding field replaced; a message that is not MIME
 * gets "MIME-Version: 1.0" too.
 *
 * It refuses (-1 with why) what cannot be converted without changing the
 * meaning: 8-bit bytes in a header (that needs SMTPUTF8), in a base64 or
 * quoted-printable body (invalid as it stands), or in a message past the
 * MIME parser's part and depth limits. Parsing is mime.c's (bounded,
 * never fails); the output is at most about three times the input.
 */
#ifndef MAIL_MIME_8TO7_H
#define MAIL_MIME_8TO7_H

#include <stdbool.h>
#include <stddef.h>

struct buf;

/* mime_8to7 - the 7-bit form of data[0..len) appended to out; 0, or -1
 * with why (out then holds garbage) */
int mime_8to7(const char *data, size_t len, struct buf *out,
    struct buf *why);
/* mime_has_8bit - does p[0..n) hold a byte over 127? */
bool mime_has_8bit(const char *p, size_t n);

#endif
