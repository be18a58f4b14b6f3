/*
 * imap_cmd_fuzz - imapd's command parser (imapd/imap_parse.c) on
 * untrusted bytes: command assembly with literals and its bounds, the
 * tokens of every assembled command, sequence sets, and SEARCH programs.
 *
 * The first byte picks the chunk size and the bounds; the rest is what a
 * client sends. Checked: the events and the commands are the same when
 * the input arrives whole and when it arrives in small chunks (the
 * parser resumes anywhere); an assembled command stays within its
 * bounds; every token lies inside the command; a SEARCH program that
 * parses has at most IMAP_SEARCH_KEYS_MAX keys. With bit 3 of the
 * first byte set, literals of 8 bytes or more are spooled (as imapd
 * does with APPEND's messages): their bytes reach the spool whole and in
 * order whatever the chunks, and never the command.
 */
#include <string.h>

#include "base/buf.h"
#include "imap_parse.h"
#include "fuzz.h"

/* the spool: a hash of the bytes it took, and how many */
struct spool {
	uint64_t hash;
	unsigned long long want, got;
};

/* spool_ask - take literals of 8 bytes or more */
static int
spool_ask(void *ctx, const struct imap_parser *p, unsigned long long n,
    bool literal8)
{
	struct spool *sp = ctx;

	(void)literal8;
	FUZZ_CHECK(n <= p->literal_max);
	if (n < 8)
		return 0;
	FUZZ_CHECK(sp->got == sp->want);
	sp->want += n;
	return 1;
}

/* spool_write - the bytes: FNV-1a */
static int
spool_write(void *ctx, const char *data, size_t n)
{
	struct spool *sp = ctx;

	sp->got += n;
	FUZZ_CHECK(sp->got <= sp->want);
	for (size_t i = 0; i < n; i++)
		sp->hash = (sp->hash ^ (unsigned char)data[i]) *
		    1099511628211ULL;
	return 0;
}

/* walk - the tokens of p's command, and what they parse as */
static void
walk(const struct imap_parser *p, struct buf *out)
{
	struct imap_cursor c;
	struct imap_token t;
	struct imap_seqset set;
	struct imap_search_program prog;
	const char *why;
	enum imap_tok k;
	int n = 0;

	imap_cursor_init(&c, p, 0);
	while ((k = imap_cursor_next(&c, &t)) != IMAP_TOK_END &&
	    k != IMAP_TOK_ERROR) {
		buf_printf(out, "%d:%zu ", (int)k, t.len);
		if (t.spooled) {
			FUZZ_CHECK(t.len == 0 && t.literal);
			FUZZ_CHECK(t.spool_len <= p->literal_max);
			buf_printf(out, "s%llu ", t.spool_len);
		}
		if (t.p != NULL)
			FUZZ_CHECK(t.p >= p->cmd.data &&
			    t.p + t.len <= p->cmd.data + p->cmd.len);
		if (k == IMAP_TOK_ATOM &&
		    imap_seqset_parse(t.p, t.len, &set) == 0) {
			FUZZ_CHECK(set.saved || set.n > 0);
			FUZZ_CHECK(set.n <= IMAP_SEQSET_MAX);
			imap_seqset_free(&set);
		}
		/* after the tag and the name: the rest as a SEARCH program */
		if (++n == 2) {
			struct imap_cursor s = c;

			if (imap_search_parse(&s, &prog, &why) == 0) {
				FUZZ_CHECK(prog.nodes <=
				    IMAP_SEARCH_KEYS_MAX + 1);
				imap_search_format(&prog, out);
				imap_search_free(&prog);
			} else {
				FUZZ_CHECK(why != NULL && prog.root == NULL);
			}
		}
	}
	buf_printf(out, "%s|", k == IMAP_TOK_ERROR ? c.error : "end");
}

/* run - feed data in chunks of chunk bytes; the transcript into out */
static void
run(const uint8_t *data, size_t size, size_t chunk, unsigned mode,
    bool spooling, struct buf *out)
{
	struct imap_parser p;
	struct spool sp = {14695981039346656037ULL, 0, 0};
	size_t off = 0, used;

	imap_parser_init(&p, mode & 1 ? 64 : 8192, mode & 2 ? 256 : 65536,
	    mode & 4 ? 16 : 8192, mode & 8 ? 0 : 100000);
	if (spooling) {
		p.spool = spool_ask;
		p.spool_write = spool_write;
		p.spool_ctx = &sp;
	}
	while (off < size) {
		size_t n = size - off < chunk ? size - off : chunk;
		enum imap_feed ev = imap_parser_feed(&p, (const char *)data +
		    off, n, &used);

		FUZZ_CHECK(used <= n);
		off += used;
		FUZZ_CHECK(p.cmd.len <= p.cmd_max);
		buf_printf(out, "E%d ", (int)ev);
		if (ev != IMAP_FEED_MORE && ev != IMAP_FEED_CONTINUE)
			buf_printf(out, "h%llx:%llu ",
			    (unsigned long long)sp.hash, sp.got);
		if (ev == IMAP_FEED_COMMAND)
			walk(&p, out);
		else if (ev == IMAP_FEED_ERROR)
			buf_printf(out, "err%d ", (int)p.err);
		else if (ev == IMAP_FEED_FATAL)
			break;
		else if (ev == IMAP_FEED_MORE)
			FUZZ_CHECK(used == n);
	}
	imap_parser_free(&p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf whole = BUF_INIT, pieces = BUF_INIT;
	unsigned mode;

	if (size < 1)
		return 0;
	mode = data[0] >> 4;
	run(data + 1, size - 1, size, mode, data[0] & 8, &whole);
	run(data + 1, size - 1, (size_t)(data[0] & 7) + 1, mode, data[0] & 8,
	    &pieces);
	/* the MORE events differ with the chunks; the rest must not */
	{
		struct buf a = BUF_INIT, b = BUF_INIT;
		const char *q;

		for (q = buf_cstr(&whole); *q; q++)
			if (!(q[0] == 'E' && q[1] == '0' && q[2] == ' '))
				buf_putc(&a, *q);
			else
				q += 2;
		for (q = buf_cstr(&pieces); *q; q++)
			if (!(q[0] == 'E' && q[1] == '0' && q[2] == ' '))
				buf_putc(&b, *q);
			else
				q += 2;
		FUZZ_CHECK(strcmp(buf_cstr(&a), buf_cstr(&b)) == 0);
		buf_free(&a);
		buf_free(&b);
	}
	buf_free(&whole);
	buf_free(&pieces);
	return 0;
}
