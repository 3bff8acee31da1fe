#!/bin/sh
# Each adapter module exports exactly one symbol, ck_adapter_<name>
# (STYLE.md: -fvisibility=hidden, entry symbol only). TAP output.
# Usage: check_exports.sh module.so...
n=0
fail=0
echo "1..$#"
for so in "$@"; do
	n=$((n + 1))
	base=$(basename "$so" .so)
	want="ck_adapter_${base#ck_}"
	got=$(nm -D --defined-only "$so" | awk '{print $3}' | sort | tr '\n' ' ')
	if [ "$got" = "$want " ]; then
		echo "ok $n - $base exports only $want"
	else
		echo "not ok $n - $base exports: $got"
		fail=1
	fi
done
exit $fail
