/*
 * signer_req_fuzz - the DKIM signer's request decoder
 * (signer/signer_req.c) on what smtpd, or anything that reaches the
 * socket, sends: a frame body parsed by ipc_parse, then checked by
 * signer_req_parse.
 *
 * Checked: a request taken has the attributes it claims, within their
 * bounds (a plain lowercase domain that is safe as a path, a header of
 * 1..SIGNER_HEADER_MAX bytes, the hash decoded from exactly 64 hex
 * digits), and a refused one says why.
 */
#include <string.h>

#include "base/buf.h"
#include "mail/ipc.h"
#include "signer.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf why = BUF_INIT;
	struct signer_req r;
	struct ipc_msg m;

	ipc_msg_init(&m);
	if (ipc_parse(&m, (const char *)data, size, &why) < 0)
		goto out;
	if (signer_req_parse(&m, &r, &why) < 0) {
		FUZZ_CHECK(why.len > 0);
		goto out;
	}
	FUZZ_CHECK(signer_domain_ok(r.domain));
	FUZZ_CHECK(strstr(r.domain, "..") == NULL &&
	    strchr(r.domain, '/') == NULL && r.domain[0] != '.');
	FUZZ_CHECK(r.header_len > 0 && r.header_len <= SIGNER_HEADER_MAX &&
	    strlen(r.header) == r.header_len);
	FUZZ_CHECK(strcmp(ipc_get_str(&m, IPC_REQUEST), "sign") == 0);
	FUZZ_CHECK(strlen(ipc_get_str(&m, IPC_BODY_HASH)) == 64);
out:
	ipc_msg_free(&m);
	buf_free(&why);
	return 0;
}
