/*
 * qfile_fuzz - the queue file reader (lib/mail/qfile.c). Queue files are
 * written by smtpd, but a damaged disk, a crash mid-write or a hand edit
 * must give a clear refusal (the file goes to corrupt/), never a crash.
 *
 * Checked: an accepted file's recipients have a known status whose
 * offset points at that status byte in the file ('W' on disk for a
 * queued recipient whose sender was warned, which reads as queued with
 * warned set: corpus/qfile/warned-recipient, a finding of a harness that
 * still expected the status itself there), and the message lies inside
 * the file. The notes after the end record (version 2) are read
 * too: each names an existing recipient, once, with text free of
 * control bytes.
 */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/buf.h"
#include "mail/qfile.h"
#include "fuzz.h"

/* fuzz_notes - the notes of an accepted file are sane */
static void
fuzz_notes(const struct qfile *qf)
{
	struct buf why = BUF_INIT;
	struct qfile_note *notes;
	size_t n;

	FUZZ_CHECK(qfile_notes_read(qf, &notes, &n, &why) == 0);
	for (size_t i = 0; i < n; i++) {
		FUZZ_CHECK(notes[i].idx < qf->nrcpt);
		for (size_t k = 0; k < i; k++)
			FUZZ_CHECK(notes[k].idx != notes[i].idx);
		FUZZ_CHECK(strlen(notes[i].text) <= QFILE_NOTE_TEXT_MAX);
		for (const char *p = notes[i].text; *p; p++)
			FUZZ_CHECK((unsigned char)*p >= 0x20 && *p != 0x7f);
	}
	qfile_notes_free(&notes, n);
	buf_free(&why);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf why = BUF_INIT;
	struct qfile *qf = NULL;
	int fd = memfd_create("qfile_fuzz", MFD_CLOEXEC);

	if (fd < 0)
		abort();
	if (size > 0 && write(fd, data, size) != (ssize_t)size)
		abort();
	if (qfile_read(fd, &qf, &why) == 0) {
		FUZZ_CHECK(qf->sender != NULL);
		FUZZ_CHECK(qf->body_off >= 0 && qf->body_size >= 0 &&
		    (size_t)(qf->body_off + qf->body_size) <= size);
		for (size_t i = 0; i < qf->nrcpt; i++) {
			off_t o = qf->rcpt[i].status_off;

			FUZZ_CHECK(o >= 0 && (size_t)o < size);
			/* on disk a warned queued recipient is 'W' */
			FUZZ_CHECK(data[o] == (uint8_t)(qf->rcpt[i].warned ?
			    QFILE_WARNED : qf->rcpt[i].status));
			FUZZ_CHECK(!qf->rcpt[i].warned ||
			    qf->rcpt[i].status == QFILE_QUEUED);
			FUZZ_CHECK(qf->rcpt[i].addr != NULL);
		}
		fuzz_notes(qf);
		qfile_free(&qf);
	} else {
		FUZZ_CHECK(why.len > 0 && qf == NULL);
	}
	close(fd);
	buf_free(&why);
	return 0;
}
