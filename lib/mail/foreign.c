/*
 * foreign - recognise other protocols' lines (see foreign.h).
 */
#include <string.h>

#include "base/str.h"
#include "mail/foreign.h"

/* foreign_in - verb[0..len) is one of list (any case) */
static bool
foreign_in(const char *verb, size_t len, const char *const *list)
{
	for (const char *const *v = list; v != NULL && *v != NULL; v++)
		if (strlen(*v) == len && str_ncasecmp(*v, verb, len) == 0)
			return true;
	return false;
}

/* foreign_verb - HTTP or proxy method, header line, or one of extra */
bool
foreign_verb(const char *verb, size_t len, const char *const *extra)
{
	static const char *const http[] = {"CONNECT", "GET", "POST", "HEAD",
	    "PUT", "OPTIONS", NULL};

	if (len > 0 && verb[len - 1] == ':')
		return true;	/* "Host:", "User-Agent:" */
	return foreign_in(verb, len, http) || foreign_in(verb, len, extra);
}
