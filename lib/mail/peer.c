/*
 * peer - client address, loopback flag and per-address session counts
 * of one server process (see peer.h).
 */
#include <string.h>
#include <sys/socket.h>

#include "base/mem.h"
#include "base/sock.h"
#include "base/str.h"
#include "mail/peer.h"

#define PEER_BUCKETS 4096

struct peer_count {
	struct peer_count *next;
	unsigned sessions;
	char addr[PEER_ADDR_SIZE];
};

static struct peer_count *peer_table[PEER_BUCKETS];

/* peer_bucket - hash of an address text */
static unsigned
peer_bucket(const char *addr)
{
	unsigned h = 5381;

	for (const unsigned char *p = (const unsigned char *)addr; *p; p++)
		h = h * 33 + *p;
	return h % PEER_BUCKETS;
}

/* peer_count_get - one more session from addr */
static struct peer_count *
peer_count_get(const char *addr)
{
	unsigned b = peer_bucket(addr);
	struct peer_count *c;

	for (c = peer_table[b]; c != NULL; c = c->next)
		if (strcmp(c->addr, addr) == 0)
			break;
	if (c == NULL) {
		c = xcalloc(1, sizeof(*c));
		str_lcpy(c->addr, addr, sizeof(c->addr));
		c->next = peer_table[b];
		peer_table[b] = c;
	}
	c->sessions++;
	return c;
}

/* peer_open - address text and loopback flag of fd's peer; count it */
void
peer_open(struct peer *p, int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	memset(p, 0, sizeof(*p));
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0) {
		str_lcpy(p->addr, "unknown", sizeof(p->addr));
	} else {
		sock_addr_text((struct sockaddr *)&ss, sl, p->addr,
		    sizeof(p->addr));
		p->loopback = sock_addr_is_loopback((struct sockaddr *)&ss);
	}
	p->count = peer_count_get(p->addr);
}

/* peer_sessions - how many sessions from p's address are open */
unsigned
peer_sessions(const struct peer *p)
{
	return p->count != NULL ? p->count->sessions : 0;
}

/* peer_close - one session less; forget an address with none left */
void
peer_close(struct peer *p)
{
	struct peer_count *c = p->count, **pp;

	if (c == NULL)
		return;
	p->count = NULL;
	if (--c->sessions > 0)
		return;
	pp = &peer_table[peer_bucket(c->addr)];
	while (*pp != c)
		pp = &(*pp)->next;
	*pp = c->next;
	x_free(&c);
}
