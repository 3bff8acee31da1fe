#!/usr/bin/env bash
# bench_grpc.sh: gRPC throughput, latency and server CPU per call of a local
# stack, measured with ckload (tests/bench/ckload.c). A benchmark, not a
# test: it prints tables and fails only when it cannot measure.
#
#   tests/bench/bench_grpc.sh
#
# It brings up its own stack (tests/stack.sh, 127.0.0.1 only) in a temporary
# directory and takes it down on exit. Every shape runs CK_BENCH_REPS times;
# each column is the median over the runs. The machine has 2 cores that
# ckload shares with the servers, so calls/s and latency say as much about
# the machine as about the daemon: the column to trust is the server's CPU
# time per call (utime + stime from /proc/PID/stat around the measured
# window; the kernel counts it in 10 ms ticks, which the run lengths below
# keep under 1-2%).
#
# Environment:
#   CK_BUILD            build directory (default: build/ at the repository
#                       root; set up with -Dtest_hooks=true and built when
#                       chakongd or ckload is missing)
#   CK_BENCH_DURATION   measured seconds per run (default 2)
#   CK_BENCH_WARMUP     warm-up seconds per run, not measured (default 0.5)
#   CK_BENCH_REPS       runs per shape (default 3)
#   CK_BENCH_SHAPES     connections x streams (default "1x1 1x16 4x32")
#   CK_LOG_LEVEL        the daemon's log level (tests/stack.sh; default info,
#                       which logs one line per Query as production does)
#
# With the defaults the whole run takes about a minute.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PY=/usr/bin/python3

DURATION=${CK_BENCH_DURATION:-2}
WARMUP=${CK_BENCH_WARMUP:-0.5}
REPS=${CK_BENCH_REPS:-3}
read -r -a SHAPES <<<"${CK_BENCH_SHAPES:-1x1 1x16 4x32}"

# The valid debtor of the integration tests.
QUERY_ARGS=(--query-id 11010519491231002X --query-name 张三
	--query-case '(2019)粤01执123号' --query-officer GZ0001)

die() {
	echo "bench: $*" >&2
	exit 1
}

ensure_build() {
	local b=${CK_BUILD:-$ROOT/build}
	[[ $b == /* ]] || b=$PWD/$b
	export CK_BUILD=$b
	CKLOAD=$CK_BUILD/tests/bench/ckload
	[[ -x $CKLOAD && -x $CK_BUILD/broker/chakongd ]] && return 0
	echo "bench: building $CK_BUILD" >&2
	if [[ ! -f $CK_BUILD/build.ninja ]]; then
		meson setup "$CK_BUILD" "$ROOT" -Dtest_hooks=true >&2
	fi
	ninja -C "$CK_BUILD" >&2
	[[ -x $CKLOAD ]] || die "the build produced no $CKLOAD"
}

STACK=
stack_down() {
	if [[ -n $STACK ]]; then
		"$ROOT/tests/stack.sh" down "$STACK" >/dev/null 2>&1 || true
		rm -rf "$STACK"
		STACK=
	fi
}

stack_up() {
	STACK=$(mktemp -d "${TMPDIR:-/tmp}/ck-bench.XXXXXX")
	"$ROOT/tests/stack.sh" up "$STACK" >/dev/null ||
		die "tests/stack.sh up failed"
	# shellcheck disable=SC1091
	. "$STACK/stack.env"
}

# median_of FILE...: the medians of the ckload --json objects in FILEs, as
# shell assignments: M_cps, M_p50, M_p99, M_client_us, M_failed (the sum
# over the runs, not a median) and M_pid_<PID> (server CPU us per call).
median_of() {
	"$PY" - "$@" <<'EOF'
import json, statistics, sys

runs = [json.load(open(f)) for f in sys.argv[1:]]

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else float("nan")

lat = [r["latency_ms"] or {} for r in runs]
print(f"M_cps={med([r['calls_per_s'] for r in runs]):.0f}")
print(f"M_p50={med([l.get('p50') for l in lat]):.3f}")
print(f"M_p99={med([l.get('p99') for l in lat]):.3f}")
print(f"M_client_us={med([r['client_cpu_us_per_call'] for r in runs]):.1f}")
print(f"M_failed={sum(r['failed'] + r['abandoned'] for r in runs)}")
pids = {s["pid"] for r in runs for s in r["servers"]}
for pid in sorted(pids):
    v = med([s["cpu_us_per_call"] for r in runs for s in r["servers"]
             if s["pid"] == pid])
    print(f"M_pid_{pid}={v:.1f}")
EOF
}

M_cps='' M_p50='' M_p99='' M_client_us='' M_failed=''

# measure SHAPE -- CKLOAD_ARGS...: run ckload CK_BENCH_REPS times with the
# shape's -c and -m and set the M_* variables (see median_of). Pass --pid
# for every server whose CPU is wanted.
measure() {
	local shape=$1 c m i out rc limit
	shift 2
	c=${shape%x*}
	m=${shape#*x}
	# A run past its length plus a margin has hung: stop it.
	limit=$(awk -v d="$DURATION" -v w="$WARMUP" \
		'BEGIN { print int(d + w) + 30 }')
	local -a files=()
	for ((i = 0; i < REPS; i++)); do
		out=$STACK/run.$i.json
		rc=0
		timeout "$limit" "$CKLOAD" \
			-c "$c" -m "$m" -d "$DURATION" --warmup "$WARMUP" \
			--json "$@" >"$out" || rc=$?
		# 1 is "some call failed": still a measurement (M_failed
		# shows it); anything else is not.
		((rc == 0 || rc == 1)) || die "ckload $* exited $rc"
		files+=("$out")
	done
	eval "$(median_of "${files[@]}")"
}

row_header() {
	printf '%-14s %-6s %9s %8s %8s %13s %13s %7s\n' "$1" shape calls/s \
		"p50 ms" "p99 ms" "$2" "ckload us" failed
}

# row LABEL SHAPE SERVER_US: one line from the M_* of the last measure.
row() {
	printf '%-14s %-6s %9s %8s %8s %13s %13s %7s\n' "$1" "$2" "$M_cps" \
		"$M_p50" "$M_p99" "$3" "$M_client_us" "$M_failed"
}

# ---- the tables ------------------------------------------------------
#
# One function per table, each printing a title, a header and its rows
# from `measure` and `row`; TABLES lists them in order. The fan-out table
# (Query through 8 banks and 4 registries, next to one simulator endpoint
# called directly, with simulator CPU per agency call = its CPU per ckload
# call divided by the agency calls one Query makes) is one more such
# function, listed in TABLES once tests/stack.sh starts the simulator and
# names its pid and endpoints in stack.env.

table_broker() {
	local shape us
	echo "Broker alone: chakongd pid $CK_PID on $CK_GRPC"
	row_header method "broker us/call"
	for shape in "${SHAPES[@]}"; do
		measure "$shape" -- --health --pid "$CK_PID"
		us=M_pid_$CK_PID
		row Health/Check "$shape" "${!us}"
	done
	for shape in "${SHAPES[@]}"; do
		measure "$shape" -- "${QUERY_ARGS[@]}" --pid "$CK_PID"
		us=M_pid_$CK_PID
		row Query "$shape" "${!us}"
	done
}

TABLES=(table_broker)

main() {
	(($# == 0)) || {
		sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
		exit 2
	}
	local t
	for t in "${SHAPES[@]}"; do
		[[ $t =~ ^[1-9][0-9]*x[1-9][0-9]*$ ]] ||
			die "CK_BENCH_SHAPES: '$t' is not CONNECTIONSxSTREAMS"
	done
	[[ $REPS =~ ^[1-9][0-9]*$ ]] || die "CK_BENCH_REPS: a count expected"
	ensure_build
	trap stack_down EXIT
	trap 'exit 130' INT TERM
	stack_up
	echo "ckload benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores," \
		"load $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "median of $REPS runs of ${DURATION}s after ${WARMUP}s warm-up;" \
		"daemon log level ${CK_LOG_LEVEL:-info}"
	echo "us/call = CPU microseconds per call (utime+stime); ckload shares" \
		"the cores, so trust CPU per call over calls/s"
	for t in "${TABLES[@]}"; do
		echo
		"$t"
	done
}

main "$@"
