/*
 * ledger.h: the simulator's durable state in LMDB: what changed on each
 * asset (deposits, freezes, seals, deductions) and the idempotency record
 * of every state-changing call. The population (population.h) is the
 * starting point and is never stored; an asset nobody touched has no
 * record.
 *
 * Bank rules (chakong issue 3, item 2):
 * - A freeze takes at most the available balance (balance minus what is
 *   frozen in force). Less than asked: PARTIAL, and the freeze keeps
 *   capturing later deposits up to its amount.
 * - Freezing an account that earlier freezes (of any case) still hold
 *   queues (轮候) in order of arrival; the part the available balance
 *   covers is in force at once, the rest waits: balance 100, A froze 60,
 *   B asks 70 -> B: 40 in force, 30 queued (QUEUED).
 * - Money that becomes available (a deposit, a release, an expiry) goes to
 *   the live freezes still waiting, in order of arrival. A freeze that gets
 *   its first money takes effect that day (UTC+8) and its period
 *   (duration_days) starts then. The first freeze on an account takes
 *   effect on arrival even with nothing to capture.
 * - A freeze is in force through its expiry date (effective date +
 *   duration_days + extensions) and lapses the day after; an expiry
 *   releases its money to the queue as of that day, whenever the ledger is
 *   next looked at (expiry is evaluated lazily, with the dates it would
 *   have had, so the answer does not depend on when anyone asks).
 * - Extend: the same case, a live freeze that has taken effect, today <=
 *   expiry; new expiry = old expiry + duration_days.
 * - Release: the same case; its money goes to the queue at once.
 * - Deduct: the same case, at most what that freeze holds in force; the
 *   balance and the freeze's amount drop by it; a freeze deducted to zero
 *   is "spent".
 * Registries (seals): the first live seal on an asset is in force; later
 *   seals queue in order of arrival; when the one in force is released or
 *   expires, the first queued one takes effect that day (the day after the
 *   expiry).
 * Maximum durations: bank 366 days, vehicle 731, real estate 1096 (a year,
 * two, three, counting a leap day); per freeze and per extension.
 *
 * Every state-changing call is de-duplicated by (agency scope,
 * CallContext.idempotency_key): the same key with the same arguments
 * returns the stored reply and has no second effect; the same key with
 * other arguments gets REJECTED "idempotency key reused with different
 * arguments" (not stored). Each call commits (MDB default sync) before its
 * reply is returned.
 *
 * Single-threaded: one ledger is used from one thread.
 */
#ifndef SIM_LEDGER_H
#define SIM_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agencysim.pb-c.h"
#include "arena.h"

enum sim_kind {
	SIM_KIND_BANK = 1,
	SIM_KIND_REALESTATE,
	SIM_KIND_VEHICLE,
};

#define SIM_STATE_LIVE	   "live"
#define SIM_STATE_RELEASED "released"
#define SIM_STATE_EXPIRED  "expired"
#define SIM_STATE_SPENT	   "spent"

/* An asset as the population describes it (all borrowed). */
struct sim_asset_ref {
	enum sim_kind kind;
	const char *scope;	  /* bank code; "" for registries */
	const char *asset_id;	  /* account_no, unit_id, vehicle_id */
	const char *subject_id;	  /* the holder */
	const char *currency;	  /* banks: ISO 4217 */
	int64_t base_balance_fen; /* banks: before any change */
};

/* What a state-changing call did, for the counters. */
struct sim_outcome {
	bool replayed; /* answered from the idempotency record */
	bool conflict; /* key reused with other arguments */
	bool effect;   /* changed the ledger */
	bool rejected; /* a new REJECTED reply */
};

struct sim_ledger;

/*
 * Open (creating) the LMDB environment in directory `dir` (created when
 * missing). map_mb: map size in MiB (0: 256). nosync: skip fsync on commit
 * (benchmarks only; a crash may lose acknowledged changes). Returns 0 or
 * a negative code with the reason in err.
 */
int sim_ledger_open(const char *dir, size_t map_mb, bool nosync,
    struct sim_ledger **out, char *err, size_t errlen);
void sim_ledger_close(struct sim_ledger *lg);

/*
 * The asset's record evaluated at `now` (expiries applied in memory, not
 * written), or one made from `ref` when nobody touched it. Strings and
 * the message live in `arena`. Returns 0 or CK_ESTORE/CK_ENOMEM.
 */
int sim_ledger_view(struct sim_ledger *lg, const struct sim_asset_ref *ref,
    int64_t now, struct ck_arena *arena, Chakong__Test__V1__LedgerAsset **out);

/*
 * The agency's view of an asset: balance, available, frozen and the live
 * encumbrances (bank), or the live seals (registries). For banks, `acct`
 * must have account_no etc. filled; its money fields and encumbrances are
 * set here. For registries only *encs and *nencs are set.
 */
int sim_ledger_account(struct sim_ledger *lg, const struct sim_asset_ref *ref,
    int64_t now, struct ck_arena *arena, Chakong__Agency__V1__Account *acct);
int sim_ledger_seals(struct sim_ledger *lg, const struct sim_asset_ref *ref,
    int64_t now, struct ck_arena *arena,
    Chakong__Agency__V1__Encumbrance ***encs, size_t *nencs);

/*
 * State-changing calls. `scope` is the agency the call reached:
 * "bank:<code>", "realestate" or "vehicle" (idempotency keys and
 * encumbrance ids are per scope). `ref` is the asset named by the request
 * when the agency knows it for the request's subject, NULL otherwise (the
 * reply is then REJECTED "no such ..."). The reply is allocated in arena.
 * Returns 0 (the reply says DONE/PARTIAL/QUEUED/REJECTED) or a negative
 * code for a storage failure (no effect, nothing stored).
 */
int sim_ledger_freeze(struct sim_ledger *lg, const char *scope,
    const struct sim_asset_ref *ref,
    const Chakong__Agency__V1__FreezeRequest *req, int64_t now,
    struct ck_arena *arena, Chakong__Agency__V1__FreezeReply **out,
    struct sim_outcome *oc);
int sim_ledger_deduct(struct sim_ledger *lg, const char *scope,
    const Chakong__Agency__V1__DeductRequest *req, int64_t now,
    struct ck_arena *arena, Chakong__Agency__V1__DeductReply **out,
    struct sim_outcome *oc);
int sim_ledger_seal(struct sim_ledger *lg, const char *scope,
    const struct sim_asset_ref *ref,
    const Chakong__Agency__V1__SealRequest *req, int64_t now,
    struct ck_arena *arena, Chakong__Agency__V1__SealReply **out,
    struct sim_outcome *oc);
/* Extend and Release serve banks and registries alike. */
int sim_ledger_extend(struct sim_ledger *lg, const char *scope,
    const Chakong__Agency__V1__ExtendRequest *req, int64_t now,
    struct ck_arena *arena, Chakong__Agency__V1__ExtendReply **out,
    struct sim_outcome *oc);
int sim_ledger_release(struct sim_ledger *lg, const char *scope,
    const Chakong__Agency__V1__ReleaseRequest *req, int64_t now,
    struct ck_arena *arena, Chakong__Agency__V1__ReleaseReply **out,
    struct sim_outcome *oc);

/*
 * Credit (amount > 0) or debit (amount < 0, at most the available
 * balance: CK_ELIMIT otherwise) an account; a credit is captured by the
 * waiting freezes at once. *captured gets how much of it was frozen.
 * Not de-duplicated (a test tool, not an agency call).
 */
int sim_ledger_deposit(struct sim_ledger *lg, const struct sim_asset_ref *ref,
    int64_t amount_fen, int64_t now, int64_t *captured);

/* The longest freeze/seal (and extension) for a kind, in days. */
int32_t sim_max_duration(enum sim_kind kind);

#endif
