/*
 * mindex_test - the mail index against real Maildirs in a temp folder:
 * record codec, sync (new mail, flags and expunges made by other tools),
 * store, expunge, append, copy/move, folders, subscriptions, rebuilds
 * that keep UIDs (old index, dovecot-uidlist, damaged environment),
 * stale tmp/ files, processes killed at every step, concurrent writers
 * from forked processes, links planted in the Maildir, and a big
 * folder's timing (HERALD_MINDEX_BIG=N messages; default a small N).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/mem.h"
#include "base/test.h"
#include "mail/maildir.h"
#include "mail/mindex.h"
#include "mail/mindex_int.h"

static char tmpdir[] = "/tmp/herald-mindex-test-XXXXXX";
static char md[512];
static int case_no;

/* fresh - a new Maildir per case */
static const char *
fresh(void)
{
	struct buf why = BUF_INIT;

	snprintf(md, sizeof(md), "%s/m%d", tmpdir, ++case_no);
	(void)maildir_create(md, &why);
	buf_free(&why);
	return md;
}

/* source - a memfd holding text */
static int
source(const char *text)
{
	int fd = memfd_create("mindex_test", MFD_CLOEXEC);
	size_t n = strlen(text);

	if (fd < 0 || write(fd, text, n) != (ssize_t)n)
		abort();
	return fd;
}

/* deliver - what local does: text into dir/new/; the name into name */
static int
deliver(const char *dir, const char *text, struct buf *name)
{
	struct buf why = BUF_INIT;
	int fd = source(text), rc;

	rc = maildir_deliver(dir, "", 0, fd, 0, (off_t)strlen(text), name,
	    &why);
	if (rc < 0)
		fprintf(stderr, "  deliver: %s\n", buf_cstr(&why));
	close(fd);
	buf_free(&why);
	return rc;
}

/* deliver_flagged - deliver, then give the file in new/ a name with
 * ":2,S" (as a tool that files mail already read there would) */
static int
deliver_flagged(const char *dir, const char *text)
{
	struct buf name = BUF_INIT;
	char from[800], to[820];
	int rc = -1;

	if (deliver(dir, text, &name) == 0) {
		snprintf(from, sizeof(from), "%s/new/%s", dir, buf_cstr(&name));
		snprintf(to, sizeof(to), "%s:2,S", from);
		rc = rename(from, to);
	}
	buf_free(&name);
	return rc;
}

/* count_dir - plain files in dir/sub */
static int
count_dir(const char *dir, const char *sub)
{
	char path[700];
	struct dirent *de;
	int n = 0;
	DIR *d;

	/* a cut path would count another directory */
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, sub) >=
	    sizeof(path) || (d = opendir(path)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* write_file - data into path */
static int
write_file(const char *path, const char *data)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	size_t n = strlen(data);
	int ok;

	if (fd < 0)
		return -1;
	ok = write(fd, data, n) == (ssize_t)n;
	close(fd);
	return ok ? 0 : -1;
}

/* a copy of a folder's index for checks */
struct snap {
	int n;
	uint32_t uid[4096];
	char name[4096][MINDEX_NAME_MAX + 1];
	uint32_t flags[4096];
	bool in_new[4096];
};

/* snap_one - mindex_list callback */
static int
snap_one(const struct mindex_msg *m, void *ctx)
{
	struct snap *s = ctx;

	if (s->n >= 4096)
		return 1;
	s->uid[s->n] = m->uid;
	s->flags[s->n] = m->flags;
	s->in_new[s->n] = m->in_new;
	snprintf(s->name[s->n], sizeof(s->name[0]), "%s", m->name);
	s->n++;
	return 0;
}

/* take - the whole folder into s; -1 on error */
static int
take(struct mindex *ix, const char *folder, struct snap *s)
{
	struct buf why = BUF_INIT;
	int rc;

	s->n = 0;
	rc = mindex_list(ix, folder, 1, UINT32_MAX, snap_one, s, &why);
	if (rc < 0)
		fprintf(stderr, "  list: %s\n", buf_cstr(&why));
	buf_free(&why);
	return rc;
}

/* base_of - base name length */
static size_t
base_of(const char *name)
{
	const char *c = strchr(name, ':');

	return c ? (size_t)(c - name) : strlen(name);
}

/* snap_path - the path of message i of s in the folder at dir, made by
 * mindex_msg_path, into path */
static void
snap_path(const struct snap *s, int i, const char *dir, char *path,
    size_t size)
{
	struct mindex_msg m;
	struct buf b = BUF_INIT;

	memset(&m, 0, sizeof(m));
	snprintf(m.name, sizeof(m.name), "%s", s->name[i]);
	m.in_new = s->in_new[i];
	mindex_msg_path(dir, &m, &b);
	snprintf(path, size, "%s", buf_cstr(&b));
	buf_free(&b);
}

/* agrees - the index of folder (dir) agrees with its files: every
 * record's file is where it says (new/ without flags, or cur/), every
 * file has one record, UIDs rise */
static int
agrees(struct mindex *ix, const char *folder, const char *dir)
{
	static struct snap s;
	char path[1200];
	struct stat st;
	int in_new = 0;

	if (take(ix, folder, &s) < 0)
		return 0;
	for (int i = 0; i < s.n; i++) {
		snap_path(&s, i, dir, path, sizeof(path));
		if (s.in_new[i] && (s.flags[i] != 0 ||
		    strchr(s.name[i], ':') != NULL)) {
			fprintf(stderr, "  uid %u: in new/ with flags\n",
			    s.uid[i]);
			return 0;
		}
		in_new += s.in_new[i];
		if (stat(path, &st) < 0) {
			fprintf(stderr, "  uid %u: %s missing\n", s.uid[i],
			    path);
			return 0;
		}
		if (i > 0 && s.uid[i] <= s.uid[i - 1])
			return 0;
		for (int j = 0; j < i; j++)
			if (base_of(s.name[j]) == base_of(s.name[i]) &&
			    memcmp(s.name[j], s.name[i],
			    base_of(s.name[i])) == 0) {
				fprintf(stderr, "  %s twice\n", s.name[i]);
				return 0;
			}
	}
	if (count_dir(dir, "new") != in_new || count_dir(dir, "cur") !=
	    s.n - in_new) {
		fprintf(stderr, "  %d records (%d in new/), new/ %d, cur/ %d\n",
		    s.n, in_new, count_dir(dir, "new"), count_dir(dir, "cur"));
		return 0;
	}
	return 1;
}

/* test_append_mem - APPEND of a message in memory: the same record and
 * file as from a file descriptor, nothing left in tmp/ */
static void
test_append_mem(void)
{
	const char *dir = fresh();
	const char *text = "Subject: hi\r\n\r\nbody\r\n";
	struct buf why = BUF_INIT;
	struct mindex_msg m;
	struct mindex *ix;
	uint32_t uid = 0, uv = 0;
	char path[700];
	struct stat st;

	T_EQ_INT(mindex_open(dir, &ix, &why), 0);
	T_EQ_INT(mindex_append_mem(ix, "INBOX", text, strlen(text),
	    MINDEX_F_SEEN, NULL, 0, 1600000000, &uid, &uv, NULL, &why), 0);
	T_EQ_INT(uid, 1);
	T_ASSERT(uv != 0);
	T_EQ_INT(mindex_get(ix, "INBOX", 1, &m, &why), 1);
	T_EQ_INT(m.size, 18);	/* CRLF stored as LF */
	T_EQ_INT(m.wsize, 21);
	T_EQ_INT(m.internaldate, 1600000000);
	T_ASSERT(snprintf(path, sizeof(path), "%s/cur/%s", dir, m.name) <
	    (int)sizeof(path));
	T_EQ_INT(stat(path, &st), 0);
	T_EQ_INT(st.st_size, 18);
	snprintf(path, sizeof(path), "%s/tmp", dir);
	T_EQ_INT(rmdir(path), 0);	/* empty */
	mindex_close(&ix);
	buf_free(&why);
}

/* test_file_sizes - S= and W= of a name are believed only when well
 * formed (maildir_name_size); else the file is stat'ed and read */
static void
test_file_sizes(void)
{
	static const struct {
		const char *name;
		uint64_t size, wsize;
	} cases[] = {
		{"1.M1P1.h,S=10,W=12:2,S", 10, 12},	/* believed */
		{"1.M1P1.h,S=10,W=12", 10, 12},
		{"1.M1P1.h:2,", 4, 6},			/* none: read */
		{"1.M1P1.h,S=12abc,W=99x:2,", 4, 6},	/* junk after */
		{"1.M1P1.h,S=,W=:2,", 4, 6},		/* empty */
		{"1.M1P1.h,S=-3,W=-1", 4, 6},		/* signed */
		{"1.M1P1.h,S=99999999999999999999999,"
		    "W=99999999999999999999999", 4, 6},	/* overflow */
		{"1.M1P1.h,S=10,W=9", 4, 6},		/* W= < S=: read */
		{"1.M1P1.h,S=10", 4, 6},		/* no W=: read */
		{"1.M1P1.h,W=12abc", 4, 6},
	};
	char path[700];
	struct stat st;
	int fd;

	fresh();
	snprintf(path, sizeof(path), "%s/cur/f", md);
	fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
	T_ASSERT(fd >= 0);
	T_EQ_INT(write(fd, "a\nb\n", 4), 4);
	close(fd);
	T_EQ_INT(stat(path, &st), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		uint64_t size = 0, wsize = 0;

		T_EQ_INT(mindex_file_sizes(path, cases[i].name, &st, &size,
		    &wsize), 0);
		if (size != cases[i].size || wsize != cases[i].wsize)
			T_FAIL_("%s: sizes %llu/%llu, want %llu/%llu",
			    cases[i].name, (unsigned long long)size,
			    (unsigned long long)wsize,
			    (unsigned long long)cases[i].size,
			    (unsigned long long)cases[i].wsize);
	}
}

/*
 * test_codec_new_place - the place of a message's file: a record of a
 * file in new/ round-trips with its bit; a version 1 record (written
 * before there was a place) decodes as cur/ and is written again as
 * version 2; mindex_msg_path and mindex_msg_moved follow the place
 */
static void
test_codec_new_place(void)
{
	struct mindex_msg m = {0}, back, moved;
	struct buf b = BUF_INIT, v1 = BUF_INIT, why = BUF_INIT, path = BUF_INIT;

	m.uid = 7;
	m.modseq = 3;
	m.size = 10;
	m.wsize = 12;
	m.internaldate = 1700000000;
	m.in_new = true;
	snprintf(m.name, sizeof(m.name), "1.M2P3.host,S=10,W=12");
	mindex_msg_encode(&m, &b);
	T_EQ_INT(b.len, 48 + strlen(m.name));
	T_EQ_INT((unsigned char)b.data[0], 2);
	T_EQ_INT((unsigned char)b.data[47], 1);
	T_EQ_INT(mindex_msg_decode(b.data, b.len, &back, &why), 0);
	T_ASSERT(back.in_new);
	T_EQ_STR(back.name, m.name);
	T_EQ_INT(back.uid, 7);
	/* version 1, as the index of the version before wrote it: the
	 * same head without the place byte; its file is in cur/ */
	buf_append(&v1, b.data, 47);
	buf_append(&v1, "x:2,S", 5);
	v1.data[0] = 1;
	v1.data[45] = 0;
	v1.data[46] = 5;
	T_EQ_INT(mindex_msg_decode(v1.data, v1.len, &back, &why), 0);
	T_ASSERT(!back.in_new);
	T_EQ_STR(back.name, "x:2,S");
	T_EQ_INT(back.uid, 7);
	T_EQ_INT(back.wsize, 12);
	/* (a version 1 record of version 2's length is cut wrong) */
	v1.data[0] = 2;
	T_ASSERT(mindex_msg_decode(v1.data, v1.len, &back, &why) < 0);
	buf_reset(&v1);
	mindex_msg_encode(&back, &v1);
	T_EQ_INT((unsigned char)v1.data[0], 2);
	T_EQ_INT((unsigned char)v1.data[47], 0);
	/* the one place paths are made */
	mindex_msg_path("/m/.Work", &m, &path);
	T_EQ_STR(buf_cstr(&path), "/m/.Work/new/1.M2P3.host,S=10,W=12");
	mindex_msg_path("/m", &back, &path);
	T_EQ_STR(buf_cstr(&path), "/m/cur/x:2,S");
	/* where pop3d or mutt leave a file of new/ they move to cur/ */
	T_EQ_INT(mindex_msg_moved(&m, &moved), 0);
	T_ASSERT(!moved.in_new);
	T_EQ_STR(moved.name, "1.M2P3.host,S=10,W=12:2,");
	T_EQ_INT(moved.uid, 7);
	T_ASSERT(mindex_msg_moved(&back, &moved) < 0);	/* not in new/ */
	buf_free(&b);
	buf_free(&v1);
	buf_free(&why);
	buf_free(&path);
}

/* test_codec - record codec round-trips and refuses damage */
static void
test_codec(void)
{
	struct mindex_msg m = {0}, back;
	struct mindex_folder_rec f = {7, 8, 9, 3, 5, {0}, 6}, fb;
	struct buf b = BUF_INIT, why = BUF_INIT;

	m.uid = 42;
	m.flags = MINDEX_F_SEEN | MINDEX_F_DELETED;
	m.keywords = 5;
	m.modseq = 1000;
	m.size = 123;
	m.wsize = 130;
	m.internaldate = 1700000000;
	snprintf(m.name, sizeof(m.name), "1.M2P3.host,S=123,W=130:2,STac");
	mindex_msg_encode(&m, &b);
	T_EQ_INT(mindex_msg_decode(b.data, b.len, &back, &why), 0);
	T_EQ_INT(back.uid, 42);
	T_EQ_INT(back.modseq, 1000);
	T_EQ_INT(back.wsize, 130);
	T_EQ_STR(back.name, m.name);
	T_ASSERT(!back.in_new);
	/* damage of every kind is refused */
	for (size_t cut = 0; cut < b.len; cut++)
		T_ASSERT(mindex_msg_decode(b.data, cut, &back, &why) < 0);
	b.data[0] = 3;
	T_ASSERT(mindex_msg_decode(b.data, b.len, &back, &why) < 0);
	b.data[0] = 2;
	b.data[5] = 0x40;	/* unknown flag bit */
	T_ASSERT(mindex_msg_decode(b.data, b.len, &back, &why) < 0);
	b.data[5] = 0;
	b.data[47] = 0x02;	/* unknown place bit */
	T_ASSERT(mindex_msg_decode(b.data, b.len, &back, &why) < 0);
	b.data[47] = 0;
	b.data[b.len - 1] = '/';
	T_ASSERT(mindex_msg_decode(b.data, b.len, &back, &why) < 0);
	buf_reset(&b);
	test_codec_new_place();
	buf_reset(&b);
	mindex_folder_encode(&f, &b);
	T_EQ_INT(mindex_folder_decode(b.data, b.len, &fb, &why), 0);
	T_EQ_INT(fb.uidnext, 8);
	T_EQ_INT(fb.vanished_floor, 5);
	T_EQ_INT(fb.recent, 6);
	T_ASSERT(mindex_folder_decode(b.data, b.len - 1, &fb, &why) < 0);
	/* a version 3 record (no recent): nothing in it is \Recent */
	b.data[0] = 3;
	T_EQ_INT(mindex_folder_decode(b.data, b.len - 4, &fb, &why), 0);
	T_EQ_INT(fb.recent, 8);
	b.data[0] = 4;
	/* the MAILBOXID: from the id, or the uidvalidity of an old record */
	{
		char id[MINDEX_OBJID_LEN + 1];

		memset(f.id, 0xab, sizeof(f.id));
		buf_reset(&b);
		mindex_folder_encode(&f, &b);
		T_EQ_INT(mindex_folder_decode(b.data, b.len, &fb, &why), 0);
		mindex_mailboxid(&fb, id);
		T_EQ_STR(id, "Fabababababababababababababababab");
		b.data[0] = 2;	/* a version 2 record: no id */
		T_EQ_INT(mindex_folder_decode(b.data, b.len - MINDEX_FOLDER_ID -
		    4, &fb, &why), 0);
		mindex_mailboxid(&fb, id);
		T_EQ_STR(id, "F00000007000000000000000000000000");
		/* EMAILID: by the base name, or the copy's E= field */
		mindex_emailid("1.M2P3.host,S=1,W=1:2,S", id);
		T_EQ_INT(strlen(id), MINDEX_OBJID_LEN);
		T_EQ_INT(id[0], 'M');
		{
			char id2[MINDEX_OBJID_LEN + 1], nm[200];

			mindex_emailid("1.M2P3.host,S=1,W=1:2,FS", id2);
			T_EQ_STR(id, id2);
			mindex_emailid("1.M2P4.host,S=1,W=1", id2);
			T_ASSERT(strcmp(id, id2) != 0);
			snprintf(nm, sizeof(nm), "9.M9P9.h,S=1,W=1,E=%s:2,",
			    id);
			mindex_emailid(nm, id2);
			T_EQ_STR(id, id2);
			/* a damaged E= is not taken */
			snprintf(nm, sizeof(nm), "9.M9P9.h,E=%.20s:2,", id);
			mindex_emailid(nm, id2);
			T_ASSERT(strcmp(id, id2) != 0);
		}
	}
	buf_free(&b);
	buf_free(&why);
}

/* test_sync_new_mail - sync gives new mail UIDs and leaves it in new/ */
static void
test_sync_new_mail(void)
{
	const char *dir = fresh();
	struct buf n1 = BUF_INIT, n2 = BUF_INIT, n3 = BUF_INIT;
	struct buf why = BUF_INIT;
	struct mindex_sync_result r;
	struct mindex_status st;
	struct mindex *ix;
	static struct snap s;

	T_EQ_INT(deliver(dir, "Subject: 1\n\none\n", &n1), 0);
	T_EQ_INT(deliver(dir, "Subject: 2\n\ntwo\n", &n2), 0);
	T_EQ_INT(mindex_open(dir, &ix, &why), 0);
	T_EQ_INT(mindex_sync(ix, "INBOX", &r, &why), 0);
	T_EQ_INT(r.added, 2);
	T_EQ_INT(deliver(dir, "Subject: 3\n\nthree\n", &n3), 0);
	T_EQ_INT(mindex_sync(ix, "INBOX", &r, &why), 0);
	T_EQ_INT(r.added, 1);
	T_EQ_INT(mindex_sync(ix, "INBOX", &r, &why), 0);
	T_EQ_INT(r.added + r.expunged + r.changed, 0);
	T_EQ_INT(take(ix, "INBOX", &s), 0);
	T_EQ_INT(s.n, 3);
	T_EQ_INT(s.uid[2], 3);
	/* the name (the POP3 UIDL) stays; the file stays in new/, no
	 * file was renamed */
	T_EQ_STR(s.name[2], buf_cstr(&n3));
	T_ASSERT(s.in_new[0] && s.in_new[1] && s.in_new[2]);
	T_EQ_INT((int)r.moved, 0);
	T_EQ_INT(count_dir(dir, "new"), 3);
	T_EQ_INT(count_dir(dir, "cur"), 0);
	T_EQ_INT(mindex_status(ix, "INBOX", &st, &why), 0);
	T_EQ_INT(st.messages, 3);
	T_EQ_INT(st.unseen, 3);
	T_EQ_INT(st.uidnext, 4);
	T_ASSERT(st.uidvalidity > 0);
	T_ASSERT(agrees(ix, "INBOX", dir));
	mindex_close(&ix);
	buf_free(&n1);
	buf_free(&n2);
	buf_free(&n3);
	buf_free(&why);
}

/* test_store_and_other_tools - store renames the flags; changes made
 * by other tools are seen */
static void
test_store_and_other_tools(void)
{
	const char *dir = fresh();
	struct buf why = BUF_INIT, kw = BUF_INIT;
	const char *words[] = {"$Junk", "Work"};
	struct mindex_sync_result r;
	struct mindex_status st;
	struct mindex_msg m;
	struct mindex *ix;
	static struct snap s;
	char from[1200], to[1200];
	uint64_t ms;

	for (int i = 0; i < 3; i++)
		T_EQ_INT(deliver(dir, "Subject: x\n\nx\n", NULL), 0);
	T_EQ_INT(mindex_open(dir, &ix, &why), 0);
	T_EQ_INT(mindex_sync(ix, "INBOX", &r, &why), 0);
	T_EQ_INT(mindex_status(ix, "INBOX", &st, &why), 0);
	ms = st.highestmodseq;
	T_EQ_INT(mindex_store(ix, "INBOX", 2, MINDEX_ADD, MINDEX_F_SEEN |
	    MINDEX_F_FLAGGED, words, 2, 0, &m, &why), 1);
	T_ASSERT(m.modseq > ms);
	T_ASSERT(strstr(m.name, ":2,FSab") != NULL);
	T_EQ_INT(mindex_keywords(ix, "INBOX", &kw, &why), 0);
	T_EQ_STR(buf_cstr(&kw), "$Junk\nWork\n");
	/* nothing to change; a stale UNCHANGEDSINCE is refused */
	T_EQ_INT(mindex_store(ix, "INBOX", 2, MINDEX_ADD, MINDEX_F_SEEN, NULL,
	    0, 0, NULL, &why), 0);
	T_EQ_INT(mindex_store(ix, "INBOX", 2, MINDEX_REMOVE, MINDEX_F_SEEN,
	    NULL, 0, ms, NULL, &why), 2);
	T_EQ_INT(mindex_store(ix, "INBOX", 2, MINDEX_REMOVE, 0, &words[0], 1,
	    0, &m, &why), 1);
	T_ASSERT(strstr(m.name, ":2,FSb") != NULL);
	T_EQ_INT(mindex_store(ix, "INBOX", 99, MINDEX_ADD, MINDEX_F_SEEN, NULL,
	    0, 0, NULL, &why), 0);

	/* the stored one moved from new/ to cur/; the others stay */
	T_EQ_INT(take(ix, "INBOX", &s), 0);
	T_ASSERT(s.in_new[0] && !s.in_new[1] && s.in_new[2]);
	/* another Maildir tool marks message 1 read (moving it from new/
	 * to cur/) and deletes 3 */
	snap_path(&s, 0, dir, from, sizeof(from));
	snprintf(to, sizeof(to), "%s/cur/%s:2,S", dir, s.name[0]);
	T_EQ_INT(rename(from, to), 0);
	snap_path(&s, 2, dir, from, sizeof(from));
	T_EQ_INT(unlink(from), 0);
	T_EQ_INT(mindex_sync(ix, "INBOX", &r, &why), 0);
	T_EQ_INT(r.changed, 1);
	T_EQ_INT(r.expunged, 1);
	T_EQ_INT(mindex_get(ix, "INBOX", 1, &m, &why), 1);
	T_EQ_INT(m.flags, MINDEX_F_SEEN);
	T_ASSERT(!m.in_new);
	T_EQ_INT(mindex_get(ix, "INBOX", 3, &m, &why), 0);
	T_ASSERT(agrees(ix, "INBOX", dir));
	mindex_close(&ix);
	buf_free(&why);
	buf_free(&kw);
}

/* test_store_uids_batch - a store over many messages is one commit;
 * results as mindex_store's, cache blobs put many at once */
static void
test_store_uids_batch(void)
{
	const char *dir = fresh();
	const char *env = getenv("HERALD_MINDEX_BATCH");
	long n = env ? strtol(env, NULL, 10) : 4000; /* snap holds 4096 */
	const char *words[] = {"Work"};
	struct buf why = BUF_INIT, out = BUF_INIT;
	struct mindex_cache_ent *ents;
	struct mindex_status st;
	struct mindex_msg *m, one;
	struct mindex *ix;
	uint32_t *uids;
	unsigned long c0;
	uint64_t ms;
	int *rc;
	char path[800];

	for (long i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/new/%ld.M%ldP1Q%ld.host,"
		    "S=20,W=21", dir, 1700000000 + i / 100, i % 100, i);
		T_EQ_INT(write_file(path, "Subject: big\n\nbody\n"), 0);
	}
	uids = xcalloc((size_t)n + 1, sizeof(*uids));
	rc = xcalloc((size_t)n + 1, sizeof(*rc));
	m = xcalloc((size_t)n + 1, sizeof(*m));
	ents = xcalloc((size_t)n + 1, sizeof(*ents));
	for (long i = 0; i < n; i++)
		uids[i] = (uint32_t)i + 1;
	uids[n] = 999999;	/* no such message */
	T_EQ_INT(mindex_open(dir, &ix, &why), 0);
	T_EQ_INT(mindex_sync(ix, "INBOX", NULL, &why), 0);
	T_EQ_INT(mindex_status(ix, "INBOX", &st, &why), 0);
	ms = st.highestmodseq;

	c0 = mindex_write_commits;
	T_EQ_INT(mindex_store_uids(ix, "INBOX", uids, (size_t)n + 1,
	    MINDEX_ADD, MINDEX_F_SEEN, words, 1, 0, rc, m, NULL, &why), 0);
	T_EQ_INT(mindex_write_commits - c0, 1);
	for (long i = 0; i < n; i++) {
		T_EQ_INT(rc[i], 1);
		T_ASSERT(strstr(m[i].name, ":2,Sa") != NULL);
		T_ASSERT(m[i].modseq > ms);
	}
	T_EQ_INT(rc[n], 0);
	T_EQ_INT(mindex_status(ix, "INBOX", &st, &why), 0);
	T_EQ_INT(st.unseen, 0);
	T_ASSERT(agrees(ix, "INBOX", dir));

	/* nothing to change: no commit at all; stale UNCHANGEDSINCE */
	c0 = mindex_write_commits;
	T_EQ_INT(mindex_store_uids(ix, "INBOX", uids, (size_t)n,
	    MINDEX_ADD, MINDEX_F_SEEN, NULL, 0, 0, rc, NULL, NULL, &why), 0);
	T_EQ_INT(mindex_write_commits - c0, 0);
	T_EQ_INT(rc[0], 0);
	T_EQ_INT(mindex_store_uids(ix, "INBOX", uids, 2, MINDEX_REMOVE,
	    MINDEX_F_SEEN, NULL, 0, ms, rc, NULL, NULL, &why), 0);
	T_EQ_INT(rc[0], 2);
	T_EQ_INT(rc[1], 2);
	/* a file another tool renamed away meanwhile: left to sync */
	snprintf(path, sizeof(path), "%s/cur/%s", dir, m[0].name);
	T_EQ_INT(unlink(path), 0);
	T_EQ_INT(mindex_store_uids(ix, "INBOX", uids, 2, MINDEX_SET,
	    MINDEX_F_FLAGGED, NULL, 0, 0, rc, m, NULL, &why), 0);
	T_EQ_INT(rc[0], 0);
	T_EQ_INT(rc[1], 1);
	T_EQ_INT(m[1].flags, MINDEX_F_FLAGGED);
	T_EQ_INT(mindex_get(ix, "INBOX", 2, &one, &why), 1);
	T_EQ_INT(one.flags, MINDEX_F_FLAGGED);
	T_EQ_INT(one.keywords, 0);
	T_EQ_INT(mindex_sync(ix, "INBOX", NULL, &why), 0);
	T_ASSERT(agrees(ix, "INBOX", dir));

	/* cache blobs: many in one commit; an expunged one skipped */
	for (long i = 0; i < n; i++)
		ents[i] = (struct mindex_cache_ent){(uint32_t)i + 1,
		    MINDEX_CACHE_ENVELOPE, "(NIL)", 5};
	c0 = mindex_write_commits;
	T_EQ_INT(mindex_cache_put_many(ix, "INBOX", ents, (size_t)n, &why),
	    0);
	T_EQ_INT(mindex_write_commits - c0, 1);
	T_EQ_INT(mindex_cache_get(ix, "INBOX", 2, MINDEX_CACHE_ENVELOPE, &out,
	    &why), 1);
	T_EQ_STR(buf_cstr(&out), "(NIL)");
	T_EQ_INT(mindex_cache_get(ix, "INBOX", 1, MINDEX_CACHE_ENVELOPE, &out,
	    &why), 0);
	mindex_close(&ix);
	free(uids);
	free(rc);
	free(m);
	free(ents);
	buf_free(&why);
	buf_free(&out);
}

/* tmp_file - a file in dir/tmp/ last changed age seconds ago */
static void
tmp_file(const char *dir, const char *name, time_t age)
{
	char path[4096];
	struct timespec t[2];
	int fd;

	snprintf(path, sizeof(path), "%s/tmp/%s", dir, name);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) < 0 || write(fd, "half\n", 5) != 5)
		abort();
	(void)close(fd);
	t[0].tv_sec = t[1].tv_sec = time(NULL) - age;
	t[0].tv_nsec = t[1].tv_nsec = 0;
	if (utimensat(AT_FDCWD, path, t, 0) < 0)
		abort();
}

/* tmp_has - is dir/tmp/name there? */
static bool
tmp_has(const char *dir, const char *name)
{
	char path[4096];
	struct stat st;

	snprintf(path, sizeof(path), "%s/tmp/%s", dir, name);
	return lstat(path, &st) == 0;
}

/* test_tmp_clean - a sync removes tmp/ files older than 36 hours (and no
 * younger one), at most once an hour per folder */
static void
test_tmp_clean(void)
{
	const char *dir = fresh();
	struct buf why = BUF_INIT;
	struct mindex_sync_result r;
	struct mindex *ix;

	tmp_file(dir, "1.old", 40 * 3600);
	tmp_file(dir, "2.day", 24 * 3600);
	tmp_file(dir, "3.new", 0);
	T_EQ_INT(mindex_open(dir, &ix, &why), 0);
	T_EQ_INT(mindex_sync(ix, "INBOX", &r, &why), 0);
	T_ASSERT(!tmp_has(dir, "1.old"));
	T_ASSERT(tmp_has(dir, "2.day"));
	T_ASSERT(tmp_has(dir, "3.new"));
	/* within the hour the folder's tmp/ is not read again */
	tmp_file(dir, "4.old", 40 * 3600);
	T_EQ_INT(mindex_sync(ix, "INBOX", &r, &why), 0);
	T_ASSERT(tmp_has(dir, "4.old"));
	mindex_close(&ix);
	buf_free(&why);
}

/* test_stamp - a folder's stamp: untrusted while its mtimes are young,
 * then unchanged until a delivery, a rename or an index change */
static void
test_stamp(void)
{
	const char *dir = fresh();
	struct buf why = BUF_INIT;
	struct timespec old[2] = {{1600000000, 5}, {1600000000, 5}};
	struct mindex_stamp s;
	struct mindex_status st;
	struct mindex *ix;
	char path[800];

	T_EQ_INT(deliver(dir, "Subject: x\n\nx\n", NULL), 0);
	T_EQ_INT(mindex_open(dir, &ix, &why), 0);
	T_EQ_INT(mindex_sync(ix, "INBOX", NULL, &why), 0);
	/* mtimes within the doubt are not trusted: a change in the same
	 * clock tick would leave them as they are */
	{
		struct timespec now, t[2];

		clock_gettime(CLOCK_REALTIME, &now);
		t[0] = t[1] = now;
		t[1].tv_nsec = 1;	/* sub-second: a fine file system */
		snprintf(path, sizeof(path), "%s/cur", dir);
		T_EQ_INT(utimensat(AT_FDCWD, path, t, 0), 0);
		T_EQ_INT(mindex_stamp(ix, "INBOX", &s, &why), 0);
		T_ASSERT(!s.trusted);
		T_ASSERT(!mindex_unchanged(ix, "INBOX", &s, false));
		/* lenient: it stands for the doubt after it was taken
		 * (Dovecot's delayed refresh), then a sync is due */
		T_ASSERT(mindex_unchanged(ix, "INBOX", &s, true));
		s.at.tv_sec--;
		T_ASSERT(!mindex_unchanged(ix, "INBOX", &s, true));
		/* the doubt runs from the listing the stamp was given */
		{
			struct mindex_status lst;

			T_EQ_INT(mindex_status(ix, "INBOX", &lst, &why), 0);
			mindex_stamp_status(&s, &lst);
			T_ASSERT(mindex_unchanged(ix, "INBOX", &s, true));
			/* a spoiled stamp stays spoiled */
			mindex_stamp_spoil(&s);
			mindex_stamp_status(&s, &lst);
			T_ASSERT(!mindex_unchanged(ix, "INBOX", &s, true));
		}
		/* older than MINDEX_STAMP_DOUBT_FINE, in sub-seconds:
		 * trusted (new/ too) */
		t[1].tv_sec = now.tv_sec - 1;
		T_EQ_INT(utimensat(AT_FDCWD, path, t, 0), 0);
		snprintf(path, sizeof(path), "%s/new", dir);
		T_EQ_INT(utimensat(AT_FDCWD, path, t, 0), 0);
		T_EQ_INT(mindex_stamp(ix, "INBOX", &s, &why), 0);
		T_ASSERT(s.trusted);
		/* whole seconds (a coarse file system): the second rule */
		t[1].tv_nsec = 0;
		T_EQ_INT(utimensat(AT_FDCWD, path, t, 0), 0);
		snprintf(path, sizeof(path), "%s/cur", dir);
		T_EQ_INT(utimensat(AT_FDCWD, path, t, 0), 0);
		T_EQ_INT(mindex_stamp(ix, "INBOX", &s, &why), 0);
		T_ASSERT(!s.trusted);
	}
	snprintf(path, sizeof(path), "%s/new", dir);
	T_EQ_INT(utimensat(AT_FDCWD, path, old, 0), 0);
	snprintf(path, sizeof(path), "%s/cur", dir);
	T_EQ_INT(utimensat(AT_FDCWD, path, old, 0), 0);
	T_EQ_INT(mindex_stamp(ix, "INBOX", &s, &why), 0);
	T_ASSERT(s.trusted);
	T_EQ_INT(mindex_status(ix, "INBOX", &st, &why), 0);
	mindex_stamp_status(&s, &st);
	T_ASSERT(mindex_unchanged(ix, "INBOX", &s, false));
	/* an index change (another process's STORE) */
	T_EQ_INT(mindex_store(ix, "INBOX", 1, MINDEX_ADD, MINDEX_F_SEEN, NULL,
	    0, 0, NULL, &why), 1);
	T_ASSERT(!mindex_unchanged(ix, "INBOX", &s, false));
	/* a nanosecond's difference in new/ (the STORE moved its file
	 * from new/ to cur/: both mtimes back first) */
	T_EQ_INT(utimensat(AT_FDCWD, path, old, 0), 0);
	snprintf(path, sizeof(path), "%s/new", dir);
	T_EQ_INT(utimensat(AT_FDCWD, path, old, 0), 0);
	T_EQ_INT(mindex_stamp(ix, "INBOX", &s, &why), 0);
	T_ASSERT(mindex_unchanged(ix, "INBOX", &s, false));
	old[1].tv_nsec++;
	snprintf(path, sizeof(path), "%s/new", dir);
	T_EQ_INT(utimensat(AT_FDCWD, path, old, 0), 0);
	T_ASSERT(!mindex_unchanged(ix, "INBOX", &s, false));
	mindex_close(&ix);
	buf_free(&why);
}

/* test_stamp_after - a sync that moved files from new/ re-reads the
 * mtimes it moved: the stamp after it stands (leniently) for the next
 * command instead of a second sync; a change after it still shows */
static void
test_stamp_after(void)
{
	const char *dir = fresh();
	struct buf why = BUF_INIT;
	struct timespec old[2] = {{1600000000, 5}, {1600000000, 5}};
	struct mindex_sync_result r;
	struct mindex_stamp pre, post;
	struct mindex *ix;
	char path[800];

	T_EQ_INT(mindex_open(dir, &ix, &why), 0);
	T_EQ_INT(mindex_sync(ix, "INBOX", NULL, &why), 0);
	/* mail put into new/ with flags in its names (only such files
	 * does a sync move) */
	T_EQ_INT(deliver_flagged(dir, "Subject: 1\n\none\n"), 0);
	T_EQ_INT(deliver_flagged(dir, "Subject: 2\n\ntwo\n"), 0);
	snprintf(path, sizeof(path), "%s/new", dir);
	T_EQ_INT(utimensat(AT_FDCWD, path, old, 0), 0);
	snprintf(path, sizeof(path), "%s/cur", dir);
	T_EQ_INT(utimensat(AT_FDCWD, path, old, 0), 0);
	T_EQ_INT(mindex_stamp(ix, "INBOX", &pre, &why), 0);
	T_ASSERT(pre.trusted);
	T_EQ_INT(mindex_sync(ix, "INBOX", &r, &why), 0);
	T_EQ_INT((int)r.moved, 2);
	T_EQ_INT((int)r.added, 2);
	/* the moves moved the mtimes: pre no longer holds */
	T_ASSERT(!mindex_unchanged(ix, "INBOX", &pre, true));
	T_EQ_INT(mindex_stamp_after(ix, "INBOX", &pre, &post, &why), 0);
	T_ASSERT(!post.trusted);
	T_ASSERT(!mindex_unchanged(ix, "INBOX", &post, false));
	T_ASSERT(mindex_unchanged(ix, "INBOX", &post, true));
	/* a delivery after it is seen, lenient or not */
	T_EQ_INT(deliver_flagged(dir, "Subject: 3\n\nthree\n"), 0);
	snprintf(path, sizeof(path), "%s/new", dir);
	{
		struct timespec t[2];

		clock_gettime(CLOCK_REALTIME, &t[0]);
		t[0].tv_sec += 5;	/* a later tick, surely */
		t[1] = t[0];
		T_EQ_INT(utimensat(AT_FDCWD, path, t, 0), 0);
	}
	T_ASSERT(!mindex_unchanged(ix, "INBOX", &post, true));
	/* a sync that moved nothing keeps the stamp before it */
	T_EQ_INT(mindex_sync(ix, "INBOX", &r, &why), 0);
	T_EQ_INT((int)r.moved, 1);
	T_EQ_INT(mindex_sync(ix, "INBOX", &r, &why), 0);
	T_EQ_INT((int)r.moved, 0);
	mindex_close(&ix);
	buf_free(&why);
}

/* stamp_old - new/ and cur/ of dir with mtimes long past */
static void
stamp_old(const char *dir)
{
	struct timespec old[2] = {{1600000000, 5}, {1600000000, 5}};
	char path[800];

	snprintf(path, sizeof(path), "%s/new", dir);
	T_EQ_INT(utimensat(AT_FDCWD, path, old, 0), 0);
	snprintf(path, sizeof(path), "%s/cur", dir);
	T_EQ_INT(utimensat(AT_FDCWD, path, old, 0), 0);
}

/* stamp_at - s taken now over dir's folder, its mtimes old first */
static void
stamp_at(struct mindex *ix, const char *dir, struct mindex_stamp *s)
{
	struct buf why = BUF_INIT;

	stamp_old(dir);
	T_EQ_INT(mindex_stamp(ix, "INBOX", s, &why), 0);
	buf_free(&why);
}

/* new_touch - new/'s mtime moved as another's change there would */
static void
new_touch(const char *dir, long sec)
{
	struct timespec t[2] = {{1700000000 + sec, 7}, {1700000000 + sec, 7}};
	char path[800];

	snprintf(path, sizeof(path), "%s/new", dir);
	T_EQ_INT(utimensat(AT_FDCWD, path, t, 0), 0);
}

/* test_stamp_own - an operation's own changes (struct mindex_own): the
 * stamp after it when its modseqs and UIDs are all that moved and new/
 * is as it was before its first change there and as its last left it,
 * untrusted, its doubt from the earlier of now and the holder's;
 * anything else (another writer's modseq, a delivery before or after
 * the op's changes in new/, a spoiled stamp, nothing written) says sync.
 * STORE's first flag, EXPUNGE and MOVE out of new/, APPEND and COPY
 * into the folder go by the one rule. */
static void
test_stamp_own(void)
{
	const char *dir = fresh();
	struct buf why = BUF_INIT;
	struct mindex_stamp s, post, held;
	struct mindex_status st;
	struct mindex_own own, other;
	struct mindex *ix;
	uint32_t uids[2] = {1, 2}, dst[2], uid, uv, n;
	int rc[2];

	T_EQ_INT(deliver(dir, "Subject: 1\n\none\n", NULL), 0);
	T_EQ_INT(deliver(dir, "Subject: 2\n\ntwo\n", NULL), 0);
	for (int i = 0; i < 6; i++)
		T_EQ_INT(deliver(dir, "Subject: n\n\nmore\n", NULL), 0);
	T_EQ_INT(mindex_open(dir, &ix, &why), 0);
	T_EQ_INT(mindex_sync(ix, "INBOX", NULL, &why), 0);
	T_EQ_INT(mindex_folder_create(ix, "Work", &why), 0);
	stamp_old(dir);
	T_EQ_INT(mindex_stamp(ix, "INBOX", &s, &why), 0);
	T_EQ_INT(mindex_status(ix, "INBOX", &st, &why), 0);
	mindex_stamp_status(&s, &st);
	T_ASSERT(s.trusted);
	/* two messages changed, both out of new/ with their first flag:
	 * two modseqs, and new/'s mtime, all theirs */
	mindex_own_init(&own, "INBOX");
	mindex_own_init(&other, "Work");
	T_EQ_INT(mindex_store_uids(ix, "INBOX", uids, 2, MINDEX_ADD,
	    MINDEX_F_SEEN, NULL, 0, 0, rc, NULL, &own, &why), 0);
	T_EQ_INT(mindex_store_uids(ix, "INBOX", uids, 2, MINDEX_ADD,
	    MINDEX_F_DELETED, NULL, 0, 0, rc, NULL, &other, &why), 0);
	T_EQ_INT((int)own.writes, 2);
	T_EQ_INT((int)own.newdir, 2);
	T_EQ_INT((int)other.writes, 0);	/* another folder's record */
	T_EQ_INT(mindex_stamp_own(ix, "INBOX", &s, &own, &post, &why), 0);
	held = post;
	own.writes += 2;	/* the second STORE, as if it were told */
	T_EQ_INT(mindex_stamp_own(ix, "INBOX", &s, &own, &post, &why), 1);
	T_ASSERT(!post.trusted);
	T_EQ_INT((int)(post.highestmodseq - s.highestmodseq), 4);
	T_ASSERT(post.at.tv_sec > s.at.tv_sec || (post.at.tv_sec ==
	    s.at.tv_sec && post.at.tv_nsec >= s.at.tv_nsec));
	/* it stands for a lenient check, not a strict one */
	T_ASSERT(mindex_unchanged(ix, "INBOX", &post, true));
	T_ASSERT(!mindex_unchanged(ix, "INBOX", &post, false));
	/* an op told of less than it did, or of nothing: sync */
	own.writes = 1;
	T_EQ_INT(mindex_stamp_own(ix, "INBOX", &s, &own, &post, &why), 0);
	mindex_own_init(&own, "INBOX");
	T_EQ_INT(mindex_stamp_own(ix, "INBOX", &s, &own, &post, &why), 0);

	/* an untrusted holder: the doubt runs from its stamp still */
	T_EQ_INT(mindex_stamp(ix, "INBOX", &held, &why), 0);
	held.trusted = false;
	held.at.tv_sec -= 5;	/* past the doubt, coarse or fine */
	mindex_own_init(&own, "INBOX");
	T_EQ_INT(mindex_store_uids(ix, "INBOX", uids, 1, MINDEX_ADD,
	    MINDEX_F_FLAGGED, NULL, 0, 0, rc, NULL, &own, &why), 0);
	T_EQ_INT(mindex_stamp_own(ix, "INBOX", &held, &own, &post, &why), 1);
	T_EQ_INT((int)post.at.tv_sec, (int)held.at.tv_sec);
	T_EQ_INT((int)post.at.tv_nsec, (int)held.at.tv_nsec);
	T_ASSERT(!mindex_unchanged(ix, "INBOX", &post, true));
	/* another writer's STORE between: one modseq more than ours */
	T_EQ_INT(mindex_stamp(ix, "INBOX", &held, &why), 0);
	mindex_own_init(&own, "INBOX");
	T_EQ_INT(mindex_store_uids(ix, "INBOX", &uids[1], 1, MINDEX_ADD,
	    MINDEX_F_FLAGGED, NULL, 0, 0, rc, NULL, &own, &why), 0);
	T_EQ_INT(mindex_store(ix, "INBOX", 1, MINDEX_REMOVE, MINDEX_F_SEEN,
	    NULL, 0, 0, NULL, &why), 1);
	T_EQ_INT(mindex_stamp_own(ix, "INBOX", &held, &own, &post, &why), 0);
	/* a delivery into new/ while a STORE in cur/ runs */
	stamp_at(ix, dir, &held);
	mindex_own_init(&own, "INBOX");
	T_EQ_INT(mindex_store_uids(ix, "INBOX", uids, 1, MINDEX_ADD,
	    MINDEX_F_ANSWERED, NULL, 0, 0, rc, NULL, &own, &why), 0);
	T_EQ_INT(deliver(dir, "Subject: 3\n\nthree\n", NULL), 0);
	T_EQ_INT(mindex_stamp_own(ix, "INBOX", &held, &own, &post, &why), 0);
	T_EQ_INT(mindex_sync(ix, "INBOX", NULL, &why), 0);	/* UID 9 */

	/* EXPUNGE of a message still in new/ (UID 3) moves new/'s mtime
	 * itself */
	stamp_at(ix, dir, &held);
	mindex_own_init(&own, "INBOX");
	T_EQ_INT(mindex_expunge(ix, "INBOX", (uint32_t[]){3}, 1, &n, &own,
	    &why), 0);
	T_EQ_INT((int)n, 1);
	T_EQ_INT((int)own.writes, 1);
	T_EQ_INT((int)own.newdir, 1);
	T_EQ_INT(mindex_stamp_own(ix, "INBOX", &held, &own, &post, &why), 1);
	/* ... but not a delivery before its first change there */
	stamp_at(ix, dir, &held);
	new_touch(dir, 1);
	mindex_own_init(&own, "INBOX");
	T_EQ_INT(mindex_expunge(ix, "INBOX", (uint32_t[]){4}, 1, &n, &own,
	    &why), 0);
	T_EQ_INT(mindex_stamp_own(ix, "INBOX", &held, &own, &post, &why), 0);
	/* ... nor one after its last */
	stamp_at(ix, dir, &held);
	mindex_own_init(&own, "INBOX");
	T_EQ_INT(mindex_expunge(ix, "INBOX", (uint32_t[]){5}, 1, &n, &own,
	    &why), 0);
	new_touch(dir, 2);
	T_EQ_INT(mindex_stamp_own(ix, "INBOX", &held, &own, &post, &why), 0);

	/* MOVE out of new/ (UID 6): the source's expunge is its change */
	stamp_at(ix, dir, &held);
	mindex_own_init(&own, "INBOX");
	T_EQ_INT(mindex_copy(ix, "INBOX", "Work", (uint32_t[]){6}, 1, true,
	    dst, &uv, &own, &why), 0);
	T_EQ_INT((int)own.writes, 1);
	T_EQ_INT((int)own.added, 0);
	T_EQ_INT(mindex_stamp_own(ix, "INBOX", &held, &own, &post, &why), 1);

	/* APPEND into the folder: a UID and a modseq, in and out of new/ */
	stamp_at(ix, dir, &held);
	mindex_own_init(&own, "INBOX");
	T_EQ_INT(mindex_append_mem(ix, "INBOX", "Subject: a\n\na\n", 14, 0,
	    NULL, 0, 0, &uid, &uv, &own, &why), 0);
	T_EQ_INT((int)own.added, 1);
	T_EQ_INT((int)own.writes, 1);
	T_EQ_INT(mindex_stamp_own(ix, "INBOX", &held, &own, &post, &why), 1);
	T_EQ_INT((int)post.uidnext, (int)held.uidnext + 1);
	/* ... but not with another's message indexed meanwhile */
	stamp_at(ix, dir, &held);
	mindex_own_init(&own, "INBOX");
	T_EQ_INT(mindex_append_mem(ix, "INBOX", "Subject: b\n\nb\n", 14, 0,
	    NULL, 0, 0, &uid, &uv, &own, &why), 0);
	T_EQ_INT(mindex_append_mem(ix, "INBOX", "Subject: c\n\nc\n", 14, 0,
	    NULL, 0, 0, &uid, &uv, NULL, &why), 0);
	T_EQ_INT(mindex_stamp_own(ix, "INBOX", &held, &own, &post, &why), 0);

	/* COPY into the folder itself: two UIDs, one modseq */
	stamp_at(ix, dir, &held);
	mindex_own_init(&own, "INBOX");
	T_EQ_INT(mindex_copy(ix, "INBOX", "INBOX", uids, 2, false, dst, &uv,
	    &own, &why), 0);
	T_EQ_INT((int)own.added, 2);
	T_EQ_INT((int)own.writes, 1);
	T_EQ_INT((int)own.newdir, 0);
	T_EQ_INT(mindex_stamp_own(ix, "INBOX", &held, &own, &post, &why), 1);

	/* a spoiled stamp holds for nothing */
	T_EQ_INT(mindex_stamp(ix, "INBOX", &held, &why), 0);
	mindex_own_init(&own, "INBOX");
	T_EQ_INT(mindex_store_uids(ix, "INBOX", uids, 1, MINDEX_ADD,
	    MINDEX_F_DRAFT, NULL, 0, 0, rc, NULL, &own, &why), 0);
	mindex_stamp_spoil(&held);
	T_EQ_INT(mindex_stamp_own(ix, "INBOX", &held, &own, &post, &why), 0);
	mindex_close(&ix);
	buf_free(&why);
}

/* test_recent - \Recent: the first claim takes what nobody claimed,
 * later ones nothing, new mail goes to the next claim; STATUS counts
 * what is unclaimed */
static void
test_recent(void)
{
	const char *dir = fresh();
	struct buf why = BUF_INIT;
	struct mindex_status st;
	struct mindex *ix;
	uint32_t lo, hi;

	T_EQ_INT(deliver(dir, "Subject: 1\n\none\n", NULL), 0);
	T_EQ_INT(deliver(dir, "Subject: 2\n\ntwo\n", NULL), 0);
	T_EQ_INT(mindex_open(dir, &ix, &why), 0);
	T_EQ_INT(mindex_sync(ix, "INBOX", NULL, &why), 0);
	T_EQ_INT(mindex_status(ix, "INBOX", &st, &why), 0);
	T_EQ_INT(st.recent, 2);
	T_EQ_INT(st.recent_from, 1);
	T_EQ_INT(mindex_claim_recent(ix, "INBOX", st.uidnext, &lo, &hi, &why),
	    0);
	T_EQ_INT(lo, 1);
	T_EQ_INT(hi, 3);
	T_EQ_INT(mindex_claim_recent(ix, "INBOX", st.uidnext, &lo, &hi, &why),
	    0);
	T_EQ_INT(hi - lo, 0);
	T_EQ_INT(mindex_status(ix, "INBOX", &st, &why), 0);
	T_EQ_INT(st.recent, 0);
	T_EQ_INT(deliver(dir, "Subject: 3\n\nthree\n", NULL), 0);
	T_EQ_INT(mindex_sync(ix, "INBOX", NULL, &why), 0);
	/* a claim never goes past the folder's UIDNEXT */
	T_EQ_INT(mindex_claim_recent(ix, "INBOX", 100, &lo, &hi, &why), 0);
	T_EQ_INT(lo, 3);
	T_EQ_INT(hi, 4);
	/* it survives a reopen (it is in the folder record) */
	mindex_close(&ix);
	T_EQ_INT(mindex_open(dir, &ix, &why), 0);
	T_EQ_INT(mindex_claim_recent(ix, "INBOX", 100, &lo, &hi, &why), 0);
	T_EQ_INT(hi - lo, 0);
	mindex_close(&ix);
	buf_free(&why);
}

/* vanished_cb - collect ranges */
static void
vanished_cb(uint32_t lo, uint32_t hi, uint64_t modseq, void *ctx)
{
	struct buf *b = ctx;

	buf_printf(b, "%u:%u ", lo, hi);
	(void)modseq;
}

/* test_expunge - expunge and VANISHED ranges */
static void
test_expunge(void)
{
	const char *dir = fresh();
	struct buf why = BUF_INIT, v = BUF_INIT;
	struct mindex_status st;
	struct mindex *ix;
	uint32_t n, two = 2;
	uint64_t ms;

	for (int i = 0; i < 6; i++)
		T_EQ_INT(deliver(dir, "Subject: x\n\nx\n", NULL), 0);
	T_EQ_INT(mindex_open(dir, &ix, &why), 0);
	T_EQ_INT(mindex_sync(ix, "INBOX", NULL, &why), 0);
	T_EQ_INT(mindex_status(ix, "INBOX", &st, &why), 0);
	ms = st.highestmodseq;
	for (uint32_t u = 3; u <= 5; u++)
		T_EQ_INT(mindex_store(ix, "INBOX", u, MINDEX_ADD,
		    MINDEX_F_DELETED, NULL, 0, 0, NULL, &why), 1);
	T_EQ_INT(mindex_expunge(ix, "INBOX", NULL, 0, &n, NULL, &why), 0);
	T_EQ_INT(n, 3);
	T_EQ_INT(mindex_expunge(ix, "INBOX", &two, 1, &n, NULL, &why), 0);
	T_EQ_INT(n, 1);
	T_EQ_INT(mindex_vanished(ix, "INBOX", ms, vanished_cb, &v, &why), 0);
	T_EQ_STR(buf_cstr(&v), "3:5 2:2 ");
	T_EQ_INT(mindex_status(ix, "INBOX", &st, &why), 0);
	T_EQ_INT(st.messages, 2);
	T_ASSERT(agrees(ix, "INBOX", dir));
	mindex_close(&ix);
	buf_free(&why);
	buf_free(&v);
}

/* count_cb - count the ranges */
static void
count_cb(uint32_t lo, uint32_t hi, uint64_t modseq, void *ctx)
{
	(void)lo;
	(void)hi;
	(void)modseq;
	(*(int *)ctx)++;
}

/* test_vanished_bounded - the expunge history of a folder is bounded:
 * its oldest half goes, and a question older than what is kept says so */
static void
test_vanished_bounded(void)
{
	const char *dir = fresh();
	struct buf why = BUF_INIT;
	struct mindex_status st;
	struct mindex *ix;
	int n = MINDEX_VANISHED_MAX + 2, ranges = 0;
	char path[800];

	for (int i = 0; i < 2 * n; i++) {
		snprintf(path, sizeof(path), "%s/new/%d.M%dP1.h", dir,
		    1700000000 + i, i);
		T_EQ_INT(write_file(path, "x\n"), 0);
	}
	T_EQ_INT(mindex_open(dir, &ix, &why), 0);
	T_EQ_INT(mindex_sync(ix, "INBOX", NULL, &why), 0);
	T_EQ_INT(mindex_status(ix, "INBOX", &st, &why), 0);
	T_EQ_INT(mindex_vanished(ix, "INBOX", 0, count_cb, &ranges, &why),
	    0);
	T_EQ_INT(ranges, 0);
	/* every other message goes: one range each, more than are kept */
	for (int i = 0; i < 2 * n; i += 2) {
		snprintf(path, sizeof(path), "%s/new/%d.M%dP1.h", dir,
		    1700000000 + i, i);
		T_EQ_INT(unlink(path), 0);
	}
	T_EQ_INT(mindex_sync(ix, "INBOX", NULL, &why), 0);
	T_EQ_INT(mindex_vanished(ix, "INBOX", st.highestmodseq, count_cb,
	    &ranges, &why), 1);
	T_ASSERT(ranges <= MINDEX_VANISHED_MAX / 2 + 1);
	T_EQ_INT(mindex_status(ix, "INBOX", &st, &why), 0);
	T_EQ_INT(st.messages, n);
	ranges = 0;
	T_EQ_INT(mindex_vanished(ix, "INBOX", st.highestmodseq, count_cb,
	    &ranges, &why), 0);
	T_EQ_INT(ranges, 0);
	mindex_close(&ix);
	buf_free(&why);
}

/* test_append_copy_move - append, cache, copy and move */
static void
test_append_copy_move(void)
{
	const char *dir = fresh();
	const char *words[] = {"Work"};
	struct buf why = BUF_INIT, kw = BUF_INIT, blob = BUF_INIT;
	struct mindex_msg m;
	struct mindex *ix;
	uint32_t uid, uv, uids[2], dst[2], uv2;
	char sub[700];
	int fd = source("Subject: hi\r\n\r\nbody\r\n");

	T_EQ_INT(mindex_open(dir, &ix, &why), 0);
	T_EQ_INT(mindex_append(ix, "INBOX", fd, 21, MINDEX_F_SEEN, words, 1,
	    1600000000, &uid, &uv, NULL, &why), 0);
	T_EQ_INT(uid, 1);
	T_EQ_INT(mindex_get(ix, "INBOX", 1, &m, &why), 1);
	T_EQ_INT(m.size, 18);	/* CRLF stored as LF */
	T_EQ_INT(m.wsize, 21);
	T_EQ_INT(m.internaldate, 1600000000);
	T_ASSERT(strstr(m.name, ":2,Sa") != NULL);
	T_EQ_INT(mindex_append(ix, "INBOX", fd, 21, 0, NULL, 0, 0, &uid, &uv,
	    NULL, &why), 0);
	T_EQ_INT(uid, 2);
	close(fd);

	/* cache blobs */
	T_EQ_INT(mindex_cache_put(ix, "INBOX", 1, 1, "(env)", 5, &why), 0);
	T_EQ_INT(mindex_cache_get(ix, "INBOX", 1, 1, &blob, &why), 1);
	T_EQ_STR(buf_cstr(&blob), "(env)");
	T_EQ_INT(mindex_cache_get(ix, "INBOX", 1, 2, &blob, &why), 0);
	T_ASSERT(mindex_cache_put(ix, "INBOX", 9, 1, "x", 1, &why) < 0);

	T_EQ_INT(mindex_folder_create(ix, "Work", &why), 0);
	uids[0] = 1;
	uids[1] = 2;
	T_EQ_INT(mindex_copy(ix, "INBOX", "Work", uids, 2, false, dst, &uv2,
	    NULL, &why), 0);
	T_EQ_INT(dst[0], 1);
	T_EQ_INT(dst[1], 2);
	T_ASSERT(uv2 != 0);
	T_EQ_INT(mindex_get(ix, "Work", 1, &m, &why), 1);
	T_EQ_INT(m.flags, MINDEX_F_SEEN);
	T_EQ_INT(mindex_keywords(ix, "Work", &kw, &why), 0);
	T_EQ_STR(buf_cstr(&kw), "Work\n");
	T_EQ_INT(mindex_copy(ix, "INBOX", "Work", uids, 2, true, dst, &uv2,
	    NULL, &why), 0);
	T_EQ_INT(dst[0], 3);
	T_EQ_INT(mindex_get(ix, "INBOX", 1, &m, &why), 0);
	snprintf(sub, sizeof(sub), "%s/.Work", dir);
	T_ASSERT(agrees(ix, "INBOX", dir));
	T_ASSERT(agrees(ix, "Work", sub));
	T_EQ_INT(mindex_sync(ix, "Work", NULL, &why), 0);
	T_ASSERT(agrees(ix, "Work", sub));
	mindex_close(&ix);
	buf_free(&why);
	buf_free(&kw);
	buf_free(&blob);
}

/* folder_cb - collect "name/special " */
static void
folder_cb(const char *name, unsigned special, void *ctx)
{
	buf_printf(ctx, "%s/%u ", name, special);
}

/* test_folders - folders, special-use, rename, delete, subscriptions */
static void
test_folders(void)
{
	const char *dir = fresh();
	struct buf why = BUF_INIT, l = BUF_INIT;
	struct mindex_status st, st2;
	struct mindex *ix;
	char path[700];

	T_EQ_INT(mindex_open(dir, &ix, &why), 0);
	T_EQ_INT(mindex_create_special(ix, &why), 0);
	T_EQ_INT(mindex_create_special(ix, &why), 0);
	T_EQ_INT(mindex_folder_create(ix, "Entw\xc3\xbcrfe", &why), 0);
	T_ASSERT(mindex_folder_create(ix, "Sent", &why) < 0);
	T_ASSERT(mindex_folder_create(ix, "a/b", &why) < 0);
	snprintf(path, sizeof(path), "%s/.Entw&APw-rfe/cur", dir);
	T_EQ_INT(access(path, F_OK), 0);
	T_EQ_INT(mindex_folders(ix, folder_cb, &l, &why), 0);
	T_EQ_STR(buf_cstr(&l), "INBOX/0 Archive/16 Drafts/2 "
	    "Entw\xc3\xbcrfe/0 Junk/8 Sent/1 Trash/4 ");

	/* rename keeps UIDVALIDITY and takes the folders below along */
	T_EQ_INT(mindex_folder_create(ix, "Work.Old", &why), 0);
	T_EQ_INT(mindex_folder_create(ix, "Work", &why), 0);
	T_EQ_INT(mindex_status(ix, "Work", &st, &why), 0);
	T_EQ_INT(mindex_folder_rename(ix, "Work", "Job", &why), 0);
	T_EQ_INT(mindex_status(ix, "Job", &st2, &why), 0);
	T_EQ_INT(st2.uidvalidity, st.uidvalidity);
	/* and the MAILBOXID: random (not the uidvalidity fallback) */
	T_EQ_STR(st2.mailboxid, st.mailboxid);
	T_EQ_INT(strlen(st.mailboxid), MINDEX_OBJID_LEN);
	T_ASSERT(strcmp(st.mailboxid + 9, "000000000000000000000000") != 0);
	T_ASSERT(mindex_status(ix, "Work", &st2, &why) < 0);
	T_EQ_INT(mindex_sync(ix, "Job.Old", NULL, &why), 0);
	T_EQ_INT(mindex_status(ix, "Job.Old", &st2, &why), 0);
	T_ASSERT(strcmp(st2.mailboxid, st.mailboxid) != 0);
	T_ASSERT(mindex_folder_rename(ix, "Job", "Sent", &why) < 0);

	/* delete: refuses INBOX and a full folder without force; a new
	 * folder of the same name has a new UIDVALIDITY */
	T_ASSERT(mindex_folder_delete(ix, "INBOX", true, &why) < 0);
	snprintf(path, sizeof(path), "%s/.Job", dir);
	T_EQ_INT(deliver(path, "Subject: x\n\nx\n", NULL), 0);
	T_ASSERT(mindex_folder_delete(ix, "Job", false, &why) < 0);
	T_EQ_INT(errno, ENOTEMPTY);
	T_EQ_INT(mindex_folder_delete(ix, "Job", true, &why), 0);
	T_ASSERT(access(path, F_OK) < 0);
	T_EQ_INT(mindex_folder_create(ix, "Job", &why), 0);
	T_EQ_INT(mindex_status(ix, "Job", &st2, &why), 0);
	T_ASSERT(st2.uidvalidity != st.uidvalidity);
	T_ASSERT(strcmp(st2.mailboxid, st.mailboxid) != 0);

	/* renaming INBOX moves its mail and leaves INBOX empty */
	T_EQ_INT(deliver(dir, "Subject: x\n\nx\n", NULL), 0);
	T_EQ_INT(mindex_sync(ix, "INBOX", NULL, &why), 0);
	T_EQ_INT(deliver(dir, "Subject: y\n\ny\n", NULL), 0);
	T_EQ_INT(mindex_folder_rename(ix, "INBOX", "Old", &why), 0);
	T_EQ_INT(mindex_status(ix, "INBOX", &st, &why), 0);
	T_EQ_INT(st.messages, 0);
	T_EQ_INT(mindex_status(ix, "Old", &st, &why), 0);
	T_EQ_INT(st.messages, 2);

	/* subscriptions */
	buf_reset(&l);
	T_EQ_INT(mindex_subscribe(ix, "Sent", true, &why), 0);
	T_EQ_INT(mindex_subscribe(ix, "Entw\xc3\xbcrfe", true, &why), 0);
	T_EQ_INT(mindex_subscribe(ix, "Sent", true, &why), 0);
	T_EQ_INT(mindex_subscribe(ix, "Gone", true, &why), 0);
	T_EQ_INT(mindex_subscribe(ix, "Gone", false, &why), 0);
	T_EQ_INT(mindex_subscriptions(ix, &l, &why), 0);
	T_EQ_STR(buf_cstr(&l), "Sent\nEntw\xc3\xbcrfe\n");
	mindex_close(&ix);
	buf_free(&why);
	buf_free(&l);
}

/*
 * test_version1_index - an index written by herald before records had a
 * place (version 1: every file in cur/) keeps working: its records read
 * as cur/, a sync changes nothing for files where they say, and takes
 * the crash state of that version (UID committed, file still in new/)
 * as a file in new/ without renaming it; STORE and open follow.
 */
static void
test_version1_index(void)
{
	const char *dir = fresh();
	struct buf why = BUF_INIT, n[3] = {BUF_INIT, BUF_INIT, BUF_INIT};
	struct buf key = BUF_INIT, val = BUF_INIT;
	static const char *const info[] = {":2,", ":2,S", ":2,"};
	struct mindex_sync_result r;
	struct mindex_fk fk;
	struct mindex_msg m;
	struct mindex *ix;
	MDB_txn *txn;
	char from[800], to[820];
	int fd;

	for (int i = 0; i < 3; i++)
		T_EQ_INT(deliver(dir, "Subject: v1\n\nold\n", &n[i]), 0);
	/* the old version moved 1 and 2 to cur/; 3 it gave a UID, then
	 * crashed before its move */
	for (int i = 0; i < 2; i++) {
		snprintf(from, sizeof(from), "%s/new/%s", dir,
		    buf_cstr(&n[i]));
		snprintf(to, sizeof(to), "%s/cur/%s%s", dir, buf_cstr(&n[i]),
		    info[i]);
		T_EQ_INT(rename(from, to), 0);
	}
	T_EQ_INT(mindex_open(dir, &ix, &why), 0);
	T_EQ_INT(mindex_sync(ix, "INBOX", &r, &why), 0);
	T_EQ_INT((int)r.added, 3);
	/* its records, as version 1 wrote them: all of cur/ */
	T_EQ_INT(mindex_fkey(ix, "INBOX", &fk, &why), 0);
	T_EQ_INT(mindex_begin(ix, true, &txn, &why), 0);
	for (uint32_t uid = 1; uid <= 3; uid++) {
		MDB_val k, v;

		T_EQ_INT(mindex_msg_get(ix, txn, &fk, uid, &m, &why), 1);
		m.in_new = false;
		snprintf(m.name, sizeof(m.name), "%s%s", buf_cstr(&n[uid - 1]),
		    info[uid - 1]);
		buf_reset(&val);
		mindex_msg_encode(&m, &val);
		T_EQ_INT((unsigned char)val.data[47], 0);
		memmove(val.data + 47, val.data + 48, val.len - 48);
		val.len--;
		val.data[0] = 1;
		mindex_uid_key(&fk, uid, &key);
		k = mindex_val(&key);
		v = mindex_val(&val);
		T_EQ_INT(mdb_put(txn, ix->msgs, &k, &v, 0), 0);
	}
	T_EQ_INT(mindex_end(ix, txn, true, &why), 0);
	mindex_close(&ix);

	/* the new version opens it */
	T_EQ_INT(mindex_open(dir, &ix, &why), 0);
	T_EQ_INT(mindex_get(ix, "INBOX", 2, &m, &why), 1);
	T_ASSERT(!m.in_new);
	T_EQ_INT(m.flags, MINDEX_F_SEEN);
	T_EQ_INT(mindex_sync(ix, "INBOX", &r, &why), 0);
	T_EQ_INT((int)(r.added + r.expunged + r.changed + r.moved), 0);
	T_EQ_INT(mindex_get(ix, "INBOX", 3, &m, &why), 1);
	T_ASSERT(m.in_new);
	T_EQ_STR(m.name, buf_cstr(&n[2]));
	T_EQ_INT(count_dir(dir, "new"), 1);
	T_ASSERT((fd = mindex_msg_open(dir, &m)) >= 0);
	if (fd >= 0)
		close(fd);
	T_ASSERT(agrees(ix, "INBOX", dir));
	/* STORE on a record of version 1 and on the one in new/ */
	T_EQ_INT(mindex_store(ix, "INBOX", 1, MINDEX_ADD, MINDEX_F_FLAGGED,
	    NULL, 0, 0, &m, &why), 1);
	T_ASSERT(strstr(m.name, ":2,F") != NULL && !m.in_new);
	T_EQ_INT(mindex_store(ix, "INBOX", 3, MINDEX_ADD, MINDEX_F_SEEN,
	    NULL, 0, 0, &m, &why), 1);
	T_ASSERT(strstr(m.name, ":2,S") != NULL && !m.in_new);
	T_EQ_INT(count_dir(dir, "new"), 0);
	T_ASSERT(agrees(ix, "INBOX", dir));
	mindex_close(&ix);
	for (int i = 0; i < 3; i++)
		buf_free(&n[i]);
	buf_free(&key);
	buf_free(&val);
	buf_free(&why);
}

/* test_rebuild_keeps_uids - rebuild keeps UIDs (old index,
 * dovecot-uidlist, damaged environment) */
static void
test_rebuild_keeps_uids(void)
{
	const char *dir = fresh();
	struct buf why = BUF_INIT, n1 = BUF_INIT, n2 = BUF_INIT;
	struct mindex_status st, st2;
	struct mindex *ix;
	static struct snap s, s2;
	char path[700], list[2048];

	for (int i = 0; i < 5; i++)
		T_EQ_INT(deliver(dir, "Subject: x\n\nx\n", NULL), 0);
	T_EQ_INT(mindex_open(dir, &ix, &why), 0);
	T_EQ_INT(mindex_sync(ix, "INBOX", NULL, &why), 0);
	T_EQ_INT(mindex_expunge(ix, "INBOX", (uint32_t[]){2}, 1, NULL,
	    NULL, &why), 0);
	T_EQ_INT(mindex_status(ix, "INBOX", &st, &why), 0);
	T_EQ_INT(take(ix, "INBOX", &s), 0);
	mindex_close(&ix);

	/* from the old index */
	T_EQ_INT(mindex_reindex(dir, &why), 0);
	T_EQ_INT(mindex_open(dir, &ix, &why), 0);
	T_EQ_INT(mindex_status(ix, "INBOX", &st2, &why), 0);
	T_EQ_INT(st2.uidvalidity, st.uidvalidity);
	T_EQ_INT(st2.uidnext, st.uidnext);
	T_EQ_STR(st2.mailboxid, st.mailboxid);	/* RFC 8474: kept */
	T_ASSERT(st2.highestmodseq > st.highestmodseq);
	T_EQ_INT(take(ix, "INBOX", &s2), 0);
	T_EQ_INT(s2.n, 4);
	for (int i = 0; i < s.n; i++) {
		T_EQ_INT(s2.uid[i], s.uid[i]);
		T_EQ_STR(s2.name[i], s.name[i]);
	}
	mindex_close(&ix);

	/* damaged: garbage instead of the environment; dovecot-uidlist
	 * gives UIDVALIDITY and UIDs */
	snprintf(path, sizeof(path), "%s/herald-index/data.mdb", dir);
	T_EQ_INT(write_file(path, "this is not an LMDB file at all, no"), 0);
	snprintf(path, sizeof(path), "%s/herald-index/lock.mdb", dir);
	(void)unlink(path);
	T_EQ_INT(deliver(dir, "Subject: new\n\nx\n", &n1), 0);
	snprintf(list, sizeof(list), "3 V1234567 N50 Gabc\n"
	    "10 :%.*s\n11 W40 S30 :%.*s\n", (int)base_of(s.name[0]),
	    s.name[0], (int)base_of(s.name[1]), s.name[1]);
	snprintf(path, sizeof(path), "%s/dovecot-uidlist", dir);
	T_EQ_INT(write_file(path, list), 0);
	T_EQ_INT(mindex_open(dir, &ix, &why), 0);
	T_EQ_INT(mindex_sync(ix, "INBOX", NULL, &why), 0);
	T_EQ_INT(mindex_status(ix, "INBOX", &st2, &why), 0);
	T_EQ_INT(st2.uidvalidity, 1234567);
	T_EQ_INT(st2.uidnext, 53);
	T_EQ_INT(take(ix, "INBOX", &s2), 0);
	T_EQ_INT(s2.n, 5);
	T_EQ_INT(s2.uid[0], 10);
	T_EQ_INT(strncmp(s2.name[0], s.name[0], base_of(s.name[0])), 0);
	T_EQ_INT(s2.uid[1], 11);
	T_EQ_INT(s2.uid[4], 52);
	T_ASSERT(agrees(ix, "INBOX", dir));
	mindex_close(&ix);
	buf_free(&why);
	buf_free(&n1);
	buf_free(&n2);
}

/* damage - write garbage as the record key[0..klen) of database db in
 * the index of dir (the index closed meanwhile); -1 on error */
static int
damage(const char *dir, const char *db, const void *key, size_t klen)
{
	char path[700];
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = {klen, (void *)key}, v = {7, (void *)"garbage"};
	int rc;

	snprintf(path, sizeof(path), "%s/herald-index", dir);
	if (mdb_env_create(&env) != 0)
		return -1;
	rc = mdb_env_set_maxdbs(env, 8) || mdb_env_open(env, path, 0, 0600) ||
	    mdb_txn_begin(env, NULL, 0, &txn);
	if (rc == 0) {
		rc = mdb_dbi_open(txn, db, 0, &dbi) ||
		    mdb_put(txn, dbi, &k, &v, 0);
		rc = rc ? (mdb_txn_abort(txn), -1) : mdb_txn_commit(txn);
	}
	mdb_env_close(env);
	return rc ? -1 : 0;
}

/* test_damaged_records_rebuilt - a sync that meets a damaged record
 * rebuilds the folder from the Maildir: sound UIDs stay, the damaged
 * one's message gets a new UID, a damaged folder record a new
 * UIDVALIDITY */
static void
test_damaged_records_rebuilt(void)
{
	const char *dir = fresh();
	struct buf why = BUF_INIT;
	struct mindex_status st, st2;
	struct mindex *ix;
	static struct snap s, s2;

	for (int i = 0; i < 3; i++)
		T_EQ_INT(deliver(dir, "Subject: x\n\nx\n", NULL), 0);
	T_EQ_INT(mindex_open(dir, &ix, &why), 0);
	T_EQ_INT(mindex_sync(ix, "INBOX", NULL, &why), 0);
	T_EQ_INT(mindex_status(ix, "INBOX", &st, &why), 0);
	T_EQ_INT(take(ix, "INBOX", &s), 0);
	mindex_close(&ix);
	T_EQ_INT(damage(dir, "msgs", ".\0\0\0\0\1", 6), 0);
	T_EQ_INT(mindex_open(dir, &ix, &why), 0);
	T_ASSERT(mindex_list(ix, "INBOX", 1, 3, snap_one, &s2, &why) < 0);
	T_EQ_INT(mindex_sync(ix, "INBOX", NULL, &why), 0);
	T_EQ_INT(mindex_status(ix, "INBOX", &st2, &why), 0);
	T_EQ_INT(st2.uidvalidity, st.uidvalidity);
	T_EQ_INT(st2.messages, 3);
	T_EQ_INT(st2.uidnext, st.uidnext + 1);
	T_EQ_INT(take(ix, "INBOX", &s2), 0);
	T_EQ_INT(s2.uid[0], 2);
	T_EQ_STR(s2.name[0], s.name[1]);
	T_EQ_INT(s2.uid[2], st.uidnext);
	T_EQ_STR(s2.name[2], s.name[0]);
	T_ASSERT(agrees(ix, "INBOX", dir));
	mindex_close(&ix);
	T_EQ_INT(damage(dir, "folders", ".", 1), 0);
	T_EQ_INT(mindex_open(dir, &ix, &why), 0);
	T_EQ_INT(mindex_sync(ix, "INBOX", NULL, &why), 0);
	T_EQ_INT(mindex_status(ix, "INBOX", &st2, &why), 0);
	T_ASSERT(st2.uidvalidity != st.uidvalidity);
	T_EQ_INT(st2.messages, 3);
	T_ASSERT(agrees(ix, "INBOX", dir));
	mindex_close(&ix);
	buf_free(&why);
}

/* the step a child dies at */
static const char *crash_at;

/* crash_hook - die at crash_at */
static void
crash_hook(const char *point)
{
	if (strcmp(point, crash_at) == 0)
		_exit(9);
}

/* workload - every operation that changes the disk, in a fixed order */
static void
workload(const char *dir)
{
	struct buf why = BUF_INIT;
	struct mindex *ix;
	uint32_t uid, uv, dst[1];
	int rc[3];
	int fd = source("Subject: a\n\nappended\n");

	if (mindex_open(dir, &ix, &why) < 0)
		_exit(3);
	(void)deliver(dir, "Subject: d\n\ndelivered\n", NULL);
	(void)deliver_flagged(dir, "Subject: f\n\nflagged in new/\n");
	(void)mindex_sync(ix, "INBOX", NULL, &why);
	(void)mindex_append(ix, "INBOX", fd, 21, MINDEX_F_SEEN, NULL, 0, 0,
	    &uid, &uv, NULL, &why);
	(void)mindex_store(ix, "INBOX", 1, MINDEX_ADD, MINDEX_F_DELETED, NULL,
	    0, 0, NULL, &why);
	(void)mindex_store_uids(ix, "INBOX", (uint32_t[]){1, 2, 3}, 3,
	    MINDEX_ADD, MINDEX_F_SEEN | MINDEX_F_FLAGGED, NULL, 0, 0, rc,
	    NULL, NULL, &why);
	(void)mindex_copy(ix, "INBOX", "Trash", (uint32_t[]){2}, 1, true, dst,
	    &uv, NULL, &why);
	(void)mindex_expunge(ix, "INBOX", NULL, 0, NULL, NULL, &why);
	_exit(0);
}

/* test_crash_at_every_step - a process killed at every step reuses no
 * UID and loses nothing */
static void
test_crash_at_every_step(void)
{
	static const char *const points[] = {"sync:moved",
	    "sync:before-commit", "sync:committed", "append:delivered",
	    "append:moved", "append:committed", "store:renamed",
	    "copy:linked", "copy:synced", "expunge:unlinked",
	    "storeuids:renamed", "storeuids:before-commit", NULL};
	struct buf why = BUF_INIT;

	for (int p = 0; points[p] != NULL; p++) {
		const char *dir = fresh();
		char trash[700];
		static struct snap before, after;
		struct mindex_status st;
		struct mindex *ix;
		uint32_t maxuid = 0;
		int status, files;
		pid_t pid;

		/* two messages known before the crash */
		T_EQ_INT(deliver(dir, "Subject: 0\n\nold\n", NULL), 0);
		T_EQ_INT(deliver(dir, "Subject: 1\n\nold\n", NULL), 0);
		T_EQ_INT(mindex_open(dir, &ix, &why), 0);
		T_EQ_INT(mindex_create_special(ix, &why), 0);
		T_EQ_INT(mindex_sync(ix, "INBOX", NULL, &why), 0);
		T_EQ_INT(take(ix, "INBOX", &before), 0);
		mindex_close(&ix);

		if ((pid = fork()) == 0) {
			crash_at = points[p];
			mindex_fault = crash_hook;
			workload(dir);
		}
		T_ASSERT(pid > 0 && waitpid(pid, &status, 0) == pid);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 9) {
			fprintf(stderr, "  %s: child did not reach it\n",
			    points[p]);
			T_ASSERT(0);
		}
		/* recovery: no UID reused, nothing lost, index = Maildir */
		T_EQ_INT(mindex_open(dir, &ix, &why), 0);
		T_EQ_INT(mindex_sync(ix, "INBOX", NULL, &why), 0);
		T_EQ_INT(mindex_sync(ix, "Trash", NULL, &why), 0);
		T_EQ_INT(take(ix, "INBOX", &after), 0);
		snprintf(trash, sizeof(trash), "%s/.Trash", dir);
		if (!agrees(ix, "INBOX", dir) || !agrees(ix, "Trash", trash)) {
			fprintf(stderr, "  after a crash at %s\n", points[p]);
			T_ASSERT(0);
		}
		for (int i = 0; i < before.n; i++) {
			for (int j = 0; j < after.n; j++) {
				size_t bl = base_of(before.name[i]);

				if (after.uid[j] == before.uid[i])
					T_ASSERT(strncmp(after.name[j],
					    before.name[i], bl) == 0);
			}
		}
		for (int j = 0; j < after.n; j++)
			if (after.uid[j] > maxuid)
				maxuid = after.uid[j];
		T_EQ_INT(mindex_status(ix, "INBOX", &st, &why), 0);
		T_ASSERT(st.uidnext > maxuid);
		/* every message written is somewhere: 2 old + delivered +
		 * flagged + appended (the copy's source may be gone: moved) */
		files = count_dir(dir, "cur") + count_dir(trash, "cur") +
		    count_dir(dir, "new") + count_dir(trash, "new");
		T_ASSERT(files >= (p >= 3 ? 4 : 2));
		mindex_close(&ix);
	}
	buf_free(&why);
}

static char hide_cur[700];

/* hide_cur_hook - cur/ goes away just before append moves its file */
static void
hide_cur_hook(const char *point)
{
	char to[720];

	if (strcmp(point, "append:delivered") == 0) {
		snprintf(to, sizeof(to), "%s.away", hide_cur);
		if (rename(hide_cur, to) < 0)
			abort();
	}
}

/* test_failed_append_leaves_nothing - an APPEND that fails after its
 * file was written leaves no message behind and uses no UID */
static void
test_failed_append_leaves_nothing(void)
{
	const char *dir = fresh();
	struct buf why = BUF_INIT;
	struct mindex_status st;
	struct mindex *ix;
	uint32_t uid = 0, uv;
	char away[720];
	int fd = source("Subject: a\n\nappended\n");

	T_EQ_INT(mindex_open(dir, &ix, &why), 0);
	T_EQ_INT(mindex_sync(ix, "INBOX", NULL, &why), 0);
	snprintf(hide_cur, sizeof(hide_cur), "%s/cur", dir);
	snprintf(away, sizeof(away), "%s.away", hide_cur);
	mindex_fault = hide_cur_hook;
	T_ASSERT(mindex_append(ix, "INBOX", fd, 21, 0, NULL, 0, 0, &uid, &uv,
	    NULL, &why) < 0);
	mindex_fault = NULL;
	T_EQ_INT(rename(away, hide_cur), 0);
	T_EQ_INT(count_dir(dir, "new"), 0);
	T_EQ_INT(mindex_sync(ix, "INBOX", NULL, &why), 0);
	T_EQ_INT(mindex_status(ix, "INBOX", &st, &why), 0);
	T_EQ_INT(st.messages, 0);
	T_EQ_INT(st.uidnext, 1);
	close(fd);
	mindex_close(&ix);
	buf_free(&why);
}

/* leftovers - how many half-deleted folders dir holds */
static int
leftovers(const char *dir)
{
	struct dirent *de;
	int n = 0;
	DIR *d = opendir(dir);

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, "..herald-deleted.", 17) == 0)
			n++;
	closedir(d);
	return n;
}

/* test_delete_killed_half_way - a delete killed after its folder went
 * out of sight: the folder is gone for good, reindex removes the rest */
static void
test_delete_killed_half_way(void)
{
	const char *dir = fresh();
	struct buf why = BUF_INIT, l = BUF_INIT;
	struct mindex *ix;
	char sub[700];
	int status;
	pid_t pid;

	T_EQ_INT(mindex_open(dir, &ix, &why), 0);
	T_EQ_INT(mindex_folder_create(ix, "Old", &why), 0);
	mindex_close(&ix);
	snprintf(sub, sizeof(sub), "%s/.Old", dir);
	T_EQ_INT(deliver(sub, "Subject: x\n\nx\n", NULL), 0);
	if ((pid = fork()) == 0) {
		crash_at = "delete:renamed";
		mindex_fault = crash_hook;
		if (mindex_open(dir, &ix, &why) < 0)
			_exit(3);
		(void)mindex_folder_delete(ix, "Old", true, &why);
		_exit(0);
	}
	T_ASSERT(pid > 0 && waitpid(pid, &status, 0) == pid);
	T_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 9);
	T_EQ_INT(mindex_open(dir, &ix, &why), 0);
	T_EQ_INT(mindex_folders(ix, folder_cb, &l, &why), 0);
	T_EQ_STR(buf_cstr(&l), "INBOX/0 ");
	mindex_close(&ix);
	T_EQ_INT(leftovers(dir), 1);
	T_EQ_INT(mindex_reindex(dir, &why), 0);
	T_EQ_INT(leftovers(dir), 0);
	buf_free(&why);
	buf_free(&l);
}

/* test_concurrent_writers - concurrent writers and delivery */
static void
test_concurrent_writers(void)
{
	const char *dir = fresh();
	struct buf why = BUF_INIT;
	struct mindex_status st;
	struct mindex *ix;
	static struct snap s;
	pid_t pids[5];
	int ok = 1;

	/* index exists first so every child shares it */
	T_EQ_INT(mindex_open(dir, &ix, &why), 0);
	T_EQ_INT(mindex_sync(ix, "INBOX", NULL, &why), 0);
	mindex_close(&ix);
	for (int c = 0; c < 5; c++) {
		if ((pids[c] = fork()) == 0) {
			struct mindex *cx;
			uint32_t uid, uv;
			int fd = source("Subject: c\n\nconcurrent\n");

			if (c == 4) {
				/* local: delivers without the index */
				for (int i = 0; i < 40; i++)
					if (deliver(dir, "Subject: l\n\nl\n",
					    NULL) < 0)
						_exit(1);
				_exit(0);
			}
			if (mindex_open(dir, &cx, &why) < 0)
				_exit(1);
			for (int i = 0; i < 30; i++) {
				if (mindex_append(cx, "INBOX", fd, 23, 0,
				    NULL, 0, 0, &uid, &uv, NULL, &why) < 0 ||
				    mindex_sync(cx, "INBOX", NULL, &why) < 0 ||
				    mindex_store(cx, "INBOX", uid, MINDEX_ADD,
				    MINDEX_F_SEEN, NULL, 0, 0, NULL,
				    &why) < 0) {
					fprintf(stderr, "  child: %s\n",
					    buf_cstr(&why));
					_exit(2);
				}
				if (i % 10 == 9 && mindex_expunge(cx, "INBOX",
				    &uid, 1, NULL, NULL, &why) < 0)
					_exit(3);
			}
			mindex_close(&cx);
			_exit(0);
		}
	}
	for (int c = 0; c < 5; c++) {
		int status = 0;

		if (pids[c] < 0 || waitpid(pids[c], &status, 0) != pids[c] ||
		    !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "  child %d: status %#x\n", c, status);
			ok = 0;
		}
	}
	T_ASSERT(ok);
	T_EQ_INT(mindex_open(dir, &ix, &why), 0);
	T_EQ_INT(mindex_sync(ix, "INBOX", NULL, &why), 0);
	T_EQ_INT(mindex_status(ix, "INBOX", &st, &why), 0);
	/* 4 x 30 appended, 4 x 3 expunged, 40 delivered */
	T_EQ_INT(st.messages, 4 * 30 - 4 * 3 + 40);
	T_EQ_INT(st.uidnext, 4 * 30 + 40 + 1);
	T_ASSERT(agrees(ix, "INBOX", dir));
	T_EQ_INT(take(ix, "INBOX", &s), 0);
	mindex_close(&ix);
	buf_free(&why);
}

/* killer_child - append, flag, expunge in a loop; after each append is
 * back, "uid base" to fd (what a client would have been told) */
static void __attribute__((noreturn))
killer_child(const char *dir, int fd, int seed)
{
	struct buf why = BUF_INIT, line = BUF_INIT;
	struct mindex *ix;
	int src = source("Subject: k\n\nkilled\n");

	if (mindex_open(dir, &ix, &why) < 0)
		_exit(1);
	for (int i = 0; i < 100000; i++) {
		struct mindex_msg m;
		uint32_t uid, uv;

		if (mindex_append(ix, "INBOX", src, 19, 0, NULL, 0, 0, &uid,
		    &uv, NULL, &why) < 0)
			_exit(2);
		if (mindex_get(ix, "INBOX", uid, &m, &why) == 1) {
			buf_reset(&line);
			buf_printf(&line, "%u %.*s\n", uid,
			    (int)base_of(m.name), m.name);
			if (write(fd, line.data, line.len) != (ssize_t)line.len)
				_exit(3);
		}
		(void)mindex_sync(ix, "INBOX", NULL, &why);
		(void)mindex_store(ix, "INBOX", uid, MINDEX_ADD,
		    (i + seed) % 3 ? MINDEX_F_SEEN : MINDEX_F_DELETED, NULL,
		    0, 0, NULL, &why);
		if (i % 4 == 3)
			(void)mindex_expunge(ix, "INBOX", NULL, 0, NULL,
			    NULL, &why);
	}
	_exit(0);
}

/* test_sigkill_concurrent - SIGKILL during concurrent append, store,
 * expunge and delivery */
static void
test_sigkill_concurrent(void)
{
	const char *dir = fresh();
	struct buf why = BUF_INIT, told = BUF_INIT;
	struct mindex_status st;
	struct mindex *ix;
	static struct snap s;
	uint32_t maxtold = 0;
	int p[2];

	T_EQ_INT(pipe(p), 0);
	T_EQ_INT(mindex_open(dir, &ix, &why), 0);
	T_EQ_INT(mindex_sync(ix, "INBOX", NULL, &why), 0);
	mindex_close(&ix);
	for (int round = 0; round < 6; round++) {
		pid_t pids[4];

		for (int c = 0; c < 4; c++) {
			if ((pids[c] = fork()) == 0) {
				close(p[0]);
				if (c == 3) {
					/* local, delivering without a lock */
					for (;;)
						(void)deliver(dir,
						    "Subject: l\n\nl\n", NULL);
				}
				killer_child(dir, p[1], c + round);
			}
		}
		/* let them run into each other, then kill them anywhere */
		usleep(30000 + 25000 * round);
		for (int c = 0; c < 4; c++)
			if (pids[c] > 0)
				kill(pids[c], SIGKILL);
		for (int c = 0; c < 4; c++)
			if (pids[c] > 0)
				(void)waitpid(pids[c], NULL, 0);
	}
	close(p[1]);
	for (;;) {
		char chunk[4096];
		ssize_t n = read(p[0], chunk, sizeof(chunk));

		if (n <= 0)
			break;
		buf_append(&told, chunk, (size_t)n);
	}
	close(p[0]);
	T_EQ_INT(mindex_open(dir, &ix, &why), 0);
	T_EQ_INT(mindex_sync(ix, "INBOX", NULL, &why), 0);
	T_ASSERT(agrees(ix, "INBOX", dir));
	T_EQ_INT(take(ix, "INBOX", &s), 0);
	T_EQ_INT(mindex_status(ix, "INBOX", &st, &why), 0);
	/* a UID once told to a client names that message or nothing */
	for (char *l = told.data, *nl; l < told.data + told.len; l = nl + 1) {
		unsigned uid;
		char base[300];

		if ((nl = strchr(l, '\n')) == NULL)
			break;
		*nl = '\0';
		if (sscanf(l, "%u %299s", &uid, base) != 2)
			continue;
		if (uid > maxtold)
			maxtold = uid;
		for (int i = 0; i < s.n; i++) {
			if (s.uid[i] == uid && (base_of(s.name[i]) !=
			    strlen(base) || strncmp(s.name[i], base,
			    strlen(base)) != 0)) {
				fprintf(stderr, "  uid %u was %s, now %s\n",
				    uid, base, s.name[i]);
				T_ASSERT(0);
			}
		}
	}
	T_ASSERT(maxtold > 0);
	T_ASSERT(st.uidnext > maxtold);
	printf("sigkill: %d messages, %u UIDs given, %zu bytes told\n", s.n,
	    st.uidnext - 1, told.len);
	mindex_close(&ix);
	buf_free(&why);
	buf_free(&told);
}

/* count_entries - names in a folder, but . and .. */
static int
count_entries(const char *path)
{
	struct dirent *de;
	DIR *d;
	int n = 0;

	if ((d = opendir(path)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

/* test_links_not_followed - links planted in the Maildir are not followed */
static void
test_links_not_followed(void)
{
	const char *dir = fresh();
	struct buf why = BUF_INIT, kw = BUF_INIT;
	const char *words[] = {"Planted"};
	struct mindex *ix;
	char victim[600], path[700], data[64] = "";
	int fd;

	snprintf(victim, sizeof(victim), "%s/victim", tmpdir);
	T_EQ_INT(write_file(victim, "keep me\n"), 0);
	T_EQ_INT(deliver(dir, "Subject: x\n\nx\n", NULL), 0);
	/* a link as the keywords file and as a folder */
	snprintf(path, sizeof(path), "%s/dovecot-keywords", dir);
	T_EQ_INT(symlink(victim, path), 0);
	snprintf(path, sizeof(path), "%s/.Evil", dir);
	T_EQ_INT(symlink(tmpdir, path), 0);
	T_EQ_INT(mindex_open(dir, &ix, &why), 0);
	T_EQ_INT(mindex_sync(ix, "INBOX", NULL, &why), 0);
	T_ASSERT(mindex_store(ix, "INBOX", 1, MINDEX_ADD, 0, words, 1, 0,
	    NULL, &why) < 0);	/* the link cannot be read */
	T_ASSERT(mindex_folder_delete(ix, "Evil", true, &why) < 0);
	T_ASSERT(mindex_sync(ix, "Evil", NULL, &why) < 0 ||
	    access(victim, F_OK) == 0);
	T_EQ_INT(mindex_folders(ix, folder_cb, &kw, &why), 0);
	T_EQ_STR(buf_cstr(&kw), "INBOX/0 ");
	mindex_close(&ix);
	fd = open(victim, O_RDONLY);
	T_ASSERT(fd >= 0 && read(fd, data, sizeof(data) - 1) == 8);
	if (fd >= 0)
		close(fd);
	T_EQ_STR(data, "keep me\n");
	/* a FIFO as the subscriptions file: refused, not waited on */
	snprintf(path, sizeof(path), "%s/subscriptions", dir);
	T_EQ_INT(mkfifo(path, 0600), 0);
	T_EQ_INT(mindex_open(dir, &ix, &why), 0);
	buf_reset(&kw);
	T_ASSERT(mindex_subscriptions(ix, &kw, &why) < 0);
	mindex_close(&ix);
	/* a folder, or its cur/, as a link into another mailbox: not read */
	snprintf(victim, sizeof(victim), "%s/other", tmpdir);
	T_EQ_INT(maildir_create(victim, &why), 0);
	T_EQ_INT(deliver(victim, "Subject: theirs\n\nx\n", NULL), 0);
	snprintf(path, sizeof(path), "%s/.Sneaky", dir);
	T_EQ_INT(maildir_create(path, &why), 0);
	snprintf(path, sizeof(path), "%s/.Sneaky/cur", dir);
	T_EQ_INT(rmdir(path), 0);
	snprintf(data, sizeof(data), "../../other/new");
	T_EQ_INT(symlink(data, path), 0);
	snprintf(path, sizeof(path), "%s/.Evil2", dir);
	T_EQ_INT(symlink(victim, path), 0);
	T_EQ_INT(mindex_open(dir, &ix, &why), 0);
	T_ASSERT(mindex_sync(ix, "Sneaky", NULL, &why) < 0);
	T_ASSERT(mindex_sync(ix, "Evil2", NULL, &why) < 0);
	mindex_close(&ix);
	snprintf(path, sizeof(path), "%s/new", victim);
	T_EQ_INT(count_entries(path), 1);	/* theirs is still theirs */
	/* the index folder itself as a link is refused */
	fresh();
	snprintf(path, sizeof(path), "%s/herald-index", md);
	T_EQ_INT(symlink(tmpdir, path), 0);
	T_ASSERT(mindex_open(md, &ix, &why) < 0);
	buf_free(&why);
	buf_free(&kw);
}

/* now_ms - monotonic milliseconds */
static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* test_big_folder - big folder sync */
static void
test_big_folder(void)
{
	const char *dir = fresh();
	const char *env = getenv("HERALD_MINDEX_BIG");
	long n = env ? strtol(env, NULL, 10) : 2000;
	struct buf why = BUF_INIT;
	struct mindex_sync_result r;
	struct mindex_status st;
	struct mindex *ix;
	struct rusage ru;
	struct stat sb;
	double t0, t1, t2, t3;
	char path[800];

	/* files as local names them, written directly (fast) */
	for (long i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/new/%ld.M%ldP1Q%ld.host,"
		    "S=20,W=21", dir, 1700000000 + i / 100, i % 100, i);
		T_EQ_INT(write_file(path, "Subject: big\n\nbody\n"), 0);
	}
	T_EQ_INT(mindex_open(dir, &ix, &why), 0);
	t0 = now_ms();
	T_EQ_INT(mindex_sync(ix, "INBOX", &r, &why), 0);
	t1 = now_ms();
	T_EQ_INT(r.added, n);
	T_EQ_INT(mindex_sync(ix, "INBOX", &r, &why), 0);
	t2 = now_ms();
	T_EQ_INT(r.added, 0);
	T_EQ_INT(mindex_status(ix, "INBOX", &st, &why), 0);
	t3 = now_ms();
	T_EQ_INT(st.messages, n);
	getrusage(RUSAGE_SELF, &ru);
	snprintf(path, sizeof(path), "%s/herald-index/data.mdb", dir);
	if (stat(path, &sb) < 0)
		sb.st_blocks = 0;
	printf("big folder: %ld messages, first sync %.0f ms, resync %.0f ms, "
	    "status %.0f ms, index %lld KiB on disk, max RSS %ld KiB\n", n,
	    t1 - t0, t2 - t1, t3 - t2, (long long)sb.st_blocks / 2,
	    ru.ru_maxrss);
	mindex_close(&ix);
	buf_free(&why);
}

static const struct test_case cases[] = {
	{"record codec round-trips and refuses damage", test_codec},
	{"file sizes from S=/W= only when well formed", test_file_sizes},
	{"sync gives new mail UIDs and leaves it in new/", test_sync_new_mail},
	{"an index of version 1 records keeps working", test_version1_index},
	{"store renames the flags; other tools' changes seen",
	    test_store_and_other_tools},
	{"a store over many messages is one commit (and cache blobs)",
	    test_store_uids_batch},
	{"a folder's stamp tells when nothing changed", test_stamp},
	{"a sync that moved files re-reads its stamp", test_stamp_after},
	{"an operation's own changes keep its stamp", test_stamp_own},
	{"a sync removes stale tmp/ files, once an hour", test_tmp_clean},
	{"\\Recent: the first claim takes what is unclaimed", test_recent},
	{"expunge and VANISHED ranges", test_expunge},
	{"the expunge history is bounded", test_vanished_bounded},
	{"append, cache, copy and move", test_append_copy_move},
	{"append from memory", test_append_mem},
	{"folders, special-use, rename, delete, subscriptions", test_folders},
	{"rebuild keeps UIDs (old index, dovecot-uidlist, damage)",
	    test_rebuild_keeps_uids},
	{"damaged records: the folder is rebuilt", test_damaged_records_rebuilt},
	{"a process killed at every step reuses no UID and loses nothing",
	    test_crash_at_every_step},
	{"a failed append leaves nothing", test_failed_append_leaves_nothing},
	{"a delete killed half-way", test_delete_killed_half_way},
	{"concurrent writers and delivery", test_concurrent_writers},
	{"SIGKILL during concurrent append/store/expunge and delivery",
	    test_sigkill_concurrent},
	{"links planted in the Maildir are not followed",
	    test_links_not_followed},
	{"big folder sync", test_big_folder},
	{NULL, NULL},
};

int
main(void)
{
	return test_run_in(cases, tmpdir);
}
