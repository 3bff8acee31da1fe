"""chakongctl freeze, extend, release, deduct and claim against the stack
(the agency simulator behind the real broker): readable and --json output,
replay by request id, base64 refs pasted back in, exit code = gRPC status,
64 for a bad command line.

Each test acts under a case number of its own, so the claim cap of one
test's case never meets another's."""

import base64
import json
import os
import random
import re
import subprocess

import pytest

DEBTOR = ["--id", "11010519491231002X", "--name", "张三"]
QUERY = ["query", *DEBTOR, "--case", "(2019)粤01执123号",
         "--claim", "150000.00", "--officer", "GZ0001"]
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def ctl(stack, *args, env=None):
    exe = os.path.join(stack.build, "broker", "chakongctl")
    e = dict(os.environ)
    e.update({k: v for k, v in stack.env.items() if k.startswith("CK_")})
    e.update(env or {})
    return subprocess.run([exe, *args], capture_output=True, text=True,
                          env=e, timeout=60, stdin=subprocess.DEVNULL)


def ok(r):
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    return r


def new_case():
    return f"(2025)粤01执{random.randrange(10**8, 10**9)}号"


def case_args(case, claim=True):
    a = [*DEBTOR, "--case", case, "--officer", "GZ0001"]
    return a + ["--claim", "150000.00"] if claim else a


def fields(out):
    """The readable output's "label  value" lines as a dict (labels are
    padded to 12 columns; a line with a blank label continues the one
    before it)."""
    d, last = {}, None
    for line in out.splitlines():
        label, value = line[:12].strip(), line[13:]
        if label:
            d[label], last = value, label
        elif last is not None:
            d[last] += "\n" + value
    return d


def deposit_ref(stack, bank="bank:icbc"):
    """A fresh asset_ref of 张三's first account at `bank`, base64."""
    doc = json.loads(ok(ctl(stack, *QUERY, "--category", "deposit",
                            "--json")).stdout)
    src = {s["source"]: s for s in doc["sources"]}[bank]
    assert src["status"] == "OK", src
    return src["assets"][0]["asset_ref"]


def encumbrances(stack, case, bank="bank:icbc"):
    """What a live Query shows `case` holding on 张三's account."""
    doc = json.loads(ok(ctl(stack, *QUERY, "--category", "deposit",
                            "--json")).stdout)
    src = {s["source"]: s for s in doc["sources"]}[bank]
    return [e for e in src["assets"][0]["encumbrances"]
            if e["case_number"] == case]


def freeze_args(case, ref, amount="100.00", days="30"):
    return ["freeze", *case_args(case), "--asset-ref", ref,
            "--document", case + "之一", "--days", days,
            "--amount", amount]


# ------------------------------------------------------------------ query

def test_query_table_prints_asset_refs(stack):
    out = ok(ctl(stack, *QUERY)).stdout
    lines = out.splitlines()
    refs = [i for i, l in enumerate(lines)
            if l.startswith("      asset_ref ")]
    assert refs, out
    for i in refs:
        ref = lines[i].split()[1]
        assert base64.b64decode(ref, validate=True), lines[i]
        # under the asset's own line
        assert lines[i - 1].startswith("    "), lines[i - 1:i + 1]
    deposits = [i for i, l in enumerate(lines)
                if l.startswith("    deposit ")]
    assert deposits and all(lines[i + 1].startswith("      asset_ref ")
                            for i in deposits), out


def table_ref(out, source):
    """The asset_ref printed under `source`'s first asset in a table."""
    lines = out.splitlines()
    i = next(i for i, l in enumerate(lines) if l.startswith(source + " "))
    assert lines[i + 2].startswith("      asset_ref "), lines[i:i + 3]
    return lines[i + 2].split()[1]


def test_ref_from_query_table_freezes(stack):
    """The table's asset_ref, pasted as is, is one Freeze accepts."""
    out = ok(ctl(stack, *QUERY, "--category", "deposit")).stdout
    case = new_case()
    r = ok(ctl(stack, *freeze_args(case, table_ref(out, "bank:icbc"),
                                   "1.00")))
    f = fields(r.stdout)
    assert f["outcome"] == "DONE", r.stdout


def test_seal_vehicle_from_table(stack):
    """A seal has no amount: no frozen or queued lines, but a period and
    a freeze ref that release takes."""
    out = ok(ctl(stack, *QUERY, "--category", "vehicle")).stdout
    case = new_case()
    r = ok(ctl(stack, "freeze", *case_args(case),
               "--asset-ref", table_ref(out, "vehicle"),
               "--document", case + "之一", "--days", "700"))
    f = fields(r.stdout)
    assert f["outcome"] == "DONE", r.stdout
    assert "frozen" not in f and "queued" not in f, r.stdout
    assert DATE.match(f["effective"]) and DATE.match(f["expiry"]), f
    rel = ok(ctl(stack, "release", *case_args(case),
                 "--freeze-ref", f["freeze ref"],
                 "--document", case + "之二"))
    assert fields(rel.stdout)["outcome"] == "DONE", rel.stdout


# ------------------------------------------- freeze, extend, deduct, release

def test_freeze_extend_deduct_release(stack):
    case = new_case()
    rid = f"cli-{random.getrandbits(64):016x}"
    args = [*freeze_args(case, deposit_ref(stack)), "--request-id", rid]

    first = ok(ctl(stack, *args))
    f = fields(first.stdout)
    assert f["request id"] == rid, first.stdout
    assert f["outcome"] == "DONE", first.stdout
    assert f["frozen"] == "100.00 CNY", first.stdout
    assert f["queued"] == "0.00 CNY", first.stdout
    assert DATE.match(f["effective"]) and DATE.match(f["expiry"]), f
    assert f["expiry"] > f["effective"], f
    assert "queue" not in f and "reason" not in f, f
    fref = f["freeze ref"]
    assert base64.b64decode(fref, validate=True)

    # The same request id and arguments: the recorded answer, word for
    # word, and no second freeze.
    again = ok(ctl(stack, *args))
    assert again.stdout == first.stdout
    assert [(e["frozen_fen"], e["queued_fen"])
            for e in encumbrances(stack, case)] == [(10000, 0)]

    ext = ok(ctl(stack, "extend", *case_args(case, claim=False),
                 "--freeze-ref", fref, "--document", case + "之二",
                 "--days", "30"))
    e = fields(ext.stdout)
    assert e["outcome"] == "DONE", ext.stdout
    assert DATE.match(e["expiry"]) and e["expiry"] > f["expiry"], (f, e)
    assert e["request id"].startswith("ctl-"), ext.stdout

    ded = ok(ctl(stack, "deduct", *case_args(case), "--freeze-ref", fref,
                 "--document", case + "之三", "--amount", "10.50"))
    d = fields(ded.stdout)
    assert d["outcome"] == "DONE", ded.stdout
    assert d["deducted"] == "10.50 CNY", ded.stdout
    assert d["transfer id"] not in ("", "-"), ded.stdout

    rel = ok(ctl(stack, "release", *case_args(case), "--freeze-ref", fref,
                 "--document", case + "之四"))
    r = fields(rel.stdout)
    assert r["outcome"] == "DONE", rel.stdout
    assert set(r) == {"request id", "outcome"}, rel.stdout
    assert encumbrances(stack, case) == []


def test_freeze_json_generated_request_id(stack):
    case = new_case()
    args = freeze_args(case, deposit_ref(stack), "200.00")
    first = ok(ctl(stack, *args, "--json"))
    doc = json.loads(first.stdout)
    rid = doc["request_id"]
    assert re.fullmatch(r"ctl-[0-9a-f]{24}", rid), doc
    assert doc["outcome"] == "DONE", doc
    assert (doc["frozen_fen"], doc["queued_fen"], doc["currency"]) == \
        (20000, 0, "CNY"), doc
    assert DATE.match(doc["effective_date"]), doc
    assert DATE.match(doc["expiry_date"]), doc
    assert doc["queue_position"] == 0 and doc["reason"] == "", doc

    # Asking again with the printed id gives the same reply.
    again = ok(ctl(stack, *args, "--json", "--request-id", rid))
    assert json.loads(again.stdout) == doc

    # A new id is a new freeze, with a freeze_ref of its own.
    other = json.loads(ok(ctl(stack, *args, "--json")).stdout)
    assert other["request_id"] != rid
    assert other["freeze_ref"] != doc["freeze_ref"]

    # The ref as other tools write it: URL-safe alphabet, no padding.
    raw = base64.b64decode(doc["freeze_ref"])
    pasted = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    rel = json.loads(ok(ctl(stack, "release", *case_args(case),
                            "--freeze-ref", pasted,
                            "--document", case + "之二",
                            "--json")).stdout)
    assert rel["outcome"] == "DONE" and rel["reason"] == "", rel
    assert rel["request_id"].startswith("ctl-"), rel

    ded = json.loads(ok(ctl(stack, "deduct", *case_args(case),
                            "--freeze-ref", other["freeze_ref"],
                            "--document", case + "之三", "--amount", "0.01",
                            "--json")).stdout)
    assert ded["outcome"] == "DONE", ded
    assert (ded["deducted_fen"], ded["currency"]) == (1, "CNY"), ded
    assert ded["transfer_id"], ded

    ext = json.loads(ok(ctl(stack, "extend", *case_args(case),
                            "--freeze-ref", other["freeze_ref"],
                            "--document", case + "之四", "--days", "10",
                            "--json")).stdout)
    assert ext["outcome"] == "DONE", ext
    assert ext["expiry_date"] > other["expiry_date"], (other, ext)


def test_changed_arguments_same_request_id(stack):
    case = new_case()
    rid = f"cli-{random.getrandbits(64):016x}"
    ref = deposit_ref(stack)
    ok(ctl(stack, *freeze_args(case, ref, "5.00"), "--request-id", rid))
    r = ctl(stack, *freeze_args(case, ref, "6.00"), "--request-id", rid)
    assert r.returncode == 6, (r.returncode, r.stdout, r.stderr)  # ALREADY_EXISTS
    assert "ALREADY_EXISTS" in r.stderr and r.stdout == ""


# ------------------------------------------------------------------ claim

def test_claim(stack):
    case = new_case()
    base = ["claim", "--case", case, "--officer", "GZ0001",
            "--document", case + "之一", "--reason", "变更申请"]
    rid = f"cli-{random.getrandbits(64):016x}"
    first = ok(ctl(stack, *base, "--amount", "200000.00",
                   "--request-id", rid))
    c = fields(first.stdout)
    assert c == {"request id": rid, "old claim": "0.00 CNY",
                 "new claim": "200000.00 CNY"}, first.stdout

    second = json.loads(ok(ctl(stack, *base, "--amount", "250000.50",
                               "--json")).stdout)
    assert (second["old_claim_fen"], second["new_claim_fen"],
            second["currency"]) == (20000000, 25000050, "CNY"), second
    assert second["request_id"].startswith("ctl-"), second

    # The first request again: its recorded answer, no second change.
    again = ok(ctl(stack, *base, "--amount", "200000.00",
                   "--request-id", rid))
    assert again.stdout == first.stdout


# ------------------------------------------------- refusals, exit codes

@pytest.mark.parametrize("cmd", ["extend", "release", "deduct"])
def test_bad_freeze_ref_is_invalid_argument(stack, cmd):
    case = new_case()
    forged = base64.b64encode(b"not a freeze reference").decode()
    extra = {"extend": ["--days", "30"], "release": [],
             "deduct": ["--amount", "1.00"]}[cmd]
    r = ctl(stack, cmd, *case_args(case), "--freeze-ref", forged,
            "--document", case + "之一", *extra)
    assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)
    assert "INVALID_ARGUMENT" in r.stderr and "freeze_ref" in r.stderr
    assert r.stdout == ""
    # Refused before anything was journaled: no request id to keep.
    assert "ctl-" not in r.stderr, r.stderr


def test_unknown_outcome_prints_generated_request_id(stack):
    """When the call may have acted (here: no answer at all), the
    generated request id is on stderr, to ask again without acting
    twice."""
    case = new_case()
    r = ctl(stack, "release", *case_args(case), "--freeze-ref", GOOD_REF,
            "--document", case + "之一", env={"CK_GRPC": "127.0.0.1:1"})
    assert r.returncode == 14, (r.returncode, r.stdout, r.stderr)
    assert re.search(r"--request-id ctl-[0-9a-f]{24}\b", r.stderr), r.stderr


def test_bad_asset_ref_is_invalid_argument(stack):
    case = new_case()
    forged = base64.b64encode(b"\x01" * 40).decode()
    r = ctl(stack, *freeze_args(case, forged), "--request-id", "cli-bad")
    assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)
    assert "asset_ref" in r.stderr
    assert "cli-bad" not in r.stderr  # the user's own id needs no reminder


def test_rule_refusal_is_failed_precondition(stack):
    """Over a year on a deposit: the broker's rule, status 9."""
    case = new_case()
    r = ctl(stack, *freeze_args(case, deposit_ref(stack), days="400"))
    assert r.returncode == 9, (r.returncode, r.stdout, r.stderr)
    assert "FAILED_PRECONDITION" in r.stderr


GOOD_REF = base64.b64encode(b"x" * 40).decode()
CASE = "(2025)粤01执1号"
USAGE = [
    # what is missing or malformed, and the message naming it
    (["freeze", *case_args(CASE), "--asset-ref", GOOD_REF, "--days", "30"],
     "--document"),
    (["freeze", *case_args(CASE), "--document", "d", "--days", "30"],
     "--asset-ref"),
    (["freeze", *case_args(CASE), "--asset-ref", GOOD_REF,
      "--document", "d"], "--days"),
    (["freeze", *case_args(CASE), "--asset-ref", "not base64!",
      "--document", "d", "--days", "30"], "--asset-ref"),
    (["freeze", *case_args(CASE), "--asset-ref", GOOD_REF + "=",
      "--document", "d", "--days", "30"], "--asset-ref"),
    (["freeze", *case_args(CASE), "--asset-ref", GOOD_REF,
      "--document", "d", "--days", "0"], "--days"),
    (["freeze", *case_args(CASE), "--asset-ref", GOOD_REF,
      "--document", "d", "--days", "30", "--amount", "12.345"], "--amount"),
    (["freeze", *case_args(CASE), "--asset-ref", GOOD_REF,
      "--document", "d", "--days", "30", "--currency", "cny"], "--currency"),
    (["freeze", "--name", "张三", "--case", CASE, "--officer", "GZ0001",
      "--asset-ref", GOOD_REF, "--document", "d", "--days", "30"], "--id"),
    (["extend", *case_args(CASE), "--freeze-ref", GOOD_REF,
      "--document", "d"], "--days"),
    (["extend", *case_args(CASE), "--freeze-ref", "QQ=", "--document", "d",
      "--days", "1"], "--freeze-ref"),
    (["release", *case_args(CASE), "--document", "d"], "--freeze-ref"),
    # bits set past the last byte: damaged in copying, not guessed at
    (["release", *case_args(CASE), "--freeze-ref", "QR==",
      "--document", "d"], "--freeze-ref"),
    (["release", *case_args(CASE), "--freeze-ref", GOOD_REF[:-4] + " " +
      GOOD_REF[-4:], "--document", "d"], "--freeze-ref"),
    (["release", *case_args(CASE), "--freeze-ref", GOOD_REF,
      "--document", "d", "--days", "3"], "days"),
    (["deduct", *case_args(CASE), "--freeze-ref", GOOD_REF,
      "--document", "d"], "--amount"),
    (["claim", "--case", CASE, "--officer", "GZ0001", "--amount", "1.00",
      "--document", "d"], "--reason"),
    (["claim", "--case", CASE, "--officer", "GZ0001", "--amount", "1.00",
      "--document", "d", "--reason", "r", *DEBTOR], "id"),
    (["claim", "--case", CASE, "--officer", "GZ0001", "--document", "d",
      "--reason", "r", "stray"], "stray"),
]


@pytest.mark.parametrize("args,names", USAGE,
                         ids=[f"{a[0]}-{i}" for i, (a, _) in
                              enumerate(USAGE)])
def test_usage_errors(stack, args, names):
    r = ctl(stack, *args)
    assert r.returncode == 64, (r.returncode, r.stdout, r.stderr)
    assert names in r.stderr, r.stderr
    assert r.stdout == ""


@pytest.mark.parametrize("cmd", ["freeze", "extend", "release", "deduct",
                                 "claim"])
def test_help(stack, cmd):
    r = ok(ctl(stack, cmd, "--help"))
    assert r.stdout.startswith(f"usage: chakongctl {cmd}")
    assert "--request-id" in r.stdout and "PENDING" in r.stdout
