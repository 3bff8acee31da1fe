/*
 * vehicle.c: the vehicle registry adapter module (ck_vehicle.so):
 * `endpoint = <name>`; QUERY → QueryVehicles, FREEZE → Seal, EXTEND,
 * RELEASE. Glue in adapters/common/single.c, mapping in vehicle_map.c.
 */
#include "single.h"
#include "vehicle_map.h"

static const struct ck_ad_single_desc desc = {
	.name = "vehicle",
	.category = CK_CATEGORY_VEHICLE,
	.service = CK_VEHICLE_SERVICE,
	.query_path = CK_VEHICLE_PATH_QUERY,
	.pack_query = ck_vehicle_pack_query,
	.map_query = ck_vehicle_map_query,
	.seals = true,
};

static int
vehicle_create(const struct ck_host *host, const struct ck_kv *conf, size_t n,
    void **self, char *err, size_t errlen)
{
	return ck_ad_single_create(&desc, host, conf, n, self, err, errlen);
}

static const struct ck_adapter_ops ops = {
	.abi = CK_ADAPTER_ABI,
	.size = sizeof(struct ck_adapter_ops),
	.name = "vehicle",
	.categories = CK_CATEGORY_BIT(CK_CATEGORY_VEHICLE),
	.ops = CK_OP_BIT(CK_OP_QUERY) | CK_OP_BIT(CK_OP_FREEZE) |
	    CK_OP_BIT(CK_OP_EXTEND) | CK_OP_BIT(CK_OP_RELEASE),
	.create = vehicle_create,
	.destroy = ck_ad_single_destroy,
	.sources = ck_ad_single_sources,
	.start = ck_ad_single_start,
	.cancel = ck_ad_single_cancel,
};

CK_ADAPTER_EXPORT const struct ck_adapter_ops *ck_adapter_vehicle(void);

const struct ck_adapter_ops *
ck_adapter_vehicle(void)
{
	return &ops;
}
