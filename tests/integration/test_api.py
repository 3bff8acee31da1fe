"""The court-facing API through grpcio stubs generated from proto/ at test
time: answers for a court, validation errors that name the field and never
repeat the value, unknown methods, Health/Check, concurrency on one
channel, and a log that never holds an identity number."""

import os
import subprocess
import time

import grpc
import pytest

import ck

VALID_IDS = ["11010519491231002X", "513101198201130014",
             "440524188001010014", "360426199101010071"]
INVALID_IDS = {
    "110105194912310023": "check character",
    "110105194913310021": "month 13",
    "110105194902290029": "29 February 1949",
    "110105300001010022": "born in the future",
    "11010519491231002": "17 characters",
    "1101051949123100211": "19 characters",
}
VALID_USCC = ["91110000600037341L", "91350100M000100Y43"]
INVALID_USCC = ["91350100M000100Y4Z", "91310115MA1H8R7C6D"]

# Every identity number any test here sends: the log must hold none.
SENT = set(VALID_IDS) | set(INVALID_IDS) | set(VALID_USCC) | set(INVALID_USCC)

ALL_CATEGORIES = [1, 2, 3, 4, 5]


def case_ref(pb, number="(2019)粤01执123号", claim=15000000,
             officer="GZ0001"):
    return pb.broker.CaseRef(case_number=number, claim_amount_fen=claim,
                             officer_id=officer)


def debtor(pb, rid=None, uscc=None, name="张三"):
    if uscc is not None:
        return pb.broker.Debtor(uscc=uscc, name=name)
    return pb.broker.Debtor(resident_id=rid or VALID_IDS[0], name=name)


def query(pb, categories=(), **kw):
    case_kw = {k: kw.pop(k) for k in ("number", "claim", "officer")
               if k in kw}
    return pb.broker.QueryRequest(case=case_ref(pb, **case_kw),
                                  debtor=debtor(pb, **kw),
                                  categories=list(categories))


def rpc_error(fn, *a, **kw):
    with pytest.raises(grpc.RpcError) as ei:
        fn(*a, timeout=10, **kw)
    return ei.value


def assert_invalid(err, field, *secrets):
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, \
        f"{err.code()}: {err.details()}"
    msg = err.details() or ""
    assert field in msg, f"message {msg!r} does not name {field!r}"
    for s in secrets:
        assert s not in msg, f"message {msg!r} repeats the rejected value"


# ------------------------------------------------------------------ Query

# The stack's sources: 8 banks (deposits) and one registry per other
# category. A category no adapter serves would answer SOURCE_NOT_CONFIGURED.
SOURCES = {
    1: ["bank:icbc", "bank:abc", "bank:boc", "bank:ccb", "bank:bocom",
        "bank:cmb", "bank:cgb", "bank:psbc"],
    2: ["realestate"],
    3: ["vehicle"],
    4: ["household"],
    5: ["enterprise"],
}

def answered(pb):
    return {pb.broker.SOURCE_OK, pb.broker.SOURCE_NOT_FOUND}


def sources_for(cats):
    return sorted(src for c in cats for src in SOURCES[c])


def test_query_answers_one_result_per_source(pb, broker):
    cats = [pb.broker.CATEGORY_DEPOSIT, pb.broker.CATEGORY_VEHICLE]
    reply = broker.Query(query(pb, categories=cats), timeout=10)
    assert sorted(s.source for s in reply.sources) == sources_for(cats)
    assert {s.category for s in reply.sources} == set(cats)
    for s in reply.sources:
        assert s.status in answered(pb), s
        assert s.fetched_at > 0, "a live answer says when it was fetched"
        assert not s.from_cache


def test_query_without_categories_asks_all(pb, broker):
    reply = broker.Query(query(pb), timeout=10)
    assert sorted(s.source for s in reply.sources) == \
        sources_for(ALL_CATEGORIES)
    assert all(s.status in answered(pb) for s in reply.sources)


@pytest.mark.parametrize("rid", VALID_IDS)
def test_query_accepts_valid_identity_numbers(pb, broker, rid):
    reply = broker.Query(query(pb, rid=rid), timeout=10)
    assert len(reply.sources) == len(sources_for(ALL_CATEGORIES))


@pytest.mark.parametrize("uscc", VALID_USCC)
def test_query_accepts_valid_credit_codes(pb, broker, uscc):
    reply = broker.Query(query(pb, uscc=uscc, name="某某有限公司"),
                         timeout=10)
    assert len(reply.sources) == len(sources_for(ALL_CATEGORIES))


@pytest.mark.parametrize("number", [
    "(2019)粤01执123号", "（2019）粤01执123号", "(2020)粤01执恢7号",
    "(2021)粤01执保15号"])
def test_query_accepts_case_number_forms(pb, broker, number):
    broker.Query(query(pb, number=number), timeout=10)


def test_partner_court_gets_answers(pb, stack):
    ch = stack.channel(cert=stack.partner_cert, key=stack.partner_key)
    try:
        stub = pb.broker_grpc.AssetBrokerStub(ch)
        reply = stub.Query(query(pb, number="(2019)粤06执55号"), timeout=10)
        assert len(reply.sources) == len(sources_for(ALL_CATEGORIES))
    finally:
        ch.close()


# ------------------------------------------------------------- validation

@pytest.mark.parametrize("rid", sorted(INVALID_IDS))
def test_invalid_identity_number(pb, broker, rid):
    err = rpc_error(broker.Query, query(pb, rid=rid))
    assert_invalid(err, "debtor.resident_id", rid)


@pytest.mark.parametrize("uscc", INVALID_USCC)
def test_invalid_credit_code(pb, broker, uscc):
    err = rpc_error(broker.Query, query(pb, uscc=uscc, name="某某公司"))
    assert_invalid(err, "debtor.uscc", uscc)


@pytest.mark.parametrize("number", [
    "(2019)粤99执123号",        # no court has prefix 粤99
    "(2019)粤01执异123号",      # review type, not enforcement
    "(2019)粤01执复123号",
    "(2019)粤01民初123号",      # not an enforcement case
    "2019粤01执123号",          # no brackets
    "(2019)粤01执123",          # no 号
])
def test_invalid_case_number(pb, broker, number):
    err = rpc_error(broker.Query, query(pb, number=number))
    assert_invalid(err, "case.case_number", number)


def test_missing_debtor_name(pb, broker):
    err = rpc_error(broker.Query, query(pb, name=""))
    assert_invalid(err, "debtor.name")


def test_missing_debtor_identity(pb, broker):
    req = pb.broker.QueryRequest(case=case_ref(pb),
                                 debtor=pb.broker.Debtor(name="张三"))
    err = rpc_error(broker.Query, req)
    assert_invalid(err, "debtor")


def test_missing_officer(pb, broker):
    err = rpc_error(broker.Query, query(pb, officer=""))
    assert_invalid(err, "case.officer_id")


def test_missing_case(pb, broker):
    req = pb.broker.QueryRequest(debtor=debtor(pb))
    err = rpc_error(broker.Query, req)
    assert_invalid(err, "case")


def test_negative_claim(pb, broker):
    err = rpc_error(broker.Query, query(pb, claim=-1))
    assert_invalid(err, "case.claim_amount_fen")


@pytest.mark.parametrize("rid", ["has space", "x" * 65, "tab\there", "中文"])
def test_invalid_request_id(pb, broker, rid):
    req = query(pb)
    req.request_id = rid
    err = rpc_error(broker.Query, req)
    assert_invalid(err, "request_id")


@pytest.mark.parametrize("body", [
    b"\x0f\xff\xff\xff\xff\xff\xff",   # field 1 with wire type 7: no such type
    b"\x0a\x10abc",                    # length 16, 3 bytes follow
    b"\x12\xff\xff\xff\xff\x0f",         # a length beyond the message
])
def test_body_not_protobuf(channel, body):
    call = channel.unary_unary("/chakong.v1.AssetBroker/Query")
    with pytest.raises(grpc.RpcError) as ei:
        call(body, timeout=10)
    assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT, \
        ei.value.details()


def test_oversized_message_refused(channel, health, pb):
    call = channel.unary_unary("/chakong.v1.AssetBroker/Query")
    with pytest.raises(grpc.RpcError) as ei:
        call(b"\x00" * (17 << 20), timeout=30)
    assert ei.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, \
        ei.value.details()
    # The connection (and the daemon) go on serving.
    r = health.Check(pb.health.HealthCheckRequest(), timeout=10)
    assert r.status == pb.health.HealthCheckResponse.SERVING


# ------------------------------------------------------- other RPCs, paths

def test_update_claim_is_journaled(pb, broker):
    """UpdateClaim fixes or changes a case's claim, once per request_id."""
    b = pb.broker
    case = b.CaseRef(case_number="(2021)粤01执987号", officer_id="GZ0001")

    def update(rid, fen):
        return broker.UpdateClaim(b.UpdateClaimRequest(
            request_id=rid, case=case,
            new_claim=b.Money(fen=fen, currency="CNY"),
            document_number="(2021)粤01执987号之一", reason="变更申请"),
            timeout=10)

    first = update("uc-first", 20000000)
    assert (first.old_claim_fen, first.new_claim_fen) == (0, 20000000)
    second = update("uc-second", 25000000)
    assert (second.old_claim_fen, second.new_claim_fen) == \
        (20000000, 25000000)
    # the same request again: the recorded answer, no second change
    again = update("uc-first", 20000000)
    assert (again.old_claim_fen, again.new_claim_fen) == (0, 20000000)
    err = rpc_error(lambda r, timeout: update("uc-first", 1), None)
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS, err.details()


def test_watch_rpcs_are_served(pb, broker):
    # Enroll, EndEnrollment, ListFindings and AckFindings answer for real
    # (issue 7; test_watch.py covers them in depth)
    b = pb.broker
    en = broker.Enroll(b.EnrollRequest(
        request_id="en-1", case=case_ref(pb), debtor=debtor(pb),
        termination_date="2024-03-01",
        document_number="(2019)粤01执123号之二"), timeout=10)
    assert en.enrollment_id and len(en.due_dates) == 10, en
    assert en.due_dates[0] == "2024-09-01" and en.due_dates[-1] == \
        "2029-03-01", en
    ee = broker.EndEnrollment(b.EndEnrollmentRequest(
        request_id="ee-1", case=case_ref(pb), reason=b.END_CLOSED),
        timeout=10)
    assert ee.reruns_done >= 0
    broker.ListFindings(b.ListFindingsRequest(), timeout=10)
    err = rpc_error(broker.AckFindings, b.AckFindingsRequest(
        request_id="ack-1", finding_ids=["f1"]))
    assert_invalid(err, "finding_ids")


def test_other_rpcs_refuse_invalid_input(pb, broker):
    b = pb.broker
    err = rpc_error(broker.UpdateClaim, b.UpdateClaimRequest(
        request_id="uc-2", case=case_ref(pb, number="(2019)粤99执1号"),
        new_claim=b.Money(fen=1, currency="CNY"),
        document_number="(2019)粤99执1号之一", reason="x"))
    assert_invalid(err, "case.case_number")
    err = rpc_error(broker.Enroll, b.EnrollRequest(
        request_id="en-2", case=case_ref(pb), debtor=debtor(pb),
        termination_date="2024-02-30",
        document_number="(2019)粤01执123号之二"))
    assert_invalid(err, "termination_date")
    err = rpc_error(broker.Enroll, b.EnrollRequest(
        request_id="en-3", case=case_ref(pb), debtor=debtor(pb),
        termination_date="2024-03-01",
        document_number="(2018)粤01执9号之二"))
    assert_invalid(err, "document_number")


def test_ref_taking_rpcs_do_not_succeed(pb, broker):
    # Forged references: INVALID_ARGUMENT once references are sealed,
    # UNIMPLEMENTED until these RPCs land; never OK.
    b = pb.broker
    ref = b"forged-reference"
    calls = [
        (broker.Freeze, b.FreezeRequest(
            request_id="fr-1", case=case_ref(pb), debtor=debtor(pb),
            asset_ref=ref, document_number="(2019)粤01执123号之三",
            amount=b.Money(fen=100, currency="CNY"), duration_days=30)),
        (broker.Extend, b.ExtendRequest(
            request_id="ex-1", case=case_ref(pb), debtor=debtor(pb),
            freeze_ref=ref, document_number="(2019)粤01执123号之四",
            duration_days=30)),
        (broker.Release, b.ReleaseRequest(
            request_id="rl-1", case=case_ref(pb), debtor=debtor(pb),
            freeze_ref=ref, document_number="(2019)粤01执123号之五")),
        (broker.Deduct, b.DeductRequest(
            request_id="de-1", case=case_ref(pb), debtor=debtor(pb),
            freeze_ref=ref, document_number="(2019)粤01执123号之六",
            amount=b.Money(fen=100, currency="CNY"))),
    ]
    for fn, req in calls:
        err = rpc_error(fn, req)
        assert err.code() in (grpc.StatusCode.UNIMPLEMENTED,
                              grpc.StatusCode.INVALID_ARGUMENT), \
            f"{type(req).__name__}: {err.code()}: {err.details()}"


@pytest.mark.parametrize("path", [
    "/chakong.v1.AssetBroker/NoSuchMethod",
    "/chakong.v1.NoSuchService/Query",
    "/no.such.Service/Method",
])
def test_unknown_method_or_service(channel, path):
    with pytest.raises(grpc.RpcError) as ei:
        channel.unary_unary(path)(b"", timeout=10)
    assert ei.value.code() == grpc.StatusCode.UNIMPLEMENTED, \
        ei.value.details()


def test_agency_certificate_cannot_use_court_api(pb, stack):
    r = subprocess.run(
        [os.path.join(ck.ROOT, "tests", "pki", "mkpki"), stack.pki,
         "agency", "ittest"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    ch = stack.channel(cert=stack.pki_file("agency-ittest.crt"),
                       key=stack.pki_file("agency-ittest.key"))
    try:
        stub = pb.broker_grpc.AssetBrokerStub(ch)
        err = rpc_error(stub.Query, query(pb))
        assert err.code() in (grpc.StatusCode.PERMISSION_DENIED,
                              grpc.StatusCode.UNAUTHENTICATED), \
            f"{err.code()}: {err.details()}"
    finally:
        ch.close()


# ------------------------------------------------------------------ health

def test_health_check_serving(pb, health):
    r = health.Check(pb.health.HealthCheckRequest(service=""), timeout=10)
    assert r.status == pb.health.HealthCheckResponse.SERVING


def test_health_check_broker_service(pb, health):
    r = health.Check(pb.health.HealthCheckRequest(
        service="chakong.v1.AssetBroker"), timeout=10)
    assert r.status == pb.health.HealthCheckResponse.SERVING


def test_health_check_unknown_service(pb, health):
    err = rpc_error(health.Check, pb.health.HealthCheckRequest(
        service="no.such.Service"))
    assert err.code() == grpc.StatusCode.NOT_FOUND, err.details()


# ------------------------------------------------------------- concurrency

def test_200_concurrent_queries_on_one_channel(pb, broker):
    futs = [broker.Query.future(query(pb), timeout=60) for _ in range(200)]
    replies = [f.result() for f in futs]
    assert all(len(r.sources) == len(sources_for(ALL_CATEGORIES))
               for r in replies)


def test_200_concurrent_sleeps_on_one_channel(pb, testing):
    t0 = time.monotonic()
    futs = [testing.Sleep.future(pb.testing.SleepRequest(millis=100),
                                 timeout=60) for _ in range(200)]
    errors = [f.exception(timeout=60) for f in futs]
    errors = [e for e in errors if e is not None]
    assert not errors, errors[:3]
    # 100 streams at a time: two rounds of 100 ms, not 200 in a row.
    assert time.monotonic() - t0 < 10


# ---------------------------------------------------------------- the log

def test_log_never_holds_identity_numbers(pb, broker, stack):
    # Send every number once more, valid and invalid, then read the log.
    for rid in VALID_IDS + list(INVALID_IDS):
        try:
            broker.Query(query(pb, rid=rid), timeout=10)
        except grpc.RpcError:
            pass
    for uscc in VALID_USCC + INVALID_USCC:
        try:
            broker.Query(query(pb, uscc=uscc, name="某某公司"), timeout=10)
        except grpc.RpcError:
            pass
    time.sleep(0.3)
    log = stack.log_text()
    assert log.strip(), "chakongd logged nothing"
    leaked = sorted(n for n in SENT if n in log)
    assert not leaked, f"the log holds identity numbers: {leaked}"
