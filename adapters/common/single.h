/*
 * single.h: the glue of an adapter that talks to one registry endpoint
 * (real estate, vehicles, household, enterprise). Config keys:
 *
 *   endpoint = <name>     the [endpoint.X] to call (required)
 *   source = <name>       the source name in replies (default: the
 *                         adapter's name; set it when two instances of
 *                         one module serve two registries)
 *
 * A query is one rpc (or, for a subject this registry cannot know, a
 * NOT_FOUND answered without asking); FREEZE/EXTEND/RELEASE go to the
 * registry's Seal/Extend/Release when the adapter has them.
 */
#ifndef CK_AD_SINGLE_H
#define CK_AD_SINGLE_H

#include "call.h"

/* What one single-endpoint adapter is. */
struct ck_ad_single_desc {
	const char *name; /* "vehicle": default source too */
	enum ck_category category;
	const char *service; /* "chakong.agency.v1.VehicleRegistry" */
	const char *query_path;
	/* pack the query request; 0, CK_EINVAL or CK_ENOMEM */
	int (*pack_query)(struct ck_ad_arena *a,
	    const struct ck_agency_call *call, uint8_t **req, size_t *len);
	/* map_arg is the subject's id (resident id or credit code) */
	ck_ad_query_map_fn map_query;
	/*
	 * NULL when any subject may be asked; else returns NULL for a
	 * subject the registry may know, or the message of the NOT_FOUND
	 * answered without asking.
	 */
	const char *(*not_asked)(const struct ck_agency_call *call);
	bool seals; /* FREEZE/EXTEND/RELEASE via common.proto */
};

struct ck_ad_single;

int ck_ad_single_create(const struct ck_ad_single_desc *d,
    const struct ck_host *host, const struct ck_kv *conf, size_t n, void **self,
    char *err, size_t errlen);
void ck_ad_single_destroy(void *self);
size_t ck_ad_single_sources(void *self, const char **names, size_t max);
int ck_ad_single_start(void *self, const struct ck_agency_call *call,
    ck_done_cb done, void *arg, void **handle);
void ck_ad_single_cancel(void *handle);

#endif
