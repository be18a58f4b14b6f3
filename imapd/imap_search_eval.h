/*
 * imap_search_eval - evaluating a parsed SEARCH program (imap_parse.h)
 * over the messages of a selected mailbox, and the SEARCH / ESEARCH
 * answers (RFC 9051 6.4.4, RFC 3501 6.4.4, RFC 4731 ESEARCH, RFC 5182
 * SEARCHRES, RFC 7162 CONDSTORE MODSEQ).
 *
 * Where messages come from is the caller's: a struct imap_mailbox_src
 * holds callbacks that describe message i (0-based; its sequence number
 * is i + 1): a struct imap_msg_view (UID, flags, keywords, MODSEQ,
 * INTERNALDATE, RFC822.SIZE), optionally the cached header section (the
 * index keeps it, so header keys never open the file), and the whole
 * message's bytes on demand (the Maildir file, mmapped). Bytes are only
 * asked for when a key needs them, and the cheap keys of an AND / OR are
 * tried first. Everything lives in the struct imap_search_eval: no
 * global state, so an evaluation may run in a worker thread (the
 * callbacks then must be safe there).
 *
 * Use from a selected-mailbox context (SEARCH, UID SEARCH):
 *
 *	struct imap_search_eval ev;
 *	if (imap_search_begin(&ev, &prog, &src, &opts, &why) < 0)
 *		-> tagged NO [BADCHARSET (UTF-8)] (why), and if prog.ret
 *		   has IMAP_SR_SAVE, empty the saved result;
 *	while (imap_search_step(&ev, 1 << 20) == IMAP_SEARCH_MORE)
 *		-> between slices: ev.next of src.count messages are done
 *		   (RFC 9585 "* OK [INPROGRESS (tag done total)]"), yield
 *	imap_search_answer(&ev, tag, uid, condstore, &out);  -> untagged
 *	if (imap_search_saves(&ev)) imap_search_save(&ev, &saved);
 *	-> tagged OK; ev.gone > 0 (messages that vanished while searched,
 *	   expunged by another session): OK [EXPUNGEISSUED] (RFC 9051)
 *	imap_search_end(&ev);
 *
 * Semantics (RFC 9051 6.4.4): string keys match case-insensitively
 * (imap_text_fold) as substrings of decoded text: header values with
 * RFC 2047 words decoded and folding removed; bodies transfer-decoded
 * (base64, quoted-printable) and converted to UTF-8 from their charset.
 * BODY looks at the text parts (text/ and parts without a type) and the
 * headers of attached messages; TEXT also at the message's header.
 * HEADER with an empty string matches when the field is present. BEFORE,
 * ON and SINCE compare the INTERNALDATE's date in its own zone; SENT*
 * the Date: header's date as written (without a usable Date: header,
 * the INTERNALDATE's, as RFC 5256 does for SORT). "*" in a sequence set
 * is the last message, in a UID set the last message's UID; "$" (RFC
 * 5182) is the saved result, kept as UIDs. In IMAP4rev2 mode the caller
 * leaves IMAP_MF_RECENT unset: RECENT and NEW then match nothing.
 *
 * Bounds: the caller's budget (bytes of messages scanned; a body read
 * by several BODY or TEXT keys counts each time) is checked between
 * messages, and a program has at most IMAP_SEARCH_TEXTS_MAX of those
 * keys, so that one message costs at most that many readings; bodies
 * are decoded and searched in slices of IMAP_SEARCH_SLICE bytes with
 * an overlap of the needle's length, never copied whole; a header
 * field's decoded value is cut at IMAP_SEARCH_FIELD_MAX bytes, and
 * header keys look at the first IMAP_SEARCH_HEADER_MAX bytes of the
 * header (a hostile 50 MB header costs each key no more than that).
 */
#ifndef IMAPD_IMAP_SEARCH_EVAL_H
#define IMAPD_IMAP_SEARCH_EVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "base/buf.h"
#include "imap_parse.h"

#define IMAP_SEARCH_SLICE (64 * 1024)	/* body bytes decoded at once */
#define IMAP_SEARCH_FIELD_MAX (64 * 1024)	/* a decoded header value */
#define IMAP_SEARCH_HEADER_MAX (1024 * 1024)	/* header bytes searched */

/* message flags */
#define IMAP_MF_SEEN		0x01
#define IMAP_MF_ANSWERED	0x02
#define IMAP_MF_FLAGGED		0x04
#define IMAP_MF_DELETED		0x08
#define IMAP_MF_DRAFT		0x10
#define IMAP_MF_RECENT		0x20	/* IMAP4rev1 sessions only */

/* what the mailbox says of one message */
struct imap_msg_view {
	uint32_t uid;
	unsigned flags;			/* IMAP_MF_* */
	const char *const *keywords;	/* nkeywords keywords */
	size_t nkeywords;
	unsigned long long modseq;	/* RFC 7162 (0: none) */
	time_t internaldate;		/* INTERNALDATE: the moment */
	int internal_zone;		/* and its zone, minutes east */
	unsigned long long size;	/* RFC822.SIZE */
	const char *emailid;		/* RFC 8474 (NULL: none) */
};

/* a mailbox's messages, as callbacks (ctx is the caller's) */
struct imap_mailbox_src {
	void *ctx;
	uint32_t count;			/* messages: i in [0, count) */
	/* view - fill v for message i; 0, or -1 (gone: it does not match) */
	int (*view)(void *ctx, uint32_t i, struct imap_msg_view *v);
	/* header - the cached header section of message i (the empty line
	 * may be left out) in *p, *n: 0; or -1 when not cached (may be
	 * NULL: then the message is mapped) */
	int (*header)(void *ctx, uint32_t i, const char **p, size_t *n);
	/* map - the whole message i (as stored: LF or CRLF) until unmap;
	 * 0, or -1 (gone: its content keys do not match) */
	int (*map)(void *ctx, uint32_t i, const char **p, size_t *n);
	void (*unmap)(void *ctx, uint32_t i);
};

/* how the session runs the search */
struct imap_search_opts {
	const uint32_t *saved;	/* saved result ("$"): UIDs, ascending */
	size_t nsaved;
};

/* an evaluation in progress (all of it the caller's, on its stack or
 * in its command state) */
struct imap_search_eval {
	const struct imap_search_program *prog;
	const struct imap_mailbox_src *src;
	struct imap_search_opts opts;
	struct imap_search_node *root;	/* the compiled program */
	uint32_t next;			/* the next message to look at */
	uint32_t last_uid;		/* UID "*" */
	bool uses_modseq;		/* a MODSEQ key: answer with MODSEQ */
	unsigned long long scanned;	/* bytes of messages read */
	size_t gone;			/* messages not readable */

	/* the matches, in sequence order */
	uint32_t *seq, *uid;
	unsigned long long *modseq;
	size_t n, cap;

	/* per message, while it is looked at */
	struct imap_search_msg *m;
};

enum imap_search_step {
	IMAP_SEARCH_DONE,	/* every message was looked at */
	IMAP_SEARCH_MORE,	/* the budget ran out: step again */
};

/* imap_search_begin - prepare ev to run prog over src (prog and src must
 * stay unchanged until imap_search_end); 0, or -1 with why (a static
 * text) when the CHARSET is not known: answer NO [BADCHARSET (UTF-8)] */
int imap_search_begin(struct imap_search_eval *ev,
    const struct imap_search_program *prog,
    const struct imap_mailbox_src *src, const struct imap_search_opts *opts,
    const char **why);
/* imap_search_step - look at messages until all are done or budget bytes
 * were scanned (checked between messages; 0: no bound) */
enum imap_search_step imap_search_step(struct imap_search_eval *ev,
    unsigned long long budget);
/* imap_search_end - release ev (the program is the caller's) */
void imap_search_end(struct imap_search_eval *ev);

/* imap_search_answer - append the untagged answer for the matches:
 * "* SEARCH n..." (with " (MODSEQ m)" when condstore and a MODSEQ key was
 * used and something matched), or, for RETURN (...), "* ESEARCH (TAG
 * "tag") [UID] [MIN n] [MAX n] [COUNT n] [ALL set] [MODSEQ m]"; nothing
 * for RETURN (SAVE) alone (RFC 5182 2.1). Numbers are UIDs when uid.
 * Each answer ends in CRLF. */
void imap_search_answer(const struct imap_search_eval *ev, const char *tag,
    bool uid, bool condstore, struct buf *out);
/* imap_search_saves - did the program ask for SAVE? */
bool imap_search_saves(const struct imap_search_eval *ev);
/* imap_search_save - the UIDs SAVE keeps (RFC 5182 2.4: MIN and/or MAX
 * alone save only those, otherwise all matches), ascending, into a new
 * array in *uids_r (NULL when none; free with x_free); their count */
size_t imap_search_save(const struct imap_search_eval *ev,
    uint32_t **uids_r);
/* imap_search_set - append n ascending numbers as a compact sequence set
 * ("1:3,5"); nothing when n is 0 */
void imap_search_set(struct buf *out, const uint32_t *v, size_t n);

#endif
