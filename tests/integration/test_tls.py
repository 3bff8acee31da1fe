"""Mutual TLS: only a client certificate from the configured CA, valid now,
gets an HTTP/2 connection; ALPN must select h2."""

import grpc
import pytest

H2_SETTINGS = 0x4


def refused(probe):
    """The server gave the client no HTTP/2 connection: the handshake
    failed, or (TLS 1.3, where the client finishes first) the server sent an
    alert or closed instead of its SETTINGS frame."""
    return not probe["h2_bytes"]


def test_court_certificate_gets_h2(stack):
    p = stack.tls_probe()
    assert p["handshake"] and p["alpn"] == "h2", p
    frame = p["h2_bytes"]
    assert len(frame) >= 9 and frame[3] == H2_SETTINGS, \
        "the server's first frame must be SETTINGS"


def test_no_client_certificate_refused(stack):
    p = stack.tls_probe(client_cert=False)
    assert refused(p), p


@pytest.mark.parametrize("name", ["rogue", "expired"])
def test_bad_client_certificate_refused(stack, name):
    p = stack.tls_probe(cert=stack.pki_file(name + ".crt"),
                        key=stack.pki_file(name + ".key"))
    assert refused(p), p


@pytest.mark.parametrize("name", [None, "rogue", "expired"])
def test_grpcio_without_valid_certificate_refused(pb, stack, name):
    if name is None:
        ch = stack.channel(client_cert=False)
    else:
        ch = stack.channel(cert=stack.pki_file(name + ".crt"),
                           key=stack.pki_file(name + ".key"))
    try:
        stub = pb.health_grpc.HealthStub(ch)
        with pytest.raises(grpc.RpcError) as ei:
            stub.Check(pb.health.HealthCheckRequest(), timeout=5)
        assert ei.value.code() in (grpc.StatusCode.UNAVAILABLE,
                                   grpc.StatusCode.UNAUTHENTICATED), \
            ei.value.details()
    finally:
        ch.close()


def test_alpn_other_than_h2_refused(stack):
    p = stack.tls_probe(alpn=("http/1.1",))
    assert not (p["handshake"] and p["alpn"] == "http/1.1"), p
    assert refused(p), p


def test_daemon_survives_refusals(pb, health):
    r = health.Check(pb.health.HealthCheckRequest(), timeout=10)
    assert r.status == pb.health.HealthCheckResponse.SERVING
