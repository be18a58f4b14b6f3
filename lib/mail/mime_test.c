/*
 * mime_test - the MIME parser: part tree, offsets, sizes, parameters,
 * bounds, section lookup, transfer decoding, encoded words, charsets and
 * address lists.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/test.h"
#include "mail/charset.h"
#include "mail/mime.h"

/* a multipart/mixed with preamble, text, an attachment and epilogue */
static const char mixed[] =
    "From: a@example.org\r\n"
    "Content-Type: multipart/mixed; boundary=\"=_b1\"\r\n"
    "\r\n"
    "This is a preamble.\r\n"
    "--=_b1\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "\r\n"
    "line 1\r\n"
    "line 2\r\n"
    "\r\n"
    "--=_b1 \r\n"
    "Content-Type: application/pdf; name=\"r.pdf\"\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "Content-Disposition: attachment;\r\n"
    "\tfilename*0*=utf-8''%E2%82%AC%20;\r\n"
    "\tfilename*1=\"report.pdf\"\r\n"
    "\r\n"
    "JVBERi0=\r\n"
    "--=_b1--\r\n"
    "epilogue\r\n";

/* parse - parse a C string constant */
static struct mime_message *
parse(const char *s)
{
	return mime_parse(s, strlen(s));
}

/* part_text - the body of p as a C string (static buffer) */
static const char *
part_text(const struct mime_message *m, const struct mime_part *p)
{
	static char out[4096];
	size_t n = p->body_len < sizeof(out) - 1 ? p->body_len :
	    sizeof(out) - 1;

	memcpy(out, m->data + p->body_off, n);
	out[n] = '\0';
	return out;
}

static void
test_mixed_tree(void)
{
	struct mime_message *m = parse(mixed);
	struct mime_part *r = m->root, *t, *a;

	T_ASSERT(r->is_multipart);
	T_EQ_INT(r->nchildren, 2);
	T_EQ_INT(m->nparts, 3);
	t = r->children;
	a = t->next;
	T_EQ_STR(t->type, "text");
	T_EQ_STR(mime_param_get(t->params, t->nparams, "CHARSET"), "utf-8");
	T_EQ_STR(part_text(m, t), "line 1\r\nline 2\r\n");
	T_EQ_INT(t->body_lines, 2);
	T_EQ_INT(t->body_vsize, 16);
	T_EQ_STR(a->subtype, "pdf");
	T_EQ_INT(a->enc, MIME_ENC_BASE64);
	T_EQ_STR(a->encoding, "base64");
	T_EQ_STR(part_text(m, a), "JVBERi0=");
	T_EQ_STR(a->disposition, "attachment");
	T_EQ_INT(a->ndisp_params, 1);
	T_EQ_STR(a->disp_params[0].name, "filename");
	T_ASSERT(a->disp_params[0].extended);
	T_EQ_STR(a->disp_params[0].value, "\xe2\x82\xac report.pdf");
	T_EQ_STR(a->disp_params[0].raw, "utf-8''%E2%82%AC%20report.pdf");
	T_EQ_STR(a->disp_params[0].charset, "utf-8");
	T_EQ_STR(a->disp_params[0].language, "");
	/* the body of the multipart runs to the end, epilogue included */
	T_EQ_INT(r->body_off + r->body_len, strlen(mixed));
	mime_free(&m);
	T_ASSERT(m == NULL);
}

static void
test_rfc2231(void)
{
	static const char msg[] =
	    "Content-Type: application/x-stuff;\n"
	    " title*2=\"isn't it!\";\n"
	    " title*1*=%2A%2A%2Afun%2A%2A%2A%20;\n"
	    " title*0*=us-ascii'en'This%20is%20even%20more%20;\n"
	    " plain=\"quoted \\\"x\\\"\"; stray*3=\"z\";\n"
	    " latin*=iso-8859-1''caf%E9\n"
	    "\n";
	struct mime_message *m = parse(msg);
	const struct mime_part *p = m->root;

	T_EQ_INT(p->nparams, 4);
	T_EQ_STR(p->params[0].name, "title");
	T_EQ_STR(p->params[0].value,
	    "This is even more ***fun*** isn't it!");
	T_EQ_STR(p->params[0].language, "en");
	T_EQ_STR(p->params[0].raw, "us-ascii'en'This%20is%20even%20more%20"
	    "%2A%2A%2Afun%2A%2A%2A%20isn%27t%20it!");
	T_EQ_STR(p->params[1].value, "quoted \"x\"");
	T_EQ_STR(p->params[2].value, "caf\xc3\xa9");
	T_EQ_STR(p->params[3].name, "stray*3");
	T_EQ_STR(mime_param_get(p->params, p->nparams, "latin"),
	    "caf\xc3\xa9");
	mime_free(&m);
}

static void
test_defaults(void)
{
	struct mime_message *m = parse("Subject: x\r\n\r\nbody\r\n");
	const struct mime_part *p = m->root;

	T_ASSERT(p->default_type);
	T_EQ_STR(p->type, "text");
	T_EQ_STR(p->subtype, "plain");
	T_EQ_STR(mime_param_get(p->params, p->nparams, "charset"), "us-ascii");
	T_EQ_INT(p->enc, MIME_ENC_7BIT);
	T_EQ_INT(p->body_lines, 1);
	mime_free(&m);

	/* a bad Content-Type is RFC 2045's default too */
	m = parse("Content-Type: garbage\n\nx");
	T_ASSERT(m->root->default_type);
	T_EQ_STR(m->root->subtype, "plain");
	mime_free(&m);

	/* a multipart without a boundary: one plain part */
	m = parse("Content-Type: multipart/mixed\n\n--x\n\nhi\n--x--\n");
	T_ASSERT(!m->root->is_multipart);
	T_EQ_INT(m->nparts, 1);
	T_EQ_STR(m->root->type, "text");
	mime_free(&m);

	/* an encoded message/rfc822 is not looked into */
	m = parse("Content-Type: message/rfc822\n"
	    "Content-Transfer-Encoding: base64\n\nU3ViamVjdDogeA==\n");
	T_ASSERT(!m->root->is_message);
	T_ASSERT(!m->root->opaque);
	T_EQ_STR(m->root->type, "application");
	mime_free(&m);
}

static void
test_digest(void)
{
	static const char msg[] =
	    "Content-Type: multipart/digest; boundary=d\n\n"
	    "--d\n\nSubject: one\n\nfirst\n"
	    "--d\nContent-Type: text/plain\n\nnot a message\n"
	    "--d--\n";
	struct mime_message *m = parse(msg);
	const struct mime_part *a = m->root->children, *b = a->next;

	T_ASSERT(a->default_type);
	T_ASSERT(a->is_message);
	T_EQ_STR(a->type, "message");
	T_EQ_INT(a->nchildren, 1);
	T_EQ_STR(part_text(m, a->children), "first");
	T_ASSERT(!b->is_message);
	mime_free(&m);
}

static void
test_message_rfc822(void)
{
	static const char msg[] =
	    "Subject: Fwd: hi\n"
	    "Content-Type: multipart/mixed; boundary=a\n\n"
	    "--a\n\nsee below\n"
	    "--a\nContent-Type: message/rfc822\n\n"
	    "Subject: hi\nContent-Type: multipart/alternative; boundary=ab\n\n"
	    "--ab\n\nplain\n--ab\nContent-Type: text/html\n\n<b>x</b>\n"
	    "--ab--\n"
	    "--a--\n";
	struct mime_message *m = parse(msg);
	const struct mime_part *fwd = m->root->children->next, *inner;
	struct buf v = BUF_INIT;

	T_ASSERT(fwd->is_message);
	inner = fwd->children;
	T_ASSERT(inner->is_multipart);
	T_EQ_INT(inner->nchildren, 2);
	T_EQ_INT(mime_header_get(m, inner, "SUBJECT", &v), 0);
	T_EQ_STR(v.data, "hi");
	T_EQ_STR(part_text(m, inner->children), "plain");
	T_EQ_STR(part_text(m, inner->children->next), "<b>x</b>");
	/* the enclosed message is the message/rfc822 part's body */
	T_EQ_INT(fwd->body_off, inner->hdr_off);
	T_EQ_INT(fwd->body_len, inner->hdr_len + inner->body_len);
	T_EQ_INT(m->nparts, 6);
	buf_free(&v);
	mime_free(&m);
}

static void
test_missing_close(void)
{
	/* the inner multipart never closes; the outer boundary ends it */
	static const char msg[] =
	    "Content-Type: multipart/mixed; boundary=out\n\n"
	    "--out\nContent-Type: multipart/related; boundary=in\n\n"
	    "--in\n\none\n--in\n\ntwo\n"
	    "--out\n\nthree\n";
	struct mime_message *m = parse(msg);
	const struct mime_part *r = m->root, *rel;

	T_EQ_INT(r->nchildren, 2);
	rel = r->children;
	T_EQ_INT(rel->nchildren, 2);
	T_EQ_STR(part_text(m, rel->children->next), "two");
	/* no close delimiter at all: the last part runs to the end */
	T_EQ_STR(part_text(m, r->children->next), "three\n");
	mime_free(&m);
}

static void
test_boundary_prefix(void)
{
	/* outer "a", inner "ab": "--ab" is not the outer boundary */
	static const char msg[] =
	    "Content-Type: multipart/mixed; boundary=a\n\n"
	    "--a\nContent-Type: multipart/mixed; boundary=ab\n\n"
	    "--ab\n\nx\n--ab\n\ny\n--ab--\n"
	    "--a\n\nz\n--a--\n";
	/* and the other way round: inner "a" inside outer "ab" */
	static const char msg2[] =
	    "Content-Type: multipart/mixed; boundary=ab\n\n"
	    "--ab\nContent-Type: multipart/mixed; boundary=a\n\n"
	    "--a\n\nx\n--a\n\ny\n--a--\n"
	    "--ab\n\nz\n--ab--\n";
	struct mime_message *m = parse(msg);

	T_EQ_INT(m->root->nchildren, 2);
	T_EQ_INT(m->root->children->nchildren, 2);
	T_EQ_STR(part_text(m, m->root->children->next), "z");
	mime_free(&m);
	m = parse(msg2);
	T_EQ_INT(m->root->nchildren, 2);
	T_EQ_INT(m->root->children->nchildren, 2);
	T_EQ_STR(part_text(m, m->root->children->children->next), "y");
	T_EQ_STR(part_text(m, m->root->children->next), "z");
	mime_free(&m);
}

static void
test_no_separator(void)
{
	struct mime_message *m = parse("Subject: x\r\nFrom: y@z");

	T_ASSERT(!m->root->has_header_end);
	T_EQ_INT(m->root->hdr_len, strlen("Subject: x\r\nFrom: y@z"));
	T_EQ_INT(m->root->body_len, 0);
	mime_free(&m);

	/* a part that is only a header up to the next boundary */
	m = parse("Content-Type: multipart/mixed; boundary=b\n\n"
	    "--b\nContent-Type: text/html\n--b--\n");
	T_EQ_INT(m->root->nchildren, 1);
	T_EQ_STR(m->root->children->subtype, "html");
	T_EQ_INT(m->root->children->body_len, 0);
	mime_free(&m);

	/* empty input */
	m = mime_parse("", 0);
	T_EQ_INT(m->nparts, 1);
	T_EQ_INT(m->root->body_len, 0);
	mime_free(&m);
}

/* lf - a copy of s with every CRLF as LF */
static char *
lf(const char *s, size_t *n)
{
	char *o = malloc(strlen(s) + 1);
	size_t k = 0;

	for (size_t i = 0; s[i] != '\0'; i++)
		if (!(s[i] == '\r' && s[i + 1] == '\n'))
			o[k++] = s[i];
	o[k] = '\0';
	*n = k;
	return o;
}

static void
test_bare_lf(void)
{
	size_t n;
	char *l = lf(mixed, &n);
	struct mime_message *a = parse(mixed), *b = mime_parse(l, n);
	const struct mime_part *pa = a->root->children,
	    *pb = b->root->children;

	T_EQ_INT(b->nparts, a->nparts);
	for (; pa != NULL && pb != NULL; pa = pa->next, pb = pb->next) {
		T_EQ_INT(pb->body_vsize, pa->body_vsize);
		T_EQ_INT(pb->hdr_vsize, pa->hdr_vsize);
		T_EQ_INT(pb->body_lines, pa->body_lines);
		T_EQ_INT(pb->hdr_lines, pa->hdr_lines);
	}
	T_EQ_INT(b->root->body_vsize, a->root->body_vsize);
	mime_free(&a);
	mime_free(&b);
	free(l);
}

static void
test_nul_bytes(void)
{
	static const char msg[] = "Subject: a\0b\n"
	    "Content-Type: multipart/mixed; boundary=q\n\n"
	    "--q\n\nx\0y\n--q--\n";
	struct mime_message *m = mime_parse(msg, sizeof(msg) - 1);

	T_EQ_INT(m->root->nchildren, 1);
	T_EQ_INT(m->root->children->body_len, 3);
	mime_free(&m);
}

/* nest - a message of depth multiparts, each holding the next */
static char *
nest(int depth, size_t *n)
{
	struct buf b = BUF_INIT;

	for (int i = 0; i < depth; i++)
		buf_printf(&b, "Content-Type: multipart/mixed; boundary=b%d"
		    "\n\n--b%d\n", i, i);
	buf_puts(&b, "\nleaf\n");
	for (int i = depth - 1; i >= 0; i--)
		buf_printf(&b, "--b%d--\n", i);
	*n = b.len;
	return buf_steal(&b);
}

static void
test_nesting_bomb(void)
{
	size_t n;
	char *s = nest(100, &n);
	struct mime_message *m = mime_parse(s, n);
	const struct mime_part *p = m->root;
	unsigned depth = 0;

	while (p->children != NULL) {
		p = p->children;
		depth++;
	}
	T_ASSERT(m->limited);
	T_ASSERT(p->opaque);
	T_EQ_INT(depth, MIME_MAX_DEPTH - 1);
	T_EQ_INT(m->nparts, MIME_MAX_DEPTH);
	/* the opaque leaf holds everything below, as bytes */
	T_ASSERT(p->body_len > 0);
	mime_free(&m);
	free(s);

	/* just under the limit: all parsed, nothing opaque */
	s = nest(MIME_MAX_DEPTH - 2, &n);
	m = mime_parse(s, n);
	T_ASSERT(!m->limited);
	T_EQ_INT(m->nparts, MIME_MAX_DEPTH - 1);
	mime_free(&m);
	free(s);
}

static void
test_parts_bomb(void)
{
	struct buf b = BUF_INIT;
	struct mime_message *m;
	const struct mime_part *last = NULL;

	buf_puts(&b, "Content-Type: multipart/mixed; boundary=z\n\n");
	for (int i = 0; i < 10000; i++)
		buf_printf(&b, "--z\n\npart %d\n", i);
	buf_puts(&b, "--z--\nepilogue\n");
	m = mime_parse(b.data, b.len);
	T_EQ_INT(m->nparts, MIME_MAX_PARTS);
	T_ASSERT(m->limited);
	T_EQ_INT(m->root->nchildren, MIME_MAX_PARTS - 1);
	for (last = m->root->children; last->next != NULL; last = last->next)
		;
	T_ASSERT(last->opaque);
	/* the opaque rest runs to the close delimiter */
	T_ASSERT(last->body_off + last->body_len ==
	    (size_t)(strstr(b.data, "--z--") - b.data - 1));
	mime_free(&m);
	buf_free(&b);
}

/* check_tree - every offset of p and below lies in the data */
static int
check_tree(const struct mime_message *m, const struct mime_part *p)
{
	int bad = 0;

	if (p->hdr_off + p->hdr_len > m->len || p->hdr_off > p->body_off ||
	    p->body_off + p->body_len > m->len)
		bad++;
	for (const struct mime_part *k = p->children; k != NULL; k = k->next) {
		if (k->hdr_off < p->body_off ||
		    k->body_off + k->body_len > p->body_off + p->body_len)
			bad++;
		bad += check_tree(m, k);
	}
	return bad;
}

static void
test_empty_part_at_boundary(void)
{
	/* an inner part with no header and no body right before an outer
	 * boundary: it lies inside its parent (fuzzer finding) */
	static const char msg[] =
	    "Content-Type: multipart/mixed; boundary=a\n\n"
	    "--a\nContent-Type: multipart/mixed; boundary=b\n\n"
	    "--b\n--a\nContent-Type: text/plain\n--a--\n";
	struct mime_message *m = parse(msg);
	const struct mime_part *inner = m->root->children;

	T_EQ_INT(check_tree(m, m->root), 0);
	T_EQ_INT(inner->nchildren, 1);
	T_EQ_INT(inner->children->body_len, 0);
	/* a header cut by a boundary leaves it the line break */
	T_EQ_INT(inner->next->hdr_len, strlen("Content-Type: text/plain"));
	mime_free(&m);
}

static void
test_every_prefix(void)
{
	/* every cut of the input parses, offsets within what is there
	 * (ASan sees any read past the end) */
	static const char *msgs[] = {mixed, NULL};

	for (int i = 0; msgs[i] != NULL; i++) {
		size_t n = strlen(msgs[i]);

		for (size_t k = 0; k <= n; k++) {
			char *c = malloc(k + 1);
			struct mime_message *m;

			memcpy(c, msgs[i], k);
			m = mime_parse(c, k);
			T_EQ_INT(check_tree(m, m->root), 0);
			mime_free(&m);
			free(c);
		}
	}
}

static void
test_header_fields(void)
{
	static const char hdr[] = "Subject: one\r\n two\r\nNo colon here\r\n"
	    "X-A :  v  \r\n\r\nBody: no\r\n";
	size_t pos = 0;
	struct mime_field f;
	struct buf v = BUF_INIT;

	T_EQ_INT(mime_header_next(hdr, sizeof(hdr) - 1, &pos, &f), 1);
	T_EQ_MEM(f.name, f.name_len, "Subject", 7);
	mime_header_unfold(&v, f.value, f.value_len);
	T_EQ_STR(v.data, "one two");
	T_EQ_INT(mime_header_next(hdr, sizeof(hdr) - 1, &pos, &f), 1);
	T_EQ_MEM(f.name, f.name_len, "X-A", 3);
	buf_reset(&v);
	mime_header_unfold(&v, f.value, f.value_len);
	T_EQ_STR(v.data, "v");
	T_EQ_INT(mime_header_next(hdr, sizeof(hdr) - 1, &pos, &f), 0);
	buf_free(&v);
}

static void
test_content_fields(void)
{
	static const char msg[] =
	    "Content-Type: text/plain (comment) ; charset = \"iso-8859-1\"\n"
	    "Content-ID: <id@x>\nContent-Description: =?utf-8?q?a?=\n"
	    "Content-Language: en, (x) de\nContent-Location: http://x/\n"
	    "Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\n"
	    "Content-Transfer-Encoding: X-UUENCODE\n\nbody";
	struct mime_message *m = parse(msg);
	const struct mime_part *p = m->root;

	T_EQ_STR(mime_param_get(p->params, p->nparams, "charset"),
	    "iso-8859-1");
	T_EQ_STR(p->id, "<id@x>");
	T_EQ_STR(p->description, "=?utf-8?q?a?=");
	T_EQ_INT(p->nlanguages, 2);
	T_EQ_STR(p->languages[1], "de");
	T_EQ_STR(p->location, "http://x/");
	T_EQ_STR(p->md5, "Q2hlY2sgSW50ZWdyaXR5IQ==");
	T_EQ_INT(p->enc, MIME_ENC_UNKNOWN);
	T_EQ_STR(p->encoding, "X-UUENCODE");
	mime_free(&m);
}

/* section - resolve spec in m into "kind off len" */
static const char *
section(const struct mime_message *m, const char *spec)
{
	static char out[128];
	struct mime_section s;

	if (mime_section_find(m, spec, &s) < 0)
		return "none";
	snprintf(out, sizeof(out), "%d %zu %zu%s%s", (int)s.kind, s.off,
	    s.len, *s.rest ? " rest=" : "", s.rest);
	return out;
}

static void
test_sections(void)
{
	static const char msg[] =
	    "Subject: s\n"				/* 0 */
	    "Content-Type: multipart/mixed; boundary=a\n\n"	/* 11 */
	    "--a\n\none\n"				/* 54 */
	    "--a\nContent-Type: message/rfc822\n\n"	/* 63 */
	    "Subject: in\n\nbody\n"			/* 97 */
	    "--a--\n";					/* 115 */
	struct mime_message *m = parse(msg);
	const struct mime_part *two = m->root->children->next;
	struct buf name = BUF_INIT;

	T_EQ_STR(section(m, ""), "0 0 121");
	T_EQ_STR(section(m, "HEADER"), "1 0 54");
	T_EQ_STR(section(m, "text"), "4 54 67");
	T_EQ_STR(section(m, "1"), "0 59 3");
	T_EQ_STR(section(m, "1.MIME"), "5 58 1");
	T_EQ_STR(section(m, "2"), "0 97 17");
	T_EQ_STR(section(m, "2.MIME"), "5 67 30");
	T_EQ_STR(section(m, "2.HEADER"), "1 97 13");
	T_EQ_STR(section(m, "2.TEXT"), "4 110 4");
	T_EQ_STR(section(m, "2.1"), "0 110 4");
	T_EQ_STR(section(m, "2.HEADER.FIELDS (Subject)"),
	    "2 97 13 rest= (Subject)");
	T_EQ_STR(section(m, "2.header.fields.not (X)"),
	    "3 97 13 rest= (X)");
	T_EQ_STR(section(m, "3"), "none");
	T_EQ_STR(section(m, "1.HEADER"), "none");
	T_EQ_STR(section(m, "1.2"), "none");
	T_EQ_STR(section(m, "0"), "none");
	T_EQ_STR(section(m, "MIME"), "none");
	T_EQ_STR(section(m, "1."), "none");
	T_EQ_STR(section(m, "2.1.1"), "0 110 4");
	T_EQ_STR(section(m, "99999999999999999999"), "none");
	mime_section_name(&name, two);
	T_EQ_STR(name.data, "2");
	buf_reset(&name);
	mime_section_name(&name, two->children);
	T_EQ_STR(name.data, "2.1");
	mime_free(&m);

	/* a message that is not multipart: part 1 is its body */
	m = parse("Subject: x\n\nbody\n");
	T_EQ_STR(section(m, "1"), "0 12 5");
	T_EQ_STR(section(m, "2"), "none");
	buf_reset(&name);
	mime_section_name(&name, m->root);
	T_EQ_STR(name.data, "1");
	mime_free(&m);
	buf_free(&name);
}

/* decode_chunks - decode in with enc fed in chunks of k bytes */
static void
decode_chunks(enum mime_enc enc, const char *in, size_t k, struct buf *out)
{
	struct mime_decoder d;
	size_t n = strlen(in);

	mime_decoder_init(&d, enc);
	for (size_t i = 0; i < n; i += k)
		mime_decoder_feed(&d, in + i, n - i < k ? n - i : k, out);
	mime_decoder_end(&d, out);
}

static void
test_decoders(void)
{
	static const struct {
		enum mime_enc enc;
		const char *in, *out;
	} cases[] = {
		{MIME_ENC_BASE64, "SGVs\r\nbG8s IHdv\ncmxkIQ==",
		    "Hello, world!"},
		{MIME_ENC_BASE64, "QQ==QkM=", "ABC"},
		{MIME_ENC_BASE64, "", ""},
		{MIME_ENC_QP, "caf=C3=A9 =\r\nsoft\r\n",
		    "caf\xc3\xa9 soft\r\n"},
		{MIME_ENC_QP, "trail   \nx\t\r\ny", "trail\nx\r\ny"},
		{MIME_ENC_QP, "a=3d=3Db=\nc= \t\nd", "a==bcd"},
		{MIME_ENC_QP, "bad=zz =4", "bad=zz =4"},
		{MIME_ENC_QP, "end=", "end="},
		{MIME_ENC_7BIT, "as =is\r\n", "as =is\r\n"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = strlen(cases[i].in);

		for (size_t k = 1; k <= n + 1; k++) {
			struct buf out = BUF_INIT;

			decode_chunks(cases[i].enc, cases[i].in, k, &out);
			if (strcmp(out.data, cases[i].out) != 0)
				fprintf(stderr, "  case %zu chunk %zu\n", i, k);
			T_EQ_STR(out.data, cases[i].out);
			buf_free(&out);
		}
	}
}

static void
test_decoder_bounded(void)
{
	struct buf out = BUF_INIT;
	struct mime_decoder d;

	buf_set_limit(&out, 4);
	mime_decoder_init(&d, MIME_ENC_BASE64);
	mime_decoder_feed(&d, "SGVsbG8sIHdvcmxkIQ==", 20, &out);
	T_EQ_STR(out.data, "Hell");
	T_ASSERT(out.overflow);
	buf_free(&out);
}

/* words - decode s */
static const char *
words(const char *s)
{
	static struct buf out = BUF_INIT;

	buf_reset(&out);
	mime_words_decode(&out, s, strlen(s));
	return out.data;
}

static void
test_encoded_words(void)
{
	T_EQ_STR(words("=?utf-8?q?caf=C3=A9?="), "caf\xc3\xa9");
	T_EQ_STR(words("=?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@x>"),
	    "Andr\xc3\xa9 Pirard <PIRARD@x>");
	/* adjacent: the blanks between go, a split character survives */
	T_EQ_STR(words("=?utf-8?b?4oI=?=  \r\n =?utf-8?b?rA==?= end"),
	    "\xe2\x82\xac end");
	T_EQ_STR(words("=?utf-8?q?a?= =?iso-8859-1?q?=E9?="),
	    "a\xc3\xa9");
	T_EQ_STR(words("(=?ISO-8859-1?Q?a?= b)"), "(a b)");
	T_EQ_STR(words("=?utf-8?q?a_b?=x"), "a bx");
	/* bad ones stay */
	T_EQ_STR(words("=?utf-8?x?abc?="), "=?utf-8?x?abc?=");
	T_EQ_STR(words("=?nosuch-charset?q?abc?= x"),
	    "=?nosuch-charset?q?abc?= x");
	T_EQ_STR(words("=?utf-8?q?a=ZZ?="), "=?utf-8?q?a=ZZ?=");
	T_EQ_STR(words("=?utf-8?q?no end"), "=?utf-8?q?no end");
	T_EQ_STR(words("=?utf-8?b?!!!?="), "=?utf-8?b?!!!?=");
	/* RFC 2231 language suffix */
	T_EQ_STR(words("=?US-ASCII*EN?Q?Keith_Moore?="), "Keith Moore");
	/* invalid UTF-8 becomes U+FFFD */
	T_EQ_STR(words("=?utf-8?q?=FF?="), "\xef\xbf\xbd");
	T_EQ_STR(words("plain = text =?"), "plain = text =?");
}

static void
test_charset(void)
{
	struct buf out = BUF_INIT;

	T_EQ_INT(charset_to_utf8("latin1", "\xe9t\xe9", 3, &out), 0);
	T_EQ_STR(out.data, "\xc3\xa9t\xc3\xa9");
	buf_reset(&out);
	T_EQ_INT(charset_to_utf8("no-such", "x", 1, &out), -1);
	T_EQ_INT(out.len, 0);
	T_EQ_INT(charset_to_utf8("UTF-8", "a\xc3", 2, &out), 1);
	T_EQ_STR(out.data, "a\xef\xbf\xbd");
	buf_reset(&out);
	T_EQ_INT(charset_to_utf8("iso-2022-jp", "\x1b$B$3\x1b(B", 8, &out),
	    0);
	T_EQ_STR(out.data, "\xe3\x81\x93");
	buf_reset(&out);
	T_EQ_INT(charset_to_utf8("utf-8//IGNORE", "x", 1, &out), -1);
	/* invalid bytes in the middle: replaced, the rest converted */
	T_ASSERT(charset_to_utf8("shift_jis", "a\x82z", 3, &out) > 0);
	buf_reset(&out);
	/* bounded */
	buf_set_limit(&out, 3);
	(void)charset_to_utf8("latin1", "\xe9\xe9\xe9\xe9", 4, &out);
	T_ASSERT(out.len <= 3);
	T_ASSERT(out.overflow);
	T_ASSERT(charset_utf8_valid("\xe2\x82\xac", 3));
	T_ASSERT(!charset_utf8_valid("\xed\xa0\x80", 3));	/* surrogate */
	T_ASSERT(!charset_utf8_valid("\xc0\xaf", 2));	/* overlong */
	buf_free(&out);
}

/* addrs - an address list as "(name,route,mailbox,host)" items */
static const char *
addrs(const char *s)
{
	static struct buf out = BUF_INIT;
	struct mime_addr *a = mime_addr_parse(s, strlen(s));

	buf_reset(&out);
	for (const struct mime_addr *k = a; k != NULL; k = k->next)
		buf_printf(&out, "(%s,%s,%s,%s)", k->name ? k->name : "NIL",
		    k->route ? k->route : "NIL",
		    k->mailbox ? k->mailbox : "NIL",
		    k->host ? k->host : "NIL");
	mime_addr_free(&a);
	return out.data;
}

static void
test_addresses(void)
{
	T_EQ_STR(addrs("a@b.c"), "(NIL,NIL,a,b.c)");
	T_EQ_STR(addrs(" \"Doe, John\" <john@x.org>, jane@y (Jane D)"),
	    "(Doe, John,NIL,john,x.org)(Jane D,NIL,jane,y)");
	T_EQ_STR(addrs("jane@y (Jane D)"), "(Jane D,NIL,jane,y)");
	T_EQ_STR(addrs("=?utf-8?q?J=C3=B6rg?=   Smith <j@x>"),
	    "(=?utf-8?q?J=C3=B6rg?= Smith,NIL,j,x)");
	T_EQ_STR(addrs("Team: a@x, B <b@y>; c@z"),
	    "(NIL,NIL,Team,NIL)(NIL,NIL,a,x)(B,NIL,b,y)(NIL,NIL,NIL,NIL)"
	    "(NIL,NIL,c,z)");
	T_EQ_STR(addrs("undisclosed-recipients:;"),
	    "(NIL,NIL,undisclosed-recipients,NIL)(NIL,NIL,NIL,NIL)");
	T_EQ_STR(addrs("<@r1,@r2:u@h>"), "(NIL,@r1,@r2,u,h)");
	T_EQ_STR(addrs("\"quoted local\"@x"), "(NIL,NIL,quoted local,x)");
	T_EQ_STR(addrs("nodomain"), "(NIL,NIL,nodomain,MISSING_DOMAIN)");
	T_EQ_STR(addrs("@x"), "(NIL,NIL,MISSING_MAILBOX,x)");
	T_EQ_STR(addrs(""), "");
	T_EQ_STR(addrs(" , ,"), "");
	T_EQ_STR(addrs("G: a@b"), "(NIL,NIL,G,NIL)(NIL,NIL,a,b)"
	    "(NIL,NIL,NIL,NIL)");
	T_EQ_STR(addrs("x <a@b"), "(x,NIL,a,b)");
	T_EQ_STR(addrs("\"unclosed <a@b>"),
	    "(NIL,NIL,unclosed <a@b>,MISSING_DOMAIN)");
}

static void
test_value_prefixes(void)
{
	/* every cut of header values, each in a buffer of exactly its
	 * size (ASan sees a read past the end) */
	static const char *vals[] = {
		"\"Doe, \\\"J\\\"\" <@r:john@x.org> (c (n)), G: a@b, <c@d>;",
		"=?utf-8?b?4oI=?= \r\n =?utf-8?q?=E2=82=AC_x?= =?x?q?a?=",
		"text/plain; a*0*=utf-8'en'%E2%82; a*1*=%AC; b=\"q\\\"\" (c)",
		NULL,
	};

	for (int i = 0; vals[i] != NULL; i++) {
		size_t n = strlen(vals[i]);

		for (size_t k = 0; k <= n; k++) {
			char *c = malloc(k ? k : 1);
			struct mime_addr *a;
			struct buf out = BUF_INIT;
			struct mime_message *m;
			struct buf hdr = BUF_INIT;

			memcpy(c, vals[i], k);
			a = mime_addr_parse(c, k);
			mime_addr_free(&a);
			mime_words_decode(&out, c, k);
			buf_puts(&hdr, "Content-Type: ");
			buf_append(&hdr, c, k);
			free(c);
			c = malloc(hdr.len);
			memcpy(c, hdr.data, hdr.len);
			m = mime_parse(c, hdr.len);
			T_EQ_INT(check_tree(m, m->root), 0);
			mime_free(&m);
			free(c);
			buf_free(&hdr);
			buf_free(&out);
		}
	}
}

static const struct test_case cases[] = {
	{"multipart/mixed tree, offsets, RFC 2231 filename", test_mixed_tree},
	{"RFC 2231 continuations, charset, language", test_rfc2231},
	{"defaults and degraded types", test_defaults},
	{"multipart/digest defaults to message/rfc822", test_digest},
	{"message/rfc822 forward", test_message_rfc822},
	{"missing close delimiters", test_missing_close},
	{"boundaries that are prefixes of others", test_boundary_prefix},
	{"no header/body separator", test_no_separator},
	{"bare LF counts as CRLF", test_bare_lf},
	{"NUL bytes are data", test_nul_bytes},
	{"100-deep nesting bomb", test_nesting_bomb},
	{"10,000-part bomb", test_parts_bomb},
	{"empty part at an outer boundary", test_empty_part_at_boundary},
	{"every prefix of a message parses", test_every_prefix},
	{"header field iteration", test_header_fields},
	{"Content-* fields", test_content_fields},
	{"IMAP section lookup", test_sections},
	{"base64 and QP at every chunk size", test_decoders},
	{"decoder output bounded", test_decoder_bounded},
	{"RFC 2047 encoded words", test_encoded_words},
	{"charset conversion", test_charset},
	{"address lists", test_addresses},
	{"every prefix of header values", test_value_prefixes},
	{0},
};

int
main(void)
{
	return test_run(cases);
}
