/*
 * testing.h: chakong.test.v1.Testing, the methods only test builds serve
 * (meson -Dtest_hooks=true): Sleep (answers after a delay, for deadline and
 * drain tests) and SetClock (moves broker/clock.h). chakongd and the agency
 * simulator put CK_TESTING_METHODS in their method tables, so both are
 * controlled the same way. A release build has neither.
 */
#ifndef CK_TESTING_H
#define CK_TESTING_H

#ifdef CK_TEST_HOOKS
#include "rpc.h"
#include "testing.pb-c.h"

void ck_testing_sleep(struct ck_call *call);
void ck_testing_set_clock(struct ck_call *call);

#define CK_TESTING_METHODS                                                 \
	{ "/chakong.test.v1.Testing/Sleep",                                \
	    &chakong__test__v1__sleep_request__descriptor, ck_testing_sleep, \
	    CK_ACCESS_ANY, 0 },                                             \
	{ "/chakong.test.v1.Testing/SetClock",                             \
	    &chakong__test__v1__set_clock_request__descriptor,              \
	    ck_testing_set_clock, CK_ACCESS_ANY, 0 }
#endif

#endif
