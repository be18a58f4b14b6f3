/*
 * sendmail - the sendmail(1) command of herald: how local programs (cron,
 * mail(1), web applications, git) send mail.
 *
 * SYNOPSIS
 *	sendmail [-t] [-i] [-f sender] [-F fullname] [-C config] [address ...]
 *
 * DESCRIPTION
 *	The message is read from standard input (a line with a single "."
 *	ends it unless -i or -oi is given; line ends may be CRLF, LF or a
 *	bare CR, as progress bars in cron output have, and all become
 *	CRLF, so no message is refused for its line ends) and handed
 *	to smtpd over <run_directory>/submit, the local submission socket
 *	that master opens for every local user. smtpd learns the sender's
 *	uid from the kernel, checks the message like any other and answers
 *	only once it is queued on disk: when sendmail exits 0 the mail is
 *	safe. Local users may send to any domain.
 *
 *	Recipients are the arguments; with -t also the addresses of the
 *	To:, Cc: and Bcc: fields (Bcc: is removed). An address without a
 *	domain gets "@myhostname". The envelope sender is -f (or -r), else
 *	the invoking user's login name at myhostname. A message without
 *	From:, Date: or Message-ID: gets them (From: with -F's full name).
 *	-bm is the default mode; -bp, -bs, -bv and -q are refused with a
 *	pointer to heraldctl; other options of Postfix's sendmail (-oX, -N,
 *	-R, -V, -B, -v ...) are accepted and mean nothing here.
 *
 * SECURITY
 *	sendmail runs with the caller's privileges and gets no more than a
 *	socket anyone may use; smtpd checks what arrives as from any
 *	client. But programs hand untrusted text to sendmail as arguments
 *	(a web form's address as -f or a recipient), and an address is
 *	written into a MAIL FROM or RCPT TO line: a CR or LF in it would
 *	end that command and make the rest commands of their own. So every
 *	address is checked with smtpd's address parser (local@domain,
 *	<local@domain>, or a login name; no control character) before
 *	anything is sent, and lib/mail/submit.c refuses control characters
 *	in what it writes again.
 *
 * EXIT STATUS (sysexits.h)
 *	0 queued; 64 usage, or a bad address on the command line; 65 the
 *	message is too large, or an address in its header (-t) is bad; 67 a
 *	recipient was refused; 69 the message was refused; 75 herald is not
 *	running or answered with a temporary error (try again later);
 *	76 an unexpected answer; 78 a bad configuration.
 */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/config.h"
#include "mail/addr.h"
#include "mail/params.h"
#include "mail/submit.h"
#include "sendmail.h"

#define SENDMAIL_TIMEOUT_MS (5 * 60 * 1000)

/* sendmail_fail - "sendmail: text" on stderr; returns code */
static int
sendmail_fail(int code, const char *text)
{
	fprintf(stderr, "sendmail: %s\n", text);
	return code;
}

/* sendmail_exit_code - sysexits value of a submission result */
static int
sendmail_exit_code(enum submit_result r)
{
	switch (r) {
	case SUBMIT_OK:
		return EX_OK;
	case SUBMIT_NOT_RUNNING:
	case SUBMIT_TEMPFAIL:
		return EX_TEMPFAIL;
	case SUBMIT_RCPT_REJECTED:
		return EX_NOUSER;
	case SUBMIT_REJECTED:
		return EX_UNAVAILABLE;
	case SUBMIT_BAD_INPUT:
		return EX_DATAERR;
	case SUBMIT_PROTOCOL:
		break;
	}
	return EX_PROTOCOL;
}

int
main(int argc, char **argv)
{
	struct buf why = BUF_INIT, msg = BUF_INIT, hdr = BUF_INIT,
	    from = BUF_INIT, path = BUF_INIT;
	struct sendmail_opts o;
	struct sendmail_env env;
	struct submit_msg m;
	struct passwd *pw = NULL;
	size_t nhdr = 0;
	enum submit_result r;
	int code;

	if (sendmail_parse_opts(argc, argv, &o, &why) < 0) {
		fprintf(stderr, "sendmail: %s\nusage: sendmail [-t] [-i] "
		    "[-f sender] [-F fullname] [-C config] [address ...]\n",
		    buf_cstr(&why));
		return EX_USAGE;
	}
	if (o.refuse != NULL)
		return sendmail_fail(EX_USAGE, o.refuse);
	if (params_load(params_config_path(o.config), &why) < 0)
		return sendmail_fail(EX_CONFIG, buf_cstr(&why));
	if (o.sender == NULL && (pw = getpwuid(getuid())) == NULL)
		return sendmail_fail(EX_OSERR, "who are you? (no passwd entry "
		    "for this uid)");
	srandom((unsigned)time(NULL) ^ (unsigned)getpid());

	buf_reset(&why);
	if (sendmail_read(stdin, o.dot_ends, (size_t)var_message_size_limit,
	    &msg, &why) < 0)
		return sendmail_fail(EX_DATAERR, buf_cstr(&why));
	if (o.header_rcpts)
		sendmail_header_rcpts(&msg, &hdr, &nhdr);

	/* every address checked before any goes into a command line */
	if ((code = sendmail_env_build(&o, o.sender == NULL ? pw->pw_name :
	    NULL, &hdr, nhdr, var_myhostname, &env, &why)) != 0) {
		sendmail_env_free(&env);
		return sendmail_fail(code, buf_cstr(&why));
	}
	if (env.sender.len > 0)
		addr_externalize(&from, buf_cstr(&env.sender));
	else
		buf_set(&from, "MAILER-DAEMON");
	sendmail_complete(&msg, buf_cstr(&from), o.fullname, var_myhostname);

	memset(&m, 0, sizeof(m));
	m.sender = buf_cstr(&env.sender);
	m.rcpts = (const char *const *)env.rcpt;
	m.nrcpt = env.nrcpt;
	m.data = msg.data;
	m.len = msg.len;
	m.helo = "localhost";
	submit_socket_path(&path);
	buf_reset(&why);
	r = submit_send(buf_cstr(&path), &m, SENDMAIL_TIMEOUT_MS, &why);
	code = sendmail_exit_code(r);
	if (r != SUBMIT_OK)
		(void)sendmail_fail(code, buf_cstr(&why));
	sendmail_env_free(&env);
	buf_free(&why);
	buf_free(&msg);
	buf_free(&hdr);
	buf_free(&from);
	buf_free(&path);
	return code;
}
