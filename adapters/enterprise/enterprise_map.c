/*
 * enterprise_map.c: broker calls ↔ EnterpriseRegistry.LookupEnterprise.
 */
#include "enterprise_map.h"
#include "enterprise.pb-c.h"

const char *
ck_enterprise_not_asked(const struct ck_agency_call *call)
{
	if (call->uscc != NULL && call->uscc[0] != '\0')
		return NULL;
	return "the business registry holds enterprises only; "
	       "not asked for a resident id";
}

int
ck_enterprise_pack_query(struct ck_ad_arena *a,
    const struct ck_agency_call *call, uint8_t **req, size_t *len)
{
	Chakong__Agency__V1__LookupEnterpriseRequest m =
	    CHAKONG__AGENCY__V1__LOOKUP_ENTERPRISE_REQUEST__INIT;

	if (ck_enterprise_not_asked(call) != NULL)
		return CK_EINVAL;
	return ck_ad_pack_query(a, call, &m.base, &m.ctx, &m.subject, req, len);
}

void
ck_enterprise_map_query(struct ck_ad_arena *a, const void *arg,
    const struct ck_ad_reply *r, struct ck_source_result *out)
{
	const Chakong__Agency__V1__LookupEnterpriseReply *m;
	struct ck_asset *as;
	const char **members = NULL;

	m = ck_ad_unpack_query(a, r,
	    &chakong__agency__v1__lookup_enterprise_reply__descriptor, out);
	if (m == NULL)
		return;
	if (!m->found) {
		ck_ad_source_set(out, CK_SOURCE_NOT_FOUND,
		    "the registry has no enterprise with this code");
		return;
	}
	as = ck_ad_source_record(a, out);
	if (as == NULL)
		return;
	if (m->n_shareholders > 0) {
		members =
		    ck_ad_arena_calloc(a, m->n_shareholders, sizeof(*members));
		if (members == NULL) {
			ck_ad_source_set(
			    out, CK_SOURCE_ERROR, ck_ad_enomem_msg);
			return;
		}
	}
	for (size_t i = 0; i < m->n_shareholders; i++)
		members[i] = m->shareholders[i]->name;
	as->category = CK_CATEGORY_ENTERPRISE;
	as->asset_id = arg;
	as->name = m->name;
	as->status = m->status;
	as->legal_representative = m->legal_representative;
	if (m->registered_capital != NULL) {
		as->registered_capital_fen = m->registered_capital->fen;
		as->currency = m->registered_capital->currency;
	}
	as->registered_address = m->registered_address;
	as->established_on = m->established_on;
	as->members = members;
	as->nmembers = m->n_shareholders;
}
