"""The audit trail (issue 6, part 4) end to end: after a mixed run
(queries, a freeze, an invalid request, a request refused for the
caller's role) `chakongctl audit verify` passes; one edited byte, one
deleted record or two swapped ones (done by tests/audittool on a copy of
state.mdb) each make it fail naming the record; export by case returns
exactly that case's records, by identity number exactly that debtor's;
the identity number appears nowhere in clear (state.mdb, the export, the
log); signed checkpoints reach the log too.

The stack checkpoints every 5 records so a short run has several.
"""

import json
import os
import shutil
import subprocess

import grpc
import pytest

import actions as A
import ck
import sim

ZHANG = sim.ZHANG_SAN
OTHER = "440604199212242345"      # 张然洋: a second debtor


@pytest.fixture(scope="module")
def st(module_stack):
    return module_stack(CK_EXTRA_CONF="[audit]\ncheckpoint_records = 5\n")


@pytest.fixture(scope="module")
def apb():
    yield from sim.agency_messages()


@pytest.fixture(scope="module")
def w(st, pb, apb):
    ch = st.channel()
    control = sim.Control(st, apb)
    world = A.World(st, pb, apb, pb.broker_grpc.AssetBrokerStub(ch),
                    control, pb.testing_grpc.TestingStub(ch))
    world.avoid_midnight()
    yield world
    control.close()
    ch.close()


def ctl(st, *args):
    return subprocess.run(
        [os.path.join(st.build, "broker", "chakongctl"), "audit", *args],
        capture_output=True, text=True, timeout=60)


def tamper(st, *args):
    r = subprocess.run(
        [os.path.join(st.build, "tests", "audittool", "ck_audit_tamper"),
         *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def export(st, *args, state=None):
    extra = ["--state-dir", state] if state else []
    r = ctl(st, "export", "--config", st.conf, *extra, *args)
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()], r.stdout


def verify(st, state=None, log=False):
    extra = ["--state-dir", state] if state else []
    if log:
        extra += ["--log", st.log]
    return ctl(st, "verify", "--config", st.conf, *extra)


@pytest.fixture(scope="module")
def run(st, w, pb):
    """The mixed run; returns the cases and the ids of its calls."""
    zhang, other = w.subject(ZHANG), w.subject(OTHER)
    case1, case2 = A.new_case(), A.new_case()
    q1 = w.query(zhang, case1)
    q2 = w.query(other, case2, categories=[pb.broker.CATEGORY_DEPOSIT])
    ref = w.ref(zhang, case1, "bank:icbc")
    rep = w.broker.Freeze(A.freeze_req(pb, zhang, ref, case1,
                                       claim=10_000_000, fen=10_000),
                          timeout=15)
    assert rep.outcome in (A.DONE, A.PARTIAL), rep
    # invalid: the check character of the identity number is wrong
    bad = pb.broker.QueryRequest(
        case=A.case_ref(pb, case1), debtor=A.debtor(pb, ZHANG[:-1] + "5",
                                                    zhang.name))
    err = A.rpc_error(w.broker.Query, bad)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    # denied: an agency's certificate may not call the broker's API
    ch = st.channel(cert=st.pki_file("agency-icbc.crt"),
                    key=st.pki_file("agency-icbc.key"))
    err = A.rpc_error(pb.broker_grpc.AssetBrokerStub(ch).Query,
                      pb.broker.QueryRequest(case=A.case_ref(pb, case2)))
    ch.close()
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    # denied by the access policy: Foshan may not Query vehicles
    ch = st.channel(cert=st.partner_cert, key=st.partner_key)
    err = A.rpc_error(pb.broker_grpc.AssetBrokerStub(ch).Query,
                      pb.broker.QueryRequest(
                          case=A.case_ref(pb, case2),
                          categories=[pb.broker.CATEGORY_VEHICLE]))
    ch.close()
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "court:440600" in err.details()
    # the last records of read-only calls ride in the next group commit
    want = {q1.query_id, q2.query_id}
    sim.wait_for(lambda: want <= {r.get("call_id") for r in
                                  export(st)[0]}, 10, what="records")
    return {"case1": case1, "case2": case2, "q1": q1.query_id,
            "q2": q2.query_id, "zhang": zhang}


def test_verify_after_mixed_run(st, run):
    r = verify(st)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "intact" in r.stdout and "signed checkpoint" in r.stdout, r.stdout
    assert "NOT checked" not in r.stdout
    recs, _ = export(st)
    kinds = {(x["kind"], x.get("method", ""), x.get("status", ""))
             for x in recs}
    q = "/chakong.v1.AssetBroker/Query"
    f = "/chakong.v1.AssetBroker/Freeze"
    assert ("request", q, "OK") in kinds
    assert ("request", q, "INVALID_ARGUMENT") in kinds
    assert ("request", q, "PERMISSION_DENIED") in kinds
    assert ("request", f, "OK") in kinds
    assert ("agency_call", f, "") in kinds
    denied = [x for x in recs if x.get("status") == "PERMISSION_DENIED"]
    assert denied[0]["client"] == "agency:icbc"
    # one agency record per source asked by the first query
    q1 = [x for x in recs if x.get("call_id") == run["q1"]]
    assert sum(x["kind"] == "request" for x in q1) == 1
    assert sum(x["kind"] == "agency_call" for x in q1) >= 5
    assert all(x["origin"] == "interactive" for x in q1)
    # sequence numbers from 1 without gaps
    assert [x["seq"] for x in recs] == list(range(1, len(recs) + 1))
    au = st.status_json()["actions"]["audit"]
    assert au["ok"] is True and au["failed"] == 0, au
    assert au["written"] > 0 and au["checkpoints"] >= 1, au


def test_export_by_case(st, run):
    recs, _ = export(st)
    for case in (run["case1"], run["case2"]):
        mine, _ = export(st, "--case", case)
        assert mine, case
        assert mine == [x for x in recs if x.get("case_number") == case]
    # full-width brackets name the same case
    fw = run["case1"].replace("(", "（").replace(")", "）")
    assert export(st, "--case", fw)[0] == export(st, "--case",
                                                 run["case1"])[0]
    c1, _ = export(st, "--case", run["case1"])
    methods = {x["method"] for x in c1}
    assert methods == {"/chakong.v1.AssetBroker/Query",
                       "/chakong.v1.AssetBroker/Freeze"}
    assert run["q2"] not in {x["call_id"] for x in c1}


def test_export_by_id_and_time(st, run):
    recs, _ = export(st)
    mine, text = export(st, "--id", ZHANG)
    assert mine
    hashes = {x["debtor_hash"] for x in mine}
    assert len(hashes) == 1
    assert mine == [x for x in recs if x.get("debtor_hash") in hashes]
    assert ZHANG not in text
    assert run["q2"] not in {x["call_id"] for x in mine}
    other, _ = export(st, "--id", OTHER)
    assert {x["call_id"] for x in other} >= {run["q2"]}
    assert not ({x["debtor_hash"] for x in other} & hashes)
    assert export(st, "--since", "4102444800")[0] == []      # 2100
    t = recs[0]["time"]
    assert export(st, "--until", str(t - 1))[0] == []
    assert len(export(st, "--since", str(t))[0]) == len(recs)


def test_no_identity_number_in_clear(st, run):
    with open(os.path.join(st.dir, "state", "data.mdb"), "rb") as f:
        data = f.read()
    for rid in (ZHANG, OTHER):
        assert rid.encode() not in data
    _, text = export(st)
    log = st.log_text()
    for rid in (ZHANG, OTHER):
        assert rid not in text
        assert rid not in log


def test_checkpoints_in_the_log(st, run):
    recs, _ = export(st)
    ckpts = {x["seq"]: x for x in recs if x["kind"] == "checkpoint"}
    assert len(ckpts) >= 2
    logged = {}
    for line in st.log_text().splitlines():
        if "audit checkpoint seq=" in line:
            f = dict(p.split("=", 1) for p in line.split() if "=" in p)
            logged[int(f["seq"])] = f
    assert logged, "no checkpoint in the log"
    for seq, f in logged.items():
        assert ckpts[seq]["signature"] == f["sig"]
        assert ckpts[seq]["head"] == f["head"]


def test_cancelled_query_is_audited(st, w, pb, run):
    """A caller that goes away mid-query: its call and every agency call
    already made are on the trail (the unanswered ones as cancelled)."""
    zhang = run["zhang"]
    case = A.new_case()
    w.control.fault("icbc", hang_permille=1000)
    try:
        fut = w.broker.Query.future(pb.broker.QueryRequest(
            case=A.case_ref(pb, case),
            debtor=A.debtor(pb, zhang.rid, zhang.name),
            categories=[pb.broker.CATEGORY_DEPOSIT]), timeout=30)
        sim.wait_for(lambda: w.control.calls("icbc", "QueryAccounts") > 0,
                     10, what="the call to reach icbc")
        fut.cancel()
        want = {"request", "agency_call"}
        sim.wait_for(lambda: want <= {x["kind"] for x in
                                      export(st, "--case", case)[0]},
                     10, what="the cancelled query's records")
    finally:
        w.control.clear("icbc")
    mine, _ = export(st, "--case", case)
    req = [x for x in mine if x["kind"] == "request"]
    assert len(req) == 1 and req[0]["status"] == "CANCELLED", req
    icbc = [x for x in mine if x.get("source") == "bank:icbc"]
    assert len(icbc) == 1 and "cancelled" in icbc[0].get("note", ""), icbc
    banks = {x["source"] for x in mine if x["kind"] == "agency_call"}
    assert len(banks) == 8, banks     # every bank endpoint was asked


@pytest.fixture
def copy(st, run, tmp_path):
    """A consistent copy of the live state.mdb to damage."""
    d = str(tmp_path / "state")
    tamper(st, "copy", os.path.join(st.dir, "state"), d)
    r = verify(st, state=d)
    assert r.returncode == 0, r.stdout + r.stderr
    n = int(tamper(st, "count", d))
    assert n >= 10
    yield d, n
    shutil.rmtree(d, ignore_errors=True)


def broken_at(st, d, seq):
    r = verify(st, state=d)
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"BROKEN at record {seq}:" in r.stdout, r.stdout
    return r.stdout


@pytest.mark.parametrize("offset", [3, 30])
def test_edited_byte_is_named(st, copy, offset):
    d, n = copy
    seq = n // 2
    tamper(st, "edit", d, str(seq), str(offset))
    broken_at(st, d, seq)


def test_deleted_record_is_named(st, copy):
    d, n = copy
    seq = n // 2
    tamper(st, "delete", d, str(seq))
    assert "missing" in broken_at(st, d, seq)


def test_swapped_records_are_named(st, copy):
    d, n = copy
    tamper(st, "swap", d, "2", str(n - 1))
    assert "swapped" in broken_at(st, d, 2)


def test_cut_off_tail_is_caught_by_the_log(st, copy):
    """Records removed from the end, the last checkpoint with them: the
    chain alone still verifies, the checkpoints in the log do not."""
    d, n = copy
    r = verify(st, state=d, log=True)
    assert r.returncode == 0 and "match" in r.stdout, r.stdout + r.stderr
    recs, _ = export(st, state=d)
    last = max(x["seq"] for x in recs if x["kind"] == "checkpoint")
    for seq in range(n, last - 1, -1):
        tamper(st, "delete", d, str(seq))
    r = verify(st, state=d)
    assert r.returncode == 0, r.stdout        # the limit of the chain alone
    r = verify(st, state=d, log=True)
    assert r.returncode == 1, r.stdout
    assert f"BROKEN at record {last}:" in r.stdout, r.stdout
    assert "lacks" in r.stdout


def test_verify_needs_the_broker_certificate(st, copy):
    d, _ = copy
    r = ctl(st, "verify", "--state-dir", d, "--cert",
            st.pki_file("court-440100.crt"))
    assert r.returncode == 1, r.stdout
    assert "signature" in r.stdout
    r = ctl(st, "verify", "--state-dir", d)
    assert r.returncode == 0 and "NOT checked" in r.stdout, r.stdout
    # across a key change: any of the certificates given
    r = ctl(st, "verify", "--state-dir", d,
            "--cert", st.pki_file("court-440100.crt"),
            "--cert", st.pki_file("broker.crt"))
    assert r.returncode == 0 and "NOT checked" not in r.stdout, r.stdout


def test_full_store_refuses_calls(fresh_stack, pb, apb):
    """A state.mdb too small for more records: once an audit write fails,
    every new call is refused UNAVAILABLE (a freeze included: nothing
    reaches the agency), /readyz says why, and what was written still
    verifies."""
    s = fresh_stack(CK_ACTIONS_CONF="state_map_mb = 1\n")
    ch = s.channel()
    control = sim.Control(s, apb)
    w = A.World(s, pb, apb, pb.broker_grpc.AssetBrokerStub(ch), control,
                pb.testing_grpc.TestingStub(ch))
    try:
        zhang = w.subject(ZHANG)
        case = A.new_case()
        ref = w.ref(zhang, case, "bank:icbc")
        refused = None
        for _ in range(2000):
            try:
                w.query(zhang, case)
            except grpc.RpcError as e:
                refused = e
                break
        assert refused is not None, "the store never filled"
        assert refused.code() == grpc.StatusCode.UNAVAILABLE
        assert "audit trail cannot be written" in refused.details()
        before = w.counters()
        err = A.rpc_error(w.broker.Freeze, A.freeze_req(
            pb, zhang, ref, case, claim=10_000_000, fen=100))
        assert err.code() == grpc.StatusCode.UNAVAILABLE, err
        assert w.counters() == before, "a refused freeze reached the bank"
        code, _, body = s.http_get("/readyz")
        assert code == 503 and "audit" in body, (code, body)
        r = verify(s)
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        control.close()
        ch.close()
