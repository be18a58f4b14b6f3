/*
 * imap_text_test - case folding for SEARCH and SORT across scripts (the
 * generated simple case folding table, 2-, 3- and 4-byte UTF-8), ill-formed
 * bytes kept as they are, and output that grows while folding.
 */
#include <string.h>

#include "base/buf.h"
#include "base/test.h"
#include "imap_text.h"

/* f - the folding of the C string s */
static const char *
f(struct buf *out, const char *s)
{
	buf_reset(out);
	imap_text_fold(out, s, strlen(s));
	return buf_cstr(out);
}

static void
test_scripts(void)
{
	struct buf o = BUF_INIT;

	T_EQ_STR(f(&o, "Hello, WORLD"), "hello, world");
	/* Latin-1 and the micro sign */
	T_EQ_STR(f(&o, "\xc3\x89T\xc3\x89 \xc2\xb5"), "\xc3\xa9t\xc3\xa9 "
	    "\xce\xbc");
	/* Greek: ΣΟΦΊΑ, and final sigma folds to sigma */
	T_EQ_STR(f(&o, "\xce\xa3\xce\x9f\xce\xa6\xce\x8a\xce\x91"),
	    "\xcf\x83\xce\xbf\xcf\x86\xce\xaf\xce\xb1");
	T_EQ_STR(f(&o, "\xcf\x82"), "\xcf\x83");
	/* Cyrillic: ЖЁЛТЫЙ, and Ѣ (U+0462, Cyrillic Extended pairs) */
	T_EQ_STR(f(&o, "\xd0\x96\xd0\x81\xd0\x9b\xd0\xa2\xd0\xab\xd0\x99"),
	    "\xd0\xb6\xd1\x91\xd0\xbb\xd1\x82\xd1\x8b\xd0\xb9");
	T_EQ_STR(f(&o, "\xd1\xa2"), "\xd1\xa3");
	/* Armenian: Ա (U+0531) -> ա (U+0561) */
	T_EQ_STR(f(&o, "\xd4\xb1\xd5\x96"), "\xd5\xa1\xd6\x86");
	/* Georgian Mkhedruli capitals: Ა (U+1C90) -> ა (U+10D0), and
	 * Asomtavruli Ⴀ (U+10A0) -> ⴀ (U+2D00) */
	T_EQ_STR(f(&o, "\xe1\xb2\x90"), "\xe1\x83\x90");
	T_EQ_STR(f(&o, "\xe1\x82\xa0"), "\xe2\xb4\x80");
	/* Cherokee folds to its capitals: ꭰ (U+AB70) -> Ꭰ (U+13A0),
	 * ᏸ (U+13F8) -> Ᏸ (U+13F0); Ꭰ itself stays */
	T_EQ_STR(f(&o, "\xea\xad\xb0"), "\xe1\x8e\xa0");
	T_EQ_STR(f(&o, "\xe1\x8f\xb8"), "\xe1\x8f\xb0");
	T_EQ_STR(f(&o, "\xe1\x8e\xa0"), "\xe1\x8e\xa0");
	/* Deseret, four-byte UTF-8: 𐐀 (U+10400) -> 𐐨 (U+10428) */
	T_EQ_STR(f(&o, "\xf0\x90\x90\x80x\xf0\x90\x90\xa7"),
	    "\xf0\x90\x90\xa8x\xf0\x90\x91\x8f");
	/* German sharp s: ẞ (U+1E9E) -> ß (U+00DF); simple folding keeps ß
	 * (the full folding "ss" is not done) */
	T_EQ_STR(f(&o, "STRA\xe1\xba\x9e" "E"), "stra\xc3\x9f" "e");
	T_EQ_STR(f(&o, "\xc3\x9f"), "\xc3\x9f");
	/* Turkish dotted capital I: simple folding has no entry for it
	 * (status T only), so it stays */
	T_EQ_STR(f(&o, "\xc4\xb0"), "\xc4\xb0");
	/* Kelvin sign -> k, Ohm sign -> omega */
	T_EQ_STR(f(&o, "\xe2\x84\xaa\xe2\x84\xa6"), "k\xcf\x89");
	/* full-width Ａ (U+FF21) -> ａ */
	T_EQ_STR(f(&o, "\xef\xbc\xa1"), "\xef\xbd\x81");
	buf_free(&o);
}

static void
test_ill_formed(void)
{
	struct buf o = BUF_INIT;

	/* a stray continuation byte, an overlong 'A', a surrogate, a cut
	 * sequence: all copied as they are, the ASCII around them folded */
	T_EQ_STR(f(&o, "A\x80" "B"), "a\x80" "b");
	T_EQ_STR(f(&o, "\xc1\x81Z"), "\xc1\x81z");
	T_EQ_STR(f(&o, "\xed\xa0\x80Q"), "\xed\xa0\x80q");
	T_EQ_STR(f(&o, "Q\xf0\x90\x90"), "q\xf0\x90\x90");
	T_EQ_STR(f(&o, "\xf5\x80\x80\x80"), "\xf5\x80\x80\x80");
	buf_free(&o);
}

static void
test_grows(void)
{
	struct buf o = BUF_INIT;
	char in[4096];
	size_t n = 0;

	/* Ⱥ (U+023A, 2 bytes) folds to ⱥ (U+2C65, 3 bytes): many of them
	 * then ASCII must not run past the room made for the ASCII */
	while (n + 3 < 2048) {
		memcpy(in + n, "\xc8\xba", 2);
		n += 2;
	}
	memset(in + n, 'A', 1000);
	n += 1000;
	in[n] = '\0';
	f(&o, in);
	T_EQ_INT(o.len, 1023 * 3 + 1000);
	T_EQ_MEM(o.data, 3, "\xe2\xb1\xa5", 3);
	T_EQ_INT(o.data[o.len - 1], 'a');
	buf_free(&o);
}

static const struct test_case cases[] = {
	{"scripts", test_scripts},
	{"ill-formed UTF-8", test_ill_formed},
	{"output longer than input", test_grows},
	{NULL, NULL},
};

int
main(void)
{
	return test_run(cases);
}
