/*
 * config_fuzz - herald.conf parsing (lib/base/config.c) over the real
 * table of settings (lib/mail/params.c): every type, bound and check.
 *
 * Checked: a refused file comes with a reason; an accepted one leaves
 * every setting with a value text, and parsing the settings as printed
 * ("key = value" per changed entry) is accepted again.
 */
#include <string.h>

#include "base/buf.h"
#include "base/config.h"
#include "mail/params.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf why = BUF_INIT, again = BUF_INIT;
	static bool ready;

	if (!ready) {
		cfg_defaults(params_table);
		ready = true;
	}
	cfg_free(params_table);
	cfg_defaults(params_table);
	if (cfg_parse(params_table, "fuzz.conf", (const char *)data, size,
	    &why) == 0) {
		for (struct cfg_entry *e = params_table; e->name; e++) {
			FUZZ_CHECK(e->text != NULL);
			if (e->changed)
				buf_printf(&again, "%s = %s\n", e->name,
				    e->text);
		}
		cfg_free(params_table);
		cfg_defaults(params_table);
		buf_reset(&why);
		if (cfg_parse(params_table, "again.conf", again.data,
		    again.len, &why) != 0) {
			fprintf(stderr, "printed settings refused: %s\n%s",
			    buf_cstr(&why), buf_cstr(&again));
			abort();
		}
	} else {
		FUZZ_CHECK(why.len > 0);
	}
	buf_free(&why);
	buf_free(&again);
	return 0;
}
