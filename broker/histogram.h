/*
 * histogram.h: the latency histogram behind both the per-method (metrics.c)
 * and the per-endpoint (pool.c) call durations, so the two families share
 * one set of buckets and read side by side. Fixed buckets, no allocation:
 * a zeroed struct ck_hist is empty and can live in a static table. Not
 * locked; its owner decides which thread writes it.
 */
#ifndef CK_HIST_H
#define CK_HIST_H

#include <stdint.h>

struct evbuffer;

/*
 * The finite buckets: upper bounds in µs and the same bound as a Prometheus
 * `le` label in seconds, side by side so they cannot drift apart. 0.5, 1,
 * 2.5, 5, 10, 25, 50, 100, 250, 500 ms, 1, 2.5, 5, 10, 30, 60, 120 s; one
 * more bucket, +Inf, follows the last.
 */
#define CK_HIST_NFINITE	 17
#define CK_HIST_NBUCKETS (CK_HIST_NFINITE + 1)

struct ck_hist_bound {
	uint64_t usec;
	const char *le;
};

extern const struct ck_hist_bound ck_hist_bounds[CK_HIST_NFINITE];

struct ck_hist {
	uint64_t bucket[CK_HIST_NBUCKETS]; /* not cumulative */
	uint64_t count;
	uint64_t sum_usec; /* wraps after 2^64 µs, as Prometheus allows */
	uint64_t min_usec; /* valid when count > 0 */
	uint64_t max_usec;
};

/*
 * The bucket usec falls in: the first whose bound is >= usec (Prometheus
 * buckets are `le`), CK_HIST_NFINITE for +Inf.
 */
unsigned ck_hist_bucket_of(uint64_t usec);
/* One observation of usec µs. */
void ck_hist_observe(struct ck_hist *h, uint64_t usec);
/* Add every observation of `from` to `into`. */
void ck_hist_merge(struct ck_hist *into, const struct ck_hist *from);
/*
 * Quantile q in ms (0.5 for the median; q <= 0 gives the min, q >= 1 the
 * max), interpolated linearly inside the bucket that holds the q-th
 * observation, the bucket narrowed to the observed min..max; -1 when h is
 * empty.
 */
double ck_hist_quantile_ms(const struct ck_hist *h, double q);
/*
 * The sample lines of one histogram series, cumulative, in text format
 * 0.0.4 (no # HELP / # TYPE; those are per family):
 *   <name>_bucket{<labels>,le="0.0005"} N ... {<labels>,le="+Inf"} N
 *   <name>_sum{<labels>} seconds, exact to the µs
 *   <name>_count{<labels>} N
 * labels is the series' own labels, already escaped (`method="/a.B/C"`);
 * NULL or "" for none.
 */
void ck_hist_write_prometheus(struct evbuffer *out, const char *name,
    const char *labels, const struct ck_hist *h);

#endif
