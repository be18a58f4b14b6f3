/*
 * mime_fuzz - the MIME parser (lib/mail/mime.c) and what imapd builds on
 * it, fed an untrusted message as it lies in a Maildir file.
 *
 * Properties checked:
 *  - the tree stays inside the bytes: every header and body lies in the
 *    input, every child inside its parent's body, siblings in order;
 *    depth and part count stay within their limits;
 *  - BODYSTRUCTURE, BODY and ENVELOPE (of the root and of every enclosed
 *    message) are well-formed IMAP: parentheses balance, quoted strings
 *    close, literals hold exactly the bytes they announce, no CR or LF
 *    outside a literal;
 *  - every part of a multipart is found again by its section number, and
 *    every section found lies in the input;
 *  - transfer decoding, encoded-word decoding and the address parser run
 *    on what the message holds, with bounded output.
 */
#include <string.h>

#include "base/buf.h"
#include "mail/mime.h"
#include "mail/mime_imap.h"
#include "fuzz.h"

/* imap_ok - is s[0..n) balanced IMAP data (strings, literals, lists)? */
static int
imap_ok(const char *s, size_t n)
{
	long depth = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '(') {
			depth++;
		} else if (s[i] == ')') {
			if (--depth < 0)
				return 0;
		} else if (s[i] == '"') {
			for (i++; i < n && s[i] != '"'; i++) {
				if (s[i] == '\r' || s[i] == '\n' || s[i] == 0)
					return 0;
				if (s[i] == '\\' && ++i >= n)
					return 0;
			}
			if (i >= n)
				return 0;
		} else if (s[i] == '{') {
			size_t len = 0;

			for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
				len = len * 10 + (size_t)(s[i] - '0');
			if (i + 2 >= n || s[i] != '}' || s[i + 1] != '\r' ||
			    s[i + 2] != '\n' || n - (i + 3) < len)
				return 0;
			if (memchr(s + i + 3, '\0', len) != NULL)
				return 0;
			i += 2 + len;
		} else if (s[i] == '\r' || s[i] == '\n') {
			return 0;
		}
	}
	return depth == 0;
}

/* check_part - the tree invariants below p; counts parts */
static void
check_part(const struct mime_message *m, const struct mime_part *p,
    unsigned *count)
{
	size_t prev_end = p->body_off;

	(*count)++;
	FUZZ_CHECK(p->depth < MIME_MAX_DEPTH);
	FUZZ_CHECK(p->hdr_off <= m->len && p->hdr_len <= m->len - p->hdr_off);
	FUZZ_CHECK(p->body_off == p->hdr_off + p->hdr_len);
	FUZZ_CHECK(p->body_len <= m->len - p->body_off);
	FUZZ_CHECK(p->body_vsize >= p->body_len);
	FUZZ_CHECK(p->body_lines <= p->body_len);
	FUZZ_CHECK(p->type != NULL && p->subtype != NULL);
	FUZZ_CHECK(!(p->is_message && p->is_multipart));
	FUZZ_CHECK(!p->is_message || p->nchildren == 1);
	for (const struct mime_part *k = p->children; k != NULL; k = k->next) {
		FUZZ_CHECK(k->parent == p);
		FUZZ_CHECK(k->hdr_off >= prev_end);
		FUZZ_CHECK(k->body_off + k->body_len <=
		    p->body_off + p->body_len);
		prev_end = k->body_off + k->body_len;
		check_part(m, k, count);
	}
}

/* check_sections - each part of a multipart is found by its number */
static void
check_sections(const struct mime_message *m, const struct mime_part *p,
    struct buf *name)
{
	struct mime_section s;

	if (p->parent != NULL && p->parent->is_multipart) {
		buf_reset(name);
		mime_section_name(name, p);
		FUZZ_CHECK(mime_section_find(m, name->data, &s) == 0);
		FUZZ_CHECK(s.part == p && s.kind == MIME_SECTION_BODY);
		buf_puts(name, ".MIME");
		FUZZ_CHECK(mime_section_find(m, name->data, &s) == 0);
		FUZZ_CHECK(s.off == p->hdr_off && s.len == p->hdr_len);
	}
	for (const struct mime_part *k = p->children; k != NULL; k = k->next)
		check_sections(m, k, name);
}

/* check_output - ENVELOPEs of messages, decoding of leaves */
static void
check_output(const struct mime_message *m, const struct mime_part *p,
    struct buf *out)
{
	if (p->parent == NULL || p->parent->is_message) {
		buf_reset(out);
		mime_imap_envelope(out, m, p, 0);
		FUZZ_CHECK(imap_ok(out->data, out->len));
		buf_reset(out);
		mime_imap_envelope(out, m, p, MIME_IMAP_UTF8);
		FUZZ_CHECK(imap_ok(out->data, out->len));
		buf_reset(out);
		if (mime_header_get(m, p, "subject", out) == 0) {
			struct buf w = BUF_INIT;

			buf_set_limit(&w, 65536);
			mime_words_decode(&w, out->data, out->len);
			buf_free(&w);
		}
	}
	if (p->children == NULL) {
		struct mime_decoder d;

		buf_reset(out);
		buf_set_limit(out, 1 << 20);
		mime_decoder_init(&d, p->enc);
		mime_decoder_feed(&d, m->data + p->body_off, p->body_len, out);
		mime_decoder_end(&d, out);
		buf_set_limit(out, 0);
	}
	for (const struct mime_part *k = p->children; k != NULL; k = k->next)
		check_output(m, k, out);
}

/* spec_from - a section spec made of the input's first line */
static void
spec_from(const uint8_t *data, size_t size, struct buf *spec)
{
	for (size_t i = 0; i < size && i < 40 && data[i] != '\n'; i++)
		buf_putc(spec, data[i] == 0 ? ' ' : data[i]);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mime_message *m = mime_parse((const char *)data, size);
	struct buf out = BUF_INIT, name = BUF_INIT, spec = BUF_INIT;
	struct mime_section s;
	unsigned count = 0;

	check_part(m, m->root, &count);
	FUZZ_CHECK(count == m->nparts);
	FUZZ_CHECK(count <= MIME_MAX_PARTS + MIME_MAX_DEPTH);
	mime_imap_bodystructure(&out, m, m->root, true, 0);
	FUZZ_CHECK(imap_ok(out.data, out.len));
	buf_reset(&out);
	mime_imap_bodystructure(&out, m, m->root, false, MIME_IMAP_UTF8);
	FUZZ_CHECK(imap_ok(out.data, out.len));
	check_sections(m, m->root, &name);
	check_output(m, m->root, &out);

	/* whatever section the input names, the answer is in the input */
	spec_from(data, size, &spec);
	if (mime_section_find(m, spec.data, &s) == 0)
		FUZZ_CHECK(s.off <= size && s.len <= size - s.off);
	mime_free(&m);
	buf_free(&out);
	buf_free(&name);
	buf_free(&spec);
	return 0;
}
