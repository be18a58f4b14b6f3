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
 *
 * Addresses and the EHLO name go into command lines, so a CR or LF in
 * one would end the command and start another: submit_send refuses,
 * before it connects, any of them holding a byte below 0x20 or 0x7f
 * (its callers check addresses properly first; this is the last guard).
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
	SUBMIT_BAD_INPUT,	/* an address or the EHLO name holds a control
				   character: nothing was sent */
};

/* submit_socket_path - <run_directory>/submit */
void submit_socket_path(struct buf *out);
/* submit_check - 0 when every address of m and its EHLO name can go
 * into a command line (no byte below 0x20, no 0x7f, EHLO name not
 * empty); -1 with why naming the first that cannot */
int submit_check(const struct submit_msg *m, struct buf *why);
/* submit_send - submit m over the socket at path; why gets the server's
 * reply (or the local error) when it is not SUBMIT_OK. SMTPUTF8 is
 * asked for when an address is not ASCII. */
enum submit_result submit_send(const char *path, const struct submit_msg *m,
    int timeout_ms, struct buf *why);

#endif
