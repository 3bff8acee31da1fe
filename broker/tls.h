/*
 * tls.h: OpenSSL contexts for the gRPC listener, and the caller identity
 * carried in a certificate's SAN URI (urn:chakong:<role>:<id>).
 */
#ifndef CK_TLS_H
#define CK_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

enum ck_role {
	CK_ROLE_NONE = 0,	/* no or unreadable chakong identity */
	CK_ROLE_COURT,
	CK_ROLE_BROKER,
	CK_ROLE_AGENCY,
};

struct ck_identity {
	enum ck_role role;
	char id[64];		/* "440100" */
	char name[80];		/* "court:440100", for logs and counting */
};

const char *ck_role_name(enum ck_role role);

/*
 * Parse "urn:chakong:court:440100". The id is 1..63 of [A-Za-z0-9._-].
 * Returns 0 or CK_EINVAL.
 */
int ck_identity_parse_uri(const char *uri, size_t len,
    struct ck_identity *out);

/*
 * The identity in the peer certificate of an established connection: the
 * first SAN URI that parses. Returns 0, or CK_ENOTFOUND when the
 * certificate has none (out->role is then CK_ROLE_NONE).
 */
int ck_tls_peer_identity(SSL *ssl, struct ck_identity *out);

/*
 * Server context: TLS 1.2 minimum (1.3 preferred by OpenSSL's order),
 * ALPN must select "h2" (a client offering only other protocols gets a
 * no_application_protocol alert), a client certificate is required and
 * verified against ca_file, session resumption by tickets and cache.
 * Returns 0 or CK_ETLS with the reason in err.
 */
int ck_tls_server_ctx_new(const char *cert, const char *key,
    const char *ca_file, SSL_CTX **out, char *err, size_t errlen);

/*
 * Check client certificates against the revocation list(s) in crl_file
 * (PEM, one or more CRLs) on every handshake: a revoked certificate, or
 * one whose issuer has no CRL in the file, fails the handshake. The
 * context's store is the one new handshakes use, so a reload builds a new
 * context with a new list. Returns 0 or CK_ETLS with the reason in err.
 */
int ck_tls_server_ctx_load_crl(SSL_CTX *ctx, const char *crl_file, char *err,
    size_t errlen);

/*
 * Does the client certificate of an established connection still verify
 * against ctx's trust store (its CA and CRL, the time now)? After a
 * reload, to stop a connection whose certificate was revoked since.
 * Returns 0, or CK_ETLS with the verify error's text in *why.
 */
int ck_tls_peer_reverify(SSL_CTX *ctx, SSL *ssl, const char **why);

/*
 * libevent 2.1's bufferevent_openssl reads until SSL_pending() is 0, and
 * SSL_pending() does not count whole records OpenSSL already holds but has
 * not decrypted (a read(2) can return several; OpenSSL keeps the rest).
 * Those would wait for the peer's next bytes — a call stalls until its
 * deadline. After draining the bufferevent's input, call this: it reads
 * what OpenSSL still holds and hands it to feed(), which returns < 0 to
 * stop. Returns 0, or feed's error.
 */
typedef int (*ck_tls_feed_fn)(void *arg, const uint8_t *data, size_t len);
int ck_tls_drain_pending(SSL *ssl, ck_tls_feed_fn feed, void *arg);

/* True when the connection negotiated ALPN "h2". */
bool ck_tls_alpn_is_h2(const SSL *ssl);

#endif
