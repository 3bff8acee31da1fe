"""Query, for real, through tests/stack.sh (the broker, 8 simulated banks
and the four registries): the broker's reply equals, field by field, what
the simulator holds for the debtor (AgencySim.Lookup); an unknown debtor is
NOT_FOUND per source, not an error."""

import time

import grpc
import pytest

import sim

@pytest.fixture(scope="session")
def apb():
    yield from sim.agency_messages()


@pytest.fixture(scope="session")
def control(stack, apb):
    c = sim.Control(stack, apb)
    yield c
    c.close()


def subjects(control):
    """(kind, id) of the subjects to compare: the fixed ones and the
    simulator's samples."""
    eps = control.endpoints()
    out = [("resident_id", sim.ZHANG_SAN), ("uscc", sim.GREAT_WALL)]
    for rid in eps.sample_resident_ids:
        if ("resident_id", rid) not in out:
            out.append(("resident_id", rid))
    for u in eps.sample_usccs:
        if ("uscc", u) not in out:
            out.append(("uscc", u))
    return out


# ------------------------------------------------------------ field by field

def test_zhang_san_as_the_readme_says(pb, broker, control):
    """The always-present debtor: the values are written down here so a
    bug shared by Lookup and the broker cannot hide."""
    reply = broker.Query(sim.query_req(pb, resident_id=sim.ZHANG_SAN),
                         timeout=10)
    got = sim.by_source(reply)
    assert sorted(got) == sorted(sim.BANK_SOURCES + sim.REGISTRY_SOURCES)

    def one_deposit(src):
        r = got[src]
        assert r.status == pb.broker.SOURCE_OK, r
        assert len(r.assets) == 1, r
        return r.assets[0].deposit

    icbc = one_deposit("bank:icbc")
    assert (icbc.balance.fen, icbc.balance.currency) == (123456789, "CNY")
    assert icbc.bank_name == "中国工商银行"
    ccb = one_deposit("bank:ccb")
    assert (ccb.balance.fen, ccb.balance.currency) == (5000000, "CNY")
    cmb = one_deposit("bank:cmb")
    assert (cmb.balance.fen, cmb.balance.currency) == (300000, "USD")
    for src in ("bank:abc", "bank:boc", "bank:bocom", "bank:cgb",
                "bank:psbc"):
        assert got[src].status == pb.broker.SOURCE_NOT_FOUND, got[src]
        assert not got[src].assets
    for d in (icbc, ccb, cmb):
        m = d.account_masked
        assert len(m) >= 12 and m[4:-4] == "*" * (len(m) - 8), m
        assert m[:4].isdigit() and m[-4:].isdigit(), m
    re = got["realestate"]
    assert re.status == pb.broker.SOURCE_OK and len(re.assets) == 1, re
    assert "天河区" in re.assets[0].real_estate.address
    veh = got["vehicle"]
    assert veh.status == pb.broker.SOURCE_OK, veh
    assert [a.vehicle.plate for a in veh.assets] == ["粤A12345"]
    hh = got["household"]
    assert hh.status == pb.broker.SOURCE_OK and len(hh.assets) == 1, hh
    assert hh.assets[0].household.name == "张三"
    assert hh.assets[0].household.birth_date == "1949-12-31"
    # a resident id is not asked of the business registry
    assert got["enterprise"].status == pb.broker.SOURCE_NOT_FOUND


def test_great_wall_enterprise(pb, broker, control):
    req = sim.query_req(pb, uscc=sim.GREAT_WALL,
                        name="北京长城示范实业有限公司")
    reply = broker.Query(req, timeout=10)
    got = sim.by_source(reply)
    ent = got["enterprise"]
    assert ent.status == pb.broker.SOURCE_OK, ent
    assert len(ent.assets) == 1
    e = ent.assets[0].enterprise
    assert e.name == "北京长城示范实业有限公司"
    assert e.legal_representative and e.status
    assert e.registered_capital.fen > 0
    banks = sorted(s for s, r in got.items()
                   if s.startswith("bank:") and
                   r.status == pb.broker.SOURCE_OK)
    assert banks == ["bank:boc", "bank:bocom"], banks
    assert got["realestate"].status == pb.broker.SOURCE_OK
    assert len(got["realestate"].assets) >= 1
    # an enterprise has no household record
    assert got["household"].status == pb.broker.SOURCE_NOT_FOUND
    diffs = sim.compare(pb, reply, control.lookup(uscc=sim.GREAT_WALL),
                    sim.GREAT_WALL)
    assert not diffs, "\n".join(diffs)


def test_query_equals_simulator_field_by_field(pb, broker, control):
    """Every subject the simulator names (the fixed ones and its samples):
    the broker's reply equals Lookup, field by field, for every source."""
    subs = subjects(control)
    assert len(subs) >= 6, subs
    diffs = []
    seen = set()           # which kinds of data the comparison covered
    for kind, sid in subs:
        before = (control.lookup(uscc=sid) if kind == "uscc"
                  else control.lookup(resident_id=sid))
        assert before.found, f"{sid}: a sample the simulator does not know"
        kw = {kind: sid}
        req = sim.query_req(pb, name=before.name or "某某", **kw)
        reply = broker.Query(req, timeout=10)
        after = (control.lookup(uscc=sid) if kind == "uscc"
                 else control.lookup(resident_id=sid))
        assert before == after, f"{sid}: the simulator changed meanwhile"
        diffs += sim.compare(pb, reply, before, sid)
        for s in reply.sources:
            for a in s.assets:
                seen.add(a.WhichOneof("detail"))
                if a.WhichOneof("detail") == "deposit" and \
                        a.deposit.balance.currency != "CNY":
                    seen.add("foreign currency")
    assert not diffs, "\n".join(diffs)
    # the comparison is not vacuous: every kind of data was compared
    assert {"deposit", "real_estate", "vehicle", "household",
            "enterprise"} <= seen, seen


def test_categories_limit_the_sources(pb, broker, control):
    req = sim.query_req(pb, resident_id=sim.ZHANG_SAN,
                        categories=[pb.broker.CATEGORY_DEPOSIT])
    reply = broker.Query(req, timeout=10)
    assert sorted(s.source for s in reply.sources) == sorted(sim.BANK_SOURCES)
    reply = broker.Query(sim.query_req(
        pb, resident_id=sim.ZHANG_SAN,
        categories=[pb.broker.CATEGORY_VEHICLE,
                    pb.broker.CATEGORY_HOUSEHOLD]), timeout=10)
    assert sorted(s.source for s in reply.sources) == ["household",
                                                       "vehicle"]
    want = sim.expected_sources(control.lookup(resident_id=sim.ZHANG_SAN))
    for s in reply.sources:
        assert [sim.broker_asset(a) for a in s.assets] == want[s.source][1]


def test_asset_refs_are_distinct(pb, broker):
    reply = broker.Query(sim.query_req(pb, resident_id=sim.ZHANG_SAN),
                         timeout=10)
    refs = [a.asset_ref for s in reply.sources for a in s.assets
            if a.category in (1, 2, 3)]
    assert len(refs) >= 5
    assert all(refs) and len(set(refs)) == len(refs)


# ------------------------------------------------------------ unknown debtor

# Valid identifiers that the population (birth dates 1950-2005) lacks.
UNKNOWN_RESIDENT = "440524188001010014"
UNKNOWN_USCC = "91350100M000100Y43"


@pytest.mark.parametrize("kind,sid", [("resident_id", UNKNOWN_RESIDENT),
                                      ("uscc", UNKNOWN_USCC)])
def test_unknown_debtor_is_not_found_per_source(pb, broker, control, kind,
                                                sid):
    lk = control.lookup(**{kind: sid})
    assert not lk.found, f"{sid} is in the population; pick another"
    t0 = time.monotonic()
    reply = broker.Query(sim.query_req(pb, name="无名氏", **{kind: sid}),
                         timeout=10)          # gRPC OK: no exception
    assert time.monotonic() - t0 < 5
    got = sim.by_source(reply)
    assert sorted(got) == sorted(sim.BANK_SOURCES + sim.REGISTRY_SOURCES)
    for src, r in got.items():
        assert r.status == pb.broker.SOURCE_NOT_FOUND, \
            f"{src}: {sim.status_name(r.status)} {r.message!r}"
        assert not r.assets, src
        assert r.message, f"{src}: NOT_FOUND without a detail"
    diffs = sim.compare(pb, reply, lk, sid)
    assert not diffs, "\n".join(diffs)


def test_unknown_debtor_is_not_an_rpc_error(pb, channel):
    """The same through the raw method: status OK, one reply message."""
    call = channel.unary_unary("/chakong.v1.AssetBroker/Query")
    body, c = call.with_call(
        sim.query_req(pb, resident_id=UNKNOWN_RESIDENT,
                      name="无名氏").SerializeToString(), timeout=10)
    assert c.code() == grpc.StatusCode.OK
    reply = pb.broker.QueryReply.FromString(body)
    assert reply.sources and all(
        s.status == pb.broker.SOURCE_NOT_FOUND for s in reply.sources)


# ------------------------------------------------------------ encumbrances

def test_encumbrances_field_by_field(pb, apb, broker, control, stack):
    """Freezes made at a simulated bank (straight, as a broker would: the
    broker's Freeze is not wired yet) show in the Query's reply exactly as
    the bank holds them: one in force (partial), one queued behind it."""
    eps = control.endpoints()
    addr = {e.endpoint: e.address for e in eps.endpoints}
    target = None
    for rid in eps.sample_resident_ids:
        if rid == sim.ZHANG_SAN:
            continue
        for ev in control.lookup(resident_id=rid).endpoints:
            if ev.kind == "bank" and ev.accounts.found and any(
                    a.currency == "CNY" and a.available_fen > 200
                    for a in ev.accounts.accounts):
                acct = next(a for a in ev.accounts.accounts
                            if a.currency == "CNY" and a.available_fen > 200)
                target = (rid, ev.endpoint, acct)
                break
        if target:
            break
    assert target, "no sample debtor with a CNY account"
    rid, ep, acct = target
    ch = sim.agency_channel(stack, addr[ep])
    a = apb.common
    try:
        def ctx(case, key):
            return a.CallContext(broker_id="gz", court_id="440100",
                                 officer_id="GZ0001", case_number=case,
                                 document_number=case + "之一",
                                 idempotency_key=key,
                                 origin="interactive")
        subj = a.Subject(resident_id=rid, name="某某")
        money = a.Money(fen=acct.available_fen + 100, currency="CNY")
        first = sim.bank_freeze(
            ch, apb, ctx=ctx("(2020)粤01执5号", f"it-enc-1-{rid}"),
            subject=subj, account_no=acct.account_no, amount=money,
            duration_days=30)
        assert first.status == a.ACTION_PARTIAL, first
        second = sim.bank_freeze(
            ch, apb, ctx=ctx("(2020)粤01执6号", f"it-enc-2-{rid}"),
            subject=subj, account_no=acct.account_no,
            amount=a.Money(fen=100, currency="CNY"), duration_days=60)
        assert second.status == a.ACTION_QUEUED, second
    finally:
        ch.close()

    lk = control.lookup(resident_id=rid)
    reply = broker.Query(sim.query_req(pb, resident_id=rid, name="某某"),
                         timeout=10)
    diffs = sim.compare(pb, reply, lk, rid)
    assert not diffs, "\n".join(diffs)
    got = sim.by_source(reply)["bank:" + ep]
    dep = [x for x in got.assets
           if x.deposit.account_masked == sim.mask_account(acct.account_no)]
    assert len(dep) == 1, got
    d = dep[0]
    assert d.deposit.frozen.fen == acct.available_fen
    assert d.deposit.available.fen == 0
    encs = [(e.kind, e.case_number, e.frozen_fen, e.queued_fen,
             e.queue_position) for e in d.encumbrances]
    assert encs[-2:] == [
        (pb.broker.Encumbrance.FREEZE, "(2020)粤01执5号",
         acct.available_fen, 0, 0),
        (pb.broker.Encumbrance.FREEZE, "(2020)粤01执6号", 0, 100, 1)], encs
    assert d.encumbrances[-2].effective_date and \
        d.encumbrances[-2].expiry_date
    assert d.encumbrances[-1].effective_date == ""
