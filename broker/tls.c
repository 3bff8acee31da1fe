/*
 * tls.c: server TLS contexts and certificate identities (see tls.h).
 * OpenSSL's errors are converted here, once, into text for the caller.
 */
#include "tls.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "chakong/status.h"
#include "util.h"

static const unsigned char alpn_h2[] = "\x02h2";

const char *
ck_role_name(enum ck_role role)
{
	switch (role) {
	case CK_ROLE_COURT:
		return "court";
	case CK_ROLE_BROKER:
		return "broker";
	case CK_ROLE_AGENCY:
		return "agency";
	default:
		return "none";
	}
}

int
ck_identity_parse_uri(const char *uri, size_t len, struct ck_identity *out)
{
	static const struct {
		const char *prefix;
		enum ck_role role;
	} roles[] = {
		{ "urn:chakong:court:", CK_ROLE_COURT },
		{ "urn:chakong:broker:", CK_ROLE_BROKER },
		{ "urn:chakong:agency:", CK_ROLE_AGENCY },
	};

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < CK_ARRAY_SIZE(roles); i++) {
		size_t plen = strlen(roles[i].prefix);
		const char *id = uri + plen;
		size_t idlen = len - plen;

		if (len <= plen || memcmp(uri, roles[i].prefix, plen) != 0)
			continue;
		if (idlen >= sizeof(out->id))
			return CK_EINVAL;
		for (size_t j = 0; j < idlen; j++) {
			char c = id[j];
			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9') || c == '.' || c == '_' ||
			    c == '-'))
				return CK_EINVAL;
		}
		out->role = roles[i].role;
		memcpy(out->id, id, idlen);
		out->id[idlen] = '\0';
		snprintf(out->name, sizeof(out->name), "%s:%s",
		    ck_role_name(out->role), out->id);
		return 0;
	}
	return CK_EINVAL;
}

int
ck_tls_peer_identity(SSL *ssl, struct ck_identity *out)
{
	X509 *cert = SSL_get0_peer_certificate(ssl);
	GENERAL_NAMES *names;
	int rc = CK_ENOTFOUND;

	memset(out, 0, sizeof(*out));
	if (cert == NULL)
		return CK_ENOTFOUND;
	names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	if (names == NULL)
		return CK_ENOTFOUND;
	for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
		const ASN1_IA5STRING *uri;

		if (gn->type != GEN_URI)
			continue;
		uri = gn->d.uniformResourceIdentifier;
		if (ck_identity_parse_uri((const char *)ASN1_STRING_get0_data(
		    uri), (size_t)ASN1_STRING_length(uri), out) == 0) {
			rc = 0;
			break;
		}
	}
	GENERAL_NAMES_free(names);
	return rc;
}

static int
on_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
	(void)ssl;
	(void)arg;
	if (SSL_select_next_proto((unsigned char **)out, outlen, alpn_h2,
	    sizeof(alpn_h2) - 1, in, inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	return SSL_TLSEXT_ERR_OK;
}

int
ck_tls_drain_pending(SSL *ssl, ck_tls_feed_fn feed, void *arg)
{
	uint8_t buf[16384];
	int n, rv;

	while (ssl != NULL && SSL_has_pending(ssl)) {
		n = SSL_read(ssl, buf, sizeof(buf));
		if (n <= 0) {
			/* WANT_READ: only part of a record; the rest comes
			 * with the socket's next readiness */
			ERR_clear_error();
			return 0;
		}
		if ((rv = feed(arg, buf, (size_t)n)) < 0)
			return rv;
	}
	return 0;
}

bool
ck_tls_alpn_is_h2(const SSL *ssl)
{
	const unsigned char *p = NULL;
	unsigned int len = 0;

	SSL_get0_alpn_selected(ssl, &p, &len);
	return len == 2 && memcmp(p, "h2", 2) == 0;
}

static int
ssl_fail(char *err, size_t errlen, const char *what, const char *path)
{
	unsigned long e = ERR_get_error();
	char buf[256] = "";

	if (e != 0)
		ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	snprintf(err, errlen, "%s %s: %s", what, path, buf);
	return CK_ETLS;
}

int
ck_tls_server_ctx_new(const char *cert, const char *key, const char *ca_file,
    SSL_CTX **out, char *err, size_t errlen)
{
	static const unsigned char sid_ctx[] = "chakongd";
	SSL_CTX *ctx;

	*out = NULL;
	ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL)
		return ssl_fail(err, errlen, "creating", "TLS context");
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* HTTP/2 forbids renegotiation and compression (RFC 7540 9.2);
	 * its own framing makes a missing close_notify harmless */
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
	    SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
	    SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* RFC 7540 9.2.2: TLS 1.2 with ephemeral key exchange and AEAD only */
	if (SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20") != 1) {
		ssl_fail(err, errlen, "setting ciphers of", "TLS context");
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		ssl_fail(err, errlen, "loading certificate", cert);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		ssl_fail(err, errlen, "loading key", key);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		ssl_fail(err, errlen, "key does not match certificate", cert);
		goto fail;
	}
	if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
		ssl_fail(err, errlen, "loading CA", ca_file);
		goto fail;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER |
	    SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	SSL_CTX_set_verify_depth(ctx, 4);
	/* resumption with client certificates needs a session id context */
	SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_sess_set_cache_size(ctx, 20000);
	SSL_CTX_set_alpn_select_cb(ctx, on_alpn_select, NULL);
	*out = ctx;
	return 0;
fail:
	SSL_CTX_free(ctx);
	return CK_ETLS;
}

int
ck_tls_server_ctx_load_crl(SSL_CTX *ctx, const char *crl_file, char *err,
    size_t errlen)
{
	X509_STORE *store = SSL_CTX_get_cert_store(ctx);
	X509_LOOKUP *lookup;
	int n;

	lookup = X509_STORE_add_lookup(store, X509_LOOKUP_file());
	if (lookup == NULL)
		return ssl_fail(err, errlen, "loading CRL", crl_file);
	n = X509_load_crl_file(lookup, crl_file, X509_FILETYPE_PEM);
	if (n <= 0)
		return ssl_fail(err, errlen, "loading CRL", crl_file);
	/* the leaf only: the CA itself is the trust anchor here */
	X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
	return 0;
}

int
ck_tls_peer_reverify(SSL_CTX *ctx, SSL *ssl, const char **why)
{
	X509 *cert = SSL_get0_peer_certificate(ssl);
	X509_STORE_CTX *xs;
	int ok;

	*why = "no client certificate";
	if (cert == NULL)
		return CK_ETLS;
	*why = "out of memory";
	if ((xs = X509_STORE_CTX_new()) == NULL)
		return CK_ETLS;
	/* as the handshake did: the context's parameters (depth, flags)
	 * and the purpose of a TLS client */
	ok = X509_STORE_CTX_init(xs, SSL_CTX_get_cert_store(ctx), cert,
	    SSL_get_peer_cert_chain(ssl)) == 1 &&
	    X509_STORE_CTX_set_default(xs, "ssl_client") == 1 &&
	    X509_VERIFY_PARAM_set1(X509_STORE_CTX_get0_param(xs),
	    SSL_CTX_get0_param(ctx)) == 1;
	if (ok)
		ok = X509_verify_cert(xs) == 1;
	*why = ok ? "" : X509_verify_cert_error_string(
	    X509_STORE_CTX_get_error(xs));
	X509_STORE_CTX_free(xs);
	ERR_clear_error();
	return ok ? 0 : CK_ETLS;
}
