"""Explicit limits, on a stack of this file's own with small values
(tests/stack.sh's CK_LIMITS), and bad input at the TLS and HTTP/2 layers:
each is refused cleanly and the daemon goes on serving."""

import socket
import ssl
import time

import pytest

import ck

LIMITS = {
    "max_connections_per_identity": 3,
    "handshake_timeout_ms": 500,
    "idle_timeout_s": 2,
    "max_message_bytes": 65536,
}

HEALTH = "/grpc.health.v1.Health/Check"
QUERY = "/chakong.v1.AssetBroker/Query"
H2_ENHANCE_YOUR_CALM = 11


@pytest.fixture(scope="module")
def small(module_stack):
    """A stack with the small LIMITS, shared by this module's tests."""
    return module_stack(
        CK_LIMITS="\n".join(f"{k} = {v}" for k, v in LIMITS.items()))


def health_body(pb):
    return ck.grpc_frame(pb.health.HealthCheckRequest().SerializeToString())


def health_ok(pb, s, cert=None, key=None):
    with s.h2(cert=cert, key=key) as c:
        st = c.call(HEALTH, health_body(pb))
        return st.grpc_status == ck.OK


def closed_within(sock, seconds):
    """Seconds until the peer closed sock (EOF or reset), or None."""
    t0 = time.monotonic()
    sock.settimeout(0.1)
    while time.monotonic() - t0 < seconds:
        try:
            if sock.recv(65536) == b"":
                return time.monotonic() - t0
        except socket.timeout:
            continue
        except (ConnectionResetError, ssl.SSLError, OSError):
            return time.monotonic() - t0
    return None


def test_connections_per_identity(pb, small):
    conns = []
    try:
        for _ in range(LIMITS["max_connections_per_identity"]):
            c = small.h2()
            conns.append(c)
            st = c.call(HEALTH, health_body(pb))
            assert st.grpc_status == ck.OK, vars(st)
        extra = small.h2()
        conns.append(extra)
        st = extra.start(HEALTH, health_body(pb))
        extra.pump(lambda: extra.goaway is not None or st.done, timeout=5)
        assert extra.goaway is not None, \
            f"connection {len(conns)} of one identity was not refused"
        assert extra.goaway.error_code == H2_ENHANCE_YOUR_CALM, extra.goaway
        assert st.grpc_status != ck.OK
        # Another identity is not affected.
        assert health_ok(pb, small, small.partner_cert, small.partner_key)
        # The limit counts open connections: closing one makes room.
        extra.close()
        conns.pop().close()
        conns.pop().close()
        time.sleep(0.2)
        assert health_ok(pb, small)
    finally:
        for c in conns:
            c.close()


def test_handshake_timeout(small):
    s = socket.create_connection(small.grpc_addr, timeout=5)
    try:
        took = closed_within(s, 5)
        assert took is not None, "a silent client was never disconnected"
        assert took < 0.5 + 2.0, f"closed after {took:.2f} s"
    finally:
        s.close()


def test_idle_timeout(pb, small):
    with small.h2() as c:
        st = c.call(HEALTH, health_body(pb))
        assert st.grpc_status == ck.OK
        t0 = time.monotonic()
        c.pump(lambda: c.goaway is not None or c.closed, timeout=6)
        took = time.monotonic() - t0
        assert c.goaway is not None or c.closed, \
            "an idle connection was never closed"
        assert took < LIMITS["idle_timeout_s"] + 2.5, f"after {took:.1f} s"


def test_max_message_bytes(pb, small):
    req = pb.broker.QueryRequest(
        case=pb.broker.CaseRef(case_number="(2019)粤01执123号",
                               claim_amount_fen=1, officer_id="GZ0001"),
        debtor=pb.broker.Debtor(resident_id="11010519491231002X",
                                name="张三"))
    base = req.SerializeToString()

    def padded(total):
        # An unknown field 15 (length-delimited) pads the message: a
        # decoder skips it, so only the size differs.
        pad = total - len(base)
        for hdr in range(2, 6):
            n = pad - 1 - hdr
            if n >= 0 and len(varint(n)) == hdr:
                return base + b"\x7a" + varint(n) + b"x" * n
        raise AssertionError(total)

    limit = LIMITS["max_message_bytes"]
    with small.h2() as c:
        st = c.call(QUERY, ck.grpc_frame(padded(limit)))
        assert st.grpc_status == ck.OK, vars(st)
        st = c.call(QUERY, ck.grpc_frame(padded(limit + 1)))
        assert st.grpc_status == ck.RESOURCE_EXHAUSTED, vars(st)
        # A length prefix far beyond the limit, with no body behind it:
        # refused on the prefix alone.
        st = c.call(QUERY, b"\x00\x7f\xff\xff\xff")
        assert st.grpc_status == ck.RESOURCE_EXHAUSTED, vars(st)
        st = c.call(HEALTH, health_body(pb))
        assert st.grpc_status == ck.OK, vars(st)


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def test_header_list_too_large(pb, stack):
    with stack.h2() as c:
        st = c.start(HEALTH, health_body(pb),
                     extra_headers=[("x-padding", "p" * 20000)])
        c.wait([st], timeout=5)
        assert st.grpc_status != ck.OK, vars(st)
    assert health_ok(pb, stack)


def test_plaintext_client_disconnected(pb, stack):
    s = socket.create_connection(stack.grpc_addr, timeout=5)
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert closed_within(s, 6) is not None
    finally:
        s.close()
    assert health_ok(pb, stack)


def test_bad_http2_preface(pb, stack):
    ctx = ck.tls_context(stack.ca, stack.cert, stack.key, ("h2",))
    raw = socket.create_connection(stack.grpc_addr, timeout=5)
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n" * 4)
        assert closed_within(s, 6) is not None
    finally:
        s.close()
    assert health_ok(pb, stack)


def test_rapid_reset_flood(pb, stack):
    """Streams opened and cancelled at once, over and over (the 2023
    "rapid reset" attack): the daemon ends that connection and serves the
    others."""
    import h2.errors
    c = stack.h2()
    try:
        c.flush()
        for round_ in range(40):
            for _ in range(50):
                sid = c.conn.get_next_available_stream_id()
                c.conn.send_headers(sid, [
                    (":method", "POST"), (":scheme", "https"),
                    (":path", "/chakong.test.v1.Testing/Sleep"),
                    (":authority", "localhost"),
                    ("content-type", "application/grpc"),
                    ("te", "trailers")])
                c.conn.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
            try:
                c.flush()
            except OSError:
                break
            c.pump(lambda: c.goaway is not None or c.closed, timeout=0.01)
            if c.goaway is not None or c.closed:
                break
        c.pump(lambda: c.goaway is not None or c.closed, timeout=3)
        assert c.goaway is not None or c.closed, \
            "2000 streams reset at once and the connection goes on"
        if c.goaway is not None:
            assert c.goaway.error_code != ck.H2_NO_ERROR, c.goaway
    finally:
        c.close()
    assert health_ok(pb, stack)
