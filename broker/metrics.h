/*
 * metrics.h: process-wide counters and latency histograms per gRPC method
 * and status code, read by the status endpoint (/metrics in Prometheus text
 * format, /status in JSON). Event-loop thread only: no locking.
 */
#ifndef CK_METRICS_H
#define CK_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;

/*
 * Forget everything and register method 0, "(unknown)", which counts calls
 * to methods nobody registered (their names are the caller's choice, so
 * they never become labels). Call once at start-up; tests call it to start
 * from zero. Until then method 0 exists already.
 */
void ck_metrics_init(void);
/*
 * Register a method by its full name ("/chakong.v1.AssetBroker/Query") at
 * start-up; returns its id (>= 1) or CK_ELIMIT when the table (64 methods)
 * is full, CK_EINVAL for NULL, "" or a name longer than 127 bytes.
 * Registering the same name twice returns the same id.
 */
int ck_metrics_method(const char *full_name);

/*
 * One finished call: method id, gRPC status code, wall time in µs. An
 * unregistered id counts under method 0, a code outside 0..16 as UNKNOWN.
 * The latency buckets are those of histogram.h (upper bounds, `le`): 0.5,
 * 1, 2.5, 5, 10, 25, 50, 100, 250, 500 ms, 1, 2.5, 5, 10, 30, 60, 120 s,
 * +Inf.
 */
void ck_metrics_observe(int method, int grpc_code, uint64_t usec);

/* Process-level gauges the status endpoint reports; the decrements stop
 * at zero. */
void ck_metrics_conn_opened(void);
void ck_metrics_conn_closed(void);
void ck_metrics_call_started(void);
void ck_metrics_call_finished(void);
void ck_metrics_tls_handshake_failed(void);
void ck_metrics_stream_refused(void);
uint64_t ck_metrics_open_connections(void);
uint64_t ck_metrics_inflight_calls(void);
uint64_t ck_metrics_tls_handshake_failures(void);
uint64_t ck_metrics_refused_streams(void);

/* Read side, for the human status page and the tests. */
int ck_metrics_nmethods(void);
/* NULL for an id that is not registered. */
const char *ck_metrics_method_name(int method);
/* Calls of one method (-1: all methods) with one code (-1: any code). */
uint64_t ck_metrics_calls(int method, int grpc_code);
/*
 * Latency quantile q (0.5 for the median; 1 gives the max, 0 the min) of
 * one method (-1: all methods), in ms, estimated from the histogram by
 * linear interpolation inside the bucket, narrowed to the observed min and
 * max; negative when there were no calls.
 */
double ck_metrics_latency_ms(int method, double q);

/*
 * Prometheus text exposition format 0.0.4: chakong_grpc_calls_total{method,
 * code}, chakong_grpc_call_duration_seconds{method} (histogram), and the
 * gauges and counters above, each family with # HELP and # TYPE.
 */
void ck_metrics_write_prometheus(struct evbuffer *out);
/*
 * One JSON object, the "methods" member of /status:
 *   {"<name>":{"count":N,"codes":{"OK":N,...},
 *    "latency_ms":{"p50":x,"p90":x,"p99":x,"max":x}},...}
 * Every registered method appears; codes only when non-zero; the latency
 * values are null for a method with no calls.
 */
void ck_metrics_write_json(struct evbuffer *out);

/* Append s as a quoted Prometheus label value, escaped per the format. */
void ck_metrics_label_value(struct evbuffer *out, const char *s);
/*
 * The same as a string, with its label name, for ck_hist_write_prometheus():
 * name="value" in dst, NUL-terminated. Returns 0, or CK_ELIMIT when it does
 * not fit in len bytes (dst is then ""). CK_METRICS_LABEL_SIZE is enough
 * for a name given as a string literal and a value of up to vlen bytes.
 */
int ck_metrics_label(
    char *dst, size_t len, const char *name, const char *value);
#define CK_METRICS_LABEL_SIZE(name, vlen)                                      \
	(sizeof(name) + 3 + 2 * (size_t)(vlen))

#endif
