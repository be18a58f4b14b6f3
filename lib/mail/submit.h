/*
 * submit - local submission: the UNIX socket <run_directory>/submit where
 * sendmail hands mail to smtpd (master opens it, mode 0666, for every
 * local user; smtpd learns the sender's uid from the kernel), and the
 * client side of that conversation.
 *
 * The client speaks plain ESMTP (EHLO, MAIL, RCPT, DATA) with a deadline
 * on every reply, so smtpd checks and queues local mail exactly as it
 * does mail from the network, with the same durability rule: success
 * means the message is on disk.
 */
#ifndef MAIL_SUBMIT_H
#define MAIL_SUBMIT_H

#include <stddef.h>

struct buf;

/* a message to submit */
struct submit_msg {
	const char *sender;		/* internal form, "" for <> */
	const char *const *rcpts;	/* internal form */
	size_t nrcpt;
	const char *data;	/* the message, CRLF line ends, unstuffed */
	size_t len;
	const char *helo;	/* our name in EHLO */
};

enum submit_result {
	SUBMIT_OK,		/* queued */
	SUBMIT_NOT_RUNNING,	/* nobody listens: herald is not running */
	SUBMIT_TEMPFAIL,	/* 4xx, or the connection broke */
	SUBMIT_REJECTED,	/* 5xx for the sender or the message */
	SUBMIT_RCPT_REJECTED,	/* 5xx for a recipient (why names it) */
	SUBMIT_PROTOCOL,	/* an answer we did not expect */
};

/* submit_socket_path - <run_directory>/submit */
void submit_socket_path(struct buf *out);
/* submit_send - submit m over the socket at path; why gets the server's
 * reply (or the local error) when it is not SUBMIT_OK */
enum submit_result submit_send(const char *path, const struct submit_msg *m,
    int timeout_ms, struct buf *why);

#endif
