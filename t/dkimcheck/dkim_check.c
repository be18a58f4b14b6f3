/*
 * dkim_check - herald's DKIM verifier (lib/mail/dkim.c) for the
 * integration tests, with the key records given on the command line
 * instead of asked from DNS:
 *
 *	dkim_check NAME=TXT... < message
 *
 * NAME is SELECTOR._domainkey.DOMAIN as "heraldctl dkim show --json"
 * prints it, TXT the record's text. One line per DKIM-Signature field:
 * "pass d=D s=S a=A" or "fail d=D s=S a=A: why". Exit 0 when there is at
 * least one signature and every one passes, 1 otherwise, 2 on misuse.
 */
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "mail/dkim.h"

struct dkim_check_keys {
	int n;
	char **rec;		/* NAME=TXT */
};

/* dkim_check_key - dkim_key_fn over the command line's records */
static int
dkim_check_key(const char *domain, const char *selector, struct buf *txt,
    struct buf *why, void *ctx)
{
	const struct dkim_check_keys *k = ctx;
	struct buf name = BUF_INIT;
	int rc = -1;

	buf_printf(&name, "%s._domainkey.%s=", selector, domain);
	for (int i = 0; i < k->n && rc < 0; i++)
		if (strncmp(k->rec[i], name.data, name.len) == 0) {
			buf_puts(txt, k->rec[i] + name.len);
			rc = 0;
		}
	if (rc < 0)
		buf_printf(why, "no key record %.*s", (int)name.len - 1,
		    name.data);
	buf_free(&name);
	return rc;
}

int
main(int argc, char **argv)
{
	struct dkim_check_keys keys = {argc - 1, argv + 1};
	struct dkim_verdict v[DKIM_SIGS_MAX];
	struct buf msg = BUF_INIT;
	char chunk[65536];
	size_t n, nv = 0;
	int pass;

	if (argc < 2) {
		fprintf(stderr, "usage: dkim_check NAME=TXT... < message\n");
		return 2;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
		buf_append(&msg, chunk, n);
	if (ferror(stdin)) {
		perror("stdin");
		return 2;
	}
	pass = dkim_verify(msg.data, msg.len, dkim_check_key, &keys, v,
	    DKIM_SIGS_MAX, &nv);
	for (size_t i = 0; i < nv; i++)
		printf("%s d=%s s=%s a=%s%s%s\n", v[i].pass ? "pass" : "fail",
		    v[i].domain, v[i].selector, v[i].alg, v[i].pass ? "" : ": ",
		    v[i].pass ? "" : v[i].why);
	buf_free(&msg);
	return nv > 0 && (size_t)pass == nv ? 0 : 1;
}
