/*
 * bank_map.c: broker calls ↔ chakong.agency.v1.Bank messages (see
 * bank_map.h). Decoded replies live in the call's arena, so the assets
 * point straight at their strings.
 */
#include <string.h>

#include "bank.pb-c.h"
#include "bank_map.h"

static bool
nonempty(const char *s)
{
	return s != NULL && s[0] != '\0';
}

static const char *
currency_or_cny(const char *c)
{
	return nonempty(c) ? c : "CNY";
}

int
ck_bank_pack_query(struct ck_ad_arena *a, const struct ck_agency_call *call,
    uint8_t **req, size_t *len)
{
	Chakong__Agency__V1__QueryAccountsRequest m;
	Chakong__Agency__V1__CallContext ctx;
	Chakong__Agency__V1__Subject subj;

	if (!ck_ad_subject_ok(call))
		return CK_EINVAL;
	ck_ad_fill_context(call, &ctx, &subj);
	chakong__agency__v1__query_accounts_request__init(&m);
	m.ctx = &ctx;
	m.subject = &subj;
	return ck_ad_pack(a, &m.base, req, len);
}

static int
map_account(struct ck_ad_arena *a,
    const Chakong__Agency__V1__QueryAccountsReply *m,
    const Chakong__Agency__V1__Account *x, struct ck_asset *as)
{
	as->category = CK_CATEGORY_DEPOSIT;
	as->asset_id = x->account_no;
	as->bank_code = m->bank_code;
	as->bank_name = m->bank_name;
	as->account_no = x->account_no;
	as->account_type = x->account_type;
	as->branch = x->branch;
	as->currency = x->currency;
	as->balance_fen = x->balance_fen;
	as->available_fen = x->available_fen;
	as->frozen_fen = x->frozen_fen;
	return ck_ad_map_encumbrances(a, x->encumbrances, x->n_encumbrances,
	    CK_ENCUMBRANCE_FREEZE, &as->encumbrances, &as->nencumbrances);
}

void
ck_bank_map_query(struct ck_ad_arena *a, const void *arg,
    const struct ck_ad_reply *r, struct ck_source_result *out)
{
	Chakong__Agency__V1__QueryAccountsReply *m;
	ProtobufCAllocator pa;
	enum ck_source_status st;
	struct ck_asset *as;
	const char *msg;

	(void)arg;
	st = ck_ad_source_status(a, r, &msg);
	if (st != CK_SOURCE_OK) {
		ck_ad_source_set(out, st, msg);
		return;
	}
	ck_ad_arena_allocator(a, &pa);
	m = chakong__agency__v1__query_accounts_reply__unpack(
	    &pa, r->len, r->data);
	if (m == NULL) {
		ck_ad_source_set(
		    out, CK_SOURCE_ERROR, "agency reply does not decode");
		return;
	}
	if (!m->found) {
		ck_ad_source_set(out, CK_SOURCE_NOT_FOUND,
		    "the bank has no customer with this id");
		return;
	}
	out->status = CK_SOURCE_OK;
	out->message = NULL;
	out->assets = NULL;
	out->nassets = 0;
	if (m->n_accounts == 0)
		return;
	as = ck_ad_arena_calloc(a, m->n_accounts, sizeof(*as));
	if (as == NULL)
		goto enomem;
	for (size_t i = 0; i < m->n_accounts; i++)
		if (map_account(a, m, m->accounts[i], &as[i]) < 0)
			goto enomem;
	out->assets = as;
	out->nassets = m->n_accounts;
	return;
enomem:
	ck_ad_source_set(out, CK_SOURCE_ERROR, ck_ad_enomem_msg);
}

int
ck_bank_pack_action(struct ck_ad_arena *a, const struct ck_agency_call *call,
    const char **path, uint8_t **req, size_t *len)
{
	Chakong__Agency__V1__CallContext ctx;
	Chakong__Agency__V1__Subject subj;
	Chakong__Agency__V1__Money money;

	if (call->op < CK_OP_FREEZE || call->op > CK_OP_DEDUCT)
		return CK_EUNSUPP;
	if (!ck_ad_action_ok(call))
		return CK_EINVAL;
	ck_ad_fill_context(call, &ctx, &subj);
	chakong__agency__v1__money__init(&money);
	money.fen = call->amount_fen;
	money.currency = ck_ad_s(currency_or_cny(call->currency));

	switch (call->op) {
	case CK_OP_FREEZE: {
		Chakong__Agency__V1__FreezeRequest m;

		if (!nonempty(call->asset_id) || call->amount_fen <= 0 ||
		    call->duration_days <= 0)
			return CK_EINVAL;
		chakong__agency__v1__freeze_request__init(&m);
		m.ctx = &ctx;
		m.subject = &subj;
		m.account_no = ck_ad_s(call->asset_id);
		m.amount = &money;
		m.duration_days = call->duration_days;
		*path = "/" CK_BANK_SERVICE "/Freeze";
		return ck_ad_pack(a, &m.base, req, len);
	}
	case CK_OP_EXTEND: {
		Chakong__Agency__V1__ExtendRequest m;

		if (!nonempty(call->encumbrance_id) || call->duration_days <= 0)
			return CK_EINVAL;
		chakong__agency__v1__extend_request__init(&m);
		m.ctx = &ctx;
		m.subject = &subj;
		m.encumbrance_id = ck_ad_s(call->encumbrance_id);
		m.duration_days = call->duration_days;
		*path = "/" CK_BANK_SERVICE "/Extend";
		return ck_ad_pack(a, &m.base, req, len);
	}
	case CK_OP_RELEASE: {
		Chakong__Agency__V1__ReleaseRequest m;

		if (!nonempty(call->encumbrance_id))
			return CK_EINVAL;
		chakong__agency__v1__release_request__init(&m);
		m.ctx = &ctx;
		m.subject = &subj;
		m.encumbrance_id = ck_ad_s(call->encumbrance_id);
		*path = "/" CK_BANK_SERVICE "/Release";
		return ck_ad_pack(a, &m.base, req, len);
	}
	default: { /* CK_OP_DEDUCT */
		Chakong__Agency__V1__DeductRequest m;

		if (!nonempty(call->encumbrance_id) || call->amount_fen <= 0 ||
		    !nonempty(call->custody_bank) ||
		    !nonempty(call->custody_account))
			return CK_EINVAL;
		chakong__agency__v1__deduct_request__init(&m);
		m.ctx = &ctx;
		m.subject = &subj;
		m.freeze_id = ck_ad_s(call->encumbrance_id);
		m.amount = &money;
		m.custody_bank = ck_ad_s(call->custody_bank);
		m.custody_account = ck_ad_s(call->custody_account);
		*path = "/" CK_BANK_SERVICE "/Deduct";
		return ck_ad_pack(a, &m.base, req, len);
	}
	}
}

void
ck_bank_map_action(struct ck_ad_arena *a, enum ck_op op,
    const struct ck_ad_reply *r, struct ck_result *res)
{
	ProtobufCAllocator pa;
	struct ck_action_result *act;
	int status;

	if (!ck_ad_action_error(a, r, res))
		return;
	act = ck_ad_arena_alloc(a, sizeof(*act));
	if (act == NULL) {
		ck_ad_action_garbage(res, ck_ad_enomem_msg);
		return;
	}
	ck_ad_arena_allocator(a, &pa);
	switch (op) {
	case CK_OP_FREEZE: {
		Chakong__Agency__V1__FreezeReply *m =
		    chakong__agency__v1__freeze_reply__unpack(
			&pa, r->len, r->data);

		if (m == NULL)
			goto garbage;
		status = m->status;
		act->encumbrance_id = m->freeze_id;
		act->frozen_fen = m->frozen_fen;
		act->queued_fen = m->queued_fen;
		act->effective_date = m->effective_date;
		act->expiry_date = m->expiry_date;
		act->queue_position = m->queue_position;
		act->reason = m->reason;
		break;
	}
	case CK_OP_EXTEND: {
		Chakong__Agency__V1__ExtendReply *m =
		    chakong__agency__v1__extend_reply__unpack(
			&pa, r->len, r->data);

		if (m == NULL)
			goto garbage;
		status = m->status;
		act->expiry_date = m->expiry_date;
		act->reason = m->reason;
		break;
	}
	case CK_OP_RELEASE: {
		Chakong__Agency__V1__ReleaseReply *m =
		    chakong__agency__v1__release_reply__unpack(
			&pa, r->len, r->data);

		if (m == NULL)
			goto garbage;
		status = m->status;
		act->reason = m->reason;
		break;
	}
	case CK_OP_DEDUCT: {
		Chakong__Agency__V1__DeductReply *m =
		    chakong__agency__v1__deduct_reply__unpack(
			&pa, r->len, r->data);

		if (m == NULL)
			goto garbage;
		status = m->status;
		act->deducted_fen = m->deducted_fen;
		act->transfer_id = m->transfer_id;
		act->reason = m->reason;
		break;
	}
	default:
		goto garbage;
	}
	if (!ck_ad_action_status(status, &act->status)) {
		ck_ad_action_garbage(res, "agency reply has no valid status");
		return;
	}
	res->error = 0;
	res->delivery = CK_DELIVERY_ANSWERED;
	res->message = NULL;
	res->action = act;
	return;
garbage:
	ck_ad_action_garbage(res, "agency reply does not decode");
}

const char *
ck_bank_source_endpoint(const char *source)
{
	size_t n = strlen(CK_BANK_SOURCE_PREFIX);

	if (source == NULL || strncmp(source, CK_BANK_SOURCE_PREFIX, n) != 0 ||
	    source[n] == '\0')
		return NULL;
	return source + n;
}
