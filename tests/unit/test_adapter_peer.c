/*
 * test_adapter_peer.c: the peer adapter's pure half (adapters/peer/
 * peer_map.c): the via-list and its loop and hop checks, the QueryRequest
 * with its on-behalf fields, and the partner's QueryReply (or refusal)
 * back as prefixed source results with answered_by.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "chakong/grpc_status.h"

#include "broker.pb-c.h"
#include "peer_map.h"

static const struct ck_peer_conf conf = {
	.partner = "fs",
	.categories = CK_CATEGORY_BIT(CK_CATEGORY_DEPOSIT) |
	    CK_CATEGORY_BIT(CK_CATEGORY_REAL_ESTATE),
	.max_hops = 3,
};

static struct ck_agency_call
query_call(const char *const *via, size_t nvia)
{
	struct ck_agency_call c = {
		.size = sizeof(c),
		.op = CK_OP_QUERY,
		.log_id = "0123456789abcdef",
		.broker_id = "gz",
		.court_id = "440100",
		.officer_id = "GZ0001",
		.case_number = "(2019)粤01执123号",
		.resident_id = "11010519491231002X",
		.name = "张三",
		.categories = CK_CATEGORY_BIT(CK_CATEGORY_DEPOSIT) |
		    CK_CATEGORY_BIT(CK_CATEGORY_VEHICLE),
		.via = via,
		.nvia = nvia,
	};
	return c;
}

static void
test_route(void **state)
{
	static const char *const none[] = { NULL };
	static const char *const loop[] = { "fs" };
	static const char *const two[] = { "a", "b" };
	static const char *const three[] = { "a", "b", "c" };
	struct ck_ad_arena *a = ck_ad_arena_new();
	struct ck_agency_call c;
	struct ck_peer_via via;
	const char *why;
	int err;

	(void)state;
	c = query_call(none, 0);
	assert_null(ck_peer_route(a, &conf, &c, "gz", &via, &err));
	assert_int_equal(err, 0);
	assert_int_equal(via.n, 1);
	assert_string_equal(via.ids[0], "gz");

	c = query_call(two, 2);
	assert_null(ck_peer_route(a, &conf, &c, "gz", &via, &err));
	assert_int_equal(via.n, 3);
	assert_string_equal(via.ids[0], "a");
	assert_string_equal(via.ids[2], "gz");

	c = query_call(loop, 1);	/* fs forwarded to us: not back */
	why = ck_peer_route(a, &conf, &c, "gz", &via, &err);
	assert_non_null(why);
	assert_non_null(strstr(why, "forwarding loop"));
	c = query_call(none, 0);	/* a partner that is this broker */
	why = ck_peer_route(a, &conf, &c, "fs", &via, &err);
	assert_non_null(why);
	assert_non_null(strstr(why, "forwarding loop"));

	c = query_call(three, 3);
	why = ck_peer_route(a, &conf, &c, "gz", &via, &err);
	assert_non_null(why);
	assert_non_null(strstr(why, "hop limit is 3"));

	/* a broker built before via existed: the call is shorter */
	c = query_call(loop, 1);
	c.size = offsetof(struct ck_agency_call, via);
	assert_null(ck_peer_route(a, &conf, &c, "gz", &via, &err));
	assert_int_equal(via.n, 1);
	ck_ad_arena_free(a);
}

static void
test_pack(void **state)
{
	static const char *const via1[] = { "sz" };
	struct ck_ad_arena *a = ck_ad_arena_new();
	struct ck_agency_call c = query_call(via1, 1);
	Chakong__V1__QueryRequest *q;
	struct ck_peer_via via;
	uint8_t *req;
	size_t len;
	int err;

	(void)state;
	assert_null(ck_peer_route(a, &conf, &c, "gz", &via, &err));
	assert_int_equal(ck_peer_pack_query(a, &conf, &c, &via, &req, &len),
	    0);
	q = chakong__v1__query_request__unpack(NULL, len, req);
	assert_non_null(q);
	/* asked deposit + vehicle, forwarded deposit + real estate */
	assert_int_equal(q->n_categories, 1);
	assert_int_equal(q->categories[0],
	    CHAKONG__V1__CATEGORY__CATEGORY_DEPOSIT);
	assert_string_equal(q->case_->case_number, "(2019)粤01执123号");
	assert_string_equal(q->case_->officer_id, "GZ0001");
	assert_string_equal(q->debtor->resident_id, "11010519491231002X");
	assert_string_equal(q->debtor->name, "张三");
	assert_string_equal(q->request_id, "0123456789abcdef");
	assert_non_null(q->on_behalf);
	assert_string_equal(q->on_behalf->court_id, "440100");
	assert_string_equal(q->on_behalf->officer_id, "GZ0001");
	assert_string_equal(q->on_behalf->case_number, "(2019)粤01执123号");
	assert_int_equal(q->on_behalf->n_via, 2);
	assert_string_equal(q->on_behalf->via[0], "sz");
	assert_string_equal(q->on_behalf->via[1], "gz");
	chakong__v1__query_request__free_unpacked(q, NULL);

	/* nothing forwarded: refused (empty would mean every category) */
	c.categories = CK_CATEGORY_BIT(CK_CATEGORY_VEHICLE);
	assert_int_equal(ck_peer_pack_query(a, &conf, &c, &via, &req, &len),
	    CK_EINVAL);
	ck_ad_arena_free(a);
}

static const uint8_t partner_ref[] = { 0x01, 0xfb, 0xff, 0x10, 0x20 };

static size_t
reply_bytes(uint8_t *buf, size_t max)
{
	Chakong__V1__QueryReply r = CHAKONG__V1__QUERY_REPLY__INIT;
	Chakong__V1__SourceResult s[3], *sp[3] = { &s[0], &s[1], &s[2] };
	Chakong__V1__Asset asset = CHAKONG__V1__ASSET__INIT, *ap = &asset;
	Chakong__V1__DepositAsset d = CHAKONG__V1__DEPOSIT_ASSET__INIT;
	Chakong__V1__Money bal = CHAKONG__V1__MONEY__INIT;
	Chakong__V1__Encumbrance e = CHAKONG__V1__ENCUMBRANCE__INIT, *ep = &e;

	for (int i = 0; i < 3; i++)
		chakong__v1__source_result__init(&s[i]);
	bal.fen = 123456789;
	bal.currency = "CNY";
	d.bank_code = "102";
	d.account_masked = "6222***********4134";
	d.balance = &bal;
	asset.category = CHAKONG__V1__CATEGORY__CATEGORY_DEPOSIT;
	asset.detail_case = CHAKONG__V1__ASSET__DETAIL_DEPOSIT;
	asset.deposit = &d;
	asset.asset_ref.data = (uint8_t *)partner_ref;
	asset.asset_ref.len = sizeof(partner_ref);
	e.kind = CHAKONG__V1__ENCUMBRANCE__KIND__FREEZE;
	e.court_id = "440600";
	e.frozen_fen = 500;
	asset.n_encumbrances = 1;
	asset.encumbrances = &ep;
	s[0].source = "bank:icbc";
	s[0].category = CHAKONG__V1__CATEGORY__CATEGORY_DEPOSIT;
	s[0].status = CHAKONG__V1__SOURCE_STATUS__SOURCE_OK;
	s[0].n_assets = 1;
	s[0].assets = &ap;
	s[1].source = "zs/bank:abc";	/* the partner forwarded further */
	s[1].category = CHAKONG__V1__CATEGORY__CATEGORY_DEPOSIT;
	s[1].status = CHAKONG__V1__SOURCE_STATUS__SOURCE_DENIED;
	s[1].message = "no right";
	s[1].answered_by = "zs";
	s[2].source = "vehicle";	/* never asked: not passed on */
	s[2].category = CHAKONG__V1__CATEGORY__CATEGORY_VEHICLE;
	s[2].status = CHAKONG__V1__SOURCE_STATUS__SOURCE_OK;
	r.n_sources = 3;
	r.sources = sp;
	assert_true(chakong__v1__query_reply__get_packed_size(&r) <= max);
	return chakong__v1__query_reply__pack(&r, buf);
}

static void
test_map_reply(void **state)
{
	struct ck_ad_arena *a = ck_ad_arena_new();
	uint32_t asked = CK_CATEGORY_BIT(CK_CATEGORY_DEPOSIT);
	const struct ck_source_result *s;
	struct ck_result res;
	uint8_t buf[1024];
	size_t len = reply_bytes(buf, sizeof(buf));

	(void)state;
	ck_peer_map_reply(a, &conf, asked, CK_GRPC_OK, "", buf, len,
	    CK_DELIVERY_ANSWERED, &res);
	assert_int_equal(res.size, sizeof(res));
	assert_int_equal(res.nsources, 2);
	assert_non_null(res.answered_by);
	s = &res.sources[0];
	assert_string_equal(s->source, "fs/bank:icbc");
	assert_int_equal(s->status, CK_SOURCE_OK);
	assert_string_equal(res.answered_by[0], "fs");
	assert_int_equal(s->nassets, 1);
	assert_string_equal(s->assets[0].asset_id, "ref:Afv_ECA");
	assert_string_equal(s->assets[0].account_no, "6222***********4134");
	assert_int_equal(s->assets[0].balance_fen, 123456789);
	assert_string_equal(s->assets[0].currency, "CNY");
	assert_int_equal(s->assets[0].nencumbrances, 1);
	assert_string_equal(s->assets[0].encumbrances[0].court_id, "440600");
	assert_int_equal(s->assets[0].encumbrances[0].frozen_fen, 500);
	assert_null(s->assets[0].encumbrances[0].encumbrance_id);
	s = &res.sources[1];
	assert_string_equal(s->source, "fs/zs/bank:abc");
	assert_int_equal(s->status, CK_SOURCE_DENIED);
	assert_string_equal(res.answered_by[1], "zs");
	ck_ad_arena_free(a);
}

static void
test_map_refusals(void **state)
{
	struct ck_ad_arena *a = ck_ad_arena_new();
	uint32_t asked = CK_CATEGORY_BIT(CK_CATEGORY_DEPOSIT) |
	    CK_CATEGORY_BIT(CK_CATEGORY_REAL_ESTATE) |
	    CK_CATEGORY_BIT(CK_CATEGORY_VEHICLE);
	static const uint8_t garbage[] = { 0xff, 0xff, 0xff };
	struct ck_result res;

	(void)state;
	ck_peer_map_reply(a, &conf, asked, CK_GRPC_PERMISSION_DENIED,
	    "categories: peer gz has no right to Query real-estate", NULL, 0,
	    CK_DELIVERY_ANSWERED, &res);
	/* one line per forwarded category (not vehicle: not configured) */
	assert_int_equal(res.nsources, 2);
	assert_string_equal(res.sources[0].source, "fs/deposit");
	assert_int_equal(res.sources[0].category, CK_CATEGORY_DEPOSIT);
	assert_string_equal(res.sources[1].source, "fs/real-estate");
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(res.sources[i].status, CK_SOURCE_DENIED);
		assert_non_null(strstr(res.sources[i].message,
		    "partner fs: categories: peer gz"));
		assert_string_equal(res.answered_by[i], "fs");
	}

	/* not reached: nobody answered */
	ck_peer_map_reply(a, &conf, asked, CK_GRPC_UNAVAILABLE, "refused",
	    NULL, 0, CK_DELIVERY_NOT_SENT, &res);
	assert_int_equal(res.nsources, 2);
	assert_int_equal(res.sources[0].status, CK_SOURCE_UNAVAILABLE);
	assert_string_equal(res.answered_by[0], "");

	ck_peer_map_reply(a, &conf, asked, CK_GRPC_DEADLINE_EXCEEDED, NULL,
	    NULL, 0, CK_DELIVERY_IN_DOUBT, &res);
	assert_int_equal(res.sources[1].status, CK_SOURCE_TIMEOUT);

	ck_peer_map_reply(a, &conf, asked, CK_GRPC_FAILED_PRECONDITION,
	    "on_behalf.via: a forwarding loop", NULL, 0, CK_DELIVERY_ANSWERED,
	    &res);
	assert_int_equal(res.sources[0].status, CK_SOURCE_ERROR);
	assert_non_null(strstr(res.sources[0].message, "forwarding loop"));

	ck_peer_map_reply(a, &conf, asked, CK_GRPC_OK, "", garbage,
	    sizeof(garbage), CK_DELIVERY_ANSWERED, &res);
	assert_int_equal(res.nsources, 2);
	assert_int_equal(res.sources[0].status, CK_SOURCE_ERROR);
	assert_non_null(strstr(res.sources[0].message, "not a QueryReply"));
	ck_ad_arena_free(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_route),
		cmocka_unit_test(test_pack),
		cmocka_unit_test(test_map_reply),
		cmocka_unit_test(test_map_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
