/*
 * qmgr - the herald queue manager
 *
 * SYNOPSIS
 *	qmgr [-c config] [-f] [-v]		(started by master)
 *
 * DESCRIPTION
 *	qmgr moves every message in the queue (DESIGN.md §4) to a final
 *	state: delivered, bounced to its sender with a delivery status
 *	notification, or deleted by the operator. The operator may also
 *	put a message on hold (hold/, which qmgr leaves alone) and release
 *	it (qmgr_hold.c). One qmgr process runs per instance; it is an
 *	event-model service.
 *
 *	Messages enter through incoming/: smtpd links a complete, synced
 *	file there and sends a trigger; qmgr renames it to active/ and
 *	schedules it. Scans find what triggers missed: at start everything
 *	left in active/ by a crash, then incoming/, then the due files of
 *	deferred/<h>/; afterwards every queue_scan_interval seconds incoming/
 *	and the due deferred files again, plus a wakeup when the earliest
 *	retry comes due. At most 20,000 messages are held in memory; the
 *	rest waits in the folders for a later scan. Dot-files in incoming/
 *	older than a day are removed; names that are not queue ids are
 *	left alone.
 *
 *	Routing: a recipient in a domain the directory hosts goes to the
 *	local delivery agent; any other goes to the remote transport, which
 *	this release does not have: such recipients are deferred ("remote
 *	delivery is not available") until the queue lifetime ends.
 *
 *	Delivery: qmgr keeps up to local_processes connections to
 *	<spool>/private/local and sends one request per connection at a
 *	time, with the queue file attached read-only. Each recipient comes
 *	back delivered, deferred or bounced. When every recipient of a
 *	message is final the file is removed ("QID: removed"); otherwise
 *	the final statuses are written in place and synced, and the file
 *	moves to deferred/<h>/ with its mtime set to the next retry time.
 *
 *	Retries back off Postfix style: the delay is the message's age,
 *	clamped to [minimal_backoff_time, maximal_backoff_time]. When the
 *	agent itself failed (crashed, timed out, protocol error) the retry
 *	comes within seconds, since master restarts agents at once. A
 *	message older than maximal_queue_lifetime has its remaining
 *	recipients bounced (4.4.7 "message expired").
 *
 *	Forwarding: when local says a recipient's alias also has targets
 *	in other domains (forward=1), qmgr writes one new queue file for
 *	them once the recipient is final, with the sender rewritten by SRS
 *	(srs_domain, srs_secret_file; never the null sender or a hosted
 *	domain), before any status of the original is written
 *	(qmgr_forward.c). A notification to one of our SRS addresses goes
 *	to the address it stands for.
 *
 *	Bounces: the sender of a message with bounced recipients gets one
 *	RFC 3464 notification per attempt (a new queue file with the null
 *	sender), unless the message has the null sender itself or is a
 *	notification, or the recipient's DSN NOTIFY excludes FAILURE. The
 *	notification is synced and linked before any B status is written.
 *	Nothing of this waits on the event loop: the DKIM signer is asked
 *	for a notification's signature through the loop (qmgr_bounce.c),
 *	and a forward copy is written on one of QMGR_JOB_THREADS job
 *	threads; the message stays open, unfinished, until they are in
 *	the queue, while other mail is dispatched.
 *	A file that cannot be parsed is moved to corrupt/ for a human.
 *
 * PROTOCOLS
 *	"qmgr" listener (<spool>/private/qmgr): see qmgr_ctl.c (trigger,
 *	delete, hold, release, flush). qmgr -> local: see qmgr_deliver.c.
 *
 * SECURITY
 *	qmgr runs as herald_user (dropped by the service skeleton when
 *	started as root), in the directory group, with the whole spool and
 *	read access to the directory and the SRS secret. It trusts queue
 *	files only after qfile_read() validated them, and replies from
 *	agents only after a strict check against the request. It never
 *	reads a message body except to quote headers in a bounce and to
 *	copy it whole for forwarding. Agents get the queue file
 *	read-only and never see the spool folders.
 *
 * LOGGING
 *	QID: to=<a@b>, relay=local, delay=0.05, dsn=2.0.0, status=sent (...)
 *	QID: to=<a@b>, relay=none, delay=1.2, dsn=4.3.5, status=deferred (..)
 *	QID: to=<a@b>, relay=local, delay=0.1, dsn=5.1.1, status=bounced (..)
 *	QID: sender non-delivery notification: NEWQID
 *	QID: removed
 *	QID: corrupt queue file moved to corrupt/: REASON
 *
 * SETTINGS (herald.conf)
 *	spool_directory, data_directory, myhostname, herald_user,
 *	directory_group, queue_scan_interval, minimal_backoff_time,
 *	maximal_backoff_time, maximal_queue_lifetime, local_processes,
 *	delivery_timeout, stop_timeout, srs_domain, srs_secret_file,
 *	recipient_delimiter, alias_depth_limit, alias_expansion_limit.
 */
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/evloop.h"
#include "base/log.h"
#include "mail/dir.h"
#include "mail/job.h"
#include "mail/params.h"
#include "mail/service.h"
#include "qmgr.h"

/* qmgr_init - state, directory, the first scan, the scan timer */
static void
qmgr_init(struct service *svc)
{
	struct buf why = BUF_INIT;

	qmgr_state_init(&qmgr, svc, service_loop(svc), var_spool_directory);
	/* forward copies are written off the loop (qmgr_forward.c) */
	qmgr.jobs = job_pool_new(qmgr.loop, QMGR_JOB_THREADS, "qmgr job");
	if (!service_has_listener(svc, "qmgr"))
		msg_warn("no \"qmgr\" listener: working from scans only");
	/* routing needs the directory; without it, recipients wait */
	if (dir_open(var_data_directory, DIR_READ, &qmgr.dir, &why) < 0) {
		msg_warn("directory: %s (will retry)", buf_cstr(&why));
		qmgr.dir = NULL;
	}
	buf_free(&why);
	qmgr_scan_all(&qmgr, time(NULL));
	qmgr_scan_start(&qmgr);
	msg_info("started: %zu message(s) taken from the queue",
	    qmgr.nactive);
}

/* qmgr_accept - a connection on the "qmgr" listener */
static void
qmgr_accept(struct service *svc, int fd, const struct service_listener *l)
{
	qmgr_ctl_accept(&qmgr, fd);
}

/* qmgr_stop - graceful stop: finish requests in flight, start nothing */
static void
qmgr_stop(struct service *svc)
{
	qmgr.stopping = true;
	evloop_cancel_timer(qmgr.loop, &qmgr.pump_timer);
	evloop_cancel_timer(qmgr.loop, &qmgr.scan_timer);
	evloop_cancel_timer(qmgr.loop, &qmgr.due_timer);
	qmgr_ctl_stop(&qmgr);
	qmgr_deliver_stop(&qmgr);
}

int
main(int argc, char **argv)
{
	return service_main(argc, argv, &(const struct service_def){
		.name = "qmgr",
		.model = SERVICE_EVENT,	/* one process, many sessions */
		.user = &var_herald_user,
		.reads_directory = true,
		.init = qmgr_init,
		.accept = qmgr_accept,
		.stop = qmgr_stop,
	});
}
