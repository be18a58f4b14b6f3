/*
 * pop3d - herald's POP3 server: lets users download and delete the mail
 * in their INBOX.
 *
 * SYNOPSIS
 *	pop3d [-c config] [-f] [-v]
 *
 * DESCRIPTION
 *	pop3d is started by master, never by hand: it serves the listeners
 *	master opened, "pop3" (pop3d_listen: plaintext with STLS) and
 *	"pop3s" (pop3s_listen: TLS from the first byte). One pop3d process
 *	serves many sessions from one event loop; master runs pop3d_workers
 *	of them.
 *
 *	After a successful login pop3d locks the user's Maildir (another
 *	session of the same user gets "-ERR [IN-USE]"), moves new mail from
 *	new/ to cur/ and takes a snapshot of the INBOX: message numbers,
 *	sizes (octets with CRLF line ends) and unique ids refer to it for
 *	the rest of the session. Messages deleted with DELE are removed
 *	only when the client ends with QUIT; a dropped connection, a
 *	timeout or a server stop deletes nothing.
 *
 *	Supported: RFC 1939 (USER PASS STAT LIST RETR DELE NOOP RSET QUIT
 *	TOP UIDL; no APOP), RFC 2449 (CAPA, RESP-CODES, AUTH-RESP-CODE,
 *	PIPELINING), RFC 3206 response codes ([AUTH], [SYS/TEMP],
 *	[SYS/PERM], [IN-USE]), RFC 2595 (STLS) and implicit TLS on pop3s,
 *	RFC 5034 (AUTH PLAIN and LOGIN, with or without an initial
 *	response; "AUTH" alone lists the mechanisms).
 *
 * SECURITY
 *	pop3d talks to anybody who can reach its ports. It never binds a
 *	port itself, loads the TLS key before the privilege drop, and then
 *	runs as vmail_user (joining directory_group to reach authd). It
 *	never sees password hashes: every password goes to authd (with the
 *	client address, for failure throttling), and is never logged.
 *	Passwords are refused on a connection without TLS unless
 *	auth_plaintext allows it (loopback: only from loopback addresses).
 *	Plaintext pipelined behind STLS is discarded.
 *
 *	Every input has a bound: command lines (255 octets; PASS, AUTH and
 *	SASL responses up to 2048 with CRLF), commands before login
 *	(pop3d_command_limit), errors (pop3d_error_limit), sessions per
 *	client address (pop3d_client_limit, counted over all pop3d workers
 *	through the client table master passes, mail/peertab.h) and per
 *	worker (pop3d_max_sessions), both checked at accept before any TLS
 *	handshake (over them: the -ERR in plaintext, on pop3s just a close),
 *	the TLS handshake (tls_handshake_timeout), bytes before login
 *	(pop3d_preauth_input_limit) and without a line feed (64 KB),
 *	commands without mail work after login (pop3d_junk_command_limit),
 *	idle and total time. Replies are produced
 *	only while the client reads them: a message is sent in chunks, so
 *	a session holds about 100 KB at most whatever the message size.
 *	Verbs of other protocols (GET, POST, "Host:", binary) end the
 *	session at once.
 *
 * PROTOCOLS
 *	POP3 on the listeners. To authd: lib/mail/auth_client.h (one
 *	verify request per login on <run_directory>/auth).
 *
 * LOGGING
 *	connect from [ip]
 *	TLS connection established from [ip]: TLSv1.3 with cipher ...
 *	login: user=<a@b> client=[ip] method=USER|PLAIN|LOGIN tls=yes|no
 *	    messages=N size=N
 *	authentication failed: user=<name> client=[ip] method=...
 *	login refused: user=<a@b> client=[ip]: mailbox is locked ...
 *	logout: user=<a@b> top=N retr=N/BYTES del=REMOVED/MESSAGES size=N
 *	disconnect from [ip] (quit | connection closed by client | idle
 *	    timeout | too many errors | shutdown | ...)
 *
 *	Timeouts: an idle session gets "-ERR Disconnected for inactivity."
 *	(one unsolicited line, as IMAP's BYE) and is closed.
 *
 * CONFIGURATION
 *	pop3d_listen, pop3s_listen, pop3d_workers, pop3d_max_sessions,
 *	pop3d_client_limit, pop3d_idle_timeout, pop3d_session_timeout,
 *	pop3d_command_limit, pop3d_error_limit, pop3d_maildrop_threads,
 *	pop3d_junk_command_limit, pop3d_preauth_input_limit,
 *	tls_handshake_timeout, auth_plaintext,
 *	auth_timeout, mail_location, tls_cert_file, tls_key_file (empty:
 *	no STLS, and pop3s connections are closed with a warning at start),
 *	run_directory, vmail_user, directory_group.
 *
 * SIGNALS
 *	SIGTERM (stop): stop accepting. A session in the middle of RETR or
 *	TOP finishes that reply; every session then gets "-ERR [SYS/TEMP]
 *	Server shutting down" and is closed without deleting anything.
 *	SIGUSR1 (reload: master started new workers): stop accepting; the
 *	sessions go on to their QUIT or their idle and session timeouts,
 *	and the worker exits after the last one.
 */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "base/log.h"
#include "mail/params.h"
#include "mail/service.h"
#include "pop3d.h"

/* pop3d_pre_drop - load the TLS key while it is still readable */
static void
pop3d_pre_drop(struct service *svc)
{
	pop3d_tls_ctx = service_tls_server_ctx();
}

/* pop3d_init - per worker, after the privilege drop */
static void
pop3d_init(struct service *svc)
{
	pop3d_session_init(svc);
	if (pop3d_tls_ctx == NULL && service_has_listener(svc, "pop3s"))
		msg_warn("tls_cert_file is empty: connections to the pop3s "
		    "listeners will be closed");
}

/* pop3d_accept - one new client connection */
static void
pop3d_accept(struct service *svc, int fd, const struct service_listener *l)
{
	pop3d_session_accept(svc, fd, strcmp(l->name, "pop3s") == 0);
}

/* pop3d_stop - SIGTERM: close sessions, let a RETR finish first */
static void
pop3d_stop(struct service *svc)
{
	pop3d_session_stop(svc);
}

int
main(int argc, char **argv)
{
	return service_main(argc, argv, &(const struct service_def){
		.name = "pop3d",
		.model = SERVICE_EVENT,	/* one loop, many sessions */
		.user = &var_vmail_user,
		.reads_directory = true,
		.pre_drop = pop3d_pre_drop,
		.init = pop3d_init,
		.accept = pop3d_accept,
		.stop = pop3d_stop,
	});
}
