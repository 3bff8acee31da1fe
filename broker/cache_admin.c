/*
 * cache_admin.c: chakong.v1.CacheAdmin. An admin RPC rather than a CLI
 * that opens cache.mdb itself: a purge must also move the generations in
 * the running broker's memory (so a fetch in flight is not stored after
 * it) and go through its writer thread; the counters (hits, misses,
 * coalesced) live only in the process; and the data key stays with the
 * broker instead of in every operator's hands. The method table lets any
 * broker certificate through; this file narrows that to the broker's own
 * identity, so a partner city's broker cannot purge or probe our cache.
 */
#include "cache_admin.h"

#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "clock.h"
#include "config.h"
#include "grpc_frame.h"
#include "validate.h"

static struct ck_cache *cache;

/* A purge waits for its commit; the call may end first. */
struct purge {
	struct ck_call *call;
};

void
ck_cache_admin_set(struct ck_cache *c)
{
	cache = c;
}

static bool
own_identity(struct ck_call *call)
{
	if (strcmp(call->peer->id, call->cfg->broker_id) == 0)
		return true;
	ck_call_fail(call, CK_GRPC_PERMISSION_DENIED, "CacheAdmin: only this "
	    "broker's own certificate may call it");
	return false;
}

static void
on_purge_cancel(struct ck_call *call)
{
	struct purge *p = call->handler_data;

	p->call = NULL;
}

static void
on_purged(void *arg, int rc, uint64_t dropped)
{
	struct purge *p = arg;
	struct ck_call *call = p->call;
	Chakong__V1__CachePurgeReply rep = CHAKONG__V1__CACHE_PURGE_REPLY__INIT;

	free(p);
	if (call == NULL)
		return;
	call->on_cancel = NULL;
	if (rc != 0) {
		ck_call_fail(call, CK_GRPC_UNAVAILABLE, "the cache could not "
		    "be written; retry");
		return;
	}
	rep.dropped = dropped;
	ck_call_reply(call, &rep.base);
}

void
ck_cache_admin_purge(struct ck_call *call)
{
	const Chakong__V1__CachePurgeRequest *req =
	    (const Chakong__V1__CachePurgeRequest *)call->request;
	char why[CK_WHY_MAX];
	struct ck_date today;
	const char *id;
	struct purge *p;

	if (!own_identity(call))
		return;
	ck_date_from_unix_cst(ck_clock_now(), &today);
	switch (req->id_case) {
	case CHAKONG__V1__CACHE_PURGE_REQUEST__ID_RESIDENT_ID:
		id = req->resident_id;
		if (!ck_valid_resident_id(id, strlen(id), &today, why)) {
			ck_call_fail(call, CK_GRPC_INVALID_ARGUMENT,
			    "resident_id: %s", why);
			return;
		}
		break;
	case CHAKONG__V1__CACHE_PURGE_REQUEST__ID_USCC:
		id = req->uscc;
		if (!ck_valid_uscc(id, strlen(id), why)) {
			ck_call_fail(call, CK_GRPC_INVALID_ARGUMENT, "uscc: %s",
			    why);
			return;
		}
		break;
	default:
		ck_call_fail(call, CK_GRPC_INVALID_ARGUMENT, "id: resident_id "
		    "or uscc is required");
		return;
	}
	if (cache == NULL) {
		ck_call_fail(call, CK_GRPC_FAILED_PRECONDITION, "this broker "
		    "has no cache ([cache] key is not set)");
		return;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL || ck_cache_purge(cache, id, on_purged, p) != 0) {
		free(p);
		ck_call_fail(call, CK_GRPC_RESOURCE_EXHAUSTED, "server out of "
		    "memory");
		return;
	}
	p->call = call;
	call->handler_data = p;
	call->on_cancel = on_purge_cancel;
}

void
ck_cache_admin_stats(struct ck_call *call)
{
	Chakong__V1__CacheStatsReply rep = CHAKONG__V1__CACHE_STATS_REPLY__INIT;
	struct ck_cache_stats s;

	if (!own_identity(call))
		return;
	if (cache != NULL) {
		ck_cache_get_stats(cache, &s);
		rep.enabled = true;
		rep.hits = s.hits;
		rep.misses = s.misses;
		rep.coalesced = s.coalesced;
		rep.evictions = s.evictions;
		rep.entries = s.entries;
		rep.bytes = s.bytes;
		rep.map_bytes = s.map_bytes;
		rep.stored = s.stored;
		rep.write_failures = s.write_failures;
		rep.dropped = s.dropped;
		rep.discarded = s.discarded;
		rep.key_rotations = s.rotations;
	}
	ck_call_reply(call, &rep.base);
}
