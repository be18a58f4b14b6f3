/*
 * qid_test - queue ids: form, validity, monotonicity, uniqueness across
 * processes, spread of the last character.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/test.h"
#include "mail/qid.h"

static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

static void
test_form(void)
{
	char id[QID_SIZE];

	memset(id, 'x', sizeof(id));
	qid_new(id);
	T_EQ_INT(strlen(id), QID_LEN);
	for (int i = 0; i < QID_LEN; i++)
		T_ASSERT(strchr(alphabet, id[i]) != NULL);
	T_ASSERT(qid_valid(id));
}

/* decode11 - the time part of an id as a number */
static unsigned long long
decode_time(const char *id)
{
	unsigned long long v = 0;

	for (int i = 0; i < 11; i++)
		v = v * 32 + (unsigned long long)(strchr(alphabet, id[i]) -
		    alphabet);
	return v;
}

static void
test_time(void)
{
	char id[QID_SIZE];
	struct timespec ts;
	unsigned long long now, t;

	clock_gettime(CLOCK_REALTIME, &ts);
	now = (unsigned long long)ts.tv_sec * 1000000 +
	    (unsigned long long)ts.tv_nsec / 1000;
	qid_new(id);
	t = decode_time(id);
	/* within a second of the clock (a few borrowed µs at most) */
	T_ASSERT(t >= now && t < now + 1000000);
}

static void
test_valid(void)
{
	static const struct {
		const char *s;
		bool ok;
	} cases[] = {
		{"0123456789ABCDEFG", true},
		{"ZZZZZZZZZZZZZZZZZ", true},
		{"00000000000000000", true},
		{"0123456789ABCDEF", false},	/* short */
		{"0123456789ABCDEFGH", false},	/* long */
		{"0123456789abcdefg", false},	/* lowercase */
		{"0123456789ABCDEFI", false},	/* I */
		{"0123456789ABCDEFL", false},	/* L */
		{"0123456789ABCDEFO", false},	/* O */
		{"0123456789ABCDEFU", false},	/* U */
		{"../../etc/passwd0", false},
		{"0123456789ABCDEF/", false},
		{"0123456789ABCDEF.", false},
		{"", false},
		{"0123456789ABCDEF\n", false},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (qid_valid(cases[i].s) != cases[i].ok)
			fprintf(stderr, "  \"%s\"\n", cases[i].s);
		T_EQ_INT(qid_valid(cases[i].s), cases[i].ok);
	}
	T_ASSERT(!qid_valid(NULL));
}

/* many ids in a tight loop: strictly increasing (many share a µs) */
static void
test_monotonic(void)
{
	char prev[QID_SIZE], id[QID_SIZE];
	unsigned counts[32] = {0};

	qid_new(prev);
	for (int i = 0; i < 200000; i++) {
		qid_new(id);
		if (strcmp(prev, id) >= 0)
			fprintf(stderr, "  %s after %s\n", id, prev);
		T_ASSERT(strcmp(prev, id) < 0);
		counts[strchr(alphabet, id[QID_LEN - 1]) - alphabet]++;
		memcpy(prev, id, sizeof(id));
	}
	/* the last character (deferred/ hash) is spread over all 32 */
	for (int i = 0; i < 32; i++)
		T_ASSERT(counts[i] > 200000 / 32 / 2);
}

static int
cmp_ids(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* forked children make ids at the same time: no two are equal */
static void
test_unique_processes(void)
{
	enum { NPROC = 8, PER = 2000 };
	char (*ids)[QID_SIZE];
	int fds[NPROC][2];
	pid_t pids[NPROC];
	size_t n = 0;

	ids = calloc(NPROC * PER, QID_SIZE);
	T_ASSERT(ids != NULL);
	for (int p = 0; p < NPROC; p++) {
		T_ASSERT(pipe(fds[p]) == 0);
		pids[p] = fork();
		T_ASSERT(pids[p] >= 0);
		if (pids[p] == 0) {
			char id[QID_SIZE];

			close(fds[p][0]);
			for (int i = 0; i < PER; i++) {
				qid_new(id);
				if (write(fds[p][1], id, QID_SIZE) != QID_SIZE)
					_exit(1);
			}
			_exit(0);
		}
		close(fds[p][1]);
	}
	for (int p = 0; p < NPROC; p++) {
		ssize_t r;
		int st;

		while (n < (size_t)NPROC * PER &&
		    (r = read(fds[p][0], ids[n], QID_SIZE)) == QID_SIZE)
			n++;
		close(fds[p][0]);
		T_ASSERT(waitpid(pids[p], &st, 0) == pids[p]);
		T_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	T_EQ_INT(n, NPROC * PER);
	qsort(ids, n, QID_SIZE, cmp_ids);
	for (size_t i = 0; i < n; i++)
		T_ASSERT(qid_valid(ids[i]));
	for (size_t i = 1; i < n; i++) {
		if (strcmp(ids[i - 1], ids[i]) == 0)
			fprintf(stderr, "  duplicate %s\n", ids[i]);
		T_ASSERT(strcmp(ids[i - 1], ids[i]) != 0);
	}
	free(ids);
}

static const struct test_case cases[] = {
	{"form", test_form},
	{"time part", test_time},
	{"valid", test_valid},
	{"monotonic", test_monotonic},
	{"unique across processes", test_unique_processes},
	{0},
};

int
main(void)
{
	return test_run(cases);
}
