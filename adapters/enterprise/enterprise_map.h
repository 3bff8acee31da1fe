/*
 * enterprise_map.h: the enterprise adapter's pure mapping to
 * chakong.agency.v1.EnterpriseRegistry (enterprise.proto), the one-click
 * business-registration query. The registry holds enterprises only: a
 * subject named by a resident id is answered NOT_FOUND without asking.
 */
#ifndef CK_ENTERPRISE_MAP_H
#define CK_ENTERPRISE_MAP_H

#include "map.h"

#define CK_ENTERPRISE_SERVICE "chakong.agency.v1.EnterpriseRegistry"
#define CK_ENTERPRISE_PATH_QUERY                                               \
	"/chakong.agency.v1.EnterpriseRegistry/LookupEnterprise"

/* NULL when the subject is an enterprise; else why it is not asked. */
const char *ck_enterprise_not_asked(const struct ck_agency_call *call);
/* LookupEnterpriseRequest; 0, CK_EINVAL (no credit code) or CK_ENOMEM. */
int ck_enterprise_pack_query(struct ck_ad_arena *a,
    const struct ck_agency_call *call, uint8_t **req, size_t *len);
/*
 * found = false → NOT_FOUND; else one ENTERPRISE record (asset_id arg, the
 * credit code) with the shareholders' names in members.
 */
void ck_enterprise_map_query(struct ck_ad_arena *a, const void *arg,
    const struct ck_ad_reply *r, struct ck_source_result *out);

#endif
