/*
 * fanout.h: Query through the adapters (see fanout.c).
 */
#ifndef CK_FANOUT_H
#define CK_FANOUT_H

#include <stdbool.h>
#include <stdint.h>

#include "broker.pb-c.h"
#include "rpc.h"

struct ck_adapters;
struct ck_refkeys;
struct ck_actions;
struct ck_cache;
struct ck_audit;

/* What Query fans out with: process-wide, set up at start-up. */
struct ck_fanout {
	struct ck_adapters *adapters;	/* NULL: none configured */
	struct ck_refkeys *refkeys;	/* NULL: refs not issued */
	struct ck_actions *actions;	/* NULL: no journal to keep current */
	struct ck_cache *cache;		/* NULL: every query is live */
	struct ck_audit *audit;		/* NULL: agency calls not audited */
};


const char *ck_origin_name(enum ck_origin o);

/* A validated query. Strings are borrowed for the call's life. Who it is
 * for (agencies, pool priority, audit) is the call's own origin. */
struct ck_fanout_query {
	uint32_t categories;		/* CK_CATEGORY_BIT mask, non-zero */
	const char *court_id;		/* the calling court */
	const char *officer_id;
	const char *case_number;	/* normalised */
	const char *resident_id;	/* one of these two */
	const char *uscc;
	const char *name;
	int64_t max_age_s;		/* oldest cached result accepted */
	/* federation (federation.h): NULL/0 for a court's own query */
	const char *const *via;		/* brokers passed before this one */
	size_t nvia;
	/* the access policy's part (policy.h): categories the caller asked
	 * implicitly (an empty list) but has no right to, and which agency
	 * sources it may reach (NULL: all). Their sources answer
	 * SOURCE_DENIED and are not asked. */
	uint32_t denied;
	bool (*source_ok)(const char *source, const void *arg);
	const void *source_arg;
};

/* Answer `call` (a Query) with one result per source, by its deadline. */
void ck_fanout_query(const struct ck_fanout *fo, struct ck_call *call,
    const struct ck_fanout_query *q);

/* "deposit", "real-estate", ... for enum ck_category. */
const char *ck_category_name(int category);
/* The reverse: the enum ck_category of a name, or 0. */
int ck_category_by_name(const char *name);
/* A list of chakong.v1.Category values as a CK_CATEGORY_BIT mask; values
 * that are no category are left out (validation names them). */
uint32_t ck_category_mask(const int *cats, size_t n);
#define CK_CATEGORY_ALL                                                   \
	(CK_CATEGORY_BIT(CK_CATEGORY_DEPOSIT) |                           \
	    CK_CATEGORY_BIT(CK_CATEGORY_REAL_ESTATE) |                    \
	    CK_CATEGORY_BIT(CK_CATEGORY_VEHICLE) |                        \
	    CK_CATEGORY_BIT(CK_CATEGORY_HOUSEHOLD) |                      \
	    CK_CATEGORY_BIT(CK_CATEGORY_ENTERPRISE))

#endif
