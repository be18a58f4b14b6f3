/*
 * qmgr_bounce - delivery status notifications (RFC 3464) for bounced
 * recipients.
 *
 * A notification is an ordinary queue file: null sender, attribute
 * bounce=1 (so it never bounces again), one recipient, the original
 * sender. Its body is a multipart/report (RFC 6522) with three parts: a
 * human-readable explanation, the message/delivery-status report, and the
 * original message's header section as text/rfc822-headers. It is
 * written unnamed in incoming/, synced, linked under a fresh queue id and
 * incoming/ is synced before qmgr writes any B status (DESIGN.md §4): a
 * crash in between can only send a second notification.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/addr.h"
#include "mail/params.h"
#include "mail/qfile.h"
#include "mail/qid.h"
#include "mail/spool.h"
#include "qmgr.h"

#define QMGR_BOUNCE_HEADER_MAX (256 * 1024)	/* headers returned */

/* qmgr_bounce_wanted - does the sender get a DSN for this message? */
bool
qmgr_bounce_wanted(const struct qfile *qf)
{
	const char *b = qfile_attr(qf, QFILE_A_BOUNCE);

	return qf->sender[0] != '\0' && (b == NULL || strcmp(b, "1") != 0);
}

/* qmgr_bounce_notify - does a NOTIFY list ask for failure reports? */
bool
qmgr_bounce_notify(const char *notify)
{
	const char *p = notify;

	/* no NOTIFY parameter: the default is FAILURE (RFC 3461 4.1) */
	if (notify == NULL || *notify == '\0')
		return true;
	while (*p) {
		size_t n = strcspn(p, ",");

		if (n == 7 && str_ncasecmp(p, "FAILURE", 7) == 0)
			return true;
		p += n;
		if (*p == ',')
			p++;
	}
	return false;
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

/* qmgr_bounce_text - the multipart/report body */
static int
qmgr_bounce_text(struct buf *body, const struct qfile *qf,
    const char *orig_qid, const char *new_qid,
    const struct qmgr_bounce_rcpt *rcpt, size_t n, time_t now,
    struct buf *why)
{
	struct buf boundary = BUF_INIT, hdrs = BUF_INIT;
	const char *envid = qfile_attr(qf, QFILE_A_ENVID);
	const char *host = var_myhostname;

	if (qmgr_bounce_headers(qf, &hdrs, why) < 0) {
		buf_free(&hdrs);
		return -1;
	}
	buf_printf(&boundary, "%s.%lld/%s", new_qid, (long long)now, host);

	/* the header section */
	buf_printf(body, "From: MAILER-DAEMON@%s (Mail Delivery System)\r\n",
	    host);
	buf_puts(body, "To: <");
	addr_externalize(body, qf->sender);
	buf_puts(body, ">\r\n");
	buf_puts(body, "Subject: Undelivered Mail Returned to Sender\r\n");
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
	buf_puts(body, "Your message could not be delivered to one or more "
	    "recipients.\r\nThe reasons are given below; the header of your "
	    "message is attached.\r\n\r\n");
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
		buf_puts(body, "Action: failed\r\n");
		buf_printf(body, "Status: %s\r\n", rcpt[i].dsn);
		buf_printf(body, "Diagnostic-Code: X-Herald; %s\r\n",
		    rcpt[i].reason);
	}
	buf_puts(body, "\r\n");

	/* part 3: the original header section */
	buf_printf(body, "--%s\r\n", buf_cstr(&boundary));
	buf_puts(body, "Content-Description: Undelivered Message Headers\r\n");
	buf_puts(body, "Content-Type: text/rfc822-headers\r\n\r\n");
	buf_append(body, hdrs.data, hdrs.len);
	buf_printf(body, "\r\n--%s--\r\n", buf_cstr(&boundary));
	buf_free(&boundary);
	buf_free(&hdrs);
	return 0;
}

/* qmgr_bounce_create - write a DSN for qf as incoming/<new qid> */
int
qmgr_bounce_create(const char *spool, const struct qfile *qf,
    const char *orig_qid, const struct qmgr_bounce_rcpt *rcpt, size_t n,
    time_t now, char qid_r[QID_SIZE], struct buf *why)
{
	struct qfile_writer *w = NULL;
	struct buf body = BUF_INIT;
	char qid[QID_SIZE];
	int ret = -1;

	if (n == 0)
		msg_panic("qmgr_bounce_create: %s: no recipients", orig_qid);
	qid_new(qid);
	if (qmgr_bounce_text(&body, qf, orig_qid, qid, rcpt, n, now,
	    why) < 0)
		goto out;
	if (qfile_writer_new(spool, &w, why) < 0) {
		w = NULL;
		goto out;
	}
	qfile_writer_start(w, now, "");
	qfile_writer_attr(w, QFILE_A_BOUNCE, "1");
	if (addr_is_utf8(qf->sender))
		qfile_writer_attr(w, QFILE_A_SMTPUTF8, "1");
	qfile_writer_rcpt(w, qf->sender, "", "");
	qfile_writer_begin_body(w);
	qfile_writer_body(w, body.data, body.len);
	if (qfile_writer_finish(w, why) < 0 || qfile_writer_sync(w, why) < 0 ||
	    qfile_writer_link(w, qid, why) < 0 ||
	    spool_sync_dir(spool, SPOOL_INCOMING, why) < 0)
		goto out;
	memcpy(qid_r, qid, QID_SIZE);
	ret = 0;
out:
	if (w != NULL)
		qfile_writer_free(&w);
	buf_free(&body);
	return ret;
}
