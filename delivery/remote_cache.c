/*
 * remote_cache - the remote agent's connection cache: SMTP sessions kept
 * open after a transaction for the next request to the same destination
 * (as Postfix's smtp_connection_cache_on_demand).
 *
 * A session whose transaction ended well (no network error, no 421) is
 * kept, keyed by next hop, TLS level and login (remote.h), for at most
 * smtp_connection_cache_time_limit idle and at most
 * smtp_connection_reuse_count_limit transactions. The next request for
 * that key takes it and sends RSET first: a session the server closed
 * meanwhile, or whose RSET is not answered 2xx, is closed and the request
 * goes to a fresh connection, with no failure counted. remote.c closes
 * idle sessions on time while it waits for qmgr, and all of them when it
 * stops. A process serves one request at a time, so the cache is small.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/evloop.h"
#include "base/log.h"
#include "base/str.h"
#include "mail/params.h"
#include "mail/smtp_client.h"
#include "remote.h"

#define REMOTE_CACHE_MAX 8	/* sessions one process keeps */

/* one cached session */
struct remote_cached {
	struct smtp_session *s;		/* NULL: the slot is free */
	int fd;
	char key[REMOTE_KEY_MAX];	/* the next hop it serves */
	char relay[REMOTE_RELAY_MAX];	/* host[addr]:port */
	long long ntx;			/* transactions done on it */
	long long since;		/* evloop_clock() when it went idle */
};

static struct remote_cached remote_cache[REMOTE_CACHE_MAX];

/* remote_cache_drop - close the session of slot e and free it */
static void
remote_cache_drop(struct remote_cached *e, const char *why)
{
	msg_debug("%s: closing cached connection (%s)", e->relay, why);
	smtp_client_close(&e->s);
	if (close(e->fd) < 0)
		msg_warn("%s: close: %m", e->relay);
	e->fd = -1;
}

/* remote_cache_take - the cached session for key, taken out */
struct smtp_session *
remote_cache_take(const char *key, const struct smtp_client_conf *conf,
    int *fd, char *relay, long long *ntx)
{
	long long now = evloop_clock();

	for (size_t i = 0; i < REMOTE_CACHE_MAX; i++) {
		struct remote_cached *e = &remote_cache[i];
		struct smtp_session *s;

		if (e->s == NULL || strcmp(e->key, key) != 0)
			continue;
		if (now - e->since > var_smtp_connection_cache_time_limit *
		    1000) {
			remote_cache_drop(e, "idle too long");
			continue;
		}
		/* RSET: the server is still there and starts afresh */
		if (smtp_client_reset(e->s, conf) < 0) {
			msg_info("%s: cached connection is gone or refused "
			    "RSET; connecting anew", e->relay);
			remote_cache_drop(e, "RSET failed");
			continue;
		}
		s = e->s;
		e->s = NULL;
		*fd = e->fd;
		*ntx = e->ntx;
		str_lcpy(relay, e->relay, REMOTE_RELAY_MAX);
		return s;
	}
	return NULL;
}

/* remote_cache_put - keep s (on fd) for key, or close it */
void
remote_cache_put(const char *key, const char *relay, struct smtp_session *s,
    int fd, long long ntx)
{
	struct remote_cached *e = NULL;

	if (var_smtp_connection_cache_time_limit <= 0 ||
	    ntx >= var_smtp_connection_reuse_count_limit ||
	    !smtp_client_usable(s)) {
		smtp_client_close(&s);
		if (close(fd) < 0)
			msg_warn("%s: close: %m", relay);
		return;
	}
	for (size_t i = 0; i < REMOTE_CACHE_MAX; i++) {
		if (remote_cache[i].s == NULL) {
			e = &remote_cache[i];
			break;
		}
		if (e == NULL || remote_cache[i].since < e->since)
			e = &remote_cache[i];
	}
	if (e->s != NULL)
		remote_cache_drop(e, "cache full");
	e->s = s;
	e->fd = fd;
	e->ntx = ntx;
	e->since = evloop_clock();
	str_lcpy(e->key, key, sizeof(e->key));
	str_lcpy(e->relay, relay, sizeof(e->relay));
}

/* remote_cache_expire - close what is idle too long; ms to the next */
long long
remote_cache_expire(void)
{
	long long now = evloop_clock(), next = -1;
	long long limit = var_smtp_connection_cache_time_limit * 1000;

	for (size_t i = 0; i < REMOTE_CACHE_MAX; i++) {
		struct remote_cached *e = &remote_cache[i];
		long long left;

		if (e->s == NULL)
			continue;
		left = e->since + limit - now;
		if (left <= 0) {
			remote_cache_drop(e, "idle time limit");
			continue;
		}
		if (next < 0 || left < next)
			next = left;
	}
	return next;
}

/* remote_cache_close - close every cached session (stopping) */
void
remote_cache_close(void)
{
	for (size_t i = 0; i < REMOTE_CACHE_MAX; i++)
		if (remote_cache[i].s != NULL)
			remote_cache_drop(&remote_cache[i], "stopping");
}
