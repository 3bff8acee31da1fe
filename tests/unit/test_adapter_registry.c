/*
 * test_adapter_registry.c: the real-estate and vehicle adapters: their
 * query mapping against packed registry replies, and their glue against
 * a fake host: config, sources, the query rpc, Seal/Extend/Release
 * routing and results, no DEDUCT, cancel and timeouts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "adapter_fakehost.h"
#include "adapter_maptest.h"
#include "realestate.pb-c.h"
#include "realestate_map.h"
#include "vehicle.pb-c.h"
#include "vehicle_map.h"

const struct ck_adapter_ops *ck_adapter_realestate(void);
const struct ck_adapter_ops *ck_adapter_vehicle(void);

static const char rid[] = "11010519491231002X";
static const char uscc[] = "91440101MA59XXXX0X";

static struct ck_agency_call
call_for(enum ck_op op, const char *source)
{
	struct ck_agency_call c = {
		.size = sizeof(c),
		.op = op,
		.log_id = "r-1",
		.broker_id = "gz",
		.court_id = "440100",
		.officer_id = "officer7",
		.case_number = "(2019)粤01执123号",
		.document_number = "(2019)粤01执123号之二",
		.idempotency_key = op == CK_OP_QUERY ? "" : "gz:440100:req-2",
		.origin = "interactive",
		.uscc = uscc,
		.name = "某某有限公司",
		.source = source,
		.asset_id = "U-440106-1",
		.encumbrance_id = "S-5",
		.duration_days = 1000,
		.timeout_usec = 1000000,
	};
	return c;
}

struct props {
	Chakong__Agency__V1__QueryPropertiesReply reply;
	Chakong__Agency__V1__Property p[2], *pp[2];
	Chakong__Agency__V1__Encumbrance e, *pe;
};

static void
make_props(struct props *x)
{
	chakong__agency__v1__query_properties_reply__init(&x->reply);
	for (int i = 0; i < 2; i++) {
		chakong__agency__v1__property__init(&x->p[i]);
		x->pp[i] = &x->p[i];
	}
	chakong__agency__v1__encumbrance__init(&x->e);
	x->pe = &x->e;
	x->e.encumbrance_id = "S-1";
	x->e.court_id = "440100";
	x->e.case_number = "(2018)粤01执7号";
	x->e.effective_date = "2023-06-01";
	x->e.expiry_date = "2026-05-31";
	x->e.duration_days = 1095;
	x->p[0].unit_id = "U-440106-1";
	x->p[0].certificate_no = "粤(2020)广州市不动产权第0001号";
	x->p[0].address = "广州市天河区某路1号101";
	x->p[0].area_cm2 = 895000;
	x->p[0].usage = "residential";
	x->p[0].share_percent = 50;
	x->p[0].n_encumbrances = 1;
	x->p[0].encumbrances = &x->pe;
	x->p[1].unit_id = "U-440106-2";
	x->p[1].usage = "commercial";
	x->p[1].share_percent = 100;
	x->reply.found = true;
	x->reply.n_properties = 2;
	x->reply.properties = x->pp;
}

/* ---- (a) mapping ---------------------------------------------------- */

static void
test_realestate_map(void **state)
{
	struct ck_ad_arena *a = ck_ad_arena_new();
	struct ck_agency_call c = call_for(CK_OP_QUERY, NULL);
	struct ck_source_result s = { .source = "realestate" };
	struct props x;
	uint8_t buf[2048], *req;
	size_t len;
	struct ck_ad_reply r;

	(void)state;
	assert_int_equal(ck_realestate_pack_query(a, &c, &req, &len), 0);
	Chakong__Agency__V1__QueryPropertiesRequest *q =
	    chakong__agency__v1__query_properties_request__unpack(
		NULL, len, req);
	assert_non_null(q);
	assert_string_equal(q->subject->uscc, uscc);
	assert_string_equal(q->subject->name, "某某有限公司");
	assert_string_equal(q->ctx->court_id, "440100");
	chakong__agency__v1__query_properties_request__free_unpacked(q, NULL);

	make_props(&x);
	r = fh_ok_reply(buf,
	    chakong__agency__v1__query_properties_reply__pack(&x.reply, buf));
	ck_realestate_map_query(a, NULL, &r, &s);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(s.status, CK_SOURCE_OK);
	assert_int_equal(s.nassets, 2);
	const struct ck_asset *p = &s.assets[0];
	assert_int_equal(p->category, CK_CATEGORY_REAL_ESTATE);
	assert_string_equal(p->asset_id, "U-440106-1");
	assert_string_equal(
	    p->certificate_no, "粤(2020)广州市不动产权第0001号");
	assert_string_equal(p->address, "广州市天河区某路1号101");
	assert_int_equal(p->area_cm2, 895000);
	assert_string_equal(p->usage, "residential");
	assert_int_equal(p->share_percent, 50);
	assert_null(p->account_no);
	assert_int_equal(p->nencumbrances, 1);
	assert_int_equal(p->encumbrances[0].kind, CK_ENCUMBRANCE_SEAL);
	assert_string_equal(p->encumbrances[0].encumbrance_id, "S-1");
	assert_string_equal(p->encumbrances[0].expiry_date, "2026-05-31");
	assert_int_equal(p->encumbrances[0].duration_days, 1095);
	assert_string_equal(s.assets[1].asset_id, "U-440106-2");
	assert_int_equal(s.assets[1].share_percent, 100);
	assert_int_equal(s.assets[1].nencumbrances, 0);

	x.reply.found = false;
	x.reply.n_properties = 0;
	r = fh_ok_reply(buf,
	    chakong__agency__v1__query_properties_reply__pack(&x.reply, buf));
	ck_realestate_map_query(a, NULL, &r, &s);
	assert_int_equal(s.status, CK_SOURCE_NOT_FOUND);

	r = fh_ok_reply((const uint8_t *)"\x12\x05"
					 "ab",
	    4);
	ck_realestate_map_query(a, NULL, &r, &s);
	assert_int_equal(s.status, CK_SOURCE_ERROR);

	struct ck_ad_reply e = { .grpc_status = 4,
		.delivery = CK_DELIVERY_IN_DOUBT };
	ck_realestate_map_query(a, NULL, &e, &s);
	assert_int_equal(s.status, CK_SOURCE_TIMEOUT);
	e.delivery = CK_DELIVERY_NOT_SENT;
	ck_realestate_map_query(a, NULL, &e, &s);
	assert_int_equal(s.status, CK_SOURCE_UNAVAILABLE);

	c.uscc = NULL;
	assert_int_equal(
	    ck_realestate_pack_query(a, &c, &req, &len), CK_EINVAL);
	ck_ad_arena_free(a);
}

static void
test_vehicle_map(void **state)
{
	struct ck_ad_arena *a = ck_ad_arena_new();
	struct ck_agency_call c = call_for(CK_OP_QUERY, NULL);
	struct ck_source_result s = { .source = "vehicle" };
	Chakong__Agency__V1__QueryVehiclesReply m =
	    CHAKONG__AGENCY__V1__QUERY_VEHICLES_REPLY__INIT;
	Chakong__Agency__V1__Vehicle v = CHAKONG__AGENCY__V1__VEHICLE__INIT,
				     *pv = &v;
	Chakong__Agency__V1__Encumbrance
	    e = CHAKONG__AGENCY__V1__ENCUMBRANCE__INIT,
	    *pe = &e;
	uint8_t buf[1024], *req;
	size_t len;
	struct ck_ad_reply r;

	(void)state;
	c.uscc = NULL;
	c.resident_id = rid;
	assert_int_equal(ck_vehicle_pack_query(a, &c, &req, &len), 0);
	Chakong__Agency__V1__QueryVehiclesRequest *q =
	    chakong__agency__v1__query_vehicles_request__unpack(NULL, len, req);
	assert_non_null(q);
	assert_string_equal(q->subject->resident_id, rid);
	assert_string_equal(q->ctx->officer_id, "officer7");
	chakong__agency__v1__query_vehicles_request__free_unpacked(q, NULL);

	v.vehicle_id = "VH-1";
	v.plate = "粤A12345";
	v.vin = "LSVAM4187C2184738";
	v.make_model = "大众 朗逸";
	v.registered_on = "2019-03-02";
	e.encumbrance_id = "S-8";
	e.kind = CHAKONG__AGENCY__V1__ENCUMBRANCE_KIND__ENCUMBRANCE_SEAL;
	e.queue_position = 1;
	v.n_encumbrances = 1;
	v.encumbrances = &pe;
	m.found = true;
	m.n_vehicles = 1;
	m.vehicles = &pv;
	r = fh_ok_reply(
	    buf, chakong__agency__v1__query_vehicles_reply__pack(&m, buf));
	ck_vehicle_map_query(a, NULL, &r, &s);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(s.status, CK_SOURCE_OK);
	assert_int_equal(s.nassets, 1);
	assert_int_equal(s.assets[0].category, CK_CATEGORY_VEHICLE);
	assert_string_equal(s.assets[0].asset_id, "VH-1");
	assert_string_equal(s.assets[0].plate, "粤A12345");
	assert_string_equal(s.assets[0].vin, "LSVAM4187C2184738");
	assert_string_equal(s.assets[0].make_model, "大众 朗逸");
	assert_string_equal(s.assets[0].registered_on, "2019-03-02");
	assert_int_equal(s.assets[0].nencumbrances, 1);
	assert_int_equal(s.assets[0].encumbrances[0].queue_position, 1);
	assert_int_equal(s.assets[0].encumbrances[0].kind, CK_ENCUMBRANCE_SEAL);

	m.found = true;
	m.n_vehicles = 0;
	r = fh_ok_reply(
	    buf, chakong__agency__v1__query_vehicles_reply__pack(&m, buf));
	ck_vehicle_map_query(a, NULL, &r, &s);
	assert_int_equal(s.status, CK_SOURCE_OK);
	assert_int_equal(s.nassets, 0);

	m.found = false;
	r = fh_ok_reply(
	    buf, chakong__agency__v1__query_vehicles_reply__pack(&m, buf));
	ck_vehicle_map_query(a, NULL, &r, &s);
	assert_int_equal(s.status, CK_SOURCE_NOT_FOUND);

	struct ck_ad_reply er = { .grpc_status = 16,
		.message = "who?",
		.delivery = CK_DELIVERY_ANSWERED };
	ck_vehicle_map_query(a, NULL, &er, &s);
	assert_int_equal(s.status, CK_SOURCE_ERROR);
	assert_non_null(strstr(s.message, "who?"));
	ck_ad_arena_free(a);
}

/* ---- (b) glue ------------------------------------------------------- */

static const char *const regs[] = { "re", "vr", NULL };

static int
setup(void **state)
{
	(void)state;
	fh_setup(regs);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	fh_teardown();
	return 0;
}

static void *
make(const struct ck_adapter_ops *ops, const char *endpoint, const char *source)
{
	const struct ck_kv kv[] = { { "endpoint", endpoint },
		{ "source", source } };

	return fh_create(ops, kv, source != NULL ? 2 : 1);
}

static void
test_ops_and_create(void **state)
{
	const struct ck_adapter_ops *re = ck_adapter_realestate();
	const struct ck_adapter_ops *ve = ck_adapter_vehicle();
	const char *names[2] = { NULL, NULL };
	char err[256];
	void *self;

	(void)state;
	assert_int_equal(re->abi, CK_ADAPTER_ABI);
	assert_int_equal(re->size, sizeof(struct ck_adapter_ops));
	assert_string_equal(re->name, "realestate");
	assert_int_equal(
	    re->categories, CK_CATEGORY_BIT(CK_CATEGORY_REAL_ESTATE));
	assert_string_equal(ve->name, "vehicle");
	assert_int_equal(ve->categories, CK_CATEGORY_BIT(CK_CATEGORY_VEHICLE));
	for (int i = 0; i < 2; i++) {
		const struct ck_adapter_ops *o = i == 0 ? re : ve;

		assert_int_equal(o->ops,
		    CK_OP_BIT(CK_OP_QUERY) | CK_OP_BIT(CK_OP_FREEZE) |
			CK_OP_BIT(CK_OP_EXTEND) | CK_OP_BIT(CK_OP_RELEASE));
	}

	struct {
		struct ck_kv kv[2];
		size_t n;
		const char *want;
	} bad[] = {
		{ { { "endpoint", "nope" } }, 1,
		    "endpoint: no [endpoint.nope]" },
		{ { { "endpoints", "re" } }, 1, "unknown key \"endpoints\"" },
		{ { { "source", "x" } }, 1, "endpoint: required" },
		{ { { "endpoint", "re" }, { "source", "Bad Name" } }, 2,
		    "source:" },
		{ { { "endpoint", "" } }, 1, "endpoint: not a valid" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_true(re->create(&fh.host, bad[i].kv, bad[i].n, &self,
				err, sizeof(err)) < 0);
		assert_non_null(strstr(err, bad[i].want));
	}

	self = make(re, "re", NULL);
	assert_int_equal(re->sources(self, names, 2), 1);
	assert_string_equal(names[0], "realestate");
	re->destroy(self);
	self = make(ve, "vr", "vehicle:fs");
	assert_int_equal(ve->sources(self, names, 2), 1);
	assert_string_equal(names[0], "vehicle:fs");
	assert_int_equal(ve->sources(self, names, 0), 1);
	ve->destroy(self);
}

static void
test_query_glue(void **state)
{
	const struct ck_adapter_ops *re = ck_adapter_realestate();
	struct ck_agency_call c = call_for(CK_OP_QUERY, NULL);
	struct fh_done d = { 0 };
	struct props x;
	void *self = make(re, "re", NULL), *h = NULL;

	(void)state;
	assert_int_equal(re->start(self, &c, fh_done_cb, &d, &h), 0);
	assert_int_equal(d.calls, 0);
	assert_int_equal(fh.nrpcs, 1);
	assert_string_equal(fh.rpcs[0].ch->name, "re");
	assert_string_equal(fh.rpcs[0].path,
	    "/chakong.agency.v1.RealEstateRegistry/QueryProperties");
	assert_int_equal(fh.rpcs[0].timeout_usec, 1000000);
	make_props(&x);
	fh_answer_msg(0, &x.reply);
	assert_int_equal(d.calls, 1);
	assert_int_equal(d.nsources, 1);
	assert_string_equal(d.src[0].source, "realestate");
	assert_int_equal(d.src[0].category, CK_CATEGORY_REAL_ESTATE);
	assert_int_equal(d.src[0].status, CK_SOURCE_OK);
	assert_int_equal(d.src[0].nassets, 2);
	assert_null(strstr(fh.logs, uscc));

	/* no answer within the budget */
	struct fh_done d2 = { 0 };

	c.timeout_usec = 20000;
	assert_int_equal(re->start(self, &c, fh_done_cb, &d2, &h), 0);
	fh_run(&d2, 1000);
	assert_int_equal(d2.calls, 1);
	assert_int_equal(d2.src[0].status, CK_SOURCE_TIMEOUT);
	assert_true(fh.rpcs[1].cancelled);

	/* cancelled: no done */
	struct fh_done d3 = { 0 };

	assert_int_equal(re->start(self, &c, fh_done_cb, &d3, &h), 0);
	re->cancel(h);
	assert_true(fh.rpcs[2].cancelled);
	fh_run(&d3, 50);
	assert_int_equal(d3.calls, 0);
	re->destroy(self);
}

static void
test_actions_glue(void **state)
{
	const struct ck_adapter_ops *ve = ck_adapter_vehicle();
	const struct ck_adapter_ops *re = ck_adapter_realestate();
	struct ck_agency_call c = call_for(CK_OP_FREEZE, "vehicle");
	struct fh_done d = { 0 };
	void *self = make(ve, "vr", NULL), *h = NULL;
	Chakong__Agency__V1__SealReply s =
	    CHAKONG__AGENCY__V1__SEAL_REPLY__INIT;

	(void)state;
	assert_int_equal(ve->start(self, &c, fh_done_cb, &d, &h), 0);
	assert_string_equal(
	    fh.rpcs[0].path, "/chakong.agency.v1.VehicleRegistry/Seal");
	Chakong__Agency__V1__SealRequest *sr =
	    chakong__agency__v1__seal_request__unpack(
		NULL, fh.rpcs[0].len, fh.rpcs[0].req);
	assert_non_null(sr);
	assert_string_equal(sr->asset_id, "U-440106-1");
	assert_int_equal(sr->duration_days, 1000);
	assert_string_equal(sr->ctx->idempotency_key, "gz:440100:req-2");
	assert_string_equal(sr->subject->uscc, uscc);
	chakong__agency__v1__seal_request__free_unpacked(sr, NULL);
	s.status = CHAKONG__AGENCY__V1__ACTION_STATUS__ACTION_DONE;
	s.seal_id = "S-42";
	s.effective_date = "2024-05-01";
	s.expiry_date = "2026-04-30";
	fh_answer_msg(0, &s);
	assert_int_equal(d.calls, 1);
	assert_int_equal(d.error, 0);
	assert_int_equal(d.delivery, CK_DELIVERY_ANSWERED);
	assert_int_equal(d.action.status, CK_ACTION_DONE);
	assert_string_equal(d.action_encumbrance_id, "S-42");
	assert_string_equal(d.action_expiry, "2026-04-30");

	/* in doubt when the registry's answer is lost */
	struct fh_done d2 = { 0 };

	c.op = CK_OP_RELEASE;
	assert_int_equal(ve->start(self, &c, fh_done_cb, &d2, &h), 0);
	assert_string_equal(
	    fh.rpcs[1].path, "/chakong.agency.v1.VehicleRegistry/Release");
	fh_answer(1, 14, "reset", NULL, 0, CK_DELIVERY_IN_DOUBT);
	assert_int_equal(d2.error, CK_SOURCE_UNAVAILABLE);
	assert_int_equal(d2.delivery, CK_DELIVERY_IN_DOUBT);

	/* refused: DEDUCT, another adapter's source, no idempotency key */
	c.op = CK_OP_DEDUCT;
	assert_int_equal(ve->start(self, &c, fh_done_cb, &d2, &h), CK_EUNSUPP);
	c.op = CK_OP_EXTEND;
	c.source = "realestate";
	assert_int_equal(
	    ve->start(self, &c, fh_done_cb, &d2, &h), CK_ENOTFOUND);
	c.source = "vehicle";
	c.idempotency_key = "";
	assert_int_equal(ve->start(self, &c, fh_done_cb, &d2, &h), CK_EINVAL);
	assert_int_equal(fh.nrpcs, 2);
	ve->destroy(self);

	/* real estate's Extend */
	struct fh_done d3 = { 0 };
	Chakong__Agency__V1__ExtendReply e =
	    CHAKONG__AGENCY__V1__EXTEND_REPLY__INIT;

	self = make(re, "re", NULL);
	c = call_for(CK_OP_EXTEND, "realestate");
	assert_int_equal(re->start(self, &c, fh_done_cb, &d3, &h), 0);
	assert_string_equal(fh.rpcs[2].ch->name, "re");
	assert_string_equal(
	    fh.rpcs[2].path, "/chakong.agency.v1.RealEstateRegistry/Extend");
	e.status = CHAKONG__AGENCY__V1__ACTION_STATUS__ACTION_REJECTED;
	e.reason = "already expired";
	fh_answer_msg(2, &e);
	assert_int_equal(d3.calls, 1);
	assert_int_equal(d3.error, 0);
	assert_int_equal(d3.action.status, CK_ACTION_REJECTED);
	assert_string_equal(d3.action_reason, "already expired");
	re->destroy(self);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_realestate_map),
		cmocka_unit_test(test_vehicle_map),
		cmocka_unit_test_setup_teardown(
		    test_ops_and_create, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_query_glue, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_actions_glue, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
