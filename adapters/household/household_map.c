/*
 * household_map.c: broker calls ↔ HouseholdRegistry.LookupPerson.
 */
#include "household_map.h"
#include "household.pb-c.h"

const char *
ck_household_not_asked(const struct ck_agency_call *call)
{
	if (call->resident_id != NULL && call->resident_id[0] != '\0')
		return NULL;
	return "the household registry holds natural persons only; "
	       "not asked for a credit code";
}

int
ck_household_pack_query(struct ck_ad_arena *a,
    const struct ck_agency_call *call, uint8_t **req, size_t *len)
{
	Chakong__Agency__V1__LookupPersonRequest m =
	    CHAKONG__AGENCY__V1__LOOKUP_PERSON_REQUEST__INIT;

	if (ck_household_not_asked(call) != NULL)
		return CK_EINVAL;
	return ck_ad_pack_query(a, call, &m.base, &m.ctx, &m.subject, req, len);
}

void
ck_household_map_query(struct ck_ad_arena *a, const void *arg,
    const struct ck_ad_reply *r, struct ck_source_result *out)
{
	const Chakong__Agency__V1__LookupPersonReply *m;
	struct ck_asset *as;

	m = ck_ad_unpack_query(
	    a, r, &chakong__agency__v1__lookup_person_reply__descriptor, out);
	if (m == NULL)
		return;
	if (!m->found) {
		ck_ad_source_set(out, CK_SOURCE_NOT_FOUND,
		    "the registry has no person with this id");
		return;
	}
	as = ck_ad_source_record(a, out);
	if (as == NULL)
		return;
	as->category = CK_CATEGORY_HOUSEHOLD;
	as->asset_id = arg;
	as->name = m->name;
	as->sex = m->sex;
	as->birth_date = m->birth_date;
	as->registered_address = m->registered_address;
	as->members = (const char *const *)m->members;
	as->nmembers = m->n_members;
}
