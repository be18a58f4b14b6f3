/*
 * sendrate_test - per-user hourly counts: adding, the sliding window,
 * refusals, case, two handles on one file (two workers), listing, and
 * failing open when the probes are full.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/test.h"
#include "mail/sendrate.h"
#include "mail/spool.h"

static char t_dir[] = "/tmp/sendrate_test.XXXXXX";

/* t_open - a handle on the test spool's file */
static struct sendrate *
t_open(void)
{
	struct sendrate *r = NULL;
	struct buf why = BUF_INIT;

	if (sendrate_open(t_dir, true, &r, &why) < 0)
		fprintf(stderr, "  %s\n", buf_cstr(&why));
	buf_free(&why);
	return r;
}

static void
test_counts(void)
{
	struct sendrate *a = t_open(), *b = t_open();
	struct sendrate_count c;
	struct buf why = BUF_INIT;
	long long hour0 = 1700000000LL / 3600 * 3600;

	T_ASSERT(a != NULL && b != NULL);
	T_EQ_INT(sendrate_get(a, "alice@x.test", hour0, &c, &why), 0);
	T_EQ_INT(c.messages, 0);
	T_EQ_INT(sendrate_add(a, "alice@x.test", hour0 + 10, 1, 3, false,
	    &why), 0);
	/* the other handle (worker) sees it, under any case */
	T_EQ_INT(sendrate_add(b, "ALICE@x.test", hour0 + 20, 1, 2, false,
	    &why), 0);
	T_EQ_INT(sendrate_get(a, "Alice@X.test", hour0 + 30, &c, &why), 0);
	T_EQ_INT(c.messages, 2);
	T_EQ_INT(c.recipients, 5);
	T_EQ_INT(c.refused_at, 0);
	/* half an hour into the next hour: half of the hour before counts */
	T_EQ_INT(sendrate_add(a, "alice@x.test", hour0 + 3600 + 1800, 0, 0,
	    true, &why), 0);
	T_EQ_INT(sendrate_get(b, "alice@x.test", hour0 + 3600 + 1800, &c,
	    &why), 0);
	T_EQ_INT(c.messages, 1);
	T_EQ_INT(c.recipients, 2);
	T_EQ_INT(c.refused_at, hour0 + 3600 + 1800);
	/* two hours on: nothing */
	T_EQ_INT(sendrate_get(b, "alice@x.test", hour0 + 3 * 3600 + 1, &c,
	    &why), 0);
	T_EQ_INT(c.messages, 0);
	T_EQ_INT(c.recipients, 0);
	sendrate_close(&a);
	sendrate_close(&b);
	T_ASSERT(a == NULL);
	buf_free(&why);
}

static int t_seen;

static void
t_each(const char *user, const struct sendrate_count *c, void *ctx)
{
	(void)ctx;
	if (strcmp(user, "bob@x.test") == 0 && c->messages == 4)
		t_seen++;
}

static void
test_each_and_full(void)
{
	struct sendrate *r = t_open();
	struct buf why = BUF_INIT, u = BUF_INIT;
	long long now = 1800000000LL;
	int counted = 0;

	T_ASSERT(r != NULL);
	T_EQ_INT(sendrate_add(r, "bob@x.test", now, 4, 4, false, &why), 0);
	t_seen = 0;
	T_EQ_INT(sendrate_each(r, now + 5, t_each, NULL, &why), 0);
	T_EQ_INT(t_seen, 1);
	/* many users: each either counted or, with its probes full,
	 * not (fail open), never an error */
	for (int i = 0; i < 3 * SENDRATE_SLOTS / 2; i++) {
		struct sendrate_count c;

		buf_reset(&u);
		buf_printf(&u, "user%d@x.test", i);
		T_EQ_INT(sendrate_add(r, buf_cstr(&u), now, 1, 1, false, &why),
		    0);
		T_EQ_INT(sendrate_get(r, buf_cstr(&u), now, &c, &why), 0);
		counted += c.messages == 1;
	}
	T_ASSERT(counted >= SENDRATE_SLOTS * 3 / 4);
	T_ASSERT(counted <= SENDRATE_SLOTS);
	sendrate_close(&r);
	buf_free(&u);
	buf_free(&why);
}

static void
test_not_ours(void)
{
	struct sendrate *r = NULL;
	struct buf why = BUF_INIT, path = BUF_INIT;
	FILE *f;

	spool_socket_path(&path, t_dir, SENDRATE_FILE);
	T_ASSERT(unlink(buf_cstr(&path)) == 0);
	f = fopen(buf_cstr(&path), "w");
	T_ASSERT(f != NULL);
	T_ASSERT(fputs("something else entirely, and long enough to read a "
	    "header from it\n", f) >= 0);
	T_ASSERT(fclose(f) == 0);
	T_EQ_INT(sendrate_open(t_dir, true, &r, &why), -1);
	T_ASSERT(strstr(buf_cstr(&why), "not a sendrate file") != NULL);
	T_ASSERT(unlink(buf_cstr(&path)) == 0);
	buf_reset(&why);
	T_EQ_INT(sendrate_open(t_dir, false, &r, &why), -1);
	buf_free(&why);
	buf_free(&path);
}

static const struct test_case cases[] = {
	{"counts, window, two handles", test_counts},
	{"listing, and failing open when full", test_each_and_full},
	{"a foreign or missing file", test_not_ours},
	{0},
};

int
main(void)
{
	struct buf p = BUF_INIT;
	int rc;

	if (mkdtemp(t_dir) == NULL)
		return 1;
	buf_printf(&p, "%s/private", t_dir);
	if (mkdir(buf_cstr(&p), 0700) < 0)
		return 1;
	rc = test_run(cases);
	buf_reset(&p);
	buf_printf(&p, "%s/private/" SENDRATE_FILE, t_dir);
	(void)unlink(buf_cstr(&p));
	buf_reset(&p);
	buf_printf(&p, "%s/private", t_dir);
	(void)rmdir(buf_cstr(&p));
	(void)rmdir(t_dir);
	buf_free(&p);
	return rc;
}
