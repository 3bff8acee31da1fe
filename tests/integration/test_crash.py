"""The crash test (issue 5): exactly once across crashes.

A storm of Freeze and Deduct calls, each with a unique request_id and
retried with that same request_id until the broker gives a final outcome
(DONE, PARTIAL, QUEUED, REJECTED -- never PENDING, never a dropped
connection), while

  1. chakongd is SIGKILLed and restarted at least 20 times: at random
     moments and at the test build's named crash points
     (CK_CRASHPOINT=after_intent_sync | after_send | before_outcome, each
     in turn, after a random number of passes), and then
  2. the agency simulator is SIGKILLed and restarted instead (same state
     directory, same ports).

Then the simulator's ledger is compared with what the broker acknowledged:
every acknowledged freeze exists exactly once with the acknowledged
amounts, every acknowledged deduction was applied exactly once, no
idempotency key made two encumbrances, every account's balance dropped by
exactly the acknowledged deductions (to the fen), a rejected freeze left
nothing, the simulator's effect counters equal the acknowledged actions
(phase 1, whose simulator never restarts), every request asked again
answers the outcome its caller was told, and the broker's journal has
nothing PENDING. The counts are printed.

One stack of its own with a quick resolver (resolver_max_backoff_s = 1),
a short breaker and 2 s agency calls; restarts through
`tests/stack.sh restart DIR chakongd|agencysim` (same config, same
ports). About 20-40 s on two cores (an ASan build runs a smaller storm,
still more than 20 kills). The machinery is in crashstorm.py.
"""

import os
import time

import pytest

import crashstorm as cs
import sim

ASAN = "asan" in os.environ.get("CK_BUILD", "")
BROKER_KILLS = 24 if not ASAN else 21
SIM_KILLS = 6
WORKERS = 6 if not ASAN else 3
MIN_FEN = 2_000_000


@pytest.fixture(scope="module")
def apb():
    yield from sim.agency_messages()


@pytest.fixture(scope="module")
def crash_stack(module_stack):
    return module_stack(
        CK_ACTIONS_CONF="resolver_max_backoff_s = 1",
        CK_ENDPOINT_CONF="breaker_open_ms = 200\nconnect_timeout_ms = 1000\n"
                         "timeout_ms = 2000",
        CK_GRACE="2")


@pytest.fixture(scope="module")
def control(crash_stack, apb):
    c = cs.Control(crash_stack, apb)
    yield c
    c.close()


@pytest.fixture(scope="module")
def accounts(pb, crash_stack, control):
    """CNY accounts of a few debtors with their asset_refs (one Query
    each, before anything is killed)."""
    acc = cs.pick_accounts(pb, crash_stack, control, 6, MIN_FEN)
    assert len(acc) >= 3, f"too few CNY accounts: {acc}"
    return acc


def _print(capsys, title, lines):
    with capsys.disabled():
        print(f"\n---- crash test: {title}")
        for k, v in lines:
            print(f"  {k:<46} {v}")


def _count_lines(c):
    return sorted(c.items())


def _verify(storm, control, before, crash_stack, check_counters):
    problems = []
    wrong = [r for r in storm.reqs if r.error is not None]
    for r in wrong[:20]:
        problems.append(f"{r}: wrong answer {r.error}")
    unfinished = [r for r in storm.reqs
                  if r.outcome is None and r.error is None]
    for r in unfinished[:20]:
        problems.append(f"{r}: no final outcome after {r.calls} calls")
    # nothing left PENDING in the broker's journal (the resolver may still
    # be recording outcomes its callers already have)
    st = cs.wait_status(crash_stack, lambda a: a.get("pending") == 0, 20)
    if st is None or st.get("pending") != 0:
        problems.append(f"the broker's journal still has PENDING "
                        f"actions: {st}")
    after = cs.ledger_snapshot(control, storm.accounts)
    p, facts = cs.check_ledger(storm, before, after)
    problems += p
    if check_counters:
        p, _ = cs.check_counters(storm, control)
        problems += p
    n, diffs = storm.replay_all()
    problems += diffs[:20]
    facts["replayed: same answer as acknowledged"] = n - len(diffs)
    # and the journal itself: a clean start finds nothing to resume
    resumed, lost = cs.journal_left_pending(crash_stack)
    if resumed or lost:
        problems.append(f"the journal still held PENDING records: "
                        f"{resumed} resumed, {lost} not restorable")
    facts["journal PENDING records at a clean restart"] = resumed + lost
    return problems, facts, st


def test_broker_killed(pb, crash_stack, control, accounts, capsys):
    """chakongd SIGKILLed >= 20 times (random moments and each crash
    point) during the storm: every acknowledged action exactly once."""
    t0 = time.monotonic()
    accounts = cs.refresh_accounts(control, accounts, MIN_FEN)
    before = cs.ledger_snapshot(control, accounts)
    control.counters("*", reset=True)
    storm = cs.Storm(pb, crash_stack, accounts, "b", 100000, WORKERS)
    killer = cs.BrokerKiller(crash_stack, BROKER_KILLS)
    try:
        storm.start()
        time.sleep(0.5)
        killer.start()
        assert killer.join(60), "the killer did not finish"
        time.sleep(0.5)           # some traffic on a daemon left running
        storm.finish(30)
        t_storm = time.monotonic() - t0
        problems, facts, st = _verify(storm, control, before, crash_stack,
                                      check_counters=True)
        fired = cs.crash_lines(crash_stack)
        kc = killer.counts.snapshot()
        _print(capsys, f"chakongd killed ({time.monotonic() - t0:.1f} s, "
               f"storm {t_storm:.1f} s, {len(accounts)} accounts)",
               [("kills", killer.kills())] +
               _count_lines(kc) +
               [(f"log: crash point {k} fired", v)
                for k, v in sorted(fired.items())] +
               _count_lines(cs.summary(storm)) +
               [(f"client {k}", v) for k, v in
                sorted(storm.counts.snapshot().items()) if
                k.startswith("err") or k.startswith("deduct refused")] +
               _count_lines(facts) +
               [("broker actions at the end", st)])
        assert not killer.errors, killer.errors
        assert killer.kills() >= 20, kc
        for p in cs.CRASH_POINTS:
            assert fired[p] >= 2, f"crash point {p} fired {fired[p]} times"
        assert not problems, "\n".join(problems[:40])
        assert facts["freezes in the ledger exactly once"] > 0
    finally:
        killer.stop.set()
        storm.stop_new.set()
        storm.give_up_at = time.monotonic()
        storm.close()


def test_simulator_killed(pb, crash_stack, control, accounts, capsys):
    """The agency simulator SIGKILLed and restarted (same state, same
    ports) during the storm: every acknowledged action exactly once."""
    t0 = time.monotonic()
    accounts = cs.refresh_accounts(control, accounts, MIN_FEN)
    assert len(accounts) >= 3, f"too few CNY accounts left: {accounts}"
    before = cs.ledger_snapshot(control, accounts)
    storm = cs.Storm(pb, crash_stack, accounts, "s", 500000, WORKERS)
    killer = cs.SimKiller(crash_stack, SIM_KILLS)
    try:
        storm.start()
        time.sleep(0.3)
        killer.start()
        assert killer.join(40), "the killer did not finish"
        time.sleep(0.5)
        storm.finish(30)
        t_storm = time.monotonic() - t0
        problems, facts, st = _verify(storm, control, before, crash_stack,
                                      check_counters=False)
        _print(capsys, f"simulator killed ({time.monotonic() - t0:.1f} s, "
               f"storm {t_storm:.1f} s, {len(accounts)} accounts)",
               [("kills", killer.kills())] +
               _count_lines(cs.summary(storm)) +
               [(f"client {k}", v) for k, v in
                sorted(storm.counts.snapshot().items()) if
                k.startswith("err") or k.startswith("deduct refused")] +
               _count_lines(facts) +
               [("broker actions at the end", st)])
        assert not killer.errors, killer.errors
        assert killer.kills() >= SIM_KILLS
        assert not problems, "\n".join(problems[:40])
        assert facts["freezes in the ledger exactly once"] > 0
    finally:
        killer.stop.set()
        storm.stop_new.set()
        storm.give_up_at = time.monotonic()
        storm.close()
