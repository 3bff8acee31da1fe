/*
 * clock.h: the one wall clock. Every instant with meaning outside the
 * process — legal dates (UTC+8), expiry, re-query due dates, cache ages,
 * reference ages, audit times — comes from ck_clock_now(). Durations and
 * deadlines use the monotonic clock (ck_mono_usec) instead.
 *
 * Test builds can move this clock: jump it, set it, or make it run faster
 * than real time, so five years of re-queries pass in seconds. chakongd and
 * the agency simulator expose the same control (chakong.test.v1.Testing/
 * SetClock); a release build refuses every change. Safe to call from any
 * thread.
 */
#ifndef CK_CLOCK_H
#define CK_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

/* Unix time in microseconds and in seconds. */
uint64_t ck_clock_now_usec(void);
int64_t ck_clock_now(void);

/*
 * Test builds only (CK_EPERM otherwise). From now on the clock reads
 * `unix_s` (0: keep the current reading) plus `jump_s`, and advances
 * `rate` simulated seconds per real second (0: keep the current rate;
 * 1..1000000).
 */
int ck_clock_set(int64_t unix_s, int64_t jump_s, uint32_t rate);
/* Current rate, 1 unless a test changed it. */
uint32_t ck_clock_rate(void);
/* True when a test moved the clock. */
bool ck_clock_moved(void);

/*
 * Who sleeps until a wall-clock time (the re-query scheduler) must hear
 * when a test moves the clock: cb(arg) runs after every successful
 * ck_clock_set(), on the thread that called it (the event loop). At most
 * CK_CLOCK_MAX_WATCHERS; ck_clock_unwatch() removes one (NULL-safe).
 */
#define CK_CLOCK_MAX_WATCHERS 4
typedef void (*ck_clock_cb)(void *arg);
int ck_clock_watch(ck_clock_cb cb, void *arg);
void ck_clock_unwatch(ck_clock_cb cb, void *arg);

#endif
