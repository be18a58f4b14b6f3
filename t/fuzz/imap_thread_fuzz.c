/*
 * imap_thread_fuzz - the RFC 5256 base-subject extractor and both
 * threading algorithms (imapd/imap_sort.c, imapd/imap_thread.c) on
 * untrusted headers: the input is up to 200 messages separated by
 * "\n%%\n" (Subject, Date, Message-ID, References, In-Reply-To...).
 * Checked: every message appears exactly once in the THREAD answer of
 * REFERENCES and of ORDEREDSUBJECT, the parentheses balance and no list
 * is empty; the base subject of a subject is a suffix-free, lead-free
 * text (it never starts with a blank or "re:", never ends with a blank
 * or "(fwd)").
 */
#include <string.h>

#include "base/buf.h"
#include "base/mem.h"
#include "imap_search_eval.h"
#include "imap_sort.h"
#include "imap_thread.h"
#include "fuzz.h"

#define MSGS_MAX 200

struct fmsg {
	const char *p;
	size_t n;
};

static int
f_view(void *ctx, uint32_t i, struct imap_msg_view *v)
{
	(void)ctx;
	v->uid = i + 1;
	v->internaldate = 1700000000 + (time_t)(i % 5) * 3600;
	return 0;
}

static int
f_map(void *ctx, uint32_t i, const char **p, size_t *n)
{
	struct fmsg *m = ctx;

	*p = m[i].p;
	*n = m[i].n;
	return 0;
}

/* check - every number 1..n once in out, balanced, no "()" */
static void
check(const struct buf *out, size_t n)
{
	unsigned char *seen = xcalloc(n + 1, 1);
	const char *q = out->data;
	int depth = 0;

	while (*q) {
		if (*q == '(') {
			FUZZ_CHECK(q[1] != ')');
			depth++;
			q++;
		} else if (*q == ')') {
			FUZZ_CHECK(--depth >= 0);
			q++;
		} else if (*q >= '1' && *q <= '9') {
			size_t v = 0;

			while (*q >= '0' && *q <= '9')
				v = v * 10 + (size_t)(*q++ - '0');
			FUZZ_CHECK(v >= 1 && v <= n && seen[v] == 0);
			seen[v] = 1;
		} else {
			FUZZ_CHECK(*q == ' ');
			q++;
		}
	}
	FUZZ_CHECK(depth == 0);
	for (size_t i = 1; i <= n; i++)
		FUZZ_CHECK(seen[i] == 1);
	x_free(&seen);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fmsg msgs[MSGS_MAX];
	struct imap_sort_msg facts[MSGS_MAX];
	struct imap_mailbox_src src = {msgs, 0, f_view, NULL, f_map, NULL};
	const char *s = (const char *)data, *end = s + size;
	struct buf out = BUF_INIT;
	size_t n = 0;

	if (size > 256 * 1024)
		return 0;
	while (n < MSGS_MAX) {
		const char *sep = memmem(s, (size_t)(end - s), "\n%%\n", 4);

		msgs[n].p = s;
		msgs[n].n = sep ? (size_t)(sep - s) + 1 : (size_t)(end - s);
		n++;
		if (sep == NULL)
			break;
		s = sep + 4;
	}
	src.count = (uint32_t)n;
	for (size_t i = 0; i < n; i++) {
		const char *b;
		size_t l;

		imap_sort_msg_load(&src, (uint32_t)i, true, &facts[i]);
		b = facts[i].subject;
		l = strlen(b);
		FUZZ_CHECK(l == 0 || (b[0] != ' ' && b[l - 1] != ' '));
		FUZZ_CHECK(strncmp(b, "re:", 3) != 0);
		FUZZ_CHECK(l < 5 || strcmp(b + l - 5, "(fwd)") != 0);
	}
	imap_thread_build(facts, n, IMAP_THREAD_REFERENCES, false, &out);
	check(&out, n);
	buf_reset(&out);
	imap_thread_build(facts, n, IMAP_THREAD_ORDEREDSUBJECT, false, &out);
	check(&out, n);
	for (size_t i = 0; i < n; i++)
		imap_sort_msg_free(&facts[i]);
	buf_free(&out);
	return 0;
}
