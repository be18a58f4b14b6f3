/*
 * imap_search_fuzz - imapd's SEARCH engine (imapd/imap_search_eval.c) on
 * untrusted programs and messages: the first line of the input is a
 * SEARCH program (imap_parse), the rest one more message of a small
 * built-in mailbox (plain, quoted-printable Latin-1 multipart, base64
 * with an attached message). Checked: the matches are ascending
 * sequence numbers of the mailbox; evaluating in slices of any budget
 * gives the same matches as in one go; the answer is CRLF-terminated;
 * SAVE keeps no more than matched; SORT and THREAD (the same keys after
 * "(SUBJECT) UTF-8" and "REFERENCES UTF-8") name each match once.
 */
#include <string.h>

#include "base/buf.h"
#include "base/mem.h"
#include "imap_parse.h"
#include "imap_search_eval.h"
#include "imap_sort.h"
#include "imap_thread.h"
#include "fuzz.h"

static const char *const builtin[] = {
	"From: \"Alice\" <alice@example.org>\nTo: bob@example.com\n"
	"Subject: =?ISO-8859-1?Q?Caf=E9?=\nMessage-ID: <1@x>\n"
	"Date: Wed, 31 Jan 2024 23:30:00 -0500\n\nHello World\n",
	"From: bob@example.com\r\nSubject: Re: Caf\r\nIn-Reply-To: <1@x>\r\n"
	"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
	"Content-Type: text/plain; charset=iso-8859-1\r\n"
	"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
	"Gr=FC=DFe=\r\n aus\r\n--b--\r\n",
	"Subject: fwd\nContent-Type: message/rfc822\n"
	"Content-Transfer-Encoding: base64\n\n"
	"U3ViamVjdDogaW5uZXIKCmRlZXAK\n",
};
#define NBUILTIN (sizeof(builtin) / sizeof(builtin[0]))

struct fmbox {
	const char *extra;
	size_t extra_len;
};

static int
f_view(void *ctx, uint32_t i, struct imap_msg_view *v)
{
	static const char *const kw[] = {"$Work", "Junk"};
	struct fmbox *mb = ctx;

	v->uid = 10 * (i + 1);
	v->flags = i * 7 % 64;
	v->keywords = kw;
	v->nkeywords = i % 3;
	v->modseq = 100 - i;
	v->internaldate = 1706745600 + (time_t)i * 43200;
	v->internal_zone = (int)i * 90 - 180;
	v->size = i < NBUILTIN ? strlen(builtin[i]) : mb->extra_len;
	return 0;
}

static int
f_map(void *ctx, uint32_t i, const char **p, size_t *n)
{
	struct fmbox *mb = ctx;

	if (i < NBUILTIN) {
		*p = builtin[i];
		*n = strlen(builtin[i]);
	} else {
		*p = mb->extra;
		*n = mb->extra_len;
	}
	return 0;
}

/* eval - the matches of prog in slices of budget bytes */
static int
eval(const struct imap_search_program *prog,
    const struct imap_mailbox_src *src, unsigned long long budget,
    struct imap_search_eval *ev)
{
	static const uint32_t saved[] = {20, 40};
	struct imap_search_opts o = {saved, 2};
	const char *why;
	int steps = 0;

	if (imap_search_begin(ev, prog, src, &o, &why) < 0) {
		FUZZ_CHECK(why != NULL);
		return -1;
	}
	while (imap_search_step(ev, budget) == IMAP_SEARCH_MORE)
		FUZZ_CHECK(++steps <= (int)src->count);
	return 0;
}

/* once - parse and run line as SEARCH (kind 0), SORT (1) or THREAD (2)
 * arguments */
static void
once(int kind, const char *line, size_t len,
    const struct imap_mailbox_src *src)
{
	struct imap_parser p;
	struct imap_cursor c;
	struct imap_search_program prog;
	struct imap_sort_program sp;
	struct imap_thread_program tp;
	const struct imap_search_program *sprog = &prog;
	struct imap_search_eval a, b;
	struct buf cmd = BUF_INIT, out = BUF_INIT;
	const char *why;
	size_t used;

	/* the same keys for SEARCH, SORT and THREAD */
	buf_puts(&cmd, kind == 1 ? "(SUBJECT) UTF-8 " : kind == 2 ?
	    "REFERENCES UTF-8 " : "");
	buf_append(&cmd, line, len);
	buf_puts(&cmd, "\r\n");
	imap_parser_init(&p, 65536, 65536, 4096, 0);
	if (imap_parser_feed(&p, cmd.data, cmd.len, &used) !=
	    IMAP_FEED_COMMAND)
		goto done;
	imap_cursor_init(&c, &p, 0);
	if (kind == 1) {
		if (imap_sort_parse(&c, &sp, &why) < 0)
			goto done;
		sprog = &sp.search;
	} else if (kind == 2) {
		if (imap_thread_parse(&c, &tp, &why) < 0)
			goto done;
		sprog = &tp.search;
	} else if (imap_search_parse(&c, &prog, &why) < 0) {
		goto done;
	}
	if (eval(sprog, src, 0, &a) == 0) {
		FUZZ_CHECK(eval(sprog, src, 1, &b) == 0);
		FUZZ_CHECK(a.n == b.n && a.n <= src->count);
		for (size_t i = 0; i < a.n; i++) {
			FUZZ_CHECK(a.seq[i] == b.seq[i]);
			FUZZ_CHECK(a.seq[i] >= 1 && a.seq[i] <= src->count);
			FUZZ_CHECK(i == 0 || a.seq[i] > a.seq[i - 1]);
		}
		imap_search_end(&b);
		if (kind == 0) {
			uint32_t *u;

			imap_search_answer(&a, "t", true, true, &out);
			FUZZ_CHECK(out.len == 0 || (out.len >= 2 &&
			    memcmp(out.data + out.len - 2, "\r\n", 2) == 0));
			FUZZ_CHECK(imap_search_save(&a, &u) <= a.n);
			x_free(&u);
		} else if (kind == 1) {
			size_t n = a.n;

			imap_sort_matches(&a, &sp);
			FUZZ_CHECK(a.n == n);
			imap_sort_answer(&a, &sp, "t", false, true, &out);
		} else {
			size_t seen[8] = {0};
			const char *q;

			imap_thread_answer(&a, tp.alg, false, &out);
			/* each match once: numbers are 1..4 here */
			for (q = out.data + 8; *q; q++)
				if (*q >= '1' && *q <= '9')
					seen[*q - '0']++;
			for (size_t i = 0; i < a.n; i++)
				FUZZ_CHECK(seen[a.seq[i]] == 1);
		}
		imap_search_end(&a);
	}
	if (kind == 1)
		imap_sort_free(&sp);
	else if (kind == 2)
		imap_thread_free(&tp);
	else
		imap_search_free(&prog);
done:
	imap_parser_free(&p);
	buf_free(&cmd);
	buf_free(&out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data, *nl;
	struct fmbox mb;
	struct imap_mailbox_src src = {&mb, NBUILTIN + 1, f_view, NULL,
	    f_map, NULL};
	size_t len;

	if (size > 65536)
		return 0;
	nl = memchr(s, '\n', size);
	len = nl ? (size_t)(nl - s) : size;
	if (len > 0 && s[len - 1] == '\r')
		len--;
	mb.extra = nl ? nl + 1 : s + size;
	mb.extra_len = nl ? size - (size_t)(nl + 1 - s) : 0;
	once(0, s, len, &src);
	once(1, s, len, &src);
	once(2, s, len, &src);
	return 0;
}
