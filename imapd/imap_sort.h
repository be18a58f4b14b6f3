/*
 * imap_sort - SORT (RFC 5256 3, RFC 5957 DISPLAYFROM / DISPLAYTO) and
 * its ESORT answers (RFC 5267), and what SORT and THREAD share: the
 * base subject (RFC 5256 2.1), the sent date (2.2: the Date: header in
 * UTC, else the INTERNALDATE), and the facts of one message they read
 * from its header.
 *
 * SORT runs on the matches of a finished SEARCH evaluation
 * (imap_search_eval.h), from a selected-mailbox context:
 *
 *	struct imap_sort_program sp;
 *	if (imap_sort_parse(&cursor, &sp, &why) < 0) -> BAD why
 *	imap_search_begin(&ev, &sp.search, &src, &opts, &why) ...
 *	while (imap_search_step(&ev, budget) == IMAP_SEARCH_MORE) ...
 *	imap_sort_matches(&ev, &sp);      -> ev's matches in sort order
 *	imap_sort_answer(&ev, &sp, tag, uid, &out);
 *	imap_search_end(&ev); imap_sort_free(&sp);
 *
 * Strings compare after imap_text_fold (i;unicode-casemap as far as it
 * goes, which includes i;ascii-casemap), octet by octet; equal keys fall
 * to the next criterion, and last to the sequence number. Reading the
 * keys reads the header of each match (the cached one when the mailbox
 * has it): the caller bounds the work by the SEARCH's budget and the
 * mailbox size. No global state: safe in a worker thread.
 */
#ifndef IMAPD_IMAP_SORT_H
#define IMAPD_IMAP_SORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "base/buf.h"
#include "imap_parse.h"
#include "imap_search_eval.h"

#define IMAP_SORT_CRIT_MAX 16	/* criteria of one SORT */
#define IMAP_SORT_REFS_MAX 256	/* ids kept of one References field */

enum imap_sort_key {
	IMAP_SORT_ARRIVAL,	/* INTERNALDATE */
	IMAP_SORT_CC,		/* addr-mailbox of the first Cc address */
	IMAP_SORT_DATE,		/* sent date */
	IMAP_SORT_FROM,
	IMAP_SORT_SIZE,		/* RFC822.SIZE */
	IMAP_SORT_SUBJECT,	/* base subject */
	IMAP_SORT_TO,
	IMAP_SORT_DISPLAYFROM,	/* RFC 5957: name, else addr-spec */
	IMAP_SORT_DISPLAYTO,
};

struct imap_sort_crit {
	enum imap_sort_key key;
	bool reverse;
};

struct imap_sort_program {
	struct imap_sort_crit crit[IMAP_SORT_CRIT_MAX];
	size_t ncrit;
	bool esort;		/* RETURN (...) was given: ESEARCH answer */
	unsigned ret;		/* IMAP_SR_MIN/MAX/ALL/COUNT */
	struct imap_search_program search;	/* charset and keys */
};

/* imap_sort_parse - "[RETURN (opts)] (criteria) charset key..." from the
 * cursor (after "SORT") to the end of the command; 0, or -1 with why (a
 * static text) and sp empty */
int imap_sort_parse(struct imap_cursor *c, struct imap_sort_program *sp,
    const char **why);
/* imap_sort_free - release sp */
void imap_sort_free(struct imap_sort_program *sp);

/* imap_sort_matches - put ev's matches (seq, uid, modseq) in sp's
 * order */
void imap_sort_matches(struct imap_search_eval *ev,
    const struct imap_sort_program *sp);
/* imap_sort_answer - "* SORT n..." or, with RETURN, "* ESEARCH (TAG
 * "tag") [UID] [MIN n] [MAX n] [COUNT n] [ALL set]" (MIN and MAX the
 * lowest and highest numbers; ALL in sort order, consecutive runs as
 * ranges), CRLF-terminated; with condstore and a MODSEQ key, the highest
 * MODSEQ of the messages named (RFC 7162 3.1.5: " (MODSEQ m)" after
 * SORT's numbers, " MODSEQ m" in ESEARCH) */
void imap_sort_answer(const struct imap_search_eval *ev,
    const struct imap_sort_program *sp, const char *tag, bool uid,
    bool condstore, struct buf *out);

/* the facts SORT and THREAD read of one message */
struct imap_sort_msg {
	uint32_t seq, uid;
	time_t arrival;		/* INTERNALDATE */
	time_t date;		/* sent date (UTC) */
	unsigned long long size;
	bool reply;		/* the base subject lost a re:/fwd: */
	char *subject;		/* base subject, folded */
	char *from, *to, *cc;	/* addr-mailbox, folded */
	char *dfrom, *dto;	/* display forms, folded */
	char *msgid;		/* Message-ID "<...>" or NULL */
	char *refs;		/* References' ids, or In-Reply-To's first
				   one, as "<a><b>" (NULL: none) */
};

/* imap_sort_msg_load - read message i's facts (threads: with msgid and
 * refs); a message that cannot be read gets empty ones */
void imap_sort_msg_load(const struct imap_mailbox_src *src, uint32_t i,
    bool threads, struct imap_sort_msg *m);
/* imap_sort_msg_free - release m's strings */
void imap_sort_msg_free(struct imap_sort_msg *m);

/* imap_sort_base_subject - RFC 5256 2.1: append the base subject of the
 * raw (folded, encoded) Subject value s[0..n) to out, folded; true if
 * it was a reply or forward (re:, fwd:, (fwd), [fwd: ...]) */
bool imap_sort_base_subject(const char *s, size_t n, struct buf *out);

#endif
