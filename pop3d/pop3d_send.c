/*
 * pop3d_send - multi-line replies produced a piece at a time: the message
 * encoder of RETR and TOP, and the pump that feeds LIST, UIDL and message
 * files into the stream only while its output is low.
 *
 * A message is read from its file in POP3D_SEND_CHUNK pieces; each piece
 * is encoded (LF -> CRLF, dot-stuffing, TOP's line limit) and queued. When
 * more than POP3D_OUTPUT_HIGH bytes wait to be sent, the pump stops and
 * the session calls it again once the client has read them (STREAM_DRAINED),
 * so a session holds at most about HIGH + 2 * CHUNK bytes of a reply,
 * whatever the size of the message.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/stream.h"
#include "mail/params.h"
#include "pop3d.h"

#define POP3D_SEND_CHUNK (16 * 1024)	/* bytes read from a message at once */
#define POP3D_SEND_LINES 256		/* LIST/UIDL lines per round */

/* pop3d_enc_init - an encoder at the start of a message */
void
pop3d_enc_init(struct pop3d_enc *e, long long body_lines)
{
	memset(e, 0, sizeof(*e));
	e->bol = true;
	e->body_lines = body_lines;
	/* TOP n 0 ends at the blank line after the header */
}

/*
 * pop3d_enc_feed - encode p[0..n) into out. Each input byte becomes at
 * most two output bytes (CR before a bare LF, or a second "." at a line
 * start), so out grows by at most 2n.
 */
size_t
pop3d_enc_feed(struct pop3d_enc *e, const char *p, size_t n,
    struct buf *out)
{
	char *o;
	size_t i;

	if (e->done)
		return 0;
	buf_reserve(out, 2 * n + 1);
	o = out->data + out->len;
	for (i = 0; i < n && !e->done; i++) {
		char c = p[i];

		if (c == '\n') {
			bool blank = e->line_bytes == 0 ||
			    (e->line_bytes == 1 && e->cr);

			if (!e->cr)
				*o++ = '\r';
			*o++ = '\n';
			if (!e->in_body) {
				if (blank) {
					e->in_body = true;
					if (e->body_lines == 0)
						e->done = true;
				}
			} else if (e->body_lines > 0 &&
			    --e->body_lines == 0) {
				e->done = true;
			}
			e->bol = true;
			e->cr = false;
			e->line_bytes = 0;
			continue;
		}
		if (e->bol && c == '.')
			*o++ = '.';
		*o++ = c;
		e->bol = false;
		e->cr = c == '\r';
		e->line_bytes++;
	}
	out->len = (size_t)(o - out->data);
	out->data[out->len] = '\0';
	return i;
}

/* pop3d_enc_end - finish the last line, then the ".CRLF" terminator */
void
pop3d_enc_end(struct pop3d_enc *e, struct buf *out)
{
	if (!e->bol)
		buf_puts(out, e->cr ? "\n" : "\r\n");
	buf_puts(out, ".\r\n");
	e->bol = true;
	e->cr = false;
	e->done = true;
}

/* pop3d_send_done - the reply is complete: back to TRANSACTION */
static void
pop3d_send_done(struct pop3d_session *s)
{
	struct pop3d_send *snd = &s->send;

	if (snd->fd >= 0)
		(void)close(snd->fd);
	snd->fd = -1;
	snd->kind = POP3D_SEND_NONE;
	if (s->state == POP3D_S_SEND)
		s->state = POP3D_S_TRANS;
	if (s->stop_after_send) {
		pop3d_session_reply(s, "-ERR [SYS/TEMP] Server shutting down");
		pop3d_session_finish(s, "shutdown");
		return;
	}
	/* pipelined commands behind this one may run now */
	session_set_pause(&s->base, POP3D_PAUSE_SEND, false);
}

/* pop3d_send_start - begin a multi-line reply (its +OK is queued) */
void
pop3d_send_start(struct pop3d_session *s, enum pop3d_send_kind kind, int fd,
    long long body_lines)
{
	struct pop3d_send *snd = &s->send;

	snd->kind = kind;
	snd->next = 0;
	snd->fd = fd;
	snd->off = 0;
	snd->sent = 0;
	snd->top = body_lines >= 0;
	pop3d_enc_init(&snd->enc, body_lines);
	s->state = POP3D_S_SEND;
	session_set_pause(&s->base, POP3D_PAUSE_SEND, true);
	pop3d_send_pump(s);
}

/* pop3d_send_lines - one round of LIST or UIDL lines; true when done */
static bool
pop3d_send_lines(struct pop3d_session *s)
{
	struct pop3d_send *snd = &s->send;
	struct pop3d_maildrop *md = s->md;
	int lines = 0;

	buf_reset(&s->scratch);
	for (; snd->next < md->n && lines < POP3D_SEND_LINES; snd->next++) {
		const struct pop3d_msg *m = &md->msgs[snd->next];

		if (m->deleted)
			continue;
		if (snd->kind == POP3D_SEND_LIST)
			buf_printf(&s->scratch, "%zu %lld\r\n", snd->next + 1,
			    m->size);
		else
			buf_printf(&s->scratch, "%zu %s\r\n", snd->next + 1,
			    m->uidl);
		lines++;
	}
	if (snd->next >= md->n)
		buf_puts(&s->scratch, ".\r\n");
	stream_write(s->base.stream, s->scratch.data, s->scratch.len);
	buf_reset(&s->scratch);
	return snd->next >= md->n;
}

/* pop3d_send_msg - one chunk of a message; 1 done, 0 more, -1 failed */
static int
pop3d_send_msg(struct pop3d_session *s)
{
	struct pop3d_send *snd = &s->send;
	char chunk[POP3D_SEND_CHUNK];
	ssize_t r;

	do
		r = pread(snd->fd, chunk, sizeof(chunk), snd->off);
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		msg_warn("read message for %s: %m", buf_cstr(&s->login));
		return -1;
	}
	buf_reset(&s->scratch);
	if (r > 0) {
		snd->off += r;
		(void)pop3d_enc_feed(&snd->enc, chunk, (size_t)r, &s->scratch);
	}
	if (r == 0 || snd->enc.done)
		pop3d_enc_end(&snd->enc, &s->scratch);
	snd->sent += (long long)s->scratch.len;
	stream_write(s->base.stream, s->scratch.data, s->scratch.len);
	buf_reset(&s->scratch);
	/* progress: a slow reader of a big message is not idle */
	stream_set_idle_timeout(s->base.stream, var_pop3d_idle_timeout * 1000);
	return snd->enc.done ? 1 : 0;
}

/* pop3d_send_pump - produce more of the reply while output is low */
void
pop3d_send_pump(struct pop3d_session *s)
{
	while (!s->base.closed && s->state == POP3D_S_SEND) {
		int r;

		if (pop3d_session_backlog(s))
			return;	/* STREAM_DRAINED brings us back */
		switch (s->send.kind) {
		case POP3D_SEND_LIST:
		case POP3D_SEND_UIDL:
			r = pop3d_send_lines(s) ? 1 : 0;
			break;
		case POP3D_SEND_MSG:
			r = pop3d_send_msg(s);
			break;
		default:
			msg_panic("pop3d_send_pump: nothing to send");
		}
		if (r < 0) {
			/* +OK went out already: no -ERR is possible now */
			pop3d_send_abort(s);
			pop3d_session_finish(s, "message read error");
			return;
		}
		if (r > 0) {
			if (s->send.kind == POP3D_SEND_MSG && !s->send.top)
				s->retr_bytes += s->send.sent;
			pop3d_send_done(s);
			return;
		}
	}
}

/* pop3d_send_abort - drop a reply in progress */
void
pop3d_send_abort(struct pop3d_session *s)
{
	if (s->send.fd >= 0)
		(void)close(s->send.fd);
	s->send.fd = -1;
	s->send.kind = POP3D_SEND_NONE;
}
