/*
 * imap_thread - THREAD (RFC 5256 4): ORDEREDSUBJECT and REFERENCES, the
 * latter the whole algorithm of section 2.2 (References / In-Reply-To,
 * the Message-ID table, dummy parents, pruning, grouping by base
 * subject, sorting by sent date), and the "* THREAD" answer.
 *
 * THREAD runs on the matches of a finished SEARCH evaluation, from a
 * selected-mailbox context:
 *
 *	struct imap_thread_program tp;
 *	if (imap_thread_parse(&cursor, &tp, &why) < 0) -> BAD why
 *	imap_search_begin(&ev, &tp.search, &src, &opts, &why) ...
 *	while (imap_search_step(&ev, budget) == IMAP_SEARCH_MORE) ...
 *	imap_thread_answer(&ev, tp.alg, uid, &out);
 *	imap_search_end(&ev); imap_thread_free(&tp);
 *
 * Bounds: at most IMAP_SORT_REFS_MAX ids of a References field are
 * used; a thread deeper than IMAP_THREAD_DEPTH_MAX is cut there (the
 * rest becomes a thread of its own), so that the recursion of pruning,
 * sorting and printing is bounded, and so is the loop check of each
 * link: time is linear in the matches and their references (a chain of
 * 100,000 replies threads in milliseconds, not seconds), and so is
 * memory. No global state: safe in a worker thread.
 */
#ifndef IMAPD_IMAP_THREAD_H
#define IMAPD_IMAP_THREAD_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"
#include "imap_parse.h"
#include "imap_search_eval.h"
#include "imap_sort.h"

#define IMAP_THREAD_DEPTH_MAX 1000	/* levels of one thread */

enum imap_thread_alg {
	IMAP_THREAD_ORDEREDSUBJECT,
	IMAP_THREAD_REFERENCES,
};

struct imap_thread_program {
	enum imap_thread_alg alg;
	struct imap_search_program search;	/* charset and keys */
};

/* imap_thread_parse - "algorithm charset key..." from the cursor (after
 * "THREAD") to the end of the command; 0, or -1 with why (static) */
int imap_thread_parse(struct imap_cursor *c, struct imap_thread_program *tp,
    const char **why);
/* imap_thread_free - release tp */
void imap_thread_free(struct imap_thread_program *tp);

/* imap_thread_answer - "* THREAD (...)..." of ev's matches (UIDs when
 * uid), CRLF-terminated */
void imap_thread_answer(const struct imap_search_eval *ev,
    enum imap_thread_alg alg, bool uid, struct buf *out);
/* imap_thread_build - the threads of msgs[0..n) (seq order), appended to
 * out without "* THREAD" (tests, fuzzing) */
void imap_thread_build(const struct imap_sort_msg *msgs, size_t n,
    enum imap_thread_alg alg, bool uid, struct buf *out);

#endif
