/*
 * bank_map.h: the bank adapter's pure mapping between broker calls and
 * chakong.agency.v1.Bank (bank.proto). No I/O; unit-tested with packed
 * agency replies.
 */
#ifndef CK_BANK_MAP_H
#define CK_BANK_MAP_H

#include <stddef.h>
#include <stdint.h>

#include "chakong/adapter.h"

#include "arena.h"
#include "map.h"

#define CK_BANK_SERVICE	      "chakong.agency.v1.Bank"
#define CK_BANK_PATH_QUERY    "/chakong.agency.v1.Bank/QueryAccounts"
#define CK_BANK_SOURCE_PREFIX "bank:"

/*
 * QueryAccountsRequest for call (CallContext and Subject) into the arena.
 * Returns 0, CK_EINVAL (no subject) or CK_ENOMEM.
 */
int ck_bank_pack_query(struct ck_ad_arena *a, const struct ck_agency_call *call,
    uint8_t **req, size_t *len);
/*
 * One endpoint's QueryAccounts answer → out (source and category set by
 * the caller): found = false → NOT_FOUND; an rpc error per map.h; a reply
 * that does not decode → ERROR; else one DEPOSIT asset per account.
 */
void ck_bank_map_query(struct ck_ad_arena *a, const void *arg,
    const struct ck_ad_reply *r, struct ck_source_result *out);

/*
 * Freeze, Extend, Release or Deduct for call into the arena, and its
 * method path. Returns 0, CK_EINVAL (a required field is missing),
 * CK_EUNSUPP (not an action) or CK_ENOMEM.
 */
int ck_bank_pack_action(struct ck_ad_arena *a,
    const struct ck_agency_call *call, const char **path, uint8_t **req,
    size_t *len);
/* Its reply → res: error/delivery/message, or action (in the arena). */
void ck_bank_map_action(struct ck_ad_arena *a, enum ck_op op,
    const struct ck_ad_reply *r, struct ck_result *res);

/* The endpoint in a source "bank:<endpoint>", or NULL. */
const char *ck_bank_source_endpoint(const char *source);

#endif
