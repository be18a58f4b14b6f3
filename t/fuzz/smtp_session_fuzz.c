/*
 * smtp_session_fuzz - whole smtpd sessions: the input bytes are what a
 * client sends (pipelined commands, DATA content, BDAT chunks, junk), the
 * session is smtpd's own (smtpd_session_accept on one end of a
 * socketpair, run by its event loop, with the real group-commit thread
 * writing to a spool in a temporary folder, and a directory that hosts
 * example.test with the user alice). The harness plays the client on the
 * other end: it writes the input in chunks the first byte chooses, reads
 * every reply, then half-closes and waits until the session is freed.
 *
 * First byte: bit 0: the session is a local submission (the "submit"
 * socket, like sendmail); bits 1-3: the client's write size (1, 2, 3, 7,
 * 64, 512, 4096 bytes, or all at once), so pipelined commands meet the
 * server's reads at every kind of border. The rest goes to the server.
 *
 * Settings are small so that the limits are reachable: smtpd_error_limit
 * 5, smtpd_recipient_limit 3, message_size_limit 2048, smtpd_line_limit
 * 512; no certificate, so STARTTLS is refused.
 *
 * Properties checked (a violation aborts, with the reply stream):
 *  - the session ends, and its memory is freed (LeakSanitizer);
 *  - every reply line is 3 digits, a space or a dash, text, CRLF, with no
 *    other CR or LF, and the lines of a multi-line reply share the code;
 *  - the first reply is the 220 greeting (or a 421 refusal);
 *  - every "250 ... queued as QID" names a queue file that is in
 *    incoming/ and reads back as a complete queue file, each QID once;
 *  - nothing is answered after a 421 (RFC 5321 3.8: the server closes),
 *    also when the 421 follows a message rejected at its end (bare LF,
 *    too big) whose 5xx reached smtpd_error_limit (the seed
 *    corpus/smtp_session/after-421-bare-lf: smtpd_data_reject once set
 *    the state back to READY and answered what came after).
 *
 * SMTP_SESSION_FUZZ_SHOW set: each session's replies are printed.
 * The server's log lines go to <tmp>/session.log (the last input's only);
 * the harness names <tmp> once at start and removes it at exit.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/evloop.h"
#include "base/log.h"
#include "base/mem.h"
#include "mail/dir.h"
#include "mail/params.h"
#include "mail/qfile.h"
#include "mail/qid.h"
#include "mail/service.h"
#include "mail/spool.h"
#include "smtpd.h"
#include "fuzz.h"

#define SESSION_MAX_MS 10000	/* a session that outlives this hangs */
#define SESSION_MAX_OUT (4 * 1024 * 1024)	/* replies kept */

/* sanitizer reports go here too, not only to stderr (weak: only there
 * when a sanitizer runtime is) */
void __sanitizer_set_report_fd(void *fd) __attribute__((weak));

static struct {
	char dir[256];		/* the temporary folder */
	char incoming[300];
	char log[300];
	struct evloop *loop;
	struct service *svc;
	int err_fd;		/* the real stderr */
	int log_fd;		/* the server's stderr */
} fz;

static const struct service_def fz_def = {
	.name = "smtpd",
	.model = SERVICE_EVENT,
};

/* fz_log_to - point fd 2 (the server's log) at fd */
static void
fz_log_to(int fd)
{
	while (dup2(fd, 2) < 0 && errno == EINTR)
		;
}

/* fz_die - report a broken property and the replies, then abort */
static void fz_die(const struct buf *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

static void
fz_die(const struct buf *out, const char *fmt, ...)
{
	va_list ap;

	fz_log_to(fz.err_fd);
	va_start(ap, fmt);
	dprintf(fz.err_fd, "smtp_session_fuzz: property failed: ");
	vdprintf(fz.err_fd, fmt, ap);
	va_end(ap);
	dprintf(fz.err_fd, "\n--- replies (%zu bytes):\n%.*s\n--- server log: "
	    "%s\n", out ? out->len : 0, out ? (int)(out->len < 8192 ?
	    out->len : 8192) : 0, out ? out->data : "", fz.log);
	abort();
}

/* fz_rm - nftw: remove one entry */
static int
fz_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)remove(path);
	return 0;
}

/* fz_cleanup - at exit: remove the temporary folder (kept when
 * SMTP_SESSION_FUZZ_KEEP is set, or after a crash, which skips this) */
static void
fz_cleanup(void)
{
	if (fz.dir[0] != '\0' && getenv("SMTP_SESSION_FUZZ_KEEP") == NULL)
		(void)nftw(fz.dir, fz_rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* fz_setup - folder, settings, spool, directory, loop, service (once) */
static void
fz_setup(void)
{
	struct buf conf = BUF_INIT, why = BUF_INIT, path = BUF_INIT;
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	struct dir *d = NULL;

	snprintf(fz.dir, sizeof(fz.dir), "%s/herald-smtp-session-XXXXXX",
	    base);
	if (mkdtemp(fz.dir) == NULL) {
		perror("smtp_session_fuzz: mkdtemp");
		abort();
	}
	atexit(fz_cleanup);
	snprintf(fz.incoming, sizeof(fz.incoming), "%s/spool/incoming",
	    fz.dir);
	snprintf(fz.log, sizeof(fz.log), "%s/session.log", fz.dir);

	/* the server logs to its stderr: while a session runs, fd 2 is a
	 * file (fz_log_to), so the fuzzer's own output stays readable */
	fz.err_fd = fcntl(2, F_DUPFD_CLOEXEC, 3);
	fz.log_fd = open(fz.log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600);
	if (fz.err_fd < 0 || fz.log_fd < 0) {
		perror("smtp_session_fuzz: stderr");
		abort();
	}
	if (__sanitizer_set_report_fd != NULL)
		__sanitizer_set_report_fd((void *)(intptr_t)fz.err_fd);
	dprintf(fz.err_fd, "smtp_session_fuzz: spool, directory and the last "
	    "session's log in %s\n", fz.dir);
	fz_log_to(fz.log_fd);
	msg_init("herald/smtpd", LOG_DEST_STDERR);

	buf_printf(&conf,
	    "myhostname = mx.example.test\n"
	    "mydomain = example.test\n"
	    "spool_directory = %s/spool\n"
	    "data_directory = %s/data\n"
	    "run_directory = %s/run\n"
	    "smtpd_error_limit = 5\n"
	    "smtpd_recipient_limit = 3\n"
	    "message_size_limit = 2048\n"
	    "smtpd_line_limit = 512\n"
	    "smtpd_commit_delay = 0\n"
	    "smtpd_client_limit = 100000\n",
	    fz.dir, fz.dir, fz.dir);
	buf_printf(&path, "%s/herald.conf", fz.dir);
	if (params_load_text(buf_cstr(&path), conf.data, conf.len, &why) < 0 ||
	    spool_setup(var_spool_directory, (uid_t)-1, (gid_t)-1, &why) < 0 ||
	    dir_open(var_data_directory, DIR_WRITE, &d, &why) < 0 ||
	    dir_domain_add(d, "example.test", &why) < 0 ||
	    dir_user_add(d, "alice@example.test", -1, &why) < 0) {
		dprintf(fz.err_fd, "smtp_session_fuzz: setup: %s\n",
		    buf_cstr(&why));
		abort();
	}
	dir_close(&d);
	fz.loop = evloop_new();
	fz.svc = service_new_detached(&fz_def, fz.loop);
	smtpd_session_init(fz.svc, fz.loop);
	smtpd_check_init();
	smtpd_commit_init(fz.loop);
	fz_log_to(fz.err_fd);
	buf_free(&conf);
	buf_free(&why);
	buf_free(&path);
}

/* fz_stop - a timer: end this round of the loop */
static long long
fz_stop(struct evloop *loop, void *ctx)
{
	evloop_stop(loop);
	return -1;
}

/* fz_step - one short run of the loop (at most ms) */
static void
fz_step(long long ms)
{
	(void)evloop_add_timer(fz.loop, ms, fz_stop, NULL);
	(void)evloop_run(fz.loop);
}

/* fz_now_ms - monotonic milliseconds */
static long long
fz_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* fz_read - what the server sent so far; 1 at EOF */
static int
fz_read(int fd, struct buf *out)
{
	char tmp[16384];
	ssize_t n;

	for (;;) {
		n = recv(fd, tmp, sizeof(tmp), MSG_DONTWAIT);
		if (n > 0) {
			if (out->len < SESSION_MAX_OUT)
				buf_append(out, tmp, (size_t)n);
			continue;
		}
		if (n == 0)
			return 1;
		if (errno == EINTR)
			continue;
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : 1;
	}
}

/* fz_check_qid - a "queued as" reply: the file is there and complete */
static void
fz_check_qid(const struct buf *out, const char *qid, struct buf *seen)
{
	char path[400];
	struct qfile *qf = NULL;
	struct buf why = BUF_INIT;
	int fd;

	if (!qid_valid(qid))
		fz_die(out, "250 names a bad queue id \"%s\"", qid);
	if (strstr(buf_cstr(seen), qid) != NULL)
		fz_die(out, "queue id %s given twice", qid);
	buf_printf(seen, "%s ", qid);
	snprintf(path, sizeof(path), "%s/%s", fz.incoming, qid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		fz_die(out, "250 queued as %s, but %s: %s", qid, path,
		    strerror(errno));
	if (qfile_read(fd, &qf, &why) < 0)
		fz_die(out, "250 queued as %s, but the file does not read: %s",
		    qid, buf_cstr(&why));
	if (qf->nrcpt == 0)
		fz_die(out, "250 queued as %s, a file without recipients", qid);
	qfile_free(&qf);
	(void)close(fd);
	buf_free(&why);
}

/* fz_check_replies - the whole reply stream of one session */
static void
fz_check_replies(const struct buf *out)
{
	struct buf seen = BUF_INIT;
	const char *p = out->data, *end = out->data + out->len;
	bool first = true, in_multi = false, closed = false;
	char code[4] = "";

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len;

		if (nl == NULL)
			fz_die(out, "a reply without CRLF at byte %zu",
			    (size_t)(p - out->data));
		len = (size_t)(nl - p);
		if (closed)
			fz_die(out, "nothing after 421: byte %zu",
			    (size_t)(p - out->data));
		if (len < 5 || p[len - 1] != '\r')
			fz_die(out, "a reply line too short or without CR at "
			    "byte %zu", (size_t)(p - out->data));
		if (memchr(p, '\r', len - 1) != NULL)
			fz_die(out, "a CR inside a reply at byte %zu",
			    (size_t)(p - out->data));
		if (p[0] < '2' || p[0] > '5' || p[1] < '0' || p[1] > '9' ||
		    p[2] < '0' || p[2] > '9' || (p[3] != ' ' && p[3] != '-'))
			fz_die(out, "not \"ddd \" or \"ddd-\" at byte %zu",
			    (size_t)(p - out->data));
		if (in_multi && memcmp(code, p, 3) != 0)
			fz_die(out, "a multi-line reply changes its code at "
			    "byte %zu", (size_t)(p - out->data));
		if (first && memcmp(p, "220", 3) != 0 &&
		    memcmp(p, "421", 3) != 0)
			fz_die(out, "the greeting is not 220 or 421");
		memcpy(code, p, 3);
		in_multi = p[3] == '-';
		if (!in_multi) {
			static const char q[] = "250 2.0.0 Ok: queued as ";

			if (len - 1 > sizeof(q) - 1 &&
			    memcmp(p, q, sizeof(q) - 1) == 0) {
				char qid[64];
				size_t n = len - 1 - (sizeof(q) - 1);

				if (n >= sizeof(qid))
					fz_die(out, "a long queue id");
				memcpy(qid, p + sizeof(q) - 1, n);
				qid[n] = '\0';
				fz_check_qid(out, qid, &seen);
			}
			if (memcmp(p, "421", 3) == 0)
				closed = true;
		}
		first = false;
		p = nl + 1;
	}
	if (in_multi)
		fz_die(out, "the replies end inside a multi-line reply");
	buf_free(&seen);
}

/* fz_clean - remove the queue files of the last session */
static void
fz_clean(void)
{
	DIR *d = opendir(fz.incoming);
	struct dirent *de;
	char path[600];

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' && (de->d_name[1] == '\0' ||
		    (de->d_name[1] == '.' && de->d_name[2] == '\0')))
			continue;
		snprintf(path, sizeof(path), "%s/%s", fz.incoming, de->d_name);
		(void)unlink(path);
	}
	closedir(d);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t sizes[] = {1, 2, 3, 7, 64, 512, 4096, 0};
	struct buf out = BUF_INIT;
	size_t off = 0, step;
	bool local, eof = false, shut = false;
	long long start;
	int sp[2];

	if (size < 1)
		return 0;
	if (fz.loop == NULL)
		fz_setup();
	if (ftruncate(fz.log_fd, 0) < 0 || lseek(fz.log_fd, 0, SEEK_SET) < 0)
		dprintf(fz.err_fd, "smtp_session_fuzz: %s: %s\n", fz.log,
		    strerror(errno));
	fz_log_to(fz.log_fd);
	local = data[0] & 1;
	step = sizes[(data[0] >> 1) & 7];
	data++;
	size--;
	if (step == 0)
		step = size ? size : 1;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
	    sp) < 0) {
		dprintf(fz.err_fd, "socketpair: %s\n", strerror(errno));
		abort();
	}
	smtpd_session_accept(fz.svc, sp[0], local);	/* owns sp[0] now */
	start = fz_now_ms();
	while (!eof || service_sessions(fz.svc) > 0) {
		bool busy = false;

		if (fz_now_ms() - start > SESSION_MAX_MS)
			fz_die(&out, "the session did not end in %d ms "
			    "(sessions %ld, input %zu of %zu sent)",
			    SESSION_MAX_MS, service_sessions(fz.svc), off,
			    size);
		if (off < size && !eof) {
			size_t n = size - off < step ? size - off : step;
			ssize_t w = send(sp[1], data + off, n, MSG_NOSIGNAL);

			if (w > 0) {
				off += (size_t)w;
				busy = true;
			} else if (w < 0 && errno != EAGAIN &&
			    errno != EWOULDBLOCK && errno != EINTR) {
				off = size;	/* the server hung up */
			}
		}
		if (off == size && !shut) {
			(void)shutdown(sp[1], SHUT_WR);
			shut = true;
		}
		fz_step(busy ? 0 : 1);
		if (!eof)
			eof = fz_read(sp[1], &out) == 1;
	}
	(void)close(sp[1]);
	fz_log_to(fz.err_fd);
	if (getenv("SMTP_SESSION_FUZZ_SHOW") != NULL)
		dprintf(fz.err_fd, "--- replies:\n%.*s", (int)out.len,
		    out.data);
	fz_check_replies(&out);
	fz_clean();
	buf_free(&out);
	return 0;
}
