/*
 * imapd_cmd - IMAP commands: the table (name, allowed states, handler),
 * the dispatcher, and the handlers of the commands that need no mailbox:
 * CAPABILITY, NOOP, LOGOUT, STARTTLS, ENABLE (RFC 5161), ID (RFC 2971)
 * and NAMESPACE (RFC 2342). The login commands are imapd_auth.c, the
 * mailbox-management ones imapd_list.c and imapd_mailbox.c.
 *
 * Every RFC 9051 command (and RFC 3501's LSUB and CHECK) is in the table
 * so that each gets the right answer for the state it arrives in:
 *   - a command of a later state before login: BAD "Not logged in";
 *   - LOGIN, AUTHENTICATE, STARTTLS after login: BAD;
 *   - a command of the selected state with no mailbox selected: BAD;
 *   - a mailbox command of the authenticated state (SELECT, LIST, ...)
 *     whose handler this build does not have yet (fn NULL): NO
 *     [UNAVAILABLE], so a client knows the server, not its command,
 *     is lacking.
 * Before any handler runs, the whole command is checked against the
 * token grammar (imap_syntax_check): a malformed one gets BAD.
 */
#include <string.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/str.h"
#include "base/stream.h"
#include "mail/foreign.h"
#include "mail/params.h"
#include "imapd.h"
#include "imapd_mailbox.h"
#include "imapd_sel.h"
#include "imapd_store.h"

/* imapd_cmd_capability - the capability list for s */
void
imapd_cmd_capability(const struct imapd_session *s, struct buf *out)
{
	buf_puts(out, "IMAP4rev2 IMAP4rev1");
	if (!(s->state & IMAPD_S_LOGGED)) {
		if (imapd_tls_ctx != NULL && !stream_is_tls(s->base.stream))
			buf_puts(out, " STARTTLS");
		/* RFC 9051 6.2.3: no plaintext mechanisms while refused */
		if (session_plaintext_ok(&s->base))
			buf_puts(out, " AUTH=PLAIN AUTH=LOGIN");
		else
			buf_puts(out, " LOGINDISABLED");
	}
	buf_puts(out, " SASL-IR LITERAL+ ENABLE ID NAMESPACE");
	/* the mailbox commands (imapd_list.c, imapd_mailbox.c) */
	if (s->state & IMAPD_S_LOGGED)
		buf_puts(out, " UTF8=ACCEPT LIST-EXTENDED LIST-STATUS "
		    "SPECIAL-USE CREATE-SPECIAL-USE CHILDREN STATUS=SIZE "
		    "QUOTA QUOTA=RES-STORAGE OBJECTID");
	/* the selected state (imapd_select.c and its siblings) */
	if (s->state & IMAPD_S_LOGGED) {
		imapd_sel_capability(out);
		imapd_search_capability(out);
	}
	/* RFC 8970 FETCH PREVIEW (imapd_fetch.c) */
	if (s->state & IMAPD_S_LOGGED)
		buf_puts(out, " PREVIEW");
	/* RFC 4978: COMPRESS is valid after login only; once active, it
	 * stays listed (a second COMPRESS gets NO [COMPRESSIONACTIVE]) */
	if ((s->state & IMAPD_S_LOGGED) && var_imapd_compress)
		buf_puts(out, " COMPRESS=DEFLATE");
}

/* imapd_cmd_no_args - the command takes no arguments: true if it has
 * none, else BAD */
static bool
imapd_cmd_no_args(struct imapd_session *s, struct imap_cursor *c)
{
	struct imap_token t;

	if (imap_cursor_next(c, &t) == IMAP_TOK_END)
		return true;
	imapd_session_bad(s, "BAD Syntax: %s takes no arguments",
	    s->base.last_cmd);
	return false;
}

/* imapd_cmd_capa - CAPABILITY */
static void
imapd_cmd_capa(struct imapd_session *s, struct imap_cursor *c)
{
	if (!imapd_cmd_no_args(s, c))
		return;
	buf_reset(&s->scratch);
	imapd_cmd_capability(s, &s->scratch);
	imapd_session_reply(s, "* CAPABILITY %s", buf_cstr(&s->scratch));
	buf_reset(&s->scratch);
	imapd_session_tagged(s, "OK CAPABILITY completed");
}

/* imapd_cmd_noop - NOOP (with a mailbox selected: its changes first) */
static void
imapd_cmd_noop(struct imapd_session *s, struct imap_cursor *c)
{
	if (s->state == IMAPD_S_SELECTED)	/* with its changes */
		imapd_sel_noop(s, c);
	else if (imapd_cmd_no_args(s, c))
		imapd_session_tagged(s, "OK NOOP completed");
}

/* imapd_cmd_logout - LOGOUT: BYE, then the tagged OK, then close */
static void
imapd_cmd_logout(struct imapd_session *s, struct imap_cursor *c)
{
	if (!imapd_cmd_no_args(s, c))
		return;
	imapd_session_reply(s, "* BYE Logging out");
	imapd_session_tagged(s, "OK LOGOUT completed");
	imapd_session_finish(s, "logout");
}

/* imapd_cmd_starttls - STARTTLS (RFC 9051 6.2.1) */
static void
imapd_cmd_starttls(struct imapd_session *s, struct imap_cursor *c)
{
	if (!imapd_cmd_no_args(s, c))
		return;
	if (stream_is_tls(s->base.stream)) {
		imapd_session_bad(s, "BAD TLS is already active");
		return;
	}
	if (imapd_tls_ctx == NULL) {
		imapd_session_bad(s, "BAD STARTTLS is not available");
		return;
	}
	imapd_session_tagged(s, "OK Begin TLS negotiation now");
	imapd_session_starttls(s);
}

/* imapd_cmd_enable - ENABLE capability... (RFC 5161, RFC 9051 6.3.1):
 * IMAP4rev2 and UTF8=ACCEPT (RFC 6855: UTF-8 mailbox names) are known;
 * others are ignored as the RFC says */
static void
imapd_cmd_enable(struct imapd_session *s, struct imap_cursor *c)
{
	struct imap_token t;
	struct buf more = BUF_INIT;
	bool any = false, rev2 = false, utf8 = false;

	while (imap_cursor_next(c, &t) == IMAP_TOK_ATOM) {
		any = true;
		if (imap_tok_is(&t, "IMAP4rev2") && !s->rev2)
			rev2 = true;
		else if (imap_tok_is(&t, "UTF8=ACCEPT") &&
		    !imapd_store_utf8(s))
			utf8 = true;
		else	/* CONDSTORE, QRESYNC (imapd_select.c) */
			(void)imapd_sel_enable(s, t.p, t.len, &more);
	}
	if (t.type != IMAP_TOK_END || !any) {
		buf_free(&more);
		imapd_session_bad(s, "BAD Syntax: ENABLE capability...");
		return;
	}
	if (rev2)
		s->rev2 = true;
	if (utf8)
		imapd_store_set_utf8(s);
	imapd_session_reply(s, "* ENABLED%s%s%s", rev2 ? " IMAP4rev2" : "",
	    utf8 ? " UTF8=ACCEPT" : "", buf_cstr(&more));
	buf_free(&more);
	imapd_session_tagged(s, "OK ENABLE completed");
}

/* imapd_cmd_id - ID NIL | ID (field value ...) (RFC 2971), bounded:
 * 30 pairs, fields of 30 octets, values of 1024 */
static void
imapd_cmd_id(struct imapd_session *s, struct imap_cursor *c)
{
	struct imap_token t, v;
	int pairs = 0;

	if (imap_cursor_next(c, &t) == IMAP_TOK_ATOM && imap_tok_is(&t,
	    "NIL")) {
		if (imap_cursor_next(c, &t) != IMAP_TOK_END)
			goto bad;
	} else if (t.type == IMAP_TOK_OPEN) {
		while (imap_cursor_next(c, &t) == IMAP_TOK_STRING) {
			if (imap_cursor_next(c, &v) != IMAP_TOK_STRING &&
			    !imap_tok_is(&v, "NIL"))
				goto bad;
			if (++pairs > IMAPD_ID_PAIRS_MAX ||
			    t.len > IMAPD_ID_FIELD_MAX ||
			    v.len > IMAPD_ID_VALUE_MAX)
				goto bad;
		}
		if (t.type != IMAP_TOK_CLOSE ||
		    imap_cursor_next(c, &t) != IMAP_TOK_END)
			goto bad;
	} else {
		goto bad;
	}
	imapd_session_reply(s, "* ID (\"name\" \"herald\")");
	imapd_session_tagged(s, "OK ID completed");
	return;
bad:
	imapd_session_bad(s, "BAD Syntax: ID NIL or ID (\"field\" \"value\" "
	    "...), at most %d pairs", IMAPD_ID_PAIRS_MAX);
}

/* imapd_cmd_namespace - NAMESPACE (RFC 2342): one personal namespace,
 * "" with "." as the hierarchy delimiter, as Maildir++ folders are */
static void
imapd_cmd_namespace(struct imapd_session *s, struct imap_cursor *c)
{
	if (!imapd_cmd_no_args(s, c))
		return;
	imapd_session_reply(s, "* NAMESPACE ((\"\" \".\")) NIL NIL");
	imapd_session_tagged(s, "OK NAMESPACE completed");
}

#define S_ANY IMAPD_S_ANY
#define S_NOAUTH IMAPD_S_NOAUTH
#define S_LOGGED IMAPD_S_LOGGED
#define S_SEL IMAPD_S_SELECTED

const struct imapd_cmd imapd_cmd_table[] = {
	/* any state (RFC 9051 6.1) */
	{"CAPABILITY", S_ANY, imapd_cmd_capa},
	{"NOOP", S_ANY, imapd_cmd_noop},
	{"LOGOUT", S_ANY, imapd_cmd_logout},
	{"ID", S_ANY, imapd_cmd_id},
	/* not authenticated (6.2) */
	{"STARTTLS", S_NOAUTH, imapd_cmd_starttls},
	{"AUTHENTICATE", S_NOAUTH, imapd_auth_authenticate},
	{"LOGIN", S_NOAUTH, imapd_auth_login},
	/* authenticated (6.3) */
	{"ENABLE", S_LOGGED, imapd_cmd_enable},
	{"NAMESPACE", S_LOGGED, imapd_cmd_namespace},
	{"SELECT", S_LOGGED, imapd_sel_select},
	{"EXAMINE", S_LOGGED, imapd_sel_examine},
	{"CREATE", S_LOGGED, imapd_mailbox_create},
	{"DELETE", S_LOGGED, imapd_mailbox_delete},
	{"RENAME", S_LOGGED, imapd_mailbox_rename},
	{"SUBSCRIBE", S_LOGGED, imapd_mailbox_subscribe},
	{"UNSUBSCRIBE", S_LOGGED, imapd_mailbox_unsubscribe},
	{"LIST", S_LOGGED, imapd_list_list},
	{"LSUB", S_LOGGED, imapd_list_lsub},
	{"STATUS", S_LOGGED, imapd_mailbox_status},
	{"APPEND", S_LOGGED, imapd_append_cmd},
	{"IDLE", S_LOGGED, imapd_idle_cmd},
	/* QUOTA (RFC 9208) */
	{"GETQUOTA", S_LOGGED, imapd_mailbox_getquota},
	{"GETQUOTAROOT", S_LOGGED, imapd_mailbox_getquotaroot},
	{"SETQUOTA", S_LOGGED, imapd_mailbox_setquota},
	/* COMPRESS=DEFLATE (RFC 4978 section 3), imapd_compress.c */
	{"COMPRESS", S_LOGGED, imapd_compress_cmd},
	/* selected (6.4) */
	{"CLOSE", S_SEL, imapd_sel_close},
	{"UNSELECT", S_SEL, imapd_sel_unselect},
	{"EXPUNGE", S_SEL, imapd_expunge_cmd},
	{"SEARCH", S_SEL, imapd_search_cmd},
	{"SORT", S_SEL, imapd_sort_cmd},
	{"THREAD", S_SEL, imapd_thread_cmd},
	{"FETCH", S_SEL, imapd_fetch_cmd},
	{"STORE", S_SEL, imapd_store_cmd},
	{"COPY", S_SEL, imapd_copy_cmd},
	{"MOVE", S_SEL, imapd_move_cmd},
	{"UID", S_SEL, imapd_uid_cmd},
	{"CHECK", S_SEL, imapd_sel_check},
	{NULL, 0, NULL},
};

/* imapd_cmd_find - the entry of a command name, any case */
const struct imapd_cmd *
imapd_cmd_find(const char *name, size_t len)
{
	for (const struct imapd_cmd *c = imapd_cmd_table; c->name; c++)
		if (strlen(c->name) == len &&
		    str_ncasecmp(c->name, name, len) == 0)
			return c;
	return NULL;
}

/* imapd_cmd_wrong_state - the answer to a command s cannot run now */
static void
imapd_cmd_wrong_state(struct imapd_session *s, const struct imapd_cmd *cmd)
{
	if (s->state == IMAPD_S_NOAUTH)
		imapd_session_bad(s, "BAD %s: Not logged in", cmd->name);
	else if (cmd->states == IMAPD_S_NOAUTH)
		imapd_session_bad(s, "BAD %s: Already logged in", cmd->name);
	else
		imapd_session_bad(s, "BAD %s: No mailbox selected",
		    cmd->name);
}

/*
 * imapd_cmd_foreign - a line of another protocol (an HTTP or proxy
 * method, a header field, SMTP's or POP3's greeting commands) or binary
 * junk: a browser or proxy tricked into connecting, or a TLS client on
 * the plaintext port. The session ends at once (as pop3d's and smtpd's
 * do) instead of answering each line with BAD.
 */
static bool
imapd_cmd_foreign(struct imapd_session *s)
{
	static const char *const other[] = {"EHLO", "HELO", "USER", "CAPA",
	    NULL};
	const char *p = s->parser.cmd.data ? s->parser.cmd.data : "";
	size_t n = 0;

	while (n < s->parser.cmd.len && p[n] != ' ')
		n++;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] < 0x21 || (unsigned char)p[i] > 0x7e)
			goto foreign;
	if (n == 0 || !foreign_verb(p, n, other))
		return false;
foreign:
	buf_reset(&s->scratch);
	str_printable(&s->scratch, p, s->parser.cmd.len, 100);
	msg_warn("non-IMAP command from [%s]: %s", s->base.peer.addr,
	    buf_cstr(&s->scratch));
	buf_reset(&s->scratch);
	imapd_session_reply(s, "* BYE Not an IMAP command");
	imapd_session_finish(s, "non-IMAP command");
	return true;
}

/* imapd_cmd_dispatch - run the command in s->parser.cmd */
void
imapd_cmd_dispatch(struct imapd_session *s)
{
	struct imap_cursor c, check;
	struct imap_token tag, name;
	const struct imapd_cmd *cmd;

	if (imapd_idle_line(s))		/* DONE of IDLE (imapd_idle.c) */
		return;
	buf_reset(&s->tag);
	s->base.last_cmd = "UNKNOWN";
	imap_cursor_init(&c, &s->parser, 0);
	if (s->state == IMAPD_S_NOAUTH &&
	    ++s->commands > var_imapd_command_limit) {
		msg_info("too many commands before login from [%s]",
		    s->base.peer.addr);
		imapd_session_reply(s, "* BYE Too many commands before login");
		imapd_session_finish(s, "too many commands before login");
		return;
	}
	if (imap_cursor_next(&c, &tag) != IMAP_TOK_ATOM ||
	    !imap_tag_ok(tag.p, tag.len)) {
		if (imapd_cmd_foreign(s))
			return;
		imapd_session_bad(s, "BAD Missing or invalid tag");
		return;
	}
	buf_append(&s->tag, tag.p, tag.len);
	if (imap_cursor_next(&c, &name) != IMAP_TOK_ATOM) {
		if (imapd_cmd_foreign(s))
			return;
		imapd_session_bad(s, "BAD Missing command name");
		return;
	}
	if ((cmd = imapd_cmd_find(name.p, name.len)) == NULL) {
		if (imapd_cmd_foreign(s))
			return;
		imapd_session_bad(s, "BAD Unknown command");
		return;
	}
	s->base.last_cmd = cmd->name;
	check = c;
	if (imap_syntax_check(&check) < 0) {
		imapd_session_bad(s, "BAD %s: %s", cmd->name, check.error);
		return;
	}
	if ((cmd->states & s->state) == 0) {
		imapd_cmd_wrong_state(s, cmd);
		return;
	}
	if (cmd->fn == NULL) {
		imapd_session_tagged(s, "NO [UNAVAILABLE] %s is not available "
		    "in this version of herald", cmd->name);
		return;
	}
	cmd->fn(s, &c);
}
