/*
 * smtpd_sign - DKIM signatures for the mail herald's users send.
 *
 * A message is signable when its session may relay: a local user
 * (sendmail), a logged-in user, or a client in mynetworks. Mail from
 * anybody else (the internet on port 25) is never signed. While a
 * signable message is written to its queue file, the header block (our
 * Received: included, the Message-ID: and Date: we add included) is kept
 * here, at most SMTPD_SIGN_HEADER_MAX bytes, and the body goes through
 * dkim_hasher as it arrives, so the body is neither held nor sent.
 *
 * A signable message whose header is longer than that, has more than
 * DKIM_FIELDS_MAX fields, or holds a NUL (which IPC cannot carry), is
 * refused with 552 5.6.0 whatever its From: says, since the From: may
 * lie past what was kept. At the end, when the first From: address is
 * in a hosted domain, the signer (signer/signer.c; the protocol is
 * documented there) gets one frame on <spool>/private/signer: domain,
 * header block, body hash. Its
 * answer comes back through the event loop within signer_timeout:
 * "ok" with the DKIM-Signature fields, which smtpd_data_signed puts above
 * the header in the queue file before the commit (the request and the
 * checks on the reply are lib/mail/sign_client.c's, which qmgr's
 * notifications use too; the exchange is lib/mail/ipc_async.c's);
 * "none" when the domain has no key, and the message is committed unsigned; anything else, and a
 * signer that cannot be reached or does not answer in time, is 451 4.3.0
 * and nothing is queued: mail of a domain with a key never leaves
 * unsigned. The session reads no input meanwhile.
 */
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/log.h"
#include "mail/dkim.h"
#include "mail/ipc.h"
#include "mail/ipc_async.h"
#include "mail/mime.h"
#include "mail/params.h"
#include "mail/sign_client.h"
#include "mail/spool.h"
#include "smtpd.h"

/* smtpd_sign_begin - a message's content starts */
void
smtpd_sign_begin(struct smtpd_session *s)
{
	struct smtpd_sign *g = &s->tx.sign;

	smtpd_sign_abort(s);
	g->on = smtpd_session_may_relay(s);
}

/* smtpd_sign_feed - bytes of content in queue-file order: the header
 * block until CR LF CR LF, the body after it */
void
smtpd_sign_feed(struct smtpd_session *s, const char *p, size_t n)
{
	static const char eoh[] = "\r\n\r\n";
	struct smtpd_sign *g = &s->tx.sign;
	size_t i = 0, take;

	if (!g->on)
		return;
	for (; i < n && !g->body; i++) {
		if (p[i] == eoh[g->eoh])
			g->eoh++;
		else
			g->eoh = p[i] == '\r' ? 1 : 0;
		if (p[i] == '\0')
			g->nul = true;
		if (g->eoh == 4)
			g->body = true;
	}
	/* p[0..i) is header, up to and with the empty line */
	take = i;
	if (g->header.len + take > SMTPD_SIGN_HEADER_MAX) {
		g->too_long = true;
		take = SMTPD_SIGN_HEADER_MAX - g->header.len;
	}
	buf_append(&g->header, p, take);
	if (i == n)
		return;
	if (!g->hashing && !g->broken) {
		if (dkim_hasher_init(&g->hasher) < 0)
			g->broken = true;
		else
			g->hashing = true;
	}
	if (g->hashing)
		dkim_hasher_update(&g->hasher, p + i, n - i);
}

/* smtpd_sign_abort - forget the signing of the current message */
void
smtpd_sign_abort(struct smtpd_session *s)
{
	struct smtpd_sign *g = &s->tx.sign;
	unsigned char bh[32];

	ipc_async_cancel(&g->call);
	if (g->hashing)
		(void)dkim_hasher_final(&g->hasher, bh);
	buf_free(&g->header);
	g->on = g->body = g->too_long = g->nul = false;
	g->hashing = g->broken = false;
	g->eoh = 0;
}

/* smtpd_sign_done - the call ended: hand what the signer said to the
 * session */
static void
smtpd_sign_done(void *ctx, int r, const struct ipc_msg *m, const char *text)
{
	struct smtpd_session *s = ctx;
	struct buf why = BUF_INIT;
	const char *sig = NULL;

	s->tx.sign.call = NULL;
	if (r == 1)
		r = sign_client_reply(m, &sig, &why);
	else
		buf_puts(&why, text);
	smtpd_data_signed(s, r, r == 1 ? sig : r == 0 ? "" : buf_cstr(&why));
	buf_free(&why);
}

/* smtpd_sign_from_domain - the first From: address's domain */
bool
smtpd_sign_from_domain(const char *header, size_t len, struct buf *out)
{
	const char *p = header, *end = header + len;
	struct mime_addr *list = NULL, *a;
	bool found = false;

	buf_reset(out);
	while (p < end) {
		const char *line = p, *v, *f;

		/* one field: this line and the ones that start with WSP */
		for (;;) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));

			p = nl == NULL ? end : nl + 1;
			if (p >= end || (*p != ' ' && *p != '\t'))
				break;
		}
		if (p - line < 5 || strncasecmp(line, "From", 4) != 0)
			continue;
		for (v = line + 4; v < p && (*v == ' ' || *v == '\t'); v++)
			;
		if (v == p || *v != ':')
			continue;
		list = mime_addr_parse(v + 1, (size_t)(p - v - 1));
		for (a = list; a != NULL && !found; a = a->next)
			if (a->host != NULL && *a->host != '\0') {
				for (f = a->host; *f; f++)
					buf_putc(out, (char)(*f >= 'A' &&
					    *f <= 'Z' ? *f - 'A' + 'a' : *f));
				found = true;
			}
		mime_addr_free(&list);
		break;
	}
	return found;
}

/* smtpd_sign_fields - header fields in header[0..len): lines that do
 * not start with WSP (the empty line at the end counts once) */
static size_t
smtpd_sign_fields(const char *header, size_t len)
{
	const char *p = header, *end = header + len, *nl;
	size_t n = 0;

	while (p < end) {
		if (*p != ' ' && *p != '\t')
			n++;
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			break;
		p = nl + 1;
	}
	return n > 0 ? n - 1 : 0;
}

/* smtpd_sign_domain_ok - a plain DNS name (what the signer takes) */
static bool
smtpd_sign_domain_ok(const char *d, size_t n)
{
	if (n == 0 || n > 253 || d[0] == '.' || d[0] == '-')
		return false;
	return strspn(d, "abcdefghijklmnopqrstuvwxyz0123456789-.") == n &&
	    strstr(d, "..") == NULL;
}

/* smtpd_sign_end - the content is complete: ask the signer? */
int
smtpd_sign_end(struct smtpd_session *s, struct buf *reply)
{
	struct smtpd_sign *g = &s->tx.sign;
	struct buf dom = BUF_INIT, why = BUF_INIT, path = BUF_INIT;
	struct ipc_msg m;
	unsigned char bh[32];
	int hosted, rc = 0;

	if (!g->on)
		goto out;
	/* a From: past what is kept could be ours: never guess unsigned */
	if (g->too_long || g->nul ||
	    smtpd_sign_fields(g->header.data, g->header.len) >
	    DKIM_FIELDS_MAX) {
		buf_printf(reply, "552 5.6.0 Message header too long or with "
		    "NUL bytes: it cannot be signed (at most %d bytes, %d "
		    "fields)", SMTPD_SIGN_HEADER_MAX, DKIM_FIELDS_MAX);
		rc = -1;
		goto out;
	}
	if (!smtpd_sign_from_domain(g->header.data, g->header.len, &dom) ||
	    !smtpd_sign_domain_ok(dom.data, dom.len))
		goto out;
	if ((hosted = smtpd_check_hosted(buf_cstr(&dom), &why)) == 0)
		goto out;
	rc = -1;
	if (hosted < 0) {
		msg_warn("%s: DKIM: is %s hosted? %s", s->tx.qid,
		    buf_cstr(&dom), buf_cstr(&why));
		buf_puts(reply, "451 4.3.0 Error: temporary lookup failure");
		goto out;
	}
	/* a message without a body hashes the empty body */
	if (!g->hashing && !g->broken) {
		if (dkim_hasher_init(&g->hasher) < 0)
			g->broken = true;
		else
			g->hashing = true;
	}
	if (g->hashing) {
		g->hashing = false;
		if (dkim_hasher_final(&g->hasher, bh) < 0)
			g->broken = true;
	}
	if (g->broken) {
		msg_warn("%s: DKIM: body hash failed", s->tx.qid);
		buf_puts(reply, "451 4.3.0 Error: cannot sign the message");
		goto out;
	}
	spool_socket_path(&path, var_spool_directory, "signer");
	ipc_msg_init(&m);
	sign_client_request(&m, buf_cstr(&dom), g->header.data,
	    g->header.len, bh);
	g->call = ipc_async_start(s->base.pool->loop, buf_cstr(&path), &m,
	    (int)var_signer_timeout * 1000, "the signer", smtpd_sign_done, s,
	    &why);
	ipc_msg_free(&m);
	if (g->call == NULL) {
		msg_warn("%s: DKIM: signer: %s", s->tx.qid, buf_cstr(&why));
		buf_puts(reply, "451 4.3.0 Error: the DKIM signer is not "
		    "available");
		goto out;
	}
	rc = 1;
out:
	buf_free(&dom);
	buf_free(&why);
	buf_free(&path);
	return rc;
}
