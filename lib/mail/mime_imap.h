/*
 * mime_imap - IMAP's views of a parsed message (RFC 9051 7.5.2): the
 * ENVELOPE, BODY and BODYSTRUCTURE strings, and the string quoting every
 * IMAP response uses, written into a struct buf.
 *
 * The output follows RFC 9051's grammar exactly; values are the
 * message's own (ENVELOPE keeps encoded words; types, subtypes and
 * parameters keep their case) and sizes are what a client receives, bare
 * LFs counted as CRLF. Strings are quoted when they can be and literals
 * ({n}CRLF...) otherwise; a NUL, which no IMAP string can hold, is sent
 * as U+FFFD. The caller sends the buffer as it is.
 */
#ifndef MAIL_MIME_IMAP_H
#define MAIL_MIME_IMAP_H

#include <stdbool.h>
#include <stddef.h>

struct buf;
struct mime_message;
struct mime_part;

#define MIME_IMAP_UTF8 0x1	/* UTF8=ACCEPT: UTF-8 may be quoted */
/* bytes of one header field's value an ENVELOPE looks at: a longer
 * value (a hostile 50 MB Subject) is cut there, at a character
 * boundary, so that an ENVELOPE stays small enough to be cached once
 * and never costs a FETCH more than a bounded piece of work */
#define MIME_IMAP_FIELD_MAX (64 * 1024)

/* mime_imap_string - append s[0..n) as an IMAP string: quoted when it
 * has no CR, LF, NUL or (unless MIME_IMAP_UTF8 and it is valid UTF-8)
 * 8-bit byte and few '"' or '\'; a literal otherwise */
void mime_imap_string(struct buf *out, const char *s, size_t n,
    unsigned flags);
/* mime_imap_nstring - a C string as mime_imap_string, NULL as NIL */
void mime_imap_nstring(struct buf *out, const char *s, unsigned flags);
/* mime_imap_envelope - append the ENVELOPE of message part p (the root,
 * or the child of a message/rfc822 part); each field's value is read up
 * to MIME_IMAP_FIELD_MAX bytes (addresses: up to MIME_MAX_PARAMS * 16) */
void mime_imap_envelope(struct buf *out, const struct mime_message *m,
    const struct mime_part *p, unsigned flags);
/* mime_imap_bodystructure - append the BODYSTRUCTURE (extended true) or
 * BODY (false) of part p, usually m->root */
void mime_imap_bodystructure(struct buf *out, const struct mime_message *m,
    const struct mime_part *p, bool extended, unsigned flags);

#endif
