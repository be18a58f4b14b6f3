/*
 * smtp_client_test - the SMTP client's state machine against a scripted
 * server (a child process on a socketpair): pipelining, HELO fallback,
 * SIZE, DSN parameters, dot-stuffing, per-recipient results, greeting
 * failures, timeouts and a connection lost in the middle; sessions that
 * take two transactions with RSET between, and the ones that must not be
 * reused (RSET refused, 421, closed by the server while idle).
 * CHUNKING, the content path and 3xx replies: smtp_client_bdat_test.c.
 */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/test.h"
#include "base/tls.h"
#include "mail/smtp_client.h"

/* one step of a script: read a line starting with expect (NULL: read
 * nothing; "DATA-BODY": read up to the dot and compare with body), then
 * write reply (NULL: nothing; "HANG": sleep; "CLOSE": exit) */
struct step {
	const char *expect;
	const char *reply;
};

/* the client's TLS context in run(); NULL: no STARTTLS */
static struct ssl_ctx_st *tls_ctx;
/* the credentials run() gives the client; NULL: none */
static const char *auth_user, *auth_pass;
/* the TLS level in run(), and the fail_dsn its open left */
static enum smtp_tls_level tls_level = SMTP_TLS_MAY;
static char last_fail_dsn[8];

static const char *body_in = "Subject: x\r\n\r\nline1\r\n.dot\r\nlast";
static const char *body_out = "Subject: x\r\n\r\nline1\r\n..dot\r\nlast\r\n"
    ".\r\n";

/* server - play the script on fd; exit 0 if the client followed it */
static void
server(int fd, const struct step *s)
{
	FILE *in = fdopen(dup(fd), "r");
	char line[2048];

	if (in == NULL)
		_exit(10);
	for (; s->expect != NULL || s->reply != NULL; s++) {
		if (s->expect != NULL && strcmp(s->expect, "EOF") == 0) {
			/* the client must close without another byte */
			if (fgets(line, sizeof(line), in) != NULL) {
				fprintf(stderr, "expected EOF, got [%s]\n",
				    line);
				_exit(14);
			}
			continue;
		}
		if (s->expect != NULL && strcmp(s->expect, "DATA-BODY") == 0) {
			struct buf got = BUF_INIT;

			while (fgets(line, sizeof(line), in) != NULL) {
				buf_puts(&got, line);
				if (strcmp(line, ".\r\n") == 0)
					break;
			}
			if (strcmp(buf_cstr(&got), body_out) != 0) {
				fprintf(stderr, "body: got [%s]\n",
				    buf_cstr(&got));
				_exit(11);
			}
		} else if (s->expect != NULL) {
			if (fgets(line, sizeof(line), in) == NULL)
				_exit(12);
			if (strncmp(line, s->expect, strlen(s->expect)) != 0) {
				fprintf(stderr, "expected [%s], got [%s]\n",
				    s->expect, line);
				_exit(13);
			}
		}
		if (s->reply == NULL)
			continue;
		if (strcmp(s->reply, "HANG") == 0) {
			/* say nothing until the client gives up */
			while (read(fd, line, sizeof(line)) > 0)
				continue;
			_exit(0);
		}
		if (strcmp(s->reply, "CLOSE") == 0)
			_exit(0);
		if (write(fd, s->reply, strlen(s->reply)) !=
		    (ssize_t)strlen(s->reply))
			_exit(14);
	}
	_exit(0);
}

/* run - the client against script; its return, outcomes in out */
static bool last_dsn;	/* info.dsn of the last run */

static int
run(const struct step *script, const struct smtp_envelope *env0,
    long long helo_ms, struct outcome *out, struct buf *why, int *status_r)
{
	int sv[2], rc;
	bool reaped = false;
	pid_t pid;
	char path[] = "/tmp/herald-smtp-client-XXXXXX";
	int bfd = mkstemp(path);
	struct smtp_envelope env = *env0;
	struct smtp_client_info info = {.tls = BUF_INIT};
	struct smtp_client_conf conf = {
		.helo_name = "mx.a.test", .tls = tls_level, .tls_ctx = tls_ctx,
		.helo_ms = helo_ms, .mail_ms = 2000, .rcpt_ms = 2000,
		.data_init_ms = 2000, .data_xfer_ms = 2000,
		.data_done_ms = 2000,
		.auth_user = auth_user, .auth_pass = auth_pass,
	};

	if (bfd < 0 || unlink(path) < 0 ||
	    write(bfd, body_in, strlen(body_in)) != (ssize_t)strlen(body_in))
		abort();
	env.fd = bfd;
	env.off = 0;
	env.size = (off_t)strlen(body_in);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		abort();
	if ((pid = fork()) == 0) {
		close(sv[0]);
		server(sv[1], script);
	}
	close(sv[1]);
	for (size_t i = 0; i < env.nrcpt; i++)
		outcome_init(&out[i]);
	rc = smtp_client_deliver(sv[0], "mx.b.test", &conf, &env, out, &info,
	    why);
	last_dsn = info.dsn;
	memcpy(last_fail_dsn, info.fail_dsn, sizeof(last_fail_dsn));
	close(sv[0]);
	close(bfd);
	/* the server ends its script by itself; killed after 3 s */
	for (int i = 0; i < 300 && !reaped; i++) {
		reaped = waitpid(pid, status_r, WNOHANG) == pid;
		if (!reaped)
			usleep(10000);
	}
	if (!reaped) {
		(void)kill(pid, SIGKILL);
		(void)waitpid(pid, status_r, 0);
	}
	buf_free(&info.tls);
	return rc;
}

static const char *const two[] = {"bob@b.test", "reject@b.test"};

/* ok - the child exited 0 (followed the script) */
#define T_CHILD_OK(st) T_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0)

/* run1 - env (one recipient) against script, the client deciding: true
 * when the server saw the script through and the recipient's outcome has
 * status and dsn (NULL: any); what differed goes to stderr */
static bool
run1(const struct step *script, const struct smtp_envelope *env,
    enum outcome_status status, const char *dsn)
{
	struct outcome out[1];
	struct buf why = BUF_INIT;
	int st, rc = run(script, env, 2000, out, &why, &st);
	bool ok = rc == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0 &&
	    out[0].status == status &&
	    (dsn == NULL || strcmp(out[0].dsn, dsn) == 0);

	if (!ok)
		fprintf(stderr, "  run1: returned %d (%s), server status %d, "
		    "outcome %d %s (%s)\n", rc, buf_cstr(&why), st,
		    out[0].status, out[0].dsn, buf_cstr(&out[0].reason));
	outcome_free(&out[0]);
	buf_free(&why);
	return ok;
}

static void
test_pipelined(void)
{
	static const struct step script[] = {
		{NULL, "220 mx.b.test ESMTP\r\n"},
		{"EHLO mx.a.test", "250-mx.b.test\r\n250-PIPELINING\r\n"
		    "250 SIZE 100000\r\n"},
		{"MAIL FROM:<alice@a.test> SIZE=", NULL},
		{"RCPT TO:<bob@b.test>", NULL},
		{"RCPT TO:<reject@b.test>", "250 2.1.0 ok\r\n250 2.1.5 ok\r\n"
		    "550 5.1.1 no such user\r\n"},
		{"DATA", "354 go\r\n"},
		{"DATA-BODY", "250 2.0.0 queued as X\r\n"},
		{"QUIT", "221 bye\r\n"},
		{NULL, NULL},
	};
	struct smtp_envelope env = {.sender = "alice@a.test", .rcpt = two,
	    .nrcpt = 2};
	struct outcome out[2];
	struct buf why = BUF_INIT;
	int st;

	T_EQ_INT(run(script, &env, 2000, out, &why, &st), 0);
	T_CHILD_OK(st);
	T_EQ_INT(out[0].status, OUTCOME_OK);
	T_EQ_STR(out[0].dsn, "2.0.0");
	T_EQ_STR(buf_cstr(&out[0].reason), "mx.b.test said: 250 2.0.0 "
	    "queued as X (in reply to end of DATA)");
	T_EQ_INT(out[1].status, OUTCOME_BOUNCED);
	T_EQ_STR(out[1].dsn, "5.1.1");
	T_EQ_STR(buf_cstr(&out[1].reason), "mx.b.test said: 550 5.1.1 "
	    "no such user (in reply to RCPT TO)");
	outcome_free(&out[0]);
	outcome_free(&out[1]);
	buf_free(&why);
}

static void
test_helo_fallback_and_dsn_off(void)
{
	static const char *const notify[] = {"SUCCESS", ""};
	static const char *const orcpt[] = {"rfc822;bob@b.test", ""};
	static const struct step script[] = {
		{NULL, "220 old\r\n"},
		{"EHLO", "502 what\r\n"},
		{"HELO mx.a.test", "250 hi\r\n"},
		/* no SIZE, no DSN parameters without the extensions */
		{"MAIL FROM:<alice@a.test>\r\n", "250 ok\r\n"},
		{"RCPT TO:<bob@b.test>\r\n", "451 4.3.0 later\r\n"},
		{"RCPT TO:<reject@b.test>\r\n", "452 full\r\n"},
		{"QUIT", "221 bye\r\n"},
		{NULL, NULL},
	};
	struct smtp_envelope env = {.sender = "alice@a.test", .rcpt = two,
	    .nrcpt = 2, .notify = notify, .orcpt = orcpt, .ret = "HDRS",
	    .envid = "e1"};
	struct outcome out[2];
	struct buf why = BUF_INIT;
	int st;

	T_EQ_INT(run(script, &env, 2000, out, &why, &st), 0);
	T_CHILD_OK(st);
	T_EQ_INT(out[0].status, OUTCOME_DEFERRED);
	T_EQ_STR(out[0].dsn, "4.3.0");
	T_EQ_INT(out[1].status, OUTCOME_DEFERRED);
	T_EQ_STR(out[1].dsn, "4.0.0");
	T_ASSERT(!last_dsn);	/* qmgr reports NOTIFY=SUCCESS: relayed */
	outcome_free(&out[0]);
	outcome_free(&out[1]);
	buf_free(&why);
}

static void
test_dsn_params(void)
{
	static const char *const notify[] = {"SUCCESS,FAILURE"};
	static const char *const orcpt[] = {"rfc822;b+x@b.test"};
	static const struct step script[] = {
		{NULL, "220 x\r\n"},
		{"EHLO", "250-x\r\n250 DSN\r\n"},
		{"MAIL FROM:<> RET=HDRS ENVID=e+2B1\r\n", "250 ok\r\n"},
		{"RCPT TO:<bob@b.test> NOTIFY=SUCCESS,FAILURE "
		    "ORCPT=rfc822;b+2Bx@b.test\r\n", "250 ok\r\n"},
		{"DATA", "354 go\r\n"},
		{"DATA-BODY", "250 ok\r\n"},
		{"QUIT", "221 bye\r\n"},
		{NULL, NULL},
	};
	struct smtp_envelope env = {.sender = "", .rcpt = two, .nrcpt = 1,
	    .notify = notify, .orcpt = orcpt, .ret = "HDRS", .envid = "e+1"};

	T_ASSERT(run1(script, &env, OUTCOME_OK, "2.0.0"));
	T_ASSERT(last_dsn);	/* the server reports itself */
}

static void
test_size_fails_fast(void)
{
	static const struct step script[] = {
		{NULL, "220 x\r\n"},
		{"EHLO", "250-x\r\n250 SIZE 10\r\n"},
		{"QUIT", "221 bye\r\n"},
		{NULL, NULL},
	};
	struct smtp_envelope env = {.sender = "a@a.test", .rcpt = two,
	    .nrcpt = 2};
	struct outcome out[2];
	struct buf why = BUF_INIT;
	int st;

	T_EQ_INT(run(script, &env, 2000, out, &why, &st), 0);
	T_CHILD_OK(st);
	T_EQ_INT(out[0].status, OUTCOME_BOUNCED);
	T_EQ_STR(out[0].dsn, "5.3.4");
	T_EQ_INT(out[1].status, OUTCOME_BOUNCED);
	outcome_free(&out[0]);
	outcome_free(&out[1]);
	buf_free(&why);
}

static void
test_eightbit_and_utf8(void)
{
	static const struct step convert[] = {
		{NULL, "220 x\r\n"},
		{"EHLO", "250-x\r\n250 PIPELINING\r\n"},
		/* no BODY=8BITMIME to a server without it */
		{"MAIL FROM:<a@a.test>\r\n", NULL},
		{"RCPT TO:<bob@b.test>\r\n", "250 ok\r\n250 ok\r\n"},
		{"DATA", "354 go\r\n"},
		{"DATA-BODY", "250 ok\r\n"},
		{"QUIT", "221 bye\r\n"},
		{NULL, NULL},
	};
	static const struct step refuse[] = {
		{NULL, "220 x\r\n"},
		{"EHLO", "250-x\r\n250 PIPELINING\r\n"},
		{"QUIT", "221 bye\r\n"},
		{NULL, NULL},
	};
	const char *in = body_in, *want = body_out;
	struct smtp_envelope env = {.sender = "a@a.test", .rcpt = two,
	    .nrcpt = 1, .eightbit = true};

	/* 8-bit body: sent as quoted-printable */
	body_in = "Subject: x\r\n\r\ncaf\xc3\xa9\r\n.\r\n";
	body_out = "Subject: x\r\nMIME-Version: 1.0\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
	    "caf=C3=A9\r\n..\r\n.\r\n";
	T_ASSERT(run1(convert, &env, OUTCOME_OK, NULL));
	/* an 8-bit header cannot be converted: bounce before MAIL */
	body_in = "Subject: caf\xc3\xa9\r\n\r\nx\r\n";
	T_ASSERT(run1(refuse, &env, OUTCOME_BOUNCED, "5.6.3"));
	body_in = in;
	body_out = want;
	env.eightbit = false;
	env.smtputf8 = true;
	T_ASSERT(run1(refuse, &env, OUTCOME_BOUNCED, "5.6.7"));
}

static void
test_starttls_refused_keeps_ehlo(void)
{
	static const struct step script[] = {
		{NULL, "220 x\r\n"},
		{"EHLO", "250-x\r\n250-STARTTLS\r\n250-8BITMIME\r\n"
		    "250 SMTPUTF8\r\n"},
		{"STARTTLS", "454 4.7.0 TLS not available\r\n"},
		/* the EHLO reply's extensions, not the STARTTLS reply's */
		{"MAIL FROM:<a@a.test> BODY=8BITMIME SMTPUTF8\r\n",
		    "250 ok\r\n"},
		{"RCPT TO:<bob@b.test>\r\n", "250 ok\r\n"},
		{"DATA", "354 go\r\n"},
		{"DATA-BODY", "250 ok\r\n"},
		{"QUIT", "221 bye\r\n"},
		{NULL, NULL},
	};
	struct smtp_envelope env = {.sender = "a@a.test", .rcpt = two,
	    .nrcpt = 1, .eightbit = true, .smtputf8 = true};
	struct buf why = BUF_INIT;
	bool ok;

	if ((tls_ctx = tls_client_ctx_new(NULL, &why)) == NULL)
		abort();
	ok = run1(script, &env, OUTCOME_OK, NULL);
	SSL_CTX_free(tls_ctx);
	tls_ctx = NULL;
	buf_free(&why);
	T_ASSERT(ok);
}

/* test_no_auth_in_plaintext - credentials set, a server that offers AUTH
 * but no STARTTLS: the client gives up on the host and never sends AUTH
 * (nor the password), whatever the TLS level says */
static void
test_no_auth_in_plaintext(void)
{
	static const struct step script[] = {
		{NULL, "220 x\r\n"},
		{"EHLO", "250-x\r\n250 AUTH PLAIN LOGIN\r\n"},
		{"EOF", NULL},
		{NULL, NULL},
	};
	struct smtp_envelope env = {.sender = "a@a.test", .rcpt = two,
	    .nrcpt = 1};
	struct outcome out[1];
	struct buf why = BUF_INIT;
	int st, rc;

	auth_user = "user";
	auth_pass = "secret";
	rc = run(script, &env, 2000, out, &why, &st);
	auth_user = auth_pass = NULL;
	T_EQ_INT(rc, -1);
	T_CHILD_OK(st);
	T_ASSERT(strstr(buf_cstr(&why), "without TLS") != NULL);
	T_ASSERT(strstr(buf_cstr(&why), "secret") == NULL);
	outcome_free(&out[0]);
	buf_free(&why);
}

/* test_required_levels - encrypt, verify and dane: a server that
 * refuses STARTTLS, or does not offer it, fails the host with 4.7.4
 * before MAIL (the scripts end there: a MAIL would break them); no TLS
 * context at all fails it before the greeting */
static void
test_required_levels(void)
{
	static const struct step refuse[] = {
		{NULL, "220 x\r\n"},
		{"EHLO", "250-x\r\n250 STARTTLS\r\n"},
		{"STARTTLS", "454 4.7.0 TLS not available\r\n"},
		{NULL, NULL},
	};
	static const struct step absent[] = {
		{NULL, "220 x\r\n"},
		{"EHLO", "250-x\r\n250 8BITMIME\r\n"},
		{NULL, NULL},
	};
	static const enum smtp_tls_level levels[] = {SMTP_TLS_ENCRYPT,
	    SMTP_TLS_VERIFY, SMTP_TLS_DANE};
	struct smtp_envelope env = {.sender = "a@a.test", .rcpt = two,
	    .nrcpt = 1};
	struct outcome out[1];
	struct buf why = BUF_INIT;
	int st, rc[3][3];

	if ((tls_ctx = tls_client_ctx_new(NULL, &why)) == NULL)
		abort();
	for (size_t i = 0; i < 3; i++) {
		tls_level = levels[i];
		buf_reset(&why);
		rc[i][0] = run(refuse, &env, 2000, out, &why, &st);
		rc[i][0] = rc[i][0] == -1 && WIFEXITED(st) &&
		    WEXITSTATUS(st) == 0 &&
		    strcmp(last_fail_dsn, "4.7.4") == 0 &&
		    strstr(buf_cstr(&why), "TLS is required") != NULL;
		buf_reset(&why);
		rc[i][1] = run(absent, &env, 2000, out, &why, &st);
		rc[i][1] = rc[i][1] == -1 && WIFEXITED(st) &&
		    WEXITSTATUS(st) == 0 &&
		    strcmp(last_fail_dsn, "4.7.4") == 0 &&
		    strstr(buf_cstr(&why), "does not offer STARTTLS") != NULL;
	}
	SSL_CTX_free(tls_ctx);
	tls_ctx = NULL;
	for (size_t i = 0; i < 3; i++) {
		tls_level = levels[i];
		buf_reset(&why);
		rc[i][2] = run(absent, &env, 2000, out, &why, &st) == -1 &&
		    strcmp(last_fail_dsn, "4.7.4") == 0 &&
		    strstr(buf_cstr(&why), "no TLS client context") != NULL;
	}
	tls_level = SMTP_TLS_MAY;
	buf_free(&why);
	for (size_t i = 0; i < 3; i++)
		for (size_t k = 0; k < 3; k++)
			if (!rc[i][k])
				T_FAIL_("level %d, case %zu: not refused with "
				    "4.7.4", (int)levels[i], k);
}

static void
test_size_without_value(void)
{
	static const struct step script[] = {
		{NULL, "220 x\r\n"},
		/* SIZE without a value: no limit, not the next line's 8 */
		{"EHLO", "250-x\r\n250-SIZE \r\n250 8BITMIME\r\n"},
		{"MAIL FROM:<a@a.test>", "250 ok\r\n"},
		{"RCPT TO:<bob@b.test>", "250 ok\r\n"},
		{"DATA", "354 go\r\n"},
		{"DATA-BODY", "250 ok\r\n"},
		{"QUIT", "221 bye\r\n"},
		{NULL, NULL},
	};
	struct smtp_envelope env = {.sender = "a@a.test", .rcpt = two,
	    .nrcpt = 1};

	T_ASSERT(run1(script, &env, OUTCOME_OK, NULL));
}

static void
test_data_2xx_defers(void)
{
	static const struct step script[] = {
		{NULL, "220 x\r\n"},
		{"EHLO", "250 x\r\n"},
		{"MAIL FROM:<a@a.test>", "250 ok\r\n"},
		{"RCPT TO:<bob@b.test>", "250 ok\r\n"},
		/* 250 to DATA: the content was never sent */
		{"DATA", "250 ok\r\n"},
		{"QUIT", "221 bye\r\n"},
		{NULL, NULL},
	};
	struct smtp_envelope env = {.sender = "a@a.test", .rcpt = two,
	    .nrcpt = 1};

	T_ASSERT(run1(script, &env, OUTCOME_DEFERRED, "4.5.0"));
}

static void
test_greeting_4xx_next_host(void)
{
	static const struct step script[] = {
		{NULL, "421 4.3.2 busy\r\n"},
		{NULL, NULL},
	};
	struct smtp_envelope env = {.sender = "a@a.test", .rcpt = two,
	    .nrcpt = 1};
	struct outcome out[1];
	struct buf why = BUF_INIT;
	int st;

	T_EQ_INT(run(script, &env, 2000, out, &why, &st), -1);
	T_ASSERT(strstr(buf_cstr(&why), "421 4.3.2 busy") != NULL);
	outcome_free(&out[0]);
	buf_free(&why);
}

static void
test_greeting_timeout(void)
{
	static const struct step script[] = {
		{NULL, "HANG"},
		{NULL, NULL},
	};
	struct smtp_envelope env = {.sender = "a@a.test", .rcpt = two,
	    .nrcpt = 1};
	struct outcome out[1];
	struct buf why = BUF_INIT;
	int st;

	T_EQ_INT(run(script, &env, 300, out, &why, &st), -1);
	T_ASSERT(strstr(buf_cstr(&why), "timed out") != NULL);
	outcome_free(&out[0]);
	buf_free(&why);
}

static void
test_lost_after_rcpt(void)
{
	static const struct step script[] = {
		{NULL, "220 x\r\n"},
		{"EHLO", "250 x\r\n"},
		{"MAIL", "250 ok\r\n"},
		{"RCPT TO:<bob@", "550 5.1.1 no\r\n"},
		{"RCPT TO:<reject@", "CLOSE"},
		{NULL, NULL},
	};
	struct smtp_envelope env = {.sender = "a@a.test", .rcpt = two,
	    .nrcpt = 2};
	struct outcome out[2];
	struct buf why = BUF_INIT;
	int st;

	T_EQ_INT(run(script, &env, 2000, out, &why, &st), 0);
	T_EQ_INT(out[0].status, OUTCOME_BOUNCED);
	T_EQ_INT(out[1].status, OUTCOME_DEFERRED);
	T_EQ_STR(out[1].dsn, "4.4.2");
	T_ASSERT(strstr(buf_cstr(&out[1].reason), "lost connection") != NULL);
	outcome_free(&out[0]);
	outcome_free(&out[1]);
	buf_free(&why);
}

/* session - a session against script (the server forked on a
 * socketpair); *pid_r and *fd_r to reap and close with session_end */
static struct smtp_session *
session(const struct step *script, struct smtp_client_conf *conf,
    struct smtp_envelope *env, pid_t *pid_r, int *fd_r)
{
	char path[] = "/tmp/herald-smtp-client-XXXXXX";
	struct smtp_client_info info = {.tls = BUF_INIT};
	struct buf why = BUF_INIT;
	struct smtp_session *s;
	int sv[2], bfd = mkstemp(path);

	if (bfd < 0 || unlink(path) < 0 ||
	    write(bfd, body_in, strlen(body_in)) != (ssize_t)strlen(body_in))
		abort();
	env->fd = bfd;
	env->off = 0;
	env->size = (off_t)strlen(body_in);
	*conf = (struct smtp_client_conf){
		.helo_name = "mx.a.test", .tls = SMTP_TLS_MAY,
		.helo_ms = 2000, .mail_ms = 2000, .rcpt_ms = 2000,
		.data_init_ms = 2000, .data_xfer_ms = 2000,
		.data_done_ms = 2000,
	};
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		abort();
	if ((*pid_r = fork()) == 0) {
		close(sv[0]);
		close(bfd);
		server(sv[1], script);
	}
	close(sv[1]);
	*fd_r = sv[0];
	s = smtp_client_open(sv[0], "mx.b.test", conf, &info, &why);
	if (s == NULL)
		fprintf(stderr, "  session: %s\n", buf_cstr(&why));
	buf_free(&info.tls);
	buf_free(&why);
	return s;
}

/* session_end - close s and the socket; the server's exit status */
static int
session_end(struct smtp_session **s, struct smtp_envelope *env, pid_t pid,
    int fd)
{
	int st = -1;

	smtp_client_close(s);
	close(fd);
	close(env->fd);
	if (waitpid(pid, &st, 0) != pid)
		abort();
	return st;
}

/* send1 - one transaction for the one recipient of env: its status, or
 * -1 when smtp_client_send said nothing was decided */
static int
send1(struct smtp_session *s, const struct smtp_client_conf *conf,
    const struct smtp_envelope *env)
{
	struct outcome out[1];
	struct buf why = BUF_INIT;
	int rc;

	outcome_init(&out[0]);
	rc = smtp_client_send(s, conf, env, out, &why) < 0 ? -1 :
	    (int)out[0].status;
	outcome_free(&out[0]);
	buf_free(&why);
	return rc;
}

static const char *const bob[] = {"bob@b.test"};

static void
test_session_two_transactions(void)
{
	static const struct step script[] = {
		{NULL, "220 x\r\n"},
		{"EHLO", "250-x\r\n250 PIPELINING\r\n"},
		{"MAIL FROM:<a@a.test>", NULL},
		{"RCPT TO:<bob@b.test>", "250 ok\r\n250 ok\r\n"},
		{"DATA", "354 go\r\n"},
		{"DATA-BODY", "250 2.0.0 first\r\n"},
		{"RSET", "250 2.0.0 ok\r\n"},
		{"MAIL FROM:<a@a.test>", NULL},
		{"RCPT TO:<bob@b.test>", "250 ok\r\n250 ok\r\n"},
		{"DATA", "354 go\r\n"},
		{"DATA-BODY", "250 2.0.0 second\r\n"},
		{"RSET", "250 2.0.0 ok\r\n"},
		{"QUIT", "221 bye\r\n"},
		{NULL, NULL},
	};
	struct smtp_envelope env = {.sender = "a@a.test", .rcpt = bob,
	    .nrcpt = 1};
	struct smtp_client_conf conf;
	struct smtp_session *s;
	pid_t pid;
	int fd, st;

	s = session(script, &conf, &env, &pid, &fd);
	T_ASSERT(s != NULL);
	T_EQ_INT(send1(s, &conf, &env), OUTCOME_OK);
	T_ASSERT(smtp_client_usable(s));
	T_EQ_INT(smtp_client_reset(s, &conf), 0);
	T_EQ_INT(send1(s, &conf, &env), OUTCOME_OK);
	T_EQ_INT(smtp_client_reset(s, &conf), 0);
	T_ASSERT(smtp_client_usable(s));
	st = session_end(&s, &env, pid, fd);
	T_CHILD_OK(st);
}

static void
test_session_rset_refused(void)
{
	static const struct step script[] = {
		{NULL, "220 x\r\n"},
		{"EHLO", "250 x\r\n"},
		{"MAIL FROM:<a@a.test>", "250 ok\r\n"},
		{"RCPT TO:<bob@b.test>", "250 ok\r\n"},
		{"DATA", "354 go\r\n"},
		{"DATA-BODY", "250 2.0.0 first\r\n"},
		{"RSET", "502 5.5.1 no RSET here\r\n"},
		{"QUIT", "221 bye\r\n"},
		{NULL, NULL},
	};
	struct smtp_envelope env = {.sender = "a@a.test", .rcpt = bob,
	    .nrcpt = 1};
	struct smtp_client_conf conf;
	struct smtp_session *s;
	pid_t pid;
	int fd, st;

	s = session(script, &conf, &env, &pid, &fd);
	T_ASSERT(s != NULL);
	T_EQ_INT(send1(s, &conf, &env), OUTCOME_OK);
	T_EQ_INT(smtp_client_reset(s, &conf), -1);
	st = session_end(&s, &env, pid, fd);
	T_CHILD_OK(st);
}

static void
test_session_421(void)
{
	/* 421 to the end of data: decided (deferred), never reused */
	static const struct step script[] = {
		{NULL, "220 x\r\n"},
		{"EHLO", "250 x\r\n"},
		{"MAIL FROM:<a@a.test>", "250 ok\r\n"},
		{"RCPT TO:<bob@b.test>", "250 ok\r\n"},
		{"DATA", "354 go\r\n"},
		{"DATA-BODY", "421 4.3.2 shutting down\r\n"},
		{NULL, NULL},
	};
	/* 421 to MAIL on a session: nothing decided, -1 */
	static const struct step script2[] = {
		{NULL, "220 x\r\n"},
		{"EHLO", "250 x\r\n"},
		{"MAIL FROM:<a@a.test>", "421 4.4.2 idle too long\r\n"},
		{NULL, NULL},
	};
	struct smtp_envelope env = {.sender = "a@a.test", .rcpt = bob,
	    .nrcpt = 1};
	struct smtp_client_conf conf;
	struct smtp_session *s;
	pid_t pid;
	int fd, st;

	s = session(script, &conf, &env, &pid, &fd);
	T_ASSERT(s != NULL);
	T_EQ_INT(send1(s, &conf, &env), OUTCOME_DEFERRED);
	T_ASSERT(!smtp_client_usable(s));
	T_EQ_INT(smtp_client_reset(s, &conf), -1);
	st = session_end(&s, &env, pid, fd);
	T_CHILD_OK(st);

	s = session(script2, &conf, &env, &pid, &fd);
	T_ASSERT(s != NULL);
	T_EQ_INT(send1(s, &conf, &env), -1);
	T_ASSERT(!smtp_client_usable(s));
	st = session_end(&s, &env, pid, fd);
	T_CHILD_OK(st);
}

static void
test_session_closed_while_idle(void)
{
	/* the server closes an idle session: not usable; and MAIL on it
	 * anyway is "nothing decided" (-1), not a deferral */
	static const struct step script[] = {
		{NULL, "220 x\r\n"},
		{"EHLO", "250 x\r\n"},
		{NULL, "CLOSE"},
	};
	struct smtp_envelope env = {.sender = "a@a.test", .rcpt = bob,
	    .nrcpt = 1};
	struct smtp_client_conf conf;
	struct smtp_session *s;
	pid_t pid;
	int fd, st;

	s = session(script, &conf, &env, &pid, &fd);
	T_ASSERT(s != NULL);
	if (waitpid(pid, &st, 0) != pid)
		abort();
	T_CHILD_OK(st);
	T_ASSERT(!smtp_client_usable(s));
	T_EQ_INT(send1(s, &conf, &env), -1);
	smtp_client_close(&s);
	close(fd);
	close(env.fd);
}

static const struct test_case cases[] = {
	{"session: two transactions with RSET between",
	    test_session_two_transactions},
	{"session: RSET refused, not reused", test_session_rset_refused},
	{"session: 421 is never reused; 421 to MAIL decides nothing",
	    test_session_421},
	{"session: closed while idle", test_session_closed_while_idle},
	{"pipelined MAIL/RCPT, dot-stuffing, 250 and 550", test_pipelined},
	{"HELO fallback, no extensions, 4xx defers",
	    test_helo_fallback_and_dsn_off},
	{"DSN parameters passed on", test_dsn_params},
	{"SIZE over the limit bounces before MAIL", test_size_fails_fast},
	{"8-bit to a 7-bit server: converted or bounced; SMTPUTF8",
	    test_eightbit_and_utf8},
	{"STARTTLS refused: the EHLO extensions still count",
	    test_starttls_refused_keeps_ehlo},
	{"no AUTH in plaintext", test_no_auth_in_plaintext},
	{"encrypt, verify, dane: no STARTTLS, no session",
	    test_required_levels},
	{"SIZE without a value is no limit", test_size_without_value},
	{"2xx to DATA defers", test_data_2xx_defers},
	{"4xx greeting: next host", test_greeting_4xx_next_host},
	{"greeting timeout", test_greeting_timeout},
	{"connection lost after RCPT", test_lost_after_rcpt},
	{0},
};

int
main(void)
{
	signal(SIGPIPE, SIG_IGN);
	return test_run(cases);
}
