/*
 * smtpd - herald's SMTP server: receives mail for the hosted domains, and
 * mail from the organisation's users (submission, SMTP AUTH).
 *
 * SYNOPSIS
 *	smtpd [-c config] [-f] [-v]
 *
 * DESCRIPTION
 *	smtpd is started by master, never by hand: it serves the listeners
 *	master opened (LISTEN_FDS, named "smtp", "submission",
 *	"submissions", and "submit": the UNIX socket <run_directory>/submit
 *	of local submission, which sendmail uses; see below). The listener
 *	decides a session's role: mx (smtpd_listen, port 25), submission
 *	(submission_listen, 587: AUTH only after STARTTLS), submissions
 *	(submissions_listen, 465: implicit TLS), local. One smtpd process
 *	serves many sessions at once from one event loop; master runs
 *	smtpd_workers of them (one per core by default).
 *
 *	For each message smtpd checks every recipient against the directory,
 *	writes one queue file into the spool's incoming/ folder, makes it
 *	durable (file and folder fsynced, batched across the sessions of a
 *	worker by a commit thread), and only then answers 250. It then tells
 *	qmgr about the new file; if qmgr cannot be reached, qmgr's periodic
 *	queue scan finds the message instead.
 *
 *	Supported: RFC 5321 (EHLO, HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT,
 *	VRFY, EXPN, HELP), PIPELINING (RFC 2920), SIZE (RFC 1870), 8BITMIME
 *	(RFC 6152), ENHANCEDSTATUSCODES (RFC 2034), CHUNKING/BDAT (RFC 3030),
 *	STARTTLS (RFC 3207), DSN parameters (RFC 3461: stored in the queue
 *	file), SMTPUTF8 (RFC 6531). VRFY never says whether a user exists;
 *	EXPN is refused. BINARYMIME is refused with 504.
 *
 * SECURITY
 *	smtpd talks to anybody on the internet. It never binds a port itself:
 *	master passes the listeners, and smtpd drops to herald_user (joining
 *	directory_group to read the directory) before it reads a byte from
 *	the network; the TLS key is loaded before the drop. smtpd writes only
 *	to <spool>/incoming/ and reads the directory, never passwords.
 *
 *	herald is never an open relay: a recipient in a domain that is not
 *	hosted here is refused with 554 5.7.1 unless the session logged in
 *	with SMTP AUTH (only on the submission roles; smtpd_auth.c), the
 *	client is in mynetworks, or it is local submission. The one
 *	exception: RCPT TO an SRS address of srs_domain whose hash (keyed
 *	with srs_secret_file, which only herald_user reads) and age are
 *	good is a bounce to mail we forwarded, and is relayed to the
 *	address it stands for (smtpd_check_srs; 550 5.1.1 when forged or
 *	expired). On the
 *	submission roles MAIL needs a login (530 5.7.0); a logged-in user
 *	may only use senders that lead to the login (smtpd_sender_login,
 *	553 5.7.1) and is bounded per hour over all workers
 *	(submission_message_rate_limit, submission_recipient_rate_limit,
 *	451 4.7.1). Passwords go to authd (auth_client) and are never
 *	logged. Local submission: a session on the "submit"
 *	socket comes from a user of this machine (sendmail), whose uid the
 *	kernel tells (SO_PEERCRED); it may send anywhere, is logged as
 *	"client=local, uid=N" and gets "Received: from local (uid N)".
 *
 *	Every input has a bound: command lines (smtpd_line_limit), message
 *	size (message_size_limit, also enforced while reading, not only via
 *	SIZE=), recipients (smtpd_recipient_limit), errors per session
 *	(smtpd_error_limit; the 421 is final: nothing pipelined after it is
 *	read or answered), sessions per client address (smtpd_client_limit)
 *	and per local user on the submit socket (smtpd_submit_uid_limit),
 *	both counted over all smtpd workers through the client table master
 *	passes (mail/peertab.h), sessions per worker (all three checked at
 *	accept, before anything is made for the connection), commands that
 *	do no mail work (smtpd_junk_command_limit, per message), bytes
 *	without a line feed (64 KB), the TLS handshake
 *	(tls_handshake_timeout), idle and total time.
 *	Spool space: a transaction reserves its SIZE= (else
 *	message_size_limit) from MAIL until its end, and MAIL needs the free
 *	space less this worker's reservations to be 1.5 times that plus
 *	queue_minfree (smtpd_space.c); open transactions per client address
 *	are bounded over all workers (smtpd_client_transaction_limit), and
 *	while content is open the client must keep up smtpd_min_data_rate
 *	(with smtpd_data_rate_window of credit) or get 421 and lose the
 *	file, so stalled or trickling DATA cannot hold the spool.
 *	Message content must use CRLF line ends: a bare CR or LF rejects
 *	the message, and only CRLF.CRLF ends DATA, which closes the SMTP
 *	smuggling hole. Plaintext pipelined behind STARTTLS is discarded.
 *	Verbs of other protocols (GET, POST, CONNECT, "Host:") end the
 *	session at once.
 *
 *	DKIM: smtpd never holds a private key. Mail of a session that may
 *	relay (logged in, sendmail, mynetworks) whose first From: address
 *	is in a hosted domain is signed by the signer service before it is
 *	committed (smtpd_sign.c): the body is hashed as it arrives, the
 *	signer gets the header block and the hash and answers the
 *	DKIM-Signature fields, which go above the header in the queue file.
 *	No key for the domain: unsigned. Signer unreachable or silent for
 *	signer_timeout: 451 4.3.0, nothing queued. Mail from anybody else
 *	(port 25 from the internet) is never signed.
 *
 * PROTOCOLS
 *	SMTP on the listeners. To qmgr: fire-and-forget trigger frames
 *	{request=trigger, queue_id=QID} on <spool>/private/qmgr (see
 *	smtpd_trigger.c). To the signer: one request per message to sign on
 *	<spool>/private/signer (see signer/signer.c).
 *
 * LOGGING
 *	connect from [ip]
 *	QID: client=[ip], helo=<name>
 *	QID: DKIM signed
 *	QID: from=<sender>, size=N, nrcpt=N
 *	NOQUEUE: reject: RCPT from [ip]: 550 5.1.1 ...; from=<a> to=<b>
 *	    proto=ESMTP helo=<h>
 *	disconnect from [ip] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5
 *	(name=ok/total where some attempts failed)
 *
 * CONFIGURATION
 *	myhostname, smtpd_banner, message_size_limit,
 *	smtpd_recipient_limit, smtpd_line_limit, smtpd_error_limit,
 *	smtpd_client_limit, smtpd_submit_uid_limit, smtpd_max_sessions,
 *	smtpd_idle_timeout, smtpd_session_timeout, queue_minfree,
 *	smtpd_client_transaction_limit, smtpd_min_data_rate,
 *	smtpd_data_rate_window, smtpd_junk_command_limit,
 *	submission_listen, submissions_listen, mynetworks,
 *	smtpd_sender_login, submission_received_client,
 *	submission_message_rate_limit, submission_recipient_rate_limit,
 *	auth_plaintext (always: AUTH on 587 before STARTTLS too),
 *	tls_handshake_timeout, tls_cert_file,
 *	tls_key_file (both set: STARTTLS offered), spool_directory,
 *	data_directory,
 *	recipient_delimiter, mydomain and myhostname (domain of a bare
 *	<postmaster>: mydomain, else myhostname if hosted, else the first
 *	hosted domain), postmaster_address (who gets postmaster@ a domain
 *	without a user or alias of that name; else the domain's first user),
 *	herald_user, directory_group, signer_timeout.
 *
 * SIGNALS
 *	SIGTERM (master sends it on stop): stop accepting. Sessions are not
 *	cut off: transactions in progress finish and clients may go on, but
 *	a session that stays idle for 5 seconds gets "421 4.3.2 Service
 *	shutting down"; the worker exits after stop_timeout with whatever
 *	is left.
 *	SIGUSR1 (master sends it on reload, having started the new
 *	workers): stop accepting; the sessions go on unhurried under
 *	smtpd_idle_timeout and smtpd_session_timeout, and the worker exits
 *	after the last one.
 */
#include <stddef.h>
#include <string.h>

#include "base/log.h"
#include "mail/params.h"
#include "mail/service.h"
#include "smtpd.h"

/* smtpd_pre_drop - load the TLS key while it is still readable */
static void
smtpd_pre_drop(struct service *svc)
{
	smtpd_tls_ctx = service_tls_server_ctx();
}

/* smtpd_init - per worker, after the privilege drop */
static void
smtpd_init(struct service *svc)
{
	smtpd_session_init(svc, service_loop(svc));
	smtpd_check_init();
	smtpd_trigger_init(service_loop(svc));
	smtpd_commit_init(service_loop(svc));
	if (smtpd_tls_ctx == NULL && service_has_listener(svc, "submissions"))
		msg_warn("tls_cert_file is empty: connections to the "
		    "submissions listeners will be closed, and submission "
		    "cannot offer AUTH");
}

/* smtpd_accept - one new client connection; its listener decides
 * its role */
static void
smtpd_accept(struct service *svc, int fd, const struct service_listener *l)
{
	enum smtpd_role role = SMTPD_ROLE_MX;

	if (strcmp(l->name, "submit") == 0)
		role = SMTPD_ROLE_LOCAL;
	else if (strcmp(l->name, "submission") == 0)
		role = SMTPD_ROLE_SUBMISSION;
	else if (strcmp(l->name, "submissions") == 0)
		role = SMTPD_ROLE_SUBMISSIONS;
	smtpd_session_accept(svc, fd, role);
}

/* smtpd_stop - SIGTERM: close idle sessions, let others finish */
static void
smtpd_stop(struct service *svc)
{
	smtpd_session_stop(svc);
}

int
main(int argc, char **argv)
{
	return service_main(argc, argv, &(const struct service_def){
		.name = "smtpd",
		.model = SERVICE_EVENT,	/* one loop, many sessions */
		.user = &var_herald_user,
		.reads_directory = true,
		.pre_drop = smtpd_pre_drop,
		.init = smtpd_init,
		.accept = smtpd_accept,
		.stop = smtpd_stop,
	});
}
