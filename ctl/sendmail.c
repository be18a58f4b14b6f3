/*
 * sendmail - the sendmail(1) command of herald: how local programs (cron,
 * mail(1), web applications, git) send mail.
 *
 * SYNOPSIS
 *	sendmail [-t] [-i] [-f sender] [-F fullname] [-C config] [address ...]
 *
 * DESCRIPTION
 *	The message is read from standard input (LF or CRLF line ends; a
 *	line with a single "." ends it unless -i or -oi is given) and handed
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
 * EXIT STATUS (sysexits.h)
 *	0 queued; 64 usage; 65 message too large or malformed; 67 a
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
	    sender = BUF_INIT, path = BUF_INIT, one = BUF_INIT;
	struct sendmail_opts o;
	struct submit_msg m;
	struct passwd *pw;
	const char **rcpts;
	size_t nhdr = 0, n = 0;
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
	srandom((unsigned)time(NULL) ^ (unsigned)getpid());

	buf_reset(&why);
	if (sendmail_read(stdin, o.dot_ends, (size_t)var_message_size_limit,
	    &msg, &why) < 0)
		return sendmail_fail(EX_DATAERR, buf_cstr(&why));
	if (o.header_rcpts)
		sendmail_header_rcpts(&msg, &hdr, &nhdr);

	/* the envelope sender */
	if (o.sender != NULL) {
		if (*o.sender == '\0' || strcmp(o.sender, "<>") == 0)
			buf_set(&sender, "");
		else
			sendmail_qualify(o.sender, var_myhostname, &sender);
	} else if ((pw = getpwuid(getuid())) != NULL) {
		sendmail_qualify(pw->pw_name, var_myhostname, &sender);
	} else {
		return sendmail_fail(EX_OSERR, "who are you? (no passwd "
		    "entry for this uid)");
	}

	/* recipients: arguments, then the header's (-t), all qualified */
	rcpts = calloc((size_t)o.nrcpt + nhdr + 1, sizeof(*rcpts));
	if (rcpts == NULL)
		return sendmail_fail(EX_OSERR, "out of memory");
	for (int i = 0; i < o.nrcpt; i++) {
		sendmail_qualify(o.rcpts[i], var_myhostname, &one);
		rcpts[n++] = strdup(buf_cstr(&one));
	}
	for (size_t i = 0, off = 0; i < nhdr; i++) {
		sendmail_qualify(hdr.data + off, var_myhostname, &one);
		rcpts[n++] = strdup(buf_cstr(&one));
		off += strlen(hdr.data + off) + 1;
	}
	for (size_t i = 0; i < n; i++)
		if (rcpts[i] == NULL)
			return sendmail_fail(EX_OSERR, "out of memory");
	if (n == 0)
		return sendmail_fail(EX_USAGE, "no recipients in the message "
		    "header");

	sendmail_complete(&msg, *buf_cstr(&sender) ? buf_cstr(&sender) :
	    "MAILER-DAEMON", o.fullname, var_myhostname);
	memset(&m, 0, sizeof(m));
	m.sender = buf_cstr(&sender);
	m.rcpts = rcpts;
	m.nrcpt = n;
	m.data = msg.data;
	m.len = msg.len;
	m.helo = "localhost";
	submit_socket_path(&path);
	buf_reset(&why);
	r = submit_send(buf_cstr(&path), &m, SENDMAIL_TIMEOUT_MS, &why);
	code = sendmail_exit_code(r);
	if (r != SUBMIT_OK)
		(void)sendmail_fail(code, buf_cstr(&why));
	for (size_t i = 0; i < n; i++)
		free((void *)rcpts[i]);
	free(rcpts);
	buf_free(&why);
	buf_free(&msg);
	buf_free(&hdr);
	buf_free(&sender);
	buf_free(&path);
	buf_free(&one);
	return code;
}
