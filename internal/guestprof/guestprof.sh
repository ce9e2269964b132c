#!/usr/bin/env bash
# Counts the termination checks the built plugins named in $1 (default: behavioral email) run
# per event over their conform vectors, by function and package, and times each with and
# without the checks: wasm-opt --log-execution instruments every loop header, and
# TestProfile (guestprof_test.go) runs the vectors. Needs `make plugins` first and binaryen
# (wasm-opt, wasm-dis; Debian's package binaryen). `make guestprof` runs it.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
plugins="${1:-behavioral email}"
for t in wasm-opt wasm-dis; do
	command -v "$t" >/dev/null 2>&1 || { echo "guestprof.sh: $t not found: install binaryen" >&2; exit 1; }
done
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
list=""
for p in $plugins; do
	[ -f "plugins/$p.wasm" ] || { echo "guestprof.sh: plugins/$p.wasm missing: run make plugins" >&2; exit 1; }
	wasm-opt --enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int \
		--enable-mutable-globals --log-execution -g "plugins/$p.wasm" -o "$out/$p.log.wasm"
	wasm-dis "$out/$p.log.wasm" -o "$out/$p.log.wat"
	list="${list:+$list:}$p"
done
GUESTPROF_DIR="$out" GUESTPROF_PLUGINS="$list" go test -count=1 -run '^TestProfile$' -v ./internal/guestprof
