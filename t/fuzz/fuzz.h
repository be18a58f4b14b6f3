/*
 * fuzz - helpers shared by the libFuzzer targets in t/fuzz/.
 *
 * Each target is one file NAME_fuzz.c with LLVMFuzzerTestOneInput; it
 * feeds untrusted bytes to one parser and, where the parser has a
 * property that must hold (a round trip, the same result at any chunk
 * size), checks it and aborts when it does not, so the fuzzer reports it.
 */
#ifndef T_FUZZ_H
#define T_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* FUZZ_CHECK - a property of the parser; a violation is a finding */
#define FUZZ_CHECK(cond)                                                      \
	do {                                                                  \
		if (!(cond)) {                                                \
			fprintf(stderr, "%s:%d: property failed: %s\n",      \
			    __FILE__, __LINE__, #cond);                       \
			abort();                                              \
		}                                                             \
	} while (0)

/* fuzz_cstr - a NUL-terminated heap copy of data[0..size), as the stream
 * line reader hands lines over (free it) */
static inline char *
fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (s == NULL)
		abort();
	for (size_t i = 0; i < size; i++)
		s[i] = (char)data[i];
	s[size] = '\0';
	return s;
}

#endif
