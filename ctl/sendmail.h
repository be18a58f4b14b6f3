/*
 * sendmail - the parts of the sendmail command (ctl/sendmail.c) that
 * unit tests and the fuzz target (t/fuzz/sendmail_fuzz.c) reach: options
 * and modes, reading the message from standard input, recipients from
 * its header (-t), the envelope and the header fields a local message
 * should carry (sendmail_msg.c, sendmail_env.c); the -bs relay over
 * descriptors it is given (sendmail_relay.c) and the -bv lookup in a
 * directory it is given (sendmail_verify.c).
 *
 * What a local program hands over is trusted for nothing: every address
 * (-f, -r, the arguments, the header's with -t) is checked with smtpd's
 * own parser (lib/mail/addr.c) before it goes into a command line, so a
 * CR or LF can never end MAIL FROM or RCPT TO early and start commands
 * of its own. Line ends of the message are never a reason to refuse it:
 * bare CR, bare LF and CRLF all become CRLF.
 */
#ifndef CTL_SENDMAIL_H
#define CTL_SENDMAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct buf;

/* what the command is to do: the -b mode, -q, or what argv[0] says
 * (mailq is -bp, newaliases is -bi) */
enum sendmail_mode {
	SENDMAIL_DELIVER,	/* -bm, the default: send the message */
	SENDMAIL_LIST,		/* -bp, mailq: print the queue */
	SENDMAIL_FLUSH,		/* -q: retry the deferred mail now */
	SENDMAIL_SMTP,		/* -bs: SMTP on standard input and output */
	SENDMAIL_VERIFY,	/* -bv: where the addresses would go */
	SENDMAIL_ALIASES,	/* -bi, -I, newaliases: nothing to rebuild */
};

/* what the command line asked for */
struct sendmail_opts {
	enum sendmail_mode mode;
	const char *config;	/* -C */
	const char *sender;	/* -f / -r, NULL: the invoking user */
	const char *fullname;	/* -F */
	bool header_rcpts;	/* -t */
	bool dot_ends;		/* no -i / -oi: a "." line ends input */
	const char *refuse;	/* a mode we do not do, and what to use */
	char **rcpts;		/* the arguments */
	int nrcpt;
};

/* sendmail_parse_opts - Postfix-compatible options, and the mode that
 * argv[0] (its last path component) or the options ask for; -1 with why
 * on a usage error. A mode herald does not do sets refuse. */
int sendmail_parse_opts(int argc, char **argv, struct sendmail_opts *o,
    struct buf *why);

/*
 * sendmail_eol - the line-end normaliser: bytes in any chunks in, the
 * same bytes out with every line end CRLF. A line ends at CRLF, at a
 * bare LF or at a bare CR (progress bars: "10%\r 50%\r100%\n"); a CR
 * that ends one chunk and an LF that starts the next are one CRLF. The
 * output does not depend on how the input was cut, and it holds no CR
 * or LF outside a CRLF pair.
 */
struct sendmail_eol {
	bool dot_ends;	/* a line "." ends the message */
	bool cr;	/* the last byte was a CR: an LF now belongs to it */
	bool bol;	/* at the start of a line */
	bool dot;	/* the line so far is "." (held back, not yet out) */
	bool done;	/* a "." line ended the message */
};

/* sendmail_eol_init - a normaliser at the start of a message */
void sendmail_eol_init(struct sendmail_eol *e, bool dot_ends);
/* sendmail_eol_feed - normalise p[0..n) onto out; returns the bytes
 * taken: n, or fewer when a "." line ended the message (e->done) */
size_t sendmail_eol_feed(struct sendmail_eol *e, const char *p, size_t n,
    struct buf *out);
/* sendmail_eol_end - the input ended: a last line without a line end
 * gets CRLF */
void sendmail_eol_end(struct sendmail_eol *e, struct buf *out);
/* sendmail_read - the message from in through the normaliser into out;
 * a line "." ends it when dot_ends. -1 with why when it is longer than
 * max bytes or cannot be read. */
int sendmail_read(FILE *in, bool dot_ends, size_t max, struct buf *out,
    struct buf *why);
/* sendmail_header_rcpts - -t: append the addresses of To:, Cc: and
 * Bcc: to rcpts (a NUL-separated list, count in *n; folded fields are
 * unfolded, a NUL byte becomes 0x7f, which no address may hold) and
 * remove the Bcc: fields from msg. The addresses are not checked yet. */
void sendmail_header_rcpts(struct buf *msg, struct buf *rcpts, size_t *n);
/* sendmail_complete - add From:, Date: and Message-ID: when the header
 * has none (Postfix does the same for local mail) */
void sendmail_complete(struct buf *msg, const char *from,
    const char *fullname, const char *hostname);

/* the envelope, every address checked, in internal form (addr.h) */
struct sendmail_env {
	struct buf sender;	/* "" for the null sender <> */
	char **rcpt;		/* nrcpt addresses, owned */
	size_t nrcpt;
};

#define SENDMAIL_ADDR_SENDER 0x1	/* "" and "<>" are the null sender */

/* sendmail_env_address - one address as users write it: local@domain,
 * <local@domain>, or a login name, which gets "@hostname". Checked with
 * smtpd's path parser (UTF-8 allowed); the internal form goes to out.
 * -1 with why on a control character, a bad syntax or an empty one. */
int sendmail_env_address(const char *s, unsigned flags, const char *hostname,
    struct buf *out, struct buf *why);
/* sendmail_env_build - the sender (-f/-r, else login) and recipients
 * (the arguments, then the nhdr addresses of hdr that -t found), each
 * through sendmail_env_address, into e (sendmail_env_free it, also
 * after a failure). 0, or the sysexits code with why: EX_USAGE for a bad
 * address on the command line or none at all, EX_DATAERR for a bad one
 * in the message header. */
int sendmail_env_build(const struct sendmail_opts *o, const char *login,
    const struct buf *hdr, size_t nhdr, const char *hostname,
    struct sendmail_env *e, struct buf *why);
/* sendmail_env_free - release what sendmail_env_build filled in */
void sendmail_env_free(struct sendmail_env *e);

/*
 * sendmail_relay - -bs: carry the bytes of an SMTP session between in
 * (the caller's standard input) and sock (smtpd's submission socket,
 * made non-blocking here) and from sock to out, unchanged. Each way has
 * one fixed buffer; in and out may be pipes, terminals or files and stay
 * blocking. When in ends, sock's write side is shut down; the relay ends
 * when smtpd closes and all it sent is written. 0 then; -1 with why on
 * an I/O error; -2 with why when nothing moved either way for idle_ms.
 */
int sendmail_relay(int in, int out, int sock, int idle_ms, struct buf *why);

struct dir;

/* what -bv found for one address */
enum sendmail_verdict {
	SENDMAIL_VERIFY_OK,		/* deliverable */
	SENDMAIL_VERIFY_UNDELIVERABLE,	/* would bounce */
	SENDMAIL_VERIFY_DEFERRED,	/* cannot tell now (directory) */
};

/* sendmail_verify_addr - -bv: where addr (internal form, checked) would
 * go, as qmgr routes and local resolves it, into line (Postfix-like:
 * "addr: deliverable to mailbox u@d" or "addr: undeliverable: 5.1.1
 * reason"; no control characters). Read only: nothing is sent. */
enum sendmail_verdict sendmail_verify_addr(struct dir *d, const char *addr,
    struct buf *line);

#endif
