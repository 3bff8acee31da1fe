/*
 * realestate.c: the real-estate registry adapter module (ck_realestate.so):
 * `endpoint = <name>`; QUERY → QueryProperties, FREEZE → Seal, EXTEND,
 * RELEASE. Glue in adapters/common/single.c, mapping in realestate_map.c.
 */
#include "realestate_map.h"
#include "single.h"

static const struct ck_ad_single_desc desc = {
	.name = "realestate",
	.category = CK_CATEGORY_REAL_ESTATE,
	.service = CK_REALESTATE_SERVICE,
	.query_path = CK_REALESTATE_PATH_QUERY,
	.pack_query = ck_realestate_pack_query,
	.map_query = ck_realestate_map_query,
	.seals = true,
};

static int
realestate_create(const struct ck_host *host, const struct ck_kv *conf,
    size_t n, void **self, char *err, size_t errlen)
{
	return ck_ad_single_create(&desc, host, conf, n, self, err, errlen);
}

static const struct ck_adapter_ops ops = {
	.abi = CK_ADAPTER_ABI,
	.size = sizeof(struct ck_adapter_ops),
	.name = "realestate",
	.categories = CK_CATEGORY_BIT(CK_CATEGORY_REAL_ESTATE),
	.ops = CK_OP_BIT(CK_OP_QUERY) | CK_OP_BIT(CK_OP_FREEZE) |
	    CK_OP_BIT(CK_OP_EXTEND) | CK_OP_BIT(CK_OP_RELEASE),
	.create = realestate_create,
	.destroy = ck_ad_single_destroy,
	.sources = ck_ad_single_sources,
	.start = ck_ad_single_start,
	.cancel = ck_ad_single_cancel,
};

CK_ADAPTER_EXPORT const struct ck_adapter_ops *ck_adapter_realestate(void);

const struct ck_adapter_ops *
ck_adapter_realestate(void)
{
	return &ops;
}
