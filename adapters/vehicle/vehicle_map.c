/*
 * vehicle_map.c: broker calls ↔ VehicleRegistry.QueryVehicles.
 */
#include "vehicle_map.h"
#include "vehicle.pb-c.h"

int
ck_vehicle_pack_query(struct ck_ad_arena *a, const struct ck_agency_call *call,
    uint8_t **req, size_t *len)
{
	Chakong__Agency__V1__QueryVehiclesRequest m;
	Chakong__Agency__V1__CallContext ctx;
	Chakong__Agency__V1__Subject subj;

	if (!ck_ad_subject_ok(call))
		return CK_EINVAL;
	ck_ad_fill_context(call, &ctx, &subj);
	chakong__agency__v1__query_vehicles_request__init(&m);
	m.ctx = &ctx;
	m.subject = &subj;
	return ck_ad_pack(a, &m.base, req, len);
}

void
ck_vehicle_map_query(struct ck_ad_arena *a, const void *arg,
    const struct ck_ad_reply *r, struct ck_source_result *out)
{
	Chakong__Agency__V1__QueryVehiclesReply *m;
	ProtobufCAllocator pa;
	enum ck_source_status st;
	struct ck_asset *as;
	const char *msg;

	(void)arg;
	st = ck_ad_source_status(a, r, &msg);
	if (st != CK_SOURCE_OK) {
		ck_ad_source_set(out, st, msg);
		return;
	}
	ck_ad_arena_allocator(a, &pa);
	m = chakong__agency__v1__query_vehicles_reply__unpack(
	    &pa, r->len, r->data);
	if (m == NULL) {
		ck_ad_source_set(
		    out, CK_SOURCE_ERROR, "agency reply does not decode");
		return;
	}
	if (!m->found) {
		ck_ad_source_set(out, CK_SOURCE_NOT_FOUND,
		    "the registry holds no vehicle for this subject");
		return;
	}
	ck_ad_source_set(out, CK_SOURCE_OK, NULL);
	if (m->n_vehicles == 0)
		return;
	as = ck_ad_arena_calloc(a, m->n_vehicles, sizeof(*as));
	if (as == NULL)
		goto enomem;
	for (size_t i = 0; i < m->n_vehicles; i++) {
		const Chakong__Agency__V1__Vehicle *x = m->vehicles[i];

		as[i].category = CK_CATEGORY_VEHICLE;
		as[i].asset_id = x->vehicle_id;
		as[i].plate = x->plate;
		as[i].vin = x->vin;
		as[i].make_model = x->make_model;
		as[i].registered_on = x->registered_on;
		if (ck_ad_map_encumbrances(a, x->encumbrances,
			x->n_encumbrances, CK_ENCUMBRANCE_SEAL,
			&as[i].encumbrances, &as[i].nencumbrances) < 0)
			goto enomem;
	}
	out->assets = as;
	out->nassets = m->n_vehicles;
	return;
enomem:
	ck_ad_source_set(out, CK_SOURCE_ERROR, ck_ad_enomem_msg);
}
