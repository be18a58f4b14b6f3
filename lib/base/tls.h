/*
 * tls - OpenSSL 3 contexts with herald's policy: TLS 1.2 and newer, no
 * compression, no renegotiation, server cipher preference.
 *
 * Contexts are built once per process (after the privilege drop, the key
 * file having been readable then, or before it when master passes it) and
 * shared by every stream of that process.
 */
#ifndef BASE_TLS_H
#define BASE_TLS_H

#include <openssl/ssl.h>

struct buf;

/* tls_server_ctx_new - server context from PEM cert chain and key files */
SSL_CTX *tls_server_ctx_new(const char *cert_file, const char *key_file,
    struct buf *why);
/* tls_client_ctx_new - client context; verifies against ca_file if given,
 * else the system store; verification failure is the caller's choice */
SSL_CTX *tls_client_ctx_new(const char *ca_file, struct buf *why);
/* tls_error_text - append the OpenSSL error queue to why (and clear it) */
void tls_error_text(struct buf *why);

#endif
