/*
 * mindex_sync - bringing a folder's index in line with its Maildir: the
 * scan of new/ and cur/, UIDs for new files in arrival order, flag
 * changes and expunges made by other tools, and rebuilds that keep UIDs
 * from the old index or Dovecot's dovecot-uidlist, and the removal of
 * stale tmp/ files. See mindex.h for the crash-safety argument.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
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

/* one file found by a scan */
struct mindex_ent {
	const char *name;	/* in the scan's name blocks */
	size_t blen;
	bool in_new;
	bool matched;
	long long sec;		/* the name's leading number: arrival */
};

/* names of a scan, in blocks that never move */
#define MINDEX_NAME_BLOCK 65536
struct mindex_names {
	struct mindex_names *next;
	size_t used;
	char data[MINDEX_NAME_BLOCK];
};

/*
 * A scan of new/ and cur/: every file once by base name (a file in both,
 * moved meanwhile, counts as the cur/ one), found by a hash of its base
 * name. An unchanged INBOX of 100,000 is read again after every doubt
 * (see mindex_unchanged): a hash lookup per index record instead of a
 * sort and a binary search of names that share their first dozen bytes.
 */
struct mindex_scan {
	struct mindex_ent *v;
	size_t n, cap;
	uint32_t *slot;		/* entry index + 1; 0 free */
	size_t nslot;		/* a power of two, at least 2n */
	struct mindex_names *names;
};

/* mindex_scan_hash - FNV-1a of a base name, its bits mixed down (a
 * multiplication moves them only up, and the table uses the low ones) */
static uint32_t
mindex_scan_hash(const char *p, size_t n)
{
	uint32_t h = 2166136261u;

	while (n-- > 0)
		h = (h ^ (unsigned char)*p++) * 16777619u;
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

/* mindex_scan_name - a copy of name (len bytes, NUL added) in s's blocks */
static const char *
mindex_scan_name(struct mindex_scan *s, const char *name, size_t len)
{
	struct mindex_names *b = s->names;
	char *p;

	if (b == NULL || MINDEX_NAME_BLOCK - b->used < len + 1) {
		b = xmalloc(sizeof(*b));
		b->next = s->names;
		b->used = 0;
		s->names = b;
	}
	p = b->data + b->used;
	memcpy(p, name, len);
	p[len] = '\0';
	b->used += len + 1;
	return p;
}

/* mindex_scan_slot - the slot of base[0..blen) in s's table: its entry's
 * or the free one where it would go */
static uint32_t *
mindex_scan_slot(const struct mindex_scan *s, const char *base, size_t blen)
{
	size_t mask = s->nslot - 1;
	size_t i = mindex_scan_hash(base, blen) & mask;

	for (;; i = (i + 1) & mask) {
		const struct mindex_ent *e;

		if (s->slot[i] == 0)
			return &s->slot[i];
		e = &s->v[s->slot[i] - 1];
		if (e->blen == blen && memcmp(e->name, base, blen) == 0)
			return &s->slot[i];
	}
}

/* mindex_scan_index - the hash table of s's entries; one entry per base
 * name stays (the cur/ one: cur/ was read last), the rest go */
static void
mindex_scan_index(struct mindex_scan *s)
{
	size_t out = 0;

	for (s->nslot = 64; s->nslot < 2 * s->n + 1; s->nslot *= 2)
		;
	s->slot = xcalloc(s->nslot, sizeof(*s->slot));
	for (size_t i = 0; i < s->n; i++) {
		uint32_t *slot = mindex_scan_slot(s, s->v[i].name,
		    s->v[i].blen);

		if (*slot != 0) {
			/* a later entry of the same base: it replaces */
			s->v[*slot - 1] = s->v[i];
			continue;
		}
		s->v[out] = s->v[i];
		*slot = (uint32_t)++out;
	}
	s->n = out;
}

/* mindex_scan_dir - add the files of dir/sub to s; -1 with why */
static int
mindex_scan_dir(const char *dir, bool folder, const char *sub, bool in_new,
    struct mindex_scan *s, struct buf *why)
{
	struct dirent *de;
	DIR *d;

	if ((d = mindex_opendir(dir, folder, sub)) == NULL) {
		buf_printf(why, "open %s/%s: %s", dir, sub, strerror(errno));
		return -1;
	}
	while ((errno = 0, de = readdir(d)) != NULL) {
		struct mindex_ent *e;
		size_t len = strlen(de->d_name);

		if (de->d_name[0] == '.' || len >
		    MINDEX_NAME_MAX - 3 - 6 - MINDEX_KEYWORDS_MAX ||
		    (de->d_type != DT_REG && de->d_type != DT_UNKNOWN))
			continue;
		if (s->n == s->cap) {
			if (s->cap >= UINT32_MAX / 4) {
				buf_printf(why, "%s/%s: too many files", dir,
				    sub);
				closedir(d);
				return -1;
			}
			s->cap = s->cap ? 2 * s->cap : 256;
			s->v = xreallocarray(s->v, s->cap, sizeof(*s->v));
		}
		e = &s->v[s->n++];
		e->name = mindex_scan_name(s, de->d_name, len);
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
	uint32_t *slot;

	if (s->n == 0)
		return NULL;
	slot = mindex_scan_slot(s, base, blen);
	return *slot != 0 ? &s->v[*slot - 1] : NULL;
}

/* mindex_scan_free - release a scan */
static void
mindex_scan_free(struct mindex_scan *s)
{
	while (s->names != NULL) {
		struct mindex_names *b = s->names;

		s->names = b->next;
		free(b);
	}
	x_free(&s->v);
	x_free(&s->slot);
	s->n = s->cap = s->nslot = 0;
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
	if (seed->n > 0)
		qsort(seed->v, seed->n, sizeof(*seed->v),
		    mindex_seed_cmp);
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

/* mindex_uidlist_header - the first line of a dovecot-uidlist: its
 * version (1 or 3) and UIDVALIDITY and UIDNEXT into seed, or 0 */
static int
mindex_uidlist_header(char *line, struct mindex_seed *seed)
{
	unsigned long long uv = 0, next = 0;
	int version = 0;

	if (line[0] == '1' && line[1] == ' ') {
		version = 1;
		if (sscanf(line + 2, "%llu %llu", &uv, &next) != 2)
			version = 0;
	} else if (line[0] == '3' && line[1] == ' ') {
		char *save = NULL;

		version = 3;
		for (char *t = strtok_r(line + 2, " ", &save); t != NULL;
		    t = strtok_r(NULL, " ", &save)) {
			if (t[0] == 'V')
				uv = strtoull(t + 1, NULL, 10);
			else if (t[0] == 'N')
				next = strtoull(t + 1, NULL, 10);
		}
	}
	if (version == 0 || uv == 0 || uv > UINT32_MAX || next >= UINT32_MAX)
		return 0;
	seed->uidvalidity = (uint32_t)uv;
	seed->uidnext = next > 0 ? (uint32_t)next : 1;
	return version;
}

/* mindex_uidlist_entry - one "<uid> [<ext>...] :<file name>" line
 * (version 1: "<uid> <file name>") into seed; anything else is skipped */
static void
mindex_uidlist_entry(char *line, int version, struct mindex_seed *seed)
{
	unsigned long long uid;
	char *end, *name;

	if (line[0] < '1' || line[0] > '9')
		return;
	uid = strtoull(line, &end, 10);
	if (uid == 0 || uid >= UINT32_MAX || *end != ' ')
		return;
	if (version == 3) {
		if ((name = strstr(end, " :")) == NULL)
			return;
		name += 2;
	} else {
		name = end + 1;
	}
	if (*name == '\0' || *name == '.' || strchr(name, '/') != NULL ||
	    strchr(name, ' ') != NULL || mindex_base_len(name) == 0 ||
	    mindex_base_len(name) > MINDEX_NAME_MAX)
		return;
	mindex_seed_add(seed, name, mindex_base_len(name), (uint32_t)uid);
}

/* mindex_uidlist_parse - see mindex_int.h */
int
mindex_uidlist_parse(const char *data, size_t n, struct mindex_seed *seed)
{
	char line[MINDEX_UIDLIST_LINE];
	int version = 0;

	for (size_t off = 0; off < n;) {
		const char *nl = memchr(data + off, '\n', n - off);
		size_t len = nl ? (size_t)(nl - (data + off)) : n - off;
		size_t next = off + len + (nl ? 1 : 0);

		if (len > 0 && data[off + len - 1] == '\r')
			len--;
		if (len < sizeof(line) && memchr(data + off, '\0', len) ==
		    NULL) {
			memcpy(line, data + off, len);
			line[len] = '\0';
			if (version == 0) {
				if ((version = mindex_uidlist_header(line,
				    seed)) == 0)
					return 0;
			} else {
				mindex_uidlist_entry(line, version, seed);
			}
		} else if (version == 0) {
			return 0;	/* no usable header */
		}
		off = next;
	}
	if (version == 0)
		return 0;
	mindex_seed_sort(seed);
	return 1;
}

/*
 * mindex_uidlist - the seed from Dovecot's dovecot-uidlist in dir, if
 * any (a regular file of at most MINDEX_UIDLIST_MAX bytes, no link
 * followed): 1 read, 0 none or unusable.
 */
int
mindex_uidlist(const char *dir, struct mindex_seed *seed)
{
	struct buf path = BUF_INIT, data = BUF_INIT;
	char chunk[65536];
	struct stat st;
	ssize_t r;
	int fd, rc = 0;

	buf_printf(&path, "%s/dovecot-uidlist", dir);
	fd = open(buf_cstr(&path), O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC);
	buf_free(&path);
	if (fd < 0)
		return 0;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > MINDEX_UIDLIST_MAX) {
		close(fd);
		return 0;
	}
	while ((r = read(fd, chunk, sizeof(chunk))) > 0 &&
	    data.len + (size_t)r <= MINDEX_UIDLIST_MAX)
		buf_append(&data, chunk, (size_t)r);
	close(fd);
	if (r == 0)
		rc = mindex_uidlist_parse(data.data, data.len, seed);
	buf_free(&data);
	return rc;
}

/* a message whose record a sync rewrites */
struct mindex_change {
	struct mindex_msg m;
	bool to_cur;		/* in new/ with flags to show: move it */
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
	int rc = -1, got, mrc, fd_new = -1, fd_cur = -1;

	memset(r, 0, sizeof(*r));
	if ((got = mindex_folder_get(ix, txn, fk, &f, why)) < 0)
		goto out;
	if (got == 0) {
		if (seed == NULL && mindex_uidlist(fk->dir, &own) == 1)
			seed = &own;
		memset(&f, 0, sizeof(f));
		f.uidnext = 1;
		f.highestmodseq = 1;
		f.recent = 1;	/* all it finds is new: \Recent */
		if (seed != NULL && seed->uidvalidity != 0) {
			f.uidvalidity = seed->uidvalidity;
		} else if (mindex_new_uidvalidity(ix, txn, 0, &f.uidvalidity,
		    why) < 0) {
			goto out;
		}
		/* the MAILBOXID: a new record is a new folder */
		if (getrandom(f.id, sizeof(f.id), 0) != (ssize_t)sizeof(f.id)) {
			buf_printf(why, "getrandom: %s", strerror(errno));
			goto out;
		}
		dirty = true;
	}
	if (seed != NULL && seed->uidnext > f.uidnext)
		f.uidnext = seed->uidnext;
	modseq = f.highestmodseq + 1;

	/* new/ before cur/: a file moving between them is seen at least
	 * once (if twice, the cur/ one wins) */
	if (mindex_scan_dir(fk->dir, !MINDEX_FK_INBOX(fk), "new", true, &s,
	    why) < 0 || mindex_scan_dir(fk->dir, !MINDEX_FK_INBOX(fk), "cur",
	    false, &s, why) < 0)
		goto out;
	mindex_scan_index(&s);

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
		if (e->in_new == m.in_new && strcmp(e->name, m.name) == 0)
			continue;
		if (nch == cap_ch) {
			cap_ch = cap_ch ? 2 * cap_ch : 64;
			ch = xreallocarray(ch, cap_ch, sizeof(*ch));
		}
		ch[nch].m = m;
		ch[nch].to_cur = false;
		snprintf(ch[nch].m.name, sizeof(m.name), "%s", e->name);
		if (e->in_new) {
			/* in new/ under another name, or a record of cur/
			 * whose file is in new/ (an index of the version
			 * before, crashed before its move; a tool moving
			 * it back): the record's flags stand, so a file
			 * with flags goes to cur/, one without stays */
			ch[nch].m.in_new = true;
			ch[nch].to_cur = m.flags != 0 || m.keywords != 0 ||
			    strchr(e->name, ':') != NULL;
			nch++;
			continue;
		}
		/* in cur/: renamed by another tool (also moved there from
		 * new/ by one, pop3d or mutt): its name has the flags */
		mindex_flags_from_name(e->name, &fl, &kw);
		ch[nch].m.in_new = false;
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
		if (mindex_vanish(ix, txn, fk, gone, ngone, modseq, &f,
		    why) < 0)
			goto out;
		r->expunged = (uint32_t)ngone;
	}

	/* renamed by someone else, or in new/ with flags to show */
	for (size_t i = 0; i < nch; i++) {
		struct mindex_msg *m = &ch[i].m;

		if (ch[i].to_cur) {
			struct mindex_msg dst = *m;

			if (mindex_name_with_flags(m->name,
			    mindex_base_len(m->name), m->flags, m->keywords,
			    dst.name, sizeof(dst.name)) < 0)
				continue;
			dst.in_new = false;
			mindex_msg_path(fk->dir, m, &path);
			mindex_msg_path(fk->dir, &dst, &to);
			if (rename(buf_cstr(&path), buf_cstr(&to)) < 0)
				continue;	/* moved meanwhile */
			r->moved++;
			*m = dst;
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
	if (nfresh > 0) {
		qsort(fresh, nfresh, sizeof(*fresh), mindex_cmp_arrival);
		/* the moves and stats by name in the directories scanned: a
		 * path walk less per file (a cold INBOX of 100,000) */
		if ((fd_new = mindex_opendir_fd(fk->dir, !MINDEX_FK_INBOX(fk),
		    "new")) < 0 || (fd_cur = mindex_opendir_fd(fk->dir,
		    !MINDEX_FK_INBOX(fk), "cur")) < 0) {
			buf_printf(why, "open %s: %s", fk->dir,
			    strerror(errno));
			goto out;
		}
	}
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
			/* (the name it would have in cur/ must fit) */
			if (mindex_name_with_flags(e->name, e->blen, m.flags,
			    m.keywords, m.name, sizeof(m.name)) < 0) {
				e->matched = true;
				continue;
			}
			if (e->in_new && strchr(e->name, ':') == NULL) {
				/* the usual: it stays in new/, no rename */
				m.in_new = true;
				snprintf(m.name, sizeof(m.name), "%s",
				    e->name);
			} else if (e->in_new) {
				/* a name with flags in new/: to cur/ */
				if (renameat(fd_new, e->name, fd_cur,
				    m.name) < 0) {
					e->matched = true; /* moved meanwhile */
					continue;
				}
				mindex_point("sync:moved");
				r->moved++;
			} else {
				snprintf(m.name, sizeof(m.name), "%s", e->name);
			}
			mindex_msg_path(fk->dir, &m, &path);
			if (fstatat(m.in_new ? fd_new : fd_cur, m.name, &st,
			    AT_SYMLINK_NOFOLLOW) < 0 ||
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
	if (fd_new >= 0)
		(void)close(fd_new);
	if (fd_cur >= 0)
		(void)close(fd_cur);
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

/*
 * Stale tmp/ files. A writer killed between creating its file in tmp/ and
 * linking it into new/ leaves the file behind; Dovecot and Postfix's
 * local remove such files once they are 36 hours old, and so does a sync
 * here. Each worker does it at most once an hour per folder (a small
 * table of folder hashes, shared by the worker's threads: a collision only
 * means a folder is looked at again sooner) and looks at a bounded number
 * of entries per pass, so a huge tmp/ never stalls a sync.
 */
#define MINDEX_TMP_AGE		(36 * 3600)	/* older than this goes */
#define MINDEX_TMP_EVERY	3600		/* a folder at most this often */
#define MINDEX_TMP_SCAN		5000		/* entries read per pass */
#define MINDEX_TMP_SLOTS	1024		/* folders remembered */

static pthread_mutex_t mindex_tmp_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	uint64_t hash;
	time_t when;
} mindex_tmp_seen[MINDEX_TMP_SLOTS];

/* mindex_tmp_due - is the folder at dir due for a tmp/ clean-up (and
 * marked done if so)? */
static bool
mindex_tmp_due(const char *dir, time_t now)
{
	uint64_t h = 14695981039346656037ULL;	/* FNV-1a */
	size_t slot;
	bool due;

	for (const unsigned char *p = (const unsigned char *)dir; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	slot = (size_t)(h % MINDEX_TMP_SLOTS);
	pthread_mutex_lock(&mindex_tmp_lock);
	due = mindex_tmp_seen[slot].hash != h ||
	    now - mindex_tmp_seen[slot].when >= MINDEX_TMP_EVERY ||
	    now < mindex_tmp_seen[slot].when;
	if (due) {
		mindex_tmp_seen[slot].hash = h;
		mindex_tmp_seen[slot].when = now;
	}
	pthread_mutex_unlock(&mindex_tmp_lock);
	return due;
}

/* mindex_tmp_clean - remove the regular files of the folder's tmp/ last
 * changed over MINDEX_TMP_AGE ago; failures are logged, never fatal (the
 * sync itself is done) */
static void
mindex_tmp_clean(const struct mindex_fk *fk)
{
	time_t now = time(NULL);
	struct dirent *de;
	struct stat st;
	unsigned seen = 0, gone = 0;
	DIR *d;

	if (!mindex_tmp_due(fk->dir, now))
		return;
	/* no link followed: a planted tmp/ link must not aim the unlinks
	 * at another directory */
	if ((d = mindex_opendir(fk->dir, !MINDEX_FK_INBOX(fk), "tmp")) ==
	    NULL) {
		if (errno != ENOENT)
			msg_warn("open %s/tmp: %m", fk->dir);
		return;
	}
	while (seen < MINDEX_TMP_SCAN && (de = readdir(d)) != NULL) {
		seen++;
		if (de->d_name[0] == '.' ||
		    (de->d_type != DT_REG && de->d_type != DT_UNKNOWN))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st,
		    AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) ||
		    st.st_mtime > now - MINDEX_TMP_AGE)
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) < 0) {
			if (errno != ENOENT)
				msg_warn("remove %s/tmp/%s: %m", fk->dir,
				    de->d_name);
			continue;
		}
		gone++;
	}
	closedir(d);
	if (gone > 0)
		msg_info("%s: removed %u tmp/ file%s older than 36 hours",
		    fk->dir, gone, gone == 1 ? "" : "s");
}

/* mindex_sync - see mindex.h */
int
mindex_sync(struct mindex *ix, const char *folder,
    struct mindex_sync_result *r, struct buf *why)
{
	struct mindex_sync_result dummy;
	struct mindex_fk fk;
	MDB_txn *txn;
	bool rebuilt = false;

	if (r == NULL)
		r = &dummy;
	if (mindex_fkey(ix, folder, &fk, why) < 0 ||
	    mindex_folder_ready(&fk, why) < 0)
		return -1;
	for (int tries = 0; tries < MINDEX_TRIES; tries++) {
		bool ok;

		if (mindex_begin(ix, true, &txn, why) < 0)
			return -1;
		ok = mindex_sync_txn(ix, txn, &fk, NULL, r, why) == 0;
		if (mindex_end(ix, txn, ok, why) == 0) {
			mindex_point("sync:committed");
			mindex_tmp_clean(&fk);
			return 0;
		}
		if (mindex_is_damaged(why) && !rebuilt) {
			/* the Maildir is the truth: rebuild the folder from
			 * it, keeping the UIDs of the records still sound */
			msg_warn("%s: %s; rebuilding the folder's index",
			    ix->path, buf_cstr(why));
			buf_reset(why);
			rebuilt = true;
			if (mindex_begin(ix, true, &txn, why) < 0)
				return -1;
			ok = mindex_rebuild_folder(ix, txn, folder, why) == 0;
			if (mindex_end(ix, txn, ok, why) < 0)
				return -1;
			continue;
		}
		if (!mindex_map_full(why))
			return -1;
		buf_reset(why);	/* the map grew: again */
	}
	return -1;
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
	maildir_usage_forget(path);	/* the usage is counted anew too */
	mindex_clean_leftovers(ix);
	if (mindex_folder_names(ix, &names, why) < 0)
		goto out;
	/* one transaction for all: other processes see the old index or
	 * the new one; a map too small grows and the rebuild starts over */
	for (int tries = 0; tries < MINDEX_TRIES; tries++) {
		if (mindex_begin(ix, true, &txn, why) < 0)
			goto out;
		rc = 0;
		for (const char *p = names.data; rc == 0 && p < names.data +
		    names.len; p += strlen(p) + 1)
			rc = mindex_rebuild_folder(ix, txn, p, why);
		if (rc == 0)
			rc = mindex_drop_stale(ix, txn, &names, why);
		if (mindex_end(ix, txn, rc == 0, why) == 0) {
			rc = 0;
			break;
		}
		rc = -1;
		if (!mindex_map_full(why))
			break;
		buf_reset(why);
	}
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
		/* a new UIDVALIDITY: the old history means nothing */
		k = (MDB_val){fk.klen, fk.key};
		(void)mdb_del(txn, ix->folders, &k, NULL);
		if (mindex_del_prefix(txn, ix->expunged, key.data, key.len,
		    why) < 0)
			goto out;
	}
	rc = mindex_sync_txn(ix, txn, &fk, got == 1 ? &seed : NULL, &sr, why);
out:
	if (c != NULL)
		mdb_cursor_close(c);
	mindex_seed_free(&seed);
	buf_free(&key);
	return rc;
}

/* mindex_ns - a time in nanoseconds */
static long long
mindex_ns(const struct timespec *t)
{
	return (long long)t->tv_sec * 1000000000LL + t->tv_nsec;
}

/* mindex_stamp_doubt - the doubt of mtimes a and b in nanoseconds: whole
 * seconds on both means a coarse file system (or a chance) */
static long long
mindex_stamp_doubt(const struct timespec *a, const struct timespec *b)
{
	if (a->tv_nsec == 0 && b->tv_nsec == 0)
		return (MINDEX_STAMP_DOUBT + 1) * 1000000000LL;
	return MINDEX_STAMP_DOUBT_FINE;
}

/* mindex_stamp_old - are both mtimes older than the doubt (see
 * mindex.h) at now? */
static bool
mindex_stamp_old(const struct timespec *a, const struct timespec *b,
    const struct timespec *now)
{
	long long nn = mindex_ns(now);

	/* whole seconds: compared in whole seconds */
	if (a->tv_nsec == 0 && b->tv_nsec == 0)
		return a->tv_sec + MINDEX_STAMP_DOUBT < now->tv_sec &&
		    b->tv_sec + MINDEX_STAMP_DOUBT < now->tv_sec;
	return mindex_ns(a) + MINDEX_STAMP_DOUBT_FINE < nn &&
	    mindex_ns(b) + MINDEX_STAMP_DOUBT_FINE < nn;
}

/* mindex_stamp - see mindex.h */
int
mindex_stamp(struct mindex *ix, const char *folder, struct mindex_stamp *s,
    struct buf *why)
{
	struct mindex_fk fk;
	struct mindex_folder_rec f;
	struct buf path = BUF_INIT;
	struct timespec now;
	struct stat sn, sc;
	MDB_txn *txn;
	int got;

	memset(s, 0, sizeof(*s));
	if (mindex_fkey(ix, folder, &fk, why) < 0)
		return -1;
	buf_printf(&path, "%s/new", fk.dir);
	got = lstat(buf_cstr(&path), &sn);
	buf_reset(&path);
	buf_printf(&path, "%s/cur", fk.dir);
	if (got < 0 || lstat(buf_cstr(&path), &sc) < 0) {
		buf_printf(why, "%s: %s", buf_cstr(&path), strerror(errno));
		buf_free(&path);
		return -1;
	}
	buf_free(&path);
	clock_gettime(CLOCK_REALTIME, &now);
	s->newt = sn.st_mtim;
	s->curt = sc.st_mtim;
	s->at = now;
	s->trusted = S_ISDIR(sn.st_mode) && S_ISDIR(sc.st_mode) &&
	    mindex_stamp_old(&sn.st_mtim, &sc.st_mtim, &now);
	if (mindex_begin(ix, false, &txn, why) < 0)
		return -1;
	if ((got = mindex_folder_get(ix, txn, &fk, &f, why)) > 0) {
		s->uidvalidity = f.uidvalidity;
		s->uidnext = f.uidnext;
		s->highestmodseq = f.highestmodseq;
	} else {
		s->trusted = false;	/* not indexed yet */
	}
	mindex_end(ix, txn, true, why);
	return got < 0 ? -1 : 0;
}

/* mindex_stamp_status - see mindex.h */
void
mindex_stamp_status(struct mindex_stamp *s, const struct mindex_status *st)
{
	s->uidvalidity = st->uidvalidity;
	s->uidnext = st->uidnext;
	s->highestmodseq = st->highestmodseq;
	/* the doubt of a lenient check runs from the listing, not from
	 * the lstat()s before the sync: a sync of 100,000 files would
	 * spend it all (a spoiled stamp stays spoiled) */
	if (s->at.tv_sec != 0)
		clock_gettime(CLOCK_REALTIME, &s->at);
}

/* mindex_stamp_spoil - see mindex.h */
void
mindex_stamp_spoil(struct mindex_stamp *s)
{
	s->trusted = false;
	s->at.tv_sec = 0;
	s->at.tv_nsec = 0;
}

/* mindex_stamp_after - see mindex.h */
int
mindex_stamp_after(struct mindex *ix, const char *folder,
    const struct mindex_stamp *pre, struct mindex_stamp *s, struct buf *why)
{
	if (mindex_stamp(ix, folder, s, why) < 0)
		return -1;
	s->trusted = pre->trusted && mindex_ns(&s->newt) ==
	    mindex_ns(&pre->newt) && mindex_ns(&s->curt) ==
	    mindex_ns(&pre->curt);
	return 0;
}

/* mindex_own_init - see mindex.h */
void
mindex_own_init(struct mindex_own *own, const char *folder)
{
	memset(own, 0, sizeof(*own));
	own->folder = folder;
}

/* mindex_own_of - see mindex_int.h */
struct mindex_own *
mindex_own_of(struct mindex *ix, struct mindex_own *own,
    const struct mindex_fk *fk)
{
	struct mindex_fk ok;
	struct buf why = BUF_INIT;
	bool same;

	if (own == NULL || own->folder == NULL)
		return NULL;
	same = mindex_fkey(ix, own->folder, &ok, &why) == 0 &&
	    strcmp(ok.key, fk->key) == 0;
	buf_free(&why);
	return same ? own : NULL;
}

/* mindex_own_new - see mindex_int.h */
void
mindex_own_new(struct mindex_own *own, const struct mindex_fk *fk,
    bool before)
{
	struct buf path = BUF_INIT;
	struct stat st;

	if (own == NULL || (before && own->newdir++ > 0))
		return;
	buf_printf(&path, "%s/new", fk->dir);
	if (lstat(buf_cstr(&path), &st) < 0)
		own->lost = true;
	else if (before)
		own->new_before = st.st_mtim;
	else
		own->new_after = st.st_mtim;
	buf_free(&path);
}

/* mindex_stamp_own - see mindex.h */
int
mindex_stamp_own(struct mindex *ix, const char *folder,
    const struct mindex_stamp *s, const struct mindex_own *own,
    struct mindex_stamp *post, struct buf *why)
{
	struct timespec at;
	bool new_ok;

	if (s->at.tv_sec == 0 || (own->writes == 0 && own->added == 0) ||
	    own->lost)
		return 0;	/* spoiled, or nothing of its own to tell */
	if (mindex_stamp(ix, folder, post, why) < 0)
		return -1;
	/* new/: untouched by the operations and as it was; or as it was
	 * right before their first change there and as their last left
	 * it (a delivery in between hides behind them, for the doubt
	 * below, as another tool's change in cur/ does) */
	if (own->newdir == 0)
		new_ok = mindex_ns(&post->newt) == mindex_ns(&s->newt);
	else
		new_ok = mindex_ns(&own->new_before) == mindex_ns(&s->newt) &&
		    mindex_ns(&post->newt) == mindex_ns(&own->new_after);
	/* the same UIDs but theirs, and every modseq since the holder's
	 * is theirs */
	if (!new_ok || post->uidvalidity != s->uidvalidity ||
	    post->uidnext != s->uidnext + own->added ||
	    post->highestmodseq != s->highestmodseq + own->writes)
		return 0;
	/* cur/'s mtime now is the operations', but another tool's change
	 * in its clock tick, or between the check before them and now,
	 * hides behind it: the doubt of a delayed refresh, from the
	 * earlier of s's doubt and now */
	at = post->at;
	post->trusted = false;
	post->at = s->trusted ? at : s->at;
	return 1;
}

/* mindex_stamp_same - see mindex.h */
bool
mindex_stamp_same(const struct mindex_stamp *a, const struct mindex_stamp *b)
{
	return a->newt.tv_sec == b->newt.tv_sec &&
	    a->newt.tv_nsec == b->newt.tv_nsec &&
	    a->curt.tv_sec == b->curt.tv_sec &&
	    a->curt.tv_nsec == b->curt.tv_nsec &&
	    a->uidvalidity == b->uidvalidity && a->uidnext == b->uidnext &&
	    a->highestmodseq == b->highestmodseq;
}

/* mindex_unchanged - see mindex.h */
bool
mindex_unchanged(struct mindex *ix, const char *folder,
    const struct mindex_stamp *s, bool lenient)
{
	struct mindex_stamp now;
	struct buf why = BUF_INIT;
	int rc;

	if (!s->trusted && !lenient)
		return false;
	rc = mindex_stamp(ix, folder, &now, &why);
	buf_free(&why);
	if (rc < 0 || !mindex_stamp_same(&now, s))
		return false;
	/* untrusted: stands until the doubt has passed since it was
	 * taken; the next check after that syncs */
	return s->trusted || mindex_ns(&now.at) - mindex_ns(&s->at) <
	    mindex_stamp_doubt(&s->newt, &s->curt);
}
