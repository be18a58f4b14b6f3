/*
 * mindex_msg - changing messages through the index: store (flags and
 * keywords in the ":2," file name), expunge, append and copy/move. Each
 * changes the files first and commits the index after, so a crash
 * between leaves work for the next sync, never a reused UID.
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

/*
 * mindex_store_rename - rename a message's file from (a file in new/:
 * else from alt, if not NULL, where another tool moving it to cur/ leaves
 * it) to its new name to. ENOENT with to there: a try whose commit failed
 * renamed it already (0). -1 with errno (ENOENT: another tool renamed it,
 * which the next sync sees).
 */
static int
mindex_store_rename(const char *dir, const struct buf *from,
    const struct mindex_msg *alt, const struct buf *to)
{
	struct buf other = BUF_INIT;
	int rc;

	if (rename(buf_cstr(from), buf_cstr(to)) == 0)
		return 0;
	if (errno != ENOENT)
		return -1;
	if (access(buf_cstr(to), F_OK) == 0)
		return 0;
	if (alt == NULL) {
		errno = ENOENT;
		return -1;
	}
	mindex_msg_path(dir, alt, &other);
	rc = rename(buf_cstr(&other), buf_cstr(to)) == 0 ||
	    (errno == ENOENT && access(buf_cstr(to), F_OK) == 0) ? 0 : -1;
	if (rc < 0)
		rc = errno;
	buf_free(&other);
	if (rc == 0)
		return 0;
	errno = rc;
	return -1;
}

/* mindex_store_once - mindex_store, one try */
static int
mindex_store_once(struct mindex *ix, const char *folder, uint32_t uid,
    enum mindex_store_mode mode, uint32_t flags, const char *const *kw,
    size_t nkw, uint64_t unchangedsince, struct mindex_msg *m_r,
    struct buf *why)
{
	struct mindex_fk fk;
	struct mindex_folder_rec f;
	struct mindex_msg m, alt;
	struct buf from = BUF_INIT, to = BUF_INIT;
	char name[MINDEX_NAME_MAX + 1];
	uint32_t kbits = 0, nf, nk;
	MDB_txn *txn;
	bool alt_ok;
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
	/* a file in new/ moves to cur/ with its first flag */
	mindex_msg_path(fk.dir, &m, &from);
	alt_ok = mindex_msg_moved(&m, &alt) == 0;
	snprintf(m.name, sizeof(m.name), "%s", name);
	m.in_new = false;
	mindex_msg_path(fk.dir, &m, &to);
	/* the records first: a full map fails here, before the file
	 * changes, and the whole store can be tried again */
	m.flags = nf;
	m.keywords = nk;
	m.modseq = ++f.highestmodseq;
	if (mindex_msg_put(ix, txn, &fk, &m, why) < 0 ||
	    mindex_folder_put(ix, txn, &fk, &f, why) < 0)
		goto out;
	if (mindex_store_rename(fk.dir, &from, alt_ok ? &alt : NULL,
	    &to) < 0) {
		if (errno == ENOENT) {
			rc = 0;	/* another tool's rename: sync sees it */
			goto out;
		}
		buf_printf(why, "rename %s: %s", buf_cstr(&from),
		    strerror(errno));
		goto out;
	}
	mindex_point("store:renamed");
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

/* mindex_store - see mindex.h */
int
mindex_store(struct mindex *ix, const char *folder, uint32_t uid,
    enum mindex_store_mode mode, uint32_t flags, const char *const *kw,
    size_t nkw, uint64_t unchangedsince, struct mindex_msg *m_r,
    struct buf *why)
{
	int rc;

	for (int tries = 0;; tries++) {
		rc = mindex_store_once(ix, folder, uid, mode, flags, kw, nkw,
		    unchangedsince, m_r, why);
		if (rc >= 0 || tries + 1 >= MINDEX_TRIES ||
		    !mindex_map_full(why))
			return rc;
		buf_reset(why);
	}
}

/*
 * mindex_store_uids_once - mindex_store_uids, one try. Per message the
 * file is renamed first and the record written after; a try that fails
 * (a full map) has renamed some files without committing: the next try
 * finds them renamed (ENOENT with the new name there) and goes on, and
 * should every try fail, the next sync takes them as flag changes.
 */
static int
mindex_store_uids_once(struct mindex *ix, const char *folder,
    const uint32_t *uids, size_t n, enum mindex_store_mode mode,
    uint32_t flags, const char *const *kw, size_t nkw,
    uint64_t unchangedsince, int *rc_r, struct mindex_msg *m_r,
    struct mindex_own *own, struct buf *why)
{
	struct mindex_fk fk;
	struct mindex_folder_rec f;
	struct mindex_msg m, alt;
	struct buf from = BUF_INIT, to = BUF_INIT;
	char name[MINDEX_NAME_MAX + 1];
	uint32_t kbits = 0, nf, nk, nchanged = 0;
	bool changed = false, alt_ok, left_new = false;
	MDB_txn *txn;
	int rc = -1, got;

	for (size_t i = 0; i < n; i++)
		rc_r[i] = 0;
	if (mindex_fkey(ix, folder, &fk, why) < 0)
		return -1;
	own = mindex_own_of(ix, own, &fk);
	if (mindex_begin(ix, true, &txn, why) < 0)
		return -1;
	if ((got = mindex_folder_get(ix, txn, &fk, &f, why)) <= 0) {
		rc = got;	/* not indexed: nothing to change */
		goto out;
	}
	if (nkw > 0 && mindex_keyword_bits(&fk, kw, nkw, mode != MINDEX_REMOVE,
	    &kbits, why) < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		if ((got = mindex_msg_get(ix, txn, &fk, uids[i], &m,
		    why)) < 0)
			goto out;
		if (got == 0)
			continue;
		if (unchangedsince != 0 && m.modseq > unchangedsince) {
			rc_r[i] = 2;
			continue;
		}
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
		if (nf == m.flags && nk == m.keywords)
			continue;
		if (mindex_name_with_flags(m.name, mindex_base_len(m.name), nf,
		    nk, name, sizeof(name)) < 0) {
			buf_set(why, "file name too long for these flags");
			goto out;
		}
		/* a file in new/ moves to cur/ with its first flag */
		mindex_msg_path(fk.dir, &m, &from);
		alt_ok = mindex_msg_moved(&m, &alt) == 0;
		snprintf(m.name, sizeof(m.name), "%s", name);
		if (m.in_new) {
			mindex_own_new(own, &fk, true);
			left_new = true;
		}
		m.in_new = false;
		mindex_msg_path(fk.dir, &m, &to);
		/* ENOENT: another tool's rename, which sync sees */
		if (mindex_store_rename(fk.dir, &from, alt_ok ? &alt : NULL,
		    &to) < 0) {
			if (errno == ENOENT)
				continue;
			buf_printf(why, "rename %s: %s", buf_cstr(&from),
			    strerror(errno));
			goto out;
		}
		mindex_point("storeuids:renamed");
		m.flags = nf;
		m.keywords = nk;
		m.modseq = ++f.highestmodseq;
		if (mindex_msg_put(ix, txn, &fk, &m, why) < 0)
			goto out;
		if (m_r != NULL)
			m_r[i] = m;
		rc_r[i] = 1;
		changed = true;
		nchanged++;
	}
	if (left_new)
		mindex_own_new(own, &fk, false);
	if (changed && mindex_folder_put(ix, txn, &fk, &f, why) < 0)
		goto out;
	mindex_point("storeuids:before-commit");
	rc = 0;
out:
	buf_free(&from);
	buf_free(&to);
	if (mindex_end(ix, txn, rc == 0 && changed, why) < 0 && changed &&
	    rc == 0)
		rc = -1;
	if (rc < 0)
		for (size_t i = 0; i < n; i++)
			rc_r[i] = 0;
	else if (own != NULL)
		own->writes += nchanged;	/* one modseq each */
	return rc < 0 ? -1 : 0;
}

/* mindex_store_uids - see mindex.h */
int
mindex_store_uids(struct mindex *ix, const char *folder,
    const uint32_t *uids, size_t n, enum mindex_store_mode mode,
    uint32_t flags, const char *const *kw, size_t nkw,
    uint64_t unchangedsince, int *rc_r, struct mindex_msg *m_r,
    struct mindex_own *own, struct buf *why)
{
	int rc;

	if (flags & ~MINDEX_F_ALL) {
		buf_set(why, "unknown flag bits");
		return -1;
	}
	for (int tries = 0;; tries++) {
		rc = mindex_store_uids_once(ix, folder, uids, n, mode, flags,
		    kw, nkw, unchangedsince, rc_r, m_r, own, why);
		if (rc >= 0 || tries + 1 >= MINDEX_TRIES ||
		    !mindex_map_full(why))
			return rc;
		buf_reset(why);
	}
}

/* mindex_expunge_txn - expunge inside txn: uids[0..n) or, uids NULL,
 * every \Deleted message; the changes of new/ into own (if not NULL:
 * about fk's folder), the rest is for the caller to add once txn is
 * committed; -1 with why */
static int
mindex_expunge_txn(struct mindex *ix, MDB_txn *txn, const struct mindex_fk *fk,
    const uint32_t *uids, size_t n, uint32_t *count_r, struct mindex_own *own,
    struct buf *why)
{
	struct mindex_folder_rec f;
	struct buf key = BUF_INIT, path = BUF_INIT;
	uint32_t *gone = NULL;
	size_t ngone = 0, cap = 0;
	MDB_cursor *c = NULL;
	MDB_val k, v;
	bool in_new = false, in_cur = false, ok;
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
	if (ngone > 0)
		qsort(gone, ngone, sizeof(*gone), mindex_cmp_uid);
	n = 0;
	for (size_t i = 0; i < ngone; i++) {
		struct mindex_msg m, moved;

		if (i > 0 && gone[i] == gone[i - 1])
			continue;
		if ((got = mindex_msg_get(ix, txn, fk, gone[i], &m, why)) < 0)
			goto out;
		if (got == 0)
			continue;
		mindex_msg_path(fk->dir, &m, &path);
		if (m.in_new)
			mindex_own_new(own, fk, true);
		/* (ENOENT: a try before unlinked it, and counted it; or,
		 * from new/, another tool moved it to cur/) */
		ok = unlink(buf_cstr(&path)) == 0;
		if (!ok && errno == ENOENT &&
		    mindex_msg_moved(&m, &moved) == 0) {
			mindex_msg_path(fk->dir, &moved, &path);
			ok = unlink(buf_cstr(&path)) == 0;
			in_cur = true;
		} else {
			in_new |= m.in_new;
			in_cur |= !m.in_new;
		}
		if (ok) {
			maildir_usage_add(fk->dir, -(long long)m.size, -1);
		} else if (errno != ENOENT) {
			buf_printf(why, "unlink %s: %s", buf_cstr(&path),
			    strerror(errno));
			goto out;
		}
		mindex_point("expunge:unlinked");
		if (mindex_msg_del(ix, txn, fk, &m, why) < 0)
			goto out;
		gone[n++] = m.uid;
	}
	if (in_new)
		mindex_own_new(own, fk, false);
	if (n > 0) {
		for (int i = 0; i < 2; i++) {
			if (!(i == 0 ? in_new : in_cur))
				continue;
			buf_reset(&path);
			buf_printf(&path, "%s/%s", fk->dir, i == 0 ? "new" :
			    "cur");
			if (mindex_fsync_dir(buf_cstr(&path), why) < 0)
				goto out;
		}
		f.highestmodseq++;
		if (mindex_vanish(ix, txn, fk, gone, n, f.highestmodseq, &f,
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

/* mindex_expunge_once - mindex_expunge, one try */
static int
mindex_expunge_once(struct mindex *ix, const char *folder,
    const uint32_t *uids, size_t n, uint32_t *count_r,
    struct mindex_own *own, struct buf *why)
{
	struct mindex_fk fk;
	MDB_txn *txn;
	uint32_t count = 0;
	bool ok;

	if (mindex_fkey(ix, folder, &fk, why) < 0)
		return -1;
	own = mindex_own_of(ix, own, &fk);
	if (mindex_begin(ix, true, &txn, why) < 0)
		return -1;
	ok = mindex_expunge_txn(ix, txn, &fk, uids, n, &count, own,
	    why) == 0;
	if (count_r != NULL)
		*count_r = count;
	if (mindex_end(ix, txn, ok, why) < 0)
		return -1;
	if (own != NULL && count > 0)
		own->writes++;	/* one modseq for them all */
	return 0;
}

/* mindex_expunge - see mindex.h (files already unlinked by a try that
 * failed are simply gone the next time) */
int
mindex_expunge(struct mindex *ix, const char *folder, const uint32_t *uids,
    size_t n, uint32_t *count_r, struct mindex_own *own, struct buf *why)
{
	int rc;

	for (int tries = 0;; tries++) {
		rc = mindex_expunge_once(ix, folder, uids, n, count_r, own,
		    why);
		if (rc == 0 || tries + 1 >= MINDEX_TRIES ||
		    !mindex_map_full(why))
			return rc;
		buf_reset(why);
	}
}

/* mindex_append_index - give the file name, delivered into fk's new/,
 * its UID and flags; what it committed into own (if not NULL: about
 * fk's folder); one try */
static int
mindex_append_index(struct mindex *ix, const struct mindex_fk *fkp,
    const struct buf *name, uint32_t flags, const char *const *kw,
    size_t nkw, uint32_t *uid_r, uint32_t *uidvalidity_r,
    struct mindex_own *own, struct buf *why)
{
	struct mindex_fk fk = *fkp;
	struct mindex_folder_rec f;
	struct mindex_sync_result sr;
	struct mindex_msg m;
	struct buf from = BUF_INIT, to = BUF_INIT;
	struct buf key = BUF_INIT;
	struct stat st;
	uint32_t kbits = 0;
	MDB_txn *txn;
	MDB_val k, v;
	bool added = false;
	int rc = -1, got, mrc;

	buf_printf(&from, "%s/new/%s", fk.dir, buf_cstr(name));
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
	mindex_key(&fk, buf_cstr(name), mindex_base_len(buf_cstr(name)),
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
		mindex_msg_path(fk.dir, &m, &from);
	} else if (mrc != 0 && mrc != MDB_NOTFOUND) {
		mindex_mdb_error(why, mrc, "names");
		goto out;
	} else {
		memset(&m, 0, sizeof(m));
		m.uid = f.uidnext++;
		added = true;
		snprintf(m.name, sizeof(m.name), "%s", buf_cstr(name));
	}
	if (mindex_name_with_flags(m.name, mindex_base_len(m.name), flags,
	    kbits, m.name, sizeof(m.name)) < 0) {
		buf_set(why, "file name too long");
		goto out;
	}
	m.in_new = false;	/* APPEND's message goes to cur/ */
	mindex_msg_path(fk.dir, &m, &to);
	if (lstat(buf_cstr(&from), &st) < 0 && errno == ENOENT &&
	    lstat(buf_cstr(&to), &st) == 0) {
		/* moved by a try whose commit failed */
		buf_reset(&from);
		buf_puts(&from, buf_cstr(&to));
	}
	if (lstat(buf_cstr(&from), &st) < 0 || !S_ISREG(st.st_mode) ||
	    mindex_file_sizes(buf_cstr(&from), m.name, &st, &m.size,
	    &m.wsize) < 0) {
		buf_printf(why, "stat %s: %s", buf_cstr(&from),
		    strerror(errno));
		goto out;
	}
	m.flags = flags;
	m.keywords = kbits;
	m.internaldate = (int64_t)st.st_mtime;
	m.modseq = ++f.highestmodseq;
	/* the records, then the move: a full map fails before it */
	if (mindex_msg_put(ix, txn, &fk, &m, why) < 0 ||
	    mindex_folder_put(ix, txn, &fk, &f, why) < 0)
		goto out;
	if (strcmp(buf_cstr(&from), buf_cstr(&to)) != 0 &&
	    rename(buf_cstr(&from), buf_cstr(&to)) < 0) {
		buf_printf(why, "rename %s: %s", buf_cstr(&from),
		    strerror(errno));
		goto out;
	}
	mindex_own_new(own, &fk, false);
	mindex_point("append:moved");
	rc = 0;
out:
	if (mindex_end(ix, txn, rc == 0, why) < 0)
		rc = -1;
	if (rc == 0 && own != NULL) {
		own->writes++;
		own->added += added;
	}
	if (rc == 0) {
		mindex_point("append:committed");
		if (uid_r != NULL)
			*uid_r = m.uid;
		if (uidvalidity_r != NULL)
			*uidvalidity_r = f.uidvalidity;
	}
out_nolock:
	buf_free(&from);
	buf_free(&to);
	buf_free(&key);
	return rc;
}

/* mindex_append_src - mindex_append from fd, or from mem when not NULL */
static int
mindex_append_src(struct mindex *ix, const char *folder, int fd,
    const char *mem, off_t size, uint32_t flags, const char *const *kw,
    size_t nkw, int64_t internaldate, uint32_t *uid_r,
    uint32_t *uidvalidity_r, struct mindex_own *own, struct buf *why)
{
	struct mindex_fk fk;
	struct buf name = BUF_INIT, path = BUF_INIT;
	int rc;

	if (flags & ~MINDEX_F_ALL) {
		buf_set(why, "unknown flag bits");
		return -1;
	}
	if (mindex_fkey(ix, folder, &fk, why) < 0 ||
	    mindex_folder_ready(&fk, why) < 0)
		return -1;
	/* the file goes into new/ first */
	own = mindex_own_of(ix, own, &fk);
	mindex_own_new(own, &fk, true);
	if ((mem != NULL ? maildir_deliver_mem(fk.dir, "", 0, mem,
	    (size_t)size, &name, why) : maildir_deliver(fk.dir, "", 0, fd, 0,
	    size, &name, why)) < 0)
		return -1;
	if (internaldate > 0) {
		struct timespec ts[2] = {{internaldate, 0}, {internaldate, 0}};

		buf_printf(&path, "%s/new/%s", fk.dir, buf_cstr(&name));
		(void)utimensat(AT_FDCWD, buf_cstr(&path), ts,
		    AT_SYMLINK_NOFOLLOW);
	}
	mindex_point("append:delivered");
	for (int tries = 0;; tries++) {
		rc = mindex_append_index(ix, &fk, &name, flags, kw, nkw, uid_r,
		    uidvalidity_r, own, why);
		if (rc == 0 || tries + 1 >= MINDEX_TRIES ||
		    !mindex_map_full(why))
			break;
		buf_reset(why);
	}
	if (rc < 0) {
		/* the client is told APPEND failed: the copy still in new/
		 * must not show up at the next sync (and a retry make two).
		 * Should a sync have given it a UID meanwhile, that sync
		 * sees it expunged: no UID is reused either way. */
		buf_reset(&path);
		buf_printf(&path, "%s/new/%s", fk.dir, buf_cstr(&name));
		(void)unlink(buf_cstr(&path));
		maildir_usage_forget(ix->path);	/* it was counted */
	}
	buf_free(&name);
	buf_free(&path);
	return rc;
}

/* mindex_append - see mindex.h */
int
mindex_append(struct mindex *ix, const char *folder, int fd, off_t size,
    uint32_t flags, const char *const *kw, size_t nkw, int64_t internaldate,
    uint32_t *uid_r, uint32_t *uidvalidity_r, struct mindex_own *own,
    struct buf *why)
{
	return mindex_append_src(ix, folder, fd, NULL, size, flags, kw, nkw,
	    internaldate, uid_r, uidvalidity_r, own, why);
}

/* mindex_append_mem - see mindex.h */
int
mindex_append_mem(struct mindex *ix, const char *folder, const char *p,
    size_t n, uint32_t flags, const char *const *kw, size_t nkw,
    int64_t internaldate, uint32_t *uid_r, uint32_t *uidvalidity_r,
    struct mindex_own *own, struct buf *why)
{
	if (n > (size_t)0x7fffffffffffffffLL) {
		buf_set(why, "message too big");
		return -1;
	}
	return mindex_append_src(ix, folder, -1, p, (off_t)n, flags, kw, nkw,
	    internaldate, uid_r, uidvalidity_r, own, why);
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

/*
 * mindex_copy_once - mindex_copy, one try. For each message the record
 * is written first and the file linked after, so a full map fails before
 * a file exists; links made by a try that fails are removed again, until
 * a move starts unlinking the sources (*retry_r false from then on: what
 * is linked stays, and the next sync indexes it).
 */
static int
mindex_copy_once(struct mindex *ix, const struct mindex_fk *sk,
    const struct mindex_fk *dk, const uint32_t *uids, size_t n, bool move,
    uint32_t *dst_uids, uint32_t *uidvalidity_r, bool *retry_r,
    struct mindex_own *own, struct buf *why)
{
	static unsigned counter;
	struct mindex_folder_rec f;
	struct mindex_sync_result sr;
	struct buf from = BUF_INIT, to = BUF_INIT, dir = BUF_INIT;
	struct buf snames = BUF_INIT, linked = BUF_INIT;
	char host[64];
	uint32_t *moved = NULL, uid0 = 0, expunged = 0;
	size_t nmoved = 0;
	MDB_txn *txn;
	struct timespec now;
	struct mindex_own *so = mindex_own_of(ix, own, sk);
	struct mindex_own *dso = mindex_own_of(ix, own, dk);
	int rc = -1, got;

	*retry_r = true;
	if (gethostname(host, sizeof(host)) < 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	for (char *p = host; *p; p++)
		if (*p == '/' || *p == ':' || *p == '.' || *p == ',')
			*p = '_';
	if (mindex_begin(ix, true, &txn, why) < 0)
		return -1;
	if ((got = mindex_folder_get(ix, txn, dk, &f, why)) < 0)
		goto out;
	if (got == 0 && (mindex_sync_txn(ix, txn, dk, NULL, &sr, why) < 0 ||
	    mindex_folder_get(ix, txn, dk, &f, why) <= 0))
		goto out;
	if (mindex_keyword_names(sk, &snames, why) < 0)
		goto out;
	uid0 = f.uidnext;
	moved = xcalloc(n ? n : 1, sizeof(*moved));
	clock_gettime(CLOCK_REALTIME, &now);
	for (size_t i = 0; i < n; i++) {
		struct mindex_msg m, alt;
		bool alt_ok;
		int lrc;
		char base[MINDEX_NAME_MAX + 1];
		char eid[MINDEX_OBJID_LEN + 1];
		uint32_t kbits = 0;

		dst_uids[i] = 0;
		if ((got = mindex_msg_get(ix, txn, sk, uids[i], &m, why)) < 0)
			goto out;
		if (got == 0)
			continue;
		if (m.keywords != 0 && mindex_keyword_map(sk, &snames, dk,
		    m.keywords, &kbits, why) < 0)
			goto out;
		/* the copy keeps the source's EMAILID (RFC 8474 5.1) */
		mindex_emailid(m.name, eid);
		snprintf(base, sizeof(base), "%lld.M%ldP%ldC%u.%s,S=%llu,"
		    "W=%llu,E=%s", (long long)now.tv_sec, now.tv_nsec / 1000,
		    (long)getpid(), __atomic_fetch_add(&counter, 1,
		    __ATOMIC_RELAXED), host, (unsigned long long)m.size,
		    (unsigned long long)m.wsize, eid);
		mindex_msg_path(sk->dir, &m, &from);
		alt_ok = mindex_msg_moved(&m, &alt) == 0;
		m.keywords = kbits;
		m.in_new = false;	/* the copy goes to cur/ */
		if (mindex_name_with_flags(base, strlen(base), m.flags,
		    m.keywords, m.name, sizeof(m.name)) < 0) {
			buf_set(why, "file name too long");
			goto out;
		}
		m.uid = f.uidnext++;
		m.modseq = f.highestmodseq + 1;
		if (mindex_msg_put(ix, txn, dk, &m, why) < 0)
			goto out;
		mindex_msg_path(dk->dir, &m, &to);
		lrc = link(buf_cstr(&from), buf_cstr(&to));
		if (lrc < 0 && errno == ENOENT && alt_ok) {
			/* from new/: another tool moved it to cur/ */
			mindex_msg_path(sk->dir, &alt, &from);
			lrc = link(buf_cstr(&from), buf_cstr(&to));
		}
		if (lrc < 0 && mindex_copy_file(buf_cstr(&from), dk->dir,
		    buf_cstr(&to)) < 0) {
			if (errno == ENOENT) {
				/* gone meanwhile: no copy, no record */
				if (mindex_msg_del(ix, txn, dk, &m, why) < 0)
					goto out;
				continue;
			}
			buf_printf(why, "copy %s: %s", buf_cstr(&from),
			    strerror(errno));
			goto out;
		}
		buf_append(&linked, to.data, to.len + 1);
		mindex_point("copy:linked");
		moved[nmoved++] = uids[i];
		dst_uids[i] = m.uid;
	}
	if (nmoved > 0) {
		f.highestmodseq++;
		buf_printf(&dir, "%s/cur", dk->dir);
		if (mindex_folder_put(ix, txn, dk, &f, why) < 0 ||
		    mindex_fsync_dir(buf_cstr(&dir), why) < 0)
			goto out;
		mindex_point("copy:synced");
		if (move) {
			/* the copies are durable: the sources may go */
			*retry_r = false;
			if (mindex_expunge_txn(ix, txn, sk, moved, nmoved,
			    &expunged, so, why) < 0)
				goto out;
		}
	}
	if (uidvalidity_r != NULL)
		*uidvalidity_r = f.uidvalidity;
	rc = 0;
out:
	if (mindex_end(ix, txn, rc == 0, why) < 0)
		rc = -1;
	if (rc == 0 && dso != NULL && nmoved > 0) {
		dso->writes++;	/* one modseq for the copies */
		dso->added += f.uidnext - uid0;
	}
	if (rc == 0 && so != NULL && expunged > 0)
		so->writes++;	/* and one for the sources' expunge */
	if (rc < 0 && *retry_r) {
		for (const char *p = linked.data; p < linked.data +
		    linked.len; p += strlen(p) + 1)
			(void)unlink(p);
	}
	free(moved);
	buf_free(&from);
	buf_free(&to);
	buf_free(&dir);
	buf_free(&snames);
	buf_free(&linked);
	return rc;
}

/* mindex_copy - see mindex.h */
int
mindex_copy(struct mindex *ix, const char *src, const char *dst,
    const uint32_t *uids, size_t n, bool move, uint32_t *dst_uids,
    uint32_t *uidvalidity_r, struct mindex_own *own, struct buf *why)
{
	struct mindex_fk sk, dk;
	bool retry;
	int rc;

	if (mindex_fkey(ix, src, &sk, why) < 0 ||
	    mindex_fkey(ix, dst, &dk, why) < 0 ||
	    mindex_folder_ready(&dk, why) < 0)
		return -1;
	if (move && strcmp(sk.key, dk.key) == 0) {
		buf_set(why, "cannot move a folder's messages into itself");
		return -1;
	}
	/* copies add to the quota usage: counted again at its next read */
	if (!move)
		maildir_usage_forget(ix->path);
	for (int tries = 0;; tries++) {
		rc = mindex_copy_once(ix, &sk, &dk, uids, n, move, dst_uids,
		    uidvalidity_r, &retry, own, why);
		if (rc == 0 || !retry || tries + 1 >= MINDEX_TRIES ||
		    !mindex_map_full(why))
			return rc;
		buf_reset(why);
	}
}
