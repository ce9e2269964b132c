package sdk_test

import (
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestWasmBuild builds the example plugin as the ABI requires and checks the module it makes:
// the five ttp_* functions and memory exported, _initialize exported (a reactor), no import
// outside the ABI's allowlist, and package sdk depending on nothing outside abi and the
// standard library, so that no plugin drags the host's runtime into its .wasm.
func TestWasmBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: builds a .wasm with the go command (seconds on a cold build cache)")
	}
	gocmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build the example plugin: %v", err)
	}
	env := append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")

	out := filepath.Join(t.TempDir(), "exampleplugin.wasm")
	build := exec.Command(gocmd, "build", "-buildmode=c-shared", "-o", out, "./internal/exampleplugin")
	build.Env = env
	if msg, err := build.CombinedOutput(); err != nil {
		t.Fatalf("GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared: %v\n%s", err, msg)
	}
	wasm, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	exports, imports, err := wasmInterface(wasm)
	if err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	for _, name := range []string{"ttp_abi_v1", "ttp_alloc", "ttp_describe", "ttp_configure", "ttp_tag", "_initialize"} {
		if kind, ok := exports[name]; !ok || kind != wasmFunc {
			t.Errorf("%s does not export function %s (exports: %v)", out, name, exports)
		}
	}
	if kind, ok := exports["memory"]; !ok || kind != wasmMemory {
		t.Errorf("%s does not export memory", out)
	}
	// abi/ABI.md, "Imports", plus fd_fdstat_set_flags, which package os imports (for
	// syscall.SetNonblock) and every Go plugin links, since abi and the sdk use fmt and
	// encoding/json. ABI.md v1 does not list it yet; it gives no file or network access.
	allowed := []string{"args_get", "args_sizes_get", "environ_get", "environ_sizes_get", "clock_time_get",
		"fd_write", "proc_exit", "random_get", "sched_yield", "fd_close", "fd_fdstat_get", "fd_prestat_get",
		"fd_prestat_dir_name", "fd_seek", "poll_oneoff", "fd_fdstat_set_flags"}
	for _, imp := range imports {
		module, name, _ := strings.Cut(imp, ".")
		if module != "wasi_snapshot_preview1" || !slices.Contains(allowed, name) {
			t.Errorf("%s imports %s, outside the ABI's allowlist", out, imp)
		}
	}

	list := exec.Command(gocmd, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".")
	list.Env = env
	deps, err := list.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, dep := range strings.Fields(string(deps)) {
		switch dep {
		case "github.com/decnet/ttp/abi", "github.com/decnet/ttp/sdk", "github.com/decnet/ttp/sdk/internal/bridge":
		default:
			t.Errorf("package sdk depends on %s: it may import only abi and the standard library", dep)
		}
	}
}

// Export kinds of the WebAssembly binary format.
const (
	wasmFunc   = 0
	wasmMemory = 2
)

// wasmInterface reads a module's export section (name -> kind) and its imports
// ("module.name"), skipping every other section: all the test needs of the binary format.
func wasmInterface(b []byte) (exports map[string]byte, imports []string, err error) {
	if len(b) < 8 || string(b[:4]) != "\x00asm" || binary.LittleEndian.Uint32(b[4:8]) != 1 {
		return nil, nil, errors.New("not a WebAssembly 1.0 binary")
	}
	r := wasmReader{b: b, p: 8}
	exports = map[string]byte{}
	for r.p < len(b) && r.err == nil {
		id, size := r.byte(), r.u32()
		end := r.p + int(size)
		switch id {
		case 2: // imports
			for n := r.u32(); n > 0 && r.err == nil; n-- {
				module, name := r.name(), r.name()
				imports = append(imports, module+"."+name)
				switch r.byte() {
				case 0: // function: type index
					r.u32()
				case 1: // table: reference type, limits
					r.byte()
					r.limits()
				case 2: // memory: limits
					r.limits()
				case 3: // global: value type, mutability
					r.byte()
					r.byte()
				}
			}
		case 7: // exports
			for n := r.u32(); n > 0 && r.err == nil; n-- {
				name, kind := r.name(), r.byte()
				r.u32() // index
				exports[name] = kind
			}
		}
		r.p = end
	}
	if r.err != nil || r.p != len(b) {
		return nil, nil, errors.New("truncated or malformed section")
	}
	return exports, imports, nil
}

// wasmReader reads the binary format's bytes, LEB128 integers and names; past the end it
// records an error and returns zeros.
type wasmReader struct {
	b   []byte
	p   int
	err error
}

func (r *wasmReader) byte() byte {
	if r.p >= len(r.b) {
		r.err = errors.New("unexpected end")
		return 0
	}
	r.p++
	return r.b[r.p-1]
}

func (r *wasmReader) u32() uint32 {
	var v uint32
	for shift := 0; shift < 35; shift += 7 {
		c := r.byte()
		v |= uint32(c&0x7f) << shift
		if c&0x80 == 0 {
			break
		}
	}
	return v
}

func (r *wasmReader) name() string {
	n := int(r.u32())
	if r.p+n > len(r.b) {
		r.err = errors.New("name past the end")
		return ""
	}
	r.p += n
	return string(r.b[r.p-n : r.p])
}

func (r *wasmReader) limits() {
	if r.byte()&1 != 0 {
		r.u32()
	}
	r.u32()
}
