/*
 * serve.c: the simulator's gRPC side: every endpoint's agency methods
 * (chakong.agency.v1.*), the faults they inject, and the control service
 * (chakong.test.v1.AgencySim plus Testing/SetClock).
 *
 * An agency call:
 *
 *   arrives --count--> draw the fault (reset, hang, error, garbage, none)
 *     reset:   abort the TCP connection now (RST); no answer
 *     hang:    no answer; the call ends when the client gives up (or at
 *              its grpc-timeout, when the server answers DEADLINE_EXCEEDED)
 *     none:    do the work (ledger commit before anything is answered)
 *     error, garbage: no work (unless apply_before_fault)
 *   --> answer after latency_ms + random(0..jitter) on a timer, or at once
 *
 * Each listener has its own ck_config, which is how a handler knows which
 * endpoint a call reached (call->cfg). Everything runs on the one event
 * loop; ledger commits are synchronous (durable before the reply).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "bank.pb-c.h"
#include "chakong/status.h"
#include "clock.h"
#include "config.h"
#include "enterprise.pb-c.h"
#include "grpc_frame.h"
#include "health.pb-c.h"
#include "household.pb-c.h"
#include "log.h"
#include "realestate.pb-c.h"
#include "rpc.h"
#include "server.h"
#include "sim.h"
#include "testing.h"
#include "tls.h"
#include "util.h"
#include "vehicle.pb-c.h"

struct sim sim_g;

static const char *const method_names[SIM_NMETHODS] = {
	[SIM_M_QUERY_ACCOUNTS] = "QueryAccounts",
	[SIM_M_FREEZE] = "Freeze",
	[SIM_M_EXTEND] = "Extend",
	[SIM_M_RELEASE] = "Release",
	[SIM_M_DEDUCT] = "Deduct",
	[SIM_M_QUERY_PROPERTIES] = "QueryProperties",
	[SIM_M_QUERY_VEHICLES] = "QueryVehicles",
	[SIM_M_SEAL] = "Seal",
	[SIM_M_LOOKUP_PERSON] = "LookupPerson",
	[SIM_M_LOOKUP_ENTERPRISE] = "LookupEnterprise",
};

const char *
sim_method_name(enum sim_method_id m)
{
	return m < SIM_NMETHODS ? method_names[m] : "?";
}

const char *
sim_ep_kind_name(enum sim_ep_kind kind)
{
	static const char *const names[] = { "bank", "realestate", "vehicle",
		"household", "enterprise" };

	return (size_t)kind < CK_ARRAY_SIZE(names) ? names[kind] : "?";
}

/* ---- replies from the population and the ledger ----------------------- */

static char *
date_str(struct ck_arena *arena, const struct ck_date *d)
{
	char *p = ck_arena_alloc(arena, 16);

	if (p != NULL)
		snprintf(p, 16, "%04d-%02d-%02d", d->year, d->month, d->day);
	return p;
}

static void *
zalloc(struct ck_arena *arena, size_t n)
{
	void *p = ck_arena_alloc(arena, n);

	if (p != NULL)
		memset(p, 0, n);
	return p;
}

static void
account_ref(const struct sim_subject *sub, const struct sim_account *a,
    struct sim_asset_ref *ref)
{
	ref->kind = SIM_KIND_BANK;
	ref->scope = sim_banks[a->bank].code;
	ref->asset_id = a->no;
	ref->subject_id = sub->id;
	ref->currency = a->currency;
	ref->base_balance_fen = a->balance_fen;
}

static void
registry_ref(enum sim_kind kind, const struct sim_subject *sub,
    const char *asset_id, struct sim_asset_ref *ref)
{
	ref->kind = kind;
	ref->scope = "";
	ref->asset_id = asset_id;
	ref->subject_id = sub->id;
	ref->currency = "";
	ref->base_balance_fen = 0;
}

/* A subject's real estate units or vehicles (sub NULL: none). */
static size_t
registry_count(const struct sim_subject *sub, enum sim_kind kind)
{
	if (sub == NULL)
		return 0;
	return kind == SIM_KIND_REALESTATE ? sub->nproperties : sub->nvehicles;
}

/* The asset id (unit_id, vehicle id) of a subject's i-th registry asset. */
static const char *
registry_id(const struct sim_subject *sub, enum sim_kind kind, size_t i)
{
	return kind == SIM_KIND_REALESTATE ? sub->properties[i].unit_id
					   : sub->vehicles[i].id;
}

static int
build_account(struct sim *s, const struct sim_subject *sub,
    const struct sim_account *a, int64_t now, struct ck_arena *arena,
    Chakong__Agency__V1__Account **out)
{
	Chakong__Agency__V1__Account *x = ck_arena_alloc(arena, sizeof(*x));
	struct sim_asset_ref ref;

	if (x == NULL)
		return CK_ENOMEM;
	chakong__agency__v1__account__init(x);
	x->account_no = (char *)a->no;
	x->account_type = (char *)a->type;
	x->currency = (char *)a->currency;
	x->branch = (char *)a->branch;
	account_ref(sub, a, &ref);
	*out = x;
	return sim_ledger_account(s->ledger, &ref, now, arena, x);
}

/*
 * The query replies, one builder per endpoint kind, all of one shape
 * (query_kinds below): `reply` is the kind's reply message, initialised;
 * sub NULL answers "not found".
 */
static int
build_accounts(struct sim *s, const struct sim_endpoint *ep,
    const struct sim_subject *sub, int64_t now, struct ck_arena *arena,
    void *reply)
{
	Chakong__Agency__V1__QueryAccountsReply *r = reply;
	int rc;

	r->bank_code = (char *)sim_banks[ep->bank].code;
	r->bank_name = (char *)ep->bank_name;
	if (sub == NULL)
		return 0;
	r->accounts = ck_arena_alloc(
	    arena, (SIM_MAX_ACCOUNTS + SIM_MAX_GRANTED + 1) * sizeof(*r->accounts));
	if (r->accounts == NULL)
		return CK_ENOMEM;
	for (size_t i = 0; i < sub->naccounts; i++) {
		if (sub->accounts[i].bank != ep->bank)
			continue;
		rc = build_account(s, sub, &sub->accounts[i], now, arena,
		    &r->accounts[r->n_accounts]);
		if (rc != 0)
			return rc;
		r->n_accounts++;
	}
	r->found = r->n_accounts > 0;
	return 0;
}

static int
build_properties(struct sim *s, const struct sim_endpoint *ep,
    const struct sim_subject *sub, int64_t now, struct ck_arena *arena,
    void *reply)
{
	Chakong__Agency__V1__QueryPropertiesReply *r = reply;
	struct sim_asset_ref ref;
	int rc;

	(void)ep;
	if (sub == NULL || sub->nproperties == 0)
		return 0;
	r->found = true;
	r->properties =
	    zalloc(arena, sub->nproperties * sizeof(*r->properties));
	if (r->properties == NULL)
		return CK_ENOMEM;
	for (size_t i = 0; i < sub->nproperties; i++) {
		const struct sim_property *p = &sub->properties[i];
		Chakong__Agency__V1__Property *x =
		    ck_arena_alloc(arena, sizeof(*x));

		if (x == NULL)
			return CK_ENOMEM;
		chakong__agency__v1__property__init(x);
		x->unit_id = (char *)p->unit_id;
		x->certificate_no = (char *)p->certificate_no;
		x->address = (char *)p->address;
		x->area_cm2 = p->area_cm2;
		x->usage = (char *)p->usage;
		x->share_percent = p->share_percent;
		registry_ref(SIM_KIND_REALESTATE, sub, p->unit_id, &ref);
		rc = sim_ledger_seals(s->ledger, &ref, now, arena,
		    &x->encumbrances, &x->n_encumbrances);
		if (rc != 0)
			return rc;
		r->properties[r->n_properties++] = x;
	}
	return 0;
}

static int
build_vehicles(struct sim *s, const struct sim_endpoint *ep,
    const struct sim_subject *sub, int64_t now, struct ck_arena *arena,
    void *reply)
{
	Chakong__Agency__V1__QueryVehiclesReply *r = reply;
	struct sim_asset_ref ref;
	int rc;

	(void)ep;
	if (sub == NULL || sub->nvehicles == 0)
		return 0;
	r->found = true;
	r->vehicles = zalloc(arena, sub->nvehicles * sizeof(*r->vehicles));
	if (r->vehicles == NULL)
		return CK_ENOMEM;
	for (size_t i = 0; i < sub->nvehicles; i++) {
		const struct sim_vehicle *v = &sub->vehicles[i];
		Chakong__Agency__V1__Vehicle *x =
		    ck_arena_alloc(arena, sizeof(*x));

		if (x == NULL)
			return CK_ENOMEM;
		chakong__agency__v1__vehicle__init(x);
		x->vehicle_id = (char *)v->id;
		x->plate = (char *)v->plate;
		x->vin = (char *)v->vin;
		x->make_model = (char *)v->make_model;
		x->registered_on = date_str(arena, &v->registered_on);
		registry_ref(SIM_KIND_VEHICLE, sub, v->id, &ref);
		rc = sim_ledger_seals(s->ledger, &ref, now, arena,
		    &x->encumbrances, &x->n_encumbrances);
		if (rc != 0)
			return rc;
		if (x->registered_on == NULL)
			return CK_ENOMEM;
		r->vehicles[r->n_vehicles++] = x;
	}
	return 0;
}

static int
build_person(struct sim *s, const struct sim_endpoint *ep,
    const struct sim_subject *sub, int64_t now, struct ck_arena *arena,
    void *reply)
{
	static char sex[2][2] = { "M", "F" };
	Chakong__Agency__V1__LookupPersonReply *r = reply;

	(void)s;
	(void)ep;
	(void)now;
	if (sub == NULL || sub->enterprise)
		return 0;
	r->found = true;
	r->name = (char *)sub->name;
	r->sex = sub->sex == 'M' ? sex[0] : sex[1];
	r->birth_date = date_str(arena, &sub->birth);
	r->registered_address = (char *)sub->address;
	r->members = zalloc(arena, (sub->nmembers + 1) * sizeof(char *));
	if (r->birth_date == NULL || r->members == NULL)
		return CK_ENOMEM;
	for (size_t i = 0; i < sub->nmembers; i++)
		r->members[r->n_members++] = (char *)sub->members[i];
	return 0;
}

static int
build_enterprise(struct sim *s, const struct sim_endpoint *ep,
    const struct sim_subject *sub, int64_t now, struct ck_arena *arena,
    void *reply)
{
	Chakong__Agency__V1__LookupEnterpriseReply *r = reply;
	Chakong__Agency__V1__Money *cap;

	(void)s;
	(void)ep;
	(void)now;
	if (sub == NULL || !sub->enterprise)
		return 0;
	cap = ck_arena_alloc(arena, sizeof(*cap));
	r->shareholders =
	    zalloc(arena, (sub->nholders + 1) * sizeof(*r->shareholders));
	r->established_on = date_str(arena, &sub->established);
	if (cap == NULL || r->shareholders == NULL || !r->established_on)
		return CK_ENOMEM;
	r->found = true;
	r->name = (char *)sub->name;
	r->status = (char *)sub->status;
	r->legal_representative = (char *)sub->legal_rep;
	chakong__agency__v1__money__init(cap);
	cap->fen = sub->capital_fen;
	cap->currency = "CNY";
	r->registered_capital = cap;
	r->registered_address = (char *)sub->address;
	for (size_t i = 0; i < sub->nholders; i++) {
		Chakong__Agency__V1__Shareholder *h =
		    ck_arena_alloc(arena, sizeof(*h));

		if (h == NULL)
			return CK_ENOMEM;
		chakong__agency__v1__shareholder__init(h);
		h->name = (char *)sub->holders[i].name;
		h->subscribed_fen = sub->holders[i].subscribed_fen;
		r->shareholders[r->n_shareholders++] = h;
	}
	return 0;
}

typedef int (*build_fn)(struct sim *s, const struct sim_endpoint *ep,
    const struct sim_subject *sub, int64_t now, struct ck_arena *arena,
    void *reply);

/*
 * Each endpoint kind's one query method (QueryAccounts, QueryProperties,
 * QueryVehicles, LookupPerson, LookupEnterprise): its reply, its builder,
 * where the control service's Lookup puts it, and what the agency answers
 * when building fails.
 */
struct query_kind {
	const ProtobufCMessageDescriptor *reply;
	build_fn build;
	Chakong__Test__V1__EndpointView__ReplyCase view_case;
	int fail_code;
	const char *fail_msg;
};

#define QUERY(reply, fn, view, code, msg)                                      \
	{                                                                      \
		&chakong__agency__v1__##reply##__descriptor, fn,               \
		    CHAKONG__TEST__V1__ENDPOINT_VIEW__REPLY_##view, code, msg  \
	}

static const struct query_kind query_kinds[] = {
	[SIM_EP_BANK] = QUERY(query_accounts_reply, build_accounts, ACCOUNTS,
	    CK_GRPC_UNAVAILABLE, "ledger unavailable"),
	[SIM_EP_REALESTATE] = QUERY(query_properties_reply, build_properties,
	    PROPERTIES, CK_GRPC_UNAVAILABLE, "ledger unavailable"),
	[SIM_EP_VEHICLE] = QUERY(query_vehicles_reply, build_vehicles, VEHICLES,
	    CK_GRPC_UNAVAILABLE, "ledger unavailable"),
	[SIM_EP_HOUSEHOLD] = QUERY(lookup_person_reply, build_person, PERSON,
	    CK_GRPC_RESOURCE_EXHAUSTED, "server out of memory"),
	[SIM_EP_ENTERPRISE] = QUERY(lookup_enterprise_reply, build_enterprise,
	    ENTERPRISE, CK_GRPC_RESOURCE_EXHAUSTED, "server out of memory"),
};

/* One endpoint's query reply for a subject (NULL: unknown). */
static int
build_view(struct sim *s, const struct sim_endpoint *ep,
    const struct sim_subject *sub, int64_t now, struct ck_arena *arena,
    Chakong__Test__V1__EndpointView *v)
{
	const struct query_kind *q;
	const ProtobufCFieldDescriptor *f;
	ProtobufCMessage *m;

	if ((size_t)ep->kind >= CK_ARRAY_SIZE(query_kinds))
		return CK_EINVAL;
	q = &query_kinds[ep->kind];
	/* the oneof member the kind's case names (accounts, properties, ...) */
	f = protobuf_c_message_descriptor_get_field(
	    &chakong__test__v1__endpoint_view__descriptor, q->view_case);
	if ((m = ck_arena_alloc(arena, q->reply->sizeof_message)) == NULL)
		return CK_ENOMEM;
	protobuf_c_message_init(q->reply, m);
	v->reply_case = q->view_case;
	memcpy((uint8_t *)v + f->offset, &m, sizeof(m));
	return q->build(s, ep, sub, now, arena, m);
}

int
sim_lookup(struct sim *s, const char *id, int64_t now, struct ck_arena *arena,
    Chakong__Test__V1__LookupReply **out)
{
	Chakong__Test__V1__LookupReply *r = ck_arena_alloc(arena, sizeof(*r));
	const struct sim_subject *sub = sim_population_find(s->pop, id);
	int rc;

	if (r == NULL)
		return CK_ENOMEM;
	chakong__test__v1__lookup_reply__init(r);
	r->found = sub != NULL;
	r->name = sub != NULL ? (char *)sub->name : "";
	r->endpoints = zalloc(arena, (s->neps + 1) * sizeof(*r->endpoints));
	if (r->endpoints == NULL)
		return CK_ENOMEM;
	for (size_t i = 0; i < s->neps; i++) {
		struct sim_endpoint *ep = &s->eps[i];
		Chakong__Test__V1__EndpointView *v =
		    ck_arena_alloc(arena, sizeof(*v));

		if (v == NULL)
			return CK_ENOMEM;
		chakong__test__v1__endpoint_view__init(v);
		v->endpoint = ep->name;
		v->kind = (char *)sim_ep_kind_name(ep->kind);
		v->address = ep->srv != NULL
		    ? (char *)ck_server_address(ep->srv)
		    : ep->listen;
		v->agency_id = ep->agency_id;
		if ((rc = build_view(s, ep, sub, now, arena, v)) != 0)
			return rc;
		r->endpoints[r->n_endpoints++] = v;
	}
	*out = r;
	return 0;
}

int
sim_ledger_dump(struct sim *s, const char *id, int64_t now,
    struct ck_arena *arena, Chakong__Test__V1__LedgerReply **out)
{
	static const enum sim_kind registries[] = { SIM_KIND_REALESTATE,
		SIM_KIND_VEHICLE };
	Chakong__Test__V1__LedgerReply *r = ck_arena_alloc(arena, sizeof(*r));
	const struct sim_subject *sub = sim_population_find(s->pop, id);
	struct sim_asset_ref ref;
	struct ck_date today;
	int rc;

	if (r == NULL)
		return CK_ENOMEM;
	chakong__test__v1__ledger_reply__init(r);
	r->now_unix_s = now;
	ck_date_from_unix_cst(now, &today);
	r->today = date_str(arena, &today);
	r->assets = zalloc(arena,
	    (SIM_MAX_ACCOUNTS + SIM_MAX_GRANTED + SIM_MAX_PROPERTIES +
	    SIM_MAX_VEHICLES) *
		sizeof(*r->assets));
	if (r->today == NULL || r->assets == NULL)
		return CK_ENOMEM;
	*out = r;
	if (sub == NULL)
		return 0;
	for (size_t i = 0; i < sub->naccounts; i++) {
		account_ref(sub, &sub->accounts[i], &ref);
		if ((rc = sim_ledger_view(s->ledger, &ref, now, arena,
			 &r->assets[r->n_assets++])) != 0)
			return rc;
	}
	for (size_t k = 0; k < CK_ARRAY_SIZE(registries); k++) {
		enum sim_kind kind = registries[k];

		for (size_t i = 0; i < registry_count(sub, kind); i++) {
			registry_ref(
			    kind, sub, registry_id(sub, kind, i), &ref);
			if ((rc = sim_ledger_view(s->ledger, &ref, now, arena,
				 &r->assets[r->n_assets++])) != 0)
				return rc;
		}
	}
	return 0;
}

/* ---- agency calls ----------------------------------------------------- */

/* What a method's work produced: a reply, or a gRPC error. */
struct work {
	ProtobufCMessage *reply;
	struct sim_outcome oc;
	int code;
	char msg[200];
};

typedef void (*work_fn)(
    struct ck_call *call, struct sim_endpoint *ep, struct work *w);

struct sim_method {
	struct ck_method m; /* first: the server hands us &m */
	enum sim_method_id id;
	const ProtobufCMessageDescriptor *output;
	work_fn work;
};

/* A reply waiting for its latency to pass. */
struct answer {
	struct event *ev;
	const struct sim_method *sm;
	struct work w;
	bool garbage;
};

static struct sim_endpoint *
endpoint_of(const struct ck_call *call)
{
	for (size_t i = 0; i < sim_g.neps; i++)
		if (sim_g.eps[i].cfg == call->cfg)
			return &sim_g.eps[i];
	return NULL;
}

static void
fail(struct work *w, int code, const char *msg)
{
	w->code = code;
	ck_strlcpy(w->msg, msg, sizeof(w->msg));
}

static const char *
subject_id(const Chakong__Agency__V1__Subject *s)
{
	if (s == NULL)
		return NULL;
	if (s->id_case == CHAKONG__AGENCY__V1__SUBJECT__ID_RESIDENT_ID)
		return s->resident_id;
	if (s->id_case == CHAKONG__AGENCY__V1__SUBJECT__ID_USCC)
		return s->uscc;
	return NULL;
}

/*
 * The subject a request names, NULL when the population does not know it;
 * false (with w->code set) when the request names none.
 */
static bool
want_subject(const Chakong__Agency__V1__Subject *s, struct work *w,
    const struct sim_subject **out)
{
	const char *id = subject_id(s);

	if (id == NULL || id[0] == '\0') {
		fail(w, CK_GRPC_INVALID_ARGUMENT,
		    "subject: resident_id or uscc required");
		return false;
	}
	*out = sim_population_find(sim_g.pop, id);
	return true;
}

static bool
want_ctx(const Chakong__Agency__V1__CallContext *ctx, struct work *w)
{
	if (ctx == NULL || ctx->idempotency_key[0] == '\0') {
		fail(w, CK_GRPC_INVALID_ARGUMENT,
		    "ctx.idempotency_key: required on state-changing calls");
		return false;
	}
	if (ctx->court_id[0] == '\0' || ctx->case_number[0] == '\0') {
		fail(w, CK_GRPC_INVALID_ARGUMENT,
		    "ctx.court_id, ctx.case_number: required on "
		    "state-changing calls");
		return false;
	}
	return true;
}

/* A state-changing call's ledger result: its reply, or rc as an error. */
static void
ledger_answer(struct work *w, int rc, ProtobufCMessage *reply)
{
	w->reply = reply;
	if (rc == 0)
		return;
	if (rc == CK_EINVAL)
		fail(w, CK_GRPC_INVALID_ARGUMENT,
		    "ctx.idempotency_key: required, at most 400 bytes");
	else
		fail(w, CK_GRPC_UNAVAILABLE, "ledger unavailable");
}

static void *
new_reply(struct ck_call *call, const ProtobufCMessageDescriptor *d)
{
	ProtobufCMessage *m = ck_call_alloc(call, d->sizeof_message);

	if (m != NULL)
		protobuf_c_message_init(d, m);
	return m;
}

#define NEW_REPLY(call, w, sm_desc)                                            \
	(((w)->reply = new_reply((call), (sm_desc))) != NULL)

/* The subject field every agency request carries (NULL: none set). */
static const Chakong__Agency__V1__Subject *
request_subject(const ProtobufCMessage *req)
{
	const ProtobufCFieldDescriptor *f =
	    protobuf_c_message_descriptor_get_field_by_name(
		req->descriptor, "subject");
	const Chakong__Agency__V1__Subject *sub = NULL;

	if (f != NULL)
		memcpy(&sub, (const uint8_t *)req + f->offset, sizeof(sub));
	return sub;
}

/* The endpoint kind's query method (query_kinds), whichever it is. */
static void
work_query(struct ck_call *call, struct sim_endpoint *ep, struct work *w)
{
	const struct query_kind *q = &query_kinds[ep->kind];
	const struct sim_subject *sub;

	if (!want_subject(request_subject(call->request), w, &sub))
		return;
	if (!NEW_REPLY(call, w, q->reply) ||
	    q->build(&sim_g, ep, sub, ck_clock_now(), call->arena, w->reply) !=
		0)
		fail(w, q->fail_code, q->fail_msg);
}

/* The amount of a Freeze or Deduct; false (with w->code set) unless > 0. */
static bool
want_amount(const Chakong__Agency__V1__Money *amount, struct work *w)
{
	if (amount == NULL || amount->fen <= 0) {
		fail(w, CK_GRPC_INVALID_ARGUMENT, "amount: must be positive");
		return false;
	}
	return true;
}

static void
work_freeze(struct ck_call *call, struct sim_endpoint *ep, struct work *w)
{
	const Chakong__Agency__V1__FreezeRequest *req =
	    (const void *)call->request;
	const struct sim_subject *sub;
	struct sim_asset_ref ref, *refp = NULL;
	Chakong__Agency__V1__FreezeReply *r = NULL;
	int rc;

	if (!want_ctx(req->ctx, w) || !want_subject(req->subject, w, &sub) ||
	    !want_amount(req->amount, w))
		return;
	for (size_t i = 0; sub != NULL && i < sub->naccounts; i++)
		if (sub->accounts[i].bank == ep->bank &&
		    strcmp(sub->accounts[i].no, req->account_no) == 0) {
			account_ref(sub, &sub->accounts[i], &ref);
			refp = &ref;
		}
	rc = sim_ledger_freeze(sim_g.ledger, ep->scope, refp, req,
	    ck_clock_now(), call->arena, &r, &w->oc);
	ledger_answer(w, rc, r != NULL ? &r->base : NULL);
}

static void
work_deduct(struct ck_call *call, struct sim_endpoint *ep, struct work *w)
{
	const Chakong__Agency__V1__DeductRequest *req =
	    (const void *)call->request;
	const struct sim_subject *sub;
	Chakong__Agency__V1__DeductReply *r = NULL;
	int rc;

	if (!want_ctx(req->ctx, w) || !want_subject(req->subject, w, &sub) ||
	    !want_amount(req->amount, w))
		return;
	rc = sim_ledger_deduct(sim_g.ledger, ep->scope, req, ck_clock_now(),
	    call->arena, &r, &w->oc);
	ledger_answer(w, rc, r != NULL ? &r->base : NULL);
}

static void
work_seal(struct ck_call *call, struct sim_endpoint *ep, struct work *w)
{
	const Chakong__Agency__V1__SealRequest *req =
	    (const void *)call->request;
	const struct sim_subject *sub;
	struct sim_asset_ref ref, *refp = NULL;
	Chakong__Agency__V1__SealReply *r = NULL;
	enum sim_kind kind;
	int rc;

	if (!want_ctx(req->ctx, w) || !want_subject(req->subject, w, &sub))
		return;
	kind = ep->kind == SIM_EP_REALESTATE ? SIM_KIND_REALESTATE
					     : SIM_KIND_VEHICLE;
	for (size_t i = 0; i < registry_count(sub, kind); i++) {
		const char *id = registry_id(sub, kind, i);

		if (strcmp(id, req->asset_id) == 0) {
			registry_ref(kind, sub, id, &ref);
			refp = &ref;
		}
	}
	rc = sim_ledger_seal(sim_g.ledger, ep->scope, refp, req, ck_clock_now(),
	    call->arena, &r, &w->oc);
	ledger_answer(w, rc, r != NULL ? &r->base : NULL);
}

static void
work_extend(struct ck_call *call, struct sim_endpoint *ep, struct work *w)
{
	const Chakong__Agency__V1__ExtendRequest *req =
	    (const void *)call->request;
	const struct sim_subject *sub;
	Chakong__Agency__V1__ExtendReply *r = NULL;
	int rc;

	if (!want_ctx(req->ctx, w) || !want_subject(req->subject, w, &sub))
		return;
	rc = sim_ledger_extend(sim_g.ledger, ep->scope, req, ck_clock_now(),
	    call->arena, &r, &w->oc);
	ledger_answer(w, rc, r != NULL ? &r->base : NULL);
}

static void
work_release(struct ck_call *call, struct sim_endpoint *ep, struct work *w)
{
	const Chakong__Agency__V1__ReleaseRequest *req =
	    (const void *)call->request;
	const struct sim_subject *sub;
	Chakong__Agency__V1__ReleaseReply *r = NULL;
	int rc;

	if (!want_ctx(req->ctx, w) || !want_subject(req->subject, w, &sub))
		return;
	rc = sim_ledger_release(sim_g.ledger, ep->scope, req, ck_clock_now(),
	    call->arena, &r, &w->oc);
	ledger_answer(w, rc, r != NULL ? &r->base : NULL);
}

/* ---- faults ----------------------------------------------------------- */

static uint32_t
draw(struct sim_endpoint *ep, uint32_t n)
{
	uint64_t z = (ep->rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return (uint32_t)((z ^ (z >> 31)) % n);
}

static bool
hit(struct sim_endpoint *ep, uint32_t permille)
{
	return permille > 0 && draw(ep, 1000) < permille;
}

/*
 * Abort the TCP connection carrying the current call: the handler runs
 * inside the connection's read event, so the running event's descriptor
 * is that connection's socket (checked against the endpoint's address).
 * connect(AF_UNSPEC) on an established socket sends RST (Linux
 * tcp_disconnect); the shutdown makes libevent see the end and close its
 * side through the server's normal path. server.c keeps ownership of the
 * descriptor: nothing here closes it.
 */
static bool
reset_connection(struct sim_endpoint *ep, struct event_base *base)
{
	struct event *ev = event_base_get_running_event(base);
	evutil_socket_t fd = ev != NULL ? event_get_fd(ev) : -1;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct sockaddr unspec;
	struct linger lin = { .l_onoff = 1, .l_linger = 0 };
	char addr[64];

	if (fd < 0 || getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
		return false;
	ck_format_sockaddr(&ss, addr, sizeof(addr));
	if (strcmp(addr, ck_server_address(ep->srv)) != 0)
		return false;
	memset(&unspec, 0, sizeof(unspec));
	unspec.sa_family = AF_UNSPEC;
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lin, sizeof(lin));
	if (connect(fd, &unspec, sizeof(unspec)) != 0)
		log_debug(NULL, "reset: disconnect: %s", strerror(errno));
	shutdown(fd, SHUT_RDWR);
	return true;
}

/*
 * A reply whose body is not a valid protobuf encoding: one unknown field
 * that claims 100 bytes and holds 4. The gRPC framing is intact, so the
 * client's decoder, not its framer, must catch it.
 */
static void
reply_garbage(struct ck_call *call, const ProtobufCMessageDescriptor *d)
{
	static uint8_t junk[] = { 0x64, 'j', 'u', 'n', 'k' };
	ProtobufCMessage *m = new_reply(call, d);
	ProtobufCMessageUnknownField *uf = ck_call_alloc(call, sizeof(*uf));

	if (m == NULL || uf == NULL) {
		ck_call_fail(
		    call, CK_GRPC_RESOURCE_EXHAUSTED, "server out of memory");
		return;
	}
	uf->tag = 1;
	uf->wire_type = PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED;
	uf->len = sizeof(junk);
	uf->data = junk;
	m->n_unknown_fields = 1;
	m->unknown_fields = uf;
	ck_call_reply(call, m);
}

static void
send_answer(struct ck_call *call, struct answer *an)
{
	if (an->garbage)
		reply_garbage(call, an->sm->output);
	else if (an->w.code != 0 || an->w.reply == NULL)
		ck_call_fail(call, an->w.code ? an->w.code : CK_GRPC_INTERNAL,
		    "%s", an->w.msg);
	else
		ck_call_reply(call, an->w.reply);
}

static void
on_answer_due(evutil_socket_t fd, short what, void *arg)
{
	struct ck_call *call = arg;
	struct answer *an = call->handler_data;

	(void)fd;
	(void)what;
	event_free(an->ev);
	an->ev = NULL;
	call->on_cancel = NULL;
	send_answer(call, an);
}

static void
on_answer_cancel(struct ck_call *call)
{
	struct answer *an = call->handler_data;

	if (an->ev != NULL) {
		event_free(an->ev);
		an->ev = NULL;
	}
}

static void
on_hang_cancel(struct ck_call *call)
{
	(void)call; /* nothing held: the call simply ends */
}

static void
on_agency(struct ck_call *call)
{
	const struct sim_method *sm = (const struct sim_method *)call->method;
	struct sim_endpoint *ep = endpoint_of(call);
	struct sim_counters *c;
	const struct sim_fault *f;
	struct answer *an;
	enum { NONE, RESET, HANG, ERROR, GARBAGE } fate = NONE;
	uint32_t delay;

	an = ck_call_alloc(call, sizeof(*an));
	if (ep == NULL || an == NULL) {
		ck_call_fail(
		    call, CK_GRPC_INTERNAL, "no endpoint for this listener");
		return;
	}
	memset(an, 0, sizeof(*an));
	an->sm = sm;
	c = &ep->m[sm->id];
	c->calls++;
	f = &ep->fault;
	if (f->method[0] == '\0' ||
	    strcmp(f->method, method_names[sm->id]) == 0) {
		if (hit(ep, f->reset_permille))
			fate = RESET;
		else if (hit(ep, f->hang_permille))
			fate = HANG;
		else if (hit(ep, f->error_permille))
			fate = ERROR;
		else if (hit(ep, f->garbage_permille))
			fate = GARBAGE;
	}
	if (fate == NONE || f->apply_before_fault) {
		sm->work(call, ep, &an->w);
		c->replays += an->w.oc.replayed;
		c->effects += an->w.oc.effect;
		c->rejected += an->w.oc.rejected;
		c->conflicts += an->w.oc.conflict;
	}
	if (fate != NONE)
		c->faults++;
	switch (fate) {
	case RESET:
		if (reset_connection(ep, call->base)) {
			ep->resets++;
			log_info(call->log_id, "%s: injected connection reset",
			    ep->name);
			return;
		}
		log_warn(call->log_id,
		    "%s: cannot find the connection to "
		    "reset; answering UNAVAILABLE",
		    ep->name);
		fail(&an->w, CK_GRPC_UNAVAILABLE, "injected reset");
		an->w.reply = NULL;
		break;
	case HANG:
		ep->hangs++;
		call->on_cancel = on_hang_cancel;
		return;
	case ERROR:
		ep->injected_errors++;
		fail(&an->w,
		    f->error_code ? f->error_code : CK_GRPC_UNAVAILABLE,
		    "injected fault");
		an->w.reply = NULL;
		break;
	case GARBAGE:
		ep->garbage++;
		an->garbage = true;
		break;
	case NONE:
		break;
	}
	if (an->w.code != 0)
		c->errors++;
	delay = f->latency_ms;
	if (f->jitter_ms > 0)
		delay += draw(ep, f->jitter_ms + 1);
	if (delay == 0) {
		send_answer(call, an);
		return;
	}
	an->ev = evtimer_new(call->base, on_answer_due, call);
	if (an->ev == NULL) {
		send_answer(call, an);
		return;
	}
	call->handler_data = an;
	call->on_cancel = on_answer_cancel;
	struct timeval tv = {
		.tv_sec = delay / 1000,
		.tv_usec = (suseconds_t)(delay % 1000) * 1000,
	};
	evtimer_add(an->ev, &tv);
}

static void
on_health(struct ck_call *call)
{
	Grpc__Health__V1__HealthCheckResponse r =
	    GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;

	r.status =
	    GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
	ck_call_reply(call, &r.base);
}

/* ---- method tables ---------------------------------------------------- */

#define BROKER_ONLY CK_ACCESS_ROLE(CK_ROLE_BROKER)

#define AGENCY(svc, name, in, out, id, fn)                                     \
	{                                                                      \
		{ "/chakong.agency.v1." svc "/" name,                          \
			&chakong__agency__v1__##in##__descriptor, on_agency,   \
			BROKER_ONLY, 0 },                                      \
		    id, &chakong__agency__v1__##out##__descriptor, fn          \
	}

#define HEALTH                                                                 \
	{                                                                      \
		{ "/grpc.health.v1.Health/Check",                              \
			&grpc__health__v1__health_check_request__descriptor,   \
			on_health, CK_ACCESS_ANY, 0 },                         \
		    SIM_NMETHODS, NULL, NULL                                   \
	}

static const struct sim_method bank_methods[] = {
	AGENCY("Bank", "QueryAccounts", query_accounts_request,
	    query_accounts_reply, SIM_M_QUERY_ACCOUNTS, work_query),
	AGENCY("Bank", "Freeze", freeze_request, freeze_reply, SIM_M_FREEZE,
	    work_freeze),
	AGENCY("Bank", "Extend", extend_request, extend_reply, SIM_M_EXTEND,
	    work_extend),
	AGENCY("Bank", "Release", release_request, release_reply, SIM_M_RELEASE,
	    work_release),
	AGENCY("Bank", "Deduct", deduct_request, deduct_reply, SIM_M_DEDUCT,
	    work_deduct),
	HEALTH,
};

static const struct sim_method realestate_methods[] = {
	AGENCY("RealEstateRegistry", "QueryProperties",
	    query_properties_request, query_properties_reply,
	    SIM_M_QUERY_PROPERTIES, work_query),
	AGENCY("RealEstateRegistry", "Seal", seal_request, seal_reply,
	    SIM_M_SEAL, work_seal),
	AGENCY("RealEstateRegistry", "Extend", extend_request, extend_reply,
	    SIM_M_EXTEND, work_extend),
	AGENCY("RealEstateRegistry", "Release", release_request, release_reply,
	    SIM_M_RELEASE, work_release),
	HEALTH,
};

static const struct sim_method vehicle_methods[] = {
	AGENCY("VehicleRegistry", "QueryVehicles", query_vehicles_request,
	    query_vehicles_reply, SIM_M_QUERY_VEHICLES, work_query),
	AGENCY("VehicleRegistry", "Seal", seal_request, seal_reply, SIM_M_SEAL,
	    work_seal),
	AGENCY("VehicleRegistry", "Extend", extend_request, extend_reply,
	    SIM_M_EXTEND, work_extend),
	AGENCY("VehicleRegistry", "Release", release_request, release_reply,
	    SIM_M_RELEASE, work_release),
	HEALTH,
};

static const struct sim_method household_methods[] = {
	AGENCY("HouseholdRegistry", "LookupPerson", lookup_person_request,
	    lookup_person_reply, SIM_M_LOOKUP_PERSON, work_query),
	HEALTH,
};

static const struct sim_method enterprise_methods[] = {
	AGENCY("EnterpriseRegistry", "LookupEnterprise",
	    lookup_enterprise_request, lookup_enterprise_reply,
	    SIM_M_LOOKUP_ENTERPRISE, work_query),
	HEALTH,
};

static const struct ck_method *
find_in(const struct sim_method *t, size_t n, const char *path, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(t[i].m.path) == len &&
		    memcmp(t[i].m.path, path, len) == 0)
			return &t[i].m;
	return NULL;
}

#define FINDER(name, table)                                                    \
	static const struct ck_method *name(const char *path, size_t len)      \
	{                                                                      \
		return find_in(table, CK_ARRAY_SIZE(table), path, len);        \
	}

FINDER(find_bank, bank_methods)
FINDER(find_realestate, realestate_methods)
FINDER(find_vehicle, vehicle_methods)
FINDER(find_household, household_methods)
FINDER(find_enterprise, enterprise_methods)

static const ck_method_find_fn finders[] = {
	[SIM_EP_BANK] = find_bank,
	[SIM_EP_REALESTATE] = find_realestate,
	[SIM_EP_VEHICLE] = find_vehicle,
	[SIM_EP_HOUSEHOLD] = find_household,
	[SIM_EP_ENTERPRISE] = find_enterprise,
};

/* ---- the control service ---------------------------------------------- */

/*
 * The subject a Lookup or Ledger request names: whichever member of its
 * oneof id (resident_id, uscc) is set; NULL when neither is.
 */
static const char *
control_id(const ProtobufCMessage *req)
{
	static const char *const names[] = { "resident_id", "uscc" };

	for (size_t i = 0; i < CK_ARRAY_SIZE(names); i++) {
		const ProtobufCFieldDescriptor *f =
		    protobuf_c_message_descriptor_get_field_by_name(
			req->descriptor, names[i]);
		const uint8_t *p = (const uint8_t *)req;
		uint32_t set;
		const char *id;

		if (f == NULL)
			continue;
		memcpy(&set, p + f->quantifier_offset, sizeof(set));
		memcpy(&id, p + f->offset, sizeof(id));
		if (set == f->id)
			return id;
	}
	return NULL;
}

/* false (with the call failed) when a control request names no subject */
static bool
want_control_id(struct ck_call *call, const char *id)
{
	if (id != NULL && id[0] != '\0')
		return true;
	ck_call_fail(
	    call, CK_GRPC_INVALID_ARGUMENT, "resident_id or uscc: required");
	return false;
}

static void
on_lookup(struct ck_call *call)
{
	const char *id = control_id(call->request);
	Chakong__Test__V1__LookupReply *r;

	if (!want_control_id(call, id))
		return;
	if (sim_lookup(&sim_g, id, ck_clock_now(), call->arena, &r) != 0)
		ck_call_fail(call, CK_GRPC_UNAVAILABLE, "ledger unavailable");
	else
		ck_call_reply(call, &r->base);
}

static void
on_ledger(struct ck_call *call)
{
	const char *id = control_id(call->request);
	Chakong__Test__V1__LedgerReply *r;

	if (!want_control_id(call, id))
		return;
	if (sim_ledger_dump(&sim_g, id, ck_clock_now(), call->arena, &r) != 0)
		ck_call_fail(call, CK_GRPC_UNAVAILABLE, "ledger unavailable");
	else
		ck_call_reply(call, &r->base);
}

static struct sim_endpoint *
endpoint_named(const char *name)
{
	for (size_t i = 0; i < sim_g.neps; i++)
		if (strcmp(sim_g.eps[i].name, name) == 0)
			return &sim_g.eps[i];
	return NULL;
}

static void
on_deposit(struct ck_call *call)
{
	const Chakong__Test__V1__DepositRequest *req =
	    (const void *)call->request;
	Chakong__Test__V1__DepositReply r =
	    CHAKONG__TEST__V1__DEPOSIT_REPLY__INIT;
	const struct sim_subject *sub;
	const struct sim_account *acct;
	struct sim_asset_ref ref;
	int bank = -1, rc;
	int64_t now = ck_clock_now();

	if (req->endpoint[0] != '\0') {
		struct sim_endpoint *ep = endpoint_named(req->endpoint);

		if (ep != NULL && ep->kind == SIM_EP_BANK)
			bank = ep->bank;
	} else {
		bank = sim_bank_by_code(req->bank_code);
	}
	if (bank < 0) {
		ck_call_fail(call, CK_GRPC_NOT_FOUND,
		    "endpoint or bank_code: no such bank");
		return;
	}
	sub = sim_population_find_account(
	    sim_g.pop, bank, req->account_no, &acct);
	if (sub == NULL) {
		ck_call_fail(call, CK_GRPC_NOT_FOUND,
		    "account_no: no such account at this bank");
		return;
	}
	if (req->amount_fen == 0) {
		ck_call_fail(call, CK_GRPC_INVALID_ARGUMENT,
		    "amount_fen: must not be zero");
		return;
	}
	if (req->currency[0] != '\0' &&
	    strcmp(req->currency, acct->currency) != 0) {
		ck_call_fail(call, CK_GRPC_FAILED_PRECONDITION,
		    "currency: the account is held in %s", acct->currency);
		return;
	}
	account_ref(sub, acct, &ref);
	rc = sim_ledger_deposit(
	    sim_g.ledger, &ref, req->amount_fen, now, &r.captured_fen);
	if (rc == CK_ELIMIT) {
		ck_call_fail(call, CK_GRPC_FAILED_PRECONDITION,
		    "amount_fen: a debit takes at most the available balance");
		return;
	}
	if (rc != 0 ||
	    build_account(&sim_g, sub, acct, now, call->arena, &r.account) !=
		0) {
		ck_call_fail(call, CK_GRPC_UNAVAILABLE, "ledger unavailable");
		return;
	}
	log_notice(call->log_id,
	    "deposit of %lld fen at bank %s (captured %lld)",
	    (long long)req->amount_fen, sim_banks[bank].code,
	    (long long)r.captured_fen);
	ck_call_reply(call, &r.base);
}

static void
on_grant(struct ck_call *call)
{
	const Chakong__Test__V1__GrantRequest *req =
	    (const void *)call->request;
	Chakong__Test__V1__GrantReply r = CHAKONG__TEST__V1__GRANT_REPLY__INIT;
	struct sim_endpoint *ep = endpoint_named(req->endpoint);
	const char *id = req->id_case ==
	    CHAKONG__TEST__V1__GRANT_REQUEST__ID_USCC ? req->uscc :
	    req->resident_id;
	const struct sim_account *acct;
	int rc;

	if (ep == NULL || ep->kind != SIM_EP_BANK) {
		ck_call_fail(call, CK_GRPC_NOT_FOUND, "endpoint: no such bank");
		return;
	}
	if (req->balance_fen < 0) {
		ck_call_fail(call, CK_GRPC_INVALID_ARGUMENT,
		    "balance_fen: must not be negative");
		return;
	}
	rc = sim_population_grant_account(sim_g.pop, id != NULL ? id : "",
	    ep->bank, req->balance_fen, &acct);
	if (rc == CK_ENOTFOUND) {
		ck_call_fail(call, CK_GRPC_NOT_FOUND, "id: not in the "
		    "population");
		return;
	}
	if (rc != 0) {
		ck_call_fail(call, CK_GRPC_RESOURCE_EXHAUSTED, "id: the subject "
		    "has the most accounts a subject can have, or the "
		    "simulator gave its most grants");
		return;
	}
	if (build_account(&sim_g, sim_population_find(sim_g.pop, id), acct,
	    ck_clock_now(), call->arena, &r.account) != 0) {
		ck_call_fail(call, CK_GRPC_UNAVAILABLE, "ledger unavailable");
		return;
	}
	log_notice(call->log_id, "grant: a new account at bank %s",
	    sim_banks[ep->bank].code);
	ck_call_reply(call, &r.base);
}

static Chakong__Test__V1__FaultSpec *
fault_msg(struct ck_call *call, const struct sim_fault *f)
{
	Chakong__Test__V1__FaultSpec *m = ck_call_alloc(call, sizeof(*m));

	if (m == NULL)
		return NULL;
	chakong__test__v1__fault_spec__init(m);
	m->latency_ms = f->latency_ms;
	m->latency_jitter_ms = f->jitter_ms;
	m->error_permille = f->error_permille;
	m->error_code = f->error_code;
	m->reset_permille = f->reset_permille;
	m->hang_permille = f->hang_permille;
	m->garbage_permille = f->garbage_permille;
	m->apply_before_fault = f->apply_before_fault;
	m->method = (char *)f->method;
	return m;
}

/* Check a fault from the wire; on error the message is in why. */
static bool
fault_from_msg(const Chakong__Test__V1__FaultSpec *m, struct sim_fault *f,
    char *why, size_t whylen)
{
	bool known = m->method[0] == '\0';

	for (int i = 0; i < SIM_NMETHODS; i++)
		known = known || strcmp(m->method, method_names[i]) == 0;
	if (m->error_permille > 1000 || m->reset_permille > 1000 ||
	    m->hang_permille > 1000 || m->garbage_permille > 1000) {
		snprintf(why, whylen, "*_permille: at most 1000");
		return false;
	}
	if (m->error_code < 0 || m->error_code > 16) {
		snprintf(why, whylen, "error_code: a gRPC code, 1..16");
		return false;
	}
	if (m->latency_ms > 600000 || m->latency_jitter_ms > 600000) {
		snprintf(why, whylen,
		    "latency_ms, latency_jitter_ms: at most 600000");
		return false;
	}
	if (!known) {
		snprintf(why, whylen,
		    "method: not an agency method name "
		    "(\"Freeze\", \"QueryAccounts\", ...)");
		return false;
	}
	memset(f, 0, sizeof(*f));
	f->latency_ms = m->latency_ms;
	f->jitter_ms = m->latency_jitter_ms;
	f->error_permille = m->error_permille;
	f->error_code = m->error_code;
	f->reset_permille = m->reset_permille;
	f->hang_permille = m->hang_permille;
	f->garbage_permille = m->garbage_permille;
	f->apply_before_fault = m->apply_before_fault;
	ck_strlcpy(f->method, m->method, sizeof(f->method));
	return true;
}

static bool
selected(const struct sim_endpoint *ep, const char *name)
{
	return name[0] == '\0' || strcmp(name, "*") == 0 ||
	    strcmp(name, ep->name) == 0;
}

static void
on_fault(struct ck_call *call)
{
	const Chakong__Test__V1__FaultRequest *req =
	    (const void *)call->request;
	Chakong__Test__V1__FaultReply r = CHAKONG__TEST__V1__FAULT_REPLY__INIT;
	Chakong__Test__V1__FaultSpec none = CHAKONG__TEST__V1__FAULT_SPEC__INIT;
	struct sim_fault f;
	char why[128];

	if (req->endpoint[0] == '\0') {
		ck_call_fail(call, CK_GRPC_INVALID_ARGUMENT,
		    "endpoint: required (a name, or \"*\" for all)");
		return;
	}
	if (strcmp(req->endpoint, "*") != 0 &&
	    endpoint_named(req->endpoint) == NULL) {
		ck_call_fail(
		    call, CK_GRPC_NOT_FOUND, "endpoint: no such endpoint");
		return;
	}
	if (!fault_from_msg(
		req->clear || req->fault == NULL ? &none : req->fault, &f, why,
		sizeof(why))) {
		ck_call_fail(call, CK_GRPC_INVALID_ARGUMENT, "fault.%s", why);
		return;
	}
	r.faults = ck_call_alloc(call, (sim_g.neps + 1) * sizeof(*r.faults));
	if (r.faults == NULL) {
		ck_call_fail(
		    call, CK_GRPC_RESOURCE_EXHAUSTED, "server out of memory");
		return;
	}
	for (size_t i = 0; i < sim_g.neps; i++) {
		struct sim_endpoint *ep = &sim_g.eps[i];
		Chakong__Test__V1__EndpointFault *x;

		if (!selected(ep, req->endpoint))
			continue;
		ep->fault = f;
		x = ck_call_alloc(call, sizeof(*x));
		if (x == NULL)
			continue;
		chakong__test__v1__endpoint_fault__init(x);
		x->endpoint = ep->name;
		x->fault = fault_msg(call, &ep->fault);
		r.faults[r.n_faults++] = x;
		log_notice(call->log_id,
		    "%s: fault set: latency=%u+%ums "
		    "error=%u/1000 (code %d) reset=%u/1000 hang=%u/1000 "
		    "garbage=%u/1000 method=%s",
		    ep->name, f.latency_ms, f.jitter_ms, f.error_permille,
		    f.error_code, f.reset_permille, f.hang_permille,
		    f.garbage_permille, f.method[0] ? f.method : "*");
	}
	ck_call_reply(call, &r.base);
}

static void
on_counters(struct ck_call *call)
{
	const Chakong__Test__V1__CountersRequest *req =
	    (const void *)call->request;
	Chakong__Test__V1__CountersReply r =
	    CHAKONG__TEST__V1__COUNTERS_REPLY__INIT;

	r.endpoints =
	    ck_call_alloc(call, (sim_g.neps + 1) * sizeof(*r.endpoints));
	if (r.endpoints == NULL)
		goto oom;
	for (size_t i = 0; i < sim_g.neps; i++) {
		struct sim_endpoint *ep = &sim_g.eps[i];
		Chakong__Test__V1__EndpointCounters *x;

		if (!selected(ep, req->endpoint))
			continue;
		x = ck_call_alloc(call, sizeof(*x));
		if (x == NULL)
			goto oom;
		chakong__test__v1__endpoint_counters__init(x);
		x->endpoint = ep->name;
		x->resets = ep->resets;
		x->hangs = ep->hangs;
		x->garbage = ep->garbage;
		x->injected_errors = ep->injected_errors;
		x->methods =
		    ck_call_alloc(call, SIM_NMETHODS * sizeof(*x->methods));
		if (x->methods == NULL)
			goto oom;
		for (int m = 0; m < SIM_NMETHODS; m++) {
			const struct sim_counters *c = &ep->m[m];
			Chakong__Test__V1__MethodCounters *y;

			if (c->calls == 0)
				continue;
			y = ck_call_alloc(call, sizeof(*y));
			if (y == NULL)
				goto oom;
			chakong__test__v1__method_counters__init(y);
			y->method = (char *)method_names[m];
			y->calls = c->calls;
			y->effects = c->effects;
			y->replays = c->replays;
			y->rejected = c->rejected;
			y->key_conflicts = c->conflicts;
			y->errors = c->errors;
			y->faults = c->faults;
			x->methods[x->n_methods++] = y;
		}
		r.endpoints[r.n_endpoints++] = x;
	}
	/* the reply holds copies of the numbers: zeroing now is safe */
	if (req->reset)
		for (size_t i = 0; i < sim_g.neps; i++) {
			struct sim_endpoint *ep = &sim_g.eps[i];

			if (!selected(ep, req->endpoint))
				continue;
			memset(ep->m, 0, sizeof(ep->m));
			ep->resets = ep->hangs = ep->garbage = 0;
			ep->injected_errors = 0;
		}
	ck_call_reply(call, &r.base);
	return;
oom:
	ck_call_fail(call, CK_GRPC_RESOURCE_EXHAUSTED, "server out of memory");
}

static void
on_endpoints(struct ck_call *call)
{
	Chakong__Test__V1__EndpointsReply r =
	    CHAKONG__TEST__V1__ENDPOINTS_REPLY__INIT;
	static char *samples_p[8], *samples_e[4];

	r.seed = sim_g.seed;
	r.size = sim_g.size;
	r.endpoints =
	    ck_call_alloc(call, (sim_g.neps + 1) * sizeof(*r.endpoints));
	if (r.endpoints == NULL)
		goto oom;
	for (size_t i = 0; i < sim_g.neps; i++) {
		struct sim_endpoint *ep = &sim_g.eps[i];
		Chakong__Test__V1__EndpointInfo *x =
		    ck_call_alloc(call, sizeof(*x));

		if (x == NULL)
			goto oom;
		chakong__test__v1__endpoint_info__init(x);
		x->endpoint = ep->name;
		x->kind = (char *)sim_ep_kind_name(ep->kind);
		x->address = (char *)ck_server_address(ep->srv);
		x->agency_id = ep->agency_id;
		if (ep->kind == SIM_EP_BANK) {
			x->bank_code = (char *)sim_banks[ep->bank].code;
			x->bank_name = ep->bank_name;
		}
		x->fault = fault_msg(call, &ep->fault);
		r.endpoints[r.n_endpoints++] = x;
	}
	/* persons with accounts at two or more banks and enterprises with
	 * accounts: good first subjects for a test */
	for (size_t i = 0; i < sim_population_persons(sim_g.pop) &&
	     r.n_sample_resident_ids < CK_ARRAY_SIZE(samples_p);
	     i++) {
		const struct sim_subject *s =
		    sim_population_person(sim_g.pop, i);

		if (s->naccounts >= 2)
			samples_p[r.n_sample_resident_ids++] = (char *)s->id;
	}
	for (size_t i = 0; i < sim_population_enterprises(sim_g.pop) &&
	     r.n_sample_usccs < CK_ARRAY_SIZE(samples_e);
	     i++)
		samples_e[r.n_sample_usccs++] =
		    (char *)sim_population_enterprise(sim_g.pop, i)->id;
	r.sample_resident_ids = samples_p;
	r.sample_usccs = samples_e;
	ck_call_reply(call, &r.base);
	return;
oom:
	ck_call_fail(call, CK_GRPC_RESOURCE_EXHAUSTED, "server out of memory");
}

#define CONTROL(name, in, fn)                                                  \
	{                                                                      \
		"/chakong.test.v1.AgencySim/" name,                            \
		    &chakong__test__v1__##in##__descriptor, fn, CK_ACCESS_ANY, \
		    0                                                          \
	}

static const struct ck_method control_methods[] = {
	CONTROL("Lookup", lookup_request, on_lookup),
	CONTROL("Deposit", deposit_request, on_deposit),
	CONTROL("Grant", grant_request, on_grant),
	CONTROL("Fault", fault_request, on_fault),
	CONTROL("Counters", counters_request, on_counters),
	CONTROL("Ledger", ledger_request, on_ledger),
	CONTROL("Endpoints", endpoints_request, on_endpoints),
	{ "/grpc.health.v1.Health/Check",
	    &grpc__health__v1__health_check_request__descriptor, on_health,
	    CK_ACCESS_ANY, 0 },
#ifdef CK_TEST_HOOKS
	CK_TESTING_METHODS,
#endif
};

static const struct ck_method *
find_control(const char *path, size_t len)
{
	for (size_t i = 0; i < CK_ARRAY_SIZE(control_methods); i++)
		if (strlen(control_methods[i].path) == len &&
		    memcmp(control_methods[i].path, path, len) == 0)
			return &control_methods[i];
	return NULL;
}

/* ---- listeners -------------------------------------------------------- */

static int
listener_open(struct sim *s, const char *what, const char *listen,
    const char *cert, const char *key, ck_method_find_fn find,
    struct ck_config **cfgp, struct ck_server **srvp, char *err, size_t errlen)
{
	struct ck_config *cfg = calloc(1, sizeof(*cfg));
	SSL_CTX *ctx = NULL;
	char why[512];
	int rc;

	if (cfg == NULL)
		return CK_ENOMEM;
	ck_config_defaults(cfg);
	cfg->refs = 1;
	ck_strlcpy(cfg->path, what, sizeof(cfg->path));
	ck_strlcpy(cfg->listen, listen, sizeof(cfg->listen));
	ck_strlcpy(cfg->cert, cert, sizeof(cfg->cert));
	ck_strlcpy(cfg->key, key, sizeof(cfg->key));
	ck_strlcpy(cfg->client_ca, s->ca, sizeof(cfg->client_ca));
	cfg->log_level = s->log_level;
	rc = ck_tls_server_ctx_new(cert, key, s->ca, &ctx, why, sizeof(why));
	if (rc != 0) {
		snprintf(err, errlen, "%s: %s", what, why);
		goto fail;
	}
	rc = ck_server_open(s->base, cfg, ctx, find, srvp, why, sizeof(why));
	SSL_CTX_free(ctx); /* the server holds its own reference */
	if (rc != 0) {
		snprintf(err, errlen, "%s: %s", what, why);
		goto fail;
	}
	*cfgp = cfg;
	return 0;
fail:
	ck_config_free(cfg);
	return rc;
}

int
sim_serve_open(struct sim *s, char *err, size_t errlen)
{
	char what[128];
	int rc;

	for (size_t i = 0; i < s->neps; i++) {
		struct sim_endpoint *ep = &s->eps[i];

		snprintf(what, sizeof(what), "[endpoint.%s]", ep->name);
		rc = listener_open(s, what, ep->listen, ep->cert, ep->key,
		    finders[ep->kind], &ep->cfg, &ep->srv, err, errlen);
		if (rc != 0)
			return rc;
	}
	return listener_open(s, "[control]", s->control_listen, s->control_cert,
	    s->control_key, find_control, &s->control_cfg, &s->control, err,
	    errlen);
}

void
sim_serve_close(struct sim *s)
{
	for (size_t i = 0; i < s->neps; i++) {
		ck_server_close(s->eps[i].srv);
		s->eps[i].srv = NULL;
		ck_config_free(s->eps[i].cfg);
		s->eps[i].cfg = NULL;
	}
	ck_server_close(s->control);
	s->control = NULL;
	ck_config_free(s->control_cfg);
	s->control_cfg = NULL;
}
