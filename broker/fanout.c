/*
 * fanout.c: Query, for real. One call starts every adapter that serves an
 * asked category, at once, and answers by the caller's deadline with what
 * arrived plus a status for every source that did not.
 *
 * A query:
 *
 *   RUNNING --every leg done--> ANSWERED
 *      |                           ^
 *      +--timer (deadline - margin/2): cancel late legs, their sources
 *      |   TIMEOUT ----------------+
 *      +--call cancelled (client reset, drain): cancel every leg
 *
 * A leg is one adapter instance. Adapters get the time left minus the
 * configured margin, so they normally answer in time with per-source
 * statuses of their own; the timer is the broker's own guarantee.
 *
 * Results are copied out of the adapter's memory into the call's arena as
 * chakong.v1 messages as each leg finishes; every freezable asset gets a
 * sealed asset_ref (ref.h).
 *
 * The cache (cache.h). With max_age_s > 0, each source's result younger
 * than min(max_age_s, [cache] max_age.<category>) comes from cache.mdb; a
 * leg whose every source was cached is not started. The rest run live, in
 * flights: a flight is one adapter call for (court, adapter, debtor,
 * categories) that identical live legs of concurrent queries join as
 * waiters (coalescing). Each waiter keeps its own deadline: a query that
 * ends leaves its flights, and the last one out cancels the call. When
 * the adapter answers, every waiter gets its own copy of the answer, and
 * each OK or NOT_FOUND source result is sealed into the cache unless an
 * action moved that source's generation since the flight started.
 *
 *   flight: RUNNING --adapter done--> delivered to waiters, stored, freed
 *              +--last waiter left--> adapter call cancelled, freed
 */
#include "fanout.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include <event2/event.h>

#include "actions.h"
#include "arena.h"
#include "cache.h"
#include "audit.h"
#include "clock.h"
#include "config.h"
#include "grpc_frame.h"
#include "log.h"
#include "module.h"
#include "ref.h"
#include "util.h"

struct flight;

struct leg {
	struct query *q;
	struct ck_adapter *ad;
	struct flight *flight;		/* live: the call it waits on */
	struct leg *next_waiter;
	bool done;
	uint64_t cached;		/* slots (< 64) served from the cache */
	ProtobufCBinaryData *raw;	/* per slot: a cached result as it
					   goes on the wire (see keep_raw) */
	uint64_t started;
	uint64_t ended;			/* when its adapter answered */
	/* one result per source in the adapter's order, extras after */
	Chakong__V1__SourceResult **results;
	size_t nresults, cap;
	const char **skip;		/* sources the caller may not reach */
};

struct query {
	struct ck_call *call;
	const struct ck_fanout *fo;
	struct ck_agency_call ac;
	uint32_t mask;			/* categories asked */
	uint32_t denied;		/* ... and refused by the policy */
	struct leg legs[16];
	size_t nlegs, pending;
	struct event *timer;
	const char *debtor_id;
	const char *court_id;
	uint8_t debtor[16];		/* its keyed hash, once per query */
	bool hashed;			/* debtor[] is set (see ref_debtor) */
	struct ck_cache *cache;		/* NULL: live only */
	uint8_t cdebtor[16];		/* the cache's hash of it */
	bool quiet;			/* do not feed ck_actions_observe() */
	size_t nraw;			/* results kept as wire bytes */
};

/* One live adapter call shared by identical legs (see the top). */
struct flight {
	struct flight *next;
	struct ck_adapter *ad;
	uint64_t hash;			/* of what follows, to skip fast */
	char court[64];
	char debtor_id[64];
	uint32_t cats;
	void *handle;
	struct leg *waiters;
	struct ck_cache *cache;
	size_t nkeys;			/* announced sources, at most 64 */
	struct ck_cache_key *keys;	/* NULL: nothing to store */
	uint64_t *gens;
	uint64_t stored;		/* slots already written */
};

/* Flights in progress: process-wide, event-loop thread only. */
static struct flight *flights;

static char *
dup(struct ck_call *call, const char *s)
{
	size_t n;
	char *d;

	if (s == NULL)
		return (char *)"";
	n = strlen(s);
	d = ck_call_alloc(call, n + 1);
	if (d == NULL)
		return (char *)"";
	memcpy(d, s, n + 1);
	return d;
}

static size_t
put_varint(uint8_t *out, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		out[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	out[n++] = (uint8_t)v;
	return n;
}

static Chakong__V1__SourceStatus
map_status(enum ck_source_status st)
{
	switch (st) {
	case CK_SOURCE_OK:
		return CHAKONG__V1__SOURCE_STATUS__SOURCE_OK;
	case CK_SOURCE_NOT_FOUND:
		return CHAKONG__V1__SOURCE_STATUS__SOURCE_NOT_FOUND;
	case CK_SOURCE_TIMEOUT:
		return CHAKONG__V1__SOURCE_STATUS__SOURCE_TIMEOUT;
	case CK_SOURCE_UNAVAILABLE:
		return CHAKONG__V1__SOURCE_STATUS__SOURCE_UNAVAILABLE;
	case CK_SOURCE_DENIED:
		return CHAKONG__V1__SOURCE_STATUS__SOURCE_DENIED;
	default:
		return CHAKONG__V1__SOURCE_STATUS__SOURCE_ERROR;
	}
}

static Chakong__V1__SourceResult *
new_result(struct ck_call *call, const char *source, int category,
    Chakong__V1__SourceStatus status, const char *message)
{
	Chakong__V1__SourceResult *r = ck_call_alloc(call, sizeof(*r));

	if (r == NULL)
		return NULL;
	chakong__v1__source_result__init(r);
	r->source = dup(call, source);
	r->category = (Chakong__V1__Category)category;
	r->status = status;
	r->message = dup(call, message);
	return r;
}

/* "6222021234567890123" -> "6222***********0123": courts see which
 * account, the full number stays behind the asset_ref. */
static char *
mask_account(struct ck_call *call, const char *acct)
{
	char *m = dup(call, acct);
	size_t n = strlen(m);

	for (size_t i = 4; n > 8 && i < n - 4; i++)
		m[i] = '*';
	return m;
}

static Chakong__V1__Money *
money(struct ck_call *call, int64_t fen, const char *cur)
{
	Chakong__V1__Money *m = ck_call_alloc(call, sizeof(*m));

	if (m == NULL)
		return NULL;
	chakong__v1__money__init(m);
	m->fen = fen;
	m->currency = dup(call, cur != NULL && cur[0] ? cur : "CNY");
	return m;
}

static bool
copy_encumbrances(struct query *q, const char *source, Chakong__V1__Asset *a,
    const struct ck_asset *in)
{
	struct ck_call *call = q->call;

	if (in->nencumbrances == 0)
		return true;
	a->encumbrances = ck_call_alloc(call,
	    in->nencumbrances * sizeof(*a->encumbrances));
	if (a->encumbrances == NULL)
		return false;
	for (size_t i = 0; i < in->nencumbrances; i++) {
		const struct ck_encumbrance *e = &in->encumbrances[i];
		Chakong__V1__Encumbrance *o = ck_call_alloc(call, sizeof(*o));

		if (o == NULL)
			return false;
		if (!q->quiet && e->court_id != NULL &&
		    strcmp(e->court_id, q->court_id) == 0)
			ck_actions_observe(q->fo->actions, source, e);
		chakong__v1__encumbrance__init(o);
		o->kind = e->kind == CK_ENCUMBRANCE_SEAL ?
		    CHAKONG__V1__ENCUMBRANCE__KIND__SEAL :
		    CHAKONG__V1__ENCUMBRANCE__KIND__FREEZE;
		o->court_id = dup(call, e->court_id);
		o->case_number = dup(call, e->case_number);
		o->frozen_fen = e->frozen_fen;
		o->queued_fen = e->queued_fen;
		o->requested_fen = e->requested_fen;
		o->effective_date = dup(call, e->effective_date);
		o->expiry_date = dup(call, e->expiry_date);
		o->queue_position = e->queue_position;
		a->encumbrances[a->n_encumbrances++] = o;
	}
	return true;
}

/* The debtor's hash for references: on first need (a query answered
 * from the cache for its own court seals none). */
static const uint8_t *
ref_debtor(struct query *q)
{
	if (!q->hashed) {
		ck_ref_debtor_hash(q->fo->refkeys, 0, q->debtor_id, q->debtor);
		q->hashed = true;
	}
	return q->debtor;
}

static bool
seal_ref(struct query *q, Chakong__V1__Asset *a, const char *source,
    const struct ck_asset *in)
{
	struct ck_ref ref;
	uint8_t *buf;
	size_t len;

	if (q->fo->refkeys == NULL || in->asset_id == NULL ||
	    (in->category != CK_CATEGORY_DEPOSIT &&
	    in->category != CK_CATEGORY_REAL_ESTATE &&
	    in->category != CK_CATEGORY_VEHICLE))
		return true;	/* records are not assets one can freeze */
	memset(&ref, 0, sizeof(ref));
	ref.type = CK_REF_ASSET;
	ref.category = (uint8_t)in->category;
	if (!ck_strlcpy_n(ref.source, sizeof(ref.source), source,
	    strlen(source)) ||
	    !ck_strlcpy_n(ref.asset_id, sizeof(ref.asset_id), in->asset_id,
	    strlen(in->asset_id)))
		return true;	/* too long to seal: no ref, still listed */
	ck_strlcpy(ref.court_id, q->court_id, sizeof(ref.court_id));
	memcpy(ref.debtor, ref_debtor(q), sizeof(ref.debtor));
	ref.issued_at = ck_clock_now();
	buf = ck_call_alloc(q->call, CK_REF_MAX_LEN);
	if (buf == NULL)
		return false;
	if (ck_ref_seal(q->fo->refkeys, &ref, buf, &len) != 0)
		return true;
	a->asset_ref.data = buf;
	a->asset_ref.len = len;
	return true;
}

static Chakong__V1__Asset *
copy_asset(struct query *q, const char *source, const struct ck_asset *in)
{
	struct ck_call *call = q->call;
	Chakong__V1__Asset *a = ck_call_alloc(call, sizeof(*a));

	if (a == NULL)
		return NULL;
	chakong__v1__asset__init(a);
	a->category = (Chakong__V1__Category)in->category;
	switch (in->category) {
	case CK_CATEGORY_DEPOSIT: {
		Chakong__V1__DepositAsset *d = ck_call_alloc(call, sizeof(*d));

		if (d == NULL)
			return NULL;
		chakong__v1__deposit_asset__init(d);
		d->bank_code = dup(call, in->bank_code);
		d->bank_name = dup(call, in->bank_name);
		d->account_masked = mask_account(call,
		    in->account_no != NULL ? in->account_no : "");
		d->account_type = dup(call, in->account_type);
		d->branch = dup(call, in->branch);
		d->balance = money(call, in->balance_fen, in->currency);
		d->available = money(call, in->available_fen, in->currency);
		d->frozen = money(call, in->frozen_fen, in->currency);
		a->detail_case = CHAKONG__V1__ASSET__DETAIL_DEPOSIT;
		a->deposit = d;
		break;
	}
	case CK_CATEGORY_REAL_ESTATE: {
		Chakong__V1__RealEstateAsset *r = ck_call_alloc(call,
		    sizeof(*r));

		if (r == NULL)
			return NULL;
		chakong__v1__real_estate_asset__init(r);
		r->certificate_no = dup(call, in->certificate_no);
		r->address = dup(call, in->address);
		r->area_cm2 = in->area_cm2;
		r->usage = dup(call, in->usage);
		r->share_percent = in->share_percent;
		r->sealed = in->nencumbrances > 0;
		a->detail_case = CHAKONG__V1__ASSET__DETAIL_REAL_ESTATE;
		a->real_estate = r;
		break;
	}
	case CK_CATEGORY_VEHICLE: {
		Chakong__V1__VehicleAsset *v = ck_call_alloc(call, sizeof(*v));

		if (v == NULL)
			return NULL;
		chakong__v1__vehicle_asset__init(v);
		v->plate = dup(call, in->plate);
		v->vin = dup(call, in->vin);
		v->make_model = dup(call, in->make_model);
		v->registered_on = dup(call, in->registered_on);
		v->sealed = in->nencumbrances > 0;
		a->detail_case = CHAKONG__V1__ASSET__DETAIL_VEHICLE;
		a->vehicle = v;
		break;
	}
	case CK_CATEGORY_HOUSEHOLD: {
		Chakong__V1__HouseholdRecord *h = ck_call_alloc(call,
		    sizeof(*h));

		if (h == NULL)
			return NULL;
		chakong__v1__household_record__init(h);
		h->name = dup(call, in->name);
		h->sex = dup(call, in->sex);
		h->birth_date = dup(call, in->birth_date);
		h->registered_address = dup(call, in->registered_address);
		if (in->nmembers > 0) {
			h->members = ck_call_alloc(call,
			    in->nmembers * sizeof(char *));
			if (h->members == NULL)
				return NULL;
			for (size_t i = 0; i < in->nmembers; i++)
				h->members[i] = dup(call, in->members[i]);
			h->n_members = in->nmembers;
		}
		a->detail_case = CHAKONG__V1__ASSET__DETAIL_HOUSEHOLD;
		a->household = h;
		break;
	}
	case CK_CATEGORY_ENTERPRISE: {
		Chakong__V1__EnterpriseRecord *e = ck_call_alloc(call,
		    sizeof(*e));

		if (e == NULL)
			return NULL;
		chakong__v1__enterprise_record__init(e);
		e->name = dup(call, in->name);
		e->status = dup(call, in->status);
		e->legal_representative = dup(call, in->legal_representative);
		e->registered_capital = money(call,
		    in->registered_capital_fen, in->currency);
		e->registered_address = dup(call, in->registered_address);
		e->established_on = dup(call, in->established_on);
		if (in->nmembers > 0) {
			e->shareholders = ck_call_alloc(call,
			    in->nmembers * sizeof(char *));
			if (e->shareholders == NULL)
				return NULL;
			for (size_t i = 0; i < in->nmembers; i++)
				e->shareholders[i] = dup(call,
				    in->members[i]);
			e->n_shareholders = in->nmembers;
		}
		a->detail_case = CHAKONG__V1__ASSET__DETAIL_ENTERPRISE;
		a->enterprise = e;
		break;
	}
	default:
		return NULL;	/* a category this API cannot show */
	}
	if (!copy_encumbrances(q, source, a, in) ||
	    !seal_ref(q, a, source, in))
		return NULL;
	return a;
}

/* Where a source's result goes: its slot in the adapter's order, or a new
 * one at the end for a source the adapter did not announce. */
static Chakong__V1__SourceResult **
slot(struct leg *leg, const char *source)
{
	for (size_t i = 0; i < leg->ad->nsources; i++)
		if (strcmp(leg->ad->sources[i], source) == 0)
			return &leg->results[i];
	if (leg->nresults == leg->cap)
		return NULL;
	return &leg->results[leg->nresults++];
}

static void query_finish(struct query *q);

static bool
skipped(const struct leg *leg, const char *source)
{
	for (size_t i = 0; leg->skip != NULL && leg->skip[i] != NULL; i++)
		if (strcmp(leg->skip[i], source) == 0)
			return true;
	return false;
}

/*
 * The category to report for a source that gave no result: announced
 * sources carry none, so the first asked category the adapter serves.
 */
static int
leg_category(const struct leg *leg)
{
	uint32_t cats = leg->ad->categories & leg->q->mask;
	int c = CK_CATEGORY_DEPOSIT;

	while (c <= CK_CATEGORY_ENTERPRISE && !(cats & CK_CATEGORY_BIT(c)))
		c++;
	return c;
}

/* Seal a live result into the cache (a waiter's copy; lossy). */
static void
store(struct flight *f, size_t j, const Chakong__V1__SourceResult *r)
{
	size_t n;
	uint8_t *buf;

	if (f->keys == NULL || j >= f->nkeys || (f->stored & (1ull << j)) ||
	    (r->status != CHAKONG__V1__SOURCE_STATUS__SOURCE_OK &&
	    r->status != CHAKONG__V1__SOURCE_STATUS__SOURCE_NOT_FOUND))
		return;	/* errors are not cached */
	f->stored |= 1ull << j;
	n = chakong__v1__source_result__get_packed_size(r);
	buf = malloc(n > 0 ? n : 1);
	if (buf == NULL)
		return;
	chakong__v1__source_result__pack(r, buf);
	ck_cache_put(f->cache, &f->keys[j], f->gens[j], buf, n, r->fetched_at);
	free(buf);
}

/* Copy an adapter's answer into one waiter's arena; slots served from
 * the cache keep their cached result. */
static void
deliver(struct leg *leg, const struct ck_result *res, struct flight *f)
{
	struct query *q = leg->q;
	struct ck_call *call = q->call;

	for (size_t i = 0; i < res->nsources; i++) {
		const struct ck_source_result *sr = &res->sources[i];
		Chakong__V1__SourceResult *r, **where;
		size_t j;

		/* a module older than skip_sources may have asked anyway:
		 * what it says of them is not the caller's to see */
		if (sr->source == NULL ||
		    !(q->mask & CK_CATEGORY_BIT(sr->category)) ||
		    skipped(leg, sr->source))
			continue;
		where = slot(leg, sr->source);
		if (where == NULL)
			continue;
		j = (size_t)(where - leg->results);
		if (j < 64 && (leg->cached & (1ull << j)))
			continue;
		r = new_result(call, sr->source, sr->category,
		    map_status(sr->status), sr->message);
		if (r == NULL)
			continue;
		if (res->size >= offsetof(struct ck_result, answered_by) +
		    sizeof(res->answered_by) && res->answered_by != NULL &&
		    res->answered_by[i] != NULL)
			r->answered_by = dup(call, res->answered_by[i]);
		r->fetched_at = sr->status == CK_SOURCE_OK ||
		    sr->status == CK_SOURCE_NOT_FOUND ? ck_clock_now() : 0;
		if (sr->nassets > 0) {
			r->assets = ck_call_alloc(call,
			    sr->nassets * sizeof(*r->assets));
			if (r->assets == NULL)
				continue;
			for (size_t k = 0; k < sr->nassets; k++) {
				Chakong__V1__Asset *a = copy_asset(q,
				    sr->source, &sr->assets[k]);

				if (a == NULL)
					break;	/* incomplete: not stored */
				r->assets[r->n_assets++] = a;
			}
		}
		*where = r;
		if (f != NULL && r->n_assets == sr->nassets)
			store(f, j, r);
	}
	log_debug(call->log_id, "adapter %s answered %zu source%s in %.3f ms",
	    leg->ad->name, res->nsources, res->nsources == 1 ? "" : "s",
	    (double)(ck_mono_usec() - leg->started) / 1000.0);
}

static void
leg_settled(struct leg *leg)
{
	struct query *q = leg->q;

	leg->done = true;
	leg->flight = NULL;
	leg->ended = ck_mono_usec();
	q->pending--;
	if (q->pending == 0)
		query_finish(q);
}

static void
flight_unlink(struct flight *f)
{
	for (struct flight **pp = &flights; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == f) {
			*pp = f->next;
			break;
		}
	}
}

static void
flight_free(struct flight *f)
{
	free(f->keys);
	free(f->gens);
	OPENSSL_cleanse(f->debtor_id, sizeof(f->debtor_id));
	free(f);
}

static void
on_flight_done(void *arg, const struct ck_result *res)
{
	struct flight *f = arg;
	struct leg *w, *next;
	bool first = true;

	flight_unlink(f);
	f->handle = NULL;
	for (w = f->waiters; w != NULL; w = w->next_waiter) {
		w->q->quiet = !first;
		deliver(w, res, f);
		first = false;
	}
	for (w = f->waiters; w != NULL; w = next) {
		next = w->next_waiter;
		leg_settled(w);
	}
	flight_free(f);
}

/* A waiter leaves (its query ended); the last one cancels the call. */
static void
flight_leave(struct leg *leg)
{
	struct flight *f = leg->flight;

	leg->flight = NULL;
	for (struct leg **pp = &f->waiters; *pp != NULL;
	    pp = &(*pp)->next_waiter) {
		if (*pp == leg) {
			*pp = leg->next_waiter;
			break;
		}
	}
	if (f->waiters != NULL)
		return;
	flight_unlink(f);
	if (f->handle != NULL)
		f->ad->ops->cancel(f->handle);
	flight_free(f);
}

static void
cancel_legs(struct query *q)
{
	for (size_t i = 0; i < q->nlegs; i++) {
		struct leg *leg = &q->legs[i];

		if (!leg->done && leg->flight != NULL)
			flight_leave(leg);
	}
}

static void audit_base(struct query *q, struct ck_audit_rec *a);
static void audit_source(struct query *q, const struct leg *leg,
    const Chakong__V1__SourceResult *r, const struct ck_audit_rec *base);

/* The caller went away: the agency calls already made are audited all
 * the same, the unanswered ones as cancelled. */
static void
audit_cancelled(struct query *q)
{
	struct ck_audit_rec base, a;

	audit_base(q, &base);
	for (size_t i = 0; i < q->nlegs; i++) {
		struct leg *leg = &q->legs[i];

		for (size_t j = 0; j < leg->nresults; j++) {
			if (j < 64 && (leg->cached & (1ull << j)))
				continue;	/* from the cache: no call */
			if (leg->results[j] != NULL) {
				audit_source(q, leg, leg->results[j], &base);
				continue;
			}
			if (j >= leg->ad->nsources)
				continue;
			a = base;
			a.categories = CK_CATEGORY_BIT(leg_category(leg));
			ck_strlcpy(a.source, leg->ad->sources[j],
			    sizeof(a.source));
			a.latency_us = (int64_t)(ck_mono_usec() - leg->started);
			ck_strlcpy(a.note, "cancelled: the caller went away",
			    sizeof(a.note));
			ck_audit_submit(q->fo->audit, &a);
		}
	}
}

static void
on_query_cancel(struct ck_call *call)
{
	struct query *q = call->handler_data;

	if (q->fo->audit != NULL && q->nlegs > 0)
		audit_cancelled(q);
	cancel_legs(q);
	if (q->timer != NULL) {
		event_free(q->timer);
		q->timer = NULL;
	}
}

/* What every agency call of this query shares in the audit trail. */
static void
audit_base(struct query *q, struct ck_audit_rec *a)
{
	struct ck_call *call = q->call;

	memset(a, 0, sizeof(*a));
	a->kind = CK_AUDIT_AGENCY_CALL;
	a->origin = call->origin;
	a->time = ck_clock_now();
	ck_strlcpy(a->call_id, call->log_id, sizeof(a->call_id));
	ck_strlcpy(a->client, call->peer->name, sizeof(a->client));
	ck_strlcpy(a->method, call->method != NULL ? call->method->path : "-",
	    sizeof(a->method));
	if (q->fo->refkeys != NULL) {
		/* the query's own keyed hash: the audit's is the same one */
		memcpy(a->debtor, q->debtor, sizeof(a->debtor));
		a->has_debtor = true;
	}
	ck_audit_from_request(q->fo->audit, call->request, a);
}

/* One record per source asked, batched (a Query changes nothing: see
 * audit.h). */
static void
audit_source(struct query *q, const struct leg *leg,
    const Chakong__V1__SourceResult *r, const struct ck_audit_rec *base)
{
	struct ck_audit_rec a = *base;

	a.categories = r->category > 0 && r->category < 32 ?
	    1u << r->category : 0;
	ck_strlcpy(a.source, r->source, sizeof(a.source));
	a.source_status = r->status;
	a.assets = (int32_t)r->n_assets;
	a.latency_us = (int64_t)((leg->ended != 0 ? leg->ended :
	    ck_mono_usec()) - leg->started);
	if (ck_audit_submit(q->fo->audit, &a) != 0)
		log_err(q->call->log_id, "audit: out of memory: an agency "
		    "call's record is lost");
}

/* Append the results in order: per adapter, per source; a source with no
 * result by now did not answer in time. */
/* Add a result to the reply: as a message, or — once some results are
 * wire bytes (keep_raw) — every one as wire bytes, in order. */
static bool
add_result(struct query *q, Chakong__V1__QueryReply *reply,
    Chakong__V1__SourceResult *r, const ProtobufCBinaryData *raw)
{
	ProtobufCMessageUnknownField *u;
	size_t n, p;
	uint8_t *b;

	if (q->nraw == 0) {
		reply->sources[reply->n_sources++] = r;
		return true;
	}
	u = &reply->base.unknown_fields[reply->base.n_unknown_fields];
	if (raw != NULL) {
		u->data = raw->data;
		u->len = raw->len;
	} else {
		n = chakong__v1__source_result__get_packed_size(r);
		b = ck_call_alloc(q->call, n + 10);
		if (b == NULL)
			return false;
		p = put_varint(b, n);
		chakong__v1__source_result__pack(r, b + p);
		u->data = b;
		u->len = p + n;
	}
	u->tag = 1;	/* QueryReply.sources */
	u->wire_type = PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED;
	reply->base.n_unknown_fields++;
	return true;
}

static void
query_finish(struct query *q)
{
	struct ck_call *call = q->call;
	Chakong__V1__QueryReply reply = CHAKONG__V1__QUERY_REPLY__INIT;
	struct ck_audit_rec abase;
	bool abased = false;	/* abase is set: only once a source caused
				   an agency call (an all-cached Query
				   records none) */
	size_t total = 0;
	uint32_t served = 0;
	bool ok = true;

	cancel_legs(q);
	if (q->timer != NULL) {
		event_free(q->timer);
		q->timer = NULL;
	}
	call->on_cancel = NULL;
	for (size_t i = 0; i < q->nlegs; i++)
		total += q->legs[i].nresults;
	total += 5 + q->nlegs;	/* NOT_CONFIGURED, one per category at
				   most; a late adapter without sources */
	reply.sources = ck_call_alloc(call, total * sizeof(*reply.sources));
	reply.base.unknown_fields = q->nraw == 0 ? NULL :
	    ck_call_alloc(call, total * sizeof(*reply.base.unknown_fields));
	if (reply.sources == NULL ||
	    (q->nraw > 0 && reply.base.unknown_fields == NULL)) {
		ck_call_fail(call, CK_GRPC_RESOURCE_EXHAUSTED,
		    "server out of memory");
		return;
	}
	for (size_t i = 0; i < q->nlegs; i++) {
		struct leg *leg = &q->legs[i];

		served |= leg->ad->categories;
		for (size_t j = 0; j < leg->nresults; j++) {
			Chakong__V1__SourceResult *r = leg->results[j];

			if (leg->raw != NULL && leg->raw[j].data != NULL) {
				ok &= add_result(q, &reply, NULL,
				    &leg->raw[j]);
				continue;
			}
			if (r == NULL && j < leg->ad->nsources) {
				r = new_result(call, leg->ad->sources[j],
				    leg_category(leg),
				    CHAKONG__V1__SOURCE_STATUS__SOURCE_TIMEOUT,
				    leg->done ? "the adapter did not report "
				    "this source" : "no answer before the "
				    "deadline");
			}
			if (r == NULL)
				continue;
			reply.sources[reply.n_sources++] = r;
			/* a cached result caused no agency call */
			if (q->fo->audit != NULL &&
			    !(j < 64 && (leg->cached & (1ull << j)))) {
				if (!abased)
					audit_base(q, &abase);
				abased = true;
				audit_source(q, leg, r, &abase);
			}
		}
		if (!leg->done && leg->ad->nsources == 0) {
			/* an adapter whose sources are only known from its
			 * answer (a partner broker): one line for it */
			Chakong__V1__SourceResult *r = new_result(call,
			    leg->ad->name, leg_category(leg),
			    CHAKONG__V1__SOURCE_STATUS__SOURCE_TIMEOUT,
			    "no answer before the deadline");

			if (r != NULL)
				ok &= add_result(q, &reply, r, NULL);
		}
	}
	for (int c = CK_CATEGORY_DEPOSIT; c <= CK_CATEGORY_ENTERPRISE; c++) {
		Chakong__V1__SourceResult *r;

		if (!((q->mask | q->denied) & CK_CATEGORY_BIT(c)) ||
		    (served & CK_CATEGORY_BIT(c)))
			continue;
		if (q->denied & CK_CATEGORY_BIT(c))
			r = new_result(call, ck_category_name(c), c,
			    CHAKONG__V1__SOURCE_STATUS__SOURCE_DENIED,
			    "the caller has no right to query this category");
		else
			r = new_result(call, ck_category_name(c), c,
			    CHAKONG__V1__SOURCE_STATUS__SOURCE_NOT_CONFIGURED,
			    "no adapter is configured for this category");
		if (r != NULL)
			ok &= add_result(q, &reply, r, NULL);
	}
	if (!ok) {
		ck_call_fail(call, CK_GRPC_RESOURCE_EXHAUSTED,
		    "server out of memory");
		return;
	}
	reply.query_id = (char *)call->log_id;
	ck_call_reply(call, &reply.base);
}

static void
on_query_timer(evutil_socket_t fd, short what, void *arg)
{
	struct query *q = arg;

	(void)fd;
	(void)what;
	log_info(q->call->log_id, "query: %zu adapter%s late at the "
	    "deadline; answering with what arrived", q->pending,
	    q->pending == 1 ? "" : "s");
	query_finish(q);
}

/*
 * The access policy's refusals, decided before anything is sent: an
 * adapter serving only categories the caller may not see is not called;
 * the agencies the caller may not reach are left out of the call
 * (ck_agency_call.skip_sources), or the adapter is not called when that
 * leaves none. Their sources answer DENIED. Returns false when out of
 * memory.
 */
static bool
deny_leg(struct leg *leg, const struct ck_fanout_query *fq)
{
	struct query *q = leg->q;
	const char *why = "the caller has no right to reach this agency";
	size_t nskip = 0;
	int cat = leg_category(leg);

	if (!(leg->ad->ops->categories & q->mask)) {
		why = "the caller has no right to query this category";
		for (cat = CK_CATEGORY_DEPOSIT; cat < CK_CATEGORY_ENTERPRISE &&
		    !(leg->ad->ops->categories & q->denied &
		    CK_CATEGORY_BIT(cat)); cat++)
			;
		leg->done = true;	/* even one announcing no sources */
		nskip = leg->ad->nsources;
	} else if (fq->source_ok != NULL) {
		leg->skip = ck_call_alloc(q->call,
		    (leg->ad->nsources + 1) * sizeof(*leg->skip));
		if (leg->skip == NULL)
			return false;
		for (size_t i = 0; i < leg->ad->nsources; i++)
			if (!fq->source_ok(leg->ad->sources[i], fq->source_arg))
				leg->skip[nskip++] = leg->ad->sources[i];
		leg->skip[nskip] = NULL;
	}
	if (nskip == 0) {
		leg->skip = NULL;
		return true;
	}
	if (nskip == leg->ad->nsources)
		leg->done = true;	/* nothing left to ask */
	for (size_t i = 0; i < leg->ad->nsources; i++)
		if (leg->done || skipped(leg, leg->ad->sources[i]))
			leg->results[i] = new_result(q->call,
			    leg->ad->sources[i], cat,
			    CHAKONG__V1__SOURCE_STATUS__SOURCE_DENIED, why);
	return true;
}

const char *
ck_origin_name(enum ck_origin o)
{
	switch (o) {
	case CK_ORIGIN_SCHEDULED:
		return "scheduled";
	case CK_ORIGIN_FORWARDED:
		return "forwarded";
	case CK_ORIGIN_RESOLVER:
		return "resolver";
	case CK_ORIGIN_INTERACTIVE:
		break;
	}
	return "interactive";
}

const char *
ck_category_name(int c)
{
	const char *name = ck_category_label(c);

	return name != NULL ? name : "unknown";
}

/* A cached result shared between courts carries references sealed for
 * the court that fetched it: seal them again for this one. */
static void
reseal_refs(struct query *q, Chakong__V1__SourceResult *r)
{
	for (size_t i = 0; i < r->n_assets; i++) {
		ProtobufCBinaryData *b = &r->assets[i]->asset_ref;
		struct ck_ref ref;
		uint8_t *buf;
		size_t len;

		if (b->len == 0)
			continue;
		if (q->fo->refkeys == NULL ||
		    ck_ref_open(q->fo->refkeys, b->data, b->len, &ref) != 0) {
			b->len = 0;	/* no ref rather than a wrong one */
			continue;
		}
		if (strcmp(ref.court_id, q->court_id) == 0)
			continue;
		ck_strlcpy(ref.court_id, q->court_id, sizeof(ref.court_id));
		ref.issued_at = ck_clock_now();
		buf = ck_call_alloc(q->call, CK_REF_MAX_LEN);
		if (buf == NULL ||
		    ck_ref_seal(q->fo->refkeys, &ref, buf, &len) != 0) {
			b->len = 0;
			continue;
		}
		b->data = buf;
		b->len = len;
	}
}

/*
 * A cached result for this court goes to the wire as it was stored, not
 * decoded and encoded again (a hit would spend most of its time there):
 * the packed SourceResult, length-prefixed as field 1 of QueryReply, with
 * from_cache = true appended (protobuf keeps the last value of a field;
 * fetched_at is already the stored one). The AEAD tag vouches for the
 * bytes. query_finish() sends such results as the reply's unknown fields,
 * which protobuf-c packs verbatim.
 */
static bool
keep_raw(struct query *q, struct leg *leg, size_t j, const uint8_t *plain,
    size_t len)
{
	uint8_t *b;
	size_t p;

	if (leg->raw == NULL) {
		leg->raw = ck_call_alloc(q->call, leg->cap * sizeof(*leg->raw));
		if (leg->raw == NULL)
			return false;
		memset(leg->raw, 0, leg->cap * sizeof(*leg->raw));
	}
	b = ck_call_alloc(q->call, len + 2 + 10);
	if (b == NULL)
		return false;
	p = put_varint(b, len + 2);
	memcpy(b + p, plain, len);
	b[p + len] = 5 << 3 | PROTOBUF_C_WIRE_TYPE_VARINT;	/* from_cache */
	b[p + len + 1] = 1;
	leg->raw[j].data = b;
	leg->raw[j].len = p + len + 2;
	q->nraw++;
	return true;
}

/*
 * Serve a leg's sources from the cache where a result younger than the
 * caller's max_age_s (capped per category by the config) is there; a
 * leg whose every source was served is done without a call.
 */
static void
from_cache(struct query *q, struct leg *leg, int64_t max_age)
{
	struct ck_cache *c = q->cache;
	const struct ck_config *cfg = q->call->cfg;
	int cat = leg_category(leg);
	int64_t now = ck_clock_now();
	size_t hits = 0, denied = 0;

	if (leg->done || c == NULL || max_age <= 0 ||
	    cat < CK_CATEGORY_DEPOSIT ||
	    cat > CK_CATEGORY_ENTERPRISE)
		return;
	if (max_age > (int64_t)cfg->cache.max_age_s[cat])
		max_age = cfg->cache.max_age_s[cat];
	if (max_age <= 0)
		return;
	for (size_t j = 0; j < leg->ad->nsources && j < 64; j++) {
		Chakong__V1__SourceResult *r;
		struct ck_cache_key k;
		ProtobufCAllocator al;
		uint8_t *plain;
		int64_t at;
		size_t len;

		if (skipped(leg, leg->ad->sources[j])) {
			denied++;	/* answered DENIED by deny_leg() */
			continue;
		}
		if (!ck_cache_key(c, cfg, q->cdebtor, leg->ad->sources[j], cat,
		    q->court_id, &k) ||
		    ck_cache_get(c, &k, now - max_age + 1, q->call->arena,
		    &plain, &len, &at) != 0)
			continue;
		if (!k.shared) {
			if (!keep_raw(q, leg, j, plain, len))
				continue;
		} else {
			ck_arena_allocator(q->call->arena, &al);
			r = chakong__v1__source_result__unpack(&al, len,
			    plain);
			if (r == NULL)
				continue;
			r->from_cache = true;
			r->fetched_at = at;
			reseal_refs(q, r);
			leg->results[j] = r;
		}
		leg->cached |= 1ull << j;
		hits++;
	}
	if (hits > 0 && hits + denied == leg->ad->nsources)
		leg->done = true;
}

static uint64_t
flight_hash(const struct query *q, const struct leg *leg, uint32_t cats)
{
	uint64_t h = 14695981039346656037ull ^ (uintptr_t)leg->ad ^ cats;

	for (const char *p = q->court_id; *p != '\0'; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ull;
	h = (h ^ 0xff) * 1099511628211ull;
	for (const char *p = q->debtor_id; *p != '\0'; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ull;
	return h;
}

/* An identical live call already out, started after any action on its
 * sources: join it. A linear walk: flights live for one agency call, so
 * there are about as many as live queries in flight. */
static struct flight *
flight_find(const struct query *q, const struct leg *leg, uint32_t cats,
    uint64_t hash)
{
	for (struct flight *f = flights; f != NULL; f = f->next) {
		bool same = f->hash == hash && hash != 0 && f->ad == leg->ad &&
		    f->cats == cats && strcmp(f->court, q->court_id) == 0 &&
		    strcmp(f->debtor_id, q->debtor_id) == 0;

		for (size_t j = 0; same && f->keys != NULL && j < f->nkeys;
		    j++)
			same = f->gens[j] == ck_cache_gen(f->cache,
			    &f->keys[j]);
		if (same)
			return f;
	}
	return NULL;
}

/* The cache keys and generations a flight stores its results under. */
static void
flight_keys(struct flight *f, const struct query *q)
{
	const struct ck_adapter *ad = f->ad;
	int cat = 0;

	for (int c = CK_CATEGORY_DEPOSIT; c <= CK_CATEGORY_ENTERPRISE; c++)
		if (f->cats & CK_CATEGORY_BIT(c)) {
			cat = c;
			break;
		}
	f->nkeys = ad->nsources < 64 ? ad->nsources : 64;
	f->keys = calloc(f->nkeys + 1, sizeof(*f->keys));
	f->gens = calloc(f->nkeys + 1, sizeof(*f->gens));
	for (size_t j = 0; f->keys != NULL && f->gens != NULL && j < f->nkeys;
	    j++) {
		if (!ck_cache_key(f->cache, q->call->cfg, q->cdebtor,
		    ad->sources[j], cat, q->court_id, &f->keys[j]))
			break;
		f->gens[j] = ck_cache_gen(f->cache, &f->keys[j]);
		if (j + 1 == f->nkeys)
			return;
	}
	free(f->keys);	/* nothing stored from this one */
	free(f->gens);
	f->keys = NULL;
	f->gens = NULL;
}

/* Join an identical call in flight, or start one. */
static int
leg_start(struct query *q, struct leg *leg)
{
	uint32_t cats = leg->ad->ops->categories & q->mask;
	uint64_t hash = flight_hash(q, leg, cats);
	struct flight *f = flight_find(q, leg, cats, hash);
	int rv;

	leg->started = ck_mono_usec();
	if (f != NULL) {
		struct leg **pp = &f->waiters;

		while (*pp != NULL)
			pp = &(*pp)->next_waiter;
		*pp = leg;
		leg->flight = f;
		ck_cache_note_coalesced(q->fo->cache);
		log_debug(q->call->log_id, "adapter %s: joined the identical "
		    "call in flight", leg->ad->name);
		return 0;
	}
	f = calloc(1, sizeof(*f));
	if (f == NULL)
		return CK_ENOMEM;
	f->ad = leg->ad;
	f->cats = cats;
	f->cache = q->cache;
	if (ck_strlcpy(f->court, q->court_id, sizeof(f->court)) >=
	    sizeof(f->court) || ck_strlcpy(f->debtor_id, q->debtor_id,
	    sizeof(f->debtor_id)) >= sizeof(f->debtor_id))
		hash = 0;	/* cut short: nothing may join this one */
	f->hash = hash;
	if (f->cache != NULL && leg->ad->nsources > 0)
		flight_keys(f, q);
	f->waiters = leg;
	leg->flight = f;
	f->next = flights;
	flights = f;
	q->ac.skip_sources = leg->skip;
	rv = leg->ad->ops->start(leg->ad->self, &q->ac, on_flight_done, f,
	    &f->handle);
	q->ac.skip_sources = NULL;
	if (rv != 0) {
		flight_unlink(f);
		flight_free(f);
		leg->flight = NULL;
	}
	return rv;
}

uint32_t
ck_category_mask(const int *cats, size_t n)
{
	uint32_t mask = 0;

	for (size_t i = 0; i < n; i++)
		if (ck_category_label(cats[i]) != NULL)
			mask |= CK_CATEGORY_BIT(cats[i]);
	return mask;
}

int
ck_category_by_name(const char *name)
{
	for (int c = CK_CATEGORY_DEPOSIT; c <= CK_CATEGORY_ENTERPRISE; c++)
		if (strcmp(name, ck_category_name(c)) == 0)
			return c;
	return 0;
}

void
ck_fanout_query(const struct ck_fanout *fo, struct ck_call *call,
    const struct ck_fanout_query *fq)
{
	struct query *q = ck_call_alloc(call, sizeof(*q));
	uint64_t now = ck_mono_usec(), margin, budget;

	if (q == NULL) {
		ck_call_fail(call, CK_GRPC_RESOURCE_EXHAUSTED,
		    "server out of memory");
		return;
	}
	memset(q, 0, sizeof(*q));
	q->call = call;
	q->fo = fo;
	q->mask = fq->categories;
	q->denied = fq->denied & ~fq->categories;
	q->debtor_id = fq->resident_id != NULL ? fq->resident_id : fq->uscc;
	q->court_id = fq->court_id;
	q->cache = fo->cache;
	if (q->cache != NULL &&
	    ck_cache_debtor(q->cache, q->debtor_id, q->cdebtor) != 0)
		q->cache = NULL;	/* live only */
	if (fo->refkeys != NULL) {
		ck_ref_debtor_hash(fo->refkeys, 0, q->debtor_id, q->debtor);
		call->audit_debtor = q->debtor;	/* the audit's hash too */
	}
	margin = (uint64_t)call->cfg->query_margin_ms * 1000u;
	budget = call->deadline > now + margin ? call->deadline - now - margin :
	    0;

	struct ck_agency_call *ac = &q->ac;
	ac->size = sizeof(*ac);
	ac->op = CK_OP_QUERY;
	ac->log_id = call->log_id;
	ac->broker_id = call->cfg->broker_id;
	ac->court_id = fq->court_id;
	ac->officer_id = fq->officer_id;
	ac->case_number = fq->case_number;
	ac->document_number = "";
	ac->idempotency_key = "";
	ac->origin = ck_origin_name(call->origin);
	ac->via = fq->via;
	ac->nvia = fq->nvia;
	ac->resident_id = fq->resident_id;
	ac->uscc = fq->uscc;
	ac->name = fq->name;
	ac->categories = fq->categories;
	ac->timeout_usec = budget;

	call->handler_data = q;
	for (size_t i = 0; fo->adapters != NULL && i < fo->adapters->n; i++) {
		struct ck_adapter *ad = &fo->adapters->list[i];
		struct leg *leg;

		if (!(ad->categories & (q->mask | q->denied)) ||
		    !(ad->ops->ops & CK_OP_BIT(CK_OP_QUERY)) ||
		    q->nlegs == CK_ARRAY_SIZE(q->legs))
			continue;
		leg = &q->legs[q->nlegs++];
		leg->q = q;
		leg->ad = ad;
		/* room for sources the adapter did not announce: a partner
		 * broker's are known only from its answer */
		leg->cap = ad->nsources + 64;
		leg->nresults = ad->nsources;
		leg->results = ck_call_alloc(call,
		    leg->cap * sizeof(*leg->results));
		if (leg->results == NULL) {
			ck_call_fail(call, CK_GRPC_RESOURCE_EXHAUSTED,
			    "server out of memory");
			cancel_legs(q);
			return;
		}
		memset(leg->results, 0, leg->cap * sizeof(*leg->results));
		if (!deny_leg(leg, fq)) {
			ck_call_fail(call, CK_GRPC_RESOURCE_EXHAUSTED,
			    "server out of memory");
			return;
		}
	}
	for (size_t i = 0; i < q->nlegs; i++) {
		from_cache(q, &q->legs[i], fq->max_age_s);
		if (!q->legs[i].done)
			q->pending++;
	}
	if (q->pending == 0 || budget == 0) {
		query_finish(q);
		return;
	}
	q->timer = evtimer_new(call->base, on_query_timer, q);
	if (q->timer == NULL) {
		ck_call_fail(call, CK_GRPC_RESOURCE_EXHAUSTED,
		    "server out of memory");
		return;
	}
	struct timeval tv = {
		.tv_sec = (time_t)((budget + margin / 2) / 1000000u),
		.tv_usec = (suseconds_t)((budget + margin / 2) % 1000000u),
	};
	evtimer_add(q->timer, &tv);
	call->on_cancel = on_query_cancel;
	for (size_t i = 0; i < q->nlegs; i++) {
		struct leg *leg = &q->legs[i];
		int rv;

		if (leg->done)
			continue;
		rv = leg_start(q, leg);
		if (rv != 0) {
			log_warn(call->log_id, "adapter %s failed to start: %s",
			    leg->ad->name, ck_strerror(rv));
			leg->done = true;
			q->pending--;
			for (size_t j = 0; j < leg->ad->nsources; j++)
				if (leg->results[j] == NULL)
					leg->results[j] = new_result(call,
					    leg->ad->sources[j],
					    leg_category(leg),
					    CHAKONG__V1__SOURCE_STATUS__SOURCE_ERROR,
					    "the adapter could not start the "
					    "call");
		}
	}
	if (q->pending == 0)
		query_finish(q);
}
