/*
 * test - the unit-test harness: a table of named cases, checks that print
 * both sides, one summary line. Header-only; included by *_test.c files.
 *
 *	static void test_empty(void) { T_EQ_INT(buf.len, 0); }
 *	static const struct test_case cases[] = {
 *		{"empty buffer", test_empty}, {0},
 *	};
 *	int main(void) { return test_run(cases); }
 *
 * A failed check records the failure and returns from the case. Expected
 * panics are tested with T_EXPECT_DEATH(stmt), which runs stmt in a child.
 */
#ifndef BASE_TEST_H
#define BASE_TEST_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct test_case {
	const char *name;
	void (*fn)(void);
};

static int test_failed_checks;

/* T_SLOW - how many times slower code runs in a sanitizer build (make
 * test's second pass): a test's time bound is multiplied by it, so the
 * bound stays tight where it means something, in the optimised build */
#if defined(__SANITIZE_ADDRESS__)
#define T_SLOW 10
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define T_SLOW 10
#endif
#endif
#ifndef T_SLOW
#define T_SLOW 1
#endif

/* t_cpu_ms - this thread's CPU time in ms: a time bound on it is not
 * broken by other processes on a busy machine, as wall time would be */
static inline double
t_cpu_ms(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) < 0)
		return 0;
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

#define T_FAIL_(fmt, ...)                                                     \
	do {                                                                  \
		fprintf(stderr, "  %s:%d: " fmt "\n", __FILE__, __LINE__,     \
		    __VA_ARGS__);                                             \
		test_failed_checks++;                                         \
		return;                                                       \
	} while (0)

#define T_ASSERT(cond)                                                        \
	do {                                                                  \
		if (!(cond))                                                  \
			T_FAIL_("assertion failed: %s", #cond);               \
	} while (0)

#define T_EQ_INT(got, want)                                                   \
	do {                                                                  \
		long long g_ = (long long)(got), w_ = (long long)(want);      \
		if (g_ != w_)                                                 \
			T_FAIL_("%s == %lld, want %lld", #got, g_, w_);       \
	} while (0)

#define T_EQ_STR(got, want)                                                   \
	do {                                                                  \
		const char *g_ = (got), *w_ = (want);                         \
		if (g_ == NULL || w_ == NULL ? g_ != w_ : strcmp(g_, w_) != 0) \
			T_FAIL_("%s == \"%s\", want \"%s\"", #got,            \
			    g_ ? g_ : "(null)", w_ ? w_ : "(null)");          \
	} while (0)

#define T_EQ_MEM(got, glen, want, wlen)                                       \
	do {                                                                  \
		size_t gl_ = (glen), wl_ = (wlen);                            \
		if (gl_ != wl_ || memcmp((got), (want), gl_) != 0)            \
			T_FAIL_("%s == \"%.*s\", want \"%.*s\"", #got,        \
			    (int)gl_, (const char *)(got), (int)wl_,          \
			    (const char *)(want));                            \
	} while (0)

/* T_EXPECT_DEATH - stmt must end the process abnormally (panic/abort) */
#define T_EXPECT_DEATH(stmt)                                                  \
	do {                                                                  \
		pid_t p_ = fork();                                            \
		int st_ = 0;                                                  \
		if (p_ == 0) {                                                \
			if (freopen("/dev/null", "w", stderr) == NULL)       \
				(void)0; /* then the noise shows */          \
			stmt;                                                 \
			_exit(0);                                             \
		}                                                             \
		if (p_ < 0 || waitpid(p_, &st_, 0) != p_)                     \
			T_FAIL_("%s", "fork/waitpid failed");                 \
		if (WIFEXITED(st_) && WEXITSTATUS(st_) == 0)                  \
			T_FAIL_("%s did not die", #stmt);                     \
	} while (0)

/* test_rm_entry - nftw callback of test_rm_tree */
static inline int
test_rm_entry(const char *path, const struct stat *st, int flag,
    struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(path);
}

/* test_rm_tree - remove a test's temporary folder and everything in it */
static inline void
test_rm_tree(const char *path)
{
	(void)nftw(path, test_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* test_run - run every case; prints "N passed, N failed"; exit status */
static inline int
test_run(const struct test_case *cases)
{
	int passed = 0, failed = 0;

	for (const struct test_case *c = cases; c->name != NULL; c++) {
		int before = test_failed_checks;

		c->fn();
		if (test_failed_checks != before) {
			fprintf(stderr, "FAIL %s\n", c->name);
			failed++;
		} else {
			passed++;
		}
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}

/* test_run_in - test_run with tmpdir (a mkdtemp template, "XXXXXX" at
 * the end) made first and removed with everything in it afterwards */
static inline int
test_run_in(const struct test_case *cases, char *tmpdir)
{
	int rc;

	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	rc = test_run(cases);
	test_rm_tree(tmpdir);
	return rc;
}

#endif
