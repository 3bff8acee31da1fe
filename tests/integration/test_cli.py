"""chakongctl against the stack: connection from the CK_* environment
(stack.env), readable and --json output, exit code = gRPC status."""

import json
import os
import subprocess

QUERY = ["query", "--id", "11010519491231002X", "--name", "张三",
         "--case", "(2019)粤01执123号", "--claim", "150000.00",
         "--officer", "GZ0001"]


def ctl(stack, *args, env=None):
    exe = os.path.join(stack.build, "broker", "chakongctl")
    e = dict(os.environ)
    e.update({k: v for k, v in stack.env.items() if k.startswith("CK_")})
    e.update(env or {})
    return subprocess.run([exe, *args], capture_output=True, text=True,
                          env=e, timeout=30, stdin=subprocess.DEVNULL)


def test_health(stack):
    r = ctl(stack, "health")
    assert r.returncode == 0, r.stderr
    assert "SERVING" in r.stdout


def test_query_table(stack):
    r = ctl(stack, *QUERY)
    assert r.returncode == 0, r.stderr
    for cat in ("deposit", "real-estate", "vehicle", "household",
                "enterprise"):
        assert cat in r.stdout, r.stdout


def test_query_json(stack):
    r = ctl(stack, *QUERY, "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    # 8 banks and 4 registries in the stack; 张三 has ICBC, CCB and CMB
    # accounts, a flat and a car (tests/agencysim's demo subject)
    assert len(doc["sources"]) == 12, doc
    by = {s["source"]: s for s in doc["sources"]}
    assert by["bank:icbc"]["status"] == "OK"
    assert by["bank:abc"]["status"] == "NOT_FOUND"
    icbc = by["bank:icbc"]["assets"]
    assert icbc and icbc[0]["asset_ref"], icbc
    assert by["vehicle"]["assets"][0]["vehicle"]["plate"] == "粤A12345"


def test_query_categories(stack):
    r = ctl(stack, *QUERY, "--category", "deposit,vehicle", "--json")
    assert r.returncode == 0, r.stderr
    cats = sorted({s["category"] for s in json.loads(r.stdout)["sources"]})
    assert cats == ["deposit", "vehicle"], cats


def test_invalid_id_exit_code_is_grpc_status(stack):
    args = list(QUERY)
    args[args.index("--id") + 1] = "110105194912310023"
    r = ctl(stack, *args)
    assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)
    assert "debtor.resident_id" in r.stderr
    assert "110105194912310023" not in r.stderr + r.stdout


def test_flags_override_environment(stack):
    r = ctl(stack, "--server", stack.grpc, "--cert", stack.partner_cert,
            "--key", stack.partner_key, "health",
            env={"CK_GRPC": "127.0.0.1:1"})
    assert r.returncode == 0, r.stderr


def test_unreachable_server_is_unavailable(stack):
    r = ctl(stack, "health", env={"CK_GRPC": "127.0.0.1:1"})
    assert r.returncode == 14, (r.returncode, r.stderr)


def test_usage_error(stack):
    r = ctl(stack, "query", "--name", "张三")
    assert r.returncode == 64, (r.returncode, r.stderr)
