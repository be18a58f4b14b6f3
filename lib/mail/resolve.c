/*
 * resolve - from a recipient address to the mailboxes it stands for
 * (resolve.h).
 *
 * Lookup order for one address (lowercased): the user itself; the user
 * without "+ext" (recipient_delimiter); an alias; an alias without
 * "+ext"; the catch-all alias "@domain". Alias targets are resolved the
 * same way, recursively, at most depth_limit levels deep. Every lookup
 * key met in one expansion is remembered, and a key met again is
 * skipped, so alias loops end and a mailbox reached twice gets one copy.
 *
 * The expansion is bounded by alias_expansion_limit: every distinct
 * address met as an alias member (through nested aliases and the
 * catch-all) counts, the recipient itself does not; so directory lookups
 * are bounded too (an address met again costs no lookup).
 * Past the limit the resolution stops with r->too_large and a 5.5.3
 * failure, and local delivers none of it (smtpd refuses such a
 * recipient at RCPT with resolve_check, so this happens only when
 * an alias grew after the message was accepted).
 *
 * postmaster@domain (any case) that nothing above takes goes to
 * postmaster_address, else to the domain's admin (its first user); with
 * neither it defers 4.3.0 (resolve_postmaster). A user, alias or
 * catch-all of the domain wins over this default.
 *
 * A target outside the hosted domains is kept in r->remote (as written,
 * once): qmgr forwards the message there (issue 15). The recipient
 * itself outside them fails 5.1.2 (qmgr sends such recipients to remote,
 * never here).
 *
 * Failures are per part: a target that resolves to nothing bounces 5.1.1,
 * a disabled user bounces 5.2.1, a directory error defers
 * 4.3.0. The worst part wins (deferred over bounced), and its reason
 * names the part when it is not the recipient itself.
 */
#include <string.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/addr.h"
#include "mail/dir.h"
#include "mail/outcome.h"
#include "mail/params.h"
#include "mail/resolve.h"

/* resolve_fail - note a failing part; the worst (then first) wins */
static void
resolve_fail(struct resolved *r, const char *part,
    const char *top, enum outcome_status st, const char *dsn, const char *text)
{
	if (st <= r->fail.status)
		return;
	if (str_casecmp(part, top) == 0)
		outcome_set(&r->fail, st, dsn, "%s", text);
	else
		outcome_set(&r->fail, st, dsn, "<%s>: %s", part, text);
}

/* resolve_seen - remember key; true if it was met before */
static bool
resolve_seen(struct resolved *r, const char *key)
{
	for (size_t i = 0; i < r->nseen; i++)
		if (strcmp(r->seen[i], key) == 0)
			return true;
	r->seen = xreallocarray(r->seen, r->nseen + 1, sizeof(*r->seen));
	r->seen[r->nseen++] = xstrdup(key);
	return false;
}

/* resolve_box_add - add a mailbox (once) */
static void
resolve_box_add(struct resolved *r, const char *user,
    const struct dir_user *u)
{
	long long quota = u->quota < 0 ? var_default_quota : u->quota;

	for (size_t i = 0; i < r->nbox; i++)
		if (strcmp(r->box[i].addr, user) == 0)
			return;
	if (r->nbox == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 4;
		r->box = xreallocarray(r->box, r->cap, sizeof(*r->box));
	}
	r->box[r->nbox].addr = xstrdup(user);
	r->box[r->nbox].quota = quota;
	r->nbox++;
}

/* resolve_syntax - can key name a directory entry at all? */
static bool
resolve_syntax(const char *key)
{
	const char *at = strrchr(key, '@');

	if (at == NULL || at == key || at[1] == '\0')
		return false;
	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		if (*p <= ' ' || *p == 0x7f)
			return false;
	return true;
}

static void resolve_one(struct dir *, struct resolved *,
    const char *, const char *, char, int, int);

/* resolve_targets - resolve each "\n"-separated alias target */
static void
resolve_targets(struct dir *d, struct resolved *r,
    const char *part, const char *targets, const char *top, char delim,
    int depth, int limit)
{
	const char *p = targets;

	if (depth > limit) {
		resolve_fail(r, part, top, OUTCOME_BOUNCED, "5.4.6",
		    "alias expansion is nested too deeply");
		return;
	}
	while (*p && !r->too_large) {
		size_t n = strcspn(p, "\n");

		if (n > 0) {
			char *t = xstrndup(p, n);

			resolve_one(d, r, t, top, delim, depth, limit);
			x_free(&t);
		}
		p += n;
		if (*p == '\n')
			p++;
	}
}

/* resolve_dir_error - a failed lookup defers that part */
static void
resolve_dir_error(struct resolved *r, const char *part,
    const char *top, const struct buf *why)
{
	struct buf t = BUF_INIT;

	buf_printf(&t, "directory lookup failed: %s", buf_cstr(why));
	resolve_fail(r, part, top, OUTCOME_DEFERRED, "4.3.0",
	    buf_cstr(&t));
	buf_free(&t);
}

/* resolve_user - the user key, if it exists: 1 taken, 0 not, -1
 * directory error (noted) */
static int
resolve_user(struct dir *d, struct resolved *r, const char *key,
    const char *part, const char *top)
{
	struct buf why = BUF_INIT;
	struct dir_user u;
	int found = dir_user_get(d, key, &u, &why);

	if (found < 0)
		resolve_dir_error(r, part, top, &why);
	else if (found > 0) {
		if (!u.enabled)
			resolve_fail(r, part, top, OUTCOME_BOUNCED, "5.2.1",
			    "mailbox disabled");
		else
			resolve_box_add(r, key, &u);
	}
	buf_free(&why);
	return found;
}

/* resolve_alias - the alias key's targets, if it exists: 1 taken,
 * 0 not, -1 directory error (noted) */
static int
resolve_alias(struct dir *d, struct resolved *r, const char *key,
    const char *part, const char *top, char delim, int depth, int limit)
{
	struct buf why = BUF_INIT, targets = BUF_INIT;
	int found = dir_alias_get(d, key, &targets, &why);

	if (found < 0)
		resolve_dir_error(r, part, top, &why);
	else if (found > 0 && depth == 0) {
		r->top_alias = xstrdup(key);
		for (size_t i = 0; i < r->nknown; i++)
			if (strcmp(r->known[i], key) == 0)
				r->top_known = true;
	}
	if (found > 0 && !r->top_known)
		resolve_targets(d, r, part, buf_cstr(&targets), top,
		    delim, depth + 1, limit);
	buf_free(&why);
	buf_free(&targets);
	return found;
}

/* resolve_is_postmaster - local part "postmaster", any case */
bool
resolve_is_postmaster(const char *addr)
{
	return str_ncasecmp(addr, "postmaster@", 11) == 0 && addr[11] != '\0';
}

/* resolve_first_domain - keep the first domain listed */
static void
resolve_first_domain(const char *domain, void *ctx)
{
	struct buf *out = ctx;

	if (out->len == 0)
		buf_set(out, domain);
}

/* resolve_postmaster_domain - the domain of a bare "postmaster" */
void
resolve_postmaster_domain(struct dir *d, struct buf *out)
{
	struct buf why = BUF_INIT;

	buf_reset(out);
	if (*var_mydomain != '\0') {
		buf_set(out, var_mydomain);
	} else if (d != NULL && dir_domain_exists(d, var_myhostname,
	    &why) <= 0) {
		buf_reset(&why);
		if (dir_domain_list(d, resolve_first_domain, out, &why) < 0)
			buf_reset(out);
	}
	if (out->len == 0)
		buf_set(out, var_myhostname);
	buf_free(&why);
}

/*
 * resolve_postmaster - postmaster@domain that no user, alias or catch-all
 * takes (RFC 5321 section 4.5.1: every domain has one): postmaster_address
 * if set, else the domain's admin (its first user, dir_domain_postmaster),
 * each resolved like an alias target. A domain with neither has nobody to
 * read it: defer, so the sender retries and nothing is lost while the
 * admin adds a user or an alias.
 */
static void
resolve_postmaster(struct dir *d, struct resolved *r, const char *domain,
    const char *part, const char *top, char delim, int depth, int limit)
{
	struct buf admin = BUF_INIT, why = BUF_INIT;
	int found;

	if (*var_postmaster_address != '\0') {
		resolve_targets(d, r, part, var_postmaster_address, top, delim,
		    depth + 1, limit);
		return;
	}
	found = dir_domain_postmaster(d, domain, &admin, &why);
	if (found < 0)
		resolve_dir_error(r, part, top, &why);
	else if (found > 0)
		resolve_targets(d, r, part, buf_cstr(&admin), top, delim,
		    depth + 1, limit);
	else
		resolve_fail(r, part, top, OUTCOME_DEFERRED, "4.3.0",
		    "no mailbox for postmaster: the domain has no users, no "
		    "postmaster alias, and postmaster_address is not set");
	buf_free(&admin);
	buf_free(&why);
}

/* resolve_one - resolve one address of the expansion */
static void
resolve_one(struct dir *d, struct resolved *r, const char *addr,
    const char *top, char delim, int depth, int limit)
{
	struct buf key = BUF_INIT, base = BUF_INIT, why = BUF_INIT;
	struct buf catchall = BUF_INIT;
	const char *domain;
	bool has_base;
	int found;

	addr_lookup_key(&key, addr);
	if (resolve_seen(r, buf_cstr(&key)))
		goto out;	/* a loop, or a mailbox already reached */
	if (depth > 0 && ++r->nmember > r->expand_limit) {
		r->too_large = true;
		resolve_fail(r, top, top, OUTCOME_BOUNCED, "5.5.3",
		    "alias expansion is too large "
		    "(over alias_expansion_limit)");
		goto out;
	}
	if (!resolve_syntax(buf_cstr(&key))) {
		resolve_fail(r, addr, top, OUTCOME_BOUNCED,
		    depth == 0 ? "5.1.1" : "5.1.3",
		    depth == 0 ? "unknown user" : "bad address syntax");
		goto out;
	}
	domain = addr_domain(buf_cstr(&key));
	found = dir_domain_exists(d, domain, &why);
	if (found < 0) {
		struct buf t = BUF_INIT;

		buf_printf(&t, "directory lookup failed: %s", buf_cstr(&why));
		resolve_fail(r, addr, top, OUTCOME_DEFERRED, "4.3.0",
		    buf_cstr(&t));
		buf_free(&t);
		goto out;
	}
	if (found == 0 && depth > 0) {
		r->remote = xreallocarray(r->remote, r->nremote + 1,
		    sizeof(*r->remote));
		r->remote[r->nremote++] = xstrdup(addr);
		goto out;
	}
	if (found == 0) {
		resolve_fail(r, addr, top, OUTCOME_BOUNCED, "5.1.2",
		    "domain is not hosted here");
		goto out;
	}
	has_base = addr_strip_extension(buf_cstr(&key), delim, &base) == 1;

	if (resolve_user(d, r, buf_cstr(&key), addr, top) != 0)
		goto out;
	if (has_base && resolve_user(d, r, buf_cstr(&base), addr,
	    top) != 0)
		goto out;
	if (resolve_alias(d, r, buf_cstr(&key), addr, top, delim, depth,
	    limit) != 0)
		goto out;
	if (has_base && resolve_alias(d, r, buf_cstr(&base), addr, top,
	    delim, depth, limit) != 0)
		goto out;
	buf_printf(&catchall, "@%s", domain);
	if (resolve_alias(d, r, buf_cstr(&catchall), addr, top, delim,
	    depth, limit) != 0)
		goto out;
	if (resolve_is_postmaster(buf_cstr(&key))) {
		resolve_postmaster(d, r, domain, addr, top, delim, depth,
		    limit);
		goto out;
	}
	resolve_fail(r, addr, top, OUTCOME_BOUNCED, "5.1.1",
	    "unknown user");
out:
	buf_free(&key);
	buf_free(&base);
	buf_free(&why);
	buf_free(&catchall);
}

/* resolve_check - resolve with a given limit and known aliases */
void
resolve_check(struct dir *d, const char *addr, char delim,
    int depth_limit, size_t expand_limit, char *const *known, size_t nknown,
    struct resolved *r)
{
	memset(r, 0, sizeof(*r));
	outcome_init(&r->fail);
	r->expand_limit = expand_limit;
	r->known = known;
	r->nknown = nknown;
	resolve_one(d, r, addr, addr, delim, 0, depth_limit);
	r->known = NULL;
	r->nknown = 0;
	/* only skipped parts: the aliases lead back to themselves */
	if (r->nbox == 0 && r->nremote == 0 && r->fail.status == OUTCOME_OK &&
	    !r->top_known)
		outcome_set(&r->fail, OUTCOME_BOUNCED, "5.4.6",
		    "mail forwarding loop: aliases lead to no mailbox");
}

/* resolve_addr - resolve a recipient against the directory */
void
resolve_addr(struct dir *d, const char *addr, char delim, int depth_limit,
    struct resolved *r)
{
	resolve_check(d, addr, delim, depth_limit,
	    (size_t)var_alias_expansion_limit, NULL, 0, r);
}

/* resolve_free - release r */
void
resolve_free(struct resolved *r)
{
	for (size_t i = 0; i < r->nbox; i++)
		x_free(&r->box[i].addr);
	x_free(&r->box);
	for (size_t i = 0; i < r->nremote; i++)
		x_free(&r->remote[i]);
	x_free(&r->remote);
	for (size_t i = 0; i < r->nseen; i++)
		x_free(&r->seen[i]);
	x_free(&r->seen);
	x_free(&r->top_alias);
	outcome_free(&r->fail);
	memset(r, 0, sizeof(*r));
}
