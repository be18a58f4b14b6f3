/*
 * sign_client - the DKIM signer protocol's client side: request frame,
 * reply checks, and a blocking call (see sign_client.h; the protocol is
 * documented in signer/signer.c).
 */
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "mail/ipc.h"
#include "mail/sign_client.h"
#include "mail/spool.h"

/* sign_client_hex - 32 bytes as 64 lowercase hex digits */
static void
sign_client_hex(const unsigned char *p, char out[65])
{
	static const char hex[] = "0123456789abcdef";

	for (int i = 0; i < 32; i++) {
		out[2 * i] = hex[p[i] >> 4];
		out[2 * i + 1] = hex[p[i] & 15];
	}
	out[64] = '\0';
}

/* sign_client_request - the request frame body */
void
sign_client_request(struct ipc_msg *m, const char *domain, const char *header,
    size_t len, const unsigned char bh[32])
{
	char hex[65];

	sign_client_hex(bh, hex);
	ipc_put_str(m, IPC_REQUEST, "sign");
	ipc_put_str(m, IPC_DOMAIN, domain);
	ipc_put_mem(m, IPC_HEADER, header, len);
	ipc_put_str(m, IPC_BODY_HASH, hex);
}

/* sign_client_fields_ok - only DKIM-Signature fields? What goes above a
 * header must not end it or smuggle other fields in, whatever the
 * signer says. */
bool
sign_client_fields_ok(const char *sig)
{
	const char *p = sig;

	if (strncasecmp(p, "DKIM-Signature:", 15) != 0)
		return false;
	while (*p != '\0') {
		const char *eol = strstr(p, "\r\n");

		if (eol == NULL || eol == p)
			return false;
		if (p != sig && *p != ' ' && *p != '\t' &&
		    strncasecmp(p, "DKIM-Signature:", 15) != 0)
			return false;
		for (const char *c = p; c < eol; c++)
			if ((*c < ' ' || *c > '~') && *c != '\t')
				return false;
		p = eol + 2;
	}
	return true;
}

/* sign_client_reply - what a reply frame says */
int
sign_client_reply(const struct ipc_msg *m, const char **sig_r, struct buf *why)
{
	static const char *const allowed[] = {
	    IPC_STATUS, IPC_SIGNATURE, IPC_REASON, NULL};
	struct buf err = BUF_INIT;
	const char *st = ipc_get_str(m, IPC_STATUS);
	const char *sig = ipc_get_str(m, IPC_SIGNATURE);
	const char *reason = ipc_get_str(m, IPC_REASON);
	int r = -1;

	*sig_r = NULL;
	if (ipc_expect_only(m, allowed, &err) < 0 || st == NULL) {
		buf_printf(why, "%s%smalformed reply from the signer",
		    buf_cstr(&err), err.len > 0 ? ": " : "");
	} else if (strcmp(st, "ok") == 0 && sig != NULL &&
	           sign_client_fields_ok(sig)) {
		*sig_r = sig;
		r = 1;
	} else if (strcmp(st, "none") == 0) {
		r = 0;
	} else if (strcmp(st, "ok") == 0) {
		buf_puts(why, "the signer's signature is missing or malformed");
	} else {
		buf_printf(why, "the signer says %.40s", st);
		if (reason != NULL)
			buf_printf(why, ": %.300s", reason);
	}
	buf_free(&err);
	return r;
}

/* sign_client_call - a blocking request to the signer */
int
sign_client_call(const char *spool, const char *domain, const char *header,
    size_t len, const unsigned char bh[32], int timeout_ms, struct buf *sig,
    struct buf *why)
{
	struct buf path = BUF_INIT, err = BUF_INIT;
	struct ipc_msg req, reply;
	const char *fields;
	int r;

	spool_socket_path(&path, spool, "signer");
	ipc_msg_init(&req);
	ipc_msg_init(&reply);
	sign_client_request(&req, domain, header, len, bh);
	if (ipc_call(buf_cstr(&path), &req, &reply, timeout_ms, &err) < 0) {
		buf_printf(why, "signer: %s", buf_cstr(&err));
		r = -1;
	} else if ((r = sign_client_reply(&reply, &fields, why)) == 1) {
		buf_puts(sig, fields);
	}
	ipc_msg_free(&req);
	ipc_msg_free(&reply);
	buf_free(&path);
	buf_free(&err);
	return r;
}
