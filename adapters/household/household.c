/*
 * household.c: the household registry adapter module (ck_household.so):
 * `endpoint = <name>`; QUERY → LookupPerson for a resident id; a credit
 * code is answered NOT_FOUND without asking. Glue in
 * adapters/common/single.c, mapping in household_map.c.
 */
#include "household_map.h"
#include "single.h"

static const struct ck_ad_single_desc desc = {
	.name = "household",
	.category = CK_CATEGORY_HOUSEHOLD,
	.service = CK_HOUSEHOLD_SERVICE,
	.query_path = CK_HOUSEHOLD_PATH_QUERY,
	.pack_query = ck_household_pack_query,
	.map_query = ck_household_map_query,
	.not_asked = ck_household_not_asked,
	.seals = false,
};

static int
household_create(const struct ck_host *host, const struct ck_kv *conf, size_t n,
    void **self, char *err, size_t errlen)
{
	return ck_ad_single_create(&desc, host, conf, n, self, err, errlen);
}

static const struct ck_adapter_ops ops = {
	.abi = CK_ADAPTER_ABI,
	.size = sizeof(struct ck_adapter_ops),
	.name = "household",
	.categories = CK_CATEGORY_BIT(CK_CATEGORY_HOUSEHOLD),
	.ops = CK_OP_BIT(CK_OP_QUERY),
	.create = household_create,
	.destroy = ck_ad_single_destroy,
	.sources = ck_ad_single_sources,
	.start = ck_ad_single_start,
	.cancel = ck_ad_single_cancel,
};

CK_ADAPTER_EXPORT const struct ck_adapter_ops *ck_adapter_household(void);

const struct ck_adapter_ops *
ck_adapter_household(void)
{
	return &ops;
}
