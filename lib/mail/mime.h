/*
 * mime - a MIME message (RFC 2045-2047, 2231) parsed into a tree of parts.
 *
 * mime_parse() takes a whole message held in memory (pointer + length;
 * callers mmap the Maildir file) and returns a tree that records, per part,
 * where its header and body lie in those bytes: bodies are never copied,
 * so the caller keeps the bytes alive (and unchanged) as long as it uses
 * the offsets. The tree owns the few strings it decodes (types, parameters,
 * Content-* values); mime_free() releases all of it at once.
 *
 * Guarantees:
 *  - the parse never fails and is linear in the message size: malformed
 *    input degrades as Dovecot does (no or bad Content-Type: text/plain;
 *    charset=us-ascii; a multipart without a usable boundary or a composite
 *    type with a base64/quoted-printable encoding: a plain leaf);
 *  - CRLF and bare LF input parse alike; NUL bytes are data;
 *  - bounded: at most MIME_MAX_DEPTH nested multiparts/messages (deeper
 *    ones are opaque leaves), at most MIME_MAX_PARTS parts (the rest of a
 *    multipart past the limit is one opaque part, never an error that
 *    hides the message), only the first MIME_MAX_HEADER bytes of a part's
 *    header are looked at for Content-* fields, at most MIME_MAX_PARAMS
 *    parameters per field, each value at most MIME_MAX_VALUE bytes.
 *
 * The tree has IMAP's shape: the root is the message; a multipart has its
 * parts as children; a message/rfc822 part has one child, the enclosed
 * message (its header is the enclosed message's header). Sizes are given
 * both as stored ("len") and as IMAP counts them with every bare LF sent
 * as CRLF ("vsize"); lines are LF counts.
 */
#ifndef MAIL_MIME_H
#define MAIL_MIME_H

#include <stdbool.h>
#include <stddef.h>

struct buf;

#define MIME_MAX_DEPTH 32	/* nested multipart / message levels */
#define MIME_MAX_PARTS 1000	/* parts in one message, the root included */
#define MIME_MAX_HEADER 65536	/* header bytes per part searched */
#define MIME_MAX_PARAMS 64	/* parameters kept per field */
#define MIME_MAX_VALUE 8192	/* bytes kept of one decoded value */
#define MIME_MAX_BOUNDARY 200	/* RFC 2046 says 70; be lenient */

/* Content-Transfer-Encoding */
enum mime_enc {
	MIME_ENC_7BIT,
	MIME_ENC_8BIT,
	MIME_ENC_BINARY,
	MIME_ENC_BASE64,
	MIME_ENC_QP,
	MIME_ENC_UNKNOWN,	/* another name (x-uuencode) */
};

/* one Content-Type or Content-Disposition parameter, RFC 2231 merged */
struct mime_param {
	const char *name;	/* as written, without any "*N" or "*" */
	const char *value;	/* continuations joined; an extended value
				   %-decoded and converted to UTF-8 */
	const char *charset;	/* RFC 2231 charset, or NULL */
	const char *language;	/* RFC 2231 language, or NULL */
	const char *raw;	/* for IMAP: the joined value still encoded,
				   "charset'lang'%XX.." when extended */
	bool extended;		/* RFC 2231 charset'lang'value form */
};

/* one part of a message */
struct mime_part {
	struct mime_part *parent;
	struct mime_part *children;	/* first child */
	struct mime_part *next;		/* next sibling */
	struct mime_part *last_child;	/* the parser appends here */
	unsigned nchildren;
	unsigned depth;			/* root 0 */

	size_t hdr_off;		/* header section, its empty line included */
	size_t hdr_len;
	size_t hdr_vsize;	/* with bare LFs counted as CRLF */
	size_t hdr_lines;
	size_t body_off;	/* body: what follows the empty line */
	size_t body_len;
	size_t body_vsize;
	size_t body_lines;

	const char *type;	/* "text", as written (compare without case) */
	const char *subtype;	/* "plain" */
	struct mime_param *params;
	unsigned nparams;
	const char *encoding;	/* as written, or NULL (then 7bit) */
	enum mime_enc enc;
	const char *id;		/* Content-ID, unfolded, or NULL */
	const char *description; /* Content-Description, raw, or NULL */
	const char *md5;	/* Content-MD5, or NULL */
	const char *disposition; /* Content-Disposition type, or NULL */
	struct mime_param *disp_params;
	unsigned ndisp_params;
	const char **languages;	/* Content-Language tags */
	unsigned nlanguages;
	const char *location;	/* Content-Location, unfolded, or NULL */

	bool is_multipart;	/* children are its parts */
	bool is_message;	/* message/rfc822: children is the message */
	bool is_text;		/* type text: IMAP gives its line count */
	bool default_type;	/* no Content-Type (or a bad one) */
	bool opaque;		/* a depth or part limit made it a leaf */
	bool has_header_end;	/* an empty line ended the header */
};

/* a parsed message: the root part and what the tree owns */
struct mime_message {
	const char *data;	/* the caller's bytes */
	size_t len;
	struct mime_part *root;
	unsigned nparts;
	bool limited;		/* a depth or part limit was reached */
	struct mime_arena *arena;
};

/* mime_parse - parse data[0..len) into a new tree (never fails) */
struct mime_message *mime_parse(const char *data, size_t len);
/* mime_free - release the tree (not the caller's bytes) */
void mime_free(struct mime_message **m);

/* one header field of a part: name and raw (folded) value */
struct mime_field {
	const char *name;	/* at the start of the line */
	size_t name_len;	/* without the colon and blanks before it */
	const char *value;	/* after the colon, folding CRLFs included, */
	size_t value_len;	/* without the final line end */
};

/* mime_header_next - the field at *pos of the header hdr[0..len) and
 * advance *pos past it; 0 at the end of the header. Lines without a colon
 * are skipped. Start with *pos = 0. */
int mime_header_next(const char *hdr, size_t len, size_t *pos,
    struct mime_field *f);
/* mime_header_unfold - append value with CR and LF removed (RFC 5322
 * unfolding), leading and trailing blanks cut */
void mime_header_unfold(struct buf *out, const char *value, size_t len);
/* mime_header_get - the first field called name (any case) in part's
 * header, unfolded into out (emptied first); -1 if there is none */
int mime_header_get(const struct mime_message *m, const struct mime_part *p,
    const char *name, struct buf *out);

/* mime_param_get - the value of the parameter called name (any case) in
 * params; an extended (RFC 2231) value is preferred; NULL if none */
const char *mime_param_get(const struct mime_param *params, unsigned n,
    const char *name);
/* mime_enc_parse - the encoding named by s[0..n) (any case) */
enum mime_enc mime_enc_parse(const char *s, size_t n);

/* what an IMAP section specifier (RFC 9051 6.4.5) refers to */
enum mime_section_kind {
	MIME_SECTION_BODY,	/* "" or "1.2": the part's contents */
	MIME_SECTION_HEADER,	/* [N.]HEADER: a message's header */
	MIME_SECTION_HEADER_FIELDS,	/* [N.]HEADER.FIELDS: rest = list */
	MIME_SECTION_HEADER_FIELDS_NOT,
	MIME_SECTION_TEXT,	/* [N.]TEXT: a message's body */
	MIME_SECTION_MIME,	/* N.MIME: the part's own MIME header */
};

struct mime_section {
	const struct mime_part *part;	/* the part the numbers name */
	enum mime_section_kind kind;
	size_t off;		/* the bytes the section covers (for */
	size_t len;		/* HEADER.FIELDS: the header to filter) */
	const char *rest;	/* after "HEADER.FIELDS[.NOT]" (the field
				   list, for the caller), else "" */
};

/* mime_section_find - resolve spec ("", "1.2", "3.HEADER", "2.MIME",
 * "HEADER.FIELDS (From)"; keywords in any case) against m; -1 if the part
 * does not exist or spec is not a section (HEADER, TEXT and HEADER.FIELDS
 * after a number need a message/rfc822 part; MIME needs a number) */
int mime_section_find(const struct mime_message *m, const char *spec,
    struct mime_section *r);
/* mime_section_name - append the IMAP section number of p ("" for the
 * root, "1.2" ...) */
void mime_section_name(struct buf *out, const struct mime_part *p);

/* streaming Content-Transfer-Encoding decoder (base64, quoted-printable;
 * the others pass through) */
struct mime_decoder {
	enum mime_enc enc;
	unsigned bits;		/* base64: pending bits */
	int nbits;
	int qp_state;		/* qp: 0 text, 1 after '=', 2 after "=X",
				   3 after "=" and blanks (soft break?) */
	char qp_hex;
	size_t qp_blanks;	/* qp: blanks held back (trailing ones go) */
	char qp_blank_buf[64];
	size_t errors;		/* bytes that were not valid encoding */
};

/* mime_decoder_init - a decoder for enc */
void mime_decoder_init(struct mime_decoder *d, enum mime_enc enc);
/* mime_decoder_feed - decode in[0..n) and append to out (its limit
 * bounds the output) */
void mime_decoder_feed(struct mime_decoder *d, const char *in, size_t n,
    struct buf *out);
/* mime_decoder_end - flush what is held back at the end of the input */
void mime_decoder_end(struct mime_decoder *d, struct buf *out);

/* mime_words_decode - RFC 2047: append s[0..n) with its encoded words
 * decoded to UTF-8 (adjacent ones joined, the blanks between them
 * dropped; bad ones left as they are); other bytes are copied */
void mime_words_decode(struct buf *out, const char *s, size_t n);

/* an RFC 5322 address, as IMAP's ENVELOPE shows it: a group starts with
 * mailbox = group name and host = NULL, and ends with all four NULL */
struct mime_addr {
	const char *name;	/* display name, raw (encoded words kept) */
	const char *route;	/* obsolete source route "@a,@b", or NULL */
	const char *mailbox;	/* local part */
	const char *host;	/* domain */
	struct mime_addr *next;
};

/* mime_addr_parse - the address list s[0..n) (unfolded or not); NULL if
 * it holds no address. At most MIME_MAX_PARAMS * 16 addresses are kept.
 * Free with mime_addr_free(). */
struct mime_addr *mime_addr_parse(const char *s, size_t n);
/* mime_addr_free - release a list */
void mime_addr_free(struct mime_addr **a);

#endif
