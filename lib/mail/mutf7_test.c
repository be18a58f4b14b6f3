/*
 * mutf7_test - modified UTF-7 both ways (RFC 3501's examples, every
 * kind of non-canonical or broken input refused) and the folder name
 * mapping to Maildir++ folders.
 */
#include <string.h>

#include "base/buf.h"
#include "base/test.h"
#include "mail/mutf7.h"

/* decode_ok - s decodes to want, and want encodes back to s */
static int
decode_ok(const char *s, const char *want)
{
	struct buf out = BUF_INIT, back = BUF_INIT, why = BUF_INIT;
	int ok;

	ok = mutf7_decode(s, strlen(s), &out, &why) == 0 &&
	    strcmp(buf_cstr(&out), want) == 0 &&
	    mutf7_encode(out.data, out.len, &back, &why) == 0 &&
	    strcmp(buf_cstr(&back), s) == 0;
	if (!ok)
		fprintf(stderr, "  %s -> \"%s\" -> \"%s\" (%s)\n", s,
		    buf_cstr(&out), buf_cstr(&back), buf_cstr(&why));
	buf_free(&out);
	buf_free(&back);
	buf_free(&why);
	return ok;
}

/* decode_bad - s is refused with a reason */
static int
decode_bad(const char *s)
{
	struct buf out = BUF_INIT, why = BUF_INIT;
	int bad = mutf7_decode(s, strlen(s), &out, &why) < 0 && why.len > 0;

	if (!bad)
		fprintf(stderr, "  %s accepted as \"%s\"\n", s,
		    buf_cstr(&out));
	buf_free(&out);
	buf_free(&why);
	return bad;
}

/* test_rfc_examples - RFC 3501 examples round-trip */
static void
test_rfc_examples(void)
{
	T_ASSERT(decode_ok("~peter/mail/&U,BTFw-/&ZeVnLIqe-",
	    "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac"
	    "\xe8\xaa\x9e"));
	T_ASSERT(decode_ok("&-", "&"));
	T_ASSERT(decode_ok("Entw&APw-rfe", "Entw\xc3\xbc" "rfe"));
	/* U+1F600 */
	T_ASSERT(decode_ok("&2D3eAA-", "\xf0\x9f\x98\x80"));
	T_ASSERT(decode_ok("A&-B&AAk-", "A&B\t"));
	T_ASSERT(decode_ok("", ""));
}

/* test_refused - non-canonical and broken input refused */
static void
test_refused(void)
{
	T_ASSERT(decode_bad("&Jjo!"));		/* no closing '-' */
	T_ASSERT(decode_bad("&U,BTFw"));	/* no closing '-' */
	T_ASSERT(decode_bad("a&b"));		/* run not closed */
	T_ASSERT(decode_bad("&AGE-"));		/* 'a' must be itself */
	T_ASSERT(decode_bad("&APw-&APw-"));	/* adjacent runs */
	T_ASSERT(decode_bad("&APx-"));		/* leftover bits set */
	T_ASSERT(decode_bad("&APwA-"));		/* 6 bits left over */
	T_ASSERT(decode_bad("&2D0-"));		/* lone high surrogate */
	T_ASSERT(decode_bad("&3gA-"));		/* lone low surrogate */
	T_ASSERT(decode_bad("&2D3YPQ-"));	/* high then high */
	T_ASSERT(decode_bad("&AAA-"));		/* NUL */
	T_ASSERT(decode_bad("&AP=-"));		/* '=' not base64 */
	T_ASSERT(decode_bad("&AP/-"));		/* '/' not mbase64 */
	T_ASSERT(decode_bad("caf\xc3\xa9"));	/* raw 8-bit */
	T_ASSERT(decode_bad("tab\there"));	/* raw control */
	T_ASSERT(decode_bad("&"));
}

/* test_encode_refuses - encoder refuses bad UTF-8 */
static void
test_encode_refuses(void)
{
	struct buf out = BUF_INIT, why = BUF_INIT;

	/* overlong, a surrogate, above U+10FFFF, cut short, NUL */
	T_ASSERT(mutf7_encode("\xc0\xaf", 2, &out, &why) < 0);
	T_ASSERT(mutf7_encode("\xed\xa0\x80", 3, &out, &why) < 0);
	T_ASSERT(mutf7_encode("\xf4\x90\x80\x80", 4, &out, &why) < 0);
	T_ASSERT(mutf7_encode("\xe6\x97", 2, &out, &why) < 0);
	T_ASSERT(mutf7_encode("a\0b", 3, &out, &why) < 0);
	buf_free(&out);
	buf_free(&why);
}

/* folder - name (utf8 or not) maps to want_name and want_disk */
static int
folder(const char *s, bool utf8, const char *want_name, const char *want_disk)
{
	struct buf n = BUF_INIT, d = BUF_INIT, back = BUF_INIT, why = BUF_INIT;
	int ok;

	ok = mutf7_folder_name(s, utf8, &n, &why) == 0 &&
	    strcmp(buf_cstr(&n), want_name) == 0 &&
	    mutf7_folder_disk(buf_cstr(&n), &d, &why) == 0 &&
	    strcmp(buf_cstr(&d), want_disk) == 0;
	if (ok && *want_disk != '\0')
		ok = mutf7_folder_from_disk(buf_cstr(&d), &back, &why) == 0 &&
		    strcmp(buf_cstr(&back), want_name) == 0;
	if (!ok)
		fprintf(stderr, "  %s -> \"%s\" \"%s\" (%s)\n", s,
		    buf_cstr(&n), buf_cstr(&d), buf_cstr(&why));
	buf_free(&n);
	buf_free(&d);
	buf_free(&back);
	buf_free(&why);
	return ok;
}

/* folder_bad - s is refused as a folder name */
static int
folder_bad(const char *s, bool utf8)
{
	struct buf n = BUF_INIT, why = BUF_INIT;
	int bad = mutf7_folder_name(s, utf8, &n, &why) < 0 && why.len > 0;

	if (!bad)
		fprintf(stderr, "  folder %s accepted\n", s);
	buf_free(&n);
	buf_free(&why);
	return bad;
}

/* test_folders - folder names map to Maildir++ folders */
static void
test_folders(void)
{
	char long_name[300];

	T_ASSERT(folder("INBOX", false, "INBOX", ""));
	T_ASSERT(folder("inbox", true, "INBOX", ""));
	T_ASSERT(folder("Inbox.Lists", false, "INBOX.Lists", ".INBOX.Lists"));
	T_ASSERT(folder("Sent", false, "Sent", ".Sent"));
	T_ASSERT(folder("Work.2024", true, "Work.2024", ".Work.2024"));
	T_ASSERT(folder("Entw&APw-rfe", false, "Entw\xc3\xbcrfe",
	    ".Entw&APw-rfe"));
	T_ASSERT(folder("Entw\xc3\xbcrfe", true, "Entw\xc3\xbcrfe",
	    ".Entw&APw-rfe"));
	T_ASSERT(folder("R&D", true, "R&D", ".R&-D"));
	T_ASSERT(folder_bad("", true));
	T_ASSERT(folder_bad(".hidden", true));
	T_ASSERT(folder_bad("a..b", true));
	T_ASSERT(folder_bad("a.", true));
	T_ASSERT(folder_bad("../etc", true));
	T_ASSERT(folder_bad("a/b", true));
	T_ASSERT(folder_bad("a*", true));
	T_ASSERT(folder_bad("a%", true));
	T_ASSERT(folder_bad("tab&AAk-", false));	/* control, encoded */
	T_ASSERT(folder_bad("caf\xc3\xa9", false));	/* 8-bit in mUTF-7 */
	T_ASSERT(folder_bad("bad\xff", true));
	T_ASSERT(folder_bad("R&D", false));		/* bad mUTF-7 */
	memset(long_name, 'x', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	T_ASSERT(folder_bad(long_name, true));
}

/* test_from_disk - folder names read from disk */
static void
test_from_disk(void)
{
	struct buf n = BUF_INIT, why = BUF_INIT;

	T_ASSERT(mutf7_folder_from_disk(".", &n, &why) < 0);
	T_ASSERT(mutf7_folder_from_disk("..", &n, &why) < 0);
	T_ASSERT(mutf7_folder_from_disk("cur", &n, &why) < 0);
	T_ASSERT(mutf7_folder_from_disk(".INBOX", &n, &why) < 0);
	T_ASSERT(mutf7_folder_from_disk(".inbox.x", &n, &why) < 0);
	T_ASSERT(mutf7_folder_from_disk(".a..b", &n, &why) < 0);
	T_ASSERT(mutf7_folder_from_disk(".&AGE-", &n, &why) < 0);
	T_ASSERT(mutf7_folder_from_disk(".Trash", &n, &why) == 0);
	T_EQ_STR(buf_cstr(&n), "Trash");
	buf_free(&n);
	buf_free(&why);
}

/* test_encode_bound - what encodes must decode: an input the encoder
 * takes (MUTF7_INPUT_MAX bytes at most) whose encoding is longer than
 * that is refused, as the decoder would refuse the encoding (found by
 * mutf7_fuzz: 1,697 bytes, mostly control characters) */
static void
test_encode_bound(void)
{
	struct buf in = BUF_INIT, out = BUF_INIT, back = BUF_INIT;
	struct buf why = BUF_INIT;

	/* 1,536 control characters: 1,536 * 16 / 6 + 2 = 4,098 bytes */
	for (int i = 0; i < 1536; i++)
		buf_putc(&in, 0x12);
	buf_puts(&out, "kept");
	T_EQ_INT(mutf7_encode(in.data, in.len, &out, &why), -1);
	T_EQ_STR(buf_cstr(&out), "kept");
	/* one less fits both ways: 4,096 bytes */
	buf_reset(&out);
	T_EQ_INT(mutf7_encode(in.data, in.len - 1, &out, &why), 0);
	T_ASSERT(out.len <= MUTF7_INPUT_MAX);
	T_EQ_INT(mutf7_decode(out.data, out.len, &back, &why), 0);
	T_EQ_MEM(back.data, back.len, in.data, in.len - 1);
	buf_free(&in);
	buf_free(&out);
	buf_free(&back);
	buf_free(&why);
}

static const struct test_case cases[] = {
	{"what encodes decodes, also at the length bound", test_encode_bound},
	{"RFC 3501 examples round-trip", test_rfc_examples},
	{"non-canonical and broken input refused", test_refused},
	{"encoder refuses bad UTF-8", test_encode_refuses},
	{"folder names map to Maildir++ folders", test_folders},
	{"folder names read from disk", test_from_disk},
	{NULL, NULL},
};

int
main(void)
{
	return test_run(cases);
}
