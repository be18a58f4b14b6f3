/*
 * qid - queue ids.
 *
 * Layout (Crockford base32, most significant digit first, so that string
 * order is numeric order):
 *
 *	11 digits	microseconds since the epoch (55 bits, until ~3111)
 *	 5 digits	process id (25 bits; Linux pids stay below 2^22)
 *	 1 digit	counter within one microsecond (0..31)
 *
 * One process makes strictly increasing ids: when the clock has not moved
 * on (or went back) the counter goes up, and when the counter runs out
 * the next microsecond is taken in advance; the real clock soon catches
 * up. Two live processes have different pids, so their ids never meet.
 * The counter goes up by one with every id (mod 32), even when the clock
 * moved on, so the last character (the deferred/ hash) is spread evenly.
 */
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "mail/qid.h"

#define QID_TIME_DIGITS 11
#define QID_PID_DIGITS 5
#define QID_SEQ_DIGITS 1
#define QID_SEQ_MAX (1U << (5 * QID_SEQ_DIGITS))

static const char qid_alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

static pthread_mutex_t qid_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long long qid_last_us;	/* time part of the last id */
static unsigned qid_last_seq;		/* counter part of the last id */
static pid_t qid_last_pid;		/* process that made the last id */

/* qid_put - write value as digits base32 digits, most significant first */
static void
qid_put(char *out, unsigned long long value, int digits)
{
	for (int i = digits - 1; i >= 0; i--) {
		out[i] = qid_alphabet[value & 31];
		value >>= 5;
	}
}

/* qid_new - a fresh id, greater than every id this process made before */
void
qid_new(char out[QID_SIZE])
{
	struct timespec ts;
	unsigned long long now;
	unsigned seq;
	pid_t pid = getpid();

	if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
		msg_panic("qid_new: clock_gettime: %m");
	now = (unsigned long long)ts.tv_sec * 1000000ULL +
	    (unsigned long long)ts.tv_nsec / 1000;
	if (pthread_mutex_lock(&qid_lock) != 0)
		msg_panic("qid_new: pthread_mutex_lock failed");
	if (pid != qid_last_pid) {
		/* a fresh process (or a forked child): its own sequence */
		qid_last_pid = pid;
		qid_last_us = 0;
		qid_last_seq = (unsigned)pid % QID_SEQ_MAX;
	}
	if (now > qid_last_us) {
		/* the counter runs on (mod 32) rather than restarting at
		 * 0, so the last digit spreads deferred/ evenly */
		seq = (qid_last_seq + 1) % QID_SEQ_MAX;
	} else if (qid_last_seq + 1 < QID_SEQ_MAX) {
		now = qid_last_us;
		seq = qid_last_seq + 1;
	} else {
		now = qid_last_us + 1;
		seq = 0;
	}
	qid_last_us = now;
	qid_last_seq = seq;
	if (pthread_mutex_unlock(&qid_lock) != 0)
		msg_panic("qid_new: pthread_mutex_unlock failed");
	qid_put(out, now, QID_TIME_DIGITS);
	qid_put(out + QID_TIME_DIGITS, (unsigned long long)pid,
	    QID_PID_DIGITS);
	qid_put(out + QID_TIME_DIGITS + QID_PID_DIGITS, seq, QID_SEQ_DIGITS);
	out[QID_LEN] = '\0';
}

/* qid_valid - QID_LEN digits of the alphabet and nothing else */
bool
qid_valid(const char *s)
{
	size_t i;

	if (s == NULL)
		return false;
	for (i = 0; i < QID_LEN; i++)
		if (s[i] == '\0' || strchr(qid_alphabet, s[i]) == NULL)
			return false;
	return s[QID_LEN] == '\0';
}
