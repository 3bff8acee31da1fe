/*
 * test_watch.c: the [watch] settings (watch_conf.c), the clock's watchers
 * (clock.c: how the scheduler hears that a test moved the clock) and the
 * policy check every scheduled re-query passes (watch.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "chakong/status.h"
#include "clock.h"
#include "config.h"
#include "util.h"
#include "policy.h"
#include "watch.h"
#include "watch_conf.h"

static void
test_defaults(void **state)
{
	struct ck_watch_conf w;

	(void)state;
	ck_watch_conf_defaults(&w);
	assert_int_equal(w.period_months, 6);
	assert_int_equal(w.span_months, 60);
	assert_int_equal(w.rate, 10);
	assert_int_equal(w.max_concurrent, 4);
	assert_int_equal(w.window_start_min, w.window_end_min);
	assert_int_equal(w.expiry_window_days, 30);
	assert_int_equal(w.found_balance_fen, 100000);
}

static void
test_keys(void **state)
{
	struct ck_watch_conf w;
	char err[256];

	(void)state;
	ck_watch_conf_defaults(&w);
	assert_int_equal(ck_watch_conf_set(&w, "period_months", "3", err,
	    sizeof(err)), 0);
	assert_int_equal(w.period_months, 3);
	assert_int_equal(ck_watch_conf_set(&w, "found_balance_fen",
	    "5000000", err, sizeof(err)), 0);
	assert_int_equal(w.found_balance_fen, 5000000);
	assert_int_equal(ck_watch_conf_set(&w, "window", "22:00-06:30", err,
	    sizeof(err)), 0);
	assert_int_equal(w.window_start_min, 22 * 60);
	assert_int_equal(w.window_end_min, 6 * 60 + 30);
	assert_int_equal(ck_watch_conf_set(&w, "window", "", err,
	    sizeof(err)), 0);
	assert_int_equal(w.window_start_min, w.window_end_min);

	assert_int_equal(ck_watch_conf_set(&w, "rate", "0", err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "rate: must be between 1"));
	assert_int_equal(ck_watch_conf_set(&w, "span_months", "-5", err,
	    sizeof(err)), -1);
	assert_int_equal(ck_watch_conf_set(&w, "max_concurrent", "4x", err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "max_concurrent: expected a whole"));
	assert_int_equal(ck_watch_conf_set(&w, "window", "25:00-01:00", err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "window: expected HH:MM-HH:MM"));
	assert_int_equal(ck_watch_conf_set(&w, "window", "01:00-02:00x", err,
	    sizeof(err)), -1);
	assert_int_equal(ck_watch_conf_set(&w, "speed", "1", err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "unknown key \"speed\" in [watch]"));
}

static int heard;

static void
on_moved(void *arg)
{
	heard += *(int *)arg;
}

static void
test_clock_watchers(void **state)
{
	int one = 1, ten = 10;

	(void)state;
	assert_int_equal(ck_clock_watch(on_moved, &one), 0);
	assert_int_equal(ck_clock_watch(on_moved, &ten), 0);
	heard = 0;
	assert_int_equal(ck_clock_set(0, 3600, 0), 0);
	assert_int_equal(heard, 11);
	ck_clock_unwatch(on_moved, &ten);
	assert_int_equal(ck_clock_set(0, 60, 0), 0);
	assert_int_equal(heard, 12);
	/* a refused change tells nobody */
	assert_int_equal(ck_clock_set(-1, 0, 0), CK_EINVAL);
	assert_int_equal(heard, 12);
	ck_clock_unwatch(on_moved, &one);
	assert_int_equal(ck_clock_set(0, 60, 0), 0);
	assert_int_equal(heard, 12);
	for (int i = 0; i < CK_CLOCK_MAX_WATCHERS; i++)
		assert_int_equal(ck_clock_watch(on_moved, &one), 0);
	assert_int_equal(ck_clock_watch(on_moved, &ten), CK_ELIMIT);
	ck_clock_unwatch(on_moved, &one);
}

static void
test_policy(void **state)
{
	static struct ck_config cfg;
	char why[200], err[200];
	uint32_t all = CK_CATEGORY_BIT(CK_CATEGORY_DEPOSIT) |
	    CK_CATEGORY_BIT(CK_CATEGORY_VEHICLE), cats = all;

	(void)state;
	ck_config_defaults(&cfg);
	/* 440100 may Query everything; 440600 deposits only */
	assert_int_equal(ck_policy_conf_set(&cfg.policy, "court:440100",
	    "grant", "all", 1, err, sizeof(err)), 0);
	assert_int_equal(ck_policy_conf_set(&cfg.policy, "court:440600",
	    "Query", "deposit", 2, err, sizeof(err)), 0);
	assert_int_equal(ck_policy_conf_set(&cfg.policy, "court:440600",
	    "courts", "*", 3, err, sizeof(err)), 0);
	ck_strlcpy(cfg.courts[0].id, "440100", sizeof(cfg.courts[0].id));
	ck_strlcpy(cfg.courts[0].prefixes[0], "粤01",
	    sizeof(cfg.courts[0].prefixes[0]));
	cfg.courts[0].nprefixes = 1;
	ck_strlcpy(cfg.courts[1].id, "440600", sizeof(cfg.courts[1].id));
	ck_strlcpy(cfg.courts[1].prefixes[0], "粤06",
	    sizeof(cfg.courts[1].prefixes[0]));
	cfg.courts[1].nprefixes = 1;
	cfg.ncourts = 2;

	assert_true(ck_watch_policy_check(&cfg, "440100", "GZ0001",
	    "(2019)粤01执123号", CK_ORIGIN_SCHEDULED, &cats, why, sizeof(why)));
	/* another court's case */
	assert_false(ck_watch_policy_check(&cfg, "440600", "FS0001",
	    "(2019)粤01执123号", CK_ORIGIN_SCHEDULED, &cats, why, sizeof(why)));
	assert_non_null(strstr(why, "does not belong to the calling court"));
	/* a court no longer configured */
	assert_false(ck_watch_policy_check(&cfg, "440300", "SZ0001",
	    "(2019)粤01执123号", CK_ORIGIN_SCHEDULED, &cats, why, sizeof(why)));
	assert_non_null(strstr(why, "no longer configured"));
	/* the prefix moved to another court by a reload */
	ck_strlcpy(cfg.courts[0].prefixes[0], "粤02",
	    sizeof(cfg.courts[0].prefixes[0]));
	assert_false(ck_watch_policy_check(&cfg, "440100", "GZ0001",
	    "(2019)粤01执123号", CK_ORIGIN_SCHEDULED, &cats, why, sizeof(why)));
	ck_strlcpy(cfg.courts[0].prefixes[0], "粤01",
	    sizeof(cfg.courts[0].prefixes[0]));
	assert_int_equal(cats, all);
	/* the access policy in force narrows the categories ... */
	assert_true(ck_watch_policy_check(&cfg, "440600", "FS0001",
	    "(2019)粤06执9号", CK_ORIGIN_SCHEDULED, &cats, why, sizeof(why)));
	assert_int_equal(cats, CK_CATEGORY_BIT(CK_CATEGORY_DEPOSIT));
	/* ... and refuses when none is left */
	cats = CK_CATEGORY_BIT(CK_CATEGORY_VEHICLE);
	assert_false(ck_watch_policy_check(&cfg, "440600", "FS0001",
	    "(2019)粤06执9号", CK_ORIGIN_SCHEDULED, &cats, why, sizeof(why)));
	assert_non_null(strstr(why, "right Query"));
	/* no policy at all: every scheduled re-query refused */
	ck_policy_free(cfg.policy);
	cfg.policy = NULL;
	cats = all;
	assert_false(ck_watch_policy_check(&cfg, "440100", "GZ0001",
	    "(2019)粤01执123号", CK_ORIGIN_SCHEDULED, &cats, why, sizeof(why)));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_clock_watchers),
		cmocka_unit_test(test_policy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
