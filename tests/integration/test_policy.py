"""Issue 6, parts 1-2: the access policy and the officers' roster.

One stack with the README's example policy (tests/stack.sh's default) (Guangzhou 440100: every right
on every court's cases; Foshan 440600: Query deposits and real estate,
Freeze, Extend and Release deposits, its own cases only), plus a roster for
Foshan, a rate-limited identity (court 440300) and one with no policy at
all (court 440500). Each right is shown given and withheld; a withheld
right is PERMISSION_DENIED naming it, before the request is validated, and
no agency hears of the call. Then SIGHUP: a narrower policy takes a right
away (on an established connection too), an invalid one is refused with
file:line and the old policy stays.
"""

import os
import re
import shutil
import signal
import subprocess
import time

import grpc
import pytest

import actions as A
import ck
import sim

ZHANG = sim.ZHANG_SAN
DENIED = grpc.StatusCode.PERMISSION_DENIED
SOURCE_DENIED = 6
DEPOSIT, REAL_ESTATE, VEHICLE = 1, 2, 3
FS_OFFICER = "FS0001"

# Added to the stack's example policy (sections of one identity merge).
POLICY_EXTRA = """[policy.court:440600]
roster = {roster}

[policy.court:440300]
ListFindings = *
rate = 1
burst = 2
"""


def mkpki(*args):
    r = subprocess.run([os.path.join(ck.ROOT, "tests", "pki", "mkpki")] +
                       list(args), capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr


@pytest.fixture(scope="module")
def apb():
    yield from sim.agency_messages()


@pytest.fixture(scope="module")
def pstack():
    d = ck.mkdtemp("ck-it-pol-")
    roster = os.path.join(d, "officers-440600.txt")
    with open(roster, "w") as f:
        f.write("# 佛山市中级人民法院 报备\nFS0001\nFS0002\n")
    pki = os.path.join(d, "pki")
    for args in ([pki], [pki, "court", "440300"], [pki, "court", "440500"]):
        mkpki(*args)
    s = None
    try:
        try:
            s = ck.Stack.up(d, env={
                "CK_EXTRA_CONF": POLICY_EXTRA.format(roster=roster)})
        except Exception as e:
            pytest.fail(str(e), pytrace=False)
        yield s
    finally:
        if s is not None:
            s.down()
        if os.environ.get("CK_KEEP") != "1":
            shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def channels(pstack):
    made = {}

    def get(who):
        if who not in made:
            if who == "440100":
                made[who] = pstack.channel()
            else:
                made[who] = pstack.channel(
                    cert=pstack.pki_file(f"court-{who}.crt"),
                    key=pstack.pki_file(f"court-{who}.key"))
        return made[who]
    yield get
    for ch in made.values():
        ch.close()


@pytest.fixture(scope="module")
def gz(pb, channels):
    return pb.broker_grpc.AssetBrokerStub(channels("440100"))


@pytest.fixture(scope="module")
def fs(pb, channels):
    return pb.broker_grpc.AssetBrokerStub(channels("440600"))


@pytest.fixture(scope="module")
def control(pstack, apb):
    c = sim.Control(pstack, apb)
    yield c
    c.close()


@pytest.fixture(scope="module")
def w(pstack, pb, apb, gz, control, channels):
    testing = pb.testing_grpc.TestingStub(channels("440100"))
    world = A.World(pstack, pb, apb, gz, control, testing)
    world.avoid_midnight()
    return world


@pytest.fixture(scope="module")
def zhang(w):
    return w.subject(ZHANG)


def fs_case():
    return A.new_case(court="粤06")


def as_officer(req, officer=FS_OFFICER):
    req.case.officer_id = officer
    return req


def fs_query(pb, case, categories=()):
    return as_officer(sim.query_req(pb, resident_id=ZHANG, case=case,
                                    categories=categories))


def agency_calls(control):
    """Calls that reached each agency endpoint (every method)."""
    out = {}
    for ep in control.counters("*").endpoints:
        out[ep.endpoint] = sum(m.calls for m in ep.methods)
    return out


def fs_deposit_freeze(pb, fs, zhang):
    """A Foshan freeze of Zhang San's ICBC deposit, within its rights."""
    case = fs_case()
    rep = fs.Query(fs_query(pb, case, [DEPOSIT]), timeout=15)
    ref = [a.asset_ref for s in rep.sources if s.source == "bank:icbc"
           for a in s.assets][0]
    fz = fs.Freeze(as_officer(A.freeze_req(pb, zhang, ref, case, 1_000_000,
                                           fen=1_000)), timeout=15)
    assert A.outcome_name(fz.outcome) in ("DONE", "PARTIAL"), fz
    return case, fz.freeze_ref


# ------------------------------------------------------ within its rights

def test_foshan_queries_deposits_and_real_estate(pb, fs, control):
    before = agency_calls(control)
    rep = fs.Query(fs_query(pb, fs_case(), [DEPOSIT, REAL_ESTATE]),
                   timeout=15)
    got = {s.source: s.status for s in rep.sources}
    assert set(got) == set(sim.BANK_SOURCES) | {"realestate"}, got
    assert SOURCE_DENIED not in got.values(), got
    assert got["bank:icbc"] == 1 and got["realestate"] == 1, got
    after = agency_calls(control)
    for ep in ("icbc", "realestate"):
        assert after[ep] > before.get(ep, 0), ep
    for ep in ("vehicle", "household", "enterprise"):
        assert after.get(ep, 0) == before.get(ep, 0), ep


def test_foshan_implicit_categories_are_denied_per_source(pb, fs, control):
    """An empty category list asks for all: the categories Foshan may not
    see answer SOURCE_DENIED, one per source, and those agencies are not
    asked at all."""
    before = agency_calls(control)
    rep = fs.Query(fs_query(pb, fs_case()), timeout=15)
    got = {s.source: (s.status, s.message) for s in rep.sources}
    for src in ("vehicle", "household", "enterprise"):
        assert got[src][0] == SOURCE_DENIED, got
        assert "no right" in got[src][1]
    for src in sim.BANK_SOURCES + ["realestate"]:
        assert got[src][0] != SOURCE_DENIED, got
    after = agency_calls(control)
    for ep in ("vehicle", "household", "enterprise"):
        assert after.get(ep, 0) == before.get(ep, 0), ep
    assert after["realestate"] > before.get("realestate", 0)


def test_foshan_freezes_extends_and_releases_its_deposits(w, pb, fs, zhang):
    case, fref = fs_deposit_freeze(pb, fs, zhang)
    ex = fs.Extend(as_officer(A.extend_req(pb, zhang, fref, case, days=30)),
                   timeout=15)
    assert A.outcome_name(ex.outcome) == "DONE", ex
    rl = fs.Release(as_officer(A.release_req(pb, zhang, fref, case)),
                    timeout=15)
    assert A.outcome_name(rl.outcome) == "DONE", rl


def test_guangzhou_has_every_right(w, pb, gz, zhang):
    # every category, no source denied, on a Foshan case number too
    for case in (A.new_case(), fs_case()):
        rep = w.query(zhang, case)
        assert rep.sources
        assert all(s.status != SOURCE_DENIED for s in rep.sources), rep
    case = A.new_case()
    ref = w.ref(zhang, case, "bank:icbc")
    fz = gz.Freeze(A.freeze_req(pb, zhang, ref, case, 1_000_000, fen=500),
                   timeout=15)
    dd = gz.Deduct(A.deduct_req(pb, zhang, fz.freeze_ref, case, 100),
                   timeout=15)
    assert A.outcome_name(dd.outcome) == "DONE", dd
    # a vehicle seal: a category Foshan may not touch
    vref = w.ref(zhang, case, "vehicle")
    vz = gz.Freeze(A.freeze_req(pb, zhang, vref, case, 1_000_000, fen=None),
                   timeout=15)
    assert A.outcome_name(vz.outcome) in ("DONE", "QUEUED"), vz


# ------------------------------------------------------- rights withheld

def test_foshan_vehicle_query_is_denied(pb, fs, control):
    before = agency_calls(control)
    err = A.rpc_error(fs.Query, fs_query(pb, fs_case(), [DEPOSIT, VEHICLE]))
    A.assert_status(err, DENIED, "right Query of vehicle", "court:440600")
    assert agency_calls(control) == before


def test_foshan_deduct_is_denied(w, pb, fs, zhang, control):
    case, fref = fs_deposit_freeze(pb, fs, zhang)
    before = agency_calls(control)
    err = A.rpc_error(fs.Deduct, as_officer(
        A.deduct_req(pb, zhang, fref, case, 100)))
    A.assert_status(err, DENIED, "right Deduct", "court:440600")
    assert agency_calls(control) == before


def test_rights_come_before_validation(pb, fs):
    """An empty or malformed request of a method Foshan may not call is
    refused for the right, not for its fields."""
    for fn, req in ((fs.Deduct, pb.broker.DeductRequest()),
                    (fs.UpdateClaim, pb.broker.UpdateClaimRequest(
                        request_id="bad id with spaces")),
                    (fs.Enroll, pb.broker.EnrollRequest())):
        err = A.rpc_error(fn, req)
        A.assert_status(err, DENIED, "not granted to court:440600")
    # a method it may call, with bad fields: validation speaks
    err = A.rpc_error(fs.Query, pb.broker.QueryRequest())
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()


def test_foshan_undecodable_body_is_denied_first(channels):
    ch = channels("440600")
    call = ch.unary_unary("/chakong.v1.AssetBroker/Deduct",
                          request_serializer=lambda b: b,
                          response_deserializer=lambda b: b)
    with pytest.raises(grpc.RpcError) as ei:
        call(b"\xff\xff\xff not protobuf", timeout=10)
    assert ei.value.code() == DENIED, ei.value.details()
    assert "right Deduct" in ei.value.details()


def test_foshan_action_on_a_guangzhou_case_is_denied(w, pb, fs, zhang,
                                                     control):
    before = agency_calls(control)
    gz_case = A.new_case()
    err = A.rpc_error(fs.Query, fs_query(pb, gz_case, [DEPOSIT]))
    A.assert_status(err, DENIED, "cases of court 440100", "court:440600")
    # a Freeze naming a Guangzhou case, with Foshan's own reference
    case, _ = fs_deposit_freeze(pb, fs, zhang)
    rep = fs.Query(fs_query(pb, case, [DEPOSIT]), timeout=15)
    ref = [a.asset_ref for s in rep.sources if s.source == "bank:icbc"
           for a in s.assets][0]
    before = agency_calls(control)
    err = A.rpc_error(fs.Freeze, as_officer(
        A.freeze_req(pb, zhang, ref, gz_case, 1_000_000, fen=100)))
    A.assert_status(err, DENIED, "cases of court 440100")
    assert agency_calls(control) == before


def test_foshan_real_estate_seal_is_denied(pb, fs, zhang, control):
    case = fs_case()
    rep = fs.Query(fs_query(pb, case, [REAL_ESTATE]), timeout=15)
    ref = [a.asset_ref for s in rep.sources if s.source == "realestate"
           for a in s.assets][0]
    before = agency_calls(control)
    err = A.rpc_error(fs.Freeze, as_officer(
        A.freeze_req(pb, zhang, ref, case, 1_000_000, fen=None)))
    A.assert_status(err, DENIED, "right Freeze of real-estate")
    assert agency_calls(control) == before


def test_identity_without_policy_is_denied(pb, channels):
    stub = pb.broker_grpc.AssetBrokerStub(channels("440500"))
    err = A.rpc_error(stub.Query, sim.query_req(pb, resident_id=ZHANG))
    A.assert_status(err, DENIED, "no access policy for court:440500")
    # Health needs no right
    r = pb.health_grpc.HealthStub(channels("440500")).Check(
        pb.health.HealthCheckRequest(), timeout=10)
    assert r.status == pb.health.HealthCheckResponse.SERVING


# -------------------------------------------------------------- officers

def test_unregistered_officer_is_refused(pb, fs, control):
    case = fs_case()
    before = agency_calls(control)
    err = A.rpc_error(fs.Query, as_officer(fs_query(pb, case, [DEPOSIT]),
                                           "FS0999"))
    msg = A.assert_status(err, DENIED, "case.officer_id", "roster")
    assert "FS0999" not in msg
    assert agency_calls(control) == before
    # the registered one passes
    rep = fs.Query(fs_query(pb, case, [DEPOSIT]), timeout=15)
    assert rep.sources


# ------------------------------------------------------------ rate limit

def test_rate_limit_exhausts_and_recovers(pb, channels, w):
    stub = pb.broker_grpc.AssetBrokerStub(channels("440300"))
    req = pb.broker.ListFindingsRequest()
    codes = []
    t0 = time.monotonic()
    for _ in range(8):
        try:
            stub.ListFindings(req, timeout=10)
            codes.append(grpc.StatusCode.OK)
        except grpc.RpcError as e:
            codes.append(e.code())
            if e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                assert "rate limit of court:440300" in e.details()
    elapsed = time.monotonic() - t0
    admitted = [c for c in codes if c != grpc.StatusCode.RESOURCE_EXHAUSTED]
    # the admitted ones are answered (an empty list of findings)
    assert set(admitted) <= {grpc.StatusCode.OK}, codes
    assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes, codes
    # burst 2, 1 token a second
    assert 2 <= len(admitted) <= 2 + int(elapsed) + 1, (codes, elapsed)
    # the broker clock moves on: the bucket refills without a sleep
    w.jump(5)
    assert not stub.ListFindings(req, timeout=10).findings
    # other identities were never limited meanwhile
    assert w.broker.Query(sim.query_req(pb, resident_id=ZHANG,
                                        categories=[DEPOSIT]), timeout=15)


# ---------------------------------------------------------------- reload

def reload_count(stack):
    return stack.status_json()["reloads"]


def log_since(stack, pos):
    with open(stack.log, "rb") as f:
        f.seek(pos)
        return f.read().decode("utf-8", "replace")


def sighup(stack, want_reloads=None, want_log=None, pos=0):
    ck.send_signal(stack, signal.SIGHUP)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if want_reloads is not None and reload_count(stack) >= want_reloads:
            return
        if want_log is not None and re.search(want_log,
                                              log_since(stack, pos)):
            return
        time.sleep(0.05)
    raise AssertionError(f"no reload seen:\n{log_since(stack, pos)}")


def test_sighup_narrower_policy_withdraws_a_right(pstack, pb, fs, zhang, w):
    with open(pstack.conf) as f:
        orig = f.read()
    case, fref = fs_deposit_freeze(pb, fs, zhang)
    narrower = orig.replace("Extend = deposit\n", "")
    assert narrower != orig
    n = reload_count(pstack)
    try:
        with open(pstack.conf, "w") as f:
            f.write(narrower)
        sighup(pstack, want_reloads=n + 1)
        # the same connection as before: the right is gone for new calls
        err = A.rpc_error(fs.Extend, as_officer(
            A.extend_req(pb, zhang, fref, case, days=30)))
        A.assert_status(err, DENIED, "right Extend", "court:440600")
        # what it still has still works
        rep = fs.Query(fs_query(pb, case, [DEPOSIT]), timeout=15)
        assert rep.sources
    finally:
        with open(pstack.conf, "w") as f:
            f.write(orig)
        sighup(pstack, want_reloads=n + 2)
    ex = fs.Extend(as_officer(A.extend_req(pb, zhang, fref, case, days=30)),
                   timeout=15)
    assert A.outcome_name(ex.outcome) == "DONE", ex


def test_sighup_invalid_policy_keeps_the_old_one(pstack, pb, fs):
    with open(pstack.conf) as f:
        orig = f.read()
    lines = orig.splitlines(True)
    at = next(i for i, l in enumerate(lines)
              if l.startswith("Freeze = deposit"))
    # a broader but invalid policy: must not take effect in part
    bad = lines[:at] + ["Deduct = deposit\n", "Freeze = cash\n"] + \
        lines[at + 1:]
    n = reload_count(pstack)
    pos = os.path.getsize(pstack.log)
    try:
        with open(pstack.conf, "w") as f:
            f.write("".join(bad))
        sighup(pstack, want_log=r"reload failed", pos=pos)
        log = log_since(pstack, pos)
        assert re.search(rf"chakongd\.conf:{at + 2}: Freeze: unknown "
                         r"category", log), log
        assert reload_count(pstack) == n
        err = A.rpc_error(fs.Deduct, pb.broker.DeductRequest())
        A.assert_status(err, DENIED, "right Deduct")
        rep = fs.Query(fs_query(pb, fs_case(), [DEPOSIT]), timeout=15)
        assert rep.sources
    finally:
        with open(pstack.conf, "w") as f:
            f.write(orig)
    # a roster that cannot be read: refused the same way
    roster = re.search(r"^roster = (.*)$", orig, re.M).group(1)
    os.rename(roster, roster + ".away")
    pos = os.path.getsize(pstack.log)
    try:
        sighup(pstack, want_log=r"reload failed", pos=pos)
        log = log_since(pstack, pos)
        assert "roster" in log and "chakongd.conf:" in log, log
        assert reload_count(pstack) == n
        rep = fs.Query(fs_query(pb, fs_case(), [DEPOSIT]), timeout=15)
        assert rep.sources
    finally:
        os.rename(roster + ".away", roster)


def test_sighup_gives_a_right_and_takes_it_back(pstack, pb, fs, control):
    """A right given by SIGHUP works on the next call; restored, it is
    refused again."""
    with open(pstack.conf) as f:
        orig = f.read()
    wider = orig.replace("Query = deposit, real-estate\n",
                         "Query = deposit, real-estate, vehicle\n")
    assert wider != orig
    n = reload_count(pstack)
    req = fs_query(pb, fs_case(), [VEHICLE])
    A.assert_status(A.rpc_error(fs.Query, req), DENIED, "right Query of "
                    "vehicle")
    try:
        with open(pstack.conf, "w") as f:
            f.write(wider)
        sighup(pstack, want_reloads=n + 1)
        before = agency_calls(control)
        rep = fs.Query(req, timeout=15)
        assert [s.status for s in rep.sources
                if s.source == "vehicle"] == [1], rep
        assert agency_calls(control)["vehicle"] > before.get("vehicle", 0)
    finally:
        with open(pstack.conf, "w") as f:
            f.write(orig)
        sighup(pstack, want_reloads=n + 2)
    A.assert_status(A.rpc_error(fs.Query, req), DENIED, "right Query of "
                    "vehicle")


def test_agencies_limit_which_sources_are_asked(pstack, pb, fs, zhang,
                                                control):
    """`agencies` restricts the sources: the others answer SOURCE_DENIED
    and are not asked; an action at one of them is PERMISSION_DENIED."""
    with open(pstack.conf) as f:
        orig = f.read()
    case, _ = fs_deposit_freeze(pb, fs, zhang)
    rep = fs.Query(fs_query(pb, case, [DEPOSIT]), timeout=15)
    ref = [a.asset_ref for s in rep.sources if s.source == "bank:icbc"
           for a in s.assets][0]
    n = reload_count(pstack)

    def with_agencies(value):
        text = re.sub(r"^(roster = .*)$", rf"\1\nagencies = {value}", orig,
                      flags=re.M)
        assert text != orig
        with open(pstack.conf, "w") as f:
            f.write(text)
        sighup(pstack, want_reloads=reload_count(pstack) + 1)

    try:
        with_agencies("bank:*")
        before = agency_calls(control)
        rep = fs.Query(fs_query(pb, case, [DEPOSIT, REAL_ESTATE]),
                       timeout=15)
        got = {s.source: (s.status, s.message) for s in rep.sources}
        assert got["realestate"][0] == SOURCE_DENIED, got
        assert "reach this agency" in got["realestate"][1]
        assert got["bank:icbc"][0] == 1, got
        after = agency_calls(control)
        assert after.get("realestate", 0) == before.get("realestate", 0)
        assert after["icbc"] > before["icbc"]

        # some banks: the bank adapter asks only those
        with_agencies("bank:icbc, bank:boc")
        before = agency_calls(control)
        rep = fs.Query(fs_query(pb, case, [DEPOSIT]), timeout=15)
        got = {s.source: (s.status, s.message) for s in rep.sources}
        assert got["bank:icbc"][0] == 1 and got["bank:boc"][0] in (1, 7), \
            got
        after = agency_calls(control)
        for b in sim.BANKS:
            if b in ("icbc", "boc"):
                assert after[b] > before.get(b, 0), b
            else:
                assert got["bank:" + b][0] == SOURCE_DENIED, got
                assert "reach this agency" in got["bank:" + b][1]
                assert after.get(b, 0) == before.get(b, 0), b

        with_agencies("realestate")
        before = agency_calls(control)
        rep = fs.Query(fs_query(pb, case, [DEPOSIT, REAL_ESTATE]),
                       timeout=15)
        got = {s.source: s.status for s in rep.sources}
        assert all(got[b] == SOURCE_DENIED for b in sim.BANK_SOURCES), got
        assert got["realestate"] == 1, got
        err = A.rpc_error(fs.Freeze, as_officer(
            A.freeze_req(pb, zhang, ref, case, 1_000_000, fen=100)))
        A.assert_status(err, DENIED, "reach agency bank:icbc")
        after = agency_calls(control)
        assert all(after.get(b, 0) == before.get(b, 0) for b in sim.BANKS)
    finally:
        with open(pstack.conf, "w") as f:
            f.write(orig)
        sighup(pstack, want_reloads=n + 4)
