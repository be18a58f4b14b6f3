/*
 * smtpd_check - policy checks: may this recipient be accepted, is there
 * room in the spool (next to what open transactions reserve, see
 * smtpd_space.c), and the per-transaction recipient set.
 *
 * Recipients are checked against the directory (dir_rcpt_check). herald
 * is never an open relay: a recipient in a domain we do not host is
 * refused with 554 5.7.1 unless the session may relay (a logged-in
 * user, a client in mynetworks, or sendmail on the submit socket:
 * smtpd_session_may_relay).
 *
 * A logged-in user may send only as an address that leads to them
 * (smtpd_sender_login): the address is resolved as a recipient would be
 * (resolve.c: user, +extension, aliases recursively, catch-all), and
 * one of the mailboxes found must be the login.
 *
 * A logged-in user's messages and recipients per hour are bounded
 * (submission_message_rate_limit, submission_recipient_rate_limit) by
 * counts every worker shares (lib/mail/sendrate.h): over one, MAIL or
 * RCPT gets 451 4.7.1, the refusal is noted for heraldctl status, and a
 * queued message adds to the counts. If the count file cannot be used,
 * mail is not refused for it (a warning, and a retry a minute later). The directory is
 * opened read-only once per worker, after the privilege drop; if it cannot
 * be opened, RCPT gets 451 4.3.0 and the open is retried (at most once a
 * second), so a missing directory delays mail and never loses it.
 *
 * A recipient that expands to more than alias_expansion_limit addresses
 * is refused at RCPT (550 5.5.3) rather than bounced after 250 to a
 * sender who may be forged: the expansion is done here with the resolver
 * local delivers with (lib/mail/resolve.c), stopping past the limit. So
 * that "all+1@" .. "all+999@" do not expand "all@" a thousand times, a
 * worker remembers for SMTPD_CHECK_KNOWN_MS the aliases it found within
 * the limit (at most SMTPD_CHECK_KNOWN), with their number of mailboxes;
 * an alias that grew meanwhile is still caught by local, which bounces
 * it whole.
 *
 * RCPT TO an SRS address of srs_domain (SRS0=...@, SRS1=...@: a bounce to
 * mail qmgr forwarded with a rewritten sender) is taken back to the
 * address it stands for when its hash and age are good
 * (smtpd_check_srs), from any client, as postsrsd does: the original
 * sender's domain may be anywhere. A forged or expired one gets 550
 * 5.1.1.
 *
 * The copies a transaction's recipients make are counted while it is
 * open: each mailbox a recipient names directly, and each alias's (or
 * catch-all's) mailboxes, once per transaction (tx->copy_set). Past
 * local_copy_limit a recipient gets 452 4.5.3, as past
 * smtpd_recipient_limit, and the client sends it in another transaction
 * (550 5.5.3 if it alone is over the limit: it would never fit).
 * Mailboxes reached through two aliases are counted twice,
 * so the count is an upper bound; local removes the duplicates and
 * enforces the same limit exactly.
 */
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/evloop.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/addr.h"
#include "mail/dir.h"
#include "mail/outcome.h"
#include "mail/params.h"
#include "mail/resolve.h"
#include "mail/sendrate.h"
#include "mail/spool.h"
#include "mail/srs.h"
#include "mail/srs_site.h"
#include "smtpd.h"

#define SMTPD_CHECK_RETRY_MS 1000	/* directory re-open interval */
#define SMTPD_CHECK_SPACE_MS 1000	/* free space is cached this long */
#define SMTPD_CHECK_KNOWN 64		/* aliases known within the limit */
#define SMTPD_CHECK_KNOWN_MS 10000	/* ... remembered this long */

#define SMTPD_CHECK_RATE_RETRY_MS 60000	/* count file re-open interval */

static struct dir *smtpd_check_dir;
static struct sendrate *smtpd_check_counts;
static long long smtpd_check_rate_tried = -SMTPD_CHECK_RATE_RETRY_MS;
static long long smtpd_check_dir_tried = -SMTPD_CHECK_RETRY_MS;
static long long smtpd_check_space_at = -SMTPD_CHECK_SPACE_MS;
static long long smtpd_check_space;
static char *smtpd_check_known[SMTPD_CHECK_KNOWN];
static long long smtpd_check_known_at[SMTPD_CHECK_KNOWN];
static size_t smtpd_check_known_boxes[SMTPD_CHECK_KNOWN];
static size_t smtpd_check_nknown;

/* smtpd_check_open - open the directory if it is not open; -1 if not */
static int
smtpd_check_open(long long now)
{
	struct buf why = BUF_INIT;

	if (smtpd_check_dir != NULL)
		return 0;
	if (now - smtpd_check_dir_tried < SMTPD_CHECK_RETRY_MS)
		return -1;
	smtpd_check_dir_tried = now;
	if (dir_open(var_data_directory, DIR_READ, &smtpd_check_dir,
	    &why) < 0) {
		msg_warn("cannot open the directory in %s: %s; recipients "
		    "get 451 until it can be opened", var_data_directory,
		    buf_cstr(&why));
		smtpd_check_dir = NULL;
		buf_free(&why);
		return -1;
	}
	buf_free(&why);
	return 0;
}

/* smtpd_check_init - open the directory (after the privilege drop) */
void
smtpd_check_init(void)
{
	(void)smtpd_check_open(0);
}

/*
 * smtpd_check_storage - at MAIL: is there room for a transaction that
 * reserves want bytes, next to what this worker's open transactions still
 * reserve (smtpd_space.c)? The free space is asked of the kernel afresh
 * while transactions are open (their content keeps taking space), else at
 * most once a second.
 */
int
smtpd_check_storage(struct smtpd_session *s, long long want)
{
	long long now = evloop_now_ms(s->base.pool->loop);
	struct buf why = BUF_INIT;

	if (smtpd_space_worker.open > 0 ||
	    now - smtpd_check_space_at >= SMTPD_CHECK_SPACE_MS) {
		if (spool_free_bytes(var_spool_directory, &smtpd_check_space,
		    &why) < 0) {
			msg_warn("cannot get free space of %s: %s",
			    var_spool_directory, buf_cstr(&why));
			buf_free(&why);
			return 0;	/* do not refuse mail on a stat error */
		}
		smtpd_check_space_at = now;
	}
	buf_free(&why);
	if (!smtpd_space_room(&smtpd_space_worker, smtpd_check_space, want,
	    var_queue_minfree)) {
		msg_warn("not enough space in %s: %lld bytes free, %lld "
		    "reserved by %lld open transactions of this worker; need "
		    "1.5 times %lld plus queue_minfree (%lld)",
		    var_spool_directory, smtpd_check_space,
		    smtpd_space_worker.held, smtpd_space_worker.open, want,
		    var_queue_minfree);
		return -1;
	}
	return 0;
}

/* smtpd_check_known_fresh - forget the aliases remembered too long ago;
 * how many are left */
static size_t
smtpd_check_known_fresh(long long now)
{
	size_t n = smtpd_check_nknown;

	for (size_t i = 0; i < n;) {
		if (now - smtpd_check_known_at[i] < SMTPD_CHECK_KNOWN_MS) {
			i++;
			continue;
		}
		x_free(&smtpd_check_known[i]);
		n--;
		smtpd_check_known[i] = smtpd_check_known[n];
		smtpd_check_known_at[i] = smtpd_check_known_at[n];
		smtpd_check_known_boxes[i] = smtpd_check_known_boxes[n];
		smtpd_check_known[n] = NULL;
	}
	return smtpd_check_nknown = n;
}

/* smtpd_check_known_add - remember alias (nbox mailboxes) as within the
 * limit at now */
static void
smtpd_check_known_add(const char *alias, size_t nbox, long long now)
{
	size_t slot = 0;

	if (smtpd_check_known_fresh(now) < SMTPD_CHECK_KNOWN) {
		slot = smtpd_check_nknown++;
	} else {
		for (size_t i = 1; i < SMTPD_CHECK_KNOWN; i++)
			if (smtpd_check_known_at[i] <
			    smtpd_check_known_at[slot])
				slot = i;
		x_free(&smtpd_check_known[slot]);
	}
	smtpd_check_known[slot] = xstrdup(alias);
	smtpd_check_known_at[slot] = now;
	smtpd_check_known_boxes[slot] = nbox;
}

/* smtpd_check_known_boxes_of - the mailboxes of a remembered alias */
static size_t
smtpd_check_known_boxes_of(const char *alias)
{
	for (size_t i = 0; i < smtpd_check_nknown; i++)
		if (strcmp(smtpd_check_known[i], alias) == 0)
			return smtpd_check_known_boxes[i];
	return 0;
}

static uint32_t smtpd_check_hash(const char *);

/* smtpd_check_copy_insert - put key (taken) into tx's copy set */
static void
smtpd_check_copy_insert(struct smtpd_tx *tx, char *key)
{
	size_t mask = tx->copy_cap - 1;
	size_t i = smtpd_check_hash(key) & mask;

	while (tx->copy_set[i] != NULL)
		i = (i + 1) & mask;
	tx->copy_set[i] = key;
}

/* smtpd_check_copy_has - is key in tx's copy set? */
static bool
smtpd_check_copy_has(const struct smtpd_tx *tx, const char *key)
{
	size_t mask = tx->copy_cap - 1;

	if (tx->copy_cap == 0)
		return false;
	for (size_t i = smtpd_check_hash(key) & mask; tx->copy_set[i] != NULL;
	    i = (i + 1) & mask)
		if (strcmp(tx->copy_set[i], key) == 0)
			return true;
	return false;
}

/* smtpd_check_copy_add - add key (not in it) to tx's copy set */
static void
smtpd_check_copy_add(struct smtpd_tx *tx, const char *key)
{
	if (++tx->ncopy_keys * 2 > tx->copy_cap) {
		char **old = tx->copy_set;
		size_t ocap = tx->copy_cap;

		tx->copy_cap = ocap ? ocap * 2 : 16;
		tx->copy_set = xcalloc(tx->copy_cap, sizeof(*tx->copy_set));
		for (size_t i = 0; i < ocap; i++)
			if (old[i] != NULL)
				smtpd_check_copy_insert(tx, old[i]);
		x_free(&old);
	}
	smtpd_check_copy_insert(tx, xstrdup(key));
}

/*
 * smtpd_check_copies - count the copies r (addr's resolution) adds to the
 * transaction: 0, or -2 with the 452 reply if they would pass
 * local_copy_limit (-1 with a 550 if they pass it alone). An alias or
 * mailbox already counted adds nothing.
 */
static int
smtpd_check_copies(struct smtpd_tx *tx, const char *addr,
    const struct resolved *r, struct buf *reply)
{
	struct buf key = BUF_INIT;
	size_t n;

	if (r->top_alias != NULL) {
		buf_printf(&key, "a:%s", r->top_alias);
		n = r->top_known ? smtpd_check_known_boxes_of(r->top_alias) :
		    r->nbox;
	} else if (r->nbox == 1) {
		buf_printf(&key, "u:%s", r->box[0].addr);
		n = 1;
	} else {
		return 0;	/* nothing taken: local says why */
	}
	if (smtpd_check_copy_has(tx, buf_cstr(&key))) {
		buf_free(&key);
		return 0;
	}
	if ((long long)n > var_local_copy_limit) {
		/* never fits, not even alone: no use trying again */
		buf_free(&key);
		buf_puts(reply, "550 5.5.3 <");
		addr_externalize(reply, addr);
		buf_printf(reply, ">: Recipient address rejected: alias "
		    "reaches more than %lld mailboxes", var_local_copy_limit);
		return -1;
	}
	if (tx->copies + (long long)n > var_local_copy_limit) {
		buf_free(&key);
		buf_puts(reply, "452 4.5.3 <");
		addr_externalize(reply, addr);
		buf_printf(reply, ">: Too many recipients: the message would "
		    "reach more than %lld mailboxes", var_local_copy_limit);
		return -2;
	}
	smtpd_check_copy_add(tx, buf_cstr(&key));
	tx->copies += (long long)n;
	buf_free(&key);
	return 0;
}

/*
 * smtpd_check_expansion - addr is taken here: is its alias expansion
 * within alias_expansion_limit (else -1 with the reply line in reply), and
 * do its copies fit the transaction (else -2 with the reply)? 0 if so.
 * Other failures of the expansion (a member unknown, a directory error)
 * are left to local, which names them per part.
 */
static int
smtpd_check_expansion(struct smtpd_tx *tx, const char *addr, long long now,
    struct buf *reply)
{
	struct resolved r;
	int ret = 0;

	resolve_check(smtpd_check_dir, addr, *var_recipient_delimiter,
	    (int)var_alias_depth_limit, (size_t)var_alias_expansion_limit,
	    smtpd_check_known, smtpd_check_known_fresh(now), &r);
	if (r.too_large) {
		buf_puts(reply, "550 5.5.3 <");
		addr_externalize(reply, addr);
		buf_printf(reply, ">: Recipient address rejected: alias "
		    "expands to more than %lld addresses",
		    var_alias_expansion_limit);
		ret = -1;
	} else {
		ret = smtpd_check_copies(tx, addr, &r, reply);
		if (r.top_alias != NULL && !r.top_known &&
		    r.fail.status != OUTCOME_DEFERRED)
			smtpd_check_known_add(r.top_alias, r.nbox, now);
	}
	resolve_free(&r);
	return ret;
}

/*
 * smtpd_check_postmaster - postmaster@ a hosted domain that no user,
 * alias or catch-all takes (RFC 5321 section 4.5.1 requires it): taken
 * when the resolver finds its mailbox (postmaster_address or the domain's
 * admin), then checked like any recipient; 451 while the domain has no
 * one to read it, so the sender retries; 550 if its mailbox bounces.
 */
static int
smtpd_check_postmaster(struct smtpd_session *s, const char *addr,
    struct buf *reply)
{
	long long now = evloop_now_ms(s->base.pool->loop);
	struct resolved r;

	resolve_check(smtpd_check_dir, addr, *var_recipient_delimiter,
	    (int)var_alias_depth_limit, (size_t)var_alias_expansion_limit,
	    NULL, 0, &r);
	if (r.nbox > 0 && r.fail.status != OUTCOME_DEFERRED) {
		resolve_free(&r);
		return smtpd_check_expansion(&s->tx, addr, now, reply);
	}
	if (r.fail.status == OUTCOME_DEFERRED) {
		msg_warn("<%s>: %s", addr, buf_cstr(&r.fail.reason));
		buf_puts(reply, "451 4.3.0 <");
		addr_externalize(reply, addr);
		buf_puts(reply, ">: Recipient address temporarily "
		    "unavailable: ");
	} else {
		buf_printf(reply, "550 %s <", r.fail.status == OUTCOME_OK ?
		    "5.1.1" : r.fail.dsn);
		addr_externalize(reply, addr);
		buf_puts(reply, ">: Recipient address rejected: ");
	}
	str_printable(reply, buf_cstr(&r.fail.reason), r.fail.reason.len, 200);
	resolve_free(&r);
	return -1;
}

/* smtpd_check_postmaster_domain - the domain of a bare <postmaster> */
void
smtpd_check_postmaster_domain(struct smtpd_session *s, struct buf *out)
{
	(void)smtpd_check_open(evloop_now_ms(s->base.pool->loop));
	resolve_postmaster_domain(smtpd_check_dir, out);
}

/*
 * smtpd_check_rcpt - may addr be accepted here? 0, or -1 with the whole
 * reply line in reply.
 */
int
smtpd_check_rcpt(struct smtpd_session *s, const char *addr, struct buf *reply)
{
	struct buf why = BUF_INIT;
	enum dir_rcpt r;

	buf_reset(reply);
	if (smtpd_check_open(evloop_now_ms(s->base.pool->loop)) < 0) {
		buf_puts(reply, "451 4.3.0 <");
		addr_externalize(reply, addr);
		buf_puts(reply, ">: Temporary lookup failure");
		return -1;
	}
	r = dir_rcpt_check(smtpd_check_dir, addr, *var_recipient_delimiter,
	    &why);
	switch (r) {
	case DIR_RCPT_OK:
		buf_free(&why);
		return smtpd_check_expansion(&s->tx, addr,
		    evloop_now_ms(s->base.pool->loop), reply);
	case DIR_RCPT_UNKNOWN:
		if (resolve_is_postmaster(addr)) {
			buf_free(&why);
			return smtpd_check_postmaster(s, addr, reply);
		}
		buf_puts(reply, "550 5.1.1 <");
		addr_externalize(reply, addr);
		buf_puts(reply, ">: Recipient address rejected: User unknown "
		    "in virtual mailbox table");
		break;
	case DIR_RCPT_DISABLED:
		buf_puts(reply, "550 5.2.1 <");
		addr_externalize(reply, addr);
		buf_puts(reply, ">: Recipient address rejected: Mailbox "
		    "disabled");
		break;
	case DIR_RCPT_REMOTE:
		if (smtpd_session_may_relay(s)) {
			/* local and logged-in users, mynetworks */
			buf_free(&why);
			return 0;
		}
		buf_puts(reply, "554 5.7.1 <");
		addr_externalize(reply, addr);
		buf_puts(reply, ">: Relay access denied");
		break;
	case DIR_RCPT_ERROR:
	default:
		msg_warn("directory lookup of %s failed: %s", addr,
		    buf_cstr(&why));
		buf_puts(reply, "451 4.3.0 <");
		addr_externalize(reply, addr);
		buf_puts(reply, ">: Temporary lookup failure");
		break;
	}
	buf_free(&why);
	return -1;
}

/* smtpd_check_srs - an SRS address of ours, reversed */
int
smtpd_check_srs(struct smtpd_session *s, struct buf *addr,
    struct buf *orcpt, struct buf *reply)
{
	struct buf orig = BUF_INIT, why = BUF_INIT;
	int r, temp = 0, ret = -1;

	if (!srs_is_srs(buf_cstr(addr)))
		return 0;
	buf_reset(reply);
	if (smtpd_check_open(evloop_now_ms(s->base.pool->loop)) < 0) {
		buf_puts(reply, "451 4.3.0 <");
		addr_externalize(reply, buf_cstr(addr));
		buf_puts(reply, ">: Temporary lookup failure");
		return -1;
	}
	r = srs_site_reverse(smtpd_check_dir, time(NULL), buf_cstr(addr),
	    &orig, &temp, &why);
	if (r == 0) {
		ret = 0;
	} else if (r < 0 && temp) {
		msg_warn("%s", buf_cstr(&why));
		buf_puts(reply, "451 4.3.0 <");
		addr_externalize(reply, buf_cstr(addr));
		buf_puts(reply, ">: Temporary lookup failure");
	} else if (r < 0) {
		buf_puts(reply, "550 5.1.1 <");
		addr_externalize(reply, buf_cstr(addr));
		buf_printf(reply, ">: Recipient address rejected: %s",
		    buf_cstr(&why));
	} else {
		buf_reset(&why);
		r = smtpd_check_hosted(addr_domain(buf_cstr(&orig)), &why);
		if (r < 0) {
			buf_puts(reply, "451 4.3.0 <");
			addr_externalize(reply, buf_cstr(addr));
			buf_puts(reply, ">: Temporary lookup failure");
		} else {
			if (orcpt->len == 0)
				buf_printf(orcpt, "rfc822;%s", buf_cstr(addr));
			buf_set(addr, buf_cstr(&orig));
			ret = r > 0 ? 2 : 1;
		}
	}
	buf_free(&orig);
	buf_free(&why);
	return ret;
}

/* smtpd_check_sender - does addr lead to the logged-in user? */
int
smtpd_check_sender(struct smtpd_session *s, const char *addr,
    struct buf *why)
{
	struct resolved r;
	int ok = 0;

	if (s->login.len == 0 || *addr == '\0')
		return 1;
	if (str_casecmp(addr, buf_cstr(&s->login)) == 0)
		return 1;
	if (smtpd_check_open(evloop_now_ms(s->base.pool->loop)) < 0) {
		buf_puts(why, "cannot open the directory");
		return -1;
	}
	memset(&r, 0, sizeof(r));
	resolve_addr(smtpd_check_dir, addr, *var_recipient_delimiter,
	    (int)var_alias_depth_limit, &r);
	for (size_t i = 0; i < r.nbox && !ok; i++)
		ok = str_casecmp(r.box[i].addr, buf_cstr(&s->login)) == 0;
	if (!ok && r.fail.status == OUTCOME_DEFERRED) {
		buf_puts(why, "directory lookup failed");
		ok = -1;
	}
	resolve_free(&r);
	return ok;
}

/* smtpd_check_rate_open - the shared count file, opened lazily */
static struct sendrate *
smtpd_check_rate_open(struct smtpd_session *s)
{
	long long now = evloop_now_ms(s->base.pool->loop);
	struct buf why = BUF_INIT;

	if (smtpd_check_counts != NULL)
		return smtpd_check_counts;
	if (now - smtpd_check_rate_tried < SMTPD_CHECK_RATE_RETRY_MS)
		return NULL;
	smtpd_check_rate_tried = now;
	if (sendrate_open(var_spool_directory, true, &smtpd_check_counts,
	    &why) < 0)
		msg_warn("sending limits are not enforced: %s",
		    buf_cstr(&why));
	buf_free(&why);
	return smtpd_check_counts;
}

/*
 * smtpd_check_rate - is the logged-in user within the hourly limits,
 * with more recipients on top (0 at MAIL, the transaction's at RCPT)?
 * 0, or -1 with the 451 reply (the refusal is noted for heraldctl).
 */
int
smtpd_check_rate(struct smtpd_session *s, long long more,
    struct buf *reply)
{
	struct sendrate *r;
	struct sendrate_count c;
	struct buf why = BUF_INIT;
	const char *user = buf_cstr(&s->login);
	long long now = time(NULL);
	const char *what = NULL;

	buf_reset(reply);
	if (s->login.len == 0 || (var_submission_message_rate_limit == 0 &&
	    var_submission_recipient_rate_limit == 0) ||
	    (r = smtpd_check_rate_open(s)) == NULL)
		return 0;
	if (sendrate_get(r, user, now, &c, &why) < 0) {
		msg_warn("sending limit of %s not checked: %s", user,
		    buf_cstr(&why));
		buf_free(&why);
		return 0;
	}
	if (more == 0 && var_submission_message_rate_limit > 0 &&
	    c.messages >= var_submission_message_rate_limit)
		what = "messages";
	else if (var_submission_recipient_rate_limit > 0 &&
	    c.recipients + more > var_submission_recipient_rate_limit)
		what = "recipients";
	if (what == NULL) {
		buf_free(&why);
		return 0;
	}
	msg_warn("%s: user %s is over the hourly sending limit: %lld "
	    "messages, %lld recipients (limits %lld, %lld)",
	    s->tx.qid[0] ? s->tx.qid : "NOQUEUE", user, c.messages,
	    c.recipients + more, var_submission_message_rate_limit,
	    var_submission_recipient_rate_limit);
	if (sendrate_add(r, user, now, 0, 0, true, &why) < 0)
		msg_warn("%s", buf_cstr(&why));
	buf_printf(reply, "451 4.7.1 Error: too many %s sent in the last "
	    "hour, try again later", what);
	buf_free(&why);
	return -1;
}

/* smtpd_check_rate_add - a message of the logged-in user was queued */
void
smtpd_check_rate_add(struct smtpd_session *s, long long nrcpt)
{
	struct sendrate *r;
	struct buf why = BUF_INIT;

	if (s->login.len == 0 || (var_submission_message_rate_limit == 0 &&
	    var_submission_recipient_rate_limit == 0) ||
	    (r = smtpd_check_rate_open(s)) == NULL)
		return;
	if (sendrate_add(r, buf_cstr(&s->login), time(NULL), 1, nrcpt, false,
	    &why) < 0)
		msg_warn("sending count of %s not kept: %s",
		    buf_cstr(&s->login), buf_cstr(&why));
	buf_free(&why);
}

/* smtpd_check_hash - FNV-1a of the lowercased address */
static uint32_t
smtpd_check_hash(const char *addr)
{
	uint32_t h = 2166136261u;

	for (const unsigned char *p = (const unsigned char *)addr; *p; p++) {
		unsigned char c = *p;

		if (c >= 'A' && c <= 'Z')
			c += 'a' - 'A';
		h = (h ^ c) * 16777619u;
	}
	return h;
}

/* smtpd_check_same - addresses equal ignoring ASCII case */
static bool
smtpd_check_same(const char *a, const char *b)
{
	for (;; a++, b++) {
		unsigned char x = (unsigned char)*a, y = (unsigned char)*b;

		if (x >= 'A' && x <= 'Z')
			x += 'a' - 'A';
		if (y >= 'A' && y <= 'Z')
			y += 'a' - 'A';
		if (x != y)
			return false;
		if (x == '\0')
			return true;
	}
}

/* smtpd_check_set_insert - put rcpt index idx into the set */
static void
smtpd_check_set_insert(struct smtpd_tx *tx, size_t idx)
{
	size_t mask = tx->set_cap - 1;
	size_t i = smtpd_check_hash(tx->rcpt[idx].addr) & mask;

	while (tx->rcpt_set[i] != 0)
		i = (i + 1) & mask;
	tx->rcpt_set[i] = (uint32_t)(idx + 1);
}

/* smtpd_check_hosted - is domain one of ours? */
int
smtpd_check_hosted(const char *domain, struct buf *why)
{
	if (smtpd_check_open(evloop_clock()) < 0) {
		buf_puts(why, "the directory cannot be opened");
		return -1;
	}
	return dir_domain_exists(smtpd_check_dir, domain, why);
}

/*
 * smtpd_check_add_rcpt - add a recipient unless the transaction has it
 * already (the same address in any case is delivered once); 1 if added.
 * The set is open-addressed and kept at most half full, so a transaction
 * with many recipients stays linear.
 */
int
smtpd_check_add_rcpt(struct smtpd_tx *tx, const char *addr, const char *orcpt,
    const char *notify)
{
	struct smtpd_rcpt *r;

	if (tx->set_cap != 0) {
		size_t mask = tx->set_cap - 1;
		size_t i = smtpd_check_hash(addr) & mask;

		for (; tx->rcpt_set[i] != 0; i = (i + 1) & mask)
			if (smtpd_check_same(tx->rcpt[tx->rcpt_set[i] - 1].addr,
			    addr))
				return 0;
	}
	if (tx->nrcpt == tx->rcpt_cap) {
		tx->rcpt_cap = tx->rcpt_cap ? tx->rcpt_cap * 2 : 4;
		tx->rcpt = xreallocarray(tx->rcpt, tx->rcpt_cap,
		    sizeof(*tx->rcpt));
	}
	r = &tx->rcpt[tx->nrcpt++];
	r->addr = xstrdup(addr);
	r->orcpt = xstrdup(orcpt);
	r->notify = xstrdup(notify);
	if (tx->nrcpt * 2 > tx->set_cap) {
		x_free(&tx->rcpt_set);
		tx->set_cap = tx->set_cap ? tx->set_cap * 2 : 16;
		tx->rcpt_set = xcalloc(tx->set_cap, sizeof(*tx->rcpt_set));
		for (size_t i = 0; i < tx->nrcpt; i++)
			smtpd_check_set_insert(tx, i);
	} else {
		smtpd_check_set_insert(tx, tx->nrcpt - 1);
	}
	return 1;
}

/* smtpd_check_clear_rcpts - forget every recipient (memory is kept) */
void
smtpd_check_clear_rcpts(struct smtpd_tx *tx)
{
	for (size_t i = 0; i < tx->nrcpt; i++) {
		x_free(&tx->rcpt[i].addr);
		x_free(&tx->rcpt[i].orcpt);
		x_free(&tx->rcpt[i].notify);
	}
	tx->nrcpt = 0;
	if (tx->rcpt_set != NULL)
		memset(tx->rcpt_set, 0, tx->set_cap * sizeof(*tx->rcpt_set));
	for (size_t i = 0; i < tx->copy_cap; i++)
		x_free(&tx->copy_set[i]);
	x_free(&tx->copy_set);
	tx->copy_cap = tx->ncopy_keys = 0;
	tx->copies = 0;
}
