/*
 * smtpd_check - policy checks: may this recipient be accepted, is there
 * room in the spool (next to what open transactions reserve, see
 * smtpd_space.c), and the per-transaction recipient set.
 *
 * Recipients are checked against the directory (dir_rcpt_check). herald
 * is never an open relay: without SMTP AUTH (not offered yet) a recipient
 * in a domain we do not host is refused with 554 5.7.1. The directory is
 * opened read-only once per worker, after the privilege drop; if it cannot
 * be opened, RCPT gets 451 4.3.0 and the open is retried (at most once a
 * second), so a missing directory delays mail and never loses it.
 */
#include <stdint.h>
#include <string.h>

#include "base/buf.h"
#include "base/evloop.h"
#include "base/log.h"
#include "base/mem.h"
#include "mail/addr.h"
#include "mail/dir.h"
#include "mail/params.h"
#include "mail/spool.h"
#include "smtpd.h"

#define SMTPD_CHECK_RETRY_MS 1000	/* directory re-open interval */
#define SMTPD_CHECK_SPACE_MS 1000	/* free space is cached this long */

static struct dir *smtpd_check_dir;
static long long smtpd_check_dir_tried = -SMTPD_CHECK_RETRY_MS;
static long long smtpd_check_space_at = -SMTPD_CHECK_SPACE_MS;
static long long smtpd_check_space;

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
		return 0;
	case DIR_RCPT_UNKNOWN:
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
		if (s->local) {
			/* local users may send anywhere (like pickup) */
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
}
