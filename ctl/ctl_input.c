/*
 * ctl_input - checks of what an admin types: domain names, addresses,
 * alias keys, quotas, and a password read from a file descriptor; and
 * ctl_input_arg, which runs one of them on an operand and prints why it
 * was refused, for every command.
 *
 * Everything is normalised the way the directory keys it (lowercase), so
 * "Alice@Example.ORG" and "alice@example.org" are the same user. Local
 * parts that would be unsafe inside a mailbox path (a '/', a leading '.',
 * control characters) are refused here even where RFC 5321 allows them in
 * a quoted string: mail_location puts the local part into a file name.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/str.h"
#include "mail/addr.h"
#include "ctl.h"

#define CTL_DOMAIN_MAX 253
#define CTL_LABEL_MAX 63

/* ctl_input_is_ldh - letter, digit or hyphen */
static bool
ctl_input_is_ldh(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/* ctl_input_domain - a hosted domain name: lowercased into out */
int
ctl_input_domain(const char *s, struct buf *out, struct buf *why)
{
	struct buf d = BUF_INIT;
	const char *label;
	size_t len = strlen(s);

	if (len == 0) {
		buf_puts(why, "empty domain name");
		return -1;
	}
	if (len > CTL_DOMAIN_MAX) {
		buf_printf(why, "domain name longer than %d characters",
		    CTL_DOMAIN_MAX);
		return -1;
	}
	buf_set(&d, s);
	str_lower(d.data);
	label = d.data;
	for (const char *p = d.data;; p++) {
		if (*p != '.' && *p != '\0') {
			if (!ctl_input_is_ldh(*p)) {
				buf_printf(why, "%s: not a domain name "
				    "(letters, digits, '-' and '.' only)", s);
				goto fail;
			}
			continue;
		}
		if (p == label) {
			buf_printf(why, "%s: not a domain name (empty label)",
			    s);
			goto fail;
		}
		if (p - label > CTL_LABEL_MAX) {
			buf_printf(why, "%s: label longer than %d characters",
			    s, CTL_LABEL_MAX);
			goto fail;
		}
		if (*label == '-' || p[-1] == '-') {
			buf_printf(why, "%s: a label may not begin or end "
			    "with '-'", s);
			goto fail;
		}
		if (*p == '\0')
			break;
		label = p + 1;
	}
	buf_set(out, buf_cstr(&d));
	buf_free(&d);
	return 0;
fail:
	buf_free(&d);
	return -1;
}

/* ctl_input_arg - operand s through check into out; -1 after the
 * message */
int
ctl_input_arg(ctl_input_fn *check, const char *s, struct buf *out)
{
	struct buf why = BUF_INIT;
	int r = check(s, out, &why);

	if (r < 0)
		ctl_error("%s", buf_cstr(&why));
	buf_free(&why);
	return r;
}

/* ctl_input_local_safe - the local part can go into a path */
static int
ctl_input_local_safe(const char *addr, const char *shown, struct buf *why)
{
	const char *at = strrchr(addr, '@');

	if (addr[0] == '.' || at == addr) {
		buf_printf(why, "%s: local part may not be empty or begin "
		    "with '.'", shown);
		return -1;
	}
	for (const char *p = addr; p < at; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '/' || c < 0x21 || c == 0x7f) {
			buf_printf(why, "%s: local part may not contain '/', "
			    "blanks or control characters", shown);
			return -1;
		}
	}
	return 0;
}

/* ctl_input_address - local@domain, internal form, lowercased into out */
int
ctl_input_address(const char *s, struct buf *out, struct buf *why)
{
	struct buf parsed = BUF_INIT, reason = BUF_INIT, dom = BUF_INIT;
	const char *at;
	int rc = -1;

	if (strchr(s, '@') == NULL) {
		buf_printf(why, "%s: not an address (local@domain)", s);
		return -1;
	}
	if (addr_parse_mailbox(s, strlen(s), ADDR_ALLOW_UTF8, &parsed,
	    &reason) < 0) {
		buf_printf(why, "%s: not an address: %s", s,
		    buf_cstr(&reason));
		goto out;
	}
	if ((at = strrchr(buf_cstr(&parsed), '@')) == NULL) {
		buf_printf(why, "%s: not an address (local@domain)", s);
		goto out;
	}
	buf_reset(&reason);
	if (ctl_input_domain(at + 1, &dom, &reason) < 0) {
		buf_printf(why, "%s: %s", s, buf_cstr(&reason));
		goto out;
	}
	if (ctl_input_local_safe(buf_cstr(&parsed), s, why) < 0)
		goto out;
	buf_reset(out);
	addr_lookup_key(out, buf_cstr(&parsed));
	rc = 0;
out:
	buf_free(&parsed);
	buf_free(&reason);
	buf_free(&dom);
	return rc;
}

/* ctl_input_alias_key - an address or "@domain" (catch-all) */
int
ctl_input_alias_key(const char *s, struct buf *out, struct buf *why)
{
	struct buf dom = BUF_INIT;

	if (s[0] != '@')
		return ctl_input_address(s, out, why);
	if (ctl_input_domain(s + 1, &dom, why) < 0) {
		buf_free(&dom);
		return -1;
	}
	buf_set(out, "@");
	buf_puts(out, buf_cstr(&dom));
	buf_free(&dom);
	return 0;
}

/* ctl_input_quota - "default" = -1, "0"/"none" = 0, else a size */
int
ctl_input_quota(const char *s, long long *quota, struct buf *why)
{
	if (str_casecmp(s, "default") == 0) {
		*quota = -1;
		return 0;
	}
	if (str_casecmp(s, "none") == 0 || str_casecmp(s, "unlimited") == 0) {
		*quota = 0;
		return 0;
	}
	if (str_to_size(s, quota) < 0 || *quota < 0) {
		buf_printf(why, "%s: not a quota (a size such as 500M or 2G, "
		    "0 or none for no limit, default for default_quota)", s);
		return -1;
	}
	return 0;
}

/*
 * ctl_input_password_line - the first line of fd, without its newline.
 * Read a byte at a time so nothing after the line is consumed.
 */
int
ctl_input_password_line(int fd, struct buf *out, struct buf *why)
{
	char c;

	buf_reset(out);
	for (;;) {
		ssize_t n = read(fd, &c, 1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			buf_printf(why, "read password: %s", strerror(errno));
			return -1;
		}
		if (n == 0 || c == '\n')
			break;
		if (c == '\0') {
			buf_puts(why, "password contains a NUL byte");
			return -1;
		}
		if (out->len >= CTL_PASSWORD_MAX) {
			buf_printf(why, "password longer than %d bytes",
			    CTL_PASSWORD_MAX);
			return -1;
		}
		buf_putc(out, c);
	}
	if (out->len > 0 && out->data[out->len - 1] == '\r')
		buf_truncate(out, out->len - 1);
	if (out->len == 0) {
		buf_puts(why, "empty password");
		return -1;
	}
	return 0;
}
