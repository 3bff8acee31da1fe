/*
 * grpc_client.c: gRPC unary calls over one HTTP/2 connection per channel
 * (see grpc_client.h for the contract and the channel states).
 *
 * Call states:
 *
 *   QUEUED --connection READY, submitted--> OPEN --stream closed--> DONE
 *     |                                      |                       |
 *     +--conn failed, deadline, GOAWAY-------+--deadline, conn lost--+
 *                                                                    v
 *                                              callback from on_work, freed
 *
 * Every completion, whatever found it, only records the result and moves
 * the call to the `done` list; user callbacks run from one place, the
 * channel's deferred `work` event. So nghttp2 never calls into user code,
 * user code can free the channel from a callback, and no callback ever
 * runs inside ck_grpc_call_start(). The same event makes the connection
 * lazily and batches frames: every call started in one loop iteration
 * leaves in one write.
 *
 * Calls are found by stream id in the channel's `open` list rather than
 * through nghttp2's stream user data, so a cancelled call can never be
 * reached through a stale pointer, whatever nghttp2 still has queued.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "chakong/status.h"
#include "grpc_client.h"
#include "grpc_frame.h"
#include "log.h"
#include "tls.h"

/* Stop feeding nghttp2's output into the bufferevent past this much
 * unsent data; on_write resumes when it has drained. */
#define OUT_HIGH_WATER (64u * 1024)
/* Our SETTINGS: per-stream and connection receive windows large enough
 * that a 4 MiB reply does not wait on WINDOW_UPDATE round trips. */
#define STREAM_WINDOW	(1u << 20)
#define CONN_WINDOW	(16u << 20)
#define MAX_HEADER_LIST (64u * 1024)

enum call_state {
	CALL_QUEUED, /* waiting for the connection */
	CALL_OPEN,   /* submitted to nghttp2 */
	CALL_DONE,   /* result recorded, callback not yet run */
};

TAILQ_HEAD(call_list, ck_grpc_call);

struct ck_grpc_call {
	TAILQ_ENTRY(ck_grpc_call) link;
	struct ck_grpc_channel *chan;
	enum call_state state;
	ck_grpc_done_cb cb;
	void *arg;
	char *path;
	uint8_t *req; /* 5-byte prefix + message */
	size_t req_len;
	size_t req_off;	   /* how much nghttp2 has taken */
	uint64_t deadline; /* CLOCK_MONOTONIC usec; 0 = none */
	struct event *timer;
	int32_t stream_id; /* 0 until submitted */
	bool headers_sent;
	bool in_callback;

	/* What the server said. */
	int http_status;
	bool grpc_ctype; /* content-type application/grpc[+...|;...] */
	bool have_status;
	int grpc_status;
	char *grpc_message;
	bool identity_encoding; /* no grpc-encoding, or "identity" */
	struct ck_grpc_decoder dec;

	/* The result, once DONE. */
	int status;
	enum ck_grpc_delivery delivery;
	bool server_message; /* message is grpc_message */
	char local_message[192];
};

struct ck_grpc_channel {
	struct event_base *base;
	enum ck_grpc_channel_state state;
	char *host;
	uint16_t port;
	char *authority;
	char *expect_host;
	char *expect_uri;
	char *name;
	SSL_CTX *ctx;
	uint32_t connect_timeout_ms;
	size_t max_reply;

	struct addrinfo *ai_list;
	struct addrinfo *ai_next;
	char conn_error[160]; /* last connect failure, for the next try */
	struct bufferevent *bev;
	nghttp2_session *h2;
	struct event *work;
	struct event *conn_timer;

	struct call_list queued;
	struct call_list open;
	struct call_list done;
	size_t ncalls;

	bool goaway; /* the server sent GOAWAY */
	int32_t goaway_last_id;
	SSL_SESSION *session; /* to offer, then the newest resumable */
	bool reused;	      /* the last handshake resumed a session */
	bool up;	      /* bev holds a connection that was READY */
	ck_grpc_state_cb on_state;
	void *state_arg;

	bool self_owned;   /* ck_grpc_channel_drain(): free when idle */
	bool dispatching;  /* on_work is running callbacks */
	bool free_pending; /* freed from a callback; free after */
	char error[256];   /* why it closed or drains */
};

static void on_work(evutil_socket_t fd, short what, void *arg);
static void conn_close(struct ck_grpc_channel *chan, const char *why);

static uint64_t
now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void
schedule(struct ck_grpc_channel *chan)
{
	event_active(chan->work, EV_TIMEOUT, 0);
}

static void
set_state(struct ck_grpc_channel *chan, enum ck_grpc_channel_state st)
{
	if (chan->state == st)
		return;
	chan->state = st;
	if (chan->on_state != NULL)
		chan->on_state(chan->state_arg, chan, st);
}

/*
 * OpenSSL's errors are converted here, once: the first queued reason
 * (the root cause; later ones are consequences) goes into buf.
 */
static void
ssl_err(char *buf, size_t len, const char *what)
{
	unsigned long e = ERR_get_error();
	char reason[200];

	if (e == 0) {
		snprintf(buf, len, "%s", what);
		return;
	}
	ERR_error_string_n(e, reason, sizeof(reason));
	snprintf(buf, len, "%s: %s", what, reason);
	ERR_clear_error();
}

int
ck_grpc_tls_client_new(const char *ca_file, const char *cert_file,
    const char *key_file, struct ssl_ctx_st **out, char *err, size_t errlen)
{
	static const unsigned char alpn[] = "\x02h2";
	char what[600];
	SSL_CTX *ctx;
	int rc;

	*out = NULL;
	if (ca_file == NULL || ca_file[0] == '\0') {
		snprintf(err, errlen, "no CA file to verify the server with");
		return CK_EINVAL;
	}
	if ((cert_file == NULL) != (key_file == NULL)) {
		snprintf(err, errlen,
		    "a client certificate needs its key, "
		    "and a key its certificate");
		return CK_EINVAL;
	}
	ERR_clear_error();
	ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL) {
		ssl_err(err, errlen, "SSL_CTX_new");
		return CK_ETLS;
	}
	rc = CK_ETLS;
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20") != 1) {
		ssl_err(err, errlen, "TLS settings");
		goto fail;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	/* Inverted convention: 0 is success here. */
	if (SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn) - 1) != 0) {
		ssl_err(err, errlen, "ALPN");
		goto fail;
	}
	if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
		snprintf(what, sizeof(what), "CA file %s", ca_file);
		ssl_err(err, errlen, what);
		goto fail;
	}
	if (cert_file != NULL) {
		if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
			snprintf(
			    what, sizeof(what), "certificate %s", cert_file);
			ssl_err(err, errlen, what);
			goto fail;
		}
		if (SSL_CTX_use_PrivateKey_file(
			ctx, key_file, SSL_FILETYPE_PEM) != 1) {
			snprintf(what, sizeof(what), "key %s", key_file);
			ssl_err(err, errlen, what);
			goto fail;
		}
		if (SSL_CTX_check_private_key(ctx) != 1) {
			snprintf(what, sizeof(what),
			    "key %s does not match "
			    "certificate %s",
			    key_file, cert_file);
			ssl_err(err, errlen, what);
			goto fail;
		}
	}
	*out = ctx;
	return 0;
fail:
	SSL_CTX_free(ctx);
	return rc;
}

/* ---- calls ---- */

static struct ck_grpc_call *
find_open(struct ck_grpc_channel *chan, int32_t stream_id)
{
	struct ck_grpc_call *call;

	TAILQ_FOREACH (call, &chan->open, link) {
		if (call->stream_id == stream_id)
			return call;
	}
	return NULL;
}

static struct call_list *
list_of(struct ck_grpc_channel *chan, enum call_state st)
{
	switch (st) {
	case CALL_QUEUED:
		return &chan->queued;
	case CALL_OPEN:
		return &chan->open;
	case CALL_DONE:
		break;
	}
	return &chan->done;
}

static void
call_free(struct ck_grpc_call *call)
{
	if (call->timer != NULL)
		event_free(call->timer);
	ck_grpc_decoder_reset(&call->dec);
	free(call->grpc_message);
	free(call->req);
	free(call->path);
	call->chan->ncalls--;
	free(call);
}

/*
 * Record the result and queue the callback. The only way a call leaves
 * QUEUED or OPEN. The stream, if any, is the caller's business (reset
 * it before when the server still thinks it open).
 */
static void call_finish(struct ck_grpc_call *call, int status,
    enum ck_grpc_delivery delivery, bool server_message, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void
call_finish(struct ck_grpc_call *call, int status,
    enum ck_grpc_delivery delivery, bool server_message, const char *fmt, ...)
{
	struct ck_grpc_channel *chan = call->chan;
	va_list ap;

	if (call->state == CALL_DONE)
		return;
	TAILQ_REMOVE(list_of(chan, call->state), call, link);
	if (call->timer != NULL)
		event_del(call->timer);
	call->state = CALL_DONE;
	call->status = status;
	call->delivery = delivery;
	call->server_message = server_message && call->grpc_message != NULL;
	va_start(ap, fmt);
	vsnprintf(call->local_message, sizeof(call->local_message), fmt, ap);
	va_end(ap);
	log_debug("-", "grpc %s: %s stream %d: %s%s%s", chan->name, call->path,
	    call->stream_id, ck_grpc_status_name(status),
	    call->local_message[0] != '\0' ? ": " : "", call->local_message);
	TAILQ_INSERT_TAIL(&chan->done, call, link);
	schedule(chan);
}

/* Fail every call not yet given to nghttp2. */
static void
fail_queued(struct ck_grpc_channel *chan, const char *why)
{
	struct ck_grpc_call *call;

	while ((call = TAILQ_FIRST(&chan->queued)) != NULL)
		call_finish(call, CK_GRPC_UNAVAILABLE, CK_GRPC_NOT_SENT, false,
		    "not delivered: %s", why);
}

/* grpc/doc/http-grpc-status-mapping.md, for replies without grpc-status. */
static int
http_to_grpc(int http)
{
	switch (http) {
	case 400:
		return CK_GRPC_INTERNAL;
	case 401:
		return CK_GRPC_UNAUTHENTICATED;
	case 403:
		return CK_GRPC_PERMISSION_DENIED;
	case 404:
		return CK_GRPC_UNIMPLEMENTED;
	case 429:
	case 502:
	case 503:
	case 504:
		return CK_GRPC_UNAVAILABLE;
	default:
		return CK_GRPC_UNKNOWN;
	}
}

/* The same document, for a stream reset before any grpc-status. */
static int
h2err_to_grpc(uint32_t code)
{
	switch (code) {
	case NGHTTP2_REFUSED_STREAM:
		return CK_GRPC_UNAVAILABLE;
	case NGHTTP2_CANCEL:
		return CK_GRPC_CANCELLED;
	case NGHTTP2_ENHANCE_YOUR_CALM:
		return CK_GRPC_RESOURCE_EXHAUSTED;
	case NGHTTP2_INADEQUATE_SECURITY:
		return CK_GRPC_PERMISSION_DENIED;
	default:
		return CK_GRPC_INTERNAL;
	}
}

/* The stream closed: turn what the server said into one status. */
static void
call_closed(struct ck_grpc_call *call, uint32_t error_code)
{
	struct ck_grpc_channel *chan = call->chan;
	enum ck_grpc_delivery d;
	int rc;

	if (call->have_status) {
		if (call->grpc_status != CK_GRPC_OK) {
			call_finish(call, call->grpc_status, CK_GRPC_ANSWERED,
			    true, "%s", "");
			return;
		}
		rc = ck_grpc_decoder_finish(&call->dec);
		if (rc == 0 && call->dec.compressed &&
		    call->identity_encoding) {
			call_finish(call, CK_GRPC_INTERNAL, CK_GRPC_ANSWERED,
			    false, "compressed reply without grpc-encoding");
		} else if (rc == 0 && call->dec.compressed) {
			call_finish(call, CK_GRPC_INTERNAL, CK_GRPC_ANSWERED,
			    false,
			    "reply compressed with an encoding we "
			    "did not offer");
		} else if (rc != 0) {
			call_finish(call, CK_GRPC_INTERNAL, CK_GRPC_ANSWERED,
			    false,
			    "OK status without exactly one reply "
			    "message");
		} else {
			call_finish(
			    call, CK_GRPC_OK, CK_GRPC_ANSWERED, true, "%s", "");
		}
		return;
	}
	if (error_code == NGHTTP2_REFUSED_STREAM) {
		/* RFC 9113 8.7: a refused stream was not processed. */
		if (chan->goaway && call->stream_id > chan->goaway_last_id)
			call_finish(call, CK_GRPC_UNAVAILABLE, CK_GRPC_NOT_SENT,
			    false,
			    "not delivered: server "
			    "is going away (GOAWAY)");
		else
			call_finish(call, CK_GRPC_UNAVAILABLE, CK_GRPC_NOT_SENT,
			    false,
			    "not delivered: stream "
			    "refused by server");
		return;
	}
	d = call->headers_sent ? CK_GRPC_IN_DOUBT : CK_GRPC_NOT_SENT;
	if (error_code != NGHTTP2_NO_ERROR) {
		call_finish(call, h2err_to_grpc(error_code), d, false,
		    "stream reset: %s", nghttp2_http2_strerror(error_code));
	} else if (call->http_status != 200) {
		call_finish(call, http_to_grpc(call->http_status), d, false,
		    "HTTP status %d without grpc-status", call->http_status);
	} else if (!call->grpc_ctype) {
		call_finish(call, CK_GRPC_UNKNOWN, d, false,
		    "reply is not application/grpc");
	} else {
		call_finish(call, CK_GRPC_INTERNAL, d, false,
		    "server closed the stream without grpc-status");
	}
}

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct ck_grpc_call *call = arg;
	struct ck_grpc_channel *chan = call->chan;

	(void)fd;
	(void)what;
	if (call->state == CALL_OPEN && chan->h2 != NULL) {
		/* Also cancels HEADERS nghttp2 has not sent yet. */
		nghttp2_submit_rst_stream(chan->h2, NGHTTP2_FLAG_NONE,
		    call->stream_id, NGHTTP2_CANCEL);
	}
	call_finish(call, CK_GRPC_DEADLINE_EXCEEDED,
	    call->headers_sent ? CK_GRPC_IN_DOUBT : CK_GRPC_NOT_SENT, false,
	    "deadline exceeded%s",
	    call->headers_sent ? "" : " before the request was sent");
}

/* ---- nghttp2 callbacks: record, never call user code ---- */

static ssize_t
on_data_read(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
    size_t length, uint32_t *data_flags, nghttp2_data_source *source,
    void *user_data)
{
	struct ck_grpc_channel *chan = user_data;
	struct ck_grpc_call *call = find_open(chan, stream_id);
	size_t n;

	(void)session;
	(void)source;
	if (call == NULL)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	n = call->req_len - call->req_off;
	if (n > length)
		n = length;
	memcpy(buf, call->req + call->req_off, n);
	call->req_off += n;
	if (call->req_off == call->req_len)
		*data_flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

static int
on_frame_send(
    nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
	struct ck_grpc_call *call;

	(void)session;
	if (frame->hd.type != NGHTTP2_HEADERS)
		return 0;
	call = find_open(user_data, frame->hd.stream_id);
	if (call != NULL)
		call->headers_sent = true;
	return 0;
}

static int
on_frame_not_send(nghttp2_session *session, const nghttp2_frame *frame,
    int lib_error_code, void *user_data)
{
	struct ck_grpc_call *call;

	(void)session;
	if (frame->hd.type != NGHTTP2_HEADERS)
		return 0;
	call = find_open(user_data, frame->hd.stream_id);
	if (call != NULL)
		call_finish(call, CK_GRPC_UNAVAILABLE, CK_GRPC_NOT_SENT, false,
		    "not delivered: %s", nghttp2_strerror(lib_error_code));
	return 0;
}

static bool
is_grpc_ctype(const uint8_t *v, size_t len)
{
	static const char ct[] = "application/grpc";
	size_t n = sizeof(ct) - 1;

	if (len < n || memcmp(v, ct, n) != 0)
		return false;
	return len == n || v[n] == '+' || v[n] == ';';
}

static bool
hdr_is(const uint8_t *name, size_t namelen, const char *s)
{
	return namelen == strlen(s) && memcmp(name, s, namelen) == 0;
}

static int
on_header(nghttp2_session *session, const nghttp2_frame *frame,
    const uint8_t *name, size_t namelen, const uint8_t *value, size_t valuelen,
    uint8_t flags, void *user_data)
{
	struct ck_grpc_call *call;
	size_t i;
	int v;

	(void)session;
	(void)flags;
	if (frame->hd.type != NGHTTP2_HEADERS)
		return 0;
	call = find_open(user_data, frame->hd.stream_id);
	if (call == NULL)
		return 0;
	if (hdr_is(name, namelen, ":status")) {
		/* nghttp2 has checked it is three digits. */
		call->http_status = atoi((const char *)value);
	} else if (hdr_is(name, namelen, "content-type")) {
		call->grpc_ctype = is_grpc_ctype(value, valuelen);
	} else if (hdr_is(name, namelen, "grpc-status")) {
		v = 0;
		for (i = 0; i < valuelen && i < 4; i++) {
			if (value[i] < '0' || value[i] > '9')
				break;
			v = v * 10 + (value[i] - '0');
		}
		/* Garbage or an unknown code is UNKNOWN, as the spec says. */
		if (valuelen == 0 || i != valuelen || v >= CK_GRPC_NSTATUS)
			v = CK_GRPC_UNKNOWN;
		call->have_status = true;
		call->grpc_status = v;
	} else if (hdr_is(name, namelen, "grpc-message")) {
		char *m = malloc(valuelen + 1);

		if (m == NULL)
			return NGHTTP2_ERR_CALLBACK_FAILURE;
		ck_grpc_percent_decode(
		    (const char *)value, valuelen, m, valuelen + 1);
		free(call->grpc_message);
		call->grpc_message = m;
	} else if (hdr_is(name, namelen, "grpc-encoding")) {
		call->identity_encoding =
		    valuelen == 8 && memcmp(value, "identity", 8) == 0;
	}
	return 0;
}

static int
on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
    const uint8_t *data, size_t len, void *user_data)
{
	struct ck_grpc_call *call = find_open(user_data, stream_id);
	int rc;

	(void)flags;
	if (call == NULL)
		return 0;
	rc = ck_grpc_decoder_feed(&call->dec, data, len);
	if (rc == 0)
		return 0;
	nghttp2_submit_rst_stream(
	    session, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_CANCEL);
	if (rc == CK_ETOOBIG)
		call_finish(call, CK_GRPC_RESOURCE_EXHAUSTED, CK_GRPC_IN_DOUBT,
		    false, "reply larger than %zu bytes", call->dec.max_len);
	else if (rc == CK_ENOMEM)
		call_finish(call, CK_GRPC_RESOURCE_EXHAUSTED, CK_GRPC_IN_DOUBT,
		    false, "out of memory for the reply");
	else
		call_finish(call, CK_GRPC_INTERNAL, CK_GRPC_IN_DOUBT, false,
		    "malformed reply framing");
	return 0;
}

static int
on_stream_close(nghttp2_session *session, int32_t stream_id,
    uint32_t error_code, void *user_data)
{
	struct ck_grpc_call *call = find_open(user_data, stream_id);

	(void)session;
	if (call != NULL)
		call_closed(call, error_code);
	return 0;
}

static int
on_frame_recv(
    nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
	struct ck_grpc_channel *chan = user_data;
	const nghttp2_goaway *ga;

	(void)session;
	if (frame->hd.type != NGHTTP2_GOAWAY)
		return 0;
	ga = &frame->goaway;
	/* nghttp2 closes our streams above last_stream_id with
	 * REFUSED_STREAM (call_closed reports them not delivered) and
	 * refuses to open new ones (on_frame_not_send). */
	chan->goaway = true;
	chan->goaway_last_id = ga->last_stream_id;
	snprintf(chan->error, sizeof(chan->error),
	    "server sent GOAWAY (%s, last stream %d%s%.*s)",
	    nghttp2_http2_strerror(ga->error_code), ga->last_stream_id,
	    ga->opaque_data_len > 0 ? ": " : "",
	    (int)(ga->opaque_data_len > 100 ? 100 : ga->opaque_data_len),
	    (const char *)ga->opaque_data);
	log_debug("-", "grpc %s: %s", chan->name, chan->error);
	if (chan->state == CK_GRPC_CH_READY)
		set_state(chan, CK_GRPC_CH_DRAINING);
	fail_queued(chan, "server is going away (GOAWAY)");
	return 0;
}

/* ---- the connection ---- */

/* Hand nghttp2's pending frames to the bufferevent. */
static int
flush(struct ck_grpc_channel *chan)
{
	struct evbuffer *out;
	const uint8_t *data;
	ssize_t n;

	if (chan->h2 == NULL)
		return 0;
	out = bufferevent_get_output(chan->bev);
	while (evbuffer_get_length(out) < OUT_HIGH_WATER) {
		n = nghttp2_session_mem_send(chan->h2, &data);
		if (n < 0) {
			snprintf(chan->error, sizeof(chan->error),
			    "HTTP/2 send: %s", nghttp2_strerror((int)n));
			return CK_EPROTO;
		}
		if (n == 0)
			break;
		if (evbuffer_add(out, data, (size_t)n) != 0) {
			snprintf(
			    chan->error, sizeof(chan->error), "out of memory");
			return CK_ENOMEM;
		}
	}
	return 0;
}

/* After I/O: flush, and close a connection that has nothing left. */
static void
progress(struct ck_grpc_channel *chan)
{
	size_t pending;

	if (chan->h2 == NULL)
		return;
	if (flush(chan) < 0) {
		conn_close(chan, chan->error);
		return;
	}
	pending = evbuffer_get_length(bufferevent_get_output(chan->bev));
	if (!nghttp2_session_want_read(chan->h2) &&
	    !nghttp2_session_want_write(chan->h2) && pending == 0) {
		conn_close(chan,
		    chan->error[0] != '\0' ? chan->error
					   : "HTTP/2 session ended");
		return;
	}
	if (chan->state == CK_GRPC_CH_DRAINING && TAILQ_EMPTY(&chan->open) &&
	    pending == 0)
		conn_close(chan, chan->error);
}

static void
submit_queued(struct ck_grpc_channel *chan)
{
	struct ck_grpc_call *call;
	nghttp2_data_provider prd;
	char tmo[10];
	uint64_t now, left;
	int32_t id;

#define NV(n, v)                                                               \
	{ (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v),            \
		NGHTTP2_NV_FLAG_NO_COPY_NAME }
	prd.source.ptr = NULL;
	prd.read_callback = on_data_read;
	while (chan->state == CK_GRPC_CH_READY &&
	    (call = TAILQ_FIRST(&chan->queued)) != NULL) {
		/* Time spent connecting counts: send what is left. */
		left = 0;
		if (call->deadline != 0) {
			now = now_usec();
			left = call->deadline > now ? call->deadline - now : 0;
		}
		ck_grpc_timeout_format(left, tmo);
		nghttp2_nv nva[] = {
			NV(":method", "POST"),
			NV(":scheme", "https"),
			NV(":path", call->path),
			NV(":authority", chan->authority),
			NV("content-type", "application/grpc"),
			NV("te", "trailers"),
			NV("user-agent", "chakong-grpc/0.1"),
			NV("grpc-timeout", tmo),
		};
		size_t nnv = sizeof(nva) / sizeof(nva[0]);

		if (call->deadline == 0)
			nnv--;
		id = nghttp2_submit_request(
		    chan->h2, NULL, nva, nnv, &prd, NULL);
		if (id < 0) {
			if (id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE) {
				snprintf(chan->error, sizeof(chan->error),
				    "stream ids exhausted");
				set_state(chan, CK_GRPC_CH_DRAINING);
				fail_queued(chan, chan->error);
				break;
			}
			call_finish(call, CK_GRPC_INTERNAL, CK_GRPC_NOT_SENT,
			    false, "not delivered: %s", nghttp2_strerror(id));
			continue;
		}
		call->stream_id = id;
		TAILQ_REMOVE(&chan->queued, call, link);
		call->state = CALL_OPEN;
		TAILQ_INSERT_TAIL(&chan->open, call, link);
	}
#undef NV
}

/*
 * A copy of the connection's session, when a later connection could
 * resume it. A copy, because OpenSSL marks the session object itself
 * not resumable when the SSL is freed without a TLS shutdown (as ours
 * are: connection lost, or closed at once), which would spoil it for
 * everyone holding a reference.
 */
static SSL_SESSION *
live_session(const struct ck_grpc_channel *chan)
{
	SSL *ssl;
	SSL_SESSION *s, *copy;

	/* Only a connection that passed every check: a session from a
	 * server that failed expect_uri must never be offered again. */
	if (chan->bev == NULL || !chan->up)
		return NULL;
	ssl = bufferevent_openssl_get_ssl(chan->bev);
	if (ssl == NULL || (s = SSL_get1_session(ssl)) == NULL)
		return NULL;
	copy = SSL_SESSION_is_resumable(s) == 1 ? SSL_SESSION_dup(s) : NULL;
	SSL_SESSION_free(s);
	return copy;
}

/* Before the connection goes: its session outlives it, for the pool. */
static void
keep_session(struct ck_grpc_channel *chan)
{
	SSL_SESSION *s = live_session(chan);

	if (s == NULL)
		return;
	SSL_SESSION_free(chan->session);
	chan->session = s;
}

static void
conn_teardown(struct ck_grpc_channel *chan)
{
	if (chan->h2 != NULL) {
		nghttp2_session_del(chan->h2);
		chan->h2 = NULL;
	}
	if (chan->bev != NULL) {
		keep_session(chan);
		bufferevent_free(chan->bev);
		chan->bev = NULL;
		chan->up = false;
	}
	if (chan->conn_timer != NULL)
		event_del(chan->conn_timer);
	if (chan->ai_list != NULL) {
		freeaddrinfo(chan->ai_list);
		chan->ai_list = NULL;
		chan->ai_next = NULL;
	}
}

/*
 * The connection is gone (or never came): every call still on it ends
 * here. Those whose HEADERS left are in doubt; the rest were not
 * delivered.
 */
static void
conn_close(struct ck_grpc_channel *chan, const char *why)
{
	struct ck_grpc_call *call;
	enum ck_grpc_channel_state was;
	char reason[sizeof(chan->error)];

	/* why may be chan->error itself. */
	snprintf(reason, sizeof(reason), "%s", why);
	snprintf(chan->error, sizeof(chan->error), "%s", reason);
	log_debug("-", "grpc %s: connection closed: %s", chan->name, reason);
	was = chan->state;
	chan->state = CK_GRPC_CH_CLOSED;
	while ((call = TAILQ_FIRST(&chan->open)) != NULL) {
		if (call->headers_sent)
			call_finish(call, CK_GRPC_UNAVAILABLE, CK_GRPC_IN_DOUBT,
			    false,
			    "connection lost after the request was "
			    "sent: %s",
			    reason);
		else
			call_finish(call, CK_GRPC_UNAVAILABLE, CK_GRPC_NOT_SENT,
			    false, "not delivered: %s", reason);
	}
	fail_queued(chan, reason);
	conn_teardown(chan);
	/* Told last, once the session is kept and the calls are done. */
	if (was != CK_GRPC_CH_CLOSED && chan->on_state != NULL)
		chan->on_state(chan->state_arg, chan, CK_GRPC_CH_CLOSED);
}

static int
conn_ready(struct ck_grpc_channel *chan)
{
	static const nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW },
		{ NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, MAX_HEADER_LIST },
	};
	nghttp2_session_callbacks *cbs;
	SSL *ssl = bufferevent_openssl_get_ssl(chan->bev);
	const unsigned char *proto = NULL;
	unsigned int plen = 0;
	evutil_socket_t fd;
	int one = 1, rv;

	SSL_get0_alpn_selected(ssl, &proto, &plen);
	if (plen != 2 || memcmp(proto, "h2", 2) != 0) {
		snprintf(chan->error, sizeof(chan->error),
		    "server did not negotiate HTTP/2 (ALPN h2)");
		return CK_EPROTO;
	}
	if (chan->expect_uri != NULL) {
		X509 *peer = SSL_get1_peer_certificate(ssl);
		GENERAL_NAMES *sans = NULL;
		bool found = false;
		int i;

		if (peer != NULL)
			sans = X509_get_ext_d2i(
			    peer, NID_subject_alt_name, NULL, NULL);
		for (i = 0; sans != NULL && i < sk_GENERAL_NAME_num(sans);
		     i++) {
			const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
			const ASN1_STRING *s;

			if (gn->type != GEN_URI)
				continue;
			s = gn->d.uniformResourceIdentifier;
			if ((size_t)ASN1_STRING_length(s) ==
				strlen(chan->expect_uri) &&
			    memcmp(ASN1_STRING_get0_data(s), chan->expect_uri,
				strlen(chan->expect_uri)) == 0)
				found = true;
		}
		GENERAL_NAMES_free(sans);
		X509_free(peer);
		if (!found) {
			snprintf(chan->error, sizeof(chan->error),
			    "server certificate lacks SAN URI %s",
			    chan->expect_uri);
			return CK_EPERM;
		}
	}
	fd = bufferevent_getfd(chan->bev);
	if (fd >= 0)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

	if (nghttp2_session_callbacks_new(&cbs) != 0)
		return CK_ENOMEM;
	nghttp2_session_callbacks_set_on_frame_recv_callback(
	    cbs, on_frame_recv);
	nghttp2_session_callbacks_set_on_frame_send_callback(
	    cbs, on_frame_send);
	nghttp2_session_callbacks_set_on_frame_not_send_callback(
	    cbs, on_frame_not_send);
	nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(
	    cbs, on_data_chunk);
	nghttp2_session_callbacks_set_on_stream_close_callback(
	    cbs, on_stream_close);
	rv = nghttp2_session_client_new(&chan->h2, cbs, chan);
	nghttp2_session_callbacks_del(cbs);
	if (rv != 0) {
		chan->h2 = NULL;
		return CK_ENOMEM;
	}
	if (nghttp2_submit_settings(chan->h2, NGHTTP2_FLAG_NONE, iv,
		sizeof(iv) / sizeof(iv[0])) != 0 ||
	    nghttp2_session_set_local_window_size(
		chan->h2, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW) != 0)
		return CK_ENOMEM;
	event_del(chan->conn_timer);
	chan->up = true;
	chan->reused = SSL_session_reused(ssl) == 1;
	if (!chan->reused && chan->session != NULL) {
		/* Refused: it would only be refused again. */
		SSL_SESSION_free(chan->session);
		chan->session = NULL;
	}
	log_debug("-", "grpc %s: connected%s", chan->name,
	    chan->reused ? " (TLS session resumed)" : "");
	set_state(chan, CK_GRPC_CH_READY);
	return 0;
}

static int
feed_h2(void *arg, const uint8_t *data, size_t len)
{
	struct ck_grpc_channel *chan = arg;
	ssize_t n = nghttp2_session_mem_recv(chan->h2, data, len);

	return n < 0 ? (int)n : 0;
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct ck_grpc_channel *chan = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n;
	ssize_t rv;

	if (chan->h2 == NULL)
		return;
	while ((n = evbuffer_get_contiguous_space(in)) > 0) {
		rv = nghttp2_session_mem_recv(
		    chan->h2, evbuffer_pullup(in, (ev_ssize_t)n), n);
		if (rv < 0) {
			char why[128];

			snprintf(why, sizeof(why), "HTTP/2 error: %s",
			    nghttp2_strerror((int)rv));
			conn_close(chan, why);
			return;
		}
		evbuffer_drain(in, n);
	}
	/* records OpenSSL holds that libevent 2.1 would leave there */
	rv = ck_tls_drain_pending(bufferevent_openssl_get_ssl(bev), feed_h2,
	    chan);
	if (rv < 0) {
		char why[128];

		snprintf(why, sizeof(why), "HTTP/2 error: %s",
		    nghttp2_strerror((int)rv));
		conn_close(chan, why);
		return;
	}
	progress(chan);
}

static void
on_write(struct bufferevent *bev, void *arg)
{
	(void)bev;
	progress(arg);
}

static void conn_try_next(struct ck_grpc_channel *chan);

/* libevent may flag a refused connect as EOF; errno tells the truth. */
static bool
connect_errno(int e)
{
	switch (e) {
	case ECONNREFUSED:
	case ECONNRESET:
	case ENETUNREACH:
	case ENETDOWN:
	case EHOSTUNREACH:
	case EHOSTDOWN:
	case ETIMEDOUT:
	case EADDRNOTAVAIL:
	case EAFNOSUPPORT:
		return true;
	default:
		return false;
	}
}

/*
 * Why a connection attempt failed: a rejected certificate, another TLS
 * error, or the socket. libevent reports a socket error inside the
 * handshake as a pseudo OpenSSL error of library 0 (SSL_get_error()'s
 * value), the real reason being errno; *tls is false then, so the
 * caller may try the next address.
 */
static void
describe_failure(struct ck_grpc_channel *chan, short events, char *buf,
    size_t len, bool *tls)
{
	int serr = EVUTIL_SOCKET_ERROR();
	unsigned long e = 0, x;
	SSL *ssl = bufferevent_openssl_get_ssl(chan->bev);
	long vr = ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK;
	char reason[200];

	/* The first real TLS error is the cause. */
	while ((x = bufferevent_get_openssl_error(chan->bev)) != 0)
		if (e == 0 && ERR_GET_LIB(x) != 0)
			e = x;
	*tls = true;
	if (vr != X509_V_OK) {
		snprintf(buf, len, "TLS: server certificate rejected: %s",
		    X509_verify_cert_error_string(vr));
	} else if (e != 0) {
		ERR_error_string_n(e, reason, sizeof(reason));
		snprintf(buf, len, "TLS: %s", reason);
	} else if (connect_errno(serr) ||
	    (serr != 0 && (events & BEV_EVENT_EOF) == 0)) {
		*tls = false;
		snprintf(buf, len, "connect to %s port %u: %s", chan->host,
		    chan->port, evutil_socket_error_to_string(serr));
	} else if (chan->state == CK_GRPC_CH_CONNECTING) {
		snprintf(buf, len,
		    "connection closed during the TLS "
		    "handshake");
	} else {
		snprintf(buf, len, "connection closed");
	}
	ERR_clear_error();
}

static void
on_event(struct bufferevent *bev, short events, void *arg)
{
	struct ck_grpc_channel *chan = arg;
	bool tls;
	int rc;

	(void)bev;
	if (events & BEV_EVENT_CONNECTED) {
		rc = conn_ready(chan);
		if (rc < 0) {
			conn_close(chan,
			    chan->error[0] != '\0'
				? chan->error
				: "cannot set up the HTTP/2 session");
			return;
		}
		submit_queued(chan);
		progress(chan);
		return;
	}
	if ((events & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) ==
	    0)
		return;
	if (chan->state == CK_GRPC_CH_CONNECTING) {
		describe_failure(chan, events, chan->conn_error,
		    sizeof(chan->conn_error), &tls);
		/* Another address may answer; a TLS failure would just
		 * repeat itself there. */
		if (!tls && chan->ai_next != NULL) {
			conn_try_next(chan);
			return;
		}
		conn_close(chan, chan->conn_error);
		return;
	}
	if (events & BEV_EVENT_EOF) {
		conn_close(chan, "connection closed by the server");
	} else {
		char why[160];

		describe_failure(chan, events, why, sizeof(why), &tls);
		conn_close(chan, why);
	}
}

static void
on_conn_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct ck_grpc_channel *chan = arg;
	char why[96];

	(void)fd;
	(void)what;
	if (chan->state != CK_GRPC_CH_CONNECTING)
		return;
	snprintf(why, sizeof(why),
	    "connect and TLS handshake took over %u "
	    "ms",
	    chan->connect_timeout_ms);
	conn_close(chan, why);
}

static bool
is_ip_literal(const char *s)
{
	struct in6_addr a6;
	struct in_addr a4;

	return inet_pton(AF_INET, s, &a4) == 1 ||
	    inet_pton(AF_INET6, s, &a6) == 1;
}

static SSL *
make_ssl(struct ck_grpc_channel *chan)
{
	static const unsigned char alpn[] = "\x02h2";
	X509_VERIFY_PARAM *vp;
	SSL *ssl;

	ssl = SSL_new(chan->ctx);
	if (ssl == NULL)
		return NULL;
	/* Also here, in case the caller's context did not ask for h2. */
	if (SSL_set_alpn_protos(ssl, alpn, sizeof(alpn) - 1) != 0)
		goto fail;
	/*
	 * A peer that closes without close_notify (many do; HTTP/2's own
	 * framing makes truncation harmless) would otherwise be a fatal
	 * TLS error, and OpenSSL marks the session of a connection that
	 * ended in one not resumable: the next connection could not resume.
	 */
	SSL_set_options(ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
	if (chan->session != NULL && SSL_set_session(ssl, chan->session) != 1)
		goto fail;
	if (chan->expect_host != NULL) {
		if (is_ip_literal(chan->expect_host)) {
			vp = SSL_get0_param(ssl);
			if (X509_VERIFY_PARAM_set1_ip_asc(
				vp, chan->expect_host) != 1)
				goto fail;
		} else {
			if (SSL_set_tlsext_host_name(ssl, chan->expect_host) !=
				1 ||
			    SSL_set1_host(ssl, chan->expect_host) != 1)
				goto fail;
		}
	}
	return ssl;
fail:
	SSL_free(ssl);
	return NULL;
}

/* Try the next resolved address; the last failure says why. */
static void
conn_try_next(struct ck_grpc_channel *chan)
{
	struct addrinfo *ai;
	SSL *ssl;

	while ((ai = chan->ai_next) != NULL) {
		chan->ai_next = ai->ai_next;
		if (chan->bev != NULL) {
			bufferevent_free(chan->bev);
			chan->bev = NULL;
		}
		ERR_clear_error();
		ssl = make_ssl(chan);
		if (ssl == NULL) {
			ssl_err(chan->conn_error, sizeof(chan->conn_error),
			    "TLS setup");
			break;
		}
		/* Deferred callbacks: libevent may report a failure
		 * from inside bufferevent_socket_connect() otherwise. */
		chan->bev = bufferevent_openssl_socket_new(chan->base, -1, ssl,
		    BUFFEREVENT_SSL_CONNECTING,
		    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
		if (chan->bev == NULL) {
			SSL_free(ssl);
			snprintf(chan->conn_error, sizeof(chan->conn_error),
			    "out of memory");
			break;
		}
		bufferevent_openssl_set_allow_dirty_shutdown(chan->bev, 1);
		bufferevent_setcb(chan->bev, on_read, on_write, on_event, chan);
		bufferevent_enable(chan->bev, EV_READ | EV_WRITE);
		if (bufferevent_socket_connect(
			chan->bev, ai->ai_addr, (int)ai->ai_addrlen) == 0)
			return;
		snprintf(chan->conn_error, sizeof(chan->conn_error),
		    "connect to %s port %u: %s", chan->host, chan->port,
		    strerror(errno));
	}
	conn_close(chan,
	    chan->conn_error[0] != '\0' ? chan->conn_error
					: "no address to connect to");
}

static void
conn_start(struct ck_grpc_channel *chan)
{
	struct addrinfo hints;
	struct timeval tv;
	char port[8];
	char why[160];
	int rc;

	set_state(chan, CK_GRPC_CH_CONNECTING);
	chan->conn_error[0] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%u", chan->port);
	rc = getaddrinfo(chan->host, port, &hints, &chan->ai_list);
	if (rc != 0) {
		chan->ai_list = NULL;
		snprintf(why, sizeof(why), "resolve %s: %s", chan->host,
		    rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
		conn_close(chan, why);
		return;
	}
	chan->ai_next = chan->ai_list;
	tv.tv_sec = chan->connect_timeout_ms / 1000;
	tv.tv_usec = (chan->connect_timeout_ms % 1000) * 1000;
	event_add(chan->conn_timer, &tv);
	log_debug("-", "grpc %s: connecting", chan->name);
	conn_try_next(chan);
}

/* ---- the work event: connect, submit, flush, run callbacks ---- */

static void channel_destroy(struct ck_grpc_channel *chan);

static void
on_work(evutil_socket_t fd, short what, void *arg)
{
	struct ck_grpc_channel *chan = arg;
	struct ck_grpc_call *call;
	const uint8_t *reply;
	const char *msg;
	size_t len;

	(void)fd;
	(void)what;
	if (chan->state == CK_GRPC_CH_IDLE && !TAILQ_EMPTY(&chan->queued))
		conn_start(chan);
	if (chan->state == CK_GRPC_CH_READY)
		submit_queued(chan);
	progress(chan);

	chan->dispatching = true;
	while (
	    !chan->free_pending && (call = TAILQ_FIRST(&chan->done)) != NULL) {
		TAILQ_REMOVE(&chan->done, call, link);
		reply = NULL;
		len = 0;
		if (call->status == CK_GRPC_OK) {
			reply = call->dec.msg;
			len = call->dec.msg_len;
		}
		msg = call->server_message ? call->grpc_message
					   : call->local_message;
		call->in_callback = true;
		call->cb(call->arg, call->status, msg, reply, len);
		call_free(call);
	}
	chan->dispatching = false;
	if (chan->free_pending || (chan->self_owned && chan->ncalls == 0)) {
		channel_destroy(chan);
		return;
	}
	/* Send the RST_STREAMs callbacks made; calls they started have
	 * scheduled another round. */
	progress(chan);
}

/* ---- public ---- */

static char *
dup_or_null(const char *s, bool *oom)
{
	char *d;

	if (s == NULL)
		return NULL;
	d = strdup(s);
	if (d == NULL)
		*oom = true;
	return d;
}

int
ck_grpc_channel_new(struct event_base *base,
    const struct ck_grpc_channel_opts *opts, struct ck_grpc_channel **out)
{
	struct ck_grpc_channel *chan;
	char buf[300];
	char err[256];
	bool oom = false;
	int rc;

	*out = NULL;
	if (base == NULL || opts == NULL || opts->host == NULL ||
	    opts->host[0] == '\0' || opts->port == 0)
		return CK_EINVAL;
	chan = calloc(1, sizeof(*chan));
	if (chan == NULL)
		return CK_ENOMEM;
	chan->base = base;
	chan->state = CK_GRPC_CH_IDLE;
	TAILQ_INIT(&chan->queued);
	TAILQ_INIT(&chan->open);
	TAILQ_INIT(&chan->done);
	chan->port = opts->port;
	chan->connect_timeout_ms = opts->connect_timeout_ms != 0
	    ? opts->connect_timeout_ms
	    : CK_GRPC_CONNECT_TIMEOUT_MS;
	chan->max_reply = opts->max_reply_bytes != 0 ? opts->max_reply_bytes
						     : CK_GRPC_MAX_REPLY_BYTES;
	chan->host = dup_or_null(opts->host, &oom);
	chan->expect_host = dup_or_null(opts->expect_host, &oom);
	chan->expect_uri = dup_or_null(opts->expect_uri, &oom);
	/* An IPv6 literal needs brackets before ":port". */
	snprintf(buf, sizeof(buf),
	    strchr(opts->host, ':') != NULL ? "[%s]:%u" : "%s:%u", opts->host,
	    opts->port);
	chan->authority =
	    dup_or_null(opts->authority != NULL ? opts->authority : buf, &oom);
	chan->name =
	    dup_or_null(opts->log_id != NULL ? opts->log_id : buf, &oom);
	rc = CK_ENOMEM;
	if (oom)
		goto fail;
	chan->on_state = opts->on_state;
	chan->state_arg = opts->state_arg;
	if (opts->session != NULL) {
		if (SSL_SESSION_up_ref(opts->session) != 1) {
			rc = CK_ETLS;
			goto fail;
		}
		chan->session = opts->session;
	}
	chan->work = event_new(base, -1, 0, on_work, chan);
	chan->conn_timer = evtimer_new(base, on_conn_timeout, chan);
	if (chan->work == NULL || chan->conn_timer == NULL)
		goto fail;
	if (opts->ssl_ctx != NULL) {
		if (SSL_CTX_up_ref(opts->ssl_ctx) != 1) {
			rc = CK_ETLS;
			goto fail;
		}
		chan->ctx = opts->ssl_ctx;
	} else {
		rc = ck_grpc_tls_client_new(opts->ca_file, opts->cert_file,
		    opts->key_file, &chan->ctx, err, sizeof(err));
		if (rc < 0) {
			log_warn("-", "grpc %s: %s", chan->name, err);
			rc = rc == CK_EINVAL ? CK_ETLS : rc;
			goto fail;
		}
	}
	*out = chan;
	return 0;
fail:
	channel_destroy(chan);
	return rc;
}

static void
drop_all(struct call_list *l)
{
	struct ck_grpc_call *call;

	while ((call = TAILQ_FIRST(l)) != NULL) {
		TAILQ_REMOVE(l, call, link);
		call_free(call);
	}
}

static void
channel_destroy(struct ck_grpc_channel *chan)
{
	drop_all(&chan->queued);
	drop_all(&chan->open);
	drop_all(&chan->done);
	conn_teardown(chan);
	if (chan->work != NULL)
		event_free(chan->work);
	if (chan->conn_timer != NULL)
		event_free(chan->conn_timer);
	SSL_CTX_free(chan->ctx);
	SSL_SESSION_free(chan->session);
	free(chan->host);
	free(chan->authority);
	free(chan->expect_host);
	free(chan->expect_uri);
	free(chan->name);
	free(chan);
}

void
ck_grpc_channel_free(struct ck_grpc_channel *chan)
{
	if (chan == NULL)
		return;
	if (chan->dispatching) {
		/* on_work still walks the lists; it frees on its way out. */
		chan->free_pending = true;
		return;
	}
	channel_destroy(chan);
}

void
ck_grpc_channel_drain(struct ck_grpc_channel *chan)
{
	if (chan == NULL)
		return;
	/* Calls already started, even those still waiting for the
	 * connection, go ahead; only new ones are refused. */
	chan->self_owned = true;
	if (chan->error[0] == '\0')
		snprintf(chan->error, sizeof(chan->error), "channel retired");
	if (chan->state == CK_GRPC_CH_READY) {
		submit_queued(chan);
		/* No GOAWAY of ours: some servers (python-h2) stop
		 * answering open streams on receiving one. We simply open
		 * no more, and close when the last one ends. */
		set_state(chan, CK_GRPC_CH_DRAINING);
	}
	schedule(chan);
}

enum ck_grpc_channel_state
ck_grpc_channel_state(const struct ck_grpc_channel *chan)
{
	return chan->state;
}

bool
ck_grpc_channel_usable(const struct ck_grpc_channel *chan)
{
	return !chan->self_owned &&
	    (chan->state == CK_GRPC_CH_IDLE ||
		chan->state == CK_GRPC_CH_CONNECTING ||
		chan->state == CK_GRPC_CH_READY);
}

size_t
ck_grpc_channel_calls(const struct ck_grpc_channel *chan)
{
	return chan->ncalls;
}

const char *
ck_grpc_channel_error(const struct ck_grpc_channel *chan)
{
	return chan->error;
}

SSL_SESSION *
ck_grpc_channel_get1_session(const struct ck_grpc_channel *chan)
{
	SSL_SESSION *s = live_session(chan);

	if (s != NULL)
		return s;
	if (chan->session != NULL && SSL_SESSION_up_ref(chan->session) == 1)
		return chan->session;
	return NULL;
}

bool
ck_grpc_channel_session_reused(const struct ck_grpc_channel *chan)
{
	return chan->reused;
}

int
ck_grpc_call_start(struct ck_grpc_channel *chan, const char *path,
    const uint8_t *req, size_t len, uint64_t timeout_usec, ck_grpc_done_cb cb,
    void *arg, struct ck_grpc_call **out)
{
	struct ck_grpc_call *call;
	struct timeval tv;
	int rc = CK_ENOMEM;

	if (out != NULL)
		*out = NULL;
	if (chan == NULL || path == NULL || path[0] != '/' || cb == NULL ||
	    (req == NULL && len > 0))
		return CK_EINVAL;
	if (len > UINT32_MAX)
		return CK_ETOOBIG;
	call = calloc(1, sizeof(*call));
	if (call == NULL)
		return CK_ENOMEM;
	call->chan = chan;
	call->cb = cb;
	call->arg = arg;
	call->identity_encoding = true;
	ck_grpc_decoder_init(&call->dec, chan->max_reply);
	call->path = strdup(path);
	call->req_len = 5 + len;
	call->req = malloc(call->req_len);
	if (call->path == NULL || call->req == NULL)
		goto fail;
	ck_grpc_frame_header(call->req, (uint32_t)len);
	if (len > 0)
		memcpy(call->req + 5, req, len);
	if (timeout_usec > 0) {
		call->timer = evtimer_new(chan->base, on_deadline, call);
		if (call->timer == NULL)
			goto fail;
		/* Beyond ~100 years a deadline means none; keep the sums
		 * below from overflowing. */
		if (timeout_usec > (uint64_t)1 << 61)
			timeout_usec = (uint64_t)1 << 61;
		call->deadline = now_usec() + timeout_usec;
		tv.tv_sec = (time_t)(timeout_usec / 1000000);
		tv.tv_usec = (suseconds_t)(timeout_usec % 1000000);
		if (event_add(call->timer, &tv) != 0)
			goto fail;
	}
	chan->ncalls++;
	call->state = CALL_QUEUED;
	TAILQ_INSERT_TAIL(&chan->queued, call, link);
	if (!ck_grpc_channel_usable(chan))
		call_finish(call, CK_GRPC_UNAVAILABLE, CK_GRPC_NOT_SENT, false,
		    "not delivered: channel unusable: %s", chan->error);
	schedule(chan);
	if (out != NULL)
		*out = call;
	return 0;
fail:
	if (call->timer != NULL)
		event_free(call->timer);
	free(call->req);
	free(call->path);
	free(call);
	return rc;
}

void
ck_grpc_call_cancel(struct ck_grpc_call *call)
{
	struct ck_grpc_channel *chan;

	if (call == NULL || call->in_callback)
		return;
	chan = call->chan;
	TAILQ_REMOVE(list_of(chan, call->state), call, link);
	if (call->state == CALL_OPEN && chan->h2 != NULL)
		nghttp2_submit_rst_stream(chan->h2, NGHTTP2_FLAG_NONE,
		    call->stream_id, NGHTTP2_CANCEL);
	log_debug("-", "grpc %s: %s stream %d cancelled", chan->name,
	    call->path, call->stream_id);
	call_free(call);
	/* Send the RST_STREAM; let a draining channel see it is idle. */
	schedule(chan);
}

enum ck_grpc_delivery
ck_grpc_call_delivery(const struct ck_grpc_call *call)
{
	return call->delivery;
}
