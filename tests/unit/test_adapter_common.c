/*
 * test_adapter_common.c: adapters/common: the arena (alignment, growth,
 * big blocks, allocation failure), gRPC status and delivery → source
 * status and action errors, CallContext/Subject filling, encumbrances,
 * action statuses, the registries' shared Seal/Extend/Release mapping,
 * config helpers and the collection deadline.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "adapter_maptest.h"
#include "arena.h"
#include "call.h"
#include "common.pb-c.h"
#include "map.h"

static const char rid[] = "11010519491231002X";
static const char uscc[] = "91440101MA59XXXX0X";

static struct ck_agency_call
action_call(enum ck_op op)
{
	struct ck_agency_call c = {
		.size = sizeof(c),
		.op = op,
		.log_id = "t-1",
		.broker_id = "gz",
		.court_id = "440100",
		.officer_id = "officer7",
		.case_number = "(2019)粤01执123号",
		.document_number = "(2019)粤01执123号之一",
		.idempotency_key = "k-123",
		.origin = "interactive",
		.resident_id = rid,
		.name = "张三",
		.source = "vehicle",
		.asset_id = "V-1",
		.encumbrance_id = "S-9",
		.duration_days = 700,
		.timeout_usec = 1000000,
	};
	return c;
}

/* ---- arena --------------------------------------------------------- */

static void
test_arena_basic(void **state)
{
	struct ck_ad_arena *a = ck_ad_arena_new();
	char *s;

	(void)state;
	assert_non_null(a);
	for (size_t i = 1; i < 300; i += 7) {
		unsigned char *p = ck_ad_arena_alloc(a, i);

		assert_non_null(p);
		assert_int_equal((uintptr_t)p % 16, 0);
		for (size_t j = 0; j < i; j++)
			assert_int_equal(p[j], 0);
		memset(p, 0xab, i);
	}
	/* larger than any block: a block of its own, still zeroed */
	unsigned char *big = ck_ad_arena_alloc(a, 3u << 20);

	assert_non_null(big);
	assert_int_equal(big[0], 0);
	assert_int_equal(big[(3u << 20) - 1], 0);
	/* and small ones keep coming from the current block */
	assert_non_null(ck_ad_arena_alloc(a, 8));
	assert_true(ck_ad_arena_used(a) >= (3u << 20));

	s = ck_ad_arena_strdup(a, "银行");
	assert_string_equal(s, "银行");
	assert_null(ck_ad_arena_strdup(a, NULL));
	s = ck_ad_arena_printf(a, "%s:%d", "bank", 42);
	assert_string_equal(s, "bank:42");
	assert_null(ck_ad_arena_calloc(a, SIZE_MAX / 2, 4));
	assert_null(ck_ad_arena_alloc(a, SIZE_MAX));
	ck_ad_arena_free(a);
	ck_ad_arena_free(NULL);
}

static void
test_arena_enomem(void **state)
{
	struct ck_ad_arena *a;

	(void)state;
	ck_ad_arena_fail_after(0);
	assert_null(ck_ad_arena_new());
	ck_ad_arena_fail_after(1);
	a = ck_ad_arena_new();
	assert_non_null(a);
	assert_null(ck_ad_arena_alloc(a, 10));
	assert_null(ck_ad_arena_strdup(a, "x"));
	assert_null(ck_ad_arena_printf(a, "%d", 1));
	ck_ad_arena_fail_after(-1);
	assert_non_null(ck_ad_arena_alloc(a, 10));
	ck_ad_arena_free(a);
}

static void
test_arena_protobuf(void **state)
{
	struct ck_ad_arena *a = ck_ad_arena_new();
	Chakong__Agency__V1__Encumbrance e, *d;
	ProtobufCAllocator pa;
	uint8_t buf[256];
	size_t n;

	(void)state;
	chakong__agency__v1__encumbrance__init(&e);
	e.encumbrance_id = "F-1";
	e.frozen_fen = 123;
	n = chakong__agency__v1__encumbrance__pack(&e, buf);
	ck_ad_arena_allocator(a, &pa);
	d = chakong__agency__v1__encumbrance__unpack(&pa, n, buf);
	assert_non_null(d);
	assert_string_equal(d->encumbrance_id, "F-1");
	assert_int_equal(d->frozen_fen, 123);
	/* freeing through the allocator is a no-op; the arena owns it */
	chakong__agency__v1__encumbrance__free_unpacked(d, &pa);
	ck_ad_arena_free(a);
}

/* ---- statuses ------------------------------------------------------ */

static void
test_source_status(void **state)
{
	struct ck_ad_arena *a = ck_ad_arena_new();
	const char *msg;
	struct {
		int grpc;
		enum ck_delivery delivery;
		enum ck_source_status want;
	} cases[] = {
		{ 0, CK_DELIVERY_ANSWERED, CK_SOURCE_OK },
		{ 4, CK_DELIVERY_IN_DOUBT, CK_SOURCE_TIMEOUT },
		{ 4, CK_DELIVERY_ANSWERED, CK_SOURCE_TIMEOUT },
		{ 14, CK_DELIVERY_NOT_SENT, CK_SOURCE_UNAVAILABLE },
		{ 14, CK_DELIVERY_IN_DOUBT, CK_SOURCE_UNAVAILABLE },
		{ 4, CK_DELIVERY_NOT_SENT, CK_SOURCE_UNAVAILABLE },
		{ 13, CK_DELIVERY_NOT_SENT, CK_SOURCE_UNAVAILABLE },
		{ 3, CK_DELIVERY_ANSWERED, CK_SOURCE_ERROR },
		{ 5, CK_DELIVERY_ANSWERED, CK_SOURCE_ERROR },
		{ 13, CK_DELIVERY_ANSWERED, CK_SOURCE_ERROR },
		{ 2, CK_DELIVERY_IN_DOUBT, CK_SOURCE_ERROR },
		{ 1, CK_DELIVERY_IN_DOUBT, CK_SOURCE_ERROR },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ck_ad_reply r = { .grpc_status = cases[i].grpc,
			.message = "boom",
			.delivery = cases[i].delivery };

		assert_int_equal(
		    ck_ad_source_status(a, &r, &msg), cases[i].want);
		if (cases[i].want == CK_SOURCE_OK) {
			assert_null(msg);
			continue;
		}
		assert_non_null(msg);
		assert_non_null(strstr(msg, "boom"));
	}

	/* the agency's message is bounded */
	char longmsg[1000];
	struct ck_ad_reply r = { .grpc_status = 13, .message = longmsg };

	memset(longmsg, 'x', sizeof(longmsg) - 1);
	longmsg[sizeof(longmsg) - 1] = '\0';
	assert_int_equal(ck_ad_source_status(a, &r, &msg), CK_SOURCE_ERROR);
	assert_true(strlen(msg) < 450);	/* MAX_AGENCY_MSG 400 + context */
	/* no message at all still says something */
	r.message = NULL;
	ck_ad_source_status(a, &r, &msg);
	assert_string_equal(msg, "agency error (gRPC status 13)");
	ck_ad_arena_free(a);
}

static void
test_action_error(void **state)
{
	struct ck_ad_arena *a = ck_ad_arena_new();
	struct ck_result res = { .size = sizeof(res) };
	struct ck_ad_reply r = { .grpc_status = 4,
		.delivery = CK_DELIVERY_IN_DOUBT };

	(void)state;
	assert_false(ck_ad_action_error(a, &r, &res));
	assert_int_equal(res.error, CK_SOURCE_TIMEOUT);
	assert_int_equal(res.delivery, CK_DELIVERY_IN_DOUBT);
	assert_non_null(res.message);
	assert_null(res.action);

	r.grpc_status = 14;
	r.delivery = CK_DELIVERY_NOT_SENT;
	assert_false(ck_ad_action_error(a, &r, &res));
	assert_int_equal(res.error, CK_SOURCE_UNAVAILABLE);
	assert_int_equal(res.delivery, CK_DELIVERY_NOT_SENT);

	/* a transport failure after sending stays in doubt */
	r.delivery = CK_DELIVERY_IN_DOUBT;
	assert_false(ck_ad_action_error(a, &r, &res));
	assert_int_equal(res.error, CK_SOURCE_UNAVAILABLE);
	assert_int_equal(res.delivery, CK_DELIVERY_IN_DOUBT);

	r.grpc_status = 9; /* FAILED_PRECONDITION from the agency */
	r.delivery = CK_DELIVERY_ANSWERED;
	assert_false(ck_ad_action_error(a, &r, &res));
	assert_int_equal(res.error, CK_SOURCE_ERROR);
	assert_int_equal(res.delivery, CK_DELIVERY_ANSWERED);

	r.grpc_status = 0;
	assert_true(ck_ad_action_error(a, &r, &res));

	ck_ad_action_garbage(&res, "x");
	assert_int_equal(res.error, CK_SOURCE_ERROR);
	assert_int_equal(res.delivery, CK_DELIVERY_IN_DOUBT);
	ck_ad_arena_free(a);
}

static void
test_action_status(void **state)
{
	enum ck_action_status s;

	(void)state;
	assert_true(ck_ad_action_status(1, &s));
	assert_int_equal(s, CK_ACTION_DONE);
	assert_true(ck_ad_action_status(2, &s));
	assert_int_equal(s, CK_ACTION_PARTIAL);
	assert_true(ck_ad_action_status(3, &s));
	assert_int_equal(s, CK_ACTION_QUEUED);
	assert_true(ck_ad_action_status(4, &s));
	assert_int_equal(s, CK_ACTION_REJECTED);
	assert_false(ck_ad_action_status(0, &s));
	assert_false(ck_ad_action_status(5, &s));
	assert_false(ck_ad_action_status(-1, &s));
}

/* ---- context, subject, encumbrances -------------------------------- */

static void
test_fill_context(void **state)
{
	struct ck_agency_call c = action_call(CK_OP_FREEZE);
	Chakong__Agency__V1__CallContext ctx;
	Chakong__Agency__V1__Subject subj;

	(void)state;
	ck_ad_fill_context(&c, &ctx, &subj);
	assert_string_equal(ctx.broker_id, "gz");
	assert_string_equal(ctx.court_id, "440100");
	assert_string_equal(ctx.officer_id, "officer7");
	assert_string_equal(ctx.case_number, "(2019)粤01执123号");
	assert_string_equal(ctx.document_number, "(2019)粤01执123号之一");
	assert_string_equal(ctx.idempotency_key, "k-123");
	assert_string_equal(ctx.origin, "interactive");
	assert_int_equal(
	    subj.id_case, CHAKONG__AGENCY__V1__SUBJECT__ID_RESIDENT_ID);
	assert_string_equal(subj.resident_id, rid);
	assert_string_equal(subj.name, "张三");

	c.resident_id = NULL;
	c.uscc = uscc;
	c.origin = NULL;
	ck_ad_fill_context(&c, &ctx, &subj);
	assert_int_equal(subj.id_case, CHAKONG__AGENCY__V1__SUBJECT__ID_USCC);
	assert_string_equal(subj.uscc, uscc);
	assert_string_equal(ctx.origin, "");

	assert_true(ck_ad_subject_ok(&c));
	c.resident_id = rid;
	assert_false(ck_ad_subject_ok(&c)); /* both */
	c.resident_id = NULL;
	c.uscc = "";
	assert_false(ck_ad_subject_ok(&c)); /* neither */
}

static void
test_action_ok(void **state)
{
	struct ck_agency_call c = action_call(CK_OP_FREEZE);

	(void)state;
	assert_true(ck_ad_action_ok(&c));
	c.idempotency_key = "";
	assert_false(ck_ad_action_ok(&c));
	c = action_call(CK_OP_FREEZE);
	c.case_number = NULL;
	assert_false(ck_ad_action_ok(&c));
	c = action_call(CK_OP_FREEZE);
	c.court_id = "";
	assert_false(ck_ad_action_ok(&c));
	c = action_call(CK_OP_FREEZE);
	c.resident_id = NULL;
	assert_false(ck_ad_action_ok(&c));
}

static void
test_encumbrances(void **state)
{
	struct ck_ad_arena *a = ck_ad_arena_new();
	Chakong__Agency__V1__Encumbrance e[2], *pe[2] = { &e[0], &e[1] };
	const struct ck_encumbrance *out;
	size_t n;

	(void)state;
	chakong__agency__v1__encumbrance__init(&e[0]);
	chakong__agency__v1__encumbrance__init(&e[1]);
	e[0].encumbrance_id = "F-1";
	e[0].kind = CHAKONG__AGENCY__V1__ENCUMBRANCE_KIND__ENCUMBRANCE_FREEZE;
	e[0].court_id = "440100";
	e[0].case_number = "(2019)粤01执1号";
	e[0].frozen_fen = 500;
	e[0].queued_fen = 250;
	e[0].requested_fen = 750;
	e[0].effective_date = "2024-01-02";
	e[0].expiry_date = "2025-01-01";
	e[0].queue_position = 0;
	e[0].duration_days = 365;
	e[1].encumbrance_id = "S-2";
	e[1].queue_position = 2; /* kind unspecified */

	assert_int_equal(
	    ck_ad_map_encumbrances(a, pe, 2, CK_ENCUMBRANCE_SEAL, &out, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(out[0].encumbrance_id, "F-1");
	assert_int_equal(out[0].kind, CK_ENCUMBRANCE_FREEZE);
	assert_string_equal(out[0].court_id, "440100");
	assert_string_equal(out[0].case_number, "(2019)粤01执1号");
	assert_int_equal(out[0].frozen_fen, 500);
	assert_int_equal(out[0].queued_fen, 250);
	assert_int_equal(out[0].requested_fen, 750);
	assert_string_equal(out[0].effective_date, "2024-01-02");
	assert_string_equal(out[0].expiry_date, "2025-01-01");
	assert_int_equal(out[0].duration_days, 365);
	assert_int_equal(out[1].kind, CK_ENCUMBRANCE_SEAL);
	assert_int_equal(out[1].queue_position, 2);

	assert_int_equal(
	    ck_ad_map_encumbrances(a, pe, 0, CK_ENCUMBRANCE_SEAL, &out, &n), 0);
	assert_int_equal(n, 0);
	assert_null(out);

	ck_ad_arena_fail_after(0);
	assert_int_equal(
	    ck_ad_map_encumbrances(a, pe, 2, CK_ENCUMBRANCE_SEAL, &out, &n),
	    CK_ENOMEM);
	ck_ad_arena_fail_after(-1);
	ck_ad_arena_free(a);
}

/* ---- registry actions ---------------------------------------------- */

static void
test_registry_pack(void **state)
{
	struct ck_ad_arena *a = ck_ad_arena_new();
	struct ck_agency_call c = action_call(CK_OP_FREEZE);
	const char *path;
	uint8_t *req;
	size_t len;

	(void)state;
	assert_int_equal(
	    ck_ad_registry_pack_action(a, "x.V", &c, &path, &req, &len), 0);
	assert_string_equal(path, "/x.V/Seal");
	Chakong__Agency__V1__SealRequest *s =
	    chakong__agency__v1__seal_request__unpack(NULL, len, req);
	assert_non_null(s);
	assert_string_equal(s->asset_id, "V-1");
	assert_int_equal(s->duration_days, 700);
	assert_string_equal(s->ctx->idempotency_key, "k-123");
	assert_string_equal(s->ctx->document_number, "(2019)粤01执123号之一");
	assert_string_equal(s->subject->resident_id, rid);
	chakong__agency__v1__seal_request__free_unpacked(s, NULL);

	c.op = CK_OP_EXTEND;
	assert_int_equal(
	    ck_ad_registry_pack_action(a, "x.V", &c, &path, &req, &len), 0);
	assert_string_equal(path, "/x.V/Extend");
	Chakong__Agency__V1__ExtendRequest *e =
	    chakong__agency__v1__extend_request__unpack(NULL, len, req);
	assert_non_null(e);
	assert_string_equal(e->encumbrance_id, "S-9");
	assert_int_equal(e->duration_days, 700);
	assert_string_equal(e->ctx->case_number, "(2019)粤01执123号");
	chakong__agency__v1__extend_request__free_unpacked(e, NULL);

	c.op = CK_OP_RELEASE;
	assert_int_equal(
	    ck_ad_registry_pack_action(a, "x.V", &c, &path, &req, &len), 0);
	assert_string_equal(path, "/x.V/Release");
	Chakong__Agency__V1__ReleaseRequest *r =
	    chakong__agency__v1__release_request__unpack(NULL, len, req);
	assert_non_null(r);
	assert_string_equal(r->encumbrance_id, "S-9");
	assert_string_equal(r->ctx->officer_id, "officer7");
	chakong__agency__v1__release_request__free_unpacked(r, NULL);

	/* refused: deduct, missing ids, no duration, no key */
	c.op = CK_OP_DEDUCT;
	assert_int_equal(
	    ck_ad_registry_pack_action(a, "x.V", &c, &path, &req, &len),
	    CK_EUNSUPP);
	c = action_call(CK_OP_FREEZE);
	c.asset_id = "";
	assert_int_equal(
	    ck_ad_registry_pack_action(a, "x.V", &c, &path, &req, &len),
	    CK_EINVAL);
	c = action_call(CK_OP_FREEZE);
	c.duration_days = 0;
	assert_int_equal(
	    ck_ad_registry_pack_action(a, "x.V", &c, &path, &req, &len),
	    CK_EINVAL);
	c = action_call(CK_OP_RELEASE);
	c.encumbrance_id = NULL;
	assert_int_equal(
	    ck_ad_registry_pack_action(a, "x.V", &c, &path, &req, &len),
	    CK_EINVAL);
	c = action_call(CK_OP_EXTEND);
	c.idempotency_key = NULL;
	assert_int_equal(
	    ck_ad_registry_pack_action(a, "x.V", &c, &path, &req, &len),
	    CK_EINVAL);
	ck_ad_arena_free(a);
}

static void
test_registry_map(void **state)
{
	struct ck_ad_arena *a = ck_ad_arena_new();
	struct ck_result res = { .size = sizeof(res) };
	uint8_t buf[256];
	struct ck_ad_reply r;

	(void)state;
	Chakong__Agency__V1__SealReply s =
	    CHAKONG__AGENCY__V1__SEAL_REPLY__INIT;
	s.status = CHAKONG__AGENCY__V1__ACTION_STATUS__ACTION_QUEUED;
	s.seal_id = "S-77";
	s.effective_date = "";
	s.expiry_date = "";
	s.queue_position = 2;
	r = fh_ok_reply(buf, chakong__agency__v1__seal_reply__pack(&s, buf));
	ck_ad_registry_map_action(a, CK_OP_FREEZE, &r, &res);
	assert_int_equal(res.error, 0);
	assert_int_equal(res.delivery, CK_DELIVERY_ANSWERED);
	assert_non_null(res.action);
	assert_int_equal(res.action->status, CK_ACTION_QUEUED);
	assert_string_equal(res.action->encumbrance_id, "S-77");
	assert_int_equal(res.action->queue_position, 2);

	s.status = CHAKONG__AGENCY__V1__ACTION_STATUS__ACTION_DONE;
	s.queue_position = 0;
	s.effective_date = "2024-03-01";
	s.expiry_date = "2027-02-28";
	r = fh_ok_reply(buf, chakong__agency__v1__seal_reply__pack(&s, buf));
	ck_ad_registry_map_action(a, CK_OP_FREEZE, &r, &res);
	assert_int_equal(res.action->status, CK_ACTION_DONE);
	assert_string_equal(res.action->effective_date, "2024-03-01");
	assert_string_equal(res.action->expiry_date, "2027-02-28");

	Chakong__Agency__V1__ExtendReply e =
	    CHAKONG__AGENCY__V1__EXTEND_REPLY__INIT;
	e.status = CHAKONG__AGENCY__V1__ACTION_STATUS__ACTION_REJECTED;
	e.reason = "expired";
	r = fh_ok_reply(buf, chakong__agency__v1__extend_reply__pack(&e, buf));
	ck_ad_registry_map_action(a, CK_OP_EXTEND, &r, &res);
	assert_int_equal(res.error, 0);
	assert_int_equal(res.action->status, CK_ACTION_REJECTED);
	assert_string_equal(res.action->reason, "expired");

	Chakong__Agency__V1__ReleaseReply rl =
	    CHAKONG__AGENCY__V1__RELEASE_REPLY__INIT;
	rl.status = CHAKONG__AGENCY__V1__ACTION_STATUS__ACTION_DONE;
	r = fh_ok_reply(
	    buf, chakong__agency__v1__release_reply__pack(&rl, buf));
	ck_ad_registry_map_action(a, CK_OP_RELEASE, &r, &res);
	assert_int_equal(res.error, 0);
	assert_int_equal(res.action->status, CK_ACTION_DONE);

	/* no status: the agency may have acted, we cannot tell */
	rl.status = 0;
	r = fh_ok_reply(
	    buf, chakong__agency__v1__release_reply__pack(&rl, buf));
	ck_ad_registry_map_action(a, CK_OP_RELEASE, &r, &res);
	assert_int_equal(res.error, CK_SOURCE_ERROR);
	assert_int_equal(res.delivery, CK_DELIVERY_IN_DOUBT);
	assert_null(res.action);

	/* garbage */
	static const uint8_t junk[] = { 0xff, 0xff, 0xff, 0x0f, 0x01 };
	r = fh_ok_reply(junk, sizeof(junk));
	ck_ad_registry_map_action(a, CK_OP_FREEZE, &r, &res);
	assert_int_equal(res.error, CK_SOURCE_ERROR);
	assert_int_equal(res.delivery, CK_DELIVERY_IN_DOUBT);
	assert_string_equal(res.message, "agency reply does not decode");

	/* an rpc error passes its delivery through */
	struct ck_ad_reply err = { .grpc_status = 14,
		.delivery = CK_DELIVERY_NOT_SENT };
	ck_ad_registry_map_action(a, CK_OP_FREEZE, &err, &res);
	assert_int_equal(res.error, CK_SOURCE_UNAVAILABLE);
	assert_int_equal(res.delivery, CK_DELIVERY_NOT_SENT);

	/* out of memory while mapping: ERROR, in doubt */
	s.status = CHAKONG__AGENCY__V1__ACTION_STATUS__ACTION_DONE;
	r = fh_ok_reply(buf, chakong__agency__v1__seal_reply__pack(&s, buf));
	struct ck_ad_arena *b = ck_ad_arena_new();
	ck_ad_arena_fail_after(0);
	ck_ad_registry_map_action(b, CK_OP_FREEZE, &r, &res);
	ck_ad_arena_fail_after(-1);
	assert_int_equal(res.error, CK_SOURCE_ERROR);
	assert_int_equal(res.delivery, CK_DELIVERY_IN_DOUBT);
	ck_ad_arena_free(b);
	ck_ad_arena_free(a);
}

/* ---- config and the deadline --------------------------------------- */

static void
test_conf(void **state)
{
	const struct ck_kv kv[] = { { "endpoint", "vr" }, { "source", "v" } };
	static const char *const allowed[] = { "endpoint", "source", NULL };
	static const char *const fewer[] = { "endpoint", NULL };
	char err[128];

	(void)state;
	assert_string_equal(ck_ad_conf_get(kv, 2, "source"), "v");
	assert_null(ck_ad_conf_get(kv, 2, "nope"));
	assert_int_equal(ck_ad_conf_check(kv, 2, allowed, err, sizeof(err)), 0);
	assert_int_equal(
	    ck_ad_conf_check(kv, 2, fewer, err, sizeof(err)), CK_ECONFIG);
	assert_string_equal(err, "unknown key \"source\"");
	{
		/* the broker's own key always passes (adapter.h) */
		const struct ck_kv kc[] = { { "endpoint", "vr" },
			{ "categories", "vehicle" } };

		assert_int_equal(ck_ad_conf_check(kc, 2, fewer, err,
		    sizeof(err)), 0);
	}

	assert_true(ck_ad_name_ok("icbc"));
	assert_true(ck_ad_name_ok("bank:icbc-2.a_b"));
	assert_false(ck_ad_name_ok(""));
	assert_false(ck_ad_name_ok(NULL));
	assert_false(ck_ad_name_ok("ICBC"));
	assert_false(ck_ad_name_ok("a b"));
	assert_false(ck_ad_name_ok("a123456789012345678901234567890123456789012"
				   "345678901234567890123"));
}

static void
test_collect_usec(void **state)
{
	(void)state;
	assert_int_equal(ck_ad_collect_usec(0), 0);
	assert_int_equal(ck_ad_collect_usec(1000), 990);
	assert_int_equal(ck_ad_collect_usec(100000), 99000);
	/* the reserve is capped */
	assert_int_equal(ck_ad_collect_usec(10000000), 9998000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_arena_basic),
		cmocka_unit_test(test_arena_enomem),
		cmocka_unit_test(test_arena_protobuf),
		cmocka_unit_test(test_source_status),
		cmocka_unit_test(test_action_error),
		cmocka_unit_test(test_action_status),
		cmocka_unit_test(test_fill_context),
		cmocka_unit_test(test_action_ok),
		cmocka_unit_test(test_encumbrances),
		cmocka_unit_test(test_registry_pack),
		cmocka_unit_test(test_registry_map),
		cmocka_unit_test(test_conf),
		cmocka_unit_test(test_collect_usec),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
