/*
 * mime_addr - an RFC 5322 address-list parser good enough for IMAP's
 * ENVELOPE: mailboxes with or without display names, groups, quoted
 * strings, comments, obsolete source routes.
 *
 * Values stay raw (encoded words are not decoded: IMAP wants them as they
 * are); quoted strings lose their quotes and quoted-pairs their
 * backslash; comments go, except that an address without a display name
 * takes its last comment as the name ("a@b (Ann)"), as Dovecot does.
 * Nothing is rejected: an address without '@' gets the host
 * "MISSING_DOMAIN" and an empty local part "MISSING_MAILBOX" (Dovecot's
 * words), because NIL there would mean a group to the client.
 */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/mem.h"
#include "mail/mime.h"

#define MIME_ADDR_MAX (MIME_MAX_PARAMS * 16)	/* addresses kept */

/* the list being built */
struct mime_addr_ctx {
	struct mime_addr *head;
	struct mime_addr **tail;
	unsigned count;
};

/* mime_addr_add - append an address (strings copied; NULL stays NULL) */
static void
mime_addr_add(struct mime_addr_ctx *c, const struct buf *name,
    const struct buf *route, const char *mailbox, const char *host)
{
	struct mime_addr *a;

	/* a group's end marker may go one over, so groups stay closed */
	if (c->count >= MIME_ADDR_MAX && !(mailbox == NULL && host == NULL))
		return;
	a = xcalloc(1, sizeof(*a));
	a->name = name != NULL && name->len > 0 ? xstrdup(name->data) : NULL;
	a->route = route != NULL && route->len > 0 ? xstrdup(route->data) :
	    NULL;
	a->mailbox = mailbox != NULL ? xstrdup(mailbox) : NULL;
	a->host = host != NULL ? xstrdup(host) : NULL;
	*c->tail = a;
	c->tail = &a->next;
	c->count++;
}

/* mime_addr_free - release a list */
void
mime_addr_free(struct mime_addr **ap)
{
	struct mime_addr *a = *ap;

	while (a != NULL) {
		struct mime_addr *next = a->next;

		free((char *)a->name);
		free((char *)a->route);
		free((char *)a->mailbox);
		free((char *)a->host);
		free(a);
		a = next;
	}
	*ap = NULL;
}

/* mime_addr_comment - skip the comment at s[*i] == '(', its text (the
 * outermost level, nested parentheses kept) to comment if not NULL */
static void
mime_addr_comment(const char *s, size_t n, size_t *i, struct buf *comment)
{
	int depth = 0;

	if (comment != NULL)
		buf_reset(comment);
	for (; *i < n; (*i)++) {
		if (s[*i] == '\\' && *i + 1 < n) {
			(*i)++;
		} else if (s[*i] == '(') {
			if (depth++ == 0)
				continue;
		} else if (s[*i] == ')') {
			if (--depth == 0) {
				(*i)++;
				return;
			}
		}
		if (comment != NULL)
			buf_putc(comment, s[*i]);
	}
}

/* mime_addr_extent - the end of the address at s[i..): the top-level ','
 * or ';' (or ':' when a group can start) after it, or n */
static size_t
mime_addr_extent(const char *s, size_t n, size_t i, bool colon_ends)
{
	bool angle = false;

	while (i < n) {
		char ch = s[i];

		if (ch == '"') {
			for (i++; i < n && s[i] != '"'; i++)
				if (s[i] == '\\')
					i++;
			i++;
			continue;
		}
		if (ch == '(') {
			mime_addr_comment(s, n, &i, NULL);
			continue;
		}
		if (ch == '<')
			angle = true;
		else if (ch == '>')
			angle = false;
		else if (!angle && (ch == ',' || ch == ';' ||
		    (ch == ':' && colon_ends)))
			return i;
		i++;
	}
	return n;
}

/* mime_addr_phrase - the words of s[i..end) joined by one space, quoted
 * strings unquoted, comments left out (the last one to comment) */
static void
mime_addr_phrase(const char *s, size_t i, size_t end, struct buf *out,
    struct buf *comment)
{
	bool space = false;

	buf_reset(out);
	while (i < end) {
		char ch = s[i];

		if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
			space = out->len > 0;
			i++;
		} else if (ch == '(') {
			mime_addr_comment(s, end, &i, comment);
			space = out->len > 0;
		} else {
			if (space)
				buf_putc(out, ' ');
			space = false;
			if (ch == '"') {
				for (i++; i < end && s[i] != '"'; i++) {
					if (s[i] == '\\' && i + 1 < end)
						i++;
					buf_putc(out, s[i]);
				}
				i++;
			} else {
				buf_putc(out, ch);
				i++;
			}
		}
	}
}

/* mime_addr_spec - split the addr-spec s[i..end) into mailbox and host
 * (blanks and comments out, quotes off); comment gets its last comment */
static void
mime_addr_spec(const char *s, size_t i, size_t end, struct buf *mailbox,
    struct buf *host, struct buf *comment)
{
	struct buf *cur = mailbox;

	buf_reset(mailbox);
	buf_reset(host);
	while (i < end) {
		char ch = s[i];

		if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
			i++;
		} else if (ch == '(') {
			mime_addr_comment(s, end, &i, comment);
		} else if (ch == '"') {
			for (i++; i < end && s[i] != '"'; i++) {
				if (s[i] == '\\' && i + 1 < end)
					i++;
				buf_putc(cur, s[i]);
			}
			i++;
		} else if (ch == '@' && cur == mailbox) {
			cur = host;
			i++;
		} else {
			buf_putc(cur, ch);
			i++;
		}
	}
}

/* mime_addr_one - parse the mailbox s[i..end) and append it */
static void
mime_addr_one(struct mime_addr_ctx *c, const char *s, size_t i, size_t end)
{
	struct buf name = BUF_INIT, route = BUF_INIT, mbox = BUF_INIT,
	    host = BUF_INIT, comment = BUF_INIT;
	size_t lt = end, k;
	bool any = false, has_at = false;

	for (k = i; k < end; k++) {
		if (s[k] == '"') {
			for (k++; k < end && s[k] != '"'; k++)
				if (s[k] == '\\')
					k++;
		} else if (s[k] == '(') {
			mime_addr_comment(s, end, &k, NULL);
			k--;
		} else if (s[k] == '<') {
			lt = k;
			break;
		}
	}
	if (lt < end) {
		const char *gt = memchr(s + lt, '>', end - lt);
		size_t close = gt != NULL ? (size_t)(gt - s) : end;
		size_t spec = lt + 1;

		mime_addr_phrase(s, i, lt, &name, NULL);
		/* obsolete route: "<@a,@b:user@host>" */
		while (spec < close && (s[spec] == ' ' || s[spec] == '\t'))
			spec++;
		if (spec < close && s[spec] == '@') {
			const char *colon = memchr(s + spec, ':', close - spec);

			if (colon != NULL) {
				for (k = spec; k < (size_t)(colon - s); k++)
					if (s[k] != ' ' && s[k] != '\t')
						buf_putc(&route, s[k]);
				spec = (size_t)(colon - s) + 1;
			}
		}
		has_at = memchr(s + spec, '@', close - spec) != NULL;
		mime_addr_spec(s, spec, close, &mbox, &host, NULL);
		any = true;
	} else {
		mime_addr_spec(s, i, end, &mbox, &host, &comment);
		has_at = memchr(s + i, '@', end - i) != NULL;
		any = mbox.len > 0 || host.len > 0;
		if (comment.len > 0)
			buf_set(&name, comment.data);
	}
	if (any)
		mime_addr_add(c, &name, &route,
		    mbox.len > 0 ? mbox.data : "MISSING_MAILBOX",
		    has_at && host.len > 0 ? host.data : "MISSING_DOMAIN");
	buf_free(&name);
	buf_free(&route);
	buf_free(&mbox);
	buf_free(&host);
	buf_free(&comment);
}

/* mime_addr_parse - the address list s[0..n) */
struct mime_addr *
mime_addr_parse(const char *s, size_t n)
{
	struct mime_addr_ctx c = {NULL, NULL, 0};
	bool in_group = false;
	size_t i = 0;

	c.tail = &c.head;
	while (i < n && c.count < MIME_ADDR_MAX) {
		size_t end = mime_addr_extent(s, n, i, !in_group);

		if (end < n && s[end] == ':') {
			struct buf name = BUF_INIT;

			mime_addr_phrase(s, i, end, &name, NULL);
			mime_addr_add(&c, NULL, NULL, name.data, NULL);
			buf_free(&name);
			in_group = true;
		} else {
			mime_addr_one(&c, s, i, end);
			if (end < n && s[end] == ';' && in_group) {
				mime_addr_add(&c, NULL, NULL, NULL, NULL);
				in_group = false;
			}
		}
		i = end + 1;
	}
	if (in_group)
		mime_addr_add(&c, NULL, NULL, NULL, NULL);
	return c.head;
}
