/*
 * vehicle_map.c: broker calls ↔ VehicleRegistry.QueryVehicles.
 */
#include "vehicle_map.h"
#include "vehicle.pb-c.h"

int
ck_vehicle_pack_query(struct ck_ad_arena *a, const struct ck_agency_call *call,
    uint8_t **req, size_t *len)
{
	Chakong__Agency__V1__QueryVehiclesRequest m =
	    CHAKONG__AGENCY__V1__QUERY_VEHICLES_REQUEST__INIT;

	return ck_ad_pack_query(a, call, &m.base, &m.ctx, &m.subject, req, len);
}

static int
map_vehicle(
    struct ck_ad_arena *a, const void *reply, size_t i, struct ck_asset *as)
{
	const Chakong__Agency__V1__QueryVehiclesReply *m = reply;
	const Chakong__Agency__V1__Vehicle *x = m->vehicles[i];

	as->category = CK_CATEGORY_VEHICLE;
	as->asset_id = x->vehicle_id;
	as->plate = x->plate;
	as->vin = x->vin;
	as->make_model = x->make_model;
	as->registered_on = x->registered_on;
	return ck_ad_map_encumbrances(a, x->encumbrances, x->n_encumbrances,
	    CK_ENCUMBRANCE_SEAL, &as->encumbrances, &as->nencumbrances);
}

void
ck_vehicle_map_query(struct ck_ad_arena *a, const void *arg,
    const struct ck_ad_reply *r, struct ck_source_result *out)
{
	const Chakong__Agency__V1__QueryVehiclesReply *m;

	(void)arg;
	m = ck_ad_unpack_query(
	    a, r, &chakong__agency__v1__query_vehicles_reply__descriptor, out);
	if (m == NULL)
		return;
	if (!m->found) {
		ck_ad_source_set(out, CK_SOURCE_NOT_FOUND,
		    "the registry holds no vehicle for this subject");
		return;
	}
	ck_ad_source_assets(a, m, m->n_vehicles, map_vehicle, out);
}
