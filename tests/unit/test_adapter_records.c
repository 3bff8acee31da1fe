/*
 * test_adapter_records.c: the household and enterprise adapters: the
 * record mapping against packed registry replies (members, shareholders,
 * capital; the subject's id as asset id), subjects a registry cannot know
 * answered NOT_FOUND without an rpc and from the loop, and the glue.
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
#include "enterprise.pb-c.h"
#include "enterprise_map.h"
#include "household.pb-c.h"
#include "household_map.h"

const struct ck_adapter_ops *ck_adapter_household(void);
const struct ck_adapter_ops *ck_adapter_enterprise(void);

static const char rid[] = "11010519491231002X";
static const char uscc[] = "91440101MA59XXXX0X";

static struct ck_agency_call
query(const char *resident_id, const char *credit_code)
{
	struct ck_agency_call c = {
		.size = sizeof(c),
		.op = CK_OP_QUERY,
		.log_id = "h-1",
		.broker_id = "gz",
		.court_id = "440100",
		.officer_id = "officer7",
		.case_number = "(2019)粤01执123号",
		.origin = "interactive",
		.resident_id = resident_id,
		.uscc = credit_code,
		.name = "张三",
		.timeout_usec = 1000000,
	};
	return c;
}

static void
make_person(Chakong__Agency__V1__LookupPersonReply *m, char **members)
{
	chakong__agency__v1__lookup_person_reply__init(m);
	m->found = true;
	m->name = "张三";
	m->sex = "M";
	m->birth_date = "1949-12-31";
	m->registered_address = "广州市越秀区某街2号";
	members[0] = "李四";
	members[1] = "张小三";
	m->n_members = 2;
	m->members = members;
}

struct firm {
	Chakong__Agency__V1__LookupEnterpriseReply reply;
	Chakong__Agency__V1__Money cap;
	Chakong__Agency__V1__Shareholder sh[2], *psh[2];
};

static void
make_firm(struct firm *x)
{
	chakong__agency__v1__lookup_enterprise_reply__init(&x->reply);
	chakong__agency__v1__money__init(&x->cap);
	x->cap.fen = 500000000;
	x->cap.currency = "CNY";
	for (int i = 0; i < 2; i++) {
		chakong__agency__v1__shareholder__init(&x->sh[i]);
		x->psh[i] = &x->sh[i];
	}
	x->sh[0].name = "张三";
	x->sh[0].subscribed_fen = 300000000;
	x->sh[1].name = "某投资有限公司";
	x->sh[1].subscribed_fen = 200000000;
	x->reply.found = true;
	x->reply.name = "某某有限公司";
	x->reply.status = "active";
	x->reply.legal_representative = "张三";
	x->reply.registered_capital = &x->cap;
	x->reply.n_shareholders = 2;
	x->reply.shareholders = x->psh;
	x->reply.registered_address = "广州市天河区某路3号";
	x->reply.established_on = "2015-07-01";
}

/* ---- (a) mapping ---------------------------------------------------- */

static void
test_household_map(void **state)
{
	struct ck_ad_arena *a = ck_ad_arena_new();
	struct ck_agency_call c = query(rid, NULL);
	struct ck_source_result s = { .source = "household" };
	Chakong__Agency__V1__LookupPersonReply m;
	char *members[2];
	uint8_t buf[1024], *req;
	size_t len;
	struct ck_ad_reply r;

	(void)state;
	assert_null(ck_household_not_asked(&c));
	assert_int_equal(ck_household_pack_query(a, &c, &req, &len), 0);
	Chakong__Agency__V1__LookupPersonRequest *q =
	    chakong__agency__v1__lookup_person_request__unpack(NULL, len, req);
	assert_non_null(q);
	assert_string_equal(q->subject->resident_id, rid);
	assert_string_equal(q->ctx->case_number, "(2019)粤01执123号");
	chakong__agency__v1__lookup_person_request__free_unpacked(q, NULL);

	make_person(&m, members);
	r = fh_ok_reply(
	    buf, chakong__agency__v1__lookup_person_reply__pack(&m, buf));
	ck_household_map_query(a, rid, &r, &s);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(s.status, CK_SOURCE_OK);
	assert_int_equal(s.nassets, 1);
	const struct ck_asset *p = &s.assets[0];
	assert_int_equal(p->category, CK_CATEGORY_HOUSEHOLD);
	assert_string_equal(p->asset_id, rid);
	assert_string_equal(p->name, "张三");
	assert_string_equal(p->sex, "M");
	assert_string_equal(p->birth_date, "1949-12-31");
	assert_string_equal(p->registered_address, "广州市越秀区某街2号");
	assert_int_equal(p->nmembers, 2);
	assert_string_equal(p->members[0], "李四");
	assert_string_equal(p->members[1], "张小三");
	assert_int_equal(p->nencumbrances, 0);

	m.found = false;
	r = fh_ok_reply(
	    buf, chakong__agency__v1__lookup_person_reply__pack(&m, buf));
	ck_household_map_query(a, rid, &r, &s);
	assert_int_equal(s.status, CK_SOURCE_NOT_FOUND);
	assert_int_equal(s.nassets, 0);

	r = fh_ok_reply((const uint8_t *)"\x32\x10", 2);
	ck_household_map_query(a, rid, &r, &s);
	assert_int_equal(s.status, CK_SOURCE_ERROR);

	struct ck_ad_reply e = { .grpc_status = 4,
		.delivery = CK_DELIVERY_IN_DOUBT };
	ck_household_map_query(a, rid, &e, &s);
	assert_int_equal(s.status, CK_SOURCE_TIMEOUT);

	/* a credit code is not a person */
	c = query(NULL, uscc);
	assert_non_null(ck_household_not_asked(&c));
	assert_int_equal(ck_household_pack_query(a, &c, &req, &len), CK_EINVAL);
	ck_ad_arena_free(a);
}

static void
test_enterprise_map(void **state)
{
	struct ck_ad_arena *a = ck_ad_arena_new();
	struct ck_agency_call c = query(NULL, uscc);
	struct ck_source_result s = { .source = "enterprise" };
	struct firm x;
	uint8_t buf[1024], *req;
	size_t len;
	struct ck_ad_reply r;

	(void)state;
	assert_null(ck_enterprise_not_asked(&c));
	assert_int_equal(ck_enterprise_pack_query(a, &c, &req, &len), 0);
	Chakong__Agency__V1__LookupEnterpriseRequest *q =
	    chakong__agency__v1__lookup_enterprise_request__unpack(
		NULL, len, req);
	assert_non_null(q);
	assert_int_equal(
	    q->subject->id_case, CHAKONG__AGENCY__V1__SUBJECT__ID_USCC);
	assert_string_equal(q->subject->uscc, uscc);
	chakong__agency__v1__lookup_enterprise_request__free_unpacked(q, NULL);

	make_firm(&x);
	r = fh_ok_reply(buf,
	    chakong__agency__v1__lookup_enterprise_reply__pack(&x.reply, buf));
	ck_enterprise_map_query(a, uscc, &r, &s);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(s.status, CK_SOURCE_OK);
	assert_int_equal(s.nassets, 1);
	const struct ck_asset *p = &s.assets[0];
	assert_int_equal(p->category, CK_CATEGORY_ENTERPRISE);
	assert_string_equal(p->asset_id, uscc);
	assert_string_equal(p->name, "某某有限公司");
	assert_string_equal(p->status, "active");
	assert_string_equal(p->legal_representative, "张三");
	assert_int_equal(p->registered_capital_fen, 500000000);
	assert_string_equal(p->currency, "CNY");
	assert_string_equal(p->registered_address, "广州市天河区某路3号");
	assert_string_equal(p->established_on, "2015-07-01");
	assert_int_equal(p->nmembers, 2);
	assert_string_equal(p->members[0], "张三");
	assert_string_equal(p->members[1], "某投资有限公司");

	/* no capital, no shareholders */
	x.reply.registered_capital = NULL;
	x.reply.n_shareholders = 0;
	r = fh_ok_reply(buf,
	    chakong__agency__v1__lookup_enterprise_reply__pack(&x.reply, buf));
	ck_enterprise_map_query(a, uscc, &r, &s);
	assert_int_equal(s.status, CK_SOURCE_OK);
	assert_int_equal(s.assets[0].registered_capital_fen, 0);
	assert_int_equal(s.assets[0].nmembers, 0);
	assert_null(s.assets[0].members);

	x.reply.found = false;
	r = fh_ok_reply(buf,
	    chakong__agency__v1__lookup_enterprise_reply__pack(&x.reply, buf));
	ck_enterprise_map_query(a, uscc, &r, &s);
	assert_int_equal(s.status, CK_SOURCE_NOT_FOUND);

	struct ck_ad_reply e = { .grpc_status = 14,
		.delivery = CK_DELIVERY_NOT_SENT };
	ck_enterprise_map_query(a, uscc, &e, &s);
	assert_int_equal(s.status, CK_SOURCE_UNAVAILABLE);

	c = query(rid, NULL);
	assert_non_null(ck_enterprise_not_asked(&c));
	assert_int_equal(
	    ck_enterprise_pack_query(a, &c, &req, &len), CK_EINVAL);
	ck_ad_arena_free(a);
}

/* ---- (b) glue ------------------------------------------------------- */

static const char *const regs[] = { "hh", "biz", NULL };

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
make(const struct ck_adapter_ops *ops, const char *endpoint)
{
	const struct ck_kv kv[] = { { "endpoint", endpoint } };

	return fh_create(ops, kv, 1);
}

static void
test_ops(void **state)
{
	const struct ck_adapter_ops *hh = ck_adapter_household();
	const struct ck_adapter_ops *en = ck_adapter_enterprise();

	(void)state;
	assert_int_equal(hh->abi, CK_ADAPTER_ABI);
	assert_int_equal(hh->size, sizeof(struct ck_adapter_ops));
	assert_string_equal(hh->name, "household");
	assert_int_equal(
	    hh->categories, CK_CATEGORY_BIT(CK_CATEGORY_HOUSEHOLD));
	assert_int_equal(hh->ops, CK_OP_BIT(CK_OP_QUERY));
	assert_string_equal(en->name, "enterprise");
	assert_int_equal(
	    en->categories, CK_CATEGORY_BIT(CK_CATEGORY_ENTERPRISE));
	assert_int_equal(en->ops, CK_OP_BIT(CK_OP_QUERY));
}

static void
test_household_glue(void **state)
{
	const struct ck_adapter_ops *hh = ck_adapter_household();
	struct ck_agency_call c = query(rid, NULL);
	struct fh_done d = { 0 };
	Chakong__Agency__V1__LookupPersonReply m;
	char *members[2];
	void *self = make(hh, "hh"), *h = NULL;
	const char *names[1];

	(void)state;
	assert_int_equal(hh->sources(self, names, 1), 1);
	assert_string_equal(names[0], "household");
	assert_int_equal(hh->start(self, &c, fh_done_cb, &d, &h), 0);
	assert_int_equal(fh.nrpcs, 1);
	assert_string_equal(fh.rpcs[0].path,
	    "/chakong.agency.v1.HouseholdRegistry/LookupPerson");
	make_person(&m, members);
	fh_answer_msg(0, &m);
	assert_int_equal(d.calls, 1);
	assert_string_equal(d.src[0].source, "household");
	assert_int_equal(d.src[0].category, CK_CATEGORY_HOUSEHOLD);
	assert_int_equal(d.src[0].status, CK_SOURCE_OK);
	assert_int_equal(d.src[0].nassets, 1);

	/* a credit code: NOT_FOUND without asking, from the loop */
	struct fh_done d2 = { 0 };

	c = query(NULL, uscc);
	assert_int_equal(hh->start(self, &c, fh_done_cb, &d2, &h), 0);
	assert_int_equal(d2.calls, 0);
	assert_int_equal(fh.nrpcs, 1);
	fh_run(&d2, 1000);
	assert_int_equal(d2.calls, 1);
	assert_int_equal(d2.src[0].status, CK_SOURCE_NOT_FOUND);
	assert_non_null(strstr(d2.src[0].message, "natural persons"));
	assert_int_equal(d2.src[0].nassets, 0);

	/* ... and cancelling it before the loop runs means no done */
	struct fh_done d3 = { 0 };

	assert_int_equal(hh->start(self, &c, fh_done_cb, &d3, &h), 0);
	hh->cancel(h);
	fh_run(&d3, 20);
	assert_int_equal(d3.calls, 0);

	/* no actions on a household record */
	c = query(rid, NULL);
	c.op = CK_OP_FREEZE;
	c.idempotency_key = "k";
	assert_int_equal(hh->start(self, &c, fh_done_cb, &d3, &h), CK_EUNSUPP);
	assert_null(strstr(fh.logs, rid));
	hh->destroy(self);
}

static void
test_enterprise_glue(void **state)
{
	const struct ck_adapter_ops *en = ck_adapter_enterprise();
	struct ck_agency_call c = query(NULL, uscc);
	struct fh_done d = { 0 };
	struct firm x;
	void *self = make(en, "biz"), *h = NULL;

	(void)state;
	assert_int_equal(en->start(self, &c, fh_done_cb, &d, &h), 0);
	assert_string_equal(fh.rpcs[0].ch->name, "biz");
	assert_string_equal(fh.rpcs[0].path,
	    "/chakong.agency.v1.EnterpriseRegistry/LookupEnterprise");
	make_firm(&x);
	fh_answer_msg(0, &x.reply);
	assert_int_equal(d.calls, 1);
	assert_string_equal(d.src[0].source, "enterprise");
	assert_int_equal(d.src[0].category, CK_CATEGORY_ENTERPRISE);
	assert_int_equal(d.src[0].status, CK_SOURCE_OK);

	struct fh_done d2 = { 0 };

	c = query(rid, NULL);
	assert_int_equal(en->start(self, &c, fh_done_cb, &d2, &h), 0);
	assert_int_equal(fh.nrpcs, 1);
	fh_run(&d2, 1000);
	assert_int_equal(d2.calls, 1);
	assert_int_equal(d2.src[0].status, CK_SOURCE_NOT_FOUND);
	assert_non_null(strstr(d2.src[0].message, "enterprises only"));

	/* neither id: refused synchronously */
	c = query(NULL, NULL);
	assert_int_equal(en->start(self, &c, fh_done_cb, &d2, &h), CK_EINVAL);
	en->destroy(self);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_household_map),
		cmocka_unit_test(test_enterprise_map),
		cmocka_unit_test_setup_teardown(test_ops, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_household_glue, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_enterprise_glue, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
