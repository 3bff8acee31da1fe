/*
 * clock.c: the one wall clock (see clock.h). The simulated time is
 * anchor_sim + (real - anchor_real) * rate; a change re-anchors at the
 * current reading so the clock never runs backwards by accident.
 */
#include "clock.h"

#include <pthread.h>
#include <time.h>

#include "chakong/status.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static bool moved;
static uint64_t anchor_real, anchor_sim;
static uint32_t rate = 1;
static struct {
	ck_clock_cb cb;
	void *arg;
} watchers[CK_CLOCK_MAX_WATCHERS];

#ifdef CK_TEST_HOOKS
static void
notify(void)
{
	for (size_t i = 0; i < CK_CLOCK_MAX_WATCHERS; i++)
		if (watchers[i].cb != NULL)
			watchers[i].cb(watchers[i].arg);
}
#endif

int
ck_clock_watch(ck_clock_cb cb, void *arg)
{
	for (size_t i = 0; i < CK_CLOCK_MAX_WATCHERS; i++)
		if (watchers[i].cb == NULL) {
			watchers[i].cb = cb;
			watchers[i].arg = arg;
			return 0;
		}
	return CK_ELIMIT;
}

void
ck_clock_unwatch(ck_clock_cb cb, void *arg)
{
	for (size_t i = 0; i < CK_CLOCK_MAX_WATCHERS; i++)
		if (watchers[i].cb == cb && watchers[i].arg == arg)
			watchers[i].cb = NULL;
}

static uint64_t
real_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t
sim_at(uint64_t real)
{
	return anchor_sim + (real - anchor_real) * rate;
}

uint64_t
ck_clock_now_usec(void)
{
	uint64_t now;

	if (!__atomic_load_n(&moved, __ATOMIC_ACQUIRE))
		return real_usec();
	pthread_mutex_lock(&lock);
	now = sim_at(real_usec());
	pthread_mutex_unlock(&lock);
	return now;
}

int64_t
ck_clock_now(void)
{
	return (int64_t)(ck_clock_now_usec() / 1000000u);
}

int
ck_clock_set(int64_t unix_s, int64_t jump_s, uint32_t new_rate)
{
#ifdef CK_TEST_HOOKS
	uint64_t real, sim;

	if (new_rate > 1000000 || unix_s < 0)
		return CK_EINVAL;
	pthread_mutex_lock(&lock);
	real = real_usec();
	sim = moved ? sim_at(real) : real;
	if (unix_s > 0)
		sim = (uint64_t)unix_s * 1000000u;
	if (jump_s < 0 && (uint64_t)(-jump_s) * 1000000u > sim) {
		pthread_mutex_unlock(&lock);
		return CK_EINVAL;
	}
	sim += (uint64_t)jump_s * 1000000u;
	anchor_real = real;
	anchor_sim = sim;
	if (new_rate != 0)
		rate = new_rate;
	__atomic_store_n(&moved, true, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&lock);
	notify();
	return 0;
#else
	(void)unix_s;
	(void)jump_s;
	(void)new_rate;
	return CK_EPERM;
#endif
}

uint32_t
ck_clock_rate(void)
{
	return __atomic_load_n(&moved, __ATOMIC_ACQUIRE) ? rate : 1;
}

bool
ck_clock_moved(void)
{
	return __atomic_load_n(&moved, __ATOMIC_ACQUIRE);
}
