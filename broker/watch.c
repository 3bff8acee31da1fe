/*
 * watch.c: terminated cases under watch, findings and the expiry watch
 * (see watch.h for the databases and an enrollment's life).
 *
 * A scheduled re-query (a "run"):
 *
 *   the first `due` key is due, in the window, a token and a slot free
 *     --> QUERYING (a Query through fanout.c, as a call with no stream,
 *         origin scheduled) --answered--> RECORDING (one write job: the
 *         findings, the seen assets, the next due key) --committed-->
 *         freed; the scheduler looks again
 *   a run the policy refuses goes straight to RECORDING (a RESULT saying
 *   why, the due date consumed).
 *
 * While a run is in flight its due key stays where it was, so a crash at
 * any point re-runs that due date at the next start and nothing is lost;
 * the record job checks the enrollment has not moved on, so nothing runs
 * twice in one process.
 */
#include "watch.h"

#include <endian.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/evp.h>

#include "actions.h"
#include "arena.h"
#include "audit.h"
#include "chakong/adapter.h"
#include "clock.h"
#include "config.h"
#include "grpc_frame.h"
#include "log.h"
#include "policy.h"
#include "record.h"
#include "ref.h"
#include "state.pb-c.h"
#include "store.h"
#include "util.h"

typedef Chakong__Internal__V1__EnrollmentRecord EnrollmentRecord;
typedef Chakong__Internal__V1__FindingRecord FindingRecord;
typedef Chakong__Internal__V1__WatchRequestRecord RequestRecord;
typedef Chakong__Internal__V1__WatchCounters Counters;
typedef Chakong__Internal__V1__SeenAsset SeenAsset;
typedef Chakong__Internal__V1__SealedCall SealedCall;

enum { DB_ENROLL, DB_BYCASE, DB_DUE, DB_FINDINGS, DB_REQUESTS, DB_EXPIRING,
	DB_META, NDB };

#define ST_ACTIVE CHAKONG__INTERNAL__V1__ENROLLMENT_STATE__ENROLLMENT_ACTIVE
#define ST_RESTORED \
	CHAKONG__INTERNAL__V1__ENROLLMENT_STATE__ENROLLMENT_RESTORED
#define ST_CLOSED CHAKONG__INTERNAL__V1__ENROLLMENT_STATE__ENROLLMENT_CLOSED
#define ST_COMPLETED \
	CHAKONG__INTERNAL__V1__ENROLLMENT_STATE__ENROLLMENT_COMPLETED
#define K_RESULT CHAKONG__INTERNAL__V1__FINDING_KIND__FINDING_RESULT
#define K_FOUND CHAKONG__INTERNAL__V1__FINDING_KIND__FINDING_FOUND
#define K_EXPIRING CHAKONG__INTERNAL__V1__FINDING_KIND__FINDING_EXPIRING

#define ID_LEN 16		/* hex characters of an enrollment id */
#define DUE_KEY_LEN (8 + ID_LEN)
#define MAX_DUES 240
#define LIST_SCAN_MAX 20000	/* records one ListFindings page may skip */
#define CST_OFFSET (8 * 3600)

enum run_state { RUN_QUERYING, RUN_RECORDING };

/* One asset a re-query saw. */
struct seen {
	uint8_t hash[16];		/* keyed hash of source "\0" asset id */
	int64_t available;		/* deposits; -1 for other assets */
	uint8_t *blob;			/* a packed QueryReply of this asset */
	size_t bloblen;
	char what[96];			/* "deposit at bank:icbc" */
};

struct run {
	struct ck_call call;		/* the Query, with no stream */
	struct ck_watch *W;
	enum run_state state;
	char id[ID_LEN + 1];
	char log_id[32];
	struct ck_arena *arena;
	struct ck_config *cfg;		/* held for the call's life */
	struct ck_identity peer;
	/* the enrollment as read when the run started */
	char court[32], officer[40], case_number[96];
	char resident_id[24], uscc[24], name[136];
	uint32_t categories;
	bool baseline;
	int32_t done_before;		/* rec->done when started */
	int32_t idx;			/* the due date this run answers */
	int32_t skipped;		/* missed due dates it catches up */
	int32_t ndues;
	char due_date[16];
	int64_t due_key_time;		/* its key in `due` */
	int64_t threshold;		/* found_balance_fen */
	bool drop;			/* unreadable: only remove the due key */
	/* the outcome */
	char summary[400];
	uint8_t *sources;		/* packed QueryReply */
	size_t sources_len;
	struct seen *seen;
	size_t nseen;
	size_t nsources, nanswered, nassets;
	/* written by the record job */
	Counters out;
	size_t nfound;
	TAILQ_ENTRY(run) link;
};

TAILQ_HEAD(run_list, run);

enum job_kind { J_ENROLL, J_END, J_ACK, J_EXPIRY };

struct candidate {
	char key[300];
	size_t klen;
	char court[32], case_number[96], expiry[16], summary[200];
	uint8_t ref[CK_REF_MAX_LEN];
	size_t reflen;
};

/* A write for an RPC (or the expiry watch), answered when committed. */
struct job {
	struct ck_watch *W;
	struct ck_call *call;		/* NULL once the call went away */
	enum job_kind kind;
	char key[200];			/* caller "\0" request_id */
	size_t keylen;
	uint8_t digest[32];
	char court[32];
	char case_number[96];
	/* Enroll */
	char id[ID_LEN + 1];
	uint8_t *rec;			/* packed EnrollmentRecord */
	size_t reclen;
	int64_t first_due;
	char dues[MAX_DUES][16];
	size_t ndues;
	/* EndEnrollment */
	int reason;
	char new_case[96];
	/* AckFindings */
	uint64_t *seqs;
	size_t nseqs;
	/* expiry */
	struct candidate *cands;
	size_t ncands;
	/* the answer */
	int code;
	char msg[256];
	int32_t count;
	bool replay;
	Counters out;
	TAILQ_ENTRY(job) link;
};

TAILQ_HEAD(job_list, job);

struct ck_watch {
	struct event_base *base;
	struct ck_config *cfg;
	struct ck_actions *actions;
	struct ck_store *store;
	const struct ck_fanout *fo;
	const struct ck_refkeys *keys;
	MDB_dbi db[NDB];
	struct event *timer;		/* the scheduler */
	struct event *expiry_timer;
	struct run_list runs;
	unsigned nruns;
	struct job_list jobs;		/* RPC jobs, to detach their calls */
	unsigned pending;		/* write jobs not yet done */
	bool closing;
	bool expiry_busy;
	double tokens;
	uint64_t tokens_at;		/* ck_mono_usec() of the last refill */
	Counters counters;		/* as of the last committed job */
	int64_t expiring_week;
	uint64_t seq;			/* run log ids */
	uint64_t started, recorded, found, refused, catchups, failed_runs;
	uint64_t expiring_made, baselines;
};

static void pick(struct ck_watch *W);
static void maybe_free(struct ck_watch *W);

/* ---- small things ------------------------------------------------------ */

static void
be64(uint8_t *p, uint64_t v)
{
	v = htobe64(v);
	memcpy(p, &v, 8);
}

static uint64_t
get_be64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return be64toh(v);
}

static void
due_key(uint8_t *k, int64_t t, const char *id)
{
	be64(k, (uint64_t)t);
	memcpy(k + 8, id, ID_LEN);
}

static size_t
finding_key(uint8_t *k, size_t len, const char *court, uint64_t seq)
{
	size_t n = strlen(court);

	if (n + 9 > len)
		return 0;
	memcpy(k, court, n);
	k[n] = 0;
	be64(k + n + 1, seq);
	return n + 9;
}

/* 00:00 UTC+8 of a date: when it becomes due. */
static int64_t
date_start(const struct ck_date *d)
{
	return ck_date_to_days(d) * 86400 - CST_OFFSET;
}

static int64_t
date_str_start(const char *s)
{
	struct ck_date d;
	char why[CK_WHY_MAX];

	if (!ck_valid_date(s, strlen(s), &d, why))
		return 0;
	return date_start(&d);
}

static void
date_str(const struct ck_date *d, char *out, size_t len)
{
	snprintf(out, len, "%04d-%02d-%02d", d->year % 10000, d->month,
	    d->day);
}

static void
sha256(const char *s, size_t n, uint8_t out[32])
{
	unsigned len = 32;

	EVP_Digest(s, n, out, &len, EVP_sha256(), NULL);
}

/* The digest of a request's meaning: its fields joined by 0x1f. */
static void
digest_fields(uint8_t out[32], const char *const *f, size_t n)
{
	char buf[2048];
	size_t len = 0;

	for (size_t i = 0; i < n; i++) {
		int w = snprintf(buf + len, sizeof(buf) - len, "%s\x1f",
		    f[i] != NULL ? f[i] : "");

		if (w < 0 || (size_t)w >= sizeof(buf) - len)
			break;
		len += (size_t)w;
	}
	sha256(buf, len, out);
}

static ProtobufCBinaryData
bin(uint8_t *p, size_t n)
{
	ProtobufCBinaryData b = { n, p };

	return b;
}

static int
get_counters(MDB_txn *txn, MDB_dbi db, Counters *out)
{
	Counters *c = NULL;
	int rc = ck_record_get(txn, db, "counters", 8,
	    &chakong__internal__v1__watch_counters__descriptor,
	    (ProtobufCMessage **)&c);

	chakong__internal__v1__watch_counters__init(out);
	if (rc == CK_ENOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	out->finding_seq = c->finding_seq;
	out->active = c->active;
	out->unread = c->unread;
	protobuf_c_message_free_unpacked(&c->base, NULL);
	return 0;
}

static int
put_counters(MDB_txn *txn, MDB_dbi db, const Counters *c)
{
	return ck_record_put(txn, db, "counters", 8, &c->base);
}

/* Add a finding under the next sequence number (writer thread). */
static int
add_finding(struct ck_watch *W, MDB_txn *txn, Counters *c, FindingRecord *f)
{
	uint8_t key[64];
	size_t klen;

	f->seq = ++c->finding_seq;
	f->created_at = ck_clock_now();
	klen = finding_key(key, sizeof(key), f->court_id, f->seq);
	if (klen == 0)
		return CK_EINVAL;
	c->unread++;
	return ck_record_put(txn, W->db[DB_FINDINGS], key, klen, &f->base);
}

/* A job that cannot read or write the store: the caller may retry. */
static int
unavailable(struct job *j, int rc)
{
	j->code = CK_GRPC_UNAVAILABLE;
	snprintf(j->msg, sizeof(j->msg), "the state store cannot be written; "
	    "retry with the same request_id");
	return rc != 0 ? rc : CK_ESTORE;
}

/*
 * Has this caller sent this request_id before? 0: no, go on. CK_EAGAIN:
 * yes, and j holds the recorded answer (or ALREADY_EXISTS when the
 * arguments differ); nothing to change. Other: the store failed.
 */
static int
request_check(struct ck_watch *W, MDB_txn *txn, struct job *j)
{
	RequestRecord *old = NULL;
	int rc = ck_record_get(txn, W->db[DB_REQUESTS], j->key, j->keylen,
	    &chakong__internal__v1__watch_request_record__descriptor,
	    (ProtobufCMessage **)&old);

	if (rc == CK_ENOTFOUND)
		return 0;
	if (rc != 0)
		return unavailable(j, rc);
	if (old->digest.len != 32 || memcmp(old->digest.data, j->digest,
	    32) != 0) {
		j->code = CK_GRPC_ALREADY_EXISTS;
		snprintf(j->msg, sizeof(j->msg), "request_id: already used "
		    "by this caller for a different request");
	} else {
		j->replay = true;
		j->count = old->count;
		ck_strlcpy(j->id, old->enrollment_id, sizeof(j->id));
		j->ndues = 0;
		for (size_t i = 0; i < old->n_due_dates && i < MAX_DUES; i++)
			ck_strlcpy(j->dues[j->ndues++], old->due_dates[i],
			    sizeof(j->dues[0]));
	}
	protobuf_c_message_free_unpacked(&old->base, NULL);
	return CK_EAGAIN;
}

static int
request_put(struct ck_watch *W, MDB_txn *txn, struct job *j,
    RequestRecord *r)
{
	r->method = (int32_t)j->kind + 1;
	r->digest = bin(j->digest, 32);
	r->created_at = ck_clock_now();
	return ck_record_put(txn, W->db[DB_REQUESTS], j->key, j->keylen,
	    &r->base);
}

/* ---- policy ------------------------------------------------------------ */

struct lookup_arg {
	const struct ck_config *cfg;
};

static const char *
lookup_court(const char *prefix, void *arg)
{
	const struct ck_court *c = ck_config_court_by_prefix(
	    ((struct lookup_arg *)arg)->cfg, prefix);

	return c != NULL ? c->id : NULL;
}

bool
ck_watch_policy_check(const struct ck_config *cfg, const char *court_id,
    const char *officer_id, const char *case_number, enum ck_origin origin,
    uint32_t *categories, char *why, size_t whylen)
{
	struct lookup_arg la = { cfg };
	struct ck_date today;
	struct ck_case kase;
	const char *owner = NULL;
	char w[CK_WHY_MAX];

	if (ck_config_court_by_id(cfg, court_id) == NULL) {
		snprintf(why, whylen, "the court is no longer configured");
		return false;
	}
	ck_date_from_unix_cst(ck_clock_now(), &today);
	if (!ck_valid_case_number(case_number, strlen(case_number), &today,
	    lookup_court, &la, &kase, &owner, w)) {
		snprintf(why, whylen, "case.case_number: %s", w);
		return false;
	}
	if (owner == NULL || strcmp(owner, court_id) != 0) {
		snprintf(why, whylen, "case.case_number: the case number's "
		    "prefix does not belong to the calling court");
		return false;
	}
	if (origin == CK_ORIGIN_SCHEDULED) {
		uint32_t allowed = ck_policy_categories(cfg->policy,
		    CK_ROLE_COURT, court_id, "Query");
		struct ck_policy_subject s = {
			.role = CK_ROLE_COURT,
			.id = court_id,
			.method = "Query",
			.officer_id = officer_id,
			.case_court = owner,
			.categories = *categories & allowed,
		};

		if (s.categories == 0) {
			snprintf(why, whylen, "right Query: court:%s may no "
			    "longer Query any enrolled category", court_id);
			return false;
		}
		if (ck_policy_check(cfg->policy, &s, why, whylen) != 0)
			return false;
		*categories = s.categories;
	}
	return true;
}

/* The agencies the enrolling court may still reach (policy.h). */
static bool
run_source_ok(const char *source, const void *arg)
{
	const struct run *r = arg;

	return ck_policy_source_allowed(r->cfg->policy, CK_ROLE_COURT,
	    r->court, source);
}

/* ---- RPC jobs: common ---------------------------------------------------- */

static void
on_job_cancel(struct ck_call *call)
{
	struct job *j = call->handler_data;

	j->call = NULL;
}

static void
job_free(struct job *j)
{
	free(j->rec);
	free(j->seqs);
	free(j->cands);
	free(j);
}

static struct job *
job_new(struct ck_watch *W, struct ck_call *call, enum job_kind kind,
    const char *request_id)
{
	struct job *j = calloc(1, sizeof(*j));

	if (j == NULL)
		return NULL;
	j->W = W;
	j->kind = kind;
	if (call != NULL) {
		int n = snprintf(j->key, sizeof(j->key), "%s%c%s",
		    call->peer->name, 0, request_id);

		if (n < 0 || (size_t)n >= sizeof(j->key)) {
			free(j);
			return NULL;
		}
		j->keylen = (size_t)n;
		j->call = call;
		ck_strlcpy(j->court, call->peer->id, sizeof(j->court));
	}
	return j;
}

/* Counters from a committed job become the loop's snapshot. */
static void
take_counters(struct ck_watch *W, const Counters *c)
{
	if (c->finding_seq >= W->counters.finding_seq) {
		W->counters.finding_seq = c->finding_seq;
		W->counters.active = c->active;
		W->counters.unread = c->unread;
	}
}

static void on_job_done(void *arg, int rc);

/* Queue j's write; the answer goes out from on_job_done(). */
static void
job_submit(struct job *j, ck_store_write_fn fn)
{
	struct ck_watch *W = j->W;

	if (j->call != NULL) {
		j->call->handler_data = j;
		j->call->on_cancel = on_job_cancel;
		TAILQ_INSERT_TAIL(&W->jobs, j, link);
	}
	W->pending++;
	if (ck_store_submit(W->store, fn, on_job_done, j) != 0) {
		W->pending--;
		if (j->call != NULL) {
			TAILQ_REMOVE(&W->jobs, j, link);
			j->call->on_cancel = NULL;
			ck_call_fail(j->call, CK_GRPC_RESOURCE_EXHAUSTED,
			    "server out of memory");
		}
		job_free(j);
	}
}

/* ---- Enroll ------------------------------------------------------------ */

static int
enroll_job(MDB_txn *txn, void *arg)
{
	struct job *j = arg;
	struct ck_watch *W = j->W;
	RequestRecord req = CHAKONG__INTERNAL__V1__WATCH_REQUEST_RECORD__INIT;
	EnrollmentRecord *er = NULL;
	char *dues[MAX_DUES];
	uint8_t dk[DUE_KEY_LEN];
	char bykey[200];
	int rc, n;
	MDB_val k, v = { 0, (void *)"" };

	if ((rc = request_check(W, txn, j)) != 0)
		return rc;
	rc = ck_record_get(txn, W->db[DB_ENROLL], j->id, ID_LEN,
	    &chakong__internal__v1__enrollment_record__descriptor,
	    (ProtobufCMessage **)&er);
	if (rc == 0) {
		j->code = CK_GRPC_FAILED_PRECONDITION;
		snprintf(j->msg, sizeof(j->msg), "case: this debtor of this "
		    "case is already enrolled (enrollment %s)", j->id);
		protobuf_c_message_free_unpacked(&er->base, NULL);
		return CK_EPERM;
	}
	if (rc != CK_ENOTFOUND)
		goto unavailable;
	k.mv_size = ID_LEN;
	k.mv_data = j->id;
	v.mv_size = j->reclen;
	v.mv_data = j->rec;
	if ((rc = ck_mdb_err(mdb_put(txn, W->db[DB_ENROLL], &k, &v, 0),
	    "put")) != 0)
		goto unavailable;
	due_key(dk, j->first_due, j->id);
	k.mv_size = sizeof(dk);
	k.mv_data = dk;
	v.mv_size = 0;
	v.mv_data = (void *)"";
	if ((rc = ck_mdb_err(mdb_put(txn, W->db[DB_DUE], &k, &v, 0),
	    "put")) != 0)
		goto unavailable;
	n = snprintf(bykey, sizeof(bykey), "%s%c%s%c%s", j->court, 0,
	    j->case_number, 0, j->id);
	k.mv_size = (size_t)n;
	k.mv_data = bykey;
	if ((rc = ck_mdb_err(mdb_put(txn, W->db[DB_BYCASE], &k, &v, 0),
	    "put")) != 0)
		goto unavailable;
	for (size_t i = 0; i < j->ndues; i++)
		dues[i] = j->dues[i];
	req.enrollment_id = j->id;
	req.due_dates = dues;
	req.n_due_dates = j->ndues;
	if ((rc = request_put(W, txn, j, &req)) != 0 ||
	    (rc = get_counters(txn, W->db[DB_META], &j->out)) != 0)
		goto unavailable;
	j->out.active++;
	if ((rc = put_counters(txn, W->db[DB_META], &j->out)) != 0)
		goto unavailable;
	return 0;
unavailable:
	return unavailable(j, rc);
}

void
ck_watch_enroll(struct ck_watch *W, struct ck_call *call,
    const Chakong__V1__EnrollRequest *req, const struct ck_case *kase,
    const struct ck_date *term)
{
	const struct ck_watch_conf *wc = &call->cfg->watch;
	EnrollmentRecord rec = CHAKONG__INTERNAL__V1__ENROLLMENT_RECORD__INIT;
	SealedCall sc = CHAKONG__INTERNAL__V1__SEALED_CALL__INIT;
	const Chakong__V1__Debtor *d = req->debtor;
	const char *debtor = d->id_case == CHAKONG__V1__DEBTOR__ID_RESIDENT_ID ?
	    d->resident_id : d->uscc;
	char why[200], cats[16], tdate[16], hhex[33], idsrc[256];
	char *dues[MAX_DUES];
	uint8_t h[16], idh[32], plain[512], sealed[512 + CK_BOX_OVERHEAD];
	size_t plen, slen;
	uint32_t mask = 0;
	int64_t now = ck_clock_now(), last;
	struct job *j;

	if (!ck_watch_policy_check(call->cfg, call->peer->id,
	    req->case_->officer_id, kase->norm, CK_ORIGIN_INTERACTIVE, NULL,
	    why, sizeof(why))) {
		ck_call_fail(call, CK_GRPC_PERMISSION_DENIED, "%s", why);
		return;
	}
	j = job_new(W, call, J_ENROLL, req->request_id);
	if (j == NULL) {
		ck_call_fail(call, CK_GRPC_INVALID_ARGUMENT, "request_id: too "
		    "long");
		return;
	}
	mask = ck_category_mask((const int *)req->categories,
	    req->n_categories);
	if (mask == 0)
		mask = CK_CATEGORY_ALL;
	snprintf(cats, sizeof(cats), "%u", mask);
	date_str(term, tdate, sizeof(tdate));
	ck_strlcpy(j->case_number, kase->norm, sizeof(j->case_number));
	for (uint32_t m = wc->period_months; m <= wc->span_months &&
	    j->ndues < MAX_DUES; m += wc->period_months) {
		struct ck_date due;

		ck_date_add_months(term, (int)m, &due);
		date_str(&due, j->dues[j->ndues], sizeof(j->dues[0]));
		dues[j->ndues] = j->dues[j->ndues];
		j->ndues++;
	}
	last = j->ndues > 0 ? date_str_start(j->dues[j->ndues - 1]) : 0;
	if (j->ndues == 0 || last + 86400 <= now) {
		job_free(j);
		ck_call_fail(call, CK_GRPC_FAILED_PRECONDITION,
		    "termination_date: every re-query date (%u to %u months "
		    "after it) has already passed", wc->period_months,
		    wc->span_months);
		return;
	}

	ck_ref_debtor_hash(W->keys, 0, debtor, h);
	ck_hex(h, sizeof(h), hhex);
	snprintf(idsrc, sizeof(idsrc), "%s\x1f%s\x1f%s", call->peer->id,
	    kase->norm, hhex);
	sha256(idsrc, strlen(idsrc), idh);
	ck_hex(idh, ID_LEN / 2, j->id);
	{
		const char *f[] = { "enroll", kase->norm, debtor, d->name,
			cats, tdate, req->document_number };

		digest_fields(j->digest, f, CK_ARRAY_SIZE(f));
	}

	if (d->id_case == CHAKONG__V1__DEBTOR__ID_RESIDENT_ID)
		sc.resident_id = d->resident_id;
	else
		sc.uscc = d->uscc;
	sc.name = d->name;
	plen = chakong__internal__v1__sealed_call__get_packed_size(&sc);
	if (plen > sizeof(plain) || (chakong__internal__v1__sealed_call__pack(
	    &sc, plain), ck_box_seal(W->keys, plain, plen, sealed,
	    sizeof(sealed), &slen)) != 0) {
		explicit_bzero(plain, sizeof(plain));
		job_free(j);
		ck_call_fail(call, CK_GRPC_INVALID_ARGUMENT, "debtor.name: too "
		    "long");
		return;
	}
	explicit_bzero(plain, sizeof(plain));
	rec.id = j->id;
	rec.state = ST_ACTIVE;
	rec.court_id = j->court;
	rec.case_number = j->case_number;
	rec.officer_id = req->case_->officer_id;
	rec.categories = mask;
	rec.termination_date = tdate;
	rec.document_number = req->document_number;
	rec.due_dates = dues;
	rec.n_due_dates = j->ndues;
	rec.next_due = now;	/* the baseline query, at once */
	rec.sealed_debtor = bin(sealed, slen);
	rec.debtor_hash = bin(h, sizeof(h));
	rec.created_at = rec.updated_at = now;
	j->first_due = now;
	j->rec = ck_record_pack(&rec.base, &j->reclen);
	if (j->rec == NULL) {
		job_free(j);
		ck_call_fail(call, CK_GRPC_RESOURCE_EXHAUSTED, "server out of "
		    "memory");
		return;
	}
	log_info(call->log_id, "enroll case=%s court=%s enrollment=%s "
	    "due=%zu from %s", kase->norm, call->peer->id, j->id, j->ndues,
	    j->dues[0]);
	job_submit(j, enroll_job);
}

/* ---- EndEnrollment ------------------------------------------------------ */

static int
end_job(MDB_txn *txn, void *arg)
{
	struct job *j = arg;
	struct ck_watch *W = j->W;
	RequestRecord req = CHAKONG__INTERNAL__V1__WATCH_REQUEST_RECORD__INIT;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	char prefix[200];
	int n, rc, ended = 0, seen = 0;

	if ((rc = request_check(W, txn, j)) != 0)
		return rc;
	if ((rc = get_counters(txn, W->db[DB_META], &j->out)) != 0)
		goto unavailable;
	n = snprintf(prefix, sizeof(prefix), "%s%c%s%c", j->court, 0,
	    j->case_number, 0);
	rc = ck_mdb_err(mdb_cursor_open(txn, W->db[DB_BYCASE], &cur),
	    "cursor");
	if (rc != 0)
		goto unavailable;
	k.mv_size = (size_t)n;
	k.mv_data = prefix;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		EnrollmentRecord *er = NULL;
		char id[ID_LEN + 1];
		uint8_t dk[DUE_KEY_LEN];
		MDB_val dkv = { sizeof(dk), dk };
		char *ncase;

		if (k.mv_size != (size_t)n + ID_LEN ||
		    memcmp(k.mv_data, prefix, (size_t)n) != 0)
			break;
		memcpy(id, (char *)k.mv_data + n, ID_LEN);
		id[ID_LEN] = 0;
		if (ck_record_get(txn, W->db[DB_ENROLL], id, ID_LEN,
		    &chakong__internal__v1__enrollment_record__descriptor,
		    (ProtobufCMessage **)&er) != 0)
			continue;
		seen++;
		j->count += er->runs;
		if (er->state != ST_ACTIVE) {
			protobuf_c_message_free_unpacked(&er->base, NULL);
			continue;
		}
		due_key(dk, er->next_due, id);
		mdb_del(txn, W->db[DB_DUE], &dkv, NULL);
		er->state = j->reason == CHAKONG__V1__END_REASON__END_RESTORED ?
		    ST_RESTORED : ST_CLOSED;
		ncase = er->new_case_number;
		er->new_case_number = j->new_case;
		er->next_due = 0;
		er->updated_at = ck_clock_now();
		rc = ck_record_put(txn, W->db[DB_ENROLL], id, ID_LEN,
		    &er->base);
		er->new_case_number = ncase;
		protobuf_c_message_free_unpacked(&er->base, NULL);
		if (rc != 0)
			goto unavailable;
		ended++;
		j->out.active--;
	}
	mdb_cursor_close(cur);
	cur = NULL;
	if (seen == 0) {
		j->code = CK_GRPC_NOT_FOUND;
		snprintf(j->msg, sizeof(j->msg), "case: no enrollment of this "
		    "case for the calling court");
		return CK_ENOTFOUND;
	}
	if (ended == 0) {
		j->code = CK_GRPC_FAILED_PRECONDITION;
		snprintf(j->msg, sizeof(j->msg), "case: the enrollment has "
		    "already ended");
		return CK_EPERM;
	}
	req.count = j->count;
	if ((rc = request_put(W, txn, j, &req)) != 0 ||
	    (rc = put_counters(txn, W->db[DB_META], &j->out)) != 0)
		goto unavailable;
	return 0;
unavailable:
	if (cur != NULL)
		mdb_cursor_close(cur);
	return unavailable(j, rc);
}

void
ck_watch_end(struct ck_watch *W, struct ck_call *call,
    const Chakong__V1__EndEnrollmentRequest *req, const struct ck_case *kase,
    const char *new_case_number)
{
	struct job *j = job_new(W, call, J_END, req->request_id);
	char reason[8];

	if (j == NULL) {
		ck_call_fail(call, CK_GRPC_INVALID_ARGUMENT, "request_id: too "
		    "long");
		return;
	}
	j->reason = req->reason;
	ck_strlcpy(j->case_number, kase->norm, sizeof(j->case_number));
	ck_strlcpy(j->new_case, new_case_number != NULL ? new_case_number :
	    "", sizeof(j->new_case));
	snprintf(reason, sizeof(reason), "%d", req->reason);
	{
		const char *f[] = { "end", kase->norm, reason, j->new_case };

		digest_fields(j->digest, f, CK_ARRAY_SIZE(f));
	}
	log_info(call->log_id, "end enrollment case=%s court=%s reason=%s",
	    kase->norm, call->peer->id, reason);
	job_submit(j, end_job);
}

/* ---- AckFindings ------------------------------------------------------- */

static int
ack_job(MDB_txn *txn, void *arg)
{
	struct job *j = arg;
	struct ck_watch *W = j->W;
	RequestRecord req = CHAKONG__INTERNAL__V1__WATCH_REQUEST_RECORD__INIT;
	int rc;

	if ((rc = request_check(W, txn, j)) != 0)
		return rc;
	if ((rc = get_counters(txn, W->db[DB_META], &j->out)) != 0)
		goto unavailable;
	for (size_t i = 0; i < j->nseqs; i++) {
		FindingRecord *f = NULL;
		uint8_t key[64];
		size_t klen = finding_key(key, sizeof(key), j->court,
		    j->seqs[i]);

		rc = ck_record_get(txn, W->db[DB_FINDINGS], key, klen,
		    &chakong__internal__v1__finding_record__descriptor,
		    (ProtobufCMessage **)&f);
		if (rc == CK_ENOTFOUND) {
			j->code = CK_GRPC_NOT_FOUND;
			snprintf(j->msg, sizeof(j->msg), "finding_ids: no "
			    "such finding for the calling court (nothing was "
			    "acknowledged)");
			return rc;
		}
		if (rc != 0)
			goto unavailable;
		if (!f->acknowledged) {
			f->acknowledged = true;
			rc = ck_record_put(txn, W->db[DB_FINDINGS], key, klen,
			    &f->base);
			j->count++;
			j->out.unread--;
		}
		protobuf_c_message_free_unpacked(&f->base, NULL);
		if (rc != 0)
			goto unavailable;
	}
	req.count = j->count;
	if ((rc = request_put(W, txn, j, &req)) != 0 ||
	    (rc = put_counters(txn, W->db[DB_META], &j->out)) != 0)
		goto unavailable;
	return 0;
unavailable:
	return unavailable(j, rc);
}

/* "00000000000000a1" -> 0xa1; false unless exactly 16 hex digits. */
static bool
parse_id(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (strlen(s) != 16)
		return false;
	for (int i = 0; i < 16; i++) {
		int x = ck_hexval((unsigned char)s[i]);

		if (x < 0)
			return false;
		v = v << 4 | (uint64_t)x;
	}
	*out = v;
	return v != 0;
}

void
ck_watch_ack(struct ck_watch *W, struct ck_call *call,
    const Chakong__V1__AckFindingsRequest *req)
{
	struct job *j;
	char buf[2048];
	size_t len = 0;

	if (req->n_finding_ids > 1000) {
		ck_call_fail(call, CK_GRPC_INVALID_ARGUMENT, "finding_ids: at "
		    "most 1000 at a time");
		return;
	}
	j = job_new(W, call, J_ACK, req->request_id);
	if (j == NULL || (j->seqs = calloc(req->n_finding_ids,
	    sizeof(*j->seqs))) == NULL) {
		if (j != NULL)
			job_free(j);
		ck_call_fail(call, CK_GRPC_INVALID_ARGUMENT, "request_id: too "
		    "long");
		return;
	}
	for (size_t i = 0; i < req->n_finding_ids; i++) {
		if (!parse_id(req->finding_ids[i], &j->seqs[i])) {
			job_free(j);
			ck_call_fail(call, CK_GRPC_INVALID_ARGUMENT,
			    "finding_ids: each must be a finding_id from "
			    "ListFindings (16 hex digits)");
			return;
		}
		j->nseqs++;
	}
	/* the digest covers the ids in order */
	len = (size_t)snprintf(buf, sizeof(buf), "ack");
	for (size_t i = 0; i < j->nseqs && len + 20 < sizeof(buf); i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len,
		    "\x1f%016llx", (unsigned long long)j->seqs[i]);
	if (j->nseqs > 100) {
		/* long lists: hash the ids themselves */
		EVP_MD_CTX *c = EVP_MD_CTX_new();

		EVP_DigestInit_ex(c, EVP_sha256(), NULL);
		EVP_DigestUpdate(c, j->seqs, j->nseqs * sizeof(*j->seqs));
		EVP_DigestFinal_ex(c, j->digest, NULL);
		EVP_MD_CTX_free(c);
	} else
		sha256(buf, len, j->digest);
	job_submit(j, ack_job);
}

/* ---- answering RPC jobs -------------------------------------------------- */

static void
job_answer(struct job *j, int rc)
{
	struct ck_call *call = j->call;

	if (j->code != 0) {
		ck_call_fail(call, j->code, "%s", j->msg);
		return;
	}
	if (rc != 0 && rc != CK_EAGAIN) {
		ck_call_fail(call, CK_GRPC_UNAVAILABLE, "the state store cannot "
		    "be written; retry with the same request_id");
		return;
	}
	switch (j->kind) {
	case J_ENROLL: {
		Chakong__V1__EnrollReply r = CHAKONG__V1__ENROLL_REPLY__INIT;

		r.enrollment_id = ck_call_strdup(call, j->id);
		r.due_dates = ck_call_alloc(call, (j->ndues + 1) *
		    sizeof(char *));
		if (r.due_dates == NULL)
			break;
		for (size_t i = 0; i < j->ndues; i++)
			r.due_dates[r.n_due_dates++] = ck_call_strdup(call,
			    j->dues[i]);
		ck_call_reply(call, &r.base);
		return;
	}
	case J_END: {
		Chakong__V1__EndEnrollmentReply r =
		    CHAKONG__V1__END_ENROLLMENT_REPLY__INIT;

		r.reruns_done = j->count;
		ck_call_reply(call, &r.base);
		return;
	}
	case J_ACK: {
		Chakong__V1__AckFindingsReply r =
		    CHAKONG__V1__ACK_FINDINGS_REPLY__INIT;

		r.acknowledged = j->count;
		ck_call_reply(call, &r.base);
		return;
	}
	default:
		break;
	}
	ck_call_fail(call, CK_GRPC_RESOURCE_EXHAUSTED, "server out of memory");
}

static void
on_job_done(void *arg, int rc)
{
	struct job *j = arg;
	struct ck_watch *W = j->W;

	W->pending--;
	if (j->call != NULL) {
		TAILQ_REMOVE(&W->jobs, j, link);
		j->call->on_cancel = NULL;
		job_answer(j, rc);
	}
	if (rc == 0)
		take_counters(W, &j->out);
	if (j->kind == J_EXPIRY) {
		W->expiry_busy = false;
		if (rc == 0 && j->count > 0) {
			W->expiring_made += (uint64_t)j->count;
			log_info(NULL, "watch: %d freeze%s expiring within %u "
			    "days: EXPIRING finding%s recorded", j->count,
			    j->count == 1 ? "" : "s",
			    W->cfg->watch.expiry_window_days,
			    j->count == 1 ? "" : "s");
		}
	}
	if (j->kind == J_ENROLL && rc == 0 && !W->closing)
		pick(W);
	job_free(j);
	maybe_free(W);
}

/* ---- ListFindings ------------------------------------------------------ */

static Chakong__V1__Finding *
to_finding(struct ck_call *call, ProtobufCAllocator *alloc,
    const FindingRecord *f)
{
	Chakong__V1__Finding *o = ck_call_alloc(call, sizeof(*o));
	char id[17];

	if (o == NULL)
		return NULL;
	chakong__v1__finding__init(o);
	snprintf(id, sizeof(id), "%016llx", (unsigned long long)f->seq);
	o->finding_id = ck_call_strdup(call, id);
	o->kind = (Chakong__V1__FindingKind)f->kind;
	o->case_number = f->case_number;
	o->created_at = f->created_at;
	o->summary = f->summary;
	o->freeze_ref = f->freeze_ref;
	o->expiry_date = f->expiry_date;
	o->acknowledged = f->acknowledged;
	if (f->sources.len > 0) {
		Chakong__V1__QueryReply *qr = chakong__v1__query_reply__unpack(
		    alloc, f->sources.len, f->sources.data);

		if (qr != NULL) {
			o->sources = qr->sources;
			o->n_sources = qr->n_sources;
		}
	}
	return o;
}

void
ck_watch_list(struct ck_watch *W, struct ck_call *call,
    const Chakong__V1__ListFindingsRequest *req)
{
	Chakong__V1__ListFindingsReply reply =
	    CHAKONG__V1__LIST_FINDINGS_REPLY__INIT;
	size_t want = req->page_size > 0 ? (size_t)req->page_size : 100;
	uint64_t start = 1, scanned = 0;
	uint8_t key[64];
	size_t plen = strlen(call->peer->id) + 1, klen;
	ProtobufCAllocator alloc;
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	char token[17] = "";
	int rc;

	if (req->page_token[0] != '\0' && !parse_id(req->page_token, &start)) {
		ck_call_fail(call, CK_GRPC_INVALID_ARGUMENT, "page_token: not a "
		    "token from a previous reply");
		return;
	}
	klen = finding_key(key, sizeof(key), call->peer->id, start);
	reply.findings = ck_call_alloc(call, want * sizeof(*reply.findings));
	if (klen == 0 || reply.findings == NULL) {
		ck_call_fail(call, CK_GRPC_RESOURCE_EXHAUSTED, "server out of "
		    "memory");
		return;
	}
	ck_arena_allocator(call->arena, &alloc);
	if (ck_store_read_begin(W->store, &txn) != 0) {
		ck_call_fail(call, CK_GRPC_UNAVAILABLE, "the state store cannot "
		    "be read");
		return;
	}
	if (mdb_cursor_open(txn, W->db[DB_FINDINGS], &cur) != 0) {
		ck_store_read_end(txn);
		ck_call_fail(call, CK_GRPC_UNAVAILABLE, "the state store cannot "
		    "be read");
		return;
	}
	k.mv_size = klen;
	k.mv_data = key;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		FindingRecord *f;
		uint64_t seq;
		bool match;

		if (k.mv_size != plen + 8 || memcmp(k.mv_data, key, plen) != 0)
			break;
		seq = get_be64((const uint8_t *)k.mv_data + plen);
		if (reply.n_findings == want || scanned++ == LIST_SCAN_MAX) {
			snprintf(token, sizeof(token), "%016llx",
			    (unsigned long long)seq);
			break;
		}
		f = (FindingRecord *)ck_record_unpack(
		    &chakong__internal__v1__finding_record__descriptor, &v,
		    NULL);
		match = f != NULL && f->created_at >= req->since &&
		    (req->kind == 0 || (int)f->kind == (int)req->kind) &&
		    (!req->unread_only || !f->acknowledged);
		if (f != NULL)
			protobuf_c_message_free_unpacked(&f->base, NULL);
		if (!match)
			continue;
		/* a match: again, into the call's arena, for the reply */
		f = (FindingRecord *)ck_record_unpack(
		    &chakong__internal__v1__finding_record__descriptor, &v,
		    &alloc);
		if (f != NULL && (reply.findings[reply.n_findings] =
		    to_finding(call, &alloc, f)) != NULL)
			reply.n_findings++;
	}
	mdb_cursor_close(cur);
	ck_store_read_end(txn);
	reply.next_page_token = ck_call_strdup(call, token);
	ck_call_reply(call, &reply.base);
}

/* ---- the scheduler ----------------------------------------------------- */

static void
run_free(struct run *r)
{
	struct ck_watch *W = r->W;

	TAILQ_REMOVE(&W->runs, r, link);
	W->nruns--;
	ck_arena_free(r->arena);
	for (size_t i = 0; i < r->nseen; i++)
		free(r->seen[i].blob);
	free(r->seen);
	free(r->sources);
	ck_config_free(r->cfg);
	explicit_bzero(r->resident_id, sizeof(r->resident_id));
	explicit_bzero(r->uscc, sizeof(r->uscc));
	explicit_bzero(r->name, sizeof(r->name));
	free(r);
}

/* Wall-clock seconds as real microseconds at the clock's current rate. */
static uint64_t
sim_to_real(int64_t s)
{
	uint64_t rate = ck_clock_rate();

	if (s <= 0)
		return 0;
	return (uint64_t)s * 1000000u / (rate > 0 ? rate : 1) + 1000;
}

static void
arm(struct event *ev, uint64_t usec)
{
	struct timeval tv;

	if (usec > 600u * 1000000u)
		usec = 600u * 1000000u;	/* look again now and then */
	tv.tv_sec = (time_t)(usec / 1000000u);
	tv.tv_usec = (suseconds_t)(usec % 1000000u);
	evtimer_add(ev, &tv);
}

/* Seconds until the daily window opens (0: inside it now). */
static int64_t
window_wait(const struct ck_watch_conf *wc, int64_t now)
{
	int64_t sec = (now + CST_OFFSET) % 86400;
	int64_t s = wc->window_start_min * 60, e = wc->window_end_min * 60;
	bool in;

	if (s == e)
		return 0;
	in = s < e ? sec >= s && sec < e : sec >= s || sec < e;
	return in ? 0 : (s - sec + 86400) % 86400;
}

/* Microseconds until a start is allowed by the rate (0: take one now). */
static uint64_t
token_wait(struct ck_watch *W, const struct ck_watch_conf *wc)
{
	uint64_t now = ck_mono_usec();
	double burst = wc->rate > 1 ? wc->rate : 1;

	W->tokens += (double)(now - W->tokens_at) * wc->rate / 1e6;
	W->tokens_at = now;
	if (W->tokens > burst)
		W->tokens = burst;
	if (W->tokens >= 1) {
		W->tokens -= 1;
		return 0;
	}
	return (uint64_t)((1 - W->tokens) * 1e6 / wc->rate) + 1;
}

static bool
running(const struct ck_watch *W, const char *id)
{
	const struct run *r;

	TAILQ_FOREACH(r, &W->runs, link)
		if (memcmp(r->id, id, ID_LEN) == 0)
			return true;
	return false;
}

/* The earliest due key whose enrollment is not in flight. */
static int
next_due(struct ck_watch *W, int64_t *t, char id[ID_LEN + 1])
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	if ((rc = ck_store_read_begin(W->store, &txn)) != 0)
		return rc;
	if ((rc = mdb_cursor_open(txn, W->db[DB_DUE], &cur)) != 0) {
		ck_store_read_end(txn);
		return ck_mdb_err(rc, "cursor");
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		const uint8_t *p = k.mv_data;

		if (k.mv_size != DUE_KEY_LEN || running(W, (const char *)p + 8))
			continue;
		*t = (int64_t)get_be64(p);
		memcpy(id, p + 8, ID_LEN);
		id[ID_LEN] = 0;
		break;
	}
	mdb_cursor_close(cur);
	ck_store_read_end(txn);
	return rc == 0 ? 0 : ck_mdb_err(rc, "due");
}

static bool
seen_in(const EnrollmentRecord *er, const uint8_t *hash, int64_t *avail)
{
	for (size_t i = 0; i < er->n_seen; i++)
		if (er->seen[i]->id_hash.len == 16 &&
		    memcmp(er->seen[i]->id_hash.data, hash, 16) == 0) {
			*avail = er->seen[i]->available_fen;
			return true;
		}
	return false;
}

/* The FOUND findings of a run, then the RESULT (writer thread). */
static int
record_findings(struct run *r, MDB_txn *txn, const EnrollmentRecord *er)
{
	FindingRecord f = CHAKONG__INTERNAL__V1__FINDING_RECORD__INIT;
	char summary[512];
	int rc;

	f.court_id = r->court;
	f.case_number = r->case_number;
	f.enrollment_id = r->id;
	f.due_date = r->due_date;
	f.kind = K_FOUND;
	for (size_t i = 0; i < r->nseen; i++) {
		struct seen *s = &r->seen[i];
		int64_t prev = 0;
		bool known = seen_in(er, s->hash, &prev);

		if (known && !(s->available >= 0 && prev <= r->threshold &&
		    s->available > r->threshold))
			continue;
		if (!known)
			snprintf(summary, sizeof(summary), "due date %s: a new "
			    "asset: %s", r->due_date, s->what);
		else
			snprintf(summary, sizeof(summary), "due date %s: the "
			    "available balance of %s rose above %lld fen",
			    r->due_date, s->what, (long long)r->threshold);
		f.summary = summary;
		f.sources = bin(s->blob, s->bloblen);
		if ((rc = add_finding(r->W, txn, &r->out, &f)) != 0)
			return rc;
		r->nfound++;
	}
	f.kind = K_RESULT;
	snprintf(summary, sizeof(summary), "%s; %zu found", r->summary,
	    r->nfound);
	f.summary = summary;
	f.sources = bin(r->sources, r->sources_len);
	return add_finding(r->W, txn, &r->out, &f);
}

/* Seen assets: the old ones (balances updated) and the new ones. */
static SeenAsset **
merge_seen(struct run *r, const EnrollmentRecord *er, SeenAsset **store,
    size_t *n)
{
	SeenAsset **out = calloc(er->n_seen + r->nseen + 1, sizeof(*out));

	*n = 0;
	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < er->n_seen; i++)
		out[(*n)++] = er->seen[i];
	for (size_t i = 0; i < r->nseen; i++) {
		struct seen *s = &r->seen[i];
		size_t k;

		for (k = 0; k < *n; k++)
			if (out[k]->id_hash.len == 16 &&
			    memcmp(out[k]->id_hash.data, s->hash, 16) == 0)
				break;
		if (k == *n) {
			SeenAsset *a = &(*store)[i];

			chakong__internal__v1__seen_asset__init(a);
			a->id_hash = bin(s->hash, 16);
			out[(*n)++] = a;
		}
		out[k]->available_fen = s->available;
	}
	return out;
}

static int
record_job(MDB_txn *txn, void *arg)
{
	struct run *r = arg;
	struct ck_watch *W = r->W;
	EnrollmentRecord *er = NULL;
	SeenAsset **old_seen, **seen = NULL, *fresh = NULL;
	size_t old_n, nseen = 0;
	uint8_t dk[DUE_KEY_LEN];
	MDB_val dkv = { sizeof(dk), dk }, empty = { 0, (void *)"" };
	bool active;
	int64_t next = 0;
	int rc;

	if ((rc = get_counters(txn, W->db[DB_META], &r->out)) != 0)
		return rc;
	due_key(dk, r->due_key_time, r->id);
	rc = ck_record_get(txn, W->db[DB_ENROLL], r->id, ID_LEN,
	    &chakong__internal__v1__enrollment_record__descriptor,
	    (ProtobufCMessage **)&er);
	if (rc == CK_ENOTFOUND || r->drop) {
		if (er != NULL)
			protobuf_c_message_free_unpacked(&er->base, NULL);
		rc = mdb_del(txn, W->db[DB_DUE], &dkv, NULL);
		return rc == MDB_NOTFOUND ? 0 : ck_mdb_err(rc, "del");
	}
	if (rc != 0)
		return rc;
	if (r->baseline ? er->baseline_done : er->done != r->done_before) {
		rc = CK_EAGAIN;	/* moved on already: nothing to do */
		goto out;
	}
	active = er->state == ST_ACTIVE;
	if (!r->baseline && (rc = record_findings(r, txn, er)) != 0)
		goto out;
	fresh = calloc(r->nseen + 1, sizeof(*fresh));
	if (fresh == NULL || (seen = merge_seen(r, er, &fresh, &nseen)) ==
	    NULL) {
		rc = CK_ENOMEM;
		goto out;
	}
	rc = mdb_del(txn, W->db[DB_DUE], &dkv, NULL);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		rc = ck_mdb_err(rc, "del");
		goto out;
	}
	if (r->baseline) {
		er->baseline_done = true;
		next = date_str_start(er->due_dates[0]);
	} else {
		er->done = r->idx + 1;
		er->runs++;
		er->skipped += r->skipped;
		if ((size_t)er->done < er->n_due_dates)
			next = date_str_start(er->due_dates[er->done]);
		else if (active) {
			er->state = ST_COMPLETED;
			r->out.active--;
		}
	}
	er->next_due = active && er->state == ST_ACTIVE ? next : 0;
	er->updated_at = ck_clock_now();
	if (er->next_due != 0) {
		due_key(dk, er->next_due, r->id);
		rc = ck_mdb_err(mdb_put(txn, W->db[DB_DUE], &dkv, &empty, 0),
		    "put");
		if (rc != 0)
			goto out;
	}
	old_seen = er->seen;
	old_n = er->n_seen;
	er->seen = seen;
	er->n_seen = nseen;
	rc = ck_record_put(txn, W->db[DB_ENROLL], r->id, ID_LEN, &er->base);
	er->seen = old_seen;
	er->n_seen = old_n;
	if (rc == 0)
		rc = put_counters(txn, W->db[DB_META], &r->out);
out:
	free(seen);
	free(fresh);
	protobuf_c_message_free_unpacked(&er->base, NULL);
	return rc;
}

static void
on_record_done(void *arg, int rc)
{
	struct run *r = arg;
	struct ck_watch *W = r->W;

	W->pending--;
	if (rc == 0) {
		take_counters(W, &r->out);
		if (r->baseline)
			W->baselines++;
		else if (!r->drop) {
			W->recorded++;
			W->found += r->nfound;
			log_info(r->log_id, "watch: enrollment %s due %s "
			    "recorded, %zu found%s", r->id, r->due_date,
			    r->nfound, r->skipped > 0 ? " (caught up)" : "");
		}
	}
	run_free(r);
	if (W->closing) {
		maybe_free(W);
		return;
	}
	if (rc != 0 && rc != CK_EAGAIN) {
		log_warn(NULL, "watch: a re-query result could not be "
		    "recorded: %s; retrying in a second", ck_strerror(rc));
		arm(W->timer, 1000000);
		return;
	}
	pick(W);
}

static void
record(struct run *r)
{
	struct ck_watch *W = r->W;

	r->state = RUN_RECORDING;
	W->pending++;
	if (ck_store_submit(W->store, record_job, on_record_done, r) != 0) {
		W->pending--;
		run_free(r);
		arm(W->timer, 1000000);
	}
}

/* One asset of a reply: its identity (source, agency's asset id) from the
 * sealed asset_ref, its balance, and a one-asset reply for a finding. */
static void
see_asset(struct run *r, const Chakong__V1__SourceResult *sr,
    Chakong__V1__Asset *a)
{
	struct ck_ref ref;
	struct seen *s;
	char idsrc[200];
	Chakong__V1__SourceResult one;
	Chakong__V1__SourceResult *onep = &one;
	Chakong__V1__QueryReply qr = CHAKONG__V1__QUERY_REPLY__INIT;
	Chakong__V1__Asset *ap = a;

	if (a->asset_ref.len == 0 || ck_ref_open(r->W->keys, a->asset_ref.data,
	    a->asset_ref.len, &ref) != 0)
		return;	/* records (household, enterprise) are not assets */
	s = &r->seen[r->nseen];
	snprintf(idsrc, sizeof(idsrc), "%s%c%s", ref.source, 0x1f,
	    ref.asset_id);
	ck_ref_debtor_hash(r->W->keys, 0, idsrc, s->hash);
	explicit_bzero(idsrc, sizeof(idsrc));
	s->available = -1;
	if (a->detail_case == CHAKONG__V1__ASSET__DETAIL_DEPOSIT &&
	    a->deposit->available != NULL)
		s->available = a->deposit->available->fen;
	snprintf(s->what, sizeof(s->what), "%s at %s",
	    ck_category_name(a->category), sr->source);
	one = *sr;
	one.assets = &ap;
	one.n_assets = 1;
	qr.sources = &onep;
	qr.n_sources = 1;
	s->bloblen = chakong__v1__query_reply__get_packed_size(&qr);
	s->blob = malloc(s->bloblen + 1);
	if (s->blob == NULL)
		return;
	chakong__v1__query_reply__pack(&qr, s->blob);
	r->nseen++;
}

/* What a scheduled re-query is, for the logs and the audit trail. */
static const char scheduled_path[] = "/chakong.v1.AssetBroker/Query";

static void
on_run_answer(struct ck_call *call, int code, const char *msg,
    const ProtobufCMessage *reply)
{
	struct run *r = (struct run *)((char *)call -
	    offsetof(struct run, call));
	const Chakong__V1__QueryReply *qr =
	    (const Chakong__V1__QueryReply *)reply;
	size_t total = 0;
	int n;

	if (r->state != RUN_QUERYING)
		return;
	if (r->W->fo->audit != NULL)
		ck_audit_call_done(r->W->fo->audit, call, scheduled_path,
		    sizeof(scheduled_path) - 1, code,
		    ck_mono_usec() - call->started);
	if (code != CK_GRPC_OK || qr == NULL) {
		r->W->failed_runs++;
		snprintf(r->summary, sizeof(r->summary), "due date %s: the "
		    "re-query failed: %s", r->due_date, msg);
		record(r);
		return;
	}
	for (size_t i = 0; i < qr->n_sources; i++)
		total += qr->sources[i]->n_assets;
	r->seen = calloc(total + 1, sizeof(*r->seen));
	for (size_t i = 0; i < qr->n_sources; i++) {
		const Chakong__V1__SourceResult *sr = qr->sources[i];

		r->nsources++;
		if (sr->status == CHAKONG__V1__SOURCE_STATUS__SOURCE_OK ||
		    sr->status == CHAKONG__V1__SOURCE_STATUS__SOURCE_NOT_FOUND)
			r->nanswered++;
		r->nassets += sr->n_assets;
		for (size_t k = 0; r->seen != NULL && k < sr->n_assets; k++)
			see_asset(r, sr, sr->assets[k]);
	}
	r->sources_len = protobuf_c_message_get_packed_size(reply);
	r->sources = malloc(r->sources_len + 1);
	if (r->sources != NULL)
		protobuf_c_message_pack(reply, r->sources);
	else
		r->sources_len = 0;
	n = snprintf(r->summary, sizeof(r->summary), "due date %s: %zu of "
	    "%zu sources answered, %zu assets listed", r->due_date,
	    r->nanswered, r->nsources, r->nassets);
	if (r->skipped > 0 && n > 0 && (size_t)n < sizeof(r->summary))
		snprintf(r->summary + n, sizeof(r->summary) - (size_t)n,
		    " (caught up once for %d earlier due date%s that passed "
		    "unrun: the broker was down, or the enrollment came late)",
		    r->skipped, r->skipped == 1 ? "" : "s");
	record(r);
}

static bool
unseal_debtor(struct run *r, const EnrollmentRecord *er)
{
	uint8_t plain[600];
	size_t plen;
	SealedCall *sc;
	bool ok;

	if (er->sealed_debtor.len < CK_BOX_OVERHEAD ||
	    er->sealed_debtor.len - CK_BOX_OVERHEAD > sizeof(plain) ||
	    ck_box_open(r->W->keys, er->sealed_debtor.data,
	    er->sealed_debtor.len, plain, &plen) != 0)
		return false;
	sc = chakong__internal__v1__sealed_call__unpack(NULL, plen, plain);
	explicit_bzero(plain, sizeof(plain));
	if (sc == NULL)
		return false;
	ok = ck_strlcpy(r->resident_id, sc->resident_id,
	    sizeof(r->resident_id)) < sizeof(r->resident_id) &&
	    ck_strlcpy(r->uscc, sc->uscc, sizeof(r->uscc)) < sizeof(r->uscc) &&
	    ck_strlcpy(r->name, sc->name, sizeof(r->name)) < sizeof(r->name);
	protobuf_c_message_free_unpacked(&sc->base, NULL);
	return ok && (r->resident_id[0] != '\0') != (r->uscc[0] != '\0');
}

/*
 * Read the enrollment into r: 0, CK_EINVAL when it cannot run (ended,
 * unreadable, its key rotated away: drop its due key), or another error
 * when the store could not be read (try again later).
 */
static int
load_run(struct run *r, int64_t now)
{
	EnrollmentRecord *er = NULL;
	MDB_txn *txn;
	int rc;

	if ((rc = ck_store_read_begin(r->W->store, &txn)) != 0)
		return rc;
	rc = ck_record_get(txn, r->W->db[DB_ENROLL], r->id, ID_LEN,
	    &chakong__internal__v1__enrollment_record__descriptor,
	    (ProtobufCMessage **)&er);
	if (rc != 0 && rc != CK_ENOTFOUND && rc != CK_ESTORE)
		goto out;	/* the store failed: try again */
	rc = CK_EINVAL;
	if (er == NULL)
		goto out;
	if (er->state != ST_ACTIVE || er->n_due_dates == 0 ||
	    (size_t)er->done >= er->n_due_dates || !unseal_debtor(r, er))
		goto out;	/* CK_EINVAL: cannot run */
	ck_strlcpy(r->court, er->court_id, sizeof(r->court));
	ck_strlcpy(r->officer, er->officer_id, sizeof(r->officer));
	ck_strlcpy(r->case_number, er->case_number, sizeof(r->case_number));
	r->categories = er->categories;
	r->baseline = !er->baseline_done;
	r->done_before = er->done;
	r->ndues = (int32_t)er->n_due_dates;
	r->idx = er->done;
	if (!r->baseline)
		while ((size_t)r->idx + 1 < er->n_due_dates &&
		    date_str_start(er->due_dates[r->idx + 1]) <= now)
			r->idx++;
	r->skipped = r->idx - er->done;
	ck_strlcpy(r->due_date, r->baseline ? "baseline" :
	    er->due_dates[r->idx], sizeof(r->due_date));
	rc = 0;
out:
	if (er != NULL)
		protobuf_c_message_free_unpacked(&er->base, NULL);
	ck_store_read_end(txn);
	return rc;
}


/*
 * The Query a scheduled re-query stands for, in the run's arena: what the
 * audit trail reads the case, officer and debtor (as a keyed hash) from,
 * as it does for a court's own Query. NULL when out of memory (the record
 * then lacks them).
 */
static ProtobufCMessage *
scheduled_request(struct run *r)
{
	Chakong__V1__QueryRequest *q = ck_arena_alloc(r->arena, sizeof(*q));
	Chakong__V1__CaseRef *c = ck_arena_alloc(r->arena, sizeof(*c));
	Chakong__V1__Debtor *d = ck_arena_alloc(r->arena, sizeof(*d));

	if (q == NULL || c == NULL || d == NULL)
		return NULL;
	chakong__v1__query_request__init(q);
	chakong__v1__case_ref__init(c);
	chakong__v1__debtor__init(d);
	c->case_number = r->case_number;
	c->officer_id = r->officer;
	if (r->resident_id[0] != '\0') {
		d->id_case = CHAKONG__V1__DEBTOR__ID_RESIDENT_ID;
		d->resident_id = r->resident_id;
	} else {
		d->id_case = CHAKONG__V1__DEBTOR__ID_USCC;
		d->uscc = r->uscc;
	}
	d->name = r->name;
	q->case_ = c;
	q->debtor = d;
	return &q->base;
}

static void
start_run(struct ck_watch *W, const char *id, int64_t t, int64_t now)
{
	struct run *r = calloc(1, sizeof(*r));
	char why[200];
	int rc;

	if (r == NULL) {
		arm(W->timer, 1000000);
		return;
	}
	r->W = W;
	memcpy(r->id, id, ID_LEN + 1);
	r->due_key_time = t;
	r->state = RUN_QUERYING;
	r->cfg = ck_config_ref(W->cfg);
	r->threshold = W->cfg->watch.found_balance_fen;
	snprintf(r->log_id, sizeof(r->log_id), "watch-%llu",
	    (unsigned long long)++W->seq);
	TAILQ_INSERT_TAIL(&W->runs, r, link);
	W->nruns++;
	rc = load_run(r, now);
	if (rc != 0 && rc != CK_EINVAL) {
		run_free(r);	/* the store: try again in a second */
		arm(W->timer, 1000000);
		return;
	}
	if (rc != 0) {
		log_warn(r->log_id, "watch: enrollment %s cannot run (ended, "
		    "unreadable or its key rotated away); dropped from the "
		    "schedule", id);
		r->drop = true;
		record(r);
		return;
	}
	W->started++;
	if (r->skipped > 0)
		W->catchups++;
	if (!ck_watch_policy_check(W->cfg, r->court, r->officer,
	    r->case_number, CK_ORIGIN_SCHEDULED, &r->categories, why,
	    sizeof(why))) {
		W->refused++;
		log_notice(r->log_id, "watch: enrollment %s refused by policy: "
		    "%s", id, why);
		snprintf(r->summary, sizeof(r->summary), "due date %s: not "
		    "run: refused by policy: %s", r->due_date, why);
		record(r);
		return;
	}
	r->arena = ck_arena_new();
	if (r->arena == NULL) {
		run_free(r);
		arm(W->timer, 1000000);
		return;
	}
	r->peer.role = CK_ROLE_COURT;
	ck_strlcpy(r->peer.id, r->court, sizeof(r->peer.id));
	snprintf(r->peer.name, sizeof(r->peer.name), "court:%s", r->court);
	r->call.peer = &r->peer;
	r->call.cfg = r->cfg;
	r->call.base = W->base;
	r->call.log_id = r->log_id;
	r->call.arena = r->arena;
	r->call.started = ck_mono_usec();
	r->call.deadline = r->call.started +
	    (uint64_t)r->cfg->watch.query_timeout_ms * 1000u;
	r->call.answer = on_run_answer;
	r->call.origin = CK_ORIGIN_SCHEDULED;
	r->call.method = ck_rpc_find(scheduled_path,
	    sizeof(scheduled_path) - 1);
	r->call.request = scheduled_request(r);

	struct ck_fanout_query fq = {
		.categories = r->categories,
		.court_id = r->court,
		.officer_id = r->officer,
		.case_number = r->case_number,
		.resident_id = r->resident_id[0] ? r->resident_id : NULL,
		.uscc = r->uscc[0] ? r->uscc : NULL,
		.name = r->name,
		.source_ok = run_source_ok,
		.source_arg = r,
	};
	log_debug(r->log_id, "watch: enrollment %s re-query for %s",
	    id, r->due_date);
	ck_fanout_query(W->fo, &r->call, &fq);
}

static void
pick(struct ck_watch *W)
{
	const struct ck_watch_conf *wc = &W->cfg->watch;

	if (W->closing)
		return;
	evtimer_del(W->timer);
	for (;;) {
		char id[ID_LEN + 1];
		int64_t t = 0, now, wait;
		uint64_t tw;
		int rc;

		if (W->nruns >= wc->max_concurrent)
			return;	/* a finishing run looks again */
		rc = next_due(W, &t, id);
		if (rc == CK_ENOTFOUND)
			return;	/* nothing enrolled: Enroll looks again */
		if (rc != 0) {
			arm(W->timer, 1000000);
			return;
		}
		now = ck_clock_now();
		if (t > now) {
			arm(W->timer, sim_to_real(t - now));
			return;
		}
		if ((wait = window_wait(wc, now)) > 0) {
			arm(W->timer, sim_to_real(wait));
			return;
		}
		if ((tw = token_wait(W, wc)) > 0) {
			arm(W->timer, tw);
			return;
		}
		start_run(W, id, t, now);
	}
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pick(arg);
}

/* ---- the expiry watch ---------------------------------------------------- */

struct expiry_scan {
	struct ck_watch *W;
	int64_t today;			/* days since 1970, UTC+8 */
	int64_t window;
	struct candidate *c;
	size_t n, cap;
	int64_t week;
};

static void
on_freeze_seen(void *arg, const struct ck_freeze_view *f)
{
	struct expiry_scan *x = arg;
	struct ck_date d;
	struct candidate *c;
	struct ck_ref ref;
	char why[CK_WHY_MAX];
	int64_t left;
	int n;

	if (!f->active || f->expiry_date[0] == '\0' ||
	    !ck_valid_date(f->expiry_date, strlen(f->expiry_date), &d, why))
		return;
	left = ck_date_to_days(&d) - x->today;
	if (left < 0)
		return;
	if (left <= 7)
		x->week++;
	if (left > x->window)
		return;
	if (x->n == x->cap) {
		size_t cap = x->cap ? x->cap * 2 : 16;
		struct candidate *nc = realloc(x->c, cap * sizeof(*nc));

		if (nc == NULL)
			return;
		x->c = nc;
		x->cap = cap;
	}
	c = &x->c[x->n];
	memset(c, 0, sizeof(*c));
	n = snprintf(c->key, sizeof(c->key), "%s%c%s%c%s", f->source, 0,
	    f->encumbrance_id, 0, f->expiry_date);
	if (n <= 0 || (size_t)n >= sizeof(c->key))
		return;
	c->klen = (size_t)n;
	ck_strlcpy(c->court, f->court_id, sizeof(c->court));
	ck_strlcpy(c->case_number, f->case_number, sizeof(c->case_number));
	ck_strlcpy(c->expiry, f->expiry_date, sizeof(c->expiry));
	snprintf(c->summary, sizeof(c->summary), "the %s of a %s at %s "
	    "expires on %s (in %lld day%s): extend it before then",
	    f->category == CK_CATEGORY_DEPOSIT ? "freeze" : "seal",
	    ck_category_name(f->category), f->source, f->expiry_date,
	    (long long)left, left == 1 ? "" : "s");
	if (f->debtor_hash != NULL) {
		memset(&ref, 0, sizeof(ref));
		ref.type = CK_REF_FREEZE;
		ref.category = (uint8_t)f->category;
		ck_strlcpy(ref.source, f->source, sizeof(ref.source));
		ck_strlcpy(ref.asset_id, f->asset_id, sizeof(ref.asset_id));
		ck_strlcpy(ref.encumbrance_id, f->encumbrance_id,
		    sizeof(ref.encumbrance_id));
		ck_strlcpy(ref.case_number, f->case_number,
		    sizeof(ref.case_number));
		ck_strlcpy(ref.court_id, f->court_id, sizeof(ref.court_id));
		memcpy(ref.debtor, f->debtor_hash, sizeof(ref.debtor));
		ref.issued_at = ck_clock_now();
		if (ck_ref_seal(x->W->keys, &ref, c->ref, &c->reflen) != 0)
			c->reflen = 0;
	}
	x->n++;
}

static int
expiry_job(MDB_txn *txn, void *arg)
{
	struct job *j = arg;
	struct ck_watch *W = j->W;
	FindingRecord f = CHAKONG__INTERNAL__V1__FINDING_RECORD__INIT;
	MDB_val empty = { 0, (void *)"" };
	int rc;

	if ((rc = get_counters(txn, W->db[DB_META], &j->out)) != 0)
		return rc;
	for (size_t i = 0; i < j->ncands; i++) {
		struct candidate *c = &j->cands[i];
		MDB_val k = { c->klen, c->key }, v;

		if (mdb_get(txn, W->db[DB_EXPIRING], &k, &v) == 0)
			continue;	/* told already for this expiry date */
		f.kind = K_EXPIRING;
		f.court_id = c->court;
		f.case_number = c->case_number;
		f.summary = c->summary;
		f.freeze_ref = bin(c->ref, c->reflen);
		f.expiry_date = c->expiry;
		if ((rc = add_finding(W, txn, &j->out, &f)) != 0 ||
		    (rc = ck_mdb_err(mdb_put(txn, W->db[DB_EXPIRING], &k,
		    &empty, 0), "put")) != 0)
			return rc;
		j->count++;
	}
	return put_counters(txn, W->db[DB_META], &j->out);
}

static void
expiry_pass(struct ck_watch *W)
{
	struct expiry_scan x = { .W = W };
	struct ck_date today;
	struct job *j;
	MDB_txn *txn;
	size_t keep = 0;

	ck_date_from_unix_cst(ck_clock_now(), &today);
	x.today = ck_date_to_days(&today);
	x.window = W->cfg->watch.expiry_window_days;
	if (ck_actions_each_freeze(W->actions, on_freeze_seen, &x) != 0) {
		free(x.c);
		return;
	}
	W->expiring_week = x.week;
	/* only the ones not told yet go to the writer */
	if (x.n > 0 && ck_store_read_begin(W->store, &txn) == 0) {
		for (size_t i = 0; i < x.n; i++) {
			MDB_val k = { x.c[i].klen, x.c[i].key }, v;

			if (mdb_get(txn, W->db[DB_EXPIRING], &k, &v) != 0)
				x.c[keep++] = x.c[i];
		}
		ck_store_read_end(txn);
		x.n = keep;
	}
	if (x.n == 0 || (j = job_new(W, NULL, J_EXPIRY, NULL)) == NULL) {
		free(x.c);
		return;
	}
	j->cands = x.c;
	j->ncands = x.n;
	W->expiry_busy = true;
	job_submit(j, expiry_job);
}

static void
on_expiry_timer(evutil_socket_t fd, short what, void *arg)
{
	struct ck_watch *W = arg;

	(void)fd;
	(void)what;
	if (W->closing)
		return;
	if (!W->expiry_busy)
		expiry_pass(W);
	arm(W->expiry_timer, sim_to_real(W->cfg->watch.expiry_check_s));
}

/* ---- life -------------------------------------------------------------- */

/* A test moved the clock: the sleeping timers are wrong now. */
static void
on_clock_moved(void *arg)
{
	struct ck_watch *W = arg;

	if (W->closing)
		return;
	event_active(W->timer, EV_TIMEOUT, 0);
	event_active(W->expiry_timer, EV_TIMEOUT, 0);
}

int
ck_watch_open(struct event_base *base, struct ck_config *cfg,
    struct ck_actions *actions, const struct ck_fanout *fo,
    const struct ck_refkeys *keys, struct ck_watch **out, char *err,
    size_t errlen)
{
	struct ck_watch *W;
	MDB_txn *txn;
	int rc;

	*out = NULL;
	if (actions == NULL || keys == NULL || fo == NULL) {
		snprintf(err, errlen, "%s: the watch needs the journal and a "
		    "reference key", cfg->path);
		return CK_ECONFIG;
	}
	W = calloc(1, sizeof(*W));
	if (W == NULL)
		return CK_ENOMEM;
	W->base = base;
	W->cfg = ck_config_ref(cfg);
	W->actions = actions;
	W->store = ck_actions_store(actions);
	W->fo = fo;
	W->keys = keys;
	TAILQ_INIT(&W->runs);
	TAILQ_INIT(&W->jobs);
	W->tokens = 1;
	W->tokens_at = ck_mono_usec();
	for (size_t i = 0; i < NDB; i++)
		W->db[i] = ck_store_dbi(W->store, CK_ACTIONS_DB_OTHERS + i);
	rc = ck_store_read_begin(W->store, &txn);
	if (rc == 0) {
		rc = get_counters(txn, W->db[DB_META], &W->counters);
		ck_store_read_end(txn);
	}
	W->timer = evtimer_new(base, on_timer, W);
	W->expiry_timer = evtimer_new(base, on_expiry_timer, W);
	if (rc != 0 || W->timer == NULL || W->expiry_timer == NULL ||
	    ck_clock_watch(on_clock_moved, W) != 0) {
		snprintf(err, errlen, "%s: cannot start the re-query "
		    "scheduler (state.mdb unreadable?)", cfg->state_dir);
		W->closing = true;
		ck_watch_close(W);
		return rc != 0 ? rc : CK_ENOMEM;
	}
	arm(W->timer, 0);
	arm(W->expiry_timer, 0);
	log_notice(NULL, "watch: %lld enrollment%s active, %lld unread "
	    "finding%s", (long long)W->counters.active,
	    W->counters.active == 1 ? "" : "s", (long long)W->counters.unread,
	    W->counters.unread == 1 ? "" : "s");
	*out = W;
	return 0;
}

static void
maybe_free(struct ck_watch *W)
{
	if (!W->closing || W->pending > 0)
		return;
	ck_config_free(W->cfg);
	free(W);
}

void
ck_watch_close(struct ck_watch *W)
{
	struct run *r, *next;
	struct job *j;

	if (W == NULL)
		return;
	W->closing = true;
	ck_clock_unwatch(on_clock_moved, W);
	if (W->timer != NULL)
		event_free(W->timer);
	if (W->expiry_timer != NULL)
		event_free(W->expiry_timer);
	W->timer = W->expiry_timer = NULL;
	/* queries in flight: cancelled; their due keys stay due */
	for (r = TAILQ_FIRST(&W->runs); r != NULL; r = next) {
		next = TAILQ_NEXT(r, link);
		if (r->state != RUN_QUERYING)
			continue;	/* recording: its done() frees it */
		if (r->call.on_cancel != NULL)
			r->call.on_cancel(&r->call);
		r->state = RUN_RECORDING;	/* no answer after this */
		run_free(r);
	}
	while ((j = TAILQ_FIRST(&W->jobs)) != NULL) {
		TAILQ_REMOVE(&W->jobs, j, link);
		j->call = NULL;
	}
	maybe_free(W);	/* or when the last queued write is done */
}

void
ck_watch_reload(struct ck_watch *W, struct ck_config *cfg)
{
	if (W == NULL)
		return;
	ck_config_free(W->cfg);
	W->cfg = ck_config_ref(cfg);
	event_active(W->timer, EV_TIMEOUT, 0);
}

/* Due keys before the end of today (UTC+8), counted up to a bound. */
static long long
due_today(struct ck_watch *W, int64_t *first)
{
	struct ck_date d;
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	long long n = 0;
	int64_t end;
	int rc;

	*first = 0;
	ck_date_from_unix_cst(ck_clock_now(), &d);
	end = date_start(&d) + 86400;
	if (ck_store_read_begin(W->store, &txn) != 0)
		return -1;
	if (mdb_cursor_open(txn, W->db[DB_DUE], &cur) != 0) {
		ck_store_read_end(txn);
		return -1;
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 &&
	    n < 1000000; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		int64_t t = (int64_t)get_be64(k.mv_data);

		if (n == 0 && *first == 0)
			*first = t;
		if (t >= end)
			break;
		n++;
	}
	mdb_cursor_close(cur);
	ck_store_read_end(txn);
	return n;
}

void
ck_watch_write_json(struct ck_watch *W, struct evbuffer *out)
{
	int64_t first;
	long long today;

	if (W == NULL) {
		evbuffer_add_printf(out, "null");
		return;
	}
	today = due_today(W, &first);
	evbuffer_add_printf(out,
	    "{\"enrollments_active\":%lld,\"due_today\":%lld,"
	    "\"next_due\":%lld,\"findings_unread\":%lld,"
	    "\"freezes_expiring_7d\":%lld,\"in_flight\":%u,"
	    "\"runs_started\":%llu,\"results_recorded\":%llu,"
	    "\"baselines\":%llu,\"found\":%llu,\"caught_up\":%llu,"
	    "\"policy_refused\":%llu,\"failed\":%llu,\"expiring_findings\":%llu}",
	    (long long)W->counters.active, today, (long long)first,
	    (long long)W->counters.unread, (long long)W->expiring_week,
	    W->nruns, (unsigned long long)W->started,
	    (unsigned long long)W->recorded,
	    (unsigned long long)W->baselines, (unsigned long long)W->found,
	    (unsigned long long)W->catchups, (unsigned long long)W->refused,
	    (unsigned long long)W->failed_runs,
	    (unsigned long long)W->expiring_made);
}
