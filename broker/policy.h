/*
 * policy.h: who may do what — the access policy of chakongd (issue 6).
 *
 * Deny by default: a client identity (role:id of its certificate's SAN
 * URI) may call an AssetBroker method only when a [policy.<role>:<id>]
 * section grants it. One section per identity:
 *
 *   [policy.court:440600]
 *   Query = deposit, real-estate  ; a method, and the asset categories it
 *   Freeze = deposit              ; may touch ("*" = all); methods that
 *   Extend = deposit              ; touch none (UpdateClaim, ListFindings,
 *   Release = deposit             ; AckFindings, EndEnrollment) take "*"
 *   courts = 440600               ; whose cases it may act on (court ids or
 *                                 ; "*"); default: its own id only
 *   agencies = *                  ; sources it may reach ("bank:icbc",
 *                                 ; "bank:*", "realestate"); default "*"
 *   rate = 5                      ; calls per second, token bucket; 0 (the
 *   burst = 10                    ; default) = no cap; burst default 2*rate
 *   roster = /etc/chakong/officers-440600.txt  ; officers must be on it
 *
 *   [policy.court:440100]
 *   grant = all                   ; every method on every category
 *   courts = *
 *
 * A roster file holds one officer id per line ('#' starts a comment);
 * with one configured, a request naming an officer not on it is refused
 * (the banks' 报备 rule). Without one, any valid officer id passes.
 *
 * A policy is immutable once loaded; it belongs to its struct ck_config,
 * and SIGHUP swaps in a new config (policy, rosters and limits at once).
 * The token buckets live apart (struct ck_policy_limiter) so a reload
 * keeps how much each identity has used.
 *
 * Checks answer with a gRPC status code (include/chakong/grpc_status.h)
 * and a message naming the right that is missing, never a request value.
 *
 * Where the checks run: chakongd's ck_rpc_admit() (rpc.c) checks every
 * AssetBroker call against the running config's policy, as the identity
 * of the client certificate, before anything in the request is examined.
 * A module acting for someone else checks that subject itself with
 * ck_policy_check() and the running cfg->policy: the federation adapter
 * (a partner broker's request on behalf of its court: role CK_ROLE_COURT,
 * the originating court's id, officer, case and categories; the broker
 * identity itself needs a [policy.broker:<id>] section with the methods
 * and `courts` it may forward for), the re-query scheduler (the enrolling
 * court and officer, each time).
 */
#ifndef CK_POLICY_H
#define CK_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tls.h"

struct ck_policy;
struct ck_policy_limiter;

/*
 * One request as the policy sees it. Every field but role, id and method
 * may be left NULL/0, and is then not checked: a caller checks what it
 * knows. The federation adapter fills in the originating court for a
 * request forwarded on its behalf; the re-query scheduler the enrolling
 * court and officer.
 */
struct ck_policy_subject {
	enum ck_role role;		/* whose rights: CK_ROLE_COURT, ... */
	const char *id;			/* "440600" */
	const char *method;		/* "Query", "Freeze", ... */
	const char *officer_id;		/* checked against the roster */
	const char *case_court;		/* id of the court owning the case */
	uint32_t categories;		/* CK_CATEGORY_BIT mask touched */
	const char *source;		/* the agency source acted on */
};

/*
 * Does the policy allow the subject? Returns 0, or CK_GRPC_PERMISSION_DENIED
 * with msg naming the missing right ("court:440600 has no right to Deduct").
 * A NULL policy allows nothing.
 */
int ck_policy_check(const struct ck_policy *pol,
    const struct ck_policy_subject *s, char *msg, size_t msglen);

/* The categories (CK_CATEGORY_BIT mask) the identity may touch with
 * method; 0 when it has no right to the method. */
uint32_t ck_policy_categories(const struct ck_policy *pol, enum ck_role role,
    const char *id, const char *method);

/* May the identity reach this agency source ("bank:icbc")? */
bool ck_policy_source_allowed(const struct ck_policy *pol, enum ck_role role,
    const char *id, const char *source);

/*
 * Token buckets per identity. take() spends one token for a call at
 * now_usec (the broker clock, so a test can move it): returns 0, or
 * CK_GRPC_RESOURCE_EXHAUSTED with msg when the identity's bucket is
 * empty. Identities without a rate are never limited. Returns
 * CK_GRPC_RESOURCE_EXHAUSTED too when out of memory. Event-loop thread
 * only.
 */
int ck_policy_limiter_new(struct ck_policy_limiter **out);
void ck_policy_limiter_free(struct ck_policy_limiter *lim);	/* NULL-safe */
int ck_policy_limiter_take(struct ck_policy_limiter *lim,
    const struct ck_policy *pol, enum ck_role role, const char *id,
    uint64_t now_usec, char *msg, size_t msglen);

/* ---- building a policy (config.c) -------------------------------------- */

/*
 * One `key = value` of section [policy.<who>] (who is "court:440600"),
 * at `line` of the config. *pol is allocated on first use. Returns 0, or
 * CK_ECONFIG with the reason (without file:line) in err.
 */
int ck_policy_conf_set(struct ck_policy **pol, const char *who,
    const char *key, const char *value, unsigned line, char *err,
    size_t errlen);
/*
 * After the whole file is read: check every court named in `courts` is
 * known (court_known) and read the rosters. Returns 0, or CK_ECONFIG with
 * "cfgfile:line: ..." or "rosterfile:line: ..." in err.
 */
int ck_policy_finish(struct ck_policy *pol, const char *cfgpath,
    bool (*court_known)(const char *id, void *arg), void *arg, char *err,
    size_t errlen);
/* NULL-safe. */
void ck_policy_free(struct ck_policy *pol);

/* How many identities have a policy (for logs and /status). */
size_t ck_policy_count(const struct ck_policy *pol);

#endif
