/*
 * preview - the preview text of a message (RFC 8970, IMAP FETCH PREVIEW):
 * a short plain-text extract of what the message says.
 *
 * The text comes from the first text part that is not an attachment:
 * the whole message, each part of a multipart/mixed in order, in a
 * multipart/alternative its text/plain part before its text/html one,
 * a message/rfc822 (forwarded, not attached) through to its own body.
 * text/html loses its tags, comments, <style>, <script> and <title>
 * contents, and its character references are decoded. The part is
 * transfer-decoded (base64, quoted-printable), converted from its charset
 * to UTF-8 (an unknown charset: its bytes are taken as UTF-8, ill-formed
 * sequences replaced by U+FFFD), quoted lines ("> ...") and everything
 * after a signature line ("-- ") are left out, and every run of
 * whitespace and control characters becomes one space, none at either
 * end.
 *
 * Guarantees: the result is well-formed UTF-8 without CR, LF, NUL or
 * other controls; it holds at most PREVIEW_CHARS characters (RFC 8970
 * 3.1: SHOULD 200, MUST NOT more than 256), cut on a character boundary,
 * so at most PREVIEW_MAX_BYTES bytes. It is "" when the message has no
 * usable text part (no text part, only attachments, an unknown
 * Content-Transfer-Encoding). Work is bounded: at most PREVIEW_PART_MAX
 * bytes of the chosen part are read, whatever the message size.
 */
#ifndef MAIL_PREVIEW_H
#define MAIL_PREVIEW_H

#include <stddef.h>

struct buf;
struct mime_message;

#define PREVIEW_CHARS 200			/* characters at most */
#define PREVIEW_MAX_BYTES (PREVIEW_CHARS * 4)	/* so bytes at most */
#define PREVIEW_PART_MAX (64 * 1024)		/* raw bytes of a part read */

/* preview_make - append the preview of m (mime_parse) to out */
void preview_make(const struct mime_message *m, struct buf *out);

/* preview_text - append the preview of one body p[0..n), already
 * transfer-decoded, in charset (NULL: us-ascii), HTML or plain */
void preview_text(const char *p, size_t n, const char *charset, int html,
    struct buf *out);

#endif
