/*
 * imap_parse - IMAP command assembly, tokens, sequence sets and SEARCH
 * programs (see imap_parse.h for the contract and the bounds).
 */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "imap_parse.h"

/* imap_parser_init - an empty parser with the given bounds */
void
imap_parser_init(struct imap_parser *p, size_t line_max, size_t cmd_max,
    unsigned long long literal_max, unsigned long long discard_max)
{
	memset(p, 0, sizeof(*p));
	buf_init(&p->cmd);
	p->line_max = line_max;
	p->cmd_max = cmd_max;
	p->literal_max = literal_max;
	p->discard_max = discard_max;
	imap_parser_reset(p);
}

/* imap_parser_free - the command buffer goes, wiped */
void
imap_parser_free(struct imap_parser *p)
{
	imap_parser_wipe(p);
	buf_free(&p->cmd);
	x_free(&p->lit);
	p->lit_cap = 0;
}

/* imap_parser_wipe - overwrite the command text */
void
imap_parser_wipe(struct imap_parser *p)
{
	if (p->cmd.cap > 0)
		explicit_bzero(p->cmd.data, p->cmd.cap);
	buf_reset(&p->cmd);
}

/* imap_parser_line_start - the scanner at the start of a line */
static void
imap_parser_line_start(struct imap_parser *p)
{
	p->line_start = p->cmd.len;
	p->line_len = 0;
	p->in_quote = false;
	p->esc = false;
	p->lstate = IMAP_L_NONE;
	p->lit8 = false;
	p->lit_over = false;
	p->lit_n = 0;
	p->skipped = 0;
	p->spooling = false;
}

/* imap_parser_reset - start a new command */
void
imap_parser_reset(struct imap_parser *p)
{
	imap_parser_wipe(p);
	x_free(&p->lit);
	p->nlit = p->lit_cap = 0;
	p->err = IMAP_ERR_NONE;
	p->discarded = false;
	p->state = IMAP_P_LINE;
	p->lit_left = 0;
	imap_parser_line_start(p);
}

/*
 * imap_parser_scan - one byte of a line (not its LF) through the literal
 * header scanner: does the line end in "{n}", "{n+}" or "~{n}" outside
 * a quoted string? pos is where the byte is (or would be) in cmd.
 */
static void
imap_parser_scan(struct imap_parser *p, unsigned char c, size_t pos)
{
	if (p->in_quote) {
		if (p->esc)
			p->esc = false;
		else if (c == '\\')
			p->esc = true;
		else if (c == '"')
			p->in_quote = false;
		p->lstate = IMAP_L_NONE;
		return;
	}
	switch (c) {
	case '"':
		p->in_quote = true;
		p->lstate = IMAP_L_NONE;
		break;
	case '~':
		p->lstate = IMAP_L_TILDE;
		p->lit_hdr = pos;
		break;
	case '{':
		p->lit8 = p->lstate == IMAP_L_TILDE;
		if (!p->lit8)
			p->lit_hdr = pos;
		p->lstate = IMAP_L_OPEN;
		p->lit_n = 0;
		p->lit_over = false;
		break;
	case '+':
		p->lstate = p->lstate == IMAP_L_DIGITS ? IMAP_L_PLUS :
		    IMAP_L_NONE;
		break;
	case '}':
		p->lit_plus = p->lstate == IMAP_L_PLUS;
		p->lstate = p->lstate == IMAP_L_DIGITS ||
		    p->lstate == IMAP_L_PLUS ? IMAP_L_CLOSED : IMAP_L_NONE;
		break;
	case '\r':
		/* the CR of CRLF keeps a header seen just before it */
		if (p->lstate != IMAP_L_CLOSED)
			p->lstate = IMAP_L_NONE;
		break;
	default:
		if (c >= '0' && c <= '9' && (p->lstate == IMAP_L_OPEN ||
		    p->lstate == IMAP_L_DIGITS)) {
			p->lstate = IMAP_L_DIGITS;
			if (p->lit_n > 999999999999999999ULL)
				p->lit_over = true;
			else
				p->lit_n = p->lit_n * 10 + (c - '0');
		} else {
			p->lstate = IMAP_L_NONE;
		}
		break;
	}
}


/* imap_parser_fail - the command fails; the first reason is kept */
static void
imap_parser_fail(struct imap_parser *p, enum imap_err err)
{
	if (p->err == IMAP_ERR_NONE)
		p->err = err;
}

/* imap_parser_toobig - a literal over limit (its bound, for the answer) */
static void
imap_parser_toobig(struct imap_parser *p, unsigned long long limit)
{
	if (p->err == IMAP_ERR_NONE)
		p->toobig_limit = limit;
	imap_parser_fail(p, IMAP_ERR_TOOBIG);
}

/*
 * imap_parser_eol - the LF of a line: the end of the command, or a
 * literal to read (or to skip) before the command goes on.
 */
static enum imap_feed
imap_parser_eol(struct imap_parser *p)
{
	bool skipping = p->state == IMAP_P_SKIP_LINE;
	bool sync = !p->lit_plus;
	unsigned long long n = p->lit_n;
	struct imap_literal *l;
	int spool = 0;

	/* the CR of CRLF is not part of the line */
	if (!skipping && p->cmd.len > p->line_start &&
	    p->cmd.data[p->cmd.len - 1] == '\r')
		buf_truncate(&p->cmd, p->cmd.len - 1);
	if (p->lstate != IMAP_L_CLOSED || p->lines_only) {
		p->state = IMAP_P_DONE;
		return p->err == IMAP_ERR_NONE ? IMAP_FEED_COMMAND :
		    IMAP_FEED_ERROR;
	}
	/* a literal follows */
	if (p->lit_over)
		imap_parser_fail(p, IMAP_ERR_NUMBER);
	else if (p->nlit == IMAP_LITERALS_MAX)
		imap_parser_fail(p, IMAP_ERR_LITERALS);
	else if (n > p->literal_max)
		imap_parser_toobig(p, p->literal_max);
	else if (p->spool != NULL && p->err == IMAP_ERR_NONE &&
	    (spool = p->spool(p->spool_ctx, p, n, p->lit8)) < 0)
		imap_parser_fail(p, IMAP_ERR_SPOOL);
	else if (spool == 0 && n > p->cmd_max - p->cmd.len)
		imap_parser_toobig(p, p->cmd_max);
	if (p->err == IMAP_ERR_NONE) {
		if (p->nlit == p->lit_cap) {
			p->lit_cap = p->lit_cap ? p->lit_cap * 2 : 4;
			if (p->lit_cap > IMAP_LITERALS_MAX)
				p->lit_cap = IMAP_LITERALS_MAX;
			p->lit = xreallocarray(p->lit, p->lit_cap,
			    sizeof(*p->lit));
		}
		l = &p->lit[p->nlit++];
		l->hdr = p->lit_hdr;
		l->data = p->cmd.len;
		l->len = (size_t)n;
		l->literal8 = p->lit8;
		l->sync = sync;
		l->spooled = spool > 0;
		p->spooling = spool > 0;
		p->lit_left = n;
		p->state = IMAP_P_LITERAL;
		if (n == 0) {
			p->state = IMAP_P_LINE;
			imap_parser_line_start(p);
		}
		return sync ? IMAP_FEED_CONTINUE : IMAP_FEED_MORE;
	}
	/*
	 * The command failed. A synchronizing literal is not sent until we
	 * say "+", which we do not: the command ends here. A
	 * non-synchronizing one is on its way and must not be read as
	 * commands: skip it if that is cheap enough, else give up.
	 */
	if (sync) {
		p->state = IMAP_P_DONE;
		return IMAP_FEED_ERROR;
	}
	if (p->lit_over || n > p->discard_max) {
		p->state = IMAP_P_DONE;
		return IMAP_FEED_FATAL;
	}
	p->discarded = true;
	p->lit_left = n;
	p->state = IMAP_P_SKIP_LITERAL;
	if (n == 0) {
		p->state = IMAP_P_SKIP_LINE;
		imap_parser_line_start(p);
	}
	return IMAP_FEED_MORE;
}

/* imap_parser_feed - scan data[0..n) up to the next event */
enum imap_feed
imap_parser_feed(struct imap_parser *p, const char *data, size_t n,
    size_t *used_r)
{
	enum imap_feed ev = IMAP_FEED_MORE;
	size_t i = 0, take;

	if (p->state == IMAP_P_DONE)
		imap_parser_reset(p);
	while (i < n && ev == IMAP_FEED_MORE) {
		unsigned char c;

		switch (p->state) {
		case IMAP_P_LITERAL:
		case IMAP_P_SKIP_LITERAL:
			take = n - i;
			if (take > p->lit_left)
				take = (size_t)p->lit_left;
			if (p->state == IMAP_P_LITERAL && !p->spooling)
				buf_append(&p->cmd, data + i, take);
			else if (p->state == IMAP_P_LITERAL &&
			    p->spool_write(p->spool_ctx, data + i, take) < 0) {
				/* the rest is skipped; the command fails */
				imap_parser_fail(p, IMAP_ERR_SPOOL);
				p->state = IMAP_P_SKIP_LITERAL;
			}
			i += take;
			p->lit_left -= take;
			if (p->lit_left == 0) {
				p->state = p->state == IMAP_P_LITERAL ?
				    IMAP_P_LINE : IMAP_P_SKIP_LINE;
				imap_parser_line_start(p);
			}
			continue;
		case IMAP_P_DONE:
			msg_panic("imap_parser_feed: event not taken");
		default:
			break;
		}
		c = (unsigned char)data[i++];
		if (c == '\n') {
			ev = imap_parser_eol(p);
			continue;
		}
		if (p->state == IMAP_P_LINE) {
			if (p->line_len + 2 > p->line_max ||
			    p->cmd.len + 1 > p->cmd_max) {
				imap_parser_fail(p, IMAP_ERR_LINE);
				p->state = IMAP_P_SKIP_LINE;
			} else {
				buf_putc(&p->cmd, c);
			}
		}
		if (p->state == IMAP_P_SKIP_LINE &&
		    ++p->skipped > IMAP_SKIP_MAX) {
			p->err = IMAP_ERR_RUNAWAY;
			p->state = IMAP_P_DONE;
			ev = IMAP_FEED_FATAL;
			continue;
		}
		imap_parser_scan(p, c, p->cmd.len - 1);
		p->line_len++;
	}
	*used_r = i;
	return ev;
}

/* imap_tag_char - ASTRING-CHAR except "+" (RFC 9051 tag) */
static bool
imap_tag_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("(){%*\"\\+", c) == NULL;
}

/* imap_tag_ok - is p[0..n) a tag? */
bool
imap_tag_ok(const char *p, size_t n)
{
	if (n == 0 || n > IMAP_TAG_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!imap_tag_char((unsigned char)p[i]))
			return false;
	return true;
}

/* imap_parser_tag - the tag of the command, or "*" */
void
imap_parser_tag(const struct imap_parser *p, struct buf *out)
{
	const char *sp;
	size_t n;

	buf_reset(out);
	sp = p->cmd.len ? memchr(p->cmd.data, ' ', p->cmd.len) : NULL;
	n = sp != NULL ? (size_t)(sp - p->cmd.data) : p->cmd.len;
	/* a line that was skipped may have no space in what was kept */
	if (imap_tag_ok(p->cmd.data, n) && (sp != NULL ||
	    p->err == IMAP_ERR_NONE))
		buf_append(out, p->cmd.data, n);
	else
		buf_putc(out, '*');
}

/* imap_cursor_init - tokens of p->cmd from offset start */
void
imap_cursor_init(struct imap_cursor *c, const struct imap_parser *p,
    size_t start)
{
	memset(c, 0, sizeof(*c));
	c->parser = p;
	c->base = p->cmd.data ? p->cmd.data : "";
	c->len = p->cmd.len;
	c->pos = start;
	while (c->next_lit < p->nlit && p->lit[c->next_lit].hdr < start)
		c->next_lit++;
}

/* imap_cursor_error - the command is malformed */
static enum imap_tok
imap_cursor_error(struct imap_cursor *c, struct imap_token *t,
    const char *why)
{
	if (c->error == NULL)
		c->error = why;
	t->type = IMAP_TOK_ERROR;
	return IMAP_TOK_ERROR;
}

/* imap_atom_char - what an atom token may hold: ATOM-CHAR plus "%",
 * "*", "]" and "\" (flags, wildcards, sections) */
static bool
imap_atom_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && c != '(' && c != ')' && c != '{' &&
	    c != '"';
}

/* imap_cursor_quoted - a quoted string at c->pos */
static enum imap_tok
imap_cursor_quoted(struct imap_cursor *c, struct imap_token *t)
{
	size_t i = c->pos + 1;

	for (; i < c->len; i++) {
		unsigned char ch = (unsigned char)c->base[i];

		if (ch == '"')
			break;
		if (ch == '\\') {
			if (i + 1 >= c->len || (c->base[i + 1] != '"' &&
			    c->base[i + 1] != '\\'))
				return imap_cursor_error(c, t,
				    "Invalid escape in quoted string");
			i++;
		} else if (ch == '\0' || ch == '\r' || ch == '\n') {
			return imap_cursor_error(c, t,
			    "Invalid character in quoted string");
		}
	}
	if (i >= c->len)
		return imap_cursor_error(c, t, "Unterminated quoted string");
	t->type = IMAP_TOK_STRING;
	t->quoted = true;
	t->p = c->base + c->pos + 1;
	t->len = i - c->pos - 1;
	c->pos = i + 1;
	return t->type;
}

/* imap_cursor_literal - the literal whose header is at c->pos */
static enum imap_tok
imap_cursor_literal(struct imap_cursor *c, struct imap_token *t)
{
	const struct imap_literal *l;

	if (c->next_lit >= c->parser->nlit ||
	    c->parser->lit[c->next_lit].hdr != c->pos)
		return imap_cursor_error(c, t, "Unexpected '{'");
	l = &c->parser->lit[c->next_lit++];
	t->spooled = l->spooled;
	t->spool_len = l->len;
	t->lit_index = c->next_lit - 1;
	if (l->spooled) {
		/* the bytes are the owner's; nothing of them is here */
		t->type = IMAP_TOK_STRING;
		t->literal = true;
		t->literal8 = l->literal8;
		t->p = c->base + l->data;
		t->len = 0;
		c->pos = l->data;
		return t->type;
	}
	if (!l->literal8 && memchr(c->base + l->data, '\0', l->len) != NULL)
		return imap_cursor_error(c, t, "NUL in a literal");
	t->type = IMAP_TOK_STRING;
	t->literal = true;
	t->literal8 = l->literal8;
	t->p = c->base + l->data;
	t->len = l->len;
	c->pos = l->data + l->len;
	return t->type;
}

/* imap_cursor_sep - the separator before the next token; false if
 * there is none where one is needed */
static bool
imap_cursor_sep(struct imap_cursor *c)
{
	char ch;

	if (!c->started || c->pos >= c->len)
		return true;
	ch = c->base[c->pos];
	if (ch == ' ') {
		c->pos++;
		return c->pos < c->len && c->base[c->pos] != ' ';
	}
	if (ch == ')' || c->last == IMAP_TOK_OPEN)
		return true;
	if (ch == '(' && c->last == IMAP_TOK_ATOM && c->last_bracket)
		return true;
	return ch == ']' && c->last == IMAP_TOK_CLOSE;
}

/* imap_cursor_next - the next token */
enum imap_tok
imap_cursor_next(struct imap_cursor *c, struct imap_token *t)
{
	unsigned char ch;
	size_t i;
	int open;

	memset(t, 0, sizeof(*t));
	if (c->error != NULL)
		return imap_cursor_error(c, t, c->error);
	if (!imap_cursor_sep(c))
		return imap_cursor_error(c, t, "Missing or extra space");
	c->started = true;
	if (c->pos >= c->len) {
		if (c->depth > 0)
			return imap_cursor_error(c, t, "Unclosed list");
		t->type = IMAP_TOK_END;
		c->last = t->type;
		return t->type;
	}
	ch = (unsigned char)c->base[c->pos];
	if (ch == '(') {
		if (c->depth >= IMAP_LIST_DEPTH_MAX)
			return imap_cursor_error(c, t,
			    "Lists nested too deep");
		c->depth++;
		c->pos++;
		t->type = IMAP_TOK_OPEN;
	} else if (ch == ')') {
		if (c->depth == 0)
			return imap_cursor_error(c, t, "Unexpected ')'");
		c->depth--;
		c->pos++;
		t->type = IMAP_TOK_CLOSE;
	} else if (ch == '"') {
		if (imap_cursor_quoted(c, t) == IMAP_TOK_ERROR)
			return IMAP_TOK_ERROR;
	} else if (ch == '{' || (ch == '~' && c->pos + 1 < c->len &&
	    c->base[c->pos + 1] == '{')) {
		if (imap_cursor_literal(c, t) == IMAP_TOK_ERROR)
			return IMAP_TOK_ERROR;
	} else {
		open = 0;
		for (i = c->pos; i < c->len; i++) {
			ch = (unsigned char)c->base[i];
			if (!imap_atom_char(ch))
				break;
			open += ch == '[' ? 1 : ch == ']' ? -1 : 0;
		}
		if (i == c->pos || (i < c->len && c->base[i] != ' ' &&
		    c->base[i] != '(' && c->base[i] != ')'))
			return imap_cursor_error(c, t,
			    "Invalid character in command");
		t->type = IMAP_TOK_ATOM;
		t->p = c->base + c->pos;
		t->len = i - c->pos;
		c->pos = i;
		c->last_bracket = open > 0;
	}
	c->last = t->type;
	return t->type;
}

/* imap_cursor_peek - the next token, left in place */
enum imap_tok
imap_cursor_peek(struct imap_cursor *c, struct imap_token *t)
{
	struct imap_cursor save = *c;
	enum imap_tok r = imap_cursor_next(c, t);

	*c = save;
	return r;
}

/* imap_tok_string - the value of an atom or string into out */
void
imap_tok_string(const struct imap_token *t, struct buf *out)
{
	buf_reset(out);
	if (!t->quoted) {
		buf_append(out, t->p, t->len);
		return;
	}
	for (size_t i = 0; i < t->len; i++) {
		if (t->p[i] == '\\')
			i++;
		buf_putc(out, t->p[i]);
	}
}

/* imap_tok_is - is t the atom word, in any case? */
bool
imap_tok_is(const struct imap_token *t, const char *word)
{
	size_t n = strlen(word);

	return t->type == IMAP_TOK_ATOM && t->len == n &&
	    str_ncasecmp(t->p, word, n) == 0;
}

/* imap_tok_astring - an atom of ASTRING-CHARs, or a string */
bool
imap_tok_astring(const struct imap_token *t)
{
	if (t->type == IMAP_TOK_STRING)
		return !t->literal8;
	if (t->type != IMAP_TOK_ATOM)
		return false;
	for (size_t i = 0; i < t->len; i++)
		if (t->p[i] == '%' || t->p[i] == '*' || t->p[i] == '\\')
			return false;
	return true;
}

/* imap_syntax_check - walk the rest of the command */
int
imap_syntax_check(struct imap_cursor *c)
{
	struct imap_token t;

	for (;;) {
		switch (imap_cursor_next(c, &t)) {
		case IMAP_TOK_END:
			return 0;
		case IMAP_TOK_ERROR:
			return -1;
		default:
			break;
		}
	}
}

/* imap_number - number (32 bits) or number64 */
int
imap_number(const char *p, size_t n, bool n64, unsigned long long *r)
{
	unsigned long long v = 0, max = n64 ? 9223372036854775807ULL :
	    4294967295ULL;

	if (n == 0 || n > 19)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (unsigned long long)(p[i] - '0');
	}
	if (v > max)
		return -1;
	*r = v;
	return 0;
}

/* imap_seq_number - nz-number or "*" (0) at p[0..n) */
static int
imap_seq_number(const char *p, size_t n, uint32_t *r)
{
	unsigned long long v;

	if (n == 1 && *p == '*') {
		*r = 0;
		return 0;
	}
	if (n == 0 || *p == '0' || imap_number(p, n, false, &v) < 0)
		return -1;
	*r = (uint32_t)v;
	return 0;
}

/* imap_seqset_free - forget the ranges */
void
imap_seqset_free(struct imap_seqset *set)
{
	x_free(&set->r);
	set->n = 0;
	set->saved = false;
}

/* imap_range_cmp - qsort's order of ranges: by lo */
static int
imap_range_cmp(const void *a, const void *b)
{
	const struct imap_range *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* imap_ranges_norm - see imap_parse.h */
void
imap_ranges_norm(struct imap_range *r, size_t *n, uint32_t top)
{
	size_t m = 0;

	for (size_t i = 0; i < *n; i++) {
		if (r[i].lo == 0)
			r[i].lo = top;
		if (r[i].hi == 0)
			r[i].hi = top;
		if (r[i].lo > r[i].hi) {
			uint32_t t = r[i].lo;

			r[i].lo = r[i].hi;
			r[i].hi = t;
		}
	}
	if (*n > 1)
		qsort(r, *n, sizeof(*r), imap_range_cmp);
	for (size_t i = 0; i < *n; i++) {
		if (m > 0 && (uint64_t)r[i].lo <= (uint64_t)r[m - 1].hi + 1) {
			if (r[i].hi > r[m - 1].hi)
				r[m - 1].hi = r[i].hi;
		} else {
			r[m++] = r[i];
		}
	}
	*n = m;
}

/* imap_seqset_parse - a sequence-set or "$" */
int
imap_seqset_parse(const char *p, size_t n, struct imap_seqset *set)
{
	const char *end = p + n, *q, *colon;
	size_t cap = 0;

	memset(set, 0, sizeof(*set));
	if (n == 1 && *p == '$') {
		set->saved = true;
		return 0;
	}
	if (n == 0)
		return -1;
	while (p <= end) {
		struct imap_range r;

		q = memchr(p, ',', (size_t)(end - p));
		if (q == NULL)
			q = end;
		colon = memchr(p, ':', (size_t)(q - p));
		if (colon == NULL) {
			if (imap_seq_number(p, (size_t)(q - p), &r.lo) < 0)
				goto bad;
			r.hi = r.lo;
		} else if (imap_seq_number(p, (size_t)(colon - p), &r.lo) <
		    0 || imap_seq_number(colon + 1, (size_t)(q - colon - 1),
		    &r.hi) < 0) {
			goto bad;
		}
		if (set->n == IMAP_SEQSET_MAX)
			goto bad;
		if (set->n == cap) {
			cap = cap ? 2 * cap : 4;
			set->r = xreallocarray(set->r, cap, sizeof(*set->r));
		}
		set->r[set->n++] = r;
		if (q == end)
			return 0;
		p = q + 1;
	}
bad:
	imap_seqset_free(set);
	return -1;
}

/* imap_date_parse - date-text "d-Mon-yyyy" into yyyymmdd */
int
imap_date_parse(const char *p, size_t n, int *date_r)
{
	static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31,
	    30, 31};
	int day = 0, month = -1, year = 0;
	size_t i = 0, d;
	char mon[4];

	for (d = 0; i < n && d < 2 && p[i] >= '0' && p[i] <= '9'; i++, d++)
		day = day * 10 + (p[i] - '0');
	if (d == 0 || i + 9 != n || p[i] != '-' || p[i + 4] != '-')
		return -1;
	for (int k = 0; k < 3; k++) {
		char ch = p[i + 1 + k];

		mon[k] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
	}
	mon[3] = '\0';
	for (int m = 0; m < 12; m++)
		if (memcmp(months + 3 * m, mon, 3) == 0)
			month = m;
	if (month < 0)
		return -1;
	for (i += 5; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		year = year * 10 + (p[i] - '0');
	}
	if (day < 1 || day > mdays[month])
		return -1;
	*date_r = year * 10000 + (month + 1) * 100 + day;
	return 0;
}

/* what a search key takes after its name */
enum imap_sa {
	IMAP_SA_NONE, IMAP_SA_STRING, IMAP_SA_DATE, IMAP_SA_NUMBER,
	IMAP_SA_HEADER, IMAP_SA_FLAG, IMAP_SA_SET, IMAP_SA_NOT, IMAP_SA_OR,
	IMAP_SA_MODSEQ,
};

static const struct imap_search_def {
	const char *name;
	enum imap_sk key;
	enum imap_sa arg;
} imap_search_defs[] = {
	{"ALL", IMAP_SK_ALL, IMAP_SA_NONE},
	{"ANSWERED", IMAP_SK_ANSWERED, IMAP_SA_NONE},
	{"BCC", IMAP_SK_BCC, IMAP_SA_STRING},
	{"BEFORE", IMAP_SK_BEFORE, IMAP_SA_DATE},
	{"BODY", IMAP_SK_BODY, IMAP_SA_STRING},
	{"CC", IMAP_SK_CC, IMAP_SA_STRING},
	{"DELETED", IMAP_SK_DELETED, IMAP_SA_NONE},
	{"DRAFT", IMAP_SK_DRAFT, IMAP_SA_NONE},
	{"EMAILID", IMAP_SK_EMAILID, IMAP_SA_STRING},
	{"FLAGGED", IMAP_SK_FLAGGED, IMAP_SA_NONE},
	{"FROM", IMAP_SK_FROM, IMAP_SA_STRING},
	{"HEADER", IMAP_SK_HEADER, IMAP_SA_HEADER},
	{"KEYWORD", IMAP_SK_KEYWORD, IMAP_SA_FLAG},
	{"LARGER", IMAP_SK_LARGER, IMAP_SA_NUMBER},
	{"MODSEQ", IMAP_SK_MODSEQ, IMAP_SA_MODSEQ},
	{"NEW", IMAP_SK_NEW, IMAP_SA_NONE},
	{"NOT", IMAP_SK_NOT, IMAP_SA_NOT},
	{"OLD", IMAP_SK_OLD, IMAP_SA_NONE},
	{"ON", IMAP_SK_ON, IMAP_SA_DATE},
	{"OR", IMAP_SK_OR, IMAP_SA_OR},
	{"RECENT", IMAP_SK_RECENT, IMAP_SA_NONE},
	{"SEEN", IMAP_SK_SEEN, IMAP_SA_NONE},
	{"SENTBEFORE", IMAP_SK_SENTBEFORE, IMAP_SA_DATE},
	{"SENTON", IMAP_SK_SENTON, IMAP_SA_DATE},
	{"SENTSINCE", IMAP_SK_SENTSINCE, IMAP_SA_DATE},
	{"SINCE", IMAP_SK_SINCE, IMAP_SA_DATE},
	{"SMALLER", IMAP_SK_SMALLER, IMAP_SA_NUMBER},
	{"SUBJECT", IMAP_SK_SUBJECT, IMAP_SA_STRING},
	{"TEXT", IMAP_SK_TEXT, IMAP_SA_STRING},
	{"THREADID", IMAP_SK_THREADID, IMAP_SA_STRING},
	{"TO", IMAP_SK_TO, IMAP_SA_STRING},
	{"UID", IMAP_SK_UID, IMAP_SA_SET},
	{"UNANSWERED", IMAP_SK_UNANSWERED, IMAP_SA_NONE},
	{"UNDELETED", IMAP_SK_UNDELETED, IMAP_SA_NONE},
	{"UNDRAFT", IMAP_SK_UNDRAFT, IMAP_SA_NONE},
	{"UNFLAGGED", IMAP_SK_UNFLAGGED, IMAP_SA_NONE},
	{"UNKEYWORD", IMAP_SK_UNKEYWORD, IMAP_SA_FLAG},
	{"UNSEEN", IMAP_SK_UNSEEN, IMAP_SA_NONE},
	{NULL, 0, 0},
};

/* the SEARCH parser's state */
struct imap_sctx {
	struct imap_cursor *c;
	struct imap_search_program *prog;
	const char *why;
	struct buf tmp;
};

static struct imap_search *imap_search_key(struct imap_sctx *,
    const struct imap_token *, int);

/* imap_search_node - a new node, counted against IMAP_SEARCH_KEYS_MAX */
static struct imap_search *
imap_search_node(struct imap_sctx *x, enum imap_sk key)
{
	struct imap_search *n;

	if (x->prog->nodes >= IMAP_SEARCH_KEYS_MAX) {
		x->why = "Too many search keys";
		return NULL;
	}
	x->prog->nodes++;
	n = xcalloc(1, sizeof(*n));
	n->key = key;
	return n;
}

/* imap_search_node_free - a node and what hangs below it */
static void
imap_search_node_free(struct imap_search *n)
{
	struct imap_search *next;

	for (; n != NULL; n = next) {
		next = n->next;
		imap_search_node_free(n->child);
		x_free(&n->str1);
		x_free(&n->str2);
		imap_seqset_free(&n->set);
		x_free(&n);
	}
}

/* imap_search_arg - the next token, which must be an astring; its value
 * into x->tmp */
static int
imap_search_arg(struct imap_sctx *x, const char *what)
{
	struct imap_token t;

	if (imap_cursor_next(x->c, &t) == IMAP_TOK_ERROR) {
		x->why = x->c->error;
		return -1;
	}
	if (!imap_tok_astring(&t)) {
		x->why = what;
		return -1;
	}
	imap_tok_string(&t, &x->tmp);
	return 0;
}

/* imap_search_operands - n keys after OR/NOT, or a list's keys up to
 * its ")" (n < 0), chained under parent */
static int
imap_search_operands(struct imap_sctx *x, struct imap_search *parent,
    int n, int depth)
{
	struct imap_search **tail = &parent->child;
	struct imap_token t;
	int got = 0;

	if (depth > IMAP_SEARCH_DEPTH_MAX) {
		x->why = "Search program nested too deep";
		return -1;
	}
	while (n < 0 || got < n) {
		if (imap_cursor_next(x->c, &t) == IMAP_TOK_ERROR) {
			x->why = x->c->error;
			return -1;
		}
		if (n < 0 && t.type == IMAP_TOK_CLOSE && got > 0)
			return 0;
		if (t.type == IMAP_TOK_END || t.type == IMAP_TOK_CLOSE) {
			x->why = "Missing search key";
			return -1;
		}
		if ((*tail = imap_search_key(x, &t, depth)) == NULL)
			return -1;
		tail = &(*tail)->next;
		got++;
	}
	return 0;
}

/* imap_search_entry_ok - is p[0..n) a MODSEQ entry-flag-name: "/flags/"
 * then a system flag or a keyword (attr-flag, RFC 7162 7)? */
static bool
imap_search_entry_ok(const char *p, size_t n)
{
	size_t i = 7;

	if (n <= 7 || str_ncasecmp(p, "/flags/", 7) != 0)
		return false;
	if (p[i] == '\\')
		i++;
	if (i == n)
		return false;
	/* atom chars: no specials, controls, blanks or 8-bit */
	for (; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c <= ' ' || c >= 0x7f || strchr("(){%*\"\\]", c) != NULL)
			return false;
	}
	return true;
}

/* imap_search_key - one search-key starting with token t */
static struct imap_search *
imap_search_key(struct imap_sctx *x, const struct imap_token *t, int depth)
{
	const struct imap_search_def *d;
	struct imap_search *n;
	struct imap_token a;

	if (t->type == IMAP_TOK_OPEN) {
		if ((n = imap_search_node(x, IMAP_SK_AND)) == NULL)
			return NULL;
		if (imap_search_operands(x, n, -1, depth + 1) < 0)
			goto bad;
		return n;
	}
	if (t->type != IMAP_TOK_ATOM) {
		x->why = "Invalid search key";
		return NULL;
	}
	if (t->p[0] == '$' || t->p[0] == '*' ||
	    (t->p[0] >= '0' && t->p[0] <= '9')) {
		if ((n = imap_search_node(x, IMAP_SK_SEQSET)) == NULL)
			return NULL;
		if (imap_seqset_parse(t->p, t->len, &n->set) < 0) {
			x->why = "Invalid sequence set";
			goto bad;
		}
		return n;
	}
	for (d = imap_search_defs; d->name != NULL; d++)
		if (imap_tok_is(t, d->name))
			break;
	if (d->name == NULL) {
		x->why = "Unknown search key";
		return NULL;
	}
	if ((d->key == IMAP_SK_BODY || d->key == IMAP_SK_TEXT) &&
	    ++x->prog->texts > IMAP_SEARCH_TEXTS_MAX) {
		x->why = "Too many BODY and TEXT keys";
		return NULL;
	}
	if ((n = imap_search_node(x, d->key)) == NULL)
		return NULL;
	switch (d->arg) {
	case IMAP_SA_NONE:
		break;
	case IMAP_SA_STRING:
		if (imap_search_arg(x, "Search key needs a string") < 0)
			goto bad;
		n->str1 = xmemdup(x->tmp.data, x->tmp.len);
		break;
	case IMAP_SA_HEADER:
		if (imap_search_arg(x, "HEADER needs a field name") < 0)
			goto bad;
		n->str1 = xmemdup(x->tmp.data, x->tmp.len);
		if (imap_search_arg(x, "HEADER needs a string") < 0)
			goto bad;
		n->str2 = xmemdup(x->tmp.data, x->tmp.len);
		break;
	case IMAP_SA_FLAG:
		if (imap_cursor_next(x->c, &a) != IMAP_TOK_ATOM ||
		    !imap_tok_astring(&a)) {
			x->why = "Search key needs a keyword";
			goto bad;
		}
		n->str1 = xmemdup(a.p, a.len);
		break;
	case IMAP_SA_DATE:
		if (imap_cursor_next(x->c, &a) == IMAP_TOK_ERROR ||
		    (a.type != IMAP_TOK_ATOM && !a.quoted) ||
		    imap_date_parse(a.p, a.len, &n->date) < 0) {
			x->why = "Invalid date";
			goto bad;
		}
		break;
	case IMAP_SA_NUMBER:
		if (imap_cursor_next(x->c, &a) != IMAP_TOK_ATOM ||
		    imap_number(a.p, a.len, true, &n->num) < 0) {
			x->why = "Invalid number";
			goto bad;
		}
		break;
	case IMAP_SA_SET:
		if (imap_cursor_next(x->c, &a) != IMAP_TOK_ATOM ||
		    imap_seqset_parse(a.p, a.len, &n->set) < 0) {
			x->why = "Invalid sequence set";
			goto bad;
		}
		break;
	case IMAP_SA_NOT:
		if (imap_search_operands(x, n, 1, depth + 1) < 0)
			goto bad;
		break;
	case IMAP_SA_OR:
		if (imap_search_operands(x, n, 2, depth + 1) < 0)
			goto bad;
		break;
	case IMAP_SA_MODSEQ:
		/* MODSEQ [entry-name entry-type-req] mod-sequence-valzer */
		if (imap_cursor_peek(x->c, &a) == IMAP_TOK_STRING) {
			(void)imap_cursor_next(x->c, &a);
			imap_tok_string(&a, &x->tmp);
			/* entry-flag-name: "/flags/" attr-flag (RFC 7162 7),
			 * the only entry names there are */
			if (!imap_search_entry_ok(x->tmp.data, x->tmp.len)) {
				x->why = "Invalid MODSEQ entry name";
				goto bad;
			}
			n->str1 = xmemdup(x->tmp.data, x->tmp.len);
			if (imap_cursor_next(x->c, &a) != IMAP_TOK_ATOM ||
			    !(imap_tok_is(&a, "priv") ||
			    imap_tok_is(&a, "shared") ||
			    imap_tok_is(&a, "all"))) {
				x->why = "Invalid MODSEQ entry type";
				goto bad;
			}
			n->str2 = xmemdup(a.p, a.len);
			str_lower(n->str2);
		}
		if (imap_cursor_next(x->c, &a) != IMAP_TOK_ATOM ||
		    imap_number(a.p, a.len, true, &n->num) < 0) {
			x->why = "Invalid MODSEQ value";
			goto bad;
		}
		break;
	}
	return n;
bad:
	imap_search_node_free(n);
	return NULL;
}

/* imap_search_return - RETURN (options) of RFC 4731 */
static int
imap_search_return(struct imap_sctx *x)
{
	static const struct {
		const char *name;
		unsigned bit;
	} opts[] = {
		{"MIN", IMAP_SR_MIN}, {"MAX", IMAP_SR_MAX},
		{"ALL", IMAP_SR_ALL}, {"COUNT", IMAP_SR_COUNT},
		{"SAVE", IMAP_SR_SAVE},
	};
	struct imap_token t;
	size_t i;

	x->prog->esearch = true;
	if (imap_cursor_next(x->c, &t) != IMAP_TOK_OPEN) {
		x->why = "RETURN needs a list of options";
		return -1;
	}
	while (imap_cursor_next(x->c, &t) == IMAP_TOK_ATOM) {
		for (i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
			if (imap_tok_is(&t, opts[i].name))
				break;
		if (i == sizeof(opts) / sizeof(opts[0])) {
			x->why = "Unknown RETURN option";
			return -1;
		}
		x->prog->ret |= opts[i].bit;
	}
	if (t.type != IMAP_TOK_CLOSE) {
		x->why = x->c->error ? x->c->error : "Invalid RETURN options";
		return -1;
	}
	if (x->prog->ret == 0)
		x->prog->ret = IMAP_SR_ALL;
	return 0;
}

/* imap_search_parse - a whole SEARCH program */
int
imap_search_parse(struct imap_cursor *c, struct imap_search_program *prog,
    const char **why)
{
	struct imap_sctx x = {.c = c, .prog = prog};
	struct imap_search **tail;
	struct imap_token t;

	memset(prog, 0, sizeof(*prog));
	buf_init(&x.tmp);
	prog->nodes = 1;
	prog->root = xcalloc(1, sizeof(*prog->root));
	prog->root->key = IMAP_SK_AND;
	tail = &prog->root->child;
	if (imap_cursor_peek(c, &t) == IMAP_TOK_ATOM &&
	    imap_tok_is(&t, "RETURN")) {
		(void)imap_cursor_next(c, &t);
		if (imap_search_return(&x) < 0)
			goto bad;
	}
	if (imap_cursor_peek(c, &t) == IMAP_TOK_ATOM &&
	    imap_tok_is(&t, "CHARSET")) {
		(void)imap_cursor_next(c, &t);
		if (imap_search_arg(&x, "CHARSET needs a name") < 0)
			goto bad;
		prog->charset = xmemdup(x.tmp.data, x.tmp.len);
	}
	for (;;) {
		if (imap_cursor_next(c, &t) == IMAP_TOK_ERROR) {
			x.why = c->error;
			goto bad;
		}
		if (t.type == IMAP_TOK_END)
			break;
		if ((*tail = imap_search_key(&x, &t, 1)) == NULL)
			goto bad;
		tail = &(*tail)->next;
	}
	if (prog->root->child == NULL) {
		x.why = "Missing search key";
		goto bad;
	}
	buf_free(&x.tmp);
	return 0;
bad:
	*why = x.why ? x.why : "Invalid search program";
	buf_free(&x.tmp);
	imap_search_free(prog);
	return -1;
}

/* imap_search_free - free the tree */
void
imap_search_free(struct imap_search_program *prog)
{
	imap_search_node_free(prog->root);
	x_free(&prog->charset);
	memset(prog, 0, sizeof(*prog));
}

/* imap_search_format_set - a sequence set as text */
static void
imap_search_format_set(const struct imap_seqset *s, struct buf *out)
{
	if (s->saved) {
		buf_putc(out, '$');
		return;
	}
	for (size_t i = 0; i < s->n; i++) {
		if (i > 0)
			buf_putc(out, ',');
		if (s->r[i].lo == 0)
			buf_putc(out, '*');
		else
			buf_printf(out, "%u", s->r[i].lo);
		if (s->r[i].lo == s->r[i].hi)
			continue;
		if (s->r[i].hi == 0)
			buf_puts(out, ":*");
		else
			buf_printf(out, ":%u", s->r[i].hi);
	}
}

/* imap_search_format_node - one key as text */
static void
imap_search_format_node(const struct imap_search *n, struct buf *out)
{
	const struct imap_search_def *d;
	const struct imap_search *k;

	switch (n->key) {
	case IMAP_SK_AND:
		buf_putc(out, '(');
		for (k = n->child; k != NULL; k = k->next) {
			imap_search_format_node(k, out);
			if (k->next != NULL)
				buf_putc(out, ' ');
		}
		buf_putc(out, ')');
		return;
	case IMAP_SK_SEQSET:
		imap_search_format_set(&n->set, out);
		return;
	default:
		break;
	}
	for (d = imap_search_defs; d->name != NULL; d++)
		if (d->key == n->key)
			break;
	buf_puts(out, d->name ? d->name : "?");
	switch (d->arg) {
	case IMAP_SA_STRING:
	case IMAP_SA_FLAG:
		buf_printf(out, " \"%s\"", n->str1);
		break;
	case IMAP_SA_HEADER:
		buf_printf(out, " \"%s\" \"%s\"", n->str1, n->str2);
		break;
	case IMAP_SA_DATE:
		buf_printf(out, " %d", n->date);
		break;
	case IMAP_SA_NUMBER:
		buf_printf(out, " %llu", n->num);
		break;
	case IMAP_SA_SET:
		buf_putc(out, ' ');
		imap_search_format_set(&n->set, out);
		break;
	case IMAP_SA_NOT:
	case IMAP_SA_OR:
		for (k = n->child; k != NULL; k = k->next) {
			buf_putc(out, ' ');
			imap_search_format_node(k, out);
		}
		break;
	case IMAP_SA_MODSEQ:
		if (n->str1 != NULL)
			buf_printf(out, " \"%s\" %s", n->str1, n->str2);
		buf_printf(out, " %llu", n->num);
		break;
	default:
		break;
	}
}

/* imap_search_format - the program as canonical text */
void
imap_search_format(const struct imap_search_program *prog,
    struct buf *out)
{
	if (prog->esearch)
		buf_printf(out, "RETURN %#x ", prog->ret);
	if (prog->charset != NULL)
		buf_printf(out, "CHARSET %s ", prog->charset);
	if (prog->root != NULL)
		imap_search_format_node(prog->root, out);
}
