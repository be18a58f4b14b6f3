/*
 * params - the herald.conf table: every key, its type, default and check.
 *
 * Adding a setting: declare var_<key> in params.h, define it here, add a
 * row to params_table. Nothing else reads herald.conf.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/sock.h"
#include "base/str.h"
#include "mail/dns.h"
#include "mail/netlist.h"
#include "mail/nexthop.h"
#include "mail/params.h"

char *var_myhostname;
char *var_mydomain;
char *var_spool_directory;
char *var_data_directory;
char *var_run_directory;
char *var_mail_location;
char *var_daemon_directory;
char *var_log_destination;
char *var_log_file;
char *var_herald_user;
char *var_vmail_user;
char *var_auth_user;
char *var_directory_group;
char *var_smtpd_listen;
char *var_pop3d_listen;
char *var_pop3s_listen;
long long var_pop3d_workers;
long long var_pop3d_max_sessions;
long long var_pop3d_client_limit;
long long var_pop3d_idle_timeout;
long long var_pop3d_session_timeout;
long long var_pop3d_command_limit;
long long var_pop3d_error_limit;
long long var_pop3d_maildrop_threads;
long long var_pop3d_junk_command_limit;
long long var_pop3d_preauth_input_limit;
char *var_imap_listen;
char *var_imaps_listen;
long long var_imapd_workers;
long long var_imapd_max_sessions;
long long var_imapd_client_limit;
long long var_imapd_idle_timeout;
long long var_imapd_preauth_timeout;
long long var_imapd_command_limit;
long long var_imapd_error_limit;
long long var_imapd_preauth_input_limit;
long long var_imapd_literal_limit;
long long var_imapd_job_threads;
bool var_imapd_compress;
long long var_auth_processes;
long long var_auth_timeout;
char *var_auth_plaintext;
char *var_auth_default_domain;
long long var_auth_failure_window;
long long var_auth_failure_delay;
long long var_auth_failure_delay_max;
long long var_auth_client_lockout;
long long var_auth_account_lockout;
long long var_auth_lockout_time;
long long var_auth_answer_floor;
long long var_auth_account_window;
long long var_auth_account_prefix_lockout;
long long var_auth_known_prefix_time;
long long var_auth_known_prefix_max;
long long var_auth_prefix_v4;
long long var_auth_prefix_v6;
long long var_auth_prefix_inflight;
long long var_auth_process_inflight;
long long var_auth_queue_limit;
long long var_auth_cache_ttl;
long long var_auth_cache_size;
char *var_smtpd_banner;
long long var_smtpd_workers;
long long var_smtpd_commit_delay;
long long var_message_size_limit;
long long var_smtpd_recipient_limit;
long long var_smtpd_line_limit;
long long var_smtpd_error_limit;
long long var_smtpd_client_limit;
long long var_smtpd_submit_uid_limit;
long long var_smtpd_max_sessions;
long long var_smtpd_idle_timeout;
long long var_smtpd_session_timeout;
long long var_queue_minfree;
long long var_smtpd_client_transaction_limit;
long long var_smtpd_min_data_rate;
long long var_smtpd_data_rate_window;
long long var_smtpd_junk_command_limit;
char *var_submission_listen;
char *var_submissions_listen;
char *var_mynetworks;
char *var_smtpd_sender_login;
bool var_submission_received_client;
long long var_submission_message_rate_limit;
long long var_submission_recipient_rate_limit;
long long var_tls_handshake_timeout;
char *var_tls_cert_file;
char *var_tls_key_file;
long long var_queue_scan_interval;
long long var_minimal_backoff_time;
long long var_maximal_backoff_time;
long long var_maximal_queue_lifetime;
long long var_delay_warning_time;
long long var_bounce_size_limit;
long long var_local_processes;
long long var_local_batch_size;
long long var_delivery_timeout;
long long var_default_quota;
bool var_quota_exceeded_bounce;
long long var_hopcount_limit;
char *var_recipient_delimiter;
long long var_alias_depth_limit;
long long var_alias_expansion_limit;
char *var_postmaster_address;
char *var_srs_domain;
char *var_srs_secret_file;
long long var_local_copy_limit;
long long var_stop_timeout;
char *var_dns_forwarders;
char *var_dns_stub_zones;
char *var_dns_trust_anchor_file;
long long var_dns_timeout;
char *var_dkim_directory;
char *var_dkim_group;
char *var_dkim_user;
long long var_signer_processes;
long long var_signer_timeout;
long long var_remote_processes;
long long var_remote_destination_concurrency_limit;
long long var_initial_destination_concurrency;
long long var_destination_concurrency_failed_cohort_limit;
char *var_inet_protocols;
char *var_smtp_tls_security_level;
char *var_relayhost;
char *var_smtp_sasl_password_file;
char *var_smtp_tls_ca_file;
long long var_smtp_port;
long long var_smtp_connect_timeout;
long long var_smtp_helo_timeout;
long long var_smtp_mail_timeout;
long long var_smtp_rcpt_timeout;
long long var_smtp_data_init_timeout;
long long var_smtp_data_xfer_timeout;
long long var_smtp_data_done_timeout;
long long var_smtp_connection_cache_time_limit;
long long var_smtp_connection_reuse_count_limit;
bool var_smtp_use_chunking;

static char config_dir[PATH_MAX] = ".";

/* params_check_hostname - a host name usable in SMTP greetings */
static int
params_check_hostname(const char *value, struct buf *why)
{
	if (*value == '\0')
		return 0;	/* filled in from gethostname() */
	for (const char *p = value; *p; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.')) {
			buf_printf(why, "not a host name: \"%s\"", value);
			return -1;
		}
	}
	return 0;
}

/* params_check_postmaster - empty, or one local@domain address */
static int
params_check_postmaster(const char *value, struct buf *why)
{
	const char *at = strrchr(value, '@');

	if (*value == '\0')
		return 0;
	for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
		if (*p <= ' ' || *p == 0x7f || *p == ',' || *p == '<' ||
		    *p == '>') {
			at = NULL;
			break;
		}
	}
	if (at == NULL || at == value || at[1] == '\0') {
		buf_printf(why, "not one address (local@domain): \"%s\"",
		    value);
		return -1;
	}
	return 0;
}

/*
 * params_one_of - value is one of the NULL-terminated names: 0, or -1
 * with why saying "must be a, b or c, not "value"" (the checker of every
 * setting that names one of a few choices)
 */
static int
params_one_of(const char *value, const char *const *names, struct buf *why)
{
	size_t i;

	for (i = 0; names[i] != NULL; i++)
		if (strcmp(value, names[i]) == 0)
			return 0;
	buf_puts(why, "must be ");
	for (i = 0; names[i] != NULL; i++)
		buf_printf(why, "%s%s", i == 0 ? "" : names[i + 1] == NULL ?
		    " or " : ", ", names[i]);
	buf_printf(why, ", not \"%s\"", value);
	return -1;
}

/* params_check_plaintext - never, loopback or always */
static int
params_check_plaintext(const char *value, struct buf *why)
{
	static const char *const names[] = {"never", "loopback", "always",
	    NULL};

	return params_one_of(value, names, why);
}

/* params_check_delimiter - at most one character, not '@' */
static int
params_check_delimiter(const char *value, struct buf *why)
{
	if (strlen(value) > 1 || strchr(value, '@') != NULL ||
	    (*value && (unsigned char)*value <= ' ')) {
		buf_printf(why, "must be one printable character other than "
		    "'@', or empty");
		return -1;
	}
	return 0;
}

/* params_check_log_destination - auto, syslog or file */
static int
params_check_log_destination(const char *value, struct buf *why)
{
	static const char *const names[] = {"auto", "syslog", "file", NULL};

	return params_one_of(value, names, why);
}

/* params_check_listen - a host:port list, each address as master opens
 * it (sock_listen_check: the parser sock_listen_tcp uses, port 1..65535) */
static int
params_check_listen(const char *value, struct buf *why)
{
	const char *cursor = value;
	char item[SOCK_HOSTPORT_MAX + 1];

	while (cfg_list_next(&cursor, item, sizeof(item)))
		if (sock_listen_check(item, why) < 0)
			return -1;
	return 0;
}

/* params_check_inet_protocols - all, ipv4 or ipv6 */
static int
params_check_inet_protocols(const char *value, struct buf *why)
{
	static const char *const names[] = {"all", "ipv4", "ipv6", NULL};

	return params_one_of(value, names, why);
}

/* params_check_tls_level - a remote TLS policy level built so far */
static int
params_check_tls_level(const char *value, struct buf *why)
{
	static const char *const names[] = {"none", "may", "encrypt",
	    "verify", "dane", NULL};

	return params_one_of(value, names, why);
}

/* params_check_relayhost - empty, or a next hop (nexthop.h) */
static int
params_check_relayhost(const char *value, struct buf *why)
{
	struct nexthop nh;

	if (*value == '\0')
		return 0;
	return nexthop_parse(value, &nh, why);
}

/* params_check_mynetworks - addresses and networks (netlist.h) */
static int
params_check_mynetworks(const char *value, struct buf *why)
{
	return netlist_check(value, why);
}

/* params_check_sender_login - strict, envelope or any */
static int
params_check_sender_login(const char *value, struct buf *why)
{
	static const char *const names[] = {"strict", "envelope", "any",
	    NULL};

	return params_one_of(value, names, why);
}

#define STR(n, d, doc) {#n, CFG_STR, d, &var_##n, 0, 0, NULL, doc, false, NULL}
#define STRC(n, d, c, doc) {#n, CFG_STR, d, &var_##n, 0, 0, c, doc, false, NULL}
#define LIST(n, d, doc) {#n, CFG_LIST, d, &var_##n, 0, 0, NULL, doc, false, NULL}
#define LISTEN(n, d, doc) {#n, CFG_LIST, d, &var_##n, 0, 0, \
	params_check_listen, doc, false, NULL}
#define INT(n, d, lo, hi, doc) {#n, CFG_INT, d, &var_##n, lo, hi, NULL, doc, false, NULL}
#define SIZE(n, d, lo, hi, doc) {#n, CFG_SIZE, d, &var_##n, lo, hi, NULL, doc, false, NULL}
#define TIME(n, d, lo, hi, doc) {#n, CFG_TIME, d, &var_##n, lo, hi, NULL, doc, false, NULL}
#define BOOL(n, d, doc) {#n, CFG_BOOL, d, &var_##n, 0, 0, NULL, doc, false, NULL}

struct cfg_entry params_table[] = {
	STRC(myhostname, "", params_check_hostname,
	    "host name used in SMTP greetings and Received: headers; empty: "
	    "the system host name"),
	STRC(mydomain, "", params_check_hostname,
	    "the organisation's main mail domain (informational)"),
	STR(spool_directory, "/var/spool/herald",
	    "folder of the mail queue (incoming, active, deferred, hold, "
	    "corrupt)"),
	STR(data_directory, "/var/lib/herald",
	    "the directory database (domains, users, aliases, passwords)"),
	STR(run_directory, "/run/herald",
	    "master's control socket and pid file"),
	STR(mail_location, "/var/mail/herald/%d/%n",
	    "Maildir of each user: %d domain, %n local part, %u address; "
	    "the part before the first % is created at start"),
	STR(daemon_directory, HERALD_DAEMON_DIR,
	    "where master finds the service programs"),
	STRC(log_destination, "auto", params_check_log_destination,
	    "where master and the services log when master runs without "
	    "-f: syslog (facility mail), file (log_file), or auto: syslog "
	    "when /dev/log accepts a connection, else log_file; read at "
	    "start, and said on stderr"),
	STR(log_file, "/var/log/herald/herald.log",
	    "the log file when there is no syslog: created mode 0640, "
	    "appended to by master (lines stamped with RFC 3339 time), "
	    "reopened on SIGHUP, SIGUSR1 and heraldctl reload (logrotate); "
	    "empty: none; read at start"),
	STR(herald_user, "herald",
	    "user of smtpd and qmgr when master is started as root"),
	STR(vmail_user, "vmail",
	    "user that owns the mail store (local, pop3d, imapd)"),
	STR(auth_user, "herald-auth",
	    "the only user that can read password hashes (authd)"),
	STR(directory_group, "herald-dir",
	    "group of every service that reads the directory"),
	LISTEN(smtpd_listen, "*:25",
	    "addresses of the inbound SMTP (MX) service, host:port, comma "
	    "separated; empty disables it"),
	STR(smtpd_banner, "ESMTP herald",
	    "text after the host name in the 220 greeting"),
	INT(smtpd_commit_delay, "1000", 0, 1000000,
	    "microseconds a group commit may wait for other sessions of the "
	    "worker that are in the middle of a transaction, so that they "
	    "share its syncs (0: commit at once)"),
	INT(smtpd_workers, "0", 0, 256,
	    "smtpd worker processes, each serving many sessions (0: one per "
	    "core)"),
	SIZE(message_size_limit, "50M", 1024, 2147483647LL,
	    "largest message accepted, in bytes"),
	INT(smtpd_recipient_limit, "1000", 1, 1000,
	    "recipients accepted in one SMTP transaction; more get a "
	    "temporary 452 (at most 1000: a message's local recipients then "
	    "go to local in one request, so each mailbox gets one copy)"),
	INT(smtpd_line_limit, "2048", 512, 65536,
	    "longest SMTP command line, in bytes including CRLF"),
	INT(smtpd_error_limit, "20", 1, 1000,
	    "errors in one session before it is disconnected"),
	INT(smtpd_client_limit, "50", 1, 100000,
	    "concurrent SMTP sessions from one client address, counted over "
	    "all smtpd workers"),
	INT(smtpd_submit_uid_limit, "50", 1, 100000,
	    "concurrent local submissions (sendmail, on the submit socket) "
	    "from one user (uid), counted over all smtpd workers"),
	INT(smtpd_max_sessions, "10000", 1, 1000000,
	    "concurrent sessions per smtpd worker"),
	TIME(smtpd_idle_timeout, "300s", 1, 86400,
	    "time a client may stay silent (RFC 5321 4.5.3.2)"),
	TIME(smtpd_session_timeout, "1h", 1, 604800,
	    "longest SMTP session, however busy"),
	SIZE(queue_minfree, "1M", 0, 1099511627776LL,
	    "spool space kept free: MAIL gets 452 4.3.1 unless the free "
	    "space, less what the worker's open transactions still reserve, "
	    "is at least 1.5 times the message's SIZE= (else "
	    "message_size_limit) plus this"),
	INT(smtpd_client_transaction_limit, "10", 1, 100000,
	    "concurrent mail transactions (MAIL to the end of the data) "
	    "from one client address, counted over all smtpd workers; more "
	    "get 452 4.3.2 at MAIL (local submissions are not limited)"),
	INT(smtpd_min_data_rate, "500", 0, 1000000000,
	    "bytes per second a client must keep up while a message's "
	    "content is open (DATA, BDAT): every byte buys 1/rate seconds "
	    "on top of smtpd_data_rate_window; a client that runs out gets "
	    "421 4.4.2 and its queue file is dropped (0: no minimum)"),
	TIME(smtpd_data_rate_window, "60s", 1, 86400,
	    "the most time a client may fall behind smtpd_min_data_rate "
	    "(also the grace period at the start of the content)"),
	INT(smtpd_junk_command_limit, "100", 1, 100000,
	    "commands that do no mail work (NOOP, RSET, HELO/EHLO, VRFY, "
	    "EXPN, HELP, RCPT past smtpd_recipient_limit) one SMTP session "
	    "may send between two accepted messages; the next one gets 421 "
	    "and the session ends"),
	LISTEN(submission_listen, "*:587",
	    "addresses of the mail submission service (RFC 6409): mail "
	    "from the organisation's users, who must log in (SMTP AUTH, "
	    "offered only after STARTTLS); host:port, comma separated; "
	    "empty disables it"),
	LISTEN(submissions_listen, "*:465",
	    "addresses of mail submission over implicit TLS (RFC 8314; "
	    "needs tls_cert_file); empty disables it"),
	{"mynetworks", CFG_LIST, "", &var_mynetworks, 0, 0,
	    params_check_mynetworks, "client networks (address/length, "
	    "comma separated) that may send mail to any domain without "
	    "SMTP AUTH on the submission ports, and on smtpd_listen: "
	    "printers, application servers; empty: none", false, NULL},
	STRC(smtpd_sender_login, "strict", params_check_sender_login,
	    "which senders a logged-in user may use: strict (the envelope "
	    "sender and every From: address must be the user's own "
	    "address or an alias that leads to the user), envelope (only "
	    "the envelope sender is checked) or any; otherwise 553 5.7.1"),
	BOOL(submission_received_client, "no",
	    "name the client's address in the Received: header of "
	    "submitted mail (no: a user's home address stays private)"),
	INT(submission_message_rate_limit, "200", 0, 1000000,
	    "messages one logged-in user may send in an hour, counted over "
	    "all smtpd workers; past it MAIL gets 451 4.7.1 and heraldctl "
	    "status names the user (0: no limit)"),
	INT(submission_recipient_rate_limit, "1000", 0, 100000000,
	    "recipients one logged-in user may send to in an hour, counted "
	    "over all smtpd workers; past it RCPT gets 451 4.7.1 and "
	    "heraldctl status names the user (0: no limit)"),
	TIME(tls_handshake_timeout, "10s", 1, 600,
	    "time a client has to complete a TLS handshake (STARTTLS, STLS, "
	    "pop3s, imaps) before it is disconnected"),
	STR(tls_cert_file, "",
	    "PEM certificate chain for STARTTLS (empty: no STARTTLS)"),
	STR(tls_key_file, "",
	    "PEM private key for tls_cert_file"),
	TIME(queue_scan_interval, "60s", 1, 86400,
	    "how often qmgr scans the whole queue"),
	TIME(minimal_backoff_time, "300s", 1, 604800,
	    "first retry delay of a deferred message"),
	TIME(maximal_backoff_time, "4h", 1, 604800,
	    "longest delay between two attempts; the delay doubles from "
	    "minimal_backoff_time up to this"),
	TIME(maximal_queue_lifetime, "5d", 1, 31536000,
	    "time a message may stay deferred before it is returned"),
	TIME(delay_warning_time, "4h", 0, 31536000,
	    "time after which the sender of a message that is still "
	    "deferred gets one delay warning (RFC 3464 Action: delayed) "
	    "for the recipients whose DSN NOTIFY asks for DELAY or was not "
	    "given (0: no warnings)"),
	SIZE(bounce_size_limit, "50000", 0, 104857600LL,
	    "largest original message a delivery status notification "
	    "returns whole when the sender asked for RET=FULL, in bytes; a "
	    "larger one is returned as its header section only"),
	INT(local_processes, "4", 1, 1000,
	    "local delivery agents running at once"),
	INT(local_batch_size, "16", 1, 256,
	    "delivery requests qmgr may have outstanding on one local agent; "
	    "the agent commits the copies of all that are waiting together, "
	    "sharing their file and folder syncs, and qmgr uses another agent "
	    "only when one has this many (1: one request per agent at a "
	    "time, spread over local_processes agents)"),
	TIME(delivery_timeout, "600s", 1, 86400,
	    "longest time one delivery request may take"),
	SIZE(default_quota, "0", 0, 9223372036854775807LL,
	    "mailbox quota for users without their own, bytes (0: none)"),
	BOOL(quota_exceeded_bounce, "no",
	    "a message for a full mailbox: deferred with 4.2.2 and retried "
	    "until maximal_queue_lifetime (no), or bounced at once with "
	    "5.2.2 (yes)"),
	INT(hopcount_limit, "50", 1, 1000,
	    "Received:/Delivered-To: headers that mean a mail loop"),
	STRC(recipient_delimiter, "+", params_check_delimiter,
	    "separator of address extensions (user+tag@domain); empty: none"),
	INT(alias_depth_limit, "10", 1, 100,
	    "levels of aliases pointing to aliases; deeper ones bounce "
	    "with 5.4.6"),
	INT(alias_expansion_limit, "1000", 1, 100000,
	    "addresses one recipient may expand to through aliases (its "
	    "members, counted through nested aliases); a larger expansion "
	    "is refused at RCPT with 550 5.5.3, and bounces whole if the "
	    "alias grew after the message was accepted"),
	STRC(postmaster_address, "", params_check_postmaster,
	    "mailbox (a hosted user or alias) that receives "
	    "postmaster@ of every hosted domain that has no user or alias "
	    "of that name (RFC 5321 4.5.1); empty: each domain's first "
	    "user"),
	STRC(srs_domain, "", params_check_hostname,
	    "domain of the SRS addresses (SRS0=...@srs_domain) that mail an "
	    "alias forwards to another domain is sent from, and whose "
	    "bounces are taken back; empty: mydomain if set, else "
	    "myhostname if hosted, else the first hosted domain"),
	STR(srs_secret_file, "",
	    "the secret SRS addresses are signed with, made by master at "
	    "start when missing (32 random bytes, owner herald_user, mode "
	    "0600); empty: data_directory/srs.secret"),
	INT(local_copy_limit, "1000", 1, 100000,
	    "mailbox copies one message may produce in one delivery "
	    "attempt, after duplicates are removed; further mailboxes "
	    "bounce with 5.5.3"),
	LISTEN(pop3d_listen, "*:110",
	    "addresses of the POP3 service (STLS offered), host:port, comma "
	    "separated; empty disables it"),
	LISTEN(pop3s_listen, "*:995",
	    "addresses of POP3 over implicit TLS (needs tls_cert_file); "
	    "empty disables it"),
	INT(pop3d_workers, "0", 0, 256,
	    "pop3d worker processes, each serving many sessions (0: one per "
	    "core)"),
	INT(pop3d_max_sessions, "10000", 1, 1000000,
	    "concurrent sessions per pop3d worker"),
	INT(pop3d_client_limit, "20", 1, 100000,
	    "concurrent POP3 sessions from one client address, counted over "
	    "all pop3d workers"),
	TIME(pop3d_idle_timeout, "10m", 1, 86400,
	    "time a POP3 client may stay silent (RFC 1939: at least 10 "
	    "minutes)"),
	TIME(pop3d_session_timeout, "2h", 1, 604800,
	    "longest POP3 session, however busy"),
	INT(pop3d_command_limit, "20", 1, 1000,
	    "POP3 commands allowed before a successful login"),
	INT(pop3d_error_limit, "10", 1, 1000,
	    "POP3 errors in one session before it is disconnected"),
	INT(pop3d_maildrop_threads, "2", 1, 8,
	    "threads per pop3d worker that open maildrops at login and "
	    "remove deleted messages at QUIT, off the event loop"),
	INT(pop3d_junk_command_limit, "100", 1, 100000,
	    "commands that do no mail work (NOOP, CAPA, RSET, STAT) after "
	    "a POP3 login in a row, without a RETR, TOP or DELE between; "
	    "the next one ends the session"),
	SIZE(pop3d_preauth_input_limit, "64k", 4096, 1073741824LL,
	    "bytes a POP3 client may send before its login succeeds; more "
	    "ends the session"),
	LISTEN(imap_listen, "*:143",
	    "addresses of the IMAP service (STARTTLS offered), host:port, "
	    "comma separated; empty disables it"),
	LISTEN(imaps_listen, "*:993",
	    "addresses of IMAP over implicit TLS (needs tls_cert_file); "
	    "empty disables it"),
	INT(imapd_workers, "0", 0, 256,
	    "imapd worker processes, each serving many sessions (0: one per "
	    "core)"),
	INT(imapd_max_sessions, "10000", 1, 1000000,
	    "concurrent sessions per imapd worker"),
	INT(imapd_client_limit, "50", 1, 100000,
	    "concurrent IMAP sessions from one client address, counted over "
	    "all imapd workers"),
	TIME(imapd_idle_timeout, "30m", 1, 604800,
	    "time a logged-in IMAP client may stay silent (RFC 9051 5.4: at "
	    "least 30 minutes)"),
	TIME(imapd_preauth_timeout, "60s", 1, 3600,
	    "time an IMAP client may stay silent before it has logged in"),
	INT(imapd_command_limit, "20", 1, 1000,
	    "IMAP commands allowed before a successful login"),
	INT(imapd_error_limit, "10", 1, 1000,
	    "IMAP errors (BAD and failed logins) before a session gets BYE: "
	    "all of them before login, those in a row after it (an OK "
	    "answer starts the count again)"),
	SIZE(imapd_preauth_input_limit, "64k", 4096, 1073741824LL,
	    "bytes an IMAP client may send before its login succeeds; more "
	    "ends the session"),
	SIZE(imapd_literal_limit, "50M", 1024, 2147483647LL,
	    "largest literal an IMAP client may send after login, and "
	    "APPENDLIMIT (the default is message_size_limit's): APPEND's "
	    "messages go to a file, not memory (before login the bound is "
	    "8 KB); a bigger one gets NO [TOOBIG]"),
	INT(imapd_job_threads, "2", 1, 16,
	    "threads per imapd worker that open mail indexes at login and do "
	    "the work that grows with a mailbox, off the event loop"),
	BOOL(imapd_compress, "yes",
	    "offer COMPRESS=DEFLATE (RFC 4978) to logged-in IMAP clients: "
	    "less traffic for about 80 KB of worker memory per compressing "
	    "session; no: not advertised, and COMPRESS gets BAD"),
	INT(auth_processes, "0", 0, 100,
	    "authd processes checking passwords at once (0: one per core, "
	    "at least 2)"),
	TIME(auth_timeout, "30s", 1, 600,
	    "time a server waits for authd before a temporary failure"),
	STRC(auth_plaintext, "loopback", params_check_plaintext,
	    "where passwords may be sent without TLS: never, loopback (only "
	    "from 127.0.0.0/8 and ::1) or always"),
	STRC(auth_default_domain, "", params_check_hostname,
	    "domain added to login names without '@' (empty: such logins "
	    "fail)"),
	TIME(auth_failure_window, "15m", 1, 604800,
	    "how long a failed login counts against its client address and "
	    "account"),
	TIME(auth_failure_delay, "1s", 0, 60,
	    "answer delay after one recent failure; doubles with each "
	    "further failure"),
	TIME(auth_failure_delay_max, "15s", 0, 600,
	    "longest answer delay after failures"),
	INT(auth_client_lockout, "10", 1, 100000,
	    "recent failures from one client address that lock it out"),
	INT(auth_account_lockout, "100", 1, 100000,
	    "failures for one account within auth_account_window that lock "
	    "it out from every address prefix it has not logged in from "
	    "before"),
	TIME(auth_account_window, "1h", 1, 604800,
	    "how long a failed login counts against its account as a whole"),
	INT(auth_account_prefix_lockout, "10", 1, 100000,
	    "recent failures for one account from one client address prefix "
	    "(auth_prefix_v4, auth_prefix_v6) that lock the account out for "
	    "that prefix, unless the account logged in from it before"),
	TIME(auth_known_prefix_time, "30d", 1, 31536000,
	    "how long a successful login makes its client address prefix "
	    "known-good for the account (never locked out there)"),
	INT(auth_known_prefix_max, "16", 1, 1000,
	    "known-good address prefixes remembered per account (the oldest "
	    "goes)"),
	INT(auth_prefix_v4, "24", 8, 32,
	    "IPv4 prefix length that counts as one client for account "
	    "lockout and for authd requests in flight"),
	INT(auth_prefix_v6, "64", 16, 128,
	    "IPv6 prefix length that counts as one client for account "
	    "lockout and for authd requests in flight"),
	INT(auth_prefix_inflight, "2", 1, 1000,
	    "share of one server process's authd requests for one client "
	    "address prefix with recent failed logins, enforced only while "
	    "others wait: beyond it, its requests go after theirs, and when "
	    "the queue is full they give their places up (a temporary "
	    "failure)"),
	INT(auth_process_inflight, "4", 1, 1000,
	    "authd requests one server process has in flight at once; more "
	    "wait in its queue"),
	INT(auth_queue_limit, "64", 0, 10000,
	    "authd requests one server process keeps queued (served first "
	    "when from prefixes without recent failures); more get a "
	    "temporary failure"),
	TIME(auth_lockout_time, "15m", 1, 604800,
	    "how long a lockout lasts"),
	TIME(auth_cache_ttl, "1h", 0, 604800,
	    "how long authd takes a successful login's password as checked "
	    "for the next login of that account, while its hash is unchanged "
	    "(keyed digests in authd's memory only, emptied by reload; a "
	    "wrong password always gets the full check); 0: off"),
	INT(auth_cache_size, "10000", 0, 10000000,
	    "successful logins each authd process remembers for "
	    "auth_cache_ttl (the least recently used goes); 0: off"),
	INT(auth_answer_floor, "250", 0, 10000,
	    "milliseconds a failed or refused login takes at least, from "
	    "authd taking the request to the server's answer, so that its "
	    "time does not tell whether or how the account exists (the "
	    "server waits, not authd); 0: off"),
	TIME(stop_timeout, "30s", 1, 3600,
	    "time sessions get to finish on stop or reload"),
	{"dns_forwarders", CFG_LIST, "", &var_dns_forwarders, 0, 0,
	    dns_check_forwarders, "DNS servers asked for everything, as "
	    "address or address@port, comma separated; herald validates "
	    "their answers itself and never falls back to other servers "
	    "(empty: the nameservers of /etc/resolv.conf)", false, NULL},
	{"dns_stub_zones", CFG_LIST, "", &var_dns_stub_zones, 0, 0,
	    dns_check_stub_zones, "zones asked directly of their own "
	    "servers, as zone=address[@port], comma separated (split DNS, "
	    "test servers)", false, NULL},
	STR(dns_trust_anchor_file, "/usr/share/dns/root.key",
	    "DS or DNSKEY records that DNSSEC validation starts from, in "
	    "zone file form (default: the root key of dns-root-data); "
	    "empty: no validation, every answer counts as insecure"),
	TIME(dns_timeout, "10s", 1, 300,
	    "longest wait for one DNS lookup; then it fails temporarily"),
	STR(dkim_directory, "/etc/herald/dkim",
	    "DKIM keys: DOMAIN/SELECTOR.ed25519.key and "
	    "DOMAIN/SELECTOR.rsa.key (mode 0640, root:dkim_group) and "
	    "DOMAIN/current, the selector that signs (heraldctl dkim)"),
	STR(dkim_group, "herald-dkim",
	    "group that may read the DKIM private keys: the signer's only, "
	    "never a service that faces the network"),
	STR(dkim_user, "herald-dkim",
	    "user of the signer, the service that holds the DKIM private "
	    "keys (it joins dkim_group) when master is started as root"),
	INT(signer_processes, "2", 1, 100,
	    "signer processes signing at once (DKIM signatures of submitted "
	    "mail)"),
	TIME(signer_timeout, "10s", 1, 600,
	    "time smtpd waits for the signer's DKIM signature before it "
	    "answers 451 (mail of a domain with a key is never sent "
	    "unsigned)"),
	INT(remote_processes, "10", 1, 1000,
	    "remote delivery agents (SMTP clients) running at once; each "
	    "delivers one message to one domain at a time"),
	INT(remote_destination_concurrency_limit, "20", 1, 1000,
	    "most remote deliveries to one domain at once (requests out at "
	    "the remote agents); other domains' mail passes what waits"),
	INT(initial_destination_concurrency, "5", 1, 1000,
	    "remote deliveries to one domain at once to begin with; each "
	    "delivery that reached a server adds 1/concurrency, each "
	    "connection-level failure takes 1, between 1 and "
	    "remote_destination_concurrency_limit"),
	INT(destination_concurrency_failed_cohort_limit, "1", 0, 1000,
	    "failed cohorts (a concurrency's worth of connection-level "
	    "failures with no success between) after which a domain is "
	    "dead: its mail is deferred without an attempt for "
	    "minimal_backoff_time or until heraldctl queue flush (0: never "
	    "dead)"),
	STRC(inet_protocols, "all", params_check_inet_protocols,
	    "address families remote delivery connects over: all, ipv4 or "
	    "ipv6 (A and AAAA records of the other family are not used)"),
	STRC(smtp_tls_security_level, "may", params_check_tls_level,
	    "TLS for remote delivery: may (STARTTLS whenever the server "
	    "offers it, plaintext only when it does not; a failed handshake "
	    "tries the next host), encrypt (no STARTTLS: defer), verify "
	    "(STARTTLS, and the certificate must chain to smtp_tls_ca_file "
	    "or the system CAs and name the host), dane (DANE, RFC 7672, "
	    "for a host with DNSSEC-secure TLSA records: STARTTLS and a "
	    "certificate matching them, else defer; may for the others), "
	    "none (never STARTTLS); heraldctl tls-policy sets it per domain"),
	STRC(relayhost, "", params_check_relayhost,
	    "where mail to other domains goes instead of their MX hosts: "
	    "[host]:port or [host] (that host, no MX lookup), host:port or "
	    "host (the MX hosts of host); empty: by MX; heraldctl transport "
	    "overrides it per domain"),
	STR(smtp_sasl_password_file, "",
	    "file of \"nexthop user:password\" lines (nexthop as in "
	    "relayhost or a transport); remote logs in with AUTH PLAIN or "
	    "LOGIN to a next hop named there, only over verified TLS; the "
	    "file must belong to herald_user or root and be closed to "
	    "everybody else (mode 0600 or 0640 root:herald_user)"),
	STR(smtp_tls_ca_file, "",
	    "PEM CA certificates remote delivery verifies servers against "
	    "(empty: the system's CA store)"),
	INT(smtp_port, "25", 1, 65535,
	    "TCP port of the mail exchangers remote delivery connects to "
	    "(other than 25 only for tests)"),
	TIME(smtp_connect_timeout, "30s", 1, 3600,
	    "time remote delivery waits for a TCP connection to one address"),
	TIME(smtp_helo_timeout, "300s", 1, 3600,
	    "time remote delivery waits for the greeting, and the EHLO, "
	    "STARTTLS and QUIT replies (RFC 5321 4.5.3.2: 5 minutes)"),
	TIME(smtp_mail_timeout, "300s", 1, 3600,
	    "time remote delivery waits for the MAIL FROM reply"),
	TIME(smtp_rcpt_timeout, "300s", 1, 3600,
	    "time remote delivery waits for each RCPT TO reply"),
	TIME(smtp_data_init_timeout, "120s", 1, 3600,
	    "time remote delivery waits for the DATA reply"),
	TIME(smtp_data_xfer_timeout, "180s", 1, 3600,
	    "time remote delivery waits to send each block of the message"),
	TIME(smtp_data_done_timeout, "600s", 1, 3600,
	    "time remote delivery waits for the reply to the final dot"),
	TIME(smtp_connection_cache_time_limit, "2s", 0, 300,
	    "time remote delivery keeps an idle connection open for the "
	    "next message to the same domain (then RSET and reuse); 0 "
	    "turns connection caching off"),
	INT(smtp_connection_reuse_count_limit, "100", 1, 100000,
	    "transactions remote delivery sends over one cached "
	    "connection before it closes it"),
	BOOL(smtp_use_chunking, "yes",
	    "send the message with BDAT (RFC 3030) to a server that offers "
	    "CHUNKING: exact byte counts, no dot-stuffing; no: always DATA "
	    "(herald's own knob, Postfix has none)"),
	{0},
};

/* params_config_path - -c argument, else $HERALD_CONF, else the default */
const char *
params_config_path(const char *arg)
{
	const char *env;

	if (arg != NULL && *arg)
		return arg;
	if ((env = getenv("HERALD_CONF")) != NULL && *env)
		return env;
	return HERALD_CONFIG_FILE;
}

/* params_config_dir - folder of the loaded configuration file */
const char *
params_config_dir(void)
{
	return config_dir;
}

/* params_absolute - make one path setting absolute against config_dir */
static void
params_absolute(char **var)
{
	char *abs;

	if (**var == '/' || **var == '\0')
		return;
	abs = xasprintf("%s/%s", config_dir, *var);
	x_free(var);
	*var = abs;
}

/* params_finish - absolute paths and derived values after a load */
static int
params_finish(const char *path, struct buf *why)
{
	params_absolute(&var_spool_directory);
	params_absolute(&var_data_directory);
	params_absolute(&var_run_directory);
	params_absolute(&var_mail_location);
	params_absolute(&var_daemon_directory);
	params_absolute(&var_log_file);
	params_absolute(&var_tls_cert_file);
	params_absolute(&var_tls_key_file);
	params_absolute(&var_dns_trust_anchor_file);
	params_absolute(&var_dkim_directory);
	params_absolute(&var_srs_secret_file);
	if (*var_srs_secret_file == '\0') {
		x_free(&var_srs_secret_file);
		var_srs_secret_file = xasprintf("%s/srs.secret",
		    var_data_directory);
	}
	params_absolute(&var_smtp_sasl_password_file);
	params_absolute(&var_smtp_tls_ca_file);

	if (*var_myhostname == '\0') {
		char host[256];

		if (gethostname(host, sizeof(host)) < 0)
			str_lcpy(host, "localhost", sizeof(host));
		host[sizeof(host) - 1] = '\0';
		x_free(&var_myhostname);
		var_myhostname = xstrdup(host);
	}
	if ((*var_tls_cert_file == '\0') != (*var_tls_key_file == '\0')) {
		buf_printf(why, "%s: tls_cert_file and tls_key_file go "
		    "together", path);
		return -1;
	}
	if (var_minimal_backoff_time > var_maximal_backoff_time) {
		buf_printf(why, "%s: minimal_backoff_time is larger than "
		    "maximal_backoff_time", path);
		return -1;
	}
	return 0;
}

/* params_apply - defaults + text + checks into the live table */
static int
params_apply(const char *path, const char *text, size_t len,
    struct buf *why)
{
	char real[PATH_MAX];
	char *slash;

	if (realpath(path, real) == NULL) {
		/* text handed down by master: the file may be gone since */
		if (*path != '/') {
			buf_printf(why, "%s: %s", path, strerror(errno));
			return -1;
		}
		str_lcpy(real, path, sizeof(real));
	}
	cfg_defaults(params_table);
	if (cfg_parse(params_table, path, text, len, why) < 0)
		return -1;
	if ((slash = strrchr(real, '/')) != NULL && slash != real)
		*slash = '\0';
	else
		strcpy(real, "/");
	str_lcpy(config_dir, real, sizeof(config_dir));
	return params_finish(path, why);
}

/*
 * params_load_text - defaults + the text of path + checks; -1 with
 * "file:line: why". A reload with a bad file must keep the running
 * configuration, so the settings as they were are saved and put back
 * when anything fails.
 */
int
params_load_text(const char *path, const char *text, size_t len,
    struct buf *why)
{
	static bool loaded;
	char old_dir[PATH_MAX];
	struct cfg_snapshot *old = NULL;
	int rc;

	if (loaded) {
		old = cfg_save(params_table);
		str_lcpy(old_dir, config_dir, sizeof(old_dir));
	}
	if ((rc = params_apply(path, text ? text : "", len, why)) < 0 &&
	    old != NULL) {
		cfg_restore(params_table, old);
		str_lcpy(config_dir, old_dir, sizeof(config_dir));
	}
	if (rc == 0)
		loaded = true;
	cfg_snapshot_free(&old);
	return rc;
}

/* params_load - read the file, then params_load_text */
int
params_load(const char *path, struct buf *why)
{
	struct buf text = BUF_INIT;
	int rc;

	if ((rc = cfg_read_file(path, &text, why)) == 0)
		rc = params_load_text(path, text.data, text.len, why);
	buf_free(&text);
	return rc;
}
