/*
 * mindex - the per-user LMDB mail index: environment, record codec, sync
 * with the Maildir, listing, flags, expunge, append, copy, cache blobs
 * and rebuild. Folders and subscriptions are in mindex_folder.c. See
 * mindex.h for the contract and the crash-safety argument.
 *
 * Databases of the environment (fkey: the folder's Maildir++ name, "."
 * for INBOX; integers big-endian so keys sort by number):
 *	folders		fkey -> folder record
 *	msgs		fkey NUL uid32 -> message record
 *	names		fkey NUL base name -> uid32
 *	expunged	fkey NUL modseq64 uid32(lo) -> uid32(hi)
 *	cache		fkey NUL uid32 kind8 -> blob
 *	meta		"uidvalidity" -> the last UIDVALIDITY handed out
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
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/maildir.h"
#include "mail/mindex.h"
#include "mail/mindex_int.h"
#include "mail/mutf7.h"

mindex_fault_fn *mindex_fault;

#define MINDEX_MSG_HEAD 47	/* record bytes before the name */
#define MINDEX_FOLDER_LEN 17

/* mindex_put32 / put64 / get32 / get64 - big-endian integers */
void
mindex_put32(unsigned char *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

static void
mindex_put64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

uint32_t
mindex_get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

static uint64_t
mindex_get64(const unsigned char *p)
{
	return (uint64_t)mindex_get32(p) << 32 | mindex_get32(p + 4);
}

/* mindex_point - the test hook, if any */
void
mindex_point(const char *point)
{
	if (mindex_fault != NULL)
		mindex_fault(point);
}

/* mindex_msg_encode - see mindex.h */
void
mindex_msg_encode(const struct mindex_msg *m, struct buf *out)
{
	unsigned char h[MINDEX_MSG_HEAD];
	size_t nl = strlen(m->name);

	h[0] = 1;
	mindex_put32(h + 1, m->uid);
	mindex_put32(h + 5, m->flags);
	mindex_put32(h + 9, m->keywords);
	mindex_put64(h + 13, m->modseq);
	mindex_put64(h + 21, m->size);
	mindex_put64(h + 29, m->wsize);
	mindex_put64(h + 37, (uint64_t)m->internaldate);
	h[45] = (unsigned char)(nl >> 8);
	h[46] = (unsigned char)nl;
	buf_append(out, h, sizeof(h));
	buf_append(out, m->name, nl);
}

/* mindex_msg_decode - see mindex.h */
int
mindex_msg_decode(const void *data, size_t n, struct mindex_msg *m,
    struct buf *why)
{
	const unsigned char *p = data;
	size_t nl;

	if (n < MINDEX_MSG_HEAD || p[0] != 1) {
		buf_set(why, "index record of unknown version or cut short");
		return -1;
	}
	nl = (size_t)p[45] << 8 | p[46];
	if (nl != n - MINDEX_MSG_HEAD || nl == 0 || nl > MINDEX_NAME_MAX) {
		buf_set(why, "index record with a bad name length");
		return -1;
	}
	m->uid = mindex_get32(p + 1);
	m->flags = mindex_get32(p + 5);
	m->keywords = mindex_get32(p + 9);
	m->modseq = mindex_get64(p + 13);
	m->size = mindex_get64(p + 21);
	m->wsize = mindex_get64(p + 29);
	m->internaldate = (int64_t)mindex_get64(p + 37);
	memcpy(m->name, p + MINDEX_MSG_HEAD, nl);
	m->name[nl] = '\0';
	if (m->uid == 0 || m->modseq == 0 || (m->flags & ~MINDEX_F_ALL) ||
	    (m->keywords >> MINDEX_KEYWORDS_MAX) != 0 ||
	    memchr(m->name, '\0', nl) != NULL || strchr(m->name, '/') ||
	    m->name[0] == '.') {
		buf_set(why, "index record with a bad field");
		return -1;
	}
	return 0;
}

/* mindex_folder_encode - see mindex.h */
void
mindex_folder_encode(const struct mindex_folder_rec *f, struct buf *out)
{
	unsigned char h[MINDEX_FOLDER_LEN];

	h[0] = 1;
	mindex_put32(h + 1, f->uidvalidity);
	mindex_put32(h + 5, f->uidnext);
	mindex_put64(h + 9, f->highestmodseq);
	buf_append(out, h, sizeof(h));
}

/* mindex_folder_decode - see mindex.h */
int
mindex_folder_decode(const void *data, size_t n, struct mindex_folder_rec *f,
    struct buf *why)
{
	const unsigned char *p = data;

	if (n != MINDEX_FOLDER_LEN || p[0] != 1) {
		buf_set(why, "folder record of unknown version or length");
		return -1;
	}
	f->uidvalidity = mindex_get32(p + 1);
	f->uidnext = mindex_get32(p + 5);
	f->highestmodseq = mindex_get64(p + 9);
	if (f->uidvalidity == 0 || f->uidnext == 0 || f->highestmodseq == 0) {
		buf_set(why, "folder record with a zero field");
		return -1;
	}
	return 0;
}

/* mindex_base_len - see mindex.h */
size_t
mindex_base_len(const char *name)
{
	const char *colon = strchr(name, ':');

	return colon ? (size_t)(colon - name) : strlen(name);
}

/* mindex_flags_from_name - see mindex.h */
void
mindex_flags_from_name(const char *name, uint32_t *flags, uint32_t *keywords)
{
	const char *p = strstr(name, ":2,");

	*flags = 0;
	*keywords = 0;
	if (p == NULL)
		return;
	for (p += 3; *p; p++) {
		switch (*p) {
		case 'D': *flags |= MINDEX_F_DRAFT; break;
		case 'F': *flags |= MINDEX_F_FLAGGED; break;
		case 'P': *flags |= MINDEX_F_PASSED; break;
		case 'R': *flags |= MINDEX_F_ANSWERED; break;
		case 'S': *flags |= MINDEX_F_SEEN; break;
		case 'T': *flags |= MINDEX_F_DELETED; break;
		default:
			if (*p >= 'a' && *p <= 'z')
				*keywords |= 1u << (*p - 'a');
		}
	}
}

/* mindex_name_with_flags - base[0..blen) ":2," and the letters into out;
 * -1 when the name would be too long */
int
mindex_name_with_flags(const char *base, size_t blen, uint32_t flags,
    uint32_t keywords, char *out, size_t size)
{
	static const char letters[] = "DFPRST";
	size_t n = 0;

	if (blen + 3 + 6 + MINDEX_KEYWORDS_MAX >= size)
		return -1;
	memcpy(out, base, blen);
	n = blen;
	memcpy(out + n, ":2,", 3);
	n += 3;
	for (int i = 0; i < 6; i++)
		if (flags & (1u << i))
			out[n++] = letters[i];
	for (int i = 0; i < MINDEX_KEYWORDS_MAX; i++)
		if (keywords & (1u << i))
			out[n++] = (char)('a' + i);
	out[n] = '\0';
	return n > MINDEX_NAME_MAX ? -1 : 0;
}

/* mindex_mdb_error - "what: LMDB reason" into why; -1 */
int
mindex_mdb_error(struct buf *why, int rc, const char *what)
{
	buf_printf(why, "%s%s%s", what, *what ? ": " : "", mdb_strerror(rc));
	return -1;
}

/* mindex_damaged - a damaged-record error into why; -1 */
static int
mindex_damaged(struct buf *why, const char *folder)
{
	buf_printf(why, " (folder %s; run \"heraldctl mailbox reindex\")",
	    folder);
	return -1;
}

/* mindex_env_open - open the environment in dir; -1 with rc in *rc_r */
static int
mindex_env_open(struct mindex *ix, const char *dir, int *rc_r)
{
	MDB_txn *txn = NULL;
	int rc;

	if ((rc = mdb_env_create(&ix->env)) != 0)
		goto fail;
	if ((rc = mdb_env_set_maxdbs(ix->env, 8)) != 0 ||
	    (rc = mdb_env_set_mapsize(ix->env, MINDEX_MAP_START)) != 0 ||
	    (rc = mdb_env_open(ix->env, dir, MDB_NOTLS, 0600)) != 0)
		goto fail;
	if ((rc = mdb_txn_begin(ix->env, NULL, 0, &txn)) != 0)
		goto fail;
	if ((rc = mdb_dbi_open(txn, "folders", MDB_CREATE, &ix->folders)) ||
	    (rc = mdb_dbi_open(txn, "msgs", MDB_CREATE, &ix->msgs)) ||
	    (rc = mdb_dbi_open(txn, "names", MDB_CREATE, &ix->names)) ||
	    (rc = mdb_dbi_open(txn, "expunged", MDB_CREATE, &ix->expunged)) ||
	    (rc = mdb_dbi_open(txn, "cache", MDB_CREATE, &ix->cache)) ||
	    (rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &ix->meta))) {
		mdb_txn_abort(txn);
		goto fail;
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		goto fail;
	*rc_r = 0;
	return 0;
fail:
	if (ix->env != NULL)
		mdb_env_close(ix->env);
	ix->env = NULL;
	*rc_r = rc;
	return -1;
}

/* mindex_open - see mindex.h */
int
mindex_open(const char *path, struct mindex **ix_r, struct buf *why)
{
	struct mindex *ix = xcalloc(1, sizeof(*ix));
	struct buf dir = BUF_INIT;
	struct stat st;
	int rc;

	*ix_r = NULL;
	ix->path = xstrdup(path);
	pthread_mutex_init(&ix->lock, NULL);
	buf_printf(&dir, "%s/%s", path, MINDEX_DIR);
	if (mkdir(buf_cstr(&dir), 0700) < 0 && errno != EEXIST) {
		buf_printf(why, "mkdir %s: %s", buf_cstr(&dir),
		    strerror(errno));
		goto fail;
	}
	if (lstat(buf_cstr(&dir), &st) < 0 || !S_ISDIR(st.st_mode)) {
		buf_printf(why, "%s is not a folder", buf_cstr(&dir));
		goto fail;
	}
	if (mindex_env_open(ix, buf_cstr(&dir), &rc) < 0) {
		struct buf aside = BUF_INIT;

		if (rc != MDB_INVALID && rc != MDB_VERSION_MISMATCH &&
		    rc != MDB_CORRUPTED && rc != MDB_PANIC) {
			mindex_mdb_error(why, rc, buf_cstr(&dir));
			goto fail;
		}
		/* damaged: keep it for a human, start afresh; the first
		 * sync of each folder rebuilds it from the Maildir */
		buf_printf(&aside, "%s.damaged.%lld", buf_cstr(&dir),
		    (long long)time(NULL));
		msg_warn("%s: %s; moved to %s and rebuilt from the Maildir",
		    buf_cstr(&dir), mdb_strerror(rc), buf_cstr(&aside));
		if (rename(buf_cstr(&dir), buf_cstr(&aside)) < 0 ||
		    mkdir(buf_cstr(&dir), 0700) < 0 ||
		    mindex_env_open(ix, buf_cstr(&dir), &rc) < 0) {
			if (rc == 0)
				buf_printf(why, "%s: %s", buf_cstr(&dir),
				    strerror(errno));
			else
				mindex_mdb_error(why, rc, buf_cstr(&dir));
			buf_free(&aside);
			goto fail;
		}
		buf_free(&aside);
	}
	/* a process killed inside a read transaction leaves its slot
	 * taken; free those so old pages can be reused */
	(void)mdb_reader_check(ix->env, &rc);
	buf_free(&dir);
	*ix_r = ix;
	return 0;
fail:
	buf_free(&dir);
	mindex_close(&ix);
	return -1;
}

/* mindex_close - see mindex.h */
void
mindex_close(struct mindex **ixp)
{
	struct mindex *ix = *ixp;

	if (ix == NULL)
		return;
	if (ix->env != NULL)
		mdb_env_close(ix->env);
	pthread_mutex_destroy(&ix->lock);
	x_free(&ix->path);
	x_free(ixp);
}

/*
 * mindex_begin - lock the handle and begin a transaction. A write one
 * first grows the map when more than half of it is in use, so that
 * MDB_MAP_FULL stays rare (no transaction of this process is open then:
 * the handle's mutex is held and every operation ends its own).
 */
int
mindex_begin(struct mindex *ix, bool write, MDB_txn **txn_r, struct buf *why)
{
	MDB_envinfo info;
	MDB_stat st;
	int rc;

	pthread_mutex_lock(&ix->lock);
	if (write && mdb_env_info(ix->env, &info) == 0 &&
	    mdb_env_stat(ix->env, &st) == 0 &&
	    (info.me_last_pgno + 1) * (size_t)st.ms_psize * 2 >
	    info.me_mapsize && info.me_mapsize < MINDEX_MAP_MAX)
		(void)mdb_env_set_mapsize(ix->env, info.me_mapsize * 2);
	for (int tries = 0;; tries++) {
		rc = mdb_txn_begin(ix->env, NULL, write ? 0 : MDB_RDONLY,
		    txn_r);
		if (rc != MDB_MAP_RESIZED || tries > 2)
			break;
		(void)mdb_env_set_mapsize(ix->env, 0);
	}
	if (rc != 0) {
		pthread_mutex_unlock(&ix->lock);
		return mindex_mdb_error(why, rc, "index transaction");
	}
	return 0;
}

/* mindex_end - commit (ok) or abort the transaction, unlock; -1 with why
 * when the commit fails (or ok was false: then why is already set) */
int
mindex_end(struct mindex *ix, MDB_txn *txn, bool ok, struct buf *why)
{
	int rc = 0;

	if (ok) {
		if ((rc = mdb_txn_commit(txn)) != 0) {
			mindex_mdb_error(why, rc, "index commit");
			if (rc == MDB_MAP_FULL) {
				MDB_envinfo info;

				if (mdb_env_info(ix->env, &info) == 0 &&
				    info.me_mapsize < MINDEX_MAP_MAX)
					(void)mdb_env_set_mapsize(ix->env,
					    info.me_mapsize * 2);
			}
		}
	} else {
		mdb_txn_abort(txn);
	}
	pthread_mutex_unlock(&ix->lock);
	return ok && rc == 0 ? 0 : -1;
}

/* mindex_fkey - the folder's key and its Maildir path into fk; -1 with
 * why for a name that is not a checked UTF-8 folder name */
int
mindex_fkey(struct mindex *ix, const char *folder, struct mindex_fk *fk,
    struct buf *why)
{
	struct buf name = BUF_INIT, disk = BUF_INIT;
	int rc = -1;

	if (mutf7_folder_name(folder, true, &name, why) < 0)
		goto out;
	if (strcmp(buf_cstr(&name), folder) != 0) {
		buf_printf(why, "folder \"%s\" is not in its canonical form "
		    "\"%s\"", folder, buf_cstr(&name));
		goto out;
	}
	if (mutf7_folder_disk(folder, &disk, why) < 0)
		goto out;
	str_lcpy(fk->key, disk.len ? buf_cstr(&disk) : ".", sizeof(fk->key));
	fk->klen = strlen(fk->key);
	if (disk.len > 0)
		snprintf(fk->dir, sizeof(fk->dir), "%s/%s", ix->path,
		    buf_cstr(&disk));
	else
		snprintf(fk->dir, sizeof(fk->dir), "%s", ix->path);
	snprintf(fk->name, sizeof(fk->name), "%s", folder);
	rc = 0;
out:
	buf_free(&name);
	buf_free(&disk);
	return rc;
}

/* mindex_key - fkey NUL and then tail[0..n) into key */
void
mindex_key(const struct mindex_fk *fk, const void *tail, size_t n,
    struct buf *key)
{
	buf_reset(key);
	buf_append(key, fk->key, fk->klen);
	buf_putc(key, '\0');
	buf_append(key, tail, n);
}

/* mindex_uid_key - fkey NUL uid */
void
mindex_uid_key(const struct mindex_fk *fk, uint32_t uid, struct buf *key)
{
	unsigned char u[4];

	mindex_put32(u, uid);
	mindex_key(fk, u, 4, key);
}

/* mindex_val - an MDB_val over a buffer */
MDB_val
mindex_val(const struct buf *b)
{
	return (MDB_val){b->len, b->data};
}

/* mindex_folder_get - the folder record: 1, 0 none, -1 with why */
int
mindex_folder_get(struct mindex *ix, MDB_txn *txn, const struct mindex_fk *fk,
    struct mindex_folder_rec *f, struct buf *why)
{
	MDB_val k = {fk->klen, (void *)fk->key}, v;
	int rc;

	if ((rc = mdb_get(txn, ix->folders, &k, &v)) == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return mindex_mdb_error(why, rc, "folder record");
	if (mindex_folder_decode(v.mv_data, v.mv_size, f, why) < 0)
		return mindex_damaged(why, fk->name);
	return 1;
}

/* mindex_folder_put - write the folder record; -1 with why */
int
mindex_folder_put(struct mindex *ix, MDB_txn *txn, const struct mindex_fk *fk,
    const struct mindex_folder_rec *f, struct buf *why)
{
	struct buf b = BUF_INIT;
	MDB_val k = {fk->klen, (void *)fk->key}, v;
	int rc;

	mindex_folder_encode(f, &b);
	v = mindex_val(&b);
	rc = mdb_put(txn, ix->folders, &k, &v, 0);
	buf_free(&b);
	return rc ? mindex_mdb_error(why, rc, "folder record") : 0;
}

/* mindex_msg_put - write a message record and its name entry */
int
mindex_msg_put(struct mindex *ix, MDB_txn *txn, const struct mindex_fk *fk,
    const struct mindex_msg *m, struct buf *why)
{
	struct buf key = BUF_INIT, val = BUF_INIT;
	unsigned char u[4];
	MDB_val k, v;
	int rc;

	mindex_uid_key(fk, m->uid, &key);
	mindex_msg_encode(m, &val);
	k = mindex_val(&key);
	v = mindex_val(&val);
	if ((rc = mdb_put(txn, ix->msgs, &k, &v, 0)) == 0) {
		mindex_key(fk, m->name, mindex_base_len(m->name), &key);
		mindex_put32(u, m->uid);
		k = mindex_val(&key);
		v = (MDB_val){4, u};
		rc = mdb_put(txn, ix->names, &k, &v, 0);
	}
	buf_free(&key);
	buf_free(&val);
	return rc ? mindex_mdb_error(why, rc, "message record") : 0;
}

/* mindex_msg_get - 1 found, 0 not, -1 with why */
int
mindex_msg_get(struct mindex *ix, MDB_txn *txn, const struct mindex_fk *fk,
    uint32_t uid, struct mindex_msg *m, struct buf *why)
{
	struct buf key = BUF_INIT;
	MDB_val k, v;
	int rc;

	mindex_uid_key(fk, uid, &key);
	k = mindex_val(&key);
	rc = mdb_get(txn, ix->msgs, &k, &v);
	buf_free(&key);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return mindex_mdb_error(why, rc, "message record");
	if (mindex_msg_decode(v.mv_data, v.mv_size, m, why) < 0 ||
	    m->uid != uid)
		return mindex_damaged(why, fk->name);
	return 1;
}

/* mindex_del_prefix - delete every key of dbi that starts with prefix
 * (plen bytes) and, with tail, is longer than it; -1 with why */
int
mindex_del_prefix(MDB_txn *txn, MDB_dbi dbi, const void *prefix, size_t plen,
    struct buf *why)
{
	MDB_cursor *c;
	MDB_val k = {plen, (void *)prefix}, v;
	int rc;

	if ((rc = mdb_cursor_open(txn, dbi, &c)) != 0)
		return mindex_mdb_error(why, rc, "cursor");
	rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && k.mv_size >= plen &&
	    memcmp(k.mv_data, prefix, plen) == 0) {
		if ((rc = mdb_cursor_del(c, 0)) != 0)
			break;
		rc = mdb_cursor_get(c, &k, &v, MDB_GET_CURRENT);
		if (rc == MDB_NOTFOUND || rc == EINVAL)
			rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	}
	mdb_cursor_close(c);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return mindex_mdb_error(why, rc, "delete");
	return 0;
}

/* mindex_msg_del - remove a message's records (message, name, cache) */
static int
mindex_msg_del(struct mindex *ix, MDB_txn *txn, const struct mindex_fk *fk,
    const struct mindex_msg *m, struct buf *why)
{
	struct buf key = BUF_INIT;
	MDB_val k;
	int rc;

	mindex_uid_key(fk, m->uid, &key);
	k = mindex_val(&key);
	rc = mdb_del(txn, ix->msgs, &k, NULL);
	if (rc == 0 || rc == MDB_NOTFOUND)
		rc = mindex_del_prefix(txn, ix->cache, key.data, key.len,
		    why) < 0 ? -1 : 0;
	if (rc == 0) {
		mindex_key(fk, m->name, mindex_base_len(m->name), &key);
		k = mindex_val(&key);
		rc = mdb_del(txn, ix->names, &k, NULL);
		if (rc == MDB_NOTFOUND)
			rc = 0;
	}
	buf_free(&key);
	if (rc > 0)
		return mindex_mdb_error(why, rc, "delete message");
	return rc;
}

/* mindex_vanish - record uids[0..n) (sorted) as expunged at modseq */
static int
mindex_vanish(struct mindex *ix, MDB_txn *txn, const struct mindex_fk *fk,
    const uint32_t *uids, size_t n, uint64_t modseq, struct buf *why)
{
	struct buf key = BUF_INIT;
	unsigned char t[12], hi[4];
	size_t i = 0;
	int rc = 0;

	while (i < n && rc == 0) {
		size_t j = i;
		MDB_val k, v;

		while (j + 1 < n && uids[j + 1] == uids[j] + 1)
			j++;
		mindex_put64(t, modseq);
		mindex_put32(t + 8, uids[i]);
		mindex_put32(hi, uids[j]);
		mindex_key(fk, t, sizeof(t), &key);
		k = mindex_val(&key);
		v = (MDB_val){4, hi};
		rc = mdb_put(txn, ix->expunged, &k, &v, 0);
		i = j + 1;
	}
	buf_free(&key);
	return rc ? mindex_mdb_error(why, rc, "expunged record") : 0;
}

/* mindex_cmp_uid - qsort order of uint32_t */
static int
mindex_cmp_uid(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* mindex_new_uidvalidity - a UIDVALIDITY never handed out before by this
 * index: the time, or one more than the last one */
int
mindex_new_uidvalidity(struct mindex *ix, MDB_txn *txn, uint32_t floor,
    uint32_t *uv_r, struct buf *why)
{
	MDB_val k = {11, (void *)"uidvalidity"}, v;
	unsigned char b[4];
	uint32_t last = 0, uv = (uint32_t)time(NULL);
	int rc;

	if ((rc = mdb_get(txn, ix->meta, &k, &v)) == 0 && v.mv_size == 4)
		last = mindex_get32(v.mv_data);
	else if (rc != 0 && rc != MDB_NOTFOUND)
		return mindex_mdb_error(why, rc, "meta");
	if (uv <= last)
		uv = last + 1;
	if (uv <= floor)
		uv = floor + 1;
	if (uv == 0)
		uv = 1;
	mindex_put32(b, uv);
	v = (MDB_val){4, b};
	if ((rc = mdb_put(txn, ix->meta, &k, &v, 0)) != 0)
		return mindex_mdb_error(why, rc, "meta");
	*uv_r = uv;
	return 0;
}

/* mindex_fsync_dir - fsync the folder at path; -1 with why */
int
mindex_fsync_dir(const char *path, struct buf *why)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || fsync(fd) < 0) {
		buf_printf(why, "fsync %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* mindex_file_sizes - size and CRLF size of the file at path (S= and W=
 * of its name where present, else read) */
static int
mindex_file_sizes(const char *path, const char *name, const struct stat *st,
    uint64_t *size, uint64_t *wsize)
{
	const char *s = strstr(name, ",S="), *w = strstr(name, ",W=");
	char data[65536];
	uint64_t lf = 0;
	char prev = 0;
	ssize_t n;
	int fd;

	*size = s ? strtoull(s + 3, NULL, 10) : (uint64_t)st->st_size;
	if (w != NULL) {
		*wsize = strtoull(w + 3, NULL, 10);
		return 0;
	}
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return -1;
	*size = 0;
	while ((n = read(fd, data, sizeof(data))) > 0) {
		for (ssize_t i = 0; i < n; i++) {
			if (data[i] == '\n' && prev != '\r')
				lf++;
			prev = data[i];
		}
		*size += (uint64_t)n;
	}
	close(fd);
	*wsize = *size + lf;
	return n < 0 ? -1 : 0;
}

/* one file found by a scan */
struct mindex_ent {
	char *name;
	size_t blen;
	bool in_new;
	bool matched;
	long long sec;		/* leading number of the name: arrival time */
};

struct mindex_scan {
	struct mindex_ent *v;
	size_t n, cap;
};

/* mindex_scan_dir - add the files of dir/sub to s; -1 with why */
static int
mindex_scan_dir(const char *dir, const char *sub, bool in_new,
    struct mindex_scan *s, struct buf *why)
{
	struct buf path = BUF_INIT;
	struct dirent *de;
	DIR *d;

	buf_printf(&path, "%s/%s", dir, sub);
	if ((d = opendir(buf_cstr(&path))) == NULL) {
		buf_printf(why, "open %s: %s", buf_cstr(&path),
		    strerror(errno));
		buf_free(&path);
		return -1;
	}
	buf_free(&path);
	while ((errno = 0, de = readdir(d)) != NULL) {
		struct mindex_ent *e;

		if (de->d_name[0] == '.' || strlen(de->d_name) >
		    MINDEX_NAME_MAX - 3 - 6 - MINDEX_KEYWORDS_MAX ||
		    (de->d_type != DT_REG && de->d_type != DT_UNKNOWN))
			continue;
		if (s->n == s->cap) {
			s->cap = s->cap ? 2 * s->cap : 256;
			s->v = xreallocarray(s->v, s->cap, sizeof(*s->v));
		}
		e = &s->v[s->n++];
		e->name = xstrdup(de->d_name);
		e->blen = mindex_base_len(e->name);
		e->in_new = in_new;
		e->matched = false;
		e->sec = strtoll(e->name, NULL, 10);
	}
	if (errno != 0) {
		buf_printf(why, "read %s/%s: %s", dir, sub, strerror(errno));
		closedir(d);
		return -1;
	}
	closedir(d);
	return 0;
}

/* mindex_cmp_base - scan order: by base name, cur/ before new/ */
static int
mindex_cmp_base(const void *a, const void *b)
{
	const struct mindex_ent *x = a, *y = b;
	size_t n = x->blen < y->blen ? x->blen : y->blen;
	int c = memcmp(x->name, y->name, n);

	if (c != 0)
		return c;
	if (x->blen != y->blen)
		return x->blen < y->blen ? -1 : 1;
	return (int)x->in_new - (int)y->in_new;
}

/* mindex_cmp_arrival - arrival order: leading seconds, then name */
static int
mindex_cmp_arrival(const void *a, const void *b)
{
	const struct mindex_ent *x = *(const struct mindex_ent *const *)a;
	const struct mindex_ent *y = *(const struct mindex_ent *const *)b;

	if (x->sec != y->sec)
		return x->sec < y->sec ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* mindex_scan_find - the entry with base name base[0..blen), or NULL */
static struct mindex_ent *
mindex_scan_find(struct mindex_scan *s, const char *base, size_t blen)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		struct mindex_ent *e = &s->v[mid];
		size_t n = e->blen < blen ? e->blen : blen;
		int c = memcmp(e->name, base, n);

		if (c == 0 && e->blen != blen)
			c = e->blen < blen ? -1 : 1;
		if (c == 0)
			return e;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* mindex_scan_free - release a scan */
static void
mindex_scan_free(struct mindex_scan *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i].name);
	x_free(&s->v);
	s->n = s->cap = 0;
}

/* mindex_seed_find - the seeded UID of base[0..blen), or 0 */
static uint32_t
mindex_seed_find(const struct mindex_seed *seed, const char *base,
    size_t blen)
{
	size_t lo = 0, hi;

	if (seed == NULL)
		return 0;
	hi = seed->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const char *b = seed->v[mid].base;
		size_t bl = strlen(b), n = bl < blen ? bl : blen;
		int c = memcmp(b, base, n);

		if (c == 0 && bl != blen)
			c = bl < blen ? -1 : 1;
		if (c == 0)
			return seed->v[mid].uid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/* mindex_seed_cmp - seed order: by base name */
static int
mindex_seed_cmp(const void *a, const void *b)
{
	const struct mindex_seed_ent *x = a, *y = b;

	return strcmp(x->base, y->base);
}

/* mindex_seed_add - one base/uid pair */
void
mindex_seed_add(struct mindex_seed *seed, const char *base, size_t blen,
    uint32_t uid)
{
	if (seed->n == seed->cap) {
		seed->cap = seed->cap ? 2 * seed->cap : 256;
		seed->v = xreallocarray(seed->v, seed->cap, sizeof(*seed->v));
	}
	seed->v[seed->n].base = xstrndup(base, blen);
	seed->v[seed->n].uid = uid;
	seed->n++;
	if (uid >= seed->uidnext)
		seed->uidnext = uid + 1;
}

/* mindex_seed_sort - sort for lookups; later duplicates of a base go */
void
mindex_seed_sort(struct mindex_seed *seed)
{
	qsort(seed->v, seed->n, sizeof(*seed->v), mindex_seed_cmp);
}

/* mindex_seed_free - release a seed */
void
mindex_seed_free(struct mindex_seed *seed)
{
	for (size_t i = 0; i < seed->n; i++)
		free(seed->v[i].base);
	x_free(&seed->v);
	seed->n = seed->cap = 0;
}

/*
 * mindex_uidlist - the seed from Dovecot's dovecot-uidlist in dir, if
 * any: header "3 V<uidvalidity> N<uidnext> ..." (or version 1: "1
 * <uidvalidity> <uidnext>"), then "<uid> [<ext>...] :<file name>" lines
 * (version 1: "<uid> <file name>"). 1 read, 0 none or unusable.
 */
int
mindex_uidlist(const char *dir, struct mindex_seed *seed)
{
	struct buf path = BUF_INIT;
	char line[4096];
	unsigned long long uv = 0, next = 0;
	int version = 0;
	FILE *fp;

	buf_printf(&path, "%s/dovecot-uidlist", dir);
	fp = fopen(buf_cstr(&path), "re");
	buf_free(&path);
	if (fp == NULL)
		return 0;
	if (fgets(line, sizeof(line), fp) == NULL) {
		fclose(fp);
		return 0;
	}
	if (line[0] == '1' && line[1] == ' ') {
		version = 1;
		if (sscanf(line + 2, "%llu %llu", &uv, &next) != 2)
			version = 0;
	} else if (line[0] == '3' && line[1] == ' ') {
		version = 3;
		for (char *t = strtok(line + 2, " \r\n"); t != NULL;
		    t = strtok(NULL, " \r\n")) {
			if (t[0] == 'V')
				uv = strtoull(t + 1, NULL, 10);
			else if (t[0] == 'N')
				next = strtoull(t + 1, NULL, 10);
		}
	}
	if (version == 0 || uv == 0 || uv > UINT32_MAX || next > UINT32_MAX) {
		fclose(fp);
		return 0;
	}
	seed->uidvalidity = (uint32_t)uv;
	seed->uidnext = next > 0 ? (uint32_t)next : 1;
	while (fgets(line, sizeof(line), fp) != NULL) {
		char *end, *name;
		unsigned long long uid = strtoull(line, &end, 10);
		size_t len = strcspn(line, "\r\n");

		line[len] = '\0';
		if (end == line || uid == 0 || uid >= UINT32_MAX ||
		    *end != ' ')
			continue;
		if (version == 3) {
			if ((name = strstr(end, " :")) == NULL)
				continue;
			name += 2;
		} else {
			name = end + 1;
		}
		if (*name == '\0' || strchr(name, '/') != NULL ||
		    strchr(name, ' ') != NULL)
			continue;
		mindex_seed_add(seed, name, mindex_base_len(name),
		    (uint32_t)uid);
	}
	fclose(fp);
	mindex_seed_sort(seed);
	return 1;
}

/* a message whose record a sync rewrites */
struct mindex_change {
	struct mindex_msg m;
	bool to_cur;		/* the file is still in new/: move it */
};

/*
 * mindex_sync_txn - the sync, inside the write transaction txn (see
 * mindex.h). seed, if not NULL, gives UIDs for files the index does not
 * know (a rebuild); a folder without a record takes its UIDVALIDITY from
 * the seed or from dovecot-uidlist. -1 with why.
 */
int
mindex_sync_txn(struct mindex *ix, MDB_txn *txn, const struct mindex_fk *fk,
    const struct mindex_seed *seed_in, struct mindex_sync_result *r,
    struct buf *why)
{
	struct mindex_scan s = {0};
	struct mindex_seed own = {0};
	const struct mindex_seed *seed = seed_in;
	struct mindex_folder_rec f;
	struct mindex_change *ch = NULL;
	struct mindex_ent **fresh = NULL;
	uint32_t *gone = NULL;
	size_t nch = 0, ngone = 0, nfresh = 0, cap_ch = 0, cap_gone = 0;
	struct buf key = BUF_INIT, path = BUF_INIT, to = BUF_INIT;
	MDB_cursor *c = NULL;
	MDB_val k, v;
	uint64_t modseq;
	bool dirty = false;
	int rc = -1, got, mrc;

	memset(r, 0, sizeof(*r));
	if ((got = mindex_folder_get(ix, txn, fk, &f, why)) < 0)
		goto out;
	if (got == 0) {
		if (seed == NULL && mindex_uidlist(fk->dir, &own) == 1)
			seed = &own;
		memset(&f, 0, sizeof(f));
		f.uidnext = 1;
		f.highestmodseq = 1;
		if (seed != NULL && seed->uidvalidity != 0) {
			f.uidvalidity = seed->uidvalidity;
		} else if (mindex_new_uidvalidity(ix, txn, 0, &f.uidvalidity,
		    why) < 0) {
			goto out;
		}
		dirty = true;
	}
	if (seed != NULL && seed->uidnext > f.uidnext)
		f.uidnext = seed->uidnext;
	modseq = f.highestmodseq + 1;

	/* new/ before cur/: a file moving between them is seen at least
	 * once (if twice, the cur/ one wins) */
	if (mindex_scan_dir(fk->dir, "new", true, &s, why) < 0 ||
	    mindex_scan_dir(fk->dir, "cur", false, &s, why) < 0)
		goto out;
	qsort(s.v, s.n, sizeof(*s.v), mindex_cmp_base);
	for (size_t i = 1; i < s.n; i++)
		if (s.v[i].blen == s.v[i - 1].blen && memcmp(s.v[i].name,
		    s.v[i - 1].name, s.v[i].blen) == 0)
			s.v[i].matched = true;	/* duplicate: skip */

	/* the index against the files */
	if ((mrc = mdb_cursor_open(txn, ix->msgs, &c)) != 0) {
		mindex_mdb_error(why, mrc, "cursor");
		goto out;
	}
	mindex_uid_key(fk, 0, &key);
	k = mindex_val(&key);
	for (mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); mrc == 0;
	    mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		struct mindex_msg m;
		struct mindex_ent *e;
		uint32_t fl, kw;

		if (k.mv_size != fk->klen + 5 || memcmp(k.mv_data, fk->key,
		    fk->klen) != 0 || ((char *)k.mv_data)[fk->klen] != '\0')
			break;
		if (mindex_msg_decode(v.mv_data, v.mv_size, &m, why) < 0) {
			mindex_damaged(why, fk->name);
			goto out;
		}
		e = mindex_scan_find(&s, m.name, mindex_base_len(m.name));
		if (e == NULL) {
			if (ngone == cap_gone) {
				cap_gone = cap_gone ? 2 * cap_gone : 64;
				gone = xreallocarray(gone, cap_gone,
				    sizeof(*gone));
			}
			gone[ngone++] = m.uid;
			continue;
		}
		e->matched = true;
		if (!e->in_new && strcmp(e->name, m.name) == 0)
			continue;
		if (nch == cap_ch) {
			cap_ch = cap_ch ? 2 * cap_ch : 64;
			ch = xreallocarray(ch, cap_ch, sizeof(*ch));
		}
		if (e->in_new) {
			/* given its UID, crashed before the move: the
			 * record's flags stand */
			ch[nch].m = m;
			ch[nch].to_cur = true;
			snprintf(ch[nch].m.name, sizeof(m.name), "%s", e->name);
			nch++;
			continue;
		}
		mindex_flags_from_name(e->name, &fl, &kw);
		ch[nch].m = m;
		ch[nch].to_cur = false;
		snprintf(ch[nch].m.name, sizeof(m.name), "%s", e->name);
		if (fl != m.flags || kw != m.keywords) {
			ch[nch].m.flags = fl;
			ch[nch].m.keywords = kw;
			ch[nch].m.modseq = modseq;
			r->changed++;
		}
		nch++;
	}
	mdb_cursor_close(c);
	c = NULL;
	if (mrc != 0 && mrc != MDB_NOTFOUND) {
		mindex_mdb_error(why, mrc, "cursor");
		goto out;
	}

	/* expunged by someone else */
	for (size_t i = 0; i < ngone; i++) {
		struct mindex_msg m;

		if ((got = mindex_msg_get(ix, txn, fk, gone[i], &m, why)) < 0)
			goto out;
		if (got && mindex_msg_del(ix, txn, fk, &m, why) < 0)
			goto out;
	}
	if (ngone > 0) {
		qsort(gone, ngone, sizeof(*gone), mindex_cmp_uid);
		if (mindex_vanish(ix, txn, fk, gone, ngone, modseq, why) < 0)
			goto out;
		r->expunged = (uint32_t)ngone;
	}

	/* renamed by someone else, or left in new/ */
	for (size_t i = 0; i < nch; i++) {
		struct mindex_msg *m = &ch[i].m;

		if (ch[i].to_cur) {
			char name[MINDEX_NAME_MAX + 1];

			if (mindex_name_with_flags(m->name,
			    mindex_base_len(m->name), m->flags, m->keywords,
			    name, sizeof(name)) < 0)
				continue;
			buf_reset(&path);
			buf_reset(&to);
			buf_printf(&path, "%s/new/%s", fk->dir, m->name);
			buf_printf(&to, "%s/cur/%s", fk->dir, name);
			if (rename(buf_cstr(&path), buf_cstr(&to)) < 0)
				continue;	/* moved meanwhile */
			snprintf(m->name, sizeof(m->name), "%s", name);
		}
		if (mindex_msg_put(ix, txn, fk, m, why) < 0)
			goto out;
		dirty = true;
	}

	/* new files: UIDs in arrival order, seeded ones first */
	for (size_t i = 0; i < s.n; i++) {
		if (s.v[i].matched)
			continue;
		if (nfresh == 0)
			fresh = xcalloc(s.n, sizeof(*fresh));
		fresh[nfresh++] = &s.v[i];
	}
	if (nfresh > 0)
		qsort(fresh, nfresh, sizeof(*fresh), mindex_cmp_arrival);
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < nfresh; i++) {
			struct mindex_ent *e = fresh[i];
			struct mindex_msg m, old;
			uint32_t uid = mindex_seed_find(seed, e->name, e->blen);
			struct stat st;

			if (e->matched)
				continue;
			if (pass == 0) {
				/* a seeded UID, if still free */
				if (uid == 0 || uid >= f.uidnext)
					continue;
				if ((got = mindex_msg_get(ix, txn, fk, uid,
				    &old, why)) < 0)
					goto out;
				if (got)
					continue;
			} else {
				if (f.uidnext == UINT32_MAX) {
					buf_set(why, "UIDs used up: "
					    "reindex gives a new UIDVALIDITY");
					goto out;
				}
				uid = f.uidnext;
			}
			memset(&m, 0, sizeof(m));
			m.uid = uid;
			mindex_flags_from_name(e->name, &m.flags,
			    &m.keywords);
			if (mindex_name_with_flags(e->name, e->blen, m.flags,
			    m.keywords, m.name, sizeof(m.name)) < 0) {
				e->matched = true;
				continue;
			}
			buf_reset(&path);
			buf_printf(&path, "%s/cur/%s", fk->dir, e->in_new ?
			    m.name : e->name);
			if (e->in_new) {
				buf_reset(&to);
				buf_printf(&to, "%s/new/%s", fk->dir, e->name);
				if (rename(buf_cstr(&to), buf_cstr(&path)) <
				    0) {
					e->matched = true; /* moved meanwhile */
					continue;
				}
				mindex_point("sync:moved");
			} else {
				snprintf(m.name, sizeof(m.name), "%s", e->name);
			}
			if (lstat(buf_cstr(&path), &st) < 0 ||
			    !S_ISREG(st.st_mode) ||
			    mindex_file_sizes(buf_cstr(&path), m.name, &st,
			    &m.size, &m.wsize) < 0) {
				e->matched = true;
				continue;
			}
			m.internaldate = (int64_t)st.st_mtime;
			m.modseq = modseq;
			e->matched = true;
			if (mindex_msg_put(ix, txn, fk, &m, why) < 0)
				goto out;
			if (pass == 1)
				f.uidnext++;
			r->added++;
			dirty = true;
		}
	}
	if (r->added || r->expunged || r->changed)
		f.highestmodseq = modseq;
	if (dirty || r->added || r->expunged || r->changed) {
		if (mindex_folder_put(ix, txn, fk, &f, why) < 0)
			goto out;
	}
	mindex_point("sync:before-commit");
	rc = 0;
out:
	if (c != NULL)
		mdb_cursor_close(c);
	mindex_scan_free(&s);
	mindex_seed_free(&own);
	free(ch);
	free(gone);
	free(fresh);
	buf_free(&key);
	buf_free(&path);
	buf_free(&to);
	return rc;
}

/* mindex_folder_ready - the folder's Maildir exists (INBOX: made if
 * missing); -1 with why and errno ENOENT for a folder that is not there */
int
mindex_folder_ready(const struct mindex_fk *fk, struct buf *why)
{
	struct buf cur = BUF_INIT;
	struct stat st;
	int rc = 0;

	buf_printf(&cur, "%s/cur", fk->dir);
	if (stat(buf_cstr(&cur), &st) < 0 || !S_ISDIR(st.st_mode)) {
		if (strcmp(fk->key, ".") == 0) {
			rc = maildir_create(fk->dir, why);
		} else {
			buf_printf(why, "no folder \"%s\"", fk->name);
			errno = ENOENT;
			rc = -1;
		}
	}
	buf_free(&cur);
	return rc;
}

/* mindex_sync - see mindex.h */
int
mindex_sync(struct mindex *ix, const char *folder,
    struct mindex_sync_result *r, struct buf *why)
{
	struct mindex_sync_result dummy;
	struct mindex_fk fk;
	MDB_txn *txn;

	if (r == NULL)
		r = &dummy;
	if (mindex_fkey(ix, folder, &fk, why) < 0 ||
	    mindex_folder_ready(&fk, why) < 0)
		return -1;
	for (int tries = 0; tries < 4; tries++) {
		bool ok;

		if (mindex_begin(ix, true, &txn, why) < 0)
			return -1;
		ok = mindex_sync_txn(ix, txn, &fk, NULL, r, why) == 0;
		if (mindex_end(ix, txn, ok, why) == 0) {
			mindex_point("sync:committed");
			return 0;
		}
		if (strstr(buf_cstr(why), mdb_strerror(MDB_MAP_FULL)) == NULL)
			return -1;
		buf_reset(why);	/* the map grew: again */
	}
	return -1;
}

/* mindex_status - see mindex.h */
int
mindex_status(struct mindex *ix, const char *folder, struct mindex_status *st,
    struct buf *why)
{
	struct mindex_fk fk;
	struct mindex_folder_rec f;
	struct buf key = BUF_INIT;
	MDB_cursor *c = NULL;
	MDB_txn *txn;
	MDB_val k, v;
	int rc = -1, got, mrc;

	memset(st, 0, sizeof(*st));
	if (mindex_fkey(ix, folder, &fk, why) < 0 ||
	    mindex_begin(ix, false, &txn, why) < 0)
		return -1;
	if ((got = mindex_folder_get(ix, txn, &fk, &f, why)) <= 0) {
		if (got == 0)
			buf_printf(why, "folder \"%s\" is not indexed "
			    "(sync it first)", folder);
		goto out;
	}
	st->uidvalidity = f.uidvalidity;
	st->uidnext = f.uidnext;
	st->highestmodseq = f.highestmodseq;
	if ((mrc = mdb_cursor_open(txn, ix->msgs, &c)) != 0) {
		mindex_mdb_error(why, mrc, "cursor");
		goto out;
	}
	mindex_uid_key(&fk, 0, &key);
	k = mindex_val(&key);
	for (mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); mrc == 0;
	    mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		struct mindex_msg m;

		if (k.mv_size != fk.klen + 5 || memcmp(k.mv_data, fk.key,
		    fk.klen + 1) != 0)
			break;
		if (mindex_msg_decode(v.mv_data, v.mv_size, &m, why) < 0) {
			mindex_damaged(why, folder);
			goto out;
		}
		st->messages++;
		if (!(m.flags & MINDEX_F_SEEN))
			st->unseen++;
		if (m.flags & MINDEX_F_DELETED)
			st->deleted++;
		st->size += m.wsize;
	}
	rc = 0;
out:
	if (c != NULL)
		mdb_cursor_close(c);
	buf_free(&key);
	(void)mindex_end(ix, txn, false, why);
	return rc;
}

/* mindex_list - see mindex.h */
int
mindex_list(struct mindex *ix, const char *folder, uint32_t lo, uint32_t hi,
    mindex_msg_fn *fn, void *ctx, struct buf *why)
{
	struct mindex_fk fk;
	struct buf key = BUF_INIT;
	MDB_cursor *c = NULL;
	MDB_txn *txn;
	MDB_val k, v;
	int rc = -1, mrc;

	if (mindex_fkey(ix, folder, &fk, why) < 0 ||
	    mindex_begin(ix, false, &txn, why) < 0)
		return -1;
	if ((mrc = mdb_cursor_open(txn, ix->msgs, &c)) != 0) {
		mindex_mdb_error(why, mrc, "cursor");
		goto out;
	}
	mindex_uid_key(&fk, lo, &key);
	k = mindex_val(&key);
	for (mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); mrc == 0;
	    mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		struct mindex_msg m;

		if (k.mv_size != fk.klen + 5 || memcmp(k.mv_data, fk.key,
		    fk.klen + 1) != 0)
			break;
		if (mindex_msg_decode(v.mv_data, v.mv_size, &m, why) < 0) {
			mindex_damaged(why, folder);
			goto out;
		}
		if (m.uid > hi || fn(&m, ctx) != 0)
			break;
	}
	rc = 0;
out:
	if (c != NULL)
		mdb_cursor_close(c);
	buf_free(&key);
	(void)mindex_end(ix, txn, false, why);
	return rc;
}

/* mindex_get - see mindex.h */
int
mindex_get(struct mindex *ix, const char *folder, uint32_t uid,
    struct mindex_msg *m, struct buf *why)
{
	struct mindex_fk fk;
	MDB_txn *txn;
	int got;

	if (mindex_fkey(ix, folder, &fk, why) < 0 ||
	    mindex_begin(ix, false, &txn, why) < 0)
		return -1;
	got = mindex_msg_get(ix, txn, &fk, uid, m, why);
	(void)mindex_end(ix, txn, false, why);
	return got;
}

/* mindex_store - see mindex.h */
int
mindex_store(struct mindex *ix, const char *folder, uint32_t uid,
    enum mindex_store_mode mode, uint32_t flags, const char *const *kw,
    size_t nkw, uint64_t unchangedsince, struct mindex_msg *m_r,
    struct buf *why)
{
	struct mindex_fk fk;
	struct mindex_folder_rec f;
	struct mindex_msg m;
	struct buf from = BUF_INIT, to = BUF_INIT;
	char name[MINDEX_NAME_MAX + 1];
	uint32_t kbits = 0, nf, nk;
	MDB_txn *txn;
	int rc = -1, got;

	if (flags & ~MINDEX_F_ALL) {
		buf_set(why, "unknown flag bits");
		return -1;
	}
	if (mindex_fkey(ix, folder, &fk, why) < 0 ||
	    mindex_begin(ix, true, &txn, why) < 0)
		return -1;
	if ((got = mindex_folder_get(ix, txn, &fk, &f, why)) <= 0 ||
	    (got = mindex_msg_get(ix, txn, &fk, uid, &m, why)) <= 0) {
		rc = got;
		goto out;
	}
	if (unchangedsince != 0 && m.modseq > unchangedsince) {
		rc = 2;
		goto out;
	}
	if (nkw > 0 && mindex_keyword_bits(&fk, kw, nkw, mode != MINDEX_REMOVE,
	    &kbits, why) < 0)
		goto out;
	switch (mode) {
	case MINDEX_SET:
		nf = flags;
		nk = kbits;
		break;
	case MINDEX_ADD:
		nf = m.flags | flags;
		nk = m.keywords | kbits;
		break;
	default:
		nf = m.flags & ~flags;
		nk = m.keywords & ~kbits;
		break;
	}
	if (nf == m.flags && nk == m.keywords) {
		rc = 0;
		goto out;
	}
	if (mindex_name_with_flags(m.name, mindex_base_len(m.name), nf, nk,
	    name, sizeof(name)) < 0) {
		buf_set(why, "file name too long for these flags");
		goto out;
	}
	buf_printf(&from, "%s/cur/%s", fk.dir, m.name);
	buf_printf(&to, "%s/cur/%s", fk.dir, name);
	if (rename(buf_cstr(&from), buf_cstr(&to)) < 0) {
		if (errno == ENOENT) {
			rc = 0;	/* changed by another tool: a sync sees it */
			goto out;
		}
		buf_printf(why, "rename %s: %s", buf_cstr(&from),
		    strerror(errno));
		goto out;
	}
	mindex_point("store:renamed");
	snprintf(m.name, sizeof(m.name), "%s", name);
	m.flags = nf;
	m.keywords = nk;
	m.modseq = ++f.highestmodseq;
	if (mindex_msg_put(ix, txn, &fk, &m, why) < 0 ||
	    mindex_folder_put(ix, txn, &fk, &f, why) < 0)
		goto out;
	if (m_r != NULL)
		*m_r = m;
	rc = 1;
out:
	buf_free(&from);
	buf_free(&to);
	if (mindex_end(ix, txn, rc == 1, why) < 0 && rc == 1)
		rc = -1;
	return rc;
}

/* mindex_expunge_txn - expunge inside txn: uids[0..n) or, uids NULL,
 * every \Deleted message; -1 with why */
static int
mindex_expunge_txn(struct mindex *ix, MDB_txn *txn, const struct mindex_fk *fk,
    const uint32_t *uids, size_t n, uint32_t *count_r, struct buf *why)
{
	struct mindex_folder_rec f;
	struct buf key = BUF_INIT, path = BUF_INIT;
	uint32_t *gone = NULL;
	size_t ngone = 0, cap = 0;
	MDB_cursor *c = NULL;
	MDB_val k, v;
	int rc = -1, got, mrc;

	if (count_r != NULL)
		*count_r = 0;
	if ((got = mindex_folder_get(ix, txn, fk, &f, why)) <= 0) {
		if (got == 0)
			buf_printf(why, "folder \"%s\" is not indexed",
			    fk->name);
		goto out;
	}
	if (uids == NULL) {
		if ((mrc = mdb_cursor_open(txn, ix->msgs, &c)) != 0) {
			mindex_mdb_error(why, mrc, "cursor");
			goto out;
		}
		mindex_uid_key(fk, 0, &key);
		k = mindex_val(&key);
		for (mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); mrc == 0;
		    mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
			struct mindex_msg m;

			if (k.mv_size != fk->klen + 5 || memcmp(k.mv_data,
			    fk->key, fk->klen + 1) != 0)
				break;
			if (mindex_msg_decode(v.mv_data, v.mv_size, &m,
			    why) < 0) {
				mindex_damaged(why, fk->name);
				goto out;
			}
			if (!(m.flags & MINDEX_F_DELETED))
				continue;
			if (ngone == cap) {
				cap = cap ? 2 * cap : 64;
				gone = xreallocarray(gone, cap, sizeof(*gone));
			}
			gone[ngone++] = m.uid;
		}
		mdb_cursor_close(c);
		c = NULL;
	} else {
		gone = xcalloc(n ? n : 1, sizeof(*gone));
		memcpy(gone, uids, n * sizeof(*gone));
		ngone = n;
	}
	qsort(gone, ngone, sizeof(*gone), mindex_cmp_uid);
	n = 0;
	for (size_t i = 0; i < ngone; i++) {
		struct mindex_msg m;

		if (i > 0 && gone[i] == gone[i - 1])
			continue;
		if ((got = mindex_msg_get(ix, txn, fk, gone[i], &m, why)) < 0)
			goto out;
		if (got == 0)
			continue;
		buf_reset(&path);
		buf_printf(&path, "%s/cur/%s", fk->dir, m.name);
		if (unlink(buf_cstr(&path)) < 0 && errno != ENOENT) {
			buf_printf(why, "unlink %s: %s", buf_cstr(&path),
			    strerror(errno));
			goto out;
		}
		mindex_point("expunge:unlinked");
		if (mindex_msg_del(ix, txn, fk, &m, why) < 0)
			goto out;
		gone[n++] = m.uid;
	}
	if (n > 0) {
		buf_reset(&path);
		buf_printf(&path, "%s/cur", fk->dir);
		if (mindex_fsync_dir(buf_cstr(&path), why) < 0)
			goto out;
		f.highestmodseq++;
		if (mindex_vanish(ix, txn, fk, gone, n, f.highestmodseq,
		    why) < 0 || mindex_folder_put(ix, txn, fk, &f, why) < 0)
			goto out;
	}
	if (count_r != NULL)
		*count_r = (uint32_t)n;
	rc = 0;
out:
	if (c != NULL)
		mdb_cursor_close(c);
	free(gone);
	buf_free(&key);
	buf_free(&path);
	return rc;
}

/* mindex_expunge - see mindex.h */
int
mindex_expunge(struct mindex *ix, const char *folder, const uint32_t *uids,
    size_t n, uint32_t *count_r, struct buf *why)
{
	struct mindex_fk fk;
	MDB_txn *txn;
	bool ok;

	if (mindex_fkey(ix, folder, &fk, why) < 0 ||
	    mindex_begin(ix, true, &txn, why) < 0)
		return -1;
	ok = mindex_expunge_txn(ix, txn, &fk, uids, n, count_r, why) == 0;
	return mindex_end(ix, txn, ok, why);
}

/* mindex_vanished - see mindex.h */
int
mindex_vanished(struct mindex *ix, const char *folder, uint64_t since,
    mindex_vanished_fn *fn, void *ctx, struct buf *why)
{
	struct mindex_fk fk;
	struct buf key = BUF_INIT;
	unsigned char t[8];
	MDB_cursor *c = NULL;
	MDB_txn *txn;
	MDB_val k, v;
	int rc = -1, mrc;

	if (mindex_fkey(ix, folder, &fk, why) < 0 ||
	    mindex_begin(ix, false, &txn, why) < 0)
		return -1;
	if ((mrc = mdb_cursor_open(txn, ix->expunged, &c)) != 0) {
		mindex_mdb_error(why, mrc, "cursor");
		goto out;
	}
	mindex_put64(t, since + 1);
	mindex_key(&fk, t, sizeof(t), &key);
	k = mindex_val(&key);
	for (mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); mrc == 0;
	    mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		const unsigned char *p = k.mv_data;

		if (k.mv_size != fk.klen + 13 || memcmp(p, fk.key,
		    fk.klen + 1) != 0)
			break;
		if (v.mv_size != 4) {
			mindex_damaged(why, folder);
			goto out;
		}
		fn(mindex_get32(p + fk.klen + 9), mindex_get32(v.mv_data),
		    mindex_get64(p + fk.klen + 1), ctx);
	}
	rc = 0;
out:
	if (c != NULL)
		mdb_cursor_close(c);
	buf_free(&key);
	(void)mindex_end(ix, txn, false, why);
	return rc;
}

/* mindex_append - see mindex.h */
int
mindex_append(struct mindex *ix, const char *folder, int fd, off_t size,
    uint32_t flags, const char *const *kw, size_t nkw, int64_t internaldate,
    uint32_t *uid_r, uint32_t *uidvalidity_r, struct buf *why)
{
	struct mindex_fk fk;
	struct mindex_folder_rec f;
	struct mindex_sync_result sr;
	struct mindex_msg m;
	struct buf name = BUF_INIT, from = BUF_INIT, to = BUF_INIT;
	struct buf key = BUF_INIT;
	struct stat st;
	uint32_t kbits = 0;
	MDB_txn *txn;
	MDB_val k, v;
	int rc = -1, got, mrc;

	if (flags & ~MINDEX_F_ALL) {
		buf_set(why, "unknown flag bits");
		return -1;
	}
	if (mindex_fkey(ix, folder, &fk, why) < 0 ||
	    mindex_folder_ready(&fk, why) < 0)
		return -1;
	if (maildir_deliver(fk.dir, "", 0, fd, 0, size, &name, why) < 0)
		return -1;
	buf_printf(&from, "%s/new/%s", fk.dir, buf_cstr(&name));
	if (internaldate > 0) {
		struct timespec ts[2] = {{internaldate, 0}, {internaldate, 0}};

		(void)utimensat(AT_FDCWD, buf_cstr(&from), ts,
		    AT_SYMLINK_NOFOLLOW);
	}
	mindex_point("append:delivered");
	if (mindex_begin(ix, true, &txn, why) < 0)
		goto out_nolock;
	if ((got = mindex_folder_get(ix, txn, &fk, &f, why)) < 0)
		goto out;
	if (got == 0) {
		/* first use of the folder: index what is there (the new
		 * file among it) */
		if (mindex_sync_txn(ix, txn, &fk, NULL, &sr, why) < 0 ||
		    mindex_folder_get(ix, txn, &fk, &f, why) <= 0)
			goto out;
	}
	if (nkw > 0 && mindex_keyword_bits(&fk, kw, nkw, true, &kbits,
	    why) < 0)
		goto out;
	mindex_key(&fk, buf_cstr(&name), mindex_base_len(buf_cstr(&name)),
	    &key);
	k = mindex_val(&key);
	if ((mrc = mdb_get(txn, ix->names, &k, &v)) == 0 && v.mv_size == 4) {
		/* a sync got to it first: set the flags on that UID */
		if ((got = mindex_msg_get(ix, txn, &fk, mindex_get32(
		    v.mv_data), &m, why)) <= 0) {
			if (got == 0)
				buf_set(why, "appended message vanished");
			goto out;
		}
		buf_reset(&from);
		buf_printf(&from, "%s/cur/%s", fk.dir, m.name);
	} else if (mrc != 0 && mrc != MDB_NOTFOUND) {
		mindex_mdb_error(why, mrc, "names");
		goto out;
	} else {
		memset(&m, 0, sizeof(m));
		m.uid = f.uidnext++;
		snprintf(m.name, sizeof(m.name), "%s", buf_cstr(&name));
	}
	if (mindex_name_with_flags(m.name, mindex_base_len(m.name), flags,
	    kbits, m.name, sizeof(m.name)) < 0) {
		buf_set(why, "file name too long");
		goto out;
	}
	buf_printf(&to, "%s/cur/%s", fk.dir, m.name);
	if (strcmp(buf_cstr(&from), buf_cstr(&to)) != 0 &&
	    rename(buf_cstr(&from), buf_cstr(&to)) < 0) {
		buf_printf(why, "rename %s: %s", buf_cstr(&from),
		    strerror(errno));
		goto out;
	}
	mindex_point("append:moved");
	if (lstat(buf_cstr(&to), &st) < 0 || mindex_file_sizes(buf_cstr(&to),
	    m.name, &st, &m.size, &m.wsize) < 0) {
		buf_printf(why, "stat %s: %s", buf_cstr(&to), strerror(errno));
		goto out;
	}
	m.flags = flags;
	m.keywords = kbits;
	m.internaldate = (int64_t)st.st_mtime;
	m.modseq = ++f.highestmodseq;
	if (mindex_msg_put(ix, txn, &fk, &m, why) < 0 ||
	    mindex_folder_put(ix, txn, &fk, &f, why) < 0)
		goto out;
	rc = 0;
out:
	if (mindex_end(ix, txn, rc == 0, why) < 0)
		rc = -1;
	if (rc == 0) {
		mindex_point("append:committed");
		if (uid_r != NULL)
			*uid_r = m.uid;
		if (uidvalidity_r != NULL)
			*uidvalidity_r = f.uidvalidity;
	}
out_nolock:
	buf_free(&name);
	buf_free(&from);
	buf_free(&to);
	buf_free(&key);
	return rc;
}

/* mindex_copy_file - copy the file at from to the new file to (written,
 * synced, then linked: a crash leaves no half file); -1 with errno */
static int
mindex_copy_file(const char *from, const char *dir, const char *to)
{
	struct buf tmpb = BUF_INIT;
	char data[65536];
	const char *tmp;
	ssize_t n;
	int in, out, rc = -1, e;

	buf_printf(&tmpb, "%s/tmp/copy.%ld.%lld", dir, (long)getpid(),
	    (long long)time(NULL));
	tmp = buf_cstr(&tmpb);
	if ((in = open(from, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		buf_free(&tmpb);
		return -1;
	}
	if ((out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) < 0) {
		e = errno;
		close(in);
		buf_free(&tmpb);
		errno = e;
		return -1;
	}
	while ((n = read(in, data, sizeof(data))) > 0) {
		char *p = data;

		while (n > 0) {
			ssize_t w = write(out, p, (size_t)n);

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				goto out;
			p += w;
			n -= w;
		}
	}
	if (n == 0 && fsync(out) == 0 && link(tmp, to) == 0)
		rc = 0;
out:
	e = errno;
	close(in);
	close(out);
	(void)unlink(tmp);
	buf_free(&tmpb);
	errno = e;
	return rc;
}

/* mindex_copy - see mindex.h */
int
mindex_copy(struct mindex *ix, const char *src, const char *dst,
    const uint32_t *uids, size_t n, bool move, uint32_t *dst_uids,
    uint32_t *uidvalidity_r, struct buf *why)
{
	static unsigned counter;
	struct mindex_fk sk, dk;
	struct mindex_folder_rec f;
	struct mindex_sync_result sr;
	struct buf from = BUF_INIT, to = BUF_INIT, dir = BUF_INIT;
	struct buf snames = BUF_INIT;
	char host[64];
	uint32_t *moved = NULL;
	size_t nmoved = 0;
	MDB_txn *txn;
	struct timespec now;
	int rc = -1, got;

	if (mindex_fkey(ix, src, &sk, why) < 0 ||
	    mindex_fkey(ix, dst, &dk, why) < 0 ||
	    mindex_folder_ready(&dk, why) < 0)
		return -1;
	if (move && strcmp(sk.key, dk.key) == 0) {
		buf_set(why, "cannot move a folder's messages into itself");
		return -1;
	}
	if (gethostname(host, sizeof(host)) < 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	for (char *p = host; *p; p++)
		if (*p == '/' || *p == ':' || *p == '.')
			*p = '_';
	if (mindex_begin(ix, true, &txn, why) < 0)
		return -1;
	if ((got = mindex_folder_get(ix, txn, &dk, &f, why)) < 0)
		goto out;
	if (got == 0 && (mindex_sync_txn(ix, txn, &dk, NULL, &sr, why) < 0 ||
	    mindex_folder_get(ix, txn, &dk, &f, why) <= 0))
		goto out;
	if (mindex_keyword_names(&sk, &snames, why) < 0)
		goto out;
	moved = xcalloc(n ? n : 1, sizeof(*moved));
	clock_gettime(CLOCK_REALTIME, &now);
	for (size_t i = 0; i < n; i++) {
		struct mindex_msg m;
		char base[MINDEX_NAME_MAX + 1];
		uint32_t kbits = 0;

		dst_uids[i] = 0;
		if ((got = mindex_msg_get(ix, txn, &sk, uids[i], &m, why)) < 0)
			goto out;
		if (got == 0)
			continue;
		if (m.keywords != 0 && mindex_keyword_map(&sk, &snames, &dk,
		    m.keywords, &kbits, why) < 0)
			goto out;
		snprintf(base, sizeof(base), "%lld.M%ldP%ldC%u.%s,S=%llu,"
		    "W=%llu", (long long)now.tv_sec, now.tv_nsec / 1000,
		    (long)getpid(), counter++, host,
		    (unsigned long long)m.size, (unsigned long long)m.wsize);
		buf_reset(&from);
		buf_printf(&from, "%s/cur/%s", sk.dir, m.name);
		m.keywords = kbits;
		if (mindex_name_with_flags(base, strlen(base), m.flags,
		    m.keywords, m.name, sizeof(m.name)) < 0) {
			buf_set(why, "file name too long");
			goto out;
		}
		buf_reset(&to);
		buf_printf(&to, "%s/cur/%s", dk.dir, m.name);
		if (link(buf_cstr(&from), buf_cstr(&to)) < 0 &&
		    mindex_copy_file(buf_cstr(&from), dk.dir,
		    buf_cstr(&to)) < 0) {
			if (errno == ENOENT)
				continue;	/* gone meanwhile */
			buf_printf(why, "copy %s: %s", buf_cstr(&from),
			    strerror(errno));
			goto out;
		}
		mindex_point("copy:linked");
		moved[nmoved++] = uids[i];
		m.uid = f.uidnext++;
		m.modseq = f.highestmodseq + 1;
		dst_uids[i] = m.uid;
		if (mindex_msg_put(ix, txn, &dk, &m, why) < 0)
			goto out;
	}
	if (nmoved > 0) {
		f.highestmodseq++;
		buf_printf(&dir, "%s/cur", dk.dir);
		if (mindex_fsync_dir(buf_cstr(&dir), why) < 0 ||
		    mindex_folder_put(ix, txn, &dk, &f, why) < 0)
			goto out;
		mindex_point("copy:synced");
		if (move && mindex_expunge_txn(ix, txn, &sk, moved, nmoved,
		    NULL, why) < 0)
			goto out;
	}
	if (uidvalidity_r != NULL)
		*uidvalidity_r = f.uidvalidity;
	rc = 0;
out:
	if (mindex_end(ix, txn, rc == 0, why) < 0)
		rc = -1;
	free(moved);
	buf_free(&from);
	buf_free(&to);
	buf_free(&dir);
	buf_free(&snames);
	return rc;
}

/* mindex_cache_put - see mindex.h */
int
mindex_cache_put(struct mindex *ix, const char *folder, uint32_t uid,
    uint8_t kind, const void *data, size_t len, struct buf *why)
{
	struct mindex_fk fk;
	struct mindex_msg m;
	struct buf key = BUF_INIT;
	unsigned char t[5];
	MDB_txn *txn;
	MDB_val k, v;
	int rc = -1, got, mrc;

	if (len > MINDEX_CACHE_MAX) {
		buf_set(why, "cache blob too large");
		return -1;
	}
	if (mindex_fkey(ix, folder, &fk, why) < 0 ||
	    mindex_begin(ix, true, &txn, why) < 0)
		return -1;
	/* only for a message the index holds: an expunged one's blob
	 * would stay forever */
	if ((got = mindex_msg_get(ix, txn, &fk, uid, &m, why)) <= 0) {
		if (got == 0)
			buf_printf(why, "no message %u", uid);
		goto out;
	}
	mindex_put32(t, uid);
	t[4] = kind;
	mindex_key(&fk, t, sizeof(t), &key);
	k = mindex_val(&key);
	v = (MDB_val){len, (void *)data};
	if ((mrc = mdb_put(txn, ix->cache, &k, &v, 0)) != 0) {
		mindex_mdb_error(why, mrc, "cache");
		goto out;
	}
	rc = 0;
out:
	buf_free(&key);
	if (mindex_end(ix, txn, rc == 0, why) < 0)
		rc = -1;
	return rc;
}

/* mindex_cache_get - see mindex.h */
int
mindex_cache_get(struct mindex *ix, const char *folder, uint32_t uid,
    uint8_t kind, struct buf *out, struct buf *why)
{
	struct mindex_fk fk;
	struct buf key = BUF_INIT;
	unsigned char t[5];
	MDB_txn *txn;
	MDB_val k, v;
	int rc = -1, mrc;

	if (mindex_fkey(ix, folder, &fk, why) < 0 ||
	    mindex_begin(ix, false, &txn, why) < 0)
		return -1;
	mindex_put32(t, uid);
	t[4] = kind;
	mindex_key(&fk, t, sizeof(t), &key);
	k = mindex_val(&key);
	if ((mrc = mdb_get(txn, ix->cache, &k, &v)) == 0) {
		buf_append(out, v.mv_data, v.mv_size);
		rc = 1;
	} else if (mrc == MDB_NOTFOUND) {
		rc = 0;
	} else {
		mindex_mdb_error(why, mrc, "cache");
	}
	buf_free(&key);
	(void)mindex_end(ix, txn, false, why);
	return rc;
}

/* mindex_reindex - see mindex.h */
int
mindex_reindex(const char *path, struct buf *why)
{
	struct mindex *ix;
	struct buf names = BUF_INIT;
	MDB_txn *txn;
	int rc = -1;

	if (mindex_open(path, &ix, why) < 0)
		return -1;
	if (mindex_folder_names(ix, &names, why) < 0)
		goto out;
	if (mindex_begin(ix, true, &txn, why) < 0)
		goto out;
	rc = 0;
	for (const char *p = names.data; rc == 0 && p < names.data +
	    names.len; p += strlen(p) + 1)
		rc = mindex_rebuild_folder(ix, txn, p, why);
	if (rc == 0)
		rc = mindex_drop_stale(ix, txn, &names, why);
	if (mindex_end(ix, txn, rc == 0, why) < 0)
		rc = -1;
out:
	buf_free(&names);
	mindex_close(&ix);
	return rc;
}

/* mindex_rebuild_folder - rebuild one folder inside txn, keeping the
 * UIDs its old records give for files still there */
int
mindex_rebuild_folder(struct mindex *ix, MDB_txn *txn, const char *folder,
    struct buf *why)
{
	struct mindex_fk fk;
	struct mindex_folder_rec f;
	struct mindex_seed seed = {0};
	struct mindex_sync_result sr;
	struct buf key = BUF_INIT;
	MDB_cursor *c = NULL;
	MDB_val k, v;
	int rc = -1, got, mrc;

	if (mindex_fkey(ix, folder, &fk, why) < 0 ||
	    mindex_folder_ready(&fk, why) < 0)
		return -1;
	if ((got = mindex_folder_get(ix, txn, &fk, &f, why)) < 0) {
		/* a damaged folder record: start it afresh from the
		 * Maildir and dovecot-uidlist */
		buf_reset(why);
		got = 0;
	}
	if (got == 1) {
		seed.uidvalidity = f.uidvalidity;
		seed.uidnext = f.uidnext;
		if ((mrc = mdb_cursor_open(txn, ix->msgs, &c)) != 0) {
			mindex_mdb_error(why, mrc, "cursor");
			goto out;
		}
		mindex_uid_key(&fk, 0, &key);
		k = mindex_val(&key);
		for (mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); mrc == 0;
		    mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
			struct mindex_msg m;

			if (k.mv_size != fk.klen + 5 || memcmp(k.mv_data,
			    fk.key, fk.klen + 1) != 0)
				break;
			if (mindex_msg_decode(v.mv_data, v.mv_size, &m,
			    why) < 0) {
				buf_reset(why);	/* damaged: skip it */
				continue;
			}
			if (m.uid < f.uidnext)
				mindex_seed_add(&seed, m.name,
				    mindex_base_len(m.name), m.uid);
		}
		mdb_cursor_close(c);
		c = NULL;
		mindex_seed_sort(&seed);
	}
	/* drop the folder's records; expunged ranges stay (QRESYNC) */
	mindex_key(&fk, "", 0, &key);
	if (mindex_del_prefix(txn, ix->msgs, key.data, key.len, why) < 0 ||
	    mindex_del_prefix(txn, ix->names, key.data, key.len, why) < 0 ||
	    mindex_del_prefix(txn, ix->cache, key.data, key.len, why) < 0)
		goto out;
	if (got == 1) {
		/* keep UIDVALIDITY; a new modseq for every message */
		f.highestmodseq++;
		if (mindex_folder_put(ix, txn, &fk, &f, why) < 0)
			goto out;
	} else {
		k = (MDB_val){fk.klen, fk.key};
		(void)mdb_del(txn, ix->folders, &k, NULL);
	}
	rc = mindex_sync_txn(ix, txn, &fk, got == 1 ? &seed : NULL, &sr, why);
out:
	if (c != NULL)
		mdb_cursor_close(c);
	mindex_seed_free(&seed);
	buf_free(&key);
	return rc;
}
