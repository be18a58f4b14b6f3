/*
 * mailload - IMAP and POP3 load generator for bench/run.
 *
 * One process, one epoll loop, non-blocking sockets, optional TLS
 * (implicit or STARTTLS, OpenSSL). It speaks the protocols from scratch
 * and shares no code with herald, so it measures herald and Dovecot
 * alike. Workloads:
 *
 *   mixed      IMAP sessions that each LOGIN, SELECT INBOX, FETCH one
 *              message (FLAGS ENVELOPE BODY.PEEK[]), STORE \Seen, SEARCH
 *              UNSEEN, APPEND a message, STORE \Deleted on it, EXPUNGE,
 *              LOGOUT, then start over with the next user, until -t.
 *   bigfolder  LOGIN, SELECT, UID FETCH 1:* (FLAGS), LOGOUT, -n times;
 *              every message must come back once.
 *   idle       -c sessions LOGIN, SELECT and IDLE (at most -r of them
 *              logging in at once); when all idle it prints "ready",
 *              holds --hold seconds, delivers one message to every user
 *              (SMTP with --smtp, else a file written into
 *              --maildir/<domain>/<local>/new/) and times each session's
 *              untagged EXISTS from its user's delivery.
 *   pop3       -c sessions drain the users: USER/PASS, STAT, LIST, UIDL,
 *              RETR all (sizes checked against LIST), DELE all, QUIT.
 *
 * Any NO, BAD, -ERR, unexpected BYE, closed connection, malformed
 * response or timeout is an error: counted per command kind, the first
 * few printed. The result is one line per command kind with count,
 * rate, p50 and p99 latency, and errors (see usage()).
 *
 * --selftest runs the IMAP and POP3 response parsers over recorded
 * responses fed in every split, literals included.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_LINE	(16 * 1024 * 1024)	/* one response line */
#define MAX_SAMPLES	(4 * 1024 * 1024)	/* latencies kept per kind */
#define MAX_ERRORS_SHOWN 10
#define POP3_BATCH	20

enum kind {
	K_CONNECT, K_LOGIN, K_SELECT, K_FETCH, K_STORE, K_SEARCH, K_APPEND,
	K_EXPUNGE, K_LOGOUT, K_IDLE, K_EXISTS, K_STAT, K_LIST, K_UIDL,
	K_RETR, K_DELE, K_QUIT, K_STARTTLS, K_COUNT
};

static const char *kind_name[K_COUNT] = {
	"CONNECT", "LOGIN", "SELECT", "FETCH", "STORE", "SEARCH", "APPEND",
	"EXPUNGE", "LOGOUT", "IDLE", "EXISTS", "STAT", "LIST", "UIDL",
	"RETR", "DELE", "QUIT", "STARTTLS",
};

struct stat_kind {
	uint64_t count;			/* completed without error */
	uint64_t errors;
	uint32_t *us;			/* latencies in microseconds */
	size_t	nus, cap;
};

static struct stat_kind stats[K_COUNT];
static unsigned long errors_shown;

/* options */
static const char *opt_workload = "mixed";
static const char *opt_host = "127.0.0.1";
static int opt_port = 143;
static int opt_clients = 10;
static int opt_users = 100;
static const char *opt_prefix = "u";
static int opt_width = 3;
static const char *opt_domain = "example.test";
static const char *opt_password = "bench-password";
static double opt_time = 60;
static long opt_count = 0;		/* bigfolder repetitions */
static int opt_tls = 0;			/* 1 implicit, 2 STARTTLS */
static double opt_timeout = 60;
static int opt_ramp = 50;
static double opt_hold = 3;
static const char *opt_smtp = NULL;
static const char *opt_maildir = NULL;
static int opt_msg_size = 4096;
static int opt_sources;			/* spread over 127.0.0.1..N */

static SSL_CTX *ssl_ctx;
static int epfd;

/* now - monotonic seconds */
static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* die - print and exit */
static void
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("mailload: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

/* xrealloc - realloc or die */
static void *
xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (q == NULL)
		die("out of memory");
	return q;
}

/* stat_ok - one command of kind done after secs */
static void
stat_ok(int kind, double secs)
{
	struct stat_kind *s = &stats[kind];

	s->count++;
	if (s->nus >= MAX_SAMPLES)
		return;
	if (s->nus == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 1024;
		s->us = xrealloc(s->us, s->cap * sizeof(*s->us));
	}
	s->us[s->nus++] = secs < 0 ? 0 : (uint32_t)(secs * 1e6);
}

/* stat_error - one command of kind failed; the first few are printed */
static void
stat_error(int kind, const char *who, const char *fmt, ...)
{
	va_list ap;

	stats[kind].errors++;
	if (errors_shown++ >= MAX_ERRORS_SHOWN)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "mailload: error: %s %s: ", kind_name[kind], who);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* ------------------------------------------------------------ parsers */

/*
 * IMAP response reader. Bytes go in as they arrive; out come whole
 * responses: a line, and when it ends in {n} or {n+}, n bytes of literal
 * and the rest of the line, and so on. The first line segment is kept
 * (tag, status, "* n EXISTS", ...); literal bytes are counted.
 */
struct imap_rd {
	char	*seg;			/* current segment, NUL-terminated */
	size_t	seg_len, seg_cap;
	char	*first;			/* first segment of the response */
	size_t	first_len, first_cap;
	int	have_first;
	uint64_t lit_left;		/* literal bytes still to skip */
	uint64_t lit_bytes;		/* literal bytes in this response */
};

typedef int (*imap_cb)(void *ctx, const char *first, uint64_t lit_bytes);

/* seg_literal - n if the segment ends in {n} or {n+}, else -1 */
static int64_t
seg_literal(const char *s, size_t len)
{
	size_t i;
	int64_t n = 0;

	if (len < 3 || s[len - 1] != '}')
		return -1;
	i = len - 2;
	if (s[i] == '+')
		i--;
	if (i == 0 || s[i] < '0' || s[i] > '9')
		return -1;
	while (i > 0 && s[i] >= '0' && s[i] <= '9')
		i--;
	if (s[i] != '{' || len - i > 22)
		return -1;
	for (i++; s[i] >= '0' && s[i] <= '9'; i++)
		n = n * 10 + (s[i] - '0');
	return n;
}

/* seg_append - add bytes to a growing NUL-terminated buffer */
static int
seg_append(char **p, size_t *len, size_t *cap, const char *src, size_t n)
{
	if (*len + n + 1 > MAX_LINE)
		return -1;
	if (*len + n + 1 > *cap) {
		while (*len + n + 1 > *cap)
			*cap = *cap ? 2 * *cap : 256;
		*p = xrealloc(*p, *cap);
	}
	memcpy(*p + *len, src, n);
	*len += n;
	(*p)[*len] = 0;
	return 0;
}

/* imap_rd_feed - consume bytes; cb per whole response; -1 on error */
static int
imap_rd_feed(struct imap_rd *r, const char *buf, size_t len, imap_cb cb,
	     void *ctx)
{
	size_t i = 0;

	while (i < len) {
		if (r->lit_left > 0) {
			size_t n = len - i;

			if (n > r->lit_left)
				n = (size_t)r->lit_left;
			r->lit_left -= n;
			r->lit_bytes += n;
			i += n;
			continue;
		}
		const char *nl = memchr(buf + i, '\n', len - i);
		size_t n = nl ? (size_t)(nl - (buf + i)) : len - i;

		if (seg_append(&r->seg, &r->seg_len, &r->seg_cap, buf + i,
			       n) < 0)
			return -1;
		i += n;
		if (nl == NULL)
			break;
		i++;			/* the LF */
		if (r->seg_len > 0 && r->seg[r->seg_len - 1] == '\r')
			r->seg[--r->seg_len] = 0;
		if (!r->have_first) {
			r->first_len = 0;
			if (seg_append(&r->first, &r->first_len, &r->first_cap,
				       r->seg, r->seg_len) < 0)
				return -1;
			r->have_first = 1;
		}
		int64_t lit = seg_literal(r->seg, r->seg_len);

		r->seg_len = 0;
		if (r->seg)
			r->seg[0] = 0;
		if (lit >= 0) {
			r->lit_left = (uint64_t)lit;
			continue;
		}
		r->have_first = 0;
		uint64_t lb = r->lit_bytes;

		r->lit_bytes = 0;
		if (cb(ctx, r->first, lb) < 0)
			return -1;
	}
	return 0;
}

/*
 * POP3 reader: status lines, and when the caller says a multi-line
 * answer follows, its lines up to "." with dot-stuffing undone; the
 * callback gets (status line, body bytes as CRLF lines, line count).
 */
struct pop3_rd {
	char	*seg;
	size_t	seg_len, seg_cap;
	int	in_multi;		/* reading a multi-line body */
	char	*status;
	size_t	status_len, status_cap;
	uint64_t body_bytes;
	uint64_t body_lines;
	void	(*body_line)(void *ctx, const char *line);	/* or NULL */
};

typedef int (*pop3_multi_fn)(void *ctx);	/* next answer multi-line? */
typedef int (*pop3_cb)(void *ctx, const char *status, uint64_t bytes,
		       uint64_t lines);

/* pop3_rd_feed - consume bytes; cb per whole answer; -1 on error */
static int
pop3_rd_feed(struct pop3_rd *r, const char *buf, size_t len,
	     pop3_multi_fn multi, pop3_cb cb, void *ctx)
{
	size_t i = 0;

	while (i < len) {
		const char *nl = memchr(buf + i, '\n', len - i);
		size_t n = nl ? (size_t)(nl - (buf + i)) : len - i;

		if (seg_append(&r->seg, &r->seg_len, &r->seg_cap, buf + i,
			       n) < 0)
			return -1;
		i += n;
		if (nl == NULL)
			break;
		i++;
		if (r->seg_len > 0 && r->seg[r->seg_len - 1] == '\r')
			r->seg[--r->seg_len] = 0;
		if (r->in_multi) {
			if (strcmp(r->seg, ".") == 0) {
				r->in_multi = 0;
				if (cb(ctx, r->status, r->body_bytes,
				       r->body_lines) < 0)
					return -1;
			} else {
				size_t l = r->seg_len;
				const char *p = r->seg;

				if (p[0] == '.') {
					l--;
					p++;
				}
				if (r->body_line)
					r->body_line(ctx, p);
				r->body_bytes += l + 2;
				r->body_lines++;
			}
		} else {
			r->status_len = 0;
			if (seg_append(&r->status, &r->status_len,
				       &r->status_cap, r->seg, r->seg_len) < 0)
				return -1;
			if (strncmp(r->seg, "+OK", 3) == 0 && multi(ctx)) {
				r->in_multi = 1;
				r->body_bytes = r->body_lines = 0;
			} else if (cb(ctx, r->status, 0, 0) < 0) {
				return -1;
			}
		}
		r->seg_len = 0;
		r->seg[0] = 0;
	}
	return 0;
}

/* ------------------------------------------------------------ sessions */

enum step {
	S_CONNECTING, S_HANDSHAKE, S_GREETING, S_STARTTLS, S_LOGIN, S_SELECT,
	S_FETCH, S_STORE, S_SEARCH, S_APPEND_CMD, S_APPEND_DATA, S_STORE_DEL,
	S_EXPUNGE, S_BIGFETCH, S_IDLE_START, S_IDLING, S_LOGOUT,
	S_POP3, S_DONE
};

struct conn {
	int	fd;
	SSL	*ssl;
	int	id;
	int	step;
	unsigned gen;			/* bumped when the socket closes */
	int	user;			/* index of the user */
	int	tls_after;		/* handshake then go on to this step */
	char	who[80];		/* user address, for messages */
	struct imap_rd ird;
	struct pop3_rd prd;
	char	*out;			/* pending output */
	size_t	out_len, out_off, out_cap;
	int	want_out;		/* EPOLLOUT registered */
	/* the command outstanding (IMAP) */
	int	kind;
	double	sent;
	double	deadline;
	unsigned tagn;
	char	tag[16];
	/* mailbox state */
	long	exists;
	long	fetched;		/* untagged FETCHes of this command */
	long	target;			/* message number we act on */
	int	ready;			/* idle: in IDLE */
	int	got_exists;		/* idle: EXISTS seen */
	/* POP3 pipeline */
	long	nmsgs;
	long	*sizes;
	long	nsizes;
	long	retr_next, retr_done, dele_next, dele_done;
	int	pq_kind[2 * POP3_BATCH + 8];	/* queue of kinds sent */
	double	pq_sent[2 * POP3_BATCH + 8];
	int	pq_multi[2 * POP3_BATCH + 8];
	int	pq_head, pq_len;
	int	pstage;
};

static struct conn **conns;
static int nconns;
static int running = 1;
static double t_start, t_end;
static long users_next;			/* pop3: next user to drain */
static long cycles_left;		/* bigfolder: repetitions left */
static int idle_ready, idle_failed, idle_exists;
static double *deliver_at;		/* idle: per user, 0 until delivered */
static pthread_mutex_t deliver_lock = PTHREAD_MUTEX_INITIALIZER;
static char *append_msg;
static size_t append_len;
static int is_pop3;

static void conn_start(struct conn *c);
static void conn_fail(struct conn *c, const char *fmt, ...);

/* user_addr - the address of user i */
static void
user_addr(int i, char *buf, size_t len)
{
	snprintf(buf, len, "%s%0*d@%s", opt_prefix, opt_width, i, opt_domain);
}

/* conn_out - queue bytes to send */
static void
conn_out(struct conn *c, const char *s, size_t n)
{
	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (c->out_len + n > c->out_cap) {
		while (c->out_len + n > c->out_cap)
			c->out_cap = c->out_cap ? 2 * c->out_cap : 1024;
		c->out = xrealloc(c->out, c->out_cap);
	}
	memcpy(c->out + c->out_len, s, n);
	c->out_len += n;
}

/* conn_events - epoll interest: in always, out while output waits */
static void
conn_events(struct conn *c, int want_out)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};

	if (want_out == c->want_out)
		return;
	if (want_out)
		ev.events |= EPOLLOUT;
	if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
		die("epoll_ctl: %s", strerror(errno));
	c->want_out = want_out;
}

/* conn_flush - send what is pending; -1 on a dead connection */
static int
conn_flush(struct conn *c)
{
	while (c->out_off < c->out_len) {
		size_t n = c->out_len - c->out_off;
		ssize_t w;

		if (c->ssl) {
			ERR_clear_error();
			int r = SSL_write(c->ssl, c->out + c->out_off,
					  n > INT32_MAX ? INT32_MAX : (int)n);

			if (r <= 0) {
				int e = SSL_get_error(c->ssl, r);

				if (e == SSL_ERROR_WANT_WRITE ||
				    e == SSL_ERROR_WANT_READ)
					break;
				return -1;
			}
			w = r;
		} else {
			w = send(c->fd, c->out + c->out_off, n, MSG_NOSIGNAL);
			if (w < 0) {
				if (errno == EAGAIN || errno == EINTR)
					break;
				return -1;
			}
		}
		c->out_off += (size_t)w;
	}
	conn_events(c, c->out_off < c->out_len);
	return 0;
}

/* imap_cmd - send a tagged command and time it as kind */
static void
imap_cmd(struct conn *c, int kind, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	snprintf(c->tag, sizeof(c->tag), "a%u", ++c->tagn);
	n = snprintf(line, sizeof(line), "%s ", c->tag);
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - (size_t)n - 2, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(line) - 3)
		die("command too long");
	memcpy(line + n, "\r\n", 2);
	conn_out(c, line, (size_t)n + 2);
	c->kind = kind;
	c->sent = now();
	c->deadline = c->sent + opt_timeout;
	c->fetched = 0;
}

/* conn_close - drop the connection's socket and TLS state */
static void
conn_close(struct conn *c)
{
	if (c->ssl) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	free(c->ird.seg);
	free(c->ird.first);
	free(c->prd.seg);
	free(c->prd.status);
	free(c->sizes);
	c->sizes = NULL;
	memset(&c->ird, 0, sizeof(c->ird));
	memset(&c->prd, 0, sizeof(c->prd));
	c->out_off = c->out_len = 0;
	c->want_out = 0;
	c->step = S_DONE;
	c->gen++;
}

/* conn_next - session over: start the next one if the workload wants */
static void
conn_next(struct conn *c)
{
	conn_close(c);
	if (!running)
		return;
	if (strcmp(opt_workload, "mixed") == 0) {
		c->user = (c->user + opt_clients) % opt_users;
		conn_start(c);
	} else if (strcmp(opt_workload, "bigfolder") == 0) {
		if (cycles_left-- > 0)
			conn_start(c);
	} else if (is_pop3) {
		if (users_next < opt_users) {
			c->user = (int)users_next++;
			conn_start(c);
		}
	}
}

/* conn_fail - count an error for the command outstanding, end session */
static void
conn_fail(struct conn *c, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	int kind = c->kind;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (is_pop3 && c->pq_len > 0)
		kind = c->pq_kind[c->pq_head];
	stat_error(kind, c->who, "%s", msg);
	if (strcmp(opt_workload, "idle") == 0) {
		if (!c->ready) {
			idle_failed++;
		} else if (!c->got_exists) {
			idle_ready--;
			idle_failed++;
		}
	}
	c->ready = 0;
	conn_close(c);
	/* an idle session is not replaced; others go on with the next */
	if (strcmp(opt_workload, "idle") != 0)
		conn_next(c);
}

/* imap_done - the tagged answer to the outstanding command was OK */
static void
imap_done(struct conn *c)
{
	stat_ok(c->kind, now() - c->sent);
}

/* imap_step - send the command of the session's next step */
static void
imap_step(struct conn *c, int step)
{
	char addr[80];
	long n;

	c->step = step;
	switch (step) {
	case S_STARTTLS:
		imap_cmd(c, K_STARTTLS, "STARTTLS");
		break;
	case S_LOGIN:
		user_addr(c->user, addr, sizeof(addr));
		imap_cmd(c, K_LOGIN, "LOGIN \"%s\" \"%s\"", addr,
			 opt_password);
		break;
	case S_SELECT:
		c->exists = -1;
		imap_cmd(c, K_SELECT, "SELECT INBOX");
		break;
	case S_FETCH:
		c->target = 1 + rand() % c->exists;
		imap_cmd(c, K_FETCH, "FETCH %ld (FLAGS ENVELOPE BODY.PEEK[])",
			 c->target);
		break;
	case S_STORE:
		imap_cmd(c, K_STORE, "STORE %ld +FLAGS (\\Seen)", c->target);
		break;
	case S_SEARCH:
		imap_cmd(c, K_SEARCH, "SEARCH UNSEEN");
		break;
	case S_APPEND_CMD:
		imap_cmd(c, K_APPEND, "APPEND INBOX {%zu}", append_len);
		break;
	case S_STORE_DEL:
		imap_cmd(c, K_STORE, "STORE %ld +FLAGS.SILENT (\\Deleted)",
			 c->exists);
		break;
	case S_EXPUNGE:
		imap_cmd(c, K_EXPUNGE, "EXPUNGE");
		break;
	case S_BIGFETCH:
		imap_cmd(c, K_FETCH, "UID FETCH 1:* (FLAGS)");
		break;
	case S_IDLE_START:
		imap_cmd(c, K_IDLE, "IDLE");
		break;
	case S_LOGOUT:
		imap_cmd(c, K_LOGOUT, "LOGOUT");
		break;
	default:
		n = step;
		die("bad step %ld", n);
	}
}

/* imap_after_select - what follows SELECT in this workload */
static void
imap_after_select(struct conn *c)
{
	if (strcmp(opt_workload, "bigfolder") == 0)
		imap_step(c, S_BIGFETCH);
	else if (strcmp(opt_workload, "idle") == 0)
		imap_step(c, S_IDLE_START);
	else if (c->exists > 0)
		imap_step(c, S_FETCH);
	else
		imap_step(c, S_SEARCH);
}

/* imap_response - one whole IMAP response arrived on c */
static int
imap_response(void *ctx, const char *first, uint64_t lit_bytes)
{
	struct conn *c = ctx;
	long n;
	char word[32];

	(void)lit_bytes;
	if (first[0] == '*' && first[1] == ' ') {
		if (sscanf(first + 2, "%ld %31s", &n, word) == 2) {
			if (strcasecmp(word, "EXISTS") == 0) {
				c->exists = n;
				if (c->step == S_IDLING && !c->got_exists) {
					double t;

					pthread_mutex_lock(&deliver_lock);
					t = deliver_at[c->user];
					pthread_mutex_unlock(&deliver_lock);
					c->got_exists = 1;
					idle_exists++;
					stat_ok(K_EXISTS,
						t > 0 ? now() - t : 0);
				}
			} else if (strcasecmp(word, "EXPUNGE") == 0) {
				c->exists--;
			} else if (strcasecmp(word, "FETCH") == 0) {
				c->fetched++;
			}
		} else if (strncasecmp(first + 2, "BYE", 3) == 0 &&
			   c->step != S_LOGOUT) {
			conn_fail(c, "unexpected %s", first);
			return -1;
		} else if (c->step == S_GREETING) {
			if (strncasecmp(first + 2, "OK", 2) != 0) {
				conn_fail(c, "greeting %s", first);
				return -1;
			}
			stat_ok(K_CONNECT, now() - c->sent);
			c->kind = K_LOGIN;
			imap_step(c, opt_tls == 2 ? S_STARTTLS : S_LOGIN);
		}
		return 0;
	}
	if (first[0] == '+') {
		if (c->step == S_APPEND_CMD) {
			conn_out(c, append_msg, append_len);
			conn_out(c, "\r\n", 2);
			c->step = S_APPEND_DATA;
			return 0;
		}
		if (c->step == S_IDLE_START) {
			stat_ok(K_IDLE, now() - c->sent);
			c->step = S_IDLING;
			c->ready = 1;
			c->deadline = 0;
			idle_ready++;
			return 0;
		}
		conn_fail(c, "unexpected continuation %s", first);
		return -1;
	}
	size_t tl = strlen(c->tag);

	if (strncmp(first, c->tag, tl) != 0 || first[tl] != ' ') {
		conn_fail(c, "unexpected response %.200s", first);
		return -1;
	}
	if (strncasecmp(first + tl + 1, "OK", 2) != 0) {
		conn_fail(c, "%.200s", first);
		return -1;
	}
	switch (c->step) {
	case S_STARTTLS:
		imap_done(c);
		c->ssl = SSL_new(ssl_ctx);
		if (c->ssl == NULL || !SSL_set_fd(c->ssl, c->fd))
			die("SSL_new failed");
		SSL_set_connect_state(c->ssl);
		c->step = S_HANDSHAKE;
		c->tls_after = S_LOGIN;
		c->sent = now();
		return 1;		/* stop reading plaintext */
	case S_LOGIN:
		imap_done(c);
		imap_step(c, S_SELECT);
		break;
	case S_SELECT:
		imap_done(c);
		if (c->exists < 0) {
			conn_fail(c, "SELECT without EXISTS");
			return -1;
		}
		imap_after_select(c);
		break;
	case S_FETCH:
		imap_done(c);
		if (c->fetched < 1) {
			conn_fail(c, "FETCH gave no message");
			return -1;
		}
		imap_step(c, S_STORE);
		break;
	case S_STORE:
		imap_done(c);
		imap_step(c, S_SEARCH);
		break;
	case S_SEARCH:
		imap_done(c);
		imap_step(c, S_APPEND_CMD);
		break;
	case S_APPEND_DATA:
		imap_done(c);
		if (c->exists < 1) {
			conn_fail(c, "APPEND did not show the new message");
			return -1;
		}
		imap_step(c, S_STORE_DEL);
		break;
	case S_STORE_DEL:
		imap_done(c);
		imap_step(c, S_EXPUNGE);
		break;
	case S_EXPUNGE:
		imap_done(c);
		imap_step(c, S_LOGOUT);
		break;
	case S_BIGFETCH:
		imap_done(c);
		if (c->fetched != c->exists) {
			conn_fail(c, "UID FETCH 1:* gave %ld of %ld messages",
				  c->fetched, c->exists);
			return -1;
		}
		imap_step(c, S_LOGOUT);
		break;
	case S_IDLING:
		imap_done(c);		/* the tagged end of IDLE after DONE */
		imap_step(c, S_LOGOUT);
		break;
	case S_LOGOUT:
		imap_done(c);
		conn_next(c);
		return -1;		/* c is reset: stop feeding */
	default:
		conn_fail(c, "tagged answer in step %d: %s", c->step, first);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ POP3 */

/* pop3_send - pipeline a POP3 command */
static void
pop3_send(struct conn *c, int kind, int multi, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n, i;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || n > (int)sizeof(line) - 3)
		die("POP3 command too long");
	memcpy(line + n, "\r\n", 2);
	conn_out(c, line, (size_t)n + 2);
	if (c->pq_len >= (int)(sizeof(c->pq_kind) / sizeof(c->pq_kind[0])))
		die("POP3 pipeline overflow");
	i = (c->pq_head + c->pq_len) % (int)(sizeof(c->pq_kind) /
					     sizeof(c->pq_kind[0]));
	c->pq_kind[i] = kind;
	c->pq_multi[i] = multi;
	c->pq_sent[i] = now();
	c->pq_len++;
	c->deadline = now() + opt_timeout;
}

/* pop3_multi - is the answer now due a multi-line one? */
static int
pop3_multi(void *ctx)
{
	struct conn *c = ctx;

	return c->pq_len > 0 && c->pq_multi[c->pq_head];
}

/* pop3_fill - pipeline the next batch of RETR or DELE */
static void
pop3_fill(struct conn *c)
{
	while (c->pq_len < POP3_BATCH) {
		if (c->retr_next <= c->nmsgs) {
			pop3_send(c, K_RETR, 1, "RETR %ld", c->retr_next++);
		} else if (c->retr_done == c->nmsgs &&
			   c->dele_next <= c->nmsgs) {
			pop3_send(c, K_DELE, 0, "DELE %ld", c->dele_next++);
		} else {
			break;
		}
	}
}

/* pop3_answer - one whole POP3 answer arrived on c */
static int
pop3_answer(void *ctx, const char *status, uint64_t bytes, uint64_t lines)
{
	struct conn *c = ctx;
	int kind;
	double sent;
	long a, b;

	(void)lines;
	if (c->step == S_GREETING) {
		if (strncmp(status, "+OK", 3) != 0) {
			conn_fail(c, "greeting %s", status);
			return -1;
		}
		stat_ok(K_CONNECT, now() - c->sent);
		c->step = S_POP3;
		char addr[80];

		user_addr(c->user, addr, sizeof(addr));
		pop3_send(c, K_LOGIN, 0, "USER %s", addr);
		pop3_send(c, K_LOGIN, 0, "PASS %s", opt_password);
		c->pstage = 0;
		return 0;
	}
	if (c->pq_len == 0) {
		conn_fail(c, "unexpected %s", status);
		return -1;
	}
	kind = c->pq_kind[c->pq_head];
	sent = c->pq_sent[c->pq_head];
	if (strncmp(status, "+OK", 3) != 0) {
		conn_fail(c, "%s", status);
		return -1;
	}
	c->pq_head = (c->pq_head + 1) % (int)(sizeof(c->pq_kind) /
					      sizeof(c->pq_kind[0]));
	c->pq_len--;
	switch (kind) {
	case K_LOGIN:
		if (c->pq_len > 0)
			return 0;	/* USER; PASS follows */
		stat_ok(K_LOGIN, now() - sent);
		pop3_send(c, K_STAT, 0, "STAT");
		break;
	case K_STAT:
		stat_ok(kind, now() - sent);
		if (sscanf(status, "+OK %ld %ld", &a, &b) != 2 || a < 0 ||
		    a > 10000000) {
			conn_fail(c, "bad STAT %s", status);
			return -1;
		}
		c->nmsgs = a;
		c->sizes = xrealloc(NULL, (size_t)(a + 1) * sizeof(long));
		c->nsizes = 0;
		c->retr_next = c->dele_next = 1;
		c->retr_done = c->dele_done = 0;
		pop3_send(c, K_LIST, 1, "LIST");
		break;
	case K_LIST:
		stat_ok(kind, now() - sent);
		if ((long)lines != c->nmsgs) {
			conn_fail(c, "LIST has %lu lines, STAT %ld",
				  (unsigned long)lines, c->nmsgs);
			return -1;
		}
		pop3_send(c, K_UIDL, 1, "UIDL");
		break;
	case K_UIDL:
		stat_ok(kind, now() - sent);
		if ((long)lines != c->nmsgs) {
			conn_fail(c, "UIDL has %lu lines, STAT %ld",
				  (unsigned long)lines, c->nmsgs);
			return -1;
		}
		pop3_fill(c);
		break;
	case K_RETR:
		stat_ok(kind, now() - sent);
		c->retr_done++;
		if (c->sizes && c->retr_done <= c->nsizes &&
		    (long)bytes != c->sizes[c->retr_done - 1]) {
			conn_fail(c, "message %ld has %lu bytes, LIST said %ld",
				  c->retr_done, (unsigned long)bytes,
				  c->sizes[c->retr_done - 1]);
			return -1;
		}
		pop3_fill(c);
		break;
	case K_DELE:
		stat_ok(kind, now() - sent);
		c->dele_done++;
		if (c->dele_done == c->nmsgs)
			pop3_send(c, K_QUIT, 0, "QUIT");
		else
			pop3_fill(c);
		break;
	case K_QUIT:
		stat_ok(kind, now() - sent);
		conn_next(c);
		return -1;
	}
	if (kind == K_UIDL && c->nmsgs == 0)
		pop3_send(c, K_QUIT, 0, "QUIT");
	return 0;
}

/* pop3_body_line - a line of a multi-line answer: LIST's sizes */
static void
pop3_body_line(void *ctx, const char *line)
{
	struct conn *c = ctx;
	long n, size;

	if (c->pq_len > 0 && c->pq_kind[c->pq_head] == K_LIST && c->sizes &&
	    sscanf(line, "%ld %ld", &n, &size) == 2 &&
	    c->nsizes < c->nmsgs && n == c->nsizes + 1)
		c->sizes[c->nsizes++] = size;
}

/* ------------------------------------------------------------ I/O */

/* conn_handshake - drive a TLS handshake; 0 done, 1 later, -1 failed */
static int
conn_handshake(struct conn *c)
{
	ERR_clear_error();
	int r = SSL_do_handshake(c->ssl);

	if (r == 1)
		return 0;
	int e = SSL_get_error(c->ssl, r);

	if (e == SSL_ERROR_WANT_READ) {
		conn_events(c, 0);
		return 1;
	}
	if (e == SSL_ERROR_WANT_WRITE) {
		conn_events(c, 1);
		return 1;
	}
	return -1;
}

/* feed - hand bytes read to the protocol's reader */
static int
feed(struct conn *c, const char *buf, size_t n)
{
	if (!is_pop3)
		return imap_rd_feed(&c->ird, buf, n, imap_response, c);
	return pop3_rd_feed(&c->prd, buf, n, pop3_multi, pop3_answer, c);
}

/* conn_io - the socket is ready: handshake, write, read */
static void
conn_io(struct conn *c)
{
	static char buf[256 * 1024];

	if (c->step == S_CONNECTING) {
		int err = 0;
		socklen_t l = sizeof(err);

		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0 ||
		    err != 0) {
			conn_fail(c, "connect: %s",
				  strerror(err ? err : errno));
			return;
		}
		if (opt_tls == 1) {
			c->ssl = SSL_new(ssl_ctx);
			if (c->ssl == NULL || !SSL_set_fd(c->ssl, c->fd))
				die("SSL_new failed");
			SSL_set_connect_state(c->ssl);
			c->step = S_HANDSHAKE;
			c->tls_after = S_GREETING;
		} else {
			c->step = S_GREETING;
			conn_events(c, 0);
		}
	}
	if (c->step == S_HANDSHAKE) {
		int r = conn_handshake(c);

		if (r < 0) {
			conn_fail(c, "TLS handshake failed");
			return;
		}
		if (r > 0)
			return;
		c->step = c->tls_after;
		if (c->step == S_LOGIN)
			imap_step(c, S_LOGIN);
	}
	if (conn_flush(c) < 0) {
		conn_fail(c, "send: %s", strerror(errno));
		return;
	}
	for (;;) {
		ssize_t n;

		if (c->ssl) {
			ERR_clear_error();
			int r = SSL_read(c->ssl, buf, sizeof(buf));

			if (r <= 0) {
				int e = SSL_get_error(c->ssl, r);

				if (e == SSL_ERROR_WANT_READ)
					break;
				if (e == SSL_ERROR_WANT_WRITE) {
					conn_events(c, 1);
					break;
				}
				conn_fail(c, "connection closed (TLS)");
				return;
			}
			n = r;
		} else {
			n = recv(c->fd, buf, sizeof(buf), 0);
			if (n < 0) {
				if (errno == EAGAIN || errno == EINTR)
					break;
				conn_fail(c, "recv: %s", strerror(errno));
				return;
			}
			if (n == 0) {
				conn_fail(c, "connection closed");
				return;
			}
		}
		unsigned gen = c->gen;
		int r = feed(c, buf, (size_t)n);

		if (c->gen != gen)
			return;		/* closed or restarted */
		if (r < 0) {
			conn_fail(c, "malformed or overlong response");
			return;
		}
		if (c->step == S_HANDSHAKE) {
			conn_io(c);	/* STARTTLS answered */
			return;
		}
		if (r > 0)
			break;
	}
	if (conn_flush(c) < 0)
		conn_fail(c, "send: %s", strerror(errno));
}

/* conn_start - open a new session for c's user */
static void
conn_start(struct conn *c)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
	int one = 1;

	if (!running)
		return;
	user_addr(c->user, c->who, sizeof(c->who));
	sa.sin_port = htons((uint16_t)opt_port);
	if (inet_pton(AF_INET, opt_host, &sa.sin_addr) != 1)
		die("bad host %s (an IPv4 address)", opt_host);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		die("socket: %s", strerror(errno));
	if (setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		die("setsockopt: %s", strerror(errno));
	if (opt_sources > 0) {
		/* one of N loopback source addresses, so that a server's
		 * per-address session limit sees N clients, not one */
		struct sockaddr_in src = {.sin_family = AF_INET};

		src.sin_addr.s_addr = htonl(0x7f000001u +
		    (uint32_t)(c->id % opt_sources));
		/* the port is picked at connect, per 4-tuple */
		(void)setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT,
		    &one, sizeof(one));
		if (bind(c->fd, (struct sockaddr *)&src, sizeof(src)) < 0)
			die("bind to 127.0.0.%d: %s", 1 + c->id % opt_sources,
			    strerror(errno));
	}
	c->step = S_CONNECTING;
	c->kind = K_CONNECT;
	c->sent = now();
	c->deadline = c->sent + opt_timeout;
	c->tagn = 0;
	c->tag[0] = 0;
	c->ready = c->got_exists = 0;
	c->pq_head = c->pq_len = 0;
	c->prd.body_line = pop3_body_line;
	c->want_out = 1;
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 &&
	    errno != EINPROGRESS) {
		int e = errno;

		if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
			die("epoll_ctl: %s", strerror(errno));
		conn_fail(c, "connect: %s", strerror(e));
		return;
	}
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
		die("epoll_ctl: %s", strerror(errno));
}

/* ------------------------------------------------------------ delivery */

/* smtp_reply - read one (multi-line) SMTP reply; its code or -1 */
static int
smtp_reply(FILE *f)
{
	char line[1024];

	for (;;) {
		if (fgets(line, sizeof(line), f) == NULL)
			return -1;
		if (strlen(line) < 4)
			return -1;
		if (line[3] != '-')
			return atoi(line);
	}
}

/* deliver_smtp - one message to every user over one SMTP session */
static int
deliver_smtp(void)
{
	char host[256], msg[1024];
	const char *colon = strrchr(opt_smtp, ':');
	struct sockaddr_in sa = {.sin_family = AF_INET};
	int fd, u;
	FILE *f;

	if (colon == NULL || (size_t)(colon - opt_smtp) >= sizeof(host))
		die("--smtp wants host:port");
	memcpy(host, opt_smtp, (size_t)(colon - opt_smtp));
	host[colon - opt_smtp] = 0;
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		die("bad --smtp host %s", host);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "mailload: smtp connect: %s\n",
			strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	f = fdopen(fd, "r+");
	if (f == NULL) {
		close(fd);
		return -1;
	}
	if (smtp_reply(f) != 220)
		goto bad;
	fprintf(f, "EHLO mailload.example.org\r\n");
	fflush(f);
	if (smtp_reply(f) != 250)
		goto bad;
	for (u = 0; u < opt_users; u++) {
		char addr[80];

		user_addr(u, addr, sizeof(addr));
		pthread_mutex_lock(&deliver_lock);
		deliver_at[u] = now();
		pthread_mutex_unlock(&deliver_lock);
		fprintf(f, "MAIL FROM:<sender@example.org>\r\n"
			"RCPT TO:<%s>\r\nDATA\r\n", addr);
		fflush(f);
		if (smtp_reply(f) != 250 || smtp_reply(f) != 250 ||
		    smtp_reply(f) != 354)
			goto bad;
		snprintf(msg, sizeof(msg), "From: <sender@example.org>\r\n"
			 "To: <%s>\r\nSubject: idle wake-up\r\n\r\n"
			 "Wake up.\r\n.\r\n", addr);
		fputs(msg, f);
		fflush(f);
		if (smtp_reply(f) != 250)
			goto bad;
	}
	fprintf(f, "QUIT\r\n");
	fflush(f);
	smtp_reply(f);
	fclose(f);
	return 0;
bad:
	fprintf(stderr, "mailload: SMTP delivery refused\n");
	fclose(f);
	return -1;
}

/* deliver_maildir - one file per user into <maildir>/<dom>/<local>/new */
static int
deliver_maildir(void)
{
	int u;

	for (u = 0; u < opt_users; u++) {
		char addr[80], path[4096], tmp[4096], msg[512];
		struct stat st;
		int fd, n;

		user_addr(u, addr, sizeof(addr));
		char *at = strchr(addr, '@');

		*at = 0;
		char dir[2048];
		long stamp = (long)time(NULL);

		if (snprintf(dir, sizeof(dir), "%s/%s/%s", opt_maildir, at + 1,
			     addr) >= (int)sizeof(dir))
			die("--maildir too long");
		snprintf(path, sizeof(path), "%.2048s/new", dir);
		if (stat(path, &st) < 0) {
			fprintf(stderr, "mailload: %s: %s\n", path,
				strerror(errno));
			return -1;
		}
		n = snprintf(msg, sizeof(msg), "From: <sender@example.org>\n"
			     "To: <%s@%s>\nSubject: idle wake-up\n\n"
			     "Wake up.\n", addr, at + 1);
		snprintf(tmp, sizeof(tmp), "%.2048s/tmp/%ld.M%dP%d.mailload",
			 dir, stamp, u, (int)getpid());
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
		if (fd < 0 || write(fd, msg, (size_t)n) != n ||
		    fchown(fd, st.st_uid, st.st_gid) < 0 || close(fd) < 0) {
			fprintf(stderr, "mailload: %s: %s\n", tmp,
				strerror(errno));
			return -1;
		}
		snprintf(path, sizeof(path),
			 "%.2048s/new/%ld.M%dP%d.mailload,S=%d", dir, stamp, u,
			 (int)getpid(), n);
		pthread_mutex_lock(&deliver_lock);
		deliver_at[u] = now();
		pthread_mutex_unlock(&deliver_lock);
		if (rename(tmp, path) < 0) {
			fprintf(stderr, "mailload: rename %s: %s\n", tmp,
				strerror(errno));
			return -1;
		}
	}
	return 0;
}

static volatile int deliver_result = 1;	/* 1 running, 0 ok, -1 failed */

/* deliver_thread - deliver while the loop reads the EXISTS */
static void *
deliver_thread(void *arg)
{
	(void)arg;
	deliver_result = opt_smtp ? deliver_smtp() : deliver_maildir();
	return NULL;
}

/* ------------------------------------------------------------ report */

/* cmp_u32 - qsort order */
static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* report - one line per command kind used */
static uint64_t
report(double elapsed)
{
	uint64_t errs = 0, total = 0;
	int k;

	for (k = 0; k < K_COUNT; k++) {
		struct stat_kind *s = &stats[k];
		double p50 = 0, p99 = 0;

		errs += s->errors;
		if (s->count == 0 && s->errors == 0)
			continue;
		if (k != K_CONNECT && k != K_EXISTS)
			total += s->count;
		if (s->nus > 0) {
			qsort(s->us, s->nus, sizeof(*s->us), cmp_u32);
			p50 = s->us[s->nus / 2] / 1000.0;
			p99 = s->us[(size_t)(s->nus * 0.99)] / 1000.0;
		}
		printf("kind=%s count=%llu rate=%.1f p50_ms=%.3f p99_ms=%.3f "
		       "errors=%llu\n", kind_name[k],
		       (unsigned long long)s->count, s->count / elapsed, p50,
		       p99, (unsigned long long)s->errors);
	}
	printf("total commands=%llu rate=%.1f errors=%llu elapsed=%.3f\n",
	       (unsigned long long)total, total / elapsed,
	       (unsigned long long)errs, elapsed);
	return errs;
}

/* ------------------------------------------------------------ selftest */

struct st_ctx {
	char	out[4096];
	size_t	len;
};

/* st_imap - record an IMAP response for the self-test */
static int
st_imap(void *ctx, const char *first, uint64_t lit)
{
	struct st_ctx *s = ctx;

	s->len += (size_t)snprintf(s->out + s->len, sizeof(s->out) - s->len,
				   "[%s|%llu]", first,
				   (unsigned long long)lit);
	return 0;
}

static int st_multi_calls;

/* st_multi - self-test: +OK ready is one line, the next two are not */
static int
st_multi(void *ctx)
{
	(void)ctx;
	return st_multi_calls++ % 3 != 0;
}

/* st_pop3 - record a POP3 answer for the self-test */
static int
st_pop3(void *ctx, const char *status, uint64_t bytes, uint64_t lines)
{
	struct st_ctx *s = ctx;

	s->len += (size_t)snprintf(s->out + s->len, sizeof(s->out) - s->len,
				   "[%s|%llu|%llu]", status,
				   (unsigned long long)bytes,
				   (unsigned long long)lines);
	return 0;
}

/* selftest - the readers over recorded responses, fed in every split */
static int
selftest(void)
{
	static const char imap_in[] =
		"* OK [CAPABILITY IMAP4rev1 IDLE] ready\r\n"
		"a1 OK [CAPABILITY IMAP4rev1] Logged in\r\n"
		"* 3 EXISTS\r\n"
		"* 1 FETCH (FLAGS (\\Seen) BODY[] {12}\r\nhello\r\n{5}\r\n"
		" ENVELOPE (NIL \"s\" NIL NIL NIL NIL NIL NIL NIL NIL))\r\n"
		"* 2 FETCH (BODY[HEADER] {0}\r\n BODY[TEXT] {3+}\r\n}\r\n)\r\n"
		"* 3 FETCH (X {1}\r\n{ Y {2}\r\n\r\n)\n"
		"+ idling\r\n"
		"a2 NO [TRYCREATE] no\r\n";
	static const char imap_want[] =
		"[* OK [CAPABILITY IMAP4rev1 IDLE] ready|0]"
		"[a1 OK [CAPABILITY IMAP4rev1] Logged in|0]"
		"[* 3 EXISTS|0]"
		"[* 1 FETCH (FLAGS (\\Seen) BODY[] {12}|12]"
		"[* 2 FETCH (BODY[HEADER] {0}|3]"
		"[* 3 FETCH (X {1}|3]"
		"[+ idling|0]"
		"[a2 NO [TRYCREATE] no|0]";
	static const char pop3_in[] =
		"+OK ready\r\n+OK 2 messages\r\n"
		"1 120\r\n2 4000\r\n.\r\n"
		"+OK 10 octets\r\n..dot\r\nline\r\n.\r\n"
		"-ERR no such message\r\n";
	static const char pop3_want[] =
		"[+OK ready|0|0][+OK 2 messages|15|2][+OK 10 octets|12|2]"
		"[-ERR no such message|0|0]";
	size_t len = sizeof(imap_in) - 1, chunk, i;
	int fails = 0;

	for (chunk = 1; chunk <= len; chunk++) {
		struct imap_rd r = {0};
		struct st_ctx s = {.len = 0};

		for (i = 0; i < len; i += chunk) {
			size_t n = len - i < chunk ? len - i : chunk;

			if (imap_rd_feed(&r, imap_in + i, n, st_imap, &s) < 0)
				fails++;
		}
		if (strcmp(s.out, imap_want) != 0) {
			fprintf(stderr, "IMAP chunk %zu:\n got %s\nwant %s\n",
				chunk, s.out, imap_want);
			fails++;
		}
		free(r.seg);
		free(r.first);
	}
	/* the POP3 answers: greeting, LIST (multi), RETR (multi), DELE */
	len = sizeof(pop3_in) - 1;
	for (chunk = 1; chunk <= len; chunk++) {
		struct pop3_rd r = {0};
		struct st_ctx s = {.len = 0};

		st_multi_calls = 0;
		for (i = 0; i < len; i += chunk) {
			size_t n = len - i < chunk ? len - i : chunk;

			if (pop3_rd_feed(&r, pop3_in + i, n, st_multi, st_pop3,
					 &s) < 0)
				fails++;
		}
		if (strcmp(s.out, pop3_want) != 0) {
			fprintf(stderr, "POP3 chunk %zu:\n got %s\nwant %s\n",
				chunk, s.out, pop3_want);
			fails++;
		}
		free(r.seg);
		free(r.status);
	}
	/* a literal too large to hold is skipped, not buffered */
	{
		struct imap_rd r = {0};
		struct st_ctx s = {.len = 0};
		static char big[1 << 16];
		const char *head = "* 1 FETCH (BODY[] {1000000}\r\n";
		size_t left = 1000000;

		imap_rd_feed(&r, head, strlen(head), st_imap, &s);
		memset(big, 'x', sizeof(big));
		while (left > 0) {
			size_t n = left < sizeof(big) ? left : sizeof(big);

			imap_rd_feed(&r, big, n, st_imap, &s);
			left -= n;
		}
		imap_rd_feed(&r, ")\r\n", 3, st_imap, &s);
		if (strcmp(s.out, "[* 1 FETCH (BODY[] {1000000}|1000000]") != 0
		    || r.seg_cap > 4096) {
			fprintf(stderr, "big literal: %s (buffer %zu)\n",
				s.out, r.seg_cap);
			fails++;
		}
		free(r.seg);
		free(r.first);
	}
	printf("selftest: %s\n", fails ? "FAILED" : "ok");
	return fails ? 1 : 0;
}

/* ------------------------------------------------------------ main */

/* usage - the options */
static void
usage(void)
{
	fprintf(stderr,
"usage: mailload [options] -w WORKLOAD -p PORT\n"
"       mailload --selftest\n"
"  -w mixed|bigfolder|idle|pop3   workload (see the top of mailload.c)\n"
"  -H ADDR       server IPv4 address (127.0.0.1)\n"
"  -p PORT       server port\n"
"  -c N          concurrent sessions (10)\n"
"  -u N          users (100), named PREFIX + number of WIDTH digits\n"
"  --prefix P --width W --domain D --password S   (u, 3, example.test)\n"
"  -t SECONDS    run time of mixed, bound of every workload (60)\n"
"  -n N          bigfolder repetitions (1)\n"
"  --tls | --starttls              implicit TLS or STARTTLS\n"
"  --timeout S   per command (60)\n"
"  -r N          idle: sessions logging in at once (50)\n"
"  --hold S      idle: seconds idle before the delivery (3)\n"
"  --smtp H:P    idle: deliver by SMTP; else --maildir DIR: write into\n"
"                DIR/<domain>/<local>/new/\n"
"  --size BYTES  APPEND message size (4096)\n"
"  --sources N   connect from N loopback addresses 127.0.0.1.. (1..250)\n"
"Prints kind=NAME count= rate= p50_ms= p99_ms= errors= per command kind,\n"
"then a total line; exit 1 when there was any error.\n");
	exit(2);
}

/* raise_nofile - room for n sockets */
static void
raise_nofile(int n)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)n + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		die("getrlimit: %s", strerror(errno));
	if (rl.rlim_cur >= want)
		return;
	if (rl.rlim_max < want)
		rl.rlim_max = want;	/* works as root */
	rl.rlim_cur = want;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		die("cannot raise RLIMIT_NOFILE to %lu: %s",
		    (unsigned long)want, strerror(errno));
}

/* check_timeouts - fail commands past their deadline */
static void
check_timeouts(double t)
{
	int i;

	for (i = 0; i < nconns; i++) {
		struct conn *c = conns[i];

		if (c->fd >= 0 && c->deadline > 0 && t > c->deadline)
			conn_fail(c, "timeout after %.0f s", opt_timeout);
	}
}

/* loop_once - wait up to ms for events and serve them */
static void
loop_once(int ms)
{
	struct epoll_event evs[512];
	int n, i;

	n = epoll_wait(epfd, evs, 512, ms);
	if (n < 0) {
		if (errno == EINTR)
			return;
		die("epoll_wait: %s", strerror(errno));
	}
	for (i = 0; i < n; i++) {
		struct conn *c = evs[i].data.ptr;

		if (c->fd >= 0)
			conn_io(c);
	}
}

/* live - sessions with an open socket */
static int
live(void)
{
	int i, n = 0;

	for (i = 0; i < nconns; i++)
		n += conns[i]->fd >= 0;
	return n;
}

/* run_idle - the IDLE workload */
static void
run_idle(void)
{
	double t0 = now(), last_check = t0, t;
	int started = 0, i;
	pthread_t th;

	deliver_at = xrealloc(NULL, (size_t)opt_users * sizeof(double));
	memset(deliver_at, 0, (size_t)opt_users * sizeof(double));
	/* ramp: at most opt_ramp sessions on their way to IDLE */
	while ((t = now()) < t_end) {
		while (started < nconns &&
		       started - idle_ready - idle_failed < opt_ramp)
			conn_start(conns[started++]);
		if (idle_ready + idle_failed >= nconns)
			break;
		loop_once(50);
		if (t - last_check > 1) {
			check_timeouts(t);
			last_check = t;
		}
	}
	double ramp = now() - t0;

	printf("ready sessions=%d failed=%d ramp_s=%.1f\n", idle_ready,
	       idle_failed, ramp);
	fflush(stdout);
	t = now() + opt_hold;
	while (now() < t && now() < t_end)
		loop_once(100);
	/* deliver; wait for every idle session's EXISTS */
	double t_del = now();

	if (pthread_create(&th, NULL, deliver_thread, NULL) != 0)
		die("pthread_create failed");
	while (now() < t_end && idle_exists < idle_ready)
		loop_once(50);
	if (pthread_join(th, NULL) != 0)
		die("pthread_join failed");
	if (deliver_result != 0)
		stat_error(K_EXISTS, "-", "delivery failed");
	printf("delivered in %.3f s, exists %d of %d\n", now() - t_del,
	       idle_exists, idle_ready);
	for (i = 0; i < nconns; i++) {
		struct conn *c = conns[i];

		if (c->fd >= 0 && c->ready && !c->got_exists)
			stat_error(K_EXISTS, c->who, "no EXISTS before -t");
		if (c->fd >= 0)
			conn_close(c);
	}
}

int
main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{"tls", no_argument, NULL, 'T'},
		{"starttls", no_argument, NULL, 'S'},
		{"selftest", no_argument, NULL, 'X'},
		{"prefix", required_argument, NULL, 1},
		{"width", required_argument, NULL, 2},
		{"domain", required_argument, NULL, 3},
		{"password", required_argument, NULL, 4},
		{"timeout", required_argument, NULL, 5},
		{"hold", required_argument, NULL, 6},
		{"smtp", required_argument, NULL, 7},
		{"maildir", required_argument, NULL, 8},
		{"size", required_argument, NULL, 9},
		{"sources", required_argument, NULL, 10},
		{NULL, 0, NULL, 0},
	};
	int ch, i;

	while ((ch = getopt_long(argc, argv, "w:H:p:c:u:t:n:r:", lopts,
				 NULL)) != -1) {
		switch (ch) {
		case 'w': opt_workload = optarg; break;
		case 'H': opt_host = optarg; break;
		case 'p': opt_port = atoi(optarg); break;
		case 'c': opt_clients = atoi(optarg); break;
		case 'u': opt_users = atoi(optarg); break;
		case 't': opt_time = atof(optarg); break;
		case 'n': opt_count = atol(optarg); break;
		case 'r': opt_ramp = atoi(optarg); break;
		case 'T': opt_tls = 1; break;
		case 'S': opt_tls = 2; break;
		case 'X': return selftest();
		case 1: opt_prefix = optarg; break;
		case 2: opt_width = atoi(optarg); break;
		case 3: opt_domain = optarg; break;
		case 4: opt_password = optarg; break;
		case 5: opt_timeout = atof(optarg); break;
		case 6: opt_hold = atof(optarg); break;
		case 7: opt_smtp = optarg; break;
		case 8: opt_maildir = optarg; break;
		case 9: opt_msg_size = atoi(optarg); break;
		case 10: opt_sources = atoi(optarg); break;
		default: usage();
		}
	}
	if (optind != argc || opt_clients < 1 || opt_clients > 1000000 ||
	    opt_users < 1 || opt_users > 10000000 || opt_port < 1 ||
	    opt_port > 65535 || opt_time <= 0 || opt_timeout <= 0 ||
	    opt_ramp < 1 || opt_width < 0 || opt_width > 9 ||
	    opt_msg_size < 64 || opt_msg_size > 64 * 1024 * 1024 ||
	    opt_sources < 0 || opt_sources > 250)
		usage();
	is_pop3 = strcmp(opt_workload, "pop3") == 0;
	if (!is_pop3 && strcmp(opt_workload, "mixed") != 0 &&
	    strcmp(opt_workload, "bigfolder") != 0 &&
	    strcmp(opt_workload, "idle") != 0)
		usage();
	if (strcmp(opt_workload, "idle") == 0 && !opt_smtp && !opt_maildir)
		die("idle needs --smtp or --maildir to deliver");
	if (is_pop3 && opt_tls == 2)
		die("STARTTLS (STLS) is not done for POP3");
	signal(SIGPIPE, SIG_IGN);
	srand((unsigned)getpid());
	raise_nofile(opt_clients + 16);
	if (opt_tls) {
		ssl_ctx = SSL_CTX_new(TLS_client_method());
		if (ssl_ctx == NULL)
			die("SSL_CTX_new failed");
		SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_NONE, NULL);
	}
	/* the APPEND message: headers and lines of 74 x, CRLF */
	append_msg = xrealloc(NULL, (size_t)opt_msg_size + 128);
	append_len = (size_t)snprintf(append_msg, 128,
				      "From: <sender@example.org>\r\n"
				      "To: <bench@example.test>\r\n"
				      "Subject: appended\r\n\r\n");
	while (append_len + 76 <= (size_t)opt_msg_size) {
		memset(append_msg + append_len, 'x', 74);
		memcpy(append_msg + append_len + 74, "\r\n", 2);
		append_len += 76;
	}
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0)
		die("epoll_create1: %s", strerror(errno));
	nconns = opt_clients;
	if (is_pop3 && nconns > opt_users)
		nconns = opt_users;
	conns = xrealloc(NULL, (size_t)nconns * sizeof(*conns));
	for (i = 0; i < nconns; i++) {
		conns[i] = xrealloc(NULL, sizeof(struct conn));
		memset(conns[i], 0, sizeof(struct conn));
		conns[i]->fd = -1;
		conns[i]->id = i;
		conns[i]->user = i % opt_users;
		conns[i]->step = S_DONE;
	}
	t_start = now();
	t_end = t_start + opt_time;
	cycles_left = opt_count > 0 ? opt_count - 1 : 0;
	users_next = nconns;
	if (strcmp(opt_workload, "idle") == 0) {
		run_idle();
	} else {
		double last_check = t_start, t;

		for (i = 0; i < nconns; i++)
			conn_start(conns[i]);
		while ((t = now()) < t_end && live() > 0) {
			loop_once(100);
			if (t - last_check > 0.5) {
				check_timeouts(t);
				last_check = t;
			}
		}
		running = 0;
		if (live() > 0 && strcmp(opt_workload, "mixed") != 0) {
			for (i = 0; i < nconns; i++)
				if (conns[i]->fd >= 0)
					stat_error(conns[i]->kind,
						   conns[i]->who,
						   "unfinished at -t");
		}
		for (i = 0; i < nconns; i++)
			if (conns[i]->fd >= 0)
				conn_close(conns[i]);
	}
	double elapsed = now() - t_start;

	if (strcmp(opt_workload, "mixed") == 0)
		elapsed = opt_time;
	if (is_pop3 && users_next < opt_users)
		stat_error(K_LOGIN, "-", "%ld users not reached before -t",
			   (long)(opt_users - users_next));
	return report(elapsed) ? 1 : 0;
}
