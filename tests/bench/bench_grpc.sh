#!/usr/bin/env bash
# bench_grpc.sh: gRPC throughput, latency and server CPU per call of a local
# stack, measured with ckload (tests/bench/ckload.c). A benchmark, not a
# test: it prints tables and fails only when it cannot measure. What each
# table measures and how to read it: tests/bench/README.md.
#
#   tests/bench/bench_grpc.sh
#
# It brings up its own full stack (tests/stack.sh: chakongd and the agency
# simulator with 8 banks and 4 registries, 127.0.0.1 only) in a temporary
# directory and takes it down on exit. Tables: the broker's transport alone
# (Health/Check), then Query through the whole fan-out next to one
# simulator endpoint called directly. Every shape runs CK_BENCH_REPS times;
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
#                       which logs one line per call as production does;
#                       warn measures the daemon without it). The simulator
#                       always runs at its default, info, which logs one
#                       line per call too: tests/stack.sh starts it without
#                       a config, the only place its level can be set
#
# Needs protoc (protobuf-compiler, tests/deps.sh) to encode the direct
# simulator call's request. With the defaults the whole run takes about
# 70 seconds.
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
	[[ -x $CKLOAD && -x $CK_BUILD/broker/chakongd &&
		-x $CK_BUILD/tests/agencysim/agencysim ]] && return 0
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
# from `measure` and `row`; TABLES lists them in order.

table_broker() {
	local shape us
	echo "Broker transport: chakongd pid $CK_PID on $CK_GRPC" \
		"(no agency behind this method)"
	row_header method "broker us/call"
	for shape in "${SHAPES[@]}"; do
		measure "$shape" -- --health --pid "$CK_PID"
		us=M_pid_$CK_PID
		row Health/Check "$shape" "${!us}"
	done
}

# The endpoint called directly, its method and the request's message type
# (in proto/chakong/agency/v1/bank.proto).
DIRECT_EP=icbc
DIRECT_METHOD=/chakong.agency.v1.Bank/QueryAccounts
DIRECT_TYPE=chakong.agency.v1.QueryAccountsRequest

# direct_body FILE: the QueryAccountsRequest the bank adapter sends for
# QUERY_ARGS (adapters/common/map.c ck_ad_fill_context: broker_id gz, no
# idempotency key on a query, origin interactive), encoded by protoc from
# the text format so the field numbers come from the .proto itself.
direct_body() {
	command -v protoc >/dev/null ||
		die "protoc not found (Debian: protobuf-compiler)"
	protoc -I "$ROOT/proto/chakong/agency/v1" --encode="$DIRECT_TYPE" \
		bank.proto >"$1" <<'PB' || die "protoc --encode $DIRECT_TYPE failed"
ctx {
  broker_id: "gz"
  court_id: "440100"
  officer_id: "GZ0001"
  case_number: "(2019)粤01执123号"
  origin: "interactive"
}
subject { resident_id: "11010519491231002X" name: "张三" }
PB
	[[ -s $1 ]] || die "protoc wrote an empty $DIRECT_TYPE"
}

# fanout_counters: "QUERIES AGENCY_CALLS", the broker's counters of
# finished Queries and of outbound agency calls (any status), from its
# status listener's /metrics.
fanout_counters() {
	"$PY" - "$CK_STATUS_URL/metrics" <<'EOF2'
import re, sys, urllib.request

text = urllib.request.urlopen(sys.argv[1], timeout=5).read().decode()
q = a = 0
for line in text.splitlines():
    m = re.match(r'(\w+)\{([^}]*)\} (\S+)$', line)
    if not m:
        continue
    name, labels, value = m.groups()
    if name == "chakong_grpc_calls_total" and \
            'method="/chakong.v1.AssetBroker/Query"' in labels:
        q += float(value)
    elif name == "chakong_endpoint_calls_total":
        a += float(value)
print(int(q), int(a))
EOF2
}

fanout_header() {
	printf '%-20s %-6s %9s %8s %8s %10s %9s %8s %10s %7s\n' \
		target shape calls/s "p50 ms" "p99 ms" "broker us" "sim us" \
		"agency" "ckload us" failed
	printf '%-20s %-6s %9s %8s %8s %10s %9s %8s %10s %7s\n' \
		"" "" "" "" "" "per call" "per ag." "calls" "per call" ""
}

# fanout_row LABEL SHAPE BROKER_US SIM_US AGENCY_CALLS
fanout_row() {
	printf '%-20s %-6s %9s %8s %8s %10s %9s %8s %10s %7s\n' "$1" "$2" \
		"$M_cps" "$M_p50" "$M_p99" "$3" "$4" "$5" "$M_client_us" \
		"$M_failed"
}

# Query through the broker (every adapter: 8 banks and 4 registries, of
# which a Query reaches those its debtor's kind needs) next to one
# simulator endpoint called directly with the broker's own identity.
# "agency calls" is per ckload call: for Query, the broker's outbound
# agency calls over its Queries during the shape's runs (warm-up
# included), from its /metrics; "sim us per ag." is the simulator's CPU
# per ckload call divided by that. Broker CPU on the direct rows should be
# about 0: nothing goes through it.
table_fanout() {
	local shape b s q0 a0 q1 a1 per body=$STACK/query_accounts.bin
	local sim_addr
	local -a sum=() direct=()
	local -a pids=(--pid "$CK_PID" --pid "$CK_SIM_PID")

	[[ -n ${CK_SIM_PID:-} && -n ${CK_SIM_READY:-} ]] ||
		die "the stack has no simulator (CK_NO_SIM set?)"
	sim_addr=$(sed -n "s/^endpoint\\.$DIRECT_EP=//p" "$CK_SIM_READY")
	[[ -n $sim_addr ]] || die "the simulator serves no endpoint.$DIRECT_EP"
	direct_body "$body"
	direct=(--server "$sim_addr" --cert "$CK_PKI/broker.crt"
		--key "$CK_PKI/broker.key" --method "$DIRECT_METHOD"
		--data "$body")

	echo "Fan-out: Query via chakongd pid $CK_PID on $CK_GRPC;" \
		"agencysim pid $CK_SIM_PID"
	echo "direct: $DIRECT_METHOD on endpoint.$DIRECT_EP $sim_addr" \
		"as the broker (role broker)"
	fanout_header
	for shape in "${SHAPES[@]}"; do
		read -r q0 a0 <<<"$(fanout_counters)"
		measure "$shape" -- "${QUERY_ARGS[@]}" "${pids[@]}"
		read -r q1 a1 <<<"$(fanout_counters)"
		b=M_pid_$CK_PID
		s=M_pid_$CK_SIM_PID
		per=$(awk -v q=$((q1 - q0)) -v a=$((a1 - a0)) \
			'BEGIN { if (q > 0) printf "%.2f", a / q; else print "nan" }')
		fanout_row Query "$shape" "${!b}" \
			"$(awk -v s="${!s}" -v n="$per" \
				'BEGIN { if (n > 0) printf "%.1f", s / n; else print "nan" }')" \
			"$per"
		sum+=("$shape ${!b} $per")
	done
	for shape in "${SHAPES[@]}"; do
		measure "$shape" -- "${direct[@]}" "${pids[@]}"
		b=M_pid_$CK_PID
		s=M_pid_$CK_SIM_PID
		fanout_row "direct ${DIRECT_EP}" "$shape" "${!b}" "${!s}" 1
	done
	echo "goal: broker <= ${GOAL_US} us CPU per Query fanning out to 12" \
		"agency calls (~$((GOAL_US / 12)) us per agency call)"
	local line sh us n
	for line in "${sum[@]}"; do
		read -r sh us n <<<"$line"
		awk -v sh="$sh" -v us="$us" -v n="$n" -v g="$GOAL_US" 'BEGIN {
			per = n > 0 ? us / n : 0
			v = sprintf("%.1fx the goal", us / g)
			if (us <= g)
				v = "within the goal"
			printf "  %-6s %6.1f us/Query = %5.1f us x %s agency calls: %s\n",
			    sh, us, per, n, v
		}'
	done
}

# table_fanout's goal, broker CPU us per Query.
GOAL_US=150

TABLES=(table_broker table_fanout)

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
		"log level: chakongd ${CK_LOG_LEVEL:-info}, agencysim info"
	echo "us/call = CPU microseconds per call (utime+stime); ckload shares" \
		"the cores, so trust CPU per call over calls/s"
	local l0 s0
	l0=$(log_lines "$CK_LOG")
	s0=$(log_lines "${CK_SIM_LOG:-}")
	for t in "${TABLES[@]}"; do
		echo
		"$t"
	done
	echo
	echo "lines logged during the tables: chakongd" \
		"$(($(log_lines "$CK_LOG") - l0)), agencysim" \
		"$(($(log_lines "${CK_SIM_LOG:-}") - s0))"
}

# log_lines FILE: its line count (0 when there is no such file).
log_lines() {
	if [[ -n $1 && -f $1 ]]; then
		wc -l <"$1"
	else
		echo 0
	fi
}

# Sourced (bench_cache.sh borrows the helpers above): define, do not run.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	main "$@"
fi
