/*
 * smtpd_hdr_test - the header scan of submitted mail: where the fields it
 * adds land, what it notes (Message-ID:, Date:, From: values), bounds,
 * and the same result at every chunk size from 1 byte up.
 */
#include <string.h>

#include "base/buf.h"
#include "base/test.h"
#include "smtpd.h"

static struct buf t_out = BUF_INIT;

/* t_out_fn - collect what the scan passes on */
static void
t_out_fn(void *ctx, const char *p, size_t n)
{
	(void)ctx;
	buf_append(&t_out, p, n);
}

/* t_at_end - mark the insertion point */
static void
t_at_end(struct smtpd_hdr *h, void *ctx)
{
	(void)ctx;
	buf_printf(&t_out, "[%s%s]", h->has_msgid ? "" : "M",
	    h->has_date ? "" : "D");
}

/* t_scan - feed in in chunks of size; the output, and h filled */
static void
t_scan(const char *in, size_t chunk, struct smtpd_hdr *h)
{
	size_t n = strlen(in), off;

	buf_reset(&t_out);
	smtpd_hdr_init(h, t_at_end);
	for (off = 0; off < n; off += chunk)
		smtpd_hdr_feed(h, in + off, n - off < chunk ? n - off : chunk,
		    t_out_fn, NULL);
	smtpd_hdr_end(h, t_out_fn, NULL);
}

struct t_case {
	const char *in;
	const char *out;
	const char *from;
	bool lost;
};

static const struct t_case t_cases[] = {
	{"Subject: x\r\n\r\nbody\r\n",
	    "Subject: x\r\n[MD]\r\nbody\r\n", "", false},
	{"Message-ID: <a@b>\r\nDATE: now\r\n\r\n.\r\n",
	    "Message-ID: <a@b>\r\nDATE: now\r\n[]\r\n.\r\n", "", false},
	{"From: Alice <alice@example.test>\r\n\r\n",
	    "From: Alice <alice@example.test>\r\n[MD]\r\n",
	    " Alice <alice@example.test>", false},
	{"From: a@x,\r\n b@y\r\nFrom: c@z\r\n\r\n",
	    "From: a@x,\r\n b@y\r\nFrom: c@z\r\n[MD]\r\n",
	    " a@x, b@y, c@z", false},
	/* headers only: the fields go at the end */
	{"Subject: x\r\n", "Subject: x\r\n[MD]", "", false},
	{"", "[MD]", "", false},
	/* no empty line: a line that is no field ends the section */
	{"Subject: x\r\nthis is body\r\n",
	    "Subject: x\r\n[MD]\r\nthis is body\r\n", "", false},
	/* ... and gets an empty line before it: a From: after it is body
	 * for every reader, not an unchecked field */
	{"Subject: x\r\nX-Junk\r\nFrom: ceo@x\r\n\r\nb",
	    "Subject: x\r\n[MD]\r\nX-Junk\r\nFrom: ceo@x\r\n\r\nb", "",
	    false},
	/* a bare LF line is an empty line */
	{"Subject: x\n\nb", "Subject: x\n[MD]\nb", "", false},
	{"Subject: x\r\n\tfolded\r\nDate: d\r\n\r\nb",
	    "Subject: x\r\n\tfolded\r\nDate: d\r\n[M]\r\nb", "", false},
	/* a leading blank: the body begins at once */
	{" x: y\r\n", "[MD]\r\n x: y\r\n", "", false},
	{"\r\n", "[MD]\r\n", "", false},
	/* field names are case-insensitive, whole */
	{"message-id: <x>\r\nDated: 1\r\nfrom:a@b\r\n\r\n",
	    "message-id: <x>\r\nDated: 1\r\nfrom:a@b\r\n[D]\r\n", "a@b", false},
	/* blanks before the colon (obsolete syntax): still fields, so a
	 * From: written so is checked too */
	{"Subject : x\r\nFrom \t:b@y\r\nDate :\r\n\r\n",
	    "Subject : x\r\nFrom \t:b@y\r\nDate :\r\n[M]\r\n", "b@y", false},
	{"Subject x\r\n", "[MD]\r\nSubject x\r\n", "", false},
	/* fields in the body are not fields */
	{"\r\nMessage-ID: <x>\r\n", "[MD]\r\nMessage-ID: <x>\r\n", "", false},
	/* an over-long name is passed on, nothing inserted */
	{"XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"
	    "XXXXXXXXXXXXXXXXXXXX: y\r\n\r\n",
	    "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"
	    "XXXXXXXXXXXXXXXXXXXX: y\r\n\r\n", "", true},
};

static void
test_cases(void)
{
	struct smtpd_hdr h;

	memset(&h, 0, sizeof(h));
	for (size_t i = 0; i < sizeof(t_cases) / sizeof(t_cases[0]); i++) {
		const struct t_case *c = &t_cases[i];
		size_t n = strlen(c->in);

		for (size_t chunk = 1; chunk <= n + 1; chunk++) {
			t_scan(c->in, chunk, &h);
			T_EQ_STR(buf_cstr(&t_out), c->out);
			T_EQ_STR(buf_cstr(&h.from), c->from);
			T_EQ_INT(h.lost, c->lost);
			T_ASSERT(h.done);
		}
	}
	smtpd_hdr_free(&h);
}

static void
test_from_bound(void)
{
	struct smtpd_hdr h;
	struct buf in = BUF_INIT;

	memset(&h, 0, sizeof(h));
	buf_puts(&in, "From: ");
	for (int i = 0; i < 2000; i++)
		buf_puts(&in, "a@b.c,\r\n ");
	buf_puts(&in, "x@y\r\n\r\nbody");
	t_scan(buf_cstr(&in), 7, &h);
	T_ASSERT(h.from_long);
	T_ASSERT(h.from.len <= SMTPD_HDR_FROM_MAX);
	T_EQ_INT(t_out.len, in.len + 4);	/* "[MD]" */
	buf_free(&in);
	smtpd_hdr_free(&h);
}

static const struct test_case cases[] = {
	{"cases at every chunk size", test_cases},
	{"From: text is bounded", test_from_bound},
	{0},
};

int
main(void)
{
	int rc = test_run(cases);

	buf_free(&t_out);
	return rc;
}
