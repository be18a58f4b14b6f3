/*
 * submit - the client of local submission (see submit.h): one ESMTP
 * transaction over the UNIX socket, each reply awaited with a deadline.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/sock.h"
#include "mail/addr.h"
#include "mail/params.h"
#include "mail/submit.h"

#define SUBMIT_REPLY_MAX 8192	/* bytes of one (multi-line) reply */

struct submit_conn {
	int fd;
	int timeout_ms;
	struct buf in;		/* received, not yet taken */
};

/* submit_socket_path - <run_directory>/submit */
void
submit_socket_path(struct buf *out)
{
	buf_reset(out);
	buf_printf(out, "%s/submit", var_run_directory);
}

/* submit_ctl_free - true if s holds no byte below 0x20 and no 0x7f */
static bool
submit_ctl_free(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

/*
 * submit_check - can every address and the EHLO name go into a command
 * line? A CR or LF would end the command and let the rest of the text
 * be read as commands of its own (a forged transaction), so this is
 * checked before anything is sent, however the caller checked.
 */
int
submit_check(const struct submit_msg *m, struct buf *why)
{
	if (m->helo == NULL || *m->helo == '\0' || !submit_ctl_free(m->helo)) {
		buf_puts(why, "bad EHLO name: empty or a control character");
		return -1;
	}
	if (m->sender == NULL || !submit_ctl_free(m->sender)) {
		buf_puts(why, "control character in the sender address");
		return -1;
	}
	if (m->nrcpt == 0) {
		buf_puts(why, "no recipients");
		return -1;
	}
	for (size_t i = 0; i < m->nrcpt; i++) {
		if (m->rcpts[i] == NULL || *m->rcpts[i] == '\0' ||
		    !submit_ctl_free(m->rcpts[i])) {
			buf_printf(why, "recipient %zu: empty, or a control "
			    "character in the address", i + 1);
			return -1;
		}
	}
	return 0;
}

/* submit_utf8 - does any address of m need SMTPUTF8? */
static bool
submit_utf8(const struct submit_msg *m)
{
	if (addr_is_utf8(m->sender))
		return true;
	for (size_t i = 0; i < m->nrcpt; i++)
		if (addr_is_utf8(m->rcpts[i]))
			return true;
	return false;
}

/* submit_write - all of p; -1 with why */
static int
submit_write(struct submit_conn *c, const char *p, size_t n, struct buf *why)
{
	while (n > 0) {
		struct pollfd pfd = {c->fd, POLLOUT, 0};
		ssize_t w;
		int r = poll(&pfd, 1, c->timeout_ms);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			buf_puts(why, r == 0 ? "timeout sending to herald" :
			    strerror(errno));
			return -1;
		}
		w = send(c->fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (w < 0) {
			buf_printf(why, "send: %s", strerror(errno));
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* submit_reply - one reply: its code (and text lines in text), or -1
 * with why on a timeout, a closed connection or a malformed reply */
static int
submit_reply(struct submit_conn *c, struct buf *text, struct buf *why)
{
	buf_reset(text);
	for (;;) {
		char *nl = c->in.len ? memchr(c->in.data, '\n', c->in.len) :
		    NULL;

		if (nl != NULL) {
			size_t len = (size_t)(nl - c->in.data) + 1;
			bool last = len >= 5 && c->in.data[3] == ' ';
			int code;

			if (len < 5 || c->in.data[0] < '2' ||
			    c->in.data[0] > '5' ||
			    (c->in.data[3] != ' ' && c->in.data[3] != '-')) {
				buf_puts(why, "malformed reply from herald");
				return -1;
			}
			code = (c->in.data[0] - '0') * 100 +
			    (c->in.data[1] - '0') * 10 + (c->in.data[2] - '0');
			buf_append(text, c->in.data, len);
			memmove(c->in.data, c->in.data + len, c->in.len - len);
			c->in.len -= len;
			if (last) {
				while (text->len > 0 &&
				    (text->data[text->len - 1] == '\n' ||
				    text->data[text->len - 1] == '\r'))
					text->len--;
				text->data[text->len] = '\0';
				return code;
			}
			continue;
		}
		if (c->in.len >= SUBMIT_REPLY_MAX) {
			buf_puts(why, "reply from herald too long");
			return -1;
		}
		{
			struct pollfd pfd = {c->fd, POLLIN, 0};
			char chunk[1024];
			ssize_t r;
			int p = poll(&pfd, 1, c->timeout_ms);

			if (p < 0 && errno == EINTR)
				continue;
			if (p <= 0) {
				buf_puts(why, p == 0 ? "timeout waiting for "
				    "herald" : strerror(errno));
				return -1;
			}
			r = recv(c->fd, chunk, sizeof(chunk), 0);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				buf_puts(why, "herald closed the connection");
				return -1;
			}
			buf_append(&c->in, chunk, (size_t)r);
		}
	}
}

/* submit_cmd - send a command line, read the reply: its code or -1 */
static int
submit_cmd(struct submit_conn *c, const char *line, struct buf *text,
    struct buf *why)
{
	if (submit_write(c, line, strlen(line), why) < 0)
		return -1;
	return submit_reply(c, text, why);
}

/* submit_data - the message, dot-stuffed, then the terminator */
static int
submit_data(struct submit_conn *c, const struct submit_msg *m,
    struct buf *why)
{
	struct buf out = BUF_INIT;
	bool bol = true;
	int rc;

	buf_reserve(&out, m->len + m->len / 64 + 8);
	for (size_t i = 0; i < m->len; i++) {
		if (bol && m->data[i] == '.')
			buf_putc(&out, '.');
		buf_putc(&out, m->data[i]);
		bol = m->data[i] == '\n';
	}
	if (!bol)
		buf_puts(&out, "\r\n");
	buf_puts(&out, ".\r\n");
	rc = submit_write(c, out.data, out.len, why);
	buf_free(&out);
	return rc;
}

/* submit_result_of - what a failed reply means */
static enum submit_result
submit_result_of(int code)
{
	if (code < 0 || (code >= 400 && code < 500))
		return SUBMIT_TEMPFAIL;
	if (code >= 500)
		return SUBMIT_REJECTED;
	return SUBMIT_PROTOCOL;
}

/* submit_send - one transaction over the submission socket */
enum submit_result
submit_send(const char *path, const struct submit_msg *m, int timeout_ms,
    struct buf *why)
{
	struct submit_conn c = {-1, timeout_ms, BUF_INIT};
	struct buf line = BUF_INIT, text = BUF_INIT;
	enum submit_result res = SUBMIT_PROTOCOL;
	int code;

	if (submit_check(m, why) < 0)
		return SUBMIT_BAD_INPUT;
	if ((c.fd = sock_connect_unix(path, false, why)) < 0) {
		buf_reset(why);
		buf_printf(why, "herald is not running (%s: %s)", path,
		    strerror(errno));
		return SUBMIT_NOT_RUNNING;
	}
	if ((code = submit_reply(&c, &text, why)) != 220)
		goto fail;
	buf_printf(&line, "EHLO %s\r\n", m->helo);
	if ((code = submit_cmd(&c, buf_cstr(&line), &text, why)) != 250)
		goto fail;
	buf_set(&line, "MAIL FROM:<");
	addr_externalize(&line, m->sender);
	buf_puts(&line, ">");
	if (m->len > 0)
		buf_printf(&line, " SIZE=%zu", m->len);
	if (submit_utf8(m))
		buf_puts(&line, " SMTPUTF8");
	buf_puts(&line, "\r\n");
	if ((code = submit_cmd(&c, buf_cstr(&line), &text, why)) != 250)
		goto fail;
	for (size_t i = 0; i < m->nrcpt; i++) {
		buf_set(&line, "RCPT TO:<");
		addr_externalize(&line, m->rcpts[i]);
		buf_puts(&line, ">\r\n");
		code = submit_cmd(&c, buf_cstr(&line), &text, why);
		if (code != 250 && code != 251) {
			if (code >= 500 && code < 600)
				res = SUBMIT_RCPT_REJECTED;
			goto fail;
		}
	}
	if ((code = submit_cmd(&c, "DATA\r\n", &text, why)) != 354)
		goto fail;
	if (submit_data(&c, m, why) < 0) {
		code = -1;
		goto fail;
	}
	if ((code = submit_reply(&c, &text, why)) != 250)
		goto fail;
	(void)submit_cmd(&c, "QUIT\r\n", &text, why);
	res = SUBMIT_OK;
	goto out;
fail:
	if (res != SUBMIT_RCPT_REJECTED)
		res = submit_result_of(code);
	if (code >= 0) {
		buf_reset(why);
		buf_puts(why, buf_cstr(&text));
	}
out:
	(void)close(c.fd);
	buf_free(&c.in);
	buf_free(&line);
	buf_free(&text);
	return res;
}
