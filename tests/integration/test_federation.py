"""Federation (issue 6, part 5): two brokers, Guangzhou (gz) and Foshan
(fs), each with its own agency simulator, sharing one test CA. Guangzhou's
adapters/peer forwards deposit and real-estate queries to Foshan with its
own broker identity (urn:chakong:broker:gz) on the court's behalf;
Foshan's [peer.gz] says what it may forward. Checked here: the forwarded
sources equal Foshan's simulator field by field and say who answered;
withdrawing the right at Foshan (config + SIGHUP) turns them into DENIED
results while Guangzhou's own sources still answer; on-behalf fields from a
court, from a broker that is no peer, or outside the peer's rights are
refused; the via-list cuts loops and long chains, and a configured loop
(gz -> fs -> gz) is cut with a clear status instead of recursing.
Both cities' audit trails hold a forwarded call (origin "forwarded" at
Foshan)."""

import json
import os
import random
import shutil
import signal
import subprocess

import grpc
import pytest

import ck
import sim

FORWARDED = "deposit, real-estate"
CASE = sim.CASE                     # (2019)粤01执123号, a Guangzhou case


def peer_section(categories=FORWARDED):
    return f"[peer.gz]\ncourts = 440100\ncategories = {categories}\n"


class Fed:
    pass


@pytest.fixture(scope="module")
def apb():
    yield from sim.agency_messages()


@pytest.fixture(scope="module")
def fed(module_stack, pb, apb):
    pki = ck.mkdtemp("ck-fed-pki-")
    f = Fed()
    f.pki = pki
    # Foshan first: Guangzhou's config needs its address
    f.fs = module_stack(CK_BROKER_ID="fs", CK_PKI_DIR=pki, CK_SIM_SIZE=300,
                        CK_SIM_SEED=7, CK_EXTRA_CONF=peer_section())
    f.gz = module_stack(CK_BROKER_ID="gz", CK_PKI_DIR=pki, CK_SIM_SIZE=300,
                        CK_EXTRA_CONF=(
                            f"[endpoint.fs]\naddress = {f.fs.grpc}\n"
                            "identity = urn:chakong:broker:fs\n"
                            "[adapter.peer-fs]\nmodule = peer\n"
                            f"endpoint = fs\ncategories = {FORWARDED}\n"))
    f.fs_control = sim.Control(f.fs, apb)
    f.chans = []

    def stub(stack, cert=None, key=None):
        ch = stack.channel(cert=cert, key=key)
        f.chans.append(ch)
        return pb.broker_grpc.AssetBrokerStub(ch)

    f.stub = stub
    f.gz_court = stub(f.gz)
    f.fs_court = stub(f.fs)
    # Guangzhou's broker certificate, as Foshan sees it
    f.fs_as_gz = stub(f.fs, os.path.join(pki, "broker.crt"),
                      os.path.join(pki, "broker.key"))
    try:
        yield f
    finally:
        f.fs_control.close()
        for ch in f.chans:
            ch.close()
        shutil.rmtree(pki, ignore_errors=True)


def forwarded_req(pb, via=("gz",), court="440100", categories=(1,),
                  case=CASE, officer="GZ0001"):
    r = sim.query_req(pb, resident_id=sim.ZHANG_SAN, categories=categories,
                      case=case)
    r.on_behalf.court_id = court
    r.on_behalf.officer_id = officer
    r.on_behalf.case_number = case
    r.on_behalf.via.extend(via)
    return r


def refused(call, code):
    with pytest.raises(grpc.RpcError) as e:
        call()
    assert e.value.code().value[0] == code, \
        (e.value.code(), e.value.details())
    return e.value.details()


def reload_fs(f, text):
    before = f.fs.status_json()["reloads"]
    with open(f.fs.conf, "w") as fh:
        fh.write(text)
    ck.send_signal(f.fs, signal.SIGHUP)
    sim.wait_for(lambda: f.fs.status_json()["reloads"] == before + 1, 10,
                 what="Foshan's reload")


# --------------------------------------------------------------- forwarding

def test_query_returns_foshan_assets_through_the_peer(pb, fed):
    # a deposit at Foshan's ICBC only: the two cities' answers differ
    icbc = [e for e in fed.fs_control.lookup(resident_id=sim.ZHANG_SAN)
            .endpoints if e.endpoint == "icbc"][0]
    acct = icbc.accounts.accounts[0].account_no
    fed.fs_control._deposit(fed.fs_control.apb.agencysim.DepositRequest(
        endpoint="icbc", account_no=acct, amount_fen=777), timeout=10)

    reply = fed.gz_court.Query(sim.query_req(
        pb, resident_id=sim.ZHANG_SAN, categories=(1, 2, 3)), timeout=15)
    got = sim.by_source(reply)
    want = {k: v for k, v in sim.expected_sources(
        fed.fs_control.lookup(resident_id=sim.ZHANG_SAN)).items()
        if k.startswith("bank:") or k == "realestate"}
    fs_got = {k[3:]: v for k, v in got.items() if k.startswith("fs/")}
    assert sorted(fs_got) == sorted(want)
    for src, (status, assets) in want.items():
        r = fs_got[src]
        assert sim.status_name(r.status) == status, (src, r)
        assert r.answered_by == "fs", (src, r.answered_by)
        assert r.fetched_at > 0
        assert [sim.broker_asset(a) for a in r.assets] == assets, src
        for a in r.assets:
            assert a.asset_ref, f"{src}: no asset_ref for a Foshan asset"
    # the deposit shows at Foshan's ICBC, not at Guangzhou's
    fs_bal = fs_got["bank:icbc"].assets[0].deposit.balance.fen
    gz_bal = got["bank:icbc"].assets[0].deposit.balance.fen
    assert fs_bal == gz_bal + 777
    # Guangzhou's own sources answered here; vehicles are not forwarded
    for src in sim.BANK_SOURCES + ["realestate", "vehicle"]:
        assert got[src].answered_by == "", src
        assert got[src].status in (pb.broker.SOURCE_OK,
                                   pb.broker.SOURCE_NOT_FOUND), got[src]
    assert not any(k.startswith("fs/") and got[k].category == 3
                   for k in got)
    # Foshan ran it as the originating court, marked as forwarded
    log = open(fed.fs.log, encoding="utf-8").read()
    assert "court=440100" in log and "origin=forwarded by=broker:gz" in log


def audit_export(stack, case):
    r = subprocess.run(
        [os.path.join(stack.build, "broker", "chakongctl"), "audit",
         "export", "--config", stack.conf, "--case", case],
        capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


def test_both_audit_trails_hold_the_forwarded_call(pb, fed):
    case = f"(2025)粤01执{random.randint(100000, 999999)}号"
    reply = fed.gz_court.Query(sim.query_req(
        pb, resident_id=sim.ZHANG_SAN, categories=(1,), case=case),
        timeout=15)
    fs_sources = {s.source for s in reply.sources
                  if s.source.startswith("fs/")}
    assert fs_sources

    def requests(stack):
        return [r for r in audit_export(stack, case)
                if r["kind"] == "request"]
    sim.wait_for(lambda: requests(fed.gz) and requests(fed.fs), 10,
                 what="both cities' audit records")
    gz, fs = audit_export(fed.gz, case), audit_export(fed.fs, case)
    # Guangzhou: the court's request and one agency call per source,
    # the forwarded ones included
    [req] = [r for r in gz if r["kind"] == "request"]
    assert req["client"] == "court:440100" and req["status"] == "OK"
    assert req["origin"] == "interactive"
    assert req["call_id"] == reply.query_id
    assert fs_sources <= {r.get("source") for r in gz
                          if r["kind"] == "agency_call"}
    # Foshan: the peer's request on the court's behalf, marked forwarded,
    # and its own agency calls
    [freq] = [r for r in fs if r["kind"] == "request"]
    assert freq["client"] == "broker:gz" and freq["status"] == "OK"
    assert freq["origin"] == "forwarded"
    assert freq["officer_id"] == req["officer_id"]
    assert freq["debtor_hash"] and req["debtor_hash"]
    calls = [r for r in fs if r["kind"] == "agency_call"]
    assert {"fs/" + r["source"] for r in calls} == fs_sources
    assert all(r["origin"] == "forwarded" for r in calls)


def test_freeze_of_a_foshan_asset_is_refused(pb, fed):
    """Guangzhou's asset_ref for a Foshan asset opens (it seals Foshan's
    own ref), but actions are not forwarded: FAILED_PRECONDITION, and
    nothing reaches Foshan's bank."""
    reply = fed.gz_court.Query(sim.query_req(
        pb, resident_id=sim.ZHANG_SAN, categories=(1,)), timeout=15)
    ref = sim.by_source(reply)["fs/bank:icbc"].assets[0].asset_ref
    before = fed.fs_control.calls("icbc", "Freeze")
    q = sim.query_req(pb, resident_id=sim.ZHANG_SAN)
    req = pb.broker.FreezeRequest(
        request_id="fed-freeze-1", case=q.case, debtor=q.debtor,
        asset_ref=ref, document_number=CASE + "之一", duration_days=30,
        amount=pb.broker.Money(fen=100, currency="CNY"))
    msg = refused(lambda: fed.gz_court.Freeze(req, timeout=10),
                  ck.FAILED_PRECONDITION)
    assert msg.startswith("asset_ref:") and "partner" in msg, msg
    assert fed.fs_control.calls("icbc", "Freeze") == before


def test_identity_number_not_in_either_log(fed):
    for s in (fed.gz, fed.fs):
        assert sim.ZHANG_SAN not in open(s.log, encoding="utf-8").read()


# ------------------------------------------------------ who may send it

def test_court_filling_on_behalf_is_refused(pb, fed):
    for stub in (fed.fs_court, fed.gz_court):
        msg = refused(lambda: stub.Query(forwarded_req(pb), timeout=10),
                      ck.PERMISSION_DENIED)
        assert msg.startswith("on_behalf:"), msg


def test_broker_must_act_on_a_courts_behalf(pb, fed):
    r = sim.query_req(pb, resident_id=sim.ZHANG_SAN, categories=(1,))
    msg = refused(lambda: fed.fs_as_gz.Query(r, timeout=10),
                  ck.PERMISSION_DENIED)
    assert "on_behalf" in msg and "required" in msg, msg


def test_broker_not_listed_as_peer_is_refused(pb, fed):
    subprocess.run([os.path.join(ck.ROOT, "tests", "pki", "mkpki"), fed.pki,
                    "broker", "zs"], check=True, capture_output=True)
    zs = fed.stub(fed.fs, os.path.join(fed.pki, "broker-zs.crt"),
                  os.path.join(fed.pki, "broker-zs.key"))
    msg = refused(lambda: zs.Query(forwarded_req(pb, via=("zs",)),
                                   timeout=10), ck.PERMISSION_DENIED)
    # not a peer: no right of its own either (deny by default)
    assert "broker:zs" in msg and "policy" in msg, msg


def test_peer_rights_are_its_config(pb, fed):
    # vehicles were never granted to gz at Foshan
    msg = refused(lambda: fed.fs_as_gz.Query(
        forwarded_req(pb, categories=(1, 3)), timeout=10),
        ck.PERMISSION_DENIED)
    assert msg.startswith("categories:") and "vehicle" in msg, msg
    # nor acting for Foshan's own court
    msg = refused(lambda: fed.fs_as_gz.Query(forwarded_req(
        pb, court="440600", case="(2019)粤06执5号"), timeout=10),
        ck.PERMISSION_DENIED)
    assert msg.startswith("on_behalf.court_id:"), msg
    # a Foshan case named on behalf of the Guangzhou court
    msg = refused(lambda: fed.fs_as_gz.Query(forwarded_req(
        pb, case="(2019)粤06执5号"), timeout=10), ck.PERMISSION_DENIED)
    assert "own cases" in msg, msg
    # within its rights it works
    reply = fed.fs_as_gz.Query(forwarded_req(pb), timeout=15)
    assert {s.source for s in reply.sources} == set(sim.BANK_SOURCES)


def test_on_behalf_must_agree_with_the_request(pb, fed):
    r = forwarded_req(pb)
    r.on_behalf.officer_id = "GZ0002"
    msg = refused(lambda: fed.fs_as_gz.Query(r, timeout=10),
                  ck.INVALID_ARGUMENT)
    assert msg.startswith("on_behalf.officer_id:"), msg
    msg = refused(lambda: fed.fs_as_gz.Query(
        forwarded_req(pb, via=("gz", "zs")), timeout=10),
        ck.INVALID_ARGUMENT)
    assert msg.startswith("on_behalf.via:") and "sending" in msg, msg
    msg = refused(lambda: fed.fs_as_gz.Query(
        forwarded_req(pb, via=()), timeout=10), ck.INVALID_ARGUMENT)
    assert msg.startswith("on_behalf.via:"), msg


# ------------------------------------------------------------------- loops

def test_loop_and_hop_limit_cut_at_the_partner(pb, fed):
    msg = refused(lambda: fed.fs_as_gz.Query(
        forwarded_req(pb, via=("fs", "gz")), timeout=10),
        ck.FAILED_PRECONDITION)
    assert "forwarding loop" in msg, msg
    msg = refused(lambda: fed.fs_as_gz.Query(
        forwarded_req(pb, via=("a", "b", "c", "gz")), timeout=10),
        ck.FAILED_PRECONDITION)
    assert "hop limit" in msg, msg


# ------------------------------------------------- withdrawing the right

def test_withdrawn_right_turns_sources_denied(pb, fed):
    with open(fed.fs.conf, encoding="utf-8") as fh:
        orig = fh.read()
    assert peer_section() in orig
    try:
        reload_fs(fed, orig.replace(peer_section(),
                                    peer_section("deposit")))
        reply = fed.gz_court.Query(sim.query_req(
            pb, resident_id=sim.ZHANG_SAN, categories=(1, 2)), timeout=15)
        got = sim.by_source(reply)
        denied = {k: v for k, v in got.items() if k.startswith("fs/")}
        assert sorted(denied) == ["fs/deposit", "fs/real-estate"], got.keys()
        for r in denied.values():
            assert r.status == pb.broker.SOURCE_DENIED, r
            assert "real-estate" in r.message and r.answered_by == "fs", r
        for src in sim.BANK_SOURCES + ["realestate"]:
            assert got[src].status in (pb.broker.SOURCE_OK,
                                       pb.broker.SOURCE_NOT_FOUND), got[src]
        # what is still granted still answers
        reply = fed.gz_court.Query(sim.query_req(
            pb, resident_id=sim.ZHANG_SAN, categories=(1,)), timeout=15)
        fs = [s for s in reply.sources if s.source.startswith("fs/")]
        assert {s.source for s in fs} == {"fs/" + b
                                          for b in sim.BANK_SOURCES}
        assert all(s.status != pb.broker.SOURCE_DENIED for s in fs)
        # no [peer.gz] at all: every forwarded source denied
        reload_fs(fed, orig.replace(peer_section(), ""))
        reply = fed.gz_court.Query(sim.query_req(
            pb, resident_id=sim.ZHANG_SAN, categories=(1,)), timeout=15)
        got = sim.by_source(reply)
        assert got["fs/deposit"].status == pb.broker.SOURCE_DENIED
        assert "no access policy for broker:gz" in \
            got["fs/deposit"].message
        assert got["bank:icbc"].status == pb.broker.SOURCE_OK
    finally:
        reload_fs(fed, orig)
    reply = fed.gz_court.Query(sim.query_req(
        pb, resident_id=sim.ZHANG_SAN, categories=(2,)), timeout=15)
    assert sim.by_source(reply)["fs/realestate"].status == \
        pb.broker.SOURCE_OK


def test_originating_courts_own_policy_applies_at_the_partner(pb, fed):
    """[peer.gz] grants deposits and real estate, but Foshan's own policy
    for court 440100 narrowed to deposits denies the rest: a forwarded
    call gets no more than the originating court has at the partner."""
    with open(fed.fs.conf, encoding="utf-8") as fh:
        orig = fh.read()
    grant = "[policy.court:440100]\ngrant = all\ncourts = *\n"
    assert grant in orig
    try:
        reload_fs(fed, orig.replace(grant, "[policy.court:440100]\n"
                                    "Query = deposit\ncourts = *\n"))
        reply = fed.gz_court.Query(sim.query_req(
            pb, resident_id=sim.ZHANG_SAN, categories=(1, 2)), timeout=15)
        got = sim.by_source(reply)
        fs = {k: v for k, v in got.items() if k.startswith("fs/")}
        assert fs and all(v.status == pb.broker.SOURCE_DENIED
                          for v in fs.values()), fs
        assert any("court:440100" in v.message for v in fs.values()), fs
        # deposits alone are within both grants
        reply = fed.gz_court.Query(sim.query_req(
            pb, resident_id=sim.ZHANG_SAN, categories=(1,)), timeout=15)
        fs = [x for x in reply.sources if x.source.startswith("fs/")]
        assert fs and all(x.status != pb.broker.SOURCE_DENIED for x in fs)
    finally:
        reload_fs(fed, orig)


def test_config_errors_name_file_and_line(fed, tmp_path):
    with open(fed.fs.conf, encoding="utf-8") as fh:
        text = fh.read()
    for old, bad, want in (
            ("courts = 440100", "courts = 999999", "[court.999999]"),
            ("courts = 440100", "categories = boats", "boats"),
            ("courts = 440100", "colour = red", "unknown key"),
            # an adapter instance narrowed to what its module cannot serve
            ("module = realestate\n",
             "module = realestate\ncategories = vehicle\n",
             "not a category this module serves")):
        assert old in text
        conf = tmp_path / "bad.conf"
        conf.write_text(text.replace(old, bad), encoding="utf-8")
        rc, out = ck.chakongd_check(fed.fs.build, str(conf))
        assert rc == 1 and "bad.conf:" in out and want in out, out


# ------------------------------------------------- a partner that hangs

def test_hung_partner_costs_only_its_budget(pb, fed):
    """Foshan's broker stopped (SIGSTOP): its sources time out by the
    caller's deadline, Guangzhou's own still answer."""
    os.kill(fed.fs.pid, signal.SIGSTOP)
    try:
        reply = fed.gz_court.Query(sim.query_req(
            pb, resident_id=sim.ZHANG_SAN, categories=(1,)), timeout=1.5)
    finally:
        os.kill(fed.fs.pid, signal.SIGCONT)
    got = sim.by_source(reply)
    late = [s for s in got.values() if s.source in ("fs/deposit", "peer-fs")]
    assert len(late) == 1, got.keys()
    assert late[0].status == pb.broker.SOURCE_TIMEOUT, late[0]
    assert late[0].answered_by == "", late[0]
    assert got["bank:icbc"].status == pb.broker.SOURCE_OK
    assert not any(k.startswith("fs/bank:") for k in got)


# -------------------------------------------- a configured loop (last)

def test_configured_loop_is_cut(pb, fed):
    """Foshan also forwards to Guangzhou: gz -> fs -> gz would recurse;
    Foshan's peer adapter sees gz on the via-list and does not send."""
    with open(fed.fs.conf, "a", encoding="utf-8") as fh:
        fh.write(f"\n[endpoint.gz]\naddress = {fed.gz.grpc}\n"
                 "identity = urn:chakong:broker:gz\n"
                 "[adapter.peer-gz]\nmodule = peer\nendpoint = gz\n"
                 "categories = deposit\n")
    r = subprocess.run([ck.STACK_SH, "restart", fed.fs.dir, "chakongd"],
                       capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, CK_BUILD=fed.fs.build))
    assert r.returncode == 0, r.stdout + r.stderr
    fed.fs.pid = int(ck.read_env(os.path.join(fed.fs.dir,
                                              "stack.env"))["CK_PID"])

    def asked():
        reply = fed.gz_court.Query(sim.query_req(
            pb, resident_id=sim.ZHANG_SAN, categories=(1,)), timeout=15)
        got = sim.by_source(reply)
        # the pooled connection to the restarted Foshan comes back
        return got if "fs/gz/deposit" in got else None

    got = sim.wait_for(asked, 15, step=0.2, what="Foshan reachable again")
    loop = got["fs/gz/deposit"]
    assert loop.status == pb.broker.SOURCE_UNAVAILABLE, loop
    assert "forwarding loop" in loop.message, loop
    assert loop.answered_by == "fs", loop
    assert got["fs/bank:icbc"].status == pb.broker.SOURCE_OK
    assert got["bank:icbc"].status == pb.broker.SOURCE_OK
    # a Foshan court's own query does go to Guangzhou, which refuses it:
    # Guangzhou lists no [peer.fs]
    reply = fed.fs_court.Query(sim.query_req(
        pb, resident_id=sim.ZHANG_SAN, categories=(1,),
        case="(2019)粤06执5号"), timeout=15)
    got = sim.by_source(reply)
    assert got["gz/deposit"].status == pb.broker.SOURCE_DENIED, got
    assert got["bank:icbc"].status == pb.broker.SOURCE_OK
