/*
 * rpc.h: one gRPC call as handlers see it, and the method table.
 *
 * The server (server.c) owns each call. It decodes the request into the
 * call's arena, checks the caller's role, then runs the method's handler.
 * A handler answers exactly once, with ck_call_reply() or ck_call_fail(),
 * at once or later from the event loop. If the call ends first (deadline,
 * client reset, connection closed) the server calls call->on_cancel (when
 * the handler set one) and the handler must not answer after that returns.
 * After a handler answers, the call may be freed at any moment: do not
 * touch it again.
 */
#ifndef CK_RPC_H
#define CK_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "tls.h"

struct event_base;
struct ck_config;
struct ck_call;
struct ck_arena;

typedef void (*ck_method_fn)(struct ck_call *call);

/*
 * Who a call is for: a court's officer now, the re-query scheduler on the
 * enrolling court's behalf (watch.h), a partner broker for its court
 * (federation.h), or the resolver re-sending a pending action. Agencies
 * see it (CallContext.origin, ck_origin_name()), the endpoint pools queue
 * scheduled calls behind interactive ones, and the audit trail records it.
 */
enum ck_origin {
	CK_ORIGIN_INTERACTIVE = 0,
	CK_ORIGIN_SCHEDULED = 1,
	CK_ORIGIN_FORWARDED = 2,
	CK_ORIGIN_RESOLVER = 3,
};
/*
 * A rights check the server runs (ck_server_set_admit) for every method
 * that passed its role check, before anything in the request is examined: first with call->request NULL, before the body is
 * decoded (the method itself, the caller's rate), then again with the
 * decoded request, before the handler validates it (the case's court,
 * the categories and agency touched, the officer's registration).
 * Returns 0, or a gRPC status code with the message in msg.
 */
typedef int (*ck_admit_fn)(const struct ck_call *call, char *msg,
    size_t msglen);

/* Who may call a method: a mask of (1u << enum ck_role); 0 = any peer
 * with a chakong identity. */
#define CK_ACCESS_ANY 0u
#define CK_ACCESS_ROLE(r) (1u << (r))

struct ck_method {
	const char *path;	/* "/chakong.v1.AssetBroker/Query" */
	const ProtobufCMessageDescriptor *input;
	ck_method_fn handler;
	uint32_t access;	/* CK_ACCESS_* */
	int metrics_id;		/* from ck_metrics_method() */
};

/*
 * How a server finds the method for a :path; NULL for unknown. Each
 * program that serves gRPC (chakongd, the agency simulator) has its own.
 */
typedef const struct ck_method *(*ck_method_find_fn)(const char *path,
    size_t len);

struct ck_call {
	/* set by the server, read-only for handlers */
	const struct ck_method *method;
	const struct ck_identity *peer;
	const struct ck_config *cfg;
	struct event_base *base;
	const char *log_id;		/* request id on every log line */
	ProtobufCMessage *request;	/* decoded, lives in the arena */
	struct ck_arena *arena;		/* freed when the call ends */
	uint64_t deadline;		/* ck_mono_usec() when it expires */
	uint64_t started;		/* ck_mono_usec() at arrival */

	/* the audit trail (audit.h): why the call was made (set by whoever
	 * makes a call on someone's behalf), and whether its record is
	 * already written with its journal record (actions.c) */
	enum ck_origin origin;
	bool audit_done;
	const uint8_t *audit_debtor;	/* the debtor's keyed hash when a
					   handler has it (16 bytes, lives
					   as long as the call) */

	/* set by handlers that answer later */
	void (*on_cancel)(struct ck_call *call);
	void *handler_data;

	/*
	 * A call made inside the broker, with no stream (the re-query
	 * scheduler runs Query this way): when set, ck_call_reply() and
	 * ck_call_fail() hand the answer here (reply NULL on failure)
	 * instead of to a client. The caller owns the call and its arena.
	 */
	void (*answer)(struct ck_call *call, int grpc_code, const char *msg,
	    const ProtobufCMessage *reply);
};

/* Answer OK with a reply message (packed into the call's arena). */
void ck_call_reply(struct ck_call *call, const ProtobufCMessage *reply);
/*
 * Answer with a non-OK status. The message names the field and the rule
 * and never repeats a rejected value; it is percent-encoded on the wire.
 */
void ck_call_fail(struct ck_call *call, int grpc_code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Allocate from the call's arena (freed with the call); NULL on failure. */
void *ck_call_alloc(struct ck_call *call, size_t size);
/* A copy of s in the arena; "" when out of memory. */
char *ck_call_strdup(struct ck_call *call, const char *s);

/*
 * chakongd's method table (a ck_method_find_fn): every method it serves.
 * Test-only methods are in it only when built with test hooks.
 */
const struct ck_method *ck_rpc_find(const char *path, size_t len);
/* Register every method with the metrics table; call once at start-up. */
void ck_rpc_init(void);
/* What Health/Check reports: SERVING, or NOT_SERVING while draining. */
void ck_rpc_set_serving(bool on);
/* The adapters and reference keys Query and the actions use (fanout.h);
 * NULL: none configured, Query answers NOT_CONFIGURED. */
struct ck_fanout;
void ck_rpc_set_fanout(const struct ck_fanout *fo);
/* The journal the state-changing RPCs use (actions.h); NULL: they answer
 * UNIMPLEMENTED. */
struct ck_actions;
void ck_rpc_set_actions(struct ck_actions *a);
/* The re-query scheduler and findings (watch.h); NULL: Enroll and co.
 * answer UNIMPLEMENTED after validation. */
struct ck_watch;
void ck_rpc_set_watch(struct ck_watch *w);
/* The access policy AssetBroker calls are checked against (policy.h);
 * NULL denies every one. Borrowed: set it again before it is freed. */
struct ck_policy;
void ck_rpc_set_policy(const struct ck_policy *pol);
/* chakongd's ck_admit_fn: AssetBroker methods against that policy (the
 * method, the rate, the case's court, categories, agency, officer);
 * every other method passes. */
int ck_rpc_admit(const struct ck_call *call, char *msg, size_t msglen);

#endif
