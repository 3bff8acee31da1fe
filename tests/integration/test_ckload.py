"""ckload, the load generator (tests/bench/ckload.c), against the session's
daemon: it counts every call by grpc-status, reports through --json with
the documented keys, and exits 0 only when every call was OK. Short runs:
this checks the tool, it measures nothing."""

import json
import os
import re
import subprocess

import pytest

# The keys tests/bench/ckload.c documents for --json.
JSON_KEYS = {
    "server", "method", "connections", "streams", "warmup_s", "duration_s",
    "calls", "ok", "failed", "abandoned", "reconnects", "calls_per_s",
    "aborted", "status", "errors", "latency_ms", "client_cpu_s",
    "client_cpu_us_per_call", "clk_tck", "servers",
}
LATENCY_KEYS = {"min", "mean", "p50", "p90", "p99", "p99_9", "max"}
SERVER_KEYS = {"pid", "cpu_s", "cpu_us_per_call", "exited"}

VALID_ID = "11010519491231002X"
BAD_ID = "110105194912310021"      # wrong check character


@pytest.fixture(scope="module")
def ckload(stack):
    exe = os.path.join(stack.build, "tests", "bench", "ckload")
    assert os.access(exe, os.X_OK), f"{exe} is not built"
    return exe


def run(exe, args, env=None, timeout=60):
    return subprocess.run([exe] + args, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL,
                          env=env)


def conn_args(stack):
    return ["--server", stack.grpc, "--ca", stack.ca, "--cert", stack.cert,
            "--key", stack.key]


def query_args(ident):
    return ["--query-id", ident, "--query-name", "张三",
            "--query-case", "(2019)粤01执123号", "--query-officer", "GZ0001"]


def test_health_report_from_env(stack, ckload):
    """The human report, with the connection taken from CK_* variables."""
    env = dict(os.environ, CK_GRPC=stack.grpc, CK_CA=stack.ca,
               CK_CERT=stack.cert, CK_KEY=stack.key)
    r = run(ckload, ["--health", "-c", "2", "-m", "8", "-d", "1",
                     "--pid", str(stack.pid)], env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    m = re.search(r"^\s*calls\s+(\d+) \(", r.stdout, re.M)
    assert m and int(m.group(1)) > 0, r.stdout
    statuses = re.findall(r"^\s*(?:status)?\s+([A-Z_]+) (\d+)", r.stdout,
                          re.M)
    assert statuses == [("OK", m.group(1))], r.stdout
    assert re.search(r"latency ms\s+min [\d.]+\s+p50 [\d.]+\s+p90 [\d.]+"
                     r"\s+p99 [\d.]+\s+p99\.9 [\d.]+\s+max [\d.]+",
                     r.stdout), r.stdout
    assert f"pid {stack.pid} " in r.stdout, r.stdout


def test_health_json(stack, ckload):
    r = run(ckload, conn_args(stack) + [
        "--health", "-c", "2", "-m", "8", "-d", "1", "--json",
        "--pid", str(stack.pid)])
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert JSON_KEYS <= set(out), sorted(JSON_KEYS - set(out))
    assert out["method"] == "/grpc.health.v1.Health/Check"
    assert (out["connections"], out["streams"]) == (2, 8)
    assert out["calls"] > 0
    assert out["status"] == {"OK": out["calls"]}
    assert out["ok"] == out["calls"] and out["failed"] == 0
    assert out["abandoned"] == 0 and out["aborted"] is None
    assert out["errors"] == {}
    assert 0.9 <= out["duration_s"] < 5
    assert out["calls_per_s"] > 0
    lat = out["latency_ms"]
    assert LATENCY_KEYS <= set(lat)
    assert (lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"]
            <= lat["p99_9"] <= lat["max"])
    assert out["client_cpu_us_per_call"] > 0
    [srv] = out["servers"]
    assert SERVER_KEYS <= set(srv)
    assert srv["pid"] == stack.pid and srv["exited"] is False
    assert srv["cpu_s"] >= 0 and srv["cpu_us_per_call"] >= 0


def test_invalid_query_counted(stack, ckload):
    """Every call answered INVALID_ARGUMENT: counted as such, exit 1."""
    r = run(ckload, conn_args(stack) + query_args(BAD_ID) + [
        "-c", "2", "-m", "8", "-n", "300", "--json"])
    assert r.returncode == 1, r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert out["method"] == "/chakong.v1.AssetBroker/Query"
    assert out["calls"] == 300
    assert out["status"] == {"INVALID_ARGUMENT": 300}
    assert out["ok"] == 0 and out["failed"] == 300
    assert "resident_id" in out["errors"]["INVALID_ARGUMENT"]
    assert out["latency_ms"]["max"] > 0


def test_valid_query_ok(stack, ckload):
    r = run(ckload, conn_args(stack) + query_args(VALID_ID) + [
        "-c", "1", "-m", "4", "-n", "200", "--json"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["status"] == {"OK": 200}


@pytest.mark.parametrize("args", [
    ["--health", "-c", "0"],
    ["--health", "--query-id", VALID_ID],
    ["--data", "/dev/null"],
    ["--health", "-d", "soon"],
    ["--health", "--pid", "0"],
])
def test_usage_errors(stack, ckload, args):
    r = run(ckload, conn_args(stack) + args, timeout=10)
    assert r.returncode == 64, r.stdout + r.stderr
    assert r.stdout == ""
