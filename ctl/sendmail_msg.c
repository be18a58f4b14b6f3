/*
 * sendmail_msg - the sendmail command's work on its input (sendmail.h):
 * Postfix-compatible options, the message read from standard input with
 * every line end (CRLF, bare LF, bare CR) made CRLF, recipients taken
 * from the header with -t (Bcc: removed), and From:, Date: and
 * Message-ID: added when missing.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/str.h"
#include "sendmail.h"

/* sendmail_mode_of - the mode a program name stands for */
static enum sendmail_mode
sendmail_mode_of(const char *argv0)
{
	const char *base = strrchr(argv0, '/');

	base = base != NULL ? base + 1 : argv0;
	if (strcmp(base, "mailq") == 0)
		return SENDMAIL_LIST;
	if (strcmp(base, "newaliases") == 0)
		return SENDMAIL_ALIASES;
	return SENDMAIL_DELIVER;
}

/* sendmail_opt_b - the -b modes: a mode, or refuse set */
static void
sendmail_opt_b(const char *a, struct sendmail_opts *o)
{
	static const struct {
		const char *opt;
		enum sendmail_mode mode;
	} modes[] = {
		{"-bm", SENDMAIL_DELIVER}, {"-bp", SENDMAIL_LIST},
		{"-bs", SENDMAIL_SMTP}, {"-bv", SENDMAIL_VERIFY},
		{"-bi", SENDMAIL_ALIASES},
	};

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		if (strcmp(a, modes[i].opt) == 0) {
			o->mode = modes[i].mode;
			return;
		}
	}
	if (strcmp(a, "-bd") == 0 || strcmp(a, "-bD") == 0)
		o->refuse = "-bd: herald's SMTP server runs under master: use "
		    "\"heraldctl start\"";
	else
		o->refuse = "this -b mode is not supported (-bm, -bp, -bs, "
		    "-bv and -bi are)";
}

/* sendmail_parse_opts - the options sendmail(1) users rely on */
int
sendmail_parse_opts(int argc, char **argv, struct sendmail_opts *o,
    struct buf *why)
{
	int i;

	memset(o, 0, sizeof(*o));
	o->dot_ends = true;
	o->mode = sendmail_mode_of(argc > 0 && argv[0] != NULL ? argv[0] :
	    "sendmail");
	for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1] != '\0'; i++) {
		const char *a = argv[i];
		const char *val = NULL;

		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		/* options with a value: attached ("-fme") or next argument */
		if (strchr("fFrCBNORVXL", a[1]) != NULL) {
			val = a[2] ? a + 2 : (i + 1 < argc ? argv[++i] : NULL);
			if (val == NULL) {
				buf_printf(why, "option %s needs a value", a);
				return -1;
			}
		}
		switch (a[1]) {
		case 'f':
		case 'r':
			o->sender = val;
			break;
		case 'F':
			o->fullname = val;
			break;
		case 'C':
			o->config = val;
			break;
		case 't':
			o->header_rcpts = true;
			break;
		case 'i':
			o->dot_ends = false;
			break;
		case 'o':
			/* -oi as -i; other -oX (-odi, -oem, ...) mean nothing
			 * here, as in Postfix */
			if (a[2] == 'i' && a[3] == '\0')
				o->dot_ends = false;
			break;
		case 'b':
			sendmail_opt_b(a, o);
			break;
		case 'I':	/* initialise the alias database */
			o->mode = SENDMAIL_ALIASES;
			break;
		case 'q':
			if (a[2] == '\0')
				o->mode = SENDMAIL_FLUSH;
			else
				o->refuse = "-q with an argument is not "
				    "supported: -q alone retries every "
				    "deferred message";
			break;
		case 'B':	/* body type */
		case 'N':	/* DSN notify */
		case 'O':
		case 'R':	/* DSN ret */
		case 'V':	/* envid */
		case 'X':	/* log file */
		case 'L':
		case 'v':
		case 'n':
		case 'm':
		case 'U':
			break;
		default:
			buf_printf(why, "unknown option %s", a);
			return -1;
		}
	}
	o->rcpts = argv + i;
	o->nrcpt = argc - i;
	if (o->refuse != NULL)
		return 0;
	switch (o->mode) {
	case SENDMAIL_DELIVER:
		if (o->nrcpt == 0 && !o->header_rcpts) {
			buf_puts(why, "no recipients (give addresses, or -t)");
			return -1;
		}
		break;
	case SENDMAIL_VERIFY:
		if (o->nrcpt == 0) {
			buf_puts(why, "-bv: no addresses to verify");
			return -1;
		}
		break;
	case SENDMAIL_ALIASES:
		break;		/* whatever the arguments: nothing to do */
	default:
		if (o->nrcpt > 0) {
			buf_printf(why, "%s takes no addresses",
			    o->mode == SENDMAIL_LIST ? "-bp (mailq)" :
			    o->mode == SENDMAIL_FLUSH ? "-q" : "-bs");
			return -1;
		}
		break;
	}
	return 0;
}

/* sendmail_eol_init - at the start of a message */
void
sendmail_eol_init(struct sendmail_eol *e, bool dot_ends)
{
	memset(e, 0, sizeof(*e));
	e->dot_ends = dot_ends;
	e->bol = true;
}

/*
 * sendmail_eol_feed - every line end becomes CRLF.
 *
 * A CR ends its line at once (CRLF out) and is remembered, so that an LF
 * right after it, in this chunk or the next, is taken as its second half
 * and not as a line end of its own. A "." at the start of a line is held
 * back until the next byte says whether it is a "." line.
 */
size_t
sendmail_eol_feed(struct sendmail_eol *e, const char *p, size_t n,
    struct buf *out)
{
	for (size_t i = 0; i < n; i++) {
		char c = p[i];

		if (e->done)
			return i;
		if (c == '\n' && e->cr) {
			e->cr = false;
			continue;
		}
		e->cr = c == '\r';
		if (c == '\r' || c == '\n') {
			if (e->dot) {
				e->dot = false;
				if (e->dot_ends) {
					e->done = true;
					return i + 1;
				}
				buf_putc(out, '.');
			}
			buf_puts(out, "\r\n");
			e->bol = true;
			continue;
		}
		if (e->dot) {
			buf_putc(out, '.');
			e->dot = false;
		} else if (e->bol && c == '.') {
			e->dot = true;
			e->bol = false;
			continue;
		}
		buf_putc(out, c);
		e->bol = false;
	}
	return n;
}

/* sendmail_eol_end - end the last line */
void
sendmail_eol_end(struct sendmail_eol *e, struct buf *out)
{
	if (e->done)
		return;
	if (e->dot) {
		buf_putc(out, '.');
		e->dot = false;
	}
	if (!e->bol)
		buf_puts(out, "\r\n");
	e->bol = true;
}

/*
 * sendmail_read - standard input through the normaliser, a line (or
 * 8192 bytes) at a time: a program may write "." and wait for us to exit
 * before it closes the pipe, so the "." line must end the reading, and a
 * read for a whole buffer would wait for the pipe to close. A chunk
 * ends after a CR, so a CRLF always arrives cut in two here.
 */
int
sendmail_read(FILE *in, bool dot_ends, size_t max, struct buf *out,
    struct buf *why)
{
	struct sendmail_eol e;
	char chunk[8192];

	sendmail_eol_init(&e, dot_ends);
	while (!e.done) {
		size_t n = 0;
		int c;

		while (n < sizeof(chunk) && (c = getc(in)) != EOF) {
			chunk[n++] = (char)c;
			if (c == '\n' || c == '\r')
				break;
		}
		if (n == 0)
			break;
		(void)sendmail_eol_feed(&e, chunk, n, out);
		if (out->len > max) {
			buf_printf(why, "message larger than %zu bytes", max);
			return -1;
		}
	}
	if (!e.done && ferror(in)) {
		buf_puts(why, "cannot read the message from standard input");
		return -1;
	}
	sendmail_eol_end(&e, out);
	if (out->len > max) {
		buf_printf(why, "message larger than %zu bytes", max);
		return -1;
	}
	return 0;
}

/* sendmail_header_end - length of the header (through its blank line),
 * or the whole message when there is no blank line */
static size_t
sendmail_header_end(const struct buf *msg)
{
	const char *p;

	if (msg->len >= 2 && memcmp(msg->data, "\r\n", 2) == 0)
		return 0;
	p = msg->len ? memmem(msg->data, msg->len, "\r\n\r\n", 4) : NULL;
	return p != NULL ? (size_t)(p - msg->data) + 2 : msg->len;
}

/* sendmail_field_len - bytes of the field starting at off (with its
 * continuation lines), within the header of length end */
static size_t
sendmail_field_len(const struct buf *msg, size_t off, size_t end)
{
	size_t i = off;

	for (;;) {
		const char *nl = memchr(msg->data + i, '\n', end - i);

		if (nl == NULL)
			return end - off;
		i = (size_t)(nl - msg->data) + 1;
		if (i >= end || (msg->data[i] != ' ' && msg->data[i] != '\t'))
			return i - off;
	}
}

/* sendmail_addr_byte - one byte of an address taken from the header: a
 * NUL cannot go into the NUL-separated list and becomes 0x7f, which the
 * address check refuses like every control character */
static void
sendmail_addr_byte(struct buf *a, char c)
{
	buf_putc(a, c == '\0' ? 0x7f : c);
}

/* sendmail_add_address - one item of an address list: the part in <>
 * (the first '<' outside quotes and comments), else the item without
 * comments and blanks; CR and LF are dropped either way (unfolding) */
static void
sendmail_add_address(const char *p, size_t n, struct buf *rcpts, size_t *cnt)
{
	const char *lt = NULL, *gt = NULL;
	struct buf a = BUF_INIT;
	bool quote = false;
	int depth = 0;

	for (size_t i = 0; i < n && lt == NULL; i++) {
		if (quote) {
			if (p[i] == '\\' && i + 1 < n)
				i++;
			else if (p[i] == '"')
				quote = false;
		} else if (p[i] == '"' && depth == 0) {
			quote = true;
		} else if (p[i] == '(') {
			depth++;
		} else if (p[i] == ')' && depth > 0) {
			depth--;
		} else if (p[i] == '<' && depth == 0) {
			lt = p + i;
		}
	}
	if (lt != NULL)
		gt = memchr(lt, '>', n - (size_t)(lt - p));
	if (gt != NULL) {
		for (const char *q = lt + 1; q < gt; q++)
			if (*q != '\r' && *q != '\n')
				sendmail_addr_byte(&a, *q);
	} else {
		depth = 0;
		for (size_t i = 0; i < n; i++) {
			if (p[i] == '(')
				depth++;
			else if (p[i] == ')' && depth > 0)
				depth--;
			else if (depth == 0 && p[i] != ' ' && p[i] != '\t' &&
			    p[i] != '\r' && p[i] != '\n')
				sendmail_addr_byte(&a, p[i]);
		}
	}
	if (a.len > 0 && memchr(a.data, ':', a.len) == NULL) {
		buf_append(rcpts, a.data, a.len);
		buf_putc(rcpts, '\0');
		(*cnt)++;
	}
	buf_free(&a);
}

/* sendmail_address_list - split a field value at commas outside quotes,
 * angle brackets and comments; a "group:" name is skipped */
static void
sendmail_address_list(const char *v, size_t n, struct buf *rcpts,
    size_t *cnt)
{
	size_t start = 0;
	int paren = 0;
	bool quote = false, angle = false;

	for (size_t i = 0; i <= n; i++) {
		char c = i < n ? v[i] : ',';

		if (quote) {
			if (c == '\\' && i + 1 < n)
				i++;
			else if (c == '"')
				quote = false;
			continue;
		}
		if (c == '"')
			quote = true;
		else if (c == '(')
			paren++;
		else if (c == ')' && paren > 0)
			paren--;
		else if (c == '<' && paren == 0)
			angle = true;
		else if (c == '>')
			angle = false;
		else if (c == ':' && !angle && paren == 0)
			start = i + 1;		/* group name */
		else if ((c == ',' || c == ';') && !angle && paren == 0) {
			sendmail_add_address(v + start, i - start, rcpts, cnt);
			start = i + 1;
		}
	}
}

/* sendmail_header_rcpts - -t: To, Cc, Bcc; Bcc fields removed */
void
sendmail_header_rcpts(struct buf *msg, struct buf *rcpts, size_t *n)
{
	size_t end = sendmail_header_end(msg), off = 0;

	while (off < end) {
		size_t len = sendmail_field_len(msg, off, end);
		const char *f = msg->data + off;
		size_t name = 0;

		while (name < len && f[name] != ':')
			name++;
		if (name < len && (
		    (name == 2 && str_ncasecmp(f, "To", 2) == 0) ||
		    (name == 2 && str_ncasecmp(f, "Cc", 2) == 0) ||
		    (name == 3 && str_ncasecmp(f, "Bcc", 3) == 0))) {
			sendmail_address_list(f + name + 1, len - name - 1,
			    rcpts, n);
			if (name == 3) {
				memmove(msg->data + off, msg->data + off + len,
				    msg->len - off - len);
				msg->len -= len;
				msg->data[msg->len] = '\0';
				end -= len;
				continue;
			}
		}
		off += len;
	}
}

/* sendmail_has_field - is there a header field called name? */
static bool
sendmail_has_field(const struct buf *msg, const char *name)
{
	size_t end = sendmail_header_end(msg), off = 0, nl = strlen(name);

	while (off < end) {
		size_t len = sendmail_field_len(msg, off, end);

		if (len > nl && msg->data[off + nl] == ':' &&
		    str_ncasecmp(msg->data + off, name, nl) == 0)
			return true;
		off += len;
	}
	return false;
}

/* sendmail_starts_with_field - does msg begin with "Name:" or with the
 * blank line that ends an empty header? */
static bool
sendmail_starts_with_field(const struct buf *msg)
{
	size_t i = 0;

	if (msg->len >= 2 && memcmp(msg->data, "\r\n", 2) == 0)
		return true;
	while (i < msg->len && msg->data[i] > ' ' && msg->data[i] < 0x7f &&
	    msg->data[i] != ':')
		i++;
	return i > 0 && i < msg->len && msg->data[i] == ':';
}

/* sendmail_complete - From:, Date:, Message-ID: when missing */
void
sendmail_complete(struct buf *msg, const char *from, const char *fullname,
    const char *hostname)
{
	struct buf add = BUF_INIT;
	char date[64];
	time_t now = time(NULL);
	struct tm tm;
	unsigned char rnd[8];

	if (!sendmail_has_field(msg, "From")) {
		if (fullname != NULL && *fullname != '\0') {
			buf_puts(&add, "From: \"");
			for (const char *p = fullname; *p; p++) {
				if (*p == '"' || *p == '\\')
					buf_putc(&add, '\\');
				if (*p != '\r' && *p != '\n')
					buf_putc(&add, *p);
			}
			buf_printf(&add, "\" <%s>\r\n", from);
		} else {
			buf_printf(&add, "From: %s\r\n", from);
		}
	}
	if (!sendmail_has_field(msg, "Date") &&
	    localtime_r(&now, &tm) != NULL &&
	    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm) > 0)
		buf_printf(&add, "Date: %s\r\n", date);
	if (!sendmail_has_field(msg, "Message-ID")) {
		for (size_t i = 0; i < sizeof(rnd); i++)
			rnd[i] = (unsigned char)random();
		buf_printf(&add, "Message-ID: <%lld.", (long long)now);
		for (size_t i = 0; i < sizeof(rnd); i++)
			buf_printf(&add, "%02x", rnd[i]);
		buf_printf(&add, "@%s>\r\n", hostname);
	}
	if (add.len > 0) {
		/* text without a header of its own is the body */
		if (!sendmail_starts_with_field(msg))
			buf_puts(&add, "\r\n");
		buf_append(&add, msg->data, msg->len);
		buf_reset(msg);
		buf_append(msg, add.data, add.len);
	}
	buf_free(&add);
}
