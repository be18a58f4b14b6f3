/*
 * imapd_fetch - FETCH and UID FETCH (RFC 9051 6.4.5, 7.5.2; BINARY of
 * RFC 3516; MODSEQ and CHANGEDSINCE of RFC 7162, VANISHED of its
 * QRESYNC; EMAILID and THREADID (always NIL) of RFC 8474; PREVIEW and
 * PREVIEW (LAZY) of RFC 8970).
 *
 * The answer is made one message at a time, and only while the client
 * reads it: before each message, and between the chunks of a large
 * literal, the session's unsent output is checked, and over
 * IMAPD_OUTPUT_HIGH the FETCH stops and goes on when the stream says the
 * output drained (imapd_fetch_drained). Input is paused meanwhile
 * (IMAPD_PAUSE_FETCH). A message file is mapped, never read into memory:
 * a literal of more than FETCH_INLINE_MAX bytes is a "piece" written
 * from the mapping in FETCH_CHUNK steps, with bare LFs sent as CRLF and
 * <partial> ranges counted in those CRLF bytes. So a 50 MB BODY[] to a
 * slow reader holds a chunk of memory and stops only its own session.
 * BINARY[] decodes its part in memory, so a part body over
 * FETCH_BINARY_MAX gets NIL and the FETCH NO [LIMIT].
 *
 * ENVELOPE, BODY and BODYSTRUCTURE are kept in the index's cache
 * the first time a message is parsed, so a message is parsed once
 * whatever the number of FETCHes. They are gathered (at most
 * FETCH_CACHE_PUTS and FETCH_CACHE_BYTES per FETCH; the rest are cached
 * by a later one; a FETCH that parsed a few small messages writes none,
 * see FETCH_CACHE_MIN_PUTS) and written in one index transaction
 * (mindex_cache_put_many) on a job thread before the tagged answer,
 * never on the event loop; the implicit \Seen of BODY[] likewise in one
 * (mindex_store_uids).
 *
 * PREVIEW (lib/mail/preview.c) is cached the same way, and the file is
 * never read for it on the event loop: before a FETCH with PREVIEW
 * answers, job threads make the previews the cache lacks
 * (FETCH_PREFILL_SLICE messages or FETCH_PREFILL_BYTES of files per job,
 * queued again until the set is done, so other sessions get their turn)
 * and the answer takes them from the cache. PREVIEW (LAZY) answers NIL
 * for a message whose preview is not cached (unless its file is mapped
 * for another item anyway) and waits for no job: the job thread that
 * writes the cache after the answer makes those previews (at most
 * FETCH_LAZY_MAX per FETCH), so a later FETCH finds them (RFC 8970 3.2).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "base/stream.h"
#include "mail/mime.h"
#include "mail/mime_imap.h"
#include "mail/mindex.h"
#include "mail/preview.h"
#include "imapd.h"
#include "imapd_sel.h"
#include "imapd_store.h"

#define FETCH_ATTS_MAX 64		/* items of one FETCH */
#define FETCH_FIELDS_MAX 128		/* header fields of one section */
#define FETCH_INLINE_MAX (64 * 1024)	/* larger literals are streamed */
#define FETCH_CHUNK (64 * 1024)		/* one step of a streamed literal */
#define FETCH_CACHE_PUTS 20000		/* cache blobs written per FETCH */
#define FETCH_CACHE_BYTES (16 * 1024 * 1024)	/* and their bytes */
/* a FETCH with fewer blobs to cache, parsed from fewer file bytes,
 * writes none: parsing them again costs less than a synced commit */
#define FETCH_CACHE_MIN_PUTS 16
#define FETCH_CACHE_MIN_PARSED (1024 * 1024)
/* BINARY decodes a part in memory: a part body over this gets NO
 * [LIMIT] (BODY[] streams it whatever its size) */
#define FETCH_BINARY_MB 16
#define FETCH_BINARY_MAX (FETCH_BINARY_MB * 1024 * 1024)
#define FETCH_STR_(x) #x
#define FETCH_STR(x) FETCH_STR_(x)	/* the number as a string literal */

/* cache kinds in the index */
#define FETCH_CACHE_ENVELOPE 'E'
#define FETCH_CACHE_BODY 'B'
#define FETCH_CACHE_BODYSTRUCTURE 'S'
#define FETCH_CACHE_PREVIEW 'P'	/* the PREVIEW nstring as sent */
#define FETCH_LAZY_MAX 1000	/* previews made after a LAZY FETCH */
#define FETCH_PREFILL_SLICE 256	/* previews made by one job */
#define FETCH_PREFILL_BYTES (16 * 1024 * 1024)	/* or files read by one */

enum fetch_kind {
	FA_FLAGS, FA_UID, FA_INTERNALDATE, FA_SIZE, FA_ENVELOPE, FA_BODY,
	FA_BODYSTRUCTURE, FA_MODSEQ, FA_SECTION, FA_BINARY_SIZE,
	FA_EMAILID, FA_THREADID, FA_PREVIEW,
};

struct fetch_att {
	enum fetch_kind kind;
	bool peek;		/* does not set \Seen */
	bool binary;		/* BINARY[]: decoded */
	bool lazy;		/* PREVIEW (LAZY): NIL unless at hand */
	char *spec;		/* the section for mime_section_find */
	char *name;		/* the item's name in the answer */
	bool partial;
	uint64_t poff, plen;
};

/* a literal written from the mapping */
struct fetch_piece {
	size_t at;		/* goes before text[at] */
	size_t off, len;	/* raw bytes of the file */
	uint64_t skip, take;	/* CRLF bytes skipped, then sent */
	size_t rp;		/* raw bytes done */
	uint64_t vp;		/* CRLF bytes done */
	bool half;		/* the CR of a bare LF is out */
};

struct imapd_fetch {
	struct fetch_att att[FETCH_ATTS_MAX];
	int natt;
	bool uid_cmd, need_msg, need_file, set_seen, want_flags;
	bool prefill;		/* PREVIEW without LAZY: made first */
	uint64_t changedsince;
	unsigned char *map;	/* the view indices asked for */
	uint32_t n;		/* bits in map */
	uint32_t next;		/* next index to look at */
	int missing;		/* messages gone meanwhile */
	bool unknown_cte;
	bool binary_limit;	/* a part over FETCH_BINARY_MAX was asked */
	/* the message being written */
	bool busy;
	struct buf text;
	size_t text_done;
	struct fetch_piece piece[FETCH_ATTS_MAX];
	int npiece, cur;
	char *mm;
	size_t mmlen;
	struct buf chunk;
	/* cache blobs to write: (uid32, kind8, len32, bytes)... */
	struct buf puts;
	unsigned nputs;
	uint64_t parsed;	/* file bytes parsed for them */
	bool keep_puts;		/* a PREVIEW among them: write them all */
	uint32_t *seen, nseen;	/* UIDs to get \Seen */
	uint32_t seencap;	/* seen's room (doubled: FETCH 1:* BODY[]) */
	/* PREVIEW (LAZY) to make later: (uid32, n or c for new/ or cur/,
	 * file name, NUL)... */
	struct buf lazy;
	unsigned nlazy;
	/* answers that need only the view: imapd_sel_fetch_lines */
	bool fast_ok;
	char fast[FETCH_ATTS_MAX + 3];
};

/* fetch_free - forget a FETCH */
static void
fetch_free(struct imapd_fetch **fp)
{
	struct imapd_fetch *f = *fp;

	if (f == NULL)
		return;
	for (int i = 0; i < f->natt; i++) {
		free(f->att[i].spec);
		free(f->att[i].name);
	}
	if (f->mm != NULL)
		(void)munmap(f->mm, f->mmlen);
	free(f->map);
	buf_free(&f->text);
	buf_free(&f->chunk);
	buf_free(&f->puts);
	buf_free(&f->lazy);
	free(f->seen);
	x_free(fp);
}

/* imapd_fetch_free - the session ends */
void
imapd_fetch_free(struct imapd_session *s)
{
	if (s->sel != NULL)
		fetch_free(&s->sel->fetch);
}

/* fetch_add - one more item; NULL when there are too many */
static struct fetch_att *
fetch_add(struct imapd_fetch *f, enum fetch_kind kind)
{
	struct fetch_att *a;

	for (int i = 0; i < f->natt; i++)
		if (f->att[i].kind == kind && kind != FA_SECTION &&
		    kind != FA_BINARY_SIZE)
			return &f->att[i];
	if (f->natt >= FETCH_ATTS_MAX)
		return NULL;
	a = &f->att[f->natt++];
	memset(a, 0, sizeof(*a));
	a->kind = kind;
	if (kind != FA_FLAGS && kind != FA_UID && kind != FA_MODSEQ &&
	    kind != FA_THREADID)
		f->need_msg = true;
	if (kind == FA_FLAGS)
		f->want_flags = true;
	return a;
}

/* fetch_section_ok - is sec a section-spec (binary: section-part)? */
static bool
fetch_section_ok(const char *sec, bool binary)
{
	const char *p = sec;
	static const char *const kw[] = {"HEADER.FIELDS.NOT",
	    "HEADER.FIELDS", "HEADER", "TEXT", "MIME", NULL};
	bool numbered = false;

	while (*p >= '1' && *p <= '9') {
		while (*p >= '0' && *p <= '9')
			p++;
		numbered = true;
		if (*p != '.')
			break;
		p++;
		if (!(*p >= '1' && *p <= '9'))
			break;
	}
	if (*p == '\0')
		return !numbered || p[-1] != '.';
	if (binary)
		return false;
	for (int i = 0; kw[i]; i++) {
		size_t n = strlen(kw[i]);

		if (str_ncasecmp(p, kw[i], n) == 0 && (p[n] == '\0' ||
		    p[n] == ' '))
			return !(strcmp(kw[i], "MIME") == 0 && !numbered);
	}
	return false;
}

/* fetch_partial - "<o.n>" (or "" for none) into a */
static int
fetch_partial(const char *p, size_t n, struct fetch_att *a)
{
	const char *dot, *end;
	unsigned long long o, l;

	if (n == 0)
		return 0;
	if (p[0] != '<' || p[n - 1] != '>')
		return -1;
	end = p + n - 1;
	dot = memchr(p, '.', n);
	if (dot == NULL || imap_number(p + 1, (size_t)(dot - p - 1), false,
	    &o) < 0 || imap_number(dot + 1, (size_t)(end - dot - 1), false,
	    &l) < 0 || l == 0)
		return -1;
	a->partial = true;
	a->poff = o;
	a->plen = l;
	return 0;
}

/* fetch_section - BODY[...], BODY.PEEK[...], BINARY[...] and so on */
static int
fetch_section(struct imapd_fetch *f, struct imap_cursor *c,
    const struct imap_token *t, const char **why)
{
	static const struct {
		const char *prefix, *resp;
		bool peek, binary, size;
	} kinds[] = {
		{"BODY[", "BODY[", false, false, false},
		{"BODY.PEEK[", "BODY[", true, false, false},
		{"BINARY[", "BINARY[", false, true, false},
		{"BINARY.PEEK[", "BINARY[", true, true, false},
		{"BINARY.SIZE[", "BINARY.SIZE[", true, true, true},
	};
	struct buf sec = BUF_INIT, name = BUF_INIT;
	const char *open = memchr(t->p, '[', t->len), *close, *tail;
	size_t k, plen = (size_t)(open - t->p) + 1, tlen;
	struct fetch_att *a;
	struct imap_token u;
	int nfields = 0;

	*why = "Invalid FETCH item";
	for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
		if (strlen(kinds[k].prefix) == plen &&
		    str_ncasecmp(t->p, kinds[k].prefix, plen) == 0)
			break;
	if (k == sizeof(kinds) / sizeof(kinds[0]))
		return -1;
	close = memchr(open, ']', t->len - plen + 1);
	if (close != NULL) {
		buf_append(&sec, open + 1, (size_t)(close - open - 1));
		tail = close + 1;
		tlen = t->len - (size_t)(tail - t->p);
	} else {
		/* HEADER.FIELDS (a b c)] */
		buf_append(&sec, open + 1, t->len - plen);
		if (imap_cursor_next(c, &u) != IMAP_TOK_OPEN)
			goto bad;
		buf_puts(&sec, " (");
		while (imap_cursor_next(c, &u) == IMAP_TOK_ATOM ||
		    u.type == IMAP_TOK_STRING) {
			struct buf fld = BUF_INIT;

			imap_tok_string(&u, &fld);
			if (fld.len == 0 || ++nfields > FETCH_FIELDS_MAX ||
			    strpbrk(buf_cstr(&fld), " :()\"\\") != NULL) {
				buf_free(&fld);
				goto bad;
			}
			if (nfields > 1)
				buf_putc(&sec, ' ');
			buf_append(&sec, fld.data, fld.len);
			buf_free(&fld);
		}
		if (u.type != IMAP_TOK_CLOSE || nfields == 0 ||
		    imap_cursor_next(c, &u) != IMAP_TOK_ATOM ||
		    u.len == 0 || u.p[0] != ']')
			goto bad;
		buf_putc(&sec, ')');
		tail = u.p + 1;
		tlen = u.len - 1;
	}
	if (!fetch_section_ok(buf_cstr(&sec), kinds[k].binary))
		goto bad;
	if ((a = fetch_add(f, kinds[k].size ? FA_BINARY_SIZE :
	    FA_SECTION)) == NULL) {
		*why = "Too many FETCH items";
		goto bad;
	}
	if (fetch_partial(tail, tlen, a) < 0 || (kinds[k].size &&
	    a->partial)) {
		f->natt--;
		goto bad;
	}
	a->peek = kinds[k].peek;
	a->binary = kinds[k].binary;
	if (!a->peek)
		f->set_seen = true;
	buf_puts(&name, kinds[k].resp);
	buf_append(&name, sec.data, sec.len);
	buf_putc(&name, ']');
	if (a->partial)
		buf_printf(&name, "<%llu>", (unsigned long long)a->poff);
	a->spec = buf_steal(&sec);
	a->name = buf_steal(&name);
	f->need_file = true;
	buf_free(&sec);
	buf_free(&name);
	return 0;
bad:
	buf_free(&sec);
	buf_free(&name);
	return -1;
}

/* fetch_preview_item - PREVIEW [SP "(" preview-mod *(SP preview-mod)
 * ")"], preview-mod = "LAZY" (RFC 8970 6). Alone (not in a list), a
 * "(" not followed by a preview-mod is left for the FETCH modifiers. */
static int
fetch_preview_item(struct imapd_fetch *f, struct imap_cursor *c,
    bool alone, const char **why)
{
	struct imap_cursor look = *c;
	struct imap_token t;
	struct fetch_att *a;
	bool lazy = false;
	int natt = f->natt;

	if (imap_cursor_next(&look, &t) == IMAP_TOK_OPEN && (!alone ||
	    (imap_cursor_next(&look, &t) == IMAP_TOK_ATOM &&
	    imap_tok_is(&t, "LAZY")))) {
		int nmod = 0;

		*why = "Syntax: PREVIEW (LAZY)";
		(void)imap_cursor_next(c, &t);
		while (imap_cursor_next(c, &t) == IMAP_TOK_ATOM &&
		    imap_tok_is(&t, "LAZY"))
			nmod++;
		if (t.type != IMAP_TOK_CLOSE || nmod == 0)
			return -1;
		lazy = true;
	}
	*why = "Too many FETCH items";
	if ((a = fetch_add(f, FA_PREVIEW)) == NULL)
		return -1;
	/* asked for twice: without LAZY wins */
	a->lazy = f->natt > natt ? lazy : a->lazy && lazy;
	return 0;
}

/* fetch_item - one FETCH item (or macro) */
static int
fetch_item(struct imapd_fetch *f, struct imap_cursor *c,
    const struct imap_token *t, bool alone, const char **why)
{
	static const struct {
		const char *name;
		enum fetch_kind kind;
	} simple[] = {
		{"FLAGS", FA_FLAGS}, {"UID", FA_UID},
		{"INTERNALDATE", FA_INTERNALDATE}, {"RFC822.SIZE", FA_SIZE},
		{"ENVELOPE", FA_ENVELOPE}, {"BODY", FA_BODY},
		{"BODYSTRUCTURE", FA_BODYSTRUCTURE}, {"MODSEQ", FA_MODSEQ},
		{"EMAILID", FA_EMAILID}, {"THREADID", FA_THREADID},
	};
	static const struct {
		const char *name, *spec;
		bool peek;
	} rfc822[] = {
		{"RFC822", "", false}, {"RFC822.HEADER", "HEADER", true},
		{"RFC822.TEXT", "TEXT", false},
	};
	struct fetch_att *a;

	*why = "Too many FETCH items";
	if (t->type != IMAP_TOK_ATOM) {
		*why = "FETCH items are atoms";
		return -1;
	}
	if (alone && (imap_tok_is(t, "ALL") || imap_tok_is(t, "FAST") ||
	    imap_tok_is(t, "FULL"))) {
		fetch_add(f, FA_FLAGS);
		fetch_add(f, FA_INTERNALDATE);
		fetch_add(f, FA_SIZE);
		if (!imap_tok_is(t, "FAST"))
			fetch_add(f, FA_ENVELOPE);
		if (imap_tok_is(t, "FULL"))
			fetch_add(f, FA_BODY);
		return 0;
	}
	for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++)
		if (imap_tok_is(t, simple[i].name))
			return fetch_add(f, simple[i].kind) ? 0 : -1;
	for (size_t i = 0; i < sizeof(rfc822) / sizeof(rfc822[0]); i++) {
		if (!imap_tok_is(t, rfc822[i].name))
			continue;
		if ((a = fetch_add(f, FA_SECTION)) == NULL)
			return -1;
		a->spec = xstrdup(rfc822[i].spec);
		a->name = xstrdup(rfc822[i].name);
		a->peek = rfc822[i].peek;
		if (!a->peek)
			f->set_seen = true;
		f->need_file = true;
		return 0;
	}
	if (imap_tok_is(t, "PREVIEW"))
		return fetch_preview_item(f, c, alone, why);
	if (memchr(t->p, '[', t->len) != NULL)
		return fetch_section(f, c, t, why);
	*why = "Unknown FETCH item";
	return -1;
}

/* fetch_modifiers - "(CHANGEDSINCE n [VANISHED])" (RFC 7162 3.1.4,
 * 3.2.6) */
static int
fetch_modifiers(struct imapd_session *s, struct imapd_fetch *f,
    struct imap_cursor *c, bool *vanished, const char **why)
{
	struct imap_token t;
	unsigned long long n;

	*why = "Invalid FETCH modifier";
	while (imap_cursor_next(c, &t) == IMAP_TOK_ATOM) {
		if (imap_tok_is(&t, "CHANGEDSINCE")) {
			if (imap_cursor_next(c, &t) != IMAP_TOK_ATOM ||
			    imap_number(t.p, t.len, true, &n) < 0)
				return -1;
			f->changedsince = n;
			imapd_sel_condstore(s);
			fetch_add(f, FA_MODSEQ);
		} else if (imap_tok_is(&t, "VANISHED")) {
			if (!f->uid_cmd || !s->sel->qresync) {
				*why = "VANISHED needs UID FETCH and QRESYNC";
				return -1;
			}
			*vanished = true;
		} else {
			return -1;
		}
	}
	if (t.type != IMAP_TOK_CLOSE || (*vanished && f->changedsince == 0)) {
		*why = "VANISHED needs CHANGEDSINCE";
		return -1;
	}
	return 0;
}

/* fetch_vsize - the CRLF size of raw bytes base[off..off+len) */
static uint64_t
fetch_vsize(const char *base, size_t off, size_t len)
{
	uint64_t v = len;
	const char *p = base + off, *e = p + len;

	while (p < e && (p = memchr(p, '\n', (size_t)(e - p))) != NULL) {
		if (p == base || p[-1] != '\r')
			v++;
		p++;
	}
	return v;
}

/* fetch_convert - up to max more bytes of a piece, CRLF, into out */
static void
fetch_convert(const char *base, struct fetch_piece *pc, struct buf *out,
    size_t max)
{
	const char *p = base + pc->off;
	uint64_t end = pc->skip + pc->take;
	size_t produced = 0;

	while (pc->rp < pc->len && pc->vp < end && produced < max) {
		const char *q = p + pc->rp, *lf;
		size_t run;

		lf = memchr(q, '\n', pc->len - pc->rp);
		run = lf ? (size_t)(lf - q) : pc->len - pc->rp;
		if (run > 0) {
			size_t k = run;

			if (pc->vp < pc->skip) {
				if (k > pc->skip - pc->vp)
					k = (size_t)(pc->skip - pc->vp);
			} else {
				if (k > max - produced)
					k = max - produced;
				if (k > end - pc->vp)
					k = (size_t)(end - pc->vp);
				buf_append(out, q, k);
				produced += k;
			}
			pc->rp += k;
			pc->vp += k;
			continue;
		}
		/* at a LF: a bare one is sent as CRLF */
		if (!pc->half && (pc->off + pc->rp == 0 || q[-1] != '\r')) {
			if (pc->vp >= pc->skip) {
				buf_putc(out, '\r');
				produced++;
			}
			pc->vp++;
			pc->half = true;
			continue;
		}
		if (pc->vp >= pc->skip) {
			buf_putc(out, '\n');
			produced++;
		}
		pc->vp++;
		pc->rp++;
		pc->half = false;
	}
}

/* fetch_literal - the raw bytes base[off..off+len) as a literal of the
 * item: inline when small or when base is not the mapping */
static void
fetch_literal(struct imapd_fetch *f, const struct fetch_att *a,
    const char *base, size_t off, size_t len, bool mapped)
{
	struct fetch_piece pc;
	uint64_t v = fetch_vsize(base, off, len);

	memset(&pc, 0, sizeof(pc));
	pc.off = off;
	pc.len = len;
	pc.skip = a->partial ? (a->poff < v ? a->poff : v) : 0;
	pc.take = a->partial ? (a->plen < v - pc.skip ? a->plen :
	    v - pc.skip) : v;
	buf_printf(&f->text, "{%llu}\r\n", (unsigned long long)pc.take);
	if (!mapped || pc.take <= FETCH_INLINE_MAX) {
		fetch_convert(base, &pc, &f->text, (size_t)pc.take);
		return;
	}
	pc.at = f->text.len;
	f->piece[f->npiece++] = pc;
}

/* fetch_decoded - the literal (literal8 when it holds a NUL) of decoded
 * bytes, partial applied */
static void
fetch_decoded(struct imapd_fetch *f, const struct fetch_att *a,
    const struct buf *d)
{
	size_t o = 0, n = d->len;

	if (a->partial) {
		o = a->poff < n ? (size_t)a->poff : n;
		n = a->plen < n - o ? (size_t)a->plen : n - o;
	}
	buf_printf(&f->text, "%s{%zu}\r\n", memchr(d->data ? d->data : "",
	    '\0', d->len) ? "~" : "", n);
	buf_append(&f->text, d->data + o, n);
}

/* fetch_decode - decode part's body into out (CRLF for the encodings
 * of text); -1 for an unknown encoding */
static int
fetch_decode(const struct mime_message *m, const struct mime_part *p,
    struct buf *out)
{
	struct mime_decoder d;
	struct buf raw = BUF_INIT;
	struct fetch_piece pc;

	if (p->enc == MIME_ENC_UNKNOWN)
		return -1;
	if (p->enc != MIME_ENC_BASE64 && p->enc != MIME_ENC_QP) {
		memset(&pc, 0, sizeof(pc));
		pc.off = p->body_off;
		pc.len = p->body_len;
		pc.take = fetch_vsize(m->data, p->body_off, p->body_len);
		fetch_convert(m->data, &pc, out, (size_t)pc.take);
		return 0;
	}
	mime_decoder_init(&d, p->enc);
	mime_decoder_feed(&d, m->data + p->body_off, p->body_len,
	    p->enc == MIME_ENC_QP ? &raw : out);
	mime_decoder_end(&d, p->enc == MIME_ENC_QP ? &raw : out);
	if (p->enc == MIME_ENC_QP) {
		memset(&pc, 0, sizeof(pc));
		pc.len = raw.len;
		pc.take = fetch_vsize(raw.data ? raw.data : "", 0, raw.len);
		fetch_convert(raw.data ? raw.data : "", &pc, out,
		    (size_t)pc.take);
	}
	buf_free(&raw);
	return 0;
}

/* fetch_fields - the fields of a header that are (not: are not) in the
 * list "(a b c)" */
static void
fetch_fields(const char *hdr, size_t len, const char *list, bool not,
    struct buf *out)
{
	struct mime_field fl;
	size_t pos = 0, prev = 0;

	while (mime_header_next(hdr, len, &pos, &fl)) {
		const char *p = list;
		bool in = false;

		while (*p && !in) {
			size_t n;

			while (*p == ' ' || *p == '(')
				p++;
			n = strcspn(p, " )");
			in = n == fl.name_len && n > 0 &&
			    str_ncasecmp(p, fl.name, n) == 0;
			p += n;
			if (*p == ')')
				break;
		}
		if (in != not)
			buf_append(out, fl.name, pos - (size_t)(fl.name -
			    hdr));
		prev = pos;
	}
	(void)prev;
	buf_puts(out, "\n");
}

/* fetch_date - INTERNALDATE "dd-Mon-yyyy hh:mm:ss +0000" */
static void
fetch_date(int64_t t, struct buf *out)
{
	static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May",
	    "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	buf_printf(out, "\"%02d-%s-%04d %02d:%02d:%02d +0000\"", tm.tm_mday,
	    mon[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
	    tm.tm_sec);
}

/* fetch_file_map - map message m's file in the folder at dir (new/ or
 * cur/, mindex_msg_open): *mm_r (NULL for an empty file) and *len_r; -1
 * if it is gone (the FETCH answer and the job threads' previews alike) */
static int
fetch_file_map(const char *dir, const struct mindex_msg *m, char **mm_r,
    size_t *len_r)
{
	struct stat st;
	void *mm;
	int fd, rc = -1;

	/* a message file is never a link (it could lead anywhere) */
	fd = mindex_msg_open(dir, m);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) == 0) {
		*len_r = (size_t)st.st_size;
		*mm_r = NULL;
		if (st.st_size == 0) {
			rc = 0;
		} else if ((mm = mmap(NULL, *len_r, PROT_READ, MAP_PRIVATE,
		    fd, 0)) != MAP_FAILED) {
			(void)madvise(mm, *len_r, MADV_SEQUENTIAL);
			*mm_r = mm;
			rc = 0;
		}
	}
	(void)close(fd);
	return rc;
}

/* fetch_map - map message m's file; -1 if it is gone */
static int
fetch_map(struct imapd_session *s, struct imapd_fetch *f,
    const struct mindex_msg *m)
{
	struct buf dir = BUF_INIT;
	int rc = -1;

	f->mm = NULL;
	f->mmlen = 0;
	if (imapd_sel_folder_dir(s, s->sel->folder, &dir) == 0)
		rc = fetch_file_map(buf_cstr(&dir), m, &f->mm, &f->mmlen);
	buf_free(&dir);
	return rc;
}

/* fetch_parse - message m parsed into *mp, its file mapped first
 * unless *mapped; -1 if the file is gone */
static int
fetch_parse(struct imapd_session *s, struct imapd_fetch *f,
    const struct mindex_msg *m, struct mime_message **mp, bool *mapped)
{
	if (!*mapped) {
		if (fetch_map(s, f, m) < 0)
			return -1;
		*mapped = true;
	}
	if (*mp == NULL) {
		*mp = mime_parse(f->mm ? f->mm : "", f->mmlen);
		f->parsed += f->mmlen;
	}
	return 0;
}

/* fetch_put - add blob as the cache entry kind of uid to puts, in the
 * (uid32, kind8, len32, bytes) form fetch_cache_write reads */
static void
fetch_put(struct buf *puts, uint32_t uid, uint8_t kind,
    const struct buf *blob)
{
	uint32_t n = (uint32_t)blob->len;

	buf_append(puts, &uid, sizeof(uid));
	buf_putc(puts, kind);
	buf_append(puts, &n, sizeof(n));
	buf_append(puts, blob->data, blob->len);
}

/* fetch_structure - ENVELOPE / BODY / BODYSTRUCTURE from the cache, or
 * parsed (and cached); -1 if the file is gone */
static int
fetch_structure(struct imapd_session *s, struct imapd_fetch *f,
    const struct fetch_att *a, const struct mindex_msg *m,
    struct mime_message **mp, bool *mapped)
{
	struct mindex *ix = imapd_store_index(s);
	struct buf blob = BUF_INIT, why = BUF_INIT;
	uint8_t kind = a->kind == FA_ENVELOPE ? FETCH_CACHE_ENVELOPE :
	    a->kind == FA_BODY ? FETCH_CACHE_BODY : FETCH_CACHE_BODYSTRUCTURE;
	int rc = 0;

	if (mindex_cache_get(ix, s->sel->folder, m->uid, kind, &blob,
	    &why) == 1) {
		buf_append(&f->text, blob.data, blob.len);
		goto out;
	}
	if (fetch_parse(s, f, m, mp, mapped) < 0) {
		rc = -1;
		goto out;
	}
	if (a->kind == FA_ENVELOPE)
		mime_imap_envelope(&blob, *mp, (*mp)->root, 0);
	else
		mime_imap_bodystructure(&blob, *mp, (*mp)->root,
		    a->kind == FA_BODYSTRUCTURE, 0);
	buf_append(&f->text, blob.data, blob.len);
	if (blob.len <= MINDEX_CACHE_MAX && f->nputs < FETCH_CACHE_PUTS &&
	    f->puts.len + blob.len < FETCH_CACHE_BYTES) {
		fetch_put(&f->puts, m->uid, kind, &blob);
		f->nputs++;
	}
out:
	buf_free(&blob);
	buf_free(&why);
	return rc;
}

/* fetch_preview - PREVIEW from the cache, made now, or (LAZY) NIL and
 * made later; -1 if the file is gone */
static int
fetch_preview(struct imapd_session *s, struct imapd_fetch *f,
    const struct fetch_att *a, const struct mindex_msg *m,
    struct mime_message **mp, bool *mapped)
{
	struct mindex *ix = imapd_store_index(s);
	struct buf blob = BUF_INIT, why = BUF_INIT, text = BUF_INIT;
	int rc = 0;

	if (mindex_cache_get(ix, s->sel->folder, m->uid, FETCH_CACHE_PREVIEW,
	    &blob, &why) == 1) {
		buf_append(&f->text, blob.data, blob.len);
		goto out;
	}
	if (a->lazy && !*mapped) {
		/* RFC 8970 3.2: not at hand, so NIL; made for later */
		buf_puts(&f->text, "NIL");
		if (f->nlazy < FETCH_LAZY_MAX) {
			uint32_t u = m->uid;
			char where = m->in_new ? 'n' : 'c';

			buf_append(&f->lazy, &u, sizeof(u));
			buf_append(&f->lazy, &where, 1);
			buf_append(&f->lazy, m->name, strlen(m->name) + 1);
			f->nlazy++;
		}
		goto out;
	}
	if (fetch_parse(s, f, m, mp, mapped) < 0) {
		rc = -1;
		goto out;
	}
	preview_make(*mp, &text);
	imap_write_string(&blob, text.data, text.len);
	buf_append(&f->text, blob.data, blob.len);
	if (f->nputs < FETCH_CACHE_PUTS &&
	    f->puts.len + blob.len < FETCH_CACHE_BYTES) {
		fetch_put(&f->puts, m->uid, FETCH_CACHE_PREVIEW, &blob);
		f->nputs++;
		f->keep_puts = true;
	}
out:
	buf_free(&blob);
	buf_free(&why);
	buf_free(&text);
	return rc;
}

/* fetch_section_item - BODY[...] / BINARY[...] / BINARY.SIZE[...] */
static void
fetch_section_item(struct imapd_fetch *f, const struct fetch_att *a,
    struct mime_message **mp)
{
	struct mime_section sec;
	struct buf tmp = BUF_INIT;
	const char *base = f->mm ? f->mm : "";

	if (a->kind == FA_BINARY_SIZE || a->binary || a->spec[0] != '\0') {
		if (*mp == NULL)
			*mp = mime_parse(base, f->mmlen);
		if (mime_section_find(*mp, a->spec, &sec) < 0) {
			buf_printf(&f->text, "%s NIL", a->name);
			return;
		}
	} else {
		memset(&sec, 0, sizeof(sec));
		sec.kind = MIME_SECTION_BODY;
		sec.len = f->mmlen;
	}
	buf_printf(&f->text, "%s ", a->name);
	if ((a->kind == FA_BINARY_SIZE || a->binary) &&
	    !sec.part->is_multipart && !sec.part->is_message &&
	    sec.part->body_len > FETCH_BINARY_MAX) {
		f->binary_limit = true;
		buf_puts(&f->text, a->kind == FA_BINARY_SIZE ? "0" : "NIL");
	} else if (a->kind == FA_BINARY_SIZE || a->binary) {
		if (sec.part->is_multipart || sec.part->is_message ||
		    fetch_decode(*mp, sec.part, &tmp) < 0) {
			if (sec.part->enc == MIME_ENC_UNKNOWN)
				f->unknown_cte = true;
			buf_truncate(&f->text, f->text.len - 1);
			buf_puts(&f->text, a->kind == FA_BINARY_SIZE ? " 0" :
			    " NIL");
		} else if (a->kind == FA_BINARY_SIZE) {
			buf_printf(&f->text, "%zu", tmp.len);
		} else {
			fetch_decoded(f, a, &tmp);
		}
	} else if (sec.kind == MIME_SECTION_HEADER_FIELDS ||
	    sec.kind == MIME_SECTION_HEADER_FIELDS_NOT) {
		fetch_fields(base + sec.off, sec.len, sec.rest,
		    sec.kind == MIME_SECTION_HEADER_FIELDS_NOT, &tmp);
		fetch_literal(f, a, tmp.data ? tmp.data : "", 0, tmp.len,
		    false);
	} else {
		fetch_literal(f, a, base, sec.off, sec.len, true);
	}
	buf_free(&tmp);
}

/* fetch_build - the answer for view index i into text and pieces; -1
 * if the message is gone */
static int
fetch_build(struct imapd_session *s, struct imapd_fetch *f, uint32_t i)
{
	struct imapd_sel *sel = s->sel;
	struct mindex *ix = imapd_store_index(s);
	struct mindex_msg m;
	struct mime_message *mime = NULL;
	struct buf why = BUF_INIT;
	bool first = true, flags = f->want_flags, mapped = false;
	uint32_t uid = sel->v.uid[i];

	buf_reset(&f->text);
	f->text_done = 0;
	f->npiece = f->cur = 0;
	memset(&m, 0, sizeof(m));
	if (f->need_msg && mindex_get(ix, sel->folder, uid, &m, &why) != 1)
		goto gone;
	if (f->need_file) {
		if (fetch_map(s, f, &m) < 0)
			goto gone;
		mapped = true;
	}
	if (f->set_seen && !sel->readonly &&
	    !(sel->v.flags[i] & MINDEX_F_SEEN)) {
		/* told now, stored on a job thread before the tagged
		 * answer (fetch_finish); its new MODSEQ comes with the
		 * sync after it */
		imapd_sel_view_own(&sel->v);
		sel->v.flags[i] |= MINDEX_F_SEEN;
		if (f->nseen == f->seencap) {
			f->seencap = f->seencap ? f->seencap * 2 : 64;
			f->seen = xreallocarray(f->seen, f->seencap,
			    sizeof(*f->seen));
		}
		f->seen[f->nseen++] = uid;
		flags = true;
	}
	buf_printf(&f->text, "* %u FETCH (", i + 1);
	if (f->uid_cmd) {
		buf_printf(&f->text, "UID %u", uid);
		first = false;
	}
	if (flags) {
		buf_puts(&f->text, first ? "FLAGS " : " FLAGS ");
		imapd_sel_flags(sel, imapd_sel_vflags(sel, i), sel->v.kw[i],
		    &f->text);
		first = false;
	}
	for (int k = 0; k < f->natt; k++) {
		const struct fetch_att *a = &f->att[k];

		if (a->kind == FA_FLAGS || (a->kind == FA_UID && f->uid_cmd))
			continue;
		if (!first)
			buf_putc(&f->text, ' ');
		first = false;
		switch (a->kind) {
		case FA_UID:
			buf_printf(&f->text, "UID %u", uid);
			break;
		case FA_MODSEQ:
			buf_printf(&f->text, "MODSEQ (%llu)",
			    (unsigned long long)sel->v.modseq[i]);
			break;
		case FA_INTERNALDATE:
			buf_puts(&f->text, "INTERNALDATE ");
			fetch_date(m.internaldate, &f->text);
			break;
		case FA_SIZE:
			buf_printf(&f->text, "RFC822.SIZE %llu",
			    (unsigned long long)m.wsize);
			break;
		case FA_EMAILID: {	/* RFC 8474 5.1 */
			char id[MINDEX_OBJID_LEN + 1];

			mindex_emailid(m.name, id);
			buf_printf(&f->text, "EMAILID (%s)", id);
			break;
		}
		case FA_THREADID:	/* RFC 8474 5.2: no thread ids kept */
			buf_puts(&f->text, "THREADID NIL");
			break;
		case FA_ENVELOPE:
		case FA_BODY:
		case FA_BODYSTRUCTURE:
			buf_puts(&f->text, a->kind == FA_ENVELOPE ?
			    "ENVELOPE " : a->kind == FA_BODY ? "BODY " :
			    "BODYSTRUCTURE ");
			if (fetch_structure(s, f, a, &m, &mime, &mapped) < 0)
				goto gone;
			break;
		case FA_PREVIEW:
			buf_puts(&f->text, "PREVIEW ");
			if (fetch_preview(s, f, a, &m, &mime, &mapped) < 0)
				goto gone;
			break;
		case FA_SECTION:
		case FA_BINARY_SIZE:
			fetch_section_item(f, a, &mime);
			break;
		default:
			break;
		}
	}
	buf_putc(&f->text, ')');
	mime_free(&mime);
	buf_free(&why);
	f->busy = true;
	return 0;
gone:
	mime_free(&mime);
	if (f->mm != NULL)
		(void)munmap(f->mm, f->mmlen);
	f->mm = NULL;
	buf_free(&why);
	return -1;
}

/* fetch_over - too much unsent output? then wait for it to drain */
static bool
fetch_over(struct imapd_session *s)
{
	return session_backlog(&s->base, IMAPD_OUTPUT_HIGH, IMAPD_OUTPUT_LOW,
	    IMAPD_PAUSE_OUTPUT);
}

/* fetch_write - write the message being answered; false: paused */
static bool
fetch_write(struct imapd_session *s, struct imapd_fetch *f)
{
	struct stream *st = s->base.stream;

	for (;;) {
		size_t upto = f->cur < f->npiece ? f->piece[f->cur].at :
		    f->text.len;

		if (f->text_done < upto) {
			stream_write(st, f->text.data + f->text_done,
			    upto - f->text_done);
			f->text_done = upto;
		}
		if (f->cur >= f->npiece)
			break;
		while (f->piece[f->cur].vp < f->piece[f->cur].skip +
		    f->piece[f->cur].take) {
			if (s->base.closed || fetch_over(s))
				return false;
			buf_reset(&f->chunk);
			fetch_convert(f->mm, &f->piece[f->cur], &f->chunk,
			    FETCH_CHUNK);
			if (f->chunk.len == 0)
				break;
			stream_write(st, f->chunk.data, f->chunk.len);
		}
		f->cur++;
	}
	stream_write(st, "\r\n", 2);
	if (f->mm != NULL)
		(void)munmap(f->mm, f->mmlen);
	f->mm = NULL;
	f->busy = false;
	return true;
}

/* the cache blobs of a FETCH, written on a job thread */
struct fetch_puts {
	struct imapd_sel_op op;	/* first */
	char *folder;
	struct buf puts;
	uint32_t *seen, nseen;
	int *rc;		/* each \Seen's mindex_store result */
	struct mindex_msg *m;	/* and its new state (rc 1) */
	char *dir;		/* the folder's directory, for lazy */
	struct buf lazy;	/* as in struct imapd_fetch */
	const char *tagged;
};

/* fetch_lazy_one - add the PREVIEW cache entry of message m, file in
 * the folder at dir, to puts; the file's size, or -1 if it is gone */
static long long
fetch_lazy_one(const char *dir, const struct mindex_msg *m, struct buf *puts)
{
	struct buf text = BUF_INIT, blob = BUF_INIT;
	struct mime_message *mp;
	uint32_t uid = m->uid;
	char *mm;
	size_t len;

	if (fetch_file_map(dir, m, &mm, &len) < 0)
		return -1;
	mp = mime_parse(mm ? mm : "", len);
	preview_make(mp, &text);
	mime_free(&mp);
	if (mm != NULL)
		(void)munmap(mm, len);
	imap_write_string(&blob, text.data, text.len);
	fetch_put(puts, uid, FETCH_CACHE_PREVIEW, &blob);
	buf_free(&text);
	buf_free(&blob);
	return (long long)len;
}

/* fetch_lazy_job - make the previews a LAZY FETCH answered NIL for, as
 * more cache blobs (a file gone meanwhile is skipped) */
static void
fetch_lazy_job(struct fetch_puts *o)
{
	size_t pos = 0;

	while (pos + 6 <= o->lazy.len) {
		struct mindex_msg m;
		const char *name = o->lazy.data + pos + 5;
		size_t nlen = strnlen(name, o->lazy.len - pos - 5);

		memset(&m, 0, sizeof(m));
		memcpy(&m.uid, o->lazy.data + pos, 4);
		m.in_new = o->lazy.data[pos + 4] == 'n';
		pos += 5 + nlen + 1;
		if (nlen > MINDEX_NAME_MAX)
			continue;
		memcpy(m.name, name, nlen);
		(void)fetch_lazy_one(o->dir, &m, &o->puts);
	}
}

/* fetch_cache_write - write the cache entries of puts (fetch_put) in
 * one index transaction (a failure only costs a later parse) */
static void
fetch_cache_write(struct mindex *ix, const char *folder,
    const struct buf *puts)
{
	struct mindex_cache_ent *ents = NULL;
	struct buf why = BUF_INIT;
	size_t pos = 0, nents = 0, cap = 0;

	while (pos + 9 <= puts->len) {
		uint32_t uid, n;
		uint8_t kind;

		memcpy(&uid, puts->data + pos, 4);
		kind = (uint8_t)puts->data[pos + 4];
		memcpy(&n, puts->data + pos + 5, 4);
		pos += 9;
		if (n > puts->len - pos)
			break;
		if (nents == cap) {
			cap = cap ? 2 * cap : 64;
			ents = xreallocarray(ents, cap, sizeof(*ents));
		}
		ents[nents++] = (struct mindex_cache_ent){uid, kind,
		    puts->data + pos, n};
		pos += n;
	}
	if (mindex_cache_put_many(ix, folder, ents, nents, &why) < 0)
		msg_warn("cache of %s: %s", folder, buf_cstr(&why));
	free(ents);
	buf_free(&why);
}

/* fetch_puts_job - write them, the \Seen flags in one index
 * transaction and the blobs in another (a failure only costs a later
 * parse) */
static void
fetch_puts_job(struct imapd_sel_op *op, struct mindex *ix)
{
	struct fetch_puts *o = op->ctx;
	struct buf why = BUF_INIT;

	if (o->nseen > 0) {
		o->rc = xcalloc(o->nseen, sizeof(*o->rc));
		o->m = xcalloc(o->nseen, sizeof(*o->m));
		if (mindex_store_uids(ix, o->folder, o->seen, o->nseen,
		    MINDEX_ADD, MINDEX_F_SEEN, NULL, 0, 0, o->rc, o->m,
		    &op->done, &why) < 0) {
			msg_warn("\\Seen of %s: %s", o->folder,
			    buf_cstr(&why));
			op->own = false;
		}
	}
	buf_free(&why);
	if (o->lazy.len > 0)
		fetch_lazy_job(o);
	fetch_cache_write(ix, o->folder, &o->puts);
}

/* fetch_seen_patch - the \Seen it stored, with their new MODSEQs, into
 * the view (the flags are there already: fetch_build told them), and a
 * CONDSTORE client is told the MODSEQs, as the sync would */
static void
fetch_seen_patch(struct imapd_sel_op *op, struct imapd_session *s)
{
	struct fetch_puts *o = op->ctx;

	imapd_sel_put_stored(s, o->seen, o->rc, o->m, o->nseen,
	    s->sel->condstore);
}

/* fetch_puts_answer - the tagged answer after the puts and the sync */
static void
fetch_puts_answer(struct imapd_sel_op *op, struct imapd_session *s)
{
	struct fetch_puts *o = op->ctx;

	if (s != NULL)
		imapd_session_tagged(s, "%s", o->tagged);
	free(o->folder);
	free(o->dir);
	buf_free(&o->puts);
	buf_free(&o->lazy);
	free(o->seen);
	free(o->rc);
	free(o->m);
	free(o);
}

/* fetch_finish - the cache puts (if any) and the folder's changes on a
 * job thread, then the tagged answer */
static void
fetch_finish(struct imapd_session *s, struct imapd_fetch *f, bool uid,
    const char *tagged)
{
	struct fetch_puts *o;
	struct buf dir = BUF_INIT;

	if (f->nputs < FETCH_CACHE_MIN_PUTS &&
	    f->parsed < FETCH_CACHE_MIN_PARSED && !f->keep_puts) {
		/* a client reading a message or two (the mixed load's
		 * FETCH n (FLAGS ENVELOPE BODY.PEEK[])) waits for no commit;
		 * previews are always kept (LAZY relies on them) */
		buf_reset(&f->puts);
		f->nputs = 0;
	}
	if (f->nlazy > 0 && imapd_sel_folder_dir(s, s->sel->folder,
	    &dir) < 0)
		f->nlazy = 0;	/* (then a later FETCH makes them) */
	if ((f->nputs == 0 && f->nseen == 0 && f->nlazy == 0) ||
	    imapd_store_busy(s)) {
		struct buf why = BUF_INIT;

		/* (busy cannot happen: input waits during a FETCH) */
		for (uint32_t i = 0; i < f->nseen; i++)
			(void)mindex_store(imapd_store_index(s), s->sel->folder,
			    f->seen[i], MINDEX_ADD, MINDEX_F_SEEN, NULL, 0, 0,
			    NULL, &why);
		buf_free(&why);
		buf_free(&dir);
		imapd_sel_finish(s, uid, tagged);
		return;
	}
	o = xcalloc(1, sizeof(*o));
	o->folder = xstrdup(s->sel->folder);
	o->puts = f->puts;
	buf_init(&f->puts);
	f->nputs = 0;
	o->dir = buf_steal(&dir);
	o->lazy = f->lazy;
	buf_init(&f->lazy);
	if (f->nlazy == 0)
		buf_reset(&o->lazy);
	f->nlazy = 0;
	o->seen = f->seen;
	o->nseen = f->nseen;
	f->seen = NULL;
	f->nseen = f->seencap = 0;
	o->tagged = tagged;
	o->op.ctx = o;
	o->op.run = fetch_puts_job;
	o->op.patch = fetch_seen_patch;
	o->op.answer = fetch_puts_answer;
	o->op.allow_expunge = uid;
	/* its \Seen are all it changes in the folder (the cache blobs are
	 * the index's own): they go into the view without a sync */
	o->op.own = true;
	imapd_sel_run_op(s, &o->op);
}

/* the previews a FETCH makes before it answers, on job threads */
struct fetch_prefill {
	struct imapd_sel_op op;	/* first */
	char *folder, *dir;
	uint32_t *uids;		/* the set's messages */
	size_t n, done;
};

/* fetch_prefill_job - the next slice: previews the cache lacks */
static void
fetch_prefill_job(struct imapd_sel_op *op, struct mindex *ix)
{
	struct fetch_prefill *o = op->ctx;
	struct buf blob = BUF_INIT, why = BUF_INIT, puts = BUF_INIT;
	struct mindex_msg m;
	size_t made = 0, looked = 0;
	long long bytes = 0, size;

	/* cache lookups are cheap, files are not: both are bounded */
	while (o->done < o->n && made < FETCH_PREFILL_SLICE &&
	    bytes < FETCH_PREFILL_BYTES &&
	    looked++ < 16 * FETCH_PREFILL_SLICE) {
		uint32_t uid = o->uids[o->done++];

		buf_reset(&blob);
		if (mindex_cache_get(ix, o->folder, uid, FETCH_CACHE_PREVIEW,
		    &blob, &why) == 1 || mindex_get(ix, o->folder, uid, &m,
		    &why) != 1)
			continue;
		made++;
		/* a file gone: the answer says so */
		if ((size = fetch_lazy_one(o->dir, &m, &puts)) > 0)
			bytes += size;
	}
	fetch_cache_write(ix, o->folder, &puts);
	buf_free(&blob);
	buf_free(&why);
	buf_free(&puts);
}

static void fetch_run(struct imapd_session *);

/* fetch_prefill_answer - on with the next slice, or answer */
static void
fetch_prefill_answer(struct imapd_sel_op *op, struct imapd_session *s)
{
	struct fetch_prefill *o = op->ctx;

	if (s != NULL && s->sel != NULL && s->sel->fetch != NULL &&
	    o->done < o->n && op->result == 0) {
		imapd_sel_run_op(s, op);
		return;
	}
	free(o->folder);
	free(o->dir);
	free(o->uids);
	free(o);
	if (s != NULL && s->sel != NULL && s->sel->fetch != NULL)
		fetch_run(s);
}

/* fetch_prefill - make the previews of the set first, then answer */
static void
fetch_prefill(struct imapd_session *s, struct imapd_fetch *f)
{
	struct imapd_sel *sel = s->sel;
	struct fetch_prefill *o;
	struct buf dir = BUF_INIT;

	if (imapd_store_index(s) == NULL || imapd_store_busy(s) ||
	    imapd_sel_folder_dir(s, sel->folder, &dir) < 0) {
		buf_free(&dir);
		fetch_run(s);	/* (then the answer makes them) */
		return;
	}
	o = xcalloc(1, sizeof(*o));
	o->folder = xstrdup(sel->folder);
	o->dir = buf_steal(&dir);
	o->uids = xreallocarray(NULL, f->n ? f->n : 1, sizeof(*o->uids));
	for (uint32_t i = 0; i < f->n && i < sel->v.n; i++)
		if ((f->map[i / 8] & (1U << (i % 8))) &&
		    sel->v.modseq[i] > f->changedsince)
			o->uids[o->n++] = sel->v.uid[i];
	o->op.ctx = o;
	o->op.run = fetch_prefill_job;
	o->op.answer = fetch_prefill_answer;
	o->op.no_sync = true;	/* the FETCH's view must not move */
	imapd_sel_run_op(s, &o->op);
}

/* fetch_fast - may the answers come from the view alone (UID, FLAGS,
 * MODSEQ)? Then f->fast names them as fetch_build would order them */
static void
fetch_fast(struct imapd_fetch *f)
{
	size_t n = 0;

	f->fast_ok = false;
	if (f->need_msg || f->need_file || f->set_seen)
		return;
	if (f->uid_cmd)
		f->fast[n++] = 'U';
	if (f->want_flags)
		f->fast[n++] = 'F';
	for (int k = 0; k < f->natt; k++) {
		enum fetch_kind kind = f->att[k].kind;

		if (kind == FA_FLAGS || (kind == FA_UID && f->uid_cmd))
			continue;
		if (kind != FA_UID && kind != FA_MODSEQ)
			return;
		f->fast[n++] = kind == FA_UID ? 'U' : 'M';
	}
	f->fast[n] = '\0';
	f->fast_ok = true;
}

/* fetch_run - answer on until done or paused by the output */
static void
fetch_run(struct imapd_session *s)
{
	struct imapd_sel *sel = s->sel;
	struct imapd_fetch *f = sel->fetch;
	uint32_t i;

	for (;;) {
		if (s->base.closed || s->state == IMAPD_S_LOGOUT) {
			fetch_free(&sel->fetch);
			return;
		}
		if (f->busy && !fetch_write(s, f))
			return;
		if (fetch_over(s))
			return;
		if (f->fast_ok) {
			/* many lines at once (imapd_sel_fetch_lines) */
			buf_reset(&f->text);
			imapd_sel_fetch_lines(sel, f->map, f->n, &f->next,
			    f->changedsince, f->fast, &f->text, FETCH_CHUNK);
			if (f->text.len == 0)
				break;
			stream_write(s->base.stream, f->text.data,
			    f->text.len);
			continue;
		}
		for (i = f->next; i < f->n && i < sel->v.n; i++)
			if ((f->map[i / 8] & (1U << (i % 8))) &&
			    sel->v.modseq[i] > f->changedsince)
				break;
		if (i >= f->n || i >= sel->v.n)
			break;
		f->next = i + 1;
		if (fetch_build(s, f, i) < 0)
			f->missing++;
	}
	/* done: the folder's changes (EXPUNGE only after UID FETCH), then
	 * the tagged answer */
	{
		bool uid = f->uid_cmd;
		const char *tagged = f->unknown_cte ? "NO [UNKNOWN-CTE] "
		    "Unknown Content-Transfer-Encoding" : f->binary_limit ?
		    "NO [LIMIT] BINARY of a part over " FETCH_STR(FETCH_BINARY_MB)
		    " MB: fetch it with BODY[]" : f->missing ?
		    "NO [EXPUNGEISSUED] Some messages were expunged "
		    "meanwhile" : uid ? "OK UID FETCH completed" :
		    "OK FETCH completed";

		fetch_finish(s, f, uid, tagged);
		fetch_free(&sel->fetch);
		session_set_pause(&s->base, IMAPD_PAUSE_FETCH, false);
	}
}

/* imapd_fetch_drained - the client read: write on */
void
imapd_fetch_drained(struct imapd_session *s)
{
	if (s->sel == NULL || s->sel->fetch == NULL)
		return;
	fetch_run(s);
}

/* fetch_start - FETCH set items [modifiers] */
static void
fetch_start(struct imapd_session *s, struct imap_cursor *c, bool uid)
{
	struct imapd_sel *sel = s->sel;
	struct imapd_fetch *f;
	struct imap_token set, t;
	const char *why = "Syntax: FETCH sequence-set items";
	bool vanished = false;

	if (sel->fetch != NULL) {
		imapd_session_tagged(s, "NO FETCH in progress");
		return;
	}
	f = xcalloc(1, sizeof(*f));
	buf_init(&f->text);
	buf_init(&f->chunk);
	buf_init(&f->puts);
	buf_init(&f->lazy);
	f->uid_cmd = uid;
	if (imap_cursor_next(c, &set) != IMAP_TOK_ATOM)
		goto bad;
	if (imap_cursor_next(c, &t) == IMAP_TOK_OPEN) {
		while (imap_cursor_next(c, &t) != IMAP_TOK_CLOSE) {
			if (t.type == IMAP_TOK_END ||
			    fetch_item(f, c, &t, false, &why) < 0)
				goto bad;
		}
	} else if (fetch_item(f, c, &t, true, &why) < 0) {
		goto bad;
	}
	if (imap_cursor_next(c, &t) == IMAP_TOK_OPEN) {
		if (fetch_modifiers(s, f, c, &vanished, &why) < 0)
			goto bad;
		imap_cursor_next(c, &t);
	}
	if (t.type != IMAP_TOK_END) {
		why = "Syntax: junk after the FETCH items";
		goto bad;
	}
	if (f->natt == 0 && !uid) {
		why = "Syntax: no FETCH items";
		goto bad;
	}
	for (int k = 0; k < f->natt; k++)
		if (f->att[k].kind == FA_MODSEQ)
			imapd_sel_condstore(s);
	if (imapd_sel_set(sel, set.p, set.len, uid, &f->map) < 0) {
		why = "Invalid sequence set (a number beyond the messages?)";
		goto bad;
	}
	f->n = sel->v.n;
	if (vanished) {
		struct imap_seqset vs;

		/* RFC 7162 3.2.6: the set's expunged UIDs, as QRESYNC's */
		memset(&vs, 0, sizeof(vs));
		if (imap_seqset_parse(set.p, set.len, &vs) == 0 && vs.n > 0)
			imapd_sel_vanished(s, f->changedsince, vs.r, vs.n, 0);
		imap_seqset_free(&vs);
	}
	sel->fetch = f;
	fetch_fast(f);
	session_set_pause(&s->base, IMAPD_PAUSE_FETCH, true);
	for (int k = 0; k < f->natt; k++)
		if (f->att[k].kind == FA_PREVIEW && !f->att[k].lazy)
			f->prefill = true;
	if (f->prefill)
		fetch_prefill(s, f);
	else
		fetch_run(s);
	return;
bad:
	fetch_free(&f);
	imapd_session_bad(s, "BAD %s", why);
}

/* imapd_fetch_parse_items - the FETCH items at c (fuzz target, tests):
 * 0, or -1 with why; the number of items in *n_r */
int
imapd_fetch_parse_items(struct imap_cursor *c, int *n_r, const char **why)
{
	struct imapd_fetch *f = xcalloc(1, sizeof(*f));
	struct imap_token t;
	int rc = 0;

	*why = "";
	if (imap_cursor_next(c, &t) == IMAP_TOK_OPEN) {
		while (rc == 0 && imap_cursor_next(c, &t) != IMAP_TOK_CLOSE)
			if (t.type == IMAP_TOK_END || t.type == IMAP_TOK_ERROR ||
			    fetch_item(f, c, &t, false, why) < 0)
				rc = -1;
	} else {
		rc = fetch_item(f, c, &t, true, why);
	}
	*n_r = f->natt;
	for (int i = 0; i < f->natt; i++)
		if (f->att[i].kind == FA_SECTION ||
		    f->att[i].kind == FA_BINARY_SIZE)
			if (f->att[i].spec == NULL || f->att[i].name == NULL)
				rc = -2;
	fetch_free(&f);
	return rc;
}

/* imapd_fetch_crlf - the CRLF form of raw p[0..n), skip bytes skipped
 * and at most take sent, made in chunks of chunk bytes (fuzz target) */
void
imapd_fetch_crlf(const char *p, size_t n, uint64_t skip, uint64_t take,
    size_t chunk, struct buf *out)
{
	struct fetch_piece pc;
	uint64_t v = fetch_vsize(p, 0, n);

	memset(&pc, 0, sizeof(pc));
	pc.len = n;
	pc.skip = skip < v ? skip : v;
	pc.take = take < v - pc.skip ? take : v - pc.skip;
	while (pc.vp < pc.skip + pc.take) {
		size_t before = out->len;

		fetch_convert(p, &pc, out, chunk ? chunk : 1);
		if (out->len == before && pc.vp >= pc.skip)
			break;
	}
}

/* imapd_fetch_cmd - FETCH */
void
imapd_fetch_cmd(struct imapd_session *s, struct imap_cursor *c)
{
	fetch_start(s, c, false);
}

/* imapd_fetch_uid - UID FETCH */
void
imapd_fetch_uid(struct imapd_session *s, struct imap_cursor *c)
{
	fetch_start(s, c, true);
}
