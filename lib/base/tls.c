/*
 * tls - build OpenSSL 3 server and client contexts with herald's policy
 * (TLS 1.2+, no compression, no renegotiation, server cipher preference)
 * and turn the OpenSSL error queue into text.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "base/buf.h"
#include "base/str.h"
#include "base/tls.h"

/* tls_error_text - append the OpenSSL error queue to why and clear it */
void
tls_error_text(struct buf *why)
{
	unsigned long e;
	const char *file, *data, *reason;
	int line, flags;
	size_t start = why != NULL ? why->len : 0;
	char text[256], generic[64] = "";

	while ((e = ERR_get_error_all(&file, &line, NULL, &data,
	    &flags)) != 0) {
		if (why == NULL)
			continue;
		if (ERR_SYSTEM_ERROR(e)) {
			reason = strerror(ERR_GET_REASON(e));
		} else if ((reason = ERR_reason_error_string(e)) == NULL) {
			ERR_error_string_n(e, text, sizeof(text));
			reason = text;
		}
		/*
		 * "system lib", "PEM lib" and the like only say which layer
		 * passed the error up: keep one in case nothing else comes.
		 */
		if (strlen(reason) > 4 &&
		    strcmp(reason + strlen(reason) - 4, " lib") == 0) {
			if (generic[0] == '\0')
				str_lcpy(generic, reason, sizeof(generic));
			continue;
		}
		if (why->len > start)
			buf_puts(why, "; ");
		buf_puts(why, reason);
		if ((flags & ERR_TXT_STRING) && data != NULL && *data != '\0')
			buf_printf(why, " (%s)", data);
	}
	if (why != NULL && why->len == start)
		buf_puts(why, generic[0] != '\0' ? generic :
		    "unknown TLS error");
}

/* tls_ctx_policy - options shared by server and client contexts */
static int
tls_ctx_policy(SSL_CTX *ctx)
{
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
		return -1;
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
	    SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* RELEASE_BUFFERS: a connection with nothing in flight gives its
	 * 16 KB+ record buffers back, so an idle session (IMAP IDLE: many
	 * thousands per worker) holds only its SSL state */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	return 0;
}

/* tls_server_ctx_new - server context from PEM cert chain and key files */
SSL_CTX *
tls_server_ctx_new(const char *cert_file, const char *key_file,
    struct buf *why)
{
	SSL_CTX *ctx;

	ERR_clear_error();
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		buf_puts(why, "TLS context: ");
		tls_error_text(why);
		return NULL;
	}
	if (tls_ctx_policy(ctx) < 0) {
		buf_puts(why, "TLS context: ");
		tls_error_text(why);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
		buf_printf(why, "certificate %s: ", cert_file);
		tls_error_text(why);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
		buf_printf(why, "private key %s: ", key_file);
		tls_error_text(why);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		/* OpenSSL's reason ("no certificate assigned" for a key of
		 * another type) only confuses */
		ERR_clear_error();
		buf_printf(why, "private key %s does not match certificate "
		    "%s", key_file, cert_file);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* tls_client_ctx_new - client context verifying against ca_file or system */
SSL_CTX *
tls_client_ctx_new(const char *ca_file, struct buf *why)
{
	SSL_CTX *ctx;
	int ok;

	ERR_clear_error();
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		buf_puts(why, "TLS context: ");
		tls_error_text(why);
		return NULL;
	}
	if (tls_ctx_policy(ctx) < 0) {
		buf_puts(why, "TLS context: ");
		tls_error_text(why);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (ca_file != NULL && *ca_file != '\0')
		ok = SSL_CTX_load_verify_locations(ctx, ca_file, NULL);
	else
		ok = SSL_CTX_set_default_verify_paths(ctx);
	if (ok != 1) {
		buf_printf(why, "CA file %s: ", ca_file != NULL && *ca_file ?
		    ca_file : "(system default)");
		tls_error_text(why);
		SSL_CTX_free(ctx);
		return NULL;
	}
	/*
	 * Verification runs, but a failure does not abort the handshake:
	 * the caller checks SSL_get_verify_result() and decides.
	 */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	return ctx;
}
