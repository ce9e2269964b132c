//go:build wasip1

package sdk

import (
	"encoding/json"
	"fmt"
	"unsafe"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/sdk/internal/bridge"
)

// The exports of ABI v1 (abi/ABI.md). They live here, in a file built only for wasip1, so
// that a lifter's code also compiles natively and runs in `go test` through sdktest, which
// drives the same bridge.Plugin these functions do.

// input is the buffer ttp_alloc hands out. The host keeps it across calls and asks again only
// for a larger input, so in steady state no call allocates it.
var input []byte

// failedTag and failedConfigure hold the reply of a call whose input the registered lifter
// cannot even see, until the next call.
var (
	failedTag       abi.ReplyBuilder
	failedConfigure []byte
)

//go:wasmexport ttp_abi_v1
func ttpABIv1() {}

//go:wasmexport ttp_alloc
func ttpAlloc(size uint32) uint32 {
	if cap(input) < int(size) || cap(input) == 0 {
		input = make([]byte, max(size, 1))
	}
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(input))))
}

//go:wasmexport ttp_describe
func ttpDescribe() uint64 { return ptrlen(registered().Describe()) }

//go:wasmexport ttp_configure
func ttpConfigure(ptr, size uint32) uint64 {
	req, err := inputAt(ptr, size)
	if err != nil {
		failedConfigure, _ = json.Marshal(abi.ConfigureReply{Error: "sdk: ttp_configure: " + err.Error()})
		return ptrlen(failedConfigure)
	}
	return ptrlen(registered().Configure(req))
}

//go:wasmexport ttp_tag
func ttpTag(ptr, size uint32) uint64 {
	rec, err := inputAt(ptr, size)
	if err != nil {
		failedTag.Error("sdk: ttp_tag: " + err.Error())
		return ptrlen(failedTag.Bytes())
	}
	return ptrlen(registered().Tag(rec))
}

// inputAt returns the size bytes at ptr, which must lie in the buffer ttp_alloc handed out:
// checking that is what lets the sdk read guest memory without converting an integer to a
// pointer.
func inputAt(ptr, size uint32) ([]byte, error) {
	base := uint32(uintptr(unsafe.Pointer(unsafe.SliceData(input))))
	if ptr < base || uint64(ptr)+uint64(size) > uint64(base)+uint64(cap(input)) {
		return nil, fmt.Errorf("input [%#x, +%d) is outside the ttp_alloc buffer [%#x, +%d)", ptr, size, base, cap(input))
	}
	off := ptr - base
	return input[off : off+size : off+size], nil
}

// ptrlen packs a reply as ptr<<32 | len; the bytes stay valid until the next call.
func ptrlen(b []byte) uint64 {
	if len(b) == 0 {
		return 0
	}
	return uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b))))<<32 | uint64(len(b))
}

// registered returns the lifter sdk.Register made current. Without one the module cannot
// describe itself, so it traps with a message the host shows in its load error.
func registered() bridge.Plugin {
	if bridge.Registered == nil {
		panic("sdk: no lifter registered: call sdk.Register in the plugin's init")
	}
	return bridge.Registered
}
