/*
 * outcome - the result of one delivery or one resolution (outcome.h).
 */
#include <stdarg.h>

#include "base/buf.h"
#include "base/str.h"
#include "mail/outcome.h"

/* outcome_init - no failure yet */
void
outcome_init(struct outcome *o)
{
	o->status = OUTCOME_OK;
	o->dsn[0] = '\0';
	buf_init(&o->reason);
}

/* outcome_free - release the reason */
void
outcome_free(struct outcome *o)
{
	buf_free(&o->reason);
	o->status = OUTCOME_OK;
	o->dsn[0] = '\0';
}

/* outcome_set - replace the outcome */
void
outcome_set(struct outcome *o, enum outcome_status st, const char *dsn,
    const char *fmt, ...)
{
	va_list ap;

	o->status = st;
	str_lcpy(o->dsn, dsn, sizeof(o->dsn));
	buf_reset(&o->reason);
	va_start(ap, fmt);
	buf_vprintf(&o->reason, fmt, ap);
	va_end(ap);
}
