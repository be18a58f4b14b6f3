/*
 * smtpd_cmd - SMTP commands: the table (name, allowed states, handler),
 * the dispatcher, the handlers, and the parsers of command arguments and
 * ESMTP parameters.
 *
 * The parsers (smtpd_cmd_parse_*) are pure functions over (pointer,
 * length) that fill a request struct or put the complete reply line into
 * reply; the unit tests call them directly. Every value that can end up in
 * the queue file or a log line is checked here for CR, LF, NUL and other
 * control characters, before anything is written.
 *
 * Replies carry enhanced status codes (RFC 2034/3463) throughout; the
 * texts follow Postfix where admins know them.
 */
#include <ctype.h>
#include <string.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "base/stream.h"
#include "mail/addr.h"
#include "mail/foreign.h"
#include "mail/params.h"
#include "mail/qid.h"
#include "mail/sasl.h"
#include "smtpd.h"

#define SMTPD_HELO_MAX 255	/* RFC 1035 domain length */
#define SMTPD_ENVID_MAX 100	/* RFC 3461 4.4 */
#define SMTPD_ORCPT_MAX 500	/* RFC 3461 4.2: 500 characters */

/* one "KEY[=VALUE]" ESMTP parameter (RFC 5321 4.1.2 esmtp-param) */
struct smtpd_param {
	const char *key;
	size_t klen;
	const char *val;	/* NULL without "=" */
	size_t vlen;
};

/* smtpd_cmd_blank - true for the blanks we skip between words */
static inline bool
smtpd_cmd_blank(char c)
{
	return c == ' ';
}

/* smtpd_cmd_next_param - take the next parameter from *pp; 1 with one,
 * 0 at the end, -1 on a syntax error */
static int
smtpd_cmd_next_param(const char **pp, const char *end, struct smtpd_param *prm)
{
	const char *p = *pp;

	while (p < end && smtpd_cmd_blank(*p))
		p++;
	if (p == end)
		return 0;
	prm->key = p;
	while (p < end && !smtpd_cmd_blank(*p) && *p != '=')
		p++;
	prm->klen = (size_t)(p - prm->key);
	if (prm->klen == 0 || !isalnum((unsigned char)prm->key[0]))
		return -1;
	for (size_t i = 1; i < prm->klen; i++)
		if (!isalnum((unsigned char)prm->key[i]) && prm->key[i] != '-')
			return -1;
	prm->val = NULL;
	prm->vlen = 0;
	if (p < end && *p == '=') {
		prm->val = ++p;
		while (p < end && !smtpd_cmd_blank(*p))
			p++;
		prm->vlen = (size_t)(p - prm->val);
		if (prm->vlen == 0)
			return -1;
		/* esmtp-value: %d33-60 / %d62-126, and UTF-8 (RFC 6531) */
		for (size_t i = 0; i < prm->vlen; i++) {
			unsigned char c = (unsigned char)prm->val[i];

			if (c < 33 || c == '=' || c == 127)
				return -1;
		}
	}
	*pp = p;
	return 1;
}

/* smtpd_cmd_is - the parameter's keyword is name (any case) */
static bool
smtpd_cmd_is(const struct smtpd_param *prm, const char *name)
{
	return strlen(name) == prm->klen &&
	    str_ncasecmp(prm->key, name, prm->klen) == 0;
}

/* smtpd_cmd_val_is - the parameter's value is word (any case) */
static bool
smtpd_cmd_val_is(const struct smtpd_param *prm, const char *word)
{
	return prm->val != NULL && strlen(word) == prm->vlen &&
	    str_ncasecmp(prm->val, word, prm->vlen) == 0;
}

/* smtpd_cmd_printable - every byte is printable ASCII (no TAB) */
static bool
smtpd_cmd_printable(const char *p, size_t n, bool utf8)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c < 32 || c == 127 || (c > 127 && !utf8))
			return false;
	}
	return true;
}

/* smtpd_cmd_prefix - args start with word (any case), e.g. "FROM:" */
static bool
smtpd_cmd_prefix(const char *args, size_t len, const char *word)
{
	size_t wl = strlen(word);

	return len >= wl && str_ncasecmp(args, word, wl) == 0;
}

/* smtpd_cmd_size - parse SIZE's value: 1*20DIGIT, as a long long */
static int
smtpd_cmd_size(const struct smtpd_param *prm, long long *r)
{
	char num[24];

	if (prm->val == NULL || prm->vlen > 18)
		return -1;
	for (size_t i = 0; i < prm->vlen; i++)
		if (!isdigit((unsigned char)prm->val[i]))
			return -1;
	memcpy(num, prm->val, prm->vlen);
	num[prm->vlen] = '\0';
	return str_to_ll(num, 0, 999999999999999999LL, r);
}

/* smtpd_cmd_mail_req_init / _free - an empty MAIL request */
void
smtpd_cmd_mail_req_init(struct smtpd_mail_req *r)
{
	buf_init(&r->addr);
	buf_init(&r->envid);
	r->size = -1;
	r->body = SMTPD_BODY_NONE;
	r->smtputf8 = false;
	r->ret = SMTPD_RET_NONE;
	r->has_envid = false;
}

void
smtpd_cmd_mail_req_free(struct smtpd_mail_req *r)
{
	buf_free(&r->addr);
	buf_free(&r->envid);
}

/*
 * smtpd_cmd_parse_path - the common part of MAIL and RCPT: the path after
 * "FROM:"/"TO:", which must be followed by the end or a space. The path is
 * parsed with UTF-8 allowed; the caller checks SMTPUTF8 afterwards, since
 * for MAIL that parameter comes after the path.
 */
static int
smtpd_cmd_parse_path(const char *p, const char *end, unsigned flags,
    struct buf *addr, const char **rest_r)
{
	struct buf why = BUF_INIT;
	size_t used = 0;
	int ret;

	buf_reset(addr);
	ret = addr_parse_path(p, (size_t)(end - p), flags | ADDR_ALLOW_UTF8 |
	    ADDR_LENIENT, addr, &used, &why);
	buf_free(&why);
	if (ret < 0 || used > (size_t)(end - p))
		return -1;
	p += used;
	if (p < end && !smtpd_cmd_blank(*p))
		return -1;
	/* Belt and braces: nothing odd may reach the queue file or logs. */
	if (!smtpd_cmd_printable(addr->data, addr->len, true))
		return -1;
	*rest_r = p;
	return 0;
}

/*
 * smtpd_cmd_parse_mail - "FROM:<path> [params]" of MAIL (RFC 5321 4.1.1.2,
 * SIZE RFC 1870, BODY RFC 6152, SMTPUTF8 RFC 6531, RET/ENVID RFC 3461,
 * AUTH RFC 4954 ignored).
 */
int
smtpd_cmd_parse_mail(const char *args, size_t len, struct smtpd_mail_req *r,
    struct buf *reply)
{
	const char *p, *end = args + len;
	struct smtpd_param prm;
	bool seen_size = false, seen_body = false, seen_auth = false;
	int got;

	buf_reset(reply);
	if (str_has_crlfnul(args, len)) {
		buf_puts(reply, "501 5.5.4 Syntax error: CR, LF or NUL in "
		    "command");
		return -1;
	}
	if (!smtpd_cmd_prefix(args, len, "FROM:")) {
		buf_puts(reply, "501 5.5.4 Syntax: MAIL FROM:<address>");
		return -1;
	}
	if (smtpd_cmd_parse_path(args + 5, end, ADDR_ALLOW_NULL, &r->addr,
	    &p) < 0) {
		buf_puts(reply, "501 5.1.7 Bad sender address syntax");
		return -1;
	}
	/* "<postmaster>" without a domain is for RCPT only */
	if (r->addr.len > 0 && strchr(buf_cstr(&r->addr), '@') == NULL) {
		buf_puts(reply, "501 5.1.7 Bad sender address syntax");
		return -1;
	}
	while ((got = smtpd_cmd_next_param(&p, end, &prm)) > 0) {
		bool dup = false;

		if (smtpd_cmd_is(&prm, "SIZE")) {
			dup = seen_size;
			seen_size = true;
			if (!dup && smtpd_cmd_size(&prm, &r->size) < 0) {
				buf_puts(reply, "501 5.5.4 Bad SIZE syntax");
				return -1;
			}
		} else if (smtpd_cmd_is(&prm, "BODY")) {
			dup = seen_body;
			seen_body = true;
			if (smtpd_cmd_val_is(&prm, "7BIT")) {
				r->body = SMTPD_BODY_7BIT;
			} else if (smtpd_cmd_val_is(&prm, "8BITMIME")) {
				r->body = SMTPD_BODY_8BITMIME;
			} else if (smtpd_cmd_val_is(&prm, "BINARYMIME")) {
				buf_puts(reply, "504 5.5.4 Unsupported BODY "
				    "type: BINARYMIME");
				return -1;
			} else {
				buf_puts(reply, "501 5.5.4 Bad BODY syntax");
				return -1;
			}
		} else if (smtpd_cmd_is(&prm, "SMTPUTF8")) {
			dup = r->smtputf8;
			r->smtputf8 = true;
			if (prm.val != NULL) {
				buf_puts(reply, "501 5.5.4 Bad SMTPUTF8 "
				    "syntax");
				return -1;
			}
		} else if (smtpd_cmd_is(&prm, "RET")) {
			dup = r->ret != SMTPD_RET_NONE;
			if (smtpd_cmd_val_is(&prm, "FULL")) {
				r->ret = SMTPD_RET_FULL;
			} else if (smtpd_cmd_val_is(&prm, "HDRS")) {
				r->ret = SMTPD_RET_HDRS;
			} else {
				buf_puts(reply, "501 5.5.4 Bad RET syntax");
				return -1;
			}
		} else if (smtpd_cmd_is(&prm, "ENVID")) {
			dup = r->has_envid;
			r->has_envid = true;
			buf_reset(&r->envid);
			if (prm.val == NULL ||
			    xtext_decode(prm.val, prm.vlen, &r->envid) < 0 ||
			    r->envid.len == 0 ||
			    r->envid.len > SMTPD_ENVID_MAX ||
			    !smtpd_cmd_printable(r->envid.data, r->envid.len,
			    false)) {
				buf_puts(reply, "501 5.5.4 Bad ENVID syntax");
				return -1;
			}
		} else if (smtpd_cmd_is(&prm, "AUTH")) {
			/* RFC 4954 5: accepted, and ignored without AUTH. */
			dup = seen_auth;
			seen_auth = true;
			if (prm.val == NULL) {
				buf_puts(reply, "501 5.5.4 Bad AUTH syntax");
				return -1;
			}
		} else {
			buf_printf(reply, "555 5.5.4 Unsupported option: %.*s",
			    (int)prm.klen, prm.key);
			return -1;
		}
		if (dup) {
			buf_printf(reply, "501 5.5.4 Duplicate parameter: %.*s",
			    (int)prm.klen, prm.key);
			return -1;
		}
	}
	if (got < 0) {
		buf_puts(reply, "501 5.5.4 Bad MAIL parameter syntax");
		return -1;
	}
	if (!r->smtputf8 && addr_is_utf8(buf_cstr(&r->addr))) {
		buf_puts(reply, "553 5.6.7 Must declare SMTPUTF8 to send "
		    "unicode address");
		return -1;
	}
	return 0;
}

/* smtpd_cmd_rcpt_req_init / _free - an empty RCPT request */
void
smtpd_cmd_rcpt_req_init(struct smtpd_rcpt_req *r)
{
	buf_init(&r->addr);
	buf_init(&r->orcpt);
	buf_init(&r->notify);
	r->postmaster = false;
}

void
smtpd_cmd_rcpt_req_free(struct smtpd_rcpt_req *r)
{
	buf_free(&r->addr);
	buf_free(&r->orcpt);
	buf_free(&r->notify);
}

/* smtpd_cmd_notify - NOTIFY=NEVER or a list of SUCCESS, FAILURE, DELAY
 * (RFC 3461 4.1), normalized to upper case */
static int
smtpd_cmd_notify(const struct smtpd_param *prm, struct buf *out)
{
	static const char *const words[] = {"SUCCESS", "FAILURE", "DELAY"};
	const char *p = prm->val, *end, *comma;
	unsigned seen = 0;

	if (p == NULL)
		return -1;
	end = p + prm->vlen;
	buf_reset(out);
	if (prm->vlen == 5 && str_ncasecmp(p, "NEVER", 5) == 0) {
		buf_puts(out, "NEVER");
		return 0;
	}
	while (p < end) {
		size_t wl;
		size_t i;

		if ((comma = memchr(p, ',', (size_t)(end - p))) == NULL)
			comma = end;
		wl = (size_t)(comma - p);
		for (i = 0; i < 3; i++)
			if (strlen(words[i]) == wl &&
			    str_ncasecmp(p, words[i], wl) == 0)
				break;
		if (i == 3 || (seen & (1u << i)))
			return -1;
		seen |= 1u << i;
		if (out->len)
			buf_putc(out, ',');
		buf_puts(out, words[i]);
		if (comma == end)
			break;
		p = comma + 1;
		if (p == end)
			return -1;	/* trailing comma */
	}
	return 0;
}

/* smtpd_cmd_orcpt - ORCPT=addr-type;xtext (RFC 3461 4.2), decoded into
 * "type;address" */
static int
smtpd_cmd_orcpt(const struct smtpd_param *prm, struct buf *out)
{
	struct buf addr;
	const char *semi;
	size_t tl;

	if (prm->val == NULL ||
	    (semi = memchr(prm->val, ';', prm->vlen)) == NULL)
		return -1;
	tl = (size_t)(semi - prm->val);
	if (tl == 0)
		return -1;
	for (size_t i = 0; i < tl; i++)
		if (!isalnum((unsigned char)prm->val[i]) && prm->val[i] != '-')
			return -1;
	buf_init(&addr);
	if (xtext_decode(semi + 1, prm->vlen - tl - 1, &addr) < 0) {
		buf_free(&addr);
		return -1;
	}
	buf_reset(out);
	buf_append(out, prm->val, tl);
	str_lower(out->data);
	buf_putc(out, ';');
	buf_append(out, addr.data, addr.len);
	buf_free(&addr);
	if (out->len == tl + 1 || out->len > SMTPD_ORCPT_MAX ||
	    !smtpd_cmd_printable(out->data, out->len, true))
		return -1;
	return 0;
}

/*
 * smtpd_cmd_parse_rcpt - "TO:<path> [params]" of RCPT (RFC 5321 4.1.1.3,
 * NOTIFY/ORCPT RFC 3461). "<Postmaster>" without a domain is accepted as
 * RFC 5321 requires; r->postmaster tells the caller to add our domain.
 */
int
smtpd_cmd_parse_rcpt(const char *args, size_t len, bool smtputf8,
    struct smtpd_rcpt_req *r, struct buf *reply)
{
	const char *p, *end = args + len;
	struct smtpd_param prm;
	int got;

	buf_reset(reply);
	if (str_has_crlfnul(args, len)) {
		buf_puts(reply, "501 5.5.4 Syntax error: CR, LF or NUL in "
		    "command");
		return -1;
	}
	if (!smtpd_cmd_prefix(args, len, "TO:")) {
		buf_puts(reply, "501 5.5.4 Syntax: RCPT TO:<address>");
		return -1;
	}
	/*
	 * addr_parse_path takes "<Postmaster>" without a domain (RFC 5321
	 * 4.1.1.3); any other address without one is not ours to take.
	 */
	if (smtpd_cmd_parse_path(args + 3, end, 0, &r->addr, &p) < 0 ||
	    r->addr.len == 0) {
		buf_puts(reply, "501 5.1.3 Bad recipient address syntax");
		return -1;
	}
	r->postmaster = false;
	if (strchr(buf_cstr(&r->addr), '@') == NULL) {
		if (str_casecmp(buf_cstr(&r->addr), "postmaster") != 0) {
			buf_puts(reply, "501 5.1.3 Bad recipient address "
			    "syntax");
			return -1;
		}
		r->postmaster = true;
		buf_set(&r->addr, "postmaster");
	}
	buf_reset(&r->orcpt);
	buf_reset(&r->notify);
	while ((got = smtpd_cmd_next_param(&p, end, &prm)) > 0) {
		if (smtpd_cmd_is(&prm, "NOTIFY")) {
			if (r->notify.len) {
				buf_puts(reply, "501 5.5.4 Duplicate "
				    "parameter: NOTIFY");
				return -1;
			}
			if (smtpd_cmd_notify(&prm, &r->notify) < 0) {
				buf_puts(reply, "501 5.5.4 Bad NOTIFY syntax");
				return -1;
			}
		} else if (smtpd_cmd_is(&prm, "ORCPT")) {
			if (r->orcpt.len) {
				buf_puts(reply, "501 5.5.4 Duplicate "
				    "parameter: ORCPT");
				return -1;
			}
			if (smtpd_cmd_orcpt(&prm, &r->orcpt) < 0) {
				buf_puts(reply, "501 5.5.4 Bad ORCPT syntax");
				return -1;
			}
		} else {
			buf_printf(reply, "555 5.5.4 Unsupported option: %.*s",
			    (int)prm.klen, prm.key);
			return -1;
		}
	}
	if (got < 0) {
		buf_puts(reply, "501 5.5.4 Bad RCPT parameter syntax");
		return -1;
	}
	if (!smtputf8 && addr_is_utf8(buf_cstr(&r->addr))) {
		buf_puts(reply, "553 5.6.7 Must declare SMTPUTF8 to send "
		    "unicode address");
		return -1;
	}
	return 0;
}

/* smtpd_cmd_parse_bdat - "chunk-size [LAST]" of BDAT (RFC 3030 3) */
int
smtpd_cmd_parse_bdat(const char *args, size_t len, long long *size_r,
    bool *last_r)
{
	const char *p = args, *end = args + len;
	char num[24];
	size_t nl = 0;

	while (p < end && isdigit((unsigned char)*p)) {
		if (nl >= 18)
			return -1;
		num[nl++] = *p++;
	}
	if (nl == 0)
		return -1;
	num[nl] = '\0';
	if (str_to_ll(num, 0, 999999999999999999LL, size_r) < 0)
		return -1;
	*last_r = false;
	if (p == end)
		return 0;
	if (!smtpd_cmd_blank(*p))
		return -1;
	while (p < end && smtpd_cmd_blank(*p))
		p++;
	if (end - p == 4 && str_ncasecmp(p, "LAST", 4) == 0) {
		*last_r = true;
		return 0;
	}
	return -1;
}

/* smtpd_cmd_check_helo - the HELO/EHLO argument: present, printable,
 * at most 255 bytes */
int
smtpd_cmd_check_helo(const char *args, size_t len, struct buf *reply)
{
	buf_reset(reply);
	if (len == 0) {
		buf_puts(reply, "501 5.5.4 Syntax: EHLO hostname");
		return -1;
	}
	if (!smtpd_cmd_printable(args, len, true)) {
		buf_puts(reply, "501 5.5.4 Invalid character in HELO/EHLO "
		    "argument");
		return -1;
	}
	if (len > SMTPD_HELO_MAX) {
		buf_puts(reply, "501 5.5.4 HELO/EHLO argument too long");
		return -1;
	}
	return 0;
}

/* smtpd_cmd_helo_common - what HELO and EHLO share; -1 on a bad argument */
static int
smtpd_cmd_helo_common(struct smtpd_session *s, const char *args, size_t len,
    bool esmtp)
{
	if (smtpd_cmd_check_helo(args, len, &s->scratch) < 0) {
		smtpd_session_error(s, "%s", buf_cstr(&s->scratch));
		return -1;
	}
	/* RFC 5321 4.1.4: a new EHLO resets any transaction. */
	smtpd_session_reset_tx(s);
	buf_reset(&s->helo);
	buf_append(&s->helo, args, len);
	s->esmtp = esmtp;
	smtpd_session_set_state(s, SMTPD_S_READY);
	return 0;
}

/* smtpd_cmd_ehlo - EHLO: greet and list the extensions */
static int
smtpd_cmd_ehlo(struct smtpd_session *s, const char *args, size_t len)
{
	if (smtpd_cmd_helo_common(s, args, len, true) < 0)
		return -1;
	smtpd_session_reply(s, "250-%s", var_myhostname);
	smtpd_session_reply(s, "250-PIPELINING");
	smtpd_session_reply(s, "250-SIZE %lld", var_message_size_limit);
	if (smtpd_tls_ctx != NULL && !stream_is_tls(s->base.stream) &&
	    !s->local)
		smtpd_session_reply(s, "250-STARTTLS");
	if (smtpd_auth_offered(s) && s->login.len == 0)
		smtpd_session_reply(s, "250-AUTH %s", sasl_mech_list());
	smtpd_session_reply(s, "250-ENHANCEDSTATUSCODES");
	smtpd_session_reply(s, "250-8BITMIME");
	smtpd_session_reply(s, "250-DSN");
	smtpd_session_reply(s, "250-SMTPUTF8");
	smtpd_session_reply(s, "250 CHUNKING");
	return 0;
}

/* smtpd_cmd_helo - HELO: greet, no extensions */
static int
smtpd_cmd_helo(struct smtpd_session *s, const char *args, size_t len)
{
	if (smtpd_cmd_helo_common(s, args, len, false) < 0)
		return -1;
	smtpd_session_reply(s, "250 %s", var_myhostname);
	return 0;
}

/* smtpd_cmd_mail - MAIL FROM: start a transaction */
static int
smtpd_cmd_mail(struct smtpd_session *s, const char *args, size_t len)
{
	struct smtpd_mail_req r;
	struct smtpd_tx *tx = &s->tx;
	long long want;
	int ret = -1;

	smtpd_cmd_mail_req_init(&r);
	if (smtpd_cmd_parse_mail(args, len, &r, &s->scratch) < 0) {
		smtpd_session_error(s, "%s", buf_cstr(&s->scratch));
		goto out;
	}
	/* the sender is needed in the reject log lines below */
	buf_reset(&tx->sender);
	buf_append(&tx->sender, r.addr.data, r.addr.len);
	/* RFC 6409 / 4954: submission is for users who logged in */
	if (smtpd_session_submission(s) && !smtpd_session_may_relay(s)) {
		const char *text = smtpd_auth_offered(s) ?
		    "530 5.7.0 Authentication required" :
		    "530 5.7.0 Must issue a STARTTLS command first";

		smtpd_session_log_reject(s, "MAIL", NULL, text);
		smtpd_session_error(s, "%s", text);
		goto out;
	}
	if (s->login.len > 0 &&
	    strcmp(var_smtpd_sender_login, "any") != 0) {
		struct buf why = BUF_INIT;
		int ok = smtpd_check_sender(s, buf_cstr(&r.addr), &why);

		if (ok <= 0) {
			buf_reset(&s->scratch);
			if (ok < 0) {
				msg_warn("sender check of %s failed: %s",
				    buf_cstr(&r.addr), buf_cstr(&why));
				buf_puts(&s->scratch, "451 4.3.0 <");
			} else {
				buf_puts(&s->scratch, "553 5.7.1 <");
			}
			addr_externalize(&s->scratch, buf_cstr(&r.addr));
			buf_printf(&s->scratch, ">: Sender address rejected: "
			    "%s", ok < 0 ? "Temporary lookup failure" :
			    "not owned by the user you logged in as");
			buf_free(&why);
			smtpd_session_log_reject(s, "MAIL", NULL,
			    buf_cstr(&s->scratch));
			if (ok < 0)
				smtpd_session_reply(s, "%s",
				    buf_cstr(&s->scratch));
			else
				smtpd_session_error(s, "%s",
				    buf_cstr(&s->scratch));
			goto out;
		}
		buf_free(&why);
	}
	if (smtpd_check_rate(s, 0, &s->scratch) < 0) {
		smtpd_session_log_reject(s, "MAIL", NULL,
		    buf_cstr(&s->scratch));
		smtpd_session_reply(s, "%s", buf_cstr(&s->scratch));
		goto out;
	}
	if (r.size > var_message_size_limit) {
		smtpd_session_log_reject(s, "MAIL", NULL, "552 5.3.4 Message "
		    "size exceeds fixed limit");
		smtpd_session_error(s,
		    "552 5.3.4 Message size exceeds fixed limit");
		goto out;
	}
	/* a client's open transactions are bounded (not local users:
	 * sendmail does not retry) */
	if (!s->local && (long long)peer_tally_add(&tx->tally, &s->base.peer,
	    "tx:") > var_smtpd_client_transaction_limit) {
		peer_tally_del(&tx->tally);
		smtpd_session_log_reject(s, "MAIL", NULL, "452 4.3.2 Too many "
		    "concurrent transactions from your address");
		smtpd_session_reply(s, "452 4.3.2 Too many concurrent "
		    "transactions from your address");
		goto out;
	}
	want = r.size >= 0 ? r.size : var_message_size_limit;
	if (smtpd_check_storage(s, want) < 0) {
		peer_tally_del(&tx->tally);
		smtpd_session_log_reject(s, "MAIL", NULL, "452 4.3.1 "
		    "Insufficient system storage");
		smtpd_session_reply(s, "452 4.3.1 Insufficient system storage");
		goto out;
	}
	smtpd_space_open(&smtpd_space_worker, &tx->space, want);
	tx->size_decl = r.size;
	tx->body = r.body;
	tx->smtputf8 = r.smtputf8;
	tx->ret = r.ret;
	if (r.has_envid)
		tx->envid = xmemdup(r.envid.data, r.envid.len);
	smtpd_session_set_state(s, SMTPD_S_MAIL);
	if (!tx->expected) {
		tx->expected = true;
		smtpd_commit_expect(true);
	}
	smtpd_session_reply(s, "250 2.1.0 Ok");
	ret = 0;
out:
	if (ret < 0)
		buf_reset(&tx->sender);
	smtpd_cmd_mail_req_free(&r);
	return ret;
}

/* smtpd_cmd_rcpt - RCPT TO: check and add a recipient */
static int
smtpd_cmd_rcpt(struct smtpd_session *s, const char *args, size_t len)
{
	struct smtpd_rcpt_req r;
	struct smtpd_tx *tx = &s->tx;
	int ret = -1, srs;

	if (tx->nrcpt >= (size_t)var_smtpd_recipient_limit) {
		smtpd_session_reply(s, "452 4.5.3 Error: too many recipients");
		return -1;
	}
	smtpd_cmd_rcpt_req_init(&r);
	if (smtpd_cmd_parse_rcpt(args, len, tx->smtputf8, &r,
	    &s->scratch) < 0) {
		smtpd_session_error(s, "%s", buf_cstr(&s->scratch));
		goto out;
	}
	if (r.postmaster) {
		struct buf dom = BUF_INIT;

		smtpd_check_postmaster_domain(s, &dom);
		buf_printf(&r.addr, "@%s", buf_cstr(&dom));
		buf_free(&dom);
	}
	srs = smtpd_check_srs(s, &r.addr, &r.orcpt, &s->scratch);
	if (srs < 0) {
		smtpd_session_log_reject(s, "RCPT", buf_cstr(&r.addr),
		    buf_cstr(&s->scratch));
		smtpd_session_error(s, "%s", buf_cstr(&s->scratch));
		goto out;
	}
	if (smtpd_check_rate(s, (long long)tx->nrcpt + 1, &s->scratch) < 0) {
		smtpd_session_log_reject(s, "RCPT", buf_cstr(&r.addr),
		    buf_cstr(&s->scratch));
		smtpd_session_reply(s, "%s", buf_cstr(&s->scratch));
		goto out;
	}
	/* a valid SRS address of another domain is not relaying */
	if (srs != 1 && (ret = smtpd_check_rcpt(s, buf_cstr(&r.addr),
	    &s->scratch)) < 0) {
		smtpd_session_log_reject(s, "RCPT", buf_cstr(&r.addr),
		    buf_cstr(&s->scratch));
		if (ret == -2)	/* over a per-message bound, like 452 above */
			smtpd_session_reply(s, "%s", buf_cstr(&s->scratch));
		else
			smtpd_session_error(s, "%s", buf_cstr(&s->scratch));
		ret = -1;
		goto out;
	}
	smtpd_check_add_rcpt(tx, buf_cstr(&r.addr), buf_cstr(&r.orcpt),
	    buf_cstr(&r.notify));
	if (tx->qid[0] == '\0') {
		qid_new(tx->qid);
		if (s->local)
			msg_info("%s: client=local, uid=%lld", tx->qid,
			    s->local_uid);
		else if (s->login.len > 0)
			msg_info("%s: client=[%s], helo=<%s>, sasl_method=%s, "
			    "sasl_username=%s", tx->qid, s->base.peer.addr,
			    buf_cstr(&s->helo), s->auth_method,
			    buf_cstr(&s->login));
		else
			msg_info("%s: client=[%s], helo=<%s>", tx->qid,
			    s->base.peer.addr, buf_cstr(&s->helo));
	}
	smtpd_session_set_state(s, SMTPD_S_RCPT);
	smtpd_session_reply(s, "250 2.1.5 Ok");
	ret = 0;
out:
	smtpd_cmd_rcpt_req_free(&r);
	return ret;
}

/* smtpd_cmd_data - DATA: content follows, ends at CRLF.CRLF */
static int
smtpd_cmd_data(struct smtpd_session *s, const char *args, size_t len)
{
	if (len != 0) {
		smtpd_session_error(s, "501 5.5.4 Syntax: DATA");
		return -1;
	}
	smtpd_data_cmd(s);
	/* counted as accepted only when the message is queued (smtpd_data.c) */
	return -1;
}

/*
 * smtpd_cmd_bdat - BDAT n [LAST]. A malformed BDAT leaves us unable to
 * tell where its chunk ends, so the rest of the input cannot be trusted as
 * commands: reply and close.
 */
static int
smtpd_cmd_bdat(struct smtpd_session *s, const char *args, size_t len)
{
	long long size;
	bool last;

	if (smtpd_cmd_parse_bdat(args, len, &size, &last) < 0) {
		smtpd_session_reply(s, "501 5.5.4 Syntax: BDAT count [LAST]");
		msg_info("BDAT syntax error from [%s]: closing the "
		    "connection", s->base.peer.addr);
		smtpd_session_finish(s);
		return -1;
	}
	smtpd_data_bdat_cmd(s, size, last);
	return s->tx.chunk_discard ? -1 : 0;
}

/* smtpd_cmd_rset - RSET: forget the transaction */
static int
smtpd_cmd_rset(struct smtpd_session *s, const char *args, size_t len)
{
	if (len != 0) {
		smtpd_session_error(s, "501 5.5.4 Syntax: RSET");
		return -1;
	}
	smtpd_session_reset_tx(s);
	if (s->state != SMTPD_S_INIT)
		smtpd_session_set_state(s, SMTPD_S_READY);
	smtpd_session_reply(s, "250 2.0.0 Ok");
	return 0;
}

/* smtpd_cmd_noop - NOOP (an argument is allowed, RFC 5321 4.1.1.9) */
static int
smtpd_cmd_noop(struct smtpd_session *s, const char *args, size_t len)
{
	smtpd_session_reply(s, "250 2.0.0 Ok");
	return 0;
}

/* smtpd_cmd_quit - QUIT: say goodbye and close */
static int
smtpd_cmd_quit(struct smtpd_session *s, const char *args, size_t len)
{
	if (len != 0) {
		smtpd_session_error(s, "501 5.5.4 Syntax: QUIT");
		return -1;
	}
	smtpd_session_reply(s, "221 2.0.0 Bye");
	smtpd_session_finish(s);
	return 0;
}

/* smtpd_cmd_vrfy - VRFY: never disclose who exists (RFC 5321 3.5.3) */
static int
smtpd_cmd_vrfy(struct smtpd_session *s, const char *args, size_t len)
{
	if (len == 0) {
		smtpd_session_error(s, "501 5.5.4 Syntax: VRFY address");
		return -1;
	}
	smtpd_session_reply(s,
	    "252 2.5.2 Cannot VRFY user, but will accept message "
	    "and attempt delivery");
	return 0;
}

/* smtpd_cmd_expn - EXPN: not offered (it lists alias members) */
static int
smtpd_cmd_expn(struct smtpd_session *s, const char *args, size_t len)
{
	smtpd_session_error(s, "502 5.5.1 Error: command not implemented");
	return -1;
}

/* smtpd_cmd_help - HELP */
static int
smtpd_cmd_help(struct smtpd_session *s, const char *args, size_t len)
{
	smtpd_session_reply(s,
	    "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT "
	    "RSET NOOP QUIT VRFY HELP%s%s", smtpd_tls_ctx != NULL ?
	    " STARTTLS" : "", smtpd_auth_offered(s) ? " AUTH" : "");
	return 0;
}

/* smtpd_cmd_starttls - STARTTLS (RFC 3207) */
static int
smtpd_cmd_starttls(struct smtpd_session *s, const char *args, size_t len)
{
	if (len != 0) {
		smtpd_session_error(s, "501 5.5.4 Syntax: STARTTLS");
		return -1;
	}
	if (smtpd_tls_ctx == NULL) {
		smtpd_session_error(s,
		    "502 5.5.1 Error: command not implemented");
		return -1;
	}
	if (stream_is_tls(s->base.stream)) {
		smtpd_session_error(s, "503 5.5.1 Error: TLS already active");
		return -1;
	}
	smtpd_session_reply(s, "220 2.0.0 Ready to start TLS");
	smtpd_session_starttls(s);
	return 0;
}

const struct smtpd_cmd smtpd_cmd_table[] = {
	{"EHLO", SMTPD_S_CMD, smtpd_cmd_ehlo, NULL},
	{"HELO", SMTPD_S_CMD, smtpd_cmd_helo, NULL},
	{"MAIL", SMTPD_S_READY, smtpd_cmd_mail, "nested MAIL command"},
	{"RCPT", SMTPD_S_MAIL | SMTPD_S_RCPT, smtpd_cmd_rcpt, NULL},
	{"DATA", SMTPD_S_RCPT, smtpd_cmd_data, NULL},
	{"BDAT", SMTPD_S_CMD, smtpd_cmd_bdat, NULL},
	{"RSET", SMTPD_S_CMD, smtpd_cmd_rset, NULL},
	{"NOOP", SMTPD_S_CMD, smtpd_cmd_noop, NULL},
	{"QUIT", SMTPD_S_CMD, smtpd_cmd_quit, NULL},
	{"VRFY", SMTPD_S_CMD, smtpd_cmd_vrfy, NULL},
	{"EXPN", SMTPD_S_CMD, smtpd_cmd_expn, NULL},
	{"HELP", SMTPD_S_CMD, smtpd_cmd_help, NULL},
	{"STARTTLS", SMTPD_S_INIT | SMTPD_S_READY, smtpd_cmd_starttls,
	    "MAIL transaction in progress"},
	{"AUTH", SMTPD_S_READY, smtpd_auth_cmd,
	    "MAIL transaction in progress"},
	{NULL, 0, NULL, NULL},
};

/* smtpd_cmd_count - table entries plus one slot for unknown commands */
size_t
smtpd_cmd_count(void)
{
	return sizeof(smtpd_cmd_table) / sizeof(smtpd_cmd_table[0]);
}

/* smtpd_cmd_find - the entry for verb[0..len), NULL if unknown */
const struct smtpd_cmd *
smtpd_cmd_find(const char *verb, size_t len)
{
	for (const struct smtpd_cmd *c = smtpd_cmd_table; c->name; c++)
		if (strlen(c->name) == len &&
		    str_ncasecmp(c->name, verb, len) == 0)
			return c;
	return NULL;
}

/*
 * smtpd_cmd_forbidden - verbs of other protocols. A browser or proxy
 * tricked into talking to port 25 sends these; we hang up instead of
 * answering every header line (Postfix smtpd_forbidden_commands).
 */
bool
smtpd_cmd_forbidden(const char *verb, size_t len)
{
	return foreign_verb(verb, len, NULL);
}

/* smtpd_cmd_seq_error - 503 for a command in the wrong state */
static void
smtpd_cmd_seq_error(struct smtpd_session *s, const struct smtpd_cmd *c)
{
	const char *text;

	if (s->state & SMTPD_S_INIT)
		text = "send HELO/EHLO first";
	else if (c->seq_text != NULL)
		text = c->seq_text;
	else if (s->state & SMTPD_S_CHUNKS)
		text = "BDAT transaction in progress";
	else if (s->state & SMTPD_S_READY)
		text = "need MAIL command";
	else
		text = "need RCPT command";
	smtpd_session_error(s, "503 5.5.1 Error: %s", text);
}

/*
 * smtpd_cmd_junk - count the commands that do no mail work, as Postfix's
 * smtpd_junk_command_limit does: NOOP, RSET, HELO/EHLO, VRFY, EXPN, HELP,
 * and RCPT once the transaction has smtpd_recipient_limit recipients (its
 * 452 does not count as an error). An accepted message starts the count
 * over. True: one too many, 421 and the session ends; else a client could
 * hold a session for smtpd_session_timeout, or make us answer forever.
 */
static bool
smtpd_cmd_junk(struct smtpd_session *s, const struct smtpd_cmd *c)
{
	static const char *const junk[] = {"NOOP", "RSET", "HELO", "EHLO",
	    "VRFY", "EXPN", "HELP", NULL};
	bool is_junk = false;

	for (size_t i = 0; junk[i] != NULL && !is_junk; i++)
		is_junk = strcmp(c->name, junk[i]) == 0;
	if (!is_junk && strcmp(c->name, "RCPT") == 0)
		is_junk = s->tx.nrcpt >= (size_t)var_smtpd_recipient_limit;
	if (!is_junk || ++s->junk <= var_smtpd_junk_command_limit)
		return false;
	msg_info("too many junk commands after %s from [%s]", c->name,
	    s->base.peer.addr);
	smtpd_session_reply(s, "421 4.7.0 %s Error: too many junk commands",
	    var_myhostname);
	smtpd_session_finish(s);
	return true;
}

/*
 * smtpd_cmd_dispatch - run one command line (terminator removed). The
 * verb ends at the first space; arguments start after the spaces that
 * follow it; trailing blanks are ignored, as many clients send them.
 */
void
smtpd_cmd_dispatch(struct smtpd_session *s, char *line, size_t len)
{
	const struct smtpd_cmd *c;
	size_t vlen = 0, idx;
	const char *args;

	while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	line[len] = '\0';
	while (vlen < len && line[vlen] != ' ')
		vlen++;
	args = line + vlen;
	while (args < line + len && *args == ' ')
		args++;
	c = smtpd_cmd_find(line, vlen);
	idx = c != NULL ? (size_t)(c - smtpd_cmd_table) : smtpd_cmd_count() - 1;
	s->cmd_total[idx]++;
	s->base.last_cmd = c != NULL ? c->name : "UNKNOWN";
	if (c == NULL) {
		if (vlen > 0 && smtpd_cmd_forbidden(line, vlen)) {
			buf_reset(&s->scratch);
			str_printable(&s->scratch, line, len, 100);
			msg_warn("non-SMTP command from [%s]: %s",
			    s->base.peer.addr, buf_cstr(&s->scratch));
			smtpd_session_reply(s,
			    "221 2.7.0 Error: I can break rules, too. "
			    "Goodbye.");
			smtpd_session_finish(s);
		} else if (len == 0) {
			smtpd_session_error(s, "500 5.5.2 Error: bad syntax");
		} else {
			smtpd_session_error(s, "500 5.5.2 Error: command not "
			    "recognized");
		}
		return;
	}
	if (memchr(line, '\0', len) != NULL || memchr(line, '\r', len)) {
		smtpd_session_error(s,
		    "501 5.5.4 Syntax error: CR, LF or NUL in command");
		return;
	}
	if (smtpd_cmd_junk(s, c))
		return;
	if (!(c->states & s->state)) {
		smtpd_cmd_seq_error(s, c);
		return;
	}
	if (c->fn(s, args, (size_t)(line + len - args)) == 0)
		s->cmd_ok[idx]++;
}
