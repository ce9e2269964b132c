#!/usr/bin/env bash
# Counts the termination checks a reference guest pays per call: builds the Go guests (and
# takes the C one, wasm/testdata/reference/c/lifter.wasm), has
# binaryen's wasm-opt log every loop header (wazero compiles its check into each one when
# WithCloseOnContextDone is on), and runs TestGuestChecks, which calls ttp_tag once on the
# benchmark's event and reports the loop headers run, by function. Installs Debian's binaryen
# when wasm-opt is missing. `make guestchecks` runs it.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../../.."

if ! command -v wasm-opt >/dev/null 2>&1 || ! command -v wasm-dis >/dev/null 2>&1; then
	echo "checks.sh: wasm-opt not found, installing binaryen" >&2
	if [ "$(id -u)" -eq 0 ]; then
		apt-get update && apt-get install -y binaryen
	elif command -v sudo >/dev/null 2>&1; then
		sudo apt-get update && sudo apt-get install -y binaryen
	else
		echo "checks.sh: install binaryen (wasm-opt, wasm-dis) and run again" >&2
		exit 1
	fi
fi

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
for g in bare fields floor lifter; do
	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o "$out/$g.wasm" "./wasm/testdata/reference/$g"
	wasm-opt --enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int \
		--enable-mutable-globals --log-execution -g "$out/$g.wasm" -o "$out/$g.log.wasm"
	wasm-dis "$out/$g.log.wasm" -o "$out/$g.log.wat"
done
# The C reference lifter, the committed fixture (stripped: functions by number).
wasm-opt --enable-simd --enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int \
	--enable-mutable-globals --log-execution wasm/testdata/reference/c/lifter.wasm -o "$out/c.log.wasm"
wasm-dis "$out/c.log.wasm" -o "$out/c.log.wat"
TTP_GUEST_CHECKS="$out" go test -count=1 -run '^TestGuestChecks$' -v ./host
