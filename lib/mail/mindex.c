/*
 * mindex - the per-user LMDB mail index: environment, record codec,
 * records, listing, status, VANISHED ranges and cache blobs. The sync
 * with the Maildir and rebuilds are in mindex_sync.c, changes to messages
 * in mindex_msg.c, folders and subscriptions in mindex_folder.c. See
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

#include <openssl/sha.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/maildir.h"
#include "mail/mindex.h"
#include "mail/mindex_int.h"
#include "mail/mutf7.h"

mindex_fault_fn *mindex_fault;
unsigned long mindex_write_commits;

#define MINDEX_MSG_HEAD_V1 47	/* record bytes before the name */
#define MINDEX_MSG_HEAD (MINDEX_MSG_HEAD_V1 + 1)	/* + the place */
#define MINDEX_MSG_IN_NEW 0x01	/* place: the file is in new/ */
#define MINDEX_FOLDER_LEN_V1 17
#define MINDEX_FOLDER_LEN_V2 29
#define MINDEX_FOLDER_LEN_V3 (MINDEX_FOLDER_LEN_V2 + MINDEX_FOLDER_ID)
#define MINDEX_FOLDER_LEN (MINDEX_FOLDER_LEN_V3 + 4)	/* + recent */

/* mindex_put32 - v big-endian into p[0..4) */
void
mindex_put32(unsigned char *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

/* mindex_put64 - v big-endian into p[0..8) */
void
mindex_put64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

/* mindex_get32 - the big-endian number at p[0..4) */
uint32_t
mindex_get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/* mindex_get64 - the big-endian number at p[0..8) */
uint64_t
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

/*
 * Message records: version 1 is a head of 47 bytes (version, uid, flags,
 * keywords, modseq, size, wsize, internal date, name length) and the
 * name; its file is in cur/. Version 2 adds one byte to the head, the
 * place (MINDEX_MSG_IN_NEW: the file is in new/), before the name.
 */

/* mindex_msg_encode - see mindex.h */
void
mindex_msg_encode(const struct mindex_msg *m, struct buf *out)
{
	unsigned char h[MINDEX_MSG_HEAD];
	size_t nl = strlen(m->name);

	h[0] = 2;
	mindex_put32(h + 1, m->uid);
	mindex_put32(h + 5, m->flags);
	mindex_put32(h + 9, m->keywords);
	mindex_put64(h + 13, m->modseq);
	mindex_put64(h + 21, m->size);
	mindex_put64(h + 29, m->wsize);
	mindex_put64(h + 37, (uint64_t)m->internaldate);
	h[45] = (unsigned char)(nl >> 8);
	h[46] = (unsigned char)nl;
	h[47] = m->in_new ? MINDEX_MSG_IN_NEW : 0;
	buf_append(out, h, sizeof(h));
	buf_append(out, m->name, nl);
}

/* mindex_msg_decode - see mindex.h */
int
mindex_msg_decode(const void *data, size_t n, struct mindex_msg *m,
    struct buf *why)
{
	const unsigned char *p = data;
	size_t nl, head;

	if (n < 1 || (p[0] != 1 && p[0] != 2) || n < (head = p[0] == 1 ?
	    MINDEX_MSG_HEAD_V1 : MINDEX_MSG_HEAD)) {
		buf_set(why, "index record of unknown version or cut short");
		return -1;
	}
	nl = (size_t)p[45] << 8 | p[46];
	if (nl != n - head || nl == 0 || nl > MINDEX_NAME_MAX) {
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
	m->in_new = head == MINDEX_MSG_HEAD && (p[47] & MINDEX_MSG_IN_NEW);
	memcpy(m->name, p + head, nl);
	m->name[nl] = '\0';
	if (m->uid == 0 || m->modseq == 0 || (m->flags & ~MINDEX_F_ALL) ||
	    (m->keywords >> MINDEX_KEYWORDS_MAX) != 0 ||
	    memchr(m->name, '\0', nl) != NULL || strchr(m->name, '/') ||
	    m->name[0] == '.' || (head == MINDEX_MSG_HEAD &&
	    (p[47] & ~MINDEX_MSG_IN_NEW) != 0)) {
		buf_set(why, "index record with a bad field");
		return -1;
	}
	return 0;
}

/* mindex_msg_path - see mindex.h */
void
mindex_msg_path(const char *dir, const struct mindex_msg *m, struct buf *out)
{
	buf_reset(out);
	buf_printf(out, "%s/%s/%s", dir, m->in_new ? "new" : "cur", m->name);
}

/* mindex_msg_moved - see mindex.h */
int
mindex_msg_moved(const struct mindex_msg *m, struct mindex_msg *out)
{
	if (!m->in_new)
		return -1;
	*out = *m;
	out->in_new = false;
	return mindex_name_with_flags(m->name, mindex_base_len(m->name), 0, 0,
	    out->name, sizeof(out->name));
}

/* mindex_msg_open - see mindex.h */
int
mindex_msg_open(const char *dir, const struct mindex_msg *m)
{
	struct buf path = BUF_INIT;
	struct mindex_msg moved;
	int fd, saved;

	mindex_msg_path(dir, m, &path);
	fd = open(buf_cstr(&path), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT && mindex_msg_moved(m, &moved) == 0) {
		mindex_msg_path(dir, &moved, &path);
		fd = open(buf_cstr(&path), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	}
	saved = errno;
	buf_free(&path);
	errno = saved;
	return fd;
}

/* mindex_folder_encode - see mindex.h */
void
mindex_folder_encode(const struct mindex_folder_rec *f, struct buf *out)
{
	unsigned char h[MINDEX_FOLDER_LEN];

	h[0] = 4;
	mindex_put32(h + 1, f->uidvalidity);
	mindex_put32(h + 5, f->uidnext);
	mindex_put64(h + 9, f->highestmodseq);
	mindex_put32(h + 17, f->vanished);
	mindex_put64(h + 21, f->vanished_floor);
	memcpy(h + MINDEX_FOLDER_LEN_V2, f->id, MINDEX_FOLDER_ID);
	mindex_put32(h + MINDEX_FOLDER_LEN_V3, f->recent);
	buf_append(out, h, sizeof(h));
}

/* mindex_folder_decode - see mindex.h */
int
mindex_folder_decode(const void *data, size_t n, struct mindex_folder_rec *f,
    struct buf *why)
{
	const unsigned char *p = data;

	/* version 1 had no vanished count and floor, 2 no id, 3 no
	 * recent */
	if (!(n == MINDEX_FOLDER_LEN_V1 && p[0] == 1) &&
	    !(n == MINDEX_FOLDER_LEN_V2 && p[0] == 2) &&
	    !(n == MINDEX_FOLDER_LEN_V3 && p[0] == 3) &&
	    !(n == MINDEX_FOLDER_LEN && p[0] == 4)) {
		buf_set(why, "folder record of unknown version or length");
		return -1;
	}
	f->uidvalidity = mindex_get32(p + 1);
	f->uidnext = mindex_get32(p + 5);
	f->highestmodseq = mindex_get64(p + 9);
	f->vanished = p[0] >= 2 ? mindex_get32(p + 17) : 0;
	f->vanished_floor = p[0] >= 2 ? mindex_get64(p + 21) : 0;
	memset(f->id, 0, sizeof(f->id));
	if (p[0] >= 3)
		memcpy(f->id, p + MINDEX_FOLDER_LEN_V2, sizeof(f->id));
	/* an older record: what is there was seen before the upgrade */
	f->recent = p[0] >= 4 ? mindex_get32(p + MINDEX_FOLDER_LEN_V3) :
	    f->uidnext;
	if (f->vanished_floor > f->highestmodseq) {
		buf_set(why, "folder record with a floor above its modseq");
		return -1;
	}
	if (f->uidvalidity == 0 || f->uidnext == 0 || f->highestmodseq == 0) {
		buf_set(why, "folder record with a zero field");
		return -1;
	}
	return 0;
}

/* mindex_hex - n bytes of p as lower-case hex after the letter c */
static void
mindex_hex(char c, const unsigned char *p, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";

	*out++ = c;
	for (size_t i = 0; i < n; i++) {
		*out++ = hex[p[i] >> 4];
		*out++ = hex[p[i] & 15];
	}
	*out = '\0';
}

/* mindex_mailboxid - see mindex.h */
void
mindex_mailboxid(const struct mindex_folder_rec *f, char *out)
{
	unsigned char id[MINDEX_FOLDER_ID] = {0};
	static const unsigned char zero[MINDEX_FOLDER_ID];

	if (memcmp(f->id, zero, sizeof(zero)) != 0)
		memcpy(id, f->id, sizeof(id));
	else
		mindex_put32(id, f->uidvalidity);	/* a version 2 one */
	mindex_hex('F', id, sizeof(id), out);
}

/* mindex_emailid - see mindex.h */
void
mindex_emailid(const char *name, char *out)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	size_t blen = mindex_base_len(name), n;
	const char *e;

	/* ",E=" then the id as mindex_copy writes it: 'M', 32 hex */
	for (e = name; (size_t)(e - name) + 3 + MINDEX_OBJID_LEN <= blen &&
	    (e = memmem(e, blen - (size_t)(e - name), ",E=", 3)) != NULL;
	    e += 3) {
		if ((size_t)(e - name) + 3 + MINDEX_OBJID_LEN > blen)
			break;
		n = strspn(e + 4, "0123456789abcdef");
		if (e[3] == 'M' && n == MINDEX_OBJID_LEN - 1 &&
		    (e[3 + MINDEX_OBJID_LEN] == ',' ||
		    (size_t)(e - name) + 3 + MINDEX_OBJID_LEN == blen)) {
			memcpy(out, e + 3, MINDEX_OBJID_LEN);
			out[MINDEX_OBJID_LEN] = '\0';
			return;
		}
	}
	SHA256((const unsigned char *)name, blen, md);
	mindex_hex('M', md, (MINDEX_OBJID_LEN - 1) / 2, out);
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

#define MINDEX_DAMAGED_NOTE "; run \"heraldctl mailbox reindex\")"

/* mindex_damaged - a damaged-record error into why; -1 */
int
mindex_damaged(struct buf *why, const char *folder)
{
	buf_printf(why, " (folder %s" MINDEX_DAMAGED_NOTE, folder);
	return -1;
}

/* mindex_is_damaged - why tells of a damaged record */
bool
mindex_is_damaged(const struct buf *why)
{
	return strstr(buf_cstr(why), MINDEX_DAMAGED_NOTE) != NULL;
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
	/* MDB_MAP_RESIZED: another process grew the map; adopt it */
	while ((rc = mdb_txn_begin(ix->env, NULL, 0, &txn)) ==
	    MDB_MAP_RESIZED) {
		if ((rc = mdb_env_set_mapsize(ix->env, 0)) != 0)
			goto fail;
	}
	if (rc != 0)
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
	ix->writing = write;
	return 0;
}

/* mindex_end - commit (ok) or abort the transaction, unlock; -1 with why
 * when the commit fails (or ok was false: then why is already set) */
int
mindex_end(struct mindex *ix, MDB_txn *txn, bool ok, struct buf *why)
{
	int rc = 0;

	if (ok) {
		if ((rc = mdb_txn_commit(txn)) != 0)
			mindex_mdb_error(why, rc, "index commit");
		else if (ix->writing)
			__atomic_add_fetch(&mindex_write_commits, 1,
			    __ATOMIC_RELAXED);
	} else {
		mdb_txn_abort(txn);
	}
	/* the map was too small for this transaction (a put or the commit
	 * said so): grow it now, with no transaction open in this process,
	 * so that the caller's next try fits */
	if (rc == MDB_MAP_FULL || mindex_map_full(why)) {
		MDB_envinfo info;

		if (mdb_env_info(ix->env, &info) == 0 &&
		    info.me_mapsize < MINDEX_MAP_MAX)
			(void)mdb_env_set_mapsize(ix->env,
			    info.me_mapsize * 2);
	}
	pthread_mutex_unlock(&ix->lock);
	return ok && rc == 0 ? 0 : -1;
}

/* mindex_map_full - why tells of a full map (which has grown since) */
bool
mindex_map_full(const struct buf *why)
{
	return strstr(buf_cstr(why), mdb_strerror(MDB_MAP_FULL)) != NULL;
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
int
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

/* mindex_vanish_prune - drop the oldest half of f's expunged ranges;
 * f's count and floor follow */
static int
mindex_vanish_prune(struct mindex *ix, MDB_txn *txn,
    const struct mindex_fk *fk, struct mindex_folder_rec *f, struct buf *why)
{
	struct buf key = BUF_INIT;
	uint32_t drop = f->vanished - MINDEX_VANISHED_MAX / 2;
	MDB_cursor *c;
	MDB_val k, v;
	int mrc;

	if ((mrc = mdb_cursor_open(txn, ix->expunged, &c)) != 0)
		return mindex_mdb_error(why, mrc, "cursor");
	mindex_key(fk, "", 0, &key);
	k = mindex_val(&key);
	mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	while (mrc == 0 && drop > 0 && k.mv_size == fk->klen + 13 &&
	    memcmp(k.mv_data, fk->key, fk->klen + 1) == 0) {
		uint64_t ms = mindex_get64((unsigned char *)k.mv_data +
		    fk->klen + 1);

		if (ms > f->vanished_floor)
			f->vanished_floor = ms;
		if ((mrc = mdb_cursor_del(c, 0)) != 0)
			break;
		drop--;
		f->vanished--;
		mrc = mdb_cursor_get(c, &k, &v, MDB_GET_CURRENT);
		if (mrc == MDB_NOTFOUND || mrc == EINVAL)
			mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	}
	mdb_cursor_close(c);
	buf_free(&key);
	if (mrc != 0 && mrc != MDB_NOTFOUND)
		return mindex_mdb_error(why, mrc, "prune");
	if (drop > 0)
		f->vanished = 0;	/* fewer than counted: start afresh */
	return 0;
}

/* mindex_vanish - record uids[0..n) (sorted) as expunged at modseq in
 * f's history (f is the caller's to write back) */
int
mindex_vanish(struct mindex *ix, MDB_txn *txn, const struct mindex_fk *fk,
    const uint32_t *uids, size_t n, uint64_t modseq,
    struct mindex_folder_rec *f, struct buf *why)
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
		if (rc == 0 && f->vanished < UINT32_MAX)
			f->vanished++;
		i = j + 1;
	}
	buf_free(&key);
	if (rc != 0)
		return mindex_mdb_error(why, rc, "expunged record");
	if (f->vanished > MINDEX_VANISHED_MAX)
		return mindex_vanish_prune(ix, txn, fk, f, why);
	return 0;
}

/* mindex_cmp_uid - qsort order of uint32_t */
int
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

/*
 * mindex_opendir - dir/sub for reading, following no link at sub nor, for
 * a folder other than INBOX (folder true), at dir: a folder or its cur/
 * or new/ planted as a link must not lead the index into another
 * mailbox. The Maildir itself may be reached through links the admin
 * made. -1 with errno.
 */
int
mindex_opendir_fd(const char *dir, bool folder, const char *sub)
{
	int dfd, fd, saved;

	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC |
	    (folder ? O_NOFOLLOW : 0))) < 0)
		return -1;
	fd = openat(dfd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	saved = errno;
	(void)close(dfd);
	errno = saved;
	return fd;
}

/* mindex_opendir - the same as a DIR stream */
DIR *
mindex_opendir(const char *dir, bool folder, const char *sub)
{
	int fd, saved;
	DIR *d;

	if ((fd = mindex_opendir_fd(dir, folder, sub)) < 0)
		return NULL;
	if ((d = fdopendir(fd)) == NULL) {
		saved = errno;
		(void)close(fd);
		errno = saved;
	}
	return d;
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
 * of its name where present and well formed: maildir_name_size, else the
 * stat size and the file read) */
int
mindex_file_sizes(const char *path, const char *name, const struct stat *st,
    uint64_t *size, uint64_t *wsize)
{
	long long s = maildir_name_size(name), w = maildir_name_wsize(name);
	char data[65536];
	uint64_t lf = 0;
	char prev = 0;
	ssize_t n;
	int fd;

	*size = s >= 0 ? (uint64_t)s : (uint64_t)st->st_size;
	/* a W= below the size is not one: every byte counts in it */
	if (w >= 0 && (uint64_t)w >= *size) {
		*wsize = (uint64_t)w;
		return 0;
	}
	/* O_NONBLOCK: a FIFO swapped in must not hang the sync */
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC)) < 0)
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

/* mindex_status - see mindex.h */
int
mindex_status(struct mindex *ix, const char *folder, struct mindex_status *st,
    struct buf *why)
{
	return mindex_snapshot(ix, folder, st, NULL, NULL, why);
}

/* mindex_snapshot - see mindex.h */
int
mindex_snapshot(struct mindex *ix, const char *folder,
    struct mindex_status *st, mindex_msg_fn *fn, void *ctx, struct buf *why)
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
	st->recent_from = f.recent;
	mindex_mailboxid(&f, st->mailboxid);
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
		if (m.uid >= f.recent)
			st->recent++;
		st->size += m.wsize;
		if (fn != NULL && fn(&m, ctx) != 0)
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

/* mindex_recent_from - see mindex.h */
int
mindex_recent_from(struct mindex *ix, const char *folder, uint32_t *from_r,
    struct buf *why)
{
	struct mindex_fk fk;
	struct mindex_folder_rec f;
	MDB_txn *txn;
	int got;

	if (mindex_fkey(ix, folder, &fk, why) < 0 ||
	    mindex_begin(ix, false, &txn, why) < 0)
		return -1;
	if ((got = mindex_folder_get(ix, txn, &fk, &f, why)) == 0)
		buf_printf(why, "folder \"%s\" is not indexed", folder);
	if (got > 0)
		*from_r = f.recent;
	(void)mindex_end(ix, txn, false, why);
	return got > 0 ? 0 : -1;
}

/* mindex_claim_recent - see mindex.h */
int
mindex_claim_recent(struct mindex *ix, const char *folder, uint32_t upto,
    uint32_t *lo_r, uint32_t *hi_r, struct buf *why)
{
	struct mindex_fk fk;
	struct mindex_folder_rec f;
	MDB_txn *txn;
	int got;

	*lo_r = *hi_r = 0;
	if (mindex_fkey(ix, folder, &fk, why) < 0)
		return -1;
	/* a read first: most SELECTs find nothing to claim, and need no
	 * write transaction (and no fsync) */
	for (int write = 0; write < 2; write++) {
		if (mindex_begin(ix, write, &txn, why) < 0)
			return -1;
		if ((got = mindex_folder_get(ix, txn, &fk, &f, why)) <= 0) {
			if (got == 0)
				buf_printf(why, "folder \"%s\" is not indexed",
				    folder);
			(void)mindex_end(ix, txn, false, why);
			return -1;
		}
		if (upto > f.uidnext)
			upto = f.uidnext;
		if (f.recent >= upto) {
			(void)mindex_end(ix, txn, false, why);
			return 0;
		}
		if (!write) {
			(void)mindex_end(ix, txn, false, why);
			continue;
		}
		*lo_r = f.recent;
		*hi_r = upto;
		f.recent = upto;
		if (mindex_folder_put(ix, txn, &fk, &f, why) < 0) {
			(void)mindex_end(ix, txn, false, why);
			*lo_r = *hi_r = 0;
			return -1;
		}
		if (mindex_end(ix, txn, true, why) < 0) {
			*lo_r = *hi_r = 0;
			return -1;
		}
		return 0;
	}
	return 0;
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

/* mindex_vanished - see mindex.h */
int
mindex_vanished(struct mindex *ix, const char *folder, uint64_t since,
    mindex_vanished_fn *fn, void *ctx, struct buf *why)
{
	struct mindex_fk fk;
	struct mindex_folder_rec f;
	struct buf key = BUF_INIT;
	unsigned char t[8];
	MDB_cursor *c = NULL;
	MDB_txn *txn;
	MDB_val k, v;
	bool incomplete;
	int rc = -1, mrc, got;

	if (mindex_fkey(ix, folder, &fk, why) < 0 ||
	    mindex_begin(ix, false, &txn, why) < 0)
		return -1;
	if ((got = mindex_folder_get(ix, txn, &fk, &f, why)) <= 0) {
		if (got == 0)
			buf_printf(why, "folder \"%s\" is not indexed", folder);
		goto out;
	}
	incomplete = since < f.vanished_floor;
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
	rc = incomplete ? 1 : 0;
out:
	if (c != NULL)
		mdb_cursor_close(c);
	buf_free(&key);
	(void)mindex_end(ix, txn, false, why);
	return rc;
}

/* mindex_cache_put_once - put ents[0..n) in one transaction, one try
 * (strict: a message the index does not hold is an error, else its
 * blob is skipped) */
static int
mindex_cache_put_once(struct mindex *ix, const char *folder,
    const struct mindex_cache_ent *ents, size_t n, bool strict,
    struct buf *why)
{
	struct mindex_fk fk;
	struct mindex_msg m;
	struct buf key = BUF_INIT;
	unsigned char t[5];
	MDB_txn *txn;
	MDB_val k, v;
	int rc = -1, got, mrc;

	for (size_t i = 0; i < n; i++) {
		if (ents[i].len > MINDEX_CACHE_MAX) {
			buf_set(why, "cache blob too large");
			return -1;
		}
	}
	if (mindex_fkey(ix, folder, &fk, why) < 0 ||
	    mindex_begin(ix, true, &txn, why) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		/* only for a message the index holds: an expunged one's
		 * blob would stay forever */
		if ((got = mindex_msg_get(ix, txn, &fk, ents[i].uid, &m,
		    why)) < 0)
			goto out;
		if (got == 0) {
			if (!strict)
				continue;
			buf_printf(why, "no message %u", ents[i].uid);
			goto out;
		}
		mindex_put32(t, ents[i].uid);
		t[4] = ents[i].kind;
		buf_reset(&key);
		mindex_key(&fk, t, sizeof(t), &key);
		k = mindex_val(&key);
		v = (MDB_val){ents[i].len, (void *)ents[i].data};
		if ((mrc = mdb_put(txn, ix->cache, &k, &v, 0)) != 0) {
			mindex_mdb_error(why, mrc, "cache");
			goto out;
		}
	}
	rc = 0;
out:
	buf_free(&key);
	if (mindex_end(ix, txn, rc == 0, why) < 0)
		rc = -1;
	return rc;
}

/* mindex_cache_put_try - mindex_cache_put_once, tried again while the
 * map grows */
static int
mindex_cache_put_try(struct mindex *ix, const char *folder,
    const struct mindex_cache_ent *ents, size_t n, bool strict,
    struct buf *why)
{
	int rc;

	for (int tries = 0;; tries++) {
		rc = mindex_cache_put_once(ix, folder, ents, n, strict, why);
		if (rc == 0 || tries + 1 >= MINDEX_TRIES ||
		    !mindex_map_full(why))
			return rc;
		buf_reset(why);
	}
}

/* mindex_cache_put - see mindex.h */
int
mindex_cache_put(struct mindex *ix, const char *folder, uint32_t uid,
    uint8_t kind, const void *data, size_t len, struct buf *why)
{
	struct mindex_cache_ent e = {uid, kind, data, len};

	return mindex_cache_put_try(ix, folder, &e, 1, true, why);
}

/* mindex_cache_put_many - see mindex.h (blobs of messages expunged
 * meanwhile are skipped) */
int
mindex_cache_put_many(struct mindex *ix, const char *folder,
    const struct mindex_cache_ent *ents, size_t n, struct buf *why)
{
	if (n == 0)
		return 0;
	return mindex_cache_put_try(ix, folder, ents, n, false, why);
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
