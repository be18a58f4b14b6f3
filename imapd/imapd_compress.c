/*
 * imapd_compress - COMPRESS=DEFLATE (RFC 4978): the COMPRESS command of
 * the authenticated and selected states, and the end of a session whose
 * compressed input turned out corrupt.
 *
 * The deflate layer itself is the stream's (lib/base/stream.h): the
 * tagged OK is queued, then stream_compress_start() makes it the last
 * plain response and every byte the client sent behind the command line
 * compressed input. Inflated input is bounded by the stream's input
 * buffer and then by the command parser's line and literal bounds, so a
 * decompression bomb ends as any over-long line does. STARTTLS cannot
 * follow (it is refused after login), so the stream's panic on a
 * compressed STARTTLS cannot be reached. imapd_compress = no turns the
 * extension off: not advertised, and the command gets BAD.
 */
#include "base/log.h"
#include "base/stream.h"
#include "mail/params.h"
#include "imapd.h"

/* imapd_compress_cmd - COMPRESS mechanism (RFC 4978 section 3) */
void
imapd_compress_cmd(struct imapd_session *s, struct imap_cursor *c)
{
	struct imap_token t, end;

	if (!var_imapd_compress) {
		imapd_session_bad(s, "BAD COMPRESS is disabled on this server");
		return;
	}
	if (imap_cursor_next(c, &t) != IMAP_TOK_ATOM ||
	    imap_cursor_next(c, &end) != IMAP_TOK_END) {
		imapd_session_bad(s, "BAD Syntax: COMPRESS DEFLATE");
		return;
	}
	if (!imap_tok_is(&t, "DEFLATE")) {
		imapd_session_bad(s, "BAD Unknown compression mechanism "
		    "(DEFLATE is supported)");
		return;
	}
	if (stream_is_compressed(s->base.stream)) {
		/* section 3: the resp-text says which layer compresses */
		imapd_session_tagged(s, "NO [COMPRESSIONACTIVE] DEFLATE is "
		    "already active (COMPRESS)");
		return;
	}
	imapd_session_tagged(s, "OK DEFLATE active");
	stream_compress_start(s->base.stream);
	msg_info("compress: user=<%s> client=[%s] mechanism=DEFLATE",
	    buf_cstr(&s->login), s->base.peer.addr);
}

/*
 * imapd_compress_input_failed - the compressed input is corrupt (the
 * stream's input has ended): say why in "* BYE" and close. True if so.
 */
bool
imapd_compress_input_failed(struct imapd_session *s)
{
	const char *why = stream_input_error(s->base.stream);

	if (why == NULL || s->base.closed || s->state == IMAPD_S_LOGOUT)
		return false;
	msg_warn("corrupt compressed input from [%s]: %s", s->base.peer.addr,
	    why);
	imapd_session_reply(s, "* BYE Corrupt compressed input: %.200s", why);
	imapd_session_finish(s, "corrupt compressed input");
	return true;
}
