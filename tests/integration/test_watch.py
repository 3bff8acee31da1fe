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
import os
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


@pytest.fixture(scope="module")
def apb():
    yield from sim.agency_messages()


@pytest.fixture(scope="module")
def env(module_stack, pb, apb):
    s = module_stack(CK_EXTRA_CONF=WATCH_CONF)
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
