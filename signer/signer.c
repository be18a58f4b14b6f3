/*
 * signer - the herald DKIM signer
 *
 * SYNOPSIS
 *	signer [-c config] [-f] [-v]		(started by master)
 *
 * DESCRIPTION
 *	signer makes the DKIM signatures (RFC 6376, RFC 8463) of the mail
 *	that herald's users send. smtpd, which faces the internet, never
 *	holds a private key: for a message from a hosted domain that came
 *	by authenticated submission, sendmail or mynetworks, it hashes the
 *	body as it arrives and, before the message is committed, asks the
 *	signer for the DKIM-Signature fields of the header block and body
 *	hash; it puts them above the header in the queue file, so local
 *	and remote recipients get the same signed message.
 *
 *	A domain signs with the selector named in
 *	<dkim_directory>/DOMAIN/current, with each of its keys
 *	(SEL.ed25519.key and SEL.rsa.key, published as SEL-ed25519 and
 *	SEL-rsa): one DKIM-Signature per key, relaxed/relaxed, the
 *	recommended header fields of RFC 6376 5.4.1. A domain without that
 *	file has no key and its mail goes unsigned. Keys are read at the
 *	first message of a domain and kept; "heraldctl dkim rotate"
 *	replaces "current", which the next request notices, and a reload
 *	replaces the signer processes and so reads every key again.
 *
 *	master runs signer_processes of them (SERVICE_SINGLE: one request
 *	at a time, straight-line code; signing takes well under a
 *	millisecond for Ed25519 and about one for RSA-2048).
 *
 * PROTOCOL
 *	smtpd, and qmgr for its delivery status notifications, connect to
 *	<spool>/private/signer (mode 0600, herald_user) and send one frame
 *	(lib/mail/ipc.h; the client side is lib/mail/sign_client.c):
 *	  {request=sign, domain=DOMAIN, header=FIELDS, body_hash=HEX}
 *	DOMAIN is the From: domain in lower case, FIELDS the header block
 *	as queued (CRLF lines, at most 256 KB), HEX the 64 hex digits of
 *	the SHA-256 of the relaxed body (dkim_hasher). The signer answers
 *	one frame and closes:
 *	  {status=ok, signature=FIELDS}	the DKIM-Signature fields, CRLF
 *	  {status=none}			the domain has no key
 *	  {status=fail, reason=TEXT}	a key could not be used, or the
 *					request was malformed
 *	The request must arrive within signer_timeout. A malformed request
 *	(bad frame, unknown or repeated attribute, bad domain, oversized
 *	header, bad hash) is logged and answered with status=fail; the
 *	process goes on with the next connection. smtpd answers its client
 *	451 4.3.0 for anything but ok and none, and when the signer cannot
 *	be reached or does not answer within signer_timeout: mail of a
 *	domain with a key is never queued unsigned. qmgr asks for
 *	myhostname, then its parent domain, and queues the notification
 *	unsigned (logged) on anything but ok and none.
 *
 * LOGGING
 *	domain example.org: signing with selector herald202612
 *	malformed request dropped: missing or bad domain
 *	domain example.org: cannot sign: .../s1.rsa.key: Permission denied
 *
 * SECURITY
 *	The signer runs as dkim_user and joins dkim_group, the only group
 *	that can read the private keys (mode 0640, root:dkim_group, made by
 *	heraldctl dkim). It reads nothing else: no spool, no directory, no
 *	message bodies (only their hash crosses the socket). Its socket is
 *	reachable by herald_user only. Every request value is checked and
 *	bounded before use; the domain becomes a path only after it was
 *	found to be a plain DNS name. The process cannot be dumped or
 *	traced by other processes of its user.
 *
 * SETTINGS (herald.conf)
 *	dkim_user, dkim_group, dkim_directory, signer_processes,
 *	signer_timeout, spool_directory.
 */
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/str.h"
#include "mail/ipc.h"
#include "mail/params.h"
#include "mail/service.h"
#include "signer.h"

/* signer_init - after the drop: keys stay in this process */
static void
signer_init(struct service *svc)
{
	(void)svc;
	if (prctl(PR_SET_DUMPABLE, 0) < 0)
		msg_fatal("prctl(PR_SET_DUMPABLE): %m");
}

/* signer_answer - the reply to one received request */
static void
signer_answer(const struct ipc_msg *req, struct ipc_msg *reply)
{
	struct signer_req r;
	struct buf why = BUF_INIT, sig = BUF_INIT, text = BUF_INIT;
	int found;

	if (signer_req_parse(req, &r, &why) < 0) {
		msg_warn("malformed request dropped: %s", buf_cstr(&why));
		ipc_put_str(reply, IPC_STATUS, "fail");
		buf_puts(&text, "malformed request: ");
		str_printable(&text, why.data, why.len, 200);
		ipc_put_str(reply, IPC_REASON, buf_cstr(&text));
		goto out;
	}
	found = signer_keys_sign(&r, time(NULL), &sig, &why);
	if (found > 0) {
		ipc_put_str(reply, IPC_STATUS, "ok");
		ipc_put_str(reply, IPC_SIGNATURE, buf_cstr(&sig));
	} else if (found == 0) {
		ipc_put_str(reply, IPC_STATUS, "none");
	} else {
		msg_warn("domain %s: cannot sign: %s", r.domain,
		    buf_cstr(&why));
		ipc_put_str(reply, IPC_STATUS, "fail");
		str_printable(&text, why.data, why.len, 200);
		ipc_put_str(reply, IPC_REASON, buf_cstr(&text));
	}
out:
	buf_free(&why);
	buf_free(&sig);
	buf_free(&text);
}

/* signer_serve - one connection: one request, one answer */
static void
signer_serve(struct service *svc, int fd, const struct service_listener *l)
{
	struct ipc_msg req, reply;
	struct buf why = BUF_INIT, text = BUF_INIT;
	int timeout = (int)(var_signer_timeout * 1000), r;

	(void)svc;
	ipc_msg_init(&req);
	ipc_msg_init(&reply);
	r = ipc_recv(fd, &req, NULL, timeout, &why);
	if (r == 0)
		goto out;
	if (r < 0) {
		/* an unreadable frame still gets its answer, if the peer
		 * is there to read it */
		msg_warn("%s: malformed request dropped: %s", l->name,
		    buf_cstr(&why));
		ipc_put_str(&reply, IPC_STATUS, "fail");
		buf_puts(&text, "malformed request: ");
		str_printable(&text, why.data, why.len, 200);
		ipc_put_str(&reply, IPC_REASON, buf_cstr(&text));
	} else
		signer_answer(&req, &reply);
	buf_reset(&why);
	if (ipc_send(fd, &reply, -1, timeout, &why) < 0)
		msg_warn("%s: reply not sent: %s", l->name, buf_cstr(&why));
out:
	ipc_msg_free(&req);
	ipc_msg_free(&reply);
	buf_free(&why);
	buf_free(&text);
}

int
main(int argc, char **argv)
{
	return service_main(argc, argv, &(const struct service_def){
		.name = "signer",
		.model = SERVICE_SINGLE,	/* one request at a time */
		.user = &var_dkim_user,
		.group = &var_dkim_group,
		.init = signer_init,
		.serve = signer_serve,
	});
}
