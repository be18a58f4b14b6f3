/*
 * pop3d_plaintext_test - who may send a password without TLS
 * (auth_plaintext = never | loopback | always): the rule for every
 * setting, TLS state and kind of client address, from the address through
 * sock_addr_is_loopback, and from a real accepted connection through
 * peer_open, as pop3d sees its clients.
 *
 * Every integration test connects from 127.0.0.1, so "loopback" there is
 * always true; test_pop3_netns.py covers a real non-loopback client.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/sock.h"
#include "base/test.h"
#include "mail/peer.h"
#include "mail/sasl.h"
#include "pop3d.h"

/* the client addresses, and whether each is loopback */
static const struct {
	int family;
	const char *addr;
	bool loopback;
} plain_addrs[] = {
	{AF_INET, "10.213.0.1", false},
	{AF_INET, "192.0.2.7", false},
	{AF_INET, "128.0.0.1", false},
	{AF_INET, "126.255.255.255", false},
	{AF_INET, "0.0.0.0", false},
	{AF_INET, "127.0.0.1", true},
	{AF_INET, "127.213.4.5", true},
	{AF_INET, "127.255.255.254", true},
	{AF_INET6, "::1", true},
	{AF_INET6, "::2", false},
	{AF_INET6, "::", false},
	{AF_INET6, "2001:db8::1", false},
	{AF_INET6, "fe80::1", false},
	{AF_INET6, "::ffff:127.0.0.1", true},
	{AF_INET6, "::ffff:127.9.9.9", true},
	{AF_INET6, "::ffff:10.213.0.1", false},
	{AF_INET6, "::127.0.0.1", false},	/* v4-compatible, not mapped */
	{AF_INET6, "64:ff9b::127.0.0.1", false},	/* NAT64, not ours */
	{AF_UNIX, "", true},
};

/* plain_sockaddr - the sockaddr of plain_addrs[i] */
static socklen_t
plain_sockaddr(size_t i, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	ss->ss_family = (sa_family_t)plain_addrs[i].family;
	if (plain_addrs[i].family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, plain_addrs[i].addr,
		    &s4->sin_addr) != 1)
			return 0;
		return sizeof(*s4);
	}
	if (plain_addrs[i].family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET6, plain_addrs[i].addr,
		    &s6->sin6_addr) != 1)
			return 0;
		return sizeof(*s6);
	}
	return sizeof(struct sockaddr_un);
}

/* the rule by setting and TLS, for a loopback and a remote peer */
static void
test_rule_table(void)
{
	static const struct {
		const char *setting;
		bool tls, loopback, ok;
	} rules[] = {
		{"never", false, false, false},
		{"never", false, true, false},
		{"never", true, false, true},
		{"never", true, true, true},
		{"loopback", false, false, false},
		{"loopback", false, true, true},
		{"loopback", true, false, true},
		{"loopback", true, true, true},
		{"always", false, false, true},
		{"always", false, true, true},
		{"always", true, false, true},
		{"always", true, true, true},
		/* anything else (params refuses it) allows nothing in clear */
		{"", false, true, false},
		{"Loopback", false, true, false},
	};

	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
		bool got = sasl_plaintext_rule(rules[i].setting,
		    rules[i].tls, rules[i].loopback);

		if (got != rules[i].ok)
			T_FAIL_("auth_plaintext=%s tls=%d loopback=%d: got %d",
			    rules[i].setting, rules[i].tls, rules[i].loopback,
			    got);
	}
}

/* every address, every setting, with and without TLS */
static void
test_rule_by_address(void)
{
	static const char *const settings[] = {"never", "loopback",
	    "always"};
	struct sockaddr_storage ss;

	for (size_t i = 0; i < sizeof(plain_addrs) / sizeof(plain_addrs[0]);
	    i++) {
		bool lo;

		if (plain_sockaddr(i, &ss) == 0)
			T_FAIL_("bad test address %s", plain_addrs[i].addr);
		lo = sock_addr_is_loopback((struct sockaddr *)&ss);
		if (lo != plain_addrs[i].loopback)
			T_FAIL_("%s: loopback %d, want %d",
			    plain_addrs[i].addr, lo, plain_addrs[i].loopback);
		for (size_t k = 0; k < 3; k++) {
			bool clear = sasl_plaintext_rule(settings[k],
			    false, lo);
			bool want = k == 2 || (k == 1 && plain_addrs[i].loopback);

			if (clear != want)
				T_FAIL_("%s, auth_plaintext=%s, no TLS: %d",
				    plain_addrs[i].addr, settings[k], clear);
			if (!sasl_plaintext_rule(settings[k], true, lo))
				T_FAIL_("%s, auth_plaintext=%s, TLS: refused",
				    plain_addrs[i].addr, settings[k]);
		}
	}
}

/* connected_peer - connect from family/addr to a listener on addr,
 * peer_open the accepted end; 0, or -1 when the address is not usable
 * here (no IPv6) */
static int
connected_peer(int family, const char *listen_addr, const char *connect_addr,
    struct peer *p)
{
	struct sockaddr_storage ss;
	socklen_t sl = family == AF_INET ? sizeof(struct sockaddr_in) :
	    sizeof(struct sockaddr_in6);
	int lfd, cfd = -1, afd = -1, ret = -1;

	if ((lfd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = (sa_family_t)family;
	if (family == AF_INET)
		inet_pton(AF_INET, listen_addr,
		    &((struct sockaddr_in *)&ss)->sin_addr);
	else
		inet_pton(AF_INET6, listen_addr,
		    &((struct sockaddr_in6 *)&ss)->sin6_addr);
	if (bind(lfd, (struct sockaddr *)&ss, sl) < 0 || listen(lfd, 4) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&ss, &sl) < 0)
		goto out;
	if (family == AF_INET)
		inet_pton(AF_INET, connect_addr,
		    &((struct sockaddr_in *)&ss)->sin_addr);
	else
		inet_pton(AF_INET6, connect_addr,
		    &((struct sockaddr_in6 *)&ss)->sin6_addr);
	if ((cfd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(cfd, (struct sockaddr *)&ss, sl) < 0 ||
	    (afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0)
		goto out;
	peer_open(p, afd);
	ret = 0;
out:
	if (afd >= 0)
		close(afd);
	if (cfd >= 0)
		close(cfd);
	close(lfd);
	return ret;
}

/* real connections: the flag peer_open sets is the one the rule gets */
static void
test_peer_open(void)
{
	struct peer p;
	int sv[2];

	if (connected_peer(AF_INET, "127.0.0.1", "127.0.0.1", &p) < 0)
		T_FAIL_("no IPv4 loopback connection: %s", strerror(errno));
	T_ASSERT(p.loopback);
	T_EQ_STR(p.addr, "127.0.0.1");
	T_ASSERT(sasl_plaintext_rule("loopback", false, p.loopback));
	peer_close(&p);

	/* ::1, and 127.0.0.1 reaching a dual-stack listener as
	 * ::ffff:127.0.0.1 (shown as 127.0.0.1); skipped without IPv6 */
	if (connected_peer(AF_INET6, "::1", "::1", &p) == 0) {
		T_ASSERT(p.loopback);
		T_EQ_STR(p.addr, "::1");
		peer_close(&p);
	} else {
		printf("  (no IPv6 loopback here: ::1 not tried)\n");
	}
	if (connected_peer(AF_INET6, "::", "::ffff:127.0.0.1", &p) == 0) {
		T_ASSERT(p.loopback);
		T_EQ_STR(p.addr, "127.0.0.1");
		peer_close(&p);
	} else {
		printf("  (no dual-stack socket here: v4-mapped not tried)\n");
	}

	/* sendmail-style local connections count as loopback */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		T_FAIL_("socketpair: %s", strerror(errno));
	peer_open(&p, sv[0]);
	T_ASSERT(p.loopback);
	peer_close(&p);
	close(sv[0]);
	close(sv[1]);
}

static const struct test_case cases[] = {
	{"the rule: setting x TLS x loopback", test_rule_table},
	{"the rule for each kind of address", test_rule_by_address},
	{"real connections through peer_open", test_peer_open},
	{0},
};

int
main(void)
{
	return test_run(cases);
}
