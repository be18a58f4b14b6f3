/*
 * imap_thread_test - THREAD REFERENCES (RFC 5256 2.2) on small corpora
 * spelled out case by case: replies, missing parents (dummies kept or
 * pruned), loops in References, duplicate Message-IDs, In-Reply-To as
 * the fallback, grouping by base subject, date order with ties, the
 * depth bound; ORDEREDSUBJECT; and the THREAD parser and answer.
 */
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/mem.h"
#include "base/test.h"
#include "imap_parse.h"
#include "imap_search_eval.h"
#include "imap_sort.h"
#include "imap_text.h"
#include "imap_thread.h"

/* one test message: subject, day of January 2024 (sent date), the
 * Message-ID, References (or NULL) */
struct tmsg {
	const char *subject;
	int day;
	const char *id;
	const char *refs;
};

/* build - thread msgs[0..n) with alg into out */
static void
build(const struct tmsg *t, size_t n, enum imap_thread_alg alg,
    struct buf *out)
{
	struct imap_sort_msg *m = xcalloc(n ? n : 1, sizeof(*m));
	struct buf b = BUF_INIT;

	for (size_t i = 0; i < n; i++) {
		m[i].seq = (uint32_t)i + 1;
		m[i].uid = (uint32_t)(i + 1) * 10;
		m[i].date = 1704067200 + (t[i].day - 1) * 86400;
		buf_reset(&b);
		m[i].reply = imap_sort_base_subject(t[i].subject,
		    strlen(t[i].subject), &b);
		m[i].subject = buf_steal(&b);
		m[i].msgid = t[i].id ? xstrdup(t[i].id) : NULL;
		m[i].refs = t[i].refs ? xstrdup(t[i].refs) : NULL;
	}
	buf_reset(out);
	imap_thread_build(m, n, alg, false, out);
	for (size_t i = 0; i < n; i++)
		imap_sort_msg_free(&m[i]);
	x_free(&m);
	buf_free(&b);
}

#define BUILD(arr, alg, out) \
	build(arr, sizeof(arr) / sizeof(arr[0]), alg, out)

static void
test_references(void)
{
	struct buf out = BUF_INIT;
	/* a thread: 1 <- 2 <- 3, 1 <- 4; 5 alone */
	static const struct tmsg basic[] = {
		{"hello", 1, "<1@x>", NULL},
		{"Re: hello", 2, "<2@x>", "<1@x>"},
		{"Re: hello", 3, "<3@x>", "<1@x><2@x>"},
		{"Re: hello", 4, "<4@x>", "<1@x>"},
		{"other", 5, "<5@x>", NULL},
	};
	/* missing parents: <a> has two children (a dummy root stays),
	 * <b> one (the dummy goes, its child is promoted) */
	static const struct tmsg missing[] = {
		{"topic", 1, "<1@x>", "<a@x>"},
		{"Re: topic", 2, "<2@x>", "<a@x>"},
		{"unique", 3, "<3@x>", "<b@x>"},
	};
	/* a truncated chain: <gp> <p> missing, 2 says its parent is 1 */
	static const struct tmsg chain[] = {
		{"c", 2, "<1@x>", "<gp@x><p@x>"},
		{"Re: c", 1, "<2@x>", "<gp@x><p@x><1@x>"},
	};
	/* a loop: 1 says 2 is its parent, 2 says 1 is */
	static const struct tmsg loop[] = {
		{"loop", 1, "<1@x>", "<2@x>"},
		{"Re: loop", 2, "<2@x>", "<1@x>"},
	};
	/* a loop inside one References field, and a message citing
	 * itself */
	static const struct tmsg selfloop[] = {
		{"s", 1, "<1@x>", "<a@x><b@x><a@x><1@x>"},
		{"t", 2, "<2@x>", "<2@x>"},
	};
	/* duplicate Message-IDs: the first keeps the id */
	static const struct tmsg dup[] = {
		{"a", 1, "<d@x>", NULL},
		{"b", 2, "<d@x>", NULL},
		{"Re: a", 3, "<3@x>", "<d@x>"},
	};
	/* no ids at all, equal dates: by sequence number */
	static const struct tmsg noid[] = {
		{"x1", 1, NULL, NULL},
		{"x2", 1, NULL, NULL},
		{"x3", 1, NULL, "<nowhere@x>"},
	};
	/* grouping by subject: the reply 2 joins the original 1; the
	 * second original 3 makes a dummy parent of 1 and 3, and the
	 * forward 4 joins that dummy; empty subjects stay apart */
	static const struct tmsg subj[] = {
		{"party", 1, "<1@x>", NULL},
		{"Re: party", 2, "<2@x>", NULL},
		{"party", 3, "<3@x>", NULL},
		{"[list] Fwd: PARTY", 4, "<4@x>", NULL},
		{"", 5, "<5@x>", NULL},
		{"Re:", 6, "<6@x>", NULL},
	};
	/* a dummy root grouped with a message of its subject */
	static const struct tmsg dsubj[] = {
		{"news", 1, "<1@x>", "<lost@x>"},
		{"Re: news", 2, "<2@x>", "<lost@x>"},
		{"news", 3, "<3@x>", NULL},
	};
	/* dates order siblings and threads, not arrival */
	static const struct tmsg dates[] = {
		{"late", 9, "<1@x>", NULL},
		{"early", 2, "<2@x>", NULL},
		{"Re: late", 8, "<3@x>", "<1@x>"},
		{"Re: late", 7, "<4@x>", "<1@x>"},
	};

	BUILD(basic, IMAP_THREAD_REFERENCES, &out);
	T_EQ_STR(buf_cstr(&out), "(1 (2 3)(4))(5)");
	BUILD(missing, IMAP_THREAD_REFERENCES, &out);
	T_EQ_STR(buf_cstr(&out), "((1)(2))(3)");
	BUILD(chain, IMAP_THREAD_REFERENCES, &out);
	T_EQ_STR(buf_cstr(&out), "(1 2)");
	BUILD(loop, IMAP_THREAD_REFERENCES, &out);
	T_EQ_STR(buf_cstr(&out), "(2 1)");
	BUILD(selfloop, IMAP_THREAD_REFERENCES, &out);
	T_EQ_STR(buf_cstr(&out), "(1)(2)");
	BUILD(dup, IMAP_THREAD_REFERENCES, &out);
	T_EQ_STR(buf_cstr(&out), "(1 3)(2)");
	BUILD(noid, IMAP_THREAD_REFERENCES, &out);
	T_EQ_STR(buf_cstr(&out), "(1)(2)(3)");
	BUILD(subj, IMAP_THREAD_REFERENCES, &out);
	T_EQ_STR(buf_cstr(&out), "((1 2)(3)(4))(5)(6)");
	BUILD(dsubj, IMAP_THREAD_REFERENCES, &out);
	T_EQ_STR(buf_cstr(&out), "((1)(2)(3))");
	BUILD(dates, IMAP_THREAD_REFERENCES, &out);
	T_EQ_STR(buf_cstr(&out), "(2)(1 (4)(3))");
	buf_free(&out);
}

static void
test_ordered(void)
{
	struct buf out = BUF_INIT;
	static const struct tmsg m[] = {
		{"b", 3, NULL, NULL},
		{"Re: a", 1, NULL, NULL},
		{"a", 2, NULL, NULL},
		{"[x] B", 4, NULL, NULL},
		{"c", 5, NULL, NULL},
		{"Fwd: a", 6, NULL, NULL},
	};

	BUILD(m, IMAP_THREAD_ORDEREDSUBJECT, &out);
	T_EQ_STR(buf_cstr(&out), "(2 (3)(6))(1 4)(5)");
	build(m, 0, IMAP_THREAD_ORDEREDSUBJECT, &out);
	T_EQ_STR(buf_cstr(&out), "");
	buf_free(&out);
}

/* test_deep - a References chain 2500 long: no deep recursion, the
 * thread is cut every IMAP_THREAD_DEPTH_MAX levels */
static void
test_deep(void)
{
	enum { N = 2500 };
	struct imap_sort_msg *m = xcalloc(N, sizeof(*m));
	struct buf out = BUF_INIT, want = BUF_INIT;

	for (int i = 0; i < N; i++) {
		m[i].seq = (uint32_t)i + 1;
		m[i].date = i;
		m[i].subject = xasprintf("s%d", i);
		m[i].msgid = xasprintf("<%d@x>", i);
		if (i > 0)
			m[i].refs = xasprintf("<%d@x>", i - 1);
	}
	imap_thread_build(m, N, IMAP_THREAD_REFERENCES, false, &out);
	for (int i = 0; i < N; i++) {
		if (i % IMAP_THREAD_DEPTH_MAX == 0)
			buf_puts(&want, i ? ")(" : "(");
		else
			buf_putc(&want, ' ');
		buf_printf(&want, "%d", i + 1);
	}
	buf_putc(&want, ')');
	T_EQ_STR(buf_cstr(&out), buf_cstr(&want));
	for (int i = 0; i < N; i++)
		imap_sort_msg_free(&m[i]);
	x_free(&m);
	buf_free(&out);
	buf_free(&want);
}

/* the THREAD command on a mailbox: parser, search, answer */
static const char *const tmail[] = {
	"Message-ID: <a@x>\nSubject: hi\nDate: 1 Jan 2024 10:00 +0000\n\n.\n",
	"Message-ID: <b@x>\nSubject: Re: hi\nIn-Reply-To: <a@x>\n"
	    "Date: 1 Jan 2024 11:00 +0000\n\n.\n",
	"Message-ID: <c@x>\nSubject: Re: hi\nIn-Reply-To: <a@x> (x)\n"
	    "References: <zz@x> <b@x>\nDate: 2 Jan 2024 11:00 +0000\n\n.\n",
	"Message-ID: <d@x>\nSubject: other\n\n.\n",
};

static int
t_view(void *ctx, uint32_t i, struct imap_msg_view *v)
{
	(void)ctx;
	v->uid = 100 + i;
	v->internaldate = 1704067200 + 86400 * 3;
	v->size = strlen(tmail[i]);
	return 0;
}

static int
t_map(void *ctx, uint32_t i, const char **p, size_t *n)
{
	(void)ctx;
	*p = tmail[i];
	*n = strlen(tmail[i]);
	return 0;
}

static const struct imap_mailbox_src tsrc = {
	NULL, 4, t_view, NULL, t_map, NULL,
};

static void
run(const char *args, bool uid, struct buf *out)
{
	struct imap_parser p;
	struct imap_cursor c;
	struct imap_thread_program tp;
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
	if (imap_thread_parse(&c, &tp, &why) < 0) {
		buf_printf(out, "BAD %s", why);
		imap_parser_free(&p);
		return;
	}
	if (imap_search_begin(&ev, &tp.search, &tsrc, NULL, &why) < 0) {
		buf_printf(out, "NO %s", why);
	} else {
		while (imap_search_step(&ev, 0) == IMAP_SEARCH_MORE)
			;
		imap_thread_answer(&ev, tp.alg, uid, out);
		imap_search_end(&ev);
	}
	imap_thread_free(&tp);
	imap_parser_free(&p);
}

static void
test_command(void)
{
	static const char *const cases[][3] = {
		{"REFERENCES UTF-8 ALL", "", "* THREAD (1 2 3)(4)\r\n"},
		{"REFERENCES UTF-8 ALL", "u",
		    "* THREAD (100 101 102)(103)\r\n"},
		{"references us-ascii NOT 2", "",
		    "* THREAD (1 3)(4)\r\n"},	/* 3 via <b>, by subject */
		{"ORDEREDSUBJECT UTF-8 ALL", "",
		    "* THREAD (1 (2)(3))(4)\r\n"},
		{"REFERENCES UTF-8 DELETED", "", "* THREAD\r\n"},
		{"FOO UTF-8 ALL", "", "BAD Unknown threading algorithm"},
		{"REFERENCES", "", "BAD THREAD needs a charset"},
		{"REFERENCES UTF-8", "", "BAD Missing search key"},
		{"REFERENCES UTF-8 RETURN (ALL) ALL", "",
		    "BAD Invalid search program"},
		{"REFERENCES x-no-such-charset ALL", "",
		    "NO Unknown charset"},
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

/* test_long_chain - 100,000 replies, each citing the one before: the
 * loop check of a link must not walk the whole chain (that took 11.5 s
 * at -O2; bounded, 0.2 s) */
static void
test_long_chain(void)
{
	enum { N = 100000 };
	struct imap_sort_msg *m = xcalloc(N, sizeof(*m));
	struct buf out = BUF_INIT;
	double ms;

	for (int i = 0; i < N; i++) {
		m[i].seq = (uint32_t)i + 1;
		m[i].date = i;
		m[i].subject = xasprintf("s%d", i);
		m[i].msgid = xasprintf("<%d@x>", i);
		if (i > 0)
			m[i].refs = xasprintf("<%d@x>", i - 1);
	}
	ms = t_cpu_ms();
	imap_thread_build(m, N, IMAP_THREAD_REFERENCES, false, &out);
	ms = t_cpu_ms() - ms;
	fprintf(stderr, "  100000-message chain: %.0f ms\n", ms);
	T_ASSERT(ms < 5000 * T_SLOW);
	T_ASSERT(strncmp(out.data, "(1 2 3 ", 7) == 0);
	T_ASSERT(strstr(out.data, " 1000)(1001 1002 ") != NULL);
	for (int i = 0; i < N; i++)
		imap_sort_msg_free(&m[i]);
	x_free(&m);
	buf_free(&out);
}

/* test_wide - 50,000 ids cited under one parent, then the messages
 * with those ids: each takes its container out of a list of thousands
 * of siblings (a walk of the list each took 4.5 s at -O2; in constant
 * time, 0.1 s) */
static void
test_wide(void)
{
	enum { H = 50000, N = 2 * H };
	struct imap_sort_msg *m = xcalloc(N, sizeof(*m));
	struct buf out = BUF_INIT;
	double ms;

	for (int i = 0; i < N; i++) {
		m[i].seq = (uint32_t)i + 1;
		m[i].date = i;
		m[i].subject = xasprintf("s%d", i);
		if (i < H) {
			m[i].msgid = xasprintf("<m%d@x>", i);
			m[i].refs = xasprintf("<root@x><%d@x>", i);
		} else {
			m[i].msgid = xasprintf("<%d@x>", i - H);
		}
	}
	ms = t_cpu_ms();
	imap_thread_build(m, N, IMAP_THREAD_REFERENCES, false, &out);
	ms = t_cpu_ms() - ms;
	fprintf(stderr, "  50000 siblings: %.0f ms\n", ms);
	T_ASSERT(ms < 2000 * T_SLOW);
	/* each message says it has no parent: it leaves <root> (RFC 5256
	 * 2.2 step 1B), which is then an empty dummy and goes */
	T_ASSERT(strncmp(out.data, "(50001 1)(50002 2)(50003 3)", 27) == 0);
	T_ASSERT(strstr(out.data, "(100000 50000)") != NULL);
	for (int i = 0; i < N; i++)
		imap_sort_msg_free(&m[i]);
	x_free(&m);
	buf_free(&out);
}

/*
 * test_subject_pairs - 200,000 messages without references, two of each
 * base subject, neither a reply: step 5 (RFC 5256 2.2) gives each pair a
 * dummy in the root set in place of the first one, which must not walk
 * the root set to find its place (that is quadratic: 100,000 walks of up
 * to 100,000 roots took 6 s at -O2)
 */
static void
test_subject_pairs(void)
{
	enum { H = 100000, N = 2 * H };
	struct imap_sort_msg *m = xcalloc(N, sizeof(*m));
	struct buf out = BUF_INIT;
	double ms;

	for (int i = 0; i < N; i++) {
		m[i].seq = (uint32_t)i + 1;
		m[i].date = i;
		m[i].subject = xasprintf("s%d", i % H);
		m[i].msgid = xasprintf("<%d@x>", i);
	}
	ms = t_cpu_ms();
	imap_thread_build(m, N, IMAP_THREAD_REFERENCES, false, &out);
	ms = t_cpu_ms() - ms;
	fprintf(stderr, "  100000 subject pairs: %.0f ms\n", ms);
	T_ASSERT(ms < 2000 * T_SLOW);
	/* each pair is a dummy with both as children, in date order */
	T_ASSERT(strncmp(out.data, "((1)(100001))((2)(100002))", 26) == 0);
	T_ASSERT(strstr(out.data, "((100000)(200000))") != NULL);
	for (int i = 0; i < N; i++)
		imap_sort_msg_free(&m[i]);
	x_free(&m);
	buf_free(&out);
}

static const struct test_case cases[] = {
	{"many siblings in linear time", test_wide},
	{"base subject pairs in linear time", test_subject_pairs},
	{"REFERENCES", test_references},
	{"a long References chain in linear time", test_long_chain},
	{"ORDEREDSUBJECT", test_ordered},
	{"a deep chain", test_deep},
	{"the THREAD command", test_command},
	{0},
};

int
main(void)
{
	return test_run(cases);
}
