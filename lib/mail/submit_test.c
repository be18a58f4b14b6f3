/*
 * submit_test - the local submission client against a fake smtpd (a
 * forked child on a temporary UNIX socket that answers every command and
 * writes what it received to a file): the command lines of a good
 * transaction, and the refusal, before connecting, of any address or
 * EHLO name with a control character in it (CR/LF would end a command
 * early and smuggle in commands of its own).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/sock.h"
#include "base/test.h"
#include "mail/submit.h"

static char test_dir[] = "/tmp/submit_test.XXXXXX";
static char sock_path[256], log_path[256];

/* fake_line - reply to one command line of the client */
static const char *
fake_line(const char *line, size_t n, bool *data)
{
	if (*data) {
		if (n == 3 && memcmp(line, ".\r\n", 3) == 0) {
			*data = false;
			return "250 2.0.0 Ok: queued\r\n";
		}
		return NULL;
	}
	if (n >= 4 && strncmp(line, "EHLO", 4) == 0)
		return "250-fake\r\n250 SMTPUTF8\r\n";
	if (n >= 4 && strncmp(line, "DATA", 4) == 0) {
		*data = true;
		return "354 go on\r\n";
	}
	if (n >= 4 && strncmp(line, "QUIT", 4) == 0)
		return "221 bye\r\n";
	return "250 2.1.0 Ok\r\n";
}

/* fake_serve - one connection: greet, answer each line, log all bytes */
static void
fake_serve(int lfd)
{
	struct buf in = BUF_INIT;
	bool data = false;
	int fd, log;

	alarm(20);	/* never outlives a broken test */
	/* the listener is non-blocking: wait for the client here */
	if (sock_set_nonblock(lfd, false) < 0 ||
	    (fd = accept(lfd, NULL, NULL)) < 0)
		_exit(1);
	if ((log = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0)
		_exit(1);
	if (write(fd, "220 fake\r\n", 10) != 10)
		_exit(1);
	for (int rounds = 0; rounds < 10000; rounds++) {
		char chunk[4096];
		ssize_t r = read(fd, chunk, sizeof(chunk));
		char *nl;

		if (r <= 0)
			break;
		if (write(log, chunk, (size_t)r) != r)
			_exit(1);
		buf_append(&in, chunk, (size_t)r);
		while ((nl = memchr(in.data, '\n', in.len)) != NULL) {
			size_t n = (size_t)(nl - in.data) + 1;
			const char *reply = fake_line(in.data, n, &data);

			if (reply != NULL && write(fd, reply, strlen(reply)) !=
			    (ssize_t)strlen(reply))
				_exit(1);
			buf_consume(&in, n);
		}
	}
	_exit(0);
}

/* fake_start - listen at sock_path and serve one connection in a child;
 * the listening socket stays with the caller (to see who connected) */
static pid_t
fake_start(int *lfd_r)
{
	struct buf why = BUF_INIT;
	pid_t pid;

	(void)unlink(sock_path);
	*lfd_r = sock_listen_unix(sock_path, 0600, 4, &why);
	buf_free(&why);
	if (*lfd_r < 0)
		return -1;
	if ((pid = fork()) == 0)
		fake_serve(*lfd_r);
	return pid;
}

/* fake_stop - end the child (it may still wait for a connection) */
static void
fake_stop(pid_t pid, int lfd)
{
	if (pid > 0) {
		(void)kill(pid, SIGKILL);
		(void)waitpid(pid, NULL, 0);
	}
	if (lfd >= 0)
		(void)close(lfd);
}

/* read_log - what the fake received */
static void
read_log(struct buf *out)
{
	char chunk[4096];
	ssize_t r;
	int fd = open(log_path, O_RDONLY);

	buf_reset(out);
	if (fd < 0)
		return;
	while ((r = read(fd, chunk, sizeof(chunk))) > 0)
		buf_append(out, chunk, (size_t)r);
	(void)close(fd);
}

static void
test_good_transaction(void)
{
	const char *rcpts[] = {"bob@example.test", "john doe@example.test",
	    "j\xc3\xb6rg@example.test"};
	struct submit_msg m = {"alice@example.test", rcpts, 3,
	    "Subject: x\r\n\r\n.dot\r\n", 20, "localhost"};
	struct buf why = BUF_INIT, got = BUF_INIT;
	int lfd = -1;
	pid_t pid = fake_start(&lfd);
	enum submit_result r;

	T_ASSERT(pid > 0);
	r = submit_send(sock_path, &m, 5000, &why);
	fake_stop(pid, lfd);
	read_log(&got);
	if (r != SUBMIT_OK)
		fprintf(stderr, "  the fake got: %s\n", buf_cstr(&got));
	T_EQ_STR(buf_cstr(&why), "");
	T_EQ_INT(r, SUBMIT_OK);
	T_EQ_STR(buf_cstr(&got), "EHLO localhost\r\n"
	    "MAIL FROM:<alice@example.test> SIZE=20 SMTPUTF8\r\n"
	    "RCPT TO:<bob@example.test>\r\n"
	    "RCPT TO:<\"john doe\"@example.test>\r\n"
	    "RCPT TO:<j\xc3\xb6rg@example.test>\r\n"
	    "DATA\r\n"
	    "Subject: x\r\n\r\n..dot\r\n.\r\n"
	    "QUIT\r\n");
	buf_free(&why);
	buf_free(&got);
}

/* refused - submit m must refuse before connecting: the fake sees no
 * connection at all */
static int
refused(const struct submit_msg *m)
{
	struct buf why = BUF_INIT;
	struct pollfd pfd;
	int lfd, rc = 0;

	/* nobody accepts: a connection would wait in the backlog */
	(void)unlink(sock_path);
	lfd = sock_listen_unix(sock_path, 0600, 4, &why);
	if (lfd < 0)
		return -1;
	if (submit_send(sock_path, m, 1000, &why) != SUBMIT_BAD_INPUT ||
	    why.len == 0)
		rc = -1;
	pfd.fd = lfd;
	pfd.events = POLLIN;
	pfd.revents = 0;
	if (poll(&pfd, 1, 0) != 0)	/* somebody connected */
		rc = -1;
	(void)close(lfd);
	buf_free(&why);
	return rc;
}

static void
test_control_characters_refused(void)
{
	static const char *const bad[] = {
		"x@example.test>\r\nRSET\r\nMAIL FROM:<ceo@example.test",
		"x@example.test>\nRSET",
		"x@example.test\r",
		"x\t@example.test",
		"x\x7f@example.test",
		"x\x01@example.test",
		"x\x1f@example.test",
		NULL,
	};
	const char *good[] = {"bob@example.test"};
	const char *one[1];
	const char *two[2];
	struct buf why = BUF_INIT;
	struct submit_msg m;

	for (int i = 0; bad[i] != NULL; i++) {
		/* as the sender */
		m = (struct submit_msg){bad[i], good, 1, "x\r\n", 3,
		    "localhost"};
		T_EQ_INT(refused(&m), 0);
		buf_reset(&why);
		T_EQ_INT(submit_check(&m, &why), -1);
		/* as the only and as the second recipient */
		one[0] = bad[i];
		m = (struct submit_msg){"a@example.test", one, 1, "x\r\n", 3,
		    "localhost"};
		T_EQ_INT(refused(&m), 0);
		two[0] = good[0];
		two[1] = bad[i];
		m.rcpts = two;
		m.nrcpt = 2;
		T_EQ_INT(refused(&m), 0);
		/* as the EHLO name */
		m = (struct submit_msg){"a@example.test", good, 1, "x\r\n", 3,
		    bad[i]};
		T_EQ_INT(refused(&m), 0);
	}
	/* no recipient, an empty one, an empty EHLO name */
	m = (struct submit_msg){"a@example.test", good, 0, "x\r\n", 3, "h"};
	T_EQ_INT(refused(&m), 0);
	one[0] = "";
	m = (struct submit_msg){"a@example.test", one, 1, "x\r\n", 3, "h"};
	T_EQ_INT(refused(&m), 0);
	m = (struct submit_msg){"a@example.test", good, 1, "x\r\n", 3, ""};
	T_EQ_INT(refused(&m), 0);
	/* what may go: the null sender, UTF-8, quoted local parts */
	m = (struct submit_msg){"", good, 1, "x\r\n", 3, "localhost"};
	buf_reset(&why);
	T_EQ_INT(submit_check(&m, &why), 0);
	one[0] = "\"a b\"@ex\xc3\xa4mple.test";
	m = (struct submit_msg){"a@example.test", one, 1, "x\r\n", 3, "h"};
	T_EQ_INT(submit_check(&m, &why), 0);
	buf_free(&why);
}

static const struct test_case cases[] = {
	{"a good transaction, line by line", test_good_transaction},
	{"control characters refused, nothing sent",
	    test_control_characters_refused},
	{0},
};

int
main(void)
{
	int rc;

	if (mkdtemp(test_dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	(void)snprintf(sock_path, sizeof(sock_path), "%s/submit", test_dir);
	(void)snprintf(log_path, sizeof(log_path), "%s/log", test_dir);
	(void)signal(SIGPIPE, SIG_IGN);
	rc = test_run(cases);
	test_rm_tree(test_dir);
	return rc;
}
