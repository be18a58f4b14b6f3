/*
 * sendmail - the sendmail(1) command of herald: how local programs (cron,
 * mail(1), web applications, git) send mail.
 *
 * SYNOPSIS
 *	sendmail [-t] [-i] [-f sender] [-F fullname] [-C config] [address ...]
 *	sendmail -bp | mailq
 *	sendmail -q
 *	sendmail -bs
 *	sendmail -bv address ...
 *	sendmail -bi | sendmail -I | newaliases
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
 *	-bm is the default mode; other options of Postfix's sendmail (-oX,
 *	-N, -R, -V, -B, -v ...) are accepted and mean nothing here.
 *
 *	The other modes, as Postfix and Debian's other MTAs have them
 *	(the program called mailq is -bp, newaliases is -bi):
 *	-bp	the queue, as "heraldctl queue list" prints it (the same
 *		code); it reads the spool, so only root and herald's user
 *		may.
 *	-q	retry every deferred message now, as "heraldctl queue
 *		flush": a request to qmgr's socket, which only root and
 *		herald's user can reach (Postfix lets anyone flush; herald
 *		keeps the queue its admins'). -q with an interval or a
 *		selection (-q30m, -qR) is refused.
 *	-bs	an SMTP session on standard input and output, carried byte
 *		for byte to the local submission socket: smtpd sees the
 *		caller's uid as for any local submission.
 *	-bv	for each address, whether herald would deliver it and
 *		where, found in the directory as qmgr and local find it;
 *		nothing is sent.
 *	-bi, -I	aliases live in herald's directory (heraldctl alias) and
 *		apply at once: one line says so, and the exit status is 0,
 *		so that packages that call newaliases do not fail.
 *	Other modes (-bd, -bD, -bh, -bt ...) are refused (exit 64).
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
 *	76 an unexpected answer; 78 a bad configuration. -bp, -q: 0 done,
 *	75 herald is not running (-q), 77 not allowed, 69 failed. -bs: 0
 *	when smtpd ended the session, 75 herald is not running or the
 *	session stalled, 74 standard input or output failed. -bv: 0 every
 *	address is deliverable, 67 one is not, 75 one cannot be checked
 *	now.
 */
#include <dirent.h>
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/sock.h"
#include "mail/addr.h"
#include "mail/dir.h"
#include "mail/params.h"
#include "mail/spool.h"
#include "mail/submit.h"
#include "ctl.h"
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

/* sendmail_deliver - -bm: send the message on standard input */
static int
sendmail_deliver(const struct sendmail_opts *opts)
{
	struct buf why = BUF_INIT, msg = BUF_INIT, hdr = BUF_INIT,
	    from = BUF_INIT, path = BUF_INIT;
	struct sendmail_opts o = *opts;
	struct sendmail_env env;
	struct submit_msg m;
	struct passwd *pw = NULL;
	size_t nhdr = 0;
	enum submit_result r;
	int code;

	if (o.sender == NULL && (pw = getpwuid(getuid())) == NULL)
		return sendmail_fail(EX_OSERR, "who are you? (no passwd entry "
		    "for this uid)");
	srandom((unsigned)time(NULL) ^ (unsigned)getpid());

	if (sendmail_read(stdin, o.dot_ends, (size_t)var_message_size_limit,
	    &msg, &why) < 0) {
		code = sendmail_fail(EX_DATAERR, buf_cstr(&why));
		goto out;
	}
	if (o.header_rcpts)
		sendmail_header_rcpts(&msg, &hdr, &nhdr);

	/* every address checked before any goes into a command line */
	if ((code = sendmail_env_build(&o, o.sender == NULL ? pw->pw_name :
	    NULL, &hdr, nhdr, var_myhostname, &env, &why)) != 0) {
		sendmail_env_free(&env);
		(void)sendmail_fail(code, buf_cstr(&why));
		goto out;
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
out:
	buf_free(&why);
	buf_free(&msg);
	buf_free(&hdr);
	buf_free(&from);
	buf_free(&path);
	return code;
}

/* sendmail_queue_readable - may the caller read the queue? 0, or an
 * exit code after a message */
static int
sendmail_queue_readable(void)
{
	struct buf path = BUF_INIT;
	DIR *dp;
	int rc = EX_OK;

	buf_printf(&path, "%s/%s", var_spool_directory, SPOOL_INCOMING);
	if ((dp = opendir(buf_cstr(&path))) != NULL)
		(void)closedir(dp);
	else if (errno == EACCES)
		rc = EX_NOPERM;
	if (rc != EX_OK)
		fprintf(stderr, "%s: cannot read the queue in %s: %s (only "
		    "root and herald's user may)\n", ctl_progname,
		    var_spool_directory, strerror(EACCES));
	buf_free(&path);
	return rc;
}

/* sendmail_list - -bp, mailq: the queue as heraldctl queue list has it */
static int
sendmail_list(const struct sendmail_opts *o)
{
	struct ctl ctl = {o->config, params_config_path(o->config), false};
	struct ctl_args a;
	int rc;

	if ((rc = sendmail_queue_readable()) != EX_OK)
		return rc;
	memset(&a, 0, sizeof(a));
	rc = ctl_queue_list(&ctl, &a);
	if (fflush(stdout) == EOF)
		return EX_IOERR;
	return rc == CTL_EXIT_OK ? EX_OK : EX_UNAVAILABLE;
}

/* sendmail_flush - -q: retry the deferred mail, as heraldctl queue flush */
static int
sendmail_flush(const struct sendmail_opts *o)
{
	struct ctl ctl = {o->config, params_config_path(o->config), false};
	struct buf path = BUF_INIT;
	struct ctl_args a;
	int rc;

	/* qmgr's socket is in the private folder: nobody else may ask */
	spool_socket_path(&path, var_spool_directory, "qmgr");
	if (access(buf_cstr(&path), W_OK) < 0 && errno == EACCES) {
		fprintf(stderr, "sendmail: -q: only root and herald's user may "
		    "flush the queue (%s: %s)\n", buf_cstr(&path),
		    strerror(errno));
		buf_free(&path);
		return EX_NOPERM;
	}
	buf_free(&path);
	memset(&a, 0, sizeof(a));
	rc = ctl_queue_flush(&ctl, &a);
	if (fflush(stdout) == EOF)
		return EX_IOERR;
	return rc == CTL_EXIT_OK ? EX_OK : rc == CTL_EXIT_NOT_RUNNING ?
	    EX_TEMPFAIL : EX_UNAVAILABLE;
}

/* sendmail_smtp - -bs: the caller speaks SMTP with smtpd through us */
static int
sendmail_smtp(void)
{
	static const char down[] = "421 4.3.2 herald is not running, try "
	    "again later\r\n";
	struct buf path = BUF_INIT, why = BUF_INIT;
	int fd, r;

	(void)signal(SIGPIPE, SIG_IGN);
	submit_socket_path(&path);
	if ((fd = sock_connect_unix(buf_cstr(&path), false, &why)) < 0) {
		/* the caller waits for a greeting: give it the answer */
		ssize_t w = write(STDOUT_FILENO, down, sizeof(down) - 1);

		(void)w;	/* a failure changes nothing: the exit
				 * status says it too */
		fprintf(stderr, "sendmail: herald is not running (%s)\n",
		    buf_cstr(&why));
		buf_free(&path);
		buf_free(&why);
		return EX_TEMPFAIL;
	}
	r = sendmail_relay(STDIN_FILENO, STDOUT_FILENO, fd,
	    SENDMAIL_TIMEOUT_MS, &why);
	(void)close(fd);
	if (r < 0)
		fprintf(stderr, "sendmail: -bs: %s\n", buf_cstr(&why));
	buf_free(&path);
	buf_free(&why);
	return r == 0 ? EX_OK : r == -2 ? EX_TEMPFAIL : EX_IOERR;
}

/* sendmail_verify - -bv: one line per address; nothing is sent */
static int
sendmail_verify(const struct sendmail_opts *o)
{
	struct buf why = BUF_INIT, addr = BUF_INIT, line = BUF_INIT;
	struct dir *d = NULL;
	int code = EX_OK;

	if (dir_open(var_data_directory, DIR_READ, &d, &why) < 0) {
		fprintf(stderr, "sendmail: -bv: cannot read the directory: "
		    "%s\n", buf_cstr(&why));
		buf_free(&why);
		return EX_TEMPFAIL;
	}
	for (int i = 0; i < o->nrcpt; i++) {
		buf_reset(&addr);
		buf_reset(&why);
		buf_reset(&line);
		if (sendmail_env_address(o->rcpts[i], 0, var_myhostname,
		    &addr, &why) < 0) {
			buf_printf(&line, "%s: undeliverable: %s",
			    o->rcpts[i], buf_cstr(&why));
			for (size_t j = 0; j < line.len; j++)
				if ((unsigned char)line.data[j] < 0x20 ||
				    line.data[j] == 0x7f)
					line.data[j] = '?';
			if (code == EX_OK)
				code = EX_NOUSER;
		} else {
			switch (sendmail_verify_addr(d, buf_cstr(&addr),
			    &line)) {
			case SENDMAIL_VERIFY_OK:
				break;
			case SENDMAIL_VERIFY_UNDELIVERABLE:
				if (code == EX_OK)
					code = EX_NOUSER;
				break;
			case SENDMAIL_VERIFY_DEFERRED:
				code = EX_TEMPFAIL;
				break;
			}
		}
		printf("%s\n", buf_cstr(&line));
	}
	dir_close(&d);
	buf_free(&why);
	buf_free(&addr);
	buf_free(&line);
	if (fflush(stdout) == EOF)
		return EX_IOERR;
	return code;
}

int
main(int argc, char **argv)
{
	struct ctl ctl = {NULL, NULL, false};
	struct buf why = BUF_INIT;
	struct sendmail_opts o;
	const char *base;
	int code;

	if (sendmail_parse_opts(argc, argv, &o, &why) < 0) {
		fprintf(stderr, "sendmail: %s\nusage: sendmail [-t] [-i] "
		    "[-f sender] [-F fullname] [-C config] [address ...]\n"
		    "       sendmail -bp | -q | -bs | -bi | -bv address ...\n",
		    buf_cstr(&why));
		buf_free(&why);
		return EX_USAGE;
	}
	if (o.refuse != NULL)
		return sendmail_fail(EX_USAGE, o.refuse);
	if (o.mode == SENDMAIL_ALIASES) {
		/* nothing to rebuild; packages that call it must not fail */
		printf("newaliases: herald keeps aliases in its directory, "
		    "where changes apply at once; there is nothing to rebuild "
		    "(see \"heraldctl alias list\", \"heraldctl alias "
		    "add\")\n");
		return fflush(stdout) == EOF ? EX_IOERR : EX_OK;
	}
	base = argc > 0 && argv[0] != NULL ? argv[0] : "sendmail";
	if (strrchr(base, '/') != NULL)
		base = strrchr(base, '/') + 1;
	ctl_progname = strcmp(base, "mailq") == 0 ? "mailq" : "sendmail";
	/* a typo in herald.conf must not stop cron's mail: as heraldctl's
	 * reading commands, go on with the running or the good settings */
	ctl.config_arg = o.config;
	if (ctl_config_load_as(&ctl, CTL_CONF_READS, &why) < 0) {
		code = sendmail_fail(EX_CONFIG, buf_cstr(&why));
		buf_free(&why);
		return code;
	}
	buf_free(&why);
	switch (o.mode) {
	case SENDMAIL_LIST:
		return sendmail_list(&o);
	case SENDMAIL_FLUSH:
		return sendmail_flush(&o);
	case SENDMAIL_SMTP:
		return sendmail_smtp();
	case SENDMAIL_VERIFY:
		return sendmail_verify(&o);
	default:
		return sendmail_deliver(&o);
	}
}
