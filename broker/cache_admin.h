/*
 * cache_admin.h: chakong.v1.CacheAdmin (proto/chakong/v1/cache_admin.proto),
 * the operators' Purge and Stats on the reply cache, for `chakongctl cache`.
 * Only the broker's own identity may call them (see cache_admin.c).
 */
#ifndef CK_CACHE_ADMIN_H
#define CK_CACHE_ADMIN_H

#include "cache_admin.pb-c.h"
#include "rpc.h"
#include "tls.h"

struct ck_cache;

/* The cache the methods act on; NULL: none (Stats says enabled=false,
 * Purge is FAILED_PRECONDITION). */
void ck_cache_admin_set(struct ck_cache *c);

void ck_cache_admin_purge(struct ck_call *call);
void ck_cache_admin_stats(struct ck_call *call);

#define CK_CACHE_ADMIN_METHODS                                             \
	{ "/chakong.v1.CacheAdmin/Purge",                                  \
	    &chakong__v1__cache_purge_request__descriptor,                 \
	    ck_cache_admin_purge, CK_ACCESS_ROLE(CK_ROLE_BROKER), 0 },      \
	{ "/chakong.v1.CacheAdmin/Stats",                                  \
	    &chakong__v1__cache_stats_request__descriptor,                 \
	    ck_cache_admin_stats, CK_ACCESS_ROLE(CK_ROLE_BROKER), 0 }

#endif
