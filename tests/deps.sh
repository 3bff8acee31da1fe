#!/usr/bin/env bash
# Installs every Debian 12 package chakong needs to build, test and demo,
# and only those that are missing: dpkg-query decides, `apt-get update` runs
# only when something has to be installed. Safe to run twice, needs no
# stdin, must run as root (or with sudo available) when anything is missing.
set -euo pipefail

PACKAGES=(
	# build
	meson ninja-build pkg-config gcc
	libevent-dev libssl-dev libnghttp2-dev
	libprotobuf-c-dev protobuf-c-compiler
	liblmdb-dev libcmocka-dev libinih-dev
	# run, PKI, operations
	openssl lmdb-utils curl
	# integration tests (Debian's /usr/bin/python3 and its packages)
	python3 python3-grpcio python3-protobuf
	protobuf-compiler protobuf-compiler-grpc
	python3-pytest python3-prometheus-client python3-h2
	# the cache tests change a stored value through the LMDB API
	python3-lmdb
	# the cache benchmark's baseline (tests/bench/bench_cache.sh)
	nghttp2-server
)

missing=()
for p in "${PACKAGES[@]}"; do
	st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[[ $st == installed ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
	echo "deps: all ${#PACKAGES[@]} packages present"
	exit 0
fi

echo "deps: installing ${missing[*]}"
SUDO=()
if ((EUID != 0)); then
	command -v sudo >/dev/null || {
		echo "deps: not root and no sudo; install: ${missing[*]}" >&2
		exit 1
	}
	SUDO=(sudo -n)
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -q </dev/null
"${SUDO[@]}" apt-get install -y -q --no-install-recommends \
	"${missing[@]}" </dev/null
