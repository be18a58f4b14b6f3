/*
 * smtp_client_bdat_test - the SMTP client's content path against a sink
 * server (a child process on a socketpair) that records the commands and
 * the content it got: CHUNKING (BDAT framing and chunk sizes with and
 * without PIPELINING, the content byte for byte, 8-bit content converted
 * for a 7-bit server, a failed chunk then RSET and reuse, 4xx to BDAT
 * LAST), DATA where BDAT must not be used (no CHUNKING, or
 * smtp_use_chunking off) with its dot-stuffing across read boundaries,
 * 3xx replies where none belongs; and the time 10 MB takes over DATA
 * and over BDAT, printed for the record.
 */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/test.h"
#include "mail/smtp_client.h"

/* ok - the child exited 0 */
#define T_CHILD_OK(st) T_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0)

static const char *const two[] = {"bob@b.test", "reject@b.test"};
static const char *const bob[] = {"bob@b.test"};

/*
 * The sink: a server that takes what comes: EHLO gets sink.ehlo, MAIL,
 * RCPT and RSET 250 (or sink.mail, sink.rcpt), DATA 354 and then 250 (or
 * sink.dot) for the content, the i-th BDAT sink.bdat[i] (NULL or past the
 * end: 250), QUIT 221. It records each command line to a file,
 * and the content as it came over the wire (DATA: stuffed, with the
 * final dot; BDAT: the chunks' bytes) to another, or with count_only
 * just its size as a last "BYTES n" command line.
 */
struct sink {
	const char *ehlo;		/* the EHLO reply */
	const char *const *bdat;	/* replies to the BDATs, in order */
	size_t nbdat;
	const char *mail;		/* reply to MAIL; NULL: 250 */
	const char *rcpt;		/* reply to RCPT; NULL: 250 */
	const char *dot;		/* to the end of DATA; NULL: 250 */
	bool count_only;
};

/* the sink's records, flushed when the client has left */
static FILE *sink_cmds, *sink_body;

/* sink_say - write s to fd; a client that has gone (it may close
 * without reading what is still to come) ends the sink */
static void
sink_say(int fd, const char *s)
{
	if (write(fd, s, strlen(s)) != (ssize_t)strlen(s)) {
		fflush(sink_cmds);
		fflush(sink_body);
		_exit(0);
	}
}

/* sink_serve - the sink on fd; commands to cmds, content to body */
static void
sink_serve(int fd, const struct sink *sk, FILE *cmds, FILE *body)
{
	FILE *in = fdopen(dup(fd), "r");
	char *line = NULL, *chunk = malloc(65536);
	size_t cap = 0, ibdat = 0;
	long long bytes = 0;
	ssize_t len;

	if (in == NULL || chunk == NULL)
		_exit(21);
	sink_cmds = cmds;
	sink_body = body;
	sink_say(fd, "220 sink ESMTP\r\n");
	while ((len = getline(&line, &cap, in)) > 0) {
		long long n;
		char last[8] = "";

		fprintf(cmds, "%.*s\n", (int)strcspn(line, "\r\n"), line);
		if (strncmp(line, "EHLO", 4) == 0) {
			sink_say(fd, sk->ehlo);
		} else if (strncmp(line, "MAIL", 4) == 0) {
			sink_say(fd, sk->mail != NULL ? sk->mail :
			    "250 2.1.0 ok\r\n");
		} else if (strncmp(line, "RCPT", 4) == 0 && sk->rcpt != NULL) {
			sink_say(fd, sk->rcpt);
		} else if (strncmp(line, "RCPT", 4) == 0 ||
		    strncmp(line, "RSET", 4) == 0) {
			sink_say(fd, "250 2.0.0 ok\r\n");
		} else if (strncmp(line, "QUIT", 4) == 0) {
			sink_say(fd, "221 2.0.0 bye\r\n");
			break;
		} else if (strncmp(line, "DATA", 4) == 0) {
			sink_say(fd, "354 go\r\n");
			while ((len = getline(&line, &cap, in)) > 0) {
				bytes += len;
				if (!sk->count_only)
					fwrite(line, 1, (size_t)len, body);
				if (strcmp(line, ".\r\n") == 0)
					break;
			}
			sink_say(fd, sk->dot != NULL ? sk->dot :
			    "250 2.0.0 data ok\r\n");
		} else if (sscanf(line, "BDAT %lld %7s", &n, last) >= 1) {
			while (n > 0) {
				size_t want = n > 65536 ? 65536 : (size_t)n;

				if (fread(chunk, 1, want, in) != want)
					_exit(22);
				if (!sk->count_only)
					fwrite(chunk, 1, want, body);
				bytes += (long long)want;
				n -= (long long)want;
			}
			if (ibdat < sk->nbdat && sk->bdat[ibdat] != NULL)
				sink_say(fd, sk->bdat[ibdat]);
			else
				sink_say(fd, strcmp(last, "LAST") == 0 ?
				    "250 2.0.0 message ok\r\n" :
				    "250 2.0.0 chunk ok\r\n");
			ibdat++;
		} else {
			sink_say(fd, "502 5.5.1 no\r\n");
		}
	}
	if (sk->count_only)
		fprintf(cmds, "BYTES %lld\n", bytes);
	fflush(cmds);
	fflush(body);
	_exit(0);
}

/* what a sink run left: its commands, the content it got */
struct sink_rec {
	struct buf cmds;
	struct buf body;
	int status;		/* the sink's exit status */
};

/* sink_slurp - the whole of f into b, and close f */
static void
sink_slurp(FILE *f, struct buf *b)
{
	char tmp[65536];
	size_t n;

	rewind(f);
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		buf_append(b, tmp, n);
	fclose(f);
}

/* sink_start - a sink on a socketpair; the client's end in *fd_r; the
 * content body[0..len) in a queue-like file for env */
static pid_t
sink_start(const struct sink *sk, const char *body, size_t len,
    struct smtp_envelope *env, int *fd_r, FILE **cmds_r, FILE **body_r)
{
	char path[] = "/tmp/herald-smtp-client-XXXXXX";
	int sv[2], bfd = mkstemp(path);
	pid_t pid;

	*cmds_r = tmpfile();
	*body_r = tmpfile();
	if (bfd < 0 || unlink(path) < 0 || *cmds_r == NULL ||
	    *body_r == NULL || (len > 0 && write(bfd, body, len) !=
	    (ssize_t)len))
		abort();
	env->fd = bfd;
	env->off = 0;
	env->size = (off_t)len;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		abort();
	if ((pid = fork()) == 0) {
		close(sv[0]);
		close(bfd);
		sink_serve(sv[1], sk, *cmds_r, *body_r);
	}
	close(sv[1]);
	*fd_r = sv[0];
	return pid;
}

/* sink_end - reap the sink, collect its record */
static void
sink_end(pid_t pid, FILE *cmds, FILE *body, struct sink_rec *rec)
{
	if (waitpid(pid, &rec->status, 0) != pid)
		abort();
	sink_slurp(cmds, &rec->cmds);
	sink_slurp(body, &rec->body);
}

static void
sink_rec_free(struct sink_rec *rec)
{
	buf_free(&rec->cmds);
	buf_free(&rec->body);
}

/* sink_conf - the client's settings for the sink tests */
static struct smtp_client_conf
sink_conf(bool chunking)
{
	return (struct smtp_client_conf){
		.helo_name = "mx.a.test", .tls = SMTP_TLS_MAY,
		.helo_ms = 5000, .mail_ms = 5000, .rcpt_ms = 5000,
		.data_init_ms = 5000, .data_xfer_ms = 5000,
		.data_done_ms = 5000, .chunking = chunking,
	};
}

/* sink_deliver - one transaction of body[0..len) to one recipient with
 * smtp_client_deliver: the outcome in *o, the record in rec */
static int
sink_deliver(const struct sink *sk, const struct smtp_client_conf *conf,
    struct smtp_envelope *env, const char *body, size_t len,
    struct outcome *o, struct sink_rec *rec)
{
	struct smtp_client_info info = {.tls = BUF_INIT};
	struct buf why = BUF_INIT;
	FILE *cmds, *bodyf;
	int fd, rc;
	pid_t pid = sink_start(sk, body, len, env, &fd, &cmds, &bodyf);

	outcome_init(o);
	rc = smtp_client_deliver(fd, "mx.b.test", conf, env, o, &info, &why);
	close(fd);
	close(env->fd);
	sink_end(pid, cmds, bodyf, rec);
	buf_free(&info.tls);
	buf_free(&why);
	return rc;
}

/* stuffed - body[0..len) as DATA sends it (the old byte-by-byte rule) */
static void
stuffed(const char *body, size_t len, struct buf *out)
{
	bool bol = true;

	for (size_t i = 0; i < len; i++) {
		if (bol && body[i] == '.')
			buf_putc(out, '.');
		buf_putc(out, body[i]);
		bol = body[i] == '\n';
	}
	if (len > 0 && body[len - 1] != '\n')
		buf_puts(out, "\r\n");
	buf_puts(out, ".\r\n");
}

/* dotty - a body of len bytes (len > 65540) of CRLF lines, many starting
 * with a dot, one of them right at the DATA path's 64 KiB read boundary
 * and another just after it, the last line without its CRLF when open */
static void
dotty(size_t len, bool open, struct buf *out)
{
	static const char *const lines[] = {".leading dot\r\n", "plain\r\n",
	    "..two\r\n", ".\r\n", "x.y\r\n"};

	buf_puts(out, ".first\r\n");
	for (size_t i = 0; out->len < len; i++) {
		const char *l = lines[i % 5];

		if (out->len < 65536 && out->len + strlen(l) > 65534) {
			/* pad so that a line ends at 65536 exactly */
			while (out->len < 65534)
				buf_putc(out, 'p');
			buf_puts(out, "\r\n");
			buf_puts(out, ".at the boundary\r\n");
			continue;
		}
		buf_puts(out, l);
	}
	buf_truncate(out, len);
	if (!open) {
		out->data[len - 2] = '\r';
		out->data[len - 1] = '\n';
	} else if (out->data[len - 1] == '\n') {
		out->data[len - 1] = 'z';
	}
}

static const char *const ehlo_chunking = "250-sink\r\n250-PIPELINING\r\n"
    "250-8BITMIME\r\n250 CHUNKING\r\n";

static void
test_bdat_framing(void)
{
	/* 2 x 256 KiB + 1000: three chunks; with PIPELINING and without;
	 * the leading dots go out as they are */
	static const struct sink pipe = {.ehlo = ehlo_chunking};
	static const struct sink lock = {.ehlo = "250-sink\r\n"
	    "250 CHUNKING\r\n"};
	const struct sink *sinks[] = {&pipe, &lock};
	struct smtp_client_conf conf = sink_conf(true);
	struct smtp_envelope env = {.sender = "a@a.test", .rcpt = two,
	    .nrcpt = 1};
	struct buf body = BUF_INIT;

	dotty(2 * 262144 + 1000, false, &body);
	for (size_t k = 0; k < 2; k++) {
		struct sink_rec rec = {BUF_INIT, BUF_INIT, 0};
		struct outcome o;

		T_EQ_INT(sink_deliver(sinks[k], &conf, &env, body.data,
		    body.len, &o, &rec), 0);
		T_CHILD_OK(rec.status);
		T_EQ_INT(o.status, OUTCOME_OK);
		T_EQ_STR(buf_cstr(&o.reason), "mx.b.test said: 250 2.0.0 "
		    "message ok (in reply to BDAT LAST)");
		T_ASSERT(strstr(buf_cstr(&rec.cmds), "\nBDAT 262144\n"
		    "BDAT 262144\nBDAT 1000 LAST\nQUIT\n") != NULL);
		T_ASSERT(strstr(buf_cstr(&rec.cmds), "DATA") == NULL);
		T_EQ_MEM(rec.body.data, rec.body.len, body.data, body.len);
		outcome_free(&o);
		sink_rec_free(&rec);
	}
	buf_free(&body);
}

static void
test_bdat_small_and_open_end(void)
{
	/* one chunk; a last line without CRLF gets it (n counts it);
	 * an empty message is "BDAT 0 LAST" */
	static const struct sink sk = {.ehlo = ehlo_chunking};
	static const char msg[] = ".dot\r\nno end";
	struct smtp_client_conf conf = sink_conf(true);
	struct smtp_envelope env = {.sender = "a@a.test", .rcpt = two,
	    .nrcpt = 1};
	struct sink_rec rec = {BUF_INIT, BUF_INIT, 0};
	struct outcome o;

	T_EQ_INT(sink_deliver(&sk, &conf, &env, msg, strlen(msg), &o, &rec),
	    0);
	T_CHILD_OK(rec.status);
	T_EQ_INT(o.status, OUTCOME_OK);
	T_ASSERT(strstr(buf_cstr(&rec.cmds), "\nBDAT 14 LAST\n") != NULL);
	T_EQ_STR(buf_cstr(&rec.body), ".dot\r\nno end\r\n");
	outcome_free(&o);
	sink_rec_free(&rec);

	T_EQ_INT(sink_deliver(&sk, &conf, &env, "", 0, &o, &rec), 0);
	T_CHILD_OK(rec.status);
	T_EQ_INT(o.status, OUTCOME_OK);
	T_ASSERT(strstr(buf_cstr(&rec.cmds), "\nBDAT 0 LAST\n") != NULL);
	T_EQ_INT(rec.body.len, 0);
	outcome_free(&o);
	sink_rec_free(&rec);
}

static void
test_data_when_no_chunking(void)
{
	/* no CHUNKING, or smtp_use_chunking = no: DATA, dot-stuffed, also
	 * across the 64 KiB read boundary, and an open last line closed */
	static const struct sink plain = {.ehlo = "250-sink\r\n"
	    "250 PIPELINING\r\n"};
	static const struct sink chunky = {.ehlo = ehlo_chunking};
	const struct sink *sinks[] = {&plain, &chunky};
	struct smtp_envelope env = {.sender = "a@a.test", .rcpt = two,
	    .nrcpt = 1};
	struct buf body = BUF_INIT, want = BUF_INIT;

	dotty(200000, true, &body);
	T_ASSERT(memcmp(body.data + 65536, ".at", 3) == 0);
	stuffed(body.data, body.len, &want);
	for (size_t k = 0; k < 2; k++) {
		struct smtp_client_conf conf = sink_conf(k == 0);
		struct sink_rec rec = {BUF_INIT, BUF_INIT, 0};
		struct outcome o;

		T_EQ_INT(sink_deliver(sinks[k], &conf, &env, body.data,
		    body.len, &o, &rec), 0);
		T_CHILD_OK(rec.status);
		T_EQ_INT(o.status, OUTCOME_OK);
		T_ASSERT(strstr(buf_cstr(&o.reason), "(in reply to end of "
		    "DATA)") != NULL);
		T_ASSERT(strstr(buf_cstr(&rec.cmds), "\nDATA\nQUIT\n") !=
		    NULL);
		T_ASSERT(strstr(buf_cstr(&rec.cmds), "BDAT") == NULL);
		T_EQ_MEM(rec.body.data, rec.body.len, want.data, want.len);
		outcome_free(&o);
		sink_rec_free(&rec);
	}
	buf_free(&body);
	buf_free(&want);
}

static void
test_bdat_8bit(void)
{
	/* 8-bit content to a CHUNKING server without 8BITMIME: converted
	 * to quoted-printable, sent in exact bytes (no stuffing of the
	 * lone dot); with 8BITMIME: BODY=8BITMIME and the bytes as they
	 * are */
	static const struct sink seven = {.ehlo = "250-sink\r\n"
	    "250-PIPELINING\r\n250 CHUNKING\r\n"};
	static const struct sink eight = {.ehlo = ehlo_chunking};
	static const char msg[] = "Subject: x\r\n\r\ncaf\xc3\xa9\r\n.\r\n";
	static const char qp[] = "Subject: x\r\nMIME-Version: 1.0\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
	    "caf=C3=A9\r\n.\r\n";
	struct smtp_client_conf conf = sink_conf(true);
	struct smtp_envelope env = {.sender = "a@a.test", .rcpt = two,
	    .nrcpt = 1, .eightbit = true};
	struct sink_rec rec = {BUF_INIT, BUF_INIT, 0};
	struct buf want = BUF_INIT;
	struct outcome o;

	T_EQ_INT(sink_deliver(&seven, &conf, &env, msg, strlen(msg), &o,
	    &rec), 0);
	T_CHILD_OK(rec.status);
	T_EQ_INT(o.status, OUTCOME_OK);
	T_ASSERT(strstr(buf_cstr(&rec.cmds), "MAIL FROM:<a@a.test>\n") !=
	    NULL);
	buf_printf(&want, "\nBDAT %zu LAST\n", strlen(qp));
	T_ASSERT(strstr(buf_cstr(&rec.cmds), buf_cstr(&want)) != NULL);
	T_EQ_STR(buf_cstr(&rec.body), qp);
	outcome_free(&o);
	sink_rec_free(&rec);

	T_EQ_INT(sink_deliver(&eight, &conf, &env, msg, strlen(msg), &o,
	    &rec), 0);
	T_CHILD_OK(rec.status);
	T_EQ_INT(o.status, OUTCOME_OK);
	T_ASSERT(strstr(buf_cstr(&rec.cmds), "MAIL FROM:<a@a.test> "
	    "BODY=8BITMIME\n") != NULL);
	T_EQ_STR(buf_cstr(&rec.body), msg);
	outcome_free(&o);
	sink_rec_free(&rec);
	buf_free(&want);
}

/* sink_session - a session on a sink; *pid_r, *fd_r, files for sink_end */
static struct smtp_session *
sink_session(const struct sink *sk, const struct smtp_client_conf *conf,
    struct smtp_envelope *env, const char *body, size_t len, pid_t *pid_r,
    int *fd_r, FILE **cmds_r, FILE **body_r)
{
	struct smtp_client_info info = {.tls = BUF_INIT};
	struct buf why = BUF_INIT;
	struct smtp_session *s;

	*pid_r = sink_start(sk, body, len, env, fd_r, cmds_r, body_r);
	s = smtp_client_open(*fd_r, "mx.b.test", conf, &info, &why);
	if (s == NULL)
		fprintf(stderr, "  sink_session: %s\n", buf_cstr(&why));
	buf_free(&info.tls);
	buf_free(&why);
	return s;
}

static void
test_bdat_5xx_then_reuse(void)
{
	/* 554 to the first of three chunks: bounced, with the reply; with
	 * PIPELINING the replies to the chunks already sent are read;
	 * without it no chunk follows the 554. The session takes the next
	 * transaction after RSET. */
	static const char *const fail[] = {"554 5.6.0 bad chunk\r\n",
	    "503 5.5.1 discarded\r\n", "503 5.5.1 discarded\r\n"};
	static const struct sink pipe = {.ehlo = ehlo_chunking, .bdat = fail,
	    .nbdat = 3};
	static const struct sink lock = {.ehlo = "250-sink\r\n"
	    "250 CHUNKING\r\n", .bdat = fail, .nbdat = 1};
	const struct sink *sinks[] = {&pipe, &lock};
	struct smtp_client_conf conf = sink_conf(true);
	struct smtp_envelope env = {.sender = "a@a.test", .rcpt = bob,
	    .nrcpt = 1};
	struct buf body = BUF_INIT;

	dotty(2 * 262144 + 10, false, &body);
	for (size_t k = 0; k < 2; k++) {
		struct sink_rec rec = {BUF_INIT, BUF_INIT, 0};
		struct smtp_session *s;
		struct outcome o;
		struct buf why = BUF_INIT;
		FILE *cmds, *bodyf;
		const char *tail;
		pid_t pid;
		int fd;

		s = sink_session(sinks[k], &conf, &env, body.data, body.len,
		    &pid, &fd, &cmds, &bodyf);
		T_ASSERT(s != NULL);
		outcome_init(&o);
		T_EQ_INT(smtp_client_send(s, &conf, &env, &o, &why), 0);
		T_EQ_INT(o.status, OUTCOME_BOUNCED);
		T_EQ_STR(o.dsn, "5.6.0");
		T_EQ_STR(buf_cstr(&o.reason), "mx.b.test said: 554 5.6.0 bad "
		    "chunk (in reply to BDAT)");
		T_ASSERT(smtp_client_usable(s));
		T_EQ_INT(smtp_client_reset(s, &conf), 0);
		T_EQ_INT(smtp_client_send(s, &conf, &env, &o, &why), 0);
		T_EQ_INT(o.status, OUTCOME_OK);
		smtp_client_close(&s);
		close(fd);
		close(env.fd);
		sink_end(pid, cmds, bodyf, &rec);
		T_CHILD_OK(rec.status);
		tail = k == 0 ? "\nBDAT 262144\nBDAT 262144\nBDAT 10 LAST\n"
		    "RSET\nMAIL" : "\nBDAT 262144\nRSET\nMAIL";
		if (strstr(buf_cstr(&rec.cmds), tail) == NULL)
			T_FAIL_("case %zu: commands [%s]", k,
			    buf_cstr(&rec.cmds));
		T_ASSERT(strstr(buf_cstr(&rec.cmds), "BDAT 10 LAST\nQUIT\n") !=
		    NULL);
		outcome_free(&o);
		buf_free(&why);
		sink_rec_free(&rec);
	}
	buf_free(&body);
}

static void
test_bdat_4xx_last_defers(void)
{
	static const char *const full[] = {"452 4.3.1 disk full\r\n"};
	static const struct sink sk = {.ehlo = ehlo_chunking, .bdat = full,
	    .nbdat = 1};
	struct smtp_client_conf conf = sink_conf(true);
	struct smtp_envelope env = {.sender = "a@a.test", .rcpt = two,
	    .nrcpt = 2};
	struct sink_rec rec = {BUF_INIT, BUF_INIT, 0};
	struct outcome o[2];

	outcome_init(&o[1]);
	T_EQ_INT(sink_deliver(&sk, &conf, &env, "x\r\n", 3, o, &rec), 0);
	T_CHILD_OK(rec.status);
	for (size_t i = 0; i < 2; i++) {
		T_EQ_INT(o[i].status, OUTCOME_DEFERRED);
		T_EQ_STR(o[i].dsn, "4.3.1");
		T_EQ_STR(buf_cstr(&o[i].reason), "mx.b.test said: 452 4.3.1 "
		    "disk full (in reply to BDAT LAST)");
		outcome_free(&o[i]);
	}
	sink_rec_free(&rec);
}

static void
test_unexpected_3xx(void)
{
	/* a 3xx to MAIL, BDAT, the end of DATA or RCPT: bounced with
	 * 5.5.0 as Postfix does, and the session is not reused (no RSET,
	 * no QUIT: the server may be waiting for content) */
	static const char *const b354[] = {"354 what\r\n"};
	static const struct sink mail = {.ehlo = ehlo_chunking,
	    .mail = "354 go on\r\n"};
	static const struct sink bdat = {.ehlo = ehlo_chunking, .bdat = b354,
	    .nbdat = 1};
	static const struct sink dot = {.ehlo = "250 sink\r\n",
	    .dot = "354 more?\r\n"};
	static const struct sink rcpt = {.ehlo = ehlo_chunking,
	    .rcpt = "354 what now\r\n"};
	const struct sink *sinks[] = {&mail, &bdat, &dot, &rcpt};
	struct smtp_client_conf conf = sink_conf(true);
	struct smtp_envelope env = {.sender = "a@a.test", .rcpt = bob,
	    .nrcpt = 1};

	for (size_t k = 0; k < 4; k++) {
		struct sink_rec rec = {BUF_INIT, BUF_INIT, 0};
		struct smtp_session *s;
		struct outcome o;
		struct buf why = BUF_INIT;
		FILE *cmds, *bodyf;
		pid_t pid;
		int fd;

		s = sink_session(sinks[k], &conf, &env, "x\r\n", 3, &pid, &fd,
		    &cmds, &bodyf);
		T_ASSERT(s != NULL);
		outcome_init(&o);
		T_EQ_INT(smtp_client_send(s, &conf, &env, &o, &why), 0);
		if (o.status != OUTCOME_BOUNCED || strcmp(o.dsn, "5.5.0") != 0)
			T_FAIL_("case %zu: %d %s", k, o.status, o.dsn);
		if (smtp_client_usable(s))
			T_FAIL_("case %zu: usable after a 3xx", k);
		smtp_client_close(&s);
		close(fd);
		close(env.fd);
		sink_end(pid, cmds, bodyf, &rec);
		T_CHILD_OK(rec.status);
		T_ASSERT(strstr(buf_cstr(&rec.cmds), "QUIT") == NULL);
		outcome_free(&o);
		buf_free(&why);
		sink_rec_free(&rec);
	}
}

/* bench_ms - milliseconds of clock id */
static double
bench_ms(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void
test_bench_10mb(void)
{
	/* not a timing check: the sink counts the bytes it got (DATA:
	 * stuffed, with the final dot; BDAT: exact), and the time each
	 * path took (wall, and the client's CPU: the sink is another
	 * process) is printed for the record */
	static const struct sink plain = {.ehlo = "250-sink\r\n"
	    "250 PIPELINING\r\n", .count_only = true};
	static const struct sink chunky = {.ehlo = ehlo_chunking,
	    .count_only = true};
	const struct sink *sinks[] = {&plain, &chunky};
	struct smtp_envelope env = {.sender = "a@a.test", .rcpt = bob,
	    .nrcpt = 1};
	struct buf body = BUF_INIT, want = BUF_INIT;
	size_t dots = 0;

	for (size_t i = 0; body.len < 10 * 1024 * 1024; i++) {
		/* 76 characters and CRLF a line, one in 50 with a dot */
		buf_puts(&body, i % 50 == 0 ? "." : "x");
		dots += i % 50 == 0;
		buf_puts(&body, "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ"
		    "KLMNOPQRSTUVWXYZ0123456789\r\n");
	}
	for (size_t k = 0; k < 2; k++) {
		struct smtp_client_conf conf = sink_conf(k == 1);
		struct sink_rec rec = {BUF_INIT, BUF_INIT, 0};
		struct outcome o;
		double t0 = bench_ms(CLOCK_MONOTONIC), t;
		double c0 = bench_ms(CLOCK_PROCESS_CPUTIME_ID), cpu;

		T_EQ_INT(sink_deliver(sinks[k], &conf, &env, body.data,
		    body.len, &o, &rec), 0);
		t = bench_ms(CLOCK_MONOTONIC) - t0;
		cpu = bench_ms(CLOCK_PROCESS_CPUTIME_ID) - c0;
		T_CHILD_OK(rec.status);
		T_EQ_INT(o.status, OUTCOME_OK);
		buf_reset(&want);
		buf_printf(&want, "BYTES %zu\n", k == 0 ? body.len + dots + 3 :
		    body.len);
		T_ASSERT(strstr(buf_cstr(&rec.cmds), buf_cstr(&want)) != NULL);
		fprintf(stderr, "  bench: %zu bytes over %s: %.1f ms, "
		    "client CPU %.1f ms\n", body.len, k == 0 ? "DATA" :
		    "BDAT", t, cpu);
		outcome_free(&o);
		sink_rec_free(&rec);
	}
	buf_free(&body);
	buf_free(&want);
}

static const struct test_case cases[] = {
	{"BDAT: exact chunks, dots unchanged, with and without PIPELINING",
	    test_bdat_framing},
	{"BDAT: one chunk, an open last line, an empty message",
	    test_bdat_small_and_open_end},
	{"no CHUNKING, or smtp_use_chunking=no: DATA, dot-stuffed",
	    test_data_when_no_chunking},
	{"BDAT: 8-bit converted for a 7-bit server, passed with 8BITMIME",
	    test_bdat_8bit},
	{"BDAT: 5xx mid-way ends the transaction, RSET, reused",
	    test_bdat_5xx_then_reuse},
	{"BDAT: 4xx to BDAT LAST defers", test_bdat_4xx_last_defers},
	{"3xx to MAIL, BDAT, end of DATA, RCPT: 5.5.0, not reused",
	    test_unexpected_3xx},
	{"bench: 10 MB over DATA and BDAT", test_bench_10mb},
	{0},
};

int
main(void)
{
	signal(SIGPIPE, SIG_IGN);
	return test_run(cases);
}
