/*
 * smtpd_space_test - the spool reservation of open transactions and the
 * data-rate credit: what a transaction still reserves as its content is
 * written, when MAIL finds room, and how the deadline moves.
 */
#include <limits.h>

#include "base/test.h"
#include "smtpd.h"

#define MB (1024LL * 1024)

static void
test_reserve_and_write(void)
{
	struct smtpd_space sp = {0};
	struct smtpd_space_tx a = {0}, b = {0};

	smtpd_space_open(&sp, &a, 5 * MB);
	smtpd_space_open(&sp, &b, 1000);
	T_EQ_INT(sp.held, 5 * MB + 1000);
	T_EQ_INT(sp.open, 2);
	/* written bytes show in the free space: only the rest is held */
	smtpd_space_wrote(&sp, &a, 4 * MB);
	T_EQ_INT(a.held, 1 * MB);
	T_EQ_INT(sp.held, 1 * MB + 1000);
	/* more than declared: nothing held, never negative */
	smtpd_space_wrote(&sp, &b, 5000);
	T_EQ_INT(b.held, 0);
	T_EQ_INT(sp.held, 1 * MB);
	smtpd_space_close(&sp, &a);
	smtpd_space_close(&sp, &a);	/* twice is fine */
	T_EQ_INT(sp.held, 0);
	T_EQ_INT(sp.open, 1);
	smtpd_space_close(&sp, &b);
	T_EQ_INT(sp.open, 0);
	/* writes after the end change nothing */
	smtpd_space_wrote(&sp, &b, 10);
	T_EQ_INT(sp.held, 0);
}

static void
test_reopen_releases(void)
{
	struct smtpd_space sp = {0};
	struct smtpd_space_tx a = {0};

	smtpd_space_open(&sp, &a, 3 * MB);
	smtpd_space_open(&sp, &a, 1 * MB);	/* a new MAIL after an end */
	T_EQ_INT(sp.held, 1 * MB);
	T_EQ_INT(sp.open, 1);
	smtpd_space_close(&sp, &a);
	T_EQ_INT(sp.held, 0);
	T_EQ_INT(sp.open, 0);
}

/*
 * The scenario of issue 12: a 20 MB spool, 5 MB size limit, queue_minfree
 * 1 MB. Three unsized stallers get in and write 4.9 MB each; a fourth is
 * refused; a small sized message still fits, an unsized one does not.
 */
static void
test_stallers_scenario(void)
{
	struct smtpd_space sp = {0};
	struct smtpd_space_tx st[4] = {{0}};
	long long spool = 20 * MB, written = 0;
	long long limit = 5 * MB, minfree = 1 * MB, big = 49 * MB / 10;

	for (int i = 0; i < 3; i++) {
		T_ASSERT(smtpd_space_room(&sp, spool - written, limit,
		    minfree));
		smtpd_space_open(&sp, &st[i], limit);
	}
	/* 20 - 15 reserved = 5 MB < 7.5 + 1 */
	T_ASSERT(!smtpd_space_room(&sp, spool - written, limit, minfree));
	for (int i = 0; i < 3; i++) {
		smtpd_space_wrote(&sp, &st[i], big);
		written += big;
	}
	T_EQ_INT(sp.held, 3 * (limit - big));
	/* free 5.3 MB, 0.3 MB still held */
	T_ASSERT(!smtpd_space_room(&sp, spool - written, limit, minfree));
	T_ASSERT(smtpd_space_room(&sp, spool - written, 1000, minfree));
	/* one staller dropped: its file and its reservation are gone */
	smtpd_space_close(&sp, &st[0]);
	written -= big;
	T_ASSERT(smtpd_space_room(&sp, spool - written, limit, minfree));
}

static void
test_room_edges(void)
{
	struct smtpd_space sp = {0};

	T_ASSERT(smtpd_space_room(&sp, 1500, 1000, 0));
	T_ASSERT(!smtpd_space_room(&sp, 1499, 1000, 0));
	T_ASSERT(smtpd_space_room(&sp, 2500, 1000, 1000));
	T_ASSERT(!smtpd_space_room(&sp, 2499, 1000, 1000));
	T_ASSERT(smtpd_space_room(&sp, 0, 0, 0));
	T_ASSERT(!smtpd_space_room(&sp, LLONG_MAX, LLONG_MAX, 0));
	T_ASSERT(!smtpd_space_room(&sp, LLONG_MAX, LLONG_MAX / 2,
	    LLONG_MAX / 2));
	sp.held = 1000;
	T_ASSERT(!smtpd_space_room(&sp, 2499, 1000, 0));
	T_ASSERT(smtpd_space_room(&sp, 2500, 1000, 0));
	/* free below what is held: no room, no overflow */
	T_ASSERT(!smtpd_space_room(&sp, 10, 0, 0));
}

static void
test_credit(void)
{
	long long w = 2000, d;

	/* no minimum: the deadline never moves */
	T_EQ_INT(smtpd_space_credit(5000, 4000, 1000000, 0, w), 5000);
	/* 1000 bytes at 1000 B/s buy one second */
	T_EQ_INT(smtpd_space_credit(5000, 4000, 1000, 1000, 10000), 6000);
	/* never more than the window from now */
	T_EQ_INT(smtpd_space_credit(5000, 4000, 1000000, 1000, w), 6000);
	/* fast, then a stall: cut one window after the last byte */
	d = smtpd_space_credit(2000, 100, 4900000, 1000, w);
	T_EQ_INT(d, 2100);
	/* a trickle of 1 byte a second at 1000 B/s: 1 ms per second */
	d = 2000;
	for (long long t = 1000; t < d; t += 1000)
		d = smtpd_space_credit(d, t, 1, 1000, w);
	T_ASSERT(d >= 2000 && d <= 2010);
	/* huge counts do not overflow */
	T_EQ_INT(smtpd_space_credit(0, 0, LLONG_MAX, 1, w), w);
}

static const struct test_case cases[] = {
	{"reserve, write, release", test_reserve_and_write},
	{"a new MAIL replaces the reservation", test_reopen_releases},
	{"stallers on a 20 MB spool", test_stallers_scenario},
	{"room: 1.5 x want + minfree, no overflow", test_room_edges},
	{"data-rate credit", test_credit},
	{0},
};

int
main(void)
{
	return test_run(cases);
}
