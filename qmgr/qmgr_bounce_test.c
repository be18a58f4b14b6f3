/*
 * qmgr_bounce_test - delivery status notifications: who gets one, and
 * the queue file qmgr_bounce_create() writes, read back with qfile_read()
 * and taken apart: envelope, header, the three MIME parts, the per
 * recipient report fields and the returned original header section;
 * and the DKIM signature a fake signer gives, or the unsigned notice
 * when it fails.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/mem.h"
#include "base/sock.h"
#include "base/test.h"
#include "mail/ipc.h"
#include "mail/params.h"
#include "mail/qfile.h"
#include "mail/qid.h"
#include "mail/spool.h"
#include "qmgr.h"

static char tmpdir[] = "/tmp/herald-qmgr-bounce-XXXXXX";
static char spool[300];

/* original_ret - write a queue file with a RET (NULL: none) and open it
 * for reading */
static int
original_ret(const char *sender, const char *msg, const char *envid,
    const char *ret, char qid[QID_SIZE])
{
	struct qfile_writer *w;
	struct buf why = BUF_INIT, path = BUF_INIT;
	int fd;

	if (qfile_writer_new(spool, &w, &why) < 0) {
		fprintf(stderr, "writer: %s\n", why.data);
		exit(1);
	}
	qfile_writer_start(w, 1700000000, sender);
	if (envid != NULL)
		qfile_writer_attr(w, QFILE_A_ENVID, envid);
	if (ret != NULL)
		qfile_writer_attr(w, QFILE_A_RET, ret);
	qfile_writer_rcpt(w, "alice@example.org", "rfc822;Alice@example.org",
	    "");
	qfile_writer_rcpt(w, "bob@example.org", "", "SUCCESS,FAILURE");
	qfile_writer_begin_body(w);
	qfile_writer_body(w, msg, strlen(msg));
	qid_new(qid);
	if (qfile_writer_finish(w, &why) < 0 ||
	    qfile_writer_link(w, qid, &why) < 0) {
		fprintf(stderr, "writer: %s\n", why.data);
		exit(1);
	}
	qfile_writer_free(&w);
	spool_path(&path, spool, SPOOL_INCOMING, qid);
	fd = open(path.data, O_RDONLY);
	buf_free(&path);
	buf_free(&why);
	return fd;
}

/* original - write a queue file and open it for reading */
static int
original(const char *sender, const char *msg, const char *envid,
    char qid[QID_SIZE])
{
	return original_ret(sender, msg, envid, NULL, qid);
}

/* read_back - the DSN file: envelope and body text */
static struct qfile *
read_back(const char *qid, struct buf *body)
{
	struct buf path = BUF_INIT, why = BUF_INIT;
	struct qfile *qf = NULL;
	int fd;

	spool_path(&path, spool, SPOOL_INCOMING, qid);
	fd = open(path.data, O_RDONLY);
	buf_free(&path);
	if (fd < 0)
		return NULL;
	if (qfile_read(fd, &qf, &why) < 0) {
		fprintf(stderr, "  qfile_read: %s\n", why.data);
		close(fd);
		buf_free(&why);
		return NULL;
	}
	buf_reset(body);
	buf_reserve(body, (size_t)qf->body_size);
	if (pread(fd, body->data, (size_t)qf->body_size, qf->body_off) !=
	    qf->body_size) {
		qfile_free(&qf);
		close(fd);
		return NULL;
	}
	body->len = (size_t)qf->body_size;
	body->data[body->len] = '\0';
	buf_free(&why);
	return qf;	/* fd leaks into qf->fd; closed by the caller */
}

/* starts - does s begin with prefix? */
static bool
starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* part - the text of MIME part n (1-based) of a multipart body */
static void
part(const char *body, const char *boundary, int n, struct buf *out)
{
	char delim[300];
	const char *p, *end;

	buf_reset(out);
	snprintf(delim, sizeof(delim), "\r\n--%s", boundary);
	p = body;
	for (int i = 0; i < n; i++) {
		p = strstr(p, delim);
		if (p == NULL)
			return;
		p += strlen(delim);
	}
	if (strncmp(p, "\r\n", 2) != 0)
		return;
	p += 2;
	end = strstr(p, delim);
	if (end == NULL)
		return;
	buf_append(out, p, (size_t)(end - p));
}

static void
test_wanted(void)
{
	struct qfile qf;
	struct qfile_attr attr = {(char *)QFILE_A_BOUNCE, (char *)"1"};

	memset(&qf, 0, sizeof(qf));
	qf.sender = (char *)"a@b";
	T_ASSERT(qmgr_bounce_wanted(&qf));
	qf.sender = (char *)"";
	T_ASSERT(!qmgr_bounce_wanted(&qf));
	qf.sender = (char *)"a@b";
	qf.attrs = &attr;
	qf.nattr = 1;
	T_ASSERT(!qmgr_bounce_wanted(&qf));

	T_ASSERT(qmgr_bounce_notify(""));
	T_ASSERT(qmgr_bounce_notify("FAILURE"));
	T_ASSERT(qmgr_bounce_notify("success,failure"));
	T_ASSERT(qmgr_bounce_notify("DELAY,FAILURE,SUCCESS"));
	T_ASSERT(!qmgr_bounce_notify("NEVER"));
	T_ASSERT(!qmgr_bounce_notify("SUCCESS,DELAY"));
	T_ASSERT(!qmgr_bounce_notify("FAILURES"));

	/* delay warnings: asked for, or NOTIFY absent (as Postfix) */
	T_ASSERT(qmgr_bounce_notify_delay(""));
	T_ASSERT(qmgr_bounce_notify_delay("SUCCESS,DELAY"));
	T_ASSERT(!qmgr_bounce_notify_delay("FAILURE"));
	T_ASSERT(!qmgr_bounce_notify_delay("NEVER"));
	/* success: only when asked for */
	T_ASSERT(!qmgr_bounce_notify_success(""));
	T_ASSERT(qmgr_bounce_notify_success("success"));
	T_ASSERT(!qmgr_bounce_notify_success("FAILURE,DELAY"));
}

static void
test_date(void)
{
	struct buf d = BUF_INIT;
	char *saved = getenv("TZ") ? xstrdup(getenv("TZ")) : NULL;

	setenv("TZ", "UTC", 1);
	tzset();
	qmgr_bounce_date(&d, 1700000000);
	T_EQ_STR(d.data, "Tue, 14 Nov 2023 22:13:20 +0000");
	setenv("TZ", "EST5", 1);
	tzset();
	buf_reset(&d);
	qmgr_bounce_date(&d, 1700000000);
	T_EQ_STR(d.data, "Tue, 14 Nov 2023 17:13:20 -0500");
	if (saved != NULL)
		setenv("TZ", saved, 1);
	else
		unsetenv("TZ");
	tzset();
	x_free(&saved);
	buf_free(&d);
}

static void
test_create(void)
{
	const char *msg = "From: Sender <sender@x.test>\r\n"
	    "To: alice@example.org\r\n"
	    "Subject: the original\r\n"
	    "Received: from somewhere\r\n"
	    "\tby here\r\n"
	    "\r\n"
	    "SECRET BODY TEXT\r\n";
	struct qmgr_bounce_rcpt br[2] = {
		{"alice@example.org", "rfc822;Alice@example.org", "5.1.1",
		    "unknown user", NULL},
		{"bob@example.org", "", "5.2.2", "mailbox full", NULL},
	};
	char oqid[QID_SIZE], nqid[QID_SIZE];
	struct buf why = BUF_INIT, body = BUF_INIT, p = BUF_INIT;
	struct buf want = BUF_INIT;
	struct qfile *oqf = NULL, *dsn;
	const char *b, *e;
	char boundary[200];
	int fd;

	fd = original("sender@x.test", msg, "ENV-123", oqid);
	T_ASSERT(fd >= 0);
	T_ASSERT(qfile_read(fd, &oqf, &why) == 0);
	T_EQ_INT(qmgr_bounce_create(spool, oqf, NULL, oqid, QMGR_DSN_FAILED, br, 2,
	    1700000100, nqid, &why), 0);
	T_ASSERT(qid_valid(nqid));
	T_ASSERT(strcmp(nqid, oqid) != 0);
	dsn = read_back(nqid, &body);
	T_ASSERT(dsn != NULL);

	/* envelope: null sender, marked, to the original sender */
	T_EQ_STR(dsn->sender, "");
	T_EQ_STR(qfile_attr(dsn, QFILE_A_BOUNCE), "1");
	T_EQ_INT(dsn->nrcpt, 1);
	T_EQ_STR(dsn->rcpt[0].addr, "sender@x.test");
	T_EQ_INT(dsn->rcpt[0].status, QFILE_QUEUED);

	/* header section */
	T_ASSERT(starts(body.data, "From: MAILER-DAEMON@mx.example.org"));
	T_ASSERT(strstr(body.data, "\r\nTo: <sender@x.test>\r\n") != NULL);
	T_ASSERT(strstr(body.data, "\r\nSubject: Undelivered Mail Returned "
	    "to Sender\r\n") != NULL);
	T_ASSERT(strstr(body.data, "\r\nDate: ") != NULL);
	buf_reset(&want);
	buf_printf(&want, "\r\nMessage-ID: <%s@", nqid);
	T_ASSERT(strstr(body.data, want.data) != NULL);
	T_ASSERT(strstr(body.data, "\r\nMIME-Version: 1.0\r\n") != NULL);
	T_ASSERT(strstr(body.data, "Content-Type: multipart/report; "
	    "report-type=delivery-status;") != NULL);
	b = strstr(body.data, "boundary=\"");
	T_ASSERT(b != NULL);
	b += 10;
	e = strchr(b, '"');
	T_ASSERT(e != NULL && (size_t)(e - b) < sizeof(boundary));
	memcpy(boundary, b, (size_t)(e - b));
	boundary[e - b] = '\0';
	/* the header ends before the first part */
	T_ASSERT(strstr(body.data, "\r\n\r\n") < strstr(body.data, "\r\n--"));
	/* the closing delimiter ends the body */
	buf_reset(&want);
	buf_printf(&want, "\r\n--%s--\r\n", boundary);
	T_ASSERT(body.len > want.len && strcmp(body.data + body.len -
	    want.len, want.data) == 0);

	/* part 1: for people, names every failed recipient and why */
	part(body.data, boundary, 1, &p);
	T_ASSERT(strstr(p.data, "Content-Type: text/plain") != NULL);
	T_ASSERT(strstr(p.data, "<alice@example.org>: unknown user") != NULL);
	T_ASSERT(strstr(p.data, "<bob@example.org>: mailbox full") != NULL);

	/* part 2: the report */
	part(body.data, boundary, 2, &p);
	T_ASSERT(starts(p.data, "Content-Description: Delivery report\r\n"
	    "Content-Type: message/delivery-status\r\n\r\n"));
	T_ASSERT(strstr(p.data, "\r\n\r\nReporting-MTA: dns; ") != NULL);
	T_ASSERT(strstr(p.data, "Original-Envelope-Id: ENV-123\r\n") != NULL);
	T_ASSERT(strstr(p.data, "Arrival-Date: ") != NULL);
	T_ASSERT(strstr(p.data, "\r\n\r\nFinal-Recipient: rfc822; "
	    "alice@example.org\r\n"
	    "Original-Recipient: rfc822;Alice@example.org\r\n"
	    "Action: failed\r\n"
	    "Status: 5.1.1\r\n"
	    "Diagnostic-Code: X-Herald; unknown user\r\n") != NULL);
	T_ASSERT(strstr(p.data, "\r\n\r\nFinal-Recipient: rfc822; "
	    "bob@example.org\r\n"
	    "Action: failed\r\n"
	    "Status: 5.2.2\r\n"
	    "Diagnostic-Code: X-Herald; mailbox full\r\n") != NULL);

	/* part 3: the original header section, not the body */
	part(body.data, boundary, 3, &p);
	T_ASSERT(starts(p.data, "Content-Description: Undelivered Message "
	    "Headers\r\nContent-Type: text/rfc822-headers\r\n\r\n"));
	T_ASSERT(strstr(p.data, "Subject: the original\r\n") != NULL);
	T_ASSERT(strstr(p.data, "Received: from somewhere\r\n\tby here\r\n")
	    != NULL);
	T_ASSERT(strstr(body.data, "SECRET BODY TEXT") == NULL);

	close(dsn->fd);
	qfile_free(&dsn);
	qfile_free(&oqf);
	close(fd);
	buf_free(&why);
	buf_free(&body);
	buf_free(&p);
	buf_free(&want);
}

static void
test_lf_headers(void)
{
	/* bare LF lines are returned with CRLF; no header-only crash */
	const char *msg = "Subject: lf only\nX-A: b\n";
	struct qmgr_bounce_rcpt br = {"alice@example.org", "", "5.1.1", "x",
	    NULL};
	char oqid[QID_SIZE], nqid[QID_SIZE];
	struct buf why = BUF_INIT, body = BUF_INIT;
	struct qfile *oqf = NULL, *dsn;
	int fd = original("s@x.test", msg, NULL, oqid);

	T_ASSERT(qfile_read(fd, &oqf, &why) == 0);
	T_EQ_INT(qmgr_bounce_create(spool, oqf, NULL, oqid, QMGR_DSN_FAILED, &br, 1,
	    time(NULL),
	    nqid, &why), 0);
	dsn = read_back(nqid, &body);
	T_ASSERT(dsn != NULL);
	T_ASSERT(strstr(body.data, "\r\n\r\nSubject: lf only\r\nX-A: b\r\n")
	    != NULL);
	T_ASSERT(strstr(body.data, "Original-Envelope-Id") == NULL);
	close(dsn->fd);
	qfile_free(&dsn);
	qfile_free(&oqf);
	close(fd);
	buf_free(&why);
	buf_free(&body);
}

/* make - write a DSN of kind about br[0..n) for a message with RET ret;
 * its envelope, with the body in body and its boundary in boundary */
static struct qfile *
make(const char *msg, const char *ret, enum qmgr_dsn_kind kind,
    const struct qmgr_bounce_rcpt *br, size_t n, struct buf *body,
    char boundary[200])
{
	char oqid[QID_SIZE], nqid[QID_SIZE];
	struct buf why = BUF_INIT;
	struct qfile *oqf = NULL, *dsn = NULL;
	const char *b, *e;
	int fd = original_ret("sender@x.test", msg, "E-9", ret, oqid);

	if (fd < 0 || qfile_read(fd, &oqf, &why) < 0 ||
	    qmgr_bounce_create(spool, oqf, NULL, oqid, kind, br, n, 1700000100,
	    nqid, &why) < 0) {
		fprintf(stderr, "  make: %s\n", why.data ? why.data : "");
		goto out;
	}
	dsn = read_back(nqid, body);
	if (dsn == NULL || (b = strstr(body->data, "boundary=\"")) == NULL ||
	    (e = strchr(b + 10, '"')) == NULL || e - b - 10 >= 200) {
		fprintf(stderr, "  make: no boundary\n");
		abort();
	}
	memcpy(boundary, b + 10, (size_t)(e - b - 10));
	boundary[e - b - 10] = '\0';
out:
	qfile_free(&oqf);
	if (fd >= 0)
		close(fd);
	buf_free(&why);
	return dsn;
}

/* drop - close and free a DSN from make */
static void
drop(struct qfile **dsn)
{
	if (*dsn != NULL) {
		close((*dsn)->fd);
		qfile_free(dsn);
	}
}

static void
test_delayed(void)
{
	const char *msg = "Subject: slow\r\n\r\nBODY TEXT\r\n";
	struct qmgr_bounce_rcpt br[1] = {
		{"alice@example.org", "rfc822;Alice@example.org", "4.4.1",
		    "connection refused", NULL},
	};
	struct buf body = BUF_INIT, p = BUF_INIT, until = BUF_INIT;
	struct buf want = BUF_INIT;
	struct qfile *dsn;
	char boundary[200];

	dsn = make(msg, NULL, QMGR_DSN_DELAYED, br, 1, &body, boundary);
	T_ASSERT(dsn != NULL);
	T_EQ_STR(dsn->sender, "");
	T_EQ_STR(qfile_attr(dsn, QFILE_A_BOUNCE), "1");
	T_EQ_STR(dsn->rcpt[0].addr, "sender@x.test");
	T_ASSERT(strstr(body.data, "\r\nSubject: Delayed Mail (still being "
	    "retried)\r\n") != NULL);
	/* retried until arrival + maximal_queue_lifetime */
	qmgr_bounce_date(&until, 1700000000 +
	    (time_t)var_maximal_queue_lifetime);
	part(body.data, boundary, 1, &p);
	T_ASSERT(strstr(p.data, "warning only") != NULL);
	T_ASSERT(strstr(p.data, until.data) != NULL);
	part(body.data, boundary, 2, &p);
	T_ASSERT(strstr(p.data, "\r\n\r\nReporting-MTA: dns; "
	    "mx.example.org\r\n") != NULL);
	T_ASSERT(strstr(p.data, "Original-Envelope-Id: E-9\r\n") != NULL);
	T_ASSERT(strstr(p.data, "Arrival-Date: ") != NULL);
	buf_printf(&want, "\r\n\r\nFinal-Recipient: rfc822; "
	    "alice@example.org\r\n"
	    "Original-Recipient: rfc822;Alice@example.org\r\n"
	    "Action: delayed\r\n"
	    "Status: 4.4.1\r\n"
	    "Diagnostic-Code: X-Herald; connection refused\r\n"
	    "Will-Retry-Until: %s\r\n", until.data);
	T_ASSERT(strstr(p.data, want.data) != NULL);
	part(body.data, boundary, 3, &p);
	T_ASSERT(starts(p.data, "Content-Description: Delayed Message "
	    "Headers\r\nContent-Type: text/rfc822-headers\r\n\r\n"
	    "Subject: slow\r\n"));
	T_ASSERT(strstr(body.data, "BODY TEXT") == NULL);
	drop(&dsn);
	buf_free(&body);
	buf_free(&p);
	buf_free(&until);
	buf_free(&want);
}

static void
test_ret_full(void)
{
	const char *msg = "Subject: whole\r\nX-A: b\r\n\r\nBODY TEXT\r\n"
	    "line two\r\n";
	struct qmgr_bounce_rcpt br = {"alice@example.org", "", "5.1.1",
	    "unknown user", NULL};
	struct buf body = BUF_INIT, p = BUF_INIT, big = BUF_INIT;
	struct qfile *dsn;
	char boundary[200];
	long long saved = var_bounce_size_limit;

	/* RET=FULL: the whole message as message/rfc822 */
	dsn = make(msg, "FULL", QMGR_DSN_FAILED, &br, 1, &body, boundary);
	T_ASSERT(dsn != NULL);
	part(body.data, boundary, 1, &p);
	T_ASSERT(strstr(p.data, "Your message is attached.") != NULL);
	part(body.data, boundary, 3, &p);
	T_ASSERT(starts(p.data, "Content-Description: Undelivered Message\r\n"
	    "Content-Type: message/rfc822\r\n\r\n"));
	T_ASSERT(strstr(p.data, "\r\n\r\nSubject: whole\r\nX-A: b\r\n\r\n"
	    "BODY TEXT\r\nline two\r\n") != NULL);
	drop(&dsn);

	/* RET=HDRS: the header section only */
	dsn = make(msg, "HDRS", QMGR_DSN_FAILED, &br, 1, &body, boundary);
	T_ASSERT(dsn != NULL);
	part(body.data, boundary, 3, &p);
	T_ASSERT(strstr(p.data, "Content-Type: text/rfc822-headers\r\n")
	    != NULL);
	T_ASSERT(strstr(body.data, "BODY TEXT") == NULL);
	drop(&dsn);

	/* RET=FULL over bounce_size_limit: headers, and a note saying so */
	var_bounce_size_limit = 20;
	dsn = make(msg, "FULL", QMGR_DSN_FAILED, &br, 1, &body, boundary);
	T_ASSERT(dsn != NULL);
	part(body.data, boundary, 1, &p);
	T_ASSERT(strstr(p.data, "larger than 20 bytes (bounce_size_limit)")
	    != NULL);
	part(body.data, boundary, 3, &p);
	T_ASSERT(strstr(p.data, "Content-Type: text/rfc822-headers\r\n")
	    != NULL);
	T_ASSERT(strstr(body.data, "BODY TEXT") == NULL);
	drop(&dsn);
	var_bounce_size_limit = saved;

	/* a message without a final line end still ends the part cleanly */
	buf_puts(&big, "Subject: t\r\n\r\nno newline");
	dsn = make(big.data, "FULL", QMGR_DSN_FAILED, &br, 1, &body,
	    boundary);
	T_ASSERT(dsn != NULL);
	part(body.data, boundary, 3, &p);
	T_ASSERT(strstr(p.data, "\r\n\r\nno newline\r\n") != NULL);
	drop(&dsn);
	buf_free(&body);
	buf_free(&p);
	buf_free(&big);
}

static void
test_success(void)
{
	const char *msg = "Subject: fine\r\n\r\nBODY TEXT\r\n";
	struct qmgr_bounce_rcpt br[2] = {
		{"alice@example.org", "rfc822;alice@example.org", "2.0.0",
		    "delivered to mailbox", "delivered"},
		{"bob@far.test", "", "2.0.0", "sent", "relayed"},
	};
	struct buf body = BUF_INIT, p = BUF_INIT;
	struct qfile *dsn;
	char boundary[200];

	dsn = make(msg, NULL, QMGR_DSN_SUCCESS, br, 2, &body, boundary);
	T_ASSERT(dsn != NULL);
	T_EQ_STR(qfile_attr(dsn, QFILE_A_BOUNCE), "1");
	T_ASSERT(strstr(body.data, "\r\nSubject: Successful Mail Delivery "
	    "Report\r\n") != NULL);
	part(body.data, boundary, 2, &p);
	T_ASSERT(strstr(p.data, "\r\n\r\nFinal-Recipient: rfc822; "
	    "alice@example.org\r\n"
	    "Original-Recipient: rfc822;alice@example.org\r\n"
	    "Action: delivered\r\nStatus: 2.0.0\r\n") != NULL);
	T_ASSERT(strstr(p.data, "\r\n\r\nFinal-Recipient: rfc822; "
	    "bob@far.test\r\nAction: relayed\r\nStatus: 2.0.0\r\n") != NULL);
	T_ASSERT(strstr(p.data, "Will-Retry-Until") == NULL);
	drop(&dsn);
	buf_free(&body);
	buf_free(&p);
}

static void
test_postmaster(void)
{
	const char *msg = "From: MAILER-DAEMON@mx.example.org\r\n"
	    "Subject: Undelivered Mail Returned to Sender\r\n\r\nBODY\r\n";
	struct qmgr_bounce_rcpt br = {"sender@x.test", "", "5.1.1",
	    "unknown user", NULL};
	struct buf body = BUF_INIT, p = BUF_INIT, pm = BUF_INIT;
	struct qfile *dsn;
	char boundary[200];
	char *saved = var_postmaster_address;

	/* who: postmaster_address, else postmaster@mydomain/myhostname */
	var_postmaster_address = "";
	qmgr_bounce_postmaster(&pm);
	T_EQ_STR(pm.data, "postmaster@mx.example.org");
	var_postmaster_address = "boss@example.org";
	buf_reset(&pm);
	qmgr_bounce_postmaster(&pm);
	T_EQ_STR(pm.data, "boss@example.org");

	/* RET=FULL is not honoured for the notice: headers only */
	dsn = make(msg, "FULL", QMGR_DSN_POSTMASTER, &br, 1, &body,
	    boundary);
	T_ASSERT(dsn != NULL);
	T_EQ_STR(dsn->sender, "");
	T_EQ_STR(qfile_attr(dsn, QFILE_A_BOUNCE), "2");
	T_EQ_STR(dsn->rcpt[0].addr, "boss@example.org");
	T_ASSERT(strstr(body.data, "\r\nTo: <boss@example.org>\r\n") !=
	    NULL);
	part(body.data, boundary, 2, &p);
	T_ASSERT(strstr(p.data, "Final-Recipient: rfc822; sender@x.test\r\n"
	    "Action: failed\r\nStatus: 5.1.1\r\n") != NULL);
	part(body.data, boundary, 3, &p);
	T_ASSERT(strstr(p.data, "text/rfc822-headers") != NULL);
	T_ASSERT(strstr(body.data, "BODY\r\n") == NULL);
	drop(&dsn);
	var_postmaster_address = saved;

	/* which messages' failures reach the postmaster */
	{
		struct qfile qf;
		struct qfile_attr a = {(char *)QFILE_A_BOUNCE, (char *)"1"};

		memset(&qf, 0, sizeof(qf));
		qf.sender = (char *)"";
		T_ASSERT(!qmgr_bounce_double(&qf));
		qf.attrs = &a;
		qf.nattr = 1;
		T_ASSERT(qmgr_bounce_double(&qf));
		a.value = (char *)"2";
		T_ASSERT(!qmgr_bounce_double(&qf));
		T_ASSERT(!qmgr_bounce_wanted(&qf));
	}
	buf_free(&body);
	buf_free(&p);
	buf_free(&pm);
}

enum fake_signer {
	SIGNER_PARENT,	/* none for mx.example.org, ok for example.org */
	SIGNER_FAIL,	/* status=fail */
	SIGNER_EVIL,	/* ok with a field that is no DKIM-Signature */
};

/* signer_start - a fake signer on <spool>/private/signer, answering
 * every connection's request as mode says; its pid */
static pid_t
signer_start(enum fake_signer mode)
{
	struct buf path = BUF_INIT, why = BUF_INIT;
	int lfd;
	pid_t pid;

	spool_socket_path(&path, spool, "signer");
	(void)unlink(path.data);
	if ((lfd = sock_listen_unix(path.data, 0600, 4, &why)) < 0) {
		fprintf(stderr, "listen: %s\n", why.data);
		exit(1);
	}
	if ((pid = fork()) < 0) {
		perror("fork");
		exit(1);
	}
	if (pid == 0) {
		(void)sock_set_nonblock(lfd, false);
		for (;;) {
			struct ipc_msg req, reply;
			const char *dom, *hdr;
			int conn = accept(lfd, NULL, NULL);

			if (conn < 0)
				_exit(2);
			ipc_msg_init(&req);
			ipc_msg_init(&reply);
			if (ipc_recv(conn, &req, NULL, 5000, &why) != 1)
				_exit(3);
			dom = ipc_get_str(&req, IPC_DOMAIN);
			hdr = ipc_get_str(&req, IPC_HEADER);
			/* the header block, with its empty line, only */
			if (dom == NULL || hdr == NULL || strncmp(hdr,
			    "From: MAILER-DAEMON@mx.example.org", 34) != 0 ||
			    strstr(hdr, "\r\n\r\n") != hdr + strlen(hdr) - 4 ||
			    ipc_get_str(&req, IPC_BODY_HASH) == NULL)
				_exit(4);
			if (mode == SIGNER_FAIL) {
				ipc_put_str(&reply, IPC_STATUS, "fail");
				ipc_put_str(&reply, IPC_REASON, "no key file");
			} else if (mode == SIGNER_EVIL) {
				ipc_put_str(&reply, IPC_STATUS, "ok");
				ipc_put_str(&reply, IPC_SIGNATURE,
				    "DKIM-Signature: a\r\nX-Evil: 1\r\n");
			} else if (strcmp(dom, "example.org") == 0) {
				ipc_put_str(&reply, IPC_STATUS, "ok");
				ipc_put_str(&reply, IPC_SIGNATURE,
				    "DKIM-Signature: v=1; d=example.org;\r\n"
				    "\tb=fake\r\n");
			} else {
				ipc_put_str(&reply, IPC_STATUS, "none");
			}
			(void)ipc_send(conn, &reply, -1, 5000, &why);
			close(conn);
			ipc_msg_free(&req);
			ipc_msg_free(&reply);
		}
	}
	close(lfd);
	buf_free(&path);
	buf_free(&why);
	return pid;
}

/* signer_stop - end the fake signer and remove its socket */
static void
signer_stop(pid_t pid)
{
	struct buf path = BUF_INIT;

	kill(pid, SIGKILL);
	(void)waitpid(pid, NULL, 0);
	spool_socket_path(&path, spool, "signer");
	(void)unlink(path.data);
	buf_free(&path);
}

/* signed_body - a failure notice made with the fake signer in mode; its
 * body in out */
static int
signed_body(enum fake_signer mode, struct buf *out)
{
	const char *msg = "Subject: sign me\r\n\r\nBODY\r\n";
	struct qmgr_bounce_rcpt br = {"alice@example.org", "", "5.1.1", "x",
	    NULL};
	char oqid[QID_SIZE], nqid[QID_SIZE];
	struct buf why = BUF_INIT;
	struct qfile *oqf = NULL, *dsn;
	int fd = original("s@x.test", msg, NULL, oqid), r = -1;
	pid_t pid = signer_start(mode);

	if (qfile_read(fd, &oqf, &why) == 0 &&
	    qmgr_bounce_create(spool, oqf, NULL, oqid, QMGR_DSN_FAILED, &br, 1,
	    time(NULL), nqid, &why) == 0 &&
	    (dsn = read_back(nqid, out)) != NULL) {
		close(dsn->fd);
		qfile_free(&dsn);
		r = 0;
	}
	signer_stop(pid);
	if (oqf != NULL)
		qfile_free(&oqf);
	close(fd);
	buf_free(&why);
	return r;
}

/* the signature of myhostname's parent domain goes above the header; a
 * signer that fails, or answers with more than DKIM-Signature fields,
 * leaves the notice unsigned, and it is made all the same */
static void
test_signed(void)
{
	struct buf body = BUF_INIT;

	T_EQ_INT(signed_body(SIGNER_PARENT, &body), 0);
	T_ASSERT(starts(body.data, "DKIM-Signature: v=1; d=example.org;\r\n"
	    "\tb=fake\r\nFrom: MAILER-DAEMON@mx.example.org "));
	T_EQ_INT(signed_body(SIGNER_FAIL, &body), 0);
	T_ASSERT(starts(body.data, "From: MAILER-DAEMON@mx.example.org "));
	T_EQ_INT(signed_body(SIGNER_EVIL, &body), 0);
	T_ASSERT(starts(body.data, "From: MAILER-DAEMON@mx.example.org "));
	T_ASSERT(strstr(body.data, "X-Evil") == NULL);
	buf_free(&body);
}

static const struct test_case cases[] = {
	{"DKIM: signed by the signer, or unsigned", test_signed},
	{"who gets a notification", test_wanted},
	{"RFC 5322 dates", test_date},
	{"DSN queue file and its parts", test_create},
	{"LF-only original header", test_lf_headers},
	{"delay warning (Action: delayed)", test_delayed},
	{"RET=FULL returns the message, bounded", test_ret_full},
	{"success report (delivered, relayed)", test_success},
	{"postmaster notice of a failed notification", test_postmaster},
	{0},
};

int
main(void)
{
	struct buf why = BUF_INIT;
	int r;

	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(spool, sizeof(spool), "%s/spool", tmpdir);
	if (spool_setup(spool, (uid_t)-1, (gid_t)-1, &why) < 0) {
		fprintf(stderr, "spool_setup: %s\n", why.data);
		return 1;
	}
	cfg_defaults(params_table);
	x_free(&var_myhostname);
	var_myhostname = xstrdup("mx.example.org");
	r = test_run(cases);
	test_rm_tree(tmpdir);
	buf_free(&why);
	return r;
}
