/*
 * test_adapter_bank.c: the bank adapter. (a) Its pure mapping, against
 * real packed chakong.agency.v1.Bank messages: requests carry the
 * CallContext and Subject, replies become sources, assets, encumbrances
 * and action results, errors and garbage become the right statuses.
 * (b) Its glue, against a fake host: fan-out over three banks with one
 * erroring, NOT_FOUND, timeouts, rpc_start failing, exactly one done and
 * never from start(), cancel, action routing by source, delivery.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "adapter_fakehost.h"
#include "adapter_maptest.h"
#include "bank.pb-c.h"
#include "bank_map.h"

const struct ck_adapter_ops *ck_adapter_bank(void);

static const char rid[] = "11010519491231002X";
static const char uscc[] = "91440101MA59XXXX0X";
static const char acct1[] = "6222020200112233445";
static const char acct2[] = "6222020200998877665";

static struct ck_agency_call
query_call(void)
{
	struct ck_agency_call c = {
		.size = sizeof(c),
		.op = CK_OP_QUERY,
		.log_id = "q-1",
		.broker_id = "gz",
		.court_id = "440100",
		.officer_id = "officer7",
		.case_number = "(2019)粤01执123号",
		.document_number = "",
		.idempotency_key = "",
		.origin = "scheduled",
		.resident_id = rid,
		.name = "张三",
		.categories = CK_CATEGORY_BIT(CK_CATEGORY_DEPOSIT),
		.timeout_usec = 2000000,
	};
	return c;
}

static struct ck_agency_call
action_call(enum ck_op op)
{
	struct ck_agency_call c = query_call();

	c.op = op;
	c.log_id = "a-1";
	c.origin = "interactive";
	c.document_number = "(2019)粤01执123号之一";
	c.idempotency_key = "gz:440100:req-1";
	c.source = "bank:b";
	c.asset_id = acct1;
	c.encumbrance_id = "F-100";
	c.amount_fen = 150000;
	c.currency = "CNY";
	c.duration_days = 365;
	c.custody_bank = "102581000013";
	c.custody_account = "44001000000000001";
	return c;
}

/* A customer with two accounts, the first frozen twice. */
struct accounts {
	Chakong__Agency__V1__QueryAccountsReply reply;
	Chakong__Agency__V1__Account acc[2], *pacc[2];
	Chakong__Agency__V1__Encumbrance enc[2], *penc[2];
};

static void
make_accounts(struct accounts *x)
{
	chakong__agency__v1__query_accounts_reply__init(&x->reply);
	x->reply.found = true;
	x->reply.bank_code = "102";
	x->reply.bank_name = "工商银行";
	for (int i = 0; i < 2; i++) {
		chakong__agency__v1__account__init(&x->acc[i]);
		chakong__agency__v1__encumbrance__init(&x->enc[i]);
		x->pacc[i] = &x->acc[i];
		x->penc[i] = &x->enc[i];
	}
	x->acc[0].account_no = (char *)acct1;
	x->acc[0].account_type = "demand";
	x->acc[0].currency = "CNY";
	x->acc[0].balance_fen = 1000000;
	x->acc[0].available_fen = 400000;
	x->acc[0].frozen_fen = 600000;
	x->acc[0].branch = "天河支行";
	x->acc[0].n_encumbrances = 2;
	x->acc[0].encumbrances = x->penc;
	x->acc[1].account_no = (char *)acct2;
	x->acc[1].account_type = "time";
	x->acc[1].currency = "USD";
	x->acc[1].balance_fen = 5000;
	x->acc[1].available_fen = 5000;
	x->enc[0].encumbrance_id = "F-1";
	x->enc[0].kind =
	    CHAKONG__AGENCY__V1__ENCUMBRANCE_KIND__ENCUMBRANCE_FREEZE;
	x->enc[0].court_id = "440100";
	x->enc[0].case_number = "(2018)粤01执9号";
	x->enc[0].frozen_fen = 600000;
	x->enc[0].requested_fen = 600000;
	x->enc[0].effective_date = "2024-01-01";
	x->enc[0].expiry_date = "2024-12-31";
	x->enc[0].duration_days = 365;
	x->enc[1].encumbrance_id = "F-2";
	x->enc[1].court_id = "440600";
	x->enc[1].case_number = "(2019)粤06执3号";
	x->enc[1].queued_fen = 300000;
	x->enc[1].requested_fen = 300000;
	x->enc[1].queue_position = 1;
	x->enc[1].duration_days = 365;
	x->reply.n_accounts = 2;
	x->reply.accounts = x->pacc;
}

static void
check_accounts(const struct ck_source_result *s)
{
	const struct ck_asset *a;

	assert_int_equal(s->status, CK_SOURCE_OK);
	assert_null(s->message);
	assert_int_equal(s->nassets, 2);
	a = &s->assets[0];
	assert_int_equal(a->category, CK_CATEGORY_DEPOSIT);
	assert_string_equal(a->asset_id, acct1);
	assert_string_equal(a->account_no, acct1);
	assert_string_equal(a->bank_code, "102");
	assert_string_equal(a->bank_name, "工商银行");
	assert_string_equal(a->account_type, "demand");
	assert_string_equal(a->currency, "CNY");
	assert_string_equal(a->branch, "天河支行");
	assert_int_equal(a->balance_fen, 1000000);
	assert_int_equal(a->available_fen, 400000);
	assert_int_equal(a->frozen_fen, 600000);
	assert_null(a->plate);
	assert_null(a->address);
	assert_int_equal(a->nencumbrances, 2);
	assert_string_equal(a->encumbrances[0].encumbrance_id, "F-1");
	assert_int_equal(a->encumbrances[0].kind, CK_ENCUMBRANCE_FREEZE);
	assert_string_equal(a->encumbrances[0].case_number, "(2018)粤01执9号");
	assert_int_equal(a->encumbrances[0].frozen_fen, 600000);
	assert_string_equal(a->encumbrances[0].expiry_date, "2024-12-31");
	/* an unspecified kind on a deposit is a freeze */
	assert_int_equal(a->encumbrances[1].kind, CK_ENCUMBRANCE_FREEZE);
	assert_string_equal(a->encumbrances[1].court_id, "440600");
	assert_int_equal(a->encumbrances[1].queued_fen, 300000);
	assert_int_equal(a->encumbrances[1].queue_position, 1);
	assert_string_equal(a->encumbrances[1].effective_date, "");
	a = &s->assets[1];
	assert_string_equal(a->account_no, acct2);
	assert_string_equal(a->bank_code, "102");
	assert_string_equal(a->account_type, "time");
	assert_string_equal(a->currency, "USD");
	assert_int_equal(a->balance_fen, 5000);
	assert_int_equal(a->frozen_fen, 0);
	assert_int_equal(a->nencumbrances, 0);
}

/* ---- (a) mapping ---------------------------------------------------- */

static void
test_pack_query(void **state)
{
	struct ck_ad_arena *a = ck_ad_arena_new();
	struct ck_agency_call c = query_call();
	Chakong__Agency__V1__QueryAccountsRequest *m;
	uint8_t *req;
	size_t len;

	(void)state;
	assert_int_equal(ck_bank_pack_query(a, &c, &req, &len), 0);
	m = chakong__agency__v1__query_accounts_request__unpack(NULL, len, req);
	assert_non_null(m);
	assert_string_equal(m->ctx->broker_id, "gz");
	assert_string_equal(m->ctx->court_id, "440100");
	assert_string_equal(m->ctx->officer_id, "officer7");
	assert_string_equal(m->ctx->case_number, "(2019)粤01执123号");
	assert_string_equal(m->ctx->document_number, "");
	assert_string_equal(m->ctx->idempotency_key, "");
	assert_string_equal(m->ctx->origin, "scheduled");
	assert_int_equal(
	    m->subject->id_case, CHAKONG__AGENCY__V1__SUBJECT__ID_RESIDENT_ID);
	assert_string_equal(m->subject->resident_id, rid);
	assert_string_equal(m->subject->name, "张三");
	chakong__agency__v1__query_accounts_request__free_unpacked(m, NULL);

	c.resident_id = NULL;
	c.uscc = uscc;
	assert_int_equal(ck_bank_pack_query(a, &c, &req, &len), 0);
	m = chakong__agency__v1__query_accounts_request__unpack(NULL, len, req);
	assert_non_null(m);
	assert_int_equal(
	    m->subject->id_case, CHAKONG__AGENCY__V1__SUBJECT__ID_USCC);
	assert_string_equal(m->subject->uscc, uscc);
	chakong__agency__v1__query_accounts_request__free_unpacked(m, NULL);

	c.uscc = NULL;
	assert_int_equal(ck_bank_pack_query(a, &c, &req, &len), CK_EINVAL);
	ck_ad_arena_free(a);
}

static void
test_map_query_ok(void **state)
{
	struct ck_ad_arena *a = ck_ad_arena_new();
	struct ck_source_result s = { .source = "bank:a" };
	struct accounts x;
	uint8_t buf[2048];
	struct ck_ad_reply r;

	(void)state;
	make_accounts(&x);
	r = fh_ok_reply(buf,
	    chakong__agency__v1__query_accounts_reply__pack(&x.reply, buf));
	ck_bank_map_query(a, NULL, &r, &s);
	/* the reply bytes may die now: the assets live in the arena */
	memset(buf, 0, sizeof(buf));
	check_accounts(&s);
	assert_string_equal(s.source, "bank:a");
	ck_ad_arena_free(a);
}

static void
test_map_query_empty_and_not_found(void **state)
{
	struct ck_ad_arena *a = ck_ad_arena_new();
	struct ck_source_result s = { 0 };
	Chakong__Agency__V1__QueryAccountsReply m =
	    CHAKONG__AGENCY__V1__QUERY_ACCOUNTS_REPLY__INIT;
	uint8_t buf[256];
	struct ck_ad_reply r;

	(void)state;
	/* a customer without accounts: OK, zero assets is an answer */
	m.found = true;
	m.bank_code = "105";
	r = fh_ok_reply(
	    buf, chakong__agency__v1__query_accounts_reply__pack(&m, buf));
	ck_bank_map_query(a, NULL, &r, &s);
	assert_int_equal(s.status, CK_SOURCE_OK);
	assert_int_equal(s.nassets, 0);

	m.found = false;
	r = fh_ok_reply(
	    buf, chakong__agency__v1__query_accounts_reply__pack(&m, buf));
	ck_bank_map_query(a, NULL, &r, &s);
	assert_int_equal(s.status, CK_SOURCE_NOT_FOUND);
	assert_non_null(s.message);
	assert_int_equal(s.nassets, 0);

	/* an empty message is found = false in proto3 */
	r = fh_ok_reply(buf, 0);
	ck_bank_map_query(a, NULL, &r, &s);
	assert_int_equal(s.status, CK_SOURCE_NOT_FOUND);
	ck_ad_arena_free(a);
}

static void
test_map_query_garbage_and_errors(void **state)
{
	struct ck_ad_arena *a = ck_ad_arena_new();
	struct ck_source_result s = { 0 };
	static const uint8_t junk[] = { 0x0a, 0x7f, 0x01 }; /* truncated */
	struct ck_ad_reply r = fh_ok_reply(junk, sizeof(junk));
	struct {
		int grpc;
		enum ck_delivery d;
		enum ck_source_status want;
	} cases[] = {
		{ 14, CK_DELIVERY_NOT_SENT, CK_SOURCE_UNAVAILABLE },
		{ 14, CK_DELIVERY_IN_DOUBT, CK_SOURCE_UNAVAILABLE },
		{ 4, CK_DELIVERY_IN_DOUBT, CK_SOURCE_TIMEOUT },
		{ 13, CK_DELIVERY_ANSWERED, CK_SOURCE_ERROR },
		{ 7, CK_DELIVERY_ANSWERED, CK_SOURCE_ERROR },
		{ 5, CK_DELIVERY_ANSWERED, CK_SOURCE_ERROR },
	};

	(void)state;
	ck_bank_map_query(a, NULL, &r, &s);
	assert_int_equal(s.status, CK_SOURCE_ERROR);
	assert_string_equal(s.message, "agency reply does not decode");
	assert_int_equal(s.nassets, 0);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ck_ad_reply e = { .grpc_status = cases[i].grpc,
			.message = "nope",
			.delivery = cases[i].d };

		ck_bank_map_query(a, NULL, &e, &s);
		assert_int_equal(s.status, cases[i].want);
		assert_non_null(strstr(s.message, "nope"));
		assert_int_equal(s.nassets, 0);
	}
	ck_ad_arena_free(a);
}

static void
test_map_query_enomem(void **state)
{
	struct accounts x;
	uint8_t buf[2048];
	struct ck_ad_reply r;
	bool saw_ok = false, saw_err = false;

	(void)state;
	make_accounts(&x);
	r = fh_ok_reply(buf,
	    chakong__agency__v1__query_accounts_reply__pack(&x.reply, buf));
	/* every allocation in turn fails, until the mapping needs no more */
	for (long n = 0; n < 200 && !saw_ok; n++) {
		struct ck_ad_arena *a;
		struct ck_source_result s = { 0 };

		ck_ad_arena_fail_after(-1);
		a = ck_ad_arena_new();
		ck_ad_arena_fail_after(n);
		ck_bank_map_query(a, NULL, &r, &s);
		ck_ad_arena_fail_after(-1);
		if (s.status == CK_SOURCE_OK) {
			check_accounts(&s);
			saw_ok = true;
		} else {
			assert_int_equal(s.status, CK_SOURCE_ERROR);
			assert_non_null(s.message);
			assert_int_equal(s.nassets, 0);
			saw_err = true;
		}
		ck_ad_arena_free(a);
	}
	assert_true(saw_ok);
	assert_true(saw_err);
}

static void
test_pack_actions(void **state)
{
	struct ck_ad_arena *a = ck_ad_arena_new();
	struct ck_agency_call c = action_call(CK_OP_FREEZE);
	const char *path;
	uint8_t *req;
	size_t len;

	(void)state;
	assert_int_equal(ck_bank_pack_action(a, &c, &path, &req, &len), 0);
	assert_string_equal(path, "/chakong.agency.v1.Bank/Freeze");
	Chakong__Agency__V1__FreezeRequest *f =
	    chakong__agency__v1__freeze_request__unpack(NULL, len, req);
	assert_non_null(f);
	assert_string_equal(f->account_no, acct1);
	assert_int_equal(f->amount->fen, 150000);
	assert_string_equal(f->amount->currency, "CNY");
	assert_int_equal(f->duration_days, 365);
	assert_string_equal(f->ctx->idempotency_key, "gz:440100:req-1");
	assert_string_equal(f->ctx->document_number, "(2019)粤01执123号之一");
	assert_string_equal(f->ctx->officer_id, "officer7");
	assert_string_equal(f->ctx->origin, "interactive");
	assert_string_equal(f->subject->resident_id, rid);
	chakong__agency__v1__freeze_request__free_unpacked(f, NULL);

	/* no currency: CNY */
	c.currency = NULL;
	assert_int_equal(ck_bank_pack_action(a, &c, &path, &req, &len), 0);
	f = chakong__agency__v1__freeze_request__unpack(NULL, len, req);
	assert_string_equal(f->amount->currency, "CNY");
	chakong__agency__v1__freeze_request__free_unpacked(f, NULL);

	c = action_call(CK_OP_EXTEND);
	assert_int_equal(ck_bank_pack_action(a, &c, &path, &req, &len), 0);
	assert_string_equal(path, "/chakong.agency.v1.Bank/Extend");
	Chakong__Agency__V1__ExtendRequest *e =
	    chakong__agency__v1__extend_request__unpack(NULL, len, req);
	assert_string_equal(e->encumbrance_id, "F-100");
	assert_int_equal(e->duration_days, 365);
	assert_string_equal(e->ctx->case_number, "(2019)粤01执123号");
	chakong__agency__v1__extend_request__free_unpacked(e, NULL);

	c = action_call(CK_OP_RELEASE);
	assert_int_equal(ck_bank_pack_action(a, &c, &path, &req, &len), 0);
	assert_string_equal(path, "/chakong.agency.v1.Bank/Release");
	Chakong__Agency__V1__ReleaseRequest *rl =
	    chakong__agency__v1__release_request__unpack(NULL, len, req);
	assert_string_equal(rl->encumbrance_id, "F-100");
	assert_string_equal(rl->ctx->court_id, "440100");
	chakong__agency__v1__release_request__free_unpacked(rl, NULL);

	c = action_call(CK_OP_DEDUCT);
	c.currency = "CNY";
	assert_int_equal(ck_bank_pack_action(a, &c, &path, &req, &len), 0);
	assert_string_equal(path, "/chakong.agency.v1.Bank/Deduct");
	Chakong__Agency__V1__DeductRequest *d =
	    chakong__agency__v1__deduct_request__unpack(NULL, len, req);
	assert_string_equal(d->freeze_id, "F-100");
	assert_int_equal(d->amount->fen, 150000);
	assert_string_equal(d->custody_bank, "102581000013");
	assert_string_equal(d->custody_account, "44001000000000001");
	assert_string_equal(d->ctx->idempotency_key, "gz:440100:req-1");
	chakong__agency__v1__deduct_request__free_unpacked(d, NULL);

	/* what each action cannot do without */
	struct {
		enum ck_op op;
		int field;
	} bad[] = {
		{ CK_OP_FREEZE, 0 },
		{ CK_OP_FREEZE, 1 },
		{ CK_OP_FREEZE, 2 },
		{ CK_OP_EXTEND, 3 },
		{ CK_OP_EXTEND, 2 },
		{ CK_OP_RELEASE, 3 },
		{ CK_OP_DEDUCT, 3 },
		{ CK_OP_DEDUCT, 1 },
		{ CK_OP_DEDUCT, 4 },
		{ CK_OP_DEDUCT, 5 },
		{ CK_OP_DEDUCT, 6 },
		{ CK_OP_RELEASE, 6 },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		c = action_call(bad[i].op);
		switch (bad[i].field) {
		case 0:
			c.asset_id = "";
			break;
		case 1:
			c.amount_fen = 0;
			break;
		case 2:
			c.duration_days = -1;
			break;
		case 3:
			c.encumbrance_id = NULL;
			break;
		case 4:
			c.custody_bank = NULL;
			break;
		case 5:
			c.custody_account = "";
			break;
		case 6:
			c.idempotency_key = "";
			break;
		}
		assert_int_equal(
		    ck_bank_pack_action(a, &c, &path, &req, &len), CK_EINVAL);
	}
	c = action_call(CK_OP_QUERY);
	assert_int_equal(
	    ck_bank_pack_action(a, &c, &path, &req, &len), CK_EUNSUPP);
	ck_ad_arena_free(a);
}

static void
test_map_actions(void **state)
{
	struct ck_ad_arena *a = ck_ad_arena_new();
	struct ck_result res = { .size = sizeof(res) };
	uint8_t buf[512];
	struct ck_ad_reply r;

	(void)state;
	Chakong__Agency__V1__FreezeReply f =
	    CHAKONG__AGENCY__V1__FREEZE_REPLY__INIT;
	f.status = CHAKONG__AGENCY__V1__ACTION_STATUS__ACTION_PARTIAL;
	f.freeze_id = "F-200";
	f.frozen_fen = 40000;
	f.queued_fen = 0;
	f.effective_date = "2024-05-01";
	f.expiry_date = "2025-04-30";
	r = fh_ok_reply(buf, chakong__agency__v1__freeze_reply__pack(&f, buf));
	ck_bank_map_action(a, CK_OP_FREEZE, &r, &res);
	assert_int_equal(res.error, 0);
	assert_int_equal(res.delivery, CK_DELIVERY_ANSWERED);
	assert_null(res.message);
	assert_non_null(res.action);
	assert_int_equal(res.action->status, CK_ACTION_PARTIAL);
	assert_string_equal(res.action->encumbrance_id, "F-200");
	assert_int_equal(res.action->frozen_fen, 40000);
	assert_string_equal(res.action->effective_date, "2024-05-01");
	assert_string_equal(res.action->expiry_date, "2025-04-30");

	/* part in force, part queued */
	f.status = CHAKONG__AGENCY__V1__ACTION_STATUS__ACTION_QUEUED;
	f.frozen_fen = 10000;
	f.queued_fen = 140000;
	f.queue_position = 1;
	r = fh_ok_reply(buf, chakong__agency__v1__freeze_reply__pack(&f, buf));
	ck_bank_map_action(a, CK_OP_FREEZE, &r, &res);
	assert_int_equal(res.action->status, CK_ACTION_QUEUED);
	assert_int_equal(res.action->frozen_fen, 10000);
	assert_int_equal(res.action->queued_fen, 140000);
	assert_int_equal(res.action->queue_position, 1);

	Chakong__Agency__V1__DeductReply d =
	    CHAKONG__AGENCY__V1__DEDUCT_REPLY__INIT;
	d.status = CHAKONG__AGENCY__V1__ACTION_STATUS__ACTION_DONE;
	d.deducted_fen = 150000;
	d.transfer_id = "T-9";
	r = fh_ok_reply(buf, chakong__agency__v1__deduct_reply__pack(&d, buf));
	ck_bank_map_action(a, CK_OP_DEDUCT, &r, &res);
	assert_int_equal(res.error, 0);
	assert_int_equal(res.action->status, CK_ACTION_DONE);
	assert_int_equal(res.action->deducted_fen, 150000);
	assert_string_equal(res.action->transfer_id, "T-9");

	d.status = CHAKONG__AGENCY__V1__ACTION_STATUS__ACTION_REJECTED;
	d.deducted_fen = 0;
	d.reason = "more than frozen";
	r = fh_ok_reply(buf, chakong__agency__v1__deduct_reply__pack(&d, buf));
	ck_bank_map_action(a, CK_OP_DEDUCT, &r, &res);
	assert_int_equal(res.error, 0);
	assert_int_equal(res.action->status, CK_ACTION_REJECTED);
	assert_string_equal(res.action->reason, "more than frozen");

	Chakong__Agency__V1__ExtendReply e =
	    CHAKONG__AGENCY__V1__EXTEND_REPLY__INIT;
	e.status = CHAKONG__AGENCY__V1__ACTION_STATUS__ACTION_DONE;
	e.expiry_date = "2026-04-30";
	r = fh_ok_reply(buf, chakong__agency__v1__extend_reply__pack(&e, buf));
	ck_bank_map_action(a, CK_OP_EXTEND, &r, &res);
	assert_int_equal(res.action->status, CK_ACTION_DONE);
	assert_string_equal(res.action->expiry_date, "2026-04-30");

	Chakong__Agency__V1__ReleaseReply rl =
	    CHAKONG__AGENCY__V1__RELEASE_REPLY__INIT;
	rl.status = CHAKONG__AGENCY__V1__ACTION_STATUS__ACTION_DONE;
	r = fh_ok_reply(
	    buf, chakong__agency__v1__release_reply__pack(&rl, buf));
	ck_bank_map_action(a, CK_OP_RELEASE, &r, &res);
	assert_int_equal(res.action->status, CK_ACTION_DONE);

	/* a status we do not know: in doubt, never "failed" */
	d.status = 9;
	r = fh_ok_reply(buf, chakong__agency__v1__deduct_reply__pack(&d, buf));
	ck_bank_map_action(a, CK_OP_DEDUCT, &r, &res);
	assert_int_equal(res.error, CK_SOURCE_ERROR);
	assert_int_equal(res.delivery, CK_DELIVERY_IN_DOUBT);
	assert_null(res.action);

	static const uint8_t junk[] = { 0x12, 0x40, 'x' };
	r = fh_ok_reply(junk, sizeof(junk));
	ck_bank_map_action(a, CK_OP_DEDUCT, &r, &res);
	assert_int_equal(res.error, CK_SOURCE_ERROR);
	assert_int_equal(res.delivery, CK_DELIVERY_IN_DOUBT);

	struct {
		int grpc;
		enum ck_delivery d;
		int want;
	} errs[] = {
		{ 14, CK_DELIVERY_NOT_SENT, CK_SOURCE_UNAVAILABLE },
		{ 14, CK_DELIVERY_IN_DOUBT, CK_SOURCE_UNAVAILABLE },
		{ 4, CK_DELIVERY_IN_DOUBT, CK_SOURCE_TIMEOUT },
		{ 9, CK_DELIVERY_ANSWERED, CK_SOURCE_ERROR },
	};
	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
		struct ck_ad_reply x = { .grpc_status = errs[i].grpc,
			.delivery = errs[i].d };

		ck_bank_map_action(a, CK_OP_DEDUCT, &x, &res);
		assert_int_equal(res.error, errs[i].want);
		assert_int_equal(res.delivery, errs[i].d);
		assert_non_null(res.message);
		assert_null(res.action);
	}
	ck_ad_arena_free(a);
}

static void
test_source_endpoint(void **state)
{
	(void)state;
	assert_string_equal(ck_bank_source_endpoint("bank:icbc"), "icbc");
	assert_null(ck_bank_source_endpoint("bank:"));
	assert_null(ck_bank_source_endpoint("realestate"));
	assert_null(ck_bank_source_endpoint(NULL));
}

/* ---- (b) glue ------------------------------------------------------- */

static const char *const three[] = { "a", "b", "c", NULL };

static int
setup(void **state)
{
	(void)state;
	fh_setup(three);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	fh_teardown();
	ck_ad_arena_fail_after(-1);
	return 0;
}

static void *
make(const char *endpoints)
{
	const struct ck_kv kv[] = { { "endpoints", endpoints } };
	void *self = fh_create(ck_adapter_bank(), kv, 1);

	assert_non_null(self);
	return self;
}

static void
test_ops(void **state)
{
	const struct ck_adapter_ops *ops = ck_adapter_bank();

	(void)state;
	assert_int_equal(ops->abi, CK_ADAPTER_ABI);
	assert_int_equal(ops->size, sizeof(struct ck_adapter_ops));
	assert_string_equal(ops->name, "bank");
	assert_int_equal(ops->categories, CK_CATEGORY_BIT(CK_CATEGORY_DEPOSIT));
	assert_int_equal(ops->ops,
	    CK_OP_BIT(CK_OP_QUERY) | CK_OP_BIT(CK_OP_FREEZE) |
		CK_OP_BIT(CK_OP_EXTEND) | CK_OP_BIT(CK_OP_RELEASE) |
		CK_OP_BIT(CK_OP_DEDUCT));
}

static void
test_create(void **state)
{
	const struct ck_adapter_ops *ops = ck_adapter_bank();
	const char *names[4];
	char err[256];
	void *self = NULL;
	struct {
		const char *key, *value, *want;
	} bad[] = {
		{ "endpoints", "a, zz, c", "endpoints: no [endpoint.zz]" },
		{ "endpoints", "a,,b", "endpoints: a comma-separated" },
		{ "endpoints", "", "endpoints: a comma-separated" },
		{ "endpoints", "a, a", "endpoints: \"a\" is listed twice" },
		{ "endpoints", "A", "endpoints: \"A\" is not a valid" },
		{ "endpoint", "a", "unknown key \"endpoint\"" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const struct ck_kv kv[] = { { bad[i].key, bad[i].value } };

		err[0] = '\0';
		assert_true(
		    ops->create(&fh.host, kv, 1, &self, err, sizeof(err)) < 0);
		assert_non_null(strstr(err, bad[i].want));
	}
	assert_true(
	    ops->create(&fh.host, NULL, 0, &self, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "endpoints: required"));

	self = make(" c ,a\t, b");
	assert_int_equal(ops->sources(self, names, 4), 3);
	assert_string_equal(names[0], "bank:c");
	assert_string_equal(names[1], "bank:a");
	assert_string_equal(names[2], "bank:b");
	/* max bounds what is written, not what is counted */
	names[1] = NULL;
	assert_int_equal(ops->sources(self, names, 1), 3);
	assert_null(names[1]);
	ops->destroy(self);
}

struct fanout_check {
	int hits;
};

static void
check_fanout(const struct ck_result *res, void *ud)
{
	struct fanout_check *fc = ud;

	assert_int_equal(res->nsources, 3);
	assert_int_equal(res->error, 0);
	check_accounts(&res->sources[0]);
	assert_int_equal(res->sources[0].category, CK_CATEGORY_DEPOSIT);
	assert_null(res->action);
	fc->hits++;
}

static void
test_fanout(void **state)
{
	const struct ck_adapter_ops *ops = ck_adapter_bank();
	struct ck_agency_call c = query_call();
	struct fanout_check fc = { 0 };
	struct fh_done d = { .check = check_fanout, .ud = &fc };
	struct accounts x;
	void *self = make("a, b, c"), *h = NULL;

	(void)state;
	assert_int_equal(ops->start(self, &c, fh_done_cb, &d, &h), 0);
	assert_non_null(h);
	assert_int_equal(d.calls, 0); /* never from start() */
	assert_int_equal(fh.nrpcs, 3);
	for (size_t i = 0; i < 3; i++) {
		Chakong__Agency__V1__QueryAccountsRequest *m;

		assert_string_equal(fh.rpcs[i].ch->name, three[i]);
		assert_string_equal(
		    fh.rpcs[i].path, "/chakong.agency.v1.Bank/QueryAccounts");
		assert_int_equal(fh.rpcs[i].timeout_usec, 2000000);
		assert_string_equal(fh.rpcs[i].log_id, "q-1");
		m = chakong__agency__v1__query_accounts_request__unpack(
		    NULL, fh.rpcs[i].len, fh.rpcs[i].req);
		assert_non_null(m);
		assert_string_equal(m->subject->resident_id, rid);
		assert_string_equal(m->ctx->case_number, "(2019)粤01执123号");
		chakong__agency__v1__query_accounts_request__free_unpacked(
		    m, NULL);
	}
	/* answers arrive out of order; sources stay in config order */
	Chakong__Agency__V1__QueryAccountsReply nf =
	    CHAKONG__AGENCY__V1__QUERY_ACCOUNTS_REPLY__INIT;
	fh_answer_msg(2, &nf);
	assert_int_equal(d.calls, 0);
	fh_answer(1, 13, "internal", NULL, 0, CK_DELIVERY_ANSWERED);
	assert_int_equal(d.calls, 0);
	make_accounts(&x);
	fh_answer_msg(0, &x.reply);
	assert_int_equal(d.calls, 1);
	assert_int_equal(fc.hits, 1);
	assert_int_equal(d.nsources, 3);
	assert_string_equal(d.src[0].source, "bank:a");
	assert_int_equal(d.src[0].status, CK_SOURCE_OK);
	assert_int_equal(d.src[0].nassets, 2);
	assert_string_equal(d.src[1].source, "bank:b");
	assert_int_equal(d.src[1].status, CK_SOURCE_ERROR);
	assert_non_null(strstr(d.src[1].message, "internal"));
	assert_string_equal(d.src[2].source, "bank:c");
	assert_int_equal(d.src[2].status, CK_SOURCE_NOT_FOUND);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(d.src[i].category, CK_CATEGORY_DEPOSIT);
	assert_int_equal(fh_inflight(), 0);
	/* nothing more happens: the timer is gone with the call */
	fh_run(&d, 30);
	assert_int_equal(d.calls, 1);
	/* logs name banks and statuses, never the subject or accounts */
	assert_non_null(strstr(fh.logs, "bank:b"));
	assert_null(strstr(fh.logs, rid));
	assert_null(strstr(fh.logs, acct1));
	assert_null(strstr(fh.logs, acct2));
	ops->destroy(self);
}

/* The broker's skip_sources: those banks are never contacted; a call
 * leaving none is refused at once. */
static void
test_skip_sources(void **state)
{
	const struct ck_adapter_ops *ops = ck_adapter_bank();
	const char *const skip_b[] = { "bank:b", NULL };
	const char *const skip_all[] = { "bank:a", "bank:b", "bank:c", NULL };
	struct ck_agency_call c = query_call();
	struct fh_done d = { 0 };
	Chakong__Agency__V1__QueryAccountsReply nf =
	    CHAKONG__AGENCY__V1__QUERY_ACCOUNTS_REPLY__INIT;
	void *self = make("a, b, c"), *h = NULL;

	(void)state;
	c.skip_sources = skip_b;
	assert_int_equal(ops->start(self, &c, fh_done_cb, &d, &h), 0);
	assert_int_equal(fh.nrpcs, 2);
	assert_int_equal(fh_find("b"), -1);
	fh_answer_msg((size_t)fh_find("a"), &nf);
	fh_answer_msg((size_t)fh_find("c"), &nf);
	assert_int_equal(d.calls, 1);
	assert_int_equal(d.nsources, 2);
	assert_string_equal(d.src[0].source, "bank:a");
	assert_string_equal(d.src[1].source, "bank:c");
	/* a broker built before the field: its size says there is none */
	c.size = offsetof(struct ck_agency_call, skip_sources);
	h = NULL;
	assert_int_equal(ops->start(self, &c, fh_done_cb, &d, &h), 0);
	assert_int_equal(fh.nrpcs, 5);
	ops->cancel(h);
	c.size = sizeof(c);
	c.skip_sources = skip_all;
	h = NULL;
	assert_true(ops->start(self, &c, fh_done_cb, &d, &h) < 0);
	assert_null(h);
	assert_int_equal(fh.nrpcs, 5);
	ops->destroy(self);
}

static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void
test_fanout_timeouts(void **state)
{
	const struct ck_adapter_ops *ops = ck_adapter_bank();
	struct ck_agency_call c = query_call();
	struct fh_done d = { 0 };
	struct accounts x;
	void *self = make("a, b, c"), *h = NULL;
	uint64_t t0;

	(void)state;
	c.timeout_usec = 60000;
	t0 = mono_ms();
	assert_int_equal(ops->start(self, &c, fh_done_cb, &d, &h), 0);
	assert_int_equal(fh.rpcs[0].timeout_usec, 60000);
	make_accounts(&x);
	fh_answer_msg(0, &x.reply);
	/* the channel's own deadline fired for b */
	fh_answer(1, 4, "deadline", NULL, 0, CK_DELIVERY_IN_DOUBT);
	assert_int_equal(d.calls, 0);
	/* c never answers: the adapter's deadline ends the call */
	fh_run(&d, 1000);
	assert_int_equal(d.calls, 1);
	assert_true(mono_ms() - t0 < 500);
	assert_true(mono_ms() - t0 >= 55);
	assert_int_equal(d.src[0].status, CK_SOURCE_OK);
	assert_int_equal(d.src[1].status, CK_SOURCE_TIMEOUT);
	assert_int_equal(d.src[2].status, CK_SOURCE_TIMEOUT);
	assert_true(fh.rpcs[2].cancelled);
	assert_false(fh.rpcs[1].cancelled); /* answered: not cancelled */
	assert_int_equal(fh_inflight(), 0);
	fh_run(&d, 20);
	assert_int_equal(d.calls, 1);
	ops->destroy(self);
}

static void
test_fanout_unavailable(void **state)
{
	const struct ck_adapter_ops *ops = ck_adapter_bank();
	struct ck_agency_call c = query_call();
	struct fh_done d = { 0 };
	void *self = make("a, b, c"), *h = NULL;

	(void)state;
	/* b: rpc_start itself fails; a: not sent; c: reset mid-call */
	assert_int_equal(ops->start(self, &c, fh_done_cb, &d, &h), 0);
	fh_answer(0, 14, "connect failed", NULL, 0, CK_DELIVERY_NOT_SENT);
	fh_answer(2, 14, "reset", NULL, 0, CK_DELIVERY_IN_DOUBT);
	fh_answer(1, 0, NULL, (const uint8_t *)"\xff", 1, CK_DELIVERY_ANSWERED);
	assert_int_equal(d.calls, 1);
	assert_int_equal(d.src[0].status, CK_SOURCE_UNAVAILABLE);
	assert_int_equal(d.src[1].status, CK_SOURCE_ERROR); /* garbage */
	assert_int_equal(d.src[2].status, CK_SOURCE_UNAVAILABLE);
	ops->destroy(self);
}

static void
test_all_fail_at_once(void **state)
{
	const struct ck_adapter_ops *ops = ck_adapter_bank();
	struct ck_agency_call c = query_call();
	struct fh_done d = { 0 };
	void *self = make("a, b, c"), *h = NULL;

	(void)state;
	fh.fail_starts = 3;
	assert_int_equal(ops->start(self, &c, fh_done_cb, &d, &h), 0);
	assert_int_equal(d.calls, 0); /* deferred, not from start() */
	assert_int_equal(fh.nrpcs, 0);
	fh_run(&d, 1000);
	assert_int_equal(d.calls, 1);
	assert_int_equal(d.nsources, 3);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(d.src[i].status, CK_SOURCE_UNAVAILABLE);

	/* one failing to start, the others answering */
	struct fh_done d2 = { 0 };
	Chakong__Agency__V1__QueryAccountsReply nf =
	    CHAKONG__AGENCY__V1__QUERY_ACCOUNTS_REPLY__INIT;

	fh.fail_starts = 1;
	assert_int_equal(ops->start(self, &c, fh_done_cb, &d2, &h), 0);
	assert_int_equal(fh.nrpcs, 2);
	fh_answer_msg(0, &nf);
	fh_answer_msg(1, &nf);
	assert_int_equal(d2.calls, 1);
	assert_int_equal(d2.src[0].status, CK_SOURCE_UNAVAILABLE);
	assert_int_equal(d2.src[1].status, CK_SOURCE_NOT_FOUND);
	assert_int_equal(d2.src[2].status, CK_SOURCE_NOT_FOUND);
	ops->destroy(self);
}

static void
test_cancel(void **state)
{
	const struct ck_adapter_ops *ops = ck_adapter_bank();
	struct ck_agency_call c = query_call();
	struct fh_done d = { 0 };
	Chakong__Agency__V1__QueryAccountsReply nf =
	    CHAKONG__AGENCY__V1__QUERY_ACCOUNTS_REPLY__INIT;
	void *self = make("a, b, c"), *h = NULL;

	(void)state;
	c.timeout_usec = 20000;
	assert_int_equal(ops->start(self, &c, fh_done_cb, &d, &h), 0);
	fh_answer_msg(1, &nf);
	ops->cancel(h);
	assert_true(fh.rpcs[0].cancelled);
	assert_false(fh.rpcs[1].cancelled);
	assert_true(fh.rpcs[2].cancelled);
	assert_int_equal(fh_inflight(), 0);
	/* past the deadline: still no done */
	fh_run(&d, 80);
	assert_int_equal(d.calls, 0);

	/* a call whose answer was deferred, cancelled before the loop ran */
	fh.fail_starts = 3;
	assert_int_equal(ops->start(self, &c, fh_done_cb, &d, &h), 0);
	ops->cancel(h);
	fh_run(&d, 30);
	assert_int_equal(d.calls, 0);
	ops->destroy(self);
}

static void
test_cancel_inside_done(void **state)
{
	const struct ck_adapter_ops *ops = ck_adapter_bank();
	struct ck_agency_call c = query_call();
	void *self = make("a"), *h = NULL;
	struct fh_done d = { .cancel_ops = ops, .cancel_handle = &h };
	Chakong__Agency__V1__QueryAccountsReply nf =
	    CHAKONG__AGENCY__V1__QUERY_ACCOUNTS_REPLY__INIT;

	(void)state;
	assert_int_equal(ops->start(self, &c, fh_done_cb, &d, &h), 0);
	fh_answer_msg(0, &nf); /* done cancels its own handle: a no-op */
	assert_int_equal(d.calls, 1);
	assert_int_equal(d.src[0].status, CK_SOURCE_NOT_FOUND);
	ops->destroy(self);
}

static void
test_query_refused(void **state)
{
	const struct ck_adapter_ops *ops = ck_adapter_bank();
	struct ck_agency_call c = query_call();
	struct fh_done d = { 0 };
	void *self = make("a"), *h = NULL;

	(void)state;
	c.resident_id = NULL; /* no subject */
	assert_int_equal(ops->start(self, &c, fh_done_cb, &d, &h), CK_EINVAL);
	c = query_call();
	c.op = 0;
	assert_int_equal(ops->start(self, &c, fh_done_cb, &d, &h), CK_EUNSUPP);
	assert_int_equal(fh.nrpcs, 0);
	fh_run(&d, 10);
	assert_int_equal(d.calls, 0);
	ops->destroy(self);
}

static void
test_action_routing(void **state)
{
	const struct ck_adapter_ops *ops = ck_adapter_bank();
	struct ck_agency_call c = action_call(CK_OP_FREEZE);
	struct fh_done d = { 0 };
	void *self = make("a, b, c"), *h = NULL;
	Chakong__Agency__V1__FreezeReply f =
	    CHAKONG__AGENCY__V1__FREEZE_REPLY__INIT;

	(void)state;
	assert_int_equal(ops->start(self, &c, fh_done_cb, &d, &h), 0);
	assert_int_equal(fh.nrpcs, 1);
	assert_string_equal(fh.rpcs[0].ch->name, "b");
	assert_string_equal(fh.rpcs[0].path, "/chakong.agency.v1.Bank/Freeze");
	assert_int_equal(fh.rpcs[0].timeout_usec, 2000000);
	f.status = CHAKONG__AGENCY__V1__ACTION_STATUS__ACTION_DONE;
	f.freeze_id = "F-300";
	f.frozen_fen = 150000;
	f.expiry_date = "2025-04-30";
	fh_answer_msg(0, &f);
	assert_int_equal(d.calls, 1);
	assert_int_equal(d.error, 0);
	assert_int_equal(d.nsources, 0);
	assert_true(d.has_action);
	assert_int_equal(d.action.status, CK_ACTION_DONE);
	assert_int_equal(d.action.frozen_fen, 150000);
	assert_string_equal(d.action_encumbrance_id, "F-300");
	assert_string_equal(d.action_expiry, "2025-04-30");

	/* a deduction to c */
	struct fh_done d2 = { 0 };
	Chakong__Agency__V1__DeductReply dr =
	    CHAKONG__AGENCY__V1__DEDUCT_REPLY__INIT;

	c = action_call(CK_OP_DEDUCT);
	c.source = "bank:c";
	assert_int_equal(ops->start(self, &c, fh_done_cb, &d2, &h), 0);
	assert_string_equal(fh.rpcs[1].ch->name, "c");
	assert_string_equal(fh.rpcs[1].path, "/chakong.agency.v1.Bank/Deduct");
	dr.status = CHAKONG__AGENCY__V1__ACTION_STATUS__ACTION_DONE;
	dr.deducted_fen = 150000;
	fh_answer_msg(1, &dr);
	assert_int_equal(d2.calls, 1);
	assert_int_equal(d2.action.deducted_fen, 150000);

	/* refused synchronously: unknown source, missing key; nothing sent */
	c = action_call(CK_OP_RELEASE);
	c.source = "bank:zz";
	assert_int_equal(
	    ops->start(self, &c, fh_done_cb, &d, &h), CK_ENOTFOUND);
	c.source = "vehicle";
	assert_int_equal(
	    ops->start(self, &c, fh_done_cb, &d, &h), CK_ENOTFOUND);
	c.source = NULL;
	assert_int_equal(
	    ops->start(self, &c, fh_done_cb, &d, &h), CK_ENOTFOUND);
	c = action_call(CK_OP_RELEASE);
	c.idempotency_key = "";
	assert_int_equal(ops->start(self, &c, fh_done_cb, &d, &h), CK_EINVAL);
	assert_int_equal(fh.nrpcs, 2);
	ops->destroy(self);
}

static void
test_action_delivery(void **state)
{
	const struct ck_adapter_ops *ops = ck_adapter_bank();
	struct ck_agency_call c = action_call(CK_OP_DEDUCT);
	void *self = make("a, b"), *h = NULL;
	struct {
		int grpc;
		enum ck_delivery delivery;
		int want;
	} cases[] = {
		{ 14, CK_DELIVERY_NOT_SENT, CK_SOURCE_UNAVAILABLE },
		{ 14, CK_DELIVERY_IN_DOUBT, CK_SOURCE_UNAVAILABLE },
		{ 4, CK_DELIVERY_IN_DOUBT, CK_SOURCE_TIMEOUT },
		{ 3, CK_DELIVERY_ANSWERED, CK_SOURCE_ERROR },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fh_done d = { 0 };

		assert_int_equal(ops->start(self, &c, fh_done_cb, &d, &h), 0);
		fh_answer(fh.nrpcs - 1, cases[i].grpc, "x", NULL, 0,
		    cases[i].delivery);
		assert_int_equal(d.calls, 1);
		assert_int_equal(d.error, cases[i].want);
		assert_int_equal(d.delivery, cases[i].delivery);
		assert_false(d.has_action);
	}

	/* the adapter's own deadline: cancelled, in doubt */
	struct fh_done d = { 0 };

	c.timeout_usec = 30000;
	assert_int_equal(ops->start(self, &c, fh_done_cb, &d, &h), 0);
	fh_run(&d, 1000);
	assert_int_equal(d.calls, 1);
	assert_int_equal(d.error, CK_SOURCE_TIMEOUT);
	assert_int_equal(d.delivery, CK_DELIVERY_IN_DOUBT);
	assert_true(fh.rpcs[fh.nrpcs - 1].cancelled);

	/* rpc_start failing: not sent, reported from the loop */
	struct fh_done d2 = { 0 };

	fh.fail_starts = 1;
	assert_int_equal(ops->start(self, &c, fh_done_cb, &d2, &h), 0);
	assert_int_equal(d2.calls, 0);
	fh_run(&d2, 1000);
	assert_int_equal(d2.calls, 1);
	assert_int_equal(d2.error, CK_SOURCE_UNAVAILABLE);
	assert_int_equal(d2.delivery, CK_DELIVERY_NOT_SENT);
	ops->destroy(self);
}

static void
test_start_enomem(void **state)
{
	const struct ck_adapter_ops *ops = ck_adapter_bank();
	struct ck_agency_call c = query_call();
	struct accounts x;
	void *self = make("a, b, c");
	int started = 0, refused = 0, whole = 0;

	(void)state;
	make_accounts(&x);
	for (long n = 0; n < 200; n++) {
		struct fh_done d = { 0 };
		void *h = NULL;
		size_t first = fh.nrpcs;
		int rc;

		ck_ad_arena_fail_after(n);
		rc = ops->start(self, &c, fh_done_cb, &d, &h);
		if (rc < 0) {
			ck_ad_arena_fail_after(-1);
			assert_int_equal(rc, CK_ENOMEM);
			assert_int_equal(fh.nrpcs, first);
			refused++;
			continue;
		}
		started++;
		for (size_t i = first; i < fh.nrpcs; i++)
			fh_answer_msg(i, &x.reply);
		ck_ad_arena_fail_after(-1);
		assert_int_equal(d.calls, 1);
		assert_int_equal(d.nsources, 3);
		int ok = 0;

		for (size_t i = 0; i < 3; i++) {
			assert_true(d.src[i].status == CK_SOURCE_OK ||
			    d.src[i].status == CK_SOURCE_ERROR);
			ok += d.src[i].status == CK_SOURCE_OK;
		}
		whole += ok == 3;
		fh.nrpcs = 0;
	}
	assert_true(started > 0);
	assert_true(refused > 0);
	assert_true(whole > 0); /* and enough memory gives every answer */
	ops->destroy(self);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pack_query),
		cmocka_unit_test(test_map_query_ok),
		cmocka_unit_test(test_map_query_empty_and_not_found),
		cmocka_unit_test(test_map_query_garbage_and_errors),
		cmocka_unit_test(test_map_query_enomem),
		cmocka_unit_test(test_pack_actions),
		cmocka_unit_test(test_map_actions),
		cmocka_unit_test(test_source_endpoint),
		cmocka_unit_test_setup_teardown(test_ops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fanout, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_skip_sources, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_fanout_timeouts, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_fanout_unavailable, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_all_fail_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_cancel_inside_done, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_query_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_action_routing, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_action_delivery, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_start_enomem, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
