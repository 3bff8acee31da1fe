/*
 * chakong/adapter.h: the plugin ABI between chakongd and agency adapters.
 *
 * An adapter maps the broker's requests to one kind of agency (a bank, a
 * registry, a partner broker) and the agency's replies back. Adapters are
 * shared modules, loaded by name from the module directory in the config:
 *
 *   [adapter.bank]              ; section name = instance name
 *   module = bank               ; loads <module_dir>/ck_bank.so and calls
 *                               ; its only export, ck_adapter_bank()
 *   endpoints = icbc, ccb       ; every other key is passed to create()
 *
 * A court's IT staff can add an agency (say, the housing provident fund)
 * by building one module against this header and naming it in the config,
 * without rebuilding the broker. This header never includes generated
 * protobuf headers, so a new proto field cannot break a module built
 * outside the tree; a module speaks to its agency with its own generated
 * code, over channels the broker lends it.
 *
 * Versioning: the loader refuses a module whose ops.abi differs from
 * CK_ADAPTER_ABI, whose ops.size is smaller than the broker's
 * sizeof(struct ck_adapter_ops), or whose ops.name differs from the name in
 * its symbol. Any change to a struct here that is not an append at its end
 * bumps CK_ADAPTER_ABI. Structs the broker passes in carry `size` so a
 * module can tell which appended fields exist.
 *
 * Threads: everything happens on the broker's event-loop thread. Nothing
 * an adapter does may block: no blocking I/O, no sleeping, no DNS.
 *
 * Strings are NUL-terminated UTF-8. Money is int64 fen with an ISO 4217
 * code; legal dates are "YYYY-MM-DD" in UTC+8. A log_id is never NULL
 * ("-" outside a call). Modules link nothing of the broker's: everything
 * they may call is in struct ck_host (status.h's codes are constants;
 * ck_strerror() is the broker's, not theirs).
 *
 * An [adapter.<name>] section may narrow the categories an instance serves
 * with `categories = deposit, real-estate` (names as in ck_category_name:
 * deposit, real-estate, vehicle, household, enterprise): the broker starts
 * the instance only for those; the key is passed to create() too.
 *
 * Conventions for modules (not enforced by the ABI): a module serving one
 * endpoint takes `endpoint = <name>` and names its source after itself
 * unless given `source = <name>` (two instances of one module need
 * distinct sources); `categories` is per module, so a module serving a
 * category chosen by configuration is one module per category.
 */
#ifndef CHAKONG_ADAPTER_H
#define CHAKONG_ADAPTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chakong/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CK_ADAPTER_ABI 1u

struct event_base;

/* One configuration key of the module's [adapter.<name>] section. */
struct ck_kv {
	const char *key;
	const char *value;
};

/* Asset and record categories; the numbers equal chakong.v1.Category. */
enum ck_category {
	CK_CATEGORY_DEPOSIT = 1,
	CK_CATEGORY_REAL_ESTATE = 2,
	CK_CATEGORY_VEHICLE = 3,
	CK_CATEGORY_HOUSEHOLD = 4,
	CK_CATEGORY_ENTERPRISE = 5,
};
#define CK_CATEGORY_BIT(c) (1u << (c))

/* A category's name in configs and logs ("real-estate"), NULL for a
 * number that is no category. One list for the broker and the modules. */
static inline const char *
ck_category_label(int c)
{
	static const char *const names[] = { NULL, "deposit", "real-estate",
		"vehicle", "household", "enterprise" };

	return c >= CK_CATEGORY_DEPOSIT && c <= CK_CATEGORY_ENTERPRISE ?
	    names[c] : NULL;
}

/* What the broker asks of an adapter. */
enum ck_op {
	CK_OP_QUERY = 1,	/* list the subject's assets or records */
	CK_OP_FREEZE = 2,	/* freeze a deposit or seal a property/vehicle */
	CK_OP_EXTEND = 3,
	CK_OP_RELEASE = 4,
	CK_OP_DEDUCT = 5,	/* deposits only */
};
#define CK_OP_BIT(o) (1u << (o))

/* How one source answered a query. */
enum ck_source_status {
	CK_SOURCE_OK = 1,		/* answered; zero assets is an answer */
	CK_SOURCE_NOT_FOUND = 2,	/* the agency does not know the subject */
	CK_SOURCE_TIMEOUT = 3,		/* no answer within the budget */
	CK_SOURCE_UNAVAILABLE = 4,	/* not reached: refused, breaker open */
	CK_SOURCE_ERROR = 5,		/* answered with an error, or garbage */
	CK_SOURCE_DENIED = 6,		/* refused: no right (a partner's
					   policy, federation) */
};

/*
 * Whether a state-changing call may have taken effect. Only a call known
 * not to have been delivered (connect failure, REFUSED_STREAM, GOAWAY below
 * its stream id, refused by a local cap) is NOT_SENT and may be reported
 * failed; any other unanswered call is IN_DOUBT, never "failed".
 */
enum ck_delivery {
	CK_DELIVERY_ANSWERED = 0,	/* the agency answered (any status) */
	CK_DELIVERY_NOT_SENT = 1,
	CK_DELIVERY_IN_DOUBT = 2,
};

enum ck_action_status {
	CK_ACTION_DONE = 1,
	CK_ACTION_PARTIAL = 2,	/* less frozen than asked */
	CK_ACTION_QUEUED = 3,	/* all or part waits behind earlier cases */
	CK_ACTION_REJECTED = 4,	/* the agency refused; see reason */
};

enum ck_encumbrance_kind {
	CK_ENCUMBRANCE_FREEZE = 1,	/* 冻结 */
	CK_ENCUMBRANCE_SEAL = 2,	/* 查封 */
};

/* ---- requests --------------------------------------------------------- */

/*
 * One request to an adapter. Borrowed: valid until start() returns; copy
 * what you need later.
 */
struct ck_agency_call {
	uint32_t size;			/* sizeof(struct ck_agency_call) */
	enum ck_op op;
	const char *log_id;		/* put on every log line for this call */

	/* who asks and why: every agency call carries these */
	const char *broker_id;
	const char *court_id;
	const char *officer_id;
	const char *case_number;	/* normalised, half-width brackets */
	const char *document_number;	/* "" for queries */
	const char *idempotency_key;	/* "" for queries; agencies de-dup by it */
	const char *origin;		/* "interactive", "scheduled", ... */

	/* whose assets: exactly one of resident_id and uscc is non-NULL */
	const char *resident_id;
	const char *uscc;
	const char *name;

	/* CK_OP_QUERY: the categories asked (mask of CK_CATEGORY_BIT) */
	uint32_t categories;

	/* actions: the target, as a query reported it */
	const char *source;		/* "bank:icbc" */
	const char *asset_id;		/* FREEZE: the agency's asset id */
	const char *encumbrance_id;	/* EXTEND, RELEASE, DEDUCT */
	int64_t amount_fen;		/* FREEZE (deposits), DEDUCT */
	const char *currency;
	int32_t duration_days;		/* FREEZE, EXTEND */
	const char *custody_bank;	/* DEDUCT: from the court's config */
	const char *custody_account;

	/*
	 * Time budget for the whole call in microseconds (monotonic). The
	 * broker enforces its own deadline regardless: an adapter that has
	 * not called done() by then is cancelled and its sources reported
	 * TIMEOUT.
	 */
	uint64_t timeout_usec;

	/* appended in ABI 1 (check size): the brokers a forwarded request
	 * passed before this one, originating broker first (federation,
	 * adapters/peer); nvia == 0 for a request a court sent here */
	const char *const *via;
	size_t nvia;
	/*
	 * CK_OP_QUERY: sources (as sources() names them) the module must not
	 * contact, because the caller has no right to reach them;
	 * NULL-terminated, or NULL for none. The broker reports them itself
	 * and drops any result for them. Appended: read it only when
	 * size > offsetof(struct ck_agency_call, skip_sources).
	 */
	const char *const *skip_sources;
};

/* ---- results ---------------------------------------------------------- */

/* A freeze or seal on an asset, by any case, in force or queued. */
struct ck_encumbrance {
	const char *encumbrance_id;
	enum ck_encumbrance_kind kind;
	const char *court_id;
	const char *case_number;
	int64_t frozen_fen;		/* deposits: in force */
	int64_t queued_fen;		/* deposits: waiting */
	int64_t requested_fen;		/* deposits: asked for */
	const char *effective_date;	/* "" while wholly queued */
	const char *expiry_date;
	int32_t queue_position;		/* 0 = in force, 1 = next, ... */
	int32_t duration_days;
};

/*
 * One asset or record. Fields that do not apply to the category are NULL
 * or 0. asset_id is the agency's own id of the asset (account number,
 * property unit id, vehicle id; for household and enterprise records the
 * subject's id); the broker seals it into asset_ref and never shows it.
 */
struct ck_asset {
	enum ck_category category;
	const char *asset_id;

	/* CK_CATEGORY_DEPOSIT */
	const char *bank_code;
	const char *bank_name;
	const char *account_no;		/* the broker masks it for callers */
	const char *account_type;
	const char *branch;
	const char *currency;
	int64_t balance_fen;
	int64_t available_fen;
	int64_t frozen_fen;

	/* CK_CATEGORY_REAL_ESTATE */
	const char *certificate_no;
	const char *address;
	const char *usage;
	int64_t area_cm2;
	int32_t share_percent;

	/* CK_CATEGORY_VEHICLE */
	const char *plate;
	const char *vin;
	const char *make_model;
	const char *registered_on;

	/* CK_CATEGORY_HOUSEHOLD and CK_CATEGORY_ENTERPRISE */
	const char *name;
	const char *sex;
	const char *birth_date;
	const char *registered_address;
	const char *const *members;	/* household members; shareholders */
	size_t nmembers;
	const char *status;		/* enterprise: active, revoked, ... */
	const char *legal_representative;
	int64_t registered_capital_fen;	/* in `currency` */
	const char *established_on;

	const struct ck_encumbrance *encumbrances;
	size_t nencumbrances;
};

/* What one source (one agency endpoint) said. */
struct ck_source_result {
	const char *source;		/* "bank:icbc", "realestate", ... */
	enum ck_category category;
	enum ck_source_status status;
	const char *message;		/* why, for any status but OK */
	uint64_t latency_usec;
	const struct ck_asset *assets;
	size_t nassets;
};

/* What an agency did with an action. */
struct ck_action_result {
	enum ck_action_status status;
	const char *encumbrance_id;	/* FREEZE: the new freeze/seal id */
	int64_t frozen_fen;
	int64_t queued_fen;
	int64_t deducted_fen;
	const char *effective_date;
	const char *expiry_date;
	int32_t queue_position;
	const char *transfer_id;	/* DEDUCT */
	const char *reason;		/* REJECTED */
};

/*
 * An adapter's answer. For CK_OP_QUERY: one ck_source_result per source
 * the adapter asked (each bank endpoint is a source). For actions: `error`
 * is 0 and `action` says what the agency did, or `error` is a
 * ck_source_status (TIMEOUT, UNAVAILABLE, ERROR) with `delivery` saying
 * whether the agency may have acted, and `message` why.
 */
struct ck_result {
	uint32_t size;			/* sizeof(struct ck_result) */
	const struct ck_source_result *sources;
	size_t nsources;
	int error;
	enum ck_delivery delivery;
	const char *message;
	const struct ck_action_result *action;

	/*
	 * Appended in ABI 1 (the broker checks size): NULL, or one entry per
	 * source: the id of the partner broker that answered it (federation,
	 * adapters/peer); NULL or "" = this broker's own agency.
	 */
	const char *const *answered_by;
};

/*
 * Called exactly once per started call, from the event loop: never from
 * inside start() (a synchronous failure is start() returning < 0) and
 * never after cancel() returned. The result and everything it points to
 * belong to the adapter and are valid only during the callback: the broker
 * copies what it keeps.
 */
typedef void (*ck_done_cb)(void *arg, const struct ck_result *res);

/* ---- what the broker lends an adapter -------------------------------- */

/* A pooled mutual-TLS gRPC client to one configured endpoint. */
struct ck_channel;
/* One outbound unary call in flight. */
struct ck_rpc;

/*
 * The answer to an outbound call: the gRPC status (chakong/grpc_status.h)
 * and message, the reply message bytes (valid only during the callback),
 * and whether the agency may have acted. Called exactly once, never from
 * inside rpc_start(), never after rpc_cancel() returned.
 */
typedef void (*ck_rpc_cb)(void *arg, int grpc_status, const char *message,
    const uint8_t *reply, size_t len, enum ck_delivery delivery);

struct ck_host {
	uint32_t abi;			/* CK_ADAPTER_ABI */
	uint32_t size;			/* sizeof(struct ck_host) */
	struct event_base *base;	/* the broker's loop */
	const char *broker_id;

	/* Log a line (prio as syslog: 3 error .. 7 debug); never pass an
	 * identity or account number. */
	void (*log)(int prio, const char *log_id, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));

	/*
	 * The channel to the endpoint configured as [endpoint.<name>]: the
	 * broker owns it (pooled HTTP/2 connections, TLS session resumption,
	 * reconnect with jittered backoff, the agency's certificate checked
	 * against the endpoint's configured identity, rate and concurrency
	 * caps, a circuit breaker). Returns 0, or CK_ENOTFOUND when no such
	 * endpoint is configured. Only from create().
	 */
	int (*channel_open)(const struct ck_host *host, const char *endpoint,
	    struct ck_channel **out);
	/* The endpoint's configured name ("icbc"). */
	const char *(*channel_name)(const struct ck_channel *ch);

	/*
	 * Start a unary call of `path` ("/chakong.agency.v1.Bank/Freeze")
	 * with a serialised request. timeout_usec is capped by the endpoint's
	 * own timeout (0 means the endpoint's timeout). A call the
	 * endpoint's caps or breaker refuse is answered UNAVAILABLE with
	 * CK_DELIVERY_NOT_SENT (through cb, not here). Returns 0, or < 0
	 * (CK_ENOMEM, CK_EINVAL) without calling cb.
	 */
	int (*rpc_start)(struct ck_channel *ch, const char *path,
	    const uint8_t *req, size_t len, uint64_t timeout_usec,
	    const char *log_id, ck_rpc_cb cb, void *arg, struct ck_rpc **out);
	/* Cancel a call: cb is not called after this returns. NULL-safe. */
	void (*rpc_cancel)(struct ck_rpc *rpc);

	/* The broker's wall clock (tests move it): Unix microseconds. */
	uint64_t (*now_usec)(void);

	/*
	 * Mark a started call as background work (origin "scheduled"): when
	 * the endpoint's concurrency cap makes calls wait, interactive ones
	 * go first. Call right after rpc_start().
	 */
	void (*rpc_set_background)(struct ck_rpc *rpc);
};

/* ---- what an adapter exports ----------------------------------------- */

struct ck_adapter_ops {
	uint32_t abi;			/* CK_ADAPTER_ABI */
	uint32_t size;			/* sizeof(struct ck_adapter_ops) */
	const char *name;		/* "bank": must match the symbol */
	uint32_t categories;		/* CK_CATEGORY_BIT mask it serves */
	uint32_t ops;			/* CK_OP_BIT mask it supports */

	/*
	 * Make an instance from its config section (every key but `module`).
	 * Opens its channels here. On error returns < 0 with a message in
	 * err naming the key; the broker refuses to start.
	 */
	int (*create)(const struct ck_host *host, const struct ck_kv *conf,
	    size_t nconf, void **self, char *err, size_t errlen);
	/* Called after every call has finished or been cancelled. */
	void (*destroy)(void *self);

	/*
	 * The sources a query may answer for, in order ("bank:icbc", ...):
	 * writes at most max names (pointers owned by the adapter, valid
	 * until destroy) and returns how many there are. The broker reports
	 * TIMEOUT for each one a late adapter has not answered.
	 */
	size_t (*sources)(void *self, const char **names, size_t max);

	/*
	 * Start a call. On success returns 0, sets *handle and later calls
	 * done exactly once. On a synchronous failure returns < 0 and never
	 * calls done.
	 */
	int (*start)(void *self, const struct ck_agency_call *call,
	    ck_done_cb done, void *arg, void **handle);
	/*
	 * Stop a started call: done is not called after this returns, and
	 * the adapter cancels its outbound calls. A handle is dead once done
	 * has returned; the broker never cancels a finished call, and a
	 * cancel from inside done is a no-op.
	 */
	void (*cancel)(void *handle);
};

/* The one symbol a module exports: const struct ck_adapter_ops *
 * ck_adapter_<name>(void). */
typedef const struct ck_adapter_ops *(*ck_adapter_entry_fn)(void);

#define CK_ADAPTER_EXPORT __attribute__((visibility("default")))

#ifdef __cplusplus
}
#endif
#endif
