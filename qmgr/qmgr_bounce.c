/*
 * qmgr_bounce - delivery status notifications (RFC 3464, RFC 3461).
 *
 * Kinds (enum qmgr_dsn_kind): failed (bounced recipients), delayed (a
 * delay warning once a recipient has been deferred delay_warning_time),
 * success (recipients delivered with NOTIFY=SUCCESS) and the postmaster
 * notice about a notification that itself could not be delivered.
 *
 * A notification is an ordinary queue file: null sender, attribute
 * bounce=1 (a failure of it goes once to the postmaster) or bounce=2 (the
 * postmaster notice: its failure is only logged), one recipient, the
 * original sender (or the postmaster). Its body is a multipart/report
 * (RFC 6522) with three parts: a human-readable explanation, the
 * message/delivery-status report, and the original message: whole as
 * message/rfc822 when the sender asked for RET=FULL and it is at most
 * bounce_size_limit bytes, otherwise its header section as
 * text/rfc822-headers. It is written unnamed in incoming/, synced, linked
 * under a fresh queue id and incoming/ is synced before qmgr writes any B
 * status (DESIGN.md §4): a crash in between can only send a second
 * notification. Its From: is MAILER-DAEMON@myhostname; it is DKIM-signed
 * by the signer service for myhostname, or else for myhostname's parent
 * domain, when that has a key, and sent unsigned, logged, when the
 * signer fails (qmgr_bounce_start). The signer is asked from the event
 * loop (ipc_async), so a stuck signer never stalls dispatch: the
 * original message waits, open, until its notification is in the queue.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/evloop.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/addr.h"
#include "mail/dkim.h"
#include "mail/ipc.h"
#include "mail/ipc_async.h"
#include "mail/params.h"
#include "mail/qfile.h"
#include "mail/qid.h"
#include "mail/sign_client.h"
#include "mail/spool.h"
#include "qmgr.h"

#define QMGR_BOUNCE_HEADER_MAX (256 * 1024)	/* headers returned */
#define QMGR_SIGN_TIMEOUT 2000	/* ms a notification waits for the signer */

/* qmgr_bounce_wanted - does the sender get a DSN for this message? */
bool
qmgr_bounce_wanted(const struct qfile *qf)
{
	return qf->sender[0] != '\0' && qfile_attr(qf, QFILE_A_BOUNCE) ==
	    NULL;
}

/* qmgr_bounce_double - is this one of our notifications (bounce=1), whose
 * failure the postmaster hears of once? */
bool
qmgr_bounce_double(const struct qfile *qf)
{
	const char *b = qfile_attr(qf, QFILE_A_BOUNCE);

	return qf->sender[0] == '\0' && b != NULL && strcmp(b, "1") == 0;
}

/* qmgr_bounce_notify_has - does a NOTIFY list hold word (absent: dflt)? */
static bool
qmgr_bounce_notify_has(const char *notify, const char *word, bool dflt)
{
	const char *p = notify;
	size_t len = strlen(word);

	if (notify == NULL || *notify == '\0')
		return dflt;
	while (*p) {
		size_t n = strcspn(p, ",");

		if (n == len && str_ncasecmp(p, word, len) == 0)
			return true;
		p += n;
		if (*p == ',')
			p++;
	}
	return false;
}

/* qmgr_bounce_notify - does a NOTIFY list ask for failure reports? */
bool
qmgr_bounce_notify(const char *notify)
{
	/* no NOTIFY parameter: the default is FAILURE (RFC 3461 4.1) */
	return qmgr_bounce_notify_has(notify, "FAILURE", true);
}

/* qmgr_bounce_notify_delay - does a NOTIFY list ask for delay warnings?
 * Without NOTIFY the MTA may send them (RFC 3461 4.1), as Postfix does */
bool
qmgr_bounce_notify_delay(const char *notify)
{
	return qmgr_bounce_notify_has(notify, "DELAY", true);
}

/* qmgr_bounce_notify_success - does a NOTIFY list ask for success? */
bool
qmgr_bounce_notify_success(const char *notify)
{
	return qmgr_bounce_notify_has(notify, "SUCCESS", false);
}

/* qmgr_bounce_postmaster - who hears of undeliverable notifications:
 * postmaster_address, else postmaster@ of mydomain or myhostname */
void
qmgr_bounce_postmaster(struct buf *out)
{
	if (var_postmaster_address != NULL && *var_postmaster_address)
		buf_puts(out, var_postmaster_address);
	else
		buf_printf(out, "postmaster@%s", var_mydomain != NULL &&
		    *var_mydomain ? var_mydomain : var_myhostname);
}

/* qmgr_bounce_date - RFC 5322 date-time of t in local time */
void
qmgr_bounce_date(struct buf *out, time_t t)
{
	static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu",
	    "Fri", "Sat"};
	static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May",
	    "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	struct tm tm;
	long off;

	if (localtime_r(&t, &tm) == NULL) {
		buf_puts(out, "Thu, 01 Jan 1970 00:00:00 +0000");
		return;
	}
	/* names by hand: strftime would follow the locale */
	off = tm.tm_gmtoff / 60;
	buf_printf(out, "%s, %02d %s %04d %02d:%02d:%02d %c%02ld%02ld",
	    days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
	    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
	    off < 0 ? '-' : '+', (off < 0 ? -off : off) / 60,
	    (off < 0 ? -off : off) % 60);
}

/* qmgr_bounce_headers - the original header section with CRLF line
 * ends, at most QMGR_BOUNCE_HEADER_MAX bytes (whole lines) */
static int
qmgr_bounce_headers(const struct qfile *qf, struct buf *out,
    struct buf *why)
{
	struct buf raw = BUF_INIT;
	off_t left = qf->body_size, off = qf->body_off;
	char chunk[8192];
	size_t line = 0, i;

	/* read until the empty line that ends the header section */
	while (left > 0 && raw.len < QMGR_BOUNCE_HEADER_MAX) {
		size_t want = sizeof(chunk);
		ssize_t n;

		if ((off_t)want > left)
			want = (size_t)left;
		n = pread(qf->fd, chunk, want, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			buf_printf(why, "read original message: %s",
			    n < 0 ? strerror(errno) : "unexpected end of file");
			buf_free(&raw);
			return -1;
		}
		buf_append(&raw, chunk, (size_t)n);
		off += n;
		left -= n;
		if (strstr(raw.data, "\n\r\n") != NULL ||
		    strstr(raw.data, "\n\n") != NULL ||
		    raw.data[0] == '\n' || (raw.data[0] == '\r' &&
		    raw.data[1] == '\n'))
			break;
	}
	/* copy whole header lines, normalised to CRLF */
	for (i = 0; i < raw.len && i < QMGR_BOUNCE_HEADER_MAX; i = line) {
		const char *nl = memchr(raw.data + i, '\n', raw.len - i);
		size_t end;

		if (nl == NULL)
			break;	/* partial last line (over the bound) */
		line = (size_t)(nl - raw.data) + 1;
		end = (size_t)(nl - raw.data);
		if (end > i && raw.data[end - 1] == '\r')
			end--;
		if (end == i)
			break;	/* the empty line: end of the header */
		if (raw.data[i] == '\0' || memchr(raw.data + i, '\0',
		    end - i) != NULL)
			continue;	/* a NUL would end the C string */
		buf_append(out, raw.data + i, end - i);
		buf_puts(out, "\r\n");
	}
	buf_free(&raw);
	return 0;
}

/* qmgr_bounce_addr_type - RFC 3464 address type (RFC 6533 for UTF-8) */
static const char *
qmgr_bounce_addr_type(const char *addr)
{
	return addr_is_utf8(addr) ? "utf-8" : "rfc822";
}

/* what each kind of notification says */
static const struct qmgr_dsn_text {
	const char *subject;
	const char *intro;	/* part 1, before the recipient list */
	const char *action;	/* default per-recipient Action */
	const char *what;	/* "Undelivered", for part 3's description */
} qmgr_dsn_texts[] = {
	[QMGR_DSN_FAILED] = {"Undelivered Mail Returned to Sender",
	    "Your message could not be delivered to one or more "
	    "recipients.\r\nThe reasons are given below.\r\n",
	    "failed", "Undelivered"},
	[QMGR_DSN_DELAYED] = {"Delayed Mail (still being retried)",
	    "This is a warning only; you do not need to send your message "
	    "again.\r\nIt could not be delivered to the recipients below "
	    "yet, for the reasons\r\ngiven; delivery will be retried.\r\n",
	    "delayed", "Delayed"},
	[QMGR_DSN_SUCCESS] = {"Successful Mail Delivery Report",
	    "Your message was delivered to the recipients below, as you "
	    "asked\r\n(\"relayed\": passed on to a system that does not "
	    "report deliveries).\r\n",
	    "delivered", "Delivered"},
	[QMGR_DSN_POSTMASTER] = {"Undeliverable Delivery Status "
	    "Notification",
	    "A delivery status notification from this system could not be "
	    "delivered;\r\nit has been dropped. Its recipient and the reason "
	    "are given below.\r\n",
	    "failed", "Undeliverable Notification"},
};

/* qmgr_bounce_full - the whole original message, CRLF-terminated, into
 * out when RET=FULL asks for it and it fits: 1 taken, 0 not (*big set
 * when it was too large), -1 read error with why */
static int
qmgr_bounce_full(const struct qfile *qf, enum qmgr_dsn_kind kind,
    struct buf *out, bool *big, struct buf *why)
{
	const char *ret = qfile_attr(qf, QFILE_A_RET);
	const char *body = qfile_attr(qf, QFILE_A_BODY);
	off_t left = qf->body_size, off = qf->body_off;

	*big = false;
	if (kind == QMGR_DSN_POSTMASTER || ret == NULL ||
	    str_casecmp(ret, "FULL") != 0)
		return 0;
	/* binary content cannot go into a message/rfc822 part */
	if (body != NULL && str_casecmp(body, "BINARYMIME") == 0)
		return 0;
	if (qf->body_size > var_bounce_size_limit) {
		*big = true;
		return 0;
	}
	buf_reserve(out, (size_t)qf->body_size + 2);
	while (left > 0) {
		ssize_t n = pread(qf->fd, out->data + out->len, (size_t)left,
		    off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			buf_printf(why, "read original message: %s",
			    n < 0 ? strerror(errno) : "unexpected end of file");
			return -1;
		}
		out->len += (size_t)n;
		off += n;
		left -= n;
	}
	out->data[out->len] = '\0';
	if (out->len > 0 && out->data[out->len - 1] != '\n')
		buf_puts(out, "\r\n");
	return 1;
}

/* qmgr_bounce_text - the multipart/report body */
static int
qmgr_bounce_text(struct buf *body, const struct qfile *qf,
    const char *orig_qid, const char *new_qid, enum qmgr_dsn_kind kind,
    const char *to, const struct qmgr_bounce_rcpt *rcpt, size_t n,
    time_t now, bool *eight_r, struct buf *why)
{
	const struct qmgr_dsn_text *txt = &qmgr_dsn_texts[kind];
	struct buf boundary = BUF_INIT, orig = BUF_INIT, until = BUF_INIT;
	const char *envid = qfile_attr(qf, QFILE_A_ENVID);
	const char *bodytype = qfile_attr(qf, QFILE_A_BODY);
	const char *host = var_myhostname;
	bool big = false;
	int full;

	*eight_r = false;
	full = qmgr_bounce_full(qf, kind, &orig, &big, why);
	if (full < 0 || (full == 0 && qmgr_bounce_headers(qf, &orig,
	    why) < 0)) {
		buf_free(&orig);
		return -1;
	}
	if (full && bodytype != NULL && str_casecmp(bodytype, "8BITMIME") == 0)
		*eight_r = true;
	qmgr_bounce_date(&until, qf->arrival +
	    (time_t)var_maximal_queue_lifetime);
	buf_printf(&boundary, "%s.%lld/%s", new_qid, (long long)now, host);

	/* the header section */
	buf_printf(body, "From: MAILER-DAEMON@%s (Mail Delivery System)\r\n",
	    host);
	buf_puts(body, "To: <");
	addr_externalize(body, to);
	buf_puts(body, ">\r\n");
	buf_printf(body, "Subject: %s\r\n", txt->subject);
	buf_puts(body, "Date: ");
	qmgr_bounce_date(body, now);
	buf_puts(body, "\r\n");
	buf_printf(body, "Message-ID: <%s@%s>\r\n", new_qid, host);
	buf_puts(body, "Auto-Submitted: auto-replied\r\n");
	buf_puts(body, "MIME-Version: 1.0\r\n");
	buf_printf(body, "Content-Type: multipart/report; "
	    "report-type=delivery-status;\r\n\tboundary=\"%s\"\r\n",
	    buf_cstr(&boundary));
	buf_puts(body, "\r\n");
	buf_puts(body, "This is a MIME-encapsulated message.\r\n\r\n");

	/* part 1: for people */
	buf_printf(body, "--%s\r\n", buf_cstr(&boundary));
	buf_puts(body, "Content-Description: Notification\r\n");
	buf_puts(body, "Content-Type: text/plain; charset=utf-8\r\n\r\n");
	buf_printf(body, "This is the mail system at host %s.\r\n\r\n", host);
	buf_puts(body, txt->intro);
	if (kind == QMGR_DSN_DELAYED)
		buf_printf(body, "It will be retried until %s.\r\n",
		    buf_cstr(&until));
	if (full)
		buf_puts(body, "Your message is attached.\r\n");
	else if (big)
		buf_printf(body, "Your message was larger than %lld bytes "
		    "(bounce_size_limit);\r\nonly its header is attached.\r\n",
		    var_bounce_size_limit);
	else
		buf_puts(body, "The header of the message is attached.\r\n");
	buf_puts(body, "\r\n");
	for (size_t i = 0; i < n; i++)
		buf_printf(body, "<%s>: %s\r\n", rcpt[i].addr,
		    rcpt[i].reason);
	buf_puts(body, "\r\n");

	/* part 2: for programs */
	buf_printf(body, "--%s\r\n", buf_cstr(&boundary));
	buf_puts(body, "Content-Description: Delivery report\r\n");
	buf_puts(body, "Content-Type: message/delivery-status\r\n\r\n");
	buf_printf(body, "Reporting-MTA: dns; %s\r\n", host);
	buf_printf(body, "X-Herald-Queue-ID: %s\r\n", orig_qid);
	if (envid != NULL && *envid != '\0')
		buf_printf(body, "Original-Envelope-Id: %s\r\n", envid);
	buf_puts(body, "Arrival-Date: ");
	qmgr_bounce_date(body, qf->arrival);
	buf_puts(body, "\r\n");
	for (size_t i = 0; i < n; i++) {
		buf_puts(body, "\r\n");
		buf_printf(body, "Final-Recipient: %s; %s\r\n",
		    qmgr_bounce_addr_type(rcpt[i].addr), rcpt[i].addr);
		if (rcpt[i].orcpt != NULL && *rcpt[i].orcpt != '\0')
			buf_printf(body, "Original-Recipient: %s\r\n",
			    rcpt[i].orcpt);
		buf_printf(body, "Action: %s\r\n", rcpt[i].action != NULL ?
		    rcpt[i].action : txt->action);
		buf_printf(body, "Status: %s\r\n", rcpt[i].dsn);
		if (rcpt[i].reason != NULL && *rcpt[i].reason != '\0')
			buf_printf(body, "Diagnostic-Code: X-Herald; %s\r\n",
			    rcpt[i].reason);
		if (kind == QMGR_DSN_DELAYED)
			buf_printf(body, "Will-Retry-Until: %s\r\n",
			    buf_cstr(&until));
	}
	buf_puts(body, "\r\n");

	/* part 3: the original message, or its header section */
	buf_printf(body, "--%s\r\n", buf_cstr(&boundary));
	if (full) {
		buf_printf(body, "Content-Description: %s Message\r\n",
		    txt->what);
		buf_puts(body, "Content-Type: message/rfc822\r\n");
		if (*eight_r)
			buf_puts(body, "Content-Transfer-Encoding: 8bit\r\n");
		buf_puts(body, "\r\n");
		buf_append(body, orig.data, orig.len);
		buf_printf(body, "\r\n--%s--\r\n", buf_cstr(&boundary));
	} else {
		buf_printf(body, "Content-Description: %s Message "
		    "Headers\r\n", txt->what);
		buf_puts(body, "Content-Type: text/rfc822-headers\r\n\r\n");
		buf_append(body, orig.data, orig.len);
		buf_printf(body, "\r\n--%s--\r\n", buf_cstr(&boundary));
	}
	buf_free(&boundary);
	buf_free(&orig);
	buf_free(&until);
	return 0;
}

/* a notification between its text and its queue file: the text waits
 * for the signer here */
struct qmgr_notice {
	struct evloop *loop;	/* NULL: ask the signer blocking */
	const char *spool;
	char qid[QID_SIZE];	/* the notification's own */
	struct buf body;	/* header and body, CRLF */
	struct buf to;		/* its one recipient */
	bool kind_pm;		/* the postmaster notice: bounce=2 */
	bool utf8;		/* SMTPUTF8 */
	bool eight;		/* 8BITMIME */
	time_t now;
	size_t hlen;		/* header block, its empty line included */
	unsigned char bh[32];	/* relaxed body hash */
	struct buf dom;		/* myhostname, lowercase */
	const char *cand[2];	/* signing domains to ask, in order */
	int ci;			/* the one asked now */
	long long until;	/* one deadline for every question (ms) */
	struct ipc_async *call;	/* the question out */
	qmgr_bounce_fn *done;
	void *ctx;
};

/* qmgr_bounce_notice_free - forget a notice */
static void
qmgr_bounce_notice_free(struct qmgr_notice **ntp)
{
	struct qmgr_notice *nt = *ntp;

	ipc_async_cancel(&nt->call);
	buf_free(&nt->body);
	buf_free(&nt->to);
	buf_free(&nt->dom);
	x_free(ntp);
}

/* qmgr_bounce_prepare - the notification's text and its signing
 * questions; -1 with why */
static int
qmgr_bounce_prepare(struct qmgr_notice *nt, const struct qfile *qf,
    const char *to_addr, const char *orig_qid, enum qmgr_dsn_kind kind,
    const struct qmgr_bounce_rcpt *rcpt, size_t n, struct buf *why)
{
	const char *eoh = NULL, *dot;
	struct dkim_hasher h;

	if (n == 0)
		msg_panic("qmgr_bounce_create: %s: no recipients", orig_qid);
	if (kind == QMGR_DSN_POSTMASTER)
		qmgr_bounce_postmaster(&nt->to);
	else
		buf_set(&nt->to, to_addr != NULL ? to_addr : qf->sender);
	nt->kind_pm = kind == QMGR_DSN_POSTMASTER;
	qid_new(nt->qid);
	if (qmgr_bounce_text(&nt->body, qf, orig_qid, nt->qid, kind,
	    buf_cstr(&nt->to), rcpt, n, nt->now, &nt->eight, why) < 0)
		return -1;
	nt->utf8 = addr_is_utf8(buf_cstr(&nt->to)) || (nt->eight &&
	    qfile_attr(qf, QFILE_A_SMTPUTF8) != NULL);
	for (size_t i = 0; i + 4 <= nt->body.len; i++)
		if (memcmp(nt->body.data + i, "\r\n\r\n", 4) == 0) {
			eoh = nt->body.data + i + 4;
			break;
		}
	if (eoh == NULL)
		msg_panic("qmgr_bounce_prepare: %s: no end of header",
		    nt->qid);
	nt->hlen = (size_t)(eoh - nt->body.data);
	/* no body hash: nobody is asked, the notification goes unsigned */
	if (dkim_hasher_init(&h) < 0)
		goto unsigned_;
	dkim_hasher_update(&h, eoh, nt->body.len - nt->hlen);
	if (dkim_hasher_final(&h, nt->bh) < 0)
		goto unsigned_;
	buf_set(&nt->dom, var_myhostname);
	str_lower(nt->dom.data);
	nt->cand[0] = buf_cstr(&nt->dom);
	dot = strchr(nt->cand[0], '.');
	nt->cand[1] = dot != NULL && strchr(dot + 1, '.') != NULL ? dot + 1 :
	    NULL;
	nt->until = evloop_clock() + (var_signer_timeout * 1000 <
	    QMGR_SIGN_TIMEOUT ? var_signer_timeout * 1000 : QMGR_SIGN_TIMEOUT);
	return 0;
unsigned_:
	msg_warn("%s: DKIM: body hash failed: the notification goes "
	    "unsigned", nt->qid);
	nt->cand[0] = nt->cand[1] = NULL;
	return 0;
}

/* qmgr_bounce_signed - what the signer said about cand[ci]: 1 signed
 * (the fields go above the header), 0 no key (ask the next), -1 give up
 * (unsigned, logged) */
static int
qmgr_bounce_signed(struct qmgr_notice *nt, int r, const char *fields,
    const char *why)
{
	struct buf sig = BUF_INIT;

	if (r < 0) {
		msg_warn("%s: DKIM: %s: the notification goes unsigned",
		    nt->qid, why);
		return -1;
	}
	if (r == 0)
		return 0;
	buf_puts(&sig, fields);
	buf_append(&sig, nt->body.data, nt->body.len);
	buf_free(&nt->body);
	nt->body = sig;
	msg_info("%s: DKIM signed (d=%s)", nt->qid, nt->cand[nt->ci]);
	return 1;
}

/* qmgr_bounce_left - ms left for the signer; 0 (logged) when none */
static long long
qmgr_bounce_left(struct qmgr_notice *nt)
{
	long long left = nt->until - evloop_clock();

	if (left <= 0) {
		msg_warn("%s: DKIM: the signer did not answer in time: "
		    "the notification goes unsigned", nt->qid);
		return 0;
	}
	return left;
}

/* qmgr_bounce_sign_sync - ask the signer and wait (no loop: tests, and
 * qmgr_bounce_create) */
static void
qmgr_bounce_sign_sync(struct qmgr_notice *nt)
{
	struct buf sig = BUF_INIT, why = BUF_INIT;

	for (nt->ci = 0; nt->ci < 2 && nt->cand[nt->ci] != NULL; nt->ci++) {
		long long left = qmgr_bounce_left(nt);
		int r;

		if (left == 0)
			break;
		buf_reset(&sig);
		buf_reset(&why);
		r = sign_client_call(nt->spool, nt->cand[nt->ci], nt->body.data,
		    nt->hlen, nt->bh, (int)left, &sig, &why);
		if (qmgr_bounce_signed(nt, r, buf_cstr(&sig),
		    buf_cstr(&why)) != 0)
			break;
	}
	buf_free(&sig);
	buf_free(&why);
}

/* qmgr_bounce_write - the notification as incoming/<qid>, synced and
 * linked, with incoming/ synced; -1 with why */
static int
qmgr_bounce_write(struct qmgr_notice *nt, struct buf *why)
{
	struct qfile_writer *w = NULL;
	int ret = -1;

	if (qfile_writer_new(nt->spool, &w, why) < 0)
		return -1;
	qfile_writer_start(w, nt->now, "");
	qfile_writer_attr(w, QFILE_A_BOUNCE, nt->kind_pm ? "2" : "1");
	if (nt->utf8)
		qfile_writer_attr(w, QFILE_A_SMTPUTF8, "1");
	if (nt->eight)
		qfile_writer_attr(w, QFILE_A_BODY, "8BITMIME");
	qfile_writer_rcpt(w, buf_cstr(&nt->to), "", "");
	qfile_writer_begin_body(w);
	qfile_writer_body(w, nt->body.data, nt->body.len);
	if (qfile_writer_finish(w, why) == 0 && qfile_writer_sync(w, why) ==
	    0 && qfile_writer_link(w, nt->qid, why) == 0 &&
	    spool_sync_dir(nt->spool, SPOOL_INCOMING, why) == 0)
		ret = 0;
	qfile_writer_free(&w);
	return ret;
}

/* qmgr_bounce_end - write the notification (signed or not), tell the
 * owner, forget it */
static void
qmgr_bounce_end(struct qmgr_notice *nt)
{
	struct buf why = BUF_INIT;
	qmgr_bounce_fn *done = nt->done;
	void *ctx = nt->ctx;
	char qid[QID_SIZE];
	int r;

	r = qmgr_bounce_write(nt, &why);
	memcpy(qid, nt->qid, QID_SIZE);
	qmgr_bounce_notice_free(&nt);
	done(ctx, r, r == 0 ? qid : NULL, buf_cstr(&why));
	buf_free(&why);
}

static void qmgr_bounce_ask(struct qmgr_notice *nt);

/* qmgr_bounce_answer - the signer answered (or the call failed) */
static void
qmgr_bounce_answer(void *ctx, int r, const struct ipc_msg *m,
    const char *text)
{
	struct qmgr_notice *nt = ctx;
	struct buf why = BUF_INIT;
	const char *fields = NULL;

	nt->call = NULL;	/* ipc_async freed it */
	if (r == 1)
		r = sign_client_reply(m, &fields, &why);
	else
		buf_printf(&why, "signer: %s", text);
	r = qmgr_bounce_signed(nt, r, fields, buf_cstr(&why));
	buf_free(&why);
	if (r == 0 && ++nt->ci < 2 && nt->cand[nt->ci] != NULL) {
		qmgr_bounce_ask(nt);
		return;
	}
	qmgr_bounce_end(nt);
}

/* qmgr_bounce_ask - put the question about cand[ci] to the signer from
 * the loop; the answer comes to qmgr_bounce_answer */
static void
qmgr_bounce_ask(struct qmgr_notice *nt)
{
	struct buf path = BUF_INIT, why = BUF_INIT;
	struct ipc_msg m;
	long long left = qmgr_bounce_left(nt);

	if (left == 0) {
		qmgr_bounce_end(nt);
		return;
	}
	spool_socket_path(&path, nt->spool, "signer");
	ipc_msg_init(&m);
	sign_client_request(&m, nt->cand[nt->ci], nt->body.data, nt->hlen,
	    nt->bh);
	nt->call = ipc_async_start(nt->loop, buf_cstr(&path), &m, (int)left,
	    "the signer", qmgr_bounce_answer, nt, &why);
	ipc_msg_free(&m);
	buf_free(&path);
	if (nt->call == NULL) {
		msg_warn("%s: DKIM: signer: %s: the notification goes "
		    "unsigned", nt->qid, buf_cstr(&why));
		buf_free(&why);
		qmgr_bounce_end(nt);
		return;
	}
	buf_free(&why);
}

/*
 * qmgr_bounce_start - write a notification as qmgr_bounce_create does,
 * without waiting on the loop. Its DKIM-Signature fields come from the
 * signer for myhostname, or else for myhostname's parent domain
 * (mx.example.org -> example.org: aligned for DMARC's relaxed mode), when
 * one has a key, asked as smtpd asks it with one deadline for both
 * questions of at most QMGR_SIGN_TIMEOUT. With a loop the questions go
 * out through ipc_async and the loop serves other work meanwhile: a
 * stuck signer or a storm of bounces holds up only the notifications
 * (and their original messages, which stay open and unfinished until
 * their notification is in the queue), never dispatch. A signer that
 * fails, cannot be reached or does not answer in time leaves the
 * notification unsigned, logged (Postfix with a DKIM milter and
 * milter_default_action = accept): a notification delayed or lost for
 * want of a signature helps nobody. done is called exactly once, maybe
 * before this returns.
 */
void
qmgr_bounce_start(struct evloop *loop, const char *spool,
    const struct qfile *qf, const char *to, const char *orig_qid,
    enum qmgr_dsn_kind kind, const struct qmgr_bounce_rcpt *rcpt, size_t n,
    time_t now, qmgr_bounce_fn *done, void *ctx)
{
	struct qmgr_notice *nt = xcalloc(1, sizeof(*nt));
	struct buf why = BUF_INIT;

	nt->loop = loop;
	nt->spool = spool;
	nt->now = now;
	nt->done = done;
	nt->ctx = ctx;
	buf_init(&nt->body);
	buf_init(&nt->to);
	buf_init(&nt->dom);
	if (qmgr_bounce_prepare(nt, qf, to, orig_qid, kind, rcpt, n,
	    &why) < 0) {
		qmgr_bounce_notice_free(&nt);
		done(ctx, -1, NULL, buf_cstr(&why));
		buf_free(&why);
		return;
	}
	buf_free(&why);
	if (nt->cand[0] == NULL) {
		qmgr_bounce_end(nt);
	} else if (loop == NULL) {
		qmgr_bounce_sign_sync(nt);
		qmgr_bounce_end(nt);
	} else {
		nt->ci = 0;
		qmgr_bounce_ask(nt);
	}
}

/* the outcome of a blocking qmgr_bounce_create */
struct qmgr_bounce_sync {
	int r;
	char *qid;
	struct buf *why;
};

/* qmgr_bounce_sync_done - keep qmgr_bounce_start's outcome */
static void
qmgr_bounce_sync_done(void *ctx, int r, const char *qid, const char *why)
{
	struct qmgr_bounce_sync *s = ctx;

	s->r = r;
	if (r == 0)
		memcpy(s->qid, qid, QID_SIZE);
	else
		buf_puts(s->why, why);
}

/* qmgr_bounce_create - write a DSN for qf as incoming/<new qid>, asking
 * the signer blocking */
int
qmgr_bounce_create(const char *spool, const struct qfile *qf,
    const char *to_addr, const char *orig_qid, enum qmgr_dsn_kind kind,
    const struct qmgr_bounce_rcpt *rcpt, size_t n, time_t now,
    char qid_r[QID_SIZE], struct buf *why)
{
	struct qmgr_bounce_sync s = {.r = -1, .qid = qid_r, .why = why};

	qmgr_bounce_start(NULL, spool, qf, to_addr, orig_qid, kind, rcpt, n,
	    now, qmgr_bounce_sync_done, &s);
	return s.r;
}
