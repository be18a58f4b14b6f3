/*
 * mutf7 - IMAP's modified UTF-7 (RFC 3501 §5.1.3) and the mapping of IMAP
 * folder names to Maildir++ folders on disk.
 *
 * Modified UTF-7: printable US-ASCII but '&' stands for itself, "&-" is
 * '&', anything else is UTF-16 in a base64 variant (',' for '/', no '=')
 * between '&' and '-'. The decoder is strict and only accepts the one
 * canonical form the encoder writes: no raw byte outside 0x20..0x7e, no
 * printable ASCII inside base64, no two encoded runs side by side, no
 * leftover bits that are not zero, no unpaired surrogate, no NUL. So
 * decode(encode(x)) == x and encode(decode(y)) == y whenever they succeed.
 *
 * Folder names: an IMAP client names a folder in UTF-8 (IMAP4rev2,
 * UTF8=ACCEPT) or in modified UTF-7 (IMAP4rev1). herald keeps the
 * UTF-8 form inside and the Maildir++ form on disk, as Dovecot does:
 * hierarchy separator '.', the folder "A.B" is the folder ".A.B" beside
 * cur/ new/ tmp/ of the INBOX, and the name on disk is in modified UTF-7.
 * "INBOX" (any case) is the Maildir itself. Names holding '/', a control
 * character, the wildcards '*' and '%', an empty level (leading, trailing
 * or doubled '.') or more than MUTF7_NAME_MAX bytes on disk are refused.
 */
#ifndef MAIL_MUTF7_H
#define MAIL_MUTF7_H

#include <stdbool.h>
#include <stddef.h>

struct buf;

#define MUTF7_NAME_MAX 200	/* bytes of a folder name on disk, with '.' */
#define MUTF7_INPUT_MAX 4096	/* longest text either converter takes */

/* mutf7_decode - modified UTF-7 in[0..n) appended to out as UTF-8; -1
 * with why (out may hold part of it) */
int mutf7_decode(const char *in, size_t n, struct buf *out, struct buf *why);

/* mutf7_encode - UTF-8 in[0..n) appended to out as modified UTF-7; -1
 * with why for bytes that are not well-formed UTF-8 or a NUL, or when
 * either side is longer than MUTF7_INPUT_MAX (out then unchanged) */
int mutf7_encode(const char *in, size_t n, struct buf *out, struct buf *why);

/* mutf7_utf8_valid - in[0..n) is well-formed UTF-8 (no overlong form,
 * surrogate or code point above U+10FFFF) without NUL */
bool mutf7_utf8_valid(const char *in, size_t n);

/*
 * mutf7_folder_name - check the IMAP folder name s as a client sent it
 * (utf8: the session uses UTF-8 names, else modified UTF-7) and set out
 * to its UTF-8 form, "INBOX" for any case of INBOX (and an "INBOX."
 * prefix written in another case); -1 with why.
 */
int mutf7_folder_name(const char *s, bool utf8, struct buf *out,
    struct buf *why);

/* mutf7_folder_disk - the Maildir++ folder of the checked UTF-8 name:
 * "" for INBOX, else "." and the name in modified UTF-7; -1 with why */
int mutf7_folder_disk(const char *name, struct buf *out, struct buf *why);

/* mutf7_folder_from_disk - the UTF-8 name of the Maildir++ folder entry
 * d (".A.B"); -1 with why when d is not a folder name herald would make
 * (tools may leave anything there: callers skip such entries) */
int mutf7_folder_from_disk(const char *d, struct buf *out, struct buf *why);

#endif
