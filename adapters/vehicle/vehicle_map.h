/*
 * vehicle_map.h: the vehicle adapter's pure mapping to
 * chakong.agency.v1.VehicleRegistry (vehicle.proto). Seal, Extend and
 * Release are the registries' shared actions (common/map.h).
 */
#ifndef CK_VEHICLE_MAP_H
#define CK_VEHICLE_MAP_H

#include "map.h"

#define CK_VEHICLE_SERVICE    "chakong.agency.v1.VehicleRegistry"
#define CK_VEHICLE_PATH_QUERY "/chakong.agency.v1.VehicleRegistry/QueryVehicles"

/* QueryVehiclesRequest; 0, CK_EINVAL (no subject) or CK_ENOMEM. */
int ck_vehicle_pack_query(struct ck_ad_arena *a,
    const struct ck_agency_call *call, uint8_t **req, size_t *len);
/* found = false → NOT_FOUND; else one VEHICLE asset per vehicle. */
void ck_vehicle_map_query(struct ck_ad_arena *a, const void *arg,
    const struct ck_ad_reply *r, struct ck_source_result *out);

#endif
