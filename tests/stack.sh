#!/usr/bin/env bash
# stack.sh: one local chakong stack on free 127.0.0.1 ports.
#
#   tests/stack.sh up DIR     PKI, configs, the agency simulator (8 banks and
#                             the real-estate, vehicle, household and
#                             business registries) and chakongd in the
#                             background; waits until both are ready;
#                             writes DIR/stack.env
#   tests/stack.sh down DIR   stops exactly the processes `up` started
#   tests/stack.sh restart DIR chakongd|agencysim
#                             SIGKILLs that one process (if it still runs)
#                             and starts it again with the same config,
#                             state and ports (chakongd: listen and
#                             status_listen pinned to the ports `up` got;
#                             the simulator: DIR/agencysim.conf with every
#                             port it had); its environment passes through
#                             (CK_CRASHPOINT, CK_CRASHPOINT_SKIP for a test
#                             build's chakongd); waits until ready, and on
#                             failure exits 1 leaving the rest running
#
# Files in DIR:
#   pki/            tests/pki/mkpki output (CA, broker, courts, rogue,
#                   expired, agency-<id> for every simulated agency)
#   ref.key         the broker's key for sealing asset_ref/freeze_ref
#   cache.key       the data key of the reply cache; cache/ its cache.mdb
#   state/          the broker's state.mdb (journal, freezes, cases)
#   agencysim.*     the simulator's ready file, log, exit status; sim-state/
#   chakongd.conf   the daemon's config (listen on port 0: the kernel picks;
#                   one [endpoint.X] per simulated agency, the adapters)
#   chakongd.ready  written by chakongd once listening (grpc=, status=, pid=)
#   chakongd.log    the daemon's stdout and stderr
#   chakongd.exit   the daemon's exit status, written when it exits
#                   (128+N: killed by signal N)
#   pids            NAME<TAB>PID<TAB>STRING: processes `up` started; `down`
#                   signals PID only while /proc/PID/cmdline contains STRING,
#                   so a recycled pid is never touched
#   stack.env       shell-sourceable: CK_GRPC, CK_STATUS, CK_CA, CK_CERT, ...
#                   and CK_SIM_* for the simulator's control interface
#
# Environment:
#   CK_BUILD          build directory (default: build/ at the repository root;
#                     made with -Dtest_hooks=true when chakongd is missing)
#   CK_READY_TIMEOUT  seconds `up` waits for readiness (default 30)
#   CK_GRACE          grace_period_s written to the config (default 10)
#   CK_LOG_LEVEL      log_level written to the config (default info)
#   CK_MAX_STREAMS    max_concurrent_streams (default 100)
#   CK_LIMITS         more [limits] lines, newline-separated `key = value`
#                     (tests that need small limits use it on a stack of
#                     their own)
#   CK_NO_SIM=1       the broker alone: no simulator, no adapters
#   CK_SIM_SEED, CK_SIM_SIZE   the simulated population (default 42, 2000)
#   CK_ENDPOINT_CONF  more lines for every [endpoint.X] (for instance
#                     breaker settings a test needs)
#   CK_ACTIONS_CONF   more [actions] lines (fee_margin_percent, ...)
#   CK_CACHE_CONF     more [cache] lines (map_kb, max_age.*, share.*, ...)
#   CK_EXTRA_CONF     more sections appended to chakongd.conf; @endpoint.X@
#                     in it becomes that simulated endpoint's address
#   CK_BROKER_ID      broker_id (default gz); another id serves and calls
#                     agencies with broker-<id>.crt (urn:chakong:broker:<id>)
#   CK_PKI_DIR        the PKI directory (default DIR/pki): two stacks that
#                     federate share one (one CA, each its broker-<id>.crt)
#   CK_POLICY_CONF    the [policy.*] sections, replacing the default ones
#                     (Guangzhou 440100: every right on every court's
#                     cases; Foshan 440600: Query deposits and real estate,
#                     Freeze, Extend and Release deposits, its own cases)
#   CK_CRL            [tls] crl (default: DIR/pki/crl.pem, which revokes
#                     pki/revoked.crt; "none" for no CRL)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

die() {
	echo "stack: $*" >&2
	exit 1
}

usage() {
	echo "usage: tests/stack.sh up|down|status DIR" >&2
	echo "       tests/stack.sh restart DIR chakongd|agencysim" >&2
	exit 2
}

# cmdline_has PID STRING: the live, non-zombie process PID has STRING in its
# command line (arguments joined by spaces).
cmdline_has() {
	local pid=$1 want=$2 cmd state
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	state=$(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$pid/stat" \
		2>/dev/null) || return 1
	[[ -n $state && $state != Z && $state != X ]] || return 1
	cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
	[[ $cmd == *"$want"* ]]
}

# tail_log FILE: the end of a log, for a failure report.
tail_log() {
	[[ -f $1 ]] || return 0
	echo "---- last lines of $1 ----" >&2
	tail -n 40 "$1" >&2
	echo "----" >&2
}

# conf_value FILE KEY: the first `KEY = value` in an INI file.
conf_value() {
	sed -n "s/^[[:space:]]*$2[[:space:]]*=[[:space:]]*\\([^;#]*\\).*/\\1/p" \
		"$1" 2>/dev/null | head -n 1 | tr -d '[:space:]'
}

# sq VALUE: VALUE single-quoted for the shell.
sq() {
	printf "'%s'" "${1//\'/\'\\\'\'}"
}

ensure_build() {
	local b=${CK_BUILD:-$ROOT/build}
	[[ $b == /* ]] || b=$PWD/$b
	CK_BUILD=$b
	CHAKONGD=$CK_BUILD/broker/chakongd
	AGENCYSIM=$CK_BUILD/tests/agencysim/agencysim
	[[ -x $CHAKONGD && -x $AGENCYSIM ]] && return 0
	echo "stack: no $CHAKONGD; building $CK_BUILD (test hooks on)" >&2
	if [[ ! -f $CK_BUILD/build.ninja ]]; then
		meson setup "$CK_BUILD" "$ROOT" -Dtest_hooks=true >&2
	fi
	ninja -C "$CK_BUILD" >&2
	[[ -x $CHAKONGD ]] || die "build produced no $CHAKONGD"
	[[ -x $AGENCYSIM ]] || die "build produced no $AGENCYSIM"
}

# The example policy of the README: deny by default, one section per
# client identity.
DEFAULT_POLICY='[policy.court:440100]
grant = all
courts = *

[policy.court:440600]
Query = deposit, real-estate
Freeze = deposit
Extend = deposit
Release = deposit'

# crl_line PKI: the [tls] crl line (none when CK_CRL=none).
crl_line() {
	case ${CK_CRL:-} in
	none) ;;
	"") echo "crl = $1/crl.pem" ;;
	*) echo "crl = $CK_CRL" ;;
	esac
}

write_conf() {
	local conf=$1 pki=$2
	cat >"$conf.tmp" <<EOF
; chakongd config written by tests/stack.sh (regenerated by every \`up\`).
[server]
listen = 127.0.0.1:0
status_listen = 127.0.0.1:0
broker_id = ${CK_BROKER_ID:-gz}
grace_period_s = ${CK_GRACE:-10}
log_level = ${CK_LOG_LEVEL:-info}

[tls]
cert = $pki/$BROKER_CERT.crt
key = $pki/$BROKER_CERT.key
client_ca = $pki/ca.crt
$(crl_line "$pki")

[limits]
max_concurrent_streams = ${CK_MAX_STREAMS:-100}
${CK_LIMITS:-}

[court.440100]
name = 广州市中级人民法院
prefixes = 粤01
custody_bank = icbc
custody_account = 3602000019200000001

[court.440600]
name = 佛山市中级人民法院
prefixes = 粤06
custody_bank = icbc
custody_account = 2013000019200000006

${CK_POLICY_CONF:-$DEFAULT_POLICY}
EOF
	if [[ -n ${SIM_READY:-} ]]; then
		write_agencies "$SIM_READY" "$pki" "$DIR" >>"$conf.tmp"
	fi
	if [[ -n ${CK_EXTRA_CONF:-} ]]; then
		extra_conf >>"$conf.tmp"
	fi
	mv -f "$conf.tmp" "$conf"
}

# CK_EXTRA_CONF with every @endpoint.X@ replaced by that simulated
# endpoint's address (a test can point an endpoint of its own at one).
extra_conf() {
	local text=$CK_EXTRA_CONF key addr
	while [[ $text =~ @(endpoint\.[a-z0-9_-]+)@ ]]; do
		key=${BASH_REMATCH[1]}
		addr=$(read_ready "${SIM_READY:-/dev/null}" "$key")
		[[ -n $addr ]] || die "CK_EXTRA_CONF names @$key@, which the simulator does not serve"
		text=${text//@$key@/$addr}
	done
	printf '\n%s\n' "$text"
}

BANKS="icbc abc boc ccb bocom cmb cgb psbc"
REGISTRIES="realestate vehicle household enterprise"

# write_agencies READY PKI DIR: the broker's side of the simulated agencies:
# one endpoint per agency (its address from the simulator's ready file and
# the identity its certificate must carry) and the five adapters.
write_agencies() {
	local ready=$1 pki=$2 dir=$3 id addr
	printf '\n[agencies]\ncert = %s\nkey = %s\nca = %s\n' \
		"$pki/$BROKER_CERT.crt" "$pki/$BROKER_CERT.key" "$pki/ca.crt"
	printf 'module_dir = %s\nref_key = %s\n' \
		"$CK_BUILD/adapters/modules" "$dir/ref.key"
	printf '\n[actions]\nstate_dir = %s\n' "$dir/state"
	if [[ -n ${CK_ACTIONS_CONF:-} ]]; then
		printf '%s\n' "$CK_ACTIONS_CONF"
	fi
	printf '\n[cache]\nkey = %s\ndir = %s\n' "$dir/cache.key" "$dir/cache"
	if [[ -n ${CK_CACHE_CONF:-} ]]; then
		printf '%s\n' "$CK_CACHE_CONF"
	fi
	for id in $BANKS $REGISTRIES; do
		addr=$(read_ready "$ready" "endpoint.$id")
		[[ -n $addr ]] || die "the simulator's ready file has no endpoint.$id"
		printf '\n[endpoint.%s]\naddress = %s\n' "$id" "$addr"
		printf 'identity = urn:chakong:agency:%s\n' "$id"
		if [[ -n ${CK_ENDPOINT_CONF:-} ]]; then
			printf '%s\n' "$CK_ENDPOINT_CONF"
		fi
	done
	printf '\n[adapter.bank]\nmodule = bank\nendpoints = %s\n' \
		"${BANKS// /, }"
	for id in $REGISTRIES; do
		printf '\n[adapter.%s]\nmodule = %s\nendpoint = %s\n' \
			"$id" "$id" "$id"
	done
}

# read_ready FILE KEY
read_ready() {
	sed -n "s/^$2=//p" "$1" 2>/dev/null | head -n 1
}

# supervise NAME STRING LOG EXITF PIDF CMD...: run CMD in the background
# under a supervisor shell that reaps it and writes its exit status (so
# `down` and the tests learn how it ended although nobody waits for it);
# record it in DIR/pids (signalled only while its command line contains
# STRING). Sets SUPERVISED_PID. Only the process itself is ever signalled.
supervise() {
	local name=$1 want=$2 log=$3 exitf=$4 pidf=$5
	shift 5
	rm -f "$exitf" "$pidf"
	# shellcheck disable=SC2016
	bash -c '
		exitf=$1 pidf=$2; shift 2
		"$@" </dev/null &
		child=$!
		echo "$child" >"$pidf.tmp" && mv -f "$pidf.tmp" "$pidf"
		wait "$child"
		rc=$?
		echo "$rc" >"$exitf.tmp" && mv -f "$exitf.tmp" "$exitf"
	' ck-supervise "$exitf" "$pidf" "$@" \
		</dev/null >>"$log" 2>&1 &
	local sup=$! i pid=
	for ((i = 0; i < 50; i++)); do
		pid=$(cat "$pidf" 2>/dev/null || true)
		[[ -n $pid ]] && break
		sleep 0.1
	done
	[[ -n $pid ]] || die "the supervisor did not start $name"
	printf '%s\t%s\t%s\nsupervisor\t%s\t%s\n' \
		"$name" "$pid" "$want" "$sup" "$want" >>"$DIR/pids"
	SUPERVISED_PID=$pid
}

# wait_ready NAME PID WANT READY LOG EXITF KEYS...: until READY has every KEY=
wait_ready() {
	local name=$1 pid=$2 want=$3 ready=$4 log=$5 exitf=$6
	shift 6
	local timeout=${CK_READY_TIMEOUT:-30} t0=$SECONDS key missing
	while ((SECONDS - t0 < timeout)); do
		missing=0
		for key in "$@"; do
			grep -q "^$key=" "$ready" 2>/dev/null || missing=1
		done
		((missing)) || return 0
		if ! cmdline_has "$pid" "$want"; then
			sleep 0.2 # let the supervisor record the status
			echo "stack: $name exited during start-up" \
				"(status $(cat "$exitf" 2>/dev/null || echo '?'))" >&2
			[[ -n ${SOFT_FAIL:-} ]] && return 1
			tail_log "$log"
			cmd_down "$DIR" >/dev/null 2>&1 || true
			exit 1
		fi
		sleep 0.1
	done
	echo "stack: $name not ready after ${timeout}s" >&2
	[[ -n ${SOFT_FAIL:-} ]] && return 1
	cmd_down "$DIR" >/dev/null 2>&1 || true
	tail_log "$log"
	exit 1
}

# start_sim DIR PKI: certificates for every simulated agency, the broker's
# reference key, then the simulator (one process, every endpoint).
start_sim() {
	local dir=$1 pki=$2 id
	for id in sim $BANKS $REGISTRIES; do
		[[ -f $pki/agency-$id.crt ]] ||
			"$ROOT/tests/pki/mkpki" "$pki" agency "$id" >/dev/null
	done
	if [[ ! -s $dir/ref.key ]]; then
		(umask 077 && openssl rand -hex 32 >"$dir/ref.key")
	fi
	if [[ ! -s $dir/cache.key ]]; then
		(umask 077 && openssl rand -hex 32 >"$dir/cache.key")
	fi
	local ready=$dir/agencysim.ready log=$dir/agencysim.log
	local exitf=$dir/agencysim.exit pidf=$dir/agencysim.pid
	local seed=${CK_SIM_SEED:-42} size=${CK_SIM_SIZE:-2000}
	rm -f "$ready"
	: >"$log"
	supervise agencysim "$dir/sim-state" "$log" "$exitf" "$pidf" \
		"$AGENCYSIM" --pki "$pki" --state "$dir/sim-state" \
		--seed "$seed" --size "$size" --ready-file "$ready"
	SIM_PID=$SUPERVISED_PID
	wait_ready agencysim "$SIM_PID" "$dir/sim-state" "$ready" "$log" \
		"$exitf" control pid endpoint.psbc endpoint.enterprise
	SIM_READY=$ready
}

cmd_up() {
	local dir=$1
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)

	# Safe to run twice: a stack already running here is replaced.
	if [[ -s $dir/pids ]]; then
		echo "stack: $dir has a stack; stopping it first" >&2
		cmd_down "$dir"
	fi

	ensure_build
	local pki=${CK_PKI_DIR:-$dir/pki} conf=$dir/chakongd.conf log=$dir/chakongd.log
	local ready=$dir/chakongd.ready exitf=$dir/chakongd.exit
	local pidf=$dir/chakongd.pid
	DIR=$dir
	"$ROOT/tests/pki/mkpki" "$pki" >/dev/null
	mkdir -p "$pki" && pki=$(cd "$pki" && pwd)
	BROKER_CERT=broker
	if [[ ${CK_BROKER_ID:-gz} != gz ]]; then
		"$ROOT/tests/pki/mkpki" "$pki" broker "$CK_BROKER_ID" >/dev/null
		BROKER_CERT=broker-$CK_BROKER_ID
	fi
	rm -f "$ready" "$exitf" "$pidf" "$dir/stack.env" "$dir/pids"
	: >"$log"

	if [[ ${CK_NO_SIM:-0} != 1 ]]; then
		start_sim "$dir" "$pki"
	fi
	write_conf "$conf" "$pki"

	local pid
	supervise chakongd "$conf" "$log" "$exitf" "$pidf" \
		"$CHAKONGD" -c "$conf" --ready-file "$ready"
	pid=$SUPERVISED_PID

	wait_ready chakongd "$pid" "$conf" "$ready" "$log" "$exitf" \
		grpc status

	local grpc status rpid
	grpc=$(read_ready "$ready" grpc)
	status=$(read_ready "$ready" status)
	rpid=$(read_ready "$ready" pid)
	if [[ -n $rpid && $rpid != "$pid" ]]; then
		echo "stack: warning: ready file says pid=$rpid," \
			"the supervisor started $pid" >&2
	fi

	{
		echo "# written by tests/stack.sh up; source it"
		echo "export CK_DIR=$(sq "$dir")"
		echo "export CK_BUILD=$(sq "$CK_BUILD")"
		echo "export CK_GRPC=$(sq "$grpc")"
		echo "export CK_STATUS=$(sq "$status")"
		echo "export CK_STATUS_URL=$(sq "http://$status")"
		echo "export CK_PKI=$(sq "$pki")"
		echo "export CK_BROKER_ID=$(sq "${CK_BROKER_ID:-gz}")"
		echo "export CK_CA=$(sq "$pki/ca.crt")"
		echo "export CK_CERT=$(sq "$pki/court-440100.crt")"
		echo "export CK_KEY=$(sq "$pki/court-440100.key")"
		echo "export CK_PARTNER_CERT=$(sq "$pki/court-440600.crt")"
		echo "export CK_PARTNER_KEY=$(sq "$pki/court-440600.key")"
		echo "export CK_PROTO=$(sq "$ROOT/proto")"
		echo "export CK_PID=$(sq "$pid")"
		echo "export CK_CONF=$(sq "$conf")"
		echo "export CK_LOG=$(sq "$log")"
		echo "export CK_EXIT_FILE=$(sq "$exitf")"
		if [[ -n ${SIM_READY:-} ]]; then
			echo "export CK_SIM_CONTROL=$(sq "$(read_ready "$SIM_READY" control)")"
			echo "export CK_SIM_PID=$(sq "$SIM_PID")"
			echo "export CK_SIM_READY=$(sq "$SIM_READY")"
			echo "export CK_SIM_STATE=$(sq "$dir/sim-state")"
			echo "export CK_SIM_LOG=$(sq "$dir/agencysim.log")"
			echo "export CK_SIM_SEED=$(sq "${CK_SIM_SEED:-42}")"
			echo "export CK_SIM_SIZE=$(sq "${CK_SIM_SIZE:-2000}")"
			echo "export CK_SIM_BANKS=$(sq "$BANKS")"
			echo "export CK_SIM_REGISTRIES=$(sq "$REGISTRIES")"
			echo "export CK_REF_KEY=$(sq "$dir/ref.key")"
			echo "export CK_CACHE_KEY=$(sq "$dir/cache.key")"
			echo "export CK_CACHE_DIR=$(sq "$dir/cache")"
		fi
	} >"$dir/stack.env.tmp"
	mv -f "$dir/stack.env.tmp" "$dir/stack.env"
	echo "stack: up in $dir: grpc=$grpc status=$status pid=$pid"
}

cmd_down() {
	local dir=$1
	if [[ ! -d $dir ]]; then
		echo "stack: no $dir; nothing to stop"
		return 0
	fi
	dir=$(cd "$dir" && pwd)
	local pids=$dir/pids
	if [[ ! -s $pids ]]; then
		echo "stack: nothing running in $dir"
		return 0
	fi

	local grace
	grace=$(conf_value "$dir/chakongd.conf" grace_period_s)
	[[ $grace =~ ^[0-9]+$ ]] || grace=10

	local name pid want
	local -a targets=() wants=() sups=() supwants=()
	while IFS=$'\t' read -r name pid want; do
		[[ -n $name ]] || continue
		if [[ $name == supervisor ]]; then
			sups+=("$pid")
			supwants+=("$want")
		else
			targets+=("$pid")
			wants+=("$want")
		fi
	done <"$pids"

	local i
	for i in "${!targets[@]}"; do
		if cmdline_has "${targets[i]}" "${wants[i]}"; then
			kill -TERM "${targets[i]}" 2>/dev/null || true
		fi
	done

	# Wait up to the grace period (plus a margin for the drain's end).
	local deadline=$((SECONDS + grace + 5)) alive
	while :; do
		alive=0
		for i in "${!targets[@]}"; do
			cmdline_has "${targets[i]}" "${wants[i]}" && alive=1
		done
		((alive && SECONDS < deadline)) || break
		sleep 0.1
	done
	if ((alive)); then
		for i in "${!targets[@]}"; do
			if cmdline_has "${targets[i]}" "${wants[i]}"; then
				echo "stack: pid ${targets[i]} ignored SIGTERM" \
					"for ${grace}s; SIGKILL" >&2
				kill -KILL "${targets[i]}" 2>/dev/null || true
			fi
		done
	fi

	# The supervisors exit by themselves once their child is reaped.
	deadline=$((SECONDS + 3))
	for i in "${!sups[@]}"; do
		while cmdline_has "${sups[i]}" "${supwants[i]}" &&
			((SECONDS < deadline)); do
			sleep 0.05
		done
		if cmdline_has "${sups[i]}" "${supwants[i]}"; then
			kill -KILL "${sups[i]}" 2>/dev/null || true
		fi
	done

	rm -f "$pids" "$dir/stack.env" "$dir/chakongd.ready" \
		"$dir/agencysim.ready"
	local rc
	rc=$(cat "$dir/chakongd.exit" 2>/dev/null || echo '?')
	echo "stack: down in $dir (chakongd exit status $rc)"
}

cmd_status() {
	local dir=$1 name pid want
	[[ -s $dir/pids ]] || {
		echo "stack: not running"
		return 1
	}
	while IFS=$'\t' read -r name pid want; do
		if cmdline_has "$pid" "$want"; then
			echo "$name $pid running"
		else
			echo "$name $pid gone"
		fi
	done <"$dir/pids"
}

# kill9_named DIR NAME: SIGKILL the process NAME that `up` (or `restart`)
# started, if it still runs, wait until it and its supervisor are gone, and
# drop both from DIR/pids. Prints the old process's "want" string.
kill9_named() {
	local dir=$1 target=$2 name pid want tpid= twant= i
	local -a keep=()
	while IFS=$'\t' read -r name pid want; do
		[[ $name == "$target" ]] && { tpid=$pid; twant=$want; }
	done <"$dir/pids"
	[[ -n $tpid ]] || die "$dir/pids names no $target"
	if cmdline_has "$tpid" "$twant"; then
		kill -KILL "$tpid" 2>/dev/null || true
	fi
	for ((i = 0; i < 200; i++)); do
		cmdline_has "$tpid" "$twant" || break
		sleep 0.02
	done
	cmdline_has "$tpid" "$twant" && die "pid $tpid survived SIGKILL"
	# its supervisor (same want string) exits once it has reaped it
	while IFS=$'\t' read -r name pid want; do
		if [[ $want == "$twant" ]]; then
			for ((i = 0; i < 150; i++)); do
				cmdline_has "$pid" "$want" || break
				sleep 0.02
			done
			if cmdline_has "$pid" "$want"; then
				kill -KILL "$pid" 2>/dev/null || true
			fi
		else
			keep+=("$name"$'\t'"$pid"$'\t'"$want")
		fi
	done <"$dir/pids"
	if ((${#keep[@]})); then
		printf '%s\n' "${keep[@]}" >"$dir/pids.tmp"
	else
		: >"$dir/pids.tmp"
	fi
	mv -f "$dir/pids.tmp" "$dir/pids"
}

# set_env_var DIR NAME VALUE: replace one export in DIR/stack.env.
set_env_var() {
	local f=$1/stack.env
	[[ -f $f ]] || return 0
	grep -v "^export $2=" "$f" >"$f.tmp" || true
	echo "export $2=$(sq "$3")" >>"$f.tmp"
	mv -f "$f.tmp" "$f"
}

# sim_conf DIR READY: the standard stack as an INI file, every listener
# on the port it has now.
sim_conf() {
	local dir=$1 ready=$2 id kind pki
	pki=$(sed -n "s/^export CK_PKI='\\(.*\\)'$/\\1/p" "$dir/stack.env")
	printf '; written by tests/stack.sh restart: the standard stack on fixed ports\n'
	printf '[sim]\nseed = %s\nsize = %s\npki = %s\n' \
		"$(read_ready "$ready" seed)" "$(read_ready "$ready" size)" \
		"${pki:-$dir/pki}"
	printf '\n[control]\nlisten = %s\n' "$(read_ready "$ready" control)"
	for id in $BANKS $REGISTRIES; do
		kind=bank
		[[ " $REGISTRIES " == *" $id "* ]] && kind=$id
		printf '\n[endpoint.%s]\nkind = %s\nlisten = %s\n' "$id" "$kind" \
			"$(read_ready "$ready" "endpoint.$id")"
	done
}

cmd_restart() {
	local dir=$1 what=$2
	[[ -s $dir/pids && -f $dir/stack.env ]] ||
		die "no stack running in $dir"
	dir=$(cd "$dir" && pwd)
	DIR=$dir
	SOFT_FAIL=1
	ensure_build
	local pid
	case $what in
	chakongd)
		local conf=$dir/chakongd.conf log=$dir/chakongd.log
		local ready=$dir/chakongd.ready exitf=$dir/chakongd.exit
		local grpc status
		grpc=$(sed -n "s/^export CK_GRPC='\(.*\)'$/\1/p" "$dir/stack.env")
		status=$(sed -n "s/^export CK_STATUS='\(.*\)'$/\1/p" "$dir/stack.env")
		[[ -n $grpc && -n $status ]] || die "$dir/stack.env: no CK_GRPC/CK_STATUS"
		kill9_named "$dir" chakongd
		sed -i -e "/^\[server\]/,/^\[/{s/^listen = .*/listen = $grpc/;" \
			-e "s/^status_listen = .*/status_listen = $status/;}" "$conf"
		rm -f "$ready"
		supervise chakongd "$conf" "$log" "$exitf" "$dir/chakongd.pid" \
			"$CHAKONGD" -c "$conf" --ready-file "$ready"
		pid=$SUPERVISED_PID
		set_env_var "$dir" CK_PID "$pid"
		wait_ready chakongd "$pid" "$conf" "$ready" "$log" "$exitf" \
			grpc status || exit 1
		;;
	agencysim)
		local ready=$dir/agencysim.ready log=$dir/agencysim.log
		local exitf=$dir/agencysim.exit simconf=$dir/agencysim.conf
		# the first restart pins the ports the kernel gave `up`
		if [[ ! -s $simconf ]]; then
			[[ -s $ready ]] || die "no $ready to take the ports from"
			sim_conf "$dir" "$ready" >"$simconf.tmp"
			mv -f "$simconf.tmp" "$simconf"
			cp -f "$ready" "$dir/agencysim.ready.first"
		fi
		kill9_named "$dir" agencysim
		rm -f "$ready"
		supervise agencysim "$dir/sim-state" "$log" "$exitf" \
			"$dir/agencysim.pid" "$AGENCYSIM" -c "$simconf" \
			--state "$dir/sim-state" --ready-file "$ready"
		pid=$SUPERVISED_PID
		set_env_var "$dir" CK_SIM_PID "$pid"
		wait_ready agencysim "$pid" "$dir/sim-state" "$ready" "$log" \
			"$exitf" control pid endpoint.psbc endpoint.enterprise ||
			exit 1
		;;
	*) usage ;;
	esac
	echo "stack: restarted $what in $dir: pid=$pid"
}

if [[ ${1:-} == restart ]]; then
	(($# == 3)) || usage
	cmd_restart "$2" "$3"
	exit
fi
(($# == 2)) || usage
case $1 in
up) cmd_up "$2" ;;
down) cmd_down "$2" ;;
status) cmd_status "$2" ;;
*) usage ;;
esac
