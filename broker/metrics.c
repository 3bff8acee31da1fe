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
#include <string.h>

#include <event2/buffer.h>

#include "chakong/status.h"
#include "grpc_frame.h"
#include "util.h"

#define MAX_METHODS	64
#define METHOD_NAME_LEN 128
/* Not a valid gRPC path, so it can never collide with a real method. */
#define UNKNOWN_METHOD "(unknown)"

/*
 * The latency buckets: upper bounds in µs and the same as Prometheus `le`
 * labels in seconds, side by side so they cannot drift apart. A cached
 * Query answers in well under a millisecond, a live fan-out to agencies in
 * tens of milliseconds to seconds, and a hung agency is cut off by the
 * caller's deadline, which is seldom above a minute or two; so the buckets
 * are dense below a second and sparse above. One more bucket, +Inf, follows
 * the last.
 */
static const struct {
	uint64_t usec;
	const char *le;
} bounds[] = {
	{ 500, "0.0005" },
	{ 1000, "0.001" },
	{ 2500, "0.0025" },
	{ 5000, "0.005" },
	{ 10000, "0.01" },
	{ 25000, "0.025" },
	{ 50000, "0.05" },
	{ 100000, "0.1" },
	{ 250000, "0.25" },
	{ 500000, "0.5" },
	{ 1000000, "1" },
	{ 2500000, "2.5" },
	{ 5000000, "5" },
	{ 10000000, "10" },
	{ 30000000, "30" },
	{ 60000000, "60" },
	{ 120000000, "120" },
};
#define NFINITE	 CK_ARRAY_SIZE(bounds)
#define NBUCKETS (NFINITE + 1)

struct hist {
	uint64_t bucket[NBUCKETS]; /* not cumulative */
	uint64_t count;
	uint64_t sum_usec;
	uint64_t min_usec; /* valid when count > 0 */
	uint64_t max_usec;
};

struct method {
	char name[METHOD_NAME_LEN];
	uint64_t calls[CK_GRPC_NSTATUS];
	struct hist lat;
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

/* First bucket whose bound is >= usec: Prometheus buckets are `le`. */
static unsigned
bucket_of(uint64_t usec)
{
	unsigned i;

	for (i = 0; i < NFINITE; i++)
		if (usec <= bounds[i].usec)
			break;
	return i;
}

static void
hist_add(struct hist *h, uint64_t usec)
{
	h->bucket[bucket_of(usec)]++;
	if (h->count == 0 || usec < h->min_usec)
		h->min_usec = usec;
	if (usec > h->max_usec)
		h->max_usec = usec;
	h->count++;
	h->sum_usec += usec;
}

static void
hist_merge(struct hist *into, const struct hist *h)
{
	if (h->count == 0)
		return;
	for (unsigned i = 0; i < NBUCKETS; i++)
		into->bucket[i] += h->bucket[i];
	if (into->count == 0 || h->min_usec < into->min_usec)
		into->min_usec = h->min_usec;
	if (h->max_usec > into->max_usec)
		into->max_usec = h->max_usec;
	into->count += h->count;
	into->sum_usec += h->sum_usec;
}

/*
 * Like Prometheus' histogram_quantile(): find the bucket holding the
 * q-th observation and interpolate linearly inside it. Unlike it, we know
 * the observed min and max, so the bucket is narrowed to them: the +Inf
 * bucket gets a finite top, and a tight distribution (every call 3 ms)
 * reports 3 ms rather than somewhere between 2.5 and 5.
 */
static double
hist_quantile_usec(const struct hist *h, double q)
{
	double rank, lo, hi, cum = 0;
	unsigned i;

	if (h->count == 0)
		return -1;
	if (q <= 0)
		return (double)h->min_usec;
	if (q >= 1)
		return (double)h->max_usec;
	rank = q * (double)h->count;
	for (i = 0; i < NBUCKETS; i++) {
		double n = (double)h->bucket[i];

		if (n > 0 && cum + n >= rank)
			break;
		cum += n;
	}
	if (i == NBUCKETS) /* only by rounding: the top is the max */
		return (double)h->max_usec;
	lo = i == 0 ? 0 : (double)bounds[i - 1].usec;
	hi = i < NFINITE ? (double)bounds[i].usec : (double)h->max_usec;
	if (lo < (double)h->min_usec)
		lo = (double)h->min_usec;
	if (hi > (double)h->max_usec)
		hi = (double)h->max_usec;
	if (hi < lo)
		hi = lo;
	return lo + (hi - lo) * (rank - cum) / (double)h->bucket[i];
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
	hist_add(&m->lat, usec);
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

static double
hist_quantile_ms(const struct hist *h, double q)
{
	return h->count > 0 ? hist_quantile_usec(h, q) / 1000.0 : -1;
}

double
ck_metrics_latency_ms(int method, double q)
{
	struct hist all;

	if (method >= M.nmethods)
		return -1;
	if (method >= 0)
		return hist_quantile_ms(&M.method[method].lat, q);
	memset(&all, 0, sizeof(all));
	for (int i = 0; i < M.nmethods; i++)
		hist_merge(&all, &M.method[i].lat);
	return hist_quantile_ms(&all, q);
}

/*
 * Label values escape exactly backslash, double quote and newline (text
 * format 0.0.4); everything else, UTF-8 included, passes through.
 */
void
ck_metrics_label_value(struct evbuffer *out, const char *s)
{
	const char *start = s;

	evbuffer_add(out, "\"", 1);
	for (; *s != '\0'; s++) {
		const char *esc;

		if (*s == '\\')
			esc = "\\\\";
		else if (*s == '"')
			esc = "\\\"";
		else if (*s == '\n')
			esc = "\\n";
		else
			continue;
		evbuffer_add(out, start, (size_t)(s - start));
		evbuffer_add(out, esc, 2);
		start = s + 1;
	}
	evbuffer_add(out, start, (size_t)(s - start));
	evbuffer_add(out, "\"", 1);
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

/* One sample with a method label and, when lname is set, one more label. */
static void
sample(struct evbuffer *out, const char *name, const char *method,
    const char *lname, const char *lvalue, uint64_t value)
{
	evbuffer_add_printf(out, "%s{method=", name);
	ck_metrics_label_value(out, method);
	if (lname != NULL) {
		evbuffer_add_printf(out, ",%s=", lname);
		ck_metrics_label_value(out, lvalue);
	}
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
		uint64_t cum = 0;

		for (unsigned b = 0; b < NBUCKETS; b++) {
			cum += m->lat.bucket[b];
			sample(out, "chakong_grpc_call_duration_seconds_bucket",
			    m->name, "le", b < NFINITE ? bounds[b].le : "+Inf",
			    cum);
		}
		/* Integer arithmetic: exact, and no locale in the way. */
		evbuffer_add_printf(out, "%s_sum{method=", name);
		ck_metrics_label_value(out, m->name);
		evbuffer_add_printf(out, "} %" PRIu64 ".%06" PRIu64 "\n",
		    m->lat.sum_usec / 1000000, m->lat.sum_usec % 1000000);
		sample(out, "chakong_grpc_call_duration_seconds_count", m->name,
		    NULL, NULL, m->lat.count);
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
		const struct hist *h = &m->lat;
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
		json_ms(out, "p50", hist_quantile_ms(h, 0.50), true);
		json_ms(out, "p90", hist_quantile_ms(h, 0.90), true);
		json_ms(out, "p99", hist_quantile_ms(h, 0.99), true);
		json_ms(out, "max", hist_quantile_ms(h, 1), false);
		put(out, "}}");
	}
	put(out, "}");
}
