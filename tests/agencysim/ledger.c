/*
 * ledger.c: the simulator's LMDB ledger (rules in ledger.h).
 *
 * One environment, four named databases; every value starts with a
 * format version byte (1):
 *   assets  "<kind>:<scope>:<asset_id>" -> 1 | chakong.test.v1.LedgerAsset
 *   encs    "<scope>:<encumbrance_id>"  -> 1 | asset key
 *   idem    "<scope>|<idempotency_key>" -> 1 | sha256(request) | reply
 *   meta    "format" -> 1; "seq" -> 1 | u64 (ids of freezes, seals,
 *           transfers)
 *
 * A call works on the unpacked LedgerAsset message itself (in the call's
 * arena): load, settle expiries up to today, apply, derive the reported
 * fields (waiting, queued, queue positions), pack, put, commit.
 */
#include "ledger.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lmdb.h>
#include <openssl/evp.h>

#include "chakong/status.h"
#include "log.h"
#include "util.h"
#include "validate.h"

#define FORMAT	   1
#define NO_DAY	   INT64_MIN
#define DIGEST_LEN 32

struct sim_ledger {
	MDB_env *env;
	MDB_dbi assets, encs, idem, meta;
};

/* One state-changing call in progress. */
struct op {
	struct sim_ledger *lg;
	MDB_txn *txn;
	struct ck_arena *arena;
	const char *scope;
	int64_t now, today;
	const void *req;
	const struct sim_asset_ref *ref;
	ProtobufCMessage *reply;
	bool effect;
	char reason[256]; /* set: the reply is REJECTED with it */
};

typedef int (*op_fn)(struct op *op);

/* The one place LMDB errors are converted and logged. */
static int
mdb_err(int rc, const char *what)
{
	log_err(NULL, "ledger: %s: %s", what, mdb_strerror(rc));
	if (rc == MDB_MAP_FULL)
		return CK_ELIMIT;
	return CK_ESTORE;
}

int32_t
sim_max_duration(enum sim_kind kind)
{
	switch (kind) {
	case SIM_KIND_BANK:
		return 366;
	case SIM_KIND_VEHICLE:
		return 731;
	case SIM_KIND_REALESTATE:
		return 1096;
	}
	return 0;
}

static const char *
kind_name(enum sim_kind kind)
{
	switch (kind) {
	case SIM_KIND_BANK:
		return "bank";
	case SIM_KIND_REALESTATE:
		return "realestate";
	case SIM_KIND_VEHICLE:
		return "vehicle";
	}
	return "?";
}

static enum sim_kind
kind_of(const Chakong__Test__V1__LedgerAsset *a)
{
	if (strcmp(a->kind, "realestate") == 0)
		return SIM_KIND_REALESTATE;
	if (strcmp(a->kind, "vehicle") == 0)
		return SIM_KIND_VEHICLE;
	return SIM_KIND_BANK;
}

/* ---- small helpers ---------------------------------------------------- */

static char *
astrdup(struct ck_arena *arena, const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = ck_arena_alloc(arena, n);

	if (p != NULL)
		memcpy(p, s, n);
	return p;
}

static char empty[] = "";

static int64_t
day_of(const char *s)
{
	struct ck_date d;
	char why[CK_WHY_MAX];

	if (s == NULL || s[0] == '\0' || !ck_valid_date(s, strlen(s), &d, why))
		return NO_DAY;
	return ck_date_to_days(&d);
}

static char *
day_str(struct ck_arena *arena, int64_t day)
{
	struct ck_date d;
	char *p;

	if (day == NO_DAY)
		return empty;
	p = ck_arena_alloc(arena, 16);
	if (p == NULL)
		return empty;
	ck_date_from_days(day, &d);
	snprintf(p, 16, "%04d-%02d-%02d", d.year, d.month, d.day);
	return p;
}

static int64_t
today_of(int64_t now)
{
	struct ck_date d;

	ck_date_from_unix_cst(now, &d);
	return ck_date_to_days(&d);
}

static bool
is_live(const Chakong__Test__V1__LedgerEncumbrance *e)
{
	return strcmp(e->state, SIM_STATE_LIVE) == 0;
}

static bool
started(const Chakong__Test__V1__LedgerEncumbrance *e)
{
	return e->effective_date[0] != '\0';
}

static int64_t
balance_of(const Chakong__Test__V1__LedgerAsset *a)
{
	return a->base_balance_fen + a->deposited_fen - a->deducted_fen;
}

static int64_t
frozen_total(const Chakong__Test__V1__LedgerAsset *a)
{
	int64_t sum = 0;

	for (size_t i = 0; i < a->n_encumbrances; i++)
		if (is_live(a->encumbrances[i]))
			sum += a->encumbrances[i]->frozen_fen;
	return sum;
}

static const char *
subject_id_of(const Chakong__Agency__V1__Subject *s)
{
	if (s == NULL)
		return "";
	if (s->id_case == CHAKONG__AGENCY__V1__SUBJECT__ID_RESIDENT_ID)
		return s->resident_id;
	if (s->id_case == CHAKONG__AGENCY__V1__SUBJECT__ID_USCC)
		return s->uscc;
	return "";
}

static bool
key_fits(char *buf, size_t len, int n)
{
	(void)buf;
	return n > 0 && (size_t)n < len;
}

/* ---- the rules -------------------------------------------------------- */

static void
start(struct ck_arena *arena, Chakong__Test__V1__LedgerEncumbrance *e,
    int64_t day)
{
	e->effective_date = day_str(arena, day);
	e->expiry_date =
	    day_str(arena, day + e->duration_days + e->extended_days);
}

/*
 * Money that is available goes to the live freezes still waiting, in order
 * of arrival; a freeze that holds money, and the first live encumbrance
 * (freeze or seal), take effect on `day` if they had not yet.
 */
static void
distribute(
    struct ck_arena *arena, Chakong__Test__V1__LedgerAsset *a, int64_t day)
{
	int64_t avail = balance_of(a) - frozen_total(a);
	bool first = true;

	for (size_t i = 0; i < a->n_encumbrances; i++) {
		Chakong__Test__V1__LedgerEncumbrance *e = a->encumbrances[i];
		int64_t want;

		if (!is_live(e))
			continue;
		want = e->requested_fen - e->frozen_fen;
		if (want > 0 && avail > 0) {
			int64_t take = want < avail ? want : avail;

			e->frozen_fen += take;
			avail -= take;
		}
		if (!started(e) && (first || e->frozen_fen > 0))
			start(arena, e, day);
		first = false;
	}
}

/* The reported fields: waiting, queued parts and queue positions. */
static void
derive(Chakong__Test__V1__LedgerAsset *a)
{
	bool bank = kind_of(a) == SIM_KIND_BANK, earlier = false;
	int32_t pos = 0;

	for (size_t i = 0; i < a->n_encumbrances; i++) {
		Chakong__Test__V1__LedgerEncumbrance *e = a->encumbrances[i];
		bool queued;

		if (!is_live(e)) {
			e->waiting_fen = e->queued_fen = 0;
			e->queue_position = 0;
			continue;
		}
		e->waiting_fen = e->requested_fen - e->frozen_fen;
		e->queued_fen = earlier ? e->waiting_fen : 0;
		queued = bank ? e->queued_fen > 0 : !started(e);
		e->queue_position = queued ? ++pos : 0;
		earlier = true;
	}
	a->balance_fen = balance_of(a);
}

/*
 * Apply every expiry before `today`, earliest first, each as of the day
 * after its expiry date, promoting what waits behind it.
 */
static void
settle(struct ck_arena *arena, Chakong__Test__V1__LedgerAsset *a, int64_t today)
{
	for (;;) {
		Chakong__Test__V1__LedgerEncumbrance *x = NULL;
		int64_t xe = 0;

		for (size_t i = 0; i < a->n_encumbrances; i++) {
			Chakong__Test__V1__LedgerEncumbrance *e =
			    a->encumbrances[i];
			int64_t exp;

			if (!is_live(e) || !started(e))
				continue;
			exp = day_of(e->expiry_date);
			if (exp != NO_DAY && exp < today &&
			    (x == NULL || exp < xe)) {
				x = e;
				xe = exp;
			}
		}
		if (x == NULL)
			break;
		x->state = SIM_STATE_EXPIRED;
		x->ended_date = day_str(arena, xe + 1);
		x->frozen_fen = 0;
		distribute(arena, a, xe + 1);
	}
	derive(a);
}

/* ---- records ---------------------------------------------------------- */

/*
 * A record's value, in arena: the format byte, `head` (hlen bytes: the
 * request digest of an idempotency record, or nothing), msg packed.
 */
static int
pack_record(struct ck_arena *arena, const void *head, size_t hlen,
    const ProtobufCMessage *msg, MDB_val *v)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	uint8_t *buf = ck_arena_alloc(arena, 1 + hlen + len);

	if (buf == NULL)
		return CK_ENOMEM;
	buf[0] = FORMAT;
	if (hlen > 0)
		memcpy(buf + 1, head, hlen);
	protobuf_c_message_pack(msg, buf + 1 + hlen);
	v->mv_size = 1 + hlen + len;
	v->mv_data = buf;
	return 0;
}

/*
 * What follows a record value's format byte; NULL when the value is of
 * another format or has fewer than `min` bytes after it.
 */
static const uint8_t *
record_body(const MDB_val *v, size_t min)
{
	const uint8_t *p = v->mv_data;

	if (v->mv_size < 1 + min || p[0] != FORMAT)
		return NULL;
	return p + 1;
}

/* The encs key of encumbrance `id` in the call's scope; < 0: too long. */
static int
enc_key(const struct op *op, const char *id, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s:%s", op->scope, id);

	return key_fits(buf, len, n) ? n : CK_EINVAL;
}

static int
asset_key(char *buf, size_t len, enum sim_kind kind, const char *scope,
    const char *asset_id)
{
	int n =
	    snprintf(buf, len, "%s:%s:%s", kind_name(kind), scope, asset_id);

	return key_fits(buf, len, n) ? n : CK_EINVAL;
}

/* The record of an asset nobody touched yet. */
static int
synth_asset(const struct sim_asset_ref *ref, struct ck_arena *arena,
    Chakong__Test__V1__LedgerAsset **out)
{
	Chakong__Test__V1__LedgerAsset *a = ck_arena_alloc(arena, sizeof(*a));

	if (a == NULL)
		return CK_ENOMEM;
	chakong__test__v1__ledger_asset__init(a);
	a->kind = (char *)kind_name(ref->kind);
	a->scope = astrdup(arena, ref->scope);
	a->asset_id = astrdup(arena, ref->asset_id);
	a->subject_id = astrdup(arena, ref->subject_id);
	a->currency =
	    astrdup(arena, ref->currency != NULL ? ref->currency : "");
	if (a->scope == NULL || a->asset_id == NULL || a->subject_id == NULL ||
	    a->currency == NULL)
		return CK_ENOMEM;
	a->base_balance_fen = ref->base_balance_fen;
	a->balance_fen = ref->base_balance_fen;
	a->next_arrival = 1;
	*out = a;
	return 0;
}

static int
load_asset(MDB_txn *txn, struct sim_ledger *lg, const char *key,
    const struct sim_asset_ref *ref, struct ck_arena *arena,
    Chakong__Test__V1__LedgerAsset **out)
{
	MDB_val k = { strlen(key), (void *)key }, v;
	ProtobufCAllocator alloc;
	Chakong__Test__V1__LedgerAsset *a;
	const uint8_t *body;
	int rc = mdb_get(txn, lg->assets, &k, &v);

	if (rc == MDB_NOTFOUND)
		return ref != NULL ? synth_asset(ref, arena, out)
				   : CK_ENOTFOUND;
	if (rc != 0)
		return mdb_err(rc, "get asset");
	if ((body = record_body(&v, 0)) == NULL) {
		log_err(NULL, "ledger: asset record of unknown format");
		return CK_ESTORE;
	}
	ck_arena_allocator(arena, &alloc);
	/* unpack copies what it keeps: the value dies with the txn */
	a = chakong__test__v1__ledger_asset__unpack(
	    &alloc, v.mv_size - 1, body);
	if (a == NULL) {
		log_err(NULL, "ledger: asset record does not decode");
		return CK_ESTORE;
	}
	*out = a;
	return 0;
}

static int
save_asset(struct op *op, const Chakong__Test__V1__LedgerAsset *a)
{
	char key[256];
	MDB_val k, v;
	int rc = pack_record(op->arena, NULL, 0, &a->base, &v);

	if (rc != 0)
		return rc;
	if (asset_key(key, sizeof(key), kind_of(a), a->scope, a->asset_id) < 0)
		return CK_EINVAL;
	k.mv_size = strlen(key);
	k.mv_data = key;
	rc = mdb_put(op->txn, op->lg->assets, &k, &v, 0);
	return rc == 0 ? 0 : mdb_err(rc, "put asset");
}

static int
next_seq(struct op *op, uint64_t *out)
{
	MDB_val k = { 3, (void *)"seq" }, v;
	uint8_t buf[9];
	uint64_t seq = 0;
	int rc = mdb_get(op->txn, op->lg->meta, &k, &v);

	if (rc == 0 && v.mv_size == 9)
		memcpy(&seq, (const uint8_t *)v.mv_data + 1, 8);
	else if (rc != 0 && rc != MDB_NOTFOUND)
		return mdb_err(rc, "get seq");
	seq++;
	buf[0] = FORMAT;
	memcpy(buf + 1, &seq, 8);
	v.mv_size = sizeof(buf);
	v.mv_data = buf;
	rc = mdb_put(op->txn, op->lg->meta, &k, &v, 0);
	if (rc != 0)
		return mdb_err(rc, "put seq");
	*out = seq;
	return 0;
}

static int
put_enc_index(
    struct op *op, const char *id, const Chakong__Test__V1__LedgerAsset *a)
{
	char key[256], val[257];
	MDB_val k, v;
	int n = enc_key(op, id, key, sizeof(key)), m, rc;

	if (n < 0)
		return n;
	val[0] = FORMAT;
	m = asset_key(
	    val + 1, sizeof(val) - 1, kind_of(a), a->scope, a->asset_id);
	if (m < 0)
		return m;
	k.mv_size = (size_t)n;
	k.mv_data = key;
	v.mv_size = (size_t)m + 1;
	v.mv_data = val;
	rc = mdb_put(op->txn, op->lg->encs, &k, &v, 0);
	return rc == 0 ? 0 : mdb_err(rc, "put encumbrance index");
}

/*
 * The asset holding encumbrance `id` in this scope, settled to today, and
 * the encumbrance. CK_ENOTFOUND when the scope has no such id.
 */
static int
find_enc(struct op *op, const char *id, Chakong__Test__V1__LedgerAsset **a,
    Chakong__Test__V1__LedgerEncumbrance **e)
{
	char key[256], akey[257];
	MDB_val k, v;
	const uint8_t *body;
	int n = enc_key(op, id, key, sizeof(key)), rc;

	if (n < 0)
		return CK_ENOTFOUND;
	k.mv_size = (size_t)n;
	k.mv_data = key;
	rc = mdb_get(op->txn, op->lg->encs, &k, &v);
	if (rc == MDB_NOTFOUND)
		return CK_ENOTFOUND;
	if (rc != 0)
		return mdb_err(rc, "get encumbrance index");
	if ((body = record_body(&v, 1)) == NULL || v.mv_size > sizeof(akey))
		return CK_ESTORE;
	memcpy(akey, body, v.mv_size - 1);
	akey[v.mv_size - 1] = '\0';
	rc = load_asset(op->txn, op->lg, akey, NULL, op->arena, a);
	if (rc != 0)
		return rc == CK_ENOTFOUND ? CK_ESTORE : rc;
	settle(op->arena, *a, op->today);
	for (size_t i = 0; i < (*a)->n_encumbrances; i++)
		if (strcmp((*a)->encumbrances[i]->id, id) == 0) {
			*e = (*a)->encumbrances[i];
			return 0;
		}
	return CK_ESTORE;
}

/* ---- open / close ----------------------------------------------------- */

int
sim_ledger_open(const char *dir, size_t map_mb, bool nosync,
    struct sim_ledger **out, char *err, size_t errlen)
{
	struct sim_ledger *lg;
	MDB_txn *txn = NULL;
	MDB_val k = { 6, (void *)"format" }, v;
	uint8_t fmt = FORMAT;
	int rc;

	*out = NULL;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -errno;
	}
	lg = calloc(1, sizeof(*lg));
	if (lg == NULL)
		return CK_ENOMEM;
	if ((rc = mdb_env_create(&lg->env)) != 0)
		goto fail_env;
	mdb_env_set_maxdbs(lg->env, 8);
	mdb_env_set_mapsize(lg->env, (map_mb ? map_mb : 256) << 20);
	if ((rc = mdb_env_open(lg->env, dir, nosync ? MDB_NOSYNC : 0, 0600)) !=
	    0)
		goto fail_open;
	if ((rc = mdb_txn_begin(lg->env, NULL, 0, &txn)) != 0 ||
	    (rc = mdb_dbi_open(txn, "assets", MDB_CREATE, &lg->assets)) ||
	    (rc = mdb_dbi_open(txn, "encs", MDB_CREATE, &lg->encs)) ||
	    (rc = mdb_dbi_open(txn, "idem", MDB_CREATE, &lg->idem)) ||
	    (rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &lg->meta)))
		goto fail_txn;
	rc = mdb_get(txn, lg->meta, &k, &v);
	if (rc == 0 && (v.mv_size != 1 || *(uint8_t *)v.mv_data != FORMAT)) {
		snprintf(err, errlen, "%s: ledger of an unknown format", dir);
		mdb_txn_abort(txn);
		mdb_env_close(lg->env);
		free(lg);
		return CK_ESTORE;
	}
	if (rc == MDB_NOTFOUND) {
		v.mv_size = 1;
		v.mv_data = &fmt;
		rc = mdb_put(txn, lg->meta, &k, &v, 0);
	}
	if (rc != 0)
		goto fail_txn;
	if ((rc = mdb_txn_commit(txn)) != 0)
		goto fail_open;
	*out = lg;
	return 0;

fail_txn:
	if (txn != NULL)
		mdb_txn_abort(txn);
fail_open:
	mdb_env_close(lg->env);
fail_env:
	snprintf(err, errlen, "%s: lmdb: %s", dir, mdb_strerror(rc));
	free(lg);
	return CK_ESTORE;
}

void
sim_ledger_close(struct sim_ledger *lg)
{
	if (lg == NULL)
		return;
	mdb_env_close(lg->env);
	free(lg);
}

/* ---- reading ---------------------------------------------------------- */

int
sim_ledger_view(struct sim_ledger *lg, const struct sim_asset_ref *ref,
    int64_t now, struct ck_arena *arena, Chakong__Test__V1__LedgerAsset **out)
{
	char key[256];
	MDB_txn *txn;
	int rc;

	if (asset_key(key, sizeof(key), ref->kind, ref->scope, ref->asset_id) <
	    0)
		return CK_EINVAL;
	if (lg == NULL) {
		/* no ledger (a dump of the population alone) */
		rc = synth_asset(ref, arena, out);
		if (rc == 0)
			derive(*out);
		return rc;
	}
	rc = mdb_txn_begin(lg->env, NULL, MDB_RDONLY, &txn);
	if (rc != 0)
		return mdb_err(rc, "begin read");
	rc = load_asset(txn, lg, key, ref, arena, out);
	mdb_txn_abort(txn);
	if (rc == 0)
		settle(arena, *out, today_of(now));
	return rc;
}

static Chakong__Agency__V1__Encumbrance *
to_encumbrance(struct ck_arena *arena, const Chakong__Test__V1__LedgerAsset *a,
    const Chakong__Test__V1__LedgerEncumbrance *e)
{
	Chakong__Agency__V1__Encumbrance *x = ck_arena_alloc(arena, sizeof(*x));
	bool bank = kind_of(a) == SIM_KIND_BANK;

	if (x == NULL)
		return NULL;
	chakong__agency__v1__encumbrance__init(x);
	x->encumbrance_id = e->id;
	x->kind = bank
	    ? CHAKONG__AGENCY__V1__ENCUMBRANCE_KIND__ENCUMBRANCE_FREEZE
	    : CHAKONG__AGENCY__V1__ENCUMBRANCE_KIND__ENCUMBRANCE_SEAL;
	x->court_id = e->court_id;
	x->case_number = e->case_number;
	if (bank) {
		x->frozen_fen = e->frozen_fen;
		x->queued_fen = e->queued_fen;
		x->requested_fen = e->requested_fen;
	}
	x->effective_date = e->effective_date;
	x->expiry_date = e->expiry_date;
	x->queue_position = e->queue_position;
	x->duration_days = e->duration_days + e->extended_days;
	return x;
}

static int
live_encumbrances(struct ck_arena *arena,
    const Chakong__Test__V1__LedgerAsset *a,
    Chakong__Agency__V1__Encumbrance ***encs, size_t *nencs)
{
	size_t n = 0;

	*encs = ck_arena_alloc(arena, (a->n_encumbrances + 1) * sizeof(**encs));
	if (*encs == NULL)
		return CK_ENOMEM;
	for (size_t i = 0; i < a->n_encumbrances; i++) {
		if (!is_live(a->encumbrances[i]))
			continue;
		(*encs)[n] = to_encumbrance(arena, a, a->encumbrances[i]);
		if ((*encs)[n++] == NULL)
			return CK_ENOMEM;
	}
	*nencs = n;
	return 0;
}

int
sim_ledger_account(struct sim_ledger *lg, const struct sim_asset_ref *ref,
    int64_t now, struct ck_arena *arena, Chakong__Agency__V1__Account *acct)
{
	Chakong__Test__V1__LedgerAsset *a;
	int rc = sim_ledger_view(lg, ref, now, arena, &a);

	if (rc != 0)
		return rc;
	acct->balance_fen = a->balance_fen;
	acct->frozen_fen = frozen_total(a);
	acct->available_fen = acct->balance_fen - acct->frozen_fen;
	return live_encumbrances(
	    arena, a, &acct->encumbrances, &acct->n_encumbrances);
}

int
sim_ledger_seals(struct sim_ledger *lg, const struct sim_asset_ref *ref,
    int64_t now, struct ck_arena *arena,
    Chakong__Agency__V1__Encumbrance ***encs, size_t *nencs)
{
	Chakong__Test__V1__LedgerAsset *a;
	int rc = sim_ledger_view(lg, ref, now, arena, &a);

	if (rc != 0)
		return rc;
	return live_encumbrances(arena, a, encs, nencs);
}

/* ---- the idempotent call wrapper -------------------------------------- */

/*
 * What "the same arguments" means: the method, the scope, the request
 * with its CallContext reduced to court, case, document and key (officer,
 * origin and broker id may differ on a re-send after a broker restart).
 */
static int
digest(const char *method, const char *scope, const ProtobufCMessage *req,
    const Chakong__Agency__V1__CallContext *ctx, uint8_t out[DIGEST_LEN])
{
	const ProtobufCFieldDescriptor *f =
	    protobuf_c_message_descriptor_get_field_by_name(
		req->descriptor, "ctx");
	Chakong__Agency__V1__CallContext c =
	    CHAKONG__AGENCY__V1__CALL_CONTEXT__INIT;
	Chakong__Agency__V1__CallContext *cp = &c;
	size_t sz = req->descriptor->sizeof_message, ml, sl, len;
	uint8_t *copy, *buf;
	int rc = 0;

	if (f == NULL)
		return CK_EINVAL;
	copy = malloc(sz);
	if (copy == NULL)
		return CK_ENOMEM;
	memcpy(copy, req, sz);
	c.court_id = ctx->court_id;
	c.case_number = ctx->case_number;
	c.document_number = ctx->document_number;
	c.idempotency_key = ctx->idempotency_key;
	memcpy(copy + f->offset, &cp, sizeof(cp));
	ml = strlen(method) + 1;
	sl = strlen(scope) + 1;
	len = protobuf_c_message_get_packed_size((ProtobufCMessage *)copy);
	buf = malloc(ml + sl + len);
	if (buf == NULL) {
		free(copy);
		return CK_ENOMEM;
	}
	memcpy(buf, method, ml);
	memcpy(buf + ml, scope, sl);
	protobuf_c_message_pack((ProtobufCMessage *)copy, buf + ml + sl);
	if (EVP_Digest(buf, ml + sl + len, out, NULL, EVP_sha256(), NULL) != 1)
		rc = CK_ENOMEM;
	free(buf);
	free(copy);
	return rc;
}

static void
set_rejected(
    ProtobufCMessage *reply, const char *reason, struct ck_arena *arena)
{
	const ProtobufCMessageDescriptor *d = reply->descriptor;
	const ProtobufCFieldDescriptor *st =
	    protobuf_c_message_descriptor_get_field_by_name(d, "status");
	const ProtobufCFieldDescriptor *rs =
	    protobuf_c_message_descriptor_get_field_by_name(d, "reason");
	char *r = astrdup(arena, reason);

	/* a rejection carries only status and reason */
	protobuf_c_message_init(d, reply);
	*(int *)((uint8_t *)reply + st->offset) =
	    CHAKONG__AGENCY__V1__ACTION_STATUS__ACTION_REJECTED;
	*(char **)((uint8_t *)reply + rs->offset) = r != NULL ? r : empty;
}

static int
run_op(struct sim_ledger *lg, const char *scope, const char *method,
    const ProtobufCMessage *req, const Chakong__Agency__V1__CallContext *ctx,
    const struct sim_asset_ref *ref, int64_t now, struct ck_arena *arena,
    const ProtobufCMessageDescriptor *rdesc, op_fn fn, ProtobufCMessage **out,
    struct sim_outcome *oc)
{
	struct op op;
	uint8_t dg[DIGEST_LEN];
	char key[512];
	MDB_val k, v;
	int n, rc;

	memset(oc, 0, sizeof(*oc));
	*out = NULL;
	if (ctx == NULL || ctx->idempotency_key == NULL ||
	    ctx->idempotency_key[0] == '\0')
		return CK_EINVAL;
	n = snprintf(key, sizeof(key), "%s|%s", scope, ctx->idempotency_key);
	if (!key_fits(key, sizeof(key), n))
		return CK_EINVAL;
	if ((rc = digest(method, scope, req, ctx, dg)) != 0)
		return rc;
	memset(&op, 0, sizeof(op));
	op.lg = lg;
	op.arena = arena;
	op.scope = scope;
	op.now = now;
	op.today = today_of(now);
	op.req = req;
	op.ref = ref;
	op.reply = ck_arena_alloc(arena, rdesc->sizeof_message);
	if (op.reply == NULL)
		return CK_ENOMEM;
	protobuf_c_message_init(rdesc, op.reply);

	rc = mdb_txn_begin(lg->env, NULL, 0, &op.txn);
	if (rc != 0)
		return mdb_err(rc, "begin write");
	k.mv_size = (size_t)n;
	k.mv_data = key;
	rc = mdb_get(op.txn, lg->idem, &k, &v);
	if (rc == 0) {
		const uint8_t *p = record_body(&v, DIGEST_LEN);
		ProtobufCAllocator alloc;

		if (p == NULL) {
			rc = CK_ESTORE;
			goto abort;
		}
		if (memcmp(p, dg, DIGEST_LEN) != 0) {
			oc->conflict = true;
			set_rejected(op.reply,
			    "idempotency key reused with different arguments",
			    arena);
			*out = op.reply;
			rc = 0;
			goto abort;
		}
		ck_arena_allocator(arena, &alloc);
		*out = protobuf_c_message_unpack(
		    rdesc, &alloc, v.mv_size - 1 - DIGEST_LEN, p + DIGEST_LEN);
		rc = *out == NULL ? CK_ESTORE : 0;
		oc->replayed = rc == 0;
		goto abort;
	}
	if (rc != MDB_NOTFOUND) {
		rc = mdb_err(rc, "get idempotency record");
		goto abort;
	}
	if ((rc = fn(&op)) != 0)
		goto abort;
	if (op.reason[0] != '\0') {
		set_rejected(op.reply, op.reason, arena);
		oc->rejected = true;
		op.effect = false;
	}
	if ((rc = pack_record(arena, dg, DIGEST_LEN, op.reply, &v)) != 0)
		goto abort;
	rc = mdb_put(op.txn, lg->idem, &k, &v, 0);
	if (rc != 0) {
		rc = mdb_err(rc, "put idempotency record");
		goto abort;
	}
	/* durable before anyone sees the reply */
	rc = mdb_txn_commit(op.txn);
	if (rc != 0)
		return mdb_err(rc, "commit");
	oc->effect = op.effect;
	*out = op.reply;
	return 0;

abort:
	mdb_txn_abort(op.txn);
	return rc;
}

static void reject(struct op *op, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
reject(struct op *op, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(op->reason, sizeof(op->reason), fmt, ap);
	va_end(ap);
}

static int
new_enc(struct op *op, Chakong__Test__V1__LedgerAsset *a,
    const Chakong__Agency__V1__CallContext *ctx, const char *prefix,
    int32_t days, int64_t fen, Chakong__Test__V1__LedgerEncumbrance **out)
{
	Chakong__Test__V1__LedgerEncumbrance *e =
	    ck_arena_alloc(op->arena, sizeof(*e));
	Chakong__Test__V1__LedgerEncumbrance **arr =
	    ck_arena_alloc(op->arena, (a->n_encumbrances + 1) * sizeof(*arr));
	char id[64];
	uint64_t seq;
	int rc;

	if (e == NULL || arr == NULL)
		return CK_ENOMEM;
	if ((rc = next_seq(op, &seq)) != 0)
		return rc;
	snprintf(id, sizeof(id), "%s-%08llu", prefix, (unsigned long long)seq);
	chakong__test__v1__ledger_encumbrance__init(e);
	e->id = astrdup(op->arena, id);
	e->state = SIM_STATE_LIVE;
	e->court_id = ctx->court_id;
	e->case_number = ctx->case_number;
	e->document_number = ctx->document_number;
	e->idempotency_key = ctx->idempotency_key;
	e->arrival = a->next_arrival++;
	e->requested_fen = fen;
	e->duration_days = days;
	e->created_unix = op->now;
	if (e->id == NULL)
		return CK_ENOMEM;
	if (a->n_encumbrances > 0)
		memcpy(arr, a->encumbrances, a->n_encumbrances * sizeof(*arr));
	arr[a->n_encumbrances++] = e;
	a->encumbrances = arr;
	*out = e;
	return put_enc_index(op, e->id, a);
}

/* The asset `ref` names, settled to today (made from ref if untouched). */
static int
load_settled(struct op *op, const struct sim_asset_ref *ref,
    Chakong__Test__V1__LedgerAsset **a)
{
	char key[256];
	int rc;

	if (asset_key(key, sizeof(key), ref->kind, ref->scope, ref->asset_id) <
	    0)
		return CK_EINVAL;
	if ((rc = load_asset(op->txn, op->lg, key, ref, op->arena, a)) != 0)
		return rc;
	settle(op->arena, *a, op->today);
	return 0;
}

/*
 * After a change: hand what is available to the freezes waiting, derive
 * the reported fields and store the asset; the call had an effect.
 */
static int
store(struct op *op, Chakong__Test__V1__LedgerAsset *a)
{
	int rc;

	distribute(op->arena, a, op->today);
	derive(a);
	if ((rc = save_asset(op, a)) != 0)
		return rc;
	op->effect = true;
	return 0;
}

/* false (after reject()) unless 1 <= days <= the kind's maximum */
static bool
want_days(struct op *op, int32_t days, enum sim_kind kind, const char *what)
{
	int32_t max = sim_max_duration(kind);

	if (days >= 1 && days <= max)
		return true;
	reject(op, "duration_days: %s lasts 1..%d days", what, max);
	return false;
}

static bool
same_case(const Chakong__Test__V1__LedgerEncumbrance *e,
    const Chakong__Agency__V1__CallContext *ctx)
{
	return strcmp(e->court_id, ctx->court_id) == 0 &&
	    strcmp(e->case_number, ctx->case_number) == 0;
}

/* ---- bank ------------------------------------------------------------- */

static int
op_freeze(struct op *op)
{
	const Chakong__Agency__V1__FreezeRequest *req = op->req;
	Chakong__Agency__V1__FreezeReply *r = (void *)op->reply;
	const struct sim_asset_ref *ref = op->ref;
	char prefix[24];
	Chakong__Test__V1__LedgerAsset *a;
	Chakong__Test__V1__LedgerEncumbrance *e;
	int rc;

	if (ref == NULL) {
		reject(op, "no such account for this subject at this bank");
		return 0;
	}
	if (req->amount == NULL || req->amount->fen <= 0) {
		reject(op, "amount: must be positive");
		return 0;
	}
	if (req->amount->currency[0] != '\0' &&
	    strcmp(req->amount->currency, ref->currency) != 0) {
		reject(op, "amount: the account is held in %s", ref->currency);
		return 0;
	}
	if (!want_days(
		op, req->duration_days, SIM_KIND_BANK, "a deposit freeze"))
		return 0;
	if ((rc = load_settled(op, ref, &a)) != 0)
		return rc;
	snprintf(prefix, sizeof(prefix), "F%s", ref->scope);
	rc = new_enc(
	    op, a, req->ctx, prefix, req->duration_days, req->amount->fen, &e);
	if (rc != 0 || (rc = store(op, a)) != 0)
		return rc;
	r->status = e->queued_fen > 0
	    ? CHAKONG__AGENCY__V1__ACTION_STATUS__ACTION_QUEUED
	    : e->frozen_fen < e->requested_fen
	    ? CHAKONG__AGENCY__V1__ACTION_STATUS__ACTION_PARTIAL
	    : CHAKONG__AGENCY__V1__ACTION_STATUS__ACTION_DONE;
	r->freeze_id = e->id;
	r->frozen_fen = e->frozen_fen;
	r->queued_fen = e->queued_fen;
	r->effective_date = e->effective_date;
	r->expiry_date = e->expiry_date;
	r->queue_position = e->queue_position;
	return 0;
}

int
sim_ledger_freeze(struct sim_ledger *lg, const char *scope,
    const struct sim_asset_ref *ref,
    const Chakong__Agency__V1__FreezeRequest *req, int64_t now,
    struct ck_arena *arena, Chakong__Agency__V1__FreezeReply **out,
    struct sim_outcome *oc)
{
	return run_op(lg, scope, "Freeze", &req->base, req->ctx, ref, now,
	    arena, &chakong__agency__v1__freeze_reply__descriptor, op_freeze,
	    (ProtobufCMessage **)out, oc);
}

/*
 * The encumbrance a follow-up call names, checked to belong to the
 * request's subject and case. Returns 0 with *e NULL after reject().
 */
static int
own_enc(struct op *op, const char *id, const Chakong__Agency__V1__Subject *s,
    const Chakong__Agency__V1__CallContext *ctx,
    Chakong__Test__V1__LedgerAsset **a,
    Chakong__Test__V1__LedgerEncumbrance **e)
{
	int rc = find_enc(op, id, a, e);

	if (rc == CK_ENOTFOUND) {
		*e = NULL;
		reject(op, "encumbrance_id: no such freeze or seal here");
		return 0;
	}
	if (rc != 0)
		return rc;
	if (strcmp((*a)->subject_id, subject_id_of(s)) != 0) {
		*e = NULL;
		reject(op,
		    "subject: the freeze or seal is not on this "
		    "subject's asset");
		return 0;
	}
	if (!same_case(*e, ctx)) {
		*e = NULL;
		reject(op, "the freeze or seal belongs to another case");
		return 0;
	}
	if (!is_live(*e)) {
		const char *st = (*e)->state;

		reject(op, "the freeze or seal is no longer in force (%s%s%s)",
		    st, (*e)->ended_date[0] ? " on " : "", (*e)->ended_date);
		*e = NULL;
		return 0;
	}
	return 0;
}

static int
op_deduct(struct op *op)
{
	const Chakong__Agency__V1__DeductRequest *req = op->req;
	Chakong__Agency__V1__DeductReply *r = (void *)op->reply;
	char tid[64];
	uint64_t seq;
	Chakong__Test__V1__LedgerAsset *a;
	Chakong__Test__V1__LedgerEncumbrance *e;
	int rc;

	if ((rc = own_enc(
		 op, req->freeze_id, req->subject, req->ctx, &a, &e)) != 0 ||
	    e == NULL)
		return rc;
	if (kind_of(a) != SIM_KIND_BANK) {
		reject(op, "freeze_id: not a deposit freeze");
		return 0;
	}
	if (req->amount == NULL || req->amount->fen <= 0) {
		reject(op, "amount: must be positive");
		return 0;
	}
	if (req->amount->currency[0] != '\0' &&
	    strcmp(req->amount->currency, a->currency) != 0) {
		reject(op, "amount: the account is held in %s", a->currency);
		return 0;
	}
	if (req->custody_account[0] == '\0') {
		reject(op, "custody_account: required");
		return 0;
	}
	if (req->amount->fen > e->frozen_fen) {
		reject(op,
		    "amount: more than this case has frozen in force "
		    "on the account (%lld fen)",
		    (long long)e->frozen_fen);
		return 0;
	}
	if ((rc = next_seq(op, &seq)) != 0)
		return rc;
	e->frozen_fen -= req->amount->fen;
	e->requested_fen -= req->amount->fen;
	e->deducted_fen += req->amount->fen;
	a->deducted_fen += req->amount->fen;
	if (e->requested_fen == 0) {
		e->state = SIM_STATE_SPENT;
		e->ended_date = day_str(op->arena, op->today);
	}
	if ((rc = store(op, a)) != 0)
		return rc;
	snprintf(
	    tid, sizeof(tid), "T%s-%08llu", a->scope, (unsigned long long)seq);
	r->status = CHAKONG__AGENCY__V1__ACTION_STATUS__ACTION_DONE;
	r->deducted_fen = req->amount->fen;
	r->transfer_id = astrdup(op->arena, tid);
	return r->transfer_id == NULL ? CK_ENOMEM : 0;
}

int
sim_ledger_deduct(struct sim_ledger *lg, const char *scope,
    const Chakong__Agency__V1__DeductRequest *req, int64_t now,
    struct ck_arena *arena, Chakong__Agency__V1__DeductReply **out,
    struct sim_outcome *oc)
{
	return run_op(lg, scope, "Deduct", &req->base, req->ctx, NULL, now,
	    arena, &chakong__agency__v1__deduct_reply__descriptor, op_deduct,
	    (ProtobufCMessage **)out, oc);
}

/* ---- registries ------------------------------------------------------- */

static int
op_seal(struct op *op)
{
	const Chakong__Agency__V1__SealRequest *req = op->req;
	Chakong__Agency__V1__SealReply *r = (void *)op->reply;
	const struct sim_asset_ref *ref = op->ref;
	Chakong__Test__V1__LedgerAsset *a;
	Chakong__Test__V1__LedgerEncumbrance *e;
	int rc;

	if (ref == NULL) {
		reject(
		    op, "asset_id: no such asset registered to this subject");
		return 0;
	}
	if (!want_days(op, req->duration_days, ref->kind, "a seal here"))
		return 0;
	if ((rc = load_settled(op, ref, &a)) != 0)
		return rc;
	for (size_t i = 0; i < a->n_encumbrances; i++) {
		const Chakong__Test__V1__LedgerEncumbrance *o =
		    a->encumbrances[i];

		if (is_live(o) && same_case(o, req->ctx)) {
			reject(op,
			    "this case already holds a seal on the asset (%s)",
			    o->id);
			return 0;
		}
	}
	rc = new_enc(op, a, req->ctx,
	    ref->kind == SIM_KIND_VEHICLE ? "SVH" : "SRE", req->duration_days,
	    0, &e);
	if (rc != 0 || (rc = store(op, a)) != 0)
		return rc;
	r->status = e->queue_position > 0
	    ? CHAKONG__AGENCY__V1__ACTION_STATUS__ACTION_QUEUED
	    : CHAKONG__AGENCY__V1__ACTION_STATUS__ACTION_DONE;
	r->seal_id = e->id;
	r->effective_date = e->effective_date;
	r->expiry_date = e->expiry_date;
	r->queue_position = e->queue_position;
	return 0;
}

int
sim_ledger_seal(struct sim_ledger *lg, const char *scope,
    const struct sim_asset_ref *ref,
    const Chakong__Agency__V1__SealRequest *req, int64_t now,
    struct ck_arena *arena, Chakong__Agency__V1__SealReply **out,
    struct sim_outcome *oc)
{
	return run_op(lg, scope, "Seal", &req->base, req->ctx, ref, now, arena,
	    &chakong__agency__v1__seal_reply__descriptor, op_seal,
	    (ProtobufCMessage **)out, oc);
}

/* ---- both ------------------------------------------------------------- */

static int
op_extend(struct op *op)
{
	const Chakong__Agency__V1__ExtendRequest *req = op->req;
	Chakong__Agency__V1__ExtendReply *r = (void *)op->reply;
	Chakong__Test__V1__LedgerAsset *a;
	Chakong__Test__V1__LedgerEncumbrance *e;
	int rc;

	if ((rc = own_enc(op, req->encumbrance_id, req->subject, req->ctx, &a,
		 &e)) != 0 ||
	    e == NULL)
		return rc;
	if (!want_days(op, req->duration_days, kind_of(a), "an extension here"))
		return 0;
	if (!started(e)) {
		reject(op,
		    "queued: its period has not started, nothing to extend");
		return 0;
	}
	e->extended_days += req->duration_days;
	e->expiry_date =
	    day_str(op->arena, day_of(e->expiry_date) + req->duration_days);
	derive(a);
	if ((rc = save_asset(op, a)) != 0)
		return rc;
	op->effect = true;
	r->status = CHAKONG__AGENCY__V1__ACTION_STATUS__ACTION_DONE;
	r->expiry_date = e->expiry_date;
	return 0;
}

int
sim_ledger_extend(struct sim_ledger *lg, const char *scope,
    const Chakong__Agency__V1__ExtendRequest *req, int64_t now,
    struct ck_arena *arena, Chakong__Agency__V1__ExtendReply **out,
    struct sim_outcome *oc)
{
	return run_op(lg, scope, "Extend", &req->base, req->ctx, NULL, now,
	    arena, &chakong__agency__v1__extend_reply__descriptor, op_extend,
	    (ProtobufCMessage **)out, oc);
}

static int
op_release(struct op *op)
{
	const Chakong__Agency__V1__ReleaseRequest *req = op->req;
	Chakong__Agency__V1__ReleaseReply *r = (void *)op->reply;
	Chakong__Test__V1__LedgerAsset *a;
	Chakong__Test__V1__LedgerEncumbrance *e;
	int rc;

	if ((rc = own_enc(op, req->encumbrance_id, req->subject, req->ctx, &a,
		 &e)) != 0 ||
	    e == NULL)
		return rc;
	e->state = SIM_STATE_RELEASED;
	e->ended_date = day_str(op->arena, op->today);
	e->frozen_fen = 0;
	if ((rc = store(op, a)) != 0)
		return rc;
	r->status = CHAKONG__AGENCY__V1__ACTION_STATUS__ACTION_DONE;
	return 0;
}

int
sim_ledger_release(struct sim_ledger *lg, const char *scope,
    const Chakong__Agency__V1__ReleaseRequest *req, int64_t now,
    struct ck_arena *arena, Chakong__Agency__V1__ReleaseReply **out,
    struct sim_outcome *oc)
{
	return run_op(lg, scope, "Release", &req->base, req->ctx, NULL, now,
	    arena, &chakong__agency__v1__release_reply__descriptor, op_release,
	    (ProtobufCMessage **)out, oc);
}

/* ---- deposits --------------------------------------------------------- */

int
sim_ledger_deposit(struct sim_ledger *lg, const struct sim_asset_ref *ref,
    int64_t amount_fen, int64_t now, int64_t *captured)
{
	struct ck_arena *arena = ck_arena_new();
	struct op op;
	Chakong__Test__V1__LedgerAsset *a;
	int64_t before;
	int rc;

	*captured = 0;
	if (arena == NULL)
		return CK_ENOMEM;
	memset(&op, 0, sizeof(op));
	op.lg = lg;
	op.arena = arena;
	op.today = today_of(now);
	if (ref->kind != SIM_KIND_BANK || amount_fen == 0) {
		rc = CK_EINVAL;
		goto out;
	}
	rc = mdb_txn_begin(lg->env, NULL, 0, &op.txn);
	if (rc != 0) {
		rc = mdb_err(rc, "begin write");
		goto out;
	}
	if ((rc = load_settled(&op, ref, &a)) != 0)
		goto abort;
	if (amount_fen < 0 && -amount_fen > balance_of(a) - frozen_total(a)) {
		rc = CK_ELIMIT;
		goto abort;
	}
	a->deposited_fen += amount_fen;
	before = frozen_total(a);
	if ((rc = store(&op, a)) != 0)
		goto abort;
	if ((rc = mdb_txn_commit(op.txn)) != 0) {
		rc = mdb_err(rc, "commit");
		goto out;
	}
	*captured = frozen_total(a) - before;
	goto out;

abort:
	mdb_txn_abort(op.txn);
out:
	ck_arena_free(arena);
	return rc;
}
