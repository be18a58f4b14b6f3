/*
 * imapd_mailbox - the mailbox-management commands of the authenticated
 * state: LIST and LSUB (imapd_list.c), CREATE, DELETE, RENAME,
 * SUBSCRIBE, UNSUBSCRIBE, STATUS and the QUOTA commands of RFC 9208
 * (imapd_mailbox.c). Each parses its arguments in the loop thread and
 * does its disk work in a job (imapd_store.h).
 */
#ifndef IMAPD_MAILBOX_H
#define IMAPD_MAILBOX_H

#include <stdint.h>

#include "base/buf.h"

struct imapd_session;
struct imap_cursor;
struct mindex;

/* folders a user may have: CREATE refuses more ([LIMIT]); LIST lists at
 * most this many names (and says [LIMIT] when there are more) */
#define IMAPD_FOLDERS_MAX 5000
/* longest LIST pattern (reference and pattern together) */
#define IMAPD_PATTERN_MAX 1024
/* patterns of one LIST (RFC 5258 multiple patterns) */
#define IMAPD_PATTERNS_MAX 16

/* STATUS data items (RFC 9051 6.3.11, RFC 8438 SIZE, RFC 7162
 * HIGHESTMODSEQ, RFC 7889 APPENDLIMIT, RFC 9208 DELETED-STORAGE,
 * RFC 8474 MAILBOXID) */
enum imapd_status_item {
	IMAPD_ST_MESSAGES, IMAPD_ST_UIDNEXT, IMAPD_ST_UIDVALIDITY,
	IMAPD_ST_UNSEEN, IMAPD_ST_DELETED, IMAPD_ST_SIZE,
	IMAPD_ST_HIGHESTMODSEQ, IMAPD_ST_RECENT, IMAPD_ST_APPENDLIMIT,
	IMAPD_ST_DELETED_STORAGE, IMAPD_ST_MAILBOXID, IMAPD_ST_COUNT
};

/* a parsed list of STATUS items, in the client's order */
struct imapd_status_req {
	enum imapd_status_item item[IMAPD_ST_COUNT];
	int n;
};

/* imapd_status_parse - "(" item... ")" from the cursor; 0, or -1 (BAD) */
int imapd_status_parse(struct imapd_session *s, struct imap_cursor *c,
    struct imapd_status_req *req);
/* imapd_status_line - "* STATUS name (...)" of folder into out (job
 * thread: syncs the folder); 0, or -1 with why */
int imapd_status_line(struct mindex *ix, const char *folder, bool utf8,
    const struct imapd_status_req *req, struct buf *out, struct buf *why);

/* command handlers (imapd_cmd.c's table) */
void imapd_list_list(struct imapd_session *s, struct imap_cursor *c);
void imapd_list_lsub(struct imapd_session *s, struct imap_cursor *c);
void imapd_mailbox_create(struct imapd_session *s, struct imap_cursor *c);
void imapd_mailbox_delete(struct imapd_session *s, struct imap_cursor *c);
void imapd_mailbox_rename(struct imapd_session *s, struct imap_cursor *c);
void imapd_mailbox_subscribe(struct imapd_session *s, struct imap_cursor *c);
void imapd_mailbox_unsubscribe(struct imapd_session *s,
    struct imap_cursor *c);
void imapd_mailbox_status(struct imapd_session *s, struct imap_cursor *c);
void imapd_mailbox_getquota(struct imapd_session *s, struct imap_cursor *c);
void imapd_mailbox_getquotaroot(struct imapd_session *s,
    struct imap_cursor *c);
void imapd_mailbox_setquota(struct imapd_session *s, struct imap_cursor *c);

/* imapd_list_match - does name match the LIST pattern pat ('*' any
 * text, '%' any text without the delimiter)? Linear in both lengths'
 * product, no backtracking */
bool imapd_list_match(const char *pat, const char *name);

#endif
