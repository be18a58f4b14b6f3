/*
 * ctl_output - what heraldctl prints: aligned tables for people, JSON
 * for scripts (--json), and the formats of durations, times and sizes.
 *
 * Tables: a header row, then rows; columns are padded to the widest cell
 * and two spaces apart; the last column is not padded. Cells may hold
 * data from mail (a sender address), so control characters are shown as
 * '?' and cannot move the terminal's cursor.
 *
 * JSON: compact, one document per command, strings escaped, bytes that
 * are not valid UTF-8 replaced by U+FFFD so the output always parses.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "ctl.h"

/* ctl_table_init - a table with ncol columns named by head */
void
ctl_table_init(struct ctl_table *t, int ncol, const char *const *head)
{
	memset(t, 0, sizeof(*t));
	t->ncol = ncol;
	ctl_table_add(t, head);
}

/* ctl_table_add - append a row of ncol strings (copied) */
void
ctl_table_add(struct ctl_table *t, const char *const *row)
{
	if (t->nrows == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		t->cells = xreallocarray(t->cells, t->cap * (size_t)t->ncol,
		    sizeof(*t->cells));
	}
	for (int i = 0; i < t->ncol; i++)
		t->cells[t->nrows * (size_t)t->ncol + (size_t)i] =
		    xstrdup(row[i] != NULL ? row[i] : "");
	t->nrows++;
}

/* ctl_table_cell - print one cell, control characters as '?' */
static void
ctl_table_cell(FILE *fp, const char *s, size_t width)
{
	size_t n = 0;

	for (; *s; s++, n++)
		fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, fp);
	for (; n < width; n++)
		fputc(' ', fp);
}

/* ctl_table_print - aligned columns, two spaces apart */
void
ctl_table_print(const struct ctl_table *t, FILE *fp)
{
	size_t *width = xcalloc((size_t)t->ncol, sizeof(*width));

	for (size_t r = 0; r < t->nrows; r++) {
		for (int c = 0; c < t->ncol; c++) {
			size_t n = strlen(t->cells[r * (size_t)t->ncol +
			    (size_t)c]);

			if (n > width[c])
				width[c] = n;
		}
	}
	for (size_t r = 0; r < t->nrows; r++) {
		for (int c = 0; c < t->ncol; c++) {
			bool last = c == t->ncol - 1;

			ctl_table_cell(fp, t->cells[r * (size_t)t->ncol +
			    (size_t)c], last ? 0 : width[c]);
			if (!last)
				fputs("  ", fp);
		}
		fputc('\n', fp);
	}
	x_free(&width);
}

/* ctl_table_free - release the cells */
void
ctl_table_free(struct ctl_table *t)
{
	for (size_t i = 0; i < t->nrows * (size_t)t->ncol; i++)
		x_free(&t->cells[i]);
	x_free(&t->cells);
	t->nrows = t->cap = 0;
}

/* ctl_json_init - start a document in out */
void
ctl_json_init(struct ctl_json *j, struct buf *out)
{
	memset(j, 0, sizeof(*j));
	j->out = out;
	j->first[0] = true;
}

/* ctl_json_sep - the comma before a value or key, if one is due */
static void
ctl_json_sep(struct ctl_json *j)
{
	if (j->after_key) {
		j->after_key = false;
		return;
	}
	if (!j->first[j->depth])
		buf_putc(j->out, ',');
	j->first[j->depth] = false;
}

/* ctl_json_open - '{' or '[' */
void
ctl_json_open(struct ctl_json *j, char c)
{
	ctl_json_sep(j);
	if (j->depth + 1 >= CTL_JSON_DEPTH)
		msg_panic("ctl_json_open: nesting deeper than %d",
		    CTL_JSON_DEPTH);
	buf_putc(j->out, c);
	j->first[++j->depth] = true;
}

/* ctl_json_close - '}' or ']' */
void
ctl_json_close(struct ctl_json *j, char c)
{
	if (j->depth == 0)
		msg_panic("ctl_json_close: nothing open");
	j->depth--;
	buf_putc(j->out, c);
}

/* ctl_json_utf8_len - length of a valid UTF-8 sequence at p, or 0 */
static size_t
ctl_json_utf8_len(const unsigned char *p)
{
	size_t n;
	unsigned min, cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		n = 2;
		cp = p[0] & 0x1f;
		min = 0x80;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		cp = p[0] & 0x0f;
		min = 0x800;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		cp = p[0] & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;	/* also stops at the NUL */
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* ctl_json_escape - append s as a JSON string literal */
void
ctl_json_escape(struct buf *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	buf_putc(out, '"');
	while (*p) {
		size_t n;

		if (*p == '"' || *p == '\\') {
			buf_putc(out, '\\');
			buf_putc(out, *p++);
		} else if (*p == '\n') {
			buf_puts(out, "\\n");
			p++;
		} else if (*p == '\t') {
			buf_puts(out, "\\t");
			p++;
		} else if (*p < 0x20 || *p == 0x7f) {
			buf_printf(out, "\\u%04x", *p++);
		} else if ((n = ctl_json_utf8_len(p)) == 0) {
			buf_puts(out, "\\ufffd");
			p++;
		} else {
			buf_append(out, p, n);
			p += n;
		}
	}
	buf_putc(out, '"');
}

/* ctl_json_key - an object member's name */
void
ctl_json_key(struct ctl_json *j, const char *key)
{
	ctl_json_sep(j);
	ctl_json_escape(j->out, key);
	buf_putc(j->out, ':');
	j->after_key = true;
}

/* ctl_json_str - a string value */
void
ctl_json_str(struct ctl_json *j, const char *s)
{
	ctl_json_sep(j);
	ctl_json_escape(j->out, s);
}

/* ctl_json_int - a number */
void
ctl_json_int(struct ctl_json *j, long long v)
{
	ctl_json_sep(j);
	buf_printf(j->out, "%lld", v);
}

/* ctl_json_bool - true or false */
void
ctl_json_bool(struct ctl_json *j, bool v)
{
	ctl_json_sep(j);
	buf_puts(j->out, v ? "true" : "false");
}

/* ctl_json_null - null */
void
ctl_json_null(struct ctl_json *j)
{
	ctl_json_sep(j);
	buf_puts(j->out, "null");
}

/* ctl_json_kstr - key and string */
void
ctl_json_kstr(struct ctl_json *j, const char *key, const char *s)
{
	ctl_json_key(j, key);
	ctl_json_str(j, s);
}

/* ctl_json_kint - key and number */
void
ctl_json_kint(struct ctl_json *j, const char *key, long long v)
{
	ctl_json_key(j, key);
	ctl_json_int(j, v);
}

/* ctl_json_kbool - key and boolean */
void
ctl_json_kbool(struct ctl_json *j, const char *key, bool v)
{
	ctl_json_key(j, key);
	ctl_json_bool(j, v);
}

/* ctl_json_print - write out and a newline to stdout */
void
ctl_json_print(const struct buf *out)
{
	fwrite(out->data, 1, out->len, stdout);
	fputc('\n', stdout);
}

/* ctl_fmt_duration - "2d 3h", "3h 4m", "4m 5s", "5s" */
void
ctl_fmt_duration(struct buf *out, long long secs)
{
	if (secs < 0)
		secs = 0;
	if (secs >= 86400)
		buf_printf(out, "%lldd %lldh", secs / 86400,
		    secs % 86400 / 3600);
	else if (secs >= 3600)
		buf_printf(out, "%lldh %lldm", secs / 3600, secs % 3600 / 60);
	else if (secs >= 60)
		buf_printf(out, "%lldm %llds", secs / 60, secs % 60);
	else
		buf_printf(out, "%llds", secs);
}

/* ctl_fmt_time - ISO 8601 UTC: "2024-05-01T12:00:00Z" */
void
ctl_fmt_time(struct buf *out, time_t t)
{
	struct tm tm;
	char text[64];

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
		buf_printf(out, "@%lld", (long long)t);
		return;
	}
	buf_puts(out, text);
}

/* ctl_fmt_size - bytes as "10M", "512K", "1G" when exact, else bytes */
void
ctl_fmt_size(struct buf *out, long long bytes)
{
	static const char units[] = "KMGT";
	int u = -1;

	while (bytes >= 1024 && bytes % 1024 == 0 && u < 3) {
		bytes /= 1024;
		u++;
	}
	if (u < 0)
		buf_printf(out, "%lld", bytes);
	else
		buf_printf(out, "%lld%c", bytes, units[u]);
}

/* ctl_listing_init - empty listing with ncol columns named by head */
void
ctl_listing_init(struct ctl_listing *l, int ncol, const char *const *head)
{
	ctl_table_init(&l->t, ncol, head);
	buf_init(&l->out);
	ctl_json_init(&l->j, &l->out);
	ctl_json_open(&l->j, '[');
}

/* ctl_listing_print - the JSON array with --json, else the table */
void
ctl_listing_print(const struct ctl *ctl, struct ctl_listing *l)
{
	ctl_json_close(&l->j, ']');
	if (ctl->json)
		ctl_json_print(&l->out);
	else
		ctl_table_print(&l->t, stdout);
}

/* ctl_listing_free - release the table and the JSON text */
void
ctl_listing_free(struct ctl_listing *l)
{
	ctl_table_free(&l->t);
	buf_free(&l->out);
}
