// Package wasmdata rewrites the data section of a WebAssembly module into few segments.
//
// The Go linker emits one active data segment per run of non-zero bytes, skipping any run of
// zeros longer than 8 bytes: a lifter's 1 MB of static data comes out as about 40,000
// segments. wazero keeps a decoded record of every segment for the module (about 2.2 MiB of
// host heap for 40,000) and a slice header per segment for every instance (0.9 MiB each), and
// copies each at instantiation. Packing the segments, with the zeros between them written
// out, costs the module about 0.7 MB of bytes on disk and frees that heap (RATIONALE.md,
// "What an instance holds"). `make plugins` runs it on every module it builds.
package wasmdata

import (
	"errors"
	"fmt"
	"slices"
)

// MaxGap is the longest run of zeros between two segments that Pack writes out to merge
// them: past it, the segments stay apart (a gap that long saves more bytes than a segment's
// record costs).
const MaxGap = 64 << 10

// ErrUnsupported is returned for a module Pack leaves as it is: a data section it does not
// rewrite (a passive segment, a second memory, an offset that is not an i32.const, a data
// count section, overlapping segments).
var ErrUnsupported = errors.New("wasmdata: data section not packable")

const (
	sectionData      = 11
	sectionDataCount = 12
	opI32Const       = 0x41
	opEnd            = 0x0b
)

type segment struct {
	offset uint32
	data   []byte
}

// Pack returns wasm with its data section rewritten so that segments closer than MaxGap are
// one segment. The memory the module starts with is byte for byte the same. A module without
// a data section is returned as it is; a malformed one is an error.
func Pack(wasm []byte) ([]byte, error) {
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" {
		return nil, errors.New("wasmdata: not a WebAssembly module")
	}
	out := append([]byte(nil), wasm[:8]...)
	for i := 8; i < len(wasm); {
		id := wasm[i]
		size, n, err := uleb(wasm[i+1:])
		if err != nil {
			return nil, fmt.Errorf("wasmdata: section at %d: %w", i, err)
		}
		start := i + 1 + n
		if size > uint64(len(wasm)-start) {
			return nil, fmt.Errorf("wasmdata: section at %d: size %d past the end", i, size)
		}
		body := wasm[start : start+int(size)]
		switch id {
		case sectionDataCount:
			return nil, fmt.Errorf("%w: data count section", ErrUnsupported)
		case sectionData:
			segs, err := parseData(body)
			if err != nil {
				return nil, err
			}
			body = encodeData(merge(segs))
		}
		out = append(out, id)
		out = appendUleb(out, uint64(len(body)))
		out = append(out, body...)
		i = start + int(size)
	}
	return out, nil
}

// parseData reads a data section of active segments of memory 0 at i32.const offsets.
func parseData(b []byte) ([]segment, error) {
	count, n, err := uleb(b)
	if err != nil {
		return nil, fmt.Errorf("wasmdata: data section: %w", err)
	}
	b = b[n:]
	if count > uint64(len(b)) {
		return nil, fmt.Errorf("wasmdata: data section: %d segments in %d bytes", count, len(b))
	}
	segs := make([]segment, 0, count)
	for range count {
		if len(b) < 2 || b[0] != 0 || b[1] != opI32Const {
			return nil, fmt.Errorf("%w: a segment that is not active at an i32.const offset", ErrUnsupported)
		}
		off, n, err := sleb32(b[2:])
		if err != nil {
			return nil, fmt.Errorf("wasmdata: segment offset: %w", err)
		}
		b = b[2+n:]
		if len(b) == 0 || b[0] != opEnd {
			return nil, fmt.Errorf("%w: an offset expression of more than one i32.const", ErrUnsupported)
		}
		size, n, err := uleb(b[1:])
		if err != nil {
			return nil, fmt.Errorf("wasmdata: segment size: %w", err)
		}
		b = b[1+n:]
		if size > uint64(len(b)) || uint64(uint32(off))+size > 1<<32 {
			return nil, fmt.Errorf("wasmdata: segment at %d of %d bytes past the end", uint32(off), size)
		}
		segs = append(segs, segment{offset: uint32(off), data: b[:size]})
		b = b[size:]
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("wasmdata: %d bytes after the last segment", len(b))
	}
	slices.SortStableFunc(segs, func(x, y segment) int { return int(int64(x.offset) - int64(y.offset)) })
	for i := 1; i < len(segs); i++ {
		if uint64(segs[i-1].offset)+uint64(len(segs[i-1].data)) > uint64(segs[i].offset) {
			return nil, fmt.Errorf("%w: overlapping segments at %d", ErrUnsupported, segs[i].offset)
		}
	}
	return segs, nil
}

// merge joins sorted, disjoint segments whose gap is at most MaxGap, writing the gap's zeros.
func merge(segs []segment) []segment {
	var out []segment
	for _, s := range segs {
		if len(out) > 0 {
			last := &out[len(out)-1]
			end := uint64(last.offset) + uint64(len(last.data))
			if uint64(s.offset)-end <= MaxGap {
				last.data = append(last.data, make([]byte, uint64(s.offset)-end)...)
				last.data = append(last.data, s.data...)
				continue
			}
		}
		out = append(out, segment{offset: s.offset, data: append([]byte(nil), s.data...)})
	}
	return out
}

func encodeData(segs []segment) []byte {
	out := appendUleb(nil, uint64(len(segs)))
	for _, s := range segs {
		out = append(out, 0, opI32Const)
		out = appendSleb32(out, int32(s.offset))
		out = append(out, opEnd)
		out = appendUleb(out, uint64(len(s.data)))
		out = append(out, s.data...)
	}
	return out
}

func uleb(b []byte) (uint64, int, error) {
	var v uint64
	for i := 0; i < len(b) && i < 10; i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i] < 0x80 {
			return v, i + 1, nil
		}
	}
	return 0, 0, errors.New("bad LEB128")
}

func sleb32(b []byte) (int32, int, error) {
	var v int64
	for i := 0; i < len(b) && i < 5; i++ {
		v |= int64(b[i]&0x7f) << (7 * i)
		if b[i] < 0x80 {
			if shift := 7 * (i + 1); shift < 64 && b[i]&0x40 != 0 {
				v |= -1 << shift
			}
			return int32(v), i + 1, nil
		}
	}
	return 0, 0, errors.New("bad signed LEB128")
}

func appendUleb(b []byte, v uint64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func appendSleb32(b []byte, v int32) []byte {
	x := int64(v)
	for {
		c := byte(x & 0x7f)
		x >>= 7
		if (x == 0 && c&0x40 == 0) || (x == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// Segments counts the data segments of wasm (0 without a data section), for reports.
func Segments(wasm []byte) (int, error) {
	img, err := Image(wasm)
	if err != nil {
		return 0, err
	}
	return img.Segments, nil
}

// MemoryImage is what a module's active data segments write into its memory at
// instantiation: Bytes from address Base on (zeros where no segment writes).
type MemoryImage struct {
	Base     uint32
	Bytes    []byte
	Segments int
}

// Image computes the memory image of wasm's data section: what Pack must keep unchanged.
func Image(wasm []byte) (MemoryImage, error) {
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" {
		return MemoryImage{}, errors.New("wasmdata: not a WebAssembly module")
	}
	for i := 8; i < len(wasm); {
		size, n, err := uleb(wasm[i+1:])
		if err != nil || size > uint64(len(wasm)-i-1-n) {
			return MemoryImage{}, fmt.Errorf("wasmdata: section at %d: bad size", i)
		}
		body := wasm[i+1+n : i+1+n+int(size)]
		if wasm[i] == sectionData {
			segs, err := parseData(body)
			if err != nil || len(segs) == 0 {
				return MemoryImage{Segments: len(segs)}, err
			}
			last := segs[len(segs)-1]
			img := MemoryImage{Base: segs[0].offset, Segments: len(segs)}
			img.Bytes = make([]byte, uint64(last.offset)+uint64(len(last.data))-uint64(img.Base))
			for _, s := range segs {
				copy(img.Bytes[s.offset-img.Base:], s.data)
			}
			return img, nil
		}
		i += 1 + n + int(size)
	}
	return MemoryImage{}, nil
}
