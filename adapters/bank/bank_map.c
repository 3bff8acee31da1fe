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
	Chakong__Agency__V1__QueryAccountsRequest m =
	    CHAKONG__AGENCY__V1__QUERY_ACCOUNTS_REQUEST__INIT;

	return ck_ad_pack_query(a, call, &m.base, &m.ctx, &m.subject, req, len);
}

static int
map_account(
    struct ck_ad_arena *a, const void *reply, size_t i, struct ck_asset *as)
{
	const Chakong__Agency__V1__QueryAccountsReply *m = reply;
	const Chakong__Agency__V1__Account *x = m->accounts[i];

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
	const Chakong__Agency__V1__QueryAccountsReply *m;

	(void)arg;
	m = ck_ad_unpack_query(
	    a, r, &chakong__agency__v1__query_accounts_reply__descriptor, out);
	if (m == NULL)
		return;
	if (!m->found) {
		ck_ad_source_set(out, CK_SOURCE_NOT_FOUND,
		    "the bank has no customer with this id");
		return;
	}
	ck_ad_source_assets(a, m, m->n_accounts, map_account, out);
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
	case CK_OP_EXTEND:
		*path = "/" CK_BANK_SERVICE "/Extend";
		return ck_ad_pack_common_action(a, call, &ctx, &subj, req, len);
	case CK_OP_RELEASE:
		*path = "/" CK_BANK_SERVICE "/Release";
		return ck_ad_pack_common_action(a, call, &ctx, &subj, req, len);
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

/* Freeze and Deduct are the bank's own; Extend and Release as every
 * agency's. */
static bool
bank_decode(enum ck_op op, ProtobufCAllocator *pa, const struct ck_ad_reply *r,
    struct ck_action_result *act, int *status)
{
	switch (op) {
	case CK_OP_FREEZE: {
		Chakong__Agency__V1__FreezeReply *m =
		    chakong__agency__v1__freeze_reply__unpack(
			pa, r->len, r->data);

		if (m == NULL)
			return false;
		*status = m->status;
		act->encumbrance_id = m->freeze_id;
		act->frozen_fen = m->frozen_fen;
		act->queued_fen = m->queued_fen;
		act->effective_date = m->effective_date;
		act->expiry_date = m->expiry_date;
		act->queue_position = m->queue_position;
		act->reason = m->reason;
		return true;
	}
	case CK_OP_DEDUCT: {
		Chakong__Agency__V1__DeductReply *m =
		    chakong__agency__v1__deduct_reply__unpack(
			pa, r->len, r->data);

		if (m == NULL)
			return false;
		*status = m->status;
		act->deducted_fen = m->deducted_fen;
		act->transfer_id = m->transfer_id;
		act->reason = m->reason;
		return true;
	}
	default:
		return ck_ad_decode_common_action(op, pa, r, act, status);
	}
}

void
ck_bank_map_action(struct ck_ad_arena *a, enum ck_op op,
    const struct ck_ad_reply *r, struct ck_result *res)
{
	ck_ad_map_action(a, op, r, res, bank_decode);
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
