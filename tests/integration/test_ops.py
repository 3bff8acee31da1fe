"""Operations: `chakongd -t`, SIGHUP reloads (a broken file keeps the old
configuration), SIGTERM drains in-flight calls and exits 0."""

import os
import re
import shutil
import signal
import time

import grpc
import pytest

import ck


def wait_for(pred, timeout=5.0, step=0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(step)


def reload_count(stack):
    """Successful configuration reloads, from /status."""
    doc = stack.status_json()
    assert isinstance(doc.get("reloads"), int), doc
    return doc["reloads"]


def serving(pb, stack):
    """A Health/Check over a new connection answers SERVING."""
    ch = stack.channel()
    try:
        r = pb.health_grpc.HealthStub(ch).Check(
            pb.health.HealthCheckRequest(), timeout=10)
        return r.status == pb.health.HealthCheckResponse.SERVING
    finally:
        ch.close()


def log_size(stack):
    return os.path.getsize(stack.log)


def log_since(stack, pos):
    with open(stack.log, "rb") as f:
        f.seek(pos)
        return f.read().decode("utf-8", "replace")


def insert_line(text, lineno, line):
    """text with `line` inserted so that it becomes line number lineno."""
    lines = text.splitlines(True)
    return "".join(lines[:lineno - 1]) + line + "\n" + "".join(
        lines[lineno - 1:])


# ------------------------------------------------------------ chakongd -t

def test_check_good_config(stack):
    rc, out = ck.chakongd_check(stack.build, stack.conf)
    assert rc == 0, out


@pytest.mark.parametrize("find,bad", [
    (None, "this line is not ini"),
    ("max_concurrent_streams = ", "max_concurrent_streams = many"),
    ("grace_period_s = ", "grace_period_s = -3"),
    ("listen = ", "listen = nowhere"),
    ("client_ca = ", "client_ca = /nonexistent/ca.crt"),
])
def test_check_bad_config_names_file_and_line(stack, tmp_path, find, bad):
    with open(stack.conf) as f:
        lines = f.read().splitlines()
    if find is None:
        line = 3
        lines.insert(line - 1, bad)
    else:
        line = next(i for i, x in enumerate(lines, 1) if x.startswith(find))
        lines[line - 1] = bad
    conf = tmp_path / "bad.conf"
    conf.write_text("\n".join(lines) + "\n")
    rc, out = ck.chakongd_check(stack.build, str(conf))
    assert rc == 1, out
    assert f"bad.conf:{line}" in out, out


def test_check_missing_file(stack, tmp_path):
    rc, out = ck.chakongd_check(stack.build, str(tmp_path / "nope.conf"))
    assert rc == 1, out
    assert "nope.conf" in out, out


def test_check_refuses_readable_private_key(stack, tmp_path):
    with open(stack.conf) as f:
        text = f.read()
    key = tmp_path / "broker.key"
    shutil.copyfile(stack.pki_file("broker.key"), key)
    conf = tmp_path / "key.conf"
    conf.write_text(text.replace(stack.pki_file("broker.key"), str(key)))
    os.chmod(key, 0o600)
    rc, out = ck.chakongd_check(stack.build, str(conf))
    assert rc == 0, f"the 0600 copy must pass: {out}"
    os.chmod(key, 0o644)
    rc, out = ck.chakongd_check(stack.build, str(conf))
    assert rc == 1, out
    assert "broker.key" in out, out


# ---------------------------------------------------------------- SIGHUP

def test_sighup_broken_config_keeps_old_one(pb, stack):
    with open(stack.conf) as f:
        orig = f.read()
    before = reload_count(stack)
    pos = log_size(stack)
    try:
        with open(stack.conf, "w") as f:
            f.write(insert_line(orig, 3, "garbage that is not ini"))
        ck.send_signal(stack, signal.SIGHUP)
        named = wait_for(lambda: "chakongd.conf:3" in log_since(stack, pos))
        assert named, f"the log does not name chakongd.conf:3:\n" \
            f"{log_since(stack, pos)}"
        assert stack.alive()
        assert serving(pb, stack)
        assert reload_count(stack) == before
    finally:
        with open(stack.conf, "w") as f:
            f.write(orig)
    ck.send_signal(stack, signal.SIGHUP)
    assert wait_for(lambda: reload_count(stack) == before + 1), \
        f"reload not counted:\n{log_since(stack, pos)}"
    assert serving(pb, stack)


def test_sighup_keeps_established_connections(pb, stack, channel, health):
    health.Check(pb.health.HealthCheckRequest(), timeout=10)
    before = reload_count(stack)
    with stack.h2() as c:
        st = c.start("/chakong.test.v1.Testing/Sleep", ck.grpc_frame(
            pb.testing.SleepRequest(millis=800).SerializeToString()))
        time.sleep(0.2)
        ck.send_signal(stack, signal.SIGHUP)
        assert wait_for(lambda: reload_count(stack) == before + 1)
        assert c.wait([st], timeout=10)
        assert st.grpc_status == ck.OK, vars(st)
        assert c.goaway is None
    r = health.Check(pb.health.HealthCheckRequest(), timeout=10)
    assert r.status == pb.health.HealthCheckResponse.SERVING


def test_sighup_says_what_needs_a_restart(pb, stack):
    with open(stack.conf) as f:
        orig = f.read()
    pos = log_size(stack)
    before = reload_count(stack)
    try:
        with open(stack.conf, "w") as f:
            f.write(orig.replace("status_listen = 127.0.0.1:0",
                                 "status_listen = 127.0.0.1:1"))
        ck.send_signal(stack, signal.SIGHUP)
        said = wait_for(lambda: re.search(
            r"status_listen.*restart|restart.*status_listen",
            log_since(stack, pos), re.I))
        assert said, f"the log does not say status_listen needs a " \
            f"restart:\n{log_since(stack, pos)}"
        assert stack.status_json()
    finally:
        with open(stack.conf, "w") as f:
            f.write(orig)
        ck.send_signal(stack, signal.SIGHUP)
        wait_for(lambda: reload_count(stack) >= before + 2)
    assert serving(pb, stack)


# --------------------------------------------------------------- SIGTERM

def test_sigterm_completes_in_flight_calls_and_exits_0(pb, fresh_stack):
    s = fresh_stack()
    ch = s.channel()
    h2c = s.h2()
    try:
        stub = pb.testing_grpc.TestingStub(ch)
        # Warm the channel so the calls below go out at once.
        pb.health_grpc.HealthStub(ch).Check(pb.health.HealthCheckRequest(),
                                            timeout=10)
        futs = [stub.Sleep.future(pb.testing.SleepRequest(millis=1500),
                                  timeout=30) for _ in range(5)]
        raw = [h2c.start("/chakong.test.v1.Testing/Sleep", ck.grpc_frame(
            pb.testing.SleepRequest(millis=1500).SerializeToString()))
            for _ in range(3)]
        time.sleep(0.5)            # every call is in the daemon's hands
        t0 = time.monotonic()
        os.kill(s.pid, signal.SIGTERM)
        # While it drains, /readyz says so (load balancers stop sending).
        code = wait_for(lambda: s.http_get("/readyz")[0] == 503, 1.0)
        assert code, "/readyz still 200 while draining"

        for f in futs:
            assert f.result(timeout=30).slept_ms >= 1500
        assert h2c.wait(raw, timeout=30)
        for st in raw:
            assert st.reset is None and st.grpc_status == ck.OK, vars(st)
        assert h2c.goaway is not None, "no GOAWAY on SIGTERM"
        assert h2c.goaway.error_code == ck.H2_NO_ERROR, h2c.goaway

        rc = s.exit_status(timeout=15)
        took = time.monotonic() - t0
        assert rc == 0, f"chakongd exit status {rc}:\n{ck.log_tail(s.log)}"
        assert took < 10, f"exit took {took:.1f} s (grace 10 s)"
    finally:
        h2c.close()
        ch.close()
    # Gone for good: new calls fail.
    ch = s.channel()
    try:
        with pytest.raises(grpc.RpcError):
            pb.health_grpc.HealthStub(ch).Check(
                pb.health.HealthCheckRequest(), timeout=3)
    finally:
        ch.close()


def test_sigterm_when_idle_exits_promptly(pb, fresh_stack):
    s = fresh_stack()
    assert serving(pb, s)
    t0 = time.monotonic()
    os.kill(s.pid, signal.SIGTERM)
    rc = s.exit_status(timeout=15)
    assert rc == 0, f"chakongd exit status {rc}:\n{ck.log_tail(s.log)}"
    assert time.monotonic() - t0 < 3
