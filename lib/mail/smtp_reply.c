/*
 * smtp_reply - SMTP reply parser (see smtp_reply.h): reply lines,
 * multiline continuation, enhanced status codes, EHLO keywords.
 */
#include <ctype.h>
#include <string.h>

#include "base/buf.h"
#include "base/str.h"
#include "mail/smtp_reply.h"

/* smtp_reply_init - an empty reply */
void
smtp_reply_init(struct smtp_reply *r)
{
	memset(r, 0, sizeof(*r));
	buf_init(&r->text);
}

/* smtp_reply_reset - ready for the next reply */
void
smtp_reply_reset(struct smtp_reply *r)
{
	r->code = 0;
	r->done = false;
	r->dsn[0] = '\0';
	r->nlines = 0;
	buf_reset(&r->text);
}

/* smtp_reply_free - release the text */
void
smtp_reply_free(struct smtp_reply *r)
{
	buf_free(&r->text);
	r->code = 0;
	r->nlines = 0;
}

/* smtp_reply_digits - 1..3 digits at p; their count, 0 if none/too many */
static size_t
smtp_reply_digits(const char *p, size_t len)
{
	size_t n = 0;

	while (n < len && p[n] >= '0' && p[n] <= '9')
		n++;
	return n >= 1 && n <= 3 ? n : 0;
}

/* smtp_reply_enhanced - an enhanced code "C.S.D" at the start of text
 * (class matching the reply's) into r->dsn */
static void
smtp_reply_enhanced(struct smtp_reply *r, const char *p, size_t len)
{
	size_t i = 0, n;

	if (len < 5 || p[0] != '0' + r->code / 100 || p[1] != '.')
		return;
	i = 2;
	if ((n = smtp_reply_digits(p + i, len - i)) == 0)
		return;
	i += n;
	if (i >= len || p[i] != '.')
		return;
	i++;
	if ((n = smtp_reply_digits(p + i, len - i)) == 0)
		return;
	i += n;
	if (i < len && p[i] != ' ')
		return;
	memcpy(r->dsn, p, i);
	r->dsn[i] = '\0';
}

/* smtp_reply_line - one line without its line end */
int
smtp_reply_line(struct smtp_reply *r, const char *line, size_t len,
    struct buf *why)
{
	int code;
	bool last;

	if (r->done) {
		buf_puts(why, "reply line after the last one");
		return -1;
	}
	if (len + 2 > SMTP_REPLY_LINE_MAX) {
		buf_printf(why, "reply line longer than %d bytes",
		    SMTP_REPLY_LINE_MAX);
		return -1;
	}
	if (memchr(line, '\0', len) != NULL) {
		buf_puts(why, "NUL byte in a reply");
		return -1;
	}
	if (len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' ||
	    line[1] > '5' || !isdigit((unsigned char)line[2]) ||
	    (len > 3 && line[3] != ' ' && line[3] != '-')) {
		buf_puts(why, "malformed reply line");
		return -1;
	}
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (r->nlines > 0 && code != r->code) {
		buf_printf(why, "reply code changed from %d to %d within a "
		    "reply", r->code, code);
		return -1;
	}
	if (r->nlines >= SMTP_REPLY_LINES_MAX) {
		buf_printf(why, "reply of more than %d lines",
		    SMTP_REPLY_LINES_MAX);
		return -1;
	}
	last = len == 3 || line[3] == ' ';
	if (r->nlines > 0)
		buf_putc(&r->text, '\n');
	r->code = code;
	if (len > 4)
		buf_append(&r->text, line + 4, len - 4);
	if (r->nlines == 0 && len > 4)
		smtp_reply_enhanced(r, line + 4, len - 4);
	r->nlines++;
	r->done = last;
	return last ? 1 : 0;
}

/* smtp_reply_take - whole lines from the front of in */
int
smtp_reply_take(struct smtp_reply *r, struct buf *in, struct buf *why)
{
	while (!r->done) {
		const char *nl = memchr(in->data, '\n', in->len);
		size_t len, used;
		int rc;

		if (nl == NULL) {
			if (in->len >= SMTP_REPLY_LINE_MAX) {
				buf_printf(why, "reply line longer than %d "
				    "bytes", SMTP_REPLY_LINE_MAX);
				return -1;
			}
			return 0;
		}
		used = (size_t)(nl - in->data) + 1;
		len = used - 1;
		if (len > 0 && in->data[len - 1] == '\r')
			len--;
		rc = smtp_reply_line(r, in->data, len, why);
		buf_consume(in, used);
		if (rc < 0)
			return -1;
	}
	return 1;
}

/* smtp_reply_class - first digit */
int
smtp_reply_class(const struct smtp_reply *r)
{
	return r->code / 100;
}

/* smtp_reply_ehlo - look for keyword in the lines after the first */
bool
smtp_reply_ehlo(const struct smtp_reply *r, const char *keyword,
    const char **param_r)
{
	const char *p = buf_cstr(&r->text), *nl;
	size_t kl = strlen(keyword);

	if (param_r != NULL)
		*param_r = NULL;
	/* the first line is the greeting text, not a keyword */
	if ((nl = strchr(p, '\n')) == NULL)
		return false;
	for (p = nl + 1; *p; p = nl + 1) {
		size_t ll;

		nl = strchr(p, '\n');
		ll = nl ? (size_t)(nl - p) : strlen(p);
		if (ll >= kl && str_ncasecmp(p, keyword, kl) == 0 &&
		    (ll == kl || p[kl] == ' ' || p[kl] == '=')) {
			if (param_r != NULL && ll > kl)
				*param_r = p + kl + 1;
			return true;
		}
		if (nl == NULL)
			break;
	}
	return false;
}

/* smtp_reply_format - one line for logs and notes */
void
smtp_reply_format(const struct smtp_reply *r, struct buf *out, size_t max)
{
	size_t start = out->len;

	buf_printf(out, "%d", r->code);
	for (size_t i = 0; i < r->text.len; i++) {
		if (out->len - start >= max)
			break;
		if (i == 0)
			buf_putc(out, ' ');
		buf_putc(out, r->text.data[i] == '\n' ? ' ' : r->text.data[i]);
	}
	if (out->len - start > max)
		buf_truncate(out, start + max);
}
