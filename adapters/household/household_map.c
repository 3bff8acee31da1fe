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
	Chakong__Agency__V1__LookupPersonRequest m;
	Chakong__Agency__V1__CallContext ctx;
	Chakong__Agency__V1__Subject subj;

	if (!ck_ad_subject_ok(call) || ck_household_not_asked(call) != NULL)
		return CK_EINVAL;
	ck_ad_fill_context(call, &ctx, &subj);
	chakong__agency__v1__lookup_person_request__init(&m);
	m.ctx = &ctx;
	m.subject = &subj;
	return ck_ad_pack(a, &m.base, req, len);
}

void
ck_household_map_query(struct ck_ad_arena *a, const void *arg,
    const struct ck_ad_reply *r, struct ck_source_result *out)
{
	Chakong__Agency__V1__LookupPersonReply *m;
	ProtobufCAllocator pa;
	enum ck_source_status st;
	struct ck_asset *as;
	const char *msg;

	st = ck_ad_source_status(a, r, &msg);
	if (st != CK_SOURCE_OK) {
		ck_ad_source_set(out, st, msg);
		return;
	}
	ck_ad_arena_allocator(a, &pa);
	m = chakong__agency__v1__lookup_person_reply__unpack(
	    &pa, r->len, r->data);
	if (m == NULL) {
		ck_ad_source_set(
		    out, CK_SOURCE_ERROR, "agency reply does not decode");
		return;
	}
	if (!m->found) {
		ck_ad_source_set(out, CK_SOURCE_NOT_FOUND,
		    "the registry has no person with this id");
		return;
	}
	as = ck_ad_arena_alloc(a, sizeof(*as));
	if (as == NULL) {
		ck_ad_source_set(out, CK_SOURCE_ERROR, ck_ad_enomem_msg);
		return;
	}
	as->category = CK_CATEGORY_HOUSEHOLD;
	as->asset_id = arg;
	as->name = m->name;
	as->sex = m->sex;
	as->birth_date = m->birth_date;
	as->registered_address = m->registered_address;
	as->members = (const char *const *)m->members;
	as->nmembers = m->n_members;
	ck_ad_source_set(out, CK_SOURCE_OK, NULL);
	out->assets = as;
	out->nassets = 1;
}
