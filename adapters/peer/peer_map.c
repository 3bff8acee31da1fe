/*
 * peer_map.c: chakong.v1 QueryRequest/QueryReply for the peer adapter
 * (see peer_map.h).
 */
#include "peer_map.h"

#include <stdio.h>
#include <string.h>

#include "chakong/grpc_status.h"

#include "broker.pb-c.h"


const char *
ck_peer_route(struct ck_ad_arena *a, const struct ck_peer_conf *pc,
    const struct ck_agency_call *call, const char *broker_id,
    struct ck_peer_via *via, int *err)
{
	size_t n = 0;

	*err = 0;
	if (call->size >= offsetof(struct ck_agency_call, nvia) +
	    sizeof(call->nvia) && call->via != NULL)
		n = call->nvia;
	via->ids = ck_ad_arena_calloc(a, n + 1, sizeof(*via->ids));
	if (via->ids == NULL) {
		*err = CK_ENOMEM;
		return "out of memory";
	}
	for (size_t i = 0; i < n; i++)
		via->ids[i] = call->via[i];
	via->ids[n] = broker_id;
	via->n = n + 1;
	for (size_t i = 0; i < via->n; i++)
		if (strcmp(via->ids[i], pc->partner) == 0)
			return ck_ad_arena_printf(a, "not forwarded: the request "
			    "has already passed broker %s (a forwarding loop)",
			    pc->partner);
	if (via->n > pc->max_hops)
		return ck_ad_arena_printf(a, "not forwarded: the request has "
		    "passed %zu brokers; the hop limit is %u", via->n,
		    pc->max_hops);
	return NULL;
}

int
ck_peer_pack_query(struct ck_ad_arena *a, const struct ck_peer_conf *pc,
    const struct ck_agency_call *call, const struct ck_peer_via *via,
    uint8_t **req, size_t *len)
{
	Chakong__V1__QueryRequest q = CHAKONG__V1__QUERY_REQUEST__INIT;
	Chakong__V1__CaseRef c = CHAKONG__V1__CASE_REF__INIT;
	Chakong__V1__Debtor d = CHAKONG__V1__DEBTOR__INIT;
	Chakong__V1__OnBehalf ob = CHAKONG__V1__ON_BEHALF__INIT;
	Chakong__V1__Category cats[CK_CATEGORY_ENTERPRISE];
	uint32_t mask = call->categories & pc->categories;

	if (call->case_number == NULL || call->officer_id == NULL ||
	    call->court_id == NULL || call->name == NULL ||
	    (call->resident_id == NULL) == (call->uscc == NULL))
		return CK_EINVAL;
	c.case_number = (char *)call->case_number;
	c.officer_id = (char *)call->officer_id;
	if (call->resident_id != NULL) {
		d.id_case = CHAKONG__V1__DEBTOR__ID_RESIDENT_ID;
		d.resident_id = (char *)call->resident_id;
	} else {
		d.id_case = CHAKONG__V1__DEBTOR__ID_USCC;
		d.uscc = (char *)call->uscc;
	}
	d.name = (char *)call->name;
	q.case_ = &c;
	q.debtor = &d;
	for (int i = CK_CATEGORY_DEPOSIT; i <= CK_CATEGORY_ENTERPRISE; i++)
		if (mask & CK_CATEGORY_BIT(i))
			cats[q.n_categories++] = (Chakong__V1__Category)i;
	if (q.n_categories == 0)
		return CK_EINVAL;	/* empty would mean "all" */
	q.categories = cats;
	/* the broker's id for the call: the partner's audit record can be
	 * matched with this one's */
	q.request_id = (char *)(call->log_id != NULL &&
	    strlen(call->log_id) <= 64 && strcmp(call->log_id, "-") != 0 ?
	    call->log_id : "");
	ob.court_id = (char *)call->court_id;
	ob.officer_id = (char *)call->officer_id;
	ob.case_number = (char *)call->case_number;
	ob.via = (char **)via->ids;
	ob.n_via = via->n;
	q.on_behalf = &ob;
	*len = chakong__v1__query_request__get_packed_size(&q);
	*req = ck_ad_arena_alloc(a, *len + 1);
	if (*req == NULL)
		return CK_ENOMEM;
	chakong__v1__query_request__pack(&q, *req);
	return 0;
}

static enum ck_source_status
source_status(Chakong__V1__SourceStatus st)
{
	switch (st) {
	case CHAKONG__V1__SOURCE_STATUS__SOURCE_OK:
		return CK_SOURCE_OK;
	case CHAKONG__V1__SOURCE_STATUS__SOURCE_NOT_FOUND:
		return CK_SOURCE_NOT_FOUND;
	case CHAKONG__V1__SOURCE_STATUS__SOURCE_TIMEOUT:
		return CK_SOURCE_TIMEOUT;
	case CHAKONG__V1__SOURCE_STATUS__SOURCE_UNAVAILABLE:
	case CHAKONG__V1__SOURCE_STATUS__SOURCE_NOT_CONFIGURED:
		return CK_SOURCE_UNAVAILABLE;
	case CHAKONG__V1__SOURCE_STATUS__SOURCE_DENIED:
		return CK_SOURCE_DENIED;
	default:
		return CK_SOURCE_ERROR;
	}
}

void
ck_peer_answer_all(struct ck_ad_arena *a, const struct ck_peer_conf *pc,
    uint32_t categories, enum ck_source_status status, const char *message,
    bool partner_answered, struct ck_result *res)
{
	struct ck_source_result *out;
	const char **by;
	size_t n = 0;

	memset(res, 0, sizeof(*res));
	res->size = sizeof(*res);
	out = ck_ad_arena_calloc(a, CK_CATEGORY_ENTERPRISE, sizeof(*out));
	by = ck_ad_arena_calloc(a, CK_CATEGORY_ENTERPRISE, sizeof(*by));
	if (out == NULL || by == NULL)
		return;
	for (int c = CK_CATEGORY_DEPOSIT; c <= CK_CATEGORY_ENTERPRISE; c++) {
		if (!(categories & pc->categories & CK_CATEGORY_BIT(c)))
			continue;
		out[n].source = ck_ad_arena_printf(a, "%s/%s", pc->partner,
		    ck_category_label(c));
		out[n].category = (enum ck_category)c;
		out[n].status = status;
		out[n].message = message;
		by[n] = partner_answered ? pc->partner : "";
		if (out[n].source != NULL)
			n++;
	}
	res->sources = out;
	res->nsources = n;
	res->answered_by = by;
}

static const char b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* "ref:" + base64url (no padding) of the partner's asset_ref. */
static const char *
ref_id(struct ck_ad_arena *a, const ProtobufCBinaryData *ref)
{
	char *s, *p;

	if (ref->len == 0 || ref->len > 1024)
		return NULL;
	s = ck_ad_arena_alloc(a, 4 + (ref->len + 2) / 3 * 4 + 1);
	if (s == NULL)
		return NULL;
	memcpy(s, "ref:", 4);
	p = s + 4;
	for (size_t i = 0; i < ref->len; i += 3) {
		uint32_t v = (uint32_t)ref->data[i] << 16;
		size_t left = ref->len - i;

		if (left > 1)
			v |= (uint32_t)ref->data[i + 1] << 8;
		if (left > 2)
			v |= ref->data[i + 2];
		*p++ = b64url[v >> 18 & 63];
		*p++ = b64url[v >> 12 & 63];
		if (left > 1)
			*p++ = b64url[v >> 6 & 63];
		if (left > 2)
			*p++ = b64url[v & 63];
	}
	*p = '\0';
	return s;
}

static const char *
money_currency(const Chakong__V1__Money *m)
{
	return m != NULL && m->currency != NULL && m->currency[0] != '\0' ?
	    m->currency : "CNY";
}

static bool
map_encumbrances(struct ck_ad_arena *a, const Chakong__V1__Asset *in,
    struct ck_asset *out)
{
	struct ck_encumbrance *e;

	if (in->n_encumbrances == 0)
		return true;
	e = ck_ad_arena_calloc(a, in->n_encumbrances, sizeof(*e));
	if (e == NULL)
		return false;
	for (size_t i = 0; i < in->n_encumbrances; i++) {
		const Chakong__V1__Encumbrance *x = in->encumbrances[i];

		e[i].kind = x->kind == CHAKONG__V1__ENCUMBRANCE__KIND__SEAL ?
		    CK_ENCUMBRANCE_SEAL : CK_ENCUMBRANCE_FREEZE;
		e[i].court_id = x->court_id;
		e[i].case_number = x->case_number;
		e[i].frozen_fen = x->frozen_fen;
		e[i].queued_fen = x->queued_fen;
		e[i].requested_fen = x->requested_fen;
		e[i].effective_date = x->effective_date;
		e[i].expiry_date = x->expiry_date;
		e[i].queue_position = x->queue_position;
	}
	out->encumbrances = e;
	out->nencumbrances = in->n_encumbrances;
	return true;
}

/* One partner asset; false for one this API version cannot show. */
static bool
map_asset(struct ck_ad_arena *a, const Chakong__V1__Asset *in,
    struct ck_asset *out)
{
	memset(out, 0, sizeof(*out));
	out->category = (enum ck_category)in->category;
	out->asset_id = ref_id(a, &in->asset_ref);
	switch (in->detail_case) {
	case CHAKONG__V1__ASSET__DETAIL_DEPOSIT: {
		const Chakong__V1__DepositAsset *d = in->deposit;

		out->bank_code = d->bank_code;
		out->bank_name = d->bank_name;
		out->account_no = d->account_masked;	/* masked already */
		out->account_type = d->account_type;
		out->branch = d->branch;
		out->currency = money_currency(d->balance);
		out->balance_fen = d->balance != NULL ? d->balance->fen : 0;
		out->available_fen = d->available != NULL ?
		    d->available->fen : 0;
		out->frozen_fen = d->frozen != NULL ? d->frozen->fen : 0;
		break;
	}
	case CHAKONG__V1__ASSET__DETAIL_REAL_ESTATE: {
		const Chakong__V1__RealEstateAsset *r = in->real_estate;

		out->certificate_no = r->certificate_no;
		out->address = r->address;
		out->usage = r->usage;
		out->area_cm2 = r->area_cm2;
		out->share_percent = r->share_percent;
		break;
	}
	case CHAKONG__V1__ASSET__DETAIL_VEHICLE: {
		const Chakong__V1__VehicleAsset *v = in->vehicle;

		out->plate = v->plate;
		out->vin = v->vin;
		out->make_model = v->make_model;
		out->registered_on = v->registered_on;
		break;
	}
	case CHAKONG__V1__ASSET__DETAIL_HOUSEHOLD: {
		const Chakong__V1__HouseholdRecord *h = in->household;

		out->name = h->name;
		out->sex = h->sex;
		out->birth_date = h->birth_date;
		out->registered_address = h->registered_address;
		out->members = (const char *const *)h->members;
		out->nmembers = h->n_members;
		break;
	}
	case CHAKONG__V1__ASSET__DETAIL_ENTERPRISE: {
		const Chakong__V1__EnterpriseRecord *e = in->enterprise;

		out->name = e->name;
		out->status = e->status;
		out->legal_representative = e->legal_representative;
		out->currency = money_currency(e->registered_capital);
		out->registered_capital_fen = e->registered_capital != NULL ?
		    e->registered_capital->fen : 0;
		out->registered_address = e->registered_address;
		out->established_on = e->established_on;
		out->members = (const char *const *)e->shareholders;
		out->nmembers = e->n_shareholders;
		break;
	}
	default:
		return false;
	}
	return map_encumbrances(a, in, out);
}

static bool
map_source(struct ck_ad_arena *a, const struct ck_peer_conf *pc,
    const Chakong__V1__SourceResult *in, struct ck_source_result *out,
    const char **by)
{
	struct ck_asset *assets;

	memset(out, 0, sizeof(*out));
	out->source = ck_ad_arena_printf(a, "%s/%s", pc->partner, in->source);
	if (out->source == NULL)
		return false;
	out->category = (enum ck_category)in->category;
	out->status = source_status(in->status);
	out->message = in->message;
	*by = in->answered_by[0] != '\0' ? in->answered_by : pc->partner;
	if (in->n_assets == 0)
		return true;
	assets = ck_ad_arena_calloc(a, in->n_assets, sizeof(*assets));
	if (assets == NULL)
		return false;
	for (size_t i = 0; i < in->n_assets; i++)
		if (map_asset(a, in->assets[i], &assets[out->nassets]))
			out->nassets++;
	out->assets = assets;
	return true;
}

void
ck_peer_map_reply(struct ck_ad_arena *a, const struct ck_peer_conf *pc,
    uint32_t categories, int grpc_status, const char *message,
    const uint8_t *reply, size_t len, enum ck_delivery delivery,
    struct ck_result *res)
{
	ProtobufCAllocator alloc;
	Chakong__V1__QueryReply *r;
	struct ck_source_result *out;
	const char **by;
	const char *why;
	enum ck_source_status st;
	/* a status the partner's broker sent, or one the channel made up
	 * (unreachable, deadline): only the first is the partner's answer */
	bool answered = delivery == CK_DELIVERY_ANSWERED;

	if (message == NULL)
		message = "";
	switch (grpc_status) {
	case CK_GRPC_OK:
		break;
	case CK_GRPC_PERMISSION_DENIED:
	case CK_GRPC_UNAUTHENTICATED:
		st = CK_SOURCE_DENIED;
		goto whole;
	case CK_GRPC_DEADLINE_EXCEEDED:
		st = CK_SOURCE_TIMEOUT;
		goto whole;
	case CK_GRPC_UNAVAILABLE:
	case CK_GRPC_RESOURCE_EXHAUSTED:
		st = CK_SOURCE_UNAVAILABLE;
		goto whole;
	default:
		st = CK_SOURCE_ERROR;
		goto whole;
	}
	ck_ad_arena_allocator(a, &alloc);
	r = chakong__v1__query_reply__unpack(&alloc, len, reply);
	if (r == NULL) {
		st = CK_SOURCE_ERROR;
		message = "the partner's reply is not a QueryReply";
		goto whole;
	}
	memset(res, 0, sizeof(*res));
	res->size = sizeof(*res);
	out = ck_ad_arena_calloc(a, r->n_sources + 1, sizeof(*out));
	by = ck_ad_arena_calloc(a, r->n_sources + 1, sizeof(*by));
	if (out == NULL || by == NULL) {
		st = CK_SOURCE_ERROR;
		message = "out of memory";
		goto whole;
	}
	for (size_t i = 0; i < r->n_sources; i++) {
		const Chakong__V1__SourceResult *s = r->sources[i];
		int cat = (int)s->category;

		if (cat < CK_CATEGORY_DEPOSIT || cat > CK_CATEGORY_ENTERPRISE ||
		    !(categories & CK_CATEGORY_BIT(cat)))
			continue;	/* not asked: not passed on */
		if (map_source(a, pc, s, &out[res->nsources],
		    &by[res->nsources]))
			res->nsources++;
	}
	res->sources = out;
	res->answered_by = by;
	return;
whole:
	why = ck_ad_arena_printf(a, "partner %s: %s", pc->partner, message);
	ck_peer_answer_all(a, pc, categories, st, why != NULL ? why : message,
	    answered, res);
}
