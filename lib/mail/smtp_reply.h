/*
 * smtp_reply - the reply parser of herald's SMTP client: bytes from a
 * remote server to complete replies (RFC 5321 4.2), with the enhanced
 * status code (RFC 3463, 2034) and the EHLO keywords.
 *
 * Everything is bounded: a reply line is at most SMTP_REPLY_LINE_MAX
 * bytes with its CRLF (RFC 5321 4.5.3.1.5: 512), a reply at most
 * SMTP_REPLY_LINES_MAX lines. A line over the bound, a line without a
 * valid code, a continuation with another code or a NUL byte is an
 * error: the caller treats the connection as broken (a network error,
 * which defers). Other bytes (8-bit, control) are kept as they came;
 * whoever logs a reply escapes it (qmgr does for notes and DSNs).
 *
 * The caller owns a struct smtp_reply: smtp_reply_init, then feed it
 * input with smtp_reply_take until it says complete; smtp_reply_reset
 * before the next reply, smtp_reply_free at the end.
 */
#ifndef MAIL_SMTP_REPLY_H
#define MAIL_SMTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"

#define SMTP_REPLY_LINE_MAX 512		/* bytes of a line with CRLF */
#define SMTP_REPLY_LINES_MAX 100	/* lines of one reply */

struct smtp_reply {
	int code;		/* 200..599 once a line came, else 0 */
	bool done;		/* the last line came */
	char dsn[16];		/* "5.1.1" from the first line, or "" */
	struct buf text;	/* the lines' texts after "NNN-"/"NNN ",
				 * joined by '\n' */
	size_t nlines;
};

/* smtp_reply_init / _reset / _free */
void smtp_reply_init(struct smtp_reply *r);
void smtp_reply_reset(struct smtp_reply *r);
void smtp_reply_free(struct smtp_reply *r);

/* smtp_reply_line - one line without its line end; 1 when it was the
 * last line of the reply, 0 when more follow, -1 with why on a bad line */
int smtp_reply_line(struct smtp_reply *r, const char *line, size_t len,
    struct buf *why);
/* smtp_reply_take - take whole lines from the front of in (consumed):
 * 1 the reply is complete (bytes behind it stay in in), 0 more input is
 * needed, -1 with why (bad line, or an unfinished line already longer
 * than SMTP_REPLY_LINE_MAX) */
int smtp_reply_take(struct smtp_reply *r, struct buf *in, struct buf *why);

/* smtp_reply_class - 2, 3, 4 or 5 */
int smtp_reply_class(const struct smtp_reply *r);
/* smtp_reply_ehlo - does an EHLO reply list keyword (any case)? Its
 * parameters (NULL: none) go to *param_r when param_r is not NULL, valid
 * while r is */
bool smtp_reply_ehlo(const struct smtp_reply *r, const char *keyword,
    const char **param_r);
/* smtp_reply_format - "550 5.1.1 text text" on one line: the lines
 * joined by spaces, cut to max bytes */
void smtp_reply_format(const struct smtp_reply *r, struct buf *out,
    size_t max);

#endif
