/*
 * mime_decode - streaming Content-Transfer-Encoding decoders (RFC 2045
 * 6.7 quoted-printable, 6.8 base64) for IMAP BINARY[] and SEARCH.
 *
 * The state between calls is a few bytes, so a body can be fed in any
 * chunking and gives the same output. Invalid input never stops the
 * decoding: base64 skips bytes outside its alphabet, quoted-printable
 * passes a bad "=XY" through as it is; both count them in errors. Output
 * is bounded by the limit of the caller's buffer.
 */
#include <string.h>

#include "base/buf.h"
#include "mail/mime.h"

/* mime_decoder_init - a decoder for enc */
void
mime_decoder_init(struct mime_decoder *d, enum mime_enc enc)
{
	memset(d, 0, sizeof(*d));
	d->enc = enc;
}

/* mime_decode_b64val - the value of a base64 digit, -1 for others */
static int
mime_decode_b64val(unsigned char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+')
		return 62;
	if (ch == '/')
		return 63;
	return -1;
}

/* mime_decode_hex - the value of an (upper or lower case) hex digit */
static int
mime_decode_hex(unsigned char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/* mime_decode_base64 - feed base64 text */
static void
mime_decode_base64(struct mime_decoder *d, const char *in, size_t n,
    struct buf *out)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)in[i];
		int v = mime_decode_b64val(ch);

		if (v < 0) {
			/* line breaks, blanks and padding are expected */
			if (ch != '=' && ch != '\r' && ch != '\n' &&
			    ch != ' ' && ch != '\t')
				d->errors++;
			if (ch == '=')
				d->nbits = 0;	/* the end of a group */
			continue;
		}
		d->bits = (d->bits << 6 | (unsigned)v) & 0xffffff;
		d->nbits += 6;
		if (d->nbits >= 8) {
			d->nbits -= 8;
			buf_putc(out, (int)(d->bits >> d->nbits) & 0xff);
		}
	}
}

/* mime_decode_qp_blanks - write the blanks held back */
static void
mime_decode_qp_blanks(struct mime_decoder *d, struct buf *out)
{
	buf_append(out, d->qp_blank_buf, d->qp_blanks);
	d->qp_blanks = 0;
}

/* mime_decode_qp - feed quoted-printable text */
static void
mime_decode_qp(struct mime_decoder *d, const char *in, size_t n,
    struct buf *out)
{
	for (size_t i = 0; i < n; i++) {
		char ch = in[i];

		switch (d->qp_state) {
		case 0:	/* text */
			if (ch == ' ' || ch == '\t') {
				/* held back: blanks at a line end go */
				if (d->qp_blanks == sizeof(d->qp_blank_buf))
					mime_decode_qp_blanks(d, out);
				d->qp_blank_buf[d->qp_blanks++] = ch;
			} else if (ch == '\r' || ch == '\n') {
				d->qp_blanks = 0;
				buf_putc(out, ch);
			} else if (ch == '=') {
				mime_decode_qp_blanks(d, out);
				d->qp_state = 1;
			} else {
				mime_decode_qp_blanks(d, out);
				buf_putc(out, ch);
			}
			break;
		case 1:	/* after '=' */
			if (mime_decode_hex((unsigned char)ch) >= 0) {
				d->qp_hex = ch;
				d->qp_state = 2;
			} else if (ch == '\n') {
				d->qp_state = 0;	/* soft line break */
			} else if (ch == '\r' || ch == ' ' || ch == '\t') {
				d->qp_state = 3;	/* soft break to come */
			} else {
				d->errors++;
				buf_putc(out, '=');
				d->qp_state = 0;
				i--;	/* look at ch again as text */
			}
			break;
		case 2:	/* after "=X" */
			if (mime_decode_hex((unsigned char)ch) >= 0) {
				buf_putc(out, mime_decode_hex(
				    (unsigned char)d->qp_hex) << 4 |
				    mime_decode_hex((unsigned char)ch));
				d->qp_state = 0;
			} else {
				d->errors++;
				buf_putc(out, '=');
				buf_putc(out, d->qp_hex);
				d->qp_state = 0;
				i--;
			}
			break;
		default: /* after '=' and blanks or CR: the line must end */
			if (ch == '\n') {
				d->qp_state = 0;
			} else if (ch != '\r' && ch != ' ' && ch != '\t') {
				/* not a soft break after all: the '=' and
				 * the blanks are lost, as most decoders do */
				d->errors++;
				d->qp_state = 0;
				i--;
			}
			break;
		}
	}
}

/* mime_decoder_feed - decode in[0..n) onto out */
void
mime_decoder_feed(struct mime_decoder *d, const char *in, size_t n,
    struct buf *out)
{
	if (d->enc == MIME_ENC_BASE64)
		mime_decode_base64(d, in, n, out);
	else if (d->enc == MIME_ENC_QP)
		mime_decode_qp(d, in, n, out);
	else
		buf_append(out, in, n);
}

/* mime_decoder_end - flush what is held back */
void
mime_decoder_end(struct mime_decoder *d, struct buf *out)
{
	if (d->enc == MIME_ENC_QP) {
		/* blanks at the very end are a line end's trailing ones */
		if (d->qp_state == 1 || d->qp_state == 2) {
			d->errors++;
			buf_putc(out, '=');
			if (d->qp_state == 2)
				buf_putc(out, d->qp_hex);
		}
		d->qp_blanks = 0;
		d->qp_state = 0;
	} else if (d->enc == MIME_ENC_BASE64) {
		if (d->nbits >= 6)
			d->errors++;	/* a lone digit */
		d->nbits = 0;
	}
}
