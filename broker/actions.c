/*
 * actions.c: the state-changing RPCs and their journal (see actions.h).
 *
 * state.mdb holds three databases:
 *   journal  (caller "\0" request_id) -> JournalRecord
 *   freezes  (source "\0" encumbrance_id) -> FreezeRecord
 *   cases    (normalised case number) -> CaseRecord
 *   audit    (sequence number) -> AuditRecord, the audit trail (audit.h):
 *            a state-changing request's record commits with its intent,
 *            each agency answer's record with the outcome it journals
 * Each value is one version byte and a chakong.internal.v1 message.
 *
 * Every rule that reads stored state (the claim, the over-freezing cap,
 * the freeze a freeze_ref names) is checked in the same write transaction
 * that records the intent, on the writer thread, so two concurrent freezes
 * cannot both slip under the cap. Refusals store nothing.
 */
#include "actions.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/evp.h>

#include "cache.h"
#include "audit.h"
#include "chakong/adapter.h"
#include "clock.h"
#include "config.h"
#include "grpc_frame.h"
#include "log.h"
#include "module.h"
#include "record.h"
#include "state.pb-c.h"
#include "store.h"
#include "util.h"
#include "watch.h"

#define DB_JOURNAL 0
#define DB_FREEZES 1
#define DB_CASES 2
#define DB_AUDIT 3

typedef Chakong__Internal__V1__JournalRecord JournalRecord;
typedef Chakong__Internal__V1__FreezeRecord FreezeRecord;
typedef Chakong__Internal__V1__CaseRecord CaseRecord;
typedef Chakong__Internal__V1__Outcome Outcome;
typedef Chakong__Internal__V1__SealedCall SealedCall;

enum method {
	M_FREEZE = CHAKONG__INTERNAL__V1__METHOD__METHOD_FREEZE,
	M_EXTEND = CHAKONG__INTERNAL__V1__METHOD__METHOD_EXTEND,
	M_RELEASE = CHAKONG__INTERNAL__V1__METHOD__METHOD_RELEASE,
	M_DEDUCT = CHAKONG__INTERNAL__V1__METHOD__METHOD_DEDUCT,
	M_CLAIM = CHAKONG__INTERNAL__V1__METHOD__METHOD_UPDATE_CLAIM,
};

enum verdict {
	V_PROCEED = 0,	/* intent recorded: send */
	V_REFUSED,	/* a rule said no; nothing stored */
	V_CONFLICT,	/* request_id reused with other arguments */
	V_REPLAY,	/* a final outcome is recorded: answer it again */
	V_INFLIGHT,	/* the same request is still pending */
	V_DONE,		/* no agency involved (UpdateClaim): done */
};

/* Everything needed to send, and re-send, one action. */
struct req {
	enum method m;
	char caller[80];
	char request_id[72];
	char case_number[96];
	char court_id[32];
	char officer[40];
	char document[136];
	char resident_id[24];
	char uscc[24];
	char name[136];
	char source[64];
	char asset_id[256];
	char encumbrance_id[128];
	int category;
	int64_t amount_fen;
	char currency[8];
	int32_t duration_days;
	char custody_bank[32];
	char custody_account[64];
	int64_t claim_fen;
	char claim_currency[8];
	uint8_t debtor[16];		/* keyed hash of the debtor id */
	uint8_t digest[32];
	char idem[72];			/* idempotency key sent to the agency */
	struct ck_date today;
	uint32_t margin_percent;
	char reason[264];		/* UpdateClaim */
};

struct outcome {
	int status;			/* chakong.v1.ActionOutcome */
	char encumbrance_id[128];
	int64_t frozen_fen, queued_fen, deducted_fen;
	char effective[16], expiry[16];
	int32_t queue_position;
	char transfer_id[64];
	char reason[256];
	uint8_t freeze_ref[CK_REF_MAX_LEN];
	size_t freeze_ref_len;
	int64_t old_claim, new_claim;
};

struct ck_actions;

struct act {
	struct ck_actions *A;
	struct ck_call *call;		/* NULL once answered or gone */
	struct req r;
	char key[160];
	size_t keylen;
	enum verdict verdict;
	int grpc;
	char msg[320];
	struct outcome o;
	int64_t reserved;		/* counted against the case's claim */
	struct ck_adapter *ad;
	void *handle;			/* adapter call in flight */
	struct event *timer;		/* reply deadline, then backoff */
	int attempts;
	bool resolving;			/* in the resolver's list */
	bool counted;			/* in npending */
	char log_id[24];
	char method[64];		/* the gRPC path, for the audit */
	uint64_t started;		/* ck_mono_usec() at the call's arrival */
	uint64_t sent_at;		/* ... at the last send to the agency */
	enum ck_origin origin;		/* the call's */
	bool audited;			/* request record in the intent txn */
	TAILQ_ENTRY(act) link;
};

TAILQ_HEAD(act_list, act);

struct ck_actions {
	struct event_base *base;
	struct ck_config *cfg;
	struct ck_store *store;
	struct ck_adapters *adapters;
	struct ck_refkeys *keys;
	struct ck_cache *cache;		/* NULL: none to invalidate */
	struct ck_audit *audit;
	struct act_list live;		/* every act, for shutdown */
	unsigned npending;		/* outcome unknown: told PENDING or
					   in the resolver */
	bool closing;
	int last_store_error;
	uint64_t intents, finals, refused, conflicts, replays, resends;
	uint64_t not_sent, unknown;
};

static const char *const dbnames[] = { "journal", "freezes", "cases",
	"audit", CK_WATCH_DBNAMES };

/* ---- crash points (test builds) --------------------------------------- */

void
ck_crashpoint(const char *name)
{
#ifdef CK_TEST_HOOKS
	static int skip = -1;
	const char *want = getenv("CK_CRASHPOINT");
	size_t n = strlen(name);
	const char *p;

	if (want == NULL)
		return;
	for (p = strstr(want, name); p != NULL; p = strstr(p + 1, name)) {
		if ((p == want || p[-1] == ',') &&
		    (p[n] == '\0' || p[n] == ','))
			break;
	}
	if (p == NULL)
		return;
	if (skip < 0) {
		const char *s = getenv("CK_CRASHPOINT_SKIP");
		skip = s != NULL ? atoi(s) : 0;
	}
	if (skip-- > 0)
		return;
	log_warn(NULL, "crash point %s: SIGKILL", name);
	raise(SIGKILL);
#else
	(void)name;
#endif
}

/* ---- records ---------------------------------------------------------- */

/* Records: one version byte and a message (record.h). */
static ProtobufCMessage *
unpack(const ProtobufCMessageDescriptor *d, const MDB_val *v)
{
	return ck_record_unpack(d, v, NULL);
}

static int
put(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen,
    const ProtobufCMessage *m)
{
	return ck_record_put(txn, dbi, key, klen, m);
}

static int
get(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen,
    const ProtobufCMessageDescriptor *d, ProtobufCMessage **out)
{
	return ck_record_get(txn, dbi, key, klen, d, out);
}

static size_t
freeze_key(char *buf, size_t len, const char *source, const char *enc)
{
	int n = snprintf(buf, len, "%s%c%s", source, 0, enc);

	return n > 0 && (size_t)n < len ? (size_t)n : 0;
}

/* ---- the digest over a fixed field list -------------------------------- */

static void
dig_str(EVP_MD_CTX *c, const char *s)
{
	uint32_t n = (uint32_t)strlen(s);

	EVP_DigestUpdate(c, &n, sizeof(n));
	EVP_DigestUpdate(c, s, n);
}

static void
dig_i64(EVP_MD_CTX *c, int64_t v)
{
	EVP_DigestUpdate(c, &v, sizeof(v));
}

/*
 * Over the request's meaning, never its encoding: two clients encode the
 * same request differently, and a retry may carry a freshly queried
 * asset_ref for the same asset. The officer is left out: a colleague may
 * re-send the same action.
 */
static void
digest(struct req *r)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	EVP_DigestInit_ex(c, EVP_sha256(), NULL);
	dig_i64(c, r->m);
	dig_str(c, r->case_number);
	dig_i64(c, r->claim_fen);
	dig_str(c, r->resident_id);
	dig_str(c, r->uscc);
	dig_str(c, r->name);
	dig_str(c, r->document);
	dig_str(c, r->source);
	dig_str(c, r->asset_id);
	dig_str(c, r->encumbrance_id);
	dig_i64(c, r->amount_fen);
	dig_str(c, r->currency);
	dig_i64(c, r->duration_days);
	dig_str(c, r->reason);
	EVP_DigestFinal_ex(c, r->digest, NULL);
	EVP_MD_CTX_free(c);
}

/* The key agencies de-duplicate by: derived from this broker, the caller
 * and the caller's request_id, so two courts never collide. */
static void
idempotency_key(struct req *r, const char *broker_id)
{
	uint8_t d[EVP_MAX_MD_SIZE];
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	EVP_DigestInit_ex(c, EVP_sha256(), NULL);
	dig_str(c, broker_id);
	dig_str(c, r->caller);
	dig_str(c, r->request_id);
	EVP_DigestFinal_ex(c, d, NULL);
	EVP_MD_CTX_free(c);
	ck_hex(d, 20, r->idem);
}

/* ---- the request from each RPC ---------------------------------------- */

static bool
copy(char *dst, size_t len, const char *src)
{
	return ck_strlcpy(dst, src != NULL ? src : "", len) < len;
}

static bool
req_common(struct act *x, struct ck_call *call, enum method m,
    const char *request_id, const struct ck_case *kase,
    const Chakong__V1__CaseRef *c, const Chakong__V1__Debtor *d,
    const char *doc)
{
	struct req *r = &x->r;

	r->m = m;
	ck_date_from_unix_cst(ck_clock_now(), &r->today);
	r->margin_percent = call->cfg->fee_margin_percent;
	r->claim_fen = c->claim_amount_fen;
	if (!copy(r->caller, sizeof(r->caller), call->peer->name) ||
	    !copy(r->request_id, sizeof(r->request_id), request_id) ||
	    !copy(r->case_number, sizeof(r->case_number), kase->norm) ||
	    !copy(r->court_id, sizeof(r->court_id), call->peer->id) ||
	    !copy(r->officer, sizeof(r->officer), c->officer_id) ||
	    !copy(r->document, sizeof(r->document), doc) ||
	    !copy(r->claim_currency, sizeof(r->claim_currency),
	    c->claim_currency[0] ? c->claim_currency : "CNY"))
		return false;
	if (d != NULL) {
		if (d->id_case == CHAKONG__V1__DEBTOR__ID_RESIDENT_ID)
			copy(r->resident_id, sizeof(r->resident_id),
			    d->resident_id);
		else
			copy(r->uscc, sizeof(r->uscc), d->uscc);
		if (!copy(r->name, sizeof(r->name), d->name))
			return false;
	}
	x->keylen = (size_t)snprintf(x->key, sizeof(x->key), "%s%c%s",
	    r->caller, 0, r->request_id);
	ck_strlcpy(x->log_id, call->log_id, sizeof(x->log_id));
	ck_strlcpy(x->method, call->method != NULL ? call->method->path : "",
	    sizeof(x->method));
	x->started = call->started;
	x->origin = call->origin;
	return true;
}

static bool
req_target(struct req *r, const struct ck_ref *ref)
{
	r->category = ref->category;
	memcpy(r->debtor, ref->debtor, sizeof(r->debtor));
	return copy(r->source, sizeof(r->source), ref->source) &&
	    copy(r->asset_id, sizeof(r->asset_id), ref->asset_id) &&
	    copy(r->encumbrance_id, sizeof(r->encumbrance_id),
	    ref->encumbrance_id);
}

/* ---- replies ----------------------------------------------------------- */

static const char *
method_name(enum method m)
{
	switch (m) {
	case M_FREEZE:
		return "Freeze";
	case M_EXTEND:
		return "Extend";
	case M_RELEASE:
		return "Release";
	case M_DEDUCT:
		return "Deduct";
	default:
		return "UpdateClaim";
	}
}

/* Answer the caller, once; the act lives on if it still has work. */
static void
reply(struct act *x, int outcome_status)
{
	struct ck_call *call = x->call;
	const struct outcome *o = &x->o;

	if (call == NULL)
		return;
	if (outcome_status == CHAKONG__V1__ACTION_OUTCOME__ACTION_PENDING &&
	    x->verdict == V_PROCEED && !x->counted) {
		/* told PENDING while the agency call is still out */
		x->counted = true;
		x->A->npending++;
	}
	x->call = NULL;
	call->on_cancel = NULL;
	switch (x->r.m) {
	case M_FREEZE: {
		Chakong__V1__FreezeReply rep = CHAKONG__V1__FREEZE_REPLY__INIT;

		rep.outcome = outcome_status;
		rep.freeze_ref.data = (uint8_t *)o->freeze_ref;
		rep.freeze_ref.len = o->freeze_ref_len;
		rep.frozen_fen = o->frozen_fen;
		rep.queued_fen = o->queued_fen;
		rep.effective_date = (char *)o->effective;
		rep.expiry_date = (char *)o->expiry;
		rep.queue_position = o->queue_position;
		rep.reason = (char *)o->reason;
		ck_call_reply(call, &rep.base);
		break;
	}
	case M_EXTEND: {
		Chakong__V1__ExtendReply rep = CHAKONG__V1__EXTEND_REPLY__INIT;

		rep.outcome = outcome_status;
		rep.expiry_date = (char *)o->expiry;
		rep.reason = (char *)o->reason;
		ck_call_reply(call, &rep.base);
		break;
	}
	case M_RELEASE: {
		Chakong__V1__ReleaseReply rep =
		    CHAKONG__V1__RELEASE_REPLY__INIT;

		rep.outcome = outcome_status;
		rep.reason = (char *)o->reason;
		ck_call_reply(call, &rep.base);
		break;
	}
	case M_DEDUCT: {
		Chakong__V1__DeductReply rep = CHAKONG__V1__DEDUCT_REPLY__INIT;

		rep.outcome = outcome_status;
		rep.deducted_fen = o->deducted_fen;
		rep.transfer_id = (char *)o->transfer_id;
		rep.reason = (char *)o->reason;
		ck_call_reply(call, &rep.base);
		break;
	}
	case M_CLAIM: {
		Chakong__V1__UpdateClaimReply rep =
		    CHAKONG__V1__UPDATE_CLAIM_REPLY__INIT;

		rep.old_claim_fen = o->old_claim;
		rep.new_claim_fen = o->new_claim;
		ck_call_reply(call, &rep.base);
		break;
	}
	}
}

static void
reply_fail(struct act *x, int code, const char *msg)
{
	struct ck_call *call = x->call;

	if (call == NULL)
		return;
	x->call = NULL;
	call->on_cancel = NULL;
	ck_call_fail(call, code, "%s", msg);
}

static void
act_free(struct act *x)
{
	struct ck_actions *A = x->A;

	if (x->handle != NULL && x->ad != NULL)
		x->ad->ops->cancel(x->handle);
	if (x->timer != NULL)
		event_free(x->timer);
	if (x->call != NULL)
		x->call->on_cancel = NULL;
	if (x->counted)
		A->npending--;
	TAILQ_REMOVE(&A->live, x, link);
	explicit_bzero(&x->r, sizeof(x->r));
	free(x);
}

/* The caller went away (deadline, reset, drain): the action goes on. */
static void
on_call_cancel(struct ck_call *call)
{
	struct act *x = call->handler_data;

	x->call = NULL;
}

/* ---- writer-thread jobs ------------------------------------------------ */

static bool
refuse(struct act *x, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool
refuse(struct act *x, int code, const char *fmt, ...)
{
	va_list ap;

	x->verdict = V_REFUSED;
	x->grpc = code;
	va_start(ap, fmt);
	vsnprintf(x->msg, sizeof(x->msg), fmt, ap);
	va_end(ap);
	return false;
}

static void
outcome_from(struct outcome *o, const Outcome *in)
{
	o->status = in->status;
	ck_strlcpy(o->encumbrance_id, in->encumbrance_id,
	    sizeof(o->encumbrance_id));
	o->frozen_fen = in->frozen_fen;
	o->queued_fen = in->queued_fen;
	o->deducted_fen = in->deducted_fen;
	ck_strlcpy(o->effective, in->effective_date, sizeof(o->effective));
	ck_strlcpy(o->expiry, in->expiry_date, sizeof(o->expiry));
	o->queue_position = in->queue_position;
	ck_strlcpy(o->transfer_id, in->transfer_id, sizeof(o->transfer_id));
	ck_strlcpy(o->reason, in->reason, sizeof(o->reason));
	if (in->freeze_ref.len > 0 &&
	    in->freeze_ref.len <= sizeof(o->freeze_ref)) {
		memcpy(o->freeze_ref, in->freeze_ref.data, in->freeze_ref.len);
		o->freeze_ref_len = in->freeze_ref.len;
	}
	o->old_claim = in->old_claim_fen;
	o->new_claim = in->new_claim_fen;
}

static void
outcome_to(const struct outcome *o, Outcome *out)
{
	out->status = o->status;
	out->encumbrance_id = (char *)o->encumbrance_id;
	out->frozen_fen = o->frozen_fen;
	out->queued_fen = o->queued_fen;
	out->deducted_fen = o->deducted_fen;
	out->effective_date = (char *)o->effective;
	out->expiry_date = (char *)o->expiry;
	out->queue_position = o->queue_position;
	out->transfer_id = (char *)o->transfer_id;
	out->reason = (char *)o->reason;
	out->freeze_ref.data = (uint8_t *)o->freeze_ref;
	out->freeze_ref.len = o->freeze_ref_len;
	out->old_claim_fen = o->old_claim;
	out->new_claim_fen = o->new_claim;
}

/* The longest period allowed for the asset kind, from `from`. */
static struct ck_date
max_until(int category, const struct ck_date *from)
{
	struct ck_date d;
	int months = category == CK_CATEGORY_DEPOSIT ? 12 :
	    category == CK_CATEGORY_VEHICLE ? 24 : 36;

	ck_date_add_months(from, months, &d);
	return d;
}

static const char *
kind_rule(int category)
{
	return category == CK_CATEGORY_DEPOSIT ? "a deposit freeze lasts at "
	    "most 1 year" : category == CK_CATEGORY_VEHICLE ? "a vehicle "
	    "seal lasts at most 2 years" : "a real-estate seal lasts at most "
	    "3 years";
}

/* The period's end, counted in calendar dates from `from` (its first
 * day): from + days - 1 must not pass from + the kind's months - 1 day. */
static bool
duration_ok(int category, const struct ck_date *from, int32_t days)
{
	struct ck_date lim = max_until(category, from);

	return ck_date_to_days(from) + days <= ck_date_to_days(&lim);
}

static bool
check_claim(struct act *x, MDB_txn *txn, MDB_dbi cases, CaseRecord **cr,
    CaseRecord *fresh)
{
	struct req *r = &x->r;
	int rc;

	rc = get(txn, cases, r->case_number, strlen(r->case_number),
	    &chakong__internal__v1__case_record__descriptor,
	    (ProtobufCMessage **)cr);
	if (rc == CK_ENOTFOUND) {
		if (r->m != M_CLAIM && r->claim_fen <= 0)
			return refuse(x, CK_GRPC_FAILED_PRECONDITION,
			    "case.claim_amount_fen: the first action on a case "
			    "fixes its claim, so it is required (fen > 0)");
		chakong__internal__v1__case_record__init(fresh);
		fresh->case_number = r->case_number;
		fresh->court_id = r->court_id;
		fresh->claim_fen = r->claim_fen;
		fresh->claim_currency = r->claim_currency;
		fresh->created_at = ck_clock_now();
		return true;
	}
	if (rc != 0)
		return refuse(x, CK_GRPC_UNAVAILABLE, "journal unreadable");
	if (r->m != M_CLAIM && r->claim_fen != 0 &&
	    r->claim_fen != (*cr)->claim_fen)
		return refuse(x, CK_GRPC_FAILED_PRECONDITION,
		    "case.claim_amount_fen: differs from the claim the case's "
		    "first action fixed; change it with UpdateClaim");
	return true;
}

static int64_t
cap_of(const CaseRecord *c, uint32_t margin_percent)
{
	return c->claim_fen + c->claim_fen * (int64_t)margin_percent / 100;
}

/* Rules on the freeze a freeze_ref names. */
static bool
check_freeze(struct act *x, MDB_txn *txn, MDB_dbi freezes, FreezeRecord **fr)
{
	struct req *r = &x->r;
	char k[200];
	size_t klen = freeze_key(k, sizeof(k), r->source, r->encumbrance_id);
	struct ck_date exp, until;
	char why[CK_WHY_MAX];

	if (klen == 0 || get(txn, freezes, k, klen,
	    &chakong__internal__v1__freeze_record__descriptor,
	    (ProtobufCMessage **)fr) != 0)
		/*
		 * The reference is ours (sealed), so the freeze was answered;
		 * its outcome is recorded after the answer and, after a crash,
		 * by the resolver: not yet known here is a moment, not a rule.
		 */
		return refuse(x, CK_GRPC_UNAVAILABLE, "freeze_ref: the freeze "
		    "is still being recorded (its outcome is being confirmed "
		    "with the agency); retry with the same request_id");
	if (!(*fr)->active)
		return refuse(x, CK_GRPC_FAILED_PRECONDITION, "freeze_ref: the "
		    "freeze or seal is no longer active (released or wholly "
		    "deducted)");
	if (strcmp((*fr)->case_number, r->case_number) != 0)
		return refuse(x, CK_GRPC_FAILED_PRECONDITION, "%s: only the "
		    "case that holds the freeze may %s it", "case.case_number",
		    r->m == M_EXTEND ? "extend" : r->m == M_RELEASE ?
		    "release" : "deduct from");
	if (r->m == M_EXTEND) {
		if ((*fr)->expiry_date[0] == '\0' ||
		    !ck_valid_date((*fr)->expiry_date,
		    strlen((*fr)->expiry_date), &exp, why))
			return refuse(x, CK_GRPC_FAILED_PRECONDITION,
			    "freeze_ref: the freeze is wholly queued and has "
			    "no period yet to extend");
		if (ck_date_cmp(&r->today, &exp) > 0)
			return refuse(x, CK_GRPC_FAILED_PRECONDITION,
			    "freeze_ref: an extension must happen before "
			    "expiry; this one expired");
		/* the new period runs from the old expiry */
		ck_date_from_days(ck_date_to_days(&exp) + 1, &until);
		if (!duration_ok((*fr)->category, &until, r->duration_days))
			return refuse(x, CK_GRPC_FAILED_PRECONDITION,
			    "duration_days: %s, counted from the old expiry",
			    kind_rule((*fr)->category));
	}
	if (r->m == M_DEDUCT) {
		/* deposits only: rpc.c refused other kinds by the sealed ref */
		if (r->amount_fen > (*fr)->frozen_fen)
			return refuse(x, CK_GRPC_FAILED_PRECONDITION,
			    "amount: a deduction may not exceed what this case "
			    "has frozen on that account (in force now: %lld "
			    "fen)", (long long)(*fr)->frozen_fen);
		if (strcmp(r->currency, (*fr)->currency) != 0)
			return refuse(x, CK_GRPC_FAILED_PRECONDITION,
			    "amount.currency: not the frozen account's "
			    "currency");
	}
	return true;
}

static int
seal_call(struct ck_actions *A, const struct req *r, uint8_t **out,
    size_t *outlen)
{
	SealedCall sc = CHAKONG__INTERNAL__V1__SEALED_CALL__INIT;
	uint8_t *plain, *box;
	size_t n;
	int rc;

	sc.resident_id = (char *)r->resident_id;
	sc.uscc = (char *)r->uscc;
	sc.name = (char *)r->name;
	sc.officer_id = (char *)r->officer;
	sc.document_number = (char *)r->document;
	sc.court_id = (char *)r->court_id;
	sc.custody_bank = (char *)r->custody_bank;
	sc.custody_account = (char *)r->custody_account;
	n = chakong__internal__v1__sealed_call__get_packed_size(&sc);
	plain = malloc(n + 1);
	box = malloc(n + CK_BOX_OVERHEAD);
	if (plain == NULL || box == NULL) {
		free(plain);
		free(box);
		return CK_ENOMEM;
	}
	chakong__internal__v1__sealed_call__pack(&sc, plain);
	rc = ck_box_seal(A->keys, plain, n, box, n + CK_BOX_OVERHEAD, outlen);
	explicit_bzero(plain, n);
	free(plain);
	if (rc != 0) {
		free(box);
		return rc;
	}
	*out = box;
	return 0;
}

/* ---- audit records ------------------------------------------------------ */

/* What a request and the agency calls it causes have in common. */
static void
audit_base(const struct act *x, int kind, struct ck_audit_rec *a)
{
	const struct req *r = &x->r;

	memset(a, 0, sizeof(*a));
	a->kind = kind;
	a->origin = x->resolving ? CK_ORIGIN_RESOLVER : x->origin;
	a->time = ck_clock_now();
	ck_strlcpy(a->call_id, x->log_id, sizeof(a->call_id));
	ck_strlcpy(a->client, r->caller, sizeof(a->client));
	ck_strlcpy(a->officer, r->officer, sizeof(a->officer));
	ck_strlcpy(a->case_number, r->case_number, sizeof(a->case_number));
	ck_strlcpy(a->method, x->method, sizeof(a->method));
	ck_strlcpy(a->request_id, r->request_id, sizeof(a->request_id));
	if (r->resident_id[0] != '\0' || r->uscc[0] != '\0') {
		ck_audit_hash(x->A->audit, r->resident_id[0] ? r->resident_id :
		    r->uscc, a->debtor);
		a->has_debtor = true;
	}
	if (r->category > 0 && r->category < 32)
		a->categories = 1u << r->category;
	ck_strlcpy(a->source, r->source, sizeof(a->source));
	if (r->asset_id[0] != '\0') {
		ck_audit_hash(x->A->audit, r->asset_id, a->asset);
		a->has_asset = true;
	}
	ck_strlcpy(a->encumbrance_id, r->encumbrance_id,
	    sizeof(a->encumbrance_id));
}

/* The agency's answer (or its absence) to one send. */
static void
audit_agency(const struct act *x, int outcome, const char *note,
    struct ck_audit_rec *a)
{
	audit_base(x, CK_AUDIT_AGENCY_CALL, a);
	if (x->o.encumbrance_id[0] != '\0')
		ck_strlcpy(a->encumbrance_id, x->o.encumbrance_id,
		    sizeof(a->encumbrance_id));
	a->action_outcome = outcome;
	a->attempts = x->attempts;
	a->latency_us = x->sent_at != 0 ? (int64_t)(ck_mono_usec() -
	    x->sent_at) : 0;
	ck_strlcpy(a->note, note, sizeof(a->note));
}

static int
intent_job(MDB_txn *txn, void *arg)
{
	struct act *x = arg;
	struct ck_actions *A = x->A;
	struct req *r = &x->r;
	MDB_dbi jdb = ck_store_dbi(A->store, DB_JOURNAL);
	MDB_dbi fdb = ck_store_dbi(A->store, DB_FREEZES);
	MDB_dbi cdb = ck_store_dbi(A->store, DB_CASES);
	JournalRecord *old = NULL, rec = CHAKONG__INTERNAL__V1__JOURNAL_RECORD__INIT;
	CaseRecord *cr = NULL, fresh;
	FreezeRecord *fr = NULL;
	Outcome out = CHAKONG__INTERNAL__V1__OUTCOME__INIT;
	uint8_t *sealed = NULL;
	size_t sealed_len = 0;
	char *cur_saved = NULL;
	int rc;

	x->verdict = V_PROCEED;
	rc = get(txn, jdb, x->key, x->keylen,
	    &chakong__internal__v1__journal_record__descriptor,
	    (ProtobufCMessage **)&old);
	if (rc == 0) {
		if (old->digest.len != sizeof(r->digest) ||
		    memcmp(old->digest.data, r->digest, sizeof(r->digest)) != 0)
			x->verdict = V_CONFLICT;
		else if (old->state ==
		    CHAKONG__INTERNAL__V1__JOURNAL_STATE__JOURNAL_DONE) {
			x->verdict = V_REPLAY;
			if (old->outcome != NULL)
				outcome_from(&x->o, old->outcome);
		} else if (old->state ==
		    CHAKONG__INTERNAL__V1__JOURNAL_STATE__JOURNAL_PENDING)
			x->verdict = V_INFLIGHT;
		if (x->verdict != V_PROCEED) {
			rc = CK_EAGAIN;	/* nothing to change */
			goto done;
		}
		x->attempts = old->attempts;	/* NOT_SENT before: again */
	} else if (rc != CK_ENOTFOUND) {
		refuse(x, CK_GRPC_UNAVAILABLE, "the journal cannot be read");
		goto done;
	}

	if (!check_claim(x, txn, cdb, &cr, &fresh)) {
		rc = CK_EPERM;
		goto done;
	}
	CaseRecord *c = cr != NULL ? cr : &fresh;
	if (r->m == M_FREEZE && r->category == CK_CATEGORY_DEPOSIT &&
	    strcmp(r->currency, "CNY") == 0) {
		/* 超标的: PENDING, PARTIAL and QUEUED count at the amount asked */
		if (c->reserved_fen + r->amount_fen > cap_of(c,
		    r->margin_percent)) {
			refuse(x, CK_GRPC_FAILED_PRECONDITION, "amount: no "
			    "over-freezing: the case's CNY deposit freezes "
			    "would exceed its claim plus the %u%% fee margin "
			    "(claim %lld fen, already frozen or asked %lld "
			    "fen)", r->margin_percent, (long long)c->claim_fen,
			    (long long)c->reserved_fen);
			rc = CK_EPERM;
			goto done;
		}
		c->reserved_fen += r->amount_fen;
		x->reserved = r->amount_fen;
	}
	if ((r->m == M_EXTEND || r->m == M_RELEASE || r->m == M_DEDUCT) &&
	    !check_freeze(x, txn, fdb, &fr)) {
		rc = CK_EPERM;
		goto done;
	}
	if (r->m == M_CLAIM) {
		x->o.old_claim = cr != NULL ? cr->claim_fen : 0;
		x->o.new_claim = r->amount_fen;
		if (c->reserved_fen > r->amount_fen + r->amount_fen *
		    (int64_t)r->margin_percent / 100) {
			refuse(x, CK_GRPC_FAILED_PRECONDITION, "new_claim: the "
			    "case has more frozen or asked (%lld fen) than the "
			    "new claim and its fee margin allow; release first",
			    (long long)c->reserved_fen);
			rc = CK_EPERM;
			goto done;
		}
		c->claim_fen = r->amount_fen;
		cur_saved = c->claim_currency;	/* restored before the free */
		c->claim_currency = r->currency;
		x->verdict = V_DONE;
	}
	c->updated_at = ck_clock_now();
	if ((rc = put(txn, cdb, r->case_number, strlen(r->case_number),
	    &c->base)) != 0)
		goto done;

	rec.method = (Chakong__Internal__V1__Method)r->m;
	rec.state = x->verdict == V_DONE ?
	    CHAKONG__INTERNAL__V1__JOURNAL_STATE__JOURNAL_DONE :
	    CHAKONG__INTERNAL__V1__JOURNAL_STATE__JOURNAL_PENDING;
	rec.digest.data = r->digest;
	rec.digest.len = sizeof(r->digest);
	rec.created_at = rec.updated_at = ck_clock_now();
	rec.attempts = x->attempts;
	rec.caller = r->caller;
	rec.request_id = r->request_id;
	rec.case_number = r->case_number;
	rec.source = r->source;
	rec.category = r->category;
	rec.asset_id = r->asset_id;
	rec.encumbrance_id = r->encumbrance_id;
	rec.amount_fen = r->amount_fen;
	rec.currency = r->currency;
	rec.duration_days = r->duration_days;
	rec.reserved_fen = x->reserved;
	if (x->verdict == V_DONE) {
		outcome_to(&x->o, &out);
		rec.outcome = &out;
	} else {
		if ((rc = seal_call(A, r, &sealed, &sealed_len)) != 0)
			goto done;
		rec.sealed_call.data = sealed;
		rec.sealed_call.len = sealed_len;
	}
	rc = put(txn, jdb, x->key, x->keylen, &rec.base);
	if (rc == 0 && A->audit != NULL && x->call != NULL) {
		/* the request's record commits with its intent, or neither */
		struct ck_audit_rec a;

		audit_base(x, CK_AUDIT_REQUEST, &a);
		a.grpc_status = CK_GRPC_OK;
		a.latency_us = (int64_t)(ck_mono_usec() - x->started);
		ck_strlcpy(a.note, x->verdict == V_DONE ? "done" :
		    "intent journaled; agency calls follow", sizeof(a.note));
		rc = ck_audit_append(txn, A->audit, &a);
		x->audited = rc == 0;
	}
done:
	free(sealed);
	if (old != NULL)
		protobuf_c_message_free_unpacked(&old->base, NULL);
	if (cr != NULL) {
		if (cur_saved != NULL)
			cr->claim_currency = cur_saved;
		protobuf_c_message_free_unpacked(&cr->base, NULL);
	}
	if (fr != NULL)
		protobuf_c_message_free_unpacked(&fr->base, NULL);
	return rc;
}

/* The agency's final answer: journal, the freeze record, the case's
 * reservation, in one transaction. */
static int
outcome_job(MDB_txn *txn, void *arg)
{
	struct act *x = arg;
	struct ck_actions *A = x->A;
	struct req *r = &x->r;
	MDB_dbi jdb = ck_store_dbi(A->store, DB_JOURNAL);
	MDB_dbi fdb = ck_store_dbi(A->store, DB_FREEZES);
	MDB_dbi cdb = ck_store_dbi(A->store, DB_CASES);
	JournalRecord *rec = NULL;
	FreezeRecord *fr = NULL, nf = CHAKONG__INTERNAL__V1__FREEZE_RECORD__INIT;
	CaseRecord *cr = NULL;
	Outcome out = CHAKONG__INTERNAL__V1__OUTCOME__INIT;
	const struct outcome *o = &x->o;
	bool done_ok = o->status != CHAKONG__V1__ACTION_OUTCOME__ACTION_REJECTED;
	Outcome *saved_outcome = NULL;
	ProtobufCBinaryData saved_sealed = { 0, NULL };
	char *saved_expiry = NULL;
	bool restore_rec = false;
	int64_t release = 0;
	char k[200];
	size_t klen;
	int rc;

	rc = get(txn, jdb, x->key, x->keylen,
	    &chakong__internal__v1__journal_record__descriptor,
	    (ProtobufCMessage **)&rec);
	if (rc != 0)
		goto done;
	if (rec->state != CHAKONG__INTERNAL__V1__JOURNAL_STATE__JOURNAL_PENDING) {
		rc = 0;	/* recorded already (a resolver raced us): keep it */
		goto done;
	}
	outcome_to(o, &out);
	restore_rec = true;
	saved_outcome = rec->outcome;	/* restored before the free */
	saved_sealed = rec->sealed_call;
	rec->outcome = &out;
	rec->state = CHAKONG__INTERNAL__V1__JOURNAL_STATE__JOURNAL_DONE;
	rec->updated_at = ck_clock_now();
	rec->attempts = x->attempts;
	rec->sealed_call.data = NULL;	/* no re-send: drop the personal data */
	rec->sealed_call.len = 0;
	if ((rc = put(txn, jdb, x->key, x->keylen, &rec->base)) != 0)
		goto done;
	if (A->audit != NULL) {
		struct ck_audit_rec a;

		audit_agency(x, o->status, o->reason, &a);
		if ((rc = ck_audit_append(txn, A->audit, &a)) != 0)
			goto done;
	}

	if (r->m == M_FREEZE) {
		if (!done_ok) {
			release = rec->reserved_fen;
		} else {
			klen = freeze_key(k, sizeof(k), r->source,
			    o->encumbrance_id);
			nf.source = r->source;
			nf.encumbrance_id = (char *)o->encumbrance_id;
			nf.case_number = r->case_number;
			nf.court_id = r->court_id;
			nf.category = r->category;
			nf.asset_id = r->asset_id;
			nf.currency = r->currency;
			nf.requested_fen = r->amount_fen;
			nf.frozen_fen = o->frozen_fen;
			nf.queued_fen = o->queued_fen;
			nf.effective_date = (char *)o->effective;
			nf.expiry_date = (char *)o->expiry;
			nf.queue_position = o->queue_position;
			nf.duration_days = r->duration_days;
			nf.active = true;
			nf.debtor_hash.data = r->debtor;
			nf.debtor_hash.len = sizeof(r->debtor);
			nf.updated_at = ck_clock_now();
			if (klen == 0 ||
			    (rc = put(txn, fdb, k, klen, &nf.base)) != 0)
				goto done;
		}
	} else if (done_ok && r->m != M_CLAIM) {
		klen = freeze_key(k, sizeof(k), r->source, r->encumbrance_id);
		rc = get(txn, fdb, k, klen,
		    &chakong__internal__v1__freeze_record__descriptor,
		    (ProtobufCMessage **)&fr);
		if (rc == 0) {
			bool cny = fr->category == CK_CATEGORY_DEPOSIT &&
			    strcmp(fr->currency, "CNY") == 0;

			if (r->m == M_EXTEND) {
				saved_expiry = fr->expiry_date;
				fr->expiry_date = (char *)o->expiry;
			} else if (r->m == M_RELEASE) {
				fr->active = false;
				if (cny)
					release = fr->requested_fen -
					    fr->deducted_fen;
			} else if (r->m == M_DEDUCT) {
				fr->deducted_fen += o->deducted_fen;
				fr->frozen_fen -= o->deducted_fen;
				if (cny)
					release = o->deducted_fen;
			}
			fr->updated_at = ck_clock_now();
			if ((rc = put(txn, fdb, k, klen, &fr->base)) != 0)
				goto done;
		}
	}
	if (release > 0) {
		rc = get(txn, cdb, r->case_number, strlen(r->case_number),
		    &chakong__internal__v1__case_record__descriptor,
		    (ProtobufCMessage **)&cr);
		if (rc == 0) {
			cr->reserved_fen -= release;
			if (cr->reserved_fen < 0)
				cr->reserved_fen = 0;
			cr->updated_at = ck_clock_now();
			rc = put(txn, cdb, r->case_number,
			    strlen(r->case_number), &cr->base);
		}
	}
	rc = 0;
done:
	if (rec != NULL) {
		if (restore_rec) {
			rec->outcome = saved_outcome;
			rec->sealed_call = saved_sealed;
		}
		protobuf_c_message_free_unpacked(&rec->base, NULL);
	}
	if (fr != NULL) {
		if (saved_expiry != NULL)
			fr->expiry_date = saved_expiry;	/* o's was borrowed */
		protobuf_c_message_free_unpacked(&fr->base, NULL);
	}
	if (cr != NULL)
		protobuf_c_message_free_unpacked(&cr->base, NULL);
	return rc;
}

/* The call never reached the agency: nothing happened, give the
 * reservation back; the same request_id may be tried again. */
static int
not_sent_job(MDB_txn *txn, void *arg)
{
	struct act *x = arg;
	struct ck_actions *A = x->A;
	MDB_dbi jdb = ck_store_dbi(A->store, DB_JOURNAL);
	MDB_dbi cdb = ck_store_dbi(A->store, DB_CASES);
	JournalRecord *rec = NULL;
	CaseRecord *cr = NULL;
	int rc;

	rc = get(txn, jdb, x->key, x->keylen,
	    &chakong__internal__v1__journal_record__descriptor,
	    (ProtobufCMessage **)&rec);
	if (rc != 0 || rec->state !=
	    CHAKONG__INTERNAL__V1__JOURNAL_STATE__JOURNAL_PENDING)
		goto done;
	rec->state = CHAKONG__INTERNAL__V1__JOURNAL_STATE__JOURNAL_NOT_SENT;
	rec->updated_at = ck_clock_now();
	if (rec->reserved_fen > 0 &&
	    get(txn, cdb, x->r.case_number, strlen(x->r.case_number),
	    &chakong__internal__v1__case_record__descriptor,
	    (ProtobufCMessage **)&cr) == 0) {
		cr->reserved_fen -= rec->reserved_fen;
		if (cr->reserved_fen < 0)
			cr->reserved_fen = 0;
		if ((rc = put(txn, cdb, x->r.case_number,
		    strlen(x->r.case_number), &cr->base)) != 0)
			goto done;
	}
	rec->reserved_fen = 0;
	rc = put(txn, jdb, x->key, x->keylen, &rec->base);
	if (rc == 0 && A->audit != NULL) {
		struct ck_audit_rec a;

		audit_agency(x, 0, "not delivered: nothing was done", &a);
		rc = ck_audit_append(txn, A->audit, &a);
	}
done:
	if (rec != NULL)
		protobuf_c_message_free_unpacked(&rec->base, NULL);
	if (cr != NULL)
		protobuf_c_message_free_unpacked(&cr->base, NULL);
	return rc;
}

/* ---- talking to the agency --------------------------------------------- */

static void send_action(struct act *x);
static void resolver_schedule(struct act *x);

static struct ck_adapter *
adapter_for(struct ck_actions *A, const char *source, enum ck_op op)
{
	for (size_t i = 0; A->adapters != NULL && i < A->adapters->n; i++) {
		struct ck_adapter *ad = &A->adapters->list[i];

		if (!(ad->ops->ops & CK_OP_BIT(op)))
			continue;
		for (size_t j = 0; j < ad->nsources; j++)
			if (strcmp(ad->sources[j], source) == 0)
				return ad;
	}
	return NULL;
}

static enum ck_op
op_of(enum method m)
{
	switch (m) {
	case M_FREEZE:
		return CK_OP_FREEZE;
	case M_EXTEND:
		return CK_OP_EXTEND;
	case M_RELEASE:
		return CK_OP_RELEASE;
	default:
		return CK_OP_DEDUCT;
	}
}

static void
on_outcome_saved(void *arg, int rc)
{
	struct act *x = arg;
	struct ck_actions *A = x->A;

	if (rc != 0) {
		/* the outcome will be learnt again: the record stays PENDING
		 * and the resolver re-sends under the same key */
		A->last_store_error = rc;
		log_err(x->log_id, "%s: recording the agency's answer failed "
		    "(%s); resolving it again", method_name(x->r.m),
		    ck_strerror(rc));
		if (!A->closing) {
			resolver_schedule(x);
			return;
		}
	} else {
		A->last_store_error = 0;
		A->finals++;
	}
	act_free(x);
}

static void
on_not_sent_saved(void *arg, int rc)
{
	struct act *x = arg;

	if (rc != 0)
		x->A->last_store_error = rc;
	act_free(x);
}

static int
map_outcome(enum ck_action_status st)
{
	switch (st) {
	case CK_ACTION_DONE:
		return CHAKONG__V1__ACTION_OUTCOME__ACTION_DONE;
	case CK_ACTION_PARTIAL:
		return CHAKONG__V1__ACTION_OUTCOME__ACTION_PARTIAL;
	case CK_ACTION_QUEUED:
		return CHAKONG__V1__ACTION_OUTCOME__ACTION_QUEUED;
	default:
		return CHAKONG__V1__ACTION_OUTCOME__ACTION_REJECTED;
	}
}

static void
seal_freeze_ref(struct act *x)
{
	struct ck_ref ref;

	memset(&ref, 0, sizeof(ref));
	ref.type = CK_REF_FREEZE;
	ref.category = (uint8_t)x->r.category;
	ck_strlcpy(ref.source, x->r.source, sizeof(ref.source));
	ck_strlcpy(ref.asset_id, x->r.asset_id, sizeof(ref.asset_id));
	ck_strlcpy(ref.encumbrance_id, x->o.encumbrance_id,
	    sizeof(ref.encumbrance_id));
	ck_strlcpy(ref.case_number, x->r.case_number, sizeof(ref.case_number));
	ck_strlcpy(ref.court_id, x->r.court_id, sizeof(ref.court_id));
	memcpy(ref.debtor, x->r.debtor, sizeof(ref.debtor));
	ref.issued_at = ck_clock_now();
	if (ck_ref_seal(x->A->keys, &ref, x->o.freeze_ref,
	    &x->o.freeze_ref_len) != 0)
		x->o.freeze_ref_len = 0;
}

/* The debtor's cached results at this source are stale from now on
 * (cache.h): once as the action goes out, again as its answer comes. */
static void
cache_invalidate(const struct act *x)
{
	const struct req *r = &x->r;

	ck_cache_invalidate(x->A->cache, r->resident_id[0] ? r->resident_id :
	    r->uscc, r->source);
}

void
ck_actions_set_cache(struct ck_actions *A, struct ck_cache *cache)
{
	if (A != NULL)
		A->cache = cache;
}

static void
on_agency_done(void *arg, const struct ck_result *res)
{
	struct act *x = arg;
	struct ck_actions *A = x->A;
	const struct ck_action_result *ar = res->action;

	x->handle = NULL;
	if (x->timer != NULL)
		evtimer_del(x->timer);
	cache_invalidate(x);	/* before any reply goes out */
	if (res->error == 0 && ar != NULL) {
		struct outcome *o = &x->o;

		o->status = map_outcome(ar->status);
		copy(o->encumbrance_id, sizeof(o->encumbrance_id),
		    ar->encumbrance_id != NULL && ar->encumbrance_id[0] ?
		    ar->encumbrance_id : x->r.encumbrance_id);
		o->frozen_fen = ar->frozen_fen;
		o->queued_fen = ar->queued_fen;
		o->deducted_fen = ar->deducted_fen;
		copy(o->effective, sizeof(o->effective), ar->effective_date);
		copy(o->expiry, sizeof(o->expiry), ar->expiry_date);
		o->queue_position = ar->queue_position;
		copy(o->transfer_id, sizeof(o->transfer_id), ar->transfer_id);
		copy(o->reason, sizeof(o->reason), ar->reason);
		if (x->r.m == M_FREEZE && o->status !=
		    CHAKONG__V1__ACTION_OUTCOME__ACTION_REJECTED)
			seal_freeze_ref(x);
		log_info(x->log_id, "%s via %s: outcome %d after %d "
		    "attempt%s", method_name(x->r.m), x->r.source, o->status,
		    x->attempts, x->attempts == 1 ? "" : "s");
		ck_crashpoint("before_outcome");
		/* the answer may ride on the next commit: a re-send after a
		 * crash is de-duplicated by the agency anyway */
		reply(x, o->status);
		if (ck_store_submit(A->store, outcome_job, on_outcome_saved,
		    x) != 0)
			resolver_schedule(x);
		return;
	}
	if (res->delivery == CK_DELIVERY_ANSWERED &&
	    res->error == CK_SOURCE_ERROR) {
		/* the agency answered with an error: it did not act */
		x->o.status = CHAKONG__V1__ACTION_OUTCOME__ACTION_REJECTED;
		copy(x->o.reason, sizeof(x->o.reason), res->message);
		reply(x, x->o.status);
		if (ck_store_submit(A->store, outcome_job, on_outcome_saved,
		    x) != 0)
			resolver_schedule(x);
		return;
	}
	if (res->delivery == CK_DELIVERY_NOT_SENT && !x->resolving) {
		char msg[300];

		A->not_sent++;
		snprintf(msg, sizeof(msg), "the agency was not reached (%s); "
		    "nothing was done: retry with the same request_id",
		    res->message != NULL ? res->message : "not delivered");
		reply_fail(x, CK_GRPC_UNAVAILABLE, msg);
		if (ck_store_submit(A->store, not_sent_job, on_not_sent_saved,
		    x) != 0)
			act_free(x);
		return;
	}
	/* unknown: the agency may have acted. Never "failed". */
	A->unknown++;
	if (A->audit != NULL) {
		struct ck_audit_rec a;

		audit_agency(x, CHAKONG__V1__ACTION_OUTCOME__ACTION_PENDING,
		    "no answer: outcome unknown, pending", &a);
		ck_audit_submit(A->audit, &a);
	}
	log_notice(x->log_id, "%s via %s: outcome unknown (%s); pending",
	    method_name(x->r.m), x->r.source,
	    res->message != NULL ? res->message : "no answer");
	reply(x, CHAKONG__V1__ACTION_OUTCOME__ACTION_PENDING);
	resolver_schedule(x);
}

/* The caller's deadline nears and the agency has not answered: tell the
 * caller PENDING (the intent is durable) and keep waiting. */
static void
on_reply_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct act *x = arg;

	(void)fd;
	(void)what;
	reply(x, CHAKONG__V1__ACTION_OUTCOME__ACTION_PENDING);
}

static void
send_action(struct act *x)
{
	struct ck_actions *A = x->A;
	struct ck_agency_call ac;
	struct req *r = &x->r;
	uint64_t budget = 10000000u;	/* 10 s for the resolver's sends */
	int rv;

	if (A->closing) {
		act_free(x);
		return;
	}
	x->ad = adapter_for(A, r->source, op_of(r->m));
	if (x->ad == NULL) {
		/* the source is gone from the config: nothing can be sent */
		struct ck_result res = { .size = sizeof(res),
			.error = CK_SOURCE_UNAVAILABLE,
			.delivery = CK_DELIVERY_NOT_SENT,
			.message = "no adapter serves this source for this "
			    "action" };
		on_agency_done(x, &res);
		return;
	}
	memset(&ac, 0, sizeof(ac));
	ac.size = sizeof(ac);
	ac.op = op_of(r->m);
	ac.log_id = x->log_id;
	ac.broker_id = A->cfg->broker_id;
	ac.court_id = r->court_id;
	ac.officer_id = r->officer;
	ac.case_number = r->case_number;
	ac.document_number = r->document;
	ac.idempotency_key = r->idem;
	ac.origin = ck_origin_name(x->resolving ? CK_ORIGIN_RESOLVER :
	    x->origin);
	ac.resident_id = r->resident_id[0] ? r->resident_id : NULL;
	ac.uscc = r->uscc[0] ? r->uscc : NULL;
	ac.name = r->name;
	ac.source = r->source;
	ac.asset_id = r->asset_id;
	ac.encumbrance_id = r->encumbrance_id;
	ac.amount_fen = r->amount_fen;
	ac.currency = r->currency;
	ac.duration_days = r->duration_days;
	ac.custody_bank = r->custody_bank;
	ac.custody_account = r->custody_account;
	if (x->call != NULL) {
		uint64_t now = ck_mono_usec();
		uint64_t margin = (uint64_t)A->cfg->query_margin_ms * 1000u;

		/* answer the caller before its deadline; the agency call may
		 * run on past it (its outcome matters either way) */
		if (x->call->deadline > now + 2 * margin) {
			uint64_t left = x->call->deadline - now - margin;
			struct timeval tv = {
				.tv_sec = (time_t)(left / 1000000u),
				.tv_usec = (suseconds_t)(left % 1000000u),
			};
			evtimer_add(x->timer, &tv);
		} else {
			reply(x, CHAKONG__V1__ACTION_OUTCOME__ACTION_PENDING);
		}
	}
	ac.timeout_usec = budget;
	x->attempts++;
	cache_invalidate(x);	/* a query racing the action is not kept */
	x->sent_at = ck_mono_usec();
	rv = x->ad->ops->start(x->ad->self, &ac, on_agency_done, x,
	    &x->handle);
	if (rv != 0) {
		struct ck_result res = { .size = sizeof(res),
			.error = CK_SOURCE_ERROR,
			.delivery = CK_DELIVERY_NOT_SENT,
			.message = "the adapter refused the call" };
		x->handle = NULL;
		on_agency_done(x, &res);
		return;
	}
	ck_crashpoint("after_send");
}

/* ---- the resolver ------------------------------------------------------ */

static void
on_resolve(evutil_socket_t fd, short what, void *arg)
{
	struct act *x = arg;

	(void)fd;
	(void)what;
	x->A->resends++;
	send_action(x);
}

static void
resolver_schedule(struct act *x)
{
	struct ck_actions *A = x->A;
	uint32_t max = A->cfg->resolver_max_backoff_s, s;

	if (A->closing) {
		act_free(x);
		return;
	}
	x->resolving = true;
	if (!x->counted) {
		x->counted = true;
		A->npending++;
	}
	x->call = NULL;
	s = x->attempts >= 6 ? 64 : 1u << x->attempts;	/* 2, 4, ... */
	if (s > max)
		s = max;
	/* full jitter keeps a crowd of pending actions from re-sending in
	 * step after an outage */
	struct timeval tv = { .tv_sec = 0,
		.tv_usec = (suseconds_t)((uint64_t)(rand() % 1000) * s * 1000) };
	tv.tv_sec = tv.tv_usec / 1000000;
	tv.tv_usec %= 1000000;
	if (x->timer == NULL)
		return;
	event_assign(x->timer, A->base, -1, 0, on_resolve, x);
	evtimer_add(x->timer, &tv);
}

/* ---- the flow of one interactive action -------------------------------- */

static void
on_intent_saved(void *arg, int rc)
{
	struct act *x = arg;
	struct ck_actions *A = x->A;

	if (rc == 0 && x->audited && x->call != NULL)
		x->call->audit_done = true;
	switch (x->verdict) {
	case V_REFUSED:
		A->refused++;
		reply_fail(x, x->grpc, x->msg);
		act_free(x);
		return;
	case V_CONFLICT:
		A->conflicts++;
		reply_fail(x, CK_GRPC_ALREADY_EXISTS, "request_id: already "
		    "used by this caller for a request with other arguments");
		act_free(x);
		return;
	case V_REPLAY:
		A->replays++;
		reply(x, x->o.status);
		act_free(x);
		return;
	case V_INFLIGHT:
		A->replays++;
		reply(x, CHAKONG__V1__ACTION_OUTCOME__ACTION_PENDING);
		act_free(x);
		return;
	case V_DONE:
		if (rc == 0) {
			A->finals++;
			reply(x, 0);
		} else {
			reply_fail(x, CK_GRPC_UNAVAILABLE, "the journal cannot "
			    "be written; nothing was done");
		}
		act_free(x);
		return;
	case V_PROCEED:
		break;
	}
	if (rc != 0) {
		A->last_store_error = rc;
		reply_fail(x, CK_GRPC_UNAVAILABLE, "the journal cannot be "
		    "written; nothing was done");
		act_free(x);
		return;
	}
	A->last_store_error = 0;
	A->intents++;
	ck_crashpoint("after_intent_sync");
	send_action(x);
}

static struct act *
act_new(struct ck_actions *A, struct ck_call *call)
{
	struct act *x = calloc(1, sizeof(*x));

	if (x == NULL)
		return NULL;
	x->A = A;
	x->call = call;
	x->timer = evtimer_new(A->base, on_reply_deadline, x);
	if (x->timer == NULL) {
		free(x);
		return NULL;
	}
	TAILQ_INSERT_TAIL(&A->live, x, link);
	return x;
}

static void
submit(struct ck_actions *A, struct act *x)
{
	struct ck_call *call = x->call;

	digest(&x->r);
	idempotency_key(&x->r, A->cfg->broker_id);
	call->handler_data = x;
	call->on_cancel = on_call_cancel;
	if (ck_store_submit(A->store, intent_job, on_intent_saved, x) != 0) {
		reply_fail(x, CK_GRPC_RESOURCE_EXHAUSTED, "server out of "
		    "memory");
		act_free(x);
	}
}

static struct act *
begin(struct ck_actions *A, struct ck_call *call)
{
	struct act *x;
	const char *why;

	if (!ck_actions_ready(A, &why)) {
		ck_call_fail(call, CK_GRPC_UNAVAILABLE, "%s", why);
		return NULL;
	}
	x = act_new(A, call);
	if (x == NULL)
		ck_call_fail(call, CK_GRPC_RESOURCE_EXHAUSTED,
		    "server out of memory");
	return x;
}

static void
too_long(struct ck_call *call, struct act *x)
{
	ck_call_fail(call, CK_GRPC_INVALID_ARGUMENT, "a field is longer than "
	    "this broker keeps");
	x->call = NULL;
	act_free(x);
}

void
ck_actions_freeze(struct ck_actions *A, struct ck_call *call,
    const Chakong__V1__FreezeRequest *req, const struct ck_case *kase,
    const struct ck_ref *ref)
{
	struct act *x;
	struct req *r;

	if (ref->category == CK_CATEGORY_DEPOSIT && req->amount == NULL) {
		ck_call_fail(call, CK_GRPC_INVALID_ARGUMENT, "amount: required "
		    "for a deposit freeze");
		return;
	}
	if (ref->category != CK_CATEGORY_DEPOSIT &&
	    ref->category != CK_CATEGORY_REAL_ESTATE &&
	    ref->category != CK_CATEGORY_VEHICLE) {
		ck_call_fail(call, CK_GRPC_FAILED_PRECONDITION, "asset_ref: "
		    "names a record, not an asset that can be frozen");
		return;
	}
	if ((x = begin(A, call)) == NULL)
		return;
	r = &x->r;
	if (!req_common(x, call, M_FREEZE, req->request_id, kase, req->case_,
	    req->debtor, req->document_number) || !req_target(r, ref)) {
		too_long(call, x);
		return;
	}
	if (!duration_ok(ref->category, &r->today, req->duration_days)) {
		ck_call_fail(call, CK_GRPC_FAILED_PRECONDITION,
		    "duration_days: %s, counted in calendar dates (UTC+8)",
		    kind_rule(ref->category));
		x->call = NULL;
		act_free(x);
		return;
	}
	r->duration_days = req->duration_days;
	if (req->amount != NULL) {
		r->amount_fen = req->amount->fen;
		copy(r->currency, sizeof(r->currency),
		    req->amount->currency[0] ? req->amount->currency : "CNY");
	}
	submit(A, x);
}

/* An action on an existing freeze: the request's common part and the
 * freeze its reference names; NULL when answered already. */
static struct act *
begin_on_freeze(struct ck_actions *A, struct ck_call *call, enum method m,
    const char *request_id, const struct ck_case *kase,
    const Chakong__V1__CaseRef *c, const Chakong__V1__Debtor *d,
    const char *doc, const struct ck_ref *ref)
{
	struct act *x = begin(A, call);

	if (x == NULL)
		return NULL;
	if (!req_common(x, call, m, request_id, kase, c, d, doc) ||
	    !req_target(&x->r, ref)) {
		too_long(call, x);
		return NULL;
	}
	return x;
}

void
ck_actions_extend(struct ck_actions *A, struct ck_call *call,
    const Chakong__V1__ExtendRequest *req, const struct ck_case *kase,
    const struct ck_ref *ref)
{
	struct act *x = begin_on_freeze(A, call, M_EXTEND, req->request_id,
	    kase, req->case_, req->debtor, req->document_number, ref);

	if (x == NULL)
		return;
	x->r.duration_days = req->duration_days;
	submit(A, x);
}

void
ck_actions_release(struct ck_actions *A, struct ck_call *call,
    const Chakong__V1__ReleaseRequest *req, const struct ck_case *kase,
    const struct ck_ref *ref)
{
	struct act *x = begin_on_freeze(A, call, M_RELEASE, req->request_id,
	    kase, req->case_, req->debtor, req->document_number, ref);

	if (x != NULL)
		submit(A, x);
}

void
ck_actions_deduct(struct ck_actions *A, struct ck_call *call,
    const Chakong__V1__DeductRequest *req, const struct ck_case *kase,
    const struct ck_ref *ref)
{
	const struct ck_court *court;
	struct act *x;

	court = ck_config_court_by_id(call->cfg, call->peer->id);
	if (court == NULL || court->custody_account[0] == '\0') {
		ck_call_fail(call, CK_GRPC_FAILED_PRECONDITION, "this court "
		    "has no custody account configured; deductions go only "
		    "there");
		return;
	}
	x = begin_on_freeze(A, call, M_DEDUCT, req->request_id, kase,
	    req->case_, req->debtor, req->document_number, ref);
	if (x == NULL)
		return;
	x->r.amount_fen = req->amount->fen;
	copy(x->r.currency, sizeof(x->r.currency),
	    req->amount->currency[0] ? req->amount->currency : "CNY");
	copy(x->r.custody_bank, sizeof(x->r.custody_bank),
	    court->custody_bank);
	copy(x->r.custody_account, sizeof(x->r.custody_account),
	    court->custody_account);
	submit(A, x);
}

void
ck_actions_update_claim(struct ck_actions *A, struct ck_call *call,
    const Chakong__V1__UpdateClaimRequest *req, const struct ck_case *kase)
{
	struct act *x;

	if ((x = begin(A, call)) == NULL)
		return;
	if (!req_common(x, call, M_CLAIM, req->request_id, kase, req->case_,
	    NULL, req->document_number) ||
	    !copy(x->r.reason, sizeof(x->r.reason), req->reason)) {
		too_long(call, x);
		return;
	}
	x->r.amount_fen = req->new_claim->fen;
	copy(x->r.currency, sizeof(x->r.currency),
	    req->new_claim->currency[0] ? req->new_claim->currency : "CNY");
	log_notice(call->log_id, "UpdateClaim case=%s officer=%s new=%lld",
	    kase->norm, x->r.officer, (long long)x->r.amount_fen);
	submit(A, x);
}

/* ---- what queries teach us --------------------------------------------- */

/*
 * Agencies change our freezes on their own: a queued freeze is promoted
 * when the one before it ends, a partial one captures later deposits. A
 * Query shows that; keep the freeze records (which the deduction limit and
 * the expiry watch read) in step.
 */
struct observed {
	struct ck_actions *A;
	char key[200];
	size_t klen;
	int64_t frozen_fen, queued_fen;
	char effective[16], expiry[16];
	int32_t queue_position;
};

static int
observe_job(MDB_txn *txn, void *arg)
{
	struct observed *ob = arg;
	MDB_dbi fdb = ck_store_dbi(ob->A->store, DB_FREEZES);
	FreezeRecord *fr = NULL;
	char *eff, *exp;
	int rc;

	rc = get(txn, fdb, ob->key, ob->klen,
	    &chakong__internal__v1__freeze_record__descriptor,
	    (ProtobufCMessage **)&fr);
	if (rc != 0)
		return rc;
	eff = fr->effective_date;
	exp = fr->expiry_date;
	fr->frozen_fen = ob->frozen_fen;
	fr->queued_fen = ob->queued_fen;
	fr->effective_date = ob->effective;
	fr->expiry_date = ob->expiry;
	fr->queue_position = ob->queue_position;
	fr->updated_at = ck_clock_now();
	rc = put(txn, fdb, ob->key, ob->klen, &fr->base);
	fr->effective_date = eff;
	fr->expiry_date = exp;
	protobuf_c_message_free_unpacked(&fr->base, NULL);
	return rc;
}

static void
on_observed(void *arg, int rc)
{
	(void)rc;	/* lossy: the next query tries again */
	free(arg);
}

void
ck_actions_observe(struct ck_actions *A, const char *source,
    const struct ck_encumbrance *e)
{
	struct observed *ob;
	FreezeRecord *fr = NULL;
	MDB_txn *txn;
	bool same;

	if (A == NULL || A->closing || e->encumbrance_id == NULL)
		return;
	ob = calloc(1, sizeof(*ob));
	if (ob == NULL)
		return;
	ob->A = A;
	ob->klen = freeze_key(ob->key, sizeof(ob->key), source,
	    e->encumbrance_id);
	if (ob->klen == 0 || ck_store_read_begin(A->store, &txn) != 0) {
		free(ob);
		return;
	}
	if (get(txn, ck_store_dbi(A->store, DB_FREEZES), ob->key, ob->klen,
	    &chakong__internal__v1__freeze_record__descriptor,
	    (ProtobufCMessage **)&fr) != 0 || !fr->active) {
		ck_store_read_end(txn);
		if (fr != NULL)
			protobuf_c_message_free_unpacked(&fr->base, NULL);
		free(ob);
		return;	/* not ours */
	}
	ob->frozen_fen = e->frozen_fen;
	ob->queued_fen = e->queued_fen;
	ob->queue_position = e->queue_position;
	copy(ob->effective, sizeof(ob->effective), e->effective_date);
	copy(ob->expiry, sizeof(ob->expiry), e->expiry_date);
	same = fr->frozen_fen == ob->frozen_fen &&
	    fr->queued_fen == ob->queued_fen &&
	    fr->queue_position == ob->queue_position &&
	    strcmp(fr->effective_date, ob->effective) == 0 &&
	    strcmp(fr->expiry_date, ob->expiry) == 0;
	protobuf_c_message_free_unpacked(&fr->base, NULL);
	ck_store_read_end(txn);
	if (same || ck_store_submit(A->store, observe_job, on_observed,
	    ob) != 0)
		free(ob);
}

/* ---- start-up, shutdown, status ---------------------------------------- */

static bool
restore(struct ck_actions *A, struct act *x, const JournalRecord *rec)
{
	struct req *r = &x->r;
	SealedCall *sc;
	uint8_t *plain;
	size_t plen;
	bool ok = false;

	if (rec->sealed_call.len < CK_BOX_OVERHEAD)
		return false;
	plain = malloc(rec->sealed_call.len);
	if (plain == NULL)
		return false;
	if (ck_box_open(A->keys, rec->sealed_call.data, rec->sealed_call.len,
	    plain, &plen) != 0)
		goto out;
	sc = chakong__internal__v1__sealed_call__unpack(NULL, plen, plain);
	if (sc == NULL)
		goto out;
	r->m = (enum method)rec->method;
	ok = copy(r->caller, sizeof(r->caller), rec->caller) &&
	    copy(r->request_id, sizeof(r->request_id), rec->request_id) &&
	    copy(r->case_number, sizeof(r->case_number), rec->case_number) &&
	    copy(r->source, sizeof(r->source), rec->source) &&
	    copy(r->asset_id, sizeof(r->asset_id), rec->asset_id) &&
	    copy(r->encumbrance_id, sizeof(r->encumbrance_id),
	    rec->encumbrance_id) &&
	    copy(r->currency, sizeof(r->currency), rec->currency) &&
	    copy(r->resident_id, sizeof(r->resident_id), sc->resident_id) &&
	    copy(r->uscc, sizeof(r->uscc), sc->uscc) &&
	    copy(r->name, sizeof(r->name), sc->name) &&
	    copy(r->officer, sizeof(r->officer), sc->officer_id) &&
	    copy(r->document, sizeof(r->document), sc->document_number) &&
	    copy(r->court_id, sizeof(r->court_id), sc->court_id) &&
	    copy(r->custody_bank, sizeof(r->custody_bank), sc->custody_bank) &&
	    copy(r->custody_account, sizeof(r->custody_account),
	    sc->custody_account);
	r->category = rec->category;
	r->amount_fen = rec->amount_fen;
	r->duration_days = rec->duration_days;
	if (rec->digest.len == sizeof(r->digest))
		memcpy(r->digest, rec->digest.data, sizeof(r->digest));
	ck_ref_debtor_hash(A->keys, 0, r->resident_id[0] ? r->resident_id :
	    r->uscc, r->debtor);
	idempotency_key(r, A->cfg->broker_id);
	x->attempts = rec->attempts;
	x->reserved = rec->reserved_fen;
	x->keylen = (size_t)snprintf(x->key, sizeof(x->key), "%s%c%s",
	    r->caller, 0, r->request_id);
	snprintf(x->log_id, sizeof(x->log_id), "resume-%llu",
	    (unsigned long long)A->npending + 1);
	protobuf_c_message_free_unpacked(&sc->base, NULL);
out:
	explicit_bzero(plain, rec->sealed_call.len);
	free(plain);
	return ok;
}

/* Every PENDING record goes to the resolver: the agency gets the same
 * idempotency key again and tells us what it did. */
static int
resume_pending(struct ck_actions *A)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, n = 0;

	if ((rc = ck_store_read_begin(A->store, &txn)) != 0)
		return rc;
	rc = mdb_cursor_open(txn, ck_store_dbi(A->store, DB_JOURNAL), &cur);
	if (rc != 0) {
		ck_store_read_end(txn);
		return ck_mdb_err(rc, "cursor");
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		JournalRecord *rec = (JournalRecord *)unpack(
		    &chakong__internal__v1__journal_record__descriptor, &v);
		struct act *x;

		if (rec == NULL)
			continue;
		if (rec->state ==
		    CHAKONG__INTERNAL__V1__JOURNAL_STATE__JOURNAL_PENDING &&
		    (x = act_new(A, NULL)) != NULL) {
			if (restore(A, x, rec)) {
				x->resolving = true;
				x->counted = true;
				A->npending++;
				x->attempts = x->attempts > 0 ? x->attempts : 0;
				struct timeval tv = { 0, 1000 * (n % 50) };
				event_assign(x->timer, A->base, -1, 0,
				    on_resolve, x);
				evtimer_add(x->timer, &tv);
				n++;
			} else {
				log_err(NULL, "journal: a pending record cannot "
				    "be restored (key rotated away?); left "
				    "PENDING for an operator");
				act_free(x);
			}
		}
		protobuf_c_message_free_unpacked(&rec->base, NULL);
	}
	mdb_cursor_close(cur);
	ck_store_read_end(txn);
	if (n > 0)
		log_notice(NULL, "journal: resuming %d pending action%s", n,
		    n == 1 ? "" : "s");
	return 0;
}

int
ck_actions_open(struct event_base *base, struct ck_config *cfg,
    struct ck_adapters *adapters, struct ck_refkeys *keys,
    struct ck_actions **out, char *err, size_t errlen)
{
	struct ck_store_opts o = {
		.path = cfg->state_dir,
		.map_size = (size_t)cfg->state_map_mb << 20,
		.durable = true,
		.dbs = dbnames,
		.ndbs = CK_ARRAY_SIZE(dbnames),
		.discard_if_damaged = false,
	};
	struct ck_actions *A;
	int rc;

	*out = NULL;
	if (keys == NULL) {
		snprintf(err, errlen, "%s: [agencies] ref_key is required for "
		    "the journal", cfg->path);
		return CK_ECONFIG;
	}
	A = calloc(1, sizeof(*A));
	if (A == NULL)
		return CK_ENOMEM;
	A->base = base;
	A->cfg = ck_config_ref(cfg);
	A->adapters = adapters;
	A->keys = keys;
	TAILQ_INIT(&A->live);
	rc = ck_store_open(base, &o, &A->store, err, errlen);
	if (rc != 0) {
		ck_config_free(A->cfg);
		free(A);
		return rc;
	}
	struct ck_audit_opts ao = {
		.checkpoint_records = cfg->audit_checkpoint_records,
		.checkpoint_interval_s = cfg->audit_checkpoint_interval_s,
		.flush_ms = cfg->audit_flush_ms,
		.key_file = cfg->key,
		.keys = keys,
	};
	rc = ck_audit_open(base, A->store, ck_store_dbi(A->store, DB_AUDIT),
	    &ao, &A->audit, err, errlen);
	if (rc != 0) {
		ck_store_close(A->store);
		ck_config_free(A->cfg);
		free(A);
		return rc;
	}
	rc = resume_pending(A);
	if (rc != 0) {
		snprintf(err, errlen, "%s: cannot read the journal",
		    cfg->state_dir);
		ck_actions_close(A);
		return rc;
	}
	*out = A;
	return 0;
}

void
ck_actions_close(struct ck_actions *A)
{
	struct act *x;

	if (A == NULL)
		return;
	A->closing = true;
	ck_audit_finish(A->audit);	/* the last records, a checkpoint */
	ck_store_close(A->store);	/* runs the last done() callbacks */
	while ((x = TAILQ_FIRST(&A->live)) != NULL)
		act_free(x);	/* pending ones stay PENDING in the journal */
	ck_audit_close(A->audit);
	ck_config_free(A->cfg);
	free(A);
}

struct ck_audit *
ck_actions_audit(const struct ck_actions *A)
{
	return A != NULL ? A->audit : NULL;
}

void
ck_actions_reload(struct ck_actions *A, struct ck_config *cfg)
{
	if (A == NULL)
		return;
	ck_config_free(A->cfg);
	A->cfg = ck_config_ref(cfg);
}

bool
ck_actions_ready(const struct ck_actions *A, const char **why)
{
	if (A == NULL) {
		*why = "no journal (state_dir) is open";
		return false;
	}
	if (A->last_store_error == CK_ELIMIT) {
		*why = "the state store is full: cannot journal";
		return false;
	}
	if (A->last_store_error != 0) {
		*why = "the state store cannot be written: cannot journal";
		return false;
	}
	return true;
}

struct ck_store *
ck_actions_store(struct ck_actions *A)
{
	return A != NULL ? A->store : NULL;
}

int
ck_actions_each_freeze(struct ck_actions *A,
    void (*cb)(void *arg, const struct ck_freeze_view *f), void *arg)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	if ((rc = ck_store_read_begin(A->store, &txn)) != 0)
		return rc;
	rc = mdb_cursor_open(txn, ck_store_dbi(A->store, DB_FREEZES), &cur);
	if (rc != 0) {
		ck_store_read_end(txn);
		return ck_mdb_err(rc, "cursor");
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		FreezeRecord *fr = (FreezeRecord *)unpack(
		    &chakong__internal__v1__freeze_record__descriptor, &v);
		struct ck_freeze_view f;

		if (fr == NULL)
			continue;
		f = (struct ck_freeze_view){
			.source = fr->source,
			.encumbrance_id = fr->encumbrance_id,
			.case_number = fr->case_number,
			.court_id = fr->court_id,
			.category = fr->category,
			.asset_id = fr->asset_id,
			.effective_date = fr->effective_date,
			.expiry_date = fr->expiry_date,
			.frozen_fen = fr->frozen_fen,
			.queued_fen = fr->queued_fen,
			.debtor_hash = fr->debtor_hash.len == 16 ?
			    fr->debtor_hash.data : NULL,
			.active = fr->active,
		};
		cb(arg, &f);
		protobuf_c_message_free_unpacked(&fr->base, NULL);
	}
	mdb_cursor_close(cur);
	ck_store_read_end(txn);
	return 0;
}

void
ck_actions_write_json(const struct ck_actions *A, struct evbuffer *out)
{
	struct ck_store_stats st;

	if (A == NULL) {
		evbuffer_add_printf(out, "null");
		return;
	}
	ck_store_get_stats(A->store, &st);
	evbuffer_add_printf(out,
	    "{\"intents\":%llu,\"finals\":%llu,\"pending\":%u,"
	    "\"refused\":%llu,\"conflicts\":%llu,\"replays\":%llu,"
	    "\"resends\":%llu,\"not_sent\":%llu,\"unknown\":%llu,"
	    "\"journal\":{\"commits\":%llu,\"jobs\":%llu,\"max_batch\":%llu,"
	    "\"commit_ms_max\":%.3f,\"used_bytes\":%zu,\"map_bytes\":%zu}",
	    (unsigned long long)A->intents, (unsigned long long)A->finals,
	    A->npending, (unsigned long long)A->refused,
	    (unsigned long long)A->conflicts, (unsigned long long)A->replays,
	    (unsigned long long)A->resends, (unsigned long long)A->not_sent,
	    (unsigned long long)A->unknown, (unsigned long long)st.commits,
	    (unsigned long long)st.jobs, (unsigned long long)st.max_batch,
	    (double)st.commit_usec_max / 1000.0, st.used_bytes, st.map_size);
	if (A->audit != NULL) {
		struct ck_audit_stats as;
		const char *why = "";

		ck_audit_get_stats(A->audit, &as);
		evbuffer_add_printf(out, ",\"audit\":{\"batched\":%llu,"
		    "\"written\":%llu,\"failed\":%llu,\"checkpoints\":%llu,"
		    "\"ok\":%s}", (unsigned long long)as.submitted,
		    (unsigned long long)as.written,
		    (unsigned long long)as.failed,
		    (unsigned long long)as.checkpoints,
		    ck_audit_ready(A->audit, &why) ? "true" : "false");
	}
	evbuffer_add(out, "}", 1);
}
