/*
 * smtpd_data - message content: the DATA and BDAT byte streams and the
 * queue file they fill.
 *
 * The DATA parser (smtpd_data_feed) is a pure function over chunks of
 * bytes: it keeps its whole state in struct smtpd_data_parser, calls back
 * with unstuffed content, and never looks at the session, so it can be fed
 * at any chunk size by unit tests and fuzzers. The content ends at CRLF
 * "." CRLF and nowhere else (RFC 5321 4.1.1.4): the start of the content
 * counts as a line start because the DATA command's own CRLF came just
 * before it. A bare CR or a bare LF anywhere marks the message bad
 * (RFC 5321 2.3.8); such a message is read to its real end and then
 * rejected, so "\n.\r\n", "\r.\r\n" or "\n.\n" can never end a message or
 * start a second one (SMTP smuggling).
 *
 * BDAT chunks (RFC 3030) are exact byte counts with no dot-stuffing; the
 * scanner smtpd_data_bdat_feed applies the same bare CR/LF rule across chunk
 * borders.
 *
 * The session part: DATA and BDAT open a queue file (qfile_writer), write
 * the envelope and our Received: header, stream the content into it, and at
 * the end hand it to the commit thread (smtpd_commit.c). The reply to the
 * end of data waits for the commit: 250 only once the file is durable.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/evloop.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "base/stream.h"
#include "mail/addr.h"
#include "mail/mime.h"
#include "mail/params.h"
#include "mail/qfile.h"
#include "smtpd.h"

/* DATA parser states: where we are relative to the start of a line */
#define DS_BOL		0	/* at a line start (after CRLF) */
#define DS_TEXT		1	/* inside a line */
#define DS_CR		2	/* inside a line, just after CR */
#define DS_DOT		3	/* a '.' at a line start (withheld) */
#define DS_DOT_CR	4	/* ".\r" at a line start (both withheld) */

/* smtpd_data_init - a parser at the start of the content */
void
smtpd_data_init(struct smtpd_data_parser *dp)
{
	dp->state = DS_BOL;
	dp->bare = false;
	dp->done = false;
}

/* smtpd_data_text - one byte inside a line (not after a CR) */
static inline void
smtpd_data_text(struct smtpd_data_parser *dp, char c)
{
	if (c == '\r') {
		dp->state = DS_CR;
	} else if (c == '\n') {
		/* A bare LF: not a line end, so no line start follows. */
		dp->bare = true;
		dp->state = DS_TEXT;
	} else {
		dp->state = DS_TEXT;
	}
}

/*
 * smtpd_data_feed - parse p[0..n): content bytes go to out (in runs, with
 * stuffing dots removed); returns the bytes consumed. When the terminator
 * was consumed, dp->done is set and the return value stops right after it;
 * otherwise all n bytes are consumed. After done, nothing is consumed.
 */
size_t
smtpd_data_feed(struct smtpd_data_parser *dp, const char *p, size_t n,
    smtpd_data_out_fn *out, void *ctx)
{
	size_t i, run = 0;	/* p[run..i) is content not yet passed on */

	if (dp->done)
		return 0;
	for (i = 0; i < n; i++) {
		char c = p[i];

		switch (dp->state) {
		case DS_BOL:
			if (c == '.') {
				/* Withhold the dot: stuffing or terminator. */
				if (i > run)
					out(ctx, p + run, i - run);
				run = i + 1;
				dp->state = DS_DOT;
			} else {
				smtpd_data_text(dp, c);
			}
			break;
		case DS_TEXT:
			smtpd_data_text(dp, c);
			break;
		case DS_CR:
			if (c == '\n') {
				dp->state = DS_BOL;
			} else {
				/* The CR before c was bare. */
				dp->bare = true;
				smtpd_data_text(dp, c);
			}
			break;
		case DS_DOT:
			if (c == '\r') {
				/* Maybe the terminator: withhold the CR too. */
				run = i + 1;
				dp->state = DS_DOT_CR;
			} else {
				/* The dot was stuffing; c is content. */
				smtpd_data_text(dp, c);
			}
			break;
		case DS_DOT_CR:
			if (c == '\n') {
				dp->done = true;
				return i + 1;
			}
			/* ".\r" and no LF: the CR was content, and bare. */
			out(ctx, "\r", 1);
			run = i;
			dp->bare = true;
			smtpd_data_text(dp, c);
			break;
		default:
			msg_panic("smtpd_data_feed: bad state %d", dp->state);
		}
	}
	if (n > run)
		out(ctx, p + run, n - run);
	return n;
}

/* smtpd_data_bdat_init - a scanner at the start of a BDAT message */
void
smtpd_data_bdat_init(struct smtpd_bdat_scan *bs)
{
	bs->cr = false;
	bs->bare = false;
	bs->any = false;
	bs->last = '\0';
}

/* smtpd_data_bdat_feed - note bare CR/LF in p[0..n) of a BDAT message */
void
smtpd_data_bdat_feed(struct smtpd_bdat_scan *bs, const char *p, size_t n)
{
	bool cr = bs->cr, bare = bs->bare;

	for (size_t i = 0; i < n; i++) {
		char c = p[i];

		if (cr ? c != '\n' : c == '\n')
			bare = true;
		cr = c == '\r';
	}
	if (n > 0) {
		bs->any = true;
		bs->last = p[n - 1];
	}
	bs->cr = cr;
	bs->bare = bare;
}

/* smtpd_data_bdat_end - the message ended: a CR still pending was bare */
void
smtpd_data_bdat_end(struct smtpd_bdat_scan *bs)
{
	if (bs->cr)
		bs->bare = true;
	bs->cr = false;
}

static void smtpd_data_reject(struct smtpd_session *s, const char *reply);

/* smtpd_data_put - content bytes into the queue file, and to the DKIM
 * signing (smtpd_sign.c) */
static void
smtpd_data_put(struct smtpd_session *s, const char *p, size_t n)
{
	qfile_writer_body(s->tx.w, p, n);
	smtpd_sign_feed(s, p, n);
}

/* smtpd_data_write - content bytes into the queue file */
static void
smtpd_data_write(void *ctx, const char *p, size_t n)
{
	smtpd_data_put(ctx, p, n);
}

/* smtpd_data_scan - content bytes through the header scan of submitted
 * mail (smtpd_hdr.c), else straight into the file */
static void
smtpd_data_scan(struct smtpd_session *s, const char *p, size_t n)
{
	if (s->tx.hdr_on)
		smtpd_hdr_feed(&s->tx.hdr, p, n, smtpd_data_write, s);
	else
		smtpd_data_put(s, p, n);
}

/* smtpd_data_date - RFC 5322 date-time of now */
static void smtpd_data_date(struct buf *out);

/*
 * smtpd_data_hdr_end - the end of a submitted message's header section:
 * add the Message-ID: and Date: the client left out (RFC 6409 8.2, 8.3).
 * Only here, in the queued copy, never for mail that came in on port 25.
 */
static void
smtpd_data_hdr_end(struct smtpd_hdr *h, void *ctx)
{
	struct smtpd_session *s = ctx;
	struct buf add = BUF_INIT;

	if (!h->has_msgid)
		buf_printf(&add, "Message-ID: <%s@%s>\r\n", s->tx.qid,
		    var_myhostname);
	if (!h->has_date) {
		buf_puts(&add, "Date: ");
		smtpd_data_date(&add);
		buf_puts(&add, "\r\n");
	}
	if (add.len > 0)
		smtpd_data_put(s, add.data, add.len);
	buf_free(&add);
}

/*
 * smtpd_data_from_check - smtpd_sender_login = strict: every From:
 * address of a logged-in user's message must lead to the user. 0, or -1
 * with the reply in reply.
 */
static int
smtpd_data_from_check(struct smtpd_session *s, struct buf *reply)
{
	struct smtpd_hdr *h = &s->tx.hdr;
	struct mime_addr *list, *a;
	struct buf addr = BUF_INIT, why = BUF_INIT;
	int rc = 0, ok;

	if (s->login.len == 0 ||
	    strcmp(var_smtpd_sender_login, "strict") != 0)
		return 0;
	buf_reset(reply);
	if (h->lost) {
		/* the scan stopped at a field name longer than it holds:
		 * a From: after it would go unchecked */
		buf_printf(reply, "553 5.7.1 Header field name longer than %d "
		    "bytes", SMTPD_HDR_NAME_MAX);
		return -1;
	}
	if (h->nfrom == 0)
		return 0;
	if (h->from_long) {
		buf_puts(reply, "553 5.7.1 From: header too long");
		return -1;
	}
	list = mime_addr_parse(h->from.data, h->from.len);
	if (list == NULL) {
		buf_puts(reply, "553 5.7.1 From: header without an address");
		return -1;
	}
	for (a = list; a != NULL && rc == 0; a = a->next) {
		if (a->host == NULL)
			continue;	/* group start or end */
		buf_reset(&addr);
		buf_printf(&addr, "%s@%s", a->mailbox != NULL ? a->mailbox :
		    "", a->host);
		buf_reset(&why);
		ok = 0;	/* what the directory cannot hold is nobody's */
		if (!addr_is_utf8(buf_cstr(&addr)) &&
		    !str_has_crlfnul(addr.data, addr.len))
			ok = smtpd_check_sender(s, buf_cstr(&addr), &why);
		if (ok < 0) {
			msg_warn("%s: From: check of %s failed: %s", s->tx.qid,
			    buf_cstr(&addr), buf_cstr(&why));
			buf_puts(reply, "451 4.3.0 Temporary lookup failure");
			rc = -1;
		} else if (ok == 0) {
			buf_puts(reply, "553 5.7.1 <");
			str_printable(reply, addr.data, addr.len, 200);
			buf_puts(reply, ">: From: address not owned by the "
			    "user you logged in as");
			rc = -1;
		}
	}
	mime_addr_free(&list);
	buf_free(&addr);
	buf_free(&why);
	return rc;
}

/*
 * smtpd_data_submitted - the content is complete: end the header scan
 * (its fields land at the end of a headers-only message) and check
 * From:. 0: commit; -1: rejected (replied).
 */
static int
smtpd_data_submitted(struct smtpd_session *s)
{
	struct buf reply = BUF_INIT;

	if (!s->tx.hdr_on)
		return 0;
	smtpd_hdr_end(&s->tx.hdr, smtpd_data_write, s);
	if (smtpd_data_from_check(s, &reply) < 0) {
		smtpd_data_reject(s, buf_cstr(&reply));
		buf_free(&reply);
		return -1;
	}
	buf_free(&reply);
	return 0;
}

/* smtpd_data_out - parser callback: count content, write it while good */
static void
smtpd_data_out(void *ctx, const char *p, size_t n)
{
	struct smtpd_session *s = ctx;
	struct smtpd_tx *tx = &s->tx;

	tx->content += (long long)n;
	smtpd_space_wrote(&smtpd_space_worker, &tx->space, tx->content);
	if (tx->rate_timer != NULL)
		tx->rate_deadline = smtpd_space_credit(tx->rate_deadline,
		    evloop_now_ms(s->base.pool->loop), (long long)n,
		    var_smtpd_min_data_rate, var_smtpd_data_rate_window * 1000);
	if (tx->content > var_message_size_limit)
		tx->too_big = true;
	if (tx->too_big || tx->failed || tx->w == NULL)
		return;
	/* Once bad, the message is rejected: stop writing it. */
	if (tx->bdat ? tx->bs.bare : tx->dp.bare)
		return;
	smtpd_data_scan(s, p, n);
}

/* smtpd_data_date - RFC 5322 date-time of now */
static void
smtpd_data_date(struct buf *out)
{
	char text[64];
	time_t now = time(NULL);
	struct tm tm;

	if (localtime_r(&now, &tm) == NULL ||
	    strftime(text, sizeof(text), "%a, %d %b %Y %H:%M:%S %z", &tm) == 0)
		snprintf(text, sizeof(text), "Thu, 01 Jan 1970 00:00:00 +0000");
	buf_puts(out, text);
}

/*
 * smtpd_data_received - our Received: header (RFC 5321 4.4), with the
 * protocol names of RFC 3848 and RFC 6531, the TLS details when TLS is on,
 * and "for" only when there is exactly one recipient (more would disclose
 * the other recipients). On the submission roles the client's address is
 * left out unless submission_received_client = yes: it is a user's home
 * or mobile address, which the recipients have no business knowing.
 */
static void
smtpd_data_received(struct smtpd_session *s, struct buf *out)
{
	struct smtpd_tx *tx = &s->tx;

	if (s->local)
		buf_printf(out, "Received: from local (uid %lld)\r\n",
		    s->local_uid);
	else if (smtpd_session_submission(s) &&
	    !var_submission_received_client)
		buf_printf(out, "Received: from %s\r\n", buf_cstr(&s->helo));
	else
		buf_printf(out, "Received: from %s ([%s%s])\r\n",
		    buf_cstr(&s->helo), s->ipv6 ? "IPv6:" : "",
		    s->base.peer.addr);
	buf_printf(out, "\tby %s (herald) with %s id %s", var_myhostname,
	    smtpd_session_proto(s), tx->qid);
	if (stream_is_tls(s->base.stream)) {
		buf_puts(out, "\r\n\t(");
		stream_tls_info(s->base.stream, out);
		buf_puts(out, ")");
	}
	if (tx->nrcpt == 1) {
		buf_puts(out, "\r\n\tfor <");
		addr_externalize(out, tx->rcpt[0].addr);
		buf_puts(out, ">");
	}
	buf_puts(out, "; ");
	smtpd_data_date(out);
	buf_puts(out, "\r\n");
}

/*
 * smtpd_data_rate_check - the data-rate timer (smtpd_space.c): while the
 * client has credit, wait for its deadline; when it has run out, 421 and
 * the queue file is dropped, so a trickle cannot hold spool space.
 */
static long long
smtpd_data_rate_check(struct evloop *loop, void *ctx)
{
	struct smtpd_session *s = ctx;
	struct smtpd_tx *tx = &s->tx;
	long long now = evloop_now_ms(loop);

	if (now < tx->rate_deadline)
		return tx->rate_deadline - now;
	tx->rate_timer = NULL;	/* freed by the loop when we return */
	s->base.depth++;
	if (!s->base.closed && s->state != SMTPD_S_QUIT) {
		msg_info("%s: data rate too low from [%s]: %lld bytes in "
		    "%lld s (smtpd_min_data_rate %lld bytes/s)",
		    tx->qid[0] ? tx->qid : "NOQUEUE", s->base.peer.addr,
		    tx->content, (now - tx->rate_start) / 1000,
		    var_smtpd_min_data_rate);
		smtpd_session_reply(s, "421 4.4.2 %s Error: data rate too "
		    "low", var_myhostname);
		smtpd_session_reset_tx(s);
		smtpd_session_finish(s);
	}
	session_leave(&s->base);
	return -1;
}

/* smtpd_data_rate_stop - the content is complete or dropped */
static void
smtpd_data_rate_stop(struct smtpd_session *s)
{
	if (s->tx.rate_timer != NULL)
		evloop_cancel_timer(s->base.pool->loop, &s->tx.rate_timer);
}

/*
 * smtpd_data_open - start the queue file: envelope, then our header.
 * Every envelope value was checked for CR, LF, NUL and TAB when its
 * command was parsed, so the writer's panics cannot trigger here.
 */
static int
smtpd_data_open(struct smtpd_session *s)
{
	struct smtpd_tx *tx = &s->tx;
	struct buf why = BUF_INIT;
	struct buf *hdr = &s->scratch;
	struct timespec now;

	if (qfile_writer_new(var_spool_directory, &tx->w, &why) < 0) {
		msg_warn("%s: cannot create queue file: %s", tx->qid,
		    buf_cstr(&why));
		buf_free(&why);
		tx->w = NULL;
		return -1;
	}
	buf_free(&why);
	if (clock_gettime(CLOCK_REALTIME, &now) < 0) {
		now.tv_sec = time(NULL);	/* cannot happen; seconds do */
		now.tv_nsec = 0;
	}
	qfile_writer_start_usec(tx->w, now.tv_sec, now.tv_nsec / 1000,
	    buf_cstr(&tx->sender));
	qfile_writer_attr(tx->w, QFILE_A_CLIENT_ADDR, s->base.peer.addr);
	qfile_writer_attr(tx->w, QFILE_A_HELO, buf_cstr(&s->helo));
	qfile_writer_attr(tx->w, QFILE_A_PROTOCOL, smtpd_session_proto(s));
	if (s->login.len > 0)
		qfile_writer_attr(tx->w, QFILE_A_AUTH, buf_cstr(&s->login));
	if (tx->smtputf8)
		qfile_writer_attr(tx->w, QFILE_A_SMTPUTF8, "1");
	if (tx->body != SMTPD_BODY_NONE)
		qfile_writer_attr(tx->w, QFILE_A_BODY,
		    tx->body == SMTPD_BODY_7BIT ? "7BIT" : "8BITMIME");
	if (tx->envid != NULL)
		qfile_writer_attr(tx->w, QFILE_A_ENVID, tx->envid);
	if (tx->ret != SMTPD_RET_NONE)
		qfile_writer_attr(tx->w, QFILE_A_RET,
		    tx->ret == SMTPD_RET_FULL ? "FULL" : "HDRS");
	for (size_t i = 0; i < tx->nrcpt; i++)
		qfile_writer_rcpt(tx->w, tx->rcpt[i].addr, tx->rcpt[i].orcpt,
		    tx->rcpt[i].notify);
	qfile_writer_begin_body(tx->w);

	if (smtpd_session_submission(s)) {
		tx->hdr_on = true;
		smtpd_hdr_init(&tx->hdr, smtpd_data_hdr_end);
	}
	smtpd_sign_begin(s);
	buf_reset(hdr);
	smtpd_data_received(s, hdr);
	smtpd_data_put(s, hdr->data, hdr->len);
	tx->header_len = (long long)hdr->len;
	buf_reset(hdr);
	if (var_smtpd_min_data_rate > 0 && tx->rate_timer == NULL) {
		tx->rate_start = evloop_now_ms(s->base.pool->loop);
		tx->rate_deadline = tx->rate_start +
		    var_smtpd_data_rate_window * 1000;
		tx->rate_timer = evloop_add_timer(s->base.pool->loop,
		    var_smtpd_data_rate_window * 1000, smtpd_data_rate_check,
		    s);
	}
	return 0;
}

/*
 * smtpd_data_reject - end of a message we do not take: reply, log, reset.
 * The reject may be the error that reached smtpd_error_limit: then the
 * session is closing (QUIT) and stays so.
 */
static void
smtpd_data_reject(struct smtpd_session *s, const char *reply)
{
	smtpd_session_log_reject(s, "END-OF-MESSAGE", NULL, reply);
	smtpd_session_error(s, "%s", reply);
	smtpd_session_reset_tx(s);
	smtpd_session_set_state(s, SMTPD_S_READY);
}

/* smtpd_data_committed - the commit thread's answer (loop thread) */
static void
smtpd_data_committed(struct smtpd_commit_job *job, void *ctx)
{
	struct smtpd_session *s = ctx;
	struct smtpd_tx *tx = &s->tx;

	s->base.depth++;
	s->commit_pending = false;
	if (job->result == 0) {
		msg_info("%s: from=<%s>, size=%lld, nrcpt=%zu", job->qid,
		    buf_cstr(&tx->sender),
		    (long long)qfile_writer_body_size(job->w), tx->nrcpt);
		smtpd_trigger(job->qid);
		smtpd_check_rate_add(s, (long long)tx->nrcpt);
		s->junk = 0;	/* smtpd_junk_command_limit: per message */
		if (!tx->bdat)	/* DATA counts as accepted only now */
			s->cmd_ok[smtpd_cmd_find("DATA", 4) -
			    smtpd_cmd_table]++;
		if (!s->base.closed)
			smtpd_session_reply(s,
			    "250 2.0.0 Ok: queued as %s", job->qid);
	} else {
		msg_warn("%s: queue file write error: %s", job->qid,
		    buf_cstr(&job->why));
		if (!s->base.closed)
			smtpd_session_reply(s,
			    "451 4.3.0 Error: queue file write error");
	}
	qfile_writer_free(&job->w);
	buf_reset(&job->why);
	smtpd_session_reset_tx(s);
	if (s->state == SMTPD_S_COMMIT)
		smtpd_session_set_state(s, SMTPD_S_READY);
	session_set_pause(&s->base, SMTPD_PAUSE_COMMIT, false);
	session_leave(&s->base);	/* frees s if it was closed meanwhile */
}

/* smtpd_data_commit - finish the file and give it to the commit thread */
void
smtpd_data_commit(struct smtpd_session *s)
{
	struct smtpd_tx *tx = &s->tx;
	struct buf why = BUF_INIT;

	if (qfile_writer_finish(tx->w, &why) < 0) {
		msg_warn("%s: queue file write error: %s", tx->qid,
		    buf_cstr(&why));
		buf_free(&why);
		smtpd_session_reply(s,
		    "451 4.3.0 Error: queue file write error");
		smtpd_session_reset_tx(s);
		smtpd_session_set_state(s, SMTPD_S_READY);
		return;
	}
	buf_free(&why);
	/* the file is whole: its bytes show in the free space now */
	smtpd_data_rate_stop(s);
	smtpd_space_close(&smtpd_space_worker, &tx->space);
	s->job.w = tx->w;
	tx->w = NULL;
	memcpy(s->job.qid, tx->qid, sizeof(s->job.qid));
	s->job.result = -1;
	s->job.done = smtpd_data_committed;
	s->job.ctx = s;
	s->commit_pending = true;
	smtpd_session_set_state(s, SMTPD_S_COMMIT);
	session_set_pause(&s->base, SMTPD_PAUSE_COMMIT, true);
	smtpd_commit_submit(&s->job, tx->expected);
	tx->expected = false;
}

/* smtpd_data_refuse - a complete message we do not take, for a reason
 * that is no client error (a 4xx): log, reply, reset */
static void
smtpd_data_refuse(struct smtpd_session *s, const char *reply)
{
	smtpd_session_log_reject(s, "END-OF-MESSAGE", NULL, reply);
	smtpd_session_reply(s, "%s", reply);
	smtpd_session_reset_tx(s);
	smtpd_session_set_state(s, SMTPD_S_READY);
}

/*
 * smtpd_data_finish - the content is complete and good: sign it when it
 * is to be signed (smtpd_sign.c; the session waits for the signer with
 * its input paused), else commit it now.
 */
static void
smtpd_data_finish(struct smtpd_session *s)
{
	struct buf reply = BUF_INIT;
	int r;

	smtpd_data_rate_stop(s);
	r = smtpd_sign_end(s, &reply);
	if (r == 0) {
		smtpd_data_commit(s);
	} else if (r < 0) {
		if (reply.data[0] == '5')
			smtpd_data_reject(s, buf_cstr(&reply));
		else
			smtpd_data_refuse(s, buf_cstr(&reply));
	} else {
		smtpd_session_set_state(s, SMTPD_S_COMMIT);
		session_set_pause(&s->base, SMTPD_PAUSE_COMMIT, true);
	}
	buf_free(&reply);
}

/* smtpd_data_signed - the signer's answer (loop) */
void
smtpd_data_signed(struct smtpd_session *s, int result, const char *text)
{
	struct smtpd_tx *tx = &s->tx;

	s->base.depth++;
	session_set_pause(&s->base, SMTPD_PAUSE_COMMIT, false);
	smtpd_session_set_state(s, SMTPD_S_READY);
	if (result < 0) {
		msg_warn("%s: DKIM signing failed: %s", tx->qid, text);
		smtpd_data_refuse(s, "451 4.3.0 Error: the message could not "
		    "be signed (DKIM); try again later");
	} else {
		if (result > 0) {
			qfile_writer_insert(tx->w, text, strlen(text));
			msg_info("%s: DKIM signed", tx->qid);
		}
		smtpd_data_commit(s);
	}
	session_leave(&s->base);
}

/* smtpd_data_cmd - DATA was accepted: open the file and say 354 */
void
smtpd_data_cmd(struct smtpd_session *s)
{
	struct smtpd_tx *tx = &s->tx;

	if (smtpd_data_open(s) < 0) {
		smtpd_session_reply(s,
		    "451 4.3.0 Error: queue file write error");
		smtpd_session_reset_tx(s);
		smtpd_session_set_state(s, SMTPD_S_READY);
		return;
	}
	tx->content = 0;
	tx->too_big = false;
	smtpd_data_init(&tx->dp);
	smtpd_session_reply(s, "354 End data with <CR><LF>.<CR><LF>");
	smtpd_session_set_state(s, SMTPD_S_DATA);
}

/* smtpd_data_end - the DATA terminator arrived */
static void
smtpd_data_end(struct smtpd_session *s)
{
	struct smtpd_tx *tx = &s->tx;

	if (tx->dp.bare)
		smtpd_data_reject(s, "550 5.5.2 Message rejected: bare <CR> or "
		    "<LF> in message data (RFC 5321 2.3.8)");
	else if (tx->too_big)
		smtpd_data_reject(s, "552 5.3.4 Message size exceeds fixed "
		    "limit");
	else if (smtpd_data_submitted(s) == 0)
		smtpd_data_finish(s);
}

/*
 * smtpd_data_bdat_cmd - a well-formed BDAT command: read its chunk. With
 * no valid transaction the chunk is still read (we cannot know where the
 * next command starts otherwise) and dropped, and 503 follows.
 */
void
smtpd_data_bdat_cmd(struct smtpd_session *s, long long size, bool last)
{
	struct smtpd_tx *tx = &s->tx;

	tx->chunk_left = size;
	tx->chunk_size = size;
	tx->chunk_last = last;
	tx->chunk_return = s->state;
	if (!(s->state & (SMTPD_S_RCPT | SMTPD_S_CHUNKS))) {
		tx->chunk_discard = true;
	} else {
		tx->chunk_discard = false;
		if (!tx->bdat) {
			tx->bdat = true;
			tx->content = 0;
			tx->too_big = false;
			smtpd_data_bdat_init(&tx->bs);
			if (smtpd_data_open(s) < 0)
				tx->failed = true;
		}
	}
	smtpd_session_set_state(s, SMTPD_S_BDAT);
	if (size == 0)
		smtpd_data_input(s);
}

/* smtpd_data_chunk_end - all bytes of one BDAT chunk were read */
static void
smtpd_data_chunk_end(struct smtpd_session *s)
{
	struct smtpd_tx *tx = &s->tx;

	if (tx->chunk_discard) {
		unsigned was = tx->chunk_return;

		tx->chunk_discard = false;
		smtpd_session_set_state(s, was);
		if (was & SMTPD_S_INIT)
			smtpd_session_error(s,
			    "503 5.5.1 Error: send HELO/EHLO first");
		else if (was & SMTPD_S_READY)
			smtpd_session_error(s,
			    "503 5.5.1 Error: need MAIL command");
		else
			smtpd_session_error(s,
			    "503 5.5.1 Error: need RCPT command");
		return;
	}
	if (tx->chunk_last)
		smtpd_data_bdat_end(&tx->bs);
	if (tx->failed) {
		smtpd_session_reply(s,
		    "451 4.3.0 Error: queue file write error");
		smtpd_session_reset_tx(s);
		smtpd_session_set_state(s, SMTPD_S_READY);
	} else if (tx->bs.bare) {
		smtpd_data_reject(s, "550 5.5.2 Message rejected: bare <CR> or "
		    "<LF> in message data (RFC 5321 2.3.8)");
	} else if (tx->too_big) {
		smtpd_data_reject(s, "552 5.3.4 Message size exceeds fixed "
		    "limit");
	} else if (!tx->chunk_last) {
		smtpd_session_reply(s, "250 2.0.0 %lld octets received",
		    tx->chunk_size);
		smtpd_session_set_state(s, SMTPD_S_CHUNKS);
	} else {
		/* Queue files hold CRLF lines: end the last one. */
		if (tx->bs.any && tx->bs.last != '\n')
			smtpd_data_scan(s, "\r\n", 2);
		if (smtpd_data_submitted(s) == 0)
			smtpd_data_finish(s);
	}
}

/*
 * smtpd_data_input - feed buffered input to the DATA parser or the BDAT
 * chunk; moves the session on when the content or chunk is complete.
 */
void
smtpd_data_input(struct smtpd_session *s)
{
	struct smtpd_tx *tx = &s->tx;
	const char *p;
	size_t n, used;

	stream_peek(s->base.stream, &p, &n);
	if (s->state == SMTPD_S_DATA) {
		if (n == 0)
			return;
		used = smtpd_data_feed(&tx->dp, p, n, smtpd_data_out, s);
		stream_consume(s->base.stream, used);
		if (tx->dp.done)
			smtpd_data_end(s);
		return;
	}
	if (s->state != SMTPD_S_BDAT)
		msg_panic("smtpd_data_input: state %#x", s->state);
	used = (long long)n > tx->chunk_left ? (size_t)tx->chunk_left : n;
	if (used > 0) {
		if (!tx->chunk_discard) {
			smtpd_data_bdat_feed(&tx->bs, p, used);
			smtpd_data_out(s, p, used);
		}
		stream_consume(s->base.stream, used);
		tx->chunk_left -= (long long)used;
	}
	if (tx->chunk_left == 0)
		smtpd_data_chunk_end(s);
}

/* smtpd_data_abort - drop a queue file being written (it disappears) */
void
smtpd_data_abort(struct smtpd_session *s)
{
	smtpd_data_rate_stop(s);
	smtpd_sign_abort(s);
	if (s->tx.w != NULL)
		qfile_writer_free(&s->tx.w);
}
