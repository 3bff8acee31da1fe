/*
 * pool.h: outbound channels to agency endpoints, lent to adapters through
 * struct ck_host (include/chakong/adapter.h).
 *
 * Per endpoint: a bounded pool of HTTP/2 connections (broker/grpc_client)
 * with many streams each, made lazily, each call on the least-loaded
 * usable one, an unusable one (closed, told GOAWAY, out of stream ids)
 * replaced; mutual TLS with the broker's client certificate, the agency's
 * certificate checked against the endpoint's configured identity (SAN
 * URI); TLS sessions resumed on reconnect; after a failed connect, no new
 * connection for a while (exponential backoff from 100 ms to 10 s, full
 * jitter), calls that find no usable connection meanwhile failing fast; a
 * token-bucket rate cap and a concurrency cap (calls over either wait in a
 * bounded queue, interactive before background, until their deadline); a
 * circuit breaker (opens after `breaker_failures` consecutive failures,
 * stays open `breaker_open_ms`, then lets one probe through half-open; the
 * probe's success closes it, its failure opens it again).
 *
 * What counts as a failure for the breaker: UNAVAILABLE, DEADLINE_EXCEEDED,
 * INTERNAL, UNKNOWN and RESOURCE_EXHAUSTED from the transport or the
 * agency. An agency's ordinary answers (OK, NOT_FOUND, INVALID_ARGUMENT,
 * FAILED_PRECONDITION, ...) are successes: it is alive. Calls the pool
 * refuses itself (breaker, backoff, queue) count for neither.
 *
 * Every refusal is UNAVAILABLE (or DEADLINE_EXCEEDED for a deadline that
 * passed in the queue) with CK_DELIVERY_NOT_SENT and a message that says
 * why. A call refused by a connection that was up (GOAWAY below its
 * stream, REFUSED_STREAM, the connection retired) is tried once more on
 * another connection when its deadline allows.
 *
 * Event-loop thread only.
 */
#ifndef CK_POOL_H
#define CK_POOL_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "chakong/adapter.h"
#include "grpc_frame.h"

struct event_base;
struct evbuffer;
struct ck_pool;

struct ck_endpoint_conf {
	char name[32];		     /* [endpoint.<name>] */
	char address[128];	     /* "127.0.0.1:9001" (numeric host) */
	char identity[128];	     /* "urn:chakong:agency:icbc" (required) */
	char server_name[128];	     /* DNS/IP name to check; "" = none */
	uint32_t connections;	     /* pool size: 2 */
	uint32_t max_concurrent;     /* calls in flight: 64 */
	uint32_t max_queue;	     /* calls waiting for a slot: 256 */
	uint32_t rate;		     /* calls per second: 0 = no cap */
	uint32_t burst;		     /* token bucket depth: 50 */
	uint32_t timeout_ms;	     /* cap on one call: 10000 */
	uint32_t connect_timeout_ms; /* TCP + TLS: 3000 */
	uint32_t breaker_failures;   /* consecutive failures to open: 5 */
	uint32_t breaker_open_ms;    /* open before a probe: 5000 */
	unsigned line;		     /* config line, for messages */
};

/* Defaults for one endpoint (everything but name/address/identity);
 * defined in config.c. */
void ck_endpoint_conf_defaults(struct ck_endpoint_conf *ep);

/*
 * Make the pool. ctx is the client TLS context (broker certificate and
 * key, agencies' CA); the pool takes a reference. No connection is made
 * until the first call. Returns 0 or < 0 with a message in err.
 */
int ck_pool_new(struct event_base *base, SSL_CTX *ctx,
    const struct ck_endpoint_conf *eps, size_t neps, struct ck_pool **out,
    char *err, size_t errlen);
/* Cancels every call without callbacks; NULL-safe. Not from inside a
 * ck_rpc_cb. */
void ck_pool_free(struct ck_pool *pool);

/*
 * struct ck_host functions (see adapter.h for their contracts).
 * ck_pool_rpc_start's deadline is min(timeout_usec, the endpoint's
 * timeout_ms); timeout_usec 0 means the endpoint's. Time spent queued
 * counts. The handle dies when the callback returns; cancelling it from
 * inside its own callback does nothing.
 */
int ck_pool_channel(
    struct ck_pool *pool, const char *endpoint, struct ck_channel **out);
const char *ck_pool_channel_name(const struct ck_channel *ch);
int ck_pool_rpc_start(struct ck_channel *ch, const char *path,
    const uint8_t *req, size_t len, uint64_t timeout_usec, const char *log_id,
    ck_rpc_cb cb, void *arg, struct ck_rpc **out);
void ck_pool_rpc_cancel(struct ck_rpc *rpc);

/*
 * Lower priority for scheduled (background) calls; see issue 7. Call it
 * right after ck_pool_rpc_start(): a queued background call waits behind
 * every queued interactive one, and an interactive call that finds the
 * queue full displaces the newest background one (which fails
 * UNAVAILABLE, not sent). A call already sent is unaffected.
 */
void ck_pool_rpc_set_background(struct ck_rpc *rpc);

enum ck_breaker_state {
	CK_BREAKER_CLOSED = 0,
	CK_BREAKER_HALF_OPEN = 1,
	CK_BREAKER_OPEN = 2,
};

/* "closed", "half-open", "open". */
const char *ck_breaker_state_name(enum ck_breaker_state st);

/* One endpoint's numbers, as /status and /metrics show them. */
struct ck_pool_stats {
	enum ck_breaker_state breaker;
	uint64_t breaker_opens; /* CLOSED/HALF_OPEN -> OPEN */
	uint32_t consecutive_failures;
	uint32_t connections; /* channels that exist now */
	uint32_t ready;	      /* ... of them with a live connection */
	uint32_t inflight;    /* calls sent, not finished */
	uint32_t queued;      /* calls waiting for a slot or token */
	uint64_t calls[CK_GRPC_NSTATUS]; /* finished, by gRPC status */
	uint64_t refused_breaker;	 /* refusals by the pool itself */
	uint64_t refused_backoff;
	uint64_t refused_queue_full;
	uint64_t refused_queue_timeout;
	uint64_t retries;  /* NOT_SENT calls tried again */
	uint64_t connects; /* connection attempts */
	uint64_t connect_failures;
	uint64_t reconnects;	  /* channels made to replace another */
	uint64_t handshakes;	  /* connections that came up */
	uint64_t resumed;	  /* ... with a resumed TLS session */
	uint64_t backoff_left_ms; /* 0 when not backing off */
	double latency_p50_ms;	  /* sent calls; < 0 when none */
	double latency_p99_ms;
};

/* Fill *out for the endpoint named `endpoint`; 0 or CK_ENOTFOUND. */
int ck_pool_stats(const struct ck_pool *pool, const char *endpoint,
    struct ck_pool_stats *out);

/*
 * For tests: the clock that drives the breaker, the token bucket and the
 * backoff (monotonic µs), and the random numbers of the backoff jitter
 * (uniform 64-bit). Deadlines keep running on the event loop's clock.
 * Either function NULL = the real one.
 */
struct ck_pool_hooks {
	uint64_t (*now_usec)(void *arg);
	uint64_t (*random)(void *arg);
	void *arg;
};
void ck_pool_set_hooks(struct ck_pool *pool, const struct ck_pool_hooks *h);

/*
 * Per-endpoint state for operators: /status gets a JSON object
 * {"<name>":{"address":..,"identity":..,"breaker":"closed|open|half-open",
 * "breaker_opens":N,"connections":N,"ready":N,"inflight":N,"queued":N,
 * "calls":N,"codes":{"OK":N,..},"errors":{"UNAVAILABLE":N,..},
 * "refused":{"breaker":N,"backoff":N,"queue_full":N,"queue_timeout":N},
 * "reconnects":N,"connect_failures":N,"tls_handshakes":N,
 * "tls_resumed":N,"backoff_ms":N,"last_error":"..",
 * "latency_ms":{"p50":..,"p99":..}}} (codes and errors only non-zero;
 * latency null before the first call); /metrics gets, each family with
 * HELP and TYPE, chakong_endpoint_calls_total{endpoint,code},
 * chakong_endpoint_call_duration_seconds{endpoint} (histogram, the
 * buckets of metrics.h, of calls that were sent),
 * chakong_endpoint_inflight_calls, _queued_calls, _connections,
 * chakong_endpoint_breaker_state{endpoint} (0 closed, 1 half-open,
 * 2 open), chakong_endpoint_breaker_opens_total,
 * chakong_endpoint_refused_total{endpoint,reason},
 * chakong_endpoint_reconnects_total, _connect_failures_total,
 * _tls_handshakes_total, _tls_resumed_total.
 */
void ck_pool_write_json(const struct ck_pool *pool, struct evbuffer *out);
void ck_pool_write_prometheus(const struct ck_pool *pool, struct evbuffer *out);

#endif
