/*
 * test_metrics.c: the metrics table (counters, histogram buckets, quantile
 * estimates, label escaping, the Prometheus and JSON writers) and the status
 * endpoint, served on 127.0.0.1 port 0 on a real event_base and asked over
 * a real socket, so what is checked is the bytes an operator's curl sees.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/util.h>

#include "chakong/status.h"
#include "grpc_frame.h"
#include "metrics.h"
#include "statusd.h"

#define QUERY  "/chakong.v1.AssetBroker/Query"
#define FREEZE "/chakong.v1.AssetBroker/Freeze"

/* The whole evbuffer as a NUL-terminated string the caller frees. */
static char *
drain_str(struct evbuffer *b)
{
	size_t len = evbuffer_get_length(b);
	char *s = malloc(len + 1);

	assert_non_null(s);
	evbuffer_remove(b, s, len);
	s[len] = '\0';
	return s;
}

static char *
prometheus_text(void)
{
	struct evbuffer *b = evbuffer_new();
	char *s;

	assert_non_null(b);
	ck_metrics_write_prometheus(b);
	s = drain_str(b);
	evbuffer_free(b);
	return s;
}

static char *
json_text(void)
{
	struct evbuffer *b = evbuffer_new();
	char *s;

	assert_non_null(b);
	ck_metrics_write_json(b);
	s = drain_str(b);
	evbuffer_free(b);
	return s;
}

static bool
near(double a, double b)
{
	double d = a - b;

	return d < 1e-6 && d > -1e-6;
}

/*
 * Value of the sample whose name and labels are exactly `series` (as
 * written, e.g. `x_bucket{method="/a",le="0.001"}`); fails if absent.
 */
static double
sample_value(const char *text, const char *series)
{
	size_t n = strlen(series);
	const char *p = text;

	while (p != NULL && *p != '\0') {
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	fail_msg("no sample %s", series);
	return -1;
}

/* The sample `series` exists and has the value want. */
static void
expect_sample(const char *text, const char *series, double want)
{
	double v = sample_value(text, series);

	if (!near(v, want))
		fail_msg("%s is %g, want %g", series, v, want);
}

static bool
has_sample(const char *text, const char *series)
{
	size_t n = strlen(series);

	for (const char *p = text; p != NULL && *p != '\0';) {
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			return true;
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	return false;
}

static double
bucket(const char *text, const char *method, const char *le)
{
	char series[256];

	snprintf(series, sizeof(series),
	    "chakong_grpc_call_duration_seconds_bucket{method=\"%s\","
	    "le=\"%s\"}",
	    method, le);
	return sample_value(text, series);
}

/* --- a small strict JSON checker (RFC 8259), for every JSON we emit --- */

static bool json_value(const char **p, int depth);

static void
json_ws(const char **p)
{
	while (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r')
		(*p)++;
}

static bool
json_string(const char **p)
{
	const unsigned char *s = (const unsigned char *)*p;

	if (*s++ != '"')
		return false;
	for (;;) {
		if (*s == '"')
			break;
		if (*s < 0x20) /* control characters and the end of text */
			return false;
		if (*s == '\\') {
			s++;
			if (*s == 'u') {
				for (int i = 1; i <= 4; i++)
					if (!isxdigit(s[i]))
						return false;
				s += 5;
				continue;
			}
			if (strchr("\"\\/bfnrt", *s) == NULL || *s == '\0')
				return false;
		}
		s++;
	}
	*p = (const char *)s + 1;
	return true;
}

static bool
json_number(const char **p)
{
	const char *s = *p;

	if (*s == '-')
		s++;
	if (*s == '0')
		s++;
	else if (*s >= '1' && *s <= '9')
		while (*s >= '0' && *s <= '9')
			s++;
	else
		return false;
	if (*s == '.') {
		s++;
		if (!(*s >= '0' && *s <= '9'))
			return false;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	if (*s == 'e' || *s == 'E') {
		s++;
		if (*s == '+' || *s == '-')
			s++;
		if (!(*s >= '0' && *s <= '9'))
			return false;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	*p = s;
	return true;
}

static bool
json_members(const char **p, int depth, bool object)
{
	char close = object ? '}' : ']';

	(*p)++;
	json_ws(p);
	if (**p == close) {
		(*p)++;
		return true;
	}
	for (;;) {
		json_ws(p);
		if (object) {
			if (!json_string(p))
				return false;
			json_ws(p);
			if (*(*p)++ != ':')
				return false;
		}
		if (!json_value(p, depth + 1))
			return false;
		json_ws(p);
		if (**p == close) {
			(*p)++;
			return true;
		}
		if (*(*p)++ != ',')
			return false;
	}
}

static bool
json_value(const char **p, int depth)
{
	if (depth > 32)
		return false;
	json_ws(p);
	switch (**p) {
	case '{':
		return json_members(p, depth, true);
	case '[':
		return json_members(p, depth, false);
	case '"':
		return json_string(p);
	case 't':
		return strncmp(*p, "true", 4) == 0 && (*p += 4);
	case 'f':
		return strncmp(*p, "false", 5) == 0 && (*p += 5);
	case 'n':
		return strncmp(*p, "null", 4) == 0 && (*p += 4);
	default:
		return json_number(p);
	}
}

static bool
json_valid(const char *text)
{
	const char *p = text;

	if (!json_value(&p, 0))
		return false;
	json_ws(&p);
	return *p == '\0';
}

/* --- Prometheus text format 0.0.4 structure --- */

static bool
metric_name_char(char c, bool first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
	    c == ':' || (!first && c >= '0' && c <= '9');
}

/* Skip `{name="value",...}` with escapes; false on a syntax error. */
static bool
skip_labels(const char **p)
{
	const char *s = *p;

	if (*s != '{')
		return true;
	s++;
	while (*s != '}') {
		if (!metric_name_char(*s, true))
			return false;
		while (metric_name_char(*s, false))
			s++;
		if (*s++ != '=' || *s++ != '"')
			return false;
		while (*s != '"') {
			if (*s == '\n' || *s == '\0')
				return false;
			if (*s == '\\') {
				s++;
				if (*s != '\\' && *s != '"' && *s != 'n')
					return false;
			}
			s++;
		}
		s++;
		if (*s == ',')
			s++;
		else if (*s != '}')
			return false;
	}
	*p = s + 1;
	return true;
}

/*
 * Every family has # HELP then # TYPE, is declared once, and its samples
 * follow it directly and carry its name (with _bucket/_sum/_count for a
 * histogram); every sample is `name{labels} value`. Returns the number of
 * families.
 */
static int
check_prometheus(const char *text)
{
	char family[128] = "", type[16] = "";
	char seen[64][128];
	int nfamilies = 0;
	const char *line = text;

	assert_true(strlen(text) > 0);
	assert_int_equal(text[strlen(text) - 1], '\n');
	while (*line != '\0') {
		const char *eol = strchr(line, '\n');
		char name[128];
		size_t n;

		assert_non_null(eol);
		assert_true(eol > line); /* no empty lines */
		if (strncmp(line, "# HELP ", 7) == 0) {
			const char *next = eol + 1;
			const char *nm = line + 7;

			n = strcspn(nm, " ");
			assert_true(n > 0 && n < sizeof(family));
			memcpy(family, nm, n);
			family[n] = '\0';
			for (int i = 0; i < nfamilies; i++)
				assert_string_not_equal(seen[i], family);
			assert_true(nfamilies < 64);
			memcpy(seen[nfamilies++], family, n + 1);
			assert_true(strncmp(family, "chakong_", 8) == 0);
			/* # TYPE must come next, for the same name. */
			assert_true(strncmp(next, "# TYPE ", 7) == 0);
			assert_true(strncmp(next + 7, family, n) == 0);
			assert_int_equal(next[7 + n], ' ');
			n = strcspn(next + 8 + n, "\n");
			assert_true(n < sizeof(type));
			memcpy(type, next + 8 + strlen(family), n);
			type[n] = '\0';
			assert_true(strcmp(type, "counter") == 0 ||
			    strcmp(type, "gauge") == 0 ||
			    strcmp(type, "histogram") == 0);
			if (strcmp(type, "counter") == 0) {
				n = strlen(family);
				assert_true(n > 6 &&
				    strcmp(family + n - 6, "_total") == 0);
			}
			line = strchr(next, '\n') + 1;
			continue;
		}
		assert_true(line[0] != '#');
		assert_true(family[0] != '\0'); /* sample before any HELP */
		n = 0;
		while (metric_name_char(line[n], n == 0))
			n++;
		assert_true(n > 0 && n < sizeof(name));
		memcpy(name, line, n);
		name[n] = '\0';
		if (strcmp(type, "histogram") == 0) {
			size_t f = strlen(family);

			assert_true(strncmp(name, family, f) == 0);
			assert_true(strcmp(name + f, "_bucket") == 0 ||
			    strcmp(name + f, "_sum") == 0 ||
			    strcmp(name + f, "_count") == 0);
		} else {
			assert_string_equal(name, family);
		}
		{
			const char *p = line + n;
			char *end;

			assert_true(skip_labels(&p));
			assert_int_equal(*p, ' ');
			strtod(p + 1, &end);
			assert_true(end > p + 1);
			assert_true(end == eol);
		}
		line = eol + 1;
	}
	return nfamilies;
}

/* --- metrics --- */

static int
setup_metrics(void **state)
{
	(void)state;
	ck_metrics_init();
	return 0;
}

static void
test_register(void **state)
{
	char name[200];
	int q, f, i;

	(void)state;
	assert_int_equal(ck_metrics_nmethods(), 1);
	assert_string_equal(ck_metrics_method_name(0), "(unknown)");
	q = ck_metrics_method(QUERY);
	f = ck_metrics_method(FREEZE);
	assert_int_equal(q, 1);
	assert_int_equal(f, 2);
	assert_int_equal(ck_metrics_method(QUERY), q);
	assert_string_equal(ck_metrics_method_name(q), QUERY);
	assert_null(ck_metrics_method_name(3));
	assert_null(ck_metrics_method_name(-1));

	assert_int_equal(ck_metrics_method(NULL), CK_EINVAL);
	assert_int_equal(ck_metrics_method(""), CK_EINVAL);
	memset(name, 'x', 128);
	name[128] = '\0';
	assert_int_equal(ck_metrics_method(name), CK_EINVAL);
	name[127] = '\0';
	assert_true(ck_metrics_method(name) > 0);

	for (i = ck_metrics_nmethods(); i < 64; i++) {
		snprintf(name, sizeof(name), "/t.S/M%d", i);
		assert_int_equal(ck_metrics_method(name), i);
	}
	assert_int_equal(ck_metrics_method("/t.S/one-too-many"), CK_ELIMIT);
	/* A full table still finds what it holds. */
	assert_int_equal(ck_metrics_method(FREEZE), f);

	/* init starts over. */
	ck_metrics_init();
	assert_int_equal(ck_metrics_nmethods(), 1);
	assert_int_equal(ck_metrics_method(FREEZE), 1);
}

static void
test_counters(void **state)
{
	int q, f;

	(void)state;
	q = ck_metrics_method(QUERY);
	f = ck_metrics_method(FREEZE);
	ck_metrics_observe(q, CK_GRPC_OK, 1000);
	ck_metrics_observe(q, CK_GRPC_OK, 2000);
	ck_metrics_observe(q, CK_GRPC_INVALID_ARGUMENT, 100);
	ck_metrics_observe(f, CK_GRPC_DEADLINE_EXCEEDED, 5000000);
	/* Unregistered ids count as unknown; bad codes as UNKNOWN. */
	ck_metrics_observe(42, CK_GRPC_UNIMPLEMENTED, 10);
	ck_metrics_observe(-5, CK_GRPC_UNIMPLEMENTED, 10);
	ck_metrics_observe(q, 17, 10);
	ck_metrics_observe(q, -1, 10);

	assert_int_equal(ck_metrics_calls(q, CK_GRPC_OK), 2);
	assert_int_equal(ck_metrics_calls(q, CK_GRPC_INVALID_ARGUMENT), 1);
	assert_int_equal(ck_metrics_calls(q, CK_GRPC_UNKNOWN), 2);
	assert_int_equal(ck_metrics_calls(q, -1), 5);
	assert_int_equal(ck_metrics_calls(f, CK_GRPC_DEADLINE_EXCEEDED), 1);
	assert_int_equal(ck_metrics_calls(0, CK_GRPC_UNIMPLEMENTED), 2);
	assert_int_equal(ck_metrics_calls(-1, -1), 8);
	assert_int_equal(ck_metrics_calls(-1, CK_GRPC_OK), 2);
	assert_int_equal(ck_metrics_calls(99, -1), 0);
	assert_int_equal(ck_metrics_calls(q, 99), 0);
}

static void
test_counters_text(void **state)
{
	char *t;
	int q;

	(void)state;
	q = ck_metrics_method(QUERY);
	ck_metrics_method(FREEZE);
	ck_metrics_observe(q, CK_GRPC_OK, 1000);
	ck_metrics_observe(q, CK_GRPC_PERMISSION_DENIED, 1000);
	ck_metrics_observe(q, CK_GRPC_PERMISSION_DENIED, 1000);
	t = prometheus_text();
	expect_sample(
	    t, "chakong_grpc_calls_total{method=\"" QUERY "\",code=\"OK\"}", 1);
	expect_sample(t,
	    "chakong_grpc_calls_total{method=\"" QUERY
	    "\",code=\"PERMISSION_DENIED\"}",
	    2);
	/* OK exists from registration on, other codes once they occur. */
	expect_sample(t,
	    "chakong_grpc_calls_total{method=\"" FREEZE "\",code=\"OK\"}", 0);
	assert_false(has_sample(t,
	    "chakong_grpc_calls_total{method=\"" FREEZE
	    "\",code=\"PERMISSION_DENIED\"}"));
	expect_sample(t,
	    "chakong_grpc_call_duration_seconds_count{method=\"" QUERY "\"}",
	    3);
	expect_sample(t,
	    "chakong_grpc_call_duration_seconds_sum{method=\"" QUERY "\"}",
	    0.003);
	assert_non_null(strstr(t,
	    "chakong_grpc_call_duration_seconds_sum{method=\"" QUERY
	    "\"} 0.003000\n"));
	free(t);
}

static void
test_gauges(void **state)
{
	char *t;

	(void)state;
	ck_metrics_conn_opened();
	ck_metrics_conn_opened();
	ck_metrics_conn_opened();
	ck_metrics_conn_closed();
	ck_metrics_call_started();
	ck_metrics_call_started();
	ck_metrics_call_finished();
	ck_metrics_tls_handshake_failed();
	ck_metrics_stream_refused();
	ck_metrics_stream_refused();
	assert_int_equal(ck_metrics_open_connections(), 2);
	assert_int_equal(ck_metrics_inflight_calls(), 1);
	assert_int_equal(ck_metrics_tls_handshake_failures(), 1);
	assert_int_equal(ck_metrics_refused_streams(), 2);

	t = prometheus_text();
	assert_non_null(strstr(t, "\nchakong_open_connections 2\n"));
	assert_non_null(strstr(t, "\nchakong_inflight_calls 1\n"));
	assert_non_null(
	    strstr(t, "\nchakong_tls_handshake_failures_total 1\n"));
	assert_non_null(strstr(t, "\nchakong_refused_streams_total 2\n"));
	assert_non_null(strstr(t, "# TYPE chakong_open_connections gauge\n"));
	assert_non_null(
	    strstr(t, "# TYPE chakong_refused_streams_total counter\n"));
	free(t);

	/* An unbalanced close stops at zero rather than wrapping. */
	for (int i = 0; i < 5; i++) {
		ck_metrics_conn_closed();
		ck_metrics_call_finished();
	}
	assert_int_equal(ck_metrics_open_connections(), 0);
	assert_int_equal(ck_metrics_inflight_calls(), 0);
}

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
#define NBOUNDS (sizeof(bounds) / sizeof(bounds[0]))

/*
 * A value equal to a bound falls in that bound's bucket (`le`: less or
 * equal); one µs more falls in the next. Buckets are cumulative, so the
 * check is: 0 below the bucket, 1 from it on.
 */
static void
check_bucket_of(uint64_t usec, size_t want)
{
	char *t;
	int m;

	ck_metrics_init();
	m = ck_metrics_method("/t.S/M");
	ck_metrics_observe(m, CK_GRPC_OK, usec);
	t = prometheus_text();
	for (size_t i = 0; i < NBOUNDS; i++) {
		double v = bucket(t, "/t.S/M", bounds[i].le);

		if (!near(v, i >= want ? 1 : 0))
			fail_msg("%" PRIu64 " us: bucket le=%s has %g", usec,
			    bounds[i].le, v);
	}
	assert_true(near(bucket(t, "/t.S/M", "+Inf"), 1));
	free(t);
}

static void
test_bucket_boundaries(void **state)
{
	(void)state;
	check_bucket_of(0, 0);
	check_bucket_of(1, 0);
	for (size_t i = 0; i < NBOUNDS; i++) {
		check_bucket_of(bounds[i].usec - 1, i);
		check_bucket_of(bounds[i].usec, i);
		check_bucket_of(bounds[i].usec + 1, i + 1);
	}
	check_bucket_of(UINT64_MAX, NBOUNDS); /* only +Inf */
}

static void
test_histogram_cumulative(void **state)
{
	static const uint64_t obs[] = { 100, 700, 700, 3000, 40000, 40000,
		40000, 900000, 7000000, 200000000 };
	char *t;
	int m;

	(void)state;
	m = ck_metrics_method(QUERY);
	for (size_t i = 0; i < sizeof(obs) / sizeof(obs[0]); i++)
		ck_metrics_observe(m, CK_GRPC_OK, obs[i]);
	t = prometheus_text();
	assert_true(near(bucket(t, QUERY, "0.0005"), 1));
	assert_true(near(bucket(t, QUERY, "0.001"), 3));
	assert_true(near(bucket(t, QUERY, "0.0025"), 3));
	assert_true(near(bucket(t, QUERY, "0.005"), 4));
	assert_true(near(bucket(t, QUERY, "0.05"), 7));
	assert_true(near(bucket(t, QUERY, "1"), 8));
	assert_true(near(bucket(t, QUERY, "10"), 9));
	assert_true(near(bucket(t, QUERY, "120"), 9));
	assert_true(near(bucket(t, QUERY, "+Inf"), 10));
	assert_non_null(strstr(t,
	    "chakong_grpc_call_duration_seconds_sum{method=\"" QUERY
	    "\"} 208.024500\n"));
	free(t);
}

static void
test_percentiles(void **state)
{
	int a, b, c, d;

	(void)state;
	a = ck_metrics_method("/t.S/Empty");
	b = ck_metrics_method("/t.S/TwoBuckets");
	c = ck_metrics_method("/t.S/Uniform");
	d = ck_metrics_method("/t.S/Slow");

	/* No calls: no estimate. */
	assert_true(ck_metrics_latency_ms(a, 0.5) < 0);
	assert_true(ck_metrics_latency_ms(a, 1) < 0);
	assert_true(ck_metrics_latency_ms(99, 0.5) < 0);

	/*
	 * 90 calls of 0.8 ms (bucket 0.5..1 ms) and 10 of 40 ms (bucket
	 * 25..50 ms). The bucket is narrowed to the observed min and max:
	 * p50 lies in [0.8, 1] ms at 50/90 of the way; p90 is the top of
	 * the first bucket; p99 is 9/10 of the way through [25, 40] ms.
	 */
	for (int i = 0; i < 90; i++)
		ck_metrics_observe(b, CK_GRPC_OK, 800);
	for (int i = 0; i < 10; i++)
		ck_metrics_observe(b, CK_GRPC_OK, 40000);
	assert_true(
	    near(ck_metrics_latency_ms(b, 0.5), 0.8 + 0.2 * 50.0 / 90.0));
	assert_true(near(ck_metrics_latency_ms(b, 0.9), 1.0));
	assert_true(near(ck_metrics_latency_ms(b, 0.99), 38.5));
	assert_true(near(ck_metrics_latency_ms(b, 1), 40.0));
	assert_true(near(ck_metrics_latency_ms(b, 0), 0.8));

	/* 100 calls spread over 1.015..2.5 ms: linear inside the bucket. */
	for (int k = 1; k <= 100; k++)
		ck_metrics_observe(c, CK_GRPC_OK, (uint64_t)(1000 + 15 * k));
	assert_true(near(ck_metrics_latency_ms(c, 0.5), 1.7575));
	assert_true(near(ck_metrics_latency_ms(c, 0.99), 1.015 + 1.485 * 0.99));
	assert_true(near(ck_metrics_latency_ms(c, 1), 2.5));

	/* One call beyond the last bound: the +Inf bucket ends at the max. */
	ck_metrics_observe(d, CK_GRPC_DEADLINE_EXCEEDED, 200000000);
	assert_true(near(ck_metrics_latency_ms(d, 0.5), 200000.0));
	assert_true(near(ck_metrics_latency_ms(d, 0.99), 200000.0));

	/* All methods together: 201 calls, the max is the slow one. */
	assert_true(near(ck_metrics_latency_ms(-1, 1), 200000.0));
	assert_true(near(ck_metrics_latency_ms(-1, 0), 0.8));
	/* Rank 100.5 of 201: in the 1..2.5 ms bucket (90 calls below it). */
	{
		double p50 = ck_metrics_latency_ms(-1, 0.5);

		assert_true(p50 > 1.0 && p50 < 2.5);
	}
}

static void
test_label_escaping(void **state)
{
	static const char odd[] = "/t.S/a\"b\\c\nd é";
	struct evbuffer *b;
	char *t;
	int m;

	(void)state;
	b = evbuffer_new();
	assert_non_null(b);
	ck_metrics_label_value(b, odd);
	t = drain_str(b);
	assert_string_equal(t, "\"/t.S/a\\\"b\\\\c\\nd é\"");
	free(t);
	ck_metrics_label_value(b, "");
	t = drain_str(b);
	assert_string_equal(t, "\"\"");
	free(t);
	evbuffer_free(b);

	m = ck_metrics_method(odd);
	ck_metrics_observe(m, CK_GRPC_OK, 1);
	t = prometheus_text();
	assert_true(
	    near(sample_value(t,
		     "chakong_grpc_calls_total{method=\"/t.S/a\\\"b\\\\c"
		     "\\nd é\",code=\"OK\"}"),
		1));
	check_prometheus(t);
	free(t);

	t = json_text();
	assert_true(json_valid(t));
	assert_non_null(strstr(t, "\"/t.S/a\\\"b\\\\c\\nd é\":{\"count\":1,"));
	free(t);
}

static void
test_prometheus_structure(void **state)
{
	char *t;
	int q, f;

	(void)state;
	/* Empty table first: families with their HELP/TYPE, no crash. */
	t = prometheus_text();
	assert_int_equal(check_prometheus(t), 6);
	free(t);

	q = ck_metrics_method(QUERY);
	f = ck_metrics_method(FREEZE);
	for (int i = 0; i < 50; i++)
		ck_metrics_observe(q, i % 7 == 0 ? CK_GRPC_UNAVAILABLE : 0,
		    (uint64_t)i * 3000);
	ck_metrics_observe(f, CK_GRPC_FAILED_PRECONDITION, 12345);
	ck_metrics_conn_opened();
	t = prometheus_text();
	assert_int_equal(check_prometheus(t), 6);
	assert_true(strncmp(t, "# HELP chakong_grpc_calls_total ", 32) == 0);
	assert_non_null(
	    strstr(t, "# TYPE chakong_grpc_call_duration_seconds histogram\n"));
	assert_non_null(strstr(t, "# TYPE chakong_grpc_calls_total counter\n"));

	/* Cumulative buckets never decrease and +Inf equals _count. */
	{
		double prev = 0, v;

		for (size_t i = 0; i < NBOUNDS; i++) {
			v = bucket(t, QUERY, bounds[i].le);
			assert_true(v >= prev);
			prev = v;
		}
		v = bucket(t, QUERY, "+Inf");
		assert_true(v >= prev);
		assert_true(near(v,
		    sample_value(t,
			"chakong_grpc_call_duration_seconds_count{method="
			"\"" QUERY "\"}")));
		assert_true(near(v, 50));
	}
	free(t);
}

static void
test_json(void **state)
{
	char *t;
	int q;

	(void)state;
	t = json_text();
	assert_true(json_valid(t));
	assert_string_equal(t,
	    "{\"(unknown)\":{\"count\":0,\"codes\":{},\"latency_ms\":"
	    "{\"p50\":null,\"p90\":null,\"p99\":null,\"max\":null}}}");
	free(t);

	q = ck_metrics_method(QUERY);
	ck_metrics_method(FREEZE);
	ck_metrics_observe(q, CK_GRPC_OK, 3000);
	ck_metrics_observe(q, CK_GRPC_OK, 3000);
	ck_metrics_observe(q, CK_GRPC_NOT_FOUND, 3000);
	t = json_text();
	assert_true(json_valid(t));
	/* Every call 3 ms: the estimate is exact, not "2.5 to 5". */
	assert_non_null(strstr(t,
	    "\"" QUERY "\":{\"count\":3,\"codes\":{\"OK\":2,\"NOT_FOUND\":1},"
	    "\"latency_ms\":{\"p50\":3.000,\"p90\":3.000,\"p99\":3.000,"
	    "\"max\":3.000}}"));
	assert_non_null(strstr(t, "\"" FREEZE "\":{\"count\":0,\"codes\":{},"));
	free(t);
}

/* --- statusd over a real socket --- */

struct fake_daemon {
	bool ready, draining;
	const char *reason;
	uint64_t reloads;
};

static void
fill(void *arg, struct ck_status_snapshot *out)
{
	const struct fake_daemon *d = arg;

	out->version = "0.1.0-test";
	out->broker_id = "gz <\"01\">";
	out->started_at = (int64_t)time(NULL) - 3725;
	out->grpc_listen = "127.0.0.1:7443";
	out->status_listen = "127.0.0.1:0";
	out->draining = d->draining;
	out->ready = d->ready;
	out->not_ready_reason = d->reason;
	out->reloads = d->reloads;
	out->reload_failures = 1;
}

struct fixture {
	struct event_base *base;
	struct ck_statusd *sd;
	struct fake_daemon daemon;
	uint16_t port;
};

static int
setup_statusd(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	char err[256] = "";
	const char *addr, *colon;
	int rc, q;

	assert_non_null(fx);
	ck_metrics_init();
	q = ck_metrics_method(QUERY);
	ck_metrics_method(FREEZE);
	ck_metrics_observe(q, CK_GRPC_OK, 1500);
	ck_metrics_observe(q, CK_GRPC_INVALID_ARGUMENT, 200);
	ck_metrics_conn_opened();

	fx->daemon.ready = true;
	fx->daemon.reloads = 2;
	fx->base = event_base_new();
	assert_non_null(fx->base);
	rc = ck_statusd_open(fx->base, "127.0.0.1:0", fill, &fx->daemon,
	    &fx->sd, err, sizeof(err));
	if (rc != 0)
		fail_msg("ck_statusd_open: %d %s", rc, err);
	addr = ck_statusd_address(fx->sd);
	assert_true(strncmp(addr, "127.0.0.1:", 10) == 0);
	colon = strrchr(addr, ':');
	fx->port = (uint16_t)atoi(colon + 1);
	assert_true(fx->port != 0);
	*state = fx;
	return 0;
}

static int
teardown_statusd(void **state)
{
	struct fixture *fx = *state;

	ck_statusd_close(fx->sd);
	event_base_free(fx->base);
	free(fx);
	return 0;
}

struct exchange {
	struct event_base *base;
	struct evbuffer *in;
	bool timed_out;
};

static void
on_client_read(evutil_socket_t fd, short what, void *arg)
{
	struct exchange *x = arg;
	int n;

	if (what & EV_TIMEOUT) {
		x->timed_out = true;
		event_base_loopexit(x->base, NULL);
		return;
	}
	for (;;) {
		n = evbuffer_read(x->in, fd, 4096);
		if (n > 0)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		event_base_loopexit(x->base, NULL); /* EOF or error */
		return;
	}
}

/*
 * Send raw request bytes and collect everything the server says until it
 * closes the connection, running the server's loop meanwhile. The requests
 * ask for Connection: close, so the close marks the end.
 */
static char *
http_raw(struct fixture *fx, const char *request)
{
	struct sockaddr_in sin;
	struct timeval tv = { 5, 0 };
	struct exchange x = { .base = fx->base };
	struct event *ev;
	size_t off = 0, len = strlen(request);
	char *out;
	int fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(fx->port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* The kernel completes the handshake from the listen backlog. */
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	while (off < len) {
		ssize_t n = send(fd, request + off, len - off, MSG_NOSIGNAL);

		assert_true(n > 0);
		off += (size_t)n;
	}
	assert_int_equal(evutil_make_socket_nonblocking(fd), 0);
	x.in = evbuffer_new();
	assert_non_null(x.in);
	ev = event_new(fx->base, fd, EV_READ | EV_PERSIST, on_client_read, &x);
	assert_non_null(ev);
	event_add(ev, &tv);
	event_base_dispatch(fx->base);
	if (ev != NULL) /* libevent 2.1's event_free(NULL) crashes */
		event_free(ev);
	close(fd);
	assert_false(x.timed_out);
	out = drain_str(x.in);
	evbuffer_free(x.in);
	return out;
}

struct response {
	char *raw;
	int code;
	const char *body; /* into raw */
	size_t body_len;
};

static void
parse_response(struct response *r)
{
	char *end;

	assert_true(strncmp(r->raw, "HTTP/1.1 ", 9) == 0);
	r->code = atoi(r->raw + 9);
	end = strstr(r->raw, "\r\n\r\n");
	assert_non_null(end);
	end[2] = '\0'; /* headers end in "\r\n"; the body follows the gap */
	r->body = end + 4;
	r->body_len = strlen(r->body);
}

/* Header value (up to CR) copied into buf, or NULL when absent. */
static const char *
header(const struct response *r, const char *name, char *buf, size_t len)
{
	size_t n = strlen(name);

	for (const char *p = strstr(r->raw, "\r\n"); p != NULL;
	     p = strstr(p + 2, "\r\n")) {
		const char *h = p + 2;

		if (strncasecmp(h, name, n) == 0 && h[n] == ':') {
			const char *v = h + n + 1;
			size_t vlen;

			while (*v == ' ')
				v++;
			vlen = strcspn(v, "\r");
			assert_true(vlen < len);
			memcpy(buf, v, vlen);
			buf[vlen] = '\0';
			return buf;
		}
	}
	return NULL;
}

static struct response
request(struct fixture *fx, const char *method, const char *target,
    const char *extra)
{
	char req[512];
	struct response r = { 0 };
	char cl[32];

	snprintf(req, sizeof(req),
	    "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s\r\n",
	    method, target, extra != NULL ? extra : "");
	r.raw = http_raw(fx, req);
	parse_response(&r);
	/* Every answer is framed by Content-Length (HEAD: the GET length). */
	assert_non_null(header(&r, "Content-Length", cl, sizeof(cl)));
	if (strcmp(method, "HEAD") == 0)
		assert_int_equal(r.body_len, 0);
	else
		assert_int_equal(strtoul(cl, NULL, 10), r.body_len);
	return r;
}

static void
test_healthz(void **state)
{
	struct fixture *fx = *state;
	struct response r;
	char v[128];

	r = request(fx, "GET", "/healthz", NULL);
	assert_int_equal(r.code, 200);
	assert_string_equal(r.body, "ok\n");
	assert_string_equal(header(&r, "Content-Type", v, sizeof(v)),
	    "text/plain; charset=utf-8");
	assert_string_equal(
	    header(&r, "Cache-Control", v, sizeof(v)), "no-store");
	free(r.raw);

	/* The query string does not change the route. */
	r = request(fx, "GET", "/healthz?verbose=1&x=%20", NULL);
	assert_int_equal(r.code, 200);
	assert_string_equal(r.body, "ok\n");
	free(r.raw);
	/* Absolute form, as a proxy sends it. */
	r = request(fx, "GET", "http://127.0.0.1/healthz?x=1", NULL);
	assert_int_equal(r.code, 200);
	assert_string_equal(r.body, "ok\n");
	free(r.raw);

	/* HEAD: same status and length, no body. */
	r = request(fx, "HEAD", "/healthz", NULL);
	assert_int_equal(r.code, 200);
	assert_string_equal(header(&r, "Content-Length", v, sizeof(v)), "3");
	free(r.raw);
}

static void
test_readyz(void **state)
{
	struct fixture *fx = *state;
	struct response r;

	r = request(fx, "GET", "/readyz", NULL);
	assert_int_equal(r.code, 200);
	assert_string_equal(r.body, "ready\n");
	free(r.raw);

	fx->daemon.ready = false;
	fx->daemon.reason = "state store not writable";
	r = request(fx, "GET", "/readyz", NULL);
	assert_int_equal(r.code, 503);
	assert_string_equal(r.body, "not ready: state store not writable\n");
	free(r.raw);

	fx->daemon.reason = NULL;
	r = request(fx, "GET", "/readyz", NULL);
	assert_int_equal(r.code, 503);
	assert_string_equal(r.body, "not ready: unknown reason\n");
	free(r.raw);

	/* Draining wins over ready. */
	fx->daemon.ready = true;
	fx->daemon.draining = true;
	r = request(fx, "GET", "/readyz", NULL);
	assert_int_equal(r.code, 503);
	assert_string_equal(r.body, "not ready: draining\n");
	free(r.raw);
	/* Liveness is not readiness. */
	r = request(fx, "GET", "/healthz", NULL);
	assert_int_equal(r.code, 200);
	free(r.raw);
}

static void
test_status_json(void **state)
{
	struct fixture *fx = *state;
	struct response r;
	char v[128], want[128];

	r = request(fx, "GET", "/status", NULL);
	assert_int_equal(r.code, 200);
	assert_string_equal(
	    header(&r, "Content-Type", v, sizeof(v)), "application/json");
	if (!json_valid(r.body))
		fail_msg("invalid JSON: %s", r.body);
	assert_non_null(strstr(r.body, "\"version\":\"0.1.0-test\""));
	assert_non_null(strstr(r.body, "\"broker_id\":\"gz <\\\"01\\\">\""));
	assert_non_null(strstr(r.body, "\"uptime_s\":372")); /* 3725 +- 9 */
	snprintf(want, sizeof(want),
	    "\"listeners\":{\"grpc\":\"127.0.0.1:7443\",\"status\":"
	    "\"127.0.0.1:%u\"}",
	    fx->port);
	assert_non_null(strstr(r.body, want));
	assert_non_null(strstr(r.body,
	    "\"draining\":false,\"ready\":true,\"not_ready_reason\":null"));
	assert_non_null(strstr(r.body, "\"open_connections\":1,"));
	assert_non_null(strstr(r.body, "\"inflight_calls\":0,"));
	assert_non_null(strstr(r.body, "\"reloads\":2,\"reload_failures\":1,"));
	assert_non_null(
	    strstr(r.body, "\"methods\":{\"(unknown)\":{\"count\":0,"));
	assert_non_null(strstr(r.body,
	    "\"" QUERY "\":{\"count\":2,\"codes\":{\"OK\":1,"
	    "\"INVALID_ARGUMENT\":1},\"latency_ms\":{\"p50\":"));
	assert_int_equal(r.body[r.body_len - 1], '\n');
	free(r.raw);

	/* Not ready, with a reason that needs escaping. */
	fx->daemon.ready = false;
	fx->daemon.reason = "disk \"full\"\n\\";
	r = request(fx, "GET", "/status", NULL);
	assert_true(json_valid(r.body));
	assert_non_null(strstr(r.body,
	    "\"ready\":false,\"not_ready_reason\":\"disk "
	    "\\\"full\\\"\\n\\\\\""));
	free(r.raw);
}

static void
test_metrics_endpoint(void **state)
{
	struct fixture *fx = *state;
	struct response r;
	char v[128];

	r = request(fx, "GET", "/metrics", NULL);
	assert_int_equal(r.code, 200);
	assert_string_equal(header(&r, "Content-Type", v, sizeof(v)),
	    "text/plain; version=0.0.4; charset=utf-8");
	/* The metrics module's 6 families and statusd's 6. */
	assert_int_equal(check_prometheus(r.body), 12);
	expect_sample(r.body,
	    "chakong_grpc_calls_total{method=\"" QUERY
	    "\",code=\"INVALID_ARGUMENT\"}",
	    1);
	expect_sample(r.body,
	    "chakong_build_info{version=\"0.1.0-test\","
	    "broker_id=\"gz <\\\"01\\\">\"}",
	    1);
	expect_sample(r.body, "chakong_ready", 1);
	expect_sample(r.body, "chakong_draining", 0);
	expect_sample(r.body, "chakong_config_reloads_total", 2);
	expect_sample(r.body, "chakong_open_connections", 1);
	free(r.raw);
}

static void
test_root_page(void **state)
{
	struct fixture *fx = *state;
	struct response r;
	char v[128];

	r = request(fx, "GET", "/", NULL);
	assert_int_equal(r.code, 200);
	assert_string_equal(header(&r, "Content-Type", v, sizeof(v)),
	    "text/html; charset=utf-8");
	assert_non_null(header(&r, "Content-Security-Policy", v, sizeof(v)));
	assert_true(strncmp(r.body, "<!DOCTYPE html>", 15) == 0);
	assert_non_null(strstr(r.body, "<meta charset=\"utf-8\">"));
	/* Configured text is escaped, never markup. */
	assert_non_null(strstr(r.body, "gz &lt;&quot;01&quot;&gt;"));
	assert_null(strstr(r.body, "gz <"));
	assert_non_null(strstr(r.body, "<p class=\"ok\">ready</p>"));
	assert_non_null(strstr(r.body, "(up 0d 01:02:0"));
	assert_non_null(
	    strstr(r.body, "<td>" QUERY "</td><td>2</td><td>1</td>"));
	assert_non_null(strstr(r.body, "<a href=\"status\">"));
	assert_non_null(strstr(r.body, "<a href=\"metrics\">"));
	assert_non_null(strstr(r.body, "<a href=\"healthz\">"));
	assert_non_null(strstr(r.body, "<a href=\"readyz\">"));
	assert_non_null(strstr(r.body, "</html>\n"));
	free(r.raw);

	fx->daemon.ready = false;
	fx->daemon.reason = "<b>store</b>";
	r = request(fx, "GET", "/", NULL);
	assert_non_null(strstr(r.body,
	    "<p class=\"bad\">not ready: &lt;b&gt;store&lt;/b&gt;</p>"));
	free(r.raw);
}

static void
test_not_found(void **state)
{
	static const char *const paths[] = { "/nope", "/status/", "/Status",
		"/metrics.txt", "//healthz", "/healthz/x" };
	struct fixture *fx = *state;
	struct response r;

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		r = request(fx, "GET", paths[i], NULL);
		if (r.code != 404)
			fail_msg("%s: %d", paths[i], r.code);
		assert_string_equal(r.body, "not found\n");
		free(r.raw);
	}
	/* An unknown path is 404 whatever the method. */
	r = request(fx, "POST", "/nope", "Content-Length: 0\r\n");
	assert_int_equal(r.code, 404);
	free(r.raw);
	r = request(fx, "HEAD", "/nope", NULL);
	assert_int_equal(r.code, 404);
	free(r.raw);
}

static void
test_method_not_allowed(void **state)
{
	static const char *const methods[] = { "POST", "PUT", "DELETE",
		"OPTIONS", "PATCH" };
	struct fixture *fx = *state;
	struct response r;
	char v[64];

	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		r = request(fx, methods[i], "/status", "Content-Length: 0\r\n");
		if (r.code != 405)
			fail_msg("%s: %d", methods[i], r.code);
		assert_string_equal(
		    header(&r, "Allow", v, sizeof(v)), "GET, HEAD");
		assert_string_equal(r.body, "method not allowed\n");
		free(r.raw);
	}
	/* A small form body still gets its 405. */
	r = request(fx, "POST", "/metrics",
	    "Content-Type: application/x-www-form-urlencoded\r\n"
	    "Content-Length: 7\r\n\r\nreset=1");
	assert_int_equal(r.code, 405);
	free(r.raw);
}

/*
 * HEAD then GET on one connection: if the HEAD answer carried a body the
 * second answer would not start where the first one's headers end.
 */
static void
test_head_keepalive(void **state)
{
	struct fixture *fx = *state;
	char *raw, *second;

	raw = http_raw(fx,
	    "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
	    "GET /healthz HTTP/1.1\r\nHost: x\r\n"
	    "Connection: close\r\n\r\n");
	assert_true(strncmp(raw, "HTTP/1.1 200 ", 13) == 0);
	second = strstr(raw, "\r\n\r\n");
	assert_non_null(second);
	second += 4;
	assert_true(strncmp(second, "HTTP/1.1 200 ", 13) == 0);
	assert_non_null(strstr(second, "\r\n\r\nok\n"));
	assert_true(strlen(strstr(second, "\r\n\r\nok\n")) == 7);
	free(raw);
}

static void
test_open_errors(void **state)
{
	static const char *const bad[] = { "127.0.0.1", "127.0.0.1:", ":80",
		"127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:80x", "[::1]80",
		"[::1", "example.org:80", "" };
	struct fixture *fx = *state;
	struct ck_statusd *sd = (struct ck_statusd *)1;
	char err[256], addr[64];
	int rc;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		rc = ck_statusd_open(
		    fx->base, bad[i], fill, &fx->daemon, &sd, err, sizeof(err));
		if (rc != CK_EINVAL)
			fail_msg("\"%s\": %d", bad[i], rc);
		assert_null(sd);
		assert_true(strlen(err) > 0);
	}
	rc = ck_statusd_open(
	    fx->base, "127.0.0.1:0", NULL, NULL, &sd, err, sizeof(err));
	assert_int_equal(rc, CK_EINVAL);
	/* A NULL error buffer is allowed. */
	rc = ck_statusd_open(fx->base, "bogus", fill, NULL, &sd, NULL, 0);
	assert_int_equal(rc, CK_EINVAL);

	/* The port the fixture holds is taken. */
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", fx->port);
	rc = ck_statusd_open(
	    fx->base, addr, fill, &fx->daemon, &sd, err, sizeof(err));
	assert_int_equal(rc, -EADDRINUSE);
	assert_null(sd);
	assert_non_null(strstr(err, addr));

	ck_statusd_close(NULL);
}

static void
test_open_ipv6(void **state)
{
	struct fixture *fx = *state;
	struct ck_statusd *sd = NULL;
	char err[256];
	int rc;

	rc = ck_statusd_open(
	    fx->base, "[::1]:0", fill, &fx->daemon, &sd, err, sizeof(err));
	if (rc == -EADDRNOTAVAIL || rc == -EAFNOSUPPORT)
		skip(); /* no IPv6 loopback in this sandbox */
	assert_int_equal(rc, 0);
	assert_true(strncmp(ck_statusd_address(sd), "[::1]:", 6) == 0);
	assert_true(atoi(strrchr(ck_statusd_address(sd), ':') + 1) > 0);
	ck_statusd_close(sd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_register, setup_metrics),
		cmocka_unit_test_setup(test_counters, setup_metrics),
		cmocka_unit_test_setup(test_counters_text, setup_metrics),
		cmocka_unit_test_setup(test_gauges, setup_metrics),
		cmocka_unit_test_setup(test_bucket_boundaries, setup_metrics),
		cmocka_unit_test_setup(
		    test_histogram_cumulative, setup_metrics),
		cmocka_unit_test_setup(test_percentiles, setup_metrics),
		cmocka_unit_test_setup(test_label_escaping, setup_metrics),
		cmocka_unit_test_setup(
		    test_prometheus_structure, setup_metrics),
		cmocka_unit_test_setup(test_json, setup_metrics),
		cmocka_unit_test_setup_teardown(
		    test_healthz, setup_statusd, teardown_statusd),
		cmocka_unit_test_setup_teardown(
		    test_readyz, setup_statusd, teardown_statusd),
		cmocka_unit_test_setup_teardown(
		    test_status_json, setup_statusd, teardown_statusd),
		cmocka_unit_test_setup_teardown(
		    test_metrics_endpoint, setup_statusd, teardown_statusd),
		cmocka_unit_test_setup_teardown(
		    test_root_page, setup_statusd, teardown_statusd),
		cmocka_unit_test_setup_teardown(
		    test_not_found, setup_statusd, teardown_statusd),
		cmocka_unit_test_setup_teardown(
		    test_method_not_allowed, setup_statusd, teardown_statusd),
		cmocka_unit_test_setup_teardown(
		    test_head_keepalive, setup_statusd, teardown_statusd),
		cmocka_unit_test_setup_teardown(
		    test_open_errors, setup_statusd, teardown_statusd),
		cmocka_unit_test_setup_teardown(
		    test_open_ipv6, setup_statusd, teardown_statusd),
	};

	/* A peer that closes early must not kill the test with SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
