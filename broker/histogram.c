/*
 * histogram.c: fixed-bucket latency histograms (see histogram.h).
 */
#include "histogram.h"

#include <inttypes.h>
#include <stddef.h>

#include <event2/buffer.h>

/*
 * A cached Query answers in well under a millisecond, a live fan-out to
 * agencies in tens of milliseconds to seconds, and a hung agency is cut off
 * by the caller's deadline, which is seldom above a minute or two; so the
 * buckets are dense below a second and sparse above. The header declares
 * the size, so a table of any other length does not compile.
 */
const struct ck_hist_bound ck_hist_bounds[] = {
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

unsigned
ck_hist_bucket_of(uint64_t usec)
{
	unsigned i;

	for (i = 0; i < CK_HIST_NFINITE; i++)
		if (usec <= ck_hist_bounds[i].usec)
			break;
	return i;
}

void
ck_hist_observe(struct ck_hist *h, uint64_t usec)
{
	h->bucket[ck_hist_bucket_of(usec)]++;
	if (h->count == 0 || usec < h->min_usec)
		h->min_usec = usec;
	if (usec > h->max_usec)
		h->max_usec = usec;
	h->count++;
	h->sum_usec += usec;
}

void
ck_hist_merge(struct ck_hist *into, const struct ck_hist *from)
{
	if (from->count == 0)
		return;
	for (unsigned i = 0; i < CK_HIST_NBUCKETS; i++)
		into->bucket[i] += from->bucket[i];
	if (into->count == 0 || from->min_usec < into->min_usec)
		into->min_usec = from->min_usec;
	if (from->max_usec > into->max_usec)
		into->max_usec = from->max_usec;
	into->count += from->count;
	into->sum_usec += from->sum_usec;
}

/*
 * Like Prometheus' histogram_quantile(): find the bucket holding the q-th
 * observation and interpolate linearly inside it. Unlike it, we know the
 * observed min and max, so the bucket is narrowed to them: the +Inf bucket
 * gets a finite top, and a tight distribution (every call 3 ms) reports
 * 3 ms rather than somewhere between 2.5 and 5.
 */
static double
quantile_usec(const struct ck_hist *h, double q)
{
	double rank, lo, hi, cum = 0;
	unsigned i;

	if (q <= 0)
		return (double)h->min_usec;
	if (q >= 1)
		return (double)h->max_usec;
	rank = q * (double)h->count;
	for (i = 0; i < CK_HIST_NBUCKETS; i++) {
		double n = (double)h->bucket[i];

		if (n > 0 && cum + n >= rank)
			break;
		cum += n;
	}
	if (i == CK_HIST_NBUCKETS) /* only by rounding: the top is the max */
		return (double)h->max_usec;
	lo = i == 0 ? 0 : (double)ck_hist_bounds[i - 1].usec;
	hi = i < CK_HIST_NFINITE ? (double)ck_hist_bounds[i].usec
				 : (double)h->max_usec;
	if (lo < (double)h->min_usec)
		lo = (double)h->min_usec;
	if (hi > (double)h->max_usec)
		hi = (double)h->max_usec;
	if (hi < lo)
		hi = lo;
	return lo + (hi - lo) * (rank - cum) / (double)h->bucket[i];
}

double
ck_hist_quantile_ms(const struct ck_hist *h, double q)
{
	return h->count > 0 ? quantile_usec(h, q) / 1000.0 : -1;
}

void
ck_hist_write_prometheus(struct evbuffer *out, const char *name,
    const char *labels, const struct ck_hist *h)
{
	const char *open = "{", *close = "}", *sep = ",";
	uint64_t cum = 0;

	if (labels == NULL || labels[0] == '\0')
		labels = open = close = sep = "";
	for (unsigned b = 0; b < CK_HIST_NBUCKETS; b++) {
		cum += h->bucket[b];
		evbuffer_add_printf(out,
		    "%s_bucket{%s%sle=\"%s\"} %" PRIu64 "\n", name, labels, sep,
		    b < CK_HIST_NFINITE ? ck_hist_bounds[b].le : "+Inf", cum);
	}
	/* Integer arithmetic: exact at any size, and no locale in the way. */
	evbuffer_add_printf(out,
	    "%s_sum%s%s%s %" PRIu64 ".%06" PRIu64 "\n%s_count%s%s%s %" PRIu64
	    "\n",
	    name, open, labels, close, h->sum_usec / 1000000,
	    h->sum_usec % 1000000, name, open, labels, close, h->count);
}
