/*
 * server.c: the gRPC listener (see server.h).
 *
 * A connection:
 *
 *   HANDSHAKE --TLS ok, ALPN h2--> ACTIVE --drain/idle/limit--> GOAWAY
 *       |                             |                           |
 *       +--timeout/error--> (closed)  +--error/EOF--> (closed) <--+ all
 *                                                     streams done, flushed
 *
 * A stream (one unary call):
 *
 *   HEADERS --END_HEADERS ok--> BODY --END_STREAM, one message--> RUNNING
 *      |                          |                                  |
 *      +-- early error -----------+--> ANSWERED <--- handler answers-+
 *                                          |            (or deadline)
 *                                       (closed by nghttp2 after the
 *                                        trailers are sent, or RST)
 *
 * Writes are batched: nghttp2 serialises frames with mem_send into the
 * bufferevent's output, and a call answered from a timer or a handler only
 * schedules one flush per loop iteration. Back-pressure: when the output
 * holds more than write_buffer_bytes (a client that does not read), we
 * stop serialising and stop reading until it drains.
 *
 * Nothing here frees a connection from inside an nghttp2 callback: closing
 * is decided after nghttp2_session_mem_recv() or mem_send() returns.
 */
#include "server.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/rand.h>

#include "arena.h"
#include "chakong/status.h"
#include "config.h"
#include "grpc_frame.h"
#include "log.h"
#include "metrics.h"
#include "rpc.h"
#include "tls.h"
#include "util.h"

#define MAX_PATH_LEN 256
#define READ_HIGH_WATER (256u << 10)

enum conn_state {
	CONN_HANDSHAKE = 0,
	CONN_ACTIVE,
	CONN_GOAWAY,
};

enum stream_state {
	STREAM_HEADERS = 0,
	STREAM_BODY,
	STREAM_RUNNING,
	STREAM_ANSWERED,
};

struct conn;

struct stream {
	struct ck_call call;		/* first: handlers get &call */
	enum stream_state state;
	int32_t id;
	struct conn *conn;
	TAILQ_ENTRY(stream) link;

	char path[MAX_PATH_LEN];
	size_t path_len;
	bool path_too_long;
	bool is_post;
	bool grpc_content_type;
	bool has_encoding;		/* grpc-encoding other than identity */
	bool bad_timeout;
	bool body_done;			/* END_STREAM received */
	bool rst_after_answer;		/* stop a client still sending */
	size_t header_bytes;		/* as counted by HPACK (name+value+32) */
	uint64_t timeout_usec;		/* 0 = none given */
	char log_id[20];

	struct ck_grpc_decoder dec;
	struct event *deadline_ev;

	/* the reply, framed, sent by the data provider */
	uint8_t *resp;
	size_t resp_len, resp_off;
	int status;
	char message[512];		/* grpc-message, percent-encoded */
	bool observed;			/* counted in metrics */
};

TAILQ_HEAD(stream_list, stream);

struct peer_count {
	char name[80];
	unsigned n;
	TAILQ_ENTRY(peer_count) link;
};

struct conn {
	enum conn_state state;
	struct ck_server *srv;
	struct ck_config *cfg;		/* reference, as when accepted */
	struct bufferevent *bev;
	nghttp2_session *h2;
	struct event *timer;		/* handshake, then idle timeout */
	struct event *flush_ev;		/* deferred flush */
	struct ck_identity peer;
	bool authenticated;		/* has a chakong identity */
	struct peer_count *counted;
	struct stream_list streams;
	unsigned nstreams;
	bool in_recv;			/* inside nghttp2_session_mem_recv */
	bool read_paused;
	uint64_t id;
	char addr[64];
	char goaway_reason[128];	/* why nghttp2 ended the session */
	TAILQ_ENTRY(conn) link;
};

TAILQ_HEAD(conn_list, conn);

struct ck_server {
	struct event_base *base;
	struct evconnlistener *listener;
	struct ck_config *cfg;
	SSL_CTX *ctx;
	ck_method_find_fn find;
	struct conn_list conns;
	unsigned nconns;
	TAILQ_HEAD(, peer_count) peers;
	uint64_t next_conn_id;
	uint32_t call_salt;
	uint64_t next_call;
	bool draining;
	ck_server_drained_cb drained;
	void *drained_arg;
	struct event *drained_ev;
	char addr[64];
	ck_admit_fn admit;		/* rights check, NULL: none */
};

static void conn_close(struct conn *c, const char *why);
static void conn_flush(struct conn *c);
static void stream_answer(struct stream *s, int code, const char *msg);

/* ---- connection bookkeeping ------------------------------------------- */

static struct peer_count *
peer_count_get(struct ck_server *srv, const char *name)
{
	struct peer_count *pc;

	TAILQ_FOREACH(pc, &srv->peers, link)
		if (strcmp(pc->name, name) == 0)
			return pc;
	pc = calloc(1, sizeof(*pc));
	if (pc == NULL)
		return NULL;
	ck_strlcpy(pc->name, name, sizeof(pc->name));
	TAILQ_INSERT_TAIL(&srv->peers, pc, link);
	return pc;
}

static void
peer_count_put(struct ck_server *srv, struct peer_count *pc)
{
	if (pc == NULL)
		return;
	if (--pc->n == 0) {
		TAILQ_REMOVE(&srv->peers, pc, link);
		free(pc);
	}
}

static void
on_drained(evutil_socket_t fd, short what, void *arg)
{
	struct ck_server *srv = arg;

	(void)fd;
	(void)what;
	if (srv->drained != NULL) {
		ck_server_drained_cb cb = srv->drained;
		srv->drained = NULL;
		cb(srv->drained_arg);
	}
}

static struct ck_call_hooks hooks;

void
ck_server_set_call_hooks(const struct ck_call_hooks *h)
{
	if (h != NULL)
		hooks = *h;
	else
		memset(&hooks, 0, sizeof(hooks));
}

static void
stream_cancel(struct stream *s)
{
	if (s->state == STREAM_RUNNING && s->call.on_cancel != NULL) {
		void (*cancel)(struct ck_call *) = s->call.on_cancel;
		s->call.on_cancel = NULL;
		cancel(&s->call);
	}
}

static void
stream_free(struct stream *s)
{
	struct conn *c = s->conn;

	stream_cancel(s);
	if (!s->observed) {
		/* the client went away before an answer */
		ck_metrics_observe(s->call.method != NULL ?
		    s->call.method->metrics_id : 0, CK_GRPC_CANCELLED,
		    ck_mono_usec() - s->call.started);
		/* debug only before a handler ran: a reset flood must not
		 * flood the log too */
		ck_log(s->state == STREAM_RUNNING ? CK_LOG_INFO : CK_LOG_DEBUG,
		    s->log_id, "call %.*s from %s ended without an answer "
		    "(client cancelled or connection closed)",
		    (int)s->path_len, s->path, c->peer.name);
		if (s->state == STREAM_RUNNING && hooks.done != NULL)
			hooks.done(hooks.arg, &s->call, s->path, s->path_len,
			    CK_GRPC_CANCELLED,
			    ck_mono_usec() - s->call.started);
	}
	ck_metrics_call_finished();
	if (s->deadline_ev != NULL)
		event_free(s->deadline_ev);
	ck_grpc_decoder_reset(&s->dec);
	TAILQ_REMOVE(&c->streams, s, link);
	c->nstreams--;
	ck_arena_free(s->call.arena);
	free(s);
}

static void
conn_close(struct conn *c, const char *why)
{
	struct ck_server *srv = c->srv;
	struct stream *s;

	log_info(NULL, "conn=%llu %s peer=%s closed: %s",
	    (unsigned long long)c->id, c->addr,
	    c->peer.name[0] ? c->peer.name : "-", why);
	/* nghttp2_session_del does not report stream closes: end calls here */
	while ((s = TAILQ_FIRST(&c->streams)) != NULL) {
		if (c->h2 != NULL)
			nghttp2_session_set_stream_user_data(c->h2, s->id, NULL);
		stream_free(s);
	}
	if (c->h2 != NULL)
		nghttp2_session_del(c->h2);
	if (c->timer != NULL)
		event_free(c->timer);
	if (c->flush_ev != NULL)
		event_free(c->flush_ev);
	if (c->bev != NULL)
		bufferevent_free(c->bev);	/* frees the SSL and the fd */
	peer_count_put(srv, c->counted);
	TAILQ_REMOVE(&srv->conns, c, link);
	srv->nconns--;
	ck_metrics_conn_closed();
	ck_config_free(c->cfg);
	free(c);
	if (srv->draining && srv->nconns == 0 && srv->drained_ev != NULL)
		event_active(srv->drained_ev, EV_TIMEOUT, 0);
}

/* ---- answering a call ------------------------------------------------- */

static ssize_t
on_read_reply(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
    size_t length, uint32_t *data_flags, nghttp2_data_source *source,
    void *user_data)
{
	struct stream *s = source->ptr;
	size_t n = s->resp_len - s->resp_off;

	(void)session;
	(void)user_data;
	if (n > length)
		n = length;
	memcpy(buf, s->resp + s->resp_off, n);
	s->resp_off += n;
	if (s->resp_off == s->resp_len) {
		char st[12];
		nghttp2_nv trailers[] = {
			{ (uint8_t *)"grpc-status", (uint8_t *)st, 11, 0,
			    NGHTTP2_NV_FLAG_NO_COPY_NAME },
		};

		*data_flags |= NGHTTP2_DATA_FLAG_EOF |
		    NGHTTP2_DATA_FLAG_NO_END_STREAM;
		trailers[0].valuelen = (size_t)snprintf(st, sizeof(st), "%d",
		    s->status);
		if (nghttp2_submit_trailer(session, stream_id, trailers, 1) != 0)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	return (ssize_t)n;
}

#define NV(n, v)                                                          \
	{ (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v),       \
	    NGHTTP2_NV_FLAG_NO_COPY_NAME }

static void
observe(struct stream *s, int code)
{
	uint64_t usec = ck_mono_usec() - s->call.started;

	s->observed = true;
	ck_metrics_observe(s->call.method != NULL ?
	    s->call.method->metrics_id : 0, code, usec);
	/* ms= in integers: the same digits as "%.3f" of usec / 1000.0,
	 * without printf's floating-point path on every call */
	ck_log(code == CK_GRPC_OK ? CK_LOG_INFO : CK_LOG_NOTICE, s->log_id,
	    "call %.*s peer=%s status=%s ms=%" PRIu64 ".%03u",
	    (int)s->path_len, s->path,
	    s->conn->peer.name[0] ? s->conn->peer.name : "-",
	    ck_grpc_status_name(code), usec / 1000u,
	    (unsigned)(usec % 1000u));
	if (hooks.done != NULL)
		hooks.done(hooks.arg, &s->call, s->path, s->path_len, code,
		    usec);
}

static void
schedule_flush(struct conn *c)
{
	if (!c->in_recv)
		event_active(c->flush_ev, EV_WRITE, 0);
}

/*
 * Trailers-Only answer (an error, or any status without a message): one
 * HEADERS frame with END_STREAM. If the client is still sending its
 * request, tell it to stop with RST_STREAM(NO_ERROR) (gRPC over HTTP/2).
 */
static void
stream_answer(struct stream *s, int code, const char *msg)
{
	struct conn *c = s->conn;
	char st[12] = "";
	nghttp2_nv nv[5] = {
		NV(":status", "200"),
		NV("content-type", "application/grpc"),
		NV("grpc-status", st),
	};
	size_t nnv = 3;
	int rv;

	if (s->state == STREAM_ANSWERED)
		return;
	stream_cancel(s);
	s->state = STREAM_ANSWERED;
	if (s->deadline_ev != NULL)
		event_del(s->deadline_ev);
	nv[2].valuelen = (size_t)snprintf(st, sizeof(st), "%d", code);
	if (msg != NULL && msg[0] != '\0') {
		ck_grpc_percent_encode(msg, strlen(msg), s->message,
		    sizeof(s->message));
		nv[nnv++] = (nghttp2_nv)NV("grpc-message", s->message);
	}
	if (s->has_encoding)
		nv[nnv++] = (nghttp2_nv)NV("grpc-accept-encoding", "identity");
	observe(s, code);
	rv = nghttp2_submit_response(c->h2, s->id, nv, nnv, NULL);
	if (rv != 0)
		log_warn(s->log_id, "submit response: %s",
		    nghttp2_strerror(rv));
	else if (!s->body_done)
		s->rst_after_answer = true;	/* see on_frame_send */
	schedule_flush(c);
}

static void stream_reply(struct stream *s, const ProtobufCMessage *reply);

void
ck_call_reply(struct ck_call *call, const ProtobufCMessage *reply)
{
	if (call->answer != NULL)	/* made inside the broker: no stream */
		call->answer(call, CK_GRPC_OK, "", reply);
	else
		stream_reply((struct stream *)call, reply);
}

static void
stream_reply(struct stream *s, const ProtobufCMessage *reply)
{
	struct ck_call *call = &s->call;
	struct conn *c = s->conn;
	size_t len = protobuf_c_message_get_packed_size(reply);
	nghttp2_data_provider prd;
	nghttp2_nv nv[] = {
		NV(":status", "200"),
		NV("content-type", "application/grpc"),
	};
	int rv;

	if (s->state == STREAM_ANSWERED)
		return;
	if (len > c->cfg->limits.max_message_bytes) {
		log_err(s->log_id, "reply of %zu bytes is over "
		    "max_message_bytes", len);
		stream_answer(s, CK_GRPC_RESOURCE_EXHAUSTED,
		    "reply larger than the server's max_message_bytes");
		return;
	}
	s->resp = ck_arena_alloc(call->arena, len + 5);
	if (s->resp == NULL) {
		stream_answer(s, CK_GRPC_RESOURCE_EXHAUSTED,
		    "server out of memory");
		return;
	}
	ck_grpc_frame_header(s->resp, (uint32_t)len);
	protobuf_c_message_pack(reply, s->resp + 5);
	s->resp_len = len + 5;
	s->resp_off = 0;
	s->status = CK_GRPC_OK;
	s->state = STREAM_ANSWERED;
	if (s->deadline_ev != NULL)
		event_del(s->deadline_ev);
	observe(s, CK_GRPC_OK);
	prd.source.ptr = s;
	prd.read_callback = on_read_reply;
	rv = nghttp2_submit_response(c->h2, s->id, nv, CK_ARRAY_SIZE(nv), &prd);
	if (rv != 0)
		log_warn(s->log_id, "submit response: %s",
		    nghttp2_strerror(rv));
	schedule_flush(c);
}

void
ck_call_fail(struct ck_call *call, int code, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	call->on_cancel = NULL;	/* the handler itself is answering */
	if (call->answer != NULL) {
		call->answer(call, code, msg, NULL);
		return;
	}
	stream_answer((struct stream *)call, code, msg);
}

void *
ck_call_alloc(struct ck_call *call, size_t size)
{
	return ck_arena_alloc(call->arena, size);
}

char *
ck_call_strdup(struct ck_call *call, const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = ck_arena_alloc(call->arena, n);

	if (d == NULL)
		return (char *)"";
	memcpy(d, s, n);
	return d;
}

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct stream *s = arg;

	(void)fd;
	(void)what;
	stream_answer(s, CK_GRPC_DEADLINE_EXCEEDED, "deadline exceeded");
}

/* ---- a call's request ------------------------------------------------- */

static void
stream_headers_done(struct stream *s)
{
	struct conn *c = s->conn;
	const struct ck_limits *lim = &c->cfg->limits;
	uint64_t timeout;

	s->call.method = c->srv->find(s->path, s->path_len);
	if (s->header_bytes > lim->max_header_list_bytes) {
		stream_answer(s, CK_GRPC_RESOURCE_EXHAUSTED, "request header "
		    "list larger than the server's max_header_list_bytes");
		return;
	}
	if (!s->is_post || !s->grpc_content_type) {
		/* not gRPC at all: plain HTTP status (gRPC over HTTP/2 says
		 * 415 for a wrong content-type) */
		nghttp2_nv nv[] = { NV(":status", s->is_post ? "415" : "405") };

		s->state = STREAM_ANSWERED;
		observe(s, CK_GRPC_UNIMPLEMENTED);
		nghttp2_submit_response(c->h2, s->id, nv, 1, NULL);
		return;
	}
	if (s->path_too_long || s->call.method == NULL) {
		stream_answer(s, CK_GRPC_UNIMPLEMENTED, s->path_too_long ?
		    "method path too long" : "unknown service or method");
		return;
	}
	if (s->bad_timeout) {
		stream_answer(s, CK_GRPC_INTERNAL,
		    "grpc-timeout: malformed (expected 1..8 digits and a unit "
		    "H, M, S, m, u or n)");
		return;
	}
	if (!c->authenticated) {
		stream_answer(s, CK_GRPC_UNAUTHENTICATED,
		    "client certificate carries no urn:chakong identity in its "
		    "subjectAltName URI");
		return;
	}
	timeout = s->timeout_usec;
	if (timeout == 0)
		timeout = (uint64_t)lim->default_deadline_ms * 1000u;
	if (timeout > (uint64_t)lim->max_deadline_ms * 1000u)
		timeout = (uint64_t)lim->max_deadline_ms * 1000u;
	s->call.deadline = s->call.started + timeout;
	s->deadline_ev = evtimer_new(c->srv->base, on_deadline, s);
	if (s->deadline_ev == NULL) {
		stream_answer(s, CK_GRPC_RESOURCE_EXHAUSTED,
		    "server out of memory");
		return;
	}
	struct timeval tv = {
		.tv_sec = (time_t)(timeout / 1000000u),
		.tv_usec = (suseconds_t)(timeout % 1000000u),
	};
	evtimer_add(s->deadline_ev, &tv);
	s->state = STREAM_BODY;
}

/* The method's rights check (rpc.h), before and after decoding. */
static bool
stream_admit(struct stream *s)
{
	char msg[384];
	int code;

	if (s->conn->srv->admit == NULL)
		return true;
	code = s->conn->srv->admit(&s->call, msg, sizeof(msg));
	if (code != 0)
		stream_answer(s, code, msg);
	return code == 0;
}

static void
stream_dispatch(struct stream *s)
{
	const struct ck_method *m = s->call.method;
	ProtobufCAllocator alloc;
	int rv = ck_grpc_decoder_finish(&s->dec);

	if (rv != 0) {
		stream_answer(s, CK_GRPC_INTERNAL, "request stream ended "
		    "without exactly one complete message");
		return;
	}
	if (s->dec.compressed) {
		stream_answer(s, s->has_encoding ? CK_GRPC_UNIMPLEMENTED :
		    CK_GRPC_INTERNAL, s->has_encoding ?
		    "grpc-encoding: only identity is supported" :
		    "compressed-flag set on a message without grpc-encoding");
		return;
	}
	if (m->access != CK_ACCESS_ANY &&
	    !(m->access & CK_ACCESS_ROLE(s->conn->peer.role))) {
		char msg[128];

		snprintf(msg, sizeof(msg), "this method is not open to the "
		    "certificate's role (%s)", ck_role_name(s->conn->peer.role));
		stream_answer(s, CK_GRPC_PERMISSION_DENIED, msg);
		return;
	}
	if (!stream_admit(s))
		return;
	ck_arena_allocator(s->call.arena, &alloc);
	s->call.request = protobuf_c_message_unpack(m->input, &alloc,
	    s->dec.msg_len, s->dec.msg);
	if (s->call.request == NULL) {
		stream_answer(s, CK_GRPC_INVALID_ARGUMENT, "request body: not "
		    "a valid protobuf encoding of the method's request "
		    "message");
		return;
	}
	if (!stream_admit(s))
		return;
	ck_grpc_decoder_reset(&s->dec);
	s->call.cfg = s->conn->cfg;
	if (hooks.admit != NULL) {
		const char *why = "refused";

		if (!hooks.admit(hooks.arg, &s->call, &why)) {
			stream_answer(s, CK_GRPC_UNAVAILABLE, why);
			return;
		}
	}
	s->state = STREAM_RUNNING;
	m->handler(&s->call);
}

/* ---- nghttp2 callbacks ------------------------------------------------ */

/* snprintf(out, size, "%08x%08llx", salt, n) by hand: a call's id is
 * made for every stream. */
static void
log_id_of(char *out, size_t size, uint32_t salt, uint64_t n)
{
	static const char hex[] = "0123456789abcdef";
	char buf[8 + 16];
	size_t len = 0, nd = 0;
	char rev[16];

	for (int i = 7; i >= 0; i--)
		buf[len++] = hex[(salt >> (4 * i)) & 0xf];
	do {
		rev[nd++] = hex[n & 0xf];
		n >>= 4;
	} while (n > 0);
	while (nd < 8)
		rev[nd++] = '0';
	while (nd > 0)
		buf[len++] = rev[--nd];
	if (len > size - 1)
		len = size - 1;
	memcpy(out, buf, len);
	out[len] = '\0';
}

static int
on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame,
    void *user_data)
{
	struct conn *c = user_data;
	struct ck_server *srv = c->srv;
	struct stream *s;

	if (frame->hd.type != NGHTTP2_HEADERS ||
	    frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	s = calloc(1, sizeof(*s));
	if (s == NULL || (s->call.arena = ck_arena_new()) == NULL) {
		free(s);
		nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE,
		    frame->hd.stream_id, NGHTTP2_INTERNAL_ERROR);
		return 0;
	}
	s->id = frame->hd.stream_id;
	s->conn = c;
	s->call.peer = &c->peer;
	s->call.cfg = c->cfg;
	s->call.base = srv->base;
	s->call.started = ck_mono_usec();
	log_id_of(s->log_id, sizeof(s->log_id), srv->call_salt,
	    ++srv->next_call);
	s->call.log_id = s->log_id;
	ck_grpc_decoder_init(&s->dec, c->cfg->limits.max_message_bytes);
	TAILQ_INSERT_TAIL(&c->streams, s, link);
	c->nstreams++;
	ck_metrics_call_started();
	nghttp2_session_set_stream_user_data(session, s->id, s);
	return 0;
}

static bool
header_is(const uint8_t *name, size_t len, const char *want)
{
	return len == strlen(want) && memcmp(name, want, len) == 0;
}

static int
on_header(nghttp2_session *session, const nghttp2_frame *frame,
    const uint8_t *name, size_t namelen, const uint8_t *value,
    size_t valuelen, uint8_t flags, void *user_data)
{
	struct stream *s;

	(void)flags;
	(void)user_data;
	if (frame->hd.type != NGHTTP2_HEADERS ||
	    frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;	/* request trailers carry nothing we use */
	s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
	if (s == NULL)
		return 0;
	/* nghttp2 does not enforce our SETTINGS_MAX_HEADER_LIST_SIZE */
	s->header_bytes += namelen + valuelen + 32;
	if (header_is(name, namelen, ":path")) {
		if (valuelen >= sizeof(s->path)) {
			s->path_too_long = true;
			valuelen = sizeof(s->path) - 1;
		}
		memcpy(s->path, value, valuelen);
		s->path[valuelen] = '\0';
		s->path_len = valuelen;
	} else if (header_is(name, namelen, ":method")) {
		s->is_post = valuelen == 4 && memcmp(value, "POST", 4) == 0;
	} else if (header_is(name, namelen, "content-type")) {
		/* "application/grpc", "application/grpc+proto", ";params" */
		s->grpc_content_type = valuelen >= 16 &&
		    memcmp(value, "application/grpc", 16) == 0 &&
		    (valuelen == 16 || value[16] == '+' || value[16] == ';');
	} else if (header_is(name, namelen, "grpc-encoding")) {
		s->has_encoding = !(valuelen == 8 &&
		    memcmp(value, "identity", 8) == 0);
	} else if (header_is(name, namelen, "grpc-timeout")) {
		if (ck_grpc_timeout_parse((const char *)value, valuelen,
		    &s->timeout_usec) != 0)
			s->bad_timeout = true;
		else if (s->timeout_usec == 0)
			s->timeout_usec = 1;	/* already expired */
	}
	return 0;
}

static int
on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
    const uint8_t *data, size_t len, void *user_data)
{
	struct stream *s;
	int rv;

	(void)flags;
	(void)user_data;
	s = nghttp2_session_get_stream_user_data(session, stream_id);
	if (s == NULL || s->state != STREAM_BODY)
		return 0;	/* answered early: discard the rest */
	rv = ck_grpc_decoder_feed(&s->dec, data, len);
	if (rv == CK_ETOOBIG)
		stream_answer(s, CK_GRPC_RESOURCE_EXHAUSTED, "request message "
		    "larger than the server's max_message_bytes");
	else if (rv == CK_ENOMEM)
		stream_answer(s, CK_GRPC_RESOURCE_EXHAUSTED,
		    "server out of memory");
	else if (rv != 0)
		stream_answer(s, CK_GRPC_INTERNAL, "malformed gRPC message "
		    "framing (bad flag byte or more than one message in a "
		    "unary call)");
	return 0;
}

static int
on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame,
    void *user_data)
{
	struct conn *c = user_data;
	struct stream *s;

	if (c->timer != NULL && c->state == CONN_ACTIVE) {
		struct timeval tv = { .tv_sec = c->cfg->limits.idle_timeout_s };
		evtimer_add(c->timer, &tv);	/* idle clock restarts */
	}
	if (frame->hd.type != NGHTTP2_HEADERS &&
	    frame->hd.type != NGHTTP2_DATA)
		return 0;
	s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
	if (s == NULL)
		return 0;
	if (frame->hd.type == NGHTTP2_HEADERS &&
	    frame->headers.cat == NGHTTP2_HCAT_REQUEST &&
	    s->state == STREAM_HEADERS)
		stream_headers_done(s);
	if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
		s->body_done = true;
		if (s->state == STREAM_BODY)
			stream_dispatch(s);
	}
	return 0;
}

static int
on_stream_close(nghttp2_session *session, int32_t stream_id,
    uint32_t error_code, void *user_data)
{
	struct stream *s;

	(void)error_code;
	(void)user_data;
	s = nghttp2_session_get_stream_user_data(session, stream_id);
	if (s == NULL)
		return 0;
	nghttp2_session_set_stream_user_data(session, stream_id, NULL);
	stream_free(s);
	return 0;
}

/*
 * After an early answer (Trailers-Only with END_STREAM) to a client that
 * is still sending its request, RST_STREAM(NO_ERROR) tells it to stop
 * (gRPC over HTTP/2). It must follow the HEADERS frame: nghttp2 drops a
 * queued response once a reset for the stream is queued.
 */
static int
on_frame_send(nghttp2_session *session, const nghttp2_frame *frame,
    void *user_data)
{
	struct conn *c = user_data;
	struct stream *s;

	if (frame->hd.type == NGHTTP2_GOAWAY &&
	    frame->goaway.error_code != NGHTTP2_NO_ERROR) {
		snprintf(c->goaway_reason, sizeof(c->goaway_reason),
		    "sent GOAWAY %s: %.*s",
		    nghttp2_http2_strerror(frame->goaway.error_code),
		    (int)(frame->goaway.opaque_data_len < 80 ?
		    frame->goaway.opaque_data_len : 80),
		    (const char *)frame->goaway.opaque_data);
		return 0;
	}
	if (frame->hd.type != NGHTTP2_HEADERS ||
	    !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
		return 0;
	s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
	if (s != NULL && s->rst_after_answer &&
	    nghttp2_session_get_stream_remote_close(session, s->id) == 0)
		nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, s->id,
		    NGHTTP2_NO_ERROR);
	return 0;
}

static int
on_invalid_frame(nghttp2_session *session, const nghttp2_frame *frame,
    int lib_error_code, void *user_data)
{
	struct conn *c = user_data;

	(void)session;
	log_info(NULL, "conn=%llu peer=%s invalid frame type %u on stream "
	    "%d: %s", (unsigned long long)c->id, c->peer.name,
	    frame->hd.type, frame->hd.stream_id,
	    nghttp2_strerror(lib_error_code));
	return 0;
}

static int
on_frame_not_send(nghttp2_session *session, const nghttp2_frame *frame,
    int lib_error_code, void *user_data)
{
	(void)session;
	(void)user_data;
	log_debug(NULL, "frame type %u on stream %d not sent: %s",
	    frame->hd.type, frame->hd.stream_id,
	    nghttp2_strerror(lib_error_code));
	return 0;
}

/* ---- connection I/O --------------------------------------------------- */

/*
 * Serialise what nghttp2 has queued into the output buffer, up to the
 * back-pressure mark, and close the connection when both sides are done.
 */
static void
conn_flush(struct conn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	size_t mark = c->cfg->limits.write_buffer_bytes;

	/*
	 * One contiguous chunk for what follows: bufferevent_openssl makes
	 * one TLS record, and one write(2), per chunk, and nghttp2 hands a
	 * reply over in several pieces (a 1.7 KB reply went out as two
	 * records and two system calls).
	 */
	evbuffer_expand(out, 16384);
	while (evbuffer_get_length(out) < mark) {
		const uint8_t *data;
		ssize_t n = nghttp2_session_mem_send(c->h2, &data);

		if (n < 0) {
			conn_close(c, nghttp2_strerror((int)n));
			return;
		}
		if (n == 0)
			break;
		if (evbuffer_add(out, data, (size_t)n) != 0) {
			conn_close(c, "out of memory");
			return;
		}
	}
	if (evbuffer_get_length(out) >= mark) {
		/* the client is not reading: stop reading from it too */
		if (!c->read_paused) {
			c->read_paused = true;
			bufferevent_disable(c->bev, EV_READ);
		}
		return;
	}
	if (c->read_paused) {
		c->read_paused = false;
		bufferevent_enable(c->bev, EV_READ);
	}
	if (!nghttp2_session_want_read(c->h2) &&
	    !nghttp2_session_want_write(c->h2) &&
	    evbuffer_get_length(out) == 0)
		conn_close(c, c->goaway_reason[0] ? c->goaway_reason :
		    c->state == CONN_GOAWAY ? "drained after GOAWAY" :
		    "session finished");
}

static void
on_flush(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	conn_flush(arg);
}

static int
feed_h2(void *arg, const uint8_t *data, size_t len)
{
	struct conn *c = arg;
	ssize_t n = nghttp2_session_mem_recv(c->h2, data, len);

	return n < 0 ? (int)n : 0;
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_iovec v[8];
	int nv;

	if (c->state == CONN_HANDSHAKE)
		return;
	c->in_recv = true;
	while ((nv = evbuffer_peek(in, -1, NULL, v, 8)) > 0) {
		size_t total = 0;

		for (int i = 0; i < nv && i < 8; i++) {
			ssize_t n = nghttp2_session_mem_recv(c->h2,
			    v[i].iov_base, v[i].iov_len);

			if (n < 0) {
				c->in_recv = false;
				/* nghttp2 queued a GOAWAY for protocol errors */
				log_info(NULL, "conn=%llu peer=%s HTTP/2 "
				    "error: %s", (unsigned long long)c->id,
				    c->peer.name, nghttp2_strerror((int)n));
				evbuffer_drain(in, evbuffer_get_length(in));
				if (n == NGHTTP2_ERR_FLOODED ||
				    n == NGHTTP2_ERR_CALLBACK_FAILURE) {
					conn_close(c, nghttp2_strerror((int)n));
					return;
				}
				nghttp2_session_terminate_session(c->h2,
				    NGHTTP2_PROTOCOL_ERROR);
				c->state = CONN_GOAWAY;
				conn_flush(c);
				return;
			}
			total += (size_t)n;
		}
		evbuffer_drain(in, total);
		if (nv <= 8)
			break;
	}
	/* records OpenSSL holds that libevent 2.1 would leave there */
	int rv = ck_tls_drain_pending(bufferevent_openssl_get_ssl(bev), feed_h2,
	    c);
	c->in_recv = false;
	if (rv < 0) {
		log_info(NULL, "conn=%llu peer=%s HTTP/2 error: %s",
		    (unsigned long long)c->id, c->peer.name,
		    nghttp2_strerror(rv));
		if (rv == NGHTTP2_ERR_FLOODED ||
		    rv == NGHTTP2_ERR_CALLBACK_FAILURE) {
			conn_close(c, nghttp2_strerror(rv));
			return;
		}
		nghttp2_session_terminate_session(c->h2,
		    NGHTTP2_PROTOCOL_ERROR);
		c->state = CONN_GOAWAY;
	}
	conn_flush(c);
}

static void
on_write(struct bufferevent *bev, void *arg)
{
	(void)bev;
	conn_flush(arg);
}

static bool
conn_start_h2(struct conn *c)
{
	const struct ck_limits *lim = &c->cfg->limits;
	nghttp2_session_callbacks *cbs;
	nghttp2_option *opt;
	int rv;

	if (nghttp2_session_callbacks_new(&cbs) != 0)
		return false;
	nghttp2_session_callbacks_set_on_begin_headers_callback(cbs,
	    on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs,
	    on_data_chunk);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs,
	    on_frame_recv);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs,
	    on_stream_close);
	nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cbs,
	    on_invalid_frame);
	nghttp2_session_callbacks_set_on_frame_not_send_callback(cbs,
	    on_frame_not_send);
	nghttp2_session_callbacks_set_on_frame_send_callback(cbs,
	    on_frame_send);
	if (nghttp2_option_new(&opt) != 0) {
		nghttp2_session_callbacks_del(cbs);
		return false;
	}
	nghttp2_option_set_max_outbound_ack(opt, lim->max_outbound_ack);
	nghttp2_option_set_max_settings(opt, lim->max_settings);
	nghttp2_option_set_stream_reset_rate_limit(opt,
	    lim->stream_reset_burst, lim->stream_reset_rate);
	nghttp2_option_set_max_continuations(opt, lim->max_continuations);
	/* stream ids of closed streams are not kept for priority */
	nghttp2_option_set_no_closed_streams(opt, 1);
	rv = nghttp2_session_server_new2(&c->h2, cbs, c, opt);
	nghttp2_option_del(opt);
	nghttp2_session_callbacks_del(cbs);
	if (rv != 0)
		return false;

	nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
		    lim->max_concurrent_streams },
		{ NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
		    lim->max_header_list_bytes },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1u << 20 },
		{ NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
	};
	if (nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv,
	    CK_ARRAY_SIZE(iv)) != 0)
		return false;
	/* a connection-level window large enough for many streams */
	nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0,
	    16 << 20);
	return true;
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	if (c->state == CONN_HANDSHAKE) {
		ck_metrics_tls_handshake_failed();
		conn_close(c, "TLS handshake timeout");
		return;
	}
	if (c->nstreams > 0) {
		struct timeval tv = { .tv_sec = c->cfg->limits.idle_timeout_s };
		evtimer_add(c->timer, &tv);
		return;
	}
	c->state = CONN_GOAWAY;
	nghttp2_submit_goaway(c->h2, NGHTTP2_FLAG_NONE,
	    nghttp2_session_get_last_proc_stream_id(c->h2), NGHTTP2_NO_ERROR,
	    (const uint8_t *)"idle", 4);
	conn_flush(c);
}

static void
conn_goaway(struct conn *c, uint32_t code, const char *why)
{
	c->state = CONN_GOAWAY;
	nghttp2_submit_goaway(c->h2, NGHTTP2_FLAG_NONE,
	    nghttp2_session_get_last_proc_stream_id(c->h2), code,
	    (const uint8_t *)why, strlen(why));
	conn_flush(c);
}

static void
conn_established(struct conn *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	struct ck_server *srv = c->srv;
	const struct ck_limits *lim = &c->cfg->limits;

	if (!ck_tls_alpn_is_h2(ssl)) {
		ck_metrics_tls_handshake_failed();
		conn_close(c, "client did not negotiate ALPN h2");
		return;
	}
	c->authenticated = ck_tls_peer_identity(ssl, &c->peer) == 0;
	if (!c->authenticated)
		ck_strlcpy(c->peer.name, "unidentified", sizeof(c->peer.name));
	if (!conn_start_h2(c)) {
		conn_close(c, "cannot start HTTP/2 session");
		return;
	}
	c->state = CONN_ACTIVE;
	struct timeval tv = { .tv_sec = lim->idle_timeout_s };
	evtimer_add(c->timer, &tv);
	log_info(NULL, "conn=%llu %s peer=%s established %s %s%s",
	    (unsigned long long)c->id, c->addr, c->peer.name,
	    SSL_get_version(ssl), SSL_get_cipher_name(ssl),
	    SSL_session_reused(ssl) ? " (resumed)" : "");

	c->counted = peer_count_get(srv, c->peer.name);
	if (c->counted == NULL) {
		conn_close(c, "out of memory");
		return;
	}
	if (++c->counted->n > lim->max_connections_per_identity) {
		log_warn(NULL, "conn=%llu peer=%s refused: more than %u "
		    "connections for this identity",
		    (unsigned long long)c->id, c->peer.name,
		    lim->max_connections_per_identity);
		conn_goaway(c, NGHTTP2_ENHANCE_YOUR_CALM,
		    "too many connections for this identity");
		return;
	}
	if (srv->draining) {
		conn_goaway(c, NGHTTP2_NO_ERROR, "shutting down");
		return;
	}
	/* data that arrived with the handshake */
	on_read(c->bev, c);
}

static void
on_event(struct bufferevent *bev, short events, void *arg)
{
	struct conn *c = arg;

	if (events & BEV_EVENT_CONNECTED) {
		conn_established(c);
		return;
	}
	if (events & BEV_EVENT_ERROR) {
		unsigned long e = bufferevent_get_openssl_error(bev);
		char buf[256] = "connection error";

		if (e != 0) {
			SSL *ssl = bufferevent_openssl_get_ssl(bev);
			long vr = ssl != NULL ? SSL_get_verify_result(ssl) :
			    X509_V_OK;
			size_t len;

			ERR_error_string_n(e, buf, sizeof(buf));
			/* say why a client certificate failed (revoked,
			 * expired, unknown CA) */
			len = strlen(buf);
			if (vr != X509_V_OK && len < sizeof(buf))
				snprintf(buf + len, sizeof(buf) - len, " (%s)",
				    X509_verify_cert_error_string(vr));
		} else if (EVUTIL_SOCKET_ERROR() != 0)
			ck_strlcpy(buf, evutil_socket_error_to_string(
			    EVUTIL_SOCKET_ERROR()), sizeof(buf));
		if (c->state == CONN_HANDSHAKE)
			ck_metrics_tls_handshake_failed();
		conn_close(c, buf);
		return;
	}
	if (events & BEV_EVENT_EOF)
		conn_close(c, "peer closed the connection");
}

static void
on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct ck_server *srv = arg;
	struct conn *c;
	SSL *ssl;
	int one = 1;

	(void)l;
	(void)salen;
	if (srv->nconns >= srv->cfg->limits.max_connections) {
		log_warn(NULL, "refusing a connection: max_connections (%u) "
		    "reached", srv->cfg->limits.max_connections);
		evutil_closesocket(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	ssl = SSL_new(srv->ctx);
	if (c == NULL || ssl == NULL) {
		free(c);
		SSL_free(ssl);
		evutil_closesocket(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->srv = srv;
	c->cfg = ck_config_ref(srv->cfg);
	c->id = ++srv->next_conn_id;
	TAILQ_INIT(&c->streams);
	ck_format_sockaddr(sa, c->addr, sizeof(c->addr));
	TAILQ_INSERT_TAIL(&srv->conns, c, link);
	srv->nconns++;
	ck_metrics_conn_opened();

	c->bev = bufferevent_openssl_socket_new(srv->base, fd, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	c->timer = evtimer_new(srv->base, on_timer, c);
	c->flush_ev = event_new(srv->base, -1, 0, on_flush, c);
	if (c->bev == NULL || c->timer == NULL || c->flush_ev == NULL) {
		if (c->bev == NULL) {
			SSL_free(ssl);
			evutil_closesocket(fd);
		}
		conn_close(c, "out of memory");
		return;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, READ_HIGH_WATER);
	bufferevent_setwatermark(c->bev, EV_WRITE,
	    c->cfg->limits.write_buffer_bytes / 2, 0);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	struct timeval tv = {
		.tv_sec = c->cfg->limits.handshake_timeout_ms / 1000,
		.tv_usec = (c->cfg->limits.handshake_timeout_ms % 1000) * 1000,
	};
	evtimer_add(c->timer, &tv);
}

static void
on_accept_error(struct evconnlistener *l, void *arg)
{
	int err = EVUTIL_SOCKET_ERROR();

	(void)l;
	(void)arg;
	/* EMFILE and friends: log and keep serving what we have */
	log_err(NULL, "accept: %s", evutil_socket_error_to_string(err));
}

/* ---- public ----------------------------------------------------------- */

int
ck_server_open(struct event_base *base, struct ck_config *cfg, SSL_CTX *ctx,
    ck_method_find_fn find, struct ck_server **out, char *err, size_t errlen)
{
	struct ck_server *srv;
	struct sockaddr_storage ss;
	socklen_t sslen;
	int len;

	*out = NULL;
	if (ck_parse_hostport(cfg->listen, &ss, &len) != 0) {
		snprintf(err, errlen, "%s: [server] listen: bad address",
		    cfg->path);
		return CK_ECONFIG;
	}
	srv = calloc(1, sizeof(*srv));
	if (srv == NULL)
		return CK_ENOMEM;
	srv->base = base;
	srv->find = find;
	TAILQ_INIT(&srv->conns);
	TAILQ_INIT(&srv->peers);
	if (RAND_bytes((unsigned char *)&srv->call_salt,
	    sizeof(srv->call_salt)) != 1)
		srv->call_salt = (uint32_t)ck_mono_usec();
	srv->listener = evconnlistener_new_bind(base, on_accept, srv,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
	    LEV_OPT_CLOSE_ON_EXEC, 1024, (struct sockaddr *)&ss, len);
	if (srv->listener == NULL) {
		snprintf(err, errlen, "%s: [server] listen: cannot bind %s: %s",
		    cfg->path, cfg->listen, strerror(errno));
		free(srv);
		return -errno;
	}
	evconnlistener_set_error_cb(srv->listener, on_accept_error);
	sslen = sizeof(ss);
	getsockname(evconnlistener_get_fd(srv->listener),
	    (struct sockaddr *)&ss, &sslen);
	ck_format_sockaddr(&ss, srv->addr, sizeof(srv->addr));
	srv->drained_ev = event_new(base, -1, 0, on_drained, srv);
	if (srv->drained_ev == NULL) {
		evconnlistener_free(srv->listener);
		free(srv);
		return CK_ENOMEM;
	}
	srv->cfg = ck_config_ref(cfg);
	SSL_CTX_up_ref(ctx);
	srv->ctx = ctx;
	*out = srv;
	return 0;
}

const char *
ck_server_address(const struct ck_server *srv)
{
	return srv->addr;
}

void
ck_server_reload(struct ck_server *srv, struct ck_config *cfg, SSL_CTX *ctx)
{
	struct conn *c, *next;

	SSL_CTX_up_ref(ctx);
	SSL_CTX_free(srv->ctx);	/* live connections hold their own refs */
	srv->ctx = ctx;
	ck_config_free(srv->cfg);
	srv->cfg = ck_config_ref(cfg);
	/* a certificate revoked (or a CA withdrawn) since its handshake takes
	 * no new calls: GOAWAY, the calls in flight finish */
	for (c = TAILQ_FIRST(&srv->conns); c != NULL; c = next) {
		const char *why;

		next = TAILQ_NEXT(c, link);
		if (c->state != CONN_ACTIVE || ck_tls_peer_reverify(ctx,
		    bufferevent_openssl_get_ssl(c->bev), &why) == 0)
			continue;
		log_warn(NULL, "conn=%llu peer=%s: its certificate no longer "
		    "verifies (%s); GOAWAY", (unsigned long long)c->id,
		    c->peer.name, why);
		conn_goaway(c, NGHTTP2_NO_ERROR, "client certificate no longer "
		    "valid");
	}
}

void
ck_server_set_admit(struct ck_server *srv, ck_admit_fn admit)
{
	srv->admit = admit;
}

void
ck_server_drain(struct ck_server *srv, ck_server_drained_cb drained,
    void *arg)
{
	struct conn *c, *next;

	srv->draining = true;
	srv->drained = drained;
	srv->drained_arg = arg;
	if (srv->listener != NULL) {
		evconnlistener_free(srv->listener);
		srv->listener = NULL;
	}
	for (c = TAILQ_FIRST(&srv->conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, link);
		if (c->state == CONN_HANDSHAKE)
			conn_close(c, "shutting down");
		else if (c->state == CONN_ACTIVE)
			conn_goaway(c, NGHTTP2_NO_ERROR, "shutting down");
	}
	if (srv->nconns == 0)
		event_active(srv->drained_ev, EV_TIMEOUT, 0);
}

void
ck_server_close(struct ck_server *srv)
{
	struct conn *c;
	struct peer_count *pc;

	if (srv == NULL)
		return;
	srv->drained = NULL;
	while ((c = TAILQ_FIRST(&srv->conns)) != NULL)
		conn_close(c, "server closed");
	while ((pc = TAILQ_FIRST(&srv->peers)) != NULL) {
		TAILQ_REMOVE(&srv->peers, pc, link);
		free(pc);
	}
	if (srv->listener != NULL)
		evconnlistener_free(srv->listener);
	if (srv->drained_ev != NULL)
		event_free(srv->drained_ev);
	SSL_CTX_free(srv->ctx);
	ck_config_free(srv->cfg);
	free(srv);
}
