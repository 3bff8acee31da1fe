"""A bounded load measurement (marked slow: not run under the sanitizer
build): Health/Check and Query calls per second from grpcio over one
channel, many calls in flight. Prints the rates; asserts only a floor far
below what a healthy daemon does, so a loaded CI machine does not flake."""

import time

import pytest

CALLS = 5000
IN_FLIGHT = 100


def run(fn, make_req):
    futs, done, t0 = [], 0, time.monotonic()
    for _ in range(CALLS):
        futs.append(fn.future(make_req(), timeout=60))
        if len(futs) >= IN_FLIGHT:
            futs.pop(0).result()
            done += 1
    for f in futs:
        f.result()
        done += 1
    return done / (time.monotonic() - t0)


@pytest.mark.slow
def test_health_check_rate(pb, health, capsys):
    rate = run(health.Check, pb.health.HealthCheckRequest)
    with capsys.disabled():
        print(f"\n  Health/Check: {rate:.0f} calls/s over one channel "
              f"({CALLS} calls, {IN_FLIGHT} in flight)")
    assert rate > 200


@pytest.mark.slow
def test_query_rate(pb, broker, capsys):
    b = pb.broker

    def req():
        return b.QueryRequest(
            case=b.CaseRef(case_number="(2019)粤01执123号",
                           claim_amount_fen=15000000, officer_id="GZ0001"),
            debtor=b.Debtor(resident_id="11010519491231002X", name="张三"))

    rate = run(broker.Query, req)
    with capsys.disabled():
        print(f"\n  Query: {rate:.0f} calls/s over one channel "
              f"({CALLS} calls, {IN_FLIGHT} in flight)")
    assert rate > 200
