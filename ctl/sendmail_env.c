/*
 * sendmail_env - the envelope of the sendmail command (sendmail.h): the
 * sender and the recipients, each checked with the path parser smtpd
 * uses for MAIL FROM and RCPT TO before anything is sent.
 *
 * Why here and not only in smtpd: the addresses are written into command
 * lines by lib/mail/submit.c, and an address holding CR or LF would end
 * its command early; what follows would reach smtpd as commands of their
 * own (a forged transaction, from any sender). smtpd cannot tell those
 * from ours, so sendmail must never write them.
 */
#include <string.h>
#include <sysexits.h>

#include "base/buf.h"
#include "base/mem.h"
#include "mail/addr.h"
#include "sendmail.h"

/* sendmail_env_ctl - true if s[0..n) holds a byte below 0x20 or 0x7f */
static bool
sendmail_env_ctl(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return true;
	return false;
}

/* sendmail_env_address - check one address and take its internal form */
int
sendmail_env_address(const char *s, unsigned flags, const char *hostname,
    struct buf *out, struct buf *why)
{
	struct buf path = BUF_INIT, err = BUF_INIT;
	size_t n = strlen(s), used = 0;
	const char *p = s;
	int rc = -1;

	buf_reset(out);
	/* said before the parser would, and without echoing the address:
	 * its line ends would go to the terminal or the log as they are */
	if (sendmail_env_ctl(s, n)) {
		buf_puts(why, "bad address: it holds a control character "
		    "(CR, LF, TAB, ...)");
		return -1;
	}
	if (n >= 2 && p[0] == '<' && p[n - 1] == '>') {
		p++;
		n -= 2;
	}
	if (n == 0) {
		if (flags & SENDMAIL_ADDR_SENDER)
			return 0;
		buf_puts(why, "bad address: empty");
		return -1;
	}
	buf_putc(&path, '<');
	buf_append(&path, p, n);
	if (memchr(p, '@', n) == NULL)
		buf_printf(&path, "@%s", hostname);
	buf_putc(&path, '>');
	if (addr_parse_path(path.data, path.len, ADDR_ALLOW_UTF8, out, &used,
	    &err) < 0) {
		buf_printf(why, "\"%s\": %s", s, buf_cstr(&err));
	} else if (used != path.len) {
		buf_printf(why, "\"%s\": bad address syntax: text after the "
		    "address", s);
	} else if (out->len == 0 || strchr(buf_cstr(out), '@') == NULL) {
		/* "<postmaster>" comes back without a domain; we gave it one,
		 * so this cannot happen, but an address without one must not
		 * go out either way */
		buf_printf(why, "\"%s\": bad address: no domain", s);
	} else {
		rc = 0;
	}
	if (rc < 0)
		buf_reset(out);
	buf_free(&path);
	buf_free(&err);
	return rc;
}

/* sendmail_env_add - one more checked recipient */
static void
sendmail_env_add(struct sendmail_env *e, const struct buf *addr)
{
	e->rcpt = xreallocarray(e->rcpt, e->nrcpt + 1, sizeof(*e->rcpt));
	e->rcpt[e->nrcpt++] = xstrdup(buf_cstr(addr));
}

/* sendmail_env_check - sendmail_env_address, with what the address was
 * for ("sender", "recipient", ...) in front of why */
static int
sendmail_env_check(const char *what, const char *s, unsigned flags,
    const char *hostname, struct buf *out, struct buf *why)
{
	struct buf err = BUF_INIT;
	int rc = sendmail_env_address(s, flags, hostname, out, &err);

	if (rc < 0)
		buf_printf(why, "%s%s%s", what, buf_cstr(&err)[0] == '"' ? " " :
		    ": ", buf_cstr(&err));
	buf_free(&err);
	return rc;
}

/* sendmail_env_build - sender and recipients, all checked */
int
sendmail_env_build(const struct sendmail_opts *o, const char *login,
    const struct buf *hdr, size_t nhdr, const char *hostname,
    struct sendmail_env *e, struct buf *why)
{
	struct buf one = BUF_INIT;
	int code = EX_USAGE;

	memset(e, 0, sizeof(*e));
	buf_init(&e->sender);
	if (o->sender != NULL) {
		if (sendmail_env_check("sender (-f)", o->sender,
		    SENDMAIL_ADDR_SENDER, hostname, &e->sender, why) < 0)
			goto fail;
	} else if (sendmail_env_check("sender (the login name)", login, 0,
	    hostname, &e->sender, why) < 0) {
		buf_puts(why, "; give one with -f");
		goto fail;
	}
	for (int i = 0; i < o->nrcpt; i++) {
		if (sendmail_env_check("recipient", o->rcpts[i], 0, hostname,
		    &one, why) < 0)
			goto fail;
		sendmail_env_add(e, &one);
	}
	for (size_t i = 0, off = 0; i < nhdr && off < hdr->len; i++) {
		const char *a = hdr->data + off;

		off += strlen(a) + 1;
		if (sendmail_env_check("recipient in the header (-t)", a, 0,
		    hostname, &one, why) < 0) {
			code = EX_DATAERR;
			goto fail;
		}
		sendmail_env_add(e, &one);
	}
	if (e->nrcpt == 0) {
		buf_puts(why, "no recipients in the message header");
		goto fail;
	}
	buf_free(&one);
	return 0;
fail:
	buf_free(&one);
	return code;
}

/* sendmail_env_free - the addresses */
void
sendmail_env_free(struct sendmail_env *e)
{
	for (size_t i = 0; i < e->nrcpt; i++)
		x_free(&e->rcpt[i]);
	x_free(&e->rcpt);
	e->nrcpt = 0;
	buf_free(&e->sender);
}
