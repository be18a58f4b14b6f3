/*
 * master_preflight - before master accepts a configuration (at start and
 * at every reload), check what each enabled service will load when it
 * starts, so that a bad one is refused with its reason while the old
 * services go on, instead of being accepted and leaving the services
 * crash-looping:
 *
 *   - (as root) the service's user exists, and directory_group, which
 *     every service joins;
 *   - the TLS certificate chain and key of a service that serves TLS
 *     (smtpd, pop3d, imapd) load and match, checked in a child that has
 *     dropped to the service's user (mail/preflight.h), so a key only
 *     root can read is refused as the service would refuse it.
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

struct master_preflight_row {
	const char *service;
	char **user;		/* the user it drops to */
	bool tls;		/* loads tls_cert_file and tls_key_file */
};

static const struct master_preflight_row master_preflight_table[] = {
	{"authd", &var_auth_user, false},
	{"smtpd", &var_herald_user, true},
	{"qmgr", &var_herald_user, false},
	{"local", &var_vmail_user, false},
	{"pop3d", &var_vmail_user, true},
	{"imapd", &var_vmail_user, true},
	{NULL, NULL, false},
};

/* master_preflight_service - can service name start with the settings in
 * force now? -1 with why, which names the service */
int
master_preflight_service(const char *name, struct buf *why)
{
	const struct master_preflight_row *row;
	struct buf reason = BUF_INIT;
	bool root = geteuid() == 0;
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
	if (rc == 0 && row->tls && *var_tls_cert_file != '\0' &&
	    preflight_tls(root ? *row->user : NULL, var_directory_group,
	    var_tls_cert_file, var_tls_key_file, &reason) < 0) {
		buf_printf(why, "service %s cannot load its TLS certificate "
		    "(tls_cert_file, tls_key_file)%s%s: %s", name,
		    root ? " as user " : "", root ? *row->user : "",
		    buf_cstr(&reason));
		buf_free(&reason);
		return -1;
	}
	if (rc < 0)
		buf_printf(why, "service %s: %s", name, buf_cstr(&reason));
	buf_free(&reason);
	return rc;
}
