/*
 * watch_conf.c: the [watch] section (see watch_conf.h).
 */
#include "watch_conf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
ck_watch_conf_defaults(struct ck_watch_conf *w)
{
	memset(w, 0, sizeof(*w));
	w->period_months = 6;
	w->span_months = 60;
	w->rate = 10;
	w->max_concurrent = 4;
	w->query_timeout_ms = 30000;
	w->found_balance_fen = 100000;
	w->expiry_window_days = 30;
	w->expiry_check_s = 3600;
}

static int
num(const char *key, const char *v, long long min, long long max,
    long long *out, char *err, size_t errlen)
{
	char *end;

	errno = 0;
	*out = v[0] != '\0' && v[0] != '+' ? strtoll(v, &end, 10) : 0;
	if (v[0] == '\0' || v[0] == '+' || errno != 0 || *end != '\0') {
		snprintf(err, errlen, "%s: expected a whole number", key);
		return -1;
	}
	if (*out < min || *out > max) {
		snprintf(err, errlen, "%s: must be between %lld and %lld", key,
		    min, max);
		return -1;
	}
	return 0;
}

/* "HH:MM-HH:MM" (UTC+8), or "" for any time of day. */
static int
window(struct ck_watch_conf *w, const char *v, char *err, size_t errlen)
{
	unsigned h1, m1, h2, m2;
	char tail;

	if (v[0] == '\0') {
		w->window_start_min = w->window_end_min = 0;
		return 0;
	}
	if (sscanf(v, "%2u:%2u-%2u:%2u%c", &h1, &m1, &h2, &m2, &tail) != 4 ||
	    h1 > 24 || h2 > 24 || m1 > 59 || m2 > 59 ||
	    (h1 == 24 && m1 != 0) || (h2 == 24 && m2 != 0)) {
		snprintf(err, errlen, "window: expected HH:MM-HH:MM (UTC+8), "
		    "or empty for any time");
		return -1;
	}
	w->window_start_min = (int32_t)(h1 * 60 + m1);
	w->window_end_min = (int32_t)(h2 * 60 + m2);
	return 0;
}

int
ck_watch_conf_set(struct ck_watch_conf *w, const char *k, const char *v,
    char *err, size_t errlen)
{
	long long n;

	if (strcmp(k, "window") == 0)
		return window(w, v, err, errlen);
#define U32(name, lo, hi)                                                 \
	if (strcmp(k, #name) == 0) {                                       \
		if (num(k, v, lo, hi, &n, err, errlen) != 0)               \
			return -1;                                         \
		w->name = (uint32_t)n;                                     \
		return 0;                                                  \
	}
	U32(period_months, 1, 120)
	U32(span_months, 1, 240)
	U32(rate, 1, 100000)
	U32(max_concurrent, 1, 10000)
	U32(query_timeout_ms, 100, 600000)
	U32(expiry_window_days, 1, 366)
	U32(expiry_check_s, 1, 86400)
#undef U32
	if (strcmp(k, "found_balance_fen") == 0) {
		if (num(k, v, 0, (long long)1e15, &n, err, errlen) != 0)
			return -1;
		w->found_balance_fen = n;
		return 0;
	}
	snprintf(err, errlen, "unknown key \"%s\" in [watch]", k);
	return -1;
}
