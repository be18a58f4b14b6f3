/*
 * qfile_test - queue files: round trip through the writer and reader,
 * every kind of damage the reader must refuse, in-place status updates,
 * the named-file fallback, and the writer's panics.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/test.h"
#include "mail/qfile.h"
#include "mail/qid.h"

extern bool qfile_test_no_tmpfile;

static char spool[64];
static char incoming[96];

/* setup - a fresh spool with incoming/ (once per run) */
static void
setup(void)
{
	if (spool[0] != '\0')
		return;
	snprintf(spool, sizeof(spool), "/tmp/qfile_test.XXXXXX");
	if (mkdtemp(spool) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
	snprintf(incoming, sizeof(incoming), "%s/incoming", spool);
	if (mkdir(incoming, 0700) < 0) {
		perror("mkdir");
		exit(1);
	}
}

/* cleanup - remove the spool */
static void
cleanup(void)
{
	DIR *d = opendir(incoming);
	struct dirent *e;
	char path[512];

	if (d != NULL) {
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 ||
			    strcmp(e->d_name, "..") == 0)
				continue;
			snprintf(path, sizeof(path), "%s/%s", incoming,
			    e->d_name);
			unlink(path);
		}
		closedir(d);
	}
	rmdir(incoming);
	rmdir(spool);
}

/* count_entries - files in incoming/ (dot-files too) */
static int
count_entries(void)
{
	DIR *d = opendir(incoming);
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

/* mem_fd - a regular file holding p[0..n) */
static int
mem_fd(const void *p, size_t n)
{
	int fd = memfd_create("qfile_test", MFD_CLOEXEC);

	if (fd < 0 || (n > 0 && write(fd, p, n) != (ssize_t)n)) {
		perror("memfd");
		exit(1);
	}
	return fd;
}

/* build - envelope text + M record + body + E */
static void
build(struct buf *out, const char *env, const char *body)
{
	buf_reset(out);
	buf_puts(out, env);
	buf_printf(out, "M%016zu\n", strlen(body));
	buf_puts(out, body);
	buf_puts(out, "E\n");
}

/* read_buf - run qfile_read on bytes; returns its result, qf freed */
static int
read_bytes(const char *p, size_t n, struct buf *why)
{
	struct qfile *qf = NULL;
	int fd = mem_fd(p, n), r;

	buf_reset(why);
	r = qfile_read(fd, &qf, why);
	if (r == 0 && qf == NULL)
		r = -2;
	if (r < 0 && qf != NULL)
		r = -3;
	qfile_free(&qf);
	close(fd);
	return r;
}

/* write_sample - a complete file through the writer, linked as qid */
static int
write_sample(const char *body, size_t blen, size_t chunk, char *qid,
    struct buf *why)
{
	struct qfile_writer *w;

	if (qfile_writer_new(spool, &w, why) < 0)
		return -1;
	qfile_writer_start(w, 1700000000, "sender@example.org");
	qfile_writer_attr(w, QFILE_A_CLIENT_ADDR, "127.0.0.1");
	qfile_writer_attr(w, QFILE_A_HELO, "client.example=x");
	qfile_writer_rcpt(w, "alice@example.test", "rfc822;alice@example.test",
	    "SUCCESS,FAILURE");
	qfile_writer_rcpt(w, "bob smith@example.test", "", "");
	qfile_writer_rcpt(w, "carol@example.test", "", "NEVER");
	qfile_writer_begin_body(w);
	for (size_t off = 0; off < blen; off += chunk)
		qfile_writer_body(w, body + off,
		    blen - off < chunk ? blen - off : chunk);
	if (qfile_writer_body_size(w) != (off_t)blen ||
	    qfile_writer_finish(w, why) < 0 ||
	    qfile_writer_body_size(w) != (off_t)blen ||
	    qfile_writer_sync(w, why) < 0) {
		qfile_writer_free(&w);
		return -1;
	}
	qid_new(qid);
	if (qfile_writer_link(w, qid, why) < 0) {
		qfile_writer_free(&w);
		return -1;
	}
	qfile_writer_free(&w);
	return 0;
}

/* open_qid - open incoming/<qid> read-write */
static int
open_qid(const char *qid)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", incoming, qid);
	return open(path, O_RDWR | O_CLOEXEC);
}

/* check_round_trip - write a body of blen bytes and read it back */
static void
check_round_trip(size_t blen, size_t chunk)
{
	char qid[QID_SIZE], *body, *back;
	struct buf why = BUF_INIT;
	struct qfile *qf = NULL;
	int fd;

	setup();
	body = malloc(blen + 1);
	back = malloc(blen + 1);
	T_ASSERT(body != NULL && back != NULL);
	for (size_t i = 0; i < blen; i++)
		body[i] = (char)(i % 251);	/* every byte value, NUL too */
	T_EQ_INT(write_sample(body, blen, chunk, qid, &why), 0);
	fd = open_qid(qid);
	T_ASSERT(fd >= 0);
	if (qfile_read(fd, &qf, &why) < 0)
		fprintf(stderr, "  %s\n", why.data);
	T_ASSERT(qf != NULL);
	T_EQ_INT(qf->fd, fd);
	T_EQ_INT(qf->arrival, 1700000000);
	T_EQ_STR(qf->sender, "sender@example.org");
	T_EQ_INT(qf->nattr, 2);
	T_EQ_STR(qfile_attr(qf, QFILE_A_CLIENT_ADDR), "127.0.0.1");
	T_EQ_STR(qfile_attr(qf, QFILE_A_HELO), "client.example=x");
	T_ASSERT(qfile_attr(qf, QFILE_A_AUTH) == NULL);
	T_EQ_INT(qf->nrcpt, 3);
	T_EQ_STR(qf->rcpt[0].addr, "alice@example.test");
	T_EQ_STR(qf->rcpt[0].orcpt, "rfc822;alice@example.test");
	T_EQ_STR(qf->rcpt[0].notify, "SUCCESS,FAILURE");
	T_EQ_STR(qf->rcpt[1].addr, "bob smith@example.test");
	T_EQ_STR(qf->rcpt[1].orcpt, "");
	T_EQ_STR(qf->rcpt[1].notify, "");
	T_EQ_STR(qf->rcpt[2].notify, "NEVER");
	for (size_t i = 0; i < 3; i++)
		T_EQ_INT(qf->rcpt[i].status, QFILE_QUEUED);
	T_EQ_INT(qfile_pending(qf), 3);
	T_EQ_INT(qf->body_size, blen);
	T_ASSERT(pread(fd, back, blen, qf->body_off) == (ssize_t)blen);
	T_ASSERT(memcmp(body, back, blen) == 0);
	qfile_free(&qf);
	T_ASSERT(qf == NULL);
	close(fd);
	free(body);
	free(back);
	buf_free(&why);
}

static void
test_round_trip_small(void)
{
	check_round_trip(0, 1);
	check_round_trip(1, 1);
	check_round_trip(300, 7);
}

static void
test_round_trip_big(void)
{
	check_round_trip(65536, 65536);
	check_round_trip(65535, 1000);
	check_round_trip(300000, 4096);
	check_round_trip(300000, 300000);
}

/* the fd position is not used: a descriptor shared with another process
 * may point anywhere */
static void
test_read_ignores_offset(void)
{
	char qid[QID_SIZE];
	struct buf why = BUF_INIT;
	struct qfile *qf = NULL;
	int fd;

	setup();
	T_EQ_INT(write_sample("hello\r\n", 7, 7, qid, &why), 0);
	fd = open_qid(qid);
	T_ASSERT(fd >= 0);
	T_ASSERT(lseek(fd, 17, SEEK_SET) == 17);
	T_EQ_INT(qfile_read(fd, &qf, &why), 0);
	T_EQ_INT(lseek(fd, 0, SEEK_CUR), 17);
	qfile_free(&qf);
	close(fd);
	buf_free(&why);
}

static void
test_unlinked_disappears(void)
{
	struct qfile_writer *w;
	struct buf why = BUF_INIT;
	int before;

	setup();
	before = count_entries();
	T_EQ_INT(qfile_writer_new(spool, &w, &why), 0);
	qfile_writer_start(w, 1, "");
	qfile_writer_rcpt(w, "a@b", "", "");
	qfile_writer_begin_body(w);
	qfile_writer_body(w, "x", 1);
	T_EQ_INT(qfile_writer_finish(w, &why), 0);
	T_EQ_INT(count_entries(), before);	/* O_TMPFILE: no name */
	qfile_writer_free(&w);
	T_ASSERT(w == NULL);
	T_EQ_INT(count_entries(), before);
	qfile_writer_free(&w);			/* NULL is fine */
	buf_free(&why);
}

/* check_insert - a body of blen bytes written in chunks, then a prefix
 * inserted before it: the file holds prefix + body, nothing else moves,
 * and no file is left behind but the linked one */
static void
check_insert(size_t blen, size_t chunk, bool named)
{
	static const char prefix[] = "DKIM-Signature: v=1; a=x;\r\n\tb=yz\r\n";
	size_t plen = sizeof(prefix) - 1;
	struct qfile_writer *w;
	struct buf why = BUF_INIT;
	struct qfile *qf = NULL;
	char qid[QID_SIZE], *body, *back;
	int before, fd;

	setup();
	qfile_test_no_tmpfile = named;
	before = count_entries();
	body = malloc(blen + 1);
	back = malloc(blen + plen + 1);
	T_ASSERT(body != NULL && back != NULL);
	for (size_t i = 0; i < blen; i++)
		body[i] = (char)('a' + i % 26);
	T_EQ_INT(qfile_writer_new(spool, &w, &why), 0);
	qfile_writer_start(w, 1700000000, "s@example.org");
	qfile_writer_attr(w, QFILE_A_AUTH, "alice@example.test");
	qfile_writer_rcpt(w, "bob@example.test", "", "");
	qfile_writer_begin_body(w);
	for (size_t off = 0; off < blen; off += chunk)
		qfile_writer_body(w, body + off,
		    blen - off < chunk ? blen - off : chunk);
	qfile_writer_insert(w, prefix, plen);
	T_EQ_INT(qfile_writer_body_size(w), blen + plen);
	T_EQ_INT(qfile_writer_finish(w, &why), 0);
	T_EQ_INT(qfile_writer_sync(w, &why), 0);
	qid_new(qid);
	T_EQ_INT(qfile_writer_link(w, qid, &why), 0);
	qfile_writer_free(&w);
	qfile_test_no_tmpfile = false;
	T_EQ_INT(count_entries(), before + 1);
	fd = open_qid(qid);
	T_ASSERT(fd >= 0);
	if (qfile_read(fd, &qf, &why) < 0)
		fprintf(stderr, "  %s\n", why.data);
	T_ASSERT(qf != NULL);
	T_EQ_STR(qf->sender, "s@example.org");
	T_EQ_STR(qfile_attr(qf, QFILE_A_AUTH), "alice@example.test");
	T_EQ_INT(qf->nrcpt, 1);
	T_EQ_STR(qf->rcpt[0].addr, "bob@example.test");
	T_EQ_INT(qf->body_size, blen + plen);
	T_ASSERT(pread(fd, back, blen + plen, qf->body_off) ==
	    (ssize_t)(blen + plen));
	T_ASSERT(memcmp(back, prefix, plen) == 0);
	T_ASSERT(memcmp(back + plen, body, blen) == 0);
	qfile_free(&qf);
	close(fd);
	free(body);
	free(back);
	buf_free(&why);
}

/* the DKIM-Signature goes in front of a message already written: in the
 * buffer, and by a copy once the file is past it (O_TMPFILE and named) */
static void
test_insert(void)
{
	check_insert(0, 1, false);
	check_insert(300, 7, false);
	check_insert(65536 - 400, 1000, false);	/* fills the buffer */
	check_insert(65536, 65536, false);
	check_insert(300000, 4096, false);
	check_insert(300, 7, true);
	check_insert(300000, 4096, true);
}

static void
test_named_fallback(void)
{
	struct qfile_writer *w;
	struct buf why = BUF_INIT;
	struct qfile *qf = NULL;
	char qid[QID_SIZE];
	int before, fd;

	setup();
	qfile_test_no_tmpfile = true;
	before = count_entries();
	/* not linked: removed on free */
	T_EQ_INT(qfile_writer_new(spool, &w, &why), 0);
	T_EQ_INT(count_entries(), before + 1);
	qfile_writer_start(w, 1, "");
	qfile_writer_rcpt(w, "a@b", "", "");
	qfile_writer_begin_body(w);
	T_EQ_INT(qfile_writer_finish(w, &why), 0);
	qfile_writer_free(&w);
	T_EQ_INT(count_entries(), before);
	/* linked: renamed to its queue id */
	T_EQ_INT(write_sample("body\r\n", 6, 2, qid, &why), 0);
	qfile_test_no_tmpfile = false;
	T_EQ_INT(count_entries(), before + 1);
	fd = open_qid(qid);
	T_ASSERT(fd >= 0);
	T_EQ_INT(qfile_read(fd, &qf, &why), 0);
	T_EQ_INT(qf->body_size, 6);
	qfile_free(&qf);
	close(fd);
	buf_free(&why);
}

static void
test_new_fails(void)
{
	struct qfile_writer *w = (struct qfile_writer *)1;
	struct buf why = BUF_INIT;

	T_EQ_INT(qfile_writer_new("/nonexistent/spool", &w, &why), -1);
	T_ASSERT(w == NULL);
	T_ASSERT(strstr(why.data, "/nonexistent/spool/incoming") != NULL);
	buf_free(&why);
}

/* the link target exists already: an error, never an overwrite */
static void
test_link_exists(void)
{
	struct qfile_writer *w;
	struct buf why = BUF_INIT;
	char qid[QID_SIZE];

	setup();
	T_EQ_INT(write_sample("a", 1, 1, qid, &why), 0);
	T_EQ_INT(qfile_writer_new(spool, &w, &why), 0);
	qfile_writer_start(w, 1, "");
	qfile_writer_rcpt(w, "a@b", "", "");
	qfile_writer_begin_body(w);
	T_EQ_INT(qfile_writer_finish(w, &why), 0);
	T_EQ_INT(qfile_writer_link(w, qid, &why), -1);
	T_ASSERT(strstr(why.data, "File exists") != NULL);
	qfile_writer_free(&w);
	buf_free(&why);
}

/* a record the reader would refuse fails the writer instead */
static void
test_record_too_long(void)
{
	struct qfile_writer *w;
	struct buf why = BUF_INIT;
	char *big = malloc(9000);

	setup();
	T_ASSERT(big != NULL);
	memset(big, 'a', 8999);
	big[8999] = '\0';
	T_EQ_INT(qfile_writer_new(spool, &w, &why), 0);
	qfile_writer_start(w, 1, "");
	qfile_writer_attr(w, "helo", big);
	qfile_writer_rcpt(w, "a@b", "", "");
	qfile_writer_begin_body(w);
	T_EQ_INT(qfile_writer_finish(w, &why), -1);
	T_ASSERT(strstr(why.data, "too long") != NULL);
	qfile_writer_free(&w);
	free(big);
	buf_free(&why);
}

static const char good_env[] =
    "VHERALDQ1\nT1700000000\nSa@b\nAhelo=x\nRQr@d\t\t\nRDs@d\tx\ty\n";

/* damaged files: each must fail, with a reason that names the damage */
static const struct {
	const char *name;
	const char *env;	/* envelope up to M (built with the body) */
	const char *body;
	const char *raw;	/* or the whole file as is */
	const char *why;	/* substring of the reason */
} damaged[] = {
	{"empty", NULL, NULL, "", "empty file"},
	{"no version", "T1\nSa@b\nRQr@d\t\t\n", "", NULL, "bad version"},
	{"version 3", "VHERALDQ3\nT1\nSa@b\nRQr@d\t\t\n", "", NULL,
	    "unsupported queue file version"},
	{"version with junk", "VHERALDQ1 \nT1\nSa@b\nRQr@d\t\t\n", "", NULL,
	    "version"},
	{"missing T", "VHERALDQ1\nSa@b\nRQr@d\t\t\n", "", NULL,
	    "missing T record"},
	{"missing S", "VHERALDQ1\nT1\nRQr@d\t\t\n", "", NULL,
	    "missing S record"},
	{"missing R", "VHERALDQ1\nT1\nSa@b\nAx=y\n", "", NULL,
	    "missing R record"},
	{"missing M", NULL, NULL, "VHERALDQ1\nT1\nSa@b\nRQr@d\t\t\n",
	    "missing M record"},
	{"missing E", NULL, NULL,
	    "VHERALDQ1\nT1\nSa@b\nRQr@d\t\t\nM0000000000000002\nab",
	    "does not match"},
	{"E replaced", NULL, NULL,
	    "VHERALDQ1\nT1\nSa@b\nRQr@d\t\t\nM0000000000000002\nabX\n",
	    "missing end record"},
	{"E without newline", NULL, NULL,
	    "VHERALDQ1\nT1\nSa@b\nRQr@d\t\t\nM0000000000000002\nabEE",
	    "missing end record"},
	{"extra after E", NULL, NULL,
	    "VHERALDQ1\nT1\nSa@b\nRQr@d\t\t\nM0000000000000002\nabE\nx",
	    "does not match"},
	{"size too small", NULL, NULL,
	    "VHERALDQ1\nT1\nSa@b\nRQr@d\t\t\nM0000000000000001\nabE\n",
	    "does not match"},
	{"size too big", NULL, NULL,
	    "VHERALDQ1\nT1\nSa@b\nRQr@d\t\t\nM0000000000000003\nabE\n",
	    "does not match"},
	{"size huge", NULL, NULL,
	    "VHERALDQ1\nT1\nSa@b\nRQr@d\t\t\nM9999999999999999\nabE\n",
	    "does not match"},
	{"size 15 digits", NULL, NULL,
	    "VHERALDQ1\nT1\nSa@b\nRQr@d\t\t\nM000000000000002\nabE\n",
	    "record 5: bad message size"},
	{"size not digits", NULL, NULL,
	    "VHERALDQ1\nT1\nSa@b\nRQr@d\t\t\nM00000000000000+2\nabE\n",
	    "record 5: bad message size"},
	{"unknown type", "VHERALDQ1\nT1\nSa@b\nZoo\nRQr@d\t\t\n", "", NULL,
	    "record 4: unknown record type 'Z'"},
	{"unknown type ctl", "VHERALDQ1\nT1\nSa@b\n\001x\nRQr@d\t\t\n", "",
	    NULL, "unknown record type '\\x01'"},
	{"empty record", "VHERALDQ1\nT1\nSa@b\n\nRQr@d\t\t\n", "", NULL,
	    "record 4: empty record"},
	{"bad status", "VHERALDQ1\nT1\nSa@b\nRxr@d\t\t\n", "", NULL,
	    "record 4: bad recipient status 'x'"},
	{"one tab", "VHERALDQ1\nT1\nSa@b\nRQr@d\t\n", "", NULL,
	    "record 4: recipient record has 1 tabs"},
	{"three tabs", "VHERALDQ1\nT1\nSa@b\nRQr@d\t\t\t\n", "", NULL,
	    "has 3 tabs"},
	{"empty rcpt", "VHERALDQ1\nT1\nSa@b\nRQ\t\t\n", "", NULL,
	    "empty recipient"},
	{"empty R", "VHERALDQ1\nT1\nSa@b\nR\n", "", NULL,
	    "empty recipient record"},
	{"CR in rcpt", "VHERALDQ1\nT1\nSa@b\nRQr@d\r\t\t\n", "", NULL,
	    "CR or NUL"},
	{"NUL in rcpt", NULL, NULL, NULL, NULL},	/* placeholder, skipped */
	{"usec 5 digits", "VHERALDQ1\nT1.12345\nSa@b\nRQr@d\t\t\n", "", NULL,
	    "record 2: bad arrival time"},
	{"usec 7 digits", "VHERALDQ1\nT1.1234567\nSa@b\nRQr@d\t\t\n", "",
	    NULL, "record 2: bad arrival time"},
	{"usec empty", "VHERALDQ1\nT1.\nSa@b\nRQr@d\t\t\n", "", NULL,
	    "record 2: bad arrival time"},
	{"usec alone", "VHERALDQ1\nT.123456\nSa@b\nRQr@d\t\t\n", "", NULL,
	    "record 2: bad arrival time"},
	{"usec not digits", "VHERALDQ1\nT1.12345x\nSa@b\nRQr@d\t\t\n", "",
	    NULL, "record 2: bad arrival time"},
	{"two dots", "VHERALDQ1\nT1.1.1234\nSa@b\nRQr@d\t\t\n", "", NULL,
	    "record 2: bad arrival time"},
	{"bad time", "VHERALDQ1\nT17x\nSa@b\nRQr@d\t\t\n", "", NULL,
	    "record 2: bad arrival time"},
	{"empty time", "VHERALDQ1\nT\nSa@b\nRQr@d\t\t\n", "", NULL,
	    "bad arrival time"},
	{"negative time", "VHERALDQ1\nT-1\nSa@b\nRQr@d\t\t\n", "", NULL,
	    "bad arrival time"},
	{"two T", "VHERALDQ1\nT1\nT2\nSa@b\nRQr@d\t\t\n", "", NULL,
	    "T record repeated"},
	{"two S", "VHERALDQ1\nT1\nSa@b\nSc@d\nRQr@d\t\t\n", "", NULL,
	    "S record repeated"},
	{"S after A", "VHERALDQ1\nT1\nAx=y\nSa@b\nRQr@d\t\t\n", "", NULL,
	    "missing S record"},
	{"A after R", "VHERALDQ1\nT1\nSa@b\nRQr@d\t\t\nAx=y\n", "", NULL,
	    "record 5: A record out of order"},
	{"T after S", "VHERALDQ1\nT1\nSa@b\nT1\nRQr@d\t\t\n", "", NULL,
	    "out of order"},
	{"two V", "VHERALDQ1\nVHERALDQ1\nT1\nSa@b\nRQr@d\t\t\n", "", NULL,
	    "record 2: duplicate version"},
	{"E early", "VHERALDQ1\nT1\nSa@b\nRQr@d\t\t\nE\n", "", NULL,
	    "record 5: end record before"},
	{"attr without =", "VHERALDQ1\nT1\nSa@b\nAhelo\nRQr@d\t\t\n", "",
	    NULL, "record 4: bad attribute"},
	{"attr bad name", "VHERALDQ1\nT1\nSa@b\nAHelo=x\nRQr@d\t\t\n", "",
	    NULL, "record 4: bad attribute"},
	{"attr empty name", "VHERALDQ1\nT1\nSa@b\nA=x\nRQr@d\t\t\n", "",
	    NULL, "record 4: bad attribute"},
	{"attr tab", "VHERALDQ1\nT1\nSa@b\nAa=x\ty\nRQr@d\t\t\n", "", NULL,
	    "record 4: attribute holds"},
	{"sender tab", "VHERALDQ1\nT1\nSa\t@b\nRQr@d\t\t\n", "", NULL,
	    "record 3: sender holds"},
	{"sender CR", "VHERALDQ1\nT1\nSa@b\r\nRQr@d\t\t\n", "", NULL,
	    "record 3: sender holds"},
	{"no newline in envelope", NULL, NULL, "VHERALDQ1\nT1\nSa@b",
	    "record 3: truncated"},
};

static void
test_damaged(void)
{
	struct buf file = BUF_INIT, why = BUF_INIT;

	for (size_t i = 0; i < sizeof(damaged) / sizeof(damaged[0]); i++) {
		int r;

		if (damaged[i].why == NULL)
			continue;
		if (damaged[i].raw != NULL) {
			buf_set(&file, damaged[i].raw);
		} else {
			build(&file, damaged[i].env, damaged[i].body);
		}
		r = read_bytes(file.data, file.len, &why);
		if (r != -1 || strstr(why.data, damaged[i].why) == NULL)
			fprintf(stderr, "  %s: %d \"%s\"\n", damaged[i].name,
			    r, why.data);
		T_EQ_INT(r, -1);
		T_ASSERT(strstr(why.data, damaged[i].why) != NULL);
	}
	/* and the good one passes, so the table tests what it says */
	build(&file, good_env, "hello\r\n");
	T_EQ_INT(read_bytes(file.data, file.len, &why), 0);
	/* NUL inside values */
	build(&file, "VHERALDQ1\nT1\nSa@b\nRQr@d\t\t\n", "");
	file.data[file.len - 25] = '\0';	/* in "r@d" */
	T_EQ_INT(read_bytes(file.data, file.len, &why), -1);
	build(&file, "VHERALDQ1\nT1\nSa@b\nRQr@d\t\t\n", "");
	file.data[15] = '\0';			/* in the sender */
	T_EQ_INT(read_bytes(file.data, file.len, &why), -1);
	buf_free(&file);
	buf_free(&why);
}

static void
test_limits(void)
{
	struct buf file = BUF_INIT, why = BUF_INIT, env = BUF_INIT;

	/* a record of 8 KiB (with its newline) is fine, one more is not */
	buf_puts(&env, "VHERALDQ1\nT1\nS");
	for (int i = 0; i < 8192 - 2; i++)
		buf_putc(&env, 'x');
	buf_puts(&env, "\nRQr@d\t\t\n");
	build(&file, env.data, "");
	T_EQ_INT(read_bytes(file.data, file.len, &why), 0);
	buf_reset(&env);
	buf_puts(&env, "VHERALDQ1\nT1\nS");
	for (int i = 0; i < 8192 - 1; i++)
		buf_putc(&env, 'x');
	buf_puts(&env, "\nRQr@d\t\t\n");
	build(&file, env.data, "");
	T_EQ_INT(read_bytes(file.data, file.len, &why), -1);
	T_ASSERT(strstr(why.data, "record 3: longer than") != NULL);
	/* a huge line with no newline at all */
	buf_reset(&env);
	buf_puts(&env, "VHERALDQ1\nT1\nS");
	for (int i = 0; i < 200000; i++)
		buf_putc(&env, 'x');
	T_EQ_INT(read_bytes(env.data, env.len, &why), -1);
	T_ASSERT(strstr(why.data, "longer than") != NULL);
	/* 200,001 recipients */
	buf_reset(&env);
	buf_puts(&env, "VHERALDQ1\nT1\nS\n");
	for (int i = 0; i < 200001; i++)
		buf_puts(&env, "RQr@d\t\t\n");
	build(&file, env.data, "");
	T_EQ_INT(read_bytes(file.data, file.len, &why), -1);
	T_ASSERT(strstr(why.data, "more than 200000 recipients") != NULL);
	/* exactly 200,000 are fine */
	buf_truncate(&file, 0);
	buf_truncate(&env, env.len - strlen("RQr@d\t\t\n"));
	build(&file, env.data, "");
	T_EQ_INT(read_bytes(file.data, file.len, &why), 0);
	buf_free(&file);
	buf_free(&why);
	buf_free(&env);
}

/* a file cut at any offset is refused, never accepted or crashed on */
static void
test_truncated_everywhere(void)
{
	struct buf file = BUF_INIT, why = BUF_INIT;

	build(&file, good_env, "Subject: x\r\n\r\nhello\r\n");
	for (size_t cut = 0; cut < file.len; cut++) {
		int r = read_bytes(file.data, cut, &why);

		if (r != -1)
			fprintf(stderr, "  cut at %zu: %d\n", cut, r);
		T_EQ_INT(r, -1);
		T_ASSERT(why.len > 0);
	}
	T_EQ_INT(read_bytes(file.data, file.len, &why), 0);
	buf_free(&file);
	buf_free(&why);
}

/* every envelope byte replaced by a few nasty values: no crash, and a
 * damaged record type, version or size is always refused */
static void
test_flipped_bytes(void)
{
	static const char subst[] = {'\0', '\n', '\t', '\r', 'Z', 'Q', '9',
	    'E', '\xff'};
	struct buf file = BUF_INIT, copy = BUF_INIT, why = BUF_INIT;
	size_t env_len;

	build(&file, good_env, "body\r\n");
	env_len = file.len - strlen("body\r\n") - 2;
	for (size_t i = 0; i < file.len; i++) {
		for (size_t s = 0; s < sizeof(subst); s++) {
			int r;
			bool type_byte;

			if (file.data[i] == subst[s])
				continue;
			buf_reset(&copy);
			buf_append(&copy, file.data, file.len);
			copy.data[i] = subst[s];
			r = read_bytes(copy.data, copy.len, &why);
			T_ASSERT(r == 0 || r == -1);
			type_byte = i == 0 || file.data[i - 1] == '\n';
			if (i < 10 || (type_byte && i < env_len) ||
			    i >= file.len - 2 || (i >= env_len - 18 &&
			    i < env_len)) {
				/* version, record type, M, E: never ok */
				if (r != -1)
					fprintf(stderr, "  byte %zu -> %02x "
					    "accepted\n", i,
					    (unsigned char)subst[s]);
				T_EQ_INT(r, -1);
			}
		}
	}
	buf_free(&file);
	buf_free(&copy);
	buf_free(&why);
}

static void
test_set_status(void)
{
	char qid[QID_SIZE];
	struct buf why = BUF_INIT;
	struct qfile *qf = NULL;
	off_t off;
	int fd;

	setup();
	T_EQ_INT(write_sample("hello\r\n", 7, 3, qid, &why), 0);
	fd = open_qid(qid);
	T_ASSERT(fd >= 0);
	T_EQ_INT(qfile_read(fd, &qf, &why), 0);
	T_EQ_INT(qfile_set_status(qf, 0, QFILE_DELIVERED, &why), 0);
	T_EQ_INT(qfile_set_status(qf, 2, QFILE_BOUNCED, &why), 0);
	T_EQ_INT(qfile_sync(qf, &why), 0);
	T_EQ_INT(qfile_pending(qf), 1);
	qfile_free(&qf);
	T_EQ_INT(qfile_read(fd, &qf, &why), 0);
	T_EQ_INT(qf->rcpt[0].status, QFILE_DELIVERED);
	T_EQ_INT(qf->rcpt[1].status, QFILE_QUEUED);
	T_EQ_INT(qf->rcpt[2].status, QFILE_BOUNCED);
	T_EQ_INT(qfile_pending(qf), 1);
	/* back to queued works too */
	T_EQ_INT(qfile_set_status(qf, 2, QFILE_QUEUED, &why), 0);
	T_EQ_INT(qfile_pending(qf), 2);
	/* the byte there is not a status any more: refuse to write */
	off = qf->rcpt[1].status_off;
	T_ASSERT(pwrite(fd, "x", 1, off) == 1);
	T_EQ_INT(qfile_set_status(qf, 1, QFILE_DELIVERED, &why), -1);
	T_ASSERT(strstr(why.data, "not a status") != NULL);
	{
		char c = 0;

		T_ASSERT(pread(fd, &c, 1, off) == 1);
		T_EQ_INT(c, 'x');
	}
	/* bugs */
	T_EXPECT_DEATH(qfile_set_status(qf, 3, QFILE_DELIVERED, &why));
	T_EXPECT_DEATH(qfile_set_status(qf, 0, 'x', &why));
	qfile_free(&qf);
	close(fd);
	buf_free(&why);
}

static void
test_set_warned(void)
{
	char qid[QID_SIZE], c = 0;
	struct buf why = BUF_INIT;
	struct qfile *qf = NULL;
	int fd;

	setup();
	T_EQ_INT(write_sample("hello\r\n", 7, 3, qid, &why), 0);
	fd = open_qid(qid);
	T_ASSERT(fd >= 0);
	T_EQ_INT(qfile_read(fd, &qf, &why), 0);
	T_ASSERT(!qf->rcpt[1].warned);
	T_EQ_INT(qfile_set_warned(qf, 1, true, &why), 0);
	T_EQ_INT(qfile_set_warned(qf, 2, true, &why), 0);
	T_ASSERT(pread(fd, &c, 1, qf->rcpt[1].status_off) == 1);
	T_EQ_INT(c, QFILE_WARNED);
	qfile_free(&qf);
	/* read back: still queued, and warned */
	T_EQ_INT(qfile_read(fd, &qf, &why), 0);
	T_EQ_INT(qf->rcpt[1].status, QFILE_QUEUED);
	T_ASSERT(qf->rcpt[1].warned);
	T_ASSERT(!qf->rcpt[0].warned);
	T_EQ_INT(qfile_pending(qf), 3);
	/* a final status replaces the mark; unmarking works */
	T_EQ_INT(qfile_set_status(qf, 1, QFILE_DELIVERED, &why), 0);
	T_ASSERT(!qf->rcpt[1].warned);
	T_EQ_INT(qfile_set_warned(qf, 2, false, &why), 0);
	qfile_free(&qf);
	T_EQ_INT(qfile_read(fd, &qf, &why), 0);
	T_EQ_INT(qf->rcpt[1].status, QFILE_DELIVERED);
	T_ASSERT(!qf->rcpt[2].warned);
	T_EQ_INT(qfile_pending(qf), 2);
	/* only a queued recipient can be warned */
	T_EXPECT_DEATH(qfile_set_warned(qf, 1, true, &why));
	qfile_free(&qf);
	close(fd);
	buf_free(&why);
}

/* writer_at - a writer advanced to a state for the panic tests */
static struct qfile_writer *
writer_at(int stage)
{
	struct qfile_writer *w;
	struct buf why = BUF_INIT;

	if (qfile_writer_new(spool, &w, &why) < 0)
		abort();
	buf_free(&why);
	if (stage >= 1)
		qfile_writer_start(w, 1, "a@b");
	if (stage >= 2)
		qfile_writer_rcpt(w, "r@d", "", "");
	if (stage >= 3)
		qfile_writer_begin_body(w);
	return w;
}

static void
test_writer_panics(void)
{
	struct buf why = BUF_INIT;

	setup();
	/* bad values */
	T_EXPECT_DEATH(qfile_writer_start(writer_at(0), 1, "a\r@b"));
	T_EXPECT_DEATH(qfile_writer_start(writer_at(0), 1, "a\n@b"));
	T_EXPECT_DEATH(qfile_writer_start(writer_at(0), 1, "a\t@b"));
	T_EXPECT_DEATH(qfile_writer_start(writer_at(0), 1, NULL));
	T_EXPECT_DEATH(qfile_writer_attr(writer_at(1), "helo", "x\ny"));
	T_EXPECT_DEATH(qfile_writer_attr(writer_at(1), "helo", "x\ty"));
	T_EXPECT_DEATH(qfile_writer_attr(writer_at(1), "Helo", "x"));
	T_EXPECT_DEATH(qfile_writer_attr(writer_at(1), "he=lo", "x"));
	T_EXPECT_DEATH(qfile_writer_attr(writer_at(1), "", "x"));
	T_EXPECT_DEATH(qfile_writer_rcpt(writer_at(1), "r\t@d", "", ""));
	T_EXPECT_DEATH(qfile_writer_rcpt(writer_at(1), "r@d", "a\rb", ""));
	T_EXPECT_DEATH(qfile_writer_rcpt(writer_at(1), "r@d", "", "\n"));
	T_EXPECT_DEATH(qfile_writer_rcpt(writer_at(1), "", "", ""));
	/* out of order */
	T_EXPECT_DEATH(qfile_writer_attr(writer_at(0), "helo", "x"));
	T_EXPECT_DEATH(qfile_writer_rcpt(writer_at(0), "r@d", "", ""));
	T_EXPECT_DEATH(qfile_writer_start(writer_at(1), 1, "a@b"));
	T_EXPECT_DEATH(qfile_writer_attr(writer_at(2), "helo", "x"));
	T_EXPECT_DEATH(qfile_writer_begin_body(writer_at(1)));
	T_EXPECT_DEATH(qfile_writer_body(writer_at(2), "x", 1));
	T_EXPECT_DEATH(qfile_writer_finish(writer_at(2), &why));
	T_EXPECT_DEATH(qfile_writer_rcpt(writer_at(3), "r@d", "", ""));
	T_EXPECT_DEATH(qfile_writer_begin_body(writer_at(3)));
	T_EXPECT_DEATH(qfile_writer_link(writer_at(3), "0123456789ABCDEFG",
	    &why));
	T_EXPECT_DEATH(qfile_writer_sync(writer_at(3), &why));
	/* a good sequence in a child survives (the harness is sound) */
	{
		pid_t p = fork();
		int st = 0;

		if (p == 0) {
			struct qfile_writer *w = writer_at(3);

			if (qfile_writer_finish(w, &why) < 0)
				_exit(1);
			qfile_writer_free(&w);
			_exit(0);
		}
		T_ASSERT(p > 0 && waitpid(p, &st, 0) == p);
		T_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	buf_free(&why);
}

/* a file that is not regular */
static void
test_not_regular(void)
{
	struct buf why = BUF_INIT;
	struct qfile *qf = NULL;
	int fd;

	setup();
	fd = open(incoming, O_RDONLY | O_DIRECTORY);
	T_ASSERT(fd >= 0);
	T_EQ_INT(qfile_read(fd, &qf, &why), -1);
	T_ASSERT(qf == NULL);
	close(fd);
	buf_free(&why);
}

/* test_arrival_usec - microseconds are written, read back, and left out
 * when zero (files of whole seconds read as before) */
static void
test_arrival_usec(void)
{
	static const long usec[] = {123456, 1, 999999, 0};
	struct buf why = BUF_INIT;

	setup();
	for (size_t i = 0; i < sizeof(usec) / sizeof(usec[0]); i++) {
		struct qfile_writer *w;
		struct qfile *qf = NULL;
		char qid[QID_SIZE], head[64], want[64];
		int fd;

		T_EQ_INT(qfile_writer_new(spool, &w, &why), 0);
		qfile_writer_start_usec(w, 1700000000, usec[i], "s@x");
		qfile_writer_rcpt(w, "r@x", "", "");
		qfile_writer_begin_body(w);
		qfile_writer_body(w, "x\r\n", 3);
		qid_new(qid);
		T_EQ_INT(qfile_writer_finish(w, &why), 0);
		T_EQ_INT(qfile_writer_sync(w, &why), 0);
		T_EQ_INT(qfile_writer_link(w, qid, &why), 0);
		qfile_writer_free(&w);
		fd = open_qid(qid);
		T_ASSERT(fd >= 0);
		memset(head, 0, sizeof(head));
		T_ASSERT(pread(fd, head, sizeof(head) - 1, 0) > 0);
		if (usec[i] != 0)
			snprintf(want, sizeof(want), "VHERALDQ2\nT1700000000."
			    "%06ld\n", usec[i]);
		else
			snprintf(want, sizeof(want),
			    "VHERALDQ2\nT1700000000\n");
		T_ASSERT(strncmp(head, want, strlen(want)) == 0);
		T_EQ_INT(qfile_read(fd, &qf, &why), 0);
		T_EQ_INT(qf->arrival, 1700000000);
		T_EQ_INT(qf->arrival_usec, usec[i]);
		qfile_free(&qf);
		close(fd);
	}
	T_EXPECT_DEATH(qfile_writer_start_usec(writer_at(0), 1, 1000000,
	    "a@b"));
	T_EXPECT_DEATH(qfile_writer_start_usec(writer_at(0), 1, -1, "a@b"));
	buf_free(&why);
}

static int read_bytes_fd(int);

/* read_notes - qfile_read then qfile_notes_read on fd; the count or -1 */
static int
read_notes(int fd, struct qfile_note **notes, size_t *n)
{
	struct buf why = BUF_INIT;
	struct qfile *qf = NULL;
	int r;

	*notes = NULL;
	*n = 0;
	if (qfile_read(fd, &qf, &why) < 0) {
		fprintf(stderr, "  qfile_read: %s\n", buf_cstr(&why));
		buf_free(&why);
		return -1;
	}
	r = qfile_notes_read(qf, notes, n, &why);
	qfile_free(&qf);
	buf_free(&why);
	return r < 0 ? -1 : (int)*n;
}

/* write_notes - qfile_read, qfile_notes_write of notes[0..n) */
static int
write_notes(int fd, const struct qfile_note *notes, size_t n)
{
	struct buf why = BUF_INIT;
	struct qfile *qf = NULL;
	int r = -1;

	if (qfile_read(fd, &qf, &why) == 0)
		r = qfile_notes_write(qf, notes, n, &why);
	if (r < 0)
		fprintf(stderr, "  notes: %s\n", buf_cstr(&why));
	qfile_free(&qf);
	buf_free(&why);
	return r;
}

/* the reasons of deferred recipients survive in the file, control bytes
 * do not, and a rewrite replaces them all */
static void
test_notes_round_trip(void)
{
	char qid[QID_SIZE], longtext[QFILE_NOTE_TEXT_MAX + 50];
	struct buf why = BUF_INIT;
	struct qfile_note in[2], *out;
	size_t n;
	int fd;

	setup();
	T_EQ_INT(write_sample("hi\r\n", 4, 4, qid, &why), 0);
	fd = open_qid(qid);
	T_ASSERT(fd >= 0);
	T_EQ_INT(read_notes(fd, &out, &n), 0);		/* none yet */
	memset(in, 0, sizeof(in));
	in[0].idx = 2;
	in[0].when = 1700000100;
	snprintf(in[0].dsn, sizeof(in[0].dsn), "4.2.2");
	in[0].text = "mailbox full\033[2J\r\nnow\x7f";
	in[1].idx = 0;
	in[1].when = 1700000200;
	snprintf(in[1].dsn, sizeof(in[1].dsn), "4.4.1");
	memset(longtext, 'x', sizeof(longtext) - 1);
	longtext[sizeof(longtext) - 1] = '\0';
	in[1].text = longtext;
	T_EQ_INT(write_notes(fd, in, 2), 0);
	T_EQ_INT(read_notes(fd, &out, &n), 2);
	T_EQ_INT(out[0].idx, 2);
	T_EQ_INT(out[0].when, 1700000100);
	T_EQ_STR(out[0].dsn, "4.2.2");
	T_EQ_STR(out[0].text, "mailbox full?[2J??now?");
	T_EQ_INT(out[1].idx, 0);
	T_EQ_INT(strlen(out[1].text), QFILE_NOTE_TEXT_MAX);
	qfile_notes_free(&out, n);
	T_ASSERT(out == NULL);
	/* the message is untouched and still reads */
	T_EQ_INT(read_bytes_fd(fd), 0);
	/* a shorter rewrite: the old block is gone */
	in[0].text = "connection refused";
	T_EQ_INT(write_notes(fd, in, 1), 0);
	T_EQ_INT(read_notes(fd, &out, &n), 1);
	T_EQ_STR(out[0].text, "connection refused");
	qfile_notes_free(&out, n);
	/* no deferral left: no notes */
	T_EQ_INT(write_notes(fd, in, 0), 0);
	T_EQ_INT(read_notes(fd, &out, &n), 0);
	close(fd);
	buf_free(&why);
}

/* read_bytes_fd - qfile_read on an open file: 0 or -1 */
static int
read_bytes_fd(int fd)
{
	struct buf why = BUF_INIT;
	struct qfile *qf = NULL;
	int r = qfile_read(fd, &qf, &why);

	qfile_free(&qf);
	buf_free(&why);
	return r;
}

/* a damaged notes block costs the notes, never the message */
static void
test_notes_damaged(void)
{
	static const char *const bad[] = {
		"",				/* nothing after E */
		"N0 1 4.0.0 x\n",		/* no Z line (torn) */
		"N0 1 4.0.0 x\nZ00000000\n",	/* wrong checksum */
		"N0 1 4.0.0 x",			/* no newline */
		"junk\n",
		"N9 1 4.0.0 x\nZ00000000\n",	/* no such recipient */
		"N0 1 4.0.0 x\033\nZ00000000\n",	/* control byte */
		"N0 1 4.0.0 x\nZ",		/* torn Z */
	};
	struct buf file = BUF_INIT;
	struct qfile_note *out;
	size_t n;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int fd;

		build(&file, "VHERALDQ2\nT1\nSa@b\nRQr@d\t\t\n", "x");
		buf_puts(&file, bad[i]);
		fd = mem_fd(file.data, file.len);
		T_EQ_INT(read_notes(fd, &out, &n), 0);
		close(fd);
	}
	/* the same block with its checksum is taken */
	{
		struct qfile_note in = {0, 1, "4.0.0", "x"};
		int fd;

		build(&file, "VHERALDQ2\nT1\nSa@b\nRQr@d\t\t\n", "x");
		fd = mem_fd(file.data, file.len);
		T_EQ_INT(write_notes(fd, &in, 1), 0);
		T_EQ_INT(read_notes(fd, &out, &n), 1);
		qfile_notes_free(&out, n);
		/* a crash between write and truncate: old bytes after Z */
		T_ASSERT(pwrite(fd, "N0 1 4.0.0 old\n", 15,
		    (off_t)file.len + 20) == 15);
		T_EQ_INT(read_bytes_fd(fd), 0);
		T_EQ_INT(read_notes(fd, &out, &n), 0);
		close(fd);
	}
	/* version 1 keeps its strict size check */
	build(&file, "VHERALDQ1\nT1\nSa@b\nRQr@d\t\t\n", "x");
	buf_puts(&file, "N0 1 4.0.0 x\n");
	{
		int fd = mem_fd(file.data, file.len);

		T_EQ_INT(read_bytes_fd(fd), -1);
		close(fd);
	}
	buf_free(&file);
}

/* an old (version 1) file gets version 2 before its first notes */
static void
test_notes_version1(void)
{
	struct qfile_note in = {0, 5, "4.3.5", "remote delivery is not "
	    "available"}, *out;
	struct buf file = BUF_INIT;
	char head[10];
	size_t n;
	int fd;

	build(&file, "VHERALDQ1\nT1\nSa@b\nRQr@d\t\t\n", "body");
	fd = mem_fd(file.data, file.len);
	T_EQ_INT(read_notes(fd, &out, &n), 0);
	T_EQ_INT(write_notes(fd, &in, 1), 0);
	T_ASSERT(pread(fd, head, 10, 0) == 10);
	T_ASSERT(memcmp(head, "VHERALDQ2\n", 10) == 0);
	T_EQ_INT(read_notes(fd, &out, &n), 1);
	T_EQ_STR(out[0].text, "remote delivery is not available");
	T_EQ_STR(out[0].dsn, "4.3.5");
	T_EQ_INT(out[0].when, 5);
	qfile_notes_free(&out, n);
	close(fd);
	buf_free(&file);
}

static const struct test_case cases[] = {
	{"round trip small", test_round_trip_small},
	{"round trip big", test_round_trip_big},
	{"read ignores the file offset", test_read_ignores_offset},
	{"unlinked file disappears", test_unlinked_disappears},
	{"named fallback", test_named_fallback},
	{"insert before the message", test_insert},
	{"arrival with microseconds", test_arrival_usec},
	{"writer_new fails", test_new_fails},
	{"link target exists", test_link_exists},
	{"record too long", test_record_too_long},
	{"damaged files", test_damaged},
	{"limits", test_limits},
	{"truncated at every offset", test_truncated_everywhere},
	{"flipped bytes", test_flipped_bytes},
	{"set status", test_set_status},
	{"delay warning mark", test_set_warned},
	{"writer panics", test_writer_panics},
	{"not a regular file", test_not_regular},
	{"notes round trip", test_notes_round_trip},
	{"notes damaged", test_notes_damaged},
	{"notes on a version 1 file", test_notes_version1},
	{0},
};

int
main(void)
{
	int r = test_run(cases);

	cleanup();
	return r;
}
