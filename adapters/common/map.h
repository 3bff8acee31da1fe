/*
 * map.h: the pure half every adapter shares: filling the agency's
 * CallContext and Subject from a broker call, packing a request into the
 * call's arena, turning an outbound call's gRPC status and delivery into a
 * ck_source_status (queries) or a ck_result error (actions), encumbrances,
 * action statuses, and the Seal/Extend/Release actions the registries
 * share (common.proto). No I/O, no libevent: unit tests drive it with
 * packed protobuf replies.
 */
#ifndef CK_AD_MAP_H
#define CK_AD_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chakong/adapter.h"
#include "chakong/grpc_status.h"
#include "common.pb-c.h"

#include "arena.h"

/*
 * How an outbound call ended: the arguments of ck_rpc_cb, or one the glue
 * made up (its own deadline passed, rpc_start failed). data is valid only
 * while it is being mapped; mapping copies what it keeps into the arena.
 */
struct ck_ad_reply {
	int grpc_status;
	const char *message; /* may be NULL */
	const uint8_t *data;
	size_t len;
	enum ck_delivery delivery;
};

/* The static message for an out-of-memory mapping. */
extern const char ck_ad_enomem_msg[];

/* s, or "" for NULL: protobuf-c strings are never NULL in what we send. */
static inline char *
ck_ad_s(const char *s)
{
	return (char *)(s != NULL ? s : "");
}

/* Whether the call names its subject: exactly one id, non-empty. */
bool ck_ad_subject_ok(const struct ck_agency_call *call);

/* Whether a query must leave `source` out (call->skip_sources). */
bool ck_ad_source_skipped(const struct ck_agency_call *call,
    const char *source);

/*
 * Point ctx and subj at the call's strings (borrowed: pack before the call
 * goes away). Missing strings become "".
 */
void ck_ad_fill_context(const struct ck_agency_call *call,
    Chakong__Agency__V1__CallContext *ctx, Chakong__Agency__V1__Subject *subj);

/*
 * Whether an action call carries what every state-changing agency call
 * needs: a subject, an idempotency key, a case and a document number.
 */
bool ck_ad_action_ok(const struct ck_agency_call *call);

/* Serialise m into the arena. Returns 0 or CK_ENOMEM. */
int ck_ad_pack(struct ck_ad_arena *a, const ProtobufCMessage *m, uint8_t **out,
    size_t *len);

/*
 * A query request, whose fields are the CallContext and the Subject only:
 * m's own ctx and subject fields point at the call's for the packing (and
 * are NULL again after). Returns 0, CK_EINVAL (no subject) or CK_ENOMEM.
 */
int ck_ad_pack_query(struct ck_ad_arena *a, const struct ck_agency_call *call,
    ProtobufCMessage *m, Chakong__Agency__V1__CallContext **ctx,
    Chakong__Agency__V1__Subject **subject, uint8_t **req, size_t *len);

/*
 * The source status for a reply that is not a decodable answer: anything
 * but gRPC OK. NOT_SENT → UNAVAILABLE; DEADLINE_EXCEEDED → TIMEOUT;
 * UNAVAILABLE (a transport failure) → UNAVAILABLE; any other code → ERROR.
 * Returns CK_SOURCE_OK when the reply is to be decoded, else the status,
 * with a message (in the arena, or static) in *message.
 */
enum ck_source_status ck_ad_source_status(
    struct ck_ad_arena *a, const struct ck_ad_reply *r, const char **message);

/* Set sr's status and message (source and category already set), no
 * assets. */
void ck_ad_source_set(struct ck_source_result *sr, enum ck_source_status status,
    const char *message);

/*
 * The first half of mapping a query's answer: its rpc status, then the
 * reply decoded as desc into the arena. Returns the message, or NULL with
 * out set (per ck_ad_source_status, or ERROR when it does not decode).
 */
void *ck_ad_unpack_query(struct ck_ad_arena *a, const struct ck_ad_reply *r,
    const ProtobufCMessageDescriptor *desc, struct ck_source_result *out);

/* Fill as from the i-th item of a decoded reply; 0 or CK_ENOMEM. */
typedef int (*ck_ad_asset_fn)(
    struct ck_ad_arena *a, const void *reply, size_t i, struct ck_asset *as);

/*
 * A found reply's n assets, each filled by one: out becomes OK with them,
 * or ERROR when memory runs out.
 */
void ck_ad_source_assets(struct ck_ad_arena *a, const void *reply, size_t n,
    ck_ad_asset_fn one, struct ck_source_result *out);

/*
 * A found reply that is one record: out becomes OK with one zeroed asset
 * for the caller to fill, which is returned; or ERROR, and NULL.
 */
struct ck_asset *ck_ad_source_record(
    struct ck_ad_arena *a, struct ck_source_result *out);

/*
 * For actions: when r is not a decodable answer, set res->error (TIMEOUT,
 * UNAVAILABLE or ERROR, as for queries), res->delivery and res->message
 * and return false; else return true.
 */
bool ck_ad_action_error(
    struct ck_ad_arena *a, const struct ck_ad_reply *r, struct ck_result *res);

/*
 * An agency answered OK but its reply is unusable (does not decode, or an
 * unknown status): ERROR, and IN_DOUBT since it may have acted.
 */
void ck_ad_action_garbage(struct ck_result *res, const char *message);

/* Agency ActionStatus → ck_action_status; false for UNSPECIFIED/unknown. */
bool ck_ad_action_status(int agency, enum ck_action_status *out);

/*
 * Encumbrances of an asset, copied into the arena (strings are borrowed
 * from the decoded reply, which lives in the same arena). kind_default is
 * used when the agency leaves the kind unspecified. Returns 0 or
 * CK_ENOMEM.
 */
int ck_ad_map_encumbrances(struct ck_ad_arena *a,
    Chakong__Agency__V1__Encumbrance *const *in, size_t n,
    enum ck_encumbrance_kind kind_default, const struct ck_encumbrance **out,
    size_t *nout);

/*
 * EXTEND and RELEASE, the actions every agency protocol shares
 * (common.proto): the request for call, with ctx and subj, into the arena
 * (the caller has checked ck_ad_action_ok). Returns 0, CK_EINVAL (a
 * required field is missing), CK_EUNSUPP (another op) or CK_ENOMEM.
 */
int ck_ad_pack_common_action(struct ck_ad_arena *a,
    const struct ck_agency_call *call, Chakong__Agency__V1__CallContext *ctx,
    Chakong__Agency__V1__Subject *subj, uint8_t **req, size_t *len);

/*
 * Decode the reply of op (in the arena, through pa) into act and say the
 * agency's ActionStatus in *status; false when it does not decode or op
 * is not this agency's.
 */
typedef bool (*ck_ad_action_decode_fn)(enum ck_op op, ProtobufCAllocator *pa,
    const struct ck_ad_reply *r, struct ck_action_result *act, int *status);

/* The decoder of EXTEND and RELEASE replies (common.proto). */
bool ck_ad_decode_common_action(enum ck_op op, ProtobufCAllocator *pa,
    const struct ck_ad_reply *r, struct ck_action_result *act, int *status);

/*
 * An action's answer into res: an rpc error per ck_ad_action_error, else
 * the reply through decode (ERROR and IN_DOUBT when it does not decode or
 * has no valid status), else the action (in the arena).
 */
void ck_ad_map_action(struct ck_ad_arena *a, enum ck_op op,
    const struct ck_ad_reply *r, struct ck_result *res,
    ck_ad_action_decode_fn decode);

/*
 * Registry actions (real estate, vehicles): FREEZE → Seal, EXTEND, RELEASE
 * of `service` ("chakong.agency.v1.VehicleRegistry"). Packs the request
 * into the arena and sets *path (static or in the arena). Returns 0,
 * CK_EINVAL (a required field is missing), CK_EUNSUPP (another op) or
 * CK_ENOMEM.
 */
int ck_ad_registry_pack_action(struct ck_ad_arena *a, const char *service,
    const struct ck_agency_call *call, const char **path, uint8_t **req,
    size_t *len);
/* The reply of one of those, into res (and its action, in the arena). */
void ck_ad_registry_map_action(struct ck_ad_arena *a, enum ck_op op,
    const struct ck_ad_reply *r, struct ck_result *res);

/* ---- configuration ----------------------------------------------------- */

/* The value of key, or NULL. */
const char *ck_ad_conf_get(const struct ck_kv *conf, size_t n, const char *key);
/*
 * Refuse keys not in allowed (NULL-terminated), so a typo cannot pass
 * silently; `categories` (the broker narrows the instance with it,
 * adapter.h) always passes. Returns 0 or CK_ECONFIG naming the key.
 */
int ck_ad_conf_check(const struct ck_kv *conf, size_t n,
    const char *const *allowed, char *err, size_t errlen);

/*
 * A name for a source or endpoint: 1..63 of [a-z0-9_.:-]. Configured
 * names end up in logs and metric labels.
 */
bool ck_ad_name_ok(const char *s);

#endif
