/*
 * federation.h: queries a partner city's broker forwards on behalf of its
 * courts (QueryRequest.on_behalf; adapters/peer is the sending side).
 *
 * The receiving side, for a Query carrying on_behalf:
 *   - only a broker identity configured as [peer.<id>] may send it: from a
 *     court certificate (or an unlisted broker) it is PERMISSION_DENIED
 *     naming `on_behalf`; a peer broker must send it (a broker has no
 *     rights of its own);
 *   - rights: ck_fed_allow(peer, originating court, officer, method,
 *     categories), before anything else in the request is examined: the
 *     intersection of [peer.<id>] and the originating court's own
 *     [policy.court:<id>] here (policy.h); ck_rpc_admit() leaves a listed
 *     peer's Query to it and refuses a peer every other method;
 *   - the rest is validated like any Query, and on_behalf must agree with
 *     it (officer, case, the case's court = the originating court);
 *   - on_behalf.via (brokers passed, originating first, sender last) must
 *     not hold this broker's id nor be longer than CK_FED_MAX_HOPS:
 *     otherwise FAILED_PRECONDITION (a forwarding loop is cut, never
 *     followed);
 *   - the query then runs as the originating court (its refs are bound to
 *     that court) with origin "forwarded".
 */
#ifndef CK_FEDERATION_H
#define CK_FEDERATION_H

#include <stddef.h>
#include <stdint.h>

#include "broker.pb-c.h"
#include "fanout.h"
#include "rpc.h"

/* Brokers a forwarded request may have passed before reaching this one
 * (on_behalf.via entries): 3 = a partner's partner's partner. */
#define CK_FED_MAX_HOPS 3

struct ck_case;
struct ck_config;

/*
 * The configuration in force (chakongd sets it at start-up and on every
 * reload): a peer's rights are read from it, not from the config its
 * long-lived pooled connection was accepted under, so a right withdrawn by
 * SIGHUP is withdrawn for the next call. Borrowed; NULL = each call's own.
 */
void ck_fed_set_config(const struct ck_config *cfg);

/*
 * May partner broker `peer_id` call `method` ("Query") on behalf of court
 * `court_id` and its officer for `categories` (CK_CATEGORY_BIT mask)?
 * Returns CK_GRPC_OK, or CK_GRPC_PERMISSION_DENIED with a message naming
 * the missing right. The one place the partner's rights are decided:
 * [peer.<id>] and cfg->policy for the originating court.
 */
int ck_fed_allow(const struct ck_config *cfg, const char *peer_id,
    const char *court_id, const char *officer_id, const char *method,
    uint32_t categories, char *msg, size_t msglen);

/* Is the caller a broker listed as [peer.<id>] in the config in force? */
bool ck_fed_is_peer(const struct ck_call *call);

/*
 * The federation part of a Query, before anything else is examined:
 * refuses on_behalf from callers that may not send it, requires it from
 * brokers, and checks the peer's rights. Returns CK_GRPC_OK (and true in
 * *forwarded when the call is a peer's) or a gRPC status with msg.
 */
int ck_fed_query_rights(const struct ck_call *call,
    const Chakong__V1__QueryRequest *req, bool *forwarded, char *msg,
    size_t msglen);

/*
 * After the Query was validated (kase, its court `case_court`): checks
 * on_behalf against it and the via-list, and makes fq run as the
 * originating court (the caller marks the call's origin "forwarded" once
 * ck_fed_query_rights() said so). Returns CK_GRPC_OK or a gRPC status
 * with msg.
 */
int ck_fed_query_accept(const struct ck_call *call,
    const Chakong__V1__QueryRequest *req, const struct ck_case *kase,
    const char *case_court, struct ck_fanout_query *fq, char *msg,
    size_t msglen);

/*
 * Is `source` a partner broker's ("fs/bank:icbc": adapters/peer prefixes
 * the partner's sources with its id; local source names never hold '/')?
 * Actions on such assets are not forwarded yet: Freeze refuses them.
 */
bool ck_fed_source_is_partner(const char *source);

#endif
