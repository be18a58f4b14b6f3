/*
 * imapd - herald's IMAP server: lets users read and manage their mail
 * over IMAP4rev2 (RFC 9051) and IMAP4rev1 (RFC 3501).
 *
 * SYNOPSIS
 *	imapd [-c config] [-f] [-v]
 *
 * DESCRIPTION
 *	imapd is started by master, never by hand: it serves the listeners
 *	master opened, "imap" (imap_listen: plaintext with STARTTLS) and
 *	"imaps" (imaps_listen: TLS from the first byte). One imapd process
 *	serves many sessions from one event loop; master runs
 *	imapd_workers of them (143 and 993 by default). Commands come
 *	from the table in imapd_cmd.c; mailbox management is
 *	imapd_list.c and imapd_mailbox.c, the selected state
 *	imapd_select.c and its siblings (imapd_sel.h), SEARCH, SORT and
 *	THREAD imapd_search.c; work that grows with a mailbox runs on the
 *	job threads of lib/mail/job.c (imapd_store.h).
 *
 *	Supported: RFC 9051 and RFC 3501 command syntax (literals,
 *	quoted strings, lists, sequence sets, SEARCH programs), RFC 7888
 *	LITERAL+, RFC 4959 SASL-IR, RFC 5161 ENABLE, RFC 2971 ID, RFC 2342
 *	NAMESPACE, AUTHENTICATE PLAIN and LOGIN, STARTTLS and implicit
 *	TLS on imaps, RFC 2177 IDLE, RFC 3691 UNSELECT, RFC 4315 UIDPLUS,
 *	RFC 6851 MOVE, RFC 7162 CONDSTORE and QRESYNC, RFC 3502
 *	MULTIAPPEND, RFC 3516 BINARY, RFC 7889 APPENDLIMIT.
 *
 * SECURITY
 *	imapd talks to anybody who can reach its ports. It never binds a
 *	port itself, loads the TLS key before the privilege drop, and then
 *	runs as vmail_user (joining directory_group to reach authd). It
 *	never sees password hashes: every password goes to authd (with the
 *	client address, for failure throttling), and is never logged; the
 *	command text that held it is wiped after the command.
 *	Passwords are refused on a connection without TLS unless
 *	auth_plaintext allows it (loopback: only from loopback addresses;
 *	CAPABILITY then says LOGINDISABLED). Plaintext pipelined behind
 *	STARTTLS is discarded.
 *
 *	Every input has a bound: before login lines of 8 KB, literals of
 *	8 KB (a LITERAL+ over it ends the session), bytes in total
 *	(imapd_preauth_input_limit), commands (imapd_command_limit);
 *	after login lines of 64 KB and literals of imapd_literal_limit
 *	(held in memory up to 1 MB per command; APPEND's messages are
 *	spooled to a file, see imapd_append.c); everywhere 64 KB without
 *	a line feed, list nesting (16), errors (imapd_error_limit),
 *	sessions per client address (imapd_client_limit, counted over all
 *	imapd workers) and per worker (imapd_max_sessions), both checked
 *	at accept before any TLS handshake, the TLS handshake
 *	(tls_handshake_timeout), and idle time (imapd_preauth_timeout
 *	before login, imapd_idle_timeout after). Responses are produced
 *	only while the client reads them.
 *
 * PROTOCOLS
 *	IMAP on the listeners. To authd: lib/mail/auth_client.h (one
 *	verify request per login on <run_directory>/auth, service "imap").
 *
 * LOGGING
 *	connect from [ip]
 *	TLS connection established from [ip]: TLSv1.3 with cipher ...
 *	login: user=<a@b> client=[ip] method=LOGIN|AUTH=PLAIN|AUTH=LOGIN
 *	    tls=yes|no
 *	authentication failed: user=<name> client=[ip] method=...
 *	logout: user=<a@b> client=[ip]
 *	disconnect from [ip] (logout | connection closed by client | idle
 *	    timeout | too many errors | shutdown | ...)
 *	authd logs "login failed: service=imap client=[ip] user=<...>",
 *	which the fail2ban filter reads.
 *
 * CONFIGURATION
 *	imap_listen, imaps_listen, imapd_workers, imapd_max_sessions,
 *	imapd_client_limit, imapd_idle_timeout, imapd_preauth_timeout,
 *	imapd_command_limit, imapd_error_limit, imapd_preauth_input_limit,
 *	imapd_literal_limit, tls_handshake_timeout, auth_plaintext,
 *	auth_timeout, mail_location, tls_cert_file, tls_key_file (empty:
 *	no STARTTLS, and imaps connections are closed with a warning at
 *	start), run_directory, vmail_user, directory_group.
 *
 * SIGNALS
 *	SIGTERM (stop): stop accepting; every session gets "* BYE
 *	[UNAVAILABLE] Server shutting down" and is closed.
 *	SIGUSR1 (reload: master started new workers): stop accepting; the
 *	sessions go on to their LOGOUT or their idle timeout, and the
 *	worker exits after the last one.
 */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "base/log.h"
#include "mail/params.h"
#include "mail/service.h"
#include "imapd.h"
#include "imapd_sel.h"
#include "imapd_store.h"

/* imapd_pre_drop - load the TLS key while it is still readable */
static void
imapd_pre_drop(struct service *svc)
{
	(void)svc;
	imapd_tls_ctx = service_tls_server_ctx();
}

/* imapd_init - per worker, after the privilege drop */
static void
imapd_init(struct service *svc)
{
	imapd_session_init(svc);
	imapd_store_init(service_loop(svc));
	imapd_idle_init(service_loop(svc));
	if (imapd_tls_ctx == NULL && service_has_listener(svc, "imaps"))
		msg_warn("tls_cert_file is empty: connections to the imaps "
		    "listeners will be closed");
}

/* imapd_accept - one new client connection */
static void
imapd_accept(struct service *svc, int fd, const struct service_listener *l)
{
	imapd_session_accept(svc, fd, strcmp(l->name, "imaps") == 0);
}

/* imapd_stop - SIGTERM: BYE to every session */
static void
imapd_stop(struct service *svc)
{
	imapd_session_stop(svc);
}

int
main(int argc, char **argv)
{
	return service_main(argc, argv, &(const struct service_def){
		.name = "imapd",
		.model = SERVICE_EVENT,	/* one loop, many sessions */
		.user = &var_vmail_user,
		.reads_directory = true,
		.pre_drop = imapd_pre_drop,
		.init = imapd_init,
		.accept = imapd_accept,
		.stop = imapd_stop,
	});
}
