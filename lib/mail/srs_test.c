/*
 * srs_test - SRS addresses: forward and reverse round trips, SRS1 of an
 * SRS0 and of an SRS1, case-folded hashes, timestamps across the 1024-day
 * wrap, expiry, forgeries and malformed input, at every truncation.
 */
#include <string.h>

#include "base/buf.h"
#include "base/test.h"
#include "mail/srs.h"

static const struct srs_key key = {
	(const unsigned char *)"0123456789abcdef0123456789abcdef", 32,
};
static const struct srs_key other = {
	(const unsigned char *)"fedcba9876543210fedcba9876543210", 32,
};

#define DAY 86400
#define NOW ((time_t)20000 * DAY + 3600)

/* fwd - srs_forward into a static buffer ("" if not rewritten) */
static const char *
fwd(const struct srs_key *k, time_t now, const char *sender)
{
	static struct buf out = BUF_INIT;

	buf_reset(&out);
	if (srs_forward(k, now, sender, "a.test", &out) != 1)
		return "";
	return buf_cstr(&out);
}

/* rev - srs_reverse: the result, "-" for not SRS, "!" for invalid */
static const char *
rev(const struct srs_key *k, time_t now, const char *addr)
{
	static struct buf out = BUF_INIT;
	struct buf why = BUF_INIT;
	int r;

	buf_reset(&out);
	r = srs_reverse(k, now, addr, &out, &why);
	if (r < 0 && why.len == 0)
		buf_set(&out, "(no reason)");
	else if (r < 0)
		buf_set(&out, "!");
	else if (r == 0)
		buf_set(&out, "-");
	buf_free(&why);
	return buf_cstr(&out);
}

static void
test_srs0_round_trip(void)
{
	const char *s = fwd(&key, NOW, "x@c.test");
	char copy[256];

	T_ASSERT(strncmp(s, "SRS0=", 5) == 0);
	T_ASSERT(strstr(s, "=c.test=x@a.test") != NULL);
	T_EQ_INT((int)strlen(s), (int)strlen("SRS0=HHHH=TT=c.test=x@a.test"));
	T_ASSERT(srs_is_srs(s));
	snprintf(copy, sizeof(copy), "%s", s);
	T_EQ_STR(rev(&key, NOW, copy), "x@c.test");
	/* a local part holding '=' and '@'-free oddities survives */
	snprintf(copy, sizeof(copy), "%s", fwd(&key, NOW, "a=b=c@d.test"));
	T_EQ_STR(rev(&key, NOW, copy), "a=b=c@d.test");
	/* the same input, the same address: deterministic */
	snprintf(copy, sizeof(copy), "%s", fwd(&key, NOW, "x@c.test"));
	T_EQ_STR(fwd(&key, NOW, "x@c.test"), copy);
}

static void
test_not_rewritten(void)
{
	T_EQ_STR(fwd(&key, NOW, ""), "");
	T_EQ_STR(fwd(&key, NOW, "nodomain"), "");
	T_EQ_STR(fwd(&key, NOW, "@c.test"), "");
	T_EQ_STR(fwd(&key, NOW, "x@"), "");
	T_EQ_STR(fwd(&key, NOW, "x@c=d.test"), "");
	T_EQ_STR(rev(&key, NOW, "carol@a.test"), "-");
	T_EQ_STR(rev(&key, NOW, "SRS0@a.test"), "-");
	T_EQ_STR(rev(&key, NOW, "SRS0=@a.test"), "-");
	T_EQ_STR(rev(&key, NOW, "SRS2=abcd=AA=c=x@a.test"), "-");
	T_ASSERT(!srs_is_srs("carol@a.test"));
	T_ASSERT(!srs_is_srs("SRS0=@a.test"));
	T_ASSERT(srs_is_srs("srs1=x@a.test"));
}

static void
test_case_folded(void)
{
	char up[256], low[256];
	const char *s = fwd(&key, NOW, "Xavier@C.Test");

	/* relays may fold the whole local part either way */
	snprintf(up, sizeof(up), "%s", s);
	snprintf(low, sizeof(low), "%s", s);
	for (char *p = up; *p; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
	for (char *p = low; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	T_EQ_STR(rev(&key, NOW, up), "XAVIER@C.TEST");
	T_EQ_STR(rev(&key, NOW, low), "xavier@c.test");
	T_EQ_STR(rev(&key, NOW, s), "Xavier@C.Test");
}

static void
test_forged(void)
{
	char s[256], t[256];

	snprintf(s, sizeof(s), "%s", fwd(&key, NOW, "x@c.test"));
	/* another secret: not ours */
	T_EQ_STR(rev(&other, NOW, s), "!");
	/* a changed original address */
	snprintf(t, sizeof(t), "%s", s);
	strstr(t, "=x@")[1] = 'y';
	T_EQ_STR(rev(&key, NOW, t), "!");
	/* a changed stamp (the hash covers it) */
	snprintf(t, sizeof(t), "%s", s);
	t[10] = t[10] == 'A' ? 'B' : 'A';
	T_EQ_STR(rev(&key, NOW, t), "!");
	/* a changed hash */
	snprintf(t, sizeof(t), "%s", s);
	t[5] = t[5] == 'Z' ? 'Y' : 'Z';
	T_EQ_STR(rev(&key, NOW, t), "!");
	T_EQ_STR(rev(&key, NOW, "SRS0=abcd=AA=c.test=x@a.test"), "!");
}

static void
test_timestamps(void)
{
	char s[256];

	snprintf(s, sizeof(s), "%s", fwd(&key, NOW, "x@c.test"));
	T_EQ_STR(rev(&key, NOW + SRS_MAX_AGE * DAY, s), "x@c.test");
	T_EQ_STR(rev(&key, NOW + (SRS_MAX_AGE + 1) * DAY, s), "!");
	/* a stamp from tomorrow (clock skew past midnight): refused */
	T_EQ_STR(rev(&key, NOW - DAY, s), "!");
	/* the 1024-day wrap: day 1023 still valid on days 0..20 after */
	snprintf(s, sizeof(s), "%s", fwd(&key, (time_t)1023 * DAY, "x@c.test"));
	T_ASSERT(strstr(s, "=77=") != NULL);
	T_EQ_STR(rev(&key, (time_t)1024 * DAY, s), "x@c.test");
	T_EQ_STR(rev(&key, (time_t)(1023 + SRS_MAX_AGE) * DAY, s),
	    "x@c.test");
	T_EQ_STR(rev(&key, (time_t)(1024 + SRS_MAX_AGE) * DAY, s), "!");
	/* 1024 days later the stamp comes round again, as libsrs2's does */
	T_EQ_STR(rev(&key, (time_t)(1023 + 1024) * DAY, s), "x@c.test");
	/* day 0 */
	snprintf(s, sizeof(s), "%s", fwd(&key, 0, "x@c.test"));
	T_ASSERT(strstr(s, "=AA=") != NULL);
	T_EQ_STR(rev(&key, 0, s), "x@c.test");
}

static void
test_srs1(void)
{
	char s0[256], s1[256], s1b[256];

	/* b.test made an SRS0 with its own secret; we forward it again */
	{
		struct buf o = BUF_INIT;

		T_EQ_INT(srs_forward(&other, NOW, "x@c.test", "b.test", &o),
		    1);
		snprintf(s0, sizeof(s0), "%s", buf_cstr(&o));
		buf_free(&o);
	}
	snprintf(s1, sizeof(s1), "%s", fwd(&key, NOW, s0));
	T_ASSERT(strncmp(s1, "SRS1=", 5) == 0);
	T_ASSERT(strstr(s1, "=b.test==") != NULL);
	T_ASSERT(strstr(s1, "=c.test=x@a.test") != NULL);
	/* back: the SRS0 address at b.test, whose hash b.test checks */
	T_EQ_STR(rev(&key, NOW, s1), s0);
	T_EQ_STR(rev(&other, NOW, s0), "x@c.test");
	T_EQ_STR(rev(&other, NOW, s1), "!");
	/* an SRS1 forwarded once more keeps b.test as the forwarder */
	{
		struct buf o = BUF_INIT;
		char mid[256];

		T_EQ_INT(srs_forward(&other, NOW, s1, "d.test", &o), 1);
		snprintf(mid, sizeof(mid), "%s", buf_cstr(&o));
		buf_free(&o);
		T_ASSERT(strstr(mid, "=b.test==") != NULL);
		T_ASSERT(strstr(mid, "@d.test") != NULL);
		snprintf(s1b, sizeof(s1b), "%s", fwd(&key, NOW, mid));
		T_ASSERT(strstr(s1b, "=b.test==") != NULL);
		T_EQ_STR(rev(&key, NOW, s1b), s0);
	}
	/* fuzz finding: an SRS1 sender whose rest is a lone '=' was made
	 * into an SRS1 that srs_reverse refuses; it is an SRS0 now */
	{
		struct buf o = BUF_INIT;
		const char *odd = "SRS1=abcd=b.t\004SRS0==@x";

		T_EQ_INT(srs_forward(&key, NOW, odd, "a.test", &o), 1);
		T_ASSERT(strncmp(buf_cstr(&o), "SRS0=", 5) == 0);
		T_EQ_STR(rev(&key, NOW, buf_cstr(&o)), "SRS1=abcd=b.t\004SRS0==@x");
		buf_free(&o);
	}
	/* SRS1 has no stamp: still reverses much later */
	T_EQ_STR(rev(&key, NOW + 400 * DAY, s1), s0);
}

static void
test_malformed(void)
{
	static const char *bad[] = {
		"SRS0==@a.test", "SRS0=abcd@a.test",
		"SRS0=abcd=AA@a.test", "SRS0=abcd=AA=@a.test",
		"SRS0=abcd=AA=c.test@a.test", "SRS0=abcd=AA=c.test=@a.test",
		"SRS0=abcd=A=c.test=x@a.test", "SRS0=abcd=A1=c.test=x@a.test",
		"SRS0=abcd=AAA=c.test=x@a.test", "SRS0=abcd=AA==x@a.test",
		"SRS1=abcd@a.test", "SRS1=abcd=b.test@a.test",
		"SRS1=abcd=b.test=@a.test", "SRS1=abcd=b.test==@a.test",
		"SRS1=abcd==rest@a.test", "SRS1==@a.test", "SRS0=x",
		"SRS1=x", NULL,
	};
	char s[256];

	for (int i = 0; bad[i] != NULL; i++) {
		const char *r = rev(&key, NOW, bad[i]);

		if (strcmp(r, "!") != 0)
			T_FAIL_("%s: got \"%s\", want \"!\"", bad[i], r);
	}
	/* every truncation of a good address is refused or not SRS, and
	 * never read past its end */
	snprintf(s, sizeof(s), "%s", fwd(&key, NOW, "x@c.test"));
	for (size_t n = strlen(s) - strlen("@a.test") - 1; n > 0; n--) {
		char *t = strndup(s, n);
		const char *r;

		T_ASSERT(t != NULL);
		r = rev(&key, NOW, t);
		if (strcmp(r, "!") != 0 && strcmp(r, "-") != 0) {
			free(t);
			T_FAIL_("truncated to %zu: %s", n, r);
		}
		free(t);
	}
}

static const struct test_case cases[] = {
	{"SRS0 round trip", test_srs0_round_trip},
	{"not rewritten, not SRS", test_not_rewritten},
	{"case-folded local parts", test_case_folded},
	{"forged addresses", test_forged},
	{"timestamps and their wrap", test_timestamps},
	{"SRS1 from SRS0 and SRS1", test_srs1},
	{"malformed input", test_malformed},
	{0},
};

int
main(void)
{
	return test_run(cases);
}
