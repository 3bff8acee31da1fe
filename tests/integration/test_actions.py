"""Freeze, Extend, Release, Deduct and UpdateClaim end to end against the
agency simulator (issue 5): the legal rules refused at the gateway with
nothing reaching an agency, the over-freezing cap under concurrency,
partial and queued freezes, deductions that agree with the simulator's
ledger to the fen, request_id replays, unknown outcomes resolved by the
resolver, and the journal's counters on /status.

Every test uses case numbers of its own (actions.new_case) so the
per-case claim and cap of one test never meet another's, and, where it
checks exact amounts, an account no other test touches:

  张三 11010519491231002X  icbc, ccb (CNY), cmb (USD), a flat, a car: rules
  张然洋 440604199212242345 the flat and the car: seal durations
  朱平 440113196306094430   cgb: partial freeze; boc: hang fault
  罗超 440604198103145883   bocom: queued + promotion; psbc: part queued
  何国超 440113198509209989 psbc: deduction
  黄海 440606199609086160   ccb: UNAVAILABLE fault
  梁海 44010419791201710X   cgb: error after the effect
"""

import datetime
import os
import shutil
import subprocess
import time

import grpc
import pytest

import actions as A
import ck
import sim

ZHANG = sim.ZHANG_SAN
ZHANG_RAN = "440604199212242345"
ZHU_PING = "440113196306094430"
LUO_CHAO = "440604198103145883"
HE_GUOCHAO = "440113198509209989"
HUANG_HAI = "440606199609086160"
LIANG_HAI = "44010419791201710X"

FP = grpc.StatusCode.FAILED_PRECONDITION
INVALID = grpc.StatusCode.INVALID_ARGUMENT

CUSTODY_BANK = "icbc"                       # tests/stack.sh, court 440100
CUSTODY_ACCOUNT = "3602000019200000001"


# ------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def apb():
    yield from sim.agency_messages()


@pytest.fixture(scope="module")
def control(stack, apb):
    c = sim.Control(stack, apb)
    yield c
    c.clear("*")
    c.close()


@pytest.fixture(scope="module")
def w(stack, pb, apb, broker, control, testing):
    world = A.World(stack, pb, apb, broker, control, testing)
    world.avoid_midnight()
    return world


@pytest.fixture(scope="module")
def zhang(w):
    return w.subject(ZHANG)


def unchanged(w, before, what):
    after = w.counters()
    diff = {k: (before.get(k), v) for k, v in after.items()
            if before.get(k) != v}
    assert not diff, f"{what}: the simulator was called: {diff}"


def refused(w, fn, req, code, *words):
    """fn(req) fails with code and a message naming words, and nothing
    reaches the simulator."""
    before = w.counters()
    err = A.rpc_error(fn, req)
    msg = A.assert_status(err, code, *words)
    unchanged(w, before, f"refused {type(req).__name__} ({msg})")
    return msg


def ok(rep, *outcomes):
    outcomes = outcomes or (A.DONE,)
    assert rep.outcome in outcomes, \
        f"outcome {A.outcome_name(rep.outcome)}: {rep}"
    return rep


def effects(w, endpoint, method):
    return w.counters().get((endpoint, method), (0, 0, 0))[1]


def sim_encs(w, rid, asset_id, case=None):
    """The simulator's ledger encumbrances on one asset (of one case)."""
    for a in w.control.ledger(resident_id=rid).assets:
        if a.asset_id == asset_id:
            return [e for e in a.encumbrances
                    if case is None or e.case_number == case]
    return []


def broker_enc(w, subject, case, source):
    """The broker's Encumbrance of case on the subject's first asset at
    source, from a live Query."""
    encs = [e for e in w.encumbrances(subject, case, source)
            if e.case_number == case]
    assert len(encs) == 1, encs
    return encs[0]


# ------------------------------------------------------------ 1. the rules

def test_deposit_freeze_at_most_one_year(w, pb, zhang):
    case = A.new_case()
    ref = w.ref(zhang, case, "bank:icbc")
    today = w.today()
    edge = A.max_days(today, A.DEPOSIT)      # 365, or 366 over a leap day
    assert edge in (365, 366)
    msg = refused(w, w.broker.Freeze,
                  A.freeze_req(pb, zhang, ref, case, 1_000_000, fen=1000,
                               days=edge + 1), FP, "duration_days",
                  "deposit freeze", "1 year")
    assert str(edge + 1) not in msg
    rep = ok(w.broker.Freeze(A.freeze_req(pb, zhang, ref, case, 1_000_000,
                                          fen=1000, days=edge), timeout=15))
    assert rep.freeze_ref and rep.frozen_fen == 1000
    assert rep.effective_date == today.isoformat()
    assert rep.expiry_date, rep


def test_vehicle_seal_at_most_two_years(w, pb):
    s = w.subject(ZHANG_RAN)
    case = A.new_case()
    ref = w.ref(s, case, "vehicle")
    edge = A.max_days(w.today(), A.VEHICLE)
    assert edge in (730, 731)
    refused(w, w.broker.Freeze,
            A.freeze_req(pb, s, ref, case, 1_000_000, days=edge + 1), FP,
            "duration_days", "vehicle", "2 years")
    before = effects(w, "vehicle", "Seal")
    rep = ok(w.broker.Freeze(A.freeze_req(pb, s, ref, case, 1_000_000,
                                          days=edge), timeout=15),
             A.DONE, A.QUEUED)
    assert rep.freeze_ref
    assert effects(w, "vehicle", "Seal") == before + 1


def test_real_estate_seal_at_most_three_years(w, pb):
    s = w.subject(ZHANG_RAN)
    case = A.new_case()
    ref = w.ref(s, case, "realestate")
    edge = A.max_days(w.today(), A.REAL_ESTATE)
    assert edge in (1095, 1096)
    refused(w, w.broker.Freeze,
            A.freeze_req(pb, s, ref, case, 1_000_000, days=edge + 1), FP,
            "duration_days", "real-estate", "3 years")
    before = effects(w, "realestate", "Seal")
    rep = ok(w.broker.Freeze(A.freeze_req(pb, s, ref, case, 1_000_000,
                                          days=edge), timeout=15),
             A.DONE, A.QUEUED)
    assert rep.freeze_ref
    assert effects(w, "realestate", "Seal") == before + 1


def test_extension_bounded_from_old_expiry_and_only_before_expiry(
        w, pb, zhang):
    case = A.new_case()
    ref = w.ref(zhang, case, "bank:ccb")
    today = w.today()
    fz = ok(w.broker.Freeze(A.freeze_req(pb, zhang, ref, case, 1_000_000,
                                         fen=2000, days=10), timeout=15))
    exp = datetime.date.fromisoformat(fz.expiry_date)
    assert exp > today

    # bounded like a freeze, counted from the old expiry
    start = exp + datetime.timedelta(days=1)
    edge = A.max_days(start, A.DEPOSIT)
    refused(w, w.broker.Extend,
            A.extend_req(pb, zhang, fz.freeze_ref, case, days=edge + 1), FP,
            "duration_days", "1 year", "old expiry")

    # within the bound: the new period runs from the old expiry
    ex = ok(w.broker.Extend(A.extend_req(pb, zhang, fz.freeze_ref, case,
                                         days=5), timeout=15))
    exp2 = datetime.date.fromisoformat(ex.expiry_date)
    assert exp2 == exp + datetime.timedelta(days=5), (exp, ex)
    assert broker_enc(w, zhang, case, "bank:ccb").expiry_date == \
        ex.expiry_date

    jumped = 0
    try:
        # on the expiry date itself an extension is still in time
        d = (exp2 - today).days * 86400
        w.jump(d)
        jumped += d
        assert w.today() == exp2
        ex3 = ok(w.broker.Extend(A.extend_req(pb, zhang, fz.freeze_ref,
                                              case, days=3), timeout=15))
        exp3 = datetime.date.fromisoformat(ex3.expiry_date)
        assert exp3 == exp2 + datetime.timedelta(days=3), ex3

        # the day after the expiry: too late, and nothing is sent
        d = (exp3 - exp2).days * 86400 + 86400
        w.jump(d)
        jumped += d
        assert w.today() == exp3 + datetime.timedelta(days=1)
        refused(w, w.broker.Extend,
                A.extend_req(pb, zhang, fz.freeze_ref, case, days=3), FP,
                "freeze_ref", "before expiry")
    finally:
        if jumped:
            w.jump(-jumped)
    assert w.today() == today


def test_release_extend_deduct_only_by_the_holding_case(w, pb, zhang):
    case = A.new_case()
    other = A.new_case()
    ref = w.ref(zhang, case, "bank:icbc")
    fz = ok(w.broker.Freeze(A.freeze_req(pb, zhang, ref, case, 1_000_000,
                                         fen=3000), timeout=15))
    words = ("case.case_number", "only the case that holds the freeze")
    refused(w, w.broker.Release,
            A.release_req(pb, zhang, fz.freeze_ref, other, claim=1_000_000),
            FP, *words, "release")
    refused(w, w.broker.Extend,
            A.extend_req(pb, zhang, fz.freeze_ref, other, claim=1_000_000),
            FP, *words, "extend")
    refused(w, w.broker.Deduct,
            A.deduct_req(pb, zhang, fz.freeze_ref, other, 100,
                         claim=1_000_000), FP, *words)
    # the holder still can
    ok(w.broker.Release(A.release_req(pb, zhang, fz.freeze_ref, case),
                        timeout=15))


def test_no_deduction_under_a_preservation_case(w, pb, zhang):
    case = A.new_case(kind="执保")
    ref = w.ref(zhang, case, "bank:icbc")
    fz = ok(w.broker.Freeze(A.freeze_req(pb, zhang, ref, case, 1_000_000,
                                         fen=4000), timeout=15))
    refused(w, w.broker.Deduct,
            A.deduct_req(pb, zhang, fz.freeze_ref, case, 100), FP,
            "case.case_number", "执保")


def test_deduction_no_larger_than_frozen(w, pb, zhang):
    case = A.new_case()
    ref = w.ref(zhang, case, "bank:icbc")
    fz = ok(w.broker.Freeze(A.freeze_req(pb, zhang, ref, case, 1_000_000,
                                         fen=5000), timeout=15))
    refused(w, w.broker.Deduct,
            A.deduct_req(pb, zhang, fz.freeze_ref, case, 5001), FP,
            "amount", "may not exceed what this case has frozen")


def test_no_over_freezing_beyond_claim_plus_margin(w, pb, zhang):
    case = A.new_case()
    claim = 100_000                       # cap: + 5 % = 105,000
    icbc = w.ref(zhang, case, "bank:icbc")
    ccb = w.ref(zhang, case, "bank:ccb")
    first = ok(w.broker.Freeze(A.freeze_req(pb, zhang, icbc, case, claim,
                                            fen=60_000), timeout=15))
    refused(w, w.broker.Freeze,
            A.freeze_req(pb, zhang, ccb, case, claim, fen=45_001), FP,
            "amount", "over-freezing", "5%")
    ok(w.broker.Freeze(A.freeze_req(pb, zhang, ccb, case, claim,
                                    fen=45_000), timeout=15))
    refused(w, w.broker.Freeze,
            A.freeze_req(pb, zhang, icbc, case, claim, fen=1), FP,
            "over-freezing")
    # a foreign-currency deposit is not counted against the CNY cap
    cmb = w.ref(zhang, case, "bank:cmb")
    ok(w.broker.Freeze(A.freeze_req(pb, zhang, cmb, case, claim,
                                    fen=10_000, currency="USD"),
                       timeout=15), A.DONE, A.PARTIAL)
    # a release gives its amount back to the cap
    ok(w.broker.Release(A.release_req(pb, zhang, first.freeze_ref, case),
                        timeout=15))
    ok(w.broker.Freeze(A.freeze_req(pb, zhang, icbc, case, claim,
                                    fen=60_000), timeout=15))
    refused(w, w.broker.Freeze,
            A.freeze_req(pb, zhang, icbc, case, claim, fen=1), FP,
            "over-freezing")


def test_first_action_needs_a_claim(w, pb, zhang):
    case = A.new_case()
    ref = w.ref(zhang, case, "bank:icbc")
    refused(w, w.broker.Freeze,
            A.freeze_req(pb, zhang, ref, case, 0, fen=1000), FP,
            "case.claim_amount_fen", "first action", "claim")
    # the refusal fixed nothing: a later first action sets the claim
    ok(w.broker.Freeze(A.freeze_req(pb, zhang, ref, case, 50_000,
                                    fen=1000), timeout=15))


def test_claim_fixed_until_update_claim(w, pb, zhang):
    case = A.new_case()
    ref = w.ref(zhang, case, "bank:icbc")
    ok(w.broker.Freeze(A.freeze_req(pb, zhang, ref, case, 100_000,
                                    fen=100_000), timeout=15))
    refused(w, w.broker.Freeze,
            A.freeze_req(pb, zhang, ref, case, 200_000, fen=1000), FP,
            "case.claim_amount_fen", "UpdateClaim")
    # 0 means "as fixed"
    refused(w, w.broker.Freeze,
            A.freeze_req(pb, zhang, ref, case, 0, fen=5001), FP,
            "over-freezing")
    # the claim cannot drop below what is frozen (plus the margin)
    err = A.rpc_error(w.broker.UpdateClaim, A.claim_req(pb, case, 50_000))
    A.assert_status(err, FP, "new_claim")
    rep = w.broker.UpdateClaim(A.claim_req(pb, case, 200_000), timeout=15)
    assert (rep.old_claim_fen, rep.new_claim_fen) == (100_000, 200_000)
    ok(w.broker.Freeze(A.freeze_req(pb, zhang, ref, case, 200_000,
                                    fen=1000), timeout=15))
    ok(w.broker.Freeze(A.freeze_req(pb, zhang, ref, case, 0, fen=1000),
                       timeout=15))
    refused(w, w.broker.Freeze,
            A.freeze_req(pb, zhang, ref, case, 100_000, fen=1000), FP,
            "case.claim_amount_fen", "UpdateClaim")


BAD_DOC = "(2025)粤01执99999号之一"


def _malformed(pb, zhang, ref, case):
    """(label, method, request, the field the message must name,
    a value it must not repeat)"""
    f = lambda **kw: A.freeze_req(pb, zhang, ref, case, 1_000_000,
                                  **dict(dict(fen=1000), **kw))
    out = [
        ("document of another case", "Freeze", f(document=BAD_DOC),
         "document_number", BAD_DOC),
        ("document without case number", "Freeze",
         f(document="协助执行通知书1号"), "document_number", "协助执行通知书"),
        ("negative amount", "Freeze", f(fen=-500), "amount", "-500"),
        ("zero amount", "Freeze", f(fen=0), "amount", None),
        ("bad currency", "Freeze", f(currency="RMB1"), "amount.currency",
         "RMB1"),
        ("no amount for a deposit", "Freeze", f(fen=None), "amount", None),
        ("zero duration", "Freeze", f(days=0), "duration_days", None),
        ("negative duration", "Freeze", f(days=-7), "duration_days", "-7"),
        ("no request_id", "Freeze", f(rid=""), "request_id", None),
        ("request_id too long", "Freeze", f(rid="r" * 65), "request_id",
         "r" * 65),
        ("request_id not printable ASCII", "Freeze", f(rid="请求-1"),
         "request_id", "请求"),
        ("no asset_ref", "Freeze",
         A.freeze_req(pb, zhang, b"", case, 1_000_000, fen=1000),
         "asset_ref", None),
        ("bad check character", "Freeze",
         A.freeze_req(pb, A.Subject("110105194912310021", "张三"), ref,
                      case, 1_000_000, fen=1000), "debtor",
         "110105194912310021"),
        ("unknown court prefix", "Freeze",
         A.freeze_req(pb, zhang, ref, "(2025)粤99执1号", 1_000_000,
                      fen=1000, document="(2025)粤99执1号之一"), "case",
         "粤99"),
        ("not an enforcement case", "Freeze",
         A.freeze_req(pb, zhang, ref, "(2025)粤01民1号", 1_000_000,
                      fen=1000, document="(2025)粤01民1号之一"), "case",
         "民1"),
        ("negative claim", "Freeze",
         A.freeze_req(pb, zhang, ref, case, -100, fen=1000),
         "claim_amount_fen", "-100"),
    ]
    no_officer = f()
    no_officer.case.officer_id = ""
    out.append(("no officer", "Freeze", no_officer, "officer_id", None))
    no_name = f()
    no_name.debtor.name = ""
    out.append(("no debtor name", "Freeze", no_name, "debtor", None))
    return out


def test_malformed_input_is_invalid_argument(w, pb, zhang):
    case = A.new_case()
    ref = w.ref(zhang, case, "bank:icbc")
    fz = ok(w.broker.Freeze(A.freeze_req(pb, zhang, ref, case, 1_000_000,
                                         fen=1000), timeout=15))
    cases = _malformed(pb, zhang, ref, case)
    fr = fz.freeze_ref
    cases += [
        ("deduct: negative amount", "Deduct",
         A.deduct_req(pb, zhang, fr, case, -1), "amount", None),
        ("deduct: zero amount", "Deduct",
         A.deduct_req(pb, zhang, fr, case, 0), "amount", None),
        ("deduct: ruling of another case", "Deduct",
         A.deduct_req(pb, zhang, fr, case, 10, document=BAD_DOC),
         "document_number", BAD_DOC),
        ("deduct: no freeze_ref", "Deduct",
         A.deduct_req(pb, zhang, b"", case, 10), "freeze_ref", None),
        ("deduct: an asset_ref for a freeze_ref", "Deduct",
         A.deduct_req(pb, zhang, ref, case, 10), "freeze_ref", None),
        ("extend: zero duration", "Extend",
         A.extend_req(pb, zhang, fr, case, days=0), "duration_days", None),
        ("extend: over 3 years", "Extend",
         A.extend_req(pb, zhang, fr, case, days=1099), "duration_days",
         "1099"),
        ("release: no document", "Release",
         A.release_req(pb, zhang, fr, case, document=""),
         "document_number", None),
        ("claim: negative", "UpdateClaim", A.claim_req(pb, case, -5),
         "new_claim", "-5"),
        ("claim: no reason", "UpdateClaim",
         A.claim_req(pb, case, 5, reason=""), "reason", None),
    ]
    failures = []
    before = w.counters()
    for label, method, req, field, secret in cases:
        try:
            rep = getattr(w.broker, method)(req, timeout=15)
            failures.append(f"{label}: accepted: {rep}")
            continue
        except grpc.RpcError as e:
            err = e
        msg = err.details() or ""
        if err.code() != INVALID:
            failures.append(f"{label}: {err.code()} {msg!r}")
        elif field not in msg:
            failures.append(f"{label}: {msg!r} does not name {field}")
        elif secret is not None and secret in msg:
            failures.append(f"{label}: {msg!r} repeats the value")
    unchanged(w, before, "malformed requests")
    assert not failures, "\n".join(failures)


# ------------------------------------------------------------ 2. the cap

def _race(w, reqs):
    """Send every request at the same time (futures on one channel);
    [(reply or None, error or None)] in order."""
    futs = [w.broker.Freeze.future(r, timeout=15) for r in reqs]
    out = []
    for f in futs:
        try:
            out.append((f.result(), None))
        except grpc.RpcError as e:
            out.append((None, e))
    return out


def test_concurrent_freezes_cannot_both_slip_under_the_cap(w, pb, zhang):
    for round_ in range(4):
        case = A.new_case()
        claim = 100_000                   # cap 105,000: 60,000 fits once
        refs = [w.ref(zhang, case, "bank:icbc"),
                w.ref(zhang, case, "bank:ccb")]
        before = effects(w, "icbc", "Freeze") + effects(w, "ccb", "Freeze")
        res = _race(w, [A.freeze_req(pb, zhang, refs[i % 2], case, claim,
                                     fen=60_000) for i in range(2)])
        good = [r for r, e in res if r is not None]
        bad = [e for r, e in res if e is not None]
        assert len(good) == 1 and len(bad) == 1, \
            f"round {round_}: {[(r, e and e.details()) for r, e in res]}"
        ok(good[0])
        A.assert_status(bad[0], FP, "over-freezing")
        after = effects(w, "icbc", "Freeze") + effects(w, "ccb", "Freeze")
        assert after == before + 1, f"round {round_}: {before} -> {after}"

    # eight at once, 30,000 each: exactly three fit under 105,000
    case = A.new_case()
    ref = w.ref(zhang, case, "bank:icbc")
    before = effects(w, "icbc", "Freeze")
    res = _race(w, [A.freeze_req(pb, zhang, ref, case, 100_000, fen=30_000)
                    for _ in range(8)])
    good = [r for r, e in res if r is not None]
    for r, e in res:
        if e is not None:
            A.assert_status(e, FP, "over-freezing")
    assert len(good) == 3, [(r and A.outcome_name(r.outcome),
                             e and e.details()) for r, e in res]
    assert effects(w, "icbc", "Freeze") == before + 3


# ------------------------------------------------ 3. partial, queued, deduct

def test_partial_freeze_captures_later_deposits(w, pb):
    s = w.subject(ZHU_PING)
    acct = w.set_available(s.rid, "cgb", 5_000)
    case = A.new_case()
    ref = w.ref(s, case, "bank:cgb")
    rep = ok(w.broker.Freeze(A.freeze_req(pb, s, ref, case, 10_000,
                                          fen=8_000), timeout=15),
             A.PARTIAL)
    assert (rep.frozen_fen, rep.queued_fen) == (5_000, 0), rep
    assert rep.freeze_ref and rep.effective_date == w.today().isoformat()
    # the cap counts a partial freeze at the amount asked (cap 10,500)
    refused(w, w.broker.Freeze, A.freeze_req(pb, s, ref, case, 10_000,
                                             fen=2_501), FP,
            "over-freezing")
    enc = broker_enc(w, s, case, "bank:cgb")
    assert (enc.frozen_fen, enc.requested_fen) == (5_000, 8_000), enc

    dep = w.deposit("cgb", acct.account_no, 2_000)
    assert dep.captured_fen == 2_000, dep
    enc = broker_enc(w, s, case, "bank:cgb")
    assert enc.frozen_fen == 7_000, enc

    dep = w.deposit("cgb", acct.account_no, 5_000)
    assert dep.captured_fen == 1_000, dep       # only up to its amount
    enc = broker_enc(w, s, case, "bank:cgb")
    assert enc.frozen_fen == 8_000, enc
    dep_asset = w.assets(s, case, "bank:cgb")[0].deposit
    assert dep_asset.available.fen == 4_000, dep_asset


def test_queued_freeze_promoted_when_the_earlier_is_released(w, pb):
    s = w.subject(LUO_CHAO)
    w.set_available(s.rid, "bocom", 20_000)
    case_a, case_b = A.new_case(), A.new_case()
    ref = w.ref(s, case_a, "bank:bocom")
    a = ok(w.broker.Freeze(A.freeze_req(pb, s, ref, case_a, 100_000,
                                        fen=20_000), timeout=15))
    assert a.frozen_fen == 20_000
    ref_b = w.ref(s, case_b, "bank:bocom")
    b = ok(w.broker.Freeze(A.freeze_req(pb, s, ref_b, case_b, 100_000,
                                        fen=10_000), timeout=15), A.QUEUED)
    assert (b.frozen_fen, b.queued_fen, b.queue_position) == \
        (0, 10_000, 1), b
    assert b.effective_date == "" and b.freeze_ref, b
    # the cap counts a queued freeze at the amount asked (cap 105,000)
    refused(w, w.broker.Freeze, A.freeze_req(pb, s, ref_b, case_b, 100_000,
                                             fen=95_001), FP,
            "over-freezing")
    enc = broker_enc(w, s, case_b, "bank:bocom")
    assert (enc.frozen_fen, enc.queued_fen, enc.queue_position) == \
        (0, 10_000, 1), enc

    ok(w.broker.Release(A.release_req(pb, s, a.freeze_ref, case_a),
                        timeout=15))
    enc = broker_enc(w, s, case_b, "bank:bocom")
    assert (enc.frozen_fen, enc.queued_fen, enc.queue_position) == \
        (10_000, 0, 0), enc
    assert enc.effective_date == w.today().isoformat(), enc
    assert enc.expiry_date, enc
    assert [e.case_number for e in w.encumbrances(s, case_b, "bank:bocom")
            ] == [case_b]


def test_part_in_force_part_queued(w, pb):
    s = w.subject(LUO_CHAO)
    w.set_available(s.rid, "psbc", 10_000)
    case_a, case_b = A.new_case(), A.new_case()
    ref = w.ref(s, case_a, "bank:psbc")
    ok(w.broker.Freeze(A.freeze_req(pb, s, ref, case_a, 100_000,
                                    fen=6_000), timeout=15))
    b = ok(w.broker.Freeze(A.freeze_req(pb, s, w.ref(s, case_b, "bank:psbc"),
                                        case_b, 100_000, fen=7_000),
                           timeout=15), A.QUEUED)
    assert (b.frozen_fen, b.queued_fen) == (4_000, 3_000), b
    assert b.queue_position == 1, b
    assert b.effective_date == w.today().isoformat(), b
    enc = broker_enc(w, s, case_b, "bank:psbc")
    assert (enc.frozen_fen, enc.queued_fen, enc.requested_fen) == \
        (4_000, 3_000, 7_000), enc


def _account(w, rid, endpoint, account_no):
    for ev in w.control.lookup(resident_id=rid).endpoints:
        if ev.endpoint == endpoint:
            for a in ev.accounts.accounts:
                if a.account_no == account_no:
                    return a
    raise AssertionError(account_no)


def test_deduction_within_frozen_agrees_with_the_simulator(w, pb):
    s = w.subject(HE_GUOCHAO)
    acct = w.account(s.rid, "psbc")
    assert acct.available_fen > 100_000
    case = A.new_case()
    ref = w.ref(s, case, "bank:psbc")
    fz = ok(w.broker.Freeze(A.freeze_req(pb, s, ref, case, 100_000,
                                         fen=30_000), timeout=15))
    b0 = _account(w, s.rid, "psbc", acct.account_no)
    assert b0.frozen_fen == 30_000, b0
    calls0 = w.counters().get(("psbc", "Deduct"), (0, 0, 0))

    req = A.deduct_req(pb, s, fz.freeze_ref, case, 12_345)
    d = ok(w.broker.Deduct(req, timeout=15))
    assert d.deducted_fen == 12_345 and d.transfer_id, d
    b1 = _account(w, s.rid, "psbc", acct.account_no)
    assert b1.balance_fen == b0.balance_fen - 12_345, (b0, b1)
    assert b1.frozen_fen == b0.frozen_fen - 12_345, (b0, b1)
    assert b1.available_fen == b0.available_fen, (b0, b1)

    # the same request again: the same answer, no second transfer
    d2 = ok(w.broker.Deduct(req, timeout=15))
    assert d2 == d, (d, d2)
    b2 = _account(w, s.rid, "psbc", acct.account_no)
    assert b2.balance_fen == b1.balance_fen, (b1, b2)
    calls1 = w.counters()[("psbc", "Deduct")]
    assert calls1[1] == calls0[1] + 1, (calls0, calls1)

    led = sim_encs(w, s.rid, acct.account_no, case)
    assert len(led) == 1, led
    assert (led[0].frozen_fen, led[0].deducted_fen) == (17_655, 12_345), \
        led[0]
    asset = [a for a in w.control.ledger(resident_id=s.rid).assets
             if a.asset_id == acct.account_no][0]
    assert asset.deducted_fen == 12_345, asset
    assert asset.balance_fen == b1.balance_fen

    # what remains frozen bounds the next deduction
    refused(w, w.broker.Deduct,
            A.deduct_req(pb, s, fz.freeze_ref, case, 17_656), FP,
            "may not exceed", "17655")
    d3 = ok(w.broker.Deduct(A.deduct_req(pb, s, fz.freeze_ref, case,
                                         17_655), timeout=15))
    assert d3.deducted_fen == 17_655 and d3.transfer_id != d.transfer_id
    b3 = _account(w, s.rid, "psbc", acct.account_no)
    assert b3.balance_fen == b0.balance_fen - 30_000, (b0, b3)
    assert b3.frozen_fen == b0.frozen_fen - 30_000, (b0, b3)
    led = sim_encs(w, s.rid, acct.account_no, case)
    assert led[0].state == "spent" and led[0].deducted_fen == 30_000, led
    # the broker's Query agrees with the simulator to the fen
    dep = w.assets(s, case, "bank:psbc")[0].deposit
    assert (dep.balance.fen, dep.frozen.fen, dep.available.fen) == \
        (b3.balance_fen, b3.frozen_fen, b3.available_fen), dep


# ------------------------------------------------ 4. request_id replays

def test_same_request_id_one_effect_same_answer(w, pb, zhang, stack):
    case = A.new_case()
    ref = w.ref(zhang, case, "bank:icbc")
    rid = A.request_id("replay")
    req = A.freeze_req(pb, zhang, ref, case, 1_000_000, fen=7_000, rid=rid)
    before = w.counters().get(("icbc", "Freeze"), (0, 0, 0))
    st0 = stack.status_json()["actions"]
    first = ok(w.broker.Freeze(req, timeout=15))
    again = ok(w.broker.Freeze(req, timeout=15))
    assert again == first, (first, again)
    assert again.freeze_ref == first.freeze_ref

    # a colleague re-sending it with a freshly queried asset_ref is still
    # the same request
    fresh = A.freeze_req(pb, zhang, w.ref(zhang, case, "bank:icbc"), case,
                         1_000_000, fen=7_000, rid=rid)
    fresh.case.officer_id = "GZ0002"
    third = ok(w.broker.Freeze(fresh, timeout=15))
    assert third == first
    after = w.counters()[("icbc", "Freeze")]
    assert after[1] == before[1] + 1, (before, after)     # one effect
    assert len(sim_encs(w, ZHANG, w.account(ZHANG, "icbc").account_no,
                        case)) == 1

    # other arguments under the same request_id
    for changed in (
            A.freeze_req(pb, zhang, ref, case, 1_000_000, fen=7_001,
                         rid=rid),
            A.freeze_req(pb, zhang, ref, case, 1_000_000, fen=7_000,
                         days=31, rid=rid),
            A.freeze_req(pb, zhang, ref, case, 1_000_000, fen=7_000,
                         rid=rid, document=A.doc(case, "之二"))):
        refused(w, w.broker.Freeze, changed, grpc.StatusCode.ALREADY_EXISTS,
                "request_id")
    # ... even as another method
    refused(w, w.broker.Release,
            A.release_req(pb, zhang, first.freeze_ref, case, rid=rid),
            grpc.StatusCode.ALREADY_EXISTS, "request_id")
    st1 = stack.status_json()["actions"]
    assert st1["replays"] >= st0["replays"] + 2, (st0, st1)
    assert st1["conflicts"] >= st0["conflicts"] + 4, (st0, st1)
    assert st1["intents"] == st0["intents"] + 1, (st0, st1)


def test_same_request_id_from_another_court_is_another_request(
        w, pb, zhang, stack):
    rid = A.request_id("court")
    case = A.new_case()
    gz = ok(w.broker.Freeze(A.freeze_req(
        pb, zhang, w.ref(zhang, case, "bank:icbc"), case, 1_000_000,
        fen=8_000, rid=rid), timeout=15))

    ch = stack.channel(cert=stack.partner_cert, key=stack.partner_key)
    try:
        fs = pb.broker_grpc.AssetBrokerStub(ch)
        fcase = A.new_case(court="粤06")
        fref = w.ref(zhang, fcase, "bank:icbc", broker=fs)
        # Guangzhou's reference is not Foshan's to use
        err = A.rpc_error(fs.Freeze, A.freeze_req(
            pb, zhang, w.ref(zhang, case, "bank:icbc"), fcase, 1_000_000,
            fen=8_000, rid=rid))
        A.assert_status(err, INVALID, "asset_ref")
        before = effects(w, "icbc", "Freeze")
        fsr = ok(fs.Freeze(A.freeze_req(pb, zhang, fref, fcase, 1_000_000,
                                        fen=9_000, rid=rid), timeout=15))
        assert effects(w, "icbc", "Freeze") == before + 1
        assert fsr.freeze_ref != gz.freeze_ref
        assert fsr.frozen_fen == 9_000
        # and each court's replay is its own
        assert ok(fs.Freeze(A.freeze_req(pb, zhang, fref, fcase, 1_000_000,
                                         fen=9_000, rid=rid),
                            timeout=15)) == fsr
    finally:
        ch.close()
    assert ok(w.broker.Freeze(A.freeze_req(
        pb, zhang, w.ref(zhang, case, "bank:icbc"), case, 1_000_000,
        fen=8_000, rid=rid), timeout=15)) == gz
    encs = sim_encs(w, ZHANG, w.account(ZHANG, "icbc").account_no)
    mine = [e for e in encs if e.case_number in (case, fcase)]
    assert sorted((e.court_id, e.case_number, e.requested_fen)
                  for e in mine) == sorted([("440100", case, 8_000),
                                            ("440600", fcase, 9_000)])
    assert mine[0].idempotency_key != mine[1].idempotency_key


# ------------------------------------------------ 5. unknown outcomes

def test_hang_gives_pending_then_the_final_outcome(w, pb, stack):
    s = w.subject(ZHU_PING)
    case = A.new_case()
    ref = w.ref(s, case, "bank:boc")
    acct = w.account(s.rid, "boc")
    before = w.counters().get(("boc", "Freeze"), (0, 0, 0))
    req = A.freeze_req(pb, s, ref, case, 10_000, fen=10_000)
    w.control.fault("boc", hang_permille=1000, apply_before_fault=True,
                    method="Freeze")
    try:
        t0 = time.monotonic()
        rep = w.broker.Freeze(req, timeout=2)      # not an error
        assert rep.outcome == A.PENDING, rep
        assert time.monotonic() - t0 < 2.5
        assert not rep.freeze_ref
        # asked again while the agency is still silent: still PENDING
        assert w.broker.Freeze(req, timeout=5).outcome == A.PENDING
        # the cap counts a pending freeze at the amount asked (cap 10,500)
        refused(w, w.broker.Freeze, A.freeze_req(pb, s, ref, case, 10_000,
                                                 fen=501), FP,
                "over-freezing")
        assert stack.http_get("/readyz")[0] == 200
    finally:
        w.control.clear("boc")
    rep = A.wait_outcome(w.broker.Freeze, req, timeout=25)
    assert rep.outcome == A.DONE, rep
    assert rep.frozen_fen == 10_000 and rep.freeze_ref, rep
    assert time.monotonic() - t0 < 27
    after = w.counters()[("boc", "Freeze")]
    assert after[1] == before[1] + 1, (before, after)   # exactly one effect
    assert after[0] >= before[0] + 2, (before, after)   # it was re-sent
    encs = sim_encs(w, s.rid, acct.account_no, case)
    assert len(encs) == 1 and encs[0].frozen_fen == 10_000, encs
    assert broker_enc(w, s, case, "bank:boc").frozen_fen == 10_000
    # the resolved freeze is usable
    ok(w.broker.Release(A.release_req(pb, s, rep.freeze_ref, case),
                        timeout=15))


def test_unavailable_agency_pending_resolved_and_status_counts(
        w, pb, stack):
    s = w.subject(HUANG_HAI)
    case = A.new_case()
    ref = w.ref(s, case, "bank:ccb")
    acct = w.account(s.rid, "ccb")
    req = A.freeze_req(pb, s, ref, case, 1_000_000, fen=5_000)
    before = w.counters().get(("ccb", "Freeze"), (0, 0, 0))
    st0 = stack.status_json()["actions"]
    w.control.fault("ccb", error_permille=1000, error_code=14,
                    method="Freeze")
    try:
        rep = w.broker.Freeze(req, timeout=5)
        assert rep.outcome == A.PENDING, rep
        st1 = stack.status_json()["actions"]
        assert st1["pending"] >= st0["pending"] + 1, (st0, st1)
        assert st1["intents"] == st0["intents"] + 1, (st0, st1)
        assert st1["unknown"] >= st0["unknown"] + 1, (st0, st1)
        # the resolver keeps trying while the agency is down
        sim.wait_for(lambda: stack.status_json()["actions"]["resends"] >
                     st1["resends"], 5, 0.1, "a re-send")
        assert stack.http_get("/readyz")[0] == 200
    finally:
        w.control.clear("ccb")
    rep = A.wait_outcome(w.broker.Freeze, req, timeout=15)
    assert rep.outcome == A.DONE and rep.frozen_fen == 5_000, rep
    after = w.counters()[("ccb", "Freeze")]
    assert after[1] == before[1] + 1, (before, after)
    assert len(sim_encs(w, s.rid, acct.account_no, case)) == 1
    st2 = sim.wait_for(
        lambda: (lambda a: a if a["pending"] == st0["pending"] else None)(
            stack.status_json()["actions"]), 5, 0.1, "pending back")
    assert st2["finals"] >= st0["finals"] + 1, (st0, st2)


@pytest.mark.parametrize("code", [13, 2])
def test_agency_error_after_the_effect_is_not_rejected(w, pb, code):
    """The simulator applies the freeze and then answers INTERNAL
    (apply_before_fault): the broker cannot know the outcome and must not
    record REJECTED (which would also give the amount back to the cap while
    the money stays frozen); asked again it learns DONE."""
    s = w.subject(LIANG_HAI)
    case = A.new_case()
    ref = w.ref(s, case, "bank:cgb")
    acct = w.account(s.rid, "cgb")
    req = A.freeze_req(pb, s, ref, case, 100_000, fen=100_000)
    w.control.fault("cgb", error_permille=1000, error_code=code,
                    apply_before_fault=True, method="Freeze")
    try:
        first = w.broker.Freeze(req, timeout=5)
    finally:
        w.control.clear("cgb")
    encs = sim_encs(w, s.rid, acct.account_no, case)
    assert len(encs) == 1 and encs[0].state == "live", encs
    assert first.outcome != A.REJECTED, \
        f"REJECTED although the agency froze {encs[0].frozen_fen} fen: " \
        f"{first}"
    rep = A.wait_outcome(w.broker.Freeze, req, timeout=15)
    assert rep.outcome == A.DONE and rep.freeze_ref, rep


def test_deduction_error_after_the_effect_never_deducts_twice(w, pb):
    """The bank deducts and then answers INTERNAL: the broker must not call
    that REJECTED, or the court retries with a new request_id and the
    money is taken twice."""
    s = w.subject(HUANG_HAI)
    case = A.new_case()
    ref = w.ref(s, case, "bank:bocom")
    acct = w.account(s.rid, "bocom")
    fz = ok(w.broker.Freeze(A.freeze_req(pb, s, ref, case, 100_000,
                                         fen=20_000), timeout=15))
    b0 = _account(w, s.rid, "bocom", acct.account_no)
    req = A.deduct_req(pb, s, fz.freeze_ref, case, 15_000)
    w.control.fault("bocom", error_permille=1000, error_code=13,
                    apply_before_fault=True, method="Deduct")
    try:
        first = w.broker.Deduct(req, timeout=5)
    finally:
        w.control.clear("bocom")
    b1 = _account(w, s.rid, "bocom", acct.account_no)
    assert b1.balance_fen == b0.balance_fen - 15_000, (b0, b1)
    assert first.outcome != A.REJECTED, \
        f"REJECTED although the bank deducted 15000 fen: {first}"
    rep = A.wait_outcome(w.broker.Deduct, req, timeout=15)
    assert rep.outcome == A.DONE and rep.deducted_fen == 15_000, rep
    # a retry under a new request_id is bounded by what remains frozen
    refused(w, w.broker.Deduct,
            A.deduct_req(pb, s, fz.freeze_ref, case, 15_000), FP,
            "may not exceed")
    b2 = _account(w, s.rid, "bocom", acct.account_no)
    assert b2.balance_fen == b0.balance_fen - 15_000, (b0, b2)


# ------------------------------------------------ 6. status

def test_status_counts_actions_and_readyz(w, pb, zhang, stack):
    code, _, body = stack.http_get("/readyz")
    assert code == 200, body
    st0 = stack.status_json()["actions"]
    for k in ("intents", "finals", "pending", "refused", "conflicts",
              "replays", "resends", "journal"):
        assert k in st0, st0
    case = A.new_case()
    ref = w.ref(zhang, case, "bank:icbc")
    req = A.freeze_req(pb, zhang, ref, case, 10_000, fen=1_000)
    ok(w.broker.Freeze(req, timeout=15))
    st1 = sim.wait_for(
        lambda: (lambda a: a if a["finals"] > st0["finals"] else None)(
            stack.status_json()["actions"]), 5, 0.05, "finals")
    assert st1["intents"] == st0["intents"] + 1, (st0, st1)
    assert st1["journal"]["commits"] > st0["journal"]["commits"]
    A.rpc_error(w.broker.Freeze, A.freeze_req(pb, zhang, ref, case, 10_000,
                                              fen=20_000))
    ok(w.broker.Freeze(req, timeout=15))
    st2 = stack.status_json()["actions"]
    assert st2["refused"] == st1["refused"] + 1, (st1, st2)
    assert st2["replays"] == st1["replays"] + 1, (st1, st2)
    assert st2["intents"] == st1["intents"], (st1, st2)
    assert st2["pending"] == 0, st2
    assert stack.http_get("/readyz")[0] == 200


# ------------------------------------------------ a stack of its own

class CustodyBank:
    """A Python bank (tests/integration/pybank.py) that also serves Freeze
    and Deduct and records each Deduct's custody account."""

    def __init__(self, apb, pki):
        import pybank

        def rd(name):
            with open(os.path.join(pki, name), "rb") as f:
                return f.read()

        self.apb = apb
        self.deducts = []
        self.freezes = []
        self.bank = pybank.PyBank(apb, rd("agency-pybank.key"),
                                  rd("agency-pybank.crt"), rd("ca.crt"),
                                  holder_id=sim.ZHANG_SAN)
        b = apb.bank
        h = grpc.method_handlers_generic_handler("chakong.agency.v1.Bank", {
            "Freeze": grpc.unary_unary_rpc_method_handler(
                self.freeze, request_deserializer=b.FreezeRequest.FromString,
                response_serializer=lambda m: m.SerializeToString()),
            "Deduct": grpc.unary_unary_rpc_method_handler(
                self.deduct, request_deserializer=b.DeductRequest.FromString,
                response_serializer=lambda m: m.SerializeToString()),
        })
        self.bank.server.add_generic_rpc_handlers((h,))
        self.bank.start()

    @property
    def address(self):
        return self.bank.address

    def stop(self):
        self.bank.stop()

    def freeze(self, req, context):
        self.freezes.append(req)
        today = datetime.datetime.now(A.CST).date()
        return self.apb.bank.FreezeReply(
            status=self.apb.common.ACTION_DONE,
            freeze_id=f"PYF-{len(self.freezes) + 100}",
            frozen_fen=req.amount.fen, effective_date=today.isoformat(),
            expiry_date=(today + datetime.timedelta(
                days=req.duration_days)).isoformat())

    def deduct(self, req, context):
        self.deducts.append(req)
        return self.apb.bank.DeductReply(
            status=self.apb.common.ACTION_DONE,
            deducted_fen=req.amount.fen,
            transfer_id=f"PYT-{len(self.deducts)}")


@pytest.fixture(scope="module")
def own_stack(apb):
    """A stack with a 0 % fee margin and a Python bank that records the
    custody account of every deduction."""
    d = ck.mkdtemp("ck-it-act-")
    pki = os.path.join(d, "pki")
    mkpki = os.path.join(ck.ROOT, "tests", "pki", "mkpki")
    for args in ([pki], [pki, "agency", "pybank"]):
        r = subprocess.run([mkpki] + args, capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, r.stderr
    bank = CustodyBank(apb, pki)
    conf = (f"[endpoint.pybank]\naddress = {bank.address}\n"
            "identity = urn:chakong:agency:pybank\n\n"
            "[adapter.pybank]\nmodule = bank\nendpoints = pybank\n")
    s = None
    try:
        try:
            s = ck.Stack.up(d, env={
                "CK_EXTRA_CONF": conf,
                "CK_ACTIONS_CONF": "fee_margin_percent = 0\n"
                                   "resolver_max_backoff_s = 2"})
        except Exception as e:
            pytest.fail(str(e), pytrace=False)
        ch = s.channel()
        yield s, bank, ch
        ch.close()
    finally:
        if s is not None:
            s.down()
        bank.stop()
        if os.environ.get("CK_KEEP") != "1":
            shutil.rmtree(d, ignore_errors=True)


def test_deduction_goes_to_the_configured_custody_account(pb, own_stack):
    s, bank, ch = own_stack
    stub = pb.broker_grpc.AssetBrokerStub(ch)
    zhang = A.Subject(ZHANG, "张三")
    case = A.new_case()
    rep = stub.Query(pb.broker.QueryRequest(
        case=A.case_ref(pb, case), debtor=A.debtor(pb, ZHANG, "张三"),
        categories=[A.DEPOSIT]), timeout=15)
    src = [x for x in rep.sources if x.source == "bank:pybank"]
    assert src and src[0].assets, rep
    ref = src[0].assets[0].asset_ref
    fz = ok(stub.Freeze(A.freeze_req(pb, zhang, ref, case, 50_000,
                                     fen=50_000), timeout=15))
    assert len(bank.freezes) == 1
    # a 0 % margin: the claim is the cap
    err = A.rpc_error(stub.Freeze, A.freeze_req(pb, zhang, ref, case, 50_000,
                                                fen=1))
    A.assert_status(err, FP, "over-freezing", "0%")
    assert len(bank.freezes) == 1

    d = ok(stub.Deduct(A.deduct_req(pb, zhang, fz.freeze_ref, case, 20_000),
                       timeout=15))
    assert d.deducted_fen == 20_000 and d.transfer_id == "PYT-1", d
    assert len(bank.deducts) == 1
    got = bank.deducts[0]
    assert got.custody_account == CUSTODY_ACCOUNT, got
    assert got.custody_bank in (CUSTODY_BANK, "102"), got
    assert got.amount.fen == 20_000 and got.freeze_id == "PYF-101", got
    assert got.ctx.case_number == case and \
        got.ctx.document_number == A.doc(case, "之四"), got.ctx
