/*
 * peer_test - client address text, loopback flag, and per-address counts
 * that go up with each open, down with each close, and vanish at zero.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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

static const struct test_case cases[] = {
	{"counts per address", test_counts},
	{"unconnected socket", test_unknown},
	{0},
};

int
main(void)
{
	return test_run(cases);
}
