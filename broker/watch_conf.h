/*
 * watch_conf.h: the [watch] section of chakongd's configuration: how
 * terminated cases are re-queried (period, span, pace) and which findings
 * are raised (balance threshold, expiry window). Parsed here so config.c
 * only dispatches the section.
 */
#ifndef CK_WATCH_CONF_H
#define CK_WATCH_CONF_H

#include <stddef.h>
#include <stdint.h>

struct ck_watch_conf {
	uint32_t period_months;		/* 6: between due dates */
	uint32_t span_months;		/* 60: the last due date */
	uint32_t rate;			/* 10 re-queries started per second */
	uint32_t max_concurrent;	/* 4 re-queries in flight */
	int32_t window_start_min;	/* daily window in minutes of the day */
	int32_t window_end_min;		/* (UTC+8); start == end: any time */
	uint32_t query_timeout_ms;	/* 30000: one re-query's deadline */
	int64_t found_balance_fen;	/* 100000: a deposit's available
					   balance rising above it is FOUND */
	uint32_t expiry_window_days;	/* 30: EXPIRING this close to expiry */
	uint32_t expiry_check_s;	/* 3600: how often (broker clock) */
};

void ck_watch_conf_defaults(struct ck_watch_conf *w);
/*
 * One key = value of [watch]. Returns 0, or -1 with a message naming the
 * key and the rule in err.
 */
int ck_watch_conf_set(struct ck_watch_conf *w, const char *key,
    const char *value, char *err, size_t errlen);

#endif
