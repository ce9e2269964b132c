#!/usr/bin/env bash
# Assembles every *.wat of this directory into a .wasm beside it with wat2wasm (wabt).
# The .wasm files are committed, so `make test` never needs wabt; run this after editing a
# .wat. Installs wabt with apt-get when wat2wasm is missing. Idempotent: wat2wasm output is
# deterministic, and each .wasm is replaced only once assembled in full.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

if ! command -v wat2wasm >/dev/null 2>&1; then
	echo "build.sh: wat2wasm not found, installing wabt" >&2
	if [ "$(id -u)" -eq 0 ]; then
		apt-get update && apt-get install -y wabt
	elif command -v sudo >/dev/null 2>&1; then
		sudo apt-get update && sudo apt-get install -y wabt
	else
		echo "build.sh: install wabt (wat2wasm) and run again" >&2
		exit 1
	fi
	command -v wat2wasm >/dev/null 2>&1 || { echo "build.sh: wat2wasm still missing" >&2; exit 1; }
fi

shopt -s nullglob
srcs=(*.wat)
if [ ${#srcs[@]} -eq 0 ]; then
	echo "build.sh: no .wat files in $(pwd)" >&2
	exit 1
fi

for src in "${srcs[@]}"; do
	out="${src%.wat}.wasm"
	tmp="$(mktemp "${out}.XXXXXX")"
	if ! wat2wasm "$src" -o "$tmp"; then
		rm -f "$tmp"
		echo "build.sh: $src failed to assemble" >&2
		exit 1
	fi
	chmod 0644 "$tmp"
	mv -f "$tmp" "$out"
	echo "$out"
done
