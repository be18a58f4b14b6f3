/*
 * mime_words - RFC 2047 encoded words ("=?charset?B?...?=") decoded to
 * UTF-8, for SEARCH on headers and for display; ENVELOPE keeps them.
 *
 * Adjacent encoded words (only blanks and line breaks between them) are
 * joined and the blanks dropped; runs in the same charset are converted
 * together, so a character split across two words survives. A word that
 * is malformed, too long, or in a charset iconv does not know is left as
 * it is. An RFC 2231 language suffix ("utf-8*en") is ignored.
 */
#include <string.h>

#include "base/buf.h"
#include "base/str.h"
#include "mail/charset.h"
#include "mail/mime.h"

#define MIME_WORDS_MAX 512	/* longest encoded word looked at */

/* a parsed encoded word */
struct mime_word {
	size_t len;		/* bytes of the whole "=?...?=" */
	const char *charset;	/* in the input, up to '?' or '*' */
	size_t charset_len;
	char enc;		/* 'B' or 'Q' */
	const char *text;
	size_t text_len;
};

/* mime_words_parse - is there an encoded word at s[0..n)? */
static bool
mime_words_parse(const char *s, size_t n, struct mime_word *w)
{
	size_t i = 2, cs, end;
	const char *q;

	if (n > MIME_WORDS_MAX)
		n = MIME_WORDS_MAX;
	if (n < 8 || s[0] != '=' || s[1] != '?')
		return false;
	cs = i;
	while (i < n && s[i] != '?' && (unsigned char)s[i] > ' ')
		i++;
	if (i == cs || i + 2 >= n || s[i] != '?' || s[i + 2] != '?')
		return false;
	w->charset = s + cs;
	w->charset_len = i - cs;
	q = memchr(w->charset, '*', w->charset_len);
	if (q != NULL)
		w->charset_len = (size_t)(q - w->charset);
	if (w->charset_len == 0)
		return false;
	w->enc = (char)(s[i + 1] & ~0x20);
	if (w->enc != 'B' && w->enc != 'Q')
		return false;
	i += 3;
	w->text = s + i;
	for (end = i; end + 1 < n; end++) {
		if ((unsigned char)s[end] <= ' ')
			return false;
		if (s[end] == '?' && s[end + 1] == '=')
			break;
	}
	if (end + 1 >= n)
		return false;
	w->text_len = end - i;
	w->len = end + 2;
	return true;
}

/* mime_words_hex - the value of a hex digit (either case), or -1 */
static int
mime_words_hex(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/* mime_words_text - decode the text of w onto out; false if it is bad */
static bool
mime_words_text(const struct mime_word *w, struct buf *out)
{
	if (w->enc == 'B') {
		struct mime_decoder d;

		mime_decoder_init(&d, MIME_ENC_BASE64);
		mime_decoder_feed(&d, w->text, w->text_len, out);
		mime_decoder_end(&d, out);
		return d.errors == 0;
	}
	for (size_t i = 0; i < w->text_len; i++) {
		char ch = w->text[i];
		int h1, h2;

		if (ch == '_') {
			buf_putc(out, ' ');
		} else if (ch == '=') {
			if (i + 2 >= w->text_len ||
			    (h1 = mime_words_hex(w->text[i + 1])) < 0 ||
			    (h2 = mime_words_hex(w->text[i + 2])) < 0)
				return false;
			buf_putc(out, h1 << 4 | h2);
			i += 2;
		} else {
			buf_putc(out, ch);
		}
	}
	return true;
}

/* the run of adjacent words in one charset not yet converted */
struct mime_words_run {
	const char *start;	/* the raw text of the run, for a fallback */
	const char *end;
	char charset[64];
	struct buf bytes;
};

/* mime_words_flush - convert the run onto out (or copy it raw) */
static void
mime_words_flush(struct mime_words_run *r, struct buf *out)
{
	if (r->start == NULL)
		return;
	if (charset_to_utf8(r->charset, r->bytes.data, r->bytes.len,
	    out) < 0)
		buf_append(out, r->start, (size_t)(r->end - r->start));
	r->start = NULL;
	buf_reset(&r->bytes);
}

/* mime_words_decode - append s[0..n) with encoded words decoded */
void
mime_words_decode(struct buf *out, const char *s, size_t n)
{
	struct mime_words_run run;
	struct buf word = BUF_INIT;
	size_t i = 0, plain = 0;

	memset(&run, 0, sizeof(run));
	buf_init(&run.bytes);
	buf_set_limit(&run.bytes, MIME_MAX_VALUE);
	buf_set_limit(&word, MIME_WORDS_MAX);
	while (i < n) {
		const char *eq = memchr(s + i, '=', n - i);
		struct mime_word w;
		size_t at, k;
		bool blank_only;

		if (eq == NULL)
			break;
		at = (size_t)(eq - s);
		buf_reset(&word);
		if (!mime_words_parse(s + at, n - at, &w) ||
		    w.charset_len >= sizeof(run.charset) ||
		    !mime_words_text(&w, &word)) {
			/* not a (good) word: plain text */
			i = at + 1;
			continue;
		}
		/* only blanks since the last word: they go */
		blank_only = run.start != NULL;
		for (k = plain; k < at && blank_only; k++)
			if (s[k] != ' ' && s[k] != '\t' && s[k] != '\r' &&
			    s[k] != '\n')
				blank_only = false;
		if (!blank_only) {
			mime_words_flush(&run, out);
			buf_append(out, s + plain, at - plain);
		} else if (strlen(run.charset) != w.charset_len ||
		    str_ncasecmp(run.charset, w.charset, w.charset_len) != 0) {
			mime_words_flush(&run, out);
		}
		if (run.start == NULL) {
			memcpy(run.charset, w.charset, w.charset_len);
			run.charset[w.charset_len] = '\0';
			run.start = s + at;
		}
		buf_append(&run.bytes, word.data, word.len);
		run.end = s + at + w.len;
		i = plain = at + w.len;
	}
	mime_words_flush(&run, out);
	buf_append(out, s + plain, n - plain);
	buf_free(&run.bytes);
	buf_free(&word);
}
