/*
 * pool.c: outbound channels to agency endpoints (see pool.h for what an
 * endpoint promises). One struct ck_channel per configured endpoint; each
 * owns up to `connections` grpc_client channels in slots, the calls
 * waiting for a slot, the token bucket, the backoff and the breaker.
 *
 * A call (struct ck_rpc) is on exactly one list of its endpoint, the one
 * of its state:
 *
 *   start --breaker, backoff, queue full--> FAILING --rpc event--> cb
 *     |
 *     +--a slot and a token--> SENT --transport answers--> cb
 *     |                         ^  |
 *     |                         |  +--not sent on a connection that was
 *     |                         |     up, time left, first time--> SENT
 *     +--otherwise--> QUEUED ---+ (slot freed, token due)
 *                       |
 *                       +--deadline, breaker opened, backoff, displaced
 *                          by an interactive call--> FAILING
 *
 *   ck_pool_rpc_cancel() in any of them: off its list, the transport
 *   call reset, freed, no callback. DONE is only the callback itself.
 *
 * The breaker of an endpoint:
 *
 *   CLOSED --breaker_failures consecutive failures--> OPEN
 *   OPEN --breaker_open_ms later, the next call--> HALF_OPEN (it probes)
 *   HALF_OPEN --probe succeeds--> CLOSED    --probe fails--> OPEN
 *   HALF_OPEN --probe refused here or cancelled--> HALF_OPEN (next probes)
 *
 * A slot is empty until a call needs it (and the endpoint is not backing
 * off), then holds a channel; a channel that became unusable is retired:
 * moved to the endpoint's `retired` list, which keeps it until its last
 * call has ended, and freed from the endpoint's own `maint` event, never
 * from inside a channel's callback (that would drop the callbacks of
 * calls it has yet to deliver).
 *
 * Callbacks run from the grpc_client's deferred work event (SENT calls)
 * or from the call's own event (FAILING, and QUEUED at its deadline), so
 * never from inside ck_pool_rpc_start().
 */
#include "pool.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/rand.h>

#include "chakong/status.h"
#include "grpc_client.h"
#include "histogram.h"
#include "log.h"
#include "metrics.h"
#include "tls.h"
#include "util.h"

#define BACKOFF_MIN_USEC 100000u
#define BACKOFF_MAX_USEC 10000000u
#define MAX_CONNECTIONS	 64u
/* A retry must have at least this much of its deadline left. */
#define RETRY_MIN_USEC 1000u

enum rpc_state {
	RPC_QUEUED,  /* on fg or bg: waiting for a slot or a token */
	RPC_SENT,    /* on sent: a transport call on a channel */
	RPC_FAILING, /* on failing: refused here, callback pending */
	RPC_DONE,    /* in its callback, on no list */
};

TAILQ_HEAD(rpc_list, ck_rpc);

struct pchan;

struct ck_rpc {
	TAILQ_ENTRY(ck_rpc) link;
	struct ck_channel *ep;
	enum rpc_state state;
	bool background;
	bool probe; /* the breaker's half-open probe */
	bool retried;
	ck_rpc_cb cb;
	void *arg;
	struct pchan *pc; /* SENT: the channel it went to */
	struct ck_grpc_call *call;
	struct event *ev;  /* QUEUED deadline, FAILING callback */
	uint64_t deadline; /* ck_mono_usec() */
	uint64_t queued_at;
	uint64_t sent_at;
	/* FAILING: what the callback will say */
	int status;
	char message[224];
	char log_id[48];
	const char *path; /* into data */
	const uint8_t *req;
	size_t len;
	char data[]; /* path, NUL, request bytes */
};

/* One grpc_client channel and what the pool knows about it. */
struct pchan {
	TAILQ_ENTRY(pchan) link; /* on retired */
	struct ck_channel *ep;
	struct ck_grpc_channel *chan;
	bool up; /* it reached READY */
};

TAILQ_HEAD(pchan_list, pchan);

struct ck_channel {
	struct ck_pool *pool;
	struct ck_endpoint_conf conf;
	char host[128];
	uint16_t port;

	struct pchan **slots; /* conf.connections */
	bool *slot_used;      /* it has held a channel before */
	struct pchan_list retired;
	SSL_SESSION *session; /* newest resumable, for the next one */
	struct event *maint;  /* free retired channels, pump the queue */

	/* backoff after a failed connect */
	uint32_t backoff_n;	/* consecutive failed connects */
	uint64_t backoff_until; /* pool clock */
	char last_error[192];

	/* caps */
	double tokens;
	uint64_t tokens_at; /* pool clock */
	uint32_t inflight;
	uint32_t nqueued;
	struct rpc_list fg, bg, sent, failing;

	/* breaker */
	enum ck_breaker_state breaker;
	uint32_t failures;  /* consecutive, while CLOSED */
	uint64_t opened_at; /* pool clock */
	struct ck_rpc *probe;

	/* counters */
	uint64_t calls[CK_GRPC_NSTATUS];
	struct ck_hist lat;
	uint64_t opens, retries, connects, connect_failures, reconnects;
	uint64_t handshakes, resumed;
	uint64_t refused_breaker, refused_backoff, refused_full;
	uint64_t refused_timeout;
};

struct ck_pool {
	struct event_base *base;
	SSL_CTX *ctx;
	struct ck_channel *eps;
	size_t neps;
	struct ck_pool_hooks hooks;
};

static void pump(struct ck_channel *ep);

/* ---- small things ---- */

static uint64_t
pool_now(const struct ck_pool *pool)
{
	if (pool->hooks.now_usec != NULL)
		return pool->hooks.now_usec(pool->hooks.arg);
	return ck_mono_usec();
}

static uint64_t
pool_random(const struct ck_pool *pool)
{
	uint64_t r;

	if (pool->hooks.random != NULL)
		return pool->hooks.random(pool->hooks.arg);
	if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
		r = ck_mono_usec() * 0x9e3779b97f4a7c15ull;
	return r;
}

static struct timeval
usec_tv(uint64_t usec)
{
	struct timeval tv = {
		.tv_sec = (time_t)(usec / 1000000),
		.tv_usec = (suseconds_t)(usec % 1000000),
	};

	return tv;
}

static enum ck_delivery
delivery_of(enum ck_grpc_delivery d)
{
	switch (d) {
	case CK_GRPC_NOT_SENT:
		return CK_DELIVERY_NOT_SENT;
	case CK_GRPC_ANSWERED:
		return CK_DELIVERY_ANSWERED;
	case CK_GRPC_IN_DOUBT:
		break;
	}
	return CK_DELIVERY_IN_DOUBT;
}

static const char *
delivery_name(enum ck_delivery d)
{
	switch (d) {
	case CK_DELIVERY_ANSWERED:
		return "answered";
	case CK_DELIVERY_NOT_SENT:
		return "not sent";
	case CK_DELIVERY_IN_DOUBT:
		break;
	}
	return "in doubt";
}

/* Whether an outcome says the endpoint is unwell (see pool.h). */
static bool
is_failure(int status)
{
	switch (status) {
	case CK_GRPC_UNAVAILABLE:
	case CK_GRPC_DEADLINE_EXCEEDED:
	case CK_GRPC_INTERNAL:
	case CK_GRPC_UNKNOWN:
	case CK_GRPC_RESOURCE_EXHAUSTED:
		return true;
	default:
		return false;
	}
}

const char *
ck_breaker_state_name(enum ck_breaker_state st)
{
	switch (st) {
	case CK_BREAKER_CLOSED:
		return "closed";
	case CK_BREAKER_HALF_OPEN:
		return "half-open";
	case CK_BREAKER_OPEN:
		return "open";
	}
	return "unknown";
}

/* ---- calls: lists, callbacks, refusals ---- */

static struct rpc_list *
list_of(struct ck_rpc *rpc)
{
	struct ck_channel *ep = rpc->ep;

	switch (rpc->state) {
	case RPC_QUEUED:
		return rpc->background ? &ep->bg : &ep->fg;
	case RPC_SENT:
		return &ep->sent;
	case RPC_FAILING:
		return &ep->failing;
	case RPC_DONE:
		break;
	}
	return NULL;
}

static void
rpc_unlink(struct ck_rpc *rpc)
{
	struct rpc_list *l = list_of(rpc);

	if (l != NULL)
		TAILQ_REMOVE(l, rpc, link);
	if (rpc->state == RPC_QUEUED)
		rpc->ep->nqueued--;
	if (rpc->ev != NULL)
		event_del(rpc->ev);
}

/* A probe that ends without an answer leaves the next call to probe. */
static void
drop_probe(struct ck_rpc *rpc)
{
	if (rpc->probe && rpc->ep->probe == rpc)
		rpc->ep->probe = NULL;
	rpc->probe = false;
}

static void
rpc_free(struct ck_rpc *rpc)
{
	if (rpc->ev != NULL)
		event_free(rpc->ev);
	free(rpc);
}

static void
rpc_set_state(struct ck_rpc *rpc, enum rpc_state st)
{
	rpc->state = st;
	if (st != RPC_DONE)
		TAILQ_INSERT_TAIL(list_of(rpc), rpc, link);
	if (st == RPC_QUEUED)
		rpc->ep->nqueued++;
}

/* The one way a call ends: count it, run its callback, free it. */
static void
rpc_finish(struct ck_rpc *rpc, int status, const char *message,
    const uint8_t *reply, size_t len, enum ck_delivery delivery)
{
	struct ck_channel *ep = rpc->ep;

	if (status < 0 || status >= CK_GRPC_NSTATUS)
		status = CK_GRPC_UNKNOWN;
	drop_probe(rpc);
	ep->calls[status]++;
	if (status != CK_GRPC_OK)
		log_debug(rpc->log_id, "endpoint %s: %s %s: %s (%s)",
		    ep->conf.name, rpc->path, ck_grpc_status_name(status),
		    message, delivery_name(delivery));
	rpc->state = RPC_DONE;
	rpc->cb(rpc->arg, status, message, reply, len, delivery);
	rpc_free(rpc);
}

static void
on_rpc_event(evutil_socket_t fd, short what, void *arg)
{
	struct ck_rpc *rpc = arg;
	struct ck_channel *ep = rpc->ep;
	char msg[sizeof(rpc->message)];

	(void)fd;
	(void)what;
	switch (rpc->state) {
	case RPC_QUEUED:
		rpc_unlink(rpc);
		ep->refused_timeout++;
		snprintf(msg, sizeof(msg),
		    "not sent: deadline exceeded after %" PRIu64
		    " ms waiting in endpoint %s's queue (%u calls in "
		    "flight, cap %u; rate cap %u/s)",
		    (ck_mono_usec() - rpc->queued_at) / 1000, ep->conf.name,
		    ep->inflight, ep->conf.max_concurrent, ep->conf.rate);
		rpc_finish(rpc, CK_GRPC_DEADLINE_EXCEEDED, msg, NULL, 0,
		    CK_DELIVERY_NOT_SENT);
		return;
	case RPC_FAILING:
		rpc_unlink(rpc);
		rpc_finish(rpc, rpc->status, rpc->message, NULL, 0,
		    CK_DELIVERY_NOT_SENT);
		return;
	case RPC_SENT:
	case RPC_DONE:
		break;
	}
}

static int
rpc_event(struct ck_rpc *rpc)
{
	if (rpc->ev == NULL) {
		rpc->ev = evtimer_new(rpc->ep->pool->base, on_rpc_event, rpc);
		if (rpc->ev == NULL)
			return CK_ENOMEM;
	}
	return 0;
}

/*
 * Refuse a call that is on no list: its callback runs from its own
 * event, never from here (the caller may be ck_pool_rpc_start()).
 * Returns < 0 only when even that is impossible (out of memory); the
 * caller then owns the call still.
 */
static int fail_later(struct ck_rpc *rpc, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail_later(struct ck_rpc *rpc, int status, const char *fmt, ...)
{
	struct timeval zero = { 0, 0 };
	va_list ap;

	if (rpc_event(rpc) < 0)
		return CK_ENOMEM;
	va_start(ap, fmt);
	vsnprintf(rpc->message, sizeof(rpc->message), fmt, ap);
	va_end(ap);
	rpc->status = status;
	drop_probe(rpc);
	rpc_set_state(rpc, RPC_FAILING);
	evtimer_add(rpc->ev, &zero);
	return 0;
}

/* Refuse every queued call (the breaker opened, or no connection). */
static void
fail_queue(struct ck_channel *ep, uint64_t *counter, const char *why)
{
	struct ck_rpc *rpc;

	while ((rpc = TAILQ_FIRST(&ep->fg)) != NULL ||
	    (rpc = TAILQ_FIRST(&ep->bg)) != NULL) {
		rpc_unlink(rpc);
		(*counter)++;
		if (fail_later(rpc, CK_GRPC_UNAVAILABLE, "%s", why) < 0)
			/* No event to defer with: we are in an event of our
			 * own, never in ck_pool_rpc_start(). */
			rpc_finish(rpc, CK_GRPC_UNAVAILABLE, why, NULL, 0,
			    CK_DELIVERY_NOT_SENT);
	}
}

/* ---- the breaker ---- */

static void
breaker_open(struct ck_channel *ep, uint64_t now)
{
	char why[sizeof(ep->last_error) + 96];

	ep->breaker = CK_BREAKER_OPEN;
	ep->opened_at = now;
	ep->opens++;
	ep->failures = 0;
	log_warn("-", "endpoint %s: circuit breaker open for %u ms%s%s",
	    ep->conf.name, ep->conf.breaker_open_ms,
	    ep->last_error[0] != '\0' ? "; last error: " : "", ep->last_error);
	snprintf(why, sizeof(why),
	    "not sent: circuit breaker open for endpoint %s%s%s", ep->conf.name,
	    ep->last_error[0] != '\0' ? " after: " : "", ep->last_error);
	fail_queue(ep, &ep->refused_breaker, why);
}

/*
 * May this call go? In OPEN the first call after breaker_open_ms becomes
 * the half-open probe. Writes the refusal into why.
 */
static bool
breaker_admit(struct ck_channel *ep, struct ck_rpc *rpc, uint64_t now,
    char *why, size_t whylen)
{
	uint64_t open_usec = (uint64_t)ep->conf.breaker_open_ms * 1000;

	switch (ep->breaker) {
	case CK_BREAKER_CLOSED:
		return true;
	case CK_BREAKER_OPEN:
		if (now - ep->opened_at < open_usec) {
			snprintf(why, whylen,
			    "not sent: circuit breaker open for endpoint "
			    "%s (%" PRIu64 " ms left)%s%s",
			    ep->conf.name,
			    (open_usec - (now - ep->opened_at) + 999) / 1000,
			    ep->last_error[0] != '\0' ? "; last error: " : "",
			    ep->last_error);
			return false;
		}
		ep->breaker = CK_BREAKER_HALF_OPEN;
		log_notice(rpc->log_id,
		    "endpoint %s: circuit breaker half-open, probing",
		    ep->conf.name);
		/* fall through */
	case CK_BREAKER_HALF_OPEN:
		if (ep->probe != NULL) {
			snprintf(why, whylen,
			    "not sent: circuit breaker half-open for "
			    "endpoint %s: waiting for the probe call",
			    ep->conf.name);
			return false;
		}
		ep->probe = rpc;
		rpc->probe = true;
		return true;
	}
	return true;
}

/* An answer from the transport or the agency. */
static void
breaker_record(
    struct ck_channel *ep, struct ck_rpc *rpc, int status, const char *message)
{
	bool fail = is_failure(status);
	uint64_t now;

	if (fail)
		snprintf(ep->last_error, sizeof(ep->last_error), "%s: %s",
		    ck_grpc_status_name(status), message);
	if (rpc->probe) {
		rpc->probe = false;
		ep->probe = NULL;
		if (fail) {
			breaker_open(ep, pool_now(ep->pool));
		} else {
			ep->breaker = CK_BREAKER_CLOSED;
			ep->failures = 0;
			log_notice(rpc->log_id,
			    "endpoint %s: circuit breaker closed",
			    ep->conf.name);
		}
		return;
	}
	/* Calls sent before it opened tell nothing new. */
	if (ep->breaker != CK_BREAKER_CLOSED)
		return;
	if (!fail) {
		ep->failures = 0;
		return;
	}
	if (++ep->failures >= ep->conf.breaker_failures) {
		now = pool_now(ep->pool);
		breaker_open(ep, now);
	}
}

/* ---- channels ---- */

static bool
backing_off(const struct ck_channel *ep, uint64_t now)
{
	return now < ep->backoff_until;
}

static void
take_session(struct ck_channel *ep, struct ck_grpc_channel *chan)
{
	SSL_SESSION *s = ck_grpc_channel_get1_session(chan);

	if (s == NULL)
		return;
	SSL_SESSION_free(ep->session);
	ep->session = s;
}

/*
 * A connect failed: no new connection for a while. Full jitter, uniform
 * in 0 .. min(10 s, 100 ms * 2^(n-1)) after the n-th failure in a row,
 * so brokers that lost an agency together do not return in step.
 */
static void
backoff_start(struct ck_channel *ep)
{
	uint64_t ceiling, delay;
	double u;

	if (ep->backoff_n < 30)
		ep->backoff_n++;
	ceiling = (uint64_t)BACKOFF_MIN_USEC << (ep->backoff_n - 1);
	if (ceiling > BACKOFF_MAX_USEC)
		ceiling = BACKOFF_MAX_USEC;
	/* 53 random bits: a double in [0, 1]. */
	u = (double)(pool_random(ep->pool) >> 11) / (double)(1ull << 53);
	delay = (uint64_t)(u * (double)ceiling);
	ep->backoff_until = pool_now(ep->pool) + delay;
	log_warn("-",
	    "endpoint %s: connect failed (%s); no new connection for "
	    "%" PRIu64 " ms",
	    ep->conf.name, ep->last_error, delay / 1000);
}

/* Told by grpc_client; only records (see ck_grpc_state_cb). */
static void
on_chan_state(
    void *arg, struct ck_grpc_channel *chan, enum ck_grpc_channel_state st)
{
	struct pchan *pc = arg;
	struct ck_channel *ep = pc->ep;

	switch (st) {
	case CK_GRPC_CH_CONNECTING:
		ep->connects++;
		break;
	case CK_GRPC_CH_READY:
		pc->up = true;
		ep->handshakes++;
		if (ck_grpc_channel_session_reused(chan))
			ep->resumed++;
		ep->backoff_n = 0;
		ep->backoff_until = 0;
		break;
	case CK_GRPC_CH_DRAINING:
		event_active(ep->maint, EV_TIMEOUT, 0);
		break;
	case CK_GRPC_CH_CLOSED:
		snprintf(ep->last_error, sizeof(ep->last_error), "%s",
		    ck_grpc_channel_error(chan));
		if (!pc->up) {
			ep->connect_failures++;
			backoff_start(ep);
		} else {
			log_info("-", "endpoint %s: connection closed: %s",
			    ep->conf.name, ep->last_error);
		}
		event_active(ep->maint, EV_TIMEOUT, 0);
		break;
	case CK_GRPC_CH_IDLE:
		break;
	}
}

/* Out of its slot; freed by on_maint once its last call has ended. */
static void
retire(struct ck_channel *ep, size_t i)
{
	struct pchan *pc = ep->slots[i];

	ep->slots[i] = NULL;
	take_session(ep, pc->chan);
	TAILQ_INSERT_TAIL(&ep->retired, pc, link);
	event_active(ep->maint, EV_TIMEOUT, 0);
}

static struct pchan *
chan_make(struct ck_channel *ep, size_t i)
{
	struct ck_grpc_channel_opts o;
	struct pchan *pc;
	size_t j;

	pc = calloc(1, sizeof(*pc));
	if (pc == NULL)
		return NULL;
	pc->ep = ep;
	/* The freshest session any live connection has. */
	for (j = 0; j < ep->conf.connections; j++)
		if (ep->slots[j] != NULL && ep->slots[j]->up)
			take_session(ep, ep->slots[j]->chan);
	memset(&o, 0, sizeof(o));
	o.host = ep->host;
	o.port = ep->port;
	o.expect_host =
	    ep->conf.server_name[0] != '\0' ? ep->conf.server_name : NULL;
	o.expect_uri = ep->conf.identity;
	o.ssl_ctx = ep->pool->ctx;
	o.connect_timeout_ms = ep->conf.connect_timeout_ms;
	o.log_id = ep->conf.name;
	o.session = ep->session;
	o.on_state = on_chan_state;
	o.state_arg = pc;
	if (ck_grpc_channel_new(ep->pool->base, &o, &pc->chan) != 0) {
		free(pc);
		return NULL;
	}
	if (ep->slot_used[i])
		ep->reconnects++;
	ep->slot_used[i] = true;
	ep->slots[i] = pc;
	return pc;
}

/*
 * The least-loaded usable channel, making one in an empty slot when every
 * channel is busy (or there is none) and the endpoint is not backing off.
 * NULL when there is nothing to send on: why says so.
 */
static struct pchan *
pick(struct ck_channel *ep, uint64_t now, char *why, size_t whylen)
{
	struct pchan *best = NULL, *pc;
	size_t i, empty = SIZE_MAX, load, best_load = SIZE_MAX;

	for (i = 0; i < ep->conf.connections; i++) {
		pc = ep->slots[i];
		if (pc != NULL && !ck_grpc_channel_usable(pc->chan)) {
			retire(ep, i);
			pc = NULL;
		}
		if (pc == NULL) {
			if (empty == SIZE_MAX)
				empty = i;
			continue;
		}
		load = ck_grpc_channel_calls(pc->chan);
		if (load < best_load) {
			best = pc;
			best_load = load;
		}
	}
	if (best != NULL && (best_load == 0 || empty == SIZE_MAX))
		return best;
	if (empty != SIZE_MAX && !backing_off(ep, now)) {
		pc = chan_make(ep, empty);
		if (pc != NULL)
			return pc;
		if (best == NULL)
			snprintf(why, whylen,
			    "not sent: endpoint %s: out of memory for a "
			    "connection",
			    ep->conf.name);
		return best;
	}
	if (best == NULL)
		snprintf(why, whylen,
		    "not sent: endpoint %s is backing off for %" PRIu64
		    " ms after a failed connect: %s",
		    ep->conf.name, (ep->backoff_until - now + 999) / 1000,
		    ep->last_error);
	return best;
}

/* ---- sending ---- */

static void on_call_done(void *arg, int status, const char *message,
    const uint8_t *reply, size_t len);

static void
refill(struct ck_channel *ep, uint64_t now)
{
	if (ep->conf.rate == 0)
		return;
	if (now > ep->tokens_at) {
		ep->tokens +=
		    (double)(now - ep->tokens_at) * (double)ep->conf.rate / 1e6;
		if (ep->tokens > (double)ep->conf.burst)
			ep->tokens = (double)ep->conf.burst;
	}
	ep->tokens_at = now;
}

static bool
may_send(struct ck_channel *ep, uint64_t now)
{
	if (ep->inflight >= ep->conf.max_concurrent)
		return false;
	refill(ep, now);
	return ep->conf.rate == 0 || ep->tokens >= 1.0;
}

/*
 * Give a call (on no list) to a channel. Returns 0 with the call SENT or
 * FAILING, or < 0 with the call still on no list (out of memory).
 */
static int
send_rpc(struct ck_rpc *rpc, uint64_t now, bool take_token)
{
	struct ck_channel *ep = rpc->ep;
	uint64_t mono = ck_mono_usec(), left;
	char why[sizeof(rpc->message)];
	struct pchan *pc;
	int rc;

	if (rpc->deadline <= mono) {
		ep->refused_timeout++;
		return fail_later(rpc, CK_GRPC_DEADLINE_EXCEEDED,
		    "not sent: deadline exceeded before endpoint %s had "
		    "room",
		    ep->conf.name);
	}
	pc = pick(ep, now, why, sizeof(why));
	if (pc == NULL) {
		ep->refused_backoff++;
		return fail_later(rpc, CK_GRPC_UNAVAILABLE, "%s", why);
	}
	left = rpc->deadline - mono;
	rc = ck_grpc_call_start(pc->chan, rpc->path, rpc->req, rpc->len, left,
	    on_call_done, rpc, &rpc->call);
	if (rc < 0)
		return rc;
	if (take_token && ep->conf.rate != 0)
		ep->tokens -= 1.0;
	rpc->pc = pc;
	rpc->sent_at = mono;
	ep->inflight++;
	rpc_set_state(rpc, RPC_SENT);
	return 0;
}

static void
on_call_done(void *arg, int status, const char *message, const uint8_t *reply,
    size_t len)
{
	struct ck_rpc *rpc = arg;
	struct ck_channel *ep = rpc->ep;
	enum ck_delivery d = delivery_of(ck_grpc_call_delivery(rpc->call));
	uint64_t mono = ck_mono_usec();
	struct pchan *pc = rpc->pc;
	int rc;

	rpc_unlink(rpc);
	ep->inflight--;
	rpc->call = NULL; /* dies when we return */
	rpc->pc = NULL;
	if (!TAILQ_EMPTY(&ep->retired))
		event_active(ep->maint, EV_TIMEOUT, 0);
	/*
	 * Refused by a connection that was up (GOAWAY, REFUSED_STREAM, the
	 * connection lost before our HEADERS left): never delivered, so
	 * once more elsewhere. A connect failure is not retried: the
	 * backoff decides when to try that again.
	 */
	if (d == CK_DELIVERY_NOT_SENT && status == CK_GRPC_UNAVAILABLE &&
	    !rpc->retried && pc->up && rpc->deadline > mono + RETRY_MIN_USEC) {
		rpc->retried = true;
		ep->retries++;
		log_debug(rpc->log_id, "endpoint %s: %s: retrying: %s",
		    ep->conf.name, rpc->path, message);
		rc = send_rpc(rpc, pool_now(ep->pool), false);
		if (rc == 0)
			return;
	}
	ck_hist_observe(&ep->lat, mono - rpc->sent_at);
	breaker_record(ep, rpc, status, message);
	/* Whoever waited for the slot goes first. */
	pump(ep);
	rpc_finish(rpc, status, message, reply, len, d);
}

/* Put a call (on no list) in the queue; the queue may be full. */
static int
enqueue(struct ck_rpc *rpc)
{
	struct ck_channel *ep = rpc->ep;
	struct ck_rpc *victim;
	uint64_t mono = ck_mono_usec();
	struct timeval tv;

	if (ep->nqueued >= ep->conf.max_queue) {
		victim = rpc->background ? NULL : TAILQ_LAST(&ep->bg, rpc_list);
		if (victim == NULL) {
			ep->refused_full++;
			return fail_later(rpc, CK_GRPC_UNAVAILABLE,
			    "not sent: endpoint %s's queue is full (%u "
			    "calls waiting, %u in flight)",
			    ep->conf.name, ep->nqueued, ep->inflight);
		}
		rpc_unlink(victim);
		ep->refused_full++;
		if (fail_later(victim, CK_GRPC_UNAVAILABLE,
			"not sent: endpoint %s's queue is full; a "
			"background call gave way to an interactive one",
			ep->conf.name) < 0)
			rpc_finish(victim, CK_GRPC_UNAVAILABLE,
			    "not sent: queue full", NULL, 0,
			    CK_DELIVERY_NOT_SENT);
	}
	if (rpc_event(rpc) < 0)
		return CK_ENOMEM;
	rpc->queued_at = mono;
	tv = usec_tv(rpc->deadline > mono ? rpc->deadline - mono : 0);
	evtimer_add(rpc->ev, &tv);
	rpc_set_state(rpc, RPC_QUEUED);
	return 0;
}

/* Send what the caps allow, first interactive, then background. */
static void
pump(struct ck_channel *ep)
{
	struct ck_rpc *rpc;
	uint64_t now, wait;
	struct timeval tv;

	if (ep->nqueued == 0)
		return;
	now = pool_now(ep->pool);
	while (ep->nqueued > 0 && may_send(ep, now)) {
		rpc = TAILQ_FIRST(&ep->fg);
		if (rpc == NULL)
			rpc = TAILQ_FIRST(&ep->bg);
		rpc_unlink(rpc);
		if (send_rpc(rpc, now, true) < 0)
			rpc_finish(rpc, CK_GRPC_RESOURCE_EXHAUSTED,
			    "not sent: out of memory", NULL, 0,
			    CK_DELIVERY_NOT_SENT);
	}
	if (ep->nqueued > 0 && ep->inflight < ep->conf.max_concurrent &&
	    ep->conf.rate > 0) {
		/* Waiting for a token: come back when one is due. */
		wait = 1 +
		    (uint64_t)((1.0 - ep->tokens) * 1e6 /
			(double)ep->conf.rate);
		if (wait < 1000)
			wait = 1000;
		tv = usec_tv(wait);
		event_add(ep->maint, &tv);
	}
}

static void
on_maint(evutil_socket_t fd, short what, void *arg)
{
	struct ck_channel *ep = arg;
	struct pchan *pc, *next;

	(void)fd;
	(void)what;
	for (pc = TAILQ_FIRST(&ep->retired); pc != NULL; pc = next) {
		next = TAILQ_NEXT(pc, link);
		if (ck_grpc_channel_calls(pc->chan) > 0)
			continue;
		TAILQ_REMOVE(&ep->retired, pc, link);
		ck_grpc_channel_free(pc->chan);
		free(pc);
	}
	pump(ep);
}

/* ---- public ---- */

/* ck_endpoint_conf_defaults() is in config.c, with every other default. */

static int
check_conf(const struct ck_endpoint_conf *c, const struct ck_endpoint_conf *all,
    size_t i, char *host, size_t hostlen, uint16_t *port, char *err,
    size_t errlen)
{
	struct ck_identity id;
	const char *bad = NULL;
	size_t j;

	if (c->name[0] == '\0') {
		snprintf(
		    err, errlen, "line %u: endpoint without a name", c->line);
		return CK_EINVAL;
	}
	for (j = 0; j < i; j++)
		if (strcmp(all[j].name, c->name) == 0) {
			snprintf(err, errlen,
			    "line %u: [endpoint.%s] defined twice", c->line,
			    c->name);
			return CK_EINVAL;
		}
	if (ck_split_hostport(c->address, host, hostlen, port) != 0 ||
	    *port == 0)
		bad = "address: not host:port with a port above 0";
	else if (c->identity[0] == '\0')
		bad = "identity: required (the agency's SAN URI)";
	else if (ck_identity_parse_uri(c->identity, strlen(c->identity), &id) !=
	    0)
		bad = "identity: not urn:chakong:<role>:<id>";
	else if (c->connections == 0 || c->connections > MAX_CONNECTIONS)
		bad = "connections: must be 1..64";
	else if (c->max_concurrent == 0)
		bad = "max_concurrent: must be at least 1";
	else if (c->rate > 0 && c->burst == 0)
		bad = "burst: must be at least 1 when rate is set";
	else if (c->timeout_ms == 0)
		bad = "timeout_ms: must be at least 1";
	else if (c->breaker_failures == 0)
		bad = "breaker_failures: must be at least 1";
	else if (c->breaker_open_ms == 0)
		bad = "breaker_open_ms: must be at least 1";
	if (bad != NULL) {
		snprintf(err, errlen, "line %u: [endpoint.%s] %s", c->line,
		    c->name, bad);
		return CK_EINVAL;
	}
	return 0;
}

int
ck_pool_new(struct event_base *base, SSL_CTX *ctx,
    const struct ck_endpoint_conf *eps, size_t neps, struct ck_pool **out,
    char *err, size_t errlen)
{
	struct ck_pool *pool;
	struct ck_channel *ep;
	size_t i;
	int rc;

	*out = NULL;
	if (base == NULL || ctx == NULL || (eps == NULL && neps > 0)) {
		snprintf(err, errlen, "no event loop or TLS context");
		return CK_EINVAL;
	}
	pool = calloc(1, sizeof(*pool));
	if (pool == NULL)
		goto oom;
	pool->base = base;
	if (SSL_CTX_up_ref(ctx) != 1) {
		free(pool);
		snprintf(err, errlen, "TLS context: cannot take a reference");
		return CK_ETLS;
	}
	pool->ctx = ctx;
	pool->eps = calloc(neps > 0 ? neps : 1, sizeof(*pool->eps));
	if (pool->eps == NULL)
		goto oom_pool;
	for (i = 0; i < neps; i++) {
		ep = &pool->eps[i];
		ep->pool = pool;
		ep->conf = eps[i];
		TAILQ_INIT(&ep->retired);
		TAILQ_INIT(&ep->fg);
		TAILQ_INIT(&ep->bg);
		TAILQ_INIT(&ep->sent);
		TAILQ_INIT(&ep->failing);
		pool->neps = i + 1;
		rc = check_conf(&eps[i], eps, i, ep->host, sizeof(ep->host),
		    &ep->port, err, errlen);
		if (rc < 0) {
			ck_pool_free(pool);
			return rc;
		}
		ep->slots = calloc(ep->conf.connections, sizeof(*ep->slots));
		ep->slot_used =
		    calloc(ep->conf.connections, sizeof(*ep->slot_used));
		ep->maint = event_new(base, -1, 0, on_maint, ep);
		if (ep->slots == NULL || ep->slot_used == NULL ||
		    ep->maint == NULL)
			goto oom_pool;
		ep->tokens = (double)ep->conf.burst;
		ep->tokens_at = ck_mono_usec();
	}
	*out = pool;
	return 0;
oom_pool:
	ck_pool_free(pool);
oom:
	snprintf(err, errlen, "out of memory");
	return CK_ENOMEM;
}

/* Calls go without callbacks; a SENT one's transport call dies with its
 * channel. */
static void
free_list(struct rpc_list *l)
{
	struct ck_rpc *rpc;

	while ((rpc = TAILQ_FIRST(l)) != NULL) {
		TAILQ_REMOVE(l, rpc, link);
		rpc_free(rpc);
	}
}

void
ck_pool_free(struct ck_pool *pool)
{
	struct ck_channel *ep;
	struct pchan *pc;
	size_t i, j;

	if (pool == NULL)
		return;
	for (i = 0; i < pool->neps; i++) {
		ep = &pool->eps[i];
		free_list(&ep->fg);
		free_list(&ep->bg);
		free_list(&ep->sent);
		free_list(&ep->failing);
		for (j = 0; ep->slots != NULL && j < ep->conf.connections;
		     j++) {
			if ((pc = ep->slots[j]) == NULL)
				continue;
			ck_grpc_channel_free(pc->chan);
			free(pc);
		}
		while ((pc = TAILQ_FIRST(&ep->retired)) != NULL) {
			TAILQ_REMOVE(&ep->retired, pc, link);
			ck_grpc_channel_free(pc->chan);
			free(pc);
		}
		if (ep->maint != NULL)
			event_free(ep->maint);
		SSL_SESSION_free(ep->session);
		free(ep->slots);
		free(ep->slot_used);
	}
	free(pool->eps);
	SSL_CTX_free(pool->ctx);
	free(pool);
}

void
ck_pool_set_hooks(struct ck_pool *pool, const struct ck_pool_hooks *h)
{
	size_t i;

	if (h == NULL)
		memset(&pool->hooks, 0, sizeof(pool->hooks));
	else
		pool->hooks = *h;
	/* The bucket's time base moves to the new clock. */
	for (i = 0; i < pool->neps; i++)
		pool->eps[i].tokens_at = pool_now(pool);
}

static struct ck_channel *
find_ep(const struct ck_pool *pool, const char *name)
{
	size_t i;

	for (i = 0; name != NULL && i < pool->neps; i++)
		if (strcmp(pool->eps[i].conf.name, name) == 0)
			return &pool->eps[i];
	return NULL;
}

int
ck_pool_channel(
    struct ck_pool *pool, const char *endpoint, struct ck_channel **out)
{
	struct ck_channel *ep = find_ep(pool, endpoint);

	*out = ep;
	return ep != NULL ? 0 : CK_ENOTFOUND;
}

const char *
ck_pool_channel_name(const struct ck_channel *ch)
{
	return ch->conf.name;
}

int
ck_pool_rpc_start(struct ck_channel *ch, const char *path, const uint8_t *req,
    size_t len, uint64_t timeout_usec, const char *log_id, ck_rpc_cb cb,
    void *arg, struct ck_rpc **out)
{
	struct ck_rpc *rpc;
	size_t plen;
	uint64_t cap, now;
	char why[sizeof(rpc->message)];
	int rc;

	if (out != NULL)
		*out = NULL;
	if (ch == NULL || path == NULL || path[0] != '/' || cb == NULL ||
	    (req == NULL && len > 0))
		return CK_EINVAL;
	plen = strlen(path);
	if (len > UINT32_MAX || plen > 1024)
		return CK_EINVAL;
	rpc = malloc(sizeof(*rpc) + plen + 1 + len);
	if (rpc == NULL)
		return CK_ENOMEM;
	memset(rpc, 0, sizeof(*rpc));
	rpc->ep = ch;
	rpc->cb = cb;
	rpc->arg = arg;
	memcpy(rpc->data, path, plen + 1);
	rpc->path = rpc->data;
	if (len > 0)
		memcpy(rpc->data + plen + 1, req, len);
	rpc->req = (const uint8_t *)rpc->data + plen + 1;
	rpc->len = len;
	ck_strlcpy(
	    rpc->log_id, log_id != NULL ? log_id : "-", sizeof(rpc->log_id));
	cap = (uint64_t)ch->conf.timeout_ms * 1000;
	if (timeout_usec == 0 || timeout_usec > cap)
		timeout_usec = cap;
	rpc->deadline = ck_mono_usec() + timeout_usec;

	now = pool_now(ch->pool);
	if (!breaker_admit(ch, rpc, now, why, sizeof(why))) {
		ch->refused_breaker++;
		rc = fail_later(rpc, CK_GRPC_UNAVAILABLE, "%s", why);
	} else if (ch->nqueued == 0 && may_send(ch, now)) {
		rc = send_rpc(rpc, now, true);
	} else {
		rc = enqueue(rpc);
	}
	if (rc < 0) {
		drop_probe(rpc);
		rpc_free(rpc);
		return rc;
	}
	if (out != NULL)
		*out = rpc;
	return 0;
}

void
ck_pool_rpc_cancel(struct ck_rpc *rpc)
{
	struct ck_channel *ep;

	if (rpc == NULL || rpc->state == RPC_DONE)
		return;
	ep = rpc->ep;
	if (rpc->state == RPC_SENT) {
		ck_grpc_call_cancel(rpc->call);
		ep->inflight--;
		ep->calls[CK_GRPC_CANCELLED]++;
		/* A slot is free: the queue moves on, from the loop. */
		event_active(ep->maint, EV_TIMEOUT, 0);
	}
	rpc_unlink(rpc);
	drop_probe(rpc);
	rpc_free(rpc);
}

void
ck_pool_rpc_set_background(struct ck_rpc *rpc)
{
	if (rpc == NULL || rpc->background)
		return;
	if (rpc->state != RPC_QUEUED) {
		rpc->background = true;
		return;
	}
	TAILQ_REMOVE(&rpc->ep->fg, rpc, link);
	rpc->background = true;
	TAILQ_INSERT_TAIL(&rpc->ep->bg, rpc, link);
}

/* ---- for operators ---- */

static void
fill_stats(const struct ck_channel *ep, struct ck_pool_stats *st)
{
	uint64_t now = pool_now(ep->pool);
	size_t i;

	memset(st, 0, sizeof(*st));
	st->breaker = ep->breaker;
	st->breaker_opens = ep->opens;
	st->consecutive_failures = ep->failures;
	for (i = 0; i < ep->conf.connections; i++) {
		if (ep->slots[i] == NULL)
			continue;
		st->connections++;
		if (ck_grpc_channel_state(ep->slots[i]->chan) ==
		    CK_GRPC_CH_READY)
			st->ready++;
	}
	st->inflight = ep->inflight;
	st->queued = ep->nqueued;
	memcpy(st->calls, ep->calls, sizeof(st->calls));
	st->refused_breaker = ep->refused_breaker;
	st->refused_backoff = ep->refused_backoff;
	st->refused_queue_full = ep->refused_full;
	st->refused_queue_timeout = ep->refused_timeout;
	st->retries = ep->retries;
	st->connects = ep->connects;
	st->connect_failures = ep->connect_failures;
	st->reconnects = ep->reconnects;
	st->handshakes = ep->handshakes;
	st->resumed = ep->resumed;
	st->backoff_left_ms =
	    backing_off(ep, now) ? (ep->backoff_until - now + 999) / 1000 : 0;
	st->latency_p50_ms = ck_hist_quantile_ms(&ep->lat, 0.5);
	st->latency_p99_ms = ck_hist_quantile_ms(&ep->lat, 0.99);
}

int
ck_pool_stats(
    const struct ck_pool *pool, const char *endpoint, struct ck_pool_stats *out)
{
	const struct ck_channel *ep = find_ep(pool, endpoint);

	if (ep == NULL)
		return CK_ENOTFOUND;
	fill_stats(ep, out);
	return 0;
}

static void
json_ms(struct evbuffer *out, const char *key, double ms)
{
	if (ms < 0)
		evbuffer_add_printf(out, "\"%s\":null", key);
	else
		evbuffer_add_printf(out, "\"%s\":%.3f", key, ms);
}

static void
json_codes(struct evbuffer *out, const char *key, const uint64_t *calls,
    bool errors_only)
{
	bool first = true;
	int c;

	evbuffer_add_printf(out, ",\"%s\":{", key);
	for (c = 0; c < CK_GRPC_NSTATUS; c++) {
		if (calls[c] == 0 || (errors_only && c == CK_GRPC_OK))
			continue;
		evbuffer_add_printf(out, "%s\"%s\":%" PRIu64, first ? "" : ",",
		    ck_grpc_status_name(c), calls[c]);
		first = false;
	}
	evbuffer_add(out, "}", 1);
}

void
ck_pool_write_json(const struct ck_pool *pool, struct evbuffer *out)
{
	const struct ck_channel *ep;
	struct ck_pool_stats st;
	uint64_t total;
	size_t i;
	int c;

	evbuffer_add(out, "{", 1);
	for (i = 0; i < pool->neps; i++) {
		ep = &pool->eps[i];
		fill_stats(ep, &st);
		for (total = 0, c = 0; c < CK_GRPC_NSTATUS; c++)
			total += st.calls[c];
		if (i > 0)
			evbuffer_add(out, ",", 1);
		ck_json_str(out, ep->conf.name);
		evbuffer_add(out, ":{\"address\":", 12);
		ck_json_str(out, ep->conf.address);
		evbuffer_add_printf(out, ",\"identity\":");
		ck_json_str(out, ep->conf.identity);
		evbuffer_add_printf(out,
		    ",\"breaker\":\"%s\",\"breaker_opens\":%" PRIu64
		    ",\"connections\":%u,\"ready\":%u,\"inflight\":%u,"
		    "\"queued\":%u,\"calls\":%" PRIu64,
		    ck_breaker_state_name(st.breaker), st.breaker_opens,
		    st.connections, st.ready, st.inflight, st.queued, total);
		json_codes(out, "codes", st.calls, false);
		json_codes(out, "errors", st.calls, true);
		evbuffer_add_printf(out,
		    ",\"refused\":{\"breaker\":%" PRIu64 ",\"backoff\":%" PRIu64
		    ",\"queue_full\":%" PRIu64 ",\"queue_timeout\":%" PRIu64
		    "},\"retries\":%" PRIu64 ",\"reconnects\":%" PRIu64
		    ",\"connect_failures\":%" PRIu64
		    ",\"tls_handshakes\":%" PRIu64 ",\"tls_resumed\":%" PRIu64
		    ",\"backoff_ms\":%" PRIu64 ",\"last_error\":",
		    st.refused_breaker, st.refused_backoff,
		    st.refused_queue_full, st.refused_queue_timeout, st.retries,
		    st.reconnects, st.connect_failures, st.handshakes,
		    st.resumed, st.backoff_left_ms);
		ck_json_str(out, ep->last_error);
		evbuffer_add(out, ",\"latency_ms\":{", 15);
		json_ms(out, "p50", st.latency_p50_ms);
		evbuffer_add(out, ",", 1);
		json_ms(out, "p99", st.latency_p99_ms);
		evbuffer_add(out, "}}", 2);
	}
	evbuffer_add(out, "}", 1);
}

static void
prom_family(
    struct evbuffer *out, const char *name, const char *type, const char *help)
{
	evbuffer_add_printf(
	    out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{endpoint="..."} value, for one counter or gauge per endpoint. */
static void
prom_simple(struct evbuffer *out, const struct ck_pool *pool, const char *name,
    const char *type, const char *help,
    uint64_t (*get)(const struct ck_pool_stats *st))
{
	struct ck_pool_stats st;
	size_t i;

	prom_family(out, name, type, help);
	for (i = 0; i < pool->neps; i++) {
		fill_stats(&pool->eps[i], &st);
		evbuffer_add_printf(out, "%s{endpoint=", name);
		ck_metrics_label_value(out, pool->eps[i].conf.name);
		evbuffer_add_printf(out, "} %" PRIu64 "\n", get(&st));
	}
}

static uint64_t
get_inflight(const struct ck_pool_stats *st)
{
	return st->inflight;
}

static uint64_t
get_queued(const struct ck_pool_stats *st)
{
	return st->queued;
}

static uint64_t
get_ready(const struct ck_pool_stats *st)
{
	return st->ready;
}

static uint64_t
get_breaker(const struct ck_pool_stats *st)
{
	return (uint64_t)st->breaker;
}

static uint64_t
get_opens(const struct ck_pool_stats *st)
{
	return st->breaker_opens;
}

static uint64_t
get_reconnects(const struct ck_pool_stats *st)
{
	return st->reconnects;
}

static uint64_t
get_connect_failures(const struct ck_pool_stats *st)
{
	return st->connect_failures;
}

static uint64_t
get_handshakes(const struct ck_pool_stats *st)
{
	return st->handshakes;
}

static uint64_t
get_resumed(const struct ck_pool_stats *st)
{
	return st->resumed;
}

static uint64_t
get_retries(const struct ck_pool_stats *st)
{
	return st->retries;
}

void
ck_pool_write_prometheus(const struct ck_pool *pool, struct evbuffer *out)
{
	static const char *const reasons[] = { "breaker", "backoff",
		"queue_full", "queue_timeout" };
	const struct ck_channel *ep;
	struct ck_pool_stats st;
	char labels[CK_METRICS_LABEL_SIZE(
	    "endpoint", sizeof(pool->eps[0].conf.name) - 1)];
	uint64_t refused[4];
	size_t i, r;
	int c;

	prom_family(out, "chakong_endpoint_calls_total", "counter",
	    "Outbound calls to an agency endpoint, by gRPC status "
	    "(refusals by the pool included).");
	for (i = 0; i < pool->neps; i++) {
		ep = &pool->eps[i];
		for (c = 0; c < CK_GRPC_NSTATUS; c++) {
			if (ep->calls[c] == 0)
				continue;
			evbuffer_add_printf(
			    out, "chakong_endpoint_calls_total{endpoint=");
			ck_metrics_label_value(out, ep->conf.name);
			evbuffer_add_printf(out, ",code=\"%s\"} %" PRIu64 "\n",
			    ck_grpc_status_name(c), ep->calls[c]);
		}
	}
	prom_family(out, "chakong_endpoint_call_duration_seconds", "histogram",
	    "Time from sending an outbound call to its answer.");
	for (i = 0; i < pool->neps; i++) {
		ep = &pool->eps[i];
		/* Cannot fail: labels holds the longest name, escaped. */
		(void)ck_metrics_label(
		    labels, sizeof(labels), "endpoint", ep->conf.name);
		ck_hist_write_prometheus(out,
		    "chakong_endpoint_call_duration_seconds", labels, &ep->lat);
	}
	prom_simple(out, pool, "chakong_endpoint_inflight_calls", "gauge",
	    "Outbound calls sent and not yet answered.", get_inflight);
	prom_simple(out, pool, "chakong_endpoint_queued_calls", "gauge",
	    "Outbound calls waiting for the concurrency or rate cap.",
	    get_queued);
	prom_simple(out, pool, "chakong_endpoint_connections", "gauge",
	    "HTTP/2 connections up to the endpoint.", get_ready);
	prom_simple(out, pool, "chakong_endpoint_breaker_state", "gauge",
	    "Circuit breaker: 0 closed, 1 half-open, 2 open.", get_breaker);
	prom_simple(out, pool, "chakong_endpoint_breaker_opens_total",
	    "counter", "Times the circuit breaker opened.", get_opens);
	prom_family(out, "chakong_endpoint_refused_total", "counter",
	    "Outbound calls the pool refused without sending them.");
	for (i = 0; i < pool->neps; i++) {
		fill_stats(&pool->eps[i], &st);
		refused[0] = st.refused_breaker;
		refused[1] = st.refused_backoff;
		refused[2] = st.refused_queue_full;
		refused[3] = st.refused_queue_timeout;
		for (r = 0; r < CK_ARRAY_SIZE(reasons); r++) {
			evbuffer_add_printf(
			    out, "chakong_endpoint_refused_total{endpoint=");
			ck_metrics_label_value(out, pool->eps[i].conf.name);
			evbuffer_add_printf(out,
			    ",reason=\"%s\"} %" PRIu64 "\n", reasons[r],
			    refused[r]);
		}
	}
	prom_simple(out, pool, "chakong_endpoint_retries_total", "counter",
	    "Calls refused unsent by a connection and tried once more.",
	    get_retries);
	prom_simple(out, pool, "chakong_endpoint_reconnects_total", "counter",
	    "Connections made to replace one that closed or failed.",
	    get_reconnects);
	prom_simple(out, pool, "chakong_endpoint_connect_failures_total",
	    "counter", "Connection attempts that failed (TCP or TLS).",
	    get_connect_failures);
	prom_simple(out, pool, "chakong_endpoint_tls_handshakes_total",
	    "counter", "TLS handshakes completed.", get_handshakes);
	prom_simple(out, pool, "chakong_endpoint_tls_resumed_total", "counter",
	    "TLS handshakes that resumed an earlier session.", get_resumed);
}
