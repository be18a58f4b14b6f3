/*
 * imap_search_eval_test - SEARCH evaluation over a fixed mailbox of five
 * messages: every key, OR/NOT nesting, dates at the day's edges and in
 * other zones, encoded words, base64 and quoted-printable bodies in
 * ISO-8859-1 and UTF-8, a match across the decoder's slice boundary,
 * "$", CHARSET, and the SEARCH / ESEARCH answers with SAVE's rules.
 */
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/mem.h"
#include "base/test.h"
#include "imap_parse.h"
#include "imap_search_eval.h"
#include "imap_text.h"

/* the mailbox */
struct tmsg {
	uint32_t uid;
	unsigned flags;
	const char *kw;		/* one keyword or NULL */
	unsigned long long modseq;
	const char *internal;	/* RFC 5322 form, for the test only */
	const char *text;	/* the message; NULL: built (message 4) */
};

static const struct tmsg tmsgs[] = {
	{10, IMAP_MF_SEEN | IMAP_MF_ANSWERED, "$Work", 5,
	    "31 Jan 2024 23:30:00 -0500",
	    "From: \"Alice =?UTF-8?Q?=C3=84mber?=\" <alice@example.org>\n"
	    "To: bob@example.com\n"
	    "Cc: carol@example.net\n"
	    "Subject: =?ISO-8859-1?Q?Caf=E9_meeting?=\n"
	    "Date: Wed, 31 Jan 2024 23:30:00 -0500\n"
	    "\n"
	    "Hello World\nline two\n"},
	{11, IMAP_MF_FLAGGED | IMAP_MF_RECENT, NULL, 9,
	    "1 Feb 2024 00:00:00 +0000",
	    "From: Bob <bob@example.com>\r\n"
	    "To: alice@example.org\r\n"
	    "Bcc: secret@example.org\r\n"
	    "Subject: Re: lunch\r\n"
	    "Date: Thu, 1 Feb 2024 08:00:00 +0900\r\n"
	    "Content-Type: text/plain; charset=ISO-8859-1\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n"
	    "\r\n"
	    "Gr=FC=DFe aus M=FC=\r\nnchen\r\n"},
	{12, IMAP_MF_DELETED | IMAP_MF_DRAFT, NULL, 2,
	    "2 Feb 2024 12:00:00 +0100",
	    "From: dave@example.org\n"
	    "X-Spam:\n"
	    "Subject: prices\n"
	    "MIME-Version: 1.0\n"
	    "Content-Type: multipart/mixed; boundary=\"b1\"\n"
	    "\n"
	    "--b1\n"
	    "Content-Type: text/plain; charset=utf-8\n"
	    "Content-Transfer-Encoding: base64\n"
	    "\n"
	    /* "Ölpreis steigt: ΑΘΗΝΑ\n" */
	    "w5ZscHJlaXMgc3RlaWd0OiDOkc6YzpfOnc6RCg==\n"
	    "--b1\n"
	    "Content-Type: image/png\n"
	    "Content-Transfer-Encoding: base64\n"
	    "\n"
	    "c2VjcmV0d29yZA==\n"	/* "secretword" */
	    "--b1--\n"},
	{20, IMAP_MF_RECENT | IMAP_MF_SEEN, NULL, 7,
	    "3 Feb 2024 10:00:00 +0000", NULL},
	{21, 0, NULL, 1, "3 Mar 2024 10:00:00 +0000",
	    "From: eve@example.org\n"
	    "Subject: fwd\n"
	    "Content-Type: message/rfc822\n"
	    "\n"
	    "From: mallory@example.org\n"
	    "Subject: inner topic\n"
	    "\n"
	    "deep text\n"},
};
#define NMSG (sizeof(tmsgs) / sizeof(tmsgs[0]))

static struct buf big = BUF_INIT;	/* message 4 */
static const char *kws[NMSG][1];
static int maps, cached_header;

/* tmsg_text - message i's bytes */
static const char *
tmsg_text(uint32_t i, size_t *n)
{
	if (tmsgs[i].text == NULL) {
		if (big.len == 0) {
			buf_puts(&big, "From: big@example.org\nSubject: big\n"
			    "\n");
			/* "needle" across the first 64 KB slice's edge */
			for (int k = 0; k < IMAP_SEARCH_SLICE - 3; k++)
				buf_putc(&big, 'x');
			buf_puts(&big, "needle");
			for (int k = 0; k < 100000; k++)
				buf_putc(&big, 'y');
			buf_puts(&big, "\n");
		}
		*n = big.len;
		return big.data;
	}
	*n = strlen(tmsgs[i].text);
	return tmsgs[i].text;
}

static int
t_view(void *ctx, uint32_t i, struct imap_msg_view *v)
{
	struct imap_text_date d;
	size_t n;

	(void)ctx;
	if (imap_text_date_parse(tmsgs[i].internal,
	    strlen(tmsgs[i].internal), &d) < 0)
		return -1;
	v->uid = tmsgs[i].uid;
	v->flags = tmsgs[i].flags;
	kws[i][0] = tmsgs[i].kw;
	v->keywords = kws[i];
	v->nkeywords = tmsgs[i].kw != NULL;
	v->modseq = tmsgs[i].modseq;
	v->internaldate = d.utc;
	v->internal_zone = d.zone;
	(void)tmsg_text(i, &n);
	v->size = n;
	return 0;
}

static int
t_header(void *ctx, uint32_t i, const char **p, size_t *n)
{
	(void)ctx;
	if (!cached_header)
		return -1;
	*p = tmsg_text(i, n);
	return 0;
}

static int
t_map(void *ctx, uint32_t i, const char **p, size_t *n)
{
	(void)ctx;
	maps++;
	*p = tmsg_text(i, n);
	return 0;
}

static const struct imap_mailbox_src tsrc = {
	NULL, NMSG, t_view, t_header, t_map, NULL,
};

/* run - parse "SEARCH ..." args, evaluate, the answer (or "NO why") */
static void
run(const char *args, bool uid, bool condstore,
    const struct imap_search_opts *opts, struct buf *out,
    struct buf *saved)
{
	struct imap_parser p;
	struct imap_cursor c;
	struct imap_search_program prog;
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
	if (imap_search_parse(&c, &prog, &why) < 0) {
		buf_printf(out, "BAD %s", why);
		imap_parser_free(&p);
		return;
	}
	if (imap_search_begin(&ev, &prog, &tsrc, opts, &why) < 0) {
		buf_printf(out, "NO %s", why);
	} else {
		while (imap_search_step(&ev, 0) == IMAP_SEARCH_MORE)
			;
		imap_search_answer(&ev, "A1", uid, condstore, out);
		if (saved != NULL) {
			uint32_t *u;
			size_t n = imap_search_save(&ev, &u);

			buf_reset(saved);
			if (imap_search_saves(&ev))
				imap_search_set(saved, u, n);
			x_free(&u);
		}
		imap_search_end(&ev);
	}
	imap_search_free(&prog);
	imap_parser_free(&p);
}

static void
test_keys(void)
{
	static const char *const cases[][2] = {
		{"ALL", "1 2 3 4 5"},
		{"SEEN", "1 4"},
		{"UNSEEN", "2 3 5"},
		{"ANSWERED", "1"},
		{"UNANSWERED", "2 3 4 5"},
		{"FLAGGED", "2"},
		{"UNFLAGGED", "1 3 4 5"},
		{"DELETED", "3"},
		{"UNDELETED", "1 2 4 5"},
		{"DRAFT", "3"},
		{"UNDRAFT", "1 2 4 5"},
		{"RECENT", "2 4"},
		{"NEW", "2"},
		{"OLD", "1 3 5"},
		{"KEYWORD $work", "1"},
		{"UNKEYWORD $Work", "2 3 4 5"},
		{"FROM alice", "1"},
		{"FROM \"\xc3\xa4MBER\"", "1"},		/* Ä folded */
		{"SUBJECT \"caf\xc3\xa9\"", "1"}, /* =E9 */
		{"SUBJECT \"CAF\xc3\x89 MEETING\"", "1"},
		{"BCC secret", "2"},
		{"CC carol", "1"},
		{"TO bob", "1"},
		{"TO \"\"", "1 2"},
		{"HEADER X-Spam \"\"", "3"},
		{"HEADER x-spam \"\"", "3"},
		{"HEADER subject lunch", "2"},
		{"HEADER Date \"+0900\"", "2"},
		{"BODY \"gr\xc3\xbc\xc3\x9f" "e\"", "2"}, /* QP */
		{"BODY \"m\xc3\xbcnchen\"", "2"}, /* soft break */
		{"BODY \"\xc3\xb6lpreis\"", "3"}, /* base64 */
		{"BODY \"\xce\xb1\xce\xb8\xce\xb7\xce\xbd\xce\xb1\"",
		    "3"},
		{"BODY secretword", ""},		/* image: not text */
		{"BODY needle", "4"}, /* across a slice */
		{"BODY \"deep text\"", "5"}, /* attached message */
		{"BODY \"inner topic\"", "5"},		/* its header */
		{"SUBJECT \"inner topic\"", ""},
		{"BODY bob", ""},
		{"TEXT bob@example.com", "1 2"},
		{"TEXT \"hello world\"", "1"},
		{"TEXT \"subject: prices\"", "3"},
		{"ON 31-Jan-2024", "1"},		/* its own zone */
		{"BEFORE 1-Feb-2024", "1"},
		{"SINCE 1-Feb-2024", "2 3 4 5"},
		{"ON 2-Feb-2024", "3"},
		{"SINCE 3-Mar-2024", "5"},
		{"BEFORE 3-Mar-2024", "1 2 3 4"},
		{"SENTON 1-Feb-2024", "2"},		/* as written */
		{"SENTBEFORE 1-Feb-2024", "1"},
		{"SENTON 2-Feb-2024", "3"},		/* no Date: */
		{"SENTSINCE 3-Feb-2024", "4 5"},
		{"LARGER 100000", "4"},
		{"SMALLER 100000", "1 2 3 5"},
		{"UID 11:12", "2 3"},
		{"UID 12:*", "3 4 5"},
		{"UID 100:*", "5"},
		{"UID 1:9", ""},
		{"2:*", "2 3 4 5"},
		{"*", "5"},
		{"4:2", "2 3 4"},
		{"1,3,5", "1 3 5"},
		{"3:1,2,5:*,4:4", "1 2 3 4 5"},
		{"5,1,5,1", "1 5"},
		{"UID 21:11,12", "2 3 4 5"},
		{"UID 12,11,10", "1 2 3"},
		{"UID 4294967295", ""},
		{"UID 4294967295:*", "5"},	/* "*" is 21 */
		{"UID 13:19", ""},
		{"MODSEQ 6", "2 4 (MODSEQ 9)"},
		{"MODSEQ \"/flags/\\\\draft\" all 6", "2 4 (MODSEQ 9)"},
		{"MODSEQ 100", ""},
		{"OR SEEN FLAGGED", "1 2 4"},
		{"NOT SEEN", "2 3 5"},
		{"NOT (SEEN FLAGGED)", "1 2 3 4 5"},
		{"OR (FROM alice SEEN) NOT UNDRAFT", "1 3"},
		{"OR OR DRAFT FLAGGED NOT OR SEEN RECENT", "2 3 5"},
		{"SEEN NOT NOT BODY hello", "1"},
		{"(UNSEEN (UNDELETED (NOT 5)))", "2"},
		{"CHARSET UTF-8 BODY \"m\xc3\xbcnchen\"", "2"},
		{"CHARSET ISO-8859-1 BODY \"M\xfc" "nchen\"", "2"},
		{"CHARSET ISO-8859-1 SUBJECT \"CAF\xc9\"", "1"},
		{"CHARSET x-no-such-charset BODY a", "NO Unknown charset"},
	};
	struct buf in = BUF_INIT, out = BUF_INIT, want = BUF_INIT;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		buf_reset(&in);
		buf_printf(&in, "%s\r\n", cases[i][0]);
		run(buf_cstr(&in), false, true, NULL, &out, NULL);
		buf_reset(&want);
		if (strncmp(cases[i][1], "NO ", 3) == 0)
			buf_puts(&want, cases[i][1]);
		else
			buf_printf(&want, "* SEARCH%s%s\r\n",
			    cases[i][1][0] ? " " : "", cases[i][1]);
		if (strcmp(buf_cstr(&out), buf_cstr(&want)) != 0)
			fprintf(stderr, "  case %s\n", cases[i][0]);
		T_EQ_STR(buf_cstr(&out), buf_cstr(&want));
	}
	buf_free(&in);
	buf_free(&out);
	buf_free(&want);
}

static void
test_saved(void)
{
	static const uint32_t saved[] = {11, 21};
	struct imap_search_opts o = {saved, 2};
	struct buf out = BUF_INIT;

	run("$\r\n", false, false, &o, &out, NULL);
	T_EQ_STR(buf_cstr(&out), "* SEARCH 2 5\r\n");
	run("UID $ SEEN\r\n", true, false, &o, &out, NULL);
	T_EQ_STR(buf_cstr(&out), "* SEARCH\r\n");
	run("OR $ 1\r\n", true, false, &o, &out, NULL);
	T_EQ_STR(buf_cstr(&out), "* SEARCH 10 11 21\r\n");
	run("$\r\n", false, false, NULL, &out, NULL);
	T_EQ_STR(buf_cstr(&out), "* SEARCH\r\n");
	buf_free(&out);
}

static void
test_esearch(void)
{
	static const char *const cases[][4] = {
		/* args, uid?, answer, saved */
		{"RETURN (MIN MAX COUNT ALL) SEEN", "",
		    "* ESEARCH (TAG \"A1\") MIN 1 MAX 4 COUNT 2 ALL 1,4\r\n",
		    ""},
		{"RETURN (MIN MAX COUNT ALL) SEEN", "u",
		    "* ESEARCH (TAG \"A1\") UID MIN 10 MAX 20 COUNT 2 "
		    "ALL 10,20\r\n", ""},
		{"RETURN () UNDELETED", "",
		    "* ESEARCH (TAG \"A1\") ALL 1:2,4:5\r\n", ""},
		{"RETURN (MIN COUNT) DRAFT SEEN", "",
		    "* ESEARCH (TAG \"A1\") COUNT 0\r\n", ""},
		{"RETURN (MIN MAX ALL) DRAFT SEEN", "u",
		    "* ESEARCH (TAG \"A1\") UID\r\n", ""},
		{"RETURN (SAVE) UNDELETED", "", "", "10:11,20:21"},
		{"RETURN (SAVE MIN) ALL", "",
		    "* ESEARCH (TAG \"A1\") MIN 1\r\n", "10"},
		{"RETURN (SAVE MIN MAX) ALL", "",
		    "* ESEARCH (TAG \"A1\") MIN 1 MAX 5\r\n", "10,21"},
		{"RETURN (SAVE MAX) SEEN", "",
		    "* ESEARCH (TAG \"A1\") MAX 4\r\n", "20"},
		{"RETURN (SAVE MIN MAX) DRAFT", "",
		    "* ESEARCH (TAG \"A1\") MIN 3 MAX 3\r\n", "12"},
		{"RETURN (SAVE MIN COUNT) UNSEEN", "",
		    "* ESEARCH (TAG \"A1\") MIN 2 COUNT 3\r\n", "11:12,21"},
		{"RETURN (SAVE ALL) UNSEEN", "",
		    "* ESEARCH (TAG \"A1\") ALL 2:3,5\r\n", "11:12,21"},
		{"RETURN (SAVE) DRAFT SEEN", "", "", ""},
		{"RETURN (ALL) MODSEQ 3", "",
		    "* ESEARCH (TAG \"A1\") ALL 1:2,4 MODSEQ 9\r\n", ""},
		{"RETURN (MIN) MODSEQ 3", "",
		    "* ESEARCH (TAG \"A1\") MIN 1 MODSEQ 5\r\n", ""},
	};
	struct buf in = BUF_INIT, out = BUF_INIT, saved = BUF_INIT;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		buf_reset(&in);
		buf_printf(&in, "%s\r\n", cases[i][0]);
		run(buf_cstr(&in), cases[i][1][0] == 'u', true, NULL, &out,
		    &saved);
		T_EQ_STR(buf_cstr(&out), cases[i][2]);
		T_EQ_STR(buf_cstr(&saved), cases[i][3]);
	}
	buf_free(&in);
	buf_free(&out);
	buf_free(&saved);
}

static void
test_condstore_off(void)
{
	struct buf out = BUF_INIT;

	run("MODSEQ 6\r\n", false, false, NULL, &out, NULL);
	T_EQ_STR(buf_cstr(&out), "* SEARCH 2 4\r\n");
	run("SEEN\r\n", false, true, NULL, &out, NULL);
	T_EQ_STR(buf_cstr(&out), "* SEARCH 1 4\r\n");
	buf_free(&out);
}

/* test_lazy - flag keys never read a message; header keys use the
 * cached header; the budget stops between messages */
static void
test_lazy(void)
{
	struct buf out = BUF_INIT;
	struct imap_parser p;
	struct imap_cursor c;
	struct imap_search_program prog;
	struct imap_search_eval ev;
	const char *why;
	size_t used;
	int steps = 0;

	maps = 0;
	run("SEEN UNFLAGGED LARGER 10 OR ANSWERED NEW\r\n", false, false,
	    NULL, &out, NULL);
	T_EQ_STR(buf_cstr(&out), "* SEARCH 1\r\n");
	T_EQ_INT(maps, 0);
	run("BODY needle NOT SEEN\r\n", false, false, NULL, &out, NULL);
	T_EQ_STR(buf_cstr(&out), "* SEARCH\r\n");
	T_EQ_INT(maps, 3);	/* the cheap key first: 2, 3, 5 only */
	cached_header = 1;
	maps = 0;
	run("SUBJECT lunch\r\n", false, false, NULL, &out, NULL);
	T_EQ_STR(buf_cstr(&out), "* SEARCH 2\r\n");
	T_EQ_INT(maps, 0);
	cached_header = 0;

	imap_parser_init(&p, 10000, 100000, 1000, 0);
	T_ASSERT(imap_parser_feed(&p, "BODY zzz\r\n", 10, &used) ==
	    IMAP_FEED_COMMAND);
	imap_cursor_init(&c, &p, 0);
	T_ASSERT(imap_search_parse(&c, &prog, &why) == 0);
	T_ASSERT(imap_search_begin(&ev, &prog, &tsrc, NULL, &why) == 0);
	while (imap_search_step(&ev, 1) == IMAP_SEARCH_MORE)
		steps++;
	T_EQ_INT(steps, (int)NMSG - 1);	/* one message per step */
	T_ASSERT(ev.scanned > 160000);
	imap_search_end(&ev);
	imap_search_free(&prog);
	imap_parser_free(&p);
	buf_free(&out);
}

/* scanned_by - the bytes a whole run of the program text counts */
static void
scanned_by(const char *text, unsigned long long *got)
{
	struct imap_parser p;
	struct imap_cursor c;
	struct imap_search_program prog;
	struct imap_search_eval ev;
	const char *why;
	size_t used;

	*got = 0;
	imap_parser_init(&p, 10000, 100000, 1000, 0);
	T_ASSERT(imap_parser_feed(&p, text, strlen(text), &used) ==
	    IMAP_FEED_COMMAND);
	imap_cursor_init(&c, &p, 0);
	T_ASSERT(imap_search_parse(&c, &prog, &why) == 0);
	T_ASSERT(imap_search_begin(&ev, &prog, &tsrc, NULL, &why) == 0);
	while (imap_search_step(&ev, 0) == IMAP_SEARCH_MORE)
		;
	*got = ev.scanned;
	imap_search_end(&ev);
	imap_search_free(&prog);
	imap_parser_free(&p);
}

/* test_body_budget - every BODY or TEXT key that reads a body again
 * counts against the budget: 1,000 of them on one big message once
 * made a single step of 1,000 readings (a 30 MB message kept a job
 * thread 2 minutes) */
static void
test_body_budget(void)
{
	unsigned long long one, three, flags;

	scanned_by("NOT BODY zz1\r\n", &one);
	scanned_by("NOT BODY zz1 NOT BODY zz2 NOT TEXT zz3\r\n", &three);
	scanned_by("OR SEEN NOT SEEN NOT BODY zz1\r\n", &flags);
	fprintf(stderr, "  scanned: %llu by one BODY key, %llu by three\n",
	    one, three);
	T_ASSERT(one > 0);
	T_ASSERT(three >= 3 * one - one / 2);
	/* keys that read no body add nothing */
	T_EQ_INT((long long)flags, (long long)one);
}

/* a mailbox of 100,000 messages with odd UIDs */
static int
s_view(void *ctx, uint32_t i, struct imap_msg_view *v)
{
	(void)ctx;
	v->uid = 2 * i + 1;
	return 0;
}

/* test_big_set - a UID set of 9,999 ranges over 100,000 messages: each
 * message is looked up in log time (a scan of the ranges took 1.6 s at
 * -O2; now 2 ms) */
static void
test_big_set(void)
{
	static const struct imap_mailbox_src src = {
		NULL, 100000, s_view, NULL, t_map, NULL,
	};
	struct buf cmd = BUF_INIT;
	struct imap_parser p;
	struct imap_cursor c;
	struct imap_search_program prog;
	struct imap_search_eval ev;
	const char *why;
	size_t used;
	double ms;

	buf_puts(&cmd, "UID ");
	for (int i = 9998; i >= 0; i--)
		buf_printf(&cmd, "%d%s", 40 * i + 3, i ? "," : "\r\n");
	imap_parser_init(&p, 200000, 200000, 1000, 0);
	T_ASSERT(imap_parser_feed(&p, cmd.data, cmd.len, &used) ==
	    IMAP_FEED_COMMAND);
	imap_cursor_init(&c, &p, 0);
	T_ASSERT(imap_search_parse(&c, &prog, &why) == 0);
	ms = t_cpu_ms();
	T_ASSERT(imap_search_begin(&ev, &prog, &src, NULL, &why) == 0);
	T_ASSERT(imap_search_step(&ev, 0) == IMAP_SEARCH_DONE);
	ms = t_cpu_ms() - ms;
	fprintf(stderr, "  9999 ranges x 100000 messages: %.0f ms\n", ms);
	T_EQ_INT(ev.n, 5000);	/* 3, 43, 83... up to 199999 */
	T_EQ_INT(ev.uid[1], 43);
	T_ASSERT(ms < 500 * T_SLOW);
	imap_search_end(&ev);
	imap_search_free(&prog);
	imap_parser_free(&p);
	buf_free(&cmd);
}

/* one long UTF-8 line whose "\xc3\xbc" straddles the first slice's end */
static struct buf longline = BUF_INIT;

static int
l_view(void *ctx, uint32_t i, struct imap_msg_view *v)
{
	(void)ctx;
	v->uid = i + 1;
	v->size = longline.len;
	return 0;
}

static int
l_map(void *ctx, uint32_t i, const char **p, size_t *n)
{
	(void)ctx;
	(void)i;
	*p = longline.data;
	*n = longline.len;
	return 0;
}

static void
test_long_line(void)
{
	static const struct imap_mailbox_src src = {
		NULL, 1, l_view, NULL, l_map, NULL,
	};
	struct imap_parser p;
	struct imap_cursor c;
	struct imap_search_program prog;
	struct imap_search_eval ev;
	const char *why, *cmd = "BODY \"M\xc3\x9cNCHEN\"\r\n";
	size_t used;

	buf_puts(&longline, "Content-Type: text/plain; charset=utf-8\n\n");
	for (int k = 0; k < IMAP_SEARCH_SLICE - 2; k++)
		buf_putc(&longline, 'x');
	buf_puts(&longline, "m\xc3\xbcnchen\n");
	imap_parser_init(&p, 10000, 100000, 1000, 0);
	T_ASSERT(imap_parser_feed(&p, cmd, strlen(cmd), &used) ==
	    IMAP_FEED_COMMAND);
	imap_cursor_init(&c, &p, 0);
	T_ASSERT(imap_search_parse(&c, &prog, &why) == 0);
	T_ASSERT(imap_search_begin(&ev, &prog, &src, NULL, &why) == 0);
	T_ASSERT(imap_search_step(&ev, 0) == IMAP_SEARCH_DONE);
	T_EQ_INT(ev.n, 1);
	imap_search_end(&ev);
	imap_search_free(&prog);
	imap_parser_free(&p);
	buf_free(&longline);
}

/* the same mailbox for a worker thread: nothing shared is written */
struct tctx {
	const char *kw[NMSG][1];
	struct buf out;
};

static int
w_view(void *ctx, uint32_t i, struct imap_msg_view *v)
{
	struct tctx *t = ctx;
	struct imap_text_date d;
	size_t n;

	if (imap_text_date_parse(tmsgs[i].internal,
	    strlen(tmsgs[i].internal), &d) < 0)
		return -1;
	v->uid = tmsgs[i].uid;
	v->flags = tmsgs[i].flags;
	t->kw[i][0] = tmsgs[i].kw;
	v->keywords = t->kw[i];
	v->nkeywords = tmsgs[i].kw != NULL;
	v->internaldate = d.utc;
	v->internal_zone = d.zone;
	(void)tmsg_text(i, &n);
	v->size = n;
	return 0;
}

static int
w_map(void *ctx, uint32_t i, const char **p, size_t *n)
{
	(void)ctx;
	*p = tmsg_text(i, n);
	return 0;
}

/* worker_one - one search into t->out */
static void
worker_one(struct tctx *t, const struct imap_mailbox_src *src,
    const char *cmd)
{
	struct imap_parser p;
	struct imap_cursor c;
	struct imap_search_program prog;
	struct imap_search_eval ev;
	const char *why;
	size_t used;

	imap_parser_init(&p, 10000, 100000, 1000, 0);
	if (imap_parser_feed(&p, cmd, strlen(cmd), &used) ==
	    IMAP_FEED_COMMAND) {
		imap_cursor_init(&c, &p, 0);
		if (imap_search_parse(&c, &prog, &why) == 0) {
			if (imap_search_begin(&ev, &prog, src, NULL,
			    &why) == 0) {
				(void)imap_search_step(&ev, 0);
				imap_search_answer(&ev, "t", false, false,
				    &t->out);
				imap_search_end(&ev);
			}
			imap_search_free(&prog);
		}
	}
	imap_parser_free(&p);
}

/* worker - one thread's searches, answers appended to its buffer */
static void *
worker(void *arg)
{
	static const char *const progs[] = {
		"TEXT bob@example.com\r\n", "BODY needle\r\n",
		"BODY \"m\xc3\xbcnchen\"\r\n", "OR SEEN SENTON 1-Feb-2024\r\n",
	};
	struct tctx *t = arg;
	struct imap_mailbox_src src = {t, NMSG, w_view, NULL, w_map, NULL};

	for (int round = 0; round < 5; round++)
		for (size_t k = 0; k < sizeof(progs) / sizeof(progs[0]); k++)
			worker_one(t, &src, progs[k]);
	return NULL;
}

/* test_threads - four evaluations at once give what one gives alone */
static void
test_threads(void)
{
	struct tctx t[4];
	pthread_t th[4];
	size_t n;
	char *one;

	(void)tmsg_text(3, &n);	/* build message 4 before the threads */
	memset(t, 0, sizeof(t));
	for (int i = 0; i < 4; i++)
		buf_init(&t[i].out);
	(void)worker(&t[0]);
	one = xstrdup(buf_cstr(&t[0].out));
	T_EQ_STR(one, "* SEARCH 1 2\r\n* SEARCH 4\r\n* SEARCH 2\r\n"
	    "* SEARCH 1 2 4\r\n* SEARCH 1 2\r\n* SEARCH 4\r\n"
	    "* SEARCH 2\r\n* SEARCH 1 2 4\r\n* SEARCH 1 2\r\n"
	    "* SEARCH 4\r\n* SEARCH 2\r\n* SEARCH 1 2 4\r\n"
	    "* SEARCH 1 2\r\n* SEARCH 4\r\n* SEARCH 2\r\n"
	    "* SEARCH 1 2 4\r\n* SEARCH 1 2\r\n* SEARCH 4\r\n"
	    "* SEARCH 2\r\n* SEARCH 1 2 4\r\n");
	buf_reset(&t[0].out);
	for (int i = 0; i < 4; i++)
		T_ASSERT(pthread_create(&th[i], NULL, worker, &t[i]) == 0);
	for (int i = 0; i < 4; i++)
		T_ASSERT(pthread_join(th[i], NULL) == 0);
	for (int i = 0; i < 4; i++) {
		T_EQ_STR(buf_cstr(&t[i].out), one);
		buf_free(&t[i].out);
	}
	x_free(&one);
}

static void
test_set(void)
{
	static const uint32_t v[] = {1, 2, 3, 5, 7, 8, 4294967295u};
	struct buf out = BUF_INIT;

	imap_search_set(&out, v, 7);
	T_EQ_STR(buf_cstr(&out), "1:3,5,7:8,4294967295");
	buf_reset(&out);
	imap_search_set(&out, v, 0);
	T_EQ_STR(buf_cstr(&out), "");
	buf_free(&out);
}

static void
test_dates(void)
{
	struct imap_text_date d;
	static const struct {
		const char *in;
		int ymd, zone;
		long long utc;
	} cases[] = {
		{"Thu, 1 Feb 2024 08:00:00 +0900", 20240201, 540, 1706742000},
		{"1 Feb 2024 08:00 -0130", 20240201, -90, 1706779800},
		{"Thu, 01 Feb 24 08:00:00 GMT", 20240201, 0, 1706774400},
		{" Tue (x), 29 Feb 2000 23:59:60 EST (y)", 20000229, -300,
		    951886800},
		{"1 Jan 1970 00:00:00 +0000", 19700101, 0, 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		T_EQ_INT(imap_text_date_parse(cases[i].in,
		    strlen(cases[i].in), &d), 0);
		T_EQ_INT(d.ymd, cases[i].ymd);
		T_EQ_INT(d.zone, cases[i].zone);
		T_EQ_INT(d.utc, cases[i].utc);
	}
	T_EQ_INT(imap_text_date_parse("32 Jan 2024 1:00", 16, &d), -1);
	T_EQ_INT(imap_text_date_parse("", 0, &d), -1);
	T_EQ_INT(imap_text_date_parse("Feb 1 2024", 10, &d), -1);
	T_EQ_INT(imap_text_ymd(1706742000, 540), 20240201);
	T_EQ_INT(imap_text_ymd(1706742000, 0), 20240131);
	T_EQ_INT(imap_text_ymd(951782400 - 1, 0), 20000228);
}

/* a message whose header holds an 8 MB Subject, then X-Late */
static struct buf hugehdr = BUF_INIT;

static int
h_map(void *ctx, uint32_t i, const char **p, size_t *n)
{
	(void)ctx;
	(void)i;
	*p = hugehdr.data;
	*n = hugehdr.len;
	return 0;
}

/* test_huge_header - header keys read the first IMAP_SEARCH_HEADER_MAX
 * bytes of a header, and a field value only as far as the
 * IMAP_SEARCH_FIELD_MAX bytes they keep: 200 SUBJECT keys on an 8 MB
 * Subject unfolded 1.6 GB in one step (3.7 s at -O2; now 0.1 s) */
static void
test_huge_header(void)
{
	static const struct imap_mailbox_src src = {
		NULL, 1, l_view, NULL, h_map, NULL,
	};
	struct buf cmd = BUF_INIT;
	struct imap_parser p;
	struct imap_cursor c;
	struct imap_search_program prog;
	struct imap_search_eval ev;
	const char *why;
	size_t used;
	double ms;

	buf_puts(&hugehdr, "Subject: ");
	for (int k = 0; k < 8 << 20; k++)
		buf_putc(&hugehdr, 'x');
	buf_puts(&hugehdr, "\nX-Late: needle\n\nbody\n");
	for (int k = 0; k < 200; k++)
		buf_printf(&cmd, "NOT SUBJECT zz%d ", k);
	buf_puts(&cmd, "OR SUBJECT xxxx HEADER X-Late needle\r\n");
	imap_parser_init(&p, 100000, 100000, 1000, 0);
	T_ASSERT(imap_parser_feed(&p, cmd.data, cmd.len, &used) ==
	    IMAP_FEED_COMMAND);
	imap_cursor_init(&c, &p, 0);
	T_ASSERT(imap_search_parse(&c, &prog, &why) == 0);
	ms = t_cpu_ms();
	T_ASSERT(imap_search_begin(&ev, &prog, &src, NULL, &why) == 0);
	T_ASSERT(imap_search_step(&ev, 0) == IMAP_SEARCH_DONE);
	ms = t_cpu_ms() - ms;
	fprintf(stderr, "  200 keys on an 8 MB Subject: %.0f ms\n", ms);
	/* the Subject's start is still found */
	T_EQ_INT(ev.n, 1);
	T_ASSERT(ms < 500 * T_SLOW);
	imap_search_end(&ev);
	imap_search_free(&prog);
	imap_parser_free(&p);
	/* X-Late lies beyond the first MB of the header */
	imap_parser_init(&p, 100000, 100000, 1000, 0);
	T_ASSERT(imap_parser_feed(&p, "HEADER X-Late needle\r\n", 22,
	    &used) == IMAP_FEED_COMMAND);
	imap_cursor_init(&c, &p, 0);
	T_ASSERT(imap_search_parse(&c, &prog, &why) == 0);
	T_ASSERT(imap_search_begin(&ev, &prog, &src, NULL, &why) == 0);
	T_ASSERT(imap_search_step(&ev, 0) == IMAP_SEARCH_DONE);
	T_EQ_INT(ev.n, 0);
	imap_search_end(&ev);
	imap_search_free(&prog);
	imap_parser_free(&p);
	buf_free(&cmd);
	buf_free(&hugehdr);
}

static const struct test_case cases[] = {
	{"every search key", test_keys},
	{"saved result $", test_saved},
	{"ESEARCH answers and SAVE", test_esearch},
	{"MODSEQ only with CONDSTORE", test_condstore_off},
	{"lazy fetching and the budget", test_lazy},
	{"every body reading counts against the budget", test_body_budget},
	{"a huge header costs a bounded piece per key", test_huge_header},
	{"a character across the slice edge", test_long_line},
	{"evaluations in parallel threads", test_threads},
	{"compact sequence sets", test_set},
	{"a large sequence set in log time", test_big_set},
	{"RFC 5322 dates", test_dates},
	{0},
};

int
main(void)
{
	int rc = test_run(cases);

	buf_free(&big);
	return rc;
}
