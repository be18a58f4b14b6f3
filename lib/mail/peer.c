/*
 * peer - client address, loopback flag, counting key, and the session
 * counts per key: across the workers through the shared table master
 * passed, else of this process (see peer.h).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/sock.h"
#include "base/str.h"
#include "mail/peer.h"

#define PEER_BUCKETS 4096

struct peer_count {
	struct peer_count *next;
	unsigned sessions;
	char key[PEER_KEY_SIZE];
};

static struct peer_count *peer_table[PEER_BUCKETS];

static struct peertab *peer_shared;	/* the service's table, or NULL */
static unsigned peer_slot;		/* the region this process writes */

/* peer_attach - use the shared table on fd as the writer of slot */
int
peer_attach(int fd, unsigned slot, struct buf *why)
{
	struct peertab *t;

	if (peertab_map(fd, &t, why) < 0)
		return -1;
	if (slot >= peertab_slots(t)) {
		buf_printf(why, "client table: slot %u of %u", slot,
		    peertab_slots(t));
		peertab_unmap(&t);
		return -1;
	}
	/* what a worker that held the slot before us left (master clears
	 * it too when it reaps that worker) */
	peertab_clear(t, slot);
	peertab_unmap(&peer_shared);
	peer_shared = t;
	peer_slot = slot;
	return 0;
}

/* peer_detach - per-process counts from now on */
void
peer_detach(void)
{
	peertab_unmap(&peer_shared);
}

/* peer_attach_env - the table master passed, named in the environment */
void
peer_attach_env(void)
{
	const char *fd_text = getenv(PEER_TABLE_FD_ENV);
	const char *slot_text = getenv(PEER_TABLE_SLOT_ENV);
	struct buf why = BUF_INIT;
	long long fd = -1, slot;

	if (fd_text == NULL)
		goto out;
	if (str_to_ll(fd_text, 3, INT_MAX, &fd) < 0 || slot_text == NULL ||
	    str_to_ll(slot_text, 0, PEERTAB_MAX_SLOTS - 1, &slot) < 0) {
		msg_warn("bad %s/%s (\"%s\", \"%s\"): counting the clients of "
		    "this process only", PEER_TABLE_FD_ENV, PEER_TABLE_SLOT_ENV,
		    fd_text, slot_text ? slot_text : "");
		if (fd >= 3)
			(void)close((int)fd);
		goto out;
	}
	if (peer_attach((int)fd, (unsigned)slot, &why) < 0)
		msg_warn("%s: counting the clients of this process only",
		    buf_cstr(&why));
	(void)close((int)fd);
out:
	(void)unsetenv(PEER_TABLE_FD_ENV);
	(void)unsetenv(PEER_TABLE_SLOT_ENV);
	buf_free(&why);
}

/* peer_bucket - hash of an address text */
static unsigned
peer_bucket(const char *addr)
{
	unsigned h = 5381;

	for (const unsigned char *p = (const unsigned char *)addr; *p; p++)
		h = h * 33 + *p;
	return h % PEER_BUCKETS;
}

/* peer_count_get - one more session with key */
static struct peer_count *
peer_count_get(const char *key)
{
	unsigned b = peer_bucket(key);
	struct peer_count *c;

	for (c = peer_table[b]; c != NULL; c = c->next)
		if (strcmp(c->key, key) == 0)
			break;
	if (c == NULL) {
		c = xcalloc(1, sizeof(*c));
		str_lcpy(c->key, key, sizeof(c->key));
		c->next = peer_table[b];
		peer_table[b] = c;
	}
	c->sessions++;
	return c;
}

/* peer_open - address text, loopback flag and key of fd's peer; count
 * it */
void
peer_open(struct peer *p, int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	bool unix_peer = false;

	memset(p, 0, sizeof(*p));
	p->uid = -1;
	p->entry = -1;
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0) {
		str_lcpy(p->addr, "unknown", sizeof(p->addr));
	} else {
		sock_addr_text((struct sockaddr *)&ss, sl, p->addr,
		    sizeof(p->addr));
		p->loopback = sock_addr_is_loopback((struct sockaddr *)&ss);
		unix_peer = ss.ss_family == AF_UNIX;
	}
	str_lcpy(p->key, p->addr, sizeof(p->key));
	if (unix_peer) {
		struct ucred cred;
		socklen_t cl = sizeof(cred);

		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0) {
			p->uid = (long long)cred.uid;
			snprintf(p->key, sizeof(p->key), "uid:%u",
			    (unsigned)cred.uid);
		}
	}
	p->count = peer_count_get(p->key);
	/* a full region (more sessions than the worker's maximum, all
	 * being turned away): this one is counted here only */
	if (peer_shared != NULL)
		p->entry = peertab_add(peer_shared, peer_slot, p->key);
}

/* peer_sessions - how many sessions with p's key are open */
unsigned
peer_sessions(const struct peer *p)
{
	if (p->count == NULL)
		return 0;
	if (peer_shared == NULL)
		return p->count->sessions;
	return peertab_count(peer_shared, p->key) + (p->entry < 0 ? 1 : 0);
}

/* peer_count_put - one session less with c's key; forget it at none */
static void
peer_count_put(struct peer_count *c)
{
	struct peer_count **pp;

	if (--c->sessions > 0)
		return;
	pp = &peer_table[peer_bucket(c->key)];
	while (*pp != c)
		pp = &(*pp)->next;
	*pp = c->next;
	x_free(&c);
}

/* peer_close - one session less; forget an address with none left */
void
peer_close(struct peer *p)
{
	struct peer_count *c = p->count;

	if (c == NULL)
		return;
	p->count = NULL;
	if (p->entry >= 0 && peer_shared != NULL)
		peertab_del(peer_shared, peer_slot, p->entry);
	p->entry = -1;
	peer_count_put(c);
}

/* peer_tally_add - one more item of p's under prefix; how many it has */
unsigned
peer_tally_add(struct peer_tally *t, const struct peer *p,
    const char *prefix)
{
	char key[PEER_KEY_SIZE];

	peer_tally_del(t);
	snprintf(key, sizeof(key), "%s%s", prefix, p->key);
	t->count = peer_count_get(key);
	t->entry = -1;
	if (peer_shared == NULL)
		return t->count->sessions;
	t->entry = peertab_add(peer_shared, peer_slot, key);
	return peertab_count(peer_shared, key) + (t->entry < 0 ? 1 : 0);
}

/* peer_tally_del - the item ended */
void
peer_tally_del(struct peer_tally *t)
{
	struct peer_count *c = t->count;

	if (c == NULL)
		return;
	t->count = NULL;
	if (t->entry >= 0 && peer_shared != NULL)
		peertab_del(peer_shared, peer_slot, t->entry);
	t->entry = -1;
	peer_count_put(c);
}
