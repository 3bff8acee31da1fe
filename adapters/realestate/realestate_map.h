/*
 * realestate_map.h: the real-estate adapter's pure mapping to
 * chakong.agency.v1.RealEstateRegistry (realestate.proto). Seal, Extend
 * and Release are the registries' shared actions (common/map.h).
 */
#ifndef CK_REALESTATE_MAP_H
#define CK_REALESTATE_MAP_H

#include "map.h"

#define CK_REALESTATE_SERVICE "chakong.agency.v1.RealEstateRegistry"
#define CK_REALESTATE_PATH_QUERY                                               \
	"/chakong.agency.v1.RealEstateRegistry/QueryProperties"

/* QueryPropertiesRequest; 0, CK_EINVAL (no subject) or CK_ENOMEM. */
int ck_realestate_pack_query(struct ck_ad_arena *a,
    const struct ck_agency_call *call, uint8_t **req, size_t *len);
/* found = false → NOT_FOUND; else one REAL_ESTATE asset per property. */
void ck_realestate_map_query(struct ck_ad_arena *a, const void *arg,
    const struct ck_ad_reply *r, struct ck_source_result *out);

#endif
