"""Helpers for the action tests (Freeze, Extend, Release, Deduct,
UpdateClaim): request builders, unique case numbers and request ids, the
simulator's counters as a comparable snapshot, both clocks (the broker's
and the simulator's Testing/SetClock), and the debtors' accounts as the
simulator holds them.

Everything here runs under Debian's /usr/bin/python3 (python3-grpcio,
python3-protobuf).
"""

import datetime
import itertools
import os
import time

import grpc

import sim

CST = datetime.timezone(datetime.timedelta(hours=8))

# Outcomes (chakong.v1.ActionOutcome).
DONE, PARTIAL, QUEUED, REJECTED, PENDING = 1, 2, 3, 4, 5
OUTCOME_NAMES = {0: "UNSPECIFIED", 1: "DONE", 2: "PARTIAL", 3: "QUEUED",
                 4: "REJECTED", 5: "PENDING"}

# Categories.
DEPOSIT, REAL_ESTATE, VEHICLE = 1, 2, 3

OFFICER = "GZ0001"

_run = os.urandom(3).hex()
_rids = itertools.count(1)
_serials = itertools.count(7001)


def request_id(tag="act"):
    """A request_id no other call of this run uses."""
    return f"{tag}-{_run}-{next(_rids)}"


def new_case(kind="执", court="粤01", year=2025):
    """A case number no other test of this session uses (each case has its
    own claim and over-freezing cap)."""
    return f"({year}){court}{kind}{next(_serials)}号"


def doc(case, suffix="之一"):
    return case + suffix


def outcome_name(o):
    return OUTCOME_NAMES.get(o, f"?{o}")


# ------------------------------------------------------------ requests

def debtor(pb, resident_id, name):
    return pb.broker.Debtor(resident_id=resident_id, name=name)


def case_ref(pb, case, claim=0, officer=OFFICER, currency=""):
    return pb.broker.CaseRef(case_number=case, claim_amount_fen=claim,
                             officer_id=officer, claim_currency=currency)


def freeze_req(pb, subject, ref, case, claim, fen=None, days=30, rid=None,
               currency="CNY", document=None):
    return pb.broker.FreezeRequest(
        request_id=rid if rid is not None else request_id("fz"),
        case=case_ref(pb, case, claim),
        debtor=debtor(pb, subject.rid, subject.name), asset_ref=ref,
        document_number=document if document is not None else doc(case),
        amount=(pb.broker.Money(fen=fen, currency=currency)
                if fen is not None else None),
        duration_days=days)


def extend_req(pb, subject, fref, case, claim=0, days=30, rid=None,
               document=None):
    return pb.broker.ExtendRequest(
        request_id=rid if rid is not None else request_id("ex"),
        case=case_ref(pb, case, claim),
        debtor=debtor(pb, subject.rid, subject.name), freeze_ref=fref,
        document_number=document if document is not None else
        doc(case, "之二"), duration_days=days)


def release_req(pb, subject, fref, case, claim=0, rid=None, document=None):
    return pb.broker.ReleaseRequest(
        request_id=rid if rid is not None else request_id("rl"),
        case=case_ref(pb, case, claim),
        debtor=debtor(pb, subject.rid, subject.name), freeze_ref=fref,
        document_number=document if document is not None else
        doc(case, "之三"))


def deduct_req(pb, subject, fref, case, fen, claim=0, rid=None,
               currency="CNY", document=None):
    return pb.broker.DeductRequest(
        request_id=rid if rid is not None else request_id("dd"),
        case=case_ref(pb, case, claim),
        debtor=debtor(pb, subject.rid, subject.name), freeze_ref=fref,
        document_number=document if document is not None else
        doc(case, "之四"),
        amount=pb.broker.Money(fen=fen, currency=currency))


def claim_req(pb, case, fen, rid=None, reason="变更执行标的"):
    return pb.broker.UpdateClaimRequest(
        request_id=rid if rid is not None else request_id("cl"),
        case=case_ref(pb, case),
        new_claim=pb.broker.Money(fen=fen, currency="CNY"),
        document_number=doc(case, "之五"), reason=reason)


def rpc_error(fn, req, timeout=15):
    """The grpc.RpcError fn(req) raises (fails when it succeeds)."""
    try:
        rep = fn(req, timeout=timeout)
    except grpc.RpcError as e:
        return e
    raise AssertionError(f"expected an error, got a reply: {rep}")


def assert_status(err, code, *words):
    """err has status `code` and a message holding every one of words."""
    assert err.code() == code, f"{err.code()}: {err.details()!r}"
    msg = err.details() or ""
    for w in words:
        assert w in msg, f"{msg!r} does not mention {w!r}"
    return msg


# ------------------------------------------------------------ subjects

class Subject:
    """A debtor of the simulated population: id, name and, per source, the
    simulator's accounts / properties / vehicles."""

    def __init__(self, rid, name):
        self.rid, self.name = rid, name


class World:
    """The stack seen by the action tests: the broker's stub (as the
    Guangzhou court), the simulator's control client and both clocks."""

    def __init__(self, stack, pb, apb, broker, control, testing):
        self.stack, self.pb, self.apb = stack, pb, apb
        self.broker, self.control, self.testing = broker, control, testing
        self._sim_clock = control.channel.unary_unary(
            "/chakong.test.v1.Testing/SetClock",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=pb.testing.SetClockReply.FromString)

    # -- the population

    def subject(self, rid):
        lk = self.control.lookup(resident_id=rid)
        assert lk.found, rid
        return Subject(rid, lk.name)

    def account(self, rid, endpoint):
        """The simulator's Account of the subject at a bank endpoint (the
        first one there)."""
        for ev in self.control.lookup(resident_id=rid).endpoints:
            if ev.endpoint == endpoint and ev.kind == "bank":
                assert ev.accounts.found, (rid, endpoint)
                return ev.accounts.accounts[0]
        raise AssertionError(f"{rid} has no account at {endpoint}")

    def deposit(self, endpoint, account_no, fen):
        a = self.apb.agencysim
        return self.control._deposit(a.DepositRequest(
            endpoint=endpoint, account_no=account_no, amount_fen=fen),
            timeout=10)

    def set_available(self, rid, endpoint, fen):
        """Debit (or credit) the subject's account at endpoint until its
        available balance is exactly fen; returns the Account."""
        acct = self.account(rid, endpoint)
        delta = fen - acct.available_fen
        if delta != 0:
            acct = self.deposit(endpoint, acct.account_no, delta).account
        assert acct.available_fen == fen, acct
        return acct

    # -- the broker

    def query(self, subject, case, categories=(), claim=0, broker=None):
        req = self.pb.broker.QueryRequest(
            case=case_ref(self.pb, case, claim),
            debtor=debtor(self.pb, subject.rid, subject.name),
            categories=list(categories))
        return (broker or self.broker).Query(req, timeout=15)

    def assets(self, subject, case, source, broker=None):
        """The broker's Assets of the subject at source ("bank:icbc",
        "realestate", "vehicle"), from a live Query."""
        cat = sim.CATEGORY_OF[source]
        rep = self.query(subject, case, categories=[cat], broker=broker)
        for s in rep.sources:
            if s.source == source:
                assert s.status == 1, f"{source}: {s.status} {s.message}"
                return list(s.assets)
        raise AssertionError(f"no {source} in the reply: {rep}")

    def ref(self, subject, case, source, broker=None):
        a = self.assets(subject, case, source, broker=broker)
        assert a and a[0].asset_ref, (source, a)
        return a[0].asset_ref

    def encumbrances(self, subject, case, source, broker=None):
        """The encumbrances on the subject's first asset at source, as the
        broker reports them in a live Query."""
        return list(self.assets(subject, case, source,
                                broker=broker)[0].encumbrances)

    # -- the simulator's counters

    def counters(self):
        """{(endpoint, method): (calls, effects, replays)} for every
        agency endpoint."""
        out = {}
        for ep in self.control.counters("*").endpoints:
            for m in ep.methods:
                out[(ep.endpoint, m.method)] = (m.calls, m.effects,
                                                m.replays)
        return out

    def state_changing(self):
        """The counters of the state-changing methods only (Query calls
        the tests make themselves are left out)."""
        return {k: v for k, v in self.counters().items()
                if not k[1].startswith(("Query", "Lookup"))}

    # -- clocks

    def broker_now(self):
        return self.testing.SetClock(self.pb.testing.SetClockRequest(),
                                     timeout=5).now_unix_s

    def today(self):
        """The broker's calendar date in UTC+8."""
        return datetime.datetime.fromtimestamp(self.broker_now(),
                                               CST).date()

    def jump(self, seconds):
        """Move both clocks (the broker's and the simulator's)."""
        r1 = self.testing.SetClock(self.pb.testing.SetClockRequest(
            jump_s=seconds), timeout=5)
        r2 = self._sim_clock(self.pb.testing.SetClockRequest(
            jump_s=seconds), timeout=5)
        return r1.now_unix_s, r2.now_unix_s

    def avoid_midnight(self, margin=90):
        """Sleep past midnight (UTC+8) when it is less than margin seconds
        away, so a test's dates do not change under it."""
        now = self.broker_now()
        to_midnight = 86400 - (now + 8 * 3600) % 86400
        if to_midnight < margin:
            time.sleep(to_midnight + 1)


def add_months(d, months):
    """d plus months, the day clamped to the month's last (the broker's
    ck_date_add_months)."""
    total = d.year * 12 + d.month - 1 + months
    y, m = divmod(total, 12)
    m += 1
    for day in (d.day, 30, 29, 28):
        try:
            return datetime.date(y, m, min(d.day, day))
        except ValueError:
            continue
    raise AssertionError("unreachable")


def max_days(today, category):
    """The longest duration_days the broker allows from today: the period
    (today counted as its first day) may not pass today + 1/2/3 years - 1
    day."""
    months = {DEPOSIT: 12, VEHICLE: 24, REAL_ESTATE: 36}[category]
    return (add_months(today, months) - today).days


def wait_outcome(fn, req, want_final=True, timeout=15.0, step=0.25):
    """Call fn(req) (the same request_id) until the outcome is no longer
    PENDING; returns the last reply."""
    deadline = time.monotonic() + timeout
    while True:
        rep = fn(req, timeout=10)
        if rep.outcome != PENDING or time.monotonic() >= deadline:
            return rep
        time.sleep(step)
