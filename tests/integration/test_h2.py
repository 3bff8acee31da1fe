"""The gRPC wire protocol seen frame by frame, with a raw HTTP/2 client
(python3-h2) for what a stock gRPC client never sends: a deadline enforced
by the daemon alone, a compressed-flag frame, streams opened before the
server's SETTINGS are acknowledged."""

import time

import pytest

import ck

SLEEP = "/chakong.test.v1.Testing/Sleep"
QUERY = "/chakong.v1.AssetBroker/Query"
HEALTH = "/grpc.health.v1.Health/Check"


def sleep_body(pb, millis):
    return ck.grpc_frame(pb.testing.SleepRequest(millis=millis)
                         .SerializeToString())


def test_sleep_ok(pb, stack):
    with stack.h2() as c:
        assert c.alpn == "h2"
        st = c.call(SLEEP, sleep_body(pb, 50))
        assert st.done and st.reset is None, vars(st)
        assert st.headers[":status"] == "200"
        assert st.headers.get("content-type", "").startswith(
            "application/grpc")
        assert st.grpc_status == ck.OK, vars(st)
        (flag, msg), = st.messages()
        assert flag == 0
        assert pb.testing.SleepReply.FromString(msg).slept_ms >= 50


def test_deadline_exceeded_sent_by_daemon(pb, stack):
    """grpc-timeout 200 ms on a 3 s sleep, and no deadline on the client
    side: the DEADLINE_EXCEEDED can only come from the daemon."""
    before = stack.metric_value(
        "chakong_grpc_calls_total", method=SLEEP, code="DEADLINE_EXCEEDED")
    with stack.h2() as c:
        t0 = time.monotonic()
        st = c.start(SLEEP, sleep_body(pb, 3000),
                     extra_headers=[("grpc-timeout", "200m")])
        assert c.wait([st], timeout=10), "no answer within 10 s"
        elapsed = st.t_end - t0
        assert st.reset is None, f"RST_STREAM {st.reset} instead of trailers"
        assert st.grpc_status == ck.DEADLINE_EXCEEDED, vars(st)
        assert 0.15 <= elapsed < 2.0, f"answered after {elapsed:.2f} s"
        # The connection goes on serving.
        st2 = c.call(SLEEP, sleep_body(pb, 1))
        assert st2.grpc_status == ck.OK, vars(st2)
    deadline = time.monotonic() + 5
    while True:
        after = stack.metric_value("chakong_grpc_calls_total", method=SLEEP,
                                   code="DEADLINE_EXCEEDED")
        if after >= before + 1 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert after == before + 1, (before, after)


@pytest.mark.parametrize("timeout", ["100m", "1S", "500000u"])
def test_grpc_timeout_units(pb, stack, timeout):
    with stack.h2() as c:
        st = c.call(SLEEP, sleep_body(pb, 5000),
                    extra_headers=[("grpc-timeout", timeout)])
        assert st.grpc_status == ck.DEADLINE_EXCEEDED, vars(st)


def test_compressed_flag_without_encoding_is_internal(pb, stack):
    payload = pb.testing.SleepRequest(millis=1).SerializeToString()
    with stack.h2() as c:
        st = c.call(SLEEP, ck.grpc_frame(payload, compressed=True))
        assert st.grpc_status == ck.INTERNAL, vars(st)
        st2 = c.call(SLEEP, sleep_body(pb, 1))
        assert st2.grpc_status == ck.OK, vars(st2)


def test_error_message_is_percent_encoded_ascii(pb, stack):
    req = pb.broker.QueryRequest(
        case=pb.broker.CaseRef(case_number="(2019)粤01执123号",
                               officer_id="GZ0001"),
        debtor=pb.broker.Debtor(resident_id="110105194912310023",
                                name="张三"))
    with stack.h2() as c:
        st = c.call(QUERY, ck.grpc_frame(req.SerializeToString()))
        assert st.grpc_status == ck.INVALID_ARGUMENT, vars(st)
        msg = st.grpc_message
        assert msg and all(0x20 <= ord(ch) <= 0x7e for ch in msg), msg
        assert "debtor.resident_id" in msg
        assert "110105194912310023" not in msg


def test_unknown_method_trailers_only(stack):
    with stack.h2() as c:
        st = c.call("/chakong.v1.AssetBroker/Nope", ck.grpc_frame(b""))
        assert st.grpc_status == ck.UNIMPLEMENTED, vars(st)
        assert st.headers[":status"] == "200"


def test_streams_beyond_limit_refused_cleanly(pb, stack):
    """150 Sleep streams sent right after the preface, before reading the
    server's SETTINGS (so its limit of 100 is not yet acknowledged): the
    excess is refused with RST_STREAM(REFUSED_STREAM), the rest complete,
    and the connection keeps working."""
    n = 150
    with stack.h2() as c:
        streams = [c.start(SLEEP, sleep_body(pb, 500), send=False)
                   for _ in range(n)]
        c.flush()
        assert c.wait(streams, timeout=30), \
            f"{sum(not s.done for s in streams)} streams never finished"
        refused = [s for s in streams if s.reset == ck.H2_REFUSED_STREAM]
        ok = [s for s in streams if s.reset is None
              and s.grpc_status == ck.OK]
        other = [s for s in streams if s not in refused and s not in ok]
        assert not other, [vars(s) for s in other[:3]]
        assert refused, "no stream was refused"
        assert len(ok) >= 100 - 1, f"only {len(ok)} completed"
        assert c.goaway is None, c.goaway
        st = c.call(SLEEP, sleep_body(pb, 1))
        assert st.grpc_status == ck.OK, vars(st)


def test_health_over_raw_h2(pb, stack):
    with stack.h2() as c:
        st = c.call(HEALTH, ck.grpc_frame(
            pb.health.HealthCheckRequest().SerializeToString()))
        assert st.grpc_status == ck.OK, vars(st)
        (_, msg), = st.messages()
        assert pb.health.HealthCheckResponse.FromString(msg).status == \
            pb.health.HealthCheckResponse.SERVING
