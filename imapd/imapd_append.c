/*
 * imapd_append - APPEND (RFC 9051 6.3.12) with flags, date-time and
 * MULTIAPPEND (RFC 3502), literal8 of BINARY (RFC 3516), APPENDUID of
 * UIDPLUS (RFC 4315) and APPENDLIMIT (RFC 7889).
 *
 * The whole command is read first (its literals are held by the command
 * parser, bounded by imapd_literal_limit and the command bound), checked,
 * then each message is handed to mindex_append through a memory file.
 * MULTIAPPEND is all or nothing: when a message fails, the ones already
 * appended by the command are expunged again.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/mindex.h"
#include "mail/params.h"
#include "imapd.h"
#include "imapd_sel.h"
#include "imapd_store.h"

#define APPEND_MAX 100		/* messages of one MULTIAPPEND */

/* one message of an APPEND */
struct append_msg {
	uint32_t flags;
	char *kw[MINDEX_KEYWORDS_MAX];
	size_t nkw;
	int64_t date;		/* 0: now */
	const char *p;		/* the literal */
	size_t len;
};

/* imapd_append_limit - the largest message APPEND takes */
unsigned long long
imapd_append_limit(void)
{
	unsigned long long lim = (unsigned long long)var_imapd_literal_limit;

	return lim < IMAPD_CMD_MAX ? lim : IMAPD_CMD_MAX;
}

/* imapd_append_date - "dd-Mon-yyyy hh:mm:ss +zzzz" (RFC 9051
 * date-time; the day may be " d") into unix seconds; -1 if it is not
 * one */
int
imapd_append_date(const char *p, size_t n, int64_t *t_r)
{
	static const char mon[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	char s[32];
	struct tm tm;
	int d, y, hh, mm, ss, z, consumed = 0;
	char m[4], sign;
	const char *f;

	if (n == 0 || n >= sizeof(s))
		return -1;
	memcpy(s, p, n);
	s[n] = '\0';
	if (sscanf(s, "%2d-%3c-%4d %2d:%2d:%2d %c%4d%n", &d, m, &y, &hh, &mm,
	    &ss, &sign, &z, &consumed) != 8 || (size_t)consumed != n ||
	    (sign != '+' && sign != '-'))
		return -1;
	m[3] = '\0';
	if ((f = strstr(mon, m)) == NULL || (f - mon) % 3 != 0 ||
	    d < 1 || d > 31 || y < 1900 || hh > 23 || mm > 59 || ss > 60 ||
	    z % 100 > 59 || z > 2359)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_mday = d;
	tm.tm_mon = (int)((f - mon) / 3);
	tm.tm_year = y - 1900;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	*t_r = (int64_t)timegm(&tm) - (sign == '-' ? -1 : 1) *
	    (int64_t)((z / 100) * 3600 + (z % 100) * 60);
	return 0;
}

/* append_parse - the messages after the mailbox name */
static int
append_parse(struct imap_cursor *c, struct append_msg *msgs, int *n_r,
    const char **why)
{
	struct imap_token t;
	int n = 0;

	*why = "Syntax: APPEND mailbox [(flags)] [date-time] literal ...";
	for (;;) {
		struct append_msg *a;

		if (imap_cursor_next(c, &t) == IMAP_TOK_END && n > 0)
			break;
		if (n >= APPEND_MAX) {
			*why = "Too many messages in one APPEND";
			return -1;
		}
		a = &msgs[n++];
		if (t.type == IMAP_TOK_OPEN) {
			if (imapd_sel_parse_flags(c, true, &a->flags, a->kw,
			    &a->nkw, why) < 0)
				return -1;
			imap_cursor_next(c, &t);
		}
		if (t.type == IMAP_TOK_STRING && !t.literal) {
			if (imapd_append_date(t.p, t.len, &a->date) < 0) {
				*why = "Invalid date-time";
				return -1;
			}
			imap_cursor_next(c, &t);
		}
		if (t.type != IMAP_TOK_STRING || !t.literal)
			return -1;
		a->p = t.p;
		a->len = t.len;
	}
	*n_r = n;
	return 0;
}

/* append_one - one message into folder; -1 with why */
static int
append_one(struct imapd_session *s, const char *folder,
    const struct append_msg *a, uint32_t *uid, uint32_t *uidv,
    struct buf *why)
{
	int fd = memfd_create("imapd-append", MFD_CLOEXEC), rc;
	size_t done = 0;

	if (fd < 0) {
		buf_printf(why, "memfd_create: %s", strerror(errno));
		return -1;
	}
	while (done < a->len) {
		ssize_t w = write(fd, a->p + done, a->len - done);

		if (w < 0) {
			buf_printf(why, "write: %s", strerror(errno));
			(void)close(fd);
			return -1;
		}
		done += (size_t)w;
	}
	rc = mindex_append(imapd_store_index(s), folder, fd, (off_t)a->len,
	    a->flags, (const char *const *)a->kw, a->nkw, a->date, uid, uidv,
	    why);
	(void)close(fd);
	return rc;
}

/* imapd_append_cmd - APPEND mailbox [flags] [date] literal ... */
void
imapd_append_cmd(struct imapd_session *s, struct imap_cursor *c)
{
	struct append_msg *msgs = xcalloc(APPEND_MAX, sizeof(*msgs));
	struct buf name = BUF_INIT, why = BUF_INIT;
	struct buf set = BUF_INIT;
	uint32_t uids[APPEND_MAX], uidv = 0;
	const char *err;
	int n = 0, i;

	if (imapd_sel_resolve(s, c, &name) < 0)
		goto out;
	if (append_parse(c, msgs, &n, &err) < 0) {
		imapd_session_bad(s, "BAD %s", err);
		goto out;
	}
	for (i = 0; i < n; i++)
		if (msgs[i].len > imapd_append_limit()) {
			imapd_session_tagged(s, "NO [TOOBIG] Message too big "
			    "(APPENDLIMIT %llu)", imapd_append_limit());
			goto out;
		}
	if (imapd_store_index(s) == NULL) {
		imapd_session_tagged(s, "NO [UNAVAILABLE] Mail store not "
		    "available");
		goto out;
	}
	if (!imapd_store_folder_exists(imapd_store_path(s),
	    buf_cstr(&name))) {
		imapd_session_tagged(s, "NO [TRYCREATE] Mailbox does not "
		    "exist");
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (append_one(s, buf_cstr(&name), &msgs[i], &uids[i], &uidv,
		    &why) < 0) {
			int err_no = errno;

			msg_warn("%s: APPEND %s: %s", buf_cstr(&s->login),
			    buf_cstr(&name), buf_cstr(&why));
			buf_reset(&why);
			if (i > 0 && mindex_expunge(imapd_store_index(s),
			    buf_cstr(&name), uids, (size_t)i, NULL,
			    &why) < 0)
				msg_warn("%s: APPEND undo: %s",
				    buf_cstr(&s->login), buf_cstr(&why));
			imapd_sel_update(s, true);
			imapd_session_tagged(s, "NO [%s] APPEND failed",
			    err_no == ENOSPC || err_no == EDQUOT ?
			    "OVERQUOTA" : "SERVERBUG");
			goto out;
		}
	}
	for (i = 0; i < n; i++) {
		int j = i;

		while (j + 1 < n && uids[j + 1] == uids[j] + 1)
			j++;
		if (set.len > 0)
			buf_putc(&set, ',');
		if (j > i)
			buf_printf(&set, "%u:%u", uids[i], uids[j]);
		else
			buf_printf(&set, "%u", uids[i]);
		i = j;
	}
	imapd_sel_update(s, true);
	imapd_session_tagged(s, "OK [APPENDUID %u %s] APPEND completed",
	    uidv, buf_cstr(&set));
out:
	for (i = 0; i < APPEND_MAX; i++)
		for (size_t k = 0; k < msgs[i].nkw; k++)
			free(msgs[i].kw[k]);
	free(msgs);
	buf_free(&name);
	buf_free(&why);
	buf_free(&set);
}
