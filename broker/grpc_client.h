/*
 * grpc_client.h: an asynchronous gRPC unary client on one libevent loop,
 * over HTTP/2 (nghttp2) and mutual TLS (OpenSSL via bufferevent_openssl).
 * Used by chakongctl and by the adapters that call agencies.
 *
 * A channel is one HTTP/2 connection to one server, made lazily on the
 * first call and shared by every call started on it (one stream each).
 * A channel never reconnects: once it has failed, been told GOAWAY, or
 * run out of stream ids it reports !ck_grpc_channel_usable() and a pool
 * replaces it with a new one. Calls started on an unusable channel fail
 * with UNAVAILABLE, "not delivered". A pool that replaces a channel
 * resumes its TLS session: ck_grpc_channel_get1_session() from the old
 * channel, opts.session for the new one; opts.on_state tells it when a
 * connection comes up (resumed or not) or closes (failed to connect or
 * lost).
 *
 * Channel states (ck_grpc_channel_state()):
 *
 *   IDLE --first call--> CONNECTING --TLS up, ALPN h2--> READY
 *                            |                             |
 *                            | failure/timeout             | GOAWAY, drain,
 *                            v                             v  ids exhausted
 *                          CLOSED <--last stream ends-- DRAINING
 *                            ^                             |
 *                            +------connection lost--------+ (and READY)
 *
 * The callback contract (the same as the adapters' in adapter.h):
 *  - a call that ck_grpc_call_start() accepted (returned 0) gets its
 *    callback exactly once, from the event loop, never from inside
 *    ck_grpc_call_start(), and never after ck_grpc_call_cancel();
 *  - statuses the client makes up itself carry a message that says why
 *    ("deadline exceeded", "not delivered: connection refused", ...);
 *  - ck_grpc_call_delivery() tells, inside the callback, whether the
 *    server may have acted on the request: only a call reported
 *    CK_GRPC_NOT_SENT is known not to have been delivered (connect
 *    failure, REFUSED_STREAM, GOAWAY below its stream id, channel
 *    unusable). A deadline or a lost connection after the request left
 *    is CK_GRPC_IN_DOUBT: the outcome is unknown, never "failed".
 *
 * Everything runs on the loop's thread; nothing here is thread-safe.
 * The process must ignore SIGPIPE (signal(SIGPIPE, SIG_IGN)): OpenSSL
 * writes with send() without MSG_NOSIGNAL, and a peer that has gone
 * would otherwise kill the process instead of failing one connection.
 * Host names are resolved with getaddrinfo() when the connection is
 * made, which blocks the loop for that look-up: the daemon should name
 * its agencies by address, or resolve at start-up.
 */
#ifndef CK_GRPC_CLIENT_H
#define CK_GRPC_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct ssl_ctx_st;     /* OpenSSL's SSL_CTX */
struct ssl_session_st; /* OpenSSL's SSL_SESSION */
struct ck_grpc_channel;
struct ck_grpc_call;

enum ck_grpc_channel_state {
	CK_GRPC_CH_IDLE = 0,
	CK_GRPC_CH_CONNECTING,
	CK_GRPC_CH_READY,
	CK_GRPC_CH_DRAINING,
	CK_GRPC_CH_CLOSED,
};

/*
 * Told of every change of a channel's state, from inside the channel
 * (possibly from inside nghttp2 or OpenSSL callbacks): record what it
 * means, arm an event of your own if there is work to do, and return.
 * It must not free or drain the channel, nor start or cancel calls.
 */
typedef void (*ck_grpc_state_cb)(
    void *arg, struct ck_grpc_channel *chan, enum ck_grpc_channel_state state);

/* Defaults used when the matching option is 0. */
#define CK_GRPC_CONNECT_TIMEOUT_MS 10000
#define CK_GRPC_MAX_REPLY_BYTES	   (4u << 20)

struct ck_grpc_channel_opts {
	const char *host; /* required: DNS name or IP literal */
	uint16_t port;	  /* required */
	/* :authority sent on every call; NULL = "host:port". */
	const char *authority;
	/*
	 * Name the server certificate must carry (DNS SAN or IP SAN, by
	 * OpenSSL's rules); also sent as SNI when it is a DNS name. NULL
	 * checks no name: the chain is still verified against the CA, so
	 * use it only with a CA that issues to nothing but our servers.
	 */
	const char *expect_host;
	/*
	 * A SAN URI the server certificate must carry, e.g.
	 * "urn:chakong:agency:icbc"; NULL = not checked.
	 */
	const char *expect_uri;
	/*
	 * A ready client context (see ck_grpc_tls_client_new()); the
	 * channel takes a reference of its own, so the caller may free
	 * its one at once. When NULL the channel builds one from the
	 * three files below (ca_file required; cert and key together).
	 */
	struct ssl_ctx_st *ssl_ctx;
	const char *ca_file;
	const char *cert_file;
	const char *key_file;
	/* TCP connect plus TLS handshake; 0 = CK_GRPC_CONNECT_TIMEOUT_MS. */
	uint32_t connect_timeout_ms;
	/* Largest reply message; 0 = CK_GRPC_MAX_REPLY_BYTES. */
	uint32_t max_reply_bytes;
	/* Shown in debug log lines; NULL = "host:port". */
	const char *log_id;
	/*
	 * A TLS session to offer for resumption (from an earlier channel
	 * to the same server: ck_grpc_channel_get1_session()); the channel
	 * takes a reference of its own. NULL = a full handshake. Never
	 * offer one server's session to another: the resumed handshake
	 * shows no certificate chain to verify, and expect_host and
	 * expect_uri are then checked against the certificate the session
	 * remembers.
	 */
	struct ssl_session_st *session;
	/* See ck_grpc_state_cb; NULL = not told. */
	ck_grpc_state_cb on_state;
	void *state_arg;
};

/* Whether the server may have acted on a finished call. */
enum ck_grpc_delivery {
	CK_GRPC_NOT_SENT = 0, /* known not delivered: safe to fail/retry */
	CK_GRPC_IN_DOUBT,     /* sent, no status from the server */
	CK_GRPC_ANSWERED,     /* the status is the server's own */
};

/*
 * Called once per accepted call. `status` is a gRPC status code (enum
 * ck_grpc_status in grpc_frame.h); `message` is the decoded grpc-message
 * or the client's own reason, never NULL ("" when none); `reply` and
 * `len` are the reply message when status is OK (reply may be non-NULL
 * with len 0 for an empty message), else NULL and 0. All three are
 * borrowed for the duration of the callback. The callback may start
 * and cancel other calls and may free the channel.
 */
typedef void (*ck_grpc_done_cb)(void *arg, int status, const char *message,
    const uint8_t *reply, size_t len);

/*
 * A client TLS context for the channels: TLS 1.2 minimum (AEAD ECDHE
 * suites only, as HTTP/2 requires), peer verification against ca_file,
 * ALPN "h2", and the client certificate chain and key when cert_file and
 * key_file are given (both or neither). One context can serve any number
 * of channels. Returns 0, CK_EINVAL (ca_file missing, cert without key)
 * or CK_ETLS, with a reason naming the file in err. Free with
 * SSL_CTX_free().
 */
int ck_grpc_tls_client_new(const char *ca_file, const char *cert_file,
    const char *key_file, struct ssl_ctx_st **out, char *err, size_t errlen);

/*
 * A channel on base. Does not connect yet. Returns 0, CK_EINVAL (no host
 * or port), CK_ETLS (a file could not be used; see ck_grpc_tls_client_new
 * for the reason) or CK_ENOMEM.
 */
int ck_grpc_channel_new(struct event_base *base,
    const struct ck_grpc_channel_opts *opts, struct ck_grpc_channel **out);

/*
 * Close the connection at once and free the channel. Calls still in
 * flight are dropped without their callbacks (as if cancelled), so their
 * handles are dead too. NULL-safe; may be called from a callback.
 */
void ck_grpc_channel_free(struct ck_grpc_channel *chan);

/*
 * Retire the channel gracefully: it refuses new calls (UNAVAILABLE, not
 * delivered), lets the calls in flight finish with their callbacks, and
 * then frees itself. The caller gives up the pointer. NULL-safe.
 */
void ck_grpc_channel_drain(struct ck_grpc_channel *chan);

enum ck_grpc_channel_state ck_grpc_channel_state(
    const struct ck_grpc_channel *chan);

/* True while a call started now would be attempted (IDLE, CONNECTING or
 * READY, not draining). */
bool ck_grpc_channel_usable(const struct ck_grpc_channel *chan);

/* Calls started and not yet finished or cancelled. */
size_t ck_grpc_channel_calls(const struct ck_grpc_channel *chan);

/* Why the channel closed or drains ("" while it has not). */
const char *ck_grpc_channel_error(const struct ck_grpc_channel *chan);

/*
 * The newest resumable TLS session of the channel's connection (the live
 * one, or the last one before it closed), with a reference for the
 * caller (SSL_SESSION_free() it), or NULL when there is none: never
 * connected, or the server issued no ticket. Under TLS 1.3 the tickets
 * arrive after the handshake, so ask after the first reply, or after the
 * connection has closed.
 */
struct ssl_session_st *ck_grpc_channel_get1_session(
    const struct ck_grpc_channel *chan);

/* Whether the last TLS handshake resumed a session (false before one). */
bool ck_grpc_channel_session_reused(const struct ck_grpc_channel *chan);

/*
 * Start a unary call: `path` is "/package.Service/Method"; `req`/`len`
 * the serialised request message (copied; len may be 0); timeout_usec
 * the deadline from now, sent as grpc-timeout and enforced locally (the
 * stream is reset with CANCEL and the call reported DEADLINE_EXCEEDED);
 * 0 means no deadline, which only tools should use. `out` may be NULL
 * when the caller never cancels.
 *
 * Returns 0 when the callback will run, or, without ever running it,
 * CK_EINVAL (path not "/...", cb NULL, req NULL with len > 0), CK_ETOOBIG
 * (len over 4 GiB - 1) or CK_ENOMEM.
 */
int ck_grpc_call_start(struct ck_grpc_channel *chan, const char *path,
    const uint8_t *req, size_t len, uint64_t timeout_usec, ck_grpc_done_cb cb,
    void *arg, struct ck_grpc_call **out);

/*
 * Abandon a call: its callback will not run, the stream (if any) is
 * reset with CANCEL, and the handle is freed. NULL-safe. The handle dies
 * when the callback returns, so cancel only before; inside the call's
 * own callback this does nothing. A cancelled call that was sent has an
 * unknown outcome on the server.
 */
void ck_grpc_call_cancel(struct ck_grpc_call *call);

/* Inside the callback: whether the server may have acted on the call. */
enum ck_grpc_delivery ck_grpc_call_delivery(const struct ck_grpc_call *call);

#endif
