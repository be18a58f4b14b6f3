/*
 * local_header - the loop check's view of a message header section.
 *
 * Counts "Received:" and "Delivered-To:" fields (names compared without
 * case, at line starts, folded continuation lines belong to their field)
 * and keeps the Delivered-To: values, unfolded, trimmed, without <> and
 * lowercased. The scanner is fed bytes in any chunking, so the caller can
 * read the queue file piecewise; it stops at the empty line that ends the
 * header section, or at a line that is not a header field. CR bytes are
 * ignored, so CRLF and LF messages scan alike. Memory is bounded: names
 * are cut at 31 bytes (then they match nothing), values at
 * LOCAL_HEADER_VALUE_MAX bytes, and at most LOCAL_HEADER_VALUES values
 * are kept (every field still counts as a hop).
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/mem.h"
#include "base/str.h"
#include "local.h"

enum {
	LOCAL_FIELD_NONE,	/* no field yet */
	LOCAL_FIELD_OTHER,
	LOCAL_FIELD_RECEIVED,
	LOCAL_FIELD_DELIVERED_TO,
};

/* local_header_init - a scanner at the start of a message */
void
local_header_init(struct local_header *h)
{
	memset(h, 0, sizeof(*h));
	h->line_start = true;
	h->kind = LOCAL_FIELD_NONE;
	buf_init(&h->value);
	buf_set_limit(&h->value, LOCAL_HEADER_VALUE_MAX);
}

/* local_header_free - release the values */
void
local_header_free(struct local_header *h)
{
	for (size_t i = 0; i < h->ndelivered; i++)
		x_free(&h->delivered_to[i]);
	x_free(&h->delivered_to);
	buf_free(&h->value);
	memset(h, 0, sizeof(*h));
}

/* local_header_field_end - the current field is complete */
static void
local_header_field_end(struct local_header *h)
{
	if (h->kind == LOCAL_FIELD_RECEIVED) {
		h->hops++;
	} else if (h->kind == LOCAL_FIELD_DELIVERED_TO) {
		char *v, *s;
		size_t n;

		h->hops++;
		v = str_trim(h->value.data);
		n = strlen(v);
		if (n >= 2 && v[0] == '<' && v[n - 1] == '>') {
			v[n - 1] = '\0';
			v = str_trim(v + 1);
		}
		if (h->ndelivered < LOCAL_HEADER_VALUES && *v != '\0') {
			s = xstrdup(v);
			str_lower(s);
			h->delivered_to = xreallocarray(h->delivered_to,
			    h->ndelivered + 1, sizeof(*h->delivered_to));
			h->delivered_to[h->ndelivered++] = s;
		}
	}
	h->kind = LOCAL_FIELD_NONE;
	buf_reset(&h->value);
}

/* local_header_name_end - classify the field name just read */
static void
local_header_name_end(struct local_header *h)
{
	size_t n = h->name_len;

	/* obsolete syntax allows blanks before the colon */
	while (n > 0 && (h->name[n - 1] == ' ' || h->name[n - 1] == '\t'))
		n--;
	h->name[n < sizeof(h->name) ? n : sizeof(h->name) - 1] = '\0';
	if (h->name_len >= sizeof(h->name) - 1)
		h->kind = LOCAL_FIELD_OTHER;	/* cut: matches nothing */
	else if (str_casecmp(h->name, "Received") == 0)
		h->kind = LOCAL_FIELD_RECEIVED;
	else if (str_casecmp(h->name, "Delivered-To") == 0)
		h->kind = LOCAL_FIELD_DELIVERED_TO;
	else
		h->kind = LOCAL_FIELD_OTHER;
	h->in_name = false;
}

/* local_header_feed - scan n more bytes of the message */
void
local_header_feed(struct local_header *h, const char *p, size_t n)
{
	for (size_t i = 0; i < n && !h->done; i++) {
		char c = p[i];

		if (c == '\r')
			continue;
		if (h->line_start) {
			h->line_start = false;
			if (c == '\n') {
				/* the empty line: end of the header section */
				local_header_field_end(h);
				h->done = true;
				break;
			}
			if ((c == ' ' || c == '\t') &&
			    h->kind != LOCAL_FIELD_NONE && !h->in_name) {
				/* a folded continuation: unfold */
				if (h->kind == LOCAL_FIELD_DELIVERED_TO)
					buf_putc(&h->value, c);
				continue;
			}
			local_header_field_end(h);
			h->in_name = true;
			h->name_len = 0;
		}
		if (h->in_name) {
			if (c == ':') {
				local_header_name_end(h);
			} else if (c == '\n') {
				/* not a header field: the body has begun */
				h->in_name = false;
				h->done = true;
			} else if (h->name_len < sizeof(h->name) - 1) {
				h->name[h->name_len++] = c;
			} else {
				h->name_len = sizeof(h->name) - 1;
			}
			continue;
		}
		if (c == '\n')
			h->line_start = true;
		else if (h->kind == LOCAL_FIELD_DELIVERED_TO && c != '\0')
			buf_putc(&h->value, c);
	}
}

/* local_header_end - no more input: finish the last field */
void
local_header_end(struct local_header *h)
{
	if (!h->done && !h->in_name)
		local_header_field_end(h);
	h->in_name = false;
	h->done = true;
}

/* local_header_read - feed the header section at off of fd */
int
local_header_read(struct local_header *h, int fd, off_t off, off_t size,
    struct buf *why)
{
	char chunk[8192];
	off_t done = 0;

	if (size > LOCAL_HEADER_MAX)
		size = LOCAL_HEADER_MAX;
	while (done < size && !h->done) {
		size_t want = sizeof(chunk);
		ssize_t n;

		if ((off_t)want > size - done)
			want = (size_t)(size - done);
		n = pread(fd, chunk, want, off + done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			buf_printf(why, "read queue file: %s",
			    n < 0 ? strerror(errno) : "unexpected end of file");
			return -1;
		}
		local_header_feed(h, chunk, (size_t)n);
		done += n;
	}
	local_header_end(h);
	return 0;
}

/* local_header_delivered_to - true if a Delivered-To: names addr */
bool
local_header_delivered_to(const struct local_header *h, const char *addr)
{
	for (size_t i = 0; i < h->ndelivered; i++)
		if (str_casecmp(h->delivered_to[i], addr) == 0)
			return true;
	return false;
}
