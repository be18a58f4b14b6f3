/*
 * mindex_folder - the folder side of the mail index: Maildir++ folders
 * (list, create, delete, rename, special-use), the dovecot-keywords file
 * of each folder and the subscriptions file. Files that several herald
 * processes rewrite (keywords, subscriptions) are written while holding
 * the index's LMDB write transaction, which serializes them.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/maildir.h"
#include "mail/mindex.h"
#include "mail/mindex_int.h"
#include "mail/mutf7.h"

#define MINDEX_FILE_MAX (1024 * 1024)	/* keywords, subscriptions */

static const struct {
	const char *name;
	unsigned use;
} mindex_specials[] = {
	{"Sent", MINDEX_SPECIAL_SENT},
	{"Drafts", MINDEX_SPECIAL_DRAFTS},
	{"Trash", MINDEX_SPECIAL_TRASH},
	{"Junk", MINDEX_SPECIAL_JUNK},
	{"Archive", MINDEX_SPECIAL_ARCHIVE},
};

/* mindex_read_small - the file at path into out (at most
 * MINDEX_FILE_MAX bytes, no links followed): 1, 0 missing, -1 with why */
static int
mindex_read_small(const char *path, struct buf *out, struct buf *why)
{
	char data[8192];
	ssize_t n;
	int fd;

	struct stat st;

	/* O_NONBLOCK: a FIFO planted under the name must not hang us */
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC)) < 0) {
		if (errno == ENOENT)
			return 0;
		buf_printf(why, "open %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		buf_printf(why, "%s is not a regular file", path);
		close(fd);
		return -1;
	}
	while ((n = read(fd, data, sizeof(data))) > 0) {
		if (out->len + (size_t)n > MINDEX_FILE_MAX) {
			buf_printf(why, "%s is too large", path);
			close(fd);
			return -1;
		}
		buf_append(out, data, (size_t)n);
	}
	close(fd);
	if (n < 0) {
		buf_printf(why, "read %s: %s", path, strerror(errno));
		return -1;
	}
	return 1;
}

/* mindex_write_small - replace the file at path with data[0..len):
 * written to a new file beside it, synced, renamed over; -1 with why */
static int
mindex_write_small(const char *path, const char *data, size_t len,
    struct buf *why)
{
	struct buf tmp = BUF_INIT;
	int fd, rc = -1;

	buf_printf(&tmp, "%s.%ld.tmp", path, (long)getpid());
	(void)unlink(buf_cstr(&tmp));
	if ((fd = open(buf_cstr(&tmp), O_WRONLY | O_CREAT | O_EXCL |
	    O_NOFOLLOW | O_CLOEXEC, 0600)) < 0) {
		buf_printf(why, "create %s: %s", buf_cstr(&tmp),
		    strerror(errno));
		goto out;
	}
	while (len > 0) {
		ssize_t w = write(fd, data, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		data += w;
		len -= (size_t)w;
	}
	if (len > 0 || fsync(fd) < 0) {
		buf_printf(why, "write %s: %s", buf_cstr(&tmp),
		    strerror(errno));
		close(fd);
		(void)unlink(buf_cstr(&tmp));
		goto out;
	}
	close(fd);
	if (rename(buf_cstr(&tmp), path) < 0) {
		buf_printf(why, "rename %s: %s", buf_cstr(&tmp),
		    strerror(errno));
		(void)unlink(buf_cstr(&tmp));
		goto out;
	}
	rc = 0;
out:
	buf_free(&tmp);
	return rc;
}

/* mindex_keyword_ok - an IMAP flag-keyword atom of sane length */
static bool
mindex_keyword_ok(const char *k)
{
	size_t n = strlen(k);

	if (n == 0 || n > MINDEX_KEYWORD_LEN || k[0] == '\\')
		return false;
	for (const unsigned char *p = (const unsigned char *)k; *p; p++)
		if (*p <= ' ' || *p >= 0x7f || strchr("(){%*\"\\]", *p))
			return false;
	return true;
}

/* mindex_keyword_load - dovecot-keywords ("<index> <name>" lines) into
 * names[]: -1 with why */
static int
mindex_keyword_load(const struct mindex_fk *fk,
    char names[MINDEX_KEYWORDS_MAX][MINDEX_KEYWORD_LEN + 1], struct buf *why)
{
	struct buf path = BUF_INIT, data = BUF_INIT;
	int rc;

	memset(names, 0, MINDEX_KEYWORDS_MAX * (MINDEX_KEYWORD_LEN + 1));
	buf_printf(&path, "%s/dovecot-keywords", fk->dir);
	rc = mindex_read_small(buf_cstr(&path), &data, why);
	buf_free(&path);
	if (rc > 0)
		mindex_keyword_parse(data.data, data.len, names);
	buf_free(&data);
	return rc < 0 ? -1 : 0;
}

/* mindex_keyword_parse - see mindex_int.h */
void
mindex_keyword_parse(const char *text, size_t n,
    char names[MINDEX_KEYWORDS_MAX][MINDEX_KEYWORD_LEN + 1])
{
	struct buf data = BUF_INIT;
	char *line, *save = NULL;

	memset(names, 0, MINDEX_KEYWORDS_MAX * (MINDEX_KEYWORD_LEN + 1));
	buf_append(&data, text, n);
	for (line = strtok_r(data.data, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		char *end;
		long i = strtol(line, &end, 10);

		if (end == line || *end != ' ' || i < 0 ||
		    i >= MINDEX_KEYWORDS_MAX || !mindex_keyword_ok(end + 1))
			continue;	/* tools may write anything */
		snprintf(names[i], MINDEX_KEYWORD_LEN + 1, "%s", end + 1);
	}
	buf_free(&data);
}

/* mindex_keyword_save - write names[] as dovecot-keywords */
static int
mindex_keyword_save(const struct mindex_fk *fk,
    char names[MINDEX_KEYWORDS_MAX][MINDEX_KEYWORD_LEN + 1], struct buf *why)
{
	struct buf path = BUF_INIT, data = BUF_INIT;
	int rc;

	for (int i = 0; i < MINDEX_KEYWORDS_MAX; i++)
		if (names[i][0] != '\0')
			buf_printf(&data, "%d %s\n", i, names[i]);
	buf_printf(&path, "%s/dovecot-keywords", fk->dir);
	rc = mindex_write_small(buf_cstr(&path), data.data, data.len, why);
	buf_free(&path);
	buf_free(&data);
	return rc;
}

/* mindex_keyword_find - the index of k in names[] (adding it if add),
 * -1 when unknown (or no room: full set) */
static int
mindex_keyword_find(char names[MINDEX_KEYWORDS_MAX][MINDEX_KEYWORD_LEN + 1],
    const char *k, bool add, bool *full, bool *changed)
{
	int free_slot = -1;

	for (int i = 0; i < MINDEX_KEYWORDS_MAX; i++) {
		if (names[i][0] == '\0') {
			if (free_slot < 0)
				free_slot = i;
		} else if (str_casecmp(names[i], k) == 0) {
			return i;
		}
	}
	if (!add)
		return -1;
	if (free_slot < 0) {
		*full = true;
		return -1;
	}
	snprintf(names[free_slot], MINDEX_KEYWORD_LEN + 1, "%s", k);
	*changed = true;
	return free_slot;
}

/* mindex_keyword_bits - see mindex_int.h */
int
mindex_keyword_bits(const struct mindex_fk *fk, const char *const *kw,
    size_t n, bool add, uint32_t *bits_r, struct buf *why)
{
	char names[MINDEX_KEYWORDS_MAX][MINDEX_KEYWORD_LEN + 1];
	bool full = false, changed = false;

	*bits_r = 0;
	for (size_t i = 0; i < n; i++) {
		if (!mindex_keyword_ok(kw[i])) {
			buf_printf(why, "bad keyword \"%.64s\"", kw[i]);
			return -1;
		}
	}
	if (mindex_keyword_load(fk, names, why) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int b = mindex_keyword_find(names, kw[i], add, &full,
		    &changed);

		if (full) {
			buf_printf(why, "folder has %d keywords already",
			    MINDEX_KEYWORDS_MAX);
			return -1;
		}
		if (b >= 0)
			*bits_r |= 1u << b;
	}
	return changed ? mindex_keyword_save(fk, names, why) : 0;
}

/* mindex_keyword_names - see mindex_int.h */
int
mindex_keyword_names(const struct mindex_fk *fk, struct buf *out,
    struct buf *why)
{
	char names[MINDEX_KEYWORDS_MAX][MINDEX_KEYWORD_LEN + 1];

	buf_reset(out);
	if (mindex_keyword_load(fk, names, why) < 0)
		return -1;
	for (int i = 0; i < MINDEX_KEYWORDS_MAX; i++)
		buf_append(out, names[i], strlen(names[i]) + 1);
	return 0;
}

/* mindex_keyword_map - see mindex_int.h */
int
mindex_keyword_map(const struct mindex_fk *src, const struct buf *snames,
    const struct mindex_fk *dst, uint32_t bits, uint32_t *out_r,
    struct buf *why)
{
	const char *kw[MINDEX_KEYWORDS_MAX];
	const char *p = snames->data;
	size_t n = 0;

	(void)src;
	for (int i = 0; i < MINDEX_KEYWORDS_MAX && p < snames->data +
	    snames->len; i++, p += strlen(p) + 1)
		if ((bits & (1u << i)) && *p != '\0')
			kw[n++] = p;
	return mindex_keyword_bits(dst, kw, n, true, out_r, why);
}

/* mindex_keywords - see mindex.h */
int
mindex_keywords(struct mindex *ix, const char *folder, struct buf *out,
    struct buf *why)
{
	char names[MINDEX_KEYWORDS_MAX][MINDEX_KEYWORD_LEN + 1];
	struct mindex_fk fk;

	if (mindex_fkey(ix, folder, &fk, why) < 0 ||
	    mindex_keyword_load(&fk, names, why) < 0)
		return -1;
	for (int i = 0; i < MINDEX_KEYWORDS_MAX; i++)
		if (names[i][0] != '\0')
			buf_printf(out, "%s\n", names[i]);
	return 0;
}

/* mindex_cmp_str - qsort order of C strings */
static int
mindex_cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* mindex_folder_names - see mindex_int.h */
int
mindex_folder_names(struct mindex *ix, struct buf *out, struct buf *why)
{
	struct buf name = BUF_INIT, err = BUF_INIT;
	char **v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d;

	buf_reset(out);
	buf_append(out, "INBOX", 6);
	if ((d = opendir(ix->path)) == NULL) {
		if (errno == ENOENT)
			return 0;
		buf_printf(why, "open %s: %s", ix->path, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		struct stat st;

		if (de->d_name[0] != '.' || fstatat(dirfd(d), de->d_name,
		    &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
			continue;
		buf_reset(&err);
		if (mutf7_folder_from_disk(de->d_name, &name, &err) < 0)
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			v = xreallocarray(v, cap, sizeof(*v));
		}
		v[n++] = xstrdup(buf_cstr(&name));
	}
	closedir(d);
	if (n > 0)
		qsort(v, n, sizeof(*v), mindex_cmp_str);
	for (size_t i = 0; i < n; i++) {
		buf_append(out, v[i], strlen(v[i]) + 1);
		free(v[i]);
	}
	free(v);
	buf_free(&name);
	buf_free(&err);
	return 0;
}

/* mindex_special_use - see mindex.h */
unsigned
mindex_special_use(const char *folder)
{
	for (size_t i = 0; i < sizeof(mindex_specials) /
	    sizeof(mindex_specials[0]); i++)
		if (strcmp(folder, mindex_specials[i].name) == 0)
			return mindex_specials[i].use;
	return 0;
}

/* mindex_folders - see mindex.h */
int
mindex_folders(struct mindex *ix, mindex_folder_fn *fn, void *ctx,
    struct buf *why)
{
	struct buf names = BUF_INIT;

	if (mindex_folder_names(ix, &names, why) < 0) {
		buf_free(&names);
		return -1;
	}
	for (const char *p = names.data; p < names.data + names.len;
	    p += strlen(p) + 1)
		fn(p, mindex_special_use(p), ctx);
	buf_free(&names);
	return 0;
}

/* mindex_drop_folder - remove every index record of the folder key */
static int
mindex_drop_folder(struct mindex *ix, MDB_txn *txn, const char *key,
    size_t klen, struct buf *why)
{
	struct buf p = BUF_INIT;
	MDB_val k = {klen, (void *)key};
	int rc = 0, mrc;

	buf_append(&p, key, klen);
	buf_putc(&p, '\0');
	if (mindex_del_prefix(txn, ix->msgs, p.data, p.len, why) < 0 ||
	    mindex_del_prefix(txn, ix->names, p.data, p.len, why) < 0 ||
	    mindex_del_prefix(txn, ix->expunged, p.data, p.len, why) < 0 ||
	    mindex_del_prefix(txn, ix->cache, p.data, p.len, why) < 0)
		rc = -1;
	else if ((mrc = mdb_del(txn, ix->folders, &k, NULL)) != 0 &&
	    mrc != MDB_NOTFOUND)
		rc = mindex_mdb_error(why, mrc, "folder record");
	buf_free(&p);
	return rc;
}

/* mindex_drop_stale - see mindex_int.h */
int
mindex_drop_stale(struct mindex *ix, MDB_txn *txn, const struct buf *names,
    struct buf *why)
{
	struct buf keys = BUF_INIT, stale = BUF_INIT;
	MDB_cursor *c;
	MDB_val k, v;
	int rc = 0, mrc;

	for (const char *p = names->data; p < names->data + names->len;
	    p += strlen(p) + 1) {
		struct mindex_fk fk;

		if (mindex_fkey(ix, p, &fk, why) < 0)
			return -1;
		buf_append(&keys, fk.key, fk.klen + 1);
	}
	if ((mrc = mdb_cursor_open(txn, ix->folders, &c)) != 0) {
		buf_free(&keys);
		return mindex_mdb_error(why, mrc, "cursor");
	}
	for (mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST); mrc == 0;
	    mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		bool found = false;

		for (const char *p = keys.data; p < keys.data + keys.len;
		    p += strlen(p) + 1)
			if (strlen(p) == k.mv_size && memcmp(p, k.mv_data,
			    k.mv_size) == 0)
				found = true;
		if (!found && k.mv_size < MUTF7_NAME_MAX + 1) {
			buf_append(&stale, k.mv_data, k.mv_size);
			buf_putc(&stale, '\0');
		}
	}
	mdb_cursor_close(c);
	for (const char *p = stale.data; rc == 0 && p < stale.data +
	    stale.len; p += strlen(p) + 1)
		rc = mindex_drop_folder(ix, txn, p, strlen(p), why);
	buf_free(&keys);
	buf_free(&stale);
	return rc;
}

/* mindex_mkdir_maildir - make fk's folder with cur/ new/ tmp/ and the
 * Maildir++ maildirfolder marker; -1 with why (errno EEXIST: there) */
static int
mindex_mkdir_maildir(const struct mindex_fk *fk, struct buf *why)
{
	static const char *const subs[] = {"cur", "new", "tmp"};
	int dfd, fd;

	if (mkdir(fk->dir, 0700) < 0) {
		int e = errno;

		if (e == EEXIST)
			buf_printf(why, "folder \"%s\" exists", fk->name);
		else
			buf_printf(why, "mkdir %s: %s", fk->dir, strerror(e));
		errno = e;
		return -1;
	}
	if ((dfd = open(fk->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) < 0) {
		buf_printf(why, "open %s: %s", fk->dir, strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < 3; i++) {
		if (mkdirat(dfd, subs[i], 0700) < 0 && errno != EEXIST) {
			buf_printf(why, "mkdir %s/%s: %s", fk->dir, subs[i],
			    strerror(errno));
			close(dfd);
			return -1;
		}
	}
	if ((fd = openat(dfd, "maildirfolder", O_WRONLY | O_CREAT |
	    O_NOFOLLOW | O_CLOEXEC, 0600)) >= 0)
		close(fd);
	close(dfd);
	return 0;
}

/* mindex_folder_create - see mindex.h */
int
mindex_folder_create(struct mindex *ix, const char *folder, struct buf *why)
{
	struct mindex_fk fk;
	struct mindex_sync_result sr;
	MDB_txn *txn;
	bool ok;

	if (mindex_fkey(ix, folder, &fk, why) < 0)
		return -1;
	if (strcmp(fk.key, ".") == 0) {
		buf_set(why, "INBOX exists always");
		errno = EEXIST;
		return -1;
	}
	if (mindex_mkdir_maildir(&fk, why) < 0)
		return -1;
	for (int tries = 0;; tries++) {
		if (mindex_begin(ix, true, &txn, why) < 0)
			return -1;
		/* a new incarnation: whatever an old one left in the index
		 * goes, and the sync gives it a UIDVALIDITY never used */
		ok = mindex_drop_folder(ix, txn, fk.key, fk.klen, why) == 0 &&
		    mindex_sync_txn(ix, txn, &fk, NULL, &sr, why) == 0;
		if (mindex_end(ix, txn, ok, why) == 0)
			return 0;
		if (tries + 1 >= MINDEX_TRIES || !mindex_map_full(why))
			return -1;
		buf_reset(why);
	}
}

/* mindex_create_special - see mindex.h */
int
mindex_create_special(struct mindex *ix, struct buf *why)
{
	for (size_t i = 0; i < sizeof(mindex_specials) /
	    sizeof(mindex_specials[0]); i++) {
		struct mindex_fk fk;
		struct stat st;

		if (mindex_fkey(ix, mindex_specials[i].name, &fk, why) < 0)
			return -1;
		if (lstat(fk.dir, &st) == 0)
			continue;
		if (mindex_folder_create(ix, mindex_specials[i].name,
		    why) < 0 && errno != EEXIST)
			return -1;
		buf_reset(why);
	}
	return 0;
}

/* mindex_rm_at - remove name in dirfd and, for a folder, what is in it
 * (depth levels at most), never following a link; -1 with errno */
static int
mindex_rm_at(int at, const char *name, int depth)
{
	struct dirent *de;
	DIR *d;
	int fd;

	fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOTDIR || errno == ELOOP)
			return unlinkat(at, name, 0);
		return errno == ENOENT ? 0 : -1;
	}
	if (depth <= 0 || (d = fdopendir(fd)) == NULL) {
		close(fd);
		errno = ENOTEMPTY;
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (mindex_rm_at(dirfd(d), de->d_name, depth - 1) < 0) {
			closedir(d);
			return -1;
		}
	}
	closedir(d);
	return unlinkat(at, name, AT_REMOVEDIR);
}

/* mindex_clean_leftovers - remove what a delete that died half-way
 * left behind (..herald-deleted.* folders) */
void
mindex_clean_leftovers(struct mindex *ix)
{
	struct dirent *de;
	DIR *d;

	if ((d = opendir(ix->path)) == NULL)
		return;
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, MINDEX_DELETED,
		    strlen(MINDEX_DELETED)) == 0)
			(void)mindex_rm_at(dirfd(d), de->d_name, 3);
	closedir(d);
}

/* mindex_count_files - messages in dir/new and dir/cur */
static size_t
mindex_count_files(const char *dir)
{
	static const char *const subs[] = {"new", "cur"};
	size_t n = 0;

	for (int i = 0; i < 2; i++) {
		struct dirent *de;
		DIR *d;

		if ((d = mindex_opendir(dir, true, subs[i])) == NULL)
			continue;
		while ((de = readdir(d)) != NULL)
			if (de->d_name[0] != '.')
				n++;
		closedir(d);
	}
	return n;
}

/* mindex_folder_delete - see mindex.h */
int
mindex_folder_delete(struct mindex *ix, const char *folder, bool force,
    struct buf *why)
{
	struct mindex_fk fk;
	struct buf aside = BUF_INIT;
	struct stat st;
	MDB_txn *txn;
	int dfd, rc = -1;
	bool ok;

	if (mindex_fkey(ix, folder, &fk, why) < 0)
		return -1;
	/* its messages leave the quota usage: counted again */
	maildir_usage_forget(ix->path);
	if (strcmp(fk.key, ".") == 0) {
		buf_set(why, "INBOX cannot be deleted");
		errno = EPERM;
		return -1;
	}
	if (lstat(fk.dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		buf_printf(why, "no folder \"%s\"", folder);
		errno = ENOENT;
		return -1;
	}
	if (!force && mindex_count_files(fk.dir) > 0) {
		buf_printf(why, "folder \"%s\" holds messages", folder);
		errno = ENOTEMPTY;
		return -1;
	}
	/* out of sight first (".." names are never folders), then away */
	buf_printf(&aside, MINDEX_DELETED "%ld.%lld", (long)getpid(),
	    (long long)time(NULL));
	if ((dfd = open(ix->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    renameat(dfd, fk.key, dfd, buf_cstr(&aside)) < 0) {
		buf_printf(why, "rename %s: %s", fk.dir, strerror(errno));
		goto out;
	}
	mindex_point("delete:renamed");
	if (mindex_rm_at(dfd, buf_cstr(&aside), 3) < 0) {
		buf_printf(why, "remove %s/%s: %s", ix->path,
		    buf_cstr(&aside), strerror(errno));
		goto out;
	}
	if (mindex_begin(ix, true, &txn, why) < 0)
		goto out;
	ok = mindex_drop_folder(ix, txn, fk.key, fk.klen, why) == 0;
	rc = mindex_end(ix, txn, ok, why);
out:
	if (dfd >= 0)
		close(dfd);
	buf_free(&aside);
	return rc;
}

/* mindex_move_keys - rename the index records of folder key from to to */
static int
mindex_move_keys(struct mindex *ix, MDB_txn *txn, const struct mindex_fk *from,
    const struct mindex_fk *to, struct buf *why)
{
	MDB_dbi dbis[] = {ix->msgs, ix->names, ix->expunged, ix->cache};
	struct buf pre = BUF_INIT, keys = BUF_INIT, vals = BUF_INIT;
	struct buf nk = BUF_INIT;
	MDB_val k = {from->klen, (void *)from->key}, v;
	int rc = -1, mrc;

	if ((mrc = mdb_get(txn, ix->folders, &k, &v)) == 0) {
		MDB_val k2 = {to->klen, (void *)to->key};
		struct buf copy = BUF_INIT;

		buf_append(&copy, v.mv_data, v.mv_size);
		v = mindex_val(&copy);
		mrc = mdb_put(txn, ix->folders, &k2, &v, 0);
		buf_free(&copy);
		if (mrc == 0)
			mrc = mdb_del(txn, ix->folders, &k, NULL);
	}
	if (mrc != 0 && mrc != MDB_NOTFOUND) {
		mindex_mdb_error(why, mrc, "folder record");
		goto out;
	}
	mindex_key(from, "", 0, &pre);
	for (size_t d = 0; d < sizeof(dbis) / sizeof(dbis[0]); d++) {
		MDB_cursor *c;
		size_t off_k = 0, off_v = 0;

		buf_reset(&keys);
		buf_reset(&vals);
		if ((mrc = mdb_cursor_open(txn, dbis[d], &c)) != 0) {
			mindex_mdb_error(why, mrc, "cursor");
			goto out;
		}
		k = mindex_val(&pre);
		for (mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
		    mrc == 0; mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
			uint32_t kl, vl;

			if (k.mv_size < pre.len || memcmp(k.mv_data,
			    pre.data, pre.len) != 0)
				break;
			kl = (uint32_t)(k.mv_size - pre.len);
			vl = (uint32_t)v.mv_size;
			buf_append(&keys, &kl, sizeof(kl));
			buf_append(&keys, (char *)k.mv_data + pre.len, kl);
			buf_append(&vals, &vl, sizeof(vl));
			buf_append(&vals, v.mv_data, vl);
		}
		mdb_cursor_close(c);
		if (mindex_del_prefix(txn, dbis[d], pre.data, pre.len,
		    why) < 0)
			goto out;
		while (off_k < keys.len) {
			uint32_t kl, vl;

			memcpy(&kl, keys.data + off_k, sizeof(kl));
			memcpy(&vl, vals.data + off_v, sizeof(vl));
			mindex_key(to, keys.data + off_k + sizeof(kl), kl, &nk);
			k = mindex_val(&nk);
			v = (MDB_val){vl, vals.data + off_v + sizeof(vl)};
			if ((mrc = mdb_put(txn, dbis[d], &k, &v, 0)) != 0) {
				mindex_mdb_error(why, mrc, "rename");
				goto out;
			}
			off_k += sizeof(kl) + kl;
			off_v += sizeof(vl) + vl;
		}
	}
	rc = 0;
out:
	buf_free(&pre);
	buf_free(&keys);
	buf_free(&vals);
	buf_free(&nk);
	return rc;
}

/* mindex_rename_inbox - RFC 3501: INBOX's messages move to a new folder
 * to; INBOX stays, empty */
static int
mindex_rename_inbox(struct mindex *ix, const struct mindex_fk *in,
    const struct mindex_fk *to, struct buf *why)
{
	static const char *const subs[] = {"new", "cur"};
	struct mindex_sync_result sr;
	struct buf from = BUF_INIT, dst = BUF_INIT;
	MDB_txn *txn;
	bool ok;
	int rc = -1;

	if (mindex_folder_create(ix, to->name, why) < 0)
		return -1;
	if (mindex_begin(ix, true, &txn, why) < 0)
		return -1;
	for (int i = 0; i < 2; i++) {
		struct dirent *de;
		DIR *d;

		if ((d = mindex_opendir(in->dir, false, subs[i])) == NULL)
			continue;
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			buf_reset(&from);
			buf_reset(&dst);
			buf_printf(&from, "%s/%s/%s", in->dir, subs[i],
			    de->d_name);
			buf_printf(&dst, "%s/cur/%s%s", to->dir, de->d_name,
			    i == 0 && strchr(de->d_name, ':') == NULL ?
			    ":2," : "");
			if (rename(buf_cstr(&from), buf_cstr(&dst)) < 0 &&
			    errno != ENOENT) {
				buf_printf(why, "rename %s: %s",
				    buf_cstr(&from), strerror(errno));
				closedir(d);
				goto out;
			}
		}
		closedir(d);
	}
	rc = 0;
out:
	ok = rc == 0 && mindex_sync_txn(ix, txn, in, NULL, &sr, why) == 0 &&
	    mindex_sync_txn(ix, txn, to, NULL, &sr, why) == 0;
	buf_free(&from);
	buf_free(&dst);
	return mindex_end(ix, txn, ok, why);
}

/* mindex_folder_rename - see mindex.h */
int
mindex_folder_rename(struct mindex *ix, const char *from, const char *to,
    struct buf *why)
{
	struct mindex_fk fk, tk;
	struct buf names = BUF_INIT;
	struct stat st;
	size_t flen = strlen(from);
	MDB_txn *txn;
	int rc = -1;
	bool ok = true;

	if (mindex_fkey(ix, from, &fk, why) < 0 ||
	    mindex_fkey(ix, to, &tk, why) < 0)
		return -1;
	if (strcmp(tk.key, ".") == 0 || lstat(tk.dir, &st) == 0) {
		buf_printf(why, "folder \"%s\" exists", to);
		errno = EEXIST;
		return -1;
	}
	if (strcmp(fk.key, ".") == 0)
		return mindex_rename_inbox(ix, &fk, &tk, why);
	if (strncmp(to, from, flen) == 0 && to[flen] == '.') {
		buf_set(why, "cannot rename a folder below itself");
		return -1;
	}
	if (lstat(fk.dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		buf_printf(why, "no folder \"%s\"", from);
		errno = ENOENT;
		return -1;
	}
	if (mindex_folder_names(ix, &names, why) < 0)
		goto out;
	if (mindex_begin(ix, true, &txn, why) < 0)
		goto out;
	/* the folder and everything below it, holding the index lock so
	 * no other herald process works in them meanwhile */
	for (const char *p = names.data; ok && p < names.data + names.len;
	    p += strlen(p) + 1) {
		struct mindex_fk a, b;
		struct buf nn = BUF_INIT;

		if (strncmp(p, from, flen) != 0 || (p[flen] != '\0' &&
		    p[flen] != '.'))
			continue;
		buf_printf(&nn, "%s%s", to, p + flen);
		if (mindex_fkey(ix, p, &a, why) < 0 ||
		    mindex_fkey(ix, buf_cstr(&nn), &b, why) < 0) {
			ok = false;
		} else if (lstat(b.dir, &st) == 0) {
			buf_printf(why, "folder \"%s\" exists", buf_cstr(&nn));
			ok = false;
		} else if (rename(a.dir, b.dir) < 0) {
			buf_printf(why, "rename %s: %s", a.dir,
			    strerror(errno));
			ok = false;
		} else if (mindex_move_keys(ix, txn, &a, &b, why) < 0) {
			ok = false;
		}
		buf_free(&nn);
	}
	rc = mindex_end(ix, txn, ok, why);
out:
	buf_free(&names);
	return rc;
}

/* mindex_subs_load - the subscribed names (UTF-8), each ended by '\n' */
static int
mindex_subs_load(struct mindex *ix, struct buf *out, struct buf *why)
{
	struct buf path = BUF_INIT, data = BUF_INIT;
	int rc;

	buf_printf(&path, "%s/subscriptions", ix->path);
	rc = mindex_read_small(buf_cstr(&path), &data, why);
	buf_free(&path);
	if (rc > 0)
		mindex_subs_parse(data.data, data.len, out);
	buf_free(&data);
	return rc < 0 ? -1 : 0;
}

/* mindex_subs_parse - see mindex_int.h */
void
mindex_subs_parse(const char *text, size_t n, struct buf *out)
{
	struct buf data = BUF_INIT, name = BUF_INIT;
	struct buf err = BUF_INIT, raw = BUF_INIT;
	char *line, *save = NULL;
	bool v2 = false;

	buf_append(&data, text, n);
	if (data.len >= 3 && memcmp(data.data, "V\t", 2) == 0)
		v2 = true;	/* Dovecot 2.x: "V\t2", '\t' between levels */
	for (line = strtok_r(data.data, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (v2 && line == data.data)
			continue;
		buf_reset(&raw);
		buf_reset(&err);
		buf_puts(&raw, line);
		for (size_t i = 0; i < raw.len; i++)
			if (v2 && raw.data[i] == '\t')
				raw.data[i] = '.';
		if (mutf7_folder_name(buf_cstr(&raw), false, &name, &err) < 0 &&
		    mutf7_folder_name(buf_cstr(&raw), true, &name, &err) < 0)
			continue;
		buf_printf(out, "%s\n", buf_cstr(&name));
	}
	buf_free(&data);
	buf_free(&name);
	buf_free(&err);
	buf_free(&raw);
}

/* mindex_subscribe - see mindex.h */
int
mindex_subscribe(struct mindex *ix, const char *folder, bool on,
    struct buf *why)
{
	struct buf cur = BUF_INIT, out = BUF_INIT, path = BUF_INIT;
	struct buf name = BUF_INIT;
	MDB_txn *txn;
	bool found = false;
	int rc = -1;

	if (mutf7_folder_name(folder, true, &name, why) < 0)
		return -1;
	/* the write transaction serializes writers of the file */
	if (mindex_begin(ix, true, &txn, why) < 0)
		goto out_nolock;
	if (mindex_subs_load(ix, &cur, why) < 0)
		goto out;
	for (char *p = cur.data, *nl; p < cur.data + cur.len; p = nl + 1) {
		nl = strchr(p, '\n');
		*nl = '\0';
		if (strcmp(p, buf_cstr(&name)) == 0) {
			found = true;
			if (!on)
				continue;
		}
		if (mutf7_encode(p, strlen(p), &out, why) < 0)
			goto out;
		buf_putc(&out, '\n');
	}
	if (on && !found) {
		if (mutf7_encode(name.data, name.len, &out, why) < 0)
			goto out;
		buf_putc(&out, '\n');
	}
	if (found == on) {
		rc = 0;
		goto out;
	}
	buf_printf(&path, "%s/subscriptions", ix->path);
	rc = mindex_write_small(buf_cstr(&path), out.data, out.len, why);
out:
	(void)mindex_end(ix, txn, false, why);
out_nolock:
	buf_free(&cur);
	buf_free(&out);
	buf_free(&path);
	buf_free(&name);
	return rc;
}

/* mindex_subscriptions - see mindex.h */
int
mindex_subscriptions(struct mindex *ix, struct buf *out, struct buf *why)
{
	return mindex_subs_load(ix, out, why);
}
