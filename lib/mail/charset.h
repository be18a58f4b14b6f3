/*
 * charset - conversion of text in a named charset to UTF-8 (iconv).
 *
 * Used for RFC 2047 encoded words, RFC 2231 parameter values and, later,
 * IMAP SEARCH CHARSET and body text. The output goes to a struct buf whose
 * limit (if any) bounds it. Bytes that are not valid in the charset become
 * U+FFFD and the conversion goes on; a charset iconv does not know is
 * reported and nothing is converted. Names are matched as iconv matches
 * them, plus the common aliases mail uses (utf8, latin1, ...).
 */
#ifndef MAIL_CHARSET_H
#define MAIL_CHARSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;

/* charset_to_utf8 - append in[0..n), in charset, to out as UTF-8; -1 if
 * the charset is unknown (out unchanged), else the number of invalid
 * input sequences replaced by U+FFFD (0 for clean input) */
int charset_to_utf8(const char *charset, const char *in, size_t n,
    struct buf *out);
/* charset_is_utf8 - true for the names of UTF-8 and its subset US-ASCII */
bool charset_is_utf8(const char *charset);
/* charset_utf8_decode - the length of the well-formed UTF-8 sequence at
 * p (of at most n > 0 bytes) with its code point in *cp_r, or 0 if there
 * is none (overlong, surrogate, above U+10FFFF, cut short) */
size_t charset_utf8_decode(const unsigned char *p, size_t n,
    uint32_t *cp_r);
/* charset_utf8_valid - true if p[0..n) is well-formed UTF-8 */
bool charset_utf8_valid(const char *p, size_t n);
/* charset_utf8_clean - append p[0..n) with every ill-formed UTF-8
 * sequence replaced by U+FFFD; returns how many were replaced */
size_t charset_utf8_clean(struct buf *out, const char *p, size_t n);
/* charset_utf8_encode - code point cp (at most U+10FFFF) as UTF-8 into
 * b; its length, 1 to 4 (the caller replaces surrogates and others it
 * does not want) */
size_t charset_utf8_encode(uint32_t cp, char b[4]);

#endif
