"""Helpers for the integration tests that involve the agency simulator
(tests/agencysim): Python messages for the agency protocol and the
simulator's control service, a control client (Lookup, Fault, Counters,
Endpoints, ...), and the expected broker view of what the simulator holds
(to compare a Query's reply field by field).

Everything here runs under Debian's /usr/bin/python3 (python3-grpcio,
python3-protobuf).
"""

import glob
import importlib
import os
import subprocess
import sys
import time
import types

import ck

AGENCY_PROTO = os.path.join(ck.PROTO, "chakong", "agency", "v1")
TEST_PROTO = os.path.join(ck.PROTO, "chakong", "test", "v1")

BANKS = ["icbc", "abc", "boc", "ccb", "bocom", "cmb", "cgb", "psbc"]
REGISTRIES = ["realestate", "vehicle", "household", "enterprise"]

# The broker's source names for the simulated agencies.
BANK_SOURCES = ["bank:" + b for b in BANKS]
REGISTRY_SOURCES = list(REGISTRIES)

# Categories (chakong.v1.Category) by registry source.
CATEGORY_OF = {"realestate": 2, "vehicle": 3, "household": 4,
               "enterprise": 5}
for _s in BANK_SOURCES:
    CATEGORY_OF[_s] = 1

# The subjects every population holds (tests/agencysim/README.md).
ZHANG_SAN = "11010519491231002X"
GREAT_WALL = "91110000600037341L"


def generate_agency_messages(outdir):
    """protoc --python_out for proto/chakong/agency/v1/*.proto and the
    simulator's control service, flat modules (bank_pb2, agencysim_pb2,
    ...) imported from outdir. Service stubs are not needed: every call
    goes through channel.unary_unary with explicit (de)serialisers."""
    files = sorted(glob.glob(os.path.join(AGENCY_PROTO, "*.proto")))
    files.append(os.path.join(TEST_PROTO, "agencysim.proto"))
    cmd = ["protoc", "-I", AGENCY_PROTO, "-I", TEST_PROTO,
           "--python_out=" + outdir] + files
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr}")
    if outdir not in sys.path:
        sys.path.insert(0, outdir)
    ns = types.SimpleNamespace()
    for f in files:
        name = os.path.basename(f)[:-len(".proto")]
        setattr(ns, name, importlib.import_module(name + "_pb2"))
    return ns


def agency_messages():
    """A generator for a pytest fixture: the messages, then the temporary
    directory removed (python keeps the imported modules)."""
    import shutil
    out = ck.mkdtemp("ck-apb-")
    try:
        yield generate_agency_messages(out)
    finally:
        if os.environ.get("CK_KEEP") != "1":
            shutil.rmtree(out, ignore_errors=True)


class Control:
    """A client of the simulator's control service (chakong.test.v1.AgencySim)
    over mutual TLS, with the court's certificate (any chakong identity
    from the CA may use it)."""

    def __init__(self, stack, apb):
        import grpc
        self.apb = apb
        self.stack = stack
        addr = stack.env["CK_SIM_CONTROL"]
        with open(stack.ca, "rb") as f:
            ca = f.read()
        with open(stack.cert, "rb") as f:
            crt = f.read()
        with open(stack.key, "rb") as f:
            key = f.read()
        creds = grpc.ssl_channel_credentials(ca, key, crt)
        self.channel = grpc.secure_channel(
            addr, creds, options=[("grpc.ssl_target_name_override",
                                   "localhost"),
                                  ("grpc.use_local_subchannel_pool", 1)])
        a = apb.agencysim

        def m(name, req, rep):
            return self.channel.unary_unary(
                "/chakong.test.v1.AgencySim/" + name,
                request_serializer=lambda x: x.SerializeToString(),
                response_deserializer=rep.FromString)

        self._lookup = m("Lookup", a.LookupRequest, a.LookupReply)
        self._deposit = m("Deposit", a.DepositRequest, a.DepositReply)
        self._grant = m("Grant", a.GrantRequest, a.GrantReply)
        self._fault = m("Fault", a.FaultRequest, a.FaultReply)
        self._counters = m("Counters", a.CountersRequest, a.CountersReply)
        self._ledger = m("Ledger", a.LedgerRequest, a.LedgerReply)
        self._endpoints = m("Endpoints", a.EndpointsRequest,
                            a.EndpointsReply)

    def close(self):
        self.channel.close()

    def lookup(self, resident_id=None, uscc=None):
        a = self.apb.agencysim
        req = (a.LookupRequest(uscc=uscc) if uscc is not None
               else a.LookupRequest(resident_id=resident_id))
        return self._lookup(req, timeout=10)

    def grant(self, resident_id, endpoint, balance_fen):
        """Give the subject a new account at a bank endpoint; returns the
        new Account."""
        a = self.apb.agencysim
        return self._grant(a.GrantRequest(
            resident_id=resident_id, endpoint=endpoint,
            balance_fen=balance_fen), timeout=10).account

    def endpoints(self):
        return self._endpoints(self.apb.agencysim.EndpointsRequest(),
                               timeout=10)

    def fault(self, endpoint, **spec):
        a = self.apb.agencysim
        return self._fault(a.FaultRequest(endpoint=endpoint,
                                          fault=a.FaultSpec(**spec)),
                           timeout=10)

    def clear(self, endpoint="*"):
        a = self.apb.agencysim
        return self._fault(a.FaultRequest(endpoint=endpoint, clear=True),
                           timeout=10)

    def counters(self, endpoint="*", reset=False):
        a = self.apb.agencysim
        return self._counters(a.CountersRequest(endpoint=endpoint,
                                                reset=reset), timeout=10)

    def calls(self, endpoint, method):
        """How many calls to `method` reached endpoint's handler."""
        for ep in self.counters(endpoint).endpoints:
            if ep.endpoint != endpoint:
                continue
            for mc in ep.methods:
                if mc.method == method:
                    return mc.calls
        return 0

    def endpoint_counters(self, endpoint):
        for ep in self.counters(endpoint).endpoints:
            if ep.endpoint == endpoint:
                return ep
        return None

    def ledger(self, resident_id=None, uscc=None):
        a = self.apb.agencysim
        req = (a.LedgerRequest(uscc=uscc) if uscc is not None
               else a.LedgerRequest(resident_id=resident_id))
        return self._ledger(req, timeout=10)


# ------------------------------------------------------------ expectations

def mask_account(no):
    """The broker's masking: first 4 and last 4 characters, '*' between."""
    if len(no) <= 8:
        return no
    return no[:4] + "*" * (len(no) - 8) + no[-4:]


def _cur(c):
    return c or "CNY"


def expected_encumbrances(encs):
    return [dict(kind=e.kind, court_id=e.court_id,
                 case_number=e.case_number, frozen_fen=e.frozen_fen,
                 queued_fen=e.queued_fen, requested_fen=e.requested_fen,
                 effective_date=e.effective_date,
                 expiry_date=e.expiry_date,
                 queue_position=e.queue_position) for e in encs]


def broker_encumbrances(encs):
    return [dict(kind=e.kind, court_id=e.court_id,
                 case_number=e.case_number, frozen_fen=e.frozen_fen,
                 queued_fen=e.queued_fen, requested_fen=e.requested_fen,
                 effective_date=e.effective_date,
                 expiry_date=e.expiry_date,
                 queue_position=e.queue_position) for e in encs]


def expected_sources(lookup, kind_filter=None):
    """{source: (status, [asset dicts])} that the broker should report for
    the simulator's Lookup reply (status names as in chakong.v1:
    'OK' / 'NOT_FOUND'). Asset dicts hold every field the broker shows."""
    out = {}
    for ev in lookup.endpoints:
        which = ev.WhichOneof("reply")
        if ev.kind == "bank":
            src = "bank:" + ev.endpoint
            r = ev.accounts
            if not r.found:
                out[src] = ("NOT_FOUND", [])
                continue
            assets = []
            for a in r.accounts:
                cur = _cur(a.currency)
                assets.append(dict(
                    category=1, bank_code=r.bank_code,
                    bank_name=r.bank_name,
                    account_masked=mask_account(a.account_no),
                    balance=(a.balance_fen, cur),
                    available=(a.available_fen, cur),
                    frozen=(a.frozen_fen, cur),
                    account_type=a.account_type, branch=a.branch,
                    encumbrances=expected_encumbrances(a.encumbrances)))
            out[src] = ("OK", assets)
        elif ev.kind == "realestate":
            r = ev.properties
            if not r.found:
                out[ev.endpoint] = ("NOT_FOUND", [])
                continue
            out[ev.endpoint] = ("OK", [dict(
                category=2, certificate_no=p.certificate_no,
                address=p.address, area_cm2=p.area_cm2, usage=p.usage,
                share_percent=p.share_percent,
                sealed=len(p.encumbrances) > 0,
                encumbrances=expected_encumbrances(p.encumbrances))
                for p in r.properties])
        elif ev.kind == "vehicle":
            r = ev.vehicles
            if not r.found:
                out[ev.endpoint] = ("NOT_FOUND", [])
                continue
            out[ev.endpoint] = ("OK", [dict(
                category=3, plate=v.plate, vin=v.vin,
                make_model=v.make_model, registered_on=v.registered_on,
                sealed=len(v.encumbrances) > 0,
                encumbrances=expected_encumbrances(v.encumbrances))
                for v in r.vehicles])
        elif ev.kind == "household":
            r = ev.person
            if which != "person" or not r.found:
                out[ev.endpoint] = ("NOT_FOUND", [])
                continue
            out[ev.endpoint] = ("OK", [dict(
                category=4, name=r.name, sex=r.sex, birth_date=r.birth_date,
                registered_address=r.registered_address,
                members=list(r.members), encumbrances=[])])
        elif ev.kind == "enterprise":
            r = ev.enterprise
            if which != "enterprise" or not r.found:
                out[ev.endpoint] = ("NOT_FOUND", [])
                continue
            cap = r.registered_capital
            out[ev.endpoint] = ("OK", [dict(
                category=5, name=r.name, status=r.status,
                legal_representative=r.legal_representative,
                registered_capital=(cap.fen, _cur(cap.currency)),
                shareholders=[s.name for s in r.shareholders],
                registered_address=r.registered_address,
                established_on=r.established_on, encumbrances=[])])
    return out


def _money(m):
    return (m.fen, m.currency)


def broker_asset(a):
    """An asset of the broker's reply as a dict comparable with
    expected_sources' (asset_ref left out)."""
    which = a.WhichOneof("detail")
    encs = broker_encumbrances(a.encumbrances)
    if which == "deposit":
        d = a.deposit
        return dict(category=a.category, bank_code=d.bank_code,
                    bank_name=d.bank_name, account_masked=d.account_masked,
                    balance=_money(d.balance),
                    available=_money(d.available), frozen=_money(d.frozen),
                    account_type=d.account_type, branch=d.branch,
                    encumbrances=encs)
    if which == "real_estate":
        r = a.real_estate
        return dict(category=a.category, certificate_no=r.certificate_no,
                    address=r.address, area_cm2=r.area_cm2, usage=r.usage,
                    share_percent=r.share_percent, sealed=r.sealed,
                    encumbrances=encs)
    if which == "vehicle":
        v = a.vehicle
        return dict(category=a.category, plate=v.plate, vin=v.vin,
                    make_model=v.make_model, registered_on=v.registered_on,
                    sealed=v.sealed, encumbrances=encs)
    if which == "household":
        h = a.household
        return dict(category=a.category, name=h.name, sex=h.sex,
                    birth_date=h.birth_date,
                    registered_address=h.registered_address,
                    members=list(h.members), encumbrances=encs)
    if which == "enterprise":
        e = a.enterprise
        return dict(category=a.category, name=e.name, status=e.status,
                    legal_representative=e.legal_representative,
                    registered_capital=_money(e.registered_capital),
                    shareholders=list(e.shareholders),
                    registered_address=e.registered_address,
                    established_on=e.established_on, encumbrances=encs)
    return dict(category=a.category, detail=which)


STATUS_NAMES = {1: "OK", 2: "NOT_CONFIGURED", 3: "UNAVAILABLE",
                4: "TIMEOUT", 5: "ERROR", 6: "DENIED", 7: "NOT_FOUND"}


def status_name(st):
    return STATUS_NAMES.get(st, f"?{st}")


def by_source(reply):
    """{source: SourceResult}; fails on a source reported twice."""
    out = {}
    for s in reply.sources:
        assert s.source not in out, f"source {s.source} reported twice"
        out[s.source] = s
    return out


def wait_for(pred, timeout, step=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for "
                                 f"{what}")
        time.sleep(step)


# ------------------------------------------------------------ queries

CASE = "(2019)粤01执123号"


def query_req(pb, resident_id=None, uscc=None, name="张三", categories=(),
              case=CASE):
    if uscc is not None:
        d = pb.broker.Debtor(uscc=uscc, name=name)
    else:
        d = pb.broker.Debtor(resident_id=resident_id, name=name)
    return pb.broker.QueryRequest(
        case=pb.broker.CaseRef(case_number=case, claim_amount_fen=10000000,
                               officer_id="GZ0001"),
        debtor=d, categories=list(categories))


def compare(pb, reply, lookup, label):
    """Every difference between the broker's reply and the simulator's
    Lookup, as a list of strings (empty = equal)."""
    want = expected_sources(lookup)
    got = by_source(reply)
    diffs = []
    if sorted(got) != sorted(want):
        diffs.append(f"{label}: sources {sorted(got)} != {sorted(want)}")
    for src, (status, assets) in want.items():
        r = got.get(src)
        if r is None:
            continue
        if status_name(r.status) != status:
            diffs.append(f"{label}: {src}: status "
                         f"{status_name(r.status)} ({r.message!r}), "
                         f"simulator says {status}")
            continue
        if r.category != CATEGORY_OF[src]:
            diffs.append(f"{label}: {src}: category {r.category}")
        if r.from_cache:
            diffs.append(f"{label}: {src}: from_cache with max_age_s 0")
        if r.fetched_at <= 0:
            diffs.append(f"{label}: {src}: no fetched_at")
        mine = [broker_asset(a) for a in r.assets]
        if mine != assets:
            diffs.append(f"{label}: {src}: assets differ:\n"
                         f"  broker    {mine}\n  simulator {assets}")
        for a in r.assets:
            if a.category in (1, 2, 3) and not a.asset_ref:
                diffs.append(f"{label}: {src}: a freezable asset without "
                             f"asset_ref")
    return diffs


def agency_channel(stack, address):
    """A channel to a simulated agency endpoint as the broker (the agency
    methods answer only role broker): the broker's own certificate."""
    import grpc
    with open(stack.ca, "rb") as f:
        ca = f.read()
    with open(stack.pki_file("broker.crt"), "rb") as f:
        crt = f.read()
    with open(stack.pki_file("broker.key"), "rb") as f:
        key = f.read()
    return grpc.secure_channel(
        address, grpc.ssl_channel_credentials(ca, key, crt),
        options=[("grpc.ssl_target_name_override", "localhost"),
                 ("grpc.use_local_subchannel_pool", 1)])


def bank_freeze(channel, apb, **kw):
    """chakong.agency.v1.Bank/Freeze straight at a simulated bank."""
    call = channel.unary_unary(
        "/chakong.agency.v1.Bank/Freeze",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=apb.bank.FreezeReply.FromString)
    return call(apb.bank.FreezeRequest(**kw), timeout=10)
