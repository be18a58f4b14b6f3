/*
 * smtpd_data_test - the DATA byte-stream parser and the BDAT scanner, fed
 * at every chunk size from 1 byte, including the SMTP smuggling inputs,
 * and compared against a simple whole-buffer reference on random input.
 * Then whole sessions on a socketpair (a spool and a directory in a
 * temporary folder, the commit thread running): the reject of a message
 * that reaches smtpd_error_limit ends the session for good.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/evloop.h"
#include "base/test.h"
#include "mail/dir.h"
#include "mail/params.h"
#include "mail/spool.h"
#include "smtpd.h"

/* collect - parser output sink */
static void
collect(void *ctx, const char *p, size_t n)
{
	buf_append(ctx, p, n);
}

struct run {
	struct buf out;		/* unstuffed content */
	size_t used;		/* input bytes consumed up to the end */
	bool done;
	bool bare;
};

/* feed - run the parser over in[0..n) in chunks of size chunk */
static void
feed(const char *in, size_t n, size_t chunk, struct run *r)
{
	struct smtpd_data_parser dp;
	size_t off = 0;

	buf_init(&r->out);
	smtpd_data_init(&dp);
	r->used = 0;
	while (off < n && !dp.done) {
		size_t len = n - off < chunk ? n - off : chunk;
		size_t used = smtpd_data_feed(&dp, in + off, len, collect,
		    &r->out);

		if (used > len || (!dp.done && used != len)) {
			r->used = (size_t)-1;
			break;
		}
		off += used;
	}
	r->used = off;
	r->done = dp.done;
	r->bare = dp.bare;
	/* after the end, nothing more is taken */
	if (dp.done && smtpd_data_feed(&dp, "x", 1, collect, &r->out) != 0)
		r->used = (size_t)-2;
}

/*
 * check - in (length n) at every chunk size: done must be want_done; when
 * done, want_used bytes consumed, content want_out, bare flag want_bare
 */
static int
check(const char *in, size_t n, bool want_done, size_t want_used,
    const char *want_out, size_t want_len, bool want_bare)
{
	for (size_t chunk = 1; chunk <= n + 1; chunk++) {
		struct run r;
		bool ok;

		feed(in, n, chunk, &r);
		ok = r.done == want_done;
		if (want_done)
			ok = ok && r.used == want_used && r.bare == want_bare &&
			    r.out.len == want_len &&
			    memcmp(r.out.data, want_out, want_len) == 0;
		else
			ok = ok && r.used == n;
		if (!ok) {
			fprintf(stderr, "  chunk %zu: done=%d used=%zu bare=%d "
			    "out=\"%s\"\n", chunk, r.done, r.used, r.bare,
			    buf_cstr(&r.out));
			buf_free(&r.out);
			return -1;
		}
		buf_free(&r.out);
	}
	return 0;
}

#define CHECK_DONE(in, used, out, bare)                                      \
	T_ASSERT(check(in, sizeof(in) - 1, true, used, out, sizeof(out) - 1,  \
	    bare) == 0)
#define CHECK_OPEN(in)                                                        \
	T_ASSERT(check(in, sizeof(in) - 1, false, 0, "", 0, false) == 0)

static void
test_simple(void)
{
	CHECK_DONE("Hello\r\n.\r\n", 10, "Hello\r\n", false);
	CHECK_DONE("Subject: x\r\n\r\nbody\r\n.\r\n", 23,
	    "Subject: x\r\n\r\nbody\r\n", false);
	CHECK_DONE("\r\n.\r\n", 5, "\r\n", false);
}

static void
test_empty_message(void)
{
	/* the DATA line's CRLF counts: ".\r\n" at once is an empty message */
	CHECK_DONE(".\r\n", 3, "", false);
	CHECK_DONE(".\r\nMAIL FROM:<a@b>\r\n", 3, "", false);
}

static void
test_dot_unstuffing(void)
{
	CHECK_DONE("..\r\n.\r\n", 7, ".\r\n", false);
	CHECK_DONE("..dot\r\n.\r\n", 10, ".dot\r\n", false);
	CHECK_DONE("a\r\n..\r\n.\r\n", 10, "a\r\n.\r\n", false);
	CHECK_DONE("a\r\n...\r\n.\r\n", 11, "a\r\n..\r\n", false);
	/* a lone leading dot is removed too (RFC 5321 4.5.2) */
	CHECK_DONE(".x\r\n.\r\n", 7, "x\r\n", false);
	CHECK_DONE(". \r\n.\r\n", 7, " \r\n", false);
	/* dots inside a line are content */
	CHECK_DONE("a.b\r\nc..\r\n.\r\n", 13, "a.b\r\nc..\r\n", false);
}

static void
test_pipelined_rest(void)
{
	/* the next command stays in the input */
	CHECK_DONE("a\r\n.\r\nQUIT\r\n", 6, "a\r\n", false);
	CHECK_DONE("a\r\n.\r\n.\r\n", 6, "a\r\n", false);
}

static void
test_binary_bytes(void)
{
	CHECK_DONE("a\0b\xff\r\n.\r\n", 9, "a\0b\xff\r\n", false);
}

static void
test_bare_lf(void)
{
	CHECK_DONE("a\nb\r\n.\r\n", 8, "a\nb\r\n", true);
	CHECK_DONE("\n\r\n.\r\n", 6, "\n\r\n", true);
	CHECK_OPEN("a\r\n\n.\r\n");
	CHECK_DONE("a\r\n\n\r\n.\r\n", 9, "a\r\n\n\r\n", true);
}

static void
test_bare_cr(void)
{
	CHECK_DONE("a\rb\r\n.\r\n", 8, "a\rb\r\n", true);
	CHECK_DONE("a\r\r\n.\r\n", 7, "a\r\r\n", true);
	CHECK_DONE(".\rx\r\n.\r\n", 8, "\rx\r\n", true);
}

/* SMTP smuggling: none of these may end the message */
static void
test_smuggling(void)
{
	CHECK_OPEN("a\n.\r\nMAIL FROM:<evil@x>\r\n");
	CHECK_OPEN("a\r.\r\nMAIL FROM:<evil@x>\r\n");
	CHECK_OPEN("a\n.\nMAIL FROM:<evil@x>\r\n");
	CHECK_OPEN("a\r\n.\nMAIL FROM:<evil@x>\r\n");
	CHECK_OPEN("a\r\n.\rMAIL FROM:<evil@x>\r\n");
	CHECK_OPEN("\n.\r\n");
	CHECK_OPEN("\r.\r\n");
	CHECK_OPEN("\n.\n");
	CHECK_OPEN(".\n");
	CHECK_OPEN(".\r");
	/* ...and when the real end comes, the message is marked bad */
	CHECK_DONE("a\n.\r\nb\r\n.\r\n", 11, "a\n.\r\nb\r\n", true);
	CHECK_DONE("a\r.\r\nb\r\n.\r\n", 11, "a\r.\r\nb\r\n", true);
	CHECK_DONE("a\n.\nb\r\n.\r\n", 10, "a\n.\nb\r\n", true);
	CHECK_OPEN(".\n.\r\n");
	CHECK_DONE(".\n.\r\n.\r\n", 8, "\n.\r\n", true);
}

/*
 * reference - the same parser written over a whole buffer: the end is
 * the first CRLF "." CRLF counting a CRLF before the start; dots at line
 * starts (start, or after CRLF) are removed; a CR not before LF or an LF
 * not after CR is bare. Returns the end offset, or -1 without one.
 */
static long
reference(const char *in, size_t n, struct buf *out, bool *bare)
{
	long end = -1;
	size_t i, content;

	for (i = 0; i + 3 <= n; i++) {
		bool bol = i == 0 || (i >= 2 && in[i - 2] == '\r' &&
		    in[i - 1] == '\n');

		if (bol && memcmp(in + i, ".\r\n", 3) == 0) {
			end = (long)(i + 3);
			break;
		}
	}
	if (end < 0)
		return -1;
	content = (size_t)end - 3;
	*bare = false;
	buf_reset(out);
	for (i = 0; i < content; i++) {
		bool bol = i == 0 || (i >= 2 && in[i - 2] == '\r' &&
		    in[i - 1] == '\n');

		if (in[i] == '\r' && in[i + 1] != '\n')
			*bare = true;
		if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
			*bare = true;
		if (bol && in[i] == '.')
			continue;
		buf_putc(out, in[i]);
	}
	return end;
}

/* test_random - random strings over CR LF . a, every chunk size */
static void
test_random(void)
{
	static const char alphabet[] = "\r\n.a";
	uint32_t seed = 12345;
	char in[40];
	struct buf want = BUF_INIT;
	int compared = 0;

	for (int round = 0; round < 20000; round++) {
		size_t n;
		long end;
		bool bare = false;

		seed = seed * 1103515245u + 12345u;
		n = 1 + (seed >> 16) % (sizeof(in) - 1);
		for (size_t i = 0; i < n; i++) {
			seed = seed * 1103515245u + 12345u;
			in[i] = alphabet[(seed >> 16) % 4];
		}
		end = reference(in, n, &want, &bare);
		if (end < 0) {
			T_ASSERT(check(in, n, false, 0, "", 0, false) == 0);
		} else {
			compared++;
			T_ASSERT(check(in, n, true, (size_t)end, want.data,
			    want.len, bare) == 0);
		}
	}
	buf_free(&want);
	/* the generator must produce both kinds */
	T_ASSERT(compared > 100);
}

/* bdat - scan in (length n) in chunks; returns the bare flag */
static bool
bdat(const char *in, size_t n, size_t chunk)
{
	struct smtpd_bdat_scan bs;

	smtpd_data_bdat_init(&bs);
	for (size_t off = 0; off < n; off += chunk)
		smtpd_data_bdat_feed(&bs, in + off, n - off < chunk ? n - off :
		    chunk);
	smtpd_data_bdat_end(&bs);
	return bs.bare;
}

#define CHECK_BDAT(in, want)                                                  \
	do {                                                                  \
		for (size_t c_ = 1; c_ <= sizeof(in); c_++)                   \
			T_EQ_INT(bdat(in, sizeof(in) - 1, c_), want);         \
	} while (0)

static void
test_bdat_scan(void)
{
	CHECK_BDAT("a\r\nb\r\n", false);
	CHECK_BDAT("a\r\nb", false);
	CHECK_BDAT("", false);
	CHECK_BDAT("\r\n.\r\n", false);
	CHECK_BDAT("a\rb\r\n", true);
	CHECK_BDAT("a\nb\r\n", true);
	CHECK_BDAT("a\r\n\n", true);
	CHECK_BDAT("a\r", true);
	CHECK_BDAT("\n", true);
	CHECK_BDAT("a\r\r\n", true);
}

static void
test_bdat_last_byte(void)
{
	struct smtpd_bdat_scan bs;

	smtpd_data_bdat_init(&bs);
	smtpd_data_bdat_feed(&bs, "ab\r", 3);
	smtpd_data_bdat_feed(&bs, "\n", 1);
	smtpd_data_bdat_end(&bs);
	T_ASSERT(!bs.bare);
	T_ASSERT(bs.any);
	T_EQ_INT(bs.last, '\n');
	smtpd_data_bdat_init(&bs);
	smtpd_data_bdat_feed(&bs, "", 0);
	T_ASSERT(!bs.any);
}

static char tmpdir[] = "/tmp/herald-smtpd-data-test-XXXXXX";
static struct evloop *t_loop;

/* session_setup - settings, spool, directory (alice@example.test), the
 * session pool and the commit thread; once */
static bool
session_setup(void)
{
	static bool done;
	struct buf text = BUF_INIT, path = BUF_INIT, why = BUF_INIT;
	struct dir *d = NULL;
	bool ok = false;

	if (done)
		return true;
	buf_printf(&path, "%s/herald.conf", tmpdir);
	buf_printf(&text, "myhostname = mx.example.test\n"
	    "spool_directory = %s/spool\ndata_directory = %s/data\n"
	    "run_directory = %s\nsmtpd_error_limit = 2\n", tmpdir, tmpdir,
	    tmpdir);
	if (params_load_text(buf_cstr(&path), text.data, text.len, &why) < 0 ||
	    spool_setup(var_spool_directory, (uid_t)-1, (gid_t)-1, &why) < 0 ||
	    dir_open(var_data_directory, DIR_WRITE, &d, &why) < 0 ||
	    dir_domain_add(d, "example.test", &why) < 0 ||
	    dir_user_add(d, "alice@example.test", -1, &why) < 0) {
		fprintf(stderr, "  setup: %s\n", buf_cstr(&why));
		goto out;
	}
	t_loop = evloop_new();
	smtpd_session_init(NULL, t_loop);
	smtpd_check_init();
	smtpd_commit_init(t_loop);
	done = ok = true;
out:
	if (d != NULL)
		dir_close(&d);
	buf_free(&text);
	buf_free(&path);
	buf_free(&why);
	return ok;
}

/* what a client side of a session saw */
struct t_client {
	int fd;
	struct buf got;		/* every byte the server sent */
	bool eof;
};

/* t_client_poll - read what came; stop the loop at EOF */
static long long
t_client_poll(struct evloop *loop, void *ctx)
{
	struct t_client *c = ctx;
	char chunk[4096];
	ssize_t n;

	while ((n = read(c->fd, chunk, sizeof(chunk))) > 0)
		buf_append(&c->got, chunk, (size_t)n);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		c->eof = true;
		evloop_stop(loop);
		return -1;
	}
	return 10;
}

/* t_deadline - the session took too long */
static long long
t_deadline(struct evloop *loop, void *ctx)
{
	*(bool *)ctx = true;
	evloop_stop(loop);
	return -1;
}

/* run_session - send script in one write, collect the replies to EOF */
static void
run_session(const char *script, struct buf *got)
{
	struct t_client c = {.fd = -1};
	struct ev_timer *poll, *deadline;
	bool expired = false;
	int sv[2];

	T_ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	T_ASSERT(fcntl(sv[0], F_SETFL, O_NONBLOCK) == 0);
	T_ASSERT(fcntl(sv[1], F_SETFL, O_NONBLOCK) == 0);
	c.fd = sv[1];
	buf_init(&c.got);
	smtpd_session_accept(NULL, sv[0], SMTPD_ROLE_MX);
	T_ASSERT(write(sv[1], script, strlen(script)) ==
	    (ssize_t)strlen(script));
	poll = evloop_add_timer(t_loop, 10, t_client_poll, &c);
	deadline = evloop_add_timer(t_loop, 10000, t_deadline, &expired);
	while (!c.eof && !expired)
		T_ASSERT(evloop_run(t_loop) >= 0);
	if (!c.eof)
		evloop_cancel_timer(t_loop, &poll);
	if (!expired)
		evloop_cancel_timer(t_loop, &deadline);
	T_ASSERT(!expired);
	close(sv[1]);
	/* let the server side see the close and free the session */
	deadline = evloop_add_timer(t_loop, 50, t_deadline, &expired);
	T_ASSERT(evloop_run(t_loop) >= 0);
	buf_reset(got);
	buf_append(got, c.got.data, c.got.len);
	buf_free(&c.got);
}

/* incoming_files - queue files in <spool>/incoming; -1 if unreadable */
static int
incoming_files(void)
{
	struct buf path = BUF_INIT;
	struct dirent *e;
	DIR *dp;
	int n = 0;

	buf_printf(&path, "%s/incoming", var_spool_directory);
	dp = opendir(buf_cstr(&path));
	buf_free(&path);
	if (dp == NULL)
		return -1;
	while ((e = readdir(dp)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(dp);
	return n;
}

/* ends_with - the text ends with tail */
static bool
ends_with(const struct buf *b, const char *tail)
{
	size_t n = strlen(tail);

	return b->len >= n && memcmp(b->data + b->len - n, tail, n) == 0;
}

#define T_MAIL "MAIL FROM:<a@example.org>\r\nRCPT TO:<alice@example.test>\r\n"
#define T_421 "421 4.7.0 mx.example.test Error: too many errors\r\n"

/*
 * test_session_control - the harness sees a message that is queued: one
 * accepted transaction gives "250 ... queued as" and a file in incoming/
 */
static void
test_session_control(void)
{
	struct buf got = BUF_INIT;
	int before;

	if (!session_setup()) {
		T_ASSERT(!"setup");
		return;
	}
	before = incoming_files();
	T_ASSERT(before >= 0);
	run_session("EHLO c.example\r\n" T_MAIL "DATA\r\nhello\r\n.\r\n"
	    "QUIT\r\n", &got);
	T_ASSERT(strstr(buf_cstr(&got), "250 2.0.0 Ok: queued as ") != NULL);
	T_ASSERT(ends_with(&got, "221 2.0.0 Bye\r\n"));
	T_EQ_INT(incoming_files(), before + 1);
	buf_free(&got);
}

/*
 * error_limit_case - script reaches smtpd_error_limit (2) with the reject
 * of a message (a bare LF) and pipelines a whole good transaction behind
 * it: the 421 must be the last thing said, and nothing is queued.
 */
static void
error_limit_case(const char *script)
{
	struct buf got = BUF_INIT;
	int before;

	if (!session_setup()) {
		T_ASSERT(!"setup");
		return;
	}
	before = incoming_files();
	T_ASSERT(before >= 0);
	run_session(script, &got);
	if (!ends_with(&got, "550 5.5.2 Message rejected: bare <CR> or <LF> "
	    "in message data (RFC 5321 2.3.8)\r\n" T_421))
		fprintf(stderr, "  got: %s\n", buf_cstr(&got));
	T_ASSERT(ends_with(&got, "(RFC 5321 2.3.8)\r\n" T_421));
	T_ASSERT(strstr(buf_cstr(&got), "queued as") == NULL);
	T_EQ_INT(incoming_files(), before);
	buf_free(&got);
}

static void
test_error_limit_data(void)
{
	error_limit_case("EHLO c.example\r\nFROB\r\n" T_MAIL
	    "DATA\r\nbare\nLF\r\n.\r\n"
	    T_MAIL "DATA\r\nhello\r\n.\r\nNOOP\r\nQUIT\r\n");
}

static void
test_error_limit_bdat(void)
{
	error_limit_case("EHLO c.example\r\nFROB\r\n" T_MAIL
	    "BDAT 9 LAST\r\nbare\nLF\r\n"
	    T_MAIL "BDAT 7 LAST\r\nhello\r\nRSET\r\nQUIT\r\n");
}

static const struct test_case cases[] = {
	{"simple messages", test_simple},
	{"empty message", test_empty_message},
	{"dot-unstuffing", test_dot_unstuffing},
	{"pipelined input after the end", test_pipelined_rest},
	{"binary bytes", test_binary_bytes},
	{"bare LF", test_bare_lf},
	{"bare CR", test_bare_cr},
	{"smuggling inputs", test_smuggling},
	{"random input against the reference", test_random},
	{"BDAT bare CR/LF scan", test_bdat_scan},
	{"BDAT last byte", test_bdat_last_byte},
	{"session: a good message is queued", test_session_control},
	{"session: error limit at the end of DATA is final",
	    test_error_limit_data},
	{"session: error limit at a BDAT reject is final",
	    test_error_limit_bdat},
	{0},
};

int
main(void)
{
	return test_run_in(cases, tmpdir);
}
