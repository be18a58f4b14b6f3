/*
 * config - one table of settings, and the parser of "key = value" files.
 *
 * A program describes every key it knows in one array of struct cfg_entry
 * ending in {0}: name, type, default, where the value goes, optional check,
 * a line of documentation. cfg_defaults() stores every default; cfg_load()
 * then applies a file. Unknown keys, duplicate keys, bad values and
 * malformed lines are errors reported as "file:line: reason" in why; the
 * caller decides (at startup: msg_fatal). Values are stored typed:
 *
 *   CFG_STR   char *        (owned by the table, freed by cfg_free)
 *   CFG_INT   long long     (min/max bound it when max > min)
 *   CFG_SIZE  long long     bytes, "10M" style suffixes
 *   CFG_TIME  long long     seconds, "5m" style suffixes
 *   CFG_BOOL  bool
 *   CFG_LIST  char *        comma/blank separated, kept as written,
 *                           iterate with cfg_list_next()
 *
 * Syntax: '#' starts a comment line; blank lines are ignored; a line that
 * begins with whitespace continues the previous value (as in main.cf);
 * "key = value" with optional spaces around '='; value may be empty.
 * Lines are at most 4096 bytes; files at most 1 MiB. CRLF line ends are
 * accepted; NUL and other control bytes (except tab) are errors.
 *
 * cfg_load()/cfg_parse() check the whole text before storing anything: on
 * error the table is unchanged. CFG_STR/CFG_LIST storage (*ptr) must be
 * NULL or a string the table stored before: cfg_defaults() and later
 * stores free the old one, so calling cfg_defaults() again (reload) leaks
 * nothing.
 */
#ifndef BASE_CONFIG_H
#define BASE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

struct buf;

enum cfg_type { CFG_STR, CFG_INT, CFG_SIZE, CFG_TIME, CFG_BOOL, CFG_LIST };

/* cfg_check_fn - extra check of a parsed value; -1 with reason in why */
typedef int cfg_check_fn(const char *value, struct buf *why);

struct cfg_entry {
	const char *name;	/* key as written in the file */
	enum cfg_type type;
	const char *defval;	/* default, in file syntax */
	void *ptr;		/* where the typed value goes */
	long long min, max;	/* bounds for INT/SIZE/TIME when max > min */
	cfg_check_fn *check;	/* optional */
	const char *doc;	/* one line for herald.conf(5) and --help */
	/* filled in by the parser */
	bool changed;		/* set from a file or cfg_set, not default */
	char *text;		/* the value as written (default or file) */
};

/* cfg_defaults - store every entry's default; panics on a bad default */
void cfg_defaults(struct cfg_entry *table);
/* cfg_load - apply a file on top of the current values */
int cfg_load(struct cfg_entry *table, const char *path, struct buf *why);
/* cfg_read - append the text fd holds (from offset 0, bounded) to text */
int cfg_read(int fd, const char *name, struct buf *text, struct buf *why);
/* cfg_read_file - append a file's text (bounded) to text */
int cfg_read_file(const char *path, struct buf *text, struct buf *why);
/* cfg_parse - apply text (named name for messages) on top of the values */
int cfg_parse(struct cfg_entry *table, const char *name, const char *text,
    size_t len, struct buf *why);
/* cfg_set - set one key from its text form */
int cfg_set(struct cfg_entry *table, const char *key, const char *value,
    struct buf *why);
/* cfg_find - the entry named key, or NULL */
struct cfg_entry *cfg_find(struct cfg_entry *table, const char *key);
/* cfg_free - release strings held by the table */
void cfg_free(struct cfg_entry *table);
/* cfg_list_next - iterate a CFG_LIST value: copies the next item into item
 * (NUL-terminated, truncated to size) and advances *cursor; 0 at the end */
int cfg_list_next(const char **cursor, char *item, size_t size);
/* A saved copy of a whole table (typed values, texts, changed flags), so a
 * caller can try new settings and put the old ones back if anything fails,
 * e.g. a reload with a bad file or a listener that cannot be opened. */
struct cfg_snapshot;
/* cfg_save - copy every entry of table */
struct cfg_snapshot *cfg_save(const struct cfg_entry *table);
/* cfg_restore - put the saved settings back into the same table */
void cfg_restore(struct cfg_entry *table, const struct cfg_snapshot *snap);
/* cfg_snapshot_free - release a snapshot; *snap becomes NULL */
void cfg_snapshot_free(struct cfg_snapshot **snap);

/* cfg_type_name - "string", "integer", "size", "time", "boolean", "list" */
const char *cfg_type_name(enum cfg_type type);

#endif
