/*
 * watch.h: terminated cases under watch (终结本次执行程序 → periodic
 * re-query), findings, and the freeze-expiry watch.
 *
 * An enrollment is one debtor of one case of one court. Its due dates are
 * the termination ruling's date plus period, 2 * period, ... span months
 * ([watch] period_months, span_months). state.mdb (the actions' environment,
 * same writer thread) holds, besides the journal:
 *
 *   enrollments     id -> EnrollmentRecord
 *   enroll_by_case  court "\0" case "\0" id -> ""
 *   due             be64(next due, Unix s) id -> ""   (the schedule)
 *   findings        court "\0" be64(seq) -> FindingRecord
 *   watch_requests  caller "\0" request_id -> WatchRequestRecord
 *   expiring        source "\0" encumbrance "\0" expiry date -> ""
 *   watch_meta      "counters" -> WatchCounters
 *
 * One enrollment's life:
 *
 *   Enroll --> ACTIVE, due now (the baseline query: what the debtor has
 *              when the watch begins; no finding)
 *     ACTIVE --each due date: re-query, RESULT (+ FOUND) findings--> ACTIVE
 *     ACTIVE --the last due date run--> COMPLETED
 *     ACTIVE --EndEnrollment--> RESTORED (执恢 case number) | CLOSED
 *
 * The scheduler sleeps until the first key of `due` (never scanning the
 * enrollments), starts at most [watch] rate re-queries a second and
 * max_concurrent at once, only inside the daily window, as scheduled
 * (background) calls that the endpoint pools queue behind interactive
 * ones. A due date missed while the daemon was down is caught up once: the
 * run answers the latest due date passed and counts the earlier ones as
 * skipped.
 */
#ifndef CK_WATCH_H
#define CK_WATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "broker.pb-c.h"
#include "fanout.h"
#include "rpc.h"
#include "validate.h"

struct event_base;
struct evbuffer;
struct ck_actions;
struct ck_config;
struct ck_refkeys;
struct ck_watch;

/* The watch's databases inside state.mdb, in this order, opened by
 * actions.c from index CK_ACTIONS_DB_OTHERS. */
#define CK_WATCH_DBNAMES                                                  \
	"enrollments", "enroll_by_case", "due", "findings",               \
	    "watch_requests", "expiring", "watch_meta"

/*
 * Start the scheduler and the expiry watch over the actions' state.mdb.
 * fo runs the re-queries. Returns 0 or < 0 with a message in err.
 */
int ck_watch_open(struct event_base *base, struct ck_config *cfg,
    struct ck_actions *actions, const struct ck_fanout *fo,
    const struct ck_refkeys *keys, struct ck_watch **out, char *err,
    size_t errlen);
/* Cancels re-queries in flight (their due dates stay due: they run again
 * at the next start) and lets queued writes finish. NULL-safe; call
 * before ck_actions_close(). */
void ck_watch_close(struct ck_watch *w);
/* New settings (pace, window, thresholds, courts) for what runs next. */
void ck_watch_reload(struct ck_watch *w, struct ck_config *cfg);

/* The handlers, after rpc.c validated the request. */
void ck_watch_enroll(struct ck_watch *w, struct ck_call *call,
    const Chakong__V1__EnrollRequest *req, const struct ck_case *kase,
    const struct ck_date *termination);
void ck_watch_end(struct ck_watch *w, struct ck_call *call,
    const Chakong__V1__EndEnrollmentRequest *req, const struct ck_case *kase,
    const char *new_case_number);
void ck_watch_list(struct ck_watch *w, struct ck_call *call,
    const Chakong__V1__ListFindingsRequest *req);
void ck_watch_ack(struct ck_watch *w, struct ck_call *call,
    const Chakong__V1__AckFindingsRequest *req);

/*
 * The one place a watch action is checked against policy: at Enroll and
 * before every scheduled re-query (origin tells which). Both need the
 * court still configured and still owning the case number's prefix. A
 * scheduled re-query is also judged by the access policy in force
 * (policy.h) as the enrolling court and officer, each time: the Query
 * right, its case's court, the officer's roster; *categories (a
 * CK_CATEGORY_BIT mask) is narrowed to the categories the court may still
 * Query, and none left is a refusal. (At Enroll the caller's own rights
 * were checked by ck_rpc_admit(); categories is then left alone and may be
 * NULL.) Returns true, or false with a rule text (no personal data) in why.
 */
bool ck_watch_policy_check(const struct ck_config *cfg, const char *court_id,
    const char *officer_id, const char *case_number, enum ck_origin origin,
    uint32_t *categories, char *why, size_t whylen);

/* For /status ("watch":{...}): enrollments active and due today, unread
 * findings, freezes expiring within 7 days, scheduler counters. */
void ck_watch_write_json(struct ck_watch *w, struct evbuffer *out);

#endif
