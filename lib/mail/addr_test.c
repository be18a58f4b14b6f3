/*
 * addr_test - RFC 5321 path syntax (a table of good and bad paths, each
 * also with ESMTP parameters after it and cut at every length), the
 * internal and external forms, and xtext.
 */
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "base/test.h"
#include "mail/addr.h"

#define N ADDR_ALLOW_NULL
#define U ADDR_ALLOW_UTF8
#define L ADDR_LENIENT

static const struct {
	const char *in;
	size_t len;		/* 0: strlen(in) */
	unsigned flags;
	const char *want;	/* internal form; NULL: must fail */
	const char *why;	/* for failures: substring of the reason */
} paths[] = {
	/* plain */
	{"<user@example.org>", 0, 0, "user@example.org", NULL},
	{"<User.Name+tag@Example.ORG>", 0, 0, "User.Name+tag@Example.ORG",
	    NULL},
	{"<a@b>", 0, 0, "a@b", NULL},
	{"<!#$%&'*+-/=?^_`{|}~@d>", 0, 0, "!#$%&'*+-/=?^_`{|}~@d", NULL},
	{"<a@sub-domain.x-y.example>", 0, 0, "a@sub-domain.x-y.example",
	    NULL},
	{"<a@3com.com>", 0, 0, "a@3com.com", NULL},
	{"<a@localhost>", 0, 0, "a@localhost", NULL},
	/* null path */
	{"<>", 0, N, "", NULL},
	{"<>", 0, 0, NULL, "not allowed"},
	{"<>", 0, N | L, "", NULL},
	/* source routes are dropped */
	{"<@a,@b:u@d>", 0, 0, "u@d", NULL},
	{"<@relay.example:u@d>", 0, 0, "u@d", NULL},
	{"<@a,b:u@d>", 0, 0, NULL, "source route"},
	{"<@a@b:u@d>", 0, 0, NULL, "source route"},
	{"<@a:>", 0, 0, NULL, "empty local part"},
	{"<@:u@d>", 0, 0, NULL, "domain"},
	{"<@[1.2.3.4]:u@d>", 0, 0, NULL, "literal in source route"},
	{"<@a,@b:postmaster>", 0, 0, NULL, "missing '@domain'"},
	/* quoted local parts */
	{"<\"a b\"@d>", 0, 0, "a b@d", NULL},
	{"<\"a\\\"b\"@d>", 0, 0, "a\"b@d", NULL},
	{"<\"a\\\\b\"@d>", 0, 0, "a\\b@d", NULL},
	{"<\"\\a\"@d>", 0, 0, "a@d", NULL},
	{"<\"a@b\"@d>", 0, 0, "a@b@d", NULL},
	{"<\"a..b\"@d>", 0, 0, "a..b@d", NULL},
	{"<\"\"@d>", 0, 0, NULL, "empty local part"},
	{"<\"a@d>", 0, 0, NULL, "unterminated"},
	{"<\"a\rb\"@d>", 0, 0, NULL, "bad character"},
	{"<\"a\\\rb\"@d>", 0, 0, NULL, "quoted-pair"},
	{"<\"a\\", 0, 0, NULL, "quoted-pair"},
	{"<\"a\"b@d>", 0, 0, NULL, "bad character"},
	/* dot-strings */
	{"<a..b@d>", 0, 0, NULL, "empty label in local part"},
	{"<.a@d>", 0, 0, NULL, "empty label in local part"},
	{"<a.@d>", 0, 0, NULL, "empty label in local part"},
	{"<a b@d>", 0, 0, NULL, "bad character"},
	{"<a(b)@d>", 0, 0, NULL, "bad character"},
	{"<(a)@d>", 0, 0, NULL, "bad character"},
	{"<a,b@d>", 0, 0, NULL, "bad character"},
	{"<@d>", 0, 0, NULL, "source route"},
	/* domains */
	{"<a@-d>", 0, 0, NULL, "starts with a hyphen"},
	{"<a@d->", 0, 0, NULL, "ends with a hyphen"},
	{"<a@x.-d.org>", 0, 0, NULL, "hyphen"},
	{"<a@d-.org>", 0, 0, NULL, "hyphen"},
	{"<a@d..org>", 0, 0, NULL, "empty label in domain"},
	{"<a@.d>", 0, 0, NULL, "bad domain"},
	{"<a@d.>", 0, 0, NULL, "empty label in domain"},
	{"<a@>", 0, 0, NULL, "missing domain"},
	{"<a@d_x>", 0, 0, NULL, "bad character in domain"},
	{"<a@d", 0, 0, NULL, "missing '>'"},
	{"<a@d x>", 0, 0, NULL, "bad character in domain"},
	{"<a>", 0, 0, NULL, "missing '@domain'"},
	{"<a@b@c>", 0, 0, NULL, "bad character in domain"},
	/* address literals */
	{"<u@[127.0.0.1]>", 0, 0, "u@[127.0.0.1]", NULL},
	{"<u@[IPv6:::1]>", 0, 0, "u@[IPv6:::1]", NULL},
	{"<u@[ipv6:2001:db8::1]>", 0, 0, "u@[ipv6:2001:db8::1]", NULL},
	{"<u@[IPv6:::ffff:1.2.3.4]>", 0, 0, "u@[IPv6:::ffff:1.2.3.4]", NULL},
	{"<u@[127.0.0.256]>", 0, 0, NULL, "bad address literal"},
	{"<u@[127.0.0]>", 0, 0, NULL, "bad address literal"},
	{"<u@[::1]>", 0, 0, NULL, "unsupported address literal"},
	{"<u@[IPv6:1.2.3.4]>", 0, 0, NULL, "bad address literal"},
	{"<u@[IPv6:]>", 0, 0, NULL, "address literal"},
	{"<u@[]>", 0, 0, NULL, "bad address literal"},
	{"<u@[127.0.0.1>", 0, 0, NULL, "unterminated address literal"},
	{"<u@[127.0.0.1]x>", 0, 0, NULL, "bad character in domain"},
	{"<u@[x:y]>", 0, 0, NULL, "unsupported"},
	/* postmaster */
	{"<postmaster>", 0, 0, "postmaster", NULL},
	{"<PostMaster>", 0, 0, "postmaster", NULL},
	{"<postmaste>", 0, 0, NULL, "missing '@domain'"},
	{"<\"postmaster\">", 0, 0, NULL, "missing '@domain'"},
	{"postmaster", 0, L, NULL, "missing '@domain'"},
	/* lengths: local 64, domain 255, path 256 */
	{"<aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "@d>", 0, 0,
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "@d", NULL},
	{"<aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "@d>", 0, 0, NULL, "local part longer than 64"},
	{"<\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\""
	    "@d>", 0, 0, NULL, "local part longer than 64"},
	{"<a@aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    ".b>", 0, 0, "a@aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaa.b", NULL},
	{"<a@aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "a.b>", 0, 0, NULL, "label longer than 63"},
	/* CR, LF, NUL anywhere */
	{"<a\r@d>", 0, 0, NULL, "bad character"},
	{"<a@d\r\n>", 0, 0, NULL, "bad character"},
	{"<a\n@d>", 0, 0, NULL, "bad character"},
	{"<a\0b@d>", 7, 0, NULL, "bad character"},
	{"<a@d\0>", 6, 0, NULL, "bad character"},
	{"<a@[1.2.3.4\0]>", 14, 0, NULL, "address literal"},
	/* UTF-8 (RFC 6531) */
	{"<j\xc3\xb6rg@d>", 0, 0, NULL, "need SMTPUTF8"},
	{"<j\xc3\xb6rg@d>", 0, U, "j\xc3\xb6rg@d", NULL},
	{"<a@b\xc3\xbcro.example>", 0, U, "a@b\xc3\xbcro.example", NULL},
	{"<a@b\xc3\xbcro.example>", 0, 0, NULL, "need SMTPUTF8"},
	{"<\"j\xc3\xb6 rg\"@d>", 0, U, "j\xc3\xb6 rg@d", NULL},
	{"<\xe2\x82\xac@\xf0\x9f\x98\x80>", 0, U,
	    "\xe2\x82\xac@\xf0\x9f\x98\x80", NULL},
	{"<j\xc3rg@d>", 0, U, NULL, "invalid UTF-8"},		/* cut */
	{"<j\xb6rg@d>", 0, U, NULL, "invalid UTF-8"},		/* stray */
	{"<j\xc0\xafrg@d>", 0, U, NULL, "invalid UTF-8"},	/* overlong */
	{"<j\xed\xa0\x80@d>", 0, U, NULL, "invalid UTF-8"},	/* surrogate */
	{"<j\xf4\x90\x80\x80@d>", 0, U, NULL, "invalid UTF-8"},	/* > 10FFFF */
	{"<j@d\xff>", 0, U, NULL, "invalid UTF-8"},
	{"<j\xc3\xb6", 0, U, NULL, "missing '@domain'"},
	/* lenient: a space before, no brackets */
	{" <a@b>", 0, 0, NULL, "missing '<'"},
	{" <a@b>", 0, L, "a@b", NULL},
	{"   <a@b>", 0, L, "a@b", NULL},
	{"a@b", 0, 0, NULL, "missing '<'"},
	{"a@b", 0, L, "a@b", NULL},
	{" a@b", 0, L, "a@b", NULL},
	{"\"a b\"@d", 0, L, "a b@d", NULL},
	{"a@b>", 0, L, NULL, "missing '<'"},
	{"a@b,c", 0, L, NULL, "bad character after address"},
	{"", 0, L, NULL, "missing address"},
	{"   ", 0, L, NULL, "missing address"},
	{"", 0, 0, NULL, "missing '<'"},
	{"<", 0, 0, NULL, "empty local part"},
	{"a b", 0, L, NULL, "missing '@domain'"},
};

/* check_path - run one case with optional trailing text */
static void
check_path(size_t i, const char *suffix)
{
	struct buf in = BUF_INIT, out = BUF_INIT, why = BUF_INIT;
	size_t len = paths[i].len ? paths[i].len : strlen(paths[i].in);
	size_t consumed = 12345;
	int r;

	buf_append(&in, paths[i].in, len);
	buf_puts(&in, suffix);
	r = addr_parse_path(in.data, in.len, paths[i].flags, &out, &consumed,
	    &why);
	if (paths[i].want != NULL) {
		if (r != 0 || strcmp(out.data, paths[i].want) != 0 ||
		    consumed != len)
			fprintf(stderr, "  case %zu \"%s\"+\"%s\": %d \"%s\" "
			    "(%s) consumed %zu\n", i, paths[i].in, suffix, r,
			    out.data, why.data, consumed);
		T_EQ_INT(r, 0);
		T_EQ_STR(out.data, paths[i].want);
		T_EQ_INT(consumed, len);
	} else {
		if (r != -1 || (paths[i].why && !strstr(why.data,
		    paths[i].why)))
			fprintf(stderr, "  case %zu \"%s\"+\"%s\": %d \"%s\"\n",
			    i, paths[i].in, suffix, r, why.data);
		T_EQ_INT(r, -1);
		T_EQ_INT(out.len, 0);
		T_ASSERT(strncmp(why.data, "bad address syntax: ", 20) == 0);
		if (suffix[0] == '\0' && paths[i].why != NULL)
			T_ASSERT(strstr(why.data, paths[i].why) != NULL);
	}
	buf_free(&in);
	buf_free(&out);
	buf_free(&why);
}

static void
test_path_table(void)
{
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		check_path(i, "");
}

/* ESMTP parameters after the path: consumed stops right after '>' */
static void
test_path_with_params(void)
{
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		const char *in = paths[i].in;
		size_t len = paths[i].len ? paths[i].len : strlen(in);

		/* a failure at the very end would change with a suffix */
		if (paths[i].want == NULL && (len == 0 ||
		    (in[len - 1] != '>' && in[0] == '<') ||
		    (paths[i].flags & ADDR_LENIENT)))
			continue;
		check_path(i, " SIZE=1000 BODY=8BITMIME");
		if (in[0] == '<')
			check_path(i, ">x");
	}
}

/* every prefix of a good bracketed path is refused */
static void
test_path_prefixes(void)
{
	struct buf out = BUF_INIT, why = BUF_INIT;

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		const char *in = paths[i].in;
		size_t len = paths[i].len ? paths[i].len : strlen(in);

		if (paths[i].want == NULL || in[0] != '<')
			continue;
		for (size_t cut = 0; cut < len; cut++) {
			size_t consumed = 0;
			int r = addr_parse_path(in, cut,
			    paths[i].flags & ~ADDR_LENIENT, &out, &consumed,
			    &why);

			if (r != -1)
				fprintf(stderr, "  \"%.*s\" accepted\n",
				    (int)cut, in);
			T_EQ_INT(r, -1);
		}
	}
	buf_free(&out);
	buf_free(&why);
}

/* put_n - append n copies of c */
static void
put_n(struct buf *b, int c, int n)
{
	for (int i = 0; i < n; i++)
		buf_putc(b, c);
}

/* total path length: 256 octets with the brackets */
static void
test_path_length(void)
{
	struct buf in = BUF_INIT, out = BUF_INIT, why = BUF_INIT;
	size_t consumed;

	/* '<' + local 64 + '@' + domain 189 + '>' = 256 */
	buf_puts(&in, "<");
	put_n(&in, 'l', 64);
	buf_puts(&in, "@");
	for (int i = 0; i < 2; i++) {
		put_n(&in, 'd', 63);
		buf_putc(&in, '.');
	}
	put_n(&in, 'd', 61);
	buf_puts(&in, ">");
	T_EQ_INT(in.len, 256);
	T_EQ_INT(addr_parse_path(in.data, in.len, 0, &out, &consumed, &why),
	    0);
	T_EQ_INT(consumed, 256);
	T_EQ_INT(out.len, 254);
	/* one more octet */
	buf_truncate(&in, in.len - 1);
	buf_puts(&in, "d>");
	T_EQ_INT(addr_parse_path(in.data, in.len, 0, &out, &consumed, &why),
	    -1);
	T_ASSERT(strstr(why.data, "longer than 256") != NULL);
	/* the same as a bare mailbox */
	T_EQ_INT(addr_parse_mailbox(in.data + 1, in.len - 2, 0, &out, &why),
	    -1);
	T_EQ_INT(addr_parse_mailbox(in.data + 1, in.len - 3, 0, &out, &why),
	    0);
	/* and lenient without brackets */
	T_EQ_INT(addr_parse_path(in.data + 1, in.len - 2, ADDR_LENIENT, &out,
	    &consumed, &why), -1);
	T_EQ_INT(addr_parse_path(in.data + 1, in.len - 3, ADDR_LENIENT, &out,
	    &consumed, &why), 0);
	/* a source route counts too */
	buf_set(&in, "<@");
	for (int i = 0; i < 3; i++) {
		put_n(&in, 'r', 63);
		buf_putc(&in, '.');
	}
	buf_puts(&in, "r:");
	put_n(&in, 'l', 64);
	buf_puts(&in, "@d>");
	T_EQ_INT(addr_parse_path(in.data, in.len, 0, &out, &consumed, &why),
	    -1);
	T_ASSERT(strstr(why.data, "longer than 256") != NULL);
	/* a domain over 255 */
	buf_set(&in, "a@");
	for (int i = 0; i < 4; i++) {
		put_n(&in, 'd', 63);
		buf_putc(&in, '.');
	}
	buf_puts(&in, "d");
	T_EQ_INT(addr_parse_mailbox(in.data, in.len, 0, &out, &why), -1);
	T_ASSERT(strstr(why.data, "domain longer than 255") != NULL);
	buf_free(&in);
	buf_free(&out);
	buf_free(&why);
}

static void
test_mailbox(void)
{
	struct buf out = BUF_INIT, why = BUF_INIT;

	T_EQ_INT(addr_parse_mailbox("a@b", 3, 0, &out, &why), 0);
	T_EQ_STR(out.data, "a@b");
	T_EQ_INT(addr_parse_mailbox("\"x y\"@b", 7, 0, &out, &why), 0);
	T_EQ_STR(out.data, "x y@b");
	T_EQ_INT(addr_parse_mailbox("a@b ", 4, 0, &out, &why), -1);
	T_EQ_INT(out.len, 0);
	T_EQ_INT(addr_parse_mailbox("<a@b>", 5, 0, &out, &why), -1);
	T_EQ_INT(addr_parse_mailbox("postmaster", 10, 0, &out, &why), -1);
	T_EQ_INT(addr_parse_mailbox("", 0, 0, &out, &why), -1);
	T_EQ_INT(addr_parse_mailbox("a@b\xc3\xbc", 5, 0, &out, &why), -1);
	T_EQ_INT(addr_parse_mailbox("a@b\xc3\xbc", 5, ADDR_ALLOW_UTF8, &out,
	    &why), 0);
	/* not NUL-terminated: nothing past len is read */
	T_EQ_INT(addr_parse_mailbox("a@bXYZ", 3, 0, &out, &why), 0);
	T_EQ_STR(out.data, "a@b");
	buf_free(&out);
	buf_free(&why);
}

static void
test_helpers(void)
{
	struct buf out = BUF_INIT;

	T_EQ_STR(addr_domain("a@b.c"), "b.c");
	T_EQ_STR(addr_domain("a@b@c.d"), "c.d");
	T_EQ_STR(addr_domain("postmaster"), "");
	T_EQ_STR(addr_domain(""), "");
	addr_lookup_key(&out, "Al.Ice@Example.ORG");
	T_EQ_STR(out.data, "al.ice@example.org");
	addr_lookup_key(&out, "J\xc3\x96rg@D");
	T_EQ_STR(out.data, "j\xc3\x96rg@d");	/* ASCII only */
	T_EQ_INT(addr_strip_extension("user+tag@d", '+', &out), 1);
	T_EQ_STR(out.data, "user@d");
	T_EQ_INT(addr_strip_extension("user+a+b@d", '+', &out), 1);
	T_EQ_STR(out.data, "user@d");
	T_EQ_INT(addr_strip_extension("user@d+x", '+', &out), 0);
	T_EQ_INT(addr_strip_extension("+tag@d", '+', &out), 0);
	T_EQ_INT(addr_strip_extension("user+tag@d", 0, &out), 0);
	T_EQ_INT(addr_strip_extension("user-tag@d", '-', &out), 1);
	T_EQ_STR(out.data, "user@d");
	T_EQ_INT(addr_strip_extension("owner+x", '+', &out), 1);
	T_EQ_STR(out.data, "owner");
	T_EQ_INT(addr_is_utf8("a@b"), 0);
	T_EQ_INT(addr_is_utf8("\xc3\xb6@b"), 1);
	buf_free(&out);
}

static void
test_externalize(void)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{"a@b", "a@b"},
		{"a.b+c@d", "a.b+c@d"},
		{"a b@d", "\"a b\"@d"},
		{"a\"b@d", "\"a\\\"b\"@d"},
		{"a\\b@d", "\"a\\\\b\"@d"},
		{"a..b@d", "\"a..b\"@d"},
		{".a@d", "\".a\"@d"},
		{"a.@d", "\"a.\"@d"},
		{"a@b@d", "\"a@b\"@d"},
		{"j\xc3\xb6rg@d", "j\xc3\xb6rg@d"},
		{"postmaster", "postmaster"},
		{"", ""},
		{"u@[127.0.0.1]", "u@[127.0.0.1]"},
	};
	struct buf out = BUF_INIT, back = BUF_INIT, why = BUF_INIT;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t consumed;

		buf_set(&out, "<");
		addr_externalize(&out, cases[i].in);
		buf_puts(&out, ">");
		buf_truncate(&out, out.len - 1);
		T_EQ_STR(out.data + 1, cases[i].want);
		/* external form parses back to the internal one */
		buf_puts(&out, ">");
		T_EQ_INT(addr_parse_path(out.data, out.len, ADDR_ALLOW_NULL |
		    ADDR_ALLOW_UTF8, &back, &consumed, &why), 0);
		T_EQ_STR(back.data, cases[i].in);
	}
	/* appends */
	buf_set(&out, "x:");
	addr_externalize(&out, "a b@c");
	T_EQ_STR(out.data, "x:\"a b\"@c");
	buf_free(&out);
	buf_free(&back);
	buf_free(&why);
}

static void
test_xtext(void)
{
	static const struct {
		const char *enc;
		const char *dec;	/* NULL: must fail */
	} cases[] = {
		{"", ""},
		{"abc", "abc"},
		{"a+2Bb", "a+b"},
		{"a+3Db", "a=b"},
		{"a+2bb", "a+b"},		/* lowercase accepted */
		{"rfc822;a+40b", "rfc822;a@b"},
		{"+20", " "},
		{"+C3+B6", "\xc3\xb6"},
		{"a+", NULL},
		{"a+2", NULL},
		{"a+2G", NULL},
		{"a+G2", NULL},
		{"a=b", NULL},
		{"a b", NULL},
		{"a\tb", NULL},
		{"a\x7f", NULL},
		{"a\xc3\xb6", NULL},
		{"a+0D+0A", NULL},		/* no controls decoded */
		{"a+00", NULL},
		{"a+09", NULL},
		{"a+7F", NULL},
	};
	struct buf out = BUF_INIT, enc = BUF_INIT;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = xtext_decode(cases[i].enc, strlen(cases[i].enc), &out);

		if (cases[i].dec == NULL) {
			if (r != -1)
				fprintf(stderr, "  \"%s\" decoded\n",
				    cases[i].enc);
			T_EQ_INT(r, -1);
			T_EQ_INT(out.len, 0);
		} else {
			T_EQ_INT(r, 0);
			T_EQ_STR(out.data, cases[i].dec);
		}
	}
	/* encode: what must be, uppercase; decode gives it back */
	buf_reset(&enc);
	xtext_encode("a+b=c d\xc3\xb6~!", &enc);
	T_EQ_STR(enc.data, "a+2Bb+3Dc+20d+C3+B6~!");
	T_EQ_INT(xtext_decode(enc.data, enc.len, &out), 0);
	T_EQ_STR(out.data, "a+b=c d\xc3\xb6~!");
	/* every printable byte and every high byte round-trips */
	{
		char all[256];
		size_t n = 0;

		for (int c = 32; c < 256; c++)
			if (c != 127)
				all[n++] = (char)c;
		all[n] = '\0';
		buf_reset(&enc);
		xtext_encode(all, &enc);
		for (size_t i = 0; i < enc.len; i++)
			T_ASSERT(enc.data[i] >= 33 && enc.data[i] <= 126 &&
			    enc.data[i] != '=');
		T_EQ_INT(xtext_decode(enc.data, enc.len, &out), 0);
		T_EQ_MEM(out.data, out.len, all, n);
	}
	/* not NUL-terminated input: only len bytes */
	T_EQ_INT(xtext_decode("ab+41zz", 5, &out), 0);
	T_EQ_STR(out.data, "abA");
	buf_free(&out);
	buf_free(&enc);
}

static const struct test_case cases[] = {
	{"path table", test_path_table},
	{"path with parameters", test_path_with_params},
	{"path prefixes", test_path_prefixes},
	{"path length", test_path_length},
	{"mailbox", test_mailbox},
	{"helpers", test_helpers},
	{"externalize", test_externalize},
	{"xtext", test_xtext},
	{0},
};

int
main(void)
{
	return test_run(cases);
}
