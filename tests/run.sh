#!/usr/bin/env bash
# run.sh: THE test command (`bash tests/run.sh`; .ci/run calls exactly it).
#
# Phases, each timed:
#   deps        tests/deps.sh (apt-get only what is missing)
#   build       build/ with test hooks (set up, or reconfigured), ninja
#   tests       meson test: unit + integration
#   asan-build  build-asan/ with ASan+UBSan and test hooks, ninja
#   asan-tests  meson test there: unit + integration tests not marked slow
#   release     a release build (no test hooks) must build warning-free and
#               hold none of the hooks
# and then counts the results of both builds from meson-logs/testlog.json,
# ending with the line `N passed, N failed[, N skipped]`. A phase that fails
# before its tests could run (a build error) counts as one failure.
#
# Environment: CK_BUILD / CK_BUILD_ASAN override the two build directories
# (relative to the repository root); CK_SKIP_ASAN=1 skips the sanitizer
# build (a quicker local run; CI never sets it).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1

B=${CK_BUILD:-build}
BA=${CK_BUILD_ASAN:-build-asan}
PY=/usr/bin/python3
export CK_PYTHON=$PY
# Tests never wait for a terminal.
exec </dev/null

phase_failures=0
declare -a summary=()

# phase NAME CMD...: run CMD, print its duration; returns CMD's status.
phase() {
	local name=$1 t0 t1 rc
	shift
	echo "==== phase $name"
	t0=$(date +%s.%N)
	"$@"
	rc=$?
	t1=$(date +%s.%N)
	local secs
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
	echo "phase $name: $secs s"
	summary+=("phase $name: $secs s (status $rc)")
	return $rc
}

# configure DIR ARGS...: set DIR up with ARGS, or apply ARGS to an existing
# setup (wiping it when meson cannot reuse it, e.g. after a meson upgrade).
configure() {
	local dir=$1
	shift
	if [[ -f $dir/meson-private/coredata.dat ]]; then
		meson configure "$dir" "$@" ||
			meson setup --wipe "$dir" "$@"
	else
		meson setup "$dir" "$@"
	fi
}

build() {
	local dir=$1
	shift
	configure "$dir" "$@" && ninja -C "$dir"
}

mtest() {
	local dir=$1
	shift
	# testlog.json is rewritten by each run; a stale one must not count.
	rm -f "$dir/meson-logs/testlog.json"
	meson test -C "$dir" --print-errorlogs "$@"
}

if ! phase deps bash tests/deps.sh; then
	echo "run.sh: could not install the dependencies" >&2
	((phase_failures++))
fi

built=0
if phase build build "$B" -Dtest_hooks=true; then
	built=1
	phase tests mtest "$B"
else
	((phase_failures++))
fi

asan_built=0
if [[ ${CK_SKIP_ASAN:-0} != 1 ]]; then
	if phase asan-build build "$BA" -Db_sanitize=address,undefined \
		-Db_lundef=false -Dtest_hooks=true; then
		asan_built=1
		# Sanitizer reports must fail the test that triggered them, and
		# the daemon under test inherits these through tests/stack.sh.
		ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:print_summary=1} \
		UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1:print_summary=1} \
		CK_PYTEST_MARK='not slow' \
			phase asan-tests mtest "$BA" --timeout-multiplier 2
	else
		((phase_failures++))
	fi
fi

# A release build: warning-free too, and without a trace of the test hooks
# (the Testing service, crash points) in the daemon.
release_check() {
	local dir=${CK_BUILD_REL:-build-rel}
	configure "$dir" --buildtype=release -Dtest_hooks=false -Dtests=false &&
		ninja -C "$dir" || return 1
	if grep -aqE 'chakong\.test\.v1|CK_CRASHPOINT' "$dir/broker/chakongd"; then
		echo "run.sh: the release chakongd contains test hooks" >&2
		return 1
	fi
	echo "release build: no test hooks in $dir/broker/chakongd"
}
if ! phase release release_check; then
	((phase_failures++))
fi

# Count meson's results: one JSON object per line of testlog.json.
count() {
	"$PY" - "$@" <<'EOF'
import json, sys
passed = failed = skipped = 0
for path in sys.argv[1:]:
    try:
        lines = open(path, encoding="utf-8").read().splitlines()
    except OSError:
        print(f"run.sh: no {path}: its tests did not run", file=sys.stderr)
        failed += 1
        continue
    for line in lines:
        if not line.strip():
            continue
        t = json.loads(line)
        r = t.get("result", "")
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r == "SKIP":
            skipped += 1
        else:
            failed += 1
            print(f"run.sh: {path}: {t.get('name')}: {r}", file=sys.stderr)
print(passed, failed, skipped)
EOF
}

logs=()
((built)) && logs+=("$B/meson-logs/testlog.json")
((asan_built)) && logs+=("$BA/meson-logs/testlog.json")
read -r passed failed skipped < <(count "${logs[@]}")
failed=$((failed + phase_failures))

echo
printf '%s\n' "${summary[@]}"
if ((skipped)); then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
((failed == 0 && passed > 0))
