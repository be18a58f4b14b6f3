/*
 * resolve - from one recipient address to the mailboxes it stands for:
 * users, "+ext", aliases (recursively) and the catch-all, looked up in
 * the directory; with the parts that fail, the worst of them kept.
 *
 * Two programs use it: local resolves each recipient before it delivers
 * (resolve_addr), and smtpd refuses at RCPT a recipient whose alias
 * expansion is too large (resolve_check), so that the two agree on what
 * an address expands to. resolve.c documents the lookup order, the
 * limits and the status codes.
 *
 * An alias target in a domain that is not hosted is no mailbox: it is
 * kept in r->remote, and qmgr forwards a copy of the message there
 * (qmgr_forward.c) once local has delivered the rest.
 *
 * A struct resolved is owned by the caller: zeroed or freed before a
 * resolution, which always fills it, and resolve_free after. Failures are
 * not returned but kept in r->fail; the mailboxes found are kept even
 * when a part fails.
 */
#ifndef MAIL_RESOLVE_H
#define MAIL_RESOLVE_H

#include <stdbool.h>
#include <stddef.h>

#include "mail/outcome.h"

struct dir;

/* one mailbox an address resolves to */
struct resolve_box {
	char *addr;		/* the user: lowercased local@domain */
	long long quota;	/* bytes; 0: none (default applied) */
};

/* the result of resolving one recipient */
struct resolved {
	struct resolve_box *box;	/* mailboxes, no duplicates */
	size_t nbox;
	size_t cap;
	char **remote;		/* alias targets in other domains, once each */
	size_t nremote;
	struct outcome fail;	/* worst failing part, or OUTCOME_OK */
	char **seen;		/* lookup keys met in this expansion */
	size_t nseen;
	size_t nmember;		/* alias members met (not the recipient) */
	size_t expand_limit;	/* most members allowed */
	bool too_large;		/* stopped: more than expand_limit */
	char *top_alias;	/* the alias the recipient hit, or NULL */
	bool top_known;		/* top_alias was known: not expanded */
	char *const *known;	/* aliases not to expand (_check) */
	size_t nknown;
};

/* resolve_addr - resolve addr (a recipient) against the directory:
 * users, user without extension (delim, 0: none), alias, alias without
 * extension, catch-all; alias targets recursively up to depth_limit,
 * alias_expansion_limit members at most.
 * r must be zeroed or freed before; always fills r (failures in r->fail) */
void resolve_addr(struct dir *d, const char *addr, char delim,
    int depth_limit, struct resolved *r);
/* resolve_check - resolve_addr with expand_limit members at most
 * (r->too_large when there are more), where a top-level alias whose key is
 * one of known[0..nknown) is taken as it is, not expanded (r->top_known):
 * smtpd's RCPT check, which remembers the aliases it expanded already */
void resolve_check(struct dir *d, const char *addr, char delim,
    int depth_limit, size_t expand_limit, char *const *known, size_t nknown,
    struct resolved *r);
/* resolve_is_postmaster - is addr "postmaster@domain" (any case)? Such an
 * address that no user, alias or catch-all takes resolves to
 * postmaster_address or the domain's admin (RFC 5321 section 4.5.1) */
bool resolve_is_postmaster(const char *addr);
/* resolve_postmaster_domain - the domain a bare "postmaster" recipient
 * (RFC 5321 section 4.1.1.3) stands for, into out: mydomain if set, else
 * myhostname if hosted, else the first hosted domain (d may be NULL) */
void resolve_postmaster_domain(struct dir *d, struct buf *out);
/* resolve_free - release r (reusable afterwards) */
void resolve_free(struct resolved *r);

#endif
