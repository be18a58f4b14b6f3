/*
 * imap_sort_test - RFC 5256 base subjects (the section 2.1 rules one by
 * one, encoded words, nested re:/fwd:/[tags]), SORT by every criterion
 * with REVERSE and ties, RFC 5957 DISPLAYFROM/DISPLAYTO, ESORT answers,
 * and the SORT command's parser.
 */
#include <string.h>

#include "base/buf.h"
#include "base/mem.h"
#include "base/test.h"
#include "imap_parse.h"
#include "imap_search_eval.h"
#include "imap_sort.h"
#include "imap_text.h"

static void
test_base_subject(void)
{
	static const struct {
		const char *in, *want;
		bool reply;
	} cases[] = {
		{"hello", "hello", false},
		{"Re: Re: hello", "hello", true},
		{"RE:hello", "hello", true},
		{"Fwd: [list] Re: [other] foo (fwd)", "foo", true},
		{"[fwd: re: hello]", "hello", true},
		{"[PATCH] fix", "fix", false},
		{"[PATCH]", "[patch]", false},
		{"[a] [b]  ", "[b]", false},
		{"Re:", "", true},
		{"=?UTF-8?Q?Re=3A_=C3=84rger?=", "\xc3\xa4rger", true},
		{"  Hello \t  World  ", "hello world", false},
		{"Hello\r\n World", "hello world", false},
		{"re [foo]: bar", "bar", true},
		{"Re:Re:  Fw: FWD: x", "x", true},
		{"fwd", "fwd", false},
		{"Re: [fwd: Re: a] (fwd)", "a", true},
		{"[a][b] re: x", "x", true},
		{"[a] x", "x", false},
		{"x (fwd) (fwd)", "x", true},
		{"x(fwd)", "x", true},
		{"[fwd: [fwd: deep]]", "deep", true},
		{"[fwd: x", "[fwd: x", false},
		{"Ree: x", "ree: x", false},
		{"Re x", "re x", false},
		{"[unclosed re: x", "[unclosed re: x", false},
		{"", "", false},
	};
	struct buf out = BUF_INIT;

	/* a NUL is a blank (fuzzing found a key cut short at one) */
	T_ASSERT(!imap_sort_base_subject("a \0\0b\0", 7, &out));
	T_EQ_INT(out.len, 3);
	T_EQ_STR(buf_cstr(&out), "a b");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool r;

		buf_reset(&out);
		r = imap_sort_base_subject(cases[i].in, strlen(cases[i].in),
		    &out);
		if (strcmp(buf_cstr(&out), cases[i].want) != 0 ||
		    r != cases[i].reply)
			fprintf(stderr, "  case \"%s\"\n", cases[i].in);
		T_EQ_STR(buf_cstr(&out), cases[i].want);
		T_EQ_INT(r, cases[i].reply);
	}
	buf_free(&out);
}

/* the mailbox */
static const struct {
	uint32_t uid;
	unsigned long long size;
	const char *internal;
	const char *text;
} tm[] = {
	{10, 400, "5 Jan 2023 00:00:00 +0000",
	    "From: \"Zed\" <amy@b.example>\n"
	    "To: carol@x.example\n"
	    "Cc: dan@x.example\n"
	    "Subject: Re: beta\n"
	    "Date: Mon, 2 Jan 2023 10:00:00 +0000\n\nbody\n"},
	{20, 100, "3 Jan 2023 00:00:00 +0000",
	    "From: bob@a.example\n"
	    "To: \"Alice\" <zoe@x.example>\n"
	    "Subject: alpha\n"
	    "Date: 2 Jan 2023 09:00:00 -0200\n\nbody\n"},
	{30, 300, "1 Jan 2023 12:00:00 +0000",
	    "From: \"=?ISO-8859-1?Q?=C4ric?=\" <cat@c.example>\n"
	    "To: bob@x.example\n"
	    "Subject: [list] Alpha\n\nbody\n"},
	{40, 200, "2 Jan 2023 00:00:00 +0000",
	    "From: <dan@d.example>\n"
	    "Cc: amy@x.example\n"
	    "Subject: BETA (fwd)\n"
	    "Date: 1 Jan 2023 23:00:00 -0500\n\nbody\n"},
};
#define NMSG (sizeof(tm) / sizeof(tm[0]))

static int
t_view(void *ctx, uint32_t i, struct imap_msg_view *v)
{
	struct imap_text_date d;

	(void)ctx;
	if (imap_text_date_parse(tm[i].internal, strlen(tm[i].internal),
	    &d) < 0)
		return -1;
	v->uid = tm[i].uid;
	v->internaldate = d.utc;
	v->internal_zone = d.zone;
	v->size = tm[i].size;
	v->modseq = 7 - i;	/* 7 6 5 4 */
	return 0;
}

static int
t_map(void *ctx, uint32_t i, const char **p, size_t *n)
{
	(void)ctx;
	*p = tm[i].text;
	*n = strlen(tm[i].text);
	return 0;
}

static const struct imap_mailbox_src tsrc = {
	NULL, NMSG, t_view, NULL, t_map, NULL,
};

/* run - "SORT args" through parser, search, sort and answer */
static void
run(const char *args, bool uid, struct buf *out)
{
	struct imap_parser p;
	struct imap_cursor c;
	struct imap_sort_program sp;
	struct imap_search_eval ev;
	const char *why = NULL;
	size_t used;

	buf_reset(out);
	imap_parser_init(&p, 10000, 100000, 1000, 0);
	if (imap_parser_feed(&p, args, strlen(args), &used) !=
	    IMAP_FEED_COMMAND) {
		buf_puts(out, "FEED");
		imap_parser_free(&p);
		return;
	}
	imap_cursor_init(&c, &p, 0);
	if (imap_sort_parse(&c, &sp, &why) < 0) {
		buf_printf(out, "BAD %s", why);
		imap_parser_free(&p);
		return;
	}
	if (imap_search_begin(&ev, &sp.search, &tsrc, NULL, &why) < 0) {
		buf_printf(out, "NO %s", why);
	} else {
		while (imap_search_step(&ev, 0) == IMAP_SEARCH_MORE)
			;
		imap_sort_matches(&ev, &sp);
		imap_sort_answer(&ev, &sp, "A1", uid, true, out);
		imap_search_end(&ev);
	}
	imap_sort_free(&sp);
	imap_parser_free(&p);
}

static void
test_sort(void)
{
	static const char *const cases[][3] = {
		{"(ARRIVAL) UTF-8 ALL", "", "* SORT 3 4 2 1\r\n"},
		{"(REVERSE ARRIVAL) UTF-8 ALL", "", "* SORT 1 2 4 3\r\n"},
		{"(DATE) UTF-8 ALL", "", "* SORT 3 4 1 2\r\n"},
		{"(SIZE) US-ASCII ALL", "", "* SORT 2 4 3 1\r\n"},
		{"(SUBJECT) UTF-8 ALL", "", "* SORT 2 3 1 4\r\n"},
		{"(SUBJECT DATE) UTF-8 ALL", "", "* SORT 3 2 4 1\r\n"},
		{"(SUBJECT REVERSE DATE) UTF-8 ALL", "", "* SORT 2 3 1 4\r\n"},
		{"(REVERSE SUBJECT) UTF-8 ALL", "", "* SORT 1 4 2 3\r\n"},
		{"(FROM) UTF-8 ALL", "", "* SORT 1 2 3 4\r\n"},
		{"(REVERSE FROM) UTF-8 ALL", "", "* SORT 4 3 2 1\r\n"},
		{"(TO) UTF-8 ALL", "", "* SORT 4 3 1 2\r\n"},
		{"(CC) UTF-8 ALL", "", "* SORT 2 3 4 1\r\n"},
		{"(CC REVERSE SIZE) UTF-8 ALL", "", "* SORT 3 2 4 1\r\n"},
		{"(DISPLAYFROM) UTF-8 ALL", "", "* SORT 2 4 1 3\r\n"},
		{"(DISPLAYTO) UTF-8 ALL", "", "* SORT 4 2 3 1\r\n"},
		{"(SUBJECT) UTF-8 NOT FROM amy", "", "* SORT 2 3 4\r\n"},
		{"(SUBJECT) UTF-8 NOT FROM amy", "u", "* SORT 20 30 40\r\n"},
		{"(DATE) UTF-8 DELETED", "", "* SORT\r\n"},
		{"RETURN (MIN MAX COUNT ALL) (DATE) UTF-8 ALL", "",
		    "* ESEARCH (TAG \"A1\") MIN 1 MAX 4 COUNT 4 "
		    "ALL 3:4,1:2\r\n"},
		{"RETURN () (ARRIVAL) UTF-8 ALL", "u",
		    "* ESEARCH (TAG \"A1\") UID ALL 30,40,20,10\r\n"},
		{"RETURN (COUNT) (ARRIVAL) UTF-8 DELETED", "",
		    "* ESEARCH (TAG \"A1\") COUNT 0\r\n"},
		{"(REVERSE DATE) UTF-8 MODSEQ 5", "",
		    "* SORT 2 1 3 (MODSEQ 7)\r\n"},
		{"RETURN (MAX) (SIZE) UTF-8 MODSEQ 5", "u",
		    "* ESEARCH (TAG \"A1\") UID MAX 30 MODSEQ 5\r\n"},
		{"RETURN (ALL) (SIZE) UTF-8 MODSEQ 5", "",
		    "* ESEARCH (TAG \"A1\") ALL 2:3,1 MODSEQ 7\r\n"},
		{"(DATE) UTF-8 MODSEQ 100", "", "* SORT\r\n"},
		{"(DATE) UTF-8", "", "BAD Missing search key"},
		{"(FOO) UTF-8 ALL", "", "BAD Unknown sort criterion"},
		{"(REVERSE) UTF-8 ALL", "", "BAD Invalid sort criteria"},
		{"() UTF-8 ALL", "", "BAD Invalid sort criteria"},
		{"DATE UTF-8 ALL", "", "BAD SORT needs a list of criteria"},
		{"(DATE) (ALL)", "", "BAD SORT needs a charset"},
		{"(DATE) UTF-8 CHARSET UTF-8 ALL", "",
		    "BAD Invalid search program"},
		{"(DATE) x-no-such-charset ALL", "", "NO Unknown charset"},
		{"RETURN (FOO) (DATE) UTF-8 ALL", "",
		    "BAD Unknown RETURN option"},
	};
	struct buf in = BUF_INIT, out = BUF_INIT;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		buf_reset(&in);
		buf_printf(&in, "%s\r\n", cases[i][0]);
		run(buf_cstr(&in), cases[i][1][0] == 'u', &out);
		if (strcmp(buf_cstr(&out), cases[i][2]) != 0)
			fprintf(stderr, "  case %s\n", cases[i][0]);
		T_EQ_STR(buf_cstr(&out), cases[i][2]);
	}
	buf_free(&in);
	buf_free(&out);
}

static void
test_msg_load(void)
{
	struct imap_sort_msg m;

	imap_sort_msg_load(&tsrc, 2, true, &m);
	T_EQ_STR(m.subject, "alpha");
	T_EQ_STR(m.from, "cat");
	T_EQ_STR(m.dfrom, "\xc3\xa4ric");
	T_EQ_STR(m.to, "bob");
	T_ASSERT(m.cc == NULL);
	T_EQ_INT(m.date, m.arrival);	/* no Date: */
	T_EQ_INT(m.seq, 3);
	T_EQ_INT(m.uid, 30);
	imap_sort_msg_free(&m);
}

static const struct test_case cases[] = {
	{"base subjects (RFC 5256 2.1)", test_base_subject},
	{"SORT criteria and ESORT", test_sort},
	{"header facts", test_msg_load},
	{0},
};

int
main(void)
{
	return test_run(cases);
}
