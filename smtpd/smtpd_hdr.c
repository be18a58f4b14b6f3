/*
 * smtpd_hdr - a streaming scan of the header section of submitted mail,
 * between the DATA/BDAT content parsers and the queue file.
 *
 * Submission (RFC 6409 8.2, 8.3) adds Message-ID: and Date: when the
 * client left them out, and smtpd_sender_login = strict checks the From:
 * addresses, so smtpd must know the header fields before the file is
 * complete, while the content streams through in chunks of any size.
 * The scan passes every byte on unchanged, notes Message-ID:, Date: and
 * the From: values, and at the end of the header section (the empty
 * line, a line that is no header field, or the end of the content) calls
 * at_end once, before the bytes that end the section, so the fields it
 * writes land inside the header section. A line that is no field (no
 * colon) gets the empty line that RFC 5322 wants before it: readers that
 * would take the lines after it for fields (Dovecot's parser does) must
 * not see a From: there that the strict check never saw.
 *
 * Bounds: the start of a line is held back until it is known to be a
 * field name, blanks before its colon included (SMTPD_HDR_NAME_MAX
 * bytes); a longer name is passed on and the section is taken as ended
 * without at_end (nothing can be inserted in the middle of a line). From: values are kept up to
 * SMTPD_HDR_FROM_MAX bytes (from_long past that). After the section,
 * bytes pass straight through.
 */
#include <string.h>

#include "base/buf.h"
#include "base/str.h"
#include "smtpd.h"

enum {
	SMTPD_HDR_START,	/* at a line start, nothing held */
	SMTPD_HDR_NAME,		/* holding a field name */
	SMTPD_HDR_NAME_WSP,	/* ... and blanks after it */
	SMTPD_HDR_VALUE,	/* in a field's value */
	SMTPD_HDR_VALUE_CR,	/* after CR in a value */
	SMTPD_HDR_EMPTY_CR,	/* holding the CR of an empty line */
	SMTPD_HDR_BODY,		/* the section has ended */
};

enum { SMTPD_HDR_F_OTHER, SMTPD_HDR_F_FROM };

/* smtpd_hdr_init - a scan at the start of the content */
void
smtpd_hdr_init(struct smtpd_hdr *h, smtpd_hdr_end_fn *at_end)
{
	buf_free(&h->from);
	memset(h, 0, sizeof(*h));
	buf_init(&h->from);
	h->state = SMTPD_HDR_START;
	h->at_end = at_end;
}

/* smtpd_hdr_free - release the From: text */
void
smtpd_hdr_free(struct smtpd_hdr *h)
{
	buf_free(&h->from);
}

/* smtpd_hdr_from_add - one byte of a From: value, bounded */
static inline void
smtpd_hdr_from_add(struct smtpd_hdr *h, char c)
{
	if (h->field != SMTPD_HDR_F_FROM)
		return;
	if (h->from.len >= SMTPD_HDR_FROM_MAX)
		h->from_long = true;
	else if (c != '\r' && c != '\n')
		buf_append(&h->from, &c, 1);
}

/* smtpd_hdr_field - the held name ended with ':': which field is it */
static void
smtpd_hdr_field(struct smtpd_hdr *h)
{
	size_t n = h->state == SMTPD_HDR_NAME_WSP ? h->wlen : h->nlen;

	h->field = SMTPD_HDR_F_OTHER;
	if (n == 4 && str_ncasecmp(h->name, "from", 4) == 0) {
		h->field = SMTPD_HDR_F_FROM;
		if (h->nfrom++ > 0 && h->from.len < SMTPD_HDR_FROM_MAX)
			buf_puts(&h->from, ",");
	} else if (n == 10 && str_ncasecmp(h->name, "message-id", 10) == 0) {
		h->has_msgid = true;
	} else if (n == 4 && str_ncasecmp(h->name, "date", 4) == 0) {
		h->has_date = true;
	}
}

/* smtpd_hdr_finish - the section ends here: at_end, the empty line
 * when a line that is no field ended it (separate), then what was held */
static void
smtpd_hdr_finish(struct smtpd_hdr *h, smtpd_data_out_fn *out, void *ctx,
    bool separate)
{
	h->state = SMTPD_HDR_BODY;
	h->done = true;
	if (h->at_end != NULL)
		h->at_end(h, ctx);
	if (separate) {
		out(ctx, "\r\n", 2);
		h->separated = true;
	}
	if (h->nlen > 0)
		out(ctx, h->name, h->nlen);
	h->nlen = 0;
}

/* smtpd_hdr_name_ok - a byte of a field name (RFC 5322 ftext) */
static inline bool
smtpd_hdr_name_ok(unsigned char c)
{
	return c >= 33 && c <= 126 && c != ':';
}

/* smtpd_hdr_feed - pass p[0..n) to out, scanning the header section */
void
smtpd_hdr_feed(struct smtpd_hdr *h, const char *p, size_t n,
    smtpd_data_out_fn *out, void *ctx)
{
	size_t i, run = 0;

	for (i = 0; i < n && h->state != SMTPD_HDR_BODY; i++) {
		char c = p[i];

		switch (h->state) {
		case SMTPD_HDR_START:
			if (i > run)
				out(ctx, p + run, i - run);
			run = i + 1;
			if (c == ' ' || c == '\t') {
				/* a folded line of the field before */
				run = i;
				h->state = h->seen ? SMTPD_HDR_VALUE :
				    SMTPD_HDR_BODY;
				if (!h->seen) {
					run = i + 1;
					h->name[h->nlen++] = c;
					smtpd_hdr_finish(h, out, ctx, true);
				} else {
					smtpd_hdr_from_add(h, c);
				}
			} else if (c == '\r') {
				h->name[h->nlen++] = c;
				h->state = SMTPD_HDR_EMPTY_CR;
			} else if (smtpd_hdr_name_ok((unsigned char)c)) {
				h->name[h->nlen++] = c;
				h->state = SMTPD_HDR_NAME;
			} else {
				/* a bare LF is an empty line; else no field */
				h->name[h->nlen++] = c;
				smtpd_hdr_finish(h, out, ctx, c != '\n');
			}
			break;
		case SMTPD_HDR_NAME:
		case SMTPD_HDR_NAME_WSP:
			if (c == ':') {
				smtpd_hdr_field(h);
				h->seen = true;
				out(ctx, h->name, h->nlen);
				h->nlen = 0;
				run = i;
				h->state = SMTPD_HDR_VALUE;
			} else if (c != ' ' && c != '\t' &&
			    (h->state == SMTPD_HDR_NAME_WSP ||
			    !smtpd_hdr_name_ok((unsigned char)c))) {
				/* no header field: the body starts */
				smtpd_hdr_finish(h, out, ctx, true);
				run = i;
			} else if (h->nlen < SMTPD_HDR_NAME_MAX) {
				/* blanks before the colon are still a field
				 * (RFC 5322 4.5.8 obs-optional), as readers
				 * take it: "From :" must not end the scan */
				if (h->state == SMTPD_HDR_NAME &&
				    (c == ' ' || c == '\t')) {
					h->wlen = h->nlen;
					h->state = SMTPD_HDR_NAME_WSP;
				}
				h->name[h->nlen++] = c;
				run = i + 1;
			} else {
				/* too long to hold: pass it, insert nothing */
				out(ctx, h->name, h->nlen);
				h->nlen = 0;
				h->state = SMTPD_HDR_BODY;
				h->done = true;
				h->lost = true;
				run = i;
			}
			break;
		case SMTPD_HDR_VALUE:
			if (c == '\r')
				h->state = SMTPD_HDR_VALUE_CR;
			else if (c == '\n')
				h->state = SMTPD_HDR_START;
			else
				smtpd_hdr_from_add(h, c);
			break;
		case SMTPD_HDR_VALUE_CR:
			if (c == '\n') {
				h->state = SMTPD_HDR_START;
			} else {
				h->state = SMTPD_HDR_VALUE;
				smtpd_hdr_from_add(h, c);
			}
			break;
		case SMTPD_HDR_EMPTY_CR:
		default:
			/* CRLF (or CR and anything): the section's end */
			smtpd_hdr_finish(h, out, ctx, false);
			run = i;
			break;
		}
	}
	if (n > run)
		out(ctx, p + run, n - run);
}

/* smtpd_hdr_end - the content is complete: end the section if open */
void
smtpd_hdr_end(struct smtpd_hdr *h, smtpd_data_out_fn *out, void *ctx)
{
	if (h->state != SMTPD_HDR_BODY)
		smtpd_hdr_finish(h, out, ctx, false);
}
