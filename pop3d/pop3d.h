/*
 * pop3d - structures shared by the POP3 server's files.
 *
 * One worker process runs one event loop and many sessions. A session is
 * a struct pop3d_session: the stream to the client, the protocol state,
 * the login in progress (SASL state, the authd call), and once logged in
 * the maildrop (struct pop3d_maildrop: the locked snapshot of the INBOX
 * taken at login). Commands come from the table in pop3d_cmd.c; logins
 * are pop3d_auth.c; multi-line replies (LIST, UIDL, RETR, TOP) are
 * produced a piece at a time by pop3d_send.c so that no reply is ever held
 * in memory whole.
 *
 * Ownership: a session owns its stream, its maildrop (and with it the
 * maildrop lock), its authd call (cancelled when the session ends) and
 * the file being sent.
 */
#ifndef POP3D_H
#define POP3D_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "base/buf.h"
#include "mail/job.h"
#include "mail/sasl.h"
#include "mail/peer.h"
#include "mail/session.h"

struct service;
struct evloop;
struct stream;
struct ev_timer;
struct auth_call;
struct pop3d_job;

/*
 * Session states, one bit each so that a command's allowed states are a
 * mask. AUTH and TRANS take commands (RFC 1939 AUTHORIZATION and
 * TRANSACTION); the others take a SASL line or no input at all.
 */
#define POP3D_S_AUTH	0x01	/* AUTHORIZATION: not logged in */
#define POP3D_S_TRANS	0x02	/* TRANSACTION: maildrop locked */
#define POP3D_S_SASL	0x04	/* AUTH exchange: next line is a response */
#define POP3D_S_WAIT	0x08	/* waiting for authd (input paused) */
#define POP3D_S_SEND	0x10	/* a multi-line reply is being produced */
#define POP3D_S_TLS	0x20	/* TLS handshake (STLS or pop3s) */
#define POP3D_S_QUIT	0x40	/* closing: input is ignored */

#define POP3D_S_CMD (POP3D_S_AUTH | POP3D_S_TRANS)

/* reasons why a session's input is paused (bits of pop3d_session.pause) */
#define POP3D_PAUSE_AUTH	0x1	/* a login is with authd */
#define POP3D_PAUSE_OUTPUT	0x2	/* too much output not yet sent */
#define POP3D_PAUSE_SEND	0x4	/* a multi-line reply is in progress */
#define POP3D_PAUSE_JOB		0x8	/* a maildrop thread works for us */

/* output above this stops input and reply production; below LOW resumes */
#define POP3D_OUTPUT_HIGH (64 * 1024)
#define POP3D_OUTPUT_LOW (16 * 1024)

/* command lines (RFC 2449 4: 255 octets with CRLF) */
#define POP3D_CMD_MAX 255
/* hard cap of any line incl. CRLF: PASS, AUTH initial responses, SASL */
#define POP3D_LINE_MAX 2048

/* UIDL: 1..70 characters 0x21..0x7E (RFC 1939 7) */
#define POP3D_UIDL_MAX 70

/* one message of the login snapshot */
struct pop3d_msg {
	char *name;		/* current file name in cur/ */
	char uidl[POP3D_UIDL_MAX + 1];
	long long size;		/* octets with CRLF line ends */
	long long sec;		/* delivery time (sort key) */
	bool deleted;		/* DELE'd in this session */
};

/* the locked maildrop of a logged-in session */
struct pop3d_maildrop {
	char *path;		/* the Maildir */
	int lock_fd;		/* flock'ed <path>/herald-pop3.lock */
	struct pop3d_msg *msgs;	/* the snapshot, in delivery order */
	size_t n;
	long long total;	/* sum of sizes */
	size_t ndel;		/* messages marked deleted */
	long long del_size;	/* their sizes */
};

/* size cache (pop3d_sizes.c): one entry */
struct pop3d_size_ent {
	char *base;		/* base name (UIDL part) */
	long long wsize;	/* CRLF size */
	long long fsize;	/* st_size when counted */
	unsigned long long ino;	/* st_ino */
	long long mtime_sec, mtime_nsec;	/* st_mtim */
	bool used;		/* looked up with a match */
};

/* a cache file's longest base name and line, and its largest size */
#define POP3D_SIZES_NAME "herald-sizes"
#define POP3D_SIZES_NAME_MAX 255
#define POP3D_SIZES_LINE_MAX (POP3D_SIZES_NAME_MAX + 100)
#define POP3D_SIZES_FILE_MAX (16LL * 1024 * 1024)

/* the size cache, and its parser's state */
struct pop3d_sizes {
	struct pop3d_size_ent *ent;
	size_t n, cap;
	bool sorted;		/* ent is in base name order */
	bool header_seen;	/* parser: the first line was right */
	bool bad;		/* parser: not a cache; ignored */
	size_t line_len;	/* parser: bytes of the line so far */
	char line[POP3D_SIZES_LINE_MAX];
};

/* results of pop3d_maildrop_open */
enum pop3d_md_result {
	POP3D_MD_OK,
	POP3D_MD_LOCKED,	/* another session has it */
	POP3D_MD_ERROR,		/* why says what */
};

/*
 * The RETR/TOP encoder: a pure state machine over chunks of a stored
 * message. LF line ends become CRLF (a stored CRLF stays, never a double
 * CR), lines that start with "." get another "." (RFC 1939 3), and for
 * TOP the output stops after the header, the blank line and the first
 * body_lines lines of the body.
 */
struct pop3d_enc {
	bool bol;		/* at the beginning of a line */
	bool cr;		/* the previous byte was CR */
	size_t line_bytes;	/* bytes of the current line so far */
	bool in_body;		/* the blank line after the header was seen */
	long long body_lines;	/* TOP: body lines still to send; -1: all */
	bool done;		/* TOP: everything wanted was produced */
};

/* what a multi-line reply in progress produces */
enum pop3d_send_kind {
	POP3D_SEND_NONE,
	POP3D_SEND_LIST,	/* "n size" lines */
	POP3D_SEND_UIDL,	/* "n uidl" lines */
	POP3D_SEND_MSG,		/* a message file (RETR, TOP) */
};

/* the multi-line reply in progress */
struct pop3d_send {
	enum pop3d_send_kind kind;
	size_t next;		/* LIST/UIDL: next message index */
	int fd;			/* MSG: the open file, -1 if none */
	off_t off;		/* MSG: bytes read so far */
	long long sent;		/* MSG: octets produced (for the log) */
	bool top;		/* MSG: TOP rather than RETR */
	struct pop3d_enc enc;	/* MSG */
};


/* one POP3 session */
struct pop3d_session {
	struct session base;	/* stream, peer, pauses, errors, last
				 * command, end reason */
	bool implicit_tls;	/* came in on a pop3s listener */
	unsigned state;		/* POP3D_S_* */
	bool stop_after_send;	/* SIGTERM came during a RETR */
	long long start_ms;	/* connect time (session timeout) */
	int commands;		/* commands before login */
	long long junk;		/* NOOPs &c since login or a RETR/TOP/DELE */

	/* login */
	struct buf user;	/* USER argument, "" if none */
	const char *method;	/* "USER", "PLAIN", "LOGIN" */
	struct sasl_state sasl;	/* AUTH exchange in progress */
	struct auth_call *auth;	/* authd call in flight */
	struct buf login;	/* canonical address once logged in */

	/* transaction */
	struct pop3d_maildrop *md;
	struct pop3d_send send;
	unsigned n_top, n_retr;	/* counts for the logout line */
	long long retr_bytes;
	bool quit;		/* QUIT in TRANSACTION: UPDATE ran */
	struct pop3d_job *job;	/* with the maildrop thread: held */
	bool stop_after_job;	/* SIGTERM came while it was */

	struct buf scratch;	/* reply and log text */
	struct buf line;	/* copy of the command line being run */
};

/* the server TLS context (pop3d_session.c), loaded by pop3d.c before the
 * privilege drop; NULL: no STLS and pop3s connections are closed */
extern SSL_CTX *pop3d_tls_ctx;

/* pop3d_session.c */
/* pop3d_session_init - remember the service (after the privilege drop) */
void pop3d_session_init(struct service *svc);
/* pop3d_session_accept - a new client: limits, TLS, greeting */
void pop3d_session_accept(struct service *svc, int fd, bool implicit_tls);
/* pop3d_session_stop - SIGTERM: close sessions not sending a message */
void pop3d_session_stop(struct service *svc);
/* pop3d_session_reply - queue one reply line (CRLF added) */
void pop3d_session_reply(struct pop3d_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* pop3d_session_error - a reply that counts toward pop3d_error_limit */
void pop3d_session_error(struct pop3d_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* pop3d_session_finish - flush the replies, then close; reason is for
 * the disconnect log line (a static string) */
void pop3d_session_finish(struct pop3d_session *s, const char *reason);
/* pop3d_session_starttls - STLS accepted: start the handshake */
void pop3d_session_starttls(struct pop3d_session *s);
/* pop3d_session_backlog - too much output queued: stop producing more
 * until it drained (STREAM_DRAINED: then input or the send goes on) */
bool pop3d_session_backlog(struct pop3d_session *s);

/* pop3d_cmd.c */
struct pop3d_cmd {
	const char *name;	/* keyword, upper case */
	unsigned states;	/* POP3D_S_* where it is allowed */
	bool long_line;		/* may exceed POP3D_CMD_MAX (PASS, AUTH) */
	/* fn - run the command; args are the rest of the line */
	void (*fn)(struct pop3d_session *s, char *args, size_t len);
};
extern const struct pop3d_cmd pop3d_cmd_table[];
/* pop3d_cmd_find - the entry for verb[0..len) (any case), or NULL */
const struct pop3d_cmd *pop3d_cmd_find(const char *verb, size_t len);
/* pop3d_cmd_forbidden - verbs of other protocols (HTTP, proxies) and
 * binary junk: the session ends at once */
bool pop3d_cmd_forbidden(const char *verb, size_t len);
/* pop3d_cmd_split - verb and arguments of line[0..len): the verb ends at
 * the first space, the arguments start after it */
void pop3d_cmd_split(const char *line, size_t len, size_t *vlen_r,
    const char **args_r);
/* pop3d_cmd_number - parse a decimal number (digits only, 0..max);
 * 0, or -1 if it is not one */
int pop3d_cmd_number(const char *p, size_t len, long long max,
    long long *n_r);
/* pop3d_cmd_dispatch - run one command line (without its CRLF) */
void pop3d_cmd_dispatch(struct pop3d_session *s, char *line, size_t len);
/* pop3d_cmd_capa_text - the CAPA list for s (lines without ".") */
void pop3d_cmd_capa_text(const struct pop3d_session *s, struct buf *out);

/* pop3d_auth.c */
/* pop3d_auth_user / _pass / _auth - the login commands */
void pop3d_auth_user(struct pop3d_session *s, char *args, size_t len);
void pop3d_auth_pass(struct pop3d_session *s, char *args, size_t len);
void pop3d_auth_auth(struct pop3d_session *s, char *args, size_t len);
/* pop3d_auth_sasl_line - a client line during an AUTH exchange */
void pop3d_auth_sasl_line(struct pop3d_session *s, char *line, size_t len);
/* pop3d_auth_abort - forget the login in progress (session closing) */
void pop3d_auth_abort(struct pop3d_session *s);

/* pop3d_maildrop.c */
/* pop3d_maildrop_open - lock the Maildir at path (made if missing),
 * move new/ to cur/, and take the snapshot */
enum pop3d_md_result pop3d_maildrop_open(const char *path,
    struct pop3d_maildrop **md_r, struct buf *why);
/* pop3d_maildrop_close - release the lock and free; NULL is fine */
void pop3d_maildrop_close(struct pop3d_maildrop **md);
/* pop3d_maildrop_open_msg - open message i (0-based) for reading; a file
 * renamed meanwhile (flags changed by IMAP) is found again by its base
 * name. -1 with errno ENOENT if it is gone */
int pop3d_maildrop_open_msg(struct pop3d_maildrop *md, size_t i);
/* pop3d_maildrop_update - RFC 1939 UPDATE: unlink the messages marked
 * deleted, fsync cur/ once. Returns how many could not be removed
 * (ENOENT: gone already, which is fine) */
size_t pop3d_maildrop_update(struct pop3d_maildrop *md, size_t *removed_r);
/* pop3d_maildrop_uidl - the UIDL of a file name: its base name (up to
 * ':'), or when that is not 1..70 chars of 0x21..0x7E a deterministic
 * "~" + hex digest of it */
void pop3d_maildrop_uidl(const char *name, char out[POP3D_UIDL_MAX + 1]);
/* pop3d_maildrop_count_wsize - the CRLF size of an open file (every LF
 * without a CR before it counts 2); -1 with errno on a read error */
long long pop3d_maildrop_count_wsize(int fd);

/* pop3d_sizes.c */
/* pop3d_sizes_init / _free - an empty cache; forget everything */
void pop3d_sizes_init(struct pop3d_sizes *c);
void pop3d_sizes_free(struct pop3d_sizes *c);
/* pop3d_sizes_name_ok - a base name the cache can hold (1..255 bytes of
 * 0x21..0x7E, no ':' or '/') */
bool pop3d_sizes_name_ok(const char *p, size_t n);
/* pop3d_sizes_add - one entry; e->base is ignored (base[0..blen) is
 * copied) */
void pop3d_sizes_add(struct pop3d_sizes *c, const char *base, size_t blen,
    const struct pop3d_size_ent *e);
/* pop3d_sizes_feed - parse the next chunk of a cache file (any split) */
void pop3d_sizes_feed(struct pop3d_sizes *c, const char *p, size_t n);
/* pop3d_sizes_end - end of input: 0, or -1 and an empty cache when the
 * file was not a complete, well-formed cache */
int pop3d_sizes_end(struct pop3d_sizes *c);
/* pop3d_sizes_lookup - the cached CRLF size of base[0..blen) if its
 * entry matches st (inode, size, mtime), else -1 */
long long pop3d_sizes_lookup(struct pop3d_sizes *c, const char *base,
    size_t blen, const struct stat *st);
/* pop3d_sizes_format - the file's text, for save and tests */
void pop3d_sizes_format(const struct pop3d_sizes *c, struct buf *out);
/* pop3d_sizes_load - read <dir>/herald-sizes into c (empty if missing,
 * too big or corrupt); -1 with errno only on an open/read error */
int pop3d_sizes_load(const char *dir, struct pop3d_sizes *c);
/* pop3d_sizes_save - write <dir>/herald-sizes atomically */
int pop3d_sizes_save(const char *dir, const struct pop3d_sizes *c,
    struct buf *why);

/* pop3d_maildrop.c: the maildrop threads (lib/mail/job.h) */
enum pop3d_job_kind {
	POP3D_JOB_OPEN,		/* pop3d_maildrop_open(path) */
	POP3D_JOB_UPDATE,	/* pop3d_maildrop_update(md) */
};
struct pop3d_job {
	struct job base;		/* owner: the session */
	enum pop3d_job_kind kind;
	char *path;			/* OPEN: the Maildir */
	struct pop3d_maildrop *md;	/* OPEN: result; UPDATE: input */
	enum pop3d_md_result result;	/* OPEN */
	size_t failed, removed;		/* UPDATE */
	struct buf why;			/* OPEN: the error */
	/* done - in the loop thread when the job is finished (or was
	 * skipped: base.cancelled); frees the job */
	void (*done)(struct pop3d_job *job, void *ctx);
	void *ctx;
};
/* pop3d_maildrop_init - start the maildrop threads (after the privilege
 * drop) */
void pop3d_maildrop_init(struct evloop *loop);
/* pop3d_maildrop_submit - run job on a maildrop thread, after owner's
 * earlier jobs; job->done follows in the loop thread */
void pop3d_maildrop_submit(struct pop3d_job *job, const void *owner);
/* pop3d_maildrop_cancel - owner has ended: an OPEN job of it that no
 * thread has started is skipped (UPDATE always runs) */
void pop3d_maildrop_cancel(const void *owner);
/* pop3d_maildrop_job_free - free a job and what it still holds (md:
 * closed) */
void pop3d_maildrop_job_free(struct pop3d_job **job);

/* pop3d_send.c */
/* pop3d_enc_init - an encoder at the start of a message; body_lines < 0
 * sends everything (RETR) */
void pop3d_enc_init(struct pop3d_enc *e, long long body_lines);
/* pop3d_enc_feed - encode a chunk into out; returns bytes consumed (all
 * of them unless TOP has all it wants: e->done) */
size_t pop3d_enc_feed(struct pop3d_enc *e, const char *p, size_t n,
    struct buf *out);
/* pop3d_enc_end - end of input: close a last unterminated line and add
 * the terminating ".CRLF" */
void pop3d_enc_end(struct pop3d_enc *e, struct buf *out);
/* pop3d_send_start - begin a multi-line reply of kind (after its +OK);
 * MSG takes ownership of fd */
void pop3d_send_start(struct pop3d_session *s, enum pop3d_send_kind kind,
    int fd, long long body_lines);
/* pop3d_send_pump - produce more of the reply while output is low */
void pop3d_send_pump(struct pop3d_session *s);
/* pop3d_send_abort - drop a reply in progress (session closing) */
void pop3d_send_abort(struct pop3d_session *s);

#endif
