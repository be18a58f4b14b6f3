/*
 * resolve_test - address resolution against a real directory in a
 * temp folder: users, +ext, aliases, catch-all, disabled users, foreign
 * targets, alias loops, duplicates, the depth limit, the expansion limit
 * and the aliases smtpd already knows (resolve_check).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/test.h"
#include "mail/dir.h"
#include "mail/outcome.h"
#include "mail/params.h"
#include "mail/resolve.h"

static char tmpdir[] = "/tmp/herald-resolve-test-XXXXXX";
static struct dir *dir;

/* must - a directory write that has to work */
static void
must(int r, struct buf *why, const char *what)
{
	if (r < 0) {
		fprintf(stderr, "setup: %s: %s\n", what, buf_cstr(why));
		test_rm_tree(tmpdir);
		exit(1);
	}
}

/* setup - the directory every case reads */
static void
setup(void)
{
	struct buf why = BUF_INIT;
	struct dir *w = NULL;
	char chain[64], next[64];

	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
	must(dir_open(tmpdir, DIR_WRITE, &w, &why), &why, "dir_open");
	must(dir_domain_add(w, "example.org", &why), &why, "domain");
	must(dir_domain_add(w, "other.org", &why), &why, "domain");
	must(dir_user_add(w, "alice@example.org", -1, &why), &why, "alice");
	must(dir_user_add(w, "bob@example.org", 1000, &why), &why, "bob");
	must(dir_user_set_enabled(w, "bob@example.org", false, &why), &why,
	    "bob disabled");
	must(dir_user_add(w, "carol@example.org", 0, &why), &why, "carol");
	must(dir_user_add(w, "dave@other.org", 5000, &why), &why, "dave");
	/* a plain alias with a duplicate mailbox through +ext */
	must(dir_alias_add(w, "team@example.org", "alice@example.org", &why),
	    &why, "team");
	must(dir_alias_add(w, "team@example.org", "Alice+x@example.org", &why),
	    &why, "team");
	must(dir_alias_add(w, "team@example.org", "dave@other.org", &why),
	    &why, "team");
	/* alias of an alias */
	must(dir_alias_add(w, "all@example.org", "team@example.org", &why),
	    &why, "all");
	must(dir_alias_add(w, "all@example.org", "carol@example.org", &why),
	    &why, "all");
	/* a loop that reaches nobody, and one that reaches alice */
	must(dir_alias_add(w, "loop1@example.org", "loop2@example.org", &why),
	    &why, "loop1");
	must(dir_alias_add(w, "loop2@example.org", "loop1@example.org", &why),
	    &why, "loop2");
	must(dir_alias_add(w, "ring1@example.org", "ring2@example.org", &why),
	    &why, "ring1");
	must(dir_alias_add(w, "ring2@example.org", "ring1@example.org", &why),
	    &why, "ring2");
	must(dir_alias_add(w, "ring2@example.org", "alice@example.org", &why),
	    &why, "ring2");
	/* only other domains, once each, one of them through fwd */
	must(dir_alias_add(w, "away@example.org", "someone@elsewhere.test",
	    &why), &why, "away");
	must(dir_alias_add(w, "away@example.org", "Someone@Elsewhere.test",
	    &why), &why, "away");
	must(dir_alias_add(w, "away@example.org", "other@far.test", &why),
	    &why, "away");
	must(dir_alias_add(w, "away2@example.org", "away@example.org", &why),
	    &why, "away2");
	/* a target in another domain, and failing parts */
	must(dir_alias_add(w, "fwd@example.org", "someone@elsewhere.test",
	    &why), &why, "fwd");
	must(dir_alias_add(w, "fwd@example.org", "alice@example.org", &why),
	    &why, "fwd");
	must(dir_alias_add(w, "typo@example.org", "nobody@example.org", &why),
	    &why, "typo");
	must(dir_alias_add(w, "typo@example.org", "carol@example.org", &why),
	    &why, "typo");
	must(dir_alias_add(w, "off@example.org", "bob@example.org", &why),
	    &why, "off");
	/* alias without extension */
	must(dir_alias_add(w, "info@example.org", "carol@example.org", &why),
	    &why, "info");
	/* catch-all */
	must(dir_alias_add(w, "@other.org", "dave@other.org", &why), &why,
	    "catch-all");
	/* an alias of 1000 addresses, all reaching alice through +ext */
	for (int i = 0; i < 1000; i++) {
		snprintf(next, sizeof(next), "alice+%d@example.org", i);
		must(dir_alias_add(w, "thousand@example.org", next, &why),
		    &why, "thousand");
	}
	/* an alias of 3 members, one of them the 1000 above */
	must(dir_alias_add(w, "outer@example.org", "thousand@example.org",
	    &why), &why, "outer");
	must(dir_alias_add(w, "outer@example.org", "carol@example.org", &why),
	    &why, "outer");
	must(dir_alias_add(w, "outer@example.org", "alice@example.org", &why),
	    &why, "outer");
	/* a chain d0 -> d1 -> ... -> d11 -> alice */
	for (int i = 0; i < 12; i++) {
		snprintf(chain, sizeof(chain), "d%d@example.org", i);
		if (i == 11)
			snprintf(next, sizeof(next), "alice@example.org");
		else
			snprintf(next, sizeof(next), "d%d@example.org", i + 1);
		must(dir_alias_add(w, chain, next, &why), &why, "chain");
	}
	/* postmaster: the first user created is the admin; deleting the
	 * admin makes the next one (same second: key order) admin */
	must(dir_domain_add(w, "late.org", &why), &why, "late");
	must(dir_user_add(w, "zed@late.org", -1, &why), &why, "zed");
	must(dir_user_add(w, "amy@late.org", -1, &why), &why, "amy");
	must(dir_domain_add(w, "gone.org", &why), &why, "gone");
	must(dir_user_add(w, "first@gone.org", -1, &why), &why, "first");
	must(dir_user_add(w, "third@gone.org", -1, &why), &why, "third");
	must(dir_user_add(w, "second@gone.org", -1, &why), &why, "second");
	must(dir_user_del(w, "first@gone.org", &why), &why, "del first");
	must(dir_domain_add(w, "empty.org", &why), &why, "empty");
	must(dir_domain_add(w, "pm.org", &why), &why, "pm");
	must(dir_user_add(w, "x@pm.org", -1, &why), &why, "x");
	must(dir_user_add(w, "y@pm.org", -1, &why), &why, "y");
	must(dir_alias_add(w, "postmaster@pm.org", "y@pm.org", &why), &why,
	    "pm alias");
	dir_close(&w);
	must(dir_open(tmpdir, DIR_READ, &dir, &why), &why, "dir_open read");
	buf_free(&why);
	cfg_defaults(params_table);
	var_default_quota = 777;
}

/* boxes - the resolved mailboxes as "a,b," */
static void
boxes(const struct resolved *r, struct buf *out)
{
	buf_reset(out);
	for (size_t i = 0; i < r->nbox; i++)
		buf_printf(out, "%s,", r->box[i].addr);
}

/* check - resolve addr and compare boxes, status, dsn, reason start */
static int
check(const char *addr, int limit, const char *want_boxes,
    enum outcome_status want_st, const char *want_dsn, const char *want_why)
{
	struct resolved r;
	struct buf got = BUF_INIT;
	int bad = 0;

	resolve_addr(dir, addr, '+', limit, &r);
	boxes(&r, &got);
	if (strcmp(got.data, want_boxes) != 0) {
		fprintf(stderr, "  %s: boxes \"%s\", want \"%s\"\n", addr,
		    got.data, want_boxes);
		bad = 1;
	}
	if (r.fail.status != want_st) {
		fprintf(stderr, "  %s: status %d, want %d (%s)\n", addr,
		    r.fail.status, want_st, buf_cstr(&r.fail.reason));
		bad = 1;
	}
	if (want_dsn != NULL && strcmp(r.fail.dsn, want_dsn) != 0) {
		fprintf(stderr, "  %s: dsn %s, want %s\n", addr, r.fail.dsn,
		    want_dsn);
		bad = 1;
	}
	if (want_why != NULL && strcmp(buf_cstr(&r.fail.reason),
	    want_why) != 0) {
		fprintf(stderr, "  %s: reason \"%s\", want \"%s\"\n", addr,
		    buf_cstr(&r.fail.reason), want_why);
		bad = 1;
	}
	buf_free(&got);
	resolve_free(&r);
	return bad;
}

static void
test_user(void)
{
	T_ASSERT(!check("alice@example.org", 10, "alice@example.org,",
	    OUTCOME_OK, NULL, NULL));
	T_ASSERT(!check("ALICE@Example.ORG", 10, "alice@example.org,",
	    OUTCOME_OK, NULL, NULL));
}

static void
test_extension(void)
{
	T_ASSERT(!check("alice+news@example.org", 10, "alice@example.org,",
	    OUTCOME_OK, NULL, NULL));
	T_ASSERT(!check("info+sales@example.org", 10, "carol@example.org,",
	    OUTCOME_OK, NULL, NULL));
	/* "+" alone at the start is not an extension */
	T_ASSERT(!check("+x@example.org", 10, "", OUTCOME_BOUNCED, "5.1.1",
	    "unknown user"));
}

static void
test_quota(void)
{
	struct resolved r;

	resolve_addr(dir, "alice@example.org", '+', 10, &r);
	T_EQ_INT(r.nbox, 1);
	T_EQ_INT(r.box[0].quota, 777);	/* -1: the default */
	resolve_free(&r);
	resolve_addr(dir, "carol@example.org", '+', 10, &r);
	T_EQ_INT(r.box[0].quota, 0);	/* 0: none */
	resolve_free(&r);
	resolve_addr(dir, "dave@other.org", '+', 10, &r);
	T_EQ_INT(r.box[0].quota, 5000);
	resolve_free(&r);
}

static void
test_alias(void)
{
	/* alice and alice+x are one mailbox */
	T_ASSERT(!check("team@example.org", 10,
	    "alice@example.org,dave@other.org,", OUTCOME_OK, NULL, NULL));
	T_ASSERT(!check("all@example.org", 10,
	    "alice@example.org,dave@other.org,carol@example.org,", OUTCOME_OK,
	    NULL, NULL));
}

static void
test_catchall(void)
{
	T_ASSERT(!check("whoever@other.org", 10, "dave@other.org,", OUTCOME_OK,
	    NULL, NULL));
	T_ASSERT(!check("whoever@example.org", 10, "", OUTCOME_BOUNCED, "5.1.1",
	    "unknown user"));
}

static void
test_postmaster(void)
{
	/* the settings' own strings, put back at the end (freed with them) */
	char *pm = var_postmaster_address, *md = var_mydomain;
	char *mh = var_myhostname;
	struct buf dom = BUF_INIT;

	/* the domain's first user, any case of "postmaster" */
	T_ASSERT(!check("PostMaster@Example.ORG", 10, "alice@example.org,",
	    OUTCOME_OK, NULL, NULL));
	T_ASSERT(!check("postmaster@late.org", 10, "zed@late.org,",
	    OUTCOME_OK, NULL, NULL));
	T_ASSERT(!check("postmaster@gone.org", 10, "second@gone.org,",
	    OUTCOME_OK, NULL, NULL));
	/* an explicit alias and a catch-all win */
	T_ASSERT(!check("postmaster@pm.org", 10, "y@pm.org,", OUTCOME_OK,
	    NULL, NULL));
	T_ASSERT(!check("postmaster@other.org", 10, "dave@other.org,",
	    OUTCOME_OK, NULL, NULL));
	/* nobody to read it: deferred, with a reason an admin can act on */
	T_ASSERT(!check("postmaster@empty.org", 10, "", OUTCOME_DEFERRED,
	    "4.3.0", "no mailbox for postmaster: the domain has no users, "
	    "no postmaster alias, and postmaster_address is not set"));
	/* only the exact local part */
	T_ASSERT(!check("postmasters@late.org", 10, "", OUTCOME_BOUNCED,
	    "5.1.1", "unknown user"));
	/* postmaster_address wins over the first user */
	var_postmaster_address = "carol@example.org";
	T_ASSERT(!check("postmaster@empty.org", 10, "carol@example.org,",
	    OUTCOME_OK, NULL, NULL));
	T_ASSERT(!check("postmaster@late.org", 10, "carol@example.org,",
	    OUTCOME_OK, NULL, NULL));
	T_ASSERT(!check("postmaster@pm.org", 10, "y@pm.org,", OUTCOME_OK,
	    NULL, NULL));
	/* pointing at a postmaster itself cannot loop */
	var_postmaster_address = "postmaster@empty.org";
	T_ASSERT(!check("postmaster@empty.org", 10, "", OUTCOME_BOUNCED,
	    "5.4.6", NULL));
	var_postmaster_address = "postmaster@late.org";
	T_ASSERT(!check("postmaster@empty.org", 10, "", OUTCOME_BOUNCED,
	    "5.4.6", NULL));
	var_postmaster_address = "";
	T_ASSERT(resolve_is_postmaster("POSTMASTER@x"));
	T_ASSERT(!resolve_is_postmaster("postmaster@"));
	T_ASSERT(!resolve_is_postmaster("postmaster"));
	/* a bare <postmaster>: mydomain, a hosted myhostname, the first
	 * hosted domain */
	var_mydomain = "";
	var_myhostname = "mx.nowhere.test";
	resolve_postmaster_domain(dir, &dom);
	T_EQ_STR(buf_cstr(&dom), "empty.org");
	var_myhostname = "late.org";
	resolve_postmaster_domain(dir, &dom);
	T_EQ_STR(buf_cstr(&dom), "late.org");
	var_mydomain = "pm.org";
	resolve_postmaster_domain(dir, &dom);
	T_EQ_STR(buf_cstr(&dom), "pm.org");
	resolve_postmaster_domain(NULL, &dom);
	T_EQ_STR(buf_cstr(&dom), "pm.org");
	var_mydomain = "";
	resolve_postmaster_domain(NULL, &dom);
	T_EQ_STR(buf_cstr(&dom), "late.org");
	buf_free(&dom);
	var_postmaster_address = pm;
	var_mydomain = md;
	var_myhostname = mh;
}

static void
test_loop(void)
{
	T_ASSERT(!check("loop1@example.org", 10, "", OUTCOME_BOUNCED, "5.4.6",
	    NULL));
	T_ASSERT(!check("ring1@example.org", 10, "alice@example.org,",
	    OUTCOME_OK, NULL, NULL));
}

static void
test_depth(void)
{
	/* d0 is depth 0, alice is depth 12 */
	T_ASSERT(!check("d0@example.org", 12, "alice@example.org,", OUTCOME_OK,
	    NULL, NULL));
	T_ASSERT(!check("d0@example.org", 11, "", OUTCOME_BOUNCED, "5.4.6",
	    NULL));
	T_ASSERT(!check("d5@example.org", 10, "alice@example.org,", OUTCOME_OK,
	    NULL, NULL));
}

static void
test_parts(void)
{
	T_ASSERT(!check("typo@example.org", 10, "carol@example.org,",
	    OUTCOME_BOUNCED, "5.1.1", "<nobody@example.org>: unknown user"));
	T_ASSERT(!check("off@example.org", 10, "", OUTCOME_BOUNCED, "5.2.1",
	    "<bob@example.org>: mailbox disabled"));
}

/* remote_list - r's remote targets, "," after each */
static void
remote_list(const struct resolved *r, struct buf *out)
{
	buf_reset(out);
	for (size_t i = 0; i < r->nremote; i++)
		buf_printf(out, "%s,", r->remote[i]);
}

static void
test_remote_targets(void)
{
	struct resolved r;
	struct buf got = BUF_INIT;

	/* a mailbox here and a target elsewhere: both, no failure */
	T_ASSERT(!check("fwd@example.org", 10, "alice@example.org,",
	    OUTCOME_OK, NULL, NULL));
	resolve_addr(dir, "fwd@example.org", '+', 10, &r);
	remote_list(&r, &got);
	T_EQ_STR(got.data, "someone@elsewhere.test,");
	resolve_free(&r);
	/* only elsewhere: no mailbox, no "forwarding loop" either; each
	 * address once, whatever its case */
	T_ASSERT(!check("away2@example.org", 10, "", OUTCOME_OK, NULL, NULL));
	resolve_addr(dir, "away2@example.org", '+', 10, &r);
	remote_list(&r, &got);
	T_EQ_STR(got.data, "someone@elsewhere.test,other@far.test,");
	resolve_free(&r);
	T_EQ_INT((int)r.nremote, 0);
	/* the targets count against alias_expansion_limit as members */
	resolve_check(dir, "away@example.org", '+', 10, 1, NULL, 0, &r);
	T_ASSERT(r.too_large);
	resolve_free(&r);
	buf_free(&got);
}

static void
test_refused(void)
{
	T_ASSERT(!check("bob@example.org", 10, "", OUTCOME_BOUNCED, "5.2.1",
	    "mailbox disabled"));
	T_ASSERT(!check("x@notours.test", 10, "", OUTCOME_BOUNCED, "5.1.2",
	    NULL));
	T_ASSERT(!check("no domain", 10, "", OUTCOME_BOUNCED, "5.1.1", NULL));
	T_ASSERT(!check("\"a b\"@example.org", 10, "", OUTCOME_BOUNCED, NULL,
	    NULL));
}

/* expand - resolve addr with the expansion limit lim (and known aliases);
 * the number of mailboxes, -1 if the expansion was too large */
static long
expand(const char *addr, long long lim, char *const *known, size_t nknown,
    const char *want_top)
{
	struct resolved r;
	long n;

	var_alias_expansion_limit = lim;
	if (known == NULL)
		resolve_addr(dir, addr, '+', 10, &r);
	else
		resolve_check(dir, addr, '+', 10, (size_t)lim, known,
		    nknown, &r);
	n = r.too_large ? -1 : (long)r.nbox;
	if (r.too_large && (r.fail.status != OUTCOME_BOUNCED ||
	    strcmp(r.fail.dsn, "5.5.3") != 0)) {
		fprintf(stderr, "  %s: too large but %d %s\n", addr,
		    r.fail.status, r.fail.dsn);
		n = -2;
	}
	if (!r.too_large && r.fail.status != OUTCOME_OK) {
		fprintf(stderr, "  %s: %s\n", addr, buf_cstr(&r.fail.reason));
		n = -3;
	}
	if (want_top != NULL && (r.top_alias == NULL ||
	    strcmp(r.top_alias, want_top) != 0)) {
		fprintf(stderr, "  %s: top alias %s, want %s\n", addr,
		    r.top_alias ? r.top_alias : "(none)", want_top);
		n = -4;
	}
	resolve_free(&r);
	var_alias_expansion_limit = 1000;
	return n;
}

/* the limit counts the members only, not the recipient itself: an alias
 * of exactly alias_expansion_limit members delivers to all of them */
static void
test_expansion_count(void)
{
	T_EQ_INT(expand("thousand@example.org", 1000, NULL, 0, NULL), 1);
	T_EQ_INT(expand("thousand+x@example.org", 1000, NULL, 0, NULL), 1);
	T_EQ_INT(expand("thousand@example.org", 999, NULL, 0, NULL), -1);
	/* nested: outer's 3 members plus thousand's 1000 */
	T_EQ_INT(expand("outer@example.org", 1003, NULL, 0, NULL), 2);
	T_EQ_INT(expand("outer@example.org", 1002, NULL, 0, NULL), -1);
	/* a plain user, the catch-all: no member, one mailbox */
	T_EQ_INT(expand("alice@example.org", 1, NULL, 0, NULL), 1);
	T_EQ_INT(expand("x@other.org", 1, NULL, 0, "@other.org"), 1);
	/* distinct addresses count, even if they reach one mailbox */
	T_EQ_INT(expand("team@example.org", 3, NULL, 0, NULL), 2);
	T_EQ_INT(expand("team@example.org", 2, NULL, 0, NULL), -1);
}

/* smtpd's check: the alias the recipient hit is named, and a known one
 * is not expanded again */
static void
test_expansion_known(void)
{
	char *known[] = {"thousand@example.org"};

	T_EQ_INT(expand("thousand+7@example.org", 1000, known + 1, 0,
	    "thousand@example.org"), 1);
	T_EQ_INT(expand("thousand+7@example.org", 10, known, 1,
	    "thousand@example.org"), 0);
	T_EQ_INT(expand("outer@example.org", 10, known, 1,
	    "outer@example.org"), -1);
}

static const struct test_case cases[] = {
	{"user exact and case", test_user},
	{"user and alias without +ext", test_extension},
	{"quota from user or default", test_quota},
	{"alias, nested alias, duplicates once", test_alias},
	{"catch-all", test_catchall},
	{"alias loops", test_loop},
	{"postmaster of every domain", test_postmaster},
	{"depth limit", test_depth},
	{"failing parts are named", test_parts},
	{"targets in other domains", test_remote_targets},
	{"disabled, foreign, bad syntax", test_refused},
	{"expansion limit counts members only", test_expansion_count},
	{"known aliases are not expanded again", test_expansion_known},
	{0},
};

int
main(void)
{
	int r;

	setup();
	r = test_run(cases);
	dir_close(&dir);
	test_rm_tree(tmpdir);
	return r;
}
