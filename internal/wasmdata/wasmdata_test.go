package wasmdata

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// module builds a module of the header, a custom section and a data section of segs
// (offset, bytes), in the order given.
func module(segs ...segment) []byte {
	out := []byte("\x00asm\x01\x00\x00\x00")
	custom := append([]byte{4}, "note"...)
	out = append(out, 0, byte(len(custom)))
	out = append(out, custom...)
	data := encodeData(segs)
	out = append(out, sectionData)
	out = appendUleb(out, uint64(len(data)))
	return append(out, data...)
}

func TestPack(t *testing.T) {
	big := bytes.Repeat([]byte{7}, 300)
	cases := []struct {
		name     string
		in       []byte
		segments int   // after Pack
		err      error // errors.Is target; nil for success
	}{
		{"one segment stays one", module(segment{16, []byte{1, 2, 3}}), 1, nil},
		{"close segments merge", module(segment{16, []byte{1}}, segment{40, []byte{2}}, segment{100, big}), 1, nil},
		{"unsorted segments merge in address order", module(segment{1000, []byte{9}}, segment{16, []byte{1}}), 1, nil},
		{"a gap past MaxGap stays", module(segment{16, []byte{1}}, segment{16 + MaxGap + 2, []byte{2}}), 2, nil},
		{"an offset past 2 GiB", module(segment{0x8000_0010, []byte{1}}, segment{0x8000_0020, []byte{2}}), 1, nil},
		{"overlapping segments", module(segment{16, []byte{1, 2, 3}}, segment{17, []byte{4}}), 0, ErrUnsupported},
		{"a data count section", append([]byte("\x00asm\x01\x00\x00\x00"), sectionDataCount, 1, 0), 0, ErrUnsupported},
		{"a passive segment", append([]byte("\x00asm\x01\x00\x00\x00"), sectionData, 4, 1, 1, 1, 5), 0, ErrUnsupported},
		{"a section past the end", append([]byte("\x00asm\x01\x00\x00\x00"), sectionData, 40, 1), 0, errAny},
		{"not a module", []byte("\x7fELF...."), 0, errAny},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Pack(tc.in)
			switch {
			case tc.err == errAny && err == nil, tc.err != nil && tc.err != errAny && !errors.Is(err, tc.err):
				t.Fatalf("Pack: error %v, want %v", err, tc.err)
			case tc.err == nil && err != nil:
				t.Fatalf("Pack: %v", err)
			case tc.err != nil:
				return
			}
			sameImage(t, tc.in, out)
			if n, _ := Segments(out); n != tc.segments {
				t.Errorf("%d segments after Pack, want %d", n, tc.segments)
			}
			if !bytes.Contains(out, []byte("note")) {
				t.Error("the custom section was lost")
			}
		})
	}
}

// errAny stands for any error in TestPack's table.
var errAny = errors.New("any error")

// sameImage fails unless in and out write the same bytes into memory.
func sameImage(t testing.TB, in, out []byte) {
	t.Helper()
	a, err := Image(in)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Image(out)
	if err != nil {
		t.Fatalf("the packed module: %v", err)
	}
	if a.Base != b.Base || !bytes.Equal(a.Bytes, b.Bytes) {
		t.Fatalf("memory image changed: base %d/%d, %d/%d bytes", a.Base, b.Base, len(a.Bytes), len(b.Bytes))
	}
}

// TestPackPlugins packs the built plugins again (make plugins packed them: packing is
// idempotent) and a Go module's raw linker output when one is there, keeping the image.
func TestPackPlugins(t *testing.T) {
	mods, _ := filepath.Glob("../../plugins/*.wasm")
	if len(mods) == 0 {
		t.Skip("no plugins built (make plugins)")
	}
	for _, path := range mods {
		in, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		out, err := Pack(in)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		sameImage(t, in, out)
		if n, _ := Segments(out); n > 4 {
			t.Errorf("%s: %d segments after Pack", path, n)
		}
	}
}

func FuzzPack(f *testing.F) {
	f.Add(module(segment{16, []byte{1}}, segment{40, []byte{2}}))
	f.Add(module(segment{1000, []byte{9}}, segment{16, []byte{1}}))
	f.Add([]byte("\x00asm\x01\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := Pack(in)
		if err != nil {
			return
		}
		if _, err := Image(in); err != nil {
			t.Fatalf("Pack accepted a module Image refuses: %v", err)
		}
		sameImage(t, in, out)
		again, err := Pack(out)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("Pack is not idempotent: %v", err)
		}
	})
}
