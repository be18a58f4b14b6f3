/*
 * signer_req_test - the signer's request decoder: a good request and
 * every way one is refused, and the domain rule (a domain becomes a path
 * under dkim_directory).
 */
#include <string.h>

#include "base/buf.h"
#include "base/test.h"
#include "mail/ipc.h"
#include "signer.h"

#define HASH "e3b0c44298fc1c149afbf4c8996fb924" \
	"27ae41e4649b934ca495991b7852b855"
#define BADHASH "zzb0c44298fc1c149afbf4c8996fb924" \
	"27ae41e4649b934ca495991b7852b855"

/* build - a message of name/value pairs (NULL-terminated) */
static void
build(struct ipc_msg *m, const char *const *pairs)
{
	ipc_msg_init(m);
	for (; pairs[0] != NULL; pairs += 2)
		ipc_put_str(m, pairs[0], pairs[1]);
}

static void
test_good(void)
{
	static const char *const p[] = {"request", "sign", "domain",
	    "example.test", "header", "From: a@example.test\r\n",
	    "body_hash", HASH, NULL};
	struct ipc_msg m;
	struct signer_req r;
	struct buf why = BUF_INIT;

	build(&m, p);
	T_EQ_INT(signer_req_parse(&m, &r, &why), 0);
	T_EQ_STR(r.domain, "example.test");
	T_EQ_INT(r.header_len, 22);
	T_EQ_INT(r.bh[0], 0xe3);
	T_EQ_INT(r.bh[31], 0x55);
	ipc_msg_free(&m);
	buf_free(&why);
}

static const struct {
	const char *name;
	const char *const pairs[12];
	const char *why;
} bad[] = {
	{"no request", {"domain", "example.test", "header", "F: x\r\n",
	    "body_hash", HASH}, "request is not"},
	{"other request", {"request", "verify", "domain", "example.test",
	    "header", "F: x\r\n", "body_hash", HASH}, "request is not"},
	{"unknown attribute", {"request", "sign", "domain", "example.test",
	    "header", "F: x\r\n", "body_hash", HASH, "user", "x"},
	    "user"},
	{"repeated domain", {"request", "sign", "domain", "example.test",
	    "domain", "other.test", "header", "F: x\r\n", "body_hash", HASH},
	    "repeated"},
	{"no domain", {"request", "sign", "header", "F: x\r\n",
	    "body_hash", HASH}, "domain"},
	{"path domain", {"request", "sign", "domain", "../etc", "header",
	    "F: x\r\n", "body_hash", HASH}, "domain"},
	{"upper case domain", {"request", "sign", "domain", "Example.test",
	    "header", "F: x\r\n", "body_hash", HASH}, "domain"},
	{"empty header", {"request", "sign", "domain", "example.test",
	    "header", "", "body_hash", HASH}, "header"},
	{"short hash", {"request", "sign", "domain", "example.test",
	    "header", "F: x\r\n", "body_hash", "abcd"}, "hash"},
	{"hash not hex", {"request", "sign", "domain", "example.test",
	    "header", "F: x\r\n", "body_hash",
	    BADHASH}, "hash"},
};

static void
test_bad(void)
{
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *p[13];
		struct ipc_msg m;
		struct signer_req r;
		struct buf why = BUF_INIT;
		size_t n = 0;

		for (; n < 12 && bad[i].pairs[n] != NULL; n++)
			p[n] = bad[i].pairs[n];
		p[n] = NULL;
		build(&m, p);
		T_EQ_INT(signer_req_parse(&m, &r, &why), -1);
		if (strstr(buf_cstr(&why), bad[i].why) == NULL)
			T_FAIL_("%s: why \"%s\" lacks \"%s\"", bad[i].name,
			    buf_cstr(&why), bad[i].why);
		ipc_msg_free(&m);
		buf_free(&why);
	}
}

static void
test_header_bound(void)
{
	struct buf big = BUF_INIT, why = BUF_INIT;
	struct ipc_msg m;
	struct signer_req r;

	for (int i = 0; i < SIGNER_HEADER_MAX; i++)
		buf_putc(&big, 'x');
	for (int extra = 0; extra < 2; extra++) {
		if (extra)
			buf_putc(&big, 'x');
		build(&m, (const char *const[]){"request", "sign", "domain",
		    "example.test", "header", buf_cstr(&big), "body_hash",
		    HASH, NULL});
		buf_reset(&why);
		T_EQ_INT(signer_req_parse(&m, &r, &why), extra ? -1 : 0);
		ipc_msg_free(&m);
	}
	buf_free(&big);
	buf_free(&why);
}

static void
test_domains(void)
{
	static const char *const good[] = {"example.test", "a.b-c.d", "x",
	    "xn--bcher-kva.example", NULL};
	static const char *const badd[] = {"", ".", ".example.test",
	    "example.test.", "a..b", "a/b", "-a.test", "a-.test", "a_b.test",
	    "A.test", "ex ample.test", NULL};
	char label[80];

	for (int i = 0; good[i] != NULL; i++)
		if (!signer_domain_ok(good[i]))
			T_FAIL_("\"%s\" refused", good[i]);
	for (int i = 0; badd[i] != NULL; i++)
		if (signer_domain_ok(badd[i]))
			T_FAIL_("\"%s\" taken", badd[i]);
	memset(label, 'a', 64);
	label[64] = '\0';
	T_ASSERT(!signer_domain_ok(label));
	label[63] = '\0';
	T_ASSERT(signer_domain_ok(label));
}

static const struct test_case cases[] = {
	{"good request", test_good},
	{"bad requests", test_bad},
	{"header bound", test_header_bound},
	{"domains", test_domains},
	{NULL, NULL},
};

int
main(void)
{
	return test_run(cases);
}
