/*
 * smtpd - structures shared by the SMTP server's files.
 *
 * One worker process runs one event loop and many sessions. A session is a
 * struct smtpd_session: the stream to the client, the protocol state, and
 * at most one mail transaction (struct smtpd_tx). Commands come from the
 * table in smtpd_cmd.c; message content is read by the byte-stream parsers
 * in smtpd_data.c; finished queue files go to the group-commit thread in
 * smtpd_commit.c; smtpd_trigger.c tells qmgr about new mail.
 *
 * Ownership: a session owns its stream, its transaction and the queue file
 * writer being filled. While a queue file is with the commit thread, the
 * job (embedded in the session) owns the writer, and the session is not
 * freed even if the client goes away: the commit result comes back first.
 */
#ifndef SMTPD_H
#define SMTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "base/buf.h"
#include "mail/dkim.h"
#include "mail/qid.h"
#include "mail/peer.h"
#include "mail/session.h"

struct service;
struct evloop;
struct stream;
struct ev_timer;
struct qfile_writer;
struct dir;
struct auth_call;
struct sasl_state;

/*
 * Session states, one bit each so that a command's allowed states are a
 * mask. The first five accept commands; the others consume raw input or
 * none at all.
 */
#define SMTPD_S_INIT	0x001	/* connected, no HELO/EHLO yet */
#define SMTPD_S_READY	0x002	/* greeted, no transaction */
#define SMTPD_S_MAIL	0x004	/* MAIL accepted, no recipient yet */
#define SMTPD_S_RCPT	0x008	/* one or more recipients accepted */
#define SMTPD_S_CHUNKS	0x010	/* BDAT transaction, between chunks */
#define SMTPD_S_DATA	0x020	/* reading DATA content */
#define SMTPD_S_BDAT	0x040	/* reading the bytes of one BDAT chunk */
#define SMTPD_S_COMMIT	0x080	/* queue file is with the commit thread */
#define SMTPD_S_TLS	0x100	/* TLS handshake after STARTTLS */
#define SMTPD_S_QUIT	0x200	/* closing: input is ignored */
#define SMTPD_S_SASL	0x400	/* AUTH: reading SASL responses, or
				 * waiting for authd (input paused) */

#define SMTPD_S_CMD (SMTPD_S_INIT | SMTPD_S_READY | SMTPD_S_MAIL | \
	SMTPD_S_RCPT | SMTPD_S_CHUNKS)
#define SMTPD_S_TX (SMTPD_S_MAIL | SMTPD_S_RCPT | SMTPD_S_CHUNKS)

/* reasons why a session's input is paused (bits of smtpd_session.pause) */
#define SMTPD_PAUSE_COMMIT	0x1	/* waiting for the commit thread */
#define SMTPD_PAUSE_OUTPUT	0x2	/* too many replies not yet sent */
#define SMTPD_PAUSE_AUTH	0x4	/* waiting for authd */

/*
 * The role of a session: the listener it came in on decides it.
 * mx: port 25, mail for the hosted domains from anybody, no AUTH.
 * submission: port 587 (RFC 6409), AUTH after STARTTLS. submissions:
 * port 465 (RFC 8314), TLS from the first byte, then AUTH. A session
 * of a submission role may send mail only after AUTH (or from
 * mynetworks); local: the "submit" socket of sendmail.
 */
enum smtpd_role {
	SMTPD_ROLE_MX,
	SMTPD_ROLE_SUBMISSION,
	SMTPD_ROLE_SUBMISSIONS,
	SMTPD_ROLE_LOCAL,
};

/* output above this pauses reading; below SMTPD_OUTPUT_LOW resumes */
#define SMTPD_OUTPUT_HIGH (64 * 1024)
#define SMTPD_OUTPUT_LOW (16 * 1024)

/* BODY= values */
enum smtpd_body { SMTPD_BODY_NONE, SMTPD_BODY_7BIT, SMTPD_BODY_8BITMIME };
/* RET= values (RFC 3461) */
enum smtpd_ret { SMTPD_RET_NONE, SMTPD_RET_FULL, SMTPD_RET_HDRS };

/*
 * The DATA byte-stream parser: a pure state machine over chunks of bytes.
 * It finds the end of the content (CRLF "." CRLF, and nothing else),
 * removes dot-stuffing, and notes bare CR or LF. See smtpd_data.c.
 */
struct smtpd_data_parser {
	int state;		/* position relative to the line start */
	bool bare;		/* a bare CR or bare LF was seen */
	bool done;		/* the terminator was consumed */
};

/* smtpd_data_out_fn - receives unstuffed content bytes */
typedef void smtpd_data_out_fn(void *ctx, const char *p, size_t n);

/* The BDAT content scanner: notes bare CR/LF across chunk borders. */
struct smtpd_bdat_scan {
	bool cr;		/* the previous byte was CR */
	bool bare;		/* a bare CR or bare LF was seen */
	bool any;		/* any byte seen */
	char last;		/* the last byte (to end the last line) */
};

/* the header scan of submitted mail (smtpd_hdr.c) */
#define SMTPD_HDR_NAME_MAX 80	/* longest field name held back */
#define SMTPD_HDR_FROM_MAX 4096	/* From: text kept */
struct smtpd_hdr;
/* smtpd_hdr_end_fn - the header section ends here: write what it lacks */
typedef void smtpd_hdr_end_fn(struct smtpd_hdr *h, void *ctx);
struct smtpd_hdr {
	int state;		/* SMTPD_HDR_* in smtpd_hdr.c */
	char name[SMTPD_HDR_NAME_MAX + 1];	/* held start of a line */
	size_t nlen;
	size_t wlen;		/* ... of which the name, before blanks */
	int field;		/* the field whose value is being read */
	bool seen;		/* a field was seen (folding is allowed) */
	bool has_msgid;		/* Message-ID: seen */
	bool has_date;		/* Date: seen */
	int nfrom;		/* From: fields seen */
	struct buf from;	/* their values, joined by "," */
	bool from_long;		/* ... past SMTPD_HDR_FROM_MAX */
	bool done;		/* the section has ended */
	bool lost;		/* ... inside an over-long line: no at_end */
	bool separated;		/* ... at a line that is no field: CRLF added */
	smtpd_hdr_end_fn *at_end;	/* called once where it ends */
};

/* a parsed MAIL FROM command (smtpd_cmd_parse_mail) */
struct smtpd_mail_req {
	struct buf addr;	/* internal form, "" for <> */
	long long size;		/* SIZE=, -1 if absent */
	enum smtpd_body body;
	bool smtputf8;
	enum smtpd_ret ret;
	struct buf envid;	/* xtext-decoded ENVID, "" if absent */
	bool has_envid;
};

/* a parsed RCPT TO command (smtpd_cmd_parse_rcpt) */
struct smtpd_rcpt_req {
	struct buf addr;	/* internal form */
	bool postmaster;	/* bare <postmaster>: addr is "postmaster" */
	struct buf orcpt;	/* "rfc822;a@b" (decoded), "" if absent */
	struct buf notify;	/* "NEVER" or "SUCCESS,FAILURE,DELAY" subset */
};

/* one accepted recipient */
struct smtpd_rcpt {
	char *addr;		/* internal form */
	char *orcpt;		/* "" if none */
	char *notify;		/* "" if none */
};

/* the spool space one transaction reserves (smtpd_space.c) */
struct smtpd_space_tx {
	bool open;		/* reserved at MAIL, not yet released */
	long long want;		/* SIZE=, else message_size_limit */
	long long held;		/* want less the content written, >= 0 */
};

/* what the open transactions of this worker reserve (smtpd_space.c) */
struct smtpd_space {
	long long held;		/* sum of their held */
	long long open;		/* transactions with a reservation */
};

/*
 * The DKIM signing of one message (smtpd_sign.c): the header block as
 * queued is kept (bounded), the body is hashed as it is written, and at
 * the end the signer is asked for the DKIM-Signature fields.
 */
#define SMTPD_SIGN_HEADER_MAX (256 * 1024)	/* as signer's bound */
struct ipc_async;
struct smtpd_sign {
	bool on;		/* signable: local, logged in, mynetworks */
	bool body;		/* past the header: bytes go to the hasher */
	int eoh;		/* bytes of CR LF CR LF matched */
	struct buf header;	/* the header block as queued */
	bool too_long;		/* ... past SMTPD_SIGN_HEADER_MAX */
	bool nul;		/* ... holds a NUL (cannot cross IPC) */
	bool hashing;		/* hasher started */
	bool broken;		/* hashing failed (OpenSSL) */
	struct dkim_hasher hasher;
	struct ipc_async *call;	/* the signer's answer pending */
};

/* one mail transaction: MAIL .. end of data (or RSET) */
struct smtpd_tx {
	char qid[QID_SIZE];	/* "" until the first accepted recipient */
	struct buf sender;	/* internal form, "" for <> */
	long long size_decl;	/* SIZE= or -1 */
	enum smtpd_body body;
	bool smtputf8;
	enum smtpd_ret ret;
	char *envid;		/* NULL if none */
	struct smtpd_rcpt *rcpt;
	size_t nrcpt, rcpt_cap;
	uint32_t *rcpt_set;	/* open-addressed set of rcpt index + 1 */
	size_t set_cap;		/* power of two, 0 = none yet */
	char **copy_set;	/* mailboxes, aliases counted (smtpd_check) */
	size_t copy_cap, ncopy_keys;	/* copy_set: power of two, in use */
	long long copies;	/* copies the recipients make, at most */

	/* content */
	struct qfile_writer *w;	/* NULL until DATA / the first BDAT */
	long long content;	/* message bytes received (unstuffed) */
	long long header_len;	/* bytes of our Received: header */
	bool too_big;		/* content passed message_size_limit */
	bool failed;		/* writer could not be started */
	struct smtpd_data_parser dp;
	struct smtpd_bdat_scan bs;
	bool hdr_on;		/* submission: header scan (smtpd_hdr.c) */
	struct smtpd_hdr hdr;
	bool bdat;		/* content comes by BDAT */
	long long chunk_left;	/* BDAT bytes still to read */
	long long chunk_size;	/* size of the current chunk */
	bool chunk_last;	/* the current chunk is LAST */
	bool chunk_discard;	/* read and drop (no valid transaction) */
	unsigned chunk_return;	/* session state before this BDAT */
	bool expected;		/* counted by smtpd_commit_expect() */
	struct smtpd_space_tx space;	/* its spool reservation */
	struct peer_tally tally;	/* counts it for its client */
	struct ev_timer *rate_timer;	/* content open: data-rate check */
	long long rate_start;	/* ms when the content was opened */
	long long rate_deadline;	/* ms when the credit runs out */
	struct smtpd_sign sign;	/* DKIM signing (smtpd_sign.c) */
};

/* the group-commit job of one message (smtpd_commit.c) */
struct smtpd_commit_job {
	struct smtpd_commit_job *next;
	struct qfile_writer *w;	/* owned by the job while queued */
	char qid[QID_SIZE];
	int result;		/* 0 committed, -1 failed (why) */
	struct buf why;
	void (*done)(struct smtpd_commit_job *job, void *ctx);
	void *ctx;
};


/* one SMTP session */
struct smtpd_session {
	struct session base;	/* stream, peer, pauses, errors, last
				 * command */
	bool ipv6;		/* addr is IPv6 (Received: "IPv6:" literal) */
	bool local;		/* local submission (sendmail), see below */
	long long local_uid;	/* its sender's uid, from the kernel */
	enum smtpd_role role;	/* the listener it came in on */
	bool trusted;		/* client in mynetworks: may relay */
	bool greeted;		/* the 220 greeting was sent */
	struct buf login;	/* AUTH: canonical user, "" before */
	const char *auth_method;	/* "PLAIN"/"LOGIN" of the login */
	struct sasl_state *sasl;	/* AUTH exchange in progress, or NULL */
	struct auth_call *auth;	/* authd request in flight, or NULL */
	unsigned state;		/* SMTPD_S_* */
	bool esmtp;		/* EHLO (not HELO) was used */
	struct buf helo;	/* HELO/EHLO argument */
	struct smtpd_tx tx;
	long long junk;		/* NOOPs &c since the last message */
	bool commit_pending;	/* the job is with the commit thread */
	struct smtpd_commit_job job;
	unsigned *cmd_ok;	/* per command table entry: accepted */
	unsigned *cmd_total;	/* per command table entry: seen */
	struct buf scratch;	/* header and log text */
	struct buf line;	/* copy of the command line being run */
};

/* the server TLS context, loaded by smtpd.c before the privilege drop
 * (defined in smtpd_session.c); NULL: no STARTTLS */
extern SSL_CTX *smtpd_tls_ctx;

/* smtpd_session.c */
/* smtpd_session_init - remember the service (after the privilege drop;
 * NULL: none, in unit tests) and the loop of the sessions */
void smtpd_session_init(struct service *svc, struct evloop *loop);
/* smtpd_session_accept - a new client: limits, greeting (on
 * submissions after the TLS handshake); role by listener: local is the
 * "submit" socket, where any local user hands over mail with sendmail */
void smtpd_session_accept(struct service *svc, int fd, enum smtpd_role role);
/* smtpd_session_submission - a session of the 587 or 465 role */
bool smtpd_session_submission(const struct smtpd_session *s);
/* smtpd_session_may_relay - may send to any domain: local, logged in,
 * or from mynetworks */
bool smtpd_session_may_relay(const struct smtpd_session *s);
/* smtpd_session_stop - graceful stop: idle sessions close soon */
void smtpd_session_stop(struct service *svc);
/* smtpd_session_reply - queue one reply line (CRLF added) */
void smtpd_session_reply(struct smtpd_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* smtpd_session_error - a reply that counts toward smtpd_error_limit */
void smtpd_session_error(struct smtpd_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* smtpd_session_set_state - change state; QUIT (closing) is final */
void smtpd_session_set_state(struct smtpd_session *s, unsigned next);
/* smtpd_session_finish - flush the replies, then close */
void smtpd_session_finish(struct smtpd_session *s);
/* smtpd_session_reset_tx - forget the transaction (drops its file) */
void smtpd_session_reset_tx(struct smtpd_session *s);
/* smtpd_session_starttls - forget everything, start the handshake */
void smtpd_session_starttls(struct smtpd_session *s);
/* smtpd_session_proto - "ESMTP", "ESMTPS", "UTF8SMTP", ... */
const char *smtpd_session_proto(const struct smtpd_session *s);
/* smtpd_session_log_reject - "NOQUEUE: reject: CMD from [ip]: ..." */
void smtpd_session_log_reject(struct smtpd_session *s, const char *cmd,
    const char *to, const char *reply);

/* smtpd_auth.c */
/* smtpd_auth_cmd - AUTH mechanism [initial-response] (RFC 4954) */
int smtpd_auth_cmd(struct smtpd_session *s, const char *args, size_t len);
/* smtpd_auth_line - a client's SASL response line during AUTH */
void smtpd_auth_line(struct smtpd_session *s, const char *line, size_t len);
/* smtpd_auth_offered - may EHLO list AUTH (and AUTH run) now? */
bool smtpd_auth_offered(const struct smtpd_session *s);
/* smtpd_auth_abort - forget an exchange or authd call in progress */
void smtpd_auth_abort(struct smtpd_session *s);

/* smtpd_cmd.c */
struct smtpd_cmd {
	const char *name;	/* verb, upper case */
	unsigned states;	/* SMTPD_S_* where it is allowed */
	/* fn - run the command; 0 if it succeeded (for the disconnect log) */
	int (*fn)(struct smtpd_session *s, const char *args, size_t len);
	const char *seq_text;	/* 503 text when not allowed ("need MAIL") */
};
extern const struct smtpd_cmd smtpd_cmd_table[];
/* smtpd_cmd_count - table entries plus one slot for unknown commands */
size_t smtpd_cmd_count(void);
/* smtpd_cmd_find - the entry for verb[0..len), NULL if unknown */
const struct smtpd_cmd *smtpd_cmd_find(const char *verb, size_t len);
/* smtpd_cmd_forbidden - true for HTTP and proxy verbs (cross-protocol) */
bool smtpd_cmd_forbidden(const char *verb, size_t len);
/* smtpd_cmd_dispatch - run one command line (without its CRLF) */
void smtpd_cmd_dispatch(struct smtpd_session *s, char *line, size_t len);
/* parsers: 0, or -1 with the whole reply line ("501 5.1.7 ...") in reply */
void smtpd_cmd_mail_req_init(struct smtpd_mail_req *r);
void smtpd_cmd_mail_req_free(struct smtpd_mail_req *r);
int smtpd_cmd_parse_mail(const char *args, size_t len,
    struct smtpd_mail_req *r, struct buf *reply);
void smtpd_cmd_rcpt_req_init(struct smtpd_rcpt_req *r);
void smtpd_cmd_rcpt_req_free(struct smtpd_rcpt_req *r);
int smtpd_cmd_parse_rcpt(const char *args, size_t len, bool smtputf8,
    struct smtpd_rcpt_req *r, struct buf *reply);
int smtpd_cmd_parse_bdat(const char *args, size_t len, long long *size_r,
    bool *last_r);
int smtpd_cmd_check_helo(const char *args, size_t len, struct buf *reply);

/* smtpd_data.c */
/* smtpd_data_init - a DATA parser at the start of the content */
void smtpd_data_init(struct smtpd_data_parser *dp);
/* smtpd_data_feed - parse a chunk; content goes to out; returns bytes
 * consumed (all of them unless the terminator was found: dp->done) */
size_t smtpd_data_feed(struct smtpd_data_parser *dp, const char *p,
    size_t n, smtpd_data_out_fn *out, void *ctx);
/* smtpd_data_bdat_init / _feed / _end - bare CR/LF scan of BDAT content */
void smtpd_data_bdat_init(struct smtpd_bdat_scan *bs);
void smtpd_data_bdat_feed(struct smtpd_bdat_scan *bs, const char *p,
    size_t n);
void smtpd_data_bdat_end(struct smtpd_bdat_scan *bs);
/* smtpd_data_cmd - DATA accepted: open the queue file, say 354 */
void smtpd_data_cmd(struct smtpd_session *s);
/* smtpd_data_bdat_cmd - a well-formed BDAT: read (or skip) its chunk */
void smtpd_data_bdat_cmd(struct smtpd_session *s, long long size,
    bool last);
/* smtpd_data_input - feed buffered input to DATA or the BDAT chunk */
void smtpd_data_input(struct smtpd_session *s);
/* smtpd_data_abort - drop the queue file being written */
void smtpd_data_abort(struct smtpd_session *s);

/* smtpd_data_commit - finish the file and give it to the commit
 * thread */
void smtpd_data_commit(struct smtpd_session *s);
/* smtpd_data_signed - the signer's answer to smtpd_sign_end: 1 with
 * the DKIM-Signature fields in text, 0 no key (unsigned), -1 failed
 * (text: why, for the log) */
void smtpd_data_signed(struct smtpd_session *s, int result,
    const char *text);

/* smtpd_sign.c */
/* smtpd_sign_begin - a message's content starts (before our Received:) */
void smtpd_sign_begin(struct smtpd_session *s);
/* smtpd_sign_feed - content bytes as they go into the queue file */
void smtpd_sign_feed(struct smtpd_session *s, const char *p, size_t n);
/* smtpd_sign_end - the content is complete: 0 nothing to sign (commit
 * now); 1 the signer was asked, smtpd_data_signed follows from the
 * loop; -1 refused, the reply in reply */
int smtpd_sign_end(struct smtpd_session *s, struct buf *reply);
/* smtpd_sign_abort - forget the signing (cancels a pending call) */
void smtpd_sign_abort(struct smtpd_session *s);
/* smtpd_sign_from_domain - the domain of the first address of the first
 * From: field of header[0..len), lowercase, into out; false if none */
bool smtpd_sign_from_domain(const char *header, size_t len,
    struct buf *out);

/* smtpd_hdr.c */
/* smtpd_hdr_init - a scan at the start of the content (h zeroed or
 * used before) */
void smtpd_hdr_init(struct smtpd_hdr *h, smtpd_hdr_end_fn *at_end);
/* smtpd_hdr_free - release what the scan holds */
void smtpd_hdr_free(struct smtpd_hdr *h);
/* smtpd_hdr_feed - pass p[0..n) on to out, scanning the header section */
void smtpd_hdr_feed(struct smtpd_hdr *h, const char *p, size_t n,
    smtpd_data_out_fn *out, void *ctx);
/* smtpd_hdr_end - the content is complete: end the section if open */
void smtpd_hdr_end(struct smtpd_hdr *h, smtpd_data_out_fn *out, void *ctx);

/* smtpd_commit.c */
/* smtpd_commit_init - start the group-commit thread of this worker */
void smtpd_commit_init(struct evloop *loop);
/* smtpd_commit_submit - sync, link and dir-sync job->w; job->done runs
 * later in the loop thread with job->result. expected: the transaction
 * was counted by smtpd_commit_expect(true), and ends here */
void smtpd_commit_submit(struct smtpd_commit_job *job, bool expected);
/* smtpd_commit_expect - a transaction of this worker began (MAIL was
 * accepted) or ended without a commit; see smtpd_commit_delay */
void smtpd_commit_expect(bool begun);

/* smtpd_trigger.c */
/* smtpd_trigger_init - remember the loop (connects lazily) */
void smtpd_trigger_init(struct evloop *loop);
/* smtpd_trigger - tell qmgr about qid; never blocks, may drop */
void smtpd_trigger(const char *qid);

/* smtpd_space.c */
extern struct smtpd_space smtpd_space_worker;
/* smtpd_space_open - r reserves want bytes (r's old reservation ends) */
void smtpd_space_open(struct smtpd_space *sp, struct smtpd_space_tx *r,
    long long want);
/* smtpd_space_wrote - r's content is now written bytes long */
void smtpd_space_wrote(struct smtpd_space *sp, struct smtpd_space_tx *r,
    long long written);
/* smtpd_space_close - r's reservation ends (safe twice) */
void smtpd_space_close(struct smtpd_space *sp, struct smtpd_space_tx *r);
/* smtpd_space_room - free - held >= 1.5 x want + minfree */
bool smtpd_space_room(const struct smtpd_space *sp, long long free,
    long long want, long long minfree);
/* smtpd_space_credit - the data-rate deadline after n more bytes at now
 * (ms): + n/rate s, at most window_ms from now */
long long smtpd_space_credit(long long deadline, long long now,
    long long n, long long rate, long long window_ms);

/* smtpd_check.c */
/* smtpd_check_init - open the directory read-only */
void smtpd_check_init(void);
/* smtpd_check_storage - 0 if the spool has room for a transaction that
 * reserves want bytes (smtpd_space_room), else -1 */
int smtpd_check_storage(struct smtpd_session *s, long long want);
/* smtpd_check_rcpt - 0 if addr may be accepted, else -1 and the reply
 * (-2: a temporary refusal that is no client error: 452 4.5.3) */
int smtpd_check_rcpt(struct smtpd_session *s, const char *addr,
    struct buf *reply);
/* smtpd_check_postmaster_domain - the domain a bare <postmaster> gets
 * (resolve_postmaster_domain) */
void smtpd_check_postmaster_domain(struct smtpd_session *s, struct buf *out);
/* smtpd_check_sender - may the logged-in user send as addr (internal
 * form)? 1 yes (also for "" and when nobody is logged in), 0 no (addr
 * does not lead to the user), -1 directory error (why) */
int smtpd_check_sender(struct smtpd_session *s, const char *addr,
    struct buf *why);
/* smtpd_check_rate - is the logged-in user within the hourly sending
 * limits with more recipients (0 at MAIL)? 0, or -1 with the 451 reply */
int smtpd_check_rate(struct smtpd_session *s, long long more,
    struct buf *reply);
/* smtpd_check_rate_add - count a queued message of the logged-in user */
void smtpd_check_rate_add(struct smtpd_session *s, long long nrcpt);
/* smtpd_check_srs - RCPT TO an SRS address of our srs_domain (a bounce
 * to mail we forwarded, lib/mail/srs_site.h): 0 not one (addr as it
 * was); 1 valid, addr replaced by the original address, which is in
 * another domain and accepted from anyone; 2 the same, the original is
 * hosted: check it as any recipient; -1 forged, expired, malformed
 * (550 5.1.1) or the secret unreadable (451 4.3.0), the reply line in
 * reply. orcpt gets "rfc822;<SRS address>" when it was empty */
int smtpd_check_srs(struct smtpd_session *s, struct buf *addr,
    struct buf *orcpt, struct buf *reply);
/* smtpd_check_hosted - is domain hosted here? 1 yes, 0 no, -1 the
 * directory cannot say (why) */
int smtpd_check_hosted(const char *domain, struct buf *why);
/* smtpd_check_add_rcpt - add a recipient once; 1 added, 0 duplicate */
int smtpd_check_add_rcpt(struct smtpd_tx *tx, const char *addr,
    const char *orcpt, const char *notify);
/* smtpd_check_clear_rcpts - forget the recipients */
void smtpd_check_clear_rcpts(struct smtpd_tx *tx);

#endif
