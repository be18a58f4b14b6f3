/*
 * auth_log - the one log line per login attempt, made for admins and for
 * fail2ban (etc/fail2ban/filter.d/herald.conf).
 *
 * The fixed part comes first and holds only checked text: the service
 * name and the client address (both restricted to [A-Za-z0-9._:%-]), so
 * "client=[IP]" is always the first such text on the line and fail2ban's
 * anchored regex cannot be steered by what a client types as its login
 * name. The user name comes after it, with control and non-ASCII bytes
 * escaped and cut at AUTH_LOG_USER_MAX bytes.
 */
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/str.h"
#include "auth.h"

#define AUTH_LOG_USER_MAX 100	/* bytes of a login name shown */

/* auth_log_token_ok - 1..max of [A-Za-z0-9._:%-] */
bool
auth_log_token_ok(const char *s, size_t max)
{
	size_t n;

	if (s == NULL || (n = strlen(s)) == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == ':' ||
		    c == '-' || c == '_' || c == '%'))
			return false;
	}
	return true;
}

/* auth_log_user - printable, bounded copy of untrusted user text; "<"
 * and ">" are escaped too, so the user=<...> field cannot be closed */
void
auth_log_user(struct buf *out, const char *user)
{
	size_t n = strlen(user), take = n < AUTH_LOG_USER_MAX ? n :
	    AUTH_LOG_USER_MAX;

	for (size_t i = 0; i < take; i++) {
		unsigned char c = (unsigned char)user[i];

		if (c == '<' || c == '>' || c == '[' || c == ']' ||
		    c == '\\') {
			buf_printf(out, "\\x%02x", c);
		} else {
			str_printable(out, user + i, 1, 1);
		}
	}
	if (take < n)
		buf_puts(out, "...");
}

/* auth_log_time - "2026-11-23 23:10:00 UTC" */
void
auth_log_time(struct buf *out, long long t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	char text[64];

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(text, sizeof(text), "%Y-%m-%d %H:%M:%S UTC", &tm) == 0) {
		buf_printf(out, "@%lld", t);
		return;
	}
	buf_puts(out, text);
}

/* auth_log_line - the line about one request */
void
auth_log_line(struct buf *out, enum auth_result result, const char *service,
    const char *client, const char *user, long long failures,
    long long delay_ms, const char *reason)
{
	static const char *const what[] = {
		[AUTH_OK] = "login",
		[AUTH_FAIL] = "login failed",
		[AUTH_LOCKED] = "login locked",
		[AUTH_TEMPFAIL] = "login tempfail",
	};

	buf_printf(out, "%s: service=%s client=[%s] user=<", what[result],
	    service, client);
	auth_log_user(out, user);
	buf_putc(out, '>');
	if (result == AUTH_FAIL) {
		buf_printf(out, " failures=%lld delay=", failures);
		if (delay_ms % 1000 == 0)
			buf_printf(out, "%llds", delay_ms / 1000);
		else
			buf_printf(out, "%lld.%03llds", delay_ms / 1000,
			    delay_ms % 1000);
	}
	if (result != AUTH_OK && reason != NULL && *reason != '\0')
		buf_printf(out, ": %s", reason);
}
