/*
 * peertab_test - the shared client table: counts summed over regions,
 * entries freed and reused, a full region, a dead worker's region cleared
 * (in another process, killed, as master sees it), and tables that are
 * refused when mapped.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/test.h"
#include "mail/peertab.h"

/* make - a table, or fail the case */
static int
make(unsigned slots, unsigned per_slot)
{
	struct buf why = BUF_INIT;
	int fd = -1;

	if (peertab_create(slots, per_slot, &fd, &why) < 0)
		fprintf(stderr, "  create: %s\n", buf_cstr(&why));
	buf_free(&why);
	return fd;
}

/* map - a mapping of fd, or NULL */
static struct peertab *
map(int fd)
{
	struct buf why = BUF_INIT;
	struct peertab *t = NULL;

	if (peertab_map(fd, &t, &why) < 0)
		fprintf(stderr, "  map: %s\n", buf_cstr(&why));
	buf_free(&why);
	return t;
}

static void
test_two_regions(void)
{
	int fd = make(2, 4);
	struct peertab *w0, *w1;	/* two workers' mappings */
	int e[4];

	T_ASSERT(fd >= 0);
	w0 = map(fd);
	w1 = map(fd);
	T_ASSERT(w0 != NULL && w1 != NULL);
	T_EQ_INT(peertab_slots(w0), 2);
	T_EQ_INT(peertab_per_slot(w0), 4);
	T_EQ_INT(peertab_count(w0, "192.0.2.1"), 0);
	e[0] = peertab_add(w0, 0, "192.0.2.1");
	e[1] = peertab_add(w0, 0, "192.0.2.2");
	e[2] = peertab_add(w1, 1, "192.0.2.1");
	T_ASSERT(e[0] >= 0 && e[1] >= 0 && e[2] >= 0);
	/* either worker sees both regions */
	T_EQ_INT(peertab_count(w0, "192.0.2.1"), 2);
	T_EQ_INT(peertab_count(w1, "192.0.2.1"), 2);
	T_EQ_INT(peertab_count(w1, "192.0.2.2"), 1);
	T_EQ_INT(peertab_count(w1, "192.0.2.22"), 0);
	T_EQ_INT(peertab_count(w1, "uid:0"), 0);
	/* a freed entry is taken again first */
	peertab_del(w0, 0, e[0]);
	T_EQ_INT(peertab_count(w1, "192.0.2.1"), 1);
	T_EQ_INT(peertab_add(w0, 0, "uid:1000"), e[0]);
	T_EQ_INT(peertab_count(w1, "uid:1000"), 1);
	/* a full region says so; the others are not affected */
	T_ASSERT(peertab_add(w0, 0, "192.0.2.3") >= 0);
	T_ASSERT(peertab_add(w0, 0, "192.0.2.3") >= 0);
	T_EQ_INT(peertab_add(w0, 0, "192.0.2.3"), -1);
	T_EQ_INT(peertab_count(w1, "192.0.2.3"), 2);
	T_ASSERT(peertab_add(w1, 1, "192.0.2.3") >= 0);
	T_EQ_INT(peertab_count(w0, "192.0.2.3"), 3);
	/* worker 0 died: master clears its region */
	peertab_clear(w1, 0);
	T_EQ_INT(peertab_count(w1, "192.0.2.3"), 1);
	T_EQ_INT(peertab_count(w1, "uid:1000"), 0);
	T_EQ_INT(peertab_count(w0, "192.0.2.1"), 1);
	/* and the next worker in slot 0 starts from empty */
	T_EQ_INT(peertab_add(w0, 0, "192.0.2.9"), 0);
	peertab_unmap(&w0);
	peertab_unmap(&w1);
	T_ASSERT(w0 == NULL);
	close(fd);
}

static void
test_long_keys(void)
{
	int fd = make(1, 4);
	struct peertab *t = map(fd);
	char a[100], b[100];

	T_ASSERT(t != NULL);
	if (t == NULL)
		return;
	/* keys are cut to PEERTAB_KEY_SIZE - 1: equal there, equal */
	memset(a, 'a', sizeof(a) - 1);
	a[sizeof(a) - 1] = '\0';
	memcpy(b, a, sizeof(b));
	b[80] = 'b';
	T_ASSERT(peertab_add(t, 0, a) >= 0);
	T_EQ_INT(peertab_count(t, b), 1);
	b[10] = 'b';
	T_EQ_INT(peertab_count(t, b), 0);
	peertab_unmap(&t);
	close(fd);
}

/* test_dead_process - a worker in another process holds sessions and is
 * killed; clearing its region (master's reap) frees its counts */
static void
test_dead_process(void)
{
	int fd = make(2, 8), ready[2], status;
	struct peertab *t = map(fd);
	pid_t pid;
	char c;

	T_ASSERT(t != NULL && pipe(ready) == 0);
	if (t == NULL)
		return;
	T_ASSERT(peertab_add(t, 0, "198.51.100.7") >= 0);
	if ((pid = fork()) == 0) {
		struct peertab *mine = map(fd);

		if (mine == NULL || peertab_add(mine, 1, "198.51.100.7") < 0 ||
		    peertab_add(mine, 1, "198.51.100.7") < 0)
			_exit(1);
		if (write(ready[1], "r", 1) != 1)
			_exit(1);
		for (;;)
			pause();	/* killed */
	}
	T_ASSERT(pid > 0);
	T_ASSERT(read(ready[0], &c, 1) == 1);
	T_EQ_INT(peertab_count(t, "198.51.100.7"), 3);
	T_ASSERT(kill(pid, SIGKILL) == 0);
	T_ASSERT(waitpid(pid, &status, 0) == pid);
	/* until master clears the region, the dead worker's entries stay */
	T_EQ_INT(peertab_count(t, "198.51.100.7"), 3);
	peertab_clear(t, 1);
	T_EQ_INT(peertab_count(t, "198.51.100.7"), 1);
	peertab_unmap(&t);
	close(ready[0]);
	close(ready[1]);
	close(fd);
}

/* test_churn - another process adds and removes entries as fast as it
 * can (other keys, and the counted key in pairs); the counted key's sum
 * seen here stays within what is really open at every moment */
static void
test_churn(void)
{
	int fd = make(2, 64), status;
	struct peertab *t = map(fd);
	unsigned lo = ~0U, hi = 0;
	pid_t pid, reaped = 0;

	T_ASSERT(t != NULL);
	if (t == NULL)
		return;
	for (int i = 0; i < 3; i++)
		T_ASSERT(peertab_add(t, 0, "203.0.113.5") >= 0);
	if ((pid = fork()) == 0) {
		struct peertab *mine = map(fd);
		char key[32];
		int e[40];

		if (mine == NULL)
			_exit(1);
		for (int round = 0; round < 20000; round++) {
			for (int i = 0; i < 40; i++) {
				snprintf(key, sizeof(key), "203.0.113.%d",
				    i == 7 ? 5 : 100 + (round + i) % 50);
				e[i] = peertab_add(mine, 1, key);
			}
			for (int i = 39; i >= 0; i--)
				peertab_del(mine, 1, e[i]);
		}
		_exit(0);
	}
	T_ASSERT(pid > 0);
	for (int i = 0; i < 200000 && (reaped = waitpid(pid, &status,
	    WNOHANG)) == 0; i++) {
		unsigned n = peertab_count(t, "203.0.113.5");

		lo = n < lo ? n : lo;
		hi = n > hi ? n : hi;
	}
	if (reaped == 0)
		reaped = waitpid(pid, &status, 0);
	T_ASSERT(reaped == pid && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 0);
	if (lo < 3 || hi > 4)
		fprintf(stderr, "  count went from %u to %u\n", lo, hi);
	T_ASSERT(lo >= 3 && hi <= 4);
	T_EQ_INT(peertab_count(t, "203.0.113.5"), 3);
	peertab_unmap(&t);
	close(fd);
}

static void
test_refused(void)
{
	struct buf why = BUF_INIT;
	struct peertab *t = NULL;
	int fd = -1, other;

	T_EQ_INT(peertab_create(0, 4, &fd, &why), -1);
	T_EQ_INT(peertab_create(2, 0, &fd, &why), -1);
	T_EQ_INT(peertab_create(PEERTAB_MAX_SLOTS + 1, 4, &fd, &why), -1);
	/* not a table: wrong magic, or a size that does not fit */
	other = memfd_create("not-a-table", MFD_CLOEXEC);
	T_ASSERT(other >= 0);
	T_ASSERT(ftruncate(other, 4096) == 0);
	buf_reset(&why);
	T_EQ_INT(peertab_map(other, &t, &why), -1);
	T_ASSERT(strstr(buf_cstr(&why), "not a table") != NULL);
	close(other);
	/* sealed: a worker cannot shrink it under the others */
	fd = make(1, 4);
	T_ASSERT(fd >= 0);
	T_ASSERT(ftruncate(fd, 64) < 0);
	T_ASSERT(t == NULL);
	close(fd);
	buf_free(&why);
}

static const struct test_case cases[] = {
	{"two regions, reuse, full, cleared", test_two_regions},
	{"long keys", test_long_keys},
	{"a killed worker's region", test_dead_process},
	{"counts while another process churns", test_churn},
	{"bad tables refused", test_refused},
	{0},
};

int
main(void)
{
	return test_run(cases);
}
