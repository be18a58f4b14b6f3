/*
 * smtpd_cmd_test - command lookup and the parsers of MAIL, RCPT, BDAT and
 * HELO arguments: ESMTP parameters, CR/LF/NUL rejection, reply codes.
 */
#include <string.h>

#include "base/buf.h"
#include "base/test.h"
#include "smtpd.h"

/* code - the first 9 bytes of a reply ("501 5.1.7") */
static const char *
code(const struct buf *reply)
{
	static char c[10];

	memset(c, 0, sizeof(c));
	memcpy(c, reply->data, reply->len < 9 ? reply->len : 9);
	return c;
}

static void
test_find(void)
{
	T_ASSERT(smtpd_cmd_find("MAIL", 4) != NULL);
	T_EQ_STR(smtpd_cmd_find("mail", 4)->name, "MAIL");
	T_EQ_STR(smtpd_cmd_find("eHlO", 4)->name, "EHLO");
	T_EQ_STR(smtpd_cmd_find("starttls", 8)->name, "STARTTLS");
	T_ASSERT(smtpd_cmd_find("MAILX", 5) == NULL);
	T_ASSERT(smtpd_cmd_find("MAI", 3) == NULL);
	T_ASSERT(smtpd_cmd_find("", 0) == NULL);
	T_EQ_STR(smtpd_cmd_find("auth", 4)->name, "AUTH");
	T_EQ_INT(smtpd_cmd_count(), 15);	/* 14 commands + unknown */
}

static void
test_forbidden(void)
{
	T_ASSERT(smtpd_cmd_forbidden("GET", 3));
	T_ASSERT(smtpd_cmd_forbidden("post", 4));
	T_ASSERT(smtpd_cmd_forbidden("CONNECT", 7));
	T_ASSERT(smtpd_cmd_forbidden("Host:", 5));
	T_ASSERT(!smtpd_cmd_forbidden("MAIL", 4));
	T_ASSERT(!smtpd_cmd_forbidden("XYZZY", 5));
}

/* mail - parse MAIL arguments s (length n); returns the parser's result */
static int
mail(const char *s, size_t n, struct smtpd_mail_req *r, struct buf *reply)
{
	smtpd_cmd_mail_req_free(r);
	smtpd_cmd_mail_req_init(r);
	return smtpd_cmd_parse_mail(s, n, r, reply);
}

#define MAIL_OK(s)                                                            \
	do {                                                                  \
		if (mail(s, sizeof(s) - 1, &r, &reply) != 0)                  \
			T_FAIL_("MAIL %s: %s", s, buf_cstr(&reply));          \
	} while (0)
#define MAIL_BAD(s, want)                                                     \
	do {                                                                  \
		T_EQ_INT(mail(s, sizeof(s) - 1, &r, &reply), -1);             \
		T_EQ_STR(code(&reply), want);                                 \
	} while (0)

static void
test_mail_ok(void)
{
	struct smtpd_mail_req r;
	struct buf reply = BUF_INIT;

	smtpd_cmd_mail_req_init(&r);
	MAIL_OK("FROM:<a@example.org>");
	T_EQ_STR(buf_cstr(&r.addr), "a@example.org");
	T_EQ_INT(r.size, -1);
	T_EQ_INT(r.body, SMTPD_BODY_NONE);
	T_ASSERT(!r.smtputf8);

	MAIL_OK("from:<>");
	T_EQ_STR(buf_cstr(&r.addr), "");

	MAIL_OK("FROM: <a@example.org>");
	T_EQ_STR(buf_cstr(&r.addr), "a@example.org");

	MAIL_OK("FROM:<a@example.org> SIZE=1000 BODY=8BITMIME");
	T_EQ_INT(r.size, 1000);
	T_EQ_INT(r.body, SMTPD_BODY_8BITMIME);

	MAIL_OK("FROM:<a@example.org> size=0 body=7bit");
	T_EQ_INT(r.size, 0);
	T_EQ_INT(r.body, SMTPD_BODY_7BIT);

	MAIL_OK("FROM:<a@example.org>  SIZE=5   SMTPUTF8");
	T_EQ_INT(r.size, 5);
	T_ASSERT(r.smtputf8);

	MAIL_OK("FROM:<a@example.org> AUTH=<>");
	MAIL_OK("FROM:<a@example.org> AUTH=a+2Bb@example.org");

	MAIL_OK("FROM:<a@example.org> RET=HDRS ENVID=abc+2Bdef");
	T_EQ_INT(r.ret, SMTPD_RET_HDRS);
	T_ASSERT(r.has_envid);
	T_EQ_STR(buf_cstr(&r.envid), "abc+def");

	MAIL_OK("FROM:<\"a b\"@example.org>");
	T_EQ_STR(buf_cstr(&r.addr), "a b@example.org");

	MAIL_OK("FROM:<r\xc3\xa9n\xc3\xa9@example.org> SMTPUTF8");
	T_EQ_STR(buf_cstr(&r.addr), "r\xc3\xa9n\xc3\xa9@example.org");
	smtpd_cmd_mail_req_free(&r);
	buf_free(&reply);
}

static void
test_mail_bad(void)
{
	struct smtpd_mail_req r;
	struct buf reply = BUF_INIT;

	smtpd_cmd_mail_req_init(&r);
	MAIL_BAD("TO:<a@example.org>", "501 5.5.4");
	MAIL_BAD("FROM", "501 5.5.4");
	MAIL_BAD("", "501 5.5.4");
	MAIL_BAD("FROM:<a@example.org", "501 5.1.7");
	MAIL_BAD("FROM:<a@example.org>junk", "501 5.1.7");
	MAIL_BAD("FROM:<a@example.org>\tSIZE=1", "501 5.1.7");
	MAIL_BAD("FROM:<postmaster>", "501 5.1.7");
	MAIL_BAD("FROM:<a@example.org> SIZE=abc", "501 5.5.4");
	MAIL_BAD("FROM:<a@example.org> SIZE=", "501 5.5.4");
	MAIL_BAD("FROM:<a@example.org> SIZE", "501 5.5.4");
	MAIL_BAD("FROM:<a@example.org> SIZE=-1", "501 5.5.4");
	MAIL_BAD("FROM:<a@example.org> SIZE=99999999999999999999", "501 5.5.4");
	MAIL_BAD("FROM:<a@example.org> SIZE=1 SIZE=2", "501 5.5.4");
	MAIL_BAD("FROM:<a@example.org> BODY=9BIT", "501 5.5.4");
	MAIL_BAD("FROM:<a@example.org> BODY=BINARYMIME", "504 5.5.4");
	MAIL_BAD("FROM:<a@example.org> FOO=bar", "555 5.5.4");
	MAIL_BAD("FROM:<a@example.org> XFORWARD", "555 5.5.4");
	MAIL_BAD("FROM:<a@example.org> SMTPUTF8=yes", "501 5.5.4");
	MAIL_BAD("FROM:<a@example.org> RET=ALL", "501 5.5.4");
	MAIL_BAD("FROM:<a@example.org> ENVID=a+0Db", "501 5.5.4");
	MAIL_BAD("FROM:<a@example.org> =x", "501 5.5.4");
	MAIL_BAD("FROM:<r\xc3\xa9n\xc3\xa9@example.org>", "553 5.6.7");
	smtpd_cmd_mail_req_free(&r);
	buf_free(&reply);
}

/* CR, LF and NUL never get past the parser, wherever they are */
static void
test_mail_ctl(void)
{
	static const char *const bad[] = {
		"FROM:<a\r@example.org>",
		"FROM:<a@exam\nple.org>",
		"FROM:<a@example.org> SIZE=1\r",
		"FROM:<a@example.org> ENVID=a\nb",
		"FROM:<a@example.org>\r SIZE=1",
		NULL,
	};
	struct smtpd_mail_req r;
	struct buf reply = BUF_INIT;
	char nul[] = "FROM:<a@example.org> ENVID=ab";

	smtpd_cmd_mail_req_init(&r);
	for (const char *const *b = bad; *b; b++) {
		T_EQ_INT(mail(*b, strlen(*b), &r, &reply), -1);
		T_ASSERT(strncmp(reply.data, "501 ", 4) == 0);
	}
	nul[27] = '\0';
	T_EQ_INT(mail(nul, sizeof(nul) - 1, &r, &reply), -1);
	T_EQ_STR(code(&reply), "501 5.5.4");
	nul[27] = 'a';
	nul[8] = '\0';
	T_EQ_INT(mail(nul, sizeof(nul) - 1, &r, &reply), -1);
	smtpd_cmd_mail_req_free(&r);
	buf_free(&reply);
}

/* rcpt - parse RCPT arguments */
static int
rcpt(const char *s, size_t n, bool utf8, struct smtpd_rcpt_req *r,
    struct buf *reply)
{
	smtpd_cmd_rcpt_req_free(r);
	smtpd_cmd_rcpt_req_init(r);
	return smtpd_cmd_parse_rcpt(s, n, utf8, r, reply);
}

#define RCPT_OK(s, utf8)                                                      \
	do {                                                                  \
		if (rcpt(s, sizeof(s) - 1, utf8, &r, &reply) != 0)            \
			T_FAIL_("RCPT %s: %s", s, buf_cstr(&reply));          \
	} while (0)
#define RCPT_BAD(s, utf8, want)                                               \
	do {                                                                  \
		T_EQ_INT(rcpt(s, sizeof(s) - 1, utf8, &r, &reply), -1);       \
		T_EQ_STR(code(&reply), want);                                 \
	} while (0)

static void
test_rcpt(void)
{
	struct smtpd_rcpt_req r;
	struct buf reply = BUF_INIT;

	smtpd_cmd_rcpt_req_init(&r);
	RCPT_OK("TO:<b@example.org>", false);
	T_EQ_STR(buf_cstr(&r.addr), "b@example.org");
	T_ASSERT(!r.postmaster);
	T_EQ_STR(buf_cstr(&r.orcpt), "");
	T_EQ_STR(buf_cstr(&r.notify), "");

	RCPT_OK("to: <b@example.org>", false);
	T_EQ_STR(buf_cstr(&r.addr), "b@example.org");

	RCPT_OK("TO:<Postmaster>", false);
	T_ASSERT(r.postmaster);
	T_EQ_STR(buf_cstr(&r.addr), "postmaster");

	RCPT_OK("TO:<postmaster@example.org>", false);
	T_ASSERT(!r.postmaster);

	RCPT_OK("TO:<b@example.org> NOTIFY=success,FAILURE "
	    "ORCPT=rfc822;b+40example.org", false);
	T_EQ_STR(buf_cstr(&r.notify), "SUCCESS,FAILURE");
	T_EQ_STR(buf_cstr(&r.orcpt), "rfc822;b@example.org");

	RCPT_OK("TO:<b@example.org> NOTIFY=NEVER", false);
	T_EQ_STR(buf_cstr(&r.notify), "NEVER");

	RCPT_OK("TO:<\xc3\xbc@example.org>", true);
	RCPT_BAD("TO:<\xc3\xbc@example.org>", false, "553 5.6.7");

	RCPT_BAD("FROM:<b@example.org>", false, "501 5.5.4");
	RCPT_BAD("TO:<>", false, "501 5.1.3");
	RCPT_BAD("TO:<b>", false, "501 5.1.3");
	RCPT_BAD("TO:<b@example.org", false, "501 5.1.3");
	RCPT_BAD("TO:<b@example.org> SIZE=1", false, "555 5.5.4");
	RCPT_BAD("TO:<b@example.org> NOTIFY=NEVER,SUCCESS", false, "501 5.5.4");
	RCPT_BAD("TO:<b@example.org> NOTIFY=DELAY,DELAY", false, "501 5.5.4");
	RCPT_BAD("TO:<b@example.org> NOTIFY=SUCCESS,", false, "501 5.5.4");
	RCPT_BAD("TO:<b@example.org> NOTIFY=SOMETIMES", false, "501 5.5.4");
	RCPT_BAD("TO:<b@example.org> NOTIFY=NEVER NOTIFY=NEVER", false,
	    "501 5.5.4");
	RCPT_BAD("TO:<b@example.org> ORCPT=b@example.org", false, "501 5.5.4");
	RCPT_BAD("TO:<b@example.org> ORCPT=rfc822;", false, "501 5.5.4");
	RCPT_BAD("TO:<b@example.org> ORCPT=rfc822;a+09b", false, "501 5.5.4");
	RCPT_BAD("TO:<b@exa\rmple.org>", false, "501 5.5.4");
	RCPT_BAD("TO:<b@example.org> NOTIFY=NEVER\n", false, "501 5.5.4");
	smtpd_cmd_rcpt_req_free(&r);
	buf_free(&reply);
}

static void
test_bdat(void)
{
	long long n = -1;
	bool last = true;

	T_EQ_INT(smtpd_cmd_parse_bdat("100", 3, &n, &last), 0);
	T_EQ_INT(n, 100);
	T_ASSERT(!last);
	T_EQ_INT(smtpd_cmd_parse_bdat("0 LAST", 6, &n, &last), 0);
	T_EQ_INT(n, 0);
	T_ASSERT(last);
	T_EQ_INT(smtpd_cmd_parse_bdat("7 last", 6, &n, &last), 0);
	T_EQ_INT(n, 7);
	T_ASSERT(last);
	T_EQ_INT(smtpd_cmd_parse_bdat("", 0, &n, &last), -1);
	T_EQ_INT(smtpd_cmd_parse_bdat("abc", 3, &n, &last), -1);
	T_EQ_INT(smtpd_cmd_parse_bdat("-1", 2, &n, &last), -1);
	T_EQ_INT(smtpd_cmd_parse_bdat("100LAST", 7, &n, &last), -1);
	T_EQ_INT(smtpd_cmd_parse_bdat("100 LASTX", 9, &n, &last), -1);
	T_EQ_INT(smtpd_cmd_parse_bdat("100 LAST x", 10, &n, &last), -1);
	T_EQ_INT(smtpd_cmd_parse_bdat("99999999999999999999", 20, &n, &last),
	    -1);
}

static void
test_helo(void)
{
	struct buf reply = BUF_INIT;
	char longname[300];

	T_EQ_INT(smtpd_cmd_check_helo("mail.example.org", 16, &reply), 0);
	T_EQ_INT(smtpd_cmd_check_helo("[192.0.2.1]", 11, &reply), 0);
	T_EQ_INT(smtpd_cmd_check_helo("", 0, &reply), -1);
	T_EQ_STR(code(&reply), "501 5.5.4");
	T_EQ_INT(smtpd_cmd_check_helo("a\tb", 3, &reply), -1);
	T_EQ_INT(smtpd_cmd_check_helo("a\rb", 3, &reply), -1);
	T_EQ_INT(smtpd_cmd_check_helo("a\0b", 3, &reply), -1);
	memset(longname, 'a', sizeof(longname));
	T_EQ_INT(smtpd_cmd_check_helo(longname, 255, &reply), 0);
	T_EQ_INT(smtpd_cmd_check_helo(longname, 256, &reply), -1);
	buf_free(&reply);
}

static const struct test_case cases[] = {
	{"command lookup", test_find},
	{"forbidden verbs", test_forbidden},
	{"MAIL accepted forms", test_mail_ok},
	{"MAIL rejected forms", test_mail_bad},
	{"MAIL with CR, LF, NUL", test_mail_ctl},
	{"RCPT", test_rcpt},
	{"BDAT", test_bdat},
	{"HELO argument", test_helo},
	{0},
};

int
main(void)
{
	return test_run(cases);
}
