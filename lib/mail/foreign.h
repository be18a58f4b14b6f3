/*
 * foreign - lines of other protocols arriving at a mail server: an HTTP
 * or proxy method, or a header line, as a browser or proxy tricked into
 * connecting to port 25 or 110 sends them. Servers hang up on them
 * instead of answering each line with an error (Postfix's
 * smtpd_forbidden_commands).
 */
#ifndef MAIL_FOREIGN_H
#define MAIL_FOREIGN_H

#include <stdbool.h>
#include <stddef.h>

/* foreign_verb - is the first word verb[0..len) an HTTP/proxy method, a
 * "Name:" header field, or (any case) one of extra (NULL-terminated list,
 * or NULL)? */
bool foreign_verb(const char *verb, size_t len, const char *const *extra);

#endif
