/*
 * test_histogram.c: the latency histogram (broker/histogram.c) that both
 * /metrics families of call durations and the /status percentiles come
 * from: bucket placement at and around every bound, quantiles against
 * values worked out by hand, merging, the exact Prometheus lines, and the
 * escaped label string (metrics.c) the writer is given.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <event2/buffer.h>

#include "chakong/status.h"
#include "histogram.h"
#include "metrics.h"

static bool
near(double a, double b)
{
	double d = a - b;

	return d < 1e-9 && d > -1e-9;
}

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
prometheus_of(const char *labels, const struct ck_hist *h)
{
	struct evbuffer *b = evbuffer_new();
	char *s;

	assert_non_null(b);
	ck_hist_write_prometheus(b, "t", labels, h);
	s = drain_str(b);
	evbuffer_free(b);
	return s;
}

/* Ascending, and every `le` label is its bound in seconds. */
static void
test_bounds_table(void **state)
{
	(void)state;
	assert_int_equal(CK_HIST_NBUCKETS, CK_HIST_NFINITE + 1);
	assert_int_equal(ck_hist_bounds[0].usec, 500);
	assert_int_equal(ck_hist_bounds[CK_HIST_NFINITE - 1].usec, 120000000);
	for (unsigned i = 0; i < CK_HIST_NFINITE; i++) {
		char *end;
		double le = strtod(ck_hist_bounds[i].le, &end);

		assert_int_equal(*end, '\0');
		assert_true(le == (double)ck_hist_bounds[i].usec / 1e6);
		if (i > 0)
			assert_true(ck_hist_bounds[i].usec >
			    ck_hist_bounds[i - 1].usec + 1);
	}
}

/* `le`: a bound belongs to its own bucket, one µs more to the next. */
static void
test_bucket_boundaries(void **state)
{
	struct ck_hist h;
	uint64_t n = 0, sum = 0;

	(void)state;
	assert_int_equal(ck_hist_bucket_of(0), 0);
	assert_int_equal(ck_hist_bucket_of(UINT64_MAX), CK_HIST_NFINITE);
	for (unsigned i = 0; i < CK_HIST_NFINITE; i++) {
		uint64_t b = ck_hist_bounds[i].usec;

		assert_int_equal(ck_hist_bucket_of(b - 1), i);
		assert_int_equal(ck_hist_bucket_of(b), i);
		assert_int_equal(ck_hist_bucket_of(b + 1), i + 1);
	}

	memset(&h, 0, sizeof(h));
	for (unsigned i = 0; i < CK_HIST_NFINITE; i++) {
		uint64_t b = ck_hist_bounds[i].usec;

		ck_hist_observe(&h, b - 1);
		ck_hist_observe(&h, b);
		ck_hist_observe(&h, b + 1);
		n += 3;
		sum += 3 * b;
	}
	/* Bucket 0 has 499 and 500; each later one has its bound - 1, its
	 * bound and the bound + 1 of the one below; +Inf has 120000001. */
	assert_int_equal(h.bucket[0], 2);
	for (unsigned i = 1; i < CK_HIST_NFINITE; i++)
		assert_int_equal(h.bucket[i], 3);
	assert_int_equal(h.bucket[CK_HIST_NFINITE], 1);
	assert_int_equal(h.count, n);
	assert_int_equal(h.sum_usec, sum);
	assert_int_equal(h.min_usec, 499);
	assert_int_equal(h.max_usec, 120000001);

	/* 0 and UINT64_MAX: the ends, and min/max follow them. */
	ck_hist_observe(&h, 0);
	ck_hist_observe(&h, UINT64_MAX);
	assert_int_equal(h.bucket[0], 3);
	assert_int_equal(h.bucket[CK_HIST_NFINITE], 2);
	assert_int_equal(h.min_usec, 0);
	assert_int_equal(h.max_usec, UINT64_MAX);
	assert_int_equal(h.count, n + 2);
	/* The sum wraps, as a Prometheus counter may. */
	assert_int_equal(h.sum_usec, sum - 1);
}

static void
test_quantiles(void **state)
{
	struct ck_hist h;

	(void)state;
	/* Empty: no estimate, whatever q. */
	memset(&h, 0, sizeof(h));
	assert_true(ck_hist_quantile_ms(&h, 0) < 0);
	assert_true(ck_hist_quantile_ms(&h, 0.5) < 0);
	assert_true(ck_hist_quantile_ms(&h, 1) < 0);

	/* One call of 3 ms: the 2.5..5 ms bucket narrows to 3..3. */
	ck_hist_observe(&h, 3000);
	assert_true(near(ck_hist_quantile_ms(&h, 0), 3.0));
	assert_true(near(ck_hist_quantile_ms(&h, 0.5), 3.0));
	assert_true(near(ck_hist_quantile_ms(&h, 0.99), 3.0));
	assert_true(near(ck_hist_quantile_ms(&h, 1), 3.0));

	/*
	 * 90 calls of 0.8 ms and 10 of 40 ms. p50: rank 50 of the 90 in
	 * [0.8, 1] ms (the 0.5..1 ms bucket from the min up). p90: rank 90,
	 * the top of that bucket. p99: rank 99, 9 of the 10 in [25, 40] ms
	 * (the 25..50 ms bucket up to the max) = 25 + 15 * 9/10 = 38.5.
	 * q <= 0 is the min, q >= 1 the max.
	 */
	memset(&h, 0, sizeof(h));
	for (int i = 0; i < 90; i++)
		ck_hist_observe(&h, 800);
	for (int i = 0; i < 10; i++)
		ck_hist_observe(&h, 40000);
	assert_true(near(ck_hist_quantile_ms(&h, 0.5), 0.8 + 0.2 * 50 / 90));
	assert_true(near(ck_hist_quantile_ms(&h, 0.9), 1.0));
	assert_true(near(ck_hist_quantile_ms(&h, 0.99), 38.5));
	assert_true(near(ck_hist_quantile_ms(&h, 1), 40.0));
	assert_true(near(ck_hist_quantile_ms(&h, 2), 40.0));
	assert_true(near(ck_hist_quantile_ms(&h, 0), 0.8));
	assert_true(near(ck_hist_quantile_ms(&h, -1), 0.8));

	/* The first bucket starts at the min, not at 0: 100 and 300 µs;
	 * p50 is rank 1 of 2 in [100, 300] = 200 µs. */
	memset(&h, 0, sizeof(h));
	ck_hist_observe(&h, 100);
	ck_hist_observe(&h, 300);
	assert_true(near(ck_hist_quantile_ms(&h, 0.5), 0.2));
	assert_true(near(ck_hist_quantile_ms(&h, 0.25), 0.15));

	/* Four calls in the 1..2.5 ms bucket, narrowed to [1001, 2500] µs:
	 * p25 is rank 1 of 4, 1001 + 1499 / 4 = 1375.75 µs. */
	memset(&h, 0, sizeof(h));
	ck_hist_observe(&h, 1001);
	ck_hist_observe(&h, 1500);
	ck_hist_observe(&h, 2000);
	ck_hist_observe(&h, 2500);
	assert_true(near(ck_hist_quantile_ms(&h, 0.25), 1.37575));
	assert_true(near(ck_hist_quantile_ms(&h, 0.75), 1.001 + 1.499 * 0.75));

	/* +Inf gets a finite top, the max: 130 s and 200 s, p50 is rank 1 of
	 * 2 in [130, 200] s = 165 s, p99 rank 1.98 of 2 = 199.3 s. */
	memset(&h, 0, sizeof(h));
	ck_hist_observe(&h, 130000000);
	ck_hist_observe(&h, 200000000);
	assert_true(near(ck_hist_quantile_ms(&h, 0.5), 165000.0));
	assert_true(near(ck_hist_quantile_ms(&h, 0.99), 199300.0));
	assert_true(near(ck_hist_quantile_ms(&h, 1), 200000.0));

	/* A call of 0.7 ms and one of UINT64_MAX µs: p50, rank 1 of 2, is
	 * the top of the 0.5..1 ms bucket narrowed to [0.7, 1] ms; p25 is
	 * half way through it. */
	memset(&h, 0, sizeof(h));
	ck_hist_observe(&h, 700);
	ck_hist_observe(&h, UINT64_MAX);
	assert_true(near(ck_hist_quantile_ms(&h, 0.5), 1.0));
	assert_true(near(ck_hist_quantile_ms(&h, 0.25), 0.85));
	assert_true(ck_hist_quantile_ms(&h, 1) == (double)UINT64_MAX / 1000.0);
}

static void
test_merge(void **state)
{
	static const uint64_t va[] = { 800, 800, 40000 };
	static const uint64_t vb[] = { 3, 200000000, 5000 };
	struct ck_hist a, b, all, empty, z, before;

	(void)state;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	memset(&all, 0, sizeof(all));
	memset(&empty, 0, sizeof(empty));
	memset(&z, 0, sizeof(z));
	for (size_t i = 0; i < 3; i++) {
		ck_hist_observe(&a, va[i]);
		ck_hist_observe(&b, vb[i]);
		ck_hist_observe(&all, va[i]);
		ck_hist_observe(&all, vb[i]);
	}

	/* Merging nothing changes nothing, min included. */
	before = a;
	ck_hist_merge(&a, &empty);
	assert_memory_equal(&a, &before, sizeof(a));
	ck_hist_merge(&z, &empty);
	assert_memory_equal(&z, &empty, sizeof(z));

	/* Into an empty one: a copy (its min is not the zero it held). */
	ck_hist_merge(&z, &a);
	assert_memory_equal(&z, &a, sizeof(z));
	assert_int_equal(z.min_usec, 800);

	/* a + b is what observing everything in one would have been. */
	ck_hist_merge(&a, &b);
	assert_memory_equal(&a, &all, sizeof(a));
	assert_int_equal(a.count, 6);
	assert_int_equal(a.min_usec, 3);
	assert_int_equal(a.max_usec, 200000000);
	assert_int_equal(a.sum_usec, 800 + 800 + 40000 + 3 + 200000000 + 5000);
	assert_true(near(ck_hist_quantile_ms(&a, 1), 200000.0));
	assert_true(near(ck_hist_quantile_ms(&a, 0), 0.003));
}

static void
test_prometheus_lines(void **state)
{
	static const char want[] =
	    "t_bucket{method=\"/a.B/C\",le=\"0.0005\"} 2\n"
	    "t_bucket{method=\"/a.B/C\",le=\"0.001\"} 3\n"
	    "t_bucket{method=\"/a.B/C\",le=\"0.0025\"} 3\n"
	    "t_bucket{method=\"/a.B/C\",le=\"0.005\"} 3\n"
	    "t_bucket{method=\"/a.B/C\",le=\"0.01\"} 3\n"
	    "t_bucket{method=\"/a.B/C\",le=\"0.025\"} 3\n"
	    "t_bucket{method=\"/a.B/C\",le=\"0.05\"} 3\n"
	    "t_bucket{method=\"/a.B/C\",le=\"0.1\"} 3\n"
	    "t_bucket{method=\"/a.B/C\",le=\"0.25\"} 3\n"
	    "t_bucket{method=\"/a.B/C\",le=\"0.5\"} 3\n"
	    "t_bucket{method=\"/a.B/C\",le=\"1\"} 3\n"
	    "t_bucket{method=\"/a.B/C\",le=\"2.5\"} 3\n"
	    "t_bucket{method=\"/a.B/C\",le=\"5\"} 3\n"
	    "t_bucket{method=\"/a.B/C\",le=\"10\"} 3\n"
	    "t_bucket{method=\"/a.B/C\",le=\"30\"} 3\n"
	    "t_bucket{method=\"/a.B/C\",le=\"60\"} 3\n"
	    "t_bucket{method=\"/a.B/C\",le=\"120\"} 4\n"
	    "t_bucket{method=\"/a.B/C\",le=\"+Inf\"} 5\n"
	    "t_sum{method=\"/a.B/C\"} 240.001002\n"
	    "t_count{method=\"/a.B/C\"} 5\n";
	static const char want_empty[] = "t_bucket{le=\"0.0005\"} 0\n"
					 "t_bucket{le=\"0.001\"} 0\n"
					 "t_bucket{le=\"0.0025\"} 0\n"
					 "t_bucket{le=\"0.005\"} 0\n"
					 "t_bucket{le=\"0.01\"} 0\n"
					 "t_bucket{le=\"0.025\"} 0\n"
					 "t_bucket{le=\"0.05\"} 0\n"
					 "t_bucket{le=\"0.1\"} 0\n"
					 "t_bucket{le=\"0.25\"} 0\n"
					 "t_bucket{le=\"0.5\"} 0\n"
					 "t_bucket{le=\"1\"} 0\n"
					 "t_bucket{le=\"2.5\"} 0\n"
					 "t_bucket{le=\"5\"} 0\n"
					 "t_bucket{le=\"10\"} 0\n"
					 "t_bucket{le=\"30\"} 0\n"
					 "t_bucket{le=\"60\"} 0\n"
					 "t_bucket{le=\"120\"} 0\n"
					 "t_bucket{le=\"+Inf\"} 0\n"
					 "t_sum 0.000000\n"
					 "t_count 0\n";
	struct ck_hist h;
	char *s;

	(void)state;
	/* 0 and 500 in the first bucket, 501 in the second, 120 s in the
	 * last finite one, 120000001 µs in +Inf; the sum exact to the µs. */
	memset(&h, 0, sizeof(h));
	ck_hist_observe(&h, 0);
	ck_hist_observe(&h, 500);
	ck_hist_observe(&h, 501);
	ck_hist_observe(&h, 120000000);
	ck_hist_observe(&h, 120000001);
	s = prometheus_of("method=\"/a.B/C\"", &h);
	assert_string_equal(s, want);
	free(s);

	/* No labels: no stray comma, no empty braces. */
	memset(&h, 0, sizeof(h));
	s = prometheus_of(NULL, &h);
	assert_string_equal(s, want_empty);
	free(s);
	s = prometheus_of("", &h);
	assert_string_equal(s, want_empty);
	free(s);

	/* Integer arithmetic: exact where a double would round. */
	h.sum_usec = UINT64_MAX;
	s = prometheus_of(NULL, &h);
	assert_non_null(strstr(s, "\nt_sum 18446744073709.551615\n"));
	free(s);
}

/* The escaped label string (metrics.c) the writer is handed. */
static void
test_label_string(void **state)
{
	static const char odd[] = "a\"b\\c\nd é";
	static const char want[] = "endpoint=\"a\\\"b\\\\c\\nd é\"";
	char buf[CK_METRICS_LABEL_SIZE("endpoint", sizeof(odd) - 1)];
	char exact[sizeof(want)];

	(void)state;
	assert_int_equal(
	    ck_metrics_label(buf, sizeof(buf), "endpoint", odd), 0);
	assert_string_equal(buf, want);
	assert_int_equal(ck_metrics_label(buf, sizeof(buf), "method", ""), 0);
	assert_string_equal(buf, "method=\"\"");

	/* Exactly big enough, then one byte short at each step. */
	assert_int_equal(
	    ck_metrics_label(exact, sizeof(exact), "endpoint", odd), 0);
	assert_string_equal(exact, want);
	for (size_t len = 0; len < sizeof(exact); len++) {
		memset(exact, 'x', sizeof(exact));
		assert_int_equal(
		    ck_metrics_label(exact, len, "endpoint", odd), CK_ELIMIT);
		if (len > 0)
			assert_int_equal(exact[0], '\0');
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bounds_table),
		cmocka_unit_test(test_bucket_boundaries),
		cmocka_unit_test(test_quantiles),
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_prometheus_lines),
		cmocka_unit_test(test_label_string),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
