//go:build wasip1 && ttpmemstats

package sdk

import (
	"encoding/binary"
	"runtime"
)

// memStats is the reply buffer of ttp_memstats, kept so the call allocates nothing.
var memStats [len(memStatNames) * 8]byte

// memStatNames are the fields ttp_memstats reports, in order, each a little-endian uint64;
// wasm/instance_footprint_test.go reads them by the same order.
var memStatNames = [...]string{"Sys", "HeapSys", "HeapInuse", "HeapIdle", "HeapReleased", "HeapAlloc",
	"StackSys", "MSpanSys", "MCacheSys", "BuckHashSys", "GCSys", "OtherSys", "NextGC", "NumGC"}

// ttpMemstats reports the guest Go runtime's memory statistics, for measuring what an
// instance holds (RATIONALE.md, "What an instance holds"). It is built only with the
// ttpmemstats tag (make footprint): it is no part of ABI v1 and no shipped plugin exports it.
//
//go:wasmexport ttp_memstats
func ttpMemstats() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	for i, v := range [...]uint64{m.Sys, m.HeapSys, m.HeapInuse, m.HeapIdle, m.HeapReleased, m.HeapAlloc,
		m.StackSys, m.MSpanSys, m.MCacheSys, m.BuckHashSys, m.GCSys, m.OtherSys, m.NextGC, uint64(m.NumGC)} {
		binary.LittleEndian.PutUint64(memStats[i*8:], v)
	}
	return ptrlen(memStats[:])
}
