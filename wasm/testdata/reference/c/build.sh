#!/usr/bin/env bash
# Builds the C reference lifter (lifter.c, with sdk/c/ttp.h) into lifter.wasm beside it, or
# into the path given as $1 (the test that the committed fixture matches its source builds
# into a temporary file). lifter.wasm is committed, so `make test` never needs clang; run
# this (make cguest) after editing lifter.c or ttp.h. Installs Debian's clang, lld, wasi-libc
# and libclang-rt-14-dev-wasm32 with apt-get when clang cannot link for wasm32-wasi.
#
# The flags: a reactor (-mexec-model=reactor links wasi-libc's crt1-reactor.o, whose
# _initialize runs the constructors once; without it wasm-ld wraps every export in a call of
# them); -O2; SIMD (ttp_contains tests 16 positions a load; wazero runs Wasm 2.0's SIMD);
# a 16 KiB stack (the lifter keeps its buffers in the heap), so the module starts
# in one 64 KiB page; names and the producers section stripped. clang 14's output is
# deterministic for the same source and flags.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../../.." && pwd)"
out="${1:-$here/lifter.wasm}"
CLANG="${CLANG:-clang}"

flags=(--target=wasm32-wasi -O2 -msimd128 -std=c99 -Wall -Wextra -Werror -mexec-model=reactor
	-Wl,-z,stack-size=16384 -Wl,--strip-all -I "$root/sdk/c")

# cc runs clang on a PATH holding only the linker. clang 14 runs binaryen's wasm-opt after
# linking whenever it finds one (in its own directory or on the PATH), without the features
# the module uses (it fails on SIMD), and its output would depend on what else is installed
# (make guestchecks installs binaryen). So clang is called by its real path, from a
# directory without wasm-opt, and finds wasm-ld through a PATH of one directory.
bin="$(mktemp -d)"
trap 'rm -rf "$bin"' EXIT
cc() {
	local real ld
	real="$(readlink -f "$(command -v "$CLANG")")" || return 1
	for ld in wasm-ld-14 wasm-ld; do
		if p="$(command -v "$ld")"; then ln -sf "$p" "$bin/$ld"; fi
	done
	PATH="$bin" "$real" "$@"
}

links() {
	command -v "$CLANG" >/dev/null 2>&1 || return 1
	printf '__attribute__((export_name("f"))) int f(int x) { return x + 1; }\n' >"$bin/t.c"
	cc "${flags[@]}" -o "$bin/t.wasm" "$bin/t.c" 2>/dev/null
}

if ! links; then
	echo "build.sh: $CLANG cannot link for wasm32-wasi, installing Debian's toolchain" >&2
	pkgs=(clang lld wasi-libc libclang-rt-14-dev-wasm32)
	if [ "$(id -u)" -eq 0 ]; then
		apt-get update && apt-get install -y "${pkgs[@]}"
	elif command -v sudo >/dev/null 2>&1; then
		sudo apt-get update && sudo apt-get install -y "${pkgs[@]}"
	else
		echo "build.sh: install ${pkgs[*]} and run again" >&2
		exit 1
	fi
	links || { echo "build.sh: $CLANG still cannot link for wasm32-wasi" >&2; exit 1; }
fi

tmp="$out.tmp"
cc "${flags[@]}" -o "$tmp" "$here/lifter.c"
mv "$tmp" "$out"
echo "$out: $(wc -c <"$out") bytes"
