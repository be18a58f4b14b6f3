/*
 * signer_req - decode and check one signing request (see signer.c for
 * the protocol). Nothing here trusts the peer: every attribute must be
 * known and given once, the domain must be a plain DNS name (it becomes
 * a path under dkim_directory), the header is bounded and the body hash
 * is exactly 64 hex digits.
 */
#include <string.h>

#include "base/buf.h"
#include "mail/ipc.h"
#include "signer.h"

/* signer_domain_ok - labels of [a-z0-9-] joined by single dots */
bool
signer_domain_ok(const char *d)
{
	size_t n = strlen(d), label = 0;

	if (n == 0 || n > SIGNER_DOMAIN_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = d[i];

		if (c == '.') {
			if (label == 0 || d[i - 1] == '-')
				return false;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    (c == '-' && label > 0)) {
			if (++label > 63)
				return false;
		} else
			return false;
	}
	return label > 0 && d[n - 1] != '-';
}

/* signer_req_hex - one hex digit's value, -1 if not one */
static int
signer_req_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* signer_req_parse - the checked request in r; -1 with why */
int
signer_req_parse(const struct ipc_msg *m, struct signer_req *r,
    struct buf *why)
{
	static const char *const allowed[] = {IPC_REQUEST, IPC_DOMAIN,
	    IPC_HEADER, IPC_BODY_HASH, NULL};
	const char *name, *value, *req, *hash;
	size_t pos = 0;
	int seen[4] = {0};

	memset(r, 0, sizeof(*r));
	if (ipc_expect_only(m, allowed, why) < 0)
		return -1;
	while (ipc_next(m, &pos, &name, &value))
		for (int i = 0; i < 4; i++)
			if (strcmp(name, allowed[i]) == 0 && seen[i]++ > 0) {
				buf_printf(why, "attribute \"%s\" repeated",
				    name);
				return -1;
			}
	req = ipc_get_str(m, IPC_REQUEST);
	if (req == NULL || strcmp(req, "sign") != 0) {
		buf_puts(why, "request is not \"sign\"");
		return -1;
	}
	r->domain = ipc_get_str(m, IPC_DOMAIN);
	if (r->domain == NULL || !signer_domain_ok(r->domain)) {
		buf_puts(why, "missing or bad domain");
		return -1;
	}
	r->header = ipc_get_str(m, IPC_HEADER);
	if (r->header == NULL || (r->header_len = strlen(r->header)) == 0 ||
	    r->header_len > SIGNER_HEADER_MAX) {
		buf_printf(why, "missing, empty or over %d bytes of header",
		    SIGNER_HEADER_MAX);
		return -1;
	}
	hash = ipc_get_str(m, IPC_BODY_HASH);
	if (hash == NULL || strlen(hash) != 64) {
		buf_puts(why, "body hash is not 64 hex digits");
		return -1;
	}
	for (int i = 0; i < 32; i++) {
		int hi = signer_req_hex(hash[2 * i]);
		int lo = signer_req_hex(hash[2 * i + 1]);

		if (hi < 0 || lo < 0) {
			buf_puts(why, "body hash is not 64 hex digits");
			return -1;
		}
		r->bh[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}
