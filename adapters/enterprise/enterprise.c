/*
 * enterprise.c: the business registry adapter module (ck_enterprise.so):
 * `endpoint = <name>`; QUERY → LookupEnterprise for a credit code; a
 * resident id is answered NOT_FOUND without asking. Glue in
 * adapters/common/single.c, mapping in enterprise_map.c.
 */
#include "enterprise_map.h"
#include "single.h"

static const struct ck_ad_single_desc desc = {
	.name = "enterprise",
	.category = CK_CATEGORY_ENTERPRISE,
	.service = CK_ENTERPRISE_SERVICE,
	.query_path = CK_ENTERPRISE_PATH_QUERY,
	.pack_query = ck_enterprise_pack_query,
	.map_query = ck_enterprise_map_query,
	.not_asked = ck_enterprise_not_asked,
	.seals = false,
};

static int
enterprise_create(const struct ck_host *host, const struct ck_kv *conf,
    size_t n, void **self, char *err, size_t errlen)
{
	return ck_ad_single_create(&desc, host, conf, n, self, err, errlen);
}

static const struct ck_adapter_ops ops = {
	.abi = CK_ADAPTER_ABI,
	.size = sizeof(struct ck_adapter_ops),
	.name = "enterprise",
	.categories = CK_CATEGORY_BIT(CK_CATEGORY_ENTERPRISE),
	.ops = CK_OP_BIT(CK_OP_QUERY),
	.create = enterprise_create,
	.destroy = ck_ad_single_destroy,
	.sources = ck_ad_single_sources,
	.start = ck_ad_single_start,
	.cancel = ck_ad_single_cancel,
};

CK_ADAPTER_EXPORT const struct ck_adapter_ops *ck_adapter_enterprise(void);

const struct ck_adapter_ops *
ck_adapter_enterprise(void)
{
	return &ops;
}
