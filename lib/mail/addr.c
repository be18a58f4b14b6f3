/*
 * addr - RFC 5321 paths and mailboxes, internal and external forms, xtext.
 *
 * The parser follows RFC 5321 4.1.2 to the letter (with RFC 6531 UTF-8
 * when asked) and knows exactly where a path ends, so the ESMTP
 * parameters after it stay the caller's. It never looks past len, so it
 * is safe on buffers that are not NUL-terminated, and every byte it does
 * not expect (CR, LF, NUL, controls) is a syntax error. Errors are short
 * phrases that fit after a 501 code.
 *
 *   Path           = "<" [ A-d-l ":" ] Mailbox ">"
 *   A-d-l          = At-domain *( "," At-domain )	(parsed, dropped)
 *   Mailbox        = Local-part "@" ( Domain / address-literal )
 *   Local-part     = Dot-string / Quoted-string
 *   Domain         = sub-domain *("." sub-domain)
 */
#include <arpa/inet.h>
#include <string.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/str.h"
#include "mail/addr.h"

#define ADDR_MAX_LABEL 63

/* parser state: a cursor over s[0..len) */
struct addr_p {
	const char *s;
	size_t len;
	size_t pos;
	unsigned flags;
	struct buf *why;
};

/* addr_err - "bad address syntax: <what>"; returns -1 */
static int
addr_err(struct addr_p *p, const char *what)
{
	buf_set(p->why, "bad address syntax: ");
	buf_puts(p->why, what);
	return -1;
}

/* addr_peek - the byte at the cursor, or -1 at the end */
static int
addr_peek(const struct addr_p *p)
{
	return p->pos < p->len ? (unsigned char)p->s[p->pos] : -1;
}

/* addr_utf8_len - length of the valid UTF-8 sequence at s[0..n) that
 * starts with a byte >= 0x80, or 0 (overlong, surrogate, > U+10FFFF,
 * truncated or a stray continuation byte) */
static size_t
addr_utf8_len(const unsigned char *s, size_t n)
{
	unsigned c = s[0], min, cp;
	size_t len;

	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* addr_utf8 - take one UTF-8 character at the cursor into out (if not
 * NULL); -1 with why when not allowed or malformed */
static int
addr_utf8(struct addr_p *p, struct buf *out)
{
	size_t n;

	if (!(p->flags & ADDR_ALLOW_UTF8))
		return addr_err(p, "non-ASCII characters need SMTPUTF8");
	n = addr_utf8_len((const unsigned char *)p->s + p->pos,
	    p->len - p->pos);
	if (n == 0)
		return addr_err(p, "invalid UTF-8");
	if (out != NULL)
		buf_append(out, p->s + p->pos, n);
	p->pos += n;
	return 0;
}

/* addr_is_atext - RFC 5322 atext, ASCII part */
static bool
addr_is_atext(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || (c != '\0' &&
	    strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* addr_is_letdig - a letter or digit */
static bool
addr_is_letdig(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

/* addr_local - Local-part into out (quoted-pairs resolved) */
static int
addr_local(struct addr_p *p, struct buf *out)
{
	size_t start = p->pos, olen = out->len;
	int c;

	if (addr_peek(p) == '"') {
		p->pos++;
		for (;;) {
			c = addr_peek(p);
			if (c < 0)
				return addr_err(p, "unterminated quoted "
				    "string");
			if (c == '"') {
				p->pos++;
				break;
			}
			if (c == '\\') {
				p->pos++;
				c = addr_peek(p);
				if (c < 32 || c > 126)
					return addr_err(p, "bad quoted-pair "
					    "in local part");
				buf_putc(out, c);
				p->pos++;
			} else if (c >= 0x80) {
				if (addr_utf8(p, out) < 0)
					return -1;
			} else if (c >= 32 && c <= 126) {
				buf_putc(out, c);
				p->pos++;
			} else {
				return addr_err(p, "bad character in local "
				    "part");
			}
		}
	} else {
		for (;;) {
			size_t atom = p->pos;

			for (;;) {
				c = addr_peek(p);
				if (c >= 0x80) {
					if (addr_utf8(p, out) < 0)
						return -1;
				} else if (c >= 0 && addr_is_atext(c)) {
					buf_putc(out, c);
					p->pos++;
				} else {
					break;
				}
			}
			if (p->pos == atom) {
				if (atom == start && c != '.')
					break;	/* empty: said below */
				return addr_err(p, "empty label in local "
				    "part (\"..\" or a dot at an end)");
			}
			if (c != '.')
				break;
			buf_putc(out, '.');
			p->pos++;
		}
	}
	if (p->pos - start > ADDR_MAX_LOCAL)
		return addr_err(p, "local part longer than 64 octets");
	if (out->len == olen) {
		c = addr_peek(p);
		if (p->pos == start && c >= 0 && c != '@' && c != '>')
			return addr_err(p, "bad character in local part");
		return addr_err(p, "empty local part");
	}
	return 0;
}

/* addr_literal - "[IPv4]" or "[IPv6:...]" into out, verbatim */
static int
addr_literal(struct addr_p *p, struct buf *out)
{
	const char *open = p->s + p->pos + 1;
	const char *close = memchr(open, ']', p->len - p->pos - 1);
	char text[64];
	unsigned char bin[16];
	size_t n;
	int ok;

	if (close == NULL)
		return addr_err(p, "unterminated address literal");
	n = (size_t)(close - open);
	if (n == 0 || n >= sizeof(text))
		return addr_err(p, "bad address literal");
	memcpy(text, open, n);
	text[n] = '\0';
	if (strlen(text) != n)
		return addr_err(p, "bad address literal");
	if (n > 5 && str_ncasecmp(text, "IPv6:", 5) == 0)
		ok = inet_pton(AF_INET6, text + 5, bin);
	else if (memchr(text, ':', n) != NULL)
		return addr_err(p, "unsupported address literal");
	else
		ok = inet_pton(AF_INET, text, bin);
	if (ok != 1)
		return addr_err(p, "bad address literal");
	buf_append(out, open - 1, n + 2);
	p->pos += n + 2;
	return 0;
}

/* addr_domain_parse - Domain (or an address literal when allowed) */
static int
addr_domain_parse(struct addr_p *p, struct buf *out, bool literal)
{
	size_t start = p->pos;
	int c = addr_peek(p);

	if (c == '[') {
		if (!literal)
			return addr_err(p, "address literal in source route");
		return addr_literal(p, out);
	}
	for (;;) {
		size_t label = p->pos;
		int last = -1;

		for (;;) {
			c = addr_peek(p);
			if (c >= 0x80) {
				if (addr_utf8(p, out) < 0)
					return -1;
				last = 0x80;
			} else if (c >= 0 && (addr_is_letdig(c) ||
			    (c == '-' && p->pos != label))) {
				buf_putc(out, c);
				p->pos++;
				last = c;
			} else {
				break;
			}
		}
		if (p->pos == label) {
			if (c == '-')
				return addr_err(p, "domain label starts "
				    "with a hyphen");
			if (label == start)
				return addr_err(p, c < 0 || c == '>' ?
				    "missing domain" : "bad domain");
			return addr_err(p, "empty label in domain");
		}
		if (last == '-')
			return addr_err(p, "domain label ends with a hyphen");
		if (p->pos - label > ADDR_MAX_LABEL)
			return addr_err(p, "domain label longer than 63 "
			    "octets");
		if (c != '.')
			break;
		buf_putc(out, '.');
		p->pos++;
	}
	if (p->pos - start > ADDR_MAX_DOMAIN)
		return addr_err(p, "domain longer than 255 octets");
	return 0;
}

/* addr_route - A-d-l ":" (each At-domain is checked, then dropped) */
static int
addr_route(struct addr_p *p)
{
	struct buf scratch = BUF_INIT;
	int r = 0;

	for (;;) {
		if (addr_peek(p) != '@') {
			r = addr_err(p, "bad source route");
			break;
		}
		p->pos++;
		buf_reset(&scratch);
		if (addr_domain_parse(p, &scratch, false) < 0) {
			r = -1;
			break;
		}
		if (addr_peek(p) == ',') {
			p->pos++;
			continue;
		}
		if (addr_peek(p) == ':') {
			p->pos++;
			break;
		}
		r = addr_err(p, "bad source route");
		break;
	}
	buf_free(&scratch);
	return r;
}

/* addr_mailbox - Local-part "@" domain into out; with postmaster_ok, a
 * bare "postmaster" (any case) followed by '>' is taken as "postmaster" */
static int
addr_mailbox(struct addr_p *p, struct buf *out, bool postmaster_ok)
{
	size_t start = p->pos;

	if (addr_local(p, out) < 0)
		return -1;
	if (addr_peek(p) != '@') {
		if (postmaster_ok && addr_peek(p) == '>' &&
		    p->pos - start == 10 &&
		    str_ncasecmp(p->s + start, "postmaster", 10) == 0) {
			buf_set(out, "postmaster");
			return 0;
		}
		/* a bare mailbox ends at a space; inside <> (where
		 * postmaster_ok) a space is just a bad character */
		if (addr_peek(p) < 0 || addr_peek(p) == '>' ||
		    (addr_peek(p) == ' ' && !postmaster_ok))
			return addr_err(p, "missing '@domain'");
		return addr_err(p, "bad character in local part");
	}
	buf_putc(out, '@');
	p->pos++;
	return addr_domain_parse(p, out, true);
}

/* addr_parse_path - "<path>" at the start of s */
int
addr_parse_path(const char *s, size_t len, unsigned flags, struct buf *out,
    size_t *consumed, struct buf *why)
{
	struct addr_p p = {s, len, 0, flags, why};
	size_t lt;
	bool route = false;

	buf_reset(out);
	*consumed = 0;
	if (flags & ADDR_LENIENT)
		while (addr_peek(&p) == ' ')
			p.pos++;
	if (addr_peek(&p) != '<') {
		size_t start = p.pos;
		int c;

		if (!(flags & ADDR_LENIENT))
			return addr_err(&p, "missing '<'");
		if (addr_peek(&p) < 0)
			return addr_err(&p, "missing address");
		/* a bare mailbox, up to a space or the end */
		if (addr_mailbox(&p, out, false) < 0)
			goto bad;
		c = addr_peek(&p);
		if (c >= 0 && c != ' ') {
			addr_err(&p, c == '>' ? "missing '<'" :
			    "bad character after address");
			goto bad;
		}
		if (p.pos - start + 2 > ADDR_MAX_PATH) {
			addr_err(&p, "path longer than 256 octets");
			goto bad;
		}
		*consumed = p.pos;
		return 0;
	}
	lt = p.pos++;
	if (addr_peek(&p) == '>') {
		if (!(flags & ADDR_ALLOW_NULL))
			return addr_err(&p, "null path <> not allowed here");
		*consumed = p.pos + 1;
		return 0;
	}
	if (addr_peek(&p) == '@') {
		if (addr_route(&p) < 0)
			goto bad;
		route = true;
	}
	if (addr_mailbox(&p, out, !route) < 0)
		goto bad;
	if (addr_peek(&p) != '>') {
		addr_err(&p, addr_peek(&p) < 0 ? "missing '>'" :
		    "bad character in domain");
		goto bad;
	}
	p.pos++;
	if (p.pos - lt > ADDR_MAX_PATH) {
		addr_err(&p, "path longer than 256 octets");
		goto bad;
	}
	*consumed = p.pos;
	return 0;
bad:
	buf_reset(out);
	return -1;
}

/* addr_parse_mailbox - a bare local@domain making up all of s */
int
addr_parse_mailbox(const char *s, size_t len, unsigned flags,
    struct buf *out, struct buf *why)
{
	struct addr_p p = {s, len, 0, flags, why};

	buf_reset(out);
	if (addr_mailbox(&p, out, false) < 0)
		goto bad;
	if (p.pos != len) {
		addr_err(&p, "bad character after address");
		goto bad;
	}
	if (len + 2 > ADDR_MAX_PATH) {
		addr_err(&p, "path longer than 256 octets");
		goto bad;
	}
	return 0;
bad:
	buf_reset(out);
	return -1;
}

/* addr_domain - what follows the last '@', or "" */
const char *
addr_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at != NULL ? at + 1 : "";
}

/* addr_lookup_key - set out to an ASCII-lowercased copy of addr */
void
addr_lookup_key(struct buf *out, const char *addr)
{
	buf_set(out, addr);
	str_lower(out->data);
}

/* addr_strip_extension - drop "+ext" from the local part */
int
addr_strip_extension(const char *addr, char delim, struct buf *out)
{
	const char *at = strrchr(addr, '@');
	size_t local = at != NULL ? (size_t)(at - addr) : strlen(addr);
	const char *d;

	if (delim == '\0')
		return 0;
	d = memchr(addr, delim, local);
	if (d == NULL || d == addr)
		return 0;	/* none, or nothing would be left */
	buf_reset(out);
	buf_append(out, addr, (size_t)(d - addr));
	if (at != NULL)
		buf_puts(out, at);
	return 1;
}

/* addr_is_dot_string - local part that needs no quotes (atext, with
 * non-ASCII bytes counted as atext, in dot-separated non-empty atoms) */
static bool
addr_is_dot_string(const char *p, size_t n)
{
	bool empty = true;

	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '.') {
			if (empty)
				return false;
			empty = true;
		} else if (c >= 0x80 || addr_is_atext(c)) {
			empty = false;
		} else {
			return false;
		}
	}
	return !empty;
}

/* addr_externalize - append addr with its local part quoted if needed */
void
addr_externalize(struct buf *out, const char *addr)
{
	const char *at = strrchr(addr, '@');
	size_t local = at != NULL ? (size_t)(at - addr) : strlen(addr);

	if (*addr == '\0')
		return;
	if (addr_is_dot_string(addr, local)) {
		buf_append(out, addr, local);
	} else {
		buf_putc(out, '"');
		for (size_t i = 0; i < local; i++) {
			if (addr[i] == '"' || addr[i] == '\\')
				buf_putc(out, '\\');
			buf_putc(out, addr[i]);
		}
		buf_putc(out, '"');
	}
	if (at != NULL)
		buf_puts(out, at);
}

/* addr_is_utf8 - any byte outside ASCII */
bool
addr_is_utf8(const char *addr)
{
	for (; *addr != '\0'; addr++)
		if ((unsigned char)*addr >= 0x80)
			return true;
	return false;
}

/* xtext_hex - value of a hex digit, or -1 */
static int
xtext_hex(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* xtext_decode - RFC 3461 xtext into out; -1 on bad encoding or when
 * the decoded text would hold a control character (CR, LF, NUL, TAB ...),
 * which no envelope value may */
int
xtext_decode(const char *s, size_t len, struct buf *out)
{
	buf_reset(out);
	for (size_t i = 0; i < len; i++) {
		int c = (unsigned char)s[i];

		if (c == '+') {
			int hi, lo;

			if (len - i < 3)
				goto bad;
			hi = xtext_hex((unsigned char)s[i + 1]);
			lo = xtext_hex((unsigned char)s[i + 2]);
			if (hi < 0 || lo < 0)
				goto bad;
			c = hi << 4 | lo;
			if (c < 32 || c == 127)
				goto bad;
			i += 2;
		} else if (c < 33 || c > 126 || c == '=') {
			goto bad;
		}
		buf_putc(out, c);
	}
	return 0;
bad:
	buf_reset(out);
	return -1;
}

/* xtext_encode - append s as xtext (uppercase hex) */
void
xtext_encode(const char *s, struct buf *out)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c >= 33 && c <= 126 && c != '+' && c != '=')
			buf_putc(out, c);
		else
			buf_printf(out, "+%02X", c);
	}
}
