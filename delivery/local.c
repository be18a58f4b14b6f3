/*
 * local - the herald local delivery agent
 *
 * SYNOPSIS
 *	local [-c config] [-f] [-v]		(started by master)
 *
 * DESCRIPTION
 *	local delivers messages into the Maildirs of the users in the
 *	directory (DESIGN.md §6, §7). It is a single-model service: master
 *	runs local_processes of them on the shared listener
 *	<spool>/private/local; each process accepts one connection from
 *	qmgr and serves it until qmgr closes it.
 *
 *	qmgr may send up to local_batch_size requests before the first
 *	reply. local takes every request that is already waiting (up to that
 *	number), writes all their copies, commits them as one maildir batch
 *	(one writeback, the file syncs, one sync per new/ folder; see
 *	maildir_batch.c), then answers each request in order. Under load the
 *	syncs of many deliveries are shared; alone, a request is a batch of
 *	one and is answered as soon as it is durable.
 *
 *	For each requested recipient local resolves the address: the user
 *	itself, the user without "+ext" (recipient_delimiter), an alias, an
 *	alias without "+ext", the catch-all "@domain". Alias targets are
 *	resolved recursively up to alias_depth_limit levels and to
 *	alias_expansion_limit distinct member addresses (a recipient over
 *	it bounces whole with 5.5.3; smtpd refuses it at RCPT already); an
 *	address met twice in one expansion is skipped, so loops end, and a
 *	mailbox that several recipients of one request reach gets one copy.
 *	qmgr puts a message's local recipients into one request (up to
 *	1000), so that is one copy per message; a request writes at most
 *	local_copy_limit copies, the mailboxes past it bounce with 5.5.3
 *	(see local_request.c). Each mailbox
 *	gets the message with "Return-Path: <sender>" and "Delivered-To:
 *	<mailbox>" prepended, staged in the request's maildir batch, which
 *	syncs each file before it is linked into new/.
 *
 *	An alias target outside the hosted domains is no mailbox here: the
 *	reply marks its recipient forward=1, and qmgr sends one copy of the
 *	message to all such targets, with the sender rewritten by SRS
 *	(qmgr/qmgr_forward.c). A recipient with only such targets is
 *	"delivered" (forwarded to other domains).
 *
 *	Refusals: unknown user or alias target 5.1.1; a mailbox
 *	name unsafe as a folder 5.1.3; disabled user 5.2.1; over quota 4.2.2,
 *	a deferral (5.2.2 with quota_exceeded_bounce = yes); hop count at or
 *	over hopcount_limit, or a Delivered-To: naming the mailbox already,
 *	5.4.6 (mail forwarding loop); Maildir write errors 4.3.0 (4.3.1 for
 *	a full disk or file system quota); directory errors 4.3.0. A
 *	recipient is deferred if any of its parts was, else bounced if any
 *	part was, else delivered.
 *
 * PROTOCOL
 *	qmgr -> local, on a persistent connection, replies in request order:
 *	  {request=deliver, queue_id=QID, rcpt_index=I, rcpt_index=J, ...}
 *	  with the queue file attached (SCM_RIGHTS, opened read-only)
 *	local -> qmgr:
 *	  {status=ok} then per requested recipient, in request order,
 *	  {rcpt_index=I, result=delivered|deferred|bounced, dsn=X.Y.Z,
 *	   reason=TEXT[, forward=1]}
 *	  forward=1 (with delivered or bounced): the recipient's alias also
 *	  has targets in other domains, for qmgr to forward to.
 *	A malformed request (unknown attributes, bad queue id, no
 *	descriptor) is logged and the connection dropped; qmgr then defers
 *	the request. Between requests local waits without a deadline, but
 *	returns when master stops it; a started request is answered within
 *	delivery_timeout or qmgr gives up on it.
 *
 * SECURITY
 *	local runs as vmail_user (the owner of the mail store) in the
 *	directory group, dropped by the service skeleton before the first
 *	accept. It has no access to the spool: it reads only the queue file
 *	qmgr hands it, through a read-only descriptor, and validates it with
 *	qfile_read(). Mailbox folder names are built from directory keys,
 *	lowercased, and refused when they could leave the mail_location
 *	template's folder.
 *
 * SETTINGS (herald.conf)
 *	mail_location, data_directory, vmail_user, directory_group,
 *	recipient_delimiter, alias_depth_limit, alias_expansion_limit,
 *	local_copy_limit, hopcount_limit, default_quota,
 *	quota_exceeded_bounce, delivery_timeout, local_batch_size.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/log.h"
#include "base/mem.h"
#include "mail/dir.h"
#include "mail/ipc.h"
#include "mail/maildir.h"
#include "mail/params.h"
#include "mail/service.h"
#include "local.h"

static struct dir *local_dir;	/* read-only, opened after the drop */

/* local_init - open the directory after the privilege drop */
static void
local_init(struct service *svc)
{
	struct buf why = BUF_INIT;

	if (dir_open(var_data_directory, DIR_READ, &local_dir, &why) < 0)
		msg_fatal("directory: %s", buf_cstr(&why));
	buf_free(&why);
}

/* local_waiting - true if more input is there now (a frame or EOF) */
static bool
local_waiting(int sock)
{
	struct pollfd pfd = {.fd = sock, .events = POLLIN};

	return poll(&pfd, 1, 0) > 0;
}

/* local_serve - serve one qmgr connection until it closes */
static void
local_serve(struct service *svc, int sock, const struct service_listener *l)
{
	struct local_req **rq = xcalloc((size_t)var_local_batch_size,
	    sizeof(*rq));
	struct ipc_msg req;
	struct buf why = BUF_INIT;
	bool more = true;

	ipc_msg_init(&req);
	while (more && service_wait_request(svc, sock)) {
		struct maildir_batch *mb = maildir_batch_new();
		size_t n = 0;

		/* every request already waiting joins the batch */
		do {
			int qfd = -1, r;

			buf_reset(&why);
			/* the frame is on its way: give it the deadline */
			r = ipc_recv(sock, &req, &qfd,
			    (int)var_delivery_timeout * 1000, &why);
			if (r <= 0) {
				if (r < 0)
					msg_warn("receive from qmgr: %s",
					    buf_cstr(&why));
				more = false;
				break;
			}
			rq[n] = local_request_start(local_dir, &req, qfd, mb);
			if (qfd >= 0 && close(qfd) < 0)
				msg_warn("close queue file: %m");
			if (rq[n] == NULL) {
				more = false;
				break;
			}
			n++;
		} while (n < (size_t)var_local_batch_size &&
		    !service_stopping(svc) && local_waiting(sock));
		if (n > 0)
			maildir_batch_commit(mb);
		for (size_t i = 0; i < n; i++)
			if (local_request_finish(rq[i], mb, sock) < 0)
				more = false;
		maildir_batch_free(&mb);
		/* stopping: the batch in hand was the last one */
		if (service_stopping(svc))
			more = false;
	}
	ipc_msg_free(&req);
	buf_free(&why);
	x_free(&rq);
}

int
main(int argc, char **argv)
{
	return service_main(argc, argv, &(const struct service_def){
		.name = "local",
		.model = SERVICE_SINGLE,	/* one connection at a time */
		.user = &var_vmail_user,
		.reads_directory = true,
		.init = local_init,
		.serve = local_serve,
	});
}
