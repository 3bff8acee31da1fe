#!/usr/bin/env bash
# demo.sh: the main job. Installs what is missing, builds, brings up the
# local stack (tests/stack.sh: the broker and the agency simulator with 8
# banks and 4 registries) in ./stack, runs a sample chakongctl session
# against it as the Guangzhou Intermediate Court — a real query, freeze and
# deduction — prints the operators' /status, and stops the stack again.
# Safe to run twice.
#
#   bash tests/demo.sh              the whole demo
#   CK_DEMO_KEEP=1 bash tests/demo.sh
#                                   leave the stack running afterwards
#                                   (stop it: tests/stack.sh down stack)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
exec </dev/null

B=${CK_BUILD:-build}
DIR=${CK_DEMO_DIR:-$ROOT/stack}
PY=/usr/bin/python3

if [[ -t 1 ]]; then
	step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
	step() { printf '\n== %s\n' "$*"; }
fi

step "dependencies"
bash tests/deps.sh

step "build ($B)"
if [[ ! -f $B/build.ninja ]]; then
	meson setup "$B" -Dtest_hooks=true
fi
ninja -C "$B"

step "stack up ($DIR)"
if [[ ${CK_DEMO_KEEP:-0} != 1 ]]; then
	trap 'step "stack down"; CK_BUILD=$B tests/stack.sh down "$DIR"' EXIT
fi
CK_BUILD=$B tests/stack.sh up "$DIR"
# shellcheck disable=SC1091
source "$DIR/stack.env"
CTL=$CK_BUILD/broker/chakongctl

# ctl ARGS...: show the command, run it, show a non-zero exit status (the
# gRPC status code) without ending the demo.
ctl() {
	local a line='$ chakongctl'
	for a in "$@"; do
		# Quote for the reader only where a shell would need it.
		case $a in
		*[[:space:]\(\)\[\]\{\}\$\`\"\'\|\&\;\<\>\*\?\!\#\~\\]*)
			line+=" '${a//\'/\'\\\'\'}'"
			;;
		*) line+=" $a" ;;
		esac
	done
	printf '\n%s\n' "$line"
	local rc=0
	"$CTL" "$@" || rc=$?
	((rc == 0)) || echo "(exit status $rc)"
}

step "a session as the Guangzhou Intermediate Court (court 440100)"
echo "connection from $DIR/stack.env: CK_GRPC=$CK_GRPC CK_CERT=$CK_CERT"
ctl health
ctl query --id 11010519491231002X --name 张三 \
	--case '(2019)粤01执123号' --claim 150000.00 --officer GZ0001
echo
echo "# the same debtor's vehicle, for machines:"
ctl query --json --category vehicle --id 11010519491231002X --name 张三 \
	--case '(2019)粤01执123号' --claim 150000.00 --officer GZ0001
echo
echo "# an enterprise debtor (unified social credit code), registries only:"
ctl query --uscc 91110000600037341L --name 某某有限公司 \
	--category enterprise,real-estate,vehicle \
	--case '(2020)粤01执45号' --claim 800000.00 --officer GZ0001
echo
echo "# a debtor no agency knows: NOT_FOUND per source, not an error"
ctl query --category deposit --id 513101198201130014 --name 王五 \
	--case '(2019)粤01执123号' --claim 150000.00 --officer GZ0001

step "freeze and deduct (张三's ICBC account), exactly once per request id"
# A fresh case number per run keeps the demo safe to run twice.
N=$((RANDOM % 9000 + 1000))
CASE="(2026)粤01执${N}号"
REF=$("$CTL" query --json --category deposit --id 11010519491231002X \
	--name 张三 --case "$CASE" --claim 150000.00 --officer GZ0001 |
	"$PY" -c 'import json,sys
doc = json.load(sys.stdin)
print(next(a["asset_ref"] for s in doc["sources"] if s["source"] == "bank:icbc"
           for a in s["assets"]))')
ctl freeze --request-id "demo-freeze-$N" --id 11010519491231002X --name 张三 \
	--case "$CASE" --claim 150000.00 --officer GZ0001 --asset-ref "$REF" \
	--document "${CASE}之一" --days 180 --amount 5000.00
echo
echo "# the same request id again: the recorded outcome, no second freeze"
FREF=$("$CTL" freeze --json --request-id "demo-freeze-$N" \
	--id 11010519491231002X --name 张三 --case "$CASE" --claim 150000.00 \
	--officer GZ0001 --asset-ref "$REF" --document "${CASE}之一" \
	--days 180 --amount 5000.00 |
	"$PY" -c 'import json,sys; print(json.load(sys.stdin)["freeze_ref"])')
echo "freeze_ref ${FREF:0:24}... (same as above)"
ctl deduct --request-id "demo-deduct-$N" --id 11010519491231002X --name 张三 \
	--case "$CASE" --officer GZ0001 --freeze-ref "$FREF" \
	--document "${CASE}之二" --amount 1200.50
echo
echo "# over the claim plus the fee margin: refused, nothing sent"
ctl freeze --request-id "demo-over-$N" --id 11010519491231002X --name 张三 \
	--case "$CASE" --claim 150000.00 --officer GZ0001 --asset-ref "$REF" \
	--document "${CASE}之三" --days 180 --amount 200000.00
echo
echo "# the account now (the freeze and what is left of it after the deduction):"
ctl query --category deposit --id 11010519491231002X --name 张三 \
	--case "$CASE" --claim 150000.00 --officer GZ0001 |
	sed -n '/bank:icbc/,/bank:abc/p' | sed '$d'

step "bad input"
echo "# an identity number whose check character is wrong:"
ctl query --id 110105194912310023 --name 张三 \
	--case '(2019)粤01执123号' --claim 150000.00 --officer GZ0001

step "operators' status: $CK_STATUS_URL/status"
echo "(methods not called yet left out here)"
curl -fsS "$CK_STATUS_URL/status" | "$PY" -c '
import json, sys
doc = json.load(sys.stdin)
doc["methods"] = {k: v for k, v in doc.get("methods", {}).items()
                  if v.get("count")}
print(json.dumps(doc, indent=2, ensure_ascii=False))'
echo
echo "metrics: curl $CK_STATUS_URL/metrics | grep chakong_grpc_calls_total"
curl -fsS "$CK_STATUS_URL/metrics" |
	grep '^chakong_grpc_calls_total' | grep -v ' 0$' || true

if [[ ${CK_DEMO_KEEP:-0} == 1 ]]; then
	step "the stack keeps running"
	echo "source $DIR/stack.env; $CTL health"
	echo "stop it: tests/stack.sh down $DIR"
fi
