/*
 * ipc_fuzz - IPC frames (lib/mail/ipc.c) as a service reads them from a
 * peer: a byte stream cut into frames by ipc_frame_take.
 *
 * Checked: a frame is taken only when complete and then dropped from the
 * input; a parsed message re-encodes to the very same frame bytes; its
 * pairs iterate to the end with names that are not empty.
 */
#include <string.h>

#include "base/buf.h"
#include "mail/ipc.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf in = BUF_INIT, why = BUF_INIT, again = BUF_INIT;
	struct ipc_msg m;
	size_t off = 0, before = size;
	int r;

	buf_append(&in, (const char *)data, size);
	ipc_msg_init(&m);
	while ((r = ipc_frame_take(&in, &m, &why)) == 1) {
		size_t pos = 0, took = before - in.len;
		const char *name, *value;

		while (ipc_next(&m, &pos, &name, &value))
			FUZZ_CHECK(name[0] != '\0' && value != NULL);
		/* the frame taken is exactly what encoding gives back */
		buf_reset(&again);
		ipc_frame_encode(&m, &again);
		FUZZ_CHECK(again.len == took &&
		    memcmp(again.data, data + off, took) == 0);
		off += took;
		before = in.len;
		ipc_msg_reset(&m);
	}
	if (r < 0)
		FUZZ_CHECK(why.len > 0);
	ipc_msg_free(&m);
	buf_free(&in);
	buf_free(&why);
	buf_free(&again);
	return 0;
}
