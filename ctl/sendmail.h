/*
 * sendmail - the parts of the sendmail command (ctl/sendmail.c) that do
 * not talk to anything: options, reading the message from standard
 * input, recipients from its header (-t) and the header fields a local
 * message should carry. Kept apart so unit tests can reach them.
 */
#ifndef CTL_SENDMAIL_H
#define CTL_SENDMAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct buf;

/* what the command line asked for */
struct sendmail_opts {
	const char *config;	/* -C */
	const char *sender;	/* -f / -r, NULL: the invoking user */
	const char *fullname;	/* -F */
	bool header_rcpts;	/* -t */
	bool dot_ends;		/* no -i / -oi: a "." line ends input */
	const char *refuse;	/* a mode we do not do, and what to use */
	char **rcpts;		/* the arguments */
	int nrcpt;
};

/* sendmail_parse_opts - Postfix-compatible options; -1 with why on a
 * usage error */
int sendmail_parse_opts(int argc, char **argv, struct sendmail_opts *o,
    struct buf *why);
/* sendmail_read - the message from in, LF or CRLF, into out with CRLF
 * line ends; a line "." ends it when dot_ends. -1 with why when it is
 * longer than max bytes or cannot be read. */
int sendmail_read(FILE *in, bool dot_ends, size_t max, struct buf *out,
    struct buf *why);
/* sendmail_header_rcpts - -t: append the addresses of To:, Cc: and
 * Bcc: to rcpts (a NUL-separated list, count in *n) and remove the Bcc:
 * fields from msg */
void sendmail_header_rcpts(struct buf *msg, struct buf *rcpts, size_t *n);
/* sendmail_complete - add From:, Date: and Message-ID: when the header
 * has none (Postfix does the same for local mail) */
void sendmail_complete(struct buf *msg, const char *from,
    const char *fullname, const char *hostname);
/* sendmail_qualify - an address without "@" gets "@hostname" */
void sendmail_qualify(const char *addr, const char *hostname,
    struct buf *out);

#endif
