/*
 * config - the settings table and the "key = value" file parser.
 *
 * cfg_parse() works in two passes: it first reads and checks the whole
 * text, and only when every line is good does it store the values. A bad
 * file therefore leaves the table exactly as it was.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"

#define CFG_LINE_MAX 4096
#define CFG_FILE_MAX (1024 * 1024)

/* one converted value, before it is stored */
struct cfg_value {
	long long num;
	bool flag;
};

/* one key seen in a file, while parsing */
struct cfg_pending {
	struct buf text;	/* value as written (continuations joined) */
	int line;		/* line of the key, 0 = not in this file */
	struct cfg_value val;
};

/* cfg_type_name - "string", "integer", "size", "time", "boolean", "list" */
const char *
cfg_type_name(enum cfg_type type)
{
	switch (type) {
	case CFG_STR:
		return "string";
	case CFG_INT:
		return "integer";
	case CFG_SIZE:
		return "size";
	case CFG_TIME:
		return "time";
	case CFG_BOOL:
		return "boolean";
	case CFG_LIST:
		return "list";
	}
	return "unknown";
}

/* cfg_type_forms - what a value of type must look like, for messages */
static const char *
cfg_type_forms(enum cfg_type type)
{
	switch (type) {
	case CFG_INT:
		return "use a whole number";
	case CFG_SIZE:
		return "use a number of bytes with an optional b, k, M, G or T "
		    "suffix (powers of 1024)";
	case CFG_TIME:
		return "use a number of seconds with an optional s, m, h, d or "
		    "w suffix";
	case CFG_BOOL:
		return "use yes or no (also true/false, on/off, 1/0)";
	case CFG_STR:
	case CFG_LIST:
		break;
	}
	return "bad value";
}

/* cfg_find - the entry named key, or NULL */
struct cfg_entry *
cfg_find(struct cfg_entry *table, const char *key)
{
	for (struct cfg_entry *e = table; e->name != NULL; e++)
		if (strcmp(e->name, key) == 0)
			return e;
	return NULL;
}

/* cfg_convert - parse and check value for e; -1 with "key: reason" */
static int
cfg_convert(const struct cfg_entry *e, const char *value,
    struct cfg_value *v, struct buf *why)
{
	struct buf reason = BUF_INIT;
	int rc = 0;

	switch (e->type) {
	case CFG_STR:
	case CFG_LIST:
		break;
	case CFG_INT:
		rc = str_to_ll(value, LLONG_MIN, LLONG_MAX, &v->num);
		break;
	case CFG_SIZE:
		rc = str_to_size(value, &v->num);
		break;
	case CFG_TIME:
		rc = str_to_seconds(value, &v->num);
		break;
	case CFG_BOOL:
		rc = str_to_bool(value, &v->flag);
		break;
	}
	if (rc < 0) {
		buf_printf(why, "%s: bad %s \"%s\": %s", e->name,
		    cfg_type_name(e->type), value, cfg_type_forms(e->type));
		return -1;
	}
	if ((e->type == CFG_INT || e->type == CFG_SIZE ||
	    e->type == CFG_TIME) && e->max > e->min &&
	    (v->num < e->min || v->num > e->max)) {
		buf_printf(why, "%s: \"%s\" is out of range (%lld..%lld)",
		    e->name, value, e->min, e->max);
		return -1;
	}
	if (e->check != NULL && e->check(value, &reason) < 0) {
		buf_printf(why, "%s: %s", e->name,
		    reason.len ? buf_cstr(&reason) : "bad value");
		rc = -1;
	}
	buf_free(&reason);
	return rc;
}

/* cfg_store - store a converted value and its text into e */
static void
cfg_store(struct cfg_entry *e, const char *value, const struct cfg_value *v)
{
	/* copy first: value may be e->text or the stored string itself */
	char *text = xstrdup(value);

	if (e->ptr != NULL && (e->type == CFG_STR || e->type == CFG_LIST)) {
		char *copy = xstrdup(text);

		x_free(e->ptr);
		*(char **)e->ptr = copy;
	}
	x_free(&e->text);
	e->text = text;
	if (e->ptr == NULL)
		return;			/* documentation-only entry */
	switch (e->type) {
	case CFG_STR:
	case CFG_LIST:
		break;
	case CFG_INT:
	case CFG_SIZE:
	case CFG_TIME:
		*(long long *)e->ptr = v->num;
		break;
	case CFG_BOOL:
		*(bool *)e->ptr = v->flag;
		break;
	}
}

/* cfg_defaults - store every entry's default; panics on a bad default */
void
cfg_defaults(struct cfg_entry *table)
{
	struct buf why = BUF_INIT;
	struct cfg_value v = {0, false};

	for (struct cfg_entry *e = table; e->name != NULL; e++) {
		const char *def = e->defval ? e->defval : "";

		if (cfg_convert(e, def, &v, &why) < 0)
			msg_panic("cfg_defaults: bad default: %s", buf_cstr(&why));
		cfg_store(e, def, &v);
		e->changed = false;
	}
	buf_free(&why);
}

/* cfg_set - set one key from its text form */
int
cfg_set(struct cfg_entry *table, const char *key, const char *value,
    struct buf *why)
{
	struct cfg_entry *e;
	struct cfg_value v = {0, false};

	if ((e = cfg_find(table, key)) == NULL) {
		buf_printf(why, "unknown key \"%s\"", key);
		return -1;
	}
	if (cfg_convert(e, value, &v, why) < 0)
		return -1;
	cfg_store(e, value, &v);
	e->changed = true;
	return 0;
}

/* cfg_is_blank - space or tab */
static bool
cfg_is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* cfg_finish - convert the value of the key that starts at pend[idx] */
static int
cfg_finish(const struct cfg_entry *table, struct cfg_pending *pend, int idx,
    const char *name, struct buf *why)
{
	struct buf reason = BUF_INIT;

	if (idx < 0)
		return 0;
	if (cfg_convert(&table[idx], buf_cstr(&pend[idx].text),
	    &pend[idx].val, &reason) < 0) {
		buf_printf(why, "%s:%d: %s", name, pend[idx].line,
		    buf_cstr(&reason));
		buf_free(&reason);
		return -1;
	}
	return 0;
}

/* cfg_value_fits - a value, continuation lines joined, must still fit
 * one line as "key = value", so that what heraldctl config prints can
 * be read back; -1 with why */
static int
cfg_value_fits(const struct cfg_entry *e, const struct cfg_pending *pend,
    const char *name, int lineno, struct buf *why)
{
	if (strlen(e->name) + 3 + pend->text.len <= CFG_LINE_MAX)
		return 0;
	buf_printf(why, "%s:%d: value of %s is longer than %d bytes with "
	    "\"%s = \"", name, lineno, e->name, CFG_LINE_MAX, e->name);
	return -1;
}

/* cfg_line - handle one physical line; *cur is the key being read */
static int
cfg_line(struct cfg_entry *table, struct cfg_pending *pend, int *cur,
    const char *name, int lineno, char *line, struct buf *why)
{
	char *key, *value, *eq, *p;
	struct cfg_entry *e;

	for (p = line; *p; p++) {
		if ((unsigned char)*p < 0x20 && *p != '\t') {
			buf_printf(why, "%s:%d: control character in line", name,
			    lineno);
			return -1;
		}
	}
	for (p = line; cfg_is_blank(*p); p++)
		;
	if (*p == '\0' || *p == '#')
		return 0;		/* blank or comment */
	if (p != line) {
		/* leading whitespace: continues the previous value */
		if (*cur < 0) {
			buf_printf(why, "%s:%d: continuation line without a "
			    "key", name, lineno);
			return -1;
		}
		value = str_trim(p);
		if (pend[*cur].text.len > 0)
			buf_putc(&pend[*cur].text, ' ');
		buf_puts(&pend[*cur].text, value);
		return cfg_value_fits(&table[*cur], &pend[*cur], name, lineno,
		    why);
	}
	if (cfg_finish(table, pend, *cur, name, why) < 0)
		return -1;
	*cur = -1;
	if ((eq = strchr(line, '=')) == NULL) {
		buf_printf(why, "%s:%d: missing '='", name, lineno);
		return -1;
	}
	*eq = '\0';
	key = str_trim(line);
	value = str_trim(eq + 1);
	if (*key == '\0') {
		buf_printf(why, "%s:%d: empty key", name, lineno);
		return -1;
	}
	if ((e = cfg_find(table, key)) == NULL) {
		buf_printf(why, "%s:%d: unknown key \"%s\"", name, lineno, key);
		return -1;
	}
	if (pend[e - table].line != 0) {
		buf_printf(why, "%s:%d: %s set twice: line %d and line %d",
		    name, lineno, key, pend[e - table].line, lineno);
		return -1;
	}
	*cur = (int)(e - table);
	pend[*cur].line = lineno;
	buf_set(&pend[*cur].text, value);
	return 0;
}

/* cfg_parse - check all of text, then apply it on top of the values */
int
cfg_parse(struct cfg_entry *table, const char *name, const char *text,
    size_t len, struct buf *why)
{
	struct cfg_pending *pend;
	char line[CFG_LINE_MAX + 1];
	size_t count = 0, pos = 0;
	int cur = -1, lineno = 0, rc = 0;

	if (len > CFG_FILE_MAX) {
		buf_printf(why, "%s: file is larger than %d bytes", name,
		    CFG_FILE_MAX);
		return -1;
	}
	while (table[count].name != NULL)
		count++;
	pend = xcalloc(count ? count : 1, sizeof(*pend));
	for (size_t i = 0; i < count; i++)
		buf_init(&pend[i].text);

	while (pos < len && rc == 0) {
		const char *start = text + pos, *nl;
		size_t n;

		lineno++;
		nl = memchr(start, '\n', len - pos);
		n = nl ? (size_t)(nl - start) : len - pos;
		pos += n + (nl != NULL);
		if (n > 0 && start[n - 1] == '\r')
			n--;		/* CRLF line end */
		if (n > CFG_LINE_MAX) {
			buf_printf(why, "%s:%d: line is longer than %d bytes",
			    name, lineno, CFG_LINE_MAX);
			rc = -1;
			break;
		}
		if (memchr(start, '\0', n) != NULL) {
			buf_printf(why, "%s:%d: NUL byte in line", name,
			    lineno);
			rc = -1;
			break;
		}
		memcpy(line, start, n);
		line[n] = '\0';
		rc = cfg_line(table, pend, &cur, name, lineno, line, why);
	}
	if (rc == 0)
		rc = cfg_finish(table, pend, cur, name, why);

	/* Every line was good: store the values. */
	for (size_t i = 0; i < count; i++) {
		if (rc == 0 && pend[i].line != 0) {
			cfg_store(&table[i], buf_cstr(&pend[i].text),
			    &pend[i].val);
			table[i].changed = true;
		}
		buf_free(&pend[i].text);
	}
	free(pend);
	return rc;
}

/*
 * cfg_read - append what fd holds, from its start, to text: a little more
 * than 1 MiB at most (cfg_parse refuses that). pread, so descriptors
 * that share one offset (a memfd handed to many children) are read whole.
 */
int
cfg_read(int fd, const char *name, struct buf *text, struct buf *why)
{
	char chunk[8192];
	off_t at = 0;
	ssize_t n;

	for (;;) {
		n = pread(fd, chunk, sizeof(chunk), at);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			buf_printf(why, "%s: read: %m", name);
			return -1;
		}
		if (n == 0)
			return 0;
		buf_append(text, chunk, (size_t)n);
		at += n;
		if (text->len > CFG_FILE_MAX)
			return 0;	/* cfg_parse says it is too long */
	}
}

/* cfg_read_file - append a file's text to text */
int
cfg_read_file(const char *path, struct buf *text, struct buf *why)
{
	int fd, rc;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		buf_printf(why, "%s: %m", path);
		return -1;
	}
	rc = cfg_read(fd, path, text, why);
	(void)close(fd);
	return rc;
}

/* cfg_load - read a file and apply it on top of the current values */
int
cfg_load(struct cfg_entry *table, const char *path, struct buf *why)
{
	struct buf text = BUF_INIT;
	int rc;

	if ((rc = cfg_read_file(path, &text, why)) == 0)
		rc = cfg_parse(table, path, text.data, text.len, why);
	buf_free(&text);
	return rc;
}

/* cfg_free - release strings held by the table */
void
cfg_free(struct cfg_entry *table)
{
	for (struct cfg_entry *e = table; e->name != NULL; e++) {
		if ((e->type == CFG_STR || e->type == CFG_LIST) &&
		    e->ptr != NULL)
			x_free(e->ptr);
		x_free(&e->text);
		e->changed = false;
	}
}

/* cfg_list_is_sep - list items are separated by commas and blanks */
static bool
cfg_list_is_sep(char c)
{
	return c == ',' || c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* cfg_list_next - copy the next item of a list value into item */
int
cfg_list_next(const char **cursor, char *item, size_t size)
{
	const char *p, *start;
	size_t n;

	if (cursor == NULL || *cursor == NULL)
		return 0;
	for (p = *cursor; cfg_list_is_sep(*p); p++)
		;
	if (*p == '\0') {
		*cursor = p;
		return 0;
	}
	for (start = p; *p != '\0' && !cfg_list_is_sep(*p); p++)
		;
	n = (size_t)(p - start);
	if (size > 0) {
		if (n >= size)
			n = size - 1;
		memcpy(item, start, n);
		item[n] = '\0';
	}
	*cursor = p;
	return 1;
}

/* one saved entry of a cfg_snapshot */
struct cfg_saved {
	char *str;		/* CFG_STR, CFG_LIST */
	long long num;		/* CFG_INT, CFG_SIZE, CFG_TIME */
	bool flag;		/* CFG_BOOL */
	char *text;
	bool changed;
};

struct cfg_snapshot {
	size_t n;
	struct cfg_saved *v;
};

/* cfg_dup - copy of a string that may be NULL */
static char *
cfg_dup(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

/* cfg_save - copy every setting's value and text */
struct cfg_snapshot *
cfg_save(const struct cfg_entry *table)
{
	struct cfg_snapshot *snap = xcalloc(1, sizeof(*snap));
	size_t n = 0;

	while (table[n].name != NULL)
		n++;
	snap->n = n;
	snap->v = xcalloc(n ? n : 1, sizeof(*snap->v));
	for (size_t i = 0; i < n; i++) {
		const struct cfg_entry *e = &table[i];
		struct cfg_saved *v = &snap->v[i];

		switch (e->type) {
		case CFG_STR:
		case CFG_LIST:
			v->str = cfg_dup(*(char **)e->ptr);
			break;
		case CFG_INT:
		case CFG_SIZE:
		case CFG_TIME:
			v->num = *(long long *)e->ptr;
			break;
		case CFG_BOOL:
			v->flag = *(bool *)e->ptr;
			break;
		}
		v->text = cfg_dup(e->text);
		v->changed = e->changed;
	}
	return snap;
}

/* cfg_restore - put the saved settings back in force */
void
cfg_restore(struct cfg_entry *table, const struct cfg_snapshot *snap)
{
	for (size_t i = 0; i < snap->n && table[i].name; i++) {
		struct cfg_entry *e = &table[i];
		const struct cfg_saved *v = &snap->v[i];

		switch (e->type) {
		case CFG_STR:
		case CFG_LIST:
			x_free(e->ptr);
			*(char **)e->ptr = cfg_dup(v->str);
			break;
		case CFG_INT:
		case CFG_SIZE:
		case CFG_TIME:
			*(long long *)e->ptr = v->num;
			break;
		case CFG_BOOL:
			*(bool *)e->ptr = v->flag;
			break;
		}
		x_free(&e->text);
		e->text = cfg_dup(v->text);
		e->changed = v->changed;
	}
}

/* cfg_snapshot_free - release a snapshot */
void
cfg_snapshot_free(struct cfg_snapshot **snapp)
{
	struct cfg_snapshot *snap = *snapp;

	if (snap == NULL)
		return;
	for (size_t i = 0; i < snap->n; i++) {
		x_free(&snap->v[i].str);
		x_free(&snap->v[i].text);
	}
	x_free(&snap->v);
	x_free(snapp);
}
