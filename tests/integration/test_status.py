"""The operators' status endpoint: /healthz, /readyz, /status (JSON),
/metrics (Prometheus text, read with prometheus_client's own parser)."""

import json

import pytest


@pytest.fixture(scope="module")
def broker_calls(pb, health):
    """A few calls for /status and /metrics to count."""
    for _ in range(3):
        health.Check(pb.health.HealthCheckRequest(), timeout=10)


def test_healthz_and_readyz(stack):
    for path in ("/healthz", "/readyz"):
        code, _, body = stack.http_get(path)
        assert code == 200, (path, body)


def test_unknown_path_404(stack):
    code, _, _ = stack.http_get("/no-such-page")
    assert code == 404


def test_human_page(stack):
    code, ctype, body = stack.http_get("/")
    assert code == 200
    assert ctype.startswith("text/")
    assert body.strip()


def test_status_json(pb, stack, broker_calls):
    code, ctype, body = stack.http_get("/status")
    assert code == 200, body
    assert "json" in ctype, ctype
    doc = json.loads(body)
    # The documented keys (README, Operations).
    for key, kind in [("version", str), ("uptime_s", int),
                      ("listeners", dict), ("open_connections", int),
                      ("inflight_calls", int), ("reloads", int),
                      ("reload_failures", int), ("ready", bool),
                      ("draining", bool), ("methods", dict)]:
        assert isinstance(doc.get(key), kind), f"{key} in {doc}"
    assert doc["version"]
    assert doc["ready"] is True and doc["draining"] is False
    # The bound addresses, not the configured port 0.
    assert doc["listeners"].get("grpc") == stack.grpc, doc["listeners"]
    assert doc["listeners"].get("status") == stack.status, doc["listeners"]
    hc = doc["methods"].get("/grpc.health.v1.Health/Check")
    assert hc and hc["count"] >= 3 and hc["codes"].get("OK", 0) >= 3, hc
    lat = hc["latency_ms"]
    assert all(isinstance(lat[k], (int, float)) for k in
               ("p50", "p90", "p99", "max")), lat
    assert lat["p50"] <= lat["p99"] <= lat["max"], lat


def test_metrics_parse(stack, broker_calls):
    code, ctype, _ = stack.http_get("/metrics")
    assert code == 200
    assert ctype.startswith("text/plain"), ctype
    fams = stack.metrics()
    names = {f.name for f in fams}
    assert any(f.type == "counter" for f in fams), names
    assert any(f.type == "histogram" for f in fams), names
    calls = [s for f in fams for s in f.samples
             if s.name == "chakong_grpc_calls_total"]
    assert calls, names
    assert all({"method", "code"} <= set(s.labels) for s in calls)
    ok = stack.metric_value("chakong_grpc_calls_total",
                            method="/grpc.health.v1.Health/Check", code="OK")
    assert ok >= 3, calls
    # A latency histogram per method, with buckets.
    buckets = [s for f in fams if f.type == "histogram"
               for s in f.samples if s.name.endswith("_bucket")
               and s.labels.get("method") == "/grpc.health.v1.Health/Check"]
    assert buckets, "no latency histogram for Health/Check"


