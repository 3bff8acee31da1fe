"""asset_ref is sealed by the broker: altered by one byte, used with another
debtor, or by another court, it is INVALID_ARGUMENT naming asset_ref and
the rule, and nothing reaches the agency; unaltered, with the right debtor
and court, it passes validation (Freeze then acts, or, in a build whose
actions are not wired, answers UNIMPLEMENTED after validation)."""

import itertools
import os

import grpc
import pytest

import sim

_ids = itertools.count(1)
_run = os.urandom(4).hex()


def new_request_id():
    return f"refs-{_run}-{next(_ids)}"

CASE_GZ = "(2019)粤01执123号"
CASE_FS = "(2019)粤06执55号"
OTHER_DEBTOR = "440524188001010014"      # valid, not the ref's debtor


def freeze_req(pb, ref, rid=sim.ZHANG_SAN, case=CASE_GZ, request_id=None,
               uscc=None, name="张三"):
    if uscc is not None:
        d = pb.broker.Debtor(uscc=uscc, name=name)
    else:
        d = pb.broker.Debtor(resident_id=rid, name=name)
    return pb.broker.FreezeRequest(
        request_id=request_id or new_request_id(),
        case=pb.broker.CaseRef(case_number=case, claim_amount_fen=10000000,
                               officer_id="GZ0001"),
        debtor=d, asset_ref=ref, document_number=case + "之一",
        amount=pb.broker.Money(fen=100000, currency="CNY"),
        duration_days=30)


@pytest.fixture(scope="module")
def refs(pb, broker):
    """{source: [asset_ref, ...]} from a Query for 张三 by the Guangzhou
    court: deposits, a property and a vehicle."""
    reply = broker.Query(sim.query_req(pb, resident_id=sim.ZHANG_SAN),
                         timeout=10)
    out = {}
    for s in reply.sources:
        for a in s.assets:
            if a.asset_ref:
                out.setdefault(s.source, []).append(a.asset_ref)
    assert {"bank:icbc", "realestate", "vehicle"} <= set(out), out
    return out


def freeze_error(stub, req):
    with pytest.raises(grpc.RpcError) as ei:
        stub.Freeze(req, timeout=10)
    return ei.value


def assert_refused(err, rule):
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, \
        f"{err.code()}: {err.details()}"
    msg = err.details() or ""
    assert msg.startswith("asset_ref"), f"{msg!r} does not name asset_ref"
    assert rule in msg, f"{msg!r} does not state the rule ({rule!r})"


def assert_accepted(pb, stub, req):
    """The reference passed the broker's checks: Freeze acted (any
    outcome) or, where actions are not wired, UNIMPLEMENTED saying the
    request was valid."""
    try:
        reply = stub.Freeze(req, timeout=10)
    except grpc.RpcError as err:
        assert err.code() == grpc.StatusCode.UNIMPLEMENTED, \
            f"{err.code()}: {err.details()}"
        assert "valid" in (err.details() or ""), err.details()
        return None
    assert reply.outcome != pb.broker.ACTION_OUTCOME_UNSPECIFIED, reply
    if reply.outcome in (pb.broker.ACTION_DONE, pb.broker.ACTION_PARTIAL,
                         pb.broker.ACTION_QUEUED):
        assert reply.freeze_ref, reply
    return reply


@pytest.fixture(scope="module")
def apb():
    yield from sim.agency_messages()


@pytest.fixture(scope="module")
def control(stack, apb):
    c = sim.Control(stack, apb)
    yield c
    c.close()


ACTION_METHODS = {"bank:icbc": ("icbc", "Freeze"),
                  "realestate": ("realestate", "Seal"),
                  "vehicle": ("vehicle", "Seal")}


def agency_actions(control):
    return {src: control.calls(ep, m)
            for src, (ep, m) in ACTION_METHODS.items()}


@pytest.mark.parametrize("source", ["bank:icbc", "realestate", "vehicle"])
def test_unaltered_ref_passes_validation(pb, broker, refs, source):
    assert_accepted(pb, broker, freeze_req(pb, refs[source][0]))


def positions(n):
    """One-byte alterations: the first and last bytes, the middle, and a
    spread across the reference (key id, nonce, ciphertext, tag)."""
    ps = {0, 1, 2, n // 4, n // 2, (3 * n) // 4, n - 17, n - 2, n - 1}
    ps |= set(range(0, n, max(1, n // 12)))
    return sorted(p for p in ps if 0 <= p < n)


@pytest.mark.parametrize("source", ["bank:icbc", "realestate"])
def test_ref_altered_by_one_byte_is_refused(pb, broker, refs, control,
                                            source):
    ref = refs[source][0]
    before = agency_actions(control)
    tried = 0
    for p in positions(len(ref)):
        for flip in (0x01, 0x80):
            bad = bytearray(ref)
            bad[p] ^= flip
            err = freeze_error(broker, freeze_req(pb, bytes(bad)))
            assert_refused(err, "forged, altered or foreign")
            tried += 1
    assert tried >= 16
    # nothing reached an agency
    assert agency_actions(control) == before
    # the original still passes: nothing was learned from the refusals
    assert_accepted(pb, broker, freeze_req(pb, ref))


def test_ref_truncated_or_extended_is_refused(pb, broker, refs, control):
    ref = refs["bank:icbc"][0]
    before = agency_actions(control)
    for bad in (ref[:-1], ref[1:], ref + b"\x00", ref[: len(ref) // 2]):
        err = freeze_error(broker, freeze_req(pb, bad))
        assert_refused(err, "forged, altered or foreign")
    assert agency_actions(control) == before


def test_ref_of_another_debtor_is_refused(pb, broker, refs, control):
    before = agency_actions(control)
    for source in ("bank:icbc", "vehicle"):
        err = freeze_error(broker, freeze_req(pb, refs[source][0],
                                              rid=OTHER_DEBTOR))
        assert_refused(err, "another debtor")
    # a credit code is another debtor too
    err = freeze_error(broker, freeze_req(pb, refs["bank:icbc"][0],
                                          uscc=sim.GREAT_WALL,
                                          name="北京长城示范实业有限公司"))
    assert_refused(err, "another debtor")
    assert agency_actions(control) == before


def test_ref_used_by_another_court_is_refused(pb, stack, refs, control):
    """The Foshan court, with a case of its own (粤06, so the case check
    passes), cannot use a reference issued to Guangzhou."""
    ch = stack.channel(cert=stack.partner_cert, key=stack.partner_key)
    try:
        partner = pb.broker_grpc.AssetBrokerStub(ch)
        before = agency_actions(control)
        for source in ("bank:icbc", "realestate"):
            err = freeze_error(partner, freeze_req(pb, refs[source][0],
                                                   case=CASE_FS))
            assert_refused(err, "another court")
        assert agency_actions(control) == before
        # its own reference for the same debtor passes validation
        req = sim.query_req(pb, resident_id=sim.ZHANG_SAN, case=CASE_FS)
        reply = partner.Query(req, timeout=10)
        own = [a.asset_ref for s in reply.sources if s.source == "bank:icbc"
               for a in s.assets]
        assert own
        assert_accepted(pb, partner, freeze_req(pb, own[0], case=CASE_FS))
    finally:
        ch.close()


def test_ref_from_another_broker_key_is_refused(pb, broker, refs):
    """A well-formed but foreign reference: the same length, random bytes
    after the original's first byte (its version/key id)."""
    ref = refs["bank:icbc"][0]
    bad = ref[:1] + os.urandom(len(ref) - 1)
    assert_refused(freeze_error(broker, freeze_req(pb, bad)),
                   "forged, altered or foreign")
