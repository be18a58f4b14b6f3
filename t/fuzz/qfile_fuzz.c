/*
 * qfile_fuzz - the queue file reader (lib/mail/qfile.c). Queue files are
 * written by smtpd, but a damaged disk, a crash mid-write or a hand edit
 * must give a clear refusal (the file goes to corrupt/), never a crash.
 *
 * Checked: an accepted file's recipients have a known status whose
 * offset points at that status byte in the file, and the message lies
 * inside the file.
 */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/buf.h"
#include "mail/qfile.h"
#include "fuzz.h"

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
			FUZZ_CHECK(data[o] == (uint8_t)qf->rcpt[i].status);
			FUZZ_CHECK(qf->rcpt[i].addr != NULL);
		}
		qfile_free(&qf);
	} else {
		FUZZ_CHECK(why.len > 0 && qf == NULL);
	}
	close(fd);
	buf_free(&why);
	return 0;
}
