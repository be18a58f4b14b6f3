/*
 * qfile - the queue file: one message, its envelope and recipient status.
 *
 * Only this module reads or writes queue files. Format, version 2: text
 * records of one line each, then the message, then an end record, then
 * the notes on deferred recipients.
 *
 *   VHERALDQ2\n                      version, always first (1: old files,
 *                                    read as before; they have no notes)
 *   T<arrival>\n                     unix seconds, or seconds.uuuuuu (six
 *                                    digits of microseconds)
 *   S<sender>\n                      empty for the null sender <>
 *   A<name>=<value>\n                zero or more attributes (client, helo,
 *                                    protocol, auth, envid, ret, smtputf8)
 *   R<st><address>\t<orcpt>\t<notify>\n   one per recipient; <st> is one
 *                                    status byte, rewritten in place
 *   M<size: 16 decimal digits>\n     start of the message content
 *   <size bytes of message, CRLF lines, dot-unstuffed>
 *   E\n                              end; in version 1 the file ends here
 *   N<idx> <when> <dsn> <text>\n     notes (version 2, zero or more): the
 *   Z<fnv1a32 hex>\n                 last deferral of recipient <idx>
 *                                    (0-based) at unix time <when>, text
 *                                    without control bytes; Z checks all
 *                                    the N lines before it
 *
 * The notes are advice for people (heraldctl queue list/show), never
 * needed for delivery: qmgr rewrites the whole block after each attempt
 * (qfile_notes_write) without fsync, and a reader that finds the block
 * damaged, torn by a crash, too big or missing its Z line shows no notes
 * (qfile_notes_read), while qfile_read still takes the file. A version 1
 * file gets the version byte 2 (synced) before its first notes.
 *
 * Envelope values never hold CR, LF, NUL or TAB (qfile_writer panics:
 * callers reject such input first). Addresses are in internal (unquoted)
 * form. Status bytes: QFILE_QUEUED, QFILE_DELIVERED, QFILE_BOUNCED, and
 * QFILE_WARNED on disk only: still queued, but the sender has had a delay
 * warning for it (qfile_read gives QFILE_QUEUED with warned set); a
 * status update is one pwrite of one byte, made durable by qfile_sync, so
 * a crash can never half-update it (DESIGN.md §4).
 *
 * Writing (smtpd, qmgr for bounces): the file is created unnamed
 * (O_TMPFILE) in incoming/, so a process killed mid-message leaves nothing
 * behind; it gets its name only in qfile_writer_link(), after
 * qfile_writer_sync(). The caller then fsyncs incoming/ (spool_sync_dir),
 * possibly once for a group of messages.
 *
 * Reading: qfile_read() validates everything (version, each record, the
 * required ones present once, size and end record matching the file
 * size) and fails with a reason for anything else; such a file belongs in
 * corrupt/.
 */
#ifndef MAIL_QFILE_H
#define MAIL_QFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

struct buf;

#define QFILE_QUEUED 'Q'
#define QFILE_DELIVERED 'D'
#define QFILE_BOUNCED 'B'
#define QFILE_WARNED 'W'	/* on disk: queued, delay warning sent */

/* envelope attribute names */
#define QFILE_A_CLIENT_ADDR "client_addr"
#define QFILE_A_CLIENT_NAME "client_name"
#define QFILE_A_HELO "helo"
#define QFILE_A_PROTOCOL "protocol"
#define QFILE_A_AUTH "auth"		/* authenticated user */
#define QFILE_A_ENVID "envid"		/* DSN ENVID, xtext-decoded */
#define QFILE_A_RET "ret"		/* DSN RET: FULL or HDRS */
#define QFILE_A_SMTPUTF8 "smtputf8"	/* "1" when requested */
#define QFILE_A_BODY "body"		/* 7BIT, 8BITMIME, BINARYMIME */
#define QFILE_A_BOUNCE "bounce"		/* "1": a DSN; never bounces again */

struct qfile_rcpt {
	char *addr;		/* recipient, internal form */
	char *orcpt;		/* DSN ORCPT ("rfc822;a@b") or "" */
	char *notify;		/* DSN NOTIFY list or "" */
	char status;		/* QFILE_QUEUED / _DELIVERED / _BOUNCED */
	bool warned;		/* queued, and a delay warning was sent */
	off_t status_off;	/* file offset of the status byte */
};

struct qfile_attr {
	char *name;
	char *value;
};

struct qfile {
	int fd;			/* the open file (not owned: caller closes) */
	time_t arrival;
	long arrival_usec;	/* 0..999999, 0 for whole-second T records */
	char *sender;		/* "" for <> */
	struct qfile_attr *attrs;
	size_t nattr;
	struct qfile_rcpt *rcpt;
	size_t nrcpt;
	off_t body_off;		/* first byte of the message */
	off_t body_size;	/* bytes of message */
	int version;		/* 1 or 2 */
	off_t notes_off;	/* first byte after the end record */
	off_t file_size;	/* file size when read */
};

#define QFILE_NOTE_TEXT_MAX 1000	/* bytes of a note's text */
#define QFILE_NOTES_MAX (1024 * 1024)	/* bytes of all the notes */

/* one recipient's last deferral, kept after the end record */
struct qfile_note {
	size_t idx;		/* recipient index */
	time_t when;		/* when the attempt was made */
	char dsn[16];		/* enhanced status code, "4.2.2" */
	char *text;		/* the reason, no control bytes (owned) */
};

/* qfile_read - parse and validate the queue file open on fd */
int qfile_read(int fd, struct qfile **qf_r, struct buf *why);
/* qfile_free - free the parsed envelope (does not close fd) */
void qfile_free(struct qfile **qf);
/* qfile_attr - value of an envelope attribute, or NULL */
const char *qfile_attr(const struct qfile *qf, const char *name);
/* qfile_set_status - rewrite recipient idx's status byte (no fsync) */
int qfile_set_status(struct qfile *qf, size_t idx, char status,
    struct buf *why);
/* qfile_set_warned - mark queued recipient idx as warned about its
 * delay (QFILE_WARNED on disk), or unmark it (no fsync) */
int qfile_set_warned(struct qfile *qf, size_t idx, bool warned,
    struct buf *why);
/* qfile_sync - make status changes durable (fdatasync) */
int qfile_sync(struct qfile *qf, struct buf *why);
/* qfile_pending - recipients still QFILE_QUEUED */
size_t qfile_pending(const struct qfile *qf);
/* qfile_notes_write - replace the notes block of qf (fd open for writing)
 * with notes[0..n): control bytes in a text become '?', a text is cut to
 * QFILE_NOTE_TEXT_MAX bytes, notes past QFILE_NOTES_MAX bytes in all are
 * left out. Not synced (the notes are advice). 0, or -1 with why */
int qfile_notes_write(struct qfile *qf, const struct qfile_note *notes,
    size_t n, struct buf *why);
/* qfile_notes_read - the notes of qf, the last one per recipient, into
 * *notes_r (free with qfile_notes_free) and *n_r: none when the block is
 * missing or damaged; -1 with why only when the file cannot be read */
int qfile_notes_read(const struct qfile *qf, struct qfile_note **notes_r,
    size_t *n_r, struct buf *why);
/* qfile_notes_free - free notes[0..n) */
void qfile_notes_free(struct qfile_note **notes, size_t n);

/* writer */
struct qfile_writer;

/* qfile_writer_new - start an unnamed file in <spool>/incoming */
int qfile_writer_new(const char *spool_dir, struct qfile_writer **w_r,
    struct buf *why);
/* envelope, in this order: start (T, S), attributes, recipients, then
 * qfile_writer_begin_body; panics on CR/LF/NUL/TAB or out of order */
void qfile_writer_start(struct qfile_writer *w, time_t arrival,
    const char *sender);
/* qfile_writer_start_usec - the same with the arrival's microseconds
 * (0..999999), so that delays are logged to the millisecond */
void qfile_writer_start_usec(struct qfile_writer *w, time_t arrival,
    long usec, const char *sender);
void qfile_writer_attr(struct qfile_writer *w, const char *name,
    const char *value);
void qfile_writer_rcpt(struct qfile_writer *w, const char *addr,
    const char *orcpt, const char *notify);
void qfile_writer_begin_body(struct qfile_writer *w);
/* qfile_writer_body - append message bytes (buffered; errors are sticky
 * and reported by qfile_writer_finish) */
void qfile_writer_body(struct qfile_writer *w, const void *p, size_t n);
/* qfile_writer_insert - put p[0..n) at the start of the message,
 * before the bytes written so far (smtpd: the DKIM-Signature, known at
 * the end of the body); errors are sticky */
void qfile_writer_insert(struct qfile_writer *w, const void *p, size_t n);
/* qfile_writer_body_size - message bytes written so far */
off_t qfile_writer_body_size(const struct qfile_writer *w);
/* qfile_writer_finish - flush, write the end record and the size; -1 with
 * why (e.g. "write: No space left on device") */
int qfile_writer_finish(struct qfile_writer *w, struct buf *why);
/* qfile_writer_start_sync - start writing the finished file out, without
 * waiting (file_start_writeback); call it for every file of a batch before
 * the first qfile_writer_sync so they go to the disk together */
void qfile_writer_start_sync(struct qfile_writer *w);
/* qfile_writer_sync - fdatasync the file (thread-safe for distinct w) */
int qfile_writer_sync(struct qfile_writer *w, struct buf *why);
/* qfile_writer_link - give the file its name <spool>/incoming/<qid> */
int qfile_writer_link(struct qfile_writer *w, const char *qid,
    struct buf *why);
/* qfile_writer_free - close; an unlinked file disappears */
void qfile_writer_free(struct qfile_writer **w);

#endif
