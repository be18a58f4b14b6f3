/*
 * peer_test - client address text, loopback flag, and per-address counts
 * that go up with each open, down with each close, and vanish at zero;
 * UNIX-socket clients counted by uid; counts across workers through the
 * shared table, and per process again without it (the fallback).
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/test.h"
#include "mail/peer.h"

/* tcp_pair - a TCP connection from 127.0.0.<last> to a listener: the
 * server side in *server, the client side in *client */
static void
tcp_pair(int lfd, int last, int *server, int *client)
{
	struct sockaddr_in sa, from;
	socklen_t sl = sizeof(sa);

	T_ASSERT(getsockname(lfd, (struct sockaddr *)&sa, &sl) == 0);
	*client = socket(AF_INET, SOCK_STREAM, 0);
	T_ASSERT(*client >= 0);
	memset(&from, 0, sizeof(from));
	from.sin_family = AF_INET;
	from.sin_addr.s_addr = htonl(0x7f000000u | (unsigned)last);
	T_ASSERT(bind(*client, (struct sockaddr *)&from, sizeof(from)) == 0);
	T_ASSERT(connect(*client, (struct sockaddr *)&sa, sl) == 0);
	*server = accept(lfd, NULL, NULL);
	T_ASSERT(*server >= 0);
}

static void
test_counts(void)
{
	struct sockaddr_in sa;
	struct peer p[3];
	int lfd, srv[3], cli[3];

	lfd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	T_ASSERT(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	T_ASSERT(listen(lfd, 8) == 0);
	tcp_pair(lfd, 1, &srv[0], &cli[0]);
	tcp_pair(lfd, 1, &srv[1], &cli[1]);
	tcp_pair(lfd, 2, &srv[2], &cli[2]);
	for (int i = 0; i < 3; i++)
		peer_open(&p[i], srv[i]);
	T_EQ_STR(p[0].addr, "127.0.0.1");
	T_EQ_STR(p[2].addr, "127.0.0.2");
	T_ASSERT(p[0].loopback && p[2].loopback);
	T_EQ_INT(peer_sessions(&p[0]), 2);
	T_EQ_INT(peer_sessions(&p[1]), 2);
	T_EQ_INT(peer_sessions(&p[2]), 1);
	peer_close(&p[0]);
	peer_close(&p[0]);	/* twice: no effect */
	T_EQ_INT(peer_sessions(&p[0]), 0);
	T_EQ_INT(peer_sessions(&p[1]), 1);
	peer_close(&p[1]);
	peer_close(&p[2]);
	/* a fresh count after the address was forgotten */
	peer_open(&p[0], srv[0]);
	T_EQ_INT(peer_sessions(&p[0]), 1);
	peer_close(&p[0]);
	for (int i = 0; i < 3; i++) {
		close(srv[i]);
		close(cli[i]);
	}
	close(lfd);
}

static void
test_unknown(void)
{
	struct peer p;
	int fd = socket(AF_INET, SOCK_STREAM, 0);	/* not connected */

	T_ASSERT(fd >= 0);
	peer_open(&p, fd);
	T_EQ_STR(p.addr, "unknown");
	T_ASSERT(!p.loopback);
	T_EQ_INT(peer_sessions(&p), 1);
	peer_close(&p);
	close(fd);
}

static void
test_unix_uid(void)
{
	struct peer p[2];
	char key[32];
	int sv[2], sv2[2];

	T_ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	T_ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv2) == 0);
	peer_open(&p[0], sv[0]);
	peer_open(&p[1], sv2[0]);
	snprintf(key, sizeof(key), "uid:%u", (unsigned)getuid());
	T_EQ_STR(p[0].key, key);
	T_EQ_INT(p[0].uid, (long long)getuid());
	T_ASSERT(p[0].loopback);
	T_EQ_INT(peer_sessions(&p[0]), 2);
	peer_close(&p[0]);
	peer_close(&p[1]);
	close(sv[0]);
	close(sv[1]);
	close(sv2[0]);
	close(sv2[1]);
}

/* test_shared - this process is the worker in slot 0; another worker
 * (slot 1, through its own mapping) holds a session from 127.0.0.1 */
static void
test_shared(void)
{
	struct buf why = BUF_INIT;
	struct sockaddr_in sa;
	struct peertab *other = NULL;
	struct peer p[2];
	int fd = -1, lfd, srv[2], cli[2], e;

	T_ASSERT(peertab_create(2, 8, &fd, &why) == 0);
	T_ASSERT(peertab_map(fd, &other, &why) == 0);
	if (other == NULL)
		return;
	e = peertab_add(other, 1, "127.0.0.1");
	T_ASSERT(e >= 0);
	/* something left in slot 0 by the worker before us goes */
	T_ASSERT(peertab_add(other, 0, "127.0.0.1") >= 0);
	T_EQ_INT(peer_attach(fd, 0, &why), 0);
	close(fd);	/* the mapping stays */
	T_EQ_INT(peertab_count(other, "127.0.0.1"), 1);

	lfd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	T_ASSERT(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	T_ASSERT(listen(lfd, 8) == 0);
	tcp_pair(lfd, 1, &srv[0], &cli[0]);
	tcp_pair(lfd, 1, &srv[1], &cli[1]);
	peer_open(&p[0], srv[0]);
	T_EQ_INT(peer_sessions(&p[0]), 2);	/* the other worker's too */
	peer_open(&p[1], srv[1]);
	T_EQ_INT(peer_sessions(&p[1]), 3);
	T_EQ_INT(peertab_count(other, "127.0.0.1"), 3);
	peer_close(&p[0]);
	T_EQ_INT(peer_sessions(&p[1]), 2);
	/* the other worker died and master cleared its region */
	peertab_clear(other, 1);
	T_EQ_INT(peer_sessions(&p[1]), 1);
	peer_close(&p[1]);
	T_EQ_INT(peertab_count(other, "127.0.0.1"), 0);

	/* without the table: this process's sessions only */
	T_ASSERT(peertab_add(other, 1, "127.0.0.1") >= 0);
	peer_detach();
	peer_open(&p[0], srv[0]);
	T_EQ_INT(peer_sessions(&p[0]), 1);
	T_EQ_INT(peertab_count(other, "127.0.0.1"), 1);
	peer_close(&p[0]);
	peertab_unmap(&other);
	for (int i = 0; i < 2; i++) {
		close(srv[i]);
		close(cli[i]);
	}
	close(lfd);
	buf_free(&why);
}

/* test_attach_env - what master passes, and what a bad value does */
static void
test_attach_env(void)
{
	struct buf why = BUF_INIT;
	struct peertab *t = NULL;
	struct peer p;
	char num[16];
	int fd = -1, sv[2];

	T_ASSERT(peertab_create(1, 4, &fd, &why) == 0);
	T_ASSERT(peertab_map(fd, &t, &why) == 0);
	snprintf(num, sizeof(num), "%d", fd);
	setenv(PEER_TABLE_FD_ENV, num, 1);
	setenv(PEER_TABLE_SLOT_ENV, "0", 1);
	peer_attach_env();
	T_ASSERT(getenv(PEER_TABLE_FD_ENV) == NULL);
	T_ASSERT(getenv(PEER_TABLE_SLOT_ENV) == NULL);
	T_ASSERT(fcntl(fd, F_GETFD) < 0);	/* closed */
	T_ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	peer_open(&p, sv[0]);
	T_EQ_INT(peertab_count(t, p.key), 1);
	peer_close(&p);
	peer_detach();
	/* a slot the table does not have: warned, per process */
	T_ASSERT(peertab_create(1, 4, &fd, &why) == 0);
	snprintf(num, sizeof(num), "%d", fd);
	setenv(PEER_TABLE_FD_ENV, num, 1);
	setenv(PEER_TABLE_SLOT_ENV, "1", 1);
	peer_attach_env();
	peer_open(&p, sv[0]);
	T_EQ_INT(peer_sessions(&p), 1);
	T_EQ_INT(peertab_count(t, p.key), 0);
	peer_close(&p);
	peertab_unmap(&t);
	close(sv[0]);
	close(sv[1]);
	buf_free(&why);
}

/* test_tally - items under their own key: another worker's count,
 * sessions not mixed in, a full region counted here, per process */
static void
test_tally(void)
{
	struct buf why = BUF_INIT;
	struct peertab *other = NULL;
	struct peer p;
	struct peer_tally t[3];
	int fd = -1, sv[2];

	memset(t, 0, sizeof(t));
	T_ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	T_ASSERT(peertab_create(2, 2, &fd, &why) == 0);
	T_ASSERT(peertab_map(fd, &other, &why) == 0);
	if (other == NULL)
		return;
	T_EQ_INT(peer_attach(fd, 0, &why), 0);
	close(fd);
	peer_open(&p, sv[0]);	/* takes one of the region's two entries */
	/* another worker holds one transaction of this client */
	buf_printf(&why, "tx:%s", p.key);
	T_ASSERT(peertab_add(other, 1, buf_cstr(&why)) >= 0);
	T_EQ_INT(peer_tally_add(&t[0], &p, "tx:"), 2);
	T_EQ_INT(peer_sessions(&p), 1);	/* sessions are not items */
	/* the region is full: counted in this worker only, still counted */
	T_EQ_INT(peer_tally_add(&t[1], &p, "tx:"), 3);
	T_ASSERT(t[1].entry < 0);
	peer_tally_del(&t[1]);
	peer_tally_del(&t[1]);	/* twice is fine */
	T_EQ_INT(peer_tally_add(&t[1], &p, "tx:"), 3);
	peer_tally_del(&t[0]);
	peer_tally_del(&t[1]);
	T_EQ_INT(peertab_count(other, buf_cstr(&why)), 1);
	peer_tally_del(&t[2]);	/* never added */
	peer_close(&p);
	/* without the table: this process's items */
	peer_detach();
	peer_open(&p, sv[0]);
	T_EQ_INT(peer_tally_add(&t[0], &p, "tx:"), 1);
	T_EQ_INT(peer_tally_add(&t[1], &p, "tx:"), 2);
	peer_tally_del(&t[0]);
	T_EQ_INT(peer_tally_add(&t[0], &p, "tx:"), 2);
	peer_tally_del(&t[0]);
	peer_tally_del(&t[1]);
	peer_close(&p);
	peertab_unmap(&other);
	close(sv[0]);
	close(sv[1]);
	buf_free(&why);
}

static const struct test_case cases[] = {
	{"counts per address", test_counts},
	{"unconnected socket", test_unknown},
	{"UNIX socket clients by uid", test_unix_uid},
	{"counts across workers, and without the table", test_shared},
	{"the table named in the environment", test_attach_env},
	{"tallies of other items per client", test_tally},
	{0},
};

int
main(void)
{
	return test_run(cases);
}
