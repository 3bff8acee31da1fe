/*
 * household_map.h: the household adapter's pure mapping to
 * chakong.agency.v1.HouseholdRegistry (household.proto). The registry
 * holds natural persons only: a subject named by a credit code is
 * answered NOT_FOUND without asking.
 */
#ifndef CK_HOUSEHOLD_MAP_H
#define CK_HOUSEHOLD_MAP_H

#include "map.h"

#define CK_HOUSEHOLD_SERVICE "chakong.agency.v1.HouseholdRegistry"
#define CK_HOUSEHOLD_PATH_QUERY                                                \
	"/chakong.agency.v1.HouseholdRegistry/LookupPerson"

/* NULL when the subject is a person; else why it is not asked. */
const char *ck_household_not_asked(const struct ck_agency_call *call);
/* LookupPersonRequest; 0, CK_EINVAL (no resident id) or CK_ENOMEM. */
int ck_household_pack_query(struct ck_ad_arena *a,
    const struct ck_agency_call *call, uint8_t **req, size_t *len);
/*
 * found = false → NOT_FOUND; else one HOUSEHOLD record whose asset_id is
 * arg, the subject's resident id.
 */
void ck_household_map_query(struct ck_ad_arena *a, const void *arg,
    const struct ck_ad_reply *r, struct ck_source_result *out);

#endif
