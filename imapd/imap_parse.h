/*
 * imap_parse - the IMAP command parser (RFC 9051 section 9, RFC 3501
 * section 9): assembling a command from the client's bytes, tokens,
 * sequence sets and SEARCH programs. Pure code: no I/O, no session; the
 * session feeds bytes and acts on the events.
 *
 * Assembly (struct imap_parser). A command is one or more lines joined
 * by literals: a line that ends in "{n}" (synchronizing: the server must
 * say "+" first), "{n+}" (non-synchronizing, RFC 7888 LITERAL+) or
 * "~{n}" (literal8, RFC 3516) is followed by n raw bytes, then the rest
 * of the command. imap_parser_feed() scans every byte once, whatever the
 * chunks are (a line split anywhere, a literal in pieces), and keeps the
 * command in p->cmd: the lines without their CRLF, each literal's bytes
 * right after its "{n}" header, and the literals' places in p->lit.
 * Bounds: one line (line_max), the whole command (cmd_max), one literal
 * (literal_max), literals per command (IMAP_LITERALS_MAX).
 *
 * Over a bound the command is refused, never half-run:
 *   - a line over line_max is skipped to its LF (a literal header at its
 *     end still counts, so the literal's bytes are skipped too and never
 *     read as commands), then IMAP_FEED_ERROR;
 *   - a synchronizing literal over literal_max: the client waits for "+"
 *     and will not send it, so the command ends there: IMAP_FEED_ERROR
 *     with IMAP_ERR_TOOBIG (answered NO [TOOBIG]);
 *   - a non-synchronizing literal over the bound comes anyway: up to
 *     discard_max bytes it is read and thrown away with the rest of the
 *     command, then IMAP_FEED_ERROR (BAD [TOOBIG], RFC 7888 section 4);
 *     a larger one is IMAP_FEED_FATAL (BYE, close the connection);
 *   - more than IMAP_SKIP_MAX bytes skipped without a line feed:
 *     IMAP_FEED_FATAL.
 *
 * Tokens (struct imap_cursor) walk an assembled command: atoms, strings
 * (quoted, with the escapes \" and \\, or literal), "(" and ")" with a
 * nesting bound (IMAP_LIST_DEPTH_MAX), end of command. One space
 * separates tokens; an atom that opens "[" may be followed directly by
 * a list, and ")" by an atom that starts with "]" (FETCH's
 * BODY[HEADER.FIELDS (From)]). imap_syntax_check() walks a whole command
 * so that malformed input gets BAD before any handler sees it.
 *
 * Sequence sets (RFC 9051 9: sequence-set, "$" of RFC 5182) become a
 * bounded array of ranges; SEARCH programs (every RFC 9051 search key,
 * the RFC 3501 ones it dropped, MODSEQ of RFC 7162, RETURN options of
 * RFC 4731, CHARSET) become a tree, bounded in depth and size. Their
 * evaluation belongs to the mailbox code.
 */
#ifndef IMAPD_IMAP_PARSE_H
#define IMAPD_IMAP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define IMAP_LITERALS_MAX 256	/* literals in one command */
#define IMAP_LIST_DEPTH_MAX 16	/* nesting of parenthesised lists */
#define IMAP_SKIP_MAX (64 * 1024)	/* bytes skipped without a LF */
#define IMAP_TAG_MAX 64		/* a longer tag is not echoed */
#define IMAP_SEQSET_MAX 10000	/* ranges of one sequence set */
#define IMAP_SEARCH_DEPTH_MAX 32	/* nesting of NOT/OR/() in SEARCH */
#define IMAP_SEARCH_KEYS_MAX 1000	/* keys of one SEARCH program */
/* BODY and TEXT keys of one SEARCH program: each one decodes and reads
 * every body it is tried on, so they bound a message's cost */
#define IMAP_SEARCH_TEXTS_MAX 16

/* what imap_parser_feed stopped at */
enum imap_feed {
	IMAP_FEED_MORE,		/* everything taken; feed more */
	IMAP_FEED_COMMAND,	/* a whole command is in p->cmd */
	IMAP_FEED_CONTINUE,	/* send "+ ...", then feed on */
	IMAP_FEED_ERROR,	/* the command was refused (p->err) */
	IMAP_FEED_FATAL,	/* say BYE and close (p->err) */
};

/* why a command was refused */
enum imap_err {
	IMAP_ERR_NONE,
	IMAP_ERR_LINE,		/* a line over line_max (or cmd_max) */
	IMAP_ERR_TOOBIG,	/* a literal over its bound */
	IMAP_ERR_LITERALS,	/* more than IMAP_LITERALS_MAX literals */
	IMAP_ERR_NUMBER,	/* a literal size that is not a number */
	IMAP_ERR_RUNAWAY,	/* IMAP_SKIP_MAX bytes without a LF */
	IMAP_ERR_SPOOL,		/* the owner's spool failed (see spool) */
};

/* one literal of an assembled command: offsets into p->cmd */
struct imap_literal {
	size_t hdr;		/* its "{" (or the "~" of "~{") */
	size_t data;		/* its first byte */
	size_t len;
	bool literal8;		/* "~{n}" */
	bool sync;		/* "{n}": the client waited for "+" */
	bool spooled;		/* its bytes went to spool_write, not cmd */
};

enum imap_pstate {
	IMAP_P_LINE,		/* reading a line */
	IMAP_P_LITERAL,		/* reading literal bytes into cmd */
	IMAP_P_SKIP_LINE,	/* skipping to the LF (the command failed) */
	IMAP_P_SKIP_LITERAL,	/* skipping literal bytes (same) */
	IMAP_P_DONE,		/* an event was returned: next feed resets */
};

/* the literal-header scanner's state */
enum imap_lstate {
	IMAP_L_NONE, IMAP_L_TILDE, IMAP_L_OPEN, IMAP_L_DIGITS, IMAP_L_PLUS,
	IMAP_L_CLOSED,
};

struct imap_parser {
	/* bounds, set by the owner (may change between commands) */
	size_t line_max;	/* one line, CRLF included */
	size_t cmd_max;		/* the whole command, literals included */
	unsigned long long literal_max;	/* one literal */
	unsigned long long discard_max;	/* over-limit LITERAL+ thrown away */
	bool lines_only;	/* no literals: SASL responses are lines */
	/*
	 * Spooling (optional, set by the owner): at a literal's header
	 * (within literal_max) spool(ctx, p, n, literal8) says whether
	 * the owner takes the literal's bytes (1: they go to
	 * spool_write, not into cmd, and do not count toward cmd_max;
	 * 0: they go into cmd as usual; -1: refuse the command with
	 * IMAP_ERR_SPOOL). spool_write(ctx, data, n) gets them in pieces
	 * (-1: the rest is skipped, the command ends IMAP_ERR_SPOOL).
	 */
	int (*spool)(void *ctx, const struct imap_parser *p,
	    unsigned long long n, bool literal8);
	int (*spool_write)(void *ctx, const char *data, size_t n);
	void *spool_ctx;
	bool spooling;		/* the literal being read is spooled */

	/* the command being assembled */
	struct buf cmd;
	struct imap_literal *lit;	/* nlit of lit_cap (grown on demand
					 * up to IMAP_LITERALS_MAX, freed at
					 * the next command: an idle session
					 * holds none) */
	size_t nlit, lit_cap;
	enum imap_err err;	/* why it is being skipped / was refused */
	bool discarded;		/* a LITERAL+ over the bound was thrown away */
	unsigned long long toobig_limit;	/* IMAP_ERR_TOOBIG: the bound
						 * (literal_max, or cmd_max
						 * for a literal held in
						 * cmd) */
	unsigned long long skipped;	/* bytes skipped since the last LF */

	/* the scanner */
	enum imap_pstate state;
	size_t line_start;	/* offset in cmd of the current line */
	size_t line_len;	/* bytes of the current line so far */
	bool in_quote, esc;	/* inside a quoted string of this line */
	enum imap_lstate lstate;	/* a literal header at the line end? */
	bool lit8, lit_over;	/* "~{"; more than 19 digits */
	bool lit_plus;		/* "{n+}" */
	unsigned long long lit_n;	/* its number */
	size_t lit_hdr;		/* its offset in cmd */
	unsigned long long lit_left;	/* literal bytes still to come */
};

/* imap_parser_init / _free - an empty parser with the given bounds */
void imap_parser_init(struct imap_parser *p, size_t line_max,
    size_t cmd_max, unsigned long long literal_max,
    unsigned long long discard_max);
void imap_parser_free(struct imap_parser *p);
/* imap_parser_reset - forget the command in progress (STARTTLS) */
void imap_parser_reset(struct imap_parser *p);
/* imap_parser_feed - scan data[0..n); *used_r says how much was taken
 * before the event (the rest is fed again after it is handled) */
enum imap_feed imap_parser_feed(struct imap_parser *p, const char *data,
    size_t n, size_t *used_r);
/* imap_parser_tag - the tag of the command in p->cmd (what it starts
 * with), or "*" when that is no valid tag; into out */
void imap_parser_tag(const struct imap_parser *p, struct buf *out);
/* imap_parser_wipe - overwrite the command (it may hold a password) */
void imap_parser_wipe(struct imap_parser *p);

/* token kinds */
enum imap_tok {
	IMAP_TOK_ATOM,
	IMAP_TOK_STRING,	/* quoted or literal: imap_tok_string */
	IMAP_TOK_OPEN,		/* "(" */
	IMAP_TOK_CLOSE,		/* ")" */
	IMAP_TOK_END,		/* end of the command */
	IMAP_TOK_ERROR,		/* malformed: cursor.error says why */
};

struct imap_token {
	enum imap_tok type;
	const char *p;		/* atom; quoted (escaped); literal bytes */
	size_t len;
	bool quoted, literal, literal8;
	/* a spooled literal: p and len are empty, its size is spool_len
	 * and its index in parser->lit is lit_index */
	bool spooled;
	unsigned long long spool_len;
	size_t lit_index;
};

struct imap_cursor {
	const struct imap_parser *parser;
	const char *base;	/* the command */
	size_t len, pos;
	size_t next_lit;	/* index of the next literal in parser->lit */
	int depth;		/* open lists */
	enum imap_tok last;	/* the previous token's kind */
	bool last_bracket;	/* the previous atom left a "[" open */
	bool started;		/* a token was read */
	const char *error;	/* what was wrong (static text) */
};

/* imap_cursor_init - tokens of p->cmd from offset start */
void imap_cursor_init(struct imap_cursor *c, const struct imap_parser *p,
    size_t start);
/* imap_cursor_next - the next token */
enum imap_tok imap_cursor_next(struct imap_cursor *c, struct imap_token *t);
/* imap_cursor_peek - the next token, without taking it */
enum imap_tok imap_cursor_peek(struct imap_cursor *c, struct imap_token *t);
/* imap_tok_string - an atom's, quoted string's (unescaped) or literal's
 * value into out (reset first) */
void imap_tok_string(const struct imap_token *t, struct buf *out);
/* imap_tok_is - is t the atom word (any case)? */
bool imap_tok_is(const struct imap_token *t, const char *word);
/* imap_tok_astring - is t an astring (atom of ASTRING-CHARs, or a
 * string)? */
bool imap_tok_astring(const struct imap_token *t);
/* imap_syntax_check - walk the whole command from the cursor's place:
 * 0, or -1 with c->error */
int imap_syntax_check(struct imap_cursor *c);
/* imap_tag_ok - is p[0..n) a valid tag (1*<ASTRING-CHAR except "+">)? */
bool imap_tag_ok(const char *p, size_t n);
/* imap_number - an RFC 9051 number (max 4294967295) or number64
 * (max 2^63-1): 0, or -1 */
int imap_number(const char *p, size_t n, bool n64, unsigned long long *r);

/* a sequence set: ranges of numbers, 0 meaning "*" */
struct imap_range {
	uint32_t lo, hi;	/* as sent: lo may be larger than hi */
};
struct imap_seqset {
	bool saved;		/* "$": the saved search result */
	struct imap_range *r;
	size_t n;
};
/* imap_seqset_parse - a sequence-set (or "$") into set; 0, or -1 */
int imap_seqset_parse(const char *p, size_t n, struct imap_seqset *set);
/* imap_seqset_free - forget the ranges */
void imap_seqset_free(struct imap_seqset *set);
/* imap_ranges_norm - r[0..*n) made lo <= hi with 0 ("*") as top, sorted
 * by lo and merged where they overlap or touch; *n is their new count */
void imap_ranges_norm(struct imap_range *r, size_t *n, uint32_t top);

/* SEARCH keys */
enum imap_sk {
	IMAP_SK_AND,		/* the children, all (a list, or the top) */
	IMAP_SK_OR,		/* the two children */
	IMAP_SK_NOT,		/* the child */
	IMAP_SK_SEQSET,		/* set: message numbers */
	IMAP_SK_UID,		/* set: UIDs */
	IMAP_SK_ALL, IMAP_SK_ANSWERED, IMAP_SK_DELETED, IMAP_SK_DRAFT,
	IMAP_SK_FLAGGED, IMAP_SK_SEEN, IMAP_SK_UNANSWERED, IMAP_SK_UNDELETED,
	IMAP_SK_UNDRAFT, IMAP_SK_UNFLAGGED, IMAP_SK_UNSEEN,
	IMAP_SK_NEW, IMAP_SK_OLD, IMAP_SK_RECENT,	/* RFC 3501 only */
	IMAP_SK_KEYWORD, IMAP_SK_UNKEYWORD,	/* str1: the flag */
	IMAP_SK_BCC, IMAP_SK_BODY, IMAP_SK_CC, IMAP_SK_FROM,
	IMAP_SK_SUBJECT, IMAP_SK_TEXT, IMAP_SK_TO,	/* str1: the text */
	IMAP_SK_HEADER,		/* str1: field name, str2: text */
	IMAP_SK_BEFORE, IMAP_SK_ON, IMAP_SK_SINCE,	/* date: internal */
	IMAP_SK_SENTBEFORE, IMAP_SK_SENTON, IMAP_SK_SENTSINCE, /* Date: */
	IMAP_SK_LARGER, IMAP_SK_SMALLER,	/* num: octets */
	IMAP_SK_MODSEQ,		/* num; str1/str2: entry name and type */
	IMAP_SK_EMAILID, IMAP_SK_THREADID,	/* str1: RFC 8474 objectid */
};

struct imap_search {
	enum imap_sk key;
	struct imap_search *child;	/* AND, OR, NOT: the first operand */
	struct imap_search *next;	/* the next operand of the parent */
	char *str1, *str2;
	unsigned long long num;
	int date;		/* yyyymmdd */
	struct imap_seqset set;
};

/* RFC 4731 RETURN options, bits */
#define IMAP_SR_MIN	0x01
#define IMAP_SR_MAX	0x02
#define IMAP_SR_ALL	0x04
#define IMAP_SR_COUNT	0x08
#define IMAP_SR_SAVE	0x10

struct imap_search_program {
	bool esearch;		/* RETURN was given (ESEARCH answer) */
	unsigned ret;		/* IMAP_SR_*; RETURN () means ALL */
	char *charset;		/* NULL: none given (US-ASCII/UTF-8) */
	struct imap_search *root;	/* an AND of the keys */
	size_t nodes;
	size_t texts;		/* BODY and TEXT keys among them */
};

/* imap_search_parse - "[RETURN (...)] [CHARSET x] key..." from the
 * cursor to the end of the command into prog; 0, or -1 with why (a
 * static text) and prog empty */
int imap_search_parse(struct imap_cursor *c,
    struct imap_search_program *prog, const char **why);
/* imap_search_free - free the tree */
void imap_search_free(struct imap_search_program *prog);
/* imap_search_format - a canonical text of the tree (tests, logs) */
void imap_search_format(const struct imap_search_program *prog,
    struct buf *out);
/* imap_date_parse - "d-Mon-yyyy" (d: 1 or 2 digits) into yyyymmdd;
 * 0, or -1 */
int imap_date_parse(const char *p, size_t n, int *date_r);

#endif
