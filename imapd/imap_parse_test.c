/*
 * imap_parse_test - the IMAP command parser: every token kind, literals
 * (synchronizing, LITERAL+, literal8), the bounds, sequence sets and
 * SEARCH programs. Every script is fed at every chunk size from one byte
 * up, and must give the same transcript each time.
 */
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "base/test.h"
#include "imap_parse.h"

/* test_tokens - the tokens of the assembled command as text */
static void
test_tokens(const struct imap_parser *p, struct buf *out)
{
	struct imap_cursor c;
	struct imap_token t;
	struct buf v = BUF_INIT;

	imap_cursor_init(&c, p, 0);
	buf_putc(out, '[');
	for (;;) {
		switch (imap_cursor_next(&c, &t)) {
		case IMAP_TOK_ATOM:
			buf_printf(out, "a:%.*s ", (int)t.len, t.p);
			continue;
		case IMAP_TOK_STRING:
			imap_tok_string(&t, &v);
			buf_printf(out, "%s:%s ", t.literal8 ? "l8" :
			    t.literal ? "l" : "q", buf_cstr(&v));
			continue;
		case IMAP_TOK_OPEN:
			buf_puts(out, "( ");
			continue;
		case IMAP_TOK_CLOSE:
			buf_puts(out, ") ");
			continue;
		case IMAP_TOK_ERROR:
			buf_printf(out, "ERROR(%s)", c.error);
			break;
		case IMAP_TOK_END:
			break;
		}
		break;
	}
	buf_puts(out, "]");
	buf_free(&v);
}

/* test_script - feed in in chunks of size chunk; the transcript of the
 * events into out */
static void
test_script(const char *in, size_t len, size_t chunk, size_t line_max,
    unsigned long long lit_max, unsigned long long discard,
    struct buf *out)
{
	struct imap_parser p;
	struct buf tag = BUF_INIT;
	size_t off = 0, used;

	imap_parser_init(&p, line_max, 4096, lit_max, discard);
	while (off < len) {
		size_t n = len - off < chunk ? len - off : chunk;
		size_t done = 0;

		while (done < n) {
			enum imap_feed ev = imap_parser_feed(&p, in + off +
			    done, n - done, &used);

			done += used;
			switch (ev) {
			case IMAP_FEED_MORE:
				break;
			case IMAP_FEED_CONTINUE:
				buf_puts(out, "+ ");
				break;
			case IMAP_FEED_COMMAND:
				test_tokens(&p, out);
				break;
			case IMAP_FEED_ERROR:
				imap_parser_tag(&p, &tag);
				buf_printf(out, "E%d:%s ", (int)p.err,
				    buf_cstr(&tag));
				break;
			case IMAP_FEED_FATAL:
				buf_printf(out, "F%d ", (int)p.err);
				imap_parser_free(&p);
				buf_free(&tag);
				return;
			}
		}
		off += n;
	}
	imap_parser_free(&p);
	buf_free(&tag);
}

/* test_check - want from every chunk size, bounds given */
static int
test_check_b(const char *in, const char *want, size_t line_max,
    unsigned long long lit_max, unsigned long long discard)
{
	size_t len = strlen(in);
	struct buf got = BUF_INIT;
	int bad = 0;

	for (size_t chunk = 1; chunk <= len; chunk++) {
		buf_reset(&got);
		test_script(in, len, chunk, line_max, lit_max, discard, &got);
		if (strcmp(buf_cstr(&got), want) != 0) {
			fprintf(stderr, "  chunk %zu: got  %s\n"
			    "            want %s\n", chunk, buf_cstr(&got),
			    want);
			bad = 1;
			break;
		}
	}
	buf_free(&got);
	return bad;
}

#define CHECK(in, want) T_EQ_INT(test_check_b(in, want, 200, 100, 50), 0)
#define CHECK_B(in, want, l, m, d) T_EQ_INT(test_check_b(in, want, l, m, d), 0)

static void
test_atoms(void)
{
	CHECK("a1 NOOP\r\n", "[a:a1 a:NOOP ]");
	CHECK("a1 noop\n", "[a:a1 a:noop ]");
	CHECK("t STORE 1:* +FLAGS (\\Seen \\Deleted)\r\n",
	    "[a:t a:STORE a:1:* a:+FLAGS ( a:\\Seen a:\\Deleted ) ]");
	CHECK("t FETCH 1 (BODY.PEEK[HEADER.FIELDS (From To)]<0.10>)\r\n",
	    "[a:t a:FETCH a:1 ( a:BODY.PEEK[HEADER.FIELDS ( a:From a:To ) "
	    "a:]<0.10> ) ]");
	CHECK("t LIST \"\" %\r\n", "[a:t a:LIST q: a:% ]");
	CHECK("\r\n", "[]");
}

static void
test_quoted(void)
{
	CHECK("a LOGIN \"joe\" \"p\\\"w\\\\d\"\r\n",
	    "[a:a a:LOGIN q:joe q:p\"w\\d ]");
	CHECK("a LOGIN \"joe\r\n",
	    "[a:a a:LOGIN ERROR(Unterminated quoted string)]");
	CHECK("a LOGIN \"j\\oe\" x\r\n",
	    "[a:a a:LOGIN ERROR(Invalid escape in quoted string)]");
	/* a "{3}" inside a quoted string is no literal */
	CHECK("a LOGIN \"{3}\" x\r\nb NOOP\r\n",
	    "[a:a a:LOGIN q:{3} a:x ][a:b a:NOOP ]");
}

static void
test_spaces(void)
{
	CHECK("a  NOOP\r\n", "[a:a ERROR(Missing or extra space)]");
	CHECK("a NOOP \r\n", "[a:a a:NOOP ERROR(Missing or extra space)]");
	CHECK("a X \"b\"c\r\n",
	    "[a:a a:X q:b ERROR(Missing or extra space)]");
	CHECK("a X (b)c\r\n",
	    "[a:a a:X ( a:b ) ERROR(Missing or extra space)]");
	CHECK("a X b\x01\r\n", "[a:a a:X ERROR(Invalid character in command)]");
	CHECK("a X b\xc3\xa9\r\n",
	    "[a:a a:X ERROR(Invalid character in command)]");
}

static void
test_literals(void)
{
	/* synchronizing: "+" after each header */
	CHECK("a LOGIN {3}\r\njoe {4}\r\nsecr\r\n",
	    "+ + [a:a a:LOGIN l:joe l:secr ]");
	/* LITERAL+: no continuation */
	CHECK("a LOGIN {3+}\r\njoe {4+}\r\nse\r\n\r\n",
	    "[a:a a:LOGIN l:joe l:se\r\n ]");
	/* literal bytes are never commands */
	CHECK("a X {9+}\r\nb LOGOUT\n\r\n", "[a:a a:X l:b LOGOUT\n ]");
	/* empty literal, literal8 */
	CHECK("a X {0}\r\n ~{2}\r\nab\r\n", "+ + [a:a a:X l: l8:ab ]");
	CHECK("a X ~{2+}\r\nab\r\n", "[a:a a:X l8:ab ]");
	/* RFC 6855 4: APPEND's UTF8 data item, a literal8 in a list
	 * (synchronizing, LITERAL+, then another message after it) */
	CHECK("a APPEND INBOX UTF8 (~{2}\r\n\xc3\xa4)\r\n",
	    "+ [a:a a:APPEND a:INBOX a:UTF8 ( l8:\xc3\xa4 ) ]");
	CHECK("a APPEND INBOX (\\Seen) UTF8 (~{1+}\r\nx) UTF8 "
	    "(~{1+}\r\ny)\r\n", "[a:a a:APPEND a:INBOX ( a:\\Seen ) "
	    "a:UTF8 ( l8:x ) a:UTF8 ( l8:y ) ]");
	/* a NUL only in literal8 */
	T_EQ_INT(test_check_b("a X {1+}\r\n\0\r\n", "", 200, 100, 50), 0);
	/* "{" where no literal is */
	CHECK("a X {3} y\r\n", "[a:a a:X ERROR(Unexpected '{')]");
	CHECK("a X foo{3}\r\nabc\r\n",
	    "+ [a:a a:X ERROR(Invalid character in command)]");
	/* a literal ends the token; a space must follow */
	CHECK("a X {1}\r\nbc\r\n",
	    "+ [a:a a:X l:b ERROR(Missing or extra space)]");
}

static void
test_literal_nul(void)
{
	const char in[] = "a X {1+}\r\n\0\r\n";
	struct imap_parser p;
	struct imap_cursor c;
	struct imap_token t;
	size_t used, off = 0;
	enum imap_feed ev;

	imap_parser_init(&p, 200, 4096, 100, 50);
	do {
		ev = imap_parser_feed(&p, in + off, sizeof(in) - 1 - off,
		    &used);
		off += used;
	} while (ev == IMAP_FEED_MORE && off < sizeof(in) - 1);
	T_EQ_INT(ev, IMAP_FEED_COMMAND);
	imap_cursor_init(&c, &p, 0);
	T_EQ_INT(imap_syntax_check(&c), -1);
	T_EQ_STR(c.error, "NUL in a literal");
	imap_parser_free(&p);
	(void)t;
}

static void
test_bounds(void)
{
	char big[400];

	/* a line over line_max is skipped to its LF, then refused */
	memset(big, 'x', sizeof(big));
	memcpy(big, "t1 ", 3);
	memcpy(big + sizeof(big) - 14, "\r\nt2 NOOP\r\n", 12);
	CHECK_B(big, "E1:t1 [a:t2 a:NOOP ]", 100, 100, 50);
	/* a synchronizing literal over the bound: refused, no "+" */
	CHECK("a LOGIN {101}\r\nb NOOP\r\n", "E2:a [a:b a:NOOP ]");
	/* LITERAL+ over the bound, small enough to discard */
	CHECK_B("a X {20+}\r\n01234567890123456789 y\r\nb NOOP\r\n",
	    "E2:a [a:b a:NOOP ]", 200, 10, 50);
	/* LITERAL+ over the bound and the discard bound: fatal */
	CHECK("a X {99999+}\r\nb NOOP\r\n", "F2 ");
	/* a literal too long in digits */
	CHECK("a X {99999999999999999999999}\r\n", "E4:a ");
	CHECK("a X {99999999999999999999999+}\r\n", "F4 ");
	/* a too-long line ending in a LITERAL+ header skips the literal */
	memset(big, 'x', sizeof(big));
	memcpy(big, "t1 ", 3);
	memcpy(big + sizeof(big) - 26, "{5+}\r\nb BYE\r\nt2 NOOP\r\n", 23);
	CHECK_B(big, "E1:t1 [a:t2 a:NOOP ]", 100, 100, 50);
	/* ... or, with no room to discard, ends the session */
	CHECK_B(big, "F1 ", 100, 100, 0);
}

static void
test_runaway(void)
{
	struct imap_parser p;
	static char junk[IMAP_SKIP_MAX + 200];
	size_t used, off = 0;
	enum imap_feed ev = IMAP_FEED_MORE;

	memset(junk, 'x', sizeof(junk));
	imap_parser_init(&p, 100, 4096, 10, 10);
	while (off < sizeof(junk) && ev == IMAP_FEED_MORE) {
		ev = imap_parser_feed(&p, junk + off, 7, &used);
		off += used;
	}
	T_EQ_INT(ev, IMAP_FEED_FATAL);
	T_EQ_INT(p.err, IMAP_ERR_RUNAWAY);
	T_ASSERT(off <= IMAP_SKIP_MAX + 101);
	imap_parser_free(&p);
}

static void
test_nesting(void)
{
	char in[200];
	size_t n = 0;

	n += (size_t)snprintf(in, sizeof(in), "a X ");
	for (int i = 0; i < IMAP_LIST_DEPTH_MAX + 1; i++)
		in[n++] = '(';
	for (int i = 0; i < IMAP_LIST_DEPTH_MAX + 1; i++)
		in[n++] = ')';
	memcpy(in + n, "\r\n", 3);
	CHECK(in, "[a:a a:X ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( "
	    "ERROR(Lists nested too deep)]");
	CHECK("a X (a (b)\r\n", "[a:a a:X ( a:a ( a:b ) ERROR(Unclosed list)]");
	CHECK("a X a)\r\n", "[a:a a:X a:a ERROR(Unexpected ')')]");
}

static void
test_lines_only(void)
{
	struct imap_parser p;
	const char in[] = "dGVzdA== {3}\r\n";
	size_t used;

	imap_parser_init(&p, 200, 4096, 10, 10);
	p.lines_only = true;
	T_EQ_INT(imap_parser_feed(&p, in, sizeof(in) - 1, &used),
	    IMAP_FEED_COMMAND);
	T_EQ_INT(used, sizeof(in) - 1);
	T_EQ_STR(buf_cstr(&p.cmd), "dGVzdA== {3}");
	imap_parser_free(&p);
}

static void
test_tag(void)
{
	T_ASSERT(imap_tag_ok("a1", 2));
	T_ASSERT(imap_tag_ok("A]", 2));
	T_ASSERT(!imap_tag_ok("a+", 2));
	T_ASSERT(!imap_tag_ok("*", 1));
	T_ASSERT(!imap_tag_ok("a{", 2));
	T_ASSERT(!imap_tag_ok("", 0));
}

/* test_seqset_text - a set parsed and formatted back, or "BAD" */
static void
test_seqset_text(const char *in, struct buf *out)
{
	struct imap_seqset s;

	buf_reset(out);
	if (imap_seqset_parse(in, strlen(in), &s) < 0) {
		buf_puts(out, "BAD");
		return;
	}
	buf_printf(out, "%zu%s", s.n, s.saved ? "$" : "");
	for (size_t i = 0; i < s.n; i++)
		buf_printf(out, " %u-%u", s.r[i].lo, s.r[i].hi);
	imap_seqset_free(&s);
}

static void
test_seqset(void)
{
	static const char *const cases[][2] = {
		{"1", "1 1-1"}, {"1:*", "1 1-0"}, {"*", "1 0-0"},
		{"5:3,7,9:*", "3 5-3 7-7 9-0"}, {"$", "0$"},
		{"4294967295", "1 4294967295-4294967295"},
		{"4294967296", "BAD"}, {"0", "BAD"}, {"01", "BAD"},
		{"1,", "BAD"}, {",1", "BAD"}, {"1::2", "BAD"}, {"", "BAD"},
		{"1:", "BAD"}, {"a", "BAD"}, {"$,1", "BAD"}, {"1 2", "BAD"},
	};
	struct buf out = BUF_INIT;
	struct buf big = BUF_INIT;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		test_seqset_text(cases[i][0], &out);
		T_EQ_STR(buf_cstr(&out), cases[i][1]);
	}
	for (int i = 0; i < IMAP_SEQSET_MAX + 1; i++)
		buf_puts(&big, i ? ",1" : "1");
	test_seqset_text(buf_cstr(&big), &out);
	T_EQ_STR(buf_cstr(&out), "BAD");
	buf_free(&big);
	buf_free(&out);
}

/* test_ranges_norm - "*" made top, ranges turned, sorted and merged
 * (touching ones too), no overflow at the top */
static void
test_ranges_norm(void)
{
	struct imap_range r[] = {
		{9, 0}, {5, 3}, {7, 7}, {1, 1}, {2, 2}, {8, 8}, {20, 30},
	};
	struct imap_range t[] = { {UINT32_MAX, 1}, {0, 0} };
	size_t n = sizeof(r) / sizeof(r[0]), nt = 2;

	imap_ranges_norm(r, &n, 12);
	T_EQ_INT(n, 3);
	T_EQ_INT(r[0].lo, 1);
	T_EQ_INT(r[0].hi, 5);
	T_EQ_INT(r[1].lo, 7);
	T_EQ_INT(r[1].hi, 12);
	T_EQ_INT(r[2].lo, 20);
	T_EQ_INT(r[2].hi, 30);
	imap_ranges_norm(t, &nt, UINT32_MAX);
	T_EQ_INT(nt, 1);
	T_EQ_INT(t[0].lo, 1);
	T_EQ_INT(t[0].hi, UINT32_MAX);
	nt = 0;
	imap_ranges_norm(t, &nt, 1);
	T_EQ_INT(nt, 0);
}

static void
test_dates(void)
{
	int d = 0;

	T_EQ_INT(imap_date_parse("1-Feb-1994", 10, &d), 0);
	T_EQ_INT(d, 19940201);
	T_EQ_INT(imap_date_parse("29-feb-2024", 11, &d), 0);
	T_EQ_INT(d, 20240229);
	T_EQ_INT(imap_date_parse("32-Jan-2024", 11, &d), -1);
	T_EQ_INT(imap_date_parse("1-Foo-2024", 10, &d), -1);
	T_EQ_INT(imap_date_parse("1-Jan-24", 8, &d), -1);
	T_EQ_INT(imap_date_parse("-Jan-2024", 9, &d), -1);
	T_EQ_INT(imap_date_parse("001-Jan-2024", 12, &d), -1);
}

/* test_search_text - parse "SEARCH ..." in and format the tree */
static void
test_search_text(const char *in, struct buf *out)
{
	struct imap_parser p;
	struct imap_cursor c;
	struct imap_search_program prog;
	const char *why = NULL;
	size_t used, off = 0, len = strlen(in);
	enum imap_feed ev = IMAP_FEED_MORE;

	buf_reset(out);
	imap_parser_init(&p, 10000, 100000, 1000, 0);
	while (off < len) {
		ev = imap_parser_feed(&p, in + off, len - off, &used);
		off += used;
		if (ev != IMAP_FEED_MORE && ev != IMAP_FEED_CONTINUE)
			break;
	}
	if (ev != IMAP_FEED_COMMAND) {
		buf_puts(out, "FEED");
		imap_parser_free(&p);
		return;
	}
	imap_cursor_init(&c, &p, 0);
	if (imap_search_parse(&c, &prog, &why) < 0) {
		buf_printf(out, "BAD %s", why);
	} else {
		imap_search_format(&prog, out);
		imap_search_free(&prog);
	}
	imap_parser_free(&p);
}

static void
test_search(void)
{
	static const char *const cases[][2] = {
		{"ALL\r\n", "(ALL)"},
		{"all unseen\r\n", "(ALL UNSEEN)"},
		{"ANSWERED DELETED DRAFT FLAGGED SEEN NEW OLD RECENT\r\n",
		    "(ANSWERED DELETED DRAFT FLAGGED SEEN NEW OLD RECENT)"},
		{"UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNSEEN\r\n",
		    "(UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNSEEN)"},
		{"FROM joe TO \"a b\" CC c BCC d SUBJECT {2}\r\nhi\r\n",
		    "(FROM \"joe\" TO \"a b\" CC \"c\" BCC \"d\" "
		    "SUBJECT \"hi\")"},
		{"BODY x TEXT y\r\n", "(BODY \"x\" TEXT \"y\")"},
		{"HEADER Message-ID \"<a@b>\"\r\n",
		    "(HEADER \"Message-ID\" \"<a@b>\")"},
		{"KEYWORD $Junk UNKEYWORD foo\r\n",
		    "(KEYWORD \"$Junk\" UNKEYWORD \"foo\")"},
		{"BEFORE 1-Feb-1994 ON \"2-Mar-2000\" SINCE 3-Apr-2001\r\n",
		    "(BEFORE 19940201 ON 20000302 SINCE 20010403)"},
		{"SENTBEFORE 1-Feb-1994 SENTON 1-Feb-1994 "
		    "SENTSINCE 1-Feb-1994\r\n",
		    "(SENTBEFORE 19940201 SENTON 19940201 "
		    "SENTSINCE 19940201)"},
		{"LARGER 100 SMALLER 9223372036854775807\r\n",
		    "(LARGER 100 SMALLER 9223372036854775807)"},
		{"1:3,5 UID 7:* $\r\n", "(1:3,5 UID 7:* $)"},
		{"NOT SEEN\r\n", "(NOT SEEN)"},
		{"OR FROM a NOT (TO b SEEN)\r\n",
		    "(OR FROM \"a\" NOT (TO \"b\" SEEN))"},
		{"OR OR 1 2 3\r\n", "(OR OR 1 2 3)"},
		{"MODSEQ 5\r\n", "(MODSEQ 5)"},
		{"MODSEQ \"/flags/\\\\Seen\" ALL 7\r\n",
		    "(MODSEQ \"/flags/\\Seen\" all 7)"},
		{"MODSEQ \"/flags/$Junk\" priv 0\r\n",
		    "(MODSEQ \"/flags/$Junk\" priv 0)"},
		{"MODSEQ \"/FLAGS/\\\\draft\" Shared 9\r\n",
		    "(MODSEQ \"/FLAGS/\\draft\" shared 9)"},
		{"CHARSET UTF-8 TEXT x\r\n", "CHARSET UTF-8 (TEXT \"x\")"},
		{"RETURN (MIN COUNT) ALL\r\n", "RETURN 0x9 (ALL)"},
		{"RETURN () CHARSET utf-8 ALL\r\n",
		    "RETURN 0x4 CHARSET utf-8 (ALL)"},
		{"((ALL))\r\n", "(((ALL)))"},
		/* the refusals */
		{"\r\n", "BAD Missing search key"},
		{"CHARSET UTF-8\r\n", "BAD Missing search key"},
		{"FOO\r\n", "BAD Unknown search key"},
		{"FROM\r\n", "BAD Search key needs a string"},
		{"FROM (a)\r\n", "BAD Search key needs a string"},
		{"HEADER x\r\n", "BAD HEADER needs a string"},
		{"BEFORE 1-Foo-2000\r\n", "BAD Invalid date"},
		{"LARGER x\r\n", "BAD Invalid number"},
		{"LARGER 9223372036854775808\r\n", "BAD Invalid number"},
		{"UID 0\r\n", "BAD Invalid sequence set"},
		{"1:x\r\n", "BAD Invalid sequence set"},
		{"NOT\r\n", "BAD Missing search key"},
		{"OR ALL\r\n", "BAD Missing search key"},
		{"()\r\n", "BAD Missing search key"},
		{"(ALL\r\n", "BAD Unclosed list"},
		{"RETURN (FOO) ALL\r\n", "BAD Unknown RETURN option"},
		{"RETURN ALL\r\n", "BAD RETURN needs a list of options"},
		{"MODSEQ \"/flags/\\\\Seen\" foo 5\r\n",
		    "BAD Invalid MODSEQ entry type"},
		{"MODSEQ \"x\" all 5\r\n", "BAD Invalid MODSEQ entry name"},
		{"MODSEQ \"/flags/\" all 5\r\n",
		    "BAD Invalid MODSEQ entry name"},
		{"MODSEQ \"/flags/a b\" all 5\r\n",
		    "BAD Invalid MODSEQ entry name"},
		{"MODSEQ \"/flags/\\\\\" all 5\r\n",
		    "BAD Invalid MODSEQ entry name"},
		{"MODSEQ \"/flags/\\\\Seen\" 5\r\n",
		    "BAD Invalid MODSEQ entry type"},
		{"MODSEQ x\r\n", "BAD Invalid MODSEQ value"},
		{"KEYWORD \"x\"\r\n", "BAD Search key needs a keyword"},
	};
	struct buf out = BUF_INIT;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		test_search_text(cases[i][0], &out);
		if (strcmp(buf_cstr(&out), cases[i][1]) != 0)
			fprintf(stderr, "  case %s", cases[i][0]);
		T_EQ_STR(buf_cstr(&out), cases[i][1]);
	}
	buf_free(&out);
}

static void
test_search_bounds(void)
{
	struct buf in = BUF_INIT, out = BUF_INIT;

	/* depth: NOT NOT NOT ... */
	for (int i = 0; i < IMAP_SEARCH_DEPTH_MAX + 2; i++)
		buf_puts(&in, "NOT ");
	buf_puts(&in, "ALL\r\n");
	test_search_text(buf_cstr(&in), &out);
	T_EQ_STR(buf_cstr(&out), "BAD Search program nested too deep");
	/* OR OR OR ... */
	buf_reset(&in);
	for (int i = 0; i < IMAP_SEARCH_DEPTH_MAX + 2; i++)
		buf_puts(&in, "OR ");
	buf_puts(&in, "ALL\r\n");
	test_search_text(buf_cstr(&in), &out);
	T_EQ_STR(buf_cstr(&out), "BAD Search program nested too deep");
	/* count */
	buf_reset(&in);
	for (int i = 0; i < IMAP_SEARCH_KEYS_MAX + 1; i++)
		buf_puts(&in, "ALL ");
	buf_puts(&in, "ALL\r\n");
	test_search_text(buf_cstr(&in), &out);
	T_EQ_STR(buf_cstr(&out), "BAD Too many search keys");
	/* BODY and TEXT keys: each reads every body (16 are fine) */
	buf_reset(&in);
	for (int i = 0; i < IMAP_SEARCH_TEXTS_MAX; i++)
		buf_puts(&in, i % 2 ? "NOT BODY x " : "OR TEXT y ALL ");
	buf_puts(&in, "ALL\r\n");
	test_search_text(buf_cstr(&in), &out);
	T_ASSERT(strncmp(buf_cstr(&out), "BAD", 3) != 0);
	buf_reset(&in);
	for (int i = 0; i <= IMAP_SEARCH_TEXTS_MAX; i++)
		buf_puts(&in, i % 2 ? "NOT BODY x " : "OR TEXT y ALL ");
	buf_puts(&in, "ALL\r\n");
	test_search_text(buf_cstr(&in), &out);
	T_EQ_STR(buf_cstr(&out), "BAD Too many BODY and TEXT keys");
	buf_free(&in);
	buf_free(&out);
}

/* a spool for test_spool: takes literals of 5 bytes or more */
struct test_spool {
	struct buf got;		/* "<n>:" then the bytes, per literal */
	int fail_after;		/* spool_write fails after this many bytes
				 * (-1 never) */
	int written;
};

static int
test_spool_ask(void *ctx, const struct imap_parser *p,
    unsigned long long n, bool literal8)
{
	struct test_spool *ts = ctx;

	(void)p;
	if (n < 5)
		return 0;
	if (n == 999)
		return -1;
	buf_printf(&ts->got, "%s%llu:", literal8 ? "~" : "", n);
	return 1;
}

static int
test_spool_write(void *ctx, const char *data, size_t n)
{
	struct test_spool *ts = ctx;

	if (ts->fail_after >= 0 && ts->written + (int)n > ts->fail_after)
		return -1;
	ts->written += (int)n;
	buf_append(&ts->got, data, n);
	return 0;
}

/* test_spool_run - in at chunk size chunk: the events, the spooled
 * bytes, and the tokens of the first command */
static void
test_spool_run(const char *in, size_t chunk, int fail_after,
    struct buf *out)
{
	struct imap_parser p;
	struct test_spool ts = {BUF_INIT, fail_after, 0};
	size_t off = 0, len = strlen(in), used;
	bool first = true;

	buf_init(&ts.got);
	/* cmd_max 64: the spooled bytes do not count */
	imap_parser_init(&p, 64, 64, 1000, 0);
	p.spool = test_spool_ask;
	p.spool_write = test_spool_write;
	p.spool_ctx = &ts;
	while (off < len) {
		size_t n = len - off < chunk ? len - off : chunk;
		enum imap_feed ev = imap_parser_feed(&p, in + off, n, &used);

		off += used;
		if (ev == IMAP_FEED_COMMAND && first) {
			struct imap_cursor c;
			struct imap_token t;

			imap_cursor_init(&c, &p, 0);
			while (imap_cursor_next(&c, &t) != IMAP_TOK_END &&
			    t.type != IMAP_TOK_ERROR)
				if (t.spooled)
					buf_printf(out, "S%llu@%zu ",
					    t.spool_len, t.lit_index);
				else
					buf_printf(out, "%.*s ", (int)t.len,
					    t.p);
			if (c.error != NULL)
				buf_printf(out, "ERROR(%s) ", c.error);
			first = false;
		} else if (ev == IMAP_FEED_ERROR) {
			buf_printf(out, "E%d ", (int)p.err);
		} else if (ev == IMAP_FEED_CONTINUE) {
			buf_puts(out, "+ ");
		}
	}
	buf_printf(out, "| %s", buf_cstr(&ts.got));
	imap_parser_free(&p);
	buf_free(&ts.got);
}

static void
test_spool(void)
{
	static const char *in = "a APPEND x {3}\r\nabc {10}\r\n0123456789 "
	    "~{6+}\r\nABCDEF\r\nb NOOP\r\n";
	struct buf out = BUF_INIT, first = BUF_INIT;

	for (size_t chunk = 1; chunk <= strlen(in); chunk++) {
		buf_reset(&out);
		test_spool_run(in, chunk, -1, &out);
		if (chunk == 1)
			buf_puts(&first, buf_cstr(&out));
		T_EQ_STR(buf_cstr(&out), buf_cstr(&first));
	}
	/* the small literal stays in the command; the big ones are the
	 * spool's, outside cmd_max (64), with their sizes and indexes */
	T_EQ_STR(buf_cstr(&first), "+ + a APPEND x abc S10@1 S6@2 | "
	    "10:0123456789~6:ABCDEF");
	/* a spool that fails: the rest is skipped, the command refused,
	 * the next one runs */
	buf_reset(&out);
	test_spool_run("a APPEND {10}\r\n0123456789\r\nb NOOP\r\n", 4, 4,
	    &out);
	T_EQ_STR(buf_cstr(&out), "+ E6 b NOOP | 10:0123");
	/* a spool that refuses at the header: no "+" */
	buf_reset(&out);
	test_spool_run("a APPEND {999}\r\nb NOOP\r\n", 3, -1, &out);
	T_EQ_STR(buf_cstr(&out), "E6 b NOOP | ");
	buf_free(&out);
	buf_free(&first);
}

static const struct test_case cases[] = {
	{"atoms, lists, sections", test_atoms},
	{"quoted strings", test_quoted},
	{"spaces between tokens", test_spaces},
	{"literals", test_literals},
	{"NUL in a literal", test_literal_nul},
	{"line and literal bounds", test_bounds},
	{"spooled literals", test_spool},
	{"runaway line", test_runaway},
	{"nesting", test_nesting},
	{"SASL lines", test_lines_only},
	{"tags", test_tag},
	{"sequence sets", test_seqset},
	{"sequence ranges normalised", test_ranges_norm},
	{"dates", test_dates},
	{"SEARCH programs", test_search},
	{"SEARCH bounds", test_search_bounds},
	{NULL, NULL},
};

int
main(void)
{
	return test_run(cases);
}
