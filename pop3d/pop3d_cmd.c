/*
 * pop3d_cmd - POP3 commands: the table (name, allowed states, handler),
 * the dispatcher, argument parsing, and the handlers of everything but
 * the login commands (pop3d_auth.c).
 *
 * RFC 1939 (USER PASS STAT LIST RETR DELE NOOP RSET QUIT TOP UIDL), RFC
 * 2449 (CAPA, extended response codes), RFC 2595 (STLS), RFC 5034 (AUTH).
 * Keywords are case-insensitive; the keyword ends at the first space and
 * the arguments are the words after it. Message numbers refer to the
 * snapshot taken at login; a message marked deleted no longer exists for
 * any command ("-ERR no such message").
 */
#include <errno.h>
#include <string.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/foreign.h"
#include "base/stream.h"
#include "mail/params.h"
#include "mail/sasl.h"
#include "pop3d.h"

#define POP3D_CMD_WORDS 3	/* the most arguments any command takes */

/* pop3d_cmd_split - verb and arguments of a line */
void
pop3d_cmd_split(const char *line, size_t len, size_t *vlen_r,
    const char **args_r)
{
	size_t v = 0;
	const char *a;

	while (v < len && line[v] != ' ')
		v++;
	a = line + v;
	while (a < line + len && *a == ' ')
		a++;
	*vlen_r = v;
	*args_r = a;
}

/*
 * pop3d_cmd_words - split args[0..len) at spaces into at most max words,
 * NUL-terminating each in place; returns the count, or max + 1 when there
 * are more
 */
static int
pop3d_cmd_words(char *args, size_t len, char **w, size_t *wl, int max)
{
	char *p = args, *end = args + len;
	int n = 0;

	for (;;) {
		while (p < end && *p == ' ')
			p++;
		if (p == end)
			return n;
		if (n == max)
			return max + 1;
		w[n] = p;
		while (p < end && *p != ' ')
			p++;
		wl[n] = (size_t)(p - w[n]);
		if (p < end)
			*p++ = '\0';
		n++;
	}
}

/* pop3d_cmd_number - parse a decimal number (digits only) within 0..max */
int
pop3d_cmd_number(const char *p, size_t len, long long max, long long *n_r)
{
	long long n = 0;

	if (len == 0 || len > 18)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		n = n * 10 + (p[i] - '0');
	}
	if (n > max)
		return -1;
	*n_r = n;
	return 0;
}

/*
 * pop3d_cmd_msg - the message a number argument names: index into
 * md->msgs, or -1 after the error reply ("-ERR no such message" for
 * numbers out of range and deleted messages)
 */
static long long
pop3d_cmd_msg(struct pop3d_session *s, const char *word, size_t len)
{
	long long n;

	if (pop3d_cmd_number(word, len, 1LL << 40, &n) < 0) {
		pop3d_session_error(s, "-ERR Invalid message number");
		return -1;
	}
	if (n < 1 || (unsigned long long)n > s->md->n ||
	    s->md->msgs[n - 1].deleted) {
		pop3d_session_error(s, "-ERR no such message");
		return -1;
	}
	return n - 1;
}

/* pop3d_cmd_capa_text - the capabilities (RFC 2449 6), one per line */
void
pop3d_cmd_capa_text(const struct pop3d_session *s, struct buf *out)
{
	bool auth = s->state == POP3D_S_AUTH;

	buf_puts(out, "TOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n"
	    "PIPELINING\r\n");
	if (auth && session_plaintext_ok(&s->base)) {
		buf_puts(out, "USER\r\n");
		buf_printf(out, "SASL %s\r\n", sasl_mech_list());
	}
	if (auth && pop3d_tls_ctx != NULL && !stream_is_tls(s->base.stream))
		buf_puts(out, "STLS\r\n");
	buf_puts(out, "IMPLEMENTATION herald\r\n");
}

/* pop3d_cmd_capa - CAPA: the capability list */
static void
pop3d_cmd_capa(struct pop3d_session *s, char *args, size_t len)
{
	if (len != 0) {
		pop3d_session_error(s, "-ERR Syntax: CAPA");
		return;
	}
	buf_reset(&s->scratch);
	buf_puts(&s->scratch, "+OK Capability list follows\r\n");
	pop3d_cmd_capa_text(s, &s->scratch);
	buf_puts(&s->scratch, ".\r\n");
	stream_write(s->base.stream, s->scratch.data, s->scratch.len);
	buf_reset(&s->scratch);
}

/* pop3d_cmd_stls - STLS (RFC 2595 4) */
static void
pop3d_cmd_stls(struct pop3d_session *s, char *args, size_t len)
{
	if (len != 0) {
		pop3d_session_error(s, "-ERR Syntax: STLS");
		return;
	}
	if (stream_is_tls(s->base.stream)) {
		pop3d_session_error(s,
		    "-ERR Command not permitted when TLS active");
		return;
	}
	if (pop3d_tls_ctx == NULL) {
		pop3d_session_error(s, "-ERR STLS not available");
		return;
	}
	if (s->user.len > 0) {
		pop3d_session_error(s, "-ERR STLS not permitted after USER");
		return;
	}
	pop3d_session_reply(s, "+OK Begin TLS negotiation");
	pop3d_session_starttls(s);
}

/* pop3d_cmd_log_logout - the logout line after UPDATE */
static void
pop3d_cmd_log_logout(struct pop3d_session *s, size_t removed)
{
	msg_info("logout: user=<%s> top=%u retr=%u/%lld del=%zu/%zu "
	    "size=%lld", buf_cstr(&s->login), s->n_top, s->n_retr,
	    s->retr_bytes, removed, s->md->n, s->md->total);
}

/* pop3d_cmd_updated - the maildrop thread ran UPDATE: log, unlock,
 * goodbye (loop thread; also after the client went away) */
static void
pop3d_cmd_updated(struct pop3d_job *job, void *ctx)
{
	struct pop3d_session *s = ctx;

	s->job = NULL;
	s->base.depth++;
	s->md = job->md;
	job->md = NULL;
	pop3d_cmd_log_logout(s, job->removed);
	/* the lock goes now, before the client can connect again */
	pop3d_maildrop_close(&s->md);
	if (job->failed > 0) {
		msg_warn("%s: %zu deleted message(s) not removed",
		    buf_cstr(&s->login), job->failed);
		pop3d_session_reply(s, "-ERR [SYS/TEMP] Some deleted "
		    "messages not removed");
	} else {
		pop3d_session_reply(s, "+OK Logging out, %zu messages "
		    "deleted", job->removed);
	}
	pop3d_session_finish(s, "quit");
	pop3d_maildrop_job_free(&job);
	session_leave(&s->base);
}

/* pop3d_cmd_quit - QUIT: in TRANSACTION, UPDATE (on a maildrop thread:
 * it unlinks a file per deleted message) then goodbye */
static void
pop3d_cmd_quit(struct pop3d_session *s, char *args, size_t len)
{
	struct pop3d_job *job;

	if (len != 0) {
		pop3d_session_error(s, "-ERR Syntax: QUIT");
		return;
	}
	if (s->state != POP3D_S_TRANS) {
		pop3d_session_reply(s, "+OK Logging out");
		pop3d_session_finish(s, "quit");
		return;
	}
	job = xcalloc(1, sizeof(*job));
	job->kind = POP3D_JOB_UPDATE;
	buf_init(&job->why);
	job->md = s->md;	/* the thread's until done */
	s->md = NULL;
	job->done = pop3d_cmd_updated;
	job->ctx = s;
	s->job = job;
	s->state = POP3D_S_WAIT;
	session_set_pause(&s->base, POP3D_PAUSE_JOB, true);
	pop3d_maildrop_submit(job, s);
}

/* pop3d_cmd_stat - STAT: count and size of the live messages */
static void
pop3d_cmd_stat(struct pop3d_session *s, char *args, size_t len)
{
	if (len != 0) {
		pop3d_session_error(s, "-ERR Syntax: STAT");
		return;
	}
	pop3d_session_reply(s, "+OK %zu %lld", s->md->n - s->md->ndel,
	    s->md->total - s->md->del_size);
}

/* pop3d_cmd_list_uidl - LIST and UIDL, with or without a number */
static void
pop3d_cmd_list_uidl(struct pop3d_session *s, char *args, size_t len,
    bool uidl)
{
	char *w[POP3D_CMD_WORDS];
	size_t wl[POP3D_CMD_WORDS];
	long long i;

	switch (pop3d_cmd_words(args, len, w, wl, 1)) {
	case 0:
		if (uidl)
			pop3d_session_reply(s, "+OK Unique-ID listing follows");
		else
			pop3d_session_reply(s, "+OK %zu messages (%lld "
			    "octets)", s->md->n - s->md->ndel,
			    s->md->total - s->md->del_size);
		pop3d_send_start(s, uidl ? POP3D_SEND_UIDL : POP3D_SEND_LIST,
		    -1, -1);
		return;
	case 1:
		if ((i = pop3d_cmd_msg(s, w[0], wl[0])) < 0)
			return;
		if (uidl)
			pop3d_session_reply(s, "+OK %lld %s", i + 1,
			    s->md->msgs[i].uidl);
		else
			pop3d_session_reply(s, "+OK %lld %lld", i + 1,
			    s->md->msgs[i].size);
		return;
	default:
		pop3d_session_error(s, "-ERR Syntax: %s [message]",
		    uidl ? "UIDL" : "LIST");
	}
}

static void
pop3d_cmd_list(struct pop3d_session *s, char *args, size_t len)
{
	pop3d_cmd_list_uidl(s, args, len, false);
}

static void
pop3d_cmd_uidl(struct pop3d_session *s, char *args, size_t len)
{
	pop3d_cmd_list_uidl(s, args, len, true);
}

/* pop3d_cmd_open - open message i for RETR/TOP; -1 after the reply */
static int
pop3d_cmd_open(struct pop3d_session *s, long long i)
{
	int fd = pop3d_maildrop_open_msg(s->md, (size_t)i);

	if (fd >= 0)
		return fd;
	if (errno == ENOENT) {
		msg_info("%s: message %lld (%s) was removed by another "
		    "session", buf_cstr(&s->login), i + 1,
		    s->md->msgs[i].uidl);
		pop3d_session_reply(s, "-ERR [SYS/TEMP] Message was removed "
		    "by another session");
	} else {
		msg_warn("%s: open message %lld (%s): %m",
		    buf_cstr(&s->login), i + 1, s->md->msgs[i].name);
		pop3d_session_reply(s, "-ERR [SYS/TEMP] Cannot read message");
	}
	return -1;
}

/* pop3d_cmd_retr - RETR n: the whole message */
static void
pop3d_cmd_retr(struct pop3d_session *s, char *args, size_t len)
{
	char *w[POP3D_CMD_WORDS];
	size_t wl[POP3D_CMD_WORDS];
	long long i;
	int fd;

	if (pop3d_cmd_words(args, len, w, wl, 1) != 1) {
		pop3d_session_error(s, "-ERR Syntax: RETR message");
		return;
	}
	if ((i = pop3d_cmd_msg(s, w[0], wl[0])) < 0)
		return;
	if ((fd = pop3d_cmd_open(s, i)) < 0)
		return;
	s->n_retr++;
	pop3d_session_reply(s, "+OK %lld octets", s->md->msgs[i].size);
	pop3d_send_start(s, POP3D_SEND_MSG, fd, -1);
}

/* pop3d_cmd_top - TOP n m: header, blank line, first m body lines */
static void
pop3d_cmd_top(struct pop3d_session *s, char *args, size_t len)
{
	char *w[POP3D_CMD_WORDS];
	size_t wl[POP3D_CMD_WORDS];
	long long i, lines;
	int fd;

	if (pop3d_cmd_words(args, len, w, wl, 2) != 2) {
		pop3d_session_error(s, "-ERR Syntax: TOP message lines");
		return;
	}
	if ((i = pop3d_cmd_msg(s, w[0], wl[0])) < 0)
		return;
	if (pop3d_cmd_number(w[1], wl[1], 1LL << 50, &lines) < 0) {
		pop3d_session_error(s, "-ERR Invalid number of lines");
		return;
	}
	if ((fd = pop3d_cmd_open(s, i)) < 0)
		return;
	s->n_top++;
	pop3d_session_reply(s, "+OK Top of message follows");
	pop3d_send_start(s, POP3D_SEND_MSG, fd, lines);
}

/* pop3d_cmd_dele - DELE n: mark for deletion at QUIT */
static void
pop3d_cmd_dele(struct pop3d_session *s, char *args, size_t len)
{
	char *w[POP3D_CMD_WORDS];
	size_t wl[POP3D_CMD_WORDS];
	long long i;

	if (pop3d_cmd_words(args, len, w, wl, 1) != 1) {
		pop3d_session_error(s, "-ERR Syntax: DELE message");
		return;
	}
	if ((i = pop3d_cmd_msg(s, w[0], wl[0])) < 0)
		return;
	s->md->msgs[i].deleted = true;
	s->md->ndel++;
	s->md->del_size += s->md->msgs[i].size;
	pop3d_session_reply(s, "+OK message %lld deleted", i + 1);
}

/* pop3d_cmd_noop - NOOP */
static void
pop3d_cmd_noop(struct pop3d_session *s, char *args, size_t len)
{
	if (len != 0) {
		pop3d_session_error(s, "-ERR Syntax: NOOP");
		return;
	}
	pop3d_session_reply(s, "+OK");
}

/* pop3d_cmd_rset - RSET: unmark every deleted message */
static void
pop3d_cmd_rset(struct pop3d_session *s, char *args, size_t len)
{
	if (len != 0) {
		pop3d_session_error(s, "-ERR Syntax: RSET");
		return;
	}
	for (size_t i = 0; i < s->md->n; i++)
		s->md->msgs[i].deleted = false;
	s->md->ndel = 0;
	s->md->del_size = 0;
	pop3d_session_reply(s, "+OK maildrop has %zu messages (%lld octets)",
	    s->md->n, s->md->total);
}

#define A POP3D_S_AUTH
#define T POP3D_S_TRANS

const struct pop3d_cmd pop3d_cmd_table[] = {
	{"CAPA", A | T, false, pop3d_cmd_capa},
	{"USER", A, false, pop3d_auth_user},
	{"PASS", A, true, pop3d_auth_pass},
	{"AUTH", A, true, pop3d_auth_auth},
	{"STLS", A, false, pop3d_cmd_stls},
	{"QUIT", A | T, false, pop3d_cmd_quit},
	{"STAT", T, false, pop3d_cmd_stat},
	{"LIST", T, false, pop3d_cmd_list},
	{"RETR", T, false, pop3d_cmd_retr},
	{"DELE", T, false, pop3d_cmd_dele},
	{"NOOP", T, false, pop3d_cmd_noop},
	{"RSET", T, false, pop3d_cmd_rset},
	{"TOP", T, false, pop3d_cmd_top},
	{"UIDL", T, false, pop3d_cmd_uidl},
	{NULL, 0, false, NULL},
};

#undef A
#undef T

/* pop3d_cmd_find - the entry for verb[0..len), NULL if unknown */
const struct pop3d_cmd *
pop3d_cmd_find(const char *verb, size_t len)
{
	for (const struct pop3d_cmd *c = pop3d_cmd_table; c->name; c++)
		if (strlen(c->name) == len &&
		    str_ncasecmp(c->name, verb, len) == 0)
			return c;
	return NULL;
}

/*
 * pop3d_cmd_forbidden - verbs of other protocols and binary junk. A
 * browser or proxy tricked into talking to port 110, or a TLS client on
 * the plaintext port, sends these; we hang up instead of answering every
 * line with an error.
 */
bool
pop3d_cmd_forbidden(const char *verb, size_t len)
{
	static const char *const smtp[] = {"EHLO", "HELO", NULL};

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)verb[i];

		if (c < 0x21 || c > 0x7e)
			return true;	/* binary: TLS on the plain port */
	}
	return foreign_verb(verb, len, smtp);
}

/* pop3d_cmd_state_error - a known command in the wrong state */
static void
pop3d_cmd_state_error(struct pop3d_session *s, const struct pop3d_cmd *c)
{
	if (s->state == POP3D_S_AUTH)
		pop3d_session_error(s, "-ERR Not logged in");
	else
		pop3d_session_error(s, "-ERR Already logged in");
}

/*
 * pop3d_cmd_junk - after login, count the commands that do no mail work
 * (NOOP, CAPA, RSET, STAT); RETR, TOP and DELE start the count over.
 * True: one too many, the session ends (a client could otherwise keep a
 * session and its maildrop lock for pop3d_session_timeout with NOOPs).
 */
static bool
pop3d_cmd_junk(struct pop3d_session *s, const struct pop3d_cmd *c)
{
	if (s->state != POP3D_S_TRANS)
		return false;
	if (c->fn == pop3d_cmd_retr || c->fn == pop3d_cmd_top ||
	    c->fn == pop3d_cmd_dele) {
		s->junk = 0;
		return false;
	}
	if (c->fn != pop3d_cmd_noop && c->fn != pop3d_cmd_capa &&
	    c->fn != pop3d_cmd_rset && c->fn != pop3d_cmd_stat)
		return false;
	if (++s->junk <= var_pop3d_junk_command_limit)
		return false;
	msg_info("too many junk commands after %s from [%s]", c->name,
	    s->base.peer.addr);
	pop3d_session_reply(s, "-ERR Too many commands");
	pop3d_session_finish(s, "too many junk commands");
	return true;
}

/*
 * pop3d_cmd_dispatch - run one command line (terminator removed). Before
 * login at most pop3d_command_limit commands are taken; the next one ends
 * the session. PASS keeps its argument as sent (a password may hold and
 * end in spaces); other commands lose trailing blanks.
 */
void
pop3d_cmd_dispatch(struct pop3d_session *s, char *line, size_t len)
{
	const struct pop3d_cmd *c;
	size_t vlen;
	const char *args;

	pop3d_cmd_split(line, len, &vlen, &args);
	c = pop3d_cmd_find(line, vlen);
	s->base.last_cmd = c != NULL ? c->name : "UNKNOWN";
	if (s->state == POP3D_S_AUTH &&
	    ++s->commands > var_pop3d_command_limit) {
		msg_info("too many commands before login from [%s]",
		    s->base.peer.addr);
		pop3d_session_reply(s, "-ERR Too many commands");
		pop3d_session_finish(s, "too many commands before login");
		return;
	}
	if (c == NULL) {
		if (vlen > 0 && pop3d_cmd_forbidden(line, vlen)) {
			buf_reset(&s->scratch);
			str_printable(&s->scratch, line, len, 100);
			msg_warn("non-POP3 command from [%s]: %s",
			    s->base.peer.addr, buf_cstr(&s->scratch));
			buf_reset(&s->scratch);
			pop3d_session_reply(s, "-ERR Not a POP3 command");
			pop3d_session_finish(s, "non-POP3 command");
		} else {
			pop3d_session_error(s, "-ERR Unknown command");
		}
		return;
	}
	if (!c->long_line && len > POP3D_CMD_MAX) {
		pop3d_session_error(s, "-ERR Line too long");
		return;
	}
	if (memchr(line, '\0', len) != NULL) {
		pop3d_session_error(s, "-ERR Syntax error: NUL in command");
		return;
	}
	if (!(c->states & s->state)) {
		pop3d_cmd_state_error(s, c);
		return;
	}
	if (pop3d_cmd_junk(s, c))
		return;
	if (c->fn != pop3d_auth_pass)
		while (len > vlen && (line[len - 1] == ' ' ||
		    line[len - 1] == '\t'))
			len--;
	line[len] = '\0';
	if (args > line + len)
		args = line + len;
	c->fn(s, (char *)args, (size_t)(line + len - args));
}
