"""A bank played by a small Python grpcio server (pybank.py) instead of
agencysim: mutual TLS both ways, its canned accounts come back through the
broker field by field, with the request context and the deadline the
broker must pass on."""

import os
import shutil
import subprocess
import time

import grpc
import pytest

import ck
import pybank
import sim

CASE = sim.CASE


@pytest.fixture(scope="module")
def apb():
    yield from sim.agency_messages()


@pytest.fixture(scope="module")
def bank_stack(apb):
    """pybank on 127.0.0.1:<free port> with a certificate from the stack's
    CA (made before `up`: mkpki keeps an existing CA), then a stack with
    an [endpoint.pybank] and an [adapter.pybank] for it."""
    d = ck.mkdtemp("ck-it-pybank-")
    pki = os.path.join(d, "pki")
    mkpki = os.path.join(ck.ROOT, "tests", "pki", "mkpki")
    for args in ([pki], [pki, "agency", "pybank"]):
        r = subprocess.run([mkpki] + args, capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, r.stderr

    def rd(name):
        with open(os.path.join(pki, name), "rb") as f:
            return f.read()

    bank = pybank.PyBank(apb, rd("agency-pybank.key"),
                         rd("agency-pybank.crt"), rd("ca.crt"),
                         holder_id=sim.ZHANG_SAN).start()
    conf = (f"[endpoint.pybank]\naddress = {bank.address}\n"
            "identity = urn:chakong:agency:pybank\n\n"
            "[adapter.pybank]\nmodule = bank\nendpoints = pybank\n")
    s = None
    try:
        try:
            s = ck.Stack.up(d, env={"CK_EXTRA_CONF": conf})
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


def expected(apb, found, accounts=()):
    a = apb.agencysim
    view = a.EndpointView(endpoint="pybank", kind="bank",
                          accounts=apb.bank.QueryAccountsReply(
                              found=found, bank_code=pybank.BANK_CODE,
                              bank_name=pybank.BANK_NAME,
                              accounts=list(accounts)))
    return sim.expected_sources(a.LookupReply(found=True, endpoints=[view]))


def test_pybank_accounts_through_the_broker(pb, apb, bank_stack):
    s, bank, ch = bank_stack
    stub = pb.broker_grpc.AssetBrokerStub(ch)
    n0 = len(bank.requests)
    t0 = time.monotonic()
    req = sim.query_req(pb, resident_id=sim.ZHANG_SAN,
                        categories=[pb.broker.CATEGORY_DEPOSIT])
    reply = stub.Query(req, timeout=5)
    assert time.monotonic() - t0 < 5
    got = sim.by_source(reply)
    assert sorted(got) == sorted(sim.BANK_SOURCES + ["bank:pybank"])
    r = got["bank:pybank"]
    assert r.status == pb.broker.SOURCE_OK, r
    assert r.category == pb.broker.CATEGORY_DEPOSIT
    assert r.fetched_at > 0
    want = expected(apb, True, pybank.canned_accounts(apb.bank, apb.common))
    mine = [sim.broker_asset(a) for a in r.assets]
    assert mine == want["bank:pybank"][1]
    # spelled out, so the expectation itself cannot be wrong unnoticed
    d0, d1, d2 = (a.deposit for a in r.assets)
    assert d0.account_masked == "6259" + "*" * 11 + "2345"
    assert (d0.balance.fen, d0.available.fen, d0.frozen.fen) == \
        (987654321, 987604321, 50000)
    assert d0.bank_code == "999" and d0.bank_name == "派森测试银行"
    assert (d1.balance.fen, d1.balance.currency) == (1200, "HKD")
    assert d1.account_type == "time"
    assert d2.balance.currency == "CNY" and d2.account_masked == \
        "6259" + "*" * 9 + "0111"
    e = r.assets[0].encumbrances
    assert [(x.court_id, x.case_number, x.frozen_fen, x.queued_fen,
             x.queue_position, x.effective_date) for x in e] == [
        ("440300", "(2020)粤03执9号", 50000, 0, 0, "2024-01-02"),
        ("440100", "(2021)粤01执77号", 0, 30000, 1, "")]
    assert all(a.asset_ref for a in r.assets)
    assert len({a.asset_ref for a in r.assets}) == 3
    # the simulated banks answered beside it
    assert got["bank:icbc"].status == pb.broker.SOURCE_OK

    # what pybank received
    assert len(bank.requests) == n0 + 1
    req, uris, remaining = bank.requests[-1]
    assert "urn:chakong:broker:gz" in uris, uris
    assert req.ctx.broker_id == "gz"
    assert req.ctx.court_id == "440100"
    assert req.ctx.officer_id == "GZ0001"
    assert req.ctx.case_number == CASE
    assert req.subject.WhichOneof("id") == "resident_id"
    assert req.subject.resident_id == sim.ZHANG_SAN
    assert req.subject.name == "张三"
    # the caller's deadline went along (grpc-timeout), less the margin
    assert remaining is not None and 0 < remaining < 5, remaining


def test_pybank_asset_ref_passes_validation(pb, apb, bank_stack):
    s, bank, ch = bank_stack
    stub = pb.broker_grpc.AssetBrokerStub(ch)
    req = sim.query_req(pb, resident_id=sim.ZHANG_SAN,
                        categories=[pb.broker.CATEGORY_DEPOSIT])
    reply = stub.Query(req, timeout=5)
    ref = sim.by_source(reply)["bank:pybank"].assets[0].asset_ref
    req = pb.broker.FreezeRequest(
        request_id="py-1",
        case=pb.broker.CaseRef(case_number=CASE, claim_amount_fen=1000000,
                               officer_id="GZ0001"),
        debtor=pb.broker.Debtor(resident_id=sim.ZHANG_SAN, name="张三"),
        asset_ref=ref, document_number=CASE + "之一",
        amount=pb.broker.Money(fen=1000, currency="CNY"), duration_days=30)
    # valid: Freeze goes on to pybank, which does not implement it
    # (UNIMPLEMENTED from the agency: the source's error, not a refusal of
    # the reference); a build without actions answers UNIMPLEMENTED itself
    try:
        reply = stub.Freeze(req, timeout=5)
    except grpc.RpcError as err:
        assert err.code() != grpc.StatusCode.INVALID_ARGUMENT, err.details()
    else:
        assert reply.outcome != pb.broker.ACTION_OUTCOME_UNSPECIFIED, reply


def test_pybank_not_found_and_error(pb, apb, bank_stack):
    s, bank, ch = bank_stack
    stub = pb.broker_grpc.AssetBrokerStub(ch)
    cats = [pb.broker.CATEGORY_DEPOSIT]
    # a customer pybank does not have: NOT_FOUND, not an error
    got = sim.by_source(stub.Query(sim.query_req(
        pb, uscc=sim.GREAT_WALL, name="北京长城示范实业有限公司",
        categories=cats), timeout=5))
    assert got["bank:pybank"].status == pb.broker.SOURCE_NOT_FOUND, \
        got["bank:pybank"]
    assert not got["bank:pybank"].assets
    req, _, _ = bank.requests[-1]
    assert req.subject.WhichOneof("id") == "uscc"
    assert req.subject.uscc == sim.GREAT_WALL
    # an agency's error status: ERROR with the agency's message
    got = sim.by_source(stub.Query(sim.query_req(
        pb, resident_id=pybank.REFUSE_ID, name="李四", categories=cats),
        timeout=5))
    r = got["bank:pybank"]
    assert r.status == pb.broker.SOURCE_ERROR, r
    assert pybank.REFUSE_MESSAGE in r.message, r.message
    # and the connection is reused, still fine
    got = sim.by_source(stub.Query(sim.query_req(
        pb, resident_id=sim.ZHANG_SAN, categories=cats), timeout=5))
    assert got["bank:pybank"].status == pb.broker.SOURCE_OK
    ep = s.status_json()["endpoints"]["pybank"]
    assert ep["breaker"] == "closed", ep
