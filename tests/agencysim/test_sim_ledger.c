/*
 * test_sim_ledger.c: the simulator's ledger rules (ledger.h): partial
 * freezes and later capture, queues (轮候) wholly and in part, promotion on
 * release and on expiry, deduction limits, extension, de-duplication by
 * idempotency key (also after reopening the LMDB environment), seals.
 * The clock is a parameter here, so "moving the clock" is passing a later
 * time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "arena.h"
#include "chakong/status.h"
#include "ledger.h"

#define DAY 86400
/* 2026-01-01 12:00 in UTC+8 */
#define T0 (1767225600 + 4 * 3600)

#define DONE	 CHAKONG__AGENCY__V1__ACTION_STATUS__ACTION_DONE
#define PARTIAL	 CHAKONG__AGENCY__V1__ACTION_STATUS__ACTION_PARTIAL
#define QUEUED	 CHAKONG__AGENCY__V1__ACTION_STATUS__ACTION_QUEUED
#define REJECTED CHAKONG__AGENCY__V1__ACTION_STATUS__ACTION_REJECTED

struct fx {
	char dir[64];
	struct sim_ledger *lg;
	struct ck_arena *arena;
	struct sim_asset_ref acct; /* 100 fen CNY at bank 102 */
	struct sim_asset_ref flat;
	unsigned keys;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/simledger.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	if (sim_ledger_open(f->dir, 16, false, &f->lg, err, sizeof(err)) != 0)
		return -1;
	f->arena = ck_arena_new();
	f->acct = (struct sim_asset_ref){ SIM_KIND_BANK, "102",
		"6222021000000100123", "11010519491231002X", "CNY", 100 };
	f->flat = (struct sim_asset_ref){ SIM_KIND_REALESTATE, "",
		"440106001002GB0012F100000000", "11010519491231002X", "", 0 };
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	sim_ledger_close(f->lg);
	ck_arena_free(f->arena);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

/* ---- request builders ------------------------------------------------- */

struct req {
	Chakong__Agency__V1__CallContext ctx;
	Chakong__Agency__V1__Subject subject;
	Chakong__Agency__V1__Money money;
	char key[32];
};

static void
req_init(struct fx *f, struct req *r, const char *case_no, const char *key)
{
	chakong__agency__v1__call_context__init(&r->ctx);
	chakong__agency__v1__subject__init(&r->subject);
	chakong__agency__v1__money__init(&r->money);
	r->ctx.court_id = "440100";
	r->ctx.case_number = (char *)case_no;
	r->ctx.officer_id = "officer1";
	if (key == NULL)
		snprintf(r->key, sizeof(r->key), "key-%u", ++f->keys);
	else
		snprintf(r->key, sizeof(r->key), "%s", key);
	r->ctx.idempotency_key = r->key;
	r->subject.id_case = CHAKONG__AGENCY__V1__SUBJECT__ID_RESIDENT_ID;
	r->subject.resident_id = "11010519491231002X";
	r->money.currency = "CNY";
}

#define CASE_A "(2025)粤01执1号"
#define CASE_B "(2025)粤01执2号"
#define CASE_C "(2025)粤01执3号"

static Chakong__Agency__V1__FreezeReply *
freeze_k(struct fx *f, const char *case_no, int64_t fen, int32_t days,
    int64_t now, const char *key, struct sim_outcome *oc)
{
	Chakong__Agency__V1__FreezeRequest q =
	    CHAKONG__AGENCY__V1__FREEZE_REQUEST__INIT;
	Chakong__Agency__V1__FreezeReply *r = NULL;
	struct sim_outcome o;
	struct req rq;

	req_init(f, &rq, case_no, key);
	rq.money.fen = fen;
	q.ctx = &rq.ctx;
	q.subject = &rq.subject;
	q.account_no = (char *)f->acct.asset_id;
	q.amount = &rq.money;
	q.duration_days = days;
	assert_int_equal(sim_ledger_freeze(f->lg, "bank:102", &f->acct, &q, now,
			     f->arena, &r, oc != NULL ? oc : &o),
	    0);
	assert_non_null(r);
	return r;
}

static Chakong__Agency__V1__FreezeReply *
freeze(
    struct fx *f, const char *case_no, int64_t fen, int32_t days, int64_t now)
{
	return freeze_k(f, case_no, fen, days, now, NULL, NULL);
}

static Chakong__Agency__V1__ReleaseReply *
release(struct fx *f, const char *scope, const char *case_no, const char *id,
    int64_t now)
{
	Chakong__Agency__V1__ReleaseRequest q =
	    CHAKONG__AGENCY__V1__RELEASE_REQUEST__INIT;
	Chakong__Agency__V1__ReleaseReply *r = NULL;
	struct sim_outcome oc;
	struct req rq;

	req_init(f, &rq, case_no, NULL);
	q.ctx = &rq.ctx;
	q.subject = &rq.subject;
	q.encumbrance_id = (char *)id;
	assert_int_equal(
	    sim_ledger_release(f->lg, scope, &q, now, f->arena, &r, &oc), 0);
	return r;
}

static Chakong__Agency__V1__DeductReply *
deduct(
    struct fx *f, const char *case_no, const char *id, int64_t fen, int64_t now)
{
	Chakong__Agency__V1__DeductRequest q =
	    CHAKONG__AGENCY__V1__DEDUCT_REQUEST__INIT;
	Chakong__Agency__V1__DeductReply *r = NULL;
	struct sim_outcome oc;
	struct req rq;

	req_init(f, &rq, case_no, NULL);
	rq.money.fen = fen;
	q.ctx = &rq.ctx;
	q.subject = &rq.subject;
	q.freeze_id = (char *)id;
	q.amount = &rq.money;
	q.custody_bank = "102";
	q.custody_account = "custody-440100";
	assert_int_equal(
	    sim_ledger_deduct(f->lg, "bank:102", &q, now, f->arena, &r, &oc),
	    0);
	return r;
}

static Chakong__Agency__V1__ExtendReply *
extend(struct fx *f, const char *scope, const char *case_no, const char *id,
    int32_t days, int64_t now)
{
	Chakong__Agency__V1__ExtendRequest q =
	    CHAKONG__AGENCY__V1__EXTEND_REQUEST__INIT;
	Chakong__Agency__V1__ExtendReply *r = NULL;
	struct sim_outcome oc;
	struct req rq;

	req_init(f, &rq, case_no, NULL);
	q.ctx = &rq.ctx;
	q.subject = &rq.subject;
	q.encumbrance_id = (char *)id;
	q.duration_days = days;
	assert_int_equal(
	    sim_ledger_extend(f->lg, scope, &q, now, f->arena, &r, &oc), 0);
	return r;
}

static Chakong__Agency__V1__SealReply *
seal(struct fx *f, const char *case_no, int32_t days, int64_t now)
{
	Chakong__Agency__V1__SealRequest q =
	    CHAKONG__AGENCY__V1__SEAL_REQUEST__INIT;
	Chakong__Agency__V1__SealReply *r = NULL;
	struct sim_outcome oc;
	struct req rq;

	req_init(f, &rq, case_no, NULL);
	q.ctx = &rq.ctx;
	q.subject = &rq.subject;
	q.asset_id = (char *)f->flat.asset_id;
	q.duration_days = days;
	assert_int_equal(sim_ledger_seal(f->lg, "realestate", &f->flat, &q, now,
			     f->arena, &r, &oc),
	    0);
	return r;
}

static Chakong__Agency__V1__Account
account(struct fx *f, int64_t now)
{
	Chakong__Agency__V1__Account a = CHAKONG__AGENCY__V1__ACCOUNT__INIT;

	assert_int_equal(
	    sim_ledger_account(f->lg, &f->acct, now, f->arena, &a), 0);
	return a;
}

static const Chakong__Agency__V1__Encumbrance *
enc(const Chakong__Agency__V1__Account *a, const char *id)
{
	for (size_t i = 0; i < a->n_encumbrances; i++)
		if (strcmp(a->encumbrances[i]->encumbrance_id, id) == 0)
			return a->encumbrances[i];
	return NULL;
}

/* ---- tests ------------------------------------------------------------ */

static void
test_partial_and_capture(void **state)
{
	struct fx *f = *state;
	Chakong__Agency__V1__FreezeReply *a = freeze(f, CASE_A, 150, 30, T0);
	Chakong__Agency__V1__Account acc;
	int64_t captured;

	assert_int_equal(a->status, PARTIAL);
	assert_int_equal(a->frozen_fen, 100);
	assert_int_equal(a->queued_fen, 0);
	assert_string_equal(a->effective_date, "2026-01-01");
	assert_string_equal(a->expiry_date, "2026-01-31");
	assert_int_equal(a->queue_position, 0);

	assert_int_equal(
	    sim_ledger_deposit(f->lg, &f->acct, 30, T0 + 3600, &captured), 0);
	assert_int_equal(captured, 30);
	acc = account(f, T0 + 3600);
	assert_int_equal(acc.balance_fen, 130);
	assert_int_equal(acc.frozen_fen, 130);
	assert_int_equal(acc.available_fen, 0);
	assert_int_equal(enc(&acc, a->freeze_id)->frozen_fen, 130);
	assert_int_equal(enc(&acc, a->freeze_id)->requested_fen, 150);

	/* up to its amount, no further */
	assert_int_equal(
	    sim_ledger_deposit(f->lg, &f->acct, 40, T0 + 7200, &captured), 0);
	assert_int_equal(captured, 20);
	acc = account(f, T0 + 7200);
	assert_int_equal(acc.balance_fen, 170);
	assert_int_equal(acc.frozen_fen, 150);
	assert_int_equal(acc.available_fen, 20);

	/* a debit takes only what is available */
	assert_int_equal(
	    sim_ledger_deposit(f->lg, &f->acct, -21, T0 + 7200, &captured),
	    CK_ELIMIT);
	assert_int_equal(
	    sim_ledger_deposit(f->lg, &f->acct, -20, T0 + 7200, &captured), 0);
	acc = account(f, T0 + 7200);
	assert_int_equal(acc.available_fen, 0);
	assert_int_equal(acc.balance_fen, 150);
}

static void
test_queue_part_and_promotion_on_release(void **state)
{
	struct fx *f = *state;
	Chakong__Agency__V1__FreezeReply *a, *b, *c;
	Chakong__Agency__V1__Account acc;
	const Chakong__Agency__V1__Encumbrance *e;

	a = freeze(f, CASE_A, 60, 30, T0);
	assert_int_equal(a->status, DONE);
	assert_int_equal(a->frozen_fen, 60);

	/* balance 100, A froze 60, B asks 70: 40 in force, 30 queued */
	b = freeze(f, CASE_B, 70, 30, T0 + 60);
	assert_int_equal(b->status, QUEUED);
	assert_int_equal(b->frozen_fen, 40);
	assert_int_equal(b->queued_fen, 30);
	assert_int_equal(b->queue_position, 1);
	assert_string_equal(b->effective_date, "2026-01-01");

	/* C waits wholly: nothing in force, no period yet */
	c = freeze(f, CASE_C, 50, 30, T0 + 120);
	assert_int_equal(c->status, QUEUED);
	assert_int_equal(c->frozen_fen, 0);
	assert_int_equal(c->queued_fen, 50);
	assert_int_equal(c->queue_position, 2);
	assert_string_equal(c->effective_date, "");
	assert_string_equal(c->expiry_date, "");

	acc = account(f, T0 + 200);
	assert_int_equal(acc.frozen_fen, 100);
	assert_int_equal(acc.available_fen, 0);
	assert_int_equal(acc.n_encumbrances, 3);

	/* only A's case may release A */
	assert_int_equal(
	    release(f, "bank:102", CASE_B, a->freeze_id, T0 + 5 * DAY)->status,
	    REJECTED);
	/* A released on day 5: B takes 30 (now whole), C takes the other 30
	 * and its period starts that day */
	assert_int_equal(
	    release(f, "bank:102", CASE_A, a->freeze_id, T0 + 5 * DAY)->status,
	    DONE);
	acc = account(f, T0 + 5 * DAY);
	assert_null(enc(&acc, a->freeze_id));
	e = enc(&acc, b->freeze_id);
	assert_int_equal(e->frozen_fen, 70);
	assert_int_equal(e->queued_fen, 0);
	assert_int_equal(e->queue_position, 0);
	e = enc(&acc, c->freeze_id);
	assert_int_equal(e->frozen_fen, 30);
	assert_int_equal(e->queued_fen, 20);
	assert_int_equal(e->queue_position, 1);
	assert_string_equal(e->effective_date, "2026-01-06");
	assert_string_equal(e->expiry_date, "2026-02-05");
	assert_int_equal(acc.available_fen, 0);

	/* released twice: refused, nothing changes */
	assert_int_equal(
	    release(f, "bank:102", CASE_A, a->freeze_id, T0 + 6 * DAY)->status,
	    REJECTED);
	/* the wrong agency does not know the id */
	assert_int_equal(
	    release(f, "bank:103", CASE_B, b->freeze_id, T0 + 6 * DAY)->status,
	    REJECTED);
}

static void
test_promotion_on_expiry(void **state)
{
	struct fx *f = *state;
	Chakong__Agency__V1__FreezeReply *a, *b;
	Chakong__Agency__V1__Account acc;
	const Chakong__Agency__V1__Encumbrance *e;

	a = freeze(f, CASE_A, 100, 30, T0);
	b = freeze(f, CASE_B, 50, 10, T0 + 60);
	assert_int_equal(b->status, QUEUED);
	assert_string_equal(a->expiry_date, "2026-01-31");

	/* in force through its expiry date */
	acc = account(f, T0 + 30 * DAY);
	assert_non_null(enc(&acc, a->freeze_id));
	assert_int_equal(enc(&acc, b->freeze_id)->frozen_fen, 0);

	/* the day after: A lapses, B takes effect as of that day, whenever
	 * anyone looks */
	acc = account(f, T0 + 35 * DAY);
	assert_null(enc(&acc, a->freeze_id));
	e = enc(&acc, b->freeze_id);
	assert_non_null(e);
	assert_int_equal(e->frozen_fen, 50);
	assert_string_equal(e->effective_date, "2026-02-01");
	assert_string_equal(e->expiry_date, "2026-02-11");
	assert_int_equal(acc.frozen_fen, 50);

	/* and B itself lapses later; a view is not a change */
	acc = account(f, T0 + 60 * DAY);
	assert_int_equal(acc.n_encumbrances, 0);
	assert_int_equal(acc.available_fen, 100);

	/* a state change on day 35 writes the same outcome */
	freeze(f, CASE_C, 10, 30, T0 + 35 * DAY);
	acc = account(f, T0 + 35 * DAY);
	assert_int_equal(enc(&acc, b->freeze_id)->frozen_fen, 50);
	assert_int_equal(acc.frozen_fen, 60);
}

static void
test_deduction_limits(void **state)
{
	struct fx *f = *state;
	Chakong__Agency__V1__FreezeReply *a, *b;
	Chakong__Agency__V1__DeductReply *d;
	Chakong__Agency__V1__Account acc;

	a = freeze(f, CASE_A, 60, 30, T0);
	b = freeze(f, CASE_B, 70, 30, T0); /* 40 + 30 queued */

	d = deduct(f, CASE_A, a->freeze_id, 61, T0 + 60);
	assert_int_equal(d->status, REJECTED);
	assert_non_null(strstr(d->reason, "more than this case has frozen"));
	/* another case cannot take A's money */
	assert_int_equal(
	    deduct(f, CASE_B, a->freeze_id, 10, T0 + 60)->status, REJECTED);
	/* B's queued part is not B's to take */
	assert_int_equal(
	    deduct(f, CASE_B, b->freeze_id, 41, T0 + 60)->status, REJECTED);

	d = deduct(f, CASE_A, a->freeze_id, 25, T0 + 60);
	assert_int_equal(d->status, DONE);
	assert_int_equal(d->deducted_fen, 25);
	assert_true(d->transfer_id[0] != '\0');
	acc = account(f, T0 + 60);
	assert_int_equal(acc.balance_fen, 75);
	assert_int_equal(enc(&acc, a->freeze_id)->frozen_fen, 35);
	assert_int_equal(enc(&acc, a->freeze_id)->requested_fen, 35);
	assert_int_equal(acc.available_fen, 0);

	/* the rest: A is spent and gone from the account */
	assert_int_equal(
	    deduct(f, CASE_A, a->freeze_id, 35, T0 + 60)->status, DONE);
	acc = account(f, T0 + 60);
	assert_int_equal(acc.balance_fen, 40);
	assert_null(enc(&acc, a->freeze_id));
	assert_int_equal(enc(&acc, b->freeze_id)->frozen_fen, 40);
	assert_int_equal(
	    deduct(f, CASE_A, a->freeze_id, 1, T0 + 60)->status, REJECTED);
}

static void
test_extension(void **state)
{
	struct fx *f = *state;
	Chakong__Agency__V1__FreezeReply *a, *b;
	Chakong__Agency__V1__ExtendReply *x;
	Chakong__Agency__V1__Account acc;

	a = freeze(f, CASE_A, 100, 30, T0);
	b = freeze(f, CASE_B, 10, 30, T0);
	assert_string_equal(a->expiry_date, "2026-01-31");

	assert_int_equal(
	    extend(f, "bank:102", CASE_B, a->freeze_id, 30, T0 + DAY)->status,
	    REJECTED);
	assert_int_equal(
	    extend(f, "bank:102", CASE_A, a->freeze_id, 367, T0 + DAY)->status,
	    REJECTED);
	/* wholly queued: its period has not started */
	x = extend(f, "bank:102", CASE_B, b->freeze_id, 30, T0 + DAY);
	assert_int_equal(x->status, REJECTED);

	/* on the expiry date itself, still allowed; from the old expiry */
	x = extend(f, "bank:102", CASE_A, a->freeze_id, 30, T0 + 30 * DAY);
	assert_int_equal(x->status, DONE);
	assert_string_equal(x->expiry_date, "2026-03-02");
	acc = account(f, T0 + 40 * DAY);
	assert_non_null(enc(&acc, a->freeze_id));
	assert_int_equal(enc(&acc, a->freeze_id)->duration_days, 60);
	assert_string_equal(enc(&acc, a->freeze_id)->expiry_date, "2026-03-02");

	/* after expiry: refused */
	x = extend(f, "bank:102", CASE_A, a->freeze_id, 30, T0 + 61 * DAY);
	assert_int_equal(x->status, REJECTED);
	assert_non_null(strstr(x->reason, "expired"));
}

static void
test_deduplication(void **state)
{
	struct fx *f = *state;
	Chakong__Agency__V1__FreezeReply *r1, *r2, *r3;
	Chakong__Agency__V1__Account acc;
	struct sim_outcome oc;
	char err[256];

	r1 = freeze_k(f, CASE_A, 30, 30, T0, "same", &oc);
	assert_true(oc.effect);
	assert_false(oc.replayed);
	/* later, with a different officer: the same call */
	r2 = freeze_k(f, CASE_A, 30, 30, T0 + 3600, "same", &oc);
	assert_true(oc.replayed);
	assert_false(oc.effect);
	assert_int_equal(r2->status, r1->status);
	assert_string_equal(r2->freeze_id, r1->freeze_id);
	assert_string_equal(r2->effective_date, r1->effective_date);
	acc = account(f, T0 + 3600);
	assert_int_equal(acc.n_encumbrances, 1);
	assert_int_equal(acc.frozen_fen, 30);

	/* the key with other arguments */
	r3 = freeze_k(f, CASE_A, 31, 30, T0 + 3600, "same", &oc);
	assert_true(oc.conflict);
	assert_int_equal(r3->status, REJECTED);
	assert_string_equal(
	    r3->reason, "idempotency key reused with different arguments");
	acc = account(f, T0 + 3600);
	assert_int_equal(acc.n_encumbrances, 1);

	/* a rejection is remembered too */
	r3 = freeze_k(f, CASE_A, 30, 999, T0, "bad", &oc);
	assert_true(oc.rejected);
	r3 = freeze_k(f, CASE_A, 30, 999, T0, "bad", &oc);
	assert_true(oc.replayed);
	assert_int_equal(r3->status, REJECTED);

	/* after a restart: still the same answer, still one effect */
	sim_ledger_close(f->lg);
	assert_int_equal(
	    sim_ledger_open(f->dir, 16, false, &f->lg, err, sizeof(err)), 0);
	r2 = freeze_k(f, CASE_A, 30, 30, T0 + 7200, "same", &oc);
	assert_true(oc.replayed);
	assert_string_equal(r2->freeze_id, r1->freeze_id);
	assert_int_equal(r2->frozen_fen, 30);
	acc = account(f, T0 + 7200);
	assert_int_equal(acc.n_encumbrances, 1);
	assert_int_equal(acc.balance_fen, 100);
	/* and new ids do not collide with old ones */
	r3 = freeze(f, CASE_B, 10, 30, T0 + 7200);
	assert_string_not_equal(r3->freeze_id, r1->freeze_id);
}

static void
test_refusals(void **state)
{
	struct fx *f = *state;
	Chakong__Agency__V1__FreezeRequest q =
	    CHAKONG__AGENCY__V1__FREEZE_REQUEST__INIT;
	Chakong__Agency__V1__FreezeReply *r = NULL;
	struct sim_outcome oc;
	struct req rq;

	req_init(f, &rq, CASE_A, NULL);
	rq.money.fen = 10;
	rq.money.currency = "USD";
	q.ctx = &rq.ctx;
	q.subject = &rq.subject;
	q.amount = &rq.money;
	q.duration_days = 30;
	assert_int_equal(sim_ledger_freeze(f->lg, "bank:102", &f->acct, &q, T0,
			     f->arena, &r, &oc),
	    0);
	assert_int_equal(r->status, REJECTED);
	assert_non_null(strstr(r->reason, "CNY"));
	/* unknown account */
	req_init(f, &rq, CASE_A, NULL);
	rq.money.fen = 10;
	assert_int_equal(sim_ledger_freeze(f->lg, "bank:102", NULL, &q, T0,
			     f->arena, &r, &oc),
	    0);
	assert_int_equal(r->status, REJECTED);
	/* no idempotency key: not a call the ledger takes */
	rq.ctx.idempotency_key = "";
	assert_int_equal(sim_ledger_freeze(f->lg, "bank:102", &f->acct, &q, T0,
			     f->arena, &r, &oc),
	    CK_EINVAL);
	/* a release naming another subject */
	Chakong__Agency__V1__FreezeReply *a = freeze(f, CASE_A, 10, 30, T0);
	Chakong__Agency__V1__ReleaseRequest rel =
	    CHAKONG__AGENCY__V1__RELEASE_REQUEST__INIT;
	Chakong__Agency__V1__ReleaseReply *rr = NULL;

	req_init(f, &rq, CASE_A, NULL);
	rq.subject.resident_id = "440106199001011234";
	rel.ctx = &rq.ctx;
	rel.subject = &rq.subject;
	rel.encumbrance_id = a->freeze_id;
	assert_int_equal(
	    sim_ledger_release(f->lg, "bank:102", &rel, T0, f->arena, &rr, &oc),
	    0);
	assert_int_equal(rr->status, REJECTED);
}

static void
test_seals(void **state)
{
	struct fx *f = *state;
	Chakong__Agency__V1__SealReply *a, *b, *c;
	Chakong__Agency__V1__Encumbrance **e;
	size_t n;

	a = seal(f, CASE_A, 30, T0);
	assert_int_equal(a->status, DONE);
	assert_string_equal(a->effective_date, "2026-01-01");
	assert_string_equal(a->expiry_date, "2026-01-31");
	b = seal(f, CASE_B, 100, T0 + 60);
	assert_int_equal(b->status, QUEUED);
	assert_int_equal(b->queue_position, 1);
	assert_string_equal(b->effective_date, "");
	c = seal(f, CASE_C, 100, T0 + 120);
	assert_int_equal(c->queue_position, 2);
	/* the same case twice on one asset */
	assert_int_equal(seal(f, CASE_A, 30, T0)->status, REJECTED);
	/* longer than three years */
	assert_int_equal(
	    seal(f, "(2025)粤01执9号", 1097, T0)->status, REJECTED);

	/* release A on day 3: B takes effect that day, C moves up */
	assert_int_equal(
	    release(f, "realestate", CASE_A, a->seal_id, T0 + 3 * DAY)->status,
	    DONE);
	assert_int_equal(
	    sim_ledger_seals(f->lg, &f->flat, T0 + 3 * DAY, f->arena, &e, &n),
	    0);
	assert_int_equal(n, 2);
	assert_string_equal(e[0]->encumbrance_id, b->seal_id);
	assert_int_equal(e[0]->queue_position, 0);
	assert_string_equal(e[0]->effective_date, "2026-01-04");
	assert_string_equal(e[0]->expiry_date, "2026-04-14");
	assert_int_equal(e[1]->queue_position, 1);

	/* B expires (in force through 04-14): C from 04-15 */
	assert_int_equal(
	    sim_ledger_seals(f->lg, &f->flat, T0 + 110 * DAY, f->arena, &e, &n),
	    0);
	assert_int_equal(n, 1);
	assert_string_equal(e[0]->encumbrance_id, c->seal_id);
	assert_string_equal(e[0]->effective_date, "2026-04-15");
	assert_int_equal(e[0]->queue_position, 0);

	/* a seal id is not a bank's */
	assert_int_equal(
	    release(f, "bank:102", CASE_B, b->seal_id, T0)->status, REJECTED);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_partial_and_capture),
		T(test_queue_part_and_promotion_on_release),
		T(test_promotion_on_expiry),
		T(test_deduction_limits),
		T(test_extension),
		T(test_deduplication),
		T(test_refusals),
		T(test_seals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
