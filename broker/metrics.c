/*
 * metrics.c: call counters and latency histograms per gRPC method, and the
 * process gauges, for the status endpoint (see metrics.h).
 *
 * All state is one static table written only by the event-loop thread, so
 * nothing is locked, and nothing is allocated after start-up: registering a
 * method copies its name into a fixed slot. The histogram is per method, not
 * per method and code, so /metrics stays a few hundred lines long whatever
 * codes occur; the split by code is a plain counter.
 */
#include "metrics.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "chakong/status.h"
#include "grpc_frame.h"
#include "histogram.h"
#include "util.h"

#define MAX_METHODS	64
#define METHOD_NAME_LEN 128
/* Not a valid gRPC path, so it can never collide with a real method. */
#define UNKNOWN_METHOD "(unknown)"

struct method {
	char name[METHOD_NAME_LEN];
	uint64_t calls[CK_GRPC_NSTATUS];
	struct ck_hist lat;
};

/*
 * Statically initialised with method 0 in place, so a call observed before
 * ck_metrics_init() (or in a test that never calls it) is still counted.
 */
static struct {
	int nmethods;
	struct method method[MAX_METHODS];
	uint64_t open_connections;
	uint64_t inflight_calls;
	uint64_t tls_handshake_failures;
	uint64_t refused_streams;
} M = {
	.nmethods = 1,
	.method[0].name = UNKNOWN_METHOD,
};

void
ck_metrics_init(void)
{
	memset(&M, 0, sizeof(M));
	ck_strlcpy(M.method[0].name, UNKNOWN_METHOD, sizeof(M.method[0].name));
	M.nmethods = 1;
}

int
ck_metrics_method(const char *full_name)
{
	size_t len;
	int i;

	if (full_name == NULL)
		return CK_EINVAL;
	len = strlen(full_name);
	if (len == 0 || len >= METHOD_NAME_LEN)
		return CK_EINVAL;
	for (i = 0; i < M.nmethods; i++)
		if (strcmp(M.method[i].name, full_name) == 0)
			return i;
	if (M.nmethods == MAX_METHODS)
		return CK_ELIMIT;
	memcpy(M.method[i].name, full_name, len + 1);
	M.nmethods++;
	return i;
}

void
ck_metrics_observe(int method, int grpc_code, uint64_t usec)
{
	struct method *m;

	if (method < 0 || method >= M.nmethods)
		method = 0;
	if (grpc_code < 0 || grpc_code >= CK_GRPC_NSTATUS)
		grpc_code = CK_GRPC_UNKNOWN;
	m = &M.method[method];
	m->calls[grpc_code]++;
	ck_hist_observe(&m->lat, usec);
}

void
ck_metrics_conn_opened(void)
{
	M.open_connections++;
}

/* Saturating: an unbalanced close elsewhere must not show 2^64 here. */
void
ck_metrics_conn_closed(void)
{
	if (M.open_connections > 0)
		M.open_connections--;
}

void
ck_metrics_call_started(void)
{
	M.inflight_calls++;
}

void
ck_metrics_call_finished(void)
{
	if (M.inflight_calls > 0)
		M.inflight_calls--;
}

void
ck_metrics_tls_handshake_failed(void)
{
	M.tls_handshake_failures++;
}

void
ck_metrics_stream_refused(void)
{
	M.refused_streams++;
}

uint64_t
ck_metrics_open_connections(void)
{
	return M.open_connections;
}

uint64_t
ck_metrics_inflight_calls(void)
{
	return M.inflight_calls;
}

uint64_t
ck_metrics_tls_handshake_failures(void)
{
	return M.tls_handshake_failures;
}

uint64_t
ck_metrics_refused_streams(void)
{
	return M.refused_streams;
}

int
ck_metrics_nmethods(void)
{
	return M.nmethods;
}

const char *
ck_metrics_method_name(int method)
{
	if (method < 0 || method >= M.nmethods)
		return NULL;
	return M.method[method].name;
}

static uint64_t
method_calls(const struct method *m, int grpc_code)
{
	uint64_t n = 0;

	if (grpc_code >= 0)
		return grpc_code < CK_GRPC_NSTATUS ? m->calls[grpc_code] : 0;
	for (int c = 0; c < CK_GRPC_NSTATUS; c++)
		n += m->calls[c];
	return n;
}

uint64_t
ck_metrics_calls(int method, int grpc_code)
{
	uint64_t n = 0;

	if (method >= M.nmethods)
		return 0;
	if (method >= 0)
		return method_calls(&M.method[method], grpc_code);
	for (int i = 0; i < M.nmethods; i++)
		n += method_calls(&M.method[i], grpc_code);
	return n;
}

double
ck_metrics_latency_ms(int method, double q)
{
	struct ck_hist all;

	if (method >= M.nmethods)
		return -1;
	if (method >= 0)
		return ck_hist_quantile_ms(&M.method[method].lat, q);
	memset(&all, 0, sizeof(all));
	for (int i = 0; i < M.nmethods; i++)
		ck_hist_merge(&all, &M.method[i].lat);
	return ck_hist_quantile_ms(&all, q);
}

/*
 * Label values escape exactly backslash, double quote and newline (text
 * format 0.0.4); everything else, UTF-8 included, passes through.
 */
static const char *
label_escape(char c)
{
	switch (c) {
	case '\\':
		return "\\\\";
	case '"':
		return "\\\"";
	case '\n':
		return "\\n";
	}
	return NULL;
}

void
ck_metrics_label_value(struct evbuffer *out, const char *s)
{
	const char *start = s;

	evbuffer_add(out, "\"", 1);
	for (; *s != '\0'; s++) {
		const char *esc = label_escape(*s);

		if (esc == NULL)
			continue;
		evbuffer_add(out, start, (size_t)(s - start));
		evbuffer_add(out, esc, 2);
		start = s + 1;
	}
	evbuffer_add(out, start, (size_t)(s - start));
	evbuffer_add(out, "\"", 1);
}

int
ck_metrics_label(char *dst, size_t len, const char *name, const char *value)
{
	int r = snprintf(dst, len, "%s=\"", name);
	size_t n;

	if (r < 0 || (size_t)r >= len)
		goto toolong;
	for (n = (size_t)r; *value != '\0'; value++) {
		const char *esc = label_escape(*value);
		size_t k = esc != NULL ? 2 : 1;

		if (len - n < k + 2) /* and room for the '"' and the NUL */
			goto toolong;
		memcpy(dst + n, esc != NULL ? esc : value, k);
		n += k;
	}
	if (len - n < 2)
		goto toolong;
	dst[n++] = '"';
	dst[n] = '\0';
	return 0;
toolong:
	if (len > 0)
		dst[0] = '\0';
	return CK_ELIMIT;
}

static void
put(struct evbuffer *out, const char *s)
{
	evbuffer_add(out, s, strlen(s));
}

static void
family(
    struct evbuffer *out, const char *name, const char *type, const char *help)
{
	evbuffer_add_printf(
	    out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One sample with a method label and one more label. */
static void
sample(struct evbuffer *out, const char *name, const char *method,
    const char *lname, const char *lvalue, uint64_t value)
{
	evbuffer_add_printf(out, "%s{method=", name);
	ck_metrics_label_value(out, method);
	evbuffer_add_printf(out, ",%s=", lname);
	ck_metrics_label_value(out, lvalue);
	evbuffer_add_printf(out, "} %" PRIu64 "\n", value);
}

static void
write_calls(struct evbuffer *out)
{
	static const char name[] = "chakong_grpc_calls_total";

	family(out, name, "counter",
	    "Finished gRPC calls by method and status code.");
	for (int i = 0; i < M.nmethods; i++) {
		const struct method *m = &M.method[i];

		/*
		 * Codes appear once they occur; OK is always there so every
		 * method has a series (and a rate) from start-up on.
		 */
		for (int c = 0; c < CK_GRPC_NSTATUS; c++)
			if (c == CK_GRPC_OK || m->calls[c] > 0)
				sample(out, name, m->name, "code",
				    ck_grpc_status_name(c), m->calls[c]);
	}
}

static void
write_durations(struct evbuffer *out)
{
	static const char name[] = "chakong_grpc_call_duration_seconds";

	family(out, name, "histogram",
	    "Wall time of finished gRPC calls, from request headers to "
	    "trailers.");
	for (int i = 0; i < M.nmethods; i++) {
		const struct method *m = &M.method[i];
		char labels[CK_METRICS_LABEL_SIZE(
		    "method", METHOD_NAME_LEN - 1)];

		/* Cannot fail: labels holds the longest name, escaped. */
		(void)ck_metrics_label(
		    labels, sizeof(labels), "method", m->name);
		ck_hist_write_prometheus(out, name, labels, &m->lat);
	}
}

static void
scalar(struct evbuffer *out, const char *name, const char *type,
    const char *help, uint64_t value)
{
	family(out, name, type, help);
	evbuffer_add_printf(out, "%s %" PRIu64 "\n", name, value);
}

void
ck_metrics_write_prometheus(struct evbuffer *out)
{
	write_calls(out);
	write_durations(out);
	scalar(out, "chakong_open_connections", "gauge",
	    "Open client connections on the gRPC listener.",
	    M.open_connections);
	scalar(out, "chakong_inflight_calls", "gauge",
	    "gRPC calls started and not yet finished.", M.inflight_calls);
	scalar(out, "chakong_tls_handshake_failures_total", "counter",
	    "TLS handshakes on the gRPC listener that failed.",
	    M.tls_handshake_failures);
	scalar(out, "chakong_refused_streams_total", "counter",
	    "HTTP/2 streams refused (REFUSED_STREAM) before any processing.",
	    M.refused_streams);
}

/* Milliseconds with 3 decimals, or null when there is nothing to report. */
static void
json_ms(struct evbuffer *out, const char *key, double ms, bool comma)
{
	if (ms < 0)
		evbuffer_add_printf(out, "\"%s\":null", key);
	else
		evbuffer_add_printf(out, "\"%s\":%.3f", key, ms);
	if (comma)
		evbuffer_add(out, ",", 1);
}

void
ck_metrics_write_json(struct evbuffer *out)
{
	put(out, "{");
	for (int i = 0; i < M.nmethods; i++) {
		const struct method *m = &M.method[i];
		const struct ck_hist *h = &m->lat;
		bool first = true;

		if (i > 0)
			evbuffer_add(out, ",", 1);
		ck_json_str(out, m->name);
		evbuffer_add_printf(
		    out, ":{\"count\":%" PRIu64 ",\"codes\":{", h->count);
		for (int c = 0; c < CK_GRPC_NSTATUS; c++) {
			if (m->calls[c] == 0)
				continue;
			if (!first)
				evbuffer_add(out, ",", 1);
			first = false;
			ck_json_str(out, ck_grpc_status_name(c));
			evbuffer_add_printf(out, ":%" PRIu64, m->calls[c]);
		}
		put(out, "},\"latency_ms\":{");
		json_ms(out, "p50", ck_hist_quantile_ms(h, 0.50), true);
		json_ms(out, "p90", ck_hist_quantile_ms(h, 0.90), true);
		json_ms(out, "p99", ck_hist_quantile_ms(h, 0.99), true);
		json_ms(out, "max", ck_hist_quantile_ms(h, 1), false);
		put(out, "}}");
	}
	put(out, "}");
}
