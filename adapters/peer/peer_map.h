/*
 * peer_map.h: the pure half of the peer adapter (adapters/peer): a query
 * as the chakong.v1 QueryRequest a partner city's broker takes, with the
 * on-behalf fields, and its QueryReply back as source results. No I/O, so
 * the unit tests drive it directly.
 *
 * Naming: a partner's source "bank:icbc" is reported as "<partner>/bank:
 * icbc" (a partner that forwarded further gives "fs/zs/bank:icbc"), and
 * answered_by says which city's broker answered (the partner's own
 * answered_by when it forwarded, else the partner). Each asset's asset_id
 * is "ref:" + the partner's own asset_ref in base64: the partner sealed it
 * for the originating court and this debtor, so a Freeze forwarded later
 * can hand it back unchanged.
 */
#ifndef CK_PEER_MAP_H
#define CK_PEER_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chakong/adapter.h"

#include "arena.h"

#define CK_PEER_PATH_QUERY "/chakong.v1.AssetBroker/Query"

/* What one peer instance is configured with. */
struct ck_peer_conf {
	const char *partner;	/* the partner broker's id ("fs") */
	uint32_t categories;	/* CK_CATEGORY_BIT mask forwarded */
	unsigned max_hops;	/* brokers a request may pass, with this one */
};

/* The via-list to send: call's via plus this broker's id. */
struct ck_peer_via {
	const char **ids;
	size_t n;
};

/*
 * Build the via-list of call (its brokers, then broker_id) into a. Returns
 * NULL when forwarding is allowed, else why not (a loop: the partner is
 * already on it; or the hop limit). CK_ENOMEM shows as *err != 0.
 */
const char *ck_peer_route(struct ck_ad_arena *a, const struct ck_peer_conf *pc,
    const struct ck_agency_call *call, const char *broker_id,
    struct ck_peer_via *via, int *err);

/* Pack the QueryRequest; 0, CK_ENOMEM or CK_EINVAL. */
int ck_peer_pack_query(struct ck_ad_arena *a, const struct ck_peer_conf *pc,
    const struct ck_agency_call *call, const struct ck_peer_via *via,
    uint8_t **req, size_t *len);

/*
 * Map the partner's answer into res (sources and answered_by in a): an OK
 * reply gives the partner's sources; any other status one result per
 * forwarded category ("<partner>/<category>") saying why: DENIED for
 * PERMISSION_DENIED, TIMEOUT, UNAVAILABLE, else ERROR. Never fails: out of
 * memory or garbage becomes ERROR results.
 */
void ck_peer_map_reply(struct ck_ad_arena *a, const struct ck_peer_conf *pc,
    uint32_t categories, int grpc_status, const char *message,
    const uint8_t *reply, size_t len, enum ck_delivery delivery,
    struct ck_result *res);

/* One result per category in `categories`, all with status and message
 * (a forward that did not happen or failed as a whole); answered_by is
 * the partner when it gave that answer, "" when this broker decided. */
void ck_peer_answer_all(struct ck_ad_arena *a, const struct ck_peer_conf *pc,
    uint32_t categories, enum ck_source_status status, const char *message,
    bool partner_answered, struct ck_result *res);

#endif
