/*
 * master_preflight - before master accepts a configuration (at start and
 * at every reload), check what each enabled service will load when it
 * starts, so that a bad one is refused with its reason while the old
 * services go on, instead of being accepted and leaving the services
 * crash-looping:
 *
 *   - (as root) the service's user exists, and directory_group, which
 *     every service joins (and dkim_group, which the signer joins);
 *   - the TLS certificate chain and key of a service that serves TLS
 *     (smtpd, pop3d, imapd) load and match, read with the identity the
 *     service reads them with, in a child (mail/preflight.h): smtpd and
 *     pop3d load them in their pre_drop callback, before they drop to
 *     their user, so with master's own (a key only root can read, the
 *     usual 0600 root file, is fine); a service that loaded them after
 *     its drop would be checked as its user (TLS_AS_USER), so that a
 *     key its user cannot read is refused here and not in a crash loop.
 *
 * Listen addresses need no check here: master_service_configure opens
 * every new one before anything is committed, and a reload keeps the
 * ones master already holds. Folders are made by master_prepare.
 *
 * The table is keyed by service name, so a new service only needs a row
 * here if it runs as a user of its own or loads TLS.
 */
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "mail/params.h"
#include "mail/preflight.h"
#include "master.h"

/* when a service loads tls_cert_file and tls_key_file */
enum master_preflight_tls {
	TLS_NONE,		/* never */
	TLS_BEFORE_DROP,	/* in pre_drop, as master's user */
	TLS_AS_USER,		/* after the drop, as its own user */
};

struct master_preflight_row {
	const char *service;
	char **user;		/* the user it drops to */
	enum master_preflight_tls tls;
};

static const struct master_preflight_row master_preflight_table[] = {
	{"authd", &var_auth_user, TLS_NONE},
	{"signer", &var_dkim_user, TLS_NONE},
	{"smtpd", &var_herald_user, TLS_BEFORE_DROP},
	{"qmgr", &var_herald_user, TLS_NONE},
	{"local", &var_vmail_user, TLS_NONE},
	{"remote", &var_herald_user, TLS_NONE},
	{"pop3d", &var_vmail_user, TLS_BEFORE_DROP},
	{"imapd", &var_vmail_user, TLS_BEFORE_DROP},
	{NULL, NULL, TLS_NONE},
};

/* master_preflight_service - can service name start with the settings in
 * force now? -1 with why, which names the service */
int
master_preflight_service(const char *name, struct buf *why)
{
	const struct master_preflight_row *row;
	struct buf reason = BUF_INIT;
	bool root = geteuid() == 0;
	const char *as = NULL;
	int rc = 0;

	for (row = master_preflight_table; row->service != NULL; row++)
		if (strcmp(row->service, name) == 0)
			break;
	if (row->service == NULL)
		return 0;
	if (root && (preflight_user("user", *row->user, NULL, NULL,
	    &reason) < 0 || preflight_group("directory_group",
	    var_directory_group, NULL, &reason) < 0))
		rc = -1;
	/* the signer joins dkim_group, which alone reads the keys */
	if (root && rc == 0 && row->user == &var_dkim_user &&
	    preflight_group("dkim_group", var_dkim_group, NULL, &reason) < 0)
		rc = -1;
	if (root && row->tls == TLS_AS_USER)
		as = *row->user;
	if (rc == 0 && row->tls != TLS_NONE && *var_tls_cert_file != '\0' &&
	    preflight_tls(as, var_directory_group, var_tls_cert_file,
	    var_tls_key_file, &reason) < 0) {
		buf_printf(why, "service %s cannot load its TLS certificate "
		    "(tls_cert_file, tls_key_file)%s%s: %s", name,
		    as ? " as user " : "", as ? as : "", buf_cstr(&reason));
		buf_free(&reason);
		return -1;
	}
	if (rc < 0)
		buf_printf(why, "service %s: %s", name, buf_cstr(&reason));
	buf_free(&reason);
	return rc;
}
