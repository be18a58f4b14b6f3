/*
 * sendmail_fuzz - what the sendmail command does with what a local
 * program hands it: the arguments (options, sender, recipients) and the
 * message on standard input (line ends, the "." line, -t's header
 * recipients).
 *
 * Input: byte 0 holds dot_ends (bit 0) and the number of chunk sizes
 * that follow (bits 1-3); then those sizes; then the arguments,
 * NUL-separated, up to the first "\0\0"; then the message. Without a
 * "\0\0" it is all message and the arguments are "-t".
 *
 * Checked:
 *  - the line-end normaliser gives the same output and the same "."
 *    verdict whether the message comes at once or in the chunks the
 *    sizes give; the output has no CR or LF outside a CRLF pair; with
 *    dot_ends off it is the input with only its line ends changed;
 *  - no address the argument check accepts (-f, the arguments, the
 *    header's) holds a byte below 0x20 or 0x7f; submit.c's own check
 *    accepts every envelope sendmail_env_build accepts; and the form
 *    written on the wire parses back, as one path, to the same address.
 */
#include <string.h>

#include "base/buf.h"
#include "mail/addr.h"
#include "mail/submit.h"
#include "sendmail.h"
#include "fuzz.h"

#define FUZZ_ARGS_MAX 32

/* normalise - the message through the normaliser in chunks of cuts[]
 * (cycled; none: one chunk); *done_r: a "." line ended it */
static void
normalise(const char *p, size_t n, bool dot_ends, const uint8_t *cuts,
    size_t ncuts, struct buf *out, bool *done_r)
{
	struct sendmail_eol e;
	size_t off = 0, k = 0;

	sendmail_eol_init(&e, dot_ends);
	while (off < n && !e.done) {
		size_t want = ncuts ? (size_t)cuts[k++ % ncuts] % 17 + 1 :
		    n - off;
		size_t take = want < n - off ? want : n - off;
		size_t used = sendmail_eol_feed(&e, p + off, take, out);

		FUZZ_CHECK(used <= take);
		FUZZ_CHECK(used == take || e.done);
		off += take;
	}
	sendmail_eol_end(&e, out);
	*done_r = e.done;
}

/* bare_line_end - a CR or LF outside a CRLF pair in s[0..n)? */
static bool
bare_line_end(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\r' && (i + 1 == n || s[i + 1] != '\n'))
			return true;
		if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
			return true;
	}
	return false;
}

/* no_eol - s[0..n) without its CR and LF bytes */
static void
no_eol(const char *s, size_t n, struct buf *out)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != '\r' && s[i] != '\n')
			buf_putc(out, s[i]);
}

/* check_wire - addr (internal form, accepted) may go on the wire */
static void
check_wire(const char *addr, bool null_ok)
{
	struct buf ext = BUF_INIT, back = BUF_INIT, why = BUF_INIT;
	size_t used = 0;

	for (const char *p = addr; *p != '\0'; p++)
		FUZZ_CHECK((unsigned char)*p >= 0x20 && *p != 0x7f);
	FUZZ_CHECK(null_ok || *addr != '\0');
	/* as submit.c writes it: "<" external form ">" */
	buf_putc(&ext, '<');
	addr_externalize(&ext, addr);
	buf_putc(&ext, '>');
	FUZZ_CHECK(addr_parse_path(ext.data, ext.len, ADDR_ALLOW_UTF8 |
	    ADDR_ALLOW_NULL, &back, &used, &why) == 0);
	FUZZ_CHECK(used == ext.len);
	FUZZ_CHECK(strcmp(buf_cstr(&back), addr) == 0);
	buf_free(&ext);
	buf_free(&back);
	buf_free(&why);
}

/* check_one - sendmail_env_address on s, both ways */
static void
check_one(const char *s)
{
	struct buf out = BUF_INIT, why = BUF_INIT;

	if (sendmail_env_address(s, 0, "h.test", &out, &why) == 0)
		check_wire(buf_cstr(&out), false);
	buf_reset(&why);
	if (sendmail_env_address(s, SENDMAIL_ADDR_SENDER, "h.test", &out,
	    &why) == 0)
		check_wire(buf_cstr(&out), true);
	buf_free(&out);
	buf_free(&why);
}

/* check_envelope - the arguments and -t's header as sendmail takes them */
static void
check_envelope(char **argv, int argc, struct buf *msg)
{
	struct buf why = BUF_INIT, hdr = BUF_INIT;
	struct sendmail_opts o;
	struct sendmail_env env;
	struct submit_msg m;
	size_t nhdr = 0;

	for (int i = 1; i < argc; i++)
		check_one(argv[i]);
	if (sendmail_parse_opts(argc, argv, &o, &why) < 0 || o.refuse)
		goto out;
	if (o.header_rcpts)
		sendmail_header_rcpts(msg, &hdr, &nhdr);
	for (size_t i = 0, off = 0; i < nhdr && off < hdr.len; i++) {
		check_one(hdr.data + off);
		off += strlen(hdr.data + off) + 1;
	}
	buf_reset(&why);
	if (sendmail_env_build(&o, "fuzz", &hdr, nhdr, "h.test", &env,
	    &why) == 0) {
		FUZZ_CHECK(env.nrcpt > 0);
		check_wire(buf_cstr(&env.sender), true);
		for (size_t i = 0; i < env.nrcpt; i++)
			check_wire(env.rcpt[i], false);
		memset(&m, 0, sizeof(m));
		m.sender = buf_cstr(&env.sender);
		m.rcpts = (const char *const *)env.rcpt;
		m.nrcpt = env.nrcpt;
		m.data = msg->data;
		m.len = msg->len;
		m.helo = "localhost";
		buf_reset(&why);
		FUZZ_CHECK(submit_check(&m, &why) == 0);
	}
	sendmail_env_free(&env);
out:
	buf_free(&why);
	buf_free(&hdr);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf whole = BUF_INIT, cut = BUF_INIT, a = BUF_INIT,
	    b = BUF_INIT, args = BUF_INIT;
	char *argv[FUZZ_ARGS_MAX + 1];
	const char *p, *sep;
	size_t ncuts, n;
	bool dot_ends, done1, done2;
	int argc = 0;

	if (size < 1)
		return 0;
	dot_ends = data[0] & 1;
	ncuts = (data[0] >> 1) % 8;
	if (size < 1 + ncuts)
		return 0;
	p = (const char *)data + 1 + ncuts;
	n = size - 1 - ncuts;

	/* the arguments, up to "\0\0" */
	argv[argc++] = (char *)"sendmail";
	sep = n >= 2 ? memmem(p, n, "\0\0", 2) : NULL;
	if (sep != NULL) {
		buf_append(&args, p, (size_t)(sep - p) + 1);
		for (size_t off = 0; off < args.len && argc < FUZZ_ARGS_MAX;) {
			argv[argc++] = args.data + off;
			off += strlen(args.data + off) + 1;
		}
		n -= (size_t)(sep - p) + 2;
		p = sep + 2;
	} else {
		argv[argc++] = (char *)"-t";
	}
	argv[argc] = NULL;

	/* the message: the same whatever the chunks */
	normalise(p, n, dot_ends, NULL, 0, &whole, &done1);
	normalise(p, n, dot_ends, data + 1, ncuts, &cut, &done2);
	FUZZ_CHECK(done1 == done2);
	FUZZ_CHECK(whole.len == cut.len &&
	    memcmp(whole.data, cut.data, whole.len) == 0);
	FUZZ_CHECK(!bare_line_end(whole.data, whole.len));
	FUZZ_CHECK(whole.len == 0 || (whole.len >= 2 &&
	    memcmp(whole.data + whole.len - 2, "\r\n", 2) == 0));
	if (!dot_ends) {
		FUZZ_CHECK(!done1);
		no_eol(p, n, &a);
		no_eol(whole.data, whole.len, &b);
		FUZZ_CHECK(a.len == b.len &&
		    memcmp(a.data, b.data, a.len) == 0);
	}

	check_envelope(argv, argc, &whole);
	buf_free(&whole);
	buf_free(&cut);
	buf_free(&a);
	buf_free(&b);
	buf_free(&args);
	return 0;
}
