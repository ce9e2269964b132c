#!/usr/bin/env bash
# Builds the Extism-variant test plugins of this directory with the Go toolchain: each
# subdirectory is a Go main package compiled with GOOS=wasip1 GOARCH=wasm -buildmode=c-shared
# into <name>.wasm beside it. The .wasm files are committed, so tests never need to build
# them; run this after editing a plugin and commit both. Each .wasm is replaced only once
# built in full.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

shopt -s nullglob
dirs=(*/)
if [ ${#dirs[@]} -eq 0 ]; then
	echo "build.sh: no plugin directories in $(pwd)" >&2
	exit 1
fi

for dir in "${dirs[@]}"; do
	name="${dir%/}"
	out="${name}.wasm"
	tmp="$(mktemp "${out}.XXXXXX")"
	if ! (cd "$name" && GOOS=wasip1 GOARCH=wasm CGO_ENABLED=0 go build -trimpath -buildvcs=false \
		-buildmode=c-shared -ldflags=-s -o "../$tmp" .); then
		rm -f "$tmp"
		echo "build.sh: $name failed to build" >&2
		exit 1
	fi
	chmod 0644 "$tmp"
	mv -f "$tmp" "$out"
	echo "$out"
done
