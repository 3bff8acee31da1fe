#!/usr/bin/env bash
# bench_actions.sh: journaled actions (Freeze) per second through chakongd
# against the agency simulator, with 1, 16 and 64 concurrent callers, and
# what each action costs: broker and simulator CPU, journal commits
# (fsyncs) per action. A benchmark, not a test: it prints a table and fails
# only when it cannot measure. How to read it: tests/bench/README.md,
# "Journaled actions".
#
#   tests/bench/bench_actions.sh
#
# Every run gets a fresh stack (tests/stack.sh up in a temporary directory,
# 127.0.0.1 only; about 1.5 s), so every run starts from an empty journal
# and an untouched ledger: the simulator keeps all of an account's freezes
# in one ledger record, which every further freeze on that account reads
# and rewrites, so its cost per freeze grows with the freezes already made
# there (about 1 us per earlier freeze). A run then
#   1. with sim mode "nosync", restarts the simulator (tests/stack.sh
#      restart) from its own config plus `nosync = true`: no fsync per
#      commit;
#   2. asks the broker for the deposits of the debtors in DEBTORS
#      (`chakongctl query --json`) and encodes, for each CNY account, a
#      chakong.v1.FreezeRequest with `protoc --encode` (one case per
#      debtor with a huge claim, so the over-freezing cap never refuses;
#      amount 1 fen, so the balance never limits; 30 days);
#   3. runs ckload for CK_BENCH_WARMUP seconds (not measured), reads
#      /status, runs ckload for CK_BENCH_DURATION seconds (measured), reads
#      /status again. ckload sends the bodies in turn (one account after
#      the other) and gives every call a request_id of its own
#      (--unique-request-id), so every call is a new journaled action; it
#      counts the replies' outcomes (--count-reply-field 1);
#   4. takes the stack down.
# Each cell is the median over CK_BENCH_REPS runs (failed: the sum), taken
# in rounds (every row once, then again). "disk ms" is the median of quick
# fdatasync probes (4 KiB appended, 10 per probe) just before and after
# each measured run: this machine's disk flush latency swings from 0.05 to
# 4 ms with what else writes to the file system, and the synced rows
# follow it.
#
# A run fails the bench when some call was not OK or some reply had no
# outcome, or the broker's intent count did not grow by exactly the number
# of calls: then it measured something else than journaled actions.
#
# Environment:
#   CK_BUILD            build directory (default: build/ at the repository
#                       root; set up with -Dtest_hooks=true and built when
#                       chakongd or ckload is missing)
#   CK_BENCH_DURATION   measured seconds per run (default 2)
#   CK_BENCH_WARMUP     seconds of the same load before it (default 0.5)
#   CK_BENCH_REPS       runs per row (default 3)
#   CK_BENCH_SHAPES     connections x streams (default "1x1 1x16 4x16":
#                       1, 16 and 64 callers)
#   CK_BENCH_SIM        simulator modes, in order (default "sync nosync"):
#                       sync  = as tests/stack.sh starts it, one fsync per
#                               state change (like a real agency);
#                       nosync = the same, its ledger not synced
#   CK_LOG_LEVEL        chakongd's log level (tests/stack.sh; default info).
#                       The simulator logs at info in both modes
#
# Needs protoc (protobuf-compiler, tests/deps.sh). With the defaults it
# takes about 2 minutes.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PY=/usr/bin/python3

DURATION=${CK_BENCH_DURATION:-2}
WARMUP=${CK_BENCH_WARMUP:-0.5}
REPS=${CK_BENCH_REPS:-3}
read -r -a SHAPES <<<"${CK_BENCH_SHAPES:-1x1 1x16 4x16}"
read -r -a MODES <<<"${CK_BENCH_SIM:-sync nosync}"

FREEZE=/chakong.v1.AssetBroker/Freeze

# Debtors of the simulated population (seed 42, size 2000, the stack's
# default) with CNY deposits: KIND ID NAME. Their CNY accounts, about 15 at
# 7 banks, are what the freezes go to.
DEBTORS=(
	"id 11010519491231002X 张三"
	"id 440113196306094430 朱平"
	"id 440604198103145883 罗超"
	"id 440113198509209989 何国超"
	"id 440606199609086160 黄海"
	"id 44010419791201710X 梁海"
	"id 440604199212242345 张然洋"
	"uscc 91110000600037341L 北京长城示范实业有限公司"
)

die() {
	echo "bench: $*" >&2
	exit 1
}

ensure_build() {
	local b=${CK_BUILD:-$ROOT/build}
	[[ $b == /* ]] || b=$PWD/$b
	export CK_BUILD=$b
	CKLOAD=$CK_BUILD/tests/bench/ckload
	CTL=$CK_BUILD/broker/chakongctl
	[[ -x $CKLOAD && -x $CTL && -x $CK_BUILD/broker/chakongd &&
		-x $CK_BUILD/tests/agencysim/agencysim ]] && return 0
	echo "bench: building $CK_BUILD" >&2
	if [[ ! -f $CK_BUILD/build.ninja ]]; then
		meson setup "$CK_BUILD" "$ROOT" -Dtest_hooks=true >&2
	fi
	ninja -C "$CK_BUILD" >&2
	[[ -x $CKLOAD && -x $CTL ]] || die "the build produced no $CKLOAD"
}

STACK=
stack_down() {
	if [[ -n $STACK ]]; then
		"$ROOT/tests/stack.sh" down "$STACK" >/dev/null 2>&1 || true
		rm -rf "$STACK"
		STACK=
	fi
}

# stack_up MODE: a fresh stack; with MODE nosync the simulator runs again
# from its config with `nosync = true` (the first `restart` writes that
# config, pinning every port; the second starts from it).
stack_up() {
	STACK=$(mktemp -d "${TMPDIR:-/tmp}/ck-bench-act.XXXXXX")
	"$ROOT/tests/stack.sh" up "$STACK" >/dev/null ||
		die "tests/stack.sh up failed"
	if [[ $1 == nosync ]]; then
		"$ROOT/tests/stack.sh" restart "$STACK" agencysim >/dev/null ||
			die "tests/stack.sh restart agencysim failed"
		[[ -s $STACK/agencysim.conf ]] ||
			die "tests/stack.sh restart wrote no agencysim.conf"
		sed -i '/^\[sim\]/a nosync = true' "$STACK/agencysim.conf"
		grep -q '^nosync = true' "$STACK/agencysim.conf" ||
			die "cannot set nosync in $STACK/agencysim.conf"
		"$ROOT/tests/stack.sh" restart "$STACK" agencysim >/dev/null ||
			die "tests/stack.sh restart agencysim (nosync) failed"
	fi
	# shellcheck disable=SC1091
	. "$STACK/stack.env"
	if [[ $1 == nosync ]]; then
		tr '\0' ' ' <"/proc/$CK_SIM_PID/cmdline" |
			grep -q -- "-c $STACK/agencysim.conf" ||
			die "the simulator (pid $CK_SIM_PID) is not running" \
				"from $STACK/agencysim.conf"
	fi
}

# freeze_bodies DIR: one FreezeRequest per CNY deposit of DEBTORS in
# DIR/freeze.N.bin; prints N, the number of bodies, and the sources.
freeze_bodies() {
	"$PY" - "$1" "$CTL" "$ROOT/proto/chakong/v1" "${DEBTORS[@]}" <<'EOF'
import base64, json, os, subprocess, sys

out, ctl, protodir = sys.argv[1:4]
n, banks = 0, set()
for i, line in enumerate(sys.argv[4:]):
    kind, ident, name = line.split(" ", 2)
    case = f"(2025)粤01执{9001 + i}号"
    q = subprocess.run(
        [ctl, "query", "--json", f"--{kind}", ident, "--name", name,
         "--case", case, "--officer", "GZ0001", "--category", "deposit"],
        capture_output=True, text=True, timeout=30)
    if q.returncode != 0:
        sys.exit(f"chakongctl query {ident}: exit {q.returncode}: "
                 f"{q.stderr.strip()}")
    for src in json.loads(q.stdout)["sources"]:
        for a in src["assets"]:
            if a["deposit"]["balance"]["currency"] != "CNY":
                continue
            ref = "".join(f"\\{b:03o}"
                          for b in base64.b64decode(a["asset_ref"]))
            text = (f'request_id: "set-by-ckload"\n'
                    f'case {{ case_number: "{case}" '
                    f'claim_amount_fen: 1000000000000000 '
                    f'officer_id: "GZ0001" }}\n'
                    f'debtor {{ {"resident_id" if kind == "id" else "uscc"}:'
                    f' "{ident}" name: "{name}" }}\n'
                    f'asset_ref: "{ref}"\n'
                    f'document_number: "{case}之一"\n'
                    f'amount {{ fen: 1 currency: "CNY" }}\n'
                    f'duration_days: 30\n')
            path = os.path.join(out, f"freeze.{n}.bin")
            with open(path, "wb") as f:
                p = subprocess.run(
                    ["protoc", "-I", protodir,
                     "--encode=chakong.v1.FreezeRequest", "broker.proto"],
                    input=text.encode(), stdout=f, stderr=subprocess.PIPE,
                    timeout=30)
            if p.returncode != 0 or os.path.getsize(path) == 0:
                sys.exit(f"protoc --encode FreezeRequest: "
                         f"{p.stderr.decode().strip()}")
            n += 1
            banks.add(src["source"])
print(n, len(banks))
EOF
}

# actions_status: the broker's /status "actions" object, one line of JSON.
actions_status() {
	"$PY" - "$CK_STATUS_URL/status" <<'EOF'
import json, sys, urllib.request

s = json.load(urllib.request.urlopen(sys.argv[1], timeout=5))
print(json.dumps(s["actions"]))
EOF
}

# one_run MODE SHAPE REP OUT: a fresh stack, the warm-up, the measured run;
# OUT gets one JSON object: ckload's --json plus "before" and "after"
# (the broker's /status actions), "bodies" and "banks".
one_run() {
	local mode=$1 shape=$2 rep=$3 out=$4 c m nb banks before after rc
	local limit i p0 p1
	local -a data=() load=()
	c=${shape%x*}
	m=${shape#*x}
	limit=$(awk -v d="$DURATION" -v w="$WARMUP" \
		'BEGIN { print int(d + w) + 30 }')
	stack_up "$mode"
	nb=$(freeze_bodies "$STACK") || die "cannot make the FreezeRequests"
	read -r nb banks <<<"$nb"
	((nb > 0)) || die "no debtor in DEBTORS has a CNY deposit"
	for ((i = 0; i < nb; i++)); do
		data+=(--data "$STACK/freeze.$i.bin")
	done
	load=("$CKLOAD" --method "$FREEZE" "${data[@]}" -c "$c" -m "$m"
		--count-reply-field 1 --json)
	if [[ $WARMUP != 0 ]]; then
		rc=0
		timeout "$limit" "${load[@]}" -d "$WARMUP" \
			--unique-request-id "warm-$mode-$shape-$rep" \
			>"$STACK/warm.json" || rc=$?
		((rc == 0)) || die "warm-up $mode $shape: ckload exited $rc" \
			"($(head -c 300 "$STACK/warm.json"))"
	fi
	p0=$(sync_probe "$STACK" quick)
	before=$(actions_status)
	rc=0
	timeout "$limit" "${load[@]}" -d "$DURATION" \
		--unique-request-id "run-$mode-$shape-$rep" \
		--pid "$CK_PID" --pid "$CK_SIM_PID" >"$STACK/run.json" || rc=$?
	((rc == 0 || rc == 1)) || die "$mode $shape: ckload exited $rc"
	after=$(actions_status)
	p1=$(sync_probe "$STACK" quick)
	"$PY" - "$STACK/run.json" "$before" "$after" "$nb" "$banks" \
		"$CK_PID" "$CK_SIM_PID" "$p0" "$p1" >"$out" <<'EOF'
import json, sys

r = json.load(open(sys.argv[1]))
r["before"], r["after"] = json.loads(sys.argv[2]), json.loads(sys.argv[3])
r["nbodies"], r["nbanks"] = int(sys.argv[4]), int(sys.argv[5])
r["broker_pid"], r["sim_pid"] = int(sys.argv[6]), int(sys.argv[7])
r["sync_probe_ms"] = [float(sys.argv[8]), float(sys.argv[9])]
print(json.dumps(r))
EOF
	stack_down
}

# summarise MODE SHAPE FILE...: one table row (medians over the runs);
# exits 3 when some run did not measure journaled actions.
summarise() {
	"$PY" - "$@" <<'EOF'
import json, statistics, sys

mode, shape, files = sys.argv[1], sys.argv[2], sys.argv[3:]
NAMES = {0: "NONE", 1: "DONE", 2: "PARTIAL", 3: "QUEUED", 4: "REJECTED",
         5: "PENDING"}
c, m = (int(x) for x in shape.split("x"))
rows, bad, outcomes, probes = [], [], {}, []
for f in files:
    r = json.load(open(f))
    b, a = r["before"], r["after"]
    jb, ja = b["journal"], a["journal"]
    intents = a["intents"] - b["intents"]
    finals = a["finals"] - b["finals"]
    commits = ja["commits"] - jb["commits"]
    cpu = {s["pid"]: s["cpu_us_per_call"] for s in r["servers"]}
    rf = r["reply_field"]
    for v, n in rf["values"].items():
        outcomes[int(v)] = outcomes.get(int(v), 0) + n
    why = []
    if r["failed"] or r["abandoned"] or r["aborted"]:
        why.append(f"{r['failed']} failed, {r['abandoned']} abandoned, "
                   f"status {r['status']}, errors {r['errors']}")
    if rf["unparsable"] or rf["other"] or "0" in rf["values"]:
        why.append(f"replies without an outcome: {rf}")
    if intents != r["calls"]:
        why.append(f"{intents} intents journaled for {r['calls']} calls")
    if why:
        bad.append(f"{f}: " + "; ".join(why))
    rows.append({
        "cps": r["calls_per_s"],
        "p50": (r["latency_ms"] or {}).get("p50"),
        "p99": (r["latency_ms"] or {}).get("p99"),
        "broker": cpu.get(r["broker_pid"]),
        "sim": cpu.get(r["sim_pid"]),
        "fsyncs": commits / intents if intents else None,
        "finals": finals / intents if intents else None,
        "maxb": ja["max_batch"],
        "failed": r["failed"] + r["abandoned"],
        "pending": a["pending"],
    })
    probes.extend(r["sync_probe_ms"])

def med(k):
    xs = [x[k] for x in rows if x[k] is not None]
    return statistics.median(xs) if xs else float("nan")

total = sum(outcomes.values()) or 1
mix = " ".join(f"{NAMES.get(v, v)} {100 * n / total:.0f}%"
               for v, n in sorted(outcomes.items()))
print(f"{mode:<7} {c * m:>7} {shape:<6} {med('cps'):>9.0f} "
      f"{med('p50'):>7.2f} {med('p99'):>7.2f} {med('broker'):>9.0f} "
      f"{med('fsyncs'):>8.2f} "
      f"{max(x['maxb'] for x in rows):>6} {med('sim'):>9.0f} "
      f"{statistics.median(probes):>6.2f} "
      f"{sum(x['failed'] for x in rows):>6}  {mix}")
for line in bad:
    print(f"bench: not a measurement of journaled actions: {line}",
          file=sys.stderr)
sys.exit(3 if bad else 0)
EOF
}

# sync_probe DIR [quick]: what one fdatasync costs in DIR's file system
# now, for 4 KiB written over a block the file has (what most LMDB
# commits do) and for 4 KiB appended (a commit that grows the file: the
# file system's journal must commit too, and that journal is shared with
# every process writing to this file system). With "quick": only the
# median of 10 appends, in ms.
sync_probe() {
	"$PY" - "$1/probe" "${2:-}" <<'EOF'
import os, sys, time

def run(fd, n, offset):
    ts = []
    for i in range(n):
        t = time.perf_counter()
        os.pwrite(fd, b"x" * 4096, offset(i))
        os.fdatasync(fd)
        ts.append((time.perf_counter() - t) * 1e3)
    ts.sort()
    return (f"p50 {ts[len(ts) // 2]:.2f} p90 {ts[len(ts) * 9 // 10]:.2f} "
            f"max {ts[-1]:.2f} ms")

fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
os.pwrite(fd, bytes(65536), 0)
os.fsync(fd)
if sys.argv[2] == "quick":
    ts = []
    for i in range(10):
        t = time.perf_counter()
        os.pwrite(fd, b"x" * 4096, 65536 + i * 4096)
        os.fdatasync(fd)
        ts.append((time.perf_counter() - t) * 1e3)
    os.close(fd)
    os.unlink(sys.argv[1])
    print(f"{sorted(ts)[5]:.3f}")
    sys.exit(0)
over = run(fd, 200, lambda i: (i % 16) * 4096)
app = run(fd, 50, lambda i: 65536 + i * 4096)
os.close(fd)
os.unlink(sys.argv[1])
print(f"overwrite {over}; append {app}")
EOF
}

header() {
	printf '%-7s %7s %-6s %9s %7s %7s %9s %8s %6s %9s %6s %6s  %s\n' \
		sim callers shape actions/s "p50 ms" "p99 ms" "broker us" \
		fsyncs max "sim us" "disk" failed outcomes
	printf '%-7s %7s %-6s %9s %7s %7s %9s %8s %6s %9s %6s %6s  %s\n' \
		"" "" "" "" "" "" "/action" /action batch /action "ms" "" \
		"(of OK replies)"
}

main() {
	(($# == 0)) || {
		sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
		exit 2
	}
	local t mode shape i rc=0 nb
	for t in "${SHAPES[@]}"; do
		[[ $t =~ ^[1-9][0-9]*x[1-9][0-9]*$ ]] ||
			die "CK_BENCH_SHAPES: '$t' is not CONNECTIONSxSTREAMS"
	done
	for t in "${MODES[@]}"; do
		[[ $t == sync || $t == nosync ]] ||
			die "CK_BENCH_SIM: '$t' is neither sync nor nosync"
	done
	[[ $REPS =~ ^[1-9][0-9]*$ ]] || die "CK_BENCH_REPS: a count expected"
	command -v protoc >/dev/null ||
		die "protoc not found (Debian: protobuf-compiler)"
	ensure_build
	RESULTS=$(mktemp -d "${TMPDIR:-/tmp}/ck-bench-act-results.XXXXXX")
	trap 'stack_down; rm -rf "$RESULTS"' EXIT
	trap 'exit 130' INT TERM
	echo "journaled actions benchmark (Freeze), $(date -u +%Y-%m-%dT%H:%MZ)," \
		"$(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "a fresh stack per run; median of $REPS runs of ${DURATION}s" \
		"after ${WARMUP}s warm-up; log level: chakongd" \
		"${CK_LOG_LEVEL:-info}, agencysim info"
	echo "us/action = CPU microseconds per action (utime+stime);" \
		"fsyncs/action = journal commits per action (each commit syncs)"
	echo "fdatasync of 4 KiB here, before: $(sync_probe "$RESULTS")"
	# Round after round of every row, so that a slow spell of the
	# machine (the disk above all: see the probes) hits every row alike
	# rather than all runs of one.
	for ((i = 0; i < REPS; i++)); do
		for mode in "${MODES[@]}"; do
			for shape in "${SHAPES[@]}"; do
				one_run "$mode" "$shape" "$i" \
					"$RESULTS/$mode.$shape.$i.json"
			done
		done
	done
	nb=$("$PY" -c 'import json,sys; r=json.load(open(sys.argv[1]));
print(r["nbodies"], "accounts at", r["nbanks"], "banks")' "$RESULTS/${MODES[0]}.${SHAPES[0]}.0.json")
	echo "fdatasync of 4 KiB here, after:  $(sync_probe "$RESULTS")"
	echo "freezes of 1 fen, sent in turn to $nb; every call a new request_id"
	echo
	header
	for mode in "${MODES[@]}"; do
		for shape in "${SHAPES[@]}"; do
			local -a files=()
			for ((i = 0; i < REPS; i++)); do
				files+=("$RESULTS/$mode.$shape.$i.json")
			done
			summarise "$mode" "$shape" "${files[@]}" || rc=$?
		done
	done
	((rc == 0)) || die "some run did not measure journaled actions (above)"
}

main "$@"
