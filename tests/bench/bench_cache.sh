#!/usr/bin/env bash
# bench_cache.sh: the reply cache (issue 4), measured with ckload. A
# benchmark, not a test: it prints tables and fails only when it cannot
# measure. How to read it: tests/bench/README.md, "The reply cache".
#
#   tests/bench/bench_cache.sh
#
# One stack (tests/stack.sh, its own temporary directory) with the cache
# on and deposits cacheable for a day (so no entry ages out during the
# run). Tables, every shape CK_BENCH_REPS times, medians:
#   1. Query with every source cached (张三: 3 accounts, a flat, a car),
#      the cache holding about 1,000 entries, next to nghttpd serving a
#      static gRPC reply of the same size with `grpc-status: 0` as a
#      trailer, same connections x streams; the ratio of CPU us per call
#      (goal: a cache hit costs the broker at most 2x nghttpd).
#   2. Query live against all cached for 256 debtors taken in turn
#      (distinct debtors: identical live queries in flight would be
#      coalesced into one agency call and measure something else).
#   3. The cached Query of table 1 again after cache.mdb was filled to
#      1,000,000 entries (written with python3-lmdb beside the running
#      broker: sealed-looking values under random debtor hashes).
#
# Environment: as bench_grpc.sh (CK_BUILD, CK_BENCH_DURATION,
# CK_BENCH_WARMUP, CK_BENCH_REPS, CK_BENCH_SHAPES, CK_LOG_LEVEL), and
#   CK_BENCH_FILL   entries for table 3 (default 1000000)
# Needs nghttpd (nghttp2-server), protoc and python3-lmdb (tests/deps.sh).
# About 3 minutes with the defaults.
set -euo pipefail

# ensure_build, stack_up/stack_down, measure (M_* medians), log_lines
# shellcheck source=bench_grpc.sh
. "$(dirname "${BASH_SOURCE[0]}")/bench_grpc.sh"

FILL=${CK_BENCH_FILL:-1000000}
export CK_CACHE_CONF=${CK_CACHE_CONF:-$'max_age.deposit = 86400\nmap_kb = 4194304'}

NGHTTPD_PID=
cleanup() {
	if [[ -n $NGHTTPD_PID ]]; then
		kill "$NGHTTPD_PID" 2>/dev/null || true
		wait "$NGHTTPD_PID" 2>/dev/null || true
	fi
	stack_down
}

# query_body FILE RESIDENT_ID MAX_AGE: a chakong.v1.QueryRequest
query_body() {
	protoc -I "$ROOT/proto/chakong/v1" --encode=chakong.v1.QueryRequest \
		broker.proto >"$1" <<PB || die "protoc --encode QueryRequest failed"
case { case_number: "(2019)粤01执123号" claim_amount_fen: 10000000 officer_id: "GZ0001" }
debtor { resident_id: "$2" name: "张三" }
max_age_s: $3
PB
}

# synthetic_ids N: N valid resident ids nobody in the population has
# (every source answers NOT_FOUND; still one agency call each).
synthetic_ids() {
	"$PY" - "$1" <<'EOF'
import sys
w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
for i in range(int(sys.argv[1])):
    body = "44010119700101" + "%03d" % (i % 1000)
    body = body[:6] + "%08d" % (19700101 + i // 1000) + body[14:]
    print(body + "10X98765432"[sum(int(c) * k for c, k in
                                   zip(body, w)) % 11])
EOF
}

# reply_size: bytes of the broker's Query reply for 张三, all cached
reply_size() {
	"$PY" - "$ROOT/tests/integration" "$STACK" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
import ck, sim
s = ck.Stack(sys.argv[2])
pb = ck.generate_messages(ck.mkdtemp("ck-bench-pb-"))
stub = pb.broker_grpc.AssetBrokerStub(s.channel())
req = sim.query_req(pb, resident_id=sim.ZHANG_SAN)
req.max_age_s = 86400
rep = stub.Query(req, timeout=10)
assert all(r.from_cache for r in rep.sources), "not all cached"
print(len(rep.SerializeToString()))
EOF
}

cache_entries() {
	"$PY" -c 'import json, sys, urllib.request
print(json.load(urllib.request.urlopen(sys.argv[1] + "/status",
    timeout=5))["cache"]["entries"])' "$CK_STATUS_URL"
}

# start_nghttpd SIZE: nghttpd over TLS (the broker's certificate; it asks
# for no client certificate, ckload's goes unused) serving SIZE bytes of
# gRPC message, framed, as application/grpc with a grpc-status trailer.
start_nghttpd() {
	local d=$STACK/nghttpd port
	mkdir -p "$d/htdocs/bench"
	"$PY" -c 'import os, struct, sys
n = int(sys.argv[2])
open(sys.argv[1], "wb").write(struct.pack(">BI", 0, n) + os.urandom(n))' \
		"$d/htdocs/bench/reply.grpc" "$1"
	echo "application/grpc grpc" >"$d/mime.types"
	nghttpd --trailer 'grpc-status: 0' -d "$d/htdocs" \
		--mime-types-file="$d/mime.types" 0 \
		"$CK_PKI/broker.key" "$CK_PKI/broker.crt" >"$d/log" 2>&1 &
	NGHTTPD_PID=$!
	for _ in $(seq 50); do
		# (awk reads to the end: an early exit would SIGPIPE ss)
		port=$(ss -ltnpH 2>/dev/null |
			awk -v p="pid=$NGHTTPD_PID," '$0 ~ p && !n &&
				$4 ~ /^0\.0\.0\.0:/ { sub(/.*:/, "", $4); print $4; n = 1 }')
		[[ -n $port ]] && break
		sleep 0.1
	done
	[[ -n $port ]] || die "nghttpd did not listen (see $d/log)"
	NGHTTPD_ADDR=127.0.0.1:$port
}

# fill N: write cache entries beside the running broker until there are N
fill() {
	"$PY" - "$CK_CACHE_DIR" "$1" <<'EOF'
import os, struct, sys, time
import lmdb
path, want = sys.argv[1], int(sys.argv[2])
env = lmdb.open(path, max_dbs=16, map_size=4194304 * 1024, subdir=True)
ent = env.open_db(b"entries", create=False)
age = env.open_db(b"age", create=False)
with env.begin() as t:
    have = t.stat(ent)["entries"]
now = int(time.time()) - 3600
seq = 1
while have < want:
    with env.begin(write=True) as t:
        for _ in range(min(50000, want - have)):
            k = os.urandom(16) + b"bank:fill\x00440100"
            hdr = (b"\x01" + os.urandom(4) + struct.pack(">QQ", now, seq))
            t.put(k, hdr + os.urandom(12 + 160 + 16), db=ent)
            t.put(struct.pack(">QQ", now, seq) + k, b"\x00", db=age)
            seq += 1
            have += 1
env.close()
EOF
}

# cached_table TITLE: the all-cached Query rows and nghttpd's, and ratios
HIT_US=()
cached_rows() {
	local label=$1 shape b
	HIT_US=()
	for shape in "${SHAPES[@]}"; do
		measure "$shape" -- --data "$STACK/zs_cached.bin" \
			--method /chakong.v1.AssetBroker/Query --pid "$CK_PID"
		b=M_pid_$CK_PID
		row "$label" "$shape" "${!b}"
		HIT_US+=("${!b}")
	done
}

main_cache() {
	local shape i n size b
	ensure_build
	command -v nghttpd >/dev/null || die "nghttpd not found (nghttp2-server)"
	"$PY" -c 'import lmdb' 2>/dev/null || die "python3-lmdb missing"
	trap cleanup EXIT
	trap 'exit 130' INT TERM
	stack_up
	echo "cache benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores," \
		"load $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "median of $REPS runs of ${DURATION}s after ${WARMUP}s warm-up;" \
		"chakongd log level ${CK_LOG_LEVEL:-info} (info: two lines per" \
		"Query, the query and the call)"

	# bodies: 张三 live and cached; 256 synthetic debtors live and cached
	query_body "$STACK/zs_live.bin" 11010519491231002X 0
	query_body "$STACK/zs_cached.bin" 11010519491231002X 86400
	local -a live=() cached=() warm=()
	i=0
	while read -r id; do
		query_body "$STACK/live.$i.bin" "$id" 0
		query_body "$STACK/cached.$i.bin" "$id" 86400
		live+=(--data "$STACK/live.$i.bin")
		cached+=(--data "$STACK/cached.$i.bin")
		((i < 82)) && warm+=(--data "$STACK/live.$i.bin")
		i=$((i + 1))
	done < <(synthetic_ids 256)

	# ~1,000 entries: 张三 and 82 others, 12 sources each
	"$CKLOAD" -n 1 --data "$STACK/zs_live.bin" \
		--method /chakong.v1.AssetBroker/Query >/dev/null
	"$CKLOAD" -n 82 "${warm[@]}" \
		--method /chakong.v1.AssetBroker/Query >/dev/null
	sleep 0.5	# the writer commits
	size=$(reply_size)
	n=$(cache_entries)
	start_nghttpd "$size"

	echo
	echo "1. Cache hit (every source of 张三 cached, $n entries in" \
		"cache.mdb) vs nghttpd, static $size-byte reply"
	row_header target "server us/call"
	cached_rows "Query cached"
	local -a hit1k=("${HIT_US[@]}") ngx=()
	for shape in "${SHAPES[@]}"; do
		measure "$shape" -- --server "$NGHTTPD_ADDR" \
			--method /bench/reply.grpc --data "$STACK/zs_cached.bin" \
			--pid "$NGHTTPD_PID"
		b=M_pid_$NGHTTPD_PID
		row "nghttpd static" "$shape" "${!b}"
		ngx+=("${!b}")
	done
	echo "goal: a cache hit costs the broker <= 2x nghttpd's CPU per call"
	for i in "${!SHAPES[@]}"; do
		awk -v sh="${SHAPES[$i]}" -v b="${hit1k[$i]}" -v g="${ngx[$i]}" \
			'BEGIN { r = g > 0 ? b / g : 0
			printf "  %-6s broker %6.1f us / nghttpd %5.1f us = %.2fx: %s\n",
			    sh, b, g, r, r <= 2 ? "within the goal" : "over the goal" }'
	done

	echo
	echo "2. Query live vs all cached, 256 debtors in turn" \
		"(NOT_FOUND at every agency: 11 agency calls per live Query)"
	row_header target "broker us/call"
	for shape in "${SHAPES[@]}"; do
		measure "$shape" -- "${live[@]}" \
			--method /chakong.v1.AssetBroker/Query --pid "$CK_PID"
		b=M_pid_$CK_PID
		row "Query live" "$shape" "${!b}"
	done
	for shape in "${SHAPES[@]}"; do
		measure "$shape" -- "${cached[@]}" \
			--method /chakong.v1.AssetBroker/Query --pid "$CK_PID"
		b=M_pid_$CK_PID
		row "Query cached" "$shape" "${!b}"
	done

	echo
	local t0=$SECONDS
	fill "$FILL"
	echo "3. Cache hit with $(cache_entries) entries in cache.mdb" \
		"(filled in $((SECONDS - t0)) s)"
	row_header target "broker us/call"
	cached_rows "Query cached"
	for i in "${!SHAPES[@]}"; do
		awk -v sh="${SHAPES[$i]}" -v a="${hit1k[$i]}" -v b="${HIT_US[$i]}" \
			'BEGIN { printf "  %-6s %6.1f us with ~1k entries, %6.1f us with the fill: %.2fx\n",
			    sh, a, b, (a > 0 ? b / a : 0) }'
	done
}

main_cache "$@"
