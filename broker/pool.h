/*
 * pool.h: outbound channels to agency endpoints, lent to adapters through
 * struct ck_host (include/chakong/adapter.h).
 *
 * Per endpoint: a bounded pool of HTTP/2 connections (broker/grpc_client)
 * with many streams each; mutual TLS with the broker's client certificate,
 * the agency's certificate checked against the endpoint's configured
 * identity (SAN URI); TLS sessions resumed on reconnect; reconnect with
 * jittered exponential backoff; a token-bucket rate cap and a concurrency
 * cap (calls over it wait in a bounded queue, interactive before
 * scheduled, until their deadline); a circuit breaker (opens after
 * `breaker_failures` consecutive failures, stays open `breaker_open_ms`,
 * then lets one probe through half-open; the probe's success closes it).
 * Event-loop thread only.
 */
#ifndef CK_POOL_H
#define CK_POOL_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "chakong/adapter.h"

struct event_base;
struct evbuffer;
struct ck_pool;

struct ck_endpoint_conf {
	char name[32];			/* [endpoint.<name>] */
	char address[128];		/* "127.0.0.1:9001" (numeric host) */
	char identity[128];		/* "urn:chakong:agency:icbc" (required) */
	char server_name[128];		/* DNS/IP name to check; "" = none */
	uint32_t connections;		/* pool size: 2 */
	uint32_t max_concurrent;	/* calls in flight: 64 */
	uint32_t max_queue;		/* calls waiting for a slot: 256 */
	uint32_t rate;			/* calls per second: 0 = no cap */
	uint32_t burst;			/* token bucket depth: 50 */
	uint32_t timeout_ms;		/* cap on one call: 10000 */
	uint32_t connect_timeout_ms;	/* TCP + TLS: 3000 */
	uint32_t breaker_failures;	/* consecutive failures to open: 5 */
	uint32_t breaker_open_ms;	/* open before a probe: 5000 */
	unsigned line;			/* config line, for messages */
};

/* Defaults for one endpoint (everything but name/address/identity). */
void ck_endpoint_conf_defaults(struct ck_endpoint_conf *ep);

/*
 * Make the pool. ctx is the client TLS context (broker certificate and
 * key, agencies' CA); the pool takes a reference. No connection is made
 * until the first call. Returns 0 or < 0 with a message in err.
 */
int ck_pool_new(struct event_base *base, SSL_CTX *ctx,
    const struct ck_endpoint_conf *eps, size_t neps, struct ck_pool **out,
    char *err, size_t errlen);
/* Cancels every call without callbacks; NULL-safe. */
void ck_pool_free(struct ck_pool *pool);

/* struct ck_host functions (see adapter.h for their contracts). */
int ck_pool_channel(struct ck_pool *pool, const char *endpoint,
    struct ck_channel **out);
const char *ck_pool_channel_name(const struct ck_channel *ch);
int ck_pool_rpc_start(struct ck_channel *ch, const char *path,
    const uint8_t *req, size_t len, uint64_t timeout_usec,
    const char *log_id, ck_rpc_cb cb, void *arg, struct ck_rpc **out);
void ck_pool_rpc_cancel(struct ck_rpc *rpc);

/* Lower priority for scheduled (background) calls; see issue 7. */
void ck_pool_rpc_set_background(struct ck_rpc *rpc);

/*
 * Per-endpoint state for operators: /status gets a JSON object
 * {"<name>":{"address":..,"breaker":"closed|open|half-open",
 * "connections":N,"inflight":N,"queued":N,"calls":N,"errors":{..},
 * "latency_ms":{"p50":..,"p99":..}}}; /metrics gets
 * chakong_endpoint_calls_total{endpoint,code}, _duration_seconds
 * histograms, chakong_endpoint_breaker_state{endpoint} (0 closed,
 * 1 half-open, 2 open), chakong_endpoint_breaker_opens_total.
 */
void ck_pool_write_json(const struct ck_pool *pool, struct evbuffer *out);
void ck_pool_write_prometheus(const struct ck_pool *pool,
    struct evbuffer *out);

#endif
