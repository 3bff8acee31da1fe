/*
 * map.c: mapping shared by every adapter (see map.h). Pure: no I/O.
 */
#include <stdio.h>
#include <stddef.h>
#include <string.h>

#include "map.h"

const char ck_ad_enomem_msg[] = "adapter out of memory";

/* An agency's grpc-message is shown to the court; keep it bounded. */
#define MAX_AGENCY_MSG 400 /* an agency's text, cut: it is not ours */

static bool
nonempty(const char *s)
{
	return s != NULL && s[0] != '\0';
}

bool
ck_ad_subject_ok(const struct ck_agency_call *call)
{
	return nonempty(call->resident_id) != nonempty(call->uscc);
}

bool
ck_ad_source_skipped(const struct ck_agency_call *call, const char *source)
{
	if (call->size <= offsetof(struct ck_agency_call, skip_sources) ||
	    call->skip_sources == NULL)
		return false;
	for (const char *const *s = call->skip_sources; *s != NULL; s++)
		if (strcmp(*s, source) == 0)
			return true;
	return false;
}

void
ck_ad_fill_context(const struct ck_agency_call *call,
    Chakong__Agency__V1__CallContext *ctx, Chakong__Agency__V1__Subject *subj)
{
	chakong__agency__v1__call_context__init(ctx);
	ctx->broker_id = ck_ad_s(call->broker_id);
	ctx->court_id = ck_ad_s(call->court_id);
	ctx->officer_id = ck_ad_s(call->officer_id);
	ctx->case_number = ck_ad_s(call->case_number);
	ctx->document_number = ck_ad_s(call->document_number);
	ctx->idempotency_key = ck_ad_s(call->idempotency_key);
	ctx->origin = ck_ad_s(call->origin);

	chakong__agency__v1__subject__init(subj);
	if (nonempty(call->resident_id)) {
		subj->id_case = CHAKONG__AGENCY__V1__SUBJECT__ID_RESIDENT_ID;
		subj->resident_id = ck_ad_s(call->resident_id);
	} else if (nonempty(call->uscc)) {
		subj->id_case = CHAKONG__AGENCY__V1__SUBJECT__ID_USCC;
		subj->uscc = ck_ad_s(call->uscc);
	}
	subj->name = ck_ad_s(call->name);
}

bool
ck_ad_action_ok(const struct ck_agency_call *call)
{
	return ck_ad_subject_ok(call) && nonempty(call->idempotency_key) &&
	    nonempty(call->case_number) && nonempty(call->court_id);
}

int
ck_ad_pack(struct ck_ad_arena *a, const ProtobufCMessage *m, uint8_t **out,
    size_t *len)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = ck_ad_arena_alloc(a, n);

	if (buf == NULL)
		return CK_ENOMEM;
	*len = protobuf_c_message_pack(m, buf);
	*out = buf;
	return 0;
}

int
ck_ad_pack_query(struct ck_ad_arena *a, const struct ck_agency_call *call,
    ProtobufCMessage *m, Chakong__Agency__V1__CallContext **ctx,
    Chakong__Agency__V1__Subject **subject, uint8_t **req, size_t *len)
{
	Chakong__Agency__V1__CallContext c;
	Chakong__Agency__V1__Subject subj;
	int rc;

	if (!ck_ad_subject_ok(call))
		return CK_EINVAL;
	ck_ad_fill_context(call, &c, &subj);
	*ctx = &c;
	*subject = &subj;
	rc = ck_ad_pack(a, m, req, len);
	/* c and subj die with this frame */
	*ctx = NULL;
	*subject = NULL;
	return rc;
}

static const char *
agency_message(
    struct ck_ad_arena *a, const char *what, const struct ck_ad_reply *r)
{
	const char *m;

	if (!nonempty(r->message))
		m = ck_ad_arena_printf(
		    a, "%s (gRPC status %d)", what, r->grpc_status);
	else
		m = ck_ad_arena_printf(a, "%s (gRPC status %d): %.*s", what,
		    r->grpc_status, MAX_AGENCY_MSG, r->message);
	return m != NULL ? m : what;
}

enum ck_source_status
ck_ad_source_status(
    struct ck_ad_arena *a, const struct ck_ad_reply *r, const char **message)
{
	*message = NULL;
	if (r->delivery == CK_DELIVERY_NOT_SENT) {
		*message = agency_message(a, "not sent", r);
		return CK_SOURCE_UNAVAILABLE;
	}
	switch (r->grpc_status) {
	case CK_GRPC_OK:
		return CK_SOURCE_OK;
	case CK_GRPC_DEADLINE_EXCEEDED:
		*message = agency_message(a, "no answer within the budget", r);
		return CK_SOURCE_TIMEOUT;
	case CK_GRPC_UNAVAILABLE:
		*message = agency_message(a, "agency unreachable", r);
		return CK_SOURCE_UNAVAILABLE;
	default:
		*message = agency_message(a, "agency error", r);
		return CK_SOURCE_ERROR;
	}
}

void
ck_ad_source_set(struct ck_source_result *sr, enum ck_source_status status,
    const char *message)
{
	sr->status = status;
	sr->message = message;
	sr->assets = NULL;
	sr->nassets = 0;
}

void *
ck_ad_unpack_query(struct ck_ad_arena *a, const struct ck_ad_reply *r,
    const ProtobufCMessageDescriptor *desc, struct ck_source_result *out)
{
	ProtobufCAllocator pa;
	ProtobufCMessage *m;
	enum ck_source_status st;
	const char *msg;

	st = ck_ad_source_status(a, r, &msg);
	if (st != CK_SOURCE_OK) {
		ck_ad_source_set(out, st, msg);
		return NULL;
	}
	ck_ad_arena_allocator(a, &pa);
	m = protobuf_c_message_unpack(desc, &pa, r->len, r->data);
	if (m == NULL)
		ck_ad_source_set(
		    out, CK_SOURCE_ERROR, "agency reply does not decode");
	return m;
}

void
ck_ad_source_assets(struct ck_ad_arena *a, const void *reply, size_t n,
    ck_ad_asset_fn one, struct ck_source_result *out)
{
	struct ck_asset *as;

	ck_ad_source_set(out, CK_SOURCE_OK, NULL);
	if (n == 0)
		return;
	as = ck_ad_arena_calloc(a, n, sizeof(*as));
	if (as == NULL)
		goto enomem;
	for (size_t i = 0; i < n; i++)
		if (one(a, reply, i, &as[i]) < 0)
			goto enomem;
	out->assets = as;
	out->nassets = n;
	return;
enomem:
	ck_ad_source_set(out, CK_SOURCE_ERROR, ck_ad_enomem_msg);
}

struct ck_asset *
ck_ad_source_record(struct ck_ad_arena *a, struct ck_source_result *out)
{
	struct ck_asset *as = ck_ad_arena_alloc(a, sizeof(*as));

	if (as == NULL) {
		ck_ad_source_set(out, CK_SOURCE_ERROR, ck_ad_enomem_msg);
		return NULL;
	}
	ck_ad_source_set(out, CK_SOURCE_OK, NULL);
	out->assets = as;
	out->nassets = 1;
	return as;
}

/* gRPC codes by which an agency says it did not act on the request. */
static bool
refusal(int code)
{
	switch (code) {
	case CK_GRPC_INVALID_ARGUMENT:
	case CK_GRPC_NOT_FOUND:
	case CK_GRPC_ALREADY_EXISTS:
	case CK_GRPC_PERMISSION_DENIED:
	case CK_GRPC_FAILED_PRECONDITION:
	case CK_GRPC_OUT_OF_RANGE:
	case CK_GRPC_UNIMPLEMENTED:
	case CK_GRPC_UNAUTHENTICATED:
		return true;
	default:
		return false;
	}
}

bool
ck_ad_action_error(
    struct ck_ad_arena *a, const struct ck_ad_reply *r, struct ck_result *res)
{
	const char *msg;
	enum ck_source_status st = ck_ad_source_status(a, r, &msg);

	if (st == CK_SOURCE_OK)
		return true;
	res->error = (int)st;
	/* a transport that cannot tell says IN_DOUBT, never ANSWERED */
	res->delivery = r->delivery;
	/*
	 * An agency's error answer is final only when it says it refused
	 * the request as such. UNKNOWN, INTERNAL, DATA_LOSS, ABORTED and
	 * the like may come after the change was applied: the outcome is
	 * unknown, to be asked again under the same idempotency key.
	 */
	if (res->delivery == CK_DELIVERY_ANSWERED && !refusal(r->grpc_status))
		res->delivery = CK_DELIVERY_IN_DOUBT;
	res->message = msg;
	res->action = NULL;
	return false;
}

void
ck_ad_action_garbage(struct ck_result *res, const char *message)
{
	res->error = CK_SOURCE_ERROR;
	res->delivery = CK_DELIVERY_IN_DOUBT;
	res->message = message;
	res->action = NULL;
}

bool
ck_ad_action_status(int agency, enum ck_action_status *out)
{
	switch (agency) {
	case CHAKONG__AGENCY__V1__ACTION_STATUS__ACTION_DONE:
		*out = CK_ACTION_DONE;
		return true;
	case CHAKONG__AGENCY__V1__ACTION_STATUS__ACTION_PARTIAL:
		*out = CK_ACTION_PARTIAL;
		return true;
	case CHAKONG__AGENCY__V1__ACTION_STATUS__ACTION_QUEUED:
		*out = CK_ACTION_QUEUED;
		return true;
	case CHAKONG__AGENCY__V1__ACTION_STATUS__ACTION_REJECTED:
		*out = CK_ACTION_REJECTED;
		return true;
	default:
		return false;
	}
}

int
ck_ad_map_encumbrances(struct ck_ad_arena *a,
    Chakong__Agency__V1__Encumbrance *const *in, size_t n,
    enum ck_encumbrance_kind kind_default, const struct ck_encumbrance **out,
    size_t *nout)
{
	struct ck_encumbrance *e;

	*out = NULL;
	*nout = 0;
	if (n == 0)
		return 0;
	e = ck_ad_arena_calloc(a, n, sizeof(*e));
	if (e == NULL)
		return CK_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const Chakong__Agency__V1__Encumbrance *x = in[i];

		e[i].encumbrance_id = x->encumbrance_id;
		switch (x->kind) {
		case CHAKONG__AGENCY__V1__ENCUMBRANCE_KIND__ENCUMBRANCE_FREEZE:
			e[i].kind = CK_ENCUMBRANCE_FREEZE;
			break;
		case CHAKONG__AGENCY__V1__ENCUMBRANCE_KIND__ENCUMBRANCE_SEAL:
			e[i].kind = CK_ENCUMBRANCE_SEAL;
			break;
		default:
			e[i].kind = kind_default;
			break;
		}
		e[i].court_id = x->court_id;
		e[i].case_number = x->case_number;
		e[i].frozen_fen = x->frozen_fen;
		e[i].queued_fen = x->queued_fen;
		e[i].requested_fen = x->requested_fen;
		e[i].effective_date = x->effective_date;
		e[i].expiry_date = x->expiry_date;
		e[i].queue_position = x->queue_position;
		e[i].duration_days = x->duration_days;
	}
	*out = e;
	*nout = n;
	return 0;
}

/* ---- actions ------------------------------------------------------------ */

int
ck_ad_pack_common_action(struct ck_ad_arena *a,
    const struct ck_agency_call *call, Chakong__Agency__V1__CallContext *ctx,
    Chakong__Agency__V1__Subject *subj, uint8_t **req, size_t *len)
{
	switch (call->op) {
	case CK_OP_EXTEND: {
		Chakong__Agency__V1__ExtendRequest m;

		if (!nonempty(call->encumbrance_id) || call->duration_days <= 0)
			return CK_EINVAL;
		chakong__agency__v1__extend_request__init(&m);
		m.ctx = ctx;
		m.subject = subj;
		m.encumbrance_id = ck_ad_s(call->encumbrance_id);
		m.duration_days = call->duration_days;
		return ck_ad_pack(a, &m.base, req, len);
	}
	case CK_OP_RELEASE: {
		Chakong__Agency__V1__ReleaseRequest m;

		if (!nonempty(call->encumbrance_id))
			return CK_EINVAL;
		chakong__agency__v1__release_request__init(&m);
		m.ctx = ctx;
		m.subject = subj;
		m.encumbrance_id = ck_ad_s(call->encumbrance_id);
		return ck_ad_pack(a, &m.base, req, len);
	}
	default:
		return CK_EUNSUPP;
	}
}

bool
ck_ad_decode_common_action(enum ck_op op, ProtobufCAllocator *pa,
    const struct ck_ad_reply *r, struct ck_action_result *act, int *status)
{
	switch (op) {
	case CK_OP_EXTEND: {
		Chakong__Agency__V1__ExtendReply *m =
		    chakong__agency__v1__extend_reply__unpack(
			pa, r->len, r->data);

		if (m == NULL)
			return false;
		*status = m->status;
		act->expiry_date = m->expiry_date;
		act->reason = m->reason;
		return true;
	}
	case CK_OP_RELEASE: {
		Chakong__Agency__V1__ReleaseReply *m =
		    chakong__agency__v1__release_reply__unpack(
			pa, r->len, r->data);

		if (m == NULL)
			return false;
		*status = m->status;
		act->reason = m->reason;
		return true;
	}
	default:
		return false;
	}
}

void
ck_ad_map_action(struct ck_ad_arena *a, enum ck_op op,
    const struct ck_ad_reply *r, struct ck_result *res,
    ck_ad_action_decode_fn decode)
{
	ProtobufCAllocator pa;
	struct ck_action_result *act;
	int status;

	if (!ck_ad_action_error(a, r, res))
		return;
	act = ck_ad_arena_alloc(a, sizeof(*act));
	if (act == NULL) {
		ck_ad_action_garbage(res, ck_ad_enomem_msg);
		return;
	}
	ck_ad_arena_allocator(a, &pa);
	if (!decode(op, &pa, r, act, &status)) {
		ck_ad_action_garbage(res, "agency reply does not decode");
		return;
	}
	if (!ck_ad_action_status(status, &act->status)) {
		ck_ad_action_garbage(res, "agency reply has no valid status");
		return;
	}
	res->error = 0;
	res->delivery = CK_DELIVERY_ANSWERED;
	res->message = NULL;
	res->action = act;
}

/* ---- registry actions -------------------------------------------------- */

static const char *
method_path(struct ck_ad_arena *a, const char *service, const char *method)
{
	return ck_ad_arena_printf(a, "/%s/%s", service, method);
}

int
ck_ad_registry_pack_action(struct ck_ad_arena *a, const char *service,
    const struct ck_agency_call *call, const char **path, uint8_t **req,
    size_t *len)
{
	Chakong__Agency__V1__CallContext ctx;
	Chakong__Agency__V1__Subject subj;
	const char *method;
	int rc;

	if (!ck_ad_action_ok(call))
		return CK_EINVAL;
	ck_ad_fill_context(call, &ctx, &subj);
	if (call->op == CK_OP_FREEZE) {
		Chakong__Agency__V1__SealRequest m;

		if (!nonempty(call->asset_id) || call->duration_days <= 0)
			return CK_EINVAL;
		chakong__agency__v1__seal_request__init(&m);
		m.ctx = &ctx;
		m.subject = &subj;
		m.asset_id = ck_ad_s(call->asset_id);
		m.duration_days = call->duration_days;
		method = "Seal";
		rc = ck_ad_pack(a, &m.base, req, len);
	} else {
		method = call->op == CK_OP_EXTEND ? "Extend" : "Release";
		rc = ck_ad_pack_common_action(a, call, &ctx, &subj, req, len);
	}
	if (rc < 0)
		return rc;
	*path = method_path(a, service, method);
	return *path != NULL ? 0 : CK_ENOMEM;
}

/* FREEZE is a Seal; EXTEND and RELEASE as every agency's. */
static bool
registry_decode(enum ck_op op, ProtobufCAllocator *pa,
    const struct ck_ad_reply *r, struct ck_action_result *act, int *status)
{
	Chakong__Agency__V1__SealReply *m;

	if (op != CK_OP_FREEZE)
		return ck_ad_decode_common_action(op, pa, r, act, status);
	m = chakong__agency__v1__seal_reply__unpack(pa, r->len, r->data);
	if (m == NULL)
		return false;
	*status = m->status;
	act->encumbrance_id = m->seal_id;
	act->effective_date = m->effective_date;
	act->expiry_date = m->expiry_date;
	act->queue_position = m->queue_position;
	act->reason = m->reason;
	return true;
}

void
ck_ad_registry_map_action(struct ck_ad_arena *a, enum ck_op op,
    const struct ck_ad_reply *r, struct ck_result *res)
{
	ck_ad_map_action(a, op, r, res, registry_decode);
}

/* ---- configuration ----------------------------------------------------- */

const char *
ck_ad_conf_get(const struct ck_kv *conf, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (conf[i].key != NULL && strcmp(conf[i].key, key) == 0)
			return conf[i].value;
	return NULL;
}

int
ck_ad_conf_check(const struct ck_kv *conf, size_t n, const char *const *allowed,
    char *err, size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		const char *const *k;

		/* the broker's own key (adapter.h): it narrows the instance */
		if (conf[i].key != NULL && strcmp(conf[i].key, "categories") == 0)
			continue;
		for (k = allowed; *k != NULL; k++)
			if (conf[i].key != NULL && strcmp(conf[i].key, *k) == 0)
				break;
		if (*k == NULL) {
			snprintf(err, errlen, "unknown key \"%s\"",
			    conf[i].key != NULL ? conf[i].key : "");
			return CK_ECONFIG;
		}
	}
	return 0;
}

bool
ck_ad_name_ok(const char *s)
{
	size_t n = 0;

	if (s == NULL)
		return false;
	for (; s[n] != '\0'; n++) {
		char c = s[n];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			c == '_' || c == '-' || c == '.' || c == ':'))
			return false;
	}
	return n >= 1 && n <= 63;
}
