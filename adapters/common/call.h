/*
 * call.h: the asynchronous half every adapter shares. One started broker
 * call is a struct ck_ad_call with one or more legs; each leg is one
 * outbound unary rpc (or an answer known without asking). The glue starts
 * the legs, collects their answers within the call's budget, maps each one
 * with the adapter's pure mapping function, calls done exactly once, and
 * frees the call's arena after done returns.
 *
 * States of a call:
 *
 *   NEW --start--> RUNNING --last leg answered / deadline--> DONE --> freed
 *                     |                                      (done() runs)
 *                     +--cancel()--> freed (no done)
 *
 * done() is never called from inside the adapter's start(): when every leg
 * is answered without an rpc (a subject this agency cannot know, rpc_start
 * failing), the answer is deferred through a zero-timeout event on the
 * broker's loop. cancel() from inside done() is a no-op.
 */
#ifndef CK_AD_CALL_H
#define CK_AD_CALL_H

#include <stddef.h>
#include <stdint.h>

#include "chakong/adapter.h"

#include "arena.h"
#include "map.h"

struct ck_ad_call;

/*
 * Map one query leg's reply into out (whose source and category are set;
 * latency is set after). arg is the leg's map_arg. Must fill status and
 * message; may leave assets empty. Copies into a what it keeps.
 */
typedef void (*ck_ad_query_map_fn)(struct ck_ad_arena *a, const void *arg,
    const struct ck_ad_reply *r, struct ck_source_result *out);
/* Map an action's reply into res: error/delivery/message or action. */
typedef void (*ck_ad_action_map_fn)(struct ck_ad_arena *a, enum ck_op op,
    const struct ck_ad_reply *r, struct ck_result *res);

/*
 * A new call for `call` with nlegs legs (1 for actions). Copies what it
 * keeps of call (log id, op, budget). Returns 0 or CK_ENOMEM.
 */
int ck_ad_call_new(const struct ck_host *host, const char *adapter,
    const struct ck_agency_call *call, size_t nlegs, struct ck_ad_call **out);
/* The call's arena, for packing requests. */
struct ck_ad_arena *ck_ad_call_arena(struct ck_ad_call *c);
/* Free a call that was never started; NULL-safe. */
void ck_ad_call_free(struct ck_ad_call *c);

/*
 * Leg i of a query: send req to path on ch and map the reply with map.
 * source must live as long as the adapter (or the arena).
 */
void ck_ad_call_query_leg(struct ck_ad_call *c, size_t i, struct ck_channel *ch,
    const char *source, enum ck_category category, const char *path,
    const uint8_t *req, size_t len, ck_ad_query_map_fn map,
    const void *map_arg);
/* Leg i of a query, answered without asking (e.g. NOT_FOUND). */
void ck_ad_call_query_answer(struct ck_ad_call *c, size_t i, const char *source,
    enum ck_category category, enum ck_source_status status,
    const char *message);
/* The one leg of an action. */
void ck_ad_call_action_leg(struct ck_ad_call *c, struct ck_channel *ch,
    const char *path, const uint8_t *req, size_t len, ck_ad_action_map_fn map);

/*
 * Start every leg and arm the deadline. Never calls done from here; on
 * success the call owns itself until done returns or ck_ad_call_cancel().
 * Returns 0, or CK_ENOMEM (nothing started, c still the caller's to free).
 */
int ck_ad_call_start(struct ck_ad_call *c, ck_done_cb done, void *arg);
/* Cancel: no done after this returns; outstanding rpcs cancelled. */
void ck_ad_call_cancel(struct ck_ad_call *c);

/*
 * The budget left for the collection timer: the call's budget less a
 * small reserve, so the adapter answers with what it has before the
 * broker's own deadline cancels it and every source of it turns TIMEOUT.
 */
uint64_t ck_ad_collect_usec(uint64_t budget);

#endif
