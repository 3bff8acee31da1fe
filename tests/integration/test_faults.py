"""Misbehaving agencies (AgencySim.Fault): a Query still arrives by the
caller's deadline with the healthy sources' data and the right status for
each bad one; the per-endpoint circuit breaker opens after repeated
failures (on /status and /metrics), refuses without calling the agency, and
closes once the endpoint heals; an agency whose certificate names another
identity is refused."""

import socket
import time

import pytest

import sim

DEADLINE = 1.5          # the caller's deadline in the fault test, seconds
SLACK = 0.25            # what the reply may take beyond it (it may not)


@pytest.fixture(scope="module")
def apb():
    yield from sim.agency_messages()


@pytest.fixture(scope="module")
def control(stack, apb):
    c = sim.Control(stack, apb)
    yield c
    c.clear("*")
    c.close()


def query(pb, stub, rid=sim.ZHANG_SAN, timeout=10, **kw):
    return stub.Query(sim.query_req(pb, resident_id=rid, **kw),
                      timeout=timeout)


# ------------------------------------------------------------------ faults

def test_faults_answer_by_the_deadline(pb, broker, control, stack):
    """icbc hangs, abc resets the connection, boc answers after 5 s, ccb
    answers garbage; the other sources are healthy."""
    # 张三 has accounts at icbc, ccb and cmb: two faulted banks hold data
    want = sim.expected_sources(control.lookup(resident_id=sim.ZHANG_SAN))
    bad = {"icbc": dict(hang_permille=1000),
           "abc": dict(reset_permille=1000),
           "boc": dict(latency_ms=5000),
           "ccb": dict(garbage_permille=1000)}
    control.counters("*", reset=True)
    try:
        for ep, spec in bad.items():
            control.fault(ep, **spec)
        for attempt in range(2):   # the second on reused connections
            t0 = time.monotonic()
            reply = query(pb, broker, timeout=DEADLINE)
            took = time.monotonic() - t0
            assert took < DEADLINE + SLACK, f"answered after {took:.3f}s"
            got = sim.by_source(reply)
            assert sorted(got) == sorted(want)

            def st(src):
                return sim.status_name(got[src].status), got[src].message

            # hang and slow: no answer within the budget
            assert st("bank:icbc")[0] == "TIMEOUT", st("bank:icbc")
            assert st("bank:boc")[0] == "TIMEOUT", st("bank:boc")
            # a connection reset is no answer: the agency could not be
            # reached (SourceStatus: UNAVAILABLE = "could not be reached";
            # ERROR is for answers: an error status or garbage)
            assert st("bank:abc")[0] == "UNAVAILABLE", st("bank:abc")
            # garbage: grpc-status 0 with a body that does not decode
            assert st("bank:ccb")[0] == "ERROR", st("bank:ccb")
            for src in ("bank:icbc", "bank:abc", "bank:boc", "bank:ccb"):
                assert got[src].message, f"{src}: no detail"
                assert not got[src].assets, src
                assert got[src].fetched_at == 0, src
            # the healthy ones, field by field
            for src, (status, assets) in want.items():
                if src in ("bank:icbc", "bank:abc", "bank:boc", "bank:ccb"):
                    continue
                assert sim.status_name(got[src].status) == status, st(src)
                assert [sim.broker_asset(a) for a in got[src].assets] == \
                    assets, src
        # the faults were really hit, not skipped by the broker
        for ep, what in (("icbc", "hangs"), ("abc", "resets"),
                         ("ccb", "garbage")):
            c = control.endpoint_counters(ep)
            assert getattr(c, what) >= 2, c
        assert control.calls("boc", "QueryAccounts") >= 2
    finally:
        control.clear("*")

    # the daemon keeps serving: a normal query is whole again
    assert stack.alive()
    reply = query(pb, broker, timeout=10)
    diffs = sim.compare(pb, reply,
                    control.lookup(resident_id=sim.ZHANG_SAN), "after")
    assert not diffs, "\n".join(diffs)
    assert all(s.status in (pb.broker.SOURCE_OK, pb.broker.SOURCE_NOT_FOUND)
               for s in reply.sources), reply
    code, _, body = stack.http_get("/healthz")
    assert code == 200, body


def test_error_status_from_an_agency(pb, broker, control):
    """An agency's gRPC error: UNAVAILABLE → UNAVAILABLE, INTERNAL → ERROR,
    each with a detail; the others unaffected."""
    try:
        control.fault("cgb", error_permille=1000, error_code=13)
        control.fault("psbc", error_permille=1000, error_code=14)
        got = sim.by_source(query(pb, broker))
        assert got["bank:cgb"].status == pb.broker.SOURCE_ERROR, \
            got["bank:cgb"]
        assert got["bank:psbc"].status == pb.broker.SOURCE_UNAVAILABLE, \
            got["bank:psbc"]
        assert got["bank:icbc"].status == pb.broker.SOURCE_OK
        assert got["bank:cmb"].status == pb.broker.SOURCE_OK
    finally:
        control.clear("*")
    got = sim.by_source(query(pb, broker))
    assert got["bank:cgb"].status == pb.broker.SOURCE_NOT_FOUND
    assert got["bank:psbc"].status == pb.broker.SOURCE_NOT_FOUND


def test_a_hanging_registry_costs_only_its_budget(pb, broker, control):
    """With every agency hanging the reply still comes by the deadline,
    every source TIMEOUT, gRPC OK."""
    try:
        control.fault("*", hang_permille=1000)
        t0 = time.monotonic()
        reply = query(pb, broker, timeout=1.0)
        took = time.monotonic() - t0
        assert took < 1.0 + SLACK, took
        got = sim.by_source(reply)
        assert sorted(got) == sorted(sim.BANK_SOURCES + sim.REGISTRY_SOURCES)
        for src, r in got.items():
            if src == "enterprise":     # not asked for a resident id
                assert r.status == pb.broker.SOURCE_NOT_FOUND, r
                continue
            assert r.status == pb.broker.SOURCE_TIMEOUT, (src, r)
    finally:
        control.clear("*")
    # breakers (5 failures by default) did not open on one timeout each
    got = sim.by_source(query(pb, broker))
    assert got["bank:icbc"].status == pb.broker.SOURCE_OK


# ----------------------------------------------------------------- breaker

BREAKER_FAILURES = 3
BREAKER_OPEN_MS = 2500


@pytest.fixture(scope="module")
def breaker_stack(module_stack):
    return module_stack(CK_ENDPOINT_CONF=(
        f"breaker_failures = {BREAKER_FAILURES}\n"
        f"breaker_open_ms = {BREAKER_OPEN_MS}\n"
        "timeout_ms = 300"))


def breaker_state(stack, ep):
    return stack.status_json()["endpoints"][ep]["breaker"]


def breaker_metric(stack, ep):
    for fam in stack.metrics():
        for s in fam.samples:
            if s.name == "chakong_endpoint_breaker_state" and \
                    s.labels.get("endpoint") == ep:
                return s.value
    return None


def test_breaker_opens_and_closes(pb, breaker_stack, apb):
    s = breaker_stack
    ctl = sim.Control(s, apb)
    ch = s.channel()
    stub = pb.broker_grpc.AssetBrokerStub(ch)
    cats = [pb.broker.CATEGORY_DEPOSIT]
    try:
        got = sim.by_source(query(pb, stub, categories=cats))
        assert got["bank:icbc"].status == pb.broker.SOURCE_OK
        assert breaker_state(s, "icbc") == "closed"
        assert breaker_metric(s, "icbc") == 0

        ctl.fault("icbc", error_permille=1000, error_code=14)
        for i in range(BREAKER_FAILURES):
            got = sim.by_source(query(pb, stub, categories=cats))
            assert got["bank:icbc"].status == pb.broker.SOURCE_UNAVAILABLE, \
                got["bank:icbc"]
            # the others are not affected
            assert got["bank:ccb"].status == pb.broker.SOURCE_OK
        assert breaker_state(s, "icbc") == "open", \
            s.status_json()["endpoints"]["icbc"]
        assert breaker_metric(s, "icbc") == 2
        assert breaker_state(s, "ccb") == "closed"
        assert breaker_metric(s, "ccb") == 0
        assert s.status_json()["endpoints"]["icbc"]["breaker_opens"] == 1

        # open: refused at once, the agency never called
        before = ctl.calls("icbc", "QueryAccounts")
        for i in range(3):
            t0 = time.monotonic()
            got = sim.by_source(query(pb, stub, categories=cats))
            took = time.monotonic() - t0
            r = got["bank:icbc"]
            assert r.status == pb.broker.SOURCE_UNAVAILABLE, r
            assert "breaker" in r.message, r.message
            assert took < 0.5, f"a refused source took {took:.3f}s"
        assert ctl.calls("icbc", "QueryAccounts") == before
        assert breaker_state(s, "icbc") == "open"
        assert s.status_json()["endpoints"]["icbc"]["refused"]["breaker"] >= 3

        # healed: after breaker_open_ms the next call probes and closes it
        ctl.clear("icbc")
        time.sleep(BREAKER_OPEN_MS / 1000 + 0.2)
        got = sim.by_source(query(pb, stub, categories=cats))
        assert got["bank:icbc"].status == pb.broker.SOURCE_OK, got["bank:icbc"]
        assert ctl.calls("icbc", "QueryAccounts") == before + 1
        assert breaker_state(s, "icbc") == "closed"
        assert breaker_metric(s, "icbc") == 0
        got = sim.by_source(query(pb, stub, categories=cats))
        assert got["bank:icbc"].status == pb.broker.SOURCE_OK
    finally:
        ctl.clear("*")
        ctl.close()
        ch.close()


def test_breaker_reopens_when_the_probe_fails(pb, breaker_stack, apb):
    s = breaker_stack
    ctl = sim.Control(s, apb)
    ch = s.channel()
    stub = pb.broker_grpc.AssetBrokerStub(ch)
    cats = [pb.broker.CATEGORY_DEPOSIT]
    try:
        opens0 = s.status_json()["endpoints"]["abc"]["breaker_opens"]
        ctl.fault("abc", hang_permille=1000)    # each call: timeout_ms
        for i in range(BREAKER_FAILURES):
            got = sim.by_source(query(pb, stub, categories=cats))
            assert got["bank:abc"].status == pb.broker.SOURCE_TIMEOUT, \
                got["bank:abc"]
        assert breaker_state(s, "abc") == "open"
        time.sleep(BREAKER_OPEN_MS / 1000 + 0.2)
        before = ctl.calls("abc", "QueryAccounts")
        got = sim.by_source(query(pb, stub, categories=cats))   # the probe
        assert got["bank:abc"].status == pb.broker.SOURCE_TIMEOUT
        assert ctl.calls("abc", "QueryAccounts") == before + 1
        assert breaker_state(s, "abc") == "open"
        assert s.status_json()["endpoints"]["abc"]["breaker_opens"] == \
            opens0 + 2
    finally:
        ctl.clear("*")
        ctl.close()
        ch.close()


# ------------------------------------------------------------ impersonation

IMPOSTER_CONF = """
[endpoint.imposter]
address = @endpoint.abc@
identity = urn:chakong:agency:icbc

[adapter.imp]
module = bank
endpoints = imposter
"""

DEAD_CONF = """
[endpoint.dead]
address = 127.0.0.1:{dead}
identity = urn:chakong:agency:dead

[endpoint.mute]
address = 127.0.0.1:{mute}
identity = urn:chakong:agency:mute

[adapter.more]
module = bank
endpoints = dead, mute
"""


def test_agency_with_another_identity_is_refused(pb, fresh_stack, apb):
    s = fresh_stack(CK_EXTRA_CONF=IMPOSTER_CONF)
    ctl = sim.Control(s, apb)
    ch = s.channel()
    stub = pb.broker_grpc.AssetBrokerStub(ch)
    try:
        before = ctl.calls("abc", "QueryAccounts")
        n = 3
        messages = []
        for i in range(n):
            got = sim.by_source(query(pb, stub, timeout=10,
                                      categories=[pb.broker.CATEGORY_DEPOSIT]))
            r = got["bank:imposter"]
            assert r.status == pb.broker.SOURCE_UNAVAILABLE, r
            assert not r.assets
            messages.append(r.message)
            # the real abc endpoint is still asked, once per query
            assert got["bank:abc"].status in (pb.broker.SOURCE_OK,
                                              pb.broker.SOURCE_NOT_FOUND)
            assert got["bank:icbc"].status == pb.broker.SOURCE_OK
        # only the genuine bank:abc leg reached the simulator's abc
        assert ctl.calls("abc", "QueryAccounts") == before + n
        ep = s.status_json()["endpoints"]["imposter"]
        assert ep["ready"] == 0 and ep["connect_failures"] >= 1, ep
        assert "urn:chakong:agency:icbc" in ep["last_error"], ep
        # every refusal says why: the identity the certificate lacks
        for m in messages:
            assert "urn:chakong:agency:icbc" in m, messages
    finally:
        ctl.close()
        ch.close()


def test_dead_and_mute_endpoints_cost_no_more_than_the_deadline(
        pb, fresh_stack):
    """One endpoint at a port nobody listens on (dead), one whose listener
    never answers a TLS handshake (mute: the kernel accepts, nobody reads;
    the default connect timeout, 3 s, is past the deadline)."""
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead_port = dead.getsockname()[1]
    dead.close()                          # nothing listens there now
    mute = socket.socket()
    mute.bind(("127.0.0.1", 0))
    mute.listen(64)
    try:
        s = fresh_stack(CK_EXTRA_CONF=DEAD_CONF.format(
            dead=dead_port, mute=mute.getsockname()[1]))
        check_dead_and_mute(pb, s)
    finally:
        mute.close()


def check_dead_and_mute(pb, s):
    ch = s.channel()
    stub = pb.broker_grpc.AssetBrokerStub(ch)
    try:
        for i in range(2):
            t0 = time.monotonic()
            got = sim.by_source(query(pb, stub, timeout=DEADLINE,
                                      categories=[pb.broker.CATEGORY_DEPOSIT]))
            took = time.monotonic() - t0
            assert took < DEADLINE + SLACK, took
            # refused connection: nothing was sent
            assert got["bank:dead"].status == pb.broker.SOURCE_UNAVAILABLE, \
                got["bank:dead"]
            # a handshake that never completes: nothing came back in time
            assert got["bank:mute"].status in (
                pb.broker.SOURCE_TIMEOUT, pb.broker.SOURCE_UNAVAILABLE), \
                got["bank:mute"]
            assert got["bank:icbc"].status == pb.broker.SOURCE_OK
            assert got["bank:ccb"].status == pb.broker.SOURCE_OK
        # a query without the dead ones is not slowed by them
        t0 = time.monotonic()
        got = sim.by_source(query(pb, stub, timeout=10, categories=[
            pb.broker.CATEGORY_VEHICLE]))
        assert time.monotonic() - t0 < 1.0
        assert got["vehicle"].status == pb.broker.SOURCE_OK
    finally:
        ch.close()
