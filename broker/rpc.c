/*
 * rpc.c: the method table and the handlers of chakong.v1.AssetBroker,
 * grpc.health.v1.Health and (test builds only) chakong.test.v1.Testing.
 *
 * Every AssetBroker handler first validates the whole request (check.c)
 * and answers INVALID_ARGUMENT naming the first bad field. Query then
 * answers one SourceResult per asked category; the agencies issue gives it
 * adapters. The state-changing RPCs answer UNIMPLEMENTED after validation
 * until the actions issue lands.
 */
#include "rpc.h"

#include <stdio.h>
#include <string.h>

#include <event2/event.h>

#include "broker.pb-c.h"
#include "actions.h"
#include "cache_admin.h"
#include "check.h"
#include "clock.h"
#include "config.h"
#include "fanout.h"
#include "federation.h"
#include "grpc_frame.h"
#include "health.pb-c.h"
#include "log.h"
#include "metrics.h"
#include "policy.h"
#include "ref.h"
#include "testing.h"
#include "util.h"
#include "watch.h"

#define INVALID(call, chk) \
	ck_call_fail((call), CK_GRPC_INVALID_ARGUMENT, "%s", (chk)->msg)

static bool serving = true;
static const struct ck_fanout *fanout;
static struct ck_actions *actions;
static struct ck_watch *watch;

void
ck_rpc_set_watch(struct ck_watch *w)
{
	watch = w;
}

static const struct ck_policy *policy;
static struct ck_policy_limiter *limiter;

static bool
policy_source_ok(const char *source, const void *arg)
{
	const struct ck_identity *peer = arg;

	return ck_policy_source_allowed(policy, peer->role, peer->id, source);
}

void
ck_rpc_set_policy(const struct ck_policy *pol)
{
	policy = pol;
	if (pol == NULL) {
		ck_policy_limiter_free(limiter);
		limiter = NULL;
	}
}

void
ck_rpc_set_actions(struct ck_actions *a)
{
	actions = a;
}

void
ck_rpc_set_serving(bool on)
{
	serving = on;
}

void
ck_rpc_set_fanout(const struct ck_fanout *fo)
{
	fanout = fo;
}

static const char *
debtor_id(const Chakong__V1__Debtor *d)
{
	return d->id_case == CHAKONG__V1__DEBTOR__ID_RESIDENT_ID ?
	    d->resident_id : d->uscc;
}

/*
 * Open a sealed reference and check it belongs to this debtor and court
 * and is fresh; on failure the message names the field and the rule.
 */
static bool
check_ref(struct ck_call *call, struct ck_check *chk, const char *field,
    const ProtobufCBinaryData *bytes, uint8_t type,
    const Chakong__V1__Debtor *d, struct ck_ref *out)
{
	const char *why = NULL;

	if (fanout == NULL || fanout->refkeys == NULL) {
		snprintf(chk->msg, sizeof(chk->msg), "%s: this broker has no "
		    "reference key configured", field);
		return false;
	}
	if (ck_ref_open(fanout->refkeys, bytes->data, bytes->len, out) != 0)
		why = "not a reference this broker issued (forged, altered or "
		    "foreign)";
	else if (ck_ref_check(fanout->refkeys, out, type, debtor_id(d),
	    call->peer->id, ck_clock_now(), &why) == 0)
		return true;
	snprintf(chk->msg, sizeof(chk->msg), "%s: %s", field, why);
	return false;
}

/* ---- AssetBroker ------------------------------------------------------ */

static void
on_query(struct ck_call *call)
{
	const Chakong__V1__QueryRequest *req =
	    (const Chakong__V1__QueryRequest *)call->request;
	static const Chakong__V1__Category all[] = {
		CHAKONG__V1__CATEGORY__CATEGORY_DEPOSIT,
		CHAKONG__V1__CATEGORY__CATEGORY_REAL_ESTATE,
		CHAKONG__V1__CATEGORY__CATEGORY_VEHICLE,
		CHAKONG__V1__CATEGORY__CATEGORY_HOUSEHOLD,
		CHAKONG__V1__CATEGORY__CATEGORY_ENTERPRISE,
	};
	Chakong__V1__QueryReply reply = CHAKONG__V1__QUERY_REPLY__INIT;
	const Chakong__V1__Category *cats = req->categories;
	size_t ncats = req->n_categories;
	struct ck_check chk;
	struct ck_case kase;
	const char *court, *court_id = call->peer->id;
	struct ck_fanout_query fq = { .court_id = call->peer->id };
	bool forwarded;
	int st;

	/* rights first: a partner broker's on-behalf fields (federation.c) */
	st = ck_fed_query_rights(call, req, &forwarded, chk.msg,
	    sizeof(chk.msg));
	if (forwarded)		/* audited as such, refused or not */
		call->origin = CK_ORIGIN_FORWARDED;
	if (st != CK_GRPC_OK) {
		ck_call_fail(call, st, "%s", chk.msg);
		return;
	}
	ck_check_init(&chk, call->cfg);
	if (!ck_check_case(&chk, "case", req->case_, &kase, &court) ||
	    !ck_check_debtor(&chk, "debtor", req->debtor) ||
	    !ck_check_categories(&chk, "categories", req->categories,
	    req->n_categories) ||
	    !ck_check_request_id(&chk, "request_id", req->request_id, false)) {
		INVALID(call, &chk);
		return;
	}
	if (req->max_age_s < 0) {
		ck_call_fail(call, CK_GRPC_INVALID_ARGUMENT,
		    "max_age_s: must not be negative");
		return;
	}
	if (forwarded && (st = ck_fed_query_accept(call, req, &kase, court,
	    &fq, chk.msg, sizeof(chk.msg))) != CK_GRPC_OK) {
		ck_call_fail(call, st, "%s", chk.msg);
		return;
	}
	court_id = fq.court_id;
	if (ncats == 0) {
		cats = all;
		ncats = CK_ARRAY_SIZE(all);
	}
	/* admit() refused explicit categories without the right; implicit
	 * ones (an empty list) the caller may not see answer SOURCE_DENIED */
	struct ck_identity *as = ck_call_alloc(call, sizeof(*as));

	if (as == NULL)
		goto nomem;
	*as = *call->peer;
	if (forwarded) {	/* the originating court's rights, not the peer's */
		as->role = CK_ROLE_COURT;
		ck_strlcpy(as->id, fq.court_id, sizeof(as->id));
	}
	uint32_t allowed = ck_policy_categories(policy, as->role, as->id,
	    "Query");
	log_info(call->log_id, "query case=%s court=%s officer=%s "
	    "categories=%zu request_id=%s%s%s", kase.norm, court_id,
	    req->case_->officer_id, ncats,
	    req->request_id[0] ? req->request_id : "-",
	    forwarded ? " origin=forwarded by=" : "",
	    forwarded ? call->peer->name : "");
	if (fanout != NULL) {
		fq.officer_id = req->case_->officer_id;
		fq.case_number = ck_call_strdup(call, kase.norm);
		fq.max_age_s = req->max_age_s;
		fq.name = req->debtor->name;
		fq.categories = ck_category_mask((const int *)cats, ncats);
		fq.denied = fq.categories & ~allowed;
		fq.categories &= allowed;
		fq.source_ok = policy_source_ok;
		fq.source_arg = as;
		if (req->debtor->id_case == CHAKONG__V1__DEBTOR__ID_RESIDENT_ID)
			fq.resident_id = req->debtor->resident_id;
		else
			fq.uscc = req->debtor->uscc;
		ck_fanout_query(fanout, call, &fq);
		return;
	}
	reply.n_sources = ncats;
	reply.sources = ck_call_alloc(call, ncats * sizeof(*reply.sources));
	if (reply.sources == NULL)
		goto nomem;
	for (size_t i = 0; i < ncats; i++) {
		Chakong__V1__SourceResult *r = ck_call_alloc(call, sizeof(*r));

		if (r == NULL)
			goto nomem;
		chakong__v1__source_result__init(r);
		r->source = (char *)ck_category_name(cats[i]);
		r->category = cats[i];
		r->status = CHAKONG__V1__SOURCE_STATUS__SOURCE_NOT_CONFIGURED;
		r->message = "no adapter is configured for this category";
		if (!(allowed & CK_CATEGORY_BIT(cats[i]))) {
			r->status = CHAKONG__V1__SOURCE_STATUS__SOURCE_DENIED;
			r->message = "the caller has no right to query this "
			    "category";
		}
		reply.sources[i] = r;
	}
	reply.query_id = (char *)call->log_id;
	ck_call_reply(call, &reply.base);
	return;
nomem:
	ck_call_fail(call, CK_GRPC_RESOURCE_EXHAUSTED, "server out of memory");
}

static void
not_yet(struct ck_call *call, const char *what)
{
	ck_call_fail(call, CK_GRPC_UNIMPLEMENTED, "%s is not available in "
	    "this version of chakongd (the request was valid)", what);
}

/* Fields common to Freeze, Extend, Release and Deduct. */
static bool
check_action(struct ck_check *chk, const char *request_id,
    const Chakong__V1__CaseRef *c, const Chakong__V1__Debtor *d,
    const char *doc, struct ck_case *kase)
{
	const char *court;

	return ck_check_request_id(chk, "request_id", request_id, true) &&
	    ck_check_case(chk, "case", c, kase, &court) &&
	    ck_check_debtor(chk, "debtor", d) &&
	    ck_check_document(chk, "document_number", doc, kase);
}

/* check_action, then open the sealed reference the request carries. */
static bool
check_ref_action(struct ck_call *call, struct ck_check *chk,
    const char *request_id, const Chakong__V1__CaseRef *c,
    const Chakong__V1__Debtor *d, const char *doc, const char *field,
    const ProtobufCBinaryData *bytes, uint8_t type, struct ck_case *kase,
    struct ck_ref *ref)
{
	return check_action(chk, request_id, c, d, doc, kase) &&
	    ck_check_ref(chk, field, bytes) &&
	    check_ref(call, chk, field, bytes, type, d, ref);
}

static bool
check_duration(struct ck_check *chk, int32_t days)
{
	/* the per-kind maximum needs the asset kind from the reference;
	 * here only the outer bound of the longest kind (3 years) */
	if (days < 1 || days > 3 * 366) {
		snprintf(chk->msg, sizeof(chk->msg), "duration_days: must be "
		    "between 1 and 1098 (at most 1, 2 or 3 years by asset "
		    "kind)");
		return false;
	}
	return true;
}

static void
on_freeze(struct ck_call *call)
{
	const Chakong__V1__FreezeRequest *req =
	    (const Chakong__V1__FreezeRequest *)call->request;
	struct ck_check chk;
	struct ck_case kase;
	struct ck_ref ref;

	ck_check_init(&chk, call->cfg);
	if (!check_ref_action(call, &chk, req->request_id, req->case_,
	    req->debtor, req->document_number, "asset_ref", &req->asset_ref,
	    CK_REF_ASSET, &kase, &ref) ||
	    !check_duration(&chk, req->duration_days) ||
	    (req->amount != NULL &&
	    !ck_check_money(&chk, "amount", req->amount, true))) {
		INVALID(call, &chk);
		return;
	}
	if (ck_fed_source_is_partner(ref.source)) {
		ck_call_fail(call, CK_GRPC_FAILED_PRECONDITION, "asset_ref: "
		    "the asset is held in a partner city; Freeze is not "
		    "forwarded to partner brokers (freeze it there)");
		return;
	}
	if (actions != NULL)
		ck_actions_freeze(actions, call, req, &kase, &ref);
	else
		not_yet(call, "Freeze");
}

static void
on_extend(struct ck_call *call)
{
	const Chakong__V1__ExtendRequest *req =
	    (const Chakong__V1__ExtendRequest *)call->request;
	struct ck_check chk;
	struct ck_case kase;
	struct ck_ref ref;

	ck_check_init(&chk, call->cfg);
	if (!check_ref_action(call, &chk, req->request_id, req->case_,
	    req->debtor, req->document_number, "freeze_ref", &req->freeze_ref,
	    CK_REF_FREEZE, &kase, &ref) ||
	    !check_duration(&chk, req->duration_days)) {
		INVALID(call, &chk);
		return;
	}
	if (actions != NULL)
		ck_actions_extend(actions, call, req, &kase, &ref);
	else
		not_yet(call, "Extend");
}

static void
on_release(struct ck_call *call)
{
	const Chakong__V1__ReleaseRequest *req =
	    (const Chakong__V1__ReleaseRequest *)call->request;
	struct ck_check chk;
	struct ck_case kase;
	struct ck_ref ref;

	ck_check_init(&chk, call->cfg);
	if (!check_ref_action(call, &chk, req->request_id, req->case_,
	    req->debtor, req->document_number, "freeze_ref", &req->freeze_ref,
	    CK_REF_FREEZE, &kase, &ref)) {
		INVALID(call, &chk);
		return;
	}
	if (actions != NULL)
		ck_actions_release(actions, call, req, &kase, &ref);
	else
		not_yet(call, "Release");
}

static void
on_deduct(struct ck_call *call)
{
	const Chakong__V1__DeductRequest *req =
	    (const Chakong__V1__DeductRequest *)call->request;
	struct ck_check chk;
	struct ck_case kase;
	struct ck_ref ref;

	ck_check_init(&chk, call->cfg);
	if (!check_ref_action(call, &chk, req->request_id, req->case_,
	    req->debtor, req->document_number, "freeze_ref", &req->freeze_ref,
	    CK_REF_FREEZE, &kase, &ref) ||
	    !ck_check_money(&chk, "amount", req->amount, true)) {
		INVALID(call, &chk);
		return;
	}
	if (kase.type == CK_CASE_PRESERVE) {
		ck_call_fail(call, CK_GRPC_FAILED_PRECONDITION,
		    "case.case_number: no deduction under a preservation "
		    "(执保) case");
		return;
	}
	if (ref.category != CK_CATEGORY_DEPOSIT) {
		ck_call_fail(call, CK_GRPC_FAILED_PRECONDITION,
		    "freeze_ref: deductions are for deposits only");
		return;
	}
	if (actions != NULL)
		ck_actions_deduct(actions, call, req, &kase, &ref);
	else
		not_yet(call, "Deduct");
}

static void
on_update_claim(struct ck_call *call)
{
	const Chakong__V1__UpdateClaimRequest *req =
	    (const Chakong__V1__UpdateClaimRequest *)call->request;
	struct ck_check chk;
	struct ck_case kase;
	const char *court;

	ck_check_init(&chk, call->cfg);
	if (!ck_check_request_id(&chk, "request_id", req->request_id, true) ||
	    !ck_check_case(&chk, "case", req->case_, &kase, &court) ||
	    !ck_check_money(&chk, "new_claim", req->new_claim, false) ||
	    !ck_check_document(&chk, "document_number", req->document_number,
	    &kase)) {
		INVALID(call, &chk);
		return;
	}
	if (req->reason[0] == '\0' || strlen(req->reason) > 256 ||
	    !ck_valid_name(req->reason, strlen(req->reason), chk.msg)) {
		ck_call_fail(call, CK_GRPC_INVALID_ARGUMENT, "reason: required, "
		    "1..256 bytes of UTF-8 text");
		return;
	}
	if (actions != NULL)
		ck_actions_update_claim(actions, call, req, &kase);
	else
		not_yet(call, "UpdateClaim");
}

static void
on_enroll(struct ck_call *call)
{
	const Chakong__V1__EnrollRequest *req =
	    (const Chakong__V1__EnrollRequest *)call->request;
	struct ck_check chk;
	struct ck_case kase;
	struct ck_date d;
	const char *court;

	ck_check_init(&chk, call->cfg);
	if (!ck_check_request_id(&chk, "request_id", req->request_id, true) ||
	    !ck_check_case(&chk, "case", req->case_, &kase, &court) ||
	    !ck_check_debtor(&chk, "debtor", req->debtor) ||
	    !ck_check_categories(&chk, "categories", req->categories,
	    req->n_categories) ||
	    !ck_check_date(&chk, "termination_date", req->termination_date,
	    true, &d) ||
	    !ck_check_document(&chk, "document_number", req->document_number,
	    &kase)) {
		INVALID(call, &chk);
		return;
	}
	if (watch != NULL)
		ck_watch_enroll(watch, call, req, &kase, &d);
	else
		not_yet(call, "Enroll");
}

static void
on_end_enrollment(struct ck_call *call)
{
	const Chakong__V1__EndEnrollmentRequest *req =
	    (const Chakong__V1__EndEnrollmentRequest *)call->request;
	struct ck_check chk;
	struct ck_case kase, newcase;
	const char *court;

	ck_check_init(&chk, call->cfg);
	if (!ck_check_request_id(&chk, "request_id", req->request_id, true) ||
	    !ck_check_case(&chk, "case", req->case_, &kase, &court)) {
		INVALID(call, &chk);
		return;
	}
	newcase.norm[0] = '\0';
	switch (req->reason) {
	case CHAKONG__V1__END_REASON__END_RESTORED: {
		Chakong__V1__CaseRef nc = *req->case_;

		nc.case_number = req->new_case_number;
		if (!ck_check_case(&chk, "new_case_number", &nc, &newcase,
		    &court)) {
			/* the message names new_case_number.case_number */
			INVALID(call, &chk);
			return;
		}
		if (newcase.type != CK_CASE_RESTORED) {
			ck_call_fail(call, CK_GRPC_INVALID_ARGUMENT,
			    "new_case_number: must be a restored (执恢) case");
			return;
		}
		break;
	}
	case CHAKONG__V1__END_REASON__END_CLOSED:
		break;
	default:
		ck_call_fail(call, CK_GRPC_INVALID_ARGUMENT, "reason: required "
		    "(END_RESTORED or END_CLOSED)");
		return;
	}
	if (watch != NULL)
		ck_watch_end(watch, call, req, &kase, newcase.norm);
	else
		not_yet(call, "EndEnrollment");
}

static void
on_list_findings(struct ck_call *call)
{
	const Chakong__V1__ListFindingsRequest *req =
	    (const Chakong__V1__ListFindingsRequest *)call->request;

	if (req->since < 0) {
		ck_call_fail(call, CK_GRPC_INVALID_ARGUMENT,
		    "since: must not be negative");
		return;
	}
	if (req->page_size < 0 || req->page_size > 1000) {
		ck_call_fail(call, CK_GRPC_INVALID_ARGUMENT,
		    "page_size: must be between 0 and 1000");
		return;
	}
	if ((int)req->kind < 0 ||
	    req->kind > CHAKONG__V1__FINDING_KIND__FINDING_EXPIRING) {
		ck_call_fail(call, CK_GRPC_INVALID_ARGUMENT,
		    "kind: not a known finding kind");
		return;
	}
	if (watch != NULL)
		ck_watch_list(watch, call, req);
	else
		not_yet(call, "ListFindings");
}

static void
on_ack_findings(struct ck_call *call)
{
	const Chakong__V1__AckFindingsRequest *req =
	    (const Chakong__V1__AckFindingsRequest *)call->request;
	struct ck_check chk;

	ck_check_init(&chk, call->cfg);
	if (!ck_check_request_id(&chk, "request_id", req->request_id, true)) {
		INVALID(call, &chk);
		return;
	}
	if (req->n_finding_ids == 0) {
		ck_call_fail(call, CK_GRPC_INVALID_ARGUMENT,
		    "finding_ids: at least one is required");
		return;
	}
	if (watch != NULL)
		ck_watch_ack(watch, call, req);
	else
		not_yet(call, "AckFindings");
}

/* ---- grpc.health.v1.Health -------------------------------------------- */

static void
on_health_check(struct ck_call *call)
{
	const Grpc__Health__V1__HealthCheckRequest *req =
	    (const Grpc__Health__V1__HealthCheckRequest *)call->request;
	Grpc__Health__V1__HealthCheckResponse reply =
	    GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;

	if (req->service[0] != '\0' &&
	    strcmp(req->service, "chakong.v1.AssetBroker") != 0 &&
	    strcmp(req->service, "grpc.health.v1.Health") != 0) {
		ck_call_fail(call, CK_GRPC_NOT_FOUND, "service: not served "
		    "here");
		return;
	}
	reply.status = serving ?
	    GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING :
	    GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
	ck_call_reply(call, &reply.base);
}

static void
on_health_watch(struct ck_call *call)
{
	ck_call_fail(call, CK_GRPC_UNIMPLEMENTED, "Watch (streaming) is not "
	    "served; use Check");
}

/* ---- rights (policy.h) ----------------------------------------------- */

/* A field of the request by its proto name, or NULL (protobuf-c's
 * reflection: one admit for every method, whatever its message). */
static const void *
field_at(const ProtobufCMessage *msg, const char *name,
    const ProtobufCFieldDescriptor **fd)
{
	*fd = protobuf_c_message_descriptor_get_field_by_name(msg->descriptor,
	    name);
	return *fd != NULL ? (const char *)msg + (*fd)->offset : NULL;
}

/*
 * What the decoded request says about its subject, read leniently: a
 * field that does not parse is left out here and refused by validation
 * next, so a right is never inferred from a malformed value.
 */
static void
subject_of(const struct ck_call *call, struct ck_policy_subject *s)
{
	const ProtobufCMessage *req = call->request;
	const ProtobufCFieldDescriptor *fd;
	const void *p;

	if ((p = field_at(req, "case", &fd)) != NULL &&
	    *(Chakong__V1__CaseRef *const *)p != NULL) {
		const Chakong__V1__CaseRef *c =
		    *(Chakong__V1__CaseRef *const *)p;
		struct ck_check chk;
		struct ck_case kase;
		const char *court = NULL;

		ck_check_init(&chk, call->cfg);
		(void)ck_check_case(&chk, "case", c, &kase, &court);
		s->case_court = court;
		if (c->officer_id != NULL && c->officer_id[0] != '\0')
			s->officer_id = c->officer_id;
	}
	if ((p = field_at(req, "categories", &fd)) != NULL) {
		size_t n = *(const size_t *)((const char *)req +
		    fd->quantifier_offset);
		const int *cats = *(int *const *)p;

		s->categories |= ck_category_mask(cats, n);
	}
	if (((p = field_at(req, "asset_ref", &fd)) != NULL ||
	    (p = field_at(req, "freeze_ref", &fd)) != NULL) &&
	    fanout != NULL && fanout->refkeys != NULL) {
		const ProtobufCBinaryData *b = p;
		struct ck_ref *ref = ck_call_alloc((struct ck_call *)call,
		    sizeof(*ref));

		/* another court's reference says nothing about this
		 * caller's rights: validation refuses it next */
		if (ref != NULL && ck_ref_open(fanout->refkeys, b->data,
		    b->len, ref) == 0 &&
		    strcmp(ref->court_id, call->peer->id) == 0) {
			s->categories |= CK_CATEGORY_BIT(ref->category);
			s->source = ref->source;
		}
	}
}

/*
 * The rights check of every AssetBroker method (rpc.h): before decoding,
 * the method and the caller's rate; after, the case's court, the
 * categories, the agency and the officer.
 */
int
ck_rpc_admit(const struct ck_call *call, char *msg, size_t msglen)
{
	static const char svc[] = "/chakong.v1.AssetBroker/";
	struct ck_policy_subject s = {
		.role = call->peer->role,
		.id = call->peer->id,
		.method = strrchr(call->method->path, '/') + 1,
	};
	int code;

	if (strncmp(call->method->path, svc, sizeof(svc) - 1) != 0)
		return 0;
	/* a partner broker acts only on a court's behalf: federation.c
	 * decides its Query from [peer.<id>] and the originating court's
	 * policy; it has no other right */
	if (ck_fed_is_peer(call)) {
		if (strcmp(s.method, "Query") == 0)
			return 0;
		snprintf(msg, msglen, "right %s: a peer broker may only "
		    "forward Query", s.method);
		log_info(call->log_id, "refused %s for %s: %s", s.method,
		    call->peer->name, msg);
		return CK_GRPC_PERMISSION_DENIED;
	}
	if (call->request == NULL) {
		code = ck_policy_check(policy, &s, msg, msglen);
		if (code == 0) {
			if (limiter == NULL &&
			    ck_policy_limiter_new(&limiter) != 0) {
				snprintf(msg, msglen, "server out of memory");
				return CK_GRPC_RESOURCE_EXHAUSTED;
			}
			code = ck_policy_limiter_take(limiter, policy, s.role,
			    s.id, ck_clock_now_usec(), msg, msglen);
		}
	} else {
		subject_of(call, &s);
		code = ck_policy_check(policy, &s, msg, msglen);
	}
	if (code != 0)
		log_info(call->log_id, "refused %s for %s: %s", s.method,
		    call->peer->name, msg);
	return code;
}

/* ---- the table -------------------------------------------------------- */

#define BROKER(m, msg, fn)                                                \
	{ "/chakong.v1.AssetBroker/" m,                                   \
	    &chakong__v1__##msg##__descriptor, fn,                        \
	    CK_ACCESS_ROLE(CK_ROLE_COURT) | CK_ACCESS_ROLE(CK_ROLE_BROKER), 0 }

static struct ck_method methods[] = {
	BROKER("Query", query_request, on_query),
	BROKER("Freeze", freeze_request, on_freeze),
	BROKER("Extend", extend_request, on_extend),
	BROKER("Release", release_request, on_release),
	BROKER("Deduct", deduct_request, on_deduct),
	BROKER("UpdateClaim", update_claim_request, on_update_claim),
	BROKER("Enroll", enroll_request, on_enroll),
	BROKER("EndEnrollment", end_enrollment_request, on_end_enrollment),
	BROKER("ListFindings", list_findings_request, on_list_findings),
	BROKER("AckFindings", ack_findings_request, on_ack_findings),
	{ "/grpc.health.v1.Health/Check",
	    &grpc__health__v1__health_check_request__descriptor,
	    on_health_check, CK_ACCESS_ANY, 0 },
	{ "/grpc.health.v1.Health/Watch",
	    &grpc__health__v1__health_check_request__descriptor,
	    on_health_watch, CK_ACCESS_ANY, 0 },
	CK_CACHE_ADMIN_METHODS,
#ifdef CK_TEST_HOOKS
	CK_TESTING_METHODS,
#endif
};

void
ck_rpc_init(void)
{
	for (size_t i = 0; i < CK_ARRAY_SIZE(methods); i++)
		methods[i].metrics_id = ck_metrics_method(methods[i].path);
}

const struct ck_method *
ck_rpc_find(const char *path, size_t len)
{
	for (size_t i = 0; i < CK_ARRAY_SIZE(methods); i++)
		if (strlen(methods[i].path) == len &&
		    memcmp(methods[i].path, path, len) == 0)
			return &methods[i];
	return NULL;
}
