/*
 * imap_list_fuzz - the LIST pattern matcher (imapd/imapd_list.c).
 *
 * Input: a pattern, a NUL, a mailbox name. Properties checked:
 *  - the matcher agrees with a plain recursive one (run only on short
 *    inputs, where its backtracking stays cheap);
 *  - it never crashes or runs long on any pattern up to
 *    IMAPD_PATTERN_MAX against any name.
 */
#include <stdlib.h>
#include <string.h>

#include "imapd.h"
#include "imapd_mailbox.h"
#include "imapd_store.h"
#include "fuzz.h"

/* ref - the textbook matcher: '*' anything, '%' anything but '.' */
static bool
ref(const char *p, const char *n)
{
	if (*p == '\0')
		return *n == '\0';
	if (*p == '*' || *p == '%') {
		for (const char *q = n;; q++) {
			if (ref(p + 1, q))
				return true;
			if (*q == '\0' || (*p == '%' && *q == IMAPD_DELIM))
				return false;
		}
	}
	return *p == *n && ref(p + 1, n + 1);
}

/* wildcards - how many '*' and '%' p holds */
static size_t
wildcards(const char *p)
{
	size_t n = 0;

	for (; *p != '\0'; p++)
		n += *p == '*' || *p == '%';
	return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size);
	char *pat, *name;
	bool got;

	if (nul == NULL || (size_t)(nul - data) > IMAPD_PATTERN_MAX ||
	    size - (size_t)(nul - data) > 512)
		return 0;
	pat = fuzz_cstr(data, (size_t)(nul - data));
	name = fuzz_cstr(nul + 1, size - (size_t)(nul - data) - 1);
	got = imapd_list_match(pat, name);
	/* the textbook matcher backtracks: with 11 wildcards against 24
	 * bytes it took over 10 s, so it checks at most 5 of them */
	if (strlen(pat) <= 12 && strlen(name) <= 24 &&
	    wildcards(pat) <= 5)
		FUZZ_CHECK(got == ref(pat, name));
	free(pat);
	free(name);
	return 0;
}
