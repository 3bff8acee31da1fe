#!/usr/bin/python3
"""bench_watch.py: the re-query scheduler (issue 7) at scale. A benchmark,
not a test: it prints tables and fails only when it cannot measure.

    CK_BUILD=$PWD/build-bench /usr/bin/python3 tests/bench/bench_watch.py

1. Interactive Query latency with the scheduler idle and busy: ckload runs
   Query (the integration tests' debtor, every category: 12 agency legs)
   for CK_BENCH_DURATION seconds, first with nothing enrolled, then while
   the scheduler works through a backlog of due enrollments at the
   configured [watch] rate (CK_WATCH_RATE, default 10 a second, the
   shipped default) and max_concurrent (CK_WATCH_CONCURRENT, default 4).
2. CK_WATCH_N enrollments (default 200,000; vehicle only, one agency leg
   each): the time to enroll them, the scheduler's cost per due item (CPU
   of chakongd per re-query recorded, with every enrollment due at once,
   rate uncapped), then chakongd's start-up time and memory (RSS) with
   them in state.mdb.

Each part brings up its own stack (tests/stack.sh) and takes it down.
"""

import datetime
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

import grpc  # noqa: E402

import ck  # noqa: E402

CST = datetime.timezone(datetime.timedelta(hours=8))
DURATION = float(os.environ.get("CK_BENCH_DURATION", "5"))
N = int(os.environ.get("CK_WATCH_N", "200000"))
RATE = int(os.environ.get("CK_WATCH_RATE", "10"))
CONC = int(os.environ.get("CK_WATCH_CONCURRENT", "4"))


def resident_id(n):
    """A valid resident id the simulated population does not know."""
    body = (f"44{n % 100:02d}03"
            f"19{60 + n // 3000000 % 40:02d}{n % 12 + 1:02d}{n % 28 + 1:02d}"
            f"{n // 28 % 1000:03d}")
    w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    s = sum(int(c) * k for c, k in zip(body, w))
    return body + "10X98765432"[s % 11]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid):
    """(anonymous, file-backed) resident MB: the file part is mostly
    state.mdb's pages, mapped by LMDB and shared with the page cache."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k = line.split(":")[0]
            if k in ("RssAnon", "RssFile"):
                out[k] = int(line.split()[1]) / 1024
    return out.get("RssAnon", 0.0), out.get("RssFile", 0.0)


class Bench:
    def __init__(self, conf):
        self.dir = tempfile.mkdtemp(prefix="ck-bench-watch-")
        env = dict(os.environ, CK_EXTRA_CONF=conf,
                   CK_LOG_LEVEL=os.environ.get("CK_LOG_LEVEL", "warn"))
        pbdir = os.path.join(self.dir, "pb")
        os.makedirs(pbdir)
        self.pb = ck.generate_messages(pbdir)
        self.stack = ck.Stack.up(os.path.join(self.dir, "stack"), env=env)
        self.connect()

    def connect(self):
        self.ch = self.stack.channel()
        self.broker = self.pb.broker_grpc.AssetBrokerStub(self.ch)
        self.testing = self.pb.testing_grpc.TestingStub(self.ch)

    def down(self):
        import shutil
        self.ch.close()
        self.stack.down()
        shutil.rmtree(self.dir, ignore_errors=True)

    def watch(self):
        return self.stack.status_json()["watch"]

    def now(self):
        return self.testing.SetClock(self.pb.testing.SetClockRequest(),
                                     timeout=10).now_unix_s

    def set_clock(self, t):
        self.testing.SetClock(self.pb.testing.SetClockRequest(set_unix_s=t),
                              timeout=10)

    def enroll_many(self, n, term, categories, start=0, window=256):
        b = self.pb.broker
        pending = []
        t0 = time.monotonic()
        for i in range(start, start + n):
            case = f"({term.year})粤01执{100000 + i}号"
            req = b.EnrollRequest(
                request_id=f"bench-{i}",
                case=b.CaseRef(case_number=case, officer_id="GZ0001"),
                debtor=b.Debtor(resident_id=resident_id(i), name="王五"),
                categories=categories, termination_date=term.isoformat(),
                document_number=case + "之三")
            pending.append(self.broker.Enroll.future(req, timeout=120))
            if len(pending) >= window:
                for f in pending:
                    f.result()
                pending = []
        for f in pending:
            f.result()
        return time.monotonic() - t0

    def ckload(self, duration):
        exe = os.path.join(self.stack.build, "tests", "bench", "ckload")
        e = dict(os.environ)
        e.update({k: v for k, v in self.stack.env.items()
                  if k.startswith("CK_")})
        r = subprocess.run(
            [exe, "--query-id", "11010519491231002X", "--query-name", "张三",
             "--query-case", "(2019)粤01执123号", "--query-officer", "GZ0001",
             "-c", "1", "-m", "4", "-d", str(duration), "--warmup", "0.5",
             "--pid", str(self.stack.pid), "--json"],
            capture_output=True, text=True, env=e, timeout=duration + 60)
        if r.returncode != 0:
            raise RuntimeError(f"ckload: {r.stdout}{r.stderr}")
        return json.loads(r.stdout.strip().splitlines()[-1])


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def part_latency(rate, conc, reps=3):
    """Idle and busy runs alternate (idle, busy, idle, busy, ...), so a
    drift of the shared machine hits both; medians of `reps` each."""
    conf = f"[watch]\nrate = {rate}\nmax_concurrent = {conc}\n"
    b = Bench(conf)
    rows = {"idle": [], "busy": []}
    ran = 0
    try:
        b.ckload(1)     # warm-up: connections, TLS, the simulator
        today = datetime.datetime.fromtimestamp(b.now(), CST).date()
        term = today - datetime.timedelta(days=1)
        done = 0
        for i in range(reps):
            rows["idle"].append(b.ckload(DURATION))
            # a backlog of due work for this run: enrollments whose
            # baseline queries (every category: 12 agency legs) the
            # scheduler starts at its rate
            n = int(rate * (DURATION + 2) * 1.5) + 10
            b.enroll_many(n, term, [], start=done)
            done += n
            w0 = b.watch()
            rows["busy"].append(b.ckload(DURATION))
            w1 = b.watch()
            ran += w1["baselines"] - w0["baselines"]
            assert w1["in_flight"] > 0 or w1["baselines"] < done, \
                "the scheduler ran dry during a busy run"
            while b.watch()["baselines"] < done:   # idle again
                time.sleep(0.2)
    finally:
        b.down()
    print(f"### [watch] rate = {rate}, max_concurrent = {conc} "
          f"(medians of {reps} runs of {DURATION:g} s, ckload -c 1 -m 4; "
          f"{ran} re-queries ran during the busy runs)")
    print("| scheduler | calls/s | p50 ms | p99 ms | broker us/call |")
    print("|---|---|---|---|---|")
    p99 = {}
    for name, rs in rows.items():
        p99[name] = median([r["latency_ms"]["p99"] for r in rs])
        print(f"| {name} | {median([r['calls_per_s'] for r in rs]):.0f} | "
              f"{median([r['latency_ms']['p50'] for r in rs]):.2f} | "
              f"{p99[name]:.2f} | "
              f"{median([r['servers'][0]['cpu_us_per_call'] for r in rs]):.0f}"
              f" |")
    print(f"p99 busy / idle: {p99['busy'] / p99['idle']:.2f}")
    print()


def part_scale():
    conf = "[watch]\nrate = 100000\nmax_concurrent = 64\n"
    b = Bench(conf)
    try:
        today = datetime.datetime.fromtimestamp(b.now(), CST).date()
        term = today - datetime.timedelta(days=1)
        t_enroll = b.enroll_many(N, term, [3])
        t0 = time.monotonic()
        while b.watch()["baselines"] < N:
            time.sleep(0.5)
        t_base = time.monotonic() - t0
        # every enrollment's first due date: the ruling's date + 6 months
        m = term.month - 1 + 6
        first = datetime.date(term.year + m // 12, m % 12 + 1, min(
            term.day, 28))
        cpu0, r0 = cpu_seconds(b.stack.pid), b.watch()["results_recorded"]
        rss_before = rss_mb(b.stack.pid)
        t0 = time.monotonic()
        b.set_clock(int(datetime.datetime(first.year, first.month,
                                          first.day, 1,
                                          tzinfo=CST).timestamp()))
        while b.watch()["results_recorded"] - r0 < N:
            time.sleep(0.5)
        t_due = time.monotonic() - t0
        cpu_due = cpu_seconds(b.stack.pid) - cpu0
        rss_after = rss_mb(b.stack.pid)
        st = b.watch()
        # start-up with N enrollments in state.mdb
        b.ch.close()
        t0 = time.monotonic()
        r = subprocess.run([ck.STACK_SH, "restart", b.stack.dir, "chakongd"],
                           capture_output=True, text=True, timeout=300,
                           env=dict(os.environ, CK_BUILD=b.stack.build))
        t_start = time.monotonic() - t0
        if r.returncode != 0:
            raise RuntimeError(r.stdout + r.stderr)
        b.stack = ck.Stack(b.stack.dir)
        b.connect()
        time.sleep(1)
        rss_start = rss_mb(b.stack.pid)
        st2 = b.watch()
        du = subprocess.run(["du", "-sm", os.path.join(b.stack.dir, "state")],
                            capture_output=True, text=True).stdout.split()[0]
    finally:
        b.down()
    print(f"## {N} enrollments (vehicle only: one agency leg each)")
    print("| measure | value |")
    print("|---|---|")
    print(f"| enroll {N} (gRPC, 256 in flight) | {t_enroll:.1f} s "
          f"({N / t_enroll:.0f}/s) |")
    print(f"| their baseline queries, after enrolling | {t_base:.1f} s |")
    print(f"| all {N} due at once: wall time | {t_due:.1f} s "
          f"({N / t_due:.0f} re-queries/s) |")
    print(f"| chakongd CPU per due item (query + findings + reschedule) | "
          f"{cpu_due * 1e6 / N:.0f} us |")
    print(f"| RSS anon + file before the due burst | {rss_before[0]:.0f} + "
          f"{rss_before[1]:.0f} MB |")
    print(f"| RSS anon + file after the due burst | {rss_after[0]:.0f} + "
          f"{rss_after[1]:.0f} MB |")
    print(f"| restart (SIGKILL, start, ready) with {N} in state.mdb | "
          f"{t_start:.2f} s |")
    print(f"| RSS anon + file after start-up | {rss_start[0]:.0f} + "
          f"{rss_start[1]:.0f} MB |")
    print(f"| state.mdb on disk | {du} MB |")
    print(f"| /status after restart | active {st2['enrollments_active']}, "
          f"unread {st2['findings_unread']} |")
    print(f"(before restart: {st['results_recorded']} recorded, "
          f"{st['found']} found)")


if __name__ == "__main__":
    parts = sys.argv[1:] or ["latency", "scale"]
    if "latency" in parts:
        print("## Interactive Query with the scheduler idle and busy")
        part_latency(RATE, CONC)
        part_latency(RATE * 10, CONC * 4)
    if "scale" in parts:
        part_scale()
