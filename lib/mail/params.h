/*
 * params - every herald.conf setting, in one table.
 *
 * Each key has a global var_<key> holding its typed value (see config.h
 * for the types). params_load() sets defaults, reads the file and checks
 * cross-key rules; on failure why says "file:line: reason". The same table
 * drives `heraldctl config` and the herald.conf(5) page, so the
 * documentation cannot drift from the code.
 *
 * Path settings may be relative: params_load() makes them absolute,
 * relative to the folder of the configuration file, so a test instance
 * lives in one folder.
 *
 * master reads the file once, and services get the very text it checked:
 * a memfd at the descriptor named by $HERALD_CONFIG_FD (service.c). So a
 * file edited but refused by a reload, or edited while services start,
 * never reaches a service that master (re)starts.
 */
#ifndef MAIL_PARAMS_H
#define MAIL_PARAMS_H

#include <stdbool.h>

#include "base/config.h"

struct buf;

/* identity */
extern char *var_myhostname;		/* name in greetings, Received: */
extern char *var_mydomain;		/* first hosted domain hint (demo, package) */
/* places */
extern char *var_spool_directory;	/* the queue (DESIGN.md §4) */
extern char *var_data_directory;	/* LMDB directory and password db */
extern char *var_run_directory;		/* master.sock, master.pid */
extern char *var_mail_location;		/* Maildir template: %d domain, %n local, %u user@domain */
extern char *var_daemon_directory;	/* service programs */
extern char *var_log_destination;	/* auto, syslog or file */
extern char *var_log_file;		/* log file without syslog; "" none */
/* users (only when started as root) */
extern char *var_herald_user;		/* smtpd, qmgr, remote */
extern char *var_vmail_user;		/* local, imapd, pop3d */
extern char *var_auth_user;		/* authd */
extern char *var_directory_group;	/* group that may read the directory */
/* smtpd */
extern char *var_smtpd_listen;		/* list of host:port for port 25 role */
extern char *var_smtpd_banner;		/* text after "220 hostname " */
extern long long var_smtpd_workers;	/* 0 = one per core */
extern long long var_smtpd_commit_delay;	/* microseconds */
extern long long var_message_size_limit;	/* bytes */
extern long long var_smtpd_recipient_limit;
extern long long var_smtpd_line_limit;	/* command line incl. CRLF */
extern long long var_smtpd_error_limit;	/* errors before disconnect */
extern long long var_smtpd_client_limit;	/* sessions per client address */
extern long long var_smtpd_submit_uid_limit;	/* sendmail sessions/uid */
extern long long var_smtpd_max_sessions;	/* sessions per worker */
extern long long var_smtpd_idle_timeout;	/* seconds */
extern long long var_smtpd_session_timeout;	/* seconds */
extern long long var_queue_minfree;	/* bytes kept free in the spool */
extern long long var_smtpd_client_transaction_limit; /* open tx/client */
extern long long var_smtpd_min_data_rate;	/* bytes/s, 0 = none */
extern long long var_smtpd_data_rate_window;	/* seconds */
extern long long var_smtpd_junk_command_limit;	/* NOOPs &c per message */
/* smtpd submission roles */
extern char *var_submission_listen;	/* port 587 role, STARTTLS + AUTH */
extern char *var_submissions_listen;	/* port 465 role, implicit TLS */
extern char *var_mynetworks;		/* may relay without AUTH */
extern char *var_smtpd_sender_login;	/* strict | envelope | any */
extern bool var_submission_received_client;	/* client IP in Received: */
extern long long var_submission_message_rate_limit;	/* per user, hour */
extern long long var_submission_recipient_rate_limit;	/* per user, hour */
extern long long var_tls_handshake_timeout;	/* seconds */
extern char *var_tls_cert_file;
extern char *var_tls_key_file;
/* queue */
extern long long var_queue_scan_interval;	/* seconds between full scans */
extern long long var_minimal_backoff_time;	/* seconds */
extern long long var_maximal_backoff_time;	/* seconds */
extern long long var_maximal_queue_lifetime;	/* seconds */
extern long long var_delay_warning_time;	/* seconds, 0: no warnings */
extern long long var_bounce_size_limit;	/* bytes of a RET=FULL return */
extern long long var_local_processes;	/* local delivery agents */
extern long long var_local_batch_size;	/* requests per agent at once */
extern long long var_delivery_timeout;	/* seconds for one delivery request */
/* local delivery */
extern long long var_default_quota;	/* bytes, 0 = unlimited */
extern bool var_quota_exceeded_bounce;	/* true: 5.2.2 bounce; false: defer 4.2.2 */
extern long long var_hopcount_limit;	/* Received:/Delivered-To: headers */
extern char *var_recipient_delimiter;	/* "+" for user+tag@ */
extern long long var_alias_depth_limit;
extern long long var_alias_expansion_limit;
extern char *var_postmaster_address;	/* "" or who gets postmaster@ */
extern char *var_srs_domain;		/* "": resolve_srs_domain decides */
extern char *var_srs_secret_file;	/* SRS key (derived when empty) */
extern long long var_local_copy_limit;
/* pop3d */
extern char *var_pop3d_listen;		/* POP3 with STLS, host:port list */
extern char *var_pop3s_listen;		/* POP3 over implicit TLS */
extern long long var_pop3d_workers;	/* 0 = one per core */
extern long long var_pop3d_max_sessions;	/* sessions per worker */
extern long long var_pop3d_client_limit;	/* sessions per client address */
extern long long var_pop3d_idle_timeout;	/* seconds (RFC 1939: >= 10 min) */
extern long long var_pop3d_session_timeout;	/* seconds */
extern long long var_pop3d_command_limit;	/* commands before login */
extern long long var_pop3d_error_limit;	/* errors before disconnect */
extern long long var_pop3d_maildrop_threads; /* maildrop threads/worker */
extern long long var_pop3d_junk_command_limit;	/* NOOPs &c after login */
extern long long var_pop3d_preauth_input_limit;	/* bytes before login */
/* imapd */
extern char *var_imap_listen;		/* IMAP with STARTTLS, host:port list */
extern char *var_imaps_listen;		/* IMAP over implicit TLS */
extern long long var_imapd_workers;	/* 0 = one per core */
extern long long var_imapd_max_sessions;	/* sessions per worker */
extern long long var_imapd_client_limit;	/* sessions per client address */
extern long long var_imapd_idle_timeout;	/* seconds after login */
extern long long var_imapd_preauth_timeout;	/* seconds before login */
extern long long var_imapd_command_limit;	/* commands before login */
extern long long var_imapd_error_limit;	/* errors before BYE */
extern long long var_imapd_preauth_input_limit;	/* bytes before login */
extern long long var_imapd_literal_limit;	/* one literal after login */
extern long long var_imapd_job_threads;	/* store threads per worker */
extern bool var_imapd_compress;		/* COMPRESS=DEFLATE offered */
/* authd and logins */
extern long long var_auth_processes;	/* authd pool size */
extern long long var_auth_timeout;	/* seconds a server waits for authd */
extern char *var_auth_plaintext;	/* never | loopback | always */
extern char *var_auth_default_domain;	/* appended to logins without '@' */
extern long long var_auth_failure_window;	/* seconds failures are remembered */
extern long long var_auth_failure_delay;	/* seconds, doubles per failure */
extern long long var_auth_failure_delay_max;	/* seconds */
extern long long var_auth_client_lockout;	/* failures per client address */
extern long long var_auth_account_lockout;	/* failures per account */
extern long long var_auth_lockout_time;	/* seconds a lockout lasts */
extern long long var_auth_answer_floor;	/* ms a failed login lasts */
extern long long var_auth_account_window;	/* seconds, account as a whole */
extern long long var_auth_account_prefix_lockout; /* per account+prefix */
extern long long var_auth_known_prefix_time;	/* seconds a good prefix lasts */
extern long long var_auth_known_prefix_max;	/* good prefixes per account */
extern long long var_auth_prefix_v4;	/* prefix length, one client */
extern long long var_auth_prefix_v6;
extern long long var_auth_prefix_inflight;	/* per prefix per process */
extern long long var_auth_process_inflight;	/* sent to authd at once */
extern long long var_auth_queue_limit;	/* queued per server process */
extern long long var_auth_cache_ttl;	/* s a good login stays known */
extern long long var_auth_cache_size;	/* logins known per authd */
/* DNS (lib/mail/dns.c) */
extern char *var_dns_forwarders;	/* addr[@port] list; "" resolv.conf */
extern char *var_dns_stub_zones;	/* zone=addr[@port] list */
extern char *var_dns_trust_anchor_file;	/* DNSSEC anchors; "" none */
extern long long var_dns_timeout;	/* seconds for one lookup */
/* DKIM (lib/mail/dkim.c, heraldctl dkim) */
extern char *var_dkim_directory;	/* DOMAIN/SELECTOR.{ed25519,rsa}.key */
extern char *var_dkim_group;	/* may read the private keys */
extern char *var_dkim_user;		/* the signer */
extern long long var_signer_processes;	/* signer pool size */
extern long long var_signer_timeout;	/* seconds smtpd waits for it */
/* remote delivery */
extern long long var_remote_processes;	/* remote delivery agents */
extern long long var_remote_destination_concurrency_limit; /* per domain */
extern long long var_initial_destination_concurrency;	/* to begin with */
extern long long var_destination_concurrency_failed_cohort_limit; /* dead */
extern char *var_inet_protocols;	/* all, ipv4, ipv6 */
extern char *var_smtp_tls_security_level;	/* none ... dane */
extern char *var_relayhost;		/* next hop of other domains, "" */
extern char *var_smtp_sasl_password_file; /* "nexthop user:pass" lines */
extern char *var_smtp_tls_ca_file;	/* CAs to verify servers, "" */
extern long long var_smtp_port;		/* port of remote MX hosts */
extern long long var_smtp_connect_timeout;	/* seconds, per address */
extern long long var_smtp_helo_timeout;	/* seconds: greeting, EHLO */
extern long long var_smtp_mail_timeout;	/* seconds: MAIL reply */
extern long long var_smtp_rcpt_timeout;	/* seconds: each RCPT reply */
extern long long var_smtp_data_init_timeout;	/* seconds: DATA reply */
extern long long var_smtp_data_xfer_timeout;	/* seconds: content block */
extern long long var_smtp_data_done_timeout;	/* seconds: final dot */
extern long long var_smtp_connection_cache_time_limit; /* s idle, 0: off */
extern long long var_smtp_connection_reuse_count_limit; /* per session */
extern bool var_smtp_use_chunking;	/* BDAT to servers with CHUNKING */
/* master */
extern long long var_stop_timeout;	/* seconds sessions get on stop/reload */

/* the descriptor master hands every service the checked text on */
#define PARAMS_CONFIG_FD_ENV "HERALD_CONFIG_FD"

/* params_table - the table itself, for heraldctl config and the man page */
extern struct cfg_entry params_table[];

/* params_config_path - -c argument, else $HERALD_CONF, else the default */
const char *params_config_path(const char *arg);
/* params_load - defaults + file + checks; -1 with "file:line: why" */
int params_load(const char *path, struct buf *why);
/* params_load_text - the same, with the text of path already read (path
 * names it in messages and anchors relative paths) */
int params_load_text(const char *path, const char *text, size_t len,
    struct buf *why);
/* params_config_dir - folder of the loaded configuration file */
const char *params_config_dir(void);

#endif
