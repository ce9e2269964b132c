// Command tinyx is the Extism-variant twin of wasm/testdata/wat/tiny_v1.wat (abi/ABI.md,
// "The Extism variant"): plugin tinyx@1.0.0, same kinds, fields and evidence key, and a tag
// reply of one draft (rule 0, emit 0, scale 1, evidence marker = "v1") for every event.
//
// It is written against the Extism kernel imports directly (extism:host/env), with no PDK,
// so that it needs nothing beyond the Go toolchain. Built by ../build.sh:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o ../tinyx.wasm .
//
// A c-shared wasip1 module is a reactor: the host runs _initialize once per instance before
// its first call. Each export returns 0 on success, as Extism plugins do.
package main

import "unsafe"

// The Extism kernel: guest input and output live in the kernel's memory, addressed by
// offsets (i64), and are copied in and out a word or a byte at a time.

//go:wasmimport extism:host/env input_length
func extismInputLength() uint64

//go:wasmimport extism:host/env input_load_u8
func extismInputLoadU8(offset uint64) uint32

//go:wasmimport extism:host/env input_load_u64
func extismInputLoadU64(offset uint64) uint64

//go:wasmimport extism:host/env alloc
func extismAlloc(length uint64) uint64

//go:wasmimport extism:host/env store_u8
func extismStoreU8(offset uint64, v uint32)

//go:wasmimport extism:host/env store_u64
func extismStoreU64(offset uint64, v uint64)

//go:wasmimport extism:host/env output_set
func extismOutputSet(offset, length uint64)

const (
	manifest = `{"abi":1,"name":"tinyx","version":"1.0.0","rule_kinds":["lifter:tiny_"],` +
		`"kinds":[{"source_kind":"command","fields":["payload.command_text"]},` +
		`{"source_kind":"auth","fields":["payload.username"]}],"evidence_keys":["marker"]}`
	configureReply = `{}`
	tagReply       = `{"drafts":[{"rule":0,"emit":0,"scale":1,"evidence":{"marker":"v1"}}]}`
)

// in is the reusable input buffer.
var in []byte

// input copies the call's input out of the kernel, eight bytes at a time.
func input() []byte {
	n := extismInputLength()
	if uint64(cap(in)) < n {
		in = make([]byte, n)
	}
	in = in[:n]
	var i uint64
	for ; i+8 <= n; i += 8 {
		*(*uint64)(unsafe.Pointer(&in[i])) = extismInputLoadU64(i)
	}
	for ; i < n; i++ {
		in[i] = byte(extismInputLoadU8(i))
	}
	return in
}

// output copies s into a kernel block and makes it the call's output.
func output(s string) {
	n := uint64(len(s))
	off := extismAlloc(n)
	var i uint64
	for ; i+8 <= n; i += 8 {
		extismStoreU64(off+i, *(*uint64)(unsafe.Pointer(unsafe.StringData(s[i:]))))
	}
	for ; i < n; i++ {
		extismStoreU8(off+i, uint32(s[i]))
	}
	extismOutputSet(off, n)
}

//go:wasmexport describe
func describe() int32 {
	output(manifest)
	return 0
}

// configure accepts every rule.
//
//go:wasmexport configure
func configure() int32 {
	input()
	output(configureReply)
	return 0
}

// tag reads its input, as a real plugin would, and answers the same draft whatever it holds.
//
//go:wasmexport tag
func tag() int32 {
	input()
	output(tagReply)
	return 0
}

func main() {}
