// Command wasmpack packs the data segments of WebAssembly modules in place (package
// wasmdata): `make plugins` runs it on every plugin it builds, so that the Go linker's tens of
// thousands of segments do not cost host heap in every module and instance wazero holds.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/decnet/ttp/internal/wasmdata"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: wasmpack FILE.wasm...")
		os.Exit(2)
	}
	for _, path := range os.Args[1:] {
		if err := pack(path); err != nil {
			fmt.Fprintln(os.Stderr, "wasmpack:", err)
			os.Exit(1)
		}
	}
}

func pack(path string) error {
	in, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, err := wasmdata.Pack(in)
	if errors.Is(err, wasmdata.ErrUnsupported) {
		fmt.Fprintf(os.Stderr, "wasmpack: %s left as it is: %v\n", path, err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	before, _ := wasmdata.Segments(in)
	after, _ := wasmdata.Segments(out)
	fmt.Printf("%s: %d data segments -> %d, %d -> %d bytes\n", path, before, after, len(in), len(out))
	return os.WriteFile(path, out, 0o644)
}
