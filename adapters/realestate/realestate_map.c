/*
 * realestate_map.c: broker calls ↔ RealEstateRegistry.QueryProperties.
 */
#include "realestate_map.h"
#include "realestate.pb-c.h"

int
ck_realestate_pack_query(struct ck_ad_arena *a,
    const struct ck_agency_call *call, uint8_t **req, size_t *len)
{
	Chakong__Agency__V1__QueryPropertiesRequest m =
	    CHAKONG__AGENCY__V1__QUERY_PROPERTIES_REQUEST__INIT;

	return ck_ad_pack_query(a, call, &m.base, &m.ctx, &m.subject, req, len);
}

static int
map_property(
    struct ck_ad_arena *a, const void *reply, size_t i, struct ck_asset *as)
{
	const Chakong__Agency__V1__QueryPropertiesReply *m = reply;
	const Chakong__Agency__V1__Property *x = m->properties[i];

	as->category = CK_CATEGORY_REAL_ESTATE;
	as->asset_id = x->unit_id;
	as->certificate_no = x->certificate_no;
	as->address = x->address;
	as->usage = x->usage;
	as->area_cm2 = x->area_cm2;
	as->share_percent = x->share_percent;
	return ck_ad_map_encumbrances(a, x->encumbrances, x->n_encumbrances,
	    CK_ENCUMBRANCE_SEAL, &as->encumbrances, &as->nencumbrances);
}

void
ck_realestate_map_query(struct ck_ad_arena *a, const void *arg,
    const struct ck_ad_reply *r, struct ck_source_result *out)
{
	const Chakong__Agency__V1__QueryPropertiesReply *m;

	(void)arg;
	m = ck_ad_unpack_query(a, r,
	    &chakong__agency__v1__query_properties_reply__descriptor, out);
	if (m == NULL)
		return;
	if (!m->found) {
		ck_ad_source_set(out, CK_SOURCE_NOT_FOUND,
		    "the registry holds no property for this subject");
		return;
	}
	ck_ad_source_assets(a, m, m->n_properties, map_property, out);
}
