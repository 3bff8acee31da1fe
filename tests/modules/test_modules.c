/*
 * test_modules.c: the built modules as the broker's loader sees them:
 * each of the five adapters in build/adapters/modules/ loads with dlopen,
 * its one entry symbol returns ops with this ABI, size and name, and none
 * of its internals (adapters/common, the agency protobuf code) is
 * visible. The test-only modules: ck_testonly answers a query with its
 * configured vehicle from the loop, and ck_badabi declares ABI + 1.
 *
 * Usage: test_modules <adapter module dir> <test module dir>
 */
#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "adapter_fakehost.h"

static const char *adapter_dir;
static const char *test_dir;

static void *
load(const char *dir, const char *name, const struct ck_adapter_ops **ops)
{
	char path[1024], sym[64];
	ck_adapter_entry_fn entry;
	void *h;

	snprintf(path, sizeof(path), "%s/ck_%s.so", dir, name);
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL)
		fail_msg("dlopen %s: %s", path, dlerror());
	snprintf(sym, sizeof(sym), "ck_adapter_%s", name);
	*(void **)&entry = dlsym(h, sym);
	assert_non_null(entry);
	*ops = entry();
	assert_non_null(*ops);
	return h;
}

static void
test_adapters(void **state)
{
	static const struct {
		const char *name;
		uint32_t categories, ops;
	} mods[] = {
		{ "bank", CK_CATEGORY_BIT(CK_CATEGORY_DEPOSIT),
		    CK_OP_BIT(CK_OP_QUERY) | CK_OP_BIT(CK_OP_FREEZE) |
			CK_OP_BIT(CK_OP_EXTEND) | CK_OP_BIT(CK_OP_RELEASE) |
			CK_OP_BIT(CK_OP_DEDUCT) },
		{ "realestate", CK_CATEGORY_BIT(CK_CATEGORY_REAL_ESTATE),
		    CK_OP_BIT(CK_OP_QUERY) | CK_OP_BIT(CK_OP_FREEZE) |
			CK_OP_BIT(CK_OP_EXTEND) | CK_OP_BIT(CK_OP_RELEASE) },
		{ "vehicle", CK_CATEGORY_BIT(CK_CATEGORY_VEHICLE),
		    CK_OP_BIT(CK_OP_QUERY) | CK_OP_BIT(CK_OP_FREEZE) |
			CK_OP_BIT(CK_OP_EXTEND) | CK_OP_BIT(CK_OP_RELEASE) },
		{ "household", CK_CATEGORY_BIT(CK_CATEGORY_HOUSEHOLD),
		    CK_OP_BIT(CK_OP_QUERY) },
		{ "enterprise", CK_CATEGORY_BIT(CK_CATEGORY_ENTERPRISE),
		    CK_OP_BIT(CK_OP_QUERY) },
	};
	static const char *const hidden[] = {
		"ck_ad_arena_new",
		"ck_ad_call_start",
		"ck_ad_single_start",
		"ck_bank_map_query",
		"ck_vehicle_map_query",
		"chakong__agency__v1__query_accounts_reply__unpack",
		"chakong__agency__v1__seal_request__descriptor",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(mods) / sizeof(mods[0]); i++) {
		const struct ck_adapter_ops *ops;
		void *h = load(adapter_dir, mods[i].name, &ops);

		assert_int_equal(ops->abi, CK_ADAPTER_ABI);
		assert_int_equal(ops->size, sizeof(struct ck_adapter_ops));
		assert_string_equal(ops->name, mods[i].name);
		assert_int_equal(ops->categories, mods[i].categories);
		assert_int_equal(ops->ops, mods[i].ops);
		assert_non_null(ops->create);
		assert_non_null(ops->destroy);
		assert_non_null(ops->sources);
		assert_non_null(ops->start);
		assert_non_null(ops->cancel);
		for (size_t j = 0; j < sizeof(hidden) / sizeof(hidden[0]); j++)
			assert_null(dlsym(h, hidden[j]));
		dlclose(h);
	}
}

static void
test_adapter_through_dlopen(void **state)
{
	static const char *const eps[] = { "a", "b", NULL };
	const struct ck_adapter_ops *ops;
	void *h = load(adapter_dir, "bank", &ops);
	const struct ck_kv kv[] = { { "endpoints", "a, b" } };
	struct ck_agency_call c = {
		.size = sizeof(c),
		.op = CK_OP_QUERY,
		.log_id = "m-1",
		.resident_id = "11010519491231002X",
		.timeout_usec = 20000,
	};
	struct fh_done d = { 0 };
	char err[128];
	void *self = NULL, *handle = NULL;

	(void)state;
	fh_setup(eps);
	assert_int_equal(
	    ops->create(&fh.host, kv, 1, &self, err, sizeof(err)), 0);
	assert_int_equal(ops->start(self, &c, fh_done_cb, &d, &handle), 0);
	assert_int_equal(fh.nrpcs, 2);
	fh_answer(0, 14, "down", NULL, 0, CK_DELIVERY_NOT_SENT);
	fh_run(&d, 1000);
	assert_int_equal(d.calls, 1);
	assert_int_equal(d.src[0].status, CK_SOURCE_UNAVAILABLE);
	assert_int_equal(d.src[1].status, CK_SOURCE_TIMEOUT);
	ops->destroy(self);
	fh_teardown();
	dlclose(h);
}

static void
check_canned(const struct ck_result *res, void *ud)
{
	const struct ck_asset *a;

	(void)ud;
	assert_int_equal(res->nsources, 1);
	assert_int_equal(res->sources[0].nassets, 1);
	a = &res->sources[0].assets[0];
	assert_int_equal(a->category, CK_CATEGORY_VEHICLE);
	assert_string_equal(a->asset_id, "TO-9");
	assert_string_equal(a->plate, "粤Z12345");
	assert_string_equal(a->vin, "TESTONLY000000001");
}

static void
test_testonly(void **state)
{
	const struct ck_adapter_ops *ops;
	void *h = load(test_dir, "testonly", &ops);
	const struct ck_kv kv[] = { { "source", "extra" },
		{ "asset_id", "TO-9" }, { "plate", "粤Z12345" } };
	const struct ck_kv bad[] = { { "colour", "red" } };
	struct ck_agency_call c = { .size = sizeof(c),
		.op = CK_OP_QUERY,
		.log_id = "t-1",
		.resident_id = "11010519491231002X" };
	struct fh_done d = { .check = check_canned };
	const char *names[1];
	char err[128];
	void *self = NULL, *handle = NULL;

	(void)state;
	fh_setup(NULL);
	assert_int_equal(ops->abi, CK_ADAPTER_ABI);
	assert_string_equal(ops->name, "testonly");
	assert_int_equal(
	    ops->create(&fh.host, bad, 1, &self, err, sizeof(err)), CK_ECONFIG);
	assert_non_null(strstr(err, "colour"));
	assert_int_equal(
	    ops->create(&fh.host, kv, 3, &self, err, sizeof(err)), 0);
	assert_int_equal(ops->sources(self, names, 1), 1);
	assert_string_equal(names[0], "extra");
	assert_int_equal(ops->start(self, &c, fh_done_cb, &d, &handle), 0);
	assert_int_equal(d.calls, 0);
	fh_run(&d, 1000);
	assert_int_equal(d.calls, 1);
	assert_string_equal(d.src[0].source, "extra");
	assert_int_equal(d.src[0].status, CK_SOURCE_OK);
	assert_int_equal(d.nsources, 1);

	/* cancelled before the loop runs: no done */
	struct fh_done d2 = { 0 };

	assert_int_equal(ops->start(self, &c, fh_done_cb, &d2, &handle), 0);
	ops->cancel(handle);
	fh_run(&d2, 20);
	assert_int_equal(d2.calls, 0);
	c.op = CK_OP_FREEZE;
	assert_int_equal(
	    ops->start(self, &c, fh_done_cb, &d2, &handle), CK_EUNSUPP);
	assert_non_null(strstr(fh.logs, "test-only adapter loaded"));
	ops->destroy(self);
	fh_teardown();
	dlclose(h);
}

static void
test_badabi(void **state)
{
	const struct ck_adapter_ops *ops;
	void *h = load(test_dir, "badabi", &ops);

	(void)state;
	assert_int_equal(ops->abi, CK_ADAPTER_ABI + 1);
	assert_string_equal(ops->name, "badabi");
	dlclose(h);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_adapters),
		cmocka_unit_test(test_adapter_through_dlopen),
		cmocka_unit_test(test_testonly),
		cmocka_unit_test(test_badabi),
	};

	if (argc != 3) {
		fprintf(
		    stderr, "usage: %s adapter_dir test_module_dir\n", argv[0]);
		return 2;
	}
	adapter_dir = argv[1];
	test_dir = argv[2];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
