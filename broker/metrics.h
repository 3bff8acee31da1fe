/*
 * metrics.h: process-wide counters and latency histograms per gRPC method
 * and status code, read by the status endpoint (/metrics in Prometheus text
 * format, /status in JSON). Event-loop thread only: no locking.
 */
#ifndef CK_METRICS_H
#define CK_METRICS_H

#include <stdint.h>

struct evbuffer;

/*
 * Register a method by its full name ("/chakong.v1.AssetBroker/Query") at
 * start-up; returns its id (>= 0) or CK_ELIMIT when the table is full.
 * Registering the same name twice returns the same id. Id 0 is reserved for
 * calls to unknown methods and is registered by ck_metrics_init().
 */
int ck_metrics_method(const char *full_name);
void ck_metrics_init(void);

/* One finished call: method id, gRPC status code, wall time in µs. */
void ck_metrics_observe(int method, int grpc_code, uint64_t usec);

/* Process-level gauges the status endpoint reports. */
void ck_metrics_conn_opened(void);
void ck_metrics_conn_closed(void);
void ck_metrics_call_started(void);
void ck_metrics_call_finished(void);
void ck_metrics_tls_handshake_failed(void);
void ck_metrics_stream_refused(void);
uint64_t ck_metrics_open_connections(void);
uint64_t ck_metrics_inflight_calls(void);

/* Prometheus text exposition format 0.0.4. */
void ck_metrics_write_prometheus(struct evbuffer *out);
/*
 * JSON object body for /status: {"methods":{"<name>":{"count":N,
 * "codes":{"OK":N,...},"latency_ms":{"p50":x,"p90":x,"p99":x,"max":x}}}}
 * without the outer braces' neighbours: writes one complete JSON value.
 */
void ck_metrics_write_json(struct evbuffer *out);

#endif
