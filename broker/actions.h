/*
 * actions.h: Freeze, Extend, Release, Deduct and UpdateClaim, with the
 * legal rules checked at the gateway and a durable journal in state.mdb
 * that makes each action happen at most once per (caller, request_id),
 * across retries, timeouts, crashes and restarts.
 *
 * One action:
 *
 *   validated (rpc.c) --intent job: rules, claim, reservation, PENDING
 *   record, one synced group commit--> SENDING --agency answers--> DONE
 *        |                                 |  (outcome job; reply at once)
 *        +-- refused by a rule (nothing     +-- not delivered: NOT_SENT
 *            stored, nothing sent)          |   (reservation returned)
 *                                           +-- unknown: PENDING, replied
 *                                               as such; the resolver
 *                                               re-sends with the same
 *                                               idempotency key, backing
 *                                               off, until a final answer
 *
 * At start-up every PENDING record is handed to the resolver.
 */
#ifndef CK_ACTIONS_H
#define CK_ACTIONS_H

#include <stdbool.h>

#include "broker.pb-c.h"
#include "ref.h"
#include "rpc.h"
#include "validate.h"

struct event_base;
struct ck_actions;
struct ck_adapters;
struct ck_config;
struct evbuffer;

/*
 * Open state.mdb under cfg->state_dir and resume pending actions. Returns
 * 0 or < 0 with a message in err.
 */
int ck_actions_open(struct event_base *base, struct ck_config *cfg,
    struct ck_adapters *adapters, struct ck_refkeys *keys,
    struct ck_actions **out, char *err, size_t errlen);
/* Lets queued journal writes finish; in-flight agency calls stay PENDING
 * in the journal (resumed at the next start). NULL-safe. */
void ck_actions_close(struct ck_actions *a);
/* A new configuration (courts' custody accounts, margin) for new calls. */
void ck_actions_reload(struct ck_actions *a, struct ck_config *cfg);

/* Can the broker journal? (false: /readyz fails, actions refused) */
bool ck_actions_ready(const struct ck_actions *a, const char **why);

/* The handlers, after rpc.c validated the request and opened its ref. */
void ck_actions_freeze(struct ck_actions *a, struct ck_call *call,
    const Chakong__V1__FreezeRequest *req, const struct ck_case *kase,
    const struct ck_ref *ref);
void ck_actions_extend(struct ck_actions *a, struct ck_call *call,
    const Chakong__V1__ExtendRequest *req, const struct ck_case *kase,
    const struct ck_ref *ref);
void ck_actions_release(struct ck_actions *a, struct ck_call *call,
    const Chakong__V1__ReleaseRequest *req, const struct ck_case *kase,
    const struct ck_ref *ref);
void ck_actions_deduct(struct ck_actions *a, struct ck_call *call,
    const Chakong__V1__DeductRequest *req, const struct ck_case *kase,
    const struct ck_ref *ref);
void ck_actions_update_claim(struct ck_actions *a, struct ck_call *call,
    const Chakong__V1__UpdateClaimRequest *req, const struct ck_case *kase);

/*
 * A Query saw this encumbrance at `source`: if it is a freeze this broker
 * made, bring its record up to date (promotion, later captures). Lossy
 * and asynchronous.
 */
struct ck_encumbrance;
void ck_actions_observe(struct ck_actions *a, const char *source,
    const struct ck_encumbrance *e);

/* Any Freeze, Extend, Release or Deduct drops the debtor's cached
 * results at its source (cache.h); NULL: no cache. */
struct ck_cache;
void ck_actions_set_cache(struct ck_actions *a, struct ck_cache *cache);
/* The audit trail kept in the same state.mdb (audit.h); NULL-safe. */
struct ck_audit;
struct ck_audit *ck_actions_audit(const struct ck_actions *a);
/*
 * state.mdb is one environment with one writer thread: other modules
 * keep their own named databases in it (watch.c: CK_WATCH_DBNAMES, from
 * index CK_ACTIONS_DB_OTHERS of ck_store_dbi()).
 */
#define CK_ACTIONS_DB_OTHERS 4
struct ck_store *ck_actions_store(struct ck_actions *a);

/* A freeze or seal this broker made, as the journal keeps it (borrowed
 * for the callback only). */
struct ck_freeze_view {
	const char *source;		/* "bank:icbc" */
	const char *encumbrance_id;
	const char *case_number;	/* normalised */
	const char *court_id;
	int category;			/* enum ck_category */
	const char *asset_id;
	const char *effective_date;	/* "" while queued */
	const char *expiry_date;	/* "" while queued */
	int64_t frozen_fen, queued_fen;
	const uint8_t *debtor_hash;	/* 16 bytes, or NULL */
	bool active;			/* false once released or spent */
};
/*
 * Read-only: call cb for every freeze record, in a read transaction of
 * the caller's thread. Returns 0 or < 0.
 */
int ck_actions_each_freeze(struct ck_actions *a,
    void (*cb)(void *arg, const struct ck_freeze_view *f), void *arg);

/* Journal and resolver state for /status ("actions":{...}). */
void ck_actions_write_json(const struct ck_actions *a, struct evbuffer *out);

/*
 * Test builds: CK_CRASHPOINT=name[,name] in the environment makes the
 * process SIGKILL itself the first time it passes that point (after
 * CK_CRASHPOINT_SKIP passes, default 0): after_intent_sync, after_send,
 * before_outcome. No-op in release builds.
 */
void ck_crashpoint(const char *name);

#endif
