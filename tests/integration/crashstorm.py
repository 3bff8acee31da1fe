"""The crash test's machinery (tests/integration/test_crash.py): a storm of
Freeze and Deduct calls with unique request_ids against a stack, each one
retried with the SAME request_id until the broker gives a final outcome,
while a killer SIGKILLs chakongd (at random moments and at the test build's
named crash points) or the agency simulator and restarts it
(`tests/stack.sh restart`); then the simulator's ledger is compared with
what the broker acknowledged.

Everything here runs under Debian's /usr/bin/python3 (python3-grpcio,
python3-protobuf) on 127.0.0.1 only.
"""

import collections
import os
import random
import re
import subprocess
import threading
import time

import grpc

import ck
import sim

CRASH_POINTS = ("after_intent_sync", "after_send", "before_outcome")

# Outcomes (chakong.v1.ActionOutcome).
DONE, PARTIAL, QUEUED, REJECTED, PENDING = 1, 2, 3, 4, 5
FINAL = {DONE: "DONE", PARTIAL: "PARTIAL", QUEUED: "QUEUED",
         REJECTED: "REJECTED"}

# Errors that leave the request's fate to a retry with the same request_id:
# the broker is down or restarting (connection refused or reset, the
# stream cut), the agency was not reached ("nothing was done"), the
# journal not writable, the caller's own deadline.
RETRY_CODES = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
               grpc.StatusCode.CANCELLED, grpc.StatusCode.RESOURCE_EXHAUSTED,
               grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL,
               grpc.StatusCode.ABORTED}

# A deduction on a freeze the broker acknowledged but whose outcome its
# journal has not recorded yet (killed between the reply and the outcome's
# commit; the resolver records it after the restart) gets UNAVAILABLE with
# this; nothing is stored for it, so the same request_id is tried again.
NOT_YET_ACTIVE = "still being recorded"

CHANNEL_OPTS = [
    ("grpc.enable_retries", 0),
    ("grpc.initial_reconnect_backoff_ms", 50),
    ("grpc.max_reconnect_backoff_ms", 250),
]


class Counts:
    """Thread-safe named counters."""

    def __init__(self):
        self._lock = threading.Lock()
        self.c = collections.Counter()

    def add(self, key, n=1):
        with self._lock:
            self.c[key] += n

    def __getitem__(self, key):
        with self._lock:
            return self.c[key]

    def snapshot(self):
        with self._lock:
            return dict(self.c)


class Account:
    def __init__(self, debtor, name, endpoint, account_no, balance, ref):
        self.debtor = debtor          # resident_id
        self.name = name
        self.endpoint = endpoint      # "icbc"
        self.source = "bank:" + endpoint
        self.account_no = account_no
        self.balance = balance        # available at the start, fen
        self.budget = balance // 2    # what the storm may freeze
        self.ref = ref                # asset_ref from the broker's Query
        self.lock = threading.Lock()

    def take(self, amount):
        with self.lock:
            if amount > self.budget:
                return False
            self.budget -= amount
            return True

    def __repr__(self):
        return f"{self.source}:{sim.mask_account(self.account_no)}"


class Req:
    """One action the storm asked for, and what the broker said."""

    __slots__ = ("kind", "rid", "case", "claim", "account", "amount",
                 "parent", "msg", "outcome", "reply", "calls", "pending",
                 "refused", "error", "t_first", "t_final")

    def __init__(self, kind, rid, case, claim, account, amount, parent=None):
        self.kind, self.rid, self.case, self.claim = kind, rid, case, claim
        self.account, self.amount, self.parent = account, amount, parent
        self.msg = None
        self.outcome = None           # a FINAL key, or "REFUSED"
        self.reply = None
        self.calls = 0
        self.pending = 0              # PENDING replies seen
        self.refused = 0              # NOT_YET_ACTIVE refusals seen
        self.error = None             # (code, details) of a wrong answer
        self.t_first = self.t_final = None

    def __repr__(self):
        return (f"{self.kind} {self.rid} case={self.case} {self.account} "
                f"amount={self.amount} outcome={self.outcome}")


def patient(fn, *args, tries=6, timeout=2.0, **kw):
    """A control or status call that survives a restarting peer and the
    first call on a fresh connection not being answered (seen with
    grpcio against chakongd and agencysim: the request stays unread
    until the client sends more): short deadlines, a few tries."""
    for i in range(tries):
        try:
            return fn(*args, timeout=timeout, **kw)
        except grpc.RpcError as e:
            if e.code() not in RETRY_CODES or i == tries - 1:
                raise
            time.sleep(0.1)


class Control(sim.Control):
    """sim.Control with patient calls (the simulator restarts under the
    storm; see patient())."""

    def lookup(self, resident_id=None, uscc=None):
        a = self.apb.agencysim
        req = (a.LookupRequest(uscc=uscc) if uscc is not None
               else a.LookupRequest(resident_id=resident_id))
        return patient(self._lookup, req)

    def endpoints(self):
        return patient(self._endpoints, self.apb.agencysim.EndpointsRequest())

    def counters(self, endpoint="*", reset=False):
        a = self.apb.agencysim
        return patient(self._counters, a.CountersRequest(endpoint=endpoint,
                                                          reset=reset))

    def ledger(self, resident_id=None, uscc=None):
        a = self.apb.agencysim
        req = (a.LedgerRequest(uscc=uscc) if uscc is not None
               else a.LedgerRequest(resident_id=resident_id))
        return patient(self._ledger, req)


def case_number(serial):
    return f"(2024)粤01执{serial}号"


# ------------------------------------------------------------ the stack

def restart(stack, what, crashpoint=None, skip=0, timeout=60):
    """tests/stack.sh restart DIR what; returns (ok, new pid or None,
    output). With a crash point, chakongd SIGKILLs itself the first time it
    passes there (after `skip` passes) -- possibly while it starts."""
    env = dict(os.environ, CK_BUILD=stack.build)
    env.pop("CK_CRASHPOINT", None)
    env.pop("CK_CRASHPOINT_SKIP", None)
    if crashpoint:
        env["CK_CRASHPOINT"] = crashpoint
        env["CK_CRASHPOINT_SKIP"] = str(skip)
    r = subprocess.run([ck.STACK_SH, "restart", stack.dir, what],
                       capture_output=True, text=True, timeout=timeout,
                       env=env, stdin=subprocess.DEVNULL)
    out = r.stdout + r.stderr
    m = re.search(r"restarted \S+ in .*: pid=(\d+)", r.stdout)
    return r.returncode == 0, int(m.group(1)) if m else None, out


def exit_file(stack, what):
    return os.path.join(stack.dir, f"{what}.exit")


def exited(stack, what):
    """The supervisor recorded the process's exit status."""
    try:
        with open(exit_file(stack, what)) as f:
            return f.read().strip() != ""
    except OSError:
        return False


def crash_lines(stack):
    """{crash point: times chakongd's log says it fired}."""
    out = collections.Counter()
    for m in re.finditer(r"crash point (\w+): SIGKILL", stack.log_text()):
        out[m.group(1)] += 1
    return out


def journal_left_pending(stack):
    """Restart chakongd cleanly and read what its start-up found in the
    journal: (records it resumed as PENDING, records it could not
    restore), both from the log of this start only."""
    before = len(stack.log_text())
    ok, _, out = restart(stack, "chakongd")
    assert ok, out
    text = stack.log_text()[before:]
    resumed = sum(int(m.group(1)) for m in re.finditer(
        r"journal: resuming (\d+) pending", text))
    lost = text.count("cannot be restored")
    return resumed, lost


def wait_status(stack, pred, timeout):
    """Poll /status until pred(actions json) holds; the last one."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = stack.status_json().get("actions")
            if last is not None and pred(last):
                return last
        except Exception:      # restarting: try again
            pass
        if time.monotonic() >= deadline:
            return last
        time.sleep(0.1)


# ------------------------------------------------------------ accounts

def pick_accounts(pb, stack, control, want_debtors, min_fen):
    """CNY accounts with at least min_fen available, of up to want_debtors
    debtors (张三 and the simulator's sample subjects), each with its
    asset_ref from a Query by the Guangzhou court."""
    ids = list(dict.fromkeys([sim.ZHANG_SAN] +
                             list(control.endpoints().sample_resident_ids)))
    ch = stack.channel(options=CHANNEL_OPTS)
    stub = pb.broker_grpc.AssetBrokerStub(ch)
    accounts, debtors = [], 0
    try:
        for rid in ids:
            if debtors >= want_debtors:
                break
            lk = control.lookup(resident_id=rid)
            if not lk.found:
                continue
            mine = {}
            for ev in lk.endpoints:
                if ev.kind != "bank" or not ev.accounts.found:
                    continue
                for a in ev.accounts.accounts:
                    if (a.currency or "CNY") == "CNY" and \
                            a.available_fen >= min_fen:
                        mine[(ev.endpoint, sim.mask_account(a.account_no))] = a
            if not mine:
                continue
            reply = patient(stub.Query, sim.query_req(
                pb, resident_id=rid, name=lk.name, categories=[1]),
                timeout=5)
            got = 0
            for s in reply.sources:
                if not s.source.startswith("bank:"):
                    continue
                ep = s.source[len("bank:"):]
                for a in s.assets:
                    key = (ep, a.deposit.account_masked)
                    if key in mine and a.asset_ref:
                        acc = mine[key]
                        accounts.append(Account(rid, lk.name, ep,
                                                acc.account_no,
                                                acc.available_fen,
                                                bytes(a.asset_ref)))
                        got += 1
            if got:
                debtors += 1
    finally:
        ch.close()
    return accounts


def refresh_accounts(control, accounts, min_fen):
    """The same accounts (and asset_refs) with budgets from what is
    available now (a later storm on a used stack)."""
    out = []
    for rid in dict.fromkeys(a.debtor for a in accounts):
        lk = control.lookup(resident_id=rid)
        avail = {}
        for ev in lk.endpoints:
            if ev.kind == "bank" and ev.accounts.found:
                for acc in ev.accounts.accounts:
                    avail[(ev.endpoint, acc.account_no)] = acc.available_fen
        for a in accounts:
            if a.debtor == rid and \
                    avail.get((a.endpoint, a.account_no), 0) >= min_fen:
                out.append(Account(a.debtor, a.name, a.endpoint,
                                   a.account_no,
                                   avail[(a.endpoint, a.account_no)], a.ref))
    return out


# ------------------------------------------------------------ the storm

class Storm:
    """Worker threads, each with its own sequence of Freeze -> Deduct
    chains, every call retried with the same request_id until final."""

    def __init__(self, pb, stack, accounts, label, serial0, workers,
                 channels=4, seed=None, call_timeout=1.5):
        self.pb, self.stack, self.accounts = pb, stack, accounts
        self.label, self.workers = label, workers
        self.rng = random.Random(seed)
        self.serial = serial0
        self.call_timeout = call_timeout
        self.counts = Counts()
        self.reqs = []
        self.lock = threading.Lock()
        self.stop_new = threading.Event()
        self.give_up_at = None        # monotonic: abandon retrying
        self.channels = [stack.channel(options=CHANNEL_OPTS)
                         for _ in range(channels)]
        self.stubs = [pb.broker_grpc.AssetBrokerStub(c)
                      for c in self.channels]
        self.old_channels = []
        self.born = [time.monotonic()] * channels
        self.threads = []
        self.run_id = os.urandom(3).hex()

    def close(self):
        for c in self.channels + self.old_channels:
            c.close()

    def _slot(self, rng):
        i = rng.randrange(len(self.stubs))
        return i, self.stubs[i]

    def _renew(self, i, stub):
        """grpcio (1.51) may leave a channel whose server was SIGKILLed in
        connection back-off for seconds although the server is back
        (every call fails at once with "failed to connect to all
        addresses"): replace such a channel by a new one."""
        with self.lock:
            if self.stubs[i] is not stub or \
                    time.monotonic() - self.born[i] < 0.3:
                return
            self.old_channels.append(self.channels[i])
            self.channels[i] = self.stack.channel(options=CHANNEL_OPTS)
            self.stubs[i] = self.pb.broker_grpc.AssetBrokerStub(
                self.channels[i])
            self.born[i] = time.monotonic()
        self.counts.add("channels renewed")

    # -- requests

    def _next(self):
        with self.lock:
            self.serial += 1
            return self.serial

    def _add(self, req):
        with self.lock:
            self.reqs.append(req)
        return req

    def new_freeze(self, rng, acct):
        amount = rng.choice((rng.randint(1, 99), rng.randint(100, 20000),
                             rng.randint(20000, 200000)))
        if not acct.take(amount):
            return None
        n = self._next()
        case = case_number(n)
        r = Req("freeze", f"crash-{self.run_id}-{self.label}-f{n}", case,
                amount, acct, amount)
        b = self.pb.broker
        r.msg = b.FreezeRequest(
            request_id=r.rid,
            case=b.CaseRef(case_number=case, claim_amount_fen=amount,
                           officer_id="GZ0001"),
            debtor=b.Debtor(resident_id=acct.debtor, name=acct.name),
            asset_ref=acct.ref, document_number=case + "之一",
            amount=b.Money(fen=amount, currency="CNY"), duration_days=30)
        return self._add(r)

    def new_deduct(self, rng, freeze, amount, nth):
        r = Req("deduct", f"{freeze.rid}-d{nth}", freeze.case, freeze.claim,
                freeze.account, amount, parent=freeze)
        b = self.pb.broker
        r.msg = b.DeductRequest(
            request_id=r.rid,
            # the claim as fixed, or 0 (= "as recorded")
            case=b.CaseRef(case_number=freeze.case,
                           claim_amount_fen=rng.choice((0, freeze.claim)),
                           officer_id=rng.choice(("GZ0001", "GZ0002"))),
            debtor=b.Debtor(resident_id=freeze.account.debtor,
                            name=freeze.account.name),
            freeze_ref=freeze.reply.freeze_ref,
            document_number=freeze.case + f"之{nth + 1}",
            amount=b.Money(fen=amount, currency="CNY"))
        return self._add(r)

    # -- one request until its final outcome

    def drive(self, req, rng):
        c = self.counts
        slot, stub = self._slot(rng)
        call = stub.Freeze if req.kind == "freeze" else stub.Deduct
        req.t_first = time.monotonic()
        c.add(f"{req.kind}s")
        while True:
            if self.give_up_at is not None and \
                    time.monotonic() > self.give_up_at:
                c.add("abandoned")
                return None
            req.calls += 1
            c.add("calls")
            if req.calls > 1:
                c.add("retries")
            try:
                rep = call(req.msg, timeout=self.call_timeout)
            except grpc.RpcError as e:
                code = e.code()
                details = e.details() or ""
                if code == grpc.StatusCode.UNAVAILABLE and \
                        req.kind == "deduct" and NOT_YET_ACTIVE in details:
                    req.refused += 1
                    c.add("deduct refused: freeze not recorded yet")
                    time.sleep(0.05)
                    continue
                if code in RETRY_CODES:
                    c.add(f"err {code.name}")
                    if "failed to connect" in details:
                        self._renew(slot, stub)
                    time.sleep(rng.uniform(0.01, 0.08))
                    slot, stub = self._slot(rng)
                    call = stub.Freeze if req.kind == "freeze" \
                        else stub.Deduct
                    continue
                req.error = (code.name, details)
                c.add(f"wrong answer {code.name}")
                return None
            if rep.outcome == PENDING:
                req.pending += 1
                c.add("PENDING replies")
                time.sleep(rng.uniform(0.02, 0.1))
                continue
            if rep.outcome not in FINAL:
                req.error = ("outcome", str(rep))
                c.add("wrong answer outcome")
                return None
            req.outcome = rep.outcome
            req.reply = rep
            req.t_final = time.monotonic()
            c.add(f"{req.kind} {FINAL[rep.outcome]}")
            return rep.outcome

    # -- the workers

    def _worker(self, wid):
        rng = random.Random(self.rng.random())
        while not self.stop_new.is_set():
            acct = rng.choice(self.accounts)
            f = self.new_freeze(rng, acct)
            if f is None:
                if all(a.budget < 100 for a in self.accounts):
                    return
                continue
            if self.drive(f, rng) not in (DONE, PARTIAL, QUEUED):
                continue
            left = f.reply.frozen_fen
            nth = 1
            # up to three deductions, one after the other, within what
            # is frozen in force
            while left > 0 and nth <= 3 and rng.random() < 0.7:
                amt = left if rng.random() < 0.3 else rng.randint(1, left)
                d = self.new_deduct(rng, f, amt, nth)
                nth += 1
                if self.drive(d, rng) != DONE:
                    break
                left -= d.reply.deducted_fen

    def start(self):
        for i in range(self.workers):
            t = threading.Thread(target=self._worker, args=(i,),
                                 name=f"storm-{self.label}-{i}", daemon=True)
            t.start()
            self.threads.append(t)

    def finish(self, timeout):
        """Stop asking for new actions and wait until every request has
        its final outcome (or timeout: the rest counted abandoned)."""
        self.stop_new.set()
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
        if any(t.is_alive() for t in self.threads):
            self.give_up_at = time.monotonic()
            for t in self.threads:
                t.join(10)

    # -- replay: the journal answers what the caller was told

    def replay_all(self, threads=4):
        """Every request again with its request_id: the broker must
        answer the recorded outcome, the same one the caller got."""
        todo = [r for r in self.reqs if r.outcome in FINAL]
        diffs = []
        lock = threading.Lock()

        def one(chunk, stub):
            for r in chunk:
                call = stub.Freeze if r.kind == "freeze" else stub.Deduct
                try:
                    rep = patient(call, r.msg)
                except grpc.RpcError as e:
                    with lock:
                        diffs.append(f"{r}: replay: {e.code().name} "
                                     f"{e.details()}")
                    continue
                a, b = _reply_view(r.kind, r.reply), _reply_view(r.kind, rep)
                if a != b:
                    with lock:
                        diffs.append(f"{r}: acknowledged {a}, replay {b}")

        ts = []
        for i in range(threads):
            t = threading.Thread(target=one, args=(
                todo[i::threads], self.stubs[i % len(self.stubs)]))
            t.start()
            ts.append(t)
        for t in ts:
            t.join()
        return len(todo), diffs


def _reply_view(kind, rep):
    if kind == "freeze":
        return (FINAL.get(rep.outcome, rep.outcome), rep.frozen_fen,
                rep.queued_fen, rep.effective_date, rep.expiry_date,
                rep.queue_position, bool(rep.freeze_ref))
    return (FINAL.get(rep.outcome, rep.outcome), rep.deducted_fen,
            rep.transfer_id)


# ------------------------------------------------------------ killers

class BrokerKiller:
    """SIGKILLs chakongd and restarts it, alternating: a restart with
    CK_CRASHPOINT set (each named point in turn, after a random number of
    passes) that runs until chakongd kills itself there, then a clean
    restart killed at a random moment."""

    def __init__(self, stack, min_kills, seed=None, cp_wait=4.0,
                 run_min=0.1, run_max=0.6):
        self.stack, self.min_kills = stack, min_kills
        self.rng = random.Random(seed)
        self.cp_wait, self.run_min, self.run_max = cp_wait, run_min, run_max
        self.counts = Counts()
        self.errors = []
        self.stop = threading.Event()
        self.thread = None

    def kills(self):
        c = self.counts
        return c["random kills"] + c["crash-point kills"]

    def _restart(self, crashpoint=None, skip=0):
        ok, pid, out = restart(self.stack, "chakongd", crashpoint, skip)
        self.counts.add("restarts")
        if ok:
            return True
        if crashpoint and exited(self.stack, "chakongd"):
            # it passed the crash point while starting (a resumed action)
            self.counts.add("crash-point kills")
            self.counts.add(f"crash point {crashpoint}")
            self.counts.add("crash-point kills during start-up")
            return False
        self.errors.append(f"restart ({crashpoint or 'clean'}) failed:\n"
                           f"{out}")
        return False

    def _clean(self):
        for _ in range(3):
            if self._restart():
                return True
        return False

    def _run(self):
        i = 0
        alive = True
        while not self.stop.is_set() and not self.errors:
            if self.kills() >= self.min_kills:
                break
            # a clean daemon killed at a random moment ...
            if alive:
                time.sleep(self.rng.uniform(self.run_min, self.run_max))
                if exited(self.stack, "chakongd"):
                    self.errors.append("chakongd died on its own")
                    break
                self.counts.add("random kills")
            # ... by the restart that arms the next crash point
            cp = CRASH_POINTS[i % len(CRASH_POINTS)]
            i += 1
            if self._restart(cp, self.rng.randint(0, 6)):
                deadline = time.monotonic() + self.cp_wait
                while not exited(self.stack, "chakongd") and \
                        time.monotonic() < deadline:
                    time.sleep(0.02)
                if exited(self.stack, "chakongd"):
                    self.counts.add("crash-point kills")
                    self.counts.add(f"crash point {cp}")
                else:
                    # not reached in time: this restart kills it
                    self.counts.add(f"crash point {cp} not reached")
                    self.counts.add("random kills")
            alive = self._clean()
            if not alive:
                break
        if not alive and not self.errors:
            self.errors.append("chakongd could not be restarted")

    def start(self):
        self.thread = threading.Thread(target=self._run, name="killer",
                                       daemon=True)
        self.thread.start()

    def join(self, timeout):
        self.thread.join(timeout)
        return not self.thread.is_alive()


class SimKiller:
    """SIGKILLs the agency simulator at random moments and restarts it on
    the same state directory and ports."""

    def __init__(self, stack, kills, seed=None, run_min=0.2, run_max=0.9):
        self.stack, self.want = stack, kills
        self.rng = random.Random(seed)
        self.run_min, self.run_max = run_min, run_max
        self.counts = Counts()
        self.errors = []
        self.stop = threading.Event()
        self.thread = None

    def kills(self):
        return self.counts["simulator kills"]

    def _run(self):
        while not self.stop.is_set() and self.kills() < self.want:
            time.sleep(self.rng.uniform(self.run_min, self.run_max))
            if exited(self.stack, "agencysim"):
                self.errors.append("the simulator died on its own")
                return
            ok, _, out = restart(self.stack, "agencysim")
            self.counts.add("simulator kills")
            if not ok:
                self.errors.append(f"simulator restart failed:\n{out}")
                return

    def start(self):
        self.thread = threading.Thread(target=self._run, name="sim-killer",
                                       daemon=True)
        self.thread.start()

    def join(self, timeout):
        self.thread.join(timeout)
        return not self.thread.is_alive()


# ------------------------------------------------------------ the check

def ledger_snapshot(control, accounts):
    """{(endpoint, account_no): LedgerAsset or None} now."""
    out = {}
    for rid in sorted({a.debtor for a in accounts}):
        led = control.ledger(resident_id=rid)
        for a in accounts:
            if a.debtor != rid:
                continue
            out[(a.endpoint, a.account_no)] = None
            for asset in led.assets:
                if asset.kind == "bank" and asset.asset_id == a.account_no:
                    out[(a.endpoint, a.account_no)] = asset
    return out


def check_ledger(storm, before, after):
    """Every acknowledged action took effect exactly once, nothing else
    did, and every balance moved by exactly the acknowledged deductions.
    Returns (problems, facts)."""
    problems = []
    facts = collections.Counter()
    ours = {r.case for r in storm.reqs}
    freezes = {}                   # case -> freeze Req
    deducts = collections.defaultdict(list)
    for r in storm.reqs:
        if r.kind == "freeze":
            freezes[r.case] = r
        else:
            deducts[r.case].append(r)
    for a in storm.accounts:
        key = (a.endpoint, a.account_no)
        asset = after.get(key)
        old = before.get(key)
        base_ded = old.deducted_fen if old is not None else 0
        base_bal = old.balance_fen if old is not None else a.balance
        old_ids = {e.id for e in old.encumbrances} if old is not None \
            else set()
        encs = [e for e in (asset.encumbrances if asset else [])
                if e.id not in old_ids]
        by_case = collections.defaultdict(list)
        for e in encs:
            if e.case_number not in ours:
                problems.append(f"{a}: an encumbrance of a case the storm "
                                f"never used: {e.case_number} {e.id}")
                continue
            by_case[e.case_number].append(e)
        keys = collections.Counter(e.idempotency_key for e in encs)
        for k, n in keys.items():
            if n > 1:
                problems.append(f"{a}: idempotency key {k} made {n} "
                                f"encumbrances")
        acked_deducted = 0
        for case, f in freezes.items():
            if f.account is not a:
                continue
            got = by_case.get(case, [])
            ds = deducts.get(case, [])
            done = [d for d in ds if d.outcome == DONE]
            want_ded = sum(d.reply.deducted_fen for d in done)
            for d in done:
                if d.reply.deducted_fen != d.amount:
                    problems.append(f"{d}: acknowledged DONE with "
                                    f"deducted_fen {d.reply.deducted_fen}")
            acked_deducted += want_ded
            if f.outcome == REJECTED:
                facts["freezes rejected, no effect"] += 1
                if got:
                    problems.append(f"{f}: acknowledged REJECTED, yet the "
                                    f"ledger holds {[e.id for e in got]}")
                continue
            if f.outcome not in FINAL:
                problems.append(f"{f}: never got a final outcome "
                                f"(error {f.error})")
                continue
            if len(got) != 1:
                problems.append(f"{f}: acknowledged "
                                f"{FINAL[f.outcome]}, the ledger holds "
                                f"{len(got)} encumbrances for its case: "
                                f"{[e.id for e in got]}")
                continue
            e = got[0]
            facts["freezes in the ledger exactly once"] += 1
            if e.requested_fen + e.deducted_fen != f.amount:
                problems.append(f"{f}: ledger requested {e.requested_fen} "
                                f"+ deducted {e.deducted_fen} != asked")
            if e.deducted_fen != want_ded:
                problems.append(f"{f}: ledger deducted {e.deducted_fen} "
                                f"fen, acknowledged deductions "
                                f"{[d.reply.deducted_fen for d in done]}")
            else:
                facts["deductions in the ledger exactly once"] += len(done)
            if f.reply.frozen_fen + f.reply.queued_fen > f.amount:
                problems.append(f"{f}: reply froze more than asked")
            for d in ds:
                if d.outcome not in FINAL and d.outcome != "REFUSED":
                    problems.append(f"{d}: never got a final outcome "
                                    f"(error {d.error})")
        if asset is None:
            if acked_deducted or encs:
                problems.append(f"{a}: no ledger record")
            continue
        moved = base_bal - asset.balance_fen
        if moved != acked_deducted:
            problems.append(f"{a}: balance dropped by {moved} fen, "
                            f"acknowledged deductions total "
                            f"{acked_deducted} fen")
        if asset.deducted_fen - base_ded != acked_deducted:
            problems.append(f"{a}: ledger deducted_fen moved by "
                            f"{asset.deducted_fen - base_ded}, acknowledged "
                            f"{acked_deducted}")
        facts["fen deducted"] += acked_deducted
        facts["accounts balanced to the fen"] += moved == acked_deducted
    transfers = collections.Counter(
        r.reply.transfer_id for r in storm.reqs
        if r.kind == "deduct" and r.outcome == DONE)
    for t, n in transfers.items():
        if n > 1:
            problems.append(f"transfer {t} acknowledged for {n} deductions")
    return problems, facts


def method_effects(control, endpoints):
    """{(endpoint, method): MethodCounters} for the given endpoints."""
    out = {}
    for ep in control.counters("*").endpoints:
        if ep.endpoint in endpoints:
            for mc in ep.methods:
                out[(ep.endpoint, mc.method)] = mc
    return out


def check_counters(storm, control):
    """The simulator's counters (since they were reset at the start of a
    phase whose simulator ran throughout): effects = acknowledged."""
    problems = []
    eps = {a.endpoint for a in storm.accounts}
    got = method_effects(control, eps)
    for ep in sorted(eps):
        fz = [r for r in storm.reqs if r.kind == "freeze" and
              r.account.endpoint == ep and r.outcome in (DONE, PARTIAL,
                                                           QUEUED)]
        dd = [r for r in storm.reqs if r.kind == "deduct" and
              r.account.endpoint == ep and r.outcome == DONE]
        for method, want in (("Freeze", len(fz)), ("Deduct", len(dd))):
            mc = got.get((ep, method))
            eff = mc.effects if mc is not None else 0
            if eff != want:
                problems.append(f"{ep} {method}: {eff} effects in the "
                                f"simulator, {want} acknowledged")
            if mc is not None and mc.key_conflicts:
                problems.append(f"{ep} {method}: {mc.key_conflicts} "
                                f"idempotency key conflicts")
    return problems, got


def summary(storm):
    c = collections.Counter()
    for r in storm.reqs:
        c[f"{r.kind}s"] += 1
        c[f"{r.kind} {FINAL.get(r.outcome, r.outcome)}"] += 1
        c["calls"] += r.calls
        c["retries"] += max(0, r.calls - 1)
        c["PENDING replies"] += r.pending
        if r.pending:
            c[f"{r.kind}s that saw PENDING"] += 1
    return c
