/*
 * log_relay_fuzz - what services write to master's log pipe, as master
 * relays it into the log file (lib/base/log.c msg_relay_feed): the
 * writers run as less privileged users, master as root.
 *
 * The input is fed in chunks whose sizes come from its first byte, then
 * flushed. Checked: every line of the file is whole (ends in LF), at most
 * LOG_WRITE_MAX bytes, begins with a timestamp, and holds no control
 * byte; there are no more lines than the input had LFs, plus one.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/log.h"
#include "fuzz.h"

static int fuzz_fd = -1;	/* memfd behind the log file */
static char fuzz_out[1 << 21];

/* fuzz_log_open - the log file: a memfd opened by its /proc path */
static void
fuzz_log_open(void)
{
	char path[64];

	if ((fuzz_fd = memfd_create("log_relay_fuzz", MFD_CLOEXEC)) < 0)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fuzz_fd);
	if (msg_file_open(path) < 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct log_relay r;
	size_t chunk, off = 0, lfs = 0, lines = 0;
	ssize_t n;

	if (fuzz_fd < 0)
		fuzz_log_open();
	if (ftruncate(fuzz_fd, 0) < 0)
		abort();
	memset(&r, 0, sizeof(r));
	chunk = size > 0 ? (size_t)data[0] * 37 + 1 : 1;
	while (off < size) {
		size_t take = size - off < chunk ? size - off : chunk;

		msg_relay_feed(&r, (const char *)data + off, take);
		off += take;
	}
	msg_relay_flush(&r);
	for (size_t i = 0; i < size; i++)
		lfs += data[i] == '\n';

	n = pread(fuzz_fd, fuzz_out, sizeof(fuzz_out), 0);
	FUZZ_CHECK(n >= 0 && (size_t)n < sizeof(fuzz_out));
	for (size_t start = 0; start < (size_t)n; lines++) {
		const char *nl = memchr(fuzz_out + start, '\n',
		    (size_t)n - start);
		size_t len;

		FUZZ_CHECK(nl != NULL);
		len = (size_t)(nl - (fuzz_out + start));
		FUZZ_CHECK(len + 1 <= LOG_WRITE_MAX);
		FUZZ_CHECK(len >= 30 && fuzz_out[start + 4] == '-' &&
		    fuzz_out[start + 10] == 'T' &&
		    fuzz_out[start + 29] == ' ');
		for (size_t i = 0; i < len; i++)
			FUZZ_CHECK((unsigned char)fuzz_out[start + i] >= ' ' &&
			    fuzz_out[start + i] != 0x7f);
		start += len + 1;
	}
	FUZZ_CHECK(lines <= lfs + 1);
	return 0;
}
