"""Issue 6, part 3: certificate revocation and its reload.

The stack's [tls] crl is pki/crl.pem (tests/pki/mkpki), which revokes
pki/revoked.crt; pki/crl-later.pem also revokes pki/revoked-later.crt.
Every handshake is checked against the CRL; SIGHUP reads a new one for new
handshakes without a restart, and a connection whose certificate it
revokes gets GOAWAY; an unreadable one keeps the old list.
"""

import os
import re
import shutil
import signal
import time

import grpc
import pytest

import ck


def health(pb, stack, name):
    """Health/Check over a new connection with pki/<name>.crt: the status
    code (OK or the failure) and its details."""
    ch = stack.channel(cert=stack.pki_file(name + ".crt"),
                       key=stack.pki_file(name + ".key"))
    try:
        pb.health_grpc.HealthStub(ch).Check(pb.health.HealthCheckRequest(),
                                            timeout=10)
        return grpc.StatusCode.OK, ""
    except grpc.RpcError as e:
        return e.code(), e.details() or ""
    finally:
        ch.close()


def log_since(stack, pos):
    with open(stack.log, "rb") as f:
        f.seek(pos)
        return f.read().decode("utf-8", "replace")


def reloads(stack):
    return stack.status_json()["reloads"]


def sighup_and_wait(stack, pred, pos):
    ck.send_signal(stack, signal.SIGHUP)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"reload not seen:\n{log_since(stack, pos)}")


def test_revoked_certificate_is_refused_at_the_handshake(pb, stack):
    pos = os.path.getsize(stack.log)
    code, details = health(pb, stack, "revoked")
    assert code == grpc.StatusCode.UNAVAILABLE, (code, details)
    # the refusal is the handshake's, and the log says why
    deadline = time.monotonic() + 5
    while "(certificate revoked)" not in log_since(stack, pos) and \
            time.monotonic() < deadline:
        time.sleep(0.05)
    log = log_since(stack, pos)
    assert "(certificate revoked)" in log, log
    assert "peer=court:440100 established" not in log, log
    # the same identity with a good certificate, and one revoked only
    # later, are served
    assert health(pb, stack, "court-440100")[0] == grpc.StatusCode.OK
    assert health(pb, stack, "revoked-later")[0] == grpc.StatusCode.OK


def test_sighup_with_a_new_crl_refuses_a_newly_revoked_one(pb, stack):
    crl = stack.pki_file("crl.pem")
    saved = crl + ".saved"
    shutil.copyfile(crl, saved)
    pid, n = stack.pid, reloads(stack)
    pos = os.path.getsize(stack.log)
    # a connection made before the revocation
    old = stack.channel(cert=stack.pki_file("revoked-later.crt"),
                        key=stack.pki_file("revoked-later.key"))
    hc = pb.health_grpc.HealthStub(old)
    hc.Check(pb.health.HealthCheckRequest(), timeout=10)
    try:
        shutil.copyfile(stack.pki_file("crl-later.pem"), crl + ".tmp")
        os.replace(crl + ".tmp", crl)
        sighup_and_wait(stack, lambda: reloads(stack) == n + 1, pos)
        code, details = health(pb, stack, "revoked-later")
        assert code == grpc.StatusCode.UNAVAILABLE, (code, details)
        # the established one got GOAWAY: its next call needs a new
        # handshake, which is refused
        assert re.search(r"peer=court:440100: its certificate no longer "
                         r"verifies \(certificate revoked\); GOAWAY",
                         log_since(stack, pos)), log_since(stack, pos)
        with pytest.raises(grpc.RpcError) as ei:
            hc.Check(pb.health.HealthCheckRequest(), timeout=10)
        assert ei.value.code() == grpc.StatusCode.UNAVAILABLE
        assert health(pb, stack, "revoked")[0] == \
            grpc.StatusCode.UNAVAILABLE
        assert health(pb, stack, "court-440100")[0] == grpc.StatusCode.OK
        assert stack.alive() and stack.pid == pid   # no restart
    finally:
        old.close()
        os.replace(saved, crl)
        sighup_and_wait(stack, lambda: reloads(stack) == n + 2, pos)
    assert health(pb, stack, "revoked-later")[0] == grpc.StatusCode.OK


def test_sighup_with_a_broken_crl_keeps_the_old_one(pb, stack):
    crl = stack.pki_file("crl.pem")
    saved = crl + ".saved"
    shutil.copyfile(crl, saved)
    n = reloads(stack)
    with open(stack.conf) as f:
        conf = f.read()
    crl_line = next(i for i, l in enumerate(conf.splitlines(), 1)
                    if l.startswith("crl = "))
    pos = os.path.getsize(stack.log)
    try:
        with open(crl + ".tmp", "w") as f:
            f.write("-----BEGIN X509 CRL-----\nnot base64\n"
                    "-----END X509 CRL-----\n")
        os.replace(crl + ".tmp", crl)
        sighup_and_wait(stack, lambda: "reload failed" in
                        log_since(stack, pos), pos)
        log = log_since(stack, pos)
        assert re.search(rf"chakongd\.conf:{crl_line}: \[tls\] crl: "
                         r"loading CRL .*crl\.pem", log), log
        assert reloads(stack) == n
        # the running list still holds
        assert health(pb, stack, "revoked")[0] == \
            grpc.StatusCode.UNAVAILABLE
        assert health(pb, stack, "court-440100")[0] == grpc.StatusCode.OK
    finally:
        os.replace(saved, crl)
    # a CRL the config names but that does not exist: the same
    pos = os.path.getsize(stack.log)
    os.rename(crl, saved)
    try:
        sighup_and_wait(stack, lambda: "reload failed" in
                        log_since(stack, pos), pos)
        assert "[tls] crl" in log_since(stack, pos)
        assert reloads(stack) == n
    finally:
        os.rename(saved, crl)
