/*
 * testing.c: handlers of chakong.test.v1.Testing (see testing.h); compiled
 * to nothing without test hooks.
 */
#include "testing.h"

#ifdef CK_TEST_HOOKS
#include <event2/event.h>

#include "clock.h"
#include "grpc_frame.h"
#include "log.h"

struct sleep_state {
	struct event *ev;
	int64_t ms;
};

static void
on_sleep_done(evutil_socket_t fd, short what, void *arg)
{
	struct ck_call *call = arg;
	struct sleep_state *st = call->handler_data;
	Chakong__Test__V1__SleepReply reply =
	    CHAKONG__TEST__V1__SLEEP_REPLY__INIT;

	(void)fd;
	(void)what;
	event_free(st->ev);
	st->ev = NULL;
	call->on_cancel = NULL;
	reply.slept_ms = st->ms;
	ck_call_reply(call, &reply.base);
}

static void
on_sleep_cancel(struct ck_call *call)
{
	struct sleep_state *st = call->handler_data;

	if (st->ev != NULL) {
		event_free(st->ev);
		st->ev = NULL;
	}
}

void
ck_testing_sleep(struct ck_call *call)
{
	const Chakong__Test__V1__SleepRequest *req =
	    (const Chakong__Test__V1__SleepRequest *)call->request;
	struct sleep_state *st;

	if (req->millis < 0 || req->millis > 600000) {
		ck_call_fail(call, CK_GRPC_INVALID_ARGUMENT,
		    "millis: must be between 0 and 600000");
		return;
	}
	st = ck_call_alloc(call, sizeof(*st));
	if (st == NULL || (st->ev = evtimer_new(call->base, on_sleep_done,
	    call)) == NULL) {
		ck_call_fail(call, CK_GRPC_RESOURCE_EXHAUSTED,
		    "server out of memory");
		return;
	}
	st->ms = req->millis;
	call->handler_data = st;
	call->on_cancel = on_sleep_cancel;
	struct timeval tv = {
		.tv_sec = (time_t)(req->millis / 1000),
		.tv_usec = (suseconds_t)(req->millis % 1000) * 1000,
	};
	evtimer_add(st->ev, &tv);
}

void
ck_testing_set_clock(struct ck_call *call)
{
	const Chakong__Test__V1__SetClockRequest *req =
	    (const Chakong__Test__V1__SetClockRequest *)call->request;
	Chakong__Test__V1__SetClockReply reply =
	    CHAKONG__TEST__V1__SET_CLOCK_REPLY__INIT;

	if (ck_clock_set(req->set_unix_s, req->jump_s, req->rate) != 0) {
		ck_call_fail(call, CK_GRPC_INVALID_ARGUMENT, "set_unix_s, "
		    "jump_s, rate: the clock cannot go before 1970 and rate "
		    "is at most 1000000");
		return;
	}
	reply.now_unix_s = ck_clock_now();
	reply.rate = ck_clock_rate();
	log_notice(call->log_id, "test clock set: now=%lld rate=%u",
	    (long long)reply.now_unix_s, reply.rate);
	ck_call_reply(call, &reply.base);
}
#endif
