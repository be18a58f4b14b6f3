/*
 * pop3d_send_test - the RETR/TOP encoder: LF -> CRLF without doubling a
 * stored CR, dot-stuffing, the TOP line limit, an unterminated last line;
 * every case fed at every chunk size from 1 byte, and the encoded size
 * checked against the size LIST announces (pop3d_maildrop_count_wsize).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/test.h"
#include "pop3d.h"

/* encode - the whole encoder output for in, fed in chunks of step */
static void
encode(const char *in, size_t n, long long lines, size_t step,
    struct buf *out)
{
	struct pop3d_enc e;
	size_t off = 0;

	buf_reset(out);
	pop3d_enc_init(&e, lines);
	while (off < n && !e.done) {
		size_t k = n - off < step ? n - off : step;
		size_t used = pop3d_enc_feed(&e, in + off, k, out);

		if (used < k && !e.done) {
			buf_set(out, "ENCODER STOPPED EARLY");
			return;
		}
		off += used;
	}
	pop3d_enc_end(&e, out);
}

/* check_all_steps - in encodes to want at every chunk size */
static int
check_all_steps(const char *in, long long lines, const char *want)
{
	struct buf out = BUF_INIT;
	size_t n = strlen(in);
	int bad = 0;

	for (size_t step = 1; step <= n + 1; step++) {
		encode(in, n, lines, step, &out);
		if (strcmp(out.data, want) != 0) {
			fprintf(stderr, "  step %zu: got \"%s\"\n  want \"%s\"\n",
			    step, out.data, want);
			bad++;
			break;
		}
	}
	buf_free(&out);
	return bad;
}

static void
test_crlf(void)
{
	T_EQ_INT(check_all_steps("a: b\n\nbody\n", -1,
	    "a: b\r\n\r\nbody\r\n.\r\n"), 0);
	/* a stored CRLF stays, never "\r\r\n" */
	T_EQ_INT(check_all_steps("a: b\r\n\r\nx\r\ny\n", -1,
	    "a: b\r\n\r\nx\r\ny\r\n.\r\n"), 0);
	/* a lone CR stays a lone CR */
	T_EQ_INT(check_all_steps("a\rb\n", -1, "a\rb\r\n.\r\n"), 0);
	/* empty message: just the terminator */
	T_EQ_INT(check_all_steps("", -1, ".\r\n"), 0);
}

static void
test_unterminated(void)
{
	T_EQ_INT(check_all_steps("a: b\n\nno newline", -1,
	    "a: b\r\n\r\nno newline\r\n.\r\n"), 0);
	/* a last CR gets its LF, not another CR */
	T_EQ_INT(check_all_steps("x\n\nend\r", -1, "x\r\n\r\nend\r\n.\r\n"),
	    0);
}

static void
test_dot_stuffing(void)
{
	T_EQ_INT(check_all_steps(".a\n\n.\n..\nx.y\n. \n.", -1,
	    "..a\r\n\r\n..\r\n...\r\nx.y\r\n.. \r\n..\r\n.\r\n"), 0);
	/* after a stored CRLF too */
	T_EQ_INT(check_all_steps("h: 1\r\n\r\n.x\r\n", -1,
	    "h: 1\r\n\r\n..x\r\n.\r\n"), 0);
	/* a "." after a lone CR is not at a line start */
	T_EQ_INT(check_all_steps("a\r.b\n", -1, "a\r.b\r\n.\r\n"), 0);
}

static void
test_top(void)
{
	static const char msg[] = "A: 1\nB: 2\n\nl1\n.l2\nl3\n";

	T_EQ_INT(check_all_steps(msg, 0, "A: 1\r\nB: 2\r\n\r\n.\r\n"), 0);
	T_EQ_INT(check_all_steps(msg, 1, "A: 1\r\nB: 2\r\n\r\nl1\r\n.\r\n"),
	    0);
	T_EQ_INT(check_all_steps(msg, 2,
	    "A: 1\r\nB: 2\r\n\r\nl1\r\n..l2\r\n.\r\n"), 0);
	/* more lines than the body has: the whole message */
	T_EQ_INT(check_all_steps(msg, 99,
	    "A: 1\r\nB: 2\r\n\r\nl1\r\n..l2\r\nl3\r\n.\r\n"), 0);
	/* the blank line may be stored as CRLF */
	T_EQ_INT(check_all_steps("A: 1\r\n\r\nx\r\ny\r\n", 1,
	    "A: 1\r\n\r\nx\r\n.\r\n"), 0);
	/* no body at all: everything */
	T_EQ_INT(check_all_steps("A: 1\nB: 2\n", 0, "A: 1\r\nB: 2\r\n.\r\n"),
	    0);
	/* a header line with only a CR before LF is the blank line */
	T_EQ_INT(check_all_steps("A: 1\n\r\nb1\nb2\n", 1,
	    "A: 1\r\n\r\nb1\r\n.\r\n"), 0);
}

/* wire_len - octets of a RETR reply without dot-stuffing and ".CRLF" */
static long long
wire_len(const char *in)
{
	struct buf out = BUF_INIT;
	long long n = 0;
	const char *p;

	encode(in, strlen(in), -1, 4096, &out);
	/* undo: drop the terminator, then one "." at each line start */
	out.len -= 3;
	p = out.data;
	for (size_t i = 0; i < out.len; i++) {
		if (p[i] == '.' && (i == 0 || p[i - 1] == '\n'))
			continue;
		n++;
	}
	buf_free(&out);
	return n;
}

static void
test_size_matches(void)
{
	static const char *const msgs[] = {"a: b\n\nbody\n",
	    "a: b\r\n\r\nx\r\r\ny\n", ".\n..\n\n.x\n", "lone\r", "\n\n\n",
	    "", NULL};
	char path[] = "/tmp/pop3d-send-test-XXXXXX";
	int fd = mkstemp(path);

	T_ASSERT(fd >= 0);
	unlink(path);
	for (const char *const *m = msgs; *m; m++) {
		size_t n = strlen(*m);

		T_EQ_INT(ftruncate(fd, 0), 0);
		T_EQ_INT(pwrite(fd, *m, n, 0), (long long)n);
		/* messages that end in a line end: RETR sends exactly the
		 * announced size before ".CRLF" */
		if (n == 0 || (*m)[n - 1] == '\n')
			T_EQ_INT(pop3d_maildrop_count_wsize(fd), wire_len(*m));
		else
			T_EQ_INT(pop3d_maildrop_count_wsize(fd) + 2 -
			    ((*m)[n - 1] == '\r'), wire_len(*m));
	}
	close(fd);
}

static void
test_big(void)
{
	struct buf in = BUF_INIT, out = BUF_INIT, want = BUF_INIT;

	/* 200 KB of lines, some starting with ".", fed 16 KB at a time */
	for (int i = 0; in.len < 200000; i++) {
		buf_printf(&in, "%sline %d\n", i % 7 == 0 ? "." : "", i);
		buf_printf(&want, "%sline %d\r\n", i % 7 == 0 ? ".." : "", i);
	}
	buf_puts(&want, ".\r\n");
	encode(in.data, in.len, -1, 16384, &out);
	T_EQ_INT(out.len, want.len);
	T_ASSERT(memcmp(out.data, want.data, want.len) == 0);
	buf_free(&in);
	buf_free(&out);
	buf_free(&want);
}

static const struct test_case cases[] = {
	{"LF to CRLF, stored CRLF kept", test_crlf},
	{"unterminated last line", test_unterminated},
	{"dot-stuffing", test_dot_stuffing},
	{"TOP line limits", test_top},
	{"LIST size equals RETR octets", test_size_matches},
	{"200 KB in 16 KB chunks", test_big},
	{0},
};

int
main(void)
{
	return test_run(cases);
}
