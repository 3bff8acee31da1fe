/*
 * call.c: the asynchronous glue shared by every adapter (see call.h for
 * the states of a call). A leg's states:
 *
 *   UNSET --query_leg/action_leg--> READY --rpc_start--> INFLIGHT
 *   READY/INFLIGHT --answer, deadline, rpc_start failing--> ANSWERED
 *   UNSET --query_answer--> ANSWERED
 *
 * The call, its legs and everything mapped live in the call's arena; the
 * only other allocation is the libevent timer.
 */
#include <stddef.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "call.h"

enum call_state {
	CALL_NEW,
	CALL_RUNNING,
	CALL_DONE, /* done() is running; freed when it returns */
};

enum leg_state {
	LEG_UNSET,
	LEG_READY,
	LEG_INFLIGHT,
	LEG_ANSWERED,
};

struct leg {
	struct ck_ad_call *call;
	size_t index;
	enum leg_state state;
	struct ck_channel *ch;
	struct ck_rpc *rpc;
	const char *path;
	const uint8_t *req;
	size_t len;
	ck_ad_query_map_fn map;
	const void *map_arg;
};

struct ck_ad_call {
	const struct ck_host *host;
	struct ck_ad_arena *arena;
	const char *adapter;
	const char *log_id;
	enum ck_op op;
	enum call_state state;
	bool background;		/* origin "scheduled": queue behind */
	uint64_t budget;
	uint64_t t0;
	struct event *ev;
	ck_done_cb done;
	void *done_arg;
	size_t nlegs, npending;
	struct leg *legs;
	struct ck_source_result *sources; /* queries: one per leg */
	ck_ad_action_map_fn action_map;
	struct ck_result res;
};

static uint64_t
mono_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t
ck_ad_collect_usec(uint64_t budget)
{
	uint64_t reserve = budget / 100;

	if (reserve > 2000)
		reserve = 2000;
	return budget - reserve;
}

int
ck_ad_call_new(const struct ck_host *host, const char *adapter,
    const struct ck_agency_call *call, size_t nlegs, struct ck_ad_call **out)
{
	struct ck_ad_arena *a = ck_ad_arena_new();
	struct ck_ad_call *c;

	if (a == NULL)
		return CK_ENOMEM;
	c = ck_ad_arena_alloc(a, sizeof(*c));
	if (c == NULL)
		goto fail;
	c->host = host;
	c->arena = a;
	c->adapter = adapter;
	c->log_id =
	    ck_ad_arena_strdup(a, call->log_id != NULL ? call->log_id : "-");
	c->op = call->op;
	c->state = CALL_NEW;
	c->background = call->origin != NULL &&
	    strcmp(call->origin, "scheduled") == 0;
	c->budget = call->timeout_usec;
	c->nlegs = nlegs;
	c->legs = ck_ad_arena_calloc(a, nlegs, sizeof(*c->legs));
	if (c->op == CK_OP_QUERY)
		c->sources = ck_ad_arena_calloc(a, nlegs, sizeof(*c->sources));
	if (c->log_id == NULL || c->legs == NULL ||
	    (c->op == CK_OP_QUERY && c->sources == NULL))
		goto fail;
	for (size_t i = 0; i < nlegs; i++) {
		c->legs[i].call = c;
		c->legs[i].index = i;
	}
	c->res.size = sizeof(c->res);
	*out = c;
	return 0;
fail:
	ck_ad_arena_free(a);
	return CK_ENOMEM;
}

struct ck_ad_arena *
ck_ad_call_arena(struct ck_ad_call *c)
{
	return c->arena;
}

static void
call_free(struct ck_ad_call *c)
{
	if (c->ev != NULL)
		event_free(c->ev);
	ck_ad_arena_free(c->arena);
}

void
ck_ad_call_free(struct ck_ad_call *c)
{
	if (c != NULL)
		call_free(c);
}

void
ck_ad_call_query_leg(struct ck_ad_call *c, size_t i, struct ck_channel *ch,
    const char *source, enum ck_category category, const char *path,
    const uint8_t *req, size_t len, ck_ad_query_map_fn map, const void *map_arg)
{
	struct leg *l = &c->legs[i];

	l->state = LEG_READY;
	l->ch = ch;
	l->path = path;
	l->req = req;
	l->len = len;
	l->map = map;
	l->map_arg = map_arg;
	c->sources[i].source = source;
	c->sources[i].category = category;
}

void
ck_ad_call_query_answer(struct ck_ad_call *c, size_t i, const char *source,
    enum ck_category category, enum ck_source_status status,
    const char *message)
{
	c->legs[i].state = LEG_ANSWERED;
	c->sources[i].source = source;
	c->sources[i].category = category;
	ck_ad_source_set(&c->sources[i], status, message);
}

void
ck_ad_call_action_leg(struct ck_ad_call *c, struct ck_channel *ch,
    const char *path, const uint8_t *req, size_t len, ck_ad_action_map_fn map)
{
	struct leg *l = &c->legs[0];

	l->state = LEG_READY;
	l->ch = ch;
	l->path = path;
	l->req = req;
	l->len = len;
	c->action_map = map;
}

static const char *
status_name(enum ck_source_status st)
{
	switch (st) {
	case CK_SOURCE_OK:
		return "ok";
	case CK_SOURCE_NOT_FOUND:
		return "not-found";
	case CK_SOURCE_TIMEOUT:
		return "timeout";
	case CK_SOURCE_UNAVAILABLE:
		return "unavailable";
	case CK_SOURCE_ERROR:
		return "error";
	case CK_SOURCE_DENIED:
		return "denied";
	}
	return "?";
}

/* Map one leg's reply; never fails (out of memory becomes ERROR). */
static void
answer(struct leg *l, const struct ck_ad_reply *r)
{
	struct ck_ad_call *c = l->call;
	const struct ck_host *h = c->host;
	struct ck_source_result *sr;
	int prio;

	l->state = LEG_ANSWERED;
	if (c->op != CK_OP_QUERY) {
		c->action_map(c->arena, c->op, r, &c->res);
		if (c->res.error != 0)
			h->log(4, c->log_id, "%s: action %d: %s (delivery %d)",
			    c->adapter, (int)c->op,
			    status_name((enum ck_source_status)c->res.error),
			    (int)c->res.delivery);
		return;
	}

	sr = &c->sources[l->index];
	l->map(c->arena, l->map_arg, r, sr);
	sr->latency_usec = mono_usec() - c->t0;
	prio = sr->status == CK_SOURCE_OK || sr->status == CK_SOURCE_NOT_FOUND
	    ? 7
	    : 4;
	h->log(prio, c->log_id, "%s: %s %s in %llu us (gRPC status %d)",
	    c->adapter, sr->source, status_name(sr->status),
	    (unsigned long long)sr->latency_usec, r->grpc_status);
}

static void
finish(struct ck_ad_call *c)
{
	event_del(c->ev);
	if (c->op == CK_OP_QUERY) {
		c->res.sources = c->sources;
		c->res.nsources = c->nlegs;
		c->res.error = 0;
		c->res.delivery = CK_DELIVERY_ANSWERED;
	}
	c->state = CALL_DONE;
	c->done(c->done_arg, &c->res);
	call_free(c);
}

static void
on_rpc(void *arg, int grpc_status, const char *message, const uint8_t *reply,
    size_t len, enum ck_delivery delivery)
{
	struct leg *l = arg;
	struct ck_ad_call *c = l->call;
	struct ck_ad_reply r = {
		.grpc_status = grpc_status,
		.message = message,
		.data = reply,
		.len = len,
		.delivery = delivery,
	};

	if (l->state != LEG_INFLIGHT || c->state != CALL_RUNNING)
		return; /* cannot happen under the host's contract */
	l->rpc = NULL;
	answer(l, &r);
	if (--c->npending == 0)
		finish(c);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct ck_ad_call *c = arg;
	const struct ck_ad_reply late = {
		.grpc_status = CK_GRPC_DEADLINE_EXCEEDED,
		.message = "adapter deadline",
		.delivery = CK_DELIVERY_IN_DOUBT,
	};

	(void)fd;
	(void)what;
	for (size_t i = 0; i < c->nlegs; i++) {
		struct leg *l = &c->legs[i];

		if (l->state != LEG_INFLIGHT)
			continue;
		c->host->rpc_cancel(l->rpc);
		l->rpc = NULL;
		answer(l, &late);
		c->npending--;
	}
	finish(c);
}

int
ck_ad_call_start(struct ck_ad_call *c, ck_done_cb done, void *arg)
{
	const struct ck_host *h = c->host;
	const struct ck_ad_reply unsent = {
		.grpc_status = CK_GRPC_UNAVAILABLE,
		.message = "the call could not be started",
		.delivery = CK_DELIVERY_NOT_SENT,
	};
	const struct ck_ad_reply unset = {
		.grpc_status = CK_GRPC_UNKNOWN,
		.message = "adapter left a leg unset",
		.delivery = CK_DELIVERY_NOT_SENT,
	};
	struct timeval tv = { 0, 0 };

	c->ev = evtimer_new(h->base, on_timer, c);
	if (c->ev == NULL)
		return CK_ENOMEM;
	c->done = done;
	c->done_arg = arg;
	c->t0 = mono_usec();
	c->state = CALL_RUNNING;
	for (size_t i = 0; i < c->nlegs; i++) {
		struct leg *l = &c->legs[i];
		int rc;

		if (l->state == LEG_UNSET) {
			if (c->op == CK_OP_QUERY)
				ck_ad_call_query_answer(c, i, "?", 0,
				    CK_SOURCE_ERROR, unset.message);
			else
				ck_ad_action_error(c->arena, &unset, &c->res);
			continue;
		}
		if (l->state != LEG_READY)
			continue;
		rc = h->rpc_start(l->ch, l->path, l->req, l->len, c->budget,
		    c->log_id, on_rpc, l, &l->rpc);
		if (rc < 0) {
			l->rpc = NULL;
			answer(l, &unsent);
			continue;
		}
		if (c->background && h->size >= offsetof(struct ck_host,
		    rpc_set_background) + sizeof(h->rpc_set_background) &&
		    h->rpc_set_background != NULL)
			h->rpc_set_background(l->rpc);
		l->state = LEG_INFLIGHT;
		c->npending++;
	}

	if (c->npending > 0) {
		uint64_t t = ck_ad_collect_usec(c->budget);

		if (c->budget == 0)
			return 0; /* no budget: the rpcs' own caps end it */
		tv.tv_sec = (time_t)(t / 1000000u);
		tv.tv_usec = (suseconds_t)(t % 1000000u);
	}
	/* nothing in flight: answer from the loop, never from start() */
	if (evtimer_add(c->ev, &tv) < 0 && c->npending == 0) {
		c->state = CALL_NEW;
		return CK_ENOMEM; /* nothing was sent */
	}
	return 0;
}

void
ck_ad_call_cancel(struct ck_ad_call *c)
{
	if (c == NULL || c->state == CALL_DONE)
		return;
	for (size_t i = 0; i < c->nlegs; i++) {
		struct leg *l = &c->legs[i];

		if (l->state == LEG_INFLIGHT) {
			c->host->rpc_cancel(l->rpc);
			l->rpc = NULL;
		}
	}
	call_free(c);
}
