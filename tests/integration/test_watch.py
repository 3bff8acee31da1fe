"""Terminated cases under watch (issue 7): Enroll / EndEnrollment, the
re-query scheduler over simulated years, findings (RESULT, FOUND,
EXPIRING), ListFindings / AckFindings, restart in the middle of the span,
and scheduled re-queries queued behind interactive Queries.

Time: the broker's clock is moved with Testing/SetClock (the simulator's
the same way); the scheduler wakes when the clock moves, so five years
pass in as many clock steps as there are distinct due dates.
"""

import datetime
import itertools
import json
import os
import subprocess
import time

import grpc
import pytest

import actions as A
import ck
import sim

CST = datetime.timezone(datetime.timedelta(hours=8))
RESULT, FOUND, EXPIRING = 1, 2, 3
VEHICLE = 3
DEPOSIT = 1
THRESHOLD = 100000          # found_balance_fen in the stacks below

WATCH_CONF = ("[watch]\nrate = 5000\nmax_concurrent = 64\n"
              f"found_balance_fen = {THRESHOLD}\n")

# the stack's example policy, and Foshan (440600) may read and acknowledge
# its own findings: the isolation test asks as Foshan
POLICY = """[policy.court:440100]
grant = all
courts = *

[policy.court:440600]
Query = deposit, real-estate
Freeze = deposit
Extend = deposit
Release = deposit
ListFindings = *
AckFindings = *
"""

_serial = itertools.count(30001)
_run = os.urandom(3).hex()
_rids = itertools.count(1)


def rid(tag="w"):
    return f"{tag}-{_run}-{next(_rids)}"


def new_case(year=2024):
    return f"({year})粤01执{next(_serial)}号"


def resident_id(n):
    """A valid resident identity number (GB 11643) that the simulated
    population does not know: agencies answer NOT_FOUND for it."""
    body = f"4401031980{n % 12 + 1:02d}{n % 28 + 1:02d}{n % 1000:03d}"
    w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    s = sum(int(c) * k for c, k in zip(body, w))
    return body + "10X98765432"[s % 11]


def cst_date(ts):
    return datetime.datetime.fromtimestamp(ts, CST).date()


def day_start(d, hour=1):
    """Unix seconds of date d at hour:00 UTC+8."""
    return int(datetime.datetime(d.year, d.month, d.day, hour,
                                 tzinfo=CST).timestamp())


class Env:
    """One stack of this module's own (with the [watch] settings above):
    the broker (court 440100), the simulator's control, both clocks."""

    def __init__(self, stack, pb, apb):
        self.stack, self.pb, self.apb = stack, pb, apb
        self.ch = stack.channel()
        self.broker = pb.broker_grpc.AssetBrokerStub(self.ch)
        self.testing = pb.testing_grpc.TestingStub(self.ch)
        self.control = sim.Control(stack, apb)
        self.sim_clock = self.control.channel.unary_unary(
            "/chakong.test.v1.Testing/SetClock",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=pb.testing.SetClockReply.FromString)

    def reconnect(self):
        self.ch.close()
        self.ch = self.stack.channel()
        self.broker = self.pb.broker_grpc.AssetBrokerStub(self.ch)
        self.testing = self.pb.testing_grpc.TestingStub(self.ch)

    def close(self):
        self.ch.close()
        self.control.close()

    def now(self):
        return self.testing.SetClock(self.pb.testing.SetClockRequest(),
                                     timeout=5).now_unix_s

    def set_clock(self, unix_s):
        req = self.pb.testing.SetClockRequest(set_unix_s=unix_s)
        self.sim_clock(req, timeout=5)
        return self.testing.SetClock(req, timeout=5).now_unix_s

    def watch(self):
        return self.stack.status_json()["watch"]

    def wait_watch(self, key, value, timeout=60):
        return sim.wait_for(lambda: self.watch()[key] >= value, timeout,
                            what=f"/status watch.{key} >= {value} "
                            f"(now {self.watch()[key]})")

    def enroll(self, case, rid_, term, categories=(VEHICLE,), name="王五",
               request_id=None, future=False):
        b = self.pb.broker
        req = b.EnrollRequest(
            request_id=request_id or rid("en"),
            case=b.CaseRef(case_number=case, claim_amount_fen=1000000,
                           officer_id="GZ0001"),
            debtor=b.Debtor(resident_id=rid_, name=name),
            categories=list(categories),
            termination_date=term.isoformat(),
            document_number=case + "之三")
        if future:
            return self.broker.Enroll.future(req, timeout=30)
        return self.broker.Enroll(req, timeout=30)

    def findings(self, kind=0, since=0, unread_only=False, page_size=1000):
        out, token = [], ""
        while True:
            rep = self.broker.ListFindings(self.pb.broker.ListFindingsRequest(
                kind=kind, since=since, unread_only=unread_only,
                page_size=page_size, page_token=token), timeout=30)
            out.extend(rep.findings)
            token = rep.next_page_token
            if not token:
                return out


def enroll_some(env, n, first_id, days_ago=1):
    """n vehicle enrollments terminated days_ago days ago (the broker's
    today), each of a new case and an unknown debtor: {case: due dates}."""
    today = cst_date(env.now())
    term = today - datetime.timedelta(days=days_ago)
    cases = {}
    for i in range(n):
        c = new_case(year=today.year)
        cases[c] = list(env.enroll(c, resident_id(first_id + i),
                                   term).due_dates)
    return cases


def results_for(env, cases):
    """The RESULT findings of these cases."""
    return [f for f in env.findings(kind=RESULT) if f.case_number in cases]


@pytest.fixture(scope="module")
def apb():
    yield from sim.agency_messages()


@pytest.fixture(scope="module")
def env(module_stack, pb, apb):
    s = module_stack(CK_EXTRA_CONF=WATCH_CONF, CK_POLICY_CONF=POLICY)
    e = Env(s, pb, apb)
    yield e
    e.close()


def test_thousand_enrollments_over_five_years(env):
    """1,000 enrollments, each re-queried exactly on its ten due dates
    (and never after), the simulator's counters agree, and every re-query
    has a recorded RESULT."""
    today = cst_date(env.now())
    terms = [today - datetime.timedelta(days=3 * k) for k in range(10)]
    cases = {}
    futures = []
    for i in range(1000):
        case = new_case()
        term = terms[i % 10]
        futures.append((case, term, env.enroll(case, resident_id(i), term,
                                               future=True)))
        if len(futures) >= 100:
            for c, t, f in futures:
                cases[c] = (t, list(f.result().due_dates))
            futures = []
    for c, t, f in futures:
        cases[c] = (t, list(f.result().due_dates))
    assert len(cases) == 1000
    for c, (t, dues) in cases.items():
        assert len(dues) == 10, dues
        for k, d in enumerate(dues, 1):
            m = t.month - 1 + 6 * k
            y = t.year + m // 12
            want = datetime.date(y, m % 12 + 1, 1)
            # the day, clamped to the month's end
            day = min(t.day, ((want.replace(day=28) +
                               datetime.timedelta(days=4)).replace(day=1) -
                              datetime.timedelta(days=1)).day)
            assert d == want.replace(day=day).isoformat(), (t, k, d)
    # the baseline query of every enrollment (no finding), then a clean
    # slate for the counters
    env.wait_watch("baselines", 1000)
    assert env.watch()["enrollments_active"] >= 1000
    env.control.counters(reset=True)
    before = env.watch()["results_recorded"]

    schedule = {}
    for c, (t, dues) in cases.items():
        for d in dues:
            schedule.setdefault(d, 0)
            schedule[d] += 1
    expected = before
    for d in sorted(schedule):
        day = datetime.date.fromisoformat(d)
        env.set_clock(day_start(day, hour=1))
        expected += schedule[d]
        env.wait_watch("results_recorded", expected)
        # nothing early: exactly the ones due so far
        assert env.watch()["results_recorded"] == expected, d
    # long after the last due date: nothing more
    last = datetime.date.fromisoformat(max(schedule))
    env.set_clock(day_start(last + datetime.timedelta(days=400)))
    time.sleep(0.5)
    st = env.watch()
    assert st["results_recorded"] == expected
    assert st["in_flight"] == 0
    calls = env.control.calls("vehicle", "QueryVehicles")
    assert calls == 10000, calls

    results = [f for f in env.findings(kind=RESULT) if f.case_number in
               cases]
    assert len(results) == 10000
    per_case = {}
    for f in results:
        per_case.setdefault(f.case_number, []).append(f)
    for c, (t, dues) in cases.items():
        got = per_case[c]
        # each recorded on its due date, one for each
        assert sorted(cst_date(f.created_at).isoformat() for f in got) == \
            dues, c
        for f in got:
            assert f.summary.startswith("due date "), f.summary
            assert len(f.sources) == 1 and f.sources[0].source == "vehicle"
            # answered (the registry does not know these debtors), on
            # the day the finding was made
            assert f.sources[0].status in (1, 7), f.sources[0]
            assert cst_date(f.sources[0].fetched_at) == \
                cst_date(f.created_at)
    # no FOUND for debtors the agencies do not know
    assert not [f for f in env.findings(kind=FOUND) if f.case_number in
                cases]


def accounts_of(env, rid_):
    """{endpoint: [Account]} of a subject at the bank endpoints."""
    out = {}
    for ev in env.control.lookup(resident_id=rid_).endpoints:
        if ev.kind == "bank" and ev.accounts.found:
            out[ev.endpoint] = list(ev.accounts.accounts)
    return out


def test_found_exactly_for_new_assets(env):
    """FOUND findings appear exactly for the debtors the simulator gave new
    assets (an account at a bank; a deposit lifting an available balance
    above the threshold), once per new asset."""
    samples = list(env.control.endpoints().sample_resident_ids) + [
        "440604199212242345", "440113196306094430", "440604198103145883",
        "440113198509209989", "440606199609086160", "44010419791201710X"]
    info = {r: accounts_of(env, r) for r in samples}
    count = {r: sum(len(v) for v in a.values()) for r, a in info.items()}
    two, one = samples[0], samples[1]
    cny = next(r for r in samples if r not in (two, one) and any(
        a.currency == "CNY" for v in info[r].values() for a in v))
    quiet = [r for r in samples if r not in (two, one, cny)][:2]
    assert len(quiet) == 2
    # the balance debtor starts at or below the threshold
    bal_ep, bal_acct = next((ep, a) for ep, v in info[cny].items()
                            for a in v if a.currency == "CNY")
    delta = 50000 - bal_acct.available_fen
    if delta:
        env.control._deposit(env.apb.agencysim.DepositRequest(
            endpoint=bal_ep, account_no=bal_acct.account_no,
            amount_fen=delta), timeout=10)

    today = cst_date(env.now())
    term = today - datetime.timedelta(days=10)
    cases = {}
    base = env.watch()["baselines"]
    for r in [two, one, cny] + quiet:
        case = new_case(year=today.year)
        name = env.control.lookup(resident_id=r).name
        rep = env.enroll(case, r, term, categories=(DEPOSIT,), name=name)
        cases[r] = (case, list(rep.due_dates))
    env.wait_watch("baselines", base + 5)

    free = [ep for ep in ("icbc", "abc", "boc", "ccb", "bocom", "cmb")
            if ep not in info[two]][:2]
    env.control.grant(two, free[0], 1000)
    env.control.grant(two, free[1], 2000000)
    env.control.grant(one, next(ep for ep in ("cgb", "psbc", "cmb", "icbc")
                                if ep not in info[one]), 0)
    env.control._deposit(env.apb.agencysim.DepositRequest(
        endpoint=bal_ep, account_no=bal_acct.account_no,
        amount_fen=200000), timeout=10)

    def found_by_case():
        out = {}
        for f in env.findings(kind=FOUND):
            out.setdefault(f.case_number, []).append(f)
        return out

    recorded = env.watch()["results_recorded"]
    for step, due in enumerate(cases[two][1][:2]):
        env.set_clock(day_start(datetime.date.fromisoformat(due)))
        recorded += 5
        env.wait_watch("results_recorded", recorded)
        found = found_by_case()
        got = {r: len(found.get(c, [])) for r, (c, _) in cases.items()}
        # the first re-query finds them; the second finds nothing new
        assert got == {two: 2, one: 1, cny: 1, quiet[0]: 0, quiet[1]: 0}, \
            (step, got)
    found = found_by_case()
    for f in found[cases[two][0]] + found[cases[one][0]]:
        assert "a new asset: deposit at bank:" in f.summary, f.summary
        assert len(f.sources) == 1 and len(f.sources[0].assets) == 1
        assert f.sources[0].assets[0].asset_ref
    (f,) = found[cases[cny][0]]
    assert "rose above" in f.summary and f"bank:{bal_ep}" in f.summary
    assert f.sources[0].assets[0].deposit.available.fen == 250000
    # no identity or account number in any summary
    for fs in found.values():
        for f in fs:
            assert not any(r in f.summary for r in cases), f.summary
    # every re-query also has its RESULT
    results = [f for f in env.findings(kind=RESULT)
               if f.case_number == cases[two][0]]
    assert len(results) == 2 and results[0].summary.endswith("2 found")


def test_enroll_idempotent_end_and_ack(env):
    b = env.pb.broker
    today = cst_date(env.now())
    case = new_case(year=today.year)
    r = rid("idem")
    term = today - datetime.timedelta(days=1)
    first = env.enroll(case, resident_id(5001), term, request_id=r)
    again = env.enroll(case, resident_id(5001), term, request_id=r)
    assert again.enrollment_id == first.enrollment_id
    assert list(again.due_dates) == list(first.due_dates)
    with pytest.raises(grpc.RpcError) as e:
        env.enroll(case, resident_id(5002), term, request_id=r)
    assert e.value.code() == grpc.StatusCode.ALREADY_EXISTS
    with pytest.raises(grpc.RpcError) as e:
        env.enroll(case, resident_id(5001), term)
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "already enrolled" in e.value.details()
    # a case of a court that is not the caller's
    with pytest.raises(grpc.RpcError) as e:
        env.enroll(f"({today.year})粤06执{next(_serial)}号",
                   resident_id(5003), term)
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # more due dates than the span has passed
    with pytest.raises(grpc.RpcError) as e:
        env.enroll(new_case(year=today.year - 6), resident_id(5004),
                   today.replace(year=today.year - 6))
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "termination_date" in e.value.details()

    def end(reason, rid_, new=""):
        return env.broker.EndEnrollment(b.EndEnrollmentRequest(
            request_id=rid_, case=b.CaseRef(
                case_number=case, officer_id="GZ0001"),
            reason=reason, new_case_number=new), timeout=10)

    active = env.watch()["enrollments_active"]
    er = rid("end")
    restored = f"({today.year})粤01执恢{next(_serial)}号"
    end(b.END_RESTORED, er, restored)
    assert env.watch()["enrollments_active"] == active - 1
    assert end(b.END_RESTORED, er, restored).reruns_done == 0   # replay
    with pytest.raises(grpc.RpcError) as e:
        end(b.END_CLOSED, er)
    assert e.value.code() == grpc.StatusCode.ALREADY_EXISTS
    with pytest.raises(grpc.RpcError) as e:
        end(b.END_CLOSED, rid("end"))
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.RpcError) as e:
        env.broker.EndEnrollment(b.EndEnrollmentRequest(
            request_id=rid("end"), case=b.CaseRef(
                case_number=new_case(year=today.year), officer_id="GZ0001"),
            reason=b.END_CLOSED), timeout=10)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND

    # findings: paged, acknowledged once, unread_only
    unread = env.findings(unread_only=True)
    assert unread and env.watch()["findings_unread"] == len(unread)
    page = env.broker.ListFindings(b.ListFindingsRequest(page_size=3),
                                   timeout=10)
    assert len(page.findings) == 3 and page.next_page_token
    ids = [f.finding_id for f in unread[:5]]
    ar = rid("ack")
    assert env.broker.AckFindings(b.AckFindingsRequest(
        request_id=ar, finding_ids=ids), timeout=10).acknowledged == 5
    assert env.broker.AckFindings(b.AckFindingsRequest(
        request_id=ar, finding_ids=ids), timeout=10).acknowledged == 5
    assert env.broker.AckFindings(b.AckFindingsRequest(
        request_id=rid("ack"), finding_ids=ids), timeout=10).acknowledged == 0
    assert env.watch()["findings_unread"] == len(unread) - 5
    with pytest.raises(grpc.RpcError) as e:
        env.broker.AckFindings(b.AckFindingsRequest(
            request_id=rid("ack"), finding_ids=["00000000ffffffff"]),
            timeout=10)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    # another court sees none of them
    partner = env.stack.channel(cert=env.stack.partner_cert,
                                key=env.stack.partner_key)
    try:
        pstub = env.pb.broker_grpc.AssetBrokerStub(partner)
        assert not pstub.ListFindings(b.ListFindingsRequest(),
                                      timeout=10).findings
        with pytest.raises(grpc.RpcError) as e:
            pstub.AckFindings(b.AckFindingsRequest(
                request_id=rid("ack"), finding_ids=ids[:1]), timeout=10)
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        partner.close()


def test_freezes_expiring_in_the_window(env):
    """Active freezes expiring within the window (30 days) give one EXPIRING
    finding per freeze and expiry date; an extended one stops."""
    b = env.pb.broker
    today = cst_date(env.now())
    zhang = A.Subject(sim.ZHANG_SAN, "张三")
    made = []
    for _ in range(2):
        case = new_case(year=today.year)
        q = env.broker.Query(b.QueryRequest(
            case=A.case_ref(env.pb, case, 10000000),
            debtor=A.debtor(env.pb, zhang.rid, zhang.name),
            categories=[DEPOSIT]), timeout=15)
        (icbc,) = [s for s in q.sources if s.source == "bank:icbc"]
        cny = [a for a in icbc.assets if a.deposit.balance.currency == "CNY"]
        rep = env.broker.Freeze(A.freeze_req(
            env.pb, zhang, cny[0].asset_ref, case, 10000000, fen=1000,
            days=40), timeout=15)
        assert A.outcome_name(rep.outcome) in ("DONE", "PARTIAL"), rep
        made.append((case, rep.freeze_ref, rep.expiry_date))

    def expiring(nudge=False):
        # a Freeze is answered before its record is committed; the watch
        # looks whenever the clock moves (and every expiry_check_s), so
        # a poll nudges the clock (SetClock with no change)
        if nudge:
            env.now()
        return [f for f in env.findings(kind=EXPIRING)
                if f.case_number in {m[0] for m in made}]

    assert not expiring()   # 40 days away: outside the window
    now = env.now()
    env.set_clock(now + 15 * 86400)     # 25 days left: inside
    got = sim.wait_for(lambda: len(expiring(True)) == 2 and expiring(), 20,
                       what="two EXPIRING findings")
    for f in got:
        (case, fref, expiry) = next(m for m in made if m[0] == f.case_number)
        assert f.expiry_date == expiry and f.freeze_ref
        assert "expires on " + expiry in f.summary
        assert sim.ZHANG_SAN not in f.summary
    assert env.watch()["freezes_expiring_7d"] >= 0
    # the returned freeze_ref works: extend the first one with it
    case0 = made[0][0]
    f0 = next(f for f in got if f.case_number == case0)
    ext = env.broker.Extend(A.extend_req(env.pb, zhang, f0.freeze_ref, case0,
                                         10000000, days=60), timeout=15)
    assert A.outcome_name(ext.outcome) == "DONE", ext
    # ten days on, then past the second one's expiry: still one each
    # (once per freeze and expiry date), none for the extended one
    env.set_clock(now + 25 * 86400)
    time.sleep(0.3)
    env.set_clock(now + 39 * 86400)
    time.sleep(0.3)
    assert env.watch()["freezes_expiring_7d"] >= 1
    kinds = {}
    for f in expiring():
        kinds.setdefault(f.case_number, []).append(f.expiry_date)
    assert kinds == {case0: [made[0][2]], made[1][0]: [made[1][2]]}, kinds
    # the extension's new expiry enters the window much later: a new one
    new_expiry = datetime.date.fromisoformat(ext.expiry_date)
    env.set_clock(day_start(new_expiry - datetime.timedelta(days=20)))
    sim.wait_for(lambda: len([f for f in expiring(True)
                              if f.case_number == case0]) == 2, 20,
                 what="an EXPIRING finding for the new expiry date")


@pytest.fixture
def own(fresh_stack, pb, apb):
    envs = []

    def make(**extra):
        e = Env(fresh_stack(CK_EXTRA_CONF=WATCH_CONF, **extra), pb, apb)
        envs.append(e)
        return e
    yield make
    for e in envs:
        e.close()


def restart(env):
    r = subprocess.run([ck.STACK_SH, "restart", env.stack.dir, "chakongd"],
                       capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, CK_BUILD=env.stack.build),
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stdout + r.stderr
    env.stack = ck.Stack(env.stack.dir)
    env.reconnect()


def test_restart_mid_span_loses_nothing_and_runs_once(own):
    """SIGKILL while a due date's re-queries are in flight, stay down over
    the next due date, restart: every enrollment is re-queried once (not
    once per missed date), nothing is lost, the schedule goes on."""
    env = own()
    cases = enroll_some(env, 50, 7000)
    env.wait_watch("baselines", 50)
    dues = cases[next(iter(cases))]
    env.set_clock(day_start(datetime.date.fromisoformat(dues[0])))
    env.wait_watch("results_recorded", 50)
    # due date 2: the registry hangs, the broker dies with all in flight
    env.control.fault("vehicle", hang_permille=1000)
    env.set_clock(day_start(datetime.date.fromisoformat(dues[1])))
    sim.wait_for(lambda: env.watch()["in_flight"] >= 50, 20,
                 what="50 re-queries in flight")
    restart(env)        # SIGKILL, then start with the real clock
    env.control.clear("vehicle")
    env.control.counters(reset=True)
    assert env.watch()["enrollments_active"] == 50
    time.sleep(0.3)
    assert env.control.calls("vehicle", "QueryVehicles") == 0
    # up again after due date 3 has passed too: one run each
    env.set_clock(day_start(datetime.date.fromisoformat(dues[2])))
    env.wait_watch("results_recorded", 50)
    time.sleep(0.5)
    assert env.watch()["results_recorded"] == 50
    assert env.control.calls("vehicle", "QueryVehicles") == 50
    assert env.watch()["caught_up"] == 50
    env.set_clock(day_start(datetime.date.fromisoformat(dues[3])))
    env.wait_watch("results_recorded", 100)
    time.sleep(0.3)
    assert env.control.calls("vehicle", "QueryVehicles") == 100
    results = {}
    for f in env.findings(kind=RESULT):
        results.setdefault(f.case_number, []).append(f)
    for c in cases:
        got = sorted(results[c], key=lambda f: f.created_at)
        assert [cst_date(f.created_at).isoformat() for f in got] == \
            [dues[0], dues[2], dues[3]], c
        assert "caught up" in got[1].summary and dues[2] in got[1].summary


def test_interactive_queries_go_before_scheduled(own):
    """With the scheduler's re-queries waiting at an endpoint held to one
    call at a time, an interactive Query is sent before them: when it is
    answered, at most the one re-query that was already in flight (and the
    next one) have been answered."""
    env = own(CK_ENDPOINT_CONF="max_concurrent = 1")
    dues = next(iter(enroll_some(env, 20, 8000).values()))
    env.wait_watch("baselines", 20)
    env.control.fault("vehicle", latency_ms=100)
    env.control.counters(reset=True)
    env.set_clock(day_start(datetime.date.fromisoformat(dues[0])))
    # every re-query started: one in flight at the registry, the rest
    # queued behind it in the pool
    sim.wait_for(lambda: env.watch()["in_flight"] == 20, 10,
                 what="20 re-queries in flight")
    rep = env.broker.Query(sim.query_req(env.pb, resident_id=resident_id(1),
                                         name="王五",
                                         categories=[VEHICLE]), timeout=30)
    (src,) = [s for s in rep.sources if s.source == "vehicle"]
    assert src.status in (1, 7), src
    done = env.watch()["results_recorded"]
    calls = env.control.calls("vehicle", "QueryVehicles")
    assert done <= 2 and calls <= 3, (done, calls)
    env.wait_watch("results_recorded", 20)
    assert env.control.calls("vehicle", "QueryVehicles") == 21


def ctl(stack, *args):
    exe = os.path.join(stack.build, "broker", "chakongctl")
    e = dict(os.environ)
    e.update({k: v for k, v in stack.env.items() if k.startswith("CK_")})
    r = subprocess.run([exe, *args], capture_output=True, text=True, env=e,
                       timeout=60, stdin=subprocess.DEVNULL)
    return r


def test_chakongctl_enroll_findings_ack_end(env):
    import json
    today = cst_date(env.now())
    case = new_case(year=today.year)
    term = (today - datetime.timedelta(days=2)).isoformat()
    r = ctl(env.stack, "enroll", "--id", resident_id(9001), "--name", "王五",
            "--case", case, "--officer", "GZ0001", "--document",
            case + "之五", "--termination-date", term, "--category",
            "vehicle", "--json")
    assert r.returncode == 0, (r.stdout, r.stderr)
    out = json.loads(r.stdout)
    assert len(out["due_dates"]) == 10 and out["enrollment_id"]
    assert resident_id(9001) not in r.stdout
    env.set_clock(day_start(datetime.date.fromisoformat(
        out["due_dates"][0])))
    sim.wait_for(lambda: any(f.case_number == case for f in
                             env.findings(kind=RESULT)), 20,
                 what="the first RESULT")
    r = ctl(env.stack, "findings", "--kind", "result", "--unread", "--all",
            "--json")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    mine = [x for x in rows if x["case_number"] == case]
    assert len(mine) == 1 and mine[0]["kind"] == "result"
    r = ctl(env.stack, "findings", "--kind", "result", "--page-size", "1")
    assert r.returncode == 0 and r.stdout.count(" result ") == 1
    assert ("next page: --page-token" in r.stdout) == (len(rows) > 1)
    r = ctl(env.stack, "ack", mine[0]["finding_id"])
    assert r.returncode == 0 and "acknowledged" in r.stdout, r.stdout
    assert r.stdout.split()[-1] == "1"
    r = ctl(env.stack, "end-enrollment", "--case", case, "--officer",
            "GZ0001", "--closed", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["reruns_done"] == 1
    r = ctl(env.stack, "end-enrollment", "--case", case, "--officer",
            "GZ0001")
    assert r.returncode == 64 and "--closed" in r.stderr
    r = ctl(env.stack, "findings", "--kind", "nope")
    assert r.returncode == 64


def reload_with(env, extra):
    """Rewrite the [watch] section with `extra` lines and SIGHUP."""
    def edit(text):
        head, sep, tail = text.partition("[watch]\n")
        assert sep, "no [watch] section"
        tail = "".join(line + "\n" for line in tail.splitlines()
                       if not line.startswith("window"))
        return head + sep + extra + tail
    reload_edited(env, edit)


def reload_edited(env, edit):
    """Rewrite the config with edit(text) and SIGHUP; wait for the reload."""
    import signal
    with open(env.stack.conf) as f:
        text = f.read()
    with open(env.stack.conf, "w") as f:
        f.write(edit(text))
    n = env.stack.log_text().count("reload done")
    ck.send_signal(env.stack, signal.SIGHUP)
    sim.wait_for(lambda: env.stack.log_text().count("reload done") > n, 10,
                 what="the reload")


def test_daily_window(env):
    """With window = 02:00-03:00 (UTC+8) nothing is re-queried outside it;
    inside it the due work runs (a reload changes it)."""
    reload_with(env, "window = 02:00-03:00\n")
    try:
        today = cst_date(env.now())
        cases = enroll_some(env, 5, 9100)
        tomorrow = today + datetime.timedelta(days=1)
        base = env.watch()["baselines"]
        env.set_clock(day_start(tomorrow, hour=1))
        time.sleep(0.5)
        st = env.watch()
        assert st["baselines"] == base                # outside: waits
        assert st["due_today"] >= 5 and st["in_flight"] == 0, st
        env.set_clock(day_start(tomorrow, hour=2) + 600)
        env.wait_watch("baselines", base + 5)
        def mine():
            return results_for(env, cases)
        first = datetime.date.fromisoformat(cases[next(iter(cases))][0])
        env.set_clock(day_start(first, hour=1))
        time.sleep(0.5)
        assert not mine()
        env.set_clock(day_start(first, hour=2) + 60)
        got = sim.wait_for(lambda: len(mine()) == 5 and mine(), 20,
                           what="5 RESULT findings in the window")
        for f in got:
            t = datetime.datetime.fromtimestamp(f.created_at, CST)
            assert t.date() == first and t.hour == 2, t
    finally:
        reload_with(env, "")


def test_fast_clock_wakes_the_scheduler_on_time(env):
    """A clock running 50 times faster: the scheduler's timer is armed in
    real time for the sped-up clock, so a due date 100 simulated seconds
    ahead runs about two real seconds later, with no further clock move,
    and on its due date."""
    cases = enroll_some(env, 3, 9200)
    first = datetime.date.fromisoformat(cases[next(iter(cases))][0])
    req = env.pb.testing.SetClockRequest(set_unix_s=day_start(first, 0) - 100,
                                         rate=50)
    env.sim_clock(req, timeout=5)
    env.testing.SetClock(req, timeout=5)
    try:
        def mine():
            return results_for(env, cases)
        assert not mine()
        got = sim.wait_for(lambda: len(mine()) == 3 and mine(), 30,
                           what="3 RESULT findings on the due date")
        for f in got:
            assert cst_date(f.created_at) == first
    finally:
        req = env.pb.testing.SetClockRequest(rate=1)
        env.sim_clock(req, timeout=5)
        env.testing.SetClock(req, timeout=5)


def reload_conf(env, old, new):
    """Replace `old` by `new` in the config and SIGHUP."""
    def edit(text):
        assert old in text, old
        return text.replace(old, new)
    reload_edited(env, edit)


def test_each_run_is_checked_against_current_policy(env):
    """A re-query is checked against the configuration in force when it
    runs: once the court no longer owns the case number's prefix, its
    due date is recorded as refused and no agency is asked."""
    cases = enroll_some(env, 3, 9300)
    sim.wait_for(lambda: env.watch()["in_flight"] == 0, 10,
                 what="the baselines")
    refused = env.watch()["policy_refused"]
    reload_conf(env, "prefixes = 粤01\n", "prefixes = 粤03\n")
    try:
        calls = env.control.calls("vehicle", "QueryVehicles")
        first = datetime.date.fromisoformat(cases[next(iter(cases))][0])
        env.set_clock(day_start(first))

        def mine():
            return results_for(env, cases)
        got = sim.wait_for(lambda: len(mine()) == 3 and mine(), 20,
                           what="3 refused RESULT findings")
        for f in got:
            assert "not run: refused by policy" in f.summary, f.summary
            assert not f.sources
        # (earlier tests' enrollments due by then are refused too)
        assert env.watch()["policy_refused"] >= refused + 3
        assert env.control.calls("vehicle", "QueryVehicles") == calls
    finally:
        reload_conf(env, "prefixes = 粤03\n", "prefixes = 粤01\n")


def audit_export(env, case):
    r = subprocess.run(
        [os.path.join(env.stack.build, "broker", "chakongctl"), "audit",
         "export", "--config", env.stack.conf, "--case", case],
        capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


def test_scheduled_runs_are_audited(env):
    """A re-query is in the audit trail like a court's Query: a request
    record as the enrolling court and officer and one record per agency
    call, both with origin "scheduled"."""
    cases = enroll_some(env, 2, 9400)
    sim.wait_for(lambda: env.watch()["in_flight"] == 0, 10,
                 what="the baselines")
    first = datetime.date.fromisoformat(cases[next(iter(cases))][0])
    env.set_clock(day_start(first))
    sim.wait_for(lambda: len(results_for(env, cases)) == 2, 20,
                 what="2 RESULT findings")
    case = next(iter(cases))

    def scheduled():
        return [r for r in audit_export(env, case)
                if r.get("origin") == "scheduled"]
    recs = sim.wait_for(lambda: len([r for r in scheduled()
                                     if r["kind"] == "request"]) >= 2 and
                        scheduled(), 10, what="the runs' audit records")
    reqs = [r for r in recs if r["kind"] == "request"]
    # the baseline at enrollment and the first due date
    assert len(reqs) == 2, reqs
    for r in reqs:
        assert r["client"] == "court:440100"
        assert r["method"] == "/chakong.v1.AssetBroker/Query"
        assert r["officer_id"] and r["debtor_hash"]
        assert r["status"] == "OK"
    calls = [r for r in recs if r["kind"] == "agency_call"]
    assert len(calls) == 2 and {r["source"] for r in calls} == {"vehicle"}


def test_scheduled_runs_follow_the_access_policy(env):
    """Withdraw the court's right to Query vehicles (SIGHUP): its vehicle
    enrollments' next runs are refused naming the right, no agency is
    asked; given back, they run again."""
    cases = enroll_some(env, 2, 9500)
    sim.wait_for(lambda: env.watch()["in_flight"] == 0, 10,
                 what="the baselines")
    grant = "[policy.court:440100]\ngrant = all\n"
    narrow = ("[policy.court:440100]\nQuery = deposit\nEnroll = *\n"
              "EndEnrollment = *\nListFindings = *\nAckFindings = *\n")
    reload_conf(env, grant, narrow)
    try:
        calls = env.control.calls("vehicle", "QueryVehicles")
        first = datetime.date.fromisoformat(cases[next(iter(cases))][0])
        env.set_clock(day_start(first))
        got = sim.wait_for(lambda: len(results_for(env, cases)) == 2 and
                           results_for(env, cases), 20,
                           what="2 refused RESULT findings")
        for f in got:
            assert "refused by policy" in f.summary, f.summary
            assert "right Query" in f.summary, f.summary
        assert env.control.calls("vehicle", "QueryVehicles") == calls
    finally:
        reload_conf(env, narrow, grant)
